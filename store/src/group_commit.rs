//! The group-commit loop every backend's writer task runs: it drains the queue of pending
//! appends, has the backend write them as one transaction, and answers each waiter only once
//! that transaction has committed, so many concurrent commands share one durable commit.

use std::future::Future;
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot, watch};

use crate::append::AppendRequest;
use crate::error::StoreError;
use crate::event::AppendOutcome;

/// How many commands may wait for the writer before appenders wait to enqueue.
pub(crate) const QUEUE_CAPACITY: usize = 4096;

/// The most commands taken from the queue for one batch.
const MAX_BATCH: usize = 1024;

/// Where the writer sends an answer.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What a writer's queue carries; `J` is the backend's kind of exclusive job.
pub(crate) enum Command<J> {
    /// Append events to a stream, then answer.
    Append(AppendRequest, Reply<AppendOutcome>),
    /// Run a job alone on the writer connection, between two batches.
    Exclusive(J),
}

/// What one batch gives back: the result of each append, in order. An `Err` means the whole
/// batch failed and nothing of it committed (as far as the writer can tell).
pub(crate) type BatchResult = Result<Vec<Result<AppendOutcome, StoreError>>, sqlx::Error>;

/// A backend's side of the writer: writing a batch in one transaction and running jobs.
pub(crate) trait BatchWriter: Send + 'static {
    /// Work that runs alone on the writer connection.
    type Job: Send + 'static;

    /// Writes every append of the batch in one transaction, each in its own savepoint.
    fn write_batch(
        &mut self,
        requests: Vec<AppendRequest>,
    ) -> impl Future<Output = BatchResult> + Send;

    /// Runs one exclusive job (it answers its caller itself).
    fn run_job(&mut self, job: Self::Job) -> impl Future<Output = ()> + Send;

    /// Closes the writer connection once the queue has no senders left.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// What the writer has done since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Append transactions committed (each holds one or more appends).
    pub batches: u64,
    /// Appends that succeeded.
    pub appends: u64,
    /// Events written.
    pub events: u64,
}

/// Hears of every committed batch (for metrics).
pub trait CommitObserver: Send + Sync + 'static {
    /// A batch of `appends` appends holding `events` events committed, `latency` after its
    /// transaction began.
    fn committed(&self, appends: usize, events: usize, latency: std::time::Duration);
}

/// Counters the writer keeps for metrics.
#[derive(Default)]
pub(crate) struct Counters {
    batches: AtomicU64,
    appends: AtomicU64,
    events: AtomicU64,
    observer: std::sync::OnceLock<std::sync::Arc<dyn CommitObserver>>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Counters {
    /// Sets the observer of commits; only the first one set is kept.
    pub(crate) fn observe(&self, observer: std::sync::Arc<dyn CommitObserver>) {
        let _ = self.observer.set(observer);
    }

    /// A snapshot of the counts.
    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            batches: self.batches.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
        }
    }
}

/// Serves `queue` with `writer` until every sender is gone, bumping `head` after each commit.
pub(crate) async fn serve<W: BatchWriter>(
    mut writer: W,
    mut queue: mpsc::Receiver<Command<W::Job>>,
    head: watch::Sender<u64>,
    counters: std::sync::Arc<Counters>,
) {
    while let Some(first) = queue.recv().await {
        let mut pending = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(command) = next.take() {
            match command {
                Command::Append(request, reply) => pending.push((request, reply)),
                Command::Exclusive(job) => {
                    commit(&mut writer, mem::take(&mut pending), &head, &counters).await;
                    writer.run_job(job).await;
                }
            }
            taken += 1;
            if taken < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        commit(&mut writer, pending, &head, &counters).await;
    }
    writer.close().await;
}

/// Writes one batch and answers every waiter once it has committed.
async fn commit<W: BatchWriter>(
    writer: &mut W,
    pending: Vec<(AppendRequest, Reply<AppendOutcome>)>,
    head: &watch::Sender<u64>,
    counters: &Counters,
) {
    if pending.is_empty() {
        return;
    }
    let (requests, replies): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
    let started = std::time::Instant::now();
    match writer.write_batch(requests).await {
        Ok(results) => {
            let successes = results.iter().flatten();
            let appends = successes.clone().count() as u64;
            let events: u64 = successes.clone().map(|o| o.events.len() as u64).sum();
            let last = successes.map(|o| o.last_position).max().unwrap_or(0);
            counters.batches.fetch_add(1, Ordering::Relaxed);
            counters.appends.fetch_add(appends, Ordering::Relaxed);
            counters.events.fetch_add(events, Ordering::Relaxed);
            if let Some(observer) = counters.observer.get() {
                observer.committed(appends as usize, events as usize, started.elapsed());
            }
            advance(head, last);
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            tracing::error!(%error, "an append batch could not be committed");
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable(
                    "the append could not be committed".into(),
                )));
            }
        }
    }
}

/// Moves the head watch forward to `position`; it never moves back.
pub(crate) fn advance(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|current| {
        let moved = position > *current;
        if moved {
            *current = position;
        }
        moved
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_only_moves_forward() {
        let (head, mut seen) = watch::channel(5);
        advance(&head, 3);
        assert!(!seen.has_changed().unwrap());
        advance(&head, 9);
        assert!(seen.has_changed().unwrap());
        assert_eq!(*seen.borrow_and_update(), 9);
    }
}
