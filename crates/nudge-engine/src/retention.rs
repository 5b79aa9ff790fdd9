//! Event retention (docs/operations.md, "Retention"), run as the singleton
//! `retention` on one `engine` node.
//!
//! A pass reads the workspace setting `events_retention_days` (so a change made
//! through any node applies at the next pass), makes the coming months' event
//! partitions (PostgreSQL; always, retention or not), and when events are kept for
//! a number of days removes those older than the cutoff one step at a time
//! (`RetentionStore::retention_step`): a partition dropped, or a batch of rows
//! deleted, with a pause between steps so ingestion's transactions go in between.

use nudge_core::Clock;
use nudge_core::retention;
use nudge_store::{Store, StoreError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How retention works.
#[derive(Debug, Clone)]
pub struct RetentionEngineConfig {
    /// Rows per transaction (SQLite, PostgreSQL's default partition) and message ids
    /// forgotten per transaction when a partition goes (2,000).
    pub batch: usize,
    /// Pause after a step that left more to do (50 ms): the writer is free for
    /// ingestion meanwhile.
    pub pause: Duration,
    /// Time between passes (1 hour), unless woken.
    pub every: Duration,
}

impl Default for RetentionEngineConfig {
    fn default() -> Self {
        Self {
            batch: 2_000,
            pause: Duration::from_millis(50),
            every: Duration::from_secs(3600),
        }
    }
}

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionRound {
    /// Partitions made ahead (PostgreSQL).
    pub added: Vec<String>,
    /// Partitions dropped (PostgreSQL).
    pub dropped: Vec<String>,
    /// Events deleted row by row.
    pub deleted: u64,
    /// The pass is not over: another round goes on with it.
    pub more: bool,
}

/// A pass under way: its cutoff and where its next step starts.
#[derive(Debug, Clone, Copy)]
struct Pass {
    cutoff: nudge_core::Millis,
    after: i64,
}

/// Removes events older than the workspace's retention period.
pub struct RetentionEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: RetentionEngineConfig,
    pass: Mutex<Option<Pass>>,
    wake: Notify,
}

/// The workspace's retention period in days, `None` to keep every event. A stored
/// value this Nudge cannot read is an error, never "keep everything" in silence.
pub async fn retention_days(store: &dyn Store) -> nudge_store::Result<Option<u32>> {
    match store.setting(retention::SETTING).await? {
        None => Ok(None),
        Some(raw) => {
            let value: serde_json::Value =
                serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("{}: {e}", retention::SETTING)))?;
            retention::parse_days(&value).map_err(StoreError::Corrupt)
        }
    }
}

impl RetentionEngine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: RetentionEngineConfig) -> Arc<Self> {
        Arc::new(RetentionEngine {
            store,
            clock,
            config,
            pass: Mutex::new(None),
            wake: Notify::new(),
        })
    }

    /// Starts a pass now (the setting changed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let this = &*self;
        let config = nudge_worker::WorkerConfig::new("retention", this.config.every);
        nudge_worker::run_worker(config, &this.wake, stop, move || async move {
            let round = this.run_once().await?;
            if round.more {
                tokio::time::sleep(this.config.pause).await;
            }
            Ok::<_, StoreError>(nudge_worker::Outcome::busy_if(round.more))
        })
        .await
    }

    /// One round: at the start of a pass, the setting read and the partitions made
    /// ahead; then one step of the pass.
    pub async fn run_once(&self) -> nudge_store::Result<RetentionRound> {
        let mut round = RetentionRound::default();
        let current = *self.pass.lock().unwrap_or_else(|p| p.into_inner());
        let pass = match current {
            Some(p) => p,
            None => {
                let now = self.clock.now();
                round.added = self.store.prepare_event_partitions(now).await?;
                let Some(days) = retention_days(&*self.store).await? else {
                    return Ok(round);
                };
                Pass {
                    cutoff: retention::cutoff(now, days),
                    after: 0,
                }
            }
        };
        let step = self
            .store
            .retention_step(pass.cutoff, self.config.batch, pass.after)
            .await?;
        round.deleted = step.deleted;
        round.dropped.extend(step.dropped);
        round.more = step.more;
        if let Some(name) = round.dropped.first() {
            tracing::info!(partition = %name, cutoff = pass.cutoff, "retention dropped an events partition");
        } else if round.deleted > 0 {
            tracing::debug!(deleted = round.deleted, cutoff = pass.cutoff, "retention step");
        }
        *self.pass.lock().unwrap_or_else(|p| p.into_inner()) = step.more.then_some(Pass {
            cutoff: pass.cutoff,
            after: step.next_after,
        });
        Ok(round)
    }

    /// A whole pass at once, without pauses (tests, and a command that wants it done).
    pub async fn run_pass(&self) -> nudge_store::Result<RetentionRound> {
        let mut total = RetentionRound::default();
        loop {
            let r = self.run_once().await?;
            total.added.extend(r.added);
            total.dropped.extend(r.dropped);
            total.deleted += r.deleted;
            if !r.more {
                return Ok(total);
            }
        }
    }
}
