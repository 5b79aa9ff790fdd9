//! `nudge bench journey-latency`: event → message handed to the channel, while
//! ingesting a steady `--rate` of events (SQLite, in one process as `nudge serve`
//! wires it: the ingestor with group commit, the journey engine's `run` loop woken by
//! ingestion, the delivery worker woken by the engine).
//!
//! A live journey `trigger: Bench Ping → send email` runs over `--contacts` contacts
//! with an email address. Every 10 ms a batch of `rate / 100` events is submitted; a
//! `--ping-share` of them are `Bench Ping` (each starts a run that sends at once), the
//! rest other events from random contacts. The email channel is a recorder that notes
//! when each message is handed to it. Latency per ping: from submitting its batch to
//! the ingestor to the channel's `send` call, on the wall clock. Baseline in the same
//! run: the ingest commit alone (submit → acknowledged durable), which every ping
//! includes.

use crate::bench::nearest_rank;
use async_trait::async_trait;
use clap::Args;
use nudge_core::{Call, CallKind, Clock, SystemClock};
use nudge_engine::{JourneyEngine, JourneyEngineConfig};
use nudge_messages::channel::{Channel, Outgoing, SendError};
use nudge_messages::delivery::{ChannelSlot, Deliverer, DeliveryConfig};
use nudge_messages::links::Signer;
use nudge_store::{Ingestor, IngestorConfig, JourneyStatus, NewJourney, NewTemplate, SqliteStore, Store};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct LatencyArgs {
    /// Events per second submitted.
    #[arg(long, default_value_t = 1000)]
    rate: usize,
    /// Length of the measurement.
    #[arg(long, default_value_t = 30)]
    seconds: usize,
    /// Contacts (with an email address) the events come from.
    #[arg(long, default_value_t = 20_000)]
    contacts: usize,
    /// Share of the events that start the journey (each sends an email).
    #[arg(long, default_value_t = 0.1)]
    ping_share: f64,
}

/// An email channel that notes when each message is handed to it.
struct Recorder {
    handed: Mutex<HashMap<String, Instant>>,
}

#[async_trait]
impl Channel for Recorder {
    fn kind(&self) -> &'static str {
        "email"
    }
    fn transport(&self) -> &'static str {
        "bench-recorder"
    }
    async fn send(&self, message: &Outgoing) -> Result<Option<String>, SendError> {
        let mut h = self.handed.lock().unwrap_or_else(|e| e.into_inner());
        h.entry(message.idempotency_key.clone()).or_insert_with(Instant::now);
        Ok(None)
    }
    async fn health(&self) -> Result<(), String> {
        Ok(())
    }
}

pub async fn run(args: LatencyArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).await?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    for chunk in (0..args.contacts).collect::<Vec<_>>().chunks(5000) {
        let calls = chunk
            .iter()
            .map(|i| {
                let mut c = Call::generated(CallKind::Identify, format!("id-{i}"), Some(format!("c{i}")), now);
                c.traits.insert("email".into(), json!(format!("c{i}@example.com")));
                c
            })
            .collect();
        store.ingest(calls, now).await?;
    }
    let template = store
        .create_template(
            NewTemplate {
                name: "ping".into(),
                description: String::new(),
                channel: "email".into(),
                transactional: false,
                topic: None,
                content: json!({"channel": "email", "subject": "Hello {{ contact.traits.email }}",
                                "html": "<p>You pinged: {{ event.properties.n }}</p>"}),
            },
            now,
        )
        .await?;
    let j = store
        .create_journey(
            NewJourney {
                name: "latency".into(),
                description: String::new(),
                priority: 0,
                definition: json!({
                    "trigger": {"type": "event", "event": "Bench Ping"},
                    "start": "send",
                    "steps": [{"id": "send", "type": "send", "template": template.id}],
                    "settings": {"re_entry": {"type": "always"}, "max_concurrent_runs": 100}
                }),
            },
            now,
        )
        .await?;
    store.set_journey_status(j.id, JourneyStatus::Live, true, now).await?;

    let recorder = Arc::new(Recorder {
        handed: Mutex::new(HashMap::new()),
    });
    let deliverer = Deliverer::new(
        store.clone(),
        clock.clone(),
        vec![ChannelSlot::new(recorder.clone(), 16, None)],
        Signer::new(b"bench-signing-key-bench-signing-key"),
        DeliveryConfig::default(),
    );
    let journeys = JourneyEngine::new(store.clone(), clock.clone(), JourneyEngineConfig::default());
    {
        let deliverer = deliverer.clone();
        journeys.on_messages(move || deliverer.wake());
    }
    journeys.listen().await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };
    let delivery = tokio::spawn(deliverer.clone().run(stopped(stop_rx.clone())));
    let engine = tokio::spawn(journeys.clone().run(stopped(stop_rx.clone())));
    let ingestor = Arc::new(Ingestor::start(store.clone(), clock.clone(), IngestorConfig::default()));

    let per_tick = (args.rate / 100).max(1);
    let mut rng = StdRng::seed_from_u64(7);
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let commits: Arc<Mutex<Vec<f64>>> = Arc::default();
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    let mut seq = 0u64;
    let mut pings = 0u64;
    let mut tasks = Vec::new();
    println!(
        "{} events/s for {} s ({:.0}% start the journey and send an email), {} contacts, SQLite",
        args.rate,
        args.seconds,
        args.ping_share * 100.0,
        args.contacts
    );
    for _ in 0..args.seconds * 100 {
        interval.tick().await;
        let at = clock.now();
        let mut batch = Vec::with_capacity(per_tick);
        let mut ping_ids = Vec::new();
        for _ in 0..per_tick {
            seq += 1;
            let who = rng.random_range(0..args.contacts);
            let mut c = Call::generated(CallKind::Track, format!("ev-{seq}"), Some(format!("c{who}")), at);
            if rng.random_bool(args.ping_share.clamp(0.0, 1.0)) {
                pings += 1;
                c.event = Some("Bench Ping".into());
                c.properties.insert("n".into(), json!(pings));
                ping_ids.push(pings);
            } else {
                c.event = Some(["Page Viewed", "Product Viewed", "Product Added"][(seq % 3) as usize].into());
            }
            batch.push(c);
        }
        let t = Instant::now();
        {
            let mut s = sent.lock().unwrap_or_else(|e| e.into_inner());
            for p in &ping_ids {
                s.insert(*p, t);
            }
        }
        let (ingestor, journeys, commits) = (ingestor.clone(), journeys.clone(), commits.clone());
        tasks.push(tokio::spawn(async move {
            if ingestor.submit(batch).await.is_ok() {
                commits
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(t.elapsed().as_secs_f64() * 1e3);
                journeys.wake();
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    // Let the last messages through.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let handed = recorder.handed.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        if handed >= pings || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let _ = engine.await;
    let _ = delivery.await;
    ingestor.shutdown().await;

    // Map each message back to its ping (the run's trigger property `n`).
    let mut messages = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_messages(&nudge_store::MessageQuery {
                before,
                limit: 1000,
                ..Default::default()
            })
            .await?;
        let Some(last) = page.items.last() else { break };
        before = Some(last.id);
        messages.extend(page.items);
    }
    let handed = recorder.handed.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let sent = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut latencies: Vec<f64> = messages
        .iter()
        .filter_map(|m| {
            let n = m.data.get("event")?.get("properties")?.get("n")?.as_u64()?;
            let (from, to) = (sent.get(&n)?, handed.get(&m.idempotency_key)?);
            Some(to.duration_since(*from).as_secs_f64() * 1e3)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let mut commits = commits.lock().unwrap_or_else(|e| e.into_inner()).clone();
    commits.sort_by(f64::total_cmp);
    println!(
        "event → message handed to the channel: {} of {pings} pings; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        nearest_rank(&latencies, 0.5),
        nearest_rank(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    println!(
        "baseline (the ingest commit alone: submit → durable): p50 {:.1} ms, p99 {:.1} ms",
        nearest_rank(&commits, 0.5),
        nearest_rank(&commits, 0.99)
    );
    anyhow::ensure!(latencies.len() as u64 == pings, "not every ping was delivered");
    store.close().await;
    Ok(())
}
