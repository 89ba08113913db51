//! A webhook's delivery policy in AWS mode: stored in DynamoDB through the API Lambda's
//! handler, its filter applied by the fan-out handler, its method, body shape and own
//! retry schedule by the sender's.

use crate::aws_pipeline::stack;
use serde_json::json;
use std::time::Duration;
use tests::receiver::Receiver;
use tests::{jose, lambda};

#[tokio::test]
async fn a_webhook_s_policy_goes_through_the_handlers_filter_method_shape_and_schedule() {
    // The deployment retries after an hour; the webhook after a second.
    let s = stack(&[("HOOKLINE_RETRY_SCHEDULE", "1h")]).await;
    let rx = Receiver::start().await;
    rx.script("/put", &[503], 200);
    let body = json!({"data": {
        "endpoint_url": rx.url("/put"), "listened_events": ["project.*"], "name": "Billing",
        "method": "PUT", "payload_format": "standard_webhooks", "retry_schedule": "1s", "max_age": "1h",
        "filter": {"metadata": {"status": {"$in": ["active", "trial"]}}},
    }});
    let (status, w) = s.call("POST", "/webhooks", Some(body)).await;
    assert_eq!(status, 201, "{w}");
    let wid = w["data"]["id"].as_str().expect("id").to_owned();
    let (_, read) = s.call("GET", &format!("/webhooks/{wid}"), None).await;
    assert_eq!(
        (
            read["data"]["name"].as_str(),
            read["data"]["retry_schedule"].as_str(),
            read["data"]["filter"]["metadata"]["status"]["$in"][1].as_str()
        ),
        (Some("Billing"), Some("1s"), Some("trial")),
        "the policy reads back from DynamoDB: {read}"
    );

    let wanted = s.produce("default", Some(r#"{"subject_type":"project","event_type":"UPDATED","metadata":{"status":"trial"}}"#)).await;
    s.produce("default", Some(r#"{"subject_type":"project","event_type":"UPDATED","metadata":{"status":"archived"}}"#)).await;
    s.produce("default", Some(r#"{"subject_type":"project","event_type":"UPDATED"}"#)).await;
    let fanned = s.fan_out_stream().await;
    assert!(fanned.batch_item_failures.is_empty());
    s.drain_queue_until(&s.h, 30, Duration::from_secs(30), || rx.received_on("/put").iter().any(|r| r.answered == 200)).await;

    let got = rx.received_on("/put");
    assert_eq!(got.len(), 2, "one event passed the filter; its first attempt failed and was retried");
    assert!(got[1].at - got[0].at >= Duration::from_millis(900), "on the webhook's own schedule, not the deployment's hour");
    let (_, jwks) = lambda::call_api(&s.api, "GET", "/jwks/webhooks", None, None).await;
    for r in &got {
        assert_eq!(r.method, "PUT");
        let b = r.json();
        assert_eq!((b["type"].as_str(), b["data"]["id"].as_str()), (Some("project.updated"), Some(wanted.as_str())));
        assert!(r.header("webhook-signature").is_none() && r.header("x-webhook-signature").is_some(), "the JWT, as the webhook signs");
        jose::verify(r.header("x-webhook-signature").expect("jwt"), &r.body, &jwks).expect("the JWT covers the Standard Webhooks body");
    }
}
