//! Building the delivery worker from settings: channels, link-signing key, limits.

use crate::config::Settings;
use anyhow::{Context, bail};
use nudge_core::Clock;
use nudge_messages::channel::capture::Capture;
use nudge_messages::channel::push::{VapidKey, WebPush};
use nudge_messages::channel::sms::{Sms, SmsConfig};
use nudge_messages::channel::smtp::{DkimSettings, Smtp, SmtpConfig};
use nudge_messages::channel::webhook::Webhook;
use nudge_messages::delivery::{ChannelSlot, Deliverer, DeliveryConfig};
use nudge_messages::links::Signer;
use nudge_store::Store;
use serde_json::json;
use std::sync::Arc;

/// The workspace's link-signing key: generated once, kept in the database so every
/// process of a deployment signs and verifies alike.
async fn signing_key(store: &dyn Store) -> anyhow::Result<Vec<u8>> {
    use rand::Rng;
    let fresh: [u8; 32] = rand::rng().random();
    let stored = store.setting_or_init("link_signing_key", &hex::encode(fresh)).await?;
    hex::decode(stored).context("the stored link-signing key is not hex")
}

/// The key that signs webhook bodies: its own, because receivers are given it (in
/// `GET /api/v1/channels`) and must not be able to forge tracking or unsubscribe links.
async fn webhook_key(store: &dyn Store) -> anyhow::Result<Vec<u8>> {
    use rand::Rng;
    let fresh: [u8; 32] = rand::rng().random();
    let stored = store
        .setting_or_init("webhook_signing_key", &hex::encode(fresh))
        .await?;
    hex::decode(stored).context("the stored webhook signing key is not hex")
}

/// The workspace's VAPID key pair (for Web Push): generated once, kept in the
/// database, so browsers subscribed with its public key stay reachable and every
/// process signs alike.
pub async fn vapid_key(store: &dyn Store) -> anyhow::Result<VapidKey> {
    let fresh = VapidKey::generate();
    let stored = store.setting_or_init("vapid_private_key", &fresh.private_key()).await?;
    VapidKey::from_private(&stored)
        .map_err(anyhow::Error::msg)
        .context("the stored VAPID key")
}

/// `listening`: the bound address, for the default public URL.
pub async fn deliverer(
    settings: &Settings,
    listening: std::net::SocketAddr,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    vapid: VapidKey,
) -> anyhow::Result<Arc<Deliverer>> {
    let key = signing_key(&*store).await?;
    let mut slots = Vec::new();
    match &settings.smtp_url {
        Some(url) => {
            let dkim = match (&settings.dkim_selector, &settings.dkim_domain, &settings.dkim_key_file) {
                (Some(selector), Some(domain), Some(file)) => Some(DkimSettings {
                    selector: selector.clone(),
                    domain: domain.clone(),
                    private_key: std::fs::read_to_string(file)
                        .with_context(|| format!("reading the DKIM key {}", file.display()))?,
                    ed25519: false,
                }),
                (None, None, None) => None,
                _ => bail!("DKIM needs dkim_selector, dkim_domain and dkim_key_file together"),
            };
            let smtp = Smtp::new(&SmtpConfig {
                url: url.0.clone(),
                from: settings.email_from.clone(),
                pool_size: settings.smtp_pool,
                dkim,
            })
            .map_err(anyhow::Error::msg)?;
            slots.push(ChannelSlot::new(
                Arc::new(smtp),
                settings.smtp_pool as usize,
                settings.email_rate,
            ));
        }
        None => slots.push(ChannelSlot::new(Arc::new(Capture::new("email")), 64, None)),
    }
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{listening}"));
    match (&settings.sms_url, &settings.sms_account, &settings.sms_from) {
        (Some(url), Some(account), Some(from)) => {
            let sms = Sms::new(SmsConfig {
                base_url: url.clone(),
                account_sid: account.clone(),
                auth_token: settings.sms_token.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
                from: from.clone(),
                status_callback: Some(format!("{}/hooks/sms/receipts", public_url.trim_end_matches('/'))),
            })
            .map_err(anyhow::Error::msg)?;
            slots.push(ChannelSlot::new(Arc::new(sms), 8, None));
        }
        (None, None, None) => slots.push(ChannelSlot::new(Arc::new(Capture::new("sms")), 64, None)),
        _ => bail!("SMS needs sms_url, sms_account and sms_from together"),
    }
    slots.push(ChannelSlot::new(
        Arc::new(Webhook::new(&webhook_key(&*store).await?).map_err(anyhow::Error::msg)?),
        16,
        None,
    ));
    // Push needs no configuration: the VAPID key is the workspace's own.
    let push = WebPush::new(vapid, &settings.vapid_subject).map_err(anyhow::Error::msg)?;
    slots.push(ChannelSlot::new(Arc::new(push), 16, None));
    let mut config = DeliveryConfig {
        public_url,
        workspace: json!({"name": settings.workspace_name}),
        ..Default::default()
    };
    if let Some(secs) = settings.claim_lease_seconds {
        config.lease = std::time::Duration::from_secs(u64::from(secs));
    }
    let deliverer = Deliverer::new(store.clone(), clock, slots, Signer::new(&key), config);
    // Channels configured through the API (`PUT /api/v1/channels/{kind}`) or the UI
    // win over the start-up settings; one that no longer builds is reported and skipped.
    // Changes made later, on any node, are applied by the configuration watcher.
    deliverer.reload_channels().await?;
    Ok(deliverer)
}
