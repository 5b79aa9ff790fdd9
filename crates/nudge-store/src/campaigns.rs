//! Campaigns as the store keeps them: the campaign row with its progress, the
//! audience snapshot (one row per recipient) and the per-variant counters.

use nudge_core::campaign::{CampaignStatus, Schedule};
use nudge_core::protocol::CampaignCounter;
use nudge_core::{ContactId, Millis};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// A `nudge_core::campaign::CampaignDefinition` as saved.
    pub definition: Value,
    pub status: CampaignStatus,
    /// Set when sent.
    pub schedule: Option<Schedule>,
    /// Each variant's template and version `(template id, version)`, fixed when sent.
    pub templates: Vec<(i64, i64)>,
    pub start_at: Option<Millis>,
    pub snapshot_done: bool,
    /// The snapshot has stored the recipients up to this contact id.
    pub snapshot_cursor: ContactId,
    pub test_ends_at: Option<Millis>,
    /// The variant the remainder gets, once chosen.
    pub winner: Option<u8>,
    /// How the winner was chosen (the statistics at the time).
    pub decision: Option<Value>,
    /// Recipients in the snapshot (the holdout included).
    pub audience: u64,
    pub held_out: u64,
    pub queued: u64,
    pub skipped: u64,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub sent_at: Option<Millis>,
    pub completed_at: Option<Millis>,
}

impl Campaign {
    /// Recipients whose message is neither queued nor skipped yet (the holdout gets
    /// none, so it is not pending).
    pub fn pending(&self) -> u64 {
        self.audience
            .saturating_sub(self.held_out)
            .saturating_sub(self.queued)
            .saturating_sub(self.skipped)
    }
}

/// A campaign as created or edited (while a draft).
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    pub name: String,
    pub description: String,
    pub definition: Value,
}

/// How a campaign is sent: the schedule, its start, and each variant's template and
/// version `(template id, version)`.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignLaunch {
    pub schedule: Schedule,
    pub start_at: Millis,
    pub templates: Vec<(i64, i64)>,
}

/// A member of a campaign's audience, as the snapshot reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceMember {
    pub contact_id: ContactId,
    /// The contact's time zone from its traits (read only when asked for).
    pub time_zone: Option<String>,
}

/// A page of the audience: its members, and the last contact id read (`None` when
/// there was none: the audience is exhausted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudiencePage {
    pub members: Vec<AudienceMember>,
    pub cursor: Option<ContactId>,
}

/// One recipient stored by the snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewRecipient {
    pub contact_id: ContactId,
    /// `None`: the remainder (waits for the winner).
    pub variant: Option<u8>,
    pub holdout: bool,
    /// When its message is due (not for the holdout).
    pub due_at: Option<Millis>,
}

/// A recipient whose message is due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DueRecipient {
    pub contact_id: ContactId,
    pub variant: Option<u8>,
    pub due_at: Millis,
    /// Still a member of the audience (it may have left since the snapshot).
    pub in_audience: bool,
}

/// Clicks of one link of one campaign variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignLink {
    pub variant: u8,
    pub link: crate::LinkClicks,
}

/// A recipient of a campaign as the snapshot keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    /// `None`: the remainder (waiting for the winner) or the holdout.
    pub variant: Option<u8>,
    /// `pending`, `queued`, `skipped` or `held_out`.
    pub state: String,
    /// Why it was skipped (`frequency_cap`, `left_audience`, ...).
    pub reason: Option<String>,
    /// Its message once queued.
    pub message_id: Option<i64>,
}

/// What became of a due recipient in a round of the campaign engine.
#[derive(Debug, Clone, PartialEq)]
pub enum RecipientOutcome {
    /// Its message goes in the outbox (the message's key names campaign and contact).
    Queue(crate::NewMessage),
    /// Not yet (frequency caps, quiet hours): due again at this time.
    Defer { contact_id: ContactId, until: Millis },
    /// Never: the reason is kept.
    Skip { contact_id: ContactId, reason: String },
}

/// A campaign's counters per variant, and the holdout's conversion counters
/// (converted, conversions, revenue and its squares: see
/// `nudge_core::attribution::counts_for_holdout`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CampaignStats {
    pub variants: BTreeMap<u8, BTreeMap<&'static str, f64>>,
    pub holdout: BTreeMap<&'static str, f64>,
}

impl CampaignStats {
    pub fn get(&self, variant: u8, counter: CampaignCounter) -> f64 {
        self.variants
            .get(&variant)
            .and_then(|c| c.get(counter.as_str()))
            .copied()
            .unwrap_or(0.0)
    }

    /// A counter of the holdout (0 when nothing was counted).
    pub fn holdout(&self, counter: CampaignCounter) -> f64 {
        self.holdout.get(counter.as_str()).copied().unwrap_or(0.0)
    }
}

/// A conversion event to attribute (see [`crate::CampaignStore::record_conversion`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewConversion {
    pub event_id: i64,
    pub contact_id: ContactId,
    pub name: String,
    pub at: Millis,
    pub revenue: Option<f64>,
}

/// A recorded conversion and the message it was attributed to, if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversion {
    pub event_id: i64,
    pub contact_id: ContactId,
    pub name: String,
    pub at: Millis,
    pub revenue: Option<f64>,
    pub message_id: Option<i64>,
    pub touch: Option<nudge_core::attribution::TouchKind>,
    pub origin: Option<nudge_core::protocol::MessageOrigin>,
}
