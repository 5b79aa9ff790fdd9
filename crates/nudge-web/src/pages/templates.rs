//! Templates: the list, the editor (email in MJML or HTML, SMS, push, webhook; Liquid
//! everywhere) with a side-by-side live preview rendered as a chosen contact or as
//! sample data, errors at their field and line, desktop and mobile widths, "Send a
//! test" to an address, and versions with a diff.

use super::channels::TestResult;
use crate::WebState;
use crate::auth::{FieldErrors, Viewer};
use crate::render::{self, Chrome};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use nudge_app::AppError;
use nudge_app::channels::TemplateTest;
use nudge_app::messages::Recipient;
use nudge_app::templates::{PreviewAs, TemplateInput, TemplateRefusal};
use nudge_core::access::Permission;
use nudge_messages::template::{
    Content, EmailContent, PushContent, Rendered, SmsContent, TemplateError, WebhookContent,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const CHANNELS: [&str; 4] = ["email", "sms", "push", "webhook"];
const DEFAULT_SAMPLE: &str = r#"{"traits": {"first_name": "Ada", "plan": "pro"}}"#;

/// The editor's fields, as posted (every channel's fields; the channel picks).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TemplateForm {
    pub name: String,
    pub description: String,
    pub topic: String,
    pub transactional: Option<String>,
    pub channel: String,
    pub subject: String,
    pub preheader: String,
    pub from: String,
    pub reply_to: String,
    /// `mjml` or `html`.
    pub body_kind: String,
    pub body: String,
    pub text: String,
    pub sms_body: String,
    pub push_title: String,
    pub push_body: String,
    pub push_url: String,
    pub webhook_method: String,
    pub webhook_url: String,
    /// One `Name: value` per line.
    pub webhook_headers: String,
    pub webhook_body: String,
    /// Preview as this contact (e-mail address, user id or `#id`); sample data when empty.
    pub preview_as: String,
    pub sample: String,
    /// Where "Send a test" sends to (an e-mail address or phone number).
    pub test_to: String,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl TemplateForm {
    /// The content the fields describe; `Err` names the field that cannot be read.
    pub fn content(&self) -> Result<Content, (String, String)> {
        Ok(match self.channel.as_str() {
            "email" => {
                let body = opt(&self.body);
                let (mjml, html) = if self.body_kind == "html" {
                    (None, body)
                } else {
                    (body, None)
                };
                Content::Email(EmailContent {
                    subject: self.subject.clone(),
                    preheader: opt(&self.preheader),
                    from: opt(&self.from),
                    reply_to: opt(&self.reply_to),
                    mjml,
                    html,
                    text: opt(&self.text),
                })
            }
            "sms" => Content::Sms(SmsContent {
                body: self.sms_body.clone(),
            }),
            "push" => Content::Push(PushContent {
                title: self.push_title.clone(),
                body: self.push_body.clone(),
                url: opt(&self.push_url),
            }),
            "webhook" => {
                let mut headers = BTreeMap::new();
                for (i, line) in self
                    .webhook_headers
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    let Some((k, v)) = line.split_once(':') else {
                        return Err((
                            "webhook_headers".into(),
                            format!("line {}: write a header as `Name: value`", i + 1),
                        ));
                    };
                    headers.insert(k.trim().to_owned(), v.trim().to_owned());
                }
                Content::Webhook(WebhookContent {
                    method: opt(&self.webhook_method).unwrap_or_else(|| "POST".into()),
                    url: self.webhook_url.clone(),
                    headers,
                    body: self.webhook_body.clone(),
                })
            }
            other => {
                return Err((
                    "channel".into(),
                    format!("{other:?} is not a channel: email, sms, push or webhook"),
                ));
            }
        })
    }

    /// The fields of a stored template.
    pub fn of(t: &nudge_store::Template) -> Self {
        let mut f = TemplateForm {
            name: t.name.clone(),
            description: t.description.clone(),
            topic: t.topic.clone().unwrap_or_default(),
            transactional: t.transactional.then(|| "on".to_owned()),
            sample: DEFAULT_SAMPLE.into(),
            ..Default::default()
        };
        f.set_content(serde_json::from_value(t.content.clone()).ok());
        f.channel = t.channel.clone();
        f
    }

    fn set_content(&mut self, content: Option<Content>) {
        match content {
            Some(Content::Email(e)) => {
                self.channel = "email".into();
                self.subject = e.subject;
                self.preheader = e.preheader.unwrap_or_default();
                self.from = e.from.unwrap_or_default();
                self.reply_to = e.reply_to.unwrap_or_default();
                (self.body_kind, self.body) = match (e.mjml, e.html) {
                    (Some(m), _) => ("mjml".into(), m),
                    (None, Some(h)) => ("html".into(), h),
                    (None, None) => ("mjml".into(), String::new()),
                };
                self.text = e.text.unwrap_or_default();
            }
            Some(Content::Sms(s)) => {
                self.channel = "sms".into();
                self.sms_body = s.body;
            }
            Some(Content::Push(p)) => {
                self.channel = "push".into();
                self.push_title = p.title;
                self.push_body = p.body;
                self.push_url = p.url.unwrap_or_default();
            }
            Some(Content::Webhook(w)) => {
                self.channel = "webhook".into();
                self.webhook_method = w.method;
                self.webhook_url = w.url;
                self.webhook_headers = w.headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
                self.webhook_body = w.body;
            }
            None => {}
        }
    }

    /// A new template of `channel`, with a starting point to edit.
    pub fn new_of(channel: &str) -> Self {
        let mut f = TemplateForm {
            channel: channel.into(),
            body_kind: "mjml".into(),
            sample: DEFAULT_SAMPLE.into(),
            ..Default::default()
        };
        match channel {
            "email" => {
                f.subject = "Hello {{ contact.traits.first_name | default: \"there\" }}".into();
                f.body = "<mjml>\n  <mj-body>\n    <mj-section>\n      <mj-column>\n        <mj-text font-size=\"18px\">Hi {{ contact.traits.first_name | default: \"there\" }},</mj-text>\n        <mj-text>Write your message here.</mj-text>\n        <mj-button href=\"https://shop.example\">Visit the shop</mj-button>\n      </mj-column>\n    </mj-section>\n  </mj-body>\n</mjml>\n".into();
            }
            "sms" => f.sms_body = "Hi {{ contact.traits.first_name }}, ".into(),
            "push" => f.push_title = "Hi {{ contact.traits.first_name }}".into(),
            "webhook" => {
                f.webhook_method = "POST".into();
                f.webhook_url = "https://".into();
                f.webhook_body = "{\"contact\": {{ contact.id }}}".into();
            }
            _ => {}
        }
        f
    }

    fn input(&self) -> Result<TemplateInput, (String, String)> {
        Ok(TemplateInput {
            name: self.name.clone(),
            description: self.description.trim().to_owned(),
            transactional: self.transactional.is_some(),
            topic: opt(&self.topic),
            content: self.content()?,
        })
    }

    fn is(&self, channel: &str) -> bool {
        self.channel == channel
    }
}

/// The editor field a content problem belongs to.
fn field_of(channel: &str, e: &TemplateError) -> String {
    let f = e.field.as_str();
    match (channel, f) {
        ("email", "mjml" | "html") => "body".into(),
        ("email", _) => f.into(),
        ("sms", _) => "sms_body".into(),
        ("push", _) => format!("push_{f}"),
        ("webhook", f) if f.starts_with("headers") => "webhook_headers".into(),
        ("webhook", _) => format!("webhook_{f}"),
        _ => String::new(),
    }
}

/// Content problems as errors next to their fields, with their line.
fn content_errors(t: &crate::i18n::Tr, channel: &str, errors: &[TemplateError]) -> FieldErrors {
    FieldErrors(
        errors
            .iter()
            .map(|e| {
                let message = match e.line {
                    Some(l) => t.args("template-error-line", &[("line", &l), ("message", &e.message)]),
                    None => e.message.clone(),
                };
                (field_of(channel, e), message)
            })
            .collect(),
    )
}

pub struct TemplateRow {
    pub id: i64,
    pub name: String,
    pub channel: String,
    pub version: i64,
    pub updated: String,
    pub topic: String,
    pub transactional: bool,
}

#[derive(Template)]
#[template(path = "templates.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<TemplateRow>,
    channels: [&'static str; 4],
}

/// `GET /templates`
pub async fn list(State(state): State<WebState>, viewer: Viewer) -> Response {
    let t = &viewer.t;
    let templates = match state.api.store.templates().await {
        Ok(list) => list,
        Err(e) => return render::app_error(t, e.into()),
    };
    let rows = templates
        .into_iter()
        .map(|x| TemplateRow {
            id: x.id,
            name: x.name,
            channel: x.channel,
            version: x.version,
            updated: t.datetime(x.updated_at),
            topic: x.topic.unwrap_or_default(),
            transactional: x.transactional,
        })
        .collect();
    render::page(&ListPage {
        c: viewer.chrome("templates", "/templates"),
        rows,
        channels: CHANNELS,
    })
}

pub struct VersionRow {
    pub version: i64,
    pub created: String,
}

#[derive(Template)]
#[template(path = "template_edit.html")]
struct EditPage {
    c: Chrome,
    id: Option<i64>,
    version: i64,
    f: TemplateForm,
    errors: FieldErrors,
    saved: bool,
    versions: Vec<VersionRow>,
    preview: PreviewPane,
    /// The outcome of the last "Send a test".
    test: TestResult,
}

impl EditPage {
    fn action(&self) -> String {
        match self.id {
            Some(id) => format!("/templates/{id}"),
            None => "/templates".into(),
        }
    }

    fn test_action(&self) -> String {
        match self.id {
            Some(id) => format!("/templates/{id}/test"),
            None => "/templates/test".into(),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct NewQuery {
    channel: Option<String>,
}

/// `GET /templates/new?channel=email`
pub async fn new_page(State(state): State<WebState>, viewer: Viewer, Query(q): Query<NewQuery>) -> Response {
    let channel = q
        .channel
        .filter(|c| CHANNELS.contains(&c.as_str()))
        .unwrap_or_else(|| "email".into());
    let f = TemplateForm::new_of(&channel);
    let preview = preview_pane(&state, &viewer, &f).await;
    render::page(&EditPage {
        c: viewer.chrome("templates", format!("/templates/new?channel={channel}")),
        id: None,
        version: 0,
        f,
        errors: FieldErrors::default(),
        saved: false,
        versions: Vec::new(),
        preview,
        test: TestResult::empty(&viewer.t, "test-result"),
    })
}

#[derive(Deserialize, Default)]
pub struct EditQuery {
    saved: Option<String>,
}

async fn versions(state: &WebState, t: &crate::i18n::Tr, id: i64) -> Vec<VersionRow> {
    let mut v: Vec<VersionRow> = state
        .api
        .store
        .template_versions(id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|v| VersionRow {
            version: v.version,
            created: t.datetime(v.created_at),
        })
        .collect();
    v.sort_by_key(|r| std::cmp::Reverse(r.version));
    v
}

/// `GET /templates/{id}`
pub async fn edit_page(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<EditQuery>,
) -> Response {
    let t = &viewer.t;
    let tpl = match state.api.store.template(id).await {
        Ok(Some(tpl)) => tpl,
        Ok(None) => return render::error(t, StatusCode::NOT_FOUND, t.arg("template-not-found", "id", id)),
        Err(e) => return render::app_error(t, e.into()),
    };
    let f = TemplateForm::of(&tpl);
    let preview = preview_pane(&state, &viewer, &f).await;
    render::page(&EditPage {
        c: viewer.chrome("templates", format!("/templates/{id}")),
        id: Some(id),
        version: tpl.version,
        f,
        errors: FieldErrors::default(),
        saved: q.saved.is_some(),
        versions: versions(&state, t, id).await,
        preview,
        test: TestResult::empty(t, "test-result"),
    })
}

/// The editor with posted fields, after a refusal (their errors) or a test (its
/// outcome): `400` when something was refused.
async fn editor(
    state: &WebState,
    viewer: &Viewer,
    id: Option<i64>,
    f: TemplateForm,
    errors: FieldErrors,
    test: TestResult,
) -> Response {
    let t = &viewer.t;
    let preview = preview_pane(state, viewer, &f).await;
    let version = match id {
        Some(id) => state
            .api
            .store
            .template(id)
            .await
            .ok()
            .flatten()
            .map_or(0, |x| x.version),
        None => 0,
    };
    let failed = !errors.0.is_empty() || test.failed();
    let mut resp = render::page(&EditPage {
        c: viewer.chrome(
            "templates",
            id.map_or("/templates/new".into(), |i| format!("/templates/{i}")),
        ),
        id,
        version,
        f,
        errors,
        saved: false,
        versions: match id {
            Some(id) => versions(state, t, id).await,
            None => Vec::new(),
        },
        preview,
        test,
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

async fn save(state: WebState, viewer: Viewer, id: Option<i64>, f: TemplateForm) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    let now = state.now();
    let refused = |errors: FieldErrors| {
        editor(
            &state,
            &viewer,
            id,
            f.clone(),
            errors,
            TestResult::empty(t, "test-result"),
        )
    };
    let input = match f.input() {
        Ok(i) => i,
        Err((field, message)) => return refused(FieldErrors(vec![(field, message)])).await,
    };
    let new = match nudge_app::templates::check(input) {
        Ok(n) => n,
        Err(TemplateRefusal::Field { field, message }) => {
            return refused(FieldErrors(vec![(field.into(), message)])).await;
        }
        Err(TemplateRefusal::Content(errors)) => return refused(content_errors(t, &f.channel, &errors)).await,
    };
    let store = &state.api.store;
    let saved = match id {
        Some(id) => store.update_template(id, new, now).await.map(|t| t.map(|t| t.id)),
        None => store.create_template(new, now).await.map(|t| Some(t.id)),
    };
    match saved {
        Ok(Some(id)) => Redirect::to(&format!("/templates/{id}?saved=1")).into_response(),
        Ok(None) => render::error(
            t,
            StatusCode::NOT_FOUND,
            t.arg("template-not-found", "id", id.unwrap_or(0)),
        ),
        Err(nudge_store::StoreError::Conflict(m)) => refused(FieldErrors(vec![(String::new(), m)])).await,
        Err(e) => render::app_error(t, e.into()),
    }
}

/// `POST /templates`
pub async fn create(State(state): State<WebState>, viewer: Viewer, Form(f): Form<TemplateForm>) -> Response {
    save(state, viewer, None, f).await
}

/// `POST /templates/{id}`: a new version.
pub async fn update(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(f): Form<TemplateForm>,
) -> Response {
    save(state, viewer, Some(id), f).await
}

/// `POST /templates/{id}/delete`
pub async fn delete(State(state): State<WebState>, viewer: Viewer, Path(id): Path<i64>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    match state.app().delete_template(id).await {
        Ok(()) => Redirect::to("/templates").into_response(),
        Err(AppError::NotFound { .. }) => {
            render::error(t, StatusCode::NOT_FOUND, t.arg("template-not-found", "id", id))
        }
        Err(e) => render::app_error(t, e),
    }
}

/// What the preview pane shows.
#[derive(Template)]
#[template(path = "template_preview.html")]
pub struct PreviewPane {
    t: crate::i18n::Tr,
    /// Where the sandboxed frame loads the rendered e-mail from.
    frame: Option<String>,
    rendered: Option<Rendered>,
    errors: Vec<String>,
    /// SMS: characters and segments.
    sms_info: Option<String>,
}

pub(crate) async fn preview_pane(state: &WebState, viewer: &Viewer, f: &TemplateForm) -> PreviewPane {
    let t = &viewer.t;
    let mut pane = PreviewPane {
        t: t.clone(),
        frame: None,
        rendered: None,
        errors: Vec::new(),
        sms_info: None,
    };
    let content = match f.content() {
        Ok(c) => c,
        Err((_, message)) => {
            pane.errors.push(message);
            return pane;
        }
    };
    let who = match render_as(t, f) {
        Ok(who) => who,
        Err(message) => {
            pane.errors.push(message);
            return pane;
        }
    };
    match state.app().preview_template(&content, who, json!({}), json!({})).await {
        Ok(p) => {
            pane.errors = p.errors.iter().map(|e| e.to_string()).collect();
            if let Some(Rendered::Email { html, .. }) = &p.rendered {
                pane.frame = Some(format!("/templates/rendered/{}", keep_rendered(html.clone())));
            }
            if let Some(Rendered::Sms { body }) = &p.rendered {
                let chars = body.chars().count();
                let gsm = body.is_ascii();
                let per = if gsm { 160 } else { 70 };
                let segments = if chars <= per {
                    1
                } else {
                    chars.div_ceil(if gsm { 153 } else { 67 })
                };
                pane.sms_info = Some(t.args(
                    "template-sms-chars",
                    &[("chars", &t.num(chars)), ("segments", &t.num(segments))],
                ));
            }
            pane.rendered = p.rendered;
        }
        Err(nudge_app::AppError::NotFound { .. }) => {
            pane.errors
                .push(t.arg("template-no-contact", "who", f.preview_as.trim()))
        }
        Err(e) => pane.errors.push(e.to_string()),
    }
    pane
}

/// Whom the editor renders as: the contact named in "Preview as", else the sample
/// data (which must be a JSON object).
fn render_as(t: &crate::i18n::Tr, f: &TemplateForm) -> Result<PreviewAs, String> {
    match opt(&f.preview_as) {
        Some(x) => Ok(PreviewAs::Contact(recipient(&x))),
        None => match serde_json::from_str::<Value>(if f.sample.trim().is_empty() { "{}" } else { &f.sample }) {
            Ok(v @ Value::Object(_)) => Ok(PreviewAs::Sample(v)),
            _ => Err(t.get("template-sample-not-json")),
        },
    }
}

/// `#12` is a contact id, an address with `@` an e-mail, anything else a user id.
fn recipient(s: &str) -> Recipient {
    if let Some(id) = s.strip_prefix('#').and_then(|n| n.parse().ok()) {
        Recipient::ContactId(id)
    } else if s.contains('@') {
        Recipient::Email(s.to_owned())
    } else {
        Recipient::UserId(s.to_owned())
    }
}

/// `POST /templates/preview` (htmx): the preview pane for the editor's fields.
pub async fn preview(State(state): State<WebState>, viewer: Viewer, Form(f): Form<TemplateForm>) -> Response {
    render::page(&preview_pane(&state, &viewer, &f).await)
}

/// "Send a test": the editor's content as it is (saved or not), rendered as the
/// preview renders it, sent once to the address typed (`nudge_app::channels`).
/// htmx gets the outcome's box; a plain form post, the editor with it.
async fn test(state: WebState, viewer: Viewer, headers: HeaderMap, id: Option<i64>, f: TemplateForm) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    let outcome = match (f.content(), render_as(t, &f)) {
        (Err((_, message)), _) | (_, Err(message)) => Err(nudge_app::AppError::invalid_field("content", message)),
        (Ok(content), Ok(who)) => {
            state
                .app()
                .send_template_test(TemplateTest {
                    content,
                    render_as: who,
                    to: f.test_to.clone(),
                })
                .await
        }
    };
    let result = TestResult::of(t, "test-result", outcome);
    if headers.contains_key("hx-request") {
        return render::page(&result);
    }
    editor(&state, &viewer, id, f, FieldErrors::default(), result).await
}

/// `POST /templates/{id}/test`
pub async fn test_saved(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<TemplateForm>,
) -> Response {
    test(state, viewer, headers, Some(id), f).await
}

/// `POST /templates/test`: a test of a template not saved yet.
pub async fn test_new(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form<TemplateForm>,
) -> Response {
    test(state, viewer, headers, None, f).await
}

/// Rendered e-mails wait here for their preview frame to load them.
static RENDERED: Mutex<Option<HashMap<String, (Instant, String)>>> = Mutex::new(None);
const RENDERED_TTL: Duration = Duration::from_secs(600);
const RENDERED_MAX: usize = 256;

fn keep_rendered(html: String) -> String {
    let token = hex::encode(rand::random::<[u8; 16]>());
    let mut guard = RENDERED.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    map.retain(|_, (at, _)| at.elapsed() < RENDERED_TTL);
    if map.len() >= RENDERED_MAX
        && let Some(oldest) = map.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    map.insert(token.clone(), (Instant::now(), html));
    token
}

/// `GET /templates/rendered/{token}`: a rendered e-mail for the preview frame, with a
/// policy of its own: its inline styles and images are allowed, scripts never (the
/// frame is also sandboxed), and only this site may frame it.
pub async fn rendered(_viewer: Viewer, Path(token): Path<String>) -> Response {
    let html = RENDERED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(&token).map(|(_, h)| h.clone()));
    let Some(html) = html else {
        return (
            StatusCode::NOT_FOUND,
            "this preview has expired; edit to render it again",
        )
            .into_response();
    };
    let mut resp = axum::response::Html(html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; font-src * data:; frame-ancestors 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    resp
}

#[derive(Template)]
#[template(path = "template_diff.html")]
struct DiffPage {
    c: Chrome,
    id: i64,
    name: String,
    versions: Vec<VersionRow>,
    a: i64,
    b: i64,
    lines: Vec<(char, String)>,
}

#[derive(Deserialize, Default)]
pub struct DiffQuery {
    a: Option<i64>,
    b: Option<i64>,
}

/// The content of a version as lines to compare: one field after another, each
/// field's text as it is written.
fn content_lines(content: &Value) -> String {
    let mut out = String::new();
    if let Value::Object(o) = content {
        for (k, v) in o {
            out.push_str(&format!("── {k} ──\n"));
            out.push_str(&render::show_value(v, true));
            out.push('\n');
        }
    }
    out
}

/// The lines of `new` against `old`: `' '` kept, `'-'` removed, `'+'` added.
pub fn diff(old: &str, new: &str) -> Vec<(char, String)> {
    similar::TextDiff::from_lines(old, new)
        .iter_all_changes()
        .map(|c| {
            let sign = match c.tag() {
                similar::ChangeTag::Equal => ' ',
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
            };
            (sign, c.value().trim_end_matches('\n').to_owned())
        })
        .collect()
}

/// `GET /templates/{id}/versions?a=1&b=2`: two versions side by side as a diff.
pub async fn versions_page(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<DiffQuery>,
) -> Response {
    let t = &viewer.t;
    let store = &state.api.store;
    let tpl = match store.template(id).await {
        Ok(Some(x)) => x,
        Ok(None) => return render::error(t, StatusCode::NOT_FOUND, t.arg("template-not-found", "id", id)),
        Err(e) => return render::app_error(t, e.into()),
    };
    let b = q.b.unwrap_or(tpl.version);
    let a = q.a.unwrap_or((b - 1).max(1));
    let (va, vb) = match (store.template_version(id, a).await, store.template_version(id, b).await) {
        (Ok(Some(va)), Ok(Some(vb))) => (va, vb),
        (Err(e), _) | (_, Err(e)) => return render::app_error(t, e.into()),
        _ => return render::error(t, StatusCode::NOT_FOUND, t.get("template-no-version")),
    };
    render::page(&DiffPage {
        c: viewer.chrome("templates", format!("/templates/{id}/versions?a={a}&b={b}")),
        id,
        name: tpl.name,
        versions: versions(&state, t, id).await,
        a,
        b,
        lines: diff(&content_lines(&va.content), &content_lines(&vb.content)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_round_trips_through_the_form() {
        let contents = [
            Content::Email(EmailContent {
                subject: "Hi {{ contact.email }}".into(),
                preheader: Some("pre".into()),
                from: Some("Shop <s@shop.example>".into()),
                reply_to: None,
                mjml: Some("<mjml><mj-body></mj-body></mjml>".into()),
                html: None,
                text: Some("plain".into()),
            }),
            Content::Email(EmailContent {
                subject: "s".into(),
                html: Some("<p>x</p>".into()),
                ..Default::default()
            }),
            Content::Sms(SmsContent { body: "b".into() }),
            Content::Push(PushContent {
                title: "t".into(),
                body: "b".into(),
                url: Some("https://x.example".into()),
            }),
            Content::Webhook(WebhookContent {
                method: "PUT".into(),
                url: "https://h.example".into(),
                headers: [("X-Key".to_string(), "v: 1".to_string())].into(),
                body: "{}".into(),
            }),
        ];
        for c in contents {
            let mut f = TemplateForm::default();
            f.set_content(Some(c.clone()));
            assert_eq!(f.content().unwrap(), c);
        }
    }

    #[test]
    fn unreadable_fields_are_named() {
        let mut f = TemplateForm::new_of("webhook");
        f.webhook_headers = "X-Ok: 1\nno colon here".into();
        assert_eq!(f.content().unwrap_err().0, "webhook_headers");
        f.channel = "fax".into();
        assert_eq!(f.content().unwrap_err().0, "channel");
    }

    #[test]
    fn content_problems_land_on_their_fields() {
        let e = |field: &str| TemplateError {
            field: field.into(),
            line: Some(3),
            message: "m".into(),
        };
        assert_eq!(field_of("email", &e("mjml")), "body");
        assert_eq!(field_of("email", &e("subject")), "subject");
        assert_eq!(field_of("sms", &e("body")), "sms_body");
        assert_eq!(field_of("push", &e("title")), "push_title");
        assert_eq!(field_of("webhook", &e("headers.X-Key")), "webhook_headers");
        assert_eq!(field_of("webhook", &e("url")), "webhook_url");
    }

    #[test]
    fn diffs_mark_removed_and_added_lines() {
        let d = diff("a\nb\nc\n", "a\nc\nd\n");
        assert_eq!(
            d,
            vec![
                (' ', "a".into()),
                ('-', "b".into()),
                (' ', "c".into()),
                ('+', "d".into())
            ]
        );
    }

    #[test]
    fn preview_recipients_read_ids_emails_and_user_ids() {
        assert_eq!(recipient("#12"), Recipient::ContactId(12));
        assert_eq!(recipient("a@b.example"), Recipient::Email("a@b.example".into()));
        assert_eq!(recipient("cust-1"), Recipient::UserId("cust-1".into()));
    }
}
