//! The two segment evaluators agree: random definitions over random contacts and
//! events give the same members computed in SQL as computed in memory, on every
//! backend. Failures print the seed and the definition.

use nudge_core::segment::{
    AggregateFn, Condition, Count, CountOp, FirstLast, MessageAction, NumOp, PropertyFilter, SubState, Test, TimeTest,
    Window,
};
use nudge_core::{Millis, Received, Subscription, format_millis, parse_batch};
use nudge_store::SegmentStore as _;
use nudge_store::{ContactPatch, SqliteStore, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// 2027-03-15T12:00:00Z
const NOW: Millis = 1_805_112_000_000;
const DAY: Millis = 86_400_000;

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn date_string(rng: &mut StdRng) -> String {
    let t = NOW + rng.random_range(-400..60) * DAY + rng.random_range(0..DAY);
    let s = format_millis(t);
    match rng.random_range(0..6) {
        0 => s[..10].to_string(),
        1 => format!("{}-{}", rng.random_range(1950..2010), &s[5..10]),
        2 => "soon".into(),
        3 => "2027-13-45".into(),
        _ => s,
    }
}

fn scalar(rng: &mut StdRng) -> Value {
    match rng.random_range(0..7) {
        0 => json!(pick(rng, &["pro", "free", "Pro", "", "vip-gold"])),
        1 => json!(rng.random_range(-3..6)),
        2 => json!(rng.random_range(-3..6) as f64 + 0.5),
        3 => json!(rng.random_bool(0.5)),
        4 => json!(pick(rng, &["3", "2.5", "abc", "ab"])),
        5 => json!(date_string(rng)),
        _ => json!(rng.random_range(0..4) * 25),
    }
}

const TRAITS: &[&str] = &["plan", "age", "birthday", "vip", "score", "lead_score"];
const EVENTS: &[&str] = &["Order Completed", "Product Viewed", "Cart Updated"];
const PROPS: &[&str] = &["total", "coupon", "sku"];

fn threshold(rng: &mut StdRng) -> f64 {
    rng.random_range(-3..6) as f64 + [0.0, 0.5, 0.25][rng.random_range(0..3)]
}

fn test(rng: &mut StdRng) -> Test {
    match rng.random_range(0..17) {
        0 => Test::Equals { value: scalar(rng) },
        1 => Test::NotEquals { value: scalar(rng) },
        2 => Test::GreaterThan { value: threshold(rng) },
        3 => Test::GreaterOrEqual { value: threshold(rng) },
        4 => Test::LessThan { value: threshold(rng) },
        5 => Test::LessOrEqual { value: threshold(rng) },
        6 => Test::Contains {
            value: pick(rng, &["a", "b", "", "ro", "P"]).to_string(),
        },
        7 => Test::StartsWith {
            value: pick(rng, &["p", "f", "", "ab", "20"]).to_string(),
        },
        8 => Test::Exists,
        9 => Test::NotExists,
        10 => Test::In {
            values: (0..rng.random_range(0..3)).map(|_| scalar(rng)).collect(),
        },
        11 => Test::NotIn {
            values: (0..rng.random_range(0..3)).map(|_| scalar(rng)).collect(),
        },
        12 => Test::Before {
            value: format_millis(NOW + rng.random_range(-300..30) * DAY),
        },
        13 => Test::After {
            value: format_millis(NOW + rng.random_range(-300..30) * DAY)[..10].to_string(),
        },
        14 => Test::WithinLastDays {
            days: rng.random_range(0..200),
        },
        15 => Test::WithinNextDays {
            days: rng.random_range(0..60),
        },
        _ => {
            if rng.random_bool(0.5) {
                Test::AnniversaryWithinDays {
                    days: *pick(rng, &[0, 1, 7, 30, 200, 400]),
                }
            } else {
                Test::AnniversaryThisMonth
            }
        }
    }
}

fn window(rng: &mut StdRng) -> Window {
    match rng.random_range(0..4) {
        0 => Window::Ever,
        1 => Window::LastDays(*pick(rng, &[0, 1, 7, 30, 90, 365])),
        3 => Window::LastHours(*pick(rng, &[1, 24, 200])),
        _ => {
            let a = NOW + rng.random_range(-400..0) * DAY;
            Window::Between {
                from: format_millis(a),
                to: format_millis(a + rng.random_range(1..200) * DAY),
            }
        }
    }
}

fn filters(rng: &mut StdRng) -> Vec<PropertyFilter> {
    (0..rng.random_range(0..3))
        .map(|_| PropertyFilter {
            property: pick(rng, PROPS).to_string(),
            test: test(rng),
        })
        .collect()
}

fn num_op(rng: &mut StdRng) -> NumOp {
    *pick(
        rng,
        &[
            NumOp::GreaterThan,
            NumOp::GreaterOrEqual,
            NumOp::LessThan,
            NumOp::LessOrEqual,
            NumOp::Equals,
        ],
    )
}

const ACTIONS: &[MessageAction] = &[
    MessageAction::Received,
    MessageAction::Delivered,
    MessageAction::Opened,
    MessageAction::Clicked,
    MessageAction::Bounced,
    MessageAction::Failed,
];

fn count(rng: &mut StdRng) -> Count {
    Count {
        op: *pick(rng, &[CountOp::AtLeast, CountOp::AtMost, CountOp::Exactly]),
        value: rng.random_range(0..4),
    }
}

fn condition(rng: &mut StdRng, depth: u32) -> Condition {
    let leaf_only = depth >= 3;
    match rng.random_range(0..if leaf_only { 6 } else { 9 }) {
        0 if rng.random_bool(0.3) => Condition::Message {
            action: *pick(rng, ACTIONS),
            channel: rng.random_bool(0.5).then(|| pick(rng, &["email", "sms"]).to_string()),
            template: rng.random_bool(0.5).then(|| rng.random_range(1..4)),
            count: count(rng),
            window: window(rng),
        },
        1 if rng.random_bool(0.2) => Condition::LeadScore {
            score: rng.random_bool(0.3).then(|| "engagement".to_string()),
            op: num_op(rng),
            value: threshold(rng),
        },
        0 | 1 => Condition::Trait {
            name: pick(rng, TRAITS).to_string(),
            test: test(rng),
        },
        2 => Condition::Event {
            event: pick(rng, EVENTS).to_string(),
            filters: filters(rng),
            count: count(rng),
            window: window(rng),
        },
        3 => Condition::EventTime {
            event: pick(rng, EVENTS).to_string(),
            filters: filters(rng),
            which: *pick(rng, &[FirstLast::First, FirstLast::Last]),
            test: match rng.random_range(0..6) {
                0 => TimeTest::Before {
                    value: format_millis(NOW - rng.random_range(0..300) * DAY),
                },
                1 => TimeTest::After {
                    value: format_millis(NOW - rng.random_range(0..300) * DAY),
                },
                2 => TimeTest::WithinLastDays {
                    days: rng.random_range(0..120),
                },
                3 => TimeTest::WithinLastHours {
                    hours: rng.random_range(0..100),
                },
                4 => TimeTest::NotWithinLastHours {
                    hours: rng.random_range(0..100),
                },
                _ => TimeTest::NotWithinLastDays {
                    days: rng.random_range(0..120),
                },
            },
        },
        4 => {
            let function = *pick(
                rng,
                &[
                    AggregateFn::Sum,
                    AggregateFn::Avg,
                    AggregateFn::Min,
                    AggregateFn::Max,
                    AggregateFn::Count,
                ],
            );
            Condition::Aggregate {
                event: pick(rng, EVENTS).to_string(),
                filters: filters(rng),
                function,
                property: Some(pick(rng, PROPS).to_string()),
                window: window(rng),
                op: num_op(rng),
                value: (rng.random_range(-1..12) * 25) as f64 + [0.0, 12.5][rng.random_range(0..2)],
            }
        }
        5 => {
            if rng.random_bool(0.5) {
                Condition::Subscription {
                    channel: pick(rng, &["email", "sms"]).to_string(),
                    state: *pick(
                        rng,
                        &[
                            SubState::Subscribed,
                            SubState::Unsubscribed,
                            SubState::Pending,
                            SubState::Unknown,
                        ],
                    ),
                }
            } else {
                Condition::RandomBucket {
                    percent: rng.random_range(0..=100),
                    salt: pick(rng, &["", "x", "holdout"]).to_string(),
                }
            }
        }
        6 => Condition::And {
            conditions: (0..rng.random_range(0..4)).map(|_| condition(rng, depth + 1)).collect(),
        },
        7 => Condition::Or {
            conditions: (0..rng.random_range(0..4)).map(|_| condition(rng, depth + 1)).collect(),
        },
        _ => Condition::Not {
            condition: Box::new(condition(rng, depth + 1)),
        },
    }
}

/// Random contacts with traits, subscriptions and events, stored through the API path.
async fn populate(store: &dyn Store, rng: &mut StdRng, contacts: usize) -> Vec<i64> {
    let mut batch = Vec::new();
    for i in 0..contacts {
        let user = format!("u{i}");
        let mut traits = serde_json::Map::new();
        for t in TRAITS {
            if rng.random_bool(0.7) {
                traits.insert(t.to_string(), scalar(rng));
            }
        }
        // Time zones where 2027-03-15T12:00Z is already the 16th (Kiritimati,
        // Auckland), the same day, or no zone (not exact IANA names: UTC), with
        // birthdays around today so that the zone decides.
        if rng.random_bool(0.6) {
            let zones = [
                "Pacific/Kiritimati",
                "Pacific/Auckland",
                "Asia/Tokyo",
                "America/Los_Angeles",
                "asia/tokyo",
                "+02:00",
            ];
            traits.insert("timezone".into(), json!(pick(rng, &zones)));
        }
        if rng.random_bool(0.3) {
            let days = ["1980-03-15", "1980-03-16", "1980-03-14", "1980-03-22", "1980-03-23"];
            traits.insert("birthday".into(), json!(pick(rng, &days)));
        }
        batch.push(json!({"type": "identify", "userId": user, "traits": traits}));
        for _ in 0..rng.random_range(0..8) {
            let mut props = serde_json::Map::new();
            for p in PROPS {
                if rng.random_bool(0.6) {
                    props.insert(
                        p.to_string(),
                        if *p == "total" && rng.random_bool(0.8) {
                            json!(rng.random_range(0..8) * 25)
                        } else {
                            scalar(rng)
                        },
                    );
                }
            }
            let ts = format_millis(NOW + rng.random_range(-400..3) * DAY + rng.random_range(0..DAY));
            batch.push(json!({"type": "track", "userId": user, "event": pick(rng, EVENTS), "properties": props, "timestamp": ts}));
        }
        // Message events as Nudge records them (channel, template_id).
        for _ in 0..rng.random_range(0..4) {
            let action = *pick(rng, ACTIONS);
            let props = json!({"message_id": rng.random_range(1..1000), "channel": pick(rng, &["email", "sms"]),
                               "template_id": rng.random_range(1..4)});
            let ts = format_millis(NOW + rng.random_range(-400..3) * DAY + rng.random_range(0..DAY));
            batch.push(json!({"type": "track", "userId": user, "event": action.event_name(), "properties": props, "timestamp": ts}));
        }
    }
    let mut n = 0;
    let mut ids = || {
        n += 1;
        format!("m{n}")
    };
    let body = serde_json::to_vec(&json!({ "batch": batch })).unwrap();
    let messages = parse_batch(&body, &Received { at: NOW, ip: None }, &mut ids)
        .unwrap()
        .messages;
    store.ingest(messages, NOW).await.unwrap();
    let mut out = Vec::new();
    for i in 0..contacts {
        let c = store
            .find_contact(&nudge_store::Lookup::UserId(format!("u{i}")))
            .await
            .unwrap()
            .unwrap();
        let mut patch = ContactPatch::default();
        for ch in ["email", "sms"] {
            if rng.random_bool(0.6) {
                patch.subscriptions.insert(
                    ch.into(),
                    *pick(
                        rng,
                        &[
                            Subscription::Subscribed,
                            Subscription::Unsubscribed,
                            Subscription::Pending,
                        ],
                    ),
                );
            }
        }
        store.update_contact(c.id, &patch, NOW).await.unwrap();
        out.push(c.id);
    }
    out
}

async fn agree(store: &dyn Store, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ids = populate(store, &mut rng, 40).await;
    let mut facts = Vec::new();
    for id in &ids {
        facts.push(store.contact_facts(*id).await.unwrap().unwrap());
    }
    let mut non_trivial = 0;
    for case in 0..250 {
        let c = condition(&mut rng, 0);
        c.validate()
            .unwrap_or_else(|e| panic!("generator made an invalid definition: {e}"));
        let sql = store.segment_members(&c, NOW).await.unwrap_or_else(|e| {
            panic!(
                "{} seed {seed} case {case}: {e}\n{}",
                store.backend(),
                serde_json::to_string(&c).unwrap()
            )
        });
        let memory: Vec<i64> = facts
            .iter()
            .filter(|f| c.matches(f, NOW))
            .map(|f| f.contact_id)
            .collect();
        assert_eq!(
            sql,
            memory,
            "{} seed {seed} case {case}: {}",
            store.backend(),
            serde_json::to_string_pretty(&c).unwrap()
        );
        if !sql.is_empty() && sql.len() < ids.len() {
            non_trivial += 1;
        }
        // Time alone never changes membership before the predicted moment.
        for f in &facts {
            let next = c.next_change(f, NOW);
            for _ in 0..4 {
                let later = NOW + rng.random_range(1..400 * DAY);
                if next.is_none_or(|n| later < n) {
                    assert_eq!(
                        c.matches(f, later),
                        c.matches(f, NOW),
                        "seed {seed} case {case}: contact {} flips at {} before next_change {:?}: {}",
                        f.contact_id,
                        format_millis(later),
                        next.map(format_millis),
                        serde_json::to_string(&c).unwrap()
                    );
                }
            }
        }
    }
    assert!(
        non_trivial > 50,
        "the generator must produce selective definitions ({non_trivial})"
    );
}

#[tokio::test]
async fn sql_and_memory_agree_on_sqlite() {
    for seed in 0..4u64 {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("n.db")).await.unwrap();
        agree(&store, seed).await;
        store.close().await;
    }
}

#[tokio::test]
async fn sql_and_memory_agree_on_postgres() {
    let Ok(url) = std::env::var("NUDGE_TEST_DATABASE_URL") else {
        eprintln!("NUDGE_TEST_DATABASE_URL not set: PostgreSQL segment agreement skipped");
        return;
    };
    for seed in 0..4u64 {
        let schema = nudge_store::scratch::PgScratchSchema::create(&url, "nudge_segments")
            .await
            .unwrap();
        let store = nudge_store::PgStore::connect(&schema.url).await.unwrap();
        agree(&store, seed).await;
        store.close().await;
        schema.drop_schema().await.unwrap();
    }
}

/// A saved segment that filters on event properties gets a partial covering index for
/// them on SQLite; the compiled SQL uses it, gives the same members, and the index goes
/// with the last segment that reads it.
#[tokio::test]
async fn saved_segments_get_covering_indexes_for_the_event_properties_they_read() {
    use nudge_store::segment_sql::{Dialect, Param, compile, event_indexes};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nudge.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut batch = Vec::new();
    for i in 0..40 {
        let props = if i % 3 == 0 {
            json!({"total": i, "coupon": "SAVE10"})
        } else {
            json!({"total": i, "coupon": null})
        };
        batch.push(
            json!({"type": "track", "userId": format!("u{}", i % 20), "event": "Order Completed", "properties": props}),
        );
        batch.push(json!({"type": "track", "userId": format!("u{}", i % 20), "event": "Page Viewed", "properties": {"coupon": "x"}}));
    }
    let mut n = 0;
    let mut ids = || {
        n += 1;
        format!("m{n}")
    };
    let body = serde_json::to_vec(&json!({ "batch": batch })).unwrap();
    let messages = parse_batch(&body, &Received { at: NOW, ip: None }, &mut ids)
        .unwrap()
        .messages;
    store.ingest(messages, NOW).await.unwrap();

    let definition = nudge_core::segment::parse_condition(&json!({"type": "and", "conditions": [
        {"type": "event", "event": "Order Completed", "where": [{"property": "coupon", "op": "exists"}]},
        {"type": "aggregate", "event": "Order Completed", "function": "sum", "property": "total",
         "window": "ever", "op": "greater_or_equal", "value": 10}
    ]}))
    .unwrap();
    let wanted = event_indexes(&definition);
    assert_eq!(wanted.len(), 1, "one index per event: {wanted:?}");
    let segment = store
        .create_segment(
            nudge_store::NewSegment {
                name: "Coupon buyers".into(),
                description: String::new(),
                definition: definition.clone(),
                administrative: false,
            },
            NOW,
        )
        .await
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let indexes = |raw: &rusqlite::Connection| -> Vec<String> {
        raw.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'events_read_%'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(indexes(&raw), vec![wanted[0].0.clone()]);

    // The compiled SQL reads the index, not the events table.
    let compiled = compile(&definition, Dialect::Sqlite, NOW);
    let params: Vec<rusqlite::types::Value> = compiled
        .params
        .iter()
        .map(|p| match p {
            Param::Text(s) => rusqlite::types::Value::Text(s.clone()),
            Param::Real(f) => rusqlite::types::Value::Real(*f),
            Param::Int(i) => rusqlite::types::Value::Integer(*i),
        })
        .collect();
    let plan: Vec<String> = raw
        .prepare(&format!(
            "EXPLAIN QUERY PLAN SELECT c.id FROM contacts c WHERE {}",
            compiled.sql
        ))
        .unwrap()
        .query_map(rusqlite::params_from_iter(params.iter()), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        plan.iter().any(|p| p.contains(&wanted[0].0) && p.contains("COVERING")),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|p| p.contains("events_contact_type_name_time")),
        "{plan:?}"
    );

    // Same members as the preview (computed with the index too) and as the rule:
    // contacts 0, 3, 6, ... have coupon orders; totals sum to 10 or more for all.
    let mut members = store.segment_member_page(segment.id, None, 100).await.unwrap().items;
    members.sort_unstable();
    let mut preview = store.segment_members(&definition, NOW).await.unwrap();
    preview.sort_unstable();
    assert_eq!(members, preview);
    let mut expected = Vec::new();
    for u in (0..20).filter(|u| [0, 1, 2].iter().any(|k| (u + 20 * k) % 3 == 0 && u + 20 * k < 40)) {
        let c = store
            .find_contact(&nudge_store::Lookup::UserId(format!("u{u}")))
            .await
            .unwrap()
            .unwrap();
        let total: i64 = (0..40).filter(|i| i % 20 == u).sum();
        if total >= 10 {
            expected.push(c.id);
        }
    }
    expected.sort_unstable();
    assert_eq!(members, expected);

    // Gone with the last segment that reads it.
    assert!(store.delete_segment(segment.id).await.unwrap());
    assert!(indexes(&raw).is_empty());
}
