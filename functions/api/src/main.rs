//! `api`: the API Lambda. Reads `HOOKLINE_*` variables, builds clients once, serves
//! the shared router through `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hookline_aws::init_lambda_logging();
    let h = hookline_aws::from_env(hookline_aws::Function::Api).await?;
    let admin_hash = std::env::var(api::ADMIN_KEY_HASH_VAR).ok().filter(|v| !v.is_empty());
    lambda_http::run(api::app(h, admin_hash.as_deref(), api::console_from_env()?).await?).await
}
