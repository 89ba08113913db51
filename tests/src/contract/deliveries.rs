//! Contracts of the delivery store and the delivery queue.

use super::{now, tenant};
use hookline_domain::catalog::EventName;
use hookline_domain::delivery::{Attempt, Claim, Delivery, DeliveryFilter, DeliveryStatus, RecoveryStep, Task};
use hookline_domain::ids::{AttemptId, DeliveryId, EventId, RecoveryId, WebhookId};
use hookline_domain::page::PageRequest;
use hookline_domain::ports::{DeliveryQueue, DeliveryStore, Leased, StoreError};
use hookline_domain::time::Timestamp;
use std::time::Duration;

fn ms(n: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(n)
}

fn delivery(webhook: &WebhookId, at: Timestamp) -> Delivery {
    Delivery::new(tenant("acme"), webhook.clone(), EventId::generate(), EventName::parse("project.created").expect("name"), at, at)
}

fn attempt(d: &Delivery, at: Timestamp, status: Option<u16>) -> Attempt {
    Attempt {
        id: AttemptId::generate(),
        delivery_id: d.id.clone(),
        attempted_at: at,
        status_code: status,
        duration_ms: 12,
        error: status.filter(|s| *s >= 300).map(|s| format!("receiver answered {s}")).or(if status.is_none() {
            Some("timeout".into())
        } else {
            None
        }),
        response_body: status.map(|_| "ok".to_owned()),
    }
}

/// The ids `list` answers for acme's webhook `w` under `f`, newest first.
async fn listed(s: &dyn DeliveryStore, w: &WebhookId, f: DeliveryFilter) -> Vec<DeliveryId> {
    s.list(&tenant("acme"), w, &f, &PageRequest::default()).await.expect("list").items.into_iter().map(|d| d.id).collect()
}

/// The delivery store contract.
pub async fn delivery_store(s: &dyn DeliveryStore) {
    let acme = tenant("acme");
    let globex = tenant("globex");
    let (wa, wb) = (WebhookId::generate(), WebhookId::generate());
    let t0 = now();
    let d1 = delivery(&wa, t0);
    let d2 = delivery(&wa, t0 + ms(1));
    let d3 = delivery(&wb, t0 + ms(2));
    s.create(&[d1.clone(), d2.clone(), d3.clone()]).await.expect("create");
    assert_eq!(s.get(&acme, &wa, &d1.id).await.expect("get"), d1, "a delivery reads back as written");
    assert!(matches!(s.get(&globex, &wa, &d1.id).await, Err(StoreError::NotFound)), "another tenant's delivery is not found");
    assert!(matches!(s.get(&acme, &wb, &d1.id).await, Err(StoreError::NotFound)), "another webhook's delivery is not found");
    assert!(matches!(s.get(&acme, &wa, &DeliveryId::generate()).await, Err(StoreError::NotFound)));

    // Claims: one holder at a time, stale jobs refused, expired leases re-claimable.
    let job = d1.job(t0, false);
    let lease = t0 + ms(30_000);
    let Claim::Claimed(claimed) = s.claim(&job, t0, lease).await.expect("claim") else { panic!("first claim must succeed") };
    assert_eq!(claimed.id, d1.id);
    assert_eq!(s.claim(&job, t0 + ms(1), lease).await.expect("claim"), Claim::Busy, "a held delivery is busy");
    assert!(
        s.claim(&d1.job(t0, false), lease + ms(1), lease + ms(30_000)).await.expect("claim").is_claimed(),
        "an expired claim can be taken over"
    );
    s.release(&acme, &wa, &d1.id).await.expect("release");
    assert!(s.claim(&job, t0, lease).await.expect("claim").is_claimed(), "a released delivery can be claimed");

    // Recording an attempt advances the count and releases the claim; a second record
    // of the same step is a conflict.
    let a1 = attempt(&d1, t0 + ms(5), Some(500));
    let mut after1 = d1.clone();
    after1.attempts = 1;
    after1.last_status_code = Some(500);
    after1.last_attempt_at = Some(a1.attempted_at);
    after1.next_attempt_at = Some(t0 + ms(120_000));
    s.record_attempt(&after1, &a1).await.expect("record");
    assert!(matches!(s.record_attempt(&after1, &attempt(&d1, t0, Some(500))).await, Err(StoreError::Conflict)));
    assert_eq!(s.get(&acme, &wa, &d1.id).await.expect("get"), after1);
    assert_eq!(s.claim(&job, t0 + ms(6), lease).await.expect("claim"), Claim::Stale, "a job for an attempt already made is stale");
    assert!(s.claim(&after1.job(t0, false), t0 + ms(6), lease).await.expect("claim").is_claimed());

    // Creating an existing delivery again leaves it as it is (fan-out replay).
    s.create(std::slice::from_ref(&d1)).await.expect("create again");
    assert_eq!(s.get(&acme, &wa, &d1.id).await.expect("get").attempts, 1, "re-creating does not reset a delivery");

    let a2 = attempt(&d1, t0 + ms(10), Some(200));
    let mut after2 = after1.clone();
    after2.attempts = 2;
    after2.status = DeliveryStatus::Succeeded;
    after2.last_status_code = Some(200);
    after2.last_attempt_at = Some(a2.attempted_at);
    after2.next_attempt_at = None;
    after2.delivered_at = Some(t0 + ms(11));
    s.record_attempt(&after2, &a2).await.expect("record");
    assert_eq!(s.claim(&after2.job(t0, false), t0 + ms(12), lease).await.expect("claim"), Claim::Stale, "a finished delivery is stale");
    assert_eq!(s.attempts(&acme, &wa, &d1.id).await.expect("attempts"), vec![a1.clone(), a2.clone()], "attempts list oldest first");
    assert!(s.attempts(&globex, &wa, &d1.id).await.expect("attempts").is_empty());

    // Close: a state change without an attempt, guarded by the attempt count.
    let mut closed = d2.clone();
    closed.status = DeliveryStatus::Failed;
    closed.next_attempt_at = None;
    s.close(&closed).await.expect("close");
    assert_eq!(s.get(&acme, &wa, &d2.id).await.expect("get").status, DeliveryStatus::Failed);
    let mut wrong = closed.clone();
    wrong.attempts = 7;
    assert!(matches!(s.close(&wrong).await, Err(StoreError::Conflict)));

    // A recovery's job reopens a finished delivery as it claims it; a plain job does
    // not, nor one for another attempt.
    assert_eq!(s.claim(&closed.job(t0, true), t0 + ms(15), lease).await.expect("claim"), Claim::Stale);
    let mut other_attempt = closed.recovery_job(t0);
    other_attempt.attempts_before = 3;
    assert_eq!(s.claim(&other_attempt, t0 + ms(15), lease).await.expect("claim"), Claim::Stale);
    let Claim::Claimed(recovering) = s.claim(&closed.recovery_job(t0), t0 + ms(15), t0 + ms(30_015)).await.expect("claim") else {
        panic!("a recovery's job claims a failed delivery")
    };
    assert_eq!((recovering.status, recovering.next_attempt_at), (DeliveryStatus::Pending, Some(t0 + ms(15))));
    assert_eq!(s.claim(&closed.recovery_job(t0), t0 + ms(16), lease).await.expect("claim"), Claim::Busy, "claimed once");
    s.release(&acme, &wa, &d2.id).await.expect("release");

    // Reopen for redelivery.
    let reopened = s.reopen(&acme, &wa, &d2.id, t0 + ms(20)).await.expect("reopen");
    assert_eq!((reopened.status, reopened.next_attempt_at), (DeliveryStatus::Pending, Some(t0 + ms(20))));
    assert!(matches!(s.reopen(&globex, &wa, &d2.id, t0).await, Err(StoreError::NotFound)));

    // Counting, with the listing's filters.
    assert_eq!(s.count(&acme, &wa, &DeliveryFilter::default()).await.expect("count"), 2);
    let pending = DeliveryFilter { status: Some(DeliveryStatus::Pending), since: Some(t0 + ms(1)), ..Default::default() };
    assert_eq!(s.count(&acme, &wa, &pending).await.expect("count"), 1);
    assert_eq!(s.count(&acme, &wa, &DeliveryFilter { until: Some(t0 + ms(1)), ..Default::default() }).await.expect("count"), 1);
    assert_eq!(s.count(&globex, &wa, &DeliveryFilter::default()).await.expect("count"), 0);

    // Listing: newest first, by webhook, status filter, paging.
    let all = s.list(&acme, &wa, &DeliveryFilter::default(), &PageRequest::default()).await.expect("list");
    assert_eq!(all.items.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), vec![d2.id.clone(), d1.id.clone()]);
    let ok = s
        .list(&acme, &wa, &DeliveryFilter { status: Some(DeliveryStatus::Succeeded), ..Default::default() }, &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(ok.items.len(), 1);
    assert_eq!(ok.items[0].id, d1.id);
    // Time (since inclusive, until exclusive) and event name.
    let at = |since: Option<Timestamp>, until: Option<Timestamp>| DeliveryFilter { since, until, ..Default::default() };
    assert_eq!(listed(s, &wa, at(Some(t0 + ms(1)), None)).await, vec![d2.id.clone()], "since is inclusive");
    assert_eq!(listed(s, &wa, at(None, Some(t0 + ms(1)))).await, vec![d1.id.clone()], "until is exclusive");
    assert_eq!(listed(s, &wa, at(Some(t0), Some(t0 + ms(2)))).await, vec![d2.id.clone(), d1.id.clone()]);
    assert_eq!(listed(s, &wa, at(Some(t0 + ms(5)), None)).await, Vec::<DeliveryId>::new());
    let named = |n: &str| DeliveryFilter { event_name: Some(EventName::parse(n).expect("name")), ..Default::default() };
    assert_eq!(listed(s, &wa, named("project.created")).await.len(), 2);
    assert!(listed(s, &wa, named("project.deleted")).await.is_empty());
    let p1 = s.list(&acme, &wa, &DeliveryFilter::default(), &PageRequest { limit: 1, after: None }).await.expect("list");
    let p2 = s.list(&acme, &wa, &DeliveryFilter::default(), &PageRequest { limit: 1, after: p1.next_cursor.clone() }).await.expect("list");
    assert_eq!((p1.items[0].id.clone(), p2.items[0].id.clone(), p2.next_cursor), (d2.id.clone(), d1.id.clone(), None));
    assert!(s.list(&globex, &wa, &DeliveryFilter::default(), &PageRequest::default()).await.expect("list").items.is_empty());

    // Health: attempts in the window.
    let stats = s.attempt_stats(&acme, &wa, t0).await.expect("stats");
    assert_eq!((stats.total, stats.succeeded), (2, 1));
    let later = s.attempt_stats(&acme, &wa, t0 + ms(7)).await.expect("stats");
    assert_eq!((later.total, later.succeeded), (1, 1), "attempts before the window are not counted");
    assert_eq!(s.attempt_stats(&globex, &wa, t0).await.expect("stats").total, 0);
}

trait ClaimExt {
    fn is_claimed(&self) -> bool;
}

impl ClaimExt for Claim {
    fn is_claimed(&self) -> bool {
        matches!(self, Claim::Claimed(_))
    }
}

async fn take(q: &dyn DeliveryQueue, want: usize, lease: Duration) -> Vec<Leased> {
    // Distributed queues may return fewer messages than are visible: ask a few times.
    let mut out = Vec::new();
    for _ in 0..5 {
        out.extend(q.take_due(now(), 10, lease).await.expect("take"));
        if out.len() >= want {
            break;
        }
    }
    out
}

/// The delivery queue contract.
pub async fn delivery_queue(q: &dyn DeliveryQueue) {
    let t0 = now();
    let d = delivery(&WebhookId::generate(), t0);
    let due = d.job(t0, false);
    let later = d.job(t0 + ms(3_600_000), true);
    let step = Task::Recover {
        recovery: RecoveryStep {
            id: RecoveryId::generate(),
            tenant: tenant("acme"),
            webhook_id: d.webhook_id.clone(),
            step: 3,
            due_at: t0,
        },
    };
    q.enqueue(&[due.clone().into(), later.clone().into(), step.clone()]).await.expect("enqueue");
    let lease = Duration::from_secs(1);
    let mut got = take(q, 2, lease).await;
    got.sort_by_key(|l| l.job().is_none());
    let tasks: Vec<Task> = got.iter().map(|l| l.task.clone()).collect();
    assert_eq!(tasks, vec![due.clone().into(), step], "only due tasks are taken, intact, recovery steps too");
    q.ack(&got[1].receipt).await.expect("ack");
    assert!(take(q, 1, lease).await.is_empty(), "a taken job is hidden while leased");

    // Not acknowledged: it comes back when the lease ends.
    tokio::time::sleep(lease + Duration::from_millis(300)).await;
    let again = take(q, 1, Duration::from_secs(30)).await;
    assert_eq!(again.iter().map(|l| l.task.clone()).collect::<Vec<_>>(), vec![due.clone().into()], "an unacknowledged job comes back");
    q.ack(&again[0].receipt).await.expect("ack");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(take(q, 1, lease).await.is_empty(), "an acknowledged job is gone; the later one is not due");
}
