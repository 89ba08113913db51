//! The `sender` binary, run once against a local Lambda runtime API and moto's server.

use hookline_domain::catalog::EventName;
use hookline_domain::delivery::Delivery;
use hookline_domain::ids::{EventId, WebhookId};
use serde_json::json;
use tests::moto;
use tests::runtime_api::RuntimeApi;

#[tokio::test]
async fn the_binary_reports_per_message_from_its_environment_alone() {
    let (_, resources) = moto::provisioned().await;
    // A job for a delivery that does not exist is stale (finished); a body that is not
    // a job is a failure, left for SQS to redeliver and eventually dead-letter.
    let orphan = Delivery::new(
        tests::contract::tenant("default"),
        WebhookId::generate(),
        EventId::generate(),
        EventName::parse("project.created").expect("name"),
        chrono::Utc::now(),
        chrono::Utc::now(),
    );
    let job = serde_json::to_string(&orphan.job(chrono::Utc::now(), false)).expect("job");
    let msg = |id: &str, body: &str| {
        json!({"messageId": id, "receiptHandle": "r", "body": body, "md5OfBody": "", "attributes": {}, "messageAttributes": {},
               "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:deliveries", "awsRegion": "us-east-1"})
    };
    let event = json!({"Records": [msg("m-stale", &job), msg("m-garbage", "{not a job")]});
    let runtime = RuntimeApi::start(event).await;
    let out = runtime.invoke(env!("CARGO_BIN_EXE_sender"), &moto::function_env(&resources)).await;
    assert_eq!(out.kind, "response", "{:?}", out.body);
    assert_eq!(out.body, json!({"batchItemFailures": [{"itemIdentifier": "m-garbage"}]}));
    println!("sender init to first poll: {:?}", out.init);
}
