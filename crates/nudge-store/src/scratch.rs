//! Scratch PostgreSQL schemas for tests and benchmarks: a fresh, empty schema with a
//! connection URL whose `search_path` is that schema (a [`crate::PgStore`] opened on
//! it migrates it), dropped with everything in it afterwards; [`test_stores`],
//! the SQLite and PostgreSQL stores a test runs against; and [`census`], what a test
//! finds in a PostgreSQL workspace after the fact. Callers outside this crate need
//! no database driver of their own.

use crate::Result;

/// A schema of its own on a PostgreSQL server (see the module documentation).
#[derive(Debug, Clone)]
pub struct PgScratchSchema {
    /// The URL as given.
    pub base_url: String,
    /// The URL whose `search_path` is this schema.
    pub url: String,
    /// The schema's name.
    pub name: String,
}

impl PgScratchSchema {
    /// Creates a schema named `{prefix}_{process}_{n}`, unique in this process and
    /// among concurrent processes (an older one of the same name is dropped first).
    pub async fn create(base_url: &str, prefix: &str) -> Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{prefix}_{}_{nanos}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self::create_named(base_url, &name).await
    }

    /// Creates (or empties) the schema `name`.
    pub async fn create_named(base_url: &str, name: &str) -> Result<Self> {
        connect(base_url)
            .await?
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))
            .await?;
        let sep = if base_url.contains('?') { '&' } else { '?' };
        Ok(Self {
            base_url: base_url.to_string(),
            url: format!("{base_url}{sep}options=-csearch_path%3D{name}"),
            name: name.to_string(),
        })
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(&self) -> Result<()> {
        connect(&self.base_url)
            .await?
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .await?;
        Ok(())
    }
}

/// A store a test runs against, with what keeps it: the SQLite database's directory,
/// or the PostgreSQL scratch schema (for the test to drop when it wants).
pub type TestStore = (
    std::sync::Arc<dyn crate::Store>,
    Option<tempfile::TempDir>,
    Option<PgScratchSchema>,
);

/// The stores a test runs against: SQLite in a fresh directory always, and
/// PostgreSQL in a fresh schema named after `prefix` when `NUDGE_TEST_DATABASE_URL`
/// is set (and not empty).
pub async fn test_stores(prefix: &str) -> Result<Vec<TestStore>> {
    let dir = tempfile::tempdir()?;
    let sqlite = crate::SqliteStore::open(&dir.path().join("nudge.db")).await?;
    let mut out: Vec<TestStore> = vec![(std::sync::Arc::new(sqlite), Some(dir), None)];
    if let Ok(url) = std::env::var("NUDGE_TEST_DATABASE_URL")
        && !url.is_empty()
    {
        let schema = PgScratchSchema::create(&url, prefix).await?;
        let store = crate::PgStore::connect(&schema.url).await?;
        out.push((std::sync::Arc::new(store), None, Some(schema)));
    }
    Ok(out)
}

async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// What a PostgreSQL workspace holds, counted for a test that drove it from outside
/// (the chaos test, `crates/nudge/tests/chaos.rs`): its load's events, contacts,
/// journey runs, messages and the claims left on rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Events whose `messageId` is one of those given.
    pub events_given: i64,
    /// Events whose `messageId` starts with the prefix given.
    pub events_prefixed: i64,
    /// `messageId`s with the prefix stored more than once.
    pub events_repeated: i64,
    /// Contacts whose user id starts with the prefix.
    pub contacts_prefixed: i64,
    /// Distinct user ids among them.
    pub users_prefixed: i64,
    pub runs: i64,
    /// Runs finished (with the moment they finished).
    pub runs_finished: i64,
    /// Contacts with more than one run.
    pub contacts_in_two_runs: i64,
    pub messages: i64,
    /// Messages not final yet (due, waiting for a retry or claimed).
    pub messages_pending: i64,
    /// Messages in a state other than `sent`.
    pub messages_not_sent: i64,
    /// Distinct contacts the messages are to.
    pub message_recipients: i64,
    /// Every message's idempotency key (an e-mail's `Message-ID` derives from it).
    pub message_keys: Vec<String>,
    /// Journey events not yet acted on, and timers not yet fired.
    pub journey_inbox: i64,
    pub journey_timers: i64,
    /// Rows claimed until after `now`, by table (outbox messages, journey timers,
    /// inbox events, entry timers).
    pub claimed: Vec<(String, i64)>,
    /// The event names the journey engines have said journeys act on.
    pub journey_event_names: Vec<String>,
}

/// Counts [`Census`] in the workspace at `url`: `prefix` marks the load's
/// `messageId`s and user ids, `message_ids` are those the test was told were
/// stored, `now` the moment claims are compared with.
pub async fn census(url: &str, prefix: &str, message_ids: &[String], now: nudge_core::Millis) -> Result<Census> {
    let db = connect(url).await?;
    let like = format!(
        "{}%",
        prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    );
    let one = |row: tokio_postgres::Row| -> i64 { row.get(0) };
    let count = async |sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]| -> Result<i64> {
        Ok(one(db.query_one(sql, params).await?))
    };
    let mut claimed = Vec::new();
    for table in ["messages", "journey_timers", "journey_inbox", "journey_entry_timers"] {
        let n = count(
            &format!("SELECT count(*) FROM {table} WHERE leased_until > $1"),
            &[&now],
        )
        .await?;
        claimed.push((table.to_string(), n));
    }
    Ok(Census {
        events_given: count(
            "SELECT count(*) FROM events WHERE message_id = ANY($1)",
            &[&message_ids],
        )
        .await?,
        events_prefixed: count("SELECT count(*) FROM events WHERE message_id LIKE $1", &[&like]).await?,
        events_repeated: count(
            "SELECT count(*) FROM (SELECT message_id FROM events WHERE message_id LIKE $1
                                   GROUP BY message_id HAVING count(*) > 1) d",
            &[&like],
        )
        .await?,
        contacts_prefixed: count("SELECT count(*) FROM contacts WHERE user_id LIKE $1", &[&like]).await?,
        users_prefixed: count(
            "SELECT count(DISTINCT user_id) FROM contacts WHERE user_id LIKE $1",
            &[&like],
        )
        .await?,
        runs: count("SELECT count(*) FROM journey_runs", &[]).await?,
        runs_finished: count(
            "SELECT count(*) FROM journey_runs WHERE status = 'finished' AND finished_at IS NOT NULL",
            &[],
        )
        .await?,
        contacts_in_two_runs: count(
            "SELECT count(*) FROM (SELECT contact_id FROM journey_runs GROUP BY contact_id HAVING count(*) > 1) d",
            &[],
        )
        .await?,
        messages: count("SELECT count(*) FROM messages", &[]).await?,
        messages_pending: count("SELECT count(*) FROM messages WHERE next_attempt_at IS NOT NULL", &[]).await?,
        messages_not_sent: count("SELECT count(*) FROM messages WHERE state <> 'sent'", &[]).await?,
        message_recipients: count("SELECT count(DISTINCT contact_id) FROM messages", &[]).await?,
        message_keys: db
            .query("SELECT idempotency_key FROM messages ORDER BY id", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
        journey_inbox: count("SELECT count(*) FROM journey_inbox", &[]).await?,
        journey_timers: count("SELECT count(*) FROM journey_timers", &[]).await?,
        claimed,
        journey_event_names: db
            .query("SELECT name FROM journey_event_names ORDER BY name", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
    })
}
