//! Baselines for `nudge bench`: the same work as Nudge's, done the plainest fast way
//! straight against the same schema, so BENCHMARKS.md can say how far Nudge is from
//! what the database itself allows.
//!
//! Each function writes or reads the tables directly (one prepared statement, no
//! identity resolution, no dirty marks, no timeline rows), on a database that the
//! store itself created (its migrations, its page size and journal mode) and with the
//! connection settings the store's own connections use. That makes each one a fair
//! ceiling: what Nudge's work would cost if it were nothing but the essential rows.
//!
//! They live here, not in the benchmarks, so the schema is known only to this crate.
//! Nothing in Nudge itself calls them.

use crate::{PgStore, Result, SqliteStore, Store, StoreError};
use nudge_core::Millis;
use nudge_core::segment::Condition;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One `track` event row of the raw-insert baseline.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub message_id: String,
    /// The contact the event belongs to (resolved already: the baseline does no
    /// identity work).
    pub contact_id: i64,
    /// `properties` and `context` as JSON text.
    pub properties: String,
    pub context: String,
}

/// A panic in a blocking baseline task, as an error.
fn joined<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    r.map_err(|e| StoreError::Io(std::io::Error::other(e)))?
}

/// Inserts `rows` into the `events` table of a new SQLite database at `path`, in
/// transactions of `commit_rows`, and returns how long the inserts took.
///
/// Measures the floor of durable ingestion on SQLite: the database is created by
/// [`SqliteStore::open`] (same schema, indexes, page size, WAL), the connection uses
/// the writer's settings (`synchronous=FULL`, 64 MB cache), and each row is one
/// execution of one cached prepared `INSERT` — the fastest plain path, with the same
/// index maintenance and fsyncs per commit as Nudge's group commit.
pub async fn raw_insert_events_sqlite(path: &Path, rows: Vec<RawEvent>, commit_rows: usize) -> Result<Duration> {
    let store = SqliteStore::open(path).await?;
    store.close().await;
    let path = path.to_path_buf();
    let commit_rows = commit_rows.max(1);
    joined(
        tokio::task::spawn_blocking(move || -> Result<Duration> {
            let mut conn = rusqlite::Connection::open(&path)?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "cache_size", -65536)?;
            let started = Instant::now();
            for chunk in rows.chunks(commit_rows) {
                let tx = conn.transaction()?;
                {
                    let mut stmt = tx.prepare_cached(
                        "INSERT INTO events (message_id, contact_id, type, name, user_id, anonymous_id, timestamp, received_at, properties, context, extra)
                         VALUES (?, ?, 'track', 'Product Viewed', NULL, NULL, 1793534400000, 1793534400000, ?, ?, NULL)",
                    )?;
                    for r in chunk {
                        stmt.execute(rusqlite::params![r.message_id, r.contact_id, r.properties, r.context])?;
                    }
                }
                tx.commit()?;
            }
            Ok(started.elapsed())
        })
        .await,
    )
}

/// Two fresh PostgreSQL schemas for one benchmark run: one for the server under test
/// ([`url`](Self::url)), one for the raw baseline ([`raw_url`](Self::raw_url)). Drop
/// them with [`drop_schema`](Self::drop_schema).
pub struct PgBenchSchema {
    /// Connection URL whose `search_path` is the server's schema.
    pub url: String,
    /// Connection URL whose `search_path` is the baseline's schema.
    pub raw_url: String,
    schema: String,
    /// `base` as given, without our options.
    base: String,
}

impl PgBenchSchema {
    /// Creates the server's schema (empty: the server migrates it) at `base`, a
    /// PostgreSQL URL; the baseline's is made by [`raw_insert_events_postgres`].
    pub async fn create(base: &str) -> Result<Self> {
        let schema = format!("nudge_bench_{}", std::process::id());
        let client = connect_pg(base).await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .await?;
        let sep = if base.contains('?') { '&' } else { '?' };
        Ok(Self {
            raw_url: format!("{base}{sep}options=-csearch_path%3D{schema}_raw"),
            url: format!("{base}{sep}options=-csearch_path%3D{schema}"),
            schema,
            base: base.to_string(),
        })
    }

    /// Drops both schemas and everything in them.
    pub async fn drop_schema(&self) -> Result<()> {
        let client = connect_pg(&self.base).await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {0} CASCADE; DROP SCHEMA IF EXISTS {0}_raw CASCADE",
                self.schema
            ))
            .await?;
        Ok(())
    }
}

async fn connect_pg(url: &str) -> Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// Inserts `rows` into the `events` table of the baseline schema of `schema`
/// (recreated empty and migrated by [`PgStore::connect`]), in transactions of
/// `commit_rows`, and returns how long the inserts took.
///
/// Measures the floor of durable ingestion on PostgreSQL: each transaction is one
/// multi-row `INSERT ... SELECT FROM unnest($1, $2, ...)` of a prepared statement —
/// the fastest plain `INSERT` path (one round trip per transaction), so the baseline
/// is a ceiling, not a straw man. It claims the message ids in `event_message_ids`
/// in the same statement, as every insert into `events` does (migration 30).
pub async fn raw_insert_events_postgres(
    schema: &PgBenchSchema,
    rows: Vec<RawEvent>,
    commit_rows: usize,
) -> Result<Duration> {
    let raw = format!("{}_raw", schema.schema);
    connect_pg(&schema.base)
        .await?
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {raw} CASCADE; CREATE SCHEMA {raw}"))
        .await?;
    let store = PgStore::connect(&schema.raw_url).await?;
    store.close().await;
    let mut client = connect_pg(&schema.raw_url).await?;
    let stmt = client
        .prepare(
            "WITH claimed AS (INSERT INTO event_message_ids (message_id) SELECT unnest($1::text[]))
             INSERT INTO events (message_id, contact_id, type, name, timestamp, received_at, properties, context)
             SELECT m, c, 'track', 'Product Viewed', 1793534400000, 1793534400000, p::jsonb, x::jsonb
             FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS t(m, c, p, x)",
        )
        .await?;
    let started = Instant::now();
    for chunk in rows.chunks(commit_rows.max(1)) {
        let tx = client.transaction().await?;
        let ids: Vec<&str> = chunk.iter().map(|r| r.message_id.as_str()).collect();
        let contacts: Vec<i64> = chunk.iter().map(|r| r.contact_id).collect();
        let props: Vec<&str> = chunk.iter().map(|r| r.properties.as_str()).collect();
        let ctx: Vec<&str> = chunk.iter().map(|r| r.context.as_str()).collect();
        tx.execute(&stmt, &[&ids, &contacts, &props, &ctx]).await?;
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

/// Runs `update` (one statement with one `?`, the row id) once per id, in
/// transactions of `batch`, on a connection with the writer's durability.
fn update_one_by_one(conn: &mut rusqlite::Connection, ids: &[i64], batch: usize, update: &str) -> rusqlite::Result<()> {
    for chunk in ids.chunks(batch.max(1)) {
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(update)?;
            for id in chunk {
                st.execute([id])?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}

fn open_writer(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let c = rusqlite::Connection::open(path)?;
    c.pragma_update(None, "synchronous", "FULL")?;
    Ok(c)
}

/// A campaign's snapshot and enqueue written the plainest way into a new SQLite
/// database at `path` (the store's schema, page size and WAL): `contacts` recipient
/// rows inserted in transactions of `snapshot_page`, then per recipient, in
/// transactions of `batch`, the essential rows of a queued campaign message — the
/// outbox row, its `Message Queued` timeline row, the recipient marked queued — each
/// by one cached prepared statement. Returns how long the snapshot and the enqueue
/// took.
///
/// The baseline of `nudge bench campaign`: the same rows and fsyncs per commit, with
/// no audience reads, no due-recipient reads, no rules, no merged-contact lookups,
/// no counters, on tables holding nothing else (a best case for their indexes).
pub async fn raw_campaign_sqlite(
    path: &Path,
    contacts: usize,
    snapshot_page: usize,
    batch: usize,
    now: Millis,
) -> Result<(Duration, Duration)> {
    let store = SqliteStore::open(path).await?;
    store.close().await;
    let path: PathBuf = path.to_path_buf();
    joined(
        tokio::task::spawn_blocking(move || -> Result<(Duration, Duration)> {
            let mut c = open_writer(&path)?;
            c.pragma_update(None, "cache_size", -65536)?;
            let ids: Vec<i64> = (1..=contacts as i64).collect();
            let started = Instant::now();
            for chunk in ids.chunks(snapshot_page.max(1)) {
                let tx = c.transaction()?;
                {
                    let mut stmt = tx.prepare_cached(
                        "INSERT INTO campaign_recipients (campaign_id, contact_id, variant, state, due_at)
                         VALUES (1, ?, 0, 'pending', ?) ON CONFLICT (campaign_id, contact_id) DO NOTHING",
                    )?;
                    for id in chunk {
                        stmt.execute(rusqlite::params![id, now])?;
                    }
                }
                tx.commit()?;
            }
            let snapshot = started.elapsed();
            let started = Instant::now();
            for chunk in ids.chunks(batch.max(1)) {
                let tx = c.transaction()?;
                {
                    let mut message = tx.prepare_cached(
                        "INSERT INTO messages (idempotency_key, contact_id, template_id, template_version, channel,
                         transactional, data, state, attempts, next_attempt_at, created_at, updated_at,
                         origin_campaign_id, origin_variant)
                         VALUES (?, ?, 1, 1, 'email', 0, ?, 'queued', 0, ?, ?, ?, 1, 0)
                         ON CONFLICT (idempotency_key) DO NOTHING",
                    )?;
                    let mut event = tx.prepare_cached(
                        "INSERT INTO events (message_id, contact_id, type, name, timestamp, received_at, properties, context)
                         VALUES (?, ?, 'track', 'Message Queued', ?, ?, ?, '{\"source\":\"nudge\"}')
                         ON CONFLICT (message_id) DO NOTHING",
                    )?;
                    let mut recipient = tx.prepare_cached(
                        "UPDATE campaign_recipients SET state = 'queued', message_id = ?
                         WHERE campaign_id = 1 AND contact_id = ? AND state = 'pending'",
                    )?;
                    for id in chunk {
                        message.execute(rusqlite::params![
                            format!("campaign-1-contact-{id}"),
                            id,
                            r#"{"data":{"campaign":{"id":1,"name":"Spring letter","variant":"A"}}}"#,
                            now,
                            now,
                            now
                        ])?;
                        let message_id = tx.last_insert_rowid();
                        event.execute(rusqlite::params![
                            format!("message-{message_id}-queued-0"),
                            id,
                            now,
                            now,
                            format!(
                                r#"{{"message_id":{message_id},"channel":"email","template_id":1,"template_version":1,"state":"queued"}}"#
                            )
                        ])?;
                        recipient.execute(rusqlite::params![message_id, id])?;
                    }
                }
                tx.commit()?;
            }
            Ok((snapshot, started.elapsed()))
        })
        .await,
    )
}

/// One single-row `UPDATE` per journey run of the SQLite database at `path` (closed
/// by the store first), committed in transactions of `batch` runs. Returns how many
/// runs were updated and how long it took (listing the runs included).
///
/// The baseline of a journey step transition: the least a durable transition of a
/// run can write (one row of `journey_runs`, in transactions of the engine's round
/// size, with the same fsyncs per commit), against the engine's run state, timers,
/// step events and stats written together.
pub async fn update_runs_one_by_one(path: &Path, batch: usize) -> Result<(usize, Duration)> {
    let path: PathBuf = path.to_path_buf();
    joined(
        tokio::task::spawn_blocking(move || -> Result<(usize, Duration)> {
            let mut c = open_writer(&path)?;
            let started = Instant::now();
            let ids: Vec<i64> = c
                .prepare("SELECT id FROM journey_runs")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            update_one_by_one(
                &mut c,
                &ids,
                batch,
                "UPDATE journey_runs SET updated_at = updated_at + 1 WHERE id = ?",
            )?;
            Ok((ids.len(), started.elapsed()))
        })
        .await,
    )
}

/// One single-row `UPDATE` per waiting journey timer — the `n` due first — of the
/// SQLite database at `path` (closed by the store first), committed in transactions
/// of `batch` timers. Returns how many timers were updated and how long the updates
/// took.
///
/// The baseline of firing timers: the least firing a timer durably can write (its
/// one row, in transactions of the engine's round size), against the engine's whole
/// transition per timer.
pub async fn update_timers_one_by_one(path: &Path, n: usize, batch: usize) -> Result<(usize, Duration)> {
    let path: PathBuf = path.to_path_buf();
    joined(
        tokio::task::spawn_blocking(move || -> Result<(usize, Duration)> {
            let mut c = open_writer(&path)?;
            let ids: Vec<i64> = c
                .prepare("SELECT run_id FROM journey_timers ORDER BY due_at LIMIT ?")?
                .query_map([n as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let started = Instant::now();
            update_one_by_one(
                &mut c,
                &ids,
                batch,
                "UPDATE journey_timers SET leased_until = 0 WHERE run_id = ?",
            )?;
            Ok((ids.len(), started.elapsed()))
        })
        .await,
    )
}

/// The ready-made segments written by hand in SQLite SQL, run on a read connection
/// of their own with the settings of the store's scanners (64 MB cache, the file
/// mapped up to 1 TiB).
///
/// The baseline of full segment computation: what a person who knows the schema
/// would write for each ready-made segment (one `GROUP BY`/`HAVING` or `EXCEPT` over
/// `events`, no generality), on the same file with the same indexes, against
/// [`crate::SegmentStore::segment_members`] running the compiled SQL.
pub struct HandWrittenSegments {
    conn: rusqlite::Connection,
}

impl HandWrittenSegments {
    /// Opens the SQLite database at `path` (made by [`SqliteStore::open`]) for reading.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "cache_size", -65536)?;
        conn.pragma_update(None, "mmap_size", 1i64 << 40)?;
        Ok(Self { conn })
    }

    /// How many bytes of the file this connection maps (`PRAGMA mmap_size`).
    pub fn mapped_bytes(&self) -> Result<i64> {
        Ok(self.conn.query_row("PRAGMA mmap_size", [], |r| r.get(0))?)
    }

    /// Builds the partial indexes a saved segment with `definition` gets for the
    /// event properties it reads ([`crate::segment_sql::event_indexes`]), so the
    /// hand-written queries run with the indexes the store would have. Returns how
    /// many were built.
    pub fn build_event_indexes(&self, definition: &Condition) -> Result<usize> {
        let mut built = 0;
        for (_, create) in crate::segment_sql::event_indexes(definition) {
            self.conn.execute_batch(&create)?;
            built += 1;
        }
        Ok(built)
    }

    /// The members of the ready-made segment `key` at `now`, by its hand-written
    /// query (in no particular order).
    ///
    /// # Panics
    /// If `key` is not a ready-made segment ([`nudge_core::segment::ready_made`]):
    /// every ready-made segment has its baseline here.
    pub fn members(&self, key: &str, now: Millis) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare(&hand_written_sql(key, now))?;
        let members = stmt.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(members)
    }
}

/// The hand-written SQLite query of the ready-made segment `key` at `now`.
fn hand_written_sql(key: &str, now: Millis) -> String {
    const DAY: Millis = 86_400_000;
    let orders = "SELECT contact_id FROM events WHERE type = 'track' AND name = 'Order Completed' GROUP BY contact_id";
    let month = nudge_core::segment::month_day(now).unwrap_or_default()[..2].to_string();
    match key {
        "new_customers" => format!("{orders} HAVING count(*) = 1"),
        "repeat_customers" => format!("{orders} HAVING count(*) >= 2"),
        "high_value" => format!(
            "{orders} HAVING coalesce(sum(CASE WHEN timestamp BETWEEN {} AND {now} AND json_type(properties, '$.total') IN ('integer', 'real')
               THEN json_extract(properties, '$.total') END), 0) >= 300 AND count(*) >= 3 AND max(timestamp) BETWEEN {} AND {now}",
            now - 365 * DAY,
            now - 90 * DAY
        ),
        "at_risk" => format!("{orders} HAVING max(timestamp) < {}", now - 90 * DAY),
        "abandoned_cart" => format!(
            "SELECT contact_id FROM events WHERE type = 'track' AND name = 'Product Added' GROUP BY contact_id
             HAVING max(timestamp) < {} AND max(timestamp) BETWEEN {} AND {now}
             EXCEPT SELECT contact_id FROM events WHERE type = 'track' AND name IN ('Checkout Started', 'Order Completed')
             AND timestamp BETWEEN {} AND {now}",
            now - 3_600_000,
            now - 7 * DAY,
            now - DAY
        ),
        "coupon_users" => "SELECT DISTINCT contact_id FROM events WHERE type = 'track' AND name = 'Order Completed'
             AND json_type(properties, '$.coupon') <> 'null'"
            .into(),
        "email_engaged" => format!(
            "SELECT DISTINCT contact_id FROM events WHERE type = 'track' AND name IN ('Email Opened', 'Email Link Clicked')
             AND timestamp BETWEEN {} AND {now}",
            now - 30 * DAY
        ),
        "email_not_engaged" => format!(
            "SELECT id FROM contacts WHERE json_extract(subscriptions, '$.email') = 'subscribed' AND id NOT IN
             (SELECT contact_id FROM events WHERE type = 'track' AND name IN ('Email Opened', 'Email Link Clicked')
              AND timestamp BETWEEN {} AND {now})",
            now - 90 * DAY
        ),
        "birthday_this_month" => format!("SELECT id FROM contacts WHERE substr(json_extract(traits, '$.birthday'), 6, 2) = '{month}'"),
        "test_contacts" => "SELECT id FROM contacts WHERE json_type(traits, '$.test_contact') = 'true'".into(),
        other => panic!("no hand-written SQL for {other}"),
    }
}
