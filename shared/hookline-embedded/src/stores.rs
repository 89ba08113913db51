//! SQLite implementations of the store and queue ports. Only this module knows the
//! table layout.

use crate::db::Database;
use anyhow::{Context, anyhow};
use async_trait::async_trait;
use hookline_domain::auth::{ApiKey, Scope};
use hookline_domain::catalog::{EventName, EventPattern};
use hookline_domain::delivery::{Attempt, Claim, Delivery, DeliveryStatus, Job};
use hookline_domain::event::Event;
use hookline_domain::fanout::FanoutError;
use hookline_domain::ids::{ApiKeyId, AttemptId, DeliveryId, EventId, TenantId, WebhookId};
use hookline_domain::page::{Cursor, Page, PageRequest};
use hookline_domain::ports::{
    ApiKeyStore, AttemptStats, Clock, DeliveryQueue, DeliveryStore, EventLog, HeldClaim, IDEMPOTENCY_WINDOW_SECS, Leased, QueueError,
    StoreError, SystemClock, WebhookStore,
};
use hookline_domain::time::{Timestamp, from_micros, to_micros};
use hookline_domain::webhook::{EndpointUrl, Webhook};
use rusqlite::{OptionalExtension, Row, params};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

fn micros_opt(t: &Option<Timestamp>) -> Option<i64> {
    t.as_ref().map(to_micros)
}

fn ts_opt(v: Option<i64>) -> Option<Timestamp> {
    v.map(from_micros)
}

/// Keyset bounds for a page: `(micros, id)` strictly after the cursor in the listing order.
fn after_bounds(page: &PageRequest, descending: bool) -> (i64, String) {
    match &page.after {
        Some(c) => (c.micros, c.id.clone()),
        None if descending => (i64::MAX, String::new()),
        None => (i64::MIN, String::new()),
    }
}

// ---------------------------------------------------------------- webhooks

/// Webhooks in SQLite.
#[derive(Clone)]
pub struct SqliteWebhookStore {
    db: Database,
}

impl SqliteWebhookStore {
    /// A store over `db`.
    pub fn new(db: Database) -> Self {
        SqliteWebhookStore { db }
    }
}

const WEBHOOK_COLUMNS: &str = "id, tenant, endpoint_url, listened_events, description, active, headers, created_at, updated_at, disabled_reason, disabled_at, failing_since, failed_deliveries";

fn webhook_from_row(r: &Row<'_>) -> anyhow::Result<Webhook> {
    let events: Vec<String> = serde_json::from_str(&r.get::<_, String>(3)?)?;
    Ok(Webhook {
        id: WebhookId::parse(&r.get::<_, String>(0)?)?,
        tenant: TenantId::parse(&r.get::<_, String>(1)?)?,
        endpoint_url: EndpointUrl::parse_stored(&r.get::<_, String>(2)?)?,
        listened_events: events.iter().map(|e| EventPattern::parse_stored(e)).collect::<Result<_, _>>()?,
        description: r.get(4)?,
        active: r.get(5)?,
        headers: serde_json::from_str(&r.get::<_, String>(6)?)?,
        created_at: from_micros(r.get(7)?),
        updated_at: from_micros(r.get(8)?),
        disabled_reason: r.get(9)?,
        disabled_at: ts_opt(r.get(10)?),
        failing_since: ts_opt(r.get(11)?),
        failed_deliveries: r.get(12)?,
    })
}

fn webhook_params(w: &Webhook) -> anyhow::Result<(String, String)> {
    let events: Vec<String> = w.listened_events.iter().map(|p| p.to_string()).collect();
    Ok((serde_json::to_string(&events)?, serde_json::to_string(&w.headers)?))
}

#[async_trait]
impl WebhookStore for SqliteWebhookStore {
    async fn insert(&self, w: &Webhook) -> Result<(), StoreError> {
        let w = w.clone();
        let (events, headers) = webhook_params(&w)?;
        self.db
            .write(move |c| {
                let r = c.execute(
                    &format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
                    params![
                        w.id.as_str(),
                        w.tenant.as_str(),
                        w.endpoint_url.as_str(),
                        events,
                        w.description,
                        w.active,
                        headers,
                        to_micros(&w.created_at),
                        to_micros(&w.updated_at),
                        w.disabled_reason,
                        micros_opt(&w.disabled_at),
                        micros_opt(&w.failing_since),
                        w.failed_deliveries
                    ],
                );
                match r {
                    Ok(_) => Ok(Ok(())),
                    Err(e) if is_unique_violation(&e) => Ok(Err(StoreError::Conflict)),
                    Err(e) => Err(e.into()),
                }
            })
            .await?
    }

    async fn get(&self, tenant: &TenantId, id: &WebhookId) -> Result<Webhook, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.db
            .read(move |c| {
                let mut st = c.prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1 AND tenant = ?2"))?;
                let mut rows = st.query(params![id.as_str(), tenant.as_str()])?;
                match rows.next()? {
                    Some(r) => Ok(Some(webhook_from_row(r)?)),
                    None => Ok(None),
                }
            })
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn update(&self, w: &Webhook) -> Result<(), StoreError> {
        let w = w.clone();
        let (events, headers) = webhook_params(&w)?;
        let n = self
            .db
            .write(move |c| {
                Ok(c.execute(
                    "UPDATE webhooks SET endpoint_url = ?3, listened_events = ?4, description = ?5, active = ?6, headers = ?7,
                     updated_at = ?8, disabled_reason = ?9, disabled_at = ?10, failing_since = ?11, failed_deliveries = ?12
                     WHERE id = ?1 AND tenant = ?2",
                    params![
                        w.id.as_str(),
                        w.tenant.as_str(),
                        w.endpoint_url.as_str(),
                        events,
                        w.description,
                        w.active,
                        headers,
                        to_micros(&w.updated_at),
                        w.disabled_reason,
                        micros_opt(&w.disabled_at),
                        micros_opt(&w.failing_since),
                        w.failed_deliveries
                    ],
                )?)
            })
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn update_status(&self, w: &Webhook) -> Result<(), StoreError> {
        let w = w.clone();
        let n = self
            .db
            .write(move |c| {
                Ok(c.execute(
                    "UPDATE webhooks SET active = ?3, disabled_reason = ?4, disabled_at = ?5, failing_since = ?6, failed_deliveries = ?7
                     WHERE id = ?1 AND tenant = ?2",
                    params![
                        w.id.as_str(),
                        w.tenant.as_str(),
                        w.active,
                        w.disabled_reason,
                        micros_opt(&w.disabled_at),
                        micros_opt(&w.failing_since),
                        w.failed_deliveries
                    ],
                )?)
            })
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn delete(&self, tenant: &TenantId, id: &WebhookId) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        let n = self
            .db
            .write(move |c| Ok(c.execute("DELETE FROM webhooks WHERE id = ?1 AND tenant = ?2", params![id.as_str(), tenant.as_str()])?))
            .await?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Webhook>, StoreError> {
        let tenant = tenant.clone();
        let (micros, id) = after_bounds(page, false);
        let limit = page.limit;
        let items = self
            .db
            .read(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant = ?1 AND (created_at, id) > (?2, ?3)
                     ORDER BY created_at, id LIMIT ?4"
                ))?;
                let mut rows = st.query(params![tenant.as_str(), micros, id, limit + 1])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(webhook_from_row(r)?);
                }
                Ok(out)
            })
            .await?;
        Ok(Page::from_overfetch(items, limit, |w| Cursor { micros: to_micros(&w.created_at), id: w.id.to_string() }))
    }

    async fn list_active(&self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError> {
        let tenant = tenant.clone();
        Ok(self
            .db
            .read(move |c| {
                let mut st = c.prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant = ?1 AND active = 1"))?;
                let mut rows = st.query(params![tenant.as_str()])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(webhook_from_row(r)?);
                }
                Ok(out)
            })
            .await?)
    }
}

// ---------------------------------------------------------------- events

/// Events in SQLite. Appending wakes the local fan-out reader, which plays the part
/// the DynamoDB stream plays on AWS.
#[derive(Clone)]
pub struct SqliteEventLog {
    db: Database,
    /// Where events are fanned out as they are stored (see `fanning_out_into`).
    fan_out: Option<SqliteDeliveryQueue>,
}

/// Stores an event; `false`, storing nothing, if its id exists.
fn insert_event(c: &rusqlite::Connection, e: &Event, fanned_out: bool) -> anyhow::Result<bool> {
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

impl SqliteEventLog {
    /// A log over `db`.
    pub fn new(db: Database) -> Self {
        SqliteEventLog { db, fan_out: None }
    }

    /// Lets the log store an event together with its fan-out, in one write
    /// ([`EventLog::append_fanned_out`]), through `queue`, which must be over the same
    /// database and [`SqliteDeliveryQueue::storing_deliveries`] (as local mode wires
    /// them); otherwise the log goes on fanning out only through its reader.
    pub fn fanning_out_into(mut self, queue: SqliteDeliveryQueue) -> Self {
        if queue.stores_deliveries && queue.db.same_as(&self.db) {
            self.fan_out = Some(queue);
        }
        self
    }

    /// Up to `max` events not yet fanned out, oldest first, with their sequence numbers,
    /// after sequence number `after` (0 for all). A stored event that no longer parses
    /// is returned as an error entry so the reader can report and skip it rather than
    /// stall.
    pub async fn pending_fanout(&self, after: i64, max: usize) -> anyhow::Result<Vec<(i64, anyhow::Result<Event>)>> {
        self.db
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
        self.db.write_deferred("mark events fanned out", move |c| {
            let mut st = c.prepare_cached("UPDATE events SET fanned_out = 1 WHERE seq = ?1")?;
            for s in &seqs {
                st.execute([s])?;
            }
            Ok(())
        })
    }

    /// Waits until an event is appended (or a spurious wake-up).
    pub async fn appended(&self) {
        self.db.event_signal.notified().await
    }
}

#[async_trait]
impl EventLog for SqliteEventLog {
    async fn append(&self, e: &Event) -> Result<(), StoreError> {
        let e = e.clone();
        if !self.db.write(move |c| insert_event(c, &e, false)).await? {
            return Err(StoreError::Conflict);
        }
        self.db.event_signal.notify_one();
        Ok(())
    }

    fn appends_fanned_out(&self) -> bool {
        self.fan_out.is_some()
    }

    async fn append_fanned_out(&self, e: &Event, deliveries: &[Delivery], jobs: &[Job]) -> Result<(), StoreError> {
        let Some(queue) = &self.fan_out else {
            return Err(StoreError::Unknown(anyhow::anyhow!("this event log is not wired to a queue; event {} not stored", e.id)));
        };
        match queue.store_jobs(Some(e.clone()), deliveries.to_vec(), jobs).await? {
            true => Ok(()),
            false => Err(StoreError::Conflict),
        }
    }

    async fn get(&self, tenant: &TenantId, id: &EventId) -> Result<Event, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.db
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

// ---------------------------------------------------------------- deliveries

/// Deliveries and attempts in SQLite.
#[derive(Clone)]
pub struct SqliteDeliveryStore {
    db: Database,
}

impl SqliteDeliveryStore {
    /// A store over `db`.
    pub fn new(db: Database) -> Self {
        SqliteDeliveryStore { db }
    }
}

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
fn claim_delivery(c: &rusqlite::Connection, job: &Job, now_us: i64, until_us: i64) -> anyhow::Result<Claim> {
    let n = c
        .prepare_cached(
            "UPDATE deliveries SET claimed_until = ?4 WHERE id = ?1 AND tenant = ?2 AND status = 'pending' AND attempts = ?3
             AND (claimed_until IS NULL OR claimed_until <= ?5)",
        )?
        .execute(params![job.delivery_id.as_str(), job.tenant.as_str(), job.attempts_before, until_us, now_us])?;
    let d = read_delivery(c, job.delivery_id.as_str())?;
    Ok(match d {
        Some(d) if n == 1 => Claim::Claimed(d),
        Some(d) if d.tenant == job.tenant && d.status == DeliveryStatus::Pending && d.attempts == job.attempts_before => Claim::Busy,
        _ => Claim::Stale,
    })
}

/// Inserts new deliveries, keeping any that already exist (fan-out may run twice), the
/// one at index `i` claimed until `claims[i]` (microseconds) where given. Says which
/// were inserted.
fn insert_deliveries(c: &rusqlite::Connection, ds: &[Delivery], claims: &[Option<i64>]) -> anyhow::Result<Vec<bool>> {
    let mut st = c.prepare_cached(&format!(
        "INSERT OR IGNORE INTO deliveries ({DELIVERY_COLUMNS}, claimed_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?;
    let mut inserted = Vec::with_capacity(ds.len());
    for (i, d) in ds.iter().enumerate() {
        let n = st.execute(params![
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
            claims.get(i).copied().flatten()
        ])?;
        inserted.push(n == 1);
    }
    Ok(inserted)
}

#[async_trait]
impl DeliveryStore for SqliteDeliveryStore {
    async fn create(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let ds = deliveries.to_vec();
        self.db.write(move |c| insert_deliveries(c, &ds, &[])).await?;
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, webhook: &WebhookId, id: &DeliveryId) -> Result<Delivery, StoreError> {
        let (tenant, webhook, id) = (tenant.clone(), webhook.clone(), id.clone());
        let d = self.db.read(move |c| read_delivery(c, id.as_str())).await?;
        match d {
            Some(d) if d.tenant == tenant && d.webhook_id == webhook => Ok(d),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn list(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let (tenant, webhook) = (tenant.clone(), webhook.clone());
        let (micros, id) = after_bounds(page, true);
        let id = if id.is_empty() { "\u{10ffff}".to_owned() } else { id };
        let limit = page.limit;
        let status = status.map(|s| s.as_str());
        let items = self
            .db
            .read(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE tenant = ?1 AND webhook_id = ?2 AND (created_at, id) < (?3, ?4)
                     AND (?5 IS NULL OR status = ?5) ORDER BY created_at DESC, id DESC LIMIT ?6"
                ))?;
                let mut rows = st.query(params![tenant.as_str(), webhook.as_str(), micros, id, status, limit + 1])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(delivery_from_row(r)?);
                }
                Ok(out)
            })
            .await?;
        Ok(Page::from_overfetch(items, limit, |d| Cursor { micros: to_micros(&d.created_at), id: d.id.to_string() }))
    }

    async fn attempts(&self, tenant: &TenantId, id: &DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        Ok(self
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
        let job = job.clone();
        Ok(self.db.write(move |c| claim_delivery(c, &job, to_micros(&now), to_micros(&lease_until))).await?)
    }

    async fn record_attempt(&self, d: &Delivery, a: &Attempt) -> Result<(), StoreError> {
        let (d, a) = (d.clone(), a.clone());
        self.db
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
        let n = self.db.write(move |c| Ok(save_state(c, &d, d.attempts)?)).await?;
        if n == 0 { Err(StoreError::Conflict) } else { Ok(()) }
    }

    async fn release(&self, tenant: &TenantId, id: &DeliveryId) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.db
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
        self.db
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

// ---------------------------------------------------------------- queue

/// The durable delay queue in SQLite. Taking a job pushes its due time to the end of
/// the lease (as SQS's visibility timeout does), so an unacknowledged job comes back.
///
/// With a hand-off ([`SqliteDeliveryQueue::hand_off`]), jobs due at once go to the
/// worker in memory as well: they are stored already leased, in the same write, and
/// passed on after the commit, so the worker need not take them back out of the
/// table. Only as many as the hand-off has room for; the rest wait in the table. A
/// handed-off job is as durable as any other: if it is never acknowledged (the
/// process died, say) its lease runs out, or [`Database::recover`] releases it at the
/// next start, and it is taken from the table.
#[derive(Clone)]
pub struct SqliteDeliveryQueue {
    db: Database,
    /// Jobs committed by this process (clones share it).
    enqueued_total: Arc<AtomicU64>,
    handoff: Arc<std::sync::OnceLock<HandOff>>,
    /// Whether the deliveries live in this queue's database (see `storing_deliveries`).
    stores_deliveries: bool,
}

/// When a lease taken at `now_us` (microseconds) ends.
fn lease_end(now_us: i64, lease: Duration) -> i64 {
    now_us.saturating_add(lease.as_micros().min(i64::MAX as u128) as i64)
}

/// Where jobs due at once are handed to the worker, and how long they are leased for.
struct HandOff {
    to: tokio::sync::mpsc::Sender<Leased>,
    lease: Duration,
}

impl SqliteDeliveryQueue {
    /// A queue over `db`.
    pub fn new(db: Database) -> Self {
        SqliteDeliveryQueue { db, enqueued_total: Arc::new(AtomicU64::new(0)), handoff: Arc::default(), stores_deliveries: false }
    }

    /// Declares that the deliveries live in this queue's database (a
    /// [`SqliteDeliveryStore`] over the same [`Database`], as local mode wires them):
    /// `enqueue_new` then stores new deliveries and their jobs in one write, instead of
    /// one write through the store and one here, and jobs reach the worker with their
    /// deliveries already claimed ([`Leased::claimed`]): a new delivery whose job is
    /// handed over is stored claimed, and `take_due` claims each job's delivery in the
    /// write that takes the job (unless it is claimed elsewhere or has moved on, which
    /// the send step then finds out for itself).
    pub fn storing_deliveries(mut self) -> Self {
        self.stores_deliveries = true;
        self
    }

    /// From now on, hands up to `room` jobs due at once to the returned receiver, each
    /// leased for `lease` (see the type's documentation). Once only, for the one
    /// worker of this queue; `None` if a hand-off already exists.
    pub fn hand_off(&self, room: usize, lease: Duration) -> Option<tokio::sync::mpsc::Receiver<Leased>> {
        let (to, from) = tokio::sync::mpsc::channel(room.max(1));
        self.handoff.set(HandOff { to, lease }).ok().map(|()| from)
    }

    /// How many jobs this process has queued, counted once their transaction committed.
    pub fn enqueued_total(&self) -> u64 {
        self.enqueued_total.load(Ordering::Acquire)
    }

    /// When the earliest job is due (leased ones included), if any.
    pub async fn next_due(&self) -> anyhow::Result<Option<Timestamp>> {
        let v: Option<i64> = self.db.read(|c| Ok(c.prepare_cached("SELECT MIN(due_at) FROM queue")?.query_row([], |r| r.get(0))?)).await?;
        Ok(v.map(from_micros))
    }

    /// Jobs in the queue (leased ones included).
    pub async fn len(&self) -> anyhow::Result<u64> {
        let n: i64 = self.db.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM queue", [], |r| r.get(0))?)).await?;
        Ok(n as u64)
    }

    /// Waits until a job is queued (or a spurious wake-up).
    pub async fn enqueued(&self) {
        self.db.queue_signal.notified().await
    }

    /// Stores `event` (if any, marked fanned out) and `deliveries` (new ones; may be
    /// none) and queues `jobs`, in one write. A new delivery whose job is handed over is
    /// stored claimed for the job's lease, and the claim goes with the job
    /// ([`Leased::claimed`]), so the worker skips a write. `false`, storing nothing, if
    /// the event's id exists.
    async fn store_jobs(&self, event: Option<Event>, deliveries: Vec<Delivery>, jobs: &[Job]) -> anyhow::Result<bool> {
        // Room in the hand-off for jobs due now, reserved before the write: a job stored
        // leased is sure to reach the worker (or to come back when its lease ends).
        let now = SystemClock.now();
        let handoff = self.handoff.get();
        let permits: Vec<_> =
            jobs.iter().map(|j| handoff.filter(|_| j.due_at <= now).and_then(|h| h.to.clone().try_reserve_owned().ok())).collect();
        let leased_until = handoff.map(|h| lease_end(to_micros(&now), h.lease));
        // Which job (by index) each handed-over delivery goes with.
        let handed: std::collections::HashMap<&str, usize> = jobs
            .iter()
            .zip(&permits)
            .enumerate()
            .filter(|(_, (_, p))| p.is_some())
            .map(|(i, (j, _))| (j.delivery_id.as_str(), i))
            .collect();
        let job_of: Vec<Option<usize>> = deliveries.iter().map(|d| handed.get(d.id.as_str()).copied()).collect();
        let claims: Vec<Option<i64>> = job_of.iter().map(|j| j.and(leased_until)).collect();
        let rows = jobs
            .iter()
            .zip(&permits)
            .map(|(j, p)| Ok((to_micros(&j.due_at), p.as_ref().and(leased_until), serde_json::to_string(j)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let waiting = permits.iter().filter(|p| p.is_none()).count();
        // Shared with the write, which may run twice, and taken back after it.
        let deliveries = Arc::new(deliveries);
        let stored_deliveries = deliveries.clone();
        let stored = self
            .db
            .write(move |c| {
                let deliveries = &stored_deliveries;
                // One write, so all of it or none of it (see Database).
                if let Some(e) = &event
                    && !insert_event(c, e, true)?
                {
                    return Ok(None);
                }
                let inserted = insert_deliveries(c, deliveries, &claims)?;
                let mut ids = Vec::with_capacity(rows.len());
                {
                    let mut st = c.prepare_cached("INSERT INTO queue (due_at, leased, job) VALUES (?1, ?2, ?3)")?;
                    for (due, lease, job) in &rows {
                        st.execute(params![lease.unwrap_or(*due), lease.is_some(), job])?;
                        ids.push(c.last_insert_rowid());
                    }
                }
                Ok(Some((ids, inserted)))
            })
            .await?;
        let Some((ids, inserted)) = stored else { return Ok(false) };
        // The write is dropped before its caller hears back, so this is the last handle.
        let deliveries = Arc::try_unwrap(deliveries).unwrap_or_else(|d| (*d).clone());
        self.enqueued_total.fetch_add(jobs.len() as u64, Ordering::AcqRel);
        // The claims taken: only on deliveries this write inserted (one stored before
        // is left as it was, claim and all).
        let mut claimed: Vec<Option<HeldClaim>> = vec![None; jobs.len()];
        for ((d, job), inserted) in deliveries.into_iter().zip(job_of).zip(inserted) {
            if let (Some(j), true, Some(until)) = (job, inserted, leased_until) {
                claimed[j] = Some(HeldClaim { delivery: d, until: from_micros(until) });
            }
        }
        for (((job, permit), id), claimed) in jobs.iter().zip(permits).zip(ids).zip(claimed) {
            if let Some(p) = permit {
                p.send(Leased { receipt: id.to_string(), job: job.clone(), claimed });
            }
        }
        if waiting > 0 {
            self.db.queue_signal.notify_one();
        }
        Ok(true)
    }
}

#[async_trait]
impl DeliveryQueue for SqliteDeliveryQueue {
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        self.store_jobs(None, Vec::new(), jobs).await?;
        Ok(())
    }

    async fn enqueue_new(&self, store: &dyn DeliveryStore, deliveries: &[Delivery], jobs: &[Job]) -> Result<(), FanoutError> {
        if !self.stores_deliveries {
            return hookline_domain::ports::store_then_enqueue(self, store, deliveries, jobs).await;
        }
        self.store_jobs(None, deliveries.to_vec(), jobs).await.map_err(QueueError::from)?;
        Ok(())
    }

    async fn take_due(&self, now: Timestamp, max: usize, lease: Duration) -> Result<Vec<Leased>, QueueError> {
        let now_us = to_micros(&now);
        let until = lease_end(now_us, lease);
        // Holding the deliveries too, the take claims each job's delivery for its lease
        // in the same write, as the hand-off does for new ones.
        let claim = self.stores_deliveries;
        let rows = self
            .db
            .write(move |c| {
                let mut taken = Vec::new();
                {
                    let mut sel = c.prepare_cached("SELECT id, job FROM queue WHERE due_at <= ?1 ORDER BY due_at LIMIT ?2")?;
                    let mut upd = c.prepare_cached("UPDATE queue SET due_at = ?2, leased = 1 WHERE id = ?1")?;
                    let found: Vec<(i64, String)> =
                        sel.query_map(params![now_us, max as i64], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
                    for (id, text) in found {
                        upd.execute(params![id, until])?;
                        let job = serde_json::from_str::<Job>(&text);
                        let claimed = match &job {
                            Ok(job) if claim => match claim_delivery(c, job, now_us, until)? {
                                Claim::Claimed(delivery) => Some(HeldClaim { delivery, until: from_micros(until) }),
                                // The send step finds out for itself, as without a claim.
                                Claim::Busy | Claim::Stale => None,
                            },
                            _ => None,
                        };
                        taken.push((id, job, claimed));
                    }
                }
                Ok(taken)
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, job, claimed) in rows {
            match job {
                Ok(job) => out.push(Leased { receipt: id.to_string(), job, claimed }),
                Err(e) => {
                    // Never silently: a job this build cannot read stays in the table,
                    // parked far in the future, and is reported.
                    tracing::error!(row = id, error = %e, "unreadable queue job parked");
                    self.db.write(move |c| Ok(c.execute("UPDATE queue SET due_at = ?2 WHERE id = ?1", params![id, i64::MAX])?)).await?;
                }
            }
        }
        Ok(out)
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        let id: i64 = receipt.parse().context("malformed receipt")?;
        // Deferred: the job is leased, so nobody takes it meanwhile, and if a crash loses
        // the removal, the job comes back after the restart and is found done (stale).
        self.db.write_deferred("acknowledge a job", move |c| {
            c.prepare_cached("DELETE FROM queue WHERE id = ?1")?.execute([id])?;
            Ok(())
        })?;
        Ok(())
    }
}

// ---------------------------------------------------------------- api keys

/// API keys in SQLite, by hash.
#[derive(Clone)]
pub struct SqliteApiKeyStore {
    db: Database,
}

impl SqliteApiKeyStore {
    /// A store over `db`.
    pub fn new(db: Database) -> Self {
        SqliteApiKeyStore { db }
    }
}

#[async_trait]
impl ApiKeyStore for SqliteApiKeyStore {
    async fn insert(&self, k: &ApiKey) -> Result<(), StoreError> {
        let k = k.clone();
        let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
        let scopes = serde_json::to_string(&scopes).map_err(anyhow::Error::from)?;
        self.db
            .write(move |c| {
                let r = c.execute(
                    "INSERT INTO api_keys (id, hash, tenant, scopes, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![k.id.as_str(), k.hash, k.tenant.as_str(), scopes, k.description, to_micros(&k.created_at)],
                );
                match r {
                    Ok(_) => Ok(Ok(())),
                    Err(e) if is_unique_violation(&e) => Ok(Err(StoreError::Conflict)),
                    Err(e) => Err(e.into()),
                }
            })
            .await?
    }

    async fn find_by_hash(&self, hash: &str) -> Result<ApiKey, StoreError> {
        let hash = hash.to_owned();
        self.db
            .read(move |c| {
                let row = c
                    .prepare_cached("SELECT id, tenant, scopes, description, created_at, hash FROM api_keys WHERE hash = ?1")?
                    .query_row([&hash], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                        ))
                    })
                    .optional()?;
                let Some((id, tenant, scopes, description, created_at, hash)) = row else { return Ok(None) };
                let scopes: Vec<String> = serde_json::from_str(&scopes)?;
                Ok(Some(ApiKey {
                    id: ApiKeyId::parse(&id)?,
                    tenant: TenantId::parse(&tenant)?,
                    scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                    description,
                    created_at: from_micros(created_at),
                    hash,
                }))
            })
            .await?
            .ok_or(StoreError::NotFound)
    }
}
