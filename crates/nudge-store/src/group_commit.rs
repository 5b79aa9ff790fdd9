//! Group commit: HTTP handlers hand validated messages to one ingest loop through a
//! bounded queue and wait for the commit of the transaction that holds them. Under
//! load, every commit carries all requests that queued up while the previous one was
//! being written, so the cost of a durable commit (an fsync) is shared.
//!
//! The bounded queue is the back-pressure: when it is full, [`Ingestor::submit`]
//! answers [`SubmitError::Overloaded`] at once (the API turns it into 503) instead of
//! buffering without limit or dropping anything silently.

use crate::{IngestOutcome, Store};
use nudge_core::{Call, Clock};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy)]
pub struct IngestorConfig {
    /// Requests waiting for a commit before new ones are refused.
    pub queue_requests: usize,
    /// Most messages written in one transaction.
    pub max_commit_messages: usize,
}

impl Default for IngestorConfig {
    fn default() -> Self {
        Self {
            queue_requests: 4096,
            max_commit_messages: 20_000,
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SubmitError {
    #[error("the ingest queue is full; retry later")]
    Overloaded,
    #[error("the server is shutting down")]
    Closed,
    #[error("storage failed: {0}")]
    Store(String),
}

type Reply = oneshot::Sender<Result<Vec<IngestOutcome>, SubmitError>>;

struct Job {
    messages: Vec<Call>,
    reply: Reply,
}

/// Counters describing group commit, for `/metrics`.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub commits: AtomicU64,
    pub messages: AtomicU64,
    pub duplicates: AtomicU64,
    pub failed_commits: AtomicU64,
}

pub struct Ingestor {
    tx: mpsc::Sender<Job>,
    task: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<IngestStats>,
}

impl Ingestor {
    pub fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: IngestorConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue_requests.max(1));
        let stats = Arc::new(IngestStats::default());
        let task = tokio::spawn(run(store, clock, rx, config, stats.clone()));
        Self {
            tx,
            task: Mutex::new(Some(task)),
            stats,
        }
    }

    pub fn stats(&self) -> &IngestStats {
        &self.stats
    }

    /// Queues messages for the next commit and waits until they are durable.
    pub async fn submit(&self, messages: Vec<Call>) -> Result<Vec<IngestOutcome>, SubmitError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Job { messages, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SubmitError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => SubmitError::Closed,
        })?;
        rx.await.map_err(|_| SubmitError::Closed)?
    }

    /// Stops accepting messages, commits everything already queued, and returns once
    /// the last commit has finished.
    pub async fn shutdown(&self) {
        // An empty job is the shutdown marker: the loop closes the queue when it sees
        // it, commits what is already queued, and ends.
        let (reply, _rx) = oneshot::channel();
        let _ = self
            .tx
            .send(Job {
                messages: Vec::new(),
                reply,
            })
            .await;
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<Job>,
    config: IngestorConfig,
    stats: Arc<IngestStats>,
) {
    let mut closing = false;
    loop {
        let Some(first) = rx.recv().await else { break };
        let mut jobs = Vec::new();
        let mut count = 0;
        let take = |job: Job, jobs: &mut Vec<Job>, count: &mut usize, closing: &mut bool| {
            if job.messages.is_empty() {
                // The shutdown marker: refuse new work, drain what is queued.
                *closing = true;
            } else {
                *count += job.messages.len();
                jobs.push(job);
            }
        };
        take(first, &mut jobs, &mut count, &mut closing);
        if closing {
            rx.close();
        }
        while count < config.max_commit_messages {
            match rx.try_recv() {
                Ok(job) => {
                    take(job, &mut jobs, &mut count, &mut closing);
                    if closing {
                        rx.close();
                    }
                }
                Err(_) => break,
            }
        }
        if !jobs.is_empty() {
            commit(&*store, &*clock, jobs, count, &stats).await;
        }
    }
}

async fn commit(store: &dyn Store, clock: &dyn Clock, jobs: Vec<Job>, count: usize, stats: &IngestStats) {
    let mut all = Vec::with_capacity(count);
    let mut replies = Vec::with_capacity(jobs.len());
    for job in jobs {
        replies.push((job.messages.len(), job.reply));
        all.extend(job.messages);
    }
    match store.ingest(all, clock.now()).await {
        Ok(outcomes) => {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.messages.fetch_add(count as u64, Ordering::Relaxed);
            let dups = outcomes.iter().filter(|o| **o == IngestOutcome::Duplicate).count();
            stats.duplicates.fetch_add(dups as u64, Ordering::Relaxed);
            let mut rest = outcomes.into_iter();
            for (n, reply) in replies {
                let _ = reply.send(Ok(rest.by_ref().take(n).collect()));
            }
        }
        Err(e) => {
            stats.failed_commits.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, messages = count, "ingest commit failed; nothing from it was stored");
            for (_, reply) in replies {
                let _ = reply.send(Err(SubmitError::Store(e.to_string())));
            }
        }
    }
}
