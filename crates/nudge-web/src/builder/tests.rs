use super::*;
use serde_json::json;

fn cond(v: Value) -> Condition {
    nudge_core::segment::parse_condition(&v).unwrap()
}

fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn a_posted_form_becomes_a_condition() {
    let form = fields(&[
        ("root.type", "and"),
        ("root.children.0.type", "trait"),
        ("root.children.0.trait", " plan "),
        ("root.children.0.op", "in"),
        ("root.children.0.value", "pro, enterprise, 3"),
        ("root.children.1.type", "not"),
        ("root.children.1.children.0.type", "event"),
        ("root.children.1.children.0.event", "Order Completed"),
        ("root.children.1.children.0.count_op", "at_least"),
        ("root.children.1.children.0.count", "۲"),
        ("root.children.1.children.0.window", "last_days"),
        ("root.children.1.children.0.window_n", "90"),
        ("root.children.1.children.0.where.0.property", "total"),
        ("root.children.1.children.0.where.0.op", "greater_than"),
        ("root.children.1.children.0.where.0.value", "50"),
        ("root.add", "event"),
    ]);
    let tree = Node::from_form(&form).unwrap();
    assert_eq!(
        tree.to_condition().unwrap(),
        cond(json!({"type": "and", "conditions": [
            {"type": "trait", "trait": "plan", "op": "in", "values": ["pro", "enterprise", 3]},
            {"type": "not", "condition": {"type": "event", "event": "Order Completed",
                "where": [{"property": "total", "op": "greater_than", "value": 50}],
                "count": {"op": "at_least", "value": 2}, "window": {"last_days": 90}}}
        ]}))
    );
}

#[test]
fn children_follow_their_numbers_not_the_posting_order() {
    let form = fields(&[
        ("root.type", "or"),
        ("root.children.10.type", "segment"),
        ("root.children.10.segment", "4"),
        ("root.children.2.type", "lead_score"),
        ("root.children.2.op", "greater_or_equal"),
        ("root.children.2.value", "50"),
    ]);
    let c = Node::from_form(&form).unwrap().to_condition().unwrap();
    assert_eq!(
        c,
        cond(json!({"type": "or", "conditions": [
            {"type": "lead_score", "op": "greater_or_equal", "value": 50},
            {"type": "segment", "segment": 4}
        ]}))
    );
}

#[test]
fn problems_are_reported_at_their_nodes() {
    let form = fields(&[
        ("root.type", "and"),
        ("root.children.0.type", "trait"),
        ("root.children.0.trait", ""),
        ("root.children.0.op", "greater_than"),
        ("root.children.0.value", "lots"),
        ("root.children.1.type", "or"),
        ("root.children.1.children.0.type", "event"),
        ("root.children.1.children.0.event", "Signed Up"),
        ("root.children.1.children.0.count_op", "at_least"),
        ("root.children.1.children.0.count", "1"),
        ("root.children.1.children.0.window", "between"),
        ("root.children.1.children.0.window_from", "yesterday"),
        ("root.children.1.children.0.window_to", "2026-12-01"),
        ("root.children.2.type", "not"),
    ]);
    let problems = Node::from_form(&form).unwrap().to_condition().unwrap_err();
    let at: Vec<(&str, &str)> = problems.iter().map(|p| (p.path.as_str(), p.field.as_str())).collect();
    assert_eq!(
        at,
        [
            ("root.children.0", "trait"),
            ("root.children.0", "value"),
            ("root.children.1.children.0", "window_from"),
            ("root.children.2", ""),
        ]
    );
    assert_eq!(problems[1].message, Message::Key("builder-error-number"));
}

#[test]
fn validator_paths_map_to_nodes_and_fields() {
    assert_eq!(locate("$"), ("root".into(), "".into()));
    assert_eq!(
        locate("$.conditions[1].where[0].value"),
        ("root.children.1".into(), "where.0.value".into())
    );
    assert_eq!(
        locate("$.conditions[0].condition.conditions[3].window.between.from"),
        (
            "root.children.0.children.0.children.3".into(),
            "window.between.from".into()
        )
    );
}

fn tree(v: Value) -> Node {
    Node::from_condition(&cond(v))
}

#[test]
fn add_remove_nest_and_unwrap() {
    let mut t = tree(json!({"type": "and", "conditions": [
        {"type": "trait", "trait": "a", "op": "exists"},
        {"type": "trait", "trait": "b", "op": "exists"}
    ]}));
    assert!(t.apply("add:root", "event"));
    assert_eq!(t.children[2].kind, "event");
    assert!(t.apply("remove:root.children.2", ""));
    assert!(t.apply("wrap:root.children.1:or", ""));
    assert_eq!(t.children[1].kind, "or");
    assert_eq!(t.children[1].children[0].field("trait"), "b");
    assert!(t.apply("add:root.children.1", "trait"));
    assert!(t.apply("wrap:root.children.0:not", ""));
    assert_eq!(t.children[0].kind, "not");
    // A `not` gives way to its child.
    assert!(t.apply("unwrap:root.children.0", ""));
    assert_eq!(t.children[0].field("trait"), "a");
    // A group of two moves its children up into the parent.
    assert!(t.apply("unwrap:root.children.1", ""));
    assert_eq!(t.children.len(), 3);
    assert!(!t.apply("add_filter:root.children.0", ""), "traits have no filters");
    assert!(!t.apply("remove:root.children.9", ""));
    assert!(!t.apply("add:root.children.0", "trait"), "a leaf holds no children");
    assert!(t.apply("remove:root", ""));
    assert_eq!(t, Node::new("and"));
    let mut e = tree(json!({"type": "event", "event": "X"}));
    assert!(e.apply("add_filter:root", ""));
    assert!(e.apply("add_filter:root", ""));
    assert!(e.apply("remove_filter:root:0", ""));
    assert_eq!(e.filters.len(), 1);
}

#[test]
fn values_are_written_so_they_read_back() {
    for v in [
        json!("pro"),
        json!("42"),
        json!(" padded "),
        json!("true"),
        json!(""),
        json!("\"quoted\""),
        json!(42),
        json!(1.5),
        json!(true),
    ] {
        assert_eq!(parse_scalar(&scalar_text(&v)), v, "{v}");
    }
    assert_eq!(scalar_text(&json!("pro")), "pro");
    assert_eq!(scalar_text(&json!("42")), "\"42\"");
    for list in [
        vec![json!("FR"), json!("BE")],
        vec![json!("a,b"), json!("c")],
        vec![json!("[x")],
        vec![],
        vec![json!(1), json!("1")],
    ] {
        assert_eq!(parse_list(&list_text(&list)), list, "{list:?}");
    }
    assert_eq!(list_text(&[json!("FR"), json!("BE")]), "FR, BE");
    assert_eq!(digits("۱۲٫۵"), "12.5");
    assert_eq!(digits("٣٠"), "30");
}

#[test]
fn every_condition_type_round_trips_through_the_tree() {
    let all = json!({"type": "or", "conditions": [
        {"type": "and", "conditions": []},
        {"type": "or", "conditions": []},
        {"type": "trait", "trait": "plan", "op": "equals", "value": "pro"},
        {"type": "trait", "trait": "age", "op": "greater_or_equal", "value": 18},
        {"type": "trait", "trait": "birthday", "op": "anniversary_within_days", "days": 7},
        {"type": "trait", "trait": "birthday", "op": "anniversary_this_month"},
        {"type": "trait", "trait": "signed_up_at", "op": "before", "value": "2026-01-01"},
        {"type": "event", "event": "Order Completed", "where": [
            {"property": "coupon", "op": "exists"},
            {"property": "total", "op": "less_than", "value": 20.5}],
         "count": {"op": "exactly", "value": 0}, "window": {"between": {"from": "2026-01-01", "to": "2026-02-01"}}},
        {"type": "event_time", "event": "Order Completed", "which": "first", "op": "not_within_last_hours", "hours": 6},
        {"type": "event_time", "event": "Order Completed", "which": "last", "op": "after", "value": "2026-03-01T10:00:00Z"},
        {"type": "aggregate", "event": "Order Completed", "function": "avg", "property": "total",
         "window": {"last_hours": 48}, "op": "less_or_equal", "value": 99.99},
        {"type": "aggregate", "event": "Order Completed", "function": "count", "op": "equals", "value": 3},
        {"type": "subscription", "channel": "sms", "state": "pending"},
        {"type": "random_bucket", "percent": 15, "salt": " holdout "},
        {"type": "segment", "segment": 12},
        {"type": "message", "action": "clicked", "channel": "email", "template": 3,
         "count": {"op": "at_most", "value": 2}, "window": {"last_days": 14}},
        {"type": "message", "action": "bounced"},
        {"type": "lead_score", "op": "greater_than", "value": -5},
        {"type": "not", "condition": {"type": "trait", "trait": "vip", "op": "not_in", "values": [true, "yes"]}}
    ]});
    let c = cond(all);
    assert_eq!(Node::from_condition(&c).to_condition().unwrap(), c);
}
