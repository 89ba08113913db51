//! Secrets stay secret: API keys never reach the log, even at debug level.

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
    child.kill().expect("stop");
    child.wait().expect("reap");
    let log = std::fs::read_to_string(dir.path().join("debug.log")).expect("log");
    assert!(log.contains("api key created"), "the log is written at debug level");
    for secret in [&admin, &tenant_key, &"hkl_wrong-key-0123456789".to_owned()] {
        assert!(!log.contains(secret.as_str()), "a key leaked into the log");
    }
}
