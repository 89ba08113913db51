//! `spawn_app()`: a local Hookline on a random port with its own data directory.

use hookline::{Config, LocalHookline};
use hookline_domain::Hookline;
use hookline_domain::delivery::{Delivery, DeliveryStatus};
use hookline_domain::ids::{DeliveryId, TenantId, WebhookId};
use hookline_domain::ports::{Clock, ManualClock, SystemClock};
use hookline_domain::time::{Timestamp, from_micros, to_micros};
use hookline_domain::webhook::Webhook;
use hookline_embedded::SqliteStorage;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tests::client::ApiClient;
use tokio::sync::oneshot;

pub struct TestApp {
    pub api: ApiClient,
    pub hookline: Arc<Hookline>,
    /// The storage under the app, for what the API does not show (the queue).
    pub storage: SqliteStorage,
    pub dir: tempfile::TempDir,
    /// The app's clock, if the test moves it ([`spawn_app_on_manual_clock`]).
    clock: Option<Arc<ManualClock>>,
    _stop: oneshot::Sender<()>,
}

impl TestApp {
    /// A client with no key.
    pub fn anonymous(&self) -> ApiClient {
        ApiClient::new(self.api.base(), None)
    }

    /// The app's time.
    pub fn now(&self) -> Timestamp {
        self.hookline.clock.now()
    }

    /// Moves the app's clock on by `by`. Jobs due by then are taken the next time the
    /// send loop looks at the queue (within a second). Only for an app started with
    /// [`spawn_app_on_manual_clock`].
    pub fn advance(&self, by: Duration) {
        self.clock.as_ref().expect("the app runs on a manual clock").advance(by);
    }

    /// The due time of the one job in the queue, once exactly one is left there (a job
    /// just attempted is acknowledged a little after its attempt is recorded); panics
    /// after [`WAIT`].
    pub async fn only_queued_job_due(&self) -> Timestamp {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let n = self.storage.queue_len().await.expect("queue length");
            if n == 1 {
                return self.storage.next_due().await.expect("next due").expect("a queued job");
            }
            assert!(tokio::time::Instant::now() < deadline, "{n} jobs queued, never one");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the queue is empty: no job is due, later or now, and none is being
    /// attempted (a job leaves the queue only once its attempt is recorded), so nothing
    /// more will be sent. Panics after [`WAIT`].
    pub async fn queue_drained(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let n = self.storage.queue_len().await.expect("queue length");
            if n == 0 {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{n} jobs still queued");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn spawn(vars: &[(&str, &str)], clock: Option<Arc<ManualClock>>) -> TestApp {
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
    let app_clock: Arc<dyn Clock> = match &clock {
        Some(c) => c.clone(),
        None => Arc::new(SystemClock),
    };
    let app = LocalHookline::open_with_clock(&config, app_clock).await.expect("open");
    let hookline = app.hookline.clone();
    let storage = app.storage();
    let admin_key = app.admin_key.expose().to_owned();
    let listener = hookline::server::bind(config.listen).expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    TestApp { api: ApiClient::new(&base, Some(&admin_key)), hookline, storage, dir, clock, _stop: stop }
}

/// A local Hookline allowing loopback receivers, with the given extra variables.
pub async fn spawn_app_with(vars: &[(&str, &str)]) -> TestApp {
    spawn(vars, None).await
}

/// As [`spawn_app_with`], on a clock that reads the time of the start (to the
/// microsecond, as stored) until the test moves it with [`TestApp::advance`]: a retry
/// falls due only then, and every instant the app records is known to the test.
pub async fn spawn_app_on_manual_clock(vars: &[(&str, &str)]) -> TestApp {
    let start = from_micros(to_micros(&chrono::Utc::now()));
    spawn(vars, Some(Arc::new(ManualClock::new(start)))).await
}

/// As [`spawn_app_on_manual_clock`], with the clock at `start` (in the past, say, so
/// that every attempt is stamped with a time that long ago).
pub async fn spawn_app_at(start: Timestamp) -> TestApp {
    spawn(&[], Some(Arc::new(ManualClock::new(from_micros(to_micros(&start)))))).await
}

/// A local Hookline with defaults plus a one-second retry schedule.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[("HOOKLINE_RETRY_SCHEDULE", "1s,2s")]).await
}

/// How long a test waits for something to happen.
pub const WAIT: Duration = Duration::from_secs(15);

/// Reads a delivery from the store (the API cannot show the deliveries of a deleted
/// webhook) until `done` holds, and returns it; panics after [`WAIT`].
async fn delivery_where(app: &TestApp, webhook: &str, delivery: &str, what: &str, done: impl Fn(&Delivery) -> bool) -> Delivery {
    let (tenant, webhook) = (TenantId::default_tenant(), WebhookId::parse(webhook).expect("webhook id"));
    let delivery = DeliveryId::parse(delivery).expect("delivery id");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = app.hookline.deliveries.get(&tenant, &webhook, &delivery).await.expect("delivery");
        if done(&d) {
            return d;
        }
        assert!(tokio::time::Instant::now() < deadline, "delivery {delivery} never {what}: {d:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads a delivery from the store until it has `status`; panics after [`WAIT`].
pub async fn delivery_with_status(app: &TestApp, webhook: &str, delivery: &str, status: DeliveryStatus) -> Delivery {
    delivery_where(app, webhook, delivery, &format!("{status:?}"), |d| d.status == status).await
}

/// Reads a delivery from the store until at least `n` of its attempts are recorded;
/// panics after [`WAIT`].
pub async fn delivery_after_attempts(app: &TestApp, webhook: &str, delivery: &str, n: u32) -> Delivery {
    delivery_where(app, webhook, delivery, &format!("had {n} attempts"), |d| d.attempts >= n).await
}

/// Reads a webhook from the store until `done` holds (the send step saves a webhook's
/// failing streak just after recording the attempt that ended a delivery); panics
/// after [`WAIT`].
pub async fn webhook_where(app: &TestApp, webhook: &str, what: &str, done: impl Fn(&Webhook) -> bool) -> Webhook {
    let (tenant, webhook) = (TenantId::default_tenant(), WebhookId::parse(webhook).expect("webhook id"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let w = app.hookline.webhooks.get(&tenant, &webhook).await.expect("webhook");
        if done(&w) {
            return w;
        }
        assert!(tokio::time::Instant::now() < deadline, "webhook {webhook} never {what}: {w:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
