//! `nudge bench segments`: segment computation and live-membership latency on a
//! generated shop (SQLite).

use crate::bench::percentile;
use anyhow::Context;
use clap::Args;
use nudge_core::segment::{parse_condition, ready_made};
use nudge_core::{Call, CallKind, Millis};
use nudge_engine::SegmentEngine;
use nudge_store::baseline::HandWrittenSegments;
use nudge_store::{Ingestor, IngestorConfig, NewSegment, SqliteStore, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DAY: Millis = 86_400_000;

#[derive(Args, Clone)]
pub struct SegmentArgs {
    /// Contacts to generate.
    #[arg(long, default_value_t = 100_000)]
    contacts: usize,
    /// Events to generate (spread over two years).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Live segments during the latency measurement (0: skip that measurement).
    #[arg(long, default_value_t = 100)]
    live_segments: usize,
    /// Events per second sent during the latency measurement.
    #[arg(long, default_value_t = 1000)]
    rate: usize,
    /// Length of the latency measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Keep (and reuse) the generated database in this directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The live segments: `overlapping` (near-copies: one event flips about nine
    /// memberships, a stress case) or `varied` (different conditions over the shop's
    /// events and traits: an event flips about four). The run prints the figure.
    #[arg(long, default_value = "overlapping")]
    profile: Profile,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    Overlapping,
    Varied,
}

/// The `i`-th live segment of the `varied` profile: conditions of every kind over
/// the events the benchmark sends and the shop's traits, most of which one event
/// does not flip.
pub fn varied_definition(i: usize) -> Value {
    let k = (i / 10) as u64;
    match i % 10 {
        0 => json!({"type": "event", "event": "Product Viewed", "count": {"op": "at_least", "value": 3 + k},
                    "window": {"last_days": 30}}),
        1 => json!({"type": "aggregate", "event": "Order Completed", "function": "sum", "property": "total",
                    "op": "greater_or_equal", "value": 200 + 150 * k}),
        2 => json!({"type": "and", "conditions": [
            {"type": "trait", "trait": "plan", "op": "equals", "value": "member"},
            {"type": "event_time", "event": "Page Scrolled", "which": "last", "op": "within_last_days", "days": 1 + 3 * k}]}),
        3 => {
            json!({"type": "event", "event": "Product Added", "where": [{"property": "quantity", "op": "greater_or_equal", "value": 2}],
                    "count": {"op": "at_least", "value": 2 + k}, "window": {"last_days": 14}})
        }
        4 => json!({"type": "trait", "trait": "birthday", "op": "anniversary_within_days", "days": 3 * k}),
        5 => {
            json!({"type": "not", "condition": {"type": "event", "event": "Order Completed", "window": {"last_days": 30 + 30 * k}}})
        }
        6 => json!({"type": "event", "event": format!("Feature {k} Used")}),
        7 => json!({"type": "and", "conditions": [
            {"type": "subscription", "channel": "email", "state": "subscribed"},
            {"type": "message", "action": "opened", "window": {"last_days": 30}}]}),
        8 => json!({"type": "event", "event": "Order Completed", "count": {"op": "exactly", "value": 1 + k}}),
        _ => json!({"type": "random_bucket", "percent": 10 * k, "salt": "bench"}),
    }
}

/// Definitions of the `i`-th synthetic live segment: all read the events the
/// benchmarks send, with different thresholds and windows.
pub fn live_definition(i: usize) -> Value {
    match i % 4 {
        0 => json!({"type": "event", "event": "Product Viewed", "count": {"op": "at_least", "value": 1 + i % 5},
                    "window": {"last_days": 7 + i}}),
        1 => json!({"type": "aggregate", "event": "Order Completed", "function": "sum", "property": "total",
                    "op": "greater_or_equal", "value": 100 + 10 * i}),
        2 => {
            json!({"type": "event", "event": "Product Added", "where": [{"property": "quantity", "op": "greater_or_equal", "value": 2}],
                    "window": {"last_hours": 24 + i}})
        }
        _ => json!({"type": "and", "conditions": [
            {"type": "trait", "trait": "plan", "op": "equals", "value": "member"},
            {"type": "event_time", "event": "Page Scrolled", "which": "last", "op": "within_last_days", "days": 1 + i % 30}
        ]}),
    }
}

fn message(kind: CallKind, user: &str, at: Millis, seq: &mut u64) -> Call {
    *seq += 1;
    Call::generated(kind, format!("gen-{seq}"), Some(user.to_string()), at)
}

fn props(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// The generated shop, in ingest-sized chunks: identifies first, then events.
pub(crate) fn generate(contacts: usize, events: usize, now: Millis) -> impl Iterator<Item = Vec<Call>> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut seq = 0u64;
    let mut identifies = Vec::with_capacity(contacts);
    for i in 0..contacts {
        let mut m = message(
            CallKind::Identify,
            &format!("c{i}"),
            now - rng.random_range(0..730) * DAY,
            &mut seq,
        );
        m.traits = props(json!({
            "email": format!("c{i}@example.com"),
            "plan": if rng.random_bool(0.2) { "member" } else { "guest" },
            "birthday": format!("{}-{:02}-{:02}", rng.random_range(1950..2008), rng.random_range(1..13), rng.random_range(1..29)),
            "test_contact": i < 10,
        }));
        identifies.push(m);
    }
    let mut chunks: Vec<Vec<Call>> = identifies.chunks(20_000).map(<[Call]>::to_vec).collect();
    let names = [
        "Product Viewed",
        "Product Viewed",
        "Product Viewed",
        "Page Scrolled",
        "Product Added",
        "Checkout Started",
        "Order Completed",
        "Email Opened",
        "Email Link Clicked",
    ];
    let mut made = 0;
    std::iter::from_fn(move || {
        if let Some(c) = chunks.pop() {
            return Some(c);
        }
        if made >= events {
            return None;
        }
        let n = (events - made).min(20_000);
        made += n;
        Some(
            (0..n)
                .map(|_| {
                    // Skewed activity: some contacts are much more active than others.
                    let who = ((rng.random::<f64>().powi(2)) * contacts as f64) as usize;
                    let name = names[rng.random_range(0..names.len())];
                    let at = now - rng.random_range(0..730 * DAY);
                    let mut m = message(CallKind::Track, &format!("c{who}"), at, &mut seq);
                    m.event = Some(name.to_string());
                    m.properties = match name {
                        "Order Completed" => props(json!({"total": rng.random_range(5..400), "order_id": format!("o{seq}"),
                            "coupon": if rng.random_bool(0.25) { json!("SPRING10") } else { Value::Null }})),
                        "Product Added" => props(json!({"product_id": format!("p{}", rng.random_range(0..500)), "quantity": rng.random_range(1..4)})),
                        _ => props(json!({"product_id": format!("p{}", rng.random_range(0..500)), "price": rng.random_range(5..200)})),
                    };
                    m
                })
                .collect(),
        )
    })
}

pub async fn run(args: SegmentArgs) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now().as_millisecond();
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("nudge-bench-segments-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("nudge.db");
    let fresh = !path.exists();
    let store = Arc::new(SqliteStore::open(&path).await?);
    if fresh {
        let started = Instant::now();
        for chunk in generate(args.contacts, args.events, now) {
            store.ingest(chunk, now).await?;
        }
        eprintln!(
            "generated {} contacts, {} events in {:.1} s",
            args.contacts,
            args.events,
            started.elapsed().as_secs_f64()
        );
    }
    let stats = store.stats().await?;
    println!(
        "data: {} contacts, {} events (SQLite, {})",
        stats.contacts,
        stats.events,
        path.display()
    );

    // 1. Full computation of every ready-made segment vs the hand-written query.
    // The hand-written queries run with the settings Nudge's readers use.
    let hand = HandWrittenSegments::open(&path)?;
    let mapped = hand.mapped_bytes()?;
    println!("readers map up to {:.1} GB of the file", mapped as f64 / 1e9);
    // A saved segment gets partial indexes for the event properties it reads (built
    // when it is saved: `segment_sql::event_indexes`); build those of the ready-made
    // segments here, timed apart from the computation.
    let t = Instant::now();
    let mut built = 0;
    for r in ready_made() {
        built += hand.build_event_indexes(&r.definition)?;
    }
    println!(
        "indexes for the event properties the segments read: {built} built in {:.1} s (once, when a segment is saved)",
        t.elapsed().as_secs_f64()
    );
    println!("\n| segment | members | Nudge (compiled SQL) | hand-written SQL | ratio |");
    println!("|---|---|---|---|---|");
    for r in ready_made() {
        let t = Instant::now();
        let ours = store.segment_members(&r.definition, now).await?;
        let ours_time = t.elapsed();
        let t = Instant::now();
        let mut theirs = hand.members(r.key, now)?;
        let hand_time = t.elapsed();
        theirs.sort_unstable();
        let same = if theirs == ours { "" } else { " (DIFFERENT MEMBERS)" };
        println!(
            "| {} | {} | {:.3} s | {:.3} s{same} | {:.2} |",
            r.key,
            ours.len(),
            ours_time.as_secs_f64(),
            hand_time.as_secs_f64(),
            ours_time.as_secs_f64() / hand_time.as_secs_f64().max(1e-9)
        );
    }

    if args.live_segments == 0 {
        store.close().await;
        return Ok(());
    }
    // 2. Event -> membership latency with live segments, at a steady event rate.
    let store_dyn: Arc<dyn Store> = store.clone();
    let clock: Arc<dyn nudge_core::Clock> = Arc::new(nudge_core::SystemClock);
    for s in nudge_store::SegmentStore::segments(&*store).await? {
        store.delete_segment(s.id).await?;
    }
    let probe = store
        .create_segment(
            NewSegment {
                name: "latency probe".into(),
                description: String::new(),
                definition: parse_condition(&json!({"type": "event", "event": "Ping"})).context("probe")?,
                administrative: false,
            },
            now,
        )
        .await?;
    for i in 1..args.live_segments {
        let definition = match args.profile {
            Profile::Overlapping => live_definition(i),
            Profile::Varied => varied_definition(i),
        };
        let definition = parse_condition(&definition).context("live definition")?;
        store
            .create_segment(
                NewSegment {
                    name: format!("live {i}"),
                    description: String::new(),
                    definition,
                    administrative: false,
                },
                now,
            )
            .await?;
    }
    let ingestor = Arc::new(Ingestor::start(
        store_dyn.clone(),
        clock.clone(),
        IngestorConfig::default(),
    ));
    let engine = SegmentEngine::new(store_dyn.clone(), clock.clone(), Default::default());
    // Drain what segment creation queued (time-based definitions mark everyone).
    let t = Instant::now();
    let mut drained = 0;
    loop {
        let (n, _) = engine.run_once().await?;
        if n == 0 {
            break;
        }
        drained += n;
    }
    eprintln!(
        "initial evaluation of {drained} contacts against {} segments: {:.1} s",
        args.live_segments,
        t.elapsed().as_secs_f64()
    );

    let entered: Arc<std::sync::Mutex<HashMap<i64, Instant>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let (engine, entered, stop) = (engine.clone(), entered.clone(), stop.clone());
        tokio::spawn(async move {
            let mut cycles = Vec::new();
            let mut flips = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let r = engine.run_once().await;
                if let Ok((n, _)) = &r
                    && *n > 0
                {
                    cycles.push((*n, t.elapsed()));
                }
                match r {
                    Ok((0, _)) => tokio::time::sleep(Duration::from_millis(1)).await,
                    Ok((_, changes)) => {
                        let at = Instant::now();
                        flips += changes.entered.len() + changes.exited.len();
                        let mut e = entered.lock().unwrap_or_else(|p| p.into_inner());
                        for (seg, contact) in changes.entered {
                            if seg == probe.id {
                                e.entry(contact).or_insert(at);
                            }
                        }
                    }
                    Err(err) => eprintln!("engine: {err}"),
                }
            }
            if std::env::var_os("NUDGE_BENCH_DEBUG").is_some() {
                for (n, d) in cycles.iter().take(40) {
                    eprintln!("cycle: {n} contacts in {:.1} ms", d.as_secs_f64() * 1e3);
                }
            }
            flips
        })
    };
    // Every 10 ms: a batch of rate/100 events, one in ten a ping from a new contact
    // (ids unique to this run, so a reused data directory measures new events too).
    let per_tick = (args.rate / 100).max(1);
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut rng = StdRng::seed_from_u64(11);
    let mut seq = 0u64;
    let ticks = args.seconds * 100;
    // Baseline in the same run: the ingest commit alone (submit → durable), which
    // every probe's latency includes.
    let commits: Arc<std::sync::Mutex<Vec<Duration>>> = Arc::default();
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    let started = Instant::now();
    for tick in 0..ticks {
        interval.tick().await;
        let at = clock.now();
        let mut batch = Vec::with_capacity(per_tick);
        for j in 0..per_tick {
            if j % 10 == 0 {
                let user = format!("ping-{now}-{tick}-{j}");
                let mut m = message(CallKind::Track, &user, at, &mut seq);
                m.message_id = format!("ping-{now}-{tick}-{j}");
                m.event = Some("Ping".into());
                sent.insert(user, Instant::now());
                batch.push(m);
            } else {
                let who = rng.random_range(0..args.contacts.max(1));
                let mut m = message(CallKind::Track, &format!("c{who}"), at, &mut seq);
                m.message_id = format!("live-{now}-{tick}-{j}");
                m.event = Some(["Product Viewed", "Product Added", "Order Completed", "Page Scrolled"][j % 4].into());
                m.properties = props(json!({"total": 50, "quantity": 2}));
                batch.push(m);
            }
        }
        let (ingestor, engine, commits) = (ingestor.clone(), engine.clone(), commits.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            if ingestor.submit(batch).await.is_ok() {
                engine.wake();
                commits.lock().unwrap_or_else(|p| p.into_inner()).push(t.elapsed());
            }
        });
    }
    let send_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = worker.await?;
    let entered = entered.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut latencies = Vec::new();
    let mut missing = 0;
    for (user, at) in &sent {
        let contact = store
            .find_contact(&nudge_store::Lookup::UserId(user.clone()))
            .await?
            .map(|c| c.id);
        match contact.and_then(|c| entered.get(&c)) {
            Some(e) => latencies.push(e.saturating_duration_since(*at)),
            None => missing += 1,
        }
    }
    latencies.sort();
    println!(
        "\nlive: {} segments ({}, {:.1} membership changes per event), {:.0} events/s for {:.1} s ({} probes): event -> membership p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
        args.live_segments,
        clap::ValueEnum::to_possible_value(&args.profile).map_or_else(String::new, |v| v.get_name().to_string()),
        flips as f64 / (ticks as usize * per_tick).max(1) as f64,
        (ticks as usize * per_tick) as f64 / send_time.as_secs_f64(),
        send_time.as_secs_f64(),
        sent.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        if missing > 0 {
            format!(" ({missing} probes never entered)")
        } else {
            String::new()
        }
    );
    let mut commits = commits.lock().unwrap_or_else(|p| p.into_inner()).clone();
    commits.sort();
    println!(
        "baseline (the ingest commit alone: submit → durable): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&commits, 0.5),
        percentile(&commits, 0.99)
    );
    ingestor.shutdown().await;
    store.close().await;
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
