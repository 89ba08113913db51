//! Embedded adapters for local mode: every store and the delay queue in one SQLite
//! database (WAL mode), behind one adapter, [`SqliteStorage`], and an RSA-2048 signing
//! key kept in a file.
//!
//! One process owns the database. Pending work lives in tables, so it survives
//! `kill -9` and a restart; [`Database::recover`] hands back what was in flight.

mod analytics;
mod api_keys;
mod db;
mod deliveries;
mod events;
mod key;
mod queue;
mod recoveries;
mod secret_box;
mod sql;
mod storage;
mod throttles;
mod webhooks;

pub use db::Database;
pub use events::FAN_OUT_ON_APPEND_MAX;
pub use key::{LocalKeySigner, write_secret_file};
pub use secret_box::LocalSecretBox;
pub use storage::SqliteStorage;
