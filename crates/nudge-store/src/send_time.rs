//! Send-time profiles as the store keeps them (docs/send-time.md): each contact's
//! engagement profile, the workspace's, and the event cursor the send-time engine
//! reads engagements after. The profiles and what counts are
//! `nudge_core::send_time`'s; the store only reads the events and keeps the results.

use crate::Result;
use async_trait::async_trait;
use nudge_core::send_time::{Engagement, Profile};
use nudge_core::{ContactId, Millis};

/// One engagement event read after the cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct EngagementEvent {
    /// The event's id.
    pub id: i64,
    /// The contact it belongs to today (a merged-away id resolved to its survivor).
    pub contact: ContactId,
    pub at: Millis,
    pub engagement: Engagement,
}

/// The workspace's profile and the cursor, as one row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SendTimeState {
    pub workspace: Profile,
    /// The last event id read.
    pub event_cursor: i64,
}

/// The send-time part of the storage contract.
#[async_trait]
pub trait SendTimeStore: Send + Sync {
    /// The workspace's profile and the cursor.
    async fn send_time_state(&self) -> Result<SendTimeState>;
    /// Up to `limit` engagement events (e-mail opens with their message's sending
    /// time, clicks, push notifications tapped, page and screen calls) stored after
    /// event `after`, oldest first, and the last event id read (`after` when none).
    async fn engagements_since(&self, after: i64, limit: usize) -> Result<(Vec<EngagementEvent>, i64)>;
    /// The stored profiles of these contacts (those without one are left out).
    async fn send_time_profiles(&self, contacts: &[ContactId]) -> Result<Vec<(ContactId, Profile)>>;
    /// Stores the contacts' profiles, the workspace's and the cursor moved from
    /// `from` to `to`, in one transaction; `false`, writing nothing, when the cursor
    /// is no longer at `from` (another process counted those events). Profiles of
    /// contacts gone meanwhile are skipped.
    async fn save_send_times(
        &self,
        profiles: Vec<(ContactId, Profile)>,
        workspace: &Profile,
        from: i64,
        to: i64,
        now: Millis,
    ) -> Result<bool>;
    /// A contact's profile (a merged-away id reads its survivor's); `None` without one.
    async fn contact_send_time(&self, contact: ContactId) -> Result<Option<Profile>>;
}
