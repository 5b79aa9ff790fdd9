//! The engine: work that happens after a request has been answered.
//!
//! [`SegmentEngine`] keeps live segment membership: contacts whose facts changed
//! (marked in the same transaction as the change) or whose segment timer came due
//! are re-evaluated in memory against every segment, and the joins and leaves are
//! recorded in one transaction with the next timers.
//!
//! [`JourneyEngine`] moves journey runs forward: events from the journey inbox and
//! timers that came due go through the pure decision core, and each transition is
//! stored with its timers, waits and outgoing messages in one transaction.
//!
//! [`CampaignEngine`] takes sent campaigns from start to end: the audience snapshot in
//! bounded pages, the test's winner, due messages within throttle and caps.
//!
//! [`PredictionEngine`] keeps customer lifetime value and churn risk current: scheduled
//! refits of the models and per-purchase updates of a contact's predictions.
//!
//! [`SendTimeEngine`] keeps each contact's send-time profile current: engagement
//! events read after a cursor, counted once each by `nudge_core::send_time`.
//! [`RecommendationEngine`] keeps product recommendations fresh: scheduled refreshes
//! of the item-to-item similarities and best sellers, new products into the catalogue
//! between them.
//!
//! [`Singleton`] runs work that one node at a time does under a lease in the store
//! (entry-timer setting, campaigns, the model engines): see `singleton.rs`.
//!
//! Architecture invariant: decisions come from `nudge_core` (pure); this crate only
//! loads state, calls them, and stores their outcome. It knows nothing of HTTP.

mod campaigns;
mod journeys;
mod predictions;
mod recommendations;
mod retention;
mod segments;
mod send_time;
pub mod singleton;

pub use campaigns::{CampaignEngine, CampaignEngineConfig, CampaignRound};
pub use journeys::{
    FREQUENCY_CAPS, JourneyEngine, JourneyEngineConfig, MoveReport, RoundStats, conversion_settings, event_names,
    frequency_caps, resolve_send_channels,
};
pub use predictions::{
    FitFailure, PredictionEngine, PredictionEngineConfig, PredictionRound, fit as fit_predictions, update_purchasers,
};
pub use recommendations::{
    Learned, RecommendationEngine, RecommendationEngineConfig, RecommendationRound, learn as learn_recommendations,
    refresh as refresh_recommendations, update_catalogue,
};
pub use retention::{RetentionEngine, RetentionEngineConfig, RetentionRound, retention_days};
pub use segments::{SegmentEngine, SegmentEngineConfig};
pub use send_time::{SendTimeEngine, SendTimeEngineConfig, SendTimeRound};
pub use singleton::{LeaseTiming, Singleton};
