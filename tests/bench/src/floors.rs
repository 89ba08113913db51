//! The machine's floors: RSA-2048 signatures per second with the library Hookline
//! signs with, and keep-alive POSTs per second through Hookline's own outbound client;
//! and what they leave per delivery once a signature and the exchanges are paid for.

use crate::procfs::MachineCpu;
use axum::body::Bytes;
use hookline_domain::ports::{HttpClient, HttpOutcome, OutboundRequest};
use hookline_domain::webhook::EndpointPolicy;
use hookline_embedded::LocalKeySigner;
use hookline_http::ReqwestHttpClient;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
                        method: hookline_domain::webhook::HttpMethod::Post,
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

/// The two floors of a run, as CPU per operation.
pub struct Floors {
    pub cores: usize,
    pub rsa_all: f64,
    pub http: f64,
}

impl Floors {
    /// Core-milliseconds of one signature at the all-core floor's rate.
    pub fn signature_ms(&self) -> f64 {
        1000.0 * self.cores as f64 / self.rsa_all
    }

    /// Core-milliseconds of one keep-alive exchange (client, server, kernel) at the
    /// POST floor's rate.
    pub fn exchange_ms(&self) -> f64 {
        1000.0 * self.cores as f64 / self.http
    }

    /// Deliveries/s on all cores if a delivery cost only a signature and `exchanges`.
    pub fn ceiling(&self, exchanges: f64) -> f64 {
        1000.0 * self.cores as f64 / (self.signature_ms() + exchanges * self.exchange_ms())
    }

    /// Core-milliseconds per delivery left beside a signature and `exchanges` at
    /// `share` of the all-core RSA floor (negative: not even those fit).
    pub fn left_at(&self, share: f64, exchanges: f64) -> f64 {
        1000.0 * self.cores as f64 / (share * self.rsa_all) - self.signature_ms() - exchanges * self.exchange_ms()
    }
}

/// Measures the RSA floor on one core and on all `cores`, prints it, and returns the
/// all-core figure.
pub fn measure_rsa(cores: usize, window: Duration) -> anyhow::Result<f64> {
    let before = MachineCpu::now();
    let rsa_one = rsa_floor(1, window)?;
    let rsa_all = rsa_floor(cores, window)?;
    let (_, steal) = MachineCpu::now().since(&before);
    println!(
        "floor  RSA-2048 signs/s (aws-lc-rs)     1 core: {rsa_one:>9.0}   {cores} cores: {rsa_all:>9.0}   ({steal:.0} % stolen by the hypervisor meanwhile)"
    );
    Ok(rsa_all)
}

/// Measures the POST floor against the receiver at `url`, prints it and what the two
/// floors leave per delivery, and returns both.
pub async fn measure_http(cores: usize, rsa_all: f64, url: &str, window: Duration) -> anyhow::Result<Floors> {
    let http = http_floor(url, 16, window).await?;
    println!("floor  keep-alive POST/s, 1 KiB body    {http:>9.0}");
    let floors = Floors { cores, rsa_all, http };
    // At fan-out 1 a delivery takes a signature and two exchanges (the publish and the
    // delivery); nothing else a webhook service does is free, so this bounds any.
    let exchanges = 2.0;
    let ceiling = floors.ceiling(exchanges);
    let left = floors.left_at(0.8, exchanges);
    println!(
        "floor  a signature and {exchanges} keep-alive exchanges per delivery and nothing else: {ceiling:>9.0} deliveries/s = {:.1} % of the {cores}-core RSA floor \
         (CPU per delivery: {:.3} + {exchanges} × {:.3} ms); {}",
        100.0 * ceiling / rsa_all,
        floors.signature_ms(),
        floors.exchange_ms(),
        if left > 0.0 {
            format!(
                "at 80 % of the RSA floor, {left:.3} ms per delivery would be left for everything else \
                 (storage, API, JSON, fan-out, bookkeeping, the bench's own)"
            )
        } else {
            format!(
                "80 % of the RSA floor is out of reach on this machine: the signature and the exchanges alone take {:.3} ms more",
                -left
            )
        },
    );
    Ok(floors)
}

#[cfg(test)]
mod tests {
    use super::Floors;

    #[test]
    fn the_ceiling_adds_the_floors_cpu_per_operation() {
        // 2 cores: a signature costs 2/3000 s = 0.667 ms of a core, an exchange 0.05 ms.
        let f = Floors { cores: 2, rsa_all: 3_000.0, http: 40_000.0 };
        assert!((f.signature_ms() - 0.6667).abs() < 1e-3);
        assert!((f.exchange_ms() - 0.05).abs() < 1e-9);
        // 2 cores / (0.667 + 2 × 0.05 ms) = 2,609 deliveries/s.
        assert!((f.ceiling(2.0) - 2_608.7).abs() < 0.1, "{}", f.ceiling(2.0));
        assert!((f.ceiling(0.0) - 3_000.0).abs() < 1e-6);
        // At 80 %: 2 / 2,400 s = 0.833 ms per delivery, minus 0.767.
        assert!((f.left_at(0.8, 2.0) - 0.0667).abs() < 1e-3, "{}", f.left_at(0.8, 2.0));
        assert!(f.left_at(1.0, 2.0) < 0.0);
    }
}
