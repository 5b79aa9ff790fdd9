//! The configuration listener: `LISTEN nudge_config` on a connection of its own (not
//! the pool's: a pooled connection is reset and shared), reconnecting with backoff
//! when PostgreSQL restarts or the connection drops. See [`crate::live`].

use crate::live::{CHANNEL, ConfigKind, ConfigNotice};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

/// First wait before connecting again; doubled per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Starts the listener; it ends when the receiver is dropped.
pub(super) fn start(mut config: tokio_postgres::Config) -> mpsc::Receiver<ConfigNotice> {
    // A connection that died silently (a network cut, not a restart) is noticed within
    // a minute or so; the periodic check covers the meantime.
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .keepalives_interval(Duration::from_secs(10))
        .keepalives_retries(3);
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(run(config, tx));
    rx
}

async fn run(config: tokio_postgres::Config, tx: mpsc::Sender<ConfigNotice>) {
    let mut backoff = MIN_BACKOFF;
    let mut failing = false;
    loop {
        let ended = tokio::select! {
            _ = tx.closed() => return,
            ended = listen(&config, &tx, &mut backoff, &mut failing) => ended,
        };
        match ended {
            Ok(()) => return,
            Err(e) if !failing => {
                tracing::warn!(error = %e, "configuration listener lost its connection; reconnecting (changes are still read every few seconds)");
                failing = true;
            }
            Err(e) => tracing::debug!(error = %e, "configuration listener still cannot connect"),
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: connect, `LISTEN`, forward notifications. `Ok` when the
/// receiver is gone; `Err` when the connection failed or ended.
async fn listen(
    config: &tokio_postgres::Config,
    tx: &mpsc::Sender<ConfigNotice>,
    backoff: &mut Duration,
    failing: &mut bool,
) -> Result<(), String> {
    let (client, mut conn) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let sql = format!("LISTEN {CHANNEL}");
    let mut subscribe = std::pin::pin!(client.batch_execute(&sql));
    let mut listening = false;
    loop {
        tokio::select! {
            done = &mut subscribe, if !listening => {
                done.map_err(|e| e.to_string())?;
                listening = true;
                *backoff = MIN_BACKOFF;
                if std::mem::take(failing) {
                    tracing::info!("configuration listener connected again");
                } else {
                    tracing::debug!("listening for configuration changes");
                }
                if tx.send(ConfigNotice::Listening).await.is_err() {
                    return Ok(());
                }
            }
            message = std::future::poll_fn(|cx| conn.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == CHANNEL => {
                    // A full queue already holds a notice: the watcher looks anyway.
                    let _ = tx.try_send(ConfigNotice::Changed(ConfigKind::parse(n.payload())));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the connection closed".into()),
            },
        }
    }
}
