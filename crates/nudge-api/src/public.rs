//! Public endpoints reached from messages, without login, through signed links:
//! open pixel (`/t/o/..`), click redirect (`/t/c/..`), unsubscribe (`/u/..`, with RFC
//! 8058 one-click POST) and the preference page (`/p/..`).

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use nudge_core::Subscription;
use nudge_core::protocol::MessageEvent;
use nudge_messages::consent::topic_key;
use nudge_messages::links::Purpose;
use nudge_store::{ContactPatch, Message};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

async fn message_of(state: &AppState, purpose: Purpose, token: &str) -> Option<(Message, u32)> {
    let (id, index) = state.messaging.as_ref()?.signer().verify(purpose, token)?;
    let m = state.store.message(id).await.ok().flatten()?;
    Some((m, index))
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
    if let Some((m, _)) = message_of(&state, Purpose::Open, &token).await {
        let now = state.clock.now();
        // Image proxies fetch the pixel repeatedly: at most one open per minute counts.
        let key = format!("open-{}-{}", m.id, now / 60_000);
        match state
            .store
            .record_message_event(m.id, &MessageEvent::Opened, key, now)
            .await
        {
            Ok(true) => state.segments.wake(),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "recording an open failed"),
        }
    }
    let mut resp = (StatusCode::OK, PIXEL).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, max-age=0"));
    resp
}

pub async fn click(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((m, index)) = message_of(&state, Purpose::Click, &token).await else {
        return invalid_link();
    };
    let url = m
        .rendered
        .as_ref()
        .and_then(|r| r.get("links"))
        .and_then(|l| l.get(index as usize))
        .and_then(|u| u.as_str())
        .map(str::to_string);
    let Some(url) = url else { return invalid_link() };
    let now = state.clock.now();
    let key = format!("click-{}-{index}-{now}", m.id);
    let event = MessageEvent::Clicked {
        link: index,
        url: url.clone(),
    };
    match state.store.record_message_event(m.id, &event, key, now).await {
        Ok(_) => state.segments.wake(),
        Err(e) => tracing::warn!(error = %e, "recording a click failed"),
    }
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

async fn topic_of(state: &AppState, m: &Message) -> Option<String> {
    state
        .store
        .template(m.template_id)
        .await
        .ok()
        .flatten()
        .and_then(|t| t.topic)
}

pub async fn unsubscribe_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((m, _)) = message_of(&state, Purpose::Unsubscribe, &token).await else {
        return invalid_link();
    };
    let topic = topic_of(&state, &m).await;
    let what = match &topic {
        Some(t) => format!("“{}” {} messages", escape(t), escape(&m.channel)),
        None => format!("all marketing {}", escape(&m.channel)),
    };
    let prefs = state
        .messaging
        .as_ref()
        .map(|d| d.signer().url("", Purpose::Preferences, m.id, 0))
        .unwrap_or_default();
    page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop receiving {what}?</p><form method=\"post\"><button type=\"submit\" name=\"confirm\" value=\"yes\">Unsubscribe</button></form>\
             <p><a href=\"{prefs}\">Choose what you receive instead</a></p>"
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
    let Some((m, _)) = message_of(&state, Purpose::Unsubscribe, &token).await else {
        return invalid_link();
    };
    let fields = form(&body);
    let one_click = fields.iter().any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click");
    let topic = topic_of(&state, &m).await;
    let key = match &topic {
        Some(t) => topic_key(&m.channel, t),
        None => m.channel.clone(),
    };
    let patch = ContactPatch {
        subscriptions: BTreeMap::from([(key.clone(), Subscription::Unsubscribed)]),
        ..Default::default()
    };
    let now = state.clock.now();
    if let Err(e) = state.store.update_contact(m.contact_id, &patch, now).await {
        tracing::error!(error = %e, "unsubscribe failed");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "<p>Please try again in a moment.</p>",
        );
    }
    let event_key = format!("unsubscribe-{}-{key}", m.id);
    let event = MessageEvent::Unsubscribed {
        subscription: key,
        one_click,
    };
    let _ = state.store.record_message_event(m.id, &event, event_key, now).await;
    state.segments.wake();
    page(
        StatusCode::OK,
        "You are unsubscribed",
        "<p>You will not receive these messages any more.</p>",
    )
}

async fn known_topics(state: &AppState, channel: &str) -> BTreeSet<String> {
    state
        .store
        .templates()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.channel == channel && !t.transactional)
        .filter_map(|t| t.topic)
        .collect()
}

pub async fn preferences_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((m, _)) = message_of(&state, Purpose::Preferences, &token).await else {
        return invalid_link();
    };
    let Ok(Some(contact)) = state.store.contact(m.contact_id).await else {
        return invalid_link();
    };
    let subscribed = |key: &str| {
        !matches!(
            contact.subscriptions.get(key),
            Some(Subscription::Unsubscribed | Subscription::Pending)
        )
    };
    let channel = &m.channel;
    let mut rows = format!(
        "<label><input type=\"checkbox\" name=\"all\" value=\"on\"{}> All {} from us</label>",
        if subscribed(channel) { " checked" } else { "" },
        escape(channel)
    );
    for t in known_topics(&state, channel).await {
        rows.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"topic\" value=\"{v}\"{c}> {v}</label>",
            v = escape(&t),
            c = if subscribed(&topic_key(channel, &t)) {
                " checked"
            } else {
                ""
            }
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
    let Some((m, _)) = message_of(&state, Purpose::Preferences, &token).await else {
        return invalid_link();
    };
    let fields = form(&body);
    let checked: HashMap<&str, Vec<&str>> = fields.iter().fold(HashMap::new(), |mut acc, (k, v)| {
        acc.entry(k.as_str()).or_default().push(v.as_str());
        acc
    });
    let channel = m.channel.clone();
    let state_of = |on: bool| {
        if on {
            Subscription::Subscribed
        } else {
            Subscription::Unsubscribed
        }
    };
    let mut subscriptions = BTreeMap::from([(channel.clone(), state_of(checked.contains_key("all")))]);
    let chosen: BTreeSet<&str> = checked
        .get("topic")
        .map(|v| v.iter().copied().collect())
        .unwrap_or_default();
    for t in known_topics(&state, &channel).await {
        subscriptions.insert(topic_key(&channel, &t), state_of(chosen.contains(t.as_str())));
    }
    let patch = ContactPatch {
        subscriptions,
        ..Default::default()
    };
    if let Err(e) = state
        .store
        .update_contact(m.contact_id, &patch, state.clock.now())
        .await
    {
        tracing::error!(error = %e, "saving preferences failed");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "<p>Please try again in a moment.</p>",
        );
    }
    state.segments.wake();
    page(
        StatusCode::OK,
        "Preferences saved",
        "<p>Thank you. Your choices are saved.</p>",
    )
}

/// The subscription a double opt-in confirmation message asks about.
fn confirmed_key(m: &Message) -> Option<String> {
    m.data.get("confirm").and_then(|v| v.as_str()).map(str::to_string)
}

/// `GET /confirm/{token}`: a page with one button. Confirming takes a POST so that
/// link scanners, which fetch every link in an email, cannot subscribe anyone.
pub async fn confirm_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((m, _)) = message_of(&state, Purpose::Confirm, &token).await else {
        return invalid_link();
    };
    let Some(key) = confirmed_key(&m) else {
        return invalid_link();
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
    let Some((m, _)) = message_of(&state, Purpose::Confirm, &token).await else {
        return invalid_link();
    };
    let Some(key) = confirmed_key(&m) else {
        return invalid_link();
    };
    let Ok(Some(contact)) = state.store.contact(m.contact_id).await else {
        return invalid_link();
    };
    match contact.subscriptions.get(&key) {
        Some(Subscription::Pending) => {}
        Some(Subscription::Subscribed) => {
            return page(
                StatusCode::OK,
                "You are subscribed",
                "<p>Your subscription was already confirmed.</p>",
            );
        }
        _ => {
            return page(
                StatusCode::GONE,
                "This link has expired",
                "<p>This subscription is no longer waiting for confirmation. Subscribe again to receive a new link.</p>",
            );
        }
    }
    let patch = ContactPatch {
        subscriptions: BTreeMap::from([(key.clone(), Subscription::Subscribed)]),
        ..Default::default()
    };
    let now = state.clock.now();
    if let Err(e) = state.store.update_contact(m.contact_id, &patch, now).await {
        tracing::error!(error = %e, "confirming a subscription failed");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "<p>Please try again in a moment.</p>",
        );
    }
    let event = MessageEvent::SubscriptionConfirmed {
        subscription: key.clone(),
    };
    let _ = state
        .store
        .record_message_event(m.id, &event, format!("confirm-{}", m.id), now)
        .await;
    state.segments.wake();
    page(
        StatusCode::OK,
        "You are subscribed",
        &format!("<p>Thank you. You will receive {}.</p>", describe(&key)),
    )
}
