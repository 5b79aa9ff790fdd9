//! What the API tests share: the app on a fresh SQLite database behind a real HTTP
//! listener, an injected clock, and both engines driven by the test.
#![allow(dead_code)] // each test file uses its own part

use nudge_api::{AppState, router};
use nudge_app::keys;
use nudge_core::{Clock, ManualClock, Millis};
use nudge_engine::{CampaignEngine, JourneyEngine, SegmentEngine};
use nudge_store::{Ingestor, IngestorConfig, PgStore, SqliteStore, Store};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

pub const ADMIN: &str = "na_api_test_admin";
pub const WRITE: &str = "nw_api_test_write";
/// 2027-03-15T12:00:00Z (a Monday, noon UTC).
pub const T0: Millis = 1_805_112_000_000;

pub struct App {
    pub url: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub segments: Arc<SegmentEngine>,
    pub journeys: Arc<JourneyEngine>,
    pub campaigns: Arc<CampaignEngine>,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    /// The schema of a PostgreSQL app, dropped by [`App::finish`].
    pg_schema: Option<nudge_store::scratch::PgScratchSchema>,
}

/// The app on a fresh SQLite database.
pub async fn spawn_app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("nudge.db")).await.unwrap());
    spawn_on(store, Some(dir), None).await
}

/// The app on every backend: SQLite, and PostgreSQL (a fresh schema) when
/// `NUDGE_TEST_DATABASE_URL` is set.
pub async fn spawn_apps() -> Vec<App> {
    let mut apps = vec![spawn_app().await];
    if let Ok(url) = std::env::var("NUDGE_TEST_DATABASE_URL")
        && !url.is_empty()
    {
        let schema = nudge_store::scratch::PgScratchSchema::create(&url, "nudge_api_test")
            .await
            .unwrap();
        let store = PgStore::connect(&schema.url).await.unwrap();
        apps.push(spawn_on(Arc::new(store), None, Some(schema)).await);
    }
    apps
}

async fn spawn_on(
    store: Arc<dyn Store>,
    dir: Option<tempfile::TempDir>,
    pg_schema: Option<nudge_store::scratch::PgScratchSchema>,
) -> App {
    let clock = Arc::new(ManualClock::new(T0));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    keys::ensure_bootstrap_keys(&*store, Some(ADMIN), Some(WRITE), T0)
        .await
        .unwrap();
    let ingestor = Arc::new(Ingestor::start(
        store.clone(),
        dyn_clock.clone(),
        IngestorConfig::default(),
    ));
    // The engines are driven by the test (run_once), so time is fully under its control.
    let segments = SegmentEngine::new(store.clone(), dyn_clock.clone(), Default::default());
    let journeys = JourneyEngine::new(store.clone(), dyn_clock.clone(), Default::default());
    let campaigns = CampaignEngine::new(store.clone(), dyn_clock.clone(), Default::default());
    let app = router(
        AppState::new(store.clone(), ingestor, dyn_clock, segments.clone())
            .with_journeys(journeys.clone())
            .with_campaigns(campaigns.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    App {
        url: format!("http://{addr}"),
        http: reqwest::Client::new(),
        clock,
        segments,
        journeys,
        campaigns,
        store,
        _dir: dir,
        pg_schema,
    }
}

impl App {
    /// Closes the store; a PostgreSQL app's schema is dropped.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some(schema) = &self.pg_schema {
            schema.drop_schema().await.unwrap();
        }
    }
    /// `/v1/batch` with the write key; must be accepted.
    pub async fn track(&self, body: Value) {
        let r = self
            .http
            .post(format!("{}/v1/batch", self.url))
            .basic_auth(WRITE, Some(""))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(s, 200, "{path}: {v}");
        v
    }
    /// Lets both engines work until nothing is left at the current time.
    pub async fn settle(&self) {
        loop {
            let s = self.segments.run_once().await.unwrap().0;
            let j = self.journeys.run_once().await.unwrap();
            if s == 0 && !j.busy() {
                break;
            }
        }
    }
    /// Sets the clock and settles.
    pub async fn at(&self, t: Millis) {
        self.clock.set(t);
        self.settle().await;
    }
}
