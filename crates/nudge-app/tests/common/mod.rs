//! What the process tests of this crate share: the real SMTP server they deliver to
//! (aiosmtpd's `tests/smtp/sink.py`, from the test virtualenv).

/// The Python test virtualenv, if it has aiosmtpd (`scripts/install-test-deps`).
pub fn python_with_aiosmtpd() -> Option<std::path::PathBuf> {
    let cache = std::env::var_os("NUDGE_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/nudge"));
    let python = std::env::var_os("NUDGE_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| cache.join("venv/bin/python"));
    let ok = std::process::Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let what = "the test virtualenv lacks aiosmtpd; run scripts/install-test-deps";
        assert!(std::env::var("NUDGE_REQUIRE_SDK_TESTS").as_deref() != Ok("1"), "{what}");
        eprintln!("SKIPPED: {what}");
    }
    ok.then_some(python)
}

/// The SMTP sink of the process tests (`tests/smtp/sink.py`), killed when dropped.
pub struct Sink(pub std::process::Child, pub u16, pub tempfile::TempDir);
impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_sink(python: &std::path::Path) -> Sink {
    use std::io::BufRead;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tempfile::tempdir().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp/sink.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .arg(port.to_string())
        .arg(out.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    Sink(child, port, out)
}
