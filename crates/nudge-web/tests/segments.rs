//! The Segments area of the UI end to end, in process: a real server on a loopback
//! port with the API and the UI, a temporary SQLite store, an owner and an analyst
//! signed in with their cookies, contacts sent through the tracking API.

use nudge_api::AppState;
use nudge_app::{accounts, keys};
use nudge_core::access::Role;
use nudge_core::{Clock, SystemClock};
use nudge_store::{Ingestor, IngestorConfig, SqliteStore, Store};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

const WRITE: &str = "nw_test_write";
const PASSWORD: &str = "correct horse battery";

struct Ui {
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A signed-in person: the session cookie and the CSRF token of their pages.
struct Session {
    cookie: String,
    csrf: String,
}

async fn spawn() -> Ui {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("nudge.db")).await.unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    keys::ensure_bootstrap_keys(&*store, None, Some(WRITE), clock.now())
        .await
        .unwrap();
    for (email, role) in [
        ("owner@example.com", Role::Owner),
        ("analyst@example.com", Role::Analyst),
    ] {
        accounts::create_user(&*store, email, role, PASSWORD, clock.now())
            .await
            .unwrap();
    }
    let ingestor = Arc::new(Ingestor::start(store.clone(), clock.clone(), IngestorConfig::default()));
    let segments = nudge_engine::SegmentEngine::new(store.clone(), clock.clone(), Default::default());
    tokio::spawn(segments.clone().run(std::future::pending()));
    let state = AppState::new(store, ingestor, clock, segments);
    let web = nudge_web::WebState::new(state.clone(), false);
    let app = nudge_api::router_with_ui(state, nudge_web::router(web));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    Ui {
        url: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _dir: dir,
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

impl Ui {
    async fn sign_in(&self, email: &str) -> Session {
        let resp = self
            .http
            .post(format!("{}/sign-in", self.url))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[("email", email), ("password", PASSWORD), ("next", "/segments")]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let cookie = resp.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut session = Session {
            cookie,
            csrf: String::new(),
        };
        let (status, page) = self.get(&session, "/segments").await;
        assert_eq!(status, StatusCode::OK);
        let start = page.find("data-csrf=\"").unwrap() + "data-csrf=\"".len();
        session.csrf = page[start..start + page[start..].find('"').unwrap()].to_owned();
        session
    }

    async fn get(&self, s: &Session, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .header(COOKIE, &s.cookie)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    /// Posts a form with the session's CSRF token (unless `csrf` is false).
    async fn post(&self, s: &Session, path: &str, fields: &[(&str, &str)], csrf: bool) -> reqwest::Response {
        let mut fields = fields.to_vec();
        if csrf {
            fields.push(("_csrf", &s.csrf));
        }
        self.http
            .post(format!("{}{path}", self.url))
            .header(COOKIE, &s.cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&fields))
            .send()
            .await
            .unwrap()
    }

    async fn track(&self, batch: serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}/v1/batch", self.url))
            .basic_auth(WRITE, Some(""))
            .json(&json!({ "batch": batch }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

/// The count a preview shows (`data-count`).
fn count(html: &str) -> Option<u64> {
    let start = html.find("data-count=\"")? + "data-count=\"".len();
    html[start..start + html[start..].find('"')?].parse().ok()
}

const IRANIANS: [(&str, &str); 5] = [
    ("root.type", "and"),
    ("root.children.0.type", "trait"),
    ("root.children.0.trait", "country"),
    ("root.children.0.op", "equals"),
    ("root.children.0.value", "IR"),
];

const BUYERS: [(&str, &str); 6] = [
    ("root.children.1.type", "event"),
    ("root.children.1.event", "Order Completed"),
    ("root.children.1.count_op", "at_least"),
    ("root.children.1.count", "1"),
    ("root.children.1.window", "ever"),
    ("root.children.1.where.0.op", "greater_than"),
];

#[tokio::test]
async fn build_preview_save_and_guard_segments() {
    let ui = spawn().await;
    ui.track(json!([
        {"type": "identify", "userId": "u1", "traits": {"country": "IR", "name": "<script>alert(1)</script>"}},
        {"type": "identify", "userId": "u2", "traits": {"country": "IR", "name": "Dariush"}},
        {"type": "identify", "userId": "u3", "traits": {"country": "IL", "name": "Noa"}},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"total": 80}},
        {"type": "track", "userId": "u2", "event": "Order Completed", "properties": {"total": 20}},
        {"type": "track", "userId": "u3", "event": "Order Completed", "properties": {"total": 90}},
    ]))
    .await;
    let owner = ui.sign_in("owner@example.com").await;

    // The live preview: one condition, then two.
    let resp = ui.post(&owner, "/segments/preview", &IRANIANS, true).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let one = resp.text().await.unwrap();
    assert_eq!(count(&one), Some(2), "{one}");
    let mut two: Vec<(&str, &str)> = IRANIANS.to_vec();
    two.extend(BUYERS);
    two.extend([
        ("root.children.1.where.0.property", "total"),
        ("root.children.1.where.0.value", "50"),
    ]);
    let resp = ui.post(&owner, "/segments/preview", &two, true).await;
    let html = resp.text().await.unwrap();
    assert_eq!(count(&html), Some(1), "{html}");
    // A contact's trait is escaped in the sample.
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
    assert!(!html.contains("<script>alert(1)"), "{html}");

    // An unfinished condition: no count, and the builder marks the node.
    let mut unfinished = two.clone();
    unfinished.retain(|(k, _)| *k != "root.children.1.where.0.value");
    unfinished.push(("root.children.1.where.0.value", "lots"));
    let html = ui
        .post(&owner, "/segments/preview", &unfinished, true)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(count(&html), None);
    let mut update = unfinished.clone();
    update.push(("action", "refresh"));
    let resp = ui.post(&owner, "/segments/new", &update, true).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"builder-problems\""), "{html}");
    assert!(
        html.contains("data-path=\"root.children.1\"") && html.contains("Write a number"),
        "the problem is shown at its node"
    );

    // Saving creates the segment and goes to its page.
    let mut save = two.clone();
    save.extend([("name", "Iranian buyers"), ("action", "save")]);
    let resp = ui.post(&owner, "/segments/new", &save, true).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("/segments/"), "{location}");
    let (status, page) = ui.get(&owner, &location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Iranian buyers"));
    // Its members, escaped.
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{page}");
    assert!(!page.contains("<script>alert(1)"));
    let (_, list) = ui.get(&owner, "/segments").await;
    assert!(list.contains("Iranian buyers") && list.contains("<polyline"), "{list}");

    // With htmx, saving answers with HX-Redirect.
    let mut again = two.clone();
    again.extend([("name", "Iranian buyers 2"), ("action", "save"), ("_csrf", &owner.csrf)]);
    let resp = ui
        .http
        .post(format!("{}/segments/new", ui.url))
        .header(COOKIE, &owner.cookie)
        .header("hx-request", "true")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&again))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["hx-redirect"]
            .to_str()
            .unwrap()
            .starts_with("/segments/")
    );

    // An analyst may look and preview, but not save or delete.
    let analyst = ui.sign_in("analyst@example.com").await;
    let (status, _) = ui.get(&analyst, &location).await;
    assert_eq!(status, StatusCode::OK);
    let resp = ui.post(&analyst, "/segments/preview", &two, true).await;
    assert_eq!(count(&resp.text().await.unwrap()), Some(1));
    let resp = ui.post(&analyst, "/segments/new", &save, true).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = ui.post(&analyst, &format!("{location}/delete"), &[], true).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = ui.post(&analyst, "/segments/ready-made/new_customers", &[], true).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Without the CSRF token, nothing is saved or deleted.
    let resp = ui.post(&owner, "/segments/new", &save, false).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = ui.post(&owner, &format!("{location}/delete"), &[], false).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // The owner deletes it.
    let resp = ui.post(&owner, &format!("{location}/delete"), &[], true).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (status, _) = ui.get(&owner, &location).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn builder_actions_and_views_work_without_javascript() {
    let ui = spawn().await;
    let owner = ui.sign_in("owner@example.com").await;
    let (status, page) = ui.get(&owner, "/segments/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("name=\"root.children.0.type\""));

    // Add an event condition to the root group.
    let mut fields: Vec<(&str, &str)> = IRANIANS.to_vec();
    fields.extend([("root.add", "event"), ("action", "add:root")]);
    let html = ui
        .post(&owner, "/segments/new", &fields, true)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"root.children.1.event\""), "{html}");

    // Switch to JSON and back.
    let mut fields: Vec<(&str, &str)> = IRANIANS.to_vec();
    fields.push(("action", "view:json"));
    let html = ui
        .post(&owner, "/segments/new", &fields, true)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<textarea id=\"json\""), "{html}");
    assert!(html.contains("&#34;country&#34;"), "{html}");
    let json = r#"{"type": "or", "conditions": [{"type": "subscription", "channel": "email", "state": "subscribed"}]}"#;
    let html = ui
        .post(
            &owner,
            "/segments/new",
            &[("view", "json"), ("json", json), ("action", "view:form")],
            true,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"root.children.0.channel\""), "{html}");
    // Invalid JSON stays in the JSON view with the error.
    let resp = ui
        .post(
            &owner,
            "/segments/new",
            &[
                ("view", "json"),
                ("json", "{\"type\": \"and\""),
                ("action", "view:form"),
            ],
            true,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("<textarea id=\"json\"") && html.contains("The JSON is not valid"),
        "{html}"
    );

    // The ready-made catalogue installs in one click.
    let resp = ui
        .post(&owner, "/segments/ready-made/repeat_customers", &[], true)
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    let (_, page) = ui.get(&owner, &location).await;
    assert!(page.contains("Repeat customers") && page.contains("Order Completed"));
    let (status, edit) = ui.get(&owner, &format!("{location}/edit")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(edit.contains("value=\"Order Completed\""));
}
