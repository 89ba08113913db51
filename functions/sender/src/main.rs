//! `sender`: the sender Lambda, triggered by the delivery queue.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookline_aws::init_lambda_logging();
    let h = hookline_aws::from_env(hookline_aws::Function::Sender).await?;
    let h = &h;
    lambda_runtime::run(service_fn(move |e: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(sender::handle(h, e.payload).await)
    }))
    .await
}
