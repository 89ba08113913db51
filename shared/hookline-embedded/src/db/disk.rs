//! A full disk, told apart from every other failure: writes that meet it fail with the
//! domain's [`Unavailable`] (the API answers 503 `storage_unavailable`), and the
//! operator reads one line when it starts and one when it ends, not one per write.

use hookline_domain::ports::Unavailable;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the disk holding the database is full, as the last write found it.
#[derive(Debug)]
pub(crate) struct Disk {
    /// Where the database is, for the log line.
    place: String,
    /// The directory holding it, whose file system is asked for free space.
    dir: Option<PathBuf>,
    full: AtomicBool,
}

/// Free space the disk must have again before writes are said to resume. SQLite reuses
/// the room its WAL already has, so some writes succeed on a full disk; they alone do
/// not mean the disk has room.
const ROOM_AGAIN: u64 = 1 << 20;

/// ENOSPC: what a write to a full file system fails with.
const NO_SPACE: i32 = 28;

/// Whether `e` says the disk is full: SQLite's `SQLITE_FULL`, or an I/O error for lack
/// of space, anywhere in its chain.
pub(crate) fn is_disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<DiskFull>()
            || c.downcast_ref::<rusqlite::Error>().is_some_and(is_full)
            || c.downcast_ref::<std::io::Error>().is_some_and(|io| io.raw_os_error() == Some(NO_SPACE))
    })
}

/// Whether SQLite found the disk full.
pub(crate) fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

/// A transaction failed for a full disk (its SQLite error stays with the writer).
#[derive(Debug, thiserror::Error)]
#[error("the disk is full")]
pub(crate) struct DiskFull;

impl Disk {
    /// For the database at `place`, in `dir` (`None` in memory).
    pub(crate) fn new(place: String, dir: Option<PathBuf>) -> Self {
        Disk { place, dir, full: AtomicBool::new(false) }
    }

    /// Passes `e` on, as [`Unavailable`] if it says the disk is full; says so in the
    /// log the first time.
    pub(crate) fn check(&self, e: anyhow::Error) -> anyhow::Error {
        if !is_disk_full(&e) {
            return e;
        }
        if !self.full.swap(true, Ordering::AcqRel) {
            tracing::error!(
                database = %self.place,
                "the disk holding the database is full: requests that store anything are answered 503 storage_unavailable, \
                 and deliveries wait, until space is freed; nothing stored is lost"
            );
        }
        anyhow::Error::new(Unavailable(format!("the disk holding {} is full", self.place)))
    }

    /// A write succeeded: if the disk was full and has room again, it no longer is.
    pub(crate) fn wrote(&self) {
        if !self.full.load(Ordering::Acquire) {
            return;
        }
        let room = self.dir.as_deref().map_or(Ok(u64::MAX), |d| rustix::fs::statvfs(d).map(|s| s.f_bavail.saturating_mul(s.f_frsize)));
        if room.is_ok_and(|free| free >= ROOM_AGAIN) && self.full.swap(false, Ordering::AcqRel) {
            tracing::info!(database = %self.place, "disk space is back: writes resume");
        }
    }
}
