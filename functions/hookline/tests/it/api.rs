//! The HTTP API's contract with clients: auth, envelopes, validation, paging.

use crate::support::{spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::client::ApiClient;
use tests::jose;

#[tokio::test]
async fn missing_or_unknown_keys_get_401_and_missing_scopes_get_403() {
    let app = spawn_app().await;
    let none = app.anonymous();
    let a = none.get("/webhooks").await;
    assert_eq!((a.status, a.code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let a = app.api.with_key("hkl_not-a-real-key").get("/webhooks").await;
    assert_eq!((a.status, a.code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let reader = app.api.with_key(&app.api.create_key("acme", &["webhooks:read"]).await);
    assert_eq!(reader.get("/webhooks").await.status, StatusCode::OK);
    let a = reader.post("/webhooks", json!({"data": {"endpoint_url": "http://127.0.0.1:1/", "listened_events": ["*"]}})).await;
    assert_eq!((a.status, a.code()), (StatusCode::FORBIDDEN, "forbidden"));
    assert!(a.body["error"]["message"].as_str().expect("message").contains("webhooks:manage"));
    assert_eq!(
        reader.post("/events", json!({"data": {"subject_type": "project", "event_type": "CREATED"}})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(reader.post("/api-keys", json!({"data": {"tenant": "acme", "scopes": ["admin"]}})).await.status, StatusCode::FORBIDDEN);
    // The JWKS needs no key.
    assert_eq!(none.get("/jwks/webhooks").await.status, StatusCode::OK);
}

#[tokio::test]
async fn api_keys_are_shown_once_and_stored_only_as_hashes() {
    let app = spawn_app().await;
    let a =
        app.api.post("/api-keys", json!({"data": {"tenant": "acme", "scopes": ["events:write"], "description": "billing service"}})).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let secret = a.data()["key"].as_str().expect("key").to_owned();
    assert!(secret.starts_with("hkl_"));
    assert_eq!(a.data()["tenant"], "acme");
    assert_eq!(a.data()["scopes"], json!(["events:write"]));
    assert!(a.data()["id"].as_str().expect("id").starts_with("key_"));
    let db = std::fs::read(app.dir.path().join("hookline.db")).expect("db");
    let wal = std::fs::read(app.dir.path().join("hookline.db-wal")).unwrap_or_default();
    let needle = secret.as_bytes();
    assert!(!db.windows(needle.len()).any(|w| w == needle) && !wal.windows(needle.len()).any(|w| w == needle), "the secret is not stored");
    for (body, code) in [
        (json!({"data": {"tenant": "Bad Tenant", "scopes": ["admin"]}}), "invalid_tenant"),
        (json!({"data": {"tenant": "acme", "scopes": ["root"]}}), "invalid_scope"),
        (json!({"data": {"tenant": "acme", "scopes": []}}), "invalid_scope"),
        (json!({"data": {"tenant": "acme", "scopes": ["admin"], "role": "x"}}), "invalid_body"),
    ] {
        let a = app.api.post("/api-keys", body).await;
        assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{:?}", a.body);
    }
    // A tenant's own admin key cannot mint keys for another tenant.
    let acme_admin = app.api.with_key(&app.api.create_key("acme", &["admin"]).await);
    assert_eq!(
        acme_admin.post("/api-keys", json!({"data": {"tenant": "globex", "scopes": ["admin"]}})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        acme_admin.post("/api-keys", json!({"data": {"tenant": "acme", "scopes": ["webhooks:read"]}})).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn webhook_crud_round_trips_with_partial_updates() {
    let app = spawn_app().await;
    let created = app
        .api
        .post("/webhooks", json!({"data": {"endpoint_url": "http://127.0.0.1:9/a", "listened_events": ["project.created", "*.deleted"], "description": "first"}}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let w = created.data().clone();
    let wid = w["id"].as_str().expect("id");
    assert!(wid.starts_with("wh_"));
    assert_eq!(w["active"], true);
    assert_eq!(w["headers"], json!({}));
    assert_eq!(w["disabled_reason"], serde_json::Value::Null);
    assert_eq!(app.api.get(&format!("/webhooks/{wid}")).await.data(), &w);

    let p = app.api.patch(&format!("/webhooks/{wid}"), json!({"data": {"description": null, "listened_events": ["*"]}})).await;
    assert_eq!(p.status, StatusCode::OK, "{:?}", p.body);
    assert_eq!(p.data()["description"], serde_json::Value::Null);
    assert_eq!(p.data()["listened_events"], json!(["*"]));
    assert_eq!(p.data()["endpoint_url"], "http://127.0.0.1:9/a", "untouched fields stay");
    let p = app.api.patch(&format!("/webhooks/{wid}"), json!({"data": {"active": false, "headers": {"Authorization": "Bearer x"}}})).await;
    assert_eq!((p.data()["active"].clone(), p.data()["headers"].clone()), (json!(false), json!({"authorization": "Bearer x"})));
    let bad = app.api.patch(&format!("/webhooks/{wid}"), json!({"data": {"listened_events": ["nope"]}})).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event_pattern"));
    assert_eq!(app.api.get(&format!("/webhooks/{wid}")).await.data()["listened_events"], json!(["*"]), "a refused update changes nothing");

    assert_eq!(app.api.delete(&format!("/webhooks/{wid}")).await.status, StatusCode::NO_CONTENT);
    let gone = app.api.get(&format!("/webhooks/{wid}")).await;
    assert_eq!((gone.status, gone.code()), (StatusCode::NOT_FOUND, "webhook_not_found"));
    assert_eq!(app.api.delete(&format!("/webhooks/{wid}")).await.status, StatusCode::NOT_FOUND);
    for path in ["/webhooks/..%2F..%2Fetc%2Fpasswd", "/webhooks/wh_x", "/events/not-a-uuid", "/webhooks/%FF%FE"] {
        assert_eq!(app.api.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn invalid_webhooks_get_422_with_a_code_naming_the_problem() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"endpoint_url": "http://127.0.0.1:9/", "listened_events": ["project.created", "project.exploded"]}),
            "invalid_event_pattern",
            "project.exploded",
        ),
        (json!({"endpoint_url": "http://127.0.0.1:9/", "listened_events": []}), "no_listened_events", ""),
        (json!({"endpoint_url": "not a url", "listened_events": ["*"]}), "invalid_endpoint_url", ""),
        (
            json!({"endpoint_url": "http://127.0.0.1:9/", "listened_events": ["*"], "headers": {"X-Webhook-Signature": "forged"}}),
            "forbidden_header",
            "",
        ),
        (json!({"endpoint_url": "http://127.0.0.1:9/", "listened_events": ["*"], "colour": "blue"}), "invalid_body", "colour"),
        (json!({"endpoint_url": "http://127.0.0.1:9/", "listened_events": "*"}), "invalid_body", ""),
        (json!({"listened_events": ["*"]}), "invalid_body", "endpoint_url"),
    ];
    for (data, code, mentions) in cases {
        let a = app.api.post("/webhooks", json!({ "data": data })).await;
        assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{data}: {:?}", a.body);
        assert!(a.body["error"]["message"].as_str().expect("message").contains(mentions), "{:?}", a.body);
    }
    let a = app.api.send_raw(Method::POST, "/webhooks", b"{\"data\": {".to_vec(), "application/json").await;
    assert_eq!((a.status, a.code()), (StatusCode::BAD_REQUEST, "malformed_json"));
    let a = app.api.send_raw(Method::POST, "/webhooks", vec![b' '; 70 * 1024], "application/json").await;
    assert_eq!((a.status, a.code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));

    // Without the private-endpoints setting, plain http and internal targets are refused.
    let strict = spawn_app_with(&[("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", "false")]).await;
    for (url, code) in [
        ("http://hooks.example.com/", "insecure_endpoint_url"),
        ("https://127.0.0.1/", "private_endpoint"),
        ("https://localhost/x", "private_endpoint"),
    ] {
        let a = strict.api.post("/webhooks", json!({"data": {"endpoint_url": url, "listened_events": ["*"]}})).await;
        assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{url}");
    }
    assert_eq!(
        strict
            .api
            .post("/webhooks", json!({"data": {"endpoint_url": "https://hooks.example.com/x", "listened_events": ["*"]}}))
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn lists_page_with_limit_and_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.api.create_webhook(&format!("http://127.0.0.1:9/{i}"), &["*"]).await["id"].clone());
    }
    let mut seen = Vec::new();
    let mut path = "/webhooks?limit=2".to_owned();
    loop {
        let page = app.api.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        let items = page.data().as_array().expect("items").clone();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|w| w["id"].clone()));
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/webhooks?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    assert_eq!(app.api.get("/webhooks").await.data().as_array().map(Vec::len), Some(5), "default limit covers 25");
    for (q, code) in
        [("limit=0", "invalid_limit"), ("limit=101", "invalid_limit"), ("limit=ten", "invalid_limit"), ("cursor=garbage", "invalid_cursor")]
    {
        let a = app.api.get(&format!("/webhooks?{q}")).await;
        assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{q}");
    }
    let w = ids[0].as_str().expect("id");
    let a = app.api.get(&format!("/webhooks/{w}/deliveries?status=lost")).await;
    assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_status"));
}

#[tokio::test]
async fn events_keep_every_field_and_read_back_newest_first() {
    let app = spawn_app().await;
    let first = app
        .api
        .publish(json!({"subject_type": "project", "event_type": "CREATED", "subject_id": "34", "metadata": {"name": "Project one"}}))
        .await;
    assert!(first["id"].as_str().is_some_and(|s| s.len() == 36));
    assert!(first["created_at"].as_str().is_some_and(|s| s.ends_with('Z')));
    assert_eq!(first["metadata"], json!({"name": "Project one"}));
    let second = app.api.publish(json!({"subject_type": "activity", "event_type": "UPDATED"})).await;
    let id = first["id"].as_str().expect("id");
    assert_eq!(app.api.get(&format!("/events/{id}")).await.data(), &first);
    let list = app.api.get("/events").await;
    assert_eq!(list.data(), &json!([second, first]));
    for (data, code) in [
        (json!({"subject_type": "project", "event_type": "EXPLODED"}), "unknown_event"),
        (json!({"event_type": "CREATED"}), "missing_field"),
        (json!({"subject_type": "project", "event_type": 3}), "invalid_field"),
        (json!({"subject_type": "project", "event_type": "CREATED", "id": "mine"}), "reserved_field"),
    ] {
        let a = app.api.post("/events", json!({ "data": data })).await;
        assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{data}");
    }
    let dup = app
        .api
        .send_raw(
            Method::POST,
            "/events",
            br#"{"data":{"subject_type":"project","event_type":"CREATED","a":1,"a":2}}"#.to_vec(),
            "application/json",
        )
        .await;
    assert_eq!((dup.status, dup.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"));
    let big = format!(r#"{{"data":{{"subject_type":"project","event_type":"CREATED","blob":"{}"}}}}"#, "x".repeat(300 * 1024));
    let a = app.api.send_raw(Method::POST, "/events", big.into_bytes(), "application/json").await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn catalogue_and_jwks_are_served() {
    let app = spawn_app().await;
    let cat = app.api.get("/webhooks/events").await;
    let names = cat.data().as_array().expect("names");
    assert_eq!(names.len(), 24 + 4, "LogAlto's 24 and Hookline's 4 operational events");
    assert!(names.contains(&json!("indicator_combination_target.updated")));
    assert!(names.contains(&json!("hookline_webhook.disabled")));
    let jwks = ApiClient::new(app.api.base(), None).get("/jwks/webhooks").await.body;
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].clone(), key["alg"].clone(), key["use"].clone(), key["e"].clone()),
        (json!("RSA"), json!("RS256"), json!("sig"), json!("AQAB"))
    );
    assert_eq!(key["kid"], jose::thumbprint(key));
    let a = app.api.get("/no/such/route").await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn a_custom_catalogue_replaces_the_builtin_one() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("catalog.json");
    std::fs::write(&path, r#"["order.paid", "order.refunded"]"#).expect("write");
    let app = spawn_app_with(&[("HOOKLINE_EVENT_CATALOG", path.to_str().expect("path"))]).await;
    let names = json!([
        "hookline_delivery.failed",
        "hookline_secret.rotated",
        "hookline_webhook.disabled",
        "hookline_webhook.recovered",
        "order.paid",
        "order.refunded"
    ]);
    assert_eq!(app.api.get("/webhooks/events").await.data(), &names, "the catalogue's names and the operational events");
    app.api.create_webhook("http://127.0.0.1:9/", &["order.*"]).await;
    let a =
        app.api.post("/webhooks", json!({"data": {"endpoint_url": "http://127.0.0.1:9/", "listened_events": ["project.created"]}})).await;
    assert_eq!(a.code(), "invalid_event_pattern");
    app.api.publish(json!({"subject_type": "order", "event_type": "PAID"})).await;
}

#[tokio::test]
async fn a_malformed_idempotency_key_gets_422() {
    let app = spawn_app().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/events", app.api.base()))
        .header("authorization", format!("Bearer {}", app.api.key().expect("key")))
        .header("idempotency-key", "has spaces in it")
        .json(&json!({"data": {"subject_type": "project", "event_type": "CREATED"}}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "invalid_idempotency_key");
}

#[tokio::test]
async fn the_event_size_limit_is_configurable() {
    let app = spawn_app_with(&[("HOOKLINE_MAX_EVENT_BYTES", "2048")]).await;
    let small = json!({"data": {"subject_type": "project", "event_type": "CREATED", "blob": "x".repeat(1000)}});
    assert_eq!(app.api.post("/events", small).await.status, StatusCode::CREATED);
    let big = json!({"data": {"subject_type": "project", "event_type": "CREATED", "blob": "x".repeat(3000)}});
    let a = app.api.post("/events", big).await;
    assert_eq!((a.status, a.code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
}

#[tokio::test]
async fn hostile_input_gets_a_4xx_with_a_code_never_a_5xx() {
    let app = spawn_app().await;
    let w = app.api.create_webhook("http://127.0.0.1:9/", &["*"]).await;
    let wid = w["id"].as_str().expect("id").to_owned();
    let deep = format!("{{\"data\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<(&str, Vec<u8>, &str)> = vec![
        ("/webhooks", b"\xff\xfe\x00garbage".to_vec(), "application/json"),
        ("/webhooks", deep.clone().into_bytes(), "application/json"),
        ("/events", deep.into_bytes(), "application/json"),
        ("/webhooks", br#"{"data":{"endpoint_url":1e999999,"listened_events":["*"]}}"#.to_vec(), "application/json"),
        (
            "/webhooks",
            br#"{"data":{"endpoint_url":"http://127.0.0.1:9/","listened_events":["*"],"active":99999999999999999999999}}"#.to_vec(),
            "application/json",
        ),
        ("/events", br#"{"data":{"subject_type":"project","event_type":"CREATED"},"data":{}}"#.to_vec(), "application/json"),
        ("/events", br#"{"data":[1,2,3]}"#.to_vec(), "application/json"),
        ("/events", br#"{"data":"text"}"#.to_vec(), "text/plain"),
        ("/events", b"subject_type=project".to_vec(), "application/x-www-form-urlencoded"),
        ("/events", b"".to_vec(), "application/json"),
        ("/api-keys", br#"{"data":{"tenant":"acme","scopes":"admin"}}"#.to_vec(), "application/json"),
        ("/webhooks", br#"null"#.to_vec(), "application/json"),
    ];
    for (path, body, ct) in bodies {
        let a = app.api.send_raw(Method::POST, path, body.clone(), ct).await;
        assert!(a.status.is_client_error(), "{path} {:?}: {}", String::from_utf8_lossy(&body[..body.len().min(60)]), a.status);
        assert!(!a.code().is_empty(), "{path}: every error has a code: {:?}", a.body);
    }
    for path in [
        format!("/webhooks/{wid}/deliveries?limit=99999999999999999999"),
        format!("/webhooks/{wid}/deliveries?cursor=%00%01"),
        format!("/webhooks/{wid}/deliveries?status=%FF"),
        "/webhooks/..%2F..%2Fetc%2Fpasswd/deliveries".to_owned(),
        "/events/%00".to_owned(),
        format!("/webhooks/{wid}/deliveries/../../../../etc/passwd"),
    ] {
        let a = app.api.get(&path).await;
        assert!(a.status.is_client_error(), "{path}: {}", a.status);
    }
    let a = app.api.send(Method::PUT, "/webhooks", None).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    // A huge number is valid JSON: an event keeps it exactly as written.
    let huge = br#"{"data":{"subject_type":"project","event_type":"CREATED","n":1e999999}}"#.to_vec();
    let a = app.api.send_raw(Method::POST, "/events", huge, "application/json").await;
    assert_eq!(a.status, StatusCode::CREATED);
    let listed = reqwest::Client::new()
        .get(format!("{}/events", app.api.base()))
        .bearer_auth(app.api.key().expect("key"))
        .send()
        .await
        .expect("list");
    assert_eq!(listed.status(), StatusCode::OK);
    assert!(listed.text().await.expect("text").contains(r#""n":1e999999"#));
}
