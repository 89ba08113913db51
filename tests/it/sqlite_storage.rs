//! Local mode's adapter, `SqliteStorage`: the port contracts, and what it does behind
//! them (the hand-off of new jobs with their deliveries claimed, claims taken as jobs
//! are taken, and an event stored with its fan-out in one write).

use hookline_domain::catalog::EventName;
use hookline_domain::delivery::{Claim, Delivery};
use hookline_domain::fanout::fan_out;
use hookline_domain::ids::{EventId, TenantId, WebhookId};
use hookline_domain::ports::{DeliveryQueue, DeliveryStore, EventLog, StoreError, SystemClock, WebhookStore};
use hookline_embedded::{Database, FAN_OUT_ON_APPEND_MAX, LocalKeySigner, SqliteStorage};
use std::sync::Arc;
use std::time::Duration;
use tests::contract;

fn storage() -> SqliteStorage {
    SqliteStorage::new(Database::in_memory().expect("database"), Arc::new(SystemClock))
}

/// On a file, so that reads do not go through the writer and commits count writes only.
fn on_file(
    dir: &tempfile::TempDir,
    room: usize,
    lease: Duration,
) -> (SqliteStorage, tokio::sync::mpsc::Receiver<hookline_domain::ports::Leased>) {
    let db = Database::open(&dir.path().join("t.db")).expect("database");
    SqliteStorage::with_hand_off(db, Arc::new(SystemClock), room, lease)
}

fn deliveries(n: usize) -> Vec<Delivery> {
    let name = EventName::parse("project.created").expect("name");
    let now = contract::now();
    (0..n).map(|_| Delivery::new(TenantId::default_tenant(), WebhookId::generate(), EventId::generate(), name.clone(), now, now)).collect()
}

#[tokio::test]
async fn sqlite_webhook_store_honours_the_contract() {
    contract::webhook_store(&storage()).await;
}

#[tokio::test]
async fn sqlite_event_log_honours_the_contract() {
    contract::event_log(&storage()).await;
}

#[tokio::test]
async fn sqlite_delivery_store_honours_the_contract() {
    contract::delivery_store(&storage()).await;
}

#[tokio::test]
async fn sqlite_delivery_queue_honours_the_contract() {
    contract::delivery_queue(&storage()).await;
}

#[tokio::test]
async fn sqlite_recovery_store_honours_the_contract() {
    contract::recovery_store(&storage()).await;
}

#[tokio::test]
async fn sqlite_throttle_store_honours_the_contract() {
    let s = storage();
    contract::throttle_store(&s, &s).await;
}

#[tokio::test]
async fn sqlite_analytics_store_honours_the_contract() {
    contract::analytics_store(&storage()).await;
}

#[tokio::test]
async fn sqlite_api_key_store_honours_the_contract() {
    contract::api_key_store(&storage()).await;
}

#[tokio::test]
async fn local_key_signer_honours_the_contract() {
    let dir = tempfile::tempdir().expect("dir");
    contract::signer(&LocalKeySigner::load_or_create(&dir.path().join("k")).expect("key")).await;
}

#[tokio::test]
async fn jobs_due_now_are_handed_to_the_send_loop_and_stay_durable() {
    let dir = tempfile::tempdir().expect("dir");
    let (s, mut handed) = on_file(&dir, 2, Duration::from_secs(60));
    let now = contract::now();
    let ds = deliveries(4);
    s.create(&ds).await.expect("create");
    let due: Vec<_> = ds[..3].iter().map(|d| d.job(now, false)).collect();
    let later = ds[3].job(now + chrono::Duration::hours(1), false);
    s.enqueue(&[due[0].clone().into(), later.clone().into(), due[1].clone().into(), due[2].clone().into()]).await.expect("enqueue");

    // Two fit in the hand-off; the third due job waits in the table, and so does the later one.
    let first = handed.try_recv().expect("first job handed over");
    let second = handed.try_recv().expect("second job handed over");
    assert!(handed.try_recv().is_err(), "the hand-off holds only two");
    assert_eq!(
        vec![first.job().expect("a job").clone(), second.job().expect("a job").clone()],
        due[..2].to_vec(),
        "due jobs, in order, intact"
    );
    let taken = s.take_due(now, 10, Duration::from_secs(60)).await.expect("take");
    assert_eq!(
        taken.iter().map(|l| l.job().expect("a job").clone()).collect::<Vec<_>>(),
        vec![due[2].clone()],
        "handed-over jobs are leased in the table"
    );
    assert_eq!(s.queue_len().await.expect("len"), 4, "every job is stored");
    assert_eq!(s.enqueued_total(), 4);

    // An acknowledged one is gone; the others, never acknowledged, come back after a crash.
    s.ack(&first.receipt).await.expect("ack");
    let (jobs, _) = s.database().recover(contract::now().timestamp_micros()).await.expect("recover");
    assert_eq!(jobs, 2, "the unacknowledged handed-over job and the taken one are released");
    let mut back: Vec<_> = s
        .take_due(contract::now(), 10, Duration::from_secs(60))
        .await
        .expect("take")
        .into_iter()
        .map(|l| l.job().expect("a job").delivery_id.clone())
        .collect();
    back.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut want = vec![second.job().expect("a job").delivery_id.clone(), due[2].delivery_id.clone()];
    want.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(back, want);
}

#[tokio::test]
async fn a_handed_over_or_taken_job_s_delivery_is_claimed_in_the_same_write() {
    let dir = tempfile::tempdir().expect("dir");
    let lease = Duration::from_secs(60);
    let (s, mut handed) = on_file(&dir, 1, lease);
    let ds = deliveries(3);
    s.create(&ds).await.expect("create");
    let t0 = contract::now();
    let jobs: Vec<_> = ds.iter().map(|d| d.job(t0, false)).collect();
    s.enqueue(&jobs.iter().cloned().map(Into::into).collect::<Vec<_>>()).await.expect("enqueue");
    let send_lease = t0 + chrono::Duration::seconds(40);

    // The handed-over job's delivery is claimed already: the worker's claim is answered
    // without a write, once; anyone else finds it busy.
    let got = handed.try_recv().expect("handed over");
    let commits = s.database().commits();
    let claim = s.claim(got.job().expect("a job"), contract::now(), send_lease).await.expect("claim");
    assert_eq!(claim, Claim::Claimed(ds[0].clone()), "the delivery as stored");
    assert_eq!(s.database().commits(), commits, "no write for a claim taken with the job");
    assert_eq!(s.claim(got.job().expect("a job"), contract::now(), send_lease).await.expect("claim"), Claim::Busy, "claimed once");

    // The take claims the others in its write; one taken by another worker meanwhile is
    // left to the send step, which finds it busy.
    let taken = s.take_due(contract::now(), 10, lease).await.expect("take");
    assert_eq!(taken.len(), 2);
    let commits = s.database().commits();
    for (l, d) in taken.iter().zip(&ds[1..]) {
        assert_eq!(s.claim(l.job().expect("a job"), contract::now(), send_lease).await.expect("claim"), Claim::Claimed(d.clone()));
    }
    assert_eq!(s.database().commits(), commits, "no write for claims taken with the jobs");

    // A claim that does not fit the job (another attempt) is not used: the table decides.
    let mut outdated = ds[0].job(t0, false);
    outdated.attempts_before = 1;
    s.enqueue(&[outdated.clone().into()]).await.expect("enqueue");
    let l = handed.try_recv().expect("handed over");
    assert_eq!(s.claim(l.job().expect("a job"), contract::now(), send_lease).await.expect("claim"), Claim::Stale);

    // A released claim lets the delivery be claimed again; a restart drops the rest.
    s.release(&ds[1].tenant, &ds[1].webhook_id, &ds[1].id).await.expect("release");
    assert!(matches!(s.claim(&jobs[1], contract::now(), send_lease).await.expect("claim"), Claim::Claimed(_)));
    let (_, claims) = s.database().recover(contract::now().timestamp_micros()).await.expect("recover");
    assert_eq!(claims, 3, "every delivery was claimed");
}

#[tokio::test]
async fn a_published_event_is_stored_with_its_fan_out_in_one_write_when_its_webhooks_are_cached() {
    let dir = tempfile::tempdir().expect("dir");
    let (s, mut handed) = on_file(&dir, 256, Duration::from_secs(60));
    let h = crate::concurrency::sqlite_hookline(dir.path(), &s);
    let tenant = contract::tenant("default");
    let now = contract::now();
    let wanted: Vec<_> = (0..2).map(|_| contract::webhook(&tenant, &["project.*"], now)).collect();
    for w in wanted.iter().chain([&contract::webhook(&tenant, &["activity.*"], now)]) {
        s.insert(w).await.expect("webhook");
    }

    // Webhooks not cached (nothing read them since they changed): the event is stored
    // alone, for the reader, rather than wait for a read.
    let cold = contract::event(&tenant, now);
    s.append(&cold).await.expect("append");
    assert!(handed.try_recv().is_err(), "nothing queued on append");
    let pending = s.pending_fanout(0, 10).await.expect("pending");
    assert_eq!(pending.iter().map(|(_, e)| e.as_ref().expect("event").id.clone()).collect::<Vec<_>>(), vec![cold.id.clone()]);
    // The reader fans it out with the domain's step, which reads (and caches) the webhooks.
    assert_eq!(fan_out(&h, &cold).await.expect("fan out").len(), 2);
    s.mark_fanned_out(pending.iter().map(|(seq, _)| *seq).collect()).expect("mark");
    while handed.try_recv().is_ok() {}

    // Cached: one commit stores the event, its two deliveries and their jobs, handed
    // over with their deliveries claimed; the reader has nothing left to fan out.
    let event = contract::event(&tenant, now);
    let commits = s.database().commits();
    s.append(&event).await.expect("append");
    assert_eq!(s.database().commits(), commits + 1, "one write");
    assert_eq!(EventLog::get(&s, &tenant, &event.id).await.expect("stored"), event);
    let jobs: Vec<_> = std::iter::from_fn(|| handed.try_recv().ok()).collect();
    assert_eq!(jobs.len(), 2);
    for leased in &jobs {
        assert_eq!(leased.job().expect("a job").event_id, event.id);
        assert!(wanted.iter().any(|w| w.id == leased.job().expect("a job").webhook_id));
        let claim =
            s.claim(leased.job().expect("a job"), contract::now(), contract::now() + chrono::Duration::seconds(40)).await.expect("claim");
        assert!(matches!(claim, Claim::Claimed(d) if d.id == leased.job().expect("a job").delivery_id && d.attempts == 0));
    }
    assert!(s.pending_fanout(0, 10).await.expect("pending").is_empty(), "marked fanned out");

    // The same id again: Conflict, and nothing of it is stored, not even a delivery to
    // a webhook created since.
    let late = contract::webhook(&tenant, &["*"], now);
    s.insert(&late).await.expect("webhook");
    s.list_active(&tenant).await.expect("read");
    assert!(matches!(s.append(&event).await, Err(StoreError::Conflict)));
    assert!(handed.try_recv().is_err(), "no job queued");
    assert!(DeliveryStore::list(&s, &tenant, &late.id, &Default::default(), &Default::default()).await.expect("list").items.is_empty());

    // An event matching more webhooks than fan out on append is stored alone and left
    // to the reader.
    for _ in 0..FAN_OUT_ON_APPEND_MAX {
        s.insert(&contract::webhook(&tenant, &["project.created"], now)).await.expect("webhook");
    }
    assert!(s.list_active(&tenant).await.expect("read").len() > FAN_OUT_ON_APPEND_MAX);
    let wide = contract::event(&tenant, now);
    s.append(&wide).await.expect("append");
    assert!(handed.try_recv().is_err(), "nothing queued on append");
    let pending = s.pending_fanout(0, 10).await.expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1.as_ref().expect("event").id, wide.id);
}
