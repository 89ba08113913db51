//! The writer thread: the only connection that writes, and group commit. It takes every
//! write waiting at that moment, runs them in one transaction and commits them once,
//! then answers each caller; a write that fails or panics is rolled back alone, by
//! running the group again with a savepoint per write. Kept apart from the
//! [`Database`](super::Database) handle, which only sends writes here and waits.

use super::checkpoint::{WalState, catch_up};
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

/// Most writes committed together in one transaction (group commit).
const MAX_GROUP: usize = 256;
/// Longest a deferred write waits for a group to join before it commits by itself.
pub(super) const DEFERRED_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// One write for the writer thread.
///
/// A group first runs its writes one after the other in one transaction, with no
/// savepoints (a savepoint copies every page a write touches before it changes it:
/// about 15 % of the writer's time). Only when one of them fails or panics is the
/// transaction rolled back and the group run again, each write in its own savepoint,
/// so that the failing one rolls back alone. So a write may run twice: it must do nothing
/// outside the transaction beside computing its result.
pub(super) trait Write: Send {
    /// Runs the write's statements; says whether they succeeded.
    fn run(&mut self, c: &mut Connection) -> bool;
    /// Answers the caller once the transaction ended: `failed` is the transaction's
    /// error when it did not commit. A write that panicked answers with an error.
    fn finish(self: Box<Self>, failed: Option<&anyhow::Error>);
}

pub(super) type WriteJob = Box<dyn Write>;

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

pub(super) fn write_job<T, F, D>(f: F, done: D) -> WriteJob
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
/// deferred one, committed with the next group (see [`Database::write_deferred`](super::Database::write_deferred)).
pub(super) enum Msg {
    Now(WriteJob),
    Later(WriteJob),
}

/// Runs one statement, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The writer thread: group commit, as described on [`Database`](super::Database).
pub(super) fn write_loop(mut conn: Connection, jobs: Receiver<Msg>, commits: Arc<AtomicU64>, wal: Arc<WalState>) {
    let mut inbox = Inbox { jobs, later: Vec::new(), due: Instant::now(), open: true };
    while inbox.open || !inbox.later.is_empty() {
        // Wait for a write that wants its commit now; deferred ones ride along with it,
        // or commit by themselves once the oldest has waited DEFERRED_WAIT.
        let Some(now) = inbox.wait() else { continue };
        let group = inbox.group(now);
        if wal.catch_up.swap(false, Ordering::AcqRel) {
            catch_up(&conn, &wal);
        }
        if group.is_empty() {
            continue;
        }
        commit(&mut conn, group, &commits);
    }
}

/// What the writer thread has received and not yet run.
struct Inbox {
    jobs: Receiver<Msg>,
    /// Deferred writes waiting for a commit, and when the oldest of them must have one.
    later: Vec<WriteJob>,
    due: Instant,
    /// Whether a handle is left to send writes.
    open: bool,
}

impl Inbox {
    /// Waits for the next write, or until the deferred ones are due; returns the write
    /// that wants its commit now, if one came. `None` when a deferred write came and
    /// the group can wait for more. Returns at once when no handle is left.
    fn wait(&mut self) -> Option<Vec<WriteJob>> {
        let mut now: Vec<WriteJob> = Vec::new();
        if !self.open {
            return Some(now);
        }
        let next = if self.later.is_empty() {
            self.jobs.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            self.jobs.recv_timeout(self.due.saturating_duration_since(Instant::now()))
        };
        match next {
            Ok(Msg::Now(j)) => now.push(j),
            Ok(Msg::Later(j)) => {
                if self.later.is_empty() {
                    self.due = Instant::now() + DEFERRED_WAIT;
                }
                self.later.push(j);
                if self.later.len() < MAX_GROUP {
                    return None;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.open = false,
        }
        Some(now)
    }

    /// The next group: `now`, every write already sent (up to [`MAX_GROUP`] in all) and
    /// every deferred write.
    fn group(&mut self, mut now: Vec<WriteJob>) -> Vec<WriteJob> {
        while self.later.len() + now.len() < MAX_GROUP {
            match self.jobs.try_recv() {
                Ok(Msg::Now(j)) => now.push(j),
                Ok(Msg::Later(j)) => self.later.push(j),
                Err(_) => break,
            }
        }
        // Deferred writes first: each was sent before any write of the same caller that
        // follows it, so this keeps every caller's order.
        self.later.drain(..).chain(now).collect()
    }
}

/// Commits `group` (see [`commit_group`]) and answers each of its writes.
fn commit(conn: &mut Connection, mut group: Vec<WriteJob>, commits: &AtomicU64) {
    match commit_group(conn, &mut group) {
        Ok(()) => {
            commits.fetch_add(1, Ordering::Relaxed);
            group.into_iter().for_each(|w| w.finish(None))
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            // A full disk is said once, by the handle that answers the callers.
            if !super::is_disk_full(&e) {
                tracing::error!(error = %e, "database transaction failed; its writes are refused");
            }
            group.into_iter().for_each(|w| w.finish(Some(&e)));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::db::Database;
    use crate::db::tests::count;
    use rusqlite::Connection;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

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
}
