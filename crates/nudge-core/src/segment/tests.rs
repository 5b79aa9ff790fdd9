use super::*;
use crate::contact::Subscription;
use serde_json::json;

/// 2027-03-15T12:00:00Z
const NOW: Millis = 1_805_112_000_000;

fn at(s: &str) -> Millis {
    crate::parse_instant(s).unwrap()
}

fn ev(name: &str, ts: &str, props: Value) -> EventFact {
    EventFact {
        name: name.into(),
        timestamp: at(ts),
        properties: props.as_object().unwrap().clone(),
    }
}

fn facts() -> Facts {
    Facts {
        contact_id: 42,
        traits: json!({
            "plan": "pro", "age": 36, "score": 7.5, "vip": true, "email": "ada@example.com",
            "birthday": "1990-03-20", "signed_up": "2027-03-10T08:00:00Z", "renewal": "2027-03-20",
            "tags": ["a", "b"], "zip": "007"
        })
        .as_object()
        .unwrap()
        .clone(),
        subscriptions: [("email".to_string(), Subscription::Subscribed)].into(),
        segments: Default::default(),
        events: vec![
            ev(
                "Order Completed",
                "2026-01-10T10:00:00Z",
                json!({"total": 100, "coupon": "WELCOME"}),
            ),
            ev("Order Completed", "2027-02-20T10:00:00Z", json!({"total": 40.5})),
            ev(
                "Order Completed",
                "2027-03-14T10:00:00Z",
                json!({"total": 59.5, "coupon": "SPRING"}),
            ),
            ev("Product Viewed", "2027-03-15T11:00:00Z", json!({"sku": "A"})),
            ev("Cart Updated", "2027-03-15T10:30:00Z", json!({"cart_id": "c1"})),
        ],
    }
}

fn check(def: Value, expected: bool) {
    let c = parse_condition(&def).unwrap_or_else(|e| panic!("{def}: {e}"));
    assert_eq!(c.matches(&facts(), NOW), expected, "{def}");
    // Serialization round-trips.
    let back: Condition = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
    assert_eq!(back, c, "{def}");
}

#[test]
fn trait_comparisons() {
    let cases = [
        (
            json!({"type": "trait", "trait": "plan", "op": "equals", "value": "pro"}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "plan", "op": "equals", "value": "Pro"}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "age", "op": "equals", "value": 36.0}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "age", "op": "equals", "value": "36"}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "plan", "op": "not_equals", "value": "free"}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "missing", "op": "not_equals", "value": "x"}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "missing", "op": "equals", "value": "x"}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "age", "op": "greater_than", "value": 35}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "age", "op": "greater_than", "value": 36}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "age", "op": "greater_or_equal", "value": 36}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "score", "op": "less_than", "value": 7.6}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "score", "op": "less_or_equal", "value": 7.4}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "zip", "op": "greater_than", "value": 1}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "email", "op": "contains", "value": "@example"}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "email", "op": "starts_with", "value": "ada"}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "email", "op": "starts_with", "value": "Ada"}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "age", "op": "contains", "value": "3"}),
            false,
        ),
        (json!({"type": "trait", "trait": "vip", "op": "exists"}), true),
        (json!({"type": "trait", "trait": "nope", "op": "exists"}), false),
        (json!({"type": "trait", "trait": "nope", "op": "not_exists"}), true),
        (
            json!({"type": "trait", "trait": "plan", "op": "in", "values": ["free", "pro"]}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "plan", "op": "not_in", "values": ["free", "pro"]}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "vip", "op": "equals", "value": true}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "signed_up", "op": "after", "value": "2027-03-01"}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "signed_up", "op": "before", "value": "2027-03-10T08:00:00Z"}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "plan", "op": "before", "value": "2027-03-01"}),
            false,
        ),
        // 5 days and 4 hours ago.
        (
            json!({"type": "trait", "trait": "signed_up", "op": "within_last_days", "days": 6}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "signed_up", "op": "within_last_days", "days": 5}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "renewal", "op": "within_next_days", "days": 5}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "renewal", "op": "within_next_days", "days": 4}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "birthday", "op": "anniversary_within_days", "days": 7}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "birthday", "op": "anniversary_within_days", "days": 4}),
            false,
        ),
        (
            json!({"type": "trait", "trait": "birthday", "op": "anniversary_this_month"}),
            true,
        ),
        (
            json!({"type": "trait", "trait": "signed_up", "op": "anniversary_within_days", "days": 0}),
            false,
        ),
    ];
    for (def, expected) in cases {
        check(def, expected);
    }
}

#[test]
fn anniversaries_wrap_around_the_year() {
    let mut f = facts();
    f.traits.insert("birthday".into(), json!("1985-01-02"));
    let c = parse_condition(&json!({"type": "trait", "trait": "birthday", "op": "anniversary_within_days", "days": 7}))
        .unwrap();
    assert!(c.matches(&f, at("2026-12-28T09:00:00Z")));
    assert!(!c.matches(&f, at("2026-12-20T09:00:00Z")));
    let today =
        parse_condition(&json!({"type": "trait", "trait": "birthday", "op": "anniversary_within_days", "days": 0}))
            .unwrap();
    assert!(today.matches(&f, at("2027-01-02T23:59:59Z")));
    assert!(!today.matches(&f, at("2027-01-03T00:00:00Z")));
    assert_eq!(
        today.next_change(&f, at("2027-01-02T10:00:00Z")),
        Some(at("2027-01-03T00:00:00Z"))
    );
}

#[test]
fn event_counts_and_windows() {
    let cases = [
        (json!({"type": "event", "event": "Order Completed"}), true),
        (json!({"type": "event", "event": "Refund"}), false),
        (
            json!({"type": "event", "event": "Refund", "count": {"op": "at_most", "value": 0}}),
            true,
        ),
        (
            json!({"type": "event", "event": "Order Completed", "count": {"op": "exactly", "value": 3}}),
            true,
        ),
        (
            json!({"type": "event", "event": "Order Completed", "count": {"op": "at_least", "value": 4}}),
            false,
        ),
        (
            json!({"type": "event", "event": "Order Completed", "window": {"last_days": 30}, "count": {"op": "exactly", "value": 2}}),
            true,
        ),
        // 2027-02-20T10:00 is 23 days and 2 hours before now.
        (
            json!({"type": "event", "event": "Order Completed", "window": {"last_days": 23}, "count": {"op": "exactly", "value": 1}}),
            true,
        ),
        (
            json!({"type": "event", "event": "Order Completed", "window": {"last_days": 24}, "count": {"op": "exactly", "value": 2}}),
            true,
        ),
        (
            json!({"type": "event", "event": "Order Completed", "window": {"between": {"from": "2027-02-20T10:00:00Z", "to": "2027-03-14T10:00:00Z"}}, "count": {"op": "exactly", "value": 1}}),
            true,
        ),
        (
            json!({"type": "event", "event": "Order Completed", "where": [{"property": "coupon", "op": "exists"}], "count": {"op": "exactly", "value": 2}}),
            true,
        ),
        (
            json!({"type": "event", "event": "Order Completed", "where": [{"property": "total", "op": "greater_than", "value": 50}]}),
            true,
        ),
        (
            json!({"type": "event", "event": "Order Completed", "where": [{"property": "total", "op": "greater_than", "value": 50}, {"property": "coupon", "op": "equals", "value": "WELCOME"}], "window": {"last_days": 90}}),
            false,
        ),
    ];
    for (def, expected) in cases {
        check(def, expected);
    }
}

#[test]
fn first_and_last_times() {
    let cases = [
        (
            json!({"type": "event_time", "event": "Order Completed", "which": "first", "op": "before", "value": "2026-06-01"}),
            true,
        ),
        (
            json!({"type": "event_time", "event": "Order Completed", "which": "last", "op": "within_last_days", "days": 2}),
            true,
        ),
        (
            json!({"type": "event_time", "event": "Order Completed", "which": "last", "op": "not_within_last_days", "days": 2}),
            false,
        ),
        (
            json!({"type": "event_time", "event": "Order Completed", "which": "first", "op": "not_within_last_days", "days": 90}),
            true,
        ),
        (
            json!({"type": "event_time", "event": "Never", "which": "last", "op": "not_within_last_days", "days": 90}),
            false,
        ),
        (
            json!({"type": "event_time", "event": "Order Completed", "which": "last", "op": "after", "value": "2027-03-14T10:00:00Z"}),
            false,
        ),
    ];
    for (def, expected) in cases {
        check(def, expected);
    }
}

#[test]
fn aggregates_rfm() {
    let cases = [
        (
            json!({"type": "aggregate", "event": "Order Completed", "function": "sum", "property": "total", "op": "equals", "value": 200}),
            true,
        ),
        (
            json!({"type": "aggregate", "event": "Order Completed", "function": "sum", "property": "total", "window": {"last_days": 30}, "op": "equals", "value": 100}),
            true,
        ),
        (
            json!({"type": "aggregate", "event": "Order Completed", "function": "avg", "property": "total", "op": "greater_than", "value": 66.6}),
            true,
        ),
        (
            json!({"type": "aggregate", "event": "Order Completed", "function": "min", "property": "total", "op": "equals", "value": 40.5}),
            true,
        ),
        (
            json!({"type": "aggregate", "event": "Order Completed", "function": "max", "property": "total", "op": "less_than", "value": 100}),
            false,
        ),
        (
            json!({"type": "aggregate", "event": "Order Completed", "function": "count", "op": "greater_or_equal", "value": 3}),
            true,
        ),
        (
            json!({"type": "aggregate", "event": "Refund", "function": "sum", "property": "total", "op": "equals", "value": 0}),
            true,
        ),
        (
            json!({"type": "aggregate", "event": "Refund", "function": "avg", "property": "total", "op": "less_than", "value": 1}),
            false,
        ),
    ];
    for (def, expected) in cases {
        check(def, expected);
    }
}

#[test]
fn nesting_subscriptions_and_buckets() {
    check(json!({"type": "and", "conditions": []}), true);
    check(json!({"type": "or", "conditions": []}), false);
    check(
        json!({"type": "and", "conditions": [
            {"type": "trait", "trait": "plan", "op": "equals", "value": "pro"},
            {"type": "not", "condition": {"type": "event", "event": "Order Completed", "window": {"last_days": 1}}},
            {"type": "or", "conditions": [
                {"type": "subscription", "channel": "email", "state": "subscribed"},
                {"type": "subscription", "channel": "sms", "state": "subscribed"}
            ]}
        ]}),
        true,
    );
    check(
        json!({"type": "subscription", "channel": "sms", "state": "unknown"}),
        true,
    );
    check(
        json!({"type": "subscription", "channel": "email", "state": "unsubscribed"}),
        false,
    );
    check(json!({"type": "random_bucket", "percent": 100}), true);
    check(json!({"type": "random_bucket", "percent": 0}), false);
    // Buckets spread contacts evenly and depend on the salt.
    let share = |salt: &str| (0..10_000).filter(|id| bucket(*id, salt) < 10).count();
    assert!((800..1200).contains(&share("holdout")), "{}", share("holdout"));
    assert_ne!(
        (0..100).map(|i| bucket(i, "a")).collect::<Vec<_>>(),
        (0..100).map(|i| bucket(i, "b")).collect::<Vec<_>>()
    );
}

#[test]
fn time_alone_flips_membership_at_the_predicted_moment() {
    // "No purchase in the last 30 days": the last order is 2027-03-14T10:00.
    let c = parse_condition(&json!({"type": "not", "condition":
        {"type": "event", "event": "Order Completed", "window": {"last_days": 30}}}))
    .unwrap();
    let f = facts();
    assert!(!c.matches(&f, NOW));
    let flip = c.next_change(&f, NOW).unwrap();
    // The earliest candidate is when the February order leaves the window; walk the
    // candidates until membership actually changes.
    let mut t = NOW;
    let mut steps = 0;
    while !c.matches(&f, t) {
        t = c.next_change(&f, t).expect("keeps changing");
        steps += 1;
        assert!(steps < 10);
    }
    assert!(flip <= t);
    assert_eq!(t, at("2027-04-13T10:00:00Z") + 1, "30 days after the last order");
    assert!(!c.matches(&f, t - 1));
    // Conditions that time cannot change have no next change.
    let plain = parse_condition(&json!({"type": "trait", "trait": "plan", "op": "equals", "value": "pro"})).unwrap();
    assert_eq!(plain.next_change(&f, NOW), None);
}

#[test]
fn invalid_definitions_point_at_the_node() {
    let cases = [
        (json!({"type": "trait", "trait": "plan", "op": "equals"}), "$"),
        (
            json!({"type": "and", "conditions": [{"type": "trait", "trait": "a", "op": "exists"}, {"type": "evnt", "event": "E"}]}),
            "$.conditions[1]",
        ),
        (
            json!({"type": "not", "condition": {"type": "trait", "trait": "a", "op": "bigger", "value": 1}}),
            "$.condition",
        ),
        (json!({"type": "trait", "trait": "", "op": "exists"}), "$.trait"),
        (
            json!({"type": "trait", "trait": "d", "op": "before", "value": "soon"}),
            "$.value",
        ),
        (
            json!({"type": "event", "event": "E", "window": {"between": {"from": "x", "to": "2027-01-01"}}}),
            "$.window.between.from",
        ),
        (
            json!({"type": "event", "event": "E", "where": [{"property": "p\"", "op": "exists"}]}),
            "$.where[0].property",
        ),
        (
            json!({"type": "aggregate", "event": "E", "function": "sum", "op": "equals", "value": 1}),
            "$.property",
        ),
        (
            json!({"type": "subscription", "channel": "fax", "state": "subscribed"}),
            "$.channel",
        ),
        (json!({"type": "random_bucket", "percent": 101}), "$.percent"),
        (
            json!({"type": "trait", "trait": "a", "op": "equals", "value": {"x": 1}}),
            "$.value",
        ),
        (
            json!({"type": "event", "event": "E", "windw": {"last_days": 3}}),
            "$.windw",
        ),
        (
            json!({"type": "or", "conditions": [{"type": "event", "event": "E", "where": [{"property": "p", "op": "exists", "valu": 1}]}]}),
            "$.conditions[0].where[0].valu",
        ),
    ];
    for (def, path) in cases {
        let err = parse_condition(&def).unwrap_err();
        assert_eq!(err.path, path, "{def}: {err}");
        assert!(!err.message.is_empty());
    }
    let mut deep = json!({"type": "trait", "trait": "a", "op": "exists"});
    for _ in 0..20 {
        deep = json!({"type": "not", "condition": deep});
    }
    assert!(parse_condition(&deep).unwrap_err().message.contains("deeper"));
}

#[test]
fn names_read_by_a_condition() {
    let c = parse_condition(&json!({"type": "or", "conditions": [
        {"type": "event", "event": "B"}, {"type": "aggregate", "event": "A", "function": "count", "op": "equals", "value": 1},
        {"type": "trait", "trait": "plan", "op": "exists"}, {"type": "not", "condition": {"type": "event", "event": "B"}}
    ]}))
    .unwrap();
    assert_eq!(c.event_names(), ["A", "B"]);
    assert_eq!(c.trait_names(), ["plan"]);
}

#[test]
fn segment_membership_and_references() {
    let mut f = facts();
    f.segments.insert(7);
    check(json!({"type": "segment", "segment": 7}), false);
    let c = parse_condition(&json!({"type": "segment", "segment": 7})).unwrap();
    assert!(c.matches(&f, NOW));
    assert_eq!(c.segment_ids(), [7]);
    assert_eq!(c.next_change(&f, NOW), None);
    assert_eq!(
        parse_condition(&json!({"type": "segment", "segment": 0}))
            .unwrap_err()
            .path,
        "$.segment"
    );
    // 1 reads 2; 2 reads nothing yet.
    let one = parse_condition(&json!({"type": "segment", "segment": 2})).unwrap();
    let plain = parse_condition(&json!({"type": "trait", "trait": "a", "op": "exists"})).unwrap();
    let existing = [(1, &one), (2, &plain)];
    assert!(check_references(None, &one, &existing).is_ok());
    let reads_one = parse_condition(&json!({"type": "not", "condition": {"type": "segment", "segment": 1}})).unwrap();
    assert!(
        check_references(Some(2), &reads_one, &existing)
            .unwrap_err()
            .message
            .contains("cycle")
    );
    assert!(
        check_references(Some(1), &one, &existing).is_ok(),
        "1 may keep reading 2"
    );
    let own = parse_condition(&json!({"type": "segment", "segment": 1})).unwrap();
    assert!(
        check_references(Some(1), &own, &existing)
            .unwrap_err()
            .message
            .contains("itself")
    );
    let missing = parse_condition(&json!({"type": "segment", "segment": 9})).unwrap();
    assert!(
        check_references(None, &missing, &existing)
            .unwrap_err()
            .message
            .contains("does not exist")
    );
}

#[test]
fn administrative_segments_are_left_out_of_the_others() {
    let c = parse_condition(&json!({"type": "trait", "trait": "plan", "op": "exists"})).unwrap();
    assert_eq!(c.excluding(&[]), c);
    let effective = c.excluding(&[3, 9]);
    assert_eq!(effective.segment_ids(), vec![3, 9]);
    assert!(effective.validate().is_ok());
    let mut f = facts();
    assert_eq!(c.matches(&f, NOW), effective.matches(&f, NOW));
    f.segments.insert(9);
    assert!(c.matches(&f, NOW) && !effective.matches(&f, NOW));
    // Time-based definitions keep flipping on time.
    let timed = parse_condition(&json!({"type": "event", "event": "Order Completed", "count": {"op": "at_least", "value": 1}, "window": {"last_days": 30}})).unwrap();
    assert_eq!(timed.depends_on_time(), timed.excluding(&[3]).depends_on_time());
}

fn with_messages() -> Facts {
    let mut f = facts();
    f.traits.insert("lead_score".into(), json!(35));
    f.events.extend([
        ev(
            "Message Sent",
            "2027-03-01T09:00:00Z",
            json!({"message_id": 1, "channel": "email", "template_id": 7}),
        ),
        ev(
            "Email Opened",
            "2027-03-01T10:00:00Z",
            json!({"message_id": 1, "channel": "email", "template_id": 7}),
        ),
        ev(
            "Message Sent",
            "2027-03-14T09:00:00Z",
            json!({"message_id": 2, "channel": "sms", "template_id": 9}),
        ),
        ev(
            "Message Bounced",
            "2026-12-01T09:00:00Z",
            json!({"message_id": 3, "channel": "email", "template_id": 7}),
        ),
    ]);
    f
}

#[test]
fn message_engagement() {
    let cases = [
        (json!({"type": "message", "action": "received"}), true),
        (
            json!({"type": "message", "action": "received", "count": {"op": "exactly", "value": 2}}),
            true,
        ),
        (
            json!({"type": "message", "action": "received", "channel": "email"}),
            true,
        ),
        (
            json!({"type": "message", "action": "received", "channel": "push"}),
            false,
        ),
        (
            json!({"type": "message", "action": "received", "template": 9, "channel": "sms"}),
            true,
        ),
        (
            json!({"type": "message", "action": "received", "template": 9, "channel": "email"}),
            false,
        ),
        (json!({"type": "message", "action": "opened", "template": 7}), true),
        (json!({"type": "message", "action": "opened", "template": 9}), false),
        (json!({"type": "message", "action": "clicked"}), false),
        // Window edges: the open was 14 days 2 hours ago.
        (
            json!({"type": "message", "action": "opened", "window": {"last_days": 14}}),
            false,
        ),
        (
            json!({"type": "message", "action": "opened", "window": {"last_days": 15}}),
            true,
        ),
        (
            json!({"type": "message", "action": "bounced", "window": {"last_days": 90}}),
            false,
        ),
        (
            json!({"type": "message", "action": "bounced", "window": {"last_days": 120}}),
            true,
        ),
        (
            json!({"type": "message", "action": "bounced", "window": {"between": {"from": "2026-12-01T09:00:00Z", "to": "2026-12-02"}}}),
            true,
        ),
        (
            json!({"type": "message", "action": "bounced", "window": {"between": {"from": "2026-11-01", "to": "2026-12-01T09:00:00Z"}}}),
            false,
        ),
        // "Received but never opened": the SMS.
        (
            json!({"type": "and", "conditions": [
                {"type": "message", "action": "received", "template": 9},
                {"type": "not", "condition": {"type": "message", "action": "opened", "template": 9}}]}),
            true,
        ),
    ];
    let f = with_messages();
    for (def, want) in cases {
        let c = parse_condition(&def).unwrap_or_else(|e| panic!("{def}: {e}"));
        assert_eq!(c.matches(&f, NOW), want, "{def}");
        let back: Condition = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c, "{def}");
    }
    // It reads the message event of its action, so only those events re-evaluate it.
    let c = parse_condition(&json!({"type": "message", "action": "clicked"})).unwrap();
    assert_eq!(c.event_names(), vec!["Email Link Clicked"]);
    // The open leaves the 15-day window 15 days after it happened (+1 ms).
    let c = parse_condition(&json!({"type": "message", "action": "opened", "window": {"last_days": 15}})).unwrap();
    let flip = at("2027-03-16T10:00:00Z") + 1;
    assert_eq!(c.next_change(&f, NOW), Some(flip));
    assert!(c.matches(&f, flip - 1));
    assert!(!c.matches(&f, flip));
    for (def, path) in [
        (json!({"type": "message", "action": "read"}), "$"),
        (
            json!({"type": "message", "action": "opened", "channel": "fax"}),
            "$.channel",
        ),
        (
            json!({"type": "message", "action": "opened", "template": 0}),
            "$.template",
        ),
        (
            json!({"type": "message", "action": "opened", "templates": 1}),
            "$.templates",
        ),
    ] {
        assert_eq!(parse_condition(&def).unwrap_err().path, path, "{def}");
    }
}

#[test]
fn named_scores() {
    let mut f = with_messages();
    f.traits.insert("engagement_score".into(), json!(12));
    let c =
        parse_condition(&json!({"type": "lead_score", "score": "engagement", "op": "greater_or_equal", "value": 10}))
            .unwrap();
    assert!(c.matches(&f, NOW));
    assert_eq!(c.trait_names(), vec!["engagement_score"]);
    assert_eq!(c.score_thresholds(), vec![("engagement".to_string(), 10.0)]);
    let default =
        parse_condition(&json!({"type": "lead_score", "score": "lead_score", "op": "greater_or_equal", "value": 36}))
            .unwrap();
    assert!(!default.matches(&f, NOW), "the default score reads lead_score (35)");
    let bad = parse_condition(&json!({"type": "lead_score", "score": "Bad", "op": "equals", "value": 1})).unwrap_err();
    assert_eq!(bad.path, "$.score");
    let by_trait =
        parse_condition(&json!({"type": "trait", "trait": "lead_score", "op": "greater_than", "value": 50})).unwrap();
    assert_eq!(by_trait.score_thresholds(), vec![("lead_score".to_string(), 50.0)]);
}

#[test]
fn lead_score() {
    let f = with_messages();
    for (def, want) in [
        (
            json!({"type": "lead_score", "op": "greater_or_equal", "value": 35}),
            true,
        ),
        (json!({"type": "lead_score", "op": "greater_than", "value": 35}), false),
        (json!({"type": "lead_score", "op": "less_than", "value": 50.5}), true),
        (json!({"type": "lead_score", "op": "equals", "value": 35}), true),
    ] {
        let c = parse_condition(&def).unwrap();
        assert_eq!(c.matches(&f, NOW), want, "{def}");
        assert_eq!(c.trait_names(), vec!["lead_score"]);
    }
    // No score (or a score that is not a number) counts as 0.
    let mut none = facts();
    let zero = parse_condition(&json!({"type": "lead_score", "op": "equals", "value": 0})).unwrap();
    assert!(zero.matches(&none, NOW));
    none.traits.insert("lead_score".into(), json!("high"));
    assert!(zero.matches(&none, NOW));
    assert_eq!(
        parse_condition(&json!({"type": "lead_score", "op": "between", "value": 1}))
            .unwrap_err()
            .path,
        "$"
    );
}

#[test]
fn anniversaries_follow_the_contacts_time_zone() {
    let today =
        parse_condition(&json!({"type": "trait", "trait": "birthday", "op": "anniversary_within_days", "days": 0}))
            .unwrap();
    let month =
        parse_condition(&json!({"type": "trait", "trait": "birthday", "op": "anniversary_this_month"})).unwrap();
    let mut f = facts();
    f.traits.insert("birthday".into(), json!("1985-04-01"));
    // 2027-03-31T20:00Z is already 1 April in Tokyo (UTC+9), still 31 March in UTC
    // and in New York (UTC-4 with daylight saving time).
    let t = at("2027-03-31T20:00:00Z");
    assert!(!today.matches(&f, t));
    assert!(!month.matches(&f, t));
    f.traits.insert("timezone".into(), json!("Asia/Tokyo"));
    assert!(today.matches(&f, t));
    assert!(month.matches(&f, t));
    // In Tokyo the birthday ends at local midnight, 15:00 UTC on 1 April.
    assert_eq!(today.next_change(&f, t), Some(at("2027-04-01T15:00:00Z")));
    assert!(today.matches(&f, at("2027-04-01T14:59:59.999Z")));
    assert!(!today.matches(&f, at("2027-04-01T15:00:00Z")));
    f.traits.insert("timezone".into(), json!("America/New_York"));
    assert!(!today.matches(&f, t));
    // New York's 1 April starts at 04:00 UTC (EDT) and ends at 04:00 UTC on 2 April.
    assert_eq!(today.next_change(&f, t), Some(at("2027-04-01T04:00:00Z")));
    assert!(today.matches(&f, at("2027-04-01T04:00:00Z")));
    assert!(today.matches(&f, at("2027-04-02T03:59:59.999Z")));
    assert!(!today.matches(&f, at("2027-04-02T04:00:00Z")));
    // Only an exact IANA name counts; anything else is UTC.
    for not_a_zone in [
        json!("asia/tokyo"),
        json!("+09:00"),
        json!("JST-9"),
        json!(9),
        json!(" Asia/Tokyo"),
    ] {
        f.traits.insert("timezone".into(), not_a_zone.clone());
        assert_eq!(segment_zone(&f.traits), None, "{not_a_zone}");
        assert!(!today.matches(&f, t), "{not_a_zone}");
        assert_eq!(today.next_change(&f, t), Some(at("2027-04-01T00:00:00Z")));
    }
    // The zone is a trait the condition reads: changing it re-evaluates the contact.
    assert_eq!(today.trait_names(), vec!["birthday", "timezone"]);
    // A property filter's anniversary uses the contact's zone too.
    f.traits.insert("timezone".into(), json!("Asia/Tokyo"));
    f.events.push(ev(
        "Subscription Started",
        "2026-04-01T10:00:00Z",
        json!({"started": "2026-04-01"}),
    ));
    let renewal = parse_condition(&json!({"type": "event", "event": "Subscription Started",
        "where": [{"property": "started", "op": "anniversary_within_days", "days": 0}]}))
    .unwrap();
    assert!(renewal.matches(&f, t));
    assert!(renewal.trait_names().contains(&"timezone".to_string()));
}
