//! Turning templates into responses: the page frame every page shares, security
//! headers, and the error pages.

use crate::i18n::Tr;
use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use nudge_core::access::{Permission, Role};

/// What the frame of every signed-in page shows: the navigation bar (with the
/// current area marked), the user's menu and the CSRF token forms carry.
pub struct Chrome {
    pub t: Tr,
    pub email: String,
    pub role: Role,
    pub csrf: String,
    /// The navigation entry of this page (`dashboard`, `contacts`, ...).
    pub active: &'static str,
    /// Path and query of this page, to come back to after changing language.
    pub here: String,
}

impl Chrome {
    pub fn can_edit(&self) -> bool {
        self.role.allows(Permission::Edit)
    }
    pub fn can_administer(&self) -> bool {
        self.role.allows(Permission::Administer)
    }
    /// The role's name in the UI's language.
    pub fn role_name(&self) -> String {
        self.t.get(&format!("role-{}", self.role.as_str()))
    }
    pub fn languages(&self) -> [crate::i18n::Lang; 4] {
        crate::i18n::Lang::ALL
    }
    pub fn asset(&self, name: &str) -> String {
        crate::assets::url(name)
    }
}

/// A stored value as a page shows it: a string as it is, anything else as JSON
/// (indented when `pretty`, for content and properties shown in full).
pub fn show_value(v: &serde_json::Value, pretty: bool) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        v if pretty => serde_json::to_string_pretty(v).unwrap_or_default(),
        v => v.to_string(),
    }
}

/// Renders a template as an HTML page (500 with a plain message if it cannot render,
/// which a template test catches first).
pub fn page(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered; see the server log",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    t: &'a Tr,
    title: String,
    message: String,
}

/// An error page with `status`, in the viewer's language.
pub fn error(t: &Tr, status: StatusCode, message: impl Into<String>) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => t.get("error-not-found"),
        StatusCode::FORBIDDEN => t.get("error-forbidden"),
        StatusCode::BAD_REQUEST => t.get("error-bad-request"),
        _ => t.get("error-internal"),
    };
    let mut resp = page(&ErrorPage {
        t,
        title,
        message: message.into(),
    });
    *resp.status_mut() = status;
    resp
}

/// An application-layer failure as a page: not found, forbidden, or (logged) internal.
pub fn app_error(t: &Tr, e: nudge_app::AppError) -> Response {
    use nudge_app::AppError as E;
    match e {
        E::NotFound { message, .. } => error(t, StatusCode::NOT_FOUND, message),
        E::Forbidden(m) => error(t, StatusCode::FORBIDDEN, m),
        E::MissingField { message, .. } | E::InvalidField { message, .. } | E::InvalidRequest { message, .. } => {
            error(t, StatusCode::BAD_REQUEST, message)
        }
        E::Conflict(m) => error(t, StatusCode::CONFLICT, m),
        e => {
            tracing::error!(error = %e, "a page failed");
            error(t, StatusCode::INTERNAL_SERVER_ERROR, t.get("error-internal-detail"))
        }
    }
}

/// Headers on every UI response: a Content-Security-Policy that allows only the UI's
/// own scripts and styles (no inline script, no eval), no framing, no MIME sniffing.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    // A response with a policy of its own (a rendered e-mail in its preview frame) keeps it.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; \
             base-uri 'none'; object-src 'none'",
        ));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    resp
}
