//! Send-time profiles, written once for both backends (see `SendTimeStore`): the
//! engagement events read after the engine's cursor, each contact's profile and the
//! workspace's. What an event counts for is `nudge_core::send_time`'s rule.

use crate::send_time::{EngagementEvent, SendTimeState};
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{Result, StoreError};
use nudge_core::send_time::{ENGAGEMENT_EVENTS, Profile, engagement_of};
use nudge_core::{ContactId, Millis};
use serde_json::Value;
use std::collections::HashMap;

/// Event ids read per statement at most (a range of the primary key), so a backlog
/// of other events is never read in one go.
const ID_SPAN: i64 = 50_000;

fn profile(v: Value, whose: &str) -> Result<Profile> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("{whose}'s send-time profile: {e}")))
}

fn json(p: &Profile) -> Result<Value> {
    serde_json::to_value(p).map_err(|e| StoreError::Corrupt(format!("send-time profile: {e}")))
}

pub(crate) async fn state<D: Db>(db: &D) -> Result<SendTimeState> {
    let row = sql::first(
        db,
        "SELECT profile, event_cursor FROM send_time_state WHERE id = 1",
        &[],
    )
    .await?;
    let Some(r) = row else {
        return Ok(SendTimeState::default());
    };
    Ok(SendTimeState {
        workspace: profile(r.json(0)?, "the workspace")?,
        event_cursor: r.i64(1)?,
    })
}

/// See `SendTimeStore::engagements_since`: the events in the next [`ID_SPAN`] ids
/// that may be engagements (the names written into the statement), then their
/// messages' sending times for opens, in one more statement.
pub(crate) async fn engagements_since<D: Db>(db: &D, after: i64, limit: usize) -> Result<(Vec<EngagementEvent>, i64)> {
    let last = sql::first(db, "SELECT MAX(id) FROM events", &[])
        .await?
        .map(|r| r.opt_i64(0))
        .transpose()?
        .flatten()
        .unwrap_or(0);
    if last <= after {
        return Ok((Vec::new(), after));
    }
    let upper = last.min(after.saturating_add(ID_SPAN));
    let names = ENGAGEMENT_EVENTS
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let limit = limit.max(1);
    let rows = sql::all(
        db,
        &format!(
            "SELECT id, contact_id, type, name, timestamp, properties FROM events
              WHERE id > $1 AND id <= $2 AND (type IN ('page', 'screen') OR name IN ({names}))
              ORDER BY id LIMIT $3"
        ),
        &[Arg::I64(after), Arg::I64(upper), Arg::I64(limit as i64)],
        |r: &SqlRow| {
            let message = match r.json(5)? {
                Value::Object(p) => p.get("message_id").and_then(Value::as_i64),
                _ => None,
            };
            Ok((r.i64(0)?, r.i64(1)?, r.string(2)?, r.opt_string(3)?, r.i64(4)?, message))
        },
    )
    .await?;
    let cursor = if rows.len() == limit {
        rows.last().map_or(upper, |r| r.0)
    } else {
        upper
    };
    let opened: Vec<i64> = rows
        .iter()
        .filter(|r| r.3.as_deref() == Some(nudge_core::protocol::event_names::EMAIL_OPENED))
        .filter_map(|r| r.5)
        .collect();
    let mut sent_at: HashMap<i64, Millis> = HashMap::new();
    if !opened.is_empty() {
        // Whole numbers written into the statement (no strings).
        let list = opened.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        let found = sql::all(
            db,
            &format!("SELECT id, sent_at FROM messages WHERE id IN ({list}) AND sent_at IS NOT NULL"),
            &[],
            |r| Ok((r.i64(0)?, r.i64(1)?)),
        )
        .await?;
        sent_at.extend(found);
    }
    let mut out = Vec::with_capacity(rows.len());
    for (id, contact, call_type, name, at, message) in rows {
        let sent = message.and_then(|m| sent_at.get(&m).copied());
        if let Some(engagement) = engagement_of(&call_type, name.as_deref(), sent) {
            out.push(EngagementEvent {
                id,
                contact,
                at,
                engagement,
            });
        }
    }
    Ok((out, cursor))
}

pub(crate) async fn profiles<D: Db>(db: &D, contacts: &[ContactId]) -> Result<Vec<(ContactId, Profile)>> {
    let mut out = Vec::with_capacity(contacts.len());
    for chunk in contacts.chunks(500) {
        let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        let rows = sql::all(
            db,
            &format!("SELECT contact_id, profile FROM contact_send_times WHERE contact_id IN ({list})"),
            &[],
            |r| {
                let id = r.i64(0)?;
                Ok((id, profile(r.json(1)?, &format!("contact {id}"))?))
            },
        )
        .await?;
        out.extend(rows);
    }
    Ok(out)
}

async fn put<D: Db>(db: &D, contact: ContactId, p: &Profile, now: Millis) -> Result<()> {
    db.execute(
        "INSERT INTO contact_send_times (contact_id, profile, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (contact_id) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at",
        &[Arg::I64(contact), Arg::Json(&json(p)?), Arg::I64(now)],
    )
    .await?;
    Ok(())
}

async fn stored<D: Db>(db: &D, contact: ContactId) -> Result<Option<Profile>> {
    let row = sql::first(
        db,
        "SELECT profile FROM contact_send_times WHERE contact_id = $1",
        &[Arg::I64(contact)],
    )
    .await?;
    row.map(|r| profile(r.json(0)?, &format!("contact {contact}")))
        .transpose()
}

pub(crate) async fn save<D: Db>(
    db: &D,
    profiles: Vec<(ContactId, Profile)>,
    workspace: &Profile,
    from: i64,
    to: i64,
    now: Millis,
) -> Result<bool> {
    let moved = db
        .execute(
            "UPDATE send_time_state SET profile = $1, event_cursor = $2, updated_at = $3
              WHERE id = 1 AND event_cursor = $4",
            &[
                Arg::Json(&json(workspace)?),
                Arg::I64(to),
                Arg::I64(now),
                Arg::I64(from),
            ],
        )
        .await?;
    if moved == 0 {
        return Ok(false);
    }
    for (contact, p) in profiles {
        let id = db.current_id(contact).await?;
        if id == contact {
            if db.load_contact(id).await?.is_some() {
                put(db, id, &p, now).await?;
            }
        } else if db.load_contact(id).await?.is_some() {
            // Merged since it was read: what it counted joins the survivor's.
            let mut survivor = stored(db, id).await?.unwrap_or_default();
            survivor.absorb(&p);
            put(db, id, &survivor, now).await?;
        }
    }
    Ok(true)
}

/// A merge: the merged-away contact's profile joins the survivor's.
pub(crate) async fn merge<D: Db>(db: &D, from: ContactId, into: ContactId, now: Millis) -> Result<()> {
    let Some(away) = stored(db, from).await? else {
        return Ok(());
    };
    let mut survivor = stored(db, into).await?.unwrap_or_default();
    survivor.absorb(&away);
    put(db, into, &survivor, now).await?;
    db.execute(
        "DELETE FROM contact_send_times WHERE contact_id = $1",
        &[Arg::I64(from)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn contact<D: Db>(db: &D, contact: ContactId) -> Result<Option<Profile>> {
    let id = db.current_id(contact).await?;
    stored(db, id).await
}

macro_rules! impl_send_time_store {
    ($store:ty, $write:ident, $read:ident) => {
        #[async_trait::async_trait]
        impl $crate::SendTimeStore for $store {
            async fn send_time_state(&self) -> $crate::Result<$crate::SendTimeState> {
                $read!(self, |db| $crate::shared::send_time::state(db))
            }
            async fn engagements_since(
                &self,
                after: i64,
                limit: usize,
            ) -> $crate::Result<(Vec<$crate::EngagementEvent>, i64)> {
                $read!(self, |db| $crate::shared::send_time::engagements_since(
                    db, after, limit
                ))
            }
            async fn send_time_profiles(
                &self,
                contacts: &[nudge_core::ContactId],
            ) -> $crate::Result<Vec<(nudge_core::ContactId, nudge_core::send_time::Profile)>> {
                let contacts = contacts.to_vec();
                $read!(self, |db| async move {
                    $crate::shared::send_time::profiles(db, &contacts).await
                })
            }
            async fn save_send_times(
                &self,
                profiles: Vec<(nudge_core::ContactId, nudge_core::send_time::Profile)>,
                workspace: &nudge_core::send_time::Profile,
                from: i64,
                to: i64,
                now: nudge_core::Millis,
            ) -> $crate::Result<bool> {
                let workspace = workspace.clone();
                $write!(self, |db| async move {
                    $crate::shared::send_time::save(db, profiles, &workspace, from, to, now).await
                })
            }
            async fn contact_send_time(
                &self,
                contact: nudge_core::ContactId,
            ) -> $crate::Result<Option<nudge_core::send_time::Profile>> {
                $read!(self, |db| $crate::shared::send_time::contact(db, contact))
            }
        }
    };
}
pub(crate) use impl_send_time_store;
