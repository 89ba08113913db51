//! Operational events end to end in local mode: a 410 disables one webhook, and another
//! that subscribed to `hookline_webhook.disabled` receives the event, signed like any
//! delivery; tenants cannot publish those names themselves.

use crate::support::{WAIT, spawn_app};
use serde_json::json;
use tests::receiver::Receiver;

#[tokio::test]
async fn a_webhook_disabled_by_a_410_is_announced_to_the_webhook_that_subscribed() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.script("/gone", &[], 410);
    let gone = app.api.create_webhook(&rx.url("/gone"), &["project.*"]).await;
    let gone_id = gone["id"].as_str().expect("id").to_owned();
    app.api.create_webhook(&rx.url("/watch"), &["hookline_webhook.disabled"]).await;
    app.api.create_webhook(&rx.url("/all"), &["*"]).await;
    let event = app.api.publish(json!({"subject_type": "project", "event_type": "CREATED"})).await;

    let got = rx.wait_for("/watch", 1, WAIT).await;
    let body = got[0].json();
    let op = &body["event"];
    assert_eq!((op["subject_type"].as_str(), op["event_type"].as_str()), (Some("hookline_webhook"), Some("DISABLED")));
    assert_eq!(op["subject_id"], gone_id.as_str());
    assert_eq!(op["webhook"]["endpoint"], rx.url("").trim_end_matches('/'), "no path or query");
    assert_eq!(op["reason"], "receiver answered 410 Gone");
    assert_eq!(op["last"]["attempt"]["status_code"], 410);
    assert_eq!(op["last"]["event"]["id"], event["id"]);
    assert!(op["disabled_at"].is_string());
    assert!(got[0].header("x-webhook-signature").is_some(), "signed like any delivery");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(rx.received_on("/gone").len(), 1, "the disabled webhook gets nothing more");
    assert!(rx.received_on("/all").iter().all(|r| r.json()["event"]["subject_type"] == "project"), "* does not take operational events");
    let w = app.api.get(&format!("/webhooks/{gone_id}")).await;
    assert_eq!(w.data()["active"], false);

    let refused = app.api.post("/events", json!({"data": {"subject_type": "hookline_webhook", "event_type": "DISABLED"}})).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (422, "reserved_event"));
}
