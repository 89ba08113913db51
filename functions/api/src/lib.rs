//! The API Lambda: [`app`] builds the shared router over the AWS adapters; `main`
//! hands it to `lambda_http`.

use hookline_api::router;
use hookline_aws::{AwsConfig, Clients};
use hookline_domain::auth::ensure_admin_key;
use hookline_http::ReqwestHttpClient;
use std::sync::Arc;

/// `HOOKLINE_ADMIN_KEY_HASH`: hex SHA-256 of the operator's bootstrap admin key. The
/// key itself never reaches AWS; its hash is registered (`admin` on tenant `default`)
/// at cold start.
pub const ADMIN_KEY_HASH_VAR: &str = "HOOKLINE_ADMIN_KEY_HASH";

/// Builds the router from configuration and clients, registering the admin key hash.
pub async fn app(config: &AwsConfig, clients: &Clients, admin_key_hash: Option<&str>) -> anyhow::Result<axum::Router> {
    let http = ReqwestHttpClient::new(config.policy.endpoints.allow_private)?;
    let hookline = Arc::new(hookline_aws::build(clients, config, Arc::new(http)));
    if let Some(hash) = admin_key_hash.filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())) {
        ensure_admin_key(hookline.keys.as_ref(), &hash.to_ascii_lowercase(), hookline.clock.now()).await?;
    } else if admin_key_hash.is_some() {
        anyhow::bail!("{ADMIN_KEY_HASH_VAR} must be 64 hex digits (the SHA-256 of the admin key)");
    }
    Ok(router(hookline))
}
