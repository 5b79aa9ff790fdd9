//! `nudge bench campaign`: a campaign to `--contacts` contacts on SQLite, in one
//! process as `nudge serve` wires it.
//!
//! 1. The workspace: contacts imported in bulk (`import_contacts`) with an e-mail
//!    address, a first name and a `cohort` (0–499); the audience segment (`email
//!    exists`) and an A/B cohort segment (`cohort = 0`) computed in SQL when saved.
//! 2. Ingestion alone: `--ingest-clients` tasks submit batches of 100 track events
//!    (≈ 300 bytes of properties) from random contacts through the real group-commit
//!    `Ingestor`, each waiting for its commit, for `--ingest-seconds`: events/s and
//!    commit latency without a campaign.
//! 3. The campaign (one variant, sent now) to the whole audience, taken from start to
//!    completion by the campaign engine's rounds (`run_once`, as its loop runs them
//!    while busy) — snapshot pages, then due messages queued through the outbox —
//!    while the same ingestion goes on: snapshot and enqueue time, ingestion's events/s
//!    and commit latency during it, the longest round and the longest transaction the
//!    writer thread ran (`SqliteStore::take_longest_write`).
//! 4. The same campaign again without ingestion (unless `--no-quiet-run`): the
//!    campaign's own cost and its longest transaction, nothing else on the writer.
//! 5. Delivery: `--deliver` of the queued campaign messages through the delivery
//!    worker (claim, consent, render, SMTP over `--connections` connections to
//!    Postfix's `smtp-sink`, record), against Postfix's `smtp-source` sending as many
//!    messages of the same size to the same sink in the same run.
//! 6. The A/B winner: a campaign to the cohort with two variants, a 50 % test and a
//!    short test (`--test-ms`) on the real clock, with the engine's normal loop
//!    (`engine.run(stop)`); clicks are recorded for some test messages of variant B.
//!    Measured: from the test's end to the first remainder message queued (the
//!    campaign's `queued` counter polled every 2 ms).
//!
//! Peak memory: the process's `VmHWM` (`/proc/self/status`) after each phase, and
//! the sampled peaks of its anonymous and file-backed parts.

use crate::bench::{nearest_rank, status_kib};
use anyhow::{Context, bail, ensure};
use clap::Args;
use nudge_core::campaign::{CampaignStatus, Schedule};
use nudge_core::protocol::MessageEvent;
use nudge_core::{Call, CallKind, Clock, Millis, SystemClock};
use nudge_engine::{CampaignEngine, CampaignEngineConfig};
use nudge_messages::template::{self, Content, EmailContent, RenderData, Rendered};
use nudge_store::{
    CampaignLaunch, ContactImport, Ingestor, IngestorConfig, NewCampaign, NewSegment, NewTemplate, SqliteStore, Store,
    SubmitError,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct CampaignArgs {
    /// Contacts in the audience.
    #[arg(long, default_value_t = 1_000_000)]
    contacts: usize,
    /// Queued campaign messages to deliver to the SMTP sink (0: skip delivery).
    #[arg(long, default_value_t = 100_000)]
    deliver: usize,
    /// SMTP connections (Nudge's pool, and smtp-source's parallel sessions).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Directory of Postfix's smtp-sink and smtp-source.
    #[arg(long, default_value = "/usr/sbin")]
    postfix_bin: PathBuf,
    /// Concurrent ingestion clients (each submits 100 events and waits for the commit).
    #[arg(long, default_value_t = 4)]
    ingest_clients: usize,
    /// Length of the ingestion-alone measurement.
    #[arg(long, default_value_t = 10)]
    ingest_seconds: u64,
    /// Skip the second campaign run without ingestion.
    #[arg(long)]
    no_quiet_run: bool,
    /// The A/B test's duration in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    test_ms: i64,
    /// Messages the campaign engine queues per transaction.
    #[arg(long, default_value_t = CampaignEngineConfig::default().batch)]
    batch: usize,
    /// Audience members the campaign engine stores per snapshot transaction.
    #[arg(long, default_value_t = CampaignEngineConfig::default().snapshot_page)]
    snapshot_page: usize,
    /// Where the database goes (a temporary directory by default; removed at the end).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// A newsletter of ordinary size: a header, three articles, a button, a footer.
pub(crate) const NEWSLETTER: &str = r##"<mjml>
  <mj-head>
    <mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif" /></mj-attributes>
    <mj-style>.lead { font-size: 18px; line-height: 26px; }</mj-style>
  </mj-head>
  <mj-body background-color="#f4f1ea">
    <mj-section background-color="#2f4f4f"><mj-column>
      <mj-text color="#ffffff" font-size="24px" align="center">The Tea Shop — spring letter</mj-text>
    </mj-column></mj-section>
    <mj-section background-color="#ffffff"><mj-column>
      <mj-text css-class="lead">Hello {{ contact.traits.first_name | default: "there" }},</mj-text>
      <mj-text>Spring teas from {{ contact.traits.city | default: "everywhere" }}'s favourite shop: three new
        harvests, a brewing guide, and 15 % off everything until Sunday.</mj-text>
      <mj-button background-color="#2f4f4f" href="https://shop.example/spring?c={{ contact.id }}">Shop the sale</mj-button>
    </mj-column></mj-section>
    <mj-section background-color="#ffffff">
      <mj-column><mj-text font-size="18px">First flush Darjeeling</mj-text>
        <mj-text>Picked in March on the slopes above Kurseong: bright, floral, a hint of muscatel. Brew at 85 °C
          for three minutes.</mj-text>
        <mj-button href="https://shop.example/darjeeling">Read more</mj-button></mj-column>
      <mj-column><mj-text font-size="18px">Shincha</mj-text>
        <mj-text>The first Japanese green tea of the year, steamed within hours of picking. Sweet, grassy and
          gone by June.</mj-text>
        <mj-button href="https://shop.example/shincha">Read more</mj-button></mj-column>
      <mj-column><mj-text font-size="18px">Brewing guide</mj-text>
        <mj-text>Water, time and temperature for every tea we sell, on one page you can print and keep by the
          kettle.</mj-text>
        <mj-button href="https://shop.example/guide">Read more</mj-button></mj-column>
    </mj-section>
    <mj-section><mj-column>
      <mj-text font-size="12px" color="#666666" align="center">You receive this letter because you signed up
        at shop.example. The Tea Shop, 1 Leaf Lane, London.</mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>"##;

fn newsletter(subject: &str) -> Content {
    Content::Email(EmailContent {
        subject: subject.into(),
        preheader: Some("Spring teas and 15 % off, {{ contact.traits.first_name }}".into()),
        mjml: Some(NEWSLETTER.to_string()),
        ..Default::default()
    })
}

const NAMES: [&str; 10] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim",
];
const CITIES: [&str; 8] = [
    "London", "Paris", "Berlin", "Lisbon", "Oslo", "Rome", "Madrid", "Vienna",
];
/// Contacts with `cohort = 0` (one in this many) get the A/B campaign.
const COHORTS: usize = 500;

/// The process's peak resident memory (`VmHWM`), in MiB, and the peaks of its two
/// parts as sampled every 50 ms: anonymous memory (heap, stacks, SQLite's page
/// caches) and pages of mapped files (the read connections map the database, so
/// every page they read counts as resident while it stays in the page cache).
fn peak_rss() -> String {
    format!(
        "{:.0} MiB (sampled peaks: anonymous {:.0} MiB, mapped database file {:.0} MiB)",
        status_kib(None, "VmHWM:") / 1024.0,
        PEAK_ANON_KIB.load(Ordering::Relaxed) as f64 / 1024.0,
        PEAK_FILE_KIB.load(Ordering::Relaxed) as f64 / 1024.0
    )
}

static PEAK_ANON_KIB: AtomicU64 = AtomicU64::new(0);
static PEAK_FILE_KIB: AtomicU64 = AtomicU64::new(0);

/// Samples `RssAnon` and `RssFile` every 50 ms for [`peak_rss`].
fn sample_memory() {
    std::thread::spawn(|| {
        loop {
            PEAK_ANON_KIB.fetch_max(status_kib(None, "RssAnon:") as u64, Ordering::Relaxed);
            PEAK_FILE_KIB.fetch_max(status_kib(None, "RssFile:") as u64, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

fn rss_mib() -> f64 {
    status_kib(None, "VmRSS:") / 1024.0
}

/// One acknowledged ingestion request: when its commit was acknowledged, how long
/// it waited, how many events it held.
#[derive(Clone, Copy)]
struct Ack {
    at: Instant,
    latency_ms: f64,
    events: usize,
}

/// Ingestion clients running in the background until stopped.
struct Ingestion {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    ingestor: Arc<Ingestor>,
}

impl Ingestion {
    fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>, clients: usize, contacts: usize) -> Self {
        let ingestor = Arc::new(Ingestor::start(store, clock.clone(), IngestorConfig::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
        let seq = Arc::new(AtomicU64::new(0));
        let tasks = (0..clients)
            .map(|k| {
                let (ingestor, stop, acks, seq, clock) =
                    (ingestor.clone(), stop.clone(), acks.clone(), seq.clone(), clock.clone());
                tokio::spawn(async move {
                    let mut rng = StdRng::seed_from_u64(k as u64);
                    while !stop.load(Ordering::Relaxed) {
                        let at = clock.now();
                        let batch: Vec<Call> = (0..100)
                            .map(|_| {
                                let n = seq.fetch_add(1, Ordering::Relaxed);
                                track(n, rng.random_range(0..contacts), at)
                            })
                            .collect();
                        let started = Instant::now();
                        match ingestor.submit(batch).await {
                            Ok(_) => acks.lock().unwrap_or_else(|e| e.into_inner()).push(Ack {
                                at: Instant::now(),
                                latency_ms: started.elapsed().as_secs_f64() * 1e3,
                                events: 100,
                            }),
                            Err(SubmitError::Overloaded) => tokio::time::sleep(Duration::from_millis(5)).await,
                            Err(e) => panic!("ingestion failed: {e:?}"),
                        }
                    }
                })
            })
            .collect();
        Ingestion {
            stop,
            acks,
            tasks,
            ingestor,
        }
    }

    /// Events/s, p50 and p99 commit latency of the requests acknowledged in `[from, to)`.
    fn window(&self, from: Instant, to: Instant) -> (f64, f64, f64) {
        let acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        let inside: Vec<&Ack> = acks.iter().filter(|a| a.at >= from && a.at < to).collect();
        let events: usize = inside.iter().map(|a| a.events).sum();
        let mut latencies: Vec<f64> = inside.iter().map(|a| a.latency_ms).collect();
        latencies.sort_by(f64::total_cmp);
        let secs = to.duration_since(from).as_secs_f64().max(1e-9);
        (
            events as f64 / secs,
            nearest_rank(&latencies, 0.5),
            nearest_rank(&latencies, 0.99),
        )
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        self.ingestor.shutdown().await;
    }
}

/// A shop event from contact `who` with ≈ 300 bytes of properties.
fn track(n: u64, who: usize, at: Millis) -> Call {
    let mut c = Call::generated(CallKind::Track, format!("ing-{n}"), Some(format!("c{who}")), at);
    c.event = Some(["Product Viewed", "Product Added", "Page Scrolled", "Order Completed"][(n % 4) as usize].into());
    c.properties = json!({
        "product_id": format!("SKU-{}", n % 5000), "name": "Trail Running Shoes", "category": "sport",
        "price": 119.0, "quantity": 1 + n % 3, "currency": "EUR", "cart_id": format!("cart-{}", n / 7),
        "url": "https://shop.example/products/trail-running-shoes?utm_source=newsletter&utm_medium=email"
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    c
}

/// Creates and sends a campaign now (as the application layer does); its id.
async fn launch(
    store: &dyn Store,
    name: &str,
    definition: Value,
    templates: Vec<(i64, i64)>,
    now: Millis,
) -> anyhow::Result<i64> {
    let c = store
        .create_campaign(
            NewCampaign {
                name: name.into(),
                description: String::new(),
                definition,
            },
            now,
        )
        .await?;
    store
        .set_campaign_status(
            c.id,
            CampaignStatus::Draft,
            CampaignStatus::Sending,
            Some(CampaignLaunch {
                schedule: Schedule::Now,
                start_at: now,
                templates,
            }),
            now,
        )
        .await?
        .context("the campaign did not start")?;
    Ok(c.id)
}

/// What taking one campaign from start to completion cost.
struct Progress {
    snapshot: Duration,
    enqueue: Duration,
    rounds: usize,
    longest_round: Duration,
    longest_write: Duration,
    queued: u64,
}

/// Runs the engine's rounds until the campaign completes.
async fn send(engine: &CampaignEngine, store: &dyn Store, sqlite: &SqliteStore, id: i64) -> anyhow::Result<Progress> {
    sqlite.take_longest_write();
    let started = Instant::now();
    let mut snapshot = None;
    let (mut rounds, mut longest_round) = (0, Duration::ZERO);
    loop {
        let t = Instant::now();
        let round = engine.run_once().await?;
        longest_round = longest_round.max(t.elapsed());
        rounds += 1;
        let c = store.campaign(id).await?.context("the campaign vanished")?;
        if snapshot.is_none() && c.snapshot_done {
            snapshot = Some(started.elapsed());
        }
        if c.status == CampaignStatus::Completed {
            let snapshot = snapshot.unwrap_or_default();
            return Ok(Progress {
                snapshot,
                enqueue: started.elapsed() - snapshot,
                rounds,
                longest_round,
                longest_write: sqlite.take_longest_write(),
                queued: c.queued,
            });
        }
        ensure!(
            round.busy(),
            "the campaign engine went idle before the campaign completed"
        );
    }
}

pub async fn run(args: CampaignArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.data_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("nudge.db");
    if path.exists() {
        bail!("{} exists: the benchmark starts from an empty database", path.display());
    }
    sample_memory();
    let sqlite = Arc::new(SqliteStore::open(&path).await?);
    let store: Arc<dyn Store> = sqlite.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    println!(
        "bench campaign: {} contacts, SQLite ({}), {} ingestion clients, engine batch {} / snapshot page {}",
        args.contacts,
        path.display(),
        args.ingest_clients,
        args.batch,
        args.snapshot_page
    );

    // 1. The workspace.
    let started = Instant::now();
    let mut i = 0;
    while i < args.contacts {
        let end = (i + 10_000).min(args.contacts);
        let rows = (i..end)
            .map(|i| ContactImport {
                user_id: Some(format!("c{i}")),
                email: Some(format!("c{i}@example.com")),
                traits: json!({"first_name": NAMES[i % NAMES.len()], "city": CITIES[i % CITIES.len()],
                               "cohort": i % COHORTS})
                .as_object()
                .cloned()
                .unwrap_or_default(),
                ..Default::default()
            })
            .collect();
        store.import_contacts(rows, now).await?;
        i = end;
    }
    println!(
        "workspace: {} contacts imported in {:.1} s",
        args.contacts,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let segment = |name: &str, definition: Value| NewSegment {
        name: name.into(),
        description: String::new(),
        definition: nudge_core::segment::parse_condition(&definition).expect("a valid segment"),
        administrative: false,
    };
    let audience = store
        .create_segment(
            segment("Newsletter", json!({"type": "trait", "trait": "email", "op": "exists"})),
            now,
        )
        .await?
        .id;
    let cohort = store
        .create_segment(
            segment(
                "A/B cohort",
                json!({"type": "trait", "trait": "cohort", "op": "equals", "value": 0}),
            ),
            now,
        )
        .await?
        .id;
    println!(
        "workspace: 2 segments computed in SQL in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut templates = Vec::new();
    for (name, subject) in [
        ("spring-a", "Spring teas are here, {{ contact.traits.first_name }}"),
        ("spring-b", "15 % off spring teas until Sunday"),
    ] {
        let t = store
            .create_template(
                NewTemplate {
                    name: name.into(),
                    description: String::new(),
                    channel: "email".into(),
                    transactional: false,
                    topic: None,
                    content: serde_json::to_value(newsletter(subject))?,
                },
                now,
            )
            .await?;
        templates.push((t.id, t.version));
    }
    println!("peak RSS after building the workspace: {}", peak_rss());

    let config = CampaignEngineConfig {
        batch: args.batch,
        snapshot_page: args.snapshot_page,
        ..Default::default()
    };
    let engine = CampaignEngine::new(store.clone(), clock.clone(), config.clone());

    // 2. Ingestion alone.
    let ingestion = Ingestion::start(store.clone(), clock.clone(), args.ingest_clients, args.contacts);
    tokio::time::sleep(Duration::from_secs(1)).await;
    sqlite.take_longest_write();
    let alone_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.ingest_seconds)).await;
    let alone_to = Instant::now();
    let alone_longest = sqlite.take_longest_write();
    let alone = ingestion.window(alone_from, alone_to);

    // 3. The campaign while ingesting.
    let one = |template: (i64, i64)| json!({"audience": {"segments": [audience]}, "variants": [{"name": "A", "template": template.0}]});
    let id = launch(
        &*store,
        "Spring letter",
        one(templates[0]),
        vec![templates[0]],
        clock.now(),
    )
    .await?;
    let during_from = Instant::now();
    let busy = send(&engine, &*store, &sqlite, id).await?;
    let during_to = Instant::now();
    let during = ingestion.window(during_from, during_to);
    ingestion.stop().await;
    ensure!(
        busy.queued == args.contacts as u64,
        "queued {} of {}",
        busy.queued,
        args.contacts
    );
    println!(
        "ingestion alone ({} clients, {} s): {:.0} events/s, commit p50 {:.1} ms, p99 {:.1} ms; longest transaction {:.1} ms",
        args.ingest_clients,
        args.ingest_seconds,
        alone.0,
        alone.1,
        alone.2,
        alone_longest.as_secs_f64() * 1e3
    );
    println!(
        "campaign to {} while ingesting: snapshot {:.1} s + enqueue {:.1} s = {:.1} s ({} rounds, longest round {:.0} ms, \
         longest transaction {:.1} ms)",
        busy.queued,
        busy.snapshot.as_secs_f64(),
        busy.enqueue.as_secs_f64(),
        (busy.snapshot + busy.enqueue).as_secs_f64(),
        busy.rounds,
        busy.longest_round.as_secs_f64() * 1e3,
        busy.longest_write.as_secs_f64() * 1e3
    );
    println!(
        "ingestion during the campaign: {:.0} events/s ({:.2}x of alone), commit p50 {:.1} ms, p99 {:.1} ms",
        during.0,
        during.0 / alone.0.max(1e-9),
        during.1,
        during.2
    );
    println!("peak RSS after the campaign: {}", peak_rss());

    // 4. The same campaign without ingestion.
    if !args.no_quiet_run {
        let id = launch(
            &*store,
            "Spring letter, again",
            one(templates[0]),
            vec![templates[0]],
            clock.now(),
        )
        .await?;
        let quiet = send(&engine, &*store, &sqlite, id).await?;
        println!(
            "campaign to {} without ingestion: snapshot {:.1} s + enqueue {:.1} s = {:.1} s ({} rounds, longest round \
             {:.0} ms, longest transaction {:.1} ms)",
            quiet.queued,
            quiet.snapshot.as_secs_f64(),
            quiet.enqueue.as_secs_f64(),
            (quiet.snapshot + quiet.enqueue).as_secs_f64(),
            quiet.rounds,
            quiet.longest_round.as_secs_f64() * 1e3,
            quiet.longest_write.as_secs_f64() * 1e3
        );
        println!("peak RSS after the second campaign: {}", peak_rss());
    }

    // The baseline: the same rows written the plainest way, in a fresh database.
    let (raw_snapshot, raw_enqueue) = nudge_store::baseline::raw_campaign_sqlite(
        &dir.join("baseline.db"),
        args.contacts,
        args.snapshot_page,
        args.batch,
        now,
    )
    .await?;
    println!(
        "baseline (recipient rows, then outbox row + timeline row + recipient update per message, same transaction \
         sizes, fresh database): snapshot {:.1} s + enqueue {:.1} s = {:.1} s",
        raw_snapshot.as_secs_f64(),
        raw_enqueue.as_secs_f64(),
        (raw_snapshot + raw_enqueue).as_secs_f64()
    );
    let _ = std::fs::remove_file(dir.join("baseline.db"));

    // 5. Delivery of the queued campaign messages.
    if args.deliver > 0 {
        delivery(&args, store.clone(), clock.clone()).await?;
        println!("peak RSS after delivery: {}", peak_rss());
    }

    // 6. The A/B test's winner, on the real clock with the engine's loop.
    ab_winner(&args, store.clone(), clock.clone(), cohort, &templates).await?;

    println!(
        "peak RSS (VmHWM) of the whole run: {} (RSS now {:.0} MiB)",
        peak_rss(),
        rss_mib()
    );
    store.close().await;
    if args.data_dir.is_none() {
        drop(tmp);
    }
    Ok(())
}

async fn delivery(args: &CampaignArgs, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let (_sink, port) = crate::bench_messages::start_sink(&args.postfix_bin)?;
    let (delivered, secs) =
        crate::bench_messages::deliver(store.clone(), clock, port, args.connections, args.deliver).await?;
    let sent = store
        .list_messages(&nudge_store::MessageQuery {
            state: Some(nudge_store::MessageState::Sent),
            limit: 1,
            ..Default::default()
        })
        .await?;
    let Some(sample) = sent.items.first() else {
        bail!("no message was sent; is smtp-sink running?");
    };
    ensure!(
        sample.origin.as_ref().and_then(|o| o.campaign_variant()).is_some(),
        "a delivered message was not a campaign's"
    );
    let nudge_rate = delivered as f64 / secs;
    println!(
        "delivery, nudge (claim + consent + render + SMTP + record, {} connections): {delivered} campaign messages in \
         {secs:.2} s = {nudge_rate:.0} messages/s",
        args.connections
    );

    // The same number of messages, of the size Nudge sends, by smtp-source.
    let size = {
        let rendered = template::compile(&newsletter("Spring teas are here, {{ contact.traits.first_name }}"))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .render(&RenderData {
                contact: json!({"id": 1, "email": "c1@example.com", "traits": {"first_name": "Grace", "city": "Paris"}}),
                event: Value::Null,
                workspace: json!({"name": "Tea Shop"}),
                message: json!({"id": 1}),
                extra: serde_json::Map::new(),
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        match rendered {
            Rendered::Email { html, text, .. } => html.len() + text.len(),
            _ => 20_000,
        }
    };
    let secs = crate::bench_messages::smtp_source(&args.postfix_bin, port, args.connections, delivered, size)?;
    let source_rate = delivered as f64 / secs;
    println!(
        "delivery, postfix smtp-source ({} sessions, {size}-byte messages): {delivered} messages in {secs:.2} s = \
         {source_rate:.0} messages/s",
        args.connections
    );
    println!("delivery ratio nudge / smtp-source: {:.2}x", nudge_rate / source_rate);
    Ok(())
}

/// A small A/B campaign with a short test on the real clock, the engine running its
/// loop: from the test's end to the first message of the remainder queued.
async fn ab_winner(
    args: &CampaignArgs,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cohort: i64,
    templates: &[(i64, i64)],
) -> anyhow::Result<()> {
    let engine = CampaignEngine::new(store.clone(), clock.clone(), CampaignEngineConfig::default());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let loop_ = tokio::spawn(engine.clone().run(async move {
        let _ = stop_rx.changed().await;
    }));
    let definition = json!({
        "audience": {"segments": [cohort]},
        "variants": [{"name": "A", "template": templates[0].0}, {"name": "B", "template": templates[1].0}],
        "test": {"share": 50, "metric": "click_rate", "duration": args.test_ms}
    });
    let id = launch(
        &*store,
        "Spring letter A/B",
        definition,
        templates.to_vec(),
        clock.now(),
    )
    .await?;
    engine.wake();
    // The test's messages queued.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (ends, test_queued, audience) = loop {
        let c = store.campaign(id).await?.context("the A/B campaign")?;
        if let Some(ends) = c.test_ends_at
            && c.queued > 0
            && c.pending() > 0
            && store.next_campaign_due(id, false).await?.is_none()
        {
            break (ends, c.queued, c.audience);
        }
        ensure!(Instant::now() < deadline, "the test's messages were never queued");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    ensure!(
        clock.now() < ends,
        "the test ended before its messages were clicked: raise --test-ms"
    );
    // Clicks: 30 % of variant B's test messages, 5 % of A's.
    let (mut clicked, mut seen) = ([0u32; 2], [0u32; 2]);
    let contacts = store
        .list_messages(&nudge_store::MessageQuery {
            limit: 10_000,
            ..Default::default()
        })
        .await?
        .items;
    for m in contacts.iter().filter(|m| {
        m.origin
            .as_ref()
            .and_then(|o| o.campaign_variant())
            .is_some_and(|(c, _)| c == id)
    }) {
        let Some((_, variant)) = m.origin.as_ref().and_then(|o| o.campaign_variant()) else {
            continue;
        };
        let (share, seen) = if variant == 1 {
            (30, &mut seen[1])
        } else {
            (5, &mut seen[0])
        };
        *seen += 1;
        if *seen % 100 < share {
            store
                .record_message_event(
                    m.id,
                    &MessageEvent::Clicked {
                        link: 0,
                        url: "https://shop.example/spring".into(),
                    },
                    format!("bench-click-{}", m.id),
                    clock.now(),
                )
                .await?;
            clicked[variant as usize % 2] += 1;
        }
    }
    ensure!(
        clock.now() < ends,
        "the test ended before its messages were clicked: raise --test-ms"
    );
    // From the test's end to the first remainder message queued (committed).
    let deadline = Instant::now() + Duration::from_millis(args.test_ms as u64) + Duration::from_secs(30);
    let seen = loop {
        let c = store.campaign(id).await?.context("the A/B campaign")?;
        if c.queued > test_queued {
            break clock.now();
        }
        ensure!(Instant::now() < deadline, "the remainder was never queued");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let c = store.campaign(id).await?.context("the A/B campaign")?;
    let _ = stop_tx.send(true);
    let _ = loop_.await;
    let by = c
        .decision
        .as_ref()
        .and_then(|d| d.get("decided_by"))
        .map(Value::to_string)
        .unwrap_or_default();
    println!(
        "A/B winner: {audience} recipients, {test_queued} in the test ({} + {} clicks on A + B), winner {} ({by}); \
         test end → first remainder message queued: {} ms",
        clicked[0],
        clicked[1],
        c.winner
            .map_or("none".into(), |w| if w == 1 { "B" } else { "A" }.to_string()),
        seen - ends
    );
    Ok(())
}
