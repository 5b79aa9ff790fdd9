//! Segment's official client libraries against a real `nudge serve`: each test starts
//! the binary (SQLite in a temporary directory, on a free port), runs a script under
//! `tests/sdk/` that sends a whole identify/track/page/screen/group/alias story
//! through the library and checks the result through the admin API, and fails with
//! the script's output (and the server's log) if the script does.
//!
//! The libraries come from the package registries: install them with
//! `scripts/install-test-deps` (see its header for where they go). When they are
//! missing these tests pass with a notice, so a plain `cargo test` works anywhere;
//! with `NUDGE_REQUIRE_SDK_TESTS=1` (CI) they fail instead.
//!
//! - `python_sdk`: `segment-analytics-python` (`tests/sdk/python/sdk_test.py`), run
//!   with `$NUDGE_PYTHON`, else `${NUDGE_CACHE:-$HOME/.cache/nudge}/venv/bin/python`.
//! - `node_sdk`: `@segment/analytics-node` (`tests/sdk/node/sdk-test.mjs`), run with
//!   `$NUDGE_NODE`, else `node`, and `tests/sdk/node/node_modules`.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WRITE_KEY: &str = "nw_sdk_test_write_key";
const ADMIN_KEY: &str = "na_sdk_test_admin_key";
/// How long one script may take; it normally needs a few seconds.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// Skips (with a notice) or, under `NUDGE_REQUIRE_SDK_TESTS=1`, fails a test whose
/// SDK is not installed.
fn missing_dependency(test: &str, what: &str) {
    let hint = "run scripts/install-test-deps to install the SDK test dependencies";
    if std::env::var("NUDGE_REQUIRE_SDK_TESTS").as_deref() == Ok("1") {
        panic!("{test}: {what}; {hint} (NUDGE_REQUIRE_SDK_TESTS=1 makes this a failure)");
    }
    eprintln!("{test}: SKIPPED: {what}; {hint}, or set NUDGE_REQUIRE_SDK_TESTS=1 to make this a failure");
}

/// Runs `program args` briefly and tells whether it succeeded.
fn runs_ok(program: &OsString, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A `nudge serve` child process, killed when dropped (also when a test panics).
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data directory");
        let log = File::create(dir.path().join("server.log")).expect("server log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_nudge"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            // No nudge.toml or NUDGE_* settings of the caller's environment apply.
            .current_dir(dir.path())
            .env_remove("NUDGE_CONFIG")
            .env_remove("NUDGE_DATABASE_URL")
            .env_remove("NUDGE_LISTEN")
            .env_remove("NUDGE_DATA_DIR")
            .env("NUDGE_ADMIN_KEY", ADMIN_KEY)
            .env("NUDGE_WRITE_KEY", WRITE_KEY)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the nudge binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
        };

        // The server prints `nudge listening on http://ADDR (...)` once it listens;
        // the thread keeps draining stdout until the process ends.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("nudge listening on http://") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => panic!("nudge serve did not report its address; its log:\n{}", server.log()),
        };
        server.addr = addr
            .parse()
            .unwrap_or_else(|_| panic!("unexpected listen address {addr:?}"));

        let deadline = Instant::now() + Duration::from_secs(30);
        while http_status(server.addr, "/healthz") != Some(200) {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("nudge serve exited ({status}); its log:\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "/healthz did not answer 200 in time; server log:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The end of the server's log, for failure messages.
    fn log(&self) -> String {
        tail(
            &std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default(),
            8000,
        )
    }

    /// Runs a test script against this server and panics, showing its output and the
    /// server's log, unless it exits 0.
    fn run_script(&self, name: &str, program: &OsString, script: &Path) {
        let out_path = self.dir.path().join(format!("{name}.out"));
        let out = File::create(&out_path).expect("script output file");
        let err = out.try_clone().expect("script output file");
        let run_id = format!(
            "{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let mut child = Command::new(program)
            .arg(script)
            .current_dir(script.parent().expect("script directory"))
            .env("NUDGE_URL", self.url())
            .env("NUDGE_WRITE_KEY", WRITE_KEY)
            .env("NUDGE_ADMIN_KEY", ADMIN_KEY)
            .env("RUN_ID", &run_id)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot run {program:?} {script:?}: {e}"));
        let status = wait_with_timeout(&mut child, SCRIPT_TIMEOUT);
        let output = std::fs::read_to_string(&out_path).unwrap_or_default();
        match status {
            Some(s) if s.success() => println!("{name} output:\n{}", tail(&output, 8000)),
            Some(s) => panic!(
                "{name} failed ({s}); its output:\n{}\n--- nudge serve log ---\n{}",
                tail(&output, 30000),
                self.log()
            ),
            None => panic!(
                "{name} did not finish in {SCRIPT_TIMEOUT:?} and was killed; its output:\n{}\n--- nudge serve log ---\n{}",
                tail(&output, 30000),
                self.log()
            ),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child`; kills it and returns `None` after `timeout`.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The status code of a plain `GET path`, if the server answers.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// At most the last `max` bytes of `s` (on a character boundary).
fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("[... {start} bytes cut ...]\n{}", &s[start..])
}

#[test]
fn python_sdk() {
    let python: OsString = match std::env::var_os("NUDGE_PYTHON") {
        Some(p) => p,
        None => {
            let cache = match std::env::var_os("NUDGE_CACHE") {
                Some(c) => PathBuf::from(c),
                None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/nudge"),
            };
            cache.join("venv/bin/python").into_os_string()
        }
    };
    if !runs_ok(&python, &["-c", "import segment.analytics"]) {
        return missing_dependency(
            "python_sdk",
            &format!("{python:?} cannot import segment.analytics (segment-analytics-python)"),
        );
    }
    let server = Server::start();
    server.run_script("python_sdk", &python, &repo_root().join("tests/sdk/python/sdk_test.py"));
}

#[test]
fn node_sdk() {
    let node = std::env::var_os("NUDGE_NODE").unwrap_or_else(|| "node".into());
    let dir = repo_root().join("tests/sdk/node");
    if !dir.join("node_modules/@segment/analytics-node/package.json").is_file() {
        return missing_dependency(
            "node_sdk",
            &format!("{} has no @segment/analytics-node", dir.join("node_modules").display()),
        );
    }
    if !runs_ok(&node, &["--version"]) {
        return missing_dependency("node_sdk", &format!("{node:?} (Node.js 20 or later) does not run"));
    }
    let server = Server::start();
    server.run_script("node_sdk", &node, &dir.join("sdk-test.mjs"));
}
