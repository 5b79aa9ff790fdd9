//! Customer lifetime value and churn risk kept current (docs/predictions.md).
//!
//! [`fit`] fits the workspace's models (`nudge_core::predict`) on every contact's
//! purchases up to a calibration end and writes every customer's predictions: the
//! histories are read in pages of contacts, so only the customers' summaries (four
//! numbers each) are held in memory, and the predictions are written in short
//! transactions of [`PredictionEngineConfig::batch`] contacts, so the SQLite writer is
//! never held long and ingestion goes on meanwhile.
//!
//! [`PredictionEngine`] refits on a schedule (daily by default) and, between fits,
//! updates the predictions of contacts who purchased since (found by event id after
//! the model's cursor; nothing is done on the ingestion path).

use nudge_core::predict::{self, Customer, FitError, Unit};
use nudge_core::{Clock, ContactId, Millis};
use nudge_store::{PurchaseHistory, Store, StoreError, StoredModel};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How the prediction engine works.
#[derive(Debug, Clone)]
pub struct PredictionEngineConfig {
    /// Refit when the current model is this old (1 day); `None`: only on request
    /// (`POST /api/v1/predictions/fit`).
    pub refit_every: Option<Duration>,
    /// The unit scheduled fits count in (days).
    pub unit: Unit,
    /// Contacts whose purchases are read per statement (10,000).
    pub page: usize,
    /// Contacts whose predictions are written per transaction (200: a transaction holds
    /// the SQLite writer for a few milliseconds).
    pub batch: usize,
    /// Sleep when idle (60 s): a purchase reaches its contact's predictions within it.
    pub idle: Duration,
}

impl Default for PredictionEngineConfig {
    fn default() -> Self {
        Self {
            refit_every: Some(Duration::from_secs(24 * 3600)),
            unit: Unit::Days,
            page: 10_000,
            batch: 200,
            idle: Duration::from_secs(60),
        }
    }
}

/// Why a fit failed.
#[derive(Debug)]
pub enum FitFailure {
    /// The data cannot be fitted (too few customers, the optimiser failed).
    Model(FitError),
    Store(StoreError),
}

impl std::fmt::Display for FitFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitFailure::Model(e) => e.fmt(f),
            FitFailure::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FitFailure {}

impl From<StoreError> for FitFailure {
    fn from(e: StoreError) -> Self {
        FitFailure::Store(e)
    }
}

/// A blocking task that did not finish (it panicked, or the runtime is shutting down).
fn stopped(e: tokio::task::JoinError) -> FitFailure {
    FitFailure::Model(FitError::Optimiser(format!("the fit stopped: {e}")))
}

/// Every customer's summary up to `until`, read a page of contacts at a time.
async fn customers(
    store: &dyn Store,
    until: Millis,
    unit: Unit,
    page: usize,
) -> Result<Vec<(ContactId, Customer)>, StoreError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let histories = store.purchase_histories(until, after, page).await?;
        let Some(last) = histories.last() else {
            return Ok(out);
        };
        after = last.contact;
        out.extend(
            histories
                .iter()
                .filter_map(|h| predict::summarise(&h.purchases, until, unit).map(|c| (h.contact, c))),
        );
    }
}

/// Fits the models on the purchases up to `until` and writes every customer's
/// predictions as of `until`. Returns the stored model and how many contacts' predictions were written.
pub async fn fit(
    store: &dyn Store,
    until: Millis,
    unit: Unit,
    now: Millis,
    config: &PredictionEngineConfig,
) -> Result<(StoredModel, usize), FitFailure> {
    // Purchases stored after this are the incremental updates' (read before the
    // histories, so none is missed).
    let cursor = store.last_event_id().await?;
    let started = std::time::Instant::now();
    let customers = customers(store, until, unit, config.page).await?;
    let read = started.elapsed();
    let summaries: Vec<Customer> = customers.iter().map(|(_, c)| *c).collect();
    // The fit and the predictions are seconds of arithmetic at a million customers:
    // on blocking threads, not the runtime's, which serve requests meanwhile.
    let model = tokio::task::spawn_blocking(move || predict::fit(&summaries, unit, until, now))
        .await
        .map_err(stopped)?
        .map_err(FitFailure::Model)?;
    let fitted = started.elapsed();
    let stored = store.save_prediction_model(&model, cursor).await?;
    let model = Arc::new(model);
    let mut written = 0;
    for chunk in customers.chunks(config.batch.max(1)) {
        let (chunk, model) = (chunk.to_vec(), Arc::clone(&model));
        let predictions =
            tokio::task::spawn_blocking(move || chunk.iter().map(|(id, c)| (*id, model.predict(c, until))).collect())
                .await
                .map_err(stopped)?;
        written += store.save_predictions(predictions, now).await?;
    }
    tracing::info!(
        customers = model.customers,
        repeat = model.repeat_customers,
        written,
        read_s = read.as_secs_f64(),
        fit_s = (fitted - read).as_secs_f64(),
        write_s = (started.elapsed() - fitted).as_secs_f64(),
        "fitted the lifetime-value models"
    );
    Ok((stored, written))
}

/// Updates the predictions of up to `limit` contacts who purchased after the model's
/// cursor, as of `now` with the model's parameters, and moves the cursor. How many
/// contacts were updated.
pub async fn update_purchasers(
    store: &dyn Store,
    model: &StoredModel,
    now: Millis,
    limit: usize,
) -> Result<usize, StoreError> {
    let (contacts, cursor) = store.purchasers_since(model.event_cursor, limit).await?;
    if cursor == model.event_cursor {
        return Ok(0);
    }
    let mut predictions = Vec::with_capacity(contacts.len());
    for contact in contacts {
        let PurchaseHistory { contact, purchases } = store.purchase_history(contact, now).await?;
        if let Some(c) = predict::summarise(&purchases, now, model.model.unit) {
            predictions.push((contact, model.model.predict(&c, now)));
        }
    }
    let n = predictions.len();
    store.save_predictions(predictions, now).await?;
    store.advance_prediction_cursor(model.id, cursor).await?;
    Ok(n)
}

/// Keeps predictions current: scheduled refits and per-purchase updates.
pub struct PredictionEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: PredictionEngineConfig,
    wake: Notify,
    /// When a scheduled fit was last tried (a failed one waits for the next period).
    last_attempt: Mutex<Option<Millis>>,
}

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PredictionRound {
    /// Whether the models were refitted.
    pub fitted: bool,
    /// Contacts whose predictions were written.
    pub updated: usize,
    /// More purchases may be waiting.
    pub more: bool,
}

impl PredictionEngine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: PredictionEngineConfig) -> Arc<Self> {
        Arc::new(PredictionEngine {
            store,
            clock,
            config,
            wake: Notify::new(),
            last_attempt: Mutex::new(None),
        })
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let this = &*self;
        let config = nudge_worker::WorkerConfig::new("prediction engine", this.config.idle);
        nudge_worker::run_worker(config, &this.wake, stop, move || async move {
            let round = this.run_once().await?;
            Ok::<_, StoreError>(nudge_worker::Outcome::busy_if(round.more))
        })
        .await
    }

    /// One round: a refit when the model is due for one, else the next batch of
    /// contacts who purchased.
    pub async fn run_once(&self) -> nudge_store::Result<PredictionRound> {
        let now = self.clock.now();
        let current = self.store.prediction_model().await?;
        if let Some(every) = self.config.refit_every {
            let every = every.as_millis() as Millis;
            let last = *self.last_attempt.lock().expect("not poisoned");
            let stale = current.as_ref().is_none_or(|m| now - m.model.fitted_at >= every);
            let tried = last.is_some_and(|t| now - t < every);
            if stale && !tried {
                *self.last_attempt.lock().expect("not poisoned") = Some(now);
                match fit(&*self.store, now, self.config.unit, now, &self.config).await {
                    Ok((_, written)) => {
                        return Ok(PredictionRound {
                            fitted: true,
                            updated: written,
                            more: false,
                        });
                    }
                    Err(FitFailure::Model(e)) => tracing::info!(error = %e, "no lifetime-value model fitted"),
                    Err(FitFailure::Store(e)) => return Err(e),
                }
            }
        }
        let Some(model) = self.store.prediction_model().await? else {
            return Ok(PredictionRound::default());
        };
        let limit = self.config.batch.max(1);
        let updated = update_purchasers(&*self.store, &model, now, limit).await?;
        Ok(PredictionRound {
            fitted: false,
            updated,
            more: updated > 0,
        })
    }
}
