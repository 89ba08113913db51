//! What operators see of AWS mode, through the handlers: metrics as Embedded Metric
//! Format lines, and operational events published by the sender into the events table
//! and delivered through the stream like any event.

use crate::aws_pipeline::stack;
use serde_json::{Value, json};
use std::time::Duration;
use tests::lambda;
use tests::receiver::Receiver;

#[tokio::test]
async fn the_handlers_metrics_come_out_as_embedded_metric_format_lines() {
    let s = stack(&[]).await;
    let rx = Receiver::start().await;
    rx.script("/gone", &[], 410);
    for path in ["/ok", "/gone"] {
        let body = json!({"data": {"endpoint_url": rx.url(path), "listened_events": ["project.*"]}});
        assert_eq!(s.call("POST", "/webhooks", Some(body)).await.0, 201);
    }
    let (h, registry) = hookline_aws::with_metrics(s.h.clone());
    s.produce("default", Some(r#"{"subject_type":"project","event_type":"CREATED"}"#)).await;
    let event = lambda::read_stream(&s.sdk, &s.resources.events_table).await;
    assert!(fanout::handle(&h, event).await.batch_item_failures.is_empty());
    let fanout_lines = registry.emf("fanout", 1_795_000_000_000);
    s.drain_queue_until(&h, 30, Duration::from_secs(20), || !rx.received_on("/ok").is_empty() && !rx.received_on("/gone").is_empty()).await;
    let sender_lines = registry.emf("sender", 1_795_000_000_000);

    let docs =
        |lines: &[String]| -> Vec<Value> { lines.iter().map(|l| tests::emf::check(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect() };
    let (fanned, sent) = (docs(&fanout_lines), docs(&sender_lines));
    let find = |docs: &[Value], metric: &str, dimension: Option<(&str, &str)>| -> Value {
        docs.iter()
            .find(|d| {
                d.get(metric).is_some() && dimension.is_none_or(|(k, v)| d[k] == v) && (dimension.is_some() || d.get("Outcome").is_none())
            })
            .map(|d| d[metric].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(find(&fanned, "EventsPublished", None), 1);
    assert_eq!(find(&fanned, "DeliveriesCreated", None), 2);
    assert!(fanned.iter().all(|d| d["Function"] == "fanout" && d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Hookline"));
    assert_eq!(find(&sent, "Attempts", Some(("Outcome", "2xx"))), 1);
    assert_eq!(find(&sent, "Attempts", Some(("Outcome", "410"))), 1);
    assert_eq!(find(&sent, "DeliveriesSucceeded", None), 1);
    assert_eq!(find(&sent, "DeliveriesFailed", None), 1);
    assert_eq!(find(&sent, "WebhooksDisabled", Some(("Reason", "gone"))), 1);
    assert_eq!(find(&sent, "AttemptDuration", None).as_array().map(Vec::len), Some(2));
    assert!(
        tests::emf::check(
            r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"H","Dimensions":[["Function"]],"Metrics":[{"Name":"X"}]}]}}"#
        )
        .is_err(),
        "a metric without its value is refused"
    );
}

#[tokio::test]
async fn a_410_in_the_sender_reaches_a_subscribed_webhook_through_the_stream() {
    let s = stack(&[]).await;
    let rx = Receiver::start().await;
    rx.script("/gone", &[], 410);
    let (_, gone) =
        s.call("POST", "/webhooks", Some(json!({"data": {"endpoint_url": rx.url("/gone"), "listened_events": ["project.*"]}}))).await;
    let watch =
        json!({"data": {"endpoint_url": rx.url("/watch"), "listened_events": ["hookline_webhook.disabled", "hookline_delivery.failed"]}});
    assert_eq!(s.call("POST", "/webhooks", Some(watch)).await.0, 201);
    s.produce("default", Some(r#"{"subject_type":"project","event_type":"CREATED"}"#)).await;
    assert!(s.fan_out_stream().await.batch_item_failures.is_empty());
    s.drain_queue_until(&s.h, 30, Duration::from_secs(20), || !rx.received_on("/gone").is_empty()).await;
    // The sender appended two operational events; the stream fans them out.
    assert!(s.fan_out_stream().await.batch_item_failures.is_empty());
    s.drain_queue_until(&s.h, 30, Duration::from_secs(20), || rx.received_on("/watch").len() >= 2).await;
    let mut names: Vec<String> = rx
        .received_on("/watch")
        .iter()
        .map(|r| {
            let e = r.json()["event"].clone();
            assert_eq!(e["subject_id"], gone["data"]["id"]);
            format!("{}.{}", e["subject_type"].as_str().unwrap_or_default(), e["event_type"].as_str().unwrap_or_default())
        })
        .collect();
    names.sort();
    assert_eq!(names, ["hookline_delivery.FAILED", "hookline_webhook.DISABLED"]);
    assert_eq!(rx.received_on("/gone").len(), 1);
}
