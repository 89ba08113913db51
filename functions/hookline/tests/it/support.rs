//! `spawn_app()`: a local Hookline on a random port with its own data directory.

use hookline::{Config, LocalHookline};
use hookline_domain::Hookline;
use std::collections::HashMap;
use std::sync::Arc;
use tests::client::ApiClient;
use tokio::sync::oneshot;

pub struct TestApp {
    pub api: ApiClient,
    pub hookline: Arc<Hookline>,
    pub dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl TestApp {
    /// A client with no key.
    pub fn anonymous(&self) -> ApiClient {
        ApiClient::new(self.api.base(), None)
    }
}

/// A local Hookline allowing loopback receivers, with the given extra variables.
pub async fn spawn_app_with(vars: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("HOOKLINE_DATA_DIR".into(), dir.path().display().to_string());
    env.insert("HOOKLINE_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("HOOKLINE_ALLOW_PRIVATE_ENDPOINTS".into(), "true".into());
    env.insert("HOOKLINE_DELIVERY_TIMEOUT".into(), "2s".into());
    for (k, v) in vars {
        env.insert(k.to_string(), v.to_string());
    }
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config");
    let app = LocalHookline::open(&config).await.expect("open");
    let hookline = app.hookline.clone();
    let admin_key = app.admin_key.expose().to_owned();
    let listener = tokio::net::TcpListener::bind(config.listen).await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    TestApp { api: ApiClient::new(&base, Some(&admin_key)), hookline, dir, _stop: stop }
}

/// A local Hookline with defaults plus a one-second retry schedule.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[("HOOKLINE_RETRY_SCHEDULE", "1s,2s")]).await
}

/// How long a test waits for something to happen.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Reads a delivery from the store until it has `status` (the API cannot show the
/// deliveries of a deleted webhook); panics after [`WAIT`].
pub async fn delivery_with_status(
    app: &TestApp,
    webhook: &str,
    delivery: &str,
    status: hookline_domain::delivery::DeliveryStatus,
) -> hookline_domain::delivery::Delivery {
    use hookline_domain::ids::{DeliveryId, TenantId, WebhookId};
    let (tenant, webhook) = (TenantId::default_tenant(), WebhookId::parse(webhook).expect("webhook id"));
    let delivery = DeliveryId::parse(delivery).expect("delivery id");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = app.hookline.deliveries.get(&tenant, &webhook, &delivery).await.expect("delivery");
        if d.status == status {
            return d;
        }
        assert!(tokio::time::Instant::now() < deadline, "delivery {delivery} is {:?}, never {status:?}", d.status);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
