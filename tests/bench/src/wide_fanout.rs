//! Fan-out of one event to many webhooks (10,000 in the full run), in local mode: until
//! every delivery is durably queued, and until every one has arrived.

use crate::local::{bench_webhook, start_local};
use crate::receiver::{Sink, start_sink};
use hookline_domain::ids::TenantId;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Fan-out of one event to `n` webhooks: time from the publish request until all `n`
/// jobs are durably queued (their transaction committed), and until all arrived.
pub async fn run(n: usize) -> anyhow::Result<()> {
    let local = start_local().await?;
    let sink = Arc::new(Sink::default());
    let url = start_sink(sink.clone()).await?;
    let h = &local.hookline;
    let tenant = TenantId::default_tenant();
    for _ in 0..n {
        h.webhooks.insert(&bench_webhook(&tenant, &url, &h.policy)?).await?;
    }
    let queued_before = local.queue.enqueued_total();
    let arrived_before = sink.arrived.load(Ordering::Relaxed);
    let body = serde_json::json!({"data": {"subject_type": "project", "event_type": "UPDATED", "subject_id": "34"}});
    let start = Instant::now();
    let status = reqwest::Client::new().post(format!("{}/events", local.api)).bearer_auth(&local.key).json(&body).send().await?.status();
    anyhow::ensure!(status.as_u16() == 201, "publish answered {status}");
    let published = start.elapsed();
    let deadline = Duration::from_secs(600);
    let mut queued_at = None;
    while start.elapsed() < deadline {
        if queued_at.is_none() && local.queue.enqueued_total() - queued_before >= n as u64 {
            queued_at = Some(start.elapsed());
        }
        if sink.arrived.load(Ordering::Relaxed) - arrived_before >= n as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let delivered = start.elapsed();
    let arrived = sink.arrived.load(Ordering::Relaxed) - arrived_before;
    let queued = queued_at.map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "not reached".into());
    println!(
        "fanout one event to {n} webhooks: publish answered in {:.1} ms; all {n} durably queued after {queued} (target <= 1 s); {arrived} delivered after {:.2} s ({:.0}/s)",
        published.as_secs_f64() * 1000.0,
        delivered.as_secs_f64(),
        arrived as f64 / delivered.as_secs_f64()
    );
    Ok(())
}
