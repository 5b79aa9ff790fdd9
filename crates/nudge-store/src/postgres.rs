//! PostgreSQL backend: a deadpool of connections, one transaction per write call.
//!
//! The observable behaviour is exactly that of the SQLite backend (`sqlite.rs`): same
//! identity resolution, merges, de-duplication, paging and filters. What differs is how
//! it is carried out, because round trips are expensive and because several Nudge
//! processes (and admin writes on other connections) may change the same rows at once:
//!
//! - ingestion is the shared algorithm (`shared/ingest.rs`) over this backend's bulk
//!   statements (`postgres/ingest.rs`): one round trip reads the stored message ids,
//!   the identities the call names and the rules, a few more write new contacts,
//!   identities, traits, events, last-seen times, journey-inbox rows and segment marks
//!   over arrays;
//! - an identity or message id that another transaction took since it was looked up
//!   fails to insert, contacts are locked before read-modify-write, and a transaction
//!   that finds another one changed what it relied on, or that deadlocked, is rolled
//!   back and run again;
//! - migrations are serialized between processes with an advisory lock.

use crate::codec::fold_identity;
use crate::shared;
use crate::*;
use contacts::*;
use db::{pg_read, pg_write};
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, QueueMode, RecyclingMethod, Transaction,
};
use ingest::*;
use nudge_core::{Call, Contact, ContactId, Identity, IdentityKind, Known, Millis, Subscription};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use tokio_postgres::NoTls;
use tokio_postgres::types::{Json, ToSql};

mod contacts;
pub(crate) mod db;
mod exec;
mod ingest;
mod journeys;
mod listen;
mod messages;
mod retention;
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
    (15, include_str!("../migrations/postgres/0015_users.sql")),
    (16, include_str!("../migrations/postgres/0016_hourly_stats.sql")),
    (17, include_str!("../migrations/postgres/0017_contact_search.sql")),
    (18, include_str!("../migrations/postgres/0018_campaigns.sql")),
    (19, include_str!("../migrations/postgres/0019_conversions.sql")),
    (
        20,
        include_str!("../migrations/postgres/0020_link_clicks_and_holdout.sql"),
    ),
    (21, include_str!("../migrations/postgres/0021_browser_keys.sql")),
    (22, include_str!("../migrations/postgres/0022_forms.sql")),
    (23, include_str!("../migrations/postgres/0023_lead_scoring.sql")),
    (24, include_str!("../migrations/postgres/0024_predictions.sql")),
    (25, include_str!("../migrations/postgres/0025_send_time.sql")),
    (26, include_str!("../migrations/postgres/0026_recommendations.sql")),
    (27, include_str!("../migrations/postgres/0027_score_changes.sql")),
    (28, include_str!("../migrations/postgres/0028_config_versions.sql")),
    (29, include_str!("../migrations/postgres/0029_leases.sql")),
    (30, include_str!("../migrations/postgres/0030_events_partitioned.sql")),
    (33, include_str!("../migrations/postgres/0033_score_rows.sql")),
    (34, include_str!("../migrations/postgres/0034_contact_orders.sql")),
    (
        35,
        include_str!("../migrations/postgres/0035_scores_in_contact_rows.sql"),
    ),
];

/// Key of the advisory lock that serializes migrations between processes.
const MIGRATION_LOCK: i64 = 0x6e75_6467_655f_6d69; // "nudge_mi"

/// How often a write transaction runs again after a deadlock with another one, or
/// after another one changed what it had read (see `stale`).
const TX_ATTEMPTS: usize = 8;

/// Runs `|tx| future` in a transaction, and again (after a backoff, at most
/// `TX_ATTEMPTS` times) when it lost a race for an identity or a contact to another
/// process: what `what` names is then logged at debug level.
macro_rules! pg_write_retrying {
    ($store:expr, $what:literal, |$tx:ident| $body:expr) => {{
        let mut client = $store.client().await?;
        let mut attempt = 0;
        loop {
            let $tx = client.transaction().await?;
            match $body.await {
                Ok(out) => {
                    $tx.commit().await?;
                    break Ok(out);
                }
                Err(e) if retryable(&e) && attempt + 1 < TX_ATTEMPTS => {
                    $tx.rollback().await?;
                    tracing::debug!(attempt, error = %e, concat!($what, " conflicted with another transaction; running it again"));
                    backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => break Err(e),
            }
        }
    }};
}

pub struct PgStore {
    pool: Pool,
    /// Connections for ingestion, most recently used first: the calls of one process
    /// come one after another (group commit), so they keep running on one connection,
    /// which has its statements prepared and their plans settled. PostgreSQL plans a
    /// statement's first executions on each connection for the values at hand, which
    /// with hundreds of values in arrays costs more than running it.
    writer: Pool,
    keyring: crate::secrets::SharedKeyring,
    /// For the configuration listener's own connection.
    config: tokio_postgres::Config,
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
    /// `search_path` selects) and applies pending migrations; secrets are sealed with
    /// a key made for this process only (tests and benchmarks). A workspace uses
    /// [`Self::connect_with`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, crate::secrets::Keyring::new(crate::secrets::MasterKey::generate())).await
    }

    /// Connects to `url`, applies pending migrations, then brings the secret
    /// settings under `ring` (`shared::messages::seal_settings`): a key that does not
    /// open them is an error here.
    pub async fn connect_with(url: &str, ring: crate::secrets::Keyring) -> Result<Self> {
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
            keyring: crate::secrets::SharedKeyring::new(ring.clone()),
            config: cfg.clone(),
        };
        store.migrate().await?;
        let sealed: Result<usize> = pg_write!(store, |db| crate::shared::messages::seal_settings(db, &ring));
        let sealed = sealed?;
        if sealed > 0 {
            tracing::info!(sealed, "sealed secret settings stored in clear");
        }
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
                let (before, after) = shared::split_migration(sql);
                tx.batch_execute(before).await?;
                shared::rust_step(&db::PgDb::tx(&tx), *version).await?;
                tx.batch_execute(after).await?;
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

    fn config_notices(&self) -> Option<tokio::sync::mpsc::Receiver<crate::live::ConfigNotice>> {
        Some(listen::start(self.config.clone()))
    }

    async fn ingest(&self, messages: Vec<Call>, now: Millis) -> Result<Vec<IngestOutcome>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.writer.get().await.map_err(pool_error)?;
        let mut attempt = 0;
        loop {
            let tx = client.transaction().await?;
            let result = shared::ingest::ingest(&db::PgDb::tx(&tx), &messages, now).await;
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
        // The search text holds one of the needles (`crate::search`); the trigram index
        // finds rare ones, and the planner walks the ids for common ones.
        if let Some(needles) = q.search.as_deref().and_then(crate::search::needles) {
            let any: Vec<String> = needles
                .iter()
                .map(|n| {
                    let p = arg(Box::new(format!("%{}%", escape_like(n))));
                    format!("c.search LIKE {p} ESCAPE '\\'")
                })
                .collect();
            sql += &format!(" AND ({})", any.join(" OR "));
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
        pg_write!(self, |db| shared::contacts::erase(db, id))
    }

    async fn import_contacts(&self, rows: Vec<ContactImport>, now: Millis) -> Result<ImportReport> {
        pg_write_retrying!(self, "import", |tx| async {
            let report = import_tx(&tx, &rows, now).await?;
            segments::mark_after_import(&tx, &rows).await?;
            Ok(report)
        })
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

    async fn set_key_browser(&self, id: i64, browser: crate::BrowserAccess) -> Result<Option<ApiKey>> {
        pg_write!(self, |db| shared::keys::set_browser(db, id, &browser))
    }

    async fn browser_origins(&self) -> Result<Vec<String>> {
        pg_read!(self, |db| shared::keys::browser_origins(db))
    }

    async fn contact_count(&self) -> Result<u64> {
        pg_read!(self, |db| shared::contacts::count(db))
    }

    async fn order_totals(&self, id: ContactId) -> Result<Option<nudge_core::orders::OrderTotals>> {
        pg_read!(self, |db| shared::orders::totals(db, id))
    }

    async fn hourly_stats(&self, since: Millis) -> Result<Vec<HourlyStat>> {
        pg_read!(self, |db| shared::stats::hourly(db, since))
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

shared::users::impl_account_store!(PgStore, pg_write, pg_read);
shared::campaigns::impl_campaign_store!(PgStore, pg_write, pg_read);
shared::scoring::impl_scoring_store!(PgStore, pg_write, pg_read);

shared::forms::impl_form_store!(PgStore, pg_write, pg_read);
shared::recommendations::impl_recommendation_store!(PgStore, pg_write, pg_read);
shared::predictions::impl_prediction_store!(PgStore, pg_write, pg_read);
shared::send_time::impl_send_time_store!(PgStore, pg_write, pg_read);
shared::leases::impl_lease_store!(PgStore, pg_write, pg_read);

impl PgStore {
    /// Run again when it lost a race for an identity or a contact, as ingestion.
    async fn submit(&self, new: NewSubmission, now: Millis) -> Result<Option<Submitted>> {
        pg_write_retrying!(self, "form submission", |tx| shared::forms::submit(
            &db::PgDb::tx(&tx),
            &new,
            now
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_core::protocol::MessageOrigin;

    /// See the SQLite test of the same name: migration 14 moves the journey of earlier
    /// journey messages from `data.journey` and their key to the origin columns. Runs
    /// when `NUDGE_TEST_DATABASE_URL` names a PostgreSQL database.
    #[tokio::test]
    async fn migration_14_gives_earlier_journey_messages_their_origin() {
        let Ok(url) = std::env::var("NUDGE_TEST_DATABASE_URL") else {
            eprintln!("NUDGE_TEST_DATABASE_URL unset: PostgreSQL migration test skipped");
            return;
        };
        let schema = format!("nudge_test_m14_{}", std::process::id());
        let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}"
            ))
            .await
            .unwrap();
        for (_, sql) in MIGRATIONS.iter().filter(|(v, _)| *v < 14) {
            client.batch_execute(sql).await.unwrap();
        }
        let insert = async |key: &str, data: Value| -> i64 {
            client
                .query_one(
                    "INSERT INTO messages (idempotency_key, contact_id, template_id, template_version, channel,
                     transactional, data, state, created_at, updated_at)
                     VALUES ($1, 1, 1, 1, 'email', false, $2, 'sent', 0, 0) RETURNING id",
                    &[&key, &data],
                )
                .await
                .unwrap()
                .get(0)
        };
        let journey = insert(
            "run-7-step-remind-1-3",
            serde_json::json!({"event": {}, "data": {}, "journey": {"id": 2, "run_id": 7}}),
        )
        .await;
        let api = insert("order-42", serde_json::json!({"data": {}})).await;
        let mismatched = insert("run-8-step-x-1", serde_json::json!({"journey": {"id": 2, "run_id": 9}})).await;
        client
            .batch_execute(MIGRATIONS.iter().find(|(v, _)| *v == 14).unwrap().1)
            .await
            .unwrap();
        let origin = async |id: i64| {
            let r = client
                .query_one(
                    "SELECT origin_journey_id, origin_run_id, origin_step, origin_visit FROM messages WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap();
            crate::messages::OriginColumns {
                journey_id: r.get(0),
                run_id: r.get(1),
                step: r.get(2),
                visit: r.get(3),
                ..Default::default()
            }
            .origin()
        };
        assert_eq!(
            origin(journey).await,
            Some(MessageOrigin::Journey {
                journey_id: 2,
                run_id: 7,
                step: "remind-1".into(),
                visit: 3
            })
        );
        assert_eq!(origin(api).await, None);
        assert_eq!(origin(mismatched).await, None, "a key of another run is not trusted");
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
    }

    /// A scratch schema with the migrations before `version` applied (and recorded),
    /// and a connection to it; `None` (the test skipped) without a test database.
    async fn migrated_before(
        version: i64,
        prefix: &str,
    ) -> Option<(crate::scratch::PgScratchSchema, tokio_postgres::Client)> {
        let Ok(url) = std::env::var("NUDGE_TEST_DATABASE_URL") else {
            eprintln!("NUDGE_TEST_DATABASE_URL unset: PostgreSQL migration test skipped");
            return None;
        };
        let schema = crate::scratch::PgScratchSchema::create(&url, prefix).await.unwrap();
        let (client, conn) = tokio_postgres::connect(&schema.url, NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .batch_execute("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .await
            .unwrap();
        for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v < version) {
            client.batch_execute(sql).await.unwrap();
            client
                .execute("INSERT INTO schema_migrations VALUES ($1, 0)", &[v])
                .await
                .unwrap();
        }
        Some((schema, client))
    }

    /// See the SQLite test of the same name: contacts stored before migration 17 get
    /// their search text in the migration's transaction, and the index finds them.
    #[tokio::test]
    async fn migration_17_gives_earlier_contacts_their_search_text() {
        let Some((schema, client)) = migrated_before(17, "nudge_test_m17").await else {
            return;
        };
        client
            .batch_execute(
                r#"INSERT INTO contacts (user_id, email, phone, traits, created_at, updated_at)
                   SELECT 'u' || i, 'c' || i || '@example.com', CASE WHEN i = 7 THEN '+15550100' END,
                          jsonb_build_object('first_name', 'Ada', 'last_name', 'Number ' || i), 0, 0
                   FROM generate_series(0, 2499) AS i ORDER BY i"#,
            )
            .await
            .unwrap();
        let store = PgStore::connect(&schema.url).await.unwrap();
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
        schema.drop_schema().await.unwrap();
    }

    /// See the SQLite test of the same name: migration 34 counts the orders stored
    /// before it into `contact_orders` and the contacts' traits.
    #[tokio::test]
    async fn migration_34_counts_the_orders_stored_before_it() {
        let Some((schema, client)) = migrated_before(34, "nudge_test_m34").await else {
            return;
        };
        // 1,500 customers (more than a page of the step) with i % 4 + 1 orders each
        // (out of time order, revenue by each property in turn), contact 1,501 with
        // none, a page named like an order and an order of a contact that is gone.
        client
            .batch_execute(
                r#"INSERT INTO contacts (id, user_id, traits, created_at, updated_at)
                   SELECT c, 'u' || c, '{"plan": "pro"}', 0, 0 FROM generate_series(1, 1501) AS c;
                   INSERT INTO identities (kind, value, contact_id, created_at)
                   SELECT 'user_id', 'u' || c, c, 0 FROM generate_series(1, 1501) AS c;
                   INSERT INTO events (message_id, contact_id, type, name, timestamp, received_at, properties, context)
                   SELECT 'o-' || c || '-' || k, c, 'track', 'Order Completed',
                          1700000000000 + (3 - k) * 86400000::bigint + c, 0,
                          (ARRAY['{"revenue": 10.5, "total": 99}', '{"total": 4}', '{"value": 1}',
                                 '{"revenue": "not a number"}'])[k + 1]::jsonb, '{}'
                   FROM generate_series(1, 1500) AS c, generate_series(0, 3) AS k WHERE k <= c % 4;
                   INSERT INTO events (message_id, contact_id, type, name, timestamp, received_at, properties, context)
                   VALUES ('page', 1501, 'page', 'Order Completed', 1, 0, '{"total": 5}', '{}'),
                          ('orphan', 9999, 'track', 'Order Completed', 1, 0, '{"total": 5}', '{}');"#,
            )
            .await
            .unwrap();
        let store = PgStore::connect(&schema.url).await.unwrap();
        crate::shared::migration_checks::orders_counted(&store).await;
        store.close().await;
        schema.drop_schema().await.unwrap();
    }

    /// See the SQLite test of the same name: migrations 33 and 35 move the score
    /// timers and counters into the score rows, then those into the contacts' rows.
    #[tokio::test]
    async fn migrations_33_and_35_move_timers_and_counters_into_the_contacts_rows() {
        let Some((schema, client)) = migrated_before(33, "nudge_test_m35").await else {
            return;
        };
        client
            .batch_execute(crate::shared::migration_checks::SCORES_BEFORE_33)
            .await
            .unwrap();
        let store = PgStore::connect(&schema.url).await.unwrap();
        let rows: Vec<(i64, Option<String>, Option<i64>)> = client
            .query("SELECT id, scoring, score_due_at FROM contacts ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        crate::shared::migration_checks::scores_moved(&store, &rows).await;
        store.close().await;
        schema.drop_schema().await.unwrap();
    }

    /// Migration 30 on a populated database: the events move into month partitions
    /// (the default one for what is older than ten years), keeping their ids and
    /// indexes; their message ids stay claimed, new ids continue after theirs.
    #[tokio::test]
    async fn migration_30_partitions_existing_events() {
        let Some((schema, client)) = migrated_before(30, "nudge_test_m30").await else {
            return;
        };
        // 3,000 events a day apart back from now, and one from 1990.
        let now = jiff::Timestamp::now().as_millisecond();
        client
            .batch_execute(&format!(
                "INSERT INTO contacts (user_id, traits, created_at, updated_at) VALUES ('u', '{{}}', 0, 0);
                 INSERT INTO events (message_id, contact_id, type, name, timestamp, received_at, properties, context)
                 SELECT 'm' || i, 1, 'track', 'Order Completed', {now} - i * 86400000::bigint, {now}, '{{}}', '{{}}'
                 FROM generate_series(0, 2999) AS i;
                 INSERT INTO events (message_id, contact_id, type, name, timestamp, received_at, properties, context)
                 VALUES ('ancient', 1, 'track', 'Order Completed', 631152000000, {now}, '{{}}', '{{}}');"
            ))
            .await
            .unwrap();
        let events = async || -> Vec<(i64, String, i64)> {
            client
                .query("SELECT id, message_id, timestamp FROM events ORDER BY id", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        };
        let before = events().await;
        let store = PgStore::connect(&schema.url).await.unwrap();
        assert_eq!(events().await, before);
        let parts = crate::RetentionStore::event_partitions(&store).await.unwrap();
        // About 99 months with events and the two ahead, plus the default partition.
        assert!((100..=104).contains(&parts.len()), "{}", parts.len());
        assert_eq!(parts[0].name, "events_default");
        let in_default: Vec<String> = client
            .query("SELECT message_id FROM events_default", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(in_default, ["ancient"]);
        let claimed: i64 = client
            .query_one("SELECT count(*) FROM event_message_ids", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(claimed, 3001);
        // The indexes are on every partition; none on message_id (the claims are
        // in event_message_ids), and no trigger.
        let indexes: Vec<String> = client
            .query(
                "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'events'
                 ORDER BY indexname",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            indexes,
            [
                "events_contact_time",
                "events_contact_type_name_time",
                "events_pkey",
                "events_products",
                "events_purchases"
            ]
        );
        // A retry of a stored message is a duplicate; a new one gets the next id.
        let received = nudge_core::Received { at: now, ip: None };
        let body = serde_json::json!({"batch": [
            {"type": "track", "userId": "u", "event": "Order Completed", "messageId": "m5"},
            {"type": "track", "userId": "u", "event": "Order Completed", "messageId": "fresh"}
        ]});
        let calls = nudge_core::parse_batch(&serde_json::to_vec(&body).unwrap(), &received, &mut || "x".into())
            .unwrap()
            .messages;
        let outcomes = store.ingest(calls, now).await.unwrap();
        assert_eq!(outcomes, [IngestOutcome::Duplicate, IngestOutcome::Stored]);
        let fresh: i64 = client
            .query_one("SELECT id FROM events WHERE message_id = 'fresh'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(fresh, before.iter().map(|b| b.0).max().unwrap() + 1);
        store.close().await;
        schema.drop_schema().await.unwrap();
    }
}
