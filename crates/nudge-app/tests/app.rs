//! The use cases against a real store: SQLite always, PostgreSQL (a fresh schema) when
//! `NUDGE_TEST_DATABASE_URL` is set. No HTTP: `nudge_app::App` is called directly.

mod common;
use common::{python_with_aiosmtpd, start_sink};
use nudge_app::journeys::{DefinitionSource, DryRun};
use nudge_app::messages::{Bounce, BounceKind, Recipient, SendMessage, TemplateRef};
use nudge_app::{App, AppError};
use nudge_core::{Clock, ManualClock, Millis};
use nudge_engine::{JourneyEngine, JourneyEngineConfig};
use nudge_store::{KeyKind, NewTemplate, PgStore, SqliteStore, Store};
use serde_json::json;
use std::sync::Arc;

/// 2027-03-15T12:00:00Z.
const T0: Millis = 1_805_112_000_000;

struct Backend {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<nudge_store::scratch::PgScratchSchema>,
}

impl Backend {
    async fn finish(self) {
        self.store.close().await;
        if let Some(schema) = &self.pg_schema {
            schema.drop_schema().await.unwrap();
        }
    }
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("nudge.db")).await.unwrap());
    let mut out = vec![Backend {
        store: sqlite,
        _dir: Some(dir),
        pg_schema: None,
    }];
    if let Ok(url) = std::env::var("NUDGE_TEST_DATABASE_URL")
        && !url.is_empty()
    {
        let schema = nudge_store::scratch::PgScratchSchema::create(&url, "nudge_app_test")
            .await
            .unwrap();
        let store = PgStore::connect(&schema.url).await.unwrap();
        out.push(Backend {
            store: Arc::new(store),
            _dir: None,
            pg_schema: Some(schema),
        });
    }
    out
}

fn app_on(store: &Arc<dyn Store>) -> App {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(T0));
    App::new(store.clone(), clock)
}

fn with_engine(app: App, workspace_zone: &str) -> App {
    let config = JourneyEngineConfig {
        time_zone: workspace_zone.into(),
        ..Default::default()
    };
    let engine = JourneyEngine::new(app.store.clone(), app.clock.clone(), config);
    app.with_journeys(engine)
}

async fn email_template(store: &dyn Store, name: &str) {
    store
        .create_template(
            NewTemplate {
                name: name.into(),
                description: String::new(),
                channel: "email".into(),
                transactional: false,
                topic: None,
                content: json!({"channel": "email", "subject": "Hi", "html": "<p>Hi</p>"}),
            },
            T0,
        )
        .await
        .unwrap();
}

/// The dry run replays a contact without a time zone in the workspace's zone, the
/// one the journey engine uses (it used UTC whatever the workspace's zone).
#[tokio::test]
async fn the_dry_run_uses_the_workspace_time_zone_like_the_engine() {
    for b in backends().await {
        email_template(&*b.store, "renewal").await;
        let app = app_on(&b.store);
        app.import_contacts_csv(b"user_id,renewal_date\nnoa,2027-03-10\nzed,2027-03-11\n")
            .await
            .unwrap();
        // zed has a zone of their own, which wins over the workspace's.
        let zed = app
            .find_recipient(&Recipient::UserId("zed".into()))
            .await
            .unwrap()
            .unwrap();
        b.store
            .update_contact(
                zed.id,
                &serde_json::from_value(json!({"traits": {"timezone": "Asia/Tokyo"}})).unwrap(),
                T0,
            )
            .await
            .unwrap();
        let definition = json!({
            "trigger": {"type": "date_trait", "trait": "renewal_date", "time": "09:00"},
            "start": "remind",
            "steps": [{"id": "remind", "type": "send", "template": "renewal"}]
        });
        let j = b
            .store
            .create_journey(
                nudge_store::NewJourney {
                    name: "Renewal".into(),
                    description: String::new(),
                    priority: 0,
                    definition: definition.clone(),
                },
                T0,
            )
            .await
            .unwrap();
        let entries = |app: App| {
            let definition = definition.clone();
            async move {
                let out = app
                    .dry_run(DryRun {
                        journey_id: j.id,
                        definition: DefinitionSource::Draft(definition),
                        from: nudge_core::parse_instant("2027-03-01"),
                        until: None,
                        contacts: None,
                        sample: 100,
                        paths: 10,
                    })
                    .await
                    .unwrap();
                assert_eq!(out.candidates, 2);
                let mut at: Vec<(i64, String)> = out
                    .report
                    .paths
                    .iter()
                    .map(|p| (p.contact_id, nudge_core::format_millis(p.entered_at)))
                    .collect();
                at.sort();
                at.into_iter().map(|(_, t)| t).collect::<Vec<_>>()
            }
        };
        // 09:00 in New York on 10 March 2027 (EST, UTC−5) is 14:00 UTC.
        assert_eq!(
            entries(with_engine(app_on(&b.store), "America/New_York")).await,
            ["2027-03-10T14:00:00.000Z", "2027-03-11T00:00:00.000Z"]
        );
        assert_eq!(
            entries(with_engine(app_on(&b.store), "UTC")).await,
            ["2027-03-10T09:00:00.000Z", "2027-03-11T00:00:00.000Z"]
        );
        // Without an engine in the process: the engine's default (UTC).
        assert_eq!(
            entries(app_on(&b.store)).await,
            ["2027-03-10T09:00:00.000Z", "2027-03-11T00:00:00.000Z"]
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn dry_run_inputs_are_checked() {
    for b in backends().await {
        let app = app_on(&b.store);
        let err = app
            .dry_run(DryRun {
                journey_id: 42,
                definition: DefinitionSource::Latest,
                from: None,
                until: None,
                contacts: None,
                sample: 10,
                paths: 10,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, AppError::NotFound { .. }), "{err:?}");
        b.finish().await;
    }
}

#[tokio::test]
async fn sending_resolves_the_recipient_and_is_idempotent_in_the_store() {
    for b in backends().await {
        email_template(&*b.store, "hello").await;
        let app = app_on(&b.store);
        let send = SendMessage {
            template: TemplateRef::Name("hello".into()),
            to: Recipient::Email("New@Example.com".into()),
            data: json!({}),
            event: json!({}),
            idempotency_key: Some("k1".into()),
            transactional: None,
        };
        // No delivery worker in this process: nothing is enqueued, nobody created.
        let err = app.send_message(send.clone()).await.unwrap_err();
        assert!(matches!(err, AppError::ChannelNotConfigured(_)), "{err:?}");
        assert!(app.find_recipient(&send.to).await.unwrap().is_none());
        // A new email address creates the contact (normalised); others must exist.
        let c = app.find_or_create_recipient(&send.to).await.unwrap();
        assert_eq!(c.email.as_deref(), Some("new@example.com"));
        assert_eq!(app.find_or_create_recipient(&send.to).await.unwrap().id, c.id);
        for to in [Recipient::UserId("nobody".into()), Recipient::ContactId(999_999)] {
            let err = app.find_or_create_recipient(&to).await.unwrap_err();
            assert!(
                matches!(&err, AppError::NotFound { field: Some(f), .. } if f == "to"),
                "{err:?}"
            );
        }
        let err = app
            .find_or_create_recipient(&Recipient::Email("not an address".into()))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AppError::InvalidField { field, .. } if field == "to.email"),
            "{err:?}"
        );
        let err = app.template(&TemplateRef::Id(77)).await.unwrap_err();
        assert!(
            matches!(&err, AppError::NotFound { field: Some(f), .. } if f == "template"),
            "{err:?}"
        );
        assert!(nudge_app::messages::check_idempotency_key("").is_err());
        assert!(nudge_app::messages::check_idempotency_key(&"k".repeat(256)).is_err());
        assert!(nudge_app::messages::check_idempotency_key(&"k".repeat(255)).is_ok());
        b.finish().await;
    }
}

#[tokio::test]
async fn bounces_suppress_hard_and_complaints_not_soft() {
    for b in backends().await {
        let app = app_on(&b.store);
        let bounce = |kind, address: &str| Bounce {
            channel: "email".into(),
            address: address.into(),
            kind,
            message_id: None,
            detail: None,
        };
        let out = app.bounce(bounce(BounceKind::Soft, " Soft@x.io ")).await.unwrap();
        assert_eq!(
            (out.suppressed, out.reason, out.address.as_str()),
            (false, "soft_bounce", "soft@x.io")
        );
        let out = app.bounce(bounce(BounceKind::Hard, "Hard@x.io")).await.unwrap();
        assert_eq!((out.suppressed, out.reason), (true, "hard_bounce"));
        let out = app.bounce(bounce(BounceKind::Complaint, "c@x.io")).await.unwrap();
        assert_eq!((out.suppressed, out.reason), (true, "complaint"));
        let listed: Vec<(String, String)> = app
            .suppressions(Some("email"))
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.address, s.reason))
            .collect();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed.contains(&("hard@x.io".into(), "hard_bounce".into())));
        // A message that does not exist is refused before anything changes.
        let mut named = bounce(BounceKind::Hard, "other@x.io");
        named.message_id = Some(12345);
        assert!(matches!(
            app.bounce(named).await.unwrap_err(),
            AppError::NotFound { .. }
        ));
        assert!(
            app.suppressions(None)
                .await
                .unwrap()
                .iter()
                .all(|s| s.address != "other@x.io")
        );
        let mut bad = bounce(BounceKind::Hard, "x@x.io");
        bad.channel = "pigeon".into();
        assert!(matches!(
            app.bounce(bad).await.unwrap_err(),
            AppError::InvalidField { .. }
        ));
        // Manual suppressions and lifting them.
        let s = app.add_suppression("sms", "+15550100", None).await.unwrap();
        assert_eq!(s.reason, "manual");
        app.remove_suppression("sms", "+15550100").await.unwrap();
        assert!(matches!(
            app.remove_suppression("sms", "+15550100").await.unwrap_err(),
            AppError::NotFound { .. }
        ));
        b.finish().await;
    }
}

#[tokio::test]
async fn contacts_import_and_export_as_csv() {
    for b in backends().await {
        let app = app_on(&b.store);
        let report = app
            .import_contacts_csv(b"user_id,email,plan\nu1,a@x.io,pro\nu2,,free\n")
            .await
            .unwrap();
        assert_eq!((report.rows, report.created, report.updated), (2, 2, 0));
        let csv = app.export_contacts_csv().await.unwrap();
        assert!(csv.starts_with("id,user_id,email,"), "{csv}");
        assert!(csv.contains(",u1,a@x.io,") && csv.contains("traits.plan"), "{csv}");
        // The export imports back: the same contacts, updated.
        let again = app.import_contacts_csv(csv.as_bytes()).await.unwrap();
        assert_eq!((again.created, again.updated), (0, 2));
        let err = app.import_contacts_csv(b"name\nx\n").await.unwrap_err();
        assert!(
            matches!(&err, AppError::InvalidRequest { field: Some(f), .. } if f == "csv"),
            "{err:?}"
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn a_contact_search_answers_a_whole_address_or_id_first_then_every_contact_holding_it() {
    use nudge_app::contacts::{ContactSearch, ContactSearchPage};
    for b in backends().await {
        let app = app_on(&b.store);
        app.import_contacts_csv(
            b"user_id,email,first_name,last_name,plan\n\
              ada,ada@x.io,Ada,Lovelace,pro\n\
              ada2,ada.byron@x.io,Augusta Ada,Byron,free\n\
              grace,grace@x.io,Grace,Hopper,pro\n",
        )
        .await
        .unwrap();
        let search = async |term: &str, f: fn(&mut ContactSearch)| -> ContactSearchPage {
            let mut s = ContactSearch {
                term: term.into(),
                limit: 50,
                ..Default::default()
            };
            f(&mut s);
            app.search_contacts(&s).await.unwrap()
        };
        let users =
            |p: &ContactSearchPage| -> Vec<String> { p.contacts.iter().map(|c| c.user_id.clone().unwrap()).collect() };
        // A whole user id or e-mail address: that contact alone, and says so.
        let exact = search(" ada ", |_| {}).await;
        assert!(exact.exact);
        assert_eq!(users(&exact), ["ada"]);
        let exact = search("ADA@X.IO", |_| {}).await;
        assert!(exact.exact);
        assert_eq!(users(&exact), ["ada"]);
        // "contains" (or a trait filter, or a later page): every contact holding it.
        let all = search("ada", |s| s.contains = true).await;
        assert!(!all.exact);
        assert_eq!(users(&all), ["ada", "ada2"]);
        let pro = search("ada", |s| s.trait_filter = Some(("plan".into(), json!("pro")))).await;
        assert_eq!(users(&pro), ["ada"]);
        // Part of a name is no whole id: the index answers.
        let name = search("lovel", |_| {}).await;
        assert!(!name.exact);
        assert_eq!(users(&name), ["ada"]);
        assert_eq!(users(&search("a by", |_| {}).await), ["ada2"]);
        // Pages: `next` is where the next one starts.
        let first = search("@x.io", |s| s.limit = 2).await;
        assert_eq!(users(&first), ["ada", "ada2"]);
        let after = first.next.expect("a next page");
        let second = search("@x.io", |s| {
            s.limit = 2;
            s.after = Some(0);
        })
        .await;
        assert_eq!(users(&second), ["ada", "ada2"], "after 0 is the first page");
        let rest = app
            .search_contacts(&ContactSearch {
                term: "@x.io".into(),
                after: Some(after),
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(users(&rest), ["grace"]);
        assert_eq!(rest.next, None);
        // No term, no filter: everyone.
        assert_eq!(search("", |_| {}).await.contacts.len(), 3);
        b.finish().await;
    }
}

#[tokio::test]
async fn keys_are_created_verified_and_revoked() {
    for b in backends().await {
        let app = app_on(&b.store);
        let (key, secret) = app.create_key(KeyKind::Write, "site").await.unwrap();
        assert!(secret.starts_with("nw_"));
        let found = nudge_app::keys::verify(&*b.store, &secret, KeyKind::Write)
            .await
            .unwrap();
        assert_eq!(found.id, key.id);
        let err = nudge_app::keys::verify(&*b.store, &secret, KeyKind::Admin)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("admin key"), "{err}");
        assert!(app.list_keys().await.unwrap().iter().any(|k| k.id == key.id));
        app.revoke_key(key.id).await.unwrap();
        assert!(matches!(
            nudge_app::keys::verify(&*b.store, &secret, KeyKind::Write).await,
            Err(AppError::Unauthorized(_))
        ));
        assert!(matches!(app.revoke_key(key.id).await, Err(AppError::NotFound { .. })));
        // Bootstrap: configured secrets are registered once; none generated then.
        let generated = nudge_app::keys::ensure_bootstrap_keys(&*b.store, Some("na_cfg"), Some("nw_cfg"), T0)
            .await
            .unwrap();
        assert!(generated.is_empty());
        nudge_app::keys::verify(&*b.store, "na_cfg", KeyKind::Admin)
            .await
            .unwrap();
        b.finish().await;
    }
}

#[tokio::test]
async fn ready_made_journeys_install_with_their_templates() {
    for b in backends().await {
        let app = with_engine(app_on(&b.store), "UTC");
        let err = app.install_ready_made_journey("nope", false).await.unwrap_err();
        assert!(matches!(err, AppError::NotFound { .. }), "{err:?}");
        let j = app.install_ready_made_journey("abandoned_cart", true).await.unwrap();
        assert_eq!(j.status, nudge_store::JourneyStatus::Live);
        assert!(b.store.template_by_name("cart-reminder").await.unwrap().is_some());
        // A second install is a new journey with a numbered name; templates are reused.
        let again = app.install_ready_made_journey("abandoned_cart", false).await.unwrap();
        assert_eq!(again.name, format!("{} 2", j.name));
        b.finish().await;
    }
}

/// Stores a Segment batch as ingestion would (message ids generated).
async fn ingest(store: &dyn Store, batch: Vec<serde_json::Value>, now: Millis) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let calls = nudge_core::parse_batch(
        &serde_json::to_vec(&json!({ "batch": batch })).unwrap(),
        &nudge_core::Received { at: now, ip: None },
        &mut || format!("generated-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
    )
    .unwrap()
    .messages;
    store.ingest(calls, now).await.unwrap();
}

/// Polls an import job until it has finished (at most 30 s).
async fn finished(jobs: &nudge_app::imports::ImportJobs, id: &str) -> nudge_app::imports::ImportProgress {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let p = jobs.progress(id, 1000).expect("the job is known");
        if p.phase.finished() {
            return p;
        }
        assert!(std::time::Instant::now() < deadline, "the import did not finish: {p:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The UI's import: good rows are imported in batches, each bad row is reported with
/// its row number, column and reason, and a file without the columns it needs is
/// refused before a job starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_job_imports_good_rows_in_batches_and_reports_each_bad_one() {
    use nudge_app::imports::{BATCH, ImportJobs, ImportPhase};
    for b in backends().await {
        let app = app_on(&b.store);
        app.import_contacts_csv(b"user_id,plan\njob-1,old\n").await.unwrap();
        let jobs = ImportJobs::new();
        let refused = jobs.start(&app, b"name\nAda\n".to_vec()).unwrap_err();
        assert!(
            matches!(&refused, AppError::InvalidRequest { field: Some(f), .. } if f == "csv"),
            "{refused:?}"
        );
        // More rows than two batches; rows 4 and 1,103 are wrong, row 2 updates.
        let mut csv = String::from("user_id,email,plan\n");
        for i in 1..=BATCH * 2 + 200 {
            match i {
                3 => csv.push_str("job-3,not-an-address,pro\n"),
                1102 => csv.push_str(",,pro\n"),
                i => csv.push_str(&format!("job-{i},job-{i}@x.example,pro\n")),
            }
        }
        let id = jobs.start(&app, csv.into_bytes()).unwrap();
        let p = finished(&jobs, &id).await;
        assert_eq!(p.phase, ImportPhase::Done);
        assert_eq!((p.total, p.done, p.failed), (1200, 1200, 2), "{:?}", p.errors);
        assert_eq!((p.created, p.updated), (1197, 1), "{p:?}");
        let bad: Vec<(usize, Option<&str>)> = p.errors.iter().map(|e| (e.row, e.column.as_deref())).collect();
        assert_eq!(bad, vec![(4, Some("email")), (1103, None)]);
        let errors = jobs.errors_csv(&id).unwrap().unwrap();
        assert!(errors.starts_with("row,column,message\n4,email,"), "{errors}");
        let found = app
            .find_recipient(&Recipient::UserId("job-1".into()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.traits["plan"], json!("pro"));
        assert!(
            app.find_recipient(&Recipient::UserId("job-3".into()))
                .await
                .unwrap()
                .is_none()
        );
        assert!(jobs.progress("nope", 10).is_none());
        b.finish().await;
    }
}

/// What an SMTP sink received (the JSON files it writes), waiting for `n`.
fn mails(dir: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        if files.len() >= n {
            files.sort();
            return files
                .iter()
                .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
                .collect();
        }
        assert!(std::time::Instant::now() < deadline, "expected {n} mails");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A Twilio-like HTTP API on loopback (a thread) that records each request's path
/// and body and answers `201 {"sid": "SM1"}`.
/// What the SMS provider received: (path, body) per request.
type Requests = Arc<std::sync::Mutex<Vec<(String, String)>>>;

fn sms_provider() -> (String, Requests) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = socket.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                let Some(end) = text.find("\r\n\r\n") else { continue };
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if buf.len() < end + 4 + length {
                    continue;
                }
                let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push((path, text[end + 4..].to_string()));
                let answer = r#"{"sid": "SM1"}"#;
                let resp = format!(
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = socket.write_all(resp.as_bytes());
                break;
            }
        }
    });
    (url, log)
}

/// Channels configured from a settings form (secrets kept when left empty, errors
/// at the form's fields), test sends through a real SMTP server and a recording SMS
/// API (accepted, the server's refusal, a suppressed address), a template's test
/// with its "[Test]" subject, and going back to the start-up settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_configured_and_tested_through_real_servers() {
    use nudge_app::channels::{ChannelSettings, ChannelSource, SmtpSettings, TemplateTest, TestText, TwilioSettings};
    use nudge_messages::channel::SendError;
    use nudge_messages::channel::capture::Capture;
    use nudge_messages::channel::config::SmtpTls;
    use nudge_messages::delivery::{ChannelSlot, Deliverer, DeliveryConfig};
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let sink = start_sink(&python);
    let (provider, requests) = sms_provider();
    for b in backends().await {
        let deliverer = Deliverer::new(
            b.store.clone(),
            Arc::new(ManualClock::new(T0)),
            vec![
                ChannelSlot::new(Arc::new(Capture::new("email")), 4, None),
                ChannelSlot::new(Arc::new(Capture::new("sms")), 4, None),
            ],
            nudge_messages::links::Signer::new(b"key"),
            DeliveryConfig::default(),
        );
        let app = app_on(&b.store).with_messaging(deliverer);
        let text = TestText {
            subject: "Test message".into(),
            body: "It works".into(),
        };
        // Capture: accepted, nothing left.
        let out = app.send_channel_test("email", "ada@x.example", &text).await.unwrap();
        assert!(out.captured() && out.result.is_ok(), "{out:?}");

        let smtp = |password: Option<&str>| SmtpSettings {
            host: "127.0.0.1".into(),
            port: sink.1,
            tls: SmtpTls::None,
            user: String::new(),
            password: password.map(Into::into),
            from_name: "Shop".into(),
            from_address: "shop@x.example".into(),
            pool: None,
            rate: None,
            dkim: None,
        };
        let err = app
            .configure_channel_settings(
                "email",
                ChannelSettings::Smtp(SmtpSettings {
                    from_address: "nobody".into(),
                    ..smtp(None)
                }),
                None,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AppError::InvalidField { field, .. } if field == "from_address"),
            "{err:?}"
        );
        let status = app
            .configure_channel_settings("email", ChannelSettings::Smtp(smtp(None)), None)
            .await
            .unwrap();
        assert_eq!(
            (status.transport, status.source, status.health.is_ok()),
            ("smtp", ChannelSource::Stored, true),
            "{status:?}"
        );
        let out = app.send_channel_test("email", " Ada@X.example ", &text).await.unwrap();
        assert_eq!((out.transport, out.to.as_str()), ("smtp", "ada@x.example"));
        assert!(out.result.is_ok(), "{out:?}");
        // The sink refuses "bounce…" recipients with 550.
        let out = app.send_channel_test("email", "bounce@x.example", &text).await.unwrap();
        assert!(
            matches!(&out.result, Err(SendError::Bounce(e)) if e.contains("550")),
            "{out:?}"
        );
        // A suppressed address is refused before anything is sent.
        app.add_suppression("email", "gone@x.example", None).await.unwrap();
        let err = app
            .send_channel_test("email", "gone@x.example", &text)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AppError::InvalidField { field, .. } if field == "to"),
            "{err:?}"
        );
        let err = app.send_channel_test("email", "ada", &text).await.unwrap_err();
        assert!(
            matches!(&err, AppError::InvalidField { field, .. } if field == "to"),
            "{err:?}"
        );

        // A template's test: rendered with sample data, "[Test]" before the subject.
        let content: nudge_messages::template::Content = serde_json::from_value(json!({
            "channel": "email", "subject": "Hi {{ contact.traits.first_name }}", "html": "<p>Hello</p>"
        }))
        .unwrap();
        let out = app
            .send_template_test(TemplateTest {
                content: content.clone(),
                render_as: nudge_app::templates::PreviewAs::Sample(json!({"traits": {"first_name": "Ada"}})),
                to: "ada@x.example".into(),
            })
            .await
            .unwrap();
        assert!(out.result.is_ok(), "{out:?}");
        let err = app
            .send_template_test(TemplateTest {
                content,
                render_as: nudge_app::templates::PreviewAs::Contact(Recipient::UserId("nobody".into())),
                to: "ada@x.example".into(),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AppError::NotFound { field: Some(f), .. } if f == "render_as"),
            "{err:?}"
        );

        // SMS through the recording provider; the token is kept when left empty.
        let twilio = |token: Option<&str>| {
            ChannelSettings::Twilio(TwilioSettings {
                base_url: provider.clone(),
                account: "AC1".into(),
                token: token.map(Into::into),
                from: "+15550001".into(),
            })
        };
        app.configure_channel_settings("sms", twilio(Some("T0ken")), None)
            .await
            .unwrap();
        app.configure_channel_settings("sms", twilio(None), None).await.unwrap();
        assert!(matches!(
            app.stored_channel("sms").await.unwrap(),
            Some(nudge_messages::channel::config::ChannelConfig::Twilio { token, .. }) if token == "T0ken"
        ));
        let before = requests.lock().unwrap().len();
        let out = app.send_channel_test("sms", "+1 555 000 2222", &text).await.unwrap();
        assert_eq!(
            (out.result.clone(), out.to.as_str()),
            (Ok(Some("SM1".into())), "+15550002222")
        );
        let (path, body) = requests.lock().unwrap()[before].clone();
        assert_eq!(path, "/2010-04-01/Accounts/AC1/Messages.json");
        assert!(
            body.contains("To=%2B15550002222") && body.contains("Body=It+works"),
            "{body}"
        );

        // Back to the start-up settings.
        let status = app.reset_channel("email", None).await.unwrap();
        assert_eq!((status.transport, status.source), ("capture", ChannelSource::Settings));
        assert!(app.stored_channel("email").await.unwrap().is_none());
        b.finish().await;
    }
    let received = mails(sink.2.path(), 2);
    let subjects: Vec<String> = received
        .iter()
        .map(|m| {
            m["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h[0] == "Subject")
                .map(|h| h[1].as_str().unwrap().to_string())
                .unwrap()
        })
        .collect();
    assert!(subjects.contains(&"Test message".to_string()), "{subjects:?}");
    assert!(subjects.contains(&"[Test] Hi Ada".to_string()), "{subjects:?}");
}

// Campaigns.

mod campaigns {
    use super::*;
    use nudge_app::FieldProblem;
    use nudge_app::campaigns::{CampaignAction, check_definition, report_csv};
    use nudge_core::campaign::{CampaignStatus, Schedule};
    use nudge_core::protocol::{MessageEvent, MessageOrigin};
    use nudge_store::{NewCampaign, NewMessage, NewSegment};
    use serde_json::Value;

    const HOUR: Millis = 3_600_000;

    /// An app whose clock the test moves.
    fn app_with_clock(store: &Arc<dyn Store>) -> (App, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(T0));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        (App::new(store.clone(), dyn_clock), clock)
    }

    async fn template(store: &dyn Store, name: &str, channel: &str, transactional: bool) -> i64 {
        let content = match channel {
            "email" => json!({"channel": "email", "subject": "Hi", "html": "<p>Hi</p>"}),
            "sms" => json!({"channel": "sms", "body": "Hi"}),
            "webhook" => json!({"channel": "webhook", "url": "https://example.com/hook"}),
            other => panic!("no content for {other}"),
        };
        store
            .create_template(
                NewTemplate {
                    name: name.into(),
                    description: String::new(),
                    channel: channel.into(),
                    transactional,
                    topic: None,
                    content,
                },
                T0,
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .id
    }

    async fn segment(store: &dyn Store, name: &str, administrative: bool) -> i64 {
        let definition =
            nudge_core::segment::parse_condition(&json!({"type": "trait", "trait": name, "op": "exists"})).unwrap();
        store
            .create_segment(
                NewSegment {
                    name: name.into(),
                    description: String::new(),
                    definition,
                    administrative,
                },
                T0,
            )
            .await
            .unwrap()
            .id
    }

    fn fields(problems: &[FieldProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    fn new(name: &str, definition: Value) -> NewCampaign {
        NewCampaign {
            name: name.into(),
            description: String::new(),
            definition,
        }
    }

    /// Segments and templates named by a definition are checked against the store,
    /// and every problem is listed at once with its field, the pure rules' included.
    #[tokio::test]
    async fn definitions_are_checked_against_what_is_stored() {
        for b in backends().await {
            let s = &*b.store;
            let vip = segment(s, "vip", false).await;
            let staff = segment(s, "staff", true).await;
            let news_a = template(s, "news-a", "email", false).await;
            template(s, "news-b", "email", false).await;
            template(s, "flash", "sms", false).await;
            template(s, "hook", "webhook", false).await;
            template(s, "receipt", "email", true).await;

            let valid = json!({
                "audience": {"segments": [vip], "exclude": [staff]},
                "variants": [{"name": "A", "template": news_a}, {"name": "B", "template": "news-b"}],
                "test": {"share": 20, "metric": "click_rate", "duration": {"hours": 4}}
            });
            let checked = check_definition(s, &valid).await.unwrap().unwrap();
            assert_eq!(checked.channel, "email");
            let names: Vec<&str> = checked.templates.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, ["news-a", "news-b"]);

            // Missing and administrative segments; missing templates, by name and id.
            let p = check_definition(
                s,
                &json!({
                    "audience": {"segments": [vip, 999, staff], "exclude": [998]},
                    "variants": [{"name": "A", "template": "nope"}, {"name": "B", "template": 12345}]
                }),
            )
            .await
            .unwrap()
            .unwrap_err();
            assert_eq!(
                fields(&p),
                [
                    "definition.audience.segments[1]",
                    "definition.audience.segments[2]",
                    "definition.audience.exclude[0]",
                    "definition.variants[0].template",
                    "definition.variants[1].template",
                ],
                "{p:?}"
            );
            assert!(p[1].message.contains("administrative"), "{p:?}");
            assert!(p[3].message.contains("\"nope\""), "{p:?}");

            // One channel: the first template's, or the one given; no webhook, nothing
            // transactional.
            let variants = |templates: &[&str]| -> Value {
                templates
                    .iter()
                    .enumerate()
                    .map(|(i, t)| json!({"name": format!("V{i}"), "template": t}))
                    .collect()
            };
            let p = check_definition(
                s,
                &json!({"audience": {"segments": [vip]}, "variants": variants(&["news-a", "flash", "hook", "receipt"])}),
            )
            .await
            .unwrap()
            .unwrap_err();
            assert_eq!(
                fields(&p),
                [
                    "definition.variants[1].template",
                    "definition.variants[2].template",
                    "definition.variants[3].template"
                ],
                "{p:?}"
            );
            assert!(
                p[0].message.contains("sends sms, but the campaign sends email"),
                "{p:?}"
            );
            assert!(p[1].message.contains("webhook"), "{p:?}");
            assert!(p[2].message.contains("transactional"), "{p:?}");
            let p = check_definition(
                s,
                &json!({"audience": {"segments": [vip]}, "channel": "sms", "variants": variants(&["news-a", "flash"])}),
            )
            .await
            .unwrap()
            .unwrap_err();
            assert_eq!(fields(&p), ["definition.variants[0].template"], "{p:?}");
            assert!(p[0].message.contains("the campaign's channel"), "{p:?}");

            // The pure rules' problems come with the store's.
            let p = check_definition(
                s,
                &json!({"audience": {"segments": [404]}, "variants": [{"name": "A", "template": "news-a"}], "holdout": 60}),
            )
            .await
            .unwrap()
            .unwrap_err();
            assert_eq!(
                fields(&p),
                ["definition.holdout", "definition.audience.segments[0]"],
                "{p:?}"
            );
            // A shape that does not read is the one problem.
            let p = check_definition(
                s,
                &json!({"audience": {"segments": [vip]}, "variants": [], "colour": 1}),
            )
            .await
            .unwrap()
            .unwrap_err();
            assert_eq!(fields(&p), ["definition.colour"], "{p:?}");

            // Saving refuses them all.
            let app = app_on(&b.store);
            let err = app
                .create_campaign(new(
                    "Broken",
                    json!({"audience": {"segments": [999]}, "variants": variants(&["hook"])}),
                ))
                .await
                .unwrap_err();
            match err {
                AppError::InvalidDefinition { problems, stored } => {
                    assert!(!stored);
                    assert_eq!(
                        fields(&problems),
                        ["definition.audience.segments[0]", "definition.variants[0].template"]
                    );
                }
                e => panic!("{e:?}"),
            }
            assert!(matches!(
                app.create_campaign(new("  ", valid.clone())).await,
                Err(AppError::InvalidField { field, .. }) if field == "name"
            ));
            let c = app.create_campaign(new(" December ", valid.clone())).await.unwrap();
            assert_eq!((c.name.as_str(), c.status), ("December", CampaignStatus::Draft));
            assert!(matches!(
                app.create_campaign(new("December", valid)).await,
                Err(AppError::Store(nudge_store::StoreError::Conflict(_)))
            ));
            b.finish().await;
        }
    }

    /// What each status allows; a refused command is a conflict saying why.
    #[tokio::test]
    async fn statuses_move_as_the_lifecycle_allows() {
        for b in backends().await {
            let s = &*b.store;
            let vip = segment(s, "vip", false).await;
            template(s, "news", "email", false).await;
            let (app, clock) = app_with_clock(&b.store);
            let def = json!({"audience": {"segments": [vip]}, "variants": [{"name": "A", "template": "news"}]});
            let c = app.create_campaign(new("Spring", def.clone())).await.unwrap();
            let conflict = |r: nudge_app::Result<nudge_store::Campaign>| match r {
                Err(AppError::Conflict(m)) => m,
                other => panic!("{other:?}"),
            };

            assert_eq!(
                conflict(app.campaign_action(c.id, CampaignAction::Pause).await),
                "a draft campaign cannot pause"
            );
            let sent = app
                .send_campaign(c.id, Schedule::At { at: T0 + 2 * HOUR })
                .await
                .unwrap();
            assert_eq!(
                (sent.status, sent.start_at),
                (CampaignStatus::Scheduled, Some(T0 + 2 * HOUR))
            );
            assert_eq!(sent.sent_at, Some(T0));
            assert_eq!(
                conflict(app.send_campaign(c.id, Schedule::Now).await),
                "a scheduled campaign cannot send"
            );
            assert!(conflict(app.update_campaign(c.id, new("Spring", def.clone())).await).contains("only a draft"));
            assert!(matches!(
                app.delete_campaign(c.id).await,
                Err(AppError::Store(nudge_store::StoreError::Conflict(_)))
            ));

            let paused = app.campaign_action(c.id, CampaignAction::Pause).await.unwrap();
            assert_eq!(paused.status, CampaignStatus::Paused);
            // Resumed before its start: scheduled again; after it: sending.
            let resumed = app.campaign_action(c.id, CampaignAction::Resume).await.unwrap();
            assert_eq!(resumed.status, CampaignStatus::Scheduled);
            app.campaign_action(c.id, CampaignAction::Pause).await.unwrap();
            clock.set(T0 + 3 * HOUR);
            let resumed = app.campaign_action(c.id, CampaignAction::Resume).await.unwrap();
            assert_eq!(resumed.status, CampaignStatus::Sending);
            assert_eq!(
                conflict(app.campaign_action(c.id, CampaignAction::Resume).await),
                "a sending campaign cannot resume"
            );
            let cancelled = app.campaign_action(c.id, CampaignAction::Cancel).await.unwrap();
            assert_eq!(cancelled.status, CampaignStatus::Cancelled);
            assert_eq!(
                conflict(app.campaign_action(c.id, CampaignAction::Cancel).await),
                "a cancelled campaign cannot cancel"
            );
            app.delete_campaign(c.id).await.unwrap();
            assert!(matches!(app.campaign(c.id).await, Err(AppError::NotFound { .. })));
            assert!(matches!(
                app.delete_campaign(c.id).await,
                Err(AppError::NotFound { .. })
            ));
            assert!(matches!(
                app.send_campaign(c.id, Schedule::Now).await,
                Err(AppError::NotFound { .. })
            ));

            // A draft can be cancelled; sent now, it is sending at once.
            let d = app.create_campaign(new("Summer", def.clone())).await.unwrap();
            assert_eq!(
                app.send_campaign(d.id, Schedule::Now).await.unwrap().status,
                CampaignStatus::Sending
            );
            let e = app.create_campaign(new("Autumn", def)).await.unwrap();
            assert_eq!(
                app.campaign_action(e.id, CampaignAction::Cancel).await.unwrap().status,
                CampaignStatus::Cancelled
            );
            b.finish().await;
        }
    }

    /// A send fixes each variant's template at its version of the moment; later edits
    /// of the template do not change the send. A template deleted after the draft was
    /// saved makes the send a conflict, with the problem named.
    #[tokio::test]
    async fn sending_fixes_each_variants_template_version() {
        for b in backends().await {
            let s = &*b.store;
            let vip = segment(s, "vip", false).await;
            let a = template(s, "sale-a", "email", false).await;
            let b_id = template(s, "sale-b", "email", false).await;
            let app = app_on(&b.store);
            let edit = |subject: &str| NewTemplate {
                name: "sale-a".into(),
                description: String::new(),
                channel: "email".into(),
                transactional: false,
                topic: None,
                content: json!({"channel": "email", "subject": subject, "html": "<p>Sale</p>"}),
            };
            let def = json!({"audience": {"segments": [vip]},
                "variants": [{"name": "A", "template": "sale-a"}, {"name": "B", "template": b_id}],
                "test": {"share": 50, "metric": "open_rate", "duration": 3_600_000}});
            let c = app.create_campaign(new("Sale", def.clone())).await.unwrap();
            assert_eq!(c.templates, vec![]);
            s.update_template(a, edit("Sale!"), T0).await.unwrap().unwrap();
            let sent = app.send_campaign(c.id, Schedule::Now).await.unwrap();
            assert_eq!(sent.templates, vec![(a, 2), (b_id, 1)]);
            assert_eq!(sent.schedule, Some(Schedule::Now));
            s.update_template(a, edit("Sale!!"), T0).await.unwrap().unwrap();
            assert_eq!(app.campaign(c.id).await.unwrap().templates, vec![(a, 2), (b_id, 1)]);
            let report = app.campaign_report(c.id).await.unwrap();
            assert_eq!(report.variants[0].template_version, Some(2));
            assert_eq!(report.variants[0].template_name.as_deref(), Some("sale-a"));

            let d = app.create_campaign(new("Sale 2", def)).await.unwrap();
            assert!(s.delete_template(b_id).await.unwrap());
            match app.send_campaign(d.id, Schedule::Now).await.unwrap_err() {
                AppError::InvalidDefinition { problems, stored } => {
                    assert!(stored);
                    assert_eq!(fields(&problems), ["definition.variants[1].template"]);
                }
                e => panic!("{e:?}"),
            }
            assert_eq!(app.campaign(d.id).await.unwrap().status, CampaignStatus::Draft);
            b.finish().await;
        }
    }

    /// A segment or template an unfinished campaign reads cannot be deleted (a
    /// conflict naming the campaign); once it is cancelled, it can. Drafts do not hold
    /// them (sending checks the definition again).
    #[tokio::test]
    async fn an_unfinished_campaign_keeps_its_segments_and_templates() {
        for b in backends().await {
            let s = &*b.store;
            let (vip, other, left_out) = (
                segment(s, "vip", false).await,
                segment(s, "other", false).await,
                segment(s, "left-out", false).await,
            );
            let (a, spare) = (
                template(s, "keep-a", "email", false).await,
                template(s, "spare", "email", false).await,
            );
            let app = app_on(&b.store);
            let c = app
                .create_campaign(new(
                    "Kept",
                    json!({"audience": {"segments": [vip], "exclude": [left_out]},
                        "variants": [{"name": "A", "template": "keep-a"}]}),
                ))
                .await
                .unwrap();
            let draft = app
                .create_campaign(new(
                    "Draft",
                    json!({"audience": {"segments": [other]}, "variants": [{"name": "A", "template": spare}]}),
                ))
                .await
                .unwrap();
            app.send_campaign(c.id, Schedule::At { at: T0 + HOUR }).await.unwrap();
            for e in [
                app.delete_segment(vip).await.unwrap_err(),
                app.delete_segment(left_out).await.unwrap_err(),
                app.delete_template(a).await.unwrap_err(),
            ] {
                match e {
                    AppError::Conflict(m) => assert!(m.contains("campaign") && m.contains("Kept"), "{m}"),
                    e => panic!("{e:?}"),
                }
            }
            assert!(s.segment(vip).await.unwrap().is_some());
            assert!(s.template(a).await.unwrap().is_some());
            // A draft's segment and template may go.
            app.delete_segment(other).await.unwrap();
            app.delete_template(spare).await.unwrap();
            assert!(matches!(
                app.delete_template(spare).await,
                Err(AppError::NotFound { .. })
            ));
            app.campaign_action(c.id, CampaignAction::Cancel).await.unwrap();
            app.delete_segment(vip).await.unwrap();
            app.delete_template(a).await.unwrap();
            let _ = draft;
            b.finish().await;
        }
    }

    /// The report counts per variant from the campaign's counters, shows the test
    /// metric's live figures, and the winner a person picked (once, while the test
    /// runs); as CSV, a row per variant and the holdout.
    #[tokio::test]
    async fn report_and_a_manual_winner() {
        for b in backends().await {
            let s = &*b.store;
            let vip = segment(s, "vip", false).await;
            let a = template(s, "sale-a", "email", false).await;
            let bt = template(s, "sale-b", "email", false).await;
            let app = app_on(&b.store);
            app.import_contacts_csv(b"email\nc1@example.com\nc2@example.com\nc3@example.com\nc4@example.com\n")
                .await
                .unwrap();
            let def = json!({"audience": {"segments": [vip]},
                "variants": [{"name": "A", "template": a}, {"name": "B", "template": bt}],
                "test": {"share": 50, "metric": "click_rate", "duration": {"hours": 4}},
                "holdout": 10});
            let c = app.create_campaign(new("Sale", def.clone())).await.unwrap();
            // A draft has no test under way.
            assert!(matches!(
                app.pick_campaign_winner(c.id, 1, None).await,
                Err(AppError::Conflict(_))
            ));
            let empty = app.campaign_report(c.id).await.unwrap();
            assert_eq!(empty.variants.len(), 2);
            assert_eq!(empty.variants[0].open_rate, None, "nothing to divide by");
            assert_eq!(empty.variants[1].template_version, None, "not fixed before the send");
            app.send_campaign(c.id, Schedule::Now).await.unwrap();

            // Two messages of each variant; B's are both clicked, A's once.
            let mut messages = Vec::new();
            for (contact, variant) in [(1, 0u8), (2, 0), (3, 1), (4, 1)] {
                let (m, _) = s
                    .enqueue_message(
                        NewMessage {
                            idempotency_key: format!("campaign-{}-contact-{contact}", c.id),
                            contact_id: contact,
                            template_id: if variant == 0 { a } else { bt },
                            template_version: 1,
                            channel: "email".into(),
                            transactional: false,
                            data: json!({}),
                            origin: Some(MessageOrigin::Campaign {
                                campaign_id: c.id,
                                variant,
                            }),
                        },
                        T0,
                    )
                    .await
                    .unwrap();
                messages.push(m.id);
            }
            let click = |url: &str| MessageEvent::Clicked {
                link: 0,
                url: url.into(),
            };
            for (i, (m, event)) in [
                (messages[0], MessageEvent::Opened),
                (messages[0], click("https://a.example/")),
                (messages[2], click("https://a.example/")),
                (messages[2], click("https://a.example/")),
                (messages[3], click("https://b.example/")),
            ]
            .into_iter()
            .enumerate()
            {
                s.record_message_event(m, &event, format!("e{i}"), T0).await.unwrap();
            }
            let r = app.campaign_report(c.id).await.unwrap();
            let (va, vb) = (&r.variants[0], &r.variants[1]);
            assert_eq!(
                (va.counts.recipients, va.counts.opened, va.counts.unique_clicked),
                (2, 1, 1)
            );
            assert_eq!((vb.counts.clicked, vb.counts.unique_clicked), (3, 2));
            assert_eq!(
                (va.open_rate, va.click_rate, vb.click_rate),
                (Some(0.5), Some(0.5), Some(1.0))
            );
            let (sa, sb) = (va.stats.unwrap(), vb.stats.unwrap());
            assert_eq!((sa.rate, sb.rate), (0.5, 1.0));
            assert!(sa.ci_low < 0.5 && sa.ci_high > 0.5);
            assert!((sa.probability_to_be_best + sb.probability_to_be_best - 1.0).abs() < 1e-9);
            assert!(sb.probability_to_be_best > sa.probability_to_be_best);
            assert!(sa.p_value_vs_control.is_none() && sb.p_value_vs_control.is_some());
            let t = r.test.as_ref().unwrap();
            assert_eq!((t.winner, t.decision.as_ref(), t.note), (None, None, None));
            assert_eq!(t.duration_ms, 4 * 3_600_000);

            assert!(matches!(
                app.pick_campaign_winner(c.id, 5, None).await,
                Err(AppError::NotFound { field: Some(f), .. }) if f == "variant"
            ));
            let picked = app
                .pick_campaign_winner(c.id, 1, Some("ada@example.com".into()))
                .await
                .unwrap();
            assert_eq!(picked.winner, Some(1));
            assert_eq!(
                picked.decision,
                Some(json!({"decided_by": {"by": "manual", "user": "ada@example.com"}, "at": T0}))
            );
            assert!(matches!(
                app.pick_campaign_winner(c.id, 0, None).await,
                Err(AppError::Conflict(_))
            ));
            let r = app.campaign_report(c.id).await.unwrap();
            assert!(r.variants[1].winner && !r.variants[0].winner);
            assert!(
                r.test.as_ref().unwrap().note.is_some(),
                "the winner's counts mix in the remainder"
            );

            let csv = report_csv(&r).unwrap();
            let lines: Vec<&str> = csv.lines().collect();
            assert_eq!(lines.len(), 4, "{csv}");
            assert!(lines[0].starts_with("variant,name,template_id,template_version,recipients,sent,"));
            assert!(
                lines[2].starts_with(&format!("1,B,{bt},1,2,0,0,0,0,0,0,3,2,0,1,0,0,0,0,0,0,0,,,1,")),
                "{csv}"
            );
            assert!(lines[2].ends_with(",true"), "{csv}");
            assert_eq!(lines[3], "holdout,holdout,,,0,,,,,,,,,,,0,0,0,,,,,,,,,,,,false");
            let links: Vec<(u8, &str, u64, u64)> = r
                .links
                .iter()
                .map(|l| (l.variant, l.url.as_str(), l.clicks, l.unique_clicks))
                .collect();
            assert_eq!(
                links,
                vec![
                    (1, "https://a.example/", 2, 1),
                    (0, "https://a.example/", 1, 1),
                    (1, "https://b.example/", 1, 1)
                ]
            );

            // No test, no winner to pick; a conversion metric has live figures too
            // (no conversions yet: every rate 0).
            let plain = app
                .create_campaign(new(
                    "Plain",
                    json!({"audience": {"segments": [vip]}, "variants": [{"name": "A", "template": a}]}),
                ))
                .await
                .unwrap();
            app.send_campaign(plain.id, Schedule::Now).await.unwrap();
            assert!(matches!(
                app.pick_campaign_winner(plain.id, 0, None).await,
                Err(AppError::Conflict(m)) if m.contains("no A/B test")
            ));
            assert!(app.campaign_report(plain.id).await.unwrap().test.is_none());
            let mut conv = def;
            conv["test"]["metric"] = json!("conversion_rate");
            let conv = app.create_campaign(new("Conversions", conv)).await.unwrap();
            let r = app.campaign_report(conv.id).await.unwrap();
            assert!(
                r.variants
                    .iter()
                    .all(|v| v.stats.as_ref().is_some_and(|s| s.rate == 0.0))
            );
            assert!(r.test.unwrap().note.is_none());
            b.finish().await;
        }
    }
}

/// Product recommendations end to end (docs/recommendations.md), on an injected clock
/// and through a real SMTP server: other contacts' purchases teach which products go
/// with a linen shirt; Ada buys one; the ready-made cross-sell journey waits five days
/// (and for its weekday send window) and emails her the products those others bought
/// with it — none of which she ever touched — and not the shirt she already has.
#[tokio::test]
async fn a_cross_sell_email_recommends_what_other_contacts_bought_with_the_order() {
    use nudge_app::channels::{ChannelSettings, SmtpSettings};
    use nudge_core::recommend::Reason;
    use nudge_engine::{RecommendationEngine, RecommendationEngineConfig};
    use nudge_messages::channel::capture::Capture;
    use nudge_messages::channel::config::SmtpTls;
    use nudge_messages::delivery::{ChannelSlot, Deliverer, DeliveryConfig};
    use serde_json::Value;
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    const DAY: Millis = 86_400_000;
    let product = |id: &str, name: &str| {
        json!({"product_id": id, "name": name, "price": 20, "category": "Clothes",
               "url": format!("https://shop.example/p/{id}")})
    };
    let shirt = product("linen-shirt", "Linen Shirt");
    let tie = product("silk-tie", "Silk Tie");
    let belt = product("leather-belt", "Leather Belt");
    let socks = product("wool-socks", "Wool Socks");
    let order = |user: String, at: Millis, products: Vec<&Value>| {
        json!({"type": "track", "userId": user, "event": "Order Completed",
               "timestamp": nudge_core::format_millis(at), "properties": {"products": products}})
    };
    for b in backends().await {
        let sink = start_sink(&python);
        let clock = Arc::new(ManualClock::new(T0));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let store = b.store.clone();
        let journeys = JourneyEngine::new(store.clone(), dyn_clock.clone(), JourneyEngineConfig::default());
        let deliverer = Deliverer::new(
            store.clone(),
            dyn_clock.clone(),
            vec![ChannelSlot::new(Arc::new(Capture::new("email")), 4, None)],
            nudge_messages::links::Signer::new(b"key"),
            // Links as written (the recommendations' pages are what is checked).
            DeliveryConfig {
                track_clicks: false,
                ..Default::default()
            },
        );
        let app = App::new(store.clone(), dyn_clock.clone())
            .with_journeys(journeys.clone())
            .with_messaging(deliverer.clone());
        app.configure_channel_settings(
            "email",
            ChannelSettings::Smtp(SmtpSettings {
                host: "127.0.0.1".into(),
                port: sink.1,
                tls: SmtpTls::None,
                user: String::new(),
                password: None,
                from_name: "Shop".into(),
                from_address: "shop@x.example".into(),
                pool: None,
                rate: None,
                dkim: None,
            }),
            None,
        )
        .await
        .unwrap();

        // Last month: four customers bought the shirt with a tie, three with a belt,
        // and the socks sell to everyone.
        let mut history = Vec::new();
        for i in 0..4 {
            history.push(order(format!("tie-{i}"), T0 - 20 * DAY, vec![&shirt, &tie]));
        }
        for i in 0..3 {
            history.push(order(format!("belt-{i}"), T0 - 15 * DAY, vec![&shirt, &belt]));
        }
        for i in 0..10 {
            history.push(order(format!("socks-{i}"), T0 - 10 * DAY, vec![&socks]));
        }
        history.push(order("tie-0".into(), T0 - 9 * DAY, vec![&socks]));
        ingest(&*store, history, T0).await;
        let engine = RecommendationEngine::new(store.clone(), dyn_clock.clone(), RecommendationEngineConfig::default());
        let round = engine.run_once().await.unwrap();
        assert!(round.refreshed, "{round:?}");
        let similar = app.similar_products("linen-shirt", Some(3)).await.unwrap();
        let ids: Vec<&str> = similar.iter().map(|r| r.product.id.as_str()).collect();
        assert_eq!(ids, ["silk-tie", "leather-belt", "wool-socks"], "{similar:?}");

        app.install_ready_made_journey("cross_sell", true).await.unwrap();
        journeys.run_once().await.unwrap();
        // Ada (new, with an email address) buys a shirt now.
        ingest(
            &*store,
            vec![
                json!({"type": "identify", "userId": "ada", "traits": {"email": "ada@example.com", "first_name": "Ada"}}),
                order("ada".into(), T0, vec![&shirt]),
            ],
            T0,
        )
        .await;
        let ada = store
            .find_contact(&nudge_store::Lookup::UserId("ada".into()))
            .await
            .unwrap()
            .unwrap();
        let list = app.contact_recommendations(ada.id, Some(3)).await.unwrap();
        let ids: Vec<&str> = list.iter().map(|r| r.product.id.as_str()).collect();
        assert_eq!(ids, ["silk-tie", "leather-belt", "wool-socks"], "{list:?}");
        assert_eq!(
            list[0].reason,
            Reason::Similar {
                to: vec!["linen-shirt".into()]
            }
        );
        journeys.run_once().await.unwrap();
        // Five days later is a Saturday: the send window holds the email to Monday.
        clock.set(T0 + 5 * DAY + 60_000);
        journeys.run_once().await.unwrap();
        assert_eq!(
            deliverer.clone().run_once().await.unwrap(),
            0,
            "nothing due on Saturday"
        );
        clock.set(T0 + 7 * DAY - 2 * 3_600_000); // Monday 10:00 UTC
        for _ in 0..3 {
            journeys.run_once().await.unwrap();
        }
        assert_eq!(deliverer.clone().run_once().await.unwrap(), 1);
        let mail = mails(sink.2.path(), 1).remove(0);
        let html = mail["parts"]
            .as_array()
            .and_then(|parts| parts.iter().find(|p| p["content_type"] == "text/html"))
            .and_then(|p| p["text"].as_str())
            .unwrap_or_else(|| panic!("no HTML part: {mail}"))
            .to_string();
        assert_eq!(mail["rcpt_tos"], json!(["ada@example.com"]));
        assert!(html.contains("Hi Ada"), "{html}");
        let at = |what: &str| html.find(what).unwrap_or_else(|| panic!("{what} missing: {html}"));
        // The order's shirt is listed once, as what she bought; the recommendations
        // follow: tie, belt, socks, in that order, linked to their pages.
        assert_eq!(html.matches("https://shop.example/p/linen-shirt").count(), 1, "{html}");
        assert!(at("Linen Shirt") < at("Silk Tie"));
        assert!(at("https://shop.example/p/silk-tie") < at("https://shop.example/p/leather-belt"));
        assert!(at("https://shop.example/p/leather-belt") < at("https://shop.example/p/wool-socks"));
        b.finish().await;
    }
}
