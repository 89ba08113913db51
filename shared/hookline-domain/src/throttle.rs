//! Per-webhook rate limits: at most N requests a second (or a minute) to a webhook's
//! endpoint, and at most M attempts in flight at once, held across every worker of
//! local mode and every concurrent sender Lambda.
//!
//! How: the limits' shared state ([`ThrottleState`]) lives in the store
//! ([`ThrottleStore`](crate::ports::ThrottleStore)), changed atomically (on DynamoDB a
//! read and a write back with a version check; within one process the changes of a
//! webhook run one at a time), so two workers cannot both take the last place. Waiting jobs are spread over the following intervals by slots (GCRA): a
//! job takes the next slot and goes back to the queue due then, holding it
//! ([`crate::delivery::Job::slotted`]), so a backlog is spread in one pass instead of
//! every waiting job polling. In-flight attempts are leases that end by themselves (a
//! worker that dies cannot hold one forever); a job that finds them all taken looks
//! again about a second later and takes no slot meanwhile. Waiting jobs are never
//! dropped and never count as failed attempts.
//!
//! Precision: requests leave on slots one interval apart, as read by each worker's
//! clock; after a stall, jobs late by less than [`LATE_SLOT`] may go together. SQS delays are whole seconds: a waiting job is handed out up to a second
//! early and the sender waits out the rest.

use crate::time::{Timestamp, from_micros, to_micros};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Highest rate a webhook may ask for, a second (a minute allows 60 times as many).
pub const MAX_PER_SECOND: u32 = 1000;
/// Most attempts a webhook may allow in flight at once.
pub const MAX_IN_FLIGHT: u32 = 100;
/// About how soon a job held back by the in-flight limit looks again (or sooner, when
/// the earliest lease ends); see `poll_after`.
pub const IN_FLIGHT_POLL: Duration = Duration::from_secs(1);
/// How late a job may be for its slot and still go on it. Jobs late by less than this
/// can go together (after a stall, a second may see up to twice the rate). A job later
/// than this goes only if the schedule is idle, and otherwise takes a new slot.
pub const LATE_SLOT: Duration = Duration::from_secs(1);
/// How long the shared state outlives its last slot and lease (the store may drop it then).
pub const STATE_TTL: Duration = Duration::from_secs(3600);

/// The unit of a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatePeriod {
    /// `N/s`.
    Second,
    /// `N/min`.
    Minute,
}

/// At most `requests` per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests a period.
    pub requests: u32,
    /// The period.
    pub per: RatePeriod,
}

impl RateLimit {
    /// Reads `N/s` or `N/min` as a client sent it: 1 to [`MAX_PER_SECOND`] a second,
    /// or 1 to 60 times that a minute.
    pub fn parse(s: &str) -> Result<Self, String> {
        let limit = Self::read(s).ok_or_else(|| "rate_limit: a rate like 5/s or 300/min".to_owned())?;
        let max = match limit.per {
            RatePeriod::Second => MAX_PER_SECOND,
            RatePeriod::Minute => MAX_PER_SECOND * 60,
        };
        if limit.requests > max {
            return Err(format!("rate_limit: at most {MAX_PER_SECOND}/s or {}/min", MAX_PER_SECOND * 60));
        }
        Ok(limit)
    }

    // Without the client's upper bound: a stored limit keeps working if it tightens.
    fn read(s: &str) -> Option<Self> {
        let (n, unit) = s.split_once('/')?;
        if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let requests: u32 = n.parse().ok()?;
        let per = match unit {
            "s" => RatePeriod::Second,
            "min" => RatePeriod::Minute,
            _ => return None,
        };
        Some(RateLimit { requests, per })
    }

    /// Time between two slots.
    pub fn interval(&self) -> chrono::Duration {
        let period_micros: i64 = match self.per {
            RatePeriod::Second => 1_000_000,
            RatePeriod::Minute => 60_000_000,
        };
        chrono::Duration::microseconds(period_micros / i64::from(self.requests.max(1)))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per {
            RatePeriod::Second => "s",
            RatePeriod::Minute => "min",
        };
        write!(f, "{}/{unit}", self.requests)
    }
}

impl Serialize for RateLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::read(&s).ok_or_else(|| serde::de::Error::custom(format!("not a rate: {s:?}")))
    }
}

/// Checks a maximum of attempts in flight: 1 to [`MAX_IN_FLIGHT`].
pub fn parse_max_in_flight(n: u64) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(n) if (1..=MAX_IN_FLIGHT).contains(&n) => Ok(n),
        _ => Err(format!("max_in_flight: from 1 to {MAX_IN_FLIGHT}")),
    }
}

/// A webhook's limits, as its policy sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests a second or minute.
    pub rate: Option<RateLimit>,
    /// Attempts in flight at once.
    pub max_in_flight: Option<u32>,
}

/// What the workers share about one webhook's limits. Times are microseconds since
/// the epoch, to keep the stored form small.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleState {
    /// The next free slot of the rate: where the next waiting job is placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_slot: Option<i64>,
    /// When the last request was let go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent: Option<i64>,
    /// Attempts in flight: lease name → when the lease ends.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub in_flight: BTreeMap<String, i64>,
}

impl ThrottleState {
    /// When the store may forget this state: [`STATE_TTL`] after its last slot or lease.
    pub fn expires_at(&self) -> Timestamp {
        let last = self.in_flight.values().copied().chain(self.next_slot).chain(self.last_sent).max().unwrap_or(0);
        from_micros(last) + chrono::Duration::from_std(STATE_TTL).unwrap_or_default()
    }
}

/// What a job may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Make the attempt now (holding an in-flight lease, if the webhook limits them).
    Go,
    /// Wait: back to the queue, due `until`; `slotted` if it holds its rate slot then.
    Wait {
        /// When to look again.
        until: Timestamp,
        /// Whether the job has taken its rate slot (at `until`).
        slotted: bool,
    },
}

/// Decides, and writes into `state`, what one job may do at `now`. `slot`: the rate
/// slot the job holds, if it holds one. `lease`/`lease_until`: the in-flight lease it
/// takes when it may go.
///
/// Slots (`next_slot`, one interval apart) are the limit: a job goes on its slot (or
/// late for it by less than [`LATE_SLOT`]), and a newcomer goes at once only when the
/// slots are free. A job late for its slot by more than that goes if every slot taken
/// so far has come (its own missed one included, so a job always late for a slow rate
/// still goes) and an interval has passed since the last request, and otherwise takes
/// a new slot: late jobs never go together.
pub fn admit(
    state: &mut ThrottleState,
    limits: Limits,
    slot: Option<Timestamp>,
    lease: &str,
    lease_until: Timestamp,
    now: Timestamp,
) -> Admission {
    let now_us = to_micros(&now);
    // A change tried again may meet this job's own lease, from a write that landed
    // but whose answer was lost.
    state.in_flight.remove(lease);
    state.in_flight.retain(|_, until| *until > now_us);
    // In flight first: a job held back by it takes no slot meanwhile.
    if let Some(max) = limits.max_in_flight
        && state.in_flight.len() >= max as usize
    {
        let poll = now_us + poll_after(lease);
        let first_end = state.in_flight.values().copied().min().unwrap_or(poll);
        return Admission::Wait { until: from_micros(first_end.min(poll)), slotted: false };
    }
    if let Some(rate) = limits.rate {
        let interval = rate.interval().num_microseconds().unwrap_or(1).max(1);
        let late = LATE_SLOT.as_micros() as i64;
        let next = state.next_slot.unwrap_or(now_us);
        let go = match slot.map(|s| to_micros(&s)) {
            // On its slot, or late for it by less than LATE_SLOT.
            Some(s) if s + late >= now_us => true,
            // Later: it goes if every slot taken so far has come (the schedule is idle,
            // its own missed slot included) and a whole interval has passed since the
            // last request let go, and otherwise takes a new one.
            Some(_) => next - interval < now_us && state.last_sent.is_none_or(|last| last + interval <= now_us),
            // A newcomer goes if the slots are free now.
            None => next <= now_us,
        };
        if !go {
            let at = next.max(now_us);
            state.next_slot = Some(at + interval);
            return Admission::Wait { until: from_micros(at), slotted: true };
        }
        state.next_slot = Some(next.max(now_us + interval));
        state.last_sent = Some(now_us);
    }
    if limits.max_in_flight.is_some() {
        state.in_flight.insert(lease.to_owned(), to_micros(&lease_until));
    }
    Admission::Go
}

/// How long a job held back by the in-flight limit waits before it looks again:
/// [`IN_FLIGHT_POLL`], spread from half to one and a half times it by the job's lease
/// name, so waiting jobs do not all look at once.
fn poll_after(lease: &str) -> i64 {
    let poll = IN_FLIGHT_POLL.as_micros() as i64;
    poll / 2 + spread(lease, poll)
}

/// A moment in `[0, within)` microseconds, fixed by `lease`: waiting jobs look again
/// at different moments instead of all at once.
fn spread(lease: &str, within: i64) -> i64 {
    // FNV-1a: any stable spread will do.
    let hash = lease.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % within.max(1) as u64) as i64
}

/// Most reads and write-backs of one [`ThrottleStore::update`](crate::ports::ThrottleStore::update) before it gives up (the
/// job then comes back from the queue).
pub const MAX_TRIES: usize = 32;

#[cfg(test)]
mod tests;
