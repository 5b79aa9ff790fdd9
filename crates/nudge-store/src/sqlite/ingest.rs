//! Ingestion's primitives on SQLite ([`Ingest`]): the shared algorithm
//! (`shared/ingest.rs`) runs in one poll on the writer thread, and each bulk read or
//! write is a loop of cached prepared statements (a call into the library, not a
//! round trip). Identity lookups go through the writer's cache, which keeps what each
//! call learned: only this thread changes identities, so it stays exact.

use super::db::SqliteDb;
use super::*;
use crate::shared::ingest::{Found, Identities, InboxRow, Ingest, Locked, NewEvents};
use std::future::{Future, ready};

/// Contacts written by one statement. Not one statement each: the search index (FTS5,
/// kept by triggers on `contacts`) writes what it gathered at the start of every
/// statement that changes it, so a statement per contact would write an index segment
/// per contact and then merge them (a quarter of the server's time when ingestion
/// creates contacts one by one).
const ROWS_PER_STATEMENT: usize = 100;

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
        for chunk in contacts.chunks(ROWS_PER_STATEMENT) {
            // ?1 is `now`; then 6 per contact.
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = |k: usize| 6 * i + k + 1;
                    format!(
                        "(?{}, ?{}, ?{}, ?{}, ?{}, '{{}}', ?1, ?1, ?{})",
                        p(1),
                        p(2),
                        p(3),
                        p(4),
                        p(5),
                        p(6)
                    )
                })
                .collect();
            let mut insert = self.conn().prepare_cached(&format!(
                "INSERT INTO contacts (id, user_id, email, phone, traits, subscriptions, created_at, updated_at, search)
                 VALUES {}",
                rows.join(", ")
            ))?;
            let mut args: Vec<rusqlite::types::Value> = Vec::with_capacity(1 + 6 * chunk.len());
            args.push(now.into());
            for c in chunk {
                args.push(c.id.into());
                args.push(c.user_id.clone().into());
                args.push(c.email.clone().into());
                args.push(c.phone.clone().into());
                args.push(json_text(&c.traits).into());
                args.push(crate::search::text(c).into());
            }
            insert.execute(rusqlite::params_from_iter(args))?;
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
        for chunk in contacts.chunks(ROWS_PER_STATEMENT) {
            // ?1 is `now`; then 5 per contact, whose first (the id) the IN list names again
            // so that SQLite looks the contacts up instead of reading the table.
            let p = |i: usize, k: usize| 5 * i + k + 1;
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(?{}, ?{}, ?{}, ?{}, ?{})", p(i, 1), p(i, 2), p(i, 3), p(i, 4), p(i, 5)))
                .collect();
            let ids: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", p(i, 1))).collect();
            let mut update = self.conn().prepare_cached(&format!(
                "UPDATE contacts SET traits = v.column2, email = v.column3, phone = v.column4, search = v.column5,
                        updated_at = ?1
                 FROM (VALUES {}) AS v WHERE contacts.id = v.column1 AND contacts.id IN ({})",
                values.join(", "),
                ids.join(", ")
            ))?;
            let mut args: Vec<rusqlite::types::Value> = Vec::with_capacity(1 + 5 * chunk.len());
            args.push(now.into());
            for c in chunk {
                args.push(c.id.into());
                args.push(json_text(&c.traits).into());
                args.push(c.email.clone().into());
                args.push(c.phone.clone().into());
                args.push(crate::search::text(c).into());
            }
            update.execute(rusqlite::params_from_iter(args))?;
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
