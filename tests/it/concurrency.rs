//! One attempt in flight: workers racing for the same delivery never both send it.
//! Real concurrency (a multi-threaded runtime, simultaneous send steps) against each
//! backend, with a slow receiver so the attempts would overlap if allowed.

use hookline_domain::Hookline;
use hookline_domain::delivery::Delivery;
use hookline_domain::ports::SystemClock;
use hookline_domain::send::{SendReport, send};
use hookline_domain::service::Policy;
use hookline_domain::webhook::EndpointPolicy;
use hookline_http::ReqwestHttpClient;
use std::sync::Arc;
use std::time::Duration;
use tests::contract;
use tests::receiver::Receiver;

const RACERS: usize = 8;

async fn race(h: Hookline, rx: &Receiver) {
    rx.slow("/race", Duration::from_millis(300));
    let tenant = contract::tenant("default");
    let now = contract::now();
    let mut webhook = contract::webhook(&tenant, &["*"], now);
    webhook.endpoint_url = hookline_domain::webhook::EndpointUrl::parse(&rx.url("/race"), &EndpointPolicy::private_allowed()).expect("url");
    h.webhooks.insert(&webhook).await.expect("webhook");
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
    let h = Hookline {
        webhooks: Arc::new(SqliteWebhookStore::new(db.clone())),
        events: Arc::new(SqliteEventLog::new(db.clone())),
        deliveries: Arc::new(SqliteDeliveryStore::new(db.clone())),
        queue: Arc::new(SqliteDeliveryQueue::new(db.clone())),
        keys: Arc::new(SqliteApiKeyStore::new(db)),
        signer: Arc::new(LocalKeySigner::load_or_create(&dir.path().join("key")).expect("key")),
        http: Arc::new(ReqwestHttpClient::new(&EndpointPolicy::private_allowed()).expect("http")),
        clock: Arc::new(SystemClock),
        policy: Arc::new(Policy { endpoints: EndpointPolicy::private_allowed(), ..Policy::default() }),
    };
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
