//! `nudge bench reports`: the report queries on a SQLite workspace holding
//! `--events` (10,000,000) message events, through the application layer the HTTP
//! handlers and the web UI call (`App::campaign_report`, `App::workspace_report`).
//!
//! The workspace is generated once into `--data-dir` (kept, and reused when it holds
//! a finished one; by default a temporary directory removed at the end) through
//! Nudge's write paths, on a manual clock over `--days` (60) days ending at the start
//! of the current hour, hour by hour in time order (as the writes would arrive):
//!
//! 1. `--contacts` contacts imported in bulk (`import_contacts`), their e-mail
//!    addresses at 15 common providers and 400 company domains, a `cohort` (0–99);
//!    the segments Everyone, Half (`cohort < 50`) and Quarter (`cohort < 25`),
//!    computed when saved; nine ready-made journeys (thirteen send steps, one of
//!    them SMS).
//! 2. `--campaigns` campaigns, one every `days / campaigns` days at 09:00 UTC, to the
//!    three audiences in turn, created and sent by `App::create_campaign` and
//!    `App::send_campaign`: every fourth one an A/B test (2 or 3 variants, 20 % of the
//!    audience for 4 hours, click rate) with a 5 % holdout, every fourth two variants
//!    splitting the audience, the rest one variant. The campaign engine's rounds
//!    (`run_once`) queue the messages (`record_campaign_outcomes` → `enqueue_many`).
//! 3. Journey messages every hour of the range (`enqueue_messages` with the journey
//!    step as origin, as a run's send does), as many as the event count needs.
//! 4. Each message is delivered by the delivery worker's store calls one minute after
//!    it is due (`claim_messages`, then `update_messages`: 97.5 % delivered, 2 %
//!    bounced, 0.5 % failed); an e-mail is then opened (45 %; again with probability
//!    0.35 each time) and clicked (a quarter of the openers; more for variant B) over
//!    the following days through `record_message_event`, with the names, properties
//!    and keys of the tracking handlers (`nudge_api::public`), one transaction each,
//!    each in the hour it happens. The last 1 % of the event count: more opens of
//!    journey e-mails, at random times.
//!
//! Then, on the store reopened, each report `--calls` times in turn after 5 warm-up
//! calls: p50, p95, p99 and max.

use crate::bench::percentile;
use anyhow::{Context, bail, ensure};
use clap::Args;
use nudge_app::App;
use nudge_core::campaign::{CampaignStatus, Schedule};
use nudge_core::protocol::{IdempotencyKey, MessageEvent, MessageOrigin};
use nudge_core::{Clock, ManualClock, Millis, SystemClock};
use nudge_engine::{CampaignEngine, CampaignEngineConfig};
use nudge_store::{
    ContactImport, Lookup, Message, MessageState, MessageUpdate, NewCampaign, NewMessage, NewSegment, NewTemplate,
    ReportScope, SqliteStore, Store,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;

/// The setting where a finished fill leaves what it wrote (a workspace without it
/// was not finished).
const SETTING: &str = "bench.reports";

#[derive(Args, Clone)]
pub struct ReportArgs {
    /// Message events to write: queued, delivered / bounced / failed, opened, clicked.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Contacts (campaign audiences: all of them, half, a quarter).
    #[arg(long, default_value_t = 200_000)]
    contacts: usize,
    /// Campaigns, sent at even intervals over the range.
    #[arg(long, default_value_t = 24)]
    campaigns: usize,
    /// Days the messages are spread over, ending at the start of the current hour.
    #[arg(long, default_value_t = 60)]
    days: i64,
    /// Calls per measured report.
    #[arg(long, default_value_t = 300)]
    calls: usize,
    /// Messages whose opens and clicks are recorded concurrently (each event is its
    /// own transaction, as the tracking handlers record it).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Where the workspace is generated, kept and reused when it holds a finished one
    /// (a temporary directory by default, removed at the end).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// E-mail providers by share of addresses (per mille); the rest at company domains.
const PROVIDERS: [(&str, u64); 15] = [
    ("gmail.com", 300),
    ("yahoo.com", 90),
    ("outlook.com", 80),
    ("hotmail.com", 60),
    ("icloud.com", 50),
    ("gmx.de", 30),
    ("web.de", 25),
    ("orange.fr", 20),
    ("free.fr", 15),
    ("libero.it", 12),
    ("aol.com", 10),
    ("proton.me", 8),
    ("yandex.ru", 8),
    ("qq.com", 7),
    ("mail.ru", 5),
];
const COMPANY_DOMAINS: u64 = 400;

/// The e-mail address of generated contact `c{i}`.
fn email(i: u64) -> String {
    let h = i.wrapping_mul(2_654_435_761) % 1_000_003;
    let mut pick = h % 1000;
    for (domain, share) in PROVIDERS {
        if pick < share {
            return format!("c{i}@{domain}");
        }
        pick -= share;
    }
    format!("c{i}@company{}.example", (h / 1000) % COMPANY_DOMAINS)
}

/// The links of every generated message (clicks pick one).
const LINKS: [&str; 3] = [
    "https://shop.example/spring",
    "https://shop.example/new",
    "https://shop.example/account",
];

/// The ready-made journeys installed and the send steps their messages come from,
/// with the template each step sends (all e-mail but `email_then_sms`'s `sms`).
const JOURNEYS: [(&str, &[(&str, &str)]); 9] = [
    (
        "welcome",
        &[
            ("day-0", "welcome-day-0"),
            ("day-2", "welcome-day-2"),
            ("week-2", "welcome-week-2"),
        ],
    ),
    (
        "abandoned_cart",
        &[("reminder", "cart-reminder"), ("recommendation", "cart-recommendation")],
    ),
    ("browse_abandonment", &[("reminder", "browse-reminder")]),
    ("first_purchase_feedback", &[("ask", "first-purchase-nps")]),
    ("cross_sell", &[("suggest", "cross-sell")]),
    ("vip", &[("welcome", "vip-welcome")]),
    ("win_back", &[("offer", "win-back")]),
    (
        "email_then_sms",
        &[("email", "fallback-email"), ("sms", "fallback-sms")],
    ),
    ("birthday", &[("wish", "birthday-coupon")]),
];

/// What the fill wrote, counted from the store's answers, and how long it took.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Filled {
    /// The end of the range (the start of the hour the fill began in).
    end: Millis,
    days: i64,
    contacts: u64,
    /// `Message Queued` events (new messages).
    queued: u64,
    /// `Message Delivered`, `Message Bounced`, `Message Failed` events.
    outcomes: u64,
    /// `Email Opened` and `Email Link Clicked` events.
    opens: u64,
    clicks: u64,
    campaign_messages: u64,
    journey_messages: u64,
    /// Seconds spent in each kind of write (wall clock).
    import_s: f64,
    engine_s: f64,
    journey_enqueue_s: f64,
    delivery_s: f64,
    engagement_s: f64,
    total_s: f64,
    /// The measured campaign (the first: an A/B test to everyone).
    large_campaign: i64,
    /// A one-variant campaign to a quarter of the contacts.
    small_campaign: i64,
}

impl Filled {
    fn events(&self) -> u64 {
        self.queued + self.outcomes + self.opens + self.clicks
    }
}

/// An open (`link: None`) or a click of a delivered message, at `at` (in time order
/// first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Engagement {
    at: Millis,
    message: i64,
    link: Option<usize>,
    template_id: i64,
}

/// Records an open or a click as the tracking handlers do (`nudge_api::public`: the
/// same event name, properties and idempotency key). The benchmark's one call of
/// `MessageStore::record_message_event`, so a change of its signature is a change
/// here only. `true` if the event was new.
async fn record_engagement(store: &dyn Store, e: &Engagement) -> nudge_store::Result<bool> {
    let (event, key) = match e.link {
        None => (MessageEvent::Opened, format!("open-{}-{}", e.message, e.at / MINUTE)),
        Some(index) => (
            MessageEvent::Clicked {
                link: index as u32,
                url: LINKS[index % LINKS.len()].to_string(),
            },
            format!("click-{}-{index}-{}", e.message, e.at),
        ),
    };
    store.record_message_event(e.message, &event, key, e.at).await
}

/// An exponentially distributed delay with this mean.
fn delay(rng: &mut StdRng, mean: Millis) -> Millis {
    let u: f64 = rng.random();
    (-(mean as f64) * (1.0 - u).ln()) as Millis
}

/// The opens and clicks of a message delivered at `at`, none at or after `end`:
/// opened with probability 0.45 (again, at least a minute later, with probability
/// 0.35 each time), clicked by `click` of the openers (again with probability 0.3).
fn engagement(rng: &mut StdRng, message: &Message, at: Millis, click: f64, end: Millis) -> Vec<Engagement> {
    let mut out = Vec::new();
    if !rng.random_bool(0.45) {
        return out;
    }
    let event = |link, at| Engagement {
        message: message.id,
        template_id: message.template_id,
        link,
        at,
    };
    let first_open = at + MINUTE + delay(rng, 6 * HOUR);
    let mut t = first_open;
    loop {
        out.push(event(None, t));
        if !rng.random_bool(0.35) {
            break;
        }
        t += MINUTE + delay(rng, 12 * HOUR);
    }
    if rng.random_bool(click) {
        let mut t = first_open + 1_000 + delay(rng, 5 * MINUTE);
        loop {
            out.push(event(Some(rng.random_range(0..LINKS.len())), t));
            if !rng.random_bool(0.3) {
                break;
            }
            t += 1_000 + delay(rng, 30 * MINUTE);
        }
    }
    out.retain(|e| e.at < end);
    out
}

/// A delivery attempt's outcome, as the delivery worker records it for a channel
/// that confirms delivery: 97.5 % delivered, 2 % bounced (the recipient suppressed),
/// 0.5 % failed.
fn outcome(rng: &mut StdRng, m: &Message) -> MessageUpdate {
    let draw = rng.random_range(0..1000);
    let (state, error, suppress) = match draw {
        0..20 => (
            MessageState::Bounced,
            Some("550 5.1.1 mailbox unavailable".to_string()),
            Some("hard_bounce".to_string()),
        ),
        20..25 => (MessageState::Failed, Some("554 5.7.1 rejected".to_string()), None),
        _ => (MessageState::Delivered, None, None),
    };
    MessageUpdate {
        id: m.id,
        state,
        retry_at: None,
        recipient: Some(match m.channel.as_str() {
            "email" => email((m.contact_id - 1) as u64),
            _ => format!("+1555{:07}", m.contact_id),
        }),
        error,
        rendered: Some(json!({"subject": "Spring at the shop", "links": LINKS})),
        suppress,
        provider_id: Some(format!("esp-{}", m.id)),
    }
}

/// The generator's state: the store, the clock, counts, the random source, and the
/// opens and clicks to come, recorded in time order as the hours go by.
struct Fill {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    rng: StdRng,
    filled: Filled,
    concurrency: usize,
    /// Opens and clicks planned, earliest first.
    pending: BinaryHeap<Reverse<Engagement>>,
    /// Delivered journey e-mails (a sample), for topping up the event count.
    delivered: Vec<(i64, i64, Millis)>,
}

impl Fill {
    /// The delivery worker's store calls for every message due by `at`: claimed in
    /// batches of 5,000 and their outcomes recorded; their opens and clicks planned.
    /// `click(m)`: the share of openers who click `m`.
    async fn deliver(&mut self, at: Millis, click: impl Fn(&Message) -> f64) -> anyhow::Result<()> {
        loop {
            let started = Instant::now();
            let batch = self.store.claim_messages(at, 5_000, 5 * MINUTE).await?;
            if batch.is_empty() {
                self.filled.delivery_s += started.elapsed().as_secs_f64();
                return Ok(());
            }
            let updates: Vec<MessageUpdate> = batch.iter().map(|m| outcome(&mut self.rng, m)).collect();
            let delivered: Vec<&Message> = batch
                .iter()
                .zip(&updates)
                .filter(|(_, u)| {
                    u.state == MessageState::Delivered && u.recipient.as_deref().is_some_and(|r| r.contains('@'))
                })
                .map(|(m, _)| m)
                .collect();
            self.filled.outcomes += updates.len() as u64;
            self.store.update_messages(updates, at).await?;
            self.filled.delivery_s += started.elapsed().as_secs_f64();
            let end = self.filled.end;
            for m in delivered {
                for e in engagement(&mut self.rng, m, at, click(m), end) {
                    self.pending.push(Reverse(e));
                }
                if m.origin.as_ref().and_then(MessageOrigin::journey_id).is_some() {
                    if self.delivered.len() < 100_000 {
                        self.delivered.push((m.id, m.template_id, at));
                    } else {
                        let i = self.rng.random_range(0..self.delivered.len());
                        self.delivered[i] = (m.id, m.template_id, at);
                    }
                }
            }
        }
    }

    /// Records the planned opens and clicks before `until`, in time order (as they
    /// would arrive), `concurrency` at a time: each its own transaction.
    async fn record_until(&mut self, until: Millis) -> anyhow::Result<()> {
        let mut due = Vec::new();
        while let Some(&Reverse(e)) = self.pending.peek() {
            if e.at >= until {
                break;
            }
            self.pending.pop();
            due.push(e);
        }
        self.record(due).await
    }

    /// Records opens and clicks in the order given, `concurrency` at a time.
    async fn record(&mut self, events: Vec<Engagement>) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let (mut opens, mut clicks) = (0, 0);
        let mut add = |r: Result<nudge_store::Result<(bool, bool)>, tokio::task::JoinError>| -> anyhow::Result<()> {
            match r?? {
                (true, true) => clicks += 1,
                (true, false) => opens += 1,
                _ => {}
            }
            Ok(())
        };
        for e in events {
            while tasks.len() >= self.concurrency {
                if let Some(r) = tasks.join_next().await {
                    add(r)?;
                }
            }
            let store = self.store.clone();
            tasks.spawn(async move { Ok((record_engagement(&*store, &e).await?, e.link.is_some())) });
        }
        while let Some(r) = tasks.join_next().await {
            add(r)?;
        }
        self.filled.opens += opens;
        self.filled.clicks += clicks;
        self.filled.engagement_s += started.elapsed().as_secs_f64();
        Ok(())
    }

    /// Message events so far.
    fn events(&self) -> u64 {
        self.filled.events()
    }
}

/// Builds the workspace (see the module's documentation).
async fn fill(store: Arc<dyn Store>, args: &ReportArgs, end: Millis) -> anyhow::Result<Filled> {
    let all = Instant::now();
    let start = end - args.days * DAY;
    let clock = Arc::new(ManualClock::new(start));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let app = App::new(store.clone(), dyn_clock.clone());
    let mut f = Fill {
        store: store.clone(),
        clock: clock.clone(),
        rng: StdRng::seed_from_u64(13),
        filled: Filled {
            end,
            days: args.days,
            contacts: args.contacts as u64,
            ..Default::default()
        },
        concurrency: args.concurrency.max(1),
        pending: BinaryHeap::new(),
        delivered: Vec::new(),
    };

    // 1. Contacts, segments, templates, journeys.
    let started = Instant::now();
    let mut i = 0;
    while i < args.contacts {
        let next = (i + 10_000).min(args.contacts);
        let rows = (i..next)
            .map(|i| ContactImport {
                user_id: Some(format!("c{i}")),
                email: Some(email(i as u64)),
                traits: json!({"first_name": (["Ada", "Grace", "Alan", "Radia"][i % 4]), "cohort": i % 100})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                ..Default::default()
            })
            .collect();
        store.import_contacts(rows, start).await?;
        i = next;
    }
    // Deliveries address a message's contact by its position in the import.
    for i in [0, args.contacts - 1] {
        let c = store
            .find_contact(&Lookup::UserId(format!("c{i}")))
            .await?
            .context("an imported contact")?;
        ensure!(
            c.id == i as i64 + 1,
            "contact c{i} has id {}: not a fresh database",
            c.id
        );
    }
    let mut segments = Vec::new();
    for (name, condition) in [
        ("Everyone", json!({"type": "trait", "trait": "email", "op": "exists"})),
        (
            "Half",
            json!({"type": "trait", "trait": "cohort", "op": "less_than", "value": 50}),
        ),
        (
            "Quarter",
            json!({"type": "trait", "trait": "cohort", "op": "less_than", "value": 25}),
        ),
    ] {
        let definition =
            nudge_core::segment::parse_condition(&condition).map_err(|e| anyhow::anyhow!("segment {name}: {e:?}"))?;
        let s = store
            .create_segment(
                NewSegment {
                    name: name.into(),
                    description: String::new(),
                    definition,
                    administrative: false,
                },
                start,
            )
            .await?;
        segments.push(s.id);
    }
    let mut templates = Vec::new();
    for (name, subject) in [
        ("letter-a", "Spring at the shop"),
        ("letter-b", "Spring at the shop, {{ contact.traits.first_name }}"),
        ("letter-c", "15 % off spring until Sunday"),
    ] {
        let content = json!({"subject": subject, "html": format!(
            "<p>Hello {{{{ contact.traits.first_name }}}},</p><p><a href=\"{}\">The spring collection</a> · \
             <a href=\"{}\">New</a> · <a href=\"{}\">Your account</a></p>", LINKS[0], LINKS[1], LINKS[2])});
        let t = store
            .create_template(
                NewTemplate {
                    name: name.into(),
                    description: String::new(),
                    channel: "email".into(),
                    transactional: false,
                    topic: None,
                    content,
                },
                start,
            )
            .await?;
        templates.push(t.id);
    }
    // (journey, step, template id, template version, channel)
    let mut steps: Vec<(i64, &str, i64, i64, String)> = Vec::new();
    for (key, sends) in JOURNEYS {
        let j = nudge_app::ready_made_journeys::install(&*store, key, true, start).await?;
        for (step, template) in sends {
            let t = store
                .template_by_name(template)
                .await?
                .with_context(|| format!("template {template} of journey {key}"))?;
            steps.push((j.id, step, t.id, t.version, t.channel));
        }
    }
    f.filled.import_s = started.elapsed().as_secs_f64();
    eprintln!(
        "fill: {} contacts, 3 segments, {} journeys in {:.1} s",
        args.contacts,
        JOURNEYS.len(),
        f.filled.import_s
    );

    // 2. Hour by hour: the campaigns sent that hour, the campaign engine's rounds (they
    // queue the due messages and choose a test's winner when it ends), that hour's
    // journey messages, every due message delivered, then the opens and clicks of the
    // hour, in time order. Journey messages: as many as the event count needs (1 %
    // short of it, topped up with opens at the end), from the campaigns' expected size
    // and events per message (1 queued + 1 outcome + 97.5 % × (0.45 × 1/0.65 opens +
    // 0.45 × 0.25 × 1/0.7 clicks), no opens for an SMS).
    let engine = CampaignEngine::new(store.clone(), dyn_clock.clone(), CampaignEngineConfig::default());
    let every = args.days * DAY / args.campaigns.max(1) as i64;
    let sends: Vec<Millis> = (0..args.campaigns as i64)
        .map(|k| start + k * every + 9 * HOUR)
        .filter(|&t| t < end)
        .collect();
    let per_message = 2.0 + 0.975 * (0.45 / 0.65 + 0.45 * 0.25 / 0.7);
    let audiences = [
        args.contacts as f64,
        args.contacts as f64 / 2.0,
        args.contacts as f64 / 4.0,
    ];
    let campaign_messages: f64 = (0..sends.len())
        .map(|k| audiences[k % 3] * if k % 4 <= 1 { 0.95 } else { 1.0 })
        .sum();
    // A journey's SMS is not opened.
    let email_steps = steps.iter().filter(|s| s.4 == "email").count() as f64 / steps.len() as f64;
    let per_journey_message = 2.0 + (per_message - 2.0) * email_steps;
    let wanted = ((args.events as f64 * 0.99 - campaign_messages * per_message) / per_journey_message).max(0.0) as u64;
    let hours = (args.days * 24) as u64;
    let mut campaigns = Vec::new();
    let mut run = 0i64;
    // Variant B's readers click more: a test has a winner.
    let click = |m: &Message| match m.origin.as_ref().and_then(MessageOrigin::campaign_variant) {
        Some((_, 1)) => 0.35,
        _ => 0.25,
    };
    for h in 0..hours {
        let hour = start + h as i64 * HOUR;
        for (k, &at) in sends.iter().enumerate() {
            if at < hour || at >= hour + HOUR {
                continue;
            }
            clock.set(at);
            let audience = json!({"segments": [segments[k % 3]]});
            let variant = |n: usize| json!({"name": (["A", "B", "C"][n]), "template": templates[n]});
            let definition = match k % 4 {
                0 => {
                    let n = if k % 8 == 0 { 3 } else { 2 };
                    json!({"audience": audience, "variants": (0..n).map(variant).collect::<Vec<_>>(),
                           "test": {"share": 20, "metric": "click_rate", "duration": 4 * HOUR}, "holdout": 5})
                }
                1 => json!({"audience": audience, "variants": [variant(0), variant(1)], "holdout": 5}),
                _ => json!({"audience": audience, "variants": [variant(k % 3)]}),
            };
            let c = app
                .create_campaign(NewCampaign {
                    name: format!("Newsletter {}", k + 1),
                    description: String::new(),
                    definition,
                })
                .await?;
            app.send_campaign(c.id, Schedule::Now).await?;
            if k == 0 {
                f.filled.large_campaign = c.id;
            }
            if k % 4 >= 2 && k % 3 == 2 && f.filled.small_campaign == 0 {
                f.filled.small_campaign = c.id;
            }
            campaigns.push(c.id);
        }
        // The engine's rounds a minute into the hour, the delivery a minute later.
        clock.set(clock.now().max(hour + MINUTE));
        let started = Instant::now();
        let mut rounds = 0;
        while engine.run_once().await?.busy() {
            rounds += 1;
            ensure!(rounds < 100_000, "the campaign engine never goes idle");
        }
        f.filled.engine_s += started.elapsed().as_secs_f64();
        f.deliver(clock.now() + MINUTE, click).await?;
        // This hour's journey messages.
        let n = wanted / hours + u64::from(h < wanted % hours);
        if n > 0 {
            let at = (hour + 3 * MINUTE + f.rng.random_range(0..50 * MINUTE)).max(clock.now() + MINUTE);
            clock.set(at);
            let batch: Vec<NewMessage> = (0..n)
                .map(|_| {
                    run += 1;
                    let (journey, step, template, version, channel) = &steps[f.rng.random_range(0..steps.len())];
                    NewMessage {
                        idempotency_key: IdempotencyKey::step(run, step, 1).into_string(),
                        contact_id: f.rng.random_range(1..=args.contacts as i64),
                        template_id: *template,
                        template_version: *version,
                        channel: channel.clone(),
                        transactional: false,
                        data: json!({"event": {}, "data": {}}),
                        origin: Some(MessageOrigin::Journey {
                            journey_id: *journey,
                            run_id: run,
                            step: step.to_string(),
                            visit: 1,
                        }),
                    }
                })
                .collect();
            let started = Instant::now();
            let stored = store.enqueue_messages(batch, at).await?;
            f.filled.journey_enqueue_s += started.elapsed().as_secs_f64();
            let created = stored.iter().filter(|(_, created)| *created).count() as u64;
            f.filled.journey_messages += created;
            f.filled.queued += created;
            f.deliver(at + MINUTE, click).await?;
        }
        f.record_until(hour + HOUR).await?;
        if h % 240 == 239 {
            eprintln!(
                "fill: day {} of {}: {} campaigns sent, about {} events so far, {:.0} s",
                (h + 1) / 24,
                args.days,
                campaigns.len(),
                f.events() + f.filled.outcomes - f.filled.journey_messages,
                all.elapsed().as_secs_f64()
            );
        }
    }
    for id in &campaigns {
        let c = app.campaign(*id).await?;
        ensure!(
            c.status == CampaignStatus::Completed,
            "campaign {} is {} at the end",
            c.name,
            c.status.as_str()
        );
        f.filled.campaign_messages += c.queued;
        f.filled.queued += c.queued;
    }

    // 3. Top up to the event count: more opens of delivered journey e-mails.
    f.record_until(end).await?;
    while f.events() < args.events && !f.delivered.is_empty() {
        let missing = args.events - f.events();
        let mut opens: Vec<Engagement> = (0..missing)
            .filter_map(|_| {
                let (message, template_id, at) = f.delivered[f.rng.random_range(0..f.delivered.len())];
                let t = at + f.rng.random_range(2..7 * 24 * 60) * MINUTE;
                (t < end).then_some(Engagement {
                    message,
                    template_id,
                    link: None,
                    at: t,
                })
            })
            .collect();
        opens.sort_by_key(|e| e.at);
        f.record(opens).await?;
    }
    f.filled.total_s = all.elapsed().as_secs_f64();
    f.clock.set(end);
    Ok(f.filled)
}

/// Calls `f` 5 times, then `calls` times timed; prints a row. `f` answers the size of
/// what it made (rows or bytes).
async fn measure<F, Fut>(name: &str, unit: &str, calls: usize, mut f: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    for _ in 0..5 {
        f().await?;
    }
    let mut times = Vec::with_capacity(calls);
    let mut size = 0;
    for _ in 0..calls {
        let started = Instant::now();
        size = f().await?;
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "{name:<50} {:>8.2} {:>8.2} {:>8.2} {:>8.2}   {size} {unit}",
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        percentile(&times, 0.99),
        percentile(&times, 1.0)
    );
    Ok(percentile(&times, 0.99))
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.data_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("nudge.db");
    let fresh = !path.exists();
    let filled = {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await?);
        let filled = if fresh {
            let end = jiff::Timestamp::now().as_millisecond().div_euclid(HOUR) * HOUR;
            eprintln!(
                "fill: {} message events over {} days into {}",
                args.events,
                args.days,
                path.display()
            );
            let filled = fill(store.clone(), &args, end).await?;
            store
                .put_setting(SETTING, Some(&serde_json::to_string(&filled)?))
                .await?;
            filled
        } else {
            let Some(raw) = store.setting(SETTING).await? else {
                bail!(
                    "{} holds no finished `bench reports` workspace: remove it or give another --data-dir",
                    path.display()
                );
            };
            serde_json::from_str::<Filled>(&raw)?
        };
        // The writer checkpoints as it closes: the file holds everything.
        store.close().await;
        filled
    };
    let size = file_size(&path) + file_size(&dir.join("nudge.db-wal"));
    let f = &filled;
    let rate = |n: u64, s: f64| n as f64 / s.max(1e-9);
    println!(
        "workspace: {} contacts, {} campaigns ({} messages), {} journey messages over {} days; SQLite {:.2} GB ({})",
        f.contacts,
        args.campaigns,
        f.campaign_messages,
        f.journey_messages,
        f.days,
        size as f64 / 1e9,
        path.display()
    );
    println!(
        "message events: {} = {} queued + {} delivered/bounced/failed + {} opened + {} clicked",
        f.events(),
        f.queued,
        f.outcomes,
        f.opens,
        f.clicks
    );
    println!(
        "fill{}: {:.0} s in all; contacts, segments, journeys {:.1} s; campaign engine {:.1} s ({:.0} messages/s); \
         journey enqueue_messages {:.1} s ({:.0}/s); claim + update_messages {:.1} s ({:.0}/s); \
         record_message_event {:.1} s ({:.0} events/s)",
        if fresh { "" } else { " (earlier run, reused)" },
        f.total_s,
        f.import_s,
        f.engine_s,
        rate(f.campaign_messages, f.engine_s),
        f.journey_enqueue_s,
        rate(f.journey_messages, f.journey_enqueue_s),
        f.delivery_s,
        rate(f.outcomes, f.delivery_s),
        f.engagement_s,
        rate(f.opens + f.clicks, f.engagement_s)
    );

    // The measurements, on the store opened again as a server would.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await?);
    let app = App::new(store.clone(), Arc::new(SystemClock));
    let app = &app;
    let large = app.campaign(f.large_campaign).await?;
    let small = app.campaign(f.small_campaign).await?;
    let (large_id, small_id, store) = (large.id, small.id, &store);
    let (until, month, whole) = (f.end, f.end - 30 * DAY, f.end - f.days * DAY);
    println!(
        "{} calls each after 5 warm-up calls, one at a time (SQLite, release build):",
        args.calls
    );
    println!(
        "{:<50} {:>8} {:>8} {:>8} {:>8}   size",
        "report (App call)", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    let mut p99 = Vec::new();
    let label = format!("campaign report: {} ({} recipients)", large.name, large.audience);
    p99.push((
        label.clone(),
        measure(&label, "variants", args.calls, || async move {
            Ok(app.campaign_report(large_id).await?.variants.len())
        })
        .await?,
    ));
    measure("… as CSV", "bytes", args.calls, || async move {
        Ok(nudge_app::campaigns::report_csv(&app.campaign_report(large_id).await?)?.len())
    })
    .await?;
    measure(
        &format!("campaign report: {} ({} recipients)", small.name, small.audience),
        "variants",
        args.calls,
        || async move { Ok(app.campaign_report(small_id).await?.variants.len()) },
    )
    .await?;
    let label = "workspace report, last 30 days".to_string();
    p99.push((
        label.clone(),
        measure(&label, "rows", args.calls, || async move {
            Ok(app.workspace_report(month, until).await?.rows.len())
        })
        .await?,
    ));
    measure("… as CSV", "bytes", args.calls, || async move {
        Ok(nudge_app::reports::workspace_report_csv(&app.workspace_report(month, until).await?)?.len())
    })
    .await?;
    measure(
        &format!("workspace report, all {} days", f.days),
        "rows",
        args.calls,
        || async move { Ok(app.workspace_report(whole, until).await?.rows.len()) },
    )
    .await?;
    // The campaign report's hourly chart stops when the campaign completes; its
    // scope's whole series, for comparison (store call).
    measure(
        &format!("store: {}'s hourly series, {} days", large.name, f.days),
        "points",
        args.calls,
        || async move {
            Ok(store
                .report_series(ReportScope::Campaign(large_id), whole / HOUR, until / HOUR)
                .await?
                .len())
        },
    )
    .await?;
    for (name, p) in p99 {
        println!(
            "target p99 < 50 ms, {name}: {} ({p:.2} ms)",
            if p < 50.0 { "met" } else { "MISSED" }
        );
    }
    app.store.close().await;
    if args.data_dir.is_none() {
        drop(tmp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: i64) -> Message {
        Message {
            id,
            idempotency_key: format!("m{id}"),
            contact_id: 1,
            template_id: 7,
            template_version: 1,
            channel: "email".into(),
            transactional: false,
            data: serde_json::Value::Null,
            state: MessageState::Delivered,
            attempts: 1,
            next_attempt_at: None,
            recipient: None,
            error: None,
            rendered: None,
            created_at: 0,
            updated_at: 0,
            sent_at: None,
            provider_id: None,
            origin: None,
        }
    }

    #[test]
    fn engagement_keys_are_distinct_and_before_the_end() {
        // The open key holds the minute (`open-{id}-{minute}`): a message's opens must
        // fall in distinct minutes, or the store counts one of them only.
        let mut rng = StdRng::seed_from_u64(1);
        let (at, end) = (1_000 * DAY, 1_003 * DAY);
        let (mut opens, mut clicks) = (0, 0);
        for id in 0..20_000 {
            let events = engagement(&mut rng, &message(id), at, 0.25, end);
            let mut minutes: Vec<Millis> = events
                .iter()
                .filter(|e| e.link.is_none())
                .map(|e| e.at / MINUTE)
                .collect();
            let n = minutes.len();
            minutes.dedup();
            assert_eq!(minutes.len(), n, "two opens of message {id} in one minute");
            assert!(events.iter().all(|e| e.at > at && e.at < end && e.message == id));
            let first_open = events.iter().filter(|e| e.link.is_none()).map(|e| e.at).min();
            for c in events.iter().filter(|e| e.link.is_some()) {
                assert!(first_open.is_some_and(|o| c.at > o), "a click before any open");
            }
            opens += n;
            clicks += events.len() - n;
        }
        // About 0.45 × 1.54 opens and 0.45 × 0.25 × 1.43 clicks a message (fewer: the
        // end cuts some off).
        assert!((12_000..15_000).contains(&opens), "{opens} opens");
        assert!((2_500..3_800).contains(&clicks), "{clicks} clicks");
    }

    #[test]
    fn addresses_spread_over_providers_and_companies() {
        let addresses: Vec<String> = (0..100_000).map(email).collect();
        let gmail = addresses.iter().filter(|a| a.ends_with("@gmail.com")).count();
        let companies: std::collections::HashSet<&str> = addresses
            .iter()
            .filter_map(|a| a.split_once('@').map(|(_, d)| d))
            .filter(|d| d.ends_with(".example"))
            .collect();
        assert!((27_000..33_000).contains(&gmail), "{gmail} at gmail.com");
        assert_eq!(companies.len(), COMPANY_DOMAINS as usize);
        assert!(
            addresses
                .iter()
                .enumerate()
                .all(|(i, a)| a.starts_with(&format!("c{i}@")))
        );
    }
}
