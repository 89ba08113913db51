//! When a failed delivery is tried again: a fixed schedule of delays (LogAlto's
//! 2 m, 6 m, 30 m, 1 h, 5 h by default), stretched by a receiver's `Retry-After`.
//!
//! No jitter is added: the schedule is the retry schedule receivers are promised (the
//! LogAlto webhook documentation and the README state it), and deliveries of different
//! events already spread out by their own start times.

use crate::duration::{DurationError, format_duration, parse_duration};
use crate::time::Timestamp;
use chrono::{DateTime, Utc};
use std::fmt;
use std::time::Duration;

/// The default schedule, as LogAlto documents it.
pub const DEFAULT_SCHEDULE: &str = "2m,6m,30m,1h,5h";

/// Delays before each retry; its length is the number of retries.
#[derive(Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// What to do after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAttempt {
    /// Try again at this instant.
    RetryAt(Timestamp),
    /// No retries left: the delivery has failed.
    GiveUp,
}

impl RetrySchedule {
    /// Parses a comma-separated list like `2m,6m,30m,1h,5h`. An empty string means no retries.
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        if s.trim().is_empty() {
            return Ok(RetrySchedule(Vec::new()));
        }
        s.split(',').map(parse_duration).collect::<Result<_, _>>().map(RetrySchedule)
    }

    /// A schedule from explicit delays.
    pub fn new(delays: Vec<Duration>) -> Self {
        RetrySchedule(delays)
    }

    /// The delays.
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }

    /// Decides what follows a failed attempt.
    ///
    /// `attempts_made` counts every attempt so far, the failed one included; the
    /// retry after attempt *n* waits the *n*-th delay. A `Retry-After` from a 429 or
    /// 503 answer is honoured but clamped to [step, 2 × step], so a receiver can slow
    /// Hookline down without stalling it or being hammered.
    pub fn next_attempt(&self, attempts_made: u32, retry_after: Option<Duration>, now: Timestamp) -> NextAttempt {
        let Some(step) = (attempts_made as usize).checked_sub(1).and_then(|i| self.0.get(i)).copied() else {
            return NextAttempt::GiveUp;
        };
        let delay = match retry_after {
            Some(ra) => ra.clamp(step, step.saturating_mul(2)),
            None => step,
        };
        match chrono::Duration::from_std(delay).ok().and_then(|d| now.checked_add_signed(d)) {
            Some(at) => NextAttempt::RetryAt(at),
            None => NextAttempt::GiveUp,
        }
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule(vec![
            Duration::from_secs(120),
            Duration::from_secs(360),
            Duration::from_secs(1800),
            Duration::from_secs(3600),
            Duration::from_secs(18_000),
        ])
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|d| format_duration(*d)).collect();
        f.write_str(&parts.join(","))
    }
}

impl fmt::Debug for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RetrySchedule({self})")
    }
}

/// Reads a `Retry-After` header: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at: DateTime<Utc> = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    (at - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_micros;

    fn at(n: NextAttempt, now: Timestamp) -> Duration {
        match n {
            NextAttempt::RetryAt(t) => (t - now).to_std().unwrap(),
            NextAttempt::GiveUp => panic!("gave up"),
        }
    }

    #[test]
    fn default_schedule_is_logalto_s() {
        assert_eq!(RetrySchedule::parse(DEFAULT_SCHEDULE).unwrap(), RetrySchedule::default());
        assert_eq!(RetrySchedule::default().to_string(), DEFAULT_SCHEDULE);
    }

    #[test]
    fn each_retry_waits_its_step_and_the_last_failure_gives_up() {
        let s = RetrySchedule::default();
        let now = from_micros(0);
        assert_eq!(at(s.next_attempt(1, None, now), now), Duration::from_secs(120));
        assert_eq!(at(s.next_attempt(2, None, now), now), Duration::from_secs(360));
        assert_eq!(at(s.next_attempt(5, None, now), now), Duration::from_secs(18_000));
        assert_eq!(s.next_attempt(6, None, now), NextAttempt::GiveUp);
        assert_eq!(s.next_attempt(0, None, now), NextAttempt::GiveUp);
    }

    #[test]
    fn retry_after_is_clamped_between_step_and_twice_step() {
        let s = RetrySchedule::parse("10s,20s").unwrap();
        let now = from_micros(0);
        assert_eq!(at(s.next_attempt(1, Some(Duration::from_secs(1)), now), now), Duration::from_secs(10));
        assert_eq!(at(s.next_attempt(1, Some(Duration::from_secs(15)), now), now), Duration::from_secs(15));
        assert_eq!(at(s.next_attempt(1, Some(Duration::from_secs(3600)), now), now), Duration::from_secs(20));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = crate::time::parse("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Mon, 23 Nov 2026 10:01:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn empty_schedule_means_no_retries() {
        let s = RetrySchedule::parse("").unwrap();
        assert_eq!(s.next_attempt(1, None, from_micros(0)), NextAttempt::GiveUp);
        assert!(RetrySchedule::parse("2m,,5m").is_err());
    }
}
