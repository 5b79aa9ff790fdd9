//! Live configuration across nodes (docs/operations.md, "Live configuration"): three
//! `nudge serve` processes on one PostgreSQL schema. What an administrator changes
//! through node A — an API key revoked, the frequency caps, a user's role, the SMTP
//! server — holds on node B within a second, without a restart; node C, which does
//! not listen for notifications (as when one is lost), follows at its periodic
//! check. Then node B alone sends the next email, and it goes to the new server.
//! Skipped without `NUDGE_TEST_DATABASE_URL` (and without the Python test packages,
//! for the SMTP server).

mod common;
use common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET_KEY: &str = "6c69766520636f6e66696775726174696f6e206163726f7373206e6f64657321";

/// Polls `check` until it holds, at most `within` after `since`; returns how long
/// after `since` it held.
async fn holds_within<F, Fut>(what: &str, since: Instant, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    loop {
        let last = check().await;
        let took = since.elapsed();
        match last {
            Ok(()) => {
                eprintln!("{what}: {took:?}");
                return took;
            }
            Err(e) if took > within => panic!("{what}: not within {within:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// `nudge users create` against the database; the new user's id.
fn create_user(dir: &Path, env: &[(&str, &str)], email: &str, role: &str) -> i64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["users", "create", "--email", email, "--role", role])
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "a long enough password 1").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    text.rsplit("(user ")
        .next()
        .and_then(|s| s.trim().trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no user id in {text:?}"))
}

/// A signed-in web UI session on one node.
struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Session {
    async fn sign_in(base: &str, email: &str) -> Session {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = http
            .post(format!("{base}/sign-in"))
            .form(&[
                ("email", email),
                ("password", "a long enough password 1"),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303, "signing in {email}");
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("nudge_session="))
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_string();
        Session {
            http,
            base: base.to_string(),
            cookie,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> u16 {
        let (_, page) = self.get("/").await;
        let csrf = page
            .split("data-csrf=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("the page carries the CSRF token")
            .to_string();
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", csrf)
            .form(form)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    }
}

fn email_channel(channels: &Value) -> Value {
    channels["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "email")
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_node_hold_on_the_others_within_a_second() {
    let Ok(database) = std::env::var("NUDGE_TEST_DATABASE_URL") else {
        eprintln!("NUDGE_TEST_DATABASE_URL not set: the live-configuration test is skipped");
        return;
    };
    if database.is_empty() || !have_python_packages() {
        return;
    }
    let schema = nudge_store::scratch::PgScratchSchema::create(&database, "nudge_live_config")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let (_sink, smtp_port) = start_sink(&mail_dir, false);
    // No SMTP server at start: e-mail is captured until one is configured.
    let env = [
        ("NUDGE_DATABASE_URL", schema.url.as_str()),
        ("NUDGE_SECRET_KEY", SECRET_KEY),
    ];
    let (dir_a, dir_b, dir_c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    let (a, base_a) = start_server(&dir_a, &env);
    let (_b, base_b) = start_server(&dir_b, &env);
    let c_env = [
        env[0],
        env[1],
        ("NUDGE_CONFIG_LISTEN", "false"),
        ("NUDGE_CONFIG_CHECK_SECONDS", "1"),
    ];
    let (c, base_c) = start_server(&dir_c, &c_env);
    let (api_a, api_b, api_c) = (Api::new(&base_a), Api::new(&base_b), Api::new(&base_c));
    let second = Duration::from_secs(1);

    // An admin key revoked through A no longer opens B.
    let (s, key) = api_a
        .post("/api/v1/keys", json!({"kind": "admin", "name": "short-lived"}))
        .await;
    assert_eq!(s, 201, "{key}");
    let secret = key["secret"].as_str().unwrap().to_string();
    let with_key = |base: &str| {
        let (http, url, secret) = (api_b.http.clone(), format!("{base}/api/v1/contacts"), secret.clone());
        async move {
            http.get(url)
                .bearer_auth(secret)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(with_key(&base_b).await, 200);
    let (s, _) = api_a
        .admin(reqwest::Method::DELETE, &format!("/api/v1/keys/{}", key["id"]), None)
        .await;
    assert_eq!(s, 204);
    let t = Instant::now();
    holds_within("key revoked on B", t, second, || async {
        match with_key(&base_b).await {
            401 => Ok(()),
            s => Err(format!("B answered {s}")),
        }
    })
    .await;

    // Frequency caps set through A are B's.
    let caps = json!({"caps": [{"max": 2, "per": "day"}]});
    let (s, v) = api_a
        .admin(reqwest::Method::PUT, "/api/v1/frequency-caps", Some(caps.clone()))
        .await;
    assert_eq!(s, 200, "{v}");
    let t = Instant::now();
    holds_within("frequency caps on B", t, second, || async {
        let now = api_b.get("/api/v1/frequency-caps").await;
        if now["caps"] == caps["caps"] {
            Ok(())
        } else {
            Err(now.to_string())
        }
    })
    .await;

    // A marketer's role lowered through A's UI applies to their session on B.
    create_user(&dir_a, &env, "owner@example.com", "owner");
    let marketer = create_user(&dir_a, &env, "marketer@example.com", "marketer");
    let owner_on_a = Session::sign_in(&base_a, "owner@example.com").await;
    let marketer_on_b = Session::sign_in(&base_b, "marketer@example.com").await;
    assert_eq!(marketer_on_b.get("/journeys/new").await.0, 200, "a marketer edits");
    let status = owner_on_a
        .post_form(&format!("/settings/users/{marketer}/role"), &[("role", "analyst")])
        .await;
    assert_eq!(status, 303);
    let t = Instant::now();
    holds_within("role on B", t, second, || async {
        match marketer_on_b.get("/journeys/new").await.0 {
            403 => Ok(()),
            s => Err(format!("B answered {s}")),
        }
    })
    .await;

    // The SMTP server configured through A is B's at once (it listens) and C's at
    // its next check (it does not).
    for api in [&api_a, &api_b, &api_c] {
        assert_eq!(
            email_channel(&api.get("/api/v1/channels").await)["transport"],
            "capture"
        );
    }
    let smtp =
        json!({"transport": "smtp", "url": format!("smtp://127.0.0.1:{smtp_port}"), "from": "Shop <shop@example.com>"});
    let (s, v) = api_a
        .admin(reqwest::Method::PUT, "/api/v1/channels/email", Some(smtp))
        .await;
    assert_eq!(s, 200, "{v}");
    let t = Instant::now();
    let uses_smtp = |api: &Api| {
        let (http, url) = (api.http.clone(), format!("{}/api/v1/channels", api.base));
        async move {
            let v: Value = http
                .get(url)
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let email = email_channel(&v);
            if email["transport"] == "smtp" && email["source"] == "api" {
                Ok(())
            } else {
                Err(email.to_string())
            }
        }
    };
    holds_within("SMTP server on B", t, second, || uses_smtp(&api_b)).await;
    // Checked every second: within one check and the reload.
    holds_within(
        "SMTP server on C (periodic check)",
        t,
        Duration::from_millis(2500),
        || uses_smtp(&api_c),
    )
    .await;

    // With A and C gone, B's next email goes to the new server.
    drop((a, c));
    let (s, t) = api_b
        .post(
            "/api/v1/templates",
            json!({"name": "note", "transactional": true, "content": {"channel": "email", "subject": "Through B", "html": "<p>Hello</p>"}}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let (s, m) = api_b
        .post(
            "/api/v1/messages",
            json!({"template": "note", "to": {"email": "ada@example.com"}}),
        )
        .await;
    assert_eq!(s, 202, "{m}");
    let m = api_b
        .message_when(m["id"].as_i64().unwrap(), |m| m["state"] != "queued")
        .await;
    assert_eq!(m["state"], "sent", "{m}; log: {}", server_log(&dir_b));
    let mail = received(&mail_dir, 1);
    assert_eq!(mail.len(), 1);
    assert_eq!(header(&mail[0], "Subject"), Some("Through B"), "{}", mail[0]);
    schema.drop_schema().await.unwrap();
}
