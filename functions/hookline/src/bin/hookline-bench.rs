//! `hookline-bench`: measures local mode against the machine's floors, in one run.
//!
//! ```text
//! cargo run --release --bin hookline-bench            # full run (about a minute)
//! cargo run --release --bin hookline-bench -- --smoke # seconds; the test command runs this
//! ```
//!
//! Floors: RSA-2048 PKCS#1 v1.5 SHA-256 signs per second with the library Hookline
//! signs with (one core, all cores), and keep-alive POSTs per second of a 1 KiB JSON
//! body through Hookline's own outbound client to a trivial loopback receiver.
//! Then local mode end to end (publish → fan-out → sign → POST → record) with 1 and 10
//! webhooks per event, and event-to-delivery latency at half the sustained rate,
//! measured by the receiver from `event.created_at`.

use axum::body::Bytes;
use hookline::{Config, LocalHookline};
use hookline_domain::ports::{HttpClient, HttpOutcome, OutboundRequest};
use hookline_domain::webhook::EndpointPolicy;
use hookline_embedded::LocalKeySigner;
use hookline_http::ReqwestHttpClient;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Sizes {
    window: Duration,
    publishers: usize,
}

/// RSA signs per second on `threads` threads for `window`.
fn rsa_floor(threads: usize, window: Duration) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let signer = LocalKeySigner::load_or_create(&dir.path().join("k"))?;
    let input = vec![b'a'; 300]; // about a JWS signing input
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (signer, input, count) = (signer.clone(), &input, count.clone());
            s.spawn(move || {
                while start.elapsed() < window {
                    if signer.sign_now(input).is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    Ok(count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// A receiver that answers 200 and records each delivery's latency from `event.created_at`.
#[derive(Default)]
struct Sink {
    arrived: AtomicU64,
    latencies_us: Mutex<Vec<i64>>,
}

async fn start_sink(sink: Arc<Sink>) -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let sink = sink.clone();
        async move {
            let now = chrono::Utc::now();
            sink.arrived.fetch_add(1, Ordering::Relaxed);
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                && let Some(created) = v["event"]["created_at"].as_str().and_then(hookline_domain::time::parse)
            {
                sink.latencies_us.lock().map(|mut l| l.push((now - created).num_microseconds().unwrap_or(0))).ok();
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// Keep-alive POSTs per second of a 1 KiB body through Hookline's outbound client.
async fn http_floor(url: &str, concurrency: usize, window: Duration) -> anyhow::Result<f64> {
    let client = Arc::new(ReqwestHttpClient::new(&EndpointPolicy::private_allowed())?);
    let body = Bytes::from(format!("{{\"pad\":\"{}\"}}", "x".repeat(1012)));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, body, count, url) = (client.clone(), body.clone(), count.clone(), url.parse::<url::Url>());
            tokio::spawn(async move {
                let Ok(url) = url else { return };
                while start.elapsed() < window {
                    let req = OutboundRequest {
                        url: url.clone(),
                        headers: vec![("Content-Type".into(), "application/json".into())],
                        body: body.clone(),
                        timeout: Duration::from_secs(10),
                    };
                    if let HttpOutcome::Response { status: 200, .. } = client.post(req).await {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

struct Local {
    api: String,
    key: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_local() -> anyhow::Result<Local> {
    let dir = tempfile::tempdir()?;
    let mut env = HashMap::new();
    env.insert("HOOKLINE_DATA_DIR", dir.path().display().to_string());
    env.insert("HOOKLINE_LISTEN", "127.0.0.1:0".to_owned());
    env.insert("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", "true".to_owned());
    let config = Config::from_lookup(|k| env.get(k).cloned())?;
    let app = LocalHookline::open(&config).await?;
    let key = app.admin_key.expose().to_owned();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let api = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    Ok(Local { api, key, _dir: dir, _stop: stop })
}

/// Publishes as fast as `publishers` clients can (or every `pace`), for `window`;
/// returns deliveries per second that arrived during the window.
async fn run_e2e(local: &Local, sink: &Arc<Sink>, publishers: usize, pace: Option<Duration>, window: Duration) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let before = sink.arrived.load(Ordering::Relaxed);
    let start = Instant::now();
    let tasks: Vec<_> = (0..publishers)
        .map(|_| {
            let (http, api, key) = (http.clone(), local.api.clone(), local.key.clone());
            tokio::spawn(async move {
                let mut next = Instant::now();
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
    let arrived = sink.arrived.load(Ordering::Relaxed) - before;
    Ok(arrived as f64 / start.elapsed().as_secs_f64())
}

async fn drain(sink: &Sink) {
    let mut last = sink.arrived.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = sink.arrived.load(Ordering::Relaxed);
        if now == last {
            return;
        }
        last = now;
    }
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let sizes = if smoke {
        Sizes { window: Duration::from_millis(500), publishers: 2 }
    } else {
        Sizes { window: Duration::from_secs(8), publishers: 8 }
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("hookline-bench{} on {cores} cores", if smoke { " (smoke run: figures are not meaningful)" } else { "" });

    let rsa_one = rsa_floor(1, sizes.window)?;
    let rsa_all = rsa_floor(cores, sizes.window)?;
    println!("floor  RSA-2048 signs/s (aws-lc-rs)     1 core: {rsa_one:>9.0}   {cores} cores: {rsa_all:>9.0}");

    let sink = Arc::new(Sink::default());
    let url = start_sink(sink.clone()).await?;
    let http = http_floor(&url, 16, sizes.window).await?;
    println!("floor  keep-alive POST/s, 1 KiB body    {http:>9.0}");

    let local = start_local().await?;
    let http_client = reqwest::Client::new();
    let mut webhook_ids = Vec::new();
    let mut results = Vec::new();
    for fan in [1usize, 10] {
        // Reuse webhooks: add until `fan` listen to the event.
        while webhook_ids.len() < fan {
            let r: serde_json::Value = http_client
                .post(format!("{}/webhooks", local.api))
                .bearer_auth(&local.key)
                .json(&serde_json::json!({"data": {"endpoint_url": url, "listened_events": ["project.updated"]}}))
                .send()
                .await?
                .json()
                .await?;
            webhook_ids.push(r["data"]["id"].as_str().unwrap_or_default().to_owned());
        }
        drain(&sink).await;
        let rate = run_e2e(&local, &sink, sizes.publishers, None, sizes.window).await?;
        drain(&sink).await;
        println!(
            "local  end to end, {fan:>2} webhook(s)/event  {rate:>9.0} deliveries/s   {:>5.1} % of the {cores}-core RSA floor",
            100.0 * rate / rsa_all
        );
        results.push((fan, rate));
    }

    // Latency at half the sustained fan-out-1 rate: back to one webhook.
    for id in webhook_ids.iter().skip(1) {
        http_client.delete(format!("{}/webhooks/{id}", local.api)).bearer_auth(&local.key).send().await?;
    }
    drain(&sink).await;
    let half = (results[0].1 / 2.0).max(1.0);
    let publishers = sizes.publishers.max(1);
    let pace = Duration::from_secs_f64(publishers as f64 / half);
    if let Ok(mut l) = sink.latencies_us.lock() {
        l.clear();
    }
    let paced = run_e2e(&local, &sink, publishers, Some(pace), sizes.window).await?;
    drain(&sink).await;
    let mut lat = sink.latencies_us.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort_unstable();
    println!(
        "local  latency at {paced:.0}/s (half load): p50 {:.2} ms   p99 {:.2} ms   ({} deliveries, event.created_at → arrival)",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.len()
    );
    Ok(())
}
