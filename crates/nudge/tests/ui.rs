//! The web UI in a real browser: `tests/ui/run.py` drives Debian's Chromium with
//! Playwright (Python) through the flows in `tests/ui/flows/` against a real
//! `nudge demo` (sign in, find a contact and its timeline, Persian right-to-left pages,
//! CSRF, roles, sign-in lockout, escaping, and each area's own flow). A real SMTP
//! server (aiosmtpd, `tests/smtp/sink.py`) runs beside it for the flows that
//! configure the e-mail channel and send tests: its port is `NUDGE_UI_SMTP_PORT` and
//! what it receives lands in `NUDGE_UI_MAIL_DIR` (one JSON file per e-mail).
//! Screenshots of every page go to `$NUDGE_UI_SHOTS`, else
//! `${NUDGE_CACHE:-~/.cache/nudge}/ui-screenshots`.
//!
//! Playwright is installed by `scripts/install-test-deps` into the test virtualenv
//! (no browser download: it launches `/usr/bin/chromium`, or `$NUDGE_UI_CHROMIUM`).
//! When either is missing the test passes with a notice; with
//! `NUDGE_REQUIRE_SDK_TESTS=1` (CI) it fails instead.

mod common;

use common::{Proc, python, repo_root, start_sink};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn missing_dependency(what: &str) {
    let hint = "run scripts/install-test-deps and install Debian's chromium";
    if std::env::var("NUDGE_REQUIRE_SDK_TESTS").as_deref() == Ok("1") {
        panic!("ui: {what}; {hint} (NUDGE_REQUIRE_SDK_TESTS=1 makes this a failure)");
    }
    eprintln!("ui: SKIPPED: {what}; {hint}");
}

fn shots_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("NUDGE_UI_SHOTS") {
        return d.into();
    }
    let cache = match std::env::var_os("NUDGE_CACHE") {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/nudge"),
    };
    cache.join("ui-screenshots")
}

/// What `nudge demo` prints once it listens.
struct Demo {
    base: String,
    owner_email: String,
    owner_password: String,
    admin_key: String,
    write_key: String,
}

fn start_demo(dir: &std::path::Path) -> (Proc, Demo) {
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
    for var in [
        "NUDGE_CONFIG",
        "NUDGE_DATABASE_URL",
        "NUDGE_SMTP_URL",
        "NUDGE_SMS_URL",
        "NUDGE_ADMIN_KEY",
        "NUDGE_WRITE_KEY",
    ] {
        cmd.env_remove(var);
    }
    // The forms flow simulates clients at several addresses.
    cmd.env("NUDGE_TRUST_FORWARDED_FOR", "true");
    let mut child = cmd
        .args(["demo", "--contacts", "200", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start nudge demo");
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut demo = Demo {
        base: String::new(),
        owner_email: String::new(),
        owner_password: String::new(),
        admin_key: String::new(),
        write_key: String::new(),
    };
    let mut lines = out.lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("nudge listening on ") {
            demo.base = rest.split_whitespace().next().unwrap().to_owned();
        } else if let Some(rest) = l.strip_prefix("open ") {
            // "open http://ADDR/ and sign in as EMAIL with password PASSWORD"
            let words: Vec<&str> = rest.split_whitespace().collect();
            demo.owner_email = words[words.len() - 4].to_owned();
            demo.owner_password = words[words.len() - 1].to_owned();
        } else if let Some(k) = l.strip_prefix("admin key: ") {
            demo.admin_key = k.to_owned();
        } else if let Some(k) = l.strip_prefix("write key: ") {
            demo.write_key = k.to_owned();
        } else if l.starts_with("stop with Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(
        !demo.base.is_empty() && !demo.owner_password.is_empty() && !demo.write_key.is_empty(),
        "nudge demo did not print its URL, owner and keys; log: {}",
        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
    );
    (Proc(child), demo)
}

#[test]
fn the_web_ui_works_in_a_real_browser() {
    let chromium = std::env::var("NUDGE_UI_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        missing_dependency(&format!("no browser at {chromium}"));
        return;
    }
    let python = python();
    let has_playwright = Command::new(&python)
        .args(["-c", "import playwright.sync_api"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_playwright {
        missing_dependency(&format!("{} cannot import playwright", python.display()));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let (_sink, smtp_port) = start_sink(&mail_dir, false);
    let (_server, demo) = start_demo(dir.path());
    let shots = shots_dir();
    let out = Command::new(&python)
        .arg(repo_root().join("tests/ui/run.py"))
        .env("NUDGE_UI_BASE", &demo.base)
        .env("NUDGE_UI_OWNER_EMAIL", &demo.owner_email)
        .env("NUDGE_UI_OWNER_PASSWORD", &demo.owner_password)
        .env("NUDGE_UI_ADMIN_KEY", &demo.admin_key)
        .env("NUDGE_UI_WRITE_KEY", &demo.write_key)
        .env("NUDGE_UI_SHOTS", &shots)
        .env("NUDGE_UI_CHROMIUM", &chromium)
        .env("NUDGE_UI_SMTP_PORT", smtp_port.to_string())
        .env("NUDGE_UI_MAIL_DIR", &mail_dir)
        .output()
        .expect("run tests/ui/run.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser flows failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
    );
}
