//! Embedded adapters for local mode: every store and the delay queue in one SQLite
//! database (WAL mode), and an RSA-2048 signing key kept in a file.
//!
//! One process owns the database. Pending work lives in tables, so it survives
//! `kill -9` and a restart; [`Database::recover`] hands back what was in flight.

mod db;
mod key;
mod stores;

pub use db::Database;
pub use key::{LocalKeySigner, write_secret_file};
pub use stores::{SqliteApiKeyStore, SqliteDeliveryQueue, SqliteDeliveryStore, SqliteEventLog, SqliteWebhookStore};
