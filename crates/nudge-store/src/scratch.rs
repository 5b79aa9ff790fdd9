//! Scratch PostgreSQL schemas for tests and benchmarks: a fresh, empty schema with a
//! connection URL whose `search_path` is that schema (a [`crate::PgStore`] opened on
//! it migrates it), dropped with everything in it afterwards; and [`test_stores`],
//! the SQLite and PostgreSQL stores a test runs against. Callers outside this crate
//! need no database driver of their own.

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
