//! The delivery worker: takes due messages from the outbox, checks consent, renders,
//! adds tracking and unsubscribe links, hands them to their channel, and records
//! what happened.
//!
//! Never twice: a message is stored (with its idempotency key) before any attempt;
//! a claim leases it, so a crashed worker's messages come back after the lease; the
//! email `Message-ID` derives from the key, so the one case that cannot be told
//! apart — the server accepted, then we crashed before recording it — produces a
//! copy with the same `Message-ID`, which receivers de-duplicate.

use crate::channel::config;
use crate::channel::push::PushTarget;
use crate::channel::{Channel, Outgoing, SendError};
use crate::links::{self, Purpose, Signer};
use crate::template::{self, Compiled, Content, RenderData, Rendered};
use nudge_core::{Clock, Contact, Millis};
use nudge_store::{Message, MessageState, MessageUpdate, Store};
use nudge_worker::{Outcome, WorkerConfig, run_worker};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Where this server is reachable from the internet: tracking and unsubscribe
    /// links point here.
    pub public_url: String,
    /// `workspace` in templates (name, postal address for the footer, ...).
    pub workspace: Value,
    /// Messages claimed per round.
    pub batch: usize,
    /// How long a claim lasts before the message is due again.
    pub lease: Duration,
    /// Attempts before a temporarily failing message is given up.
    pub max_attempts: i64,
    /// First retry delay; doubled per attempt, at most `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub track_opens: bool,
    pub track_clicks: bool,
    /// Sleep when idle (woken earlier by [`Deliverer::wake`]).
    pub idle: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            workspace: json!({"name": "Nudge"}),
            batch: 500,
            lease: Duration::from_secs(120),
            max_attempts: 8,
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            track_opens: true,
            track_clicks: true,
            idle: Duration::from_secs(1),
        }
    }
}

/// A channel with its limits.
pub struct ChannelSlot {
    pub channel: Arc<dyn Channel>,
    concurrency: Arc<Semaphore>,
    rate: Option<RateLimiter>,
}

impl ChannelSlot {
    /// `concurrency`: sends in flight at once; `per_second`: a rate cap.
    pub fn new(channel: Arc<dyn Channel>, concurrency: usize, per_second: Option<f64>) -> Self {
        ChannelSlot {
            channel,
            concurrency: Arc::new(Semaphore::new(concurrency.max(1))),
            rate: per_second.filter(|r| *r > 0.0).map(RateLimiter::new),
        }
    }
}

/// Spaces sends evenly at `per_second`.
struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl RateLimiter {
    fn new(per_second: f64) -> Self {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }
    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A template version ready to send, with what delivery needs to know about it.
struct Prepared {
    compiled: Compiled,
    topic: Option<String>,
    name: String,
    /// The template reads `recommendations` (then each message's are read first).
    recommends: bool,
}

/// Outcomes recorded per transaction at most (and at least every [`FLUSH_AFTER`]).
const FLUSH_EVERY: usize = 32;
const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// Messages a deliverer has handed to their channel, or is handing, without their
/// outcome recorded yet, at most. A delivery waits for room before it sends, and
/// makes room only once its outcome is committed, so a crash (`SIGKILL`, power loss)
/// can leave at most this many messages sent but recorded as unsent — the ones sent
/// again, with the same Message-ID, when their lease runs out — however slow the
/// store is to commit. At least [`FLUSH_EVERY`], so that a full group is flushed.
pub const UNRECORDED_AT_MOST: usize = 2 * FLUSH_EVERY;

pub struct Deliverer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// The channel of each kind, replaceable while running (`set_channel`).
    channels: RwLock<HashMap<String, Arc<ChannelSlot>>>,
    /// What each kind was built with at start, for `reset_channel`.
    defaults: HashMap<String, Arc<ChannelSlot>>,
    /// The stored configuration (as stored: JSON) each kind's channel was built from,
    /// if any, so that reloading an unchanged one keeps its channel (and its open
    /// connections).
    stored: Mutex<HashMap<String, String>>,
    /// Moves whenever a channel is replaced (for caches of what channels say).
    generation: std::sync::atomic::AtomicU64,
    signer: Signer,
    config: DeliveryConfig,
    templates: Mutex<HashMap<(i64, i64), Arc<Prepared>>>,
    wake: Notify,
}

impl Deliverer {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        channels: Vec<ChannelSlot>,
        signer: Signer,
        config: DeliveryConfig,
    ) -> Arc<Self> {
        let defaults: HashMap<String, Arc<ChannelSlot>> = channels
            .into_iter()
            .map(|s| (s.channel.kind().to_string(), Arc::new(s)))
            .collect();
        Arc::new(Deliverer {
            store,
            clock,
            channels: RwLock::new(defaults.clone()),
            defaults,
            stored: Mutex::new(HashMap::new()),
            generation: Default::default(),
            signer,
            config,
            templates: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        })
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    pub fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    fn slot(&self, kind: &str) -> Option<Arc<ChannelSlot>> {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kind)
            .cloned()
    }

    pub fn channel(&self, kind: &str) -> Option<Arc<dyn Channel>> {
        self.slot(kind).map(|s| s.channel.clone())
    }

    pub fn channels(&self) -> Vec<Arc<dyn Channel>> {
        let channels = self.channels.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = channels.values().map(|s| s.channel.clone()).collect();
        all.sort_by_key(|c| c.kind());
        all
    }

    /// Replaces the channel of the slot's kind; messages claimed from now on use it
    /// (sends already under way finish on the old one).
    pub fn set_channel(&self, slot: ChannelSlot) {
        let kind = slot.channel.kind().to_string();
        self.stored.lock().unwrap_or_else(|e| e.into_inner()).remove(&kind);
        self.replace(kind, Arc::new(slot));
    }

    fn replace(&self, kind: String, slot: Arc<ChannelSlot>) {
        self.channels
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind, slot);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Moves whenever a channel of this deliverer is replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Uses `slot`, built from the configuration `stored` (as the database holds
    /// it under [`config::setting_key`]), for the slot's kind.
    pub fn set_stored_channel(&self, stored: &str, slot: ChannelSlot) {
        let kind = slot.channel.kind().to_string();
        self.stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind.clone(), stored.to_string());
        self.replace(kind, Arc::new(slot));
    }

    /// Brings every configurable channel in step with what the database stores now
    /// (at start, and when another process changed it: `nudge_store::live`): a stored
    /// configuration wins over the start-up settings; none means the start-up
    /// settings; one that no longer builds is reported and the start-up settings are
    /// used. A kind whose stored configuration did not change keeps its channel.
    pub async fn reload_channels(&self) -> Result<(), nudge_store::StoreError> {
        for kind in config::CONFIGURABLE {
            let stored = self.store.setting(&config::setting_key(kind)).await?;
            self.apply_stored(kind, stored.as_deref());
        }
        Ok(())
    }

    fn apply_stored(&self, kind: &str, stored: Option<&str>) {
        let applied = self.stored.lock().unwrap_or_else(|e| e.into_inner()).get(kind).cloned();
        if applied.as_deref() == stored && (stored.is_some() || self.is_default(kind)) {
            return;
        }
        let Some(raw) = stored else {
            tracing::info!(kind, "channel back to the start-up settings");
            self.reset_channel(kind);
            return;
        };
        let built = serde_json::from_str::<config::ChannelConfig>(raw)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                c.build(kind, self.public_url())
                    .map_err(|e| format!("{}: {}", e.field, e.message))
            });
        match built {
            Ok(slot) => {
                tracing::info!(
                    kind,
                    transport = slot.channel.transport(),
                    "using the channel configured through the API"
                );
                self.set_stored_channel(raw, slot);
            }
            Err(e) => {
                tracing::error!(kind, error = %e, "the channel configured through the API is invalid; using the start-up settings");
                self.reset_channel(kind);
                // Reported once, not at every reload.
                self.stored
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(kind.to_string(), raw.to_string());
            }
        }
    }

    /// Whether `kind` still uses the channel it was started with.
    pub fn is_default(&self, kind: &str) -> bool {
        match (self.slot(kind), self.defaults.get(kind)) {
            (Some(now), Some(start)) => Arc::ptr_eq(&now, start),
            _ => false,
        }
    }

    pub fn public_url(&self) -> &str {
        &self.config.public_url
    }

    /// Goes back to the channel `kind` was started with; `false` if there was none.
    pub fn reset_channel(&self, kind: &str) -> bool {
        self.stored.lock().unwrap_or_else(|e| e.into_inner()).remove(kind);
        let Some(default) = self.defaults.get(kind).cloned() else {
            return false;
        };
        self.replace(kind.to_string(), default);
        true
    }

    /// Something was queued: deliver without waiting for the idle timer.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers until `stop` resolves: at once while messages are due, otherwise
    /// when woken, when the next message is due, or after `idle` (the loop:
    /// [`nudge_worker::run_worker`]).
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let this = &self;
        let config = WorkerConfig::new("delivery", this.config.idle);
        run_worker(config, &this.wake, stop, move || async move {
            if this.clone().run_once().await? > 0 {
                return Ok(Outcome::Busy);
            }
            let next = this.store.next_message_due().await?;
            Ok::<_, nudge_store::StoreError>(Outcome::idle_until(next, this.clock.now()))
        })
        .await
    }

    /// One round: claim due messages, deliver them concurrently (within each
    /// channel's limits), record the outcomes in one transaction. Returns how many
    /// messages were handled.
    pub async fn run_once(self: Arc<Self>) -> Result<usize, nudge_store::StoreError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_messages(now, self.config.batch, self.config.lease.as_millis() as i64)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let n = claimed.len();
        let unrecorded = Arc::new(Semaphore::new(UNRECORDED_AT_MOST));
        let mut tasks = tokio::task::JoinSet::new();
        for m in claimed {
            let this = self.clone();
            let unrecorded = unrecorded.clone();
            tasks.spawn(async move {
                // Never closed: acquiring only waits.
                let room = unrecorded.acquire_owned().await.ok();
                (this.deliver(m).await, room)
            });
        }
        // Outcomes are recorded as they come, in small groups, and a delivery's room
        // (`UNRECORDED_AT_MOST`) is given back only once its outcome is committed.
        let mut updates = Vec::with_capacity(FLUSH_EVERY);
        let mut rooms = Vec::with_capacity(FLUSH_EVERY);
        let mut last_flush = tokio::time::Instant::now();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((u, room)) => {
                    updates.push(u);
                    rooms.push(room);
                }
                // A panic in one delivery: the message's lease runs out and it is retried.
                Err(e) => tracing::error!(error = %e, "a delivery task failed"),
            }
            if updates.len() >= FLUSH_EVERY || last_flush.elapsed() >= FLUSH_AFTER {
                let (t, k) = (std::time::Instant::now(), updates.len());
                self.store
                    .update_messages(std::mem::take(&mut updates), self.clock.now())
                    .await?;
                rooms.clear();
                tracing::debug!(
                    outcomes = k,
                    ms = t.elapsed().as_secs_f64() * 1e3,
                    "recorded delivery outcomes"
                );
                last_flush = tokio::time::Instant::now();
            }
        }
        if !updates.is_empty() {
            self.store.update_messages(updates, self.clock.now()).await?;
        }
        Ok(n)
    }

    async fn prepared(&self, template: i64, version: i64) -> Result<Arc<Prepared>, String> {
        if let Some(p) = self
            .templates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(template, version))
        {
            return Ok(p.clone());
        }
        let meta = self.store.template(template).await.map_err(|e| e.to_string())?;
        let Some(meta) = meta else {
            return Err("the template was deleted".into());
        };
        let v = self
            .store
            .template_version(template, version)
            .await
            .map_err(|e| e.to_string())?;
        let Some(v) = v else {
            return Err(format!("version {version} of the template does not exist"));
        };
        let recommends = template::reads_recommendations(&v.content);
        let content: Content =
            serde_json::from_value(v.content).map_err(|e| format!("stored template content is invalid: {e}"))?;
        let compiled = template::compile(&content)
            .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
        let p = Arc::new(Prepared {
            compiled,
            topic: meta.topic,
            name: meta.name,
            recommends,
        });
        self.templates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((template, version), p.clone());
        Ok(p)
    }

    fn backoff(&self, attempts: i64) -> Duration {
        let factor = 2u32.saturating_pow(attempts.clamp(0, 20) as u32);
        (self.config.backoff * factor).min(self.config.max_backoff)
    }

    async fn deliver(&self, m: Message) -> MessageUpdate {
        let t0 = std::time::Instant::now();
        let u = self.deliver_inner(m).await;
        tracing::trace!(ms = t0.elapsed().as_secs_f64() * 1e3, "delivered one");
        u
    }

    async fn deliver_inner(&self, m: Message) -> MessageUpdate {
        let update = |state: MessageState, error: Option<String>| MessageUpdate {
            id: m.id,
            state,
            retry_at: None,
            recipient: None,
            error,
            rendered: None,
            suppress: None,
            provider_id: None,
        };
        let contact = match self.store.contact(m.contact_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return update(MessageState::Failed, Some("the contact no longer exists".into())),
            Err(e) => {
                let mut u = update(MessageState::Queued, Some(format!("storage: {e}")));
                u.retry_at = Some(self.clock.now() + self.backoff(m.attempts).as_millis() as Millis);
                return u;
            }
        };
        let prepared = match self.prepared(m.template_id, m.template_version).await {
            Ok(p) => p,
            Err(e) => return update(MessageState::Failed, Some(e)),
        };
        let Some(slot) = self.slot(&m.channel) else {
            return update(
                MessageState::Failed,
                Some(format!("no {} channel is configured", m.channel)),
            );
        };
        let address = match m.channel.as_str() {
            "email" => contact.email.clone(),
            "sms" => contact.phone.clone(),
            _ => None,
        };
        if let Err(reason) = crate::consent::check(&contact, &m.channel, prepared.topic.as_deref(), m.transactional) {
            return update(MessageState::Suppressed, Some(reason));
        }
        // Push goes to every browser the contact subscribed with.
        let mut push_targets = Vec::new();
        if m.channel == "push" {
            let subscriptions = match self.store.push_subscriptions(contact.id).await {
                Ok(s) => s,
                Err(e) => {
                    let mut u = update(MessageState::Queued, Some(format!("storage: {e}")));
                    u.retry_at = Some(self.clock.now() + self.backoff(m.attempts).as_millis() as Millis);
                    return u;
                }
            };
            for s in subscriptions {
                match PushTarget::parse(&s.endpoint, &s.p256dh, &s.auth) {
                    Ok(t) => push_targets.push(t),
                    Err(e) => {
                        tracing::warn!(endpoint = %s.endpoint, error = %e.message, "skipping an unusable push subscription")
                    }
                }
            }
            if push_targets.is_empty() {
                return update(
                    MessageState::Suppressed,
                    Some("the contact has no push subscription".into()),
                );
            }
        }
        if matches!(m.channel.as_str(), "email" | "sms") {
            let Some(addr) = &address else {
                let what = if m.channel == "email" {
                    "email address"
                } else {
                    "phone number"
                };
                return update(MessageState::Suppressed, Some(format!("the contact has no {what}")));
            };
            match self.store.suppression(&m.channel, addr).await {
                Ok(Some(s)) => {
                    let mut u = update(
                        MessageState::Suppressed,
                        Some(format!("{addr} is suppressed ({})", s.reason)),
                    );
                    u.recipient = address.clone();
                    return u;
                }
                Ok(None) => {}
                Err(e) => {
                    let mut u = update(MessageState::Queued, Some(format!("storage: {e}")));
                    u.retry_at = Some(self.clock.now() + self.backoff(m.attempts).as_millis() as Millis);
                    return u;
                }
            }
        }
        let base = &self.config.public_url;
        let marketing = !m.transactional;
        let unsubscribe_url = self.signer.url(base, Purpose::Unsubscribe, m.id, 0);
        let preferences_url = self.signer.url(base, Purpose::Preferences, m.id, 0);
        let mut data = RenderData {
            contact: contact_data(&contact),
            event: m.data.get("event").cloned().unwrap_or(Value::Null),
            workspace: self.config.workspace.clone(),
            message: json!({"id": m.id, "template": prepared.name}),
            extra: serde_json::Map::new(),
        };
        data.extra
            .insert("data".into(), m.data.get("data").cloned().unwrap_or(Value::Null));
        if prepared.recommends {
            match recommendations_data(&*self.store, contact.id, &data.event).await {
                Ok(r) => {
                    data.extra.insert("recommendations".into(), r);
                }
                Err(e) => {
                    let mut u = update(MessageState::Queued, Some(format!("storage: {e}")));
                    u.retry_at = Some(self.clock.now() + self.backoff(m.attempts).as_millis() as Millis);
                    return u;
                }
            }
        }
        data.extra
            .insert("unsubscribe_url".into(), Value::String(unsubscribe_url.clone()));
        data.extra
            .insert("preferences_url".into(), Value::String(preferences_url.clone()));
        // A double opt-in confirmation (see the subscriptions API) links to the
        // confirmation page for the subscription it asks about.
        if m.data.get("confirm").is_some_and(Value::is_string) {
            data.extra.insert(
                "confirm_url".into(),
                Value::String(self.signer.url(base, Purpose::Confirm, m.id, 0)),
            );
        }
        let rendered = match prepared.compiled.render(&data) {
            Ok(r) => r,
            Err(e) => return update(MessageState::Failed, Some(format!("rendering: {e}"))),
        };
        let tracking = Tracking {
            base,
            signer: &self.signer,
            opens: self.config.track_opens,
            clicks: self.config.track_clicks,
        };
        let (content, links, headers) = decorate(&tracking, m.id, marketing, rendered);
        let to = match (&content, &address) {
            (Rendered::Webhook { url, .. }, _) => url.clone(),
            (_, Some(a)) => a.clone(),
            (_, None) => String::new(),
        };
        let outgoing = Outgoing {
            message_id: m.id,
            idempotency_key: m.idempotency_key.clone(),
            to: to.clone(),
            push: None,
            content,
            headers,
        };
        if m.channel == "push" {
            return self
                .send_push(&m, &slot, outgoing, push_targets, update(MessageState::Sent, None))
                .await;
        }
        let record = if slot.channel.captures() {
            let mut v = serde_json::to_value(&outgoing.content).unwrap_or(Value::Null);
            v["to"] = Value::String(to.clone());
            v["headers"] = json!(outgoing.headers);
            v["links"] = json!(links);
            v
        } else {
            match &outgoing.content {
                Rendered::Email { subject, .. } => json!({"subject": subject, "links": links}),
                Rendered::Sms { body } => json!({"body": body}),
                Rendered::Webhook { method, url, .. } => json!({"method": method, "url": url}),
                _ => json!({}),
            }
        };
        let result = {
            let _permit = slot.concurrency.acquire().await;
            if let Some(rate) = &slot.rate {
                rate.wait().await;
            }
            slot.channel.send(&outgoing).await
        };
        let mut u = update(MessageState::Sent, None);
        u.recipient = Some(to).filter(|t| !t.is_empty());
        u.rendered = Some(record);
        match result {
            Ok(provider_id) => {
                u.provider_id = provider_id;
                // An HTTP endpoint that answered 2xx has the message: nothing further
                // will report on it.
                if slot.channel.confirms_delivery() {
                    u.state = MessageState::Delivered;
                }
            }
            Err(SendError::Transient(e)) if m.attempts + 1 < self.config.max_attempts => {
                u.state = MessageState::Queued;
                u.retry_at = Some(self.clock.now() + self.backoff(m.attempts).as_millis() as Millis);
                u.error = Some(e);
            }
            Err(SendError::Transient(e)) => {
                u.state = MessageState::Failed;
                u.error = Some(format!("gave up after {} attempts: {e}", m.attempts + 1));
            }
            Err(SendError::Permanent(e)) => {
                u.state = MessageState::Failed;
                u.error = Some(e);
            }
            Err(SendError::Bounce(e)) => {
                u.state = MessageState::Bounced;
                u.error = Some(e);
                u.suppress = Some("hard_bounce".into());
            }
        }
        u
    }
}

impl Deliverer {
    /// Sends a push message to each of the contact's subscriptions. The message is
    /// `sent` if at least one push service accepted it; subscriptions a push service
    /// says are gone (404, 410) are deleted. Otherwise the most hopeful outcome
    /// decides: a temporary error retries (only the subscriptions still stored),
    /// a permanent one fails, and if every subscription is gone the message bounces.
    async fn send_push(
        &self,
        m: &Message,
        slot: &ChannelSlot,
        mut outgoing: Outgoing,
        targets: Vec<PushTarget>,
        mut u: MessageUpdate,
    ) -> MessageUpdate {
        let mut sent = Vec::new();
        let mut results = Vec::new();
        let (mut transient, mut permanent, mut gone) = (None, None, None);
        for target in targets {
            outgoing.to = target.endpoint.clone();
            outgoing.push = Some(target);
            let result = {
                let _permit = slot.concurrency.acquire().await;
                if let Some(rate) = &slot.rate {
                    rate.wait().await;
                }
                slot.channel.send(&outgoing).await
            };
            let endpoint = outgoing.to.clone();
            let (outcome, error) = match result {
                Ok(_) => {
                    if let Err(e) = self.store.push_subscription_used(&endpoint, self.clock.now()).await {
                        tracing::warn!(error = %e, "could not record a push subscription's use");
                    }
                    sent.push(endpoint.clone());
                    ("sent", None)
                }
                Err(SendError::Bounce(e)) => {
                    // Never used again: a gone subscription does not come back.
                    if let Err(err) = self.store.remove_push_subscription(&endpoint).await {
                        tracing::warn!(error = %err, "could not remove a gone push subscription");
                    }
                    gone.get_or_insert(e.clone());
                    ("gone", Some(e))
                }
                Err(SendError::Transient(e)) => {
                    transient.get_or_insert(e.clone());
                    ("retry", Some(e))
                }
                Err(SendError::Permanent(e)) => {
                    permanent.get_or_insert(e.clone());
                    ("failed", Some(e))
                }
            };
            results.push(json!({"endpoint": endpoint, "outcome": outcome, "error": error}));
        }
        let title = match &outgoing.content {
            Rendered::Push { title, .. } => title.clone(),
            _ => String::new(),
        };
        u.rendered = Some(json!({"title": title, "subscriptions": results}));
        u.recipient = sent.first().or(Some(&outgoing.to)).cloned();
        if !sent.is_empty() {
            return u;
        }
        match (transient, permanent, gone) {
            (Some(e), _, _) if m.attempts + 1 < self.config.max_attempts => {
                u.state = MessageState::Queued;
                u.retry_at = Some(self.clock.now() + self.backoff(m.attempts).as_millis() as Millis);
                u.error = Some(e);
            }
            (Some(e), _, _) => {
                u.state = MessageState::Failed;
                u.error = Some(format!("gave up after {} attempts: {e}", m.attempts + 1));
            }
            (None, Some(e), _) => {
                u.state = MessageState::Failed;
                u.error = Some(e);
            }
            (None, None, gone) => {
                u.state = MessageState::Bounced;
                u.error = gone;
            }
        }
        u
    }
}

/// Where tracking links point and which ones to add.
pub struct Tracking<'a> {
    pub base: &'a str,
    pub signer: &'a Signer,
    pub opens: bool,
    pub clicks: bool,
}

/// Makes a rendered message ready to leave: for email, the unsubscribe footer and
/// headers (marketing only), click-tracking links and the open pixel. Returns the
/// message, the original URLs of the tracked links (link *i* is `links[i]`) and the
/// extra headers. Pure.
pub fn decorate(
    t: &Tracking<'_>,
    message_id: i64,
    marketing: bool,
    rendered: Rendered,
) -> (Rendered, Vec<String>, Vec<(String, String)>) {
    let base = t.base;
    let unsubscribe_url = t.signer.url(base, Purpose::Unsubscribe, message_id, 0);
    let preferences_url = t.signer.url(base, Purpose::Preferences, message_id, 0);
    match rendered {
        Rendered::Email {
            subject,
            from,
            reply_to,
            html,
            text,
        } => {
            let (html, text) = if marketing {
                with_unsubscribe_footer(html, text, &unsubscribe_url, &preferences_url)
            } else {
                (html, text)
            };
            let (html, links) = if t.clicks {
                links::rewrite_links(&html, |i, url| {
                    (!url.starts_with(base)).then(|| t.signer.url(base, Purpose::Click, message_id, i as u32))
                })
            } else {
                (html, Vec::new())
            };
            let html = if t.opens {
                links::add_pixel(&html, &t.signer.url(base, Purpose::Open, message_id, 0))
            } else {
                html
            };
            let headers = if marketing {
                vec![
                    ("List-Unsubscribe".to_string(), format!("<{unsubscribe_url}>")),
                    (
                        "List-Unsubscribe-Post".to_string(),
                        "List-Unsubscribe=One-Click".to_string(),
                    ),
                ]
            } else {
                Vec::new()
            };
            (
                Rendered::Email {
                    subject,
                    from,
                    reply_to,
                    html,
                    text,
                },
                links,
                headers,
            )
        }
        other => (other, Vec::new(), Vec::new()),
    }
}

/// `contact` in templates.
/// What a template sees as `recommendations` for a contact and the event that
/// triggered the message (`nudge_core::recommend::template_data`): two reads, the
/// contact's recent product events and the lists they and the event's products need.
pub async fn recommendations_data(
    store: &dyn Store,
    contact: nudge_core::ContactId,
    event: &Value,
) -> nudge_store::Result<Value> {
    use nudge_core::recommend;
    let touches = store.contact_touches(contact, RECENT_TOUCHES).await?;
    let named = recommend::products_named(
        event.get("properties").unwrap_or(&Value::Null),
        recommend::MAX_EVENT_PRODUCTS,
    );
    let inputs = store
        .recommendation_inputs(&recommend::template_seeds(&touches, &named))
        .await?;
    Ok(recommend::template_data(&touches, &named, &inputs))
}

/// A contact's product events read for their recommendations.
pub const RECENT_TOUCHES: usize = 200;

pub fn contact_data(c: &Contact) -> Value {
    json!({
        "id": c.id,
        "user_id": c.user_id,
        "email": c.email,
        "phone": c.phone,
        "traits": c.traits,
        "subscriptions": c.subscriptions,
    })
}

/// Marketing email always carries an unsubscribe link: a footer is added when the
/// template does not place `{{ unsubscribe_url }}` itself.
fn with_unsubscribe_footer(html: String, text: String, unsubscribe: &str, preferences: &str) -> (String, String) {
    let html = if html.contains(unsubscribe) {
        html
    } else {
        let footer = format!(
            "<div style=\"font-size:12px;color:#666;text-align:center;padding:16px\">\
             <a href=\"{unsubscribe}\" data-nudge-track=\"off\" style=\"color:#666\">Unsubscribe</a> · \
             <a href=\"{preferences}\" data-nudge-track=\"off\" style=\"color:#666\">Email preferences</a></div>"
        );
        match html.to_ascii_lowercase().rfind("</body>") {
            Some(at) => format!("{}{footer}{}", &html[..at], &html[at..]),
            None => format!("{html}{footer}"),
        }
    };
    let text = if text.contains(unsubscribe) {
        text
    } else {
        format!("{text}\n\n--\nUnsubscribe: {unsubscribe}\nEmail preferences: {preferences}\n")
    };
    (html, text)
}
