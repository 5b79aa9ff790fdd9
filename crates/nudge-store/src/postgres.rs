//! PostgreSQL backend: a deadpool of connections, one transaction per write call.
//!
//! The observable behaviour is exactly that of the SQLite backend (`sqlite.rs`): same
//! identity resolution, merges, de-duplication, paging and filters. What differs is how
//! it is carried out, because round trips are expensive and because several Nudge
//! processes (and admin writes on other connections) may change the same rows at once:
//!
//! - an ingest call reads the stored message ids and all the identities its messages
//!   name in one round trip, resolves messages in order against that knowledge (see
//!   [`Identities`]), and does in a few statements what most messages need: new
//!   contacts, their identities and traits, traits of existing contacts, events and
//!   last-seen times (see [`Deferred`]). Messages that attach identities or merge
//!   contacts are carried out one by one, after what the call deferred so far;
//! - an identity or message id that another transaction took since it was looked up
//!   fails to insert, contacts are locked before read-modify-write, and a transaction
//!   that finds another one changed what it relied on, or that deadlocked, is rolled
//!   back and run again;
//! - migrations are serialized between processes with an advisory lock.

use crate::shared;
use crate::sqlite::{extra_of, json_text};
use crate::*;
use db::{pg_read, pg_write};
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, QueueMode, RecyclingMethod, Transaction,
};
use nudge_core::{
    Call, CallKind, Contact, ContactId, Identity, IdentityKind, Known, Millis, Resolution, Subscription, resolve,
    resolve_alias,
};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use tokio_postgres::NoTls;
use tokio_postgres::types::{Json, ToSql};

pub(crate) mod db;
mod exec;
mod journeys;
mod messages;
mod segments;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_foundation.sql")),
    (2, include_str!("../migrations/postgres/0002_segments.sql")),
    (3, include_str!("../migrations/postgres/0003_messages.sql")),
    (4, include_str!("../migrations/postgres/0004_push.sql")),
    (5, include_str!("../migrations/postgres/0005_journeys.sql")),
    (
        6,
        include_str!("../migrations/postgres/0006_administrative_segments.sql"),
    ),
    (7, include_str!("../migrations/postgres/0007_journey_inbox.sql")),
    (8, include_str!("../migrations/postgres/0008_journey_stats.sql")),
    (
        9,
        include_str!("../migrations/postgres/0009_segment_contact_timers.sql"),
    ),
    (10, include_str!("../migrations/postgres/0010_journey_revenue.sql")),
    (11, include_str!("../migrations/postgres/0011_journey_entry_timers.sql")),
    (12, include_str!("../migrations/postgres/0012_journey_exit_stats.sql")),
    (13, include_str!("../migrations/postgres/0013_journey_run_revision.sql")),
    (14, include_str!("../migrations/postgres/0014_message_origin.sql")),
];

/// Key of the advisory lock that serializes migrations between processes.
const MIGRATION_LOCK: i64 = 0x6e75_6467_655f_6d69; // "nudge_mi"

/// How often a write transaction runs again after a deadlock with another one, or
/// after another one changed what it had read (see `stale`).
const TX_ATTEMPTS: usize = 8;

pub struct PgStore {
    pool: Pool,
    /// Connections for ingestion, most recently used first: the calls of one process
    /// come one after another (group commit), so they keep running on one connection,
    /// which has its statements prepared and their plans settled. PostgreSQL plans a
    /// statement's first executions on each connection for the values at hand, which
    /// with hundreds of values in arrays costs more than running it.
    writer: Pool,
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
        let pool = |max_size: usize, queue_mode: QueueMode| {
            let mgr = Manager::from_config(
                cfg.clone(),
                NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(mgr)
                .max_size(max_size)
                .queue_mode(queue_mode)
                .build()
                .map_err(|e| StoreError::Pool(e.to_string()))
        };
        let store = Self {
            pool: pool(16, QueueMode::Fifo)?,
            writer: pool(4, QueueMode::Lifo)?,
        };
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

    async fn ingest(&self, messages: Vec<Call>, now: Millis) -> Result<Vec<IngestOutcome>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.writer.get().await.map_err(pool_error)?;
        let mut attempt = 0;
        loop {
            let tx = client.transaction().await?;
            let result = match ingest_tx(&tx, &messages, now).await {
                Ok(out) => match segments::mark_after_ingest(&tx, &messages, &out, now).await {
                    Ok(()) => journeys::queue_after_ingest(&tx, &messages, &out).await.map(|()| out),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match result {
                Ok(out) => {
                    // Freeing hundreds of parsed messages takes a while: not before the
                    // caller hears of the commit.
                    tokio::task::spawn_blocking(move || drop(messages));
                    tx.commit().await?;
                    return Ok(out);
                }
                Err(e) if retryable(&e) && attempt + 1 < TX_ATTEMPTS => {
                    tx.rollback().await?;
                    tracing::debug!(attempt, error = %e, "ingest conflicted with another transaction; running it again");
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn contact_time_zone(&self, id: ContactId) -> Result<Option<String>> {
        let Some(contact) = self.contact(id).await? else {
            return Ok(None);
        };
        let client = self.client().await?;
        let from_events: Option<String> = client
            .query_opt(
                "SELECT context ->> 'timezone' FROM events
                 WHERE contact_id = $1 AND jsonb_typeof(context -> 'timezone') = 'string'
                 ORDER BY timestamp DESC LIMIT 1",
                &[&contact.id],
            )
            .await?
            .map(|r| r.get(0));
        Ok(nudge_core::contact::time_zone(&contact.traits, from_events.as_deref()))
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
        let lookup = lookup.clone();
        pg_read!(self, |db| shared::contacts::find(db, &lookup))
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
        let query = query.clone();
        pg_read!(self, |db| shared::contacts::events(db, id, &query))
    }

    async fn update_contact(&self, id: ContactId, patch: &ContactPatch, now: Millis) -> Result<Option<Contact>> {
        let patch = patch.clone();
        pg_write!(self, |db| shared::contacts::update(db, id, &patch, now))
    }

    async fn delete_contact(&self, id: ContactId) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id = current_id(&tx, id).await?;
        // Lock first: events an ingest adds meanwhile are then either seen here or
        // find the contact gone (and that ingest runs again).
        tx.execute("SELECT 1 FROM contacts WHERE id = $1 FOR UPDATE", &[&id])
            .await?;
        tx.execute("DELETE FROM events WHERE contact_id = $1", &[&id]).await?;
        tx.execute("DELETE FROM identities WHERE contact_id = $1", &[&id])
            .await?;
        // Messages hold addresses and personal content: erased too, including those of
        // contacts merged into this one.
        tx.execute(
            "DELETE FROM messages WHERE contact_id = $1 OR contact_id IN (SELECT from_id FROM contact_merges WHERE into_id = $1)",
            &[&id],
        )
        .await?;
        tx.execute(
            "DELETE FROM push_subscriptions WHERE contact_id = $1 OR contact_id IN (SELECT from_id FROM contact_merges WHERE into_id = $1)",
            &[&id],
        )
        .await?;
        // Journey runs: their timers and waits first, then the runs.
        let runs = "SELECT id FROM journey_runs WHERE contact_id = $1
                    OR contact_id IN (SELECT from_id FROM contact_merges WHERE into_id = $1)";
        for table in ["journey_timers", "journey_waits"] {
            tx.execute(&format!("DELETE FROM {table} WHERE run_id IN ({runs})"), &[&id])
                .await?;
        }
        tx.execute(&format!("DELETE FROM journey_runs WHERE id IN ({runs})"), &[&id])
            .await?;
        tx.execute(
            "DELETE FROM journey_inbox WHERE contact_id = $1 OR contact_id IN (SELECT from_id FROM contact_merges WHERE into_id = $1)",
            &[&id],
        )
        .await?;
        tx.execute("DELETE FROM contact_merges WHERE into_id = $1", &[&id])
            .await?;
        segments::on_delete(&tx, id).await?;
        let n = tx.execute("DELETE FROM contacts WHERE id = $1", &[&id]).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn import_contacts(&self, rows: Vec<ContactImport>, now: Millis) -> Result<ImportReport> {
        let mut client = self.client().await?;
        let mut attempt = 0;
        loop {
            let tx = client.transaction().await?;
            let result = match import_tx(&tx, &rows, now).await {
                Ok(report) => segments::mark_after_import(&tx, &rows).await.map(|()| report),
                Err(e) => Err(e),
            };
            match result {
                Ok(report) => {
                    tx.commit().await?;
                    return Ok(report);
                }
                Err(e) if retryable(&e) && attempt + 1 < TX_ATTEMPTS => {
                    tx.rollback().await?;
                    tracing::debug!(attempt, error = %e, "import conflicted with another transaction; running it again");
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn create_key(&self, key: NewApiKey, now: Millis) -> Result<ApiKey> {
        pg_write!(self, |db| shared::keys::create(db, key, now))
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>> {
        pg_read!(self, |db| shared::keys::list(db))
    }

    async fn revoke_key(&self, id: i64, now: Millis) -> Result<bool> {
        pg_write!(self, |db| shared::keys::revoke(db, id, now))
    }

    async fn find_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let hash = hash.to_string();
        pg_read!(self, |db| shared::keys::find(db, &hash))
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
        self.writer.close();
    }
}

// ---------------------------------------------------------------------------------
// Ingestion, inside one transaction.

/// Whether a failed transaction may simply be run again: another transaction
/// deadlocked with it or made it unserializable, or changed what it had read (see
/// [`stale`]).
fn retryable(e: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    match e {
        StoreError::Postgres(e) => {
            e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) || e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        }
        StoreError::Conflict(m) => m == STALE,
        _ => false,
    }
}

const STALE: &str = "identities or messages kept changing concurrently; retry";

/// Another transaction changed something this one relied on (it created one of the
/// identities, stored one of the message ids, or merged or erased one of the contacts):
/// the transaction is rolled back and run again.
fn stale() -> StoreError {
    StoreError::Conflict(STALE.into())
}

/// Whether a statement failed only because an earlier one of its transaction did.
fn aborted(e: &StoreError) -> bool {
    matches!(e, StoreError::Postgres(e) if e.code() == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION))
}

/// The first failure among statements sent together, which is not necessarily the
/// first one to report: once one fails, all that run after it in the transaction
/// report that it is aborted.
fn first_failure<const N: usize>(results: [Result<()>; N]) -> Result<()> {
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
fn both<A, B>((a, b): (Result<A>, Result<B>)) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(a), Err(b)) => Err(if aborted(&a) { b } else { a }),
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
async fn backoff(attempt: usize) {
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
struct Identities {
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
struct NewEvents<'m> {
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
struct Body {
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
enum Planned<'m> {
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
fn plan<'m>(ids: &Identities, m: &'m Call) -> Option<Planned<'m>> {
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
struct Deferred<'m> {
    /// Contacts to create, in message order. Until they are written, each has a
    /// placeholder id (the `i`-th contact the call creates is `-1 - i`), by which the
    /// call's identities, events and last-seen times know it meanwhile.
    creates: Vec<NewContact<'m>>,
    /// The id each contact created so far was given, in creation order.
    written: Vec<ContactId>,
    /// Traits patches of existing contacts, in message order.
    patches: BTreeMap<ContactId, Vec<&'m Map<String, Value>>>,
}

struct NewContact<'m> {
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
struct NewContacts<'a> {
    ids: Vec<ContactId>,
    user_ids: Vec<Option<&'a str>>,
    emails: Vec<Option<&'a str>>,
    phones: Vec<Option<&'a str>>,
    traits: Vec<Json<&'a Map<String, Value>>>,
    last_seen: Vec<Option<Millis>>,
}

/// Columns of the contacts whose traits a flush changes.
#[derive(Default)]
struct Patched {
    ids: Vec<ContactId>,
    emails: Vec<Option<String>>,
    phones: Vec<Option<String>>,
    traits: Vec<Json<Map<String, Value>>>,
}

/// Stores a call's messages.
async fn ingest_tx(tx: &Transaction<'_>, messages: &[Call], now: Millis) -> Result<Vec<IngestOutcome>> {
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

/// Creates or updates contacts matched by user id, then email.
async fn import_tx(tx: &Transaction<'_>, rows: &[ContactImport], now: Millis) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    for row in rows {
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
                    .map(|r| r.try_get::<_, ContactId>(0))
                    .transpose()?
            }
            _ => None,
        };
        let id = match by_user.or(by_email) {
            Some(id) => {
                report.updated += 1;
                id
            }
            None => {
                report.created += 1;
                create_contact(tx, None, row.user_id.as_deref(), None, now).await?
            }
        };
        let mut contact = load_contact(tx, id, true).await?.ok_or_else(stale)?;
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
        let changed: Vec<String> = traits.keys().cloned().collect();
        crate::exec::traits_changed(&db::PgDb::tx(tx), &exec::rules(tx).await?, contact.id, &changed, now).await?;
    }
    Ok(report)
}

/// Finds or creates the contact a message belongs to, merging profiles when the
/// message proves they are the same person. Returns the contact and, if a merge
/// happened, the id that was merged away.
async fn resolve_message(
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
async fn lookup(
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
async fn try_resolve_message(
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
async fn attach_user(
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
async fn create_contact(
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
async fn add_identity(tx: &Transaction<'_>, id: ContactId, identity: &Identity, now: Millis) -> Result<()> {
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
async fn merge(
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

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
