//! Handlers of bulk recovery: `POST /webhooks/{id}/recover` (a dry run's count, or the
//! recovery started) and the recovery resources under `/webhooks/{id}/recoveries`.

use crate::error::ApiError;
use crate::extract::{Caller, Envelope, PathParams};
use crate::routes::{data, load_webhook, webhook_id};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hookline_domain::Hookline;
use hookline_domain::auth::Scope;
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::ids::RecoveryId;
use hookline_domain::recovery::{self, RecoverError, Recovery, RecoveryRequest, Started};
use hookline_domain::time::{Timestamp, format, parse};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// `POST /webhooks/{id}/recover` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverBody {
    since: String,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    dry_run: Option<bool>,
}

fn instant(field: &'static str, code: &'static str, s: &str) -> Result<Timestamp, ApiError> {
    parse(s).ok_or_else(|| ApiError::invalid(code, format!("{field}: not an RFC 3339 date-time")))
}

impl RecoverBody {
    fn request(&self) -> Result<RecoveryRequest, ApiError> {
        let status = match self.status.as_deref() {
            None | Some("failed") => DeliveryStatus::Failed,
            Some("succeeded") => DeliveryStatus::Succeeded,
            Some(_) => return Err(ApiError::invalid("invalid_status", "status: one of failed, succeeded")),
        };
        Ok(RecoveryRequest {
            since: instant("since", "invalid_since", &self.since)?,
            until: self.until.as_deref().map(|u| instant("until", "invalid_until", u)).transpose()?,
            status,
        })
    }
}

impl From<RecoverError> for ApiError {
    fn from(e: RecoverError) -> Self {
        match e {
            RecoverError::Window(m) if m.starts_with("until") => ApiError::invalid("invalid_until", m),
            RecoverError::Window(m) => ApiError::invalid("invalid_since", m),
            RecoverError::Status => ApiError::invalid("invalid_status", e.to_string()),
            RecoverError::WebhookNotFound => ApiError::not_found("webhook_not_found", "no such webhook"),
            RecoverError::WebhookDisabled => ApiError::conflict("webhook_disabled", e.to_string()),
            RecoverError::Running(_) => ApiError::conflict("recovery_running", e.to_string()),
            RecoverError::NotFound => ApiError::not_found("recovery_not_found", "no such recovery"),
            RecoverError::Store(e) => e.into(),
            RecoverError::Queue(e) => e.into(),
        }
    }
}

/// A recovery as the API shows it.
fn view(r: &Recovery) -> serde_json::Value {
    json!({
        "id": r.id.as_str(),
        "webhook_id": r.webhook_id.as_str(),
        "since": format(&r.since),
        "until": format(&r.until),
        "status": r.status.as_str(),
        "state": r.state.as_str(),
        "matched": r.matched,
        "sent": r.sent,
        "created_at": format(&r.created_at),
        "updated_at": format(&r.updated_at),
        "finished_at": r.finished_at.as_ref().map(format),
        "reason": r.reason,
    })
}

fn recovery_id(p: &PathParams) -> Result<RecoveryId, ApiError> {
    p.0.get(1).and_then(|s| RecoveryId::parse(s).ok()).ok_or_else(|| ApiError::not_found("recovery_not_found", "no such recovery"))
}

pub(crate) async fn recover(
    State(h): State<Arc<Hookline>>,
    caller: Caller,
    p: PathParams,
    Envelope(body): Envelope<RecoverBody>,
) -> Result<Response, ApiError> {
    let key = caller.require(Scope::DeliveriesWrite)?;
    let webhook = webhook_id(&p)?;
    let req = body.request()?;
    if body.dry_run == Some(true) {
        let would_send = recovery::count(&h, &key.tenant, &webhook, &req).await?;
        return Ok(data(json!({"dry_run": true, "would_send": would_send})));
    }
    let (status, r) = match recovery::start(&h, &key.tenant, &webhook, &req).await? {
        Started::New(r) => (StatusCode::ACCEPTED, r),
        Started::Existing(r) => (StatusCode::OK, r),
    };
    let location = format!("/webhooks/{}/recoveries/{}", r.webhook_id, r.id);
    Ok((status, [(header::LOCATION, location)], data(view(&r))).into_response())
}

pub(crate) async fn list_recoveries(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksRead)?;
    let w = load_webhook(&h, &key.tenant, &webhook_id(&p)?).await?;
    let found = h.recoveries.list(&key.tenant, &w.id).await?;
    Ok(data(found.iter().map(view).collect::<Vec<_>>()))
}

pub(crate) async fn get_recovery(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksRead)?;
    let r = recovery::get(&h, &key.tenant, &webhook_id(&p)?, &recovery_id(&p)?).await?;
    Ok(data(view(&r)))
}

pub(crate) async fn cancel_recovery(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::DeliveriesWrite)?;
    let r = recovery::cancel(&h, &key.tenant, &webhook_id(&p)?, &recovery_id(&p)?).await?;
    Ok(data(view(&r)))
}
