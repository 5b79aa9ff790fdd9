//! Carries out plans ([`crate::plan`]) on SQLite, inside the caller's transaction on
//! the writer thread. Nothing here decides what a write implies; it only says how in
//! SQL.

use super::*;
use crate::plan::{self, NewEvent, OnStored, Op, Rules};
use nudge_core::protocol::StepCounter;

/// The facts the rules read, from the writer's cache (loaded on first use, dropped
/// when journeys or segments change).
pub(super) fn rules(tx: &Connection, cache: &mut IdCache) -> Result<Rules> {
    if cache.journey_events.is_none() {
        let names = tx
            .prepare_cached("SELECT name FROM journey_event_names")?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<HashSet<_>>>()?;
        cache.journey_events = Some(Arc::new(names));
    }
    let segments = segments::segment_index(tx, cache)?;
    Ok(Rules {
        journey_events: cache.journey_events.clone().unwrap_or_default(),
        segments,
    })
}

/// Queues a stored event in the journey inbox.
pub(super) fn queue_inbox(
    tx: &Connection,
    event_id: i64,
    contact: ContactId,
    name: &str,
    properties: &str,
    at: Millis,
) -> Result<()> {
    tx.prepare_cached("INSERT INTO journey_inbox (contact_id, event_id, name, properties, at) VALUES (?, ?, ?, ?, ?)")?
        .execute(params![contact, event_id, name, properties, at])?;
    Ok(())
}

/// Queues [`TRAITS_CHANGED`] when a time-triggered journey reads a changed trait.
pub(super) fn traits_changed<'a>(
    tx: &Connection,
    cache: &mut IdCache,
    contact: ContactId,
    changed: impl IntoIterator<Item = &'a String>,
    at: Millis,
) -> Result<()> {
    let read = rules(tx, cache)?.traits_journeys_read(changed);
    if !read.is_empty() {
        queue_traits_changed(tx, contact, &read, at)?;
    }
    Ok(())
}

fn queue_traits_changed(tx: &Connection, contact: ContactId, traits: &[String], at: Millis) -> Result<()> {
    queue_inbox(
        tx,
        0,
        contact,
        TRAITS_CHANGED,
        &plan::traits_changed_properties(traits).to_string(),
        at,
    )
}

/// Adds one to a step's counter.
fn count(tx: &Connection, journey: i64, step: &str, counter: StepCounter) -> Result<()> {
    let column = counter.column();
    tx.prepare_cached(&format!(
        "INSERT INTO journey_step_stats (journey_id, step, {column}) VALUES (?, ?, 1)
         ON CONFLICT (journey_id, step) DO UPDATE SET {column} = {column} + 1"
    ))?
    .execute(params![journey, step])?;
    Ok(())
}

/// Records an event unless its key is stored; if it is new, does what follows.
/// `false`: the key was stored already (nothing done).
pub(super) fn event(tx: &Connection, cache: &mut IdCache, e: &NewEvent) -> Result<bool> {
    let properties = e.properties.to_string();
    let inserted = tx
        .prepare_cached(
            "INSERT INTO events (message_id, contact_id, type, name, timestamp, received_at, properties, context)
             VALUES (?, ?, 'track', ?, ?, ?, ?, '{\"source\":\"nudge\"}') ON CONFLICT (message_id) DO NOTHING",
        )?
        .execute(params![e.key, e.contact, e.name, e.at, e.at, properties])?;
    if inserted == 0 {
        return Ok(false);
    }
    let event_id = tx.last_insert_rowid();
    for then in &e.then {
        match then {
            OnStored::QueueInbox => queue_inbox(tx, event_id, e.contact, &e.name, &properties, e.at)?,
            OnStored::MarkDirty => segments::mark_dirty(tx, cache, e.contact)?,
            OnStored::Count { journey, step, counter } => count(tx, *journey, step, *counter)?,
            OnStored::CountExit { journey, step, exit } => {
                tx.prepare_cached(
                    "INSERT INTO journey_exit_stats (journey_id, step, exit, passed) VALUES (?, ?, ?, 1)
                     ON CONFLICT (journey_id, step, exit) DO UPDATE SET passed = passed + 1",
                )?
                .execute(params![journey, step, exit])?;
            }
        }
    }
    Ok(true)
}

/// Stores a message in the outbox (see `MessageStore::enqueue_message`): the stored
/// one if its key exists (`false`), else the new one with its `Message Queued` event,
/// counted toward the journey step that queued it.
pub(super) fn enqueue(tx: &Connection, cache: &mut IdCache, new: &NewMessage, now: Millis) -> Result<(Message, bool)> {
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM messages WHERE idempotency_key = ?")?
        .query_row([&new.idempotency_key], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        let m = messages::load_message(tx, id)?.ok_or_else(|| StoreError::Corrupt("message vanished".into()))?;
        return Ok((m, false));
    }
    let contact = current_id(tx, new.contact_id)?;
    let origin = crate::messages::OriginColumns::of(new.origin.as_ref());
    tx.prepare_cached(
        "INSERT INTO messages (idempotency_key, contact_id, template_id, template_version, channel,
         transactional, data, state, attempts, next_attempt_at, created_at, updated_at,
         origin_journey_id, origin_run_id, origin_step, origin_visit)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        new.idempotency_key,
        contact,
        new.template_id,
        new.template_version,
        new.channel,
        new.transactional,
        new.data.to_string(),
        now,
        now,
        now,
        origin.journey_id,
        origin.run_id,
        origin.step,
        origin.visit,
    ])?;
    let m = messages::load_message(tx, tx.last_insert_rowid())?
        .ok_or_else(|| StoreError::Corrupt("a new message vanished".into()))?;
    if let Some(OnStored::Count { journey, step, counter }) = plan::queued_count(m.origin.as_ref()) {
        count(tx, journey, &step, counter)?;
    }
    let rules = rules(tx, cache)?;
    event(tx, cache, &plan::message_state(&rules, &m, now))?;
    Ok((m, true))
}

/// Carries out a plan, in order.
pub(super) fn execute(tx: &Connection, cache: &mut IdCache, ops: &[Op], now: Millis) -> Result<()> {
    for op in ops {
        match op {
            Op::Event(e) => {
                event(tx, cache, e)?;
            }
            Op::SaveContact(contact) => save_contact(tx, contact)?,
            Op::QueueTraitsChanged { contact, traits, at } => queue_traits_changed(tx, *contact, traits, *at)?,
            Op::MarkDirty(contact) => segments::mark_dirty(tx, cache, *contact)?,
            Op::UpdateRun {
                run,
                step,
                state,
                finished,
                revenue,
                version,
            } => {
                tx.prepare_cached(
                    "UPDATE journey_runs SET step = ?, state = ?, updated_at = ?, status = ?, finished_at = ?,
                     finish_reason = ?, revenue = coalesce(?, revenue), version = coalesce(?, version),
                     revision = revision + 1 WHERE id = ?",
                )?
                .execute(params![
                    step,
                    state.to_string(),
                    now,
                    if finished.is_some() { "finished" } else { "active" },
                    finished.is_some().then_some(now),
                    finished,
                    revenue,
                    version,
                    run
                ])?;
            }
            Op::ClearTimers { run, keys: None } => {
                tx.prepare_cached("DELETE FROM journey_timers WHERE run_id = ?")?
                    .execute([run])?;
            }
            Op::ClearTimers { run, keys: Some(keys) } => {
                let mut del = tx.prepare_cached("DELETE FROM journey_timers WHERE run_id = ? AND key = ?")?;
                for k in keys {
                    del.execute(params![run, k])?;
                }
            }
            Op::SetTimer { run, key, due } => {
                tx.prepare_cached(
                    "INSERT INTO journey_timers (run_id, key, due_at) VALUES (?, ?, ?)
                     ON CONFLICT (run_id, key) DO UPDATE SET due_at = excluded.due_at, leased_until = NULL",
                )?
                .execute(params![run, key, due])?;
            }
            Op::ClearWaits { run } => {
                tx.prepare_cached("DELETE FROM journey_waits WHERE run_id = ?")?
                    .execute([run])?;
            }
            Op::AddWait {
                run,
                contact,
                event,
                match_value,
            } => {
                tx.prepare_cached(
                    "INSERT INTO journey_waits (run_id, contact_id, event, match_value) VALUES (?, ?, ?, ?)
                     ON CONFLICT (run_id, event) DO UPDATE SET match_value = excluded.match_value",
                )?
                .execute(params![run, contact, event, match_value])?;
            }
            Op::Enqueue(m) => {
                enqueue(tx, cache, m, now)?;
            }
        }
    }
    Ok(())
}
