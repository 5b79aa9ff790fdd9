//! Secrets at rest, on each backend: the rows (and SQLite's files) hold only sealed
//! values, a value moved to another row does not open, clear values an older Nudge
//! wrote are sealed at start, a wrong key is named at start, and a rotation seals
//! everything under the new key. SQLite always; PostgreSQL when
//! `NUDGE_TEST_DATABASE_URL` is set, in a schema of its own.

use nudge_store::secrets::{Keyring, MasterKey};
use nudge_store::*;
use std::sync::Arc;

const SMTP: &str = "{\"transport\":\"smtp\",\"url\":\"smtp://u:Pw-store-4d1f@h:587\",\"from\":\"a@b.c\"}";
const LINK_KEY: &str = "link-key-0f9e8d7c";
const LEGACY_WEBHOOK_KEY: &str = "webhook-key-clear-77aa";
const CLEAR: [&str; 3] = ["Pw-store-4d1f", LINK_KEY, LEGACY_WEBHOOK_KEY];

enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(scratch::PgScratchSchema),
}

impl Backend {
    async fn open(&self, ring: Keyring) -> Result<Arc<dyn Store>> {
        Ok(match self {
            Backend::Sqlite(dir) => Arc::new(SqliteStore::open_with(&dir.path().join("nudge.db"), ring).await?),
            Backend::Postgres(schema) => Arc::new(PgStore::connect_with(&schema.url, ring).await?),
        })
    }

    /// The settings table as stored, read around the store.
    async fn rows(&self) -> Vec<(String, String)> {
        match self {
            Backend::Sqlite(dir) => {
                let raw = rusqlite::Connection::open(dir.path().join("nudge.db")).unwrap();
                let mut stmt = raw.prepare("SELECT key, value FROM settings ORDER BY key").unwrap();
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap()
                    .collect::<rusqlite::Result<_>>()
                    .unwrap()
            }
            Backend::Postgres(schema) => pg(&schema.url)
                .await
                .query("SELECT key, value FROM settings ORDER BY key", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        }
    }

    /// Writes a row around the store (an older Nudge, or someone with the database).
    async fn set_raw(&self, key: &str, value: &str) {
        let sql =
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        match self {
            Backend::Sqlite(dir) => {
                let raw = rusqlite::Connection::open(dir.path().join("nudge.db")).unwrap();
                raw.execute(&sql.replace('$', "?"), [key, value]).unwrap();
            }
            Backend::Postgres(schema) => {
                pg(&schema.url).await.execute(sql, &[&key, &value]).await.unwrap();
            }
        }
    }

    async fn delete_raw(&self, key: &str) {
        match self {
            Backend::Sqlite(dir) => {
                let raw = rusqlite::Connection::open(dir.path().join("nudge.db")).unwrap();
                raw.execute("DELETE FROM settings WHERE key = ?1", [key]).unwrap();
            }
            Backend::Postgres(schema) => {
                pg(&schema.url)
                    .await
                    .execute("DELETE FROM settings WHERE key = $1", &[&key])
                    .await
                    .unwrap();
            }
        }
    }

    /// Every byte SQLite keeps (database, WAL); nothing to read for PostgreSQL.
    fn files(&self) -> Vec<u8> {
        match self {
            Backend::Sqlite(dir) => std::fs::read_dir(dir.path())
                .unwrap()
                .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap())
                .collect(),
            Backend::Postgres(_) => Vec::new(),
        }
    }
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

async fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite(tempfile::tempdir().unwrap())];
    if let Ok(url) = std::env::var("NUDGE_TEST_DATABASE_URL")
        && !url.is_empty()
    {
        out.push(Backend::Postgres(
            scratch::PgScratchSchema::create(&url, "nudge_secrets").await.unwrap(),
        ));
    }
    out
}

fn assert_sealed_with(rows: &[(String, String)], key: &MasterKey) {
    for (k, v) in rows {
        if secrets::is_secret_setting(k) {
            assert!(v.starts_with(&format!("enc:v1:{}:", key.id())), "{k} is stored as {v}");
        }
        for clear in CLEAR {
            assert!(!v.contains(clear), "{k} shows {clear}");
        }
    }
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_on_every_backend() {
    for b in backends().await {
        let (k1, k2) = (MasterKey::generate(), MasterKey::generate());
        let s = b.open(Keyring::new(k1.clone())).await.unwrap();
        s.put_setting("channel:email", Some(SMTP)).await.unwrap();
        assert_eq!(s.setting_or_init("link_signing_key", LINK_KEY).await.unwrap(), LINK_KEY);
        assert_eq!(s.setting_or_init("link_signing_key", "other").await.unwrap(), LINK_KEY);
        s.put_setting("ui_locale", Some("fa")).await.unwrap();
        assert_eq!(s.setting("channel:email").await.unwrap().as_deref(), Some(SMTP));
        s.close().await;
        let rows = b.rows().await;
        assert_sealed_with(&rows, &k1);
        assert!(
            rows.contains(&("ui_locale".into(), "fa".into())),
            "other settings stay readable: {rows:?}"
        );
        let files = b.files();
        for clear in CLEAR {
            assert!(
                !files.windows(clear.len()).any(|w| w == clear.as_bytes()),
                "the files show {clear}"
            );
        }

        // A sealed value moved to another row does not open: the start says which.
        let email = rows.iter().find(|(k, _)| k == "channel:email").unwrap().1.clone();
        b.set_raw("channel:sms", &email).await;
        let e = b
            .open(Keyring::new(k1.clone()))
            .await
            .err()
            .expect("a moved value is refused")
            .to_string();
        assert!(e.contains("settings:channel:sms") && e.contains("does not open"), "{e}");
        b.delete_raw("channel:sms").await;

        // A clear value of an older Nudge is sealed at start, and reads as it was.
        b.set_raw("webhook_signing_key", LEGACY_WEBHOOK_KEY).await;
        let s = b.open(Keyring::new(k1.clone())).await.unwrap();
        assert_eq!(
            s.setting("webhook_signing_key").await.unwrap().as_deref(),
            Some(LEGACY_WEBHOOK_KEY)
        );
        s.close().await;
        assert_sealed_with(&b.rows().await, &k1);

        // Another key: named at start, with the key the database needs.
        let e = b
            .open(Keyring::new(k2.clone()))
            .await
            .err()
            .expect("a wrong key is refused")
            .to_string();
        assert!(e.contains(k1.id()) && e.contains(k2.id()), "{e}");
        for clear in CLEAR {
            assert!(!e.contains(clear), "{e}");
        }

        // Rotation: everything sealed again under the new key, in one go.
        let s = b.open(Keyring::new(k1.clone())).await.unwrap();
        let n = s
            .reseal_secrets(Keyring::new(k2.clone()).with_previous(k1.clone()))
            .await
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(s.setting("channel:email").await.unwrap().as_deref(), Some(SMTP));
        s.put_setting("channel:sms", Some("{\"transport\":\"capture\"}"))
            .await
            .unwrap();
        s.close().await;
        assert_sealed_with(&b.rows().await, &k2);
        assert!(
            b.open(Keyring::new(k1.clone())).await.is_err(),
            "the old key no longer opens"
        );
        let s = b.open(Keyring::new(k2.clone())).await.unwrap();
        assert_eq!(s.setting("link_signing_key").await.unwrap().as_deref(), Some(LINK_KEY));
        // Nothing left to seal: opening again rewrites nothing.
        assert_eq!(s.reseal_secrets(Keyring::new(k2.clone())).await.unwrap(), 0);
        s.close().await;
        if let Backend::Postgres(schema) = b {
            schema.drop_schema().await.unwrap();
        }
    }
}
