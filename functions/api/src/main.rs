//! `api`: the API Lambda. Reads `HOOKLINE_*` variables, builds clients once, serves
//! the shared router through `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HOOKLINE_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let config = hookline_aws::AwsConfig::from_env()?;
    let clients = hookline_aws::Clients::from_env().await;
    let admin_hash = std::env::var(api::ADMIN_KEY_HASH_VAR).ok().filter(|v| !v.is_empty());
    let app = api::app(&config, &clients, admin_hash.as_deref()).await?;
    lambda_http::run(app).await
}
