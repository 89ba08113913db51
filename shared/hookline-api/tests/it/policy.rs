//! A webhook's delivery policy through the router: created, read, changed and reset,
//! every answer checked against `openapi.json`, and refusals naming the field.

use crate::support::{app, conforms};
use serde_json::{Value, json};

#[tokio::test]
async fn policy_fields_round_trip_and_answers_match_the_document() {
    let app = app().await;
    let call = |method: &'static str, template: &'static str, uri: String, body: Option<Value>| {
        let app = &app;
        async move {
            let a = app.call(method, &uri, Some(&app.admin), body.map(|b| b.to_string().into_bytes()), &[]).await;
            conforms(method, template, &a);
            a
        }
    };
    let data = json!({
        "endpoint_url": "https://ok.example/hook", "listened_events": ["project.*"], "name": "Billing",
        "method": "PATCH", "payload_format": "standard_webhooks", "retry_schedule": "30s,5m", "max_age": "6h",
        "rate_limit": "300/min", "max_in_flight": 4,
        "filter": {"$or": [{"metadata": {"status": "active"}}, {"seats": {"$gte": 10}}]},
    });
    let created = call("POST", "/webhooks", "/webhooks".into(), Some(json!({ "data": data }))).await;
    assert_eq!(created.status, 201);
    let w = created.json()["data"].clone();
    for k in ["name", "method", "payload_format", "retry_schedule", "max_age", "filter", "rate_limit", "max_in_flight"] {
        assert_eq!(w[k], data[k], "{k}");
    }
    let id = w["id"].as_str().expect("id").to_owned();
    let got = call("GET", "/webhooks/{id}", format!("/webhooks/{id}"), None).await;
    assert_eq!(got.json()["data"]["filter"], data["filter"]);
    let patched =
        call("PATCH", "/webhooks/{id}", format!("/webhooks/{id}"), Some(json!({"data": {"max_age": null, "retry_schedule": ""}}))).await;
    assert_eq!((patched.json()["data"]["max_age"].clone(), patched.json()["data"]["retry_schedule"].as_str()), (Value::Null, Some("")));
    assert_eq!(patched.json()["data"]["method"], "PATCH", "fields not named are left as they are");
    let plain = call(
        "POST",
        "/webhooks",
        "/webhooks".into(),
        Some(json!({"data": {"endpoint_url": "https://ok.example/2", "listened_events": ["*"]}})),
    )
    .await;
    let p = &plain.json()["data"];
    assert_eq!((p["method"].as_str(), p["payload_format"].as_str(), p["name"].clone()), (Some("POST"), Some("envelope"), Value::Null));

    let bad = call("PATCH", "/webhooks/{id}", format!("/webhooks/{id}"), Some(json!({"data": {"filter": {"n": {"$gt": [1]}}}}))).await;
    assert_eq!((bad.status.as_u16(), bad.json()["error"]["code"].as_str()), (422, Some("invalid_filter")));
    assert!(bad.json()["error"]["message"].as_str().unwrap_or_default().starts_with("filter.n.$gt"), "{}", bad.json());
    for (field, value, code) in [
        ("rate_limit", json!("5/hour"), "invalid_rate_limit"),
        ("rate_limit", json!("0/s"), "invalid_rate_limit"),
        ("rate_limit", json!("2000/s"), "invalid_rate_limit"),
        ("max_in_flight", json!(0), "invalid_max_in_flight"),
        ("max_in_flight", json!(101), "invalid_max_in_flight"),
    ] {
        let bad = call("PATCH", "/webhooks/{id}", format!("/webhooks/{id}"), Some(json!({"data": {field: value}}))).await;
        assert_eq!((bad.status.as_u16(), bad.json()["error"]["code"].as_str()), (422, Some(code)), "{field} {value}");
        assert!(bad.json()["error"]["message"].as_str().unwrap_or_default().starts_with(field), "{}", bad.json());
    }
    let reset =
        call("PATCH", "/webhooks/{id}", format!("/webhooks/{id}"), Some(json!({"data": {"rate_limit": "5/s", "max_in_flight": null}})))
            .await;
    let r = &reset.json()["data"];
    assert_eq!((r["rate_limit"].as_str(), r["max_in_flight"].clone()), (Some("5/s"), Value::Null));
}
