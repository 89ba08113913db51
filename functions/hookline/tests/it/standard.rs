//! Standard Webhooks signing end to end in local mode: secrets shown once, deliveries
//! verified by receivers' own libraries (`standardwebhooks`, `svix`), both schemes at
//! once, and rotation with and without a grace period.

use crate::support::{WAIT, spawn_app, spawn_app_at};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tests::jose;
use tests::receiver::Received;
use tests::standard::{LIBRARIES, verify};

fn headers(r: &Received) -> BTreeMap<String, String> {
    r.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect()
}

/// Whether every library accepts `r` under `secret`.
fn accepted(secret: &str, r: &Received) -> bool {
    let results: Vec<bool> = LIBRARIES.iter().map(|lib| verify(lib, secret, &headers(r), &r.body).is_ok()).collect();
    assert!(results.iter().all(|x| *x == results[0]), "the libraries disagree: {results:?}");
    results[0]
}

async fn publish(app: &crate::support::TestApp, id: &str) {
    app.api.publish(json!({"subject_type": "project", "event_type": "CREATED", "subject_id": id})).await;
}

#[tokio::test]
async fn a_standard_webhooks_delivery_verifies_with_receivers_libraries_and_its_secret_is_shown_once() {
    let app = spawn_app().await;
    let rx = tests::receiver::Receiver::start().await;
    let created = app
        .api
        .post("/webhooks", json!({"data": {"endpoint_url": rx.url("/std"), "listened_events": ["*"], "signatures": ["standard_webhooks"]}}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let secret = created.data()["secret"].as_str().expect("the secret, once").to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() == 6 + 44, "{secret}");
    assert_eq!(created.data()["signatures"], json!(["standard_webhooks"]));
    let id = created.data()["id"].as_str().expect("id").to_owned();
    for answer in [app.api.get(&format!("/webhooks/{id}")).await, app.api.get("/webhooks").await] {
        let text = answer.body.to_string();
        assert!(!text.contains(&secret[6..]), "only the creating answer shows the secret: {text}");
        assert!(text.contains("\"secrets\":[{\"created_at\""), "{text}");
    }

    publish(&app, "1").await;
    let got = rx.wait_for("/std", 1, WAIT).await;
    let r = &got[0];
    assert!(r.header("x-webhook-signature").is_none(), "the JWT only when asked for");
    let delivery = r.json()["delivery"]["id"].as_str().expect("delivery id").to_owned();
    assert_eq!(r.header("webhook-id"), Some(delivery.as_str()), "webhook-id is the delivery id");
    let ts: i64 = r.header("webhook-timestamp").expect("timestamp").parse().expect("unix seconds");
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    assert!(r.header("webhook-signature").is_some_and(|s| s.starts_with("v1,") && !s.contains(' ')));
    assert!(accepted(&secret, r), "a genuine delivery verifies");

    // Tampered body, wrong secret: refused by both libraries.
    let mut tampered = r.clone();
    tampered.body = r.body.iter().copied().map(|b| if b == b'1' { b'2' } else { b }).collect::<Vec<u8>>().into();
    assert!(!accepted(&secret, &tampered));
    assert!(!accepted("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", r));
}

#[tokio::test]
async fn both_schemes_sign_one_delivery_and_a_given_secret_is_used() {
    let app = spawn_app().await;
    let rx = tests::receiver::Receiver::start().await;
    let mine = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let created = app
        .api
        .post(
            "/webhooks",
            json!({"data": {"endpoint_url": rx.url("/both"), "listened_events": ["*"], "signatures": ["jwt", "standard_webhooks"], "secret": mine}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.data()["secret"], mine);
    publish(&app, "2").await;
    let r = &rx.wait_for("/both", 1, WAIT).await[0];
    assert!(accepted(mine, r));
    let jwks = app.anonymous().get("/jwks/webhooks").await;
    jose::verify(r.header("x-webhook-signature").expect("the JWT too"), &r.body, &jwks.body).expect("the JWT verifies");

    // A secret without the scheme, and malformed ones, are refused.
    for (body, code) in [
        (json!({"endpoint_url": rx.url("/x"), "listened_events": ["*"], "secret": mine}), "secret_without_standard_webhooks"),
        (
            json!({"endpoint_url": rx.url("/x"), "listened_events": ["*"], "signatures": ["standard_webhooks"], "secret": "whsec_c2hvcnQ="}),
            "invalid_secret",
        ),
        (json!({"endpoint_url": rx.url("/x"), "listened_events": ["*"], "signatures": ["hmac"]}), "invalid_signatures"),
        (json!({"endpoint_url": rx.url("/x"), "listened_events": ["*"], "signatures": []}), "invalid_signatures"),
    ] {
        let a = app.api.post("/webhooks", json!({"data": body})).await;
        assert_eq!((a.status, a.code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{:?}", a.body);
        assert!(!a.body.to_string().contains("c2hvcnQ"), "an error never repeats the secret");
    }
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_through_the_grace_period_and_zero_grace_ends_the_old_ones() {
    let app = spawn_app().await;
    let rx = tests::receiver::Receiver::start().await;
    let created = app.api.post("/webhooks", json!({"data": {"endpoint_url": rx.url("/rot"), "listened_events": ["*"]}})).await;
    let id = created.data()["id"].as_str().expect("id").to_owned();
    assert!(created.data().get("secret").is_none(), "no secret without the scheme");
    let off = app.api.post(&format!("/webhooks/{id}/secret/rotate"), json!({"data": {}})).await;
    assert_eq!((off.status, off.code()), (StatusCode::CONFLICT, "standard_webhooks_off"));

    // Turning the scheme on by PATCH gives the first secret, once.
    let on = app.api.patch(&format!("/webhooks/{id}"), json!({"data": {"signatures": ["standard_webhooks"]}})).await;
    let first = on.data()["secret"].as_str().expect("first secret").to_owned();
    let again = app.api.patch(&format!("/webhooks/{id}"), json!({"data": {"description": "x"}})).await;
    assert!(again.data().get("secret").is_none());

    // Rotate with an hour of grace: deliveries carry both signatures.
    let rotated = app.api.post(&format!("/webhooks/{id}/secret/rotate"), json!({"data": {"grace_period": "1h"}})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let second = rotated.data()["secret"].as_str().expect("second secret").to_owned();
    assert_ne!(first, second);
    let secrets = rotated.data()["secrets"].as_array().expect("secrets").clone();
    assert_eq!(secrets.len(), 2);
    assert!(secrets[0]["expires_at"].is_null() && secrets[1]["expires_at"].is_string());
    publish(&app, "3").await;
    let r = rx.wait_for("/rot", 1, WAIT).await[0].clone();
    assert_eq!(r.header("webhook-signature").map(|s| s.split(' ').count()), Some(2));
    assert!(accepted(&second, &r), "the new secret verifies");
    assert!(accepted(&first, &r), "the old one too, during its grace period");

    // Rotate with no grace (the body left out means 24 h, so give 0s): only the newest signs.
    let third = app.api.post(&format!("/webhooks/{id}/secret/rotate"), json!({"data": {"grace_period": "0s"}})).await;
    let third = third.data()["secret"].as_str().expect("third").to_owned();
    publish(&app, "4").await;
    let r = rx.wait_for("/rot", 2, WAIT).await[1].clone();
    assert!(accepted(&third, &r));
    assert!(!accepted(&second, &r) && !accepted(&first, &r), "rotated-out secrets no longer verify");

    // A rotation without a body keeps 24 h of grace; bounds are enforced.
    let plain = app.api.send_raw(reqwest::Method::POST, &format!("/webhooks/{id}/secret/rotate"), Vec::new(), "application/json").await;
    assert_eq!(plain.status, StatusCode::OK, "{:?}", plain.body);
    let bad = app.api.post(&format!("/webhooks/{id}/secret/rotate"), json!({"data": {"grace_period": "8d"}})).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_grace_period"));
    let mut last = Value::Null;
    for _ in 0..12 {
        last = app.api.post(&format!("/webhooks/{id}/secret/rotate"), json!({"data": {"grace_period": "1h"}})).await.body;
    }
    assert_eq!(last["error"]["code"], "too_many_secrets", "{last}");
}

#[tokio::test]
async fn a_delivery_stamped_over_five_minutes_ago_is_refused_by_receivers_libraries() {
    // Hookline's clock six minutes behind the receiver's: a genuine signature over a
    // stale timestamp, as a replayed or long-delayed request would carry.
    let app = spawn_app_at(chrono::Utc::now() - chrono::Duration::minutes(6)).await;
    let rx = tests::receiver::Receiver::start().await;
    let created = app
        .api
        .post("/webhooks", json!({"data": {"endpoint_url": rx.url("/old"), "listened_events": ["*"], "signatures": ["standard_webhooks"]}}))
        .await;
    let secret = created.data()["secret"].as_str().expect("secret").to_owned();
    publish(&app, "5").await;
    let r = &rx.wait_for("/old", 1, WAIT).await[0];
    for lib in LIBRARIES {
        let e = verify(lib, &secret, &headers(r), &r.body).expect_err("a stale timestamp is refused");
        assert!(e.to_lowercase().contains("timestamp") || e.to_lowercase().contains("old"), "{lib}: {e}");
    }
}
