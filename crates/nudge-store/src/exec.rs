//! Carries out plans ([`crate::plan`]) and the storage rules around them, once for
//! both backends, against [`Db`]. The plan decides what a write implies; this module
//! says how in SQL both dialects accept. Each backend calls it inside its own
//! transaction (SQLite through [`crate::sql::run_now`] on the writer thread).

use crate::journeys::{RunWrite, TRAITS_CHANGED};
use crate::messages::{Message, MessageState, NewMessage, OriginColumns};
use crate::plan::{self, NewEvent, OnStored, Op, Rules, RunPlan, RunRow};
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{HOUR_MS, Metric, ReportScope, Result, StoreError};
use nudge_core::protocol::{CampaignCounter, Consent, IdempotencyKey, MessageEvent, MessageOrigin, StepCounter};
use nudge_core::{ContactId, Millis};
use serde_json::Value;
use std::collections::HashSet;

/// The outbox columns every message read selects, in [`message_from_row`]'s order.
pub(crate) const MESSAGE_COLUMNS: &str = "id, idempotency_key, contact_id, template_id, template_version, channel, \
     transactional, data, state, attempts, next_attempt_at, recipient, error, rendered, created_at, updated_at, \
     sent_at, provider_id, origin_journey_id, origin_run_id, origin_step, origin_visit, origin_campaign_id, \
     origin_variant";

pub(crate) fn message_from_row(r: &SqlRow) -> Result<Message> {
    let state = r.string(8)?;
    Ok(Message {
        id: r.i64(0)?,
        idempotency_key: r.string(1)?,
        contact_id: r.i64(2)?,
        template_id: r.i64(3)?,
        template_version: r.i64(4)?,
        channel: r.string(5)?,
        transactional: r.bool(6)?,
        data: r.json(7)?,
        state: MessageState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("message state {state}")))?,
        attempts: r.i64(9)?,
        next_attempt_at: r.opt_i64(10)?,
        recipient: r.opt_string(11)?,
        error: r.opt_string(12)?,
        rendered: r.opt_json(13)?,
        created_at: r.i64(14)?,
        updated_at: r.i64(15)?,
        sent_at: r.opt_i64(16)?,
        provider_id: r.opt_string(17)?,
        origin: origin_at(r, 18)?,
    })
}

/// The origin columns ([`OriginColumns::NAMES`]) read from column `at` on.
fn origin_at(r: &SqlRow, at: usize) -> Result<Option<MessageOrigin>> {
    Ok(OriginColumns::read(r, at)?.origin())
}

pub(crate) async fn load_message<D: Db>(db: &D, id: i64) -> Result<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
    sql::one(db, &sql, &[Arg::I64(id)], message_from_row).await
}

/// Queues a stored event in the journey inbox.
async fn queue_inbox<D: Db>(
    db: &D,
    event_id: i64,
    contact: ContactId,
    name: &str,
    properties: &Value,
    at: Millis,
) -> Result<()> {
    db.execute(
        "INSERT INTO journey_inbox (contact_id, event_id, name, properties, at) VALUES ($1, $2, $3, $4, $5)",
        &[
            Arg::I64(contact),
            Arg::I64(event_id),
            Arg::Str(name),
            Arg::Json(properties),
            Arg::I64(at),
        ],
    )
    .await?;
    Ok(())
}

async fn queue_traits_changed<D: Db>(db: &D, contact: ContactId, traits: &[String], at: Millis) -> Result<()> {
    queue_inbox(
        db,
        0,
        contact,
        TRAITS_CHANGED,
        &plan::traits_changed_properties(traits),
        at,
    )
    .await
}

/// Queues [`TRAITS_CHANGED`] when a time-triggered journey reads a changed trait.
pub(crate) async fn traits_changed<D: Db>(
    db: &D,
    rules: &Rules,
    contact: ContactId,
    changed: &[String],
    at: Millis,
) -> Result<()> {
    let read = rules.traits_journeys_read(changed);
    if !read.is_empty() {
        queue_traits_changed(db, contact, &read, at).await?;
    }
    Ok(())
}

/// Adds `amount` to a step's counter.
pub(crate) async fn count<D: Db>(db: &D, journey: i64, step: &str, counter: StepCounter, amount: i64) -> Result<()> {
    let column = counter.column();
    db.execute(
        &format!(
            "INSERT INTO journey_step_stats (journey_id, step, {column}) VALUES ($1, $2, $3)
             ON CONFLICT (journey_id, step) DO UPDATE SET {column} = journey_step_stats.{column} + $3"
        ),
        &[Arg::I64(journey), Arg::Str(step), Arg::I64(amount)],
    )
    .await?;
    Ok(())
}

/// Who a message's counters belong to: its campaign variant, its journey, its
/// channel (see [`count_message`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Counted {
    pub campaign: Option<(i64, u8)>,
    pub journey: Option<i64>,
    pub channel: String,
}

impl Counted {
    pub(crate) fn of(origin: Option<&MessageOrigin>, channel: &str) -> Self {
        Counted {
            campaign: origin.and_then(MessageOrigin::campaign_variant),
            journey: origin.and_then(MessageOrigin::journey_id),
            channel: channel.to_string(),
        }
    }
}

/// Adds to a message's counters (see [`OnStored::CountMessage`]): its campaign
/// variant's, and the hourly report counters of its campaign, journey and channel at
/// `at`.
pub(crate) async fn count_message<D: Db>(
    db: &D,
    who: &Counted,
    counter: CampaignCounter,
    amount: f64,
    at: Millis,
) -> Result<()> {
    let mut scopes = vec![ReportScope::Channel(who.channel.clone())];
    if let Some((campaign, variant)) = who.campaign {
        db.execute(
            "INSERT INTO campaign_stats (campaign_id, variant, counter, value) VALUES ($1, $2, $3, $4)
             ON CONFLICT (campaign_id, variant, counter) DO UPDATE SET value = campaign_stats.value + excluded.value",
            &[
                Arg::I64(campaign),
                Arg::I64(i64::from(variant)),
                Arg::Str(counter.as_str()),
                Arg::OptF64(Some(amount)),
            ],
        )
        .await?;
        scopes.push(ReportScope::Campaign(campaign));
    }
    if let Some(journey) = who.journey {
        scopes.push(ReportScope::Journey(journey));
    }
    for scope in scopes {
        db.execute(
            "INSERT INTO report_hourly (hour, scope, counter, value) VALUES ($1, $2, $3, $4)
             ON CONFLICT (scope, hour, counter) DO UPDATE SET value = report_hourly.value + excluded.value",
            &[
                Arg::I64(at.div_euclid(HOUR_MS)),
                Arg::Str(&scope.key()),
                Arg::Str(counter.as_str()),
                Arg::OptF64(Some(amount)),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Adds to the workspace's hourly count of `metric`.
pub(crate) async fn tally<D: Db>(db: &D, metric: Metric, amount: f64, at: Millis) -> Result<()> {
    db.execute(
        "INSERT INTO hourly_stats (hour, metric, value) VALUES ($1, $2, $3)
         ON CONFLICT (hour, metric) DO UPDATE SET value = hourly_stats.value + excluded.value",
        &[
            Arg::I64(at.div_euclid(HOUR_MS)),
            Arg::Str(metric.as_str()),
            Arg::OptF64(Some(amount)),
        ],
    )
    .await?;
    Ok(())
}

/// Records an event unless its key is stored; if it is new, does what follows.
/// `false`: the key was stored already (nothing done).
pub(crate) async fn event<D: Db>(db: &D, e: &NewEvent) -> Result<bool> {
    let Some(event_id) = db
        .insert(
            db.insert_event(),
            &[
                Arg::Str(&e.key),
                Arg::I64(e.contact),
                Arg::Str(&e.name),
                Arg::I64(e.at),
                Arg::Json(&e.properties),
            ],
        )
        .await?
    else {
        return Ok(false);
    };
    for then in &e.then {
        match then {
            OnStored::QueueInbox => queue_inbox(db, event_id, e.contact, &e.name, &e.properties, e.at).await?,
            OnStored::MarkDirty => db.mark_dirty(e.contact).await?,
            OnStored::Count { journey, step, counter } => count(db, *journey, step, *counter, 1).await?,
            OnStored::Tally { metric, amount } => tally(db, *metric, *amount, e.at).await?,
            OnStored::CountMessage {
                origin,
                channel,
                counter,
                amount,
            } => count_message(db, &Counted::of(origin.as_ref(), channel), *counter, *amount, e.at).await?,
            OnStored::CountDomain {
                campaign,
                domain,
                counter,
            } => {
                db.execute(
                    "INSERT INTO campaign_domains (campaign_id, domain, counter, value) VALUES ($1, $2, $3, 1)
                     ON CONFLICT (campaign_id, domain, counter) DO UPDATE SET value = campaign_domains.value + 1",
                    &[Arg::I64(*campaign), Arg::Str(domain), Arg::Str(counter.as_str())],
                )
                .await?;
            }
            OnStored::FirstEngagement {
                message,
                counter,
                origin,
                channel,
            } => {
                let column = match counter {
                    StepCounter::Clicked => "first_clicked_at",
                    _ => "first_opened_at",
                };
                let first = db
                    .execute(
                        &format!("UPDATE messages SET {column} = $2 WHERE id = $1 AND {column} IS NULL"),
                        &[Arg::I64(*message), Arg::I64(e.at)],
                    )
                    .await?
                    > 0;
                if first {
                    let clicked = *counter == StepCounter::Clicked;
                    let unique = if clicked {
                        CampaignCounter::UniqueClicked
                    } else {
                        CampaignCounter::UniqueOpened
                    };
                    count_message(db, &Counted::of(origin.as_ref(), channel), unique, 1.0, e.at).await?;
                    if let Some(MessageOrigin::Journey { journey_id, step, .. }) = origin {
                        let unique = if clicked {
                            StepCounter::UniqueClicked
                        } else {
                            StepCounter::UniqueOpened
                        };
                        count(db, *journey_id, step, unique, 1).await?;
                    }
                }
            }
            OnStored::CountLink {
                message,
                owner,
                part,
                url,
            } => {
                let first = db
                    .execute(
                        "INSERT INTO message_link_clicks (message_id, url) VALUES ($1, $2)
                         ON CONFLICT (message_id, url) DO NOTHING",
                        &[Arg::I64(*message), Arg::Str(url)],
                    )
                    .await?
                    > 0;
                db.execute(
                    "INSERT INTO link_clicks (owner, part, url, clicks, unique_clicks) VALUES ($1, $2, $3, 1, $4)
                     ON CONFLICT (owner, part, url) DO UPDATE SET clicks = link_clicks.clicks + 1,
                     unique_clicks = link_clicks.unique_clicks + excluded.unique_clicks",
                    &[
                        Arg::Str(owner),
                        Arg::Str(part),
                        Arg::Str(url),
                        Arg::I64(i64::from(first)),
                    ],
                )
                .await?;
            }
            OnStored::CountExit { journey, step, exit } => {
                db.execute(
                    "INSERT INTO journey_exit_stats (journey_id, step, exit, passed) VALUES ($1, $2, $3, 1)
                     ON CONFLICT (journey_id, step, exit) DO UPDATE SET passed = journey_exit_stats.passed + 1",
                    &[Arg::I64(*journey), Arg::Str(step), Arg::Str(exit)],
                )
                .await?;
            }
        }
    }
    Ok(true)
}

/// Stores a message in the outbox (see `MessageStore::enqueue_message`): the stored
/// one if its key exists (`false`), else the new one with its `Message Queued` event,
/// counted toward the journey step that queued it.
pub(crate) async fn enqueue<D: Db>(db: &D, rules: &Rules, new: &NewMessage, now: Millis) -> Result<(Message, bool)> {
    let contact = db.current_id(new.contact_id).await?;
    let (id, created) = insert_message(db, new, contact, now).await?;
    let m = load_message(db, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("message vanished".into()))?;
    if created {
        for then in plan::queued_counts(m.origin.as_ref(), &m.channel) {
            match then {
                OnStored::Count { journey, step, counter } => count(db, journey, &step, counter, 1).await?,
                OnStored::CountMessage {
                    origin,
                    channel,
                    counter,
                    amount,
                } => count_message(db, &Counted::of(origin.as_ref(), &channel), counter, amount, now).await?,
                _ => {}
            }
        }
        event(db, &plan::message_state(rules, &m, now)).await?;
    }
    Ok((m, created))
}

/// Stores messages in the outbox with the same rows, `Message Queued` events and
/// counters as [`enqueue`] gives each of them, for a batch (a campaign's): nothing is
/// read back (each event is planned from the message as inserted), and the counters
/// the new messages move (workspace hourly counts, campaign variants, journey steps)
/// are added up and written once per counter, in key order. Each message's id, and
/// whether it is new (`false`: its key was stored already, nothing done).
pub(crate) async fn enqueue_many<D: Db>(
    db: &D,
    rules: &Rules,
    new: &[&NewMessage],
    now: Millis,
) -> Result<Vec<(i64, bool)>> {
    let mut totals = Totals::default();
    let mut out = Vec::with_capacity(new.len());
    for n in new {
        let contact = db.current_id(n.contact_id).await?;
        let (id, created) = insert_message(db, n, contact, now).await?;
        if created {
            let m = queued(id, n, contact, now);
            for then in plan::queued_counts(m.origin.as_ref(), &m.channel) {
                totals.add(then, now);
            }
            state_event(db, rules, &m, now, &mut totals).await?;
        }
        out.push((id, created));
    }
    totals.write(db).await?;
    Ok(out)
}

/// A message as [`insert_message`] stores it (what `load_message` would read, but
/// for its data, which no event reads).
fn queued(id: i64, new: &NewMessage, contact: ContactId, now: Millis) -> Message {
    Message {
        id,
        idempotency_key: new.idempotency_key.clone(),
        contact_id: contact,
        template_id: new.template_id,
        template_version: new.template_version,
        channel: new.channel.clone(),
        transactional: new.transactional,
        data: Value::Null,
        state: MessageState::Queued,
        attempts: 0,
        next_attempt_at: Some(now),
        recipient: None,
        error: None,
        rendered: None,
        created_at: now,
        updated_at: now,
        sent_at: None,
        provider_id: None,
        origin: new.origin.clone(),
    }
}

/// Counter increments added up, to be written once each.
#[derive(Default)]
struct Totals {
    /// (hour, metric) → amount.
    tallies: std::collections::BTreeMap<(i64, &'static str), (Metric, f64)>,
    /// (who, hour, counter) → amount: campaign variants' and report counters.
    messages: std::collections::BTreeMap<(Counted, i64, &'static str), (CampaignCounter, f64)>,
    /// (journey, step, counter) → amount.
    steps: std::collections::BTreeMap<(i64, String, &'static str), (StepCounter, i64)>,
}

impl Totals {
    /// Whether a follow-up is a counter increment (added up here).
    fn takes(then: &OnStored) -> bool {
        matches!(
            then,
            OnStored::Tally { .. } | OnStored::CountMessage { .. } | OnStored::Count { .. }
        )
    }

    /// Adds a counter increment (at `at`, for the hourly counts); anything else is ignored.
    fn add(&mut self, then: OnStored, at: Millis) {
        match then {
            OnStored::Tally { metric, amount } => {
                self.tallies
                    .entry((at.div_euclid(HOUR_MS), metric.as_str()))
                    .or_insert((metric, 0.0))
                    .1 += amount;
            }
            OnStored::CountMessage {
                origin,
                channel,
                counter,
                amount,
            } => {
                self.messages
                    .entry((
                        Counted::of(origin.as_ref(), &channel),
                        at.div_euclid(HOUR_MS),
                        counter.as_str(),
                    ))
                    .or_insert((counter, 0.0))
                    .1 += amount;
            }
            OnStored::Count { journey, step, counter } => {
                self.steps
                    .entry((journey, step, counter.column()))
                    .or_insert((counter, 0))
                    .1 += 1;
            }
            _ => {}
        }
    }

    async fn write<D: Db>(self, db: &D) -> Result<()> {
        for ((hour, _), (metric, amount)) in self.tallies {
            tally(db, metric, amount, hour * HOUR_MS).await?;
        }
        for ((who, hour, _), (counter, amount)) in self.messages {
            count_message(db, &who, counter, amount, hour * HOUR_MS).await?;
        }
        for ((journey, step, _), (counter, amount)) in self.steps {
            count(db, journey, &step, counter, amount).await?;
        }
        Ok(())
    }
}

/// Inserts a message into the outbox unless its key is stored: its id, and whether
/// it is new.
async fn insert_message<D: Db>(db: &D, new: &NewMessage, contact: ContactId, now: Millis) -> Result<(i64, bool)> {
    let origin = OriginColumns::of(new.origin.as_ref());
    let inserted = db
        .insert(
            "INSERT INTO messages (idempotency_key, contact_id, template_id, template_version, channel,
             transactional, data, state, attempts, next_attempt_at, created_at, updated_at,
             origin_journey_id, origin_run_id, origin_step, origin_visit, origin_campaign_id, origin_variant)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $8, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (idempotency_key) DO NOTHING",
            &[
                Arg::Str(&new.idempotency_key),
                Arg::I64(contact),
                Arg::I64(new.template_id),
                Arg::I64(new.template_version),
                Arg::Str(&new.channel),
                Arg::Bool(new.transactional),
                Arg::Json(&new.data),
                Arg::I64(now),
                Arg::OptI64(origin.journey_id),
                Arg::OptI64(origin.run_id),
                Arg::OptStr(origin.step.as_deref()),
                Arg::OptI32(origin.visit),
                Arg::OptI64(origin.campaign_id),
                Arg::OptI64(origin.variant.map(i64::from)),
            ],
        )
        .await?;
    Ok(match inserted {
        Some(id) => (id, true),
        None => {
            let r = sql::first(
                db,
                "SELECT id FROM messages WHERE idempotency_key = $1",
                &[Arg::Str(&new.idempotency_key)],
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("message vanished".into()))?;
            (r.i64(0)?, false)
        }
    })
}

/// Records the timeline event of a message's current state, its counters added to
/// `totals` (written once per key by the caller) instead of one by one.
async fn state_event<D: Db>(db: &D, rules: &Rules, m: &Message, now: Millis, totals: &mut Totals) -> Result<()> {
    let mut e = plan::message_state(rules, m, now);
    let (counters, rest): (Vec<OnStored>, Vec<OnStored>) = e.then.drain(..).partition(Totals::takes);
    e.then = rest;
    if event(db, &e).await? {
        for c in counters {
            totals.add(c, e.at);
        }
    }
    Ok(())
}

/// Records the timeline events of messages' current states (a delivery round's
/// outcomes), their counters added up and written once per key, as
/// [`enqueue_many`] does.
pub(crate) async fn message_states<D: Db>(db: &D, rules: &Rules, messages: &[Message], now: Millis) -> Result<()> {
    let mut totals = Totals::default();
    for m in messages {
        state_event(db, rules, m, now, &mut totals).await?;
    }
    totals.write(db).await
}

/// Records the timeline event of a message's current state.
pub(crate) async fn message_state<D: Db>(db: &D, rules: &Rules, m: &Message, now: Millis) -> Result<()> {
    event(db, &plan::message_state(rules, m, now)).await?;
    Ok(())
}

/// An event about a message (opened, clicked, ...) on its contact's timeline,
/// counted toward what sent it (see `MessageStore::record_message_event`).
pub(crate) async fn message_event<D: Db>(
    db: &D,
    message: i64,
    e: &MessageEvent,
    key: String,
    now: Millis,
) -> Result<bool> {
    let Some(sent) = sent_message(db, message).await? else {
        return Ok(false);
    };
    record_message_event(db, &sent, e, key, now).await
}

/// A recipient's answer through a message's link: the consent change
/// `MessageEvent::consent` decides, then the event.
pub(crate) async fn answer_message<D: Db>(
    db: &D,
    message: i64,
    e: &MessageEvent,
    key: String,
    now: Millis,
) -> Result<crate::Answer> {
    let Some(sent) = sent_message(db, message).await? else {
        return Ok(crate::Answer::NoMessage);
    };
    let current = match e.subscription() {
        Some(subscription) => db
            .load_contact(sent.contact)
            .await?
            .and_then(|c| c.subscriptions.get(subscription).copied()),
        None => None,
    };
    match e.consent(current) {
        Consent::AlreadyConfirmed => return Ok(crate::Answer::AlreadyConfirmed),
        Consent::NotPending => return Ok(crate::Answer::NotPending),
        Consent::Unchanged => {}
        Consent::Set { subscription, state } => {
            let patch = crate::ContactPatch {
                subscriptions: std::collections::BTreeMap::from([(subscription, state)]),
                ..Default::default()
            };
            crate::shared::contacts::update(db, sent.contact, &patch, now).await?;
        }
    }
    Ok(if record_message_event(db, &sent, e, key, now).await? {
        crate::Answer::Recorded
    } else {
        crate::Answer::Repeated
    })
}

/// What a message event needs of its message: the contact (followed through
/// merges) and the origin, not the rendered body.
struct SentRow {
    id: i64,
    contact: ContactId,
    channel: String,
    template_id: Option<i64>,
    origin: Option<MessageOrigin>,
}

async fn sent_message<D: Db>(db: &D, message: i64) -> Result<Option<SentRow>> {
    let Some(r) = sql::first(
        db,
        &format!(
            "SELECT contact_id, channel, template_id, {} FROM messages WHERE id = $1",
            OriginColumns::NAMES
        ),
        &[Arg::I64(message)],
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(SentRow {
        id: message,
        contact: db.current_id(r.i64(0)?).await?,
        channel: r.string(1)?,
        template_id: r.opt_i64(2)?,
        origin: origin_at(&r, 3)?,
    }))
}

async fn record_message_event<D: Db>(db: &D, m: &SentRow, e: &MessageEvent, key: String, now: Millis) -> Result<bool> {
    let sent = plan::SentMessage {
        id: m.id,
        template_id: m.template_id,
        origin: m.origin.as_ref(),
        channel: &m.channel,
    };
    let rules = db.rules().await?;
    let stored = event(
        db,
        &plan::message_event(&rules, &sent, m.contact, e, IdempotencyKey::external(key), now),
    )
    .await?;
    // Opens and clicks score, in the same transaction, once per stored event.
    let happening = match e {
        MessageEvent::Opened => Some(nudge_core::scoring::Happening::EmailOpened {
            template: sent.template_id,
        }),
        MessageEvent::Clicked { .. } => Some(nudge_core::scoring::Happening::EmailClicked {
            template: sent.template_id,
        }),
        _ => None,
    };
    if let (true, Some(h)) = (stored, happening) {
        crate::shared::scoring::apply(db, &rules, &[(m.contact, h)], now).await?;
    }
    Ok(stored)
}

/// Carries out a plan's operations in order; the lead-scoring ones are gathered and
/// written together at the end ([`ScoreWrites`]).
pub(crate) async fn execute<D: Db>(db: &D, rules: &Rules, ops: &[Op], now: Millis) -> Result<()> {
    let mut scores = ScoreWrites::default();
    for op in ops {
        match op {
            Op::Event(e) => {
                event(db, e).await?;
            }
            Op::SaveContact(contact) => db.save_contact(contact).await?,
            Op::SetTraits { contact, traits, at } => {
                db.execute(
                    "UPDATE contacts SET traits = $2, updated_at = $3 WHERE id = $1",
                    &[Arg::I64(*contact), Arg::Json(traits), Arg::I64(*at)],
                )
                .await?;
            }
            Op::QueueTraitsChanged { contact, traits, at } => queue_traits_changed(db, *contact, traits, *at).await?,
            Op::MarkDirty(contact) => db.mark_dirty(*contact).await?,
            Op::Tally { metric, amount, at } => tally(db, *metric, *amount, *at).await?,
            Op::UpdateRun {
                run,
                step,
                state,
                finished,
                revenue,
                version,
            } => {
                db.execute(
                    "UPDATE journey_runs SET step = $2, state = $3, updated_at = $4, status = $5, finished_at = $6,
                     finish_reason = $7, revenue = coalesce($8, revenue), version = coalesce($9, version),
                     revision = revision + 1 WHERE id = $1",
                    &[
                        Arg::I64(*run),
                        Arg::OptStr(step.as_deref()),
                        Arg::Json(state),
                        Arg::I64(now),
                        Arg::Str(if finished.is_some() { "finished" } else { "active" }),
                        Arg::OptI64(finished.is_some().then_some(now)),
                        Arg::OptStr(finished.as_deref()),
                        Arg::OptF64(*revenue),
                        Arg::OptI64(*version),
                    ],
                )
                .await?;
            }
            Op::ClearTimers { run, keys: None } => {
                db.execute("DELETE FROM journey_timers WHERE run_id = $1", &[Arg::I64(*run)])
                    .await?;
            }
            Op::ClearTimers { run, keys: Some(keys) } => {
                for k in keys {
                    db.execute(
                        "DELETE FROM journey_timers WHERE run_id = $1 AND key = $2",
                        &[Arg::I64(*run), Arg::Str(k)],
                    )
                    .await?;
                }
            }
            Op::SetTimer { run, key, due } => {
                db.execute(
                    "INSERT INTO journey_timers (run_id, key, due_at) VALUES ($1, $2, $3)
                     ON CONFLICT (run_id, key) DO UPDATE SET due_at = excluded.due_at, leased_until = NULL",
                    &[Arg::I64(*run), Arg::Str(key), Arg::I64(*due)],
                )
                .await?;
            }
            Op::ClearWaits { run } => {
                db.execute("DELETE FROM journey_waits WHERE run_id = $1", &[Arg::I64(*run)])
                    .await?;
            }
            Op::AddWait {
                run,
                contact,
                event,
                match_value,
            } => {
                db.execute(
                    "INSERT INTO journey_waits (run_id, contact_id, event, match_value) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (run_id, event) DO UPDATE SET match_value = excluded.match_value",
                    &[
                        Arg::I64(*run),
                        Arg::I64(*contact),
                        Arg::Str(event),
                        Arg::OptStr(match_value.as_deref()),
                    ],
                )
                .await?;
            }
            Op::Enqueue(m) => {
                enqueue(db, rules, m, now).await?;
            }
            Op::SetScores {
                contact,
                scores: rows,
                patch,
                at,
            } => {
                scores.rows.insert(*contact, (rows, patch.as_ref(), *at));
            }
            Op::RecordScoreChange {
                contact,
                score,
                previous,
                value,
                reason,
                at,
            } => {
                let (reason, rules) = crate::scoring::reason_columns(reason);
                scores
                    .changes
                    .push((*contact, score.as_str(), *at, *previous, *value, reason, rules));
            }
            Op::SetOrders { rows, at } => crate::shared::orders::write(db, rows, *at).await?,
            Op::SetManyTraits { rows, at } => {
                let rows: Vec<(ContactId, &Value)> = rows.iter().map(|(c, t)| (*c, t)).collect();
                db.set_traits(&rows, *at).await?;
            }
        }
    }
    scores.write(db).await
}

/// The lead-scoring writes of one [`execute`] (they touch only the contacts' rows
/// and the history, so they can go last): the last [`Op::SetScores`] per contact,
/// and the history rows, each kind written together ([`Db::set_scores`],
/// [`Db::execute_rows`]) rather than one statement per score change.
#[derive(Default)]
struct ScoreWrites<'a> {
    /// contact → (its scores, the score traits that changed, at).
    rows: std::collections::BTreeMap<ContactId, (&'a crate::scoring::ScoreRows, Option<&'a Value>, Millis)>,
    /// History rows: (contact, score, at, previous, value, reason, rules).
    changes: Vec<(ContactId, &'a str, Millis, f64, f64, &'static str, String)>,
}

impl ScoreWrites<'_> {
    async fn write<D: Db>(&self, db: &D) -> Result<()> {
        let rows: Vec<crate::sql::ScoresRow<'_>> = self
            .rows
            .iter()
            .map(|(contact, (scores, patch, at))| crate::sql::ScoresRow {
                contact: *contact,
                scores: scores.column(),
                due: scores.due(),
                patch: *patch,
                at: *at,
            })
            .collect();
        db.set_scores(&rows).await?;
        let args: Vec<Arg<'_>> = self
            .changes
            .iter()
            .flat_map(|(contact, score, at, previous, value, reason, rules)| {
                [
                    Arg::I64(*contact),
                    Arg::Str(score),
                    Arg::I64(*at),
                    Arg::OptF64(Some(*previous)),
                    Arg::OptF64(Some(*value)),
                    Arg::Str(reason),
                    Arg::Str(rules),
                ]
            })
            .collect();
        db.execute_rows(
            "INSERT INTO score_changes (contact_id, score, at, previous, value, reason, rules)",
            7,
            "",
            &args,
        )
        .await
    }
}

/// Applies one transition, planned by [`plan::run_write`] (the run's row locked
/// where the backend locks); `false` if it was computed from an older revision of
/// the run than the stored one (nothing applied).
pub(crate) async fn apply_write<D: Db>(db: &D, rules: &Rules, w: &RunWrite, now: Millis) -> Result<bool> {
    // Only what the plan needs (not the state: parsing it would cost more than the write).
    let sql = format!(
        "SELECT contact_id, finished_at, revision, error FROM journey_runs WHERE id = $1{}",
        db.for_update()
    );
    let run = match sql::first(db, &sql, &[Arg::I64(w.run_id)]).await? {
        Some(r) => Some(RunRow {
            contact: db.current_id(r.i64(0)?).await?,
            finished: r.opt_i64(1)?.is_some() || r.opt_string(3)?.is_some(),
            revision: r.i64(2)?,
        }),
        None => None,
    };
    let (contact, applied) = match run {
        Some(r) if !w.contact_updates.is_empty() => {
            let mut applied = HashSet::new();
            for key in plan::contact_update_keys(w) {
                let stored = format!("SELECT 1 FROM {} WHERE message_id = $1", db.message_id_table());
                if sql::first(db, &stored, &[Arg::Str(&key)]).await?.is_some() {
                    applied.insert(key);
                }
            }
            (db.load_contact(r.contact).await?, applied)
        }
        _ => (None, HashSet::new()),
    };
    match plan::run_write(rules, w, run, contact, &applied, now) {
        RunPlan::Nothing => Ok(true),
        RunPlan::Stale => Ok(false),
        RunPlan::Apply(ops) => {
            execute(db, rules, &ops, now).await?;
            Ok(true)
        }
    }
}

/// Sets a run aside (see `JourneyStore::set_run_aside`).
pub(crate) async fn set_run_aside<D: Db>(db: &D, run: i64, error: &str, now: Millis) -> Result<bool> {
    let changed = db
        .execute(
            "UPDATE journey_runs SET status = 'set_aside', error = $2, updated_at = $3
             WHERE id = $1 AND finished_at IS NULL AND error IS NULL",
            &[Arg::I64(run), Arg::Str(error), Arg::I64(now)],
        )
        .await?;
    if changed > 0 {
        db.execute("DELETE FROM journey_timers WHERE run_id = $1", &[Arg::I64(run)])
            .await?;
        db.execute("DELETE FROM journey_waits WHERE run_id = $1", &[Arg::I64(run)])
            .await?;
    }
    Ok(changed > 0)
}
