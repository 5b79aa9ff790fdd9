use nudge_core::{ContactId, Millis, Subscription};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestOutcome {
    Stored,
    /// A message with this `message_id` was stored before: nothing changed.
    Duplicate,
}

/// A stored event as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: i64,
    pub message_id: String,
    pub contact_id: ContactId,
    #[serde(rename = "type")]
    pub kind: String,
    /// Event name for `track`, page/screen name, else none.
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// `properties` of track/page/screen, `traits` of identify/group.
    pub properties: Map<String, Value>,
    pub context: Map<String, Value>,
    /// `integrations`, `sentAt`, `originalTimestamp`, `previousId`, `groupId`.
    pub extra: Map<String, Value>,
    pub timestamp: Millis,
    pub received_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    UserId(String),
    AnonymousId(String),
    Email(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactQuery {
    /// Exact email (compared lower-cased).
    pub email: Option<String>,
    /// Exact user id (primary or alias).
    pub user_id: Option<String>,
    /// A search term: case-insensitive, anywhere in the e-mail address, user id, phone
    /// or a name when it has 3 characters or more, at the start of one of their words
    /// when shorter (the rule: [`crate::search`]). Found through an index.
    pub search: Option<String>,
    /// Trait equality filters; all must match.
    pub traits: Vec<(String, Value)>,
    /// Return contacts with an id greater than this.
    pub after: Option<ContactId>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Return events older than this position (from a previous page's cursor).
    pub before: Option<EventCursor>,
    pub limit: usize,
}

/// A position in a timeline: events are ordered by (timestamp, id), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    pub timestamp: Millis,
    pub id: i64,
}

impl EventCursor {
    pub fn encode(&self) -> String {
        format!("{}_{}", self.timestamp, self.id)
    }
    pub fn decode(s: &str) -> Option<Self> {
        let (t, i) = s.split_once('_')?;
        Some(Self {
            timestamp: t.parse().ok()?,
            id: i.parse().ok()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more items follow.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ContactPatch {
    /// Merged like `identify`: `null` removes a trait.
    #[serde(default)]
    pub traits: Map<String, Value>,
    #[serde(default)]
    pub subscriptions: BTreeMap<String, Subscription>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactImport {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub traits: Map<String, Value>,
    pub subscriptions: BTreeMap<String, Subscription>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Secret: full access to the admin API.
    Admin,
    /// Public: may only send tracking messages.
    Write,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Admin => "admin",
            KeyKind::Write => "write",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(KeyKind::Admin),
            "write" => Some(KeyKind::Write),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub kind: KeyKind,
    pub name: String,
    /// SHA-256 of the secret, hex. The secret itself is never stored.
    pub hash: String,
    /// The first characters of the secret, to recognise it in lists.
    pub prefix: String,
    /// See [`ApiKey::browser`].
    pub browser: BrowserAccess,
}

/// How a write key may be used from web pages (Segment's analytics.js): the origins
/// whose pages may send with it (`*`: any; none: no browser may), and whether it is
/// restricted to the browser endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BrowserAccess {
    pub allowed_origins: Vec<String>,
    pub browser_only: bool,
}

impl BrowserAccess {
    /// Whether a page of `origin` (`scheme://host[:port]`) may send with the key.
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub kind: KeyKind,
    pub name: String,
    pub prefix: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    pub browser: BrowserAccess,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub contacts: u64,
    pub events: u64,
}

/// A stored segment definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub definition: nudge_core::segment::Condition,
    /// Bumped on every definition change.
    pub version: i64,
    /// Members of an administrative segment (test contacts, employees) are left out
    /// of every other segment, and so of what is built on segments.
    pub administrative: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Segment {
    /// The definition both evaluators use: see [`Condition::excluding`].
    pub fn effective_definition(&self, all: &[Segment]) -> nudge_core::segment::Condition {
        if self.administrative {
            return self.definition.clone();
        }
        self.definition.excluding(&administrative_ids(all))
    }
}

/// The ids of the administrative segments among `all`.
pub fn administrative_ids(all: &[Segment]) -> Vec<i64> {
    all.iter().filter(|s| s.administrative).map(|s| s.id).collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewSegment {
    pub name: String,
    pub description: String,
    pub definition: nudge_core::segment::Condition,
    pub administrative: bool,
}

/// One stay of a contact in a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub segment_id: i64,
    pub contact_id: ContactId,
    pub entered_at: Millis,
    pub exited_at: Option<Millis>,
}

/// A contact whose memberships need evaluating: its facts changed (`dirty_since`) or a
/// timer came due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentWork {
    pub contact_id: ContactId,
    pub dirty_since: Option<Millis>,
}

/// The outcome of evaluating every segment for one contact.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactEvaluation {
    pub contact_id: ContactId,
    /// The claim this evaluation answers (to clear the dirty mark only if nothing
    /// changed since).
    pub dirty_since: Option<Millis>,
    /// `(segment id, member now?, next moment time alone may change it)`.
    pub results: Vec<(i64, bool, Option<Millis>)>,
}

/// What applying evaluations changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipChanges {
    pub entered: Vec<(i64, ContactId)>,
    pub exited: Vec<(i64, ContactId)>,
}

/// A person who signs in to the web UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    /// Lower-cased ([`nudge_core::access::user_email`]).
    pub email: String,
    pub role: nudge_core::access::Role,
    /// The UI language chosen by the user; `None` follows the workspace's default.
    pub locale: Option<String>,
    pub created_at: Millis,
    pub password_set_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub role: nudge_core::access::Role,
    /// Argon2id PHC string; the password itself is never stored.
    pub password_hash: String,
}

/// A signed-in browser, with the user it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the cookie's token, hex.
    pub token_hash: String,
    pub user: User,
    /// The token every state-changing request of this session must carry.
    pub csrf: String,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub token_hash: String,
    pub user_id: i64,
    pub csrf: String,
    pub expires_at: Millis,
}

/// What the workspace counts per hour, as things happen (the dashboard reads these;
/// nothing is computed by scanning events or messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Messages put in the outbox (first attempt only).
    MessagesQueued,
    MessagesSent,
    MessagesDelivered,
    MessagesOpened,
    MessagesClicked,
    MessagesBounced,
    MessagesFailed,
    /// Journey runs that reached their goal.
    Conversions,
    /// Revenue of the events that reached a journey goal.
    Revenue,
}

impl Metric {
    pub const ALL: [Metric; 9] = [
        Metric::MessagesQueued,
        Metric::MessagesSent,
        Metric::MessagesDelivered,
        Metric::MessagesOpened,
        Metric::MessagesClicked,
        Metric::MessagesBounced,
        Metric::MessagesFailed,
        Metric::Conversions,
        Metric::Revenue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::MessagesQueued => "messages_queued",
            Metric::MessagesSent => "messages_sent",
            Metric::MessagesDelivered => "messages_delivered",
            Metric::MessagesOpened => "messages_opened",
            Metric::MessagesClicked => "messages_clicked",
            Metric::MessagesBounced => "messages_bounced",
            Metric::MessagesFailed => "messages_failed",
            Metric::Conversions => "conversions",
            Metric::Revenue => "revenue",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Metric::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// One hour's value of a [`Metric`]; hours are UTC, `hour_start` in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HourlyStat {
    pub hour_start: Millis,
    pub metric: Metric,
    pub value: f64,
}

/// Milliseconds in an hour: the granularity of [`HourlyStat`].
pub const HOUR_MS: Millis = 3_600_000;

/// Who a report counter belongs to: a campaign, a journey or a channel
/// (`report_hourly.scope`: `campaign:3`, `journey:5`, `channel:email`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ReportScope {
    Campaign(i64),
    Journey(i64),
    Channel(String),
}

impl ReportScope {
    /// The stored form.
    pub fn key(&self) -> String {
        match self {
            ReportScope::Campaign(id) => format!("campaign:{id}"),
            ReportScope::Journey(id) => format!("journey:{id}"),
            ReportScope::Channel(c) => format!("channel:{c}"),
        }
    }

    /// Reads the stored form back.
    pub fn parse(key: &str) -> Option<Self> {
        let (kind, rest) = key.split_once(':')?;
        match kind {
            "campaign" => rest.parse().ok().map(ReportScope::Campaign),
            "journey" => rest.parse().ok().map(ReportScope::Journey),
            "channel" => Some(ReportScope::Channel(rest.to_string())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod report_scope_tests {
    use super::ReportScope;

    #[test]
    fn scopes_read_back() {
        for s in [
            ReportScope::Campaign(3),
            ReportScope::Journey(5),
            ReportScope::Channel("email".into()),
        ] {
            assert_eq!(ReportScope::parse(&s.key()), Some(s));
        }
        assert_eq!(ReportScope::parse("segment:1"), None);
    }
}
