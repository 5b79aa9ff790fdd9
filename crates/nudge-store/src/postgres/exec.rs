//! Carries out plans ([`crate::plan`]) on PostgreSQL, inside the caller's transaction.
//! Nothing here decides what a write implies; it only says how in SQL.

use super::*;
use crate::plan::{self, NewEvent, OnStored, Op, Rules};
use nudge_core::protocol::StepCounter;

/// The facts the rules read: the journey names as stored now (several processes may
/// change them), the segment index from the process-wide cache.
pub(super) async fn rules(tx: &impl GenericClient) -> Result<Rules> {
    let names: HashSet<String> = tx
        .query("SELECT name FROM journey_event_names", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Rules {
        journey_events: Arc::new(names),
        segments: segments::segment_index(tx).await?,
    })
}

/// Queues a stored event in the journey inbox.
async fn queue_inbox(
    tx: &Transaction<'_>,
    event_id: i64,
    contact: ContactId,
    name: &str,
    properties: &Value,
    at: Millis,
) -> Result<()> {
    tx.execute(
        "INSERT INTO journey_inbox (contact_id, event_id, name, properties, at) VALUES ($1, $2, $3, $4, $5)",
        &[&contact, &event_id, &name, properties, &at],
    )
    .await?;
    Ok(())
}

/// Queues [`TRAITS_CHANGED`] when a time-triggered journey reads a changed trait.
pub(super) async fn traits_changed(
    tx: &Transaction<'_>,
    rules: &Rules,
    contact: ContactId,
    changed: &[String],
    at: Millis,
) -> Result<()> {
    let read = rules.traits_journeys_read(changed);
    if !read.is_empty() {
        queue_traits_changed(tx, contact, &read, at).await?;
    }
    Ok(())
}

async fn queue_traits_changed(tx: &Transaction<'_>, contact: ContactId, traits: &[String], at: Millis) -> Result<()> {
    queue_inbox(
        tx,
        0,
        contact,
        TRAITS_CHANGED,
        &plan::traits_changed_properties(traits),
        at,
    )
    .await
}

/// Adds one to a step's counter.
async fn count(tx: &Transaction<'_>, journey: i64, step: &str, counter: StepCounter) -> Result<()> {
    let column = counter.column();
    tx.execute(
        &format!(
            "INSERT INTO journey_step_stats (journey_id, step, {column}) VALUES ($1, $2, 1)
             ON CONFLICT (journey_id, step) DO UPDATE SET {column} = journey_step_stats.{column} + 1"
        ),
        &[&journey, &step],
    )
    .await?;
    Ok(())
}

/// Records an event unless its key is stored; if it is new, does what follows.
/// `false`: the key was stored already (nothing done).
pub(super) async fn event(tx: &Transaction<'_>, e: &NewEvent) -> Result<bool> {
    let Some(row) = tx
        .query_opt(
            "INSERT INTO events (message_id, contact_id, type, name, timestamp, received_at, properties, context)
             VALUES ($1, $2, 'track', $3, $4, $4, $5, '{\"source\":\"nudge\"}') ON CONFLICT (message_id) DO NOTHING
             RETURNING id",
            &[&e.key, &e.contact, &e.name, &e.at, &e.properties],
        )
        .await?
    else {
        return Ok(false);
    };
    let event_id: i64 = row.get(0);
    let mut dirty = false;
    for then in &e.then {
        match then {
            OnStored::QueueInbox => queue_inbox(tx, event_id, e.contact, &e.name, &e.properties, e.at).await?,
            OnStored::MarkDirty => dirty = true,
            OnStored::Count { journey, step, counter } => count(tx, *journey, step, *counter).await?,
            OnStored::CountExit { journey, step, exit } => {
                tx.execute(
                    "INSERT INTO journey_exit_stats (journey_id, step, exit, passed) VALUES ($1, $2, $3, 1)
                     ON CONFLICT (journey_id, step, exit) DO UPDATE SET passed = journey_exit_stats.passed + 1",
                    &[journey, step, exit],
                )
                .await?;
            }
        }
    }
    if dirty {
        segments::mark_dirty(tx, &[e.contact]).await?;
    }
    Ok(true)
}

/// Stores a message in the outbox (see `MessageStore::enqueue_message`): the stored
/// one if its key exists (`false`), else the new one with its `Message Queued` event,
/// counted toward the journey step that queued it.
pub(super) async fn enqueue(
    tx: &Transaction<'_>,
    rules: &Rules,
    new: &NewMessage,
    now: Millis,
) -> Result<(Message, bool)> {
    let contact = current_id(tx, new.contact_id).await?;
    let origin = crate::messages::OriginColumns::of(new.origin.as_ref());
    let row = tx
        .query_opt(
            "INSERT INTO messages (idempotency_key, contact_id, template_id, template_version, channel,
             transactional, data, state, attempts, next_attempt_at, created_at, updated_at,
             origin_journey_id, origin_run_id, origin_step, origin_visit)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $8, $8, $9, $10, $11, $12)
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            &[
                &new.idempotency_key,
                &contact,
                &new.template_id,
                &new.template_version,
                &new.channel,
                &new.transactional,
                &new.data,
                &now,
                &origin.journey_id,
                &origin.run_id,
                &origin.step,
                &origin.visit,
            ],
        )
        .await?;
    let (id, created) = match row {
        Some(r) => (r.get::<_, i64>(0), true),
        None => {
            let r = tx
                .query_one(
                    "SELECT id FROM messages WHERE idempotency_key = $1",
                    &[&new.idempotency_key],
                )
                .await?;
            (r.get(0), false)
        }
    };
    let m = messages::load_message(tx, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("message vanished".into()))?;
    if created {
        if let Some(OnStored::Count { journey, step, counter }) = plan::queued_count(m.origin.as_ref()) {
            count(tx, journey, &step, counter).await?;
        }
        event(tx, &plan::message_state(rules, &m, now)).await?;
    }
    Ok((m, created))
}

/// Carries out a plan, in order.
pub(super) async fn execute(tx: &Transaction<'_>, rules: &Rules, ops: &[Op], now: Millis) -> Result<()> {
    for op in ops {
        match op {
            Op::Event(e) => {
                event(tx, e).await?;
            }
            Op::SaveContact(contact) => save_contact(tx, contact).await?,
            Op::QueueTraitsChanged { contact, traits, at } => queue_traits_changed(tx, *contact, traits, *at).await?,
            Op::MarkDirty(contact) => segments::mark_dirty(tx, &[*contact]).await?,
            Op::UpdateRun {
                run,
                step,
                state,
                finished,
                revenue,
                version,
            } => {
                tx.execute(
                    "UPDATE journey_runs SET step = $2, state = $3, updated_at = $4, status = $5, finished_at = $6,
                     finish_reason = $7, revenue = coalesce($8, revenue), version = coalesce($9, version),
                     revision = revision + 1 WHERE id = $1",
                    &[
                        run,
                        step,
                        state,
                        &now,
                        &if finished.is_some() { "finished" } else { "active" },
                        &finished.is_some().then_some(now),
                        finished,
                        revenue,
                        version,
                    ],
                )
                .await?;
            }
            Op::ClearTimers { run, keys: None } => {
                tx.execute("DELETE FROM journey_timers WHERE run_id = $1", &[run])
                    .await?;
            }
            Op::ClearTimers { run, keys: Some(keys) } => {
                tx.execute(
                    "DELETE FROM journey_timers WHERE run_id = $1 AND key = ANY($2)",
                    &[run, keys],
                )
                .await?;
            }
            Op::SetTimer { run, key, due } => {
                tx.execute(
                    "INSERT INTO journey_timers (run_id, key, due_at) VALUES ($1, $2, $3)
                     ON CONFLICT (run_id, key) DO UPDATE SET due_at = excluded.due_at, leased_until = NULL",
                    &[run, key, due],
                )
                .await?;
            }
            Op::ClearWaits { run } => {
                tx.execute("DELETE FROM journey_waits WHERE run_id = $1", &[run])
                    .await?;
            }
            Op::AddWait {
                run,
                contact,
                event,
                match_value,
            } => {
                tx.execute(
                    "INSERT INTO journey_waits (run_id, contact_id, event, match_value) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (run_id, event) DO UPDATE SET match_value = excluded.match_value",
                    &[run, contact, event, match_value],
                )
                .await?;
            }
            Op::Enqueue(m) => {
                enqueue(tx, rules, m, now).await?;
            }
        }
    }
    Ok(())
}
