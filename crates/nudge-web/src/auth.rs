//! Signing in and out, the setup link, the session cookie, and the CSRF guard.
//!
//! The session cookie (`nudge_session`) is `HttpOnly`, `SameSite=Lax`, `Path=/`, and
//! `Secure` when the public URL is https. Every state-changing request (any method
//! but GET/HEAD) must carry the session's CSRF token, in the `X-CSRF-Token` header
//! (htmx sends it from the page's `hx-headers`) or in a `_csrf` form field; sign-in and
//! setup, which have no session yet, are protected by the `Origin` check every
//! state-changing request passes (a cross-site `Origin` is refused) and `SameSite`.

use crate::WebState;
use crate::i18n::{ArabicCalendar, Lang, Tr};
use crate::render::{self, Chrome};
use askama::Template;
use axum::Form;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use nudge_app::AppError;
use nudge_app::accounts;
use nudge_store::{Session, User};
use serde::Deserialize;
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "nudge_session";
/// The form field that carries the CSRF token of forms posted without JavaScript.
pub const CSRF_FIELD: &str = "_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// What the guard reads of a state-changing request's body: forms are small, a CSV
/// of contacts may be large.
const FORM_LIMIT: usize = 64 * 1024 * 1024;

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

fn session_cookie(token: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}");
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("nudge_session=; Path=/; Max-Age=0"))
}

/// Percent-encodes a path for a `next=` query parameter.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Where to go after signing in: a path on this site, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n,
        _ => "/",
    }
}

/// The language of someone not signed in: the browser's first supported language,
/// else the workspace's.
fn browser_lang(headers: &HeaderMap) -> Option<Lang> {
    let accept = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    accept
        .split(',')
        .filter_map(|part| Lang::parse(part.split(';').next()?))
        .next()
}

impl WebState {
    /// Translations for a user (its language, else the workspace's) or, signed out,
    /// for the browser's language.
    pub async fn tr(&self, user: Option<&User>, headers: &HeaderMap) -> Tr {
        let store = &self.api.store;
        let workspace = store
            .setting(crate::pages::settings::UI_LOCALE)
            .await
            .ok()
            .flatten()
            .and_then(|l| Lang::parse(&l));
        let lang = match user {
            Some(u) => u.locale.as_deref().and_then(Lang::parse).or(workspace),
            None => browser_lang(headers).or(workspace),
        }
        .unwrap_or(Lang::En);
        let arabic = store
            .setting(crate::pages::settings::UI_ARABIC_CALENDAR)
            .await
            .ok()
            .flatten()
            .and_then(|c| ArabicCalendar::parse(&c))
            .unwrap_or_default();
        Tr::new(lang, self.app().journey_zone(None), arabic)
    }

    async fn session_of(&self, headers: &HeaderMap) -> Result<Option<Session>, AppError> {
        match cookie(headers, SESSION_COOKIE) {
            Some(token) => accounts::session(&*self.api.store, &token, self.now()).await,
            None => Ok(None),
        }
    }
}

/// The signed-in person viewing a page, with translations in their language. A
/// request without a live session is sent to the sign-in page (htmx requests get an
/// `HX-Redirect`).
pub struct Viewer {
    pub session: Session,
    pub t: Tr,
}

impl Viewer {
    /// The page frame for this viewer; `here` is the page's path and query.
    pub fn chrome(&self, active: &'static str, here: impl Into<String>) -> Chrome {
        Chrome {
            t: self.t.clone(),
            email: self.session.user.email.clone(),
            role: self.session.user.role,
            csrf: self.session.csrf.clone(),
            active,
            here: here.into(),
        }
    }

    /// Refuses (403 page) unless the viewer's role allows `permission`.
    pub fn require(&self, permission: nudge_core::access::Permission) -> Result<(), Response> {
        accounts::require(&self.session, permission).map_err(|e| render::app_error(&self.t, e))
    }
}

fn to_sign_in(parts: &Parts) -> Response {
    let here = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target = format!("/sign-in?next={}", encode(here));
    if parts.headers.contains_key("hx-request") {
        let mut resp = StatusCode::OK.into_response();
        if let Ok(v) = HeaderValue::from_str(&target) {
            resp.headers_mut().insert("hx-redirect", v);
        }
        resp
    } else {
        Redirect::to(&target).into_response()
    }
}

impl FromRequestParts<WebState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let session = match parts.extensions.get::<Session>() {
            Some(s) => Some(s.clone()),
            None => match state.session_of(&parts.headers).await {
                Ok(s) => s,
                Err(e) => {
                    let t = state.tr(None, &parts.headers).await;
                    return Err(render::app_error(&t, e));
                }
            },
        };
        let Some(session) = session else {
            return Err(to_sign_in(parts));
        };
        let t = state.tr(Some(&session.user), &parts.headers).await;
        Ok(Viewer { session, t })
    }
}

/// Whether the request's `Origin` (when the browser sent one) is this site.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    origin_host.eq_ignore_ascii_case(host)
}

/// The address of the client, when the server knows it (the TCP peer).
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
        ))
    }
}

/// The CSRF guard: every request that may change state comes from this site
/// (`Origin`), and, unless it is a sign-in or setup, carries its session's CSRF
/// token. The checked session travels on in the request's extensions.
pub async fn csrf_guard(State(state): State<WebState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if !same_origin(req.headers()) {
        let t = state.tr(None, req.headers()).await;
        return render::error(&t, StatusCode::FORBIDDEN, t.get("error-csrf"));
    }
    let path = req.uri().path();
    if path == "/sign-in" || path.starts_with("/setup/") {
        return next.run(req).await;
    }
    let session = match state.session_of(req.headers()).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            let (parts, _) = req.into_parts();
            return to_sign_in(&parts);
        }
        Err(e) => return render::app_error(&state.tr(None, req.headers()).await, e),
    };
    let (mut parts, body) = req.into_parts();
    let header_token = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            let t = state.tr(Some(&session.user), &parts.headers).await;
            return render::error(&t, StatusCode::PAYLOAD_TOO_LARGE, t.get("error-too-large"));
        }
    };
    // A file upload (multipart) carries the token in the form's action URL instead:
    // the guard does not parse multipart bodies.
    let is_upload = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    let query_token = if is_upload {
        parts.uri.query().and_then(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .ok()
                .and_then(|fields| fields.into_iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v))
        })
    } else {
        None
    };
    let form_token = if is_form {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|fields| fields.into_iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v))
    } else {
        None
    };
    let ok = header_token
        .or(form_token)
        .or(query_token)
        .is_some_and(|token| accounts::csrf_matches(&session, &token));
    if !ok {
        let t = state.tr(Some(&session.user), &parts.headers).await;
        return render::error(&t, StatusCode::FORBIDDEN, t.get("error-csrf"));
    }
    parts.extensions.insert(session);
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    t: Tr,
    next: String,
    email: String,
    error: Option<String>,
    no_users: bool,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /sign-in`
pub async fn sign_in_page(State(state): State<WebState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    if let Ok(Some(_)) = state.session_of(&headers).await {
        return Redirect::to(safe_next(q.next.as_deref())).into_response();
    }
    let t = state.tr(None, &headers).await;
    let no_users = state.api.store.user_count().await.map(|n| n == 0).unwrap_or(false);
    render::page(&SignInPage {
        t,
        next: safe_next(q.next.as_deref()).to_owned(),
        email: String::new(),
        error: None,
        no_users,
    })
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /sign-in`: the same answer for an unknown address and a wrong password;
/// refused for a while after too many failures (per account and per address).
pub async fn sign_in(
    State(state): State<WebState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let now = state.now();
    let result = accounts::sign_in(&*state.api.store, &state.limiter, &form.email, &form.password, ip, now).await;
    let next = safe_next(form.next.as_deref()).to_owned();
    match result {
        Ok(signed_in) => {
            let mut resp = Redirect::to(&next).into_response();
            let max_age = (signed_in.session.expires_at - now) / 1000;
            resp.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&signed_in.token, max_age, state.secure_cookies),
            );
            resp
        }
        Err(e) => {
            let t = state.tr(None, &headers).await;
            let (status, error) = match e {
                AppError::RateLimited { retry_after_secs } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    t.arg("sign-in-locked", "minutes", retry_after_secs.div_ceil(60)),
                ),
                AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, t.get("sign-in-wrong")),
                e => return render::app_error(&t, e),
            };
            let mut resp = render::page(&SignInPage {
                t,
                next,
                email: form.email,
                error: Some(error),
                no_users: false,
            });
            *resp.status_mut() = status;
            resp
        }
    }
}

/// `POST /sign-out`
pub async fn sign_out(State(state): State<WebState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = accounts::sign_out(&*state.api.store, &token).await
    {
        tracing::warn!(error = %e, "signing out");
    }
    let mut resp = Redirect::to("/sign-in").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0, state.secure_cookies));
    resp
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    t: Tr,
    token: String,
    email: String,
    errors: FieldErrors,
    used: bool,
}

/// Errors shown next to the fields at fault.
#[derive(Debug, Default)]
pub struct FieldErrors(pub Vec<(String, String)>);

impl FieldErrors {
    pub fn of(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }
    /// Every message for `field` (a field may have several problems).
    pub fn all_of(&self, field: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
            .collect()
    }
    pub fn other(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(f, _)| f.is_empty())
            .map(|(_, m)| m.as_str())
            .collect()
    }
    /// The field an application error names, else a form-wide error.
    pub fn from_app(e: &AppError) -> Self {
        let (field, message) = match e {
            AppError::MissingField { field, message } | AppError::InvalidField { field, message } => {
                (field.clone(), message.clone())
            }
            AppError::InvalidRequest { field, message } | AppError::NotFound { field, message } => {
                (field.clone().unwrap_or_default(), message.clone())
            }
            e => (String::new(), e.to_string()),
        };
        FieldErrors(vec![(field, message)])
    }
}

/// `GET /setup/{token}`: the first owner of an empty workspace.
pub async fn setup_page(State(state): State<WebState>, headers: HeaderMap, Path(token): Path<String>) -> Response {
    let t = state.tr(None, &headers).await;
    let used = !accounts::setup_token_valid(&*state.api.store, &token)
        .await
        .unwrap_or(false);
    render::page(&SetupPage {
        t,
        token,
        email: String::new(),
        errors: FieldErrors::default(),
        used,
    })
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /setup/{token}`: creates the owner and signs them in.
pub async fn setup(
    State(state): State<WebState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<SetupForm>,
) -> Response {
    let now = state.now();
    let store = &*state.api.store;
    match accounts::complete_setup(store, &token, &form.email, &form.password, now).await {
        Ok(_) => match accounts::sign_in(store, &state.limiter, &form.email, &form.password, ip, now).await {
            Ok(signed_in) => {
                let mut resp = Redirect::to("/").into_response();
                let max_age = (signed_in.session.expires_at - now) / 1000;
                resp.headers_mut().insert(
                    header::SET_COOKIE,
                    session_cookie(&signed_in.token, max_age, state.secure_cookies),
                );
                resp
            }
            Err(_) => Redirect::to("/sign-in").into_response(),
        },
        Err(e) => {
            let t = state.tr(None, &headers).await;
            let used = matches!(e, AppError::Unauthorized(_));
            let mut resp = render::page(&SetupPage {
                t,
                token,
                email: form.email,
                errors: FieldErrors::from_app(&e),
                used,
            });
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            resp
        }
    }
}

#[derive(Deserialize)]
pub struct LanguageForm {
    lang: String,
    back: Option<String>,
}

/// `POST /me/language`: the viewer's UI language (`default` follows the workspace).
pub async fn set_language(State(state): State<WebState>, viewer: Viewer, Form(form): Form<LanguageForm>) -> Response {
    let locale = Lang::parse(&form.lang).map(|l| l.code().to_owned());
    if let Err(e) = accounts::set_locale(&*state.api.store, viewer.session.user.id, locale).await {
        return render::app_error(&viewer.t, e);
    }
    Redirect::to(safe_next(form.back.as_deref())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; nudge_session=abc"));
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn next_is_only_ever_a_local_path() {
        assert_eq!(safe_next(Some("/contacts?q=a")), "/contacts?q=a");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cookie_flags() {
        let v = session_cookie("tok", 60, true);
        let v = v.to_str().unwrap();
        for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=60"] {
            assert!(v.contains(flag), "{v}");
        }
        assert!(!session_cookie("tok", 60, false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn cross_site_origins_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("nudge.local:8080"));
        assert!(
            same_origin(&h),
            "no Origin: a same-site navigation or a non-browser client"
        );
        h.insert(header::ORIGIN, HeaderValue::from_static("http://nudge.local:8080"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&h));
    }
}
