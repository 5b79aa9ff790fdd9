//! Operating a workspace, through the real binary: secrets sealed at rest (the
//! database files, the log, the API's answers and /metrics never show them; a wrong
//! key is named at start; rotation), and backups taken while a server ingests,
//! restored and served again.

mod common;

use common::{Api, WRITE_KEY, repo_root, server_log, start_server};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn nudge(data: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
    for var in [
        "NUDGE_CONFIG",
        "NUDGE_DATABASE_URL",
        "NUDGE_SECRET_KEY",
        "NUDGE_SECRET_KEY_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(args)
        .arg("--data-dir")
        .arg(data)
        .env("NUDGE_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run nudge")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: &Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "should fail: {}\n{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains(needle), "stderr should mention {needle:?}: {err}");
    err
}

/// Every file of the data directory (database, WAL, key files aside), as bytes.
fn database_bytes(data: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("nudge.db"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn assert_absent(what: &str, haystack: &[u8], secrets: &[&str]) {
    for s in secrets {
        assert!(
            !haystack.windows(s.len()).any(|w| w == s.as_bytes()),
            "{what} shows the secret {s:?}"
        );
    }
}

fn channel<'a>(channels: &'a Value, kind: &str) -> &'a Value {
    channels["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} channel: {channels}"))
}

const SMTP_PASSWORD: &str = "Pw-smtp-7f3a9c1e";
const SMS_TOKEN: &str = "Tok-sms-9c2e55b0";

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dkim = std::fs::read_to_string(repo_root().join("tests/smtp/dkim-test-key.pem")).unwrap();
    // A line of the key's body: distinctive, and what a leak would show.
    let dkim_line = dkim.lines().nth(2).unwrap().to_string();
    let (server, url) = start_server(dir.path(), &[("NUDGE_LOG", "debug")]);
    let log = server_log(dir.path());
    assert!(log.contains("created a new secret key file"), "{log}");
    assert!(log.contains(&data.join("secret.key").display().to_string()), "{log}");
    let key_file = std::fs::read_to_string(data.join("secret.key")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("secret.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let api = Api::new(&url);
    let (status, answer) = api
        .admin(
            reqwest::Method::PUT,
            "/api/v1/channels/email",
            Some(
                json!({"transport": "smtp", "url": format!("smtp://shop:{SMTP_PASSWORD}@127.0.0.1:9/?tls=none"),
                        "from": "Shop <shop@example.com>",
                        "dkim": {"selector": "s1", "domain": "example.com", "private_key": dkim}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, sms) = api
        .admin(
            reqwest::Method::PUT,
            "/api/v1/channels/sms",
            Some(
                json!({"transport": "twilio", "base_url": "http://127.0.0.1:9", "account": "AC-ops",
                        "token": SMS_TOKEN, "from": "+15550001"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{sms}");
    // A refused configuration carrying the secret: its error does not repeat it.
    let (status, refused) = api
        .admin(
            reqwest::Method::PUT,
            "/api/v1/channels/email",
            Some(json!({"transport": "smtp", "url": format!("smtp://shop:{SMTP_PASSWORD}@127.0.0.1:9"), "from": "not an address"})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    let channels = api.get("/api/v1/channels").await;
    assert_eq!(
        channel(&channels, "sms")["settings"]["account"],
        "AC-ops",
        "the SMS channel is configured: {channels}"
    );
    // The webhook signing key is shown to administrators by design (receivers
    // verify with it), so it is sealed in the database like the others.
    let webhook_key = channel(&channels, "webhook")["settings"]["signing_secret"]
        .as_str()
        .unwrap()
        .to_string();
    let metrics = api
        .http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let secrets = [SMTP_PASSWORD, SMS_TOKEN, dkim_line.as_str()];
    for (what, text) in [
        ("PUT email", answer.to_string()),
        ("PUT sms", sms.to_string()),
        ("a refusal", refused.to_string()),
        ("GET /api/v1/channels", channels.to_string()),
        ("/metrics", metrics),
    ] {
        assert_absent(what, text.as_bytes(), &secrets);
    }
    drop(server);
    assert_absent("the server's log", server_log(dir.path()).as_bytes(), &secrets);
    assert!(
        !server_log(dir.path()).contains(key_file.trim()),
        "the log shows the master key"
    );
    let mut sealed_files = secrets.to_vec();
    sealed_files.extend(["smtp://", "BEGIN RSA", webhook_key.as_str()]);
    for (path, bytes) in database_bytes(&data) {
        assert_absent(&path.display().to_string(), &bytes, &sealed_files);
    }

    // Another key: the start fails, naming the problem, not garbage.
    let other = "00".repeat(32);
    let err = fails(
        &nudge(&data, &[("NUDGE_SECRET_KEY", other.as_str())], &["migrate"]),
        "is sealed with key",
    );
    assert!(err.contains("NUDGE_SECRET_KEY or the key file"), "{err}");
    assert_absent("the wrong-key error", err.as_bytes(), &secrets);

    // Rotation: refused while a server holds the workspace, then done.
    let (server, _) = start_server(dir.path(), &[]);
    fails(&nudge(&data, &[], &["secrets", "rotate"]), "holds the workspace");
    drop(server);
    let rotated = ok(&nudge(&data, &[], &["secrets", "rotate"]));
    assert!(rotated.contains("sealed 5 secrets with the new key"), "{rotated}");
    let new_key = std::fs::read_to_string(data.join("secret.key")).unwrap();
    assert_ne!(new_key, key_file);
    let kept: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("secret.key.old-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read_to_string(data.join(&kept[0])).unwrap(), key_file);
    // The old key no longer opens the database; the new one does, with every secret.
    fails(
        &nudge(&data, &[("NUDGE_SECRET_KEY", key_file.trim())], &["migrate"]),
        "is sealed with key",
    );
    let (_server, url) = start_server(dir.path(), &[]);
    let channels = Api::new(&url).get("/api/v1/channels").await;
    assert_eq!(channel(&channels, "sms")["settings"]["account"], "AC-ops", "{channels}");
    let after = channel(&channels, "webhook")["settings"]["signing_secret"].clone();
    assert_eq!(after, webhook_key.as_str(), "the same secrets, sealed anew");
    for (path, bytes) in database_bytes(&data) {
        assert_absent(&path.display().to_string(), &bytes, &sealed_files);
    }
}

const CLIENTS: usize = 3;
/// Longer than a commit's answer takes to arrive: a batch answered this long after
/// the backup ended was committed after it.
const SETTLED: Duration = Duration::from_millis(500);
const BATCH: usize = 40;

fn batch_body(client: usize, n: usize) -> Value {
    let batch: Vec<Value> = (0..BATCH)
        .map(|i| {
            json!({"type": "track", "userId": format!("backup-{client}"), "event": "Item Scanned",
                   "messageId": format!("c{client}-b{n}-m{i}"), "properties": {"batch": n}})
        })
        .collect();
    json!({ "batch": batch })
}

/// Sends batches until told to stop; returns each acknowledged batch with the moment
/// its answer arrived.
async fn client(url: String, k: usize, stop: Arc<std::sync::atomic::AtomicBool>) -> Vec<(usize, Instant)> {
    let http = reqwest::Client::new();
    let mut acked = Vec::new();
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let resp = http
            .post(format!("{url}/v1/batch"))
            .basic_auth(WRITE_KEY, Some(""))
            .json(&batch_body(k, n))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        acked.push((n, Instant::now()));
        n += 1;
    }
    acked
}

/// The message ids of a contact's timeline, every page.
async fn timeline(api: &Api, user: &str) -> Vec<String> {
    let (status, found) = api
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/contacts/lookup?user_id={user}"),
            None,
        )
        .await;
    if status == 404 {
        return Vec::new();
    }
    let id = found["id"].as_i64().unwrap_or_else(|| panic!("{user}: {found}"));
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/contacts/{id}/events?limit=500");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = api.get(&path).await;
        ids.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["message_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn a_backup_taken_during_ingestion_restores_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = "ab".repeat(32);
    let env = [("NUDGE_SECRET_KEY", key.as_str())];
    let (server, url) = start_server(dir.path(), &env);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|k| tokio::spawn(client(url.clone(), k, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let file = dir.path().join("nudge-backup.db");
    let began = Instant::now();
    let out = {
        let (data, file) = (data.clone(), file.clone());
        tokio::task::spawn_blocking(move || nudge(&data, &[], &["backup", file.to_str().unwrap()]))
            .await
            .unwrap()
    };
    let ended = Instant::now();
    let said = ok(&out);
    assert!(said.contains("SHA-256"), "{said}");
    // Ingestion goes on after the backup.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked: Vec<Vec<(usize, Instant)>> = Vec::new();
    for t in tasks {
        acked.push(t.await.unwrap());
    }
    let before: usize = acked
        .iter()
        .map(|a| a.iter().filter(|(_, at)| *at < began).count())
        .sum();
    let after: usize = acked
        .iter()
        .map(|a| a.iter().filter(|(_, at)| *at > ended + SETTLED).count())
        .sum();
    assert!(
        before > 3 && after > 3,
        "ingestion ran around the backup: {before} before, {after} after"
    );

    // The workspace a server holds is not replaced; nor, without --force, one at rest.
    fails(
        &nudge(&data, &[], &["restore", file.to_str().unwrap(), "--force"]),
        "holds the workspace",
    );
    drop(server);
    fails(&nudge(&data, &[], &["restore", file.to_str().unwrap()]), "--force");
    // A damaged copy is refused before anything changes.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    fails(
        &nudge(&data, &[], &["restore", damaged.to_str().unwrap(), "--force"]),
        "no checksum file",
    );
    std::fs::copy(
        dir.path().join("nudge-backup.db.sha256"),
        dir.path().join("damaged.db.sha256"),
    )
    .unwrap();
    fails(
        &nudge(&data, &[], &["restore", damaged.to_str().unwrap(), "--force"]),
        "does not match its checksum",
    );
    // PostgreSQL workspaces are backed up with PostgreSQL's tools.
    fails(
        &nudge(
            &data,
            &[],
            &["backup", "x.db", "--database-url", "postgres://nobody@127.0.0.1:1/x"],
        ),
        "pg_dump",
    );

    // Restored into a new workspace and served: every batch acknowledged before the
    // backup began is there, whole; none acknowledged after it ended.
    let restored_dir = tempfile::tempdir().unwrap();
    let restored = restored_dir.path().join("data");
    let said = ok(&nudge(&restored, &[], &["restore", file.to_str().unwrap()]));
    assert!(said.contains("checksum verified"), "{said}");
    let (_server, url) = start_server(restored_dir.path(), &env);
    let api = Api::new(&url);
    for (k, batches) in acked.iter().enumerate() {
        let ids: std::collections::HashSet<String> = timeline(&api, &format!("backup-{k}")).await.into_iter().collect();
        for (n, at) in batches {
            let present = (0..BATCH).filter(|i| ids.contains(&format!("c{k}-b{n}-m{i}"))).count();
            assert!(
                present == 0 || present == BATCH,
                "batch {n} of client {k} is partly restored"
            );
            if *at < began {
                assert_eq!(
                    present, BATCH,
                    "batch {n} of client {k} was acknowledged before the backup"
                );
            }
            if *at > ended + SETTLED {
                assert_eq!(present, 0, "batch {n} of client {k} came after the backup");
            }
        }
    }

    // Over the original, with --force: the replaced database is kept.
    let said = ok(&nudge(&data, &[], &["restore", file.to_str().unwrap(), "--force"]));
    assert!(said.contains("is kept as"), "{said}");
    let kept = std::fs::read_dir(&data)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            n.starts_with("nudge.db.replaced-") && !n.ends_with("-wal") && !n.ends_with("-shm")
        })
        .count();
    assert_eq!(kept, 1);
}

/// `nudge demo`'s workspace (200 contacts), filled and stopped.
fn demo_workspace(dir: &Path) -> PathBuf {
    use std::io::BufRead;
    let data = dir.join("data");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
    for var in [
        "NUDGE_CONFIG",
        "NUDGE_DATABASE_URL",
        "NUDGE_SECRET_KEY",
        "NUDGE_SECRET_KEY_FILE",
    ] {
        cmd.env_remove(var);
    }
    let mut child = common::Proc(
        cmd.args(["demo", "--contacts", "200", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .current_dir(dir)
            .env("NUDGE_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(dir.join("demo.log")).unwrap())
            .spawn()
            .expect("start nudge demo"),
    );
    let mut lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
    assert!(
        lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.trim().starts_with("stop with Ctrl-C")),
        "nudge demo did not start"
    );
    // What it prints next is read, so that printing does not fail.
    std::thread::spawn(move || for _ in lines {});
    // Its signal handlers are in place before it says it is ready: no pause needed.
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.0.wait().unwrap();
    assert!(
        status.success(),
        "nudge demo stops cleanly: {status}; {}",
        std::fs::read_to_string(dir.join("demo.log")).unwrap_or_default()
    );
    data
}

#[tokio::test]
async fn migrate_to_copies_the_demo_workspace_into_postgres() {
    let Ok(base) = std::env::var("NUDGE_TEST_DATABASE_URL") else {
        eprintln!("NUDGE_TEST_DATABASE_URL not set: migrate-to test skipped");
        return;
    };
    let schema = nudge_store::scratch::PgScratchSchema::create(&base, "nudge_migrate_to")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = demo_workspace(dir.path());
    let said = ok(&nudge(&data, &[], &["migrate-to", schema.url.as_str()]));
    assert!(said.contains("row counts equal, 100 sampled contacts"), "{said}");
    let rows = |name: &str| -> u64 {
        said.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {said}"))
            .parse()
            .unwrap()
    };
    assert!(rows("contacts") >= 200 && rows("events") > rows("contacts"), "{said}");
    // Every copied event's message id is claimed (PostgreSQL de-duplicates by them).
    assert_eq!(rows("event_message_ids"), rows("events"), "{said}");
    // Into a database that is no longer empty: refused, nothing touched.
    fails(&nudge(&data, &[], &["migrate-to", schema.url.as_str()]), "not empty");
    fails(&nudge(&data, &[], &["migrate-to", "mysql://x"]), "postgres://");

    // Both servers answer alike: the same contacts, the same secrets.
    let (sqlite_server, sqlite_url) = start_server(dir.path(), &[]);
    let (pg_server, pg_url) = start_server(dir.path(), &[("NUDGE_DATABASE_URL", schema.url.as_str())]);
    let (a, b) = (Api::new(&sqlite_url), Api::new(&pg_url));
    for path in ["/api/v1/contacts?limit=50", "/api/v1/segments", "/api/v1/journeys"] {
        assert_eq!(a.get(path).await["data"], b.get(path).await["data"], "{path}");
    }
    let webhook = |c: &Value| channel(c, "webhook")["settings"]["signing_secret"].clone();
    assert_eq!(
        webhook(&a.get("/api/v1/channels").await),
        webhook(&b.get("/api/v1/channels").await)
    );
    drop((sqlite_server, pg_server));
    schema.drop_schema().await.unwrap();
}
