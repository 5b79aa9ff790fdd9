//! What a write implies, decided once for both backends.
//!
//! A timeline event, a run's transition ([`RunWrite`]), a queued message or a
//! message event each imply more than their own row: journey-inbox rows, segment
//! re-evaluation marks, contact updates with their `Contact Updated` events, step and
//! exit counters. The functions here are pure: from the write and the facts the
//! backend read for it ([`Rules`], the run's row, the contact) they compute a plan of
//! primitive operations ([`Op`]); each backend's `exec` module only carries the plan
//! out in SQL, inside the caller's transaction.
//!
//! Architecture invariant: no SQL and no I/O here; no storage rule is decided in a
//! backend. A new rule (campaign counters, lead scores) is written here once.

use crate::Metric;
use crate::journeys::{ClearTimers, RunWrite, trait_event_name};
use crate::messages::{Message, MessageState, NewMessage};
use nudge_core::protocol::{
    CampaignCounter, IdempotencyKey, MessageEvent, MessageOrigin, StepCount, StepCounter, TimelineEvent, event_names,
};
use nudge_core::scoring::{ScoreChange, Scored, Scoring};
use nudge_core::{Contact, ContactId, Millis};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

/// What the event and trait names of the saved segments are (the write path marks a
/// contact for re-evaluation when a segment reads what changed).
#[derive(Debug, Default)]
pub(crate) struct SegmentIndex {
    pub any: bool,
    pub event_names: HashSet<String>,
    pub trait_names: HashSet<String>,
    /// The thresholds segments test scores against (`(score, threshold)`): decay
    /// materialises a score when it crosses one.
    pub score_thresholds: Vec<(String, f64)>,
}

impl SegmentIndex {
    pub(crate) fn of<'a>(conditions: impl IntoIterator<Item = &'a nudge_core::segment::Condition>) -> Self {
        let mut index = SegmentIndex::default();
        for c in conditions {
            index.any = true;
            index
                .event_names
                .extend(c.event_names().into_iter().map(str::to_string));
            index.trait_names.extend(c.trait_names());
            for t in c.score_thresholds() {
                if !index.score_thresholds.contains(&t) {
                    index.score_thresholds.push(t);
                }
            }
        }
        index
    }
}

impl SegmentIndex {
    /// Whether a stored Segment call may change what a segment says of its contact: a
    /// `track` of an event some segment reads, an `identify` setting a trait some
    /// segment reads. (A contact the call created is re-evaluated regardless.)
    pub(crate) fn reads_call(&self, m: &nudge_core::Call) -> bool {
        use nudge_core::CallKind;
        match m.kind {
            CallKind::Track => m.event.as_ref().is_some_and(|e| self.event_names.contains(e)),
            CallKind::Identify => m.traits.keys().any(|k| self.trait_names.contains(k)),
            _ => false,
        }
    }
}

/// The facts every rule reads: what journeys act on and what segments read. Each
/// backend loads (and caches) them; they are cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    /// `journey_event_names`: event names, and `$trait:<name>` for traits
    /// time-triggered journeys read.
    pub journey_events: Arc<HashSet<String>>,
    pub segments: Arc<SegmentIndex>,
    /// The scores and enabled scoring rules, with the thresholds segments read.
    pub scoring: Arc<Scoring>,
}

impl Rules {
    /// Whether a stored `track` event of this name goes to the journey inbox.
    pub(crate) fn journeys_act_on(&self, name: &str) -> bool {
        self.journey_events.contains(name)
    }

    /// Whether a journey or a segment reads `Lead Score Changed` events: then one is
    /// stored for every score change, else only when a stage is crossed (the history
    /// is in `score_changes` either way; an event per change would cost ingestion
    /// more than the rest of scoring together).
    pub(crate) fn reads_score_changes(&self) -> bool {
        self.journeys_act_on(event_names::LEAD_SCORE_CHANGED)
            || self.segments.event_names.contains(event_names::LEAD_SCORE_CHANGED)
    }

    /// The changed traits some time-triggered journey reads.
    pub(crate) fn traits_journeys_read<'a>(&self, changed: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        changed
            .into_iter()
            .filter(|k| self.journey_events.contains(&trait_event_name(k)))
            .cloned()
            .collect()
    }
}

/// Whether saving `segment` marks every contact for re-evaluation (besides computing
/// its members in SQL): when time alone changes its answer (the engine must schedule
/// each contact's flip), when other segments read it or it is administrative (their
/// members and exclusions change with it), or when the caller asks (`mark_all`).
pub(crate) fn segment_save_marks_all(segment: &crate::Segment, all: &[crate::Segment], mark_all: bool) -> bool {
    let referenced = segment.administrative || all.iter().any(|s| s.definition.segment_ids().contains(&segment.id));
    segment.definition.depends_on_time() || referenced || mark_all
}

/// What saving `new` over a stored segment implies.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SegmentUpdate {
    /// The segment as it is stored: a new definition or administrative flag bumps
    /// its version.
    pub segment: crate::Segment,
    /// Its membership must be recomputed (its definition or flag changed).
    pub recompute: bool,
    /// The administrative flag changed: every contact it kept out (or now keeps out)
    /// may belong elsewhere.
    pub flag_changed: bool,
}

/// Applies a segment save to the stored segment (name and description change in
/// place; what decides membership changes the version).
pub(crate) fn segment_update(mut segment: crate::Segment, new: crate::NewSegment, now: Millis) -> SegmentUpdate {
    let flag_changed = segment.administrative != new.administrative;
    let recompute = segment.definition != new.definition || flag_changed;
    segment.name = new.name;
    segment.description = new.description;
    segment.updated_at = now;
    segment.administrative = new.administrative;
    if recompute {
        segment.definition = new.definition;
        segment.version += 1;
    }
    SegmentUpdate {
        segment,
        recompute,
        flag_changed,
    }
}

/// What follows when an event turns out to be new (its key was not stored).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OnStored {
    /// Queue it in the journey inbox (with the stored event's id).
    QueueInbox,
    /// Mark its contact for segment re-evaluation.
    MarkDirty,
    /// Add one to a step's counter.
    Count {
        journey: i64,
        step: String,
        counter: StepCounter,
    },
    /// Add one to the runs that left `step` by `exit`.
    CountExit { journey: i64, step: String, exit: String },
    /// Add to the workspace's hourly count of `metric` (at the event's time).
    Tally { metric: Metric, amount: f64 },
    /// Add to a message's counters: its campaign variant's (when a campaign sent it),
    /// and the hourly report counters of its campaign, journey and channel.
    CountMessage {
        origin: Option<MessageOrigin>,
        channel: String,
        counter: CampaignCounter,
        amount: f64,
    },
    /// Add one to a campaign's counter for a recipient domain (deliverability).
    CountDomain {
        campaign: i64,
        domain: String,
        counter: CampaignCounter,
    },
    /// A click of `url` in `message`: counted toward the link's clicks of `owner`
    /// and `part` (see [`link_owner`]), and as unique when it is the message's first
    /// click of that link.
    CountLink {
        message: i64,
        owner: String,
        part: String,
        url: String,
    },
    /// The message's first open or click (`Opened`/`Clicked`) marks it and, if it is
    /// the first, counts it unique (`CountMessage` with `UniqueOpened`/`UniqueClicked`,
    /// and the journey step's unique counter).
    FirstEngagement {
        message: i64,
        counter: StepCounter,
        origin: Option<MessageOrigin>,
        channel: String,
    },
}

/// An event Nudge records on a contact's timeline (idempotent on `key`), and what
/// follows if it is new.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewEvent {
    pub contact: ContactId,
    pub name: String,
    pub properties: Value,
    pub key: String,
    pub at: Millis,
    pub then: Vec<OnStored>,
}

/// One primitive operation of a plan, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Event(NewEvent),
    /// Store the contact's traits (and the email and phone derived from them).
    SaveContact(Box<Contact>),
    /// Store a contact's traits alone, `traits` the whole object: for traits from
    /// which nothing else is derived (no e-mail, phone or search text), as scores'.
    SetTraits {
        contact: ContactId,
        traits: Value,
        at: Millis,
    },
    /// Queue [`crate::TRAITS_CHANGED`] in the journey inbox with the traits named.
    QueueTraitsChanged {
        contact: ContactId,
        traits: Vec<String>,
        at: Millis,
    },
    MarkDirty(ContactId),
    /// Add to the workspace's hourly count of `metric`.
    Tally {
        metric: Metric,
        amount: f64,
        at: Millis,
    },
    UpdateRun {
        run: i64,
        step: Option<String>,
        state: Value,
        finished: Option<String>,
        revenue: Option<f64>,
        version: Option<i64>,
    },
    /// Remove a run's timers: all of them (`None`) or those with these keys.
    ClearTimers {
        run: i64,
        keys: Option<Vec<String>>,
    },
    SetTimer {
        run: i64,
        key: String,
        due: Millis,
    },
    ClearWaits {
        run: i64,
    },
    AddWait {
        run: i64,
        contact: ContactId,
        event: String,
        match_value: Option<String>,
    },
    /// Put a message in the outbox unless its key is there; if it is new, record
    /// [`message_queued`] and count it toward its origin's step.
    Enqueue(NewMessage),
    /// Add a change of a contact's score to its history (`score_changes`).
    RecordScoreChange {
        contact: ContactId,
        score: String,
        previous: f64,
        value: f64,
        reason: nudge_core::scoring::Reason,
        at: Millis,
    },
    /// Store a contact's scores (its row's [`crate::scoring::ScoreRows`] and their
    /// earliest decay timer) and merge the score traits that changed (`patch`, an
    /// object) into its traits: one write of the contact's row.
    SetScores {
        contact: ContactId,
        scores: crate::scoring::ScoreRows,
        patch: Option<Value>,
        at: Millis,
    },
    /// [`Op::SetTraits`] for many contacts, written together ([`crate::sql::Db::set_traits`]).
    SetManyTraits {
        rows: Vec<(ContactId, Value)>,
        at: Millis,
    },
    /// Store contacts' order totals (`contact_orders`, one row each, replaced), in one
    /// batch.
    SetOrders {
        rows: Vec<(ContactId, nudge_core::orders::OrderTotals)>,
        at: Millis,
    },
}

/// What a contact's scored happenings imply, in order: each changed score's history
/// row, its `Lead Score Changed` and `Lead Stage Changed` events when it crossed into
/// another stage (and `Lead Score Changed` for every change while a journey or segment
/// reads it: [`Rules::reads_score_changes`]) — queued for journeys and marked for
/// segments like any event — and, once, the contact's scores (`scores`, as stored,
/// with each change kept: state, decay timer, rule counters) written in its row with
/// the score traits that changed ([`Op::SetScores`]), and the trait-change notices
/// and segment mark that follow. `unique` numbers the events' keys.
pub(crate) fn score_ops(
    rules: &Rules,
    id: ContactId,
    mut scores: crate::scoring::ScoreRows,
    scored: &[Scored],
    now: Millis,
    mut unique: impl FnMut() -> u64,
) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut changed: Vec<String> = Vec::new();
    let mut patch = serde_json::Map::new();
    let before = scores.clone();
    for s in scored {
        for change in &s.changes {
            scores.set(change);
            if change.value == change.previous && change.stage.is_none() {
                continue;
            }
            ops.push(Op::RecordScoreChange {
                contact: id,
                score: change.score.clone(),
                previous: change.previous,
                value: change.value,
                reason: change.reason.clone(),
                at: now,
            });
            if change.stage.is_some() || rules.reads_score_changes() {
                ops.extend(score_events(rules, id, change, now, &mut unique));
            }
            let name = nudge_core::scoring::score_trait(&change.score);
            patch.insert(name.clone(), json!(change.value));
            if !changed.contains(&name) {
                changed.push(name);
            }
        }
    }
    if scores != before || !changed.is_empty() {
        ops.push(Op::SetScores {
            contact: id,
            scores,
            patch: (!patch.is_empty()).then_some(Value::Object(patch)),
            at: now,
        });
    }
    ops.extend(traits_follow_up(rules, id, &changed, now));
    ops
}

/// A contact whose computed traits (`changed`, already set in `traits`, the contact's
/// whole traits) Nudge wrote: the traits stored alone ([`Op::SetTraits`]: predictions
/// and order totals derive no e-mail, phone or search text), with what follows
/// ([`traits_follow_up`]). Nothing when nothing changed.
fn traits_written(
    rules: &Rules,
    id: ContactId,
    traits: serde_json::Map<String, Value>,
    changed: &[String],
    now: Millis,
) -> Vec<Op> {
    if changed.is_empty() {
        return Vec::new();
    }
    let mut ops = vec![Op::SetTraits {
        contact: id,
        traits: Value::Object(traits),
        at: now,
    }];
    ops.extend(traits_follow_up(rules, id, changed, now));
    ops
}

/// What writing a contact's computed traits (`changed`) implies: the trait-change
/// notice for the journeys that read them, the mark for the segments that do.
fn traits_follow_up(rules: &Rules, id: ContactId, changed: &[String], now: Millis) -> Vec<Op> {
    let mut ops = Vec::new();
    if changed.is_empty() {
        return ops;
    }
    let read = rules.traits_journeys_read(changed);
    if !read.is_empty() {
        ops.push(Op::QueueTraitsChanged {
            contact: id,
            traits: read,
            at: now,
        });
    }
    if changed.iter().any(|t| rules.segments.trait_names.contains(t)) {
        ops.push(Op::MarkDirty(id));
    }
    ops
}

/// What a contact's new predictions imply: their traits (`nudge_core::predict::TRAITS`;
/// a `null` removes one) written where they changed, with what follows
/// ([`traits_written`]). No event: a refit rewrites every customer's.
pub(crate) fn prediction_ops(
    rules: &Rules,
    contact: Contact,
    traits: serde_json::Map<String, Value>,
    now: Millis,
) -> Vec<Op> {
    computed_traits(rules, contact.id, contact.traits, traits, now)
}

/// Traits Nudge computed (`new`; a `null` removes one) set on a contact's stored
/// `traits` and written where they changed, with what follows ([`traits_written`]).
fn computed_traits(
    rules: &Rules,
    id: ContactId,
    mut traits: serde_json::Map<String, Value>,
    new: serde_json::Map<String, Value>,
    now: Millis,
) -> Vec<Op> {
    let mut changed = Vec::new();
    for (name, value) in new {
        if traits.get(&name).unwrap_or(&Value::Null) == &value {
            continue;
        }
        if value.is_null() {
            traits.remove(&name);
        } else {
            traits.insert(name.clone(), value);
        }
        changed.push(name);
    }
    traits_written(rules, id, traits, &changed, now)
}

/// What contacts' new order totals imply (`(contact, its stored traits, its totals
/// with the new orders)`): the totals' rows, written together, then each contact's
/// order traits (`OrderTotals::traits`) written where they changed — the contacts'
/// traits together too ([`Op::SetManyTraits`]: a call's orders touch hundreds of
/// contacts, and one statement each would be a round trip each on PostgreSQL) —, with
/// what follows ([`traits_written`]: the journeys' notice, the segments' mark). No
/// event: the `Order Completed` event is the news.
pub(crate) fn order_ops(
    rules: &Rules,
    contacts: Vec<(
        ContactId,
        serde_json::Map<String, Value>,
        nudge_core::orders::OrderTotals,
    )>,
    now: Millis,
) -> Vec<Op> {
    if contacts.is_empty() {
        return Vec::new();
    }
    let mut ops = vec![Op::SetOrders {
        rows: contacts.iter().map(|(id, _, totals)| (*id, *totals)).collect(),
        at: now,
    }];
    let (mut written, mut follow) = (Vec::new(), Vec::new());
    for (id, traits, totals) in contacts {
        for op in computed_traits(rules, id, traits, totals.traits(), now) {
            match op {
                Op::SetTraits { contact, traits, .. } => written.push((contact, traits)),
                other => follow.push(other),
            }
        }
    }
    if !written.is_empty() {
        ops.push(Op::SetManyTraits { rows: written, at: now });
    }
    ops.extend(follow);
    ops
}

/// A score change's timeline events.
fn score_events(
    rules: &Rules,
    contact: ContactId,
    change: &ScoreChange,
    now: Millis,
    unique: &mut impl FnMut() -> u64,
) -> Vec<Op> {
    let mut out = vec![Op::Event(event(
        rules,
        contact,
        &TimelineEvent {
            name: event_names::LEAD_SCORE_CHANGED.to_string(),
            properties: change.score_properties(),
            key: IdempotencyKey::score_change(contact, &change.score, false, now, unique()),
            counts: None,
        },
        now,
    ))];
    if let Some(properties) = change.stage_properties() {
        out.push(Op::Event(event(
            rules,
            contact,
            &TimelineEvent {
                name: event_names::LEAD_STAGE_CHANGED.to_string(),
                properties,
                key: IdempotencyKey::score_change(contact, &change.score, true, now, unique()),
                counts: None,
            },
            now,
        )));
    }
    out
}

/// A timeline event and what storing it implies: the journey inbox when journeys act
/// on its name, a segment mark when a segment reads it, and the journey counters it
/// carries.
pub(crate) fn event(rules: &Rules, contact: ContactId, e: &TimelineEvent, at: Millis) -> NewEvent {
    let mut then = Vec::new();
    if rules.journeys_act_on(&e.name) {
        then.push(OnStored::QueueInbox);
    }
    if rules.segments.event_names.contains(&e.name) {
        then.push(OnStored::MarkDirty);
    }
    if let Some(StepCount {
        journey_id,
        reached,
        left,
    }) = &e.counts
    {
        if let Some(step) = reached {
            then.push(OnStored::Count {
                journey: *journey_id,
                step: step.clone(),
                counter: StepCounter::Reached,
            });
        }
        if let Some((step, exit)) = left {
            then.push(OnStored::CountExit {
                journey: *journey_id,
                step: step.clone(),
                exit: exit.clone(),
            });
        }
    }
    NewEvent {
        contact,
        name: e.name.clone(),
        properties: e.properties.clone(),
        key: e.key.to_string(),
        at,
        then,
    }
}

/// A segment join or leave on the timeline: queued for the journeys that act on it,
/// but never a segment mark of its own (the engine that recorded it has just
/// evaluated the contact; segments reading other segments are re-marked by the
/// engine's own rule).
pub(crate) fn segment_change(rules: &Rules, contact: ContactId, e: &TimelineEvent, at: Millis) -> NewEvent {
    let mut planned = event(rules, contact, e, at);
    planned.then.retain(|t| *t != OnStored::MarkDirty);
    planned
}

/// The timeline event of a message's state (`Message Queued`, `Message Sent`, ...).
pub(crate) fn message_state(rules: &Rules, m: &Message, at: Millis) -> NewEvent {
    let mut props = json!({
        "message_id": m.id,
        "channel": m.channel,
        "template_id": m.template_id,
        "template_version": m.template_version,
        "state": m.state.as_str(),
    });
    if let Some(e) = &m.error {
        props["error"] = Value::String(e.clone());
    }
    if let Some(r) = &m.recipient {
        props["recipient"] = Value::String(r.clone());
    }
    let e = TimelineEvent {
        name: m.state.event_name().to_string(),
        properties: props,
        key: nudge_core::protocol::IdempotencyKey::message_state(m.id, m.state.as_str(), m.attempts),
        counts: None,
    };
    let mut planned = event(rules, m.contact_id, &e, at);
    if let Some(metric) = state_metric(m) {
        planned.then.push(OnStored::Tally { metric, amount: 1.0 });
    }
    if let Some(counter) = campaign_state_counter(m) {
        planned.then.push(OnStored::CountMessage {
            origin: m.origin.clone(),
            channel: m.channel.clone(),
            counter,
            amount: 1.0,
        });
        // Deliverability by recipient domain, for campaigns' e-mail.
        if let (Some((campaign, _)), Some(domain)) = (
            m.origin.as_ref().and_then(MessageOrigin::campaign_variant),
            m.recipient.as_deref().and_then(|r| r.rsplit_once('@')).map(|(_, d)| d),
        ) {
            planned.then.push(OnStored::CountDomain {
                campaign,
                domain: domain.trim_end_matches('>').to_ascii_lowercase(),
                counter,
            });
        }
    }
    planned
}

/// The campaign counter a message's state moves (queued is counted when the message
/// is stored, see [`queued_count`]).
fn campaign_state_counter(m: &Message) -> Option<CampaignCounter> {
    match m.state {
        MessageState::Queued | MessageState::Suppressed => None,
        MessageState::Sent => Some(CampaignCounter::Sent),
        MessageState::Delivered => Some(CampaignCounter::Delivered),
        MessageState::Failed => Some(CampaignCounter::Failed),
        MessageState::Bounced => Some(CampaignCounter::Bounced),
    }
}

/// The workspace metric a message's state counts toward: a message is counted queued
/// once (its first attempt), then by each outcome; a suppressed one is not counted.
fn state_metric(m: &Message) -> Option<Metric> {
    match m.state {
        MessageState::Queued if m.attempts == 0 => Some(Metric::MessagesQueued),
        MessageState::Queued | MessageState::Suppressed => None,
        MessageState::Sent => Some(Metric::MessagesSent),
        MessageState::Delivered => Some(Metric::MessagesDelivered),
        MessageState::Failed => Some(Metric::MessagesFailed),
        MessageState::Bounced => Some(Metric::MessagesBounced),
    }
}

/// The counters a newly queued message moves: `sent` of the journey step that queued
/// it, and `recipients` of its campaign variant and report scopes.
pub(crate) fn queued_counts(origin: Option<&MessageOrigin>, channel: &str) -> Vec<OnStored> {
    let mut out = Vec::with_capacity(2);
    if let Some(MessageOrigin::Journey { journey_id, step, .. }) = origin {
        out.push(OnStored::Count {
            journey: *journey_id,
            step: step.clone(),
            counter: StepCounter::Sent,
        });
    }
    out.push(OnStored::CountMessage {
        origin: origin.cloned(),
        channel: channel.to_string(),
        counter: CampaignCounter::Recipients,
        amount: 1.0,
    });
    out
}

/// A sent message an event is about: its id, template, origin and channel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SentMessage<'a> {
    pub id: i64,
    pub template_id: Option<i64>,
    pub origin: Option<&'a MessageOrigin>,
    pub channel: &'a str,
}

/// An event about a message (opened, clicked, unsubscribed, complained) and what it
/// counts: the journey step's counter, the campaign variant's and the report scopes'
/// (a message's first open and first click also count as unique), the workspace's
/// opens and clicks, and a click toward its link.
pub(crate) fn message_event(
    rules: &Rules,
    m: &SentMessage<'_>,
    contact: ContactId,
    e: &MessageEvent,
    key: IdempotencyKey,
    at: Millis,
) -> NewEvent {
    let timeline = TimelineEvent {
        name: e.name().to_string(),
        properties: e.properties(m.id, m.template_id, m.channel),
        key,
        counts: None,
    };
    let mut planned = event(rules, contact, &timeline, at);
    let counter = e.step_counter();
    if let (Some(counter), Some((journey, step))) = (counter, m.origin.and_then(MessageOrigin::journey_step)) {
        planned.then.push(OnStored::Count {
            journey,
            step: step.to_string(),
            counter,
        });
    }
    let metric = match e {
        MessageEvent::Opened => Some(Metric::MessagesOpened),
        MessageEvent::Clicked { .. } => Some(Metric::MessagesClicked),
        _ => None,
    };
    if let Some(metric) = metric {
        planned.then.push(OnStored::Tally { metric, amount: 1.0 });
    }
    if let Some(counter) = e.campaign_counter() {
        planned.then.push(OnStored::CountMessage {
            origin: m.origin.cloned(),
            channel: m.channel.to_string(),
            counter,
            amount: 1.0,
        });
    }
    if let Some(counter) = counter.filter(|c| matches!(c, StepCounter::Opened | StepCounter::Clicked)) {
        planned.then.push(OnStored::FirstEngagement {
            message: m.id,
            counter,
            origin: m.origin.cloned(),
            channel: m.channel.to_string(),
        });
    }
    if let (MessageEvent::Clicked { url, .. }, Some((owner, part))) = (e, m.origin.and_then(link_owner)) {
        planned.then.push(OnStored::CountLink {
            message: m.id,
            owner,
            part,
            url: url.clone(),
        });
    }
    planned
}

/// Whose link clicks a message's clicks count toward (`link_clicks`' owner and part):
/// its campaign and variant, or its journey and step.
pub(crate) fn link_owner(origin: &MessageOrigin) -> Option<(String, String)> {
    if let Some((campaign, variant)) = origin.campaign_variant() {
        return Some((campaign_links(campaign), variant.to_string()));
    }
    origin
        .journey_step()
        .map(|(journey, step)| (journey_links(journey), step.to_string()))
}

/// The `link_clicks` owner of a campaign's links (parts: variant numbers).
pub(crate) fn campaign_links(campaign: i64) -> String {
    format!("campaign:{campaign}")
}

/// The `link_clicks` owner of a journey's links (parts: step names).
pub(crate) fn journey_links(journey: i64) -> String {
    format!("journey:{journey}")
}

/// What the backend read about a run before planning its write.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RunRow {
    /// The run's contact (a merged-away id already resolved to the survivor).
    pub contact: ContactId,
    pub finished: bool,
    pub revision: i64,
}

/// The outcome of planning a [`RunWrite`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RunPlan {
    /// The run is unknown or finished: nothing to write.
    Nothing,
    /// Computed from an older revision than the stored one: nothing is written and
    /// the caller hands the input in again.
    Stale,
    Apply(Vec<Op>),
}

/// The keys of a write's contact updates, for the backend to say which are stored
/// already (those apply nothing).
pub(crate) fn contact_update_keys(w: &RunWrite) -> Vec<String> {
    w.contact_updates.iter().map(|(k, _)| k.to_string()).collect()
}

/// Plans one transition of one run. `contact`: the run's contact as stored, when the
/// write updates it (`None`: gone, or no updates); `applied`: which of
/// [`contact_update_keys`] are stored already.
pub(crate) fn run_write(
    rules: &Rules,
    w: &RunWrite,
    run: Option<RunRow>,
    contact: Option<Contact>,
    applied: &HashSet<String>,
    now: Millis,
) -> RunPlan {
    let Some(run) = run.filter(|r| !r.finished) else {
        return RunPlan::Nothing;
    };
    if w.expected_revision.is_some_and(|r| r != run.revision) {
        return RunPlan::Stale;
    }
    let mut ops = Vec::new();
    let finished = w.finished.is_some();
    // Contact updates, each once per key, in order; traits read by segments or
    // time-triggered journeys notify them.
    if let Some(mut contact) = contact.filter(|_| !w.contact_updates.is_empty()) {
        let mut changed: Vec<String> = Vec::new();
        let mut any = false;
        for (key, update) in &w.contact_updates {
            if applied.contains(key.as_str()) {
                continue;
            }
            let patch = update.patch(&contact.traits);
            let e = TimelineEvent {
                name: event_names::CONTACT_UPDATED.to_string(),
                properties: json!({"run_id": w.run_id, "traits": patch}),
                key: key.clone(),
                counts: None,
            };
            // The contact is marked once below (`Op::MarkDirty`), not per event.
            let mut planned = event(rules, contact.id, &e, now);
            planned.then.retain(|t| *t != OnStored::MarkDirty);
            ops.push(Op::Event(planned));
            contact.apply_traits(&patch);
            for k in patch.keys() {
                if !changed.contains(k) {
                    changed.push(k.clone());
                }
            }
            any = true;
        }
        if any {
            contact.updated_at = now;
            let id = contact.id;
            ops.push(Op::SaveContact(Box::new(contact)));
            let read = rules.traits_journeys_read(&changed);
            if !read.is_empty() {
                ops.push(Op::QueueTraitsChanged {
                    contact: id,
                    traits: read,
                    at: now,
                });
            }
            if rules.segments.any {
                ops.push(Op::MarkDirty(id));
            }
        }
    }
    // A run that reaches its goal is a conversion of the workspace, with its revenue.
    if w.finished.as_deref() == Some("goal") {
        ops.push(Op::Tally {
            metric: Metric::Conversions,
            amount: 1.0,
            at: now,
        });
        if let Some(revenue) = w.revenue.filter(|r| *r != 0.0) {
            ops.push(Op::Tally {
                metric: Metric::Revenue,
                amount: revenue,
                at: now,
            });
        }
    }
    ops.push(Op::UpdateRun {
        run: w.run_id,
        step: if finished { None } else { w.step.clone() },
        state: w.state.clone(),
        finished: w.finished.clone(),
        revenue: w.revenue,
        version: w.version,
    });
    // A finished run loses all its timers and waits.
    match (&w.clear_timers, finished) {
        (_, true) | (ClearTimers::All, _) => ops.push(Op::ClearTimers {
            run: w.run_id,
            keys: None,
        }),
        (ClearTimers::Keys(keys), false) if !keys.is_empty() => ops.push(Op::ClearTimers {
            run: w.run_id,
            keys: Some(keys.clone()),
        }),
        _ => {}
    }
    if !finished {
        for (key, due) in &w.set_timers {
            ops.push(Op::SetTimer {
                run: w.run_id,
                key: key.clone(),
                due: *due,
            });
        }
    }
    if finished || w.waits.is_some() {
        ops.push(Op::ClearWaits { run: w.run_id });
    }
    if let (Some(waits), false) = (&w.waits, finished) {
        for (event, value) in waits {
            ops.push(Op::AddWait {
                run: w.run_id,
                contact: run.contact,
                event: event.clone(),
                match_value: value.clone(),
            });
        }
    }
    for m in &w.messages {
        ops.push(Op::Enqueue(m.clone()));
    }
    for e in &w.events {
        ops.push(Op::Event(event(rules, run.contact, e, now)));
    }
    RunPlan::Apply(ops)
}

/// The inbox row's properties for [`crate::TRAITS_CHANGED`].
pub(crate) fn traits_changed_properties(traits: &[String]) -> Value {
    json!({ "traits": traits })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_core::journey::ContactUpdate;
    use nudge_core::protocol::IdempotencyKey;

    fn rules(journeys: &[&str], segment_events: &[&str]) -> Rules {
        Rules {
            journey_events: Arc::new(journeys.iter().map(|s| s.to_string()).collect()),
            segments: Arc::new(SegmentIndex {
                any: !segment_events.is_empty(),
                event_names: segment_events.iter().map(|s| s.to_string()).collect(),
                trait_names: HashSet::new(),
                score_thresholds: Vec::new(),
            }),
            scoring: Arc::default(),
        }
    }

    fn row() -> Option<RunRow> {
        Some(RunRow {
            contact: 5,
            finished: false,
            revision: 3,
        })
    }

    fn reached(step: &str, left: Option<(&str, &str)>) -> TimelineEvent {
        TimelineEvent {
            name: event_names::JOURNEY_STEP_REACHED.into(),
            properties: json!({"step": step}),
            key: IdempotencyKey::reached(1, step, 1),
            counts: Some(StepCount {
                journey_id: 9,
                reached: Some(step.into()),
                left: left.map(|(s, e)| (s.into(), e.into())),
            }),
        }
    }

    /// New order totals write every contact's row in one batch, then each contact's
    /// order traits where they changed: the journeys reading one are told, a segment
    /// reading one marks the contact; nothing follows when the traits are as stored.
    #[test]
    fn order_totals_plan_their_rows_and_the_traits_that_changed() {
        use nudge_core::orders::OrderTotals;
        let mut r = rules(&["$trait:orders_count"], &[]);
        r.segments = Arc::new(SegmentIndex {
            any: true,
            trait_names: ["first_order_at".to_string()].into(),
            ..Default::default()
        });
        let totals = OrderTotals {
            count: 2,
            revenue: 30.0,
            first_at: 1_000,
            last_at: 2_000,
        };
        let mut stored = serde_json::Map::new();
        stored.insert("plan".into(), json!("pro"));
        // Contact 8's traits already say what its totals say (written before).
        let mut written = totals.traits();
        written.insert("plan".into(), json!("pro"));
        let ops = order_ops(&r, vec![(7, stored, totals), (8, written, totals)], 50);
        let mut expected = totals.traits();
        expected.insert("plan".into(), json!("pro"));
        assert_eq!(
            ops,
            [
                Op::SetOrders {
                    rows: vec![(7, totals), (8, totals)],
                    at: 50
                },
                Op::SetManyTraits {
                    rows: vec![(7, Value::Object(expected))],
                    at: 50
                },
                Op::QueueTraitsChanged {
                    contact: 7,
                    traits: vec!["orders_count".into()],
                    at: 50
                },
                Op::MarkDirty(7),
            ]
        );
        assert_eq!(order_ops(&r, Vec::new(), 50), []);
    }

    #[test]
    fn a_score_change_plans_its_row_events_and_trait() {
        use nudge_core::scoring::{Scoring, ScoringRule, parse_rule, parse_score, score};
        let rule = ScoringRule {
            id: 7,
            definition: parse_rule(
                &json!({"name": "demo", "points": 30, "trigger": {"type": "event", "event": "Demo"},
                "frequency": {"type": "once"}}),
            )
            .unwrap(),
        };
        let stages =
            parse_score(&json!({"name": "lead_score", "stages": [{"name": "cold"}, {"name": "warm", "from": 20}]}))
                .unwrap();
        let mut r = rules(&[event_names::LEAD_STAGE_CHANGED], &[]);
        r.segments = Arc::new(SegmentIndex {
            any: true,
            trait_names: ["lead_score".to_string()].into(),
            ..Default::default()
        });
        r.scoring = Arc::new(Scoring::new(vec![stages], vec![rule]));
        let mut cs = nudge_core::scoring::ContactScores::default();
        let fired: Vec<&ScoringRule> = r.scoring.rules.iter().collect();
        let scored = score(&r.scoring, &mut cs, &fired, 1_000);
        let mut n = 0;
        let ops = score_ops(&r, 5, Default::default(), &[scored], 1_000, || {
            n += 1;
            n
        });
        let kinds: Vec<&str> = ops
            .iter()
            .map(|op| match op {
                Op::RecordScoreChange {
                    contact: 5,
                    previous: 0.0,
                    value: 30.0,
                    ..
                } => "history",
                Op::Event(e) if e.name == event_names::LEAD_SCORE_CHANGED => "score event",
                Op::Event(e) if e.name == event_names::LEAD_STAGE_CHANGED && e.then == [OnStored::QueueInbox] => {
                    "stage event, queued for journeys"
                }
                Op::SetScores {
                    contact: 5,
                    scores,
                    patch: Some(patch),
                    ..
                } if patch == &json!({"lead_score": 30.0})
                    && scores.0["lead_score"].counters == [(7, "once".to_string(), 1)]
                    && scores.0["lead_score"].due.is_none() =>
                {
                    "the row: state with the rule's counter, no timer, and the trait"
                }
                Op::MarkDirty(5) => "segment mark",
                _ => "other",
            })
            .collect();
        // No decay: no timer.
        assert_eq!(
            kinds,
            [
                "history",
                "score event",
                "stage event, queued for journeys",
                "the row: state with the rule's counter, no timer, and the trait",
                "segment mark"
            ]
        );

        // A change within a stage: its history row, and a `Lead Score Changed` event
        // only while a journey (or a segment) reads that event.
        let again = ScoringRule {
            id: 8,
            definition: parse_rule(
                &json!({"name": "visit", "points": 5, "trigger": {"type": "event", "event": "Visit"},
                "frequency": {"type": "repeat"}}),
            )
            .unwrap(),
        };
        r.scoring = Arc::new(Scoring::new(
            vec![
                parse_score(&json!({"name": "lead_score", "stages": [{"name": "cold"}, {"name": "warm", "from": 20}]}))
                    .unwrap(),
            ],
            vec![again],
        ));
        let fired: Vec<&ScoringRule> = r.scoring.rules.iter().collect();
        let names = |r: &Rules, cs: &mut nudge_core::scoring::ContactScores| {
            let scored = score(&r.scoring, cs, &fired, 2_000);
            score_ops(r, 5, Default::default(), &[scored], 2_000, || 1)
                .iter()
                .filter_map(|op| match op {
                    Op::RecordScoreChange { .. } => Some("history".to_string()),
                    Op::Event(e) => Some(e.name.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&r, &mut cs.clone()), ["history"]);
        let mut read = r.clone();
        read.journey_events = Arc::new([event_names::LEAD_SCORE_CHANGED.to_string()].into());
        assert_eq!(
            names(&read, &mut cs.clone()),
            ["history", event_names::LEAD_SCORE_CHANGED]
        );
    }

    #[test]
    fn segments_read_the_calls_that_name_what_they_read() {
        let index = SegmentIndex {
            any: true,
            event_names: ["Order Completed".to_string()].into(),
            trait_names: ["plan".to_string()].into(),
            score_thresholds: Vec::new(),
        };
        let calls = nudge_core::parse_batch(
            &serde_json::to_vec(&json!({"batch": [
                {"type": "track", "userId": "u", "event": "Order Completed"},
                {"type": "track", "userId": "u", "event": "Page Viewed"},
                {"type": "identify", "userId": "u", "traits": {"plan": "pro"}},
                {"type": "identify", "userId": "u", "traits": {"age": 3}},
                {"type": "page", "userId": "u", "name": "Order Completed"},
            ]}))
            .unwrap(),
            &nudge_core::Received { at: 0, ip: None },
            &mut || "id".to_string(),
        )
        .unwrap();
        let read: Vec<bool> = calls.messages.iter().map(|c| index.reads_call(c)).collect();
        assert_eq!(read, vec![true, false, true, false, false]);
    }

    #[test]
    fn an_event_goes_where_its_name_is_read() {
        let r = rules(&["Order Completed"], &["Order Completed", "Page Viewed"]);
        let e = |name: &str| TimelineEvent {
            name: name.into(),
            properties: json!({}),
            key: IdempotencyKey::external("k"),
            counts: None,
        };
        assert_eq!(
            event(&r, 1, &e("Order Completed"), 0).then,
            vec![OnStored::QueueInbox, OnStored::MarkDirty]
        );
        assert_eq!(event(&r, 1, &e("Page Viewed"), 0).then, vec![OnStored::MarkDirty]);
        assert!(event(&r, 1, &e("Other"), 0).then.is_empty());
    }

    #[test]
    fn a_step_event_counts_the_step_and_the_exit_taken() {
        let planned = event(&rules(&[], &[]), 5, &reached("b", Some(("a", "yes"))), 7);
        assert_eq!(
            planned.then,
            vec![
                OnStored::Count {
                    journey: 9,
                    step: "b".into(),
                    counter: StepCounter::Reached
                },
                OnStored::CountExit {
                    journey: 9,
                    step: "a".into(),
                    exit: "yes".into()
                },
            ]
        );
        assert_eq!((planned.contact, planned.at), (5, 7));
        assert_eq!(planned.key, "run-1-step-b-1-reached");
    }

    #[test]
    fn unknown_finished_and_stale_runs_write_nothing() {
        let w = RunWrite {
            run_id: 1,
            expected_revision: Some(2),
            ..Default::default()
        };
        let none = HashSet::new();
        assert_eq!(run_write(&rules(&[], &[]), &w, None, None, &none, 0), RunPlan::Nothing);
        let finished = Some(RunRow {
            finished: true,
            ..row().unwrap()
        });
        assert_eq!(
            run_write(&rules(&[], &[]), &w, finished, None, &none, 0),
            RunPlan::Nothing
        );
        assert_eq!(run_write(&rules(&[], &[]), &w, row(), None, &none, 0), RunPlan::Stale);
    }

    #[test]
    fn a_finished_run_loses_timers_and_waits_and_sets_none() {
        let w = RunWrite {
            run_id: 1,
            step: Some("x".into()),
            finished: Some("completed".into()),
            set_timers: vec![("t".into(), 5)],
            waits: Some(vec![("E".into(), None)]),
            ..Default::default()
        };
        let RunPlan::Apply(ops) = run_write(&rules(&[], &[]), &w, row(), None, &HashSet::new(), 0) else {
            panic!("not applied");
        };
        assert!(matches!(&ops[0], Op::UpdateRun { step: None, finished: Some(f), .. } if f == "completed"));
        assert_eq!(ops[1], Op::ClearTimers { run: 1, keys: None });
        assert_eq!(ops[2], Op::ClearWaits { run: 1 });
        assert_eq!(ops.len(), 3);
    }

    #[test]
    fn contact_updates_apply_once_per_key_in_order() {
        let mut contact = Contact::new(5, 0);
        contact.traits.insert("score".into(), json!(1));
        let add = |n: i64| ContactUpdate {
            lead_score: n,
            ..Default::default()
        };
        let w = RunWrite {
            run_id: 1,
            contact_updates: vec![
                (IdempotencyKey::step(1, "a", 1), add(2)),
                (IdempotencyKey::step(1, "b", 1), add(3)),
                (IdempotencyKey::step(1, "c", 1), add(4)),
            ],
            ..Default::default()
        };
        let applied: HashSet<String> = ["run-1-step-b-1".to_string()].into();
        let r = rules(&["$trait:lead_score"], &["Contact Updated"]);
        let RunPlan::Apply(ops) = run_write(&r, &w, row(), Some(contact), &applied, 9) else {
            panic!("not applied");
        };
        let events: Vec<&NewEvent> = ops
            .iter()
            .filter_map(|o| match o {
                Op::Event(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(events.len(), 2, "the applied key applies nothing");
        assert_eq!(events[0].key, "run-1-step-a-1");
        assert_eq!(events[1].key, "run-1-step-c-1");
        assert!(events[0].then.is_empty(), "marked once, below: {:?}", events[0].then);
        let saved = ops
            .iter()
            .find_map(|o| match o {
                Op::SaveContact(c) => Some(c),
                _ => None,
            })
            .expect("saved");
        assert_eq!(saved.updated_at, 9);
        assert!(ops.contains(&Op::QueueTraitsChanged {
            contact: 5,
            traits: vec!["lead_score".into()],
            at: 9
        }));
        assert_eq!(ops.iter().filter(|o| **o == Op::MarkDirty(5)).count(), 1);
    }

    #[test]
    fn a_message_counts_toward_the_step_that_sent_it() {
        let origin = MessageOrigin::Journey {
            journey_id: 4,
            run_id: 1,
            step: "mail".into(),
            visit: 2,
        };
        let counts = queued_counts(Some(&origin), "email");
        assert_eq!(
            counts[0],
            OnStored::Count {
                journey: 4,
                step: "mail".into(),
                counter: StepCounter::Sent
            }
        );
        assert_eq!(
            queued_counts(None, "sms"),
            vec![OnStored::CountMessage {
                origin: None,
                channel: "sms".into(),
                counter: CampaignCounter::Recipients,
                amount: 1.0
            }]
        );
    }

    fn message(state: MessageState, attempts: i64) -> Message {
        Message {
            id: 4,
            idempotency_key: "k".into(),
            contact_id: 5,
            template_id: 1,
            template_version: 1,
            channel: "email".into(),
            transactional: false,
            data: json!({}),
            state,
            attempts,
            next_attempt_at: None,
            recipient: None,
            error: None,
            rendered: None,
            created_at: 0,
            updated_at: 0,
            sent_at: None,
            provider_id: None,
            origin: None,
        }
    }

    fn tallies(then: &[OnStored]) -> Vec<(Metric, f64)> {
        then.iter()
            .filter_map(|t| match t {
                OnStored::Tally { metric, amount } => Some((*metric, *amount)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn message_states_count_toward_the_workspace_once_each() {
        let r = rules(&[], &[]);
        let count = |state, attempts| tallies(&message_state(&r, &message(state, attempts), 0).then);
        assert_eq!(count(MessageState::Queued, 0), vec![(Metric::MessagesQueued, 1.0)]);
        assert_eq!(count(MessageState::Queued, 2), vec![], "a retry is not a new message");
        assert_eq!(count(MessageState::Sent, 1), vec![(Metric::MessagesSent, 1.0)]);
        assert_eq!(
            count(MessageState::Delivered, 1),
            vec![(Metric::MessagesDelivered, 1.0)]
        );
        assert_eq!(count(MessageState::Bounced, 1), vec![(Metric::MessagesBounced, 1.0)]);
        assert_eq!(count(MessageState::Failed, 5), vec![(Metric::MessagesFailed, 1.0)]);
        assert_eq!(count(MessageState::Suppressed, 0), vec![]);
        let sent = sent(None);
        let opened = message_event(&r, &sent, 5, &MessageEvent::Opened, key("o"), 0);
        assert_eq!(tallies(&opened.then), vec![(Metric::MessagesOpened, 1.0)]);
        let clicked = message_event(&r, &sent, 5, &click("https://a.example/"), key("c"), 0);
        assert_eq!(tallies(&clicked.then), vec![(Metric::MessagesClicked, 1.0)]);
        let other = message_event(&r, &sent, 5, &unsubscribed(), key("u"), 0);
        assert_eq!(tallies(&other.then), vec![]);
    }

    fn sent(origin: Option<&MessageOrigin>) -> SentMessage<'_> {
        SentMessage {
            id: 9,
            template_id: Some(4),
            origin,
            channel: "email",
        }
    }

    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey::external(k)
    }

    fn click(url: &str) -> MessageEvent {
        MessageEvent::Clicked {
            link: 0,
            url: url.into(),
        }
    }

    fn unsubscribed() -> MessageEvent {
        MessageEvent::Unsubscribed {
            subscription: "email".into(),
            one_click: false,
        }
    }

    #[test]
    fn a_campaign_message_counts_toward_its_variant_and_report_scopes() {
        let r = rules(&[], &[]);
        let origin = MessageOrigin::Campaign {
            campaign_id: 3,
            variant: 1,
        };
        let counted = |then: &[OnStored]| -> Vec<CampaignCounter> {
            then.iter()
                .filter_map(|t| match t {
                    OnStored::CountMessage {
                        origin:
                            Some(MessageOrigin::Campaign {
                                campaign_id: 3,
                                variant: 1,
                            }),
                        counter,
                        ..
                    } => Some(*counter),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            counted(&queued_counts(Some(&origin), "email")),
            vec![CampaignCounter::Recipients]
        );
        let mut m = message(MessageState::Delivered, 1);
        m.origin = Some(origin.clone());
        m.recipient = Some("Ada <Ada@Example.COM>".into());
        let delivered = message_state(&r, &m, 0);
        assert_eq!(counted(&delivered.then), vec![CampaignCounter::Delivered]);
        assert!(delivered.then.contains(&OnStored::CountDomain {
            campaign: 3,
            domain: "example.com".into(),
            counter: CampaignCounter::Delivered,
        }));
        m.state = MessageState::Suppressed;
        assert_eq!(counted(&message_state(&r, &m, 0).then), vec![]);
        let opened = message_event(&r, &sent(Some(&origin)), 5, &MessageEvent::Opened, key("o"), 0);
        assert_eq!(counted(&opened.then), vec![CampaignCounter::Opened]);
        assert_eq!(opened.name, event_names::EMAIL_OPENED);
        assert_eq!(opened.properties["template_id"], 4);
        assert!(opened.then.contains(&OnStored::FirstEngagement {
            message: 9,
            counter: StepCounter::Opened,
            origin: Some(origin.clone()),
            channel: "email".into(),
        }));
        let clicked = message_event(&r, &sent(Some(&origin)), 5, &click("https://a.example/x"), key("c"), 0);
        assert_eq!(counted(&clicked.then), vec![CampaignCounter::Clicked]);
        assert_eq!(clicked.properties["url"], "https://a.example/x");
        assert!(clicked.then.contains(&OnStored::CountLink {
            message: 9,
            owner: "campaign:3".into(),
            part: "1".into(),
            url: "https://a.example/x".into(),
        }));
        for (e, counter) in [
            (unsubscribed(), CampaignCounter::Unsubscribed),
            (MessageEvent::Complained, CampaignCounter::Complained),
        ] {
            let planned = message_event(&r, &sent(Some(&origin)), 5, &e, key("u"), 0);
            assert_eq!(counted(&planned.then), vec![counter], "{e:?}");
            assert!(
                !planned
                    .then
                    .iter()
                    .any(|t| matches!(t, OnStored::FirstEngagement { .. })),
                "{e:?} is no engagement"
            );
        }
        let journey = MessageOrigin::Journey {
            journey_id: 5,
            run_id: 1,
            step: "welcome".into(),
            visit: 1,
        };
        let journey_click = message_event(&r, &sent(Some(&journey)), 5, &click("https://b.example/"), key("c"), 0);
        assert!(journey_click.then.contains(&OnStored::FirstEngagement {
            message: 9,
            counter: StepCounter::Clicked,
            origin: Some(journey.clone()),
            channel: "email".into(),
        }));
        assert!(journey_click.then.contains(&OnStored::CountLink {
            message: 9,
            owner: "journey:5".into(),
            part: "welcome".into(),
            url: "https://b.example/".into(),
        }));
        let complaint = message_event(&r, &sent(Some(&journey)), 5, &MessageEvent::Complained, key("s"), 0);
        assert!(complaint.then.contains(&OnStored::Count {
            journey: 5,
            step: "welcome".into(),
            counter: StepCounter::Complained,
        }));
        let workspace_click = message_event(&r, &sent(None), 5, &click("https://b.example/"), key("c"), 0);
        assert!(
            !workspace_click
                .then
                .iter()
                .any(|t| matches!(t, OnStored::CountLink { .. })),
            "a message of no campaign or journey has no link report"
        );
    }

    #[test]
    fn a_run_reaching_its_goal_is_a_conversion_with_its_revenue() {
        let goal = |revenue| RunWrite {
            run_id: 1,
            finished: Some("goal".into()),
            revenue,
            ..Default::default()
        };
        let plan = |w: &RunWrite| match run_write(&rules(&[], &[]), w, row(), None, &HashSet::new(), 7) {
            RunPlan::Apply(ops) => ops
                .into_iter()
                .filter_map(|o| match o {
                    Op::Tally { metric, amount, at } => Some((metric, amount, at)),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            p => panic!("{p:?}"),
        };
        assert_eq!(
            plan(&goal(Some(42.5))),
            vec![(Metric::Conversions, 1.0, 7), (Metric::Revenue, 42.5, 7)]
        );
        assert_eq!(plan(&goal(None)), vec![(Metric::Conversions, 1.0, 7)]);
        let completed = RunWrite {
            finished: Some("completed".into()),
            ..goal(Some(3.0))
        };
        assert_eq!(plan(&completed), vec![]);
    }

    #[test]
    fn a_segment_save_bumps_the_version_only_when_membership_can_change() {
        use nudge_core::segment::Condition;
        let stored = crate::Segment {
            id: 3,
            name: "Buyers".into(),
            description: String::new(),
            definition: Condition::And { conditions: vec![] },
            version: 4,
            administrative: false,
            created_at: 0,
            updated_at: 0,
        };
        let save = |definition: Condition, administrative: bool| crate::NewSegment {
            name: "Best buyers".into(),
            description: "renamed".into(),
            definition,
            administrative,
        };
        let renamed = segment_update(stored.clone(), save(stored.definition.clone(), false), 9);
        assert!(!renamed.recompute && !renamed.flag_changed);
        assert_eq!(
            (
                renamed.segment.version,
                renamed.segment.name.as_str(),
                renamed.segment.updated_at
            ),
            (4, "Best buyers", 9)
        );
        let redefined = segment_update(stored.clone(), save(Condition::Or { conditions: vec![] }, false), 9);
        assert!(redefined.recompute && !redefined.flag_changed);
        assert_eq!(redefined.segment.version, 5);
        assert_eq!(redefined.segment.definition, Condition::Or { conditions: vec![] });
        let flagged = segment_update(stored.clone(), save(stored.definition.clone(), true), 9);
        assert!(flagged.recompute && flagged.flag_changed && flagged.segment.administrative);
        assert_eq!(flagged.segment.version, 5);
    }
}
