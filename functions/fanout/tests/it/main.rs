//! The `fanout` binary, run once against a local Lambda runtime API and moto's server.

use hookline_aws::{DynamoDbWebhookStore, SqsDeliveryQueue};
use hookline_domain::ports::{DeliveryQueue, WebhookStore};
use serde_json::json;
use tests::moto;
use tests::runtime_api::RuntimeApi;

#[tokio::test]
async fn the_binary_fans_a_stream_record_out_from_its_environment_alone() {
    let (clients, resources) = moto::provisioned().await;
    let tenant = tests::contract::tenant("default");
    let webhook = tests::contract::webhook(&tenant, &["project.*"], tests::contract::now());
    DynamoDbWebhookStore::new(clients.dynamodb.clone(), &resources.webhooks_table).insert(&webhook).await.expect("webhook");
    let event_id = hookline_domain::ids::EventId::generate();
    let record = |seq: &str, image: serde_json::Value| {
        json!({
            "eventID": seq, "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2026",
            "dynamodb": {"ApproximateCreationDateTime": 1795000000, "Keys": {}, "NewImage": image, "SequenceNumber": seq, "SizeBytes": 100, "StreamViewType": "NEW_IMAGE"}
        })
    };
    let event = json!({"Records": [
        record("100", json!({"tenant": {"S": "default"}, "id": {"S": "not-a-uuid"}})),
        record("200", json!({
            "tenant": {"S": "default"}, "id": {"S": event_id.to_string()}, "created_at": {"S": "2026-11-23T10:00:00Z"},
            "data": {"S": "{\"subject_type\":\"project\",\"event_type\":\"CREATED\"}"}
        })),
    ]});
    let runtime = RuntimeApi::start(event).await;
    let out = runtime.invoke(env!("CARGO_BIN_EXE_fanout"), &moto::function_env(&resources)).await;
    assert_eq!(out.kind, "response", "{:?}", out.body);
    assert_eq!(out.body, json!({"batchItemFailures": []}), "the malformed record is skipped, the good one fanned out");
    let queue = SqsDeliveryQueue::new(clients.sqs, &resources.queue_url);
    let jobs = queue.take_due(chrono::Utc::now(), 10, std::time::Duration::from_secs(30)).await.expect("take");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job().expect("a job").event_id, event_id);
    assert_eq!(jobs[0].job().expect("a job").webhook_id, webhook.id);
    println!("fanout init to first poll: {:?}", out.init);
}
