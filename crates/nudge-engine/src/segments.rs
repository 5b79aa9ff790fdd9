use nudge_core::segment::{Condition, Facts};
use nudge_core::{Clock, Millis};
use nudge_store::{ContactEvaluation, MembershipChanges, Store};
use nudge_worker::{Outcome, WorkerConfig, run_worker};
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

    /// Materialises due score decay, then evaluates one batch of pending contacts.
    /// Returns how many were evaluated (or, with none to evaluate, how many decay
    /// timers were handled) and what changed.
    pub async fn run_once(&self) -> nudge_store::Result<(usize, MembershipChanges)> {
        let now = self.clock.now();
        let t0 = std::time::Instant::now();
        // Scores whose decay crosses a threshold now are materialised first (their
        // contacts are marked when a segment reads the score), so this round already
        // evaluates them at the moment of the crossing.
        let decayed = self.store.decay_due_scores(now, self.config.batch).await?;
        if decayed > 0 {
            tracing::debug!(decayed, "materialised score decay");
        }
        let work = self.store.claim_segment_work(now, self.config.batch).await?;
        let t_claim = t0.elapsed();
        if work.is_empty() {
            // Decay materialised for contacts no segment reads is work done too.
            return Ok((decayed, MembershipChanges::default()));
        }
        let segments = self.store.segments().await?;
        let definitions = effective_definitions(&segments);
        // Only the events some segment reads: not the whole timeline (segment changes,
        // page views...).
        let mut names: Vec<String> = definitions
            .iter()
            .flat_map(|(_, d)| d.event_names())
            .map(str::to_string)
            .collect();
        names.sort_unstable();
        names.dedup();
        let t_segments = t0.elapsed();
        let facts = self
            .store
            .contacts_facts(work.iter().map(|w| w.contact_id).collect(), Some(names))
            .await?;
        let t_facts = t0.elapsed();
        let evals: Vec<ContactEvaluation> = work
            .iter()
            .zip(facts)
            .map(|(w, facts)| ContactEvaluation {
                contact_id: w.contact_id,
                dirty_since: w.dirty_since,
                results: facts.map(|f| evaluate(&definitions, &f, now)).unwrap_or_default(),
            })
            .collect();
        let t_eval = t0.elapsed();
        let changes = self.store.apply_evaluations(evals, now).await?;
        tracing::trace!(
            contacts = work.len(),
            claim_ms = t_claim.as_secs_f64() * 1e3,
            segments_ms = (t_segments - t_claim).as_secs_f64() * 1e3,
            facts_ms = (t_facts - t_segments).as_secs_f64() * 1e3,
            eval_ms = (t_eval - t_facts).as_secs_f64() * 1e3,
            apply_ms = (t0.elapsed() - t_eval).as_secs_f64() * 1e3,
            "segment batch"
        );
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
    /// until the next timer, or at most `idle` (the loop: [`nudge_worker::run_worker`]).
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let this = &*self;
        let config = WorkerConfig::new("segment engine", this.config.idle);
        run_worker(config, &this.wake, stop, move || async move {
            let (evaluated, _) = this.run_once().await?;
            if evaluated > 0 {
                return Ok(Outcome::Busy);
            }
            let next = this.store.next_segment_timer().await?;
            let decay = this.store.next_score_timer().await?;
            let next = match (next, decay) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            Ok::<_, nudge_store::StoreError>(Outcome::idle_until(next, this.clock.now()))
        })
        .await
    }
}

/// Each segment's id and the definition both evaluators use (administrative segments'
/// members are left out of all the others): built once per round, not per contact.
pub fn effective_definitions(segments: &[nudge_store::Segment]) -> Vec<(i64, Condition)> {
    segments
        .iter()
        .map(|s| (s.id, s.effective_definition(segments)))
        .collect()
}

/// Every segment's verdict for one contact: member now, and when time alone may
/// change that.
pub fn evaluate(definitions: &[(i64, Condition)], facts: &Facts, now: Millis) -> Vec<(i64, bool, Option<Millis>)> {
    definitions
        .iter()
        .map(|(id, definition)| (*id, definition.matches(facts, now), definition.next_change(facts, now)))
        .collect()
}
