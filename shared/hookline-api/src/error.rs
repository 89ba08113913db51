//! The API's one error type: a status, a machine code and a human message, written as
//! `{"error": {"code": "...", "message": "..."}}`.
//!
//! 4xx answers say what was wrong. 5xx answers say nothing specific: the cause goes to
//! the log, never to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookline_domain::event::EventError;
use hookline_domain::ports::{QueueError, SignError, StoreError};
use hookline_domain::usecases::{ApiKeyError, PublishError, RedeliverError, WebhookWriteError};
use hookline_domain::webhook::WebhookError;
use hookline_domain::webhook::secrets::RotateError;
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds after which the same request may succeed (`Retry-After`).
    retry_after: Option<u32>,
}

/// How long a client is asked to wait after `storage_unavailable`, in seconds.
pub const STORAGE_RETRY_AFTER: u32 = 30;

impl ApiError {
    /// An answer with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    /// 400: the body is not JSON, or the request is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no key, or an unknown one.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the key lacks a scope.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: no such thing (for this tenant).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 413: the body is too large.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 422: well-formed JSON with invalid content.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 500, with the cause logged and not shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal error; the cause has been logged")
    }

    /// 503: the store cannot take the request for now (its disk is full, say); nothing
    /// was done, and the client may try again after [`STORAGE_RETRY_AFTER`] seconds.
    /// Not logged here: the store says so once, where it sees the cause.
    pub fn storage_unavailable() -> Self {
        ApiError {
            retry_after: Some(STORAGE_RETRY_AFTER),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "Hookline cannot store anything for now; nothing was done, try again later",
            )
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let close = matches!(self.status, StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE);
        let mut response = (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        if close {
            // The rest of the body is never read, so the connection cannot carry another request.
            response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("not_found", "not found"),
            StoreError::Conflict => ApiError::conflict("conflict", "already exists"),
            StoreError::Unavailable(_) => ApiError::storage_unavailable(),
            StoreError::Unknown(e) => ApiError::internal(format!("store: {e:#}")),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Unavailable(_) => ApiError::storage_unavailable(),
            QueueError::Unknown(e) => ApiError::internal(format!("queue: {e:#}")),
        }
    }
}

impl From<SignError> for ApiError {
    fn from(e: SignError) -> Self {
        ApiError::internal(format!("signer: {e:#}"))
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        ApiError::invalid(e.code(), e.to_string())
    }
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> Self {
        ApiError::invalid(e.code(), e.to_string())
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Invalid(e) => e.into(),
            PublishError::Store(e) => e.into(),
        }
    }
}

impl From<RedeliverError> for ApiError {
    fn from(e: RedeliverError) -> Self {
        match e {
            RedeliverError::WebhookNotFound => ApiError::not_found("webhook_not_found", "no such webhook"),
            RedeliverError::DeliveryNotFound => ApiError::not_found("delivery_not_found", "no such delivery"),
            RedeliverError::WebhookDisabled => ApiError::conflict("webhook_disabled", e.to_string()),
            RedeliverError::Store(e) => e.into(),
            RedeliverError::Queue(e) => e.into(),
        }
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(e: ApiKeyError) -> Self {
        match e {
            ApiKeyError::InvalidTenant(_) => ApiError::invalid("invalid_tenant", e.to_string()),
            ApiKeyError::OtherTenant => ApiError::forbidden(e.to_string()),
            ApiKeyError::NoScopes | ApiKeyError::UnknownScope(_) => ApiError::invalid("invalid_scope", e.to_string()),
            ApiKeyError::DescriptionTooLong => ApiError::invalid("description_too_long", e.to_string()),
            ApiKeyError::Store(e) => e.into(),
        }
    }
}

impl From<WebhookWriteError> for ApiError {
    fn from(e: WebhookWriteError) -> Self {
        match e {
            WebhookWriteError::Invalid(e) => e.into(),
            WebhookWriteError::Rotate(RotateError::GraceTooLong) => ApiError::invalid("invalid_grace_period", e.to_string()),
            WebhookWriteError::Rotate(RotateError::TooManySecrets) => ApiError::conflict("too_many_secrets", e.to_string()),
            WebhookWriteError::NoStandardWebhooks => ApiError::conflict("standard_webhooks_off", e.to_string()),
            WebhookWriteError::Seal(e) => ApiError::internal(format!("secret box: {e}")),
            WebhookWriteError::Store(StoreError::NotFound) => ApiError::not_found("webhook_not_found", "no such webhook"),
            WebhookWriteError::Store(e) => e.into(),
        }
    }
}
