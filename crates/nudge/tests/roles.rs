//! Node roles and singleton leases, through the real binary (docs/operations.md,
//! "Roles"): `--roles` chooses the routes a node serves and the workers it runs; a
//! bad role is a command-line error; on PostgreSQL one node runs each singleton and
//! another takes over within the documented bound when the holder is killed.

mod common;

use common::{ADMIN_KEY, Api, server_log, start_server};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

const SINGLETONS: [&str; 6] = [
    "campaigns",
    "journey-entries",
    "predictions",
    "recommendations",
    "retention",
    "send-time",
];

async fn status(api: &Api, method: reqwest::Method, path: &str) -> u16 {
    api.http
        .request(method, format!("{}{path}", api.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn metrics(api: &Api) -> String {
    let resp = api.http.get(format!("{}/metrics", api.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// The value of `nudge_singleton_held{name="..."}` in a node's metrics.
fn held(metrics: &str, name: &str) -> Option<i64> {
    let prefix = format!("nudge_singleton_held{{name=\"{name}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
}

#[test]
fn a_bad_role_is_a_command_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
        for var in ["NUDGE_CONFIG", "NUDGE_DATABASE_URL", "NUDGE_ROLES"] {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let out = run(&["serve", "--roles", "api,worker"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--roles")
            && err.contains("unknown role \"worker\"")
            && err.contains("api, ingest, engine and delivery"),
        "{err}"
    );
    let out = run(&["serve"], &[("NUDGE_ROLES", "api,bogus")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("NUDGE_ROLES") && err.contains("\"bogus\""), "{err}");
    let out = run(&["serve", "--roles", ""], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no role"));
}

/// An `engine` node serves no admin API, UI or tracking (404) but health, readiness
/// and metrics, and runs the singletons; an `api` node runs no engine or delivery
/// work (its leases list is empty, a message it queues stays queued); an `ingest`
/// node takes tracking calls and nothing of the admin API.
#[tokio::test]
async fn each_role_serves_its_routes_and_runs_its_workers() {
    let dir = tempfile::tempdir().unwrap();

    let (engine_node, base) = start_server(&dir.path().join("engine"), &[("NUDGE_ROLES", "engine")]);
    let api = Api::new(&base);
    for path in [
        "/api/v1/contacts",
        "/api/v1/ops/leases",
        "/api/v1/openapi.json",
        "/",
        "/sign-in",
    ] {
        assert_eq!(
            status(&api, reqwest::Method::GET, path).await,
            404,
            "{path} on an engine node"
        );
    }
    let (s, _) = api.write("/v1/track", json!({"userId": "u", "event": "E"})).await;
    assert_eq!(s, 404, "no tracking on an engine node");
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(status(&api, reqwest::Method::GET, path).await, 200, "{path}");
    }
    let m = metrics(&api).await;
    for name in SINGLETONS {
        assert_eq!(held(&m, name), Some(1), "{name}: {m}");
    }
    assert!(m.contains("nudge_node_role{role=\"engine\"} 1") && m.contains("nudge_node_role{role=\"api\"} 0"));
    drop(engine_node);

    let (api_node, base) = start_server(&dir.path().join("api"), &[("NUDGE_ROLES", "api")]);
    let api = Api::new(&base);
    assert_eq!(status(&api, reqwest::Method::GET, "/api/v1/contacts").await, 200);
    assert_eq!(status(&api, reqwest::Method::GET, "/sign-in").await, 200, "the web UI");
    let (s, _) = api.write("/v1/track", json!({"userId": "u", "event": "E"})).await;
    assert_eq!(s, 404, "no tracking on an api node");
    let leases = api.get("/api/v1/ops/leases").await;
    assert_eq!(leases["roles"], json!(["api"]));
    assert_eq!(leases["leases"], json!([]), "no engine ran here: {leases}");
    assert_eq!(held(&metrics(&api).await, "predictions"), None);
    let (s, t) = api
        .post(
            "/api/v1/templates",
            json!({"name": "hello", "transactional": true, "content": {"channel": "email", "subject": "Hi", "html": "<p>Hi</p>"}}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let (s, m) = api
        .post(
            "/api/v1/messages",
            json!({"template": "hello", "to": {"email": "ada@example.com"}, "idempotency_key": "k1"}),
        )
        .await;
    assert_eq!(s, 202, "{m}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = api.get(&format!("/api/v1/messages/{}", m["id"])).await;
    assert_eq!(m["state"], "queued", "no delivery worker on an api node: {m}");
    assert!(!server_log(&dir.path().join("api")).contains("singleton lease taken"));
    drop(api_node);

    let (ingest_node, base) = start_server(&dir.path().join("ingest"), &[("NUDGE_ROLES", "ingest")]);
    let api = Api::new(&base);
    api.track("/v1/track", json!({"userId": "u", "event": "E"})).await;
    assert_eq!(status(&api, reqwest::Method::GET, "/api/v1/contacts").await, 404);
    assert_eq!(status(&api, reqwest::Method::GET, "/").await, 404);
    assert_eq!(status(&api, reqwest::Method::GET, "/healthz").await, 200);
    drop(ingest_node);
}

/// Two nodes on one PostgreSQL schema: the first started holds every singleton, the
/// second none (both say so in `/metrics`, and the leases API agrees). The holder is
/// SIGKILLed; the other takes every singleton over within TTL + renew interval (the
/// bound docs/operations.md gives), and when it stops cleanly it gives them up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_singletons_move_to_another_node_within_the_bound() {
    let Ok(database) = std::env::var("NUDGE_TEST_DATABASE_URL") else {
        eprintln!("NUDGE_TEST_DATABASE_URL not set: the two-node lease test is skipped");
        return;
    };
    if database.is_empty() {
        return;
    }
    let schema = nudge_store::scratch::PgScratchSchema::create(&database, "nudge_roles")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    const TTL_S: u64 = 3;
    let ttl = TTL_S.to_string();
    let env = [
        ("NUDGE_DATABASE_URL", schema.url.as_str()),
        ("NUDGE_SINGLETON_LEASE_SECONDS", ttl.as_str()),
        (
            "NUDGE_SECRET_KEY",
            "6e756467652074657374206b65792c206f6e6520666f722032206e6f64657321",
        ),
    ];
    // A: a worker node (no API); B: every role.
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    let mut env_a = env.to_vec();
    env_a.push(("NUDGE_ROLES", "engine,delivery"));
    let (mut a, base_a) = start_server(&dir_a, &env_a);
    let (b, base_b) = start_server(&dir_b, &env);
    let (api_a, api_b) = (Api::new(&base_a), Api::new(&base_b));
    assert_eq!(status(&api_a, reqwest::Method::GET, "/api/v1/ops/leases").await, 404);

    // Over a few renewals, A keeps every singleton and B runs none.
    for _ in 0..3 {
        let (ma, mb) = (metrics(&api_a).await, metrics(&api_b).await);
        for name in SINGLETONS {
            assert_eq!((held(&ma, name), held(&mb, name)), (Some(1), Some(0)), "{name}");
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let view = api_b.get("/api/v1/ops/leases").await;
    let node_b = view["node"].as_str().unwrap().to_string();
    let leases = view["leases"].as_array().unwrap();
    assert_eq!(
        leases.iter().map(|l| l["name"].as_str().unwrap()).collect::<Vec<_>>(),
        SINGLETONS.to_vec(),
        "{view}"
    );
    let node_a = leases[0]["holder"].as_str().unwrap().to_string();
    assert_ne!(node_a, node_b);
    assert!(
        leases
            .iter()
            .all(|l| l["holder"] == node_a.as_str() && l["expired"] == false && l["held_here"] == false),
        "{view}"
    );

    // SIGKILL: A renews nothing more, releases nothing.
    a.0.kill().unwrap();
    let killed = Instant::now();
    a.0.wait().unwrap();
    let bound = Duration::from_secs(TTL_S) + Duration::from_secs(TTL_S) / 3;
    let taken = loop {
        let mb = metrics(&api_b).await;
        if SINGLETONS.iter().all(|n| held(&mb, n) == Some(1)) {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < bound + Duration::from_secs(2),
            "B has not taken every singleton over {:?} after the kill: {mb}\n{}",
            killed.elapsed(),
            server_log(&dir_b)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("singletons taken over {taken:?} after the SIGKILL (bound {bound:?})");
    // Polling adds up to 100 ms and a request; the bound is the lease's.
    assert!(taken <= bound + Duration::from_millis(500), "{taken:?} > {bound:?}");
    let view: Value = api_b.get("/api/v1/ops/leases").await;
    assert!(
        view["leases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["holder"] == node_b.as_str() && l["held_here"] == true),
        "{view}"
    );
    assert!(server_log(&dir_b).contains("singleton lease taken"));

    // A clean stop gives the leases up: nothing stays held by a node that is gone.
    let pid = b.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut b = b;
    let exit = b.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let key = nudge_store::secrets::MasterKey::parse(env[2].1).unwrap();
    let store = nudge_store::PgStore::connect_with(&schema.url, nudge_store::secrets::Keyring::new(key))
        .await
        .unwrap();
    use nudge_store::LeaseStore;
    assert_eq!(store.leases().await.unwrap(), vec![], "every lease released");
    nudge_store::Store::close(&store).await;
    drop((a, b));
    schema.drop_schema().await.unwrap();
}
