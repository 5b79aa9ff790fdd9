//! What the data migrations with a Rust step must leave behind, checked once for both
//! backends: each backend's test fills the tables as they were before the migration
//! (its own SQL where the dialects differ), opens its store, and calls these.

use crate::Store;
use nudge_core::ContactId;
use serde_json::Value;

/// Migration 34: the orders stored before it as each contact's totals and traits
/// (1,500 customers with `c % 4 + 1` orders, out of time order, revenue by
/// `revenue`, `total`, `value` and a non-number in turn; contact 1,501 with a page
/// named like an order; an order of contact 9,999, which is gone).
pub(crate) async fn orders_counted<S: Store>(store: &S) {
    let t0 = 1_700_000_000_000;
    for (c, count, revenue) in [(4, 1, 10.5), (1, 2, 14.5), (2, 3, 15.5), (1_499, 4, 15.5)] {
        let totals = store.order_totals(c).await.unwrap().unwrap();
        assert_eq!(
            totals,
            nudge_core::orders::OrderTotals {
                count,
                revenue,
                first_at: t0 + (4 - count) * 86_400_000 + c,
                last_at: t0 + 3 * 86_400_000 + c
            },
            "contact {c}"
        );
        let contact = store.contact(c).await.unwrap().unwrap();
        let mut expected = totals.traits();
        expected.insert("plan".into(), Value::from("pro"));
        assert_eq!(contact.traits, expected, "contact {c}");
    }
    assert_eq!(store.order_totals(1_501).await.unwrap(), None);
    let without = store.contact(1_501).await.unwrap().unwrap();
    assert!(!without.traits.contains_key("orders_count"));
    assert_eq!(store.order_totals(9_999).await.unwrap(), None);
}

/// The rows before migration 33 that [`scores_moved`] checks after 35: contacts 7, 8
/// and 9, three rules (1 and 3 of `lead_score`, 2 of `engagement`), score rows,
/// counters and timers (the same SQL on both backends).
pub(crate) const SCORES_BEFORE_33: &str = r#"
    INSERT INTO contacts (id, user_id, traits, created_at, updated_at) VALUES
      (7, 'u7', '{"lead_score": 6, "engagement": 1}', 0, 0), (8, 'u8', '{"lead_score": 5}', 0, 0),
      (9, 'u9', '{}', 0, 0);
    INSERT INTO scoring_rules (id, definition, created_at, updated_at) VALUES
      (1, '{"name":"a","score":"lead_score","points":5,"trigger":{"type":"event","event":"A"},"frequency":{"type":"once"},"enabled":true}', 0, 0),
      (2, '{"name":"b","score":"engagement","points":1,"trigger":{"type":"event","event":"A"},"frequency":{"type":"once"},"enabled":true}', 0, 0),
      (3, '{"name":"c","score":"lead_score","points":1,"trigger":{"type":"event","event":"A"},"frequency":{"type":"repeat","cap":{"max":2,"per":"day"}},"enabled":true}', 0, 0);
    INSERT INTO contact_scores (contact_id, score, points, anchor_at, written, stage, updated_at) VALUES
      (7, 'lead_score', 6, 0, 6, 'cold', 0), (7, 'engagement', 1, 0, 1, NULL, 0), (8, 'lead_score', 5, 0, 5, NULL, 0);
    INSERT INTO scoring_counters (contact_id, rule_id, period, count) VALUES
      (7, 1, 'once', 1), (7, 2, 'once', 1), (7, 3, 'd20000', 1), (8, 1, 'once', 1), (8, 2, 'once', 1);
    INSERT INTO score_timers (contact_id, score, due_at) VALUES (7, 'lead_score', 12345), (7, 'engagement', 23456);
"#;

/// Migrations 33 and 35 on [`SCORES_BEFORE_33`]: the timers and counters moved into
/// the score rows, then the score rows into the contacts' rows (the counters of a
/// rule given to another score dropped), with the earliest timer as the row's.
/// `rows` are `(id, scoring, score_due_at)` of every contact, by id, as stored.
pub(crate) async fn scores_moved<S: Store>(store: &S, rows: &[(ContactId, Option<String>, Option<i64>)]) {
    let scores = |i: usize| crate::scoring::ScoreRows::parse(rows[i].1.as_deref()).unwrap().0;
    assert_eq!(
        rows.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(),
        [(7, Some(12345)), (8, None), (9, None)]
    );
    let seven = scores(0);
    assert_eq!(seven.len(), 2);
    let lead = &seven["lead_score"];
    assert_eq!(
        (lead.points, lead.stage.as_deref(), lead.due),
        (6.0, Some("cold"), Some(12345))
    );
    assert_eq!(
        lead.counters,
        [(1, "once".to_string(), 1), (3, "d20000".to_string(), 1)]
    );
    assert_eq!(seven["engagement"].due, Some(23456));
    assert_eq!(seven["engagement"].counters, [(2, "once".to_string(), 1)]);
    let eight = scores(1);
    assert_eq!((eight["lead_score"].points, eight["lead_score"].due), (5.0, None));
    assert_eq!(
        eight["lead_score"].counters,
        [(1, "once".to_string(), 1)],
        "rule 2 is another score's"
    );
    assert_eq!(rows[2].1, None);
    assert_eq!(store.next_score_timer().await.unwrap(), Some(12345));
    let read = store.contact_scores(7, 0).await.unwrap();
    let lead = read.iter().find(|s| s.score == "lead_score").unwrap();
    assert_eq!((lead.value, lead.next_decay_at), (6.0, Some(12345)));
}
