//! The protocols between Nudge's crates, as types: the idempotency keys Nudge makes
//! for what it records and sends, where a queued message came from, the events Nudge
//! writes on a contact's timeline and the names code matches on.
//!
//! Architecture invariant: a key, an origin or an event name that one crate writes
//! and another reads is built (and, where it must be, parsed) here and nowhere else.
//! The store reads typed fields (a message's [`MessageOrigin`], a timeline event's
//! [`StepCount`]); it never parses a key or digs in JSON properties to decide what to
//! count.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The names of the events Nudge itself records on contacts' timelines. Code that
/// matches on an event name uses these constants.
pub mod event_names {
    pub const JOURNEY_STEP_REACHED: &str = "Journey Step Reached";
    pub const JOURNEY_GOAL_REACHED: &str = "Journey Goal Reached";
    pub const JOURNEY_COMPLETED: &str = "Journey Completed";
    pub const JOURNEY_EXITED: &str = "Journey Exited";
    /// A send step that queued nothing (no such template, wrong channel).
    pub const JOURNEY_MESSAGE_SKIPPED: &str = "Journey Message Skipped";
    /// An `update_contact` step changed traits (properties: `run_id`, `traits`).
    pub const CONTACT_UPDATED: &str = "Contact Updated";

    pub const MESSAGE_QUEUED: &str = "Message Queued";
    pub const MESSAGE_SENT: &str = "Message Sent";
    pub const MESSAGE_DELIVERED: &str = "Message Delivered";
    pub const MESSAGE_FAILED: &str = "Message Failed";
    pub const MESSAGE_BOUNCED: &str = "Message Bounced";
    pub const MESSAGE_SUPPRESSED: &str = "Message Suppressed";
    pub const EMAIL_OPENED: &str = "Email Opened";
    pub const EMAIL_LINK_CLICKED: &str = "Email Link Clicked";
    pub const UNSUBSCRIBED: &str = "Unsubscribed";
    /// The recipient reported the message as spam (Segment's e-mail spec name).
    pub const EMAIL_MARKED_AS_SPAM: &str = "Email Marked as Spam";
    /// A double opt-in confirmed through the link of its confirmation message.
    pub const SUBSCRIPTION_CONFIRMED: &str = "Subscription Confirmed";

    pub const SEGMENT_ENTERED: &str = "Segment Entered";
    pub const SEGMENT_EXITED: &str = "Segment Exited";

    /// A form submission (`form_id`, or `form` / `form_name`, names the form).
    pub const FORM_SUBMITTED: &str = "Form Submitted";

    /// A purchase, by Segment's e-commerce spec: what the lifetime-value models
    /// (`crate::predict`) count, its value read by `crate::journey::revenue_of`.
    pub const ORDER_COMPLETED: &str = "Order Completed";
    /// A product page seen (`product_id`, `name`, `price`, `category`, `url`,
    /// `image_url`): what product recommendations (`crate::recommend`) learn from.
    pub const PRODUCT_VIEWED: &str = "Product Viewed";
    /// A product put in the cart (the same properties as `PRODUCT_VIEWED`).
    pub const PRODUCT_ADDED: &str = "Product Added";

    /// A push notification opened, by Segment's mobile spec: an engagement the
    /// send-time profile counts (`crate::send_time`).
    pub const PUSH_NOTIFICATION_TAPPED: &str = "Push Notification Tapped";

    /// A contact's score changed (`score`, `previous`, `value`, `rules`, `reason`).
    pub const LEAD_SCORE_CHANGED: &str = "Lead Score Changed";
    /// A contact's score crossed into another stage (`score`, `from`, `to`).
    pub const LEAD_STAGE_CHANGED: &str = "Lead Stage Changed";

    /// The events that report what became of a message (a journey's message branch
    /// listens for them).
    pub const MESSAGE_OUTCOMES: [&str; 7] = [
        MESSAGE_SENT,
        MESSAGE_DELIVERED,
        EMAIL_OPENED,
        EMAIL_LINK_CLICKED,
        MESSAGE_BOUNCED,
        MESSAGE_FAILED,
        UNSUBSCRIBED,
    ];
}

/// An idempotency key Nudge makes: recording or sending twice under one key stores
/// once. Keys of journey runs are derived from run, step and visit, so a transition
/// computed again after a crash makes the same keys. Stored as text (the `message_id`
/// of timeline events, the outbox's unique key, the key of a run's timer); the text
/// forms are stable across versions because stored rows keep them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

/// What a key made by [`IdempotencyKey`] names, read back by [`IdempotencyKey::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// A step's action on one visit: its message, webhook or contact update.
    Step { run: i64, step: String, visit: u32 },
    /// The run reached a step (its `Journey Step Reached` event).
    Reached { run: i64, step: String, visit: u32 },
    /// The `n`th timer of a run, set at a step.
    Timer { run: i64, step: String, visit: u32, n: u32 },
    /// A send step that queued nothing.
    Skipped { run: i64, step: String, visit: u32 },
    /// The run's end.
    Finished { run: i64 },
    /// A message reached a state (its timeline event).
    MessageState { message: i64, state: String, attempt: i64 },
    /// The run's first timer, which starts it.
    Start,
    /// A key Nudge did not make (a caller's).
    Other,
}

impl IdempotencyKey {
    /// The key of a run's `start` timer.
    pub const START: &'static str = "start";

    /// A step's action on a visit: `run-7-step-remind-1`.
    pub fn step(run: i64, step: &str, visit: u32) -> Self {
        Self(format!("run-{run}-step-{step}-{visit}"))
    }
    /// The `Journey Step Reached` event of a visit.
    pub fn reached(run: i64, step: &str, visit: u32) -> Self {
        Self(format!("run-{run}-step-{step}-{visit}-reached"))
    }
    /// The `n`th timer of a run (set at `step`, on `visit`).
    pub fn timer(run: i64, step: &str, visit: u32, n: u32) -> Self {
        Self(format!("run-{run}-step-{step}-{visit}-timer-{n}"))
    }
    /// A send step of a visit that queued nothing (each visit records its own).
    pub fn skipped(run: i64, step: &str, visit: u32) -> Self {
        Self(format!("run-{run}-step-{step}-{visit}-skipped"))
    }
    /// The run's end.
    pub fn finished(run: i64) -> Self {
        Self(format!("run-{run}-finished"))
    }
    /// The run's start timer.
    pub fn start() -> Self {
        Self(Self::START.to_string())
    }
    /// The timeline event of a message reaching `state` on `attempt`.
    pub fn message_state(message: i64, state: &str, attempt: i64) -> Self {
        Self(format!("message-{message}-{state}-{attempt}"))
    }
    /// A contact's join (`entered`) or leave of a segment, recorded by the segment
    /// engine: unique per change (`seq` within a commit, `unique` within the process).
    pub fn segment_change(segment: i64, contact: i64, entered: bool, at: i64, seq: u64, unique: u64) -> Self {
        let way = if entered { "in" } else { "out" };
        Self(format!("segment-{segment}-{contact}-{way}-{at}-{seq}-{unique}"))
    }
    /// A contact's score change (`Lead Score Changed`, or with `stage` its `Lead Stage
    /// Changed`): unique per change (`unique` within the process).
    pub fn score_change(contact: i64, score: &str, stage: bool, at: i64, unique: u64) -> Self {
        let what = if stage { "stage" } else { "value" };
        Self(format!("score-{contact}-{score}-{what}-{at}-{unique}"))
    }
    /// A campaign's one message to a contact (the remainder and the test share are
    /// disjoint, so one key per campaign and contact is one message per phase).
    pub fn campaign(campaign: i64, contact: i64) -> Self {
        Self(format!("campaign-{campaign}-contact-{contact}"))
    }
    /// The `Form Submitted` event of a stored submission.
    pub fn form_submission(submission: i64) -> Self {
        Self(format!("form-submission-{submission}"))
    }
    /// The double opt-in confirmation a submission queued for a subscription.
    pub fn form_confirmation(submission: i64, subscription: &str) -> Self {
        Self(format!("form-submission-{submission}-confirm-{subscription}"))
    }
    /// A key given by a caller (an API request's), kept as it is.
    pub fn external(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// What the key names. Step ids may contain `-`, so the suffixes Nudge appends
    /// (`-reached`, `-timer-N`, `-skipped`) are read first; a step id that itself ends
    /// like one of them reads as that kind (no code decides anything from a parsed
    /// key: origins travel as [`MessageOrigin`]; this is for inspection and upgrades).
    pub fn parse(key: &str) -> KeyKind {
        if key == Self::START {
            return KeyKind::Start;
        }
        if let Some(rest) = key.strip_prefix("message-") {
            let mut parts = rest.splitn(2, '-');
            if let (Some(id), Some(rest)) = (parts.next(), parts.next())
                && let Ok(message) = id.parse()
                && let Some((state, attempt)) = rest.rsplit_once('-')
                && let Ok(attempt) = attempt.parse()
            {
                return KeyKind::MessageState {
                    message,
                    state: state.to_string(),
                    attempt,
                };
            }
            return KeyKind::Other;
        }
        let Some(rest) = key.strip_prefix("run-") else {
            return KeyKind::Other;
        };
        if let Some(run) = rest.strip_suffix("-finished").and_then(|r| r.parse().ok()) {
            return KeyKind::Finished { run };
        }
        let Some((run, rest)) = rest.split_once("-step-") else {
            return KeyKind::Other;
        };
        let Ok(run) = run.parse::<i64>() else {
            return KeyKind::Other;
        };
        let step_visit = |s: &str| -> Option<(String, u32)> {
            let (step, visit) = s.rsplit_once('-')?;
            Some((step.to_string(), visit.parse().ok()?)).filter(|(step, _)| !step.is_empty())
        };
        if let Some((step, visit)) = rest.strip_suffix("-reached").and_then(step_visit) {
            return KeyKind::Reached { run, step, visit };
        }
        if let Some((step, visit)) = rest.strip_suffix("-skipped").and_then(step_visit) {
            return KeyKind::Skipped { run, step, visit };
        }
        if let Some((head, n)) = rest.rsplit_once("-timer-")
            && let Ok(n) = n.parse()
            && let Some((step, visit)) = step_visit(head)
        {
            return KeyKind::Timer { run, step, visit, n };
        }
        match step_visit(rest) {
            Some((step, visit)) => KeyKind::Step { run, step, visit },
            None => KeyKind::Other,
        }
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}

/// What queued a message: stored in columns of the outbox row (not in the data the
/// template renders), so the store counts a journey step's sends, opens and clicks
/// and the engine hands a message's outcome to the run that sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageOrigin {
    /// A journey's send or webhook step, on one visit of one run.
    Journey {
        journey_id: i64,
        run_id: i64,
        step: String,
        visit: u32,
    },
    /// A campaign's message of one variant (index into its `variants`).
    Campaign { campaign_id: i64, variant: u8 },
}

impl MessageOrigin {
    pub fn journey_id(&self) -> Option<i64> {
        match self {
            MessageOrigin::Journey { journey_id, .. } => Some(*journey_id),
            MessageOrigin::Campaign { .. } => None,
        }
    }
    pub fn run_id(&self) -> Option<i64> {
        match self {
            MessageOrigin::Journey { run_id, .. } => Some(*run_id),
            MessageOrigin::Campaign { .. } => None,
        }
    }
    /// The journey and step whose statistics the message counts toward.
    pub fn journey_step(&self) -> Option<(i64, &str)> {
        match self {
            MessageOrigin::Journey { journey_id, step, .. } => Some((*journey_id, step)),
            MessageOrigin::Campaign { .. } => None,
        }
    }
    /// The campaign and variant whose statistics the message counts toward.
    pub fn campaign_variant(&self) -> Option<(i64, u8)> {
        match self {
            MessageOrigin::Campaign { campaign_id, variant } => Some((*campaign_id, *variant)),
            MessageOrigin::Journey { .. } => None,
        }
    }
}

/// Something that happened to a sent message, reported by its recipient's actions
/// (the tracking endpoints) or its provider (a complaint): recorded on the
/// contact's timeline as [`MessageEvent::name`] and counted toward what sent the
/// message (see `MessageStore::record_message_event`). The store counts from these
/// fields, never from the properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageEvent {
    /// The tracking pixel was fetched.
    Opened,
    /// A tracked link was followed: its position among the message's links and the
    /// address it leads to.
    Clicked { link: u32, url: String },
    /// The recipient unsubscribed through the message from `subscription` (a
    /// channel, or `channel:topic`), by the one-click header or the page.
    Unsubscribed { subscription: String, one_click: bool },
    /// The recipient reported the message as spam (a provider's complaint).
    Complained,
    /// A double opt-in to `subscription` confirmed through the message's link.
    SubscriptionConfirmed { subscription: String },
}

impl MessageEvent {
    /// The timeline event's name (one of [`event_names`]).
    pub fn name(&self) -> &'static str {
        match self {
            MessageEvent::Opened => event_names::EMAIL_OPENED,
            MessageEvent::Clicked { .. } => event_names::EMAIL_LINK_CLICKED,
            MessageEvent::Unsubscribed { .. } => event_names::UNSUBSCRIBED,
            MessageEvent::Complained => event_names::EMAIL_MARKED_AS_SPAM,
            MessageEvent::SubscriptionConfirmed { .. } => event_names::SUBSCRIPTION_CONFIRMED,
        }
    }

    /// The timeline event's properties: the message, its template and channel, and
    /// what the event adds (the link's `url` and `link_index`, the `subscription`).
    pub fn properties(&self, message: i64, template_id: Option<i64>, channel: &str) -> Value {
        let mut p = serde_json::json!({"message_id": message, "template_id": template_id, "channel": channel});
        match self {
            MessageEvent::Clicked { link, url } => {
                p["url"] = Value::from(url.as_str());
                p["link_index"] = Value::from(*link);
            }
            MessageEvent::Unsubscribed {
                subscription,
                one_click,
            } => {
                p["subscription"] = Value::from(subscription.as_str());
                p["one_click"] = Value::from(*one_click);
            }
            MessageEvent::SubscriptionConfirmed { subscription } => {
                p["subscription"] = Value::from(subscription.as_str());
            }
            MessageEvent::Opened | MessageEvent::Complained => {}
        }
        p
    }

    /// The journey step counter it moves.
    pub fn step_counter(&self) -> Option<StepCounter> {
        match self {
            MessageEvent::Opened => Some(StepCounter::Opened),
            MessageEvent::Clicked { .. } => Some(StepCounter::Clicked),
            MessageEvent::Unsubscribed { .. } => Some(StepCounter::Unsubscribed),
            MessageEvent::Complained => Some(StepCounter::Complained),
            MessageEvent::SubscriptionConfirmed { .. } => None,
        }
    }

    /// What the event does to the contact's consent, given the current state of the
    /// subscription it names (`None`: never set). An unsubscribe always sets
    /// `unsubscribed`; a confirmation subscribes only a pending subscription (a
    /// confirmed one stays as it is, and one unsubscribed since or never asked for is
    /// not confirmed by an old link). Other events leave consent alone.
    pub fn consent(&self, current: Option<crate::Subscription>) -> Consent {
        use crate::Subscription as S;
        match self {
            MessageEvent::Unsubscribed { subscription, .. } => Consent::Set {
                subscription: subscription.clone(),
                state: S::Unsubscribed,
            },
            MessageEvent::SubscriptionConfirmed { subscription } => match current {
                Some(S::Pending) => Consent::Set {
                    subscription: subscription.clone(),
                    state: S::Subscribed,
                },
                Some(S::Subscribed) => Consent::AlreadyConfirmed,
                Some(S::Unsubscribed) | None => Consent::NotPending,
            },
            MessageEvent::Opened | MessageEvent::Clicked { .. } | MessageEvent::Complained => Consent::Unchanged,
        }
    }

    /// The subscription whose state [`MessageEvent::consent`] reads.
    pub fn subscription(&self) -> Option<&str> {
        match self {
            MessageEvent::Unsubscribed { subscription, .. } | MessageEvent::SubscriptionConfirmed { subscription } => {
                Some(subscription)
            }
            MessageEvent::Opened | MessageEvent::Clicked { .. } | MessageEvent::Complained => None,
        }
    }

    /// The campaign (and report) counter it moves.
    pub fn campaign_counter(&self) -> Option<CampaignCounter> {
        match self {
            MessageEvent::Opened => Some(CampaignCounter::Opened),
            MessageEvent::Clicked { .. } => Some(CampaignCounter::Clicked),
            MessageEvent::Unsubscribed { .. } => Some(CampaignCounter::Unsubscribed),
            MessageEvent::Complained => Some(CampaignCounter::Complained),
            MessageEvent::SubscriptionConfirmed { .. } => None,
        }
    }
}

/// What a [`MessageEvent`] does to the contact's consent ([`MessageEvent::consent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    /// Nothing: the event is about engagement.
    Unchanged,
    /// The subscription takes this state, in the event's transaction.
    Set {
        subscription: String,
        state: crate::Subscription,
    },
    /// A confirmation of a subscription already confirmed: nothing to record.
    AlreadyConfirmed,
    /// A confirmation of a subscription that is not waiting for one (unsubscribed
    /// since, or never asked for): refused, nothing recorded.
    NotPending,
}

/// An event Nudge records on a contact's timeline (idempotent on its key).
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEvent {
    /// One of [`event_names`].
    pub name: String,
    pub properties: Value,
    pub key: IdempotencyKey,
    /// The journey statistics the event counts toward once stored.
    pub counts: Option<StepCount>,
}

/// What a journey event counts: a step reached, and the exit the run left its
/// previous step by. Set by the journey core, read by the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCount {
    pub journey_id: i64,
    /// The step reached (`Journey Step Reached`).
    pub reached: Option<String>,
    /// `(step, exit)`: the step left and by which exit (`next`, `yes`, `cases[0].next`).
    pub left: Option<(String, String)>,
}

/// The counters a campaign keeps per variant (`campaign_stats`), moved as its
/// messages are queued, change state, are opened and clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CampaignCounter {
    /// Messages queued (one per recipient).
    Recipients,
    Sent,
    Delivered,
    Bounced,
    Failed,
    /// Opens, every one.
    Opened,
    /// Messages opened at least once.
    UniqueOpened,
    Clicked,
    /// Messages clicked at least once.
    UniqueClicked,
    /// Messages with at least one conversion attributed (converted recipients).
    Converted,
    /// Conversions attributed, every one.
    Conversions,
    /// Revenue attributed.
    Revenue,
    /// The sum over messages of the square of each one's attributed revenue (for the
    /// variance of revenue per recipient).
    RevenueSquares,
    /// Unsubscribes through the messages.
    Unsubscribed,
    /// Spam complaints about the messages.
    Complained,
}

impl CampaignCounter {
    pub const ALL: [CampaignCounter; 15] = [
        CampaignCounter::Recipients,
        CampaignCounter::Sent,
        CampaignCounter::Delivered,
        CampaignCounter::Bounced,
        CampaignCounter::Failed,
        CampaignCounter::Opened,
        CampaignCounter::UniqueOpened,
        CampaignCounter::Clicked,
        CampaignCounter::UniqueClicked,
        CampaignCounter::Converted,
        CampaignCounter::Conversions,
        CampaignCounter::Revenue,
        CampaignCounter::RevenueSquares,
        CampaignCounter::Unsubscribed,
        CampaignCounter::Complained,
    ];

    /// The name it is stored under.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignCounter::Recipients => "recipients",
            CampaignCounter::Sent => "sent",
            CampaignCounter::Delivered => "delivered",
            CampaignCounter::Bounced => "bounced",
            CampaignCounter::Failed => "failed",
            CampaignCounter::Opened => "opened",
            CampaignCounter::UniqueOpened => "unique_opened",
            CampaignCounter::Clicked => "clicked",
            CampaignCounter::UniqueClicked => "unique_clicked",
            CampaignCounter::Converted => "converted",
            CampaignCounter::Conversions => "conversions",
            CampaignCounter::Revenue => "revenue",
            CampaignCounter::RevenueSquares => "revenue_squares",
            CampaignCounter::Unsubscribed => "unsubscribed",
            CampaignCounter::Complained => "complained",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The counters a journey step keeps (`journey_step_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepCounter {
    Reached,
    Sent,
    Opened,
    Clicked,
    /// Messages of the step opened at least once.
    UniqueOpened,
    /// Messages of the step clicked at least once.
    UniqueClicked,
    /// Messages of the step with at least one conversion attributed.
    Converted,
    /// Conversions attributed to the step's messages.
    Conversions,
    /// Unsubscribes through the step's messages.
    Unsubscribed,
    /// Spam complaints about the step's messages.
    Complained,
}

impl StepCounter {
    /// The column that holds the counter.
    pub fn column(self) -> &'static str {
        match self {
            StepCounter::Reached => "reached",
            StepCounter::Sent => "sent",
            StepCounter::Opened => "opened",
            StepCounter::Clicked => "clicked",
            StepCounter::UniqueOpened => "unique_opened",
            StepCounter::UniqueClicked => "unique_clicked",
            StepCounter::Converted => "converted",
            StepCounter::Conversions => "conversions",
            StepCounter::Unsubscribed => "unsubscribed",
            StepCounter::Complained => "complained",
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_a_message_event_does_to_consent() {
        use super::{Consent, MessageEvent};
        use crate::Subscription as S;
        let unsubscribe = MessageEvent::Unsubscribed {
            subscription: "email:news".into(),
            one_click: true,
        };
        for current in [None, Some(S::Subscribed), Some(S::Pending), Some(S::Unsubscribed)] {
            assert_eq!(
                unsubscribe.consent(current),
                Consent::Set {
                    subscription: "email:news".into(),
                    state: S::Unsubscribed
                }
            );
        }
        let confirm = MessageEvent::SubscriptionConfirmed {
            subscription: "email".into(),
        };
        assert_eq!(
            confirm.consent(Some(S::Pending)),
            Consent::Set {
                subscription: "email".into(),
                state: S::Subscribed
            }
        );
        assert_eq!(confirm.consent(Some(S::Subscribed)), Consent::AlreadyConfirmed);
        assert_eq!(confirm.consent(Some(S::Unsubscribed)), Consent::NotPending);
        assert_eq!(confirm.consent(None), Consent::NotPending);
        assert_eq!(confirm.subscription(), Some("email"));
        for e in [MessageEvent::Opened, MessageEvent::Complained] {
            assert_eq!(e.consent(Some(S::Pending)), Consent::Unchanged);
            assert_eq!(e.subscription(), None);
        }
    }

    use super::*;

    #[test]
    fn keys_keep_their_stored_form() {
        assert_eq!(IdempotencyKey::step(7, "remind", 1).as_str(), "run-7-step-remind-1");
        assert_eq!(
            IdempotencyKey::reached(7, "remind", 1).as_str(),
            "run-7-step-remind-1-reached"
        );
        assert_eq!(
            IdempotencyKey::timer(7, "wait", 2, 3).as_str(),
            "run-7-step-wait-2-timer-3"
        );
        assert_eq!(IdempotencyKey::finished(7).as_str(), "run-7-finished");
        assert_eq!(IdempotencyKey::message_state(5, "sent", 1).as_str(), "message-5-sent-1");
        assert_eq!(IdempotencyKey::campaign(3, 9).as_str(), "campaign-3-contact-9");
    }

    #[test]
    fn keys_parse_back() {
        let cases = [
            (
                IdempotencyKey::step(7, "remind-1", 2),
                KeyKind::Step {
                    run: 7,
                    step: "remind-1".into(),
                    visit: 2,
                },
            ),
            (
                IdempotencyKey::reached(7, "a.b", 1),
                KeyKind::Reached {
                    run: 7,
                    step: "a.b".into(),
                    visit: 1,
                },
            ),
            (
                IdempotencyKey::timer(9, "w-2", 3, 12),
                KeyKind::Timer {
                    run: 9,
                    step: "w-2".into(),
                    visit: 3,
                    n: 12,
                },
            ),
            (
                IdempotencyKey::skipped(9, "send", 4),
                KeyKind::Skipped {
                    run: 9,
                    step: "send".into(),
                    visit: 4,
                },
            ),
            (IdempotencyKey::finished(11), KeyKind::Finished { run: 11 }),
            (IdempotencyKey::start(), KeyKind::Start),
            (
                IdempotencyKey::message_state(5, "sent", 0),
                KeyKind::MessageState {
                    message: 5,
                    state: "sent".into(),
                    attempt: 0,
                },
            ),
            (IdempotencyKey::external("order-42"), KeyKind::Other),
            (IdempotencyKey::external("run-x-step-a-1"), KeyKind::Other),
            (IdempotencyKey::external("run-1-step--1"), KeyKind::Other),
        ];
        for (key, kind) in cases {
            assert_eq!(IdempotencyKey::parse(key.as_str()), kind, "{key}");
        }
    }

    #[test]
    fn skip_keys_differ_per_visit() {
        assert_ne!(
            IdempotencyKey::skipped(1, "hook", 1),
            IdempotencyKey::skipped(1, "hook", 2)
        );
    }

    #[test]
    fn origin_serialises_with_its_kind() {
        let o = MessageOrigin::Journey {
            journey_id: 1,
            run_id: 2,
            step: "s".into(),
            visit: 3,
        };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["kind"], "journey");
        assert_eq!(serde_json::from_value::<MessageOrigin>(v).unwrap(), o);
        assert_eq!(o.journey_step(), Some((1, "s")));
    }
}
