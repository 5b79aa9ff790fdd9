use super::*;
use proptest::prelude::*;
use serde_json::json;

const NOW: Millis = 1_800_000_000_000;

fn received() -> Received {
    Received {
        at: NOW,
        ip: Some("203.0.113.7".into()),
    }
}

fn ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("gen-{n}")
    }
}

fn single(kind: CallKind, v: Value) -> Result<Call, ParseError> {
    let body = serde_json::to_vec(&v).unwrap();
    parse_single(kind, &body, &received(), &mut ids()).map(|p| p.messages.into_iter().next().unwrap())
}

fn batch(v: Value) -> Result<Parsed, ParseError> {
    parse_batch(&serde_json::to_vec(&v).unwrap(), &received(), &mut ids())
}

#[test]
fn track_is_parsed_with_everything_kept() {
    let m = single(
        CallKind::Track,
        json!({
            "userId": "u1", "anonymousId": "a1", "event": "Order Completed", "messageId": "m1",
            "properties": {"total": 42.5}, "context": {"timezone": "Europe/Paris", "campaign": {"source": "mail"}},
            "integrations": {"All": true}, "timestamp": "2027-01-15T08:00:00Z", "unknownField": 1
        }),
    )
    .unwrap();
    assert_eq!(m.kind, CallKind::Track);
    assert_eq!(m.event.as_deref(), Some("Order Completed"));
    assert_eq!(m.message_id, "m1");
    assert_eq!(m.properties["total"], json!(42.5));
    assert_eq!(m.context["ip"], json!("203.0.113.7"), "client ip is recorded");
    assert_eq!(m.context["campaign"]["source"], json!("mail"));
    assert_eq!(m.integrations["All"], json!(true));
    assert_eq!(m.timestamp, parse_instant("2027-01-15T08:00:00Z").unwrap());
    assert_eq!(m.received_at, NOW);
}

#[test]
fn sent_at_corrects_clock_skew() {
    // The device clock is 1 hour fast: it says the event happened 10 s before sending.
    let m = single(
        CallKind::Track,
        json!({"userId": "u", "event": "E", "timestamp": "2027-01-15T09:00:00Z", "sentAt": "2027-01-15T09:00:10Z"}),
    )
    .unwrap();
    assert_eq!(m.timestamp, NOW - 10_000);
    assert_eq!(m.original_timestamp, parse_instant("2027-01-15T09:00:00Z"));
    // Batch-level sentAt applies to every message.
    let p = batch(json!({"sentAt": "2027-01-15T09:00:10Z", "batch": [
        {"type": "track", "userId": "u", "event": "E", "timestamp": "2027-01-15T09:00:05Z"}
    ]}))
    .unwrap();
    assert_eq!(p.messages[0].timestamp, NOW - 5_000);
    // No timestamp at all: it happened when received.
    let m = single(CallKind::Page, json!({"anonymousId": "a"})).unwrap();
    assert_eq!(m.timestamp, NOW);
}

#[test]
fn message_ids_are_generated_when_missing() {
    let p = batch(json!({"batch": [
        {"type": "identify", "userId": "u", "traits": {"a": 1}},
        {"type": "track", "userId": "u", "event": "E", "messageId": "given"},
        {"type": "page", "userId": "u", "name": "Home"},
    ]}))
    .unwrap();
    let ids: Vec<_> = p.messages.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, ["gen-1", "given", "gen-2"]);
}

#[test]
fn numeric_user_ids_are_accepted_as_strings() {
    let m = single(CallKind::Identify, json!({"userId": 12345, "traits": {}})).unwrap();
    assert_eq!(m.user_id.as_deref(), Some("12345"));
}

#[test]
fn batch_defaults_and_write_key() {
    let p = batch(json!({
        "writeKey": "wk", "context": {"library": {"name": "x"}, "locale": "fr-FR"}, "integrations": {"Mailchimp": false},
        "batch": [{"type": "track", "userId": "u", "event": "E", "context": {"locale": "de-DE"}}]
    }))
    .unwrap();
    assert_eq!(p.write_key.as_deref(), Some("wk"));
    let m = &p.messages[0];
    assert_eq!(m.context["locale"], json!("de-DE"), "the message's own context wins");
    assert_eq!(m.context["library"]["name"], json!("x"));
    assert_eq!(m.integrations["Mailchimp"], json!(false));
}

#[test]
fn each_type_requires_its_fields() {
    let cases: Vec<(CallKind, Value, &str)> = vec![
        (CallKind::Track, json!({"userId": "u"}), "event"),
        (CallKind::Track, json!({"event": "E"}), "userId or anonymousId"),
        (
            CallKind::Identify,
            json!({"userId": "", "traits": {}}),
            "userId or anonymousId",
        ),
        (CallKind::Group, json!({"userId": "u"}), "groupId"),
        (CallKind::Alias, json!({"userId": "u"}), "previousId"),
        (
            CallKind::Alias,
            json!({"previousId": "p", "anonymousId": "a"}),
            "userId",
        ),
    ];
    for (kind, body, field) in cases {
        let err = single(kind, body.clone()).unwrap_err();
        assert_eq!(err, ParseError::MissingField { field: field.into() }, "{kind:?} {body}");
    }
}

#[test]
fn wrong_types_name_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"userId": {"x": 1}, "event": "E"}), "userId"),
        (json!({"userId": "u", "event": 5}), "event"),
        (json!({"userId": "u", "event": "E", "properties": [1]}), "properties"),
        (json!({"userId": "u", "event": "E", "context": "x"}), "context"),
        (json!({"userId": "u", "event": "E", "timestamp": "soon"}), "timestamp"),
        (json!({"userId": "u", "event": "E", "timestamp": 17}), "timestamp"),
        (json!({"userId": "u", "event": "E", "sentAt": true}), "sentAt"),
        (
            json!({"userId": "u", "event": "E", "context": {"timezone": "Mars/Olympus"}}),
            "context.timezone",
        ),
        (json!({"userId": "u", "event": "x".repeat(MAX_ID_CHARS + 1)}), "event"),
    ];
    for (body, field) in cases {
        let err = single(CallKind::Track, body.clone()).unwrap_err();
        assert_eq!(err.code(), "invalid_field", "{body}");
        assert_eq!(err.field(), Some(field), "{body}");
    }
    assert_eq!(
        parse_single(CallKind::Track, b"[1,2]", &received(), &mut ids())
            .unwrap_err()
            .field(),
        Some("$")
    );
}

#[test]
fn bad_batches_are_rejected_whole() {
    let err = batch(json!({"batch": [
        {"type": "track", "userId": "u", "event": "ok"},
        {"type": "track", "userId": "u"},
    ]}))
    .unwrap_err();
    assert_eq!(
        err,
        ParseError::MissingField {
            field: "batch[1].event".into()
        }
    );
    assert_eq!(
        batch(json!({"batch": [{"userId": "u"}]})).unwrap_err().field(),
        Some("batch[0].type")
    );
    assert_eq!(
        batch(json!({"batch": [{"type": "order"}]})).unwrap_err().field(),
        Some("batch[0].type")
    );
    assert_eq!(batch(json!({"batch": [7]})).unwrap_err().field(), Some("batch[0]"));
    assert_eq!(batch(json!({"batch": {}})).unwrap_err().field(), Some("batch"));
    assert_eq!(
        batch(json!({})).unwrap_err(),
        ParseError::MissingField { field: "batch".into() }
    );
    assert_eq!(
        parse_batch(b"{\"batch\": [", &received(), &mut ids())
            .unwrap_err()
            .code(),
        "malformed_json"
    );
}

#[test]
fn size_limits() {
    let big = "x".repeat(MAX_MESSAGE_BYTES);
    let err = single(
        CallKind::Track,
        json!({"userId": "u", "event": "E", "properties": {"b": big}}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "message_too_large");
    let err = batch(json!({"batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"b": big}}]}))
        .unwrap_err();
    assert_eq!(err.field(), Some("batch[0]"));
    let many: Vec<Value> = (0..30)
        .map(|_| json!({"type": "track", "userId": "u", "event": "E", "properties": {"b": "y".repeat(20_000)}}))
        .collect();
    assert_eq!(batch(json!({ "batch": many })).unwrap_err().code(), "batch_too_large");
}

#[test]
fn traits_only_where_they_belong() {
    let m = single(
        CallKind::Track,
        json!({"userId": "u", "event": "E", "traits": {"x": 1}}),
    )
    .unwrap();
    assert!(m.traits.is_empty());
    let m = single(
        CallKind::Identify,
        json!({"userId": "u", "context": {"traits": {"plan": "pro"}}}),
    )
    .unwrap();
    assert_eq!(m.traits["plan"], json!("pro"));
    let m = single(
        CallKind::Page,
        json!({"userId": "u", "name": "Pricing", "category": "Docs"}),
    )
    .unwrap();
    assert_eq!(m.properties["category"], json!("Docs"));
}

fn arb_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("2027-01-15T08:00:00Z"),
            Just("track"),
            Just("identify"),
            Just("alias"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(depth, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("type".to_string()),
                        Just("userId".to_string()),
                        Just("anonymousId".to_string()),
                        Just("event".to_string()),
                        Just("batch".to_string()),
                        Just("traits".to_string()),
                        Just("properties".to_string()),
                        Just("context".to_string()),
                        Just("timestamp".to_string()),
                        Just("sentAt".to_string()),
                        Just("previousId".to_string()),
                        Just("groupId".to_string()),
                        Just("messageId".to_string()),
                        Just("timezone".to_string()),
                        ".{0,6}",
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the parser.
    #[test]
    fn fuzz_raw_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_batch(&body, &received(), &mut ids());
        for kind in CallKind::ALL {
            let _ = parse_single(kind, &body, &received(), &mut ids());
        }
    }

    /// Structured, Segment-shaped JSON never panics the parser, and whatever it
    /// accepts satisfies the invariants storage relies on.
    #[test]
    fn fuzz_structured(v in arb_json(4), wrap in any::<bool>()) {
        let body = if wrap { json!({"batch": [v]}) } else { v };
        let bytes = serde_json::to_vec(&body).unwrap();
        if let Ok(p) = parse_batch(&bytes, &received(), &mut ids()) {
            for m in &p.messages { check_invariants(m); }
        }
        for kind in CallKind::ALL {
            if let Ok(p) = parse_single(kind, &bytes, &received(), &mut ids()) {
                for m in &p.messages { check_invariants(m); }
            }
        }
    }
}

fn check_invariants(m: &Call) {
    assert!(!m.message_id.is_empty());
    match m.kind {
        CallKind::Alias => assert!(m.user_id.is_some() && m.previous_id.is_some()),
        CallKind::Track => assert!(m.event.is_some()),
        CallKind::Group => assert!(m.group_id.is_some()),
        _ => {}
    }
    if m.kind != CallKind::Alias {
        assert!(m.user_id.is_some() || m.anonymous_id.is_some());
    }
    for id in [&m.user_id, &m.anonymous_id, &m.event].into_iter().flatten() {
        assert!(!id.is_empty() && id.chars().count() <= MAX_ID_CHARS);
    }
}
