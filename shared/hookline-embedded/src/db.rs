//! The SQLite database shared by the embedded adapters.

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
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

/// Most writes committed together in one transaction (group commit).
const MAX_GROUP: usize = 256;
/// Statements kept prepared per connection.
const STATEMENT_CACHE: usize = 64;

/// What the writer thread calls back once the transaction holding a write ended:
/// `None` when it committed, the error when it did not.
type Completion = Box<dyn FnOnce(Option<&anyhow::Error>) + Send>;
/// One write: runs its statements, says whether they succeeded, and hands back the
/// completion that answers the caller.
type WriteJob = Box<dyn FnOnce(&mut Connection) -> (bool, Completion) + Send>;

/// One SQLite database file, shared by every embedded adapter of a process.
///
/// Writes go to one writer thread that owns the only writing connection. It takes
/// every write waiting at that moment (up to [`MAX_GROUP`]), runs each in its own
/// savepoint (a failing write rolls back alone), and commits them in one transaction:
/// one WAL commit for many concurrent writes (group commit). Each caller is answered
/// only after the commit, so a write that returned is durable.
///
/// Reads run on tokio's blocking pool over a small pool of read connections; in WAL
/// mode they see the last commit and never wait for the writer. An in-memory database
/// (tests) has no second connection, so its reads go to the writer too.
#[derive(Clone)]
pub struct Database {
    writer: std::sync::mpsc::Sender<WriteJob>,
    readers: Option<Arc<ReadPool>>,
    /// Woken when a job is queued, so the local worker need not poll.
    pub(crate) queue_signal: Arc<Notify>,
    /// Woken when an event is appended, so the local fan-out reader need not poll.
    pub(crate) event_signal: Arc<Notify>,
}

/// Read connections, opened as needed and kept for reuse.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn take(&self) -> anyhow::Result<Connection> {
        if let Some(c) = self.idle.lock().map_err(|_| anyhow::anyhow!("read pool poisoned"))?.pop() {
            return Ok(c);
        }
        let c = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_context(|| format!("opening database {}", self.path.display()))?;
        c.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")?;
        c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(c)
    }

    fn give_back(&self, c: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(c);
        }
    }
}

/// The writer thread: group commit, as described on [`Database`].
fn write_loop(mut conn: Connection, jobs: std::sync::mpsc::Receiver<WriteJob>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let mut done: Vec<Completion> = Vec::with_capacity(group.len());
        let outcome = (|| -> anyhow::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            for job in group.drain(..) {
                conn.execute_batch("SAVEPOINT w")?;
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
                let ok = match ran {
                    Ok((ok, completion)) => {
                        done.push(completion);
                        ok
                    }
                    // The caller's answer was dropped with the job: it gets an error.
                    Err(_) => false,
                };
                if ok {
                    conn.execute_batch("RELEASE w")?;
                } else {
                    conn.execute_batch("ROLLBACK TO w; RELEASE w")?;
                }
            }
            conn.execute_batch("COMMIT")?;
            Ok(())
        })();
        match outcome {
            Ok(()) => done.into_iter().for_each(|d| d(None)),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                tracing::error!(error = %e, "database transaction failed; its writes are refused");
                // Jobs of the group that never ran are dropped: their callers get an error.
                group.clear();
                done.into_iter().for_each(|d| d(Some(&e)));
            }
        }
    }
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
        let readers = ReadPool { path: path.to_owned(), idle: Mutex::new(Vec::new()) };
        Self::start(conn, Some(Arc::new(readers)))
    }

    /// Opens a private in-memory database (for tests).
    pub fn in_memory() -> anyhow::Result<Self> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Self::start(conn, None)
    }

    fn start(conn: Connection, readers: Option<Arc<ReadPool>>) -> anyhow::Result<Self> {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (tx, rx) = std::sync::mpsc::channel();
        // The thread ends when the last handle (and with it the last sender) is dropped.
        std::thread::Builder::new().name("hookline-db-writer".into()).spawn(move || write_loop(conn, rx))?;
        Ok(Database { writer: tx, readers, queue_signal: Arc::new(Notify::new()), event_signal: Arc::new(Notify::new()) })
    }

    /// Runs `f` on the writer thread, inside the group's transaction; answers after the
    /// commit. An `Err` from `f` rolls back what `f` did, and only that.
    pub(crate) async fn write<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<anyhow::Result<T>>();
        let job: WriteJob = Box::new(move |c: &mut Connection| {
            let result = f(c);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |failed: Option<&anyhow::Error>| {
                let _ = tx.send(match failed {
                    None => result,
                    Some(e) => Err(anyhow::anyhow!("transaction failed: {e:#}")),
                });
            });
            (ok, completion)
        });
        self.writer.send(job).map_err(|_| anyhow::anyhow!("database writer has stopped"))?;
        rx.await.map_err(|_| anyhow::anyhow!("database write was abandoned (its transaction failed or it panicked)"))?
    }

    /// Runs `f` with a read connection on the blocking pool. `f` must not write.
    pub(crate) async fn read<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let Some(pool) = self.readers.clone() else { return self.write(f).await };
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.take()?;
            let r = f(&mut conn);
            pool.give_back(conn);
            r
        })
        .await
        .context("database read panicked")?
    }

    /// Hands back work that was in flight when the previous process died: queued jobs
    /// that were taken but never acknowledged become due now, and delivery claims are
    /// dropped. Call once at start, before any worker runs.
    pub async fn recover(&self, now_micros: i64) -> anyhow::Result<(usize, usize)> {
        self.write(move |c| {
            let jobs = c.execute("UPDATE queue SET leased = 0, due_at = MIN(due_at, ?1) WHERE leased = 1", [now_micros])?;
            let claims = c.execute("UPDATE deliveries SET claimed_until = NULL WHERE claimed_until IS NOT NULL", [])?;
            Ok((jobs, claims))
        })
        .await
    }
}
