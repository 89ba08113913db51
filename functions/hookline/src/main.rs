//! `hookline`: local mode. Reads `HOOKLINE_*` variables, opens the data directory,
//! serves the API and delivers webhooks until Ctrl-C or SIGTERM.

use hookline::{Config, LocalHookline};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HOOKLINE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr);
    if config.log_json {
        logs.json().flatten_event(true).with_current_span(false).init();
    } else {
        logs.init();
    }
    let app = LocalHookline::open(&config).await?;
    if app.admin_key_is_new {
        println!("admin key (shown once, also kept in {}): {}", config.data_dir.join("admin-key").display(), app.admin_key.expose());
    }
    let listener = hookline::server::bind(config.listen)?;
    println!("Hookline listening on http://{}", listener.local_addr()?);
    app.serve(listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or_default(),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or_default();
}
