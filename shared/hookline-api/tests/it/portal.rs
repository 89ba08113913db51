//! Portal links and sessions, API keys and the operator's `?tenant=`, through the router,
//! every answer checked against the document. The API enforces a session's
//! capabilities, not only the console.

use crate::support::{Answer, App, app_at, conforms};
use hookline_domain::ports::ManualClock;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

impl App {
    async fn as_(&self, key: &str, method: &str, template: &str, uri: &str, body: Option<Value>) -> Answer {
        let a = self.call(method, uri, Some(key), body.map(|b| b.to_string().into_bytes()), &[]).await;
        conforms(method, template, &a);
        a
    }

    async fn open(&self, token: &str) -> Answer {
        let body = json!({"data": {"token": token}}).to_string().into_bytes();
        let a = self.call("POST", "/portal/sessions", None, Some(body), &[]).await;
        conforms("POST", "/portal/sessions", &a);
        a
    }
}

fn field(a: &Answer, name: &str) -> String {
    a.json()["data"][name].as_str().unwrap_or_else(|| panic!("{name} in {:?}", a.json())).to_owned()
}

fn code(a: &Answer) -> (u16, String) {
    (a.status.as_u16(), a.json()["error"]["code"].as_str().unwrap_or_default().to_owned())
}

/// A tenant key for `acme` with `scopes`.
async fn tenant_key(app: &App, scopes: &[&str]) -> String {
    let admin = app.admin.clone();
    let a = app.as_(&admin, "POST", "/api-keys", "/api-keys", Some(json!({"data": {"tenant": "acme", "scopes": scopes}}))).await;
    field(&a, "key")
}

async fn mint(app: &App, key: &str, body: Value) -> Answer {
    app.as_(key, "POST", "/portal/links", "/portal/links", Some(json!({ "data": body }))).await
}

#[tokio::test]
async fn a_link_opens_one_session_and_the_api_holds_it_to_its_capabilities() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = app_at(clock.clone()).await;
    let backend = tenant_key(&app, &["webhooks:read", "webhooks:write", "events:write"]).await;
    let webhook = json!({"data": {"endpoint_url": "https://ok.example/hook", "listened_events": ["project.*"]}});
    let existing = app.as_(&backend, "POST", "/webhooks", "/webhooks", Some(webhook.clone())).await;
    let existing = field(&existing, "id");

    let link = mint(&app, &backend, json!({})).await;
    assert_eq!(link.status, 201);
    assert_eq!(link.json()["data"]["capabilities"], json!(["view"]));
    let token = field(&link, "token");
    assert!(field(&link, "url").ends_with(&format!("/console/#portal={token}")), "the token travels in the fragment");
    assert_eq!(code(&app.as_(&token, "GET", "/webhooks", "/webhooks", None).await).0, 401, "a link is not a key");

    let opened = app.open(&token).await;
    assert_eq!(opened.status, 201);
    let viewer = field(&opened, "token");
    assert_eq!(code(&app.open(&token).await), (401, "portal_link_used".into()));
    assert_eq!(code(&app.open("hkp_nonsense").await), (401, "portal_link_invalid".into()));

    let me = app.as_(&viewer, "GET", "/me", "/me", None).await;
    assert_eq!((me.json()["data"]["kind"].as_str(), me.json()["data"]["tenant"].as_str()), (Some("portal_session"), Some("acme")));
    assert_eq!(me.json()["data"]["capabilities"], json!(["view"]));
    assert_eq!(app.as_(&viewer, "GET", "/webhooks", "/webhooks", None).await.json()["data"][0]["id"], existing.as_str());
    assert_eq!(app.as_(&viewer, "GET", "/event-types", "/event-types", None).await.status, 200);
    let on = |p: &str| p.replace("{id}", &existing);
    let delivery = format!("/webhooks/{existing}/deliveries/dlv_{}/redeliver", "0".repeat(32));
    let refused: [(&str, &str, String, Option<Value>); 10] = [
        ("POST", "/webhooks", "/webhooks".into(), Some(webhook.clone())),
        ("PATCH", "/webhooks/{id}", on("/webhooks/{id}"), Some(json!({"data": {"active": false}}))),
        ("DELETE", "/webhooks/{id}", on("/webhooks/{id}"), None),
        ("POST", "/webhooks/{id}/secret/rotate", on("/webhooks/{id}/secret/rotate"), None),
        ("POST", "/webhooks/{id}/test", on("/webhooks/{id}/test"), None),
        ("POST", "/webhooks/{id}/deliveries/{delivery_id}/redeliver", delivery, None),
        ("GET", "/events", "/events".into(), None),
        ("GET", "/api-keys", "/api-keys".into(), None),
        ("GET", "/tenants", "/tenants".into(), None),
        ("POST", "/portal/links", "/portal/links".into(), Some(json!({"data": {}}))),
    ];
    for (method, template, uri, body) in refused {
        assert_eq!(code(&app.as_(&viewer, method, template, &uri, body).await), (403, "forbidden".into()), "{method} {uri}");
    }
    let other = app.as_(&viewer, "GET", "/webhooks", "/webhooks?tenant=globex", None).await;
    assert_eq!(other.status, 403, "a session stays in its tenant");

    // A link with more capabilities, and what its session may do.
    let full = mint(&app, &backend, json!({"capabilities": ["manage", "secrets", "deliveries"], "expires_in": "7d"})).await;
    let manager = field(&app.open(&field(&full, "token")).await, "token");
    let made = app.as_(&manager, "POST", "/webhooks", "/webhooks", Some(webhook.clone())).await;
    assert_eq!(made.status, 201);
    let made = field(&made, "id");
    let test = app.as_(&manager, "POST", "/webhooks/{id}/test", &format!("/webhooks/{made}/test"), None).await;
    assert_eq!(test.status, 200);
    let off = json!({"data": {"active": false}});
    assert_eq!(app.as_(&manager, "PATCH", "/webhooks/{id}", &format!("/webhooks/{made}"), Some(off)).await.status, 200);

    // A session ends after an hour.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(code(&app.as_(&manager, "GET", "/webhooks", "/webhooks", None).await), (401, "session_expired".into()));
    // A link must be opened within its lifetime.
    let short = mint(&app, &backend, json!({"expires_in": "5m"})).await;
    clock.advance(Duration::from_secs(301));
    assert_eq!(code(&app.open(&field(&short, "token")).await), (401, "portal_link_expired".into()));

    for (body, want) in [
        (json!({"capabilities": ["root"]}), "invalid_capability"),
        (json!({"expires_in": "4m"}), "invalid_expires_in"),
        (json!({"expires_in": "8d"}), "invalid_expires_in"),
        (json!({"expires_in": "soon"}), "invalid_expires_in"),
        (json!({"tenant": "acme"}), "invalid_body"),
    ] {
        assert_eq!(code(&mint(&app, &backend, body.clone()).await), (422, want.into()), "{body}");
    }
    let reader = tenant_key(&app, &["webhooks:read"]).await;
    assert_eq!(code(&mint(&app, &reader, json!({"capabilities": ["manage"]})).await), (403, "forbidden".into()), "no escalation");

    // Changing a webhook's schemes makes or ends secrets: a manage-only session may not.
    let narrow = mint(&app, &backend, json!({"capabilities": ["manage"]})).await;
    let narrow = field(&app.open(&field(&narrow, "token")).await, "token");
    let schemes = json!({"data": {"signatures": ["standard_webhooks"]}});
    let refused = app.as_(&narrow, "PATCH", "/webhooks/{id}", &on("/webhooks/{id}"), Some(schemes.clone())).await;
    assert_eq!(code(&refused), (403, "forbidden".into()));
    let allowed = app.as_(&backend, "PATCH", "/webhooks/{id}", &on("/webhooks/{id}"), Some(schemes)).await;
    assert!(allowed.json()["data"]["secret"].is_string(), "a key with webhooks:write may, and sees the new secret once");
}

#[tokio::test]
async fn revoking_a_link_ends_its_session_and_revoking_all_ends_every_one() {
    let app = app_at(Arc::new(hookline_domain::ports::SystemClock)).await;
    let reader = tenant_key(&app, &["webhooks:read"]).await;
    let backend = tenant_key(&app, &["webhooks:read", "webhooks:manage"]).await;
    let first = mint(&app, &backend, json!({})).await;
    let session = field(&app.open(&field(&first, "token")).await, "token");
    let unused = mint(&app, &backend, json!({})).await;
    let second = mint(&app, &backend, json!({})).await;
    let other_session = field(&app.open(&field(&second, "token")).await, "token");

    let listed = app.as_(&backend, "GET", "/portal/links", "/portal/links", None).await;
    assert_eq!(listed.json()["data"].as_array().map(Vec::len), Some(3), "three links listed");
    assert!(listed.json()["data"][0]["used_at"].is_string() && listed.json()["data"][1]["used_at"].is_null());
    assert!(!String::from_utf8_lossy(&listed.body).contains("hkp_"), "no token is listed");
    let template = "/portal/links/{id}";
    let by_reader = app.as_(&reader, "DELETE", template, &format!("/portal/links/{}", field(&first, "id")), None).await;
    assert_eq!(by_reader.status, 403, "a read-only key revokes nothing");
    assert_eq!(app.as_(&reader, "DELETE", "/portal/links", "/portal/links", None).await.status, 403);
    let gone = app.as_(&backend, "DELETE", template, &format!("/portal/links/{}", field(&first, "id")), None).await;
    assert_eq!(gone.status, 204);
    assert_eq!(code(&app.as_(&session, "GET", "/webhooks", "/webhooks", None).await), (401, "session_revoked".into()));
    assert_eq!(app.as_(&other_session, "GET", "/webhooks", "/webhooks", None).await.status, 200, "other sessions go on");
    let again = app.as_(&backend, "DELETE", template, &format!("/portal/links/{}", field(&first, "id")), None).await;
    assert_eq!(code(&again), (404, "portal_link_not_found".into()));

    let all = app.as_(&backend, "DELETE", "/portal/links", "/portal/links", None).await;
    assert_eq!(all.json()["data"]["revoked"], 2);
    assert_eq!(code(&app.as_(&other_session, "GET", "/webhooks", "/webhooks", None).await), (401, "session_revoked".into()));
    assert_eq!(code(&app.open(&field(&unused, "token")).await), (401, "portal_link_invalid".into()));
}

#[tokio::test]
async fn the_operator_lists_tenants_and_keys_acts_within_any_tenant_and_revokes_keys() {
    let app = app_at(Arc::new(hookline_domain::ports::SystemClock)).await;
    let admin = app.admin.clone();
    let acme = tenant_key(&app, &["webhooks:read", "webhooks:write"]).await;
    let globex = app
        .as_(&admin, "POST", "/api-keys", "/api-keys", Some(json!({"data": {"tenant": "globex", "scopes": ["admin"], "description": "g"}})))
        .await;
    let (globex_id, globex) = (field(&globex, "id"), field(&globex, "key"));
    let hook = json!({"data": {"endpoint_url": "https://ok.example/hook", "listened_events": ["*"]}});
    app.as_(&acme, "POST", "/webhooks", "/webhooks", Some(hook)).await;

    let tenants = app.as_(&admin, "GET", "/tenants", "/tenants", None).await;
    assert_eq!(
        tenants.json()["data"],
        json!([{"id": "acme", "api_keys": 1}, {"id": "default", "api_keys": 1}, {"id": "globex", "api_keys": 1}])
    );
    let keys = app.as_(&admin, "GET", "/api-keys", "/api-keys", None).await;
    assert_eq!(keys.json()["data"].as_array().map(Vec::len), Some(3));
    assert!(!String::from_utf8_lossy(&keys.body).contains(&globex), "secrets are never listed");
    let narrowed = app.as_(&admin, "GET", "/api-keys", "/api-keys?tenant=globex", None).await;
    assert_eq!(narrowed.json()["data"][0]["description"], "g");
    let theirs = app.as_(&admin, "GET", "/webhooks", "/webhooks?tenant=acme", None).await;
    assert_eq!(theirs.json()["data"].as_array().map(Vec::len), Some(1), "the operator sees acme's webhooks");
    assert_eq!(app.as_(&admin, "GET", "/webhooks", "/webhooks", None).await.json()["data"], json!([]));
    let me = app.as_(&admin, "GET", "/me", "/me?tenant=acme", None).await;
    assert_eq!((me.json()["data"]["tenant"].as_str(), me.json()["data"]["operator"].as_bool()), (Some("acme"), Some(true)));

    // Another tenant's admin stays in its tenant.
    assert_eq!(code(&app.as_(&globex, "GET", "/tenants", "/tenants", None).await).0, 403);
    assert_eq!(code(&app.as_(&globex, "GET", "/webhooks", "/webhooks?tenant=acme", None).await).0, 403);
    assert_eq!(app.as_(&globex, "GET", "/webhooks", "/webhooks?tenant=globex", None).await.status, 200, "its own tenant, named");
    assert_eq!(app.as_(&globex, "GET", "/api-keys", "/api-keys", None).await.json()["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(code(&app.as_(&admin, "GET", "/webhooks", "/webhooks?tenant=Not%20one", None).await), (422, "invalid_tenant".into()));

    let template = "/api-keys/{id}";
    let wrong_tenant = app.as_(&admin, "DELETE", template, &format!("/api-keys/{globex_id}"), None).await;
    assert_eq!(code(&wrong_tenant), (404, "api_key_not_found".into()), "the operator names the key's tenant");
    let revoked = app.as_(&admin, "DELETE", template, &format!("/api-keys/{globex_id}?tenant=globex"), None).await;
    assert_eq!(revoked.status, 204);
    assert_eq!(code(&app.as_(&globex, "GET", "/me", "/me", None).await).0, 401, "a revoked key stops working");
    assert_eq!(code(&app.as_(&acme, "GET", "/api-keys", "/api-keys", None).await).0, 403);
}
