//! The read connections: reads run on tokio's blocking pool, each on a `query_only`
//! connection taken from this pool, so in WAL mode they see the last commit and never
//! wait for the writer thread.

use super::STATEMENT_CACHE;
use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::Mutex;

/// Read connections, opened as needed and kept for reuse.
pub(super) struct ReadPool {
    pub(super) path: PathBuf,
    pub(super) idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub(super) fn take(&self) -> anyhow::Result<Connection> {
        if let Some(c) = self.idle.lock().map_err(|_| anyhow::anyhow!("read pool poisoned"))?.pop() {
            return Ok(c);
        }
        let c = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_context(|| format!("opening database {}", self.path.display()))?;
        c.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")?;
        c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(c)
    }

    pub(super) fn give_back(&self, c: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::db::Database;

    #[tokio::test]
    async fn read_connections_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db")).unwrap();
        let r = db.read(|c| Ok(c.execute("INSERT INTO queue (due_at, job) VALUES (1, 'x')", [])?)).await;
        assert!(r.is_err());
    }
}
