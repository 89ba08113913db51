//! What every table adapter shares: SQLite error checks, optional timestamps and the
//! keyset bounds of a page.

use hookline_domain::page::PageRequest;
use hookline_domain::time::{Timestamp, from_micros, to_micros};

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

pub(crate) fn micros_opt(t: &Option<Timestamp>) -> Option<i64> {
    t.as_ref().map(to_micros)
}

pub(crate) fn ts_opt(v: Option<i64>) -> Option<Timestamp> {
    v.map(from_micros)
}

/// Keyset bounds for a page: `(micros, id)` strictly after the cursor in the listing order.
pub(crate) fn after_bounds(page: &PageRequest, descending: bool) -> (i64, String) {
    match &page.after {
        Some(c) => (c.micros, c.id.clone()),
        None if descending => (i64::MAX, String::new()),
        None => (i64::MIN, String::new()),
    }
}
