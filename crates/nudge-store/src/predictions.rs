//! Customer lifetime value and churn risk as the store keeps them (docs/predictions.md):
//! the fitted models and each contact's predictions. The models and the predictions
//! are `nudge_core::predict`'s; what writing a prediction implies for the contact
//! (its `predicted_*` traits, the notices and segment mark that follow) is planned in
//! `plan.rs`.

use crate::Result;
use async_trait::async_trait;
use nudge_core::predict::{Model, Prediction, Purchase};
use nudge_core::{ContactId, Millis};
use serde::Serialize;

/// A contact's purchases (`Order Completed` events, oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseHistory {
    pub contact: ContactId,
    pub purchases: Vec<Purchase>,
}

/// A stored fit: the model and what the next incremental update starts after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredModel {
    pub id: i64,
    #[serde(flatten)]
    pub model: Model,
    /// The last event id the fit saw.
    pub event_cursor: i64,
}

/// The predictions part of the storage contract.
#[async_trait]
pub trait PredictionStore: Send + Sync {
    /// Up to `limit` contacts after `after` (by id) with a purchase at or before
    /// `until`, each with all those purchases. A page holds whole contacts.
    async fn purchase_histories(&self, until: Millis, after: ContactId, limit: usize) -> Result<Vec<PurchaseHistory>>;
    /// One contact's purchases at or before `until` (a merged-away id reads its
    /// survivor's).
    async fn purchase_history(&self, contact: ContactId, until: Millis) -> Result<PurchaseHistory>;
    /// The id of the newest event (0 without any): where the next incremental update
    /// of a fit starts.
    async fn last_event_id(&self) -> Result<i64>;
    /// Up to `limit` contacts with a purchase stored after event `after`, and the last
    /// event id read (`after` when none).
    async fn purchasers_since(&self, after: i64, limit: usize) -> Result<(Vec<ContactId>, i64)>;
    /// Stores a fit; it becomes the current model.
    async fn save_prediction_model(&self, model: &Model, event_cursor: i64) -> Result<StoredModel>;
    /// Moves the current model's cursor (purchases up to it are reflected).
    async fn advance_prediction_cursor(&self, id: i64, event_cursor: i64) -> Result<()>;
    /// The current model, if a fit was ever stored.
    async fn prediction_model(&self) -> Result<Option<StoredModel>>;
    /// Stores the contacts' predictions and writes their `predicted_*` traits (with
    /// the trait-change notices and segment marks that follow), in one transaction.
    /// Contacts gone meanwhile are skipped. How many were written.
    async fn save_predictions(&self, predictions: Vec<(ContactId, Prediction)>, now: Millis) -> Result<usize>;
    /// A contact's stored predictions (a merged-away id reads its survivor's).
    async fn contact_prediction(&self, contact: ContactId) -> Result<Option<Prediction>>;
}
