use super::*;
use crate::Policy;
use crate::fakes::{Fakes, Fault, Op, start};
use crate::ids::{AttemptId, DeliveryId};
use crate::ports::{AnalyticsStore, Clock, DeliveryQueue, DeliveryStore, FailureKind, HttpOutcome};
use crate::retry::RetrySchedule;
use crate::send::{SendReport, attempt_once, send};
use bytes::Bytes;
use std::time::Duration;

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

/// `start()` (10:00 UTC) plus `minutes`.
fn at(minutes: i64) -> Timestamp {
    start() + chrono::Duration::minutes(minutes)
}

fn bucket(counters: &[(&str, u64)]) -> BTreeMap<String, u64> {
    counters.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn outcome(r: &Report, class: OutcomeClass) -> u64 {
    r.by_outcome.iter().find(|(c, _)| *c == class).map(|(_, n)| *n).expect("every class is listed")
}

/// The chart as (minutes after `start()`, attempts, succeeded), non-empty buckets only.
fn charted(r: &Report) -> Vec<(i64, u64, u64)> {
    r.buckets.iter().filter(|b| b.attempts > 0).map(|b| ((b.start - start()).num_minutes(), b.attempts, b.succeeded)).collect()
}

#[test]
fn every_duration_falls_in_a_bin_reported_at_most_19_percent_above_it() {
    for ms in (0..=70_000u64).chain([1 << 20, 1 << 31, u64::MAX]) {
        let k = latency_bin(ms);
        let bound = bin_upper_ms(k);
        let capped = ms.min(1 << 31);
        assert!(bound >= capped.max(1), "{ms} ms in bin {k} reported as {bound}");
        assert!(bound as f64 <= capped.max(1) as f64 * 1.1893, "{ms} ms in bin {k} reported as {bound}");
        if k > 0 {
            assert!(bin_upper_ms(k - 1) < capped, "{ms} ms belongs in a lower bin than {k}");
        }
    }
    assert_eq!((bin_upper_ms(0), bin_upper_ms(4), bin_upper_ms(40)), (1, 2, 1024));
}

#[test]
fn a_bucket_has_at_most_95_counter_names_up_to_the_longest_timeout() {
    let longest = crate::policy::MAX_DELIVERY_TIMEOUT.as_millis() as u64 + 5_000;
    let bins: std::collections::BTreeSet<u32> = (0..=longest).map(latency_bin).collect();
    let fixed = OutcomeClass::ALL.len() + 2 + 2 * 12;
    assert_eq!(fixed, 36);
    assert!(bins.len() <= 59, "{} latency bins", bins.len());
}

#[test]
fn windows_are_read_from_their_four_names_only() {
    for w in Window::ALL {
        assert_eq!(Window::parse(w.as_str()), Some(w));
        assert_eq!(w.bucket_secs() * w.buckets() as i64, [3600, 86_400, 7 * 86_400, 30 * 86_400][w as usize]);
    }
    for bad in ["", "1H", "2h", "24 h", "7d ", "30days", "1w"] {
        assert_eq!(Window::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn an_attempt_adds_its_outcome_latency_five_minutes_and_its_delivery_s_end() {
    let attempt = Attempt {
        id: AttemptId::generate(),
        delivery_id: DeliveryId::generate(),
        attempted_at: at(7) + chrono::Duration::seconds(59),
        status_code: Some(200),
        duration_ms: 100,
        error: None,
        response_body: None,
    };
    let names = |c: Vec<(String, u64)>| c.into_iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" ");
    assert_eq!(names(counters(&attempt, OutcomeClass::Success, DeliveryStatus::Succeeded)), "a_2xx=1 l_27=1 m05_a=1 m05_ok=1 d_ok=1");
    let timeout = Attempt { status_code: None, duration_ms: 10_000, attempted_at: at(55), ..attempt.clone() };
    assert_eq!(names(counters(&timeout, OutcomeClass::Timeout, DeliveryStatus::Pending)), "a_timeout=1 l_54=1 m55_a=1");
    assert_eq!(names(counters(&timeout, OutcomeClass::Timeout, DeliveryStatus::Failed)), "a_timeout=1 l_54=1 m55_a=1 d_fail=1");
}

#[test]
fn a_day_has_24_hourly_buckets_ending_with_the_current_one_empty_ones_at_zero() {
    let stored = vec![
        (at(-24 * 60), bucket(&[("a_2xx", 100)])), // 10:00 yesterday: before the window
        (at(-5 * 60), bucket(&[("a_2xx", 2), ("d_ok", 2), ("l_20", 2)])),
        (at(0), bucket(&[("a_2xx", 3), ("a_5xx", 1), ("a_unknown", 9), ("d_ok", 3), ("l_20", 4), ("x", 1)])),
    ];
    let r = summarize(Window::Day, at(30), &stored);
    assert_eq!((r.since, r.until, r.totals_since), (at(-23 * 60), at(60), at(-23 * 60)));
    assert_eq!(r.buckets.len(), 24);
    assert!(r.buckets.windows(2).all(|b| b[1].start - b[0].start == chrono::Duration::hours(1)));
    assert_eq!(charted(&r), vec![(-300, 2, 2), (0, 4, 3)], "names it does not know are left out");
    assert_eq!((r.attempts(), r.attempts_succeeded(), outcome(&r, OutcomeClass::ServerError)), (6, 5, 1));
    assert_eq!((r.deliveries_succeeded, r.deliveries_failed), (5, 0));
    assert_eq!(r.success_rate(), Some(5.0 / 6.0));
    assert_eq!(r.latency_ms, Some(Percentiles { p50: 32, p95: 32, p99: 32 }));
}

#[test]
fn nothing_counted_reads_as_zeros_and_no_rate_or_latency() {
    for w in Window::ALL {
        let r = summarize(w, at(30), &[]);
        assert_eq!(r.buckets.len(), w.buckets());
        assert!(r.buckets.iter().all(|b| b.attempts == 0 && b.succeeded == 0));
        assert_eq!((r.attempts(), r.success_rate(), r.latency_ms), (0, None, None));
        assert_eq!(r.by_outcome.len(), OutcomeClass::ALL.len());
    }
}

#[test]
fn the_hour_charts_five_minute_buckets_and_counts_the_whole_hours_it_touches() {
    let stored = vec![
        (at(-60), bucket(&[("m05_a", 2), ("m10_a", 1), ("m10_ok", 1), ("a_2xx", 1), ("a_5xx", 2), ("d_fail", 1)])),
        (at(0), bucket(&[("m05_a", 3), ("m05_ok", 1), ("m07_a", 5), ("m60_a", 5), ("a_2xx", 1), ("a_timeout", 2)])),
    ];
    let r = summarize(Window::Hour, at(7), &stored);
    assert_eq!((r.since, r.until, r.totals_since), (at(-50), at(10), at(-60)));
    assert_eq!(r.buckets.len(), 12);
    assert_eq!(r.buckets[11].start, at(5));
    assert_eq!(charted(&r), vec![(-50, 1, 1), (5, 3, 1)], "09:05 is before the chart; m07 and m60 are no five minutes");
    assert_eq!((r.attempts(), outcome(&r, OutcomeClass::Timeout), r.deliveries_failed), (6, 2, 1));
}

#[test]
fn a_week_has_28_buckets_of_six_hours_and_a_month_30_days() {
    let stored = vec![(at(-5 * 60), bucket(&[("a_2xx", 1)])), (at(-4 * 60), bucket(&[("a_5xx", 1)])), (at(60), bucket(&[("a_2xx", 4)]))];
    // 10:30 is in the 06:00–12:00 bucket; 05:00 in the one before.
    let week = summarize(Window::Week, at(30), &stored);
    assert_eq!((week.until, week.since), (at(2 * 60), at(2 * 60) - chrono::Duration::days(7)));
    assert_eq!(week.buckets.len(), 28);
    assert_eq!(charted(&week), vec![(-10 * 60, 1, 1), (-4 * 60, 5, 4)]);
    let month = summarize(Window::Month, at(30), &stored);
    assert_eq!((month.until, month.since), (at(14 * 60), at(14 * 60) - chrono::Duration::days(30)));
    assert_eq!(month.buckets.len(), 30);
    assert_eq!(charted(&month), vec![(-10 * 60, 6, 5)]);
}

#[test]
fn percentiles_are_the_nearest_rank_bins_upper_bounds() {
    let histogram: BTreeMap<u32, u64> = [(latency_bin(10), 90), (latency_bin(100), 9), (latency_bin(1000), 1)].into();
    assert_eq!(percentiles(&histogram), Some(Percentiles { p50: 11, p95: 107, p99: 107 }));
    let one: BTreeMap<u32, u64> = [(latency_bin(2500), 1)].into();
    assert_eq!(percentiles(&one), Some(Percentiles { p50: 2896, p95: 2896, p99: 2896 }));
    assert_eq!(percentiles(&BTreeMap::new()), None);
    assert_eq!(percentiles(&[(3, 0)].into()), None, "bins of zero count nothing");
}

// ---------------------------------------------------------------- the send step

const ELAPSED: Duration = Duration::from_millis(25);

fn answer(status: u16) -> HttpOutcome {
    HttpOutcome::Response { status, retry_after: None, body: Bytes::new(), elapsed: ELAPSED }
}

/// Sends every due job, moving the clock to each in turn, until the queue is empty.
async fn drain(f: &Fakes, answers: &mut impl Iterator<Item = HttpOutcome>) -> Vec<SendReport> {
    let mut reports = Vec::new();
    while let Some(due) = f.queue.tasks().iter().map(|t| t.due_at()).min() {
        f.clock.set(f.clock.now().max(due));
        for leased in f.queue.take_due(f.clock.now(), 10, Duration::from_secs(60)).await.unwrap() {
            f.http.answer(answers.next().expect("an answer for every attempt"));
            reports.push(send(&f.h, leased.job().expect("a delivery job")).await.unwrap());
            f.queue.ack(&leased.receipt).await.unwrap();
        }
    }
    reports
}

#[tokio::test]
async fn the_send_step_counts_what_its_attempts_came_to() {
    let policy = Policy { retry: RetrySchedule::new(vec![Duration::from_secs(6 * 60)]), ..Policy::default() };
    let f = Fakes::builder().policy(policy).build();
    let w = f.add_webhook(&tenant(), &["*"]);
    for _ in 0..3 {
        let e = f.add_event(&tenant(), "project.created");
        let (_, job) = f.add_delivery(&w, &e);
        f.queue.enqueue(&[job.into()]).await.unwrap();
    }
    // One succeeds; one fails, is retried 6 minutes later and fails for good; one times
    // out, and its retry succeeds.
    let timeout = HttpOutcome::Failed { kind: FailureKind::Timeout, message: "no answer".into(), elapsed: Duration::from_secs(10) };
    let mut answers = vec![answer(200), answer(500), timeout, answer(503), answer(204)].into_iter();
    let reports = drain(&f, &mut answers).await;
    let delivered = reports.iter().filter(|r| matches!(r, SendReport::Delivered(_))).count();
    let failed = reports.iter().filter(|r| matches!(r, SendReport::Failed { .. })).count();
    assert_eq!((reports.len(), delivered, failed), (5, 2, 1));
    assert_eq!(f.count(Op::AnalyticsAdd), 5, "one add per attempt");

    // A test send is an attempt of no delivery: not counted.
    let e = f.add_event(&tenant(), "project.created");
    f.http.answer(answer(200));
    attempt_once(&f.h, &w, &e, &DeliveryId::generate(), AttemptId::generate()).await.unwrap();
    assert_eq!(f.count(Op::AnalyticsAdd), 5);

    let day = report(&f.h, &tenant(), &w.id, Window::Day).await.unwrap();
    assert_eq!((day.attempts(), day.attempts_succeeded(), day.success_rate()), (5, 2, Some(0.4)));
    let classes = [OutcomeClass::Success, OutcomeClass::ServerError, OutcomeClass::Timeout, OutcomeClass::ClientError];
    assert_eq!(classes.map(|c| outcome(&day, c)), [2, 2, 1, 0]);
    assert_eq!((day.deliveries_succeeded, day.deliveries_failed), (2, 1));
    let short = bin_upper_ms(latency_bin(25));
    assert_eq!(day.latency_ms, Some(Percentiles { p50: short, p95: 11_585, p99: 11_585 }));
    assert_eq!(charted(&day), vec![(0, 5, 2)]);
    let hour = report(&f.h, &tenant(), &w.id, Window::Hour).await.unwrap();
    assert_eq!(charted(&hour), vec![(0, 3, 1), (5, 2, 1)], "the retries started at 10:06");
    let other = report(&f.h, &TenantId::parse("acme").unwrap(), &w.id, Window::Day).await.unwrap();
    assert_eq!(other.attempts(), 0, "counters are the tenant's own");
}

#[tokio::test]
async fn a_redelivery_counts_as_an_attempt_and_its_delivery_s_end_again() {
    let f = Fakes::new();
    let w = f.add_webhook(&tenant(), &["*"]);
    let e = f.add_event(&tenant(), "project.created");
    let (d, job) = f.add_delivery(&w, &e);
    f.queue.enqueue(&[job.into()]).await.unwrap();
    drain(&f, &mut [answer(200)].into_iter()).await;
    crate::usecases::redeliver(&f.h, &tenant(), &w.id, &d.id).await.unwrap();
    drain(&f, &mut [answer(500)].into_iter()).await;
    let r = report(&f.h, &tenant(), &w.id, Window::Day).await.unwrap();
    assert_eq!((r.attempts(), r.deliveries_succeeded, r.deliveries_failed), (2, 1, 1));
    let stored = f.analytics.read(&tenant(), &w.id, start(), at(60)).await.unwrap();
    let want = [("a_2xx", 1), ("a_5xx", 1), ("d_fail", 1), ("d_ok", 1), ("l_19", 2), ("m00_a", 2), ("m00_ok", 1)];
    assert_eq!(stored, vec![(start(), bucket(&want))], "one bucket, the hour both attempts started in");
}

#[tokio::test]
async fn a_count_that_cannot_be_stored_does_not_fail_the_send() {
    let f = Fakes::new();
    let w = f.add_webhook(&tenant(), &["*"]);
    let e = f.add_event(&tenant(), "project.created");
    let (d, job) = f.add_delivery(&w, &e);
    f.fail_next(Op::AnalyticsAdd, Fault::Unknown);
    f.http.answer(answer(200));
    assert!(matches!(send(&f.h, &job).await.unwrap(), SendReport::Delivered(_)));
    assert_eq!(f.deliveries.get(&tenant(), &w.id, &d.id).await.unwrap().status, DeliveryStatus::Succeeded);
    assert_eq!(report(&f.h, &tenant(), &w.id, Window::Day).await.unwrap().attempts(), 0, "that attempt is lost to analytics");
    let calls = f.calls();
    let recorded = calls.iter().position(|c| *c == Op::RecordAttempt).unwrap();
    assert!(calls.iter().position(|c| *c == Op::AnalyticsAdd).unwrap() > recorded, "counted only once recorded");
}
