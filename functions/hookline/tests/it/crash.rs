//! Crash safety: `kill -9` in the middle of a burst, restart, and nothing is lost.

use reqwest::StatusCode;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tests::client::ApiClient;
use tests::receiver::Receiver;

/// Starts the real `hookline` binary on a free port over `data_dir`; returns the
/// process and the API's base URL, read from its start-up line.
pub fn start_binary(data_dir: &Path, log_name: &str) -> (Child, String) {
    start_binary_with(data_dir, log_name, "warn")
}

/// As [`start_binary`], logging at `level` to `<data_dir>/<log_name>`.
pub fn start_binary_with(data_dir: &Path, log_name: &str, level: &str) -> (Child, String) {
    start_binary_env(data_dir, log_name, level, &[])
}

/// As [`start_binary_with`], with more variables set (or the defaults changed).
pub fn start_binary_env(data_dir: &Path, log_name: &str, level: &str, vars: &[(&str, &str)]) -> (Child, String) {
    let log = std::fs::File::create(data_dir.join(log_name)).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookline"))
        .env("HOOKLINE_DATA_DIR", data_dir)
        .env("HOOKLINE_LISTEN", "127.0.0.1:0")
        .env("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", "true")
        .env("HOOKLINE_RETRY_SCHEDULE", "1s,1s,1s,1s")
        .env("HOOKLINE_DELIVERY_TIMEOUT", "2s")
        .env("HOOKLINE_LOG", level)
        // Last: a caller's variables win over the defaults above.
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start hookline");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("hookline exited before listening").expect("read stdout");
        if let Some(url) = line.strip_prefix("Hookline listening on ") {
            break url.trim().to_owned();
        }
    };
    (child, base)
}

#[tokio::test]
async fn sigkill_mid_burst_then_restart_loses_no_delivery() {
    const EVENTS: usize = 350;
    let dir = tempfile::tempdir().expect("dir");
    let rx = Receiver::start().await;
    // One receiver fails its first 150 requests, so retries are pending at the kill.
    rx.script("/flaky", &[500; 150], 200);
    let (mut child, base) = tokio::task::spawn_blocking({
        let p = dir.path().to_owned();
        move || start_binary(&p, "run1.log")
    })
    .await
    .expect("start");
    let admin = std::fs::read_to_string(dir.path().join("admin-key")).expect("admin key file");
    let api = ApiClient::new(&base, Some(admin.trim()));
    let paths = ["/a", "/b", "/flaky"];
    for p in paths {
        api.create_webhook(&rx.url(p), &["*"]).await;
    }
    let mut event_ids = Vec::with_capacity(EVENTS);
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(25) {
        let sends = chunk.iter().map(|i| {
            let api = api.clone();
            async move { api.publish(json!({"subject_type": "project", "event_type": "UPDATED", "subject_id": i.to_string()})).await }
        });
        for e in futures::future::join_all(sends).await {
            event_ids.push(e["id"].as_str().expect("id").to_owned());
        }
    }
    // Kill while the burst is being delivered.
    rx.wait_until(Duration::from_secs(60), |all| all.len() >= 300).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let at_kill = rx.received().len();
    assert!(at_kill < EVENTS * paths.len() + 150, "the kill came before the burst was through ({at_kill} received)");

    let (mut child, base) = tokio::task::spawn_blocking({
        let p = dir.path().to_owned();
        move || start_binary(&p, "run2.log")
    })
    .await
    .expect("restart");
    let want: HashSet<(String, String)> = paths.iter().flat_map(|p| event_ids.iter().map(move |e| (p.to_string(), e.clone()))).collect();
    let delivered = |all: &[tests::receiver::Received]| -> HashSet<(String, String)> {
        all.iter()
            .filter(|r| r.answered == 200)
            .map(|r| (r.path.clone(), r.json()["event"]["id"].as_str().unwrap_or_default().to_owned()))
            .collect()
    };
    rx.wait_until(Duration::from_secs(120), |all| delivered(all).is_superset(&want)).await;

    let all = rx.received();
    let ok: Vec<_> = all.iter().filter(|r| r.answered == 200).collect();
    let mut per_pair: HashMap<(String, String), usize> = HashMap::new();
    for r in &ok {
        *per_pair.entry((r.path.clone(), r.json()["event"]["id"].as_str().unwrap_or_default().to_owned())).or_default() += 1;
    }
    let duplicates: usize = per_pair.values().map(|n| n - 1).sum();
    println!(
        "crash test: {} deliveries expected, all arrived; {} requests in all, {} accepted, {duplicates} duplicate accepted deliveries (at-least-once), {at_kill} received before the kill",
        want.len(),
        all.len(),
        ok.len()
    );
    assert_eq!(per_pair.len(), want.len());
    // A duplicate can only come from an attempt in flight at the kill.
    assert!(duplicates <= 64 * 2, "duplicates are bounded by attempts in flight at the kill: {duplicates}");
    let api = ApiClient::new(&base, Some(admin.trim()));
    assert_eq!(api.get("/events?limit=1").await.status, StatusCode::OK);
    child.kill().expect("stop");
    child.wait().expect("reap");
}

#[tokio::test]
async fn a_second_hookline_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut first, base) = start_binary(dir.path(), "first.log");
    let mut second = Command::new(env!("CARGO_BIN_EXE_hookline"))
        .env("HOOKLINE_DATA_DIR", dir.path())
        .env("HOOKLINE_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run a second hookline");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            second.kill().expect("kill");
            panic!("a second Hookline started on a directory in use");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "a second Hookline started on a directory in use");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut err).expect("read stderr");
    assert!(err.contains("another Hookline is running with the data directory"), "unexpected error: {err}");
    // The first one goes on serving, its work untouched.
    let jwks = reqwest::get(format!("{base}/jwks/webhooks")).await.expect("jwks");
    assert_eq!(jwks.status(), StatusCode::OK);
    first.kill().expect("kill");
    first.wait().expect("wait");
}
