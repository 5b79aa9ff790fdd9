//! Send-time optimisation end to end against a real store (SQLite always, PostgreSQL
//! in a fresh schema when `NUDGE_TEST_DATABASE_URL` is set) and a real SMTP server
//! (aiosmtpd, `tests/smtp/sink.py`), with an injected clock: a contact's site
//! sessions and clicks at 19:00 UTC, counted by the send-time engine, make a
//! journey's best-time send wait from the morning until 19:00 and go out at it.

mod common;
use common::{python_with_aiosmtpd, start_sink};
use nudge_app::App;
use nudge_app::channels::{ChannelSettings, SmtpSettings};
use nudge_app::journeys::JourneyAction;
use nudge_core::journey::{DeferReason, RunPhase, WaitingFor};
use nudge_core::{Clock, ManualClock, Millis, parse_batch, parse_instant};
use nudge_engine::{JourneyEngine, JourneyEngineConfig, SendTimeEngine, SendTimeEngineConfig};
use nudge_messages::channel::capture::Capture;
use nudge_messages::channel::config::SmtpTls;
use nudge_messages::delivery::{ChannelSlot, Deliverer, DeliveryConfig};
use nudge_store::{Lookup, MessageQuery, NewJourney, NewTemplate, Store};
use serde_json::{Value, json};
use std::sync::Arc;

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;

async fn backends() -> Vec<nudge_store::scratch::TestStore> {
    nudge_store::scratch::test_stores("nudge_send_time_test").await.unwrap()
}

async fn ingest(store: &dyn Store, batch: Vec<Value>, now: Millis) {
    // Message ids unique across calls (a repeated one is a duplicate, not stored).
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let calls = parse_batch(
        &serde_json::to_vec(&json!({ "batch": batch })).unwrap(),
        &nudge_core::Received { at: now, ip: None },
        &mut || format!("generated-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
    )
    .unwrap()
    .messages;
    store.ingest(calls, now).await.unwrap();
}

/// Journey rounds until there is nothing more to do now.
async fn settle(journeys: &JourneyEngine) {
    while journeys.run_once().await.unwrap().busy() {}
}

async fn messages(store: &dyn Store) -> Vec<nudge_store::Message> {
    let query = MessageQuery {
        limit: 10,
        ..Default::default()
    };
    store.list_messages(&query).await.unwrap().items
}

/// The mails the sink received so far (the JSON files it writes).
fn mails(dir: &std::path::Path) -> Vec<Value> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// Waits up to 10 s for the sink to hold `n` mails.
fn wait_for_mails(dir: &std::path::Path, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = mails(dir);
        if got.len() >= n {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {n} mails, got {}",
            got.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_best_time_send_is_held_for_the_contacts_best_hour_and_released_at_it_through_smtp() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    // Monday 2027-03-15, 06:00 UTC.
    let t0 = parse_instant("2027-03-15T06:00:00Z").unwrap();
    for (store, _dir, schema) in backends().await {
        eprintln!("on {}", store.backend());
        let sink = start_sink(&python);
        let clock = Arc::new(ManualClock::new(t0 - 10 * DAY));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let deliverer = Deliverer::new(
            store.clone(),
            dyn_clock.clone(),
            vec![ChannelSlot::new(Arc::new(Capture::new("email")), 4, None)],
            nudge_messages::links::Signer::new(b"key"),
            DeliveryConfig::default(),
        );
        let journeys = JourneyEngine::new(store.clone(), dyn_clock.clone(), JourneyEngineConfig::default());
        let app = App::new(store.clone(), dyn_clock.clone())
            .with_messaging(deliverer.clone())
            .with_journeys(journeys.clone());
        let smtp = SmtpSettings {
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
        };
        app.configure_channel_settings("email", ChannelSettings::Smtp(smtp), None)
            .await
            .unwrap();

        // Ada visits the site and clicks at about 19:00 UTC on five evenings; Bob
        // clicks in the mornings (the workspace's profile has both).
        let mut history = vec![
            json!({"type": "identify", "userId": "ada", "traits": {"email": "ada@x.example"}}),
            json!({"type": "identify", "userId": "bob", "traits": {"email": "bob@x.example"}}),
        ];
        for d in 1..=5 {
            let evening = t0 - d * DAY + 13 * HOUR + 5 * 60_000; // 19:05
            history.push(json!({"type": "page", "userId": "ada", "name": "Home",
                                "timestamp": nudge_core::format_millis(evening)}));
            history.push(json!({"type": "track", "userId": "ada", "event": "Email Link Clicked",
                                "timestamp": nudge_core::format_millis(evening + 10 * 60_000)}));
            if d <= 3 {
                history.push(json!({"type": "track", "userId": "bob", "event": "Email Link Clicked",
                                    "timestamp": nudge_core::format_millis(evening - 11 * HOUR)}));
            }
        }
        ingest(&*store, history, t0 - DAY).await;
        let send_times = SendTimeEngine::new(store.clone(), dyn_clock.clone(), SendTimeEngineConfig::default());
        clock.set(t0 - HOUR);
        let mut counted = 0;
        loop {
            let round = send_times.run_once().await.unwrap();
            counted += round.counted;
            if !round.more {
                break;
            }
        }
        assert_eq!(counted, 13, "Ada's five sessions and five clicks, Bob's three clicks");
        let ada = store
            .find_contact(&Lookup::UserId("ada".into()))
            .await
            .unwrap()
            .unwrap();
        let summary = app.contact_send_time(ada.id).await.unwrap();
        assert_eq!(summary.best_hours[0].hour, 19, "{summary:?}");
        assert_eq!(summary.engagements, 10);
        assert!(summary.confidence > 0.5, "{summary:?}");

        // A journey whose welcome waits for the contact's best time in the next 24 h.
        store
            .create_template(
                NewTemplate {
                    name: "welcome".into(),
                    description: String::new(),
                    channel: "email".into(),
                    transactional: false,
                    topic: None,
                    content: json!({"channel": "email", "subject": "Welcome", "html": "<p>Hello</p>"}),
                },
                t0,
            )
            .await
            .unwrap();
        let journey = app
            .create_journey(NewJourney {
                name: "Welcome at the best time".into(),
                description: String::new(),
                priority: 0,
                definition: json!({
                    "trigger": {"type": "event", "event": "Signed Up"},
                    "start": "welcome",
                    "steps": [{"id": "welcome", "type": "send", "template": "welcome",
                               "best_time": {"within_hours": 24}}],
                    "settings": {"quiet_hours": {"start": "22:00", "end": "07:00"}}
                }),
            })
            .await
            .unwrap();
        app.journey_action(journey.id, JourneyAction::Publish, None)
            .await
            .unwrap();
        // A round registers the journey's trigger, so ingestion queues its events.
        settle(&journeys).await;

        clock.set(t0);
        ingest(
            &*store,
            vec![json!({"type": "track", "userId": "ada", "event": "Signed Up"})],
            t0,
        )
        .await;
        settle(&journeys).await;
        let runs = store.contact_runs(ada.id, Some(journey.id)).await.unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
        let Ok(RunPhase::Started(state)) = RunPhase::from_stored(&runs[0].state) else {
            panic!("{:?}", runs[0].state);
        };
        let waiting = state.waiting.expect("the send waits");
        assert_eq!(waiting.due, t0 + 13 * HOUR, "held until 19:00 UTC: {waiting:?}");
        assert_eq!(
            waiting.what,
            WaitingFor::Send {
                reason: DeferReason::BestTime
            }
        );
        deliverer.clone().run_once().await.unwrap();
        let queued = messages(&*store).await;
        assert!(queued.is_empty(), "nothing queued before the best hour: {queued:?}");

        // A minute before: still held.
        clock.set(t0 + 13 * HOUR - 60_000);
        settle(&journeys).await;
        deliverer.clone().run_once().await.unwrap();
        assert!(messages(&*store).await.is_empty());
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(mails(sink.2.path()).is_empty(), "no mail before the best hour");

        // At 19:00 the timer fires and the welcome goes out through SMTP.
        clock.set(t0 + 13 * HOUR);
        settle(&journeys).await;
        deliverer.clone().run_once().await.unwrap();
        let sent = messages(&*store).await;
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].sent_at, Some(t0 + 13 * HOUR), "{:?}", sent[0]);
        let got = wait_for_mails(sink.2.path(), 1);
        assert_eq!(got.len(), 1);
        let mail = got[0].to_string();
        assert!(mail.contains("ada@x.example") && mail.contains("Welcome"), "{mail}");

        store.close().await;
        if let Some(schema) = schema {
            schema.drop_schema().await.unwrap();
        }
    }
}
