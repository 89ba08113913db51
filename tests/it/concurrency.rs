//! One attempt in flight: workers racing for the same delivery never both send it.
//! Real concurrency (a multi-threaded runtime, simultaneous send steps) against each
//! backend, with a slow receiver so the attempts would overlap if allowed.

use hookline_domain::Hookline;
use hookline_domain::delivery::Delivery;
use hookline_domain::ids::TenantId;
use hookline_domain::ports::SystemClock;
use hookline_domain::send::{SendReport, send};
use hookline_domain::service::Policy;
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

/// Hookline over SQLite in `dir`, with `queue` over `db`.
pub(crate) fn sqlite_hookline(
    dir: &std::path::Path,
    db: hookline_embedded::Database,
    queue: hookline_embedded::SqliteDeliveryQueue,
) -> Hookline {
    use hookline_embedded::*;
    Hookline {
        webhooks: Arc::new(SqliteWebhookStore::new(db.clone())),
        events: Arc::new(SqliteEventLog::new(db.clone())),
        deliveries: Arc::new(SqliteDeliveryStore::new(db.clone())),
        queue: Arc::new(queue),
        keys: Arc::new(SqliteApiKeyStore::new(db)),
        signer: Arc::new(LocalKeySigner::load_or_create(&dir.join("key")).expect("key")),
        http: Arc::new(ReqwestHttpClient::new(&EndpointPolicy::private_allowed()).expect("http")),
        clock: Arc::new(SystemClock),
        policy: Arc::new(Policy { endpoints: EndpointPolicy::private_allowed(), ..Policy::default() }),
    }
}

async fn race(h: Hookline, rx: &Receiver) {
    let (tenant, webhook) = slow_webhook(&h, rx, "/race").await;
    let now = contract::now();
    let event = contract::event(&tenant, now);
    h.events.append(&event).await.expect("event");
    let delivery = Delivery::new(tenant, webhook.id.clone(), event.id.clone(), event.name.clone(), now);
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
    use hookline_embedded::*;
    let dir = tempfile::tempdir().expect("dir");
    let db = Database::open(&dir.path().join("race.db")).expect("db");
    let h = sqlite_hookline(dir.path(), db.clone(), SqliteDeliveryQueue::new(db));
    race(h, &Receiver::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_send_workers_never_both_send_on_dynamodb() {
    let (clients, resources) = tests::moto::provisioned().await;
    let config = hookline_aws::AwsConfig {
        resources,
        policy: Policy { endpoints: EndpointPolicy::private_allowed(), ..Policy::default() },
        sqs_max_delay: Duration::from_secs(900),
    };
    let h = hookline_aws::build(&clients, &config, Arc::new(ReqwestHttpClient::new(&EndpointPolicy::private_allowed()).expect("http")));
    race(h, &Receiver::start().await).await;
}

/// A worker handed a new delivery already claimed (as local mode's queue does) sends it
/// without claiming; racers going through the store find it busy. A handed claim too
/// short for the attempt is not used, and still keeps everyone else out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_handed_over_with_a_new_delivery_is_used_and_keeps_racers_out() {
    use hookline_domain::send::send_with;
    use hookline_embedded::*;
    let dir = tempfile::tempdir().expect("dir");
    let db = Database::open(&dir.path().join("held.db")).expect("db");
    let queue = SqliteDeliveryQueue::new(db.clone()).storing_deliveries();
    let mut handed = queue.hand_off(4, Duration::from_secs(120)).expect("hand-off");
    let h = Arc::new(sqlite_hookline(dir.path(), db, queue));
    let rx = Receiver::start().await;
    let (tenant, webhook) = slow_webhook(&h, &rx, "/held").await;
    let now = contract::now();

    // Fan-out stores the delivery and hands its job over, claimed.
    let event = contract::event(&tenant, now);
    h.events.append(&event).await.expect("event");
    hookline_domain::fanout::fan_out(&h, &event).await.expect("fan-out");
    let leased = handed.try_recv().expect("handed over");
    let held = leased.claimed.clone().expect("claimed");

    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (h, leased, barrier) = (h.clone(), leased.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let held = if i == 0 { leased.claimed } else { None };
                (i, send_with(&h, &leased.job, held).await.expect("send step"))
            })
        })
        .collect();
    for r in racers {
        let (i, report) = r.await.expect("task");
        if i == 0 {
            assert!(matches!(report, SendReport::Delivered(_)), "the holder sends: {report:?}");
        } else {
            assert!(matches!(report, SendReport::Busy | SendReport::Stale), "racer {i}: {report:?}");
        }
    }
    assert_eq!(rx.received_on("/held").len(), 1, "the receiver got one request");
    let stored = h.deliveries.get(&tenant, &webhook.id, &held.delivery.id).await.expect("delivery");
    assert_eq!(stored.attempts, 1);
    assert_eq!(h.deliveries.attempts(&tenant, &held.delivery.id).await.expect("attempts").len(), 1, "the attempt is recorded");

    // A claim about to end is not relied on, nor taken over: the job waits.
    let event = contract::event(&tenant, contract::now());
    h.events.append(&event).await.expect("event");
    hookline_domain::fanout::fan_out(&h, &event).await.expect("fan-out");
    let leased = handed.try_recv().expect("handed over");
    let mut short = leased.claimed.clone().expect("claimed");
    short.until = contract::now() + chrono::Duration::seconds(1);
    let report = send_with(&h, &leased.job, Some(short)).await.expect("send step");
    assert_eq!(report, SendReport::Busy);
    assert_eq!(rx.received_on("/held").len(), 1, "nothing more was sent");
}
