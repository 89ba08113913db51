//! Per-webhook delivery policy in local mode: a webhook's own retry schedule beside the
//! deployment's, its filter, method and body shape (verified with the receivers' own
//! libraries and the independent JOSE verifier), its maximum age, and the API's
//! refusals naming the field.

use crate::support::{WAIT, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tests::jose;
use tests::receiver::{Received, Receiver};
use tests::standard::{LIBRARIES, verify};

async fn webhook(app: &crate::support::TestApp, data: Value) -> Value {
    let a = app.api.post("/webhooks", json!({ "data": data })).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.data().clone()
}

async fn publish(app: &crate::support::TestApp, data: Value) -> String {
    app.api.publish(data).await["id"].as_str().expect("id").to_owned()
}

fn headers(r: &Received) -> BTreeMap<String, String> {
    r.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect()
}

#[tokio::test]
async fn a_webhook_retries_on_its_own_schedule_and_stops_at_its_maximum_age_while_another_keeps_the_deployment_s() {
    // The deployment retries after an hour; one webhook after 1 s, twice.
    let app = spawn_app_with(&[("HOOKLINE_RETRY_SCHEDULE", "1h")]).await;
    let rx = Receiver::start().await;
    for p in ["/own", "/default", "/old"] {
        rx.script(p, &[], 503);
    }
    let own = webhook(&app, json!({"endpoint_url": rx.url("/own"), "listened_events": ["project.*"], "retry_schedule": "1s,1s"})).await;
    assert_eq!(own["retry_schedule"], "1s,1s");
    webhook(&app, json!({"endpoint_url": rx.url("/default"), "listened_events": ["project.*"]})).await;
    let old = webhook(
        &app,
        json!({"endpoint_url": rx.url("/old"), "listened_events": ["project.*"], "retry_schedule": "1s,1s,1s", "max_age": "1s"}),
    )
    .await;
    assert_eq!(old["max_age"], "1s");
    publish(&app, json!({"subject_type": "project", "event_type": "CREATED", "subject_id": "1"})).await;
    let got = rx.wait_for("/own", 3, WAIT).await;
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps.iter().all(|g| *g >= Duration::from_millis(900) && *g < Duration::from_secs(5)), "{gaps:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.received_on("/default").len(), 1, "the deployment's schedule: the retry is an hour away");
    assert_eq!(rx.received_on("/own").len(), 3, "two retries, then no more");
    // A retry a second after the first attempt starts past its one-second maximum age.
    assert_eq!(rx.received_on("/old").len(), 1, "no retry past its maximum age");
    let list = app.api.get(&format!("/webhooks/{}/deliveries", old["id"].as_str().expect("id"))).await;
    assert_eq!(list.data()[0]["status"], "failed", "{}", list.body);
}

#[tokio::test]
async fn a_filter_lets_through_exactly_the_matching_events_and_each_body_shape_verifies_with_its_signatures() {
    let app = spawn_app_with(&[]).await;
    let rx = Receiver::start().await;
    let filter = json!({"metadata": {"status": "active"}, "seats": {"$gte": 10}});
    let std = webhook(
        &app,
        json!({
            "endpoint_url": rx.url("/std"), "listened_events": ["project.*"], "name": "Billing sync",
            "method": "PUT", "payload_format": "standard_webhooks", "signatures": ["standard_webhooks", "jwt"],
            "filter": filter,
        }),
    )
    .await;
    assert_eq!((std["name"].as_str(), std["method"].as_str(), std["filter"].clone()), (Some("Billing sync"), Some("PUT"), filter));
    let secret = std["secret"].as_str().expect("secret").to_owned();
    webhook(&app, json!({"endpoint_url": rx.url("/all"), "listened_events": ["project.*"], "method": "PATCH"})).await;

    let cases = [
        (json!({"status": "active"}), 12, true),
        (json!({"status": "active"}), 9, false),
        (json!({"status": "archived"}), 50, false),
        (json!({}), 50, false),
        (json!({"status": "active"}), 10, true),
    ];
    let mut wanted = Vec::new();
    for (i, (metadata, seats, matches)) in cases.iter().enumerate() {
        let id = publish(
            &app,
            json!({"subject_type": "project", "event_type": "UPDATED", "subject_id": i.to_string(), "metadata": metadata, "seats": seats}),
        )
        .await;
        if *matches {
            wanted.push(id);
        }
    }
    rx.wait_for("/all", cases.len(), WAIT).await;
    let got = rx.wait_for("/std", wanted.len(), WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_ids: Vec<String> =
        rx.received_on("/std").iter().map(|r| r.json()["data"]["id"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(got_ids.len(), wanted.len(), "exactly the matching events");
    assert!(wanted.iter().all(|id| got_ids.contains(id)));

    let jwks = app.anonymous().get("/jwks/webhooks").await.body;
    for r in &got {
        assert_eq!(r.method, "PUT");
        let body = r.json();
        assert_eq!(body["type"], "project.updated");
        assert_eq!(body.as_object().map(|o| o.len()), Some(3), "{body}");
        for lib in LIBRARIES {
            verify(lib, &secret, &headers(r), &r.body).unwrap_or_else(|e| panic!("{lib}: {e}"));
        }
        jose::verify(r.header("x-webhook-signature").expect("jwt"), &r.body, &jwks).expect("the JWT covers the body sent");
    }
    for r in rx.received_on("/all") {
        assert_eq!(r.method, "PATCH");
        assert!(r.json()["event"]["id"].is_string(), "the default envelope");
        jose::verify(r.header("x-webhook-signature").expect("jwt"), &r.body, &jwks).expect("verifies");
    }

    // Back to the defaults with null.
    let id = std["id"].as_str().expect("id");
    let back = app.api.patch(&format!("/webhooks/{id}"), json!({"data": {"method": null, "filter": null, "name": null}})).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_eq!(
        (back.data()["method"].as_str(), back.data()["filter"].clone(), back.data()["name"].clone()),
        (Some("POST"), Value::Null, Value::Null)
    );
}

#[tokio::test]
async fn invalid_policy_fields_are_refused_naming_the_field() {
    let app = spawn_app_with(&[]).await;
    let base = json!({"endpoint_url": "http://127.0.0.1:9/x", "listened_events": ["project.*"]});
    for (field, value, code) in [
        ("name", json!(""), "invalid_name"),
        ("method", json!("GET"), "invalid_method"),
        ("payload_format", json!("xml"), "invalid_payload_format"),
        ("retry_schedule", json!("1s,25h"), "invalid_retry_schedule"),
        ("retry_schedule", json!(vec!["1s"; 21].join(",")), "invalid_retry_schedule"),
        ("max_age", json!("forever"), "invalid_max_age"),
        ("filter", json!({"a": {"$regex": "x"}}), "invalid_filter"),
        ("filter", json!([1]), "invalid_filter"),
    ] {
        let mut data = base.clone();
        data[field] = value.clone();
        let a = app.api.post("/webhooks", json!({ "data": data })).await;
        assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{field}={value}: {}", a.body);
        let message = a.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "the message names the field: {message}");
    }
}

/// Arrivals per second over a run: the gaps between the first and the last arrival.
fn measured_rate(got: &[Received]) -> f64 {
    let span = got.last().expect("arrivals").at - got[0].at;
    (got.len() - 1) as f64 / span.as_secs_f64()
}

#[tokio::test]
async fn a_rate_limit_of_five_a_second_holds_across_workers_and_loses_nothing() {
    // 64 send workers (the default) take the jobs at once; the limit spreads them out.
    let app = spawn_app_with(&[]).await;
    let rx = Receiver::start().await;
    let limited = webhook(&app, json!({"endpoint_url": rx.url("/limited"), "listened_events": ["project.*"], "rate_limit": "5/s"})).await;
    assert_eq!(limited["rate_limit"], "5/s");
    webhook(&app, json!({"endpoint_url": rx.url("/free"), "listened_events": ["project.*"]})).await;
    const N: usize = 30;
    for i in 0..N {
        publish(&app, json!({"subject_type": "project", "event_type": "CREATED", "subject_id": i.to_string()})).await;
    }
    let free = rx.wait_for("/free", N, WAIT).await;
    let got = rx.wait_for("/limited", N, Duration::from_secs(30)).await;
    let rate = measured_rate(&got);
    eprintln!("rate limit 5/s: {rate:.3}/s measured over {N} deliveries at the receiver");
    assert!((4.5..=5.5).contains(&rate), "measured {rate:.2}/s at the receiver, want 5/s within 10 %");
    assert!(measured_rate(&free) > 20.0, "the webhook without a limit is not held back");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.received_on("/limited").len(), N, "each delivery once");
    let id = limited["id"].as_str().expect("id");
    let list = app.api.get(&format!("/webhooks/{id}/deliveries?limit=100")).await;
    let deliveries = list.data().as_array().expect("list").clone();
    assert_eq!(deliveries.len(), N);
    assert!(deliveries.iter().all(|d| d["status"] == "succeeded" && d["attempts"] == 1), "waiting is not a failed attempt: {}", list.body);
}

#[tokio::test]
async fn at_most_max_in_flight_attempts_reach_a_slow_receiver_at_once() {
    let app = spawn_app_with(&[]).await;
    let rx = Receiver::start().await;
    let slow = Duration::from_millis(300);
    rx.slow("/slow", slow);
    webhook(&app, json!({"endpoint_url": rx.url("/slow"), "listened_events": ["project.*"], "max_in_flight": 2})).await;
    const N: usize = 8;
    for i in 0..N {
        publish(&app, json!({"subject_type": "project", "event_type": "CREATED", "subject_id": i.to_string()})).await;
    }
    let got = rx.wait_for("/slow", N, Duration::from_secs(30)).await;
    // An attempt holds its place until its answer is recorded, so at any arrival at most
    // two arrived within the receiver's delay before it (itself included).
    let most = got.iter().map(|r| got.iter().filter(|o| o.at <= r.at && r.at - o.at < slow).count()).max().unwrap_or(0);
    assert_eq!(most, 2, "arrivals: {:?}", got.iter().map(|r| r.at - got[0].at).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.received_on("/slow").len(), N, "each delivery once");
}
