//! Plays Lambda's part around the handlers, with the event shapes Lambda sends:
//! reads the events table's stream through the DynamoDB Streams API and turns records
//! into a stream event; receives SQS messages and turns them into an SQS event,
//! deleting the ones the handler did not report as failures; and wraps HTTP calls
//! in API Gateway HTTP API (payload 2.0) events.

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use serde_json::{Value, json};
use std::collections::HashMap;

/// DynamoDB JSON (`{"S": "..."}`) of a stream attribute value.
fn attr_json(v: &AttributeValue) -> Value {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b.as_ref()) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::M(m) => json!({ "M": image_json(m) }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(attr_json).collect::<Vec<_>>() }),
        AttributeValue::Ss(ss) => json!({ "SS": ss }),
        AttributeValue::Ns(ns) => json!({ "NS": ns }),
        AttributeValue::Bs(bs) => json!({ "BS": bs.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>() }),
        _ => json!({ "NULL": true }),
    }
}

fn image_json(m: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), attr_json(v))).collect())
}

/// Reads every record of every shard of a table's stream so far, as one Lambda event.
pub async fn read_stream(sdk: &aws_config::SdkConfig, table: &str) -> StreamEvent {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let streams = aws_sdk_dynamodbstreams::Client::new(sdk);
    let arn = ddb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("describe table")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("stream arn");
    let desc = streams.describe_stream().stream_arn(&arn).send().await.expect("describe stream");
    let mut records = Vec::new();
    for shard in desc.stream_description().map(|d| d.shards()).unwrap_or_default() {
        let it = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap_or_default())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("shard iterator");
        let out = streams.get_records().shard_iterator(it.shard_iterator().unwrap_or_default()).send().await.expect("get records");
        for r in out.records() {
            let d = r.dynamodb().expect("stream record");
            records.push(json!({
                "eventID": r.event_id(),
                "eventName": r.event_name().map(|n| n.as_str()),
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "eventSourceARN": arn,
                "dynamodb": {
                    // Lambda sends whole seconds (see AWS_OFFLINE notes on fractional values).
                    "ApproximateCreationDateTime": d.approximate_creation_date_time().map(|t| t.secs()).unwrap_or(0),
                    "Keys": d.keys().map(image_json).unwrap_or(json!({})),
                    "NewImage": d.new_image().map(image_json).unwrap_or(json!({})),
                    "SequenceNumber": d.sequence_number(),
                    "SizeBytes": d.size_bytes().unwrap_or(0),
                    "StreamViewType": "NEW_IMAGE",
                }
            }));
        }
    }
    serde_json::from_value(json!({ "Records": records })).expect("stream event")
}

/// Receives up to `max` messages (visible for `visibility` seconds) as one SQS event.
pub async fn receive(sqs: &aws_sdk_sqs::Client, queue_url: &str, max: i32, visibility: i32) -> (SqsEvent, HashMap<String, String>) {
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max)
        .visibility_timeout(visibility)
        .wait_time_seconds(0)
        .send()
        .await
        .expect("receive");
    let mut receipts = HashMap::new();
    let records: Vec<Value> = out
        .messages()
        .iter()
        .map(|m| {
            receipts.insert(m.message_id().unwrap_or_default().to_owned(), m.receipt_handle().unwrap_or_default().to_owned());
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "md5OfBody": m.md5_of_body(),
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:deliveries",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    (serde_json::from_value(json!({ "Records": records })).expect("sqs event"), receipts)
}

/// Deletes the messages a handler did not report as failed, as Lambda does.
pub async fn settle(sqs: &aws_sdk_sqs::Client, queue_url: &str, receipts: &HashMap<String, String>, response: &SqsBatchResponse) -> usize {
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    let mut deleted = 0;
    for (id, receipt) in receipts {
        if !failed.contains(&id.as_str()) {
            sqs.delete_message().queue_url(queue_url).receipt_handle(receipt).send().await.expect("delete");
            deleted += 1;
        }
    }
    deleted
}

/// An API Gateway HTTP API (payload 2.0) request event, as `lambda_http` receives it.
pub fn api_request(method: &str, path: &str, key: Option<&str>, body: Option<&Value>) -> lambda_http::Request {
    lambda_http::request::from_str(&api_request_json(method, path, key, body).to_string()).expect("API Gateway event")
}

/// The JSON of an API Gateway HTTP API (payload 2.0) request event.
pub fn api_request_json(method: &str, path: &str, key: Option<&str>, body: Option<&Value>) -> Value {
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut headers = json!({ "content-type": "application/json", "host": "hooks.example.com" });
    if let Some(k) = key {
        headers["authorization"] = json!(format!("Bearer {k}"));
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "hooks.example.com",
            "domainPrefix": "hooks",
            "http": { "method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "tests" },
            "requestId": "req",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795000000000u64
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    });
    event
}

/// Calls the API Lambda's router with an API Gateway event; returns status and JSON.
pub async fn call_api(app: &axum::Router, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let (status, _, bytes) = call_api_raw(app, method, path, key, body).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// As [`call_api`], with the answer's headers and raw body.
pub async fn call_api_raw(
    app: &axum::Router,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = api_request(method, path, key, body.as_ref());
    let (parts, body) = req.into_parts();
    let req = axum::http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()));
    let resp = app.clone().oneshot(req).await.expect("router");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, bytes.to_vec())
}
