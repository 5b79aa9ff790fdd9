//! The Journeys pages over HTTP, on a fresh SQLite database: an owner and an analyst
//! sign in; the journey page draws the diagram with every step and its numbers; roles,
//! the CSRF guard and HTML escaping hold; a new version is published with its runs
//! moved.

use nudge_api::{AppState, router_with_ui};
use nudge_app::{accounts, keys};
use nudge_core::access::Role;
use nudge_core::{Clock, ManualClock, Millis};
use nudge_engine::{JourneyEngine, SegmentEngine};
use nudge_store::{Ingestor, IngestorConfig, NewJourney, Store};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

const WRITE: &str = "nw_web_test_write";
const ADMIN: &str = "na_web_test_admin";
/// 2027-03-15T12:00:00Z.
const T0: Millis = 1_805_112_000_000;
const PASSWORD: &str = "a long enough password";
const SCRIPT: &str = "<script>alert(1)</script>";

struct Ui {
    url: String,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    state: AppState,
    segments: Arc<SegmentEngine>,
    journeys: Arc<JourneyEngine>,
    _dir: tempfile::TempDir,
}

async fn spawn() -> Ui {
    let dir = tempfile::tempdir().unwrap();
    // A workspace of its own: a key of its own.
    let ring = nudge_store::secrets::Keyring::new(nudge_store::secrets::MasterKey::generate());
    let store = nudge_store::open(None, dir.path(), ring).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(T0));
    keys::ensure_bootstrap_keys(&*store, Some(ADMIN), Some(WRITE), T0)
        .await
        .unwrap();
    let ingestor = Arc::new(Ingestor::start(store.clone(), clock.clone(), IngestorConfig::default()));
    let segments = SegmentEngine::new(store.clone(), clock.clone(), Default::default());
    let journeys = JourneyEngine::new(store.clone(), clock.clone(), Default::default());
    let state = AppState::new(store.clone(), ingestor, clock, segments.clone()).with_journeys(journeys.clone());
    let web = nudge_web::WebState::new(state.clone(), false);
    let app = router_with_ui(state.clone(), nudge_web::router(web));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    Ui {
        url: format!("http://{addr}"),
        http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(),
        store,
        state,
        segments,
        journeys,
        _dir: dir,
    }
}

/// A signed-in browser: its session cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Ui {
    async fn sign_in(&self, email: &str, role: Role) -> Session {
        accounts::create_user(&*self.store, email, role, PASSWORD, T0)
            .await
            .unwrap();
        let r = self
            .http
            .post(format!("{}/sign-in", self.url))
            .form(&[("email", email), ("password", PASSWORD), ("next", "/journeys")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("nudge_session="))
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_owned();
        let mut s = Session {
            cookie,
            csrf: String::new(),
        };
        let (_, page) = self.get(&s, "/journeys").await;
        let at = page.find("data-csrf=\"").unwrap() + "data-csrf=\"".len();
        s.csrf = page[at..at + page[at..].find('"').unwrap()].to_owned();
        s
    }

    async fn get(&self, s: &Session, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("cookie", &s.cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// A form post; `csrf: false` leaves the token out.
    async fn post(&self, s: &Session, path: &str, fields: &[(&str, &str)], csrf: bool) -> (StatusCode, String) {
        let mut fields: Vec<(&str, &str)> = fields.to_vec();
        if csrf {
            fields.push(("_csrf", &s.csrf));
        }
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("cookie", &s.cookie)
            .form(&fields)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn track(&self, user: &str, event: &str) {
        let r = self
            .http
            .post(format!("{}/v1/track", self.url))
            .basic_auth(WRITE, Some(""))
            .json(&json!({"userId": user, "event": event}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    async fn settle(&self) {
        loop {
            let s = self.segments.run_once().await.unwrap().0;
            let j = self.journeys.run_once().await.unwrap();
            if s == 0 && !j.busy() {
                break;
            }
        }
    }
}

fn definition() -> Value {
    json!({
        "trigger": {"type": "event", "event": "Signed Up"},
        "start": "wait",
        "steps": [
            {"id": "wait", "type": "wait_for_event", "event": SCRIPT, "timeout": {"days": 1},
             "on_event": "won", "on_timeout": "hello"},
            {"id": "hello", "type": "send", "template": "welcome"},
            {"id": "won", "type": "goal"}
        ]
    })
}

/// Text without Fluent's isolation marks.
fn plain(s: &str) -> String {
    s.replace(['\u{2068}', '\u{2069}'], "")
}

#[tokio::test]
async fn journey_pages() {
    let ui = spawn().await;
    let owner = ui.sign_in("owner@example.test", Role::Owner).await;
    let analyst = ui.sign_in("analyst@example.test", Role::Analyst).await;
    let name = format!("Welcome {SCRIPT}");
    let j = ui
        .state
        .app()
        .create_journey(NewJourney {
            name: name.clone(),
            description: String::new(),
            priority: 0,
            definition: definition(),
        })
        .await
        .unwrap();
    let id = j.id;

    // The owner publishes through the UI; contacts enter.
    let (s, _) = ui.post(&owner, &format!("/journeys/{id}/publish"), &[], true).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    for user in ["u1", "u2", "u3"] {
        ui.track(user, "Signed Up").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    ui.settle().await;

    // The list: status, numbers, the name escaped.
    let (s, list) = ui.get(&analyst, "/journeys").await;
    assert_eq!(s, StatusCode::OK);
    assert!(!list.contains(SCRIPT), "{list}");
    assert!(
        list.contains("Welcome &#60;script&#62;") || list.contains("Welcome &lt;script&gt;"),
        "{list}"
    );
    assert!(list.contains("status-live"), "{list}");
    assert!(!list.contains("/journeys/ready-made/"), "an analyst installs nothing");

    // The journey page: the diagram with every step and its numbers, escaped.
    let (s, page) = ui.get(&owner, &format!("/journeys/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<svg"), "{page}");
    for step in ["wait", "hello", "won"] {
        assert!(page.contains(&format!("data-step=\"{step}\"")), "{step}: {page}");
    }
    let text = plain(&page);
    assert!(text.contains("reached 3 · waiting 3"), "{text}");
    assert!(text.contains("sent 0 · opened 0"), "{text}");
    assert!(
        !page.contains(SCRIPT),
        "the event name and the journey name are escaped: {page}"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
    assert!(
        page.contains("hx-trigger=\"every 5s\""),
        "a live journey's numbers refresh"
    );

    // The polled fragment and the inspector.
    let (s, live) = ui.get(&owner, &format!("/journeys/{id}/live")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        plain(&live).contains("reached 3 · waiting 3") && !live.contains("<html"),
        "{live}"
    );
    let (_, inspector) = ui.get(&owner, &format!("/journeys/{id}/inspect?step=wait")).await;
    assert!(
        inspector.contains("Wait for an event") && !inspector.contains(SCRIPT),
        "{inspector}"
    );
    let (_, with_step) = ui.get(&owner, &format!("/journeys/{id}?step=hello")).await;
    assert!(
        with_step.contains("Send a message"),
        "?step= opens the inspector without JavaScript"
    );

    // An analyst reads but cannot publish; nobody posts without the CSRF token.
    let (s, _) = ui.post(&analyst, &format!("/journeys/{id}/pause"), &[], true).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = ui.post(&owner, &format!("/journeys/{id}/pause"), &[], false).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = ui
        .post(&analyst, &format!("/journeys/{id}"), &[("intent", "save")], true)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        ui.store.journey(id).await.unwrap().unwrap().status,
        nudge_store::JourneyStatus::Live
    );

    // Validate draws the problems on the draft, at the step they name, escaped.
    let mut draft = definition();
    draft["steps"][1]["id"] = json!(SCRIPT);
    let draft = serde_json::to_string(&draft).unwrap();
    let (s, check) = ui
        .post(&owner, "/journeys/validate", &[("definition", &draft)], true)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!check.contains(SCRIPT), "{check}");
    assert!(
        check.contains(r#"class="step send problem" data-step="&lt;script&gt;alert(1)&lt;/script&gt;""#),
        "{check}"
    );
    // Saving it is refused, with the error next to the definition.
    let (s, page) = ui
        .post(
            &owner,
            &format!("/journeys/{id}"),
            &[("intent", "save"), ("name", "Welcome"), ("definition", &draft)],
            true,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("field-error") && !page.contains(SCRIPT), "{page}");

    // Version 2 drops `wait`: publishing offers to move its runs, and moves them.
    let mut v2 = definition();
    v2["start"] = json!("pause");
    v2["steps"][0]["id"] = json!("pause");
    let v2 = serde_json::to_string(&v2).unwrap();
    let (s, _) = ui
        .post(
            &owner,
            &format!("/journeys/{id}"),
            &[("intent", "save"), ("name", &name), ("definition", &v2)],
            true,
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, page) = ui.get(&owner, &format!("/journeys/{id}")).await;
    assert!(page.contains(r#"name="move:wait""#), "{page}");
    let (s, _) = ui
        .post(
            &owner,
            &format!("/journeys/{id}/publish"),
            &[("move:wait", "pause")],
            true,
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let j = ui.store.journey(id).await.unwrap().unwrap();
    assert_eq!(j.published_version, Some(2));
    let steps = ui.store.runs_per_step(id).await.unwrap();
    assert_eq!(steps, vec![("pause".to_owned(), 3)]);
}

#[tokio::test]
async fn new_journeys_and_ready_made_ones() {
    let ui = spawn().await;
    let owner = ui.sign_in("owner@example.test", Role::Owner).await;
    let (s, page) = ui.get(&owner, "/journeys/new?from=welcome").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Subscription Confirmed"),
        "starts from the ready-made definition"
    );

    // A definition that is not JSON is refused next to its field.
    let (s, page) = ui
        .post(
            &owner,
            "/journeys",
            &[("intent", "save"), ("name", "X"), ("definition", "{")],
            true,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("field-error"), "{page}");

    let def = serde_json::to_string(&definition()).unwrap();
    let (s, _) = ui
        .post(
            &owner,
            "/journeys",
            &[("intent", "save"), ("name", "Fresh"), ("definition", &def)],
            true,
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _) = ui.post(&owner, "/journeys/ready-made/welcome", &[], true).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, list) = ui.get(&owner, "/journeys").await;
    assert!(list.contains("Fresh") && list.contains("Welcome series"), "{list}");

    // The dry run draws its counts on the diagram.
    let (s, page) = ui.post(&owner, "/journeys/1/dry-run", &[("days", "30")], true).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        plain(&page).contains("would reach 0") && page.contains("<svg"),
        "{page}"
    );
    let (s, _) = ui.post(&owner, "/journeys/1/dry-run", &[("days", "0")], true).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
