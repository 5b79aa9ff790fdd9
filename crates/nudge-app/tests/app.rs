//! The use cases against a real store: SQLite always, PostgreSQL (a fresh schema) when
//! `NUDGE_TEST_DATABASE_URL` is set. No HTTP: `nudge_app::App` is called directly.

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
