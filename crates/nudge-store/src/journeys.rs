//! What storage keeps for journeys: definitions and their versions, runs, timers and
//! event waits. Definitions and run state are opaque JSON here; `nudge_core::journey`
//! gives them meaning. The one rule this layer owns: a run's new state is written
//! together with everything it causes (timers, waits, outgoing messages, timeline
//! events) in one transaction — [`RunWrite`] — so a crash never loses a step or
//! repeats a send.

use crate::NewMessage;
use nudge_core::protocol::{IdempotencyKey, TimelineEvent};
use nudge_core::{ContactId, Millis};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JourneyStatus {
    /// Saved, never published: no runs.
    Draft,
    /// New contacts enter; runs advance.
    Live,
    /// No new entries; runs hold where they are (timers wait until resumed).
    Paused,
    /// Ended: no entries, runs finished.
    Stopped,
}

impl JourneyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JourneyStatus::Draft => "draft",
            JourneyStatus::Live => "live",
            JourneyStatus::Paused => "paused",
            JourneyStatus::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => JourneyStatus::Draft,
            "live" => JourneyStatus::Live,
            "paused" => JourneyStatus::Paused,
            "stopped" => JourneyStatus::Stopped,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Journey {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub status: JourneyStatus,
    /// The latest saved version.
    pub version: i64,
    /// The version new runs start on; `None` until published.
    pub published_version: Option<i64>,
    pub priority: i64,
    /// The latest version's definition.
    pub definition: Value,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// For time-triggered journeys: the published version whose entry timers are set
    /// for every contact (the engine sets them when this differs from
    /// `published_version`).
    #[serde(skip)]
    pub entries_scheduled: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewJourney {
    pub name: String,
    pub description: String,
    pub priority: i64,
    pub definition: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JourneyVersion {
    pub journey_id: i64,
    pub version: i64,
    pub definition: Value,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub id: i64,
    pub journey_id: i64,
    pub version: i64,
    pub contact_id: ContactId,
    /// `None` once finished.
    pub step: Option<String>,
    pub state: Value,
    pub entry_key: Option<String>,
    pub entered_at: Millis,
    pub updated_at: Millis,
    pub finished_at: Option<Millis>,
    pub finish_reason: Option<String>,
    /// Transitions written so far (see [`RunWrite::expected_revision`]).
    pub revision: i64,
    /// Why the run was set aside (its state could not be read): it is neither active
    /// nor finished, and keeps its state for inspection.
    pub set_aside: Option<String>,
}

impl Run {
    pub fn is_active(&self) -> bool {
        self.finished_at.is_none() && self.set_aside.is_none()
    }
}

/// A run to start: where it begins and what it causes at once (its first write).
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub journey_id: i64,
    pub version: i64,
    pub contact_id: ContactId,
    /// Entering twice with the same key starts one run.
    pub entry_key: Option<String>,
}

/// Which timers of a run to remove before setting new ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ClearTimers {
    #[default]
    None,
    All,
    Keys(Vec<String>),
}

/// One transition of one run, written atomically: the new position and state, the
/// timers and event waits it leaves, and what it sends and records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunWrite {
    pub run_id: i64,
    /// The step the run is at now; `None` with `finished`.
    pub step: Option<String>,
    pub state: Value,
    /// Set when the run ends (`completed`, `goal`, `exited`, `stopped`, ...).
    pub finished: Option<String>,
    /// Applied before `set_timers`. A finished run loses all its timers and waits.
    pub clear_timers: ClearTimers,
    /// `(key, due)`: replaces a timer with the same key.
    pub set_timers: Vec<(String, Millis)>,
    /// `Some`: the run now waits for exactly these `(event, match value)`; `None`:
    /// unchanged.
    pub waits: Option<Vec<(String, Option<String>)>>,
    /// Into the outbox, idempotent on their keys.
    pub messages: Vec<NewMessage>,
    /// Events on the contact's timeline, with the journey counters they move.
    pub events: Vec<TimelineEvent>,
    /// `(idempotency key, update)`: `update_contact` steps passed, applied in order to
    /// the run's contact in the same transaction, each once: the key is that of the
    /// `Contact Updated` event recorded on the contact's timeline with the traits
    /// changed, and a key already stored applies nothing.
    pub contact_updates: Vec<(IdempotencyKey, nudge_core::journey::ContactUpdate)>,
    /// Revenue attributed to the run: set when an event with a `revenue` (or `total`,
    /// `value`) reaches the goal.
    pub revenue: Option<f64>,
    /// The run now follows this version of its journey (moved by a published mapping).
    pub version: Option<i64>,
    /// The revision of the run this transition was computed from: if the stored run
    /// has moved on since (another worker wrote it), nothing of this write is applied
    /// and `write_runs` reports the run. `None`: written regardless.
    pub expected_revision: Option<i64>,
}

/// A timer that came due, claimed (leased) by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct DueTimer {
    pub run_id: i64,
    pub key: String,
    pub due_at: Millis,
}

/// When a time-triggered journey starts a run for a contact (contact 0: for every
/// member of the journey's scheduled segment), claimed by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryTimer {
    pub journey_id: i64,
    pub contact_id: ContactId,
    pub due_at: Millis,
}

/// The inbox event name queued when traits that time-triggered journeys read change
/// (`set_journey_event_names` with `$trait:<name>` asks for it).
pub const TRAITS_CHANGED: &str = "$traits";

/// The `journey_event_names` entry that asks for [`TRAITS_CHANGED`] on a trait.
pub fn trait_event_name(name: &str) -> String {
    format!("$trait:{name}")
}

/// A run waiting for an event of a contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub run_id: i64,
    pub event: String,
    pub match_value: Option<String>,
}

/// An event queued for the journey engine (see `JourneyStore::set_journey_event_names`).
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEvent {
    pub id: i64,
    pub contact_id: ContactId,
    /// The stored event's id.
    pub event_id: i64,
    pub name: String,
    pub properties: Value,
    /// The event's timestamp.
    pub at: Millis,
}

/// A journey's numbers: runs by outcome, and per step.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct JourneyStats {
    pub entered: i64,
    pub active: i64,
    /// Finished runs by reason (`completed`, `goal`, `exited`, ...).
    pub finished: std::collections::BTreeMap<String, i64>,
    /// Runs that reached the goal (`finished["goal"]`).
    pub conversions: i64,
    /// Revenue of the events that reached the goal.
    pub revenue: f64,
    /// Runs set aside because their state could not be read (neither active nor
    /// finished; see `JourneyStore::set_run_aside`).
    pub set_aside: i64,
    pub steps: std::collections::BTreeMap<String, StepStats>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct StepStats {
    /// Runs that reached the step (each visit counts).
    pub reached: i64,
    /// Runs waiting at the step now.
    pub active: i64,
    /// Messages the step queued.
    pub sent: i64,
    /// Open and click events of those messages.
    pub opened: i64,
    pub clicked: i64,
    /// Messages opened, clicked at least once.
    pub unique_opened: i64,
    pub unique_clicked: i64,
    /// Conversions attributed to the step's messages (last touch), the messages
    /// with at least one, and their revenue.
    pub conversions: i64,
    pub converted: i64,
    pub conversion_revenue: f64,
    /// Unsubscribes through the step's messages, and spam complaints about them.
    pub unsubscribed: i64,
    pub complained: i64,
    /// Clicks per link of the step's messages, most clicked first.
    pub links: Vec<crate::LinkClicks>,
    /// Runs that left the step by each exit (`next`, `yes`, `no`, `on_event`,
    /// `on_timeout`, `cases[0].next`, `variants[1].next`, `default`).
    pub exits: std::collections::BTreeMap<String, i64>,
}
