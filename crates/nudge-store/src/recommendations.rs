//! Product recommendations as the store keeps them (docs/recommendations.md): the
//! catalogue, each refresh of the similarities (`recommendation_models`, the latest
//! finished one current) with its lists and best sellers, and the reads a contact's or
//! a product's list is made from. What is similar and what is recommended is
//! `nudge_core::recommend`'s.

use crate::Result;
use async_trait::async_trait;
use nudge_core::recommend::{ContactTouch, Inputs, Popular, Product, ProductFacts, Similar, TouchKind};
use nudge_core::{ContactId, Millis};
use serde::Serialize;

/// A contact's product events (oldest first): when, how, which products.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactTouches {
    pub contact: ContactId,
    pub touches: Vec<(Millis, TouchKind, Vec<ProductFacts>)>,
}

/// One refresh of the similarities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecommendationModel {
    pub id: i64,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    /// The last event id the refresh saw.
    pub event_cursor: i64,
    /// Contacts with a product event.
    pub contacts: i64,
    /// Products seen in events.
    pub products: i64,
    /// Product pairs counted (before the minimum support).
    pub pairs: i64,
    /// Products with at least one similar product.
    pub similar_products: i64,
}

/// A page of the catalogue, by id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductPage {
    pub products: Vec<Product>,
    /// The id to ask for the next page after, when there may be one.
    pub next: Option<String>,
}

/// The recommendations part of the storage contract.
#[async_trait]
pub trait RecommendationStore: Send + Sync {
    /// Up to `limit` contacts after `after` (by id) with a product event, each with
    /// all of them (oldest first). A page holds whole contacts.
    async fn product_touches(&self, after: ContactId, limit: usize) -> Result<Vec<ContactTouches>>;
    /// The products named by up to `limit` product events stored after event `after`,
    /// and the last event id read (`after` when none).
    async fn products_seen_since(&self, after: i64, limit: usize) -> Result<(Vec<ProductFacts>, i64)>;
    /// A contact's `limit` most recent product touches, newest first (a merged-away id
    /// reads its survivor's).
    async fn contact_touches(&self, contact: ContactId, limit: usize) -> Result<Vec<ContactTouch>>;
    /// What events say about products, in one transaction: new products are added and
    /// products known only from events are updated (a value an event leaves out is
    /// kept); catalogue products (imported or set through the API) are left alone.
    async fn record_products(&self, facts: Vec<ProductFacts>, now: Millis) -> Result<()>;
    /// Creates or replaces catalogue products, in one transaction.
    async fn put_products(&self, products: Vec<Product>, now: Millis) -> Result<()>;
    async fn product(&self, id: &str) -> Result<Option<Product>>;
    /// Up to `limit` products with an id after `after`, by id.
    async fn products(&self, after: Option<&str>, limit: usize) -> Result<ProductPage>;
    /// Whether a product was deleted.
    async fn delete_product(&self, id: &str) -> Result<bool>;
    /// Starts a refresh; its id. Its lists are not read until it is finished.
    async fn start_recommendation_model(&self, started_at: Millis, event_cursor: i64) -> Result<i64>;
    /// Stores products' similar lists of a refresh (rank from 1 in list order).
    async fn save_similarities(&self, model: i64, lists: Vec<(String, Vec<Similar>)>) -> Result<()>;
    /// Stores a refresh's best sellers.
    async fn save_popular(&self, model: i64, popular: Vec<Popular>) -> Result<()>;
    /// Makes a refresh current, with its figures.
    async fn finish_recommendation_model(&self, model: &RecommendationModel) -> Result<()>;
    /// Deletes the lists of up to `limit` products of refreshes older than `model`
    /// (and their best sellers); how many rows went. Call until it answers 0.
    async fn drop_old_recommendations(&self, model: i64, limit: usize) -> Result<u64>;
    /// Moves the current refresh's cursor (product events up to it are in the catalogue).
    async fn advance_recommendation_cursor(&self, model: i64, event_cursor: i64) -> Result<()>;
    /// The current (latest finished) refresh.
    async fn recommendation_model(&self) -> Result<Option<RecommendationModel>>;
    /// What lists for these seed products are made from, by the current refresh: their
    /// similar lists, the best sellers of their categories and over all, and the
    /// catalogue rows of every product named. Empty lists without a refresh.
    async fn recommendation_inputs(&self, seeds: &[String]) -> Result<Inputs>;
}
