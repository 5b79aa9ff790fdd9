//! Live configuration across nodes: what this process reloads when another process
//! (or this one) changed configuration it keeps in memory. The protocol — versions
//! moved in the change's transaction, PostgreSQL notifications, the periodic check —
//! is `nudge_store::live`; this is the one place that says what each kind reloads.

use crate::{App, Result};
use nudge_store::live::{self, ConfigKind, WatchConfig};

impl App {
    /// Reloads what this process keeps of `kind`.
    pub async fn reload_config(&self, kind: ConfigKind) -> Result<()> {
        match kind {
            ConfigKind::Channels => {
                if let Some(m) = &self.messaging {
                    m.reload_channels().await?;
                    m.wake();
                }
            }
        }
        Ok(())
    }

    /// Keeps this process's configuration in step with the database until `stop`
    /// resolves (`nudge serve` runs it): see [`nudge_store::live::watch`].
    pub async fn watch_config(&self, config: WatchConfig, stop: impl std::future::Future<Output = ()>) {
        live::watch(self.store.clone(), config, stop, |kind| async move {
            self.reload_config(kind).await.map_err(|e| e.to_string())
        })
        .await
    }
}
