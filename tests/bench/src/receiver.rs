//! The bench's receiver: answers every delivery 200 and records when it arrived and
//! how long after its event was created.

use axum::body::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A receiver that answers 200 and records each delivery's latency from `event.created_at`.
#[derive(Default)]
pub struct Sink {
    pub arrived: AtomicU64,
    pub last_arrival: Mutex<Option<Instant>>,
    /// (arrival, latency in µs, of which before the attempt began) of each delivery.
    pub latencies_us: Mutex<Vec<(Instant, i64, i64)>>,
}

pub async fn start_sink(sink: Arc<Sink>) -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let sink = sink.clone();
        async move {
            let now = chrono::Utc::now();
            sink.arrived.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut l) = sink.last_arrival.lock() {
                *l = Some(Instant::now());
            }
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                && let Some(created) = v["event"]["created_at"].as_str().and_then(hookline_domain::time::parse)
            {
                let attempted = v["delivery"]["attempted_at"].as_str().and_then(hookline_domain::time::parse).unwrap_or(now);
                let us = |d: chrono::Duration| d.num_microseconds().unwrap_or(0);
                sink.latencies_us.lock().map(|mut l| l.push((Instant::now(), us(now - created), us(attempted - created)))).ok();
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

pub async fn drain(sink: &Sink) {
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
