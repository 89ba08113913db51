//! `hookline-bench`: measures Hookline against the machine's floors, in one run.
//!
//! ```text
//! bash tests/bench.sh            # full run: builds what it needs, starts moto, runs this
//! hookline-bench --smoke         # seconds; the test command runs this (figures mean nothing)
//! hookline-bench --local-only    # floors, local end to end and latency only
//! ```
//!
//! 1. Floors: RSA-2048 PKCS#1 v1.5 SHA-256 signs per second with the library Hookline
//!    signs with (one core, all cores), and keep-alive POSTs per second of a 1 KiB
//!    JSON body through Hookline's own outbound client to a trivial loopback receiver.
//! 2. Local mode end to end (publish → fan-out → sign → POST → record) with 1 and 10
//!    webhooks per event, as a ratio of the all-core RSA floor.
//! 3. Event-to-delivery latency at half the sustained rate, measured by the receiver
//!    from `event.created_at` (the clock is shared).
//! 4. Fan-out of one event to 10,000 webhooks: until durably queued, until delivered.
//! 5. Peak RSS of local mode (its own process) with 100,000 deliveries pending.
//! 6. AWS mode against moto's server: calls per delivery by service and operation,
//!    counted in the SDK clients, and the cost per million deliveries.
//! 7. Lambda artefacts: zip sizes, and each binary's exec-to-first-poll time against
//!    a local Lambda runtime API.

mod aws;

use axum::body::Bytes;
use hookline::{Config, LocalHookline};
use hookline_domain::Policy;
use hookline_domain::ids::TenantId;
use hookline_domain::ports::{HttpClient, HttpOutcome, OutboundRequest};
use hookline_domain::webhook::{EndpointPolicy, Webhook, WebhookInput};
use hookline_embedded::LocalKeySigner;
use hookline_http::ReqwestHttpClient;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Sizes {
    window: Duration,
    publishers: usize,
    /// Webhooks for the wide fan-out.
    wide: usize,
    /// Pending deliveries for the memory figure, and the webhooks they spread over.
    pending: usize,
    pending_webhooks: usize,
    /// Webhooks for the AWS fan-out (and sends).
    aws: usize,
    /// Runs of each Lambda binary for its init time.
    init_runs: usize,
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
    last_arrival: Mutex<Option<Instant>>,
    /// (arrival, latency in µs, of which before the attempt began) of each delivery.
    latencies_us: Mutex<Vec<(Instant, i64, i64)>>,
}

async fn start_sink(sink: Arc<Sink>) -> anyhow::Result<String> {
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
    hookline: Arc<hookline_domain::Hookline>,
    queue: hookline_embedded::SqliteStorage,
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
    let (hookline, queue) = (app.hookline.clone(), app.storage());
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let api = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    Ok(Local { api, key, hookline, queue, _dir: dir, _stop: stop })
}

/// Local mode as its own process (this binary with `--serve-local`), as users run it:
/// its CPU and memory are its own, apart from the bench's clients and receivers.
struct LocalProcess {
    api: String,
    key: String,
    dir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl LocalProcess {
    async fn start(extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let api = format!("http://127.0.0.1:{port}");
        let key = "bench-admin-key-0123456789abcdef0123456789".to_owned();
        let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
        cmd.arg(SERVE_LOCAL)
            .env("HOOKLINE_DATA_DIR", dir.path())
            .env("HOOKLINE_LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKLINE_ADMIN_KEY", &key)
            .env("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", "true")
            .kill_on_drop(true);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        // Its log (one line per delivery at the default level) goes to a file, as a
        // service's log would.
        cmd.stderr(std::fs::File::create(dir.path().join("hookline.log"))?);
        let child = cmd.spawn()?;
        let http = reqwest::Client::new();
        let up = Instant::now();
        while http.get(format!("{api}/jwks/webhooks")).send().await.is_err() {
            anyhow::ensure!(up.elapsed() < Duration::from_secs(30), "local mode did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(LocalProcess { api, key, dir, child })
    }

    fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().ok_or_else(|| anyhow::anyhow!("local mode has exited"))
    }

    async fn create_webhook(&self, http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({"data": {"endpoint_url": url, "listened_events": ["project.updated"]}});
        let r = http.post(format!("{}/webhooks", self.api)).bearer_auth(&self.key).json(&body).send().await?;
        anyhow::ensure!(r.status().as_u16() == 201, "creating a webhook answered {}", r.status());
        let v: serde_json::Value = r.json().await?;
        Ok(v["data"]["id"].as_str().unwrap_or_default().to_owned())
    }
}

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

/// Fan-out of one event to `n` webhooks: time from the publish request until all `n`
/// jobs are durably queued (their transaction committed), and until all arrived.
async fn fanout_wide(n: usize) -> anyhow::Result<()> {
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

/// A webhook of `tenant` to `url`, listening to the event the bench publishes.
fn bench_webhook(tenant: &TenantId, url: &str, policy: &Policy) -> anyhow::Result<Webhook> {
    let input = WebhookInput {
        endpoint_url: url.to_owned(),
        listened_events: vec!["project.updated".into()],
        description: None,
        active: None,
        headers: None,
    };
    Ok(Webhook::create(tenant.clone(), input, &policy.catalog, &policy.endpoints, chrono::Utc::now())?)
}

/// `VmHWM` (peak) and `VmRSS` of a process, in bytes.
fn rss(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    Ok((field("VmHWM:"), field("VmRSS:")))
}

/// Seconds of CPU (user and system) of a `/proc/<pid>/stat`-shaped line; `/proc` counts
/// in USER_HZ, 100 per second on Linux.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // Fields after the command name (which may hold spaces): state is the first,
    // utime the 12th and stime the 13th.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Where a process's CPU went: its threads' CPU seconds by name prefix (the first
/// prefix a thread's name starts with), "other" for the rest of the process, exited
/// threads included.
fn cpu_by_thread(pid: &str, prefixes: &[&'static str]) -> HashMap<&'static str, f64> {
    let mut out: HashMap<&'static str, f64> = HashMap::new();
    let total = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| stat_cpu_seconds(&s)).unwrap_or(0.0);
    let mut named = 0.0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let Some(group) = prefixes.iter().find(|p| comm.starts_with(**p)) else { continue };
            let cpu = std::fs::read_to_string(t.path().join("stat")).ok().and_then(|s| stat_cpu_seconds(&s)).unwrap_or(0.0);
            *out.entry(group).or_default() += cpu;
            named += cpu;
        }
    }
    out.insert("other", (total - named).max(0.0));
    out
}

/// CPU seconds of the machine so far (`/proc/stat`): busy (running something here),
/// stolen (the hypervisor ran another guest on this machine's CPUs while it wanted
/// them), and in all.
#[derive(Clone, Copy)]
struct MachineCpu {
    busy: f64,
    steal: f64,
    total: f64,
}

impl MachineCpu {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0) as f64 / 100.0;
        let total: f64 = (0..8).map(at).sum();
        // idle and iowait are the 4th and 5th, steal the 8th.
        MachineCpu { busy: total - at(3) - at(4) - at(7), steal: at(7), total }
    }

    /// Percentages busy and stolen from `before` to this reading.
    fn since(&self, before: &MachineCpu) -> (f64, f64) {
        let total = (self.total - before.total).max(0.01);
        (100.0 * (self.busy - before.busy) / total, 100.0 * (self.steal - before.steal) / total)
    }
}

/// The two floors of a run, as CPU per operation.
struct Floors {
    cores: usize,
    rsa_all: f64,
    http: f64,
}

impl Floors {
    /// Core-milliseconds of one signature at the all-core floor's rate.
    fn signature_ms(&self) -> f64 {
        1000.0 * self.cores as f64 / self.rsa_all
    }

    /// Core-milliseconds of one keep-alive exchange (client, server, kernel) at the
    /// POST floor's rate.
    fn exchange_ms(&self) -> f64 {
        1000.0 * self.cores as f64 / self.http
    }

    /// Deliveries/s on all cores if a delivery cost only a signature and `exchanges`.
    fn ceiling(&self, exchanges: f64) -> f64 {
        1000.0 * self.cores as f64 / (self.signature_ms() + exchanges * self.exchange_ms())
    }

    /// Core-milliseconds per delivery left beside a signature and `exchanges` at
    /// `share` of the all-core RSA floor (negative: not even those fit).
    fn left_at(&self, share: f64, exchanges: f64) -> f64 {
        1000.0 * self.cores as f64 / (share * self.rsa_all) - self.signature_ms() - exchanges * self.exchange_ms()
    }
}

/// Thread groups of local mode, as its threads are named.
const LOCAL_THREADS: [&str; 3] = ["hookline-sign", "hookline-db-wri", "hookline-db-che"];

/// CPU of local mode, of this process (the bench's publishers and receiver) and of the
/// machine, at one moment.
struct CpuSnapshot {
    local: HashMap<&'static str, f64>,
    bench: f64,
    machine: MachineCpu,
    /// Bytes local mode has passed to `write` and the like (`wchar` of `/proc/<pid>/io`):
    /// the WAL, checkpoints into the database file, its log.
    written: u64,
}

impl CpuSnapshot {
    fn take(pid: u32) -> Self {
        let bench = cpu_by_thread("self", &[]).values().sum();
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
        let written = io.lines().find_map(|l| l.strip_prefix("wchar:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        CpuSnapshot { local: cpu_by_thread(&pid.to_string(), &LOCAL_THREADS), bench, machine: MachineCpu::now(), written }
    }

    /// Milliseconds of CPU per delivery, by part, from `before` to this snapshot.
    fn per_delivery(&self, before: &CpuSnapshot, deliveries: u64, floors: &Floors, exchanges: f64) -> String {
        let n = deliveries.max(1) as f64;
        let local = |k: &str| 1000.0 * (self.local.get(k).unwrap_or(&0.0) - before.local.get(k).unwrap_or(&0.0)) / n;
        let bench = 1000.0 * (self.bench - before.bench) / n;
        let total = LOCAL_THREADS.iter().chain(&["other"]).map(|k| local(k)).sum::<f64>() + bench;
        let (busy, steal) = self.machine.since(&before.machine);
        format!(
            "CPU per delivery: signing threads {:.3} ms (the floor's signature: {:.3} ms), database writer {:.3}, checkpointer {:.3}, \
             the rest of local mode (API, fan-out, send loop, HTTP, database reads) {:.3}; the bench's publishers and receiver {:.3}; \
             in all {total:.3} ms, of which {:.3} beyond the floors' signature and {exchanges} keep-alive exchange(s); \
             the machine {:.0} % busy, {:.0} % stolen by the hypervisor; local mode wrote {:.1} KiB per delivery (WAL, checkpoints, log)",
            local("hookline-sign"),
            floors.signature_ms(),
            local("hookline-db-wri"),
            local("hookline-db-che"),
            local("other"),
            bench,
            total - floors.signature_ms() - exchanges * floors.exchange_ms(),
            busy,
            steal,
            (self.written - before.written) as f64 / n / 1024.0,
        )
    }
}

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
async fn memory(total: usize, webhooks: usize, publishers: usize) -> anyhow::Result<()> {
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

/// The workspace's `target/` and the directory this binary runs from.
fn target_dirs() -> (std::path::PathBuf, Option<std::path::PathBuf>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target"));
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.to_owned()));
    (target, exe_dir)
}

/// Each Lambda's zip size, and its binary's time from exec to its first request to a
/// local Lambda runtime API.
async fn artefacts(runs: usize) -> anyhow::Result<()> {
    let (target, exe_dir) = target_dirs();
    for f in ["api", "fanout", "sender"] {
        let zip = target.join("lambda").join(f).join("bootstrap.zip");
        match std::fs::metadata(&zip) {
            Ok(m) => println!(
                "lambda {f:<7} zip {:.2} MiB (aarch64, cargo lambda build --release --arm64 --output-format zip; target <= 8 MiB)",
                m.len() as f64 / 1048576.0
            ),
            Err(_) => println!("lambda {f:<7} zip not built (cargo lambda build --release --arm64 --output-format zip -p {f})"),
        }
    }
    let Some(exe_dir) = exe_dir else { return Ok(()) };
    let (clients, resources) = tests::moto::provisioned().await;
    drop(clients);
    let env = tests::moto::function_env(&resources);
    let profile = exe_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for f in ["api", "fanout", "sender"] {
        let bin = exe_dir.join(f);
        if !bin.exists() {
            println!("lambda {f:<7} init: {} not built (cargo build --release -p {f})", bin.display());
            continue;
        }
        let event = match f {
            "api" => tests::lambda::api_request_json("GET", "/jwks/webhooks", None, None),
            _ => serde_json::json!({"Records": []}),
        };
        let mut inits = Vec::new();
        for _ in 0..runs {
            let rt = tests::runtime_api::RuntimeApi::start(event.clone()).await;
            let inv = rt.invoke(&bin.display().to_string(), &env).await;
            anyhow::ensure!(inv.kind == "response", "{f} answered {}: {}", inv.kind, inv.body);
            inits.push(inv.init);
        }
        inits.sort();
        println!(
            "lambda {f:<7} init, exec to first runtime API poll ({profile} x86_64 build, {runs} runs): median {:.1} ms, max {:.1} ms (target <= 30 ms)",
            inits[inits.len() / 2].as_secs_f64() * 1000.0,
            inits[inits.len() - 1].as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

/// The child process of the local figures: local mode, configured from the
/// environment and logging as the `hookline` binary does, until killed.
async fn serve_local() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HOOKLINE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = Config::from_lookup(|k| std::env::var(k).ok())?;
    let app = LocalHookline::open(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    app.serve(listener, std::future::pending()).await
}

const SERVE_LOCAL: &str = "--serve-local";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == SERVE_LOCAL) {
        return serve_local().await;
    }
    let smoke = std::env::args().any(|a| a == "--smoke");
    let sizes = if smoke {
        Sizes { window: Duration::from_millis(500), publishers: 2, wide: 200, pending: 1_000, pending_webhooks: 10, aws: 20, init_runs: 1 }
    } else {
        Sizes {
            window: Duration::from_secs(8),
            publishers: 8,
            wide: 10_000,
            pending: 100_000,
            pending_webhooks: 100,
            aws: 100,
            init_runs: 5,
        }
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("hookline-bench{} on {cores} cores", if smoke { " (smoke run: figures are not meaningful)" } else { "" });

    let before = MachineCpu::now();
    let rsa_one = rsa_floor(1, sizes.window)?;
    let rsa_all = rsa_floor(cores, sizes.window)?;
    let (_, steal) = MachineCpu::now().since(&before);
    println!(
        "floor  RSA-2048 signs/s (aws-lc-rs)     1 core: {rsa_one:>9.0}   {cores} cores: {rsa_all:>9.0}   ({steal:.0} % stolen by the hypervisor meanwhile)"
    );

    let sink = Arc::new(Sink::default());
    let url = start_sink(sink.clone()).await?;
    let http = http_floor(&url, 16, sizes.window).await?;
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

    let local = LocalProcess::start(&[]).await?;
    let http_client = reqwest::Client::new();
    let mut webhook_ids = Vec::new();
    let mut results = Vec::new();
    for fan in [1usize, 10] {
        // Reuse webhooks: add until `fan` listen to the event.
        while webhook_ids.len() < fan {
            webhook_ids.push(local.create_webhook(&http_client, &url).await?);
        }
        drain(&sink).await;
        let (cpu_before, arrived_before) = (CpuSnapshot::take(local.pid()?), sink.arrived.load(Ordering::Relaxed));
        let rate = run_e2e(&local, &sink, sizes.publishers, None, sizes.window).await?;
        // Each delivery takes its own exchange with the receiver and a share of the publish.
        let exchanges = 1.0 + 1.0 / fan as f64;
        let cpu = CpuSnapshot::take(local.pid()?).per_delivery(
            &cpu_before,
            sink.arrived.load(Ordering::Relaxed) - arrived_before,
            &floors,
            exchanges,
        );
        println!(
            "local  end to end, {fan:>2} webhook(s)/event  {rate:>9.0} deliveries/s   {:>5.1} % of the {cores}-core RSA floor",
            100.0 * rate / rsa_all
        );
        println!("         {cpu}");
        results.push((fan, rate));
    }

    // Latency at half the sustained fan-out-1 rate: back to one webhook.
    for id in webhook_ids.iter().skip(1) {
        http_client.delete(format!("{}/webhooks/{id}", local.api)).bearer_auth(&local.key).send().await?;
    }
    drain(&sink).await;
    // At half the sustained rate (the figure), and at a light 50 events/s, which shows
    // the pipeline's own latency with hardly any queueing.
    let half = (results[0].1 / 2.0).max(1.0);
    for (label, rate) in [("half load", half), ("light load", 50.0f64.min(half))] {
        let publishers = sizes.publishers.max(1);
        let pace = Duration::from_secs_f64(publishers as f64 / rate);
        if let Ok(mut l) = sink.latencies_us.lock() {
            l.clear();
        }
        let machine = MachineCpu::now();
        let paced = run_e2e(&local, &sink, publishers, Some(pace), sizes.window).await?;
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
    let (peak, _) = rss(local.pid()?)?;
    println!("local  peak RSS of the local-mode process over the runs above: {:.1} MiB", peak as f64 / 1048576.0);
    drop(local);
    if std::env::args().any(|a| a == "--local-only") {
        return Ok(());
    }

    fanout_wide(sizes.wide).await?;
    memory(sizes.pending, sizes.pending_webhooks, sizes.publishers).await?;
    aws::run(sizes.aws, &url).await?;
    artefacts(sizes.init_runs).await?;
    Ok(())
}

// Not `mod tests`: that would hide the `tests` crate this binary uses.
#[cfg(test)]
mod floor_tests {
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
