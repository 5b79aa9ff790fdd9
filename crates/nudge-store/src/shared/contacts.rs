//! Contacts, written once where both dialects share the SQL: a contact patch (with
//! what it implies: journeys reading the traits notified, segments re-evaluating),
//! lookups, and the timeline page. Listing with trait filters, erasure, imports and
//! ingestion stay per backend (JSON paths, bulk statements).

use crate::exec;
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{ContactPatch, EventCursor, EventQuery, Lookup, Page, Result, StoredEvent, search};
use nudge_core::{Contact, ContactId, IdentityKind, Millis};
use serde_json::{Map, Value};

const EVENT_COLUMNS: &str =
    "id, message_id, contact_id, type, name, user_id, anonymous_id, properties, context, extra, timestamp, received_at";

fn event_from_row(r: &SqlRow) -> Result<StoredEvent> {
    let object = |i: usize| -> Result<Map<String, Value>> {
        Ok(match r.opt_json(i)? {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        })
    };
    Ok(StoredEvent {
        id: r.i64(0)?,
        message_id: r.string(1)?,
        contact_id: r.i64(2)?,
        kind: r.string(3)?,
        name: r.opt_string(4)?,
        user_id: r.opt_string(5)?,
        anonymous_id: r.opt_string(6)?,
        properties: object(7)?,
        context: object(8)?,
        extra: object(9)?,
        timestamp: r.i64(10)?,
        received_at: r.i64(11)?,
    })
}

/// The tables whose rows are only the contact's own state (segment membership and its
/// history and timers, the scores' history, predictions, the send-time profile, the order totals).
const OWN_STATE: &[&str] = &[
    "segment_members",
    "segment_history",
    "segment_timers",
    "segment_dirty",
    "score_changes",
    "contact_predictions",
    "contact_send_times",
    "contact_orders",
];

/// Tables holding personal content that may still name a contact merged into the erased
/// one: messages (addresses and what was sent), push subscriptions (the browser's
/// endpoint), form submissions (what the person typed), the journey inbox.
const WITH_MERGED_AWAY: &[&str] = &["messages", "push_subscriptions", "form_submissions", "journey_inbox"];

/// Erases a contact (see `Store::delete_contact`): everything naming it, or a contact
/// merged into it, then the contact. The row is locked first where the backend locks:
/// events an ingest adds meanwhile are then either seen here or find the contact gone
/// (and that ingest runs again). `false` if there was no such contact.
pub(crate) async fn erase<D: Db>(db: &D, id: ContactId) -> Result<bool> {
    let id = db.current_id(id).await?;
    let lock = format!("SELECT 1 FROM contacts WHERE id = $1{}", db.for_update());
    sql::first(db, &lock, &[Arg::I64(id)]).await?;
    let ids = [Arg::I64(id)];
    db.execute(db.delete_contact_events(), &ids).await?;
    for table in ["identities"].iter().chain(OWN_STATE) {
        db.execute(&format!("DELETE FROM {table} WHERE contact_id = $1"), &ids)
            .await?;
    }
    let merged = "contact_id = $1 OR contact_id IN (SELECT from_id FROM contact_merges WHERE into_id = $1)";
    for table in WITH_MERGED_AWAY {
        db.execute(&format!("DELETE FROM {table} WHERE {merged}"), &ids).await?;
    }
    // Journey runs: their timers and waits first, then the runs.
    let runs = format!("SELECT id FROM journey_runs WHERE {merged}");
    for table in ["journey_timers", "journey_waits"] {
        db.execute(&format!("DELETE FROM {table} WHERE run_id IN ({runs})"), &ids)
            .await?;
    }
    db.execute(&format!("DELETE FROM journey_runs WHERE id IN ({runs})"), &ids)
        .await?;
    db.execute("DELETE FROM contact_merges WHERE into_id = $1", &ids)
        .await?;
    Ok(db.execute("DELETE FROM contacts WHERE id = $1", &ids).await? > 0)
}

/// Applies a traits / subscription patch (see `Store::update_contact`).
pub(crate) async fn update<D: Db>(db: &D, id: ContactId, patch: &ContactPatch, now: Millis) -> Result<Option<Contact>> {
    let id = db.current_id(id).await?;
    let Some(mut contact) = db.load_contact(id).await? else {
        return Ok(None);
    };
    let before = contact.traits.clone();
    contact.apply_traits(&patch.traits);
    contact
        .subscriptions
        .extend(patch.subscriptions.iter().map(|(k, v)| (k.clone(), *v)));
    contact.updated_at = now;
    db.save_contact(&contact).await?;
    let rules = db.rules().await?;
    let changed: Vec<String> = patch.traits.keys().cloned().collect();
    exec::traits_changed(db, &rules, id, &changed, now).await?;
    // Scoring rules on trait changes fire for the traits whose value changed, as for
    // an `identify` (their new values; a removed trait is `null`).
    let new_values: serde_json::Map<String, serde_json::Value> = patch
        .traits
        .keys()
        .filter(|k| before.get(*k) != contact.traits.get(*k))
        .map(|k| {
            (
                k.clone(),
                contact.traits.get(k).cloned().unwrap_or(serde_json::Value::Null),
            )
        })
        .collect();
    if !new_values.is_empty() {
        let happening = nudge_core::scoring::Happening::TraitsChanged { traits: &new_values };
        crate::shared::scoring::apply(db, &rules, &[(id, happening)], now).await?;
    }
    if rules.segments.any {
        db.mark_dirty(id).await?;
    }
    Ok(db.load_contact(id).await?.or(Some(contact)))
}

/// A contact by user id, anonymous id or email.
pub(crate) async fn find<D: Db>(db: &D, lookup: &Lookup) -> Result<Option<Contact>> {
    let row = match lookup {
        Lookup::UserId(u) => {
            sql::first(
                db,
                "SELECT contact_id FROM identities WHERE kind = $1 AND value = $2",
                &[Arg::Str(IdentityKind::UserId.as_str()), Arg::Str(u)],
            )
            .await?
        }
        Lookup::AnonymousId(a) => {
            sql::first(
                db,
                "SELECT contact_id FROM identities WHERE kind = $1 AND value = $2",
                &[Arg::Str(IdentityKind::AnonymousId.as_str()), Arg::Str(a)],
            )
            .await?
        }
        Lookup::Email(e) => {
            sql::first(
                db,
                "SELECT id FROM contacts WHERE email = $1 ORDER BY id LIMIT 1",
                &[Arg::Str(&e.trim().to_ascii_lowercase())],
            )
            .await?
        }
    };
    match row {
        Some(r) => db.load_contact(r.i64(0)?).await,
        None => Ok(None),
    }
}

/// A page of a contact's events, newest first.
pub(crate) async fn events<D: Db>(db: &D, id: ContactId, query: &EventQuery) -> Result<Page<StoredEvent>> {
    let id = db.current_id(id).await?;
    let limit = query.limit.max(1);
    let (ts, eid) = query
        .before
        .map(|b| (b.timestamp, b.id))
        .unwrap_or((i64::MAX, i64::MAX));
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE contact_id = $1 AND (timestamp < $2 OR (timestamp = $2 AND id < $3))
         ORDER BY timestamp DESC, id DESC LIMIT $4"
    );
    let mut items: Vec<StoredEvent> = db
        .query(
            &sql,
            &[Arg::I64(id), Arg::I64(ts), Arg::I64(eid), Arg::I64((limit + 1) as i64)],
        )
        .await?
        .iter()
        .map(event_from_row)
        .collect::<Result<_>>()?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|e| {
            EventCursor {
                timestamp: e.timestamp,
                id: e.id,
            }
            .encode()
        })
    } else {
        None
    };
    Ok(Page { items, next })
}

/// The columns [`searched`] reads.
pub(crate) const SEARCHED: &str = "id, user_id, email, phone, traits";

/// A contact with the stored fields its search text is made of ([`SEARCHED`]).
pub(crate) fn searched(r: &SqlRow) -> Result<Contact> {
    let mut c = Contact::new(r.i64(0)?, 0);
    c.user_id = r.opt_string(1)?;
    c.email = r.opt_string(2)?;
    c.phone = r.opt_string(3)?;
    if let Value::Object(traits) = r.json(4)? {
        c.traits = traits;
    }
    Ok(c)
}

/// Writes a contact's search text anew, after a statement changed one of the fields it
/// is made of in place (as giving it a user id does).
pub(crate) async fn set_search<D: Db>(db: &D, contact: &Contact) -> Result<()> {
    db.execute(
        "UPDATE contacts SET search = $2 WHERE id = $1",
        &[Arg::I64(contact.id), Arg::Str(&search::text(contact))],
    )
    .await?;
    Ok(())
}

/// Gives every contact without a search text its text (those stored before migration
/// 17), a thousand per statement; how many.
pub(crate) async fn fill_search<D: Db>(db: &D) -> Result<u64> {
    const BATCH: i64 = 1000;
    let (mut after, mut filled) = (0, 0);
    loop {
        let rows = db
            .query(
                &format!("SELECT {SEARCHED} FROM contacts WHERE id > $1 AND search IS NULL ORDER BY id LIMIT $2"),
                &[Arg::I64(after), Arg::I64(BATCH)],
            )
            .await?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(filled);
        };
        let first = first.i64(0)?;
        after = last.i64(0)?;
        let texts: Vec<(ContactId, String)> = rows
            .iter()
            .map(|r| {
                let c = searched(r)?;
                Ok((c.id, search::text(&c)))
            })
            .collect::<Result<_>>()?;
        let values: Vec<String> = (0..texts.len())
            .map(|i| format!("(CAST(${} AS BIGINT), CAST(${} AS TEXT))", 2 * i + 3, 2 * i + 4))
            .collect();
        let mut args = vec![Arg::I64(first), Arg::I64(after)];
        args.extend(texts.iter().flat_map(|(id, text)| [Arg::I64(*id), Arg::Str(text)]));
        // VALUES names its columns column1, column2 in both dialects. The id range keeps
        // SQLite from reading the whole table to join it with the values.
        filled += db
            .execute(
                &format!(
                    "UPDATE contacts SET search = v.column2 FROM (VALUES {}) AS v
                     WHERE contacts.id = v.column1 AND contacts.id BETWEEN $1 AND $2",
                    values.join(", ")
                ),
                &args,
            )
            .await?;
    }
}

/// How many contacts there are.
pub(crate) async fn count<D: Db>(db: &D) -> Result<u64> {
    let row = sql::first(db, "SELECT COUNT(*) FROM contacts", &[]).await?;
    Ok(row.map(|r| r.i64(0)).transpose()?.unwrap_or(0) as u64)
}
