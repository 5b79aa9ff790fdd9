//! `nudge bench soak`: mixed load at a steady rate for `--minutes` against a real
//! `nudge serve` process (this binary) on embedded SQLite in a fresh data directory,
//! sending e-mail over SMTP to the test suite's aiosmtpd sink (`tests/smtp/sink.py`,
//! count-only), sampled every minute.
//!
//! Before the clock starts: the `--users` contacts are identified with an e-mail
//! address and traits, `--segments` live segments are saved
//! (`bench_segments::varied_definition`), a journey is published (`Trial Started` →
//! wait `--wait-seconds` → an MJML e-mail) and a campaign drafted to one twentieth of
//! the contacts.
//!
//! The load, open-loop (each request leaves on its own clock, whatever the earlier
//! ones are doing, so a slow server shows as latency, not as less load):
//! - `POST /v1/batch` of `--batch` calls at `--rate` calls per second: the track
//!   events of `nudge bench ingest` (stamped now), one identify in ten with changed
//!   traits, and `--signups` `Trial Started` events per second, each starting a run;
//! - `--reads` marketer page views per second, in turn: a contact (lookup by user id,
//!   then its timeline), the segment list, one segment with its size, the journey
//!   list, the journey with its statistics, the workspace report;
//! - in the middle minute (unless `--no-campaign`), the campaign is sent.
//!
//! Every minute: the server's RSS (`VmRSS`, and its anonymous and file-backed parts)
//! and CPU time, the load generator's and the SMTP sink's CPU time, the machine's
//! busy time (`/proc/stat`) and load average, the calls the server committed
//! (`nudge_ingest_messages_committed_total`), the e-mails the sink accepted, the
//! database's size, and per kind of request the count, errors (any answer other than
//! 2xx, or a transport error) and p50/p99/max latency of the requests finished in that
//! minute. At the end: the tables and the verdict (the RSS trend after `--warmup`
//! minutes, p99 stability, errors); the exit status is non-zero if any request failed.

use crate::bench::{ADMIN, WRITE, bench_user, cpu_time, event, median, metric, percentile, start_server, status_kib};
use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct SoakArgs {
    /// Minutes of load; one sample per minute.
    #[arg(long, default_value_t = 30)]
    minutes: usize,
    /// Calls per second through `POST /v1/batch` (track events, identifies, sign-ups).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Calls per `/v1/batch` request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Contacts the calls are spread over (all identified before the load starts).
    #[arg(long, default_value_t = 50_000)]
    users: usize,
    /// Live segments.
    #[arg(long, default_value_t = 6)]
    segments: usize,
    /// `Trial Started` events per second (among the calls); each starts a journey run
    /// that waits, then sends an e-mail.
    #[arg(long, default_value_t = 2.0)]
    signups: f64,
    /// The journey's wait before its e-mail, in seconds.
    #[arg(long, default_value_t = 60)]
    wait_seconds: u64,
    /// Marketer page views per second, each one admin API read (a contact: two).
    #[arg(long, default_value_t = 2.0)]
    reads: f64,
    /// Minutes at the start left out of the RSS trend.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Do not send the campaign in the middle of the run.
    #[arg(long)]
    no_campaign: bool,
    /// Also write the samples and the verdict to this file as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Python with aiosmtpd for the SMTP sink (default: the venv of
    /// `scripts/install-test-deps`).
    #[arg(long, env = "NUDGE_PYTHON")]
    python: Option<PathBuf>,
}

/// The kinds of request whose latency is reported.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Batch,
    Contact,
    Timeline,
    Segments,
    Segment,
    Journeys,
    Journey,
    Report,
    Campaign,
}

/// The kinds in the tables (the campaign's one send is reported on its own).
const KINDS: [Kind; 8] = [
    Kind::Batch,
    Kind::Contact,
    Kind::Timeline,
    Kind::Segments,
    Kind::Segment,
    Kind::Journeys,
    Kind::Journey,
    Kind::Report,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Batch => "batch",
            Kind::Contact => "contact",
            Kind::Timeline => "timeline",
            Kind::Segments => "segments",
            Kind::Segment => "segment",
            Kind::Journeys => "journeys",
            Kind::Journey => "journey",
            Kind::Report => "report",
            Kind::Campaign => "campaign",
        }
    }

    fn request(self) -> &'static str {
        match self {
            Kind::Batch => "POST /v1/batch",
            Kind::Contact => "GET /api/v1/contacts/lookup?user_id=",
            Kind::Timeline => "GET /api/v1/contacts/{id}/events",
            Kind::Segments => "GET /api/v1/segments",
            Kind::Segment => "GET /api/v1/segments/{id}",
            Kind::Journeys => "GET /api/v1/journeys",
            Kind::Journey => "GET /api/v1/journeys/{id}",
            Kind::Report => "GET /api/v1/reports",
            Kind::Campaign => "POST /api/v1/campaigns/{id}/send",
        }
    }
}

/// One finished request.
struct Record {
    kind: Kind,
    latency: Duration,
    ok: bool,
}

/// The requests finished since the last sample, and the first failures' texts.
#[derive(Default)]
struct Log {
    records: Mutex<Vec<Record>>,
    failures: Mutex<Vec<String>>,
}

impl Log {
    fn record(&self, kind: Kind, latency: Duration, failure: Option<String>) {
        let ok = failure.is_none();
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Record { kind, latency, ok });
        if let Some(f) = failure {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if failures.len() < 20 {
                failures.push(format!("{}: {f}", kind.name()));
            }
        }
    }

    fn take(&self) -> Vec<Record> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Sends a request, records its latency (until the whole body is read) and outcome,
/// and answers the JSON body of a 2xx answer.
async fn timed(log: &Log, kind: Kind, req: reqwest::RequestBuilder) -> Option<Value> {
    let started = Instant::now();
    let answer = async {
        let r = req.send().await?;
        let status = r.status();
        Ok::<_, reqwest::Error>((status, r.bytes().await?))
    }
    .await;
    let latency = started.elapsed();
    match answer {
        Ok((status, body)) if status.is_success() => {
            log.record(kind, latency, None);
            Some(serde_json::from_slice(&body).unwrap_or(Value::Null))
        }
        Ok((status, body)) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            log.record(kind, latency, Some(format!("{status} {text}")));
            None
        }
        Err(e) => {
            log.record(kind, latency, Some(format!("transport error: {e}")));
            None
        }
    }
}

/// What the workspace holds before the load starts.
struct Setup {
    segments: Vec<i64>,
    journey: i64,
    campaign: Option<i64>,
}

/// The traits a contact is identified with before the load.
fn first_traits(k: usize) -> Value {
    const NAMES: [&str; 6] = ["Ada", "Grace", "Alan", "Barbara", "Ken", "Radia"];
    json!({
        "email": format!("{}@soak.example", bench_user(k)),
        "first_name": NAMES[k % NAMES.len()],
        "plan": (["free", "member", "trial"][k % 3]),
        "cohort": k % 20,
        "birthday": format!("{}-{:02}-{:02}", 1950 + k % 58, 1 + k % 12, 1 + k % 28),
    })
}

/// The `i`-th call of the load: the `n`-th `Trial Started` sign-up when `signup` is
/// `Some(n)`, else one identify in ten (changed traits), else a track event of `nudge
/// bench ingest` stamped with the time it is sent (so that the segments' windows see
/// it).
fn call(i: usize, users: usize, signup: Option<usize>) -> Value {
    let mut c = event(i, users);
    c["messageId"] = json!(format!("soak-{i}"));
    if let Some(o) = c.as_object_mut() {
        o.remove("timestamp");
    }
    if let Some(n) = signup {
        // Sign-ups walk through every contact (7,919 is prime, so coprime with any
        // user count it does not divide): the calls of a sign-up slot would all fall
        // on a few contacts, each already waiting in a run.
        c["userId"] = json!(bench_user(n.wrapping_mul(7_919) % users));
        c["event"] = json!("Trial Started");
        c["properties"] = json!({"plan": "trial", "source": "pricing page"});
    } else if i.is_multiple_of(10) {
        c["type"] = json!("identify");
        if let Some(o) = c.as_object_mut() {
            o.remove("event");
            o.remove("properties");
        }
        c["traits"] = json!({"plan": (["free", "member", "trial"][(i / 10) % 3]), "visits": i / 10,
                             "last_page": format!("/products/{}", i % 500)});
    } else if c["event"] == "Order Completed" {
        let price = c["properties"]["price"].as_f64().unwrap_or(0.0);
        let quantity = c["properties"]["quantity"].as_f64().unwrap_or(1.0);
        c["properties"]["total"] = json!(price * quantity);
    }
    c
}

/// Creates the workspace's templates, segments, journey and campaign, identifies
/// every contact, and waits for the engines to take the journey up.
async fn set_up(http: &reqwest::Client, url: &str, args: &SoakArgs) -> anyhow::Result<Setup> {
    let admin = |method: reqwest::Method, path: &str, body: Value| {
        let req = http
            .request(method, format!("{url}{path}"))
            .bearer_auth(ADMIN)
            .json(&body);
        async move {
            let r = req.send().await?;
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!("{status}: {body}");
            }
            Ok::<_, anyhow::Error>(body)
        }
    };
    let post = |path: &str, body: Value| admin(reqwest::Method::POST, path, body);
    post(
        "/api/v1/templates",
        json!({"name": "trial-tips", "content": {"channel": "email",
            "subject": "Getting started, {{ contact.traits.first_name | default: \"there\" }}",
            "mjml": "<mjml><mj-body><mj-section><mj-column>\
                <mj-text>Hello {{ contact.traits.first_name | default: \"there\" }},</mj-text>\
                <mj-text>Your {{ contact.traits.plan }} trial started. Three things to try first:</mj-text>\
                <mj-button href=\"https://shop.example/start?c={{ contact.id }}\">Take the tour</mj-button>\
                </mj-column></mj-section></mj-body></mjml>"}}),
    )
    .await
    .context("creating the journey's template")?;
    post(
        "/api/v1/templates",
        json!({"name": "newsletter", "content": {"channel": "email", "subject": "Spring letter",
               "mjml": crate::bench_campaign::NEWSLETTER}}),
    )
    .await
    .context("creating the campaign's template")?;
    let mut segments = Vec::new();
    for i in 0..args.segments {
        let s = post(
            "/api/v1/segments",
            json!({"name": format!("live {i}"), "definition": crate::bench_segments::varied_definition(i)}),
        )
        .await
        .with_context(|| format!("creating live segment {i}"))?;
        segments.push(s["id"].as_i64().context("segment id")?);
    }
    let audience = post(
        "/api/v1/segments",
        json!({"name": "cohort 7", "definition": {"type": "trait", "trait": "cohort", "op": "equals", "value": 7}}),
    )
    .await
    .context("creating the campaign's segment")?;
    let audience = audience["id"].as_i64().context("segment id")?;
    segments.push(audience);
    let journey = post(
        "/api/v1/journeys",
        json!({"name": "Trial tips", "definition": {
            "trigger": {"type": "event", "event": "Trial Started"},
            "start": "pause",
            "steps": [
                {"id": "pause", "type": "wait", "duration": args.wait_seconds * 1000, "next": "tips"},
                {"id": "tips", "type": "send", "template": "trial-tips", "next": "done"},
                {"id": "done", "type": "exit"}
            ],
            "settings": {"re_entry": {"type": "always"}}
        }}),
    )
    .await
    .context("creating the journey")?;
    let journey = journey["id"].as_i64().context("journey id")?;
    post(&format!("/api/v1/journeys/{journey}/publish"), json!({}))
        .await
        .context("publishing the journey")?;
    let campaign = if args.no_campaign {
        None
    } else {
        let c = post(
            "/api/v1/campaigns",
            json!({"name": "Mid-soak newsletter", "definition": {
                "audience": {"segments": [audience]},
                "variants": [{"name": "A", "template": "newsletter"}]
            }}),
        )
        .await
        .context("creating the campaign")?;
        Some(c["id"].as_i64().context("campaign id")?)
    };

    // Every contact, identified with an e-mail address and traits, 4 requests at a time.
    let batches: Vec<Value> = (0..args.users)
        .collect::<Vec<_>>()
        .chunks(args.batch.max(1))
        .map(|ks| {
            let calls: Vec<Value> = ks
                .iter()
                .map(|&k| {
                    json!({"type": "identify", "userId": bench_user(k), "messageId": format!("soak-user-{k}"),
                                 "traits": first_traits(k)})
                })
                .collect();
            json!({ "batch": calls })
        })
        .collect();
    for group in batches.chunks(4) {
        let sends: Vec<_> = group
            .iter()
            .map(|b| {
                let req = http.post(format!("{url}/v1/batch")).basic_auth(WRITE, Some("")).json(b);
                tokio::spawn(req.send())
            })
            .collect();
        for send in sends {
            let r = send.await??;
            if !r.status().is_success() {
                bail!("identifying the contacts: {} {}", r.status(), r.text().await?);
            }
        }
    }
    // The engines learn which events the journey acts on within a round.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(Setup {
        segments,
        journey,
        campaign,
    })
}

/// Sends `/v1/batch` requests at the configured rate until `stop`; answers how many
/// sign-ups it sent.
async fn ingest_load(
    http: reqwest::Client,
    url: String,
    log: Arc<Log>,
    args: SoakArgs,
    stop: Arc<AtomicBool>,
) -> usize {
    let period = Duration::from_secs_f64(args.batch as f64 / args.rate);
    let signups_per_batch = args.signups * period.as_secs_f64();
    let mut tick = tokio::time::interval(period);
    let mut tasks = tokio::task::JoinSet::new();
    let (mut seq, mut owed, mut signups) = (0usize, 0.0f64, 0usize);
    loop {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        owed += signups_per_batch;
        let mut calls = Vec::with_capacity(args.batch);
        for _ in 0..args.batch {
            let signup = (owed >= 1.0).then(|| {
                owed -= 1.0;
                signups += 1;
                signups - 1
            });
            calls.push(call(seq, args.users, signup));
            seq += 1;
        }
        let body = serde_json::to_vec(&json!({ "batch": calls })).unwrap_or_default();
        let req = http
            .post(format!("{url}/v1/batch"))
            .basic_auth(WRITE, Some(""))
            .header("content-type", "application/json")
            .body(body);
        let log = log.clone();
        tasks.spawn(async move {
            timed(&log, Kind::Batch, req).await;
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    signups
}

/// A marketer's browser: `--reads` page views per second, in turn over the pages,
/// until `stop`.
async fn marketer(
    http: reqwest::Client,
    url: String,
    log: Arc<Log>,
    args: SoakArgs,
    setup: Arc<Setup>,
    stop: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.reads));
    let mut tasks = tokio::task::JoinSet::new();
    let mut view = 0usize;
    loop {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (http, url, log, setup) = (http.clone(), url.clone(), log.clone(), setup.clone());
        let users = args.users;
        let page = view;
        view += 1;
        tasks.spawn(async move {
            let get = |path: String| http.get(format!("{url}{path}")).bearer_auth(ADMIN);
            match page % 6 {
                0 => {
                    let user = bench_user(rand::random_range(0..users));
                    let contact = timed(
                        &log,
                        Kind::Contact,
                        get(format!("/api/v1/contacts/lookup?user_id={user}")),
                    )
                    .await;
                    if let Some(id) = contact.and_then(|c| c["id"].as_i64()) {
                        timed(
                            &log,
                            Kind::Timeline,
                            get(format!("/api/v1/contacts/{id}/events?limit=50")),
                        )
                        .await;
                    }
                }
                1 => {
                    timed(&log, Kind::Segments, get("/api/v1/segments".into())).await;
                }
                2 => {
                    let id = setup.segments[(page / 6) % setup.segments.len()];
                    timed(&log, Kind::Segment, get(format!("/api/v1/segments/{id}"))).await;
                }
                3 => {
                    timed(&log, Kind::Journeys, get("/api/v1/journeys".into())).await;
                }
                4 => {
                    timed(&log, Kind::Journey, get(format!("/api/v1/journeys/{}", setup.journey))).await;
                }
                _ => {
                    timed(&log, Kind::Report, get("/api/v1/reports".into())).await;
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// The machine's busy and total CPU time in clock ticks, all cores (`/proc/stat`).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is within user).
    let idle = fields.get(3)? + fields.get(4)?;
    let total: u64 = fields.iter().take(8).sum();
    Some((total - idle, total))
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// The size of the files directly in `dir` (the database, its WAL), in MiB.
fn dir_mib(dir: &Path) -> f64 {
    let bytes: u64 = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    bytes as f64 / (1024.0 * 1024.0)
}

/// The lines of the sink's `ids.txt`: e-mails accepted so far.
fn emails_accepted(sink_dir: &Path) -> usize {
    std::fs::read_to_string(sink_dir.join("ids.txt"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Counters read at a minute's boundary.
struct Counters {
    server_cpu: Duration,
    bench_cpu: Duration,
    machine: (u64, u64),
    committed: f64,
    emails: usize,
    /// Runs the journey has started so far.
    entered: f64,
}

/// Latency of one kind of request in one minute, in milliseconds.
#[derive(Clone, Copy, Default)]
struct Latency {
    count: usize,
    errors: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

/// One minute's sample.
struct Minute {
    minute: usize,
    rss_mib: f64,
    anon_mib: f64,
    file_mib: f64,
    /// CPU time in the minute as a percentage of one core.
    server_cpu: f64,
    bench_cpu: f64,
    machine_cpu: f64,
    load_average: f64,
    events: f64,
    emails: usize,
    /// Journey runs started in the minute (sign-ups reach the journey through its inbox).
    entered: f64,
    db_mib: f64,
    latency: Vec<Latency>,
    errors: usize,
    note: String,
}

fn latencies(records: &[Record], kind: Kind) -> Latency {
    let mut l: Vec<Duration> = records.iter().filter(|r| r.kind == kind).map(|r| r.latency).collect();
    l.sort();
    Latency {
        count: l.len(),
        errors: records.iter().filter(|r| r.kind == kind && !r.ok).count(),
        p50: percentile(&l, 0.5),
        p99: percentile(&l, 0.99),
        max: percentile(&l, 1.0),
    }
}

/// The least-squares slope of `y` against `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The RSS trend over per-minute samples (minute 1 first).
#[derive(Debug, PartialEq)]
struct Trend {
    /// The first minute the slope is fitted from (after the warm-up).
    from_minute: usize,
    /// The least-squares slope from `from_minute` on, in MiB per hour.
    mib_per_hour: f64,
    /// The standard deviation of the samples around the fitted line, in MiB.
    residual_mib: f64,
    second_third_mean: f64,
    last_third_mean: f64,
}

/// The trend of `rss` (one value per minute), leaving out the first `warmup` minutes
/// when at least three remain.
fn trend(rss: &[f64], warmup: usize) -> Trend {
    let skip = if rss.len() >= warmup + 3 { warmup } else { 0 };
    let points: Vec<(f64, f64)> = rss
        .iter()
        .enumerate()
        .skip(skip)
        .map(|(i, &y)| ((i + 1) as f64, y))
        .collect();
    let per_minute = slope(&points);
    let (mx, my) = (
        mean(&points.iter().map(|p| p.0).collect::<Vec<_>>()),
        mean(&points.iter().map(|p| p.1).collect::<Vec<_>>()),
    );
    let residual = if points.len() > 2 {
        (points
            .iter()
            .map(|(x, y)| (y - (my + per_minute * (x - mx))).powi(2))
            .sum::<f64>()
            / (points.len() - 2) as f64)
            .sqrt()
    } else {
        0.0
    };
    let third = rss.len() / 3;
    Trend {
        from_minute: skip + 1,
        mib_per_hour: per_minute * 60.0,
        residual_mib: residual,
        second_third_mean: mean(&rss[third..rss.len() - third]),
        last_third_mean: mean(&rss[rss.len() - third..]),
    }
}

/// How steady a kind's p99 was: the median of the minutes' p99s, the largest ratio of
/// a minute's p99 to it, and the minutes (1-based) above `limit` times the median.
fn p99_stability(p99s: &[f64], limit: f64) -> (f64, f64, Vec<usize>) {
    let m = median(p99s);
    let worst = p99s.iter().map(|p| p / m).fold(0.0, f64::max);
    let over = p99s
        .iter()
        .enumerate()
        .filter(|(_, p)| **p > limit * m)
        .map(|(i, _)| i + 1)
        .collect();
    (m, worst, over)
}

/// A minute whose p99 is more than this many times the kind's median p99 is flagged.
const P99_LIMIT: f64 = 3.0;

fn python(args: &SoakArgs) -> PathBuf {
    args.python.clone().unwrap_or_else(|| {
        let cache = std::env::var_os("NUDGE_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/nudge"));
        cache.join("venv/bin/python")
    })
}

/// The test suite's SMTP sink, counting only, once it listens.
fn start_sink(args: &SoakArgs, out: &Path) -> anyhow::Result<(crate::bench_messages::Child, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let python = python(args);
    let mut child = std::process::Command::new(&python)
        .arg(crate::bench_messages::repo_file("tests/smtp/sink.py")?)
        .arg(port.to_string())
        .arg(out)
        .arg("--count-only")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "running the SMTP sink with {} (scripts/install-test-deps makes it, or give --python)",
                python.display()
            )
        })?;
    let stdout = child.stdout.take().context("the sink's stdout")?;
    let child = crate::bench_messages::Child::new(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    if line.trim() != "ready" {
        bail!("the SMTP sink did not start");
    }
    Ok((child, port))
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    if args.rate <= 0.0 || args.reads <= 0.0 || args.batch == 0 || args.users == 0 || args.minutes == 0 {
        bail!("--rate, --reads, --batch, --users and --minutes must be positive");
    }
    let data = tempfile::Builder::new().prefix("nudge-soak-").tempdir()?;
    let sink_dir = data.path().join("smtp");
    std::fs::create_dir_all(&sink_dir)?;
    let (sink, smtp_port) = start_sink(&args, &sink_dir)?;
    let smtp_url = format!("smtp://127.0.0.1:{smtp_port}");
    let db_dir = data.path().join("nudge");
    let (server, url) = start_server(
        &db_dir,
        None,
        &[
            ("NUDGE_SMTP_URL", smtp_url.as_str()),
            ("NUDGE_EMAIL_FROM", "Tea Shop <shop@soak.example>"),
        ],
    )?;
    let pid = server.pid();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()?;
    eprintln!(
        "bench soak: {} min on SQLite ({}), {} calls/s in batches of {} over {} contacts ({} sign-ups/s, journey wait {} s), \
         {} live segments, {} page views/s; server pid {pid}",
        args.minutes,
        db_dir.display(),
        args.rate,
        args.batch,
        args.users,
        args.signups,
        args.wait_seconds,
        args.segments,
        args.reads
    );
    let set_up_started = Instant::now();
    let setup = Arc::new(set_up(&http, &url, &args).await?);
    eprintln!(
        "set up in {:.1} s: {} contacts identified, RSS {:.0} MiB, load average {:.2}",
        set_up_started.elapsed().as_secs_f64(),
        args.users,
        status_kib(Some(pid), "VmRSS:") / 1024.0,
        load_average()
    );

    let log = Arc::new(Log::default());
    let stop = Arc::new(AtomicBool::new(false));
    let counters = async || {
        let sink_cpu = cpu_time(sink.pid()).unwrap_or_default();
        Counters {
            server_cpu: cpu_time(pid).unwrap_or_default(),
            bench_cpu: cpu_time(std::process::id()).unwrap_or_default() + sink_cpu,
            machine: machine_ticks().unwrap_or_default(),
            committed: metric(&http, &url, "nudge_ingest_messages_committed_total")
                .await
                .unwrap_or(f64::NAN),
            emails: emails_accepted(&sink_dir),
            entered: match http
                .get(format!("{url}/api/v1/journeys/{}", setup.journey))
                .bearer_auth(ADMIN)
                .send()
                .await
            {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|j| j["stats"]["entered"].as_f64()),
                Err(_) => None,
            }
            .unwrap_or(f64::NAN),
        }
    };
    let mut before = counters().await;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let started = Instant::now();
    let ingest = tokio::spawn(ingest_load(
        http.clone(),
        url.clone(),
        log.clone(),
        args.clone(),
        stop.clone(),
    ));
    let reads = tokio::spawn(marketer(
        http.clone(),
        url.clone(),
        log.clone(),
        args.clone(),
        setup.clone(),
        stop.clone(),
    ));
    let mut minutes: Vec<Minute> = Vec::new();
    let mut campaign_task = None;
    let mut last = started;
    for m in 1..=args.minutes {
        tokio::time::sleep_until((started + Duration::from_secs(60 * m as u64)).into()).await;
        let now = Instant::now();
        let after = counters().await;
        let records = log.take();
        let wall = now.duration_since(last).as_secs_f64();
        let pct = |a: Duration, b: Duration| b.saturating_sub(a).as_secs_f64() / wall * 100.0;
        let (busy, total) = (
            after.machine.0.saturating_sub(before.machine.0),
            after.machine.1.saturating_sub(before.machine.1),
        );
        let minute = Minute {
            minute: m,
            rss_mib: status_kib(Some(pid), "VmRSS:") / 1024.0,
            anon_mib: status_kib(Some(pid), "RssAnon:") / 1024.0,
            file_mib: status_kib(Some(pid), "RssFile:") / 1024.0,
            server_cpu: pct(before.server_cpu, after.server_cpu),
            bench_cpu: pct(before.bench_cpu, after.bench_cpu),
            machine_cpu: if total > 0 {
                busy as f64 / total as f64 * cores * 100.0
            } else {
                f64::NAN
            },
            load_average: load_average(),
            events: after.committed - before.committed,
            emails: after.emails.saturating_sub(before.emails),
            entered: after.entered - before.entered,
            db_mib: dir_mib(&db_dir),
            latency: KINDS.iter().map(|&k| latencies(&records, k)).collect(),
            errors: records.iter().filter(|r| !r.ok).count(),
            note: records
                .iter()
                .find(|r| r.kind == Kind::Campaign)
                .map(|r| {
                    format!(
                        "campaign sent ({:.0} ms{})",
                        r.latency.as_secs_f64() * 1e3,
                        if r.ok { "" } else { ", failed" }
                    )
                })
                .unwrap_or_default(),
        };
        let b = minute.latency[0];
        eprintln!(
            "minute {m:>3}: RSS {:>6.1} MiB, server CPU {:>5.1} %, {:>7.0} calls, {:>4.0} runs started, {:>5} e-mails, batch p50/p99/max {:.1}/{:.1}/{:.1} ms, {} errors",
            minute.rss_mib,
            minute.server_cpu,
            minute.events,
            minute.entered,
            minute.emails,
            b.p50,
            b.p99,
            b.max,
            minute.errors
        );
        minutes.push(minute);
        (before, last) = (after, now);
        if m == args.minutes.div_ceil(2)
            && let Some(id) = setup.campaign
        {
            let (http, url, log) = (http.clone(), url.clone(), log.clone());
            campaign_task = Some(tokio::spawn(async move {
                timed(
                    &log,
                    Kind::Campaign,
                    http.post(format!("{url}/api/v1/campaigns/{id}/send"))
                        .bearer_auth(ADMIN)
                        .json(&json!({})),
                )
                .await
            }));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let signups = ingest.await?;
    reads.await?;
    if let Some(t) = campaign_task {
        t.await?;
    }
    let late = log.take();
    let late_errors = late.iter().filter(|r| !r.ok).count();

    // What the engines did: the journey's statistics, the campaign's progress.
    let get = |path: String| {
        let req = http.get(format!("{url}{path}")).bearer_auth(ADMIN);
        async move { req.send().await.ok()?.json::<Value>().await.ok() }
    };
    let journey = get(format!("/api/v1/journeys/{}", setup.journey))
        .await
        .unwrap_or_default();
    let campaign = match setup.campaign {
        Some(id) => get(format!("/api/v1/campaigns/{id}")).await,
        None => None,
    };
    let emails_total = emails_accepted(&sink_dir);
    let failures = log.failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    drop(server);
    drop(sink);

    report(
        &args,
        &minutes,
        &Extra {
            signups,
            emails_total,
            journey_stats: journey["stats"].clone(),
            campaign,
            late: late.len(),
            late_errors,
            failures,
        },
    )
}

/// What the run saw besides the minutes.
struct Extra {
    signups: usize,
    emails_total: usize,
    journey_stats: Value,
    campaign: Option<Value>,
    late: usize,
    late_errors: usize,
    failures: Vec<String>,
}

fn report(args: &SoakArgs, minutes: &[Minute], extra: &Extra) -> anyhow::Result<()> {
    println!(
        "nudge bench soak: {} min, {} calls/s in batches of {} over {} contacts, {} sign-ups/s (wait {} s, then an e-mail), \
         {} live segments, {} page views/s{}",
        args.minutes,
        args.rate,
        args.batch,
        args.users,
        args.signups,
        args.wait_seconds,
        args.segments,
        args.reads,
        if args.no_campaign {
            String::new()
        } else {
            format!(
                ", a campaign to ~{} contacts in minute {}",
                args.users / 20,
                args.minutes.div_ceil(2) + 1
            )
        }
    );
    println!();
    println!(
        "CPU in % of one core (the machine has {}); machine = every process on it; load = 1-minute load average",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| min | RSS MiB | anon MiB | file MiB | server CPU % | bench CPU % | machine CPU % | load | calls | runs started | e-mails | DB MiB | batch p50/p99/max ms | errors | |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for m in minutes {
        let b = m.latency[0];
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {} | {:.0} | {:.1} / {:.1} / {:.1} | {} | {} |",
            m.minute,
            m.rss_mib,
            m.anon_mib,
            m.file_mib,
            m.server_cpu,
            m.bench_cpu,
            m.machine_cpu,
            m.load_average,
            m.events,
            m.entered,
            m.emails,
            m.db_mib,
            b.p50,
            b.p99,
            b.max,
            m.errors,
            m.note
        );
    }
    println!();
    println!("API reads, p50 / p99 / max ms (requests in the minute; with fewer than 100, p99 is the slowest)");
    print!("| min |");
    for k in &KINDS[1..] {
        print!(" {} |", k.name());
    }
    println!();
    println!("|---|{}", "---|".repeat(KINDS.len() - 1));
    for m in minutes {
        print!("| {} |", m.minute);
        for l in &m.latency[1..] {
            print!(" {:.1} / {:.1} / {:.1} ({}) |", l.p50, l.p99, l.max, l.count);
        }
        println!();
    }
    println!();

    // The verdict.
    let rss: Vec<f64> = minutes.iter().map(|m| m.rss_mib).collect();
    let anon: Vec<f64> = minutes.iter().map(|m| m.anon_mib).collect();
    let t = trend(&rss, args.warmup);
    let ta = trend(&anon, args.warmup);
    println!(
        "RSS: {:.1} MiB in minute 1, {:.1} MiB in minute {}; from minute {} on the least-squares slope is {:+.1} MiB/h \
         (residual {:.1} MiB); mean of the last third {:.1} MiB against {:.1} MiB in the second third ({:+.1} %)",
        rss.first().copied().unwrap_or(f64::NAN),
        rss.last().copied().unwrap_or(f64::NAN),
        minutes.len(),
        t.from_minute,
        t.mib_per_hour,
        t.residual_mib,
        t.last_third_mean,
        t.second_third_mean,
        (t.last_third_mean / t.second_third_mean - 1.0) * 100.0
    );
    println!(
        "  of which anonymous (heap, stacks, SQLite caches): slope {:+.1} MiB/h, last third {:.1} MiB against {:.1} MiB",
        ta.mib_per_hour, ta.last_third_mean, ta.second_third_mean
    );
    let mut latency_verdict = Vec::new();
    for (n, k) in KINDS.iter().enumerate() {
        let p99s: Vec<f64> = minutes
            .iter()
            .map(|m| m.latency[n])
            .filter(|l| l.count > 0)
            .map(|l| l.p99)
            .collect();
        let counted: Vec<usize> = minutes
            .iter()
            .filter(|m| m.latency[n].count > 0)
            .map(|m| m.minute)
            .collect();
        let (med, worst, over) = p99_stability(&p99s, P99_LIMIT);
        let over: Vec<usize> = over.into_iter().map(|i| counted[i - 1]).collect();
        let requests: usize = minutes.iter().map(|m| m.latency[n].count).sum();
        println!(
            "p99 {:<9} ({}): median of the minutes {:.1} ms, worst minute {:.1}x the median{}; {} requests",
            k.name(),
            k.request(),
            med,
            worst,
            if over.is_empty() {
                String::new()
            } else {
                format!(", above {P99_LIMIT}x in minutes {over:?}")
            },
            requests
        );
        latency_verdict.push(json!({"kind": k.name(), "median_p99_ms": med, "worst_ratio": worst,
                                    "minutes_over": over, "requests": requests}));
    }
    let errors: usize = minutes.iter().map(|m| m.errors).sum::<usize>() + extra.late_errors;
    let requests: usize = minutes
        .iter()
        .map(|m| m.latency.iter().map(|l| l.count).sum::<usize>())
        .sum::<usize>()
        + extra.late;
    let j = &extra.journey_stats;
    println!(
        "journey: {} sign-ups sent, {} runs entered, {} still waiting, {} e-mails sent by its send step; \
         {} e-mails accepted by the SMTP sink in all",
        extra.signups,
        j["entered"],
        j["active"],
        j["steps"]["tips"]["sent"].as_i64().unwrap_or(0),
        extra.emails_total
    );
    if let Some(c) = &extra.campaign {
        println!("campaign: status {}, progress {}", c["status"], c["progress"]);
    }
    println!(
        "errors: {errors} of {requests} requests ({} finished after the last minute)",
        extra.late
    );
    for f in &extra.failures {
        println!("  {f}");
    }

    if let Some(path) = &args.json {
        let doc = json!({
            "args": {"minutes": args.minutes, "rate": args.rate, "batch": args.batch, "users": args.users,
                     "segments": args.segments, "signups": args.signups, "wait_seconds": args.wait_seconds,
                     "reads": args.reads, "warmup": args.warmup, "campaign": !args.no_campaign},
            "minutes": minutes.iter().map(|m| json!({
                "minute": m.minute, "rss_mib": m.rss_mib, "anon_mib": m.anon_mib, "file_mib": m.file_mib,
                "server_cpu_percent": m.server_cpu, "bench_cpu_percent": m.bench_cpu,
                "machine_cpu_percent": m.machine_cpu, "load_average": m.load_average,
                "calls": m.events, "runs_started": m.entered, "emails": m.emails, "db_mib": m.db_mib, "errors": m.errors, "note": m.note,
                "latency": KINDS.iter().zip(&m.latency).map(|(k, l)| (k.name().to_string(), json!({
                    "count": l.count, "errors": l.errors, "p50_ms": l.p50, "p99_ms": l.p99, "max_ms": l.max
                }))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
            "verdict": {
                "rss": {"from_minute": t.from_minute, "mib_per_hour": t.mib_per_hour, "residual_mib": t.residual_mib,
                        "second_third_mean": t.second_third_mean, "last_third_mean": t.last_third_mean},
                "anon": {"mib_per_hour": ta.mib_per_hour, "second_third_mean": ta.second_third_mean,
                         "last_third_mean": ta.last_third_mean},
                "p99": latency_verdict,
                "errors": errors, "requests": requests,
                "signups": extra.signups, "emails": extra.emails_total,
                "failures": extra.failures,
            }
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if errors > 0 {
        bail!("{errors} of {requests} requests failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_noise_around_it() {
        let line: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 + 0.5 * x as f64)).collect();
        assert!((slope(&line) - 0.5).abs() < 1e-12);
        let zigzag: Vec<(f64, f64)> = (0..10)
            .map(|x| (x as f64, 100.0 + if x % 2 == 0 { 1.0 } else { -1.0 }))
            .collect();
        assert!(slope(&zigzag).abs() < 0.1);
        assert_eq!(slope(&[(1.0, 5.0)]), 0.0);
    }

    #[test]
    fn trend_leaves_out_the_warm_up() {
        // Fast growth for 3 minutes, then 1 MiB per minute.
        let rss: Vec<f64> = (1..=12)
            .map(|m| if m <= 3 { 10.0 * m as f64 } else { 30.0 + (m - 3) as f64 })
            .collect();
        let t = trend(&rss, 3);
        assert_eq!(t.from_minute, 4);
        assert!((t.mib_per_hour - 60.0).abs() < 1e-9, "{t:?}");
        assert!(t.residual_mib < 1e-9);
        // Thirds of 12 minutes: 5..=8 and 9..=12.
        assert!((t.second_third_mean - 33.5).abs() < 1e-9, "{t:?}");
        assert!((t.last_third_mean - 37.5).abs() < 1e-9, "{t:?}");
        // Too few minutes after the warm-up: every minute counts.
        assert_eq!(trend(&rss[..4], 3).from_minute, 1);
    }

    #[test]
    fn p99_stability_flags_minutes_far_above_the_median() {
        let (median, worst, over) = p99_stability(&[10.0, 12.0, 11.0, 40.0, 9.0], 3.0);
        assert_eq!(median, 11.0);
        assert!((worst - 40.0 / 11.0).abs() < 1e-12);
        assert_eq!(over, vec![4]);
    }

    #[test]
    fn calls_mix_sign_ups_identifies_and_events_of_the_bounded_users() {
        let signup = call(7, 50, Some(0));
        assert_eq!(signup["event"], "Trial Started");
        // Consecutive sign-ups come from different contacts, whatever slot they take.
        let signers: std::collections::HashSet<String> = (0..50)
            .map(|n| call(500 * n, 50_000, Some(n))["userId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(signers.len(), 50);
        let identify = call(20, 50, None);
        assert_eq!(identify["type"], "identify");
        assert!(identify.get("event").is_none() && identify["traits"]["plan"].is_string());
        let order = (1..40)
            .map(|i| call(i, 50, None))
            .find(|c| c["event"] == "Order Completed")
            .unwrap();
        assert!(order["properties"]["total"].as_f64().unwrap() > 0.0);
        assert!(order.get("timestamp").is_none());
        for i in 0..200 {
            let user = call(i, 50, None)["userId"].as_str().unwrap().to_string();
            let k: usize = user.strip_prefix("bench-user-").unwrap().parse().unwrap();
            assert!(k < 50);
        }
    }
}
