//! Routes and handlers.

use crate::access::{
    create_api_key, list_api_keys, list_links, list_tenants, me, mint_link, open_session, revoke_all_links, revoke_api_key, revoke_link,
};
use crate::analytics::webhook_analytics;
use crate::console::{self, ConsoleSettings};
use crate::error::ApiError;
use crate::extract::{Caller, Envelope, EventEnvelope, OptionalEnvelope, PathParams, QueryParams};
use crate::recovery::{cancel_recovery, get_recovery, list_recoveries, recover};
use crate::wire::{CreateWebhook, DeliveryView, EventFields, RotateSecret, TestWebhook, UpdateWebhook, WebhookView};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use axum::{Extension, Json};
use futures::StreamExt;
use hookline_domain::Hookline;
use hookline_domain::auth::Scope;
use hookline_domain::catalog::EventName;
use hookline_domain::delivery::{DeliveryFilter, DeliveryStatus};
use hookline_domain::duration::parse_duration;
use hookline_domain::ids::{AttemptId, DeliveryId, EventId, TenantId, WebhookId};
use hookline_domain::jwt::{JWKS_PATH, Jwks};
use hookline_domain::ports::StoreError;
use hookline_domain::send::{attempt_once, rebuilt_request};
use hookline_domain::usecases::{self, IdempotencyKey, Published};
use hookline_domain::webhook::{SigningSecret, Webhook, WebhookError};
use serde_json::{Value, json};
use std::sync::Arc;

/// How many test payloads `POST /webhooks/{id}/test` sends at once.
const TEST_CONCURRENCY: usize = 8;
/// Window of `GET /webhooks/{id}/health`: the last 24 hours, as webhook consoles show.
const HEALTH_WINDOW_HOURS: i64 = 24;

/// Where the API serves its own description.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The OpenAPI 3.1 description of this API (`shared/hookline-api/openapi.json`),
/// written by hand and served as is at [`OPENAPI_PATH`]. Tests check it against
/// [`ROUTES`] and real answers, and the test command fuzzes the API against it.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Declares every route once: each line gives [`ROUTES`] its entry and the router
/// its handler, so the list cannot leave out a route the router serves.
macro_rules! routes {
    ($($method:ident $path:expr => $handler:ident,)*) => {
        /// Every route the API serves, as (method, path template). `HEAD` is served
        /// wherever `GET` is; any other method on a known path answers 405.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn add_routes(router: Router<Arc<Hookline>>) -> Router<Arc<Hookline>> {
            router$(.route($path, on(MethodFilter::$method, $handler)))*
        }
    };
}

routes! {
    GET "/me" => me,
    GET "/api-keys" => list_api_keys,
    POST "/api-keys" => create_api_key,
    DELETE "/api-keys/{id}" => revoke_api_key,
    GET "/tenants" => list_tenants,
    GET "/portal/links" => list_links,
    POST "/portal/links" => mint_link,
    DELETE "/portal/links" => revoke_all_links,
    DELETE "/portal/links/{id}" => revoke_link,
    POST "/portal/sessions" => open_session,
    GET "/event-types" => event_types,
    GET "/webhooks" => list_webhooks,
    POST "/webhooks" => create_webhook,
    GET "/webhooks/events" => event_catalog,
    GET "/webhooks/{id}" => get_webhook,
    PATCH "/webhooks/{id}" => update_webhook,
    DELETE "/webhooks/{id}" => delete_webhook,
    GET "/webhooks/{id}/deliveries" => list_deliveries,
    GET "/webhooks/{id}/deliveries/{delivery_id}" => get_delivery,
    GET "/webhooks/{id}/deliveries/{delivery_id}/attempts/{attempt_id}" => get_attempt,
    POST "/webhooks/{id}/deliveries/{delivery_id}/redeliver" => redeliver,
    POST "/webhooks/{id}/test" => test_webhook,
    POST "/webhooks/{id}/secret/rotate" => rotate_secret,
    GET "/webhooks/{id}/health" => webhook_health,
    GET "/webhooks/{id}/analytics" => webhook_analytics,
    POST "/webhooks/{id}/recover" => recover,
    GET "/webhooks/{id}/recoveries" => list_recoveries,
    GET "/webhooks/{id}/recoveries/{recovery_id}" => get_recovery,
    DELETE "/webhooks/{id}/recoveries/{recovery_id}" => cancel_recovery,
    GET "/events" => list_events,
    POST "/events" => publish_event,
    GET "/events/{id}" => get_event,
    GET JWKS_PATH => jwks,
    GET OPENAPI_PATH => openapi,
}

/// The whole API and the console, with the console's default settings. The same
/// router serves local mode, the API Lambda and tests.
pub fn router(state: Arc<Hookline>) -> Router {
    router_with(state, ConsoleSettings::default())
}

/// The whole API and the console (`/console/`), the console as `console` says.
pub fn router_with(state: Arc<Hookline>, console: ConsoleSettings) -> Router {
    add_routes(Router::new())
        .merge(console::routes(console.clone()))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(Extension(Arc::new(console)))
        .with_state(state)
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found("not_found", format!("no route for {}", uri.path().chars().take(200).collect::<String>()))
}

async fn wrong_method() -> Response {
    let body = json!({"error": {"code": "method_not_allowed", "message": "this method is not allowed on this path"}});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

/// The `{"data": ...}` envelope. Serialized straight from the value (not through
/// `serde_json::Value`), so stored event documents go out byte for byte.
#[derive(serde::Serialize)]
struct Data<T> {
    data: T,
}

#[derive(serde::Serialize)]
pub(crate) struct List<T> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

pub(crate) fn data(v: impl serde::Serialize) -> Response {
    Json(Data { data: v }).into_response()
}

pub(crate) fn list<T: serde::Serialize>(items: Vec<T>, next: Option<hookline_domain::page::Cursor>) -> Response {
    Json(List { data: items, next_cursor: next.map(|c| c.encode()) }).into_response()
}

pub(crate) fn webhook_id(p: &PathParams) -> Result<WebhookId, ApiError> {
    p.0.first().and_then(|s| WebhookId::parse(s).ok()).ok_or_else(|| ApiError::not_found("webhook_not_found", "no such webhook"))
}

fn delivery_id(p: &PathParams) -> Result<DeliveryId, ApiError> {
    p.0.get(1).and_then(|s| DeliveryId::parse(s).ok()).ok_or_else(|| ApiError::not_found("delivery_not_found", "no such delivery"))
}

fn not_found(code: &'static str, what: &str) -> impl FnOnce(StoreError) -> ApiError {
    let what = what.to_owned();
    move |e| match e {
        StoreError::NotFound => ApiError::not_found(code, format!("no such {what}")),
        other => other.into(),
    }
}

pub(crate) async fn load_webhook(h: &Hookline, tenant: &TenantId, id: &WebhookId) -> Result<Webhook, ApiError> {
    h.webhooks.get(tenant, id).await.map_err(not_found("webhook_not_found", "webhook"))
}

// ---------------------------------------------------------------- webhooks

/// Refuses an endpoint whose name resolves to an address deliveries may not go to.
async fn vet_endpoint(h: &Hookline, w: &Webhook) -> Result<(), ApiError> {
    h.http.vet_target(w.endpoint_url.url()).await.map_err(|found| {
        ApiError::invalid(
            "private_endpoint",
            format!("endpoint_url points at a private or internal address ({found}); such targets are refused"),
        )
    })
}

async fn create_webhook(
    State(h): State<Arc<Hookline>>,
    caller: Caller,
    Envelope(body): Envelope<CreateWebhook>,
) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksManage)?;
    let (w, secret) = usecases::prepare_webhook(&h, &key.tenant, body.into())?;
    vet_endpoint(&h, &w).await?;
    let written = usecases::store_webhook(&h, w, secret).await?;
    let w = &written.webhook;
    tracing::info!(webhook = %w.id, tenant = %w.tenant, "webhook created");
    Ok((StatusCode::CREATED, data(WebhookView::with_secret(w, written.new_secret.as_ref()))).into_response())
}

async fn list_webhooks(State(h): State<Arc<Hookline>>, caller: Caller, q: QueryParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksRead)?;
    let page = h.webhooks.list(&key.tenant, &q.page()?).await?;
    Ok(list(page.items.iter().map(WebhookView::from).collect(), page.next_cursor))
}

async fn event_catalog(State(h): State<Arc<Hookline>>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Scope::WebhooksRead)?;
    let names: Vec<&str> = h.policy.catalog.names().map(|n| n.as_str()).collect();
    Ok(data(names))
}

/// The catalogue with an example document per name: the event a test sends.
async fn event_types(State(h): State<Arc<Hookline>>, caller: Caller) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksRead)?;
    let mut types = Vec::new();
    for name in h.policy.catalog.names() {
        let example = usecases::test_event(&key.tenant, name, &h.policy.catalog, h.clock.now())?;
        types.push(json!({"name": name.as_str(), "example": example.document}));
    }
    Ok(data(types))
}

async fn get_webhook(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksRead)?;
    let w = load_webhook(&h, &key.tenant, &webhook_id(&p)?).await?;
    Ok(data(WebhookView::from(&w)))
}

async fn update_webhook(
    State(h): State<Arc<Hookline>>,
    caller: Caller,
    p: PathParams,
    Envelope(body): Envelope<UpdateWebhook>,
) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksManage)?;
    let current = load_webhook(&h, &key.tenant, &webhook_id(&p)?).await?;
    let updated = current.apply(body.into(), &h.policy.catalog, &h.policy.endpoints, h.clock.now())?;
    // Changing the schemes makes or ends secrets: the secrets scope's business.
    if updated.signatures != current.signatures {
        caller.require(Scope::WebhooksSecrets)?;
    }
    if updated.endpoint_url != current.endpoint_url {
        vet_endpoint(&h, &updated).await?;
    }
    let written = usecases::store_update(&h, updated).await?;
    let updated = &written.webhook;
    if current.active != updated.active {
        tracing::info!(webhook = %updated.id, active = updated.active, "webhook {}", if updated.active { "enabled" } else { "disabled" });
    }
    Ok(data(WebhookView::with_secret(updated, written.new_secret.as_ref())))
}

async fn rotate_secret(
    State(h): State<Arc<Hookline>>,
    caller: Caller,
    p: PathParams,
    body: OptionalEnvelope<RotateSecret>,
) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksSecrets)?;
    let body = body.0.unwrap_or_default();
    let grace = body
        .grace_period
        .map(|g| {
            parse_duration(&g)
                .map_err(|_| ApiError::invalid("invalid_grace_period", "grace_period must be a duration from 0s to 7d, like 24h"))
        })
        .transpose()?;
    let given = body.secret.map(|s| SigningSecret::parse(&s)).transpose().map_err(|e| ApiError::from(WebhookError::from(e)))?;
    let written = usecases::rotate_secret(&h, &key.tenant, &webhook_id(&p)?, grace, given).await?;
    tracing::info!(webhook = %written.webhook.id, "webhook secret rotated");
    Ok(data(WebhookView::with_secret(&written.webhook, written.new_secret.as_ref())))
}

async fn delete_webhook(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<StatusCode, ApiError> {
    let key = caller.require(Scope::WebhooksManage)?;
    let id = webhook_id(&p)?;
    h.webhooks.delete(&key.tenant, &id).await.map_err(not_found("webhook_not_found", "webhook"))?;
    tracing::info!(webhook = %id, "webhook deleted; its pending deliveries end at their next due time");
    Ok(StatusCode::NO_CONTENT)
}

async fn list_deliveries(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams, q: QueryParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksRead)?;
    let w = load_webhook(&h, &key.tenant, &webhook_id(&p)?).await?;
    let filter = delivery_filter(&q)?;
    let page = h.deliveries.list(&key.tenant, &w.id, &filter, &q.page()?).await?;
    Ok(list(page.items.iter().map(DeliveryView::summary).collect(), page.next_cursor))
}

async fn get_delivery(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksRead)?;
    let w = load_webhook(&h, &key.tenant, &webhook_id(&p)?).await?;
    let d = h.deliveries.get(&key.tenant, &w.id, &delivery_id(&p)?).await.map_err(not_found("delivery_not_found", "delivery"))?;
    let attempts = h.deliveries.attempts(&key.tenant, &w.id, &d.id).await?;
    Ok(data(DeliveryView::detail(&d, &attempts)))
}

/// One attempt with its request rebuilt: headers (signatures not kept) and body.
async fn get_attempt(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksRead)?;
    let w = load_webhook(&h, &key.tenant, &webhook_id(&p)?).await?;
    let d = h.deliveries.get(&key.tenant, &w.id, &delivery_id(&p)?).await.map_err(not_found("delivery_not_found", "delivery"))?;
    let missing = || ApiError::not_found("attempt_not_found", "no such attempt of this delivery");
    let id = p.0.get(2).and_then(|s| AttemptId::parse(s).ok()).ok_or_else(missing)?;
    let attempts = h.deliveries.attempts(&key.tenant, &w.id, &d.id).await?;
    let a = attempts.into_iter().find(|a| a.id == id).ok_or_else(missing)?;
    let event = h.events.get(&key.tenant, &d.event_id).await.map_err(not_found("event_not_found", "event"))?;
    let (headers, body) = rebuilt_request(&h, &w, &event, &d.id, &a.id, a.attempted_at);
    let headers: serde_json::Map<String, Value> = headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    Ok(data(json!({
        "id": a.id.as_str(),
        "attempted_at": hookline_domain::time::format(&a.attempted_at),
        "status_code": a.status_code,
        "duration_ms": a.duration_ms,
        "error": a.error,
        "response_body": a.response_body,
        "request": {
            "method": w.policy.method.as_str(),
            "url": w.endpoint_url.as_str(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        },
    })))
}

/// `?status=`, `?event_name=`, `?since=` and `?until=` (RFC 3339) of a deliveries listing.
fn delivery_filter(q: &QueryParams) -> Result<DeliveryFilter, ApiError> {
    let given = |name: &str| q.get(name).filter(|v| !v.is_empty());
    let time = |name: &'static str| {
        given(name)
            .map(|v| {
                hookline_domain::time::parse(v)
                    .ok_or_else(|| ApiError::invalid("invalid_time", format!("{name} must be an RFC 3339 time, like 2026-12-01T10:00:00Z")))
            })
            .transpose()
    };
    let (since, until) = (time("since")?, time("until")?);
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(ApiError::invalid("invalid_time", "since must be before until"));
    }
    Ok(DeliveryFilter {
        status: given("status")
            .map(|s| s.parse::<DeliveryStatus>().map_err(|e| ApiError::invalid("invalid_status", format!("status {e}"))))
            .transpose()?,
        event_name: given("event_name")
            .map(|s| EventName::parse(s).map_err(|e| ApiError::invalid("invalid_event_name", format!("event_name: {e}"))))
            .transpose()?,
        since,
        until,
    })
}

async fn redeliver(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::DeliveriesWrite)?;
    let d = usecases::redeliver(&h, &key.tenant, &webhook_id(&p)?, &delivery_id(&p)?).await?;
    Ok((StatusCode::ACCEPTED, data(DeliveryView::summary(&d))).into_response())
}

async fn test_webhook(
    State(h): State<Arc<Hookline>>,
    caller: Caller,
    p: PathParams,
    body: OptionalEnvelope<TestWebhook>,
) -> Result<Response, ApiError> {
    let key = caller.require(Scope::DeliveriesWrite)?;
    let w = load_webhook(&h, &key.tenant, &webhook_id(&p)?).await?;
    let mut names: Vec<_> = h.policy.catalog.expand(&w.listened_events).cloned().collect();
    if let Some(one) = body.0.and_then(|b| b.event_name) {
        names.retain(|n| n.as_str() == one);
        if names.is_empty() {
            return Err(ApiError::invalid(
                "invalid_event_name",
                format!("event_name: this webhook does not listen to {:?}", one.chars().take(100).collect::<String>()),
            ));
        }
    }
    let results: Vec<Result<Value, ApiError>> = futures::stream::iter(names)
        .map(|name| {
            let (h, w) = (h.clone(), w.clone());
            async move {
                let event = usecases::test_event(&w.tenant, &name, &h.policy.catalog, h.clock.now())?;
                let r = attempt_once(&h, &w, &event, &DeliveryId::generate(), AttemptId::generate()).await?;
                Ok(json!({
                    "event_name": name.as_str(),
                    "success": r.attempt.succeeded(),
                    "status_code": r.attempt.status_code,
                    "duration_ms": r.attempt.duration_ms,
                    "error": r.attempt.error,
                    "response_body": r.attempt.response_body,
                }))
            }
        })
        .buffered(TEST_CONCURRENCY)
        .collect()
        .await;
    Ok(data(results.into_iter().collect::<Result<Vec<_>, _>>()?))
}

async fn webhook_health(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::WebhooksRead)?;
    let w = load_webhook(&h, &key.tenant, &webhook_id(&p)?).await?;
    let since = h.clock.now() - chrono::Duration::hours(HEALTH_WINDOW_HOURS);
    let s = h.deliveries.attempt_stats(&key.tenant, &w.id, since).await?;
    let rate = if s.total == 0 { None } else { Some(s.succeeded as f64 / s.total as f64) };
    Ok(data(json!({
        "total": s.total,
        "succeeded": s.succeeded,
        "failed": s.total - s.succeeded,
        "success_rate": rate,
        "window_hours": HEALTH_WINDOW_HOURS,
    })))
}

// ---------------------------------------------------------------- events

/// Header that makes `POST /events` idempotent per tenant for 24 hours.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

async fn publish_event(
    State(h): State<Arc<Hookline>>,
    caller: Caller,
    headers: HeaderMap,
    EventEnvelope(fields): EventEnvelope<EventFields>,
) -> Result<Response, ApiError> {
    let key = caller.require(Scope::EventsWrite)?;
    let idempotency_key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => Some(IdempotencyKey::parse(v.as_bytes()).map_err(|e| ApiError::invalid("invalid_idempotency_key", e.to_string()))?),
    };
    match usecases::publish(&h, &key.tenant, fields.0, idempotency_key.as_ref()).await? {
        Published::New(event) => Ok((StatusCode::CREATED, data(&event.document)).into_response()),
        // A repeat (or the loser of two requests racing on one fresh key): the first
        // event, and nothing published again.
        Published::Replayed(first) => {
            let mut resp = (StatusCode::OK, data(&first.document)).into_response();
            resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(resp)
        }
    }
}

async fn list_events(State(h): State<Arc<Hookline>>, caller: Caller, q: QueryParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::EventsRead)?;
    let page = h.events.list(&key.tenant, &q.page()?).await?;
    Ok(list(page.items.iter().map(|e| &e.document).collect(), page.next_cursor))
}

async fn get_event(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<Response, ApiError> {
    let key = caller.require(Scope::EventsRead)?;
    let id = p.0.first().and_then(|s| EventId::parse(s).ok()).ok_or_else(|| ApiError::not_found("event_not_found", "no such event"))?;
    let e = h.events.get(&key.tenant, &id).await.map_err(not_found("event_not_found", "event"))?;
    Ok(data(&e.document))
}

// ---------------------------------------------------------------- public documents

async fn jwks(State(h): State<Arc<Hookline>>) -> Result<Json<Jwks>, ApiError> {
    Ok(Json(Jwks { keys: h.signer.public_keys().await? }))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], OPENAPI_JSON).into_response()
}
