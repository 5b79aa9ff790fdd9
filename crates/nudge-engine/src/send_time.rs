//! Send-time profiles kept current (docs/send-time.md).
//!
//! [`SendTimeEngine`] reads the engagement events stored after its cursor (e-mail
//! opens, clicks, push notifications tapped, page and screen calls), counts each in its
//! contact's profile and the workspace's by `nudge_core::send_time::record`, and stores
//! the touched profiles with the moved cursor in one transaction. Each event is read
//! once; nothing is done on the ingestion path and nothing re-reads a contact's
//! history. Two processes on one PostgreSQL database may both run it: the cursor is
//! moved by compare-and-set, so a batch is counted once.

use nudge_core::send_time::{self, Profile};
use nudge_core::{Clock, ContactId};
use nudge_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How the send-time engine works.
#[derive(Debug, Clone)]
pub struct SendTimeEngineConfig {
    /// Engagement events counted per transaction (2,000).
    pub batch: usize,
    /// Sleep when idle (5 s): an engagement reaches its contact's profile within it.
    pub idle: Duration,
}

impl Default for SendTimeEngineConfig {
    fn default() -> Self {
        Self {
            batch: 2_000,
            idle: Duration::from_secs(5),
        }
    }
}

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendTimeRound {
    /// Engagement events read.
    pub read: usize,
    /// Of those, the ones that counted (not a machine's open, not a page within a session).
    pub counted: usize,
    /// Contacts whose profile was written.
    pub contacts: usize,
    /// More events may be waiting.
    pub more: bool,
}

/// Keeps each contact's send-time profile and the workspace's current.
pub struct SendTimeEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: SendTimeEngineConfig,
    wake: Notify,
}

impl SendTimeEngine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: SendTimeEngineConfig) -> Arc<Self> {
        Arc::new(SendTimeEngine {
            store,
            clock,
            config,
            wake: Notify::new(),
        })
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let this = &*self;
        let config = nudge_worker::WorkerConfig::new("send-time engine", this.config.idle);
        nudge_worker::run_worker(config, &this.wake, stop, move || async move {
            let round = this.run_once().await?;
            Ok::<_, StoreError>(nudge_worker::Outcome::busy_if(round.more))
        })
        .await
    }

    /// One round: the next batch of engagement events after the cursor.
    pub async fn run_once(&self) -> nudge_store::Result<SendTimeRound> {
        let store: &dyn Store = &*self.store;
        let state = store.send_time_state().await?;
        let (events, cursor) = store
            .engagements_since(state.event_cursor, self.config.batch.max(1))
            .await?;
        if cursor == state.event_cursor {
            return Ok(SendTimeRound::default());
        }
        let mut contacts: Vec<ContactId> = events.iter().map(|e| e.contact).collect();
        contacts.sort_unstable();
        contacts.dedup();
        let mut profiles: HashMap<ContactId, Profile> =
            store.send_time_profiles(&contacts).await?.into_iter().collect();
        let mut workspace = state.workspace;
        let mut counted = 0;
        let mut touched: Vec<ContactId> = Vec::new();
        for e in &events {
            let profile = profiles.entry(e.contact).or_default();
            if send_time::record(profile, &mut workspace, e.engagement, e.at) {
                counted += 1;
            }
            touched.push(e.contact);
        }
        touched.sort_unstable();
        touched.dedup();
        let written: Vec<(ContactId, Profile)> = touched
            .into_iter()
            .filter_map(|c| profiles.remove(&c).map(|p| (c, p)))
            .collect();
        let n = written.len();
        let now = self.clock.now();
        let saved = store
            .save_send_times(written, &workspace, state.event_cursor, cursor, now)
            .await?;
        if !saved {
            // Another process counted them: read from its cursor next.
            return Ok(SendTimeRound {
                more: true,
                ..Default::default()
            });
        }
        Ok(SendTimeRound {
            read: events.len(),
            counted,
            contacts: n,
            more: true,
        })
    }
}
