//! `sender`: the sender Lambda, triggered by the delivery queue.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HOOKLINE_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let config = hookline_aws::AwsConfig::from_env()?;
    let clients = hookline_aws::Clients::from_env().await;
    let http = Arc::new(hookline_http::ReqwestHttpClient::new(config.policy.endpoints.allow_private)?);
    let h = hookline_aws::build(&clients, &config, http);
    lambda_runtime::run(lambda_runtime::service_fn(|e: lambda_runtime::LambdaEvent<aws_lambda_events::sqs::SqsEvent>| {
        let h = &h;
        async move { Ok::<_, lambda_runtime::Error>(sender::handle(h, e.payload).await) }
    }))
    .await
}
