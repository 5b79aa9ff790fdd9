//! The campaign engine against a real store: SQLite always, PostgreSQL (a fresh
//! schema) when `NUDGE_TEST_DATABASE_URL` is set. The clock is manual; rounds are run
//! by hand.

use nudge_core::campaign::{CampaignStatus, Schedule};
use nudge_core::protocol::{CampaignCounter, MessageEvent, MessageOrigin};
use nudge_core::{ManualClock, Millis};
use nudge_engine::{CampaignEngine, CampaignEngineConfig, FREQUENCY_CAPS};
use nudge_store::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// 2027-03-15T12:00:00Z.
const T0: Millis = 1_805_112_000_000;

struct Backend {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<scratch::PgScratchSchema>,
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
        let schema = scratch::PgScratchSchema::create(&url, "nudge_campaign_test")
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

impl Backend {
    async fn finish(self) {
        self.store.close().await;
        if let Some(schema) = &self.pg_schema {
            schema.drop_schema().await.unwrap();
        }
    }
}

/// `n` contacts with e-mail addresses (and `extra` traits), all in one segment.
async fn audience(store: &dyn Store, n: usize, extra: Value) -> (i64, Vec<i64>) {
    let calls: Vec<Value> = (0..n)
        .map(|i| {
            let mut traits = json!({"email": format!("r{i}@example.com")});
            for (k, v) in extra.as_object().unwrap() {
                traits[k] = v.clone();
            }
            json!({"type": "identify", "userId": format!("r{i}"), "traits": traits})
        })
        .collect();
    let batch = nudge_core::parse_batch(
        &serde_json::to_vec(&json!({"batch": calls})).unwrap(),
        &nudge_core::Received { at: T0, ip: None },
        &mut {
            let mut k = 0;
            move || {
                k += 1;
                format!("m{k}")
            }
        },
    )
    .unwrap();
    store.ingest(batch.messages, T0).await.unwrap();
    let segment = store
        .create_segment(
            NewSegment {
                name: "Everyone".into(),
                description: String::new(),
                definition: nudge_core::segment::parse_condition(
                    &json!({"type": "trait", "trait": "email", "op": "exists"}),
                )
                .unwrap(),
                administrative: false,
            },
            T0,
        )
        .await
        .unwrap()
        .id;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            store
                .find_contact(&Lookup::UserId(format!("r{i}")))
                .await
                .unwrap()
                .unwrap()
                .id,
        );
    }
    store
        .apply_evaluations(
            ids.iter()
                .map(|&id| ContactEvaluation {
                    contact_id: id,
                    dirty_since: None,
                    results: vec![(segment, true, None)],
                })
                .collect(),
            T0,
        )
        .await
        .unwrap();
    (segment, ids)
}

async fn template(store: &dyn Store, name: &str) -> i64 {
    store
        .create_template(
            NewTemplate {
                name: name.into(),
                description: String::new(),
                channel: "email".into(),
                transactional: false,
                topic: None,
                content: json!({"channel": "email", "subject": name, "html": "<a href=\"https://shop.example\">Shop</a>"}),
            },
            T0,
        )
        .await
        .unwrap()
        .id
}

/// A campaign created and sent (as the application layer does) with `definition`.
async fn launch(store: &dyn Store, definition: Value, schedule: Schedule, templates: Vec<(i64, i64)>) -> i64 {
    let c = store
        .create_campaign(
            NewCampaign {
                name: "Spring sale".into(),
                description: String::new(),
                definition,
            },
            T0,
        )
        .await
        .unwrap();
    let start = schedule.start(T0);
    let to = if start > T0 {
        CampaignStatus::Scheduled
    } else {
        CampaignStatus::Sending
    };
    store
        .set_campaign_status(
            c.id,
            CampaignStatus::Draft,
            to,
            Some(CampaignLaunch {
                schedule,
                start_at: start,
                templates,
            }),
            T0,
        )
        .await
        .unwrap()
        .unwrap();
    c.id
}

/// Runs rounds until one does nothing; how many rounds did something.
async fn settle(engine: &CampaignEngine) -> usize {
    for busy in 0..1000 {
        if !engine.run_once().await.unwrap().busy() {
            return busy;
        }
    }
    panic!("the campaign engine never settled");
}

async fn campaign_messages(store: &dyn Store, campaign: i64) -> Vec<Message> {
    let page = store
        .list_messages(&MessageQuery {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    page.items
        .into_iter()
        .filter(|m| matches!(m.origin, Some(MessageOrigin::Campaign { campaign_id, .. }) if campaign_id == campaign))
        .collect()
}

fn variant(m: &Message) -> u8 {
    match m.origin {
        Some(MessageOrigin::Campaign { variant, .. }) => variant,
        _ => panic!("not a campaign message"),
    }
}

/// An A/B test end to end: the snapshot in pages, the test share queued at once, the
/// remainder held until the test ends, the variant whose links were clicked chosen by
/// the rule, the remainder sent the winner, the campaign completed, one message per
/// recipient, nothing queued twice when rounds run again.
#[tokio::test]
async fn an_ab_test_sends_the_winner_to_the_rest() {
    for b in backends().await {
        let s = &*b.store;
        let (segment, ids) = audience(s, 300, json!({})).await;
        let (a, bb) = (template(s, "A").await, template(s, "B").await);
        let clock = Arc::new(ManualClock::new(T0));
        let engine = CampaignEngine::new(
            b.store.clone(),
            clock.clone(),
            CampaignEngineConfig {
                snapshot_page: 70,
                batch: 40,
                ..Default::default()
            },
        );
        let id = launch(
            s,
            json!({
                "audience": {"segments": [segment]},
                "variants": [{"name": "A", "template": a}, {"name": "B", "template": bb}],
                "test": {"share": 50, "metric": "click_rate", "duration": {"minutes": 30}},
                "holdout": 10
            }),
            Schedule::Now,
            vec![(a, 1), (bb, 1)],
        )
        .await;
        settle(&engine).await;
        let c = s.campaign(id).await.unwrap().unwrap();
        assert!(c.snapshot_done);
        assert_eq!(c.audience, 300);
        assert!((15..=45).contains(&c.held_out), "about 10 % held out: {}", c.held_out);
        assert_eq!(c.test_ends_at, Some(T0 + 30 * 60_000));
        let test = campaign_messages(s, id).await;
        assert!(
            (110..=190).contains(&test.len()),
            "about half in the test: {}",
            test.len()
        );
        assert_eq!(c.queued as usize, test.len());
        assert_eq!(c.status, CampaignStatus::Sending, "the remainder waits for the winner");

        // B's recipients click; A's do not.
        for m in test.iter().filter(|m| variant(m) == 1).take(40) {
            s.record_message_event(
                m.id,
                &MessageEvent::Clicked {
                    link: 0,
                    url: "https://example.com/".into(),
                },
                format!("click-{}", m.id),
                T0 + 60_000,
            )
            .await
            .unwrap();
        }
        let counted = s.campaign_stats(id).await.unwrap();
        assert_eq!(counted.get(1, CampaignCounter::UniqueClicked), 40.0);

        // Not before the test ends; then the winner, and the rest get it.
        clock.set(T0 + 29 * 60_000);
        settle(&engine).await;
        assert_eq!(s.campaign(id).await.unwrap().unwrap().winner, None);
        clock.set(T0 + 30 * 60_000);
        settle(&engine).await;
        let c = s.campaign(id).await.unwrap().unwrap();
        assert_eq!(c.winner, Some(1));
        assert_eq!(c.decision.as_ref().unwrap()["decided_by"]["by"], "rule");
        assert_eq!(c.status, CampaignStatus::Completed);
        assert_eq!((c.pending(), c.skipped), (0, 0));

        let all = campaign_messages(s, id).await;
        assert_eq!(all.len() as u64, c.audience - c.held_out);
        let mut per_contact: HashMap<i64, usize> = HashMap::new();
        for m in &all {
            *per_contact.entry(m.contact_id).or_default() += 1;
        }
        assert!(per_contact.values().all(|&n| n == 1), "one message per recipient");
        let remainder: Vec<&Message> = all.iter().filter(|m| !test.iter().any(|t| t.id == m.id)).collect();
        assert!(!remainder.is_empty());
        assert!(remainder.iter().all(|m| variant(m) == 1 && m.template_id == bb));
        // The holdout got nothing.
        let held: Vec<i64> = ids.iter().copied().filter(|id| !per_contact.contains_key(id)).collect();
        assert_eq!(held.len() as u64, c.held_out);
        // Held-out contacts' conversions are the holdout's (the lift's baseline); a
        // recipient's are its variant's.
        let settings = nudge_core::attribution::ConversionSettings::default();
        for (i, contact) in held.iter().take(3).enumerate() {
            let conversion = NewConversion {
                event_id: 9_000_000 + i as i64,
                contact_id: *contact,
                name: "Order Completed".into(),
                at: T0 + 3_600_000,
                revenue: Some(20.0),
            };
            s.record_conversion(conversion, settings.clone(), T0 + 3_600_000)
                .await
                .unwrap();
        }
        let counted = s.campaign_stats(id).await.unwrap();
        assert_eq!(
            (
                counted.holdout(CampaignCounter::Converted),
                counted.holdout(CampaignCounter::Revenue)
            ),
            (3.0, 60.0)
        );
        assert_eq!(
            counted.get(0, CampaignCounter::Converted) + counted.get(1, CampaignCounter::Converted),
            0.0
        );

        // Rounds after the end do nothing.
        assert_eq!(settle(&engine).await, 0);
        assert_eq!(campaign_messages(s, id).await.len(), all.len());
        b.finish().await;
    }
}

/// A local-time schedule starts where the time is reached first and queues each
/// recipient at that time in their own zone; the throttle spreads the queue.
#[tokio::test]
async fn local_time_and_the_throttle() {
    for b in backends().await {
        let s = &*b.store;
        let (segment, _) = audience(s, 120, json!({"timezone": "America/New_York"})).await;
        let a = template(s, "A").await;
        let clock = Arc::new(ManualClock::new(T0));
        let engine = CampaignEngine::new(b.store.clone(), clock.clone(), CampaignEngineConfig::default());
        // 2027-03-16 09:00 in New York is 13:00 UTC (daylight time).
        let id = launch(
            s,
            json!({"audience": {"segments": [segment]}, "variants": [{"name": "A", "template": a}],
                   "throttle_per_hour": 3600}),
            Schedule::LocalTime {
                date: "2027-03-16".into(),
                time: "09:00".into(),
            },
            vec![(a, 1)],
        )
        .await;
        let c = s.campaign(id).await.unwrap().unwrap();
        assert_eq!(c.status, CampaignStatus::Scheduled);
        let ny_nine = T0 + 25 * 3_600_000;
        assert_eq!(c.start_at, Some(ny_nine - 18 * 3_600_000), "09:00 at UTC+14");
        assert_eq!(engine.run_once().await.unwrap().next_due, c.start_at);

        clock.set(c.start_at.unwrap());
        settle(&engine).await;
        let c = s.campaign(id).await.unwrap().unwrap();
        assert_eq!((c.status, c.audience, c.queued), (CampaignStatus::Sending, 120, 0));
        assert_eq!(s.next_campaign_due(id, true).await.unwrap(), Some(ny_nine));

        // 3,600 an hour: 60 at once, then one a second.
        clock.set(ny_nine);
        settle(&engine).await;
        assert_eq!(s.campaign(id).await.unwrap().unwrap().queued, 60);
        clock.set(ny_nine + 30_000);
        settle(&engine).await;
        assert_eq!(s.campaign(id).await.unwrap().unwrap().queued, 90);
        clock.set(ny_nine + 3_600_000);
        settle(&engine).await;
        let c = s.campaign(id).await.unwrap().unwrap();
        assert_eq!((c.queued, c.status), (120, CampaignStatus::Completed));
        b.finish().await;
    }
}

/// Frequency caps defer a recipient while the wait stays within the campaign's
/// limit, and skip it (reason kept) past it; a recipient who left the audience after
/// the snapshot is skipped; a paused campaign queues nothing.
#[tokio::test]
async fn caps_defer_then_skip_and_pause_holds() {
    for b in backends().await {
        let s = &*b.store;
        let (segment, ids) = audience(s, 4, json!({})).await;
        let a = template(s, "A").await;
        s.put_setting(FREQUENCY_CAPS, Some(r#"[{"max": 1, "per": "day"}]"#))
            .await
            .unwrap();
        // r0 had a message an hour ago; r1 had one 23 hours ago.
        for (contact, ago) in [(ids[0], 3_600_000), (ids[1], 23 * 3_600_000)] {
            s.enqueue_message(
                NewMessage {
                    idempotency_key: format!("earlier-{contact}"),
                    contact_id: contact,
                    template_id: a,
                    template_version: 1,
                    channel: "email".into(),
                    transactional: false,
                    data: json!({}),
                    origin: None,
                },
                T0 - ago,
            )
            .await
            .unwrap();
        }
        let clock = Arc::new(ManualClock::new(T0));
        let engine = CampaignEngine::new(
            b.store.clone(),
            clock.clone(),
            CampaignEngineConfig {
                snapshot_page: 10,
                batch: 10,
                ..Default::default()
            },
        );
        let id = launch(
            s,
            json!({"audience": {"segments": [segment]}, "variants": [{"name": "A", "template": a}],
                   "cap_defer_limit": {"hours": 2}}),
            Schedule::Now,
            vec![(a, 1)],
        )
        .await;
        // The snapshot is taken; then r3 leaves the segment before its message is built.
        while !s.campaign(id).await.unwrap().unwrap().snapshot_done {
            engine.run_once().await.unwrap();
        }
        s.apply_evaluations(
            vec![ContactEvaluation {
                contact_id: ids[3],
                dirty_since: None,
                results: vec![(segment, false, None)],
            }],
            T0,
        )
        .await
        .unwrap();
        settle(&engine).await;
        let c = s.campaign(id).await.unwrap().unwrap();
        assert_eq!((c.queued, c.skipped, c.pending()), (1, 2, 1));
        let left = s.campaign_recipient(id, ids[3]).await.unwrap().unwrap();
        assert_eq!(left.reason.as_deref(), Some("left_audience"));
        let skipped = s.campaign_recipient(id, ids[0]).await.unwrap().unwrap();
        assert_eq!(
            (skipped.state.as_str(), skipped.reason.as_deref()),
            ("skipped", Some("frequency_cap"))
        );
        assert_eq!(s.next_campaign_due(id, true).await.unwrap(), Some(T0 + 3_600_000));

        // Paused: nothing more, even when due.
        s.set_campaign_status(id, CampaignStatus::Sending, CampaignStatus::Paused, None, T0)
            .await
            .unwrap()
            .unwrap();
        clock.set(T0 + 3_600_000);
        settle(&engine).await;
        assert_eq!(s.campaign(id).await.unwrap().unwrap().queued, 1);
        s.set_campaign_status(id, CampaignStatus::Paused, CampaignStatus::Sending, None, T0)
            .await
            .unwrap()
            .unwrap();
        settle(&engine).await;
        let c = s.campaign(id).await.unwrap().unwrap();
        assert_eq!((c.queued, c.skipped, c.status), (2, 2, CampaignStatus::Completed));
        b.finish().await;
    }
}

/// Conversions are attributed by last touch as the engine takes them from the inbox:
/// inside the delivery window to the campaign message (counted toward its variant,
/// revenue summed per recipient), outside it to nothing; each once.
#[tokio::test]
async fn conversions_are_attributed_to_the_last_touch() {
    for b in backends().await {
        let s = &*b.store;
        let (segment, ids) = audience(s, 2, json!({})).await;
        let a = template(s, "A").await;
        let clock = Arc::new(ManualClock::new(T0));
        let campaigns = CampaignEngine::new(b.store.clone(), clock.clone(), CampaignEngineConfig::default());
        let journeys = nudge_engine::JourneyEngine::new(
            b.store.clone(),
            clock.clone(),
            nudge_engine::JourneyEngineConfig::default(),
        );
        // The engine listens for the conversion events before they arrive.
        journeys.run_once().await.unwrap();
        let id = launch(
            s,
            json!({"audience": {"segments": [segment]}, "variants": [{"name": "A", "template": a}]}),
            Schedule::Now,
            vec![(a, 1)],
        )
        .await;
        settle(&campaigns).await;
        let sent: Vec<MessageUpdate> = campaign_messages(s, id)
            .await
            .iter()
            .map(|m| MessageUpdate {
                id: m.id,
                state: MessageState::Sent,
                retry_at: None,
                recipient: None,
                error: None,
                rendered: None,
                suppress: None,
                provider_id: None,
            })
            .collect();
        assert_eq!(sent.len(), 2);
        s.update_messages(sent, T0).await.unwrap();

        let order = |user: &str, key: &str, at: Millis, props: Value| {
            json!({"type": "track", "userId": user, "event": "Order Completed", "messageId": key,
                   "timestamp": jiff::Timestamp::from_millisecond(at).unwrap().to_string(), "properties": props})
        };
        let batch = json!({"batch": [
            order("r0", "o1", T0 + 3_600_000, json!({"revenue": 30})),
            order("r0", "o2", T0 + 7_200_000, json!({"total": 20})),
            order("r1", "o3", T0 + 2 * 86_400_000, json!({"revenue": 10})),
        ]});
        let calls = nudge_core::parse_batch(
            &serde_json::to_vec(&batch).unwrap(),
            &nudge_core::Received {
                at: T0 + 3 * 86_400_000,
                ip: None,
            },
            &mut || "x".to_string(),
        )
        .unwrap();
        s.ingest(calls.messages, T0 + 3 * 86_400_000).await.unwrap();
        clock.set(T0 + 3 * 86_400_000);
        journeys.run_once().await.unwrap();
        journeys.run_once().await.unwrap();

        let stats = s.campaign_stats(id).await.unwrap();
        let got: Vec<f64> = [
            CampaignCounter::Conversions,
            CampaignCounter::Converted,
            CampaignCounter::Revenue,
            CampaignCounter::RevenueSquares,
        ]
        .iter()
        .map(|&k| stats.get(0, k))
        .collect();
        assert_eq!(got, vec![2.0, 1.0, 50.0, 2500.0]);
        let _ = ids;
        b.finish().await;
    }
}
