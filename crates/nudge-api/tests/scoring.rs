//! Lead scoring through the admin API: rules and scores are created, checked (bad
//! input names its field), applied to what the tracking API stores, and read back on
//! the contact; decay is materialised when the (injected) clock reaches the crossing.

use nudge_core::Millis;
use serde_json::json;

mod common;
use common::*;

const DAY: Millis = 86_400_000;

#[tokio::test]
async fn rules_and_scores_through_the_api() {
    for app in spawn_apps().await {
        // Bad input gets a clear error naming what is wrong.
        for (body, field) in [
            (
                json!({"name": "x", "points": 0, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "once"}}),
                "points",
            ),
            (
                json!({"name": "x", "points": 5, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "repeat", "cap": {"max": 0, "per": "day"}}}),
                "frequency.cap.max",
            ),
            (
                json!({"name": "x", "points": 5, "score": "engagement", "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "once"}}),
                "score",
            ),
            (
                json!({"name": "x", "points": 5, "trigger": {"type": "email_opened", "template": 999}, "frequency": {"type": "once"}}),
                "trigger.template",
            ),
            (
                json!({"name": "x", "points": "five", "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "once"}}),
                "points",
            ),
            (
                json!({"name": "x", "points": 5, "trigger": {"type": "event", "event": "A"}, "frequency": {"type": "once"}, "colour": "red"}),
                "colour",
            ),
        ] {
            let (s, v) = app.post("/api/v1/scoring-rules", body.clone()).await;
            assert_eq!(s, 400, "{body}: {v}");
            assert_eq!(v["error"]["code"], "invalid_field", "{v}");
            assert_eq!(v["error"]["field"], field, "{v}");
        }
        let (s, v) = app
            .put(
                "/api/v1/scores/engagement",
                json!({"stages": [{"name": "low"}, {"name": "high"}]}),
            )
            .await;
        assert_eq!((s, v["error"]["field"].clone()), (400, json!("stages[1].from")), "{v}");
        let (s, v) = app.put("/api/v1/scores/engagement", json!({"name": "other"})).await;
        assert_eq!((s, v["error"]["field"].clone()), (400, json!("name")), "{v}");

        // Scores: lead_score with decay and stages; engagement without.
        let (s, v) = app
            .put(
                "/api/v1/scores/lead_score",
                json!({"half_life_days": 10, "stages": [{"name": "cold"}, {"name": "warm", "from": 20}, {"name": "hot", "from": 50}]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["trait"], "lead_score");
        let (s, v) = app.put("/api/v1/scores/engagement", json!({})).await;
        assert_eq!((s, v["trait"].clone()), (200, json!("engagement_score")), "{v}");
        assert_eq!(app.get("/api/v1/scores").await["data"].as_array().unwrap().len(), 2);

        let (s, demo) = app
            .post(
                "/api/v1/scoring-rules",
                json!({"name": "Demo requested", "points": 60, "trigger": {"type": "event", "event": "Demo Requested"}, "frequency": {"type": "once"}}),
            )
            .await;
        assert_eq!(s, 201, "{demo}");
        assert_eq!(
            (demo["score"].clone(), demo["enabled"].clone()),
            (json!("lead_score"), json!(true))
        );
        let (s, pricing) = app
            .post(
                "/api/v1/scoring-rules",
                json!({"name": "Pricing", "points": 2, "score": "engagement", "trigger": {"type": "page_view", "url": "/pricing*"}, "frequency": {"type": "repeat", "cap": {"max": 1, "per": "day"}}}),
            )
            .await;
        assert_eq!(s, 201, "{pricing}");
        let id = pricing["id"].as_i64().unwrap();
        assert_eq!(app.get(&format!("/api/v1/scoring-rules/{id}")).await["name"], "Pricing");
        assert_eq!(
            app.get("/api/v1/scoring-rules").await["data"].as_array().unwrap().len(),
            2
        );
        // A score rules feed cannot be deleted.
        let (s, v) = app.delete("/api/v1/scores/engagement").await;
        assert_eq!(s, 409, "{v}");

        app.track(json!({"batch": [
            {"type": "identify", "userId": "ada", "traits": {"email": "ada@example.com"}},
            {"type": "track", "userId": "ada", "event": "Demo Requested"},
            {"type": "page", "userId": "ada", "name": "Pricing", "properties": {"url": "https://ada.test/pricing"}},
            {"type": "page", "userId": "ada", "name": "Pricing", "properties": {"url": "https://ada.test/pricing"}}
        ]}))
        .await;
        let contact = app
            .store
            .find_contact(&nudge_store::Lookup::UserId("ada".into()))
            .await
            .unwrap()
            .unwrap();
        let scores = app.get(&format!("/api/v1/contacts/{}/scores", contact.id)).await;
        let by_name = |n: &str| {
            scores["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["score"] == n)
                .unwrap()
                .clone()
        };
        let lead = by_name("lead_score");
        assert_eq!(
            (lead["value"].clone(), lead["stage"].clone()),
            (json!(60.0), json!("hot")),
            "{scores}"
        );
        assert!(lead["next_decay_at"].is_string(), "{lead}");
        assert_eq!(by_name("engagement")["value"], json!(2.0), "capped at one a day");

        // Decay is materialised when it crosses 50, at the moment the API announced.
        let due = nudge_core::parse_instant(lead["next_decay_at"].as_str().unwrap()).unwrap();
        app.at(due).await;
        let trait_now = |app: &App| {
            let store = app.store.clone();
            async move {
                store.contact(contact.id).await.unwrap().unwrap().traits["lead_score"]
                    .as_f64()
                    .unwrap()
            }
        };
        let v = trait_now(&app).await;
        assert!(v < 50.0 && v > 49.99, "{v}");
        // Ten days in, the value is halved (30: warm); the trait keeps the value of the
        // last crossing (the next one is at 20).
        app.at(T0 + 10 * DAY).await;
        let scores = app.get(&format!("/api/v1/contacts/{}/scores", contact.id)).await;
        let lead = scores["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["score"] == "lead_score")
            .unwrap()
            .clone();
        assert_eq!(
            (lead["value"].clone(), lead["stage"].clone()),
            (json!(30.0), json!("warm")),
            "{lead}"
        );
        assert_eq!(lead["materialised"].as_f64().unwrap(), v, "{lead}");
        // The history, newest first: the decay across 50, then the rules' points.
        let history = scores["history"].as_array().unwrap();
        let newest = history.iter().find(|h| h["score"] == "lead_score").unwrap();
        assert_eq!(
            (&newest["reason"], &newest["previous"], &newest["rules"]),
            (&json!("decay"), &json!(60.0), &json!([])),
            "{newest}"
        );
        assert!(
            history
                .iter()
                .any(|h| h["reason"] == "rules" && h["rules"][0]["points"].is_i64()),
            "{scores}"
        );

        // Update, disable and delete.
        let (s, v) = app
            .put(
                &format!("/api/v1/scoring-rules/{id}"),
                json!({"name": "Pricing", "points": 2, "score": "engagement", "enabled": false, "trigger": {"type": "page_view", "url": "/pricing*"}, "frequency": {"type": "once"}}),
            )
            .await;
        assert_eq!((s, v["enabled"].clone()), (200, json!(false)), "{v}");
        let (s, _) = app.delete(&format!("/api/v1/scoring-rules/{id}")).await;
        assert_eq!(s, 204);
        let (s, v) = app.delete(&format!("/api/v1/scoring-rules/{id}")).await;
        assert_eq!((s, v["error"]["code"].clone()), (404, json!("not_found")));
        let (s, _) = app.delete("/api/v1/scores/engagement").await;
        assert_eq!(s, 204);
        let (s, v) = app
            .call(reqwest::Method::GET, "/api/v1/contacts/999999/scores", None)
            .await;
        assert_eq!((s, v["error"]["code"].clone()), (404, json!("not_found")));
        app.finish().await;
    }
}
