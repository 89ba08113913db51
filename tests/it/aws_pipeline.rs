//! The whole pipeline on the AWS adapters against moto's server, with the Lambda
//! handlers driven by the event shapes Lambda sends.

use aws_sdk_dynamodb::types::AttributeValue;
use hookline_aws::{AwsConfig, Clients, Resources};
use hookline_domain::Hookline;
use hookline_domain::auth::ApiKeySecret;
use hookline_http::ReqwestHttpClient;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tests::receiver::Receiver;
use tests::{jose, lambda, moto};

pub(crate) struct Stack {
    pub(crate) sdk: aws_config::SdkConfig,
    pub(crate) clients: Clients,
    pub(crate) resources: Resources,
    pub(crate) config: AwsConfig,
    pub(crate) api: axum::Router,
    pub(crate) key: String,
    pub(crate) h: Hookline,
}

pub(crate) async fn stack(extra: &[(&str, &str)]) -> Stack {
    let sdk = moto::sdk_config().await;
    let clients = Clients::new(&sdk);
    let resources = infra::provision(&clients, &moto::prefix()).await.expect("provision");
    let mut env: Vec<(String, String)> = infra::env_vars(&resources).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    env.push(("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS".into(), "true".into()));
    env.push(("HOOKLINE_DELIVERY_TIMEOUT".into(), "2s".into()));
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    let config = AwsConfig::from_lookup(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).expect("config");
    let secret = ApiKeySecret::generate();
    let http = Arc::new(ReqwestHttpClient::new(&hookline_domain::webhook::EndpointPolicy::private_allowed()).expect("http"));
    let api =
        api::app(hookline_aws::build(&clients, &config, http.clone()), Some(&secret.hash()), Default::default()).await.expect("api app");
    let h = hookline_aws::build(&clients, &config, http);
    Stack { sdk, clients, resources, config, api, key: secret.expose().to_owned(), h }
}

impl Stack {
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        lambda::call_api(&self.api, method, path, Some(&self.key), body).await
    }

    /// Writes an event straight into the events table, as an outside producer does.
    pub(crate) async fn produce(&self, tenant: &str, data: Option<&str>) -> String {
        let id = hookline_domain::ids::EventId::generate().to_string();
        let mut put = self
            .clients
            .dynamodb
            .put_item()
            .table_name(&self.resources.events_table)
            .item("tenant", AttributeValue::S(tenant.into()))
            .item("id", AttributeValue::S(id.clone()))
            .item("created_at", AttributeValue::S(hookline_domain::time::format(&chrono::Utc::now())));
        if let Some(d) = data {
            put = put.item("data", AttributeValue::S(d.into()));
        }
        put.send().await.expect("producer put");
        id
    }

    pub(crate) async fn fan_out_stream(&self) -> aws_lambda_events::streams::DynamoDbEventResponse {
        let event = lambda::read_stream(&self.sdk, &self.resources.events_table).await;
        fanout::handle(&self.h, event).await
    }

    /// Receives and handles queue messages as the sender Lambda would, until `done`.
    pub(crate) async fn drain_queue_until(&self, h: &Hookline, visibility: i32, timeout: Duration, done: impl Fn() -> bool) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut handled = 0;
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "queue not drained in time");
            let (event, receipts) = lambda::receive(&self.clients.sqs, &self.resources.queue_url, 10, visibility).await;
            if receipts.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            handled += receipts.len();
            let response = sender::handle(h, event).await;
            lambda::settle(&self.clients.sqs, &self.resources.queue_url, &receipts, &response).await;
        }
        handled
    }
}

#[tokio::test]
async fn a_producer_event_flows_through_stream_fanout_queue_and_sender_to_a_verified_delivery() {
    let s = stack(&[]).await;
    let rx = Receiver::start().await;
    let (status, w) =
        s.call("POST", "/webhooks", Some(json!({"data": {"endpoint_url": rx.url("/aws"), "listened_events": ["project.*"]}}))).await;
    assert_eq!(status, 201, "{w}");
    let wid = w["data"]["id"].as_str().expect("id").to_owned();

    let event_id = s.produce("default", Some(r#"{"subject_type":"project","event_type":"CREATED","subject_id":"34","n":1.50}"#)).await;
    let response = s.fan_out_stream().await;
    assert!(response.batch_item_failures.is_empty());
    s.drain_queue_until(&s.h, 30, Duration::from_secs(20), || !rx.received_on("/aws").is_empty()).await;

    let got = rx.received_on("/aws");
    assert_eq!(got.len(), 1);
    let body = got[0].json();
    assert_eq!(body["event"]["id"], event_id.as_str());
    assert!(String::from_utf8_lossy(&got[0].body).contains(r#""n":1.50"#), "producer fields delivered exactly");
    let (status, jwks) = lambda::call_api(&s.api, "GET", "/jwks/webhooks", None, None).await;
    assert_eq!(status, 200);
    jose::verify(got[0].header("x-webhook-signature").expect("signature"), &got[0].body, &jwks).expect("verifies against the API's JWKS");
    assert_eq!(jwks["keys"][0]["kid"], jose::thumbprint(&jwks["keys"][0]));

    // The history, through the API handler.
    let did = body["delivery"]["id"].as_str().expect("id");
    let (status, d) = s.call("GET", &format!("/webhooks/{wid}/deliveries/{did}"), None).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["data"]["status"], "succeeded");
    assert_eq!(d["data"]["attempts"][0]["status_code"], 200);
    // The event reads back through the API exactly as the producer wrote it.
    let (status, e) = s.call("GET", &format!("/events/{event_id}"), None).await;
    assert_eq!((status, e["data"]["n"].clone()), (200, json!(1.5)));
}

#[tokio::test]
async fn an_event_published_through_the_api_goes_through_the_stream_too() {
    let s = stack(&[]).await;
    let rx = Receiver::start().await;
    s.call("POST", "/webhooks", Some(json!({"data": {"endpoint_url": rx.url("/api"), "listened_events": ["*"]}}))).await;
    let (status, e) = s.call("POST", "/events", Some(json!({"data": {"subject_type": "activity", "event_type": "UPDATED"}}))).await;
    assert_eq!(status, 201, "{e}");
    assert!(s.fan_out_stream().await.batch_item_failures.is_empty());
    s.drain_queue_until(&s.h, 30, Duration::from_secs(20), || !rx.received_on("/api").is_empty()).await;
    assert_eq!(rx.received_on("/api")[0].json()["event"]["id"], e["data"]["id"]);
}

#[tokio::test]
async fn a_replayed_job_in_the_same_batch_as_its_original_is_acknowledged_not_left_for_the_visibility_timeout() {
    let s = stack(&[]).await;
    let rx = Receiver::start().await;
    s.call("POST", "/webhooks", Some(json!({"data": {"endpoint_url": rx.url("/replay"), "listened_events": ["*"]}}))).await;
    s.produce("default", Some(r#"{"subject_type":"project","event_type":"UPDATED"}"#)).await;
    let event = lambda::read_stream(&s.sdk, &s.resources.events_table).await;
    // The stream batch replayed: the same job is queued twice.
    assert!(fanout::handle(&s.h, event.clone()).await.batch_item_failures.is_empty());
    assert!(fanout::handle(&s.h, event).await.batch_item_failures.is_empty());
    let (batch, receipts) = lambda::receive(&s.clients.sqs, &s.resources.queue_url, 10, 30).await;
    assert_eq!(batch.records.len(), 2, "both copies in one batch");
    let job = |i: usize| -> Value { serde_json::from_str(batch.records[i].body.as_deref().unwrap_or("{}")).expect("job") };
    assert_eq!(
        (job(0)["delivery_id"].clone(), job(0)["attempts_before"].clone()),
        (job(1)["delivery_id"].clone(), job(1)["attempts_before"].clone()),
        "the same job twice"
    );
    let response = sender::handle(&s.h, batch).await;
    assert!(response.batch_item_failures.is_empty(), "the copy shares its original's outcome: {:?}", response.batch_item_failures);
    lambda::settle(&s.clients.sqs, &s.resources.queue_url, &receipts, &response).await;
    assert_eq!(rx.received_on("/replay").len(), 1, "one delivery");
    let (next, _) = lambda::receive(&s.clients.sqs, &s.resources.queue_url, 10, 30).await;
    assert!(next.records.is_empty(), "nothing left waiting for the visibility timeout");
}

#[tokio::test]
async fn duplicate_stream_records_create_no_duplicate_delivery() {
    let s = stack(&[]).await;
    let rx = Receiver::start().await;
    let (_, w) = s.call("POST", "/webhooks", Some(json!({"data": {"endpoint_url": rx.url("/dup"), "listened_events": ["*"]}}))).await;
    let wid = w["data"]["id"].as_str().expect("id").to_owned();
    s.produce("default", Some(r#"{"subject_type":"project","event_type":"DELETED"}"#)).await;
    let event = lambda::read_stream(&s.sdk, &s.resources.events_table).await;
    // The same batch seen twice (a retry after a crash), then once more after delivery.
    assert!(fanout::handle(&s.h, event.clone()).await.batch_item_failures.is_empty());
    assert!(fanout::handle(&s.h, event.clone()).await.batch_item_failures.is_empty());
    s.drain_queue_until(&s.h, 30, Duration::from_secs(20), || !rx.received_on("/dup").is_empty()).await;
    assert!(fanout::handle(&s.h, event).await.batch_item_failures.is_empty());
    // Drain whatever the replays queued: every such job is stale.
    loop {
        let (ev, receipts) = lambda::receive(&s.clients.sqs, &s.resources.queue_url, 10, 30).await;
        if receipts.is_empty() {
            break;
        }
        let r = sender::handle(&s.h, ev).await;
        assert!(r.batch_item_failures.is_empty());
        lambda::settle(&s.clients.sqs, &s.resources.queue_url, &receipts, &r).await;
    }
    assert_eq!(rx.received_on("/dup").len(), 1, "one delivery only");
    let (_, list) = s.call("GET", &format!("/webhooks/{wid}/deliveries"), None).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["data"][0]["attempts"], 1);
}

#[tokio::test]
async fn a_failing_receiver_is_retried_through_chained_delay_hops_then_fails() {
    // A 3 s retry step with SQS hops capped at 1 s: each retry waits through several
    // hops (the 30 m / 1 h / 5 h steps on AWS work the same way past SQS's 900 s cap).
    let s = stack(&[("HOOKLINE_RETRY_SCHEDULE", "3s"), ("HOOKLINE_SQS_MAX_DELAY", "1s")]).await;
    let rx = Receiver::start().await;
    rx.script("/down", &[], 503);
    let (_, w) = s.call("POST", "/webhooks", Some(json!({"data": {"endpoint_url": rx.url("/down"), "listened_events": ["*"]}}))).await;
    let wid = w["data"]["id"].as_str().expect("id").to_owned();
    s.produce("default", Some(r#"{"subject_type":"indicator","event_type":"UPDATED"}"#)).await;
    s.fan_out_stream().await;
    let handled = s.drain_queue_until(&s.h, 30, Duration::from_secs(30), || rx.received_on("/down").len() >= 2).await;
    let got = rx.received_on("/down");
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(2900), "the retry waited its step ({gap:?})");
    assert!(handled >= 4, "the wait was a chain of hops: {handled} messages handled");
    // The second failure was the last step: the delivery is failed, nothing more is queued.
    let (_, list) = s.call("GET", &format!("/webhooks/{wid}/deliveries"), None).await;
    assert_eq!(list["data"][0]["status"], "failed");
    assert_eq!(list["data"][0]["attempts"], 2);
    let (_, health) = s.call("GET", &format!("/webhooks/{wid}/health"), None).await;
    assert_eq!((health["data"]["total"].clone(), health["data"]["failed"].clone()), (json!(2), json!(2)));
}

#[tokio::test]
async fn a_kms_error_leaves_the_message_for_sqs_to_deliver_again() {
    let s = stack(&[]).await;
    let rx = Receiver::start().await;
    s.call("POST", "/webhooks", Some(json!({"data": {"endpoint_url": rx.url("/kms"), "listened_events": ["*"]}}))).await;
    s.produce("default", Some(r#"{"subject_type":"project","event_type":"UPDATED"}"#)).await;
    s.fan_out_stream().await;
    // A sender whose KMS key does not exist: signing fails.
    let mut broken_config = s.config.clone();
    broken_config.resources.kms_key_id = Some("alias/does-not-exist".into());
    let broken = hookline_aws::build(
        &s.clients,
        &broken_config,
        Arc::new(ReqwestHttpClient::new(&hookline_domain::webhook::EndpointPolicy::private_allowed()).expect("http")),
    );
    let (event, receipts) = lambda::receive(&s.clients.sqs, &s.resources.queue_url, 10, 1).await;
    assert_eq!(receipts.len(), 1);
    let response = sender::handle(&broken, event).await;
    assert_eq!(response.batch_item_failures.len(), 1, "the message is reported failed");
    assert_eq!(lambda::settle(&s.clients.sqs, &s.resources.queue_url, &receipts, &response).await, 0, "and not deleted");
    assert!(rx.received().is_empty());
    // After the visibility timeout SQS hands it out again, and a healthy sender delivers.
    s.drain_queue_until(&s.h, 30, Duration::from_secs(20), || !rx.received_on("/kms").is_empty()).await;
    assert_eq!(rx.received_on("/kms").len(), 1);
}

#[tokio::test]
async fn a_malformed_producer_item_is_reported_and_skipped_without_blocking_the_shard() {
    let s = stack(&[]).await;
    let rx = Receiver::start().await;
    s.call("POST", "/webhooks", Some(json!({"data": {"endpoint_url": rx.url("/ok"), "listened_events": ["*"]}}))).await;
    s.produce("default", None).await; // no `data`
    s.produce("default", Some(r#"{"event_type":"CREATED"}"#)).await; // no subject_type
    s.produce("default", Some("not json")).await;
    let good = s.produce("default", Some(r#"{"subject_type":"project","event_type":"CREATED"}"#)).await;
    let response = s.fan_out_stream().await;
    assert!(response.batch_item_failures.is_empty(), "bad items are skipped, not retried");
    s.drain_queue_until(&s.h, 30, Duration::from_secs(20), || !rx.received_on("/ok").is_empty()).await;
    let got = rx.received_on("/ok");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["event"]["id"], good.as_str());
}

#[tokio::test]
async fn a_standard_webhooks_delivery_goes_through_the_handlers_and_verifies_with_receivers_libraries() {
    let s = stack(&[]).await;
    let rx = Receiver::start().await;
    let (status, w) = s
        .call(
            "POST",
            "/webhooks",
            Some(json!({"data": {"endpoint_url": rx.url("/std"), "listened_events": ["*"], "signatures": ["standard_webhooks", "jwt"]}})),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    let wid = w["data"]["id"].as_str().expect("id").to_owned();
    let first = w["data"]["secret"].as_str().expect("secret shown once").to_owned();
    // The table holds only the sealed secret.
    let item = s
        .clients
        .dynamodb
        .get_item()
        .table_name(&s.resources.webhooks_table)
        .key("tenant", AttributeValue::S("default".into()))
        .key("id", AttributeValue::S(wid.clone()))
        .send()
        .await
        .expect("item");
    let dump = format!("{:?}", item.item());
    assert!(dump.contains("secrets") && !dump.contains(&first[6..]), "no readable secret in the table");

    let (status, r) = s.call("POST", &format!("/webhooks/{wid}/secret/rotate"), Some(json!({"data": {"grace_period": "1h"}}))).await;
    assert_eq!(status, 200, "{r}");
    let second = r["data"]["secret"].as_str().expect("new secret").to_owned();
    s.produce("default", Some(r#"{"subject_type":"project","event_type":"CREATED"}"#)).await;
    assert!(s.fan_out_stream().await.batch_item_failures.is_empty());
    s.drain_queue_until(&s.h, 30, Duration::from_secs(20), || !rx.received_on("/std").is_empty()).await;
    let got = &rx.received_on("/std")[0];
    let headers: std::collections::BTreeMap<String, String> =
        got.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    for lib in tests::standard::LIBRARIES {
        for secret in [&first, &second] {
            tests::standard::verify(lib, secret, &headers, &got.body).unwrap_or_else(|e| panic!("{lib}: {e}"));
        }
        assert!(tests::standard::verify(lib, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &headers, &got.body).is_err());
    }
    let (_, jwks) = lambda::call_api(&s.api, "GET", "/jwks/webhooks", None, None).await;
    jose::verify(got.header("x-webhook-signature").expect("the JWT too"), &got.body, &jwks).expect("JWT verifies");
}

#[tokio::test]
async fn the_kms_secret_box_opens_a_secret_for_its_own_webhook_only() {
    use hookline_domain::ids::{TenantId, WebhookId};
    use hookline_domain::ports::SecretBox;
    use hookline_domain::webhook::SigningSecret;
    let s = stack(&[]).await;
    let sealer = hookline_aws::KmsSecretBox::new(s.clients.kms.clone(), s.resources.secrets_kms_key_id.as_deref().expect("secrets key"));
    let (tenant, webhook) = (TenantId::default_tenant(), WebhookId::generate());
    let secret = SigningSecret::generate();
    let sealed = sealer.seal(&tenant, &webhook, &secret).await.expect("seal");
    assert!(!sealed.contains(&secret.expose()[6..]));
    // A fresh container (no cached data key) opens it through KMS, with the context.
    let fresh = hookline_aws::KmsSecretBox::new(s.clients.kms.clone(), s.resources.secrets_kms_key_id.as_deref().expect("secrets key"));
    assert_eq!(fresh.open(&tenant, &webhook, &sealed).await.expect("open"), secret);
    let other = hookline_aws::KmsSecretBox::new(s.clients.kms.clone(), s.resources.secrets_kms_key_id.as_deref().expect("secrets key"));
    assert!(other.open(&tenant, &WebhookId::generate(), &sealed).await.is_err(), "KMS refuses another webhook's context");
    assert!(other.open(&TenantId::parse("acme").expect("tenant"), &webhook, &sealed).await.is_err());
}

#[tokio::test]
async fn the_api_lambda_keeps_a_key_it_has_looked_up_for_a_minute_and_a_new_container_reads_the_table() {
    let s = stack(&[]).await;
    let (status, created) = s.call("POST", "/api-keys", Some(json!({"data": {"tenant": "acme", "scopes": ["webhooks:read"]}}))).await;
    assert_eq!(status, 201, "{created}");
    let key = created["data"]["key"].as_str().expect("key").to_owned();
    assert_eq!(lambda::call_api(&s.api, "GET", "/webhooks", Some(&key), None).await.0, 200);
    // The key's item removed from the table behind the API's back.
    let hash = ApiKeySecret::new(key.as_str()).hash();
    s.clients
        .dynamodb
        .delete_item()
        .table_name(&s.resources.api_keys_table)
        .key("hash", AttributeValue::S(hash))
        .condition_expression("attribute_exists(#h)")
        .expression_attribute_names("#h", "hash")
        .send()
        .await
        .expect("the key's item deleted");
    // This container has it at hand; a new container reads the table and refuses it.
    assert_eq!(lambda::call_api(&s.api, "GET", "/webhooks", Some(&key), None).await.0, 200);
    let fresh =
        api::app(hookline_aws::build(&s.clients, &s.config, s.h.http.clone()), None, Default::default()).await.expect("a new container");
    assert_eq!(lambda::call_api(&fresh, "GET", "/webhooks", Some(&key), None).await.0, 401);
}

#[tokio::test]
async fn in_wrapped_signing_mode_deliveries_verify_the_private_key_is_stored_only_encrypted_and_rotation_publishes_both_keys() {
    let s = stack(&[("HOOKLINE_SIGNING_MODE", "wrapped"), ("HOOKLINE_SIGNING_KEY_LABEL", "2026-12")]).await;
    let rx = Receiver::start().await;
    let (status, w) = s.call("POST", "/webhooks", Some(json!({"data": {"endpoint_url": rx.url("/w"), "listened_events": ["*"]}}))).await;
    assert_eq!(status, 201, "{w}");
    s.produce("default", Some(r#"{"subject_type":"project","event_type":"CREATED"}"#)).await;
    assert!(s.fan_out_stream().await.batch_item_failures.is_empty());
    s.drain_queue_until(&s.h, 30, Duration::from_secs(20), || !rx.received_on("/w").is_empty()).await;
    let first = rx.received_on("/w")[0].clone();
    let (_, jwks) = lambda::call_api(&s.api, "GET", "/jwks/webhooks", None, None).await;
    let token = first.header("x-webhook-signature").expect("signature").to_owned();
    jose::verify(&token, &first.body, &jwks).expect("a wrapped-key signature verifies against the API's JWKS");
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(jwks["keys"][0]["kid"], jose::thumbprint(&jwks["keys"][0]), "the same kid rule as the KMS mode");

    // Stored: the public key, and the private key only as KMS ciphertext bound to its label.
    let table = s.resources.signing_keys_table.clone().expect("table");
    let item = s.clients.dynamodb.get_item().table_name(&table).key("label", AttributeValue::S("2026-12".into())).send().await;
    let item = item.expect("get").item.expect("stored");
    let sealed = item["private_key"].as_b().expect("binary").as_ref().to_vec();
    assert!(aws_lc_rs::rsa::KeyPair::from_pkcs8(&sealed).is_err(), "no plaintext private key at rest");
    let wrapping = s.resources.secrets_kms_key_id.clone().expect("key");
    let under_other_label = s
        .clients
        .kms
        .decrypt()
        .key_id(&wrapping)
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(sealed))
        .encryption_context("hookline:signing-key", "2027-01")
        .send()
        .await;
    assert!(under_other_label.is_err(), "KMS opens a label's key only under its own label");

    // Rotation: deploy label 2027-01 with 2026-12 as previous. New deliveries carry the
    // new kid; the JWKS lists the new key first and the old one beside it, so the
    // signature made before the switch still verifies.
    let mut env: Vec<(String, String)> = infra::env_vars(&s.resources).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    env.extend(
        [
            ("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", "true"),
            ("HOOKLINE_SIGNING_MODE", "wrapped"),
            ("HOOKLINE_SIGNING_KEY_LABEL", "2027-01"),
            ("HOOKLINE_PREVIOUS_SIGNING_KEY_LABEL", "2026-12"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let config = AwsConfig::from_lookup(|k| env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone())).expect("config");
    let http = Arc::new(ReqwestHttpClient::new(&hookline_domain::webhook::EndpointPolicy::private_allowed()).expect("http"));
    let rotated = hookline_aws::build(&s.clients, &config, http);
    let api = api::app(rotated.clone(), None, Default::default()).await.expect("api app");
    let (_, both) = lambda::call_api(&api, "GET", "/jwks/webhooks", None, None).await;
    assert_eq!(both["keys"].as_array().map(Vec::len), Some(2), "{both}");
    assert_eq!(both["keys"][1]["kid"], jwks["keys"][0]["kid"], "the previous key stays published, after the current one");
    jose::verify(&token, &first.body, &both).expect("a signature made before the switch still verifies");
    s.produce("default", Some(r#"{"subject_type":"project","event_type":"UPDATED"}"#)).await;
    assert!(s.fan_out_stream().await.batch_item_failures.is_empty());
    s.drain_queue_until(&rotated, 30, Duration::from_secs(20), || rx.received_on("/w").len() == 2).await;
    let second = rx.received_on("/w")[1].clone();
    let header = jsonwebtoken::decode_header(second.header("x-webhook-signature").expect("signature")).expect("header");
    assert_eq!(Some(header.kid.expect("kid").as_str()), both["keys"][0]["kid"].as_str(), "signed with the new label's key");
    jose::verify(second.header("x-webhook-signature").expect("signature"), &second.body, &both).expect("verifies");
}

#[tokio::test]
async fn a_stream_batch_queues_its_jobs_together_and_a_queue_failure_retries_from_the_earliest_unqueued_record() {
    let s = stack(&[]).await;
    let rx = Receiver::start().await;
    s.call("POST", "/webhooks", Some(json!({"data": {"endpoint_url": rx.url("/batch"), "listened_events": ["*"]}}))).await;
    for i in 0..12 {
        s.produce("default", Some(&format!(r#"{{"subject_type":"project","event_type":"UPDATED","subject_id":"{i}"}}"#))).await;
    }
    let event = lambda::read_stream(&s.sdk, &s.resources.events_table).await;
    assert_eq!(event.records.len(), 12);
    // A queue that does not exist: the deliveries are stored, no job is queued, and
    // Lambda is told to retry from the first record, whose jobs were not queued.
    let mut broken_config = s.config.clone();
    broken_config.resources.queue_url = format!("{}-missing", s.resources.queue_url);
    let http = Arc::new(ReqwestHttpClient::new(&hookline_domain::webhook::EndpointPolicy::private_allowed()).expect("http"));
    let broken = hookline_aws::build(&s.clients, &broken_config, http);
    let response = fanout::handle(&broken, event.clone()).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, event.records[0].change.sequence_number);
    // Lambda hands the batch out again: every event is delivered, once.
    assert!(fanout::handle(&s.h, event).await.batch_item_failures.is_empty());
    s.drain_queue_until(&s.h, 30, Duration::from_secs(30), || rx.received_on("/batch").len() >= 12).await;
    let mut subjects: Vec<String> =
        rx.received_on("/batch").iter().map(|r| r.json()["event"]["subject_id"].as_str().expect("subject").to_owned()).collect();
    subjects.sort_by_key(|s| s.parse::<u32>().unwrap_or(0));
    assert_eq!(subjects, (0..12).map(|i| i.to_string()).collect::<Vec<_>>(), "each event once");
}
