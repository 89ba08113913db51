//! Operational events on the fakes: a 410 and a delivery failed for good publish into
//! the tenant's stream, a subscriber is planned a delivery and the webhook it is about
//! is not, failures of operational deliveries publish nothing, and a rotation publishes
//! no secret.

use super::*;
use crate::fakes::Fakes;
use crate::fanout::plan;
use crate::ids::TenantId;
use crate::page::PageRequest;
use crate::ports::{Clock, HttpOutcome};
use crate::send::{SendReport, send};
use bytes::Bytes;
use std::time::Duration;

fn answer(status: u16) -> HttpOutcome {
    HttpOutcome::Response { status, retry_after: None, body: Bytes::from_static(b"no"), elapsed: Duration::from_millis(5) }
}

async fn published(f: &Fakes, tenant: &TenantId) -> Vec<Event> {
    let mut events = f.h.events.list(tenant, &PageRequest::default()).await.expect("events").items;
    events.retain(|e| e.name.is_operational());
    events
}

#[tokio::test]
async fn a_410_publishes_the_disable_and_the_failed_delivery_which_reach_subscribers_but_not_their_subject() {
    let f = Fakes::new();
    let acme = TenantId::parse("acme").unwrap();
    let gone = f.add_webhook(&acme, &["project.*"]);
    let watcher = f.add_webhook(&acme, &["hookline_webhook.*", "hookline_delivery.failed"]);
    let everything = f.add_webhook(&acme, &["*"]);
    let event = f.add_event(&acme, "project.created");
    let (_, job) = f.add_delivery(&gone, &event);
    f.http.answer(answer(410));
    assert!(matches!(send(&f.h, &job).await.expect("send"), SendReport::Failed { .. }));

    let ops = published(&f, &acme).await;
    let names: Vec<&str> = ops.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"hookline_webhook.disabled") && names.contains(&"hookline_delivery.failed"));
    let disabled = ops.iter().find(|e| e.name.as_str() == "hookline_webhook.disabled").expect("disabled");
    let doc: Value = serde_json::from_str(disabled.document.get()).unwrap();
    assert_eq!(doc["subject_id"], gone.id.as_str());
    assert_eq!(doc["webhook"]["endpoint"], "https://receiver.example", "scheme, host and port only: {doc}");
    assert_eq!(doc["last"]["attempt"]["error"], "receiver answered 410");
    assert_eq!(doc["reason"], "receiver answered 410 Gone");
    assert_eq!(doc["last"]["attempt"]["status_code"], 410);
    assert_eq!(doc["last"]["event"]["id"], event.id.as_str());
    assert_eq!(doc["last"]["delivery"]["attempts"], 1);

    // Fan-out: the subscriber gets it; `*` does not reach it; nor does its subject,
    // even were it active again.
    let mut all = vec![gone.clone(), watcher.clone(), everything.clone()];
    all[0].active = true;
    let (deliveries, _) = plan(disabled, &all, f.clock.now());
    assert_eq!(deliveries.iter().map(|d| d.webhook_id.clone()).collect::<Vec<_>>(), vec![watcher.id.clone()]);
}

#[tokio::test]
async fn a_failed_delivery_of_an_operational_event_publishes_no_failed_delivery_event() {
    let f = Fakes::new();
    let acme = TenantId::parse("acme").unwrap();
    let watcher = f.add_webhook(&acme, &["hookline_delivery.failed"]);
    let op = f.add_event(&acme, "hookline_delivery.failed");
    let (_, job) = f.add_delivery(&watcher, &op);
    let before = published(&f, &acme).await.len();
    f.http.answer(answer(410));
    assert!(matches!(send(&f.h, &job).await.expect("send"), SendReport::Failed { .. }));
    let after: Vec<String> = published(&f, &acme).await.iter().map(|e| e.name.to_string()).collect();
    assert_eq!(after.len(), before + 1, "only the disable: {after:?}");
    assert!(after.contains(&"hookline_webhook.disabled".to_owned()));
}

#[tokio::test]
async fn a_rotation_publishes_when_and_never_the_secret() {
    let f = Fakes::new();
    let acme = TenantId::parse("acme").unwrap();
    let mut w = f.add_webhook(&acme, &["project.*"]);
    w.signatures = vec![crate::webhook::Scheme::StandardWebhooks];
    f.webhooks.put(&w);
    let written = crate::usecases::rotate_secret(&f.h, &acme, &w.id, None, None).await.expect("rotate");
    let secret = written.new_secret.expect("secret").expose().to_owned();
    let ops = published(&f, &acme).await;
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].name.as_str(), "hookline_secret.rotated");
    assert!(!ops[0].document.get().contains(&secret) && !ops[0].document.get().contains("whsec_"), "{}", ops[0].document.get());
}

#[tokio::test]
async fn a_failing_webhook_that_delivers_again_is_announced_as_recovered() {
    let f = Fakes::new();
    let acme = TenantId::parse("acme").unwrap();
    let mut w = f.add_webhook(&acme, &["project.*"]);
    w.failing_since = Some(f.clock.now() - chrono::Duration::hours(1));
    w.failed_deliveries = 3;
    f.webhooks.put(&w);
    let event = f.add_event(&acme, "project.created");
    let (_, job) = f.add_delivery(&w, &event);
    f.http.answer(answer(200));
    assert!(matches!(send(&f.h, &job).await.expect("send"), SendReport::Delivered(_)));
    let ops = published(&f, &acme).await;
    assert_eq!(ops.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["hookline_webhook.recovered"]);
    let doc: Value = serde_json::from_str(ops[0].document.get()).unwrap();
    assert_eq!((doc["subject_id"].as_str(), doc["last"]["attempt"]["status_code"].as_u64()), (Some(w.id.as_str()), Some(200)));
}
