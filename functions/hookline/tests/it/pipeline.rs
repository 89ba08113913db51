//! The pipeline end to end: publish → fan-out → signed delivery → retries → history.

use crate::support::{WAIT, delivery_after_attempts, delivery_with_status, spawn_app, spawn_app_on_manual_clock, spawn_app_with};
use hookline_domain::delivery::DeliveryStatus;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use tests::jose;
use tests::receiver::Receiver;

#[tokio::test]
async fn signed_delivery_arrives_with_the_documented_body_and_headers() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let created = app
        .api
        .post(
            "/webhooks",
            json!({"data": {"endpoint_url": rx.url("/hook"), "listened_events": ["project.created"], "description": "projects", "headers": {"X-Api-Key": "k-123"}}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let webhook = created.data().clone();

    // Sent as text: a number too big for f64 and a trailing zero must survive.
    let published = app
        .api
        .send_raw(
            reqwest::Method::POST,
            "/events",
            br#"{"data": {"subject_type": "project", "event_type": "CREATED", "subject_id": "34", "fk_user": "182",
                 "metadata": {"id": 34, "code": "PROJECT-1", "ratio": 1.50}, "big": 123456789012345678901234567890}}"#
                .to_vec(),
            "application/json",
        )
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{:?}", published.body);
    let event = published.data().clone();
    let got = rx.wait_for("/hook", 1, WAIT).await;
    let req = &got[0];

    // Headers.
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("user-agent"), Some(concat!("Hookline/", env!("CARGO_PKG_VERSION"))));
    assert_eq!(req.header("x-api-key"), Some("k-123"));
    let token = req.header("x-webhook-signature").expect("signature header");

    // Body: the event exactly as stored, the webhook, the delivery.
    let body = req.json();
    assert_eq!(body["event"]["id"], event["id"]);
    assert_eq!(body["event"]["metadata"], event["metadata"]);
    let raw = String::from_utf8(req.body.to_vec()).expect("utf-8");
    assert!(raw.contains(r#""ratio": 1.50"#) && raw.contains("123456789012345678901234567890"), "fields delivered exactly as given: {raw}");
    assert_eq!(body["event"]["subject_type"], "project");
    assert!(body["event"]["id"].as_str().is_some_and(|s| s.len() == 36));
    assert!(body["event"]["created_at"].is_string());
    assert_eq!(body["webhook"], json!({"id": webhook["id"], "endpoint_url": rx.url("/hook"), "listened_events": ["project.created"]}));
    let delivery_id = body["delivery"]["id"].as_str().expect("delivery id");
    assert!(delivery_id.starts_with("dlv_"));
    assert!(body["delivery"]["attempt_id"].as_str().is_some_and(|s| s.starts_with("att_")));
    assert!(body["delivery"]["attempted_at"].is_string());

    // Signature: verified by an independent JOSE implementation against the served JWKS.
    let jwks = app.anonymous().get("/jwks/webhooks").await;
    assert_eq!(jwks.status, StatusCode::OK);
    let claims = jose::verify(token, &req.body, &jwks.body).expect("signature verifies");
    assert_eq!(claims["jwks-endpoint"], "/jwks/webhooks");
    assert_eq!(claims["payload-checksum-alg"], "sha256");
    assert_eq!(claims["jti"], body["delivery"]["attempt_id"]);
    assert_eq!(claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"), 300);
    let header: serde_json::Value = {
        use base64::Engine;
        let h = token.split('.').next().expect("header");
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).expect("b64")).expect("json")
    };
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], jose::thumbprint(&jwks.body["keys"][0]));
    assert!(jose::verify(token, b"{}", &jwks.body).is_err(), "the checksum binds the signature to the body");

    // History shows the success, once recorded (the receiver has the request before
    // Hookline has its answer).
    let wid = webhook["id"].as_str().expect("id");
    delivery_with_status(&app, wid, delivery_id, DeliveryStatus::Succeeded).await;
    let d = app.api.get(&format!("/webhooks/{wid}/deliveries/{delivery_id}")).await;
    assert_eq!(d.status, StatusCode::OK, "{:?}", d.body);
    assert_eq!(d.data()["status"], "succeeded");
    assert_eq!(d.data()["attempts"][0]["status_code"], 200);
}

#[tokio::test]
async fn wildcards_match_and_non_matching_or_inactive_webhooks_receive_nothing() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let all = app.api.create_webhook(&rx.url("/all"), &["*"]).await;
    app.api.create_webhook(&rx.url("/subject"), &["project.*"]).await;
    app.api.create_webhook(&rx.url("/action"), &["*.created"]).await;
    let other = app.api.create_webhook(&rx.url("/other"), &["activity.created", "project.deleted"]).await;
    let inactive =
        app.api.post("/webhooks", json!({"data": {"endpoint_url": rx.url("/inactive"), "listened_events": ["*"], "active": false}})).await;
    assert_eq!(inactive.status, StatusCode::CREATED);
    assert_eq!(inactive.data()["active"], false);

    app.api.publish(json!({"subject_type": "project", "event_type": "CREATED", "subject_id": "1"})).await;
    for path in ["/all", "/subject", "/action"] {
        rx.wait_for(path, 1, WAIT).await;
    }
    // Fan-out creates every delivery of an event in one step: once the matching ones
    // arrived, the others would exist if they matched.
    for (w, path) in [(&other, "/other"), (inactive.data(), "/inactive")] {
        let list = app.api.get(&format!("/webhooks/{}/deliveries", w["id"].as_str().expect("id"))).await;
        assert_eq!(list.data(), &json!([]), "{path} has no deliveries");
        assert!(rx.received_on(path).is_empty(), "{path} received nothing");
    }

    // A second event reaches only the catch-all and the exact listener.
    app.api.publish(json!({"subject_type": "activity", "event_type": "created"})).await;
    rx.wait_for("/other", 1, WAIT).await;
    rx.wait_for("/all", 2, WAIT).await;
    let all_list = app.api.get(&format!("/webhooks/{}/deliveries", all["id"].as_str().expect("id"))).await;
    assert_eq!(all_list.data().as_array().map(Vec::len), Some(2));
    assert_eq!(rx.received_on("/subject").len(), 1);
}

#[tokio::test]
async fn failing_deliveries_retry_on_schedule_with_one_delivery_id_then_fail() {
    // The app's clock moves only when the test moves it, so each retry's due time is
    // exact and the retry is made only once the clock reaches it.
    let app = spawn_app_on_manual_clock(&[("HOOKLINE_RETRY_SCHEDULE", "1s,2s")]).await;
    let start = app.now();
    let rx = Receiver::start().await;
    rx.script("/down", &[], 500);
    let w = app.api.create_webhook(&rx.url("/down"), &["project.updated"]).await;
    let wid = w["id"].as_str().expect("id");
    app.api.publish(json!({"subject_type": "project", "event_type": "UPDATED"})).await;
    let did = rx.wait_for("/down", 1, WAIT).await[0].json()["delivery"]["id"].as_str().expect("id").to_owned();

    // After each failed attempt the next is due one step later, on the delivery and
    // in the queue, and nothing is sent before the clock gets there.
    for (n, step) in [(1, Duration::from_secs(1)), (2, Duration::from_secs(2))] {
        let d = delivery_after_attempts(&app, wid, &did, n).await;
        let now = app.now();
        assert_eq!((d.status, d.attempts, d.last_attempt_at), (DeliveryStatus::Pending, n, Some(now)), "attempt {n} failed at {now}");
        let due = now + chrono::Duration::from_std(step).expect("step");
        assert_eq!(d.next_attempt_at, Some(due), "retry {n} is due {step:?} after attempt {n}");
        assert_eq!(app.only_queued_job_due().await, due, "retry {n} is queued for its due time");
        assert_eq!(rx.received_on("/down").len(), n as usize, "retry {n} waits for its due time");
        app.advance(step);
    }

    // The last failure ends the delivery: wait for the record, then check the API.
    let d = delivery_with_status(&app, wid, &did, DeliveryStatus::Failed).await;
    let last = start + chrono::Duration::seconds(3);
    assert_eq!(
        (d.attempts, d.last_attempt_at, d.next_attempt_at),
        (3, Some(last), None),
        "the third attempt came when due and was the last"
    );
    let got = rx.received_on("/down");
    let delivery_ids: HashSet<_> = got.iter().map(|r| r.json()["delivery"]["id"].as_str().expect("id").to_owned()).collect();
    let attempt_ids: HashSet<_> = got.iter().map(|r| r.json()["delivery"]["attempt_id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(delivery_ids, HashSet::from([did.clone()]), "every attempt carries the same delivery id");
    assert_eq!(attempt_ids.len(), 3, "every attempt has a new attempt id");
    let list = app.api.get(&format!("/webhooks/{wid}/deliveries?status=failed")).await;
    assert_eq!(list.data()[0]["status"], "failed");
    assert_eq!(list.data()[0]["attempts"], 3);
    assert_eq!(list.data()[0]["last_status_code"], 500);
    assert_eq!(list.data()[0]["next_attempt_at"], serde_json::Value::Null);
    let detail = app.api.get(&format!("/webhooks/{wid}/deliveries/{did}")).await;
    let attempts = detail.data()["attempts"].as_array().expect("attempts").clone();
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts.iter().all(|a| a["status_code"] == 500 && a["response_body"] == "answer 500" && a["error"] == "receiver answered 500")
    );
    let health = app.api.get(&format!("/webhooks/{wid}/health")).await;
    assert_eq!(health.data()["total"], 3);
    assert_eq!(health.data()["failed"], 3);
    assert_eq!(health.data()["success_rate"], 0.0);
    app.queue_drained().await;
    assert_eq!(rx.received_on("/down").len(), 3, "no attempt after the last step");
}

#[tokio::test]
async fn a_recovering_receiver_gets_the_delivery_and_history_and_health_show_it() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.script("/flaky", &[503], 200);
    let w = app.api.create_webhook(&rx.url("/flaky"), &["indicator.*"]).await;
    let wid = w["id"].as_str().expect("id");
    app.api.publish(json!({"subject_type": "indicator", "event_type": "DELETED"})).await;
    let got = rx.wait_for("/flaky", 2, WAIT).await;
    assert_eq!(got[0].answered, 503);
    assert_eq!(got[1].answered, 200);
    let did = got[1].json()["delivery"]["id"].as_str().expect("id").to_owned();
    delivery_with_status(&app, wid, &did, DeliveryStatus::Succeeded).await;
    let detail = app.api.get(&format!("/webhooks/{wid}/deliveries/{did}")).await;
    assert!(detail.data()["delivered_at"].is_string());
    assert_eq!(detail.data()["last_status_code"], 200);
    let codes: Vec<_> = detail.data()["attempts"].as_array().expect("attempts").iter().map(|a| a["status_code"].clone()).collect();
    assert_eq!(codes, vec![json!(503), json!(200)]);
    let health = app.api.get(&format!("/webhooks/{wid}/health")).await;
    assert_eq!(health.data(), &json!({"total": 2, "succeeded": 1, "failed": 1, "success_rate": 0.5, "window_hours": 24}));
}

#[tokio::test]
async fn retry_after_on_429_stretches_the_wait_up_to_twice_the_step() {
    // The clamping itself is unit-tested with the send step; this checks that the
    // header of a real answer reaches the schedule and the retry is made then.
    let app = spawn_app_on_manual_clock(&[("HOOKLINE_RETRY_SCHEDULE", "1s")]).await;
    let start = app.now();
    let rx = Receiver::start().await;
    rx.script_with_headers("/slow", 429, &[("Retry-After", "30")]);
    let w = app.api.create_webhook(&rx.url("/slow"), &["project.created"]).await;
    let wid = w["id"].as_str().expect("id");
    app.api.publish(json!({"subject_type": "project", "event_type": "CREATED"})).await;
    let did = rx.wait_for("/slow", 1, WAIT).await[0].json()["delivery"]["id"].as_str().expect("id").to_owned();
    let d = delivery_after_attempts(&app, wid, &did, 1).await;
    let due = start + chrono::Duration::seconds(2);
    assert_eq!((d.last_status_code, d.next_attempt_at), (Some(429), Some(due)), "Retry-After 30 clamps to 2 × the 1 s step");
    app.advance(Duration::from_secs(2));
    let d = delivery_with_status(&app, wid, &did, DeliveryStatus::Succeeded).await;
    assert_eq!((d.attempts, d.last_attempt_at), (2, Some(due)), "the retry is made when due");
    assert_eq!(rx.received_on("/slow").len(), 2);
}

#[tokio::test]
async fn redeliver_makes_a_new_attempt_under_the_same_delivery_id() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let w = app.api.create_webhook(&rx.url("/r"), &["*"]).await;
    let wid = w["id"].as_str().expect("id");
    app.api.publish(json!({"subject_type": "project", "event_type": "DELETED"})).await;
    let first = rx.wait_for("/r", 1, WAIT).await[0].json();
    let did = first["delivery"]["id"].as_str().expect("id");
    // Wait for the first attempt to be recorded before asking for another.
    delivery_with_status(&app, wid, did, DeliveryStatus::Succeeded).await;
    let r = app.api.post(&format!("/webhooks/{wid}/deliveries/{did}/redeliver"), json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let second = rx.wait_for("/r", 2, WAIT).await[1].json();
    assert_eq!(second["delivery"]["id"], first["delivery"]["id"]);
    assert_ne!(second["delivery"]["attempt_id"], first["delivery"]["attempt_id"]);
    assert_eq!(second["event"], first["event"]);
    let missing = app.api.post(&format!("/webhooks/{wid}/deliveries/dlv_00000000000000000000000000000000/redeliver"), json!({})).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "delivery_not_found"));
}

#[tokio::test]
async fn test_payloads_go_out_at_once_and_are_not_recorded() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.script("/t", &[200, 200, 500], 200);
    let w = app.api.create_webhook(&rx.url("/t"), &["project.*"]).await;
    let wid = w["id"].as_str().expect("id");
    let r = app.api.post(&format!("/webhooks/{wid}/test"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let results = r.data().as_array().expect("results").clone();
    let names: Vec<_> = results.iter().map(|x| x["event_name"].as_str().expect("name").to_owned()).collect();
    assert_eq!(names, vec!["project.created", "project.deleted", "project.updated"]);
    assert_eq!(results.iter().filter(|x| x["success"] == true).count(), 2);
    let got = rx.received_on("/t");
    assert_eq!(got.len(), 3);
    let jwks = app.anonymous().get("/jwks/webhooks").await.body;
    for req in &got {
        jose::verify(req.header("x-webhook-signature").expect("sig"), &req.body, &jwks).expect("test payloads are signed");
        assert_eq!(req.json()["event"]["test"], true);
    }
    assert_eq!(app.api.get(&format!("/webhooks/{wid}/deliveries")).await.data(), &json!([]), "tests are not in the history");
    assert_eq!(app.api.get(&format!("/webhooks/{wid}/health")).await.data()["total"], 0);
    assert!(app.api.get("/events").await.data().as_array().expect("events").is_empty(), "test events are not stored");
}

#[tokio::test]
async fn deleting_a_webhook_ends_its_pending_deliveries() {
    // The retry falls due only when the test moves the clock: after the delete.
    let app = spawn_app_on_manual_clock(&[("HOOKLINE_RETRY_SCHEDULE", "1s,1s,1s")]).await;
    let rx = Receiver::start().await;
    rx.script("/gone", &[], 500);
    let w = app.api.create_webhook(&rx.url("/gone"), &["*"]).await;
    let wid = w["id"].as_str().expect("id");
    app.api.publish(json!({"subject_type": "project", "event_type": "CREATED"})).await;
    let first = rx.wait_for("/gone", 1, WAIT).await[0].json();
    let did = first["delivery"]["id"].as_str().expect("id");
    assert_eq!(delivery_after_attempts(&app, wid, did, 1).await.status, DeliveryStatus::Pending, "a retry is due");
    assert_eq!(app.api.delete(&format!("/webhooks/{wid}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.api.get(&format!("/webhooks/{wid}")).await.status, StatusCode::NOT_FOUND);
    // At its next due time the send step finds the webhook gone and ends the delivery.
    app.advance(Duration::from_secs(1));
    assert_eq!(delivery_with_status(&app, wid, did, DeliveryStatus::Failed).await.attempts, 1);
    app.queue_drained().await;
    assert_eq!(rx.received_on("/gone").len(), 1, "nothing is sent after the delete");
}

#[tokio::test]
async fn disabling_a_webhook_ends_its_pending_deliveries_and_enabling_resumes_new_ones() {
    // The retry falls due only when the test moves the clock: after the disable.
    let app = spawn_app_on_manual_clock(&[("HOOKLINE_RETRY_SCHEDULE", "1s")]).await;
    let rx = Receiver::start().await;
    rx.script("/d", &[500], 200);
    let w = app.api.create_webhook(&rx.url("/d"), &["*"]).await;
    let wid = w["id"].as_str().expect("id");
    app.api.publish(json!({"subject_type": "project", "event_type": "CREATED"})).await;
    let did = rx.wait_for("/d", 1, WAIT).await[0].json()["delivery"]["id"].as_str().expect("id").to_owned();
    assert_eq!(delivery_after_attempts(&app, wid, &did, 1).await.status, DeliveryStatus::Pending, "a retry is due");
    let off = app.api.patch(&format!("/webhooks/{wid}"), json!({"data": {"active": false}})).await;
    assert_eq!(off.data()["active"], false);
    app.advance(Duration::from_secs(1));
    assert_eq!(delivery_with_status(&app, wid, &did, DeliveryStatus::Failed).await.attempts, 1);
    app.queue_drained().await;
    assert_eq!(rx.received_on("/d").len(), 1, "nothing is sent while disabled");
    app.api.patch(&format!("/webhooks/{wid}"), json!({"data": {"active": true}})).await;
    app.api.publish(json!({"subject_type": "project", "event_type": "UPDATED"})).await;
    let got = rx.wait_for("/d", 2, WAIT).await;
    assert_eq!(got[1].json()["event"]["event_type"], "UPDATED");
}

#[tokio::test]
async fn tenants_cannot_see_or_change_each_others_resources() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let all = ["webhooks:read", "webhooks:write", "events:read", "events:write"];
    let acme = app.api.with_key(&app.api.create_key("acme", &all).await);
    let globex = app.api.with_key(&app.api.create_key("globex", &all).await);
    let w = acme.create_webhook(&rx.url("/acme"), &["*"]).await;
    let wid = w["id"].as_str().expect("id");
    let e = acme.publish(json!({"subject_type": "project", "event_type": "CREATED"})).await;
    let eid = e["id"].as_str().expect("id");
    let got = rx.wait_for("/acme", 1, WAIT).await;
    let did = got[0].json()["delivery"]["id"].as_str().expect("id").to_owned();

    for path in [
        format!("/webhooks/{wid}"),
        format!("/webhooks/{wid}/deliveries"),
        format!("/webhooks/{wid}/deliveries/{did}"),
        format!("/webhooks/{wid}/health"),
        format!("/events/{eid}"),
    ] {
        assert_eq!(globex.get(&path).await.status, StatusCode::NOT_FOUND, "GET {path}");
        assert_eq!(acme.get(&path).await.status, StatusCode::OK, "GET {path} by its owner");
    }
    assert_eq!(globex.patch(&format!("/webhooks/{wid}"), json!({"data": {"active": false}})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(globex.post(&format!("/webhooks/{wid}/deliveries/{did}/redeliver"), json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(globex.post(&format!("/webhooks/{wid}/test"), json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(globex.delete(&format!("/webhooks/{wid}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(globex.get("/webhooks").await.data(), &json!([]));
    assert_eq!(globex.get("/events").await.data(), &json!([]));
    // Globex's own events never reach Acme's webhook.
    globex.publish(json!({"subject_type": "project", "event_type": "CREATED"})).await;
    let gw = globex.create_webhook(&rx.url("/globex"), &["*"]).await;
    globex.publish(json!({"subject_type": "project", "event_type": "UPDATED"})).await;
    rx.wait_for("/globex", 1, WAIT).await;
    assert_eq!(acme.get(&format!("/webhooks/{wid}/deliveries")).await.data().as_array().map(Vec::len), Some(1));
    assert_eq!(acme.get(&format!("/webhooks/{wid}")).await.data()["active"], true, "acme's webhook unchanged");
    assert!(gw["id"] != w["id"]);
}

#[tokio::test]
async fn the_same_idempotency_key_publishes_once_per_tenant() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let w = app.api.create_webhook(&rx.url("/idem"), &["*"]).await;
    let wid = w["id"].as_str().expect("id");
    let post = |api: tests::client::ApiClient, key: &'static str| async move {
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{}/events", api.base()))
            .header("authorization", format!("Bearer {}", api.key().expect("key")))
            .header("idempotency-key", key)
            .json(&json!({"data": {"subject_type": "project", "event_type": "CREATED", "n": 1}}))
            .send()
            .await
            .expect("post");
        let status = resp.status();
        let replayed = resp.headers().get("idempotent-replayed").is_some();
        (status, replayed, resp.json::<serde_json::Value>().await.expect("json"))
    };
    let (s1, r1, first) = post(app.api.clone(), "order-42").await;
    let (s2, r2, second) = post(app.api.clone(), "order-42").await;
    assert_eq!((s1, r1), (StatusCode::CREATED, false));
    assert_eq!((s2, r2), (StatusCode::OK, true));
    assert_eq!(first["data"], second["data"], "the repeat answers with the first event");
    rx.wait_for("/idem", 1, WAIT).await;
    let (s3, _, third) = post(app.api.clone(), "order-43").await;
    assert_eq!(s3, StatusCode::CREATED);
    assert_ne!(third["data"]["id"], first["data"]["id"]);
    rx.wait_for("/idem", 2, WAIT).await;
    let events = app.api.get("/events").await;
    assert_eq!(events.data().as_array().map(Vec::len), Some(2), "two keys, two events");
    let deliveries = app.api.get(&format!("/webhooks/{wid}/deliveries")).await;
    assert_eq!(deliveries.data().as_array().map(Vec::len), Some(2), "no second delivery for the repeat");
    // Another tenant's identical key is its own.
    let globex = app.api.with_key(&app.api.create_key("globex", &["events:write", "events:read"]).await);
    let (s4, r4, other) = post(globex, "order-42").await;
    assert_eq!((s4, r4), (StatusCode::CREATED, false));
    assert_ne!(other["data"]["id"], first["data"]["id"]);
}

#[tokio::test]
async fn a_backlog_beyond_the_send_slots_is_delivered_once_each() {
    // Two slots: nearly every job waits in the table, is taken in batches and waits
    // again, taken and claimed, for a free slot.
    let app = spawn_app_with(&[("HOOKLINE_SEND_CONCURRENCY", "2")]).await;
    let rx = Receiver::start().await;
    let paths = ["/a", "/b", "/c"];
    for p in paths {
        rx.slow(p, Duration::from_millis(5));
        app.api.create_webhook(&rx.url(p), &["*"]).await;
    }
    const EVENTS: usize = 60;
    let published = futures::future::join_all((0..EVENTS).map(|i| {
        let api = app.api.clone();
        async move { api.publish(json!({"subject_type": "project", "event_type": "UPDATED", "subject_id": i.to_string()})).await }
    }))
    .await;
    let want: HashSet<String> = published.iter().map(|e| e["id"].as_str().expect("id").to_owned()).collect();
    for p in paths {
        let got = rx.wait_for(p, EVENTS, Duration::from_secs(60)).await;
        let ids: HashSet<String> = got.iter().map(|r| r.json()["event"]["id"].as_str().unwrap_or_default().to_owned()).collect();
        assert_eq!(ids, want, "{p} got every event");
    }
    // Nothing comes twice: each job was taken and claimed once. Once the queue is
    // empty no attempt is in flight or due, so the counts are final.
    app.queue_drained().await;
    for p in paths {
        assert_eq!(rx.received_on(p).len(), EVENTS, "{p} got each event once");
    }
}
