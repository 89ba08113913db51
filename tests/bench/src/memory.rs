//! Local mode's memory with many deliveries pending (100,000 in the full run) because
//! the receiver is down, and the database's size per pending delivery.

use crate::local::LocalProcess;
use crate::procfs::rss;
use std::time::{Duration, Instant};

/// Sizes of the database file and of its WAL.
fn db_bytes(dir: &std::path::Path) -> (u64, u64) {
    let size = |f: &str| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
    (size("hookline.db"), size("hookline.db-wal"))
}

/// Counts deliveries in a local-mode database, read from outside the process.
fn count_deliveries(dir: &std::path::Path) -> anyhow::Result<u64> {
    let conn = rusqlite::Connection::open_with_flags(dir.join("hookline.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'", [], |r| r.get(0))?;
    Ok(n as u64)
}

/// Peak RSS of local mode, run as its own process, with `total` deliveries pending
/// because the receiver is down (it accepts connections and never answers).
pub async fn run(total: usize, webhooks: usize, publishers: usize) -> anyhow::Result<()> {
    let local = LocalProcess::start(&[("HOOKLINE_DELIVERY_TIMEOUT", "60s")]).await?;
    let (api, key, pid) = (local.api.clone(), local.key.clone(), local.pid()?);
    let http = reqwest::Client::new();
    // The receiver that is down: holds every connection open and never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hole_url = format!("http://{}/down", hole.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });
    for _ in 0..webhooks {
        local.create_webhook(&http, &hole_url).await?;
    }
    let publish = |n: usize| {
        let (http, api, key) = (http.clone(), api.clone(), key.clone());
        async move {
            let tasks: Vec<_> = (0..publishers)
                .map(|i| {
                    let (http, api, key) = (http.clone(), api.clone(), key.clone());
                    tokio::spawn(async move {
                        for _ in (i..n).step_by(publishers) {
                            let body =
                                serde_json::json!({"data": {"subject_type": "project", "event_type": "UPDATED", "subject_id": "34"}});
                            let _ = http.post(format!("{api}/events")).bearer_auth(&key).json(&body).send().await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                let _ = t.await;
            }
        }
    };
    let wait_for = |want: u64| {
        let dir = local.dir.path().to_owned();
        async move {
            let start = Instant::now();
            loop {
                let have = count_deliveries(&dir).unwrap_or(0);
                if have >= want || start.elapsed() > Duration::from_secs(600) {
                    return have;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // Warm up with one event, so the baseline includes connection pools and caches.
    publish(1).await;
    wait_for(webhooks as u64).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, base_rss) = rss(pid)?;
    let (base_disk, _) = db_bytes(local.dir.path());
    let events = total.div_ceil(webhooks).saturating_sub(1);
    publish(events).await;
    let pending = wait_for(((events + 1) * webhooks) as u64).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (peak, now) = rss(pid)?;
    let (disk, wal) = db_bytes(local.dir.path());
    drop(local);
    let grown = peak.saturating_sub(base_rss);
    println!(
        "memory {pending} deliveries pending (receiver down): peak RSS {:.1} MiB (after warm-up {:.1} MiB, now {:.1} MiB); {:.0} bytes of RSS per pending delivery (target <= 1024); database file {:.0} bytes each, plus a WAL of {:.0} MiB (reused: it starts over once past 128 MiB)",
        peak as f64 / 1048576.0,
        base_rss as f64 / 1048576.0,
        now as f64 / 1048576.0,
        grown as f64 / pending.max(1) as f64,
        disk.saturating_sub(base_disk) as f64 / pending.max(1) as f64,
        wal as f64 / 1048576.0,
    );
    Ok(())
}
