//! `fanout`: the fan-out Lambda, triggered by the events table's stream.

use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookline_aws::init_lambda_logging();
    let (h, metrics) = hookline_aws::with_metrics(hookline_aws::from_env(hookline_aws::Function::Fanout).await?);
    let (h, metrics) = (&h, &metrics);
    lambda_runtime::run(service_fn(move |e: LambdaEvent<Event>| async move {
        let answer = fanout::handle(h, e.payload).await;
        hookline_aws::emit_metrics(metrics, "fanout");
        Ok::<_, lambda_runtime::Error>(answer)
    }))
    .await
}
