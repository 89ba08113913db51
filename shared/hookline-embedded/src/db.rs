//! The SQLite database shared by the embedded adapters.

use anyhow::Context;
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    scopes TEXT NOT NULL,
    description TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    endpoint_url TEXT NOT NULL,
    listened_events TEXT NOT NULL,
    description TEXT,
    active INTEGER NOT NULL,
    headers TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    disabled_reason TEXT,
    disabled_at INTEGER,
    failing_since INTEGER,
    failed_deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS webhooks_by_tenant ON webhooks (tenant, created_at, id);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    document TEXT NOT NULL,
    fanned_out INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_tenant ON events (tenant, created_at, id);
CREATE INDEX IF NOT EXISTS events_to_fan_out ON events (seq) WHERE fanned_out = 0;
CREATE TABLE IF NOT EXISTS idempotency_keys (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_status_code INTEGER,
    last_attempt_at INTEGER,
    next_attempt_at INTEGER,
    delivered_at INTEGER,
    created_at INTEGER NOT NULL,
    claimed_until INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_by_webhook ON deliveries (tenant, webhook_id, created_at, id);
CREATE TABLE IF NOT EXISTS attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    attempted_at INTEGER NOT NULL,
    status_code INTEGER,
    succeeded INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    error TEXT,
    response_body TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_delivery ON attempts (delivery_id, attempted_at);
CREATE INDEX IF NOT EXISTS attempts_by_webhook ON attempts (tenant, webhook_id, attempted_at);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    due_at INTEGER NOT NULL,
    leased INTEGER NOT NULL DEFAULT 0,
    job TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_by_due ON queue (due_at);
"#;

/// One SQLite database file, shared by every embedded adapter of a process.
///
/// A single connection behind a mutex: SQLite serialises writers anyway, and local
/// mode's statements are short. Calls run on tokio's blocking pool.
#[derive(Clone)]
pub struct Database {
    conn: Arc<Mutex<Connection>>,
    /// Woken when a job is queued, so the local worker need not poll.
    pub(crate) queue_signal: Arc<Notify>,
    /// Woken when an event is appended, so the local fan-out reader need not poll.
    pub(crate) event_signal: Arc<Notify>,
}

impl Database {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
        // WAL: readers never block the writer. synchronous=NORMAL: a commit survives a
        // process crash (kill -9); only an OS crash or power cut can lose the last ones.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
        )?;
        conn.execute_batch(SCHEMA).context("creating schema")?;
        Ok(Database { conn: Arc::new(Mutex::new(conn)), queue_signal: Arc::new(Notify::new()), event_signal: Arc::new(Notify::new()) })
    }

    /// Opens a private in-memory database (for tests).
    pub fn in_memory() -> anyhow::Result<Self> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Database { conn: Arc::new(Mutex::new(conn)), queue_signal: Arc::new(Notify::new()), event_signal: Arc::new(Notify::new()) })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn call<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| anyhow::anyhow!("database mutex poisoned"))?;
            f(&mut guard)
        })
        .await
        .context("database task panicked")?
    }

    /// Hands back work that was in flight when the previous process died: queued jobs
    /// that were taken but never acknowledged become due now, and delivery claims are
    /// dropped. Call once at start, before any worker runs.
    pub async fn recover(&self, now_micros: i64) -> anyhow::Result<(usize, usize)> {
        self.call(move |c| {
            let jobs = c.execute("UPDATE queue SET leased = 0, due_at = MIN(due_at, ?1) WHERE leased = 1", [now_micros])?;
            let claims = c.execute("UPDATE deliveries SET claimed_until = NULL WHERE claimed_until IS NOT NULL", [])?;
            Ok((jobs, claims))
        })
        .await
    }
}
