//! `nudge bench ...`: reproducible benchmarks whose figures go into BENCHMARKS.md.
//!
//! `nudge bench ingest` starts a real `nudge serve` process (this same binary) on a
//! fresh database, drives `/v1/batch` over loopback with concurrent clients, and then,
//! in the same run, measures the baseline: the same rows inserted straight into the
//! same kind of database with one prepared statement.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use nudge_store::baseline::{self, PgBenchSchema, RawEvent};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum Which {
    /// Events per second through /v1/batch, latency, and the raw-insert baseline.
    Ingest(IngestArgs),
    /// Full computation of the ready-made segments against hand-written SQL, and
    /// event-to-membership latency with many live segments (SQLite).
    Segments(crate::bench_segments::SegmentArgs),
    /// Personalised MJML + Liquid emails built per second, against the mjml npm library.
    Render(crate::bench_messages::RenderArgs),
    /// Emails per second from the outbox to a local SMTP server, against Postfix's smtp-source.
    Email(crate::bench_messages::EmailArgs),
    /// Durable journey step transitions per second (SQLite), against plain UPDATEs.
    Journeys(crate::bench_journeys::JourneyArgs),
    /// Runs waiting on timers: memory, timers fired per second when due together, and
    /// their lateness at a steady rate (SQLite).
    JourneyTimers(crate::bench_journey_timers::TimerArgs),
    /// Event → message handed to the channel while ingesting a steady event rate.
    JourneyLatency(crate::bench_journey_latency::LatencyArgs),
    /// A campaign to a million contacts: snapshot and enqueue time while ingesting,
    /// delivery against Postfix's smtp-source, peak memory, the A/B winner's delay.
    Campaign(crate::bench_campaign::CampaignArgs),
    /// Server time per web UI page on a large SQLite workspace, and the page weight.
    Ui(crate::bench_ui::UiArgs),
    /// Campaign and workspace report latency on a SQLite workspace holding 10,000,000
    /// message events written through the store's message APIs.
    Reports(crate::bench_reports::ReportArgs),
    /// Form submissions per second through `POST /f/{slug}` (each a new contact with
    /// traits and consent, one transaction) and their latency.
    Forms(crate::bench_forms::FormArgs),
    /// Send-time optimisation by simulation: the share of contacts whose hidden best
    /// hour is found within ±1 h, and the simulated open-rate lift, against one
    /// workspace-wide hour and random hours.
    SendTime(crate::bench_send_time::SendTimeArgs),
    /// Product recommendations: hit rate@10 and coverage on a held-out split of a
    /// synthetic latent-category data set against the best-seller baseline, and the
    /// time to refresh the similarities with ingestion's latency meanwhile.
    Recommendations(crate::bench_recommendations::RecommendationArgs),
    /// Ingestion's rate with a retention pass deleting old events at the same time
    /// against without one, on fresh SQLite workspaces, alternating.
    Retention(crate::bench_retention::RetentionArgs),
    /// Mixed load for `--minutes` against a `nudge serve` process on SQLite (batches,
    /// live segments, a journey that waits and e-mails over SMTP, API reads, a
    /// campaign): RSS, CPU and latency per minute, the RSS trend and p99 stability.
    Soak(crate::bench_soak::SoakArgs),
}

#[derive(Args, Clone)]
pub struct IngestArgs {
    /// Events to send in total.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Events per /v1/batch request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Distinct users the events are spread over.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Benchmark PostgreSQL at this URL (a fresh schema is created and dropped)
    /// instead of embedded SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// Live segments to create before sending (the engine keeps them up to date
    /// while ingesting); their definitions read the events sent.
    #[arg(long, default_value_t = 0)]
    segments: usize,
    /// Also send the same batches as Segment's browser library does (`/v1/b`,
    /// `text/plain`, the write key in the body, an allowed `Origin`), each way twice
    /// in turn on fresh workspaces, and report the ratio to `/v1/batch`.
    #[arg(long)]
    browser: bool,
    /// Active lead-scoring rules (read the events sent): the runs are made on fresh
    /// workspaces without rules and with them, alternating twice, and compared.
    #[arg(long, default_value_t = 0)]
    scoring_rules: usize,
    /// With `--scoring-rules`: how many times to alternate the runs without and with
    /// rules (each pair is compared on its own; the median ratio is reported).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
}

pub async fn run(which: Which) -> anyhow::Result<()> {
    match which {
        Which::Ingest(args) => ingest(args).await,
        Which::Segments(args) => crate::bench_segments::run(args).await,
        Which::Render(args) => crate::bench_messages::render(args),
        Which::Email(args) => crate::bench_messages::email(args).await,
        Which::Journeys(args) => crate::bench_journeys::run(args).await,
        Which::JourneyTimers(args) => crate::bench_journey_timers::run(args).await,
        Which::JourneyLatency(args) => crate::bench_journey_latency::run(args).await,
        Which::Ui(args) => crate::bench_ui::run(args).await,
        Which::Campaign(args) => crate::bench_campaign::run(args).await,
        Which::Reports(args) => crate::bench_reports::run(args).await,
        Which::Forms(args) => crate::bench_forms::run(args).await,
        Which::SendTime(args) => crate::bench_send_time::run(args),
        Which::Recommendations(args) => crate::bench_recommendations::run(args).await,
        Which::Retention(args) => crate::bench_retention::run(args).await,
        Which::Soak(args) => crate::bench_soak::run(args).await,
    }
}

pub(crate) const ADMIN: &str = "na_bench_admin";
pub(crate) const WRITE: &str = "nw_bench_write";

/// A `nudge serve` child process, killed when dropped.
pub(crate) struct Server(Child);

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `nudge serve` (this binary) on a free loopback port with the benchmark's
/// keys, on `data_dir` (or the PostgreSQL at `database_url`), with `env` added to its
/// environment; answers once it listens, with its base URL.
pub(crate) fn start_server(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    env: &[(&str, &str)],
) -> anyhow::Result<(Server, String)> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("NUDGE_ADMIN_KEY", ADMIN)
        .env("NUDGE_WRITE_KEY", WRITE)
        .env(
            "NUDGE_LOG",
            std::env::var("NUDGE_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env("NUDGE_INGEST_QUEUE", "100000")
        .env_remove("NUDGE_DATABASE_URL")
        .env_remove("NUDGE_CONFIG")
        .stdout(Stdio::piped());
    if let Some(url) = database_url {
        cmd.env("NUDGE_DATABASE_URL", url);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().context("starting nudge serve")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let server = Server(child);
    for line in lines.by_ref() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("nudge listening on ") {
            let url = rest.split_whitespace().next().unwrap_or_default().to_string();
            std::thread::spawn(move || for _ in lines {});
            return Ok((server, url));
        }
    }
    bail!("the server exited before listening")
}

/// The Segment `userId` of the benchmarks' `k`-th user.
pub(crate) fn bench_user(k: usize) -> String {
    format!("bench-user-{k}")
}

/// One event row as a client sends it: ~300 bytes of properties, like a real track call.
pub(crate) fn event(i: usize, users: usize) -> Value {
    json!({
        "type": "track",
        "userId": bench_user((i.wrapping_mul(2_654_435_761)) % users),
        "event": (["Product Viewed", "Product Added", "Order Completed", "Page Scrolled"][i % 4]),
        "messageId": format!("bench-{i}"),
        "timestamp": "2026-11-01T12:00:00.000Z",
        "properties": {
            "product_id": format!("SKU-{}", i % 5000), "name": "Trail Running Shoes", "category": "sport",
            "price": 119.0, "quantity": 1 + i % 3, "currency": "EUR", "cart_id": format!("cart-{}", i / 7),
            "url": "https://shop.example/products/trail-running-shoes?utm_source=newsletter&utm_medium=email"
        },
        "context": {"ip": "198.51.100.7", "locale": "fr-FR", "timezone": "Europe/Paris",
                    "library": {"name": "analytics-node", "version": "2.1.0"}}
    })
}

/// The nearest-rank percentile `p` (0–1) of sorted values: the smallest value with at
/// least a share `p` of the values at or below it (the default of `T` when empty).
pub(crate) fn nearest_rank<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// [`nearest_rank`] of sorted durations, in milliseconds.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    nearest_rank(sorted, p).as_secs_f64() * 1e3
}

pub(crate) async fn metric(http: &reqwest::Client, url: &str, name: &str) -> anyhow::Result<f64> {
    let text = http.get(format!("{url}/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

/// How the batches reach Nudge: as a server SDK posts them, or as Segment's browser
/// library does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// `POST /v1/batch`, JSON, the write key as the Basic username.
    Server,
    /// `POST /v1/b`, `text/plain`, the write key in the body, a page's `Origin`.
    Browser,
}

const BROWSER_ORIGIN: &str = "https://shop.example";

/// One run: a fresh workspace, the batches sent by the clients, what the server said.
struct Sent {
    elapsed: Duration,
    /// CPU time the server process used while the batches were sent (user and
    /// system, all threads), when the platform tells (`/proc`).
    server_cpu: Option<Duration>,
    latencies: Vec<Duration>,
    retried: usize,
    commits: f64,
    committed: f64,
}

/// The CPU time a process has used (user and system, all its threads), from
/// `/proc/<pid>/stat` (in clock ticks of 1/100 s, Linux's `USER_HZ`).
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces), from field 3 on.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// A field of `/proc/<pid>/status` given in kB (`VmRSS:`, `VmHWM:`, `RssAnon:`, ...),
/// of process `pid` or of this one; 0 when the platform does not tell.
pub(crate) fn status_kib(pid: Option<u32>, field: &str) -> f64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
}

/// The median of some numbers (the mean of the middle two for an even count).
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The request bodies, built before any clock starts.
fn bodies(args: &IngestArgs, wire: Wire) -> Vec<Vec<u8>> {
    (0..args.events.div_ceil(args.batch))
        .map(|b| {
            let items: Vec<Value> = (b * args.batch..((b + 1) * args.batch).min(args.events))
                .map(|i| event(i, args.users))
                .collect();
            let body = match wire {
                Wire::Server => json!({ "batch": items }),
                Wire::Browser => json!({ "batch": items, "writeKey": WRITE, "sentAt": "2026-11-01T12:00:01.000Z" }),
            };
            serde_json::to_vec(&body).unwrap_or_default()
        })
        .collect()
}

/// `n` scoring rules that read the benchmark's events: each of the four event names
/// with a property filter and a cap, once-per-contact rules, and rules on page
/// views, opens and trait changes (which the run does not send), over two scores.
fn scoring_rules(n: usize) -> Vec<Value> {
    let events = ["Product Viewed", "Product Added", "Order Completed", "Page Scrolled"];
    (0..n)
        .map(|i| {
            let score = if i % 3 == 2 { "engagement" } else { "lead_score" };
            let (trigger, frequency) = match i % 5 {
                0 => (
                    json!({"type": "event", "event": events[i % 4],
                           "where": [{"property": "quantity", "op": "greater_or_equal", "value": 1 + (i % 3)}]}),
                    json!({"type": "repeat", "cap": {"max": 3, "per": "day"}}),
                ),
                1 => (
                    json!({"type": "event", "event": events[i % 4]}),
                    json!({"type": "once"}),
                ),
                2 => (
                    json!({"type": "event", "event": events[i % 4],
                           "where": [{"property": "product_id", "op": "equals", "value": format!("SKU-{}", i * 97 % 5000)}]}),
                    json!({"type": "repeat"}),
                ),
                3 => (
                    json!({"type": "page_view", "url": format!("/section-{i}/*")}),
                    json!({"type": "repeat", "cap": {"max": 2, "per": "week"}}),
                ),
                _ => (
                    json!({"type": "trait_changed", "trait": format!("plan_{i}")}),
                    json!({"type": "once"}),
                ),
            };
            json!({"name": format!("bench rule {i}"), "score": score, "points": 1 + (i % 7) as i64,
                   "trigger": trigger, "frequency": frequency})
        })
        .collect()
}

/// Starts a server on a fresh workspace, prepares it (live segments, the browser
/// origin), sends every batch with `args.clients` concurrent clients and reads the
/// group-commit counters.
async fn send_through(args: &IngestArgs, wire: Wire, batches: std::sync::Arc<Vec<Vec<u8>>>) -> anyhow::Result<Sent> {
    let dir = tempfile_dir()?;
    let pg = match &args.postgres {
        Some(url) => Some(PgBenchSchema::create(url).await?),
        None => None,
    };
    let db_url = pg.as_ref().map(|p| p.url.clone());
    let (server, url) = start_server(&dir, db_url.as_deref(), &[])?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    for i in 0..args.segments {
        let definition = crate::bench_segments::varied_definition(i);
        let r = http
            .post(format!("{url}/api/v1/segments"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": format!("live {i}"), "definition": definition}))
            .send()
            .await?;
        if r.status() != 201 {
            bail!("creating live segment {i}: {} {}", r.status(), r.text().await?);
        }
    }
    if args.scoring_rules > 0 {
        let admin = |method: reqwest::Method, path: &str, body: Value| {
            http.request(method, format!("{url}{path}"))
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
        };
        for (name, def) in [
            (
                "lead_score",
                json!({"half_life_days": 30, "stages": [{"name": "cold"}, {"name": "warm", "from": 20}, {"name": "hot", "from": 50}]}),
            ),
            ("engagement", json!({"half_life_days": 7})),
        ] {
            let r = admin(reqwest::Method::PUT, &format!("/api/v1/scores/{name}"), def).await?;
            if !r.status().is_success() {
                bail!("defining score {name}: {}", r.text().await?);
            }
        }
        for rule in scoring_rules(args.scoring_rules) {
            let r = admin(reqwest::Method::POST, "/api/v1/scoring-rules", rule).await?;
            if !r.status().is_success() {
                bail!("creating a scoring rule: {}", r.text().await?);
            }
        }
    }

    if wire == Wire::Browser {
        let keys: Value = http
            .get(format!("{url}/api/v1/keys"))
            .bearer_auth(ADMIN)
            .send()
            .await?
            .json()
            .await?;
        let id = keys["data"]
            .as_array()
            .and_then(|ks| ks.iter().find(|k| k["kind"] == "write"))
            .and_then(|k| k["id"].as_i64())
            .context("the workspace's write key")?;
        let r = http
            .put(format!("{url}/api/v1/keys/{id}/browser"))
            .bearer_auth(ADMIN)
            .json(&json!({"allowed_origins": [BROWSER_ORIGIN]}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("allowing the browser origin: {} {}", r.status(), r.text().await?);
        }
    }
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_before = cpu_time(server.pid());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (http, url, batches, next) = (http.clone(), url.clone(), batches.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = batches.get(i) else { break };
                let t = Instant::now();
                loop {
                    let req = match wire {
                        Wire::Server => http
                            .post(format!("{url}/v1/batch"))
                            .basic_auth(WRITE, Some(""))
                            .header("content-type", "application/json"),
                        Wire::Browser => http
                            .post(format!("{url}/v1/b"))
                            .header("content-type", "text/plain")
                            .header("origin", BROWSER_ORIGIN),
                    };
                    match req.body(body.clone()).send().await {
                        Ok(r) if r.status() == 200 => break,
                        Ok(r) if r.status() == 503 => {
                            failures += 1;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Ok(r) => panic!("unexpected answer {}", r.status()),
                        Err(e) => panic!("request failed: {e}"),
                    }
                }
                latencies.push(t.elapsed());
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut retried = 0;
    for t in tasks {
        let (l, f) = t.await?;
        latencies.extend(l);
        retried += f;
    }
    let elapsed = started.elapsed();
    let server_cpu = cpu_before.zip(cpu_time(server.pid())).map(|(a, b)| b.saturating_sub(a));
    latencies.sort();
    let commits = metric(&http, &url, "nudge_ingest_commits_total").await?;
    let committed = metric(&http, &url, "nudge_ingest_messages_committed_total").await?;
    drop(server);
    if let Some(p) = pg {
        p.drop_schema().await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Sent {
        elapsed,
        server_cpu,
        latencies,
        retried,
        commits,
        committed,
    })
}

async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let backend = if args.postgres.is_some() { "postgres" } else { "sqlite" };
    let server_batches = std::sync::Arc::new(bodies(&args, Wire::Server));
    let body_bytes: usize = server_batches.iter().map(Vec::len).sum();
    eprintln!(
        "bench ingest ({backend}): {} events in {} batches of {}, {} clients, {:.1} MB of JSON, {} live segments",
        args.events,
        server_batches.len(),
        args.batch,
        args.clients,
        body_bytes as f64 / 1e6,
        args.segments
    );
    if args.scoring_rules > 0 {
        // Without rules and with them, alternating on fresh workspaces; each pair is
        // compared on its own (the machine's load drifts between pairs).
        let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut cpu: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..args.rounds.max(1) {
            for (n, rules) in [0, args.scoring_rules].into_iter().enumerate() {
                let a = IngestArgs {
                    scoring_rules: rules,
                    ..args.clone()
                };
                let sent = send_through(&a, Wire::Server, server_batches.clone()).await?;
                rates[n].push(args.events as f64 / sent.elapsed.as_secs_f64());
                if let Some(c) = sent.server_cpu {
                    cpu[n].push(c.as_secs_f64() * 1e6 / args.events as f64);
                }
            }
        }
        let show = |v: &[f64]| v.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ");
        let ratios: Vec<f64> = rates[1].iter().zip(&rates[0]).map(|(w, wo)| w / wo).collect();
        println!(
            "backend: {backend}; {} events, {} clients x batches of {}, {} users, {} live segments",
            args.events, args.clients, args.batch, args.users, args.segments
        );
        println!("without scoring rules:  {} events/s", show(&rates[0]));
        println!(
            "with {} scoring rules:  {} events/s",
            args.scoring_rules,
            show(&rates[1])
        );
        println!(
            "with / without, each pair: {}",
            ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ")
        );
        println!(
            "with / without = {:.2} ({:.1} % slower; median of {} alternating pairs)",
            median(&ratios),
            (1.0 - median(&ratios)) * 100.0,
            ratios.len()
        );
        if cpu[0].len() == rates[0].len() && cpu[1].len() == rates[1].len() {
            let per: Vec<f64> = cpu[1].iter().zip(&cpu[0]).map(|(w, wo)| w / wo).collect();
            println!(
                "server CPU per event: without {} µs, with {} µs; with / without = {:.2} (median of pairs)",
                show(&cpu[0]),
                show(&cpu[1]),
                median(&per)
            );
        }
        return Ok(());
    }
    let sent = send_through(&args, Wire::Server, server_batches.clone()).await?;
    let rate = args.events as f64 / sent.elapsed.as_secs_f64();
    let mean_commit = if sent.commits > 0.0 {
        sent.committed / sent.commits
    } else {
        0.0
    };

    // The browser library's wire, alternating with the server's on fresh workspaces
    // so that the machine's drift touches both alike.
    let mut browser_runs = Vec::new();
    if args.browser {
        let browser_batches = std::sync::Arc::new(bodies(&args, Wire::Browser));
        let mut server_rates = vec![rate];
        for round in 0..2 {
            let b = send_through(&args, Wire::Browser, browser_batches.clone()).await?;
            browser_runs.push((args.events as f64 / b.elapsed.as_secs_f64(), b));
            if round == 0 {
                let s = send_through(&args, Wire::Server, server_batches.clone()).await?;
                server_rates.push(args.events as f64 / s.elapsed.as_secs_f64());
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let browser_rates: Vec<f64> = browser_runs.iter().map(|(r, _)| *r).collect();
        println!(
            "backend: {backend}; {} events, {} clients x batches of {}, {} users, {} live segments",
            args.events, args.clients, args.batch, args.users, args.segments
        );
        println!(
            "/v1/batch (server SDKs):  {} events/s",
            server_rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (r, b) in &browser_runs {
            println!(
                "/v1/b (browser library):  {r:>9.0} events/s; latency p50 {:.1} ms, p99 {:.1} ms ({} retried after 503)",
                percentile(&b.latencies, 0.50),
                percentile(&b.latencies, 0.99),
                b.retried
            );
        }
        println!(
            "/v1/b / /v1/batch = {:.2} (mean of {} browser runs over mean of {} server runs, alternating)",
            mean(&browser_rates) / mean(&server_rates),
            browser_rates.len(),
            server_rates.len()
        );
        return Ok(());
    }

    // Baselines: the same rows straight into the same kind of database, once in
    // transactions as large as Nudge's average group commit, once in 10,000-row
    // transactions (the best case for the index maintenance).
    let dir = tempfile_dir()?;
    let pg = match &args.postgres {
        Some(url) => Some(PgBenchSchema::create(url).await?),
        None => None,
    };
    let commit_rows = (mean_commit.round() as usize).max(1);
    let mut baselines = Vec::new();
    for (n, rows) in [commit_rows, 10_000].into_iter().enumerate() {
        let raw = baseline_rows(args.events, args.users);
        let took = match &pg {
            Some(p) => baseline::raw_insert_events_postgres(p, raw, rows).await?,
            None => baseline::raw_insert_events_sqlite(&dir.join(format!("baseline-{n}.db")), raw, rows).await?,
        };
        baselines.push((rows, args.events as f64 / took.as_secs_f64()));
    }
    if let Some(p) = pg {
        p.drop_schema().await?;
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "backend: {backend}; {} events, {} clients x batches of {}, {} users, {} live segments",
        args.events, args.clients, args.batch, args.users, args.segments
    );
    println!(
        "nudge /v1/batch:   {rate:>9.0} events/s durably acknowledged ({:.2} s)",
        sent.elapsed.as_secs_f64()
    );
    println!(
        "request latency:   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} requests, {} retried after 503)",
        percentile(&sent.latencies, 0.50),
        percentile(&sent.latencies, 0.99),
        percentile(&sent.latencies, 1.0),
        sent.latencies.len(),
        sent.retried
    );
    println!(
        "group commit:      {:.0} commits, {mean_commit:.0} messages per commit on average",
        sent.commits
    );
    for (rows, raw) in &baselines {
        println!(
            "raw insert:        {raw:>9.0} rows/s (same rows and schema, {rows}-row transactions); nudge / raw = {:.2}",
            rate / raw
        );
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("nudge-bench-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The rows of the raw-insert baseline: the events sent, with one contact per user,
/// as ingestion would create.
fn baseline_rows(events: usize, users: usize) -> Vec<RawEvent> {
    (0..events)
        .map(|i| {
            let e = event(i, users);
            RawEvent {
                message_id: format!("bench-{i}"),
                contact_id: ((i.wrapping_mul(2_654_435_761)) % users) as i64 + 1,
                properties: e["properties"].to_string(),
                context: e["context"].to_string(),
            }
        })
        .collect()
}
