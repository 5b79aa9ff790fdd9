//! Settings (owners only): the workspace's language and calendar, API keys (a new
//! secret is shown once), frequency caps, and channels with their health. Users have
//! their own page ([`super::users`]).

use crate::WebState;
use crate::auth::{FieldErrors, Viewer};
use crate::i18n::{ArabicCalendar, Lang};
use crate::render::{self, Chrome};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use nudge_core::access::Permission;
use nudge_core::journey::{CapPeriod, FrequencyCap};
use nudge_store::{ApiKey, KeyKind};
use serde::Deserialize;

/// The setting holding the workspace's default UI language.
pub const UI_LOCALE: &str = "ui_locale";
/// The setting choosing Gregorian or Hijri dates in Arabic.
pub const UI_ARABIC_CALENDAR: &str = "ui_arabic_calendar";

pub struct KeyRow {
    pub key: ApiKey,
    pub created: String,
    pub revoked: String,
}

pub struct CapRow {
    pub channel: String,
    pub max: u32,
    pub per: &'static str,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    c: Chrome,
    langs: [Lang; 4],
    locale: String,
    arabic_calendar: ArabicCalendar,
    time_zone: String,
    keys: Vec<KeyRow>,
    /// A key just created: its secret, shown this once.
    new_secret: Option<(String, String)>,
    caps: Vec<CapRow>,
    channels: Vec<super::dashboard::ChannelRow>,
    /// Active write keys and the web origins that may send with them.
    web_keys: Vec<WebKeyRow>,
    /// The analytics.js snippet (with the secret of a write key just created, else a
    /// placeholder).
    snippet: String,
    errors: FieldErrors,
    saved: bool,
}

pub struct WebKeyRow {
    pub id: i64,
    pub label: String,
    /// One origin a line.
    pub origins: String,
    pub browser_only: bool,
}

async fn render_page(
    state: &WebState,
    viewer: &Viewer,
    new_secret: Option<(String, String)>,
    errors: FieldErrors,
    saved: bool,
) -> Response {
    let t = &viewer.t;
    let store = &state.api.store;
    let app = state.app();
    let (keys, caps) = match (store.list_keys().await, app.frequency_caps().await) {
        (Ok(k), Ok(c)) => (k, c),
        (Err(e), _) => return render::app_error(t, e.into()),
        (_, Err(e)) => return render::app_error(t, e),
    };
    let locale = store
        .setting(UI_LOCALE)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| "en".into());
    let arabic_calendar = store
        .setting(UI_ARABIC_CALENDAR)
        .await
        .ok()
        .flatten()
        .and_then(|c| ArabicCalendar::parse(&c))
        .unwrap_or_default();
    let failed = !errors.0.is_empty();
    let web_keys = keys
        .iter()
        .filter(|k| k.kind == KeyKind::Write && k.revoked_at.is_none())
        .map(|k| WebKeyRow {
            id: k.id,
            label: if k.name.is_empty() {
                format!("{}…", k.prefix)
            } else {
                format!("{} ({}…)", k.name, k.prefix)
            },
            origins: k.browser.allowed_origins.join("\n"),
            browser_only: k.browser.browser_only,
        })
        .collect();
    let base = state
        .api
        .messaging
        .as_ref()
        .map(|m| m.public_url().to_owned())
        .unwrap_or_else(|| "https://nudge.example.com".into());
    let key_text = new_secret
        .as_ref()
        .map(|(_, s)| s.clone())
        .filter(|s| s.starts_with("nw_"))
        .unwrap_or_else(|| "YOUR_WRITE_KEY".into());
    let snippet = nudge_api::browser::snippet(&base, &key_text);
    let mut resp = render::page(&SettingsPage {
        c: viewer.chrome("settings", "/settings"),
        langs: Lang::ALL,
        locale,
        arabic_calendar,
        time_zone: app.journey_zone(None).iana_name().unwrap_or("UTC").to_owned(),
        keys: keys
            .into_iter()
            .rev()
            .map(|k| KeyRow {
                created: t.datetime(k.created_at),
                revoked: k.revoked_at.map(|r| t.datetime(r)).unwrap_or_default(),
                key: k,
            })
            .collect(),
        new_secret,
        caps: caps
            .into_iter()
            .map(|c| CapRow {
                channel: c.channel.unwrap_or_default(),
                max: c.max,
                per: match c.per {
                    CapPeriod::Day => "day",
                    CapPeriod::Week => "week",
                },
            })
            .collect(),
        channels: super::dashboard::channel_health(state).await,
        web_keys,
        snippet,
        errors,
        saved,
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

#[derive(Deserialize, Default)]
pub struct SavedQuery {
    saved: Option<String>,
}

/// `GET /settings`
pub async fn page(State(state): State<WebState>, viewer: Viewer, Query(q): Query<SavedQuery>) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    render_page(&state, &viewer, None, FieldErrors::default(), q.saved.is_some()).await
}

#[derive(Deserialize)]
pub struct WorkspaceForm {
    locale: String,
    arabic_calendar: String,
}

/// `POST /settings/workspace`
pub async fn workspace(State(state): State<WebState>, viewer: Viewer, Form(f): Form<WorkspaceForm>) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    let (Some(lang), Some(calendar)) = (Lang::parse(&f.locale), ArabicCalendar::parse(&f.arabic_calendar)) else {
        let errors = FieldErrors(vec![("locale".into(), viewer.t.get("settings-bad-workspace"))]);
        return render_page(&state, &viewer, None, errors, false).await;
    };
    let store = &state.api.store;
    for (key, value) in [(UI_LOCALE, lang.code()), (UI_ARABIC_CALENDAR, calendar.as_str())] {
        if let Err(e) = store.put_setting(key, Some(value)).await {
            return render::app_error(&viewer.t, e.into());
        }
    }
    // The page is rendered again in the language the viewer now gets.
    Redirect::to("/settings?saved=1").into_response()
}

#[derive(Deserialize)]
pub struct KeyForm {
    kind: String,
    #[serde(default)]
    name: String,
}

/// `POST /settings/keys`: a new key; its secret is shown on the answer only.
pub async fn create_key(State(state): State<WebState>, viewer: Viewer, Form(f): Form<KeyForm>) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    let Some(kind) = KeyKind::parse(&f.kind) else {
        let errors = FieldErrors(vec![("kind".into(), viewer.t.get("settings-bad-key-kind"))]);
        return render_page(&state, &viewer, None, errors, false).await;
    };
    match state.app().create_key(kind, f.name.trim()).await {
        Ok((key, secret)) => {
            let label = if key.name.is_empty() {
                key.prefix.clone()
            } else {
                key.name.clone()
            };
            render_page(&state, &viewer, Some((label, secret)), FieldErrors::default(), false).await
        }
        Err(e) => render_page(&state, &viewer, None, FieldErrors::from_app(&e), false).await,
    }
}

#[derive(Deserialize)]
pub struct BrowserForm {
    #[serde(default)]
    origins: String,
    #[serde(default)]
    browser_only: Option<String>,
}

/// `POST /settings/keys/{id}/browser`: the web origins that may send with a write
/// key, one a line, and whether it is restricted to the browser endpoints.
pub async fn key_browser(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(f): Form<BrowserForm>,
) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    let origins: Vec<String> = f
        .origins
        .lines()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    match state
        .app()
        .set_key_browser(id, &origins, f.browser_only.is_some())
        .await
    {
        Ok(_) => Redirect::to("/settings?saved=1#website").into_response(),
        Err(e) => {
            // Problems are named after the API's fields; the form has one box per key.
            let errors = FieldErrors::from_app(&e)
                .0
                .into_iter()
                .map(|(_, message)| (format!("origins-{id}"), message))
                .collect();
            render_page(&state, &viewer, None, FieldErrors(errors), false).await
        }
    }
}

/// `POST /settings/keys/{id}/revoke`
pub async fn revoke_key(State(state): State<WebState>, viewer: Viewer, Path(id): Path<i64>) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    match state.app().revoke_key(id).await {
        Ok(_) => Redirect::to("/settings#keys").into_response(),
        Err(e) => render_page(&state, &viewer, None, FieldErrors::from_app(&e), false).await,
    }
}

/// Reads the caps form's rows; `Err` names the row's field at fault.
fn caps_of(rows: Vec<(String, String)>) -> Result<Vec<FrequencyCap>, (String, String)> {
    let mut channel = Vec::new();
    let mut max = Vec::new();
    let mut per = Vec::new();
    for (k, v) in rows {
        match k.as_str() {
            "channel" => channel.push(v),
            "max" => max.push(v),
            "per" => per.push(v),
            _ => {}
        }
    }
    let mut caps = Vec::new();
    for (i, m) in max.iter().enumerate() {
        let m = m.trim();
        if m.is_empty() {
            continue;
        }
        let field = format!("caps[{}].max", caps.len());
        let max: u32 = m.parse().map_err(|_| (field, format!("{m:?} is not a whole number")))?;
        let per = match per.get(i).map(String::as_str) {
            Some("week") => CapPeriod::Week,
            _ => CapPeriod::Day,
        };
        let channel = channel.get(i).map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
        caps.push(FrequencyCap { channel, max, per });
    }
    Ok(caps)
}

/// `POST /settings/caps`
pub async fn caps(State(state): State<WebState>, viewer: Viewer, body: axum::body::Bytes) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    let rows: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let caps = match caps_of(rows) {
        Ok(c) => c,
        Err((field, message)) => {
            return render_page(&state, &viewer, None, FieldErrors(vec![(field, message)]), false).await;
        }
    };
    match state.app().set_frequency_caps(caps).await {
        Ok(()) => Redirect::to("/settings?saved=1#caps").into_response(),
        Err(e) => render_page(&state, &viewer, None, FieldErrors::from_app(&e), false).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn cap_rows_become_caps_and_empty_rows_are_dropped() {
        let caps = caps_of(rows(&[
            ("channel", "email"),
            ("max", "2"),
            ("per", "day"),
            ("channel", ""),
            ("max", "5"),
            ("per", "week"),
            ("channel", "sms"),
            ("max", ""),
            ("per", "day"),
        ]))
        .unwrap();
        assert_eq!(
            caps,
            vec![
                FrequencyCap {
                    channel: Some("email".into()),
                    max: 2,
                    per: CapPeriod::Day
                },
                FrequencyCap {
                    channel: None,
                    max: 5,
                    per: CapPeriod::Week
                },
            ]
        );
        let err = caps_of(rows(&[("channel", ""), ("max", "two"), ("per", "day")])).unwrap_err();
        assert_eq!(err.0, "caps[0].max");
    }
}
