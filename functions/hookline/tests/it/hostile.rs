//! Hostile and failing receivers: every attempt ends within the delivery timeout
//! (2 s in these tests) with the right outcome.
//!
//! The timeouts are real: a receiver that hangs or trickles is cut off by the HTTP
//! client's timer, so those tests take real seconds and bound the attempt's measured
//! duration. What happens later (a retry falling due, a failing streak's period) is
//! tested on a clock the test moves instead.

use crate::support::{
    TestApp, WAIT, delivery_after_attempts, delivery_with_status, spawn_app_on_manual_clock, spawn_app_with, webhook_where,
};
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::webhook::Webhook;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tests::hostile::{self, Hostility};
use tests::receiver::Receiver;

/// The delivery timeout the app is started with, and the bound checked on attempts.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Slack over [`TIMEOUT`] for a busy machine: generous, yet short of the 10 s default
/// timeout, so an attempt not cut off by the configured timeout still fails the bound.
const SLACK: Duration = Duration::from_secs(5);

async fn app() -> TestApp {
    spawn_app_with(&[("HOOKLINE_RETRY_SCHEDULE", "1h"), ("HOOKLINE_DELIVERY_TIMEOUT", "2s")]).await
}

/// Sends one event to `url` and returns the delivery once its first attempt is recorded.
async fn first_attempt(app: &TestApp, url: &str) -> Value {
    let w = app.api.create_webhook(url, &["*"]).await;
    let wid = w["id"].as_str().expect("id").to_owned();
    app.api.publish(json!({"subject_type": "project", "event_type": "CREATED"})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = app.api.get(&format!("/webhooks/{wid}/deliveries")).await;
        if let Some(d) = list.data().as_array().and_then(|a| a.first()).filter(|d| d["attempts"] == 1) {
            let detail = app.api.get(&format!("/webhooks/{wid}/deliveries/{}", d["id"].as_str().expect("id"))).await;
            return detail.data().clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no attempt recorded for {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_retry_within_timeout(d: &Value, expect_error: &str) {
    let a = &d["attempts"][0];
    assert_eq!(d["status"], "pending", "a retry is scheduled: {d}");
    assert!(d["next_attempt_at"].is_string());
    assert!(a["error"].as_str().unwrap_or_default().starts_with(expect_error), "{a}");
    let ms = a["duration_ms"].as_u64().expect("duration");
    assert!(Duration::from_millis(ms) <= TIMEOUT + SLACK, "attempt took {ms} ms");
}

#[tokio::test]
async fn a_hanging_receiver_times_out_and_is_retried() {
    let app = app().await;
    let addr = hostile::start(Hostility::Hang).await;
    let d = first_attempt(&app, &format!("http://{addr}/hang")).await;
    assert_retry_within_timeout(&d, "timeout");
    // Real time: the attempt lasted until the configured timeout cut it off.
    assert!(d["attempts"][0]["duration_ms"].as_u64().expect("ms") >= 1900);
}

#[tokio::test]
async fn a_trickling_receiver_cannot_stretch_an_attempt_past_the_timeout() {
    let app = app().await;
    let addr = hostile::start(Hostility::Trickle).await;
    let d = first_attempt(&app, &format!("http://{addr}/trickle")).await;
    assert_retry_within_timeout(&d, "timeout");
}

#[tokio::test]
async fn a_ten_megabyte_answer_is_read_only_in_part_and_stored_cut_to_four_kib() {
    let app = app().await;
    let addr = hostile::start(Hostility::Huge).await;
    let d = first_attempt(&app, &format!("http://{addr}/huge")).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    let body = d["attempts"][0]["response_body"].as_str().expect("body");
    assert_eq!(body.len(), 4096);
    assert!(Duration::from_millis(d["attempts"][0]["duration_ms"].as_u64().expect("ms")) <= TIMEOUT + SLACK);
}

#[tokio::test]
async fn a_connection_reset_is_retried() {
    let app = app().await;
    let addr = hostile::start(Hostility::Reset).await;
    let d = first_attempt(&app, &format!("http://{addr}/reset")).await;
    let a = &d["attempts"][0];
    assert_eq!(d["status"], "pending");
    assert_eq!(a["status_code"], Value::Null);
    assert!(a["error"].is_string(), "{a}");
}

#[tokio::test]
async fn malformed_http_is_retried() {
    let app = app().await;
    let addr = hostile::start(Hostility::Garbage).await;
    let d = first_attempt(&app, &format!("http://{addr}/garbage")).await;
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"][0]["status_code"], Value::Null);
    assert!(d["attempts"][0]["error"].is_string());
}

#[tokio::test]
async fn a_tls_failure_is_retried() {
    let app = app().await;
    // A plain-HTTP server behind an https URL: the TLS handshake fails.
    let rx = Receiver::start().await;
    let url = rx.url("/tls").replace("http://", "https://");
    let d = first_attempt(&app, &url).await;
    assert_retry_within_timeout(&d, "tls failed");
    assert!(rx.received().is_empty());
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_retried() {
    let app = app().await;
    let rx = Receiver::start().await;
    rx.script_with_headers("/moved", 302, &[("Location", "/elsewhere")]);
    let d = first_attempt(&app, &rx.url("/moved")).await;
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"][0]["status_code"], 302);
    assert!(d["attempts"][0]["error"].as_str().expect("error").contains("redirects are not followed"));
    assert!(rx.received_on("/elsewhere").is_empty(), "the redirect was not followed");
}

#[tokio::test]
async fn gone_disables_the_webhook_and_ends_its_pending_deliveries_until_re_enabled() {
    // The first delivery's retry falls due only when the test moves the clock: after
    // the second delivery's 410.
    let app = spawn_app_on_manual_clock(&[("HOOKLINE_RETRY_SCHEDULE", "1s")]).await;
    let rx = Receiver::start().await;
    rx.script("/gone", &[500, 410], 200);
    let w = app.api.create_webhook(&rx.url("/gone"), &["*"]).await;
    let wid = w["id"].as_str().expect("id");
    // Two deliveries: the first is retried after a 500; the second's 410 disables the webhook.
    app.api.publish(json!({"subject_type": "project", "event_type": "CREATED"})).await;
    let first = rx.wait_for("/gone", 1, WAIT).await[0].json()["delivery"]["id"].as_str().expect("id").to_owned();
    assert_eq!(delivery_after_attempts(&app, wid, &first, 1).await.status, DeliveryStatus::Pending, "a retry is due");
    app.api.publish(json!({"subject_type": "project", "event_type": "UPDATED"})).await;
    let second = rx.wait_for("/gone", 2, WAIT).await[1].json()["delivery"]["id"].as_str().expect("id").to_owned();
    assert_eq!(delivery_with_status(&app, wid, &second, DeliveryStatus::Failed).await.attempts, 1, "410 is final");
    let got = app.api.get(&format!("/webhooks/{wid}")).await;
    assert_eq!(got.data()["active"], false);
    assert_eq!(got.data()["disabled_reason"], "receiver answered 410 Gone");
    assert!(got.data()["disabled_at"].is_string());
    // The first delivery's retry falls due and ends, unsent.
    app.advance(Duration::from_secs(1));
    assert_eq!(delivery_with_status(&app, wid, &first, DeliveryStatus::Failed).await.attempts, 1);
    app.queue_drained().await;
    assert_eq!(rx.received_on("/gone").len(), 2);
    // Re-enabling clears the reason and resumes delivery of new events.
    let on = app.api.patch(&format!("/webhooks/{wid}"), json!({"data": {"active": true}})).await;
    assert_eq!(on.status, StatusCode::OK);
    assert_eq!(on.data()["disabled_reason"], Value::Null);
    app.api.publish(json!({"subject_type": "project", "event_type": "DELETED"})).await;
    assert_eq!(rx.wait_for("/gone", 3, WAIT).await[2].answered, 200);
}

#[tokio::test]
async fn a_webhook_failing_for_the_whole_period_is_disabled_and_enabling_resumes_it() {
    // The period is measured on the app's clock, which the test moves across it.
    let app = spawn_app_on_manual_clock(&[
        ("HOOKLINE_RETRY_SCHEDULE", ""),
        ("HOOKLINE_AUTO_DISABLE_AFTER", "1h"),
        ("HOOKLINE_AUTO_DISABLE_MIN_FAILURES", "2"),
    ])
    .await;
    let start = app.now();
    let rx = Receiver::start().await;
    rx.script("/sick", &[500, 500, 500], 200);
    let w = app.api.create_webhook(&rx.url("/sick"), &["*"]).await;
    let wid = w["id"].as_str().expect("id");
    let after_one = fail_once(&app, &rx, wid, 1, "CREATED").await;
    assert_eq!((after_one.failing_since, after_one.active), (Some(start), true), "one failure starts a streak");
    let after_two = fail_once(&app, &rx, wid, 2, "UPDATED").await;
    assert_eq!((after_two.failing_since, after_two.active), (Some(start), true), "two failures within the period do not disable");
    // A failure a whole period after the first disables the webhook.
    app.advance(Duration::from_secs(3600));
    let disabled = fail_once(&app, &rx, wid, 3, "DELETED").await;
    assert!(!disabled.active, "disabled once the streak spans the period");
    let since = hookline_domain::time::format(&start);
    assert_eq!(disabled.disabled_reason, Some(format!("every delivery failed since {since} (3 deliveries)")));
    let got = app.api.get(&format!("/webhooks/{wid}")).await;
    assert_eq!(got.data()["active"], false);
    // Enabling clears the streak and resumes delivery.
    let on = app.api.patch(&format!("/webhooks/{wid}"), json!({"data": {"active": true}})).await;
    assert_eq!((on.data()["failing_since"].clone(), on.data()["disabled_reason"].clone()), (Value::Null, Value::Null));
    app.api.publish(json!({"subject_type": "activity", "event_type": "CREATED"})).await;
    let got = rx.wait_for("/sick", 4, WAIT).await;
    assert_eq!(got[3].json()["event"]["subject_type"], "activity");
    assert_eq!(got[3].answered, 200);
}

/// Publishes an event whose delivery to `/sick` (its `n`-th request) fails at once,
/// and returns the webhook once the send step has counted that failed delivery.
async fn fail_once(app: &TestApp, rx: &Receiver, wid: &str, n: usize, event_type: &str) -> Webhook {
    app.api.publish(json!({"subject_type": "project", "event_type": event_type})).await;
    let got = rx.wait_for("/sick", n, WAIT).await;
    let did = got[n - 1].json()["delivery"]["id"].as_str().expect("id").to_owned();
    delivery_with_status(app, wid, &did, DeliveryStatus::Failed).await;
    webhook_where(app, wid, &format!("counted {n} failed deliveries"), |w| w.failed_deliveries as usize == n).await
}
