//! The journey engine: moves runs forward. It takes events from the journey inbox
//! (queued with the event, so none is lost) and timers that came due, asks the pure
//! core (`nudge_core::journey::step`) what each run does next, and stores the new
//! state with everything it causes — timers, event waits, outbox messages, timeline
//! events — in one transaction (`RunWrite`). Sends carry idempotency keys derived from
//! run, step and visit, so a transition computed twice after a crash queues nothing
//! twice.
//!
//! Starting a run: the run is stored first with a `start` timer due at once and the
//! trigger's properties, then started; if the process dies in between, the timer
//! starts it.
//!
//! `update_contact` steps change the contact in the transaction that stores the
//! transition (`RunWrite::contact_updates`).

use nudge_core::journey::{
    self, Command, Context, FrequencyCap, Input, JourneyDefinition, MessageOutcomeKind, NameOrId, PreviousRun,
    RunState, SentMessage, Trigger,
};
use nudge_core::segment::Facts;
use nudge_core::{Clock, ContactId, Millis};
use nudge_store::{
    ClearTimers, DueTimer, InboxEvent, Journey, JourneyStatus, MessageQuery, MessageState, NewMessage, NewRun, Run,
    RunWrite, Store,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

mod entries;

#[derive(Debug, Clone)]
pub struct JourneyEngineConfig {
    /// Inbox events and timers taken per round.
    pub batch: usize,
    /// How long a claim lasts before another worker may take it.
    pub lease_ms: i64,
    /// Sleep when idle (woken earlier by [`JourneyEngine::wake`]).
    pub idle: Duration,
    /// The time zone of contacts without one (IANA name).
    pub time_zone: String,
}

impl Default for JourneyEngineConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            lease_ms: 60_000,
            idle: Duration::from_millis(500),
            time_zone: "UTC".into(),
        }
    }
}

/// What the journey index was computed from: id, status, published version, update time.
type Signature = Vec<(i64, JourneyStatus, Option<i64>, Millis)>;

/// The timer that starts a stored run (see the module documentation).
const START_TIMER: &str = "start";

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundStats {
    pub events: usize,
    pub timers: usize,
    pub started: usize,
    pub transitions: usize,
    /// When the run timers this round fired were due (their lateness is the time of
    /// the round's commit minus these).
    pub fired: Vec<Millis>,
}

impl RoundStats {
    pub fn busy(&self) -> bool {
        self.events + self.timers > 0
    }
}

/// The work of one round: transitions are written together at the end (one
/// transaction), and a run advanced twice in a round sees its own newest state.
#[derive(Default)]
struct Round {
    stats: RoundStats,
    writes: Vec<RunWrite>,
    /// Runs as this round left them.
    runs: HashMap<i64, Run>,
    queued: bool,
    /// The workspace's frequency caps (the `frequency_caps` setting).
    caps: Vec<FrequencyCap>,
    /// Marketing messages queued this round, per contact (not committed yet, but
    /// they count against the caps).
    sends: HashMap<ContactId, Vec<SentMessage>>,
    /// Runs to store together (one transaction) before they start: see
    /// [`JourneyEngine::flush_starts`].
    starts: Vec<PendingStart>,
    /// How many of `starts` each (journey, contact) has.
    pending: HashMap<(i64, ContactId), usize>,
    /// The contacts of `starts`.
    pending_contacts: std::collections::HashSet<ContactId>,
}

/// A run that may enter, not stored yet.
struct PendingStart {
    new: NewRun,
    first: RunWrite,
    properties: Map<String, Value>,
    /// When it starts (its `start` timer).
    at: Millis,
}

impl Round {
    fn has_pending(&self, contact: ContactId) -> bool {
        self.pending_contacts.contains(&contact)
    }
}

pub struct JourneyEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: JourneyEngineConfig,
    wake: Notify,
    /// Parsed definitions by (journey, version).
    definitions: Mutex<HashMap<(i64, i64), Arc<JourneyDefinition>>>,
    /// The journeys list the event names were last computed from.
    indexed: Mutex<Option<Signature>>,
    /// Called after messages were queued (wakes the delivery worker).
    on_messages: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// Held by a round, and by a version move, so the two never compute transitions
    /// of the same run at once.
    round_lock: tokio::sync::Mutex<()>,
}

/// What [`JourneyEngine::move_runs`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MoveReport {
    /// Runs now on the new version.
    pub moved: usize,
    /// Active runs left on their version (at a step the mapping does not name).
    pub stayed: usize,
}

impl JourneyEngine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: JourneyEngineConfig) -> Arc<Self> {
        Arc::new(JourneyEngine {
            store,
            clock,
            config,
            wake: Notify::new(),
            definitions: Mutex::new(HashMap::new()),
            indexed: Mutex::new(None),
            on_messages: Mutex::new(None),
            round_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Something changed (events stored, a journey published): work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Brings the event names journeys act on up to date with the stored journeys
    /// now (rounds do it too; a caller that just published a journey calls this so
    /// events it sends next are queued for it).
    pub async fn listen(&self) -> nudge_store::Result<()> {
        let journeys = self.store.journeys().await?;
        self.index(&journeys).await
    }

    /// Calls the `on_messages` callback if the round queued messages.
    fn notify_messages(&self, round: &Round) {
        if round.queued
            && let Some(f) = self.on_messages.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        {
            f();
        }
    }

    /// `f` is called whenever a round queued messages.
    pub fn on_messages(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.on_messages.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(f));
    }

    /// Runs rounds until `stop` resolves: at once while busy, otherwise when woken,
    /// when the next timer is due, or after `idle` (the loop:
    /// [`nudge_worker::run_worker`]).
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let this = &*self;
        let config = nudge_worker::WorkerConfig::new("journey engine", this.config.idle);
        nudge_worker::run_worker(config, &this.wake, stop, move || async move {
            if this.run_once().await?.busy() {
                return Ok(nudge_worker::Outcome::Busy);
            }
            let next = this.store.next_timer_due().await?;
            Ok::<_, nudge_store::StoreError>(nudge_worker::Outcome::idle_until(next, this.clock.now()))
        })
        .await
    }

    /// One round: inbox events, then due timers; their transitions are written in one
    /// transaction, then the inbox events are acknowledged.
    pub async fn run_once(&self) -> nudge_store::Result<RoundStats> {
        let _round = self.round_lock.lock().await;
        let journeys = self.store.journeys().await?;
        self.index(&journeys).await?;
        let now = self.clock.now();
        self.schedule_entries(&journeys, now).await?;
        let mut round = Round {
            caps: self.caps().await?,
            ..Default::default()
        };
        let events = self
            .store
            .claim_journey_inbox(now, self.config.batch, self.config.lease_ms)
            .await?;
        for e in &events {
            if round.has_pending(e.contact_id) {
                self.flush_starts(now, &mut round).await?;
            }
            if entries::is_traits_changed(e) {
                self.on_traits_changed(&journeys, e.contact_id, now).await?;
            } else {
                self.on_event(&journeys, e, now, &mut round).await?;
            }
        }
        self.flush_starts(now, &mut round).await?;
        round.stats.events = events.len();
        let timers = self
            .store
            .claim_timers(now, self.config.batch, self.config.lease_ms)
            .await?;
        let status: HashMap<i64, JourneyStatus> = journeys.iter().map(|j| (j.id, j.status)).collect();
        // The timers' runs, loaded at once (those this round already moved are newer).
        let ids: Vec<i64> = timers
            .iter()
            .map(|t| t.run_id)
            .filter(|id| !round.runs.contains_key(id))
            .collect();
        for r in self.store.runs(ids).await? {
            round.runs.insert(r.id, r);
        }
        // Timers due at the same moment go by journey priority, so when sends compete
        // for a frequency cap's slot the higher-priority journey's message takes it
        // (the others are deferred to the next slot).
        let priority: HashMap<i64, i64> = journeys.iter().map(|j| (j.id, j.priority)).collect();
        let mut timers = timers;
        timers.sort_by_key(|t| {
            let p = round
                .runs
                .get(&t.run_id)
                .and_then(|r| priority.get(&r.journey_id))
                .copied()
                .unwrap_or(0);
            (t.due_at, std::cmp::Reverse(p), t.run_id)
        });
        for t in &timers {
            self.on_timer(t, &status, now, &mut round).await?;
        }
        round.stats.fired = timers.iter().map(|t| t.due_at).collect();
        round.stats.timers = timers.len() + self.entry_timers(&journeys, now, &mut round).await?;
        self.flush_starts(now, &mut round).await?;
        let mut stale = Vec::new();
        if !round.writes.is_empty() {
            stale = self.store.write_runs(std::mem::take(&mut round.writes), now).await?;
        }
        // Another worker moved these runs while this round computed theirs (several
        // processes on PostgreSQL): their transitions were not written. Their timers
        // stay claimed and come back when the lease ends; their contacts' events stay
        // in the inbox (not acknowledged) and are handled again then.
        let stale_contacts: std::collections::HashSet<ContactId> = stale
            .iter()
            .filter_map(|id| round.runs.get(id).map(|r| r.contact_id))
            .collect();
        if !stale.is_empty() {
            tracing::warn!(runs = ?stale, "runs moved on by another worker; their inputs come back");
        }
        let acked: Vec<i64> = events
            .iter()
            .filter(|e| !stale_contacts.contains(&e.contact_id))
            .map(|e| e.id)
            .collect();
        if !acked.is_empty() {
            self.store.ack_journey_inbox(acked).await?;
        }
        self.notify_messages(&round);
        Ok(round.stats)
    }

    /// Moves the active runs of `journey` that follow another version than `to` onto
    /// `to`, where `mapping` names their step (old step id → step id of `to`): each
    /// leaves its wait and enters the mapped step (`Input::Move`; a wait of the same
    /// kind keeps the time already waited). Runs at steps the mapping does not name
    /// stay on their version. Each move is one transition, written like any other.
    pub async fn move_runs(
        &self,
        journey: i64,
        to: i64,
        mapping: &std::collections::BTreeMap<String, String>,
    ) -> nudge_store::Result<MoveReport> {
        let _round = self.round_lock.lock().await;
        let mut report = MoveReport::default();
        let Some(new_def) = self.definition(journey, to).await? else {
            return Ok(report);
        };
        let mut after = 0;
        loop {
            let page = self.store.active_runs(journey, after, self.config.batch).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            let now = self.clock.now();
            let mut round = Round {
                caps: self.caps().await?,
                ..Default::default()
            };
            for run in page.iter().filter(|r| r.version != to) {
                let target = run.step.as_ref().and_then(|s| mapping.get(s));
                let state = serde_json::from_value::<RunState>(run.state.clone()).ok();
                let (Some(target), Some(state)) = (target, state) else {
                    report.stayed += 1;
                    continue;
                };
                let old_def = self.definition(journey, run.version).await?;
                let kind = |d: &JourneyDefinition, id: &str| d.step(id).map(|s| s.kind.type_name());
                let old_kind = old_def
                    .as_deref()
                    .zip(run.step.as_deref())
                    .and_then(|(d, id)| kind(d, id));
                let waited_since = (old_kind.is_some()
                    && old_kind == kind(&new_def, target)
                    && matches!(old_kind, Some("wait" | "wait_for_event")))
                .then_some(state.step_entered_at);
                let input = Input::Move {
                    step: target.clone(),
                    version: to,
                    waited_since,
                };
                let before = round.writes.len();
                self.advance(run, input, None, now, &mut round).await?;
                if round.writes.len() > before {
                    report.moved += 1;
                } else {
                    report.stayed += 1; // nothing to move (not started, or no definition)
                }
            }
            if !round.writes.is_empty() {
                self.store.write_runs(std::mem::take(&mut round.writes), now).await?;
            }
            self.notify_messages(&round);
        }
        tracing::info!(
            journey,
            to,
            moved = report.moved,
            stayed = report.stayed,
            "runs moved to a new version"
        );
        Ok(report)
    }

    /// The workspace's frequency caps (setting `frequency_caps`, a JSON list); an
    /// unreadable setting is reported and ignored.
    async fn caps(&self) -> nudge_store::Result<Vec<FrequencyCap>> {
        frequency_caps(&*self.store).await
    }

    /// The contact's marketing messages in the longest cap period: queued or sent
    /// (failed, bounced and suppressed ones do not count), and those of this round.
    async fn recent_sends(
        &self,
        contact: ContactId,
        now: Millis,
        round: &Round,
    ) -> nudge_store::Result<Vec<SentMessage>> {
        let horizon = round.caps.iter().map(|c| c.per.millis()).max().unwrap_or(0);
        let page = self
            .store
            .list_messages(&MessageQuery {
                contact_id: Some(contact),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        let mut out: Vec<SentMessage> = page
            .items
            .iter()
            .filter(|m| !m.transactional)
            .filter(|m| {
                matches!(
                    m.state,
                    MessageState::Queued | MessageState::Sent | MessageState::Delivered
                )
            })
            .map(|m| SentMessage {
                channel: Some(m.channel.clone()),
                at: m.sent_at.unwrap_or(m.created_at),
            })
            .filter(|s| s.at > now - horizon)
            .collect();
        out.extend(round.sends.get(&contact).cloned().unwrap_or_default());
        Ok(out)
    }

    /// Keeps `journey_event_names` in step with the journeys (only when they changed).
    async fn index(&self, journeys: &[Journey]) -> nudge_store::Result<()> {
        let signature: Signature = journeys
            .iter()
            .map(|j| (j.id, j.status, j.published_version, j.updated_at))
            .collect();
        if self.indexed.lock().unwrap_or_else(|e| e.into_inner()).as_ref() == Some(&signature) {
            return Ok(());
        }
        let mut names = BTreeSet::new();
        for j in journeys.iter().filter(|j| j.status != JourneyStatus::Draft) {
            // Runs may follow any version: index what every version listens for.
            for v in 1..=j.version {
                let Some(def) = self.definition(j.id, v).await? else {
                    continue;
                };
                names.extend(event_names(&def));
                names.extend(entries::trait_names(&def));
            }
        }
        self.store.set_journey_event_names(names.into_iter().collect()).await?;
        *self.indexed.lock().unwrap_or_else(|e| e.into_inner()) = Some(signature);
        Ok(())
    }

    async fn definition(&self, journey: i64, version: i64) -> nudge_store::Result<Option<Arc<JourneyDefinition>>> {
        if let Some(d) = self
            .definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(journey, version))
        {
            return Ok(Some(d.clone()));
        }
        let Some(v) = self.store.journey_version(journey, version).await? else {
            return Ok(None);
        };
        match journey::parse_journey(&v.definition) {
            Ok(mut def) => {
                resolve_send_channels(&*self.store, &mut def).await?;
                let def = Arc::new(def);
                self.definitions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((journey, version), def.clone());
                Ok(Some(def))
            }
            Err(errors) => {
                tracing::error!(journey, version, ?errors, "a stored journey version does not parse");
                Ok(None)
            }
        }
    }

    /// An event from the inbox: starts the live journeys it triggers, then feeds it to
    /// the contact's active runs (waits, goals, exits). Returns whether messages were
    /// queued.
    async fn on_event(
        &self,
        journeys: &[Journey],
        e: &InboxEvent,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        let properties = e.properties.as_object().cloned().unwrap_or_default();
        let active: Vec<Run> = self
            .store
            .contact_runs(e.contact_id, None)
            .await?
            .into_iter()
            .map(|r| round.runs.get(&r.id).cloned().unwrap_or(r))
            .filter(Run::is_active)
            .collect();
        // A message's outcome goes to the run that sent it (its key is in the run's
        // state), as `MessageOutcome`.
        if let (Some(outcome), Some(message_id)) = (
            outcome_of(&e.name),
            e.properties.get("message_id").and_then(Value::as_i64),
        ) && let Some(m) = self.store.message(message_id).await?
            && m.idempotency_key.starts_with("run-")
        {
            for run in &active {
                let Ok(state) = serde_json::from_value::<RunState>(run.state.clone()) else {
                    continue;
                };
                if let Some((step, _)) = state.sent.iter().find(|(_, k)| **k == m.idempotency_key) {
                    let input = Input::MessageOutcome {
                        step: step.clone(),
                        key: m.idempotency_key.clone(),
                        outcome,
                    };
                    self.advance(run, input, None, now, round).await?;
                }
            }
        }
        let active: Vec<Run> = active
            .into_iter()
            .map(|r| round.runs.get(&r.id).cloned().unwrap_or(r))
            .collect();
        let mut priority: Vec<&Journey> = journeys
            .iter()
            .filter(|j| j.status == JourneyStatus::Live && j.published_version.is_some())
            .collect();
        priority.sort_by_key(|j| std::cmp::Reverse(j.priority));
        for run in active {
            if run.state.get("run_id").is_none() {
                continue; // not started yet: its start timer will.
            }
            match journeys.iter().find(|j| j.id == run.journey_id).map(|j| j.status) {
                // A paused journey's runs hold: what they wait for is not heard.
                Some(JourneyStatus::Paused) => continue,
                Some(JourneyStatus::Stopped) | None => {
                    self.advance(&run, Input::Stop, None, now, round).await?;
                    continue;
                }
                _ => {}
            }
            let input = Input::Event {
                name: e.name.clone(),
                properties: properties.clone(),
                at: e.at,
            };
            self.advance(&run, input, None, now, round).await?;
        }
        for j in priority {
            let version = j.published_version.unwrap_or(j.version);
            let Some(def) = self.definition(j.id, version).await? else {
                continue;
            };
            if !def.trigger.matches_event(&e.name, &properties, now) {
                continue;
            }
            self.start(
                j.id,
                version,
                &def,
                e.contact_id,
                properties.clone(),
                format!("event-{}", e.event_id),
                now,
                round,
            )
            .await?;
        }
        Ok(())
    }

    /// Starts a run of a live journey with an `api` trigger for `contact` now, with the
    /// caller's properties (a trigger event's, for templates and match keys).
    /// `entry_key` makes it idempotent. `Ok(Err(why))` when no run starts.
    pub async fn start_by_api(
        &self,
        journey: &Journey,
        contact: ContactId,
        properties: Map<String, Value>,
        entry_key: String,
    ) -> nudge_store::Result<Result<Run, String>> {
        if journey.status != JourneyStatus::Live {
            return Ok(Err(format!("the journey is {}, not live", journey.status.as_str())));
        }
        let version = journey.published_version.unwrap_or(journey.version);
        let Some(def) = self.definition(journey.id, version).await? else {
            return Ok(Err("the published version does not parse".into()));
        };
        if !matches!(def.trigger, Trigger::Api) {
            return Ok(Err(
                "the journey is not started by the API (its trigger is not `api`)".into()
            ));
        }
        // A round must not fire this run's `start` timer while it is being started.
        let _round = self.round_lock.lock().await;
        let now = self.clock.now();
        let mut round = Round {
            caps: self.caps().await?,
            ..Default::default()
        };
        let before = round.stats.started;
        self.start(
            journey.id, version, &def, contact, properties, entry_key, now, &mut round,
        )
        .await?;
        self.flush_starts(now, &mut round).await?;
        if round.stats.started == before {
            return Ok(Err(
                "the contact may not enter now (re-entry, concurrency, entry filter or goal), or this key started a run already"
                    .into(),
            ));
        }
        let run_id = round.runs.keys().next().copied();
        if !round.writes.is_empty() {
            self.store.write_runs(std::mem::take(&mut round.writes), now).await?;
        }
        self.notify_messages(&round);
        match run_id {
            Some(id) => Ok(self.store.run(id).await?.ok_or_else(|| "the run vanished".to_string())),
            None => Ok(Err("no run started".into())),
        }
    }

    /// Starts a run if the contact may enter.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        journey: i64,
        version: i64,
        def: &JourneyDefinition,
        contact: ContactId,
        properties: Map<String, Value>,
        entry_key: String,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        self.start_at(journey, version, def, contact, properties, entry_key, now, now, round)
            .await
    }

    /// Stores a run if the contact may enter now, starting at `at` (its `start` timer
    /// is due then; at once when `at` is now or past).
    #[allow(clippy::too_many_arguments)]
    async fn start_at(
        &self,
        journey: i64,
        version: i64,
        def: &JourneyDefinition,
        contact: ContactId,
        properties: Map<String, Value>,
        entry_key: String,
        at: Millis,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        let facts = if needs_facts(def) {
            match self.store.contact_facts(contact).await? {
                Some(f) => f,
                None => return Ok(()),
            }
        } else {
            Facts {
                contact_id: contact,
                ..Default::default()
            }
        };
        // Earlier runs as this round left them, and the runs it is about to store.
        let mut previous: Vec<PreviousRun> = self
            .store
            .contact_runs(contact, Some(journey))
            .await?
            .iter()
            .map(|r| {
                let r = round.runs.get(&r.id).unwrap_or(r);
                PreviousRun {
                    entered_at: r.entered_at,
                    finished_at: r.finished_at,
                }
            })
            .collect();
        for _ in 0..round.pending.get(&(journey, contact)).copied().unwrap_or(0) {
            previous.push(PreviousRun {
                entered_at: now,
                finished_at: None,
            });
        }
        if let Err(refusal) = journey::may_enter(def, &facts, &previous, now) {
            tracing::debug!(journey, contact, %refusal, "not entering");
            return Ok(());
        }
        let pending = json!({"pending_start": properties});
        round.starts.push(PendingStart {
            new: NewRun {
                journey_id: journey,
                version,
                contact_id: contact,
                entry_key: Some(entry_key),
            },
            first: RunWrite {
                state: pending,
                set_timers: vec![(START_TIMER.into(), at.max(now))],
                ..Default::default()
            },
            properties,
            at,
        });
        *round.pending.entry((journey, contact)).or_default() += 1;
        round.pending_contacts.insert(contact);
        Ok(())
    }

    /// Stores the round's pending runs in one transaction, then starts those due now.
    /// Called before anything else touches their contacts, and before the round's
    /// writes.
    async fn flush_starts(&self, now: Millis, round: &mut Round) -> nudge_store::Result<()> {
        if round.starts.is_empty() {
            return Ok(());
        }
        let starts = std::mem::take(&mut round.starts);
        round.pending.clear();
        round.pending_contacts.clear();
        let stored = self
            .store
            .start_runs(starts.iter().map(|p| (p.new.clone(), p.first.clone())).collect(), now)
            .await?;
        for (p, run) in starts.into_iter().zip(stored) {
            let Some(run) = run else {
                continue; // this trigger already started a run
            };
            round.stats.started += 1;
            round.runs.insert(run.id, run.clone());
            if p.at > now {
                continue; // its start timer starts it
            }
            self.advance(
                &run,
                Input::Start {
                    properties: p.properties,
                },
                Some(START_TIMER),
                now,
                round,
            )
            .await?;
        }
        Ok(())
    }

    async fn on_timer(
        &self,
        t: &DueTimer,
        status: &HashMap<i64, JourneyStatus>,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        let run = match round.runs.get(&t.run_id) {
            Some(r) => r.clone(),
            None => match self.store.run(t.run_id).await? {
                Some(r) => r,
                None => return Ok(()),
            },
        };
        if !run.is_active() {
            return Ok(());
        }
        match status.get(&run.journey_id) {
            // Paused: the timer stays leased and comes back when the lease runs out,
            // so the run holds until the journey is resumed.
            Some(JourneyStatus::Paused) => return Ok(()),
            Some(JourneyStatus::Stopped) | None => {
                return self.advance(&run, Input::Stop, Some(&t.key), now, round).await;
            }
            _ => {}
        }
        let input = match run.state.get("pending_start") {
            Some(p) if t.key == START_TIMER => Input::Start {
                properties: p.as_object().cloned().unwrap_or_default(),
            },
            _ => Input::Timer { key: t.key.clone() },
        };
        self.advance(&run, input, Some(&t.key), now, round).await
    }

    /// Feeds one input to one run and stores the transition. `fired`: a timer that
    /// came due for this input (removed unless the transition sets it again).
    async fn advance(
        &self,
        run: &Run,
        input: Input,
        fired: Option<&str>,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        // A move runs on the version it moves to.
        let moved_to = match &input {
            Input::Move { version, .. } => Some(*version),
            _ => None,
        };
        let Some(def) = self.definition(run.journey_id, moved_to.unwrap_or(run.version)).await? else {
            return Ok(());
        };
        let state: RunState = match serde_json::from_value(run.state.clone()) {
            Ok(s) => s,
            Err(_) => RunState::new(run.id, run.journey_id, run.contact_id, run.version, run.entered_at),
        };
        // Facts and time zone are loaded only for definitions that read them.
        let facts = if needs_facts(&def) {
            match self.store.contact_facts(run.contact_id).await? {
                Some(f) => f,
                None => return Ok(()),
            }
        } else {
            Facts {
                contact_id: run.contact_id,
                ..Default::default()
            }
        };
        let zone_name = if needs_time_zone(&def) {
            self.store.contact_time_zone(run.contact_id).await?
        } else {
            None
        };
        let tz = zone_name
            .as_deref()
            .and_then(|z| jiff::tz::TimeZone::get(z).ok())
            .or_else(|| jiff::tz::TimeZone::get(&self.config.time_zone).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let recent = if !round.caps.is_empty() && has_marketing_sends(&def) {
            self.recent_sends(run.contact_id, now, round).await?
        } else {
            vec![]
        };
        let caps = round.caps.clone();
        let ctx = Context {
            now,
            facts: &facts,
            time_zone: &tz,
            caps: &caps,
            recent_sends: &recent,
        };
        let revenue = match &input {
            Input::Event { properties, .. } => journey::revenue_of(properties),
            _ => None,
        };
        let t = journey::step(&def, &state, input, &ctx);
        if t.commands.is_empty() && t.state == state && fired.is_none() {
            return Ok(());
        }
        round.stats.transitions += 1;
        let mut write = RunWrite {
            run_id: run.id,
            step: t.state.position.clone(),
            state: serde_json::to_value(&t.state).unwrap_or(Value::Null),
            version: moved_to,
            expected_revision: Some(run.revision),
            ..Default::default()
        };
        let mut cleared: Vec<String> = fired.map(|k| vec![k.to_string()]).unwrap_or_default();
        let event =
            json!({"name": state.trigger.get("event").cloned().unwrap_or(Value::Null), "properties": t.state.trigger});
        for c in t.commands {
            match c {
                Command::Send {
                    step,
                    template,
                    channel,
                    transactional,
                    idempotency_key,
                } => match self
                    .message(
                        run,
                        &template,
                        channel.as_deref(),
                        transactional,
                        idempotency_key,
                        &event,
                    )
                    .await?
                {
                    Ok(m) => {
                        if !m.transactional {
                            round.sends.entry(run.contact_id).or_default().push(SentMessage {
                                channel: Some(m.channel.clone()),
                                at: now,
                            });
                        }
                        write.messages.push(m)
                    }
                    Err(reason) => write.events.push((
                        "Journey Message Skipped".into(),
                        json!({"journey_id": run.journey_id, "run_id": run.id, "step": step, "reason": reason}),
                        format!(
                            "run-{}-step-{step}-skipped-{}",
                            run.id,
                            state.visits.get(&step).unwrap_or(&0)
                        ),
                    )),
                },
                Command::CallWebhook {
                    step,
                    template,
                    idempotency_key,
                } => match self
                    .message(run, &template, Some("webhook"), true, idempotency_key, &event)
                    .await?
                {
                    Ok(m) => write.messages.push(m),
                    Err(reason) => write.events.push((
                        "Journey Message Skipped".into(),
                        json!({"journey_id": run.journey_id, "run_id": run.id, "step": step, "reason": reason}),
                        format!("run-{}-step-{step}-skipped", run.id),
                    )),
                },
                Command::ScheduleTimer { key, at } => write.set_timers.push((key, at)),
                Command::CancelTimer { key } => cleared.push(key),
                Command::ListenFor { waits } => {
                    write.waits = Some(waits.into_iter().map(|w| (w.event, w.key)).collect());
                }
                Command::UpdateContact {
                    update,
                    idempotency_key,
                    ..
                } => write.contact_updates.push((idempotency_key, update)),
                Command::EmitEvent {
                    name,
                    properties,
                    idempotency_key,
                } => write.events.push((name, properties, idempotency_key)),
                Command::Finish { reason } => {
                    if matches!(reason, journey::FinishReason::Goal { .. }) {
                        write.revenue = revenue;
                    }
                    write.finished = Some(reason.as_str().to_string())
                }
            }
        }
        // A re-scheduled key is set again after the clearing.
        write.clear_timers = ClearTimers::Keys(cleared);
        round.queued |= !write.messages.is_empty();
        let mut after = run.clone();
        after.state = write.state.clone();
        after.step = write.step.clone();
        after.version = moved_to.unwrap_or(run.version);
        after.revision = run.revision + 1;
        if write.finished.is_some() {
            after.step = None;
            after.finished_at = Some(now);
            after.finish_reason = write.finished.clone();
        }
        round.runs.insert(run.id, after);
        round.writes.push(write);
        Ok(())
    }

    /// The outbox message of a send step, or why there is none.
    async fn message(
        &self,
        run: &Run,
        template: &NameOrId,
        channel: Option<&str>,
        transactional: bool,
        idempotency_key: String,
        event: &Value,
    ) -> nudge_store::Result<Result<NewMessage, String>> {
        let t = match template {
            NameOrId::Id(id) => self.store.template(*id).await?,
            NameOrId::Name(name) => self.store.template_by_name(name).await?,
        };
        let Some(t) = t else {
            return Ok(Err(format!("no template {template:?}")));
        };
        if let Some(c) = channel
            && c != t.channel
        {
            return Ok(Err(format!("template {:?} is for {}, not {c}", t.name, t.channel)));
        }
        Ok(Ok(NewMessage {
            idempotency_key,
            contact_id: run.contact_id,
            template_id: t.id,
            template_version: t.version,
            channel: t.channel,
            transactional: transactional || t.transactional,
            data: json!({"event": event, "data": {}, "journey": {"id": run.journey_id, "run_id": run.id}}),
        }))
    }
}

/// The message outcome a timeline event reports, if it is one.
fn outcome_of(event: &str) -> Option<MessageOutcomeKind> {
    Some(match event {
        "Message Sent" => MessageOutcomeKind::Sent,
        "Message Delivered" => MessageOutcomeKind::Delivered,
        "Email Opened" => MessageOutcomeKind::Opened,
        "Email Link Clicked" => MessageOutcomeKind::Clicked,
        "Message Bounced" => MessageOutcomeKind::Bounced,
        "Message Failed" => MessageOutcomeKind::Failed,
        "Unsubscribed" => MessageOutcomeKind::Unsubscribed,
        _ => return None,
    })
}

/// The setting that holds the workspace's frequency caps.
pub const FREQUENCY_CAPS: &str = "frequency_caps";

/// Whether the definition has a marketing (capped) send.
fn has_marketing_sends(def: &JourneyDefinition) -> bool {
    def.steps.iter().any(|st| {
        matches!(
            st.kind,
            journey::StepKind::Send {
                transactional: false,
                ..
            }
        )
    })
}

/// Whether the definition reads the contact's facts (conditions anywhere).
fn needs_facts(def: &JourneyDefinition) -> bool {
    let s = &def.settings;
    s.entry_filter.is_some()
        || s.goal.is_some()
        || s.exit_condition.is_some()
        || def.steps.iter().any(|st| {
            matches!(
                &st.kind,
                journey::StepKind::Branch { condition: Some(_), .. } | journey::StepKind::MultiBranch { .. }
            )
        })
}

/// Whether the definition does anything in the contact's local time.
fn needs_time_zone(def: &JourneyDefinition) -> bool {
    let s = &def.settings;
    s.quiet_hours.is_some()
        || s.send_window.is_some()
        || matches!(def.trigger, Trigger::DateTrait { .. })
        || def
            .steps
            .iter()
            .any(|st| matches!(st.kind, journey::StepKind::WaitUntil { .. }))
}

/// The workspace's frequency caps (setting `frequency_caps`, a JSON list); an
/// unreadable setting is reported and ignored.
pub async fn frequency_caps(store: &dyn Store) -> nudge_store::Result<Vec<FrequencyCap>> {
    let Some(raw) = store.setting(FREQUENCY_CAPS).await? else {
        return Ok(vec![]);
    };
    Ok(serde_json::from_str(&raw).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the frequency_caps setting does not parse; no caps apply");
        vec![]
    }))
}

/// A send without a channel uses its template's: filled in here, so quiet hours and
/// frequency caps per channel apply to it (an unknown template leaves it unset).
pub async fn resolve_send_channels(store: &dyn Store, def: &mut JourneyDefinition) -> nudge_store::Result<()> {
    for step in &mut def.steps {
        if let journey::StepKind::Send {
            template,
            channel: channel @ None,
            ..
        } = &mut step.kind
        {
            let t = match template {
                NameOrId::Id(id) => store.template(*id).await?,
                NameOrId::Name(name) => store.template_by_name(name).await?,
            };
            *channel = t.map(|t| t.channel);
        }
    }
    Ok(())
}

/// The event names a definition acts on: its trigger, the events its steps wait for,
/// goal and exit events, and events its goal and exit conditions read.
pub fn event_names(def: &JourneyDefinition) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    names.extend(def.trigger.event_name().map(str::to_string));
    for step in &def.steps {
        if let journey::StepKind::WaitForEvent { event, .. } = &step.kind {
            names.insert(event.clone());
        }
    }
    if def
        .steps
        .iter()
        .any(|st| matches!(st.kind, journey::StepKind::Branch { message: Some(_), .. }))
    {
        for name in [
            "Message Sent",
            "Message Delivered",
            "Email Opened",
            "Email Link Clicked",
            "Message Bounced",
            "Message Failed",
            "Unsubscribed",
        ] {
            names.insert(name.to_string());
        }
    }
    let s = &def.settings;
    for m in [&s.goal_event, &s.exit_event].into_iter().flatten() {
        names.insert(m.event.clone());
    }
    for c in [&s.goal, &s.exit_condition].into_iter().flatten() {
        names.extend(c.event_names().into_iter().map(str::to_string));
    }
    names
}
