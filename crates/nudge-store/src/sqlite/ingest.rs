//! Ingestion's primitives on SQLite ([`Ingest`]): the shared algorithm
//! (`shared/ingest.rs`) runs in one poll on the writer thread, and each bulk read or
//! write is a loop of cached prepared statements (a call into the library, not a
//! round trip). Identity lookups go through the writer's cache, which keeps what each
//! call learned: only this thread changes identities, so it stays exact.

use super::db::SqliteDb;
use super::*;
use crate::shared::ingest::{Found, Identities, InboxRow, Ingest, Locked, NewEvents};
use std::future::{Future, ready};

impl<'a> SqliteDb<'a> {
    fn cache(&self) -> Result<std::cell::RefMut<'_, &'a mut IdCache>> {
        self.writer_cache()
            .ok_or_else(|| StoreError::Corrupt("ingestion ran on a SQLite read connection".into()))
    }

    fn stored_ids(&self, ids: &[&str]) -> Result<HashSet<String>> {
        let mut exists = self
            .conn()
            .prepare_cached("SELECT 1 FROM events WHERE message_id = ?")?;
        let mut out = HashSet::new();
        for id in ids {
            if exists.exists([id])? {
                out.insert(id.to_string());
            }
        }
        Ok(out)
    }

    fn found(&self, users: &[&str], anons: &[&str]) -> Result<Vec<Found>> {
        let mut cache = self.cache()?;
        let named = users
            .iter()
            .map(|u| (IdentityKind::UserId, *u))
            .chain(anons.iter().map(|a| (IdentityKind::AnonymousId, *a)));
        let mut out = Vec::new();
        for (kind, value) in named {
            if let Some(known) = known(self.conn(), &mut cache, kind, value)? {
                out.push(Found {
                    kind,
                    value: value.to_string(),
                    known,
                    last_seen: None,
                });
            }
        }
        Ok(out)
    }

    /// The next ids `AUTOINCREMENT` would give: past the highest ever handed out.
    fn next_ids(&self, n: usize) -> Result<Vec<ContactId>> {
        let last: ContactId = self
            .conn()
            .prepare_cached(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'contacts'), 0),
                        coalesce((SELECT max(id) FROM contacts), 0))",
            )?
            .query_row([], |r| r.get(0))?;
        Ok((1..=n as ContactId).map(|i| last + i).collect())
    }

    fn traits_of(&self, ids: &[ContactId]) -> Result<Vec<Locked>> {
        let mut select = self
            .conn()
            .prepare_cached("SELECT user_id, traits FROM contacts WHERE id = ?")?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let row = select
                .query_row([id], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?)))
                .optional()?;
            if let Some((user_id, traits)) = row {
                out.push((id, user_id, parse_object(&traits)?));
            }
        }
        Ok(out)
    }

    fn insert_contact_rows(&self, contacts: &[&Contact], now: Millis) -> Result<()> {
        let mut insert = self.conn().prepare_cached(
            "INSERT INTO contacts (id, user_id, email, phone, traits, subscriptions, created_at, updated_at, search)
             VALUES (?1, ?2, ?3, ?4, ?5, '{}', ?6, ?6, ?7)",
        )?;
        for c in contacts {
            let search = crate::search::text(c);
            insert.execute(params![
                c.id,
                c.user_id,
                c.email,
                c.phone,
                json_text(&c.traits),
                now,
                search
            ])?;
        }
        Ok(())
    }

    fn insert_identity_rows(&self, identities: &[(IdentityKind, &str, ContactId)], now: Millis) -> Result<()> {
        let mut insert = self
            .conn()
            .prepare_cached("INSERT INTO identities (kind, value, contact_id, created_at) VALUES (?, ?, ?, ?)")?;
        for (kind, value, id) in identities {
            insert.execute(params![kind.as_str(), value, id, now])?;
        }
        Ok(())
    }

    fn update_traits_rows(&self, contacts: &[Contact], now: Millis) -> Result<()> {
        let mut update = self.conn().prepare_cached(
            "UPDATE contacts SET traits = ?2, email = ?3, phone = ?4, updated_at = ?5, search = ?6 WHERE id = ?1",
        )?;
        for c in contacts {
            let search = crate::search::text(c);
            update.execute(params![c.id, json_text(&c.traits), c.email, c.phone, now, search])?;
        }
        Ok(())
    }

    fn insert_event_rows(&self, e: &NewEvents<'_>) -> Result<Vec<bool>> {
        let mut insert = self.conn().prepare_cached(
            "INSERT OR IGNORE INTO events (message_id, contact_id, type, name, user_id, anonymous_id, timestamp, received_at, properties, context, extra)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?;
        (0..e.len())
            .map(|i| {
                let inserted = insert.execute(params![
                    e.message_ids[i],
                    e.contact_ids[i],
                    e.kinds[i],
                    e.names[i],
                    e.user_ids[i],
                    e.anonymous_ids[i],
                    e.timestamps[i],
                    e.received_ats[i],
                    e.properties[i],
                    e.contexts[i],
                    e.extras[i],
                ])?;
                Ok(inserted == 1)
            })
            .collect()
    }

    fn queue_inbox_rows(&self, rows: &[InboxRow<'_>]) -> Result<()> {
        let mut insert = self.conn().prepare_cached(
            "INSERT INTO journey_inbox (contact_id, event_id, name, properties, at)
             SELECT contact_id, id, coalesce(?2, name), coalesce(?3, properties), timestamp FROM events
             WHERE message_id = ?1",
        )?;
        for r in rows {
            let properties = r.properties.as_ref().map(Value::to_string);
            insert.execute(params![r.message_id, r.name, properties])?;
        }
        Ok(())
    }

    fn mark_rows_dirty(&self, contacts: &[ContactId]) -> Result<()> {
        let mut cache = self.cache()?;
        for &id in contacts {
            segments::mark_dirty(self.conn(), &mut cache, id)?;
        }
        Ok(())
    }
}

impl Ingest for SqliteDb<'_> {
    const CHECKS_AHEAD: bool = false;

    fn stored_message_ids(&self, ids: &[&str]) -> impl Future<Output = Result<HashSet<String>>> + Send {
        ready(self.stored_ids(ids))
    }

    fn identities(&self, users: &[&str], anons: &[&str]) -> impl Future<Output = Result<Vec<Found>>> + Send {
        ready(self.found(users, anons))
    }

    fn known(&self, kind: IdentityKind, value: &str) -> impl Future<Output = Result<Option<Known>>> + Send {
        ready(
            self.cache()
                .and_then(|mut cache| known(self.conn(), &mut cache, kind, value)),
        )
    }

    fn yield_to_io(&self) -> impl Future<Output = ()> + Send {
        ready(())
    }

    fn new_contact_ids(&self, n: usize) -> impl Future<Output = Result<Vec<ContactId>>> + Send {
        ready(self.next_ids(n))
    }

    fn lock_traits(&self, ids: &[ContactId]) -> impl Future<Output = Result<Vec<Locked>>> + Send {
        ready(self.traits_of(ids))
    }

    fn insert_contacts(&self, contacts: &[&Contact], now: Millis) -> impl Future<Output = Result<()>> + Send {
        ready(self.insert_contact_rows(contacts, now))
    }

    fn insert_identities(
        &self,
        identities: &[(IdentityKind, &str, ContactId)],
        now: Millis,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(self.insert_identity_rows(identities, now))
    }

    fn update_traits(&self, contacts: &[Contact], now: Millis) -> impl Future<Output = Result<()>> + Send {
        ready(self.update_traits_rows(contacts, now))
    }

    fn insert_events(&self, events: &NewEvents<'_>) -> impl Future<Output = Result<Vec<bool>>> + Send {
        ready(self.insert_event_rows(events))
    }

    /// Nothing to store: SQLite reads a contact's last-seen time from its events.
    fn touch(&self, _contacts: &[ContactId], _times: &[Millis]) -> impl Future<Output = Result<()>> + Send {
        ready(Ok(()))
    }

    /// Nothing to lock: the single writer holds the database.
    fn lock_contacts(&self, _contacts: &[ContactId]) -> impl Future<Output = Result<()>> + Send {
        ready(Ok(()))
    }

    fn queue_inbox(&self, rows: &[InboxRow<'_>]) -> impl Future<Output = Result<()>> + Send {
        ready(self.queue_inbox_rows(rows))
    }

    fn mark_all_dirty(&self, contacts: &[ContactId]) -> impl Future<Output = Result<()>> + Send {
        ready(self.mark_rows_dirty(contacts))
    }

    fn remember(&self, ids: &Identities) {
        let Some(mut cache) = self.writer_cache() else { return };
        for (kind, value, answer) in ids.answers() {
            match answer {
                Some(Some((id, user_id))) => {
                    if !cache.points_at(kind, value, id, user_id) {
                        let known = Known {
                            id,
                            user_id: user_id.map(str::to_string),
                        };
                        cache.put(kind, value, &known);
                    }
                }
                // Points at nobody: the cache holds only identities that point at someone.
                Some(None) => {}
                None => cache.forget(kind, value),
            }
        }
        for from in ids.moved.keys() {
            cache.primary.remove(from);
        }
    }
}
