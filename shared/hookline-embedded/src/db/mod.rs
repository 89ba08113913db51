//! The SQLite database shared by the embedded adapters.

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
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
/// Longest a deferred write waits for a group to join before it commits by itself.
const DEFERRED_WAIT: std::time::Duration = std::time::Duration::from_millis(20);
/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Checkpoint passes in a row while writes keep coming: each copies what was appended
/// during the one before, so the last leaves only a few frames behind.
const CHECKPOINT_PASSES: usize = 8;
/// New frames found by a pass (appended while the one before ran) at or below which
/// the checkpointer stops passing.
const CHECKPOINT_SETTLED: i64 = 16;
/// WAL bytes after which the checkpointer asks the writer to let the WAL start over.
const RESTART_WAL_BYTES: i64 = 128 << 20;
/// WAL bytes after which the writer's catch-up waits for readers (a safety net; the
/// WAL restarts long before this in practice).
const FORCE_RESTART_BYTES: i64 = 512 << 20;
/// Bytes the WAL file is truncated to when it restarts.
const WAL_SIZE_LIMIT: i64 = 256 << 20;
/// Statements kept prepared per connection.
const STATEMENT_CACHE: usize = 64;

/// One write for the writer thread.
///
/// A group first runs its writes one after the other in one transaction, with no
/// savepoints (a savepoint copies every page a write touches before it changes it:
/// about 15 % of the writer's time). Only when one of them fails or panics is the
/// transaction rolled back and the group run again, each write in its own savepoint,
/// so that the failing one rolls back alone. So a write may run twice: it must do nothing
/// outside the transaction beside computing its result.
trait Write: Send {
    /// Runs the write's statements; says whether they succeeded.
    fn run(&mut self, c: &mut Connection) -> bool;
    /// Answers the caller once the transaction ended: `failed` is the transaction's
    /// error when it did not commit. A write that panicked answers with an error.
    fn finish(self: Box<Self>, failed: Option<&anyhow::Error>);
}

type WriteJob = Box<dyn Write>;

/// A write: `f` runs in the group's transaction, and once that ended `done` gets what
/// `f` returned the last time it ran, and the transaction's error, if it failed.
struct Job<T, F, D> {
    f: F,
    done: D,
    result: Option<anyhow::Result<T>>,
}

impl<T, F, D> Write for Job<T, F, D>
where
    T: Send + 'static,
    F: FnMut(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    D: FnOnce(anyhow::Result<T>, Option<&anyhow::Error>) + Send + 'static,
{
    fn run(&mut self, c: &mut Connection) -> bool {
        // A result of an earlier run must not outlive a panic in this one.
        self.result = None;
        let result = (self.f)(c);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, failed: Option<&anyhow::Error>) {
        let Job { f, done, result } = *self;
        // What the write holds goes before its caller hears back.
        drop(f);
        let result = result.unwrap_or_else(|| match failed {
            Some(_) => Err(anyhow::anyhow!("database write did not run: its transaction failed")),
            None => Err(anyhow::anyhow!("database write panicked")),
        });
        done(result, failed);
    }
}

fn write_job<T, F, D>(f: F, done: D) -> WriteJob
where
    T: Send + 'static,
    F: FnMut(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    D: FnOnce(anyhow::Result<T>, Option<&anyhow::Error>) + Send + 'static,
{
    Box::new(Job { f, done, result: None })
}

/// Runs one write, catching a panic: `None` when it panicked.
fn run_caught(job: &mut WriteJob, conn: &mut Connection) -> Option<bool> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(conn))).ok()
}

/// Runs `group` in one transaction and commits it, as described on [`Write`]. The write
/// that panicked in the first run is left out of the second; a write that panicked
/// keeps no result, so its caller gets an error. `Err` when the transaction itself
/// failed.
fn commit_group(conn: &mut Connection, group: &mut [WriteJob]) -> anyhow::Result<()> {
    run(conn, "BEGIN IMMEDIATE")?;
    // The first run, without savepoints, stops at the first write that fails or
    // panics: its place, and whether it panicked.
    let mut stopped = None;
    for (i, job) in group.iter_mut().enumerate() {
        let outcome = run_caught(job, conn);
        if outcome != Some(true) {
            stopped = Some((i, outcome.is_none()));
            break;
        }
    }
    if let Some((at, panicked)) = stopped {
        run(conn, "ROLLBACK")?;
        run(conn, "BEGIN IMMEDIATE")?;
        for (i, job) in group.iter_mut().enumerate() {
            if panicked && i == at {
                continue;
            }
            run(conn, "SAVEPOINT w")?;
            if run_caught(job, conn) != Some(true) {
                run(conn, "ROLLBACK TO w")?;
            }
            run(conn, "RELEASE w")?;
        }
    }
    run(conn, "COMMIT")?;
    Ok(())
}

/// What the writer thread receives: a write whose caller waits for its commit, or a
/// deferred one, committed with the next group (see [`Database::write_deferred`]).
enum Msg {
    Now(WriteJob),
    Later(WriteJob),
}

/// What the checkpointer and the writer share about the WAL.
#[derive(Default)]
struct WalState {
    /// WAL frames after which the WAL should start over, and after which it must.
    restart_at: i64,
    force_restart_at: i64,
    /// Set by the checkpointer when the WAL is long: the writer then catches up.
    catch_up: AtomicBool,
    /// Frames in the WAL at the checkpointer's last look.
    frames: AtomicI64,
    /// Times the writer caught up (a tiny checkpoint between two groups).
    catch_ups: AtomicU64,
    /// Times the WAL started over from its beginning, as seen by the checkpointer.
    restarts: AtomicU64,
}

/// One SQLite database file, shared by every embedded adapter of a process.
///
/// Writes go to one writer thread that owns the only writing connection. It takes
/// every write waiting at that moment (up to 256), runs them and commits them in one
/// transaction: one WAL commit for many concurrent writes (group commit). A failing
/// write rolls back alone (see [`Write`]). Each caller is answered
/// only after the commit, so a write that returned is durable.
///
/// Checkpoints (copying the WAL back into the file, with an fsync of each) run on a
/// checkpointer thread, so the writer never waits for a large one. The WAL can only
/// start over from its beginning when everything in it has been copied at the moment
/// the writer begins a transaction, which never happens by itself under steady
/// writes; so when the WAL grows long the checkpointer copies it in passes until a few
/// frames are left and asks the writer to copy those between two groups, after which
/// the WAL restarts. SQLite syncs the database file only when a checkpoint reaches the
/// WAL's end, which would leave the catch-up to flush everything the passes copied
/// (tens of milliseconds); so the checkpointer syncs the file after each of those
/// passes itself. The catch-up (a small copy and its fsyncs, about a millisecond) is
/// the one pause the writer still takes, once each time the WAL passes 128 MiB.
///
/// Reads run on tokio's blocking pool over a small pool of read connections; in WAL
/// mode they see the last commit and never wait for the writer. An in-memory database
/// (tests) has no second connection, so its reads go to the writer too.
#[derive(Clone)]
pub struct Database {
    writer: std::sync::mpsc::Sender<Msg>,
    /// Transactions committed by the writer thread.
    commits: Arc<AtomicU64>,
    wal: Arc<WalState>,
    /// Keeps the checkpointer thread alive while any handle exists.
    _checkpointer: Option<std::sync::mpsc::Sender<()>>,
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

/// Runs one statement, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The writer thread: group commit, as described on [`Database`].
fn write_loop(mut conn: Connection, jobs: std::sync::mpsc::Receiver<Msg>, commits: Arc<AtomicU64>, wal: Arc<WalState>) {
    use std::sync::mpsc::RecvTimeoutError;
    // Deferred writes waiting for a commit, and when the oldest of them must have one.
    let mut later: Vec<WriteJob> = Vec::new();
    let mut due = std::time::Instant::now();
    let mut open = true;
    while open || !later.is_empty() {
        // Wait for a write that wants its commit now; deferred ones ride along with it,
        // or commit by themselves once the oldest has waited DEFERRED_WAIT.
        let mut now: Vec<WriteJob> = Vec::new();
        if open {
            let next = if later.is_empty() {
                jobs.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                jobs.recv_timeout(due.saturating_duration_since(std::time::Instant::now()))
            };
            match next {
                Ok(Msg::Now(j)) => now.push(j),
                Ok(Msg::Later(j)) => {
                    if later.is_empty() {
                        due = std::time::Instant::now() + DEFERRED_WAIT;
                    }
                    later.push(j);
                    if later.len() < MAX_GROUP {
                        continue;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        }
        while later.len() + now.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(Msg::Now(j)) => now.push(j),
                Ok(Msg::Later(j)) => later.push(j),
                Err(_) => break,
            }
        }
        if wal.catch_up.swap(false, Ordering::AcqRel) {
            catch_up(&conn, &wal);
        }
        // Deferred writes first: each was sent before any write of the same caller that
        // follows it, so this keeps every caller's order.
        let mut group: Vec<WriteJob> = later.drain(..).chain(now).collect();
        if group.is_empty() {
            continue;
        }
        match commit_group(&mut conn, &mut group) {
            Ok(()) => {
                commits.fetch_add(1, Ordering::Relaxed);
                group.into_iter().for_each(|w| w.finish(None))
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                tracing::error!(error = %e, "database transaction failed; its writes are refused");
                group.into_iter().for_each(|w| w.finish(Some(&e)));
            }
        }
    }
}

/// The writer's part of letting the WAL restart: copy the few frames the checkpointer
/// left (between two groups, so nothing is appended meanwhile); the next transaction
/// then starts the WAL over, unless a reader is still on an old snapshot.
fn catch_up(conn: &Connection, wal: &WalState) {
    let mode = if wal.frames.load(Ordering::Acquire) >= wal.force_restart_at { "RESTART" } else { "PASSIVE" };
    match conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(())) {
        Ok(()) => {
            wal.catch_ups.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => tracing::warn!(error = %e, "WAL catch-up failed; the checkpointer will ask again"),
    }
}

/// The checkpointer thread: every [`CHECKPOINT_EVERY`], copies the WAL back in passes
/// and, when the WAL is long, asks the writer to catch up (see [`Database`]).
fn checkpoint_loop(conn: Connection, file: std::fs::File, stopped: std::sync::mpsc::Receiver<()>, wal: Arc<WalState>) {
    let mut last_frames = 0i64;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
        // One pass, unless the WAL is due to start over: then more, each copying what was
        // appended while the one before ran, until one finds only a few new frames, so
        // the writer's catch-up has little left to do.
        let mut frames = None;
        let mut before = last_frames;
        for _ in 0..CHECKPOINT_PASSES {
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
                // -1: the pass could not start (another checkpoint held the lock, or the
                // WAL's header was changing under a commit). Not a WAL of -1 frames: the
                // next tick tries again.
                Ok(log) if log < 0 => break,
                Ok(log) => {
                    frames = Some(log);
                    if log < wal.restart_at {
                        break;
                    }
                    // A pass that stops short of the WAL's end leaves the pages it copied
                    // unsynced in the database file (SQLite syncs them only when a
                    // checkpoint reaches the end, which is the writer's catch-up). Sync
                    // them here, so the catch-up's own sync has only its few pages to write.
                    if let Err(e) = file.sync_data() {
                        tracing::warn!(error = %e, "syncing the database file failed; the writer's catch-up will sync it");
                    }
                    let settled = (log - before).abs() <= CHECKPOINT_SETTLED;
                    before = log;
                    if settled {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the next one will try again");
                    break;
                }
            }
        }
        let Some(frames) = frames else { continue };
        if frames < last_frames {
            wal.restarts.fetch_add(1, Ordering::Relaxed);
        }
        last_frames = frames;
        wal.frames.store(frames, Ordering::Release);
        if frames >= wal.restart_at {
            wal.catch_up.store(true, Ordering::Release);
        }
    }
}

impl Database {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
        // WAL: readers never block the writer. synchronous=NORMAL: a commit survives a
        // process crash (kill -9); only an OS crash or power cut can lose the last ones.
        // temp_store=MEMORY: savepoints (a group run again after a failing write)
        // journal in memory, not in a temporary file.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;",
        )?;
        conn.execute_batch(SCHEMA).context("creating schema")?;
        // The writer never checkpoints by itself (a checkpoint's fsyncs would stall every
        // write behind it); the checkpointer thread does, see [`Database`].
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        let checkpoints = Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
        checkpoints.execute_batch("PRAGMA busy_timeout = 5000;")?;
        let file = std::fs::File::open(path).with_context(|| format!("opening database {}", path.display()))?;
        let (keep_alive, stopped) = std::sync::mpsc::channel::<()>();
        // A WAL frame is a page and a 24-byte header.
        let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let wal = Arc::new(WalState {
            restart_at: RESTART_WAL_BYTES / (page + 24),
            force_restart_at: FORCE_RESTART_BYTES / (page + 24),
            ..WalState::default()
        });
        let shared = wal.clone();
        std::thread::Builder::new()
            .name("hookline-db-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoints, file, stopped, shared))?;
        let readers = ReadPool { path: path.to_owned(), idle: Mutex::new(Vec::new()) };
        Self::start(conn, Some(Arc::new(readers)), Some(keep_alive), wal)
    }

    /// Opens a private in-memory database (for tests).
    pub fn in_memory() -> anyhow::Result<Self> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Self::start(conn, None, None, Arc::new(WalState { restart_at: i64::MAX, force_restart_at: i64::MAX, ..WalState::default() }))
    }

    fn start(
        conn: Connection,
        readers: Option<Arc<ReadPool>>,
        checkpointer: Option<std::sync::mpsc::Sender<()>>,
        wal: Arc<WalState>,
    ) -> anyhow::Result<Self> {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (tx, rx) = std::sync::mpsc::channel();
        // The thread ends when the last handle (and with it the last sender) is dropped.
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        let shared = wal.clone();
        std::thread::Builder::new().name("hookline-db-writer".into()).spawn(move || write_loop(conn, rx, counter, shared))?;
        Ok(Database {
            writer: tx,
            commits,
            wal,
            _checkpointer: checkpointer,
            readers,
            queue_signal: Arc::new(Notify::new()),
            event_signal: Arc::new(Notify::new()),
        })
    }

    /// Whether `other` is a handle on this same database (the same writer).
    pub(crate) fn same_as(&self, other: &Database) -> bool {
        Arc::ptr_eq(&self.commits, &other.commits)
    }

    /// Runs `f` on the writer thread, inside the group's transaction; answers after the
    /// commit. An `Err` from `f` rolls back what `f` did, and only that. `f` may run
    /// twice (see [`Write`]): it must do nothing outside the transaction.
    pub(crate) async fn write<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<anyhow::Result<T>>();
        let job = write_job(f, move |result, failed| {
            let _ = tx.send(match failed {
                None => result,
                Some(e) => Err(anyhow::anyhow!("transaction failed: {e:#}")),
            });
        });
        self.writer.send(Msg::Now(job)).map_err(|_| anyhow::anyhow!("database writer has stopped"))?;
        rx.await.map_err(|_| anyhow::anyhow!("database write was abandoned"))?
    }

    /// Sends `f` to the writer thread without waiting for it: it runs in the next group
    /// that commits, at the latest [`DEFERRED_WAIT`] later, and never causes a commit of
    /// its own while other writes keep coming. For writes whose loss in a crash is
    /// harmless (the work they record is found done and skipped when it comes back),
    /// such as removing an acknowledged job. Writes sent later by the same caller run
    /// after it. A failure is logged, since nobody waits for it.
    pub(crate) fn write_deferred<F>(&self, what: &'static str, f: F) -> anyhow::Result<()>
    where
        F: FnMut(&mut Connection) -> anyhow::Result<()> + Send + 'static,
    {
        let job = write_job(f, move |result, failed| {
            if let Err(e) = result {
                tracing::warn!(write = what, error = %e, "deferred write failed");
            } else if let Some(e) = failed {
                tracing::warn!(write = what, error = %e, "transaction of a deferred write failed");
            }
        });
        self.writer.send(Msg::Later(job)).map_err(|_| anyhow::anyhow!("database writer has stopped"))
    }

    /// Runs `f` with a read connection on the blocking pool. `f` must not write.
    pub(crate) async fn read<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let Some(pool) = self.readers.clone() else { return self.write(f).await };
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.take()?;
            let mut f = f;
            let r = f(&mut conn);
            pool.give_back(conn);
            r
        })
        .await
        .context("database read panicked")?
    }

    /// Transactions committed so far; fewer than the writes when writes were grouped.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// What the WAL has been through: (frames in it at the checkpointer's last look,
    /// catch-ups by the writer, restarts seen).
    pub fn wal_stats(&self) -> (i64, u64, u64) {
        (self.wal.frames.load(Ordering::Acquire), self.wal.catch_ups.load(Ordering::Relaxed), self.wal.restarts.load(Ordering::Relaxed))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn count(c: &mut Connection, sql: &str) -> anyhow::Result<i64> {
        Ok(c.query_row(sql, [], |r| r.get(0))?)
    }

    /// Starts a write that holds the writer until the sender is used: writes sent
    /// meanwhile wait, in their order, and form the next group.
    async fn hold_writer(db: &Database) -> (std::sync::mpsc::Sender<()>, impl Future<Output = anyhow::Result<()>>) {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let mut holder = Box::pin(db.write(move |_| {
            let _ = started_tx.send(());
            let _ = hold.recv_timeout(Duration::from_secs(10));
            Ok(())
        }));
        assert!(futures::poll!(holder.as_mut()).is_pending());
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        (release, holder)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_a_failing_one_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db")).unwrap();
        let before = db.commits();
        // Hold the writer so the next writes queue up behind it and form one group.
        let (held, release) = std::sync::mpsc::channel::<()>();
        let writer = db.clone();
        let blocker = tokio::spawn(async move {
            writer
                .write(move |_| {
                    release.recv_timeout(Duration::from_secs(5)).ok();
                    Ok(())
                })
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let writes: Vec<_> = (0..150i64)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.write(move |c| {
                        c.execute("INSERT INTO queue (due_at, job) VALUES (?1, 'x')", [i])?;
                        // Every third write fails after its insert: only its own row goes.
                        anyhow::ensure!(i % 3 != 0, "write {i} fails");
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        held.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        let mut ok = 0;
        for w in writes {
            if w.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 100);
        assert_eq!(db.read(|c| count(c, "SELECT COUNT(*) FROM queue")).await.unwrap(), 100);
        assert_eq!(db.read(|c| count(c, "SELECT COUNT(*) FROM queue WHERE due_at % 3 = 0")).await.unwrap(), 0);
        let commits = db.commits() - before;
        assert!(commits <= 3, "151 writes took {commits} commits; they should have been grouped");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deferred_write_rides_with_the_next_write_or_commits_alone_and_keeps_its_callers_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db")).unwrap();
        let insert = |due: i64| {
            move |c: &mut Connection| -> anyhow::Result<()> {
                c.execute("INSERT INTO queue (due_at, job) VALUES (?1, 'x')", [due])?;
                Ok(())
            }
        };
        let before = db.commits();
        db.write_deferred("test", insert(1)).unwrap();
        // A write sent after it sees it, and both share one commit.
        let seen = db.write(|c| count(c, "SELECT COUNT(*) FROM queue")).await.unwrap();
        assert_eq!(seen, 1, "a write sent after a deferred one runs after it");
        assert_eq!(db.commits() - before, 1, "the deferred write rode with the next one");

        // With no write to join, it commits by itself.
        db.write_deferred("test", insert(2)).unwrap();
        let start = std::time::Instant::now();
        while db.read(|c| count(c, "SELECT COUNT(*) FROM queue")).await.unwrap() < 2 {
            assert!(start.elapsed() < Duration::from_secs(5), "a lone deferred write was never committed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(db.commits() - before, 2);

        // A failing one rolls back alone.
        db.write_deferred("test", |c| {
            c.execute("INSERT INTO queue (due_at, job) VALUES (3, 'x')", [])?;
            anyhow::bail!("refused")
        })
        .unwrap();
        db.write(insert(4)).await.unwrap();
        let dues = db.read(|c| count(c, "SELECT SUM(due_at) FROM queue")).await.unwrap();
        assert_eq!(dues, 1 + 2 + 4, "the failed deferred write left nothing, the others stayed");

        // A deferred write still waiting when the last handle goes is committed first.
        db.write_deferred("test", insert(8)).unwrap();
        drop(db);
        let start = std::time::Instant::now();
        loop {
            let mut c = Connection::open(dir.path().join("t.db")).unwrap();
            if count(&mut c, "SELECT COUNT(*) FROM queue WHERE due_at = 8").unwrap() == 1 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "a deferred write was lost when the database closed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_panicking_write_fails_its_caller_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db")).unwrap();
        let r = db
            .write(|c| -> anyhow::Result<()> {
                c.execute("INSERT INTO queue (due_at, job) VALUES (1, 'x')", [])?;
                panic!("bug in a write")
            })
            .await;
        assert!(r.is_err());
        db.write(|c| Ok(c.execute("INSERT INTO queue (due_at, job) VALUES (2, 'y')", [])?)).await.unwrap();
        assert_eq!(db.read(|c| count(c, "SELECT COUNT(*) FROM queue")).await.unwrap(), 1, "the panicking write left nothing");
    }

    #[tokio::test]
    async fn a_group_with_a_failing_and_a_panicking_write_runs_again_and_commits_the_others_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db")).unwrap();
        let runs = Arc::new(AtomicU64::new(0));
        let insert = |due: i64| {
            let runs = runs.clone();
            move |c: &mut Connection| -> anyhow::Result<()> {
                runs.fetch_add(1, Ordering::Relaxed);
                c.execute("INSERT INTO queue (due_at, job) VALUES (?1, 'x')", [due])?;
                Ok(())
            }
        };
        // Everything sent while the writer is held forms one group.
        let (release, holder) = hold_writer(&db).await;
        let before = db.commits();
        db.write_deferred("test", insert(1)).unwrap();
        db.write_deferred("test", |c| {
            c.execute("INSERT INTO queue (due_at, job) VALUES (2, 'x')", [])?;
            anyhow::bail!("refused")
        })
        .unwrap();
        db.write_deferred("test", |c| {
            c.execute("INSERT INTO queue (due_at, job) VALUES (4, 'x')", [])?;
            panic!("bug in a write")
        })
        .unwrap();
        db.write_deferred("test", insert(8)).unwrap();
        // The last write of the group sees what the group kept before it.
        let mut last = Box::pin(db.write(|c| {
            c.execute("INSERT INTO queue (due_at, job) VALUES (16, 'x')", [])?;
            count(c, "SELECT SUM(due_at) FROM queue")
        }));
        assert!(futures::poll!(last.as_mut()).is_pending());
        release.send(()).unwrap();
        holder.await.unwrap();
        let seen = last.await.unwrap();
        assert_eq!(seen, 1 + 8 + 16, "the failing and the panicking writes left nothing in the group");
        assert_eq!(db.commits() - before, 2, "the holder's commit, and one for the group");
        assert_eq!(db.read(|c| count(c, "SELECT SUM(due_at) FROM queue")).await.unwrap(), 1 + 8 + 16);
        // The first write ran before the failure and again in the second run; the one
        // after the failure ran only in the second.
        assert_eq!(runs.load(Ordering::Relaxed), 3);

        // A group with no failure runs each write once.
        let before = runs.load(Ordering::Relaxed);
        db.write_deferred("test", insert(32)).unwrap();
        db.write(insert(64)).await.unwrap();
        assert_eq!(runs.load(Ordering::Relaxed) - before, 2);
        assert_eq!(db.read(|c| count(c, "SELECT SUM(due_at) FROM queue")).await.unwrap(), 1 + 8 + 16 + 32 + 64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_succeeded_and_then_panicked_when_run_again_fails_its_caller() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db")).unwrap();
        // Hold the writer so that the next two writes queue up and form one group.
        let (release, holder) = hold_writer(&db).await;
        let mut runs = 0;
        let mut flaky = Box::pin(db.write(move |c| -> anyhow::Result<()> {
            runs += 1;
            c.execute("INSERT INTO queue (due_at, job) VALUES (1, 'x')", [])?;
            assert_eq!(runs, 1, "bug in a write that runs again");
            Ok(())
        }));
        let mut failing = Box::pin(db.write(|c| -> anyhow::Result<()> {
            c.execute("INSERT INTO queue (due_at, job) VALUES (2, 'x')", [])?;
            anyhow::bail!("refused")
        }));
        // A first poll sends each write to the writer, in this order.
        assert!(futures::poll!(flaky.as_mut()).is_pending());
        assert!(futures::poll!(failing.as_mut()).is_pending());
        release.send(()).unwrap();
        let (flaky, failing) = (flaky.await, failing.await);
        holder.await.unwrap();
        assert!(failing.is_err());
        assert!(flaky.is_err(), "a write rolled back by its panic was reported done");
        assert_eq!(db.read(|c| count(c, "SELECT COUNT(*) FROM queue")).await.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_steady_writes_and_reads_the_wal_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db")).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(20);
        let mut tasks = Vec::new();
        for w in 0..16i64 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = 0i64;
                while std::time::Instant::now() < until && db.wal_stats().2 == 0 {
                    db.write(move |c| {
                        c.execute(
                            "INSERT INTO queue (due_at, job) VALUES (?1, 'a job of some length, as real ones are')",
                            [w * 1_000_000 + i],
                        )?;
                        Ok(c.execute("DELETE FROM queue WHERE due_at = ?1", [w * 1_000_000 + i - 8])?)
                    })
                    .await
                    .unwrap();
                    i += 1;
                }
            }));
        }
        for _ in 0..2 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                while std::time::Instant::now() < until && db.wal_stats().2 == 0 {
                    db.read(|c| count(c, "SELECT COUNT(*) FROM queue")).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let (frames, catch_ups, restarts) = db.wal_stats();
        assert!(catch_ups >= 1, "the writer never caught up (WAL at {frames} frames)");
        assert!(restarts >= 1, "the WAL never started over (at {frames} frames, {catch_ups} catch-ups)");
    }

    #[tokio::test]
    async fn read_connections_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db")).unwrap();
        let r = db.read(|c| Ok(c.execute("INSERT INTO queue (due_at, job) VALUES (1, 'x')", [])?)).await;
        assert!(r.is_err());
    }

    /// Databases over one file, opened, used and dropped on several threads at once:
    /// their connections close concurrently, which must not deadlock (SQLite 3.51's
    /// unix VFS could: `unixLock` and `unixClose` took its two mutexes in opposite
    /// orders; fixed in the SQLite that rusqlite 0.43 bundles).
    #[test]
    fn databases_over_one_file_close_concurrently_without_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Database::open(&path).unwrap());
        let (done, finished) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                for _ in 0..15 {
                    rt.block_on(async {
                        let db = Database::open(&path).unwrap();
                        db.write(|c| Ok(c.execute("INSERT INTO queue (due_at, job) VALUES (1, 'x')", [])?)).await.unwrap();
                        let n: i64 = db.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM queue", [], |r| r.get(0))?)).await.unwrap();
                        assert!(n >= 1);
                    });
                }
                done.send(()).unwrap();
            });
        }
        drop(done);
        for _ in 0..4 {
            match finished.recv_timeout(std::time::Duration::from_secs(120)) {
                Ok(()) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("a thread is stuck closing its databases"),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("a thread failed (see its panic above)"),
            }
        }
    }
}
