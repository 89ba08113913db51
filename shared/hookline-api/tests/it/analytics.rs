//! Webhook analytics through the router: every answer checked against `openapi.json`,
//! and the numbers equal to a count the test makes from the delivery history it caused.

use crate::support::{Answer, App, app_at, conforms};
use chrono::{DurationRound, TimeDelta};
use hookline_domain::ids::{EventId, TenantId, WebhookId};
use hookline_domain::ports::ManualClock;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const TEMPLATE: &str = "/webhooks/{id}/analytics";

/// Calls the router with `key` and checks the answer against `template`.
async fn call(app: &App, key: &str, method: &str, template: &str, uri: &str, body: Option<Value>) -> Answer {
    let a = app.call(method, uri, Some(key), body.map(|b| b.to_string().into_bytes()), &[]).await;
    conforms(method, template, &a);
    a
}

fn code(a: &Answer) -> (u16, String) {
    (a.status.as_u16(), a.json()["error"]["code"].as_str().unwrap_or_default().to_owned())
}

/// Makes every attempt due at the clock's time, as the workers would.
async fn run_due(app: &App) {
    let h = &app.hookline;
    loop {
        let due = h.queue.take_due(h.clock.now(), 100, Duration::from_secs(30)).await.expect("take");
        if due.is_empty() {
            return;
        }
        for leased in due {
            hookline_domain::recovery::run(h, &leased.task).await.expect("run");
            h.queue.ack(&leased.receipt).await.expect("ack");
        }
    }
}

/// What the test counts from a webhook's delivery history.
#[derive(Debug, Default, PartialEq)]
struct Counted {
    attempts: u64,
    ok: u64,
    /// Attempts by the hour they started (RFC 3339).
    by_hour: BTreeMap<String, u64>,
    deliveries_failed: u64,
}

async fn history(app: &App, webhook: &str) -> Counted {
    let admin = app.admin.clone();
    let list = call(app, &admin, "GET", "/webhooks/{id}/deliveries", &format!("/webhooks/{webhook}/deliveries?limit=100"), None).await;
    let mut c = Counted::default();
    for d in list.json()["data"].as_array().expect("deliveries") {
        let id = d["id"].as_str().expect("id");
        let one =
            call(app, &admin, "GET", "/webhooks/{id}/deliveries/{delivery_id}", &format!("/webhooks/{webhook}/deliveries/{id}"), None)
                .await;
        let one = one.json()["data"].clone();
        c.deliveries_failed += u64::from(one["status"] == "failed");
        for a in one["attempts"].as_array().expect("attempts") {
            c.attempts += 1;
            c.ok += u64::from(a["status_code"].as_u64().is_some_and(|s| (200..300).contains(&s)));
            let at = hookline_domain::time::parse(a["attempted_at"].as_str().expect("attempted_at")).expect("a time");
            *c.by_hour.entry(hookline_domain::time::format(&at.duration_trunc(TimeDelta::hours(1)).expect("hour"))).or_default() += 1;
        }
    }
    c
}

/// The analytics of `webhook` over `window`, checked against the document.
async fn analytics(app: &App, webhook: &str, window: &str) -> Value {
    let admin = app.admin.clone();
    let a = call(app, &admin, "GET", TEMPLATE, &format!("/webhooks/{webhook}/analytics?window={window}"), None).await;
    assert_eq!(a.status, 200, "{:?}", a.json());
    a.json()["data"].clone()
}

fn charted(r: &Value) -> BTreeMap<String, u64> {
    let buckets = r["buckets"].as_array().expect("buckets");
    buckets
        .iter()
        .filter(|b| b["attempts"] != 0)
        .map(|b| (b["start"].as_str().expect("start").to_owned(), b["attempts"].as_u64().expect("n")))
        .collect()
}

#[tokio::test]
async fn analytics_equal_what_the_delivery_history_shows_in_every_window() {
    // 10:02 UTC; the receiver at down.example never answers, so its deliveries run
    // through the whole default schedule (2m, 6m, 30m, 1h, 5h) and fail.
    let clock = Arc::new(ManualClock::new(hookline_domain::time::parse("2026-11-23T10:02:00Z").expect("time")));
    let app = app_at(clock.clone()).await;
    let admin = app.admin.clone();
    let mut webhooks = Vec::new();
    for host in ["ok.example", "down.example"] {
        let body = json!({"data": {"endpoint_url": format!("https://{host}/hook"), "listened_events": ["*"]}});
        let w = call(&app, &admin, "POST", "/webhooks", "/webhooks", Some(body)).await;
        webhooks.push(w.json()["data"]["id"].as_str().expect("id").to_owned());
    }
    let (ok, down) = (webhooks[0].clone(), webhooks[1].clone());
    let nothing = analytics(&app, &ok, "24h").await;
    assert_eq!((nothing["attempts"]["total"].as_u64(), &nothing["success_rate"]), (Some(0), &Value::Null));
    assert_eq!(nothing["latency_ms"], json!({"p50": null, "p95": null, "p99": null}));

    for i in 0..3 {
        let body = json!({"data": {"subject_type": "project", "event_type": "CREATED", "subject_id": i.to_string()}});
        let e = call(&app, &admin, "POST", "/events", "/events", Some(body)).await;
        let id = EventId::parse(e.json()["data"]["id"].as_str().expect("id")).expect("event id");
        let event = app.hookline.events.get(&TenantId::default_tenant(), &id).await.expect("event");
        hookline_domain::fanout::fan_out(&app.hookline, &event).await.expect("fan-out");
    }
    run_due(&app).await;
    for step in [2, 6, 30, 60, 300] {
        clock.advance(Duration::from_secs(step * 60));
        run_due(&app).await;
    }
    // One redelivery (counted) and one test send (not counted).
    let listed = call(&app, &admin, "GET", "/webhooks/{id}/deliveries", &format!("/webhooks/{ok}/deliveries"), None).await;
    let first = listed.json()["data"][0]["id"].as_str().expect("a delivery").to_owned();
    let redeliver = "/webhooks/{id}/deliveries/{delivery_id}/redeliver";
    call(&app, &admin, "POST", redeliver, &format!("/webhooks/{ok}/deliveries/{first}/redeliver"), None).await;
    run_due(&app).await;
    let tested = call(&app, &admin, "POST", "/webhooks/{id}/test", &format!("/webhooks/{ok}/test"), None).await;
    assert_eq!(tested.status, 200);

    let expected = [(&ok, 4, 4, 0), (&down, 18, 0, 3)];
    for (webhook, attempts, ok_attempts, failed) in expected {
        let counted = history(&app, webhook).await;
        assert_eq!((counted.attempts, counted.ok, counted.deliveries_failed), (attempts, ok_attempts, failed), "the history");
        let day = analytics(&app, webhook, "24h").await;
        assert_eq!(day["attempts"]["total"], counted.attempts);
        assert_eq!(day["attempts"]["succeeded"], counted.ok);
        assert_eq!(day["attempts"]["failed"], counted.attempts - counted.ok);
        assert_eq!(day["attempts"]["by_outcome"]["2xx"], counted.ok);
        assert_eq!(day["attempts"]["by_outcome"]["connect"], counted.attempts - counted.ok);
        // Every success finished a delivery (one of them twice: the redelivery).
        assert_eq!(day["deliveries"], json!({"succeeded": counted.ok, "failed": counted.deliveries_failed}));
        assert_eq!(day["success_rate"], json!(counted.ok as f64 / counted.attempts as f64));
        assert_eq!(charted(&day), counted.by_hour, "the chart's hours");
        // The scripted receiver answers in 2 ms and fails in 3: bins 4 and 7 hold them exactly.
        let ms = if webhook == &ok { 2 } else { 3 };
        assert_eq!(day["latency_ms"], json!({"p50": ms, "p95": ms, "p99": ms}));
        assert_eq!((day["window"].as_str(), day["bucket_seconds"].as_u64()), (Some("24h"), Some(3600)));
        assert_eq!(day["buckets"].as_array().map(Vec::len), Some(24));
        assert_eq!(
            (day["since"].as_str(), day["until"].as_str()),
            (Some("2026-11-22T17:00:00.000000Z"), Some("2026-11-23T17:00:00.000000Z"))
        );
        for (window, buckets, seconds) in [("7d", 28, 21_600), ("30d", 30, 86_400), ("", 24, 3600)] {
            let uri = if window.is_empty() {
                format!("/webhooks/{webhook}/analytics")
            } else {
                format!("/webhooks/{webhook}/analytics?window={window}")
            };
            let r = call(&app, &admin, "GET", TEMPLATE, &uri, None).await.json()["data"].clone();
            assert_eq!((r["buckets"].as_array().map(Vec::len), r["bucket_seconds"].as_u64()), (Some(buckets), Some(seconds)), "{window}");
            assert_eq!((&r["attempts"], &r["deliveries"]), (&day["attempts"], &day["deliveries"]), "{window}: the same totals");
            let charted_total: u64 = charted(&r).values().sum();
            assert_eq!(charted_total, counted.attempts, "{window}");
        }
    }
    // At 16:40 the last hour's chart holds the down webhook's last attempts, in the
    // 16:40 bucket; its totals count the hours from 15:00.
    let hour = analytics(&app, &down, "1h").await;
    assert_eq!(charted(&hour), [("2026-11-23T16:40:00.000000Z".to_owned(), 3)].into());
    assert_eq!(
        (hour["since"].as_str(), hour["totals_since"].as_str()),
        (Some("2026-11-23T15:45:00.000000Z"), Some("2026-11-23T15:00:00.000000Z"))
    );
    assert_eq!((hour["attempts"]["total"].as_u64(), hour["deliveries"]["failed"].as_u64()), (Some(3), Some(3)));
}

#[tokio::test]
async fn analytics_refuse_an_unknown_window_and_follow_the_scopes_and_tenants() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = app_at(clock).await;
    let admin = app.admin.clone();
    let body = json!({"data": {"endpoint_url": "https://ok.example/hook", "listened_events": ["*"]}});
    let ours = call(&app, &admin, "POST", "/webhooks", "/webhooks", Some(body.clone())).await.json()["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for window in ["2h", "", "1H", "24h%20", "30days"] {
        let a = call(&app, &admin, "GET", TEMPLATE, &format!("/webhooks/{ours}/analytics?window={window}"), None).await;
        assert_eq!(code(&a), (422, "invalid_window".to_owned()), "{window:?}");
    }
    let missing = call(&app, &admin, "GET", TEMPLATE, &format!("/webhooks/{}/analytics", WebhookId::generate()), None).await;
    assert_eq!(code(&missing), (404, "webhook_not_found".to_owned()));
    let malformed = call(&app, &admin, "GET", TEMPLATE, "/webhooks/nope/analytics", None).await;
    assert_eq!(code(&malformed), (404, "webhook_not_found".to_owned()));

    let key = |scopes: &[&str]| {
        let body = json!({"data": {"tenant": "acme", "scopes": scopes}});
        let app = &app;
        let admin = admin.clone();
        async move {
            call(app, &admin, "POST", "/api-keys", "/api-keys", Some(body)).await.json()["data"]["key"].as_str().expect("key").to_owned()
        }
    };
    let (reader, publisher) = (key(&["webhooks:read", "webhooks:write"]).await, key(&["events:write"]).await);
    let theirs =
        call(&app, &reader, "POST", "/webhooks", "/webhooks", Some(body)).await.json()["data"]["id"].as_str().expect("id").to_owned();
    let at = |w: &str, q: &str| format!("/webhooks/{w}/analytics{q}");
    assert_eq!(call(&app, &reader, "GET", TEMPLATE, &at(&theirs, ""), None).await.status, 200);
    assert_eq!(code(&call(&app, &publisher, "GET", TEMPLATE, &at(&theirs, ""), None).await).0, 403, "needs webhooks:read");
    assert_eq!(code(&call(&app, &reader, "GET", TEMPLATE, &at(&ours, ""), None).await), (404, "webhook_not_found".to_owned()));
    assert_eq!(
        code(&call(&app, &reader, "GET", TEMPLATE, &at(&ours, "?tenant=default"), None).await).0,
        403,
        "only the operator names a tenant"
    );
    assert_eq!(code(&call(&app, &admin, "GET", TEMPLATE, &at(&theirs, ""), None).await).0, 404, "the operator acts within its own tenant");
    assert_eq!(call(&app, &admin, "GET", TEMPLATE, &at(&theirs, "?tenant=acme"), None).await.status, 200);
    assert_eq!(
        code(&call(&app, &admin, "GET", TEMPLATE, &at(&theirs, "?tenant=Not%20one"), None).await),
        (422, "invalid_tenant".to_owned())
    );
}
