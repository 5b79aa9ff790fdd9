//! The pure half of ingestion: what one ingest call knows about identities
//! ([`Identities`]), the decisions that knowledge is trusted for ([`plan`]), and the
//! bookkeeping of what the call defers to write in bulk ([`Deferred`], [`NewEvents`]).
//! No SQL and no I/O here; `shared/ingest.rs` carries the decisions out.

use crate::codec::{extra_of, json_text};
use nudge_core::{Call, CallKind, Contact, ContactId, IdentityKind, Known, Millis, Resolution, resolve, resolve_alias};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What the database (or SQLite's identity cache) said about one identity a call
/// names, when it points at a contact.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub kind: IdentityKind,
    pub value: String,
    pub known: Known,
    /// The contact's last-seen time where the backend stores one (PostgreSQL).
    pub last_seen: Option<Millis>,
}

/// The identities a call's messages name: user ids (with the `previousId` of aliases)
/// and anonymous ids (likewise), each once.
pub(crate) fn named_identities(messages: &[Call]) -> (Vec<&str>, Vec<&str>) {
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
    (users.into_iter().collect(), anons.into_iter().collect())
}

/// A contact an identity points at, and the contact's primary user id.
pub(crate) type Owner<'a> = (ContactId, Option<&'a str>);

/// What one ingest call knows about identities: everything the call's messages name,
/// read at its start, then kept up to date with the call's own writes.
///
/// On PostgreSQL other transactions (other processes, admin writes) may change
/// identities meanwhile, so the knowledge is only trusted where staleness is harmless:
/// to send a message to the contact its identities already point at
/// (`Resolution::Use`), or to create a contact (a taken identity then fails to insert
/// and the call runs again). Before attaching identities or merging, the lookups are
/// repeated in the database. And the contacts of all stored events are locked at the
/// end of the call: one that another transaction merged away or erased meanwhile makes
/// the call run again. On SQLite the single writer makes the knowledge exact, and the
/// same rules merely cost a few cache lookups.
#[derive(Debug, Default)]
pub(crate) struct Identities {
    /// Identity → the contact it pointed at (`None`: no contact) when read or written.
    by_user_id: HashMap<String, Option<ContactId>>,
    by_anonymous_id: HashMap<String, Option<ContactId>>,
    /// Primary user id of contacts.
    pub(crate) primary: HashMap<ContactId, Option<String>>,
    /// Contacts merged away during the call → the contact they were merged into.
    pub(crate) moved: HashMap<ContactId, ContactId>,
    /// Last-seen times of contacts as read at the start of the call (PostgreSQL). A
    /// contact's last-seen time never decreases, so it is at least that today.
    pub(crate) last_seen: HashMap<ContactId, Millis>,
}

impl Identities {
    /// The knowledge of a call that names `users` and `anons`, of which `found` point
    /// at contacts (the others at nobody).
    pub(crate) fn new(users: &[&str], anons: &[&str], found: Vec<Found>) -> Self {
        let mut ids = Identities {
            by_user_id: users.iter().map(|u| (u.to_string(), None)).collect(),
            by_anonymous_id: anons.iter().map(|a| (a.to_string(), None)).collect(),
            ..Default::default()
        };
        for f in found {
            if let Some(t) = f.last_seen {
                ids.last_seen.insert(f.known.id, t);
            }
            ids.learn(f.kind, &f.value, Some(&f.known));
        }
        ids
    }

    fn map(&mut self, kind: IdentityKind) -> &mut HashMap<String, Option<ContactId>> {
        match kind {
            IdentityKind::UserId => &mut self.by_user_id,
            IdentityKind::AnonymousId => &mut self.by_anonymous_id,
        }
    }

    /// Where a contact's events are now, after the call's merges.
    pub(crate) fn survivor(&self, mut id: ContactId) -> ContactId {
        while let Some(&into) = self.moved.get(&id) {
            id = into;
        }
        id
    }

    /// `Some(answer)` when the call knows what the identity points at.
    pub(crate) fn get(&self, kind: IdentityKind, value: &str) -> Option<Option<Known>> {
        Some(self.answer(kind, value)?.map(|(id, user_id)| Known {
            id,
            user_id: user_id.map(str::to_string),
        }))
    }

    /// [`Identities::get`] without copying the user id.
    fn answer(&self, kind: IdentityKind, value: &str) -> Option<Option<Owner<'_>>> {
        let map = match kind {
            IdentityKind::UserId => &self.by_user_id,
            IdentityKind::AnonymousId => &self.by_anonymous_id,
        };
        match *map.get(value)? {
            None => Some(None),
            Some(id) => {
                let id = self.survivor(id);
                Some(Some((id, self.primary.get(&id)?.as_deref())))
            }
        }
    }

    /// Every identity the call knows of, with [`Identities::get`]'s answer as the
    /// contact and its primary user id (SQLite keeps the answers in its cache for the
    /// next calls).
    pub(crate) fn answers(&self) -> impl Iterator<Item = (IdentityKind, &str, Option<Option<Owner<'_>>>)> {
        let users = self.by_user_id.keys().map(|v| (IdentityKind::UserId, v));
        let anons = self.by_anonymous_id.keys().map(|v| (IdentityKind::AnonymousId, v));
        users
            .chain(anons)
            .map(|(kind, v)| (kind, v.as_str(), self.answer(kind, v)))
    }

    /// Records what the database said about an identity.
    pub(crate) fn learn(&mut self, kind: IdentityKind, value: &str, found: Option<&Known>) {
        self.point(kind, value, found.map(|k| k.id));
        if let Some(k) = found {
            self.primary.insert(k.id, k.user_id.clone());
        }
    }

    /// Records an identity the call gave to a contact.
    pub(crate) fn set(&mut self, kind: IdentityKind, value: &str, id: ContactId) {
        self.point(kind, value, Some(id));
    }

    fn point(&mut self, kind: IdentityKind, value: &str, id: Option<ContactId>) {
        let map = self.map(kind);
        match map.get_mut(value) {
            Some(slot) => *slot = id,
            None => {
                map.insert(value.to_string(), id);
            }
        }
    }
}

/// How a message resolves when the call's knowledge decides it and the only write it
/// needs, if any, is a new contact: the two decisions that knowledge is trusted for
/// (see [`Identities`]).
#[derive(Debug, PartialEq)]
pub(crate) enum Planned<'m> {
    Use(ContactId),
    Create {
        user: Option<&'m str>,
        anonymous_id: Option<&'m str>,
    },
}

/// The resolution of a message from what the call knows, exactly as the database
/// lookups of `resolve_message` would decide it. `None` when the call does not know
/// one of the identities, or when the message attaches identities or merges contacts:
/// it then takes the way of `resolve_message`.
pub(crate) fn plan<'m>(ids: &Identities, m: &'m Call) -> Option<Planned<'m>> {
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

/// Whether storing a message, planned so, writes to contacts or identities (so it must
/// be known to be new first): anything but an event for a contact the call already
/// knows, unless it is an `identify` that sets traits.
pub(crate) fn writes_contacts(planned: &Option<Planned<'_>>, m: &Call) -> bool {
    !matches!(planned, Some(Planned::Use(_))) || (m.kind == CallKind::Identify && !m.traits.is_empty())
}

/// Writes to contacts that a call defers, to do those of many messages with a few
/// statements: the contacts it creates (with their identities and traits) and traits
/// patches of existing contacts. They are flushed before anything of the call reads or
/// writes contacts or identities otherwise (attaching identities, merging, lookups in
/// the database), so the outcome is that of doing them message by message.
#[derive(Debug, Default)]
pub(crate) struct Deferred<'m> {
    /// Contacts to create, in message order. Until they are written, each has a
    /// placeholder id (the `i`-th contact the call creates is `-1 - i`), by which the
    /// call's identities, events and last-seen times know it meanwhile.
    pub(crate) creates: Vec<NewContact<'m>>,
    /// The id each contact created so far was given, in creation order.
    pub(crate) written: Vec<ContactId>,
    /// Traits patches of existing contacts, in message order.
    pub(crate) patches: BTreeMap<ContactId, Vec<Patch<'m>>>,
    /// The messages (by index) whose traits changed their contact.
    pub(crate) changed: HashSet<usize>,
}

/// The traits of an `identify` for a contact that exists, and the index of the
/// message in the call (to tell which messages changed traits).
pub(crate) type Patch<'m> = (usize, &'m Map<String, Value>);

#[derive(Debug)]
pub(crate) struct NewContact<'m> {
    pub(crate) contact: Contact,
    pub(crate) anonymous_id: Option<&'m str>,
}

impl<'m> Deferred<'m> {
    /// A new contact with these identities (which belong to nobody yet as far as the
    /// call knows), by its placeholder id.
    pub(crate) fn create(
        &mut self,
        ids: &mut Identities,
        user: Option<&str>,
        anon: Option<&'m str>,
        now: Millis,
    ) -> ContactId {
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

    /// Applies the traits of an `identify` (message `message`) to a contact, by its id
    /// or placeholder.
    pub(crate) fn patch(&mut self, message: usize, id: ContactId, traits: &'m Map<String, Value>) {
        if id < 0 {
            let i = (-1 - id) as usize - self.written.len();
            if self.creates[i].contact.apply_traits(traits) {
                self.changed.insert(message);
            }
        } else {
            self.patches.entry(id).or_default().push((message, traits));
        }
    }

    /// Applies the deferred patches of contact `id` (whose primary user id is
    /// `user_id`) to its stored traits: the contact as it is to be saved, if they
    /// changed it.
    pub(crate) fn patched(
        &mut self,
        id: ContactId,
        user_id: Option<String>,
        traits: Map<String, Value>,
        now: Millis,
    ) -> Option<Contact> {
        let mut contact = Contact::new(id, now);
        contact.user_id = user_id;
        contact.traits = traits;
        let mut any = false;
        for (message, p) in self.patches.get(&id).into_iter().flatten() {
            if contact.apply_traits(p) {
                self.changed.insert(*message);
                any = true;
            }
        }
        any.then_some(contact)
    }

    /// The id of a contact the call knew by a placeholder once it is written.
    pub(crate) fn real(&self, id: ContactId) -> ContactId {
        if id < 0 { self.written[(-1 - id) as usize] } else { id }
    }
}

/// Events of one call, written together at its end, by column (PostgreSQL binds each
/// column as one array).
#[derive(Debug, Default)]
pub(crate) struct NewEvents<'m> {
    /// The index of each event's message in the call.
    pub messages: Vec<usize>,
    pub message_ids: Vec<&'m str>,
    pub contact_ids: Vec<ContactId>,
    pub kinds: Vec<&'static str>,
    pub names: Vec<Option<&'m str>>,
    pub user_ids: Vec<Option<&'m str>>,
    pub anonymous_ids: Vec<Option<&'m str>>,
    pub timestamps: Vec<Millis>,
    pub received_ats: Vec<Millis>,
    pub properties: Vec<String>,
    pub contexts: Vec<String>,
    pub extras: Vec<Option<String>>,
}

/// The JSON documents of a message's event, as text.
pub(crate) struct Body {
    properties: String,
    context: String,
    extra: Option<String>,
}

impl Body {
    pub(crate) fn of(m: &Call) -> Self {
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
    pub(crate) fn push(&mut self, index: usize, m: &'m Call, contact: ContactId, body: Body) {
        self.messages.push(index);
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

    pub(crate) fn len(&self) -> usize {
        self.message_ids.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.message_ids.is_empty()
    }

    /// Gives every event the id of the contact it belongs to once the call's contacts
    /// are written and its merges done (`contact` maps the ids they were recorded with).
    pub(crate) fn settle(&mut self, contact: impl Fn(ContactId) -> ContactId) {
        for id in &mut self.contact_ids {
            *id = contact(*id);
        }
    }
}

/// A journey-inbox row for a stored event, by the event's message id: the event itself
/// (its name and properties), or, with `name` and `properties`, a notice about it
/// ([`crate::TRAITS_CHANGED`] for an `identify`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InboxRow<'m> {
    pub message_id: &'m str,
    /// The stored event's contact and time: PostgreSQL finds the event by them
    /// (its partition by the time; `events` has no index on message ids there).
    pub contact: ContactId,
    pub at: Millis,
    pub name: Option<&'static str>,
    pub properties: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_core::{Received, parse_batch};
    use serde_json::json;

    fn calls(batch: Value) -> Vec<Call> {
        let mut n = 0;
        let mut ids = move || {
            n += 1;
            format!("m{n}")
        };
        parse_batch(
            &serde_json::to_vec(&json!({ "batch": batch })).unwrap(),
            &Received { at: 0, ip: None },
            &mut ids,
        )
        .unwrap()
        .messages
    }

    fn found(kind: IdentityKind, value: &str, id: ContactId, user: Option<&str>) -> Found {
        Found {
            kind,
            value: value.into(),
            known: Known {
                id,
                user_id: user.map(str::to_string),
            },
            last_seen: None,
        }
    }

    #[test]
    fn the_identities_a_call_names_include_alias_previous_ids_as_both_kinds() {
        let m = calls(json!([
            {"type": "track", "event": "A", "userId": "u1", "anonymousId": "a1"},
            {"type": "alias", "userId": "u2", "previousId": "p"},
            {"type": "page", "anonymousId": "a1"},
        ]));
        let (mut users, mut anons) = named_identities(&m);
        users.sort_unstable();
        anons.sort_unstable();
        assert_eq!(users, ["p", "u1", "u2"]);
        assert_eq!(anons, ["a1", "p"]);
    }

    #[test]
    fn knowledge_decides_use_and_create_and_leaves_attach_and_merge_to_the_database() {
        let ids = Identities::new(
            &["u1", "u2", "new"],
            &["a1", "a2", "fresh"],
            vec![
                found(IdentityKind::UserId, "u1", 1, Some("u1")),
                found(IdentityKind::AnonymousId, "a1", 1, Some("u1")),
                found(IdentityKind::AnonymousId, "a2", 2, None),
            ],
        );
        let m = calls(json!([
            {"type": "track", "event": "A", "userId": "u1", "anonymousId": "a1"},
            {"type": "track", "event": "A", "userId": "new"},
            {"type": "page", "anonymousId": "fresh"},
            {"type": "identify", "userId": "u1", "anonymousId": "a2"},
            {"type": "identify", "userId": "new", "anonymousId": "a2"},
            {"type": "track", "event": "A", "userId": "unknown"},
            {"type": "alias", "userId": "new", "previousId": "gone"},
        ]));
        let planned: Vec<_> = m.iter().map(|m| plan(&ids, m)).collect();
        assert_eq!(planned[0], Some(Planned::Use(1)));
        assert_eq!(
            planned[1],
            Some(Planned::Create {
                user: Some("new"),
                anonymous_id: None
            })
        );
        assert_eq!(
            planned[2],
            Some(Planned::Create {
                user: None,
                anonymous_id: Some("fresh")
            })
        );
        assert_eq!(planned[3], None, "a merge is looked up again in the database");
        assert_eq!(planned[4], None, "an attach is looked up again in the database");
        assert_eq!(planned[5], None, "an identity the call does not know");
        assert_eq!(planned[6], None, "a previous id the call does not know");
        assert!(!writes_contacts(&planned[0], &m[0]));
        assert!(writes_contacts(&planned[1], &m[1]));
        assert!(writes_contacts(&planned[3], &m[3]));
    }

    #[test]
    fn created_contacts_are_known_by_placeholders_until_written_and_merges_are_followed() {
        let mut ids = Identities::new(&["u1"], &["a1"], vec![]);
        let mut deferred = Deferred::default();
        let a = deferred.create(&mut ids, Some("u1"), Some("a1"), 0);
        let b = deferred.create(&mut ids, None, None, 0);
        assert_eq!((a, b), (-1, -2));
        let known = Known {
            id: -1,
            user_id: Some("u1".into()),
        };
        assert_eq!(ids.get(IdentityKind::AnonymousId, "a1"), Some(Some(known)));
        deferred.written = vec![10, 11];
        assert_eq!((deferred.real(a), deferred.real(b), deferred.real(7)), (10, 11, 7));
        ids.moved.insert(10, 11);
        ids.moved.insert(11, 12);
        assert_eq!(ids.survivor(10), 12);
    }

    #[test]
    fn a_patch_counts_as_a_change_only_when_it_changes_traits() {
        let m = calls(json!([
            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
            {"type": "identify", "userId": "u2", "traits": {"plan": "free"}},
            {"type": "identify", "userId": "u2", "traits": {"plan": "free", "email": "X@Example.com"}},
        ]));
        let mut ids = Identities::new(&["u1", "u2"], &[], vec![]);
        let mut deferred = Deferred::default();
        let new = deferred.create(&mut ids, Some("u1"), None, 0);
        deferred.patch(0, new, &m[0].traits);
        deferred.patch(1, new, &m[1].traits);
        deferred.patch(2, 5, &m[2].traits);
        deferred.patch(3, 5, &m[3].traits);
        let stored = json!({"plan": "free"}).as_object().cloned().unwrap();
        let saved = deferred.patched(5, None, stored, 0).unwrap();
        assert_eq!(saved.email.as_deref(), Some("x@example.com"));
        let mut changed: Vec<_> = deferred.changed.iter().copied().collect();
        changed.sort_unstable();
        assert_eq!(changed, [0, 3]);
        let unchanged = json!({"plan": "free", "email": "X@Example.com"}).as_object().cloned();
        assert!(deferred.patched(5, None, unchanged.unwrap(), 0).is_none());
    }
}
