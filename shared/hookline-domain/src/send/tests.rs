//! The send step over in-memory fakes: every report it gives, what it leaves in the
//! stores and the queue, and what it sends.

use super::{CLAIM_MARGIN, SIGNATURE_HEADER, SendError, SendReport, send};
use crate::Policy;
use crate::delivery::{Delivery, DeliveryStatus, Job};
use crate::event::Event;
use crate::fakes::{FAKE_SIGNATURE, Fakes, Fault, Op, start};
use crate::fanout::fan_out;
use crate::ids::TenantId;
use crate::ports::{Clock, DeliveryQueue, DeliveryStore, FailureKind, HttpOutcome, StoreError};
use crate::retry::RetrySchedule;
use crate::time::Timestamp;
use crate::webhook::{AutoDisable, Webhook};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long every scripted exchange takes; the fake client moves the clock on by it.
const ELAPSED: Duration = Duration::from_millis(25);

fn after(t: Timestamp, d: Duration) -> Timestamp {
    t + chrono::Duration::from_std(d).unwrap()
}

/// The instant the scripted answer arrives, for an attempt started at [`start`].
fn answered() -> Timestamp {
    after(start(), ELAPSED)
}

fn answer(status: u16) -> HttpOutcome {
    HttpOutcome::Response { status, retry_after: None, body: Bytes::from_static(b"thanks"), elapsed: ELAPSED }
}

fn answer_retry_after(status: u16, retry_after: &str) -> HttpOutcome {
    HttpOutcome::Response { status, retry_after: Some(retry_after.to_owned()), body: Bytes::new(), elapsed: ELAPSED }
}

fn no_answer(kind: FailureKind) -> HttpOutcome {
    HttpOutcome::Failed { kind, message: "scripted".to_owned(), elapsed: ELAPSED }
}

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

/// A webhook, an event, and a pending delivery of it that has had `attempts` attempts,
/// with the job of its next one, due now.
struct Given {
    f: Fakes,
    webhook: Webhook,
    event: Event,
    delivery: Delivery,
    job: Job,
}

fn given(policy: Policy, attempts: u32, manual: bool) -> Given {
    let f = Fakes::builder().policy(policy).build();
    let webhook = f.add_webhook(&tenant(), &["project.*"]);
    let event = f.add_event(&tenant(), "project.created");
    let (mut delivery, _) = f.add_delivery(&webhook, &event);
    if attempts > 0 {
        delivery.attempts = attempts;
        delivery.last_status_code = Some(500);
        delivery.last_attempt_at = Some(start() - chrono::Duration::minutes(1));
        f.deliveries.put(&delivery);
    }
    let job = delivery.job(start(), manual);
    Given { f, webhook, event, delivery, job }
}

fn given_new() -> Given {
    given(Policy::default(), 0, false)
}

/// What a test expects of the send step besides its report's attempt.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    Delivered,
    /// Retrying, the next attempt this long after the answer came.
    RetryAfter(Duration),
    Failed(&'static str),
}

#[tokio::test]
async fn each_answer_leads_the_delivery_to_its_next_state() {
    struct Case {
        name: &'static str,
        attempts_before: u32,
        answer: HttpOutcome,
        want: Want,
    }
    let secs = Duration::from_secs;
    let cases = [
        Case { name: "a 200 delivers", attempts_before: 0, answer: answer(200), want: Want::Delivered },
        Case { name: "a 204 on the fourth attempt delivers", attempts_before: 3, answer: answer(204), want: Want::Delivered },
        Case { name: "a 500 retries after the first step", attempts_before: 0, answer: answer(500), want: Want::RetryAfter(secs(120)) },
        Case {
            name: "a 500 on the second attempt waits the second step",
            attempts_before: 1,
            answer: answer(500),
            want: Want::RetryAfter(secs(360)),
        },
        Case { name: "a timeout retries", attempts_before: 2, answer: no_answer(FailureKind::Timeout), want: Want::RetryAfter(secs(1800)) },
        Case {
            name: "a refused connection retries",
            attempts_before: 0,
            answer: no_answer(FailureKind::Connect),
            want: Want::RetryAfter(secs(120)),
        },
        Case { name: "a redirect is not followed: it retries", attempts_before: 0, answer: answer(302), want: Want::RetryAfter(secs(120)) },
        Case {
            name: "a 429's Retry-After between the step and twice the step is honoured",
            attempts_before: 0,
            answer: answer_retry_after(429, "180"),
            want: Want::RetryAfter(secs(180)),
        },
        Case {
            name: "a 503's Retry-After beyond twice the step is cut to twice the step",
            attempts_before: 0,
            answer: answer_retry_after(503, "3600"),
            want: Want::RetryAfter(secs(240)),
        },
        Case {
            name: "a 429's Retry-After shorter than the step waits the step",
            attempts_before: 1,
            answer: answer_retry_after(429, "5"),
            want: Want::RetryAfter(secs(360)),
        },
        Case {
            name: "a 503's Retry-After date is read from when the answer came",
            attempts_before: 0,
            answer: answer_retry_after(503, "Mon, 23 Nov 2026 10:03:00 GMT"),
            want: Want::RetryAfter(Duration::from_millis(179_975)),
        },
        Case {
            name: "a 500's Retry-After is not honoured",
            attempts_before: 0,
            answer: answer_retry_after(500, "200"),
            want: Want::RetryAfter(secs(120)),
        },
        Case {
            name: "an unreadable Retry-After is ignored",
            attempts_before: 0,
            answer: answer_retry_after(503, "soon"),
            want: Want::RetryAfter(secs(120)),
        },
        Case {
            name: "a failure after the last step of the schedule fails the delivery",
            attempts_before: 5,
            answer: answer(500),
            want: Want::Failed("retries exhausted"),
        },
    ];
    for c in cases {
        let Given { f, webhook, delivery, job, .. } = given(Policy::default(), c.attempts_before, false);
        let status = match &c.answer {
            HttpOutcome::Response { status, .. } => Some(*status),
            HttpOutcome::Failed { .. } => None,
        };
        f.http.answer(c.answer);
        let report = send(&f.h, &job).await.unwrap_or_else(|e| panic!("{}: {e}", c.name));

        let stored = f.deliveries.stored(&delivery.id).unwrap();
        let attempts = f.deliveries.attempts_of(&delivery.id);
        assert_eq!(attempts.len(), 1, "{}: one attempt recorded", c.name);
        let attempt = &attempts[0];
        assert_eq!((attempt.attempted_at, attempt.status_code, attempt.duration_ms), (start(), status, 25), "{}", c.name);
        assert_eq!(attempt.error.is_none(), c.want == Want::Delivered, "{}: {:?}", c.name, attempt.error);
        assert_eq!((stored.attempts, stored.last_status_code, stored.last_attempt_at), (c.attempts_before + 1, status, Some(start())));
        assert_eq!(f.deliveries.claimed_until(&delivery.id), None, "{}: the claim is released", c.name);
        assert_eq!(f.http.requests().len(), 1, "{}", c.name);
        assert!(f.webhooks.stored(&webhook.id).unwrap().active, "{}", c.name);
        match c.want {
            Want::Delivered => {
                assert_eq!(report, SendReport::Delivered(attempt.clone()), "{}", c.name);
                assert_eq!(
                    (stored.status, stored.delivered_at, stored.next_attempt_at),
                    (DeliveryStatus::Succeeded, Some(answered()), None)
                );
                assert_eq!(f.queue.jobs(), vec![], "{}: nothing more to do", c.name);
            }
            Want::RetryAfter(wait) => {
                let at = after(answered(), wait);
                assert_eq!(report, SendReport::Retrying { attempt: attempt.clone(), next_at: at }, "{}", c.name);
                assert_eq!((stored.status, stored.next_attempt_at, stored.delivered_at), (DeliveryStatus::Pending, Some(at), None));
                assert_eq!(f.queue.jobs(), vec![stored.job(at, false)], "{}: the next attempt is queued", c.name);
                assert_eq!(f.queue.jobs()[0].attempts_before, c.attempts_before + 1, "{}", c.name);
            }
            Want::Failed(reason) => {
                assert_eq!(report, SendReport::Failed { attempt: Some(attempt.clone()), reason: reason.to_owned() }, "{}", c.name);
                assert_eq!((stored.status, stored.next_attempt_at), (DeliveryStatus::Failed, None), "{}", c.name);
                assert_eq!(f.queue.jobs(), vec![], "{}: nothing more to do", c.name);
            }
        }
    }
}

#[tokio::test]
async fn a_delivery_carries_the_signed_body_and_the_webhook_s_headers() {
    let Given { f, webhook, event, delivery, job } = given_new();
    f.http.answer(answer(200));
    let SendReport::Delivered(attempt) = send(&f.h, &job).await.unwrap() else { panic!("not delivered") };

    let requests = f.http.requests();
    let [request] = requests.as_slice() else { panic!("{} requests", requests.len()) };
    assert_eq!(&request.url, webhook.endpoint_url.url());
    assert_eq!(request.timeout, f.h.policy.delivery_timeout);
    let names: Vec<&str> = request.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["Content-Type", "User-Agent", "x-api-key", SIGNATURE_HEADER]);
    assert_eq!(request.headers[0].1, "application/json");
    assert_eq!(request.headers[1].1, f.h.policy.user_agent);
    assert!(request.headers[1].1.starts_with("Hookline/"));
    assert_eq!(request.headers[2].1, "secret");

    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["event"], serde_json::from_str::<serde_json::Value>(event.document.get()).unwrap());
    assert_eq!(body["webhook"]["id"], webhook.id.as_str());
    assert_eq!(body["delivery"]["id"], delivery.id.as_str());
    assert_eq!(body["delivery"]["attempt_id"], attempt.id.as_str());
    assert_eq!(body["delivery"]["attempted_at"], crate::time::format(&start()));

    let token = &request.headers[3].1;
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else { panic!("{token} is not a compact JWS") };
    let header: serde_json::Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
    assert_eq!(header, serde_json::json!({"alg": "RS256", "kid": f.signer.key.kid, "typ": "JWT"}));
    let claims: serde_json::Value = serde_json::from_slice(&B64.decode(claims).unwrap()).unwrap();
    assert_eq!(claims["payload-checksum"], hex::encode(Sha256::digest(&request.body)));
    assert_eq!(claims["jti"], attempt.id.as_str());
    assert_eq!(claims["iat"], start().timestamp());
    assert_eq!(B64.decode(signature).unwrap(), FAKE_SIGNATURE);
}

#[tokio::test]
async fn a_job_not_yet_due_is_queued_again_untouched() {
    let Given { f, delivery, job, .. } = given_new();
    let early = Job { due_at: start() + chrono::Duration::minutes(2), ..job };
    assert_eq!(send(&f.h, &early).await.unwrap(), SendReport::Deferred);
    assert_eq!(f.queue.jobs(), vec![early]);
    assert_eq!(f.calls(), vec![Op::Enqueue], "not claimed, not attempted");
    assert_eq!(f.deliveries.stored(&delivery.id), Some(delivery));
}

#[tokio::test]
async fn an_outdated_job_is_dropped_as_stale() {
    type Change = fn(&mut Delivery, &mut Job);
    let cases: [(&str, Change); 5] = [
        ("the delivery succeeded", |d, _| d.status = DeliveryStatus::Succeeded),
        ("the delivery failed", |d, _| d.status = DeliveryStatus::Failed),
        ("the job's attempt already happened", |d, _| d.attempts = 1),
        ("the job belongs to another tenant", |_, j| j.tenant = TenantId::parse("acme").unwrap()),
        ("the delivery is absent", |_, j| {
            j.delivery_id =
                crate::ids::DeliveryId::for_event(&j.tenant, &j.event_id, &chrono::Utc::now(), &crate::ids::WebhookId::generate())
        }),
    ];
    for (name, change) in cases {
        let Given { f, mut delivery, mut job, .. } = given_new();
        change(&mut delivery, &mut job);
        f.deliveries.put(&delivery);
        assert_eq!(send(&f.h, &job).await.unwrap(), SendReport::Stale, "{name}");
        assert_eq!(f.deliveries.stored(&delivery.id), Some(delivery.clone()), "{name}: unchanged");
        assert_eq!(f.deliveries.claimed_until(&delivery.id), None, "{name}");
        assert_eq!(f.calls(), vec![Op::WebhookGet, Op::Claim], "{name}: nothing sent, queued or recorded");
    }
}

#[tokio::test]
async fn a_delivery_claimed_by_another_worker_is_busy_until_that_claim_ends() {
    let Given { f, delivery, job, .. } = given_new();
    let theirs = start() + chrono::Duration::seconds(40);
    f.deliveries.hold(&delivery.id, theirs);
    assert_eq!(send(&f.h, &job).await.unwrap(), SendReport::Busy);
    assert_eq!(f.deliveries.claimed_until(&delivery.id), Some(theirs), "their claim stands");
    assert_eq!(f.calls(), vec![Op::WebhookGet, Op::Claim], "nothing sent, queued or recorded");

    f.clock.set(theirs);
    f.http.answer(answer(200));
    assert!(matches!(send(&f.h, &job).await.unwrap(), SendReport::Delivered(_)), "a claim that ended is taken over");
    assert_eq!(f.deliveries.stored(&delivery.id).unwrap().status, DeliveryStatus::Succeeded);
}

#[tokio::test]
async fn a_410_disables_the_webhook_and_fails_the_delivery() {
    let Given { f, webhook, delivery, job, .. } = given_new();
    let (other, other_job) = f.add_delivery(&webhook, &f.add_event(&tenant(), "project.updated"));
    f.http.answer(answer(410));
    let report = send(&f.h, &job).await.unwrap();

    let attempt = f.deliveries.attempts_of(&delivery.id).pop();
    let reason = "receiver answered 410 Gone; webhook disabled".to_owned();
    assert_eq!(report, SendReport::Failed { attempt: attempt.clone(), reason });
    assert_eq!(attempt.unwrap().status_code, Some(410));
    let stored = f.deliveries.stored(&delivery.id).unwrap();
    assert_eq!((stored.status, stored.attempts, stored.next_attempt_at), (DeliveryStatus::Failed, 1, None));
    assert_eq!(f.queue.jobs(), vec![], "no retry");
    assert_eq!(f.count(Op::WebhookUpdateStatus), 1);
    let w = f.webhooks.stored(&webhook.id).unwrap();
    assert!(!w.active);
    assert_eq!(w.disabled_reason.as_deref(), Some("receiver answered 410 Gone"));
    assert_eq!(w.disabled_at, Some(answered()));
    assert_eq!((w.failing_since, w.failed_deliveries), (None, 0), "a 410 is no failing streak");

    // The webhook's other pending delivery ends when it falls due, without a request.
    let report = send(&f.h, &other_job).await.unwrap();
    assert_eq!(report, SendReport::Failed { attempt: None, reason: "webhook is disabled".to_owned() });
    assert_eq!(f.deliveries.stored(&other.id).unwrap().status, DeliveryStatus::Failed);
    assert_eq!(f.http.requests().len(), 1);
}

#[tokio::test]
async fn a_manual_redelivery_gives_up_after_one_failed_attempt() {
    // A delivery made at its first attempt, reopened by a redelivery request: the
    // schedule would retry a failed second attempt, a redelivery does not.
    let Given { f, webhook, delivery, .. } = given(Policy::default(), 1, false);
    let delivered = Delivery { status: DeliveryStatus::Succeeded, last_status_code: Some(200), next_attempt_at: None, ..delivery.clone() };
    f.deliveries.put(&delivered);
    let reopened = f.deliveries.reopen(&tenant(), &webhook.id, &delivery.id, start()).await.unwrap();
    let job = reopened.job(start(), true);

    f.http.answer(answer(500));
    let report = send(&f.h, &job).await.unwrap();
    let attempt = f.deliveries.attempts_of(&delivery.id).pop();
    assert_eq!(report, SendReport::Failed { attempt, reason: "redelivery failed".to_owned() });
    let stored = f.deliveries.stored(&delivery.id).unwrap();
    assert_eq!((stored.status, stored.attempts, stored.next_attempt_at), (DeliveryStatus::Failed, 2, None));
    assert_eq!(f.queue.jobs(), vec![], "no automatic retry after a redelivery");
    assert_eq!(f.webhooks.stored(&webhook.id), Some(webhook), "a redelivery does not count towards the webhook's health");
    assert_eq!(f.count(Op::WebhookUpdateStatus), 0);
}

#[tokio::test]
async fn a_delivery_whose_webhook_or_event_went_away_is_closed_without_a_request() {
    type GoAway = fn(&Fakes, &Webhook, &Event);
    let cases: [(&str, GoAway, &str); 3] = [
        ("disabled webhook", |f, w, _| f.webhooks.put(&Webhook { active: false, ..w.clone() }), "webhook is disabled"),
        ("deleted webhook", |f, w, _| f.webhooks.remove(&w.id), "webhook was deleted"),
        ("deleted event", |f, _, e| f.events.remove(&e.id), "event no longer exists"),
    ];
    for (name, went_away, reason) in cases {
        let Given { f, webhook, event, delivery, job } = given(Policy::default(), 2, false);
        went_away(&f, &webhook, &event);
        let report = send(&f.h, &job).await.unwrap();
        assert_eq!(report, SendReport::Failed { attempt: None, reason: reason.to_owned() }, "{name}");
        let stored = f.deliveries.stored(&delivery.id).unwrap();
        assert_eq!((stored.status, stored.attempts, stored.next_attempt_at), (DeliveryStatus::Failed, 2, None), "{name}");
        assert_eq!(stored.last_status_code, delivery.last_status_code, "{name}: the last attempt's result stays");
        assert_eq!(f.deliveries.claimed_until(&delivery.id), None, "{name}: closing releases the claim");
        assert_eq!(f.deliveries.attempts_of(&delivery.id), vec![], "{name}");
        assert_eq!(f.http.requests().len(), 0, "{name}");
        assert_eq!(f.queue.jobs(), vec![], "{name}");
        assert_eq!(f.count(Op::WebhookUpdateStatus), 0, "{name}");
    }
}

#[tokio::test]
async fn a_delivery_that_moved_on_while_it_was_being_closed_is_stale() {
    let Given { f, webhook, delivery, job, .. } = given_new();
    f.webhooks.remove(&webhook.id);
    f.fail_next(Op::Close, Fault::Conflict);
    assert_eq!(send(&f.h, &job).await.unwrap(), SendReport::Stale);
    assert_eq!(f.deliveries.stored(&delivery.id), Some(delivery));
}

#[tokio::test]
async fn a_webhook_deleted_while_its_410_was_being_handled_still_fails_the_delivery() {
    let Given { f, delivery, job, .. } = given_new();
    f.http.answer(answer(410));
    f.fail_next(Op::WebhookUpdateStatus, Fault::NotFound);
    assert!(matches!(send(&f.h, &job).await.unwrap(), SendReport::Failed { attempt: Some(_), .. }));
    let stored = f.deliveries.stored(&delivery.id).unwrap();
    assert_eq!((stored.status, stored.attempts), (DeliveryStatus::Failed, 1), "the attempt is recorded");
}

#[tokio::test]
async fn a_store_failure_after_the_request_leaves_the_retry_queued_and_the_claim_released() {
    let Given { f, delivery, job, .. } = given_new();
    f.http.answer(answer(500));
    f.fail_next(Op::RecordAttempt, Fault::Unknown);
    let err = send(&f.h, &job).await.unwrap_err();
    assert!(matches!(err, SendError::Store(StoreError::Unknown(_))), "{err}");

    // Crash order: the retry was queued before the record was tried, so a worker dying
    // here still leaves a job for the delivery.
    let calls = f.calls();
    let at = |op| calls.iter().position(|c| *c == op).unwrap_or_else(|| panic!("{op:?} not called: {calls:?}"));
    assert!(at(Op::Enqueue) < at(Op::RecordAttempt), "{calls:?}");
    assert!(at(Op::RecordAttempt) < at(Op::Release), "{calls:?}");
    let retry_at = after(answered(), Duration::from_secs(120));
    let retry = Job { attempts_before: 1, due_at: retry_at, ..job.clone() };
    assert_eq!(f.queue.jobs(), vec![retry.clone()]);
    assert_eq!(f.deliveries.stored(&delivery.id), Some(delivery.clone()), "nothing recorded");
    assert_eq!(f.deliveries.claimed_until(&delivery.id), None);

    // The unacknowledged job comes back and makes the attempt again; the queued retry,
    // made for an attempt that was never recorded, is then dropped.
    f.http.answer(answer(200));
    assert!(matches!(send(&f.h, &job).await.unwrap(), SendReport::Delivered(_)));
    f.clock.set(retry_at);
    assert_eq!(send(&f.h, &retry).await.unwrap(), SendReport::Stale);
    assert_eq!(f.http.requests().len(), 2);
    assert_eq!(f.deliveries.stored(&delivery.id).unwrap().status, DeliveryStatus::Succeeded);
}

#[tokio::test]
async fn an_attempt_recorded_concurrently_makes_the_job_stale() {
    let Given { f, webhook, delivery, job, .. } = given_new();
    f.http.answer(answer(200));
    f.fail_next(Op::RecordAttempt, Fault::Conflict);
    assert_eq!(send(&f.h, &job).await.unwrap(), SendReport::Stale);
    assert_eq!(f.deliveries.attempts_of(&delivery.id), vec![], "the other record stands");
    assert_eq!(f.deliveries.stored(&delivery.id).unwrap().attempts, 0);
    assert_eq!(f.count(Op::WebhookUpdateStatus), 0, "the other worker counts the outcome");
    assert_eq!(f.webhooks.stored(&webhook.id), Some(webhook));
}

#[tokio::test]
async fn a_failure_of_another_port_stops_the_step_and_releases_the_claim() {
    struct Case {
        name: &'static str,
        op: Op,
        answer: HttpOutcome,
        requests: usize,
        is: fn(&SendError) -> bool,
    }
    let store = |e: &SendError| matches!(e, SendError::Store(StoreError::Unknown(_)));
    let cases = [
        Case { name: "reading the event", op: Op::EventGet, answer: answer(200), requests: 0, is: store },
        Case {
            name: "the signer's key id",
            op: Op::CurrentKeyId,
            answer: answer(200),
            requests: 0,
            is: |e| matches!(e, SendError::Sign(_)),
        },
        Case { name: "signing", op: Op::Sign, answer: answer(200), requests: 0, is: |e| matches!(e, SendError::Sign(_)) },
        Case { name: "queueing the retry", op: Op::Enqueue, answer: answer(500), requests: 1, is: |e| matches!(e, SendError::Queue(_)) },
        Case { name: "saving the webhook a 410 disabled", op: Op::WebhookUpdateStatus, answer: answer(410), requests: 1, is: store },
    ];
    for c in cases {
        let Given { f, webhook, delivery, job, .. } = given_new();
        f.http.answer(c.answer);
        f.fail_next(c.op, Fault::Unknown);
        let err = send(&f.h, &job).await.unwrap_err();
        assert!((c.is)(&err), "{}: {err}", c.name);
        assert_eq!(f.http.requests().len(), c.requests, "{}", c.name);
        assert_eq!(f.deliveries.stored(&delivery.id), Some(delivery.clone()), "{}: nothing recorded", c.name);
        assert_eq!(f.deliveries.claimed_until(&delivery.id), None, "{}: the claim is released", c.name);
        assert_eq!(f.count(Op::Release), 1, "{}", c.name);
        assert_eq!(f.queue.jobs(), vec![], "{}", c.name);
        assert_eq!(f.webhooks.stored(&webhook.id), Some(webhook), "{}", c.name);
    }
}

#[tokio::test]
async fn a_failure_to_read_the_webhook_stops_the_step_before_the_claim() {
    let Given { f, delivery, job, .. } = given_new();
    f.fail_next(Op::WebhookGet, Fault::Unknown);
    let err = send(&f.h, &job).await.unwrap_err();
    assert!(matches!(err, SendError::Store(StoreError::Unknown(_))), "{err}");
    assert_eq!(f.calls(), vec![Op::WebhookGet], "nothing claimed, sent or queued");
    assert_eq!(f.deliveries.stored(&delivery.id), Some(delivery));
}

#[tokio::test]
async fn a_claim_that_could_not_be_released_ends_with_its_lease() {
    let Given { f, delivery, job, .. } = given_new();
    f.fail_next(Op::EventGet, Fault::Unknown);
    f.fail_next(Op::Release, Fault::Unknown);
    let err = send(&f.h, &job).await.unwrap_err();
    assert!(matches!(err, SendError::Store(StoreError::Unknown(_))), "{err}");
    assert!(err.to_string().contains("EventGet"), "the step's own error is reported, not the release's: {err}");
    let lease_end = after(start(), f.h.policy.delivery_timeout + CLAIM_MARGIN);
    assert_eq!(f.deliveries.claimed_until(&delivery.id), Some(lease_end), "held for the timeout and the margin");

    assert_eq!(send(&f.h, &job).await.unwrap(), SendReport::Busy, "until the lease ends");
    f.clock.set(lease_end);
    f.http.answer(answer(200));
    assert!(matches!(send(&f.h, &job).await.unwrap(), SendReport::Delivered(_)));
}

#[tokio::test]
async fn finished_deliveries_and_only_they_count_towards_a_webhook_s_failing_streak() {
    let rule = AutoDisable { enabled: true, min_failures: 3, period: Duration::from_secs(86_400) };
    let policy = || Policy { auto_disable: rule.clone(), ..Policy::default() };
    let hours_ago = |h: i64| Some(start() - chrono::Duration::hours(h));
    struct Case {
        name: &'static str,
        /// The streak before: since when, and how many failed deliveries.
        streak: (Option<Timestamp>, u32),
        attempts_before: u32,
        manual: bool,
        answer: HttpOutcome,
        /// The streak after, and whether the webhook is still active.
        want: (Option<Timestamp>, u32, bool),
    }
    let cases = [
        Case {
            name: "a success ends a streak",
            streak: (hours_ago(30), 5),
            attempts_before: 0,
            manual: false,
            answer: answer(200),
            want: (None, 0, true),
        },
        Case {
            name: "a retry is no finished delivery",
            streak: (hours_ago(30), 5),
            attempts_before: 0,
            manual: false,
            answer: answer(500),
            want: (hours_ago(30), 5, true),
        },
        Case {
            name: "a first failed delivery starts a streak",
            streak: (None, 0),
            attempts_before: 5,
            manual: false,
            answer: answer(500),
            want: (Some(answered()), 1, true),
        },
        Case {
            name: "a failed delivery extends a streak too short in time",
            streak: (hours_ago(2), 7),
            attempts_before: 5,
            manual: false,
            answer: answer(500),
            want: (hours_ago(2), 8, true),
        },
        Case {
            name: "a failed delivery extends a streak too short in count",
            streak: (hours_ago(30), 1),
            attempts_before: 5,
            manual: false,
            answer: no_answer(FailureKind::Timeout),
            want: (hours_ago(30), 2, true),
        },
        Case {
            name: "a failed delivery completing the streak disables the webhook",
            streak: (hours_ago(30), 2),
            attempts_before: 5,
            manual: false,
            answer: answer(500),
            want: (hours_ago(30), 3, false),
        },
        Case {
            name: "a failed redelivery does not count",
            streak: (hours_ago(30), 2),
            attempts_before: 6,
            manual: true,
            answer: answer(500),
            want: (hours_ago(30), 2, true),
        },
    ];
    for c in cases {
        let Given { f, mut webhook, job, .. } = given(policy(), c.attempts_before, c.manual);
        (webhook.failing_since, webhook.failed_deliveries) = c.streak;
        f.webhooks.put(&webhook);
        f.http.answer(c.answer);
        send(&f.h, &job).await.unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let w = f.webhooks.stored(&webhook.id).unwrap();
        assert_eq!((w.failing_since, w.failed_deliveries, w.active), c.want, "{}", c.name);
        let changed = c.want != (c.streak.0, c.streak.1, true);
        assert_eq!(f.count(Op::WebhookUpdateStatus), usize::from(changed), "{}: saved only when changed", c.name);
        if !w.active {
            let since = crate::time::format(&hours_ago(30).unwrap());
            assert_eq!(w.disabled_reason, Some(format!("every delivery failed since {since} (3 deliveries)")), "{}", c.name);
            assert_eq!(w.disabled_at, Some(answered()), "{}", c.name);
        }
    }
}

/// Takes every due job and sends it, as a worker does: what is done is acknowledged.
async fn run_due(f: &Fakes) -> Vec<SendReport> {
    let mut reports = Vec::new();
    for leased in f.queue.take_due(f.clock.now(), 100, Duration::from_secs(60)).await.unwrap() {
        let report = send(&f.h, leased.job().expect("a delivery job")).await.unwrap();
        if report != SendReport::Busy {
            f.queue.ack(&leased.receipt).await.unwrap();
        }
        reports.push(report);
    }
    reports
}

fn kinds(reports: &[SendReport]) -> Vec<&'static str> {
    reports
        .iter()
        .map(|r| match r {
            SendReport::Deferred => "deferred",
            SendReport::Stale => "stale",
            SendReport::Busy => "busy",
            SendReport::Throttled { .. } => "throttled",
            SendReport::Delivered(_) => "delivered",
            SendReport::Retrying { .. } => "retrying",
            SendReport::Failed { attempt: Some(_), .. } => "failed",
            SendReport::Failed { attempt: None, .. } => "closed",
        })
        .collect()
}

#[tokio::test]
async fn a_webhook_whose_deliveries_all_fail_for_the_period_is_disabled_and_its_other_deliveries_end() {
    let rule = AutoDisable { enabled: true, min_failures: 2, period: Duration::from_secs(3600) };
    let policy = Policy { retry: RetrySchedule::new(vec![Duration::from_secs(60)]), auto_disable: rule, ..Policy::default() };
    let f = Fakes::builder().policy(policy).build();
    let w = f.add_webhook(&tenant(), &["project.*"]);
    let minute = Duration::from_secs(60);

    // A first delivery fails twice: the streak starts.
    fan_out(&f.h, &f.add_event(&tenant(), "project.created")).await.unwrap();
    f.http.answer(answer(500));
    assert_eq!(kinds(&run_due(&f).await), ["retrying"]);
    f.clock.advance(minute);
    f.http.answer(answer(500));
    assert_eq!(kinds(&run_due(&f).await), ["failed"]);
    let first_failure = f.clock.now();
    assert_eq!(f.webhooks.stored(&w.id).map(|w| (w.active, w.failed_deliveries)), Some((true, 1)));

    // Two hours later two more events: the first's delivery fails for good and
    // disables the webhook; the second's is then closed without a request.
    f.clock.advance(Duration::from_secs(2 * 3600));
    fan_out(&f.h, &f.add_event(&tenant(), "project.updated")).await.unwrap();
    fan_out(&f.h, &f.add_event(&tenant(), "project.deleted")).await.unwrap();
    f.http.answer(answer(500));
    f.http.answer(answer(500));
    assert_eq!(kinds(&run_due(&f).await), ["retrying", "retrying"]);
    f.clock.advance(minute);
    f.http.answer(answer(500));
    assert_eq!(kinds(&run_due(&f).await), ["failed", "closed"]);

    let disabled = f.webhooks.stored(&w.id).unwrap();
    assert!(!disabled.active);
    let since = crate::time::format(&first_failure);
    assert_eq!(disabled.disabled_reason, Some(format!("every delivery failed since {since} (2 deliveries)")));
    assert_eq!(f.http.requests().len(), 5);
    assert_eq!(f.queue.jobs(), vec![]);
    assert!(f.deliveries.all().iter().all(|d| d.status == DeliveryStatus::Failed));
    assert!(fan_out(&f.h, &f.add_event(&tenant(), "project.created")).await.unwrap().is_empty(), "nothing goes to it any more");
}
