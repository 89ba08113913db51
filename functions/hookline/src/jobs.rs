//! Where local mode's send loop gets its work: jobs handed over in memory as they are
//! queued, and due jobs taken from the queue's table. [`JobSource::next`] decides which
//! source to read and when, so that scheduling is tested on its own (with tokio's
//! paused clock) and the send loop only runs what it is given.
//!
//! The table is read when a job was queued there, when the earliest job there falls
//! due, and at least every [`IDLE_POLL`]; never for a job handed over in memory. While
//! both sources have work they take turns, so neither starves the other. Jobs are
//! taken from the table [`TAKE_BATCH`] at a time and kept until asked for (they are
//! leased, and their deliveries claimed, meanwhile), so a backlog is read in batches
//! rather than a job or two per write.

use async_trait::async_trait;
use hookline_domain::ports::{Leased, QueueError};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Longest sleep between looks at the table when nothing signals new work; a safety net.
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// Most jobs taken from the table in one write (more if more slots are free).
pub const TAKE_BATCH: usize = 32;
/// Wait after a failed read of the table before trying again.
pub const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// The queue's table, as the send loop reads it.
#[async_trait]
pub trait Table: Send + Sync {
    /// Takes up to `max` due jobs, leased.
    async fn take_due(&self, max: usize) -> Result<Vec<Leased>, QueueError>;
    /// How long until the earliest job in the table falls due (zero if one is due),
    /// or `None` if the table is empty.
    async fn next_due_in(&self) -> anyhow::Result<Option<Duration>>;
    /// Waits until a job is queued in the table (or a spurious wake-up).
    async fn queued(&self);
}

/// The send loop's work, from both sources.
pub struct JobSource<T> {
    table: T,
    handed: Option<mpsc::Receiver<Leased>>,
    /// Taken from the table, not yet asked for.
    taken: VecDeque<Leased>,
    /// Whether the table may hold due jobs now.
    look: bool,
    /// When to look at the table anyway.
    look_at: Instant,
    /// Whether the last job came from memory (the table's turn is next).
    last_from_memory: bool,
}

impl<T: Table> JobSource<T> {
    /// Work from `table` and from `handed` (the hand-off, if the queue has one).
    pub fn new(table: T, handed: Option<mpsc::Receiver<Leased>>) -> Self {
        JobSource { table, handed, taken: VecDeque::new(), look: true, look_at: Instant::now() + IDLE_POLL, last_from_memory: false }
    }

    /// The next job to run, waiting for one. `free` is how many slots the caller has
    /// free, so a take from the table fills them all. Failures to read the table are
    /// logged and retried after [`ERROR_BACKOFF`].
    pub async fn next(&mut self, free: usize) -> Leased {
        loop {
            let table_turn = !self.taken.is_empty() || self.look || Instant::now() >= self.look_at;
            if !(table_turn && self.last_from_memory)
                && let Some(job) = self.handed.as_mut().and_then(|h| h.try_recv().ok())
            {
                self.last_from_memory = true;
                return job;
            }
            if table_turn {
                self.last_from_memory = false;
                if self.taken.is_empty() {
                    self.take(free).await;
                }
                if let Some(job) = self.taken.pop_front() {
                    return job;
                }
            }
            if let Some(job) = self.wait().await {
                self.last_from_memory = true;
                return job;
            }
        }
    }

    /// Takes due jobs from the table into `taken`.
    async fn take(&mut self, free: usize) {
        let want = TAKE_BATCH.max(free);
        match self.table.take_due(want).await {
            Ok(jobs) if !jobs.is_empty() => {
                // A full batch may have left more behind.
                self.look = jobs.len() == want;
                self.taken.extend(jobs);
            }
            Ok(_) => {
                self.look = false;
                let wait = match self.table.next_due_in().await {
                    Ok(Some(d)) => d.min(IDLE_POLL),
                    Ok(None) => IDLE_POLL,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the queue's next due time failed");
                        IDLE_POLL
                    }
                };
                self.look_at = Instant::now() + wait;
            }
            Err(e) => {
                tracing::error!(error = %e, "taking due jobs failed");
                self.look = false;
                self.look_at = Instant::now() + ERROR_BACKOFF;
            }
        }
    }

    /// Waits for a job in memory (returned), a job queued in the table, or the time to
    /// look at the table again.
    async fn wait(&mut self) -> Option<Leased> {
        let JobSource { table, handed, look, look_at, .. } = self;
        let from_memory = async {
            match handed.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            job = from_memory => match job {
                Some(job) => return Some(job),
                // The queue is gone: only the table is left.
                None => {
                    *handed = None;
                    *look = true;
                }
            },
            _ = table.queued() => *look = true,
            _ = tokio::time::sleep_until(*look_at) => *look = true,
        }
        None
    }
}

#[cfg(test)]
mod tests;
