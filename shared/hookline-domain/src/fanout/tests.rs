//! The fan-out step over in-memory fakes: which webhooks an event goes to, what is
//! stored and queued for each, and what a replay or a failure leaves behind.

use super::{FanoutError, fan_out};
use crate::delivery::{DeliveryStatus, Job};
use crate::fakes::{Fakes, Fault, Op, start};
use crate::ids::{TenantId, WebhookId};
use crate::ports::{DeliveryStore, QueueError, StoreError};
use crate::send::{SendReport, send};
use std::collections::BTreeSet;

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn ids<'a>(ws: impl IntoIterator<Item = &'a WebhookId>) -> BTreeSet<WebhookId> {
    ws.into_iter().cloned().collect()
}

#[tokio::test]
async fn an_event_goes_to_every_active_webhook_of_its_tenant_that_listens_for_it() {
    // (label, listened events, active, tenant): one webhook each.
    let webhooks: [(&str, &[&str], bool, &str); 9] = [
        ("exact", &["project.created"], true, "default"),
        ("subject", &["project.*"], true, "default"),
        ("action", &["*.created"], true, "default"),
        ("all", &["*"], true, "default"),
        ("one of several", &["activity.updated", "*.deleted"], true, "default"),
        ("other exact", &["project.updated"], true, "default"),
        ("other subject", &["activity.*"], true, "default"),
        ("inactive", &["*"], false, "default"),
        ("another tenant's", &["*"], true, "acme"),
    ];
    // Each event and the labels of the webhooks it goes to.
    let events: [(&str, &[&str]); 3] = [
        ("project.created", &["exact", "subject", "action", "all"]),
        ("activity.deleted", &["all", "one of several", "other subject"]),
        ("indicator.updated", &["all"]),
    ];
    for (name, wanted) in events {
        let f = Fakes::new();
        let mut by_label = Vec::new();
        for (label, patterns, active, owner) in webhooks {
            let mut w = f.add_webhook(&TenantId::parse(owner).unwrap(), patterns);
            w.active = active;
            f.webhooks.put(&w);
            by_label.push((label, w));
        }
        let event = f.add_event(&tenant(), name);
        let returned = fan_out(&f.h, &event).await.unwrap();

        let want = ids(by_label.iter().filter(|(l, _)| wanted.contains(l)).map(|(_, w)| &w.id));
        assert_eq!(ids(returned.iter().map(|d| &d.webhook_id)), want, "{name}");
        assert_eq!(returned.len(), wanted.len(), "{name}: one delivery per webhook");
        assert_eq!(f.deliveries.all().len(), wanted.len(), "{name}");
        for d in &returned {
            assert_eq!(f.deliveries.stored(&d.id).as_ref(), Some(d), "{name}: stored as returned");
            assert_eq!((&d.tenant, &d.event_id, &d.event_name), (&event.tenant, &event.id, &event.name), "{name}");
            assert_eq!((d.status, d.attempts, d.next_attempt_at, d.created_at), (DeliveryStatus::Pending, 0, Some(start()), start()));
        }
        let want_jobs: Vec<Job> = returned.iter().map(|d| d.job(start(), false)).collect();
        assert_eq!(f.queue.jobs(), want_jobs, "{name}: one first attempt each, due now");
    }
}

#[tokio::test]
async fn an_event_no_webhook_wants_stores_and_queues_nothing() {
    let f = Fakes::new();
    f.add_webhook(&tenant(), &["activity.*"]);
    let returned = fan_out(&f.h, &f.add_event(&tenant(), "project.created")).await.unwrap();
    assert_eq!(returned, vec![]);
    assert_eq!(f.calls(), vec![Op::WebhookListActive]);
}

#[tokio::test]
async fn fanning_out_an_event_again_creates_no_second_delivery_and_its_jobs_for_finished_deliveries_are_dropped() {
    let f = Fakes::new();
    let a = f.add_webhook(&tenant(), &["project.*"]);
    let b = f.add_webhook(&tenant(), &["*"]);
    let event = f.add_event(&tenant(), "project.created");
    let first = fan_out(&f.h, &event).await.unwrap();
    assert_eq!(first.len(), 2);

    // One delivery is made before the event is replayed (a stream record seen twice).
    let to_a = first.iter().find(|d| d.webhook_id == a.id).unwrap();
    f.http.answer(crate::ports::HttpOutcome::Response {
        status: 200,
        retry_after: None,
        body: bytes::Bytes::new(),
        elapsed: std::time::Duration::from_millis(5),
    });
    assert!(matches!(send(&f.h, &to_a.job(start(), false)).await.unwrap(), SendReport::Delivered(_)));
    let delivered = f.deliveries.stored(&to_a.id).unwrap();
    f.clock.advance(std::time::Duration::from_secs(3600));

    let replay = fan_out(&f.h, &event).await.unwrap();
    let delivery_ids = |ds: &[crate::delivery::Delivery]| ds.iter().map(|d| d.id.clone()).collect::<BTreeSet<_>>();
    assert_eq!(delivery_ids(&replay), delivery_ids(&first), "the same deliveries");
    assert_eq!(f.deliveries.all().len(), 2, "no second delivery");
    assert_eq!(f.deliveries.stored(&to_a.id), Some(delivered), "the one made is left as it is");
    let to_b = first.iter().find(|d| d.webhook_id == b.id).unwrap();
    assert_eq!(f.deliveries.stored(&to_b.id).as_ref(), Some(to_b), "the waiting one too");

    // Jobs are queued again for both (a crash may have come between storing and
    // queueing); the one for the delivery already made is stale when it runs.
    let jobs = f.queue.jobs();
    assert_eq!(jobs.len(), 4);
    let again: Vec<&Job> = jobs.iter().filter(|j| j.due_at == f.h.clock.now()).collect();
    assert_eq!(again.len(), 2, "{jobs:?}");
    let again_to_a = again.iter().find(|j| j.webhook_id == a.id).unwrap();
    assert_eq!(send(&f.h, again_to_a).await.unwrap(), SendReport::Stale);
    assert_eq!(f.deliveries.attempts_of(&to_a.id).len(), 1);
    assert_eq!(f.http.requests().len(), 1);
}

#[tokio::test]
async fn a_store_failure_stops_fan_out_before_anything_is_queued() {
    for (name, op) in [("listing the webhooks", Op::WebhookListActive), ("storing the deliveries", Op::DeliveryCreate)] {
        let f = Fakes::new();
        f.add_webhook(&tenant(), &["*"]);
        let event = f.add_event(&tenant(), "project.created");
        f.fail_next(op, Fault::Unknown);
        let err = fan_out(&f.h, &event).await.unwrap_err();
        assert!(matches!(err, FanoutError::Store(StoreError::Unknown(_))), "{name}: {err}");
        assert_eq!(f.deliveries.all(), vec![], "{name}");
        assert_eq!(f.queue.jobs(), vec![], "{name}");
        assert_eq!(f.count(Op::Enqueue), 0, "{name}");

        // Run again (the event is fanned out again later), it completes.
        assert_eq!(fan_out(&f.h, &event).await.unwrap().len(), 1, "{name}");
        assert_eq!(f.queue.jobs().len(), 1, "{name}");
    }
}

#[tokio::test]
async fn a_queue_failure_is_reported_with_the_deliveries_stored_first() {
    let f = Fakes::new();
    let w = f.add_webhook(&tenant(), &["*"]);
    let event = f.add_event(&tenant(), "project.created");
    f.fail_next(Op::Enqueue, Fault::Unknown);
    let err = fan_out(&f.h, &event).await.unwrap_err();
    assert!(matches!(err, FanoutError::Queue(QueueError::Unknown(_))), "{err}");
    let calls = f.calls();
    assert_eq!(calls, vec![Op::WebhookListActive, Op::DeliveryCreate, Op::Enqueue], "a job never exists without its delivery");
    assert_eq!(f.queue.jobs(), vec![]);

    // Fanned out again, the stored delivery is kept and its job queued.
    let again = fan_out(&f.h, &event).await.unwrap();
    assert_eq!(f.deliveries.all(), again);
    assert_eq!(f.queue.jobs(), vec![again[0].job(start(), false)]);
    assert_eq!(f.deliveries.get(&tenant(), &w.id, &again[0].id).await.unwrap().webhook_id, w.id);
}

#[tokio::test]
async fn creating_deliveries_stores_them_and_hands_their_jobs_back_unqueued() {
    let f = Fakes::new();
    let w = f.add_webhook(&tenant(), &["project.*"]);
    let event = f.add_event(&tenant(), "project.created");
    let (deliveries, jobs) = super::create_deliveries(&f.h, &event).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(f.deliveries.stored(&deliveries[0].id).as_ref(), Some(&deliveries[0]), "stored");
    assert_eq!(jobs, vec![deliveries[0].job(start(), false)], "its first attempt, due now");
    assert_eq!(jobs[0].webhook_id, w.id);
    assert!(f.queue.jobs().is_empty(), "queueing is the caller's");
}

#[tokio::test]
async fn a_webhook_s_filter_lets_through_exactly_the_events_whose_fields_match() {
    use crate::webhook::Filter;
    let f = Fakes::new();
    let mut picky = f.add_webhook(&tenant(), &["project.*"]);
    picky.policy.filter = Some(Filter::parse(serde_json::json!({"subject_id": {"$in": ["1", "3"]}})).unwrap());
    f.webhooks.put(&picky);
    let all = f.add_webhook(&tenant(), &["project.*"]);
    let mut got = Vec::new();
    for id in ["1", "2", "3", "4"] {
        let data = format!(r#"{{"subject_type":"project","event_type":"UPDATED","subject_id":"{id}"}}"#);
        let e = crate::event::Event::from_parts(tenant(), crate::ids::EventId::generate(), start(), &data).unwrap();
        let ds = fan_out(&f.h, &e).await.unwrap();
        got.push((id, ids(ds.iter().map(|d| &d.webhook_id))));
    }
    let both = ids([&picky.id, &all.id]);
    let only_all = ids([&all.id]);
    assert_eq!(got, vec![("1", both.clone()), ("2", only_all.clone()), ("3", both), ("4", only_all)]);
}
