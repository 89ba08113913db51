//! Local mode under test: in this process (the wide fan-out reads its queue), or as
//! its own process, started from this binary with `--serve-local`.

use hookline::{Config, LocalHookline};
use hookline_domain::Policy;
use hookline_domain::ids::TenantId;
use hookline_domain::webhook::{Webhook, WebhookInput};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Local mode in this process: its API's address and admin key, and the handles the
/// wide fan-out watches.
pub struct Local {
    pub api: String,
    pub key: String,
    pub hookline: Arc<hookline_domain::Hookline>,
    pub queue: hookline_embedded::SqliteStorage,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts local mode in this process, in a temporary directory, on a free loopback port.
pub async fn start_local() -> anyhow::Result<Local> {
    let dir = tempfile::tempdir()?;
    let mut env = HashMap::new();
    env.insert("HOOKLINE_DATA_DIR", dir.path().display().to_string());
    env.insert("HOOKLINE_LISTEN", "127.0.0.1:0".to_owned());
    env.insert("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", "true".to_owned());
    let config = Config::from_lookup(|k| env.get(k).cloned())?;
    let app = LocalHookline::open(&config).await?;
    let key = app.admin_key.expose().to_owned();
    let (hookline, queue) = (app.hookline.clone(), app.storage());
    let listener = hookline::server::bind(config.listen)?;
    let api = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    Ok(Local { api, key, hookline, queue, _dir: dir, _stop: stop })
}

/// Local mode as its own process (this binary with `--serve-local`), as users run it:
/// its CPU and memory are its own, apart from the bench's clients and receivers.
pub struct LocalProcess {
    pub api: String,
    pub key: String,
    pub dir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl LocalProcess {
    pub async fn start(extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let api = format!("http://127.0.0.1:{port}");
        let key = "bench-admin-key-0123456789abcdef0123456789".to_owned();
        let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
        cmd.arg(SERVE_LOCAL)
            .env("HOOKLINE_DATA_DIR", dir.path())
            .env("HOOKLINE_LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKLINE_ADMIN_KEY", &key)
            .env("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS", "true")
            .kill_on_drop(true);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        // Its log (one line per delivery at the default level) goes to a file, as a
        // service's log would.
        cmd.stderr(std::fs::File::create(dir.path().join("hookline.log"))?);
        let child = cmd.spawn()?;
        let http = reqwest::Client::new();
        let up = Instant::now();
        while http.get(format!("{api}/jwks/webhooks")).send().await.is_err() {
            anyhow::ensure!(up.elapsed() < Duration::from_secs(30), "local mode did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(LocalProcess { api, key, dir, child })
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().ok_or_else(|| anyhow::anyhow!("local mode has exited"))
    }

    pub async fn create_webhook(&self, http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
        self.create_webhook_signing(http, url, "jwt").await
    }

    /// As [`LocalProcess::create_webhook`], signing with `scheme` (`jwt` or `standard_webhooks`).
    pub async fn create_webhook_signing(&self, http: &reqwest::Client, url: &str, scheme: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({"data": {"endpoint_url": url, "listened_events": ["project.updated"], "signatures": [scheme]}});
        let r = http.post(format!("{}/webhooks", self.api)).bearer_auth(&self.key).json(&body).send().await?;
        anyhow::ensure!(r.status().as_u16() == 201, "creating a webhook answered {}", r.status());
        let v: serde_json::Value = r.json().await?;
        Ok(v["data"]["id"].as_str().unwrap_or_default().to_owned())
    }
}

/// A webhook of `tenant` to `url`, listening to the event the bench publishes.
pub fn bench_webhook(tenant: &TenantId, url: &str, policy: &Policy) -> anyhow::Result<Webhook> {
    let input = WebhookInput {
        endpoint_url: url.to_owned(),
        listened_events: vec!["project.updated".into()],
        description: None,
        active: None,
        headers: None,
        signatures: None,
        secret: None,
        policy: Default::default(),
    };
    Ok(Webhook::create(tenant.clone(), input, &policy.catalog, &policy.endpoints, chrono::Utc::now())?)
}

/// The child process of the local figures: local mode, configured from the
/// environment and logging as the `hookline` binary does, until killed.
pub async fn serve_local() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HOOKLINE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = Config::from_lookup(|k| std::env::var(k).ok())?;
    let app = LocalHookline::open(&config).await?;
    let listener = hookline::server::bind(config.listen)?;
    app.serve(listener, std::future::pending()).await
}

pub const SERVE_LOCAL: &str = "--serve-local";
