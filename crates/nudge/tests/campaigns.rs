//! Campaigns end to end, against a real `nudge serve` and a real SMTP server
//! (aiosmtpd, tests/smtp/sink.py): an A/B test decided by real clicks through the
//! tracking endpoint, and a campaign that survives SIGKILLs.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// `n` contacts with e-mail addresses, and a segment of them all; the segment's id.
async fn audience(api: &Api, n: usize) -> i64 {
    let batch: Vec<Value> = (0..n)
        .map(|i| json!({"type": "identify", "userId": format!("c{i}"), "traits": {"email": format!("c{i}@example.com")}}))
        .collect();
    for chunk in batch.chunks(500) {
        api.track("/v1/batch", json!({"batch": chunk})).await;
    }
    // Ingestion is durable at the 200; the segment is computed in SQL when saved.
    let (s, seg) = api
        .post(
            "/api/v1/segments",
            json!({"name": "Everyone", "definition": {"type": "trait", "trait": "email", "op": "exists"}}),
        )
        .await;
    assert_eq!(s, 201, "{seg}");
    assert_eq!(seg["size"], n, "{seg}");
    seg["id"].as_i64().unwrap()
}

async fn template(api: &Api, name: &str, subject: &str) {
    let (s, t) = api
        .post(
            "/api/v1/templates",
            json!({"name": name, "content": {"channel": "email", "subject": subject,
                "html": "<p>Hi {{ contact.user_id }}, our <a href=\"https://shop.example/sale\">sale</a> is on.</p>"}}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
}

/// Waits (up to `secs`) until the campaign satisfies `until`.
async fn campaign_when(api: &Api, id: i64, secs: u64, until: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let c = api.get(&format!("/api/v1/campaigns/{id}")).await;
        if until(&c) {
            return c;
        }
        assert!(Instant::now() < deadline, "campaign {id} stayed {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A campaign with two variants, half the audience in the test, click rate as the
/// metric and a short test: the links of variant B are clicked through the real
/// tracking endpoint, B wins by the rule and goes to the remaining half, and the
/// report's numbers equal what the SMTP server received and what was clicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ab_test_is_decided_by_real_clicks_and_the_winner_goes_to_the_rest() {
    if !have_python_packages() {
        return;
    }
    const N: usize = 200;
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
    let segment = audience(&api, N).await;
    template(&api, "sale-a", "Variant A: our sale").await;
    template(&api, "sale-b", "Variant B: our sale").await;
    let (s, c) = api
        .post(
            "/api/v1/campaigns",
            json!({"name": "Sale", "definition": {
                "audience": {"segments": [segment]},
                "variants": [{"name": "A", "template": "sale-a"}, {"name": "B", "template": "sale-b"}],
                "test": {"share": 50, "metric": "click_rate", "duration": 20000}
            }}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_i64().unwrap();
    // A test of both variants to one address first: two [Test] mails, no recipient.
    let (s, tested) = api
        .post(
            &format!("/api/v1/campaigns/{id}/test"),
            json!({"addresses": ["qa@example.com"]}),
        )
        .await;
    assert_eq!(s, 200, "{tested}");
    let results = tested["data"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{tested}");
    assert!(results.iter().all(|r| r["accepted"] == true), "{tested}");
    let tests = received(&mail_dir, 2);
    assert!(
        tests
            .iter()
            .all(|m| header(m, "subject").unwrap().starts_with("[Test] Variant"))
    );
    let sent_at = Instant::now();
    let (s, sent) = api
        .post(
            &format!("/api/v1/campaigns/{id}/send"),
            json!({"schedule": {"type": "now"}}),
        )
        .await;
    assert_eq!(s, 200, "{sent}");

    // The test share arrives (queued in one round: fewer than a batch); every B
    // recipient clicks (the test lasts 20 s: time enough on a loaded machine).
    let test = campaign_when(&api, id, 30, |c| {
        c["progress"]["snapshot_done"] == true && c["progress"]["queued"].as_u64().unwrap_or(0) > 0
    })
    .await;
    let in_test = test["progress"]["queued"].as_u64().unwrap() as usize;
    assert!((60..=140).contains(&in_test), "about half in the test: {test}");
    let mails = received(&mail_dir, in_test + 2);
    let mut clicked = 0;
    for m in mails
        .iter()
        .filter(|m| !header(m, "subject").unwrap().starts_with("[Test]"))
    {
        if header(m, "subject").unwrap().starts_with("Variant B") {
            let url = link(part(m, "text/html"), &format!("{base}/t/c/"));
            let resp = api.http.get(&url).send().await.unwrap();
            assert!(resp.status().is_redirection(), "{}", resp.status());
            clicked += 1;
        }
    }
    assert!(clicked > 20, "{clicked} B recipients clicked");
    assert!(
        sent_at.elapsed() < Duration::from_secs(20),
        "the clicks came after the test's end: {:?}",
        sent_at.elapsed()
    );

    // The test ends; B wins by the rule and goes to the rest.
    let done = campaign_when(&api, id, 60, |c| c["status"] == "completed").await;
    assert_eq!(done["winner"], 1, "{done}");
    let mails: Vec<Value> = received(&mail_dir, N + 2)
        .into_iter()
        .filter(|m| !header(m, "subject").unwrap().starts_with("[Test]"))
        .collect();
    assert_eq!(mails.len(), N);
    let subjects: Vec<&str> = mails.iter().map(|m| header(m, "subject").unwrap()).collect();
    let b_sent = subjects.iter().filter(|s| s.starts_with("Variant B")).count();
    let a_sent = subjects.iter().filter(|s| s.starts_with("Variant A")).count();
    assert_eq!(a_sent + b_sent, N);
    assert_eq!(a_sent, in_test - clicked, "A only in the test");
    let recipients: BTreeSet<&str> = mails.iter().map(|m| header(m, "to").unwrap()).collect();
    assert_eq!(recipients.len(), N, "one message per recipient");

    // The report agrees with the SMTP server and the clicks.
    let report = api.get(&format!("/api/v1/campaigns/{id}/report")).await;
    let variants = report["variants"].as_array().unwrap_or_else(|| panic!("{report}"));
    let by_name: HashMap<&str, &Value> = variants.iter().map(|v| (v["name"].as_str().unwrap(), v)).collect();
    assert_eq!(by_name["A"]["recipients"], a_sent as u64, "{report}");
    assert_eq!(by_name["B"]["recipients"], b_sent as u64, "{report}");
    assert_eq!(by_name["B"]["unique_clicked"], clicked as u64, "{report}");
    assert_eq!(by_name["A"]["unique_clicked"], 0, "{report}");
    assert_eq!(report["test"]["decision"]["decided_by"]["by"], "rule", "{report}");
}

/// A campaign to 20,000 contacts; the server is killed with SIGKILL twice while it
/// sends and restarted each time. Every recipient gets exactly one distinct
/// Message-ID at the SMTP server (a repeat only for a message in flight at a kill,
/// with the same Message-ID), and the campaign completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_survives_sigkills_and_sends_each_recipient_one_message() {
    if !have_python_packages() {
        return;
    }
    const N: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let (_sink, smtp_port) = start_sink(&mail_dir, true);
    let smtp = format!("smtp://127.0.0.1:{smtp_port}");
    let env = [
        ("NUDGE_SMTP_URL", smtp.as_str()),
        ("NUDGE_EMAIL_FROM", "Shop <shop@example.com>"),
    ];
    let (mut server, base) = start_server(dir.path(), &env);
    let api = Api::new(&base);
    let segment = audience(&api, N).await;
    template(&api, "news", "News").await;
    let (s, c) = api
        .post(
            "/api/v1/campaigns",
            json!({"name": "News", "definition": {
                "audience": {"segments": [segment]},
                "variants": [{"name": "A", "template": "news"}]
            }}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_i64().unwrap();
    let (s, sent) = api.post(&format!("/api/v1/campaigns/{id}/send"), json!({})).await;
    assert_eq!(s, 200, "{sent}");

    let mut base = base;
    for at_least in [N / 5, N / 2] {
        let deadline = Instant::now() + Duration::from_secs(120);
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
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let distinct: BTreeSet<String> = accepted_ids(&mail_dir).into_iter().collect();
        let c = api.get(&format!("/api/v1/campaigns/{id}")).await;
        if distinct.len() >= N && c["status"] == "completed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {N} emails, campaign {c}",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = accepted_ids(&mail_dir);
    let distinct: BTreeSet<&String> = ids.iter().collect();
    let repeats = ids.len() - distinct.len();
    eprintln!(
        "{N} recipients, 2 SIGKILLs: {} SMTP deliveries, {} distinct, {repeats} repeated a Message-ID",
        ids.len(),
        distinct.len()
    );
    assert_eq!(distinct.len(), N, "every recipient got exactly one message");
    // Only what was in flight at each kill may go out again, with the same Message-ID.
    // A deliverer keeps at most `UNRECORDED_AT_MOST` messages sent but not recorded.
    assert!(
        repeats <= 2 * nudge_messages::delivery::UNRECORDED_AT_MOST,
        "{repeats} repeats"
    );
    let c = api.get(&format!("/api/v1/campaigns/{id}")).await;
    assert_eq!(c["progress"]["queued"], N as u64, "{c}");
}
