//! A full disk: the API says so (503 `storage_unavailable`, `Retry-After`), the log
//! says so once, nothing accepted is lost, and Hookline resumes by itself when space
//! comes back. The data directory is a real file system of its own (a small tmpfs),
//! filled by a real file.

use reqwest::StatusCode;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tests::client::ApiClient;
use tests::receiver::Receiver;

/// A tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "this test mounts a small tmpfs as the data directory, which needs root (as the test command runs in CI)"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes a file until the disk has no room left.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("filler");
    let block = vec![0xa5u8; 64 * 1024];
    loop {
        if f.write_all(&block).and_then(|_| f.sync_data()).is_err() {
            break;
        }
    }
    // Whatever partial block is left, take it too.
    while f.write_all(&[0u8; 512]).and_then(|_| f.sync_data()).is_ok() {}
}

fn lines_with(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test]
async fn a_full_disk_answers_503_says_so_once_loses_nothing_and_resumes_when_space_is_back() {
    let disk = SmallDisk::mount("12m");
    let data: PathBuf = disk.path().join("data");
    let logs = tempfile::tempdir().expect("log dir");
    let log = logs.path().join("hookline.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookline"))
        .env("HOOKLINE_DATA_DIR", &data)
        .env("HOOKLINE_LISTEN", "127.0.0.1:0")
        .env("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", "true")
        .env("HOOKLINE_RETRY_SCHEDULE", "1s,1s,1s,1s,1s")
        .env("HOOKLINE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start hookline");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines.next().expect("hookline exited before listening").expect("stdout");
        if let Some(url) = line.strip_prefix("Hookline listening on ") {
            break url.trim().to_owned();
        }
    };
    let admin = std::fs::read_to_string(data.join("admin-key")).expect("admin key");
    let api = ApiClient::new(&base, Some(admin.trim()));
    let rx = Receiver::start().await;
    api.create_webhook(&rx.url("/hook"), &["*"]).await;

    fill(&disk.path().join("filler"));
    // SQLite reuses the room its WAL already has, so a few events may still fit; the
    // first refusal comes once the WAL must grow.
    let padding = "x".repeat(8 * 1024);
    let mut accepted = Vec::new();
    let mut refused = 0;
    let mut first_refusal = None;
    for i in 0..2000 {
        let body = json!({"data": {"subject_type": "project", "event_type": "UPDATED", "subject_id": i.to_string(), "metadata": {"pad": padding}}});
        let r = reqwest::Client::new().post(format!("{base}/events")).bearer_auth(admin.trim()).json(&body).send().await.expect("publish");
        let status = r.status();
        let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let answer: serde_json::Value = r.json().await.unwrap_or_default();
        match status {
            StatusCode::CREATED => accepted.push(answer["data"]["id"].as_str().expect("id").to_owned()),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(answer["error"]["code"], "storage_unavailable", "{answer}");
                assert_eq!(retry_after.as_deref(), Some("30"));
                first_refusal.get_or_insert(i);
                refused += 1;
                if refused == 20 {
                    break;
                }
            }
            other => panic!("publishing on a full disk answered {other}: {answer}"),
        }
    }
    assert_eq!(refused, 20, "a full disk must refuse events ({} were accepted)", accepted.len());
    // Reads still work.
    assert_eq!(api.get("/webhooks").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(lines_with(&log, "the disk holding the database is full"), 1, "one line, not one per request:\n{text}");
    assert!(
        std::fs::read_to_string(&log).unwrap_or_default().contains(&data.join("hookline.db").display().to_string()),
        "the line says where"
    );
    assert_eq!(lines_with(&log, "internal error"), 0, "a full disk is not an internal error");

    std::fs::remove_file(disk.path().join("filler")).expect("free the space");
    // Hookline needs no restart: the next write finds the room.
    let resumed = api.publish(json!({"subject_type": "project", "event_type": "UPDATED", "subject_id": "after"})).await;
    let resumed = resumed["id"].as_str().expect("id").to_owned();
    accepted.push(resumed);
    let want: std::collections::HashSet<String> = accepted.iter().cloned().collect();
    rx.wait_until(Duration::from_secs(60), |all| {
        let got: std::collections::HashSet<String> =
            all.iter().filter(|r| r.answered == 200).filter_map(|r| r.json()["event"]["id"].as_str().map(str::to_owned)).collect();
        got.is_superset(&want)
    })
    .await;
    assert_eq!(lines_with(&log, "disk space is back"), 1, "{}", std::fs::read_to_string(&log).unwrap_or_default());
    println!(
        "full disk: {} events accepted before the first refusal at #{first_refusal:?}; all delivered after space came back",
        accepted.len() - 1
    );
    let _ = child.kill();
    let _ = child.wait();
}
