//! Campaigns: the list; the editor (`/campaigns/new`, `/campaigns/{id}/edit`, drafts
//! only) with the audience's live size, the channel, variants with a preview of each
//! one's template, the A/B test, holdout, throttle, quiet hours and the caps'
//! deferral limit; a campaign's page: what it sends to whom, sending with a schedule,
//! pause, resume, cancel, delete, a person's pick of the test's winner, the progress
//! refreshed while it sends, and the report (the variants compared with the test
//! metric's live figures, the decision, charts of the hourly series and of the hours
//! of the day, deliverability by domain, CSV).
//!
//! The editor is one form ([`super::campaign_form`]); adding, removing and previewing
//! a variant are submits of the whole form that re-render it, so it works without
//! JavaScript; with htmx the same posts swap only the form and the audience's size
//! follows every change (`POST /campaigns/audience`).

use super::campaign_form::{self, CampaignForm, FALLBACKS, METRICS, RULES, UNITS, duration_fields};
use crate::WebState;
use crate::auth::{FieldErrors, Viewer};
use crate::chart::{self, Bar, Series};
use crate::i18n::Tr;
use crate::pages::channels::number;
use crate::pages::templates::{TemplateForm, preview_pane};
use crate::render::{self, Chrome};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use nudge_app::AppError;
use nudge_app::campaigns::{CampaignAction, CampaignReport};
use nudge_core::Millis;
use nudge_core::access::Permission;
use nudge_core::campaign::stats::{DecidedBy, Fallback, Lift, NoWinner, Rule, WinnerMetric};
use nudge_core::campaign::{Audience, CampaignDefinition, CampaignStatus, Command, Schedule, parse_campaign};
use nudge_core::journey::NameOrId;
use nudge_core::protocol::CampaignCounter;
use nudge_store::{Campaign, NewCampaign, StoreError};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const HOUR: Millis = 3_600_000;

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// A redirect that htmx follows as a page load.
fn go_to(url: &str, htmx: bool) -> Response {
    if htmx {
        let mut resp = StatusCode::OK.into_response();
        if let Ok(v) = HeaderValue::from_str(url) {
            resp.headers_mut().insert("hx-redirect", v);
        }
        resp
    } else {
        Redirect::to(url).into_response()
    }
}

fn status_name(t: &Tr, s: CampaignStatus) -> String {
    t.get(&format!("campaign-status-{}", s.as_str()))
}

fn parse_id(t: &Tr, raw: &str) -> Result<i64, Response> {
    raw.parse::<i64>()
        .map_err(|_| render::error(t, StatusCode::NOT_FOUND, t.arg("campaign-not-found", "id", raw)))
}

async fn load(state: &WebState, t: &Tr, raw: &str) -> Result<Campaign, Response> {
    let id = parse_id(t, raw)?;
    match state.app().campaign(id).await {
        Ok(c) => Ok(c),
        Err(AppError::NotFound { .. }) => Err(render::error(
            t,
            StatusCode::NOT_FOUND,
            t.arg("campaign-not-found", "id", id),
        )),
        Err(e) => Err(render::app_error(t, e)),
    }
}

/// A stored definition (checked when it was saved).
fn definition_of(c: &Campaign) -> Option<CampaignDefinition> {
    parse_campaign(&c.definition).ok()
}

/// A length of time in words (`4 hours`, `۲ روز`).
fn duration_text(t: &Tr, ms: Millis) -> String {
    let (n, unit) = duration_fields(ms);
    t.count(&format!("campaign-{unit}"), n.parse::<i64>().unwrap_or(0))
}

// ---------------------------------------------------------------------------------
// The list.

pub struct CampaignRow {
    pub id: i64,
    pub name: String,
    pub status: CampaignStatus,
    pub status_name: String,
    /// Recipients in the snapshot, held-out ones apart.
    pub audience: u64,
    /// Queued or skipped out of those who get a message.
    pub done: u64,
    pub total: u64,
    pub sent: u64,
    pub opened: u64,
    pub clicked: u64,
    pub created: String,
    /// "done of total (audience in the snapshot)".
    pub progress: String,
}

#[derive(Template)]
#[template(path = "campaigns.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<CampaignRow>,
}

/// A campaign's counter summed over its variants.
fn total(stats: &nudge_store::CampaignStats, counter: CampaignCounter) -> u64 {
    stats
        .variants
        .keys()
        .map(|v| stats.get(*v, counter).max(0.0).round() as u64)
        .sum()
}

/// `GET /campaigns`
pub async fn list(State(state): State<WebState>, viewer: Viewer) -> Response {
    let t = &viewer.t;
    let app = state.app();
    let campaigns = match app.campaigns().await {
        Ok(c) => c,
        Err(e) => return render::app_error(t, e),
    };
    let mut rows = Vec::with_capacity(campaigns.len());
    for c in campaigns {
        let stats = match state.api.store.campaign_stats(c.id).await {
            Ok(s) => s,
            Err(e) => return render::app_error(t, e.into()),
        };
        rows.push(CampaignRow {
            id: c.id,
            status_name: status_name(t, c.status),
            status: c.status,
            audience: c.audience,
            done: c.queued + c.skipped,
            total: c.audience.saturating_sub(c.held_out),
            sent: total(&stats, CampaignCounter::Sent),
            opened: total(&stats, CampaignCounter::UniqueOpened),
            clicked: total(&stats, CampaignCounter::UniqueClicked),
            created: t.date(c.created_at),
            progress: t.args(
                "campaigns-progress",
                &[
                    ("done", &t.num(c.queued + c.skipped)),
                    ("total", &t.num(c.audience.saturating_sub(c.held_out))),
                ],
            ),
            name: c.name,
        });
    }
    render::page(&ListPage {
        c: viewer.chrome("campaigns", "/campaigns"),
        rows,
    })
}

// ---------------------------------------------------------------------------------
// The editor.

/// One option of a select.
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// A segment offered for the audience or its exclusions.
pub struct SegmentOpt {
    pub id: i64,
    pub name: String,
    /// Its members now (maintained by the segment engine).
    pub size: u64,
    pub checked: bool,
    /// Named by the definition but not stored (deleted since).
    pub missing: bool,
}

/// A variant's template preview, as the template editor renders it (sample data).
pub struct VariantPreview {
    pub index: usize,
    /// The preview pane (its own template escapes what it shows).
    pub html: Option<String>,
}

/// The editor form's content (what htmx swaps).
#[derive(Template)]
#[template(path = "campaign_form.html")]
pub struct EditorForm<'a> {
    t: &'a Tr,
    csrf: String,
    f: &'a CampaignForm,
    errors: FieldErrors,
    audience: Vec<SegmentOpt>,
    exclude: Vec<SegmentOpt>,
    /// Templates a campaign can send: id, name, channel.
    templates: Vec<(i64, String, String)>,
    can_edit: bool,
    cancel: String,
    preview: Option<VariantPreview>,
}

impl EditorForm<'_> {
    /// The options of a select of `values`, labelled by the catalogue's
    /// `{prefix}{value}` messages.
    pub fn opts(&self, values: &[&str], prefix: &str, selected: &str) -> Vec<Opt> {
        values
            .iter()
            .map(|v| Opt {
                value: (*v).to_owned(),
                label: self.t.get(&format!("{prefix}{v}")),
                selected: *v == selected,
            })
            .collect()
    }

    pub fn units(&self) -> &'static [&'static str] {
        &UNITS
    }
    pub fn metrics(&self) -> &'static [&'static str] {
        &METRICS
    }
    pub fn rules(&self) -> &'static [&'static str] {
        &RULES
    }
    pub fn fallbacks(&self) -> &'static [&'static str] {
        &FALLBACKS
    }
    pub fn channels(&self) -> &'static [&'static str] {
        &nudge_app::campaigns::CHANNELS
    }

    /// The templates a variant can choose, with the one chosen even when it is not
    /// one a campaign can send (the application layer then says why).
    pub fn template_opts(&self, selected: &str) -> Vec<Opt> {
        let mut out: Vec<Opt> = self
            .templates
            .iter()
            .map(|(id, name, channel)| Opt {
                value: id.to_string(),
                label: format!("{name} ({channel})"),
                selected: id.to_string() == selected,
            })
            .collect();
        if !selected.is_empty() && !out.iter().any(|o| o.selected) {
            out.push(Opt {
                value: selected.to_owned(),
                label: selected.to_owned(),
                selected: true,
            });
        }
        out
    }

    /// The chosen template's id, for its link.
    pub fn template_id(&self, selected: &str) -> Option<i64> {
        selected.parse().ok()
    }

    pub fn errs(&self, field: &str) -> Vec<&str> {
        self.errors.all_of(field)
    }

    /// A variant's problems at its input `field`.
    pub fn verrs(&self, i: &usize, field: &str) -> Vec<&str> {
        self.errors.all_of(&format!("variants[{i}].{field}"))
    }

    pub fn bad(&self, field: &str) -> bool {
        !self.errors.all_of(field).is_empty()
    }

    pub fn vbad(&self, i: &usize, field: &str) -> bool {
        !self.verrs(i, field).is_empty()
    }

    pub fn max_variants(&self) -> usize {
        nudge_core::campaign::definition::MAX_VARIANTS
    }
}

/// The live audience size: how many contacts are in it now.
#[derive(Template)]
#[template(path = "campaign_audience.html")]
pub struct AudienceSize<'a> {
    t: &'a Tr,
    /// `None` until a segment is chosen.
    count: Option<u64>,
}

#[derive(Template)]
#[template(path = "campaign_editor.html")]
struct EditorPage {
    c: Chrome,
    title: String,
    url: String,
    form: String,
    audience: String,
}

/// Where the editor posts: a new campaign, or draft `id`.
#[derive(Clone, Copy)]
enum Target {
    New,
    Edit(i64),
}

impl Target {
    fn url(self) -> String {
        match self {
            Target::New => "/campaigns/new".into(),
            Target::Edit(id) => format!("/campaigns/{id}/edit"),
        }
    }
    fn cancel(self) -> String {
        match self {
            Target::New => "/campaigns".into(),
            Target::Edit(id) => format!("/campaigns/{id}"),
        }
    }
}

async fn audience_size<'a>(state: &WebState, t: &'a Tr, f: &CampaignForm) -> Result<AudienceSize<'a>, AppError> {
    if f.segments.is_empty() {
        return Ok(AudienceSize { t, count: None });
    }
    let audience = Audience {
        segments: f.segments.clone(),
        exclude: f.exclude.clone(),
    };
    Ok(AudienceSize {
        t,
        count: Some(state.app().campaign_audience_size(&audience).await?),
    })
}

/// The segments the editor offers: for the audience every segment but the
/// administrative ones, for exclusions every one; a chosen segment that is gone is
/// shown by its id.
async fn segment_opts(state: &WebState, f: &CampaignForm) -> Result<(Vec<SegmentOpt>, Vec<SegmentOpt>), AppError> {
    let store = &state.api.store;
    let mut segments = store.segments().await?;
    segments.sort_by_key(|s| s.name.to_lowercase());
    let mut sizes = BTreeMap::new();
    for s in &segments {
        sizes.insert(s.id, store.segment_size(s.id).await?);
    }
    let list = |chosen: &[i64], administrative: bool| {
        let mut out: Vec<SegmentOpt> = segments
            .iter()
            .filter(|s| administrative || !s.administrative || chosen.contains(&s.id))
            .map(|s| SegmentOpt {
                id: s.id,
                name: s.name.clone(),
                size: sizes.get(&s.id).copied().unwrap_or(0),
                checked: chosen.contains(&s.id),
                missing: false,
            })
            .collect();
        for id in chosen.iter().filter(|id| !segments.iter().any(|s| s.id == **id)) {
            out.push(SegmentOpt {
                id: *id,
                name: format!("#{id}"),
                size: 0,
                checked: true,
                missing: true,
            });
        }
        out
    };
    Ok((list(&f.segments, false), list(&f.exclude, true)))
}

/// Renders the editor: the whole page, or (htmx) only the form.
async fn render_editor(
    state: &WebState,
    viewer: &Viewer,
    target: Target,
    f: &CampaignForm,
    errors: FieldErrors,
    preview: Option<usize>,
    htmx: bool,
) -> Response {
    let t = &viewer.t;
    let store = &state.api.store;
    let (audience, exclude) = match segment_opts(state, f).await {
        Ok(s) => s,
        Err(e) => return render::app_error(t, e),
    };
    let templates = match store.templates().await {
        Ok(list) => list
            .into_iter()
            .filter(|x| !x.transactional && nudge_app::campaigns::CHANNELS.contains(&x.channel.as_str()))
            .map(|x| (x.id, x.name, x.channel))
            .collect(),
        Err(e) => return render::app_error(t, e.into()),
    };
    let preview = match preview.filter(|i| *i < f.variants.len()) {
        None => None,
        Some(index) => {
            let chosen = match f.variants[index].template.parse::<i64>() {
                Ok(id) => store.template(id).await.ok().flatten(),
                Err(_) => store
                    .template_by_name(f.variants[index].template.trim())
                    .await
                    .ok()
                    .flatten(),
            };
            let html = match chosen {
                Some(tpl) => Some(
                    preview_pane(state, viewer, &TemplateForm::of(&tpl))
                        .await
                        .render()
                        .unwrap_or_default(),
                ),
                None => None,
            };
            Some(VariantPreview { index, html })
        }
    };
    let failed = !errors.0.is_empty();
    let form = EditorForm {
        t,
        csrf: viewer.session.csrf.clone(),
        f,
        errors,
        audience,
        exclude,
        templates,
        can_edit: viewer.session.user.role.allows(Permission::Edit),
        cancel: target.cancel(),
        preview,
    };
    if htmx {
        let mut resp = render::page(&form);
        resp.headers_mut()
            .insert("hx-trigger", HeaderValue::from_static("campaign-changed"));
        return resp;
    }
    let size = match audience_size(state, t, f).await {
        Ok(s) => s,
        Err(e) => return render::app_error(t, e),
    };
    let title = match target {
        Target::New => t.get("campaign-new-title"),
        Target::Edit(_) => t.get("campaign-edit-title"),
    };
    let mut resp = render::page(&EditorPage {
        c: viewer.chrome("campaigns", target.url()),
        title,
        url: target.url(),
        form: form.render().unwrap_or_default(),
        audience: size.render().unwrap_or_default(),
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

/// `GET /campaigns/new`
pub async fn new_page(State(state): State<WebState>, viewer: Viewer) -> Response {
    let f = CampaignForm::blank();
    render_editor(&state, &viewer, Target::New, &f, FieldErrors::default(), None, false).await
}

/// `GET /campaigns/{id}/edit`: a draft's editor; a campaign sent already shows its page.
pub async fn edit_page(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    let t = &viewer.t;
    let c = match load(&state, t, &raw).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if c.status != CampaignStatus::Draft {
        return Redirect::to(&format!("/campaigns/{}", c.id)).into_response();
    }
    let Some(def) = definition_of(&c) else {
        return render::error(t, StatusCode::INTERNAL_SERVER_ERROR, t.get("error-internal-detail"));
    };
    let templates: Vec<(i64, String)> = match state.api.store.templates().await {
        Ok(list) => list.into_iter().map(|x| (x.id, x.name)).collect(),
        Err(e) => return render::app_error(t, e.into()),
    };
    let f = CampaignForm::of(&c.name, &c.description, &def, &templates);
    render_editor(
        &state,
        &viewer,
        Target::Edit(c.id),
        &f,
        FieldErrors::default(),
        None,
        false,
    )
    .await
}

/// `POST /campaigns/new`
pub async fn new_post(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    post(state, viewer, Target::New, &headers, &fields).await
}

/// `POST /campaigns/{id}/edit`
pub async fn edit_post(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let id = match parse_id(&viewer.t, &raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    post(state, viewer, Target::Edit(id), &headers, &fields).await
}

/// An editor action: add, remove or preview a variant, check, or save.
async fn post(
    state: WebState,
    viewer: Viewer,
    target: Target,
    headers: &HeaderMap,
    fields: &[(String, String)],
) -> Response {
    let htmx = is_htmx(headers);
    let t = &viewer.t;
    let (mut f, action) = CampaignForm::from_fields(fields);
    let mut errors = FieldErrors::default();
    let mut preview = None;
    match action.as_str() {
        "save" | "check" => {
            if action == "save"
                && let Err(r) = viewer.require(Permission::Edit)
            {
                return r;
            }
            match f.definition(t) {
                Err(e) => errors = e,
                Ok(definition) if action == "check" => match state.app().check_campaign_definition(&definition).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(problems)) => errors = campaign_form::place(&f, &problems),
                    Err(e) => return render::app_error(t, e),
                },
                Ok(definition) => {
                    let new = NewCampaign {
                        name: f.name.clone(),
                        description: f.description.trim().to_owned(),
                        definition,
                    };
                    let app = state.app();
                    let saved = match target {
                        Target::New => app.create_campaign(new).await,
                        Target::Edit(id) => app.update_campaign(id, new).await,
                    };
                    match saved {
                        Ok(c) => return go_to(&format!("/campaigns/{}", c.id), htmx),
                        Err(AppError::InvalidDefinition { problems, .. }) => {
                            errors = campaign_form::place(&f, &problems)
                        }
                        Err(AppError::InvalidField { field, message } | AppError::MissingField { field, message }) => {
                            errors = FieldErrors(vec![(field, message)])
                        }
                        // The store's conflicts on saving: the name is taken.
                        Err(AppError::Store(StoreError::Conflict(m))) => errors = FieldErrors(vec![("name".into(), m)]),
                        Err(AppError::Conflict(m)) => errors = FieldErrors(vec![(String::new(), m)]),
                        Err(e) => return render::app_error(t, e),
                    }
                }
            }
        }
        a => {
            if let Some(i) = a.strip_prefix("preview:").and_then(|i| i.parse::<usize>().ok()) {
                preview = Some(i);
            }
            f.apply(a);
        }
    }
    render_editor(&state, &viewer, target, &f, errors, preview, htmx).await
}

/// `POST /campaigns/audience`: the editor's form in, how many contacts its audience
/// has now out.
pub async fn audience(
    State(state): State<WebState>,
    viewer: Viewer,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (f, _) = CampaignForm::from_fields(&fields);
    match audience_size(&state, &viewer.t, &f).await {
        Ok(size) => render::page(&size),
        Err(e) => render::app_error(&viewer.t, e),
    }
}

// ---------------------------------------------------------------------------------
// A campaign's page.

/// A variant as the page describes it.
pub struct VariantLine {
    pub name: String,
    pub template: String,
    pub template_id: Option<i64>,
    /// The template version fixed at the send.
    pub version: Option<i64>,
    pub delay: Option<String>,
}

/// The send form's inputs (kept after a refusal).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct SendForm {
    /// `now`, `at` or `local_time`.
    pub schedule: String,
    /// `YYYY-MM-DDTHH:MM` in the workspace's time zone.
    pub at: String,
    pub date: String,
    pub time: String,
}

#[derive(Template)]
#[template(path = "campaign.html")]
struct CampaignPage {
    c: Chrome,
    campaign: Campaign,
    status_name: String,
    /// Label and value of each setting.
    settings: Vec<(String, String)>,
    audience: Vec<String>,
    exclude: Vec<String>,
    variants: Vec<VariantLine>,
    errors: FieldErrors,
    /// The part that refreshes (status, actions, progress, report); none for a draft.
    live: Option<String>,
    send: SendForm,
    /// The workspace's time zone, which a time typed to send "at" is in.
    zone: String,
    /// The draft's audience now.
    audience_now: Option<u64>,
    definition_json: String,
}

impl CampaignPage {
    fn is_draft(&self) -> bool {
        self.campaign.status == CampaignStatus::Draft
    }
    fn schedule_is(&self, kind: &str) -> bool {
        self.send.schedule == kind || (kind == "now" && self.send.schedule.is_empty())
    }
}

/// What a campaign's definition says, in the viewer's language.
async fn describe(
    state: &WebState,
    t: &Tr,
    c: &Campaign,
    def: &CampaignDefinition,
) -> Result<(Vec<String>, Vec<String>, Vec<VariantLine>, Vec<(String, String)>), AppError> {
    let store = &state.api.store;
    let names: BTreeMap<i64, String> = store.segments().await?.into_iter().map(|s| (s.id, s.name)).collect();
    let name_of = |id: &i64| names.get(id).cloned().unwrap_or_else(|| format!("#{id}"));
    let audience = def.audience.segments.iter().map(name_of).collect();
    let exclude = def.audience.exclude.iter().map(name_of).collect();
    let mut variants = Vec::with_capacity(def.variants.len());
    let mut first_channel = None;
    for (i, v) in def.variants.iter().enumerate() {
        let fixed = c.templates.get(i).copied();
        let template = match (fixed, &v.template) {
            (Some((id, _)), _) => store.template(id).await?,
            (None, NameOrId::Id(id)) => store.template(*id).await?,
            (None, NameOrId::Name(n)) => store.template_by_name(n).await?,
        };
        if i == 0 {
            first_channel = template.as_ref().map(|x| x.channel.clone());
        }
        variants.push(VariantLine {
            name: v.name.clone(),
            template: match (&template, &v.template) {
                (Some(x), _) => x.name.clone(),
                (None, NameOrId::Id(id)) => format!("#{id}"),
                (None, NameOrId::Name(n)) => n.clone(),
            },
            template_id: template.map(|x| x.id),
            version: fixed.map(|(_, version)| version),
            delay: v.delay.as_ref().map(|d| duration_text(t, d.as_millis())),
        });
    }
    let mut settings = Vec::new();
    let channel = def.channel.clone().or(first_channel).unwrap_or_default();
    settings.push((t.get("campaign-channel"), t.get(&format!("channel-kind-{channel}"))));
    match &def.test {
        Some(test) => {
            settings.push((
                t.get("campaign-test"),
                t.args(
                    "campaign-test-summary",
                    &[
                        ("share", &t.num(test.share as i64)),
                        (
                            "metric",
                            &t.get(&format!("campaign-metric-{}", metric_name(test.metric))),
                        ),
                        ("duration", &duration_text(t, test.duration.as_millis())),
                    ],
                ),
            ));
            settings.push((t.get("campaign-test-rule"), rule_text(t, &test.rule)));
            settings.push((
                t.get("campaign-test-fallback"),
                t.get(&format!("campaign-fallback-{}", fallback_name(test.fallback))),
            ));
        }
        None if def.variants.len() > 1 => settings.push((t.get("campaign-test"), t.get("campaign-test-none-split"))),
        None => settings.push((t.get("campaign-test"), t.get("campaign-test-none"))),
    }
    settings.push((t.get("campaign-holdout"), t.percent(def.holdout as f64 / 100.0, 0)));
    settings.push((
        t.get("campaign-throttle"),
        match def.throttle_per_hour {
            Some(n) => t.arg("campaign-throttle-value", "n", t.num(n as i64)),
            None => t.get("campaign-throttle-none"),
        },
    ));
    settings.push((
        t.get("campaign-quiet-hours"),
        match &def.quiet_hours {
            Some(q) => t.args("campaign-quiet-hours-value", &[("start", &q.start), ("end", &q.end)]),
            None => t.get("campaign-quiet-hours-none"),
        },
    ));
    settings.push((t.get("campaign-cap-defer"), duration_text(t, def.cap_defer_limit_ms())));
    Ok((audience, exclude, variants, settings))
}

fn metric_name(m: WinnerMetric) -> &'static str {
    match m {
        WinnerMetric::OpenRate => "open_rate",
        WinnerMetric::ClickRate => "click_rate",
        WinnerMetric::ConversionRate => "conversion_rate",
        WinnerMetric::RevenuePerRecipient => "revenue_per_recipient",
    }
}

fn fallback_name(f: Fallback) -> &'static str {
    match f {
        Fallback::Control => "control",
        Fallback::BestObserved => "best_observed",
    }
}

fn rule_text(t: &Tr, rule: &Rule) -> String {
    match *rule {
        Rule::ProbabilityToBeBest { threshold } => {
            t.arg("campaign-rule-probability", "threshold", t.percent(threshold, 0))
        }
        Rule::SignificanceTest { alpha } => t.arg("campaign-rule-significance", "alpha", t.decimal(alpha, 3)),
    }
}

fn schedule_text(t: &Tr, s: &Schedule) -> String {
    match s {
        Schedule::Now => t.get("campaign-schedule-now"),
        Schedule::At { at } => t.arg("campaign-schedule-at", "at", t.datetime(*at)),
        Schedule::LocalTime { date, time } => t.args("campaign-schedule-local", &[("date", date), ("time", time)]),
    }
}

/// The whole page, with `errors` (a refused send or action) and the send form as
/// posted.
async fn campaign_page(
    state: &WebState,
    viewer: &Viewer,
    c: Campaign,
    errors: FieldErrors,
    send: SendForm,
) -> Response {
    let t = &viewer.t;
    let Some(def) = definition_of(&c) else {
        return render::error(t, StatusCode::INTERNAL_SERVER_ERROR, t.get("error-internal-detail"));
    };
    let (audience, exclude, variants, settings) = match describe(state, t, &c, &def).await {
        Ok(d) => d,
        Err(e) => return render::app_error(t, e),
    };
    let live = if c.status == CampaignStatus::Draft {
        None
    } else {
        match live_of(state, viewer, &c).await {
            Ok(l) => Some(l.render().unwrap_or_default()),
            Err(e) => return render::app_error(t, e),
        }
    };
    let audience_now = if c.status == CampaignStatus::Draft {
        match state.app().campaign_audience_size(&def.audience).await {
            Ok(n) => Some(n),
            Err(e) => return render::app_error(t, e),
        }
    } else {
        None
    };
    let failed = !errors.0.is_empty();
    let mut resp = render::page(&CampaignPage {
        c: viewer.chrome("campaigns", format!("/campaigns/{}", c.id)),
        status_name: status_name(t, c.status),
        settings,
        audience,
        exclude,
        variants,
        errors,
        live,
        send,
        zone: t.zone().iana_name().unwrap_or("UTC").to_owned(),
        audience_now,
        definition_json: serde_json::to_string_pretty(&c.definition).unwrap_or_default(),
        campaign: c,
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

/// `GET /campaigns/{id}`
pub async fn page(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    match load(&state, &viewer.t, &raw).await {
        Ok(c) => campaign_page(&state, &viewer, c, FieldErrors::default(), SendForm::default()).await,
        Err(r) => r,
    }
}

// ---------------------------------------------------------------------------------
// The part that refreshes: status, actions, progress and the report.

/// One variant's line of the comparison, formatted.
pub struct VariantRow {
    pub name: String,
    pub template: String,
    pub recipients: String,
    pub delivered: String,
    pub opened: String,
    pub open_rate: String,
    pub clicked: String,
    pub click_rate: String,
    pub converted: String,
    pub conversion_rate: String,
    pub revenue: String,
    pub revenue_per_recipient: String,
    pub unsubscribed: String,
    pub complained: String,
    /// The lift over the holdout in conversion rate and in revenue per recipient,
    /// with its class (`good` above, `bad` below, `muted` equal).
    pub conversion_lift: Option<(String, &'static str)>,
    pub revenue_lift: Option<(String, &'static str)>,
    /// Under a test: the metric's rate, its 95 % interval, the probability to be
    /// best and the p-value against the control.
    pub metric: Option<String>,
    pub interval: Option<String>,
    pub best: Option<String>,
    pub p_value: Option<String>,
    pub winner: bool,
}

/// The holdout's line: recipients and their conversions.
pub struct HoldoutRow {
    pub recipients: String,
    pub converted: String,
    pub conversion_rate: String,
    pub revenue: String,
    pub revenue_per_recipient: String,
}

/// Clicks of one link of one variant.
pub struct LinkRow {
    pub variant: String,
    pub url: String,
    pub clicks: String,
    pub unique_clicks: String,
}

pub struct DomainRow {
    pub domain: String,
    pub sent: String,
    pub delivered: String,
    pub bounced: String,
    pub failed: String,
}

/// What the page shows of the test.
pub struct TestView {
    /// The metric's name (the column's heading).
    pub metric: String,
    pub ends: Option<String>,
    /// Who chose the winner and how, once chosen.
    pub decision: Option<String>,
    /// Under the significance test, the level each p-value is compared with.
    pub level: Option<String>,
    /// The winner's counts include the remainder's since it was chosen.
    pub note: bool,
}

#[derive(Template)]
#[template(path = "campaign_live.html")]
pub struct Live {
    t: Tr,
    csrf: String,
    can_edit: bool,
    id: i64,
    status: CampaignStatus,
    status_name: String,
    /// The fragment's URL while sending goes on.
    poll: Option<String>,
    /// Label and value: schedule, start, sent, completed.
    times: Vec<(String, String)>,
    actions: Vec<CampaignAction>,
    deletable: bool,
    /// The variants a person may pick as the winner now (index, name).
    pickable: Vec<(u8, String)>,
    audience: u64,
    held_out: u64,
    queued: u64,
    skipped: u64,
    pending: u64,
    snapshot_done: bool,
    /// Queued or skipped out of those who get a message.
    done: u64,
    total: u64,
    rows: Vec<VariantRow>,
    holdout: Option<HoldoutRow>,
    links: Vec<LinkRow>,
    test: Option<TestView>,
    hourly: Option<String>,
    opens_by_hour: Option<String>,
    clicks_by_hour: Option<String>,
    domains: Vec<DomainRow>,
}

impl Live {
    fn action_label(&self, a: &CampaignAction) -> String {
        self.t.get(&format!("campaign-action-{}", a.as_str()))
    }
    fn action_confirm(&self, a: &CampaignAction) -> String {
        match a {
            CampaignAction::Cancel => self.t.get("campaign-cancel-confirm"),
            _ => String::new(),
        }
    }
}

/// Whether a status change applies now (the core's lifecycle decides).
fn applies(c: &Campaign, command: &Command, now: Millis) -> bool {
    c.status.apply(command, now, c.start_at).is_ok()
}

/// Who chose the winner and how, from the stored decision.
fn decision_text(t: &Tr, decision: &Value) -> String {
    let by = &decision["decided_by"];
    let text = match by["by"].as_str() {
        Some("manual") => match by["user"].as_str() {
            Some(user) => t.arg("campaign-decided-manual", "user", user),
            None => t.get("campaign-decided-manual-anonymous"),
        },
        Some("error") => t.arg(
            "campaign-decided-error",
            "error",
            by["error"].as_str().unwrap_or_default(),
        ),
        _ => match serde_json::from_value::<DecidedBy>(by.clone()) {
            Ok(DecidedBy::Rule { rule }) => t.arg("campaign-decided-rule", "rule", rule_text(t, &rule)),
            Ok(DecidedBy::Fallback { fallback, reason }) => t.args(
                "campaign-decided-fallback",
                &[
                    (
                        "fallback",
                        &t.get(&format!("campaign-fallback-{}", fallback_name(fallback))),
                    ),
                    (
                        "reason",
                        &t.get(match reason {
                            NoWinner::NotSignificant => "campaign-reason-not-significant",
                            NoWinner::NotEnoughData => "campaign-reason-not-enough-data",
                        }),
                    ),
                ],
            ),
            Err(_) => by.to_string(),
        },
    };
    match decision["at"].as_i64() {
        Some(at) => t.args("campaign-decided-at", &[("decision", &text), ("at", &t.datetime(at))]),
        None => text,
    }
}

/// A p-value as shown: four decimals, or "below 0.0001".
fn p_value_text(t: &Tr, p: f64) -> String {
    if p < 0.0001 {
        t.arg("campaign-p-below", "p", t.decimal(0.0001, 4))
    } else {
        t.decimal(p, 4)
    }
}

fn report_rows(t: &Tr, r: &CampaignReport) -> Vec<VariantRow> {
    let rate = |x: Option<f64>| x.map(|x| t.percent(x, 1)).unwrap_or_else(|| "–".into());
    let proportion = r.test.as_ref().is_none_or(|x| x.metric.is_proportion());
    let figure = |x: f64| {
        if proportion { t.percent(x, 1) } else { t.decimal(x, 2) }
    };
    r.variants
        .iter()
        .map(|v| {
            let c = &v.counts;
            let s = v.stats.as_ref();
            VariantRow {
                name: v.name.clone(),
                template: match (&v.template_name, v.template_version) {
                    (Some(n), Some(version)) => t.args(
                        "campaign-template-version",
                        &[("template", n), ("version", &t.num(version))],
                    ),
                    (Some(n), None) => n.clone(),
                    (None, _) => v.template_id.map(|id| format!("#{id}")).unwrap_or_default(),
                },
                recipients: t.num(c.recipients),
                delivered: t.num(c.delivered),
                opened: t.num(c.unique_opened),
                open_rate: rate(v.open_rate),
                clicked: t.num(c.unique_clicked),
                click_rate: rate(v.click_rate),
                converted: t.num(c.converted),
                conversion_rate: rate(v.conversion_rate),
                revenue: t.decimal(c.revenue, 2),
                revenue_per_recipient: per_recipient(t, v.revenue_per_recipient),
                unsubscribed: t.num(c.unsubscribed),
                complained: t.num(c.complained),
                conversion_lift: v
                    .lift_vs_holdout
                    .and_then(|l| l.conversion_rate)
                    .map(|l| lift_text(t, l, true)),
                revenue_lift: v
                    .lift_vs_holdout
                    .and_then(|l| l.revenue_per_recipient)
                    .map(|l| lift_text(t, l, false)),
                metric: s.map(|s| figure(s.rate)),
                interval: s.map(|s| {
                    t.args(
                        "campaign-interval",
                        &[("low", &figure(s.ci_low)), ("high", &figure(s.ci_high))],
                    )
                }),
                best: s.map(|s| t.percent(s.probability_to_be_best, 1)),
                p_value: s.map(|s| match s.p_value_vs_control {
                    Some(p) => p_value_text(t, p),
                    None => "–".into(),
                }),
                winner: v.winner,
            }
        })
        .collect()
}

/// A lift over the holdout: the difference (percentage points for a rate, money for
/// revenue per recipient) with its sign, and the relative change when there is one.
fn lift_text(t: &Tr, lift: Lift, rate: bool) -> (String, &'static str) {
    let sign = |x: f64| if x > 0.0 { "+" } else { "" };
    let absolute = if rate {
        t.arg(
            "campaign-points",
            "value",
            format!("{}{}", sign(lift.absolute), t.decimal(lift.absolute * 100.0, 1)),
        )
    } else {
        format!("{}{}", sign(lift.absolute), t.decimal(lift.absolute, 2))
    };
    let value = match lift.relative {
        Some(r) => format!("{absolute} ({}{})", sign(r), t.percent(r, 0)),
        None => absolute,
    };
    let class = if lift.absolute > 0.0 {
        "good"
    } else if lift.absolute < 0.0 {
        "bad"
    } else {
        "muted"
    };
    (t.arg("campaign-lift", "value", value), class)
}

/// Revenue per recipient as shown ("12.50 per recipient"), "–" without recipients.
fn per_recipient(t: &Tr, x: Option<f64>) -> String {
    x.map(|x| t.arg("campaign-per-recipient", "value", t.decimal(x, 2)))
        .unwrap_or_else(|| "–".into())
}

fn holdout_row(t: &Tr, r: &CampaignReport) -> Option<HoldoutRow> {
    let h = &r.holdout;
    let rate = |x: Option<f64>| x.map(|x| t.percent(x, 1)).unwrap_or_else(|| "–".into());
    (h.recipients > 0).then(|| HoldoutRow {
        recipients: t.num(h.recipients),
        converted: t.num(h.converted),
        conversion_rate: rate(h.conversion_rate),
        revenue: t.decimal(h.revenue, 2),
        revenue_per_recipient: per_recipient(t, h.revenue_per_recipient),
    })
}

fn link_rows(t: &Tr, r: &CampaignReport) -> Vec<LinkRow> {
    r.links
        .iter()
        .take(50)
        .map(|l| LinkRow {
            variant: r
                .variants
                .get(usize::from(l.variant))
                .map(|v| v.name.clone())
                .unwrap_or_else(|| l.variant.to_string()),
            url: l.url.clone(),
            clicks: t.num(l.clicks),
            unique_clicks: t.num(l.unique_clicks),
        })
        .collect()
}

/// The hourly series since the send (opens, clicks, conversions), hours without a
/// count drawn as 0, from the hour before the first count (nothing yet: the line
/// starts from its baseline, also when everything happened within one hour).
fn hourly_chart(t: &Tr, r: &CampaignReport) -> Option<String> {
    let (first, last) = (r.hourly.first()?.at - HOUR, r.hourly.last()?.at);
    let end = r
        .campaign
        .completed_at
        .map(|c| (c / HOUR) * HOUR)
        .unwrap_or(last)
        .max(last);
    let n = ((end - first) / HOUR + 1).clamp(1, 90 * 24) as usize;
    let by_hour: BTreeMap<Millis, &BTreeMap<String, f64>> = r.hourly.iter().map(|p| (p.at, &p.counts)).collect();
    let series = [
        ("opened", "campaign-series-opens"),
        ("clicked", "campaign-series-clicks"),
        ("conversions", "campaign-series-conversions"),
    ]
    .map(|(counter, label)| Series {
        class: counter,
        label: t.get(label),
        values: (0..n)
            .map(|i| {
                by_hour
                    .get(&(first + i as Millis * HOUR))
                    .and_then(|c| c.get(counter))
                    .copied()
                    .unwrap_or(0.0)
            })
            .collect(),
    });
    let label = |i: usize| {
        let at = first + i as Millis * HOUR;
        format!("{} {}", t.day_month(at), t.hour(at))
    };
    let mut ticks = vec![0, n / 2, n - 1];
    ticks.dedup();
    let ticks: Vec<(usize, String)> = ticks.into_iter().map(|i| (i, label(i))).collect();
    Some(chart::lines(
        &series,
        &ticks,
        &t.get("campaign-chart-hourly"),
        |v| t.num(v.round() as i64),
        t.lang.is_rtl(),
    ))
}

/// Opens or clicks by hour of the day (the workspace's), as bars.
fn hours_chart(t: &Tr, r: &CampaignReport, clicks: bool, title: &str) -> Option<String> {
    if r.hours_of_day.iter().all(|h| h.opened == 0 && h.clicked == 0) {
        return None;
    }
    let bars: Vec<Bar> = r
        .hours_of_day
        .iter()
        .map(|h| {
            let value = if clicks { h.clicked } else { h.opened };
            Bar {
                label: if h.hour % 3 == 0 {
                    t.num(h.hour as i64)
                } else {
                    String::new()
                },
                value: value as f64,
                shown: t.args(
                    "campaign-hour-bar",
                    &[("hour", &t.num(h.hour as i64)), ("n", &t.num(value))],
                ),
            }
        })
        .collect();
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    Some(chart::bars(&bars, title, &t.num(max as i64), t.lang.is_rtl()))
}

async fn live_of(state: &WebState, viewer: &Viewer, c: &Campaign) -> Result<Live, AppError> {
    let t = &viewer.t;
    let now = state.now();
    let report = state.app().campaign_report(c.id).await?;
    let def = definition_of(c);
    let mut times = Vec::new();
    if let Some(s) = &c.schedule {
        times.push((t.get("campaign-schedule"), schedule_text(t, s)));
    }
    for (label, at) in [
        (
            "campaign-starts-at",
            c.start_at
                .filter(|_| c.sent_at.is_none() || c.status == CampaignStatus::Scheduled),
        ),
        ("campaign-sent-at", c.sent_at),
        ("campaign-completed-at", c.completed_at),
    ] {
        if let Some(at) = at {
            times.push((t.get(label), t.datetime(at)));
        }
    }
    let actions = CampaignAction::ALL
        .into_iter()
        .filter(|a| {
            let command = match a {
                CampaignAction::Pause => Command::Pause,
                CampaignAction::Resume => Command::Resume,
                CampaignAction::Cancel => Command::Cancel,
            };
            applies(c, &command, now)
        })
        .collect();
    let test_running = def.as_ref().is_some_and(|d| d.test.is_some())
        && c.winner.is_none()
        && matches!(c.status, CampaignStatus::Sending | CampaignStatus::Paused)
        && c.test_ends_at.is_none_or(|end| end > now);
    let pickable = if test_running {
        report.variants.iter().map(|v| (v.variant, v.name.clone())).collect()
    } else {
        Vec::new()
    };
    let test = report.test.as_ref().map(|x| TestView {
        metric: t.get(&format!("campaign-metric-{}", metric_name(x.metric))),
        // Once a winner is chosen (or the campaign is over) the end no longer matters.
        ends: x
            .ends_at
            .filter(|_| {
                x.winner.is_none() && !matches!(c.status, CampaignStatus::Completed | CampaignStatus::Cancelled)
            })
            .map(|e| t.datetime(e)),
        decision: x.decision.as_ref().map(|d| decision_text(t, d)),
        level: x.significance_level.map(|l| t.decimal(l, 4)),
        note: x.winner.is_some(),
    });
    let domains = report
        .domains
        .iter()
        .map(|d| DomainRow {
            domain: d.domain.clone(),
            sent: t.num(d.sent),
            delivered: t.num(d.delivered),
            bounced: t.num(d.bounced),
            failed: t.num(d.failed),
        })
        .collect();
    let polling = matches!(c.status, CampaignStatus::Scheduled | CampaignStatus::Sending);
    Ok(Live {
        t: t.clone(),
        csrf: viewer.session.csrf.clone(),
        can_edit: viewer.session.user.role.allows(Permission::Edit),
        id: c.id,
        status: c.status,
        status_name: status_name(t, c.status),
        poll: polling.then(|| format!("/campaigns/{}/live", c.id)),
        times,
        actions,
        deletable: matches!(c.status, CampaignStatus::Completed | CampaignStatus::Cancelled),
        pickable,
        audience: c.audience,
        held_out: c.held_out,
        queued: c.queued,
        skipped: c.skipped,
        pending: c.pending(),
        snapshot_done: c.snapshot_done,
        done: c.queued + c.skipped,
        total: c.audience.saturating_sub(c.held_out),
        rows: report_rows(t, &report),
        holdout: holdout_row(t, &report),
        links: link_rows(t, &report),
        hourly: hourly_chart(t, &report),
        opens_by_hour: hours_chart(t, &report, false, &t.get("campaign-chart-opens-by-hour")),
        clicks_by_hour: hours_chart(t, &report, true, &t.get("campaign-chart-clicks-by-hour")),
        test,
        domains,
    })
}

/// `GET /campaigns/{id}/live`: status, actions, progress and report (polled while
/// the campaign is scheduled or sending).
pub async fn live(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    let t = &viewer.t;
    let c = match load(&state, t, &raw).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match live_of(&state, &viewer, &c).await {
        Ok(l) => render::page(&l),
        Err(e) => render::app_error(t, e),
    }
}

/// `GET /campaigns/{id}/report.csv`: the report as CSV (one row per variant and the
/// holdout), as the API gives it.
pub async fn report_csv(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    let t = &viewer.t;
    let id = match parse_id(t, &raw) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let csv = match state.app().campaign_report(id).await {
        Ok(r) => nudge_app::campaigns::report_csv(&r),
        Err(e) => Err(e),
    };
    match csv {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"campaign-{id}-report.csv\""),
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => render::app_error(t, e),
    }
}

// ---------------------------------------------------------------------------------
// Commands.

/// The schedule the send form describes: `Err` names the input at fault.
fn schedule_of(t: &Tr, f: &SendForm) -> Result<Schedule, FieldErrors> {
    let one = |field: &str, message: String| Err(FieldErrors(vec![(field.to_owned(), message)]));
    let value = match f.schedule.as_str() {
        "" | "now" => json!({"type": "now"}),
        "at" => {
            let typed = number(&f.at).unwrap_or_default();
            let Ok(civil) = typed.parse::<jiff::civil::DateTime>() else {
                return one("at", t.get("campaign-error-datetime"));
            };
            match civil.to_zoned(t.zone().clone()) {
                Ok(z) => json!({"type": "at", "at": z.timestamp().to_string()}),
                Err(_) => return one("at", t.get("campaign-error-datetime")),
            }
        }
        "local_time" => json!({"type": "local_time", "date": number(&f.date).unwrap_or_default(),
                               "time": number(&f.time).unwrap_or_default()}),
        _ => json!({"type": f.schedule}),
    };
    nudge_app::campaigns::schedule(&value).map_err(|e| match e {
        AppError::InvalidField { field, message } => {
            let field = field.strip_prefix("schedule.").unwrap_or(&field);
            let field = if field == "type" { "schedule" } else { field };
            FieldErrors(vec![(field.to_owned(), message)])
        }
        e => FieldErrors(vec![(String::new(), e.to_string())]),
    })
}

/// A refused command as errors on the campaign's page.
fn refusal(e: AppError) -> Result<FieldErrors, AppError> {
    match e {
        AppError::Conflict(m) => Ok(FieldErrors(vec![(String::new(), m)])),
        AppError::Store(StoreError::Conflict(m)) => Ok(FieldErrors(vec![(String::new(), m)])),
        AppError::InvalidDefinition { problems, .. } => Ok(FieldErrors(
            problems
                .into_iter()
                .map(|p| (String::new(), format!("{}: {}", p.field, p.message)))
                .collect(),
        )),
        e @ (AppError::InvalidField { .. } | AppError::MissingField { .. } | AppError::NotFound { .. }) => {
            Ok(FieldErrors::from_app(&e))
        }
        e => Err(e),
    }
}

/// After a command: the campaign's page again, or the refusal on it.
async fn after(
    state: &WebState,
    viewer: &Viewer,
    id: i64,
    outcome: Result<Campaign, AppError>,
    send: SendForm,
) -> Response {
    let t = &viewer.t;
    match outcome {
        Ok(c) => Redirect::to(&format!("/campaigns/{}", c.id)).into_response(),
        Err(e) => match refusal(e) {
            Ok(errors) => match state.app().campaign(id).await {
                Ok(c) => {
                    let mut resp = campaign_page(state, viewer, c, errors, send).await;
                    *resp.status_mut() = StatusCode::CONFLICT;
                    resp
                }
                Err(e) => render::app_error(t, e),
            },
            Err(e) => render::app_error(t, e),
        },
    }
}

/// `POST /campaigns/{id}/send`: sends a draft now, at a time, or at a local time.
pub async fn send(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<SendForm>,
) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    let c = match load(&state, t, &raw).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let schedule = match schedule_of(t, &f) {
        Ok(s) => s,
        Err(errors) => return campaign_page(&state, &viewer, c, errors, f).await,
    };
    let outcome = state.app().send_campaign(c.id, schedule).await;
    after(&state, &viewer, c.id, outcome, f).await
}

/// `POST /campaigns/{id}/{action}`: pause, resume or cancel.
pub async fn action(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((raw, action)): Path<(String, String)>,
) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    let Some(action) = CampaignAction::parse(&action) else {
        return render::error(t, StatusCode::NOT_FOUND, t.get("error-no-page"));
    };
    let c = match load(&state, t, &raw).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let outcome = state.app().campaign_action(c.id, action).await;
    after(&state, &viewer, c.id, outcome, SendForm::default()).await
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct WinnerForm {
    variant: String,
}

/// `POST /campaigns/{id}/winner`: a person picks the test's winner.
pub async fn winner(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<WinnerForm>,
) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    let c = match load(&state, t, &raw).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(variant) = number(&f.variant).and_then(|v| v.parse::<u8>().ok()) else {
        let errors = FieldErrors(vec![(String::new(), t.get("campaign-error-variant"))]);
        return campaign_page(&state, &viewer, c, errors, SendForm::default()).await;
    };
    let user = Some(viewer.session.user.email.clone());
    let outcome = state.app().pick_campaign_winner(c.id, variant, user).await;
    after(&state, &viewer, c.id, outcome, SendForm::default()).await
}

/// `POST /campaigns/{id}/delete`: a draft, completed or cancelled campaign.
pub async fn delete(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    let c = match load(&state, t, &raw).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match state.app().delete_campaign(c.id).await {
        Ok(()) => Redirect::to("/campaigns").into_response(),
        Err(e) => after(&state, &viewer, c.id, Err(e), SendForm::default()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{ArabicCalendar, Lang};
    use crate::testing::posted;

    fn tr(lang: Lang) -> Tr {
        Tr::new(lang, jiff::tz::TimeZone::UTC, ArabicCalendar::Gregorian)
    }

    fn form_html(t: &Tr, f: &CampaignForm, errors: FieldErrors) -> String {
        EditorForm {
            t,
            csrf: "tok".into(),
            f,
            errors,
            audience: vec![SegmentOpt {
                id: 4,
                name: "VIP <b>".into(),
                size: 12,
                checked: f.segments.contains(&4),
                missing: false,
            }],
            exclude: vec![SegmentOpt {
                id: 9,
                name: "Staff".into(),
                size: 3,
                checked: f.exclude.contains(&9),
                missing: false,
            }],
            templates: vec![
                (7, "Spring <i>".into(), "email".into()),
                (8, "Long".into(), "email".into()),
            ],
            can_edit: true,
            cancel: "/campaigns".into(),
            preview: None,
        }
        .render()
        .unwrap()
    }

    #[test]
    fn the_rendered_form_posts_back_the_same_form_in_every_language() {
        let mut f = CampaignForm::blank();
        f.name = "Spring \"sale\" <script>".into();
        f.segments = vec![4];
        f.exclude = vec![9];
        f.channel = "email".into();
        f.apply("add_variant");
        f.variants[0].template = "7".into();
        f.variants[1].template = "8".into();
        f.variants[1].delay = "2".into();
        f.test = true;
        f.share = "50".into();
        f.rule = "significance_test".into();
        f.alpha = "0.01".into();
        f.fallback = "best_observed".into();
        f.holdout = "5".into();
        f.throttle = "100".into();
        f.quiet_start = "21:00".into();
        f.quiet_end = "08:00".into();
        f.cap_defer = "2".into();
        for lang in Lang::ALL {
            let t = tr(lang);
            let html = form_html(&t, &f, FieldErrors::default());
            assert!(!html.contains("<script>") && !html.contains("VIP <b>") && !html.contains("Spring <i>"));
            let (back, _) = CampaignForm::from_fields(&posted(&html));
            assert_eq!(back, f, "{}", lang.code());
        }
    }

    #[test]
    fn problems_show_next_to_their_inputs() {
        let mut f = CampaignForm::blank();
        f.test = true;
        f.apply("add_variant");
        let errors = FieldErrors(vec![
            ("test.share".into(), "a percent of the audience from 1 to 100".into()),
            ("variants[1].template".into(), "no template <named>".into()),
            (String::new(), "form-wide".into()),
        ]);
        let html = form_html(&tr(Lang::En), &f, errors);
        let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} in {html}"));
        // Each problem is shown after its input, before the next group of inputs.
        let message = at("a percent of the audience from 1 to 100");
        assert!(at("name=\"test.share\"") < message && message < at("name=\"test.rule\""));
        let message = at("no template &#60;named&#62;");
        assert!(at("name=\"variants[1].template\"") < message && message < at("id=\"add-variant\""));
        assert!(at("name=\"variants[0].template\"") < at("name=\"variants[1].name\""));
        assert!(html.contains("form-wide"));
    }

    #[test]
    fn decisions_say_who_chose_and_how() {
        let t = tr(Lang::En);
        let bare = |s: String| s.replace(['\u{2068}', '\u{2069}'], "");
        let rule = json!({"decided_by": {"by": "rule", "rule": {"type": "probability_to_be_best", "threshold": 0.95}}, "at": 0});
        assert!(
            bare(decision_text(&t, &rule)).contains("95%"),
            "{}",
            decision_text(&t, &rule)
        );
        let fallback = json!({"decided_by": {"by": "fallback", "fallback": "control", "reason": "not_significant"}});
        assert!(bare(decision_text(&t, &fallback)).contains("control"));
        let manual = json!({"decided_by": {"by": "manual", "user": "ana@example.com"}});
        assert!(bare(decision_text(&t, &manual)).contains("ana@example.com"));
    }

    #[test]
    fn a_time_to_send_at_is_in_the_workspace_zone() {
        let t = Tr::new(
            Lang::En,
            jiff::tz::TimeZone::get("Asia/Tehran").unwrap(),
            ArabicCalendar::Gregorian,
        );
        let f = SendForm {
            schedule: "at".into(),
            at: "۲۰۲۷-۰۳-۱۶T09:00".into(),
            ..Default::default()
        };
        // 09:00 in Tehran (UTC+3:30) is 05:30 UTC.
        assert_eq!(
            schedule_of(&t, &f).unwrap(),
            Schedule::At {
                at: "2027-03-16T05:30:00Z"
                    .parse::<jiff::Timestamp>()
                    .unwrap()
                    .as_millisecond()
            }
        );
        let bad = SendForm {
            schedule: "local_time".into(),
            date: "2027-02-30".into(),
            time: "09:00".into(),
            ..Default::default()
        };
        assert_eq!(schedule_of(&t, &bad).unwrap_err().0[0].0, "date");
        let bad = SendForm {
            schedule: "at".into(),
            at: "soon".into(),
            ..Default::default()
        };
        assert_eq!(schedule_of(&t, &bad).unwrap_err().0[0].0, "at");
    }
}
