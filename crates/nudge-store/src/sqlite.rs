//! Embedded SQLite backend: one writer thread owns the only writing connection (so
//! writes never contend for SQLite's lock and group commit is natural); a small pool of
//! read connections serves queries concurrently thanks to WAL mode.

use crate::codec::*;
use crate::segment_sql::{Dialect, Param, compile};
use crate::shared;
use crate::*;
use contacts::*;
use db::{sqlite_read, sqlite_write};
use nudge_core::segment::{Condition, EventFact, Facts};
use nudge_core::{Call, Contact, ContactId, Identity, IdentityKind, Known, Millis};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use tokio::sync::oneshot;

mod contacts;
pub(crate) mod db;
mod exec;
mod ingest;
mod journeys;
mod messages;
mod retention;
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
    (15, include_str!("../migrations/sqlite/0015_users.sql")),
    (16, include_str!("../migrations/sqlite/0016_hourly_stats.sql")),
    (17, include_str!("../migrations/sqlite/0017_contact_search.sql")),
    (18, include_str!("../migrations/sqlite/0018_campaigns.sql")),
    (19, include_str!("../migrations/sqlite/0019_conversions.sql")),
    (
        20,
        include_str!("../migrations/sqlite/0020_link_clicks_and_holdout.sql"),
    ),
    (21, include_str!("../migrations/sqlite/0021_browser_keys.sql")),
    (22, include_str!("../migrations/sqlite/0022_forms.sql")),
    (23, include_str!("../migrations/sqlite/0023_lead_scoring.sql")),
    (24, include_str!("../migrations/sqlite/0024_predictions.sql")),
    (25, include_str!("../migrations/sqlite/0025_send_time.sql")),
    (26, include_str!("../migrations/sqlite/0026_recommendations.sql")),
    (27, include_str!("../migrations/sqlite/0027_score_changes.sql")),
    (28, include_str!("../migrations/sqlite/0028_config_versions.sql")),
    (29, include_str!("../migrations/sqlite/0029_leases.sql")),
    (30, include_str!("../migrations/sqlite/0030_events_partitioned.sql")),
    (33, include_str!("../migrations/sqlite/0033_score_rows.sql")),
    (34, include_str!("../migrations/sqlite/0034_contact_orders.sql")),
    (35, include_str!("../migrations/sqlite/0035_scores_in_contact_rows.sql")),
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
    /// The scoring rules as of a `scoring_version`, with the segment index whose
    /// thresholds they carry.
    scoring: Option<(i64, Arc<crate::plan::SegmentIndex>, Arc<nudge_core::scoring::Scoring>)>,
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
    /// Whether the cache says the identity points at contact `id`, whose primary user
    /// id is `user_id`.
    fn points_at(&self, kind: IdentityKind, value: &str, id: ContactId, user_id: Option<&str>) -> bool {
        let map = match kind {
            IdentityKind::UserId => &self.by_user_id,
            IdentityKind::AnonymousId => &self.by_anonymous_id,
        };
        map.get(value) == Some(&id) && self.primary.get(&id).is_some_and(|p| p.as_deref() == user_id)
    }
    fn put(&mut self, kind: IdentityKind, value: &str, known: &Known) {
        if self.by_user_id.len() + self.by_anonymous_id.len() > ID_CACHE_MAX {
            self.clear();
        }
        self.map(kind).insert(value.to_string(), known.id);
        self.primary.insert(known.id, known.user_id.clone());
    }
    fn forget(&mut self, kind: IdentityKind, value: &str) {
        self.map(kind).remove(value);
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
    /// Connections for the segment engine's reads of many rows ([`Role::Scanner`]).
    scanners: std::sync::Arc<ReaderPool>,
    /// The longest job the writer thread ran (its transaction, commit included), in
    /// microseconds, since [`SqliteStore::take_longest_write`] last read it.
    longest_write: std::sync::Arc<std::sync::atomic::AtomicU64>,
    keyring: crate::secrets::SharedKeyring,
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

/// What a connection is for: it decides its pragmas.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// The one connection that writes.
    Writer,
    /// Reads of a few rows (the API, the UI, the delivery worker, shared code's reads):
    /// pages copied into a small cache of its own.
    Reader,
    /// The segment engine's reads of many scattered rows (members, facts): the file
    /// mapped instead of copied.
    Scanner,
}

fn connect(path: &Path, role: Role) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Ingestion, the engines and campaigns each run more distinct statements than
    // rusqlite's default 16, and they interleave on the writer.
    conn.set_prepared_statement_cache_capacity(128);
    if role == Role::Writer {
        // Larger pages make the per-contact event index much cheaper to maintain
        // under bulk ingestion (see BENCHMARKS.md); only takes effect on a new file.
        conn.pragma_update(None, "page_size", 65536)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    // FULL: a commit is on disk before it is acknowledged, so a 200 survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The writer's and the scanners' caches are 64 MiB; a reader's 16 MiB, so that the
    // four of them stay small next to the rest of the process (BENCHMARKS.md, the
    // campaign to a million contacts).
    let cache_kib: i64 = if role == Role::Reader { 16 * 1024 } else { 64 * 1024 };
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    if role == Role::Scanner {
        // Scanners map the file instead of copying each 64 KB page into their cache: a
        // segment reading the properties of a million scattered events otherwise
        // copies gigabytes (BENCHMARKS.md). The bundled SQLite is built to allow up to
        // 1 TiB (.cargo/config.toml); its default cap is 2 GB. Only they map it: every
        // page a mapping touches counts in the process's resident memory until the
        // mapping goes, so the delivery worker reading a million messages through a
        // mapping would look like a process of gigabytes.
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
        self.scan(move |c| {
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
        self.scan(move |c| {
            let id = current_id(c, id)?;
            facts_of(c, id, None)
        })
        .await
    }

    /// Facts of several contacts in one read, in order; `None` for contacts that are
    /// gone (erased, or merged into another).
    pub async fn contacts_facts(&self, ids: Vec<ContactId>, events: Option<Vec<String>>) -> Result<Vec<Option<Facts>>> {
        let names = events.map(|n| Value::from(n).to_string());
        self.scan(move |c| ids.into_iter().map(|id| facts_of(c, id, names.as_deref())).collect())
            .await
    }

    /// Opens (creating and migrating) the database at `path`, sealing secrets with a
    /// key made for this process only: for tests and benchmarks, whose databases
    /// are not opened again by another process. A workspace uses [`Self::open_with`].
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_with(
            path,
            crate::secrets::Keyring::new(crate::secrets::MasterKey::generate()),
        )
        .await
    }

    /// Opens (creating and migrating) the database at `path`, then brings its secret
    /// settings under `ring` (`shared::messages::seal_settings`): a key that does not
    /// open them is an error here.
    pub async fn open_with(path: &Path, ring: crate::secrets::Keyring) -> Result<Self> {
        let path = path.to_path_buf();
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            let mut conn = connect(&p, Role::Writer)?;
            migrate(&mut conn)?;
            // Segments saved before their indexes existed (or by an older Nudge).
            segments::sync_event_indexes(&conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Corrupt(e.to_string()))??;
        let pool = |n: usize, role: Role| -> Result<ReaderPool> {
            Ok(ReaderPool {
                conns: (0..n)
                    .map(|_| connect(&path, role).map(Mutex::new))
                    .collect::<rusqlite::Result<_>>()?,
                next: AtomicUsize::new(0),
            })
        };
        let readers = std::sync::Arc::new(pool(4, Role::Reader)?);
        let scanners = std::sync::Arc::new(pool(2, Role::Scanner)?);
        let (tx, rx) = mpsc::channel::<WriteJob>();
        let longest_write = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let longest = longest_write.clone();
        let thread = std::thread::Builder::new()
            .name("nudge-sqlite-writer".into())
            .spawn(move || {
                let mut writer = Writer {
                    conn,
                    cache: IdCache::default(),
                };
                while let Ok(job) = rx.recv() {
                    let started = std::time::Instant::now();
                    job(&mut writer);
                    longest.fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                // Checkpoint so the database file is complete on its own after shutdown.
                let _ = writer.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
            })?;
        let store = Self {
            path,
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            readers,
            scanners,
            longest_write,
            keyring: crate::secrets::SharedKeyring::new(ring.clone()),
        };
        let sealing = std::sync::Arc::new(ring);
        let sealed: Result<usize> = sqlite_write!(store, |db| crate::shared::messages::seal_settings(db, &sealing));
        let sealed = match sealed {
            Ok(n) => n,
            Err(e) => {
                // Nothing stays open behind the error (the writer thread is joined).
                store.close().await;
                return Err(e);
            }
        };
        if sealed > 0 {
            tracing::info!(sealed, "sealed secret settings stored in clear");
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long the writer thread was held by one job at most (a transaction with its
    /// commit: every other write waited that long) since the last call; starts over.
    /// For benchmarks: how long a bulk write keeps ingestion waiting.
    pub fn take_longest_write(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.longest_write.swap(0, Ordering::Relaxed))
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
        Self::read_on(self.readers.clone(), f).await
    }

    /// [`SqliteStore::read`] on a scanner: for reads of many scattered rows.
    async fn scan<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
        Self::read_on(self.scanners.clone(), f).await
    }

    async fn read_on<T: Send + 'static>(
        pool: std::sync::Arc<ReaderPool>,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
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
            let (before, after) = shared::split_migration(sql);
            tx.execute_batch(before)?;
            let mut cache = IdCache::default();
            crate::sql::run_now(shared::rust_step(&db::SqliteDb::new(&tx, &mut cache), *version))?;
            tx.execute_batch(after)?;
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
        sqlite_write!(self, |db| shared::ingest::ingest(db, &messages, now))
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
            let after = q.after.unwrap_or(0);
            // A search walks the index in id order (FTS5 gives rowids in order) and
            // reads each contact it names; CROSS JOIN keeps the index outside.
            let (mut sql, order) = match q.search.as_deref().and_then(crate::search::needles) {
                Some(needles) => (
                    format!(
                        "SELECT c.id FROM contact_search CROSS JOIN contacts c ON c.id = contact_search.rowid
                         WHERE contact_search MATCH {} AND contact_search.rowid > {}",
                        arg(fts_query(&needles).into()),
                        arg(after.into())
                    ),
                    "contact_search.rowid",
                ),
                None => (
                    format!("SELECT c.id FROM contacts c WHERE c.id > {}", arg(after.into())),
                    "c.id",
                ),
            };
            if let Some(e) = &q.email {
                sql += &format!(" AND c.email = {}", arg(e.trim().to_ascii_lowercase().into()));
            }
            if let Some(u) = &q.user_id {
                sql += &format!(
                    " AND c.id IN (SELECT contact_id FROM identities WHERE kind = 'user_id' AND value = {})",
                    arg(u.clone().into())
                );
            }
            for (name, value) in &q.traits {
                let path = arg(json_path(name).into());
                let value = arg(value.to_string().into());
                sql += &format!(" AND json_extract(c.traits, {path}) IS json_extract({value}, '$')");
            }
            let limit = q.limit.max(1);
            let sql = format!("{sql} ORDER BY {order} LIMIT {}", limit + 1);
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
            let next = if more {
                items.last().map(|c| c.id.to_string())
            } else {
                None
            };
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
            // The identity cache may point at the contact or at contacts merged into it.
            cache.clear();
            let tx = conn.transaction()?;
            let erased = crate::sql::run_now(shared::contacts::erase(&db::SqliteDb::new(&tx, cache), id))?;
            tx.commit()?;
            cache.clear();
            Ok(erased)
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
                        let id = crate::sql::run_now(shared::ingest::create_contact(
                            &db::SqliteDb::new(&tx, cache),
                            None,
                            row.user_id.as_deref(),
                            None,
                            now,
                        ))?;
                        load_contact(&tx, id)?.ok_or_else(|| StoreError::Corrupt(format!("contact {id} vanished")))?
                    }
                };
                if contact.user_id.is_none()
                    && let Some(u) = &row.user_id
                {
                    contact.user_id = Some(u.clone());
                    let db = db::SqliteDb::new(&tx, cache);
                    crate::sql::run_now(shared::ingest::add_identity(&db, contact.id, &Identity::user(u), now))?;
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

    async fn set_key_browser(&self, id: i64, browser: crate::BrowserAccess) -> Result<Option<ApiKey>> {
        sqlite_write!(self, |db| shared::keys::set_browser(db, id, &browser))
    }

    async fn browser_origins(&self) -> Result<Vec<String>> {
        sqlite_read!(self, |db| shared::keys::browser_origins(db))
    }

    async fn contact_count(&self) -> Result<u64> {
        sqlite_read!(self, |db| shared::contacts::count(db))
    }

    async fn order_totals(&self, id: ContactId) -> Result<Option<nudge_core::orders::OrderTotals>> {
        sqlite_read!(self, |db| shared::orders::totals(db, id))
    }

    async fn hourly_stats(&self, since: Millis) -> Result<Vec<HourlyStat>> {
        sqlite_read!(self, |db| shared::stats::hourly(db, since))
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

shared::users::impl_account_store!(SqliteStore, sqlite_write, sqlite_read);
shared::campaigns::impl_campaign_store!(SqliteStore, sqlite_write, sqlite_read);
shared::scoring::impl_scoring_store!(SqliteStore, sqlite_write, sqlite_read);

shared::forms::impl_form_store!(SqliteStore, sqlite_write, sqlite_read);
shared::recommendations::impl_recommendation_store!(SqliteStore, sqlite_write, sqlite_read);
shared::predictions::impl_prediction_store!(SqliteStore, sqlite_write, sqlite_read);
shared::send_time::impl_send_time_store!(SqliteStore, sqlite_write, sqlite_read);
shared::leases::impl_lease_store!(SqliteStore, sqlite_write, sqlite_read);

impl SqliteStore {
    async fn submit(&self, new: NewSubmission, now: Millis) -> Result<Option<Submitted>> {
        sqlite_write!(self, |db| shared::forms::submit(db, &new, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_core::protocol::MessageOrigin;

    /// Migration 33 moves each score's decay timer and its rules' counters into the
    /// score's row, and no rule id is given twice from then on.
    /// A transaction on a database file with the migrations before `version` applied
    /// and recorded, as a workspace of that age was (see PostgreSQL's
    /// `migrated_before`): the caller adds its rows and commits.
    fn migrated_before(conn: &mut Connection, version: i64) -> rusqlite::Transaction<'_> {
        let tx = conn.transaction().unwrap();
        tx.execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            .unwrap();
        for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v < version) {
            tx.execute_batch(sql).unwrap();
            tx.execute("INSERT INTO schema_migrations VALUES (?, 0)", [v]).unwrap();
        }
        tx
    }

    /// Migrations 33 and 35 move the score timers and rule counters into the score
    /// rows, then the score rows into the contacts' rows (the counters of a rule since
    /// given to another score dropped), with the earliest timer as the row's.
    #[tokio::test]
    async fn migrations_33_and_35_move_timers_and_counters_into_the_contacts_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nudge.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = migrated_before(&mut conn, 33);
            tx.execute_batch(crate::shared::migration_checks::SCORES_BEFORE_33)
                .unwrap();
            tx.commit().unwrap();
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let conn = Connection::open(&path).unwrap();
        let rows: Vec<(i64, Option<String>, Option<i64>)> = conn
            .prepare("SELECT id, scoring, score_due_at FROM contacts ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        crate::shared::migration_checks::scores_moved(&store, &rows).await;
        // The highest rule deleted, a new rule does not take its id.
        conn.execute("DELETE FROM scoring_rules WHERE id = 3", []).unwrap();
        conn.execute(
            "INSERT INTO scoring_rules (definition, created_at, updated_at) VALUES ('{}', 0, 0)",
            [],
        )
        .unwrap();
        assert_eq!(conn.last_insert_rowid(), 4);
    }

    /// Migration 34 counts the orders stored before it: each contact's totals (the
    /// `track` events named `Order Completed`, revenue by `revenue`, else `total`, else
    /// `value`) in `contact_orders` and as traits beside the traits it had; a contact
    /// without orders gets none, and so do events of a contact that is gone.
    #[tokio::test]
    async fn migration_34_counts_the_orders_stored_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nudge.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = migrated_before(&mut conn, 34);
            // 1,500 customers (more than a page of the step) with i % 4 + 1 orders each,
            // and contact 1,501 with none.
            for c in 1..=1_501 {
                tx.execute(
                    "INSERT INTO contacts (id, user_id, traits, created_at, updated_at) VALUES (?1, ?2, ?3, 0, 0)",
                    params![c, format!("u{c}"), r#"{"plan": "pro"}"#],
                )
                .unwrap();
                tx.execute(
                    "INSERT INTO identities (kind, value, contact_id, created_at) VALUES ('user_id', ?1, ?2, 0)",
                    params![format!("u{c}"), c],
                )
                .unwrap();
            }
            let event = |id: &str, contact: i64, kind: &str, name: &str, at: i64, properties: &str| {
                tx.execute(
                    "INSERT INTO events (message_id, contact_id, type, name, timestamp, received_at, properties, context)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, '{}')",
                    params![id, contact, kind, name, at, properties],
                )
                .unwrap();
            };
            for c in 1..=1_500_i64 {
                for k in 0..(c % 4 + 1) {
                    // Out of time order, revenue by each of the three properties.
                    let at = 1_700_000_000_000 + (3 - k) * 86_400_000 + c;
                    let properties = match k {
                        0 => r#"{"revenue": 10.5, "total": 99}"#,
                        1 => r#"{"total": 4}"#,
                        2 => r#"{"value": 1}"#,
                        _ => r#"{"revenue": "not a number"}"#,
                    };
                    event(&format!("o-{c}-{k}"), c, "track", "Order Completed", at, properties);
                }
                event(&format!("v-{c}"), c, "track", "Product Viewed", 1, r#"{"total": 5}"#);
            }
            event("page", 1_501, "page", "Order Completed", 1, r#"{"total": 5}"#);
            event("orphan", 9_999, "track", "Order Completed", 1, r#"{"total": 5}"#);
            tx.commit().unwrap();
        }
        let store = SqliteStore::open(&path).await.unwrap();
        crate::shared::migration_checks::orders_counted(&store).await;
        let t0 = 1_700_000_000_000;
        // A new order counts on from there.
        let body = serde_json::json!({"batch": [
            {"type": "track", "userId": "u4", "event": "Order Completed", "messageId": "new", "properties": {"revenue": 2}}
        ]});
        let received = nudge_core::Received {
            at: t0 + 10 * 86_400_000,
            ip: None,
        };
        let calls = nudge_core::parse_batch(&serde_json::to_vec(&body).unwrap(), &received, &mut || "x".into())
            .unwrap()
            .messages;
        store.ingest(calls, received.at).await.unwrap();
        let totals = store.order_totals(4).await.unwrap().unwrap();
        assert_eq!((totals.count, totals.revenue, totals.last_at), (2, 12.5, received.at));
        store.close().await;
    }

    /// Messages queued by journeys before migration 14 carried their journey in
    /// `data.journey` and their step in the key; the migration moves both to the
    /// origin columns, so their opens and clicks still count for the step.
    #[test]
    fn migration_14_gives_earlier_journey_messages_their_origin() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("nudge.db")).unwrap();
        for (_, sql) in MIGRATIONS.iter().filter(|(v, _)| *v < 14) {
            conn.execute_batch(sql).unwrap();
        }
        let insert = |key: &str, data: &str| {
            conn.execute(
                "INSERT INTO messages (idempotency_key, contact_id, template_id, template_version, channel,
                 transactional, data, state, created_at, updated_at) VALUES (?, 1, 1, 1, 'email', 0, ?, 'sent', 0, 0)",
                params![key, data],
            )
            .unwrap();
            conn.last_insert_rowid()
        };
        let journey = insert(
            "run-7-step-remind-1-3",
            r#"{"event": {}, "data": {}, "journey": {"id": 2, "run_id": 7}}"#,
        );
        let api = insert("order-42", r#"{"data": {}}"#);
        let mismatched = insert("run-8-step-x-1", r#"{"journey": {"id": 2, "run_id": 9}}"#);
        // Migration 14, then the later ones (which add columns a message is read with).
        for (_, sql) in MIGRATIONS.iter().filter(|(v, _)| *v >= 14) {
            conn.execute_batch(sql).unwrap();
        }
        let origin = |id| {
            crate::sql::run_now(crate::exec::load_message(&db::SqliteDb::read(&conn), id))
                .unwrap()
                .unwrap()
                .origin
        };
        assert_eq!(
            origin(journey),
            Some(MessageOrigin::Journey {
                journey_id: 2,
                run_id: 7,
                step: "remind-1".into(),
                visit: 3
            })
        );
        assert_eq!(origin(api), None);
        assert_eq!(origin(mismatched), None, "a key of another run is not trusted");
    }

    /// Contacts stored before migration 17 get their search text (written in Rust) in
    /// the migration's transaction, and the index finds them.
    #[tokio::test]
    async fn migration_17_gives_earlier_contacts_their_search_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nudge.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = migrated_before(&mut conn, 17);
            for i in 0..2_500 {
                tx.execute(
                    "INSERT INTO contacts (user_id, email, phone, traits, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, 0, 0)",
                    params![
                        format!("u{i}"),
                        format!("c{i}@example.com"),
                        (i == 7).then_some("+15550100"),
                        format!(r#"{{"first_name": "Ada", "last_name": "Number {i}"}}"#),
                    ],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let store = SqliteStore::open(&path).await.unwrap();
        let search = async |term: &str| {
            let q = ContactQuery {
                search: Some(term.into()),
                limit: 5000,
                ..Default::default()
            };
            let page = store.list_contacts(&q).await.unwrap();
            page.items.into_iter().map(|c| c.user_id.unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(search("number 2499").await, ["u2499"]);
        assert_eq!(search("c1234@").await, ["u1234"]);
        assert_eq!(search("555 0100").await, ["u7"]);
        assert_eq!(search("ada n").await.len(), 2_500);
        store.close().await;
    }

    /// A run state that is not even JSON (SQLite keeps it as text) reads as that text,
    /// so the engine sets the run aside instead of every read of the contact's runs
    /// failing.
    #[test]
    fn a_run_state_that_is_not_json_reads_as_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("nudge.db")).unwrap();
        for (_, sql) in MIGRATIONS {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute(
            "INSERT INTO journey_runs (journey_id, version, contact_id, status, step, state, entered_at, updated_at)
             VALUES (1, 1, 1, 'active', 'wait', '{not json', 0, 0)",
            [],
        )
        .unwrap();
        let id = conn.last_insert_rowid();
        let run = crate::sql::run_now(crate::shared::journeys::run(&db::SqliteDb::read(&conn), id))
            .unwrap()
            .unwrap();
        assert_eq!(run.state, Value::String("{not json".into()));
        assert!(nudge_core::journey::RunPhase::from_stored(&run.state).is_err());
    }
}
