use nudge_core::segment::Facts;
use nudge_core::{Clock, Millis};
use nudge_store::{ContactEvaluation, MembershipChanges, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy)]
pub struct SegmentEngineConfig {
    /// Contacts evaluated per transaction.
    pub batch: usize,
    /// Longest sleep between checks when nothing wakes the engine.
    pub idle: Duration,
}

impl Default for SegmentEngineConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            idle: Duration::from_secs(1),
        }
    }
}

pub struct SegmentEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    wake: Notify,
    config: SegmentEngineConfig,
}

impl SegmentEngine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: SegmentEngineConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            clock,
            wake: Notify::new(),
            config,
        })
    }

    /// Tells the engine there may be new work (after an ingest commit, a contact update).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Evaluates one batch of pending contacts. Returns how many were evaluated and
    /// what changed.
    pub async fn run_once(&self) -> nudge_store::Result<(usize, MembershipChanges)> {
        let now = self.clock.now();
        let work = self.store.claim_segment_work(now, self.config.batch).await?;
        if work.is_empty() {
            return Ok((0, MembershipChanges::default()));
        }
        let segments = self.store.segments().await?;
        let mut evals = Vec::with_capacity(work.len());
        for w in &work {
            let results = match self.store.contact_facts(w.contact_id).await? {
                Some(facts) => evaluate(&segments, &facts, now),
                None => Vec::new(),
            };
            evals.push(ContactEvaluation {
                contact_id: w.contact_id,
                dirty_since: w.dirty_since,
                results,
            });
        }
        let changes = self.store.apply_evaluations(evals, now).await?;
        if !changes.entered.is_empty() || !changes.exited.is_empty() {
            tracing::debug!(
                entered = changes.entered.len(),
                exited = changes.exited.len(),
                "segment membership changed"
            );
        }
        Ok((work.len(), changes))
    }

    /// Runs until `stop` resolves: evaluates work as it appears, sleeps until woken,
    /// until the next timer, or at most `idle`.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let busy = match self.run_once().await {
                Ok((n, _)) => n > 0,
                Err(e) => {
                    tracing::error!(error = %e, "segment evaluation failed; retrying");
                    false
                }
            };
            if busy {
                // More may be queued: go again at once, but let shutdown in.
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::task::yield_now() => continue,
                }
            }
            let sleep = match self.store.next_segment_timer().await {
                Ok(Some(due)) => Duration::from_millis(
                    (due - self.clock.now()).clamp(0, self.config.idle.as_millis() as Millis) as u64,
                ),
                _ => self.config.idle,
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = self.wake.notified() => {},
                _ = tokio::time::sleep(sleep) => {},
            }
        }
    }
}

/// Every segment's verdict for one contact: member now, and when time alone may
/// change that.
pub fn evaluate(segments: &[nudge_store::Segment], facts: &Facts, now: Millis) -> Vec<(i64, bool, Option<Millis>)> {
    segments
        .iter()
        .map(|s| {
            (
                s.id,
                s.definition.matches(facts, now),
                s.definition.next_change(facts, now),
            )
        })
        .collect()
}
