//! The decision core: one run, one input, the time now → the run's new state and the
//! commands it causes. See the module documentation of [`crate::journey`].

use super::calendar::{DeferReason, SentMessage, next_allowed_send, next_local_time};
use super::{ContactUpdate, FrequencyCap, JourneyDefinition, NameOrId, ReEntry, Step, StepId, StepKind};
use crate::protocol::{IdempotencyKey, StepCount, event_names};
use crate::segment::{DAY_MS, Facts, PropertyFilter};
use crate::{ContactId, Millis};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Most steps one transition may pass through. Validation rejects loops without a
/// wait, so only a broken definition reaches it; the run then finishes
/// (`step_limit`) rather than spinning.
pub const MAX_STEPS_PER_TRANSITION: usize = 1_000;

/// Everything the engine stores about one run between transitions (as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: i64,
    pub journey_id: i64,
    pub contact_id: ContactId,
    /// The journey version the run follows for its whole life.
    pub version: i64,
    pub status: RunStatus,
    /// The step the run is at; `None` before the start and once finished.
    pub position: Option<StepId>,
    /// What the run waits for at `position` (always with a timer).
    pub waiting: Option<Waiting>,
    pub entered_at: Millis,
    /// When the run entered its current step.
    pub step_entered_at: Millis,
    /// How many times the run has entered each step: the "attempt" in idempotency
    /// keys, so a step visited again in a loop sends again, but a transition computed
    /// twice does not.
    #[serde(default)]
    pub visits: BTreeMap<StepId, u32>,
    /// Timers scheduled so far (numbers timer keys).
    #[serde(default)]
    pub timers: u32,
    /// Values of the definition's match keys, captured from the trigger event
    /// (`cart_id` → `"c-17"`), as [`match_value`] spells them.
    #[serde(default)]
    pub captured: BTreeMap<String, String>,
    /// The trigger event's properties (for templates: `{{ event.cart_id }}`).
    #[serde(default)]
    pub trigger: Map<String, Value>,
    /// Split step → the index of the variant this run takes (stable on revisits).
    #[serde(default)]
    pub variants: BTreeMap<StepId, usize>,
    /// Send step → the idempotency key of its latest message.
    #[serde(default)]
    pub sent: BTreeMap<StepId, String>,
    /// Send step → what became of its latest message (reported by the engine).
    #[serde(default)]
    pub outcomes: BTreeMap<StepId, Vec<MessageOutcomeKind>>,
}

impl RunState {
    /// A run about to start (feed it [`Input::Start`]).
    pub fn new(run_id: i64, journey_id: i64, contact_id: ContactId, version: i64, now: Millis) -> Self {
        RunState {
            run_id,
            journey_id,
            contact_id,
            version,
            status: RunStatus::New,
            position: None,
            waiting: None,
            entered_at: now,
            step_entered_at: now,
            visits: BTreeMap::new(),
            timers: 0,
            captured: BTreeMap::new(),
            trigger: Map::new(),
            variants: BTreeMap::new(),
            sent: BTreeMap::new(),
            outcomes: BTreeMap::new(),
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.status, RunStatus::Finished { .. })
    }

    /// The event waits the engine must index for this run: `(event, match value)`.
    /// Empty unless the run is waiting.
    pub fn event_waits(&self, def: &JourneyDefinition) -> Vec<EventWait> {
        if self.status != RunStatus::Waiting {
            return vec![];
        }
        let mut out = Vec::new();
        let mut add = |event: &str, match_key: Option<&String>| {
            let key = match match_key {
                None => None,
                // The trigger had no value to match: nothing can match, so listen for nothing.
                Some(k) => match self.captured.get(k) {
                    Some(v) => Some(v.clone()),
                    None => return,
                },
            };
            let w = EventWait {
                event: event.to_string(),
                key,
            };
            if !out.contains(&w) {
                out.push(w);
            }
        };
        for m in [&def.settings.goal_event, &def.settings.exit_event]
            .into_iter()
            .flatten()
        {
            add(&m.event, m.match_key.as_ref());
        }
        if let Some(Waiting {
            what: WaitingFor::Event { event, match_key },
            ..
        }) = &self.waiting
        {
            add(event, match_key.as_ref());
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, not started yet.
    New,
    /// At a step, waiting (for a timer, an event, or the next allowed send moment).
    Waiting,
    Finished {
        reason: FinishReason,
        at: Millis,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum FinishReason {
    /// Reached a missing `next`: the end of a path.
    Completed,
    /// Reached a goal step, or the goal setting held.
    Goal { name: Option<String> },
    /// Reached an exit step.
    Exited,
    /// The exit condition or exit event of the settings.
    ExitCondition,
    /// Stopped from outside (journey stopped, contact deleted).
    Stopped,
    /// Passed [`MAX_STEPS_PER_TRANSITION`] steps in one transition.
    StepLimit,
    /// The run's step is not in its definition (a broken version).
    StepNotFound { step: StepId },
}

impl FinishReason {
    /// The short name stored with a finished run.
    pub fn as_str(&self) -> &'static str {
        match self {
            FinishReason::Completed => "completed",
            FinishReason::Goal { .. } => "goal",
            FinishReason::Exited => "exited",
            FinishReason::ExitCondition => "exit_condition",
            FinishReason::Stopped => "stopped",
            FinishReason::StepLimit => "step_limit",
            FinishReason::StepNotFound { .. } => "step_not_found",
        }
    }
}

/// What a run waits for, and the timer that ends the wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub timer_key: String,
    pub due: Millis,
    pub what: WaitingFor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum WaitingFor {
    /// `wait` / `wait_until`: the timer moves the run on.
    Time,
    /// A deferred `send`: the timer retries it.
    Send { reason: DeferReason },
    /// `wait_for_event`: the event (with this match key, if any) or the timer (the
    /// timeout).
    Event { event: String, match_key: Option<String> },
}

/// What happened to a message (fed back by the engine with [`Input::MessageOutcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageOutcomeKind {
    Sent,
    Delivered,
    Opened,
    Clicked,
    Bounced,
    Failed,
    Unsubscribed,
}

/// One fact for a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Start the run, with the trigger event's properties (empty for triggers without
    /// an event).
    Start { properties: Map<String, Value> },
    /// A timer of the run came due.
    Timer { key: String },
    /// The contact performed an event. The facts in the [`Context`] already include it.
    Event {
        name: String,
        properties: Map<String, Value>,
        at: Millis,
    },
    /// A message sent by `step` (its idempotency key `key`) reached `outcome`.
    MessageOutcome {
        step: StepId,
        key: String,
        outcome: MessageOutcomeKind,
    },
    /// The contact's traits, segments or subscriptions changed (or time passed a
    /// moment the goal condition depends on): re-check goal and exit conditions.
    FactsChanged,
    /// End the run now (journey stopped, contact deleted).
    Stop,
    /// The run moves to `step` of `version` (the definition passed to [`step`]), by
    /// the mapping a publish named. It leaves its wait and enters the step anew;
    /// `waited_since`: when it entered the step it leaves, if that was the same kind of
    /// wait (`wait` → `wait`, `wait_for_event` → `wait_for_event`), so the time already
    /// waited counts against the new duration.
    Move {
        step: StepId,
        version: i64,
        waited_since: Option<Millis>,
    },
}

/// What the caller knows at the moment of the transition.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: Millis,
    /// The contact's facts, for conditions (including the event being processed).
    pub facts: &'a Facts,
    /// The contact's time zone, resolved by the caller (trait, last event's
    /// `context.timezone`, else the workspace's).
    pub time_zone: &'a TimeZone,
    /// Workspace-wide frequency caps.
    pub caps: &'a [FrequencyCap],
    /// The contact's recent marketing sends from every journey and campaign (at
    /// least the longest cap period back).
    pub recent_sends: &'a [SentMessage],
    /// The contact's send-time estimate, for send steps with a `best_time`
    /// (`None`: they send as soon as allowed).
    pub send_time: Option<&'a crate::send_time::Estimate>,
}

/// A stored run's state by phase. The store keeps it as opaque JSON; this is the one
/// place that reads and writes that JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum RunPhase {
    /// Stored, not started yet: its `start` timer starts it with the trigger's
    /// properties.
    Pending { properties: Map<String, Value> },
    /// Started: where the run is and what it waits for.
    Started(Box<RunState>),
}

/// A run state that cannot be read (or written): the run is set aside for
/// inspection, never reset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run state: {0}")]
pub struct CorruptRunState(pub String);

impl RunPhase {
    /// The key of a pending run's stored state.
    const PENDING: &'static str = "pending_start";

    /// Reads a stored state.
    pub fn from_stored(value: &Value) -> Result<Self, CorruptRunState> {
        if let Some(p) = value.get(Self::PENDING) {
            return match p {
                Value::Object(properties) => Ok(RunPhase::Pending {
                    properties: properties.clone(),
                }),
                other => Err(CorruptRunState(format!("{} is not an object: {other}", Self::PENDING))),
            };
        }
        RunState::deserialize(value)
            .map(|s| RunPhase::Started(Box::new(s)))
            .map_err(|e| CorruptRunState(e.to_string()))
    }

    /// The JSON the store keeps.
    pub fn to_stored(&self) -> Result<Value, CorruptRunState> {
        match self {
            RunPhase::Pending { properties } => Ok(json!({ Self::PENDING: properties })),
            RunPhase::Started(state) => serde_json::to_value(state).map_err(|e| CorruptRunState(e.to_string())),
        }
    }

    pub fn is_started(&self) -> bool {
        matches!(self, RunPhase::Started(_))
    }

    /// The trigger's properties of a stored state that is pending (not started),
    /// without reading the rest: the engine asks this of every run an event or timer
    /// touches, and parses the state once, when it moves the run.
    pub fn pending_properties(value: &Value) -> Option<Map<String, Value>> {
        value.get(Self::PENDING)?.as_object().cloned()
    }

    /// Whether a stored state is pending (see [`RunPhase::pending_properties`]).
    pub fn is_pending(value: &Value) -> bool {
        value.get(Self::PENDING).is_some()
    }
}

/// An event a waiting run listens for, as the engine indexes it: name and match value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventWait {
    pub event: String,
    pub key: Option<String>,
}

/// Something the engine must do, in the same transaction as storing the new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Queue a message (outbox; idempotent on the key).
    Send {
        step: StepId,
        /// The visit of the step that sends (the run's message origin names it).
        visit: u32,
        template: NameOrId,
        channel: Option<String>,
        transactional: bool,
        idempotency_key: IdempotencyKey,
    },
    /// Set a timer; an existing timer with the same key is replaced.
    ScheduleTimer {
        key: String,
        at: Millis,
    },
    CancelTimer {
        key: String,
    },
    /// The run now listens for exactly these events (replaces the previous set).
    ListenFor {
        waits: Vec<EventWait>,
    },
    UpdateContact {
        step: StepId,
        update: ContactUpdate,
        idempotency_key: IdempotencyKey,
    },
    CallWebhook {
        step: StepId,
        visit: u32,
        template: NameOrId,
        idempotency_key: IdempotencyKey,
    },
    /// Record an event on the contact's timeline (idempotent on the key).
    EmitEvent {
        name: String,
        properties: Value,
        idempotency_key: IdempotencyKey,
        /// The journey statistics the event counts toward.
        counts: Option<StepCount>,
    },
    /// The run ended (always the last command).
    Finish {
        reason: FinishReason,
    },
}

/// The outcome of [`step`].
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: RunState,
    pub commands: Vec<Command>,
}

/// A value as a match key: strings as they are, integral numbers without a fraction
/// (`5.0` → `"5"`), other numbers and booleans as JSON; `None` for anything else.
pub fn match_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9e15 => (f as i64).to_string(),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

/// The run's stable draw for a split step: 0-99, from a hash of run and step ids.
pub fn split_bucket(run_id: i64, step: &str) -> u8 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in run_id.to_le_bytes().iter().chain(b"/").chain(step.as_bytes()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    // splitmix64 finalizer: FNV alone clusters on sequential ids.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d049bb133111eb);
    h ^= h >> 31;
    (h % 100) as u8
}

/// Moves one run forward by one input. Pure: same arguments, same transition.
pub fn step(def: &JourneyDefinition, run: &RunState, input: Input, ctx: &Context) -> Transition {
    let unchanged = || Transition {
        state: run.clone(),
        commands: vec![],
    };
    if run.is_finished() {
        return unchanged();
    }
    let mut m = Machine {
        def,
        ctx,
        state: run.clone(),
        effects: vec![],
        finish: None,
        sent: ctx.recent_sends.to_vec(),
        steps: 0,
        exit: None,
        exit_owned: None,
        relisten: false,
        best_time_released: None,
    };
    match input {
        Input::Start { properties } => {
            if run.status != RunStatus::New {
                return unchanged();
            }
            for key in def.match_keys() {
                if let Some(v) = properties.get(key).and_then(match_value) {
                    m.state.captured.insert(key.to_string(), v);
                }
            }
            m.state.trigger = properties;
            m.state.status = RunStatus::Waiting;
            if !m.check_settings(None) {
                m.enter(Some(def.start.clone()));
                m.run();
            }
        }
        _ if run.status == RunStatus::New => return unchanged(),
        Input::Stop => m.finish_with(FinishReason::Stopped),
        Input::Move {
            step,
            version,
            waited_since,
        } => {
            m.state.version = version;
            m.state.waiting = None;
            m.relisten = true;
            if !m.check_settings(None) {
                m.enter(Some(step.clone()));
                m.run();
                let same_wait = matches!(
                    def.step(&step).map(|s| &s.kind),
                    Some(StepKind::Wait { .. } | StepKind::WaitForEvent { .. })
                );
                if let (Some(since), Some(w)) = (waited_since, m.state.waiting.as_mut())
                    && same_wait
                    && m.state.position.as_ref() == Some(&step)
                {
                    w.due = (w.due - (ctx.now - since)).max(ctx.now);
                    m.state.step_entered_at = since;
                }
            }
        }
        Input::FactsChanged => {
            if !m.check_settings(None) {
                return unchanged();
            }
        }
        Input::Timer { key } => {
            if m.check_settings(None) {
                return m.done(run);
            }
            let Some(w) = run.waiting.clone().filter(|w| w.timer_key == key) else {
                return unchanged();
            };
            if ctx.now < w.due {
                // Early: keep waiting on the same timer.
                return Transition {
                    state: run.clone(),
                    commands: vec![Command::ScheduleTimer { key, at: w.due }],
                };
            }
            m.state.waiting = None;
            let Some(current) = m.current() else {
                m.run(); // finishes: the step is gone from the definition
                return m.done(run);
            };
            match (&w.what, &current.kind) {
                (WaitingFor::Send { reason }, _) => {
                    if *reason == DeferReason::BestTime {
                        m.best_time_released = m.state.position.clone();
                    }
                    m.run()
                }
                (WaitingFor::Event { .. }, StepKind::WaitForEvent { on_timeout, .. }) => {
                    m.leave("on_timeout", on_timeout.clone());
                    m.run();
                }
                (_, kind) => {
                    let next = kind.exits().first().and_then(|(_, n)| n.cloned());
                    m.leave("next", next);
                    m.run();
                }
            }
        }
        Input::Event { name, properties, at } => {
            if m.check_settings(Some((&name, &properties))) {
                return m.done(run);
            }
            let Some(Waiting {
                due,
                what: WaitingFor::Event { .. },
                ..
            }) = run.waiting
            else {
                return unchanged();
            };
            let Some(Step {
                kind:
                    StepKind::WaitForEvent {
                        event,
                        filters,
                        match_key,
                        on_event,
                        ..
                    },
                ..
            }) = m.current()
            else {
                return unchanged();
            };
            // An event from after the timeout belongs to the timeout's side.
            if at >= due || !m.event_matches(&name, &properties, event, filters, match_key.as_ref()) {
                return unchanged();
            }
            m.state.waiting = None;
            m.leave("on_event", on_event.clone());
            m.run();
        }
        Input::MessageOutcome { step, key, outcome } => {
            if m.check_settings(None) {
                return m.done(run);
            }
            if run.sent.get(&step) != Some(&key) {
                return unchanged();
            }
            let heard = m.state.outcomes.entry(step).or_default();
            if heard.contains(&outcome) {
                return unchanged();
            }
            heard.push(outcome);
        }
    }
    m.done(run)
}

struct Machine<'a> {
    def: &'a JourneyDefinition,
    ctx: &'a Context<'a>,
    state: RunState,
    effects: Vec<Command>,
    finish: Option<FinishReason>,
    /// Recent sends plus the ones this transition made (for frequency caps).
    sent: Vec<SentMessage>,
    /// Steps entered in this transition.
    steps: usize,
    /// The exit of the current step the run is leaving by (`next`, `yes`,
    /// `on_timeout`, `cases[1].next`, ...), for the statistics: carried on the next
    /// step's `Journey Step Reached` (or the finish) event as `from_step` and `exit`.
    exit: Option<&'static str>,
    exit_owned: Option<String>,
    /// Emit `ListenFor` even if the waits look unchanged: after a move, the old state's
    /// waits were read against the new definition's goal and exit events.
    relisten: bool,
    /// The send step whose best-time timer fired in this transition: it goes now
    /// (still within quiet hours, the send window and the caps), not at a newer best time.
    best_time_released: Option<StepId>,
}

impl<'a> Machine<'a> {
    fn current(&self) -> Option<&'a Step> {
        let def: &'a JourneyDefinition = self.def;
        self.state.position.as_deref().and_then(|id| def.step(id))
    }

    fn visit(&self, step: &str) -> u32 {
        self.state.visits.get(step).copied().unwrap_or(0)
    }

    fn key(&self, step: &str) -> IdempotencyKey {
        IdempotencyKey::step(self.state.run_id, step, self.visit(step))
    }

    /// Goal and exit settings; finishes the run and answers `true` if one holds.
    fn check_settings(&mut self, event: Option<(&str, &Map<String, Value>)>) -> bool {
        let s = &self.def.settings;
        let (facts, now) = (self.ctx.facts, self.ctx.now);
        let on_event = |m: &Machine, rule: &Option<super::EventMatch>| match (rule, event) {
            (Some(r), Some((name, props))) => m.event_matches(name, props, &r.event, &r.filters, r.match_key.as_ref()),
            _ => false,
        };
        if s.goal.as_ref().is_some_and(|c| c.matches(facts, now)) || on_event(self, &s.goal_event) {
            self.finish_with(FinishReason::Goal { name: None });
            return true;
        }
        if s.exit_condition.as_ref().is_some_and(|c| c.matches(facts, now)) || on_event(self, &s.exit_event) {
            self.finish_with(FinishReason::ExitCondition);
            return true;
        }
        false
    }

    fn event_matches(
        &self,
        name: &str,
        props: &Map<String, Value>,
        event: &str,
        filters: &[PropertyFilter],
        match_key: Option<&String>,
    ) -> bool {
        if name != event
            || !filters
                .iter()
                .all(|f| f.test.holds(props.get(&f.property), self.ctx.now))
        {
            return false;
        }
        match match_key {
            None => true,
            Some(k) => match (self.state.captured.get(k), props.get(k).and_then(match_value)) {
                (Some(want), Some(got)) => *want == got,
                _ => false,
            },
        }
    }

    fn emit(&mut self, name: &str, mut properties: Value, idempotency_key: IdempotencyKey, counts: Option<StepCount>) {
        properties["journey_id"] = json!(self.state.journey_id);
        properties["version"] = json!(self.state.version);
        properties["run_id"] = json!(self.state.run_id);
        self.effects.push(Command::EmitEvent {
            name: name.to_string(),
            properties,
            idempotency_key,
            counts,
        });
    }

    /// Leaves the current step by its exit `label` for `id`.
    fn leave(&mut self, label: &'static str, id: Option<StepId>) {
        self.exit = Some(label);
        self.enter(id);
    }

    /// Leaves the current step by an exit whose label is computed (`cases[2].next`).
    fn leave_by(&mut self, label: String, id: Option<StepId>) {
        self.exit_owned = Some(label);
        self.enter(id);
    }

    /// The exit being taken, as event properties (`from_step`, `exit`).
    /// Notes the exit taken from the current step on an event's properties
    /// (`from_step`, `exit`) and returns it as `(step, exit)`.
    fn taken_exit(&mut self, props: &mut Value) -> Option<(String, String)> {
        let label = self.exit.take().map(str::to_string).or_else(|| self.exit_owned.take());
        let (Some(label), Some(from)) = (label, &self.state.position) else {
            return None;
        };
        props["from_step"] = json!(from);
        props["exit"] = json!(label);
        Some((from.clone(), label))
    }

    /// Moves the run to a step (`None`: the path ends, the run completes).
    fn enter(&mut self, id: Option<StepId>) {
        let Some(id) = id else {
            self.finish_with(FinishReason::Completed);
            return;
        };
        let Some(step) = self.def.step(&id) else {
            self.finish_with(FinishReason::StepNotFound { step: id });
            return;
        };
        if self.steps >= MAX_STEPS_PER_TRANSITION {
            self.finish_with(FinishReason::StepLimit);
            return;
        }
        self.steps += 1;
        let mut props = json!({"step": id, "step_type": step.kind.type_name()});
        let left = self.taken_exit(&mut props);
        *self.state.visits.entry(id.clone()).or_default() += 1;
        self.state.position = Some(id.clone());
        self.state.step_entered_at = self.ctx.now;
        self.state.waiting = None;
        let visit = self.state.visits[&id];
        let key = IdempotencyKey::reached(self.state.run_id, &id, visit);
        props["visit"] = json!(visit);
        let counts = StepCount {
            journey_id: self.state.journey_id,
            reached: Some(id.clone()),
            left,
        };
        self.emit(event_names::JOURNEY_STEP_REACHED, props, key, Some(counts));
    }

    fn wait(&mut self, what: WaitingFor, due: Millis) {
        let id = self.state.position.clone().unwrap_or_default();
        self.state.timers += 1;
        let timer_key = IdempotencyKey::timer(self.state.run_id, &id, self.visit(&id), self.state.timers).into_string();
        self.state.waiting = Some(Waiting { timer_key, due, what });
    }

    fn finish_with(&mut self, reason: FinishReason) {
        let now = self.ctx.now;
        let name = match reason {
            FinishReason::Goal { .. } => event_names::JOURNEY_GOAL_REACHED,
            FinishReason::Completed => event_names::JOURNEY_COMPLETED,
            _ => event_names::JOURNEY_EXITED,
        };
        let mut props = json!({"reason": reason.as_str()});
        if let Some(step) = &self.state.position {
            props["step"] = json!(step);
        }
        let left = self.taken_exit(&mut props);
        if let FinishReason::Goal { name: Some(goal) } = &reason {
            props["goal"] = json!(goal);
        }
        let key = IdempotencyKey::finished(self.state.run_id);
        let counts = left.map(|left| StepCount {
            journey_id: self.state.journey_id,
            reached: None,
            left: Some(left),
        });
        self.emit(name, props, key, counts);
        self.state.status = RunStatus::Finished {
            reason: reason.clone(),
            at: now,
        };
        self.state.position = None;
        self.state.waiting = None;
        self.finish = Some(reason);
    }

    /// Executes steps from the current position until the run waits or finishes.
    fn run(&mut self) {
        let now = self.ctx.now;
        while self.finish.is_none() && self.state.waiting.is_none() {
            let Some(step) = self.current() else {
                let missing = self.state.position.clone().unwrap_or_default();
                self.finish_with(FinishReason::StepNotFound { step: missing });
                return;
            };
            let id = step.id.clone();
            match &step.kind {
                StepKind::Send {
                    template,
                    channel,
                    transactional,
                    best_time,
                    next,
                } => {
                    if !transactional {
                        let s = &self.def.settings;
                        let released = self.best_time_released.as_deref() == Some(id.as_str());
                        if let (Some(best), Some(estimate), false) = (best_time, self.ctx.send_time, released) {
                            // The best allowed slot in the horizon; the caps are applied
                            // when it comes (below), as to any send.
                            let allowed = |t: Millis| {
                                let tz = self.ctx.time_zone;
                                let (q, w) = (s.quiet_hours.as_ref(), s.send_window.as_ref());
                                next_allowed_send(t, tz, q, w, &[], channel.as_deref(), &[]).0
                            };
                            if let Some(choice) = estimate.choose(now, best.horizon(), allowed)
                                && choice.at > now
                            {
                                self.wait(
                                    WaitingFor::Send {
                                        reason: DeferReason::BestTime,
                                    },
                                    choice.at,
                                );
                                return;
                            }
                        }
                        let (at, reason) = next_allowed_send(
                            now,
                            self.ctx.time_zone,
                            s.quiet_hours.as_ref(),
                            s.send_window.as_ref(),
                            self.ctx.caps,
                            channel.as_deref(),
                            &self.sent,
                        );
                        if let (true, Some(reason)) = (at > now, reason) {
                            self.wait(WaitingFor::Send { reason }, at);
                            return;
                        }
                        self.sent.push(SentMessage {
                            channel: channel.clone(),
                            at: now,
                        });
                    }
                    let key = self.key(&id);
                    self.state.sent.insert(id.clone(), key.to_string());
                    self.state.outcomes.remove(&id);
                    self.effects.push(Command::Send {
                        visit: self.visit(&id),
                        step: id,
                        template: template.clone(),
                        channel: channel.clone(),
                        transactional: *transactional,
                        idempotency_key: key,
                    });
                    self.leave("next", next.clone());
                }
                StepKind::Wait { duration, next } => {
                    let ms = duration.as_millis();
                    if ms > 0 {
                        self.wait(WaitingFor::Time, now.saturating_add(ms));
                    } else {
                        self.leave("next", next.clone());
                    }
                }
                StepKind::WaitUntil { time, days, next } => {
                    let at = next_local_time(now, self.ctx.time_zone, time, days);
                    if at > now {
                        self.wait(WaitingFor::Time, at);
                    } else {
                        self.leave("next", next.clone());
                    }
                }
                StepKind::WaitForEvent {
                    event,
                    match_key,
                    timeout,
                    ..
                } => {
                    let what = WaitingFor::Event {
                        event: event.clone(),
                        match_key: match_key.clone(),
                    };
                    self.wait(what, now.saturating_add(timeout.as_millis().max(1)));
                }
                StepKind::Branch {
                    condition,
                    message,
                    yes,
                    no,
                } => {
                    let holds = match (condition, message) {
                        (Some(c), _) => c.matches(self.ctx.facts, now),
                        (None, Some(t)) => self
                            .state
                            .outcomes
                            .get(&t.step)
                            .is_some_and(|heard| heard.contains(&t.outcome)),
                        (None, None) => false,
                    };
                    if holds {
                        self.leave("yes", yes.clone());
                    } else {
                        self.leave("no", no.clone());
                    }
                }
                StepKind::MultiBranch { cases, default } => {
                    match cases.iter().position(|c| c.condition.matches(self.ctx.facts, now)) {
                        Some(i) => self.leave_by(format!("cases[{i}].next"), cases[i].next.clone()),
                        None => self.leave("default", default.clone()),
                    }
                }
                StepKind::Split { variants } => {
                    let index = match self.state.variants.get(&id) {
                        Some(&i) if i < variants.len() => i,
                        _ => {
                            let draw = split_bucket(self.state.run_id, &id) as u32;
                            let mut total = 0u32;
                            let pick = variants.iter().position(|v| {
                                total += v.percent as u32;
                                draw < total
                            });
                            pick.unwrap_or(variants.len().saturating_sub(1))
                        }
                    };
                    self.state.variants.insert(id.clone(), index);
                    let next = variants.get(index).and_then(|v| v.next.clone());
                    self.leave_by(format!("variants[{index}].next"), next);
                }
                StepKind::UpdateContact {
                    set,
                    unset,
                    add_tags,
                    remove_tags,
                    add_lists,
                    remove_lists,
                    lead_score,
                    next,
                } => {
                    let update = ContactUpdate {
                        set: set.clone(),
                        unset: unset.clone(),
                        add_tags: add_tags.clone(),
                        remove_tags: remove_tags.clone(),
                        add_lists: add_lists.clone(),
                        remove_lists: remove_lists.clone(),
                        lead_score: *lead_score,
                    };
                    let key = self.key(&id);
                    self.effects.push(Command::UpdateContact {
                        step: id,
                        update,
                        idempotency_key: key,
                    });
                    self.leave("next", next.clone());
                }
                StepKind::Webhook { template, next } => {
                    let key = self.key(&id);
                    self.effects.push(Command::CallWebhook {
                        visit: self.visit(&id),
                        step: id,
                        template: template.clone(),
                        idempotency_key: key,
                    });
                    self.leave("next", next.clone());
                }
                StepKind::Goal { name } => self.finish_with(FinishReason::Goal { name: name.clone() }),
                StepKind::Exit => self.finish_with(FinishReason::Exited),
            }
        }
    }

    /// The transition: effects, then the timer and listen changes against the old
    /// state, then `Finish`.
    fn done(mut self, old: &RunState) -> Transition {
        let mut commands = std::mem::take(&mut self.effects);
        let old_timer = old.waiting.as_ref().map(|w| (&w.timer_key, w.due));
        let new_timer = self.state.waiting.as_ref().map(|w| (&w.timer_key, w.due));
        if old_timer != new_timer {
            if let Some((key, _)) = old_timer {
                commands.push(Command::CancelTimer { key: key.clone() });
            }
            if let Some((key, at)) = new_timer {
                commands.push(Command::ScheduleTimer { key: key.clone(), at });
            }
        }
        let (before, after) = (old.event_waits(self.def), self.state.event_waits(self.def));
        if before != after || self.relisten {
            commands.push(Command::ListenFor { waits: after });
        }
        if let Some(reason) = self.finish {
            commands.push(Command::Finish { reason });
        }
        Transition {
            state: self.state,
            commands,
        }
    }
}

/// A contact's earlier run of the same journey, for [`may_enter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousRun {
    pub entered_at: Millis,
    /// `None` while the run is active.
    pub finished_at: Option<Millis>,
}

/// Why a contact may not enter a journey now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the contact does not match the journey's entry filter")]
    EntryFilter,
    #[error("the contact has been in this journey before and re-entry is off")]
    AlreadyEntered,
    #[error("the contact entered this journey too recently; re-entry is allowed from {allowed_at}")]
    TooSoon { allowed_at: Millis },
    #[error("the contact already has {active} active run(s) of this journey (at most {max})")]
    TooManyRuns { active: usize, max: u32 },
    #[error("the contact already meets the journey's goal")]
    GoalMet,
    #[error("the contact meets the journey's exit condition")]
    ExitConditionMet,
}

/// Whether a contact may start a new run of the journey now, given its earlier runs
/// of the same journey (any version): re-entry, concurrency, entry filter, and goal
/// and exit conditions that already hold.
pub fn may_enter(def: &JourneyDefinition, facts: &Facts, previous: &[PreviousRun], now: Millis) -> Result<(), Refusal> {
    let s = &def.settings;
    match s.re_entry {
        ReEntry::Never if !previous.is_empty() => return Err(Refusal::AlreadyEntered),
        ReEntry::After { days } => {
            if let Some(last) = previous.iter().map(|p| p.entered_at).max() {
                let allowed_at = last.saturating_add(days as Millis * DAY_MS);
                if now < allowed_at {
                    return Err(Refusal::TooSoon { allowed_at });
                }
            }
        }
        _ => {}
    }
    let active = previous.iter().filter(|p| p.finished_at.is_none()).count();
    let max = s.max_concurrent_runs.max(1);
    if active >= max as usize {
        return Err(Refusal::TooManyRuns { active, max });
    }
    if s.entry_filter.as_ref().is_some_and(|c| !c.matches(facts, now)) {
        return Err(Refusal::EntryFilter);
    }
    if s.goal.as_ref().is_some_and(|c| c.matches(facts, now)) {
        return Err(Refusal::GoalMet);
    }
    if s.exit_condition.as_ref().is_some_and(|c| c.matches(facts, now)) {
        return Err(Refusal::ExitConditionMet);
    }
    Ok(())
}
