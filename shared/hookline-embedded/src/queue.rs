//! The durable delay queue. Taking a job pushes its due time to the end of the lease
//! (as SQS's visibility timeout does), so an unacknowledged job comes back.
//!
//! With a hand-off ([`SqliteStorage::with_hand_off`]), jobs due at once also go to the
//! send loop in memory: they are stored already leased, in the write that queues them,
//! and passed on after the commit, so the loop need not take them back out of the
//! table. Only as many as the hand-off has room for; the rest wait in the table. The
//! same write claims each handed-over job's delivery for the lease, and `take_due`
//! claims the deliveries of the jobs it takes, so the send step's claim costs no write
//! of its own (see `deliveries.rs`). A handed-over job is as durable as any other: if
//! it is never acknowledged (the process died, say) its lease runs out, or
//! [`Database::recover`](crate::Database::recover) releases it at the next start, and
//! it is taken from the table.

use crate::deliveries::{claim_delivery, insert_deliveries};
use crate::events::insert_event;
use crate::storage::{HeldClaim, SqliteStorage};
use anyhow::Context;
use async_trait::async_trait;
use hookline_domain::delivery::{Claim, Delivery, Task};
use hookline_domain::event::Event;
use hookline_domain::ports::{DeliveryQueue, Leased, QueueError};
use hookline_domain::time::{Timestamp, from_micros, to_micros};
use rusqlite::params;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// When a lease taken at `now_us` (microseconds) ends.
fn lease_end(now_us: i64, lease: Duration) -> i64 {
    now_us.saturating_add(lease.as_micros().min(i64::MAX as u128) as i64)
}

/// One queued row: its due time, its lease end if handed over, and the job.
struct Row {
    due_us: i64,
    leased_until: Option<i64>,
    job: String,
}

impl SqliteStorage {
    /// Stores `event` (if any, marked fanned out) and `deliveries` (new ones; may be
    /// none) and queues `jobs`, in one write, handing over what the hand-off has room
    /// for. `false`, storing nothing, if the event's id exists.
    pub(crate) async fn store(&self, event: Option<&Event>, deliveries: Vec<Delivery>, jobs: Vec<Task>) -> anyhow::Result<bool> {
        let now = self.shared.clock.now();
        let now_us = to_micros(&now);
        // Room in the hand-off for jobs due now, reserved before the write: a job stored
        // leased is sure to reach the send loop (or to come back when its lease ends).
        let hand_off = self.shared.hand_off.as_ref();
        let permits: Vec<_> =
            jobs.iter().map(|j| hand_off.filter(|_| j.due_at() <= now).and_then(|h| h.to.clone().try_reserve_owned().ok())).collect();
        let until_us = hand_off.map(|h| lease_end(now_us, h.lease)).unwrap_or(now_us);
        let rows = jobs
            .iter()
            .zip(&permits)
            .map(|(j, p)| {
                Ok(Row { due_us: to_micros(&j.due_at()), leased_until: p.as_ref().map(|_| until_us), job: serde_json::to_string(j)? })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let handed: Vec<Task> = jobs.iter().zip(&permits).filter(|(_, p)| p.is_some()).map(|(j, _)| j.clone()).collect();
        let event = event.cloned();
        let stored = self
            .shared
            .db
            .write(move |c| {
                // One write, so all of it or none of it (see Database).
                if let Some(e) = &event
                    && !insert_event(c, e, true)?
                {
                    return Ok(None);
                }
                insert_deliveries(c, &deliveries)?;
                let mut ids = Vec::with_capacity(rows.len());
                let mut st = c.prepare_cached("INSERT INTO queue (due_at, leased, job) VALUES (?1, ?2, ?3)")?;
                for row in &rows {
                    st.execute(params![row.leased_until.unwrap_or(row.due_us), row.leased_until.is_some(), row.job])?;
                    ids.push(c.last_insert_rowid());
                }
                // A delivery claimed elsewhere or moved on is left to the send step.
                let mut claimed = Vec::new();
                for job in handed.iter().filter_map(Task::job) {
                    if let Claim::Claimed(d) = claim_delivery(c, job, now_us, until_us)? {
                        claimed.push(d);
                    }
                }
                Ok(Some((ids, claimed)))
            })
            .await?;
        let Some((ids, claimed)) = stored else { return Ok(false) };
        self.shared.hold(claimed.into_iter().map(|delivery| HeldClaim { delivery, until: from_micros(until_us) }));
        self.shared.enqueued_total.fetch_add(jobs.len() as u64, Ordering::AcqRel);
        let mut waiting = false;
        for ((job, permit), id) in jobs.into_iter().zip(permits).zip(ids) {
            match permit {
                Some(p) => {
                    p.send(Leased { receipt: id.to_string(), task: job });
                }
                None => waiting = true,
            }
        }
        if waiting {
            self.shared.queued.notify_one();
        }
        Ok(true)
    }

    /// How many jobs this process has queued, counted once their write committed.
    pub fn enqueued_total(&self) -> u64 {
        self.shared.enqueued_total.load(Ordering::Acquire)
    }

    /// When the earliest job is due (leased ones included), if any.
    pub async fn next_due(&self) -> anyhow::Result<Option<Timestamp>> {
        let v: Option<i64> =
            self.shared.db.read(|c| Ok(c.prepare_cached("SELECT MIN(due_at) FROM queue")?.query_row([], |r| r.get(0))?)).await?;
        Ok(v.map(from_micros))
    }

    /// Jobs in the queue (leased ones included).
    pub async fn queue_len(&self) -> anyhow::Result<u64> {
        let n: i64 = self.shared.db.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM queue", [], |r| r.get(0))?)).await?;
        Ok(n as u64)
    }

    /// Waits until a job is queued in the table rather than handed over (or a spurious
    /// wake-up).
    pub async fn queued(&self) {
        self.shared.queued.notified().await
    }
}

#[async_trait]
impl DeliveryQueue for SqliteStorage {
    async fn enqueue(&self, tasks: &[Task]) -> Result<(), QueueError> {
        self.store(None, Vec::new(), tasks.to_vec()).await?;
        Ok(())
    }

    async fn take_due(&self, now: Timestamp, max: usize, lease: Duration) -> Result<Vec<Leased>, QueueError> {
        let now_us = to_micros(&now);
        let until = lease_end(now_us, lease);
        let rows = self
            .shared
            .db
            .write(move |c| {
                let mut taken = Vec::new();
                let mut sel = c.prepare_cached("SELECT id, job FROM queue WHERE due_at <= ?1 ORDER BY due_at LIMIT ?2")?;
                let mut upd = c.prepare_cached("UPDATE queue SET due_at = ?2, leased = 1 WHERE id = ?1")?;
                let found: Vec<(i64, String)> =
                    sel.query_map(params![now_us, max as i64], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
                for (id, text) in found {
                    upd.execute(params![id, until])?;
                    let task = serde_json::from_str::<Task>(&text);
                    // Claimed for the lease in the same write, as the hand-off does; a
                    // delivery claimed elsewhere or moved on is left to the send step.
                    let claimed = match task.as_ref().map(Task::job) {
                        Ok(Some(job)) => match claim_delivery(c, job, now_us, until)? {
                            Claim::Claimed(d) => Some(d),
                            Claim::Busy | Claim::Stale => None,
                        },
                        Ok(None) | Err(_) => None,
                    };
                    taken.push((id, task, claimed));
                }
                Ok(taken)
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut held = Vec::new();
        for (id, task, claimed) in rows {
            match task {
                Ok(task) => {
                    held.extend(claimed.map(|delivery| HeldClaim { delivery, until: from_micros(until) }));
                    out.push(Leased { receipt: id.to_string(), task });
                }
                Err(e) => {
                    // Never silently: a job this build cannot read stays in the table,
                    // parked far in the future, and is reported.
                    tracing::error!(row = id, error = %e, "unreadable queue job parked");
                    self.shared
                        .db
                        .write(move |c| Ok(c.execute("UPDATE queue SET due_at = ?2 WHERE id = ?1", params![id, i64::MAX])?))
                        .await?;
                }
            }
        }
        self.shared.hold(held);
        Ok(out)
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        let id: i64 = receipt.parse().context("malformed receipt")?;
        // Deferred: the job is leased, so nobody takes it meanwhile, and if a crash loses
        // the removal, the job comes back after the restart and is found done (stale).
        self.shared.db.write_deferred("acknowledge a job", move |c| {
            c.prepare_cached("DELETE FROM queue WHERE id = ?1")?.execute([id])?;
            Ok(())
        })?;
        Ok(())
    }
}
