//! PostgreSQL backend: a deadpool of connections, one transaction per write call.
//!
//! The observable behaviour is exactly that of the SQLite backend (`sqlite.rs`): same
//! identity resolution, merges, de-duplication, paging and filters. Differences are
//! only in how it is carried out: several Nudge processes may share one database, so
//! identity rows are created with `ON CONFLICT DO NOTHING` (a lost race makes the
//! message resolve again), contact rows are locked before read-modify-write, and
//! migrations are serialized with an advisory lock.

use crate::sqlite::extra_of;
use crate::*;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Transaction};
use nudge_core::{
    Contact, ContactId, Identity, IdentityKind, Known, Message, MessageKind, Millis, Resolution, Subscription, resolve,
    resolve_alias,
};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use tokio_postgres::NoTls;
use tokio_postgres::types::{Json, ToSql};

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/postgres/0001_foundation.sql"))];

/// Key of the advisory lock that serializes migrations between processes.
const MIGRATION_LOCK: i64 = 0x6e75_6467_655f_6d69; // "nudge_mi"

/// How often a message is resolved again after another process created one of its
/// identities at the same time.
const RESOLVE_ATTEMPTS: usize = 5;

/// How often a write transaction runs again after a deadlock with another process, or
/// after another process stored one of its message ids meanwhile.
const TX_ATTEMPTS: usize = 8;

pub struct PgStore {
    pool: Pool,
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Closed => StoreError::Closed,
        PoolError::Backend(e) => StoreError::Postgres(e),
        other => StoreError::Pool(other.to_string()),
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://...`; the schema is whatever the connection's
    /// `search_path` selects) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let cfg = url.parse::<tokio_postgres::Config>()?;
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(16)
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        for (version, sql) in MIGRATIONS {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .await?;
            let done = tx
                .query_opt("SELECT version FROM schema_migrations WHERE version = $1", &[version])
                .await?;
            if done.is_none() {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[version, &jiff::Timestamp::now().as_millisecond()],
                )
                .await?;
                tracing::info!(version, "applied PostgreSQL migration");
            }
            tx.commit().await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ingest(&self, messages: Vec<Message>, now: Millis) -> Result<Vec<IngestOutcome>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        for attempt in 0..TX_ATTEMPTS {
            let tx = client.transaction().await?;
            match ingest_tx(&tx, &messages, now).await {
                Ok(Some(out)) => {
                    tx.commit().await?;
                    return Ok(out);
                }
                Ok(None) => tx.rollback().await?,
                Err(e) if retryable(&e) && attempt + 1 < TX_ATTEMPTS => {
                    drop(tx);
                    tracing::debug!(attempt, error = %e, "ingest transaction conflicted; running it again");
                    backoff(attempt).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(race())
    }

    async fn contact(&self, id: ContactId) -> Result<Option<Contact>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "{CONTACT_SELECT} WHERE c.id = COALESCE((SELECT into_id FROM contact_merges WHERE from_id = $1), $1)"
            ))
            .await?;
        client
            .query_opt(&stmt, &[&id])
            .await?
            .map(|r| contact_from_row(&r))
            .transpose()
    }

    async fn find_contact(&self, lookup: &Lookup) -> Result<Option<Contact>> {
        let client = self.client().await?;
        let by_identity =
            format!("{CONTACT_SELECT} WHERE c.id = (SELECT contact_id FROM identities WHERE kind = $1 AND value = $2)");
        let row = match lookup {
            Lookup::UserId(u) => {
                let stmt = client.prepare_cached(&by_identity).await?;
                client.query_opt(&stmt, &[&IdentityKind::UserId.as_str(), u]).await?
            }
            Lookup::AnonymousId(a) => {
                let stmt = client.prepare_cached(&by_identity).await?;
                client
                    .query_opt(&stmt, &[&IdentityKind::AnonymousId.as_str(), a])
                    .await?
            }
            Lookup::Email(e) => {
                let stmt = client
                    .prepare_cached(&format!("{CONTACT_SELECT} WHERE c.email = $1 ORDER BY c.id LIMIT 1"))
                    .await?;
                client.query_opt(&stmt, &[&e.trim().to_ascii_lowercase()]).await?
            }
        };
        row.map(|r| contact_from_row(&r)).transpose()
    }

    async fn list_contacts(&self, query: &ContactQuery) -> Result<Page<Contact>> {
        let q = query;
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut arg = |v: Box<dyn ToSql + Sync + Send>| {
            args.push(v);
            format!("${}", args.len())
        };
        let mut sql = format!("{CONTACT_SELECT} WHERE c.id > {}", arg(Box::new(q.after.unwrap_or(0))));
        if let Some(e) = &q.email {
            sql += &format!(" AND c.email = {}", arg(Box::new(e.trim().to_ascii_lowercase())));
        }
        if let Some(u) = &q.user_id {
            sql += &format!(
                " AND c.id IN (SELECT contact_id FROM identities WHERE kind = 'user_id' AND value = {})",
                arg(Box::new(u.clone()))
            );
        }
        if let Some(s) = &q.search {
            let p = arg(Box::new(format!("%{}%", escape_like(&s.to_lowercase()))));
            sql += &format!(
                " AND (c.email ILIKE {p} ESCAPE '\\' OR c.user_id ILIKE {p} ESCAPE '\\' OR c.phone ILIKE {p} ESCAPE '\\')"
            );
        }
        for (name, value) in &q.traits {
            let key = arg(Box::new(name.replace('"', "")));
            if value.is_null() {
                // As on SQLite (`json_extract(...) IS NULL`): a missing trait equals null.
                sql += &format!(" AND (c.traits -> {key}::text IS NULL OR c.traits -> {key}::text = 'null'::jsonb)");
            } else {
                let value = arg(Box::new(value.clone()));
                sql += &format!(" AND c.traits -> {key}::text = {value}::jsonb");
            }
        }
        let limit = q.limit.max(1);
        let sql = format!("{sql} ORDER BY c.id LIMIT {}", limit + 1);
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        let client = self.client().await?;
        let rows = client.query(&sql, &params).await?;
        let more = rows.len() > limit;
        let items = rows
            .iter()
            .take(limit)
            .map(contact_from_row)
            .collect::<Result<Vec<_>>>()?;
        let next = if more {
            items.last().map(|c| c.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn contact_events(&self, id: ContactId, query: &EventQuery) -> Result<Page<StoredEvent>> {
        let limit = query.limit.max(1);
        let (ts, eid) = query
            .before
            .map(|b| (b.timestamp, b.id))
            .unwrap_or((i64::MAX, i64::MAX));
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events
                 WHERE contact_id = COALESCE((SELECT into_id FROM contact_merges WHERE from_id = $1), $1)
                   AND (timestamp < $2 OR (timestamp = $2 AND id < $3))
                 ORDER BY timestamp DESC, id DESC LIMIT $4"
            ))
            .await?;
        let rows = client.query(&stmt, &[&id, &ts, &eid, &((limit + 1) as i64)]).await?;
        let mut items: Vec<StoredEvent> = rows.iter().map(event_from_row).collect::<Result<_>>()?;
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

    async fn update_contact(&self, id: ContactId, patch: &ContactPatch, now: Millis) -> Result<Option<Contact>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id = current_id(&tx, id).await?;
        let Some(mut contact) = load_contact(&tx, id, true).await? else {
            return Ok(None);
        };
        contact.apply_traits(&patch.traits);
        contact
            .subscriptions
            .extend(patch.subscriptions.iter().map(|(k, v)| (k.clone(), *v)));
        contact.updated_at = now;
        save_contact(&tx, &contact).await?;
        tx.commit().await?;
        Ok(Some(contact))
    }

    async fn delete_contact(&self, id: ContactId) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id = current_id(&tx, id).await?;
        tx.execute("DELETE FROM events WHERE contact_id = $1", &[&id]).await?;
        tx.execute("DELETE FROM identities WHERE contact_id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM contact_merges WHERE into_id = $1", &[&id])
            .await?;
        let n = tx.execute("DELETE FROM contacts WHERE id = $1", &[&id]).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn import_contacts(&self, rows: Vec<ContactImport>, now: Millis) -> Result<ImportReport> {
        let mut client = self.client().await?;
        let mut attempt = 0;
        loop {
            let tx = client.transaction().await?;
            match import_tx(&tx, &rows, now).await {
                Ok(report) => {
                    tx.commit().await?;
                    return Ok(report);
                }
                Err(e) if retryable(&e) && attempt + 1 < TX_ATTEMPTS => {
                    drop(tx);
                    tracing::debug!(attempt, error = %e, "import transaction conflicted; running it again");
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn create_key(&self, key: NewApiKey, now: Millis) -> Result<ApiKey> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO api_keys (kind, name, hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&key.kind.as_str(), &key.name, &key.hash, &key.prefix, &now],
            )
            .await?;
        Ok(ApiKey {
            id: row.try_get(0)?,
            kind: key.kind,
            name: key.name,
            prefix: key.prefix,
            created_at: now,
            revoked_at: None,
        })
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id"), &[])
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_key(&self, id: i64, now: Millis) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &now],
            )
            .await?;
        Ok(n > 0)
    }

    async fn find_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1 AND revoked_at IS NULL"
            ))
            .await?;
        client
            .query_opt(&stmt, &[&hash])
            .await?
            .map(|r| key_from_row(&r))
            .transpose()
    }

    async fn stats(&self) -> Result<StoreStats> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM contacts), (SELECT count(*) FROM events)",
                &[],
            )
            .await?;
        let contacts: i64 = row.try_get(0)?;
        let events: i64 = row.try_get(1)?;
        Ok(StoreStats {
            contacts: contacts as u64,
            events: events as u64,
        })
    }

    async fn ping(&self) -> Result<()> {
        let client = self.client().await?;
        client.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close();
    }
}

// ---------------------------------------------------------------------------------
// Ingestion, inside one transaction.

/// Whether a failed transaction may simply be run again: another transaction
/// deadlocked with it or made it unserializable.
fn retryable(e: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(e, StoreError::Postgres(e)
        if e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) || e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE))
}

/// A short, growing, jittered pause before running a transaction again.
async fn backoff(attempt: usize) {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 10);
    let ms = 5 * (attempt as u64 + 1) * (10 + u64::from(jitter)) / 10;
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// Events of one call, written together at its end.
#[derive(Default)]
struct NewEvents<'m> {
    message_ids: Vec<&'m str>,
    contact_ids: Vec<ContactId>,
    kinds: Vec<&'static str>,
    names: Vec<Option<&'m str>>,
    user_ids: Vec<Option<&'m str>>,
    anonymous_ids: Vec<Option<&'m str>>,
    timestamps: Vec<Millis>,
    received_ats: Vec<Millis>,
    properties: Vec<Json<&'m Map<String, Value>>>,
    contexts: Vec<Json<&'m Map<String, Value>>>,
    extras: Vec<Option<Json<Map<String, Value>>>>,
    /// Contacts merged away during the call, and where their events went.
    moved: BTreeMap<ContactId, ContactId>,
}

impl<'m> NewEvents<'m> {
    fn push(&mut self, m: &'m Message, contact: ContactId) {
        let body = if matches!(m.kind, MessageKind::Identify | MessageKind::Group) {
            &m.traits
        } else {
            &m.properties
        };
        self.message_ids.push(&m.message_id);
        self.contact_ids.push(contact);
        self.kinds.push(m.kind.as_str());
        self.names.push(m.display_name());
        self.user_ids.push(m.user_id.as_deref());
        self.anonymous_ids.push(m.anonymous_id.as_deref());
        self.timestamps.push(m.timestamp);
        self.received_ats.push(m.received_at);
        self.properties.push(Json(body));
        self.contexts.push(Json(&m.context));
        self.extras.push(extra_of(m).map(Json));
    }

    /// Events not written yet follow a merge like the stored ones do.
    fn merged(&mut self, from: ContactId, into: ContactId) {
        for to in self.moved.values_mut() {
            if *to == from {
                *to = into;
            }
        }
        self.moved.insert(from, into);
    }

    /// Writes the events in message order (so ids grow in that order). `false` if
    /// another process stored one of these message ids meanwhile.
    async fn write(mut self, tx: &Transaction<'_>) -> Result<bool> {
        if self.message_ids.is_empty() {
            return Ok(true);
        }
        for id in &mut self.contact_ids {
            if let Some(to) = self.moved.get(id) {
                *id = *to;
            }
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO events (message_id, contact_id, type, name, user_id, anonymous_id, timestamp, received_at,
                                     properties, context, extra)
                 SELECT message_id, contact_id, type, name, user_id, anonymous_id, timestamp, received_at,
                        properties, context, extra
                 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                             $8::bigint[], $9::jsonb[], $10::jsonb[], $11::jsonb[])
                      WITH ORDINALITY AS v(message_id, contact_id, type, name, user_id, anonymous_id, timestamp,
                                           received_at, properties, context, extra, n)
                 ORDER BY n
                 ON CONFLICT (message_id) DO NOTHING",
            )
            .await?;
        let n = tx
            .execute(
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
            .await?;
        Ok(n == self.message_ids.len() as u64)
    }
}

/// One attempt at storing a call's messages. `None` when another process stored one
/// of the message ids since the check for duplicates: the caller rolls back and runs
/// the call again, which then reports that message as a duplicate.
async fn ingest_tx(tx: &Transaction<'_>, messages: &[Message], now: Millis) -> Result<Option<Vec<IngestOutcome>>> {
    let ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    let stored: HashSet<String> = tx
        .query("SELECT message_id FROM events WHERE message_id = ANY($1)", &[&ids])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(messages.len());
    let mut seen: HashSet<&str> = HashSet::with_capacity(messages.len());
    let mut last_seen: BTreeMap<ContactId, Millis> = BTreeMap::new();
    let mut events = NewEvents::default();
    for m in messages {
        if !seen.insert(&m.message_id) || stored.contains(&m.message_id) {
            out.push(IngestOutcome::Duplicate);
            continue;
        }
        let (id, merged) = resolve_message(tx, m, now).await?;
        if let Some(from) = merged {
            events.merged(from, id);
            if let Some(t) = last_seen.remove(&from) {
                let e = last_seen.entry(id).or_insert(t);
                *e = (*e).max(t);
            }
        }
        if m.kind == MessageKind::Identify && !m.traits.is_empty() {
            let mut contact = load_contact(tx, id, true)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("contact {id}")))?;
            if contact.apply_traits(&m.traits) {
                contact.updated_at = now;
                save_contact(tx, &contact).await?;
            }
        }
        events.push(m, id);
        let e = last_seen.entry(id).or_insert(m.timestamp);
        *e = (*e).max(m.timestamp);
        out.push(IngestOutcome::Stored);
    }
    if !events.write(tx).await? {
        return Ok(None);
    }
    if !last_seen.is_empty() {
        let (ids, times): (Vec<ContactId>, Vec<Millis>) = last_seen.into_iter().unzip();
        let touch = tx
            .prepare_cached(
                "UPDATE contacts c SET last_seen_at = GREATEST(COALESCE(c.last_seen_at, v.ts), v.ts)
                 FROM unnest($1::bigint[], $2::bigint[]) AS v(id, ts) WHERE c.id = v.id",
            )
            .await?;
        tx.execute(&touch, &[&ids, &times]).await?;
    }
    Ok(Some(out))
}

/// Creates or updates contacts matched by user id, then email.
async fn import_tx(tx: &Transaction<'_>, rows: &[ContactImport], now: Millis) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    for row in rows {
        let mut found = None;
        for _ in 0..RESOLVE_ATTEMPTS {
            let by_user = match &row.user_id {
                Some(u) => known(tx, IdentityKind::UserId, u).await?.map(|k| k.id),
                None => None,
            };
            let by_email = match (&by_user, &row.email) {
                (None, Some(e)) => {
                    let stmt = tx
                        .prepare_cached("SELECT id FROM contacts WHERE email = $1 ORDER BY id LIMIT 1")
                        .await?;
                    tx.query_opt(&stmt, &[&e.trim().to_ascii_lowercase()])
                        .await?
                        .map(|r| r.get::<_, i64>(0))
                }
                _ => None,
            };
            found = match by_user.or(by_email) {
                Some(id) => Some((id, false)),
                None => create_contact(tx, row.user_id.as_deref(), None, now)
                    .await?
                    .map(|id| (id, true)),
            };
            if found.is_some() {
                break;
            }
        }
        let Some((id, created)) = found else {
            return Err(race());
        };
        if created {
            report.created += 1;
        } else {
            report.updated += 1;
        }
        let mut contact = load_contact(tx, id, true)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("contact {id} vanished")))?;
        if contact.user_id.is_none()
            && let Some(u) = &row.user_id
        {
            contact.user_id = Some(u.clone());
            add_identity(tx, contact.id, &Identity::user(u), now).await?;
        }
        let mut traits = row.traits.clone();
        if let Some(e) = &row.email {
            traits.insert("email".into(), Value::String(e.clone()));
        }
        contact.apply_traits(&traits);
        contact
            .subscriptions
            .extend(row.subscriptions.iter().map(|(k, v)| (k.clone(), *v)));
        contact.updated_at = now;
        save_contact(tx, &contact).await?;
    }
    Ok(report)
}

fn race() -> StoreError {
    StoreError::Conflict("identities kept changing concurrently; retry".into())
}

/// Finds or creates the contact a message belongs to, merging profiles when the
/// message proves they are the same person. Returns the contact and, if a merge
/// happened, the id that was merged away.
async fn resolve_message(tx: &Transaction<'_>, m: &Message, now: Millis) -> Result<(ContactId, Option<ContactId>)> {
    for _ in 0..RESOLVE_ATTEMPTS {
        if let Some(resolved) = try_resolve_message(tx, m, now).await? {
            return Ok(resolved);
        }
    }
    Err(race())
}

/// One attempt of [`resolve_message`]; `None` when another process created one of
/// the identities concerned meanwhile (what this attempt wrote is undone).
async fn try_resolve_message(
    tx: &Transaction<'_>,
    m: &Message,
    now: Millis,
) -> Result<Option<(ContactId, Option<ContactId>)>> {
    let user = m.user_id.as_deref();
    let by_user = async {
        match user {
            Some(u) => known(tx, IdentityKind::UserId, u).await,
            None => Ok(None),
        }
    };
    if m.kind == MessageKind::Alias {
        let prev = m.previous_id.as_deref().unwrap_or_default();
        let (by_user, prev_as_user, prev_as_anon) = tokio::try_join!(
            by_user,
            known(tx, IdentityKind::UserId, prev),
            known(tx, IdentityKind::AnonymousId, prev)
        )?;
        let by_prev = prev_as_user.or(prev_as_anon);
        let prev_known = by_prev.is_some();
        return Ok(match resolve_alias(by_user.as_ref(), by_prev.as_ref()) {
            Resolution::Use(id) => Some((id, None)),
            Resolution::Merge { from, into } => {
                merge(tx, from, into, now).await?;
                Some((into, Some(from)))
            }
            Resolution::Attach(id) => {
                if !attach_user(tx, id, user, by_user.is_some(), now).await? {
                    return Ok(None);
                }
                if !prev_known && !add_identity(tx, id, &Identity::anonymous(prev), now).await? {
                    return Ok(None);
                }
                Some((id, None))
            }
            Resolution::Create { .. } => create_contact(tx, user, Some(prev), now).await?.map(|id| (id, None)),
        });
    }
    let anon = m.anonymous_id.as_deref();
    let by_anon = async {
        match anon {
            Some(a) => known(tx, IdentityKind::AnonymousId, a).await,
            None => Ok(None),
        }
    };
    let (by_user, by_anon) = tokio::try_join!(by_user, by_anon)?;
    Ok(match resolve(user, by_user.as_ref(), anon, by_anon.as_ref()) {
        Resolution::Use(id) => Some((id, None)),
        Resolution::Create { with_anonymous } => {
            create_contact(tx, user, if with_anonymous { anon } else { None }, now)
                .await?
                .map(|id| (id, None))
        }
        Resolution::Attach(id) => {
            if !attach_user(tx, id, user, by_user.is_some(), now).await? {
                return Ok(None);
            }
            if let Some(a) = anon
                && by_anon.is_none()
                && !add_identity(tx, id, &Identity::anonymous(a), now).await?
            {
                return Ok(None);
            }
            Some((id, None))
        }
        Resolution::Merge { from, into } => {
            merge(tx, from, into, now).await?;
            Some((into, Some(from)))
        }
    })
}

/// Gives a contact the user id: as its primary user id if it has none, else as an
/// alias user id. `false` if another process took the user id meanwhile.
async fn attach_user(
    tx: &Transaction<'_>,
    id: ContactId,
    user: Option<&str>,
    user_known: bool,
    now: Millis,
) -> Result<bool> {
    let Some(u) = user else { return Ok(true) };
    if user_known {
        return Ok(true);
    }
    if !add_identity(tx, id, &Identity::user(u), now).await? {
        return Ok(false);
    }
    let stmt = tx
        .prepare_cached("UPDATE contacts SET user_id = $2, updated_at = $3 WHERE id = $1 AND user_id IS NULL")
        .await?;
    tx.execute(&stmt, &[&id, &u, &now]).await?;
    Ok(true)
}

/// A new contact with these identities; `None` (and nothing created) if another
/// process took one of the identities meanwhile.
async fn create_contact(
    tx: &Transaction<'_>,
    user: Option<&str>,
    anon: Option<&str>,
    now: Millis,
) -> Result<Option<ContactId>> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO contacts (user_id, traits, subscriptions, created_at, updated_at)
             VALUES ($1, '{}', '{}', $2, $2) RETURNING id",
        )
        .await?;
    let id: ContactId = tx.query_one(&stmt, &[&user, &now]).await?.try_get(0)?;
    let mut ok = true;
    if let Some(u) = user {
        ok = add_identity(tx, id, &Identity::user(u), now).await?;
    }
    if ok && let Some(a) = anon {
        ok = add_identity(tx, id, &Identity::anonymous(a), now).await?;
    }
    if !ok {
        tx.execute("DELETE FROM identities WHERE contact_id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM contacts WHERE id = $1", &[&id]).await?;
        return Ok(None);
    }
    Ok(Some(id))
}

/// Records an identity of a contact unless the identity exists; `true` if recorded.
async fn add_identity(tx: &Transaction<'_>, id: ContactId, identity: &Identity, now: Millis) -> Result<bool> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO identities (kind, value, contact_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kind, value) DO NOTHING",
        )
        .await?;
    Ok(tx
        .execute(&stmt, &[&identity.kind.as_str(), &identity.value, &id, &now])
        .await?
        > 0)
}

/// Folds contact `from` into `into`: events, identities and traits move, `from`
/// disappears, and its id keeps resolving to `into`.
async fn merge(tx: &Transaction<'_>, from: ContactId, into: ContactId, now: Millis) -> Result<()> {
    // Lock in id order so that concurrent merges of the same pair cannot deadlock.
    let (first, second) = (from.min(into), from.max(into));
    let first = load_contact(tx, first, true).await?;
    let second = load_contact(tx, second, true).await?;
    let (a, b) = if from < into { (first, second) } else { (second, first) };
    let a = a.ok_or_else(|| StoreError::Corrupt(format!("contact {from}")))?;
    let mut b = b.ok_or_else(|| StoreError::Corrupt(format!("contact {into}")))?;
    b.absorb(&a);
    b.updated_at = now;
    let params: [&(dyn ToSql + Sync); 2] = [&from, &into];
    tx.execute("UPDATE events SET contact_id = $2 WHERE contact_id = $1", &params)
        .await?;
    tx.execute("UPDATE identities SET contact_id = $2 WHERE contact_id = $1", &params)
        .await?;
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
    tracing::debug!(from, into, "merged contacts");
    Ok(())
}

// ---------------------------------------------------------------------------------
// Rows.

async fn known(c: &impl GenericClient, kind: IdentityKind, value: &str) -> Result<Option<Known>> {
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

/// The id a (possibly merged-away) contact id stands for today.
async fn current_id(c: &impl GenericClient, id: ContactId) -> Result<ContactId> {
    let stmt = c
        .prepare_cached("SELECT into_id FROM contact_merges WHERE from_id = $1")
        .await?;
    match c.query_opt(&stmt, &[&id]).await? {
        Some(r) => Ok(r.try_get(0)?),
        None => Ok(id),
    }
}

/// A contact with its identities in one statement (so in one snapshot). Identities
/// are ordered as on SQLite: by creation, then by value in byte order.
const CONTACT_SELECT: &str = r#"SELECT c.id, c.user_id, c.email, c.phone, c.traits, c.subscriptions, c.created_at,
    c.updated_at, c.last_seen_at,
    ARRAY(SELECT i.kind FROM identities i WHERE i.contact_id = c.id
          ORDER BY i.created_at, i.value COLLATE "C", i.kind COLLATE "C") AS identity_kinds,
    ARRAY(SELECT i.value FROM identities i WHERE i.contact_id = c.id
          ORDER BY i.created_at, i.value COLLATE "C", i.kind COLLATE "C") AS identity_values
    FROM contacts c"#;

/// `for_update` locks the contact's row until the end of the transaction.
async fn load_contact(c: &impl GenericClient, id: ContactId, for_update: bool) -> Result<Option<Contact>> {
    let sql = if for_update {
        format!("{CONTACT_SELECT} WHERE c.id = $1 FOR UPDATE OF c")
    } else {
        format!("{CONTACT_SELECT} WHERE c.id = $1")
    };
    let stmt = c.prepare_cached(&sql).await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .map(|r| contact_from_row(&r))
        .transpose()
}

fn contact_from_row(r: &tokio_postgres::Row) -> Result<Contact> {
    let id: ContactId = r.try_get(0)?;
    let created_at: Millis = r.try_get(6)?;
    let mut contact = Contact::new(id, created_at);
    contact.user_id = r.try_get(1)?;
    contact.email = r.try_get(2)?;
    contact.phone = r.try_get(3)?;
    contact.traits = match r.try_get::<_, Value>(4)? {
        Value::Object(m) => m,
        other => {
            return Err(StoreError::Corrupt(format!("traits of contact {id}: {other}")));
        }
    };
    contact.subscriptions = serde_json::from_value::<BTreeMap<String, Subscription>>(r.try_get(5)?)
        .map_err(|e| StoreError::Corrupt(format!("subscriptions: {e}")))?;
    contact.updated_at = r.try_get(7)?;
    contact.last_seen_at = r.try_get(8)?;
    let kinds: Vec<String> = r.try_get(9)?;
    let values: Vec<String> = r.try_get(10)?;
    for (kind, value) in kinds.into_iter().zip(values) {
        match IdentityKind::parse(&kind) {
            Some(IdentityKind::UserId) if Some(&value) != contact.user_id.as_ref() => {
                contact.alias_user_ids.push(value)
            }
            Some(IdentityKind::UserId) => {}
            Some(IdentityKind::AnonymousId) => contact.anonymous_ids.push(value),
            None => return Err(StoreError::Corrupt(format!("identity kind {kind:?}"))),
        }
    }
    Ok(contact)
}

async fn save_contact(c: &impl GenericClient, contact: &Contact) -> Result<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE contacts SET user_id = $2, email = $3, phone = $4, traits = $5, subscriptions = $6, created_at = $7,
             updated_at = $8, last_seen_at = $9 WHERE id = $1",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &contact.id,
            &contact.user_id,
            &contact.email,
            &contact.phone,
            &Json(&contact.traits),
            &Json(&contact.subscriptions),
            &contact.created_at,
            &contact.updated_at,
            &contact.last_seen_at,
        ],
    )
    .await?;
    Ok(())
}

const EVENT_COLUMNS: &str =
    "id, message_id, contact_id, type, name, user_id, anonymous_id, properties, context, extra, timestamp, received_at";

fn event_from_row(r: &tokio_postgres::Row) -> Result<StoredEvent> {
    let json = |i: usize| -> Result<Map<String, Value>> {
        Ok(match r.try_get::<_, Option<Value>>(i)? {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        })
    };
    Ok(StoredEvent {
        id: r.try_get(0)?,
        message_id: r.try_get(1)?,
        contact_id: r.try_get(2)?,
        kind: r.try_get(3)?,
        name: r.try_get(4)?,
        user_id: r.try_get(5)?,
        anonymous_id: r.try_get(6)?,
        properties: json(7)?,
        context: json(8)?,
        extra: json(9)?,
        timestamp: r.try_get(10)?,
        received_at: r.try_get(11)?,
    })
}

const KEY_COLUMNS: &str = "id, kind, name, prefix, created_at, revoked_at";

fn key_from_row(r: &tokio_postgres::Row) -> Result<ApiKey> {
    let kind: String = r.try_get(1)?;
    Ok(ApiKey {
        id: r.try_get(0)?,
        kind: KeyKind::parse(&kind).unwrap_or(KeyKind::Write),
        name: r.try_get(2)?,
        prefix: r.try_get(3)?,
        created_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
    })
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
