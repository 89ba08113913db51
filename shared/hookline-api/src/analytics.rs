//! Handler of `GET /webhooks/{id}/analytics`: a webhook's attempts by outcome, its
//! deliveries finished, latency percentiles and a chart, over `?window=`.

use crate::error::ApiError;
use crate::extract::{Caller, PathParams, QueryParams};
use crate::routes::{data, load_webhook, webhook_id};
use axum::extract::State;
use axum::response::Response;
use hookline_domain::Hookline;
use hookline_domain::analytics::{self, Report, Window};
use hookline_domain::auth::Scope;
use hookline_domain::time::format;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The window when `?window=` is not given: the last 24 hours, as health shows.
const DEFAULT_WINDOW: Window = Window::Day;

/// `?window=`: one of the four names, or absent.
fn window(q: &QueryParams) -> Result<Window, ApiError> {
    match q.get("window") {
        None => Ok(DEFAULT_WINDOW),
        Some(w) => Window::parse(w).ok_or_else(|| ApiError::invalid("invalid_window", "window must be one of 1h, 24h, 7d, 30d")),
    }
}

/// A report as the API shows it.
fn view(r: &Report) -> Value {
    let by_outcome: Map<String, Value> = r.by_outcome.iter().map(|(c, n)| (c.as_str().to_owned(), json!(n))).collect();
    let (total, succeeded) = (r.attempts(), r.attempts_succeeded());
    let p = r.latency_ms;
    json!({
        "window": r.window.as_str(),
        "since": format(&r.since),
        "until": format(&r.until),
        "totals_since": format(&r.totals_since),
        "bucket_seconds": r.window.bucket_secs(),
        "attempts": {"total": total, "succeeded": succeeded, "failed": total.saturating_sub(succeeded), "by_outcome": by_outcome},
        "deliveries": {"succeeded": r.deliveries_succeeded, "failed": r.deliveries_failed},
        "success_rate": r.success_rate(),
        "latency_ms": {"p50": p.map(|p| p.p50), "p95": p.map(|p| p.p95), "p99": p.map(|p| p.p99)},
        "buckets": r.buckets.iter().map(|b| json!({
            "start": format(&b.start),
            "attempts": b.attempts,
            "succeeded": b.succeeded,
            "failed": b.attempts.saturating_sub(b.succeeded),
        })).collect::<Vec<_>>(),
    })
}

pub(crate) async fn webhook_analytics(
    State(h): State<Arc<Hookline>>,
    caller: Caller,
    p: PathParams,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksRead)?;
    let window = window(&q)?;
    let w = load_webhook(&h, &key.tenant, &webhook_id(&p)?).await?;
    let r = analytics::report(&h, &key.tenant, &w.id, window).await?;
    Ok(data(view(&r)))
}
