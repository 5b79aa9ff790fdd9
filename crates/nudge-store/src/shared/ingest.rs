//! Ingestion, once for both backends: a call's messages (Segment `identify`, `track`,
//! `page`, `screen`, `group`, `alias`) resolved to contacts, new contacts and
//! identities, merges, traits, events, and what follows from them (journey inbox,
//! segment marks), in the caller's transaction.
//!
//! The algorithm is written for round trips: the identities a call names (and, on
//! PostgreSQL, its stored message ids and the rules) are read at its start; each
//! message is resolved in order against that knowledge ([`knowledge::plan`]: `nudge_core`
//! decides); new contacts, their identities and traits patches are deferred
//! ([`Deferred`]) and written in bulk, with the call's events, at its end. Messages
//! that attach identities or merge contacts are carried out one by one, after what
//! was deferred so far. On SQLite every statement is done at once on the writer
//! thread, and the same steps cost what per-message code would.
//!
//! What differs per backend is only SQL: the bulk reads and writes of [`Ingest`]
//! (arrays on PostgreSQL, prepared-statement loops and the writer's identity cache on
//! SQLite). PostgreSQL also runs a call again when it lost a race with another writer
//! ([`stale`]); that loop is the backend's (`postgres.rs`), SQLite's single writer
//! needs none.

use crate::journeys::TRAITS_CHANGED;
use crate::plan::{Rules, traits_changed_properties};
use crate::shared::contacts;
use crate::sql::Db;
use crate::{IngestOutcome, Result, StoreError};
use nudge_core::{Call, CallKind, Contact, ContactId, Identity, IdentityKind, Known, Millis, Resolution};
use nudge_core::{resolve, resolve_alias};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::future::Future;

pub(crate) mod knowledge;

use knowledge::{Body, Deferred, NewContact, Planned, named_identities, plan, writes_contacts};
pub(crate) use knowledge::{Found, Identities, InboxRow, NewEvents};

/// A contact's id, primary user id and traits, as [`Ingest::lock_traits`] reads them.
pub(crate) type Locked = (ContactId, Option<String>, Map<String, Value>);

/// The message of a [`StoreError::Conflict`] that means "run the transaction again".
pub(crate) const STALE: &str = "identities or messages kept changing concurrently; retry";

/// Another transaction changed something this one relied on (it created one of the
/// identities, stored one of the message ids, or merged or erased one of the contacts):
/// the transaction is rolled back and run again. (SQLite's single writer never sees
/// this: there, it would be a bug.)
pub(crate) fn stale() -> StoreError {
    StoreError::Conflict(STALE.into())
}

/// The first failure among statements sent together, which is not necessarily the
/// first one to report: on PostgreSQL, once one fails, all that run after it in the
/// transaction report that it is aborted.
fn first_failure<const N: usize>(results: [Result<()>; N]) -> Result<()> {
    let mut failure = None;
    for e in results.into_iter().filter_map(Result::err) {
        if !e.follows_failure() {
            return Err(e);
        }
        failure.get_or_insert(e);
    }
    failure.map_or(Ok(()), Err)
}

/// [`first_failure`] of two statements with results.
fn both<A, B>((a, b): (Result<A>, Result<B>)) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(a), Err(b)) => Err(if a.follows_failure() { b } else { a }),
    }
}

/// The reads and writes of ingestion whose SQL differs between the backends: batch
/// statements over arrays on PostgreSQL, loops of prepared statements on SQLite (where
/// each is a call into the library, not a round trip). Each does exactly what its
/// documentation says on both; no decision is taken in them.
pub(crate) trait Ingest: Db {
    /// Whether [`Ingest::stored_message_ids`] is asked about every message at the
    /// start of a call (PostgreSQL: in the same round trip as the identities), or only
    /// about the messages that would write contacts, right before (SQLite: each
    /// question is an index lookup, and the insert of an event whose message id is
    /// taken is ignored, so a message that only adds an event needs none).
    const CHECKS_AHEAD: bool;

    /// Those of the message ids that are stored.
    fn stored_message_ids(&self, ids: &[&str]) -> impl Future<Output = Result<HashSet<String>>> + Send;

    /// What the named identities point at (only those that point at a contact).
    fn identities(&self, users: &[&str], anons: &[&str]) -> impl Future<Output = Result<Vec<Found>>> + Send;

    /// What one identity points at now.
    fn known(&self, kind: IdentityKind, value: &str) -> impl Future<Output = Result<Option<Known>>> + Send;

    /// Lets statements sent so far go out before the caller works on the CPU
    /// (PostgreSQL: the connection is another task; SQLite: nothing is pending).
    fn yield_to_io(&self) -> impl Future<Output = ()> + Send;

    /// `n` ids for new contacts, growing (so in the order they are handed out).
    fn new_contact_ids(&self, n: usize) -> impl Future<Output = Result<Vec<ContactId>>> + Send;

    /// These contacts (sorted ascending) as [`Locked`], locked until the transaction
    /// ends; a contact that is gone is missing from the answer.
    fn lock_traits(&self, ids: &[ContactId]) -> impl Future<Output = Result<Vec<Locked>>> + Send;

    /// Inserts contacts with their ids, user id, email, phone, traits, search text
    /// ([`crate::search::text`]) and (where stored) last-seen time, created and
    /// updated `now`.
    fn insert_contacts(&self, contacts: &[&Contact], now: Millis) -> impl Future<Output = Result<()>> + Send;

    /// Inserts identities that must be new. On PostgreSQL one that is taken means
    /// another transaction created it since the lookup ([`stale`]); on SQLite it cannot
    /// be (the constraint's error would be a bug).
    fn insert_identities(
        &self,
        identities: &[(IdentityKind, &str, ContactId)],
        now: Millis,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Stores contacts' traits, email, phone and search text (of these fields and their
    /// user id), updated `now`.
    fn update_traits(&self, contacts: &[Contact], now: Millis) -> impl Future<Output = Result<()>> + Send;

    /// Inserts events in their order (so their ids grow in that order); whether each
    /// was stored. PostgreSQL checked the message ids ahead, so one that is taken
    /// means another transaction stored it since ([`stale`]); SQLite ignores it and
    /// answers `false`.
    fn insert_events(&self, events: &NewEvents<'_>) -> impl Future<Output = Result<Vec<bool>>> + Send;

    /// Raises contacts' last-seen times to at least these, where they are stored
    /// (PostgreSQL), locking the contacts; a contact that is gone: [`stale`].
    fn touch(&self, contacts: &[ContactId], times: &[Millis]) -> impl Future<Output = Result<()>> + Send;

    /// Locks contacts against merges and erasure by other writers until the
    /// transaction ends; a contact that is gone: [`stale`].
    fn lock_contacts(&self, contacts: &[ContactId]) -> impl Future<Output = Result<()>> + Send;

    /// Queues journey-inbox rows for stored events, in order.
    fn queue_inbox(&self, rows: &[InboxRow<'_>]) -> impl Future<Output = Result<()>> + Send;

    /// Marks contacts for segment re-evaluation, in order.
    fn mark_all_dirty(&self, contacts: &[ContactId]) -> impl Future<Output = Result<()>> + Send;

    /// Keeps what the call learned about identities for the next calls, where the
    /// backend can trust it (SQLite's single writer; PostgreSQL keeps nothing).
    fn remember(&self, ids: &Identities);
}

/// Stores a call's messages: one outcome per message, in order.
pub(crate) async fn ingest<D: Ingest>(db: &D, messages: &[Call], now: Millis) -> Result<Vec<IngestOutcome>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let (users, anons) = named_identities(messages);
    let stored = async {
        if !D::CHECKS_AHEAD {
            return Ok(HashSet::new());
        }
        let ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
        db.stored_message_ids(&ids).await
    };
    // The events' JSON is written out while the first reads are under way.
    let bodies = async {
        db.yield_to_io().await;
        messages.iter().map(Body::of).collect::<Vec<_>>()
    };
    // The identities are read in the same round trip as the check for duplicates, so
    // also those of messages that turn out to be duplicates: knowing more is harmless.
    let (stored, found, rules, bodies) =
        tokio::join!(biased; stored, db.identities(&users, &anons), db.rules(), bodies);
    let (stored, (found, rules)) = both((stored, both((found, rules))))?;
    let mut ids = Identities::new(&users, &anons, found);
    let mut deferred = Deferred::default();
    let mut out = Vec::with_capacity(messages.len());
    let mut seen: HashSet<&str> = HashSet::with_capacity(messages.len());
    let mut last_seen: BTreeMap<ContactId, Millis> = BTreeMap::new();
    let mut events = NewEvents::default();
    // Contacts the call creates (as first known: a placeholder or an id).
    let mut created: Vec<ContactId> = Vec::new();
    for (i, (m, body)) in messages.iter().zip(bodies).enumerate() {
        if !seen.insert(&m.message_id) || stored.contains(&m.message_id) {
            out.push(IngestOutcome::Duplicate);
            continue;
        }
        let planned = plan(&ids, m);
        if !D::CHECKS_AHEAD
            && writes_contacts(&planned, m)
            && !db.stored_message_ids(&[m.message_id.as_str()]).await?.is_empty()
        {
            out.push(IngestOutcome::Duplicate);
            continue;
        }
        let (id, merged) = match planned {
            Some(Planned::Use(id)) => (id, None),
            Some(Planned::Create { user, anonymous_id }) => {
                let id = deferred.create(&mut ids, user, anonymous_id, now);
                created.push(id);
                (id, None)
            }
            None => {
                // What the message does next reads or writes contacts and identities in
                // the database: they must hold all the call did so far.
                flush(db, &mut deferred, &mut ids, &mut last_seen, None, now).await?;
                let r = resolve_message(db, &rules, &mut ids, m, now).await?;
                if r.created {
                    created.push(r.id);
                }
                (r.id, r.merged)
            }
        };
        if let Some(from) = merged
            && let Some(t) = last_seen.remove(&from)
        {
            let e = last_seen.entry(id).or_insert(t);
            *e = (*e).max(t);
        }
        if m.kind == CallKind::Identify && !m.traits.is_empty() {
            deferred.patch(i, id, &m.traits);
        }
        events.push(i, m, id, body);
        let e = last_seen.entry(id).or_insert(m.timestamp);
        *e = (*e).max(m.timestamp);
        out.push(IngestOutcome::Stored);
    }
    let written = flush(db, &mut deferred, &mut ids, &mut last_seen, Some(&mut events), now).await?;
    let created: HashSet<ContactId> = created.into_iter().map(|c| ids.survivor(deferred.real(c))).collect();
    for (&i, &stored) in events.messages.iter().zip(&written) {
        if !stored {
            out[i] = IngestOutcome::Duplicate;
        }
    }
    follow_up(db, &rules, messages, &events, &written, &deferred, &created).await?;
    crate::shared::orders::ingested(db, &rules, messages, &events, &written, now).await?;
    score(db, &rules, messages, &events, &written, &deferred, now).await?;
    db.remember(&ids);
    Ok(out)
}

/// What the stored events imply, in message order: the journey inbox for `track`
/// events journeys act on and for `identify` calls that changed traits a
/// time-triggered journey reads; segment marks for contacts the call created (they may
/// match "never did X" segments) and for events and traits a segment reads.
async fn follow_up<D: Ingest>(
    db: &D,
    rules: &Rules,
    messages: &[Call],
    events: &NewEvents<'_>,
    written: &[bool],
    deferred: &Deferred<'_>,
    created: &HashSet<ContactId>,
) -> Result<()> {
    let mut inbox = Vec::new();
    let mut dirty = Vec::new();
    let mut marked = HashSet::new();
    for (k, &i) in events.messages.iter().enumerate() {
        if !written[k] {
            continue;
        }
        let (m, contact) = (&messages[i], events.contact_ids[k]);
        let segments = &rules.segments;
        if ((segments.any && created.contains(&contact)) || segments.reads_call(m)) && marked.insert(contact) {
            dirty.push(contact);
        }
        match m.kind {
            CallKind::Track if m.event.as_deref().is_some_and(|e| rules.journeys_act_on(e)) => inbox.push(InboxRow {
                message_id: &m.message_id,
                contact,
                at: events.timestamps[k],
                name: None,
                properties: None,
            }),
            CallKind::Identify if deferred.changed.contains(&i) => {
                let read = rules.traits_journeys_read(m.traits.keys());
                if !read.is_empty() {
                    inbox.push(InboxRow {
                        message_id: &m.message_id,
                        contact,
                        at: events.timestamps[k],
                        name: Some(TRAITS_CHANGED),
                        properties: Some(traits_changed_properties(&read)),
                    });
                }
            }
            _ => {}
        }
    }
    let queue = async {
        if inbox.is_empty() {
            return Ok(());
        }
        db.queue_inbox(&inbox).await
    };
    let mark = async {
        if dirty.is_empty() {
            return Ok(());
        }
        db.mark_all_dirty(&dirty).await
    };
    let (a, b) = tokio::join!(biased; queue, mark);
    first_failure([a, b])
}

/// Scores the stored calls by the enabled scoring rules (`track` events, page views,
/// `identify` calls that changed traits), in the call's transaction.
async fn score<D: Ingest>(
    db: &D,
    rules: &Rules,
    messages: &[Call],
    events: &NewEvents<'_>,
    written: &[bool],
    deferred: &Deferred<'_>,
    now: Millis,
) -> Result<()> {
    if rules.scoring.is_empty() {
        return Ok(());
    }
    let happenings: Vec<(ContactId, nudge_core::scoring::Happening<'_>)> = events
        .messages
        .iter()
        .enumerate()
        .filter(|&(k, _)| written[k])
        .filter_map(|(k, &i)| {
            let m = &messages[i];
            nudge_core::scoring::Happening::of_call(m, deferred.changed.contains(&i))
                .map(|h| (events.contact_ids[k], h))
        })
        .collect();
    if happenings.is_empty() {
        return Ok(());
    }
    crate::shared::scoring::apply(db, rules, &happenings, now).await
}

/// Does the deferred writes. With `events` (the end of the call), also the call's
/// final writes in the same round trip: its events, and the last-seen times of the
/// contacts that already existed. Whether each event was stored (empty without
/// `events`).
async fn flush<'m, D: Ingest>(
    db: &D,
    deferred: &mut Deferred<'m>,
    ids: &mut Identities,
    last_seen: &mut BTreeMap<ContactId, Millis>,
    events: Option<&mut NewEvents<'m>>,
    now: Millis,
) -> Result<Vec<bool>> {
    if deferred.creates.is_empty() && deferred.patches.is_empty() && events.is_none() {
        return Ok(Vec::new());
    }
    let last = events.is_some();

    // One round trip: ids for the new contacts, and a lock on each patched one.
    let count = deferred.creates.len();
    let patched: Vec<ContactId> = deferred.patches.keys().copied().collect();
    let allocate = async {
        if count == 0 {
            return Ok(Vec::new());
        }
        db.new_contact_ids(count).await
    };
    let lock = async {
        if patched.is_empty() {
            return Ok(Vec::new());
        }
        db.lock_traits(&patched).await
    };
    let (new_ids, locked) = both(tokio::join!(biased; allocate, lock))?;
    if new_ids.len() != count {
        return Err(StoreError::Corrupt(format!(
            "asked for {count} contact ids, got {}",
            new_ids.len()
        )));
    }
    for (c, id) in deferred.creates.iter_mut().zip(new_ids) {
        let placeholder = std::mem::replace(&mut c.contact.id, id);
        deferred.written.push(id);
        ids.primary.remove(&placeholder);
        ids.primary.insert(id, c.contact.user_id.clone());
        if let Some(u) = &c.contact.user_id {
            ids.set(IdentityKind::UserId, u, id);
        }
        if let Some(a) = c.anonymous_id {
            ids.set(IdentityKind::AnonymousId, a, id);
        }
        if let Some(t) = last_seen.remove(&placeholder) {
            if last {
                // Nothing of the call follows: this is its last-seen time.
                c.contact.last_seen_at = Some(t);
            } else {
                last_seen.insert(id, t);
            }
        }
    }
    let creates = std::mem::take(&mut deferred.creates);
    let contacts: Vec<&Contact> = creates.iter().map(|c| &c.contact).collect();
    let mut identities: Vec<(IdentityKind, &str, ContactId)> = Vec::new();
    for NewContact { contact, anonymous_id } in &creates {
        if let Some(u) = &contact.user_id {
            identities.push((IdentityKind::UserId, u, contact.id));
        }
        if let Some(a) = anonymous_id {
            identities.push((IdentityKind::AnonymousId, a, contact.id));
        }
    }

    if locked.len() != patched.len() {
        // Merged away or erased by another transaction since the lookup.
        return Err(stale());
    }
    let mut patches = Vec::new();
    for (id, user_id, traits) in locked {
        patches.extend(deferred.patched(id, user_id, traits, now));
    }
    deferred.patches.clear();

    let events = events.map(|e| {
        e.settle(|id| ids.survivor(deferred.real(id)));
        &*e
    });
    // Contacts whose last-seen time is already at least that of their new events
    // are only locked: same outcome, without writing their rows again.
    let (mut touched, mut unchanged): ((Vec<ContactId>, Vec<Millis>), Vec<ContactId>) = Default::default();
    if last {
        for (&id, &t) in last_seen.iter() {
            match ids.last_seen.get(&id) {
                Some(&known) if known >= t => unchanged.push(id),
                _ => {
                    touched.0.push(id);
                    touched.1.push(t);
                }
            }
        }
    }

    // One more round trip for all the writes.
    let insert_contacts = async {
        if contacts.is_empty() {
            return Ok(());
        }
        db.insert_contacts(&contacts, now).await
    };
    let insert_identities = async {
        if identities.is_empty() {
            return Ok(());
        }
        db.insert_identities(&identities, now).await
    };
    let update_traits = async {
        if patches.is_empty() {
            return Ok(());
        }
        db.update_traits(&patches, now).await
    };
    let write_events = async {
        match events {
            Some(e) if !e.is_empty() => db.insert_events(e).await,
            _ => Ok(Vec::new()),
        }
    };
    // Both also lock every contact that received events until the commit, so that
    // none can be merged away or erased without its new events; one that already
    // was (by another transaction, since it was looked up) is missing there.
    // (Contacts the call creates are nobody else's to change.)
    let touch = async {
        if touched.0.is_empty() {
            return Ok(());
        }
        db.touch(&touched.0, &touched.1).await
    };
    let lock_unchanged = async {
        if unchanged.is_empty() {
            return Ok(());
        }
        db.lock_contacts(&unchanged).await
    };
    let (a, b, c, d, e, f) = tokio::join!(
        biased;
        insert_contacts,
        insert_identities,
        update_traits,
        write_events,
        touch,
        lock_unchanged
    );
    let (_, written) = both((first_failure([a, b, c, e, f]), d))?;
    if let Some(events) = events
        && written.len() != events.len()
    {
        return Err(StoreError::Corrupt(format!(
            "wrote {} events, heard of {}",
            events.len(),
            written.len()
        )));
    }
    Ok(written)
}

/// How a message that needed the database was resolved.
struct Resolved {
    id: ContactId,
    /// The contact merged away into `id`, if any.
    merged: Option<ContactId>,
    /// Whether `id` is a contact the message created.
    created: bool,
}

impl Resolved {
    fn of(id: ContactId) -> Self {
        Resolved {
            id,
            merged: None,
            created: false,
        }
    }
}

/// Finds or creates the contact a message belongs to, merging profiles when the
/// message proves they are the same person.
async fn resolve_message<D: Ingest>(
    db: &D,
    rules: &Rules,
    ids: &mut Identities,
    m: &Call,
    now: Millis,
) -> Result<Resolved> {
    match try_resolve_message(db, rules, ids, m, now, false).await? {
        Some(resolved) => Ok(resolved),
        None => try_resolve_message(db, rules, ids, m, now, true)
            .await?
            .ok_or_else(stale),
    }
}

/// Looks identities up, in what the call knows unless `fresh`, else in the database
/// (concurrently). Also tells whether any answer came from the call's knowledge.
async fn lookup<D: Ingest>(
    db: &D,
    ids: &mut Identities,
    keys: [Option<(IdentityKind, &str)>; 3],
    fresh: bool,
) -> Result<([Option<Known>; 3], bool)> {
    let mut answers: [Option<Option<Known>>; 3] = Default::default();
    let mut from_call = false;
    for (answer, key) in answers.iter_mut().zip(keys) {
        match key {
            None => *answer = Some(None),
            Some((kind, value)) if !fresh => {
                *answer = ids.get(kind, value);
                from_call |= answer.is_some();
            }
            Some(_) => {}
        }
    }
    let query = |i: usize| {
        let key = keys[i].filter(|_| answers[i].is_none());
        async move {
            match key {
                Some((kind, value)) => db.known(kind, value).await.map(Some),
                None => Ok(None),
            }
        }
    };
    let (a, b, c) = tokio::try_join!(query(0), query(1), query(2))?;
    for (i, found) in [a, b, c].into_iter().enumerate() {
        if let (Some(found), Some((kind, value))) = (found, keys[i]) {
            ids.learn(kind, value, found.as_ref());
            answers[i] = Some(found);
        }
    }
    Ok((answers.map(Option::flatten), from_call))
}

/// One attempt of [`resolve_message`]. `None` when the decision was taken on what
/// the call knew and would change identities: the caller asks again with `fresh`.
async fn try_resolve_message<D: Ingest>(
    db: &D,
    rules: &Rules,
    ids: &mut Identities,
    m: &Call,
    now: Millis,
    fresh: bool,
) -> Result<Option<Resolved>> {
    let user = m.user_id.as_deref();
    let user_key = user.map(|u| (IdentityKind::UserId, u));
    let needs_fresh =
        |r: &Resolution, from_call: bool| from_call && matches!(r, Resolution::Attach(_) | Resolution::Merge { .. });
    if m.kind == CallKind::Alias {
        let prev = m.previous_id.as_deref().unwrap_or_default();
        let keys = [
            user_key,
            Some((IdentityKind::UserId, prev)),
            Some((IdentityKind::AnonymousId, prev)),
        ];
        let ([by_user, prev_as_user, prev_as_anon], from_call) = lookup(db, ids, keys, fresh).await?;
        let by_prev = prev_as_user.or(prev_as_anon);
        let prev_known = by_prev.is_some();
        let resolution = resolve_alias(by_user.as_ref(), by_prev.as_ref());
        if needs_fresh(&resolution, from_call) {
            return Ok(None);
        }
        return Ok(Some(match resolution {
            Resolution::Use(id) => Resolved::of(id),
            Resolution::Merge { from, into } => {
                merge(db, rules, ids, from, into, now).await?;
                Resolved {
                    merged: Some(from),
                    ..Resolved::of(into)
                }
            }
            Resolution::Attach(id) => {
                if by_user.is_none() {
                    attach_user(db, ids, id, user, now).await?;
                }
                if !prev_known {
                    add_identity(db, id, &Identity::anonymous(prev), now).await?;
                    ids.set(IdentityKind::AnonymousId, prev, id);
                }
                Resolved::of(id)
            }
            Resolution::Create { .. } => Resolved {
                created: true,
                ..Resolved::of(create_contact(db, Some(ids), user, Some(prev), now).await?)
            },
        }));
    }
    let anon = m.anonymous_id.as_deref();
    let keys = [user_key, anon.map(|a| (IdentityKind::AnonymousId, a)), None];
    let ([by_user, by_anon, _], from_call) = lookup(db, ids, keys, fresh).await?;
    let resolution = resolve(user, by_user.as_ref(), anon, by_anon.as_ref());
    if needs_fresh(&resolution, from_call) {
        return Ok(None);
    }
    Ok(Some(match resolution {
        Resolution::Use(id) => Resolved::of(id),
        Resolution::Create { with_anonymous } => {
            let anon = if with_anonymous { anon } else { None };
            Resolved {
                created: true,
                ..Resolved::of(create_contact(db, Some(ids), user, anon, now).await?)
            }
        }
        Resolution::Attach(id) => {
            if by_user.is_none() {
                attach_user(db, ids, id, user, now).await?;
            }
            if let Some(a) = anon
                && by_anon.is_none()
            {
                add_identity(db, id, &Identity::anonymous(a), now).await?;
                ids.set(IdentityKind::AnonymousId, a, id);
            }
            Resolved::of(id)
        }
        Resolution::Merge { from, into } => {
            merge(db, rules, ids, from, into, now).await?;
            Resolved {
                merged: Some(from),
                ..Resolved::of(into)
            }
        }
    }))
}

/// Gives a contact a user id that belongs to nobody yet: as its primary user id if
/// it has none, else as an alias user id.
async fn attach_user<D: Ingest>(
    db: &D,
    ids: &mut Identities,
    id: ContactId,
    user: Option<&str>,
    now: Millis,
) -> Result<()> {
    let Some(u) = user else { return Ok(()) };
    add_identity(db, id, &Identity::user(u), now).await?;
    ids.set(IdentityKind::UserId, u, id);
    let updated = db
        .update_row(
            "contacts",
            "UPDATE contacts SET user_id = $2, updated_at = $3 WHERE id = $1 AND user_id IS NULL",
            &[
                crate::sql::Arg::I64(id),
                crate::sql::Arg::Str(u),
                crate::sql::Arg::I64(now),
            ],
            contacts::SEARCHED,
        )
        .await?;
    let became_primary = updated.is_some();
    if let Some(row) = updated {
        // Its user id is searched.
        contacts::set_search(db, &contacts::searched(&row)?).await?;
    }
    if became_primary {
        ids.primary.insert(id, Some(u.to_string()));
    } else if ids.primary.get(&id) == Some(&None) {
        // It had a primary user id after all: forget the stale answer.
        ids.primary.remove(&id);
    }
    Ok(())
}

/// A new contact with these identities (which must belong to nobody yet), recorded in
/// the call's knowledge if there is one (imports have none).
pub(crate) async fn create_contact<D: Db>(
    db: &D,
    ids: Option<&mut Identities>,
    user: Option<&str>,
    anon: Option<&str>,
    now: Millis,
) -> Result<ContactId> {
    use crate::sql::Arg;
    let mut new = Contact::new(0, now);
    new.user_id = user.map(str::to_string);
    let id = db
        .insert(
            "INSERT INTO contacts (user_id, traits, subscriptions, created_at, updated_at, search)
             VALUES ($1, '{}', '{}', $2, $2, $3)",
            &[Arg::OptStr(user), Arg::I64(now), Arg::Str(&crate::search::text(&new))],
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("a new contact was not inserted".into()))?;
    if let Some(u) = user {
        add_identity(db, id, &Identity::user(u), now).await?;
    }
    if let Some(a) = anon {
        add_identity(db, id, &Identity::anonymous(a), now).await?;
    }
    if let Some(ids) = ids {
        ids.primary.insert(id, user.map(str::to_string));
        if let Some(u) = user {
            ids.set(IdentityKind::UserId, u, id);
        }
        if let Some(a) = anon {
            ids.set(IdentityKind::AnonymousId, a, id);
        }
    }
    Ok(id)
}

/// Records an identity of a contact. It must belong to nobody: if another transaction
/// took it since it was looked up, this one runs again ([`stale`]).
pub(crate) async fn add_identity<D: Db>(db: &D, id: ContactId, identity: &Identity, now: Millis) -> Result<()> {
    use crate::sql::Arg;
    let added = db
        .execute(
            "INSERT INTO identities (kind, value, contact_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kind, value) DO NOTHING",
            &[
                Arg::Str(identity.kind.as_str()),
                Arg::Str(&identity.value),
                Arg::I64(id),
                Arg::I64(now),
            ],
        )
        .await?;
    match added {
        0 => Err(stale()),
        _ => Ok(()),
    }
}

/// Folds contact `from` into `into`: events, identities and traits move, `from`
/// disappears, and its id keeps resolving to `into`. The survivor is re-evaluated by
/// segments; the merged-away contact's segment stays become the survivor's history.
pub(crate) async fn merge<D: Ingest>(
    db: &D,
    rules: &Rules,
    ids: &mut Identities,
    from: ContactId,
    into: ContactId,
    now: Millis,
) -> Result<()> {
    use crate::sql::Arg;
    // Lock in id order, so that concurrent merges of the same pair cannot deadlock.
    let (first, second) = (from.min(into), from.max(into));
    let first = db.load_contact(first).await?;
    let second = db.load_contact(second).await?;
    let (a, b) = if from < into { (first, second) } else { (second, first) };
    // Missing: merged away or erased by another transaction since the lookup.
    let a = a.ok_or_else(stale)?;
    let mut b = b.ok_or_else(stale)?;
    b.absorb(&a);
    b.updated_at = now;
    // Their orders add up, in the survivor's totals and traits.
    crate::shared::orders::merge(db, from, into, &mut b.traits, now).await?;
    let pair = [Arg::I64(from), Arg::I64(into)];
    for table in [
        "events",
        "identities",
        "push_subscriptions",
        "journey_runs",
        "journey_waits",
        "journey_inbox",
        "form_submissions",
    ] {
        db.execute(
            &format!("UPDATE {table} SET contact_id = $2 WHERE contact_id = $1"),
            &pair,
        )
        .await?;
    }
    db.execute("UPDATE contact_merges SET into_id = $2 WHERE into_id = $1", &pair)
        .await?;
    db.execute(
        "INSERT INTO contact_merges (from_id, into_id, merged_at) VALUES ($1, $2, $3)
         ON CONFLICT (from_id) DO UPDATE SET into_id = excluded.into_id, merged_at = excluded.merged_at",
        &[Arg::I64(from), Arg::I64(into), Arg::I64(now)],
    )
    .await?;
    db.execute("DELETE FROM contacts WHERE id = $1", &[Arg::I64(from)])
        .await?;
    db.save_contact(&b).await?;
    db.execute(
        "UPDATE segment_history SET exited_at = $2 WHERE contact_id = $1 AND exited_at IS NULL",
        &[Arg::I64(from), Arg::I64(now)],
    )
    .await?;
    db.execute(
        "UPDATE segment_history SET contact_id = $2 WHERE contact_id = $1",
        &pair,
    )
    .await?;
    // The survivor keeps its own scores and their history (a score only the
    // merged-away contact had arrives with its traits, and counts from there).
    for table in [
        "segment_members",
        "segment_timers",
        "segment_dirty",
        "score_changes",
        "contact_predictions",
    ] {
        db.execute(&format!("DELETE FROM {table} WHERE contact_id = $1"), &[Arg::I64(from)])
            .await?;
    }
    // What the merged-away contact engaged at joins the survivor's send-time profile.
    crate::shared::send_time::merge(db, from, into, now).await?;
    if rules.segments.any {
        db.mark_dirty(into).await?;
    }
    ids.moved.insert(from, into);
    ids.primary.remove(&from);
    ids.primary.insert(into, b.user_id.clone());
    // Every identity of the merged-away contact now points at the survivor, also those
    // the call did not name (SQLite's cache keeps the call's knowledge).
    for identity in a.identities() {
        ids.set(identity.kind, &identity.value, into);
    }
    tracing::debug!(from, into, "merged contacts");
    Ok(())
}
