//! An in-memory delay queue with leases, as SQS and the SQLite queue behave.

use super::*;

pub(super) struct Queued {
    pub(super) receipt: u64,
    pub(super) task: Task,
    /// When the job can next be taken: its due time, or the end of its lease.
    pub(super) visible_at: Timestamp,
}

#[derive(Default)]
pub(super) struct Queue {
    pub(super) next_receipt: u64,
    pub(super) jobs: Vec<Queued>,
}

/// A delay queue in a list: a taken job is hidden until its lease ends, as SQS does.
pub(crate) struct FakeQueue {
    pub(super) calls: Arc<Calls>,
    pub(super) inner: Mutex<Queue>,
}

impl FakeQueue {
    /// The queued delivery jobs (taken and not acknowledged ones included), in
    /// enqueue order.
    pub(crate) fn jobs(&self) -> Vec<Job> {
        lock(&self.inner).jobs.iter().filter_map(|q| q.task.job().cloned()).collect()
    }

    /// Every queued task, recovery steps included, in enqueue order.
    pub(crate) fn tasks(&self) -> Vec<Task> {
        lock(&self.inner).jobs.iter().map(|q| q.task.clone()).collect()
    }
}

#[async_trait]
impl DeliveryQueue for FakeQueue {
    async fn enqueue(&self, tasks: &[Task]) -> Result<(), QueueError> {
        self.calls.queue(Op::Enqueue)?;
        let mut q = lock(&self.inner);
        for task in tasks {
            q.next_receipt += 1;
            let receipt = q.next_receipt;
            q.jobs.push(Queued { receipt, task: task.clone(), visible_at: task.due_at() });
        }
        Ok(())
    }

    async fn take_due(&self, now: Timestamp, max: usize, lease: Duration) -> Result<Vec<Leased>, QueueError> {
        self.calls.queue(Op::TakeDue)?;
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut q = lock(&self.inner);
        let mut due: Vec<&mut Queued> = q.jobs.iter_mut().filter(|j| j.visible_at <= now).collect();
        due.sort_by_key(|j| (j.visible_at, j.receipt));
        Ok(due
            .into_iter()
            .take(max)
            .map(|j| {
                j.visible_at = until;
                Leased { receipt: j.receipt.to_string(), task: j.task.clone() }
            })
            .collect())
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.calls.queue(Op::Ack)?;
        lock(&self.inner).jobs.retain(|j| j.receipt.to_string() != receipt);
        Ok(())
    }
}
