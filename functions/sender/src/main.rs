//! `sender`: the sender Lambda, triggered by the delivery queue.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookline_aws::init_lambda_logging();
    let (h, metrics) = hookline_aws::with_metrics(hookline_aws::from_env(hookline_aws::Function::Sender).await?);
    let (h, metrics) = (&h, &metrics);
    lambda_runtime::run(service_fn(move |e: LambdaEvent<SqsEvent>| async move {
        let answer = sender::handle(h, e.payload).await;
        hookline_aws::emit_metrics(metrics, "sender");
        Ok::<_, lambda_runtime::Error>(answer)
    }))
    .await
}
