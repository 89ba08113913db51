//! Extractors that turn raw requests into checked input, each failing with an
//! [`ApiError`] rather than axum's plain-text rejections.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use hookline_domain::Hookline;
use hookline_domain::auth::{ApiKey, CredentialKind, Scope};
use hookline_domain::ids::TenantId;
use hookline_domain::page::{Cursor, DEFAULT_LIMIT, MAX_LIMIT, PageRequest};
use hookline_domain::usecases::portal::{self, AuthError};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::sync::Arc;

/// Largest request body other than an event, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The caller, authenticated by its `Authorization: Bearer` token: an API key or a
/// portal session. `key.tenant` is the tenant it acts within: its own, or, for the
/// operator's key (admin on tenant `default`), any tenant named by `?tenant=`.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The credential, with the tenant it acts within.
    pub key: ApiKey,
    /// Whether it is the operator's key.
    pub operator: bool,
    /// Whether `?tenant=` named the tenant.
    pub chose_tenant: bool,
}

impl Caller {
    /// Fails with 403 unless the credential carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<&ApiKey, ApiError> {
        if self.key.allows(scope) {
            Ok(&self.key)
        } else {
            let what = if self.key.kind == CredentialKind::PortalSession { "this portal session" } else { "this API key" };
            Err(ApiError::forbidden(format!("{what} lacks the {} scope", scope.as_str())))
        }
    }
}

/// The `?tenant=` of a request, checked: only the operator's key may name a tenant
/// other than its own.
fn chosen_tenant(parts: &Parts, key: &ApiKey) -> Result<Option<TenantId>, ApiError> {
    let q = parts.uri.query().unwrap_or("");
    let Some(value) = url::form_urlencoded::parse(q.as_bytes()).filter(|(k, _)| k == "tenant").map(|(_, v)| v.into_owned()).last() else {
        return Ok(None);
    };
    let tenant =
        TenantId::parse(&value).map_err(|e| ApiError::invalid("invalid_tenant", format!("tenant: {e}; use 1-64 of a-z, 0-9, _ and -")))?;
    if tenant != key.tenant && !key.is_operator() {
        return Err(ApiError::forbidden("only the operator's admin key may act within another tenant (?tenant=)"));
    }
    Ok(Some(tenant))
}

impl FromRequestParts<Arc<Hookline>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<Hookline>) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <api key> header"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| ApiError::unauthorized("Authorization must be Bearer <api key>"))?;
        let mut key = match portal::authenticate(state, token).await {
            Ok(key) => key,
            Err(AuthError::Store(e)) => return Err(e.into()),
            Err(e @ AuthError::Expired) => return Err(ApiError::new(StatusCode::UNAUTHORIZED, "session_expired", e.to_string())),
            Err(e @ AuthError::Revoked) => return Err(ApiError::new(StatusCode::UNAUTHORIZED, "session_revoked", e.to_string())),
            Err(e) => return Err(ApiError::unauthorized(e.to_string())),
        };
        let operator = key.is_operator();
        let chosen = chosen_tenant(parts, &key)?;
        let chose_tenant = chosen.is_some();
        if let Some(t) = chosen {
            key.tenant = t;
        }
        Ok(Caller { key, operator, chose_tenant })
    }
}

/// The path's parameters, in order, as text.
#[derive(Debug, Clone)]
pub struct PathParams(pub Vec<String>);

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw =
            RawPathParams::from_request_parts(parts, state).await.map_err(|_| ApiError::not_found("not_found", "no such resource"))?;
        Ok(PathParams(raw.iter().map(|(_, v)| v.to_owned()).collect()))
    }
}

/// Query parameters, decoded leniently (invalid UTF-8 becomes U+FFFD and then fails
/// the parameter's own validation).
#[derive(Debug, Clone, Default)]
pub struct QueryParams(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        Ok(QueryParams(url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()))
    }
}

impl QueryParams {
    /// The last value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// `?limit=` (1–100, default 25) and `?cursor=`.
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = match self.get("limit") {
            None => DEFAULT_LIMIT,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid("invalid_limit", format!("limit must be a whole number from 1 to {MAX_LIMIT}")));
                }
            },
        };
        let after = match self.get("cursor") {
            None | Some("") => None,
            Some(c) => Some(Cursor::decode(c).ok_or_else(|| ApiError::invalid("invalid_cursor", "cursor is not one this API returned"))?),
        };
        Ok(PageRequest { limit, after })
    }
}

/// A JSON body `{"data": T}`, read up to a size limit.
///
/// One rule for unknown fields: webhook and API-key bodies refuse them (422
/// `invalid_body`, naming the field), so a typo never silently does nothing; an
/// event's `data` keeps every field, since events are the publisher's own documents.
pub struct Envelope<T, const LIMIT: usize = MAX_BODY_BYTES>(pub T);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<T> {
    data: T,
}

/// Longest a client may take to send a request body, from the end of its headers,
/// unless the server sets another with a [`BodyReadTimeout`] request extension.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long this request's body may take to arrive: a request extension a server sets
/// (local mode, from `HOOKLINE_BODY_READ_TIMEOUT`); without it, [`BODY_READ_TIMEOUT`].
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub std::time::Duration);

/// Reads a body of at most `limit` bytes. A body declared longer (`Content-Length`) is
/// refused at once, unread, so a client announcing a huge body cannot hold the
/// connection while it trickles; one that takes longer than its [`BodyReadTimeout`] to
/// arrive is answered 408. Both answers close the connection, since the rest of the
/// body is never read.
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::too_large(format!("request body exceeds {limit} bytes"));
    let declared = req.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let timeout = req.extensions().get::<BodyReadTimeout>().map_or(BODY_READ_TIMEOUT, |t| t.0);
    match tokio::time::timeout(timeout, axum::body::to_bytes(req.into_body(), limit)).await {
        Ok(body) => body.map_err(|_| too_large()),
        Err(_) => Err(ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request body did not arrive within {} ms", timeout.as_millis()),
        )),
    }
}

/// Parses `{"data": T}` from bytes with the API's error mapping.
///
/// The body and its `data` must both be JSON objects. Serde would also read a struct
/// from an array of its fields in order (`[["https://…", ["*"]]]` as a webhook), a
/// second spelling the API does not offer; so `data` is first taken as raw JSON, its
/// shape checked, and only then read as `T`.
pub fn parse_envelope<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("malformed_json", "request body is empty; expected {\"data\": {...}}"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Taking `data` raw walks it without recursion, so deep nesting cannot exhaust the
    // stack here; reading `T` from it then meets serde_json's recursion limit (128).
    let wire: Wire<Box<RawValue>> =
        serde::Deserialize::deserialize(&mut de).and_then(|w| de.end().map(|_| w)).map_err(|e| body_error(e, ""))?;
    if !bytes.trim_ascii_start().starts_with(b"{") || !wire.data.get().starts_with('{') {
        return Err(ApiError::invalid("invalid_body", "request body must be {\"data\": {...}}, with data a JSON object"));
    }
    serde_json::from_str(wire.data.get()).map_err(|e| body_error(e, "data: "))
}

fn body_error(e: serde_json::Error, place: &str) -> ApiError {
    if e.is_syntax() || e.is_eof() {
        ApiError::bad_request("malformed_json", format!("request body is not valid JSON: {place}{e}"))
    } else {
        ApiError::invalid("invalid_body", format!("request body does not match {{\"data\": {{...}}}}: {place}{e}"))
    }
}

impl<T: DeserializeOwned, const LIMIT: usize> FromRequest<Arc<Hookline>> for Envelope<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &Arc<Hookline>) -> Result<Self, ApiError> {
        let bytes = read_body(req, LIMIT).await?;
        parse_envelope(&bytes).map(Envelope)
    }
}

/// A body `{"data": T}` that may be left out: an empty body, or `{}`, is `None`.
pub struct OptionalEnvelope<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<Arc<Hookline>> for OptionalEnvelope<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &Arc<Hookline>) -> Result<Self, ApiError> {
        let bytes = read_body(req, MAX_BODY_BYTES).await?;
        let nothing = bytes.iter().filter(|b| !b.is_ascii_whitespace()).take(3).copied().collect::<Vec<u8>>();
        if nothing.is_empty() || nothing == b"{}" {
            return Ok(OptionalEnvelope(None));
        }
        parse_envelope(&bytes).map(|v| OptionalEnvelope(Some(v)))
    }
}

/// An event body `{"data": {...}}`, read up to the configured `max_event_bytes`.
pub struct EventEnvelope<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<Hookline>> for EventEnvelope<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<Hookline>) -> Result<Self, ApiError> {
        let bytes = read_body(req, state.policy.max_event_bytes).await?;
        parse_envelope(&bytes).map(EventEnvelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Hook {
        url: String,
        events: Vec<String>,
    }

    fn parse(body: &str) -> Result<Hook, (u16, &'static str)> {
        parse_envelope::<Hook>(body.as_bytes()).map_err(|e| (e.status().as_u16(), e.code()))
    }

    #[test]
    fn the_envelope_and_its_data_must_be_objects() {
        let hook = Hook { url: "u".into(), events: vec!["*".into()] };
        assert_eq!(parse(r#" {"data": {"url": "u", "events": ["*"]}} "#), Ok(hook));
        // Serde alone would read these as the same struct, field by field.
        assert_eq!(parse(r#"{"data": ["u", ["*"]]}"#), Err((422, "invalid_body")));
        assert_eq!(parse(r#"[{"url": "u", "events": ["*"]}]"#), Err((422, "invalid_body")));
        assert_eq!(parse(r#"[["u", ["*"]]]"#), Err((422, "invalid_body")));
        assert_eq!(parse(r#"{"data": {"url": "u", "events": ["*"]}, "data": {}}"#), Err((422, "invalid_body")));
        assert_eq!(parse(r#"{"data": {"url": "u", "events": ["*"], "x": 1}}"#), Err((422, "invalid_body")));
        assert_eq!(parse(r#"{"data": {"url": "u""#), Err((400, "malformed_json")));
        assert_eq!(parse(""), Err((400, "malformed_json")));
        let deep = format!(r#"{{"data": {{"url": "u", "events": {}{}}}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(&deep), Err((422, "invalid_body")), "deep nesting is refused, and the stack survives it");
    }
}
