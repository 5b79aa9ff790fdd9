//! The public side of forms, without sign-in: the hosted landing page `GET /f/{slug}`
//! (in the form's language, right-to-left where it is), `POST /f/{slug}` (a plain
//! HTML form post, answered with a page or a redirect; or JSON from the embed script,
//! answered with JSON and CORS by the form's allowed origins), the preflight, and
//! `GET /f/{slug}/embed.js`, the script that renders the form in place on another
//! site. Every check and the storing are `nudge_app::forms`; this module parses and
//! renders.

use crate::WebState;
use crate::i18n::{ArabicCalendar, Lang, Tr};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use nudge_app::forms::{Source, Submission, SubmitError};
use nudge_core::form::{self, AfterSubmit, FieldKind, FormDefinition, Problem, Refusal};
use nudge_store::Form;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The routes, mounted outside the UI's session and CSRF checks.
pub fn router() -> axum::Router<WebState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/f/{slug}", get(page).post(submit).options(preflight))
        .route("/f/{slug}/embed.js", get(embed))
}

fn tr_of(def: &FormDefinition) -> Tr {
    Tr::new(
        Lang::parse(&def.page.locale).unwrap_or(Lang::En),
        jiff::tz::TimeZone::UTC,
        ArabicCalendar::default(),
    )
}

/// One input as the page draws it.
pub struct FieldView {
    pub name: String,
    /// The `<input type>` (`select` and `checkbox` drawn apart).
    pub input: &'static str,
    pub kind: &'static str,
    pub label: String,
    pub required: bool,
    pub options: Vec<String>,
    pub value: String,
    /// A hidden field's query parameter (filled by the page's script).
    pub query: String,
    pub error: String,
}

pub struct ConsentView {
    pub name: String,
    pub label: String,
    pub required: bool,
    pub checked: bool,
    pub error: String,
}

fn views(
    def: &FormDefinition,
    input: &BTreeMap<String, String>,
    problems: &[Problem],
) -> (Vec<FieldView>, Vec<ConsentView>) {
    let error = |name: &str| {
        problems
            .iter()
            .filter(|p| p.field == name)
            .map(|p| p.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let fields = def
        .fields
        .iter()
        .map(|f| FieldView {
            name: f.name.clone(),
            input: match f.kind {
                FieldKind::Email => "email",
                FieldKind::Phone => "tel",
                FieldKind::Number => "number",
                FieldKind::Date => "date",
                FieldKind::Hidden => "hidden",
                _ => "text",
            },
            kind: f.kind.as_str(),
            label: f.label.clone(),
            required: f.required,
            options: f.options.clone(),
            value: input
                .get(&f.name)
                .cloned()
                .or_else(|| {
                    if f.kind == FieldKind::Hidden {
                        f.value.clone()
                    } else {
                        None
                    }
                })
                .unwrap_or_default(),
            query: f.query.clone().unwrap_or_default(),
            error: error(&f.name),
        })
        .collect();
    let consents = def
        .consents
        .iter()
        .map(|c| {
            let name = format!("{}{}", form::CONSENT_PREFIX, c.subscription);
            ConsentView {
                checked: input.contains_key(&name),
                error: error(&name),
                name,
                label: c.label.clone(),
                required: c.required,
            }
        })
        .collect();
    (fields, consents)
}

#[derive(Template)]
#[template(path = "form_page.html")]
struct FormPage {
    t: Tr,
    title: String,
    text_html: String,
    image_url: Option<String>,
    slug: String,
    stamp: String,
    pow_bits: u8,
    fields: Vec<FieldView>,
    consents: Vec<ConsentView>,
    /// A refusal or the problems' summary, shown above the form.
    alert: String,
    honeypot: &'static str,
    stamp_name: &'static str,
    anonymous_name: &'static str,
    pow_name: &'static str,
}

#[derive(Template)]
#[template(path = "form_done.html")]
struct DonePage {
    t: Tr,
    title: String,
    message: String,
}

fn css_url() -> String {
    crate::assets::url("forms.css")
}
fn js_url() -> String {
    crate::assets::url("forms.js")
}

/// The landing page's own policy: its scripts and styles are Nudge's, its image may
/// be anywhere on the web, the form posts to Nudge (and may redirect elsewhere).
fn page_headers(resp: &mut Response, def: &FormDefinition) {
    let redirect = match &def.after_submit {
        AfterSubmit::Redirect(u) => url_origin(u).map(|o| format!(" {o}")).unwrap_or_default(),
        AfterSubmit::Message(_) => String::new(),
    };
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; \
         connect-src 'self'; frame-ancestors 'none'; form-action 'self'{redirect}; base-uri 'none'; object-src 'none'"
    );
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
}

fn url_origin(u: &str) -> Option<String> {
    let (scheme, rest) = u.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    form::normalise_origin(&format!("{scheme}://{host}")).ok()
}

fn not_found_page() -> Response {
    let t = Tr::new(Lang::En, jiff::tz::TimeZone::UTC, ArabicCalendar::default());
    let mut resp = crate::render::page(&DonePage {
        title: t.get("error-not-found"),
        message: t.get("form-not-found"),
        t,
    });
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

#[allow(clippy::too_many_arguments)]
fn render_form(
    f: &Form,
    stamp: String,
    input: &BTreeMap<String, String>,
    problems: &[Problem],
    alert: String,
    status: StatusCode,
) -> Response {
    let def = &f.definition;
    let (fields, consents) = views(def, input, problems);
    let t = tr_of(def);
    let mut resp = crate::render::page(&FormPage {
        title: if def.page.title.is_empty() {
            f.name.clone()
        } else {
            def.page.title.clone()
        },
        text_html: form::markdown(&def.page.text),
        image_url: def.page.image_url.clone(),
        slug: f.slug.clone(),
        stamp,
        pow_bits: def.spam.proof_of_work,
        fields,
        consents,
        alert,
        honeypot: form::HONEYPOT,
        stamp_name: form::STAMP,
        anonymous_name: form::ANONYMOUS_ID,
        pow_name: form::POW_NONCE,
        t,
    });
    *resp.status_mut() = status;
    page_headers(&mut resp, def);
    resp
}

/// `GET /f/{slug}`: the landing page; counts a view.
pub async fn page(State(state): State<WebState>, Path(slug): Path<String>) -> Response {
    let app = state.app();
    match app.show_form(&state.api.forms, &slug, true).await {
        Ok((f, stamp)) => render_form(&f, stamp, &BTreeMap::new(), &[], String::new(), StatusCode::OK),
        Err(nudge_app::AppError::NotFound { .. }) => not_found_page(),
        Err(e) => {
            let t = Tr::new(Lang::En, jiff::tz::TimeZone::UTC, ArabicCalendar::default());
            crate::render::app_error(&t, e)
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` (the last value of a repeated name).
fn urlencoded(body: &[u8]) -> BTreeMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// A JSON object's values as text (strings as they are, `true` as `on`, numbers as
/// written, `false` and `null` left out).
fn json_input(body: &[u8]) -> Option<BTreeMap<String, String>> {
    let Value::Object(m) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    Some(
        m.into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                Value::Bool(true) => Some((k, "on".into())),
                Value::Number(n) => Some((k, n.to_string())),
                _ => None,
            })
            .collect(),
    )
}

/// The page's origin when it is not this server's own (`Origin` against `Host`).
fn foreign_origin(headers: &HeaderMap) -> Option<String> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    if origin == "null" {
        return Some(origin.into());
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let own = origin.split_once("://").map(|(_, h)| h) == Some(host);
    (!own).then(|| origin.to_string())
}

fn cors(resp: &mut Response, headers: &HeaderMap, f: Option<&Form>) {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return;
    };
    let allowed = f.is_some_and(|f| form::origin_allowed(&f.definition.allowed_origins, origin));
    if allowed && let Ok(v) = HeaderValue::from_str(origin) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// `OPTIONS /f/{slug}`: the preflight of the embed script's JSON post.
pub async fn preflight(State(state): State<WebState>, Path(slug): Path<String>, headers: HeaderMap) -> Response {
    let f = state.api.store.form_by_slug(&slug).await.ok().flatten();
    let mut resp = StatusCode::NO_CONTENT.into_response();
    cors(&mut resp, &headers, f.as_ref());
    if resp.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    resp
}

fn refusal_status(r: Refusal) -> StatusCode {
    match r {
        Refusal::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::Origin => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `POST /f/{slug}`: a submission, as a form post or JSON (see the module).
pub async fn submit(State(state): State<WebState>, Path(slug): Path<String>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json") || c.starts_with("text/plain"));
    let app = state.app();
    let f = match state.api.store.form_by_slug(&slug).await {
        Ok(Some(f)) => f,
        Ok(None) if is_json => {
            return json_error(StatusCode::NOT_FOUND, "not_found", "no such form", None, &headers, None);
        }
        Ok(None) => return not_found_page(),
        Err(e) => {
            tracing::error!(error = %e, "reading a form failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let t = tr_of(&f.definition);
    let bytes: Bytes = match axum::body::to_bytes(body, form::MAX_SUBMISSION_BYTES).await {
        Ok(b) => b,
        Err(_) => return refused(&state, &f, &t, Refusal::TooLarge, is_json, &headers, BTreeMap::new()).await,
    };
    let input = if is_json {
        match json_input(&bytes) {
            Some(i) => i,
            None => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    "the body must be a JSON object of input names and values",
                    None,
                    &headers,
                    Some(&f),
                );
            }
        }
    } else {
        urlencoded(&bytes)
    };
    let submission = Submission {
        slug: slug.clone(),
        input: input.clone(),
        ip: state.api.client_ip(&headers, peer),
        foreign_origin: foreign_origin(&headers),
        source: if is_json { Source::Embed } else { Source::Page },
    };
    match app.submit_form(&state.api.forms, submission).await {
        Ok((f, _)) => {
            if is_json {
                let (message, redirect) = match &f.definition.after_submit {
                    AfterSubmit::Redirect(u) => (None, Some(u.clone())),
                    AfterSubmit::Message(m) if m.trim().is_empty() => (Some(t.get("form-thanks-default")), None),
                    AfterSubmit::Message(m) => (Some(m.clone()), None),
                };
                let mut resp = Json(json!({"ok": true, "message": message, "redirect": redirect})).into_response();
                cors(&mut resp, &headers, Some(&f));
                return resp;
            }
            match &f.definition.after_submit {
                AfterSubmit::Redirect(u) => Redirect::to(u).into_response(),
                AfterSubmit::Message(m) => {
                    let message = if m.trim().is_empty() {
                        t.get("form-thanks-default")
                    } else {
                        m.clone()
                    };
                    let mut resp = crate::render::page(&DonePage {
                        title: t.get("form-thanks-title"),
                        message,
                        t,
                    });
                    page_headers(&mut resp, &f.definition);
                    resp
                }
            }
        }
        Err(SubmitError::Refused(r)) => refused(&state, &f, &t, r, is_json, &headers, input).await,
        Err(SubmitError::Invalid(problems)) => {
            if is_json {
                let first = problems
                    .first()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .unwrap_or_default();
                let mut resp = json_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_field",
                    &first,
                    problems.first().map(|p| p.field.clone()),
                    &headers,
                    Some(&f),
                );
                if let Ok(body) = serde_json::to_vec(&json!({
                    "error": {"code": "invalid_field", "message": first, "field": problems.first().map(|p| &p.field),
                              "details": problems, "summary": t.get("form-invalid")}
                })) {
                    *resp.body_mut() = axum::body::Body::from(body);
                }
                return resp;
            }
            let stamp = app.form_stamp(&state.api.forms, f.id).await.unwrap_or_default();
            render_form(
                &f,
                stamp,
                &input,
                &problems,
                t.get("form-invalid"),
                StatusCode::BAD_REQUEST,
            )
        }
        Err(SubmitError::NotFound) => not_found_page(),
        Err(SubmitError::App(e)) => {
            tracing::warn!(error = %e, form = f.id, "a form submission failed");
            if is_json {
                let api: nudge_api::error::ApiError = e.into();
                let status = api.status();
                return json_error(status, api.code, &api.message, api.field.clone(), &headers, Some(&f));
            }
            crate::render::app_error(&t, e)
        }
    }
}

use axum::Json;

fn json_error(
    status: StatusCode,
    code: &str,
    message: &str,
    field: Option<String>,
    headers: &HeaderMap,
    f: Option<&Form>,
) -> Response {
    let mut resp = (
        status,
        Json(json!({"error": {"code": code, "message": message, "field": field}})),
    )
        .into_response();
    cors(&mut resp, headers, f);
    resp
}

async fn refused(
    state: &WebState,
    f: &Form,
    t: &Tr,
    r: Refusal,
    is_json: bool,
    headers: &HeaderMap,
    input: BTreeMap<String, String>,
) -> Response {
    let status = refusal_status(r);
    let localised = t.get(r.message_id());
    if is_json {
        let mut resp = (
            status,
            Json(json!({"error": {"code": r.code(), "message": r.describe(), "localized": localised}})),
        )
            .into_response();
        cors(&mut resp, headers, Some(f));
        return resp;
    }
    // The page again, with the message, a fresh stamp and what was typed.
    let stamp = state.app().form_stamp(&state.api.forms, f.id).await.unwrap_or_default();
    let mut input = input;
    input.remove(form::HONEYPOT);
    render_form(f, stamp, &input, &[], localised, status)
}

/// `GET /f/{slug}/embed.js`: renders the form where the script tag is and posts it
/// as JSON; counts a view.
pub async fn embed(State(state): State<WebState>, Path(slug): Path<String>, headers: HeaderMap) -> Response {
    let app = state.app();
    let (f, stamp) = match app.show_form(&state.api.forms, &slug, true).await {
        Ok(x) => x,
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                "console.error('Nudge: no such form');",
            )
                .into_response();
        }
    };
    let def = &f.definition;
    let t = tr_of(def);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let scheme = if headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p == "https")
    {
        "https"
    } else {
        "http"
    };
    let config = json!({
        "action": format!("{scheme}://{host}/f/{}", f.slug),
        "css": format!("{scheme}://{host}{}", crate::assets::url("forms.css")),
        "stamp": stamp,
        "pow": def.spam.proof_of_work,
        "dir": t.dir(),
        "lang": t.code(),
        "title": def.page.title,
        "fields": def.fields.iter().map(|x| json!({
            "name": x.name, "type": x.kind.as_str(), "label": x.label, "required": x.required,
            "options": x.options, "query": x.query, "value": x.value,
        })).collect::<Vec<_>>(),
        "consents": def.consents.iter().map(|c| json!({
            "name": format!("{}{}", form::CONSENT_PREFIX, c.subscription), "label": c.label, "required": c.required,
        })).collect::<Vec<_>>(),
        "names": {"honeypot": form::HONEYPOT, "stamp": form::STAMP, "anonymous": form::ANONYMOUS_ID, "pow": form::POW_NONCE},
        "text": {
            "submit": t.get("form-submit"),
            "sending": t.get("form-sending"),
            "choose": t.get("form-choose"),
            "failed": t.get("form-failed"),
            "invalid": t.get("form-invalid"),
        },
    });
    // `</` cannot close a script inside a string: written as `<\/`.
    let config = config.to_string().replace("</", "<\\/");
    let script = format!(
        "(function(){{var NUDGE_FORM={config};\n{}\n}})();",
        include_str!("../../assets/forms-embed.js")
    );
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        script,
    )
        .into_response()
}

/// For the embed snippet shown in the UI.
pub fn embed_snippet(base: &str, slug: &str) -> String {
    format!(
        "<script src=\"{}/f/{slug}/embed.js\" async></script>",
        base.trim_end_matches('/')
    )
}
