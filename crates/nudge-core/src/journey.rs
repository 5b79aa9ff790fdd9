//! Journeys: a versioned graph of steps a contact walks through, and the pure
//! decision function that moves one run of it forward.
//!
//! # The model
//! A [`JourneyDefinition`] is JSON (see `docs/journeys.md`): a [`Trigger`] (what
//! starts a run), a list of [`Step`]s with stable string ids, the id of the `start`
//! step and [`Settings`]. Each step names the step that follows for each of its exits
//! (`next`; `on_event`/`on_timeout`; `yes`/`no`; `cases` + `default`; `variants`). A
//! missing exit ends the run as *completed*. [`parse_journey`] reads and validates a
//! definition; [`JourneyDefinition::validate`] explains everything wrong with it, each
//! problem with the JSON path of the node at fault (`steps[3].on_timeout`).
//!
//! # The transition contract
//! [`step`] is the whole decision core: given a definition, one run's [`RunState`],
//! one [`Input`] (start, a timer, an event, a message outcome, changed facts) and a
//! [`Context`] (the time now, the contact's facts and time zone, frequency caps and
//! recent sends), it returns a [`Transition`]: the run's new state and the
//! [`Command`]s it causes (send, schedule or cancel a timer, listen for events, update
//! the contact, call a webhook, record a timeline event, finish). The engine stores
//! the new state and carries out the commands in one transaction.
//!
//! - Instant steps (send, branch, split, update, webhook) chain within one transition
//!   until the run waits or ends, at most [`MAX_STEPS_PER_TRANSITION`] steps.
//! - Goal and exit settings are checked on every input before anything else; when one
//!   holds the run finishes at once, even in the middle of a wait.
//! - A send outside quiet hours / the send window, or over a frequency cap, is
//!   deferred (a timer at the next allowed moment), never dropped.
//! - Every command that has an effect outside the run carries an idempotency key
//!   derived from run, step and visit (`run-7-step-remind-1`), so a transition that is
//!   computed twice (a crash before the commit) produces the same keys.
//! - Stale inputs (a timer the run no longer waits for, anything for a finished run)
//!   change nothing and produce no commands.
//!
//! Nothing here reads the clock, the disk or a random source: the caller passes the
//! time and a resolved time zone in, and splits draw from a hash of run and step ids.

mod calendar;
mod dry_run;
pub mod layout;
mod machine;
#[cfg(test)]
mod tests;
mod validate;

pub use calendar::{DeferReason, SentMessage, next_allowed_send, next_date_trait, next_local_time, parse_time_of_day};
pub use dry_run::{DryRunContact, DryRunPath, DryRunReport, DryRunStep, dry_run};
pub use machine::{
    Command, Context, CorruptRunState, EventWait, FinishReason, Input, MAX_STEPS_PER_TRANSITION, MessageOutcomeKind,
    PreviousRun, Refusal, RunPhase, RunState, RunStatus, Transition, Waiting, WaitingFor, match_value, may_enter,
    split_bucket, step,
};
pub use validate::{JourneyError, MAX_STEPS, MAX_WAIT_MS};

use crate::Millis;
use crate::segment::{Condition, PropertyFilter, parse_condition};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A step's stable id within its journey (`"remind"`, `"wait-1h"`).
pub type StepId = String;

pub const MINUTE_MS: Millis = 60_000;

/// A complete journey definition (one version of a journey).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyDefinition {
    pub trigger: Trigger,
    /// The id of the first step.
    pub start: StepId,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub settings: Settings,
}

/// What starts a run for a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// The contact performs an event (a `track` call) whose properties pass the filters.
    Event {
        event: String,
        #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
        filters: Vec<PropertyFilter>,
    },
    /// The contact joins a segment.
    SegmentEntered { segment_id: i64 },
    /// The contact leaves a segment.
    SegmentExited { segment_id: i64 },
    /// A date trait comes round: `offset_days` before (negative) or after it, at
    /// `time` in the contact's time zone; every year on the anniversary with
    /// `every_year` (birthdays), else once (a renewal date).
    DateTrait {
        #[serde(rename = "trait")]
        name: String,
        #[serde(default)]
        offset_days: i32,
        #[serde(default)]
        every_year: bool,
        /// `HH:MM`, local to the contact; midnight when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<String>,
    },
    /// A form is submitted (by id or name).
    Form { form: NameOrId },
    /// An API call starts the run explicitly (with properties of its own).
    Api,
    /// The members of a segment at a moment (`at`, once) or on a schedule (`every`).
    Schedule {
        segment_id: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every: Option<Recurrence>,
    },
}

impl Trigger {
    /// Whether a `track` event starts this journey: an `event` trigger's event (its
    /// filters passing), `Segment Entered` / `Segment Exited` of the segment, a
    /// `Form Submitted` of the form. Time and API triggers start on no event.
    pub fn matches_event(&self, name: &str, properties: &Map<String, Value>, now: Millis) -> bool {
        let segment = properties.get("segment_id").and_then(Value::as_i64);
        match self {
            Trigger::Event { event, filters } => {
                event == name && filters.iter().all(|f| f.test.holds(properties.get(&f.property), now))
            }
            Trigger::SegmentEntered { segment_id } => name == SEGMENT_ENTERED && segment == Some(*segment_id),
            Trigger::SegmentExited { segment_id } => name == SEGMENT_EXITED && segment == Some(*segment_id),
            Trigger::Form { form } => name == FORM_SUBMITTED && form_matches(form, properties),
            _ => false,
        }
    }

    /// The event name that starts this journey, for triggers started by one.
    pub fn event_name(&self) -> Option<&str> {
        match self {
            Trigger::Event { event, .. } => Some(event),
            Trigger::SegmentEntered { .. } => Some(SEGMENT_ENTERED),
            Trigger::SegmentExited { .. } => Some(SEGMENT_EXITED),
            Trigger::Form { .. } => Some(FORM_SUBMITTED),
            _ => None,
        }
    }

    /// For time triggers: the next moment at or after `now` this trigger fires for a
    /// contact with these traits, in time zone `tz` (the contact's; for a schedule
    /// without `contact_time_zone`, pass the workspace's). `None` for other triggers,
    /// a missing or invalid date trait, or a one-off moment that has passed.
    pub fn next_occurrence(&self, traits: &Map<String, Value>, now: Millis, tz: &jiff::tz::TimeZone) -> Option<Millis> {
        match self {
            Trigger::DateTrait {
                name,
                offset_days,
                every_year,
                time,
            } => next_date_trait(traits.get(name)?, *offset_days, *every_year, time.as_deref(), now, tz),
            Trigger::Schedule { at: Some(at), .. } => crate::parse_instant(at).filter(|&t| t >= now),
            Trigger::Schedule { every: Some(r), .. } => Some(next_local_time(now, tz, &r.time, &r.days)),
            _ => None,
        }
    }

    /// Whether runs of this trigger carry an event's properties to capture match keys
    /// from.
    pub fn has_properties(&self) -> bool {
        matches!(self, Trigger::Event { .. } | Trigger::Form { .. } | Trigger::Api)
    }
}

pub use crate::protocol::event_names::{FORM_SUBMITTED, SEGMENT_ENTERED, SEGMENT_EXITED};

/// Whether the properties of a `Form Submitted` event name this form: `form_id`
/// (number or numeric text) for an id, `form` (or `form_name`) for a name.
pub fn form_matches(form: &NameOrId, properties: &Map<String, Value>) -> bool {
    match form {
        NameOrId::Id(id) => properties.get("form_id").is_some_and(|v| {
            v.as_i64() == Some(*id) || v.as_str().and_then(|s| s.trim().parse::<i64>().ok()) == Some(*id)
        }),
        NameOrId::Name(name) => ["form", "form_name"]
            .iter()
            .any(|k| properties.get(*k).and_then(Value::as_str) == Some(name.as_str())),
    }
}

/// A recurring schedule: every day (no `days`) or on the given days, at `time`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<Day>,
    /// `HH:MM`.
    pub time: String,
    /// In each contact's own time zone, rather than the workspace's.
    #[serde(default)]
    pub contact_time_zone: bool,
}

/// A template, form or other object named by numeric id or by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum NameOrId {
    Id(i64),
    Name(String),
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub fn weekday(self) -> jiff::civil::Weekday {
        use jiff::civil::Weekday::*;
        match self {
            Day::Mon => Monday,
            Day::Tue => Tuesday,
            Day::Wed => Wednesday,
            Day::Thu => Thursday,
            Day::Fri => Friday,
            Day::Sat => Saturday,
            Day::Sun => Sunday,
        }
    }
}

/// A length of time: milliseconds (`3600000`) or parts (`{"days": 1, "hours": 2}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Duration {
    Millis(i64),
    Parts(DurationParts),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationParts {
    #[serde(default)]
    pub days: i64,
    #[serde(default)]
    pub hours: i64,
    #[serde(default)]
    pub minutes: i64,
}

impl Duration {
    /// The length in milliseconds (saturating; validation bounds it).
    pub fn as_millis(&self) -> Millis {
        match *self {
            Duration::Millis(ms) => ms,
            Duration::Parts(p) => p
                .days
                .saturating_mul(crate::segment::DAY_MS)
                .saturating_add(p.hours.saturating_mul(crate::segment::HOUR_MS))
                .saturating_add(p.minutes.saturating_mul(MINUTE_MS)),
        }
    }
}

/// One step of the graph: a stable id and what it does. In JSON the id sits next to
/// the step's `type` and fields: `{"id": "remind", "type": "send", ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: StepId,
    pub kind: StepKind,
}

/// What a step does, and where each of its exits leads (`None`: the run completes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepKind {
    /// Send a message from a template. Deferred (never dropped) by quiet hours, the
    /// send window and frequency caps unless `transactional`.
    Send {
        template: NameOrId,
        /// The template's own channel when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        #[serde(default)]
        transactional: bool,
        /// Held for the contact's best time within the next `within_hours` hours
        /// (`nudge_core::send_time`), among the moments quiet hours and the send
        /// window allow. Marketing sends only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        best_time: Option<crate::send_time::BestTime>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<StepId>,
    },
    /// Wait a fixed time.
    Wait {
        duration: Duration,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<StepId>,
    },
    /// Wait until the next `time` (`HH:MM`) on one of `days` (any day when empty) in
    /// the contact's time zone. Goes on at once if that moment is now.
    WaitUntil {
        time: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        days: Vec<Day>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<StepId>,
    },
    /// Wait until the contact performs an event (optionally with the same value of
    /// `match_key` as the trigger event had), or until `timeout` passes.
    WaitForEvent {
        event: String,
        #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
        filters: Vec<PropertyFilter>,
        /// A property of the awaited event that must equal the trigger event's value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        match_key: Option<String>,
        timeout: Duration,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_event: Option<StepId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_timeout: Option<StepId>,
    },
    /// Two ways on a test: a segment condition on the contact's facts, or what became
    /// of a message this run sent.
    Branch {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        condition: Option<Condition>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<MessageTest>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        yes: Option<StepId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        no: Option<StepId>,
    },
    /// The first case whose condition holds, else `default`.
    MultiBranch {
        cases: Vec<Case>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<StepId>,
    },
    /// A random (stable per run) split: percentages summing to 100.
    Split { variants: Vec<Variant> },
    /// Change the contact: traits, tags, lists, lead score.
    UpdateContact {
        /// Traits to set (name → value).
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        set: Map<String, Value>,
        /// Traits to remove.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unset: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        add_tags: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove_tags: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        add_lists: Vec<NameOrId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove_lists: Vec<NameOrId>,
        /// Points added to (or, negative, removed from) the lead score.
        #[serde(default, skip_serializing_if = "is_zero")]
        lead_score: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<StepId>,
    },
    /// Call a webhook rendered from a template.
    Webhook {
        template: NameOrId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<StepId>,
    },
    /// A conversion: the run counts as converted and ends.
    Goal {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// The run ends here.
    Exit,
}

impl StepKind {
    /// The step's exits in order, each with its JSON field name.
    pub fn exits(&self) -> Vec<(String, Option<&StepId>)> {
        fn one<'a>(name: &str, s: &'a Option<StepId>) -> Vec<(String, Option<&'a StepId>)> {
            vec![(name.to_string(), s.as_ref())]
        }
        match self {
            StepKind::Send { next, .. }
            | StepKind::Wait { next, .. }
            | StepKind::WaitUntil { next, .. }
            | StepKind::UpdateContact { next, .. }
            | StepKind::Webhook { next, .. } => one("next", next),
            StepKind::WaitForEvent {
                on_event, on_timeout, ..
            } => vec![
                ("on_event".into(), on_event.as_ref()),
                ("on_timeout".into(), on_timeout.as_ref()),
            ],
            StepKind::Branch { yes, no, .. } => vec![("yes".into(), yes.as_ref()), ("no".into(), no.as_ref())],
            StepKind::MultiBranch { cases, default } => {
                let mut v: Vec<_> = cases
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("cases[{i}].next"), c.next.as_ref()))
                    .collect();
                v.push(("default".into(), default.as_ref()));
                v
            }
            StepKind::Split { variants } => variants
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("variants[{i}].next"), v.next.as_ref()))
                .collect(),
            StepKind::Goal { .. } | StepKind::Exit => vec![],
        }
    }

    /// Whether the step makes the run wait (so a loop through it is not instant).
    pub fn is_wait(&self) -> bool {
        matches!(
            self,
            StepKind::Wait { .. } | StepKind::WaitUntil { .. } | StepKind::WaitForEvent { .. }
        )
    }

    /// The step's type as in JSON (`wait_for_event`).
    pub fn type_name(&self) -> &'static str {
        match self {
            StepKind::Send { .. } => "send",
            StepKind::Wait { .. } => "wait",
            StepKind::WaitUntil { .. } => "wait_until",
            StepKind::WaitForEvent { .. } => "wait_for_event",
            StepKind::Branch { .. } => "branch",
            StepKind::MultiBranch { .. } => "multi_branch",
            StepKind::Split { .. } => "split",
            StepKind::UpdateContact { .. } => "update_contact",
            StepKind::Webhook { .. } => "webhook",
            StepKind::Goal { .. } => "goal",
            StepKind::Exit => "exit",
        }
    }
}

/// An event to watch for (goal and exit events): its name, property filters, and
/// optionally a property whose value must equal the one captured from the trigger
/// event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMatch {
    pub event: String,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<PropertyFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_key: Option<String>,
}

/// A test on a message sent earlier in the run by a `send` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageTest {
    /// The id of the `send` step.
    pub step: StepId,
    /// Holds when the run has heard this outcome of that step's latest message.
    pub outcome: MessageOutcomeKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub condition: Condition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<StepId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// A label for reports (`"A"`); the variant's index when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub percent: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<StepId>,
}

/// Changes to a contact (what an `update_contact` step asks for).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContactUpdate {
    /// Traits to set (name → value).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub set: Map<String, Value>,
    /// Traits to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_lists: Vec<NameOrId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_lists: Vec<NameOrId>,
    /// Points added to (or, negative, removed from) the lead score.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lead_score: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl ContactUpdate {
    pub fn is_empty(&self) -> bool {
        self == &ContactUpdate::default()
    }

    /// The traits to merge into a contact whose traits are `current` (as `identify`
    /// merges them: `null` removes): `set`, `unset`, the `tags` and `lists` arrays with
    /// items added and removed (kept sorted, without repeats), and `lead_score` moved by
    /// the points (a missing or non-numeric score counts as 0).
    pub fn patch(&self, current: &Map<String, Value>) -> Map<String, Value> {
        let mut traits = self.set.clone();
        for name in &self.unset {
            traits.insert(name.clone(), Value::Null);
        }
        let list = |name: &str, add: Vec<String>, remove: Vec<String>| {
            let mut items: std::collections::BTreeSet<String> = current
                .get(name)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            items.extend(add);
            for r in &remove {
                items.remove(r);
            }
            Value::from(items.into_iter().collect::<Vec<_>>())
        };
        if !self.add_tags.is_empty() || !self.remove_tags.is_empty() {
            traits.insert(
                "tags".into(),
                list("tags", self.add_tags.clone(), self.remove_tags.clone()),
            );
        }
        let names = |v: &[NameOrId]| {
            v.iter()
                .map(|n| match n {
                    NameOrId::Id(i) => i.to_string(),
                    NameOrId::Name(s) => s.clone(),
                })
                .collect::<Vec<_>>()
        };
        if !self.add_lists.is_empty() || !self.remove_lists.is_empty() {
            traits.insert(
                "lists".into(),
                list("lists", names(&self.add_lists), names(&self.remove_lists)),
            );
        }
        if self.lead_score != 0 {
            let score = crate::segment::lead_score(current);
            traits.insert("lead_score".into(), Value::from(score + self.lead_score as f64));
        }
        traits
    }
}

/// The revenue an event brings, by Segment's e-commerce spec: its numeric `revenue`
/// property, else `total`, else `value`. Attributed to a journey when the event
/// reaches the journey's goal.
pub fn revenue_of(properties: &Map<String, Value>) -> Option<f64> {
    ["revenue", "total", "value"]
        .iter()
        .find_map(|k| properties.get(*k).and_then(Value::as_f64))
        .filter(|r| r.is_finite())
}

/// Journey-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Only contacts matching this enter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_filter: Option<Condition>,
    #[serde(default)]
    pub re_entry: ReEntry,
    /// Runs of this journey one contact may have at once (at least 1).
    #[serde(default = "one")]
    pub max_concurrent_runs: u32,
    /// When it holds, the run converts and ends at once (checked on every input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Condition>,
    /// When the contact performs this event, the run converts and ends at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal_event: Option<EventMatch>,
    /// When it holds, the run ends at once without converting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_condition: Option<Condition>,
    /// When the contact performs this event, the run ends at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_event: Option<EventMatch>,
    /// No sends between `start` and `end` (local to the contact): they wait for `end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Sends only on these days between `from` and `to` (local to the contact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_window: Option<SendWindow>,
    /// Higher goes first when frequency caps leave room for fewer messages than
    /// journeys want to send (applied by the engine's ordering).
    #[serde(default)]
    pub priority: i64,
}

fn one() -> u32 {
    1
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            entry_filter: None,
            re_entry: ReEntry::default(),
            max_concurrent_runs: 1,
            goal: None,
            goal_event: None,
            exit_condition: None,
            exit_event: None,
            quiet_hours: None,
            send_window: None,
            priority: 0,
        }
    }
}

/// Whether a contact may enter the journey again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReEntry {
    /// Once per contact, ever.
    #[default]
    Never,
    /// Again once `days` days have passed since the contact last entered.
    After { days: u32 },
    /// Whenever triggered (bounded by `max_concurrent_runs`).
    Always,
}

/// `start`–`end` (`HH:MM`, local); may wrap midnight (`21:00`–`08:00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
}

/// Sends allowed on `days` (every day when empty) from `from` to `to` (`HH:MM`, local,
/// `from` before `to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendWindow {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<Day>,
    pub from: String,
    pub to: String,
}

/// A workspace-wide limit on marketing (non-transactional) messages per contact:
/// at most `max` on `channel` (every channel when `None`) in any rolling `per`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub max: u32,
    pub per: CapPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapPeriod {
    Day,
    Week,
}

impl CapPeriod {
    pub fn millis(self) -> Millis {
        match self {
            CapPeriod::Day => crate::segment::DAY_MS,
            CapPeriod::Week => 7 * crate::segment::DAY_MS,
        }
    }
}

// Hand-written so that a wrong shape gets a plain explanation rather than serde's
// "did not match any variant of untagged enum".
impl<'de> Deserialize<'de> for NameOrId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::String(s) => Ok(NameOrId::Name(s)),
            Value::Number(n) if n.is_i64() => Ok(NameOrId::Id(n.as_i64().unwrap_or_default())),
            other => Err(D::Error::custom(format!(
                "expected an id (a whole number) or a name (a string), not {other}"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::Number(n) if n.is_i64() => Ok(Duration::Millis(n.as_i64().unwrap_or_default())),
            v @ Value::Object(_) => serde_json::from_value(v)
                .map(Duration::Parts)
                .map_err(|e| D::Error::custom(format!("in a duration: {e}"))),
            other => Err(D::Error::custom(format!(
                "a duration is milliseconds (a whole number) or {{\"days\", \"hours\", \"minutes\"}}, not {other}"
            ))),
        }
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut v = serde_json::to_value(&self.kind).map_err(S::Error::custom)?;
        let Value::Object(obj) = &mut v else {
            return Err(S::Error::custom("a step serializes to an object"));
        };
        let mut out = Map::new();
        out.insert("id".into(), Value::String(self.id.clone()));
        out.extend(std::mem::take(obj));
        Value::Object(out).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut obj = Map::deserialize(d)?;
        let id = match obj.remove("id") {
            Some(Value::String(id)) => id,
            Some(_) => return Err(D::Error::custom("`id` must be a string")),
            None => return Err(D::Error::missing_field("id")),
        };
        let kind = StepKind::deserialize(Value::Object(obj)).map_err(D::Error::custom)?;
        Ok(Step { id, kind })
    }
}

impl JourneyDefinition {
    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Every property name whose trigger-event value a run captures at entry (the
    /// `match_key`s of waits, goal and exit events).
    pub fn match_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::WaitForEvent { match_key, .. } => match_key.as_deref(),
                _ => None,
            })
            .chain(self.settings.goal_event.iter().filter_map(|e| e.match_key.as_deref()))
            .chain(self.settings.exit_event.iter().filter_map(|e| e.match_key.as_deref()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// Reads and validates a definition. Every problem found is reported, each with the
/// JSON path of the node at fault.
pub fn parse_journey(value: &Value) -> Result<JourneyDefinition, Vec<JourneyError>> {
    let err = |path: &str, message: String| JourneyError {
        path: path.to_string(),
        message,
    };
    let Some(obj) = value.as_object() else {
        return Err(vec![err("$", "a journey definition must be a JSON object".into())]);
    };
    let mut errors = Vec::new();
    for key in obj.keys() {
        if !["trigger", "start", "steps", "settings"].contains(&key.as_str()) {
            errors.push(err(
                key,
                "unknown field; a journey has trigger, start, steps and settings".into(),
            ));
        }
    }
    let trigger = match obj.get("trigger") {
        None => {
            errors.push(err("trigger", "is required".into()));
            None
        }
        Some(v) => serde_json::from_value::<Trigger>(v.clone())
            .map_err(|e| errors.push(err("trigger", e.to_string())))
            .ok(),
    };
    let start = match obj.get("start") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(err("start", "must be the id of a step (a string)".into()));
            None
        }
        None => {
            errors.push(err("start", "is required: the id of the first step".into()));
            None
        }
    };
    let mut steps = Vec::new();
    match obj.get("steps") {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match serde_json::from_value::<Step>(item.clone()) {
                    Ok(s) => steps.push(s),
                    Err(e) => errors.push(err(&format!("steps[{i}]"), e.to_string())),
                }
            }
        }
        Some(_) => errors.push(err("steps", "must be a list of steps".into())),
        None => errors.push(err("steps", "is required".into())),
    }
    let settings = match obj.get("settings") {
        None => Some(Settings::default()),
        Some(v) => serde_json::from_value::<Settings>(v.clone())
            .map_err(|e| errors.push(err("settings", e.to_string())))
            .ok(),
    };
    // Conditions embedded in the definition: serde cannot deny unknown keys next to
    // their flattened tests, so check their raw JSON the way segments are checked.
    let mut conditions: Vec<(String, &Value)> = Vec::new();
    if let Some(Value::Array(items)) = obj.get("steps") {
        for (i, item) in items.iter().enumerate() {
            if let Some(c) = item.get("condition") {
                conditions.push((format!("steps[{i}].condition"), c));
            }
            if let Some(Value::Array(cases)) = item.get("cases") {
                for (j, case) in cases.iter().enumerate() {
                    if let Some(c) = case.get("condition") {
                        conditions.push((format!("steps[{i}].cases[{j}].condition"), c));
                    }
                }
            }
        }
    }
    if let Some(s) = obj.get("settings") {
        for key in ["entry_filter", "goal", "exit_condition"] {
            if let Some(c) = s.get(key).filter(|c| !c.is_null()) {
                conditions.push((format!("settings.{key}"), c));
            }
        }
    }
    for (path, c) in conditions {
        if let Err(e) = parse_condition(c) {
            errors.push(err(&validate::nest(&path, &e.path), e.message));
        }
    }
    let (Some(trigger), Some(start), Some(settings), true) = (trigger, start, settings, errors.is_empty()) else {
        return Err(errors);
    };
    let def = JourneyDefinition {
        trigger,
        start,
        steps,
        settings,
    };
    def.validate()?;
    Ok(def)
}
