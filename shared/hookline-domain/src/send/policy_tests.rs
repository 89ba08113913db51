//! The send step under a webhook's own delivery policy: its method, body shape, retry
//! schedule and maximum age.

use super::{SendReport, send};
use crate::Policy;
use crate::fakes::{Fakes, start};
use crate::ids::TenantId;
use crate::ports::HttpOutcome;
use crate::retry::RetrySchedule;
use crate::webhook::delivery_policy::{parse_max_age, parse_retry_schedule};
use crate::webhook::{HttpMethod, PayloadFormat, Webhook};
use bytes::Bytes;
use std::time::Duration;

fn refused() -> HttpOutcome {
    HttpOutcome::Response { status: 503, retry_after: None, body: Bytes::new(), elapsed: Duration::from_millis(5) }
}

fn fakes() -> Fakes {
    // The deployment retries after an hour.
    Fakes::builder().policy(Policy { retry: RetrySchedule::new(vec![Duration::from_secs(3600)]), ..Policy::default() }).build()
}

async fn first_attempt(f: &Fakes, w: &Webhook) -> SendReport {
    let event = f.add_event(&TenantId::default_tenant(), "project.created");
    let (_, job) = f.add_delivery(w, &event);
    f.http.answer(refused());
    send(&f.h, &job).await.unwrap()
}

#[tokio::test]
async fn a_webhook_with_its_own_schedule_retries_on_it_and_another_on_the_deployment_s() {
    let f = fakes();
    let own = {
        let mut w = f.add_webhook(&TenantId::default_tenant(), &["project.*"]);
        w.policy.retry_schedule = Some(parse_retry_schedule("10s,20s").unwrap());
        f.webhooks.put(&w);
        w
    };
    let plain = f.add_webhook(&TenantId::default_tenant(), &["project.*"]);
    let SendReport::Retrying { attempt, next_at } = first_attempt(&f, &own).await else { panic!("retrying") };
    assert_eq!(next_at - attempt.attempted_at, chrono::Duration::seconds(10) + chrono::Duration::milliseconds(5));
    let SendReport::Retrying { attempt, next_at } = first_attempt(&f, &plain).await else { panic!("retrying") };
    assert_eq!(next_at - attempt.attempted_at, chrono::Duration::hours(1) + chrono::Duration::milliseconds(5));
}

#[tokio::test]
async fn a_retry_past_the_maximum_age_is_not_made() {
    let f = fakes();
    let mut w = f.add_webhook(&TenantId::default_tenant(), &["project.*"]);
    w.policy.max_age = Some(parse_max_age("30m").unwrap());
    f.webhooks.put(&w);
    let report = first_attempt(&f, &w).await;
    assert!(matches!(&report, SendReport::Failed { reason, .. } if reason == "maximum age reached"), "{report:?}");
    w.policy.max_age = Some(parse_max_age("2h").unwrap());
    f.webhooks.put(&w);
    assert!(matches!(first_attempt(&f, &w).await, SendReport::Retrying { .. }), "within its age it retries");
}

#[tokio::test]
async fn deliveries_go_with_the_webhook_s_method_and_body_shape() {
    let f = fakes();
    let mut w = f.add_webhook(&TenantId::default_tenant(), &["project.*"]);
    w.policy.method = HttpMethod::Put;
    w.policy.payload_format = PayloadFormat::StandardWebhooks;
    f.webhooks.put(&w);
    first_attempt(&f, &w).await;
    let sent = f.http.requests().remove(0);
    assert_eq!(sent.method, HttpMethod::Put);
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!((body["type"].as_str(), body["data"]["subject_type"].as_str()), (Some("project.created"), Some("project")));
    assert!(start() <= crate::time::parse(body["timestamp"].as_str().unwrap()).unwrap());
}
