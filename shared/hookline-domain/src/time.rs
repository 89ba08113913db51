//! Timestamps: UTC instants with microsecond precision, written as RFC 3339.
//!
//! Microseconds (not seconds, as in some webhook services) because receivers measure
//! latency from `event.created_at`, and a local delivery takes a few milliseconds.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// An instant in UTC.
pub type Timestamp = DateTime<Utc>;

/// Formats an instant the way Hookline writes every timestamp: `2026-11-23T19:17:57.123456Z`.
pub fn format(ts: &Timestamp) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Microseconds since the Unix epoch; the sortable form adapters store.
pub fn to_micros(ts: &Timestamp) -> i64 {
    ts.timestamp_micros()
}

/// The inverse of [`to_micros`]; out-of-range values clamp to the epoch.
pub fn from_micros(micros: i64) -> Timestamp {
    Utc.timestamp_micros(micros).single().unwrap_or_default()
}

/// Parses an RFC 3339 timestamp, as written by [`format()`] or by an outside producer.
pub fn parse(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Serde helpers that write timestamps with [`format()`].
pub mod serde_ts {
    use super::Timestamp;
    use serde::Serializer;

    /// Serializes a timestamp as RFC 3339 with microseconds.
    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(ts))
    }

    /// Serializes an optional timestamp (None is `null`).
    pub fn option<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_str(&super::format(ts)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse_round_trip_with_microseconds() {
        let t = from_micros(1_795_000_000_123_456);
        let s = format(&t);
        assert!(s.ends_with(".123456Z"), "{s}");
        assert_eq!(parse(&s), Some(t));
        assert_eq!(to_micros(&t), 1_795_000_000_123_456);
    }
}
