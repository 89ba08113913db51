//! One attempt in flight: workers racing for the same delivery never both send it.
//! Real concurrency (a multi-threaded runtime, simultaneous send steps) against each
//! backend, with a slow receiver so the attempts would overlap if allowed.

use hookline_domain::Hookline;
use hookline_domain::Policy;
use hookline_domain::delivery::Delivery;
use hookline_domain::ids::TenantId;
use hookline_domain::ports::SystemClock;
use hookline_domain::send::{SendReport, send};
use hookline_domain::webhook::{EndpointPolicy, Webhook};
use hookline_http::ReqwestHttpClient;
use std::sync::Arc;
use std::time::Duration;
use tests::contract;
use tests::receiver::Receiver;

const RACERS: usize = 8;

/// A webhook of the default tenant to `path` on `rx`, which answers it slowly.
async fn slow_webhook(h: &Hookline, rx: &Receiver, path: &str) -> (TenantId, Webhook) {
    rx.slow(path, Duration::from_millis(300));
    let tenant = contract::tenant("default");
    let mut webhook = contract::webhook(&tenant, &["*"], contract::now());
    webhook.endpoint_url = hookline_domain::webhook::EndpointUrl::parse(&rx.url(path), &EndpointPolicy::private_allowed()).expect("url");
    h.webhooks.insert(&webhook).await.expect("webhook");
    (tenant, webhook)
}

/// Hookline over `storage`, with its signing key in `dir`, delivering to private
/// addresses (the test receivers).
pub(crate) fn sqlite_hookline(dir: &std::path::Path, storage: &hookline_embedded::SqliteStorage) -> Hookline {
    let signer = Arc::new(hookline_embedded::LocalKeySigner::load_or_create(&dir.join("key")).expect("key"));
    let http = Arc::new(ReqwestHttpClient::new(&EndpointPolicy::private_allowed()).expect("http"));
    let secrets = Arc::new(hookline_embedded::LocalSecretBox::load_or_create(&dir.join("secrets-key")).expect("secrets key"));
    storage.hookline(signer, secrets, http, Policy { endpoints: EndpointPolicy::private_allowed(), ..Policy::default() })
}

async fn race(h: Hookline, rx: &Receiver) {
    let (tenant, webhook) = slow_webhook(&h, rx, "/race").await;
    let now = contract::now();
    let event = contract::event(&tenant, now);
    h.events.append(&event).await.expect("event");
    let delivery = Delivery::new(tenant, webhook.id.clone(), event.id.clone(), event.name.clone(), event.created_at, now);
    h.deliveries.create(std::slice::from_ref(&delivery)).await.expect("delivery");
    let job = delivery.job(now, false);

    let h = Arc::new(h);
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (h, job, barrier) = (h.clone(), job.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                send(&h, &job).await.expect("send step")
            })
        })
        .collect();
    let mut reports = Vec::new();
    for r in racers {
        reports.push(r.await.expect("task"));
    }
    let delivered = reports.iter().filter(|r| matches!(r, SendReport::Delivered(_))).count();
    let others_ok = reports.iter().all(|r| matches!(r, SendReport::Delivered(_) | SendReport::Busy | SendReport::Stale));
    assert_eq!(delivered, 1, "exactly one racer sends: {reports:?}");
    assert!(others_ok, "{reports:?}");
    assert_eq!(rx.received_on("/race").len(), 1, "the receiver got one request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_send_workers_never_both_send_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let db = hookline_embedded::Database::open(&dir.path().join("race.db")).expect("db");
    let storage = hookline_embedded::SqliteStorage::new(db, Arc::new(SystemClock));
    race(sqlite_hookline(dir.path(), &storage), &Receiver::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_send_workers_never_both_send_on_dynamodb() {
    let (clients, resources) = tests::moto::provisioned().await;
    let config = hookline_aws::AwsConfig {
        resources,
        policy: Policy { endpoints: EndpointPolicy::private_allowed(), ..Policy::default() },
        sqs_max_delay: Duration::from_secs(900),
        signing: hookline_aws::SigningMode::Kms,
    };
    let h = hookline_aws::build(&clients, &config, Arc::new(ReqwestHttpClient::new(&EndpointPolicy::private_allowed()).expect("http")));
    race(h, &Receiver::start().await).await;
}

/// A worker handed a new delivery already claimed (as local mode's queue does) sends it
/// without a claim of its own; racers find it busy. A held claim too short for the
/// attempt is extended, and still keeps everyone else out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_handed_over_with_a_new_delivery_is_used_once_and_keeps_racers_out() {
    let dir = tempfile::tempdir().expect("dir");
    let db = hookline_embedded::Database::open(&dir.path().join("held.db")).expect("db");
    let lease = Duration::from_secs(120);
    let (storage, mut handed) = hookline_embedded::SqliteStorage::with_hand_off(db, Arc::new(SystemClock), 4, lease);
    let h = Arc::new(sqlite_hookline(dir.path(), &storage));
    let rx = Receiver::start().await;
    let (tenant, webhook) = slow_webhook(&h, &rx, "/held").await;

    // Fan-out stores the delivery and hands its job over, claimed.
    let event = contract::event(&tenant, contract::now());
    h.events.append(&event).await.expect("event");
    let planned = hookline_domain::fanout::fan_out(&h, &event).await.expect("fan-out");
    let leased = handed.try_recv().expect("handed over");

    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (h, leased, barrier) = (h.clone(), leased.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                (i, send(&h, leased.job().expect("a job")).await.expect("send step"))
            })
        })
        .collect();
    let mut reports = Vec::new();
    for r in racers {
        reports.push(r.await.expect("task").1);
    }
    assert_eq!(reports.iter().filter(|r| matches!(r, SendReport::Delivered(_))).count(), 1, "{reports:?}");
    assert!(reports.iter().all(|r| matches!(r, SendReport::Delivered(_) | SendReport::Busy | SendReport::Stale)), "{reports:?}");
    assert_eq!(rx.received_on("/held").len(), 1, "the receiver got one request");
    let stored = h.deliveries.get(&tenant, &webhook.id, &planned[0].id).await.expect("delivery");
    assert_eq!(stored.attempts, 1);
    assert_eq!(h.deliveries.attempts(&tenant, &stored.webhook_id, &stored.id).await.expect("attempts").len(), 1, "the attempt is recorded");

    // A policy whose attempt outlasts the held claim: the worker extends the claim (in
    // the table) rather than rely on it, and sends; a racer still finds it busy.
    let event = contract::event(&tenant, contract::now());
    h.events.append(&event).await.expect("event");
    hookline_domain::fanout::fan_out(&h, &event).await.expect("fan-out");
    let leased = handed.try_recv().expect("handed over");
    let mut long = (*h).clone();
    long.policy = Arc::new(Policy { delivery_timeout: lease, ..(*h.policy).clone() });
    let (holder, racer) = tokio::join!(send(&long, leased.job().expect("a job")), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&h, leased.job().expect("a job")).await
    });
    assert!(matches!(holder.expect("send step"), SendReport::Delivered(_)));
    assert!(matches!(racer.expect("send step"), SendReport::Busy | SendReport::Stale));
    assert_eq!(rx.received_on("/held").len(), 2, "one more request, not two");
}
