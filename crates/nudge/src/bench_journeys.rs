//! `nudge bench journeys`: durable journey step transitions per second on SQLite.
//!
//! A fresh database gets `--runs` contacts and a live journey whose runs wait three
//! times (`wait 1h` → `wait 1h` → `wait 1h` → end). One `Go` event per contact starts
//! the runs (entries: each run is stored, then started). Then the injected clock jumps
//! past each wait and the engine drains the timers that all came due together: every
//! timer is a durable transition (the run's new state, its next timer and a step
//! event, committed in rounds of `--batch`). Printed per phase: runs or transitions
//! per second, and — the baseline, in the same run — the same number of single-row
//! `UPDATE`s committed in transactions of the same size on the same database file.

use anyhow::Context;
use clap::Args;
use nudge_core::{Call, CallKind, Clock, ManualClock};
use nudge_engine::{JourneyEngine, JourneyEngineConfig};
use nudge_store::{JourneyStatus, NewJourney, SqliteStore, Store};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Clone)]
pub struct JourneyArgs {
    /// Runs (one contact each).
    #[arg(long, default_value_t = 20_000)]
    runs: usize,
    /// Inbox events and timers per engine round (one transaction).
    #[arg(long, default_value_t = 500)]
    batch: usize,
}

const HOUR: i64 = 3_600_000;

pub async fn run(args: JourneyArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await?);
    let t0 = 1_805_112_000_000;
    let clock = Arc::new(ManualClock::new(t0));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let n = args.runs;

    let calls = |kind: CallKind, i: usize| {
        let mut c = Call::generated(kind, format!("{kind:?}-{i}"), Some(format!("u{i}")), t0);
        if kind == CallKind::Track {
            c.event = Some("Go".into());
            c.properties.insert("i".into(), json!(i));
        }
        c
    };
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        store
            .ingest(chunk.iter().map(|&i| calls(CallKind::Identify, i)).collect(), t0)
            .await?;
    }
    let definition = json!({
        "trigger": {"type": "event", "event": "Go"},
        "start": "w1",
        "steps": [
            {"id": "w1", "type": "wait", "duration": {"hours": 1}, "next": "w2"},
            {"id": "w2", "type": "wait", "duration": {"hours": 1}, "next": "w3"},
            {"id": "w3", "type": "wait", "duration": {"hours": 1}}
        ],
        "settings": {"re_entry": {"type": "always"}, "max_concurrent_runs": 1}
    });
    let j = store
        .create_journey(
            NewJourney {
                name: "bench".into(),
                description: String::new(),
                priority: 0,
                definition,
            },
            t0,
        )
        .await?;
    store
        .set_journey_status(j.id, JourneyStatus::Live, true, t0)
        .await?
        .context("publishing")?;
    let engine = JourneyEngine::new(
        store.clone(),
        dyn_clock,
        JourneyEngineConfig {
            batch: args.batch,
            ..Default::default()
        },
    );
    engine.run_once().await?; // learns the event names
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        store
            .ingest(chunk.iter().map(|&i| calls(CallKind::Track, i)).collect(), t0)
            .await?;
    }

    println!(
        "{n} runs, engine rounds of {} (one transaction each), SQLite",
        args.batch
    );
    let started = Instant::now();
    let mut entered = 0;
    loop {
        let s = engine.run_once().await?;
        entered += s.started;
        if !s.busy() {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(entered == n, "{entered} of {n} runs started");
    println!(
        "entries (event → run stored, started, first timer): {n} in {secs:.2} s = {:.0} runs/s",
        n as f64 / secs
    );

    for phase in 1..=3 {
        clock.set(t0 + phase * HOUR + 1);
        let started = Instant::now();
        let mut transitions = 0;
        loop {
            let s = engine.run_once().await?;
            transitions += s.transitions;
            if !s.busy() {
                break;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        anyhow::ensure!(transitions >= n, "phase {phase}: {transitions} of {n} transitions");
        println!(
            "timers due together, phase {phase} ({}): {transitions} transitions in {secs:.2} s = {:.0} transitions/s",
            if phase < 3 {
                "wait → next wait"
            } else {
                "wait → end"
            },
            transitions as f64 / secs
        );
    }
    let finished = store
        .contact_runs(
            store
                .find_contact(&nudge_store::Lookup::UserId("u0".into()))
                .await?
                .context("u0")?
                .id,
            None,
        )
        .await?;
    anyhow::ensure!(finished.iter().all(|r| !r.is_active()), "runs left active");
    store.close().await;

    // Baseline: the same number of one-row UPDATEs in transactions of the same size.
    let (rows, took) = nudge_store::baseline::update_runs_one_by_one(&path, args.batch).await?;
    let base = rows as f64 / took.as_secs_f64();
    println!("baseline (one-row UPDATE per run, same transaction size, same file): {base:.0} rows/s");
    Ok(())
}
