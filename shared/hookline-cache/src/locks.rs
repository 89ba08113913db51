//! Per-key locks, for stores whose changes of one key must run one at a time within a
//! process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// One lock per key. The throttle stores take a webhook's lock around each change of
/// its rate limit state, so a process's own workers never race each other for the
/// version (each lost race costs a read and a refused write); only other processes can.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    /// Waits for `key`'s lock; held until the guard is dropped.
    pub async fn lock(&self, key: String) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            // Locks nobody holds or waits for are dropped, so the map stays as small as
            // the set of webhooks being sent to right now.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(key).or_default().clone()
        };
        lock.lock_owned().await
    }
}
