//! The HTTP API end to end, in process: a real server on a loopback port, real HTTP.

use nudge_api::{AppState, router};
use nudge_app::keys;
use nudge_core::{Clock, SystemClock};
use nudge_store::{Ingestor, IngestorConfig, KeyKind, SqliteStore, Store, StoreStats};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

const ADMIN: &str = "na_test_admin";
const WRITE: &str = "nw_test_write";
const VAPID_PUBLIC: &str = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";

struct App {
    url: String,
    store: Arc<dyn Store>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn spawn_app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("nudge.db")).await.unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    keys::ensure_bootstrap_keys(&*store, Some(ADMIN), Some(WRITE), clock.now())
        .await
        .unwrap();
    let ingestor = Arc::new(Ingestor::start(store.clone(), clock.clone(), IngestorConfig::default()));
    let segments = nudge_engine::SegmentEngine::new(store.clone(), clock.clone(), Default::default());
    tokio::spawn(segments.clone().run(std::future::pending()));
    let app = router(AppState::new(store.clone(), ingestor, clock, segments).with_push_key(VAPID_PUBLIC.into(), false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    App {
        url: format!("http://{addr}"),
        store,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl App {
    async fn track_raw(&self, path: &str, key: Option<&str>, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            req = req.basic_auth(k, Some(""));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
    async fn track(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.track_raw(path, Some(WRITE), body.to_string()).await
    }
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.admin(reqwest::Method::GET, path, None).await
    }
}

#[tokio::test]
async fn bad_input_gets_the_documented_error_and_changes_nothing() {
    let app = spawn_app().await;
    let big = "x".repeat(33 * 1024);
    /// (path, write key, body, status, error code, field)
    type Case<'a> = (&'a str, Option<&'a str>, String, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("/v1/track", Some(WRITE), "{\"userId\": \"u\", \"event\": ".into(), 400, "malformed_json", None),
        ("/v1/track", Some(WRITE), "[]".into(), 400, "invalid_field", Some("$")),
        ("/v1/track", Some(WRITE), json!({"userId": "u"}).to_string(), 400, "missing_field", Some("event")),
        ("/v1/track", Some(WRITE), json!({"event": "E"}).to_string(), 400, "missing_field", Some("userId or anonymousId")),
        ("/v1/identify", Some(WRITE), json!({"userId": "u", "traits": "vip"}).to_string(), 400, "invalid_field", Some("traits")),
        ("/v1/track", Some(WRITE), json!({"userId": "u", "event": "E", "timestamp": "Tuesday"}).to_string(), 400, "invalid_field", Some("timestamp")),
        ("/v1/alias", Some(WRITE), json!({"userId": "u"}).to_string(), 400, "missing_field", Some("previousId")),
        ("/v1/track", Some(WRITE), json!({"userId": "u", "event": "E", "properties": {"b": big}}).to_string(), 400, "message_too_large", Some("$")),
        (
            "/v1/batch",
            Some(WRITE),
            json!({"batch": [
                {"type": "identify", "userId": "fine", "traits": {"a": 1}},
                {"type": "track", "userId": "fine", "event": "Fine"},
                {"type": "track", "userId": "fine", "event": {"not": "a string"}},
            ]})
            .to_string(),
            400,
            "invalid_field",
            Some("batch[2].event"),
        ),
        ("/v1/batch", Some(WRITE), json!({"batch": [{"type": "purchase", "userId": "u"}]}).to_string(), 400, "invalid_field", Some("batch[0].type")),
        (
            "/v1/batch",
            Some(WRITE),
            json!({"batch": (0..20).map(|i| json!({"type": "track", "userId": "u", "event": "E", "properties": {"b": "y".repeat(30_000), "i": i}})).collect::<Vec<_>>()}).to_string(),
            400,
            "batch_too_large",
            None,
        ),
        ("/v1/batch", Some(WRITE), format!("{{\"batch\": [\"{}\"]}}", "z".repeat(2_000_000)), 400, "batch_too_large", None),
        ("/v1/track", None, json!({"userId": "u", "event": "E"}).to_string(), 401, "unauthorized", None),
        ("/v1/track", Some("nw_wrong"), json!({"userId": "u", "event": "E"}).to_string(), 401, "unauthorized", None),
        ("/v1/track", Some(ADMIN), json!({"userId": "u", "event": "E"}).to_string(), 401, "unauthorized", None),
        ("/v1/track", None, json!({"userId": "u", "event": "E", "writeKey": "nope"}).to_string(), 401, "unauthorized", None),
    ];
    for (path, key, body, status, code, field) in cases {
        let shown = body.chars().take(80).collect::<String>();
        let (got, err) = app.track_raw(path, key, body).await;
        assert_eq!(got.as_u16(), status, "{path} {shown}: {err}");
        assert_eq!(err["error"]["code"], json!(code), "{path} {shown}: {err}");
        assert_eq!(err["error"]["field"].as_str(), field, "{path} {shown}: {err}");
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(
        app.store.stats().await.unwrap(),
        StoreStats::default(),
        "nothing was stored"
    );

    // The admin API refuses write keys and missing or unknown keys.
    for auth in [Some(WRITE), Some("na_unknown"), None] {
        let mut req = app.http.get(format!("{}/api/v1/contacts", app.url));
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "unauthorized");
    }
    let (s, e) = app.get("/api/v1/contacts?limit=0").await;
    assert_eq!((s.as_u16(), e["error"]["field"].as_str()), (400, Some("limit")));
    let (s, e) = app.get("/api/v1/contacts?colour=red").await;
    assert_eq!(
        (s.as_u16(), e["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let (s, _) = app.get("/api/v1/contacts/abc").await;
    assert_eq!(s.as_u16(), 400);
    let (s, e) = app.get("/api/v1/contacts/12345").await;
    assert_eq!((s.as_u16(), e["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, e) = app.get("/api/v1/contacts/1/events?cursor=garbage").await;
    assert_eq!(s.as_u16(), 404, "{e}");
}

#[tokio::test]
async fn tracked_messages_show_up_in_the_admin_api() {
    let app = spawn_app().await;
    assert_eq!(
        app.track(
            "/v1/page",
            json!({"anonymousId": "a-1", "name": "Home", "properties": {"path": "/"}})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        app.track(
            "/v1/track",
            json!({"anonymousId": "a-1", "event": "Product Viewed", "properties": {"sku": "S1"}, "messageId": "m-1"})
        )
        .await
        .0,
        200
    );
    // Retried by a client: accepted, stored once.
    assert_eq!(
        app.track(
            "/v1/track",
            json!({"anonymousId": "a-1", "event": "Product Viewed", "properties": {"sku": "S1"}, "messageId": "m-1"})
        )
        .await
        .0,
        200
    );
    let (s, _) = app
        .track(
            "/v1/batch",
            json!({"batch": [
                {"type": "identify", "userId": "u-1", "anonymousId": "a-1", "traits": {"email": "Ada@Example.com", "plan": "free"}},
                {"type": "identify", "userId": "u-1", "traits": {"plan": "pro", "nickname": null}},
                {"type": "screen", "userId": "u-1", "name": "Settings"},
                {"type": "group", "userId": "u-1", "groupId": "acme", "traits": {"name": "Acme"}},
            ], "context": {"timezone": "Europe/Paris"}}),
        )
        .await;
    assert_eq!(s, 200);
    // writeKey in the body instead of the header.
    let (s, body) = app
        .track_raw(
            "/v1/track",
            None,
            json!({"userId": "u-1", "event": "Order Completed", "properties": {"total": 30}, "writeKey": WRITE})
                .to_string(),
        )
        .await;
    assert_eq!((s.as_u16(), body), (200, json!({"success": true})));

    let (s, c) = app.get("/api/v1/contacts/lookup?email=ada@example.com").await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["user_id"], "u-1");
    assert_eq!(c["anonymous_ids"], json!(["a-1"]));
    assert_eq!(c["traits"]["plan"], "pro");
    let id = c["id"].as_i64().unwrap();
    assert_eq!(
        app.get("/api/v1/contacts/lookup?anonymous_id=a-1").await.1["id"],
        json!(id)
    );
    assert_eq!(app.get(&format!("/api/v1/contacts/{id}")).await.1, c);
    let (_, list) = app.get("/api/v1/contacts?trait.plan=pro").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // A trait name with a control character is refused, not a server error.
    let (status, e) = app.get("/api/v1/contacts?trait.a%00b=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["field"], "trait.a\u{0}b", "{e}");
    let (_, list) = app.get("/api/v1/contacts?q=EXAMPLE").await;
    assert_eq!(list["data"][0]["id"], json!(id));

    // Timeline: newest first, paged.
    let (_, page1) = app.get(&format!("/api/v1/contacts/{id}/events?limit=4")).await;
    let (_, page2) = app
        .get(&format!(
            "/api/v1/contacts/{id}/events?limit=4&cursor={}",
            page1["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page2["next_cursor"], Value::Null);
    let all: Vec<Value> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["data"].as_array().unwrap())
        .cloned()
        .collect();
    assert_eq!(all.len(), 7, "page, track (once), 2 identify, screen, group, track");
    let kinds: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "identify").count(), 2);
    let order = all.iter().find(|e| e["event"] == "Order Completed").unwrap();
    assert_eq!(order["properties"]["total"], json!(30));
    let group = all.iter().find(|e| e["type"] == "group").unwrap();
    assert_eq!(
        (group["groupId"].as_str(), group["traits"]["name"].as_str()),
        (Some("acme"), Some("Acme"))
    );
    assert_eq!(group["context"]["timezone"], "Europe/Paris", "batch context applies");
    assert!(
        all.iter().all(|e| e["context"]["ip"] == "127.0.0.1"),
        "the client address is recorded"
    );

    // Update traits and subscriptions.
    let (s, c2) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            Some(json!({"traits": {"vip": true, "plan": null}, "subscriptions": {"email": "unsubscribed"}})),
        )
        .await;
    assert_eq!(s, 200, "{c2}");
    assert_eq!(
        (c2["traits"]["vip"].as_bool(), c2["traits"].get("plan")),
        (Some(true), None)
    );
    assert_eq!(c2["subscriptions"]["email"], "unsubscribed");
    let (s, e) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            Some(json!({"subscriptions": {"fax": "subscribed"}})),
        )
        .await;
    assert_eq!(
        (s.as_u16(), e["error"]["field"].as_str()),
        (400, Some("subscriptions.fax"))
    );
    let (s, e) = app
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            Some(json!({"trait": {}})),
        )
        .await;
    assert_eq!(s.as_u16(), 400, "{e}");

    // GDPR export, then erasure.
    let (s, export) = app.get(&format!("/api/v1/contacts/{id}/export")).await;
    assert_eq!(s, 200);
    assert_eq!(export["contact"]["id"], json!(id));
    assert_eq!(export["events"].as_array().unwrap().len(), 7);
    let (s, _) = app
        .admin(reqwest::Method::DELETE, &format!("/api/v1/contacts/{id}"), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.get(&format!("/api/v1/contacts/{id}")).await.0, 404);
    assert_eq!(app.get("/api/v1/contacts/lookup?anonymous_id=a-1").await.0, 404);
    assert_eq!(app.store.stats().await.unwrap(), StoreStats::default());
}

#[tokio::test]
async fn gzip_bodies_are_accepted_and_bounded() {
    use std::io::Write;
    let app = spawn_app().await;
    let gzip = |v: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(v).unwrap();
        e.finish().unwrap()
    };
    let send = |body: Vec<u8>, encoding: &'static str| {
        app.http
            .post(format!("{}/v1/batch", app.url))
            .basic_auth(WRITE, Some(""))
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body)
            .send()
    };
    let batch = json!({"batch": [{"type": "track", "userId": "gz", "event": "Zipped"}]}).to_string();
    assert_eq!(send(gzip(batch.as_bytes()), "gzip").await.unwrap().status(), 200);
    // A small bomb: 5 MB of zeros compress to a few KB; the limit applies after decompression.
    let bomb = gzip(&vec![b' '; 5_000_000]);
    assert!(bomb.len() < 100_000);
    let resp = send(bomb, "gzip").await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "batch_too_large");
    let resp = send(b"not gzip".to_vec(), "gzip").await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = send(batch.clone().into_bytes(), "br").await.unwrap();
    assert_eq!(
        (
            resp.status().as_u16(),
            resp.json::<Value>().await.unwrap()["error"]["field"].clone()
        ),
        (400, json!("Content-Encoding"))
    );
    assert_eq!(app.store.stats().await.unwrap().events, 1);
}

#[tokio::test]
async fn keys_are_created_used_and_revoked() {
    let app = spawn_app().await;
    let (s, key) = app
        .admin(
            reqwest::Method::POST,
            "/api/v1/keys",
            Some(json!({"kind": "write", "name": "website"})),
        )
        .await;
    assert_eq!(s, 201, "{key}");
    let secret = key["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("nw_"));
    let body = json!({"userId": "u", "event": "E"}).to_string();
    assert_eq!(app.track_raw("/v1/track", Some(&secret), body.clone()).await.0, 200);
    let (_, list) = app.get("/api/v1/keys").await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("secret").is_none() && k.get("hash").is_none())
    );
    let (s, _) = app
        .admin(reqwest::Method::DELETE, &format!("/api/v1/keys/{}", key["id"]), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.track_raw("/v1/track", Some(&secret), body).await.0, 401);
    let (s, e) = app
        .admin(reqwest::Method::POST, "/api/v1/keys", Some(json!({"kind": "root"})))
        .await;
    assert_eq!((s.as_u16(), e["error"]["field"].as_str()), (400, Some("kind")));
    let (s, _) = app
        .admin(reqwest::Method::DELETE, &format!("/api/v1/keys/{}", key["id"]), None)
        .await;
    assert_eq!(s, 404, "already revoked");
}

#[tokio::test]
async fn contacts_csv_round_trip() {
    let app = spawn_app().await;
    let csv = "user_id,email,first_name,age,subscription.email\nu1,one@x.io,Ada,36,subscribed\n,two@x.io,Omar,,unsubscribed\n";
    let resp = app
        .http
        .post(format!("{}/api/v1/contacts/import", app.url))
        .bearer_auth(ADMIN)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"rows": 2, "created": 2, "updated": 0})
    );
    let bad = "user_id,email\nu9,not-an-email\n";
    let resp = app
        .http
        .post(format!("{}/api/v1/contacts/import", app.url))
        .bearer_auth(ADMIN)
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2")
    );
    assert_eq!(
        app.store.stats().await.unwrap().contacts,
        2,
        "a bad file imports nothing"
    );

    let resp = app
        .http
        .get(format!("{}/api/v1/contacts/export", app.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let exported = resp.text().await.unwrap();
    assert!(
        exported
            .starts_with("id,user_id,email,phone,anonymous_ids,created_at,updated_at,last_seen_at,subscription.email,")
    );
    assert!(exported.contains("one@x.io"));
    // An export imports back onto the same contacts.
    let resp = app
        .http
        .post(format!("{}/api/v1/contacts/import", app.url))
        .bearer_auth(ADMIN)
        .body(exported)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"rows": 2, "created": 0, "updated": 2})
    );
    let (_, c) = app.get("/api/v1/contacts/lookup?user_id=u1").await;
    assert_eq!(
        (c["traits"]["age"].clone(), c["traits"]["first_name"].clone()),
        (json!(36), json!("Ada"))
    );
}

#[tokio::test]
async fn operations_endpoints() {
    let app = spawn_app().await;
    let get = |p: &str| app.http.get(format!("{}{p}", app.url)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let ready: Value = get("/readyz").await.unwrap().json().await.unwrap();
    assert_eq!(ready, json!({"status": "ready", "backend": "sqlite"}));
    app.track("/v1/track", json!({"userId": "u", "event": "E"})).await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("nudge_ingest_messages_received_total{type=\"track\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("nudge_ingest_commits_total"), "{metrics}");
    let spec: Value = get("/api/v1/openapi.json").await.unwrap().json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let resp = get("/nope").await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "not_found");
}

#[tokio::test]
async fn push_subscriptions_are_validated_saved_moved_and_removed() {
    let app = spawn_app().await;
    let p256dh = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    let auth = "BTBZMqHH6r4Tts7J_aSIgg";
    let sub = |endpoint: &str, p256dh: &str, auth: &str| json!({"endpoint": endpoint, "expirationTime": null, "keys": {"p256dh": p256dh, "auth": auth}});
    let key = app
        .http
        .get(format!("{}/v1/push/vapid-public-key", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), 200, "public, no key");
    assert_eq!(key.json::<Value>().await.unwrap(), json!({"public_key": VAPID_PUBLIC}));

    // (body, status, code, field)
    let cases = vec![
        (json!({"userId": "u1"}), 400, "missing_field", "subscription"),
        (
            json!({"subscription": sub("https://push.example/a", p256dh, auth)}),
            400,
            "missing_field",
            "userId",
        ),
        (
            json!({"userId": "u1", "subscription": sub("http://push.example/a", p256dh, auth)}),
            400,
            "invalid_field",
            "subscription.endpoint",
        ),
        (
            json!({"userId": "u1", "subscription": sub("https://push.example/a", &p256dh[..40], auth)}),
            400,
            "invalid_field",
            "subscription.keys.p256dh",
        ),
        (
            json!({"userId": "u1", "subscription": sub("https://push.example/a", p256dh, "AAAA")}),
            400,
            "invalid_field",
            "subscription.keys.auth",
        ),
        (
            json!({"userId": "u1", "subscription": sub("https://169.254.169.254/latest/meta-data", p256dh, auth)}),
            400,
            "invalid_field",
            "subscription.endpoint",
        ),
        (
            json!({"userId": "u1", "subscription": sub("http://127.0.0.1:9/push", p256dh, auth)}),
            400,
            "invalid_field",
            "subscription.endpoint",
        ),
        (
            json!({"userId": "u1", "subscription": {"endpoint": "https://push.example/a"}}),
            400,
            "missing_field",
            "subscription.keys",
        ),
        (
            json!({"userId": "u1", "subscription": sub("https://push.example/a", p256dh, auth), "extra": 1}),
            400,
            "invalid_field",
            "extra",
        ),
        (
            json!({"userId": true, "subscription": sub("https://push.example/a", p256dh, auth)}),
            400,
            "invalid_field",
            "userId",
        ),
    ];
    for (body, status, code, field) in cases {
        let (got, v) = app.track("/v1/push/subscriptions", body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {v}");
        assert_eq!(
            (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
            (Some(code), Some(field)),
            "{body}: {v}"
        );
    }
    let good = json!({"anonymousId": "anon-9", "subscription": sub("https://push.example/a", p256dh, auth)});
    let (status, v) = app.track_raw("/v1/push/subscriptions", None, good.to_string()).await;
    assert_eq!(status, 401, "{v}");
    let (status, v) = app
        .track_raw("/v1/push/subscriptions", Some(ADMIN), good.to_string())
        .await;
    assert_eq!(status, 401, "an admin key is not a write key: {v}");
    assert_eq!(
        app.store.stats().await.unwrap(),
        StoreStats::default(),
        "nothing was stored"
    );

    // An unknown anonymous visitor: the contact is created.
    let (status, v) = app.track("/v1/push/subscriptions", good.clone()).await;
    assert_eq!(status, 200, "{v}");
    let anon = v["subscription"]["contact_id"].as_i64().unwrap();
    let (_, listed) = app.get(&format!("/api/v1/contacts/{anon}/push-subscriptions")).await;
    assert_eq!(listed["data"][0]["endpoint"], "https://push.example/a");
    assert!(listed["data"][0].get("auth").is_none(), "keys stay inside");
    // The same browser, now logged in (writeKey in the body): the visitor becomes
    // u1 and keeps the subscription.
    let (status, v) = app
        .track_raw(
            "/v1/push/subscriptions",
            None,
            json!({"userId": "u1", "anonymousId": "anon-9", "writeKey": WRITE,
                   "subscription": sub("https://push.example/a", p256dh, auth), "userAgent": "Firefox"})
            .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["subscription"]["contact_id"].as_i64(), Some(anon));
    assert_eq!(v["subscription"]["user_agent"], "Firefox");
    // Another user on that browser: the subscription moves to them.
    let (_, v) = app
        .track(
            "/v1/push/subscriptions",
            json!({"userId": "u2", "subscription": sub("https://push.example/a", p256dh, auth)}),
        )
        .await;
    let u2 = v["subscription"]["contact_id"].as_i64().unwrap();
    assert_ne!(u2, anon);
    let (_, listed) = app.get(&format!("/api/v1/contacts/{anon}/push-subscriptions")).await;
    assert_eq!(listed["data"], json!([]));
    let (status, _) = app.get("/api/v1/contacts/999999/push-subscriptions").await;
    assert_eq!(status, 404);

    let gone = |endpoint: &str| json!({"endpoint": endpoint});
    let (status, v) = app.track_raw("/v1/push/subscriptions", None, "{}").await;
    assert_eq!(status, 401, "{v}");
    let resp = app
        .http
        .delete(format!("{}/v1/push/subscriptions", app.url))
        .basic_auth(WRITE, Some(""))
        .json(&gone("https://push.example/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"success": true, "removed": true})
    );
    let (_, listed) = app.get(&format!("/api/v1/contacts/{u2}/push-subscriptions")).await;
    assert_eq!(listed["data"], json!([]));
}

#[tokio::test]
async fn template_previews_report_problems_in_their_answer() {
    let app = spawn_app().await;
    let post = |path: &'static str, body: Value| app.admin(reqwest::Method::POST, path, Some(body));
    let (s, t) = post(
        "/api/v1/templates",
        json!({"name": "code", "content": {"channel": "sms", "body": "Hi {{ contact.traits.name }}"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let id = t["id"].as_i64().unwrap();
    let by_id = format!("/api/v1/templates/{id}/preview");
    let (s, p) = app
        .admin(
            reqwest::Method::POST,
            &by_id,
            Some(json!({"contact": {"traits": {"name": "Ada"}}})),
        )
        .await;
    assert_eq!((s, &p["rendered"]["body"]), (StatusCode::OK, &json!("Hi Ada")), "{p}");

    // A recipient who does not exist is a problem of the preview, like content that
    // does not compile; a 404 is only about the template.
    let (s, p) = app
        .admin(
            reqwest::Method::POST,
            &by_id,
            Some(json!({"to": {"user_id": "nobody"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        p,
        json!({"rendered": null, "errors": [{"field": "to", "message": "no such contact"}]})
    );
    let (s, p) = post(
        "/api/v1/templates/preview",
        json!({"content": {"channel": "webhook", "url": "https://x.example", "headers": {"a b": "c"}}}),
    )
    .await;
    assert_eq!((s, &p["rendered"]), (StatusCode::OK, &Value::Null), "{p}");
    assert_eq!(p["errors"][0]["field"], "headers.a b", "{p}");
    let (s, e) = app
        .admin(reqwest::Method::POST, "/api/v1/templates/999/preview", Some(json!({})))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{e}"
    );

    // What the request's shape forbids is still refused.
    for (body, field) in [
        (json!({"to": {"email": "not-an-address"}}), "to.email"),
        (
            json!({"content": {"channel": "sms", "body": "x", "url": "y"}}),
            "content",
        ),
        (json!({"data": []}), "data"),
    ] {
        let (s, e) = app.admin(reqwest::Method::POST, &by_id, Some(body.clone())).await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}: {e}"
        );
    }
}

/// The browser surface: the key's allowed origins, the preflight, the short
/// endpoints with CORS headers, the settings document with its ETag, the library
/// with the key embedded, its chunks, and a browser-only key kept off the server
/// endpoints.
#[tokio::test]
async fn browsers_send_through_the_short_endpoints_from_allowed_origins() {
    let app = spawn_app().await;
    let key = app
        .store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kind == KeyKind::Write)
        .unwrap();
    // Nothing is allowed until the key says so.
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/v1/t", app.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,authorization")
            .send()
    };
    assert_eq!(preflight("https://shop.example").await.unwrap().status(), 403);
    let (status, body) = app
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/keys/{}/browser", key.id),
            Some(json!({"allowed_origins": ["https://Shop.example", "ftp://nope"]})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"]["field"].as_str()),
        (400, Some("allowed_origins[1]")),
        "{body}"
    );
    let (status, body) = app
        .admin(
            reqwest::Method::PUT,
            &format!("/api/v1/keys/{}/browser", key.id),
            Some(json!({"allowed_origins": ["https://Shop.example"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["allowed_origins"], json!(["https://shop.example"]));

    let ok = preflight("https://shop.example").await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://shop.example");
    assert!(
        ok.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert_eq!(preflight("https://evil.example").await.unwrap().status(), 403);

    // The library posts text/plain with the key as Basic user and in the body.
    let post = |path: &'static str, origin: &'static str, body: Value| {
        app.http
            .post(format!("{}{path}", app.url))
            .header("origin", origin)
            .header("content-type", "text/plain")
            .basic_auth(WRITE, Some(""))
            .body(body.to_string())
            .send()
    };
    let page = json!({"type": "page", "anonymousId": "anon-b1", "name": "Home", "writeKey": WRITE,
        "context": {"page": {"url": "https://shop.example/?utm_campaign=spring", "path": "/", "referrer": ""},
                    "campaign": {"name": "spring"}, "userAgent": "Mozilla/5.0", "locale": "fa-IR", "timezone": "Asia/Tehran"}});
    let resp = post("/v1/p", "https://shop.example", page.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://shop.example");
    let resp = post("/v1/p", "https://evil.example", page).await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    let batch = json!({"writeKey": WRITE, "batch": [
        {"type": "track", "anonymousId": "anon-b1", "event": "Viewed Product", "properties": {"product_id": "p1"}},
        {"type": "identify", "anonymousId": "anon-b1", "userId": "browser-user", "traits": {"email": "b@example.com"}},
    ]});
    assert_eq!(
        post("/v1/b", "https://shop.example", batch).await.unwrap().status(),
        200
    );
    let contact = loop {
        let (status, c) = app.get("/api/v1/contacts/lookup?user_id=browser-user").await;
        if status == 200 {
            break c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let (_, events) = app.get(&format!("/api/v1/contacts/{}/events", contact["id"])).await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(
        events.len(),
        3,
        "the anonymous page view and track joined the contact: {events:?}"
    );
    let page = events.iter().find(|e| e["type"] == "page").unwrap();
    assert_eq!(page["context"]["campaign"]["name"], "spring");
    assert_eq!(page["context"]["timezone"], "Asia/Tehran");

    // The settings document: Nudge as the destination, nothing sent to Segment.
    let settings = app
        .http
        .get(format!("{}/v1/projects/{WRITE}/settings", app.url))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status(), 200);
    assert_eq!(
        settings.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let etag = settings.headers()["etag"].to_str().unwrap().to_string();
    let doc: Value = settings.json().await.unwrap();
    let host = app.url.trim_start_matches("http://");
    assert_eq!(doc["integrations"]["Segment.io"]["apiHost"], format!("{host}/v1"));
    assert_eq!(doc["integrations"]["Segment.io"]["apiKey"], WRITE);
    assert_eq!(doc["metrics"]["sampleRate"], 0);
    assert_eq!(doc["remotePlugins"], json!([]));
    let again = app
        .http
        .get(format!("{}/v1/projects/{WRITE}/settings", app.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let unknown = app
        .http
        .get(format!("{}/v1/projects/nw_nope/settings", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);

    // The library, with the key in place of its placeholder, and its chunks.
    let lib = app
        .http
        .get(format!("{}/analytics.js/v1/{WRITE}/analytics.min.js", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(lib.status(), 200);
    assert!(
        lib.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let text = lib.text().await.unwrap();
    assert!(text.contains(&format!("analyticsWriteKey=\"{WRITE}\"")) && !text.contains("__WRITE_KEY__"));
    for (path, status) in [
        ("/analytics.js/v1/nw_nope/analytics.min.js".to_string(), 401),
        (format!("/analytics.js/v1/{WRITE}/other.js"), 404),
        ("/analytics-next/bundles/nope.js".to_string(), 404),
    ] {
        let r = app.http.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
    }
    let chunk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/vendor/analytics-next/bundles"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let r = app
        .http
        .get(format!(
            "{}/analytics-next/bundles/{}",
            app.url,
            chunk.to_string_lossy()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A browser-only key keeps off the server endpoints.
    app.admin(
        reqwest::Method::PUT,
        &format!("/api/v1/keys/{}/browser", key.id),
        Some(json!({"allowed_origins": ["*"], "browser_only": true})),
    )
    .await;
    let (status, body) = app.track("/v1/track", json!({"userId": "u", "event": "E"})).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (403, Some("browser_key"))
    );
    assert_eq!(
        post("/v1/t", "https://any.example", json!({"userId": "u", "event": "E"}))
            .await
            .unwrap()
            .status(),
        200
    );
}
