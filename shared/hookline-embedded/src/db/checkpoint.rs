//! The WAL checkpointer: a thread that copies the WAL back into the database file, so
//! the writer never pays for a large checkpoint, and the writer's small catch-up that
//! lets the WAL start over from its beginning. [`WalState`] is what the two share.
//! How and why they work together is described on [`Database`](super::Database).

use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Checkpoint passes in a row while writes keep coming: each copies what was appended
/// during the one before, so the last leaves only a few frames behind.
const CHECKPOINT_PASSES: usize = 8;
/// New frames found by a pass (appended while the one before ran) at or below which
/// the checkpointer stops passing.
const CHECKPOINT_SETTLED: i64 = 16;
/// WAL bytes after which the checkpointer asks the writer to let the WAL start over.
pub(super) const RESTART_WAL_BYTES: i64 = 128 << 20;
/// WAL bytes after which the writer's catch-up waits for readers (a safety net; the
/// WAL restarts long before this in practice).
pub(super) const FORCE_RESTART_BYTES: i64 = 512 << 20;

/// What the checkpointer and the writer share about the WAL.
#[derive(Default)]
pub(super) struct WalState {
    /// WAL frames after which the WAL should start over, and after which it must.
    pub(super) restart_at: i64,
    pub(super) force_restart_at: i64,
    /// Set by the checkpointer when the WAL is long: the writer then catches up.
    pub(super) catch_up: AtomicBool,
    /// Frames in the WAL at the checkpointer's last look.
    pub(super) frames: AtomicI64,
    /// Times the writer caught up (a tiny checkpoint between two groups).
    pub(super) catch_ups: AtomicU64,
    /// Times the WAL started over from its beginning, as seen by the checkpointer.
    pub(super) restarts: AtomicU64,
}

/// The writer's part of letting the WAL restart: copy the few frames the checkpointer
/// left (between two groups, so nothing is appended meanwhile); the next transaction
/// then starts the WAL over, unless a reader is still on an old snapshot.
pub(super) fn catch_up(conn: &Connection, wal: &WalState) {
    let mode = if wal.frames.load(Ordering::Acquire) >= wal.force_restart_at { "RESTART" } else { "PASSIVE" };
    match conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(())) {
        Ok(()) => {
            wal.catch_ups.fetch_add(1, Ordering::Relaxed);
        }
        // A full disk is said once, by the writes that meet it.
        Err(e) if super::disk::is_full(&e) => tracing::debug!(error = %e, "WAL catch-up waits for disk space"),
        Err(e) => tracing::warn!(error = %e, "WAL catch-up failed; the checkpointer will ask again"),
    }
}

/// The checkpointer thread: every [`CHECKPOINT_EVERY`], copies the WAL back in passes
/// and, when the WAL is long, asks the writer to catch up (see [`Database`](super::Database)).
pub(super) fn checkpoint_loop(conn: Connection, file: std::fs::File, stopped: std::sync::mpsc::Receiver<()>, wal: Arc<WalState>) {
    let mut last_frames = 0i64;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
        let Some(frames) = checkpoint_passes(&conn, &file, wal.restart_at, last_frames) else { continue };
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

/// One pass, unless the WAL is due to start over: then more, each copying what was
/// appended while the one before ran, until one finds only a few new frames, so
/// the writer's catch-up has little left to do. Returns the frames the last pass found
/// in the WAL, `None` when no pass could run; `last_frames` is what the tick before found.
fn checkpoint_passes(conn: &Connection, file: &std::fs::File, restart_at: i64, last_frames: i64) -> Option<i64> {
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
                if log < restart_at {
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
                if super::disk::is_full(&e) {
                    tracing::debug!(error = %e, "WAL checkpoint waits for disk space");
                } else {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the next one will try again");
                }
                break;
            }
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use crate::db::Database;
    use crate::db::tests::count;
    use std::time::Duration;

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
}
