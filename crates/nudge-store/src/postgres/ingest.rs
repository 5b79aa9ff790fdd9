//! Ingestion on PostgreSQL, inside one transaction: the identities a batch names read
//! in one round trip ([`Identities`]), messages resolved in order against that
//! knowledge (`nudge_core::resolve` decides), what most messages need done in a few
//! bulk statements ([`Deferred`]), merges and new identities one by one; a
//! transaction that lost a race is run again.

use super::*;

/// Whether a failed transaction may simply be run again: another transaction
/// deadlocked with it or made it unserializable, or changed what it had read (see
/// [`stale`]).
pub(super) fn retryable(e: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    match e {
        StoreError::Postgres(e) => {
            e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) || e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        }
        StoreError::Conflict(m) => m == STALE,
        _ => false,
    }
}

pub(super) const STALE: &str = "identities or messages kept changing concurrently; retry";

/// Another transaction changed something this one relied on (it created one of the
/// identities, stored one of the message ids, or merged or erased one of the contacts):
/// the transaction is rolled back and run again.
pub(super) fn stale() -> StoreError {
    StoreError::Conflict(STALE.into())
}

/// Whether a statement failed only because an earlier one of its transaction did.
pub(super) fn aborted(e: &StoreError) -> bool {
    matches!(e, StoreError::Postgres(e) if e.code() == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION))
}

/// The first failure among statements sent together, which is not necessarily the
/// first one to report: once one fails, all that run after it in the transaction
/// report that it is aborted.
pub(super) fn first_failure<const N: usize>(results: [Result<()>; N]) -> Result<()> {
    let mut failure = None;
    for e in results.into_iter().filter_map(Result::err) {
        if !aborted(&e) {
            return Err(e);
        }
        failure.get_or_insert(e);
    }
    failure.map_or(Ok(()), Err)
}

/// [`first_failure`] of two statements with results.
pub(super) fn both<A, B>((a, b): (Result<A>, Result<B>)) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(a), Err(b)) => Err(if aborted(&a) { b } else { a }),
    }
}

/// The error of a statement that inserts rows which must be new: a unique key that is
/// taken means another transaction wrote it since this one looked (see [`stale`]).
pub(super) fn taken(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        stale()
    } else {
        e.into()
    }
}

/// A short, growing, jittered pause before running a transaction again.
pub(super) async fn backoff(attempt: usize) {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 10);
    let ms = 5 * (attempt as u64 + 1) * (10 + u64::from(jitter)) / 10;
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// What one ingest call knows about identities: everything the call's messages name,
/// read with one query at its start, then kept up to date with the call's own writes.
///
/// Other transactions (other processes, admin writes) may change identities meanwhile,
/// so the knowledge is only trusted where staleness is harmless: to send a message to
/// the contact its identities already point at (`Resolution::Use`), or to create a
/// contact (a taken identity then fails to insert and the call runs again). Before
/// attaching identities or merging, the lookups are repeated in the database. And the
/// contacts of all stored events are locked at the end of the call: one that another
/// transaction merged away or erased meanwhile makes the call run again.
#[derive(Default)]
pub(super) struct Identities {
    /// Identity → the contact it pointed at (`None`: no contact) when read or written.
    by_user_id: HashMap<String, Option<ContactId>>,
    by_anonymous_id: HashMap<String, Option<ContactId>>,
    /// Primary user id of contacts.
    primary: HashMap<ContactId, Option<String>>,
    /// Contacts merged away during the call → the contact they were merged into.
    moved: HashMap<ContactId, ContactId>,
    /// Last-seen times of contacts as read at the start of the call. A contact's
    /// last-seen time never decreases, so it is at least that today.
    last_seen: HashMap<ContactId, Millis>,
}

impl Identities {
    /// Reads every identity the messages name.
    async fn prefetch<'m>(tx: &Transaction<'_>, messages: impl Iterator<Item = &'m Call>) -> Result<Self> {
        let mut users: HashSet<&str> = HashSet::new();
        let mut anons: HashSet<&str> = HashSet::new();
        for m in messages {
            users.extend(m.user_id.as_deref());
            anons.extend(m.anonymous_id.as_deref());
            if m.kind == CallKind::Alias {
                users.extend(m.previous_id.as_deref());
                anons.extend(m.previous_id.as_deref());
            }
        }
        let mut ids = Identities {
            by_user_id: users.iter().map(|u| (u.to_string(), None)).collect(),
            by_anonymous_id: anons.iter().map(|a| (a.to_string(), None)).collect(),
            ..Default::default()
        };
        let (mut users, mut anons): (Vec<&str>, Vec<&str>) = (users.into_iter().collect(), anons.into_iter().collect());
        // PostgreSQL sorts the values it looks up in an index, and finds an array in
        // that order already sorted at a glance (so for byte-order collations).
        users.sort_unstable();
        anons.sort_unstable();
        let stmt = tx
            .prepare_cached(
                "SELECT i.kind, i.value, i.contact_id, c.user_id, c.last_seen_at
                 FROM identities i JOIN contacts c ON c.id = i.contact_id
                 WHERE (i.kind = 'user_id' AND i.value = ANY($1)) OR (i.kind = 'anonymous_id' AND i.value = ANY($2))",
            )
            .await?;
        for r in tx.query(&stmt, &[&users, &anons]).await? {
            let kind: String = r.try_get(0)?;
            let kind =
                IdentityKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("identity kind {kind:?}")))?;
            let value: String = r.try_get(1)?;
            let known = Known {
                id: r.try_get(2)?,
                user_id: r.try_get(3)?,
            };
            if let Some(t) = r.try_get::<_, Option<Millis>>(4)? {
                ids.last_seen.insert(known.id, t);
            }
            ids.learn(kind, &value, Some(&known));
        }
        Ok(ids)
    }

    fn map(&mut self, kind: IdentityKind) -> &mut HashMap<String, Option<ContactId>> {
        match kind {
            IdentityKind::UserId => &mut self.by_user_id,
            IdentityKind::AnonymousId => &mut self.by_anonymous_id,
        }
    }

    /// Where a contact's events are now, after the call's merges.
    fn survivor(&self, mut id: ContactId) -> ContactId {
        while let Some(&into) = self.moved.get(&id) {
            id = into;
        }
        id
    }

    /// `Some(answer)` when the call knows what the identity points at.
    fn get(&self, kind: IdentityKind, value: &str) -> Option<Option<Known>> {
        let map = match kind {
            IdentityKind::UserId => &self.by_user_id,
            IdentityKind::AnonymousId => &self.by_anonymous_id,
        };
        match *map.get(value)? {
            None => Some(None),
            Some(id) => {
                let id = self.survivor(id);
                let user_id = self.primary.get(&id)?.clone();
                Some(Some(Known { id, user_id }))
            }
        }
    }

    /// Records what the database said about an identity.
    fn learn(&mut self, kind: IdentityKind, value: &str, found: Option<&Known>) {
        self.map(kind).insert(value.to_string(), found.map(|k| k.id));
        if let Some(k) = found {
            self.primary.insert(k.id, k.user_id.clone());
        }
    }

    /// Records an identity the call gave to a contact.
    fn set(&mut self, kind: IdentityKind, value: &str, id: ContactId) {
        self.map(kind).insert(value.to_string(), Some(id));
    }
}

/// Events of one call, written together at its end.
#[derive(Default)]
pub(super) struct NewEvents<'m> {
    message_ids: Vec<&'m str>,
    contact_ids: Vec<ContactId>,
    kinds: Vec<&'static str>,
    names: Vec<Option<&'m str>>,
    user_ids: Vec<Option<&'m str>>,
    anonymous_ids: Vec<Option<&'m str>>,
    timestamps: Vec<Millis>,
    received_ats: Vec<Millis>,
    properties: Vec<String>,
    contexts: Vec<String>,
    extras: Vec<Option<String>>,
}

/// The JSON documents of a message's event, as text.
pub(super) struct Body {
    properties: String,
    context: String,
    extra: Option<String>,
}

impl Body {
    fn of(m: &Call) -> Self {
        let properties = if matches!(m.kind, CallKind::Identify | CallKind::Group) {
            &m.traits
        } else {
            &m.properties
        };
        Body {
            properties: json_text(properties),
            context: json_text(&m.context),
            extra: extra_of(m).as_ref().map(json_text),
        }
    }
}

impl<'m> NewEvents<'m> {
    fn push(&mut self, m: &'m Call, contact: ContactId, body: Body) {
        self.message_ids.push(&m.message_id);
        self.contact_ids.push(contact);
        self.kinds.push(m.kind.as_str());
        self.names.push(m.display_name());
        self.user_ids.push(m.user_id.as_deref());
        self.anonymous_ids.push(m.anonymous_id.as_deref());
        self.timestamps.push(m.timestamp);
        self.received_ats.push(m.received_at);
        self.properties.push(body.properties);
        self.contexts.push(body.context);
        self.extras.push(body.extra);
    }

    /// Gives every event the id of the contact it belongs to once the call's contacts
    /// are written and its merges done (`contact` maps the ids they were recorded with).
    fn settle(&mut self, contact: impl Fn(ContactId) -> ContactId) {
        for id in &mut self.contact_ids {
            *id = contact(*id);
        }
    }

    /// Writes the events in message order (so ids grow in that order).
    async fn write(self, tx: &Transaction<'_>) -> Result<()> {
        if self.message_ids.is_empty() {
            return Ok(());
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO events (message_id, contact_id, type, name, user_id, anonymous_id, timestamp, received_at,
                                     properties, context, extra)
                 SELECT message_id, contact_id, type, name, user_id, anonymous_id, timestamp, received_at,
                        properties::jsonb, context::jsonb, extra::jsonb
                 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                             $8::bigint[], $9::text[], $10::text[], $11::text[])
                      WITH ORDINALITY AS v(message_id, contact_id, type, name, user_id, anonymous_id, timestamp,
                                           received_at, properties, context, extra, n)
                 ORDER BY n",
            )
            .await?;
        // A message id that is taken: another process stored it since the check for
        // duplicates. The call runs again, and the message is then a duplicate.
        tx.execute(
            &stmt,
            &[
                &self.message_ids,
                &self.contact_ids,
                &self.kinds,
                &self.names,
                &self.user_ids,
                &self.anonymous_ids,
                &self.timestamps,
                &self.received_ats,
                &self.properties,
                &self.contexts,
                &self.extras,
            ],
        )
        .await
        .map_err(taken)?;
        Ok(())
    }
}

/// How a message resolves when the call's knowledge decides it and the only write it
/// needs, if any, is a new contact: the two decisions that knowledge is trusted for
/// (see [`Identities`]).
pub(super) enum Planned<'m> {
    Use(ContactId),
    Create {
        user: Option<&'m str>,
        anonymous_id: Option<&'m str>,
    },
}

/// The resolution of a message from what the call knows, exactly as
/// [`try_resolve_message`] would decide it without asking the database. `None` when
/// the call does not know one of the identities, or when the message attaches
/// identities or merges contacts: it then takes the way of [`resolve_message`].
pub(super) fn plan<'m>(ids: &Identities, m: &'m Call) -> Option<Planned<'m>> {
    let get = |kind: IdentityKind, value: Option<&str>| match value {
        None => Some(None),
        Some(v) => ids.get(kind, v),
    };
    let user = m.user_id.as_deref();
    let by_user = get(IdentityKind::UserId, user)?;
    if m.kind == CallKind::Alias {
        let prev = m.previous_id.as_deref().unwrap_or_default();
        let prev_as_user = get(IdentityKind::UserId, Some(prev))?;
        let prev_as_anon = get(IdentityKind::AnonymousId, Some(prev))?;
        let by_prev = prev_as_user.or(prev_as_anon);
        return match resolve_alias(by_user.as_ref(), by_prev.as_ref()) {
            Resolution::Use(id) => Some(Planned::Use(id)),
            Resolution::Create { .. } => Some(Planned::Create {
                user,
                anonymous_id: Some(prev),
            }),
            Resolution::Attach(_) | Resolution::Merge { .. } => None,
        };
    }
    let anon = m.anonymous_id.as_deref();
    let by_anon = get(IdentityKind::AnonymousId, anon)?;
    match resolve(user, by_user.as_ref(), anon, by_anon.as_ref()) {
        Resolution::Use(id) => Some(Planned::Use(id)),
        Resolution::Create { with_anonymous } => Some(Planned::Create {
            user,
            anonymous_id: anon.filter(|_| with_anonymous),
        }),
        Resolution::Attach(_) | Resolution::Merge { .. } => None,
    }
}

/// Writes to contacts that a call defers, to do those of many messages with a few
/// statements: the contacts it creates (with their identities and traits) and traits
/// patches of existing contacts. They are flushed before anything of the call reads or
/// writes contacts or identities otherwise (attaching identities, merging, lookups in
/// the database), so the outcome is that of doing them message by message.
#[derive(Default)]
pub(super) struct Deferred<'m> {
    /// Contacts to create, in message order. Until they are written, each has a
    /// placeholder id (the `i`-th contact the call creates is `-1 - i`), by which the
    /// call's identities, events and last-seen times know it meanwhile.
    creates: Vec<NewContact<'m>>,
    /// The id each contact created so far was given, in creation order.
    written: Vec<ContactId>,
    /// Traits patches of existing contacts, in message order.
    patches: BTreeMap<ContactId, Vec<&'m Map<String, Value>>>,
}

pub(super) struct NewContact<'m> {
    contact: Contact,
    anonymous_id: Option<&'m str>,
}

impl<'m> Deferred<'m> {
    /// A new contact with these identities (which belong to nobody yet as far as the
    /// call knows), by its placeholder id.
    fn create(&mut self, ids: &mut Identities, user: Option<&str>, anon: Option<&'m str>, now: Millis) -> ContactId {
        let id = -1 - (self.written.len() + self.creates.len()) as ContactId;
        let mut contact = Contact::new(id, now);
        contact.user_id = user.map(str::to_string);
        ids.primary.insert(id, contact.user_id.clone());
        if let Some(u) = user {
            ids.set(IdentityKind::UserId, u, id);
        }
        if let Some(a) = anon {
            ids.set(IdentityKind::AnonymousId, a, id);
        }
        self.creates.push(NewContact {
            contact,
            anonymous_id: anon,
        });
        id
    }

    /// Applies an `identify`'s traits to a contact (by its id or placeholder).
    fn patch(&mut self, id: ContactId, traits: &'m Map<String, Value>) {
        if id < 0 {
            let i = (-1 - id) as usize - self.written.len();
            self.creates[i].contact.apply_traits(traits);
        } else {
            self.patches.entry(id).or_default().push(traits);
        }
    }

    /// The id of a contact the call knew by a placeholder once it is written.
    fn real(&self, id: ContactId) -> ContactId {
        if id < 0 { self.written[(-1 - id) as usize] } else { id }
    }

    /// Does the deferred writes. With `events` (the end of the call), also the call's
    /// final writes in the same round trip: its events, and the last-seen times of the
    /// contacts that already existed.
    async fn flush(
        &mut self,
        tx: &Transaction<'_>,
        ids: &mut Identities,
        last_seen: &mut BTreeMap<ContactId, Millis>,
        events: Option<NewEvents<'m>>,
        now: Millis,
    ) -> Result<()> {
        if self.creates.is_empty() && self.patches.is_empty() && events.is_none() {
            return Ok(());
        }
        let last = events.is_some();

        // One round trip: ids for the new contacts, and a lock on each patched one.
        let count = self.creates.len() as i64;
        let patched: Vec<ContactId> = self.patches.keys().copied().collect();
        let allocate = async {
            if count == 0 {
                return Ok(Vec::new());
            }
            let stmt = tx
                .prepare_cached(
                    "SELECT nextval(s) FROM CAST(pg_get_serial_sequence('contacts', 'id') AS regclass) AS s,
                     generate_series(1, $1::bigint)",
                )
                .await?;
            Ok::<_, StoreError>(tx.query(&stmt, &[&count]).await?)
        };
        let lock = async {
            if patched.is_empty() {
                return Ok(Vec::new());
            }
            let stmt = tx
                .prepare_cached("SELECT id, traits FROM contacts WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .await?;
            Ok::<_, StoreError>(tx.query(&stmt, &[&patched]).await?)
        };
        let (allocated, locked) = both(tokio::join!(biased; allocate, lock))?;

        // A session draws growing values from a sequence: in ascending order, contacts
        // get their ids in message order, as when created one by one.
        let mut new_ids: Vec<ContactId> = allocated.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        new_ids.sort_unstable();
        if new_ids.len() != self.creates.len() {
            return Err(StoreError::Corrupt(format!(
                "asked for {} contact ids, got {}",
                self.creates.len(),
                new_ids.len()
            )));
        }
        for (c, id) in self.creates.iter_mut().zip(new_ids) {
            let placeholder = std::mem::replace(&mut c.contact.id, id);
            self.written.push(id);
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

        let mut contacts = NewContacts::default();
        let mut identities: Vec<(&'static str, &str, ContactId)> = Vec::new();
        for NewContact {
            contact: c,
            anonymous_id,
        } in &self.creates
        {
            contacts.ids.push(c.id);
            contacts.user_ids.push(c.user_id.as_deref());
            contacts.emails.push(c.email.as_deref());
            contacts.phones.push(c.phone.as_deref());
            contacts.traits.push(Json(&c.traits));
            contacts.last_seen.push(c.last_seen_at);
            if let Some(u) = &c.user_id {
                identities.push((IdentityKind::UserId.as_str(), u, c.id));
            }
            if let Some(a) = anonymous_id {
                identities.push((IdentityKind::AnonymousId.as_str(), a, c.id));
            }
        }
        // Inserted in the same order by every process: calls that create the same
        // identity concurrently then wait for each other rather than deadlock.
        identities.sort_unstable();

        if locked.len() != patched.len() {
            // Merged away or erased by another transaction since the lookup.
            return Err(stale());
        }
        let mut patches = Patched::default();
        for r in &locked {
            let id: ContactId = r.try_get(0)?;
            let mut contact = Contact::new(id, now);
            contact.traits = match r.try_get::<_, Value>(1)? {
                Value::Object(m) => m,
                other => return Err(StoreError::Corrupt(format!("traits of contact {id}: {other}"))),
            };
            let mut changed = false;
            for p in self.patches.get(&id).into_iter().flatten() {
                changed |= contact.apply_traits(p);
            }
            if changed {
                patches.ids.push(id);
                patches.emails.push(contact.email);
                patches.phones.push(contact.phone);
                patches.traits.push(Json(contact.traits));
            }
        }

        let events = events.map(|mut e| {
            e.settle(|id| ids.survivor(self.real(id)));
            e
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
            if contacts.ids.is_empty() {
                return Ok(());
            }
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO contacts (id, user_id, email, phone, traits, subscriptions, created_at, updated_at,
                                           last_seen_at)
                     SELECT id, user_id, email, phone, traits, '{}', $7, $7, last_seen_at
                     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bigint[])
                          AS v(id, user_id, email, phone, traits, last_seen_at)",
                )
                .await?;
            tx.execute(
                &stmt,
                &[
                    &contacts.ids,
                    &contacts.user_ids,
                    &contacts.emails,
                    &contacts.phones,
                    &contacts.traits,
                    &contacts.last_seen,
                    &now,
                ],
            )
            .await?;
            Ok::<_, StoreError>(())
        };
        let insert_identities = async {
            if identities.is_empty() {
                return Ok(());
            }
            let kinds: Vec<&str> = identities.iter().map(|i| i.0).collect();
            let values: Vec<&str> = identities.iter().map(|i| i.1).collect();
            let owners: Vec<ContactId> = identities.iter().map(|i| i.2).collect();
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO identities (kind, value, contact_id, created_at)
                     SELECT kind, value, contact_id, $4 FROM unnest($1::text[], $2::text[], $3::bigint[])
                          AS v(kind, value, contact_id)",
                )
                .await?;
            // One that is taken: another transaction created it since it was looked up.
            tx.execute(&stmt, &[&kinds, &values, &owners, &now])
                .await
                .map_err(taken)?;
            Ok::<_, StoreError>(())
        };
        let update_traits = async {
            if patches.ids.is_empty() {
                return Ok(());
            }
            let stmt = tx
                .prepare_cached(
                    "UPDATE contacts c SET traits = v.traits, email = v.email, phone = v.phone, updated_at = $5
                     FROM unnest($1::bigint[], $2::jsonb[], $3::text[], $4::text[]) AS v(id, traits, email, phone)
                     WHERE c.id = v.id",
                )
                .await?;
            tx.execute(
                &stmt,
                &[&patches.ids, &patches.traits, &patches.emails, &patches.phones, &now],
            )
            .await?;
            Ok::<_, StoreError>(())
        };
        let write_events = async {
            match events {
                Some(e) => e.write(tx).await,
                None => Ok(()),
            }
        };
        // Both also lock every contact that received events until the commit, so that
        // none can be merged away or erased without its new events; one that already
        // was (by another transaction, since it was looked up) is missing here.
        // (Contacts the call creates are nobody else's to change.)
        let touch = async {
            let (contacts, times) = &touched;
            if contacts.is_empty() {
                return Ok(());
            }
            let stmt = tx
                .prepare_cached(
                    "UPDATE contacts c SET last_seen_at = GREATEST(COALESCE(c.last_seen_at, v.ts), v.ts)
                     FROM unnest($1::bigint[], $2::bigint[]) AS v(id, ts) WHERE c.id = v.id",
                )
                .await?;
            if tx.execute(&stmt, &[contacts, times]).await? != contacts.len() as u64 {
                return Err(stale());
            }
            Ok(())
        };
        let lock_unchanged = async {
            if unchanged.is_empty() {
                return Ok(());
            }
            // The lock an UPDATE takes.
            let stmt = tx
                .prepare_cached("SELECT id FROM contacts WHERE id = ANY($1) FOR NO KEY UPDATE")
                .await?;
            if tx.query(&stmt, &[&unchanged]).await?.len() != unchanged.len() {
                return Err(stale());
            }
            Ok(())
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
        first_failure([a, b, c, d, e, f])?;
        self.creates.clear();
        self.patches.clear();
        Ok(())
    }
}

/// Columns of the contacts a flush creates.
#[derive(Default)]
pub(super) struct NewContacts<'a> {
    ids: Vec<ContactId>,
    user_ids: Vec<Option<&'a str>>,
    emails: Vec<Option<&'a str>>,
    phones: Vec<Option<&'a str>>,
    traits: Vec<Json<&'a Map<String, Value>>>,
    last_seen: Vec<Option<Millis>>,
}

/// Columns of the contacts whose traits a flush changes.
#[derive(Default)]
pub(super) struct Patched {
    ids: Vec<ContactId>,
    emails: Vec<Option<String>>,
    phones: Vec<Option<String>>,
    traits: Vec<Json<Map<String, Value>>>,
}

/// Stores a call's messages.
pub(super) async fn ingest_tx(tx: &Transaction<'_>, messages: &[Call], now: Millis) -> Result<Vec<IngestOutcome>> {
    let mut message_ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    message_ids.sort_unstable(); // See `Identities::prefetch`.
    let stored = async {
        let stmt = tx
            .prepare_cached("SELECT message_id FROM events WHERE message_id = ANY($1)")
            .await?;
        Ok::<_, StoreError>(tx.query(&stmt, &[&message_ids]).await?)
    };
    // The events' JSON is written out meanwhile.
    let bodies = async {
        // Lets the connection send the queries first.
        tokio::task::yield_now().await;
        messages.iter().map(Body::of).collect::<Vec<_>>()
    };
    // In the same round trip as the check for duplicates, so also the identities of
    // messages that turn out to be duplicates: knowing more is harmless.
    let (stored, ids, bodies) = tokio::join!(biased; stored, Identities::prefetch(tx, messages.iter()), bodies);
    let (stored, mut ids) = both((stored, ids))?;
    let stored: HashSet<String> = stored.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    let mut deferred = Deferred::default();
    let mut out = Vec::with_capacity(messages.len());
    let mut seen: HashSet<&str> = HashSet::with_capacity(messages.len());
    let mut last_seen: BTreeMap<ContactId, Millis> = BTreeMap::new();
    let mut events = NewEvents::default();
    for (m, body) in messages.iter().zip(bodies) {
        if !seen.insert(&m.message_id) || stored.contains(&m.message_id) {
            out.push(IngestOutcome::Duplicate);
            continue;
        }
        let (id, merged) = match plan(&ids, m) {
            Some(Planned::Use(id)) => (id, None),
            Some(Planned::Create { user, anonymous_id }) => (deferred.create(&mut ids, user, anonymous_id, now), None),
            None => {
                // What the message does next reads or writes contacts and identities in
                // the database: they must hold all the call did so far.
                deferred.flush(tx, &mut ids, &mut last_seen, None, now).await?;
                resolve_message(tx, &mut ids, m, now).await?
            }
        };
        if let Some(from) = merged
            && let Some(t) = last_seen.remove(&from)
        {
            let e = last_seen.entry(id).or_insert(t);
            *e = (*e).max(t);
        }
        if m.kind == CallKind::Identify && !m.traits.is_empty() {
            deferred.patch(id, &m.traits);
        }
        events.push(m, id, body);
        let e = last_seen.entry(id).or_insert(m.timestamp);
        *e = (*e).max(m.timestamp);
        out.push(IngestOutcome::Stored);
    }
    deferred.flush(tx, &mut ids, &mut last_seen, Some(events), now).await?;
    Ok(out)
}

/// Finds or creates the contact a message belongs to, merging profiles when the
/// message proves they are the same person. Returns the contact and, if a merge
/// happened, the id that was merged away.
pub(super) async fn resolve_message(
    tx: &Transaction<'_>,
    ids: &mut Identities,
    m: &Call,
    now: Millis,
) -> Result<(ContactId, Option<ContactId>)> {
    match try_resolve_message(tx, ids, m, now, false).await? {
        Some(resolved) => Ok(resolved),
        None => try_resolve_message(tx, ids, m, now, true).await?.ok_or_else(stale),
    }
}

/// Looks identities up, in what the call knows unless `fresh`, else in the database
/// (concurrently). Also tells whether any answer came from the call's knowledge.
pub(super) async fn lookup(
    tx: &Transaction<'_>,
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
                Some((kind, value)) => known(tx, kind, value).await.map(Some),
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
pub(super) async fn try_resolve_message(
    tx: &Transaction<'_>,
    ids: &mut Identities,
    m: &Call,
    now: Millis,
    fresh: bool,
) -> Result<Option<(ContactId, Option<ContactId>)>> {
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
        let ([by_user, prev_as_user, prev_as_anon], from_call) = lookup(tx, ids, keys, fresh).await?;
        let by_prev = prev_as_user.or(prev_as_anon);
        let prev_known = by_prev.is_some();
        let resolution = resolve_alias(by_user.as_ref(), by_prev.as_ref());
        if needs_fresh(&resolution, from_call) {
            return Ok(None);
        }
        return Ok(Some(match resolution {
            Resolution::Use(id) => (id, None),
            Resolution::Merge { from, into } => {
                merge(tx, ids, from, into, now).await?;
                (into, Some(from))
            }
            Resolution::Attach(id) => {
                if by_user.is_none() {
                    attach_user(tx, ids, id, user, now).await?;
                }
                if !prev_known {
                    add_identity(tx, id, &Identity::anonymous(prev), now).await?;
                    ids.set(IdentityKind::AnonymousId, prev, id);
                }
                (id, None)
            }
            Resolution::Create { .. } => (create_contact(tx, Some(ids), user, Some(prev), now).await?, None),
        }));
    }
    let anon = m.anonymous_id.as_deref();
    let keys = [user_key, anon.map(|a| (IdentityKind::AnonymousId, a)), None];
    let ([by_user, by_anon, _], from_call) = lookup(tx, ids, keys, fresh).await?;
    let resolution = resolve(user, by_user.as_ref(), anon, by_anon.as_ref());
    if needs_fresh(&resolution, from_call) {
        return Ok(None);
    }
    Ok(Some(match resolution {
        Resolution::Use(id) => (id, None),
        Resolution::Create { with_anonymous } => {
            let anon = if with_anonymous { anon } else { None };
            (create_contact(tx, Some(ids), user, anon, now).await?, None)
        }
        Resolution::Attach(id) => {
            if by_user.is_none() {
                attach_user(tx, ids, id, user, now).await?;
            }
            if let Some(a) = anon
                && by_anon.is_none()
            {
                add_identity(tx, id, &Identity::anonymous(a), now).await?;
                ids.set(IdentityKind::AnonymousId, a, id);
            }
            (id, None)
        }
        Resolution::Merge { from, into } => {
            merge(tx, ids, from, into, now).await?;
            (into, Some(from))
        }
    }))
}

/// Gives a contact a user id that belongs to nobody yet: as its primary user id if
/// it has none, else as an alias user id.
pub(super) async fn attach_user(
    tx: &Transaction<'_>,
    ids: &mut Identities,
    id: ContactId,
    user: Option<&str>,
    now: Millis,
) -> Result<()> {
    let Some(u) = user else { return Ok(()) };
    add_identity(tx, id, &Identity::user(u), now).await?;
    ids.set(IdentityKind::UserId, u, id);
    let stmt = tx
        .prepare_cached("UPDATE contacts SET user_id = $2, updated_at = $3 WHERE id = $1 AND user_id IS NULL")
        .await?;
    if tx.execute(&stmt, &[&id, &u, &now]).await? == 1 {
        ids.primary.insert(id, Some(u.to_string()));
    } else if ids.primary.get(&id) == Some(&None) {
        // It had a primary user id after all: forget the stale answer.
        ids.primary.remove(&id);
    }
    Ok(())
}

/// A new contact with these identities (which must belong to nobody yet).
pub(super) async fn create_contact(
    tx: &Transaction<'_>,
    ids: Option<&mut Identities>,
    user: Option<&str>,
    anon: Option<&str>,
    now: Millis,
) -> Result<ContactId> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO contacts (user_id, traits, subscriptions, created_at, updated_at)
             VALUES ($1, '{}', '{}', $2, $2) RETURNING id",
        )
        .await?;
    let id: ContactId = tx.query_one(&stmt, &[&user, &now]).await?.try_get(0)?;
    if let Some(u) = user {
        add_identity(tx, id, &Identity::user(u), now).await?;
    }
    if let Some(a) = anon {
        add_identity(tx, id, &Identity::anonymous(a), now).await?;
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
/// took it since it was looked up, this one runs again.
pub(super) async fn add_identity(tx: &Transaction<'_>, id: ContactId, identity: &Identity, now: Millis) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO identities (kind, value, contact_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kind, value) DO NOTHING",
        )
        .await?;
    match tx
        .execute(&stmt, &[&identity.kind.as_str(), &identity.value, &id, &now])
        .await?
    {
        0 => Err(stale()),
        _ => Ok(()),
    }
}

/// Folds contact `from` into `into`: events, identities and traits move, `from`
/// disappears, and its id keeps resolving to `into`.
pub(super) async fn merge(
    tx: &Transaction<'_>,
    ids: &mut Identities,
    from: ContactId,
    into: ContactId,
    now: Millis,
) -> Result<()> {
    // Lock in id order, so that concurrent merges of the same pair cannot deadlock.
    let (first, second) = (from.min(into), from.max(into));
    let first = load_contact(tx, first, true).await?;
    let second = load_contact(tx, second, true).await?;
    let (a, b) = if from < into { (first, second) } else { (second, first) };
    // Missing: merged away or erased by another transaction since the lookup.
    let a = a.ok_or_else(stale)?;
    let mut b = b.ok_or_else(stale)?;
    b.absorb(&a);
    b.updated_at = now;
    let params: [&(dyn ToSql + Sync); 2] = [&from, &into];
    tx.execute("UPDATE events SET contact_id = $2 WHERE contact_id = $1", &params)
        .await?;
    tx.execute("UPDATE identities SET contact_id = $2 WHERE contact_id = $1", &params)
        .await?;
    for table in ["push_subscriptions", "journey_runs", "journey_waits", "journey_inbox"] {
        tx.execute(
            &format!("UPDATE {table} SET contact_id = $2 WHERE contact_id = $1"),
            &params,
        )
        .await?;
    }
    tx.execute("UPDATE contact_merges SET into_id = $2 WHERE into_id = $1", &params)
        .await?;
    tx.execute(
        "INSERT INTO contact_merges (from_id, into_id, merged_at) VALUES ($1, $2, $3)
         ON CONFLICT (from_id) DO UPDATE SET into_id = EXCLUDED.into_id, merged_at = EXCLUDED.merged_at",
        &[&from, &into, &now],
    )
    .await?;
    tx.execute("DELETE FROM contacts WHERE id = $1", &[&from]).await?;
    save_contact(tx, &b).await?;
    segments::on_merge(tx, from, into, now).await?;
    ids.moved.insert(from, into);
    ids.primary.remove(&from);
    ids.primary.insert(into, b.user_id.clone());
    tracing::debug!(from, into, "merged contacts");
    Ok(())
}

// ---------------------------------------------------------------------------------
// Rows.

pub(super) async fn known(c: &impl GenericClient, kind: IdentityKind, value: &str) -> Result<Option<Known>> {
    let stmt = c
        .prepare_cached(
            "SELECT i.contact_id, c.user_id FROM identities i JOIN contacts c ON c.id = i.contact_id
             WHERE i.kind = $1 AND i.value = $2",
        )
        .await?;
    match c.query_opt(&stmt, &[&kind.as_str(), &value]).await? {
        Some(r) => Ok(Some(Known {
            id: r.try_get(0)?,
            user_id: r.try_get(1)?,
        })),
        None => Ok(None),
    }
}
