//! Customer lifetime value through the admin API (SQLite, and PostgreSQL when
//! `NUDGE_TEST_DATABASE_URL` is set): bad input names its field, no model is a clear
//! 404, too few customers a 422; purchases tracked through `/v1/batch` are fitted, the
//! model is read back, and the predictions are traits a segment condition reads.

use nudge_core::Millis;
use serde_json::{Value, json};

mod common;
use common::*;

const DAY: Millis = 86_400_000;

#[tokio::test]
async fn fitting_and_reading_the_model_through_the_api() {
    for app in spawn_apps().await {
        let (s, v) = app.call(reqwest::Method::GET, "/api/v1/predictions/model", None).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")), "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("POST /api/v1/predictions/fit")
        );

        for (body, field) in [
            (json!({"unit": "months"}), "unit"),
            (json!({"unit": 7}), "unit"),
            (json!({"until": "last tuesday"}), "until"),
            (json!({"until": "2099-01-01"}), "until"),
            (json!({"until": 5}), "until"),
            (json!({"colour": "red"}), "colour"),
            (json!([1]), "$"),
        ] {
            let (s, v) = app.post("/api/v1/predictions/fit", body.clone()).await;
            assert_eq!(s, 400, "{body}: {v}");
            assert_eq!(v["error"]["code"], "invalid_field", "{v}");
            assert_eq!(v["error"]["field"], field, "{v}");
        }
        let (s, v) = app.call(reqwest::Method::POST, "/api/v1/predictions/fit", None).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("not_enough_data")), "{v}");

        // 24 customers over the last months; every other one bought again, at
        // intervals that grow with their number, for the values the spec names.
        let mut batch = Vec::new();
        for i in 0..24i64 {
            let first = T0 - (200 - 3 * i) * DAY;
            let mut at = vec![first];
            if i % 2 == 0 {
                for k in 1..=(1 + i % 5) {
                    at.push(first + k * (5 + i) * DAY);
                }
            }
            for (k, t) in at.into_iter().enumerate() {
                let value = 10.0 + i as f64 + k as f64;
                let props = match k % 3 {
                    0 => json!({"revenue": value}),
                    1 => json!({"total": value}),
                    _ => json!({"value": value}),
                };
                batch.push(
                    json!({"type": "track", "userId": format!("c{i}"), "event": "Order Completed",
                    "messageId": format!("o-{i}-{k}"), "timestamp": nudge_core::format_millis(t), "properties": props}),
                );
            }
        }
        app.track(json!({ "batch": batch })).await;

        let (s, fitted) = app.post("/api/v1/predictions/fit", json!({"unit": "days"})).await;
        assert_eq!(s, 200, "{fitted}");
        assert_eq!(fitted["unit"], "days");
        assert_eq!(fitted["customers"], 24);
        assert_eq!(fitted["repeat_customers"], 12);
        assert_eq!(fitted["predicted_contacts"], 24);
        assert_eq!(fitted["until"], nudge_core::format_millis(T0));
        for p in ["r", "alpha", "a", "b", "log_likelihood"] {
            assert!(fitted["bgnbd"][p].is_number(), "{p}: {fitted}");
        }
        for p in ["p", "q", "gamma", "log_likelihood"] {
            assert!(fitted["gamma_gamma"][p].is_number(), "{p}: {fitted}");
        }
        let mut model = app.get("/api/v1/predictions/model").await;
        let mut expected = fitted.clone();
        expected.as_object_mut().unwrap().remove("predicted_contacts");
        model.as_object_mut().unwrap();
        assert_eq!(model, expected);

        // The predictions are traits: a segment condition reads them.
        let (s, high) = app
            .post(
                "/api/v1/segments/preview",
                json!({"definition": {"type": "trait", "trait": "predicted_p_alive", "op": "greater_or_equal", "value": 0}}),
            )
            .await;
        assert_eq!(s, 200, "{high}");
        assert_eq!(high["count"], 24, "every customer has a P(alive): {high}");
        let (s, once) = app
            .post(
                "/api/v1/segments/preview",
                json!({"definition": {"type": "trait", "trait": "predicted_churn_risk", "op": "equals", "value": 0}}),
            )
            .await;
        assert_eq!(s, 200, "{once}");
        assert_eq!(
            once["count"], 12,
            "one purchase only: alive by BG/NBD, no churn risk: {once}"
        );
        let contact = app
            .store
            .find_contact(&nudge_store::Lookup::UserId("c2".into()))
            .await
            .unwrap()
            .unwrap();
        for t in nudge_core::predict::TRAITS {
            if t != "predicted_next_order_at" {
                assert!(
                    contact.traits.get(t).is_some_and(Value::is_number) || t == "predicted_churn_band",
                    "{t}: {:?} {fitted}",
                    contact.traits
                );
            }
        }
        assert!(["low", "medium", "high"].contains(&contact.traits["predicted_churn_band"].as_str().unwrap()));
        app.finish().await;
    }
}

/// A contact's send-time profile through the admin API: a bad id is a 400 naming it,
/// an unknown contact a 404; without engagements the workspace's profile at confidence
/// 0; page views and clicks tracked through `/v1/batch`, once the send-time engine has
/// counted them, make the contact's hour the best with the confidence they earn.
#[tokio::test]
async fn a_contacts_send_time_through_the_api() {
    for app in spawn_apps().await {
        let (s, v) = app
            .call(reqwest::Method::GET, "/api/v1/contacts/abc/send-time", None)
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
            (400, Some("invalid_request"), Some("id")),
            "{v}"
        );
        let (s, v) = app
            .call(reqwest::Method::GET, "/api/v1/contacts/987654/send-time", None)
            .await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")), "{v}");

        app.track(json!({"batch": [{"type": "identify", "userId": "ada", "traits": {"email": "ada@x.example"}}]}))
            .await;
        let ada = app
            .store
            .find_contact(&nudge_store::Lookup::UserId("ada".into()))
            .await
            .unwrap()
            .unwrap();
        let path = format!("/api/v1/contacts/{}/send-time", ada.id);
        let v = app.get(&path).await;
        assert_eq!(
            (
                v["engagements"].as_u64(),
                v["confidence"].as_f64(),
                v["confidence_band"].as_str()
            ),
            (Some(0), Some(0.0), Some("low")),
            "{v}"
        );
        assert_eq!(v["last_engagement_at"], Value::Null);
        assert_eq!(v["time_zone"], "UTC");

        // Six evenings at 21:xx UTC: a session and a click each.
        let mut batch = Vec::new();
        for d in 1..=6 {
            let at = T0 - d * DAY;
            let evening = at - at.rem_euclid(DAY) + 21 * 3_600_000 + 300_000;
            batch.push(json!({"type": "page", "userId": "ada", "name": "Home",
                              "timestamp": nudge_core::format_millis(evening)}));
            batch.push(json!({"type": "track", "userId": "ada", "event": "Email Link Clicked",
                              "timestamp": nudge_core::format_millis(evening + 60_000)}));
        }
        app.track(json!({ "batch": batch })).await;
        let engine = nudge_engine::SendTimeEngine::new(app.store.clone(), app.clock.clone(), Default::default());
        while engine.run_once().await.unwrap().more {}
        let v = app.get(&path).await;
        assert_eq!(v["best_hours"][0]["hour"], 21, "{v}");
        assert_eq!(v["best_day_hour"], 21, "{v}");
        assert_eq!(v["engagements"], 12, "{v}");
        assert!(v["confidence"].as_f64().unwrap() > 0.6, "{v}");
        assert!(v["last_engagement_at"].as_str().is_some(), "{v}");
        app.finish().await;
    }
}
