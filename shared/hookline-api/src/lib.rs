//! Hookline's HTTP API: one axum [`router`] that local mode serves directly and the
//! API Lambda serves through `lambda_http`. Handlers validate at the boundary, call
//! the domain through its ports, and answer in the `{"data": ...}` envelope.
//!
//! `openapi.json` beside this crate describes the whole API; the router serves it at
//! [`OPENAPI_PATH`] and tests keep the two in agreement.

mod access;
mod analytics;
mod console;
mod error;
mod extract;
mod recovery;
mod routes;
mod wire;

pub use console::{CONSOLE_PATH, ConsoleSettings};
pub use error::ApiError;
pub use extract::{BODY_READ_TIMEOUT, BodyReadTimeout, MAX_BODY_BYTES};
pub use routes::{OPENAPI_JSON, OPENAPI_PATH, ROUTES, router, router_with};
