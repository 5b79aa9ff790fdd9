//! Public endpoints reached from messages, without login, through signed links:
//! open pixel (`/t/o/..`), click redirect (`/t/c/..`), unsubscribe (`/u/..`, with RFC
//! 8058 one-click POST) and the preference page (`/p/..`).

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use nudge_app::recipients::Confirmation;
use std::collections::BTreeSet;

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// A store failure behind a recipient's link: logged, and a page asking to retry.
fn failed(what: &str, e: nudge_app::AppError) -> Response {
    tracing::error!(error = %e, "{what} failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "<p>Please try again in a moment.</p>",
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}\
         button{{font-size:1rem;padding:.5rem 1rem;cursor:pointer}}label{{display:block;margin:.5rem 0}}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    let mut resp = (status, Html(html)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    resp
}

fn invalid_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This link is not valid",
        "<p>The link may be incomplete. Copy the whole link from the message and try again.</p>",
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub async fn open(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    if let Err(e) = state.app().record_open(&token).await {
        tracing::warn!(error = %e, "recording an open failed");
    }
    let mut resp = (StatusCode::OK, PIXEL).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, max-age=0"));
    resp
}

pub async fn click(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let url = match state.app().follow_click(&token).await {
        Ok(Some(url)) => url,
        Ok(None) => return invalid_link(),
        Err(e) => return failed("following a click", e),
    };
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    resp
}

/// Decodes `application/x-www-form-urlencoded`.
fn form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

pub async fn unsubscribe_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let offer = match state.app().unsubscribe_offer(&token).await {
        Ok(Some(o)) => o,
        Ok(None) => return invalid_link(),
        Err(e) => return failed("the unsubscribe page", e),
    };
    let what = match &offer.topic {
        Some(t) => format!("“{}” {} messages", escape(t), escape(&offer.channel)),
        None => format!("all marketing {}", escape(&offer.channel)),
    };
    page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop receiving {what}?</p><form method=\"post\"><button type=\"submit\" name=\"confirm\" value=\"yes\">Unsubscribe</button></form>\
             <p><a href=\"{}\">Choose what you receive instead</a></p>",
            escape(&offer.preferences_path)
        ),
    )
}

/// `POST /u/{token}`: the page's button, or a mail client's RFC 8058 one-click POST
/// (`List-Unsubscribe=One-Click`). Both unsubscribe at once.
pub async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    _headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let one_click = form(&body)
        .iter()
        .any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click");
    match state.app().unsubscribe_through(&token, one_click).await {
        Ok(Some(())) => page(
            StatusCode::OK,
            "You are unsubscribed",
            "<p>You will not receive these messages any more.</p>",
        ),
        Ok(None) => invalid_link(),
        Err(e) => failed("unsubscribing", e),
    }
}

pub async fn preferences_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let prefs = match state.app().preferences(&token).await {
        Ok(Some(p)) => p,
        Ok(None) => return invalid_link(),
        Err(e) => return failed("the preference page", e),
    };
    let checked = |on: bool| if on { " checked" } else { "" };
    let mut rows = format!(
        "<label><input type=\"checkbox\" name=\"all\" value=\"on\"{}> All {} from us</label>",
        checked(prefs.all),
        escape(&prefs.channel)
    );
    for (t, on) in &prefs.topics {
        rows.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"topic\" value=\"{v}\"{c}> {v}</label>",
            v = escape(t),
            c = checked(*on)
        ));
    }
    page(
        StatusCode::OK,
        "Your preferences",
        &format!("<form method=\"post\">{rows}<p><button type=\"submit\">Save</button></p></form>"),
    )
}

pub async fn save_preferences(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let fields = form(&body);
    let all = fields.iter().any(|(k, _)| k == "all");
    let topics: BTreeSet<String> = fields
        .into_iter()
        .filter(|(k, _)| k == "topic")
        .map(|(_, v)| v)
        .collect();
    match state.app().save_preferences(&token, all, &topics).await {
        Ok(Some(())) => page(
            StatusCode::OK,
            "Preferences saved",
            "<p>Thank you. Your choices are saved.</p>",
        ),
        Ok(None) => invalid_link(),
        Err(e) => failed("saving preferences", e),
    }
}

/// `GET /confirm/{token}`: a page with one button. Confirming takes a POST so that
/// link scanners, which fetch every link in an email, cannot subscribe anyone.
pub async fn confirm_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let key = match state.app().confirmation_offer(&token).await {
        Ok(Some(k)) => k,
        Ok(None) => return invalid_link(),
        Err(e) => return failed("the confirmation page", e),
    };
    page(
        StatusCode::OK,
        "Confirm your subscription",
        &format!(
            "<p>Confirm that you want to receive {}.</p><form method=\"post\"><button type=\"submit\" name=\"confirm\" value=\"yes\">Yes, subscribe me</button></form>",
            describe(&key)
        ),
    )
}

fn describe(key: &str) -> String {
    match key.split_once(':') {
        Some((channel, topic)) => format!("“{}” {} messages", escape(topic), escape(channel)),
        None => format!("our {} messages", escape(key)),
    }
}

/// `POST /confirm/{token}`: a pending subscription becomes `subscribed`, with a
/// `Subscription Confirmed` event on the contact's timeline. A link whose subscription
/// is no longer pending (already confirmed, or unsubscribed since) changes nothing.
pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match state.app().confirm_subscription(&token).await {
        Ok(Some(Confirmation::Confirmed(key))) => page(
            StatusCode::OK,
            "You are subscribed",
            &format!("<p>Thank you. You will receive {}.</p>", describe(&key)),
        ),
        Ok(Some(Confirmation::AlreadyConfirmed)) => page(
            StatusCode::OK,
            "You are subscribed",
            "<p>Your subscription was already confirmed.</p>",
        ),
        Ok(Some(Confirmation::NotPending)) => page(
            StatusCode::GONE,
            "This link has expired",
            "<p>This subscription is no longer waiting for confirmation. Subscribe again to receive a new link.</p>",
        ),
        Ok(None) => invalid_link(),
        Err(e) => failed("confirming a subscription", e),
    }
}
