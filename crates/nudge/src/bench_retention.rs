//! `nudge bench retention`: what deleting old events costs ingestion on embedded
//! SQLite. Each run opens a fresh workspace, fills it with `--old` events older than
//! the retention period (through the store's ingestion, like any event), then
//! ingests `--events` new ones through the group-commit `Ingestor` with concurrent
//! submitters, as `/v1/batch` does. Runs without and with a retention pass going on
//! at the same time (`RetentionEngine`, the same batches and pauses `nudge serve`
//! uses) alternate on fresh workspaces, so the machine's drift touches both alike;
//! the ratio of their rates is the cost. The longest writer job during each run
//! (`SqliteStore::take_longest_write`) says how long ingestion can have waited for
//! the writer, and the events deleted during the run are counted.

use clap::Args;
use nudge_core::segment::DAY_MS;
use nudge_core::{Call, Clock, Received, SystemClock, parse_batch};
use nudge_engine::{RetentionEngine, RetentionEngineConfig};
use nudge_store::{Ingestor, IngestorConfig, SqliteStore, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct RetentionArgs {
    /// Old events in each workspace before the run (all older than the retention).
    #[arg(long, default_value_t = 300_000)]
    old: usize,
    /// New events ingested during the run.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Events per submitted call (as per /v1/batch request).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Concurrent submitters.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Events deleted per retention transaction.
    #[arg(long, default_value_t = 2_000)]
    delete_batch: usize,
    /// Pause between retention transactions, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pause_ms: u64,
    /// Runs of each kind (alternating).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
}

fn calls(from: usize, n: usize, batch: usize, at: i64, now: i64) -> Vec<Vec<Call>> {
    let events: Vec<Value> = (from..from + n)
        .map(|i| {
            json!({"type": "track", "userId": format!("bench-user-{}", i.wrapping_mul(2_654_435_761) % 50_000),
                   "event": (["Product Viewed", "Product Added", "Order Completed", "Page Scrolled"][i % 4]),
                   "messageId": format!("bench-{i}"),
                   "timestamp": jiff::Timestamp::from_millisecond(at + i as i64).unwrap().to_string(),
                   "properties": {"product_id": format!("SKU-{}", i % 5000), "price": 119.0, "currency": "EUR",
                                  "url": "https://shop.example/products/trail-running-shoes?utm_source=newsletter"},
                   "context": {"ip": "198.51.100.7", "locale": "fr-FR", "timezone": "Europe/Paris"}})
        })
        .collect();
    events
        .chunks(batch.max(1))
        .map(|chunk| {
            let body = serde_json::to_vec(&json!({"batch": chunk})).unwrap();
            parse_batch(&body, &Received { at: now, ip: None }, &mut || "x".into())
                .unwrap()
                .messages
        })
        .collect()
}

struct Run {
    rate: f64,
    deleted: u64,
    longest_write: Duration,
}

async fn run_once(args: &RetentionArgs, with_retention: bool) -> anyhow::Result<Run> {
    let dir = std::env::temp_dir().join(format!(
        "nudge-bench-retention-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir)?;
    let sqlite = Arc::new(SqliteStore::open(&dir.join("nudge.db")).await?);
    let store: Arc<dyn Store> = sqlite.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    // The old events: a year ago, kept 90 days.
    for batch in calls(0, args.old, 1000, now - 365 * DAY_MS, now) {
        store.ingest(batch, now).await?;
    }
    store.put_setting(nudge_core::retention::SETTING, Some("90")).await?;
    let batches = calls(args.old, args.events, args.batch, now - 1000 * args.events as i64, now);
    let ingestor = Arc::new(Ingestor::start(store.clone(), clock.clone(), IngestorConfig::default()));
    let engine = RetentionEngine::new(
        store.clone(),
        clock.clone(),
        RetentionEngineConfig {
            batch: args.delete_batch,
            pause: Duration::from_millis(args.pause_ms),
            ..Default::default()
        },
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let retention = with_retention.then(|| {
        let engine = engine.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(engine.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        }))
    });
    sqlite.take_longest_write();
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let started = Instant::now();
    let clients: Vec<_> = (0..args.clients)
        .map(|_| {
            let (queue, ingestor) = (queue.clone(), ingestor.clone());
            tokio::spawn(async move {
                loop {
                    let Some(batch) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    ingestor.submit(batch).await.expect("ingest");
                }
            })
        })
        .collect();
    for c in clients {
        c.await?;
    }
    let elapsed = started.elapsed();
    let longest_write = sqlite.take_longest_write();
    let _ = stop.send(true);
    if let Some(r) = retention {
        r.await?;
    }
    ingestor.shutdown().await;
    let stats = store.stats().await?;
    let deleted = (args.old + args.events) as u64 - stats.events;
    sqlite.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Run {
        rate: args.events as f64 / elapsed.as_secs_f64(),
        deleted,
        longest_write,
    })
}

pub async fn run(args: RetentionArgs) -> anyhow::Result<()> {
    eprintln!(
        "bench retention (sqlite): {} old events, {} new in calls of {}, {} submitters; deletion {} per transaction, {} ms pauses",
        args.old, args.events, args.batch, args.clients, args.delete_batch, args.pause_ms
    );
    let mut without = Vec::new();
    let mut with = Vec::new();
    for _ in 0..args.rounds.max(1) {
        without.push(run_once(&args, false).await?);
        with.push(run_once(&args, true).await?);
    }
    let mean = |v: &[Run]| v.iter().map(|r| r.rate).sum::<f64>() / v.len() as f64;
    let show = |v: &[Run]| {
        v.iter()
            .map(|r| {
                format!(
                    "{:.0} events/s ({} deleted meanwhile, longest writer job {:.1} ms)",
                    r.rate,
                    r.deleted,
                    r.longest_write.as_secs_f64() * 1e3
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    println!("without a retention pass: {}", show(&without));
    println!("with a retention pass:    {}", show(&with));
    println!(
        "with / without = {:.2} (means of {} alternating runs each)",
        mean(&with) / mean(&without),
        without.len()
    );
    Ok(())
}
