//! The SQLite database shared by the embedded adapters: the [`Database`] handle. The
//! engine behind it is split by thread: [`writer`] (the one writing connection and
//! group commit), [`checkpoint`] (copying the WAL back into the file), [`read_pool`]
//! (read connections), and [`schema`] (the tables).

mod checkpoint;
mod disk;
mod read_pool;
mod schema;
mod writer;

use anyhow::Context;
use checkpoint::{FORCE_RESTART_BYTES, RESTART_WAL_BYTES, WalState, checkpoint_loop};
use disk::Disk;
pub(crate) use disk::is_disk_full;
use read_pool::ReadPool;
use rusqlite::Connection;
use schema::SCHEMA;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use writer::{Msg, write_job, write_loop};

/// Bytes the WAL file is truncated to when it restarts.
const WAL_SIZE_LIMIT: i64 = 256 << 20;
/// Statements kept prepared per connection.
const STATEMENT_CACHE: usize = 64;

/// One SQLite database file, shared by every embedded adapter of a process.
///
/// Writes go to one writer thread that owns the only writing connection. It takes
/// every write waiting at that moment (up to 256), runs them and commits them in one
/// transaction: one WAL commit for many concurrent writes (group commit). A failing
/// write rolls back alone (see [`Write`](writer::Write)). Each caller is answered
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
    /// Whether the disk is full, said once.
    disk: Arc<Disk>,
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
        schema::upgrade(&conn).context("upgrading schema")?;
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
        let disk = Disk::new(path.display().to_string(), path.parent().map(Path::to_owned));
        Self::start(conn, Some(Arc::new(readers)), Some(keep_alive), wal, disk)
    }

    /// Opens a private in-memory database (for tests).
    pub fn in_memory() -> anyhow::Result<Self> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        schema::upgrade(&conn)?;
        let wal = Arc::new(WalState { restart_at: i64::MAX, force_restart_at: i64::MAX, ..WalState::default() });
        Self::start(conn, None, None, wal, Disk::new(":memory:".into(), None))
    }

    fn start(
        conn: Connection,
        readers: Option<Arc<ReadPool>>,
        checkpointer: Option<std::sync::mpsc::Sender<()>>,
        wal: Arc<WalState>,
        disk: Disk,
    ) -> anyhow::Result<Self> {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (tx, rx) = std::sync::mpsc::channel();
        // The thread ends when the last handle (and with it the last sender) is dropped.
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        let shared = wal.clone();
        std::thread::Builder::new().name("hookline-db-writer".into()).spawn(move || write_loop(conn, rx, counter, shared))?;
        Ok(Database { writer: tx, commits, wal, _checkpointer: checkpointer, readers, disk: Arc::new(disk) })
    }

    /// Runs `f` on the writer thread, inside the group's transaction; answers after the
    /// commit. An `Err` from `f` rolls back what `f` did, and only that. `f` may run
    /// twice (see [`Write`](writer::Write)): it must do nothing outside the transaction.
    pub(crate) async fn write<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<anyhow::Result<T>>();
        let job = write_job(f, move |result, failed| {
            let _ = tx.send(match failed {
                None => result,
                Some(e) if is_disk_full(e) => Err(anyhow::Error::new(disk::DiskFull)),
                Some(e) => Err(anyhow::anyhow!("transaction failed: {e:#}")),
            });
        });
        self.writer.send(Msg::Now(job)).map_err(|_| anyhow::anyhow!("database writer has stopped"))?;
        match rx.await.map_err(|_| anyhow::anyhow!("database write was abandoned"))? {
            Ok(v) => {
                self.disk.wrote();
                Ok(v)
            }
            Err(e) => Err(self.disk.check(e)),
        }
    }

    /// Sends `f` to the writer thread without waiting for it: it runs in the next group
    /// that commits, at the latest [`DEFERRED_WAIT`](writer::DEFERRED_WAIT) later, and never causes a commit of
    /// its own while other writes keep coming. For writes whose loss in a crash is
    /// harmless (the work they record is found done and skipped when it comes back),
    /// such as removing an acknowledged job. Writes sent later by the same caller run
    /// after it. A failure is logged, since nobody waits for it.
    pub(crate) fn write_deferred<F>(&self, what: &'static str, f: F) -> anyhow::Result<()>
    where
        F: FnMut(&mut Connection) -> anyhow::Result<()> + Send + 'static,
    {
        let disk = self.disk.clone();
        let job = write_job(f, move |result, failed| match (result, failed) {
            (Err(e), _) => {
                // A full disk comes back as `Unavailable`, already said once by `check`.
                let e = disk.check(e);
                if !e.is::<hookline_domain::ports::Unavailable>() {
                    tracing::warn!(write = what, error = %e, "deferred write failed");
                }
            }
            (Ok(()), Some(e)) if is_disk_full(e) => {
                disk.check(anyhow::Error::new(disk::DiskFull));
            }
            (Ok(()), Some(e)) => tracing::warn!(write = what, error = %e, "transaction of a deferred write failed"),
            (Ok(()), None) => {}
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

    pub(super) fn count(c: &mut Connection, sql: &str) -> anyhow::Result<i64> {
        Ok(c.query_row(sql, [], |r| r.get(0))?)
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
