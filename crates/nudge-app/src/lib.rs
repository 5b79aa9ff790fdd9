//! Nudge's application layer: the use cases the HTTP API and the CLI share, between
//! them and the engines and the store. Inputs and outputs are typed; failures are one
//! [`AppError`].
//!
//! - [`messages`]: sending a message (recipient by contact id, user id or email — a
//!   new email creates the contact —, template and version, idempotency key,
//!   enqueue), bounces and suppressions;
//! - [`campaigns`]: a campaign's definition checked against what is stored, drafts,
//!   sending with a schedule (template versions fixed), pause, resume, cancel, a
//!   manual winner, the report per variant (JSON-ready and CSV);
//! - [`reports`]: the workspace report (by channel, campaign and journey over a range,
//!   from hourly counters) and the conversion settings;
//! - [`journeys`]: the journey dry run (candidates, time zones), installing a
//!   ready-made journey;
//! - [`contacts`] and [`csv_io`]: contact import and export as CSV; [`imports`]:
//!   an import as a background job with progress and a per-row error report (the
//!   web UI's);
//! - [`channels`]: configuring how e-mail and SMS leave, channel health, and test
//!   sends (one real message to a typed address, outside the outbox);
//! - [`accounts`]: users of the web UI, their roles, passwords (Argon2id), sessions,
//!   the setup link and the sign-in rate limit;
//! - [`keys`]: API keys (create, list, revoke, verify; only hashes are stored);
//! - [`templates`]: checking a template before it is stored, previews;
//! - [`segments`]: validating a definition, previewing a draft (count and sample),
//!   saving and deleting segments, ready-made installs, size over time;
//! - [`ready_made_journeys`]: the catalogue of ready-made journeys;
//! - [`predictions`]: fitting the lifetime-value models on request, the current
//!   model, a contact's predictions.
//! - [`send_time`]: a contact's send-time profile: the best hours and the confidence.
//!
//! Architecture invariant: nothing here knows HTTP (no status codes, headers or
//! request bodies); the callers parse their input into these types and render the
//! results.

pub mod accounts;
pub mod campaigns;
pub mod channels;
pub mod contacts;
pub mod csv_io;
pub mod error;
pub mod forms;
pub mod imports;
pub mod journeys;
pub mod keys;
pub mod live;
pub mod messages;
pub mod nodes;
pub mod predictions;
pub mod ready_made_journeys;
pub mod recipients;
pub mod recommendations;
pub mod reports;
pub mod retention;
pub mod scoring;
pub mod segments;
pub mod send_time;
pub mod templates;

pub use error::{AppError, FieldProblem, Result};

use nudge_core::Clock;
use nudge_engine::{CampaignEngine, JourneyEngine, SegmentEngine};
use nudge_messages::delivery::Deliverer;
use nudge_store::Store;
use std::sync::Arc;

/// What the use cases work with: the store and the clock, and the workers to wake
/// after a change (each optional: the CLI runs none).
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Live segment membership, woken after contacts change.
    pub segments: Option<Arc<SegmentEngine>>,
    /// The journey engine, woken after journeys change.
    pub journeys: Option<Arc<JourneyEngine>>,
    /// The campaign engine, woken after a campaign is sent, paused, resumed,
    /// cancelled or given its winner.
    pub campaigns: Option<Arc<CampaignEngine>>,
    /// The delivery worker (channels); `None` where messaging is off.
    pub messaging: Option<Arc<Deliverer>>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            segments: None,
            journeys: None,
            campaigns: None,
            messaging: None,
        }
    }

    pub fn with_segments(mut self, segments: Arc<SegmentEngine>) -> Self {
        self.segments = Some(segments);
        self
    }

    pub fn with_journeys(mut self, journeys: Arc<JourneyEngine>) -> Self {
        self.journeys = Some(journeys);
        self
    }

    pub fn with_campaigns(mut self, campaigns: Arc<CampaignEngine>) -> Self {
        self.campaigns = Some(campaigns);
        self
    }

    pub fn with_messaging(mut self, messaging: Arc<Deliverer>) -> Self {
        self.messaging = Some(messaging);
        self
    }

    /// After contacts changed: the segment engine re-evaluates them.
    pub fn contacts_changed(&self) {
        if let Some(s) = &self.segments {
            s.wake();
        }
    }

    /// After journeys changed: the engine listens for the events live journeys act on
    /// before the caller hears back (an event sent right after publishing is not
    /// missed), then works.
    pub async fn journeys_changed(&self) -> Result<()> {
        if let Some(j) = &self.journeys {
            j.listen().await?;
            j.wake();
        }
        Ok(())
    }

    /// After a campaign's status or winner changed: the campaign engine works now
    /// (in a process without one, a server's engine finds the change within its idle
    /// time).
    pub fn campaigns_changed(&self) {
        if let Some(c) = &self.campaigns {
            c.wake();
        }
    }

    /// The delivery worker, or [`AppError::ChannelNotConfigured`].
    pub fn messaging(&self) -> Result<Arc<Deliverer>> {
        self.messaging
            .clone()
            .ok_or_else(|| AppError::ChannelNotConfigured("messaging is not configured on this server".into()))
    }
}
