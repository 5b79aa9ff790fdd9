//! What storage keeps for messages: templates and their versions, the outbox,
//! suppressions and push subscriptions. Content is opaque JSON here; `nudge-messages`
//! gives it meaning.

use nudge_core::protocol::MessageOrigin;
use nudge_core::{ContactId, Millis};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// `email`, `sms`, `push` or `webhook`.
    pub channel: String,
    /// The current version; sends use it unless told otherwise.
    pub version: i64,
    /// Transactional messages (receipts, password resets) go to contacts who
    /// unsubscribed from marketing; marketing ones never do.
    pub transactional: bool,
    /// The subscription topic a marketing message belongs to (`newsletter`, ...);
    /// a contact unsubscribed from it is not sent the message.
    pub topic: Option<String>,
    /// The current version's content.
    pub content: Value,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewTemplate {
    pub name: String,
    pub description: String,
    pub channel: String,
    pub transactional: bool,
    pub topic: Option<String>,
    pub content: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateVersion {
    pub template_id: i64,
    pub version: i64,
    pub content: Value,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Stored, waiting for (another) delivery attempt.
    Queued,
    /// Accepted by the channel (the SMTP server, the SMS or push service).
    Sent,
    /// Confirmed delivered by the provider.
    Delivered,
    /// Will not be delivered: a permanent error, or too many attempts.
    Failed,
    /// Rejected by the recipient's server; the address is suppressed.
    Bounced,
    /// Not sent: the contact unsubscribed, has no address, or the address is suppressed.
    Suppressed,
}

impl MessageState {
    pub const ALL: [MessageState; 6] = [
        MessageState::Queued,
        MessageState::Sent,
        MessageState::Delivered,
        MessageState::Failed,
        MessageState::Bounced,
        MessageState::Suppressed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Failed => "failed",
            MessageState::Bounced => "bounced",
            MessageState::Suppressed => "suppressed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
    /// The timeline event recorded when a message reaches this state.
    pub fn event_name(self) -> &'static str {
        match self {
            MessageState::Queued => "Message Queued",
            MessageState::Sent => "Message Sent",
            MessageState::Delivered => "Message Delivered",
            MessageState::Failed => "Message Failed",
            MessageState::Bounced => "Message Bounced",
            MessageState::Suppressed => "Message Suppressed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: i64,
    pub idempotency_key: String,
    pub contact_id: ContactId,
    pub template_id: i64,
    pub template_version: i64,
    pub channel: String,
    pub transactional: bool,
    /// What the sender passed: `{"event": {...}, "data": {...}}`.
    pub data: Value,
    pub state: MessageState,
    pub attempts: i64,
    /// When the next delivery attempt is due (`None` once the message is final).
    pub next_attempt_at: Option<Millis>,
    /// The address it went to (email address, phone number, URL).
    pub recipient: Option<String>,
    pub error: Option<String>,
    /// What was sent (subject, links; the whole message for the capture channel).
    pub rendered: Option<Value>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub sent_at: Option<Millis>,
    /// The provider's id for the message (SMS sid, ...), matched by delivery receipts.
    pub provider_id: Option<String>,
    /// What queued it (a journey step); `None` for the send API.
    pub origin: Option<MessageOrigin>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub idempotency_key: String,
    pub contact_id: ContactId,
    pub template_id: i64,
    pub template_version: i64,
    pub channel: String,
    pub transactional: bool,
    /// What the template renders with: `{"event": {...}, "data": {...}}`.
    pub data: Value,
    /// What queues it (a journey step); `None` for the send API.
    pub origin: Option<MessageOrigin>,
}

/// The outcome of a delivery attempt, recorded by [`crate::MessageStore::update_messages`].
#[derive(Debug, Clone, PartialEq)]
pub struct MessageUpdate {
    pub id: i64,
    pub state: MessageState,
    /// For `Queued`: when to try again.
    pub retry_at: Option<Millis>,
    pub recipient: Option<String>,
    pub error: Option<String>,
    pub rendered: Option<Value>,
    /// Put the recipient on the suppression list (hard bounce, complaint).
    pub suppress: Option<String>,
    /// The provider's id for the message, when it gave one.
    pub provider_id: Option<String>,
}

/// What became of a recipient's answer through a message's link
/// (`MessageStore::answer_message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// No such message.
    NoMessage,
    /// The consent change and the event are recorded.
    Recorded,
    /// An event with this key was recorded before; the consent is as it says.
    Repeated,
    /// A confirmation of a subscription already confirmed: nothing changed.
    AlreadyConfirmed,
    /// A confirmation of a subscription no longer (or never) waiting for one:
    /// nothing changed.
    NotPending,
}

/// A provider's word on a message after it was sent (a delivery receipt): see
/// [`crate::MessageStore::record_receipt`].
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub channel: String,
    pub provider_id: String,
    /// `Delivered`, `Bounced` (suppresses the recipient) or `Failed`.
    pub state: MessageState,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageQuery {
    pub contact_id: Option<ContactId>,
    pub template_id: Option<i64>,
    pub state: Option<MessageState>,
    /// `email`, `sms`, `push` or `webhook`.
    pub channel: Option<String>,
    /// Messages a journey's send steps queued.
    pub journey_id: Option<i64>,
    /// Newest first; continue below this id.
    pub before: Option<i64>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppression {
    pub channel: String,
    pub address: String,
    /// `hard_bounce`, `complaint`, `manual`, ...
    pub reason: String,
    pub created_at: Millis,
}

/// Whether a delivery receipt may move a message from `current` to `to`: only
/// messages that left (`sent`) become `delivered`; a bounce or failure can still
/// follow a delivery report. Anything else (a late or repeated receipt) changes nothing.
pub fn receipt_applies(current: MessageState, to: MessageState) -> bool {
    matches!(
        (current, to),
        (MessageState::Sent, MessageState::Delivered)
            | (
                MessageState::Sent | MessageState::Delivered,
                MessageState::Bounced | MessageState::Failed
            )
    )
}

/// A browser's Web Push subscription (`PushSubscription.toJSON()` in the browser):
/// where to send and the keys to encrypt for. One per endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushSubscription {
    pub id: i64,
    pub contact_id: ContactId,
    /// The push service URL of this browser.
    pub endpoint: String,
    /// The browser's P-256 public key (base64url, 65 bytes uncompressed).
    pub p256dh: String,
    /// The browser's auth secret (base64url, 16 bytes).
    pub auth: String,
    pub user_agent: Option<String>,
    pub created_at: Millis,
    /// When it was last saved (a browser re-subscribing updates it).
    pub updated_at: Millis,
    /// When the push service last accepted a message for it.
    pub last_used_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewPushSubscription {
    pub contact_id: ContactId,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub user_agent: Option<String>,
}

/// A message's [`MessageOrigin`] as the outbox stores it, in columns of its own
/// (`origin_journey_id`, `origin_run_id`, `origin_step`, `origin_visit`;
/// `origin_campaign_id`, `origin_variant`): the one codec both backends use.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct OriginColumns {
    pub journey_id: Option<i64>,
    pub run_id: Option<i64>,
    pub step: Option<String>,
    pub visit: Option<i32>,
    pub campaign_id: Option<i64>,
    pub variant: Option<i32>,
}

impl OriginColumns {
    /// The columns, in the order [`OriginColumns::read`] reads them.
    pub(crate) const NAMES: &'static str =
        "origin_journey_id, origin_run_id, origin_step, origin_visit, origin_campaign_id, origin_variant";

    pub(crate) fn of(origin: Option<&MessageOrigin>) -> Self {
        match origin {
            None => Self::default(),
            Some(MessageOrigin::Journey {
                journey_id,
                run_id,
                step,
                visit,
            }) => Self {
                journey_id: Some(*journey_id),
                run_id: Some(*run_id),
                step: Some(step.clone()),
                visit: Some(i32::try_from(*visit).unwrap_or(i32::MAX)),
                ..Self::default()
            },
            Some(MessageOrigin::Campaign { campaign_id, variant }) => Self {
                campaign_id: Some(*campaign_id),
                variant: Some(i32::from(*variant)),
                ..Self::default()
            },
        }
    }

    /// The columns [`OriginColumns::NAMES`] from column `at` of a row on.
    pub(crate) fn read(r: &crate::sql::SqlRow, at: usize) -> crate::Result<Self> {
        let int = |v: Option<i64>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        Ok(Self {
            journey_id: r.opt_i64(at)?,
            run_id: r.opt_i64(at + 1)?,
            step: r.opt_string(at + 2)?,
            visit: int(r.opt_i64(at + 3)?),
            campaign_id: r.opt_i64(at + 4)?,
            variant: int(r.opt_i64(at + 5)?),
        })
    }

    pub(crate) fn origin(self) -> Option<MessageOrigin> {
        if let Some(campaign_id) = self.campaign_id {
            return Some(MessageOrigin::Campaign {
                campaign_id,
                variant: u8::try_from(self.variant?).ok()?,
            });
        }
        Some(MessageOrigin::Journey {
            journey_id: self.journey_id?,
            run_id: self.run_id?,
            step: self.step?,
            visit: u32::try_from(self.visit?).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_columns_round_trip() {
        let o = MessageOrigin::Journey {
            journey_id: 3,
            run_id: 9,
            step: "mail".into(),
            visit: 2,
        };
        assert_eq!(OriginColumns::of(Some(&o)).origin(), Some(o));
        let c = MessageOrigin::Campaign {
            campaign_id: 4,
            variant: 1,
        };
        assert_eq!(OriginColumns::of(Some(&c)).origin(), Some(c));
        assert_eq!(OriginColumns::of(None).origin(), None);
    }
}

/// Clicks of one link (of a campaign variant's or a journey step's messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkClicks {
    pub url: String,
    pub clicks: u64,
    /// Messages that clicked it at least once.
    pub unique_clicks: u64,
}
