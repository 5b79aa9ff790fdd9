//! What the process-level tests share: a real `nudge serve` on a temporary data
//! directory, and a small client for its admin and tracking APIs.
#![allow(dead_code)] // each test file uses its own part

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WRITE_KEY: &str = "nw_process_test_write_key";
pub const ADMIN_KEY: &str = "na_process_test_admin_key";

/// A child process killed when dropped.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn server_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// Starts `nudge serve` on `dir/data` (SQLite, a free port, the test keys, no SMTP or
/// SMS provider unless `env` names one) and returns it with its base URL. The log
/// goes to `dir/server.log` (appended, so restarts keep it).
pub fn start_server(dir: &Path, env: &[(&str, &str)]) -> (Proc, String) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
    for var in ["NUDGE_CONFIG", "NUDGE_DATABASE_URL", "NUDGE_SMTP_URL", "NUDGE_SMS_URL"] {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .current_dir(dir)
        .env("NUDGE_ADMIN_KEY", ADMIN_KEY)
        .env("NUDGE_WRITE_KEY", WRITE_KEY)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start nudge serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "nudge serve exited; log: {}",
            server_log(dir)
        );
        if let Some(rest) = line.strip_prefix("nudge listening on http://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in out.lines() {});
    (Proc(child), format!("http://{addr}"))
}

/// A client for one server; follows no redirects (tests look at them).
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Api {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
        }
    }

    /// An admin API call: status and JSON body (or the text as a JSON string).
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }

    /// GET that must answer 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, v) = self.admin(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// A write-key call (tracking API, push subscriptions).
    pub async fn write(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(WRITE_KEY, Some(""))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A tracking call that must be accepted.
    pub async fn track(&self, path: &str, body: Value) {
        let (status, v) = self.write(path, body).await;
        assert_eq!(status, 200, "{path}: {v}");
    }

    /// Waits (up to 20 s) until `until` holds for message `id`.
    pub async fn message_when(&self, id: i64, until: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.get(&format!("/api/v1/messages/{id}")).await;
            if until(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "message {id} stayed {m}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The timeline of the contact with user id `user`, newest first.
    pub async fn contact_events(&self, user: &str) -> Vec<Value> {
        let c = self.get(&format!("/api/v1/contacts/lookup?user_id={user}")).await;
        let events = self
            .get(&format!("/api/v1/contacts/{}/events?limit=200", c["id"]))
            .await;
        events["data"].as_array().unwrap().clone()
    }
}

// Real SMTP server (aiosmtpd, tests/smtp/sink.py) and the Python test virtualenv.

pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("NUDGE_PYTHON") {
        return p.into();
    }
    let cache = match std::env::var_os("NUDGE_CACHE") {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/nudge"),
    };
    cache.join("venv/bin/python")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the SMTP sink; returns it with its port.
pub fn start_sink(out: &Path, count_only: bool) -> (Proc, u16) {
    let port = free_port();
    let mut child = Command::new(python())
        .arg(repo_root().join("tests/smtp/sink.py"))
        .arg(port.to_string())
        .arg(out)
        .args(count_only.then_some("--count-only"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the SMTP sink");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
    (Proc(child), port)
}

pub fn received(dir: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        if files.len() >= n {
            files.sort_by_key(|p| p.file_stem().unwrap().to_string_lossy().parse::<u64>().unwrap_or(0));
            return files
                .iter()
                .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} emails, the SMTP server has {}",
            files.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn part<'a>(mail: &'a Value, content_type: &str) -> &'a str {
    mail["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["content_type"] == content_type)
        .and_then(|p| p["text"].as_str())
        .unwrap_or_else(|| panic!("no {content_type} part in {mail}"))
}

/// A header of a mail the sink received (`received`), by name in any case.
pub fn header<'a>(mail: &'a Value, name: &str) -> Option<&'a str> {
    mail["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .and_then(|h| h[1].as_str())
}

/// The first `href` in `html` that starts with `prefix`.
pub fn link(html: &str, prefix: &str) -> String {
    let at = html
        .find(&format!("href=\"{prefix}"))
        .unwrap_or_else(|| panic!("no link to {prefix} in {html}"));
    let rest = &html[at + 6..];
    rest[..rest.find('"').unwrap()].replace("&amp;", "&")
}

/// False (with a notice) when the Python test packages are missing; a failure under
/// `NUDGE_REQUIRE_SDK_TESTS=1`.
pub fn have_python_packages() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import aiosmtpd, dkim"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let what = "the test virtualenv lacks aiosmtpd/dkimpy; run scripts/install-test-deps";
        assert!(std::env::var("NUDGE_REQUIRE_SDK_TESTS").as_deref() != Ok("1"), "{what}");
        eprintln!("SKIPPED: {what}");
    }
    ok
}

/// Message-IDs the count-only sink has accepted so far (one per line).
pub fn accepted_ids(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("ids.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
