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
