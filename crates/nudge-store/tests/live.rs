//! Live configuration across processes (`nudge_store::live`): a channel setting
//! written through one store moves the `channels` version, in its transaction, on
//! both backends; on PostgreSQL another store on the same schema hears of it at
//! commit, and `live::watch` reloads it — through the notification within a second,
//! and through the periodic check when it does not listen. SQLite always; PostgreSQL
//! when `NUDGE_TEST_DATABASE_URL` is set, in a schema of its own.

use nudge_store::live::{ConfigKind, ConfigNotice, WatchConfig};
use nudge_store::secrets::{Keyring, MasterKey};
use nudge_store::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const SMTP: &str = "{\"transport\":\"smtp\",\"url\":\"smtp://h:25\",\"from\":\"a@b.c\"}";

async fn pg_pair(prefix: &str) -> Option<(scratch::PgScratchSchema, Arc<dyn Store>, Arc<dyn Store>)> {
    let url = std::env::var("NUDGE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let schema = scratch::PgScratchSchema::create(&url, prefix).await.unwrap();
    // Nodes of one workspace share its master key.
    let ring = Keyring::new(MasterKey::generate());
    let a: Arc<dyn Store> = Arc::new(PgStore::connect_with(&schema.url, ring.clone()).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(PgStore::connect_with(&schema.url, ring).await.unwrap());
    Some((schema, a, b))
}

#[tokio::test]
async fn a_channel_setting_moves_its_version_and_other_settings_do_not_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("nudge.db")).await.unwrap();
    assert!(store.config_notices().is_none(), "one process owns a SQLite database");
    assert_eq!(store.config_versions().await.unwrap().get(ConfigKind::Channels), 0);
    store.put_setting("channel:email", Some(SMTP)).await.unwrap();
    store.put_setting("frequency_caps", Some("[]")).await.unwrap();
    assert_eq!(store.config_versions().await.unwrap().get(ConfigKind::Channels), 1);
    store.put_setting("channel:email", None).await.unwrap();
    assert_eq!(store.config_versions().await.unwrap().get(ConfigKind::Channels), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_store_hears_of_a_channel_change_at_commit_on_postgres() {
    let Some((schema, a, b)) = pg_pair("nudge_live_notice").await else {
        eprintln!("NUDGE_TEST_DATABASE_URL not set: skipped");
        return;
    };
    let mut notices = b.config_notices().expect("PostgreSQL listens");
    let first = tokio::time::timeout(Duration::from_secs(10), notices.recv())
        .await
        .unwrap();
    assert_eq!(first, Some(ConfigNotice::Listening));
    // Not cached by any process: no version, no notice.
    a.put_setting("frequency_caps", Some("[]")).await.unwrap();
    let t = Instant::now();
    a.put_setting("channel:sms", Some("{\"transport\":\"capture\"}"))
        .await
        .unwrap();
    let notice = tokio::time::timeout(Duration::from_secs(1), notices.recv()).await;
    // Other tests' schemas share the database and its notifications: the version is
    // the truth, the notice only says when to look.
    assert_eq!(
        notice.expect("a notice within a second"),
        Some(ConfigNotice::Changed(Some(ConfigKind::Channels)))
    );
    eprintln!("notice after {:?}", t.elapsed());
    assert_eq!(b.config_versions().await.unwrap().get(ConfigKind::Channels), 1);
    drop(notices);
    schema.drop_schema().await.unwrap();
}

/// Runs `live::watch` on `store` and reports each reload.
fn watching(
    store: Arc<dyn Store>,
    config: WatchConfig,
) -> (mpsc::UnboundedReceiver<ConfigKind>, tokio::sync::oneshot::Sender<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(live::watch(
        store,
        config,
        async move {
            let _ = stopped.await;
        },
        move |kind| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(kind);
                Ok(())
            }
        },
    ));
    (rx, stop)
}

async fn reloads_within(rx: &mut mpsc::UnboundedReceiver<ConfigKind>, within: Duration) -> Option<ConfigKind> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reloads_on_the_notification_and_on_the_periodic_check_without_it_on_postgres() {
    let Some((schema, a, b)) = pg_pair("nudge_live_watch").await else {
        eprintln!("NUDGE_TEST_DATABASE_URL not set: skipped");
        return;
    };
    // Listening, with a periodic check far away: only the notification can be quick.
    let (mut heard, stop_heard) = watching(
        b.clone(),
        WatchConfig {
            check_every: Duration::from_secs(600),
            listen: true,
        },
    );
    // Not listening (a lost notification), checking every 300 ms.
    let (mut checked, stop_checked) = watching(
        b.clone(),
        WatchConfig {
            check_every: Duration::from_millis(300),
            listen: false,
        },
    );
    // Both reload everything once at start.
    assert_eq!(
        reloads_within(&mut heard, Duration::from_secs(5)).await,
        Some(ConfigKind::Channels)
    );
    assert_eq!(
        reloads_within(&mut checked, Duration::from_secs(5)).await,
        Some(ConfigKind::Channels)
    );
    // The listener is connected once its first check is done and it waits: give the
    // LISTEN its round trip.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let t = Instant::now();
    a.put_setting("channel:email", Some(SMTP)).await.unwrap();
    assert_eq!(
        reloads_within(&mut heard, Duration::from_secs(1)).await,
        Some(ConfigKind::Channels),
        "reloaded through the notification within a second"
    );
    let by_notice = t.elapsed();
    assert_eq!(
        reloads_within(&mut checked, Duration::from_secs(2)).await,
        Some(ConfigKind::Channels),
        "reloaded by the periodic check"
    );
    eprintln!("notification: {by_notice:?}; periodic check: {:?}", t.elapsed());
    // A setting no process caches reloads nothing.
    a.put_setting("frequency_caps", Some("[]")).await.unwrap();
    assert_eq!(reloads_within(&mut checked, Duration::from_secs(1)).await, None);
    assert_eq!(reloads_within(&mut heard, Duration::from_millis(100)).await, None);
    let _ = (stop_heard.send(()), stop_checked.send(()));
    schema.drop_schema().await.unwrap();
}
