//! Campaigns through the admin API, on both backends: a draft is validated, created,
//! edited, sent with a schedule, paused, resumed and cancelled; refused requests
//! answer `400` naming the field, `404` for an unknown campaign and `409` with the
//! reason when the campaign's status refuses; a person picks an A/B test's winner;
//! the report comes as JSON and as CSV. The campaign engine is not driven here (its
//! rounds are tested in `nudge-engine`): these tests are about the API's contract.

use serde_json::{Value, json};

mod common;
use common::*;

const HOUR: nudge_core::Millis = 3_600_000;

/// Templates and a segment to send to; returns the segment's id.
async fn fixtures(app: &App) -> i64 {
    for (name, content) in [
        (
            "spring-a",
            json!({"channel": "email", "subject": "Spring", "html": "<p>Spring</p>"}),
        ),
        (
            "spring-b",
            json!({"channel": "email", "subject": "Spring!", "html": "<p>Spring!</p>"}),
        ),
        ("flash", json!({"channel": "sms", "body": "Spring sale"})),
    ] {
        let (s, t) = app
            .post("/api/v1/templates", json!({"name": name, "content": content}))
            .await;
        assert_eq!(s, 201, "{t}");
    }
    let (s, seg) = app
        .post(
            "/api/v1/segments",
            json!({"name": "Has email", "definition": {"type": "trait", "trait": "email", "op": "exists"}}),
        )
        .await;
    assert_eq!(s, 201, "{seg}");
    seg["id"].as_i64().unwrap()
}

fn fields(problems: &Value) -> Vec<&str> {
    problems
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {problems}"))
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect()
}

/// `(status, error code, field)` of an answer.
fn error(answer: &(u16, Value)) -> (u16, &str, Option<&str>) {
    let e = &answer.1["error"];
    (
        answer.0,
        e["code"].as_str().unwrap_or_else(|| panic!("no error: {}", answer.1)),
        e["field"].as_str(),
    )
}

#[tokio::test]
async fn a_campaign_from_draft_to_cancelled() {
    for app in spawn_apps().await {
        eprintln!("on {}", app.store.backend());
        let segment = fixtures(&app).await;
        let definition = json!({
            "audience": {"segments": [segment]},
            "variants": [{"name": "A", "template": "spring-a"}, {"name": "B", "template": "spring-b"}],
            "test": {"share": 20, "metric": "click_rate", "duration": {"hours": 4}},
            "holdout": 5,
            "throttle_per_hour": 50000
        });

        // Validating reports every problem with its field, saving nothing.
        let mut bad = definition.clone();
        bad["audience"]["segments"] = json!([segment, 4040]);
        bad["variants"][1]["template"] = json!("flash");
        bad["holdout"] = json!(70);
        let (s, v) = app.post("/api/v1/campaigns/validate", json!({"definition": bad})).await;
        assert_eq!((s, v["valid"].as_bool()), (200, Some(false)), "{v}");
        assert_eq!(
            fields(&v["problems"]),
            [
                "definition.holdout",
                "definition.audience.segments[1]",
                "definition.variants[1].template"
            ],
            "{v}"
        );
        let (s, v) = app
            .post("/api/v1/campaigns/validate", json!({"definition": definition}))
            .await;
        assert_eq!((s, &v), (200, &json!({"valid": true, "problems": []})));
        for (body, expected) in [
            (json!({}), (400, "missing_field", Some("definition"))),
            (json!({"definition": [1]}), (400, "invalid_field", Some("definition"))),
            (
                json!({"definition": definition, "name": "x"}),
                (400, "invalid_field", Some("name")),
            ),
        ] {
            let answer = app.post("/api/v1/campaigns/validate", body.clone()).await;
            assert_eq!(error(&answer), expected, "{body}: {}", answer.1);
        }

        // Saving refuses the same problems, every one in `details`.
        let answer = app
            .post("/api/v1/campaigns", json!({"name": "Spring", "definition": bad}))
            .await;
        assert_eq!(
            error(&answer),
            (400, "invalid_field", Some("definition.holdout")),
            "{}",
            answer.1
        );
        assert_eq!(fields(&answer.1["error"]["details"]).len(), 3, "{}", answer.1);
        for (body, expected) in [
            (json!({"definition": definition}), (400, "missing_field", Some("name"))),
            (
                json!({"name": 7, "definition": definition}),
                (400, "invalid_field", Some("name")),
            ),
            (
                json!({"name": "Spring", "definition": definition, "schedule": {"type": "now"}}),
                (400, "invalid_field", Some("schedule")),
            ),
            (
                json!({"name": "Spring", "definition": {"audience": {"segments": "all"}}}),
                (400, "invalid_field", Some("definition.audience.segments")),
            ),
        ] {
            let answer = app.post("/api/v1/campaigns", body.clone()).await;
            assert_eq!(error(&answer), expected, "{body}: {}", answer.1);
        }
        assert_eq!(app.get("/api/v1/campaigns").await["data"], json!([]));

        let (s, c) = app
            .post(
                "/api/v1/campaigns",
                json!({"name": "Spring", "description": "The spring sale", "definition": definition}),
            )
            .await;
        assert_eq!(s, 201, "{c}");
        let id = c["id"].as_i64().unwrap();
        assert_eq!(
            (c["status"].as_str(), &c["schedule"], &c["templates"], &c["winner"]),
            (Some("draft"), &Value::Null, &json!([]), &Value::Null),
            "{c}"
        );
        assert_eq!(
            c["progress"],
            json!({"audience": 0, "held_out": 0, "queued": 0, "skipped": 0, "pending": 0,
                   "snapshot_done": false, "test_ends_at": null})
        );
        let answer = app
            .post("/api/v1/campaigns", json!({"name": "Spring", "definition": definition}))
            .await;
        assert_eq!(error(&answer), (409, "conflict", None), "{}", answer.1);

        // Read, listed, edited while a draft.
        assert_eq!(app.get(&format!("/api/v1/campaigns/{id}")).await, c);
        assert_eq!(app.get("/api/v1/campaigns").await["data"][0]["id"], id);
        let (s, edited) = app
            .put(
                &format!("/api/v1/campaigns/{id}"),
                json!({"name": "Spring sale", "definition": definition}),
            )
            .await;
        assert_eq!((s, edited["name"].as_str()), (200, Some("Spring sale")), "{edited}");
        assert_eq!(edited["description"], "", "a PUT replaces the whole draft");

        // Unknown campaigns are 404, ids that are not integers 400.
        for path in [
            "/api/v1/campaigns/999".to_string(),
            "/api/v1/campaigns/999/report".to_string(),
        ] {
            let answer = app.call(reqwest::Method::GET, &path, None).await;
            assert_eq!(error(&answer), (404, "not_found", None), "{path}");
        }
        for path in ["send", "pause", "resume", "cancel"] {
            let answer = app.post(&format!("/api/v1/campaigns/999/{path}"), json!({})).await;
            assert_eq!(error(&answer), (404, "not_found", None), "{path}");
        }
        let answer = app.post("/api/v1/campaigns/999/winner", json!({"variant": 1})).await;
        assert_eq!(error(&answer), (404, "not_found", None));
        let answer = app.delete("/api/v1/campaigns/999").await;
        assert_eq!(error(&answer), (404, "not_found", None));
        let answer = app.call(reqwest::Method::GET, "/api/v1/campaigns/spring", None).await;
        assert_eq!(error(&answer), (400, "invalid_request", Some("id")));

        // A bad schedule names its field; nothing is sent.
        for (body, field) in [
            (json!({"schedule": {"type": "at", "at": "tomorrow"}}), "schedule.at"),
            (
                json!({"schedule": {"type": "now", "at": "2027-03-15T13:00:00Z"}}),
                "schedule.at",
            ),
            (json!({"schedule": {"type": "soon"}}), "schedule.type"),
            (
                json!({"schedule": {"type": "local_time", "date": "2027-02-30", "time": "09:00"}}),
                "schedule.date",
            ),
            (json!({"when": "now"}), "when"),
        ] {
            let answer = app.post(&format!("/api/v1/campaigns/{id}/send"), body.clone()).await;
            assert_eq!(
                error(&answer),
                (400, "invalid_field", Some(field)),
                "{body}: {}",
                answer.1
            );
        }
        // Pausing a draft is a conflict that says why.
        let answer = app.post(&format!("/api/v1/campaigns/{id}/pause"), json!({})).await;
        assert_eq!(error(&answer), (409, "conflict", None));
        assert_eq!(answer.1["error"]["message"], "a draft campaign cannot pause");

        // Sent for two hours from now: scheduled, with its templates fixed.
        let (s, sent) = app
            .post(
                &format!("/api/v1/campaigns/{id}/send"),
                json!({"schedule": {"type": "at", "at": "2027-03-15T14:00:00Z"}}),
            )
            .await;
        assert_eq!(s, 200, "{sent}");
        assert_eq!(sent["status"], "scheduled");
        assert_eq!(
            sent["schedule"],
            json!({"type": "at", "at": "2027-03-15T14:00:00.000Z"})
        );
        assert_eq!(sent["start_at"], "2027-03-15T14:00:00.000Z");
        assert_eq!(sent["sent_at"], "2027-03-15T12:00:00.000Z");
        let templates: Vec<(i64, i64)> = sent["templates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["variant"].as_i64().unwrap(), t["version"].as_i64().unwrap()))
            .collect();
        assert_eq!(templates, [(0, 1), (1, 1)]);
        let answer = app.post(&format!("/api/v1/campaigns/{id}/send"), json!({})).await;
        assert_eq!(error(&answer), (409, "conflict", None));
        assert_eq!(answer.1["error"]["message"], "a scheduled campaign cannot send");
        let answer = app
            .put(
                &format!("/api/v1/campaigns/{id}"),
                json!({"name": "Late", "definition": definition}),
            )
            .await;
        assert_eq!(error(&answer), (409, "conflict", None));
        let answer = app.delete(&format!("/api/v1/campaigns/{id}")).await;
        assert_eq!(error(&answer), (409, "conflict", None));
        // Its test has not started: no winner can be picked yet.
        let answer = app
            .post(&format!("/api/v1/campaigns/{id}/winner"), json!({"variant": 1}))
            .await;
        assert_eq!(error(&answer), (409, "conflict", None), "{}", answer.1);

        // Paused, resumed before its start (scheduled again) and after it (sending).
        let (s, p) = app.post(&format!("/api/v1/campaigns/{id}/pause"), json!({})).await;
        assert_eq!((s, p["status"].as_str()), (200, Some("paused")), "{p}");
        let answer = app.post(&format!("/api/v1/campaigns/{id}/pause"), json!({})).await;
        assert_eq!(answer.1["error"]["message"], "a paused campaign cannot pause");
        let answer = app
            .post(&format!("/api/v1/campaigns/{id}/resume"), json!({"now": true}))
            .await;
        assert_eq!(error(&answer), (400, "invalid_field", Some("now")));
        let r = app
            .http
            .post(format!("{}/api/v1/campaigns/{id}/resume", app.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "an action needs no body");
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "scheduled");
        app.post(&format!("/api/v1/campaigns/{id}/pause"), json!({})).await;
        app.clock.set(T0 + 3 * HOUR);
        let (_, r) = app.post(&format!("/api/v1/campaigns/{id}/resume"), json!({})).await;
        assert_eq!(r["status"], "sending", "{r}");

        // The winner: a variant of the campaign, once.
        for (body, expected) in [
            (json!({}), (400, "missing_field", Some("variant"))),
            (json!({"variant": 8}), (400, "invalid_field", Some("variant"))),
            (json!({"variant": "B"}), (400, "invalid_field", Some("variant"))),
            (json!({"variant": 1, "by": "me"}), (400, "invalid_field", Some("by"))),
            (json!({"variant": 2}), (404, "not_found", Some("variant"))),
        ] {
            let answer = app.post(&format!("/api/v1/campaigns/{id}/winner"), body.clone()).await;
            assert_eq!(error(&answer), expected, "{body}: {}", answer.1);
        }
        let (s, w) = app
            .post(&format!("/api/v1/campaigns/{id}/winner"), json!({"variant": 1.0}))
            .await;
        assert_eq!(s, 200, "{w}");
        assert_eq!(w["winner"], 1);
        assert_eq!(
            w["decision"],
            json!({"decided_by": {"by": "manual"}, "at": "2027-03-15T15:00:00.000Z"})
        );
        let answer = app
            .post(&format!("/api/v1/campaigns/{id}/winner"), json!({"variant": 0}))
            .await;
        assert_eq!(error(&answer), (409, "conflict", None));

        // The report, as JSON.
        let r = app.get(&format!("/api/v1/campaigns/{id}/report")).await;
        assert_eq!(
            (r["campaign_id"].as_i64(), r["status"].as_str()),
            (Some(id), Some("sending"))
        );
        assert_eq!(
            r["holdout"],
            json!({"recipients": 0, "conversions": 0, "converted": 0, "revenue": 0.0,
                "conversion_rate": null, "revenue_per_recipient": null})
        );
        assert_eq!(r["links"], json!([]));
        // Its series by day (nothing counted yet), and what the series refuses.
        let series = app
            .get(&format!(
                "/api/v1/reports/series?scope=campaign:{id}&granularity=day&from=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z"
            ))
            .await;
        assert_eq!(
            (
                series["scope"].as_str(),
                series["granularity"].as_str(),
                series["points"].as_array().map(Vec::len)
            ),
            (Some(format!("campaign:{id}").as_str()), Some("day"), Some(0)),
            "{series}"
        );
        for (query, field) in [
            ("", "scope"),
            ("scope=campaign:x", "scope"),
            ("scope=channel:", "scope"),
            ("scope=segment:1", "scope"),
            ("scope=channel:email&granularity=week", "granularity"),
            ("scope=channel:email&from=yesterday", "from"),
            (
                "scope=channel:email&from=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
                "until",
            ),
            ("scope=channel:email&by=day", "by"),
        ] {
            let answer = app
                .call(reqwest::Method::GET, &format!("/api/v1/reports/series?{query}"), None)
                .await;
            assert_eq!(answer.0, 400, "{query}: {}", answer.1);
            assert_eq!(error(&answer).2, Some(field), "{query}: {}", answer.1);
        }
        assert_eq!(r["progress"], w["progress"]);
        let variants = r["variants"].as_array().unwrap();
        assert_eq!(variants.len(), 2);
        let b = &variants[1];
        assert_eq!(
            (b["variant"].as_i64(), b["name"].as_str(), b["winner"].as_bool()),
            (Some(1), Some("B"), Some(true))
        );
        assert_eq!(b["template"]["name"], "spring-b");
        assert_eq!(b["template"]["version"], 1);
        for counter in [
            "recipients",
            "sent",
            "delivered",
            "bounced",
            "failed",
            "opened",
            "unique_opened",
            "clicked",
            "unique_clicked",
        ] {
            assert_eq!(b[counter], 0, "{counter}: {b}");
        }
        assert_eq!((&b["open_rate"], &b["click_rate"]), (&Value::Null, &Value::Null));
        // No recipients yet: the figures of arms without data.
        assert_eq!(b["stats"]["recipients"], 0, "{b}");
        assert_eq!(b["stats"]["probability_to_be_best"], 0.5, "{b}");
        let t = &r["test"];
        assert_eq!(
            (t["metric"].as_str(), t["share"].as_i64(), t["duration_ms"].as_i64()),
            (Some("click_rate"), Some(20), Some(4 * HOUR))
        );
        assert_eq!(t["rule"], json!({"type": "probability_to_be_best", "threshold": 0.95}));
        assert_eq!(t["fallback"], "control");
        assert_eq!(t["decision"]["decided_by"]["by"], "manual");
        assert!(t["note"].is_string());

        // As CSV, by parameter or by Accept header.
        for (query, accept) in [("?format=csv", "*/*"), ("", "text/csv")] {
            let r = app
                .http
                .get(format!("{}/api/v1/campaigns/{id}/report{query}", app.url))
                .bearer_auth(ADMIN)
                .header("accept", accept)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
            let text = r.text().await.unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 4, "{text}");
            assert_eq!(
                lines[0],
                "variant,name,template_id,template_version,recipients,sent,delivered,bounced,failed,opened,\
                 unique_opened,clicked,unique_clicked,open_rate,click_rate,conversions,converted,revenue,\
                 conversion_rate,revenue_per_recipient,unsubscribed,complained,conversion_rate_lift_vs_holdout,\
                 revenue_per_recipient_lift_vs_holdout,metric_rate,metric_ci_low,\
                 metric_ci_high,probability_to_be_best,p_value_vs_control,winner"
            );
            assert!(lines[1].starts_with("0,A,"), "{text}");
            assert!(lines[2].starts_with("1,B,") && lines[2].ends_with(",true"), "{text}");
            assert!(lines[3].starts_with("holdout,holdout,"), "{text}");
        }
        for query in ["?format=xml", "?fmt=csv"] {
            let answer = app
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/campaigns/{id}/report{query}"),
                    None,
                )
                .await;
            assert_eq!(error(&answer).0, 400, "{query}");
        }

        // Cancelled: for good; then it may be deleted.
        let (s, c) = app.post(&format!("/api/v1/campaigns/{id}/cancel"), json!({})).await;
        assert_eq!((s, c["status"].as_str()), (200, Some("cancelled")), "{c}");
        assert!(c["completed_at"].is_string(), "{c}");
        let answer = app.post(&format!("/api/v1/campaigns/{id}/resume"), json!({})).await;
        assert_eq!(answer.1["error"]["message"], "a cancelled campaign cannot resume");
        let (s, _) = app.delete(&format!("/api/v1/campaigns/{id}")).await;
        assert_eq!(s, 204);
        let answer = app
            .call(reqwest::Method::GET, &format!("/api/v1/campaigns/{id}"), None)
            .await;
        assert_eq!(error(&answer), (404, "not_found", None));
        app.finish().await;
    }
}

/// A saved draft whose template was deleted since cannot be sent: a conflict with the
/// problem in `details`. Local-time schedules start where the time comes first.
#[tokio::test]
async fn sending_rechecks_the_draft_and_starts_local_times_first_anywhere() {
    for app in spawn_apps().await {
        let segment = fixtures(&app).await;
        let (_, t) = app
            .post(
                "/api/v1/templates",
                json!({"name": "gone", "content": {"channel": "email", "subject": "x", "html": "<p>x</p>"}}),
            )
            .await;
        let definition = |template: &str| json!({"audience": {"segments": [segment]}, "variants": [{"name": "A", "template": template}]});
        let (s, doomed) = app
            .post(
                "/api/v1/campaigns",
                json!({"name": "Doomed", "definition": definition("gone")}),
            )
            .await;
        assert_eq!(s, 201, "{doomed}");
        let (s, _) = app.delete(&format!("/api/v1/templates/{}", t["id"])).await;
        assert_eq!(s, 204);
        let answer = app
            .post(&format!("/api/v1/campaigns/{}/send", doomed["id"]), json!({}))
            .await;
        assert_eq!(error(&answer), (409, "conflict", None), "{}", answer.1);
        assert_eq!(
            fields(&answer.1["error"]["details"]),
            ["definition.variants[0].template"]
        );

        let (_, c) = app
            .post(
                "/api/v1/campaigns",
                json!({"name": "Morning", "definition": definition("spring-a")}),
            )
            .await;
        let (s, sent) = app
            .post(
                &format!("/api/v1/campaigns/{}/send", c["id"]),
                json!({"schedule": {"type": "local_time", "date": "2027-03-16", "time": "09:00"}}),
            )
            .await;
        assert_eq!(s, 200, "{sent}");
        // 09:00 comes first at UTC+14: 19:00 UTC the day before.
        assert_eq!(
            (sent["status"].as_str(), sent["start_at"].as_str()),
            (Some("scheduled"), Some("2027-03-15T19:00:00.000Z"))
        );
        assert_eq!(
            sent["schedule"],
            json!({"type": "local_time", "date": "2027-03-16", "time": "09:00"})
        );
        // Without a body: now.
        let (_, now) = app
            .post(
                "/api/v1/campaigns",
                json!({"name": "Now", "definition": definition("spring-b")}),
            )
            .await;
        let r = app
            .http
            .post(format!("{}/api/v1/campaigns/{}/send", app.url, now["id"]))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let sent: Value = r.json().await.unwrap();
        assert_eq!(
            (sent["status"].as_str(), &sent["schedule"]),
            (Some("sending"), &json!({"type": "now"}))
        );
        app.finish().await;
    }
}

/// The conversion settings are read with their defaults, refused with the field at
/// fault, and stored; the workspace report answers over a range, as JSON and CSV, and
/// names a bad range.
#[tokio::test]
async fn conversion_settings_and_the_workspace_report() {
    for app in spawn_apps().await {
        let s = app.get("/api/v1/conversion-settings").await;
        assert_eq!(
            s,
            json!({"events": ["Order Completed"], "engaged_window": 5 * 24 * HOUR, "delivered_window": 24 * HOUR})
        );
        let bad = app.put("/api/v1/conversion-settings", json!({"events": []})).await;
        assert_eq!(error(&bad), (400, "invalid_field", Some("events")));
        let bad = app
            .put("/api/v1/conversion-settings", json!({"events": ["X"], "window": 1}))
            .await;
        assert_eq!(error(&bad).0, 400, "{bad:?}");
        let bad = app
            .put("/api/v1/conversion-settings", json!({"delivered_window": {"days": 91}}))
            .await;
        assert_eq!(error(&bad), (400, "invalid_field", Some("delivered_window")));
        let (status, ok) = app
            .put(
                "/api/v1/conversion-settings",
                json!({"events": ["Order Completed", "Subscription Started"], "engaged_window": {"days": 3}}),
            )
            .await;
        assert_eq!(status, 200, "{ok}");
        assert_eq!(ok["engaged_window"], 3 * 24 * HOUR);
        assert_eq!(app.get("/api/v1/conversion-settings").await, ok);

        let report = app.get("/api/v1/reports").await;
        assert!(report["rows"].is_array(), "{report}");
        let bad = app
            .call(
                reqwest::Method::GET,
                "/api/v1/reports?from=2027-01-02T00:00:00Z&until=2027-01-01T00:00:00Z",
                None,
            )
            .await;
        assert_eq!(error(&bad), (400, "invalid_request", Some("until")));
        let bad = app
            .call(reqwest::Method::GET, "/api/v1/reports?from=yesterday", None)
            .await;
        assert_eq!(error(&bad), (400, "invalid_request", Some("from")));
        let r = app
            .http
            .get(format!("{}/api/v1/reports?format=csv", app.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().starts_with("kind,key,name,recipients,"));
        app.finish().await;
    }
}
