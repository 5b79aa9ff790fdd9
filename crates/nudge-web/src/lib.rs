//! Nudge's web UI, served by `nudge serve` at `/`: server-rendered pages (askama
//! templates), made live where it helps by htmx (vendored, served from the binary),
//! in English, Persian, Arabic and Hebrew.
//!
//! - [`auth`]: sign-in, sign-out, the setup link of an empty workspace, the session
//!   extractor ([`auth::Viewer`]) and the CSRF check of every state-changing request;
//! - [`assets`]: CSS, the UI's script and htmx, compressed, with ETags;
//! - [`i18n`]: message catalogues (Fluent), writing direction, ICU4X dates and numbers;
//! - [`pages`]: one module per area of the navigation bar;
//! - [`builder`]: the segment builder's tree of forms (pure); [`chart`]: SVG charts.
//!
//! Architecture invariant: a page handler parses the request, calls the application
//! layer (`nudge_app`) or the store's read methods, and renders a template; it holds
//! no rule of its own. The UI never calls `/api/v1`, and `/api/v1` never accepts a UI
//! session: programs use API keys, people use the UI.
//!
//! Architecture invariant: everything a contact or an event can put on a page goes
//! through askama's HTML escaping; nothing user-supplied is marked safe. The
//! Content-Security-Policy allows only the UI's own scripts and styles.

// Handlers short-circuit with a rendered page (`Result<_, Response>`), as axum's own
// extractors do; boxing every such page would buy nothing.
#![allow(clippy::result_large_err)]

pub mod assets;
pub mod auth;
pub mod builder;
pub mod chart;
pub mod i18n;
pub mod pages;
mod render;
#[cfg(test)]
mod testing;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use nudge_api::AppState;
use nudge_app::accounts::SignInLimiter;
use nudge_app::imports::ImportJobs;
use std::sync::Arc;

/// What the UI's handlers share.
#[derive(Clone)]
pub struct WebState {
    pub api: AppState,
    pub limiter: Arc<SignInLimiter>,
    /// Mark the session cookie `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// Contact imports under way or recently finished (kept in this process).
    pub imports: Arc<ImportJobs>,
}

impl WebState {
    pub fn new(api: AppState, secure_cookies: bool) -> Self {
        Self {
            api,
            limiter: Arc::new(SignInLimiter::default()),
            secure_cookies,
            imports: ImportJobs::new(),
        }
    }

    pub fn app(&self) -> nudge_app::App {
        self.api.app()
    }

    pub fn now(&self) -> nudge_core::Millis {
        self.api.clock.now()
    }
}

/// The UI's routes, mounted behind the API with [`nudge_api::router_with_ui`].
pub fn router(state: WebState) -> Router {
    router_for(state, nudge_app::nodes::Roles::all())
}

/// The routes of a node's roles (docs/operations.md, "Roles"): the UI with `api`,
/// the hosted forms (`/f/*`, what the public posts to) with `ingest`; any other path
/// is the UI's "no such page".
pub fn router_for(state: WebState, roles: nudge_app::nodes::Roles) -> Router {
    use nudge_app::nodes::Role;
    let mut router = Router::new();
    if roles.has(Role::Api) {
        router = router.merge(ui_routes(&state));
    }
    // Public: no session, no CSRF token (other sites post to them); their own
    // headers (`public_forms::page_headers`, CORS by the form's origins).
    if roles.has(Role::Ingest) {
        router = router.merge(pages::public_forms::router());
    }
    router.fallback(not_found).with_state(state)
}

/// The signed-in UI's routes.
fn ui_routes(state: &WebState) -> Router<WebState> {
    Router::new()
        .route("/", get(pages::dashboard::page))
        .route("/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .route("/sign-out", post(auth::sign_out))
        .route("/setup/{token}", get(auth::setup_page).post(auth::setup))
        .route("/me/language", post(auth::set_language))
        .route("/contacts", get(pages::contacts::list))
        .route("/contacts/export.csv", get(pages::contacts::export_csv))
        .route(
            "/contacts/import",
            get(pages::contacts::import_page)
                .post(pages::contacts::import)
                .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .route("/contacts/import/{job}", get(pages::contacts::import_job))
        .route("/contacts/import/{job}/progress", get(pages::contacts::import_progress))
        .route("/contacts/import/{job}/errors.csv", get(pages::contacts::import_errors))
        .route("/contacts/{id}", get(pages::contacts::profile))
        .route("/contacts/{id}/export", get(pages::contacts::export_one))
        .route("/contacts/{id}/timeline", get(pages::contacts::timeline))
        .route(
            "/contacts/{id}/edit",
            get(pages::contacts::edit).post(pages::contacts::save),
        )
        .route("/contacts/{id}/delete", post(pages::contacts::delete))
        .route("/templates", get(pages::templates::list).post(pages::templates::create))
        .route("/templates/new", get(pages::templates::new_page))
        .route("/templates/preview", post(pages::templates::preview))
        .route("/templates/test", post(pages::templates::test_new))
        .route("/templates/rendered/{token}", get(pages::templates::rendered))
        .route(
            "/templates/{id}",
            get(pages::templates::edit_page).post(pages::templates::update),
        )
        .route("/templates/{id}/delete", post(pages::templates::delete))
        .route("/templates/{id}/test", post(pages::templates::test_saved))
        .route("/templates/{id}/versions", get(pages::templates::versions_page))
        .route("/journeys", get(pages::journeys::list).post(pages::journeys::create))
        .route("/journeys/new", get(pages::journeys::new))
        .route("/journeys/validate", post(pages::journeys::validate))
        .route("/journeys/ready-made/{key}", post(pages::journeys::install))
        .route("/journeys/{id}", get(pages::journeys::page).post(pages::journeys::save))
        .route("/journeys/{id}/live", get(pages::journeys::live))
        .route("/journeys/{id}/inspect", get(pages::journeys::inspect))
        .route(
            "/journeys/{id}/dry-run",
            get(pages::journeys::dry_run_form).post(pages::journeys::dry_run),
        )
        .route("/journeys/{id}/{action}", post(pages::journeys::action))
        .route("/campaigns", get(pages::campaigns::list))
        .route(
            "/campaigns/new",
            get(pages::campaigns::new_page).post(pages::campaigns::new_post),
        )
        .route("/campaigns/audience", post(pages::campaigns::audience))
        .route("/campaigns/{id}", get(pages::campaigns::page))
        .route(
            "/campaigns/{id}/edit",
            get(pages::campaigns::edit_page).post(pages::campaigns::edit_post),
        )
        .route("/campaigns/{id}/live", get(pages::campaigns::live))
        .route("/campaigns/{id}/report.csv", get(pages::campaigns::report_csv))
        .route("/campaigns/{id}/send", post(pages::campaigns::send))
        .route("/campaigns/{id}/winner", post(pages::campaigns::winner))
        .route("/campaigns/{id}/delete", post(pages::campaigns::delete))
        .route("/campaigns/{id}/{action}", post(pages::campaigns::action))
        .route("/forms", get(pages::forms::list))
        .route("/forms/new", get(pages::forms::new_page).post(pages::forms::create))
        .route("/forms/{id}", get(pages::forms::report))
        .route(
            "/forms/{id}/edit",
            get(pages::forms::edit_page).post(pages::forms::update),
        )
        .route("/forms/{id}/submissions.csv", get(pages::forms::csv))
        .route("/forms/{id}/delete", post(pages::forms::delete))
        .route("/reports", get(pages::reports::page))
        .route("/reports/report.csv", get(pages::reports::csv))
        .route("/reports/conversions", post(pages::reports::conversions))
        .route("/messages", get(pages::messages::list))
        .route("/messages/{id}", get(pages::messages::detail))
        .route("/segments", get(pages::segments::list))
        .route("/segments/ready-made/{key}", post(pages::segments::install))
        .route(
            "/segments/new",
            get(pages::segment_builder::new_page).post(pages::segment_builder::new_post),
        )
        .route("/segments/preview", post(pages::segment_builder::preview))
        .route("/segments/{id}", get(pages::segments::show))
        .route(
            "/segments/{id}/edit",
            get(pages::segment_builder::edit_page).post(pages::segment_builder::edit_post),
        )
        .route("/segments/{id}/delete", post(pages::segments::delete))
        .route("/scoring", get(pages::scoring::page))
        .route("/scoring/rules", post(pages::scoring::create))
        .route(
            "/scoring/rules/{id}",
            get(pages::scoring::edit).post(pages::scoring::update),
        )
        .route("/scoring/rules/{id}/delete", post(pages::scoring::delete))
        .route("/scoring/scores", post(pages::scoring::save_score))
        .route("/scoring/scores/{name}/delete", post(pages::scoring::delete_score))
        .route("/settings", get(pages::settings::page))
        .route("/settings/workspace", post(pages::settings::workspace))
        .route("/settings/keys", post(pages::settings::create_key))
        .route("/settings/keys/{id}/revoke", post(pages::settings::revoke_key))
        .route("/settings/keys/{id}/browser", post(pages::settings::key_browser))
        .route("/settings/caps", post(pages::settings::caps))
        .route("/settings/channels", get(pages::channels::page))
        .route("/settings/channels/{kind}", post(pages::channels::configure))
        .route("/settings/channels/{kind}/reset", post(pages::channels::reset))
        .route("/settings/channels/{kind}/test", post(pages::channels::test))
        .route("/settings/users", get(pages::users::page).post(pages::users::create))
        .route("/settings/users/{id}/delete", post(pages::users::delete))
        .route("/settings/users/{id}/role", post(pages::users::set_role))
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::csrf_guard))
        .layer(axum::middleware::from_fn(render::security_headers))
}

/// Paths nothing routes: the API's JSON error under the API's prefixes, a page
/// elsewhere.
async fn not_found(
    State(state): State<WebState>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let path = uri.path();
    let api = ["/api/", "/v1/", "/hooks/", "/t/", "/u/", "/p/", "/confirm/"];
    if api.iter().any(|p| path.starts_with(p)) {
        return nudge_api::no_such_route();
    }
    let t = state.tr(None, &headers).await;
    let message = t.get("error-no-page");
    render::error(&t, axum::http::StatusCode::NOT_FOUND, message)
}
