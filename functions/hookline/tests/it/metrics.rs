//! Local mode's metrics and logs: after a scripted run (deliveries that succeed, fail
//! for good, and a webhook a 410 disables), `/metrics` on its own address holds the
//! counts the test caused, read by Prometheus's own parser; with
//! `HOOKLINE_LOG_FORMAT=json` every log line is a JSON object carrying the ids.

use crate::crash::start_binary_env;
use serde_json::{Value, json};
use std::time::Duration;
use tests::client::ApiClient;
use tests::prometheus::{self, value};
use tests::receiver::Receiver;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test]
async fn metrics_count_a_scripted_run_and_json_logs_carry_the_ids() {
    let dir = tempfile::tempdir().expect("dir");
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let (mut child, base) = tokio::task::spawn_blocking({
        let (p, addr) = (dir.path().to_owned(), metrics_addr.clone());
        move || start_binary_env(&p, "json.log", "debug", &[("HOOKLINE_METRICS_LISTEN", &addr), ("HOOKLINE_LOG_FORMAT", "json")])
    })
    .await
    .expect("start");
    let admin = std::fs::read_to_string(dir.path().join("admin-key")).expect("admin key").trim().to_owned();
    let api = ApiClient::new(&base, Some(&admin));
    let rx = Receiver::start().await;
    rx.script("/fail", &[], 500);
    rx.script("/gone", &[], 410);
    let mut gone = String::new();
    for path in ["/ok", "/fail", "/gone"] {
        gone = api.create_webhook(&rx.url(path), &["project.*"]).await["id"].as_str().expect("id").to_owned();
    }
    let event = || json!({"subject_type": "project", "event_type": "CREATED"});
    // The first event disables /gone with its 410; the next two are not delivered there.
    api.publish(event()).await;
    rx.wait_for("/gone", 1, crate::support::WAIT).await;
    rx.wait_for("/ok", 1, crate::support::WAIT).await;
    for _ in 0..100 {
        if api.get(&format!("/webhooks/{gone}")).await.data()["active"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.publish(event()).await;
    api.publish(event()).await;
    // Five attempts for each of /fail's three deliveries (the schedule allows 4 retries).
    rx.wait_for("/fail", 15, Duration::from_secs(30)).await;
    rx.wait_for("/ok", 3, crate::support::WAIT).await;

    let url = format!("http://{metrics_addr}/metrics");
    let mut samples = Default::default();
    for _ in 0..100 {
        let resp = reqwest::get(&url).await.expect("scrape");
        assert_eq!(resp.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
        samples = prometheus::parse(&resp.text().await.expect("text")).expect("Prometheus's parser reads the exposition");
        // Acknowledged jobs leave the queue table in a deferred write, a moment later.
        if value(&samples, "hookline_deliveries_failed_total", &[]) >= 4.0 && value(&samples, "hookline_pending_deliveries", &[]) == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (name, labels, want) in [
        // Three published, and Hookline's own: /gone disabled, four deliveries failed.
        ("hookline_events_published_total", &[][..], 8.0),
        ("hookline_deliveries_created_total", &[], 7.0),
        ("hookline_attempts_total", &[("outcome", "2xx")], 3.0),
        ("hookline_attempts_total", &[("outcome", "5xx")], 15.0),
        ("hookline_attempts_total", &[("outcome", "410")], 1.0),
        ("hookline_attempts_total", &[("outcome", "timeout")], 0.0),
        ("hookline_deliveries_succeeded_total", &[], 3.0),
        ("hookline_deliveries_failed_total", &[], 4.0),
        ("hookline_webhooks_disabled_total", &[("reason", "gone")], 1.0),
        ("hookline_webhooks_disabled_total", &[("reason", "failing")], 0.0),
        ("hookline_attempt_duration_seconds_count", &[], 19.0),
        ("hookline_queue_lag_seconds_count", &[], 19.0),
        ("hookline_attempt_duration_seconds_bucket", &[("le", "+Inf")], 19.0),
        ("hookline_pending_deliveries", &[], 0.0),
        ("hookline_oldest_pending_age_seconds", &[], 0.0),
    ] {
        assert_eq!(value(&samples, name, labels), want, "{name} {labels:?}");
    }
    assert!(value(&samples, "hookline_signing_duration_seconds_count", &[]) >= 19.0);
    assert!(prometheus::parse("hookline_x{ 1").is_err(), "the parser refuses what is not the format");

    child.kill().expect("stop");
    child.wait().expect("reap");
    let log = std::fs::read_to_string(dir.path().join("json.log")).expect("log");
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}"))).collect();
    assert!(lines.len() > 20, "{} lines", lines.len());
    let attempt = lines.iter().find(|l| l["message"] == "attempt recorded" && l["status"] == "Some(410)").expect("the 410 attempt's line");
    for field in ["event", "delivery", "webhook", "attempt", "level", "timestamp"] {
        assert!(attempt[field].as_str().is_some_and(|v| !v.is_empty()), "{field} in {attempt}");
    }
    assert!(lines.iter().any(|l| l["message"] == "webhook disabled" && l["webhook"].is_string()));
    assert!(!log.contains(&admin), "the admin key is not in the log");
}
