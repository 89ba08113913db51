//! Local mode end to end (publish → fan-out → sign → POST → record): the sustained
//! rate with 1 and 10 webhooks per event, with its CPU per delivery, and the
//! event-to-delivery latency at half that rate and at a light load.

use crate::Sizes;
use crate::floors::Floors;
use crate::local::LocalProcess;
use crate::procfs::{CpuSnapshot, MachineCpu};
use crate::receiver::{Sink, drain};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Publishes as fast as `publishers` clients can (or every `pace`), for `window`;
/// returns deliveries per second that arrived during the window.
async fn run_e2e(
    local: &LocalProcess,
    sink: &Arc<Sink>,
    publishers: usize,
    pace: Option<Duration>,
    window: Duration,
) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let before = sink.arrived.load(Ordering::Relaxed);
    let start = Instant::now();
    let tasks: Vec<_> = (0..publishers)
        .map(|i| {
            let (http, api, key) = (http.clone(), local.api.clone(), local.key.clone());
            tokio::spawn(async move {
                // Paced publishers start staggered, so events arrive evenly, not in bursts.
                let mut next = start + pace.map(|p| p.mul_f64(i as f64 / publishers as f64)).unwrap_or_default();
                tokio::time::sleep_until(next.into()).await;
                while start.elapsed() < window {
                    let body = serde_json::json!({"data": {"subject_type": "project", "event_type": "UPDATED", "subject_id": "34"}});
                    let _ = http.post(format!("{api}/events")).bearer_auth(&key).json(&body).send().await;
                    if let Some(p) = pace {
                        next += p;
                        tokio::time::sleep_until(next.into()).await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    // Sustained rate: everything published in the window, delivered, over the time from
    // the first publish to the last arrival (work queued in the window counts too).
    drain(sink).await;
    let arrived = sink.arrived.load(Ordering::Relaxed) - before;
    let last = sink.last_arrival.lock().map(|l| l.unwrap_or(start)).unwrap_or(start);
    Ok(arrived as f64 / last.saturating_duration_since(start).max(Duration::from_millis(1)).as_secs_f64())
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// What metrics cost on the hot path: local mode's sustained rate at one webhook per
/// event without metrics and with them (`HOOKLINE_METRICS_LISTEN` set, every step
/// recording), a fresh process each run, alternating `rounds` times; prints each run
/// and the ratio of the medians.
pub async fn metrics_cost(sink: &Arc<Sink>, url: &str, sizes: &Sizes, rounds: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for metrics in [false, true] {
            let env: &[(&str, &str)] = if metrics { &[("HOOKLINE_METRICS_LISTEN", "127.0.0.1:0")] } else { &[] };
            let local = LocalProcess::start(env).await?;
            local.create_webhook(&http, url).await?;
            drain(sink).await;
            let rate = run_e2e(&local, sink, sizes.publishers, None, sizes.window).await?;
            println!("local  metrics {:<3}  1 webhook/event  {rate:>9.0} deliveries/s", if metrics { "on" } else { "off" });
            if metrics { with.push(rate) } else { without.push(rate) }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (off, on) = (median(&mut without), median(&mut with));
    println!("local  metrics on/off, median of {rounds} alternating runs each: {:.3} ({on:.0} / {off:.0} deliveries/s)", on / off);
    Ok(())
}

/// The sustained rate with 1, then 10 webhooks per event, signing with the JWT, then
/// the latency with one; then the sustained rates again with Standard Webhooks (HMAC).
pub async fn run(local: &LocalProcess, sink: &Arc<Sink>, url: &str, floors: &Floors, sizes: &Sizes) -> anyhow::Result<()> {
    let http_client = reqwest::Client::new();
    let (webhook_ids, sustained) = throughput(local, sink, &http_client, url, floors, sizes, "jwt").await?;
    latency(local, sink, &http_client, &webhook_ids, sustained, sizes).await?;
    let delete = |id: String| {
        let (http, api, key) = (http_client.clone(), local.api.clone(), local.key.clone());
        async move { http.delete(format!("{api}/webhooks/{id}")).bearer_auth(key).send().await }
    };
    delete(webhook_ids[0].clone()).await?;
    let (hmac_ids, _) = throughput(local, sink, &http_client, url, floors, sizes, "standard_webhooks").await?;
    for id in hmac_ids {
        delete(id).await?;
    }
    drain(sink).await;
    Ok(())
}

/// The sustained rate with 1, then 10 webhooks per event (all to `url`, signing with
/// `scheme`), each with its CPU per delivery; returns the webhooks created and the rate
/// with one.
async fn throughput(
    local: &LocalProcess,
    sink: &Arc<Sink>,
    http_client: &reqwest::Client,
    url: &str,
    floors: &Floors,
    sizes: &Sizes,
    scheme: &str,
) -> anyhow::Result<(Vec<String>, f64)> {
    let (cores, rsa_all) = (floors.cores, floors.rsa_all);
    let mut webhook_ids = Vec::new();
    let mut results = Vec::new();
    for fan in [1usize, 10] {
        // Reuse webhooks: add until `fan` listen to the event.
        while webhook_ids.len() < fan {
            webhook_ids.push(local.create_webhook_signing(http_client, url, scheme).await?);
        }
        drain(sink).await;
        let (cpu_before, arrived_before) = (CpuSnapshot::take(local.pid()?), sink.arrived.load(Ordering::Relaxed));
        let rate = run_e2e(local, sink, sizes.publishers, None, sizes.window).await?;
        // Each delivery takes its own exchange with the receiver and a share of the publish.
        let exchanges = 1.0 + 1.0 / fan as f64;
        let cpu = CpuSnapshot::take(local.pid()?).per_delivery(
            &cpu_before,
            sink.arrived.load(Ordering::Relaxed) - arrived_before,
            floors,
            exchanges,
        );
        if scheme == "jwt" {
            println!(
                "local  end to end, {fan:>2} webhook(s)/event  {rate:>9.0} deliveries/s   {:>5.1} % of the {cores}-core RSA floor",
                100.0 * rate / rsa_all
            );
        } else {
            println!(
                "local  end to end, {fan:>2} webhook(s)/event  {rate:>9.0} deliveries/s   signing with {scheme} (HMAC-SHA256, no RSA)"
            );
        }
        println!("         {cpu}");
        results.push((fan, rate));
    }
    Ok((webhook_ids, results[0].1))
}

/// Latency with one webhook again, at half the `sustained` rate and at a light load.
async fn latency(
    local: &LocalProcess,
    sink: &Arc<Sink>,
    http_client: &reqwest::Client,
    webhook_ids: &[String],
    sustained: f64,
    sizes: &Sizes,
) -> anyhow::Result<()> {
    // Latency at half the sustained fan-out-1 rate: back to one webhook.
    for id in webhook_ids.iter().skip(1) {
        http_client.delete(format!("{}/webhooks/{id}", local.api)).bearer_auth(&local.key).send().await?;
    }
    drain(sink).await;
    // At half the sustained rate (the figure), and at a light 50 events/s, which shows
    // the pipeline's own latency with hardly any queueing.
    let half = (sustained / 2.0).max(1.0);
    for (label, rate) in [("half load", half), ("light load", 50.0f64.min(half))] {
        let publishers = sizes.publishers.max(1);
        let pace = Duration::from_secs_f64(publishers as f64 / rate);
        if let Ok(mut l) = sink.latencies_us.lock() {
            l.clear();
        }
        let machine = MachineCpu::now();
        let paced = run_e2e(local, sink, publishers, Some(pace), sizes.window).await?;
        let (busy, steal) = MachineCpu::now().since(&machine);
        let arrivals = sink.latencies_us.lock().map(|l| l.clone()).unwrap_or_default();
        let sorted = |f: &dyn Fn(&(Instant, i64, i64)) -> i64| {
            let mut v: Vec<i64> = arrivals.iter().map(f).collect();
            v.sort_unstable();
            v
        };
        let lat = sorted(&|(_, l, _)| *l);
        let (queued, attempt) = (sorted(&|(_, _, q)| *q), sorted(&|(_, l, q)| l - q));
        println!(
            "local  latency at {paced:.0}/s ({label}): p50 {:.2} ms   p99 {:.2} ms   ({} deliveries, event.created_at → arrival; p90 {:.2}, p99.9 {:.2}, max {:.2})",
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            lat.len(),
            percentile(&lat, 0.90),
            percentile(&lat, 0.999),
            percentile(&lat, 1.0),
        );
        println!(
            "         of which until the attempt began (publish, fan-out, queue, claim): p50 {:.2} ms   p99 {:.2} ms;   the attempt (sign, POST): p50 {:.2} ms   p99 {:.2} ms;   the machine {busy:.0} % busy, {steal:.0} % stolen by the hypervisor",
            percentile(&queued, 0.50),
            percentile(&queued, 0.99),
            percentile(&attempt, 0.50),
            percentile(&attempt, 0.99),
        );
        // Slow deliveries that arrive together point at a stall rather than queueing.
        let slow: Vec<Instant> = arrivals.iter().filter(|(_, l, _)| *l > 20_000).map(|(at, _, _)| *at).collect();
        let stalls =
            slow.windows(2).filter(|w| w[1].duration_since(w[0]) > Duration::from_millis(100)).count() + usize::from(!slow.is_empty());
        if !slow.is_empty() {
            println!("         {} deliveries took over 20 ms, arriving in {stalls} cluster(s)", slow.len());
        }
    }
    Ok(())
}
