//! Local mode's metrics address (`HOOKLINE_METRICS_LISTEN`): `GET /metrics` in the
//! Prometheus text format, the registry's counters and histograms plus the queue's
//! gauges read from the database at each scrape. A separate address, not the API's,
//! so it can stay on a private interface without a key.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hookline_domain::ports::Clock;
use hookline_embedded::SqliteStorage;
use hookline_metrics::Registry;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The Prometheus text format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct Scrape {
    registry: Arc<Registry>,
    storage: SqliteStorage,
    clock: Arc<dyn Clock>,
}

/// Serves `GET /metrics` on `listener` until `stop` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    storage: SqliteStorage,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
    }
    let app = Router::new().route("/metrics", get(metrics)).with_state(Scrape { registry, storage, clock });
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(error = %e, "metrics server failed");
    }
}

async fn metrics(State(s): State<Scrape>) -> Response {
    let (pending, next_due) = match (s.storage.queue_len().await, s.storage.next_due().await) {
        (Ok(n), Ok(due)) => (n, due),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot read the queue");
            return (StatusCode::SERVICE_UNAVAILABLE, "cannot read the queue\n").into_response();
        }
    };
    let late = next_due.map_or(0.0, |due| (s.clock.now() - due).num_milliseconds().max(0) as f64 / 1000.0);
    let text = s.registry.prometheus(&[("hookline_pending_deliveries", pending as f64), ("hookline_oldest_pending_age_seconds", late)]);
    ([(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], text).into_response()
}
