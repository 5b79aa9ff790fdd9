//! Lead-score decay through the engines against a real store (SQLite always,
//! PostgreSQL in a fresh schema when `NUDGE_TEST_DATABASE_URL` is set), on a manual
//! clock: the score is materialised by its durable timer at the computed moment, the
//! segment "score ≥ 50" loses the contact at that moment, and `Lead Stage Changed`
//! starts a journey.

use nudge_core::scoring::{DAY_MS, next_crossing, parse_rule, parse_score};
use nudge_core::{Clock, ManualClock, Millis, parse_batch};
use nudge_engine::{JourneyEngine, JourneyEngineConfig, SegmentEngine, SegmentEngineConfig};
use nudge_store::*;
use serde_json::json;
use std::sync::Arc;

/// 2027-03-15T12:00:00Z.
const T0: Millis = 1_805_112_000_000;

async fn backends() -> Vec<scratch::TestStore> {
    scratch::test_stores("nudge_scoring_test").await.unwrap()
}

async fn members(store: &dyn Store, segment: i64) -> Vec<i64> {
    store.segment_member_page(segment, None, 100).await.unwrap().items
}

#[tokio::test]
async fn decay_crosses_a_stage_at_the_computed_moment_and_the_segment_and_journey_follow() {
    for (store, _dir, schema) in backends().await {
        eprintln!("on {}", store.backend());
        let clock = Arc::new(ManualClock::new(T0));
        let segments = SegmentEngine::new(store.clone(), clock.clone(), SegmentEngineConfig::default());
        let journeys = JourneyEngine::new(store.clone(), clock.clone(), JourneyEngineConfig::default());
        // Half-life 2 days; warm from 20, hot from 50.
        store
            .put_score(
                parse_score(&json!({"name": "lead_score", "half_life_days": 2,
                    "stages": [{"name": "cold"}, {"name": "warm", "from": 20}, {"name": "hot", "from": 50}]}))
                .unwrap(),
                T0,
            )
            .await
            .unwrap();
        store
            .create_scoring_rule(
                parse_rule(
                    &json!({"name": "demo", "points": 70, "trigger": {"type": "event", "event": "Demo Requested"},
                    "frequency": {"type": "once"}}),
                )
                .unwrap(),
                T0,
            )
            .await
            .unwrap();
        let hot = store
            .create_segment(
                NewSegment {
                    name: "Hot leads".into(),
                    description: String::new(),
                    definition: nudge_core::segment::parse_condition(
                        &json!({"type": "lead_score", "op": "greater_or_equal", "value": 50}),
                    )
                    .unwrap(),
                    administrative: false,
                },
                T0,
            )
            .await
            .unwrap();
        let j = store
            .create_journey(
                NewJourney {
                    name: "Cooling down".into(),
                    description: String::new(),
                    priority: 0,
                    definition: json!({
                        "trigger": {"type": "event", "event": "Lead Stage Changed",
                            "where": [{"property": "to", "op": "equals", "value": "warm"}]},
                        "start": "tag",
                        "steps": [{"id": "tag", "type": "update_contact", "add_tags": ["cooling"]}]
                    }),
                },
                T0,
            )
            .await
            .unwrap();
        store
            .set_journey_status(j.id, JourneyStatus::Live, true, T0)
            .await
            .unwrap()
            .unwrap();
        // The journey engine's first round publishes the event names it acts on.
        journeys.run_once().await.unwrap();

        let calls = parse_batch(
            &serde_json::to_vec(&json!({"batch": [{"type": "track", "userId": "lead", "event": "Demo Requested"}]}))
                .unwrap(),
            &nudge_core::Received { at: T0, ip: None },
            &mut || "m-1".to_string(),
        )
        .unwrap()
        .messages;
        store.ingest(calls, T0).await.unwrap();
        let lead = store
            .find_contact(&Lookup::UserId("lead".into()))
            .await
            .unwrap()
            .unwrap();
        while segments.run_once().await.unwrap().0 > 0 {}
        assert_eq!(members(&*store, hot.id).await, [lead.id], "70 is hot");
        // cold → hot is not what the journey waits for.
        while journeys.run_once().await.unwrap() != Default::default() {}
        assert!(store.contact_runs(lead.id, Some(j.id)).await.unwrap().is_empty());

        // 70 decays below 50 at T0 + 2 days · log2(70/50) (+1 ms): computed, not polled.
        let due = next_crossing(70.0, T0, Some(2 * DAY_MS), &[50.0], T0).unwrap();
        let expected = T0 + (2.0 * DAY_MS as f64 * (70.0f64 / 50.0).log2()).floor() as Millis + 1;
        assert_eq!(due, expected);
        assert_eq!(store.next_score_timer().await.unwrap(), Some(due));
        clock.set(due - 1);
        while segments.run_once().await.unwrap().0 > 0 {}
        assert_eq!(
            members(&*store, hot.id).await,
            [lead.id],
            "still hot a millisecond before"
        );
        assert_eq!(
            store.contact(lead.id).await.unwrap().unwrap().traits["lead_score"],
            json!(70.0)
        );

        clock.set(due);
        while segments.run_once().await.unwrap().0 > 0 {}
        assert!(
            members(&*store, hot.id).await.is_empty(),
            "the segment lost the lead at the crossing"
        );
        let history = store.contact_memberships(lead.id).await.unwrap();
        assert_eq!(history[0].exited_at, Some(due));
        let score = store.contact(lead.id).await.unwrap().unwrap().traits["lead_score"]
            .as_f64()
            .unwrap();
        assert!(score < 50.0 && score > 49.99, "{score}");
        let events = store
            .contact_events(
                lead.id,
                &EventQuery {
                    before: None,
                    limit: 100,
                },
            )
            .await
            .unwrap()
            .items;
        let stage = events
            .iter()
            .find(|e| e.name.as_deref() == Some("Lead Stage Changed") && e.properties["to"] == json!("warm"))
            .expect("hot → warm recorded");
        assert_eq!(stage.properties["from"], json!("hot"));
        assert_eq!(stage.timestamp, due);

        // hot → warm started the journey.
        while journeys.run_once().await.unwrap() != Default::default() {}
        let runs = store.contact_runs(lead.id, Some(j.id)).await.unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].entered_at, due);
        // The next crossing is warm → cold, at 20.
        assert_eq!(
            store.next_score_timer().await.unwrap(),
            next_crossing(70.0, T0, Some(2 * DAY_MS), &[20.0], T0)
        );
        assert!(clock.now() == due);
        store.close().await;
        if let Some(s) = schema {
            s.drop_schema().await.unwrap();
        }
    }
}
