//! Product recommendations against a real store (SQLite always, PostgreSQL in a fresh
//! schema when `NUDGE_TEST_DATABASE_URL` is set): the catalogue learned from events,
//! a refresh's lists and best sellers written in batches and made current at once, the
//! previous refresh's rows dropped, catalogue products that events no longer change,
//! exclusions, and new products catalogued between refreshes.

use nudge_core::recommend::{self, Product, Reason};
use nudge_core::{Clock, ManualClock, Millis, parse_batch};
use nudge_engine::{RecommendationEngine, RecommendationEngineConfig, refresh_recommendations};
use nudge_store::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// 2027-03-15T12:00:00Z.
const T0: Millis = 1_805_112_000_000;
const DAY: Millis = 86_400_000;
const MIN: Millis = 60_000;

async fn backends() -> Vec<scratch::TestStore> {
    scratch::test_stores("nudge_recommendations_test").await.unwrap()
}

async fn ingest(store: &dyn Store, batch: Vec<Value>, now: Millis) {
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

fn event(user: &str, name: &str, at: Millis, properties: Value) -> Value {
    json!({"type": "track", "userId": user, "event": name,
           "timestamp": nudge_core::format_millis(at), "properties": properties})
}

fn item(id: &str, category: &str) -> Value {
    json!({"product_id": id, "name": format!("Name of {id}"), "price": 10, "category": category,
           "url": format!("https://s.example/{id}")})
}

fn ids(list: &[recommend::Recommendation]) -> Vec<&str> {
    list.iter().map(|r| r.product.id.as_str()).collect()
}

async fn for_contact(store: &dyn Store, user: &str, limit: usize) -> Vec<recommend::Recommendation> {
    let c = store.find_contact(&Lookup::UserId(user.into())).await.unwrap().unwrap();
    let touches = store.contact_touches(c.id, 200).await.unwrap();
    let seeds: Vec<String> = recommend::seeds(&touches).into_iter().map(|(p, _)| p).collect();
    let inputs = store.recommendation_inputs(&seeds).await.unwrap();
    recommend::for_contact(&touches, &inputs, limit)
}

#[tokio::test]
async fn refreshes_learn_from_events_and_lists_honour_the_catalogue() {
    for (store, _dir, schema) in backends().await {
        eprintln!("on {}", store.backend());
        let s = &*store;
        // Before any refresh: no lists, no model.
        assert!(s.recommendation_model().await.unwrap().is_none());
        assert_eq!(
            s.recommendation_inputs(&["a".into()]).await.unwrap(),
            recommend::Inputs::default()
        );
        let mut batch = Vec::new();
        // Three contacts buy a and b together; two of them also view c then buy d.
        for u in ["u1", "u2", "u3"] {
            batch.push(event(
                u,
                "Order Completed",
                T0 - 3 * DAY,
                json!({"products": [item("a", "Tea"), item("b", "Tea")]}),
            ));
        }
        for u in ["u1", "u2"] {
            batch.push(event(u, "Product Viewed", T0 - 2 * DAY, item("c", "Mugs")));
            batch.push(event(u, "Product Added", T0 - 2 * DAY + MIN, item("c", "Mugs")));
            batch.push(event(
                u,
                "Order Completed",
                T0 - DAY,
                json!({"products": [item("d", "Mugs")]}),
            ));
        }
        // An old best seller (40 days ago) and a recent one.
        for u in ["o1", "o2", "o3", "o4"] {
            batch.push(event(
                u,
                "Order Completed",
                T0 - 40 * DAY,
                json!({"products": [item("old", "Tea")]}),
            ));
        }
        for u in ["r1", "r2", "r3", "r4", "r5"] {
            batch.push(event(
                u,
                "Order Completed",
                T0 - 5 * DAY,
                json!({"products": [item("hit", "Snacks")]}),
            ));
        }
        // A later event renames b; something unrelated is ignored.
        batch.push(event(
            "u3",
            "Product Viewed",
            T0 - DAY,
            json!({"product_id": "b", "name": "B, renamed"}),
        ));
        batch.push(event("u3", "Signed Up", T0 - DAY, json!({"product_id": "zzz"})));
        ingest(s, batch, T0).await;

        let config = RecommendationEngineConfig {
            batch: 2,
            page: 3,
            ..Default::default()
        };
        let first = refresh_recommendations(s, T0, &config).await.unwrap();
        assert_eq!(first.contacts, 3 + 9, "{first:?}");
        assert_eq!(first.products, 6);
        assert_eq!(s.recommendation_model().await.unwrap().as_ref(), Some(&first));
        // The catalogue from events: the newest facts, older ones kept where the
        // newer event said nothing.
        let b = s.product("b").await.unwrap().unwrap();
        assert_eq!(b.name.as_deref(), Some("B, renamed"));
        assert_eq!(b.category.as_deref(), Some("Tea"));
        assert_eq!(b.url.as_deref(), Some("https://s.example/b"));
        assert!(s.product("zzz").await.unwrap().is_none());

        let inputs = s.recommendation_inputs(&["a".into(), "c".into()]).await.unwrap();
        let a: Vec<&str> = inputs.similar["a"].iter().map(|x| x.product.as_str()).collect();
        // a and b together by three contacts; a and d by two (u1, u2 bought all three).
        assert_eq!(a, ["b", "d"]);
        assert_eq!(inputs.similar["a"][0].support, 3);
        // c was viewed then d bought, by two contacts: c → d, not d → c.
        assert_eq!(inputs.similar["c"][0].product, "d");
        let d = s.recommendation_inputs(&["d".into()]).await.unwrap();
        assert!(
            d.similar.get("d").is_none_or(|l| l.iter().all(|x| x.product != "c")),
            "{d:?}"
        );
        // Best sellers of the last 30 days: hit (5 buyers), not old (40 days ago).
        let all: Vec<(&str, u32)> = inputs
            .popular
            .iter()
            .filter(|p| p.category.is_empty())
            .map(|p| (p.product.as_str(), p.buyers))
            .collect();
        assert_eq!(all[0], ("hit", 5));
        assert!(all.iter().all(|(p, _)| *p != "old"));

        // u3 bought a and b (and viewed b since): d, which others bought with both,
        // then the best sellers (Tea's are a and b, bought; over all, hit).
        let u3 = for_contact(s, "u3", 3).await;
        assert_eq!(ids(&u3), ["d", "hit"], "{u3:?}");
        assert_eq!(
            u3[0].reason,
            Reason::Similar {
                to: vec!["b".into(), "a".into()]
            }
        );
        assert_eq!(u3[1].reason, Reason::Popular { category: None });

        // The catalogue says d is out of stock and a is repeatable; events no longer
        // change them.
        let mut d = s.product("d").await.unwrap().unwrap();
        d.in_stock = Some(false);
        let mut a = s.product("a").await.unwrap().unwrap();
        a.repeatable = true;
        a.name = Some("A from the catalogue".into());
        s.put_products(vec![d, a], T0).await.unwrap();
        s.record_products(
            vec![recommend::ProductFacts {
                id: "a".into(),
                name: Some("A from an event".into()),
                ..Default::default()
            }],
            T0,
        )
        .await
        .unwrap();
        assert_eq!(
            s.product("a").await.unwrap().unwrap().name.as_deref(),
            Some("A from the catalogue")
        );
        // u1 viewed c (d would come first, but is out of stock) and bought a and b (a
        // is repeatable, so it may come back).
        let u1 = for_contact(s, "u1", 10).await;
        assert!(!ids(&u1).contains(&"d") && !ids(&u1).contains(&"b"), "{u1:?}");
        assert!(ids(&u1).contains(&"a"), "{u1:?}");

        // A second refresh replaces the first: one list per product, old rows gone.
        let second = refresh_recommendations(s, T0 + 1, &config).await.unwrap();
        assert!(second.id > first.id);
        let inputs = s.recommendation_inputs(&["a".into()]).await.unwrap();
        assert_eq!(inputs.similar["a"].len(), 2);
        assert_eq!(s.drop_old_recommendations(second.id, 100).await.unwrap(), 0);

        // Between refreshes, the engine catalogues new products; the next refresh is
        // due after its period.
        let clock = Arc::new(ManualClock::new(T0 + 2));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let engine = RecommendationEngine::new(
            store.clone(),
            dyn_clock,
            RecommendationEngineConfig {
                refresh_every: Some(Duration::from_secs(3600)),
                ..Default::default()
            },
        );
        ingest(s, vec![event("u9", "Product Viewed", T0, item("new", "Tea"))], T0).await;
        let round = engine.run_once().await.unwrap();
        assert!(!round.refreshed && round.catalogued == 1, "{round:?}");
        assert_eq!(
            s.product("new").await.unwrap().unwrap().category.as_deref(),
            Some("Tea")
        );
        assert_eq!(engine.run_once().await.unwrap().catalogued, 0);
        clock.advance(3_600_000);
        assert!(engine.run_once().await.unwrap().refreshed);

        // The catalogue: pages by id, delete.
        let page = s.products(None, 3).await.unwrap();
        assert_eq!(ids_of(&page.products), ["a", "b", "c"]);
        let page = s.products(page.next.as_deref(), 100).await.unwrap();
        assert_eq!(ids_of(&page.products), ["d", "hit", "new", "old"]);
        assert_eq!(page.next, None);
        assert!(s.delete_product("old").await.unwrap());
        assert!(!s.delete_product("old").await.unwrap());
        store.close().await;
        if let Some(schema) = schema {
            schema.drop_schema().await.unwrap();
        }
    }
}

fn ids_of(products: &[Product]) -> Vec<&str> {
    products.iter().map(|p| p.id.as_str()).collect()
}
