//! Live configuration across nodes: what a process keeps in memory from the database
//! across requests, and how a change made through one node reaches the others
//! without a restart (docs/operations.md, "Live configuration").
//!
//! The rule, written once for both backends: a change to a kind of configuration
//! that processes cache ([`ConfigKind`]) moves that kind's counter in
//! `config_versions` **in the transaction of the change**, and announces it with
//! `pg_notify('nudge_config', kind)`, which PostgreSQL delivers at commit (and never
//! for a rolled-back change; nothing on SQLite, where one process owns the database).
//! Every process runs [`watch`]: it reads the counters and reloads the kinds that moved
//! when a notification arrives, when its listener (re)connects (notifications sent
//! while it was away are lost), and every [`WatchConfig::check_every`] as the
//! fallback. The counters are the truth; a notification only says "look now".
//!
//! What is *not* here, because no process keeps it between requests: API and write
//! keys, users, sessions and roles (read at every request), frequency caps,
//! conversion and UI settings (read at every engine round or request). The storage
//! rules' caches (the segment index, the scoring rules, the journeys' event names) are
//! checked against the database inside every transaction that uses them.

use crate::Store;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The PostgreSQL notification channel of configuration changes.
pub const CHANNEL: &str = "nudge_config";

/// A kind of configuration that processes keep in memory. Its name is the
/// `config_versions` row and the notification's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKind {
    /// The e-mail and SMS channels configured through the API or the UI (the
    /// `channel:email` and `channel:sms` settings), which the delivery worker holds as
    /// built channels (SMTP connection pools, DKIM keys, provider clients).
    Channels,
}

impl ConfigKind {
    pub const ALL: &'static [ConfigKind] = &[ConfigKind::Channels];

    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::Channels => "channels",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// The kind a workspace setting belongs to, if processes cache it.
    pub(crate) fn of_setting(key: &str) -> Option<Self> {
        key.starts_with("channel:").then_some(ConfigKind::Channels)
    }
}

/// Each kind's counter (0: never changed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigVersions(BTreeMap<ConfigKind, i64>);

impl ConfigVersions {
    pub fn get(&self, kind: ConfigKind) -> i64 {
        self.0.get(&kind).copied().unwrap_or(0)
    }

    /// The kinds whose counter differs in `now`.
    pub fn moved(&self, now: &ConfigVersions) -> Vec<ConfigKind> {
        ConfigKind::ALL
            .iter()
            .copied()
            .filter(|k| self.get(*k) != now.get(*k))
            .collect()
    }

    fn set(&mut self, kind: ConfigKind, version: i64) {
        self.0.insert(kind, version);
    }
}

/// What a listener hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigNotice {
    /// It is listening (again): changes made while it was not were not announced.
    Listening,
    /// A process committed a change of this kind (`None`: a kind this version of
    /// Nudge does not know).
    Changed(Option<ConfigKind>),
}

/// In the caller's transaction: `kind` changed. Moves its counter and announces it
/// at commit.
pub(crate) async fn changed<D: crate::sql::Db>(db: &D, kind: ConfigKind) -> crate::Result<()> {
    db.execute(
        "INSERT INTO config_versions (kind, version) VALUES ($1, 1)
         ON CONFLICT (kind) DO UPDATE SET version = config_versions.version + 1",
        &[crate::sql::Arg::Str(kind.as_str())],
    )
    .await?;
    db.notify(CHANNEL, kind.as_str()).await
}

/// Every kind's counter.
pub(crate) async fn versions<D: crate::sql::Db>(db: &D) -> crate::Result<ConfigVersions> {
    let rows = crate::sql::all(db, "SELECT kind, version FROM config_versions", &[], |r| {
        Ok((r.string(0)?, r.i64(1)?))
    })
    .await?;
    let mut out = ConfigVersions::default();
    for (kind, version) in rows {
        // A kind only a newer Nudge knows: nothing here caches it.
        if let Some(k) = ConfigKind::parse(&kind) {
            out.set(k, version);
        }
    }
    Ok(out)
}

/// How [`watch`] learns of changes.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// How often the counters are read whatever the listener says (the fallback).
    pub check_every: Duration,
    /// Listen for notifications (PostgreSQL); off, changes arrive at the next check.
    pub listen: bool,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            check_every: Duration::from_secs(5),
            listen: true,
        }
    }
}

/// Keeps this process's cached configuration in step with the database until `stop`
/// resolves: `reload(kind)` is called for every kind at start (what was loaded
/// before may already be stale), then for each kind whose counter moves. A reload
/// that fails is tried again at the next check.
pub async fn watch<F, Fut>(store: Arc<dyn Store>, config: WatchConfig, stop: impl Future<Output = ()>, mut reload: F)
where
    F: FnMut(ConfigKind) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut notices = if config.listen { store.config_notices() } else { None };
    let mut known: Option<ConfigVersions> = None;
    let mut stop = std::pin::pin!(stop);
    loop {
        match store.config_versions().await {
            Ok(now) => {
                let moved = match &known {
                    None => ConfigKind::ALL.to_vec(),
                    Some(k) => k.moved(&now),
                };
                let mut next = known.clone().unwrap_or_default();
                for kind in moved {
                    if known.is_some() {
                        tracing::info!(kind = kind.as_str(), "configuration changed: reloading it");
                    }
                    match reload(kind).await {
                        Ok(()) => next.set(kind, now.get(kind)),
                        Err(e) => {
                            tracing::warn!(kind = kind.as_str(), error = %e, "reloading configuration failed; trying again")
                        }
                    }
                }
                known = Some(next);
            }
            Err(e) => tracing::warn!(error = %e, "reading the configuration versions failed; trying again"),
        }
        let notice = async {
            match notices.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(config.check_every) => {}
            n = notice => match n {
                Some(n) => {
                    tracing::debug!(?n, "configuration notice");
                    // Several notices at once need one look.
                    if let Some(rx) = notices.as_mut() {
                        while rx.try_recv().is_ok() {}
                    }
                }
                None => notices = None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_and_settings_map_to_them() {
        for k in ConfigKind::ALL {
            assert_eq!(ConfigKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(ConfigKind::parse("nonsense"), None);
        assert_eq!(ConfigKind::of_setting("channel:email"), Some(ConfigKind::Channels));
        assert_eq!(ConfigKind::of_setting("channel:sms"), Some(ConfigKind::Channels));
        assert_eq!(ConfigKind::of_setting("frequency_caps"), None);
        assert_eq!(ConfigKind::of_setting("link_signing_key"), None);
    }

    #[test]
    fn moved_compares_every_kind_with_missing_as_zero() {
        let none = ConfigVersions::default();
        let mut one = ConfigVersions::default();
        one.set(ConfigKind::Channels, 1);
        assert_eq!(none.moved(&one), vec![ConfigKind::Channels]);
        assert_eq!(one.moved(&one.clone()), Vec::<ConfigKind>::new());
        let mut zero = ConfigVersions::default();
        zero.set(ConfigKind::Channels, 0);
        assert!(none.moved(&zero).is_empty());
    }
}
