//! Product recommendations kept fresh (docs/recommendations.md).
//!
//! [`refresh`] learns the similarities (`nudge_core::recommend::Learner`) from every
//! contact's product events, read a page of contacts at a time through a reader (only
//! the product ids, one counter per product and per pair are held), then writes the
//! catalogue facts, the lists and the best sellers in short transactions of
//! [`RecommendationEngineConfig::batch`] products under a new refresh id, makes it
//! current in one statement and deletes the previous refresh's rows in bounded
//! batches: the SQLite writer is never held long, and a list is never read half
//! written.
//!
//! [`RecommendationEngine`] refreshes on a schedule (hourly by default) and, between
//! refreshes, adds the products new events name to the catalogue (cheap: after the
//! refresh's event cursor). Similarities themselves only move at a refresh: they are
//! normalised over every contact, which an incremental update could not keep exact.

use nudge_core::recommend::{self, Learner, Popular, ProductFacts, Settings, Similar, Touch, TouchKind};
use nudge_core::{Clock, ContactId, Millis};
use nudge_store::{RecommendationModel, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How the recommendation engine works.
#[derive(Debug, Clone)]
pub struct RecommendationEngineConfig {
    /// Refresh when the current similarities are this old (1 hour); `None`: only on
    /// request.
    pub refresh_every: Option<Duration>,
    /// What the similarities are learned with.
    pub settings: Settings,
    /// Contacts whose product events are read per statement (5,000).
    pub page: usize,
    /// Products whose lists (or catalogue facts) are written per transaction (500).
    pub batch: usize,
    /// Best sellers kept per category (20).
    pub popular_per_category: usize,
    /// Sleep when idle (60 s): a new product reaches the catalogue within it.
    pub idle: Duration,
}

impl Default for RecommendationEngineConfig {
    fn default() -> Self {
        Self {
            refresh_every: Some(Duration::from_secs(3600)),
            settings: Settings::default(),
            page: 5_000,
            batch: 500,
            popular_per_category: 20,
            idle: Duration::from_secs(60),
        }
    }
}

/// What one refresh learned, before it is written: the catalogue facts, the lists
/// and each product's distinct buyers over the last 30 days.
#[derive(Debug, Default)]
pub struct Learned {
    pub facts: Vec<ProductFacts>,
    pub lists: Vec<(String, Vec<Similar>)>,
    pub buyers: Vec<(String, u32)>,
    pub contacts: usize,
    pub products: usize,
    pub pairs: usize,
}

/// Learns from every contact's product events as of `now` (pure apart from the
/// reads).
pub async fn learn(store: &dyn Store, now: Millis, config: &RecommendationEngineConfig) -> Result<Learned, StoreError> {
    let mut learner = Learner::new(config.settings.clone());
    // The newest facts per product (events are read oldest first per contact; a later
    // contact's older event may come after, so keep the latest by time).
    let mut facts: HashMap<u32, (Millis, ProductFacts)> = HashMap::new();
    let mut buyers: HashMap<u32, u32> = HashMap::new();
    let mut after: ContactId = 0;
    loop {
        let page = store.product_touches(after, config.page).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.contact;
        for contact in page {
            let mut touches = Vec::new();
            let mut bought_recently: HashSet<u32> = HashSet::new();
            for (at, kind, products) in contact.touches {
                for f in products {
                    let product = learner.intern(&f.id);
                    touches.push(Touch { at, kind, product });
                    if kind == TouchKind::Purchased && recommend::counts_as_recent(at, now) {
                        bought_recently.insert(product);
                    }
                    match facts.get_mut(&product) {
                        Some((t, kept)) if *t <= at => {
                            *t = at;
                            let older = std::mem::replace(kept, f);
                            merge_facts(kept, older);
                        }
                        Some((_, kept)) => merge_facts(kept, f),
                        None => {
                            facts.insert(product, (at, f));
                        }
                    }
                }
            }
            for p in bought_recently {
                *buyers.entry(p).or_default() += 1;
            }
            learner.add_contact(&touches);
        }
    }
    let contacts = learner.contacts_seen;
    let products = learner.products();
    let pairs = learner.pairs();
    let mut facts: Vec<(u32, ProductFacts)> = facts.into_iter().map(|(p, (_, f))| (p, f)).collect();
    facts.sort_by_key(|(p, _)| *p);
    let buyers: Vec<(String, u32)> = facts
        .iter()
        .filter_map(|(p, f)| buyers.get(p).map(|n| (f.id.clone(), *n)))
        .collect();
    Ok(Learned {
        facts: facts.into_iter().map(|(_, f)| f).collect(),
        lists: learner.finish(),
        buyers,
        contacts,
        products,
        pairs,
    })
}

/// `newer`'s values, and `older`'s where `newer` says nothing.
fn merge_facts(newer: &mut ProductFacts, older: ProductFacts) {
    newer.name = newer.name.take().or(older.name);
    newer.price = newer.price.or(older.price);
    newer.category = newer.category.take().or(older.category);
    newer.url = newer.url.take().or(older.url);
    newer.image_url = newer.image_url.take().or(older.image_url);
}

/// A full refresh as of `now`: learn, write in batches, make current, drop the
/// previous refresh's rows. The refresh made current.
pub async fn refresh(
    store: &dyn Store,
    now: Millis,
    config: &RecommendationEngineConfig,
) -> Result<RecommendationModel, StoreError> {
    // Product events stored after this are the incremental updates' (read first, so
    // none is missed).
    let cursor = store.last_event_id().await?;
    let learned = learn(store, now, config).await?;
    let batch = config.batch.max(1);
    for chunk in learned.facts.chunks(batch) {
        store.record_products(chunk.to_vec(), now).await?;
    }
    let id = store.start_recommendation_model(now, cursor).await?;
    let similar_products = learned.lists.len() as i64;
    let mut lists = learned.lists;
    while !lists.is_empty() {
        let rest = lists.split_off(lists.len().min(batch));
        store.save_similarities(id, lists).await?;
        lists = rest;
    }
    // Best sellers per category as the catalogue has it now (an imported product's
    // category, else the latest event's).
    let mut categories: HashMap<String, Option<String>> = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.products(after.as_deref(), 1_000).await?;
        categories.extend(page.products.into_iter().map(|p| (p.id, p.category)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let counted: Vec<(String, Option<String>, u32)> = learned
        .buyers
        .into_iter()
        .map(|(p, n)| {
            let category = categories.get(&p).cloned().flatten();
            (p, category, n)
        })
        .collect();
    let popular: Vec<Popular> = recommend::rank_popular(&counted, config.popular_per_category);
    store.save_popular(id, popular).await?;
    let model = RecommendationModel {
        id,
        started_at: now,
        finished_at: Some(now),
        event_cursor: cursor,
        contacts: learned.contacts as i64,
        products: learned.products as i64,
        pairs: learned.pairs as i64,
        similar_products,
    };
    store.finish_recommendation_model(&model).await?;
    while store.drop_old_recommendations(id, batch).await? > 0 {}
    tracing::info!(
        contacts = model.contacts,
        products = model.products,
        pairs = model.pairs,
        similar_products,
        "refreshed the product recommendations"
    );
    Ok(model)
}

/// Adds the products named by up to `limit` product events after the refresh's cursor
/// to the catalogue and moves the cursor. How many product facts were recorded (at
/// least 1 when the cursor moved, so the caller goes on).
pub async fn update_catalogue(
    store: &dyn Store,
    model: &RecommendationModel,
    now: Millis,
    limit: usize,
) -> Result<usize, StoreError> {
    let (facts, cursor) = store.products_seen_since(model.event_cursor, limit).await?;
    if cursor == model.event_cursor {
        return Ok(0);
    }
    let n = facts.len();
    store.record_products(facts, now).await?;
    store.advance_recommendation_cursor(model.id, cursor).await?;
    Ok(n.max(1))
}

/// Keeps recommendations fresh: scheduled refreshes and catalogue updates.
pub struct RecommendationEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: RecommendationEngineConfig,
    wake: Notify,
    /// When a scheduled refresh was last tried (a failed one waits for the next period).
    last_attempt: Mutex<Option<Millis>>,
}

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecommendationRound {
    pub refreshed: bool,
    /// Product events added to the catalogue.
    pub catalogued: usize,
    /// More events may be waiting.
    pub more: bool,
}

impl RecommendationEngine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: RecommendationEngineConfig) -> Arc<Self> {
        Arc::new(RecommendationEngine {
            store,
            clock,
            config,
            wake: Notify::new(),
            last_attempt: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &RecommendationEngineConfig {
        &self.config
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let this = &*self;
        let config = nudge_worker::WorkerConfig::new("recommendation engine", this.config.idle);
        nudge_worker::run_worker(config, &this.wake, stop, move || async move {
            let round = this.run_once().await?;
            Ok::<_, StoreError>(nudge_worker::Outcome::busy_if(round.more))
        })
        .await
    }

    /// A refresh now, whatever the schedule.
    pub async fn refresh_now(&self) -> Result<RecommendationModel, StoreError> {
        let now = self.clock.now();
        *self.last_attempt.lock().expect("not poisoned") = Some(now);
        refresh(&*self.store, now, &self.config).await
    }

    /// One round: a refresh when the current one is due, else the next batch of
    /// product events into the catalogue.
    pub async fn run_once(&self) -> nudge_store::Result<RecommendationRound> {
        let now = self.clock.now();
        let current = self.store.recommendation_model().await?;
        if let Some(every) = self.config.refresh_every {
            let every = every.as_millis() as Millis;
            let last = *self.last_attempt.lock().expect("not poisoned");
            let stale = current.as_ref().is_none_or(|m| now - m.started_at >= every);
            let tried = last.is_some_and(|t| now - t < every);
            if stale && !tried {
                self.refresh_now().await?;
                return Ok(RecommendationRound {
                    refreshed: true,
                    catalogued: 0,
                    more: false,
                });
            }
        }
        let Some(model) = current else {
            return Ok(RecommendationRound::default());
        };
        let limit = self.config.batch.max(1);
        let catalogued = update_catalogue(&*self.store, &model, now, limit).await?;
        Ok(RecommendationRound {
            refreshed: false,
            catalogued,
            more: catalogued > 0,
        })
    }
}
