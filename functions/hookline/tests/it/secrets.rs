//! Secrets stay secret: API keys, portal links and sessions never reach the log, even
//! at debug level.

use crate::crash::start_binary_with;
use reqwest::StatusCode;
use serde_json::json;
use tests::client::ApiClient;
use tests::receiver::Receiver;

#[tokio::test]
async fn api_keys_never_appear_in_the_log() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut child, base) = tokio::task::spawn_blocking({
        let p = dir.path().to_owned();
        move || start_binary_with(&p, "debug.log", "debug")
    })
    .await
    .expect("start");
    let admin = std::fs::read_to_string(dir.path().join("admin-key")).expect("admin key").trim().to_owned();
    let api = ApiClient::new(&base, Some(&admin));
    let tenant_key = api.create_key("acme", &["webhooks:read", "webhooks:write", "events:write"]).await;
    let acme = api.with_key(&tenant_key);
    let rx = Receiver::start().await;
    acme.create_webhook(&rx.url("/s"), &["*"]).await;
    acme.publish(json!({"subject_type": "project", "event_type": "CREATED"})).await;
    rx.wait_for("/s", 1, crate::support::WAIT).await;
    assert_eq!(api.with_key("hkl_wrong-key-0123456789").get("/webhooks").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(acme.post("/api-keys", json!({"data": {"tenant": "acme", "scopes": ["admin"]}})).await.status, StatusCode::FORBIDDEN);
    // A portal link and the session it opens: shown in their own answers only.
    let link = acme.post("/portal/links", json!({"data": {"capabilities": ["manage"]}})).await;
    let link_token = link.data()["token"].as_str().expect("link token").to_owned();
    let opened = ApiClient::new(&base, None).post("/portal/sessions", json!({"data": {"token": link_token}})).await;
    let session = opened.data()["token"].as_str().expect("session token").to_owned();
    let portal = api.with_key(&session);
    assert_eq!(portal.get("/webhooks").await.status, StatusCode::OK);
    for answer in [portal.get("/me").await, api.get("/api-keys").await, api.get("/api-keys?tenant=acme").await] {
        let text = answer.body.to_string();
        assert!(![&admin, &tenant_key, &link_token, &session].iter().any(|s| text.contains(s.as_str())), "a secret in {text}");
    }
    assert_eq!(
        ApiClient::new(&base, None).post("/portal/sessions", json!({"data": {"token": link_token}})).await.status,
        StatusCode::UNAUTHORIZED
    );
    child.kill().expect("stop");
    child.wait().expect("reap");
    let log = std::fs::read_to_string(dir.path().join("debug.log")).expect("log");
    assert!(log.contains("api key created"), "the log is written at debug level");
    assert!(log.contains("portal session opened"), "the portal is logged, by ids");
    for secret in [&admin, &tenant_key, &"hkl_wrong-key-0123456789".to_owned(), &link_token, &session] {
        assert!(!log.contains(secret.as_str()), "a key leaked into the log");
    }
}

#[tokio::test]
async fn webhook_signing_secrets_appear_in_no_log_line_no_other_answer_and_not_in_the_database() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut child, base) = tokio::task::spawn_blocking({
        let p = dir.path().to_owned();
        move || start_binary_with(&p, "trace.log", "trace")
    })
    .await
    .expect("start");
    let admin = std::fs::read_to_string(dir.path().join("admin-key")).expect("admin key").trim().to_owned();
    let api = ApiClient::new(&base, Some(&admin));
    let rx = Receiver::start().await;
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let created = api
        .post(
            "/webhooks",
            json!({"data": {"endpoint_url": rx.url("/s"), "listened_events": ["*"], "signatures": ["standard_webhooks"], "secret": given}}),
        )
        .await;
    let id = created.data()["id"].as_str().expect("id").to_owned();
    let rotated = api.post(&format!("/webhooks/{id}/secret/rotate"), json!({"data": {"grace_period": "1h"}})).await;
    let generated = rotated.data()["secret"].as_str().expect("secret").to_owned();
    api.publish(json!({"subject_type": "project", "event_type": "CREATED"})).await;
    rx.wait_for("/s", 1, crate::support::WAIT).await;
    // Answers other than the creating ones, and errors naming a bad secret.
    let mut others = vec![api.get(&format!("/webhooks/{id}")).await.body, api.get("/webhooks").await.body];
    others.push(api.post(&format!("/webhooks/{id}/secret/rotate"), json!({"data": {"secret": "whsec_tooshort"}})).await.body);
    child.kill().expect("stop");
    child.wait().expect("reap");

    let log = std::fs::read_to_string(dir.path().join("trace.log")).expect("log");
    assert!(log.contains("webhook secret rotated"), "the log is written");
    let mut db = std::fs::read(dir.path().join("hookline.db")).expect("database");
    db.extend(std::fs::read(dir.path().join("hookline.db-wal")).unwrap_or_default());
    let db = String::from_utf8_lossy(&db);
    for secret in [given, generated.as_str()] {
        // The whsec_ form and the base64 of its bytes alone.
        for needle in [secret, &secret[6..]] {
            assert!(!log.contains(needle), "a signing secret leaked into the log");
            assert!(!db.contains(needle), "a signing secret is readable in the database");
            for answer in &others {
                assert!(!answer.to_string().contains(needle), "a signing secret leaked into an answer: {answer}");
            }
        }
    }
    assert!(!log.contains("tooshort"));
}
