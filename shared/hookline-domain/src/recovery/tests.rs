use super::*;
use crate::Policy;
use crate::delivery::Delivery;
use crate::delivery::RecoveryStep;
use crate::fakes::{Fakes, Fault, Op};
use crate::ports::HttpOutcome;
use crate::ports::{Clock, DeliveryQueue, RecoveryStore};
use crate::send::{SendReport, send};
use crate::webhook::Webhook;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn ok() -> HttpOutcome {
    HttpOutcome::Response { status: 200, retry_after: None, body: Bytes::new(), elapsed: Duration::from_millis(5) }
}

fn t0() -> Timestamp {
    crate::fakes::start()
}

fn hours_ago(h: i64) -> Timestamp {
    t0() - chrono::Duration::hours(h)
}

fn fakes(rate: u32) -> Fakes {
    Fakes::builder().policy(Policy { recovery_rate: rate, ..Policy::default() }).build()
}

/// Stores `n` deliveries of `w` in `status`, created `hours` ago, one attempt made.
fn deliveries(f: &Fakes, w: &Webhook, n: usize, status: DeliveryStatus, hours: i64) -> Vec<Delivery> {
    (0..n)
        .map(|i| {
            let e = f.add_event(&tenant(), "project.created");
            let at = hours_ago(hours) + chrono::Duration::milliseconds(i as i64);
            let mut d = Delivery::new(tenant(), w.id.clone(), e.id.clone(), e.name.clone(), at, at);
            d.status = status;
            d.attempts = 1;
            d.next_attempt_at = None;
            f.deliveries.put(&d);
            d
        })
        .collect()
}

fn request(since_hours: i64) -> RecoveryRequest {
    RecoveryRequest { since: hours_ago(since_hours), until: None, status: DeliveryStatus::Failed }
}

/// Runs due tasks as a worker does (acknowledging what is done), moving the clock a
/// second at a time, until the queue is empty; returns the step reports.
async fn drain(f: &Fakes) -> Vec<StepReport> {
    let mut steps = Vec::new();
    for _ in 0..10_000 {
        if f.queue.tasks().is_empty() {
            return steps;
        }
        for leased in f.queue.take_due(f.clock.now(), 1000, Duration::from_secs(60)).await.unwrap() {
            let done = match leased.task {
                Task::Attempt(job) => {
                    f.http.answer(ok());
                    send(&f.h, &job).await.unwrap() != SendReport::Busy
                }
                Task::Recover { recovery } => match step(&f.h, &recovery).await {
                    Ok(r) => {
                        steps.push(r);
                        true
                    }
                    Err(_) => false,
                },
            };
            if done {
                f.queue.ack(&leased.receipt).await.unwrap();
            }
        }
        f.clock.advance(Duration::from_secs(1));
    }
    panic!("the queue never emptied");
}

/// Attempts made per delivery.
fn attempts(f: &Fakes) -> HashMap<crate::ids::DeliveryId, u32> {
    f.deliveries.all().into_iter().map(|d| (d.id, d.attempts)).collect()
}

#[tokio::test]
async fn a_recovery_sends_each_failed_delivery_of_its_window_once_and_the_dry_run_counted_them() {
    let f = fakes(1000);
    let w = f.add_webhook(&tenant(), &["project.*"]);
    let failed = deliveries(&f, &w, 250, DeliveryStatus::Failed, 2);
    let succeeded = deliveries(&f, &w, 7, DeliveryStatus::Succeeded, 2);
    let too_old = deliveries(&f, &w, 5, DeliveryStatus::Failed, 30);
    let other = f.add_webhook(&tenant(), &["project.*"]);
    deliveries(&f, &other, 4, DeliveryStatus::Failed, 2);

    let counted = count(&f.h, &tenant(), &w.id, &request(24)).await.unwrap();
    assert_eq!(counted, 250);
    let Started::New(r) = start(&f.h, &tenant(), &w.id, &request(24)).await.unwrap() else { panic!("a new recovery") };
    assert_eq!((r.matched, r.sent, r.state), (250, 0, RecoveryState::Running));
    let steps = drain(&f).await;
    assert_eq!(steps.iter().filter(|s| matches!(s, StepReport::Sent { .. })).count(), 3, "{steps:?}");

    let after = attempts(&f);
    for d in &failed {
        assert_eq!(after[&d.id], 2, "each failed delivery sent once more");
        assert_eq!(f.deliveries.stored(&d.id).unwrap().status, DeliveryStatus::Succeeded);
    }
    for d in succeeded.iter().chain(&too_old) {
        assert_eq!(after[&d.id], 1, "outside the filter: untouched");
    }
    assert_eq!(f.http.requests().len(), 250, "nothing else was sent");
    let r = get(&f.h, &tenant(), &w.id, &r.id).await.unwrap();
    assert_eq!((r.sent, r.matched, r.state), (250, counted, RecoveryState::Done));
    assert!(r.finished_at.is_some());
}

#[tokio::test]
async fn the_same_request_twice_names_one_recovery_and_sends_once() {
    let f = fakes(1000);
    let w = f.add_webhook(&tenant(), &["project.*"]);
    let failed = deliveries(&f, &w, 20, DeliveryStatus::Failed, 1);
    let Started::New(first) = start(&f.h, &tenant(), &w.id, &request(3)).await.unwrap() else { panic!("new") };
    let Started::Existing(again) = start(&f.h, &tenant(), &w.id, &request(3)).await.unwrap() else { panic!("existing") };
    assert_eq!(first.id, again.id);
    drain(&f).await;
    let Started::Existing(done) = start(&f.h, &tenant(), &w.id, &request(3)).await.unwrap() else { panic!("existing") };
    assert_eq!((done.state, done.sent), (RecoveryState::Done, 20));
    assert!(drain(&f).await.is_empty(), "a finished recovery queues nothing");
    let after = attempts(&f);
    assert!(failed.iter().all(|d| after[&d.id] == 2), "sent once each");
    let other = RecoveryRequest { until: Some(t0()), ..request(3) };
    assert_ne!(recovery_id(&tenant(), &w.id, &other), first.id, "another window is another recovery");
}

#[tokio::test]
async fn a_step_cut_short_runs_again_and_sends_each_delivery_once() {
    let f = fakes(1000);
    let w = f.add_webhook(&tenant(), &["project.*"]);
    let failed = deliveries(&f, &w, 40, DeliveryStatus::Failed, 1);
    start(&f.h, &tenant(), &w.id, &request(3)).await.unwrap();
    // The first step queues its jobs, then cannot save (the process dies, as far as
    // the step can tell): its task stays queued.
    f.fail_next(Op::RecoverySave, Fault::Unknown);
    let leased = f.queue.take_due(f.clock.now(), 10, Duration::from_secs(60)).await.unwrap();
    let Task::Recover { recovery } = &leased[0].task else { panic!("the first step") };
    assert!(step(&f.h, recovery).await.is_err());
    assert_eq!(f.queue.jobs().len(), 40, "its jobs are queued");
    assert!(f.deliveries.all().iter().all(|d| d.status == DeliveryStatus::Failed), "no delivery is pending before its job runs");
    // Its lease runs out; everything due runs, the step again among it.
    f.clock.advance(Duration::from_secs(61));
    drain(&f).await;
    let after = attempts(&f);
    assert!(failed.iter().all(|d| after[&d.id] == 2), "{after:?}");
    assert_eq!(f.http.requests().len(), 40, "each once");
    let r = f.recoveries.list(&tenant(), &w.id).await.unwrap().remove(0);
    assert_eq!(r.state, RecoveryState::Done);
}

#[tokio::test]
async fn a_recovery_job_sends_its_delivery_whatever_runs_first_and_a_page_waits_for_the_last() {
    let f = fakes(1000);
    let w = f.add_webhook(&tenant(), &["project.*"]);
    let failed = deliveries(&f, &w, 150, DeliveryStatus::Failed, 1);
    start(&f.h, &tenant(), &w.id, &request(3)).await.unwrap();
    let leased = f.queue.take_due(f.clock.now(), 10, Duration::from_secs(60)).await.unwrap();
    let Task::Recover { recovery } = &leased[0].task else { panic!("the first step") };
    // The first job is due at once: run it before the step has even been saved.
    f.fail_next(Op::RecoverySave, Fault::Unknown);
    assert!(step(&f.h, recovery).await.is_err());
    let first = f.queue.jobs().remove(0);
    f.http.answer(ok());
    assert!(matches!(send(&f.h, &first).await.unwrap(), SendReport::Delivered(_)), "the claim reopened it");
    f.queue.ack(&leased[0].receipt).await.unwrap();
    // Run again, the step queues the page; the next step is due before the page is sent
    // (the receiver is slow), and waits for it.
    let step0 = RecoveryStep { step: 0, ..recovery.clone() };
    assert!(matches!(step(&f.h, &step0).await.unwrap(), StepReport::Sent { sent: 100, done: false }), "a page without the one sent");
    f.clock.advance(Duration::from_millis(150));
    let next = RecoveryStep { step: 1, due_at: f.clock.now(), ..recovery.clone() };
    assert_eq!(step(&f.h, &next).await.unwrap(), StepReport::Deferred, "the last page is not attempted yet");
    drain(&f).await;
    let after = attempts(&f);
    assert!(failed.iter().all(|d| after[&d.id] == 2), "each sent once more");
    let r = f.recoveries.list(&tenant(), &w.id).await.unwrap().remove(0);
    assert_eq!((r.state, r.sent), (RecoveryState::Done, 149), "the one sent by the step that was cut short is not counted");
}

#[tokio::test]
async fn a_recovery_goes_at_its_rate_a_page_at_a_time() {
    let f = fakes(50);
    let w = f.add_webhook(&tenant(), &["project.*"]);
    deliveries(&f, &w, 150, DeliveryStatus::Failed, 1);
    start(&f.h, &tenant(), &w.id, &request(3)).await.unwrap();
    let leased = f.queue.take_due(f.clock.now(), 10, Duration::from_secs(60)).await.unwrap();
    let Task::Recover { recovery } = &leased[0].task else { panic!("the first step") };
    let now = f.clock.now();
    assert_eq!(step(&f.h, recovery).await.unwrap(), StepReport::Sent { sent: PAGE as u64, done: false });
    let tasks = f.queue.tasks();
    let jobs: Vec<Timestamp> = tasks.iter().filter_map(|t| t.job().map(|j| j.due_at)).collect();
    assert_eq!(jobs.len(), PAGE as usize, "one page queued, not the whole window");
    assert_eq!(jobs[1] - jobs[0], chrono::Duration::milliseconds(20), "50 a second");
    assert!(tasks.iter().filter_map(Task::job).all(|j| j.manual && j.reopen), "one attempt each, no retries after it");
    let next: Vec<&RecoveryStep> =
        tasks.iter().filter_map(|t| if let Task::Recover { recovery } = t { Some(recovery) } else { None }).collect();
    assert_eq!(next.iter().map(|s| (s.step, s.due_at)).collect::<Vec<_>>(), vec![(0, now), (1, now + chrono::Duration::seconds(2))]);
    // The copy of the step that ran (its task seen again) does nothing.
    assert_eq!(step(&f.h, recovery).await.unwrap(), StepReport::Stale);
}

#[tokio::test]
async fn windows_and_statuses_are_checked() {
    let f = fakes(50);
    let w = f.add_webhook(&tenant(), &["project.*"]);
    let too_old = request(24 * 15);
    assert!(matches!(count(&f.h, &tenant(), &w.id, &too_old).await, Err(RecoverError::Window(m)) if m.starts_with("since")));
    let backwards = RecoveryRequest { until: Some(hours_ago(5)), ..request(1) };
    assert!(matches!(start(&f.h, &tenant(), &w.id, &backwards).await, Err(RecoverError::Window(m)) if m.starts_with("until")));
    let future = RecoveryRequest { since: t0() + chrono::Duration::hours(1), ..request(1) };
    assert!(matches!(count(&f.h, &tenant(), &w.id, &future).await, Err(RecoverError::Window(_))));
    let pending = RecoveryRequest { status: DeliveryStatus::Pending, ..request(1) };
    assert!(matches!(count(&f.h, &tenant(), &w.id, &pending).await, Err(RecoverError::Status)));
    let unknown = WebhookId::generate();
    assert!(matches!(start(&f.h, &tenant(), &unknown, &request(1)).await, Err(RecoverError::WebhookNotFound)));
    let mut off = w.clone();
    off.active = false;
    f.webhooks.put(&off);
    assert!(matches!(start(&f.h, &tenant(), &w.id, &request(1)).await, Err(RecoverError::WebhookDisabled)));
}

#[tokio::test]
async fn a_cancelled_recovery_or_one_whose_webhook_was_disabled_stops() {
    let f = fakes(1000);
    let w = f.add_webhook(&tenant(), &["project.*"]);
    deliveries(&f, &w, 10, DeliveryStatus::Failed, 1);
    let Started::New(r) = start(&f.h, &tenant(), &w.id, &request(3)).await.unwrap() else { panic!("new") };
    let cancelled = cancel(&f.h, &tenant(), &w.id, &r.id).await.unwrap();
    assert_eq!((cancelled.state, cancelled.reason.as_deref()), (RecoveryState::Cancelled, Some("cancelled by request")));
    assert_eq!(drain(&f).await, vec![StepReport::Stale], "its queued step does nothing");
    assert_eq!(f.http.requests().len(), 0);

    let second = RecoveryRequest { until: Some(t0()), ..request(3) };
    start(&f.h, &tenant(), &w.id, &second).await.unwrap();
    let mut off = w.clone();
    off.active = false;
    f.webhooks.put(&off);
    assert_eq!(drain(&f).await, vec![StepReport::Stopped]);
    let r = get(&f.h, &tenant(), &w.id, &recovery_id(&tenant(), &w.id, &second)).await.unwrap();
    assert_eq!((r.state, r.reason.as_deref()), (RecoveryState::Cancelled, Some("the webhook was disabled")));
}

#[tokio::test]
async fn the_same_request_queues_a_stalled_recovery_s_step_again_and_only_then() {
    let f = fakes(1000);
    let w = f.add_webhook(&tenant(), &["project.*"]);
    let failed = deliveries(&f, &w, 5, DeliveryStatus::Failed, 1);
    start(&f.h, &tenant(), &w.id, &request(3)).await.unwrap();
    // Its first step is lost (taken and acknowledged without running).
    for lost in f.queue.take_due(f.clock.now(), 10, Duration::from_secs(60)).await.unwrap() {
        f.queue.ack(&lost.receipt).await.unwrap();
    }
    start(&f.h, &tenant(), &w.id, &request(3)).await.unwrap();
    assert!(f.queue.tasks().is_empty(), "a recovery that is only late gets no second step");
    f.clock.advance(Duration::from_secs(6 * 60));
    start(&f.h, &tenant(), &w.id, &request(3)).await.unwrap();
    assert_eq!(f.queue.tasks().len(), 1, "a stalled one does");
    drain(&f).await;
    let after = attempts(&f);
    assert!(failed.iter().all(|d| after[&d.id] == 2));
}
