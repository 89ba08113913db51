//! Real answers, successes and errors, checked against `openapi.json` with an
//! independent JSON Schema validator.

use crate::support::{Answer, App, DOWN_HOST, app, conforms};
use hookline_domain::ids::{EventId, TenantId};
use serde_json::{Value, json};
use std::time::Duration;

impl App {
    /// Calls `method uri` with the admin key and checks the answer against `template`.
    async fn checked(&self, method: &str, template: &str, uri: &str, body: Option<Value>) -> Answer {
        let key = self.admin.clone();
        self.checked_with(Some(&key), method, template, uri, body.map(|b| b.to_string().into_bytes()), &[]).await
    }

    async fn checked_with(
        &self,
        key: Option<&str>,
        method: &str,
        template: &str,
        uri: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let a = self.call(method, uri, key, body, headers).await;
        conforms(method, template, &a);
        a
    }

    /// Runs fan-out for an event and makes every attempt that is due, as the workers would.
    async fn deliver(&self, event_id: &str) {
        let h = &self.hookline;
        let event = h.events.get(&TenantId::default_tenant(), &EventId::parse(event_id).expect("id")).await.expect("event");
        hookline_domain::fanout::fan_out(h, &event).await.expect("fan-out");
        for leased in h.queue.take_due(h.clock.now(), 100, Duration::from_secs(30)).await.expect("jobs") {
            hookline_domain::recovery::run(h, &leased.task).await.expect("send");
            h.queue.ack(&leased.receipt).await.expect("ack");
        }
    }
}

fn id(a: &Answer) -> String {
    a.json()["data"]["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn webhook_and_delivery_answers_match_the_document() {
    let app = app().await;
    let ok = app
        .checked(
            "POST",
            "/webhooks",
            "/webhooks",
            Some(json!({"data": {"endpoint_url": "https://ok.example/hook", "listened_events": ["project.*"], "headers": {"X-Api-Key": "s"}}})),
        )
        .await;
    assert_eq!(ok.status, 201);
    let down_url = format!("https://{DOWN_HOST}/hook");
    let body =
        json!({"data": {"endpoint_url": down_url, "listened_events": ["*"], "description": "down", "active": true, "headers": null}});
    let down = app.checked("POST", "/webhooks", "/webhooks", Some(body)).await;
    assert_eq!(down.status, 201);
    let (ok, down) = (id(&ok), id(&down));

    let page = app.checked("GET", "/webhooks", "/webhooks?limit=1", None).await;
    let cursor = page.json()["next_cursor"].as_str().expect("a second page").to_owned();
    let next = app.checked("GET", "/webhooks", &format!("/webhooks?limit=1&cursor={cursor}"), None).await;
    assert_eq!(next.json()["next_cursor"], Value::Null);
    app.checked("GET", "/webhooks/{id}", &format!("/webhooks/{ok}"), None).await;
    let patched = app.checked("PATCH", "/webhooks/{id}", &format!("/webhooks/{ok}"), Some(json!({"data": {"description": null}}))).await;
    assert_eq!(patched.status, 200);
    app.checked("GET", "/webhooks/events", "/webhooks/events", None).await;
    let types = app.checked("GET", "/event-types", "/event-types", None).await;
    let first = &types.json()["data"][0];
    assert_eq!(first["example"]["subject_type"].as_str(), first["name"].as_str().and_then(|n| n.split('.').next()));
    let health = app.checked("GET", "/webhooks/{id}/health", &format!("/webhooks/{ok}/health"), None).await;
    assert_eq!(health.json()["data"]["success_rate"], Value::Null, "no attempts yet");

    let event = app
        .checked(
            "POST",
            "/events",
            "/events",
            Some(json!({"data": {"subject_type": "project", "event_type": "CREATED", "subject_id": "34"}})),
        )
        .await;
    assert_eq!(event.status, 201);
    app.deliver(&id(&event)).await;

    for (webhook, status) in [(&ok, "succeeded"), (&down, "pending")] {
        let list = app.checked("GET", "/webhooks/{id}/deliveries", &format!("/webhooks/{webhook}/deliveries"), None).await;
        let delivery = list.json()["data"][0].clone();
        assert_eq!(delivery["status"], status, "{delivery}");
        let filtered = format!("/webhooks/{webhook}/deliveries?status={status}&limit=5");
        app.checked("GET", "/webhooks/{id}/deliveries", &filtered, None).await;
        let template = "/webhooks/{id}/deliveries/{delivery_id}";
        let detail =
            app.checked("GET", template, &format!("/webhooks/{webhook}/deliveries/{}", delivery["id"].as_str().expect("id")), None).await;
        assert_eq!(detail.json()["data"]["attempts"].as_array().map(Vec::len), Some(1));
        let attempt = detail.json()["data"]["attempts"][0]["id"].as_str().expect("attempt id").to_owned();
        let d_id = delivery["id"].as_str().expect("id");
        let template = "/webhooks/{id}/deliveries/{delivery_id}/attempts/{attempt_id}";
        let shown = app.checked("GET", template, &format!("/webhooks/{webhook}/deliveries/{d_id}/attempts/{attempt}"), None).await;
        let request = &shown.json()["data"]["request"];
        let sent: Value = serde_json::from_str(request["body"].as_str().expect("body")).expect("the body is the JSON sent");
        assert_eq!((sent["delivery"]["id"].as_str(), sent["delivery"]["attempt_id"].as_str()), (Some(d_id), Some(attempt.as_str())));
        assert_eq!(sent["event"]["id"], event.json()["data"]["id"]);
        assert_eq!(request["headers"]["X-Webhook-Signature"], "(not stored)");
        let missing =
            app.checked("GET", template, &format!("/webhooks/{webhook}/deliveries/{d_id}/attempts/att_{}", "0".repeat(32)), None).await;
        assert_eq!(missing.status, 404);
        for (query, found) in [
            ("event_name=project.created", 1),
            ("event_name=project.deleted", 0),
            ("since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z", 1),
            ("since=2999-01-01T00:00:00Z", 0),
            ("until=2000-01-01T00:00:00Z", 0),
        ] {
            let a = app.checked("GET", "/webhooks/{id}/deliveries", &format!("/webhooks/{webhook}/deliveries?{query}"), None).await;
            assert_eq!(a.json()["data"].as_array().map(Vec::len), Some(found), "{query}");
        }
        for (query, code) in [("since=yesterday", "invalid_time"), ("event_name=Not%20A%20Name", "invalid_event_name")] {
            let a = app.checked("GET", "/webhooks/{id}/deliveries", &format!("/webhooks/{webhook}/deliveries?{query}"), None).await;
            assert_eq!((a.status.as_u16(), a.json()["error"]["code"].as_str()), (422, Some(code)), "{query}");
        }
        let redeliver = format!("/webhooks/{webhook}/deliveries/{}/redeliver", delivery["id"].as_str().expect("id"));
        let again = app.checked("POST", "/webhooks/{id}/deliveries/{delivery_id}/redeliver", &redeliver, None).await;
        assert_eq!(again.status, 202);
        app.checked("GET", "/webhooks/{id}/health", &format!("/webhooks/{webhook}/health"), None).await;
        let test = app.checked("POST", "/webhooks/{id}/test", &format!("/webhooks/{webhook}/test"), None).await;
        assert_eq!(test.status, 200);
        let one = Some(json!({"data": {"event_name": "project.created"}}));
        let test = app.checked("POST", "/webhooks/{id}/test", &format!("/webhooks/{webhook}/test"), one).await;
        assert_eq!(
            test.json()["data"].as_array().map(|r| r.iter().map(|t| t["event_name"].clone()).collect()),
            Some(vec![json!("project.created")])
        );
        let other = Some(json!({"data": {"event_name": "nope.created"}}));
        let refused = app.checked("POST", "/webhooks/{id}/test", &format!("/webhooks/{webhook}/test"), other).await;
        assert_eq!(refused.status, 422);
    }

    let off = app.checked("PATCH", "/webhooks/{id}", &format!("/webhooks/{down}"), Some(json!({"data": {"active": false}}))).await;
    assert_eq!(off.json()["data"]["active"], false);
    let list = app.call("GET", &format!("/webhooks/{down}/deliveries"), Some(&app.admin), None, &[]).await;
    let delivery = list.json()["data"][0]["id"].as_str().expect("id").to_owned();
    let refused = app
        .checked(
            "POST",
            "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            &format!("/webhooks/{down}/deliveries/{delivery}/redeliver"),
            None,
        )
        .await;
    assert_eq!(refused.status, 409);

    let gone = app.checked("DELETE", "/webhooks/{id}", &format!("/webhooks/{ok}"), None).await;
    assert_eq!(gone.status, 204);
    for (method, template, uri) in [
        ("GET", "/webhooks/{id}", format!("/webhooks/{ok}")),
        ("DELETE", "/webhooks/{id}", format!("/webhooks/{ok}")),
        ("GET", "/webhooks/{id}", "/webhooks/wh_nope".to_owned()),
        ("POST", "/webhooks/{id}/test", format!("/webhooks/{ok}/test")),
        ("GET", "/webhooks/{id}/deliveries/{delivery_id}", format!("/webhooks/{down}/deliveries/dlv_{}", "0".repeat(32))),
        ("GET", "/webhooks/{id}/deliveries/{delivery_id}", format!("/webhooks/{down}/deliveries/nope")),
    ] {
        assert_eq!(app.checked(method, template, &uri, None).await.status, 404, "{method} {uri}");
    }
}

#[tokio::test]
async fn event_and_key_answers_match_the_document() {
    let app = app().await;
    let body =
        || Some(json!({"data": {"subject_type": "indicator", "event_type": "Updated", "n": 1.50, "tags": ["a"]}}).to_string().into_bytes());
    let key = app.admin.clone();
    let key = Some(key.as_str());
    let first = app.checked_with(key, "POST", "/events", "/events", body(), &[("idempotency-key", "order-7")]).await;
    assert_eq!(first.status, 201);
    let replay = app.checked_with(key, "POST", "/events", "/events", body(), &[("idempotency-key", "order-7")]).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.headers.get("idempotent-replayed").map(|v| v.as_bytes()), Some(&b"true"[..]));
    assert_eq!(id(&replay), id(&first));
    app.checked("POST", "/events", "/events", Some(json!({"data": {"subject_type": "project", "event_type": "DELETED"}}))).await;
    let page = app.checked("GET", "/events", "/events?limit=1", None).await;
    assert!(page.json()["next_cursor"].is_string());
    app.checked("GET", "/events/{id}", &format!("/events/{}", id(&first)), None).await;
    let missing = app.checked("GET", "/events/{id}", "/events/0b1d0e6e-2f4c-4b8e-9a51-1c0b7d5e9f00", None).await;
    assert_eq!(missing.status, 404);
    for (body, code) in [
        (json!({"data": {"subject_type": "project", "event_type": "EXPLODED"}}), "unknown_event"),
        (json!({"data": {"subject_type": "project", "event_type": "CREATED", "id": "x"}}), "reserved_field"),
        (json!({"data": {"event_type": "CREATED"}}), "missing_field"),
        (json!({"data": {"subject_type": 7, "event_type": "CREATED"}}), "invalid_field"),
        (json!({"data": {"subject_type": "Pro ject", "event_type": "CREATED"}}), "invalid_event_name"),
        (json!({"data": [], "extra": 1}), "invalid_body"),
    ] {
        let a = app.checked("POST", "/events", "/events", Some(body)).await;
        assert_eq!((a.status.as_u16(), a.json()["error"]["code"].as_str()), (422, Some(code)));
    }
    let bad_key = app.checked_with(key, "POST", "/events", "/events", body(), &[("idempotency-key", &"k".repeat(256))]).await;
    assert_eq!(bad_key.status, 422);

    let created = app
        .checked("POST", "/api-keys", "/api-keys", Some(json!({"data": {"tenant": "acme", "scopes": ["events:read", "events:read"]}})))
        .await;
    assert_eq!(created.status, 201);
    let reader = created.json()["data"]["key"].as_str().expect("key").to_owned();
    let forbidden = app.checked_with(Some(&reader), "POST", "/events", "/events", body(), &[]).await;
    assert_eq!(forbidden.status, 403);
    let listed = app.checked_with(Some(&reader), "GET", "/events", "/events", None, &[]).await;
    assert_eq!(listed.json()["data"], json!([]), "tenants see only their own events");
    for (body, code) in [
        (json!({"data": {"tenant": "Acme", "scopes": ["admin"]}}), "invalid_tenant"),
        (json!({"data": {"tenant": "acme", "scopes": []}}), "invalid_scope"),
        (json!({"data": {"tenant": "acme", "scopes": ["root"]}}), "invalid_scope"),
        (json!({"data": {"tenant": "acme", "scopes": ["admin"], "description": "d".repeat(1025)}}), "description_too_long"),
        (json!({"data": {"tenant": "acme", "scopes": ["admin"], "expires": 1}}), "invalid_body"),
    ] {
        let a = app.checked("POST", "/api-keys", "/api-keys", Some(body)).await;
        assert_eq!((a.status.as_u16(), a.json()["error"]["code"].as_str()), (422, Some(code)));
    }
}

#[tokio::test]
async fn error_and_public_answers_match_the_document() {
    let app = app().await;
    let doc = app.checked_with(None, "GET", "/openapi.json", "/openapi.json", None, &[]).await;
    assert_eq!(doc.body, hookline_api::OPENAPI_JSON.as_bytes(), "the document is served as is");
    let jwks = app.checked_with(None, "GET", "/jwks/webhooks", "/jwks/webhooks", None, &[]).await;
    assert_eq!(jwks.status, 200);

    let unauthorized = app.checked_with(None, "GET", "/webhooks", "/webhooks", None, &[]).await;
    assert_eq!(unauthorized.status, 401);
    let unknown = app.checked_with(Some("hkl_unknown"), "POST", "/events", "/events", None, &[]).await;
    assert_eq!(unknown.status, 401);
    let hook = |extra: &str| format!(r#"{{"data":{{"endpoint_url":"https://ok.example/","listened_events":["*"]{extra}}}}}"#).into_bytes();
    let admin = app.admin.clone();
    let key = Some(admin.as_str());
    for (body, status, code) in [
        (b"{\"data\":".to_vec(), 400, "malformed_json"),
        (Vec::new(), 400, "malformed_json"),
        (hook(&format!(r#","description":"{}""#, "x".repeat(70 * 1024))), 413, "payload_too_large"),
        (hook(r#","sekret":"typo""#), 422, "invalid_body"),
        (hook(r#","signatures":["standard_webhooks"],"secret":"typo""#), 422, "invalid_secret"),
        (hook(r#","signatures":["hmac"]"#), 422, "invalid_signatures"),
        (hook(r#","headers":{"Host":"x"}"#), 422, "forbidden_header"),
        (br#"{"data":{"endpoint_url":"http://ok.example/","listened_events":["*"]}}"#.to_vec(), 422, "insecure_endpoint_url"),
        (br#"{"data":{"endpoint_url":"https://10.0.0.1/","listened_events":["*"]}}"#.to_vec(), 422, "private_endpoint"),
        (br#"{"data":{"endpoint_url":"https://ok.example/","listened_events":["nope.*"]}}"#.to_vec(), 422, "invalid_event_pattern"),
        // Serde reads a struct from an array of its fields too; the API takes objects only.
        (br#"{"data":["https://ok.example/",["*"]]}"#.to_vec(), 422, "invalid_body"),
        (br#"[{"endpoint_url":"https://ok.example/","listened_events":["*"]}]"#.to_vec(), 422, "invalid_body"),
        (br#"{"data":{"endpoint_url":"https://ok.example/","listened_events":["*"]},"data":{}}"#.to_vec(), 422, "invalid_body"),
    ] {
        let a = app.checked_with(key, "POST", "/webhooks", "/webhooks", Some(body), &[]).await;
        assert_eq!((a.status.as_u16(), a.json()["error"]["code"].as_str()), (status, Some(code)));
    }
    let big_event = format!(r#"{{"data":{{"subject_type":"project","event_type":"CREATED","pad":"{}"}}}}"#, "x".repeat(300 * 1024));
    let a = app.checked_with(key, "POST", "/events", "/events", Some(big_event.into_bytes()), &[]).await;
    assert_eq!(a.status, 413);
    let listed = br#"[{"subject_type":"project","event_type":"CREATED"}]"#.to_vec();
    let a = app.checked_with(key, "POST", "/events", "/events", Some(listed), &[]).await;
    assert_eq!((a.status.as_u16(), a.json()["error"]["code"].as_str()), (422, Some("invalid_body")));
    let a = app.checked_with(key, "PATCH", "/webhooks/{id}", "/webhooks/wh_nope", Some(b"{\"data\":[null,null]}".to_vec()), &[]).await;
    assert_eq!((a.status.as_u16(), a.json()["error"]["code"].as_str()), (422, Some("invalid_body")), "the body is read first");
    for (template, uri) in [
        ("/webhooks", "/webhooks?limit=0"),
        ("/webhooks", "/webhooks?limit=101"),
        ("/webhooks", "/webhooks?cursor=bm90LWEtY3Vyc29y"),
        ("/events", "/events?limit=x"),
    ] {
        assert_eq!(app.checked("GET", template, uri, None).await.status, 422, "{uri}");
    }
    let created = app
        .checked("POST", "/webhooks", "/webhooks", Some(json!({"data": {"endpoint_url": "https://ok.example/", "listened_events": ["*"]}})))
        .await;
    let uri = format!("/webhooks/{}/deliveries?status=lost", id(&created));
    assert_eq!(app.checked("GET", "/webhooks/{id}/deliveries", &uri, None).await.status, 422);
}
