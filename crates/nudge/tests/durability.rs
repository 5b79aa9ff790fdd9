//! Durability: the server is killed with SIGKILL while clients send batches. After a
//! restart, every message that was answered 200 is stored, and re-sending everything
//! (as clients retry) stores each message exactly once.
//!
//! Runs on SQLite, and also on PostgreSQL when `NUDGE_TEST_DATABASE_URL` is set.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "na_durability_admin";
const WRITE: &str = "nw_durability_write";
const CLIENTS: usize = 4;
const BATCH: usize = 50;

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data_dir: &std::path::Path, database_url: Option<&str>) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("NUDGE_ADMIN_KEY", ADMIN)
            .env("NUDGE_WRITE_KEY", WRITE)
            .env("NUDGE_LOG", "warn")
            .env_remove("NUDGE_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = database_url {
            cmd.env("NUDGE_DATABASE_URL", url);
        }
        let mut child = cmd.spawn().expect("start nudge");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("nudge listening on ") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("server did not start");
        Server { child, url }
    }

    fn sigkill(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }

    fn sigterm(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "graceful shutdown exits 0, got {status}");
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "graceful shutdown took too long"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn batch_body(client: usize, n: usize) -> Value {
    let batch: Vec<Value> = (0..BATCH)
        .map(|i| {
            json!({"type": "track", "userId": format!("client-{client}"), "event": "Item Scanned",
                   "messageId": format!("c{client}-b{n}-m{i}"), "properties": {"batch": n, "i": i}})
        })
        .collect();
    json!({ "batch": batch })
}

/// Sends batches until told to stop; returns the numbers of the batches answered 200.
/// Batches are numbered from `first`.
async fn client(
    http: reqwest::Client,
    url: Arc<Mutex<String>>,
    k: usize,
    first: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    sent: Arc<Mutex<usize>>,
) -> Vec<usize> {
    let mut acked = Vec::new();
    let mut n = first;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let target = url.lock().unwrap().clone();
        let resp = http
            .post(format!("{target}/v1/batch"))
            .basic_auth(WRITE, Some(""))
            .json(&batch_body(k, n))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if let Ok(r) = resp
            && r.status() == 200
        {
            acked.push(n);
        }
        n += 1;
        *sent.lock().unwrap() = n;
    }
    acked
}

async fn timeline_ids(http: &reqwest::Client, url: &str, client: usize) -> Vec<String> {
    let lookup: Value = http
        .get(format!("{url}/api/v1/contacts/lookup?user_id=client-{client}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = lookup["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("client-{client} unknown: {lookup}"));
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut u = format!("{url}/api/v1/contacts/{id}/events?limit=500");
        if let Some(c) = &cursor {
            u.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http
            .get(u)
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["message_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    ids
}

async fn kill_during_ingest(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut server = Server::start(dir.path(), database_url.as_deref());
    let url = Arc::new(Mutex::new(server.url.clone()));
    let mut acked: Vec<Vec<usize>> = vec![Vec::new(); CLIENTS];
    let mut sent = [0usize; CLIENTS];
    for round in 0..2 {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counters: Vec<_> = (0..CLIENTS).map(|k| Arc::new(Mutex::new(sent[k]))).collect();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|k| {
                // Each round continues the batch numbering where the last one ended.
                let (http, url, stop, counter) = (http.clone(), url.clone(), stop.clone(), counters[k].clone());
                let first = sent[k];
                tokio::spawn(async move { client(http, url, k, first, stop, counter).await })
            })
            .collect();
        // Let the clients get going, then pull the plug mid-stream.
        tokio::time::sleep(Duration::from_millis(1500 + 700 * round)).await;
        server.sigkill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for (k, t) in tasks.into_iter().enumerate() {
            acked[k].extend(t.await.unwrap());
            sent[k] = *counters[k].lock().unwrap();
        }
        server = Server::start(dir.path(), database_url.as_deref());
        *url.lock().unwrap() = server.url.clone();
    }
    let total_acked: usize = acked.iter().map(Vec::len).sum();
    assert!(
        total_acked > 10,
        "the clients got some batches through before the kills ({total_acked})"
    );
    // Every acknowledged message survived the kills, exactly once.
    for (k, acked) in acked.iter().enumerate() {
        let ids = timeline_ids(&http, &server.url, k).await;
        let set: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(set.len(), ids.len(), "client {k}: no message stored twice");
        for n in acked {
            for i in 0..BATCH {
                assert!(
                    set.contains(&format!("c{k}-b{n}-m{i}")),
                    "client {k}: acknowledged batch {n} message {i} was lost"
                );
            }
        }
    }
    // Clients retry everything they are unsure about (here: all of it).
    for (k, sent) in sent.iter().enumerate() {
        for n in 0..*sent {
            let r = http
                .post(format!("{}/v1/batch", server.url))
                .basic_auth(WRITE, Some(""))
                .json(&batch_body(k, n))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        let ids = timeline_ids(&http, &server.url, k).await;
        assert_eq!(
            ids.len(),
            sent * BATCH,
            "client {k}: after retries every message is stored exactly once"
        );
    }
    server.sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_event_sqlite() {
    kill_during_ingest(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_event_postgres() {
    let Ok(base) = std::env::var("NUDGE_TEST_DATABASE_URL") else {
        eprintln!("NUDGE_TEST_DATABASE_URL not set: PostgreSQL durability test skipped");
        return;
    };
    let schema = nudge_store::scratch::PgScratchSchema::create(&base, "nudge_durability")
        .await
        .unwrap();
    kill_during_ingest(Some(schema.url.clone())).await;
    schema.drop_schema().await.unwrap();
}
