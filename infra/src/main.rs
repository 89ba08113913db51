//! `cargo run -p infra -- <prefix>`: creates Hookline's resources in the AWS-compatible
//! endpoint named by `AWS_ENDPOINT_URL` (an emulator such as moto's server) and prints
//! the environment variables the Lambdas need.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let prefix = std::env::args().nth(1).unwrap_or_else(|| "hookline".to_owned());
    let clients = hookline_aws::Clients::from_env().await;
    let resources = infra::provision(&clients, &prefix).await?;
    for (k, v) in infra::env_vars(&resources) {
        println!("export {k}={v}");
    }
    Ok(())
}
