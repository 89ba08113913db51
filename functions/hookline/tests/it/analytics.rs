//! Webhook analytics in local mode, end to end: real deliveries to a real receiver that
//! answers 200, 500 or too late, and analytics equal to what the test counts from the
//! delivery history and the receiver.

use crate::support::{TestApp, WAIT, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tests::receiver::Receiver;

async fn webhook(app: &TestApp, url: &str, events: &str) -> String {
    let a = app.api.post("/webhooks", json!({"data": {"endpoint_url": url, "listened_events": [events]}})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.data()["id"].as_str().expect("id").to_owned()
}

/// A webhook's deliveries, once none is pending, each with its attempts.
async fn finished(app: &TestApp, webhook: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = app.api.get(&format!("/webhooks/{webhook}/deliveries?limit=100")).await;
        let items = list.data().as_array().cloned().unwrap_or_default();
        if items.len() == n && items.iter().all(|d| d["status"] != "pending") {
            let mut out = Vec::new();
            for d in items {
                out.push(app.api.get(&format!("/webhooks/{webhook}/deliveries/{}", d["id"].as_str().expect("id"))).await.data().clone());
            }
            return out;
        }
        assert!(tokio::time::Instant::now() < deadline, "deliveries of {webhook} never all finished: {}", list.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the test counts from a delivery history: attempts by outcome, deliveries
/// succeeded and failed.
fn count(deliveries: &[Value]) -> Value {
    let attempts: Vec<&Value> = deliveries.iter().flat_map(|d| d["attempts"].as_array().expect("attempts")).collect();
    let with = |f: &dyn Fn(&Value) -> bool| attempts.iter().filter(|a| f(a)).count();
    let status = |a: &Value, lo: u64| a["status_code"].as_u64().is_some_and(|s| (lo..lo + 100).contains(&s));
    let timeouts = with(&|a| a["status_code"].is_null() && a["error"].as_str().is_some_and(|e| e.starts_with("timeout")));
    let ok = with(&|a| status(a, 200));
    json!({
        "total": attempts.len(),
        "succeeded": ok,
        "failed": attempts.len() - ok,
        "2xx": ok,
        "5xx": with(&|a| status(a, 500)),
        "timeout": timeouts,
        "deliveries": {
            "succeeded": deliveries.iter().filter(|d| d["status"] == "succeeded").count(),
            "failed": deliveries.iter().filter(|d| d["status"] == "failed").count(),
        },
    })
}

/// The analytics numbers, in [`count`]'s shape.
fn shown(r: &Value) -> Value {
    let a = &r["attempts"];
    json!({
        "total": a["total"],
        "succeeded": a["succeeded"],
        "failed": a["failed"],
        "2xx": a["by_outcome"]["2xx"],
        "5xx": a["by_outcome"]["5xx"],
        "timeout": a["by_outcome"]["timeout"],
        "deliveries": r["deliveries"],
    })
}

/// The analytics of `webhook` over `window` once they show `want` (an attempt is
/// counted just after it is recorded); panics after [`WAIT`] with the last answer.
async fn analytics_showing(app: &TestApp, webhook: &str, window: &str, want: &Value) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let a = app.api.get(&format!("/webhooks/{webhook}/analytics?window={window}")).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        if &shown(a.data()) == want {
            return a.data().clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "analytics {} never showed {want}", a.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn analytics_count_the_deliveries_the_receiver_answered_failed_and_let_time_out() {
    let app = spawn_app_with(&[("HOOKLINE_RETRY_SCHEDULE", "1s"), ("HOOKLINE_DELIVERY_TIMEOUT", "1s")]).await;
    let rx = Receiver::start().await;
    // The first two requests to /mixed fail (whichever deliveries they are), then it
    // answers 200: the two are retried once and succeed. /late answers after the timeout.
    rx.script("/mixed", &[500, 500], 200);
    rx.slow("/late", Duration::from_millis(1500));
    let mixed = webhook(&app, &rx.url("/mixed"), "project.*").await;
    let late = webhook(&app, &rx.url("/late"), "activity.*").await;
    for i in 0..5 {
        app.api.publish(json!({"subject_type": "project", "event_type": "UPDATED", "subject_id": i.to_string()})).await;
    }
    app.api.publish(json!({"subject_type": "activity", "event_type": "CREATED", "subject_id": "1"})).await;

    let mixed_history = count(&finished(&app, &mixed, 5).await);
    assert_eq!(mixed_history["total"], 7, "{mixed_history}");
    assert_eq!(mixed_history["deliveries"], json!({"succeeded": 5, "failed": 0}));
    assert_eq!(rx.received_on("/mixed").len(), 7, "the receiver saw every attempt");
    let late_history = count(&finished(&app, &late, 1).await);
    assert_eq!((late_history["timeout"].as_u64(), &late_history["deliveries"]), (Some(2), &json!({"succeeded": 0, "failed": 1})));

    for window in ["1h", "24h", "7d", "30d"] {
        let m = analytics_showing(&app, &mixed, window, &mixed_history).await;
        assert_eq!(m["success_rate"], json!(5.0 / 7.0), "{window}");
        let charted: u64 = m["buckets"].as_array().expect("buckets").iter().map(|b| b["attempts"].as_u64().expect("n")).sum();
        assert_eq!(charted, 7, "{window}: the chart holds every attempt");
        let l = analytics_showing(&app, &late, window, &late_history).await;
        assert_eq!(l["success_rate"], json!(0.0));
        // A timed-out attempt lasts about the timeout; a percentile is at most 19 % above.
        let p50 = l["latency_ms"]["p50"].as_u64().expect("p50");
        assert!((1000..1300).contains(&p50), "{window}: {p50} ms");
        assert!(m["latency_ms"]["p99"].as_u64().expect("p99") < 1000, "{window}: {}", m["latency_ms"]);
    }
    let refused = app.api.get(&format!("/webhooks/{mixed}/analytics?window=90m")).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_window"));
}
