//! Ingestion's primitives on PostgreSQL ([`Ingest`]): each bulk read or write of the
//! shared algorithm (`shared/ingest.rs`) is one statement over arrays, and statements
//! sent together are pipelined on the connection. Also what only PostgreSQL needs:
//! running a transaction again when another writer changed what it relied on
//! ([`retryable`], [`backoff`]).

use super::db::PgDb;
use super::*;
use crate::shared::ingest::{Found, Identities, InboxRow, Ingest, Locked, NewEvents, STALE, stale};
use std::future::Future;

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

/// The error of a statement that inserts rows which must be new: a unique key that is
/// taken means another transaction wrote it since this one looked (see [`stale`]).
fn taken(e: tokio_postgres::Error) -> StoreError {
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

/// PostgreSQL sorts the values it looks up in an index, and finds an array in that
/// order already sorted at a glance (so for byte-order collations).
fn sorted<'a>(values: &[&'a str]) -> Vec<&'a str> {
    let mut v = values.to_vec();
    v.sort_unstable();
    v
}

impl<C: GenericClient + Sync> Ingest for PgDb<'_, C> {
    const CHECKS_AHEAD: bool = true;

    async fn stored_message_ids(&self, ids: &[&str]) -> Result<HashSet<String>> {
        let stmt = self
            .c
            .prepare_cached("SELECT message_id FROM event_message_ids WHERE message_id = ANY($1)")
            .await?;
        let rows = self.c.query(&stmt, &[&sorted(ids)]).await?;
        Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
    }

    async fn identities(&self, users: &[&str], anons: &[&str]) -> Result<Vec<Found>> {
        let stmt = self
            .c
            .prepare_cached(
                "SELECT i.kind, i.value, i.contact_id, c.user_id, c.last_seen_at
                 FROM identities i JOIN contacts c ON c.id = i.contact_id
                 WHERE (i.kind = 'user_id' AND i.value = ANY($1)) OR (i.kind = 'anonymous_id' AND i.value = ANY($2))",
            )
            .await?;
        let rows = self.c.query(&stmt, &[&sorted(users), &sorted(anons)]).await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get(0)?;
                Ok(Found {
                    kind: IdentityKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("identity kind {kind:?}")))?,
                    value: r.try_get(1)?,
                    known: Known {
                        id: r.try_get(2)?,
                        user_id: r.try_get(3)?,
                    },
                    last_seen: r.try_get(4)?,
                })
            })
            .collect()
    }

    fn known(&self, kind: IdentityKind, value: &str) -> impl Future<Output = Result<Option<Known>>> + Send {
        known(self.c, kind, value)
    }

    async fn yield_to_io(&self) {
        // The connection is a task of its own: let it send what was queued.
        tokio::task::yield_now().await;
    }

    async fn new_contact_ids(&self, n: usize) -> Result<Vec<ContactId>> {
        let stmt = self
            .c
            .prepare_cached(
                "SELECT nextval(s) FROM CAST(pg_get_serial_sequence('contacts', 'id') AS regclass) AS s,
                 generate_series(1, $1::bigint)",
            )
            .await?;
        let rows = self.c.query(&stmt, &[&(n as i64)]).await?;
        // A session draws growing values from a sequence: in ascending order, contacts
        // get their ids in message order, as when created one by one.
        let mut ids: Vec<ContactId> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn lock_traits(&self, ids: &[ContactId]) -> Result<Vec<Locked>> {
        let stmt = self
            .c
            .prepare_cached("SELECT id, user_id, traits FROM contacts WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .await?;
        let rows = self.c.query(&stmt, &[&ids]).await?;
        rows.iter()
            .map(|r| {
                let id: ContactId = r.try_get(0)?;
                match r.try_get::<_, Value>(2)? {
                    Value::Object(m) => Ok((id, r.try_get(1)?, m)),
                    other => Err(StoreError::Corrupt(format!("traits of contact {id}: {other}"))),
                }
            })
            .collect()
    }

    async fn insert_contacts(&self, contacts: &[&Contact], now: Millis) -> Result<()> {
        let ids: Vec<ContactId> = contacts.iter().map(|c| c.id).collect();
        let user_ids: Vec<Option<&str>> = contacts.iter().map(|c| c.user_id.as_deref()).collect();
        let emails: Vec<Option<&str>> = contacts.iter().map(|c| c.email.as_deref()).collect();
        let phones: Vec<Option<&str>> = contacts.iter().map(|c| c.phone.as_deref()).collect();
        let traits: Vec<Json<&Map<String, Value>>> = contacts.iter().map(|c| Json(&c.traits)).collect();
        let last_seen: Vec<Option<Millis>> = contacts.iter().map(|c| c.last_seen_at).collect();
        let searches: Vec<String> = contacts.iter().map(|c| crate::search::text(c)).collect();
        let stmt = self
            .c
            .prepare_cached(
                "INSERT INTO contacts (id, user_id, email, phone, traits, subscriptions, created_at, updated_at,
                                       last_seen_at, search)
                 SELECT id, user_id, email, phone, traits, '{}', $7, $7, last_seen_at, search
                 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bigint[], $8::text[])
                      AS v(id, user_id, email, phone, traits, last_seen_at, search)",
            )
            .await?;
        self.c
            .execute(
                &stmt,
                &[&ids, &user_ids, &emails, &phones, &traits, &last_seen, &now, &searches],
            )
            .await?;
        Ok(())
    }

    async fn insert_identities(&self, identities: &[(IdentityKind, &str, ContactId)], now: Millis) -> Result<()> {
        // Inserted in the same order by every process: calls that create the same
        // identity concurrently then wait for each other rather than deadlock.
        let mut rows: Vec<(&str, &str, ContactId)> =
            identities.iter().map(|(k, v, id)| (k.as_str(), *v, *id)).collect();
        rows.sort_unstable();
        let kinds: Vec<&str> = rows.iter().map(|i| i.0).collect();
        let values: Vec<&str> = rows.iter().map(|i| i.1).collect();
        let owners: Vec<ContactId> = rows.iter().map(|i| i.2).collect();
        let stmt = self
            .c
            .prepare_cached(
                "INSERT INTO identities (kind, value, contact_id, created_at)
                 SELECT kind, value, contact_id, $4 FROM unnest($1::text[], $2::text[], $3::bigint[])
                      AS v(kind, value, contact_id)",
            )
            .await?;
        // One that is taken: another transaction created it since it was looked up.
        self.c
            .execute(&stmt, &[&kinds, &values, &owners, &now])
            .await
            .map_err(taken)?;
        Ok(())
    }

    async fn update_traits(&self, contacts: &[Contact], now: Millis) -> Result<()> {
        let ids: Vec<ContactId> = contacts.iter().map(|c| c.id).collect();
        let traits: Vec<Json<&Map<String, Value>>> = contacts.iter().map(|c| Json(&c.traits)).collect();
        let emails: Vec<Option<&str>> = contacts.iter().map(|c| c.email.as_deref()).collect();
        let phones: Vec<Option<&str>> = contacts.iter().map(|c| c.phone.as_deref()).collect();
        let searches: Vec<String> = contacts.iter().map(crate::search::text).collect();
        let stmt = self
            .c
            .prepare_cached(
                "UPDATE contacts c SET traits = v.traits, email = v.email, phone = v.phone, updated_at = $5,
                        search = v.search
                 FROM unnest($1::bigint[], $2::jsonb[], $3::text[], $4::text[], $6::text[])
                      AS v(id, traits, email, phone, search)
                 WHERE c.id = v.id",
            )
            .await?;
        self.c
            .execute(&stmt, &[&ids, &traits, &emails, &phones, &now, &searches])
            .await?;
        Ok(())
    }

    async fn insert_events(&self, e: &NewEvents<'_>) -> Result<Vec<bool>> {
        let stmt = self
            .c
            .prepare_cached(
                "WITH claimed AS (INSERT INTO event_message_ids (message_id) SELECT unnest($1::text[]))
                 INSERT INTO events (message_id, contact_id, type, name, user_id, anonymous_id, timestamp, received_at,
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
        // The batch claims its message ids in `event_message_ids` in the same statement
        // (migration 30). A message id that is taken: another process stored it since
        // the check for duplicates; the claim fails as the unique index on `events`
        // did, the call runs again, and the message is then a duplicate.
        let stored = self
            .c
            .execute(
                &stmt,
                &[
                    &e.message_ids,
                    &e.contact_ids,
                    &e.kinds,
                    &e.names,
                    &e.user_ids,
                    &e.anonymous_ids,
                    &e.timestamps,
                    &e.received_ats,
                    &e.properties,
                    &e.contexts,
                    &e.extras,
                ],
            )
            .await
            .map_err(taken)?;
        if stored != e.len() as u64 {
            return Err(stale());
        }
        Ok(vec![true; e.len()])
    }

    async fn touch(&self, contacts: &[ContactId], times: &[Millis]) -> Result<()> {
        let stmt = self
            .c
            .prepare_cached(
                "UPDATE contacts c SET last_seen_at = GREATEST(COALESCE(c.last_seen_at, v.ts), v.ts)
                 FROM unnest($1::bigint[], $2::bigint[]) AS v(id, ts) WHERE c.id = v.id",
            )
            .await?;
        if self.c.execute(&stmt, &[&contacts, &times]).await? != contacts.len() as u64 {
            return Err(stale());
        }
        Ok(())
    }

    async fn lock_contacts(&self, contacts: &[ContactId]) -> Result<()> {
        // The lock an UPDATE takes.
        let stmt = self
            .c
            .prepare_cached("SELECT id FROM contacts WHERE id = ANY($1) FOR NO KEY UPDATE")
            .await?;
        if self.c.query(&stmt, &[&contacts]).await?.len() != contacts.len() {
            return Err(stale());
        }
        Ok(())
    }

    async fn queue_inbox(&self, rows: &[InboxRow<'_>]) -> Result<()> {
        let ids: Vec<&str> = rows.iter().map(|r| r.message_id).collect();
        let contacts: Vec<ContactId> = rows.iter().map(|r| r.contact).collect();
        let times: Vec<Millis> = rows.iter().map(|r| r.at).collect();
        let names: Vec<Option<&str>> = rows.iter().map(|r| r.name).collect();
        let properties: Vec<Option<&Value>> = rows.iter().map(|r| r.properties.as_ref()).collect();
        let stmt = self
            .c
            .prepare_cached(
                "INSERT INTO journey_inbox (contact_id, event_id, name, properties, at)
                 SELECT e.contact_id, e.id, COALESCE(v.name, e.name), COALESCE(v.properties, e.properties), e.timestamp
                 FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::bigint[], $5::bigint[])
                      WITH ORDINALITY AS v(message_id, name, properties, at, contact_id, n)
                 JOIN events e ON e.contact_id = v.contact_id AND e.timestamp = v.at AND e.message_id = v.message_id
                 ORDER BY v.n",
            )
            .await?;
        self.c
            .execute(&stmt, &[&ids, &names, &properties, &times, &contacts])
            .await?;
        Ok(())
    }

    fn mark_all_dirty(&self, contacts: &[ContactId]) -> impl Future<Output = Result<()>> + Send {
        segments::mark_dirty(self.c, contacts)
    }

    /// Nothing: other processes change identities too.
    fn remember(&self, _ids: &Identities) {}
}

/// What an identity points at now.
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
