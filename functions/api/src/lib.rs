//! The API Lambda: [`app`] builds the shared router over the AWS adapters; `main`
//! hands it to `lambda_http`.

use hookline_api::{ConsoleSettings, router_with};
use hookline_cache::{API_KEY_CACHE, API_KEY_TTL, CachedApiKeys};
use hookline_domain::Hookline;
use hookline_domain::usecases::ensure_admin_key;
use std::sync::Arc;

/// `HOOKLINE_ADMIN_KEY_HASH`: hex SHA-256 of the operator's bootstrap admin key. The
/// key itself never reaches AWS; its hash is registered (`admin` on tenant `default`)
/// at cold start.
pub const ADMIN_KEY_HASH_VAR: &str = "HOOKLINE_ADMIN_KEY_HASH";

/// The console's settings from the function's `HOOKLINE_CONSOLE_*` and
/// `HOOKLINE_PUBLIC_URL` variables.
pub fn console_from_env() -> anyhow::Result<ConsoleSettings> {
    let get = |k: &str| std::env::var(k).ok();
    Ok(ConsoleSettings::read(&hookline_config::Settings::new(&get))?)
}

/// Builds the router over a wired [`Hookline`], registering the admin key hash. API
/// keys are looked up in the table once per [`API_KEY_TTL`] per container (a request
/// costs no read for a key the container has just seen).
pub async fn app(mut hookline: Hookline, admin_key_hash: Option<&str>, console: ConsoleSettings) -> anyhow::Result<axum::Router> {
    match admin_key_hash {
        Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            ensure_admin_key(hookline.keys.as_ref(), &hash.to_ascii_lowercase(), hookline.clock.now()).await?;
        }
        Some(_) => anyhow::bail!("{ADMIN_KEY_HASH_VAR} must be 64 hex digits (the SHA-256 of the admin key)"),
        None => {}
    }
    hookline.keys = Arc::new(CachedApiKeys::new(hookline.keys, hookline.clock.clone(), API_KEY_TTL, API_KEY_CACHE));
    Ok(router_with(Arc::new(hookline), console))
}
