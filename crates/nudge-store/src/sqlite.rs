//! Embedded SQLite backend: one writer thread owns the only writing connection (so
//! writes never contend for SQLite's lock and group commit is natural); a small pool of
//! read connections serves queries concurrently thanks to WAL mode.

use crate::segment_sql::{Dialect, Param, compile};
use crate::shared;
use crate::*;
use db::{sqlite_read, sqlite_write};
use nudge_core::segment::{Condition, EventFact, Facts};
use nudge_core::{
    Call, CallKind, Contact, ContactId, Identity, IdentityKind, Known, Millis, Resolution, Subscription, resolve,
    resolve_alias,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use tokio::sync::oneshot;

pub(crate) mod db;
mod exec;
mod journeys;
mod messages;
mod segments;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_foundation.sql")),
    (2, include_str!("../migrations/sqlite/0002_segments.sql")),
    (3, include_str!("../migrations/sqlite/0003_messages.sql")),
    (4, include_str!("../migrations/sqlite/0004_push.sql")),
    (5, include_str!("../migrations/sqlite/0005_journeys.sql")),
    (6, include_str!("../migrations/sqlite/0006_administrative_segments.sql")),
    (7, include_str!("../migrations/sqlite/0007_journey_inbox.sql")),
    (8, include_str!("../migrations/sqlite/0008_journey_stats.sql")),
    (9, include_str!("../migrations/sqlite/0009_segment_contact_timers.sql")),
    (10, include_str!("../migrations/sqlite/0010_journey_revenue.sql")),
    (11, include_str!("../migrations/sqlite/0011_journey_entry_timers.sql")),
    (12, include_str!("../migrations/sqlite/0012_journey_exit_stats.sql")),
    (13, include_str!("../migrations/sqlite/0013_journey_run_revision.sql")),
    (14, include_str!("../migrations/sqlite/0014_message_origin.sql")),
];

type WriteJob = Box<dyn FnOnce(&mut Writer) + Send>;

/// The state owned by the writer thread: the only writing connection, and a cache of
/// identity → contact lookups. Only this thread changes identities, so the cache is
/// exact as long as every change goes through it; it is dropped whenever a
/// transaction fails (its changes were rolled back).
struct Writer {
    conn: Connection,
    cache: IdCache,
}

#[derive(Default)]
pub(crate) struct IdCache {
    by_user_id: HashMap<String, ContactId>,
    by_anonymous_id: HashMap<String, ContactId>,
    /// The primary user id of each cached contact.
    primary: HashMap<ContactId, Option<String>>,
    /// Which event and trait names segments read (loaded on first use, dropped when
    /// a segment changes).
    segments: Option<Arc<crate::plan::SegmentIndex>>,
    /// Last value given to `segment_dirty.since` (0: not read yet).
    dirty_seq: i64,
    /// The event names journeys act on (loaded on first use, dropped when set).
    journey_events: Option<Arc<HashSet<String>>>,
}

/// Past this many entries the cache starts over (bounded memory).
const ID_CACHE_MAX: usize = 2_000_000;

impl IdCache {
    fn map(&mut self, kind: IdentityKind) -> &mut HashMap<String, ContactId> {
        match kind {
            IdentityKind::UserId => &mut self.by_user_id,
            IdentityKind::AnonymousId => &mut self.by_anonymous_id,
        }
    }
    fn get(&self, kind: IdentityKind, value: &str) -> Option<Known> {
        let map = match kind {
            IdentityKind::UserId => &self.by_user_id,
            IdentityKind::AnonymousId => &self.by_anonymous_id,
        };
        let id = *map.get(value)?;
        Some(Known {
            id,
            user_id: self.primary.get(&id)?.clone(),
        })
    }
    fn put(&mut self, kind: IdentityKind, value: &str, known: &Known) {
        if self.by_user_id.len() + self.by_anonymous_id.len() > ID_CACHE_MAX {
            self.clear();
        }
        self.map(kind).insert(value.to_string(), known.id);
        self.primary.insert(known.id, known.user_id.clone());
    }
    fn clear(&mut self) {
        *self = IdCache::default();
    }
}

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<WriteJob>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: std::sync::Arc<ReaderPool>,
}

struct ReaderPool {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl ReaderPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        for c in &self.conns {
            if let Ok(conn) = c.try_lock() {
                return f(&conn);
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        let conn = self.conns[i].lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }
}

fn connect(path: &Path, writer: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    if writer {
        // Larger pages make the per-contact event index much cheaper to maintain
        // under bulk ingestion (see BENCHMARKS.md); only takes effect on a new file.
        conn.pragma_update(None, "page_size", 65536)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    // FULL: a commit is on disk before it is acknowledged, so a 200 survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    if !writer {
        // Readers map the file instead of copying each 64 KB page into their cache: a
        // segment reading the properties of a million scattered events otherwise
        // copies gigabytes (BENCHMARKS.md). The bundled SQLite is built to allow up to
        // 1 TiB (.cargo/config.toml); its default cap is 2 GB.
        conn.pragma_update(None, "mmap_size", 1i64 << 40)?;
    }
    register_functions(&conn)?;
    Ok(conn)
}

/// SQL functions the segment compiler relies on, implemented with the very code the
/// in-memory evaluator uses, so both read dates identically.
fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    // nudge_ts(text) -> ms since the epoch, or NULL if not an ISO 8601 date.
    conn.create_scalar_function("nudge_ts", 1, flags, |ctx| {
        Ok(match ctx.get_raw(0) {
            rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(nudge_core::parse_instant),
            _ => None,
        })
    })?;
    // nudge_md(ms) -> 'MM-DD' in UTC.
    conn.create_scalar_function("nudge_md", 1, flags, |ctx| {
        Ok(match ctx.get_raw(0) {
            rusqlite::types::ValueRef::Integer(ms) => nudge_core::segment::month_day(ms),
            _ => None,
        })
    })
}

impl SqliteStore {
    /// The contacts matching a segment condition at `now`, by id. Computed in SQL.
    pub async fn segment_members(&self, condition: &Condition, now: Millis) -> Result<Vec<ContactId>> {
        let compiled = compile(condition, Dialect::Sqlite, now);
        self.read(move |c| {
            let sql = format!("SELECT c.id FROM contacts c WHERE {} ORDER BY c.id", compiled.sql);
            let params: Vec<rusqlite::types::Value> = compiled
                .params
                .into_iter()
                .map(|p| match p {
                    Param::Text(s) => rusqlite::types::Value::Text(s),
                    Param::Real(f) => rusqlite::types::Value::Real(f),
                    Param::Int(i) => rusqlite::types::Value::Integer(i),
                })
                .collect();
            let mut stmt = c.prepare(&sql)?;
            let ids = stmt
                .query_map(rusqlite::params_from_iter(params), |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(ids)
        })
        .await
    }

    /// What segment conditions can read about one contact.
    pub async fn contact_facts(&self, id: ContactId) -> Result<Option<Facts>> {
        self.read(move |c| {
            let id = current_id(c, id)?;
            facts_of(c, id, None)
        })
        .await
    }

    /// Facts of several contacts in one read, in order; `None` for contacts that are
    /// gone (erased, or merged into another).
    pub async fn contacts_facts(&self, ids: Vec<ContactId>, events: Option<Vec<String>>) -> Result<Vec<Option<Facts>>> {
        let names = events.map(|n| Value::from(n).to_string());
        self.read(move |c| ids.into_iter().map(|id| facts_of(c, id, names.as_deref())).collect())
            .await
    }

    pub async fn open(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            let mut conn = connect(&p, true)?;
            migrate(&mut conn)?;
            // Segments saved before their indexes existed (or by an older Nudge).
            segments::sync_event_indexes(&conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Corrupt(e.to_string()))??;
        let mut conns = Vec::new();
        for _ in 0..4 {
            conns.push(Mutex::new(connect(&path, false)?));
        }
        let (tx, rx) = mpsc::channel::<WriteJob>();
        let thread = std::thread::Builder::new()
            .name("nudge-sqlite-writer".into())
            .spawn(move || {
                let mut writer = Writer {
                    conn,
                    cache: IdCache::default(),
                };
                while let Ok(job) = rx.recv() {
                    job(&mut writer);
                }
                // Checkpoint so the database file is complete on its own after shutdown.
                let _ = writer.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
            })?;
        Ok(Self {
            path,
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            readers: std::sync::Arc::new(ReaderPool {
                conns,
                next: AtomicUsize::new(0),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the writer thread. If it fails, the identity cache is dropped:
    /// whatever `f` cached belonged to a rolled-back transaction.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &mut IdCache) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        {
            let guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(Box::new(move |w: &mut Writer| {
                    let result = f(&mut w.conn, &mut w.cache);
                    if result.is_err() {
                        w.cache.clear();
                    }
                    let _ = tx.send(result);
                }))
                .map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    for (version, sql) in MIGRATIONS {
        let tx = conn.transaction()?;
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?",
                [version],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_none() {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                params![version, jiff::Timestamp::now().as_millisecond()],
            )?;
            tracing::info!(version, "applied SQLite migration");
        }
        tx.commit()?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ingest(&self, messages: Vec<Call>, now: Millis) -> Result<Vec<IngestOutcome>> {
        self.write(move |conn, cache| {
            let tx = conn.transaction()?;
            let out = ingest_tx(&tx, cache, &messages, now)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn contact(&self, id: ContactId) -> Result<Option<Contact>> {
        self.read(move |c| {
            let id = current_id(c, id)?;
            load_contact(c, id)
        })
        .await
    }

    async fn contact_time_zone(&self, id: ContactId) -> Result<Option<String>> {
        self.read(move |c| {
            let id = current_id(c, id)?;
            let Some(contact) = load_contact(c, id)? else {
                return Ok(None);
            };
            let from_events: Option<String> = c
                .prepare_cached(
                    "SELECT json_extract(context, '$.timezone') FROM events
                     WHERE contact_id = ? AND json_type(context, '$.timezone') = 'text'
                     ORDER BY timestamp DESC LIMIT 1",
                )?
                .query_row([id], |r| r.get(0))
                .optional()?;
            Ok(nudge_core::contact::time_zone(&contact.traits, from_events.as_deref()))
        })
        .await
    }

    async fn find_contact(&self, lookup: &Lookup) -> Result<Option<Contact>> {
        let lookup = lookup.clone();
        sqlite_read!(self, |db| shared::contacts::find(db, &lookup))
    }

    async fn list_contacts(&self, query: &ContactQuery) -> Result<Page<Contact>> {
        let q = query.clone();
        self.read(move |c| {
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let mut arg = |v: rusqlite::types::Value| {
                args.push(v);
                format!("?{}", args.len())
            };
            let mut sql = format!("SELECT id FROM contacts WHERE id > {}", arg(q.after.unwrap_or(0).into()));
            if let Some(e) = &q.email {
                sql += &format!(" AND email = {}", arg(e.trim().to_ascii_lowercase().into()));
            }
            if let Some(u) = &q.user_id {
                sql += &format!(
                    " AND id IN (SELECT contact_id FROM identities WHERE kind = 'user_id' AND value = {})",
                    arg(u.clone().into())
                );
            }
            if let Some(s) = &q.search {
                let p = arg(format!("%{}%", escape_like(&s.to_lowercase())).into());
                sql += &format!(
                    " AND (email LIKE {p} ESCAPE '\\' OR lower(user_id) LIKE {p} ESCAPE '\\' OR phone LIKE {p} ESCAPE '\\')"
                );
            }
            for (name, value) in &q.traits {
                let path = arg(json_path(name).into());
                let value = arg(value.to_string().into());
                sql += &format!(" AND json_extract(traits, {path}) IS json_extract({value}, '$')");
            }
            let limit = q.limit.max(1);
            let sql = format!("{sql} ORDER BY id LIMIT {}", limit + 1);
            let mut stmt = c.prepare(&sql)?;
            let ids: Vec<ContactId> = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let more = ids.len() > limit;
            let mut items = Vec::new();
            for id in ids.into_iter().take(limit) {
                if let Some(contact) = load_contact(c, id)? {
                    items.push(contact);
                }
            }
            let next = if more { items.last().map(|c| c.id.to_string()) } else { None };
            Ok(Page { items, next })
        })
        .await
    }

    async fn contact_events(&self, id: ContactId, query: &EventQuery) -> Result<Page<StoredEvent>> {
        let query = query.clone();
        sqlite_read!(self, |db| shared::contacts::events(db, id, &query))
    }

    async fn update_contact(&self, id: ContactId, patch: &ContactPatch, now: Millis) -> Result<Option<Contact>> {
        let patch = patch.clone();
        sqlite_write!(self, |db| shared::contacts::update(db, id, &patch, now))
    }

    async fn delete_contact(&self, id: ContactId) -> Result<bool> {
        self.write(move |conn, cache| {
            cache.clear();
            let tx = conn.transaction()?;
            let id = current_id(&tx, id)?;
            tx.execute("DELETE FROM events WHERE contact_id = ?", [id])?;
            tx.execute("DELETE FROM identities WHERE contact_id = ?", [id])?;
            for table in ["segment_members", "segment_history", "segment_timers", "segment_dirty"] {
                tx.execute(&format!("DELETE FROM {table} WHERE contact_id = ?"), [id])?;
            }
            // Messages hold addresses and personal content: erased too, including
            // those of contacts merged into this one.
            tx.execute(
                "DELETE FROM messages WHERE contact_id = ?1 OR contact_id IN (SELECT from_id FROM contact_merges WHERE into_id = ?1)",
                [id],
            )?;
            tx.execute(
                "DELETE FROM push_subscriptions WHERE contact_id = ?1 OR contact_id IN (SELECT from_id FROM contact_merges WHERE into_id = ?1)",
                [id],
            )?;
            // Journey runs: their timers and waits first, then the runs.
            let runs = "SELECT id FROM journey_runs WHERE contact_id = ?1
                        OR contact_id IN (SELECT from_id FROM contact_merges WHERE into_id = ?1)";
            tx.execute(&format!("DELETE FROM journey_timers WHERE run_id IN ({runs})"), [id])?;
            tx.execute(&format!("DELETE FROM journey_waits WHERE run_id IN ({runs})"), [id])?;
            tx.execute(&format!("DELETE FROM journey_runs WHERE id IN ({runs})"), [id])?;
            tx.execute(
                "DELETE FROM journey_inbox WHERE contact_id = ?1 OR contact_id IN (SELECT from_id FROM contact_merges WHERE into_id = ?1)",
                [id],
            )?;
            tx.execute("DELETE FROM contact_merges WHERE into_id = ?", [id])?;
            let n = tx.execute("DELETE FROM contacts WHERE id = ?", [id])?;
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn import_contacts(&self, rows: Vec<ContactImport>, now: Millis) -> Result<ImportReport> {
        self.write(move |conn, cache| {
            // Imports change identities outside the ingest path: start the cache over.
            cache.clear();
            let tx = conn.transaction()?;
            let mut report = ImportReport::default();
            for row in rows {
                let by_user = match &row.user_id {
                    Some(u) => known(&tx, cache, IdentityKind::UserId, u)?.map(|k| k.id),
                    None => None,
                };
                let by_email = match (&by_user, &row.email) {
                    (None, Some(e)) => tx
                        .query_row(
                            "SELECT id FROM contacts WHERE email = ? ORDER BY id LIMIT 1",
                            [e.trim().to_ascii_lowercase()],
                            |r| r.get::<_, ContactId>(0),
                        )
                        .optional()?,
                    _ => None,
                };
                let mut contact = match by_user.or(by_email) {
                    Some(id) => {
                        report.updated += 1;
                        load_contact(&tx, id)?.ok_or_else(|| StoreError::Corrupt(format!("contact {id} vanished")))?
                    }
                    None => {
                        report.created += 1;
                        let id = create_contact(&tx, cache, row.user_id.as_deref(), None, now)?;
                        load_contact(&tx, id)?.ok_or_else(|| StoreError::Corrupt(format!("contact {id} vanished")))?
                    }
                };
                if contact.user_id.is_none()
                    && let Some(u) = &row.user_id
                {
                    contact.user_id = Some(u.clone());
                    add_identity(&tx, cache, contact.id, &Identity::user(u), now)?;
                }
                let mut traits = row.traits;
                if let Some(e) = row.email {
                    traits.insert("email".into(), Value::String(e));
                }
                contact.apply_traits(&traits);
                contact.subscriptions.extend(row.subscriptions);
                contact.updated_at = now;
                save_contact(&tx, &contact)?;
                exec::traits_changed(&tx, cache, contact.id, traits.keys(), now)?;
                if segments::segment_index(&tx, cache)?.any {
                    segments::mark_dirty(&tx, cache, contact.id)?;
                }
            }
            tx.commit()?;
            // Primary user ids may have changed above without the cache knowing.
            cache.clear();
            Ok(report)
        })
        .await
    }

    async fn create_key(&self, key: NewApiKey, now: Millis) -> Result<ApiKey> {
        sqlite_write!(self, |db| shared::keys::create(db, key, now))
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>> {
        sqlite_read!(self, |db| shared::keys::list(db))
    }

    async fn revoke_key(&self, id: i64, now: Millis) -> Result<bool> {
        sqlite_write!(self, |db| shared::keys::revoke(db, id, now))
    }

    async fn find_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let hash = hash.to_string();
        sqlite_read!(self, |db| shared::keys::find(db, &hash))
    }

    async fn stats(&self) -> Result<StoreStats> {
        self.read(|c| {
            let contacts: i64 = c.query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?;
            let events: i64 = c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
            Ok(StoreStats {
                contacts: contacts as u64,
                events: events as u64,
            })
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map(|_| ())?))
            .await
    }

    async fn close(&self) {
        let sender = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(sender);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

// ---------------------------------------------------------------------------------
// Ingestion, inside one write transaction.

fn ingest_tx(tx: &Transaction, cache: &mut IdCache, messages: &[Call], now: Millis) -> Result<Vec<IngestOutcome>> {
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
            // The rule is `Rules::journeys_act_on`, read here straight from the cache.
            if exec::journey_events(tx, cache)?.contains(name) {
                exec::queue_inbox(tx, tx.last_insert_rowid(), id, name, &json_text(body), m.timestamp)?;
            }
        }
        if inserted == 1 {
            // Re-evaluate the contact's segments if one of them reads this event or trait.
            let index = segments::segment_index(tx, cache)?;
            let relevant = match m.kind {
                CallKind::Track => m.event.as_ref().is_some_and(|e| index.event_names.contains(e)),
                CallKind::Identify => m.traits.keys().any(|k| index.trait_names.contains(k)),
                _ => false,
            };
            if relevant {
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
fn cached_owner(cache: &IdCache, m: &Call) -> Option<ContactId> {
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

/// The fields of a message that have no column of their own.
pub(crate) fn extra_of(m: &Call) -> Option<Map<String, Value>> {
    let mut extra = Map::new();
    if !m.integrations.is_empty() {
        extra.insert("integrations".into(), Value::Object(m.integrations.clone()));
    }
    if let Some(t) = m.original_timestamp {
        extra.insert("originalTimestamp".into(), nudge_core::format_millis(t).into());
    }
    if let Some(t) = m.sent_at {
        extra.insert("sentAt".into(), nudge_core::format_millis(t).into());
    }
    if let Some(p) = &m.previous_id {
        extra.insert("previousId".into(), p.clone().into());
    }
    if let Some(g) = &m.group_id {
        extra.insert("groupId".into(), g.clone().into());
    }
    (!extra.is_empty()).then_some(extra)
}

/// Finds or creates the contact a message belongs to, merging profiles when the
/// message proves they are the same person.
fn resolve_message(tx: &Transaction, cache: &mut IdCache, m: &Call, now: Millis) -> Result<ContactId> {
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
fn attach_user(tx: &Connection, cache: &mut IdCache, id: ContactId, user: Option<&str>, now: Millis) -> Result<()> {
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

fn create_contact(
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

fn add_identity(tx: &Connection, cache: &mut IdCache, id: ContactId, identity: &Identity, now: Millis) -> Result<()> {
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
fn merge(tx: &Connection, cache: &mut IdCache, from: ContactId, into: ContactId, now: Millis) -> Result<()> {
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

// ---------------------------------------------------------------------------------
// Rows.

/// What segment conditions read about one contact: traits, subscriptions, `track` events.
/// What segment conditions read about one contact; `names` (a JSON array) limits the
/// events loaded to those names.
fn facts_of(c: &Connection, id: ContactId, names: Option<&str>) -> Result<Option<Facts>> {
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
fn known(c: &Connection, cache: &mut IdCache, kind: IdentityKind, value: &str) -> Result<Option<Known>> {
    if let Some(k) = cache.get(kind, value) {
        return Ok(Some(k));
    }
    let found = lookup(c, kind, value)?;
    if let Some(k) = &found {
        cache.put(kind, value, k);
    }
    Ok(found)
}

fn lookup(c: &Connection, kind: IdentityKind, value: &str) -> Result<Option<Known>> {
    Ok(c.prepare_cached(
        "SELECT i.contact_id, c.user_id FROM identities i JOIN contacts c ON c.id = i.contact_id WHERE i.kind = ? AND i.value = ?",
    )?
    .query_row(params![kind.as_str(), value], |r| Ok(Known { id: r.get(0)?, user_id: r.get(1)? }))
    .optional()?)
}

/// The id a (possibly merged-away) contact id stands for today.
fn current_id(c: &Connection, id: ContactId) -> Result<ContactId> {
    let into: Option<ContactId> = c
        .prepare_cached("SELECT into_id FROM contact_merges WHERE from_id = ?")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(into.unwrap_or(id))
}

fn load_contact(c: &Connection, id: ContactId) -> Result<Option<Contact>> {
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
        match IdentityKind::parse(&kind) {
            Some(IdentityKind::UserId) if Some(&value) != contact.user_id.as_ref() => {
                contact.alias_user_ids.push(value)
            }
            Some(IdentityKind::UserId) => {}
            Some(IdentityKind::AnonymousId) => contact.anonymous_ids.push(value),
            None => return Err(StoreError::Corrupt(format!("identity kind {kind:?}"))),
        }
    }
    Ok(Some(contact))
}

fn save_contact(c: &Connection, contact: &Contact) -> Result<()> {
    c.prepare_cached(
        "UPDATE contacts SET user_id = ?2, email = ?3, phone = ?4, traits = ?5, subscriptions = ?6, created_at = ?7,
         updated_at = ?8 WHERE id = ?1",
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
    ])?;
    Ok(())
}

pub(crate) fn subscriptions_json(s: &BTreeMap<String, Subscription>) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn parse_subscriptions(s: &str) -> Result<BTreeMap<String, Subscription>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("subscriptions: {e}")))
}

pub(crate) fn json_text(map: &Map<String, Value>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn parse_object(s: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("JSON column: {e}")))
}

/// `$."name"` for json_extract; trait names are validated at the API edge.
fn json_path(name: &str) -> String {
    format!("$.\"{}\"", name.replace('"', ""))
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
