//! The HTTP surface of Nudge: the Segment-compatible tracking API (`/v1`), browser
//! push subscriptions (`/v1/push`), the admin REST API (`/api/v1`), health,
//! readiness and Prometheus metrics.
//!
//! Architecture invariant: handlers parse the request, call `nudge_app` (the use
//! cases) or, for plain reads and writes, the store or the ingestor, and render the
//! answer; no SQL and no domain rules live here.

pub mod admin;
pub mod browser;
pub mod campaigns;
pub mod error;
pub mod forms;
pub mod journeys;
pub mod keys;
pub mod messages;
pub mod metrics;
pub mod ops;
pub mod predictions;
pub mod public;
pub mod push;
pub mod recommendations;
pub mod retention;
pub mod scoring;
pub mod segments;
pub mod send_time;
pub mod subscriptions;
pub mod tracking;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use error::ApiError;
use nudge_app::campaigns::CampaignAction;
use nudge_app::nodes::Role;
use nudge_core::{CallKind, Clock};
use nudge_engine::SegmentEngine;
use nudge_messages::delivery::Deliverer;
use nudge_store::{Ingestor, KeyKind, Store};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tracking::Surface::{Browser, Server};

pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub ingestor: Arc<Ingestor>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<metrics::Metrics>,
    /// Live segment membership; woken after every change to contacts.
    pub segments: Arc<SegmentEngine>,
    /// False once shutdown has begun, so load balancers stop sending traffic.
    pub ready: Arc<AtomicBool>,
    /// The delivery worker (channels, link signing); `None` where messaging is off.
    pub messaging: Option<Arc<Deliverer>>,
    /// The journey engine, woken when journeys change or events arrive.
    pub journeys: Option<Arc<nudge_engine::JourneyEngine>>,
    /// The campaign engine, woken when a campaign is sent, paused, resumed,
    /// cancelled or given its winner.
    pub campaigns: Option<Arc<nudge_engine::CampaignEngine>>,
    /// The workspace's VAPID public key (base64url) for browsers subscribing to
    /// push; `None` where push is off.
    pub push_public_key: Option<String>,
    /// Accept push endpoints on this machine or a private network (development).
    pub push_allow_local: bool,
    /// Forms' rate limits and render-stamp key (kept by the process).
    pub forms: Arc<nudge_app::forms::FormGuard>,
    /// Take the client's address from `X-Forwarded-For` (behind a proxy that sets
    /// it); otherwise the peer's address counts, for forms' per-address limits.
    pub trust_forwarded_for: bool,
    /// This node: its id, its roles (which routes it serves) and the singleton
    /// leases it keeps (`/metrics`, `/api/v1/ops/leases`).
    pub node: ops::Node,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        ingestor: Arc<Ingestor>,
        clock: Arc<dyn Clock>,
        segments: Arc<SegmentEngine>,
    ) -> Self {
        Self {
            store,
            ingestor,
            clock,
            segments,
            metrics: Arc::new(metrics::Metrics::new()),
            ready: Arc::new(AtomicBool::new(true)),
            messaging: None,
            journeys: None,
            campaigns: None,
            push_public_key: None,
            push_allow_local: false,
            forms: Arc::new(nudge_app::forms::FormGuard::default()),
            trust_forwarded_for: false,
            node: ops::Node::default(),
        }
    }

    /// Sets what this node is (its id, roles and singletons).
    pub fn with_node(mut self, node: ops::Node) -> Self {
        self.node = node;
        self
    }

    /// Sets the forms' rate limits and whether `X-Forwarded-For` names the client.
    pub fn with_forms(mut self, limits: nudge_app::forms::FormLimits, trust_forwarded_for: bool) -> Self {
        self.forms = Arc::new(nudge_app::forms::FormGuard::new(limits));
        self.trust_forwarded_for = trust_forwarded_for;
        self
    }

    /// The client's address: the first `X-Forwarded-For` entry when the server trusts
    /// its proxy, else the peer.
    pub fn client_ip(
        &self,
        headers: &axum::http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
    ) -> Option<std::net::IpAddr> {
        if self.trust_forwarded_for
            && let Some(ip) = headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|s| s.trim().parse().ok())
        {
            return Some(ip);
        }
        peer.map(|p| p.ip())
    }

    pub fn with_messaging(mut self, deliverer: Arc<Deliverer>) -> Self {
        self.messaging = Some(deliverer);
        self
    }

    pub fn with_journeys(mut self, engine: Arc<nudge_engine::JourneyEngine>) -> Self {
        self.journeys = Some(engine);
        self
    }

    pub fn with_campaigns(mut self, engine: Arc<nudge_engine::CampaignEngine>) -> Self {
        self.campaigns = Some(engine);
        self
    }

    /// The use cases over this state's store, clock and workers.
    pub fn app(&self) -> nudge_app::App {
        nudge_app::App {
            store: self.store.clone(),
            clock: self.clock.clone(),
            segments: Some(self.segments.clone()),
            journeys: self.journeys.clone(),
            campaigns: self.campaigns.clone(),
            messaging: self.messaging.clone(),
        }
    }

    /// Turns on push subscriptions: `public_key` is the VAPID public key of the
    /// push channel.
    pub fn with_push_key(mut self, public_key: String, allow_local: bool) -> Self {
        self.push_public_key = Some(public_key);
        self.push_allow_local = allow_local;
        self
    }
}

/// The HTTP API alone: unknown paths answer with the JSON `not_found` error.
pub fn router(state: AppState) -> Router {
    assemble(state, None)
}

/// The HTTP API with the web UI (`nudge_web::router`) behind it: a path the API does
/// not route goes to the UI, whose own fallback answers unknown paths.
pub fn router_with_ui(state: AppState, ui: Router) -> Router {
    assemble(state, Some(ui))
}

/// The JSON answer to a path nothing routes (the UI's fallback uses it for API paths).
pub fn no_such_route() -> Response {
    ApiError::not_found("no such route").into_response()
}

fn assemble(state: AppState, ui: Option<Router>) -> Router {
    let tracking = Router::new()
        .route(
            "/v1/identify",
            post(|s, r| tracking::single(s, CallKind::Identify, Server, r)),
        )
        .route(
            "/v1/track",
            post(|s, r| tracking::single(s, CallKind::Track, Server, r)),
        )
        .route("/v1/page", post(|s, r| tracking::single(s, CallKind::Page, Server, r)))
        .route(
            "/v1/screen",
            post(|s, r| tracking::single(s, CallKind::Screen, Server, r)),
        )
        .route(
            "/v1/group",
            post(|s, r| tracking::single(s, CallKind::Group, Server, r)),
        )
        .route(
            "/v1/alias",
            post(|s, r| tracking::single(s, CallKind::Alias, Server, r)),
        )
        .route("/v1/batch", post(|s, r| tracking::batch(s, Server, r)))
        .route("/v1/import", post(|s, r| tracking::batch(s, Server, r)))
        // Segment's browser library: the short forms, with CORS (see `browser`).
        .route(
            "/v1/i",
            post(|s, r| tracking::single(s, CallKind::Identify, Browser, r)).options(browser::preflight),
        )
        .route(
            "/v1/t",
            post(|s, r| tracking::single(s, CallKind::Track, Browser, r)).options(browser::preflight),
        )
        .route(
            "/v1/p",
            post(|s, r| tracking::single(s, CallKind::Page, Browser, r)).options(browser::preflight),
        )
        .route(
            "/v1/s",
            post(|s, r| tracking::single(s, CallKind::Screen, Browser, r)).options(browser::preflight),
        )
        .route(
            "/v1/g",
            post(|s, r| tracking::single(s, CallKind::Group, Browser, r)).options(browser::preflight),
        )
        .route(
            "/v1/a",
            post(|s, r| tracking::single(s, CallKind::Alias, Browser, r)).options(browser::preflight),
        )
        .route(
            "/v1/b",
            post(|s, r| tracking::batch(s, Browser, r)).options(browser::preflight),
        )
        .route(
            "/v1/projects/{key}/settings",
            get(browser::settings).options(browser::preflight),
        )
        .route("/analytics.js/v1/{key}/{file}", get(browser::library))
        .route("/analytics-next/bundles/{file}", get(browser::bundle))
        .route(
            "/v1/push/subscriptions",
            post(push::subscribe)
                .delete(push::unsubscribe)
                .layer(axum::extract::DefaultBodyLimit::max(64 * 1024)),
        )
        .route("/v1/push/vapid-public-key", get(push::vapid_public_key));

    let admin = Router::new()
        .route("/api/v1/contacts", get(admin::list_contacts))
        .route("/api/v1/contacts/lookup", get(admin::lookup_contact))
        .route("/api/v1/contacts/import", post(admin::import_contacts))
        .route("/api/v1/contacts/export", get(admin::export_contacts))
        .route(
            "/api/v1/contacts/{id}",
            get(admin::get_contact)
                .patch(admin::update_contact)
                .delete(admin::delete_contact),
        )
        .route("/api/v1/contacts/{id}/events", get(admin::contact_events))
        .route("/api/v1/contacts/{id}/export", get(admin::export_contact))
        .route("/api/v1/contacts/{id}/segments", get(segments::of_contact))
        .route("/api/v1/contacts/{id}/scores", get(scoring::of_contact))
        .route("/api/v1/contacts/{id}/send-time", get(send_time::of_contact))
        .route(
            "/api/v1/scoring-rules",
            get(scoring::list_rules).post(scoring::create_rule),
        )
        .route(
            "/api/v1/scoring-rules/{id}",
            get(scoring::get_rule)
                .put(scoring::update_rule)
                .delete(scoring::delete_rule),
        )
        .route("/api/v1/predictions/fit", post(predictions::fit))
        .route("/api/v1/predictions/model", get(predictions::model))
        .route("/api/v1/products", get(recommendations::list))
        .route("/api/v1/products/import", post(recommendations::import))
        .route(
            "/api/v1/products/{id}",
            get(recommendations::get_one)
                .put(recommendations::put)
                .delete(recommendations::delete),
        )
        .route("/api/v1/products/{id}/similar", get(recommendations::similar))
        .route(
            "/api/v1/contacts/{id}/recommendations",
            get(recommendations::of_contact),
        )
        .route("/api/v1/recommendations/refresh", post(recommendations::refresh))
        .route("/api/v1/recommendations/model", get(recommendations::model))
        .route("/api/v1/scores", get(scoring::list_scores))
        .route(
            "/api/v1/scores/{name}",
            axum::routing::put(scoring::put_score).delete(scoring::delete_score),
        )
        .route("/api/v1/contacts/{id}/push-subscriptions", get(push::of_contact))
        .route("/api/v1/segments", get(segments::list).post(segments::create))
        .route("/api/v1/segments/preview", post(segments::preview))
        .route("/api/v1/segments/ready-made", get(segments::catalogue))
        .route("/api/v1/segments/ready-made/{key}", post(segments::install))
        .route(
            "/api/v1/segments/{id}",
            get(segments::get).put(segments::update).delete(segments::delete),
        )
        .route("/api/v1/segments/{id}/members", get(segments::members))
        .route("/api/v1/segments/{id}/sizes", get(segments::sizes))
        .route(
            "/api/v1/templates",
            get(messages::list_templates).post(messages::create_template),
        )
        .route(
            "/api/v1/templates/preview",
            post(|s, b| messages::preview_template(s, None, b)),
        )
        .route(
            "/api/v1/templates/{id}",
            get(messages::get_template)
                .put(messages::update_template)
                .delete(messages::delete_template),
        )
        .route("/api/v1/templates/{id}/versions", get(messages::template_versions))
        .route(
            "/api/v1/templates/{id}/preview",
            post(|s, p: axum::extract::Path<String>, b| messages::preview_template(s, Some(p), b)),
        )
        .route("/api/v1/messages", get(messages::list_messages).post(messages::send))
        .route("/api/v1/messages/{id}", get(messages::get_message))
        .route("/api/v1/channels", get(messages::channels))
        .route(
            "/api/v1/channels/{kind}",
            axum::routing::put(messages::put_channel).delete(messages::delete_channel),
        )
        .route(
            "/api/v1/suppressions",
            get(messages::list_suppressions).post(messages::add_suppression),
        )
        .route(
            "/api/v1/suppressions/{channel}/{address}",
            axum::routing::delete(messages::remove_suppression),
        )
        .route("/api/v1/bounces", post(messages::bounce))
        .route("/api/v1/journeys", get(journeys::list).post(journeys::create))
        .route("/api/v1/journeys/validate", post(journeys::validate))
        .route("/api/v1/journeys/ready-made", get(journeys::catalogue))
        .route("/api/v1/journeys/ready-made/{key}", post(journeys::install))
        .route("/api/v1/journeys/{id}", get(journeys::get).put(journeys::update))
        .route("/api/v1/journeys/{id}/runs", post(journeys::start_run))
        .route("/api/v1/journeys/{id}/dry-run", post(journeys::dry_run))
        .route(
            "/api/v1/journeys/{id}/publish",
            post(|s, axum::extract::Path(id): axum::extract::Path<String>, b| {
                journeys::action(s, axum::extract::Path((id, "publish".to_string())), b)
            }),
        )
        .route("/api/v1/journeys/{id}/{action}", post(journeys::action))
        .route("/api/v1/contacts/{id}/runs", get(journeys::contact_runs))
        .route(
            "/api/v1/frequency-caps",
            get(journeys::get_caps).put(journeys::put_caps),
        )
        .route("/api/v1/reports", get(campaigns::workspace_report))
        .route("/api/v1/reports/series", get(campaigns::report_series))
        .route(
            "/api/v1/retention-settings",
            get(retention::get_settings).put(retention::put_settings),
        )
        .route(
            "/api/v1/conversion-settings",
            get(campaigns::get_conversion_settings).put(campaigns::put_conversion_settings),
        )
        .route("/api/v1/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/api/v1/campaigns/validate", post(campaigns::validate))
        .route(
            "/api/v1/campaigns/{id}",
            get(campaigns::get).put(campaigns::update).delete(campaigns::delete),
        )
        .route("/api/v1/campaigns/{id}/send", post(campaigns::send))
        .route(
            "/api/v1/campaigns/{id}/pause",
            post(|s, p, b| campaigns::action(s, p, CampaignAction::Pause, b)),
        )
        .route(
            "/api/v1/campaigns/{id}/resume",
            post(|s, p, b| campaigns::action(s, p, CampaignAction::Resume, b)),
        )
        .route(
            "/api/v1/campaigns/{id}/cancel",
            post(|s, p, b| campaigns::action(s, p, CampaignAction::Cancel, b)),
        )
        .route("/api/v1/campaigns/{id}/winner", post(campaigns::winner))
        .route("/api/v1/campaigns/{id}/report", get(campaigns::report))
        .route("/api/v1/campaigns/{id}/test", post(campaigns::test_send))
        .route("/api/v1/forms", get(forms::list).post(forms::create))
        .route(
            "/api/v1/forms/{id}",
            get(forms::get).put(forms::update).delete(forms::delete),
        )
        .route("/api/v1/forms/{id}/report", get(forms::report))
        .route("/api/v1/forms/{id}/submissions", get(forms::submissions))
        .route("/api/v1/forms/{id}/submissions.csv", get(forms::submissions_csv))
        .route("/api/v1/subscriptions", post(subscriptions::subscribe))
        .route("/api/v1/keys", get(admin::list_keys).post(admin::create_key))
        .route("/api/v1/keys/{id}", axum::routing::delete(admin::revoke_key))
        .route("/api/v1/keys/{id}/browser", axum::routing::put(admin::set_key_browser))
        .route("/api/v1/ops/leases", get(ops::leases))
        .layer(middleware::from_fn_with_state(state.clone(), require_admin))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024));

    let public = Router::new()
        .route("/t/o/{token}", get(public::open))
        .route("/t/c/{token}", get(public::click))
        .route("/u/{token}", get(public::unsubscribe_page).post(public::unsubscribe))
        .route("/confirm/{token}", get(public::confirm_page).post(public::confirm))
        .route("/hooks/{channel}/receipts", post(messages::receipt))
        .route(
            "/p/{token}",
            get(public::preferences_page).post(public::save_preferences),
        )
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024));

    // A node serves the routes of its roles (docs/operations.md, "Roles"); health,
    // readiness and metrics on every node. A path of a role it does not have is
    // answered like a path nothing routes (404).
    let roles = state.node.roles;
    let mut api = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text));
    if roles.has(Role::Ingest) {
        api = api.merge(tracking).merge(public);
    }
    if roles.has(Role::Api) {
        api = api.merge(admin).route("/api/v1/openapi.json", get(openapi));
    }
    let api = match ui {
        Some(ui) => api.fallback_service(ui),
        None => api.fallback(|| async { no_such_route() }),
    };
    api.layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(secret) = keys::bearer(req.headers()) else {
        return ApiError::unauthorized("missing admin key: send `Authorization: Bearer <admin key>`").into_response();
    };
    match keys::verify(&*state.store, &secret, KeyKind::Admin).await {
        Ok(_) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    state
        .metrics
        .request(&route, resp.status().as_u16(), elapsed.as_secs_f64());
    tracing::debug!(%method, %route, status = resp.status().as_u16(), ms = elapsed.as_secs_f64() * 1e3, "request");
    resp
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

async fn readyz(State(state): State<AppState>) -> Response {
    if !state.ready.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response();
    }
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ready", "backend": state.store.backend()})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(state.ingestor.stats(), &state.node),
    )
}
