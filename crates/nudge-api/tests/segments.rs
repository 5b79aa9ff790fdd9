//! Live segments through the public APIs: events sent to the Segment API move a
//! contact into and out of segments; a "no purchase in N days" segment flips when the
//! (injected) clock passes the moment, with no new event; entering and leaving are
//! recorded in the history and as events on the contact's timeline.

use nudge_core::{Millis, format_millis};
use serde_json::{Value, json};

const DAY: Millis = 86_400_000;

mod common;
use common::*;

/// Helpers of the segment tests.
impl App {
    async fn segment_names(&self, contact: i64) -> Vec<String> {
        let v = self.get(&format!("/api/v1/contacts/{contact}/segments")).await;
        let mut names: Vec<String> = v["current"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["segment_name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }
}

async fn create(app: &App, name: &str, definition: Value) -> i64 {
    let (s, v) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/segments",
            Some(json!({"name": name, "definition": definition})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_i64().unwrap()
}

#[tokio::test]
async fn events_move_contacts_and_time_flips_membership() {
    let app = spawn_app().await;
    let buyers = create(&app, "Buyers", json!({"type": "event", "event": "Order Completed"})).await;
    let lapsed = create(
        &app,
        "No purchase in 30 days",
        json!({"type": "event_time", "event": "Order Completed", "which": "last", "op": "not_within_last_days", "days": 30}),
    )
    .await;
    let vip = create(
        &app,
        "VIP",
        json!({"type": "trait", "trait": "plan", "op": "equals", "value": "vip"}),
    )
    .await;

    app.track(json!({"batch": [
        {"type": "identify", "userId": "ada", "traits": {"email": "ada@example.com", "plan": "free"}},
        {"type": "track", "userId": "ada", "event": "Order Completed", "properties": {"total": 30}, "timestamp": format_millis(T0)},
    ]}))
    .await;
    app.settle().await;
    let ada = app.get("/api/v1/contacts/lookup?user_id=ada").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(app.segment_names(ada).await, ["Buyers"]);

    // A trait change moves her into VIP.
    app.track(json!({"batch": [{"type": "identify", "userId": "ada", "traits": {"plan": "vip"}}]}))
        .await;
    app.settle().await;
    assert_eq!(app.segment_names(ada).await, ["Buyers", "VIP"]);

    // Time passes with no new event: 30 days after the order she has lapsed.
    app.clock.set(T0 + 30 * DAY);
    app.settle().await;
    assert_eq!(
        app.segment_names(ada).await,
        ["Buyers", "VIP"],
        "not yet: exactly 30 days is still within"
    );
    app.clock.set(T0 + 30 * DAY + 1);
    app.settle().await;
    assert_eq!(
        app.segment_names(ada).await,
        ["Buyers", "No purchase in 30 days", "VIP"]
    );

    // A new order brings her back.
    app.clock.advance(DAY);
    app.track(
        json!({"batch": [{"type": "track", "userId": "ada", "event": "Order Completed", "properties": {"total": 12}}]}),
    )
    .await;
    app.settle().await;
    assert_eq!(app.segment_names(ada).await, ["Buyers", "VIP"]);

    // History and timeline.
    let v = app.get(&format!("/api/v1/contacts/{ada}/segments")).await;
    let lapsed_stays: Vec<&Value> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["segment_id"] == json!(lapsed))
        .collect();
    assert_eq!(lapsed_stays.len(), 1);
    assert_eq!(lapsed_stays[0]["entered_at"], json!(format_millis(T0 + 30 * DAY + 1)));
    assert_eq!(lapsed_stays[0]["exited_at"], json!(format_millis(T0 + 31 * DAY + 1)));
    let timeline = app.get(&format!("/api/v1/contacts/{ada}/events?limit=50")).await;
    let names: Vec<(&str, i64)> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"].as_str().is_some_and(|n| n.starts_with("Segment ")))
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["properties"]["segment_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("Segment Exited", lapsed),
            ("Segment Entered", lapsed),
            ("Segment Entered", vip),
            ("Segment Entered", buyers)
        ]
    );

    // Members and sizes.
    let members = app.get(&format!("/api/v1/segments/{buyers}/members")).await;
    assert_eq!(members["data"][0]["user_id"], "ada");
    let sizes = app.get(&format!("/api/v1/segments/{lapsed}/sizes?days=3")).await;
    let series: Vec<i64> = sizes["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["size"].as_i64().unwrap())
        .collect();
    // Ends of April 12, 13, 14 (she lapsed on the 14th at noon), then now (the 15th, back).
    assert_eq!(series, [0, 0, 1, 0], "end of each of the last 3 days, then now");
}

#[tokio::test]
async fn definitions_are_validated_previewed_and_recomputed() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..20)
        .map(|i| json!({"type": "identify", "userId": format!("u{i}"), "traits": {"age": 20 + i, "plan": if i % 2 == 0 { "pro" } else { "free" }}}))
        .collect();
    app.track(json!({ "batch": batch })).await;

    let (s, e) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/segments",
            Some(json!({"name": "Bad", "definition": {"type": "and", "conditions": [
                {"type": "trait", "trait": "age", "op": "exists"},
                {"type": "event", "event": "E", "window": {"last_days": "seven"}}
            ]}})),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error"]["field"], "definition.conditions[1]");
    let (s, e) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/segments",
            Some(json!({"definition": {"type": "and", "conditions": []}})),
        )
        .await;
    assert_eq!((s, e["error"]["field"].as_str()), (400, Some("name")));
    // An operator is named, not numbered (the parser alone would read 0 as the first).
    let (s, e) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/segments/preview",
            Some(json!({"definition": {"type": "and", "conditions": [
                {"type": "event_time", "event": "E", "which": "last", "op": 0, "value": "2026-11-23"}
            ]}})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (400, Some("definition.conditions[0].op")),
        "{e}"
    );
    // `4.0` is the integer 4 (JSON Schema's `integer` includes it).
    let (s, p) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/segments/preview",
            Some(json!({"definition": {"type": "event", "event": "E", "window": {"last_days": 4.0}}, "sample": 2.0})),
        )
        .await;
    assert_eq!(s, 200, "{p}");

    let draft = json!({"type": "trait", "trait": "age", "op": "greater_or_equal", "value": 35});
    let (s, p) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/segments/preview",
            Some(json!({"definition": draft, "sample": 2})),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["count"], 5);
    assert_eq!(p["sample"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.get("/api/v1/segments").await["data"].as_array().unwrap().len(),
        0,
        "preview saves nothing"
    );

    let id = create(&app, "Older", draft).await;
    assert_eq!(app.get(&format!("/api/v1/segments/{id}")).await["size"], 5);
    // Changing the definition recomputes membership and bumps the version.
    let (s, v) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/segments/{id}"),
            Some(
                json!({"name": "Older pros", "definition": {"type": "and", "conditions": [
                    {"type": "trait", "trait": "age", "op": "greater_or_equal", "value": 35},
                    {"type": "trait", "trait": "plan", "op": "equals", "value": "pro"}
                ]}}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["size"].as_i64(), v["version"].as_i64()),
        (Some(2), Some(2)),
        "ages 35-39 on the pro plan: u16, u18"
    );
    let (s, _) = app
        .call(reqwest::Method::DELETE, &format!("/api/v1/segments/{id}"), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(
        app.call(reqwest::Method::GET, &format!("/api/v1/segments/{id}"), None)
            .await
            .0,
        404
    );

    // The ready-made catalogue installs with one call.
    let catalogue = app.get("/api/v1/segments/ready-made").await;
    assert!(catalogue["data"].as_array().unwrap().len() >= 10);
    let (s, v) = app
        .call(reqwest::Method::POST, "/api/v1/segments/ready-made/high_value", None)
        .await;
    assert_eq!((s, v["name"].as_str()), (201, Some("High value (RFM top)")));
    assert_eq!(
        app.call(reqwest::Method::POST, "/api/v1/segments/ready-made/nope", None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn segments_can_build_on_segments() {
    let app = spawn_app().await;
    let pro = create(
        &app,
        "Pro",
        json!({"type": "trait", "trait": "plan", "op": "equals", "value": "pro"}),
    )
    .await;
    let pro_buyers = create(
        &app,
        "Pro buyers",
        json!({"type": "and", "conditions": [{"type": "segment", "segment": pro}, {"type": "event", "event": "Order Completed"}]}),
    )
    .await;
    app.track(json!({"batch": [
        {"type": "identify", "userId": "ada", "traits": {"plan": "pro"}},
        {"type": "track", "userId": "ada", "event": "Order Completed"},
    ]}))
    .await;
    app.settle().await;
    let ada = app.get("/api/v1/contacts/lookup?user_id=ada").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(app.segment_names(ada).await, ["Pro", "Pro buyers"]);
    // Leaving Pro takes her out of Pro buyers too, on the engine's next pass.
    app.track(json!({"batch": [{"type": "identify", "userId": "ada", "traits": {"plan": "free"}}]}))
        .await;
    app.settle().await;
    assert_eq!(app.segment_names(ada).await, Vec::<String>::new());

    // Cycles, self-references and missing segments are refused; so is deleting a segment another reads.
    let cyclic = json!({"name": "Pro", "definition": {"type": "segment", "segment": pro_buyers}});
    let (s, e) = app
        .call(reqwest::Method::PUT, &format!("/api/v1/segments/{pro}"), Some(cyclic))
        .await;
    assert_eq!((s, e["error"]["field"].as_str()), (400, Some("definition")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("cycle"));
    let (s, e) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/segments",
            Some(json!({"name": "X", "definition": {"type": "segment", "segment": 999}})),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = app
        .call(reqwest::Method::DELETE, &format!("/api/v1/segments/{pro}"), None)
        .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("Pro buyers"));
    assert_eq!(
        app.call(reqwest::Method::DELETE, &format!("/api/v1/segments/{pro_buyers}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        app.call(reqwest::Method::DELETE, &format!("/api/v1/segments/{pro}"), None)
            .await
            .0,
        204
    );
}

#[tokio::test]
async fn administrative_segments_are_left_out_everywhere() {
    let app = spawn_app().await;
    let pro = create(
        &app,
        "Pro",
        json!({"type": "trait", "trait": "plan", "op": "equals", "value": "pro"}),
    )
    .await;
    app.track(json!({"batch": [
        {"type": "identify", "userId": "ada", "traits": {"plan": "pro"}},
        {"type": "identify", "userId": "qa", "traits": {"plan": "pro"}},
    ]}))
    .await;
    app.settle().await;
    let mut ids = Vec::new();
    for u in ["ada", "qa"] {
        ids.push(
            app.get(&format!("/api/v1/contacts/lookup?user_id={u}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let (ada, qa) = (ids[0], ids[1]);
    assert_eq!(app.get(&format!("/api/v1/segments/{pro}")).await["size"], 2);

    // An administrative segment cannot read other segments; a bad flag is named.
    for (body, field) in [
        (
            json!({"name": "T", "administrative": true, "definition": {"type": "segment", "segment": pro}}),
            "definition",
        ),
        (
            json!({"name": "T", "administrative": "yes", "definition": {"type": "trait", "trait": "x", "op": "exists"}}),
            "administrative",
        ),
    ] {
        let (s, e) = app.call(reqwest::Method::POST, "/api/v1/segments", Some(body)).await;
        assert_eq!((s, e["error"]["field"].as_str()), (400, Some(field)), "{e}");
    }
    let (s, test) = app
        .call(reqwest::Method::POST, "/api/v1/segments/ready-made/test_contacts", None)
        .await;
    assert_eq!((s, test["administrative"].as_bool()), (201, Some(true)), "{test}");
    app.track(json!({"batch": [{"type": "identify", "userId": "qa", "traits": {"test_contact": true}}]}))
        .await;
    app.settle().await;
    assert_eq!(app.segment_names(qa).await, ["Test contacts"]);
    assert_eq!(app.segment_names(ada).await, ["Pro"]);
    // Previews of drafts leave them out too.
    let (s, p) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/segments/preview",
            Some(json!({"definition": {"type": "trait", "trait": "plan", "op": "equals", "value": "pro"}})),
        )
        .await;
    assert_eq!((s, p["count"].as_i64()), (200, Some(1)), "{p}");
    // Deleting the administrative segment gives qa back to Pro.
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/segments/{}", test["id"]),
            None,
        )
        .await;
    assert_eq!(s, 204);
    app.settle().await;
    assert_eq!(app.segment_names(qa).await, ["Pro"]);
}

/// `events_retention_days` through `/api/v1/retention-settings` (checked, kept,
/// removed), and the segments saved with it: their answer names the conditions that
/// read events older than the retention period.
#[tokio::test]
async fn retention_is_set_through_the_api_and_segments_reaching_past_it_are_flagged() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/api/v1/retention-settings").await,
        json!({"events_retention_days": null})
    );
    let definition = json!({"type": "and", "conditions": [
        {"type": "event", "event": "Order Completed", "window": {"last_days": 30}},
        {"type": "event", "event": "Order Completed"}
    ]});
    // Every event kept: no warnings.
    let (s, v) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/segments",
            Some(json!({"name": "Buyers", "definition": definition})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["warnings"], json!([]));
    let id = v["id"].as_i64().unwrap();

    for bad in [json!(0), json!(-1), json!(2.5), json!("90"), json!(36_501)] {
        let (s, v) = app
            .call(
                reqwest::Method::PUT,
                "/api/v1/retention-settings",
                Some(json!({"events_retention_days": bad})),
            )
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "invalid_field");
        assert_eq!(v["error"]["field"], "events_retention_days");
        assert_eq!(
            v["error"]["message"],
            "events_retention_days must be a whole number of days from 1 to 36500, or null to keep every event"
        );
    }
    let (s, v) = app
        .call(reqwest::Method::PUT, "/api/v1/retention-settings", Some(json!({})))
        .await;
    assert_eq!((s, &v["error"]["field"]), (400, &json!("events_retention_days")), "{v}");
    let (s, v) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/retention-settings",
            Some(json!({"events_retention_days": 90})),
        )
        .await;
    assert_eq!((s, v), (200, json!({"events_retention_days": 90})));
    assert_eq!(
        app.get("/api/v1/retention-settings").await,
        json!({"events_retention_days": 90})
    );

    // Saved again: the condition without a window is named, the 30-day one is not.
    let (s, v) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/segments/{id}"),
            Some(json!({"name": "Buyers", "definition": definition})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    assert_eq!(warnings[0]["path"], "definition.conditions[1]");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("reads every event ever (no window), but events are kept 90 days"),
        "{v}"
    );
    // The orders it counts are kept apart from the events: the warning names their trait.
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .ends_with("compare the trait \"orders_count\" instead, which Nudge keeps past retention"),
        "{v}"
    );

    let (s, v) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/retention-settings",
            Some(json!({"events_retention_days": null})),
        )
        .await;
    assert_eq!((s, v), (200, json!({"events_retention_days": null})));
    app.finish().await;
}
