//! The chaos test (docs/operations.md, "What a crash or a database restart does"):
//! three `nudge serve` nodes on one PostgreSQL — A `api,ingest`, B every role,
//! C `engine,delivery` — under mixed load (Segment batches from clients that retry
//! what was not acknowledged with the same `messageId`s, a journey that waits then
//! sends an e-mail to every new sign-up, a throttled campaign to a segment), while
//! nodes are SIGKILLed at random (a seeded RNG; the seed is printed, and
//! `NUDGE_CHAOS_SEED` replays it) and restarted after a pause, and PostgreSQL itself
//! is stopped (immediate mode: a crash for its clients) and started again once.
//!
//! Afterwards, with the load stopped and the nodes drained: every acknowledged
//! event is stored exactly once (and nothing else of the load is); one contact per
//! user; every run of the journey finished; every message sent, each with exactly
//! one distinct Message-ID at the SMTP server (a repeat only of the same
//! Message-ID); the campaign completed; every singleton lease held by a live node
//! and unexpired, no claim left on a row. The counts are printed.
//!
//! The test runs its own PostgreSQL cluster (`initdb` in a temporary directory, a
//! free port), never the shared server the other tests use. Without PostgreSQL's
//! server binaries it is skipped with a notice, or fails under
//! `NUDGE_REQUIRE_CHAOS_TEST=1` (scripts/test sets it).

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const SECRET_KEY: &str = "63686173206f73206e6f646573206f6e206f6e6520706f737467726573716c21";
/// Singleton leases: a killed holder's work moves within 4 s.
const SINGLETON_TTL_S: u64 = 3;
/// Claims on rows (outbox messages, journey events and timers) a killed node held
/// are taken again after this; longer than a round takes on a loaded machine (a
/// round outliving its claims would send its messages again).
const CLAIM_LEASE_S: u64 = 15;
/// What a delivery node cut off mid-round may have sent without recording it: a
/// deliverer keeps at most this many messages sent (or being sent) with their
/// outcome not yet committed.
const IN_FLIGHT: usize = nudge_messages::delivery::UNRECORDED_AT_MOST;
/// How long nodes are killed and restarted.
const CHAOS: Duration = Duration::from_secs(45);
const CLIENTS: usize = 3;
/// Calls per batch: an identify and a `Signed Up` of a new user, and page views.
const BATCH: usize = 10;
/// The campaign's audience (contacts made before the chaos).
const AUDIENCE: usize = 300;
const SINGLETONS: [&str; 6] = [
    "campaigns",
    "journey-entries",
    "predictions",
    "recommendations",
    "retention",
    "send-time",
];

// ---------------------------------------------------------------------------------
// A private PostgreSQL cluster.

/// PostgreSQL's server binaries: `/usr/lib/postgresql/<newest>/bin` (Debian), else
/// the directory of an `initdb` on the `PATH`.
fn pg_bin_dir() -> Option<PathBuf> {
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A PostgreSQL cluster of the test's own, in a temporary directory, on a free
/// port, with trust authentication. PostgreSQL refuses to run as root: when the
/// test runs as root, the cluster belongs to the `postgres` user and its commands
/// run through `runuser`. Dropping it stops the server (immediately) and removes
/// the directory, whether the test passed or not.
struct PgCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// `Some("postgres")` when commands run as that user.
    run_as: Option<String>,
    /// Removed after the server has stopped (fields drop after `drop`).
    _dir: tempfile::TempDir,
}

impl PgCluster {
    /// Starts a fresh cluster; `None` (after the notice, or a failure when the test
    /// is required) when PostgreSQL's binaries are not installed.
    fn start() -> Option<PgCluster> {
        let Some(bin) = pg_bin_dir() else {
            let what = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: the chaos test needs a PostgreSQL cluster of its own";
            assert!(
                std::env::var("NUDGE_REQUIRE_CHAOS_TEST").as_deref() != Ok("1"),
                "{what} (NUDGE_REQUIRE_CHAOS_TEST=1)"
            );
            eprintln!("SKIPPED: {what}");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("nudge-chaos-pg").tempdir().unwrap();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let run_as = root.then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            let id = |flag: &str| -> u32 {
                let out = Command::new("id").args([flag, user]).output().unwrap();
                assert!(
                    out.status.success(),
                    "running as root, the chaos test runs PostgreSQL as the user {user:?}, which does not exist: {}",
                    output_text(&out)
                );
                String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
            };
            std::os::unix::fs::chown(dir.path(), Some(id("-u")), Some(id("-g"))).unwrap();
        }
        let cluster = PgCluster {
            bin,
            data: dir.path().join("data"),
            port: free_port(),
            run_as,
            _dir: dir,
        };
        let out = cluster.run(
            "initdb",
            &[
                "-D",
                cluster.data.to_str().unwrap(),
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb: {}", output_text(&out));
        cluster.pg_ctl_start();
        Some(cluster)
    }

    /// Runs one of the cluster's binaries (as the cluster's owner).
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.args(args)
            .current_dir(self._dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"))
    }

    fn pg_ctl_start(&self) {
        // fsync off: what is tested is a restart of PostgreSQL's processes, not of the
        // machine; WAL written before a commit is acknowledged survives in the
        // operating system's cache either way.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            self.port,
            self._dir.path().display()
        );
        let log = self._dir.path().join("postgres.log");
        let out = self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            output_text(&out),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server at once: every backend is killed, nothing is checkpointed
    /// (the next start recovers from the WAL), as in a crash.
    fn stop_immediately(&self) {
        let out = self.run(
            "pg_ctl",
            &["stop", "-m", "immediate", "-w", "-D", self.data.to_str().unwrap()],
        );
        assert!(out.status.success(), "pg_ctl stop: {}", output_text(&out));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["stop", "-m", "immediate", "-w", "-D", self.data.to_str().unwrap()],
        );
    }
}

// ---------------------------------------------------------------------------------
// The nodes.

struct Node {
    name: &'static str,
    roles: &'static str,
    dir: PathBuf,
    proc: Option<Proc>,
    base: Option<String>,
}

impl Node {
    fn ingests(&self) -> bool {
        self.roles.contains("ingest")
    }
    fn engine(&self) -> bool {
        self.roles.contains("engine")
    }
    fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.0.id())
    }
}

/// The nodes and where the load generator may send (the ingest nodes up now).
struct Cluster {
    nodes: Mutex<Vec<Node>>,
    ingest: Mutex<Vec<String>>,
    env: Vec<(String, String)>,
}

impl Cluster {
    fn refresh_ingest(&self) {
        let nodes = self.nodes.lock().unwrap();
        *self.ingest.lock().unwrap() = nodes
            .iter()
            .filter(|n| n.ingests())
            .filter_map(|n| n.base.clone())
            .collect();
    }

    /// Starts node `i` (blocking until it listens).
    fn start(&self, i: usize) {
        let (dir, roles) = {
            let nodes = self.nodes.lock().unwrap();
            (nodes[i].dir.clone(), nodes[i].roles)
        };
        let mut env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.push(("NUDGE_ROLES", roles));
        let (proc, base) = start_server(&dir, &env);
        {
            let mut nodes = self.nodes.lock().unwrap();
            nodes[i].proc = Some(proc);
            nodes[i].base = Some(base);
        }
        self.refresh_ingest();
    }

    /// SIGKILLs node `i`.
    fn kill(&self, i: usize) {
        let proc = {
            let mut nodes = self.nodes.lock().unwrap();
            nodes[i].base = None;
            nodes[i].proc.take()
        };
        self.refresh_ingest();
        let mut proc = proc.expect("the node is up");
        proc.0.kill().unwrap();
        proc.0.wait().unwrap();
    }

    fn base(&self, name: &str) -> String {
        let nodes = self.nodes.lock().unwrap();
        nodes
            .iter()
            .find(|n| n.name == name)
            .and_then(|n| n.base.clone())
            .unwrap()
    }

    fn logs(&self) -> String {
        let nodes = self.nodes.lock().unwrap();
        nodes
            .iter()
            .map(|n| {
                let log = server_log(&n.dir);
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                format!(
                    "--- node {} ({}), last lines:\n{}",
                    n.name,
                    n.roles,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

// ---------------------------------------------------------------------------------
// The load: Segment clients that retry what was not acknowledged.

/// Where PostgreSQL is in its restart.
#[derive(Default)]
struct PgState {
    /// Stopped, not yet being started.
    down: AtomicBool,
    /// Started again.
    back: AtomicBool,
}

#[derive(Default)]
struct Load {
    /// Every messageId answered 200.
    acked: Vec<String>,
    /// The users whose identify and `Signed Up` were acknowledged.
    users: Vec<String>,
    batches: usize,
    /// Attempts that were not answered 200 (and were sent again).
    retries: usize,
    /// How those attempts were answered: a status, or 0 for no answer (refused,
    /// cut, timed out).
    refusals: std::collections::BTreeMap<u16, usize>,
    /// Batches acknowledged after PostgreSQL came back, by node base URL.
    acked_after_restart: HashMap<String, usize>,
    /// Batches acknowledged by a request sent and answered while PostgreSQL was
    /// down (a 200 without a commit).
    acked_while_down: usize,
}

fn batch_body(client: usize, n: usize, rng: &mut StdRng) -> (Value, String) {
    let user = format!("chaos-c{client}-u{n}");
    let id = |i: usize| format!("chaos-c{client}-b{n}-m{i}");
    let mut calls = vec![
        json!({"type": "identify", "userId": user, "messageId": id(0),
               "traits": {"email": format!("{user}@signup.example"), "plan": "trial"}}),
        json!({"type": "track", "userId": user, "event": "Signed Up", "messageId": id(1),
               "properties": {"client": client}}),
    ];
    for i in 2..BATCH {
        let earlier = rng.random_range(0..=n);
        calls.push(
            json!({"type": "page", "userId": format!("chaos-c{client}-u{earlier}"), "messageId": id(i),
                          "name": "Pricing", "properties": {"url": "https://shop.example/pricing"}}),
        );
    }
    (json!({"batch": calls}), user)
}

/// Sends batches until `stop`, each one again (with the same messageIds, to any
/// ingest node up) until it is acknowledged, as Segment's libraries do.
async fn client(
    k: usize,
    seed: u64,
    cluster: Arc<Cluster>,
    stop: Arc<AtomicBool>,
    pg: Arc<PgState>,
    load: Arc<Mutex<Load>>,
) {
    let http = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(seed ^ (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let (body, user) = batch_body(k, n, &mut rng);
        let given_up = Instant::now() + CHAOS + Duration::from_secs(90);
        loop {
            let target = {
                let up = cluster.ingest.lock().unwrap();
                (!up.is_empty()).then(|| up[rng.random_range(0..up.len())].clone())
            };
            let after_restart = pg.back.load(Ordering::SeqCst);
            let sent_while_down = pg.down.load(Ordering::SeqCst);
            let status = match &target {
                Some(base) => http
                    .post(format!("{base}/v1/batch"))
                    .basic_auth(WRITE_KEY, Some(""))
                    .json(&body)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16()),
                None => 0,
            };
            if status == 200 {
                let mut load = load.lock().unwrap();
                load.acked.extend(
                    body["batch"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c["messageId"].as_str().unwrap().to_string()),
                );
                load.users.push(user);
                load.batches += 1;
                if after_restart {
                    *load.acked_after_restart.entry(target.unwrap()).or_default() += 1;
                }
                if sent_while_down && pg.down.load(Ordering::SeqCst) {
                    load.acked_while_down += 1;
                }
                break;
            }
            {
                let mut load = load.lock().unwrap();
                load.retries += 1;
                *load.refusals.entry(status).or_default() += 1;
            }
            assert!(Instant::now() < given_up, "client {k}: batch {n} never acknowledged");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
}

// ---------------------------------------------------------------------------------
// What the workspace holds (counted by nudge-store: this crate holds no SQL).

/// The load's messageIds and user ids start with this.
const LOAD: &str = "chaos-";

async fn census(pg: &PgCluster, acked: &[String]) -> nudge_store::scratch::Census {
    nudge_store::scratch::census(&pg.url(), LOAD, acked, now_ms())
        .await
        .unwrap_or_else(|e| panic!("counting in the workspace: {e}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_survive_sigkills_and_a_postgres_restart_without_losing_or_repeating_anything() {
    if !have_python_packages() {
        return;
    }
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let pg = Arc::new(pg);
    let seed = std::env::var("NUDGE_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("chaos seed {seed} (NUDGE_CHAOS_SEED={seed} replays the kills and the load)");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let (_sink, smtp_port) = start_sink(&mail_dir, true);
    let env: Vec<(String, String)> = [
        ("NUDGE_DATABASE_URL", pg.url()),
        ("NUDGE_SECRET_KEY", SECRET_KEY.into()),
        ("NUDGE_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}")),
        ("NUDGE_EMAIL_FROM", "Shop <shop@example.com>".into()),
        ("NUDGE_SINGLETON_LEASE_SECONDS", SINGLETON_TTL_S.to_string()),
        ("NUDGE_CLAIM_LEASE_SECONDS", CLAIM_LEASE_S.to_string()),
        ("NUDGE_CONFIG_CHECK_SECONDS", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let nodes = [
        ("A", "api,ingest"),
        ("B", "api,ingest,engine,delivery"),
        ("C", "engine,delivery"),
    ]
    .into_iter()
    .map(|(name, roles)| Node {
        name,
        roles,
        dir: dir.path().join(name),
        proc: None,
        base: None,
    })
    .collect();
    let cluster = Arc::new(Cluster {
        nodes: Mutex::new(nodes),
        ingest: Mutex::new(Vec::new()),
        env,
    });
    for i in 0..3 {
        let c = cluster.clone();
        tokio::task::spawn_blocking(move || c.start(i)).await.unwrap();
    }
    let api = Api::new(&cluster.base("B"));

    // The journey: every sign-up waits 2 s, then gets a welcome e-mail.
    for (name, subject) in [
        ("welcome", "Welcome {{ contact.user_id }}"),
        ("news", "News for {{ contact.user_id }}"),
    ] {
        let (s, t) = api
            .post(
                "/api/v1/templates",
                json!({"name": name, "content": {"channel": "email", "subject": subject, "html": "<p>Hello {{ contact.user_id }}</p>"}}),
            )
            .await;
        assert_eq!(s, 201, "{t}");
    }
    let (s, j) = api
        .post(
            "/api/v1/journeys",
            json!({"name": "Welcome", "definition": {
                "trigger": {"type": "event", "event": "Signed Up"},
                "start": "pause",
                "steps": [
                    {"id": "pause", "type": "wait", "duration": 2000, "next": "welcome"},
                    {"id": "welcome", "type": "send", "template": "welcome", "next": "done"},
                    {"id": "done", "type": "exit"}
                ]
            }}),
        )
        .await;
    assert_eq!(s, 201, "{j}");
    let (s, p) = api
        .post(&format!("/api/v1/journeys/{}/publish", j["id"]), json!({}))
        .await;
    assert_eq!(s, 200, "{p}");

    // The campaign's audience, and the campaign, throttled so that it sends through
    // the chaos (a burst of a minute's worth, then 3 a second).
    let audience: Vec<Value> = (0..AUDIENCE)
        .map(|i| {
            json!({"type": "identify", "userId": format!("aud-{i}"), "messageId": format!("aud-{i}"),
                        "traits": {"email": format!("aud-{i}@audience.example"), "cohort": "spring"}})
        })
        .collect();
    api.track("/v1/batch", json!({"batch": audience})).await;
    let (s, seg) = api
        .post(
            "/api/v1/segments",
            json!({"name": "Spring", "definition": {"type": "trait", "trait": "cohort", "op": "equals", "value": "spring"}}),
        )
        .await;
    assert_eq!(s, 201, "{seg}");
    assert_eq!(seg["size"], AUDIENCE, "{seg}");
    let (s, c) = api
        .post(
            "/api/v1/campaigns",
            json!({"name": "Spring", "definition": {
                "audience": {"segments": [seg["id"]]},
                "variants": [{"name": "A", "template": "news"}],
                "throttle_per_hour": 10800
            }}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let campaign = c["id"].as_i64().unwrap();

    // The engines learn which events journeys act on before the load starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !census(&pg, &[])
        .await
        .journey_event_names
        .iter()
        .any(|n| n == "Signed Up")
    {
        assert!(Instant::now() < deadline, "no engine took the journey up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, sent) = api.post(&format!("/api/v1/campaigns/{campaign}/send"), json!({})).await;
    assert_eq!(s, 200, "{sent}");
    drop(api);

    // The load.
    let stop = Arc::new(AtomicBool::new(false));
    let pg_state = Arc::new(PgState::default());
    let load = Arc::new(Mutex::new(Load::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            tokio::spawn(client(
                k,
                seed,
                cluster.clone(),
                stop.clone(),
                pg_state.clone(),
                load.clone(),
            ))
        })
        .collect();

    // The chaos: one node at a time SIGKILLed and restarted after a pause, and
    // PostgreSQL stopped and started once, halfway.
    let chaos_started = Instant::now();
    let kills = Arc::new(AtomicUsize::new(0));
    let mut pg_restarted = false;
    let mut killed: Vec<String> = Vec::new();
    let mut readiness_while_down: Vec<u16> = Vec::new();
    // The nodes up when PostgreSQL stopped: name, pid, base URL if it ingests.
    let mut through_restart: Vec<(&str, u32, Option<String>)> = Vec::new();
    let mut witness: Option<usize> = None;
    while chaos_started.elapsed() < CHAOS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(2500..5000))).await;
        if !pg_restarted && chaos_started.elapsed() > CHAOS / 2 {
            pg_restarted = true;
            let p = pg.clone();
            through_restart = cluster
                .nodes
                .lock()
                .unwrap()
                .iter()
                .map(|n| (n.name, n.pid().unwrap(), n.base.clone().filter(|_| n.ingests())))
                .collect();
            tokio::task::spawn_blocking(move || p.stop_immediately()).await.unwrap();
            pg_state.down.store(true, Ordering::SeqCst);
            eprintln!(
                "{:>5.1}s PostgreSQL stopped (immediate)",
                started.elapsed().as_secs_f64()
            );
            // Down for 3 s: nodes answer /readyz with 503 and refuse what needs the
            // database; nothing is acknowledged meanwhile.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let bases: Vec<String> = {
                let nodes = cluster.nodes.lock().unwrap();
                nodes.iter().filter_map(|n| n.base.clone()).collect()
            };
            let http = reqwest::Client::new();
            for base in bases {
                let r = http
                    .get(format!("{base}/readyz"))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                readiness_while_down.push(r.map(|r| r.status().as_u16()).unwrap_or(0));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            pg_state.down.store(false, Ordering::SeqCst);
            let p = pg.clone();
            tokio::task::spawn_blocking(move || p.pg_ctl_start()).await.unwrap();
            pg_state.back.store(true, Ordering::SeqCst);
            witness = Some(rng.random_range(0..3));
            eprintln!("{:>5.1}s PostgreSQL started again", started.elapsed().as_secs_f64());
            continue;
        }
        // After the restart, one node (drawn) is spared: a process that lived
        // through the restart must be seen working again.
        let i = match witness {
            Some(w) => (w + rng.random_range(1..3)) % 3,
            None => rng.random_range(0..3),
        };
        let name = cluster.nodes.lock().unwrap()[i].name;
        cluster.kill(i);
        kills.fetch_add(1, Ordering::SeqCst);
        killed.push(name.to_string());
        eprintln!("{:>5.1}s SIGKILL node {name}", started.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(rng.random_range(500..2500))).await;
        let c = cluster.clone();
        tokio::task::spawn_blocking(move || c.start(i)).await.unwrap();
        eprintln!("{:>5.1}s node {name} restarted", started.elapsed().as_secs_f64());
    }
    assert!(pg_restarted);
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let load = std::mem::take(&mut *load.lock().unwrap());
    eprintln!(
        "{:>5.1}s load stopped: {} batches acknowledged, {} attempts sent again",
        started.elapsed().as_secs_f64(),
        load.batches,
        load.retries
    );
    // A Segment library drops a batch refused with a 4xx (but 429): an outage must
    // be a 5xx or no answer, which it sends again.
    assert!(
        load.refusals.keys().all(|s| *s == 0 || *s == 429 || *s >= 500),
        "answers other than 200: {:?}",
        load.refusals
    );
    assert!(
        readiness_while_down.iter().all(|s| *s == 503),
        "every node answered /readyz with 503 while PostgreSQL was down: {readiness_while_down:?}"
    );
    assert_eq!(
        load.acked_while_down, 0,
        "nothing acknowledged while PostgreSQL was down"
    );
    // The ingest nodes that lived through the restart (the same processes, the
    // same connection pools) acknowledged batches again after it.
    let survivors: Vec<&str> = {
        let nodes = cluster.nodes.lock().unwrap();
        through_restart
            .iter()
            .filter(|(name, pid, _)| nodes.iter().any(|n| n.name == *name && n.pid() == Some(*pid)))
            .map(|(name, _, _)| *name)
            .collect()
    };
    assert!(!survivors.is_empty(), "the witness lived through the restart");
    for (name, _, base) in &through_restart {
        if let Some(base) = base {
            assert!(
                load.acked_after_restart.get(base).copied().unwrap_or(0) > 0,
                "node {name} acknowledged nothing after PostgreSQL came back: {:?}",
                load.acked_after_restart
            );
        }
    }

    // Drain: the journey's runs and the campaign finish, every message goes out.
    let users = load.users.len() as i64;
    let expected_messages = users + AUDIENCE as i64;
    let api = Api::new(&cluster.base("A"));
    let deadline = Instant::now() + Duration::from_secs(100);
    let (found, expected_ids) = loop {
        let found = census(&pg, &load.acked).await;
        let status = api.get(&format!("/api/v1/campaigns/{campaign}")).await["status"].clone();
        let expected: BTreeSet<String> = found
            .message_keys
            .iter()
            .map(|key| nudge_messages::channel::smtp::message_id(key, "example.com"))
            .collect();
        let at_smtp: BTreeSet<String> = accepted_ids(&mail_dir).into_iter().collect();
        if found.runs == users
            && found.runs_finished == users
            && found.messages == expected_messages
            && found.messages_pending == 0
            && status == "completed"
            && at_smtp.is_superset(&expected)
        {
            break (found, expected);
        }
        assert!(
            Instant::now() < deadline,
            "not drained: {} runs of {users} expected, {} finished; {} messages of {expected_messages}, {} pending; campaign {status}; {} of {} Message-IDs at the SMTP server\n{}",
            found.runs,
            found.runs_finished,
            found.messages,
            found.messages_pending,
            at_smtp.intersection(&expected).count(),
            expected.len(),
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("{:>5.1}s drained", started.elapsed().as_secs_f64());

    // Every acknowledged event stored exactly once, and nothing else of the load.
    let acked = &load.acked;
    let distinct_acked: BTreeSet<&String> = acked.iter().collect();
    assert_eq!(distinct_acked.len(), acked.len(), "each messageId acknowledged once");
    assert_eq!(found.events_repeated, 0, "no event stored twice");
    assert_eq!(
        found.events_given,
        acked.len() as i64,
        "every acknowledged event stored"
    );
    assert_eq!(
        found.events_prefixed,
        acked.len() as i64,
        "nothing of the load stored but what was acknowledged"
    );
    // One contact per user, however many nodes saw its calls.
    assert_eq!(
        (found.contacts_prefixed, found.users_prefixed),
        (users, users),
        "one contact per user"
    );
    // Every run finished, by its exit; one run and one message per recipient.
    assert_eq!(found.contacts_in_two_runs, 0, "one run per contact");
    assert_eq!(found.messages_not_sent, 0, "every message sent");
    assert_eq!(found.message_recipients, expected_messages, "one message per recipient");

    // At the SMTP server: each message's Message-ID, and nothing else; a repeat only
    // of a Message-ID already delivered (a message in flight at a kill or at the
    // restart).
    let deliveries = accepted_ids(&mail_dir);
    let distinct: BTreeSet<String> = deliveries.iter().cloned().collect();
    assert_eq!(distinct, expected_ids, "exactly one distinct Message-ID per message");
    let repeats = deliveries.len() - distinct.len();
    // Each SIGKILL of a delivery node cuts one node's round; the restart both's.
    let cuts = killed.iter().filter(|n| *n != "A").count() + 2;
    assert!(
        repeats <= cuts * IN_FLIGHT,
        "{repeats} repeated deliveries for {cuts} interrupted rounds"
    );

    // No lease stuck: after a TTL and a renewal without kills, every singleton is
    // held by an engine node alive now, unexpired; no claim is left on a row. And
    // every node works: over a quiet spell longer than the workers' longest
    // back-off (10 s), no node logs an error (a node whose connections did not
    // recover from the restart would fail every round).
    let marks: Vec<(PathBuf, usize)> = cluster
        .nodes
        .lock()
        .unwrap()
        .iter()
        .map(|n| (n.dir.clone(), server_log(&n.dir).len()))
        .collect();
    tokio::time::sleep(Duration::from_secs(11).max(Duration::from_secs(SINGLETON_TTL_S) * 4 / 3)).await;
    for (dir, mark) in &marks {
        let log = server_log(dir);
        let errors: Vec<&str> = log[*mark..].lines().filter(|l| l.contains("ERROR")).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", dir.display());
    }
    let live_engines: Vec<u32> = {
        let nodes = cluster.nodes.lock().unwrap();
        nodes.iter().filter(|n| n.engine()).filter_map(Node::pid).collect()
    };
    let store = nudge_store::PgStore::connect_with(
        &pg.url(),
        nudge_store::secrets::Keyring::new(nudge_store::secrets::MasterKey::parse(SECRET_KEY).unwrap()),
    )
    .await
    .unwrap();
    let leases = nudge_store::LeaseStore::leases(&store).await.unwrap();
    nudge_store::Store::close(&store).await;
    let now = now_ms();
    for l in &leases {
        let pid: u32 = l.holder.split(':').nth(1).and_then(|p| p.parse().ok()).unwrap();
        assert!(
            live_engines.contains(&pid) && l.expires_at > now,
            "lease {} is held by {} until {} (now {now}); engine nodes alive: {live_engines:?}",
            l.name,
            l.holder,
            l.expires_at
        );
    }
    assert_eq!(
        leases.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        SINGLETONS.to_vec(),
        "every singleton has a holder"
    );
    let view = api.get("/api/v1/ops/leases").await;
    assert!(
        view["leases"].as_array().unwrap().iter().all(|l| l["expired"] == false),
        "{view}"
    );
    let after = census(&pg, &[]).await;
    for (table, claimed) in &after.claimed {
        assert_eq!(*claimed, 0, "rows of {table} still claimed");
    }
    assert_eq!(after.journey_inbox, 0, "journey inbox drained");
    assert_eq!(after.journey_timers, 0, "no timer left");
    // Every node is ready.
    let bases: Vec<String> = cluster
        .nodes
        .lock()
        .unwrap()
        .iter()
        .filter_map(|n| n.base.clone())
        .collect();
    for base in bases {
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        assert_eq!(r.status(), 200, "{base}");
    }

    eprintln!(
        "chaos: seed {seed}; {} SIGKILLs ({}), 1 PostgreSQL restart (readyz while down: {readiness_while_down:?}; nodes that lived through it: {survivors:?}); \
         events: {} acknowledged, {} stored ({} batches, {} attempts sent again, answered {:?}); \
         journey runs: {users} started, {} finished; messages: {expected_messages} sent ({users} welcome, {AUDIENCE} campaign); \
         SMTP: {} deliveries, {} distinct Message-IDs, {repeats} repeated; leases: {} singletons held by live nodes; {:.0}s in all",
        kills.load(Ordering::SeqCst),
        killed.join(" "),
        acked.len(),
        found.events_given,
        load.batches,
        load.retries,
        load.refusals,
        found.runs_finished,
        deliveries.len(),
        distinct.len(),
        leases.len(),
        started.elapsed().as_secs_f64()
    );
    // Nodes first (Proc kills them), then the cluster.
    cluster.nodes.lock().unwrap().clear();
    drop(pg);
}
