//! Customer lifetime value against a real store (SQLite always, PostgreSQL in a fresh
//! schema when `NUDGE_TEST_DATABASE_URL` is set): the CDNOW sample's 6,919
//! transactions imported as `Order Completed` events and fitted in weeks over the
//! 39-week calibration period give the paper's parameters; every customer gets their
//! predictions and `predicted_*` traits; a later purchase updates them; the engine
//! refits on its schedule.

use nudge_core::predict::{self, Unit};
use nudge_core::{Clock, ManualClock, Millis, parse_batch, parse_instant};
use nudge_engine::{PredictionEngine, PredictionEngineConfig, PredictionRound, fit_predictions};
use nudge_store::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const TRANSACTIONS: &str = include_str!("../../nudge-core/tests/fixtures/cdnow/transactions.txt");

async fn backends() -> Vec<scratch::TestStore> {
    scratch::test_stores("nudge_predictions_test").await.unwrap()
}

async fn ingest(store: &dyn Store, batch: Vec<Value>, now: Millis) {
    let mut n = 0;
    let calls = parse_batch(
        &serde_json::to_vec(&json!({ "batch": batch })).unwrap(),
        &nudge_core::Received { at: now, ip: None },
        &mut || {
            n += 1;
            format!("generated-{n}")
        },
    )
    .unwrap()
    .messages;
    store.ingest(calls, now).await.unwrap();
}

/// `customer id date(YYYYMMDD) cds value` per line, as `Order Completed` events of
/// user `cdnow-<customer>` at midnight UTC of the date with `revenue`.
fn transactions() -> Vec<Value> {
    TRANSACTIONS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let date = format!("{}-{}-{}T00:00:00Z", &f[2][..4], &f[2][4..6], &f[2][6..]);
            json!({"type": "track", "userId": format!("cdnow-{}", f[1]), "event": "Order Completed",
                   "messageId": format!("cdnow-{i}"), "timestamp": date,
                   "properties": {"revenue": f[4].parse::<f64>().unwrap()}})
        })
        .collect()
}

async fn contact(store: &dyn Store, user: &str) -> nudge_core::Contact {
    store.find_contact(&Lookup::UserId(user.into())).await.unwrap().unwrap()
}

#[tokio::test]
async fn cdnow_imported_as_orders_gives_the_papers_parameters_and_every_customer_their_predictions() {
    let until = parse_instant("1997-09-30").unwrap();
    let now = parse_instant("2027-01-04T12:00:00Z").unwrap();
    for (store, _dir, schema) in backends().await {
        eprintln!("on {}", store.backend());
        let s = &*store;
        assert!(s.prediction_model().await.unwrap().is_none());
        let all = transactions();
        assert_eq!(all.len(), 6919);
        for chunk in all.chunks(2_000) {
            ingest(s, chunk.to_vec(), now).await;
        }
        let config = PredictionEngineConfig {
            page: 500, // several pages of contacts
            ..PredictionEngineConfig::default()
        };
        let (stored, written) = fit_predictions(s, until, Unit::Weeks, now, &config).await.unwrap();
        let m = &stored.model;
        assert_eq!((m.customers, written), (2357, 2357));
        let three = |v: f64| (v * 1000.0).round() / 1000.0;
        assert_eq!(
            (
                three(m.bgnbd.r),
                three(m.bgnbd.alpha),
                three(m.bgnbd.a),
                three(m.bgnbd.b)
            ),
            (0.243, 4.414, 0.793, 2.426),
            "{:?}",
            m.bgnbd
        );
        assert!(m.gamma_gamma.is_some_and(|g| g.q > 1.0), "{:?}", m.gamma_gamma);
        assert_eq!(s.prediction_model().await.unwrap().as_ref(), Some(&stored));

        // Customer 1: purchases on 1997-01-01, 01-18 and 08-02 (and later ones, past
        // calibration), $29.33, $29.73, $14.96.
        let c1 = contact(s, "cdnow-0001").await;
        let p = s.contact_prediction(c1.id).await.unwrap().expect("a prediction");
        assert_eq!(p.customer.frequency, 2);
        assert_eq!(p.customer.recency, 213.0 / 7.0);
        assert_eq!(p.customer.age, 272.0 / 7.0);
        assert!((p.customer.monetary - (29.73 + 14.96) / 2.0).abs() < 1e-9);
        assert_eq!(p.traits(), m.predict(&p.customer, until).traits());
        for (name, value) in p.traits() {
            assert_eq!(c1.traits.get(&name).unwrap_or(&Value::Null), &value, "trait {name}");
        }

        // A purchase after the fit: the engine updates that contact, as of now.
        let engine = PredictionEngine::new(
            store.clone(),
            Arc::new(ManualClock::new(now)),
            PredictionEngineConfig {
                refit_every: None,
                ..PredictionEngineConfig::default()
            },
        );
        ingest(
            s,
            vec![
                json!({"type": "track", "userId": "cdnow-0001", "event": "Order Completed",
                         "timestamp": "2027-01-04T11:00:00Z", "properties": {"total": 40}}),
            ],
            now,
        )
        .await;
        let round = engine.run_once().await.unwrap();
        assert_eq!((round.fitted, round.updated), (false, 1));
        let after = s.contact_prediction(c1.id).await.unwrap().unwrap();
        assert_eq!(after.as_of, now);
        assert_eq!(
            after.customer.frequency, 4,
            "one purchase after calibration (1997-12-12) and today's"
        );
        // Bought today (recency = age): alive unless they drop out at this very
        // purchase, P = 1 / (1 + a / (b + x − 1)) by BG/NBD.
        assert_eq!(after.customer.recency, after.customer.age);
        let b = m.bgnbd;
        assert!((after.p_alive - 1.0 / (1.0 + b.a / (b.b + 3.0))).abs() < 1e-12);
        // (Stored as JSON, a float may lose its last bit: the traits are rounded.)
        assert_eq!(after.traits(), m.predict(&after.customer, now).traits());
        assert_eq!(contact(s, "cdnow-0001").await.traits["predicted_churn_band"], "low");
        assert_eq!(engine.run_once().await.unwrap().updated, 0, "nothing new");
        if let Some(schema) = schema {
            store.close().await;
            schema.drop_schema().await.unwrap();
        }
    }
}

#[tokio::test]
async fn the_engine_refits_on_its_schedule_and_not_before() {
    let t0 = parse_instant("2027-01-04T12:00:00Z").unwrap();
    let day = 86_400_000;
    for (store, _dir, schema) in backends().await {
        eprintln!("on {}", store.backend());
        let clock = Arc::new(ManualClock::new(t0));
        let engine = PredictionEngine::new(
            store.clone(),
            clock.clone(),
            PredictionEngineConfig {
                refit_every: Some(Duration::from_secs(24 * 3600)),
                ..PredictionEngineConfig::default()
            },
        );
        // Too few customers: no model, and no new try before a day has passed.
        assert_eq!(engine.run_once().await.unwrap(), PredictionRound::default());
        // 30 customers, every third buying again.
        let mut batch = Vec::new();
        for i in 0..30i64 {
            let first = t0 - (40 + i) * day;
            batch.push(
                json!({"type": "track", "userId": format!("u{i}"), "event": "Order Completed",
                "timestamp": nudge_core::format_millis(first), "properties": {"revenue": 10 + i}}),
            );
            for k in 0..(i % 3) {
                batch.push(
                    json!({"type": "track", "userId": format!("u{i}"), "event": "Order Completed",
                    "timestamp": nudge_core::format_millis(first + (k + 1) * (3 + i) * day),
                    "properties": {"value": 5 + k}}),
                );
            }
        }
        ingest(&*store, batch, t0).await;
        clock.advance(3_600_000);
        assert!(!engine.run_once().await.unwrap().fitted, "tried within the day");
        clock.advance(day);
        let round = engine.run_once().await.unwrap();
        assert!(round.fitted);
        assert_eq!(round.updated, 30);
        let model = store.prediction_model().await.unwrap().unwrap();
        assert_eq!((model.model.unit, model.model.customers), (Unit::Days, 30));
        assert_eq!(model.model.fitted_at, clock.now());
        clock.advance(3_600_000);
        assert!(!engine.run_once().await.unwrap().fitted, "the model is fresh");
        clock.advance(day);
        assert!(engine.run_once().await.unwrap().fitted, "a day later");
        let u4 = contact(&*store, "u4").await;
        let p = store.contact_prediction(u4.id).await.unwrap().unwrap();
        assert_eq!(p.customer.frequency, 1);
        assert_eq!(
            u4.traits["predicted_churn_band"],
            predict::ChurnBand::of(p.p_alive).as_str()
        );
        if let Some(schema) = schema {
            store.close().await;
            schema.drop_schema().await.unwrap();
        }
    }
}
