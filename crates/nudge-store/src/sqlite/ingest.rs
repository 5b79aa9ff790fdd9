//! Ingestion on SQLite, inside one write transaction on the writer thread: each
//! message resolved in order against the identity cache (`nudge_core::resolve`
//! decides), contacts created, merged and patched, events stored, and what the rules
//! say follows (journey inbox, segment marks).

use super::*;

pub(super) fn ingest_tx(
    tx: &Transaction,
    cache: &mut IdCache,
    messages: &[Call],
    now: Millis,
) -> Result<Vec<IngestOutcome>> {
    let mut out = Vec::with_capacity(messages.len());
    let mut seen: HashSet<&str> = HashSet::with_capacity(messages.len());
    let mut exists = tx.prepare_cached("SELECT 1 FROM events WHERE message_id = ?")?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (message_id, contact_id, type, name, user_id, anonymous_id, timestamp, received_at, properties, context, extra)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    for m in messages {
        if !seen.insert(&m.message_id) {
            out.push(IngestOutcome::Duplicate);
            continue;
        }
        // Fast path: the contact is known from the cache and nothing about it changes,
        // so the unique index on message_id alone decides whether this is a duplicate.
        let id = match cached_owner(cache, m) {
            Some(id) => id,
            None => {
                if exists.exists([&m.message_id])? {
                    out.push(IngestOutcome::Duplicate);
                    continue;
                }
                let id = resolve_message(tx, cache, m, now)?;
                if m.kind == CallKind::Identify && !m.traits.is_empty() {
                    let mut contact =
                        load_contact(tx, id)?.ok_or_else(|| StoreError::Corrupt(format!("contact {id}")))?;
                    if contact.apply_traits(&m.traits) {
                        contact.updated_at = now;
                        save_contact(tx, &contact)?;
                        exec::traits_changed(tx, cache, id, m.traits.keys(), now)?;
                    }
                }
                id
            }
        };
        let body = if matches!(m.kind, CallKind::Identify | CallKind::Group) {
            &m.traits
        } else {
            &m.properties
        };
        let inserted = insert.execute(params![
            m.message_id,
            id,
            m.kind.as_str(),
            m.display_name(),
            m.user_id,
            m.anonymous_id,
            m.timestamp,
            m.received_at,
            json_text(body),
            json_text(&m.context),
            extra_of(m).as_ref().map(json_text),
        ])?;
        if inserted == 1 && m.kind == CallKind::Track {
            let name = m.event.as_deref().unwrap_or_default();
            if crate::plan::journeys_act_on(exec::journey_events(tx, cache)?, name) {
                exec::queue_inbox(tx, tx.last_insert_rowid(), id, name, &json_text(body), m.timestamp)?;
            }
        }
        if inserted == 1 {
            // Re-evaluate the contact's segments if one of them reads this event or trait.
            if segments::segment_index(tx, cache)?.reads_call(m) {
                segments::mark_dirty(tx, cache, id)?;
            }
        }
        out.push(if inserted == 1 {
            IngestOutcome::Stored
        } else {
            IngestOutcome::Duplicate
        });
    }
    Ok(out)
}

/// The contact a message belongs to when the identity cache alone can tell and the
/// message changes nothing about contacts (no new identity, no merge, no traits).
pub(super) fn cached_owner(cache: &IdCache, m: &Call) -> Option<ContactId> {
    if matches!(m.kind, CallKind::Alias) || (m.kind == CallKind::Identify && !m.traits.is_empty()) {
        return None;
    }
    let by_user = match &m.user_id {
        Some(u) => Some(cache.get(IdentityKind::UserId, u)?),
        None => None,
    };
    let by_anon = match &m.anonymous_id {
        Some(a) => Some(cache.get(IdentityKind::AnonymousId, a)?),
        None => None,
    };
    match resolve(
        m.user_id.as_deref(),
        by_user.as_ref(),
        m.anonymous_id.as_deref(),
        by_anon.as_ref(),
    ) {
        Resolution::Use(id) => Some(id),
        _ => None,
    }
}

/// Finds or creates the contact a message belongs to, merging profiles when the
/// message proves they are the same person.
pub(super) fn resolve_message(tx: &Transaction, cache: &mut IdCache, m: &Call, now: Millis) -> Result<ContactId> {
    let user = m.user_id.as_deref();
    let by_user = match user {
        Some(u) => known(tx, cache, IdentityKind::UserId, u)?,
        None => None,
    };
    if m.kind == CallKind::Alias {
        let prev = m.previous_id.as_deref().unwrap_or_default();
        let by_prev = match known(tx, cache, IdentityKind::UserId, prev)? {
            Some(k) => Some(k),
            None => known(tx, cache, IdentityKind::AnonymousId, prev)?,
        };
        let prev_known = by_prev.is_some();
        return match resolve_alias(by_user.as_ref(), by_prev.as_ref()) {
            Resolution::Use(id) => Ok(id),
            Resolution::Merge { from, into } => {
                merge(tx, cache, from, into, now)?;
                Ok(into)
            }
            Resolution::Attach(id) => {
                attach_user(tx, cache, id, user, now)?;
                if !prev_known {
                    add_identity(tx, cache, id, &Identity::anonymous(prev), now)?;
                }
                Ok(id)
            }
            Resolution::Create { .. } => create_contact(tx, cache, user, Some(prev), now),
        };
    }
    let anon = m.anonymous_id.as_deref();
    let by_anon = match anon {
        Some(a) => known(tx, cache, IdentityKind::AnonymousId, a)?,
        None => None,
    };
    match resolve(user, by_user.as_ref(), anon, by_anon.as_ref()) {
        Resolution::Use(id) => Ok(id),
        Resolution::Create { with_anonymous } => {
            create_contact(tx, cache, user, if with_anonymous { anon } else { None }, now)
        }
        Resolution::Attach(id) => {
            attach_user(tx, cache, id, user, now)?;
            if let Some(a) = anon
                && by_anon.is_none()
            {
                add_identity(tx, cache, id, &Identity::anonymous(a), now)?;
            }
            Ok(id)
        }
        Resolution::Merge { from, into } => {
            merge(tx, cache, from, into, now)?;
            Ok(into)
        }
    }
}

/// Gives a contact the user id: as its primary user id if it has none, else as an
/// alias user id.
pub(super) fn attach_user(
    tx: &Connection,
    cache: &mut IdCache,
    id: ContactId,
    user: Option<&str>,
    now: Millis,
) -> Result<()> {
    let Some(u) = user else { return Ok(()) };
    if known(tx, cache, IdentityKind::UserId, u)?.is_some() {
        return Ok(());
    }
    let became_primary = tx.execute(
        "UPDATE contacts SET user_id = ?2, updated_at = ?3 WHERE id = ?1 AND user_id IS NULL",
        params![id, u, now],
    )? == 1;
    if became_primary && cache.primary.contains_key(&id) {
        cache.primary.insert(id, Some(u.to_string()));
    }
    add_identity(tx, cache, id, &Identity::user(u), now)
}

pub(super) fn create_contact(
    tx: &Connection,
    cache: &mut IdCache,
    user: Option<&str>,
    anon: Option<&str>,
    now: Millis,
) -> Result<ContactId> {
    tx.prepare_cached(
        "INSERT INTO contacts (user_id, traits, subscriptions, created_at, updated_at) VALUES (?, '{}', '{}', ?, ?)",
    )?
    .execute(params![user, now, now])?;
    let id = tx.last_insert_rowid();
    cache.primary.insert(id, user.map(str::to_string));
    // A new contact may already match segments ("never purchased").
    if segments::segment_index(tx, cache)?.any {
        segments::mark_dirty(tx, cache, id)?;
    }
    if let Some(u) = user {
        add_identity(tx, cache, id, &Identity::user(u), now)?;
    }
    if let Some(a) = anon {
        add_identity(tx, cache, id, &Identity::anonymous(a), now)?;
    }
    Ok(id)
}

pub(super) fn add_identity(
    tx: &Connection,
    cache: &mut IdCache,
    id: ContactId,
    identity: &Identity,
    now: Millis,
) -> Result<()> {
    let added = tx
        .prepare_cached("INSERT OR IGNORE INTO identities (kind, value, contact_id, created_at) VALUES (?, ?, ?, ?)")?
        .execute(params![identity.kind.as_str(), identity.value, id, now])?;
    if added == 1
        && let Some(primary) = cache.primary.get(&id).cloned()
    {
        cache.put(identity.kind, &identity.value, &Known { id, user_id: primary });
    }
    Ok(())
}

/// Folds contact `from` into `into`: events, identities and traits move, `from`
/// disappears, and its id keeps resolving to `into`.
pub(super) fn merge(tx: &Connection, cache: &mut IdCache, from: ContactId, into: ContactId, now: Millis) -> Result<()> {
    let a = load_contact(tx, from)?.ok_or_else(|| StoreError::Corrupt(format!("contact {from}")))?;
    let mut b = load_contact(tx, into)?.ok_or_else(|| StoreError::Corrupt(format!("contact {into}")))?;
    b.absorb(&a);
    b.updated_at = now;
    tx.execute(
        "UPDATE events SET contact_id = ?2 WHERE contact_id = ?1",
        params![from, into],
    )?;
    tx.execute(
        "UPDATE identities SET contact_id = ?2 WHERE contact_id = ?1",
        params![from, into],
    )?;
    for table in ["push_subscriptions", "journey_runs", "journey_waits", "journey_inbox"] {
        tx.execute(
            &format!("UPDATE {table} SET contact_id = ?2 WHERE contact_id = ?1"),
            params![from, into],
        )?;
    }
    tx.execute(
        "UPDATE contact_merges SET into_id = ?2 WHERE into_id = ?1",
        params![from, into],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO contact_merges (from_id, into_id, merged_at) VALUES (?, ?, ?)",
        params![from, into, now],
    )?;
    tx.execute("DELETE FROM contacts WHERE id = ?", [from])?;
    save_contact(tx, &b)?;
    // Segment stays of the merged-away profile become the survivor's history; its
    // current memberships are re-evaluated on the survivor.
    tx.execute(
        "UPDATE segment_history SET exited_at = ?2 WHERE contact_id = ?1 AND exited_at IS NULL",
        params![from, now],
    )?;
    tx.execute(
        "UPDATE segment_history SET contact_id = ?2 WHERE contact_id = ?1",
        params![from, into],
    )?;
    for table in ["segment_members", "segment_timers", "segment_dirty"] {
        tx.execute(&format!("DELETE FROM {table} WHERE contact_id = ?"), [from])?;
    }
    if segments::segment_index(tx, cache)?.any {
        segments::mark_dirty(tx, cache, into)?;
    }
    // The survivor's primary user id may have changed, and every identity of the
    // merged-away contact now points at the survivor.
    cache.primary.remove(&from);
    cache.primary.insert(into, b.user_id.clone());
    let survivor = Known {
        id: into,
        user_id: b.user_id.clone(),
    };
    for identity in a.identities() {
        cache.put(identity.kind, &identity.value, &survivor);
    }
    tracing::debug!(from, into, "merged contacts");
    Ok(())
}
