//! Bulk recovery in local mode, through the real binary: 1,000 failed deliveries
//! counted by a dry run and sent again, fresh traffic flowing meanwhile; and a
//! recovery cut by `kill -9`, resumed after the restart.

use crate::crash::start_binary_env;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::process::Child;
use std::time::Duration;
use tests::client::ApiClient;
use tests::receiver::{Received, Receiver};

const FAILED: usize = 1000;

async fn start(dir: &Path, log: &str, rate: &str) -> (Child, ApiClient) {
    let (child, base) = tokio::task::spawn_blocking({
        let (p, log, rate) = (dir.to_owned(), log.to_owned(), rate.to_owned());
        // No retries: a delivery the receiver refuses fails at once.
        move || start_binary_env(&p, &log, "warn", &[("HOOKLINE_RETRY_SCHEDULE", ""), ("HOOKLINE_RECOVERY_RATE", &rate)])
    })
    .await
    .expect("start");
    let admin = std::fs::read_to_string(dir.join("admin-key")).expect("admin key file");
    (child, ApiClient::new(&base, Some(admin.trim())))
}

fn event_id(r: &Received) -> String {
    r.json()["event"]["id"].as_str().unwrap_or_default().to_owned()
}

/// A webhook on `/down` whose first [`FAILED`] deliveries all failed (the receiver
/// answered 503), and the time just before they were published.
async fn outage(api: &ApiClient, rx: &Receiver) -> (String, String) {
    rx.script("/down", &[503; FAILED], 200);
    let since = hookline_domain::time::format(&(chrono::Utc::now() - chrono::Duration::seconds(1)));
    let webhook = api.create_webhook(&rx.url("/down"), &["project.updated"]).await["id"].as_str().expect("id").to_owned();
    for chunk in (0..FAILED).collect::<Vec<_>>().chunks(50) {
        let sends = chunk.iter().map(|i| {
            let api = api.clone();
            async move { api.publish(json!({"subject_type": "project", "event_type": "UPDATED", "subject_id": i.to_string()})).await }
        });
        futures::future::join_all(sends).await;
    }
    rx.wait_until(Duration::from_secs(120), |all| all.len() >= FAILED).await;
    (webhook, since)
}

/// Asks for a dry run until it counts every failed delivery (the last failures are
/// being recorded), and returns its count.
async fn dry_run(api: &ApiClient, webhook: &str, since: &str) -> u64 {
    for _ in 0..200 {
        let a = api.post(&format!("/webhooks/{webhook}/recover"), json!({"data": {"since": since, "dry_run": true}})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let n = a.data()["would_send"].as_u64().expect("count");
        if n == FAILED as u64 {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the failed deliveries were never all counted");
}

async fn recovery_when(api: &ApiClient, at: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..1200 {
        let a = api.get(at).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        if done(a.data()) {
            return a.data().clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the recovery never got there");
}

/// Waits until every failed delivery has been accepted once (a recovery's deliveries
/// stay failed until their turn comes, so their status says nothing meanwhile).
async fn all_accepted(rx: &Receiver) {
    for _ in 0..600 {
        if accepted(rx).len() >= FAILED {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("only {} of the deliveries were accepted", accepted(rx).len());
}

/// Accepted (200) deliveries per event at `/down`.
fn accepted(rx: &Receiver) -> HashMap<String, usize> {
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for r in rx.received_on("/down").iter().filter(|r| r.answered == 200) {
        *per_event.entry(event_id(r)).or_default() += 1;
    }
    per_event
}

// Several threads: the receiver answers while the test polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_sends_each_failed_delivery_once_as_its_dry_run_counted_while_fresh_traffic_flows() {
    let dir = tempfile::tempdir().expect("dir");
    let rx = Receiver::start().await;
    let (mut child, api) = start(dir.path(), "run.log", "100").await;
    let (webhook, since) = outage(&api, &rx).await;
    let counted = dry_run(&api, &webhook, &since).await;

    let body = json!({"data": {"since": since}});
    let started = api.post(&format!("/webhooks/{webhook}/recover"), body.clone()).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let at = format!("/webhooks/{webhook}/recoveries/{}", started.data()["id"].as_str().expect("id"));
    assert_eq!((started.data()["matched"].as_u64(), started.data()["state"].as_str()), (Some(counted), Some("running")));
    let again = api.post(&format!("/webhooks/{webhook}/recover"), body).await;
    assert_eq!(again.status, StatusCode::OK, "the same request names the same recovery");
    assert_eq!(again.data()["id"], started.data()["id"]);

    // Fresh traffic meanwhile: another webhook's deliveries go through while the
    // recovery (1,000 at 100 a second) is still running.
    let fresh = api.create_webhook(&rx.url("/fresh"), &["project.created"]).await;
    assert!(fresh["id"].is_string());
    for i in 0..20 {
        api.publish(json!({"subject_type": "project", "event_type": "CREATED", "subject_id": format!("fresh-{i}")})).await;
    }
    rx.wait_for("/fresh", 20, Duration::from_secs(30)).await;
    let meanwhile = api.get(&at).await;
    assert_eq!(meanwhile.data()["state"], "running", "fresh deliveries did not wait for the recovery: {}", meanwhile.body);

    let done = recovery_when(&api, &at, |r| r["state"] == "done").await;
    assert_eq!(done["sent"].as_u64(), Some(counted), "sent what the dry run counted: {done}");
    all_accepted(&rx).await;
    let per_event = accepted(&rx);
    assert_eq!(per_event.len(), FAILED, "every failed delivery was sent again");
    assert!(per_event.values().all(|n| *n == 1), "each once");
    let down = rx.received_on("/down");
    let delivery = |r: &Received| r.json()["delivery"]["id"].as_str().unwrap_or_default().to_owned();
    let first: HashMap<String, String> = down.iter().filter(|r| r.answered == 503).map(|r| (event_id(r), delivery(r))).collect();
    assert!(down.iter().filter(|r| r.answered == 200).all(|r| first[&event_id(r)] == delivery(r)), "under the same delivery id");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.received_on("/down").len(), 2 * FAILED, "nothing more was sent");

    let listed = api.get(&format!("/webhooks/{webhook}/recoveries")).await;
    assert_eq!(listed.data().as_array().map(Vec::len), Some(1));
    child.kill().expect("stop");
    child.wait().expect("reap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_cut_by_a_kill_resumes_after_the_restart_and_sends_each_delivery_at_least_once() {
    let dir = tempfile::tempdir().expect("dir");
    let rx = Receiver::start().await;
    let (mut child, api) = start(dir.path(), "run1.log", "100").await;
    let (webhook, since) = outage(&api, &rx).await;
    let counted = dry_run(&api, &webhook, &since).await;
    let started = api.post(&format!("/webhooks/{webhook}/recover"), json!({"data": {"since": since}})).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let at = format!("/webhooks/{webhook}/recoveries/{}", started.data()["id"].as_str().expect("id"));

    // Killed a quarter of the way through (1,000 at 100 a second).
    rx.wait_until(Duration::from_secs(60), |all| all.iter().filter(|r| r.answered == 200).count() >= 250).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let at_kill = accepted(&rx).len();
    assert!(at_kill < FAILED, "the kill came before the recovery was through ({at_kill} sent)");

    let (mut child, api) = start(dir.path(), "run2.log", "100").await;
    let done = recovery_when(&api, &at, |r| r["state"] == "done").await;
    all_accepted(&rx).await;
    let per_event = accepted(&rx);
    let duplicates: usize = per_event.values().map(|n| n - 1).sum();
    println!(
        "recovery crash test: {counted} counted, {at_kill} sent before the kill, all {} sent after the restart, {duplicates} sent twice; the recovery says {} sent",
        per_event.len(),
        done["sent"]
    );
    assert_eq!(per_event.len(), FAILED, "every failed delivery was sent again");
    // A duplicate can only come from the page in flight at the kill: its step runs again.
    assert!(duplicates <= 2 * hookline_domain::recovery::PAGE as usize, "{duplicates} duplicates");
    child.kill().expect("stop");
    child.wait().expect("reap");
}
