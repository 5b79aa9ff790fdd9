//! The campaign engine: takes each sent campaign from its start to its end. A round,
//! per scheduled or sending campaign: start it when its time comes; take the next
//! page of the audience snapshot (bounded, so the single SQLite writer is never held
//! long and the audience is never in memory); choose the test's winner when the test
//! ends; queue the messages that are due (within the throttle, deferring or skipping
//! recipients the frequency caps hold back); complete it when nobody is pending.

use nudge_core::campaign::stats::{self, Arm};
use nudge_core::campaign::{self, CampaignDefinition, CampaignStatus, Group, Schedule};
use nudge_core::journey::{FrequencyCap, next_allowed_send};
use nudge_core::protocol::{IdempotencyKey, MessageOrigin};
use nudge_core::{Clock, ContactId, Millis};
use nudge_store::{Campaign, NewMessage, NewRecipient, RecipientOutcome, Store, Template};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct CampaignEngineConfig {
    /// Audience members stored per snapshot transaction (20,000: a recipient row is
    /// cheap, so a page is still a short transaction, and a million take 50 of them).
    pub snapshot_page: usize,
    /// Messages queued per transaction (5,000: ~0.1 s of the SQLite writer, a
    /// million in ~200 transactions; BENCHMARKS.md, "Campaigns").
    pub batch: usize,
    /// Sleep when idle (woken earlier by [`CampaignEngine::wake`]).
    pub idle: Duration,
    /// The time zone of contacts without one (IANA name), for local-time schedules.
    pub time_zone: String,
}

impl Default for CampaignEngineConfig {
    fn default() -> Self {
        Self {
            snapshot_page: 20_000,
            batch: 5_000,
            idle: Duration::from_millis(1_000),
            time_zone: "UTC".into(),
        }
    }
}

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CampaignRound {
    /// Recipients stored by the snapshot.
    pub snapshot: usize,
    /// Messages queued.
    pub queued: usize,
    pub deferred: usize,
    pub skipped: usize,
    /// Campaigns started, tests decided, campaigns completed.
    pub moves: usize,
    /// When the next campaign work is due (a start, a deferred or delayed recipient,
    /// a test's end, the throttle).
    pub next_due: Option<Millis>,
}

impl CampaignRound {
    pub fn busy(&self) -> bool {
        self.snapshot + self.queued + self.deferred + self.skipped + self.moves > 0
    }
}

pub struct CampaignEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: CampaignEngineConfig,
    wake: Notify,
    /// Called after messages were queued (wakes the delivery worker).
    on_messages: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// Each throttled campaign's token bucket. Kept per process: a restart starts
    /// with a full bucket (one minute's worth), and on PostgreSQL each node's engine
    /// has its own.
    throttles: Mutex<HashMap<i64, campaign::Throttle>>,
}

impl CampaignEngine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: CampaignEngineConfig) -> Arc<Self> {
        Arc::new(CampaignEngine {
            store,
            clock,
            config,
            wake: Notify::new(),
            on_messages: Mutex::new(None),
            throttles: Mutex::new(HashMap::new()),
        })
    }

    /// Something changed (a campaign sent, paused, resumed): work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// `f` is called whenever a round queued messages.
    pub fn on_messages(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.on_messages.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(f));
    }

    fn notify_messages(&self) {
        if let Some(f) = self.on_messages.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            f();
        }
    }

    /// Runs rounds until `stop` resolves: at once while busy, otherwise when woken,
    /// when the next work is due, or after `idle`.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let this = &*self;
        let config = nudge_worker::WorkerConfig::new("campaign engine", this.config.idle);
        nudge_worker::run_worker(config, &this.wake, stop, move || async move {
            let round = this.run_once().await?;
            if round.busy() {
                return Ok(nudge_worker::Outcome::Busy);
            }
            Ok::<_, nudge_store::StoreError>(nudge_worker::Outcome::idle_until(round.next_due, this.clock.now()))
        })
        .await
    }

    /// One round over every scheduled or sending campaign.
    pub async fn run_once(&self) -> nudge_store::Result<CampaignRound> {
        let mut round = CampaignRound::default();
        let mut caps: Option<Vec<FrequencyCap>> = None;
        let mut failed = None;
        for c in self.store.active_campaigns().await? {
            // One campaign's failure does not hold up the others; the round reports
            // it after them, so the loop backs off and tries again.
            if let Err(e) = self.advance(&c, &mut round, &mut caps).await {
                tracing::error!(campaign = c.id, error = %e, "campaign round failed");
                failed.get_or_insert(e);
            }
        }
        if round.queued > 0 {
            self.notify_messages();
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(round),
        }
    }

    /// One step of one campaign: start, a snapshot page, the winner, or due messages
    /// and completion.
    async fn advance(
        &self,
        c: &Campaign,
        round: &mut CampaignRound,
        caps: &mut Option<Vec<FrequencyCap>>,
    ) -> nudge_store::Result<()> {
        let now = self.clock.now();
        let def = match campaign::parse_campaign(&c.definition) {
            Ok(d) => d,
            Err(problems) => {
                tracing::error!(
                    campaign = c.id,
                    ?problems,
                    "a sent campaign's definition does not read; it waits"
                );
                return Ok(());
            }
        };
        let (Some(start), Some(schedule)) = (c.start_at, c.schedule.as_ref()) else {
            tracing::error!(campaign = c.id, "a sent campaign has no schedule; it waits");
            return Ok(());
        };
        if c.status == CampaignStatus::Scheduled {
            if now < start {
                round.due(start);
                return Ok(());
            }
            if self
                .store
                .set_campaign_status(c.id, CampaignStatus::Scheduled, CampaignStatus::Sending, None, now)
                .await?
                .is_some()
            {
                round.moves += 1;
            }
            return Ok(());
        }
        if !c.snapshot_done {
            return self.snapshot(c, &def, schedule, start, now, round).await;
        }
        let decided = def.test.is_none() || c.winner.is_some();
        if !decided && let Some(end) = c.test_ends_at {
            if now >= end {
                self.choose_winner(c, &def, now).await?;
                round.moves += 1;
                return Ok(());
            }
            round.due(end);
        }
        self.queue_due(c, &def, decided, now, round, caps).await?;
        let Some(after) = self.store.campaign(c.id).await? else {
            return Ok(());
        };
        if decided && after.pending() == 0 {
            if self
                .store
                .set_campaign_status(c.id, CampaignStatus::Sending, CampaignStatus::Completed, None, now)
                .await?
                .is_some()
            {
                round.moves += 1;
            }
        } else if let Some(due) = self.store.next_campaign_due(c.id, decided).await? {
            round.due(due.max(now + 1));
        }
        Ok(())
    }

    /// Stores the next page of the audience snapshot (or marks it complete).
    async fn snapshot(
        &self,
        c: &Campaign,
        def: &CampaignDefinition,
        schedule: &Schedule,
        start: Millis,
        now: Millis,
        round: &mut CampaignRound,
    ) -> nudge_store::Result<()> {
        let local = matches!(schedule, Schedule::LocalTime { .. }) || def.quiet_hours.is_some();
        let page = self
            .store
            .campaign_audience_page(
                def.audience.clone(),
                c.snapshot_cursor,
                self.config.snapshot_page,
                local,
            )
            .await?;
        let Some(cursor) = page.cursor else {
            let test_ends = def.test.as_ref().map(|t| now + t.duration.as_millis());
            self.store
                .add_campaign_recipients(c.id, vec![], c.snapshot_cursor, Some(test_ends), now)
                .await?;
            round.moves += 1;
            return Ok(());
        };
        let workspace = zone(&self.config.time_zone);
        // Each member's send-time estimate, for a campaign sent at each one's best time.
        let estimates: HashMap<ContactId, nudge_core::send_time::Estimate> = match &def.best_time {
            Some(_) => {
                let ids: Vec<ContactId> = page.members.iter().map(|m| m.contact_id).collect();
                let mut profiles: HashMap<ContactId, nudge_core::send_time::Profile> =
                    self.store.send_time_profiles(&ids).await?.into_iter().collect();
                let all = self.store.send_time_state().await?.workspace;
                ids.iter()
                    .map(|&id| {
                        let p = profiles.remove(&id).unwrap_or_default();
                        (id, nudge_core::send_time::estimate(&p, &all, now))
                    })
                    .collect()
            }
            None => HashMap::new(),
        };
        let rows: Vec<NewRecipient> = page
            .members
            .iter()
            .map(|m| {
                let tz = m.time_zone.as_deref().map(zone).unwrap_or_else(|| workspace.clone());
                let group = campaign::assign(c.id, m.contact_id, def);
                let (variant, holdout) = match group {
                    Group::Variant(v) => (Some(v), false),
                    Group::Remainder => (None, false),
                    Group::Holdout => (None, true),
                };
                let delay = variant.map_or(0, |v| def.delay_ms(v as usize));
                let mut due = campaign::due_at(schedule, start, &tz, delay);
                if let Some(q) = &def.quiet_hours {
                    due = next_allowed_send(due, &tz, Some(q), None, &[], None, &[]).0;
                }
                if let (Some(best), Some(e)) = (&def.best_time, estimates.get(&m.contact_id)) {
                    due = campaign::best_due(due, best, e, &tz, def.quiet_hours.as_ref());
                }
                NewRecipient {
                    contact_id: m.contact_id,
                    variant,
                    holdout,
                    due_at: (!holdout).then_some(due),
                }
            })
            .collect();
        round.snapshot += rows.len().max(1);
        self.store.add_campaign_recipients(c.id, rows, cursor, None, now).await
    }

    /// Chooses the test's winner from the counters by the campaign's rule.
    async fn choose_winner(&self, c: &Campaign, def: &CampaignDefinition, now: Millis) -> nudge_store::Result<()> {
        let Some(test) = &def.test else { return Ok(()) };
        let counters = self.store.campaign_stats(c.id).await?;
        let arms: Vec<Arm> = (0..def.variants.len())
            .map(|v| campaign::arm(test.metric, |c| counters.get(v as u8, c)))
            .collect();
        let decision = match stats::decide(test.metric, test.rule, test.fallback, &arms, None) {
            Ok(d) => d,
            Err(e) => {
                // Counters that contradict themselves: the control, and the reason.
                tracing::error!(campaign = c.id, error = %e, "the test's counters do not add up; the control wins");
                let record = json!({"decided_by": {"by": "error", "error": e.to_string()}, "at": now});
                self.store.set_campaign_winner(c.id, 0, record, now).await?;
                return Ok(());
            }
        };
        let winner = u8::try_from(decision.winner).unwrap_or(0);
        tracing::info!(campaign = c.id, winner, by = ?decision.decided_by, "test decided");
        let record = json!({"decided_by": decision.decided_by, "decision": decision, "at": now});
        self.store.set_campaign_winner(c.id, winner, record, now).await?;
        Ok(())
    }

    /// Queues the messages that are due (within the throttle), deferring or skipping
    /// recipients the workspace's frequency caps hold back.
    async fn queue_due(
        &self,
        c: &Campaign,
        def: &CampaignDefinition,
        decided: bool,
        now: Millis,
        round: &mut CampaignRound,
        caps: &mut Option<Vec<FrequencyCap>>,
    ) -> nudge_store::Result<()> {
        let allowance = match def.throttle_per_hour {
            None => u64::MAX,
            Some(per_hour) => {
                let mut throttles = self.throttles.lock().unwrap_or_else(|e| e.into_inner());
                let bucket = throttles
                    .entry(c.id)
                    .or_insert_with(|| campaign::Throttle::new(per_hour, now));
                let available = bucket.available(now);
                if available == 0 {
                    round.due(bucket.next_at());
                    return Ok(());
                }
                available
            }
        };
        let limit = self.config.batch.min(allowance.min(usize::MAX as u64) as usize);
        let due = self
            .store
            .due_campaign_recipients(c.id, def.audience.clone(), now, decided, limit)
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        if caps.is_none() {
            *caps = Some(crate::journeys::frequency_caps(&*self.store).await?);
        }
        let caps = caps.as_deref().unwrap_or_default();
        let mut templates: HashMap<i64, Template> = HashMap::new();
        let mut outcomes = Vec::with_capacity(due.len());
        for r in due {
            // Who left the audience since the snapshot (or was erased) gets nothing.
            if !r.in_audience {
                outcomes.push(RecipientOutcome::Skip {
                    contact_id: r.contact_id,
                    reason: "left_audience".into(),
                });
                continue;
            }
            let Some(variant) = r.variant.or(c.winner) else {
                continue;
            };
            let Some(&(template_id, version)) = c.templates.get(variant as usize) else {
                outcomes.push(RecipientOutcome::Skip {
                    contact_id: r.contact_id,
                    reason: format!("variant {variant} has no template"),
                });
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(e) = templates.entry(template_id) {
                match self.store.template(template_id).await? {
                    Some(t) => {
                        e.insert(t);
                    }
                    None => {
                        outcomes.push(RecipientOutcome::Skip {
                            contact_id: r.contact_id,
                            reason: format!("template {template_id} was deleted"),
                        });
                        continue;
                    }
                }
            }
            let channel = templates[&template_id].channel.clone();
            if !caps.is_empty() {
                let sent = crate::journeys::recent_sends(&*self.store, r.contact_id, now, caps).await?;
                let (at, _) = next_allowed_send(now, &jiff::tz::TimeZone::UTC, None, None, caps, Some(&channel), &sent);
                if at > now {
                    outcomes.push(if at - r.due_at > def.cap_defer_limit_ms() {
                        RecipientOutcome::Skip {
                            contact_id: r.contact_id,
                            reason: "frequency_cap".into(),
                        }
                    } else {
                        RecipientOutcome::Defer {
                            contact_id: r.contact_id,
                            until: at,
                        }
                    });
                    continue;
                }
            }
            let variant_name = def.variants.get(variant as usize).map(|v| v.name.clone());
            outcomes.push(RecipientOutcome::Queue(NewMessage {
                idempotency_key: IdempotencyKey::campaign(c.id, r.contact_id).into_string(),
                contact_id: r.contact_id,
                template_id,
                template_version: version,
                channel,
                transactional: false,
                data: json!({"data": {"campaign": {"id": c.id, "name": c.name, "variant": variant_name}}}),
                origin: Some(MessageOrigin::Campaign {
                    campaign_id: c.id,
                    variant,
                }),
            }));
        }
        let mut queued = 0;
        for o in &outcomes {
            match o {
                RecipientOutcome::Queue(_) => queued += 1,
                RecipientOutcome::Defer { .. } => round.deferred += 1,
                RecipientOutcome::Skip { .. } => round.skipped += 1,
            }
        }
        round.queued += queued;
        if let Some(bucket) = self.throttles.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&c.id) {
            bucket.take(queued as u64);
        }
        self.store.record_campaign_outcomes(c.id, outcomes, now).await
    }
}

impl CampaignRound {
    fn due(&mut self, at: Millis) {
        self.next_due = Some(self.next_due.map_or(at, |d| d.min(at)));
    }
}

/// A time zone by name; UTC for a name that does not resolve.
fn zone(name: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(name).unwrap_or(jiff::tz::TimeZone::UTC)
}
