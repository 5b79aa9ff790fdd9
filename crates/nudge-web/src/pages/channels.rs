//! Settings › Channels: how e-mail and SMS leave and whether each channel answers.
//! Owners configure e-mail (SMTP, or capture) and SMS (a Twilio-compatible API, or
//! capture) with forms — a password, token or DKIM key is never shown back, only
//! whether one is set, and left empty it is kept —, go back to the server's
//! settings, and send a test message through a channel to an address they type.
//! Everyone else sees the channels read-only. Push needs no configuration: the page
//! shows its VAPID public key.
//!
//! The rules (what a configuration must be, where it is kept, what a test send is)
//! live in `nudge_app::channels`; this module parses the forms and renders.

use crate::WebState;
use crate::auth::{FieldErrors, Viewer};
use crate::i18n::Tr;
use crate::render::{self, Chrome};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use nudge_app::channels::{
    ChannelSettings, ChannelSource, ChannelStatus, DkimSettings, SmtpSettings, TestOutcome, TestText, TwilioSettings,
};
use nudge_core::access::Permission;
use nudge_messages::channel::SendError;
use nudge_messages::channel::config::{self, ChannelConfig, SmtpServer, SmtpTls};
use serde::Deserialize;
use std::time::Duration;

/// How long the page waits for each channel's health check.
const HEALTH_WAIT: Duration = Duration::from_secs(5);

/// The e-mail form's fields, as posted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EmailForm {
    /// `smtp` or `capture`.
    pub transport: String,
    pub host: String,
    pub port: String,
    pub tls: String,
    pub user: String,
    /// Empty: keep the stored one. Never rendered back.
    pub password: String,
    pub from_name: String,
    pub from_address: String,
    pub pool: String,
    pub rate: String,
    pub dkim_selector: String,
    pub dkim_domain: String,
    /// Empty: keep the stored one. Never rendered back.
    pub dkim_key: String,
}

/// The SMS form's fields, as posted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SmsForm {
    /// `twilio` or `capture`.
    pub transport: String,
    pub base_url: String,
    pub account: String,
    /// Empty: keep the stored one. Never rendered back.
    pub token: String,
    pub from: String,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A number as typed, with Persian (۱۲۳) and Arabic-Indic (١٢٣) digits and the
/// Arabic decimal separator read as Latin ones.
pub(crate) fn number(s: &str) -> Option<String> {
    let latin: String = s
        .trim()
        .chars()
        .map(|c| match c {
            '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
            '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
            '\u{066B}' => '.',
            c => c,
        })
        .collect();
    opt(&latin)
}

impl EmailForm {
    /// The form as the channel is configured now: from the stored configuration,
    /// else from what the running channel shows (its server without credentials).
    pub fn of(stored: Option<&ChannelConfig>, status: Option<&ChannelStatus>) -> Self {
        let mut f = EmailForm {
            transport: "smtp".into(),
            port: "587".into(),
            tls: SmtpTls::StartTls.as_str().into(),
            ..Default::default()
        };
        let (url, from) = match stored {
            Some(ChannelConfig::Smtp {
                url,
                from,
                pool,
                rate,
                dkim,
            }) => {
                f.pool = pool.map(|p| p.to_string()).unwrap_or_default();
                f.rate = rate.map(|r| r.to_string()).unwrap_or_default();
                if let Some(d) = dkim {
                    f.dkim_selector = d.selector.clone();
                    f.dkim_domain = d.domain.clone();
                }
                (Some(url.clone()), Some(from.clone()))
            }
            Some(_) => {
                f.transport = "capture".into();
                (None, None)
            }
            None => match status {
                Some(s) if s.transport == "smtp" => (
                    s.settings["server"].as_str().map(str::to_owned),
                    s.settings["from"].as_str().map(str::to_owned),
                ),
                Some(s) if s.transport == "capture" => {
                    f.transport = "capture".into();
                    (None, None)
                }
                _ => (None, None),
            },
        };
        if let Some(server) = url.as_deref().and_then(SmtpServer::from_url) {
            f.host = server.host;
            f.port = server.port.to_string();
            f.tls = server.tls.as_str().into();
            // A running channel's URL hides its credentials as `***`.
            if stored.is_some() {
                f.user = server.user;
            }
        }
        if let Some(from) = from {
            (f.from_name, f.from_address) = config::sender_parts(&from);
        }
        f
    }

    /// The settings the fields describe; numbers that do not read are refused at
    /// their field.
    pub fn settings(&self, t: &Tr) -> Result<ChannelSettings, FieldErrors> {
        if self.transport == "capture" {
            return Ok(ChannelSettings::Capture);
        }
        let whole = |field: &str, raw: &str| -> Result<Option<u32>, FieldErrors> {
            match number(raw) {
                None => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| FieldErrors(vec![(field.into(), t.get("channel-not-a-whole-number"))])),
            }
        };
        let port = match whole("port", &self.port)? {
            Some(p) if (1..=65535).contains(&p) => p as u16,
            Some(_) => return Err(FieldErrors(vec![("port".into(), t.get("channel-bad-port"))])),
            None => return Err(FieldErrors(vec![("port".into(), t.get("channel-required"))])),
        };
        let rate = match number(&self.rate) {
            None => None,
            Some(r) => Some(
                r.parse::<f64>()
                    .map_err(|_| FieldErrors(vec![("rate".into(), t.get("channel-not-a-rate"))]))?,
            ),
        };
        let dkim = (opt(&self.dkim_selector).is_some() || opt(&self.dkim_domain).is_some()).then(|| DkimSettings {
            selector: self.dkim_selector.clone(),
            domain: self.dkim_domain.clone(),
            // A browser sends a text area's lines ending in CRLF.
            private_key: opt(&self.dkim_key).map(|k| k.replace("\r\n", "\n")),
        });
        Ok(ChannelSettings::Smtp(SmtpSettings {
            host: self.host.clone(),
            port,
            tls: SmtpTls::parse(&self.tls).unwrap_or(SmtpTls::StartTls),
            user: self.user.clone(),
            password: (!self.password.is_empty()).then(|| self.password.clone()),
            from_name: self.from_name.clone(),
            from_address: self.from_address.clone(),
            pool: whole("pool", &self.pool)?,
            rate,
            dkim,
        }))
    }

    fn is(&self, transport: &str) -> bool {
        self.transport == transport
    }
}

impl SmsForm {
    /// The form as the channel is configured now.
    pub fn of(stored: Option<&ChannelConfig>, status: Option<&ChannelStatus>) -> Self {
        let mut f = SmsForm {
            transport: "twilio".into(),
            ..Default::default()
        };
        match (stored, status) {
            (
                Some(ChannelConfig::Twilio {
                    base_url,
                    account,
                    from,
                    ..
                }),
                _,
            ) => {
                f.base_url = base_url.clone();
                f.account = account.clone();
                f.from = from.clone();
            }
            (Some(_), _) => f.transport = "capture".into(),
            (None, Some(s)) if s.transport == "twilio" => {
                let text = |k: &str| s.settings[k].as_str().unwrap_or_default().to_owned();
                f.base_url = text("base_url");
                f.account = text("account");
                f.from = text("from");
            }
            (None, Some(s)) if s.transport == "capture" => f.transport = "capture".into(),
            _ => {}
        }
        f
    }

    pub fn settings(&self) -> ChannelSettings {
        if self.transport == "capture" {
            return ChannelSettings::Capture;
        }
        ChannelSettings::Twilio(TwilioSettings {
            base_url: self.base_url.clone(),
            account: self.account.clone(),
            token: (!self.token.is_empty()).then(|| self.token.clone()),
            from: self.from.clone(),
        })
    }

    fn is(&self, transport: &str) -> bool {
        self.transport == transport
    }
}

/// Which stored secrets exist (they are never shown, only said to be set).
#[derive(Debug, Default)]
pub struct Secrets {
    pub password: bool,
    pub dkim_key: bool,
    pub token: bool,
}

impl Secrets {
    fn of(email: Option<&ChannelConfig>, sms: Option<&ChannelConfig>) -> Self {
        let mut s = Secrets::default();
        if let Some(ChannelConfig::Smtp { url, dkim, .. }) = email {
            s.password = SmtpServer::from_url(url).is_some_and(|u| !u.password.is_empty());
            s.dkim_key = dkim.is_some();
        }
        if let Some(ChannelConfig::Twilio { token, .. }) = sms {
            s.token = !token.is_empty();
        }
        s
    }
}

/// A channel as the page shows it.
pub struct Card {
    pub kind: &'static str,
    pub transport: &'static str,
    pub stored: bool,
    pub problem: Option<String>,
    /// What the channel shows of its configuration: label, value.
    pub settings: Vec<(String, String)>,
}

fn card(t: &Tr, s: &ChannelStatus) -> Card {
    let mut settings = Vec::new();
    if let Some(o) = s.settings.as_object() {
        for (key, id) in [
            ("server", "channel-setting-server"),
            ("from", "channel-setting-from"),
            ("dkim", "channel-setting-dkim"),
            ("base_url", "channel-setting-base-url"),
            ("account", "channel-setting-account"),
            ("signature_header", "channel-setting-signature-header"),
        ] {
            if let Some(v) = o.get(key).filter(|v| !v.is_null()) {
                settings.push((t.get(id), render::show_value(v, false)));
            }
        }
    }
    Card {
        kind: s.kind,
        transport: s.transport,
        stored: s.source == ChannelSource::Stored,
        problem: s.health.clone().err(),
        settings,
    }
}

/// A test send's outcome as the page shows it.
pub struct TestView {
    pub ok: bool,
    pub title: String,
    /// The server's or provider's own words.
    pub detail: Option<String>,
}

/// The outcome of a test send in the viewer's language.
pub fn test_view(t: &Tr, o: &TestOutcome) -> TestView {
    let kind = t.get(&format!("channel-kind-{}", o.kind));
    let args = [("to", &o.to as &dyn std::fmt::Display), ("transport", &o.transport)];
    let (ok, id, detail) = match &o.result {
        Ok(_) if o.captured() => (true, "test-captured", None),
        Ok(answer) => (true, "test-accepted", answer.clone().filter(|a| !a.trim().is_empty())),
        Err(SendError::Transient(e)) => (false, "test-failed-temporary", Some(e.clone())),
        Err(SendError::Permanent(e)) => (false, "test-failed-permanent", Some(e.clone())),
        Err(SendError::Bounce(e)) => (false, "test-failed-bounce", Some(e.clone())),
    };
    let title = if id == "test-captured" {
        t.arg(id, "kind", kind)
    } else {
        t.args(id, &args)
    };
    TestView { ok, title, detail }
}

/// The box under a test form: the outcome of the last test, or why it was not sent.
#[derive(Template)]
#[template(path = "test_result.html")]
pub struct TestResult {
    pub t: Tr,
    /// The element's id (`email-test-result`, `test-result`).
    pub id: String,
    pub view: Option<TestView>,
    pub error: Option<String>,
}

impl TestResult {
    pub fn empty(t: &Tr, id: &str) -> Self {
        TestResult {
            t: t.clone(),
            id: id.into(),
            view: None,
            error: None,
        }
    }

    /// From a test send's answer.
    pub fn of(t: &Tr, id: &str, outcome: nudge_app::Result<TestOutcome>) -> Self {
        let mut r = Self::empty(t, id);
        match outcome {
            Ok(o) => r.view = Some(test_view(t, &o)),
            Err(e) => r.error = Some(e.to_string()),
        }
        r
    }

    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

#[derive(Template)]
#[template(path = "channels.html")]
struct ChannelsPage {
    c: Chrome,
    admin: bool,
    cards: Vec<Card>,
    email: EmailForm,
    sms: SmsForm,
    secrets: Secrets,
    email_errors: FieldErrors,
    sms_errors: FieldErrors,
    email_test: TestResult,
    sms_test: TestResult,
    saved: bool,
    push_key: Option<String>,
    tls_modes: [SmtpTls; 4],
}

impl ChannelsPage {
    fn card(&self, kind: &str) -> Option<&Card> {
        self.cards.iter().find(|c| c.kind == kind)
    }
}

/// What a page shows besides the channels: a form posted back with its errors, or
/// a test's outcome.
#[derive(Default)]
struct Posted {
    email: Option<(EmailForm, FieldErrors)>,
    sms: Option<(SmsForm, FieldErrors)>,
    email_test: Option<TestResult>,
    sms_test: Option<TestResult>,
    saved: bool,
}

const EMAIL_FIELDS: &[&str] = &[
    "host",
    "port",
    "tls",
    "user",
    "password",
    "from_name",
    "from_address",
    "pool",
    "rate",
    "dkim_selector",
    "dkim_domain",
    "dkim_key",
];
const SMS_FIELDS: &[&str] = &["base_url", "account", "token", "from"];

/// An application error next to the form's field it names, else at the form's top.
fn errors_at(e: &nudge_app::AppError, fields: &[&str]) -> FieldErrors {
    let mut errors = FieldErrors::from_app(e);
    for (field, _) in errors.0.iter_mut() {
        if !fields.contains(&field.as_str()) {
            field.clear();
        }
    }
    errors
}

async fn render_page(state: &WebState, viewer: &Viewer, posted: Posted) -> Response {
    let t = &viewer.t;
    let app = state.app();
    let statuses = match app.channels(Some(HEALTH_WAIT)).await {
        Ok(s) => s,
        Err(e) => return render::app_error(t, e),
    };
    let admin = viewer.session.user.role.allows(Permission::Administer);
    let (stored_email, stored_sms) = if admin {
        match (app.stored_channel("email").await, app.stored_channel("sms").await) {
            (Ok(e), Ok(s)) => (e, s),
            (Err(e), _) | (_, Err(e)) => return render::app_error(t, e),
        }
    } else {
        (None, None)
    };
    let status = |kind: &str| statuses.iter().find(|s| s.kind == kind);
    let failed = posted.email.as_ref().is_some_and(|(_, e)| !e.0.is_empty())
        || posted.sms.as_ref().is_some_and(|(_, e)| !e.0.is_empty())
        || posted.email_test.as_ref().is_some_and(TestResult::failed)
        || posted.sms_test.as_ref().is_some_and(TestResult::failed);
    let (email, email_errors) = posted.email.unwrap_or_else(|| {
        (
            EmailForm::of(stored_email.as_ref(), status("email")),
            FieldErrors::default(),
        )
    });
    let (sms, sms_errors) = posted
        .sms
        .unwrap_or_else(|| (SmsForm::of(stored_sms.as_ref(), status("sms")), FieldErrors::default()));
    let mut resp = render::page(&ChannelsPage {
        c: viewer.chrome("settings", "/settings/channels"),
        admin,
        cards: statuses.iter().map(|s| card(t, s)).collect(),
        email,
        sms,
        secrets: Secrets::of(stored_email.as_ref(), stored_sms.as_ref()),
        email_errors,
        sms_errors,
        email_test: posted
            .email_test
            .unwrap_or_else(|| TestResult::empty(t, "email-test-result")),
        sms_test: posted
            .sms_test
            .unwrap_or_else(|| TestResult::empty(t, "sms-test-result")),
        saved: posted.saved,
        push_key: state.api.push_public_key.clone(),
        tls_modes: SmtpTls::ALL,
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

/// `GET /settings/channels`: everyone sees the channels; owners get the forms.
pub async fn page(State(state): State<WebState>, viewer: Viewer, Query(q): Query<SavedQuery>) -> Response {
    let posted = Posted {
        saved: q.saved.is_some(),
        ..Default::default()
    };
    render_page(&state, &viewer, posted).await
}

/// `POST /settings/channels/{kind}` (`email` or `sms`): the channel's form.
pub async fn configure(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(kind): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    let t = &viewer.t;
    let mut posted = Posted::default();
    let settings = match kind.as_str() {
        "email" => {
            let f: EmailForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            let s = f.settings(t);
            match s {
                Ok(s) => {
                    posted.email = Some((f, FieldErrors::default()));
                    s
                }
                Err(errors) => {
                    posted.email = Some((f, errors));
                    return render_page(&state, &viewer, posted).await;
                }
            }
        }
        "sms" => {
            let f: SmsForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            let s = f.settings();
            posted.sms = Some((f, FieldErrors::default()));
            s
        }
        _ => return render::error(t, StatusCode::NOT_FOUND, t.get("channel-not-configurable")),
    };
    match state.app().configure_channel_settings(&kind, settings, None).await {
        Ok(_) => {
            super::dashboard::forget_health();
            Redirect::to(&format!("/settings/channels?saved={kind}#{kind}")).into_response()
        }
        Err(e) => {
            if let Some((_, errors)) = &mut posted.email {
                *errors = errors_at(&e, EMAIL_FIELDS);
            }
            if let Some((_, errors)) = &mut posted.sms {
                *errors = errors_at(&e, SMS_FIELDS);
            }
            render_page(&state, &viewer, posted).await
        }
    }
}

/// `POST /settings/channels/{kind}/reset`: back to the server's settings.
pub async fn reset(State(state): State<WebState>, viewer: Viewer, Path(kind): Path<String>) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    match state.app().reset_channel(&kind, None).await {
        Ok(_) => {
            super::dashboard::forget_health();
            Redirect::to(&format!("/settings/channels?saved={kind}#{kind}")).into_response()
        }
        Err(e) => render::app_error(&viewer.t, e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TestForm {
    to: String,
}

/// `POST /settings/channels/{kind}/test`: one test message to the address typed.
/// htmx gets the outcome's box; a plain form post, the page with it.
pub async fn test(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(kind): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    let t = &viewer.t;
    if !config::CONFIGURABLE.contains(&kind.as_str()) {
        return render::error(t, StatusCode::NOT_FOUND, t.get("channel-not-configurable"));
    }
    let f: TestForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let text = TestText {
        subject: t.get("test-subject"),
        body: t.get("test-body"),
    };
    let outcome = state.app().send_channel_test(&kind, &f.to, &text).await;
    let result = TestResult::of(t, &format!("{kind}-test-result"), outcome);
    if headers.contains_key("hx-request") {
        return render::page(&result);
    }
    let mut posted = Posted::default();
    if kind == "email" {
        posted.email_test = Some(result);
    } else {
        posted.sms_test = Some(result);
    }
    render_page(&state, &viewer, posted).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_email_form_reads_a_stored_configuration_back_without_secrets() {
        let stored = ChannelConfig::Smtp {
            url: "smtps://apikey:secret@smtp.example.com:465".into(),
            from: "Shop <shop@example.com>".into(),
            pool: Some(4),
            rate: Some(2.5),
            dkim: None,
        };
        let f = EmailForm::of(Some(&stored), None);
        assert_eq!(
            (f.host.as_str(), f.port.as_str(), f.tls.as_str(), f.user.as_str()),
            ("smtp.example.com", "465", "tls", "apikey")
        );
        assert_eq!(
            (f.from_name.as_str(), f.from_address.as_str()),
            ("Shop", "shop@example.com")
        );
        assert_eq!((f.pool.as_str(), f.rate.as_str()), ("4", "2.5"));
        assert!(f.password.is_empty());
        assert!(Secrets::of(Some(&stored), None).password);
        // A channel from the server's settings shows its server, not its user.
        let running = ChannelStatus {
            kind: "email",
            transport: "smtp",
            health: Ok(()),
            settings: json!({"server": "smtp://***@relay.example:2525?tls=required", "from": "a@b.c", "dkim": null}),
            source: ChannelSource::Settings,
        };
        let f = EmailForm::of(None, Some(&running));
        assert_eq!(
            (
                f.host.as_str(),
                f.port.as_str(),
                f.user.as_str(),
                f.from_address.as_str()
            ),
            ("relay.example", "2525", "", "a@b.c")
        );
    }

    #[test]
    fn the_email_form_becomes_settings_or_names_the_number_at_fault() {
        let t = Tr::new(crate::i18n::Lang::En, jiff::tz::TimeZone::UTC, Default::default());
        let f = EmailForm {
            transport: "smtp".into(),
            host: "h".into(),
            port: "2525".into(),
            tls: "none".into(),
            from_address: "a@b.c".into(),
            ..Default::default()
        };
        match f.settings(&t) {
            Ok(ChannelSettings::Smtp(s)) => {
                assert_eq!((s.port, s.tls, s.password, s.dkim), (2525, SmtpTls::None, None, None))
            }
            other => panic!("{other:?}"),
        }
        for (field, value) in [("port", "70000"), ("port", ""), ("pool", "many"), ("rate", "fast")] {
            let mut bad = f.clone();
            match field {
                "port" => bad.port = value.into(),
                "pool" => bad.pool = value.into(),
                _ => bad.rate = value.into(),
            }
            let errors = bad.settings(&t).unwrap_err();
            assert!(errors.of(field).is_some(), "{field}={value}");
        }
        let persian = EmailForm {
            port: "۲۵۲۵".into(),
            rate: "٠٫٥".into(),
            ..f.clone()
        };
        match persian.settings(&t) {
            Ok(ChannelSettings::Smtp(s)) => assert_eq!((s.port, s.rate), (2525, Some(0.5))),
            other => panic!("{other:?}"),
        }
        let capture = EmailForm {
            transport: "capture".into(),
            port: "nonsense".into(),
            ..Default::default()
        };
        assert!(matches!(capture.settings(&t), Ok(ChannelSettings::Capture)));
    }
}
