//! Bulk recovery through the router: every answer checked against `openapi.json`, and
//! the recovery run by the queue's tasks as a worker runs them.

use crate::support::{Answer, App, app, conforms};
use hookline_domain::ids::{EventId, TenantId};
use serde_json::{Value, json};
use std::time::Duration;

impl App {
    async fn doc(&self, method: &str, template: &str, uri: &str, body: Option<Value>) -> Answer {
        let a = self.call(method, uri, Some(&self.admin), body.map(|b| b.to_string().into_bytes()), &[]).await;
        conforms(method, template, &a);
        a
    }

    /// Runs due tasks (delivery jobs and recovery steps) as a worker does, until none
    /// has come due for half a second.
    async fn run_queue(&self) {
        let h = &self.hookline;
        let mut idle = 0;
        while idle < 10 {
            let due = h.queue.take_due(chrono::Utc::now(), 100, Duration::from_secs(30)).await.expect("take");
            if due.is_empty() {
                idle += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for leased in due {
                idle = 0;
                hookline_domain::recovery::run(h, &leased.task).await.expect("run");
                h.queue.ack(&leased.receipt).await.expect("ack");
            }
        }
    }
}

#[tokio::test]
async fn recovery_answers_match_the_document_and_a_recovery_runs_to_its_end() {
    let app = app().await;
    let created = app
        .doc("POST", "/webhooks", "/webhooks", Some(json!({"data": {"endpoint_url": "https://ok.example/hook", "listened_events": ["*"]}})))
        .await;
    let webhook = created.json()["data"]["id"].as_str().expect("id").to_owned();
    let since = hookline_domain::time::format(&(chrono::Utc::now() - chrono::Duration::minutes(1)));
    for i in 0..3 {
        let e = app
            .doc(
                "POST",
                "/events",
                "/events",
                Some(json!({"data": {"subject_type": "project", "event_type": "CREATED", "subject_id": i.to_string()}})),
            )
            .await;
        let id = EventId::parse(e.json()["data"]["id"].as_str().expect("id")).expect("event id");
        let event = app.hookline.events.get(&TenantId::default_tenant(), &id).await.expect("event");
        hookline_domain::fanout::fan_out(&app.hookline, &event).await.expect("fan-out");
    }
    app.run_queue().await;

    let recover = "/webhooks/{id}/recover";
    let at = format!("/webhooks/{webhook}/recover");
    let dry = app.doc("POST", recover, &at, Some(json!({"data": {"since": since, "status": "succeeded", "dry_run": true}}))).await;
    assert_eq!(dry.json()["data"], json!({"dry_run": true, "would_send": 3}));
    let nothing = app.doc("POST", recover, &at, Some(json!({"data": {"since": since, "dry_run": true}}))).await;
    assert_eq!(nothing.json()["data"]["would_send"], 0, "no failed deliveries");

    let body = json!({"data": {"since": since, "until": null, "status": "succeeded"}});
    let started = app.doc("POST", recover, &at, Some(body.clone())).await;
    assert_eq!(started.status, 202);
    let r = started.json()["data"].clone();
    let location = started.headers.get("location").and_then(|v| v.to_str().ok()).expect("Location");
    assert_eq!(location, format!("/webhooks/{webhook}/recoveries/{}", r["id"].as_str().expect("id")));
    assert_eq!((r["matched"].as_u64(), r["sent"].as_u64(), r["state"].as_str()), (Some(3), Some(0), Some("running")));
    let again = app.doc("POST", recover, &at, Some(body)).await;
    assert_eq!((again.status.as_u16(), again.json()["data"]["id"].clone()), (200, r["id"].clone()), "the same request, the same recovery");

    app.run_queue().await;
    let one = "/webhooks/{id}/recoveries/{recovery_id}";
    let done = app.doc("GET", one, location, None).await;
    assert_eq!((done.json()["data"]["state"].as_str(), done.json()["data"]["sent"].as_u64()), (Some("done"), Some(3)));
    let listed = app.doc("GET", "/webhooks/{id}/recoveries", &format!("/webhooks/{webhook}/recoveries"), None).await;
    assert_eq!(listed.json()["data"].as_array().map(Vec::len), Some(1));
    let health = app.call("GET", &format!("/webhooks/{webhook}/health"), Some(&app.admin), None, &[]).await;
    assert_eq!(health.json()["data"]["total"], 6, "three deliveries, each sent twice");
    let cancelled = app.doc("DELETE", one, location, None).await;
    assert_eq!(cancelled.json()["data"]["state"], "done", "a finished recovery stays as it was");

    // A running one is cancelled.
    let other = app
        .doc(
            "POST",
            recover,
            &at,
            Some(json!({"data": {"since": since, "status": "succeeded", "until": hookline_domain::time::format(&chrono::Utc::now())}})),
        )
        .await;
    let other_at = other.headers.get("location").and_then(|v| v.to_str().ok()).expect("Location").to_owned();
    let stopped = app.doc("DELETE", one, &other_at, None).await;
    assert_eq!(
        (stopped.json()["data"]["state"].as_str(), stopped.json()["data"]["reason"].as_str()),
        (Some("cancelled"), Some("cancelled by request"))
    );

    // Refusals name the field.
    let old = hookline_domain::time::format(&(chrono::Utc::now() - chrono::Duration::days(15)));
    for (data, code) in [
        (json!({"since": old}), "invalid_since"),
        (json!({"since": "yesterday"}), "invalid_since"),
        (json!({"since": since, "until": "2000-01-01T00:00:00Z"}), "invalid_until"),
        (json!({"since": since, "status": "pending"}), "invalid_status"),
        (json!({"until": since}), "invalid_body"),
    ] {
        let a = app.doc("POST", recover, &at, Some(json!({"data": data}))).await;
        assert_eq!((a.status.as_u16(), a.json()["error"]["code"].as_str()), (422, Some(code)), "{data}");
    }
    let missing = app.doc("GET", one, &format!("/webhooks/{webhook}/recoveries/rcv_{}", "0".repeat(32)), None).await;
    assert_eq!(missing.json()["error"]["code"], "recovery_not_found");
    app.doc("PATCH", "/webhooks/{id}", &format!("/webhooks/{webhook}"), Some(json!({"data": {"active": false}}))).await;
    let disabled = app.doc("POST", recover, &at, Some(json!({"data": {"since": since}}))).await;
    assert_eq!((disabled.status.as_u16(), disabled.json()["error"]["code"].as_str()), (409, Some("webhook_disabled")));
}
