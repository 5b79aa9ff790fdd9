//! Contacts on SQLite: loading and saving a contact, identity lookups, merged-id
//! resolution, and the facts segment conditions read.

use super::*;

/// What segment conditions read about one contact: traits, subscriptions, `track` events.
/// What segment conditions read about one contact; `names` (a JSON array) limits the
/// events loaded to those names.
pub(super) fn facts_of(c: &Connection, id: ContactId, names: Option<&str>) -> Result<Option<Facts>> {
    let Some(contact) = load_contact(c, id)? else {
        return Ok(None);
    };
    let row = |r: &rusqlite::Row| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?));
    let rows: Vec<(String, i64, String)> = match names {
        None => c
            .prepare_cached(
                "SELECT name, timestamp, properties FROM events WHERE contact_id = ? AND type = 'track' ORDER BY timestamp, id",
            )?
            .query_map([id], row)?
            .collect::<rusqlite::Result<_>>()?,
        // One index range per name (contact_id, type, name, timestamp).
        Some(names) => c
            .prepare_cached(
                "SELECT name, timestamp, properties FROM events WHERE contact_id = ?1 AND type = 'track'
                 AND name IN (SELECT value FROM json_each(?2)) ORDER BY timestamp, id",
            )?
            .query_map(params![id, names], row)?
            .collect::<rusqlite::Result<_>>()?,
    };
    let events = rows
        .into_iter()
        .map(|row| {
            let (name, timestamp, props) = row;
            Ok(EventFact {
                name,
                timestamp,
                properties: parse_object(&props)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let segments = c
        .prepare_cached("SELECT segment_id FROM segment_members WHERE contact_id = ?")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(Facts {
        contact_id: id,
        traits: contact.traits,
        subscriptions: contact.subscriptions,
        events,
        segments,
    }))
}

/// What an identity points at, from the writer's cache or the database.
pub(super) fn known(c: &Connection, cache: &mut IdCache, kind: IdentityKind, value: &str) -> Result<Option<Known>> {
    if let Some(k) = cache.get(kind, value) {
        return Ok(Some(k));
    }
    let found = lookup(c, kind, value)?;
    if let Some(k) = &found {
        cache.put(kind, value, k);
    }
    Ok(found)
}

pub(super) fn lookup(c: &Connection, kind: IdentityKind, value: &str) -> Result<Option<Known>> {
    Ok(c.prepare_cached(
        "SELECT i.contact_id, c.user_id FROM identities i JOIN contacts c ON c.id = i.contact_id WHERE i.kind = ? AND i.value = ?",
    )?
    .query_row(params![kind.as_str(), value], |r| Ok(Known { id: r.get(0)?, user_id: r.get(1)? }))
    .optional()?)
}

/// The id a (possibly merged-away) contact id stands for today.
pub(super) fn current_id(c: &Connection, id: ContactId) -> Result<ContactId> {
    let into: Option<ContactId> = c
        .prepare_cached("SELECT into_id FROM contact_merges WHERE from_id = ?")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(into.unwrap_or(id))
}

pub(super) fn load_contact(c: &Connection, id: ContactId) -> Result<Option<Contact>> {
    let row = c
        .prepare_cached(
            "SELECT user_id, email, phone, traits, subscriptions, created_at, updated_at,
                    (SELECT max(timestamp) FROM events WHERE contact_id = contacts.id) FROM contacts WHERE id = ?",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, Option<i64>>(7)?,
            ))
        })
        .optional()?;
    let Some((user_id, email, phone, traits, subs, created_at, updated_at, last_seen_at)) = row else {
        return Ok(None);
    };
    let mut contact = Contact::new(id, created_at);
    contact.user_id = user_id;
    contact.email = email;
    contact.phone = phone;
    contact.traits = parse_object(&traits)?;
    contact.subscriptions = parse_subscriptions(&subs)?;
    contact.updated_at = updated_at;
    contact.last_seen_at = last_seen_at;
    let mut stmt =
        c.prepare_cached("SELECT kind, value FROM identities WHERE contact_id = ? ORDER BY created_at, value")?;
    let ids = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in ids {
        let (kind, value) = row?;
        fold_identity(&mut contact, &kind, value)?;
    }
    Ok(Some(contact))
}

pub(super) fn save_contact(c: &Connection, contact: &Contact) -> Result<()> {
    c.prepare_cached(
        "UPDATE contacts SET user_id = ?2, email = ?3, phone = ?4, traits = ?5, subscriptions = ?6, created_at = ?7,
         updated_at = ?8, search = ?9 WHERE id = ?1",
    )?
    .execute(params![
        contact.id,
        contact.user_id,
        contact.email,
        contact.phone,
        Value::Object(contact.traits.clone()).to_string(),
        subscriptions_json(&contact.subscriptions),
        contact.created_at,
        contact.updated_at,
        crate::search::text(contact),
    ])?;
    Ok(())
}

/// `$."name"` for json_extract; trait names are validated at the API edge.
pub(super) fn json_path(name: &str) -> String {
    format!("$.\"{}\"", name.replace('"', ""))
}

/// An FTS5 query for text containing one of the needles (`crate::search`): each a
/// phrase, which the trigram tokenizer matches where the text holds it exactly.
pub(super) fn fts_query(needles: &[String]) -> String {
    needles
        .iter()
        .map(|n| format!("\"{}\"", n.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" OR ")
}
