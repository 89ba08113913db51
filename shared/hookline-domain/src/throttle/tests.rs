//! The rate limits: the slot schedule and in-flight leases as pure decisions on a
//! test clock, and the send step holding a webhook to them over the fakes.

use super::*;
use crate::delivery::Task;
use crate::fakes::{Fakes, Fault, Op, start};
use crate::ids::TenantId;
use crate::ports::{Clock, HttpOutcome};
use crate::send::{SendReport, send};
use bytes::Bytes;

fn at_ms(ms: i64) -> Timestamp {
    start() + chrono::Duration::milliseconds(ms)
}

fn rate(s: &str) -> Limits {
    Limits { rate: Some(RateLimit::parse(s).unwrap()), max_in_flight: None }
}

fn in_flight(n: u32) -> Limits {
    Limits { rate: None, max_in_flight: Some(n) }
}

#[test]
fn rates_read_per_second_and_per_minute_within_bounds() {
    assert_eq!(RateLimit::parse("5/s").unwrap().interval(), chrono::Duration::milliseconds(200));
    assert_eq!(RateLimit::parse("300/min").unwrap().interval(), chrono::Duration::milliseconds(200));
    assert_eq!(RateLimit::parse("7/min").unwrap().to_string(), "7/min");
    for bad in
        ["", "5", "0/s", "05/s", "+5/s", " 5/s", "5/s ", "-1/s", "5/h", "5/sec", "x/s", "1001/s", "60001/min", "5/s/s", "99999999999/s"]
    {
        let e = RateLimit::parse(bad).unwrap_err();
        assert!(e.starts_with("rate_limit: "), "{bad}: {e}");
    }
    assert_eq!(parse_max_in_flight(1), Ok(1));
    assert_eq!(parse_max_in_flight(100), Ok(100));
    for bad in [0, 101, u64::MAX] {
        assert!(parse_max_in_flight(bad).unwrap_err().starts_with("max_in_flight: "));
    }
    // A stored rate reads back without the client's upper bound.
    let stored: RateLimit = serde_json::from_str("\"5000/s\"").unwrap();
    assert_eq!(stored.requests, 5000);
}

#[test]
fn jobs_arriving_together_take_successive_slots() {
    let mut s = ThrottleState::default();
    let limits = rate("5/s");
    assert_eq!(admit(&mut s, limits, None, "a", at_ms(30_000), start()), Admission::Go);
    for i in 1..5 {
        let got = admit(&mut s, limits, None, "a", at_ms(30_000), start());
        assert_eq!(got, Admission::Wait { until: at_ms(200 * i), slotted: true });
    }
    // A job back at its slot goes without taking another.
    let next = s.next_slot;
    assert_eq!(admit(&mut s, limits, Some(at_ms(200)), "a", at_ms(30_000), at_ms(200)), Admission::Go);
    assert_eq!(s.next_slot, next);
    // The schedule runs on: the next newcomer waits behind the four.
    assert_eq!(admit(&mut s, limits, None, "a", at_ms(30_000), at_ms(200)), Admission::Wait { until: at_ms(1000), slotted: true });
}

#[test]
fn a_late_job_goes_when_there_is_room_and_otherwise_takes_a_new_slot() {
    let mut s = ThrottleState::default();
    let limits = rate("5/s");
    assert_eq!(admit(&mut s, limits, None, "a", at_ms(30_000), start()), Admission::Go);
    for i in 1..=10 {
        assert_eq!(admit(&mut s, limits, None, "a", at_ms(30_000), start()), Admission::Wait { until: at_ms(200 * i), slotted: true });
    }
    // Late by less than a second: it goes on its slot.
    assert_eq!(admit(&mut s, limits, Some(at_ms(200)), "a", at_ms(30_000), at_ms(1_100)), Admission::Go);
    // Later than that while slots are still coming: a new slot at the end.
    assert_eq!(
        admit(&mut s, limits, Some(at_ms(400)), "a", at_ms(30_000), at_ms(1_500)),
        Admission::Wait { until: at_ms(2_200), slotted: true }
    );
    // Once every slot taken has come, a late job goes at once.
    assert_eq!(admit(&mut s, limits, Some(at_ms(600)), "a", at_ms(30_000), at_ms(2_300)), Admission::Go);
    assert_eq!(admit(&mut s, limits, None, "a", at_ms(30_000), at_ms(2_300)), Admission::Wait { until: at_ms(2_500), slotted: true });
}

#[test]
fn late_jobs_coming_back_together_after_a_stall_go_one_at_a_time() {
    let mut s = ThrottleState::default();
    let limits = rate("5/s");
    assert_eq!(admit(&mut s, limits, None, "a", at_ms(30_000), start()), Admission::Go);
    let slots: Vec<Timestamp> = (1..=20)
        .map(|_| match admit(&mut s, limits, None, "a", at_ms(30_000), start()) {
            Admission::Wait { until, .. } => until,
            Admission::Go => panic!("slots are taken"),
        })
        .collect();
    // Ten seconds later (an outage, say) all twenty come back a millisecond apart.
    let back: Vec<Admission> = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| admit(&mut s, limits, Some(*slot), "a", at_ms(40_000), at_ms(10_000 + i as i64)))
        .collect();
    assert_eq!(back.iter().filter(|a| **a == Admission::Go).count(), 1, "{back:?}");
    let waits: std::collections::BTreeSet<Timestamp> =
        back.iter().filter_map(|a| if let Admission::Wait { until, .. } = a { Some(*until) } else { None }).collect();
    assert_eq!(waits.len(), 19, "each on a slot of its own: {waits:?}");
}

#[test]
fn a_job_always_late_for_a_slow_rate_still_goes() {
    let mut s = ThrottleState::default();
    let limits = rate("1/min");
    assert_eq!(admit(&mut s, limits, None, "a", at_ms(300_000), start()), Admission::Go);
    assert_eq!(admit(&mut s, limits, None, "b", at_ms(300_000), start()), Admission::Wait { until: at_ms(60_000), slotted: true });
    assert_eq!(
        admit(&mut s, limits, Some(at_ms(60_000)), "b", at_ms(300_000), at_ms(62_000)),
        Admission::Go,
        "two seconds late, a minute since the last"
    );
}

#[test]
fn the_rate_holds_however_late_the_jobs_come_back() {
    let mut s = ThrottleState::default();
    let limits = rate("5/s");
    // Forty jobs; each comes back some pseudo-random lateness after the time it was told.
    let mut pending: Vec<(Timestamp, Option<Timestamp>)> = (0..40).map(|i| (at_ms(i * 37), None)).collect();
    let mut sent = Vec::new();
    let mut lateness = 0_i64;
    while let Some(i) = (0..pending.len()).min_by_key(|i| pending[*i].0) {
        let (now, slot) = pending.remove(i);
        match admit(&mut s, limits, slot, "a", now + chrono::Duration::seconds(30), now) {
            Admission::Go => sent.push(now),
            Admission::Wait { until, slotted } => {
                lateness = (lateness * 7 + 311) % 1_700;
                pending.push((until + chrono::Duration::milliseconds(lateness), slotted.then_some(until)));
            }
        }
    }
    assert_eq!(sent.len(), 40, "every job went");
    sent.sort();
    // Over the run the rate holds (a slot each, plus what jobs late by less than a
    // second may bring forward), and no second sees more than twice the rate.
    let span = *sent.last().unwrap() - sent[0];
    assert!(span >= chrono::Duration::milliseconds(200 * (40 - 1 - 5)), "40 requests in {span}");
    for (i, a) in sent.iter().enumerate() {
        let within = sent[i..].iter().filter(|b| **b - *a < chrono::Duration::seconds(1)).count();
        assert!(within <= 10, "{within} requests in the second from {a}");
    }
}

#[test]
fn an_idle_webhook_saves_up_no_burst() {
    let mut s = ThrottleState::default();
    let limits = rate("5/s");
    assert_eq!(admit(&mut s, limits, None, "a", at_ms(30_000), start()), Admission::Go);
    // A minute of silence: the next goes now, the one after it 200 ms later, not at once.
    assert_eq!(admit(&mut s, limits, None, "a", at_ms(90_000), at_ms(60_000)), Admission::Go);
    assert_eq!(admit(&mut s, limits, None, "a", at_ms(90_000), at_ms(60_000)), Admission::Wait { until: at_ms(60_200), slotted: true });
}

#[test]
fn in_flight_leases_cap_concurrency_and_end_by_themselves() {
    let mut s = ThrottleState::default();
    let limits = in_flight(2);
    assert_eq!(admit(&mut s, limits, None, "a", at_ms(500), start()), Admission::Go);
    assert_eq!(admit(&mut s, limits, None, "b", at_ms(3_000), start()), Admission::Go);
    // Full: look again when the first lease ends, or after the poll interval if sooner.
    assert_eq!(admit(&mut s, limits, None, "c", at_ms(9_000), start()), Admission::Wait { until: at_ms(500), slotted: false });
    s.in_flight.insert("a".to_owned(), to_micros(&at_ms(5_000)));
    let poll = start() + chrono::Duration::microseconds(poll_after("c"));
    assert_eq!(admit(&mut s, limits, None, "c", at_ms(9_000), start()), Admission::Wait { until: poll, slotted: false });
    // Waiting jobs look again at different times, from half a poll to one and a half.
    let polls: std::collections::BTreeSet<i64> = (0..50).map(|i| poll_after(&format!("lease-{i}"))).collect();
    assert!(polls.len() > 40 && polls.iter().all(|p| (500_000..1_500_000).contains(p)), "{polls:?}");
    // A lease past its end holds nothing: "b" (ended at 3 s) and "a" (5 s) are gone at 6 s.
    assert_eq!(admit(&mut s, limits, None, "c", at_ms(9_000), at_ms(6_000)), Admission::Go);
    assert_eq!(s.in_flight.keys().collect::<Vec<_>>(), ["c"]);
}

#[test]
fn a_job_held_back_by_the_in_flight_limit_takes_no_slot_meanwhile() {
    let mut s = ThrottleState::default();
    let limits = Limits { rate: Some(RateLimit::parse("10/s").unwrap()), max_in_flight: Some(1) };
    assert_eq!(admit(&mut s, limits, None, "a", at_ms(30_000), start()), Admission::Go);
    let next = s.next_slot;
    // "a" is in flight: "b" looks again in about a second, and the schedule has not moved.
    let poll = |from: Timestamp, lease: &str| from + chrono::Duration::microseconds(poll_after(lease));
    assert_eq!(admit(&mut s, limits, None, "b", at_ms(30_000), start()), Admission::Wait { until: poll(start(), "b"), slotted: false });
    assert_eq!(
        admit(&mut s, limits, None, "b", at_ms(30_000), at_ms(1_000)),
        Admission::Wait { until: poll(at_ms(1_000), "b"), slotted: false }
    );
    assert_eq!(s.next_slot, next);
    s.in_flight.remove("a");
    assert_eq!(admit(&mut s, limits, None, "b", at_ms(30_000), at_ms(2_000)), Admission::Go, "the schedule is free: at once");
    // A job on its slot still waits for room in flight, keeping nothing.
    assert_eq!(
        admit(&mut s, limits, Some(at_ms(2_100)), "c", at_ms(30_000), at_ms(2_100)),
        Admission::Wait { until: poll(at_ms(2_100), "c"), slotted: false }
    );
    // A change tried again after a write that landed unanswered finds its own lease: it
    // still goes, holding one place.
    s.in_flight.clear();
    (s.next_slot, s.last_sent) = (None, None);
    assert_eq!(admit(&mut s, limits, None, "d", at_ms(30_000), at_ms(3_000)), Admission::Go);
    (s.next_slot, s.last_sent) = (None, None);
    assert_eq!(admit(&mut s, limits, None, "d", at_ms(30_000), at_ms(3_000)), Admission::Go);
    assert_eq!(s.in_flight.len(), 1);
}

#[test]
fn the_state_expires_an_hour_after_its_last_slot_or_lease() {
    let s = ThrottleState {
        next_slot: Some(to_micros(&at_ms(1_000))),
        last_sent: Some(to_micros(&at_ms(800))),
        in_flight: [("a".to_owned(), to_micros(&at_ms(9_000)))].into(),
    };
    assert_eq!(s.expires_at(), at_ms(9_000) + chrono::Duration::hours(1));
}

fn ok() -> HttpOutcome {
    HttpOutcome::Response { status: 200, retry_after: None, body: Bytes::new(), elapsed: std::time::Duration::from_millis(10) }
}

/// Runs every due job in the fake queue (in due order) until none is left, moving
/// the clock to each job's due time; returns each delivery sent, and when.
async fn drain(f: &Fakes) -> Vec<(crate::ids::DeliveryId, Timestamp)> {
    let mut sent = Vec::new();
    loop {
        let mut jobs = f.queue.jobs();
        jobs.sort_by_key(|j| j.due_at);
        let Some(job) = jobs.first().cloned() else { return sent };
        if job.due_at > f.clock.now() {
            f.clock.set(job.due_at);
        }
        let leased = f.h.queue.take_due(f.clock.now(), 1, std::time::Duration::from_secs(60)).await.unwrap().remove(0);
        let Task::Attempt(job) = &leased.task else { panic!("a job") };
        f.http.answer(ok());
        let before = f.clock.now();
        if let SendReport::Delivered(_) = send(&f.h, job).await.unwrap() {
            sent.push((job.delivery_id.clone(), before));
        }
        f.h.queue.ack(&leased.receipt).await.unwrap();
    }
}

#[tokio::test]
async fn the_send_step_spreads_a_burst_over_the_webhook_s_rate_and_loses_nothing() {
    let f = Fakes::new();
    let tenant = TenantId::default_tenant();
    let mut w = f.add_webhook(&tenant, &["project.*"]);
    w.policy.rate_limit = Some(RateLimit::parse("5/s").unwrap());
    f.webhooks.put(&w);
    let other = f.add_webhook(&tenant, &["project.*"]);
    let mut ids = Vec::new();
    for _ in 0..10 {
        let event = f.add_event(&tenant, "project.created");
        let (d, job) = f.add_delivery(&w, &event);
        f.h.queue.enqueue(&[job.into()]).await.unwrap();
        ids.push(d.id);
        let (_, job) = f.add_delivery(&other, &event);
        f.h.queue.enqueue(&[job.into()]).await.unwrap();
    }
    let sent = drain(&f).await;
    assert_eq!(sent.len(), 20, "every delivery of both webhooks was sent");
    let limited: Vec<Timestamp> = sent.iter().filter(|(d, _)| ids.contains(d)).map(|(_, t)| *t).collect();
    assert_eq!(limited.len(), 10);
    for pair in limited.windows(2) {
        assert!(pair[1] - pair[0] >= chrono::Duration::milliseconds(200), "{pair:?}");
    }
    assert!(limited[9] - limited[0] < chrono::Duration::milliseconds(1_900), "no slower than the rate: {limited:?}");
    for id in ids {
        assert_eq!(f.deliveries.stored(&id).unwrap().attempts, 1, "each limited delivery attempted once, none failed");
    }
}

async fn state(f: &Fakes, w: &crate::webhook::Webhook) -> ThrottleState {
    let mut seen = ThrottleState::default();
    f.h.throttles.update(&w.tenant, &w.id, &mut |s| seen = s.clone()).await.unwrap();
    seen
}

#[tokio::test]
async fn an_attempt_holds_an_in_flight_lease_until_it_is_recorded() {
    let f = Fakes::new();
    let tenant = TenantId::default_tenant();
    let mut w = f.add_webhook(&tenant, &["project.*"]);
    w.policy.max_in_flight = Some(1);
    f.webhooks.put(&w);
    let (_, job) = f.add_delivery(&w, &f.add_event(&tenant, "project.created"));
    f.http.answer(ok());
    assert!(matches!(send(&f.h, &job).await.unwrap(), SendReport::Delivered(_)));
    let calls = f.calls();
    let updates: Vec<usize> = calls.iter().enumerate().filter(|(_, o)| **o == Op::ThrottleUpdate).map(|(i, _)| i).collect();
    let post = calls.iter().position(|o| *o == Op::Post).unwrap();
    let record = calls.iter().position(|o| *o == Op::RecordAttempt).unwrap();
    assert!(updates.len() == 2 && updates[0] < post && updates[1] > record, "taken before the request, ended after the record: {calls:?}");
    assert!(state(&f, &w).await.in_flight.is_empty());
    // A lease held elsewhere (another worker's attempt) holds the next job back.
    let until = to_micros(&at_ms(60_000));
    f.h.throttles
        .update(&tenant, &w.id, &mut |s| {
            s.in_flight.insert("other".to_owned(), until);
        })
        .await
        .unwrap();
    let (_, job) = f.add_delivery(&w, &f.add_event(&tenant, "project.created"));
    let now = f.clock.now();
    let report = send(&f.h, &job).await.unwrap();
    let SendReport::Throttled { until } = report else { panic!("throttled: {report:?}") };
    let wait = until - now;
    assert!(
        wait >= chrono::Duration::milliseconds(500) && wait < chrono::Duration::milliseconds(1_500),
        "looks again in about a second: {wait}"
    );
    assert!(f.http.requests().len() == 1, "nothing sent while the lease is held");
    assert!(f.queue.jobs().iter().any(|j| j.delivery_id == job.delivery_id && j.due_at == until), "the job is back in the queue");
}

#[tokio::test]
async fn a_store_failure_stops_the_step_before_the_claim_and_the_job_comes_back() {
    let f = Fakes::new();
    let tenant = TenantId::default_tenant();
    let mut w = f.add_webhook(&tenant, &["project.*"]);
    w.policy.rate_limit = Some(RateLimit::parse("5/s").unwrap());
    f.webhooks.put(&w);
    let (_, job) = f.add_delivery(&w, &f.add_event(&tenant, "project.created"));
    f.fail_next(Op::ThrottleUpdate, Fault::Unknown);
    assert!(send(&f.h, &job).await.is_err());
    assert_eq!(f.calls(), vec![Op::WebhookGet, Op::ThrottleUpdate], "nothing claimed, sent or queued");
    f.http.answer(ok());
    assert!(matches!(send(&f.h, &job).await.unwrap(), SendReport::Delivered(_)), "the job coming back goes");
}
