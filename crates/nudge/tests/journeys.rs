//! Journeys end to end, against a real `nudge serve` and a real SMTP server
//! (aiosmtpd): events sent with Segment's official Python library start an
//! abandoned-cart journey, the wait for the order times out (a 3-second timeout, in real
//! time), the reminder with the cart's products arrives at the SMTP server once, and an
//! order for that cart ends the run at once — the statistics show it.
//!
//! Needs the test virtualenv (`scripts/install-test-deps`); without it the test
//! passes with a notice, unless `NUDGE_REQUIRE_SDK_TESTS=1`.

use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::*;

fn send_with_sdk(base: &str, calls: Value) {
    let out = Command::new(python())
        .arg(repo_root().join("tests/sdk/python/send_calls.py"))
        .arg(calls.to_string())
        .env("NUDGE_URL", base)
        .env("NUDGE_WRITE_KEY", WRITE_KEY)
        .output()
        .expect("run the Python SDK");
    assert!(
        out.status.success(),
        "SDK: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn runs(api: &Api, user: &str) -> Vec<Value> {
    let c = api.get(&format!("/api/v1/contacts/lookup?user_id={user}")).await;
    api.get(&format!("/api/v1/contacts/{}/runs", c["id"])).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits (up to 20 s) until `until` holds for the user's runs.
async fn runs_when(api: &Api, user: &str, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = runs(api, user).await;
        if until(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "runs of {user} stayed {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_cart_reminder_reaches_smtp_and_purchase_ends_the_run() {
    if !have_python_packages() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let (_sink, smtp_port) = start_sink(&mail_dir, false);
    let smtp = format!("smtp://127.0.0.1:{smtp_port}");
    let (_server, base) = start_server(
        dir.path(),
        &[
            ("NUDGE_SMTP_URL", smtp.as_str()),
            ("NUDGE_EMAIL_FROM", "Shop <shop@example.com>"),
        ],
    );
    let api = Api::new(&base);

    let (s, t) = api
        .post(
            "/api/v1/templates",
            json!({"name": "cart-reminder", "topic": "offers", "content": {"channel": "email",
                "subject": "You left {{ event.properties.products.size }} items in your cart",
                "html": "<p>Hi {{ contact.traits.first_name }}, still thinking about {% for p in event.properties.products %}{{ p.name }}{% unless forloop.last %} and {% endunless %}{% endfor %}?</p>"}}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let definition = json!({
        "trigger": {"type": "event", "event": "Cart Updated"},
        "start": "wait-order",
        "steps": [
            {"id": "wait-order", "type": "wait_for_event", "event": "Order Completed", "match_key": "cart_id",
             "timeout": 3000, "on_event": "bought", "on_timeout": "remind"},
            {"id": "remind", "type": "send", "template": "cart-reminder", "next": "wait-day"},
            {"id": "wait-day", "type": "wait", "duration": {"hours": 23}, "next": "done"},
            {"id": "bought", "type": "goal", "name": "purchased"},
            {"id": "done", "type": "exit"}
        ],
        "settings": {"re_entry": {"type": "always"}, "goal_event": {"event": "Order Completed", "match_key": "cart_id"}}
    });
    let (s, j) = api
        .post(
            "/api/v1/journeys",
            json!({"name": "Abandoned cart", "definition": definition}),
        )
        .await;
    assert_eq!(s, 201, "{j}");
    let id = j["id"].as_i64().unwrap();
    let (s, _) = api.post(&format!("/api/v1/journeys/{id}/publish"), json!({})).await;
    assert_eq!(s, 200);
    // Give the engine a round to learn which events matter.
    tokio::time::sleep(Duration::from_millis(700)).await;

    send_with_sdk(
        &base,
        json!([
            {"type": "identify", "userId": "ada", "traits": {"email": "ada@example.com", "first_name": "Ada"}},
            {"type": "track", "userId": "ada", "event": "Cart Updated",
             "properties": {"cart_id": "c-1", "products": [{"name": "Linen Shirt"}, {"name": "Denim Jacket"}]}},
            {"type": "identify", "userId": "bob", "traits": {"email": "bob@example.com", "first_name": "Bob"}},
            {"type": "track", "userId": "bob", "event": "Cart Updated", "properties": {"cart_id": "c-2", "products": [{"name": "Cap"}]}},
            // Bob buys his cart at once, well before the timeout: his run converts.
            {"type": "track", "userId": "bob", "event": "Order Completed", "properties": {"cart_id": "c-2", "total": 25}},
        ]),
    );
    runs_when(&api, "ada", |r| r.len() == 1).await;
    let bob = runs_when(&api, "bob", |r| r.first().is_some_and(|r| r["status"] == "finished")).await;
    assert_eq!(bob[0]["finish_reason"], "goal", "{bob:?}");

    // Ada's wait times out: the reminder reaches the SMTP server, once.
    let mails = received(&mail_dir, 1);
    assert_eq!(mails.len(), 1);
    let html = part(&mails[0], "text/html");
    assert!(
        html.contains("Hi Ada") && html.contains("Linen Shirt and Denim Jacket"),
        "{html}"
    );
    let to = mails[0]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case("to"))
        .unwrap()[1]
        .clone();
    assert!(to.as_str().unwrap().contains("ada@example.com"), "{to}");
    let ada = runs_when(&api, "ada", |r| r[0]["step"] == "wait-day").await;
    assert_eq!(ada[0]["status"], "active");
    let stats = api.get(&format!("/api/v1/journeys/{id}")).await;
    assert_eq!(stats["active_runs_per_step"], json!({"wait-day": 1}), "{stats}");

    // She buys that cart during the 23-hour wait: the run ends at once.
    send_with_sdk(
        &base,
        json!([{"type": "track", "userId": "ada", "event": "Order Completed", "properties": {"cart_id": "c-1", "total": 138}}]),
    );
    let ada = runs_when(&api, "ada", |r| r[0]["status"] == "finished").await;
    assert_eq!(ada[0]["finish_reason"], "goal", "{ada:?}");
    let stats = api.get(&format!("/api/v1/journeys/{id}")).await;
    assert_eq!(stats["active_runs_per_step"], json!({}), "{stats}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received(&mail_dir, 1).len(), 1, "one reminder, to Ada only");
}

/// Thousands of runs that send, wait and send again; the server is killed with
/// SIGKILL three times while they run and restarted each time. In the end every run
/// has sent both emails — each exactly once by Message-ID at the SMTP server — and
/// finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_survive_repeated_sigkills_and_send_nothing_twice() {
    if !have_python_packages() {
        return;
    }
    const N: usize = 1500;
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let (_sink, smtp_port) = start_sink(&mail_dir, true);
    let smtp = format!("smtp://127.0.0.1:{smtp_port}");
    let env = [
        ("NUDGE_SMTP_URL", smtp.as_str()),
        ("NUDGE_EMAIL_FROM", "Shop <shop@example.com>"),
        ("NUDGE_EMAIL_RATE", "600"),
    ];
    let (mut server, base) = start_server(dir.path(), &env);
    let api = Api::new(&base);
    for (name, subject) in [("first", "First"), ("second", "Second")] {
        let (s, t) = api
            .post(
                "/api/v1/templates",
                json!({"name": name, "transactional": true, "content": {"channel": "email", "subject": subject, "html": "<p>Hi {{ contact.user_id }}</p>"}}),
            )
            .await;
        assert_eq!(s, 201, "{t}");
    }
    let definition = json!({
        "trigger": {"type": "event", "event": "Go"},
        "start": "first",
        "steps": [
            {"id": "first", "type": "send", "template": "first", "transactional": true, "next": "wait"},
            {"id": "wait", "type": "wait", "duration": 1500, "next": "second"},
            {"id": "second", "type": "send", "template": "second", "transactional": true}
        ],
        "settings": {"re_entry": {"type": "always"}}
    });
    let (s, j) = api
        .post(
            "/api/v1/journeys",
            json!({"name": "Two emails", "definition": definition}),
        )
        .await;
    assert_eq!(s, 201, "{j}");
    let id = j["id"].as_i64().unwrap();
    api.post(&format!("/api/v1/journeys/{id}/publish"), json!({})).await;
    tokio::time::sleep(Duration::from_millis(700)).await;

    let batch: Vec<Value> = (0..N)
        .flat_map(|i| {
            [
                json!({"type": "identify", "userId": format!("c{i}"), "traits": {"email": format!("c{i}@example.com")}}),
                json!({"type": "track", "userId": format!("c{i}"), "event": "Go", "messageId": format!("go-{i}")}),
            ]
        })
        .collect();
    for chunk in batch.chunks(200) {
        api.track("/v1/batch", json!({"batch": chunk})).await;
    }

    // Three SIGKILLs at different stages, each followed by a restart.
    let mut base = base;
    for at_least in [N / 4, N, N + N / 2] {
        let deadline = Instant::now() + Duration::from_secs(60);
        while accepted_ids(&mail_dir).len() < at_least {
            assert!(
                Instant::now() < deadline,
                "stuck before {at_least} emails: {}",
                server_log(dir.path())
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        let (s, b) = start_server(dir.path(), &env);
        server = s;
        base = b;
    }
    let api = Api::new(&base);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ids = accepted_ids(&mail_dir);
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        let stats = api.get(&format!("/api/v1/journeys/{id}")).await;
        if distinct.len() >= 2 * N && stats["active_runs_per_step"] == json!({}) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} emails, active runs {}",
            distinct.len(),
            2 * N,
            stats["active_runs_per_step"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = accepted_ids(&mail_dir);
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    let repeats = ids.len() - distinct.len();
    eprintln!(
        "{N} runs, 3 SIGKILLs: {} SMTP deliveries, {} distinct, {repeats} repeated a Message-ID",
        ids.len(),
        distinct.len()
    );
    assert_eq!(distinct.len(), 2 * N, "every run sent both emails, each once");
    // Only what was in flight at each kill may go out again, with the same Message-ID.
    // A deliverer keeps at most `UNRECORDED_AT_MOST` messages sent but not recorded.
    assert!(
        repeats <= 3 * nudge_messages::delivery::UNRECORDED_AT_MOST,
        "{repeats} repeats"
    );
    let c = api.get("/api/v1/contacts/lookup?user_id=c7").await;
    let runs = api.get(&format!("/api/v1/contacts/{}/runs", c["id"])).await;
    assert_eq!(runs["data"].as_array().unwrap().len(), 1, "one run per Go event");
    assert_eq!(runs["data"][0]["finish_reason"], "completed");
}

/// Two `nudge serve` processes on one PostgreSQL database share the journey work
/// (inbox events, timers and outbox messages claimed with `FOR UPDATE SKIP LOCKED`,
/// stale transitions caught by run revisions): events sent to both start runs that
/// send, wait and send again; in the end every run finished once and every email went
/// out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_postgresql_share_journeys_and_send_nothing_twice() {
    let Ok(database) = std::env::var("NUDGE_TEST_DATABASE_URL") else {
        eprintln!("NUDGE_TEST_DATABASE_URL not set: the two-process PostgreSQL test is skipped");
        return;
    };
    if database.is_empty() || !have_python_packages() {
        return;
    }
    const N: usize = 600;
    let schema = nudge_store::scratch::PgScratchSchema::create(&database, "nudge_two_processes")
        .await
        .unwrap();
    let url = schema.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let (_sink, smtp_port) = start_sink(&mail_dir, true);
    let smtp = format!("smtp://127.0.0.1:{smtp_port}");
    // Nodes of one PostgreSQL workspace share its master key (docs/operations.md):
    // each would otherwise make a key file of its own, and the second to start would
    // find the secrets sealed with the first one's.
    let env = [
        ("NUDGE_DATABASE_URL", url.as_str()),
        ("NUDGE_SMTP_URL", smtp.as_str()),
        ("NUDGE_EMAIL_FROM", "Shop <shop@example.com>"),
        (
            "NUDGE_SECRET_KEY",
            "6e756467652074657374206b65792c206f6e6520666f722032206e6f64657321",
        ),
    ];
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    let (_a, base_a) = start_server(&dir_a, &env);
    let (_b, base_b) = start_server(&dir_b, &env);
    let (api_a, api_b) = (Api::new(&base_a), Api::new(&base_b));
    for (name, subject) in [("first", "First"), ("second", "Second")] {
        let (s, t) = api_a
            .post(
                "/api/v1/templates",
                json!({"name": name, "transactional": true, "content": {"channel": "email", "subject": subject, "html": "<p>Hi {{ contact.user_id }}</p>"}}),
            )
            .await;
        assert_eq!(s, 201, "{t}");
    }
    let definition = json!({
        "trigger": {"type": "event", "event": "Go"},
        "start": "first",
        "steps": [
            {"id": "first", "type": "send", "template": "first", "transactional": true, "next": "wait"},
            {"id": "wait", "type": "wait", "duration": 1000, "next": "second"},
            {"id": "second", "type": "send", "template": "second", "transactional": true}
        ],
        "settings": {"re_entry": {"type": "always"}}
    });
    let (s, j) = api_a
        .post(
            "/api/v1/journeys",
            json!({"name": "Two emails", "definition": definition}),
        )
        .await;
    assert_eq!(s, 201, "{j}");
    let id = j["id"].as_i64().unwrap();
    api_a.post(&format!("/api/v1/journeys/{id}/publish"), json!({})).await;
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Half the contacts' events go to each process, in interleaved batches.
    let batch: Vec<Value> = (0..N)
        .flat_map(|i| {
            [
                json!({"type": "identify", "userId": format!("c{i}"), "traits": {"email": format!("c{i}@example.com")}}),
                json!({"type": "track", "userId": format!("c{i}"), "event": "Go", "messageId": format!("go-{i}")}),
            ]
        })
        .collect();
    for (k, chunk) in batch.chunks(100).enumerate() {
        let api = if k % 2 == 0 { &api_a } else { &api_b };
        api.track("/v1/batch", json!({ "batch": chunk })).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ids = accepted_ids(&mail_dir);
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        let stats = api_b.get(&format!("/api/v1/journeys/{id}")).await;
        if distinct.len() >= 2 * N && stats["active_runs_per_step"] == json!({}) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} emails, active runs {}; logs: {} {}",
            distinct.len(),
            2 * N,
            stats["active_runs_per_step"],
            server_log(&dir_a),
            server_log(&dir_b)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = accepted_ids(&mail_dir);
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 2 * N, "every run sent both emails");
    assert_eq!(ids.len(), 2 * N, "and nothing twice (no process died)");
    let stats = api_a.get(&format!("/api/v1/journeys/{id}")).await["stats"].clone();
    assert_eq!(
        (stats["entered"].as_i64(), stats["finished"]["completed"].as_i64()),
        (Some(N as i64), Some(N as i64)),
        "{stats}"
    );
    let stale: usize = [&dir_a, &dir_b]
        .iter()
        .map(|d| server_log(d).matches("moved on by another worker").count())
        .sum();
    eprintln!(
        "{N} runs over two processes: {} emails, {stale} rounds met a stale run",
        ids.len()
    );
    drop((_a, _b));
    schema.drop_schema().await.unwrap();
}
