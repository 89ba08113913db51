//! `hookline-bench`: measures Hookline against the machine's floors, in one run.
//!
//! ```text
//! bash tests/bench.sh            # full run: builds what it needs, starts moto, runs this
//! hookline-bench --smoke         # seconds; the test command runs this (figures mean nothing)
//! hookline-bench --local-only    # floors, local end to end and latency only
//! hookline-bench --aws-only      # AWS calls, write units and the bill only (needs moto)
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

mod artefacts;
mod aws;
mod end_to_end;
mod floors;
mod local;
mod memory;
mod procfs;
mod receiver;
mod wide_fanout;

use local::{LocalProcess, SERVE_LOCAL};
use procfs::rss;
use receiver::{Sink, start_sink};
use std::sync::Arc;
use std::time::Duration;

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == SERVE_LOCAL) {
        return local::serve_local().await;
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
    if std::env::args().any(|a| a == "--aws-only") {
        let sink = Arc::new(Sink::default());
        return aws::run(sizes.aws, &start_sink(sink).await?).await;
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("hookline-bench{} on {cores} cores", if smoke { " (smoke run: figures are not meaningful)" } else { "" });

    let rsa_all = floors::measure_rsa(cores, sizes.window)?;
    let sink = Arc::new(Sink::default());
    let url = start_sink(sink.clone()).await?;
    let floors = floors::measure_http(cores, rsa_all, &url, sizes.window).await?;

    let local = LocalProcess::start(&[]).await?;
    end_to_end::run(&local, &sink, &url, &floors, &sizes).await?;
    let (peak, _) = rss(local.pid()?)?;
    println!("local  peak RSS of the local-mode process over the runs above: {:.1} MiB", peak as f64 / 1048576.0);
    drop(local);
    end_to_end::metrics_cost(&sink, &url, &sizes, if smoke { 1 } else { 3 }).await?;
    if std::env::args().any(|a| a == "--local-only") {
        return Ok(());
    }

    wide_fanout::run(sizes.wide).await?;
    memory::run(sizes.pending, sizes.pending_webhooks, sizes.publishers).await?;
    aws::run(sizes.aws, &url).await?;
    artefacts::run(sizes.init_runs).await?;
    Ok(())
}
