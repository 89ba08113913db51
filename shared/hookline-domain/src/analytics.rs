//! Per-webhook analytics: attempts by outcome, deliveries finished, latency percentiles
//! and a chart's buckets, over the last hour, day, week or month ([`Window`]).
//!
//! Cheap to answer in every runtime because nothing is scanned: as each attempt is
//! recorded, the send step adds it to the counters of its webhook's bucket for the hour
//! it started in ([`record`]: one [`AnalyticsStore::add`] per attempt), and a report
//! ([`report`]) reads at most 720 buckets (30 days of hours) and sums them.
//!
//! A bucket's counters, by name (short, because a DynamoDB item holds one bucket and
//! its size is what a write costs):
//!
//! - `a_<outcome>`: attempts by [`OutcomeClass`] label (`a_2xx`, `a_5xx`, `a_timeout`, …);
//! - `d_ok`, `d_fail`: deliveries that finished with this attempt, succeeded or failed
//!   for good (a retry still to come counts neither);
//! - `l_<k>`: attempts whose duration fell in latency bin `k` ([`latency_bin`]);
//! - `m<NN>_a`, `m<NN>_ok`: attempts, and those answered 2xx, that started in the five
//!   minutes from minute `NN` of the hour (`00`, `05`, … `55`), for the 1h window's chart.
//!
//! So a bucket has at most 36 fixed names plus the latency bins its attempts fell in
//! (59 can occur up to [`crate::policy::MAX_DELIVERY_TIMEOUT`]; an hour of one webhook
//! usually sees a handful).
//!
//! Latency is a histogram with logarithmic bins: bin `k` holds durations up to
//! 2^(k/4) ms, so a percentile is reported as the largest whole millisecond of its bin:
//! never below the true value, and at most 19 % above it (durations under 1 ms count as
//! 1 ms).
//!
//! Test sends (`POST /webhooks/{id}/test`) are not counted: they are not deliveries.
//! Manual redeliveries and recovery attempts are attempts, and a delivery that finishes
//! again after one counts again. A delivery that ends without an attempt (its webhook
//! was disabled or deleted, its event is gone) is not counted. Counting is best effort:
//! it follows the attempt's record, so a process that dies in between, or a store that
//! fails the add, loses that attempt's counts (and says so in a warning).

use crate::delivery::{Attempt, Delivery, DeliveryStatus};
use crate::ids::{TenantId, WebhookId};
use crate::metrics::OutcomeClass;
use crate::ports::{Hookline, StoreError};
use crate::time::Timestamp;
use chrono::Timelike;
use std::collections::BTreeMap;

/// A bucket's span in the store: one hour, in seconds.
pub const HOUR_SECS: i64 = 3600;
/// The 1h window's chart resolution, in minutes: what the `m<NN>_*` counters count.
pub const SUB_BUCKET_MINUTES: u32 = 5;
/// Counter of deliveries that succeeded with this attempt.
pub const DELIVERIES_SUCCEEDED: &str = "d_ok";
/// Counter of deliveries that failed for good with this attempt.
pub const DELIVERIES_FAILED: &str = "d_fail";
/// Durations beyond this many milliseconds (about 24 days) count as this many: no
/// attempt lasts that long, and it keeps [`latency_bin`]'s arithmetic in range.
const MAX_LATENCY_MS: u64 = 1 << 31;

/// The span a report covers, and its chart's resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last hour: 12 buckets of 5 minutes.
    Hour,
    /// The last 24 hours: 24 buckets of 1 hour.
    Day,
    /// The last 7 days: 28 buckets of 6 hours (a day is too coarse to see an outage).
    Week,
    /// The last 30 days: 30 buckets of 1 day.
    Month,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 4] = [Window::Hour, Window::Day, Window::Week, Window::Month];

    /// As the API's `?window=` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
        }
    }

    /// Reads `1h`, `24h`, `7d` or `30d`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// One chart bucket, in seconds.
    pub fn bucket_secs(self) -> i64 {
        match self {
            Window::Hour => i64::from(SUB_BUCKET_MINUTES) * 60,
            Window::Day => HOUR_SECS,
            Window::Week => 6 * HOUR_SECS,
            Window::Month => 24 * HOUR_SECS,
        }
    }

    /// How many chart buckets it has.
    pub fn buckets(self) -> usize {
        match self {
            Window::Hour => 12,
            Window::Day => 24,
            Window::Week => 28,
            Window::Month => 30,
        }
    }
}

/// The latency bin of a duration: the smallest `k` with `ms ≤ 2^(k/4)`.
pub fn latency_bin(ms: u64) -> u32 {
    if ms <= 1 {
        return 0;
    }
    // ms ≤ 2^(k/4) ⇔ ms⁴ ≤ 2^k: the bit length of ms⁴ − 1, in exact integers.
    let fourth = u128::from(ms.min(MAX_LATENCY_MS)).pow(4);
    128 - (fourth - 1).leading_zeros()
}

/// The largest whole millisecond bin `k` holds: ⌊2^(k/4)⌋, what a percentile falling
/// in it is reported as.
pub fn bin_upper_ms(k: u32) -> u64 {
    let k = k.min(124);
    let limit = 1u128 << k;
    // A floating estimate, then exact steps: the largest m with m⁴ ≤ 2^k.
    let mut m = 2f64.powf(f64::from(k) / 4.0).floor() as u128;
    while (m + 1).pow(4) <= limit {
        m += 1;
    }
    while m > 0 && m.pow(4) > limit {
        m -= 1;
    }
    m as u64
}

/// Start of the span of `secs` seconds (aligned to the Unix epoch, so to UTC days) that
/// holds `t`.
fn floor_to(t: Timestamp, secs: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(t.timestamp().div_euclid(secs) * secs, 0).unwrap_or(t)
}

/// The counter name of an attempt's outcome.
fn outcome_counter(outcome: OutcomeClass) -> String {
    format!("a_{}", outcome.as_str())
}

/// The counters one attempt adds, given the state its delivery is in afterwards.
pub fn counters(attempt: &Attempt, outcome: OutcomeClass, status: DeliveryStatus) -> Vec<(String, u64)> {
    let minute = attempt.attempted_at.minute() / SUB_BUCKET_MINUTES * SUB_BUCKET_MINUTES;
    let mut c = vec![(outcome_counter(outcome), 1), (format!("l_{}", latency_bin(attempt.duration_ms)), 1), (format!("m{minute:02}_a"), 1)];
    if outcome == OutcomeClass::Success {
        c.push((format!("m{minute:02}_ok"), 1));
    }
    match status {
        DeliveryStatus::Succeeded => c.push((DELIVERIES_SUCCEEDED.to_owned(), 1)),
        DeliveryStatus::Failed => c.push((DELIVERIES_FAILED.to_owned(), 1)),
        DeliveryStatus::Pending => {}
    }
    c
}

/// Counts an attempt just recorded (`delivery` in the state it was recorded with) in
/// its webhook's bucket for the hour the attempt started. Best effort: a failure is
/// logged, never returned, since the attempt itself is safely recorded.
pub async fn record(h: &Hookline, delivery: &Delivery, attempt: &Attempt, outcome: OutcomeClass) {
    let hour = floor_to(attempt.attempted_at, HOUR_SECS);
    let added = h.analytics.add(&delivery.tenant, &delivery.webhook_id, hour, &counters(attempt, outcome, delivery.status)).await;
    if let Err(e) = added {
        tracing::warn!(webhook = %delivery.webhook_id, delivery = %delivery.id, error = %e, "attempt not counted in analytics");
    }
}

/// Three percentiles of attempt durations, each the upper bound of its histogram bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// Median, in milliseconds.
    pub p50: u64,
    /// 95th percentile, in milliseconds.
    pub p95: u64,
    /// 99th percentile, in milliseconds.
    pub p99: u64,
}

/// One bucket of a report's chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartBucket {
    /// Where it starts; it lasts [`Window::bucket_secs`].
    pub start: Timestamp,
    /// Attempts that started in it.
    pub attempts: u64,
    /// Those answered 2xx.
    pub succeeded: u64,
}

/// What a webhook's analytics say over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The window asked for.
    pub window: Window,
    /// Start of the chart's first bucket.
    pub since: Timestamp,
    /// End of the chart's last bucket: the end of the bucket holding the time of the
    /// request, which is still filling.
    pub until: Timestamp,
    /// Start of the first hour the totals count: `since`, except for [`Window::Hour`],
    /// whose totals count the whole hours its chart touches (they are kept per hour).
    pub totals_since: Timestamp,
    /// Attempts by outcome, every class in label order.
    pub by_outcome: Vec<(OutcomeClass, u64)>,
    /// Deliveries that succeeded.
    pub deliveries_succeeded: u64,
    /// Deliveries that failed for good.
    pub deliveries_failed: u64,
    /// Attempt durations; `None` when there were no attempts.
    pub latency_ms: Option<Percentiles>,
    /// The chart, oldest first, empty buckets included.
    pub buckets: Vec<ChartBucket>,
}

impl Report {
    /// Attempts made.
    pub fn attempts(&self) -> u64 {
        self.by_outcome.iter().map(|(_, n)| n).sum()
    }

    /// Attempts answered 2xx.
    pub fn attempts_succeeded(&self) -> u64 {
        self.by_outcome.iter().filter(|(c, _)| *c == OutcomeClass::Success).map(|(_, n)| n).sum()
    }

    /// Succeeded attempts over all attempts; `None` when there were none.
    pub fn success_rate(&self) -> Option<f64> {
        let total = self.attempts();
        (total > 0).then(|| self.attempts_succeeded() as f64 / total as f64)
    }
}

/// A webhook's analytics over `window`, ending with the bucket that holds the clock's
/// time. Assumes the caller checked the webhook is the tenant's.
pub async fn report(h: &Hookline, tenant: &TenantId, webhook: &WebhookId, window: Window) -> Result<Report, StoreError> {
    let now = h.clock.now();
    let (since, until) = span(window, now);
    let buckets = h.analytics.read(tenant, webhook, floor_to(since, HOUR_SECS), until).await?;
    Ok(summarize(window, now, &buckets))
}

/// The chart's span at `now`: `window.buckets()` buckets, the last one holding `now`.
fn span(window: Window, now: Timestamp) -> (Timestamp, Timestamp) {
    let size = window.bucket_secs();
    let until = floor_to(now, size) + chrono::Duration::seconds(size);
    (until - chrono::Duration::seconds(size * window.buckets() as i64), until)
}

/// What one stored bucket counts, read from its counter names. Names it does not know
/// are left out, so a newer writer's counters do not break an older reader.
#[derive(Debug, Default)]
struct Parsed {
    by_outcome: [u64; OutcomeClass::ALL.len()],
    deliveries_succeeded: u64,
    deliveries_failed: u64,
    latency: BTreeMap<u32, u64>,
    /// (attempts, succeeded) per five minutes of the hour.
    minutes: [(u64, u64); 12],
}

impl Parsed {
    /// Attempts answered 2xx.
    fn succeeded(&self) -> u64 {
        OutcomeClass::ALL.iter().zip(self.by_outcome).find(|(c, _)| **c == OutcomeClass::Success).map_or(0, |(_, n)| n)
    }

    fn read(counters: &BTreeMap<String, u64>) -> Parsed {
        let mut p = Parsed::default();
        for (name, &n) in counters {
            if let Some(label) = name.strip_prefix("a_") {
                if let Some(i) = OutcomeClass::ALL.iter().position(|c| c.as_str() == label) {
                    p.by_outcome[i] += n;
                }
            } else if let Some(k) = name.strip_prefix("l_").and_then(|k| k.parse::<u32>().ok()) {
                *p.latency.entry(k).or_default() += n;
            } else if let Some((minute, what)) = name.strip_prefix('m').and_then(|rest| rest.split_once('_')) {
                let slot = minute.parse::<u32>().ok().filter(|m| m % SUB_BUCKET_MINUTES == 0).map(|m| (m / SUB_BUCKET_MINUTES) as usize);
                match (slot.and_then(|i| p.minutes.get_mut(i)), what) {
                    (Some(slot), "a") => slot.0 += n,
                    (Some(slot), "ok") => slot.1 += n,
                    _ => {}
                }
            } else if name == DELIVERIES_SUCCEEDED {
                p.deliveries_succeeded += n;
            } else if name == DELIVERIES_FAILED {
                p.deliveries_failed += n;
            }
        }
        p
    }
}

/// The report of `window` at `now` from the stored buckets (`(hour, counters)`, as
/// [`crate::ports::AnalyticsStore::read`] returns them); buckets outside the window are
/// left out.
pub fn summarize(window: Window, now: Timestamp, stored: &[(Timestamp, BTreeMap<String, u64>)]) -> Report {
    let (since, until) = span(window, now);
    let totals_since = floor_to(since, HOUR_SECS);
    let size = window.bucket_secs();
    let mut buckets: Vec<ChartBucket> = (0..window.buckets())
        .map(|i| ChartBucket { start: since + chrono::Duration::seconds(size * i as i64), attempts: 0, succeeded: 0 })
        .collect();
    let mut add_to_chart = |start: Timestamp, attempts: u64, succeeded: u64| {
        if start >= since && start < until {
            let b = &mut buckets[((start - since).num_seconds() / size) as usize];
            b.attempts += attempts;
            b.succeeded += succeeded;
        }
    };
    let mut by_outcome = [0u64; OutcomeClass::ALL.len()];
    let (mut deliveries_succeeded, mut deliveries_failed) = (0, 0);
    let mut latency = BTreeMap::<u32, u64>::new();
    for (hour, counters) in stored {
        let hour = floor_to(*hour, HOUR_SECS);
        if hour < totals_since || hour >= until {
            continue;
        }
        let p = Parsed::read(counters);
        for (total, n) in by_outcome.iter_mut().zip(p.by_outcome) {
            *total += n;
        }
        deliveries_succeeded += p.deliveries_succeeded;
        deliveries_failed += p.deliveries_failed;
        for (k, n) in &p.latency {
            *latency.entry(*k).or_default() += n;
        }
        match window {
            Window::Hour => {
                for (i, (attempts, succeeded)) in p.minutes.into_iter().enumerate() {
                    add_to_chart(hour + chrono::Duration::minutes((i as u32 * SUB_BUCKET_MINUTES).into()), attempts, succeeded);
                }
            }
            _ => add_to_chart(floor_to(hour, size), p.by_outcome.iter().sum(), p.succeeded()),
        }
    }
    Report {
        window,
        since,
        until,
        totals_since,
        by_outcome: OutcomeClass::ALL.into_iter().zip(by_outcome).collect(),
        deliveries_succeeded,
        deliveries_failed,
        latency_ms: percentiles(&latency),
        buckets,
    }
}

/// p50, p95 and p99 of a histogram (bin → count), by nearest rank; `None` if empty.
pub fn percentiles(histogram: &BTreeMap<u32, u64>) -> Option<Percentiles> {
    let total: u64 = histogram.values().sum();
    if total == 0 {
        return None;
    }
    let at = |percent: u64| {
        // The smallest value with at least ⌈percent·total/100⌉ values at or below it.
        let rank = (u128::from(total) * u128::from(percent)).div_ceil(100).max(1);
        let mut seen = 0u128;
        for (k, n) in histogram {
            seen += u128::from(*n);
            if seen >= rank {
                return bin_upper_ms(*k);
            }
        }
        histogram.keys().next_back().map_or(0, |k| bin_upper_ms(*k))
    };
    Some(Percentiles { p50: at(50), p95: at(95), p99: at(99) })
}

#[cfg(test)]
mod tests;
