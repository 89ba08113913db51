//! The send loop's scheduling, on tokio's paused clock: which source is read, when,
//! and how much is taken at once.

use super::*;
use hookline_domain::delivery::Job;
use hookline_domain::ids::{DeliveryId, EventId, TenantId, WebhookId};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A table of jobs, each due at an instant of tokio's clock.
#[derive(Default)]
struct FakeTable {
    jobs: Mutex<Vec<(Instant, Leased)>>,
    takes: AtomicUsize,
    fail: AtomicBool,
    signal: Notify,
}

impl FakeTable {
    fn put(&self, due_in: Duration, receipt: &str) {
        self.jobs.lock().expect("jobs").push((Instant::now() + due_in, leased(receipt)));
    }

    /// Queues a job and signals it, as the queue does for a job it could not hand over.
    fn queue(&self, receipt: &str) {
        self.put(Duration::ZERO, receipt);
        self.signal.notify_one();
    }

    fn takes(&self) -> usize {
        self.takes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Table for Arc<FakeTable> {
    async fn take_due(&self, max: usize) -> Result<Vec<Leased>, QueueError> {
        self.takes.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(QueueError::Unknown(anyhow::anyhow!("injected failure")));
        }
        let now = Instant::now();
        let mut jobs = self.jobs.lock().expect("jobs");
        jobs.sort_by_key(|(due, _)| *due);
        let n = jobs.iter().take(max).take_while(|(due, _)| *due <= now).count();
        Ok(jobs.drain(..n).map(|(_, j)| j).collect())
    }

    async fn next_due_in(&self) -> anyhow::Result<Option<Duration>> {
        let now = Instant::now();
        Ok(self.jobs.lock().expect("jobs").iter().map(|(due, _)| due.saturating_duration_since(now)).min())
    }

    async fn queued(&self) {
        self.signal.notified().await
    }
}

fn leased(receipt: &str) -> Leased {
    let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
    let job = Job {
        delivery_id: DeliveryId::generate(),
        tenant: TenantId::default_tenant(),
        webhook_id: WebhookId::generate(),
        event_id: EventId::generate(),
        attempts_before: 0,
        manual: false,
        reopen: false,
        slotted: false,
        due_at: t,
    };
    Leased { receipt: receipt.to_owned(), task: job.into() }
}

/// The next job, or `None` if none comes within `within` of tokio's (paused) clock.
async fn next_within(source: &mut JobSource<Arc<FakeTable>>, within: Duration) -> Option<String> {
    tokio::time::timeout(within, source.next(1)).await.ok().map(|l| l.receipt)
}

fn setup() -> (Arc<FakeTable>, mpsc::Sender<Leased>, JobSource<Arc<FakeTable>>) {
    let table = Arc::new(FakeTable::default());
    let (to, from) = mpsc::channel(64);
    let source = JobSource::new(table.clone(), Some(from));
    (table, to, source)
}

#[tokio::test(start_paused = true)]
async fn jobs_handed_over_in_memory_need_no_read_of_the_table() {
    let (table, to, mut source) = setup();
    // The first call looks at the table once, finds nothing, and waits.
    assert_eq!(next_within(&mut source, Duration::from_millis(10)).await, None);
    assert_eq!(table.takes(), 1);
    for i in 0..5 {
        to.send(leased(&format!("m{i}"))).await.expect("send");
        assert_eq!(next_within(&mut source, Duration::from_millis(10)).await.as_deref(), Some(format!("m{i}").as_str()));
    }
    assert_eq!(table.takes(), 1, "no read of the table for jobs in memory");
}

#[tokio::test(start_paused = true)]
async fn a_backlog_is_taken_in_batches() {
    let (table, _to, mut source) = setup();
    for i in 0..(TAKE_BATCH * 2 + 5) {
        table.put(Duration::ZERO, &format!("t{i}"));
    }
    for i in 0..(TAKE_BATCH * 2 + 5) {
        assert_eq!(next_within(&mut source, Duration::from_millis(1)).await, Some(format!("t{i}")));
    }
    // Two full batches and the rest.
    assert_eq!(table.takes(), 3);
    // A caller with more free slots than a batch gets them filled in one take.
    for i in 0..100 {
        table.queue(&format!("u{i}"));
    }
    let first = tokio::time::timeout(Duration::from_millis(1), source.next(100)).await.expect("job");
    assert_eq!(first.receipt, "u0");
    assert_eq!(table.takes(), 4, "one take for 100 free slots");
}

#[tokio::test(start_paused = true)]
async fn both_sources_take_turns_while_both_have_work() {
    let (table, to, mut source) = setup();
    for i in 0..3 {
        table.put(Duration::ZERO, &format!("t{i}"));
        to.send(leased(&format!("m{i}"))).await.expect("send");
    }
    let mut order = Vec::new();
    for _ in 0..6 {
        order.push(next_within(&mut source, Duration::from_millis(1)).await.expect("job"));
    }
    assert_eq!(order, ["m0", "t0", "m1", "t1", "m2", "t2"]);
}

#[tokio::test(start_paused = true)]
async fn the_table_is_read_again_when_its_earliest_job_falls_due_and_not_before() {
    let (table, _to, mut source) = setup();
    table.put(Duration::from_millis(300), "later");
    assert_eq!(next_within(&mut source, Duration::from_millis(299)).await, None);
    assert_eq!(table.takes(), 1, "not read again before the job is due");
    assert_eq!(next_within(&mut source, Duration::from_millis(2)).await.as_deref(), Some("later"));
    assert_eq!(table.takes(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_job_queued_in_the_table_is_taken_at_once_and_an_idle_table_is_read_every_idle_poll() {
    let (table, _to, mut source) = setup();
    assert_eq!(next_within(&mut source, Duration::from_millis(10)).await, None);
    table.queue("signalled");
    assert_eq!(next_within(&mut source, Duration::from_millis(1)).await.as_deref(), Some("signalled"));
    let before = table.takes();
    // Nothing signalled: only the safety-net poll reads the table, once per IDLE_POLL.
    assert_eq!(next_within(&mut source, IDLE_POLL * 3 + Duration::from_millis(10)).await, None);
    let polls = table.takes() - before;
    assert!((3..=4).contains(&polls), "{polls} reads in three idle polls");
}

#[tokio::test(start_paused = true)]
async fn a_failing_table_is_retried_after_the_back_off_while_jobs_in_memory_keep_flowing() {
    let (table, to, mut source) = setup();
    table.fail.store(true, Ordering::SeqCst);
    table.put(Duration::ZERO, "t0");
    assert_eq!(next_within(&mut source, Duration::from_millis(10)).await, None);
    assert_eq!(table.takes(), 1);
    to.send(leased("m0")).await.expect("send");
    assert_eq!(next_within(&mut source, Duration::from_millis(1)).await.as_deref(), Some("m0"));
    assert_eq!(table.takes(), 1, "not read again during the back-off");
    table.fail.store(false, Ordering::SeqCst);
    assert_eq!(next_within(&mut source, ERROR_BACKOFF).await.as_deref(), Some("t0"));
    assert_eq!(table.takes(), 2);
}
