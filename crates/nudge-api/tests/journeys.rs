//! Journeys through the public APIs, with the journey engine driven by the test and an
//! injected clock: an abandoned-cart journey is validated, created and published;
//! Segment-API events start runs; the clock passes the waits and the reminder lands in
//! the outbox once; an order for the same cart ends the run at once (another cart's
//! order does not); re-entry rules and stop are respected.

use nudge_core::Millis;
use nudge_core::protocol::MessageEvent;
use serde_json::{Value, json};

const HOUR: Millis = 3_600_000;

mod common;
use common::*;

/// Helpers of the journey tests.
impl App {
    async fn contact(&self, user: &str) -> i64 {
        self.get(&format!("/api/v1/contacts/lookup?user_id={user}")).await["id"]
            .as_i64()
            .unwrap()
    }
    async fn runs(&self, user: &str) -> Vec<Value> {
        let id = self.contact(user).await;
        self.get(&format!("/api/v1/contacts/{id}/runs")).await["data"]
            .as_array()
            .unwrap()
            .clone()
    }
    async fn outbox_of_email(&self, email: &str) -> Vec<Value> {
        let id = self.get(&format!("/api/v1/contacts/lookup?email={email}")).await["id"].clone();
        self.get(&format!("/api/v1/messages?contact_id={id}")).await["data"]
            .as_array()
            .unwrap()
            .clone()
    }
    async fn outbox(&self, user: &str) -> Vec<Value> {
        let id = self.contact(user).await;
        self.get(&format!("/api/v1/messages?contact_id={id}")).await["data"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn abandoned_cart() -> Value {
    json!({
        "trigger": {"type": "event", "event": "Cart Updated"},
        "start": "wait-order",
        "steps": [
            {"id": "wait-order", "type": "wait_for_event", "event": "Order Completed", "match_key": "cart_id",
             "timeout": {"hours": 1}, "on_event": "bought", "on_timeout": "remind"},
            {"id": "remind", "type": "send", "template": "cart-reminder", "next": "wait-day"},
            {"id": "wait-day", "type": "wait", "duration": {"hours": 23}, "next": "last-chance"},
            {"id": "last-chance", "type": "send", "template": "cart-reminder", "next": "done"},
            {"id": "bought", "type": "goal", "name": "purchased"},
            {"id": "done", "type": "exit"}
        ],
        "settings": {
            "re_entry": {"type": "always"},
            "max_concurrent_runs": 1,
            "goal_event": {"event": "Order Completed", "match_key": "cart_id"}
        }
    })
}

#[tokio::test]
async fn abandoned_cart_reminds_once_and_stops_on_purchase_of_that_cart() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        let (s, t) = app
        .post(
            "/api/v1/templates",
            json!({"name": "cart-reminder", "topic": "offers", "content": {"channel": "email",
                "subject": "Your cart", "html": "<p>{% for p in event.properties.products %}{{ p.name }} {% endfor %}</p>"}}),
        )
        .await;
        assert_eq!(s, 201, "{t}");

        // Bad definitions are refused with every problem and its path.
        let mut bad = abandoned_cart();
        bad["steps"][0]["on_timeout"] = json!("remnd");
        bad["steps"][2]["duration"] = json!({"hours": 0});
        // Validating reports them all in its answer, for an editor to show.
        let (s, e) = app.post("/api/v1/journeys/validate", json!({"definition": bad})).await;
        assert_eq!((s, e["valid"].as_bool()), (200, Some(false)), "{e}");
        let reported: Vec<&str> = e["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(reported.contains(&"definition.steps[0].on_timeout"), "{e}");
        assert!(
            reported.iter().any(|f| f.starts_with("definition.steps[2].duration")),
            "{e}"
        );
        // Saving refuses them, with the same list.
        let (s, e) = app
            .post("/api/v1/journeys", json!({"name": "Broken", "definition": bad}))
            .await;
        assert_eq!(s, 400, "{e}");
        let fields: Vec<&str> = e["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&"definition.steps[0].on_timeout"), "{e}");
        assert!(
            fields.iter().any(|f| f.starts_with("definition.steps[2].duration")),
            "{e}"
        );
        assert_eq!(fields, reported, "{e}");
        assert_eq!(app.get("/api/v1/journeys").await["data"], json!([]));
        let (s, v) = app
            .post("/api/v1/journeys/validate", json!({"definition": abandoned_cart()}))
            .await;
        assert_eq!((s, v["valid"].as_bool()), (200, Some(true)), "{v}");
        assert_eq!(v["problems"], json!([]), "{v}");
        // A body that is not a draft definition at all is still a bad request.
        for (body, field) in [
            (json!({}), "definition"),
            (
                json!({"definition": {"trigger": {"type": "api"}, "start": "a", "steps": "none"}}),
                "definition.steps",
            ),
            (json!({"definition": abandoned_cart(), "name": "x"}), "name"),
        ] {
            let (s, e) = app.post("/api/v1/journeys/validate", body.clone()).await;
            assert_eq!((s, e["error"]["field"].as_str()), (400, Some(field)), "{body}: {e}");
        }

        let (s, j) = app
            .post(
                "/api/v1/journeys",
                json!({"name": "Abandoned cart", "priority": 10, "definition": abandoned_cart()}),
            )
            .await;
        assert_eq!((s, j["status"].as_str()), (201, Some("draft")), "{j}");
        let id = j["id"].as_i64().unwrap();

        // A draft journey starts nobody.
        app.track(json!({"batch": [
            {"type": "identify", "userId": "ada", "traits": {"email": "ada@example.com"}},
            {"type": "track", "userId": "ada", "event": "Cart Updated", "properties": {"cart_id": "c-0"}},
        ]}))
        .await;
        app.settle().await;
        assert!(app.runs("ada").await.is_empty());

        let (s, j) = app.post(&format!("/api/v1/journeys/{id}/publish"), json!({})).await;
        assert_eq!(
            (s, j["status"].as_str(), j["published_version"].as_i64()),
            (200, Some("live"), Some(1))
        );
        app.settle().await; // the engine learns which events matter

        // Ada updates cart c-1: a run waits for her order of c-1.
        app.track(json!({"batch": [
            {"type": "track", "userId": "ada", "event": "Cart Updated",
             "properties": {"cart_id": "c-1", "products": [{"name": "Linen Shirt"}, {"name": "Cap"}]}},
        ]}))
        .await;
        app.settle().await;
        let runs = app.runs("ada").await;
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(
            (runs[0]["status"].as_str(), runs[0]["step"].as_str()),
            (Some("active"), Some("wait-order"))
        );
        let stats = app.get(&format!("/api/v1/journeys/{id}")).await;
        assert_eq!(stats["active_runs_per_step"]["wait-order"], 1, "{stats}");

        // An order of another cart changes nothing; an hour later the reminder is queued once.
        app.track(json!({"batch": [
            {"type": "track", "userId": "ada", "event": "Order Completed", "properties": {"cart_id": "other"}},
        ]}))
        .await;
        app.settle().await;
        assert_eq!(app.runs("ada").await[0]["step"], "wait-order");
        assert!(app.outbox("ada").await.is_empty());
        app.at(T0 + HOUR - 1).await;
        assert!(app.outbox("ada").await.is_empty(), "not before the hour");
        app.at(T0 + HOUR + 1).await;
        let outbox = app.outbox("ada").await;
        assert_eq!(outbox.len(), 1, "{outbox:?}");
        assert_eq!(outbox[0]["data"]["event"]["properties"]["cart_id"], "c-1");
        let runs = app.runs("ada").await;
        assert_eq!(runs[0]["step"], "wait-day");
        app.settle().await;
        assert_eq!(app.outbox("ada").await.len(), 1, "settling again sends nothing twice");

        // She buys that cart mid-wait: the run ends at once as a conversion.
        app.track(json!({"batch": [
        {"type": "track", "userId": "ada", "event": "Order Completed", "properties": {"cart_id": "c-1", "total": 59}},
    ]}))
    .await;
        app.settle().await;
        let runs = app.runs("ada").await;
        assert_eq!(
            (runs[0]["status"].as_str(), runs[0]["finish_reason"].as_str()),
            (Some("finished"), Some("goal")),
            "{runs:?}"
        );
        app.at(T0 + 30 * HOUR).await;
        assert_eq!(app.outbox("ada").await.len(), 1, "no last chance after the purchase");
        let stats = app.get(&format!("/api/v1/journeys/{id}")).await["stats"].clone();
        assert_eq!(
            (stats["entered"].as_i64(), stats["active"].as_i64()),
            (Some(1), Some(0)),
            "{stats}"
        );
        assert_eq!(stats["finished"]["goal"], 1, "{stats}");
        // The order that reached the goal brings its total as revenue (the other cart's
        // order, which matched nothing, brings none).
        assert_eq!(stats["conversions"], 1, "{stats}");
        assert_eq!(stats["revenue"], 59.0, "{stats}");
        assert_eq!(stats["steps"]["wait-order"]["reached"], 1, "{stats}");
        assert_eq!(stats["steps"]["remind"]["sent"], 1, "{stats}");
        assert_eq!(
            stats["steps"]["bought"]["reached"],
            json!(null),
            "the goal was reached by the goal event, not the step: {stats}"
        );
        let contact = app.contact("ada").await;
        let events = app.get(&format!("/api/v1/contacts/{contact}/events?limit=100")).await;
        assert!(
            events["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["event"] == "Journey Goal Reached"),
            "{events}"
        );

        // Another cart starts a new run (re-entry: always); stopping the journey lets
        // nobody else in.
        app.track(json!({"batch": [
            {"type": "track", "userId": "ada", "event": "Cart Updated", "properties": {"cart_id": "c-2"}},
        ]}))
        .await;
        app.settle().await;
        assert_eq!(app.runs("ada").await.len(), 2);
        let (s, j) = app.post(&format!("/api/v1/journeys/{id}/stop"), json!({})).await;
        assert_eq!((s, j["status"].as_str()), (200, Some("stopped")));
        app.track(json!({"batch": [
            {"type": "identify", "userId": "bob", "traits": {"email": "bob@example.com"}},
            {"type": "track", "userId": "bob", "event": "Cart Updated", "properties": {"cart_id": "c-9"}},
        ]}))
        .await;
        app.settle().await;
        assert!(app.runs("bob").await.is_empty());
        // Ada's run on the stopped journey ends at its next timer, sending nothing more.
        app.at(T0 + 32 * HOUR).await;
        let runs = app.runs("ada").await;
        assert_eq!(
            (runs[1]["status"].as_str(), runs[1]["finish_reason"].as_str()),
            (Some("finished"), Some("stopped")),
            "{runs:?}"
        );
        assert_eq!(app.outbox("ada").await.len(), 1);
        let (s, e) = app.post(&format!("/api/v1/journeys/{id}/explode"), json!({})).await;
        assert_eq!(s, 404, "{e}");
        app.finish().await;
    }
}

#[tokio::test]
async fn entering_a_segment_starts_a_journey_once() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        let (s, _) = app
        .post(
            "/api/v1/templates",
            json!({"name": "vip-welcome", "topic": "news", "content": {"channel": "email", "subject": "Welcome, VIP", "html": "<p>Hi</p>"}}),
        )
        .await;
        assert_eq!(s, 201);
        let (s, seg) = app
        .post(
            "/api/v1/segments",
            json!({"name": "VIP", "definition": {"type": "trait", "trait": "plan", "op": "equals", "value": "vip"}}),
        )
        .await;
        assert_eq!(s, 201, "{seg}");
        let definition = json!({
            "trigger": {"type": "segment_entered", "segment_id": seg["id"]},
            "start": "welcome",
            "steps": [{"id": "welcome", "type": "send", "template": "vip-welcome"}]
        });
        let (s, j) = app
            .post(
                "/api/v1/journeys",
                json!({"name": "Best customers", "definition": definition}),
            )
            .await;
        assert_eq!(s, 201, "{j}");
        app.post(&format!("/api/v1/journeys/{}/publish", j["id"]), json!({}))
            .await;
        app.settle().await;

        app.track(
        json!({"batch": [{"type": "identify", "userId": "cy", "traits": {"email": "cy@example.com", "plan": "vip"}}]}),
    )
    .await;
        app.settle().await;
        let runs = app.runs("cy").await;
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(
            (runs[0]["status"].as_str(), runs[0]["finish_reason"].as_str()),
            (Some("finished"), Some("completed"))
        );
        assert_eq!(app.outbox("cy").await.len(), 1);
        // Leaving and entering again: re-entry is `never` by default.
        app.track(json!({"batch": [{"type": "identify", "userId": "cy", "traits": {"plan": "free"}}]}))
            .await;
        app.settle().await;
        app.track(json!({"batch": [{"type": "identify", "userId": "cy", "traits": {"plan": "vip"}}]}))
            .await;
        app.settle().await;
        assert_eq!(app.runs("cy").await.len(), 1);
        assert_eq!(app.outbox("cy").await.len(), 1);
        app.finish().await;
    }
}

#[tokio::test]
async fn ready_made_journeys_install_with_their_templates_and_segments() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        let catalogue = app.get("/api/v1/journeys/ready-made").await;
        let keys: Vec<&str> = catalogue["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["key"].as_str().unwrap())
            .collect();
        assert!(
            keys.contains(&"abandoned_cart") && keys.contains(&"win_back"),
            "{keys:?}"
        );

        let (s, j) = app
            .post("/api/v1/journeys/ready-made/abandoned_cart?publish=true", json!({}))
            .await;
        assert_eq!((s, j["status"].as_str()), (201, Some("live")), "{j}");
        let templates = app.get("/api/v1/templates").await;
        let names: Vec<&str> = templates["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"cart-reminder") && names.contains(&"cart-recommendation"),
            "{names:?}"
        );
        // Installing again reuses the templates and numbers the journey.
        let (s, again) = app.post("/api/v1/journeys/ready-made/abandoned_cart", json!({})).await;
        assert_eq!(
            (s, again["name"].as_str(), again["status"].as_str()),
            (201, Some("Abandoned cart 2"), Some("draft"))
        );
        assert_eq!(
            app.get("/api/v1/templates").await["data"].as_array().unwrap().len(),
            names.len()
        );
        // A journey that starts from a segment installs the segment too.
        let (s, vip) = app.post("/api/v1/journeys/ready-made/vip", json!({})).await;
        assert_eq!(s, 201, "{vip}");
        let segment = vip["definition"]["trigger"]["segment_id"].as_i64().unwrap();
        assert_eq!(
            app.get(&format!("/api/v1/segments/{segment}")).await["name"],
            "High value (RFM top)"
        );
        let (s, e) = app.post("/api/v1/journeys/ready-made/nope", json!({})).await;
        assert_eq!(s, 404, "{e}");
        let (s, e) = app
            .post("/api/v1/journeys/ready-made/vip?publish=maybe", json!({}))
            .await;
        assert_eq!(s, 400, "{e}");

        // The installed cart journey runs: a cart, an hour, a reminder.
        app.settle().await;
        app.track(json!({"batch": [
        {"type": "identify", "userId": "di", "traits": {"email": "di@example.com", "first_name": "Di"}},
        {"type": "track", "userId": "di", "event": "Cart Updated", "properties": {"cart_id": "k-1", "products": [{"name": "Tea"}]}},
    ]}))
    .await;
        app.settle().await;
        app.at(T0 + HOUR + 1).await;
        let outbox = app.outbox("di").await;
        assert_eq!(outbox.len(), 1, "{outbox:?}");
        app.finish().await;
    }
}

/// Two journeys want to email the same contact on the same event; with a cap of one
/// marketing email a day, the second waits a day and then goes — deferred, not dropped.
#[tokio::test]
async fn frequency_caps_defer_sends_across_journeys() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        for (name, subject) in [("news-a", "A"), ("news-b", "B")] {
            let (s, _) = app
            .post(
                "/api/v1/templates",
                json!({"name": name, "topic": "news", "content": {"channel": "email", "subject": subject, "html": "<p>x</p>"}}),
            )
            .await;
            assert_eq!(s, 201);
        }
        for (s, e) in [
            app.call(
                reqwest::Method::PUT,
                "/api/v1/frequency-caps",
                Some(json!({"caps": [{"max": 0, "per": "day"}]})),
            )
            .await,
            app.call(
                reqwest::Method::PUT,
                "/api/v1/frequency-caps",
                Some(json!({"caps": [{"channel": "fax", "max": 1, "per": "day"}]})),
            )
            .await,
            app.call(
                reqwest::Method::PUT,
                "/api/v1/frequency-caps",
                Some(json!({"caps": [{"max": 1, "per": "month"}]})),
            )
            .await,
        ] {
            assert_eq!(s, 400, "{e}");
        }
        let (s, caps) = app
            .call(
                reqwest::Method::PUT,
                "/api/v1/frequency-caps",
                Some(json!({"caps": [{"channel": "email", "max": 1, "per": "day"}]})),
            )
            .await;
        assert_eq!(s, 200, "{caps}");
        assert_eq!(app.get("/api/v1/frequency-caps").await["caps"][0]["max"], 1);
        for (name, template, priority) in [("A", "news-a", 5), ("B", "news-b", 1)] {
            let definition = json!({
                "trigger": {"type": "event", "event": "Signed Up"},
                "start": "send",
                "steps": [{"id": "send", "type": "send", "template": template}]
            });
            let (s, j) = app
                .post(
                    "/api/v1/journeys",
                    json!({"name": name, "priority": priority, "definition": definition}),
                )
                .await;
            assert_eq!(s, 201, "{j}");
            app.post(&format!("/api/v1/journeys/{}/publish", j["id"]), json!({}))
                .await;
        }
        app.settle().await;
        app.track(json!({"batch": [
            {"type": "identify", "userId": "eve", "traits": {"email": "eve@example.com"}},
            {"type": "track", "userId": "eve", "event": "Signed Up"},
        ]}))
        .await;
        app.settle().await;
        let outbox = app.outbox("eve").await;
        assert_eq!(outbox.len(), 1, "one email today: {outbox:?}");
        let runs = app.runs("eve").await;
        assert_eq!(runs.len(), 2);
        let waiting: Vec<&Value> = runs.iter().filter(|r| r["status"] == "active").collect();
        assert_eq!(waiting.len(), 1, "the other send waits: {runs:?}");
        assert_eq!(waiting[0]["step"], "send");
        app.at(T0 + 23 * HOUR).await;
        assert_eq!(app.outbox("eve").await.len(), 1, "still under the cap window");
        app.at(T0 + 24 * HOUR + 1000).await;
        let outbox = app.outbox("eve").await;
        assert_eq!(outbox.len(), 2, "deferred, then sent: {outbox:?}");
        assert!(app.runs("eve").await.iter().all(|r| r["status"] == "finished"));
        app.finish().await;
    }
}

/// Email, then SMS to those who did not open it within 48 hours: the open reaches the
/// run that sent the email (by the message's key), and the branch reads it.
#[tokio::test]
async fn a_branch_reads_whether_the_previous_message_was_opened() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        for (name, content) in [
            (
                "offer-email",
                json!({"channel": "email", "subject": "Offer", "html": "<p>x</p>"}),
            ),
            ("offer-sms", json!({"channel": "sms", "body": "Offer: see your email"})),
        ] {
            let (s, t) = app
                .post(
                    "/api/v1/templates",
                    json!({"name": name, "topic": "offers", "content": content}),
                )
                .await;
            assert_eq!(s, 201, "{t}");
        }
        let definition = json!({
            "trigger": {"type": "event", "event": "Offer Ready"},
            "start": "email",
            "steps": [
                {"id": "email", "type": "send", "template": "offer-email", "next": "wait"},
                {"id": "wait", "type": "wait", "duration": {"hours": 48}, "next": "opened"},
                {"id": "opened", "type": "branch", "message": {"step": "email", "outcome": "opened"}, "no": "sms"},
                {"id": "sms", "type": "send", "template": "offer-sms"}
            ]
        });
        let (s, j) = app
            .post(
                "/api/v1/journeys",
                json!({"name": "Email then SMS", "definition": definition}),
            )
            .await;
        assert_eq!(s, 201, "{j}");
        app.post(&format!("/api/v1/journeys/{}/publish", j["id"]), json!({}))
            .await;
        app.settle().await;
        app.track(json!({"batch": [
            {"type": "identify", "userId": "opener", "traits": {"email": "o@example.com", "phone": "+15550001111"}},
            {"type": "identify", "userId": "ignorer", "traits": {"email": "i@example.com", "phone": "+15550002222"}},
            {"type": "track", "userId": "opener", "event": "Offer Ready"},
            {"type": "track", "userId": "ignorer", "event": "Offer Ready"},
        ]}))
        .await;
        app.settle().await;
        // The opener opens her email (what the open pixel records).
        let email = app.outbox("opener").await;
        assert_eq!(email.len(), 1);
        let id = email[0]["id"].as_i64().unwrap();
        assert!(
            app.store
                .record_message_event(id, &MessageEvent::Opened, "open-test".into(), T0 + HOUR)
                .await
                .unwrap()
        );
        app.at(T0 + HOUR).await;
        app.at(T0 + 49 * HOUR).await;
        let channels = |outbox: Vec<Value>| {
            let mut c: Vec<String> = outbox
                .iter()
                .map(|m| m["channel"].as_str().unwrap().to_string())
                .collect();
            c.sort();
            c
        };
        assert_eq!(channels(app.outbox("opener").await), ["email"]);
        assert_eq!(channels(app.outbox("ignorer").await), ["email", "sms"]);
        let stats = app.get(&format!("/api/v1/journeys/{}", j["id"])).await["stats"].clone();
        assert_eq!(
            (
                stats["steps"]["email"]["sent"].as_i64(),
                stats["steps"]["email"]["opened"].as_i64()
            ),
            (Some(2), Some(1)),
            "{stats}"
        );
        assert_eq!(stats["steps"]["sms"]["sent"], 1, "{stats}");
        assert_eq!(stats["finished"]["completed"], 2, "{stats}");
        // Each exit's count: one opener left the branch by `yes` (which ends the run),
        // the other by `no` to the SMS.
        assert_eq!(stats["steps"]["opened"]["exits"], json!({"yes": 1, "no": 1}), "{stats}");
        assert_eq!(stats["steps"]["email"]["exits"], json!({"next": 2}), "{stats}");
        assert_eq!(stats["steps"]["sms"]["exits"], json!({"next": 1}), "{stats}");
        assert!(app.runs("opener").await.iter().all(|r| r["status"] == "finished"));
        app.finish().await;
    }
}

#[tokio::test]
async fn an_api_trigger_starts_runs_idempotently() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        let (s, _) = app
        .post(
            "/api/v1/templates",
            json!({"name": "reset", "transactional": true, "content": {"channel": "email", "subject": "Reset", "html": "<p>{{ event.properties.link }}</p>"}}),
        )
        .await;
        assert_eq!(s, 201);
        let definition = json!({
            "trigger": {"type": "api"},
            "start": "mail",
            "steps": [{"id": "mail", "type": "send", "template": "reset", "transactional": true}],
            "settings": {"re_entry": {"type": "always"}}
        });
        let (_, j) = app
            .post(
                "/api/v1/journeys",
                json!({"name": "Password reset", "definition": definition}),
            )
            .await;
        let id = j["id"].as_i64().unwrap();
        let start = json!({"to": {"email": "fay@example.com"}, "properties": {"link": "https://x/reset/1"}, "idempotency_key": "reset-1"});
        let (s, e) = app.post(&format!("/api/v1/journeys/{id}/runs"), start.clone()).await;
        assert_eq!(s, 409, "a draft starts nobody: {e}");
        app.post(&format!("/api/v1/journeys/{id}/publish"), json!({})).await;
        let (s, run) = app.post(&format!("/api/v1/journeys/{id}/runs"), start.clone()).await;
        assert_eq!((s, run["status"].as_str()), (201, Some("finished")), "{run}");
        let (s, e) = app.post(&format!("/api/v1/journeys/{id}/runs"), start).await;
        assert_eq!(s, 409, "the same key starts no second run: {e}");
        let outbox = app.outbox_of_email("fay@example.com").await;
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0]["data"]["event"]["properties"]["link"], "https://x/reset/1");
        let (s, e) = app
            .post(
                &format!("/api/v1/journeys/{id}/runs"),
                json!({"to": {"email": "not an email"}}),
            )
            .await;
        assert_eq!((s, e["error"]["field"].as_str()), (400, Some("to.email")), "{e}");
        app.finish().await;
    }
}

#[tokio::test]
async fn update_contact_steps_change_the_contact_with_the_transition() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        // A segment on the lead score, live: the journey's points move the contact in.
        let (s, seg) = app
        .post(
            "/api/v1/segments",
            json!({"name": "Hot leads", "definition": {"type": "lead_score", "op": "greater_or_equal", "value": 10}}),
        )
        .await;
        assert_eq!(s, 201, "{seg}");
        let definition = json!({
            "trigger": {"type": "event", "event": "Demo Requested"},
            "start": "score",
            "steps": [
                {"id": "score", "type": "update_contact", "set": {"stage": "demo"}, "unset": ["churned"],
                 "add_tags": ["demo", "b2b"], "remove_tags": ["cold"], "lead_score": 7, "next": "wait"},
                {"id": "wait", "type": "wait", "duration": {"hours": 1}, "next": "more"},
                {"id": "more", "type": "update_contact", "lead_score": 5, "remove_tags": ["b2b"]}
            ],
            "settings": {"re_entry": {"type": "always"}}
        });
        let (s, j) = app
            .post("/api/v1/journeys", json!({"name": "Scoring", "definition": definition}))
            .await;
        assert_eq!(s, 201, "{j}");
        app.post(&format!("/api/v1/journeys/{}/publish", j["id"]), json!({}))
            .await;
        app.settle().await;
        app.track(json!({"batch": [
            {"type": "identify", "userId": "lea", "traits": {"email": "lea@example.com", "tags": ["cold", "vip"],
                                                              "churned": true, "lead_score": 1}},
            {"type": "track", "userId": "lea", "event": "Demo Requested"},
        ]}))
        .await;
        app.settle().await;
        let id = app.contact("lea").await;
        let traits = app.get(&format!("/api/v1/contacts/{id}")).await["traits"].clone();
        assert_eq!(traits["stage"], "demo", "{traits}");
        assert_eq!(traits["tags"], json!(["b2b", "demo", "vip"]), "{traits}");
        assert!(traits.get("churned").is_none(), "{traits}");
        assert_eq!(traits["lead_score"], 8.0, "{traits}");
        let members = format!("/api/v1/segments/{}/members", seg["id"]);
        assert_eq!(app.get(&members).await["data"].as_array().unwrap().len(), 0);
        app.at(T0 + HOUR + 1000).await;
        let traits = app.get(&format!("/api/v1/contacts/{id}")).await["traits"].clone();
        assert_eq!(traits["lead_score"], 13.0, "{traits}");
        assert_eq!(traits["tags"], json!(["demo", "vip"]), "{traits}");
        assert_eq!(
            app.get(&members).await["data"].as_array().unwrap().len(),
            1,
            "the score change re-evaluated the segment"
        );
        assert!(app.runs("lea").await.iter().all(|r| r["status"] == "finished"));
        app.finish().await;
    }
}

#[tokio::test]
async fn a_date_trait_starts_runs_on_the_birthday_in_the_contacts_time_zone() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        let (s, t) = app
            .post(
                "/api/v1/templates",
                json!({"name": "birthday", "topic": "offers", "content": {"channel": "email",
                "subject": "Happy birthday", "html": "<p>{{ event.properties.value }}</p>"}}),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        // Known before the journey is published: the timers are set for all of them.
        app.track(json!({"batch": [
        {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com", "birthday": "1990-03-16", "timezone": "Europe/Paris"}},
        {"type": "identify", "userId": "cy", "traits": {"email": "cy@example.com", "birthday": "1991-03-16"}},
        {"type": "identify", "userId": "dee", "traits": {"email": "dee@example.com"}},
    ]}))
    .await;
        let definition = json!({
            "trigger": {"type": "date_trait", "trait": "birthday", "every_year": true, "time": "09:00"},
            "start": "wish",
            "steps": [{"id": "wish", "type": "send", "template": "birthday"}],
            "settings": {"re_entry": {"type": "after", "days": 300}}
        });
        let (s, j) = app
            .post(
                "/api/v1/journeys",
                json!({"name": "Birthday", "definition": definition}),
            )
            .await;
        assert_eq!(s, 201, "{j}");
        let id = j["id"].as_i64().unwrap();
        app.post(&format!("/api/v1/journeys/{id}/publish"), json!({})).await;
        app.settle().await;
        // After publishing: a trait change sets the contact's timer; cy's birthday moves.
        app.track(json!({"batch": [
        {"type": "identify", "userId": "bob", "traits": {"email": "bob@example.com", "birthday": "1985-03-17", "timezone": "America/New_York"}},
        {"type": "identify", "userId": "cy", "traits": {"birthday": "1991-06-01"}},
        {"type": "identify", "userId": "dee", "traits": {"birthday": "2027-03-16T22:00:00Z"}},
    ]}))
    .await;
        app.settle().await;
        assert!(app.runs("ann").await.is_empty());

        const DAY: Millis = 24 * HOUR;
        // 2027-03-16 09:00 in Paris is 08:00 UTC.
        app.at(T0 + DAY - 4 * HOUR - 1000).await;
        assert!(app.runs("ann").await.is_empty(), "not before 09:00 local");
        app.at(T0 + DAY - 4 * HOUR).await;
        assert_eq!(app.runs("ann").await.len(), 1);
        let mail = app.outbox("ann").await;
        assert_eq!(mail.len(), 1);
        assert_eq!(mail[0]["data"]["event"]["properties"]["value"], "1990-03-16");
        assert!(app.runs("cy").await.is_empty(), "cy's birthday moved to June");
        // dee has no time zone: the workspace's (UTC), 09:00 on the date part.
        assert_eq!(app.runs("dee").await.len(), 0);
        app.at(T0 + DAY - 3 * HOUR).await;
        assert_eq!(app.runs("dee").await.len(), 1, "09:00 UTC on 16 March");
        assert!(app.runs("bob").await.is_empty());
        // 2027-03-17 09:00 in New York (EDT) is 13:00 UTC.
        app.at(T0 + 2 * DAY + HOUR).await;
        assert_eq!(app.runs("bob").await.len(), 1);
        assert_eq!(app.runs("ann").await.len(), 1, "one run per birthday");

        // A year on (2028 is a leap year), the timer has moved to the next birthday.
        app.at(T0 + 367 * DAY - 4 * HOUR).await;
        assert_eq!(app.runs("ann").await.len(), 2);
        assert_eq!(app.outbox("ann").await.len(), 2);
        assert_eq!(app.runs("cy").await.len(), 1, "cy's June birthday came");

        // Paused, nobody enters; resumed, the timers are set again.
        let (s, e) = app.post(&format!("/api/v1/journeys/{id}/pause"), json!({})).await;
        assert_eq!(s, 200, "{e}");
        app.at(T0 + 369 * DAY).await;
        assert_eq!(app.runs("bob").await.len(), 1, "paused on bob's birthday");
        assert_eq!(app.runs("dee").await.len(), 1, "paused on dee's birthday");
        let (s, e) = app.post(&format!("/api/v1/journeys/{id}/resume"), json!({})).await;
        assert_eq!(s, 200, "{e}");
        app.settle().await;
        app.at(T0 + 732 * DAY - 4 * HOUR).await;
        assert_eq!(app.runs("ann").await.len(), 3);
        assert_eq!(app.runs("cy").await.len(), 2, "June 2028, late (the clock jumped)");
        let stats = app.get(&format!("/api/v1/journeys/{id}")).await["stats"].clone();
        assert_eq!(stats["entered"], 7, "{stats}");
        app.finish().await;
    }
}

#[tokio::test]
async fn forms_and_schedules_start_runs() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        let (s, t) = app
            .post(
                "/api/v1/templates",
                json!({"name": "note", "content": {"channel": "email", "subject": "Hi", "html": "<p>Hi</p>"}}),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        let (s, seg) = app
        .post(
            "/api/v1/segments",
            json!({"name": "Plan pro", "definition": {"type": "trait", "trait": "plan", "op": "equals", "value": "pro"}}),
        )
        .await;
        assert_eq!(s, 201, "{seg}");
        let segment = seg["id"].as_i64().unwrap();
        let journey = |name: &str, trigger: Value| {
            json!({"name": name, "definition": {
            "trigger": trigger, "start": "note",
            "steps": [{"id": "note", "type": "send", "template": "note"}],
            "settings": {"re_entry": {"type": "always"}}}})
        };
        let mut ids = vec![];
        for (name, trigger) in [
            ("Demo form", json!({"type": "form", "form": "demo-request"})),
            (
                "Daily pro",
                json!({"type": "schedule", "segment_id": segment, "every": {"time": "13:00"}}),
            ),
            (
                "Monday pro",
                json!({"type": "schedule", "segment_id": segment,
            "every": {"time": "08:00", "days": ["tue"], "contact_time_zone": true}}),
            ),
        ] {
            let (s, j) = app.post("/api/v1/journeys", journey(name, trigger)).await;
            assert_eq!(s, 201, "{j}");
            let id = j["id"].as_i64().unwrap();
            app.post(&format!("/api/v1/journeys/{id}/publish"), json!({})).await;
            ids.push(id);
        }
        app.track(json!({"batch": [
        {"type": "identify", "userId": "pia", "traits": {"email": "pia@example.com", "plan": "pro", "timezone": "Asia/Tokyo"}},
        {"type": "identify", "userId": "ray", "traits": {"email": "ray@example.com", "plan": "pro"}},
        {"type": "identify", "userId": "max", "traits": {"email": "max@example.com", "plan": "free"}},
        {"type": "track", "userId": "max", "event": "Form Submitted", "properties": {"form": "newsletter"}},
        {"type": "track", "userId": "max", "event": "Form Submitted", "properties": {"form": "demo-request"}},
    ]}))
    .await;
        app.settle().await;
        let runs = |r: Vec<Value>, j: i64| r.iter().filter(|r| r["journey_id"] == j).count();
        assert_eq!(
            runs(app.runs("max").await, ids[0]),
            1,
            "the demo form, not the newsletter"
        );
        assert_eq!(runs(app.runs("pia").await, ids[1]), 0);
        // 13:00 UTC on the day of T0: the daily schedule reaches the pro member only.
        app.at(T0 + HOUR).await;
        assert_eq!(runs(app.runs("pia").await, ids[1]), 1);
        assert_eq!(
            runs(app.runs("ray").await, ids[1]),
            1,
            "every member, not only the first"
        );
        assert_eq!(runs(app.runs("max").await, ids[1]), 0);
        // Tuesday 08:00 in Tokyo is Monday 23:00 UTC (T0 is Monday noon UTC).
        app.at(T0 + 11 * HOUR - 1000).await;
        assert_eq!(
            runs(app.runs("pia").await, ids[2]),
            1,
            "stored, waiting for 08:00 in Tokyo"
        );
        let waiting = app.runs("pia").await;
        assert!(
            waiting
                .iter()
                .any(|r| r["journey_id"] == ids[2] && r["status"] == "active"),
            "{waiting:?}"
        );
        assert_eq!(app.outbox("pia").await.len(), 1, "the daily note, no Tuesday note yet");
        app.at(T0 + 11 * HOUR).await;
        assert_eq!(app.outbox("pia").await.len(), 2);
        app.at(T0 + 25 * HOUR).await;
        assert_eq!(
            runs(app.runs("pia").await, ids[1]),
            2,
            "and the daily one again the next day"
        );
        // Days later: missed daily occurrences are not sent all at once; the latest is.
        app.at(T0 + 8 * 24 * HOUR).await;
        assert_eq!(runs(app.runs("pia").await, ids[1]), 3);
        assert_eq!(runs(app.runs("pia").await, ids[2]), 2, "the next Tuesday");
        assert_eq!(runs(app.runs("ray").await, ids[2]), 2, "ray's Tuesdays, at 08:00 UTC");
        app.finish().await;
    }
}

#[tokio::test]
async fn a_dry_run_replays_history_without_sending() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        let (s, t) = app
            .post(
                "/api/v1/templates",
                json!({"name": "cart-reminder", "topic": "offers", "content": {"channel": "email",
                "subject": "Your cart", "html": "<p>Back?</p>"}}),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        // History from before the journey existed: two abandoned carts, one bought.
        app.track(json!({"batch": [
        {"type": "identify", "userId": "ada", "traits": {"email": "ada@example.com"}},
        {"type": "track", "userId": "ada", "event": "Cart Updated", "properties": {"cart_id": "a1"}, "timestamp": "2027-03-10T09:00:00Z"},
        {"type": "identify", "userId": "ben", "traits": {"email": "ben@example.com"}},
        {"type": "track", "userId": "ben", "event": "Cart Updated", "properties": {"cart_id": "b1"}, "timestamp": "2027-03-11T09:00:00Z"},
        {"type": "track", "userId": "ben", "event": "Order Completed", "properties": {"cart_id": "b1", "revenue": 40}, "timestamp": "2027-03-11T09:20:00Z"},
        {"type": "identify", "userId": "cat", "traits": {"email": "cat@example.com"}},
        {"type": "track", "userId": "cat", "event": "Page Viewed", "timestamp": "2027-03-12T09:00:00Z"},
        {"type": "track", "userId": "dan", "event": "Cart Updated", "properties": {"cart_id": "d1"}, "timestamp": "2027-01-01T09:00:00Z"},
    ]}))
    .await;
        app.settle().await;
        let (s, j) = app
            .post(
                "/api/v1/journeys",
                json!({"name": "Cart", "definition": abandoned_cart()}),
            )
            .await;
        assert_eq!(s, 201, "{j}");
        let id = j["id"].as_i64().unwrap();
        let (s, r) = app
            .post(&format!("/api/v1/journeys/{id}/dry-run"), json!({"from": "2027-03-01"}))
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(
            (r["candidates"].as_i64(), r["contacts"].as_i64()),
            (Some(2), Some(2)),
            "{r}"
        );
        assert_eq!(r["entered"], 2, "{r}");
        assert_eq!(r["finished"]["goal"], 1, "{r}");
        assert_eq!(r["finished"]["exited"], 1, "the exit step: {r}");
        assert_eq!(r["steps"]["remind"]["sent"], 1, "{r}");
        assert_eq!((&r["valid"], &r["problems"]), (&json!(true), &json!([])), "{r}");
        assert_eq!(r["steps"]["last-chance"]["sent"], 1, "{r}");
        assert_eq!(r["messages"], 2, "{r}");
        let ada = app.contact("ada").await;
        let path = r["paths"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["contact_id"] == ada)
            .unwrap();
        let steps: Vec<(&str, &str)> = path["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["step"].as_str().unwrap(), s["at"].as_str().unwrap()))
            .collect();
        assert_eq!(
            steps,
            [
                ("wait-order", "2027-03-10T09:00:00.000Z"),
                ("remind", "2027-03-10T10:00:00.000Z"),
                ("wait-day", "2027-03-10T10:00:00.000Z"),
                ("last-chance", "2027-03-11T09:00:00.000Z"),
                ("done", "2027-03-11T09:00:00.000Z"),
            ],
            "{path}"
        );
        // Nothing was sent or stored.
        assert!(app.outbox("ada").await.is_empty());
        assert!(app.runs("ada").await.is_empty());
        // A draft definition, chosen contacts; bad input is named.
        let mut draft = abandoned_cart();
        draft["steps"][0]["timeout"] = json!({"minutes": 10});
        let ben = app.contact("ben").await;
        let (s, r) = app
            .post(
                &format!("/api/v1/journeys/{id}/dry-run"),
                json!({"from": "2027-03-01", "definition": draft, "contacts": [ben]}),
            )
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(
            r["steps"]["remind"]["sent"], 1,
            "with a 10-minute timeout ben is reminded: {r}"
        );
        for (body, field) in [
            (json!({"from": "yesterday"}), "from"),
            (json!({"from": "2027-03-20", "until": "2027-03-10"}), "from"),
            (json!({"sample": -1}), "sample"),
            (json!({"contacts": "all"}), "contacts"),
            (json!({"version": 0}), "version"),
            (json!({"version": 0, "definition": draft}), "version"),
            (json!({"speed": 2}), "speed"),
        ] {
            let (s, e) = app.post(&format!("/api/v1/journeys/{id}/dry-run"), body.clone()).await;
            assert_eq!((s, e["error"]["field"].as_str()), (400, Some(field)), "{body}: {e}");
        }
        // A version the journey does not have is named like anything else that does
        // not exist.
        let (s, e) = app
            .post(&format!("/api/v1/journeys/{id}/dry-run"), json!({"version": 9}))
            .await;
        assert_eq!((s, e["error"]["field"].as_str()), (404, Some("version")), "{e}");
        // A draft with problems is not replayed: its problems are the answer.
        let mut broken = abandoned_cart();
        broken["steps"][0]["on_timeout"] = json!("remnd");
        let (s, r) = app
            .post(
                &format!("/api/v1/journeys/{id}/dry-run"),
                json!({"from": "2027-03-01", "definition": broken}),
            )
            .await;
        assert_eq!((s, r["valid"].as_bool()), (200, Some(false)), "{r}");
        assert_eq!(r["problems"][0]["field"], "definition.steps[0].on_timeout", "{r}");
        assert!(r.get("entered").is_none(), "nothing replayed: {r}");
        // A draft that is not a definition at all is still refused.
        let (s, e) = app
            .post(
                &format!("/api/v1/journeys/{id}/dry-run"),
                json!({"definition": {"trigger": {"type": "api"}, "start": "a", "steps": "none"}}),
            )
            .await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (400, Some("definition.steps")),
            "{e}"
        );
        let (s, _) = app.post("/api/v1/journeys/99/dry-run", json!({})).await;
        assert_eq!(s, 404);
        app.finish().await;
    }
}

#[tokio::test]
async fn publishing_a_new_version_moves_runs_by_an_explicit_mapping() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        let (s, t) = app
            .post(
                "/api/v1/templates",
                json!({"name": "nudge", "content": {"channel": "email", "subject": "Hi", "html": "<p>Hi</p>"}}),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        let v1 = json!({
            "trigger": {"type": "event", "event": "Cart Updated"},
            "start": "wait",
            "steps": [
                {"id": "wait", "type": "wait", "duration": {"hours": 5}, "next": "remind"},
                {"id": "remind", "type": "send", "template": "nudge", "next": "wait-more"},
                {"id": "wait-more", "type": "wait", "duration": {"hours": 24}, "next": "last"},
                {"id": "last", "type": "send", "template": "nudge"}
            ],
            "settings": {"re_entry": {"type": "always"}}
        });
        let (s, j) = app
            .post("/api/v1/journeys", json!({"name": "Carts", "definition": v1}))
            .await;
        assert_eq!(s, 201, "{j}");
        let id = j["id"].as_i64().unwrap();
        app.post(&format!("/api/v1/journeys/{id}/publish"), json!({})).await;
        app.track(json!({"batch": [
            {"type": "identify", "userId": "bo", "traits": {"email": "bo@example.com"}},
            {"type": "track", "userId": "bo", "event": "Cart Updated"},
        ]}))
        .await;
        app.settle().await;
        app.at(T0 + 5 * HOUR).await;
        app.track(json!({"batch": [
            {"type": "identify", "userId": "al", "traits": {"email": "al@example.com"}},
            {"type": "track", "userId": "al", "event": "Cart Updated"},
        ]}))
        .await;
        app.settle().await;
        assert_eq!(app.runs("bo").await[0]["step"], "wait-more");
        assert_eq!(app.runs("al").await[0]["step"], "wait");

        // Version 2: a shorter wait and a tag before the reminder, no last chance.
        let v2 = json!({
            "trigger": {"type": "event", "event": "Cart Updated"},
            "start": "wait",
            "steps": [
                {"id": "wait", "type": "wait", "duration": {"hours": 2}, "next": "tag"},
                {"id": "tag", "type": "update_contact", "add_tags": ["reminded"], "next": "remind"},
                {"id": "remind", "type": "send", "template": "nudge"}
            ],
            "settings": {"re_entry": {"type": "always"}}
        });
        let (s, j) = app
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/journeys/{id}"),
                Some(json!({"name": "Carts", "definition": v2})),
            )
            .await;
        assert_eq!((s, j["version"].as_i64()), (200, Some(2)), "{j}");
        app.at(T0 + 6 * HOUR).await;
        // A bad mapping is refused and nothing is published.
        for (mapping, field) in [
            (json!({"nope": "wait"}), "move_runs.nope"),
            (json!({"wait": "nope"}), "move_runs.wait"),
            (json!({"wait": 3}), "move_runs.wait"),
            (json!(["wait"]), "move_runs"),
        ] {
            let (s, e) = app
                .post(&format!("/api/v1/journeys/{id}/publish"), json!({"move_runs": mapping}))
                .await;
            assert_eq!((s, e["error"]["field"].as_str()), (400, Some(field)), "{e}");
        }
        let (s, e) = app
            .post(&format!("/api/v1/journeys/{id}/pause"), json!({"move_runs": {}}))
            .await;
        assert_eq!(s, 400, "{e}");
        assert_eq!(app.get(&format!("/api/v1/journeys/{id}")).await["published_version"], 1);

        let (s, j) = app
            .post(
                &format!("/api/v1/journeys/{id}/publish"),
                json!({"move_runs": {"wait": "wait"}}),
            )
            .await;
        assert_eq!(s, 200, "{j}");
        assert_eq!(j["published_version"], 2);
        assert_eq!(j["runs"], json!({"moved": 1, "stayed": 1}), "{j}");
        let al = app.runs("al").await;
        assert_eq!(
            (al[0]["version"].as_i64(), al[0]["step"].as_str()),
            (Some(2), Some("wait"))
        );
        // al waited one hour of the new two: reminded at T0 + 7 h, the v2 way (tagged).
        app.at(T0 + 7 * HOUR - 1000).await;
        assert_eq!(app.outbox("al").await.len(), 0);
        app.at(T0 + 7 * HOUR).await;
        assert_eq!(app.outbox("al").await.len(), 1);
        let al_id = app.contact("al").await;
        assert_eq!(
            app.get(&format!("/api/v1/contacts/{al_id}")).await["traits"]["tags"],
            json!(["reminded"])
        );
        assert_eq!(app.runs("al").await[0]["status"], "finished");
        // bo stayed on version 1: the last chance a day after the reminder.
        app.at(T0 + 29 * HOUR).await;
        let bo = app.runs("bo").await;
        assert_eq!(
            (bo[0]["version"].as_i64(), bo[0]["status"].as_str()),
            (Some(1), Some("finished"))
        );
        assert_eq!(app.outbox("bo").await.len(), 2);
        app.finish().await;
    }
}

#[tokio::test]
async fn journey_priority_decides_who_takes_a_capped_slot() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        let mut templates = std::collections::HashMap::new();
        for name in ["first", "low", "high"] {
            let (s, t) = app
            .post(
                "/api/v1/templates",
                json!({"name": name, "topic": "news", "content": {"channel": "email", "subject": name, "html": "<p>x</p>"}}),
            )
            .await;
            assert_eq!(s, 201, "{t}");
            templates.insert(t["id"].as_i64().unwrap(), name);
        }
        let (s, e) = app
            .call(
                reqwest::Method::PUT,
                "/api/v1/frequency-caps",
                Some(json!({"caps": [{"channel": "email", "max": 1, "per": "day"}]})),
            )
            .await;
        assert_eq!(s, 200, "{e}");
        for (name, event, priority) in [("First", "Signed Up", 0), ("Low", "Go", 1), ("High", "Go Later", 9)] {
            let definition = json!({
                "trigger": {"type": "event", "event": event},
                "start": "send",
                "steps": [{"id": "send", "type": "send", "template": name.to_lowercase()}]
            });
            let (s, j) = app
                .post(
                    "/api/v1/journeys",
                    json!({"name": name, "priority": priority, "definition": definition}),
                )
                .await;
            assert_eq!(s, 201, "{j}");
            app.post(&format!("/api/v1/journeys/{}/publish", j["id"]), json!({}))
                .await;
        }
        app.track(json!({"batch": [
            {"type": "identify", "userId": "ivy", "traits": {"email": "ivy@example.com"}},
            {"type": "track", "userId": "ivy", "event": "Signed Up"},
        ]}))
        .await;
        app.settle().await;
        // The low-priority journey's send is deferred first, the high one's an hour later:
        // both to the same slot, 24 hours after the first email.
        app.clock.set(T0 + HOUR);
        app.track(json!({"batch": [{"type": "track", "userId": "ivy", "event": "Go"}]}))
            .await;
        app.settle().await;
        app.clock.set(T0 + 2 * HOUR);
        app.track(json!({"batch": [{"type": "track", "userId": "ivy", "event": "Go Later"}]}))
            .await;
        app.settle().await;
        // In the order they were queued (the list is newest first).
        let sent = |mut outbox: Vec<Value>| -> Vec<&str> {
            outbox.sort_by_key(|m| m["id"].as_i64());
            outbox
                .iter()
                .map(|m| templates[&m["template_id"].as_i64().unwrap()])
                .collect()
        };
        assert_eq!(sent(app.outbox("ivy").await), ["first"]);
        app.at(T0 + 24 * HOUR + 1000).await;
        assert_eq!(
            sent(app.outbox("ivy").await),
            ["first", "high"],
            "priority 9 takes the slot"
        );
        app.at(T0 + 48 * HOUR + 2000).await;
        assert_eq!(
            sent(app.outbox("ivy").await),
            ["first", "high", "low"],
            "deferred again, never dropped"
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn a_run_whose_state_cannot_be_read_is_set_aside_not_reset() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        let definition = json!({
            "trigger": {"type": "api"},
            "start": "pause",
            "steps": [
                {"id": "pause", "type": "wait", "duration": {"hours": 1}, "next": "again"},
                {"id": "again", "type": "wait", "duration": {"hours": 1}}
            ],
        });
        let (_, j) = app
            .post("/api/v1/journeys", json!({"name": "Pauses", "definition": definition}))
            .await;
        let id = j["id"].as_i64().unwrap();
        app.post(&format!("/api/v1/journeys/{id}/publish"), json!({})).await;
        let (s, run) = app
            .post(
                &format!("/api/v1/journeys/{id}/runs"),
                json!({"to": {"email": "gil@example.com"}, "idempotency_key": "g-1"}),
            )
            .await;
        assert_eq!((s, run["step"].as_str()), (201, Some("pause")), "{run}");
        let run_id = run["id"].as_i64().unwrap();

        // Something (a bug, a hand edit) leaves the stored state unreadable.
        let garbage = json!({"run_id": "not a number", "position": 17});
        let stale = app.store.write_runs(
            vec![nudge_store::RunWrite {
                run_id,
                step: Some("pause".into()),
                state: garbage.clone(),
                ..Default::default()
            }],
            T0,
        );
        assert!(stale.await.unwrap().is_empty());

        // Its timer comes due: the run is reported and set aside with the error, its
        // state and step kept as they were, nothing left to wake it.
        app.at(T0 + HOUR + 1).await;
        let runs = app.get(&format!("/api/v1/contacts/{}/runs", run["contact_id"])).await;
        let r = &runs["data"][0];
        assert_eq!(r["status"], "set_aside", "{runs}");
        assert_eq!(r["step"], "pause", "not moved on: {r}");
        assert_eq!(r["state"], garbage, "not reset: {r}");
        assert!(r["error"].as_str().is_some_and(|e| e.contains("run state")), "{r}");
        assert_eq!(r["finished_at"], Value::Null);
        let stored = app.store.run(run_id).await.unwrap().unwrap();
        assert!(!stored.is_active());
        assert_eq!(app.store.next_timer_due().await.unwrap(), None, "no timer left");
        let stats = app.get(&format!("/api/v1/journeys/{id}")).await;
        assert_eq!(stats["active_runs_per_step"], json!({}), "{stats}");
        assert_eq!(
            (stats["stats"]["active"].as_i64(), stats["stats"]["set_aside"].as_i64()),
            (Some(0), Some(1)),
            "a set-aside run is not counted as active: {stats}"
        );

        // Later rounds leave it alone: nothing writes over the state.
        app.at(T0 + 3 * HOUR).await;
        let again = app.store.run(run_id).await.unwrap().unwrap();
        assert_eq!((again.state, again.revision), (garbage, stored.revision));
        app.finish().await;
    }
}
