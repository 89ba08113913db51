//! Events: the table, the storage's event log port, and what local mode's fan-out
//! reader (the part the DynamoDB stream plays on AWS) reads from it.
//!
//! Appending a published event stores its fan-out in the same write when its tenant's
//! active webhooks are cached and at most [`FAN_OUT_ON_APPEND_MAX`] of them want it:
//! one commit instead of two, and nothing for the reader to read back. The fan-out is
//! the domain's [`plan`], so it is the same fan-out the reader would make. Otherwise
//! the event is stored unmarked and the reader fans it out with the domain's
//! `fan_out` step, so a publish never waits for a read of the webhooks or for a large
//! fan-out.

use crate::sql::{after_bounds, is_unique_violation};
use crate::storage::SqliteStorage;
use async_trait::async_trait;
use hookline_domain::delivery::Task;
use hookline_domain::event::Event;
use hookline_domain::fanout::plan;
use hookline_domain::ids::{EventId, TenantId};
use hookline_domain::metrics::Metric;
use hookline_domain::page::{Cursor, Page, PageRequest};
use hookline_domain::ports::{EventLog, IDEMPOTENCY_WINDOW_SECS, StoreError};
use hookline_domain::time::{Timestamp, to_micros};
use rusqlite::{Row, params};
use serde_json::value::RawValue;

/// Most deliveries an event may fan out to in the write that stores it; an event
/// matching more is fanned out by the reader, so that a large fan-out never holds up
/// the publish response.
pub const FAN_OUT_ON_APPEND_MAX: usize = 64;

/// Stores an event; `false`, storing nothing, if its id exists.
pub(crate) fn insert_event(c: &rusqlite::Connection, e: &Event, fanned_out: bool) -> anyhow::Result<bool> {
    let r = c
        .prepare_cached("INSERT INTO events (id, tenant, name, created_at, document, fanned_out) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![e.id.as_str(), e.tenant.as_str(), e.name.as_str(), to_micros(&e.created_at), e.document.get(), fanned_out]);
    match r {
        Ok(_) => Ok(true),
        Err(err) if is_unique_violation(&err) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

fn event_from_row(r: &Row<'_>) -> anyhow::Result<Event> {
    let tenant = TenantId::parse(&r.get::<_, String>(0)?)?;
    let document = RawValue::from_string(r.get(1)?)?;
    Ok(Event::from_document(tenant, document)?)
}

impl SqliteStorage {
    /// Up to `max` events not yet fanned out, oldest first, with their sequence numbers,
    /// after sequence number `after` (0 for all). A stored event that no longer parses
    /// is returned as an error entry so the reader can report and skip it rather than
    /// stall.
    pub async fn pending_fanout(&self, after: i64, max: usize) -> anyhow::Result<Vec<(i64, anyhow::Result<Event>)>> {
        self.shared
            .db
            .read(move |c| {
                let mut st =
                    c.prepare_cached("SELECT seq, tenant, document FROM events WHERE fanned_out = 0 AND seq > ?1 ORDER BY seq LIMIT ?2")?;
                let mut rows = st.query(params![after, max as i64])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let seq: i64 = r.get(0)?;
                    let ev = (|| {
                        let tenant = TenantId::parse(&r.get::<_, String>(1)?)?;
                        Ok(Event::from_document(tenant, RawValue::from_string(r.get(2)?)?)?)
                    })();
                    out.push((seq, ev));
                }
                Ok(out)
            })
            .await
    }

    /// Marks events as fanned out, without waiting for the commit (a deferred write):
    /// an event whose mark a crash lost is fanned out again after the restart, which
    /// adds nothing, since a delivery's id derives from its event and webhook.
    pub fn mark_fanned_out(&self, seqs: Vec<i64>) -> anyhow::Result<()> {
        self.shared.db.write_deferred("mark events fanned out", move |c| {
            let mut st = c.prepare_cached("UPDATE events SET fanned_out = 1 WHERE seq = ?1")?;
            for s in &seqs {
                st.execute([s])?;
            }
            Ok(())
        })
    }

    /// Waits until an event is stored without its fan-out (or a spurious wake-up).
    pub async fn appended(&self) {
        self.shared.appended.notified().await
    }
}

#[async_trait]
impl EventLog for SqliteStorage {
    async fn append(&self, e: &Event) -> Result<(), StoreError> {
        let stored = match self.shared.webhooks.active_at_hand(&e.tenant) {
            Some(webhooks) if webhooks.iter().filter(|w| w.wants(&e.name)).nth(FAN_OUT_ON_APPEND_MAX).is_none() => {
                let (deliveries, jobs) = plan(e, &webhooks, self.shared.clock.now());
                let created = deliveries.len() as u64;
                let stored = self.store(Some(e), deliveries, jobs.into_iter().map(Task::from).collect()).await?;
                if stored {
                    let metrics = self.metrics();
                    metrics.record(Metric::EventPublished);
                    metrics.record(Metric::DeliveriesCreated(created));
                }
                tracing::debug!(event = %e.id, name = %e.name, "stored with its fan-out");
                stored
            }
            _ => {
                let event = e.clone();
                let stored = self.shared.db.write(move |c| insert_event(c, &event, false)).await?;
                if stored {
                    self.shared.appended.notify_one();
                }
                stored
            }
        };
        if stored { Ok(()) } else { Err(StoreError::Conflict) }
    }

    async fn get(&self, tenant: &TenantId, id: &EventId) -> Result<Event, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.shared
            .db
            .read(move |c| {
                let mut st = c.prepare_cached("SELECT tenant, document FROM events WHERE id = ?1 AND tenant = ?2")?;
                let mut rows = st.query(params![id.as_str(), tenant.as_str()])?;
                match rows.next()? {
                    Some(r) => Ok(Some(event_from_row(r)?)),
                    None => Ok(None),
                }
            })
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Event>, StoreError> {
        let tenant = tenant.clone();
        let (micros, id) = after_bounds(page, true);
        let limit = page.limit;
        let items = self
            .shared
            .db
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT tenant, document FROM events WHERE tenant = ?1 AND (created_at, id) < (?2, ?3)
                     ORDER BY created_at DESC, id DESC LIMIT ?4",
                )?;
                let mut rows =
                    st.query(params![tenant.as_str(), micros, if id.is_empty() { "\u{10ffff}" } else { id.as_str() }, limit + 1])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(event_from_row(r)?);
                }
                Ok(out)
            })
            .await?;
        Ok(Page::from_overfetch(items, limit, |e| Cursor { micros: to_micros(&e.created_at), id: e.id.to_string() }))
    }

    async fn reserve_idempotency_key(&self, tenant: &TenantId, key: &str, event: &EventId, now: Timestamp) -> Result<EventId, StoreError> {
        let (tenant, key, event) = (tenant.clone(), key.to_owned(), event.clone());
        let now_us = to_micros(&now);
        let expired_before = now_us - IDEMPOTENCY_WINDOW_SECS * 1_000_000;
        let bound: String = self
            .shared
            .db
            .write(move |c| {
                // Insert, or take over a binding that has expired; then read what is bound.
                c.execute(
                    "INSERT INTO idempotency_keys (tenant, key, event_id, created_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, key) DO UPDATE SET event_id = excluded.event_id, created_at = excluded.created_at
                     WHERE idempotency_keys.created_at < ?5",
                    params![tenant.as_str(), key, event.as_str(), now_us, expired_before],
                )?;
                Ok(c.query_row(
                    "SELECT event_id FROM idempotency_keys WHERE tenant = ?1 AND key = ?2",
                    params![tenant.as_str(), key],
                    |r| r.get(0),
                )?)
            })
            .await?;
        EventId::parse(&bound).map_err(|e| StoreError::Unknown(e.into()))
    }
}
