//! `nudge bench journey-timers`: many runs waiting on timers (SQLite).
//!
//! A fresh database gets `--runs` contacts, each entering a live journey `wait 1h →
//! end` through the engine (a `Go` event per contact, the inbox, `start_runs`). The
//! entries are made on an injected clock so that the timers come due in three groups:
//!
//! - `--spread` runs whose timers come due one after another over `--spread-seconds`
//!   (a steady rate): their **lateness** (the commit of the transition that fired them
//!   minus the due time, on the wall clock) is measured;
//! - `--together` runs whose timers all come due at the same moment: **timers fired
//!   per second** while that backlog drains;
//! - the rest, due a day later: they only wait (memory with every run waiting).
//!
//! The measured phase runs the engine on a real-time clock, rounds back to back
//! (sleeping until the next due timer when idle, as `JourneyEngine::run` does). The
//! process's resident memory (`VmRSS`, and its peak `VmHWM`) is read from
//! `/proc/self/status` once every run waits and after the drain. Baseline in the same
//! run: as many one-row `UPDATE`s of waiting timer rows as timers fired together, in
//! transactions of the round size, on the same file.

use crate::bench::nearest_rank;
use anyhow::Context;
use clap::Args;
use nudge_core::{Call, CallKind, Clock, ManualClock, Millis};
use nudge_engine::{JourneyEngine, JourneyEngineConfig};
use nudge_store::{JourneyStatus, NewJourney, SqliteStore, Store};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct TimerArgs {
    /// Runs waiting in all (one contact each).
    #[arg(long, default_value_t = 1_000_000)]
    runs: usize,
    /// Runs whose timers come due spread evenly over `--spread-seconds`.
    #[arg(long, default_value_t = 50_000)]
    spread: usize,
    #[arg(long, default_value_t = 20)]
    spread_seconds: u64,
    /// Runs whose timers all come due at the same moment.
    #[arg(long, default_value_t = 100_000)]
    together: usize,
    /// Inbox events and timers per engine round (one transaction).
    #[arg(long, default_value_t = 2000)]
    batch: usize,
}

const HOUR: Millis = 3_600_000;

/// Wall-clock milliseconds, shifted so the measured phase starts at `origin`.
struct ShiftedClock {
    origin: Millis,
    start: Instant,
}

impl Clock for ShiftedClock {
    fn now(&self) -> Millis {
        self.origin + self.start.elapsed().as_millis() as Millis
    }
}

fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub async fn run(args: TimerArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.spread + args.together <= args.runs,
        "--spread + --together must not exceed --runs"
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await?);
    let t0: Millis = 1_805_112_000_000;
    let clock = Arc::new(ManualClock::new(t0));
    let n = args.runs;
    let call = |kind: CallKind, i: usize| {
        let mut c = Call::generated(kind, format!("{kind:?}-{i}"), Some(format!("u{i}")), t0);
        if kind == CallKind::Track {
            c.event = Some("Go".into());
        }
        c
    };
    let setup = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        store
            .ingest(chunk.iter().map(|&i| call(CallKind::Identify, i)).collect(), t0)
            .await?;
    }
    eprintln!("{n} contacts in {:.0} s", setup.elapsed().as_secs_f64());
    let definition = json!({
        "trigger": {"type": "event", "event": "Go"},
        "start": "wait",
        "steps": [{"id": "wait", "type": "wait", "duration": {"hours": 1}}],
        "settings": {"re_entry": {"type": "always"}}
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
    let config = JourneyEngineConfig {
        batch: args.batch,
        ..Default::default()
    };
    let setup_engine = JourneyEngine::new(store.clone(), clock.clone(), config.clone());
    setup_engine.listen().await?;

    let spread_ms = (args.spread_seconds * 1000) as Millis;
    let together_at = t0 + spread_ms + 3000;
    // Spread entries come in groups, one group every 10 ms.
    let ticks = (args.spread_seconds * 100).max(1) as usize;
    // The runs that only wait enter first, a day later on the clock (so no setup
    // round reaches the measured timers), then the clock goes back for the others.
    let far = n - args.spread - args.together;
    let entry_at = |i: usize| -> Millis {
        if i < far {
            t0 + 24 * HOUR
        } else if i < far + args.spread {
            t0 + ((i - far) * ticks / args.spread.max(1)) as Millis * 10
        } else {
            together_at
        }
    };
    let entries = Instant::now();
    let mut entered = 0;
    let mut i = 0;
    let mut reported = 0;
    while i < n {
        // The events of one entry moment (at most 5000 at a time) are ingested, then
        // the engine takes them in on the clock of that moment.
        let at = entry_at(i);
        let mut end = i;
        while end < n && end - i < 5000 && entry_at(end) == at {
            end += 1;
        }
        store
            .ingest((i..end).map(|k| call(CallKind::Track, k)).collect(), t0)
            .await?;
        clock.set(at);
        loop {
            let s = setup_engine.run_once().await?;
            entered += s.started;
            if !s.busy() {
                break;
            }
        }
        i = end;
        if i >= reported + 100_000 || i == n {
            reported = i;
            eprintln!(
                "{i} runs entered ({:.0} runs/s)",
                i as f64 / entries.elapsed().as_secs_f64()
            );
        }
    }
    let entry_secs = entries.elapsed().as_secs_f64();
    anyhow::ensure!(entered == n, "{entered} of {n} runs entered");
    drop(setup_engine);
    let (rss_waiting, _) = memory();
    let db_mb = std::fs::metadata(&path)?.len() / (1 << 20);
    println!("{n} runs waiting on timers (SQLite, {db_mb} MiB database)");
    println!(
        "entries through the engine: {n} in {entry_secs:.0} s = {:.0} runs/s",
        n as f64 / entry_secs
    );
    println!("memory with every run waiting: VmRSS {rss_waiting} MiB");

    // The measured phase: the wall clock, starting 2 s before the first timer is due.
    let first_due = t0 + HOUR;
    let live = Arc::new(ShiftedClock {
        origin: first_due - 2000,
        start: Instant::now(),
    });
    let engine = JourneyEngine::new(store.clone(), live.clone(), config);
    let last_due = together_at + HOUR;
    let mut spread_lateness: Vec<Millis> = Vec::with_capacity(args.spread);
    let mut together_lateness: Vec<Millis> = Vec::with_capacity(args.together);
    let mut together_fired = 0usize;
    loop {
        let s = engine.run_once().await?;
        let committed = live.now();
        for due in &s.fired {
            if *due >= last_due {
                together_lateness.push(committed - due);
                together_fired += 1;
            } else {
                spread_lateness.push(committed - due);
            }
        }
        if together_fired >= args.together {
            break;
        }
        if !s.busy() {
            let next = store.next_timer_due().await?.unwrap_or(live.now() + 500);
            if std::env::var_os("NUDGE_BENCH_DEBUG").is_some() {
                eprintln!(
                    "idle at {}: next due {next} ({} ms away), fired {} + {together_fired}",
                    live.now(),
                    next - live.now(),
                    spread_lateness.len()
                );
            }
            let wait = (next - live.now()).clamp(0, 500) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
    let (rss_after, hwm) = memory();
    spread_lateness.sort_unstable();
    together_lateness.sort_unstable();
    // Timers fired per second: they all came due at one moment; the last one's
    // transition committed this long after it.
    let drain_secs = together_lateness.last().copied().unwrap_or(0) as f64 / 1000.0;
    println!(
        "steady timers ({} over {} s, {:.0}/s): lateness p50 {} ms, p99 {} ms, max {} ms",
        args.spread,
        args.spread_seconds,
        args.spread as f64 / args.spread_seconds as f64,
        nearest_rank(&spread_lateness, 0.5),
        nearest_rank(&spread_lateness, 0.99),
        spread_lateness.last().copied().unwrap_or(0)
    );
    println!(
        "{} timers due together: drained in {drain_secs:.2} s = {:.0} timers/s; lateness p50 {} ms, p99 {} ms",
        args.together,
        args.together as f64 / drain_secs.max(1e-9),
        nearest_rank(&together_lateness, 0.5),
        nearest_rank(&together_lateness, 0.99),
    );
    println!("memory after the drain: VmRSS {rss_after} MiB, peak VmHWM {hwm} MiB");
    let still = store.runs_per_step(j.id).await?;
    println!("runs still waiting: {still:?}");
    store.close().await;

    // Baseline: as many one-row UPDATEs of waiting timers as timers fired together,
    // in transactions of the engine's round size, on the same file.
    let base = nudge_store::baseline::update_timers_one_by_one(&path, args.together, args.batch).await?;
    println!(
        "baseline (one-row UPDATE per waiting timer, {} rows, same transaction size, same file): {:.0} rows/s",
        base.0,
        base.0 as f64 / base.1.as_secs_f64().max(1e-9)
    );
    Ok(())
}
