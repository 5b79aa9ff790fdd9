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

use nudge_core::attribution::ConversionSettings;
use nudge_core::journey::{
    self, Context, CorruptRunState, FrequencyCap, Input, JourneyDefinition, MessageOutcomeKind, NameOrId, PreviousRun,
    RunPhase, RunState, SentMessage, Trigger,
};
use nudge_core::protocol::{IdempotencyKey, event_names};
use nudge_core::segment::Facts;
use nudge_core::{Clock, ContactId, Millis};
use nudge_store::{
    DueTimer, InboxEvent, Journey, JourneyStatus, MessageQuery, MessageState, NewRun, Run, RunWrite, Store,
};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

mod advance;
mod entries;
mod round;
mod start;
mod transition;

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

/// What the journey index was computed from: id, status, published version, update
/// time of every journey, and the conversion events.
type Signature = (Vec<(i64, JourneyStatus, Option<i64>, Millis)>, Vec<String>);

/// The timer that starts a stored run (see the module documentation).
const START_TIMER: &str = IdempotencyKey::START;

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundStats {
    pub events: usize,
    pub timers: usize,
    pub started: usize,
    pub transitions: usize,
    /// Runs set aside because their state could not be read.
    pub set_aside: usize,
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
    /// The singleton lease under which this node sets entry timers when a
    /// time-triggered journey goes live; `None`: always (one process).
    entries_lease: Mutex<Option<Arc<crate::Singleton>>>,
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
            entries_lease: Mutex::new(None),
        })
    }

    /// Sets entry timers only while this node holds `lease`
    /// ([`crate::singleton::names::JOURNEY_ENTRIES`]); the rest of a round (inbox,
    /// timers, due entry timers, all claimed with leases) runs on every node.
    pub fn set_entries_lease(&self, lease: Arc<crate::Singleton>) {
        *self.entries_lease.lock().unwrap_or_else(|e| e.into_inner()) = Some(lease);
    }

    /// Whether this node sets entry timers now (see [`Self::set_entries_lease`]).
    fn sets_entries(&self) -> bool {
        self.entries_lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(|l| l.held())
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

    /// The workspace's frequency caps (setting `frequency_caps`, a JSON list); an
    /// unreadable setting is reported and ignored.
    async fn caps(&self) -> nudge_store::Result<Vec<FrequencyCap>> {
        frequency_caps(&*self.store).await
    }

    /// Keeps `journey_event_names` in step with the journeys (only when they changed).
    async fn index(&self, journeys: &[Journey]) -> nudge_store::Result<()> {
        let conversions = conversion_settings(&*self.store).await?.events;
        let signature: Signature = (
            journeys
                .iter()
                .map(|j| (j.id, j.status, j.published_version, j.updated_at))
                .collect(),
            conversions.clone(),
        );
        if self.indexed.lock().unwrap_or_else(|e| e.into_inner()).as_ref() == Some(&signature) {
            return Ok(());
        }
        // Conversions are attributed as the engine takes them from the inbox.
        let mut names: BTreeSet<String> = conversions.into_iter().collect();
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

    /// The contact's facts for a definition: loaded only when it reads them (conditions
    /// anywhere), else just the id. `None`: the contact is gone.
    async fn facts(&self, def: &JourneyDefinition, contact: ContactId) -> nudge_store::Result<Option<Facts>> {
        if !needs_facts(def) {
            return Ok(Some(Facts {
                contact_id: contact,
                ..Default::default()
            }));
        }
        self.store.contact_facts(contact).await
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

/// Whether the definition has a send held for the contact's best time.
fn has_best_time_sends(def: &JourneyDefinition) -> bool {
    def.steps.iter().any(|st| {
        matches!(
            st.kind,
            journey::StepKind::Send {
                transactional: false,
                best_time: Some(_),
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

/// A contact's marketing messages within the longest of `caps`' periods before `now`,
/// as frequency caps count them: queued or sent (failed, bounced and suppressed ones
/// do not count), journeys' and campaigns' alike.
pub(crate) async fn recent_sends(
    store: &dyn Store,
    contact: ContactId,
    now: Millis,
    caps: &[FrequencyCap],
) -> nudge_store::Result<Vec<SentMessage>> {
    let horizon = caps.iter().map(|c| c.per.millis()).max().unwrap_or(0);
    let page = store
        .list_messages(&MessageQuery {
            contact_id: Some(contact),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    Ok(page
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
        .collect())
}

/// The workspace's conversion settings (setting `conversion_settings`); an unreadable
/// setting is reported and the defaults apply.
pub async fn conversion_settings(store: &dyn Store) -> nudge_store::Result<ConversionSettings> {
    let Some(raw) = store.setting(ConversionSettings::KEY).await? else {
        return Ok(ConversionSettings::default());
    };
    Ok(serde_json::from_str(&raw).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the conversion_settings setting does not parse; the defaults apply");
        ConversionSettings::default()
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
        names.extend(event_names::MESSAGE_OUTCOMES.iter().map(|n| n.to_string()));
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
