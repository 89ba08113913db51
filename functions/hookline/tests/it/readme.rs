//! README's receiver snippets (Python and Node, JWT and Standard Webhooks), run as
//! written there against real deliveries from local mode: each accepts a genuine
//! delivery and refuses a tampered body, a delivery meant for another endpoint, a
//! wrong secret, a stale timestamp and a secret rotated out. The snippets run as child
//! processes while the test waits (the JWT ones fetch the JWKS from the app meanwhile,
//! so the runtime has threads to serve it).

use crate::support::{TestApp, WAIT, spawn_app, spawn_app_at};
use serde_json::json;
use std::collections::BTreeMap;
use tests::readme::{Case, run};
use tests::receiver::{Received, Receiver};

fn headers(r: &Received) -> BTreeMap<String, String> {
    r.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect()
}

/// Creates a webhook to `path` signing with `signatures`; its id and secret (if any).
async fn webhook(app: &TestApp, rx: &Receiver, path: &str, signatures: &[&str]) -> (String, String) {
    let a = app
        .api
        .post("/webhooks", json!({"data": {"endpoint_url": rx.url(path), "listened_events": ["*"], "signatures": signatures}}))
        .await;
    (a.data()["id"].as_str().expect("id").to_owned(), a.data()["secret"].as_str().unwrap_or_default().to_owned())
}

async fn delivery(app: &TestApp, rx: &Receiver, path: &str, n: usize) -> Received {
    app.api.publish(json!({"subject_type": "project", "event_type": "CREATED", "subject_id": n.to_string()})).await;
    rx.wait_for(path, n, WAIT).await[n - 1].clone()
}

fn tampered(r: &Received) -> Vec<u8> {
    let mut body = r.body.to_vec();
    let at = body.iter().position(|b| *b == b'C').expect("a letter to change");
    body[at] = b'D';
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readme_jwt_receivers_accept_a_genuine_delivery_and_refuse_tampered_or_misdirected_ones() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (id, _) = webhook(&app, &rx, "/jwt", &["jwt"]).await;
    let r = delivery(&app, &rx, "/jwt", 1).await;
    let h = headers(&r);
    let base = app.api.base().trim_end_matches('/').to_owned();
    for name in ["python-jwt", "node-jwt"] {
        let case = |body: &[u8], webhook_id: &str| -> Result<(), String> {
            run(name, &Case { hookline_url: &base, secret: "", webhook_id, headers: &h, body })
        };
        case(&r.body, &id).unwrap_or_else(|e| panic!("{name} refused a genuine delivery: {e}"));
        assert!(case(&tampered(&r), &id).is_err(), "{name} accepted a tampered body");
        assert!(case(&r.body, "wh_00000000000000000000000000000000").is_err(), "{name} accepted another endpoint's delivery");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readme_standard_webhooks_receivers_refuse_tampering_wrong_secrets_stale_timestamps_and_rotated_out_secrets() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (id, first) = webhook(&app, &rx, "/std", &["standard_webhooks"]).await;
    let r = delivery(&app, &rx, "/std", 1).await;
    // Rotated out with no grace: the next delivery is signed by the new secret only.
    let rotated = app.api.post(&format!("/webhooks/{id}/secret/rotate"), json!({"data": {"grace_period": "0s"}})).await;
    let second = rotated.data()["secret"].as_str().expect("new secret").to_owned();
    let after = delivery(&app, &rx, "/std", 2).await;
    // A genuine signature over a timestamp six minutes old.
    let old_app = spawn_app_at(chrono::Utc::now() - chrono::Duration::minutes(6)).await;
    let (old_id, old_secret) = webhook(&old_app, &rx, "/old", &["standard_webhooks"]).await;
    let stale = delivery(&old_app, &rx, "/old", 1).await;

    let base = app.api.base().trim_end_matches('/').to_owned();
    for name in ["python-standard-webhooks", "node-standard-webhooks"] {
        let case = |r: &Received, body: &[u8], secret: &str, webhook_id: &str| -> Result<(), String> {
            run(name, &Case { hookline_url: &base, secret, webhook_id, headers: &headers(r), body })
        };
        case(&r, &r.body, &first, &id).unwrap_or_else(|e| panic!("{name} refused a genuine delivery: {e}"));
        case(&after, &after.body, &second, &id).unwrap_or_else(|e| panic!("{name} refused the new secret: {e}"));
        assert!(case(&r, &tampered(&r), &first, &id).is_err(), "{name} accepted a tampered body");
        assert!(case(&r, &r.body, &second, &id).is_err(), "{name} accepted a wrong secret");
        assert!(case(&r, &r.body, &first, &old_id).is_err(), "{name} accepted another endpoint's delivery");
        assert!(case(&after, &after.body, &first, &id).is_err(), "{name} accepted a secret rotated out");
        let e = case(&stale, &stale.body, &old_secret, &old_id).expect_err("a stale timestamp");
        assert!(e.to_lowercase().contains("timestamp") || e.to_lowercase().contains("old"), "{name}: {e}");
    }
}
