//! Contacts: search, and a contact's profile with its timeline.

use crate::WebState;
use crate::auth::Viewer;
use crate::render::{self, Chrome};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use nudge_core::{Contact, ContactId, Millis};
use nudge_store::{EventCursor, EventQuery, MessageQuery, StoredEvent};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

const PAGE: usize = 50;
const TIMELINE_PAGE: usize = 25;

/// A contact as a row of the list.
pub struct ContactRow {
    pub id: ContactId,
    pub email: String,
    pub user_id: String,
    pub name: String,
    pub created_at: String,
    pub last_seen: String,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// Part of an e-mail address, user id, phone number or name.
    #[serde(default)]
    q: String,
    /// A trait filter: `key` equals `value`.
    #[serde(default)]
    trait_key: String,
    #[serde(default)]
    trait_value: String,
    after: Option<String>,
    /// Set after a contact was erased, for the notice.
    erased: Option<String>,
    /// Search for contacts whose address or id contains `q`, not only the one whose
    /// address or id is `q`.
    contains: Option<String>,
}

#[derive(Template)]
#[template(path = "contacts.html")]
struct ListPage {
    c: Chrome,
    q: String,
    trait_key: String,
    trait_value: String,
    rows: Vec<ContactRow>,
    next: Option<String>,
    total: u64,
    error: Option<String>,
    erased: bool,
    /// The list shows the contact whose e-mail address or user id is the search term;
    /// this link searches every contact that contains it.
    contains_link: Option<String>,
}

fn next_url(q: &ListQuery, next: &str) -> String {
    let pairs = [
        ("q", q.q.as_str()),
        ("contains", q.contains.as_deref().unwrap_or("")),
        ("trait_key", q.trait_key.as_str()),
        ("trait_value", q.trait_value.as_str()),
        ("after", next),
    ];
    let query = serde_urlencoded::to_string(pairs.iter().filter(|(_, v)| !v.is_empty()).collect::<Vec<_>>())
        .unwrap_or_default();
    format!("/contacts?{query}")
}

/// The `after` cursor of a page of contacts: the contact id to continue after, or the
/// first page with a notice when the link is not valid.
pub(crate) fn after_cursor(t: &crate::i18n::Tr, raw: Option<&str>) -> (Option<ContactId>, Option<String>) {
    match raw.filter(|a| !a.is_empty()).map(str::parse::<ContactId>) {
        Some(Ok(id)) => (Some(id), None),
        Some(Err(_)) => (None, Some(t.get("contacts-bad-cursor"))),
        None => (None, None),
    }
}

/// `GET /contacts`
pub async fn list(State(state): State<WebState>, viewer: Viewer, Query(q): Query<ListQuery>) -> Response {
    let t = &viewer.t;
    let (after, error) = after_cursor(t, q.after.as_deref());
    let key = q.trait_key.trim();
    let search = nudge_app::contacts::ContactSearch {
        term: q.q.clone(),
        trait_filter: (!key.is_empty()).then(|| (key.to_owned(), typed(q.trait_value.trim()))),
        contains: q.contains.is_some(),
        after,
        limit: PAGE,
    };
    let (page, total) = match (
        state.app().search_contacts(&search).await,
        state.api.store.contact_count().await,
    ) {
        (Ok(p), Ok(n)) => (p, n),
        (Err(e), _) => return render::app_error(t, e),
        (_, Err(e)) => return render::app_error(t, e.into()),
    };
    // The one contact whose address or id is the term: offer every contact holding it.
    let contains_link = page.exact.then(|| {
        next_url(
            &ListQuery {
                q: q.q.clone(),
                contains: Some("1".into()),
                ..Default::default()
            },
            "",
        )
    });
    let rows = page
        .contacts
        .iter()
        .map(|c| ContactRow {
            id: c.id,
            email: c.email.clone().unwrap_or_default(),
            user_id: c.user_id.clone().unwrap_or_default(),
            name: c.display_name(),
            created_at: t.date(c.created_at),
            last_seen: c.last_seen_at.map(|m| t.datetime(m)).unwrap_or_default(),
        })
        .collect();
    let next = page.next.map(|n| next_url(&q, &n.to_string()));
    let here = next_url(&q, q.after.as_deref().unwrap_or(""));
    render::page(&ListPage {
        c: viewer.chrome("contacts", here),
        q: q.q,
        trait_key: q.trait_key,
        trait_value: q.trait_value,
        rows,
        next,
        total,
        error,
        erased: q.erased.is_some(),
        contains_link,
    })
}

/// A value as a list shows it: strings as they are, everything else as JSON.
fn show(v: &Value) -> String {
    render::show_value(v, false)
}

pub struct MembershipRow {
    pub segment_id: i64,
    pub segment: String,
    pub entered_at: String,
    pub exited_at: Option<String>,
}

pub struct RunRow {
    pub journey_id: i64,
    pub journey: String,
    pub status: String,
    pub step: String,
    pub entered_at: String,
}

pub struct MessageRow {
    pub id: i64,
    pub channel: String,
    pub template: String,
    pub state: String,
    pub created_at: String,
    pub subject: String,
}

pub struct EventRow {
    pub kind: String,
    pub name: String,
    pub at: String,
    pub properties: Vec<(String, String)>,
    pub context: String,
}

fn event_row(t: &crate::i18n::Tr, e: &StoredEvent) -> EventRow {
    EventRow {
        kind: e.kind.clone(),
        name: e.name.clone().unwrap_or_default(),
        at: t.datetime(e.timestamp),
        properties: e.properties.iter().map(|(k, v)| (k.clone(), show(v))).collect(),
        context: if e.context.is_empty() {
            String::new()
        } else {
            serde_json::to_string_pretty(&e.context).unwrap_or_default()
        },
    }
}

/// A contact's score now (lead scoring).
struct ScoreRow {
    score: String,
    value: String,
    stage: String,
    next_decay: String,
}

/// A change of a score (its history, `score_changes`): when, which score, from and to,
/// and the rules (or decay) that moved it.
struct ScoreChangeRow {
    at: String,
    score: String,
    previous: String,
    value: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "contact.html")]
struct ProfilePage {
    c: Chrome,
    contact: Contact,
    name: String,
    traits: Vec<(String, String)>,
    subscriptions: Vec<(String, String)>,
    created_at: String,
    last_seen: String,
    lead_score: Option<String>,
    scores: Vec<ScoreRow>,
    score_history: Vec<ScoreChangeRow>,
    /// The lifetime-value predictions, then the model's inputs.
    predictions: Option<(Vec<Labelled>, Vec<Labelled>)>,
    /// The send-time profile's best hours and confidence (docs/send-time.md).
    send_time: Vec<Labelled>,
    /// Whether the contact has no engagements of its own (the workspace's profile).
    send_time_borrowed: bool,
    /// Recommended products (docs/recommendations.md), each with why.
    recommendations: Vec<RecommendationRow>,
    memberships: Vec<MembershipRow>,
    runs: Vec<RunRow>,
    messages: Vec<MessageRow>,
    timeline: Timeline,
}

#[derive(Template)]
#[template(path = "timeline.html")]
struct Timeline {
    t: crate::i18n::Tr,
    contact: ContactId,
    events: Vec<EventRow>,
    next: Option<String>,
}

async fn timeline_of(
    state: &WebState,
    t: &crate::i18n::Tr,
    id: ContactId,
    before: Option<EventCursor>,
) -> Result<Timeline, nudge_app::AppError> {
    let page = state
        .api
        .store
        .contact_events(
            id,
            &EventQuery {
                before,
                limit: TIMELINE_PAGE,
            },
        )
        .await?;
    Ok(Timeline {
        t: t.clone(),
        contact: id,
        events: page.items.iter().map(|e| event_row(t, e)).collect(),
        next: page.next,
    })
}

fn parse_id(t: &crate::i18n::Tr, raw: &str) -> Result<ContactId, Response> {
    raw.parse::<ContactId>()
        .map_err(|_| render::error(t, StatusCode::NOT_FOUND, t.arg("contact-not-found", "id", raw)))
}

fn when(t: &crate::i18n::Tr, ms: Option<Millis>) -> String {
    ms.map(|m| t.datetime(m)).unwrap_or_default()
}

/// `GET /contacts/{id}`
pub async fn profile(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    let t = &viewer.t;
    let id = match parse_id(t, &raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match load_profile(&state, &viewer, id).await {
        Ok(Some(page)) => render::page(&page),
        Ok(None) => render::error(t, StatusCode::NOT_FOUND, t.arg("contact-not-found", "id", id)),
        Err(e) => render::app_error(t, e),
    }
}

async fn load_profile(
    state: &WebState,
    viewer: &Viewer,
    id: ContactId,
) -> Result<Option<ProfilePage>, nudge_app::AppError> {
    let t = &viewer.t;
    let store = &state.api.store;
    let Some(contact) = store.contact(id).await? else {
        return Ok(None);
    };
    let id = contact.id;
    let segments: HashMap<i64, String> = store.segments().await?.into_iter().map(|s| (s.id, s.name)).collect();
    let journeys: HashMap<i64, String> = store.journeys().await?.into_iter().map(|j| (j.id, j.name)).collect();
    let templates: HashMap<i64, String> = store.templates().await?.into_iter().map(|j| (j.id, j.name)).collect();
    let mut memberships: Vec<MembershipRow> = store
        .contact_memberships(id)
        .await?
        .into_iter()
        .map(|m| MembershipRow {
            segment_id: m.segment_id,
            segment: segments
                .get(&m.segment_id)
                .cloned()
                .unwrap_or_else(|| format!("#{}", m.segment_id)),
            entered_at: t.datetime(m.entered_at),
            exited_at: m.exited_at.map(|x| t.datetime(x)),
        })
        .collect();
    memberships.sort_by_key(|m| m.exited_at.is_some());
    let runs = store
        .contact_runs(id, None)
        .await?
        .into_iter()
        .map(|r| RunRow {
            journey_id: r.journey_id,
            journey: journeys
                .get(&r.journey_id)
                .cloned()
                .unwrap_or_else(|| format!("#{}", r.journey_id)),
            status: if r.set_aside.is_some() {
                t.get("run-set-aside")
            } else if r.finished_at.is_some() {
                t.arg("run-finished", "reason", r.finish_reason.clone().unwrap_or_default())
            } else {
                t.get("run-active")
            },
            step: r.step.clone().unwrap_or_default(),
            entered_at: t.datetime(r.entered_at),
        })
        .collect();
    let messages = store
        .list_messages(&MessageQuery {
            contact_id: Some(id),
            template_id: None,
            state: None,
            before: None,
            limit: 20,
            ..Default::default()
        })
        .await?
        .items
        .into_iter()
        .map(|m| MessageRow {
            id: m.id,
            channel: m.channel.clone(),
            template: templates
                .get(&m.template_id)
                .cloned()
                .unwrap_or_else(|| format!("#{}", m.template_id)),
            state: m.state.as_str().to_owned(),
            created_at: t.datetime(m.created_at),
            subject: m
                .rendered
                .as_ref()
                .and_then(|r| r.get("subject"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        })
        .collect();
    let timeline = timeline_of(state, t, id, None).await?;
    let lead_score = contact.traits.get("lead_score").map(show);
    let (scores, score_history) = scores_of(state, t, id).await?;
    let predictions = store.contact_prediction(id).await?.map(|p| prediction_rows(t, &p));
    let summary = state.api.app().contact_send_time(id).await?;
    let send_time_borrowed = summary.engagements == 0;
    let send_time = send_time_rows(t, &summary);
    let recommendations = state
        .app()
        .contact_recommendations(id, Some(6))
        .await?
        .iter()
        .map(|r| recommendation_row(t, r))
        .collect();
    Ok(Some(ProfilePage {
        c: viewer.chrome("contacts", format!("/contacts/{id}")),
        name: contact.display_name(),
        traits: contact.traits.iter().map(|(k, v)| (k.clone(), show(v))).collect(),
        subscriptions: contact
            .subscriptions
            .iter()
            .map(|(topic, s)| (topic.clone(), s.as_str().to_owned()))
            .collect(),
        created_at: t.datetime(contact.created_at),
        last_seen: when(t, contact.last_seen_at),
        lead_score,
        scores,
        score_history,
        predictions,
        send_time,
        send_time_borrowed,
        recommendations,
        memberships,
        runs,
        messages,
        timeline,
        contact,
    }))
}

#[derive(Deserialize)]
pub struct TimelineQuery {
    before: Option<String>,
}

/// `GET /contacts/{id}/timeline?before=…`: the next page of the timeline (htmx
/// appends it; without JavaScript it is a page of its own).
pub async fn timeline(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> Response {
    let t = &viewer.t;
    let id = match parse_id(t, &raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let before = match q.before.as_deref().map(EventCursor::decode) {
        Some(Some(c)) => Some(c),
        Some(None) => return render::error(t, StatusCode::BAD_REQUEST, t.get("contacts-bad-cursor")),
        None => None,
    };
    match timeline_of(&state, t, id, before).await {
        Ok(tl) => render::page(&tl),
        Err(e) => render::app_error(t, e),
    }
}

#[derive(Template)]
#[template(path = "contact_edit.html")]
struct EditPage {
    c: Chrome,
    id: ContactId,
    name: String,
    traits: Vec<(String, String)>,
    subscriptions: Vec<(String, String)>,
    errors: crate::auth::FieldErrors,
}

/// The channels whose subscription the profile offers to set.
const SUBSCRIPTION_CHANNELS: [&str; 3] = ["email", "sms", "push"];

/// A trait value as typed (in a search filter or the edit form): JSON when it reads
/// as JSON (`42`, `true`, `"x"`, `[1]`), else the text itself.
fn typed(raw: &str) -> Value {
    serde_json::from_str(raw.trim()).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// A traits and subscriptions patch from the edit form's fields: rows of `key` and
/// `value` (a new key, or a changed value), `remove` naming traits to delete, and
/// `sub.{channel}` set to a state (empty: unchanged).
pub fn patch_of(fields: &[(String, String)], current: &Contact) -> nudge_store::ContactPatch {
    let mut patch = nudge_store::ContactPatch::default();
    let keys: Vec<&str> = fields
        .iter()
        .filter(|(k, _)| k == "key")
        .map(|(_, v)| v.as_str())
        .collect();
    let values: Vec<&str> = fields
        .iter()
        .filter(|(k, _)| k == "value")
        .map(|(_, v)| v.as_str())
        .collect();
    for (key, value) in keys.iter().zip(values) {
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        let value = typed(value);
        if current.traits.get(key) != Some(&value) {
            patch.traits.insert(key.to_owned(), value);
        }
    }
    for (_, key) in fields.iter().filter(|(k, _)| k == "remove") {
        patch.traits.insert(key.clone(), Value::Null);
    }
    for (k, v) in fields {
        if let Some(channel) = k.strip_prefix("sub.")
            && let Some(state) = [
                nudge_core::Subscription::Subscribed,
                nudge_core::Subscription::Unsubscribed,
                nudge_core::Subscription::Pending,
            ]
            .into_iter()
            .find(|s| s.as_str() == v)
            && current.subscriptions.get(channel) != Some(&state)
        {
            patch.subscriptions.insert(channel.to_owned(), state);
        }
    }
    patch
}

fn edit_page(viewer: &Viewer, contact: &Contact, errors: crate::auth::FieldErrors) -> Response {
    let mut subscriptions: Vec<(String, String)> = SUBSCRIPTION_CHANNELS
        .iter()
        .map(|ch| {
            let state = contact.subscriptions.get(*ch).map(|s| s.as_str()).unwrap_or("");
            (ch.to_string(), state.to_owned())
        })
        .collect();
    for (k, s) in &contact.subscriptions {
        if !SUBSCRIPTION_CHANNELS.contains(&k.as_str()) {
            subscriptions.push((k.clone(), s.as_str().to_owned()));
        }
    }
    let failed = !errors.0.is_empty();
    let mut resp = render::page(&EditPage {
        c: viewer.chrome("contacts", format!("/contacts/{}/edit", contact.id)),
        id: contact.id,
        name: contact.display_name(),
        traits: contact
            .traits
            .iter()
            .map(|(k, v)| {
                let shown = match v {
                    Value::String(s) if serde_json::from_str::<Value>(s).is_err() => s.clone(),
                    v => v.to_string(),
                };
                (k.clone(), shown)
            })
            .collect(),
        subscriptions,
        errors,
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

/// `GET /contacts/{id}/edit`
pub async fn edit(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    let t = &viewer.t;
    let id = match parse_id(t, &raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match state.api.store.contact(id).await {
        Ok(Some(c)) => edit_page(&viewer, &c, crate::auth::FieldErrors::default()),
        Ok(None) => render::error(t, StatusCode::NOT_FOUND, t.arg("contact-not-found", "id", id)),
        Err(e) => render::app_error(t, e.into()),
    }
}

/// `POST /contacts/{id}/edit`
pub async fn save(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    use axum::response::IntoResponse;
    let t = &viewer.t;
    let id = match editable(&viewer, &raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let contact = match state.api.store.contact(id).await {
        Ok(Some(c)) => c,
        Ok(None) => return render::error(t, StatusCode::NOT_FOUND, t.arg("contact-not-found", "id", id)),
        Err(e) => return render::app_error(t, e.into()),
    };
    let patch = patch_of(&fields, &contact);
    match state.app().update_contact(contact.id, &patch).await {
        Ok(c) => axum::response::Redirect::to(&format!("/contacts/{}", c.id)).into_response(),
        Err(e) => edit_page(&viewer, &contact, crate::auth::FieldErrors::from_app(&e)),
    }
}

/// The contact a page that changes or exports it names, if the viewer may.
fn editable(viewer: &Viewer, raw: &str) -> Result<ContactId, Response> {
    viewer.require(nudge_core::access::Permission::Edit)?;
    parse_id(&viewer.t, raw)
}

/// `POST /contacts/{id}/delete`: erases the contact and everything about it (GDPR).
pub async fn delete(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    use axum::response::IntoResponse;
    let t = &viewer.t;
    let id = match editable(&viewer, &raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match state.app().erase_contact(id).await {
        Ok(()) => axum::response::Redirect::to("/contacts?erased=1").into_response(),
        Err(e) => render::app_error(t, e),
    }
}

/// `GET /contacts/{id}/export`: everything about a contact as JSON (GDPR), the same
/// document as the API's export.
pub async fn export_one(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    let t = &viewer.t;
    let id = match editable(&viewer, &raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match state.app().contact_export(id).await {
        Ok(export) => nudge_api::admin::export_response(&export, state.now()),
        Err(e) => render::app_error(t, e),
    }
}

/// `GET /contacts/export.csv`: every contact as CSV.
pub async fn export_csv(State(state): State<WebState>, viewer: Viewer) -> Response {
    use axum::response::IntoResponse;
    if let Err(r) = viewer.require(nudge_core::access::Permission::Edit) {
        return r;
    }
    match state.app().export_contacts_csv().await {
        Ok(csv) => (
            [
                (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"contacts.csv\"",
                ),
            ],
            csv,
        )
            .into_response(),
        Err(e) => render::app_error(&viewer.t, e),
    }
}

#[derive(Template)]
#[template(path = "contacts_import.html")]
struct ImportPage {
    c: Chrome,
    error: Option<String>,
}

/// `GET /contacts/import`
pub async fn import_page(viewer: Viewer) -> Response {
    if let Err(r) = viewer.require(nudge_core::access::Permission::Edit) {
        return r;
    }
    render::page(&ImportPage {
        c: viewer.chrome("contacts", "/contacts/import"),
        error: None,
    })
}

/// `POST /contacts/import?_csrf=…` (multipart, field `file`): starts an import job
/// (`nudge_app::imports`) and sends the browser to its page. A file whose header
/// row is unusable is refused here, on the form.
pub async fn import(State(state): State<WebState>, viewer: Viewer, mut form: axum::extract::Multipart) -> Response {
    use axum::response::IntoResponse;
    if let Err(r) = viewer.require(nudge_core::access::Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    let mut csv = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => match field.bytes().await {
                Ok(b) => csv = Some(b),
                Err(e) => return render::error(t, StatusCode::BAD_REQUEST, e.to_string()),
            },
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return render::error(t, StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    let error = match csv.filter(|b| !b.is_empty()) {
        None => t.get("contacts-import-no-file"),
        Some(bytes) => match state.imports.start(&state.app(), bytes.to_vec()) {
            Ok(job) => return axum::response::Redirect::to(&format!("/contacts/import/{job}")).into_response(),
            Err(e) => e.to_string(),
        },
    };
    let mut resp = render::page(&ImportPage {
        c: viewer.chrome("contacts", "/contacts/import"),
        error: Some(error),
    });
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp
}

/// Failed rows shown on the job's page; all of them are in the CSV download.
const SHOWN_ERRORS: usize = 50;

/// An import's progress, or its report once finished. While it runs, htmx asks for
/// it again every second; without JavaScript the page has a link to reload.
#[derive(Template)]
#[template(path = "import_progress.html")]
pub struct ImportProgressBox {
    t: crate::i18n::Tr,
    p: nudge_app::imports::ImportProgress,
}

impl ImportProgressBox {
    fn running(&self) -> bool {
        !self.p.phase.finished()
    }
    fn failed_phase(&self) -> Option<&str> {
        match &self.p.phase {
            nudge_app::imports::ImportPhase::Failed(e) => Some(e),
            _ => None,
        }
    }
    /// Percent of rows handled, for the progress bar.
    fn percent(&self) -> usize {
        (self.p.done * 100).checked_div(self.p.total).unwrap_or(0)
    }
    fn counts(&self) -> String {
        let (t, p) = (&self.t, &self.p);
        t.args(
            "contacts-import-progress",
            &[("done", &t.num(p.done)), ("total", &t.num(p.total))],
        )
    }
    fn report(&self) -> String {
        let (t, p) = (&self.t, &self.p);
        t.args(
            "contacts-import-report",
            &[
                ("rows", &t.num(p.total)),
                ("created", &t.num(p.created)),
                ("updated", &t.num(p.updated)),
                ("failed", &t.num(p.failed)),
            ],
        )
    }
    fn more_errors(&self) -> Option<String> {
        let (t, p) = (&self.t, &self.p);
        (p.failed > p.errors.len()).then(|| {
            t.args(
                "contacts-import-more-errors",
                &[("shown", &t.num(p.errors.len())), ("failed", &t.num(p.failed))],
            )
        })
    }
}

#[derive(Template)]
#[template(path = "contacts_import_job.html")]
struct ImportJobPage {
    c: Chrome,
    progress: ImportProgressBox,
}

fn import_progress_of(state: &WebState, viewer: &Viewer, job: &str) -> Result<ImportProgressBox, Response> {
    viewer.require(nudge_core::access::Permission::Edit)?;
    let t = &viewer.t;
    match state.imports.progress(job, SHOWN_ERRORS) {
        Some(p) => Ok(ImportProgressBox { t: t.clone(), p }),
        None => Err(render::error(
            t,
            StatusCode::NOT_FOUND,
            t.get("contacts-import-unknown"),
        )),
    }
}

/// `GET /contacts/import/{job}`: the import's page.
pub async fn import_job(State(state): State<WebState>, viewer: Viewer, Path(job): Path<String>) -> Response {
    match import_progress_of(&state, &viewer, &job) {
        Ok(progress) => render::page(&ImportJobPage {
            c: viewer.chrome("contacts", format!("/contacts/import/{job}")),
            progress,
        }),
        Err(r) => r,
    }
}

/// `GET /contacts/import/{job}/progress` (htmx): the progress box alone.
pub async fn import_progress(State(state): State<WebState>, viewer: Viewer, Path(job): Path<String>) -> Response {
    match import_progress_of(&state, &viewer, &job) {
        Ok(progress) => render::page(&progress),
        Err(r) => r,
    }
}

/// `GET /contacts/import/{job}/errors.csv`: every failed row kept (`row,column,message`).
pub async fn import_errors(State(state): State<WebState>, viewer: Viewer, Path(job): Path<String>) -> Response {
    use axum::response::IntoResponse;
    if let Err(r) = viewer.require(nudge_core::access::Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    match state.imports.errors_csv(&job) {
        Some(Ok(csv)) => (
            [
                (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"import-errors.csv\"",
                ),
            ],
            csv,
        )
            .into_response(),
        Some(Err(e)) => render::app_error(t, e),
        None => render::error(t, StatusCode::NOT_FOUND, t.get("contacts-import-unknown")),
    }
}

/// A figure on a page: the id of its label, and the figure.
type Labelled = (&'static str, String);

/// A recommended product on the profile: its name, link and why it is recommended.
struct RecommendationRow {
    name: String,
    url: Option<String>,
    why: String,
}

fn recommendation_row(t: &crate::i18n::Tr, r: &nudge_core::recommend::Recommendation) -> RecommendationRow {
    use nudge_core::recommend::Reason;
    RecommendationRow {
        name: r.product.name.clone().unwrap_or_else(|| r.product.id.clone()),
        // Only web links: a product's URL comes from events.
        url: r
            .product
            .url
            .clone()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        why: match &r.reason {
            Reason::Similar { to } => t.arg("recommendation-similar", "products", to.join(", ")),
            Reason::Popular { category: Some(c) } => t.arg("recommendation-popular-in", "category", c),
            Reason::Popular { category: None } => t.get("recommendation-popular"),
        },
    }
}

/// A contact's lifetime-value predictions and the model's inputs, for the profile
/// (docs/predictions.md); a figure the model cannot give is a dash.
fn prediction_rows(t: &crate::i18n::Tr, p: &nudge_core::predict::Prediction) -> (Vec<Labelled>, Vec<Labelled>) {
    let opt = |v: Option<f64>, d: u8| v.map_or("—".to_string(), |v| t.decimal(v, d));
    let predicted = vec![
        ("prediction-p-alive", t.percent(p.p_alive, 1)),
        (
            "prediction-churn-band",
            t.get(&format!("churn-band-{}", p.churn_band.as_str())),
        ),
        ("prediction-purchases-30d", opt(p.expected_purchases_30d, 2)),
        ("prediction-purchases-90d", opt(p.expected_purchases_90d, 2)),
        ("prediction-purchases-365d", opt(p.expected_purchases_365d, 2)),
        ("prediction-order-value", opt(p.expected_order_value, 2)),
        ("prediction-clv-12m", opt(p.clv_12m, 2)),
        (
            "prediction-next-order",
            p.next_order_at.map_or("—".to_string(), |at| t.date(at)),
        ),
        ("prediction-as-of", t.datetime(p.as_of)),
    ];
    let inputs = vec![
        ("prediction-frequency", t.num(p.customer.frequency)),
        ("prediction-recency", t.decimal(p.customer.recency, 1)),
        ("prediction-age", t.decimal(p.customer.age, 1)),
        ("prediction-monetary", t.decimal(p.customer.monetary, 2)),
    ];
    (predicted, inputs)
}

/// A contact's send-time summary for the profile: the best hours of the day with their
/// shares, the best hour of the week, the confidence and the engagements behind it.
fn send_time_rows(t: &crate::i18n::Tr, s: &nudge_core::send_time::Summary) -> Vec<Labelled> {
    let hour = |h: u8, share: f64| {
        t.args(
            "send-time-hour",
            &[
                ("from", &t.num(u32::from(h))),
                ("to", &t.num(u32::from((h + 1) % 24))),
                ("share", &t.percent(share, 0)),
            ],
        )
    };
    let hours: Vec<String> = s.best_hours.iter().map(|h| hour(h.hour, h.probability)).collect();
    vec![
        ("send-time-best-hours", hours.join(" · ")),
        (
            "send-time-best-week-hour",
            t.args(
                "send-time-week-hour",
                &[
                    ("day", &t.get(&format!("send-time-day-{}", s.best_day))),
                    ("from", &t.num(u32::from(s.best_day_hour))),
                    ("to", &t.num(u32::from((s.best_day_hour + 1) % 24))),
                ],
            ),
        ),
        (
            "send-time-confidence",
            t.args(
                "send-time-confidence-value",
                &[
                    ("share", &t.percent(s.confidence, 0)),
                    ("band", &t.get(&format!("send-time-band-{}", s.confidence_band))),
                ],
            ),
        ),
        ("send-time-engagements", t.num(s.engagements)),
    ]
}

/// A contact's scores now, and its latest score changes (among its 500 latest events)
/// with the rules that gave the points.
async fn scores_of(
    state: &WebState,
    t: &crate::i18n::Tr,
    id: nudge_core::ContactId,
) -> Result<(Vec<ScoreRow>, Vec<ScoreChangeRow>), nudge_store::StoreError> {
    let store = &state.api.store;
    let now = state.api.clock.now();
    let scores = store
        .contact_scores(id, now)
        .await?
        .into_iter()
        .map(|s| ScoreRow {
            value: t.decimal(nudge_core::scoring::round(s.value), 2),
            stage: s.stage.unwrap_or_default(),
            next_decay: s.next_decay_at.map(|x| t.datetime(x)).unwrap_or_default(),
            score: s.score,
        })
        .collect();
    let rules: HashMap<i64, String> = store
        .scoring_rules()
        .await?
        .into_iter()
        .map(|r| (r.id, r.definition.name))
        .collect();
    let number = |x: f64| t.decimal(nudge_core::scoring::round(x), 2);
    let history = store
        .score_changes(id, 50)
        .await?
        .into_iter()
        .map(|c| {
            let reason = match &c.reason {
                nudge_core::scoring::Reason::Decay => t.get("score-reason-decay"),
                nudge_core::scoring::Reason::Rules(given) => given
                    .iter()
                    .map(|(id, points)| {
                        let name = rules.get(id).cloned().unwrap_or_else(|| format!("#{id}"));
                        format!("{name} ({points:+})")
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            ScoreChangeRow {
                at: t.datetime(c.at),
                score: c.score,
                previous: number(c.previous),
                value: number(c.value),
                reason,
            }
        })
        .collect();
    Ok((scores, history))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_send_time_rows_name_the_hours_the_day_and_the_confidence_in_each_language() {
        use nudge_core::send_time::{Engagement, Profile, summarise};
        // Monday 2026-11-30; clicks at 19:10 UTC on five days.
        let monday = 1_795_996_800_000;
        let mut p = Profile::default();
        for d in 0..5 {
            p.observe(
                Engagement::EmailClick,
                monday + d * 86_400_000 + 19 * 3_600_000 + 600_000,
            );
        }
        let s = summarise(&p, &Profile::default(), monday + 5 * 86_400_000);
        let plain = |x: &str| x.replace(['\u{2068}', '\u{2069}'], "");
        let en = crate::i18n::Tr::new(crate::i18n::Lang::En, jiff::tz::TimeZone::UTC, Default::default());
        let rows = send_time_rows(&en, &s);
        let ids: Vec<&str> = rows.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            ids,
            [
                "send-time-best-hours",
                "send-time-best-week-hour",
                "send-time-confidence",
                "send-time-engagements"
            ]
        );
        assert!(plain(&rows[0].1).starts_with("19:00–20:00 UTC ("), "{}", rows[0].1);
        assert_eq!(plain(&rows[1].1), "Friday 19:00–20:00 UTC");
        assert_eq!(plain(&rows[2].1), "55% (medium)");
        assert_eq!(rows[3].1, "5");
        let fa = crate::i18n::Tr::new(crate::i18n::Lang::Fa, jiff::tz::TimeZone::UTC, Default::default());
        let rows = send_time_rows(&fa, &s);
        assert!(plain(&rows[1].1).starts_with("جمعه ۱۹:۰۰"), "{}", rows[1].1);
    }

    fn f(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn an_import_polls_while_it_runs_and_reports_when_done() {
        use nudge_app::csv_io::RowError;
        use nudge_app::imports::{ImportPhase, ImportProgress};
        let t = crate::i18n::Tr::new(crate::i18n::Lang::En, jiff::tz::TimeZone::UTC, Default::default());
        let mut p = ImportProgress {
            id: "abc".into(),
            phase: ImportPhase::Reading,
            total: 0,
            done: 0,
            created: 0,
            updated: 0,
            failed: 0,
            errors: Vec::new(),
            started_at: 0,
            finished_at: None,
        };
        let html = |p: &ImportProgress| {
            ImportProgressBox {
                t: t.clone(),
                p: p.clone(),
            }
            .render()
            .unwrap()
        };
        let reading = html(&p);
        assert!(
            reading.contains(r#"hx-get="/contacts/import/abc/progress""#),
            "{reading}"
        );
        assert!(!reading.contains("import-counts"), "no counts before the file is read");
        (p.phase, p.total, p.done) = (ImportPhase::Importing, 1000, 250);
        let importing = html(&p);
        assert!(
            importing.contains(r#"value="25""#) && importing.contains("import-counts"),
            "{importing}"
        );
        assert!(
            importing.contains(r#"href="/contacts/import/abc""#),
            "a plain reload link"
        );
        (p.phase, p.done, p.created, p.failed) = (ImportPhase::Done, 1000, 999, 1);
        p.errors = vec![RowError {
            row: 7,
            column: Some("email".into()),
            message: "<b>x</b> is not an email address".into(),
        }];
        let done = html(&p);
        assert!(!done.contains("hx-get"), "no more polling: {done}");
        assert!(done.contains("import-report") && done.contains("/contacts/import/abc/errors.csv"));
        assert!(!done.contains("<b>x</b>"), "row errors are escaped");
        p.failed = 80;
        assert!(
            html(&p).contains("The first"),
            "more failed rows than shown are said so"
        );
    }

    #[test]
    fn the_edit_form_becomes_a_patch_of_what_changed() {
        let mut c = Contact::new(1, 0);
        c.traits.insert("plan".into(), json!("free"));
        c.traits.insert("age".into(), json!(30));
        c.traits.insert("city".into(), json!("Tehran"));
        let patch = patch_of(
            &f(&[
                ("key", "plan"),
                ("value", "pro"),
                ("key", "age"),
                ("value", "30"),
                ("key", "vip"),
                ("value", "true"),
                ("key", ""),
                ("value", "ignored"),
                ("remove", "city"),
                ("sub.email", "unsubscribed"),
                ("sub.sms", ""),
            ]),
            &c,
        );
        assert_eq!(patch.traits.get("plan"), Some(&json!("pro")));
        assert_eq!(patch.traits.get("age"), None, "unchanged values are left out");
        assert_eq!(
            patch.traits.get("vip"),
            Some(&json!(true)),
            "values read as JSON when they are"
        );
        assert_eq!(patch.traits.get("city"), Some(&Value::Null), "removed");
        assert_eq!(patch.traits.len(), 3);
        assert_eq!(
            patch.subscriptions.get("email"),
            Some(&nudge_core::Subscription::Unsubscribed)
        );
        assert!(!patch.subscriptions.contains_key("sms"));
    }
}
