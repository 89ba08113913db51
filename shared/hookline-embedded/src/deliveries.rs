//! Deliveries and their attempts. A delivery is claimed by one worker at a time
//! (`claimed_until`); the queue may take that claim on the worker's behalf in the write
//! that hands a job over, and [`DeliveryStore::claim`] then answers from it.

use crate::sql::{after_bounds, micros_opt, ts_opt};
use crate::storage::SqliteStorage;
use anyhow::anyhow;
use async_trait::async_trait;
use hookline_domain::catalog::EventName;
use hookline_domain::delivery::{Attempt, Claim, Delivery, DeliveryFilter, DeliveryStatus, Job};
use hookline_domain::ids::{AttemptId, DeliveryId, EventId, TenantId, WebhookId};
use hookline_domain::page::{Cursor, Page, PageRequest};
use hookline_domain::ports::{AttemptStats, DeliveryStore, StoreError};
use hookline_domain::time::{Timestamp, from_micros, to_micros};
use rusqlite::{Row, params};

const DELIVERY_COLUMNS: &str = "id, tenant, webhook_id, event_id, event_name, status, attempts, last_status_code, last_attempt_at, next_attempt_at, delivered_at, created_at";

fn delivery_from_row(r: &Row<'_>) -> anyhow::Result<Delivery> {
    Ok(Delivery {
        id: DeliveryId::parse(&r.get::<_, String>(0)?)?,
        tenant: TenantId::parse(&r.get::<_, String>(1)?)?,
        webhook_id: WebhookId::parse(&r.get::<_, String>(2)?)?,
        event_id: EventId::parse(&r.get::<_, String>(3)?)?,
        event_name: EventName::parse(&r.get::<_, String>(4)?)?,
        status: r.get::<_, String>(5)?.parse().map_err(|e: String| anyhow!(e))?,
        attempts: r.get(6)?,
        last_status_code: r.get(7)?,
        last_attempt_at: ts_opt(r.get(8)?),
        next_attempt_at: ts_opt(r.get(9)?),
        delivered_at: ts_opt(r.get(10)?),
        created_at: from_micros(r.get(11)?),
    })
}

fn read_delivery(c: &rusqlite::Connection, id: &str) -> anyhow::Result<Option<Delivery>> {
    let mut st = c.prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"))?;
    let mut rows = st.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(delivery_from_row(r)?)),
        None => Ok(None),
    }
}

/// Writes a delivery's mutable state if its stored attempt count is `expected`.
fn save_state(c: &rusqlite::Connection, d: &Delivery, expected: u32) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "UPDATE deliveries SET status = ?2, attempts = ?3, last_status_code = ?4, last_attempt_at = ?5, next_attempt_at = ?6,
         delivered_at = ?7, claimed_until = NULL WHERE id = ?1 AND attempts = ?8",
    )?
    .execute(params![
        d.id.as_str(),
        d.status.as_str(),
        d.attempts,
        d.last_status_code,
        micros_opt(&d.last_attempt_at),
        micros_opt(&d.next_attempt_at),
        micros_opt(&d.delivered_at),
        expected
    ])
}

/// [`DeliveryStore::claim`] (times in microseconds).
pub(crate) fn claim_delivery(c: &rusqlite::Connection, job: &Job, now_us: i64, until_us: i64) -> anyhow::Result<Claim> {
    // A recovery's job reopens a finished delivery as it claims it.
    let n = c
        .prepare_cached(
            "UPDATE deliveries SET claimed_until = ?4,
                 next_attempt_at = CASE WHEN status = 'pending' THEN next_attempt_at ELSE ?5 END, status = 'pending'
             WHERE id = ?1 AND tenant = ?2 AND (status = 'pending' OR ?6) AND attempts = ?3
             AND (claimed_until IS NULL OR claimed_until <= ?5)",
        )?
        .execute(params![job.delivery_id.as_str(), job.tenant.as_str(), job.attempts_before, until_us, now_us, job.reopen])?;
    let d = read_delivery(c, job.delivery_id.as_str())?;
    Ok(match d {
        Some(d) if n == 1 => Claim::Claimed(d),
        Some(d) if d.tenant == job.tenant && (d.status == DeliveryStatus::Pending || job.reopen) && d.attempts == job.attempts_before => {
            Claim::Busy
        }
        _ => Claim::Stale,
    })
}

/// Inserts new deliveries, keeping any that already exist (fan-out may run twice).
pub(crate) fn insert_deliveries(c: &rusqlite::Connection, ds: &[Delivery]) -> anyhow::Result<()> {
    let mut st = c.prepare_cached(&format!(
        "INSERT OR IGNORE INTO deliveries ({DELIVERY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?;
    for d in ds {
        st.execute(params![
            d.id.as_str(),
            d.tenant.as_str(),
            d.webhook_id.as_str(),
            d.event_id.as_str(),
            d.event_name.as_str(),
            d.status.as_str(),
            d.attempts,
            d.last_status_code,
            micros_opt(&d.last_attempt_at),
            micros_opt(&d.next_attempt_at),
            micros_opt(&d.delivered_at),
            to_micros(&d.created_at),
        ])?;
    }
    Ok(())
}

#[async_trait]
impl DeliveryStore for SqliteStorage {
    async fn create(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let ds = deliveries.to_vec();
        self.shared.db.write(move |c| insert_deliveries(c, &ds)).await?;
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<Delivery, StoreError> {
        let (tenant, webhook, id) = (tenant.clone(), webhook.clone(), id.clone());
        let d = self.shared.db.read(move |c| read_delivery(c, id.as_str())).await?;
        match d {
            Some(d) if d.tenant == tenant && d.webhook_id == webhook => Ok(d),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn list(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let (tenant, webhook) = (tenant.clone(), webhook.clone());
        let name = filter.event_name.as_ref().map(|n| n.as_str().to_owned());
        let (since, until) = (filter.since.as_ref().map(to_micros), filter.until.as_ref().map(to_micros));
        let (micros, id) = after_bounds(page, true);
        let id = if id.is_empty() { "\u{10ffff}".to_owned() } else { id };
        let limit = page.limit;
        let status = filter.status.map(|s| s.as_str());
        let items = self
            .shared
            .db
            .read(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE tenant = ?1 AND webhook_id = ?2 AND (created_at, id) < (?3, ?4)
                     AND (?5 IS NULL OR status = ?5) AND (?7 IS NULL OR event_name = ?7)
                     AND (?8 IS NULL OR created_at >= ?8) AND (?9 IS NULL OR created_at < ?9)
                     ORDER BY created_at DESC, id DESC LIMIT ?6"
                ))?;
                let mut rows = st.query(params![tenant.as_str(), webhook.as_str(), micros, id, status, limit + 1, name, since, until])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(delivery_from_row(r)?);
                }
                Ok(out)
            })
            .await?;
        Ok(Page::from_overfetch(items, limit, |d| Cursor { micros: to_micros(&d.created_at), id: d.id.to_string() }))
    }

    async fn count(&self, tenant: &TenantId, webhook: &WebhookId, filter: &DeliveryFilter) -> Result<u64, StoreError> {
        let (tenant, webhook) = (tenant.clone(), webhook.clone());
        let name = filter.event_name.as_ref().map(|n| n.as_str().to_owned());
        let (since, until) = (filter.since.as_ref().map(to_micros), filter.until.as_ref().map(to_micros));
        let status = filter.status.map(|s| s.as_str());
        let n: i64 = self
            .shared
            .db
            .read(move |c| {
                Ok(c.prepare_cached(
                    "SELECT COUNT(*) FROM deliveries WHERE tenant = ?1 AND webhook_id = ?2
                     AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR event_name = ?4)
                     AND (?5 IS NULL OR created_at >= ?5) AND (?6 IS NULL OR created_at < ?6)",
                )?
                .query_row(params![tenant.as_str(), webhook.as_str(), status, name, since, until], |r| r.get(0))?)
            })
            .await?;
        Ok(n as u64)
    }

    async fn attempts(&self, tenant: &TenantId, _webhook: &WebhookId, id: &DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        Ok(self
            .shared
            .db
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT id, delivery_id, attempted_at, status_code, duration_ms, error, response_body FROM attempts
                     WHERE delivery_id = ?1 AND tenant = ?2 ORDER BY attempted_at, id",
                )?;
                let mut rows = st.query(params![id.as_str(), tenant.as_str()])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(Attempt {
                        id: AttemptId::parse(&r.get::<_, String>(0)?)?,
                        delivery_id: DeliveryId::parse(&r.get::<_, String>(1)?)?,
                        attempted_at: from_micros(r.get(2)?),
                        status_code: r.get(3)?,
                        duration_ms: r.get::<_, i64>(4)? as u64,
                        error: r.get(5)?,
                        response_body: r.get(6)?,
                    });
                }
                Ok(out)
            })
            .await?)
    }

    async fn claim(&self, job: &Job, now: Timestamp, lease_until: Timestamp) -> Result<Claim, StoreError> {
        // The queue may have claimed the delivery for this job as it handed the job over
        // or took it (see queue.rs): then the claim is this worker's, with no write. One
        // too short for this attempt is extended: the table's claim, until exactly the
        // held claim's end, counts as free.
        let mut free_until = now;
        match self.shared.take_held(job, lease_until) {
            Some(Ok(held)) => return Ok(Claim::Claimed(held)),
            Some(Err(held_until)) => free_until = free_until.max(held_until),
            None => {}
        }
        let job = job.clone();
        Ok(self.shared.db.write(move |c| claim_delivery(c, &job, to_micros(&free_until), to_micros(&lease_until))).await?)
    }

    async fn record_attempt(&self, d: &Delivery, a: &Attempt) -> Result<(), StoreError> {
        let (d, a) = (d.clone(), a.clone());
        self.shared.db
            .write(move |c| {
                // Both or neither: a write that fails rolls back alone (see Database).
                if save_state(c, &d, d.attempts.saturating_sub(1))? == 0 {
                    return Ok(Err(StoreError::Conflict));
                }
                c.prepare_cached(
                    "INSERT INTO attempts (id, delivery_id, tenant, webhook_id, attempted_at, status_code, succeeded, duration_ms, error, response_body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    a.id.as_str(),
                    d.id.as_str(),
                    d.tenant.as_str(),
                    d.webhook_id.as_str(),
                    to_micros(&a.attempted_at),
                    a.status_code,
                    a.succeeded(),
                    a.duration_ms as i64,
                    a.error,
                    a.response_body
                ])?;
                Ok(Ok(()))
            })
            .await?
    }

    async fn close(&self, d: &Delivery) -> Result<(), StoreError> {
        let d = d.clone();
        let n = self.shared.db.write(move |c| Ok(save_state(c, &d, d.attempts)?)).await?;
        if n == 0 { Err(StoreError::Conflict) } else { Ok(()) }
    }

    async fn release(&self, tenant: &TenantId, _webhook: &WebhookId, id: &DeliveryId) -> Result<(), StoreError> {
        self.shared.forget_held(id);
        let (tenant, id) = (tenant.clone(), id.clone());
        self.shared
            .db
            .write(move |c| {
                Ok(c.execute(
                    "UPDATE deliveries SET claimed_until = NULL WHERE id = ?1 AND tenant = ?2",
                    params![id.as_str(), tenant.as_str()],
                )?)
            })
            .await?;
        Ok(())
    }

    async fn reopen(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId, now: Timestamp) -> Result<Delivery, StoreError> {
        let (tenant, webhook, id) = (tenant.clone(), webhook.clone(), id.clone());
        self.shared
            .db
            .write(move |c| {
                let n = c.execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = ?4 WHERE id = ?1 AND tenant = ?2 AND webhook_id = ?3",
                    params![id.as_str(), tenant.as_str(), webhook.as_str(), to_micros(&now)],
                )?;
                if n == 0 {
                    return Ok(Err(StoreError::NotFound));
                }
                Ok(read_delivery(c, id.as_str())?.ok_or(StoreError::NotFound))
            })
            .await?
    }

    async fn attempt_stats(&self, tenant: &TenantId, webhook: &WebhookId, since: Timestamp) -> Result<AttemptStats, StoreError> {
        let (tenant, webhook) = (tenant.clone(), webhook.clone());
        Ok(self
            .shared
            .db
            .read(move |c| {
                let (total, ok): (i64, Option<i64>) = c.query_row(
                    "SELECT COUNT(*), SUM(succeeded) FROM attempts WHERE tenant = ?1 AND webhook_id = ?2 AND attempted_at >= ?3",
                    params![tenant.as_str(), webhook.as_str(), to_micros(&since)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                Ok(AttemptStats { total: total as u64, succeeded: ok.unwrap_or(0) as u64 })
            })
            .await?)
    }
}
