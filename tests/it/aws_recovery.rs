//! Bulk recovery in AWS mode: the API Lambda's handler counts and starts it, and the
//! sender's handler runs its steps as SQS messages, a page per message, beside the
//! delivery jobs they queue.

use crate::aws_pipeline::stack;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tests::receiver::Receiver;

#[tokio::test]
async fn a_recovery_goes_through_the_queue_a_page_per_message_and_sends_what_its_dry_run_counted() {
    const FAILED: usize = 150;
    let s = stack(&[("HOOKLINE_RETRY_SCHEDULE", ""), ("HOOKLINE_RECOVERY_RATE", "1000")]).await;
    let rx = Receiver::start().await;
    rx.script("/down", &[503; FAILED], 200);
    let since = hookline_domain::time::format(&(chrono::Utc::now() - chrono::Duration::seconds(1)));
    let (status, w) =
        s.call("POST", "/webhooks", Some(json!({"data": {"endpoint_url": rx.url("/down"), "listened_events": ["project.*"]}}))).await;
    assert_eq!(status, 201, "{w}");
    let wid = w["data"]["id"].as_str().expect("id").to_owned();
    for i in 0..FAILED {
        s.produce("default", Some(&format!(r#"{{"subject_type":"project","event_type":"UPDATED","subject_id":"{i}"}}"#))).await;
    }
    let fanned = s.fan_out_stream().await;
    assert!(fanned.batch_item_failures.is_empty());
    s.drain_queue_until(&s.h, 30, Duration::from_secs(120), || rx.received_on("/down").len() >= FAILED).await;

    let at = format!("/webhooks/{wid}/recover");
    let mut counted = 0;
    for _ in 0..50 {
        let (status, dry) = s.call("POST", &at, Some(json!({"data": {"since": since, "dry_run": true}}))).await;
        assert_eq!(status, 200, "{dry}");
        counted = dry["data"]["would_send"].as_u64().expect("count");
        if counted == FAILED as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(counted, FAILED as u64, "the dry run counts every failed delivery");
    let (status, started) = s.call("POST", &at, Some(json!({"data": {"since": since}}))).await;
    assert_eq!(status, 202, "{started}");
    let recovery = format!("/webhooks/{wid}/recoveries/{}", started["data"]["id"].as_str().expect("id"));

    let accepted = || rx.received_on("/down").iter().filter(|r| r.answered == 200).count();
    let handled = s.drain_queue_until(&s.h, 30, Duration::from_secs(120), || accepted() >= FAILED).await;
    assert!(handled > FAILED, "the steps were messages of their own beside the jobs: {handled} handled");
    let mut done = json!(null);
    for _ in 0..50 {
        let (_, r) = s.call("GET", &recovery, None).await;
        done = r["data"].clone();
        if done["state"] == "done" {
            break;
        }
        // The last step may still be in the queue.
        let (event, receipts) = tests::lambda::receive(&s.clients.sqs, &s.resources.queue_url, 10, 30).await;
        let response = sender::handle(&s.h, event).await;
        tests::lambda::settle(&s.clients.sqs, &s.resources.queue_url, &receipts, &response).await;
    }
    assert_eq!(
        (done["state"].as_str(), done["sent"].as_u64(), done["matched"].as_u64()),
        (Some("done"), Some(counted), Some(counted)),
        "{done}"
    );
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for r in rx.received_on("/down").iter().filter(|r| r.answered == 200) {
        *per_event.entry(r.json()["event"]["id"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    assert_eq!(per_event.len(), FAILED, "every failed delivery was sent again");
    assert!(per_event.values().all(|n| *n == 1), "each once");
}
