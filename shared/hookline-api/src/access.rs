//! Who may do what: the caller's own view (`/me`), API keys, tenants, and portal links
//! and sessions. Handlers only; the rules live in the domain's `auth` and
//! `usecases::portal`.

use crate::console::ConsoleSettings;
use crate::error::ApiError;
use crate::extract::{Caller, Envelope, PathParams};
use crate::wire::{CreateApiKey, CreatedApiKey, MintLink, OpenSession};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hookline_domain::Hookline;
use hookline_domain::auth::{ApiKey, CredentialKind, Scope};
use hookline_domain::duration::parse_duration;
use hookline_domain::ids::ApiKeyId;
use hookline_domain::jwt::JWKS_PATH;
use hookline_domain::ports::StoreError;
use hookline_domain::time;
use hookline_domain::usecases::portal::{self, Capability, PortalError};
use hookline_domain::usecases::{self, NewApiKey};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::routes::{data, list};

fn capabilities(key: &ApiKey) -> Vec<&'static str> {
    Capability::of(key).into_iter().map(Capability::as_str).collect()
}

fn scopes(key: &ApiKey) -> Vec<&'static str> {
    key.scopes.iter().map(|s| s.as_str()).collect()
}

// ---------------------------------------------------------------- me

pub(crate) async fn me(State(h): State<Arc<Hookline>>, caller: Caller) -> Result<Response, ApiError> {
    let k = &caller.key;
    let kid = h.signer.current_key_id().await?;
    Ok(data(json!({
        "kind": k.kind.as_str(),
        "id": k.id.as_str(),
        "tenant": k.tenant.as_str(),
        "scopes": scopes(k),
        "capabilities": (k.kind == CredentialKind::PortalSession).then(|| capabilities(k)),
        "operator": caller.operator,
        "expires_at": k.expires_at.as_ref().map(time::format),
        "signing": {"jwks_url": JWKS_PATH, "current_key_id": kid},
    })))
}

// ---------------------------------------------------------------- api keys

fn require_admin_key(caller: &Caller) -> Result<&ApiKey, ApiError> {
    let key = caller.require(Scope::Admin)?;
    if key.kind != CredentialKind::Key {
        return Err(ApiError::forbidden("API keys are managed with an admin API key"));
    }
    Ok(key)
}

pub(crate) async fn create_api_key(
    State(h): State<Arc<Hookline>>,
    caller: Caller,
    Envelope(body): Envelope<CreateApiKey>,
) -> Result<Response, ApiError> {
    let admin = require_admin_key(&caller)?;
    let request = NewApiKey { tenant: body.tenant, scopes: body.scopes, description: body.description };
    let (key, secret) = usecases::create_api_key(&h, admin, request).await?;
    Ok((StatusCode::CREATED, data(CreatedApiKey::new(&key, secret.expose()))).into_response())
}

/// The operator's key lists every tenant's keys unless `?tenant=` names one; a
/// tenant's admin key lists its tenant's.
pub(crate) async fn list_api_keys(State(h): State<Arc<Hookline>>, caller: Caller) -> Result<Response, ApiError> {
    let admin = require_admin_key(&caller)?;
    let tenant = (!caller.operator || caller.chose_tenant).then_some(&admin.tenant);
    let keys = h.keys.list(tenant, CredentialKind::Key).await?;
    Ok(list(keys, None))
}

pub(crate) async fn revoke_api_key(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<StatusCode, ApiError> {
    let admin = require_admin_key(&caller)?;
    let missing = || ApiError::not_found("api_key_not_found", "no such API key in this tenant (the operator names another with ?tenant=)");
    let id = p.0.first().and_then(|s| ApiKeyId::parse(s).ok()).ok_or_else(missing)?;
    match h.keys.delete(&admin.tenant, &id, CredentialKind::Key).await {
        Ok(gone) => {
            tracing::info!(key = %gone.id, tenant = %gone.tenant, "api key revoked");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StoreError::NotFound) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

/// Every tenant that holds an API key, with how many; the operator's key only.
pub(crate) async fn list_tenants(State(h): State<Arc<Hookline>>, caller: Caller) -> Result<Response, ApiError> {
    require_admin_key(&caller)?;
    if !caller.operator {
        return Err(ApiError::forbidden("only the operator's admin key (tenant default) lists tenants"));
    }
    let mut tenants: BTreeMap<String, usize> = BTreeMap::new();
    for k in h.keys.list(None, CredentialKind::Key).await? {
        *tenants.entry(k.tenant.to_string()).or_default() += 1;
    }
    Ok(list(tenants.into_iter().map(|(id, n)| json!({"id": id, "api_keys": n})).collect(), None))
}

// ---------------------------------------------------------------- portal

impl From<PortalError> for ApiError {
    fn from(e: PortalError) -> Self {
        let unauthorized = |code| ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string());
        match e {
            PortalError::UnknownCapability(_) => ApiError::invalid("invalid_capability", e.to_string()),
            PortalError::BadLifetime => ApiError::invalid("invalid_expires_in", e.to_string()),
            PortalError::CannotGrant(..) | PortalError::NotAKey => ApiError::forbidden(e.to_string()),
            PortalError::Invalid => unauthorized("portal_link_invalid"),
            PortalError::Expired => unauthorized("portal_link_expired"),
            PortalError::Used => unauthorized("portal_link_used"),
            PortalError::Store(s) => s.into(),
        }
    }
}

/// Where the console is, for a link: `HOOKLINE_PUBLIC_URL`, or the request's own host
/// (its `Host` header, or the authority of its URI).
fn console_base(settings: &ConsoleSettings, headers: &HeaderMap, uri: &Uri) -> String {
    if let Some(u) = &settings.public_url {
        return format!("{}/console/", u.as_str().trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)));
    // API Gateway says how the client came in (X-Forwarded-Proto) and lambda_http puts
    // it in the URI; local mode serves plain HTTP.
    let proto = match (headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()), uri.scheme_str()) {
        (Some("https"), _) | (None, Some("https")) => "https",
        _ => "http",
    };
    match host {
        Some(host) => format!("{proto}://{host}/console/"),
        None => "/console/".to_owned(),
    }
}

pub(crate) async fn mint_link(
    State(h): State<Arc<Hookline>>,
    Extension(settings): Extension<Arc<ConsoleSettings>>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    Envelope(body): Envelope<MintLink>,
) -> Result<Response, ApiError> {
    let ttl = body
        .expires_in
        .map(|s| {
            parse_duration(&s)
                .map_err(|_| PortalError::BadLifetime)
                .and_then(|d| chrono::Duration::from_std(d).map_err(|_| PortalError::BadLifetime))
        })
        .transpose()?;
    let tenant = caller.key.tenant.clone();
    let (link, token) = portal::mint_link(&h, &caller.key, &tenant, &body.capabilities.unwrap_or_default(), ttl).await?;
    let url = format!("{}#portal={}", console_base(&settings, &headers, &uri), token.expose());
    let view = json!({
        "id": link.id.as_str(),
        "tenant": link.tenant.as_str(),
        "capabilities": capabilities(&link),
        "expires_at": link.expires_at.as_ref().map(time::format),
        "token": token.expose(),
        "url": url,
    });
    Ok((StatusCode::CREATED, data(view)).into_response())
}

/// Listing and revoking a tenant's portal links takes an API key that may manage its
/// webhooks (a read-only key could otherwise end every customer's session).
fn require_link_manager(caller: &Caller) -> Result<&ApiKey, ApiError> {
    let key = caller.require(Scope::WebhooksManage)?;
    if key.kind != CredentialKind::Key {
        return Err(ApiError::forbidden(PortalError::NotAKey.to_string()));
    }
    Ok(key)
}

/// A tenant's portal links, oldest first (never their tokens).
pub(crate) async fn list_links(State(h): State<Arc<Hookline>>, caller: Caller) -> Result<Response, ApiError> {
    let key = require_link_manager(&caller)?;
    let links = h.keys.list(Some(&key.tenant), CredentialKind::PortalLink).await?;
    let views = links
        .iter()
        .map(|l| {
            json!({
                "id": l.id.as_str(),
                "tenant": l.tenant.as_str(),
                "capabilities": capabilities(l),
                "created_at": time::format(&l.created_at),
                "expires_at": l.expires_at.as_ref().map(time::format),
                "used_at": l.used_at.as_ref().map(time::format),
            })
        })
        .collect();
    Ok(list(views, None))
}

pub(crate) async fn revoke_link(State(h): State<Arc<Hookline>>, caller: Caller, p: PathParams) -> Result<StatusCode, ApiError> {
    let key = require_link_manager(&caller)?;
    let missing = || ApiError::not_found("portal_link_not_found", "no such portal link in this tenant");
    let id = p.0.first().and_then(|s| ApiKeyId::parse(s).ok()).ok_or_else(missing)?;
    match portal::revoke_link(&h, &key.tenant, &id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn revoke_all_links(State(h): State<Arc<Hookline>>, caller: Caller) -> Result<Response, ApiError> {
    let key = require_link_manager(&caller)?;
    let revoked = portal::revoke_all_links(&h, &key.tenant).await?;
    Ok(data(json!({"revoked": revoked})))
}

pub(crate) async fn open_session(State(h): State<Arc<Hookline>>, Envelope(body): Envelope<OpenSession>) -> Result<Response, ApiError> {
    if body.token.is_empty() || body.token.len() > 256 {
        return Err(PortalError::Invalid.into());
    }
    let (session, token) = portal::open_session(&h, &body.token).await?;
    let view = json!({
        "token": token.expose(),
        "tenant": session.tenant.as_str(),
        "capabilities": capabilities(&session),
        "scopes": scopes(&session),
        "expires_at": session.expires_at.as_ref().map(time::format),
    });
    Ok((StatusCode::CREATED, data(view)).into_response())
}
