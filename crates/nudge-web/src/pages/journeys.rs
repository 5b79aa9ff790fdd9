//! Journeys: the list with the ready-made gallery; a journey's page (its diagram with
//! live per-step numbers, the step inspector, status actions, versions); editing; and
//! the dry run, drawn on the same diagram.
//!
//! The diagram is `nudge_core::journey::layout`'s SVG, drawn on the server (mirrored
//! for right-to-left languages) with the numbers as extra lines in each step's box,
//! so it reads without JavaScript. htmx refreshes it every few seconds
//! (`/journeys/{id}/live`) and, when a step is clicked, fetches the step's settings
//! into the side panel (`/journeys/{id}/inspect?step=…`; `?step=…` on the page does
//! the same without JavaScript).
//!
//! Editing is the JSON editor, not a drag-and-drop canvas: the definition is edited
//! as JSON (the API's format, `docs/journeys.md`) in a textarea. "Validate" draws the
//! draft with its problems marked at the steps they name and lists them; "Save"
//! creates a new version; publishing offers to move the runs waiting at steps the new
//! version no longer has. A canvas editor would need far more script than the page
//! budget allows and a second way to describe every step; the JSON editor works
//! without JavaScript and can express every definition.

use crate::WebState;
use crate::auth::{FieldErrors, Viewer};
use crate::i18n::Tr;
use crate::render::{self, Chrome};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use nudge_app::journeys::{DefinitionProblem, DefinitionSource, DryRun, JourneyAction, definition_problems};
use nudge_app::ready_made_journeys::ready_made_journeys;
use nudge_core::access::Permission;
use nudge_core::journey::layout::{LayoutOptions, SvgOptions, lay_out, svg};
use nudge_core::journey::{JourneyDefinition, Step, StepKind, Trigger};
use nudge_store::{Journey, JourneyStats, JourneyStatus, NewJourney, StepStats};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Most extra lines of numbers a step's box gets.
const MAX_LINES: usize = 4;
/// Versions listed on a journey's page (the latest first).
const VERSIONS_SHOWN: i64 = 20;
/// The definition a new journey starts from.
const BLANK: &str = r#"{
  "trigger": {"type": "event", "event": "Signed Up"},
  "start": "wait",
  "steps": [
    {"id": "wait", "type": "wait", "duration": {"days": 1}, "next": "hello"},
    {"id": "hello", "type": "send", "template": "welcome"}
  ]
}"#;

// ---------------------------------------------------------------------------------
// Pure helpers: what the diagram shows.

/// What can be drawn of a definition that may not be valid: the trigger (an API
/// trigger when it does not read), `start`, and the steps that read; an exit naming a
/// step left out points at a "missing" box.
pub fn drawable(raw: &Value) -> JourneyDefinition {
    JourneyDefinition {
        trigger: serde_json::from_value(raw["trigger"].clone()).unwrap_or(Trigger::Api),
        start: raw["start"].as_str().unwrap_or_default().to_owned(),
        steps: raw["steps"]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .filter_map(|s| serde_json::from_value::<Step>(s.clone()).ok())
                    .collect()
            })
            .unwrap_or_default(),
        settings: Default::default(),
    }
}

/// An exit's name in the UI's language: `yes`, `timed out`, a variant's name, `case 2`.
pub fn exit_label(t: &Tr, kind: &StepKind, exit: &str) -> String {
    let index = |prefix: &str| {
        exit.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("].next"))
            .and_then(|i| i.parse::<usize>().ok())
    };
    if let (StepKind::Split { variants }, Some(i)) = (kind, index("variants[")) {
        return variants
            .get(i)
            .and_then(|v| v.name.clone())
            .unwrap_or_else(|| format!("{}%", t.num(variants.get(i).map_or(0, |v| v.percent as i64))));
    }
    if let Some(i) = index("cases[") {
        return t.arg("exit-case", "n", t.num(i + 1));
    }
    match exit {
        "next" | "yes" | "no" | "on_event" | "on_timeout" | "default" => t.get(&format!("exit-{exit}")),
        other => other.to_owned(),
    }
}

/// The numbers a step's box shows, one line each: reached and waiting; sent, opened
/// and clicked for a send; conversions (and the journey's revenue, when every
/// conversion came through this step) for a goal; runs per exit for a step with several.
pub fn step_lines(t: &Tr, step: &Step, s: &StepStats, revenue: Option<f64>) -> Vec<String> {
    let pair = |a: String, b: String| format!("{a} · {b}");
    let n = |id: &str, v: i64| t.arg(id, "n", t.num(v));
    let mut lines = vec![pair(n("num-reached", s.reached), n("num-waiting", s.active))];
    match &step.kind {
        StepKind::Send { .. } => {
            lines.push(pair(n("num-sent", s.sent), n("num-opened", s.opened)));
            lines.push(n("num-clicked", s.clicked));
        }
        StepKind::Goal { .. } => {
            lines.push(n("num-conversions", s.reached));
            if let Some(r) = revenue {
                lines.push(t.arg("num-revenue", "n", t.decimal(r, 2)));
            }
        }
        kind => {
            let exits = kind.exits();
            if exits.len() > 1 {
                for (exit, _) in exits {
                    let count = s.exits.get(&exit).copied().unwrap_or(0);
                    lines.push(t.args(
                        "num-exit",
                        &[("exit", &exit_label(t, kind, &exit)), ("n", &t.num(count))],
                    ));
                }
            }
        }
    }
    lines.truncate(MAX_LINES);
    lines
}

/// The extra lines of every step from a journey's statistics.
pub fn live_lines(t: &Tr, def: &JourneyDefinition, stats: &JourneyStats) -> BTreeMap<String, Vec<String>> {
    let goals = def
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Goal { .. }))
        .count();
    let empty = StepStats::default();
    def.steps
        .iter()
        .map(|step| {
            let s = stats.steps.get(&step.id).unwrap_or(&empty);
            // Revenue is counted per journey: it is this step's when every conversion
            // came through it.
            let all_here = goals == 1 && s.reached == stats.conversions && matches!(step.kind, StepKind::Goal { .. });
            let revenue = (all_here && stats.revenue != 0.0).then_some(stats.revenue);
            (step.id.clone(), step_lines(t, step, s, revenue))
        })
        .collect()
}

/// A diagram as inline SVG: laid out with room for the longest `extra`, mirrored
/// for right-to-left languages, `problems` marked. The SVG escapes every text of the
/// definition itself (`nudge_core::journey::layout::svg`).
pub fn diagram(
    t: &Tr,
    def: &JourneyDefinition,
    extra: BTreeMap<String, Vec<String>>,
    problems: BTreeSet<String>,
    id_prefix: &str,
    title: String,
) -> String {
    let extra_lines = extra.values().map(Vec::len).max().unwrap_or(0);
    let mut layout = lay_out(def, &LayoutOptions { extra_lines });
    if t.lang.is_rtl() {
        layout = layout.mirror();
    }
    svg(
        &layout,
        &SvgOptions {
            extra,
            problems,
            standalone: false,
            id_prefix: id_prefix.to_owned(),
            title: Some(title),
        },
    )
}

/// A `move_runs` mapping from the publish form: fields `move:{old step}` whose value
/// is a new step (empty: the runs stay on their version).
pub fn move_runs_of(fields: &[(String, String)]) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("move:")?.to_owned(), v.trim().to_owned())))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .unwrap_or_default()
        .trim_start_matches('=')
        .to_owned()
}

fn status_name(t: &Tr, s: JourneyStatus) -> String {
    t.get(&format!("status-{}", s.as_str()))
}

// ---------------------------------------------------------------------------------
// The list.

pub struct JourneyRow {
    pub id: i64,
    pub name: String,
    pub status: JourneyStatus,
    pub status_name: String,
    pub version: i64,
    pub published_version: Option<i64>,
    pub entered: i64,
    pub active: i64,
    pub conversions: i64,
    pub revenue: f64,
    pub updated: String,
}

pub struct ReadyRow {
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

#[derive(Template)]
#[template(path = "journeys.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<JourneyRow>,
    gallery: Vec<ReadyRow>,
    errors: FieldErrors,
}

fn gallery() -> Vec<ReadyRow> {
    ready_made_journeys()
        .into_iter()
        .map(|r| ReadyRow {
            key: r.key,
            name: r.name,
            description: r.description,
        })
        .collect()
}

async fn list_page(state: &WebState, viewer: &Viewer, errors: FieldErrors) -> Response {
    let t = &viewer.t;
    let store = &state.api.store;
    let journeys = match store.journeys().await {
        Ok(j) => j,
        Err(e) => return render::app_error(t, e.into()),
    };
    let mut rows = Vec::with_capacity(journeys.len());
    for j in journeys {
        let stats = match store.journey_stats(j.id).await {
            Ok(s) => s,
            Err(e) => return render::app_error(t, e.into()),
        };
        rows.push(JourneyRow {
            id: j.id,
            status_name: status_name(t, j.status),
            status: j.status,
            name: j.name,
            version: j.version,
            published_version: j.published_version,
            entered: stats.entered,
            active: stats.active,
            conversions: stats.conversions,
            revenue: stats.revenue,
            updated: t.datetime(j.updated_at),
        });
    }
    let failed = !errors.0.is_empty();
    let mut resp = render::page(&ListPage {
        c: viewer.chrome("journeys", "/journeys"),
        rows,
        gallery: gallery(),
        errors,
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

/// `GET /journeys`
pub async fn list(State(state): State<WebState>, viewer: Viewer) -> Response {
    list_page(&state, &viewer, FieldErrors::default()).await
}

/// `POST /journeys/ready-made/{key}`: installs a ready-made journey (a draft).
pub async fn install(State(state): State<WebState>, viewer: Viewer, Path(key): Path<String>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    match state.app().install_ready_made_journey(&key, false).await {
        Ok(j) => Redirect::to(&format!("/journeys/{}", j.id)).into_response(),
        Err(e) => list_page(&state, &viewer, FieldErrors::from_app(&e)).await,
    }
}

// ---------------------------------------------------------------------------------
// A journey's page and its fragments.

/// Totals and the diagram with its numbers: the part of the page that refreshes.
#[derive(Template)]
#[template(path = "journey_live.html")]
pub struct Live {
    t: Tr,
    stats: JourneyStats,
    svg: String,
    /// The fragment URL when the numbers still change (a live or paused journey).
    poll: Option<String>,
    /// `/journeys/{id}/inspect?…&step=` (the step id is appended by the page's script).
    inspect: String,
    /// `/journeys/{id}?…&step=`.
    here: String,
}

/// The step inspector: one step's settings and numbers, or the list of steps.
#[derive(Template)]
#[template(path = "journey_inspector.html")]
pub struct Inspector {
    t: Tr,
    page: String,
    fragment: String,
    step: Option<InspectedStep>,
    missing: Option<String>,
    steps: Vec<(String, String)>,
}

pub struct InspectedStep {
    pub id: String,
    pub kind: String,
    pub summary: String,
    pub exits: Vec<(String, Option<String>, i64)>,
    pub numbers: Vec<(String, String)>,
    pub settings: String,
}

/// What "Validate" answers: the problems, listed and drawn on the draft.
#[derive(Template)]
#[template(path = "journey_check.html")]
pub struct Check {
    t: Tr,
    checked: bool,
    not_json: Option<String>,
    problems: Vec<DefinitionProblem>,
    svg: String,
}

impl Check {
    fn none(t: &Tr) -> Self {
        Check {
            t: t.clone(),
            checked: false,
            not_json: None,
            problems: Vec::new(),
            svg: String::new(),
        }
    }

    /// Checks a draft as typed: JSON first, then the definition's problems, drawn.
    fn of(t: &Tr, raw: &str) -> (Self, Option<Value>) {
        let value: Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => {
                let check = Check {
                    not_json: Some(t.arg("check-not-json", "error", e)),
                    checked: true,
                    ..Check::none(t)
                };
                return (check, None);
            }
        };
        let problems = definition_problems(&value);
        let marked: BTreeSet<String> = problems.iter().filter_map(|p| p.step.clone()).collect();
        let svg = diagram(
            t,
            &drawable(&value),
            BTreeMap::new(),
            marked,
            "draft",
            t.get("check-draft-diagram"),
        );
        let check = Check {
            t: t.clone(),
            checked: true,
            not_json: None,
            problems,
            svg,
        };
        (check, Some(value))
    }
}

pub struct VersionRow {
    pub version: i64,
    pub created: String,
    pub published: bool,
    pub shown: bool,
}

pub struct MoveRow {
    pub step: String,
    pub label: String,
}

/// The editor's fields as typed.
#[derive(Default)]
pub struct Draft {
    pub name: String,
    pub description: String,
    pub definition: String,
}

#[derive(Template)]
#[template(path = "journey.html")]
struct JourneyPage {
    c: Chrome,
    j: Journey,
    status_name: String,
    /// The version drawn (the latest unless `?version=`).
    shown: i64,
    live: Live,
    inspector: Inspector,
    versions: Vec<VersionRow>,
    actions: Vec<JourneyAction>,
    move_rows: Vec<MoveRow>,
    new_steps: Vec<String>,
    draft: Draft,
    errors: FieldErrors,
    check: Check,
}

/// Errors about the definition (`definition`, `definition.steps[2].next`), shown
/// under the editor's textarea.
fn definition_errors(errors: &FieldErrors) -> Vec<&str> {
    errors
        .0
        .iter()
        .filter(|(f, _)| f == "definition" || f.starts_with("definition.") || f.starts_with("definition["))
        .map(|(_, m)| m.as_str())
        .collect()
}

impl NewPage {
    fn definition_errors(&self) -> Vec<&str> {
        definition_errors(&self.errors)
    }
}

impl JourneyPage {
    fn definition_errors(&self) -> Vec<&str> {
        definition_errors(&self.errors)
    }
    /// Errors of a status action (`action`, `move_runs.{step}`), shown at the top.
    fn action_errors(&self) -> Vec<&str> {
        self.errors
            .0
            .iter()
            .filter(|(f, _)| f == "action" || f.starts_with("move_runs"))
            .map(|(_, m)| m.as_str())
            .collect()
    }
    fn action_label(&self, a: &JourneyAction) -> String {
        match a {
            JourneyAction::Publish => self.c.t.arg("action-publish-version", "version", self.j.version),
            a => self.c.t.get(&format!("action-{}", a.as_str())),
        }
    }
    fn action_confirm(&self, a: &JourneyAction) -> String {
        match a {
            JourneyAction::Stop => self.c.t.get("action-stop-confirm"),
            JourneyAction::Publish => self.c.t.get("action-publish-confirm"),
            _ => String::new(),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ViewQuery {
    version: Option<i64>,
    step: Option<String>,
}

fn version_query(version: Option<i64>) -> String {
    version.map(|v| format!("version={v}&")).unwrap_or_default()
}

/// The definition of the version shown.
async fn shown_definition(state: &WebState, t: &Tr, j: &Journey, version: Option<i64>) -> Result<Value, Response> {
    match version.filter(|v| *v != j.version) {
        None => Ok(j.definition.clone()),
        Some(v) => match state.api.store.journey_version(j.id, v).await {
            Ok(Some(jv)) => Ok(jv.definition),
            Ok(None) => Err(render::error(
                t,
                StatusCode::NOT_FOUND,
                t.arg("journey-no-version", "version", v),
            )),
            Err(e) => Err(render::app_error(t, e.into())),
        },
    }
}

async fn load_live(state: &WebState, t: &Tr, j: &Journey, version: Option<i64>, def: &Value) -> Result<Live, Response> {
    let stats = state
        .api
        .store
        .journey_stats(j.id)
        .await
        .map_err(|e| render::app_error(t, e.into()))?;
    Ok(live_of(t, j, version, def, stats))
}

fn live_of(t: &Tr, j: &Journey, version: Option<i64>, def: &Value, stats: JourneyStats) -> Live {
    let def = drawable(def);
    let extra = if j.published_version.is_some() {
        live_lines(t, &def, &stats)
    } else {
        BTreeMap::new()
    };
    let svg = diagram(
        t,
        &def,
        extra,
        BTreeSet::new(),
        "journey",
        t.arg("journey-diagram-title", "name", &j.name),
    );
    let vq = version_query(version);
    Live {
        t: t.clone(),
        stats,
        svg,
        poll: matches!(j.status, JourneyStatus::Live | JourneyStatus::Paused)
            .then(|| format!("/journeys/{}/live?{vq}", j.id)),
        inspect: format!("/journeys/{}/inspect?{vq}step=", j.id),
        here: format!("/journeys/{}?{vq}step=", j.id),
    }
}

fn inspector_of(
    t: &Tr,
    j: &Journey,
    version: Option<i64>,
    raw: &Value,
    step: Option<&str>,
    stats: &JourneyStats,
) -> Inspector {
    let def = drawable(raw);
    let vq = version_query(version);
    let steps = def.steps.iter().map(|s| (s.id.clone(), enc(&s.id))).collect::<Vec<_>>();
    let mut out = Inspector {
        t: t.clone(),
        page: format!("/journeys/{}?{vq}", j.id),
        fragment: format!("/journeys/{}/inspect?{vq}", j.id),
        step: None,
        missing: None,
        steps,
    };
    let Some(id) = step.filter(|s| !s.is_empty()) else {
        return out;
    };
    let Some(s) = def.step(id) else {
        out.missing = Some(t.arg("inspector-no-step", "step", id));
        return out;
    };
    let empty = StepStats::default();
    let st = stats.steps.get(id).unwrap_or(&empty);
    let layout = lay_out(&def, &LayoutOptions::default());
    let summary = layout
        .nodes
        .iter()
        .find(|n| n.step.as_deref() == Some(id))
        .map(|n| n.summary.clone())
        .unwrap_or_default();
    let settings = raw["steps"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["id"].as_str() == Some(id)))
        .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
        .unwrap_or_default();
    let n = |id: &str, v: i64| (t.get(id), t.num(v));
    let mut numbers = vec![n("stat-reached", st.reached), n("stat-waiting", st.active)];
    if matches!(s.kind, StepKind::Send { .. }) {
        numbers.extend([
            n("step-sent", st.sent),
            n("step-opened", st.opened),
            n("step-clicked", st.clicked),
        ]);
    }
    out.step = Some(InspectedStep {
        id: id.to_owned(),
        kind: t.get(&format!("step-type-{}", s.kind.type_name())),
        summary,
        exits: s
            .kind
            .exits()
            .into_iter()
            .map(|(exit, to)| {
                let count = st.exits.get(&exit).copied().unwrap_or(0);
                (exit_label(t, &s.kind, &exit), to.cloned(), count)
            })
            .collect(),
        numbers,
        settings,
    });
    out
}

fn parse_id(t: &Tr, raw: &str) -> Result<i64, Response> {
    raw.parse::<i64>()
        .map_err(|_| render::error(t, StatusCode::NOT_FOUND, t.arg("journey-not-found", "id", raw)))
}

async fn load_journey(state: &WebState, t: &Tr, raw: &str) -> Result<Journey, Response> {
    let id = parse_id(t, raw)?;
    match state.app().journey(id).await {
        Ok(j) => Ok(j),
        Err(nudge_app::AppError::NotFound { .. }) => Err(render::error(
            t,
            StatusCode::NOT_FOUND,
            t.arg("journey-not-found", "id", id),
        )),
        Err(e) => Err(render::app_error(t, e)),
    }
}

/// The whole page, with the editor showing `draft` (the latest version when `None`)
/// and `check` (problems of the draft), `errors` next to the fields.
async fn journey_page(
    state: &WebState,
    viewer: &Viewer,
    j: Journey,
    q: ViewQuery,
    draft: Option<Draft>,
    errors: FieldErrors,
    check: Check,
) -> Response {
    let t = &viewer.t;
    let version = q.version.filter(|v| *v != j.version);
    let raw = match shown_definition(state, t, &j, version).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let live = match load_live(state, t, &j, version, &raw).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let inspector = inspector_of(t, &j, version, &raw, q.step.as_deref(), &live.stats);
    let mut versions = Vec::new();
    for v in (1..=j.version).rev().take(VERSIONS_SHOWN as usize) {
        match state.api.store.journey_version(j.id, v).await {
            Ok(Some(jv)) => versions.push(VersionRow {
                version: v,
                created: t.datetime(jv.created_at),
                published: j.published_version == Some(v),
                shown: version.unwrap_or(j.version) == v,
            }),
            Ok(None) => {}
            Err(e) => return render::app_error(t, e.into()),
        }
    }
    let publishable = j.published_version != Some(j.version) || j.status != JourneyStatus::Live;
    let actions: Vec<JourneyAction> = JourneyAction::ALL
        .into_iter()
        .filter(|a| a.applies_to(j.status, j.published_version.is_some()))
        .filter(|a| *a != JourneyAction::Publish || publishable)
        .collect();
    let mut move_rows = Vec::new();
    if viewer.session.user.role.allows(Permission::Edit) && j.published_version.is_some() {
        match state.app().steps_to_move(&j).await {
            Ok(steps) => {
                for (step, n) in steps {
                    move_rows.push(MoveRow {
                        label: t.args("journey-move-waiting", &[("step", &step), ("n", &t.num(n))]),
                        step,
                    });
                }
            }
            Err(e) => return render::app_error(t, e),
        }
    }
    let new_steps = drawable(&j.definition).steps.into_iter().map(|s| s.id).collect();
    let draft = draft.unwrap_or_else(|| Draft {
        name: j.name.clone(),
        description: j.description.clone(),
        definition: serde_json::to_string_pretty(&j.definition).unwrap_or_default(),
    });
    let failed = !errors.0.is_empty();
    let here = format!("/journeys/{}", j.id);
    let mut resp = render::page(&JourneyPage {
        c: viewer.chrome("journeys", here),
        status_name: status_name(t, j.status),
        shown: version.unwrap_or(j.version),
        live,
        inspector,
        versions,
        actions,
        move_rows,
        new_steps,
        draft,
        errors,
        check,
        j,
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

/// `GET /journeys/{id}` (`?version=`: an earlier version's diagram; `?step=`: the
/// inspector open on a step).
pub async fn page(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let j = match load_journey(&state, &viewer.t, &raw).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    journey_page(
        &state,
        &viewer,
        j,
        q,
        None,
        FieldErrors::default(),
        Check::none(&viewer.t),
    )
    .await
}

/// `GET /journeys/{id}/live`: the totals and the diagram with its numbers (polled).
pub async fn live(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let t = &viewer.t;
    let j = match load_journey(&state, t, &raw).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let version = q.version.filter(|v| *v != j.version);
    let raw = match shown_definition(&state, t, &j, version).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    match load_live(&state, t, &j, version, &raw).await {
        Ok(live) => render::page(&live),
        Err(r) => r,
    }
}

/// `GET /journeys/{id}/inspect?step=…`: the inspector panel alone.
pub async fn inspect(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let t = &viewer.t;
    let j = match load_journey(&state, t, &raw).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let version = q.version.filter(|v| *v != j.version);
    let def = match shown_definition(&state, t, &j, version).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let stats = match state.api.store.journey_stats(j.id).await {
        Ok(s) => s,
        Err(e) => return render::app_error(t, e.into()),
    };
    render::page(&inspector_of(t, &j, version, &def, q.step.as_deref(), &stats))
}

#[derive(Deserialize, Default)]
pub struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    definition: String,
    /// `validate` or `save` (the button pressed).
    #[serde(default)]
    intent: String,
}

impl EditForm {
    fn draft(&self) -> Draft {
        Draft {
            name: self.name.clone(),
            description: self.description.clone(),
            definition: self.definition.clone(),
        }
    }
}

/// The journey a form describes, or the errors to show next to its fields (with the
/// draft checked and drawn).
fn new_journey(t: &Tr, form: &EditForm, priority: i64) -> Result<NewJourney, (FieldErrors, Check)> {
    let (check, value) = Check::of(t, &form.definition);
    let mut errors = Vec::new();
    if let Err(e) = nudge_app::journeys::journey_name(&form.name) {
        errors.extend(FieldErrors::from_app(&e).0);
    }
    match (&value, check.problems.first()) {
        (None, _) => errors.push(("definition".into(), check.not_json.clone().unwrap_or_default())),
        (Some(_), Some(p)) => errors.push((
            "definition".into(),
            format!(
                "{} {}",
                t.count("check-problems", check.problems.len()),
                format_args!("— {}: {}", p.field, p.message)
            ),
        )),
        _ => {}
    }
    match value {
        Some(definition) if errors.is_empty() => Ok(NewJourney {
            name: form.name.clone(),
            description: form.description.trim().to_owned(),
            priority,
            definition,
        }),
        _ => Err((FieldErrors(errors), check)),
    }
}

/// `POST /journeys/{id}`: "Validate" (the page with the draft's problems) or "Save"
/// (a new version).
pub async fn save(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(form): Form<EditForm>,
) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    let j = match load_journey(&state, t, &raw).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    if form.intent == "validate" {
        let (check, _) = Check::of(t, &form.definition);
        let draft = Some(form.draft());
        return journey_page(
            &state,
            &viewer,
            j,
            ViewQuery::default(),
            draft,
            FieldErrors::default(),
            check,
        )
        .await;
    }
    let new = match new_journey(t, &form, j.priority) {
        Ok(n) => n,
        Err((errors, check)) => {
            return journey_page(
                &state,
                &viewer,
                j,
                ViewQuery::default(),
                Some(form.draft()),
                errors,
                check,
            )
            .await;
        }
    };
    match state.app().update_journey(j.id, new).await {
        Ok(j) => Redirect::to(&format!("/journeys/{}", j.id)).into_response(),
        Err(e) => {
            let errors = FieldErrors::from_app(&e);
            let check = Check::none(t);
            journey_page(
                &state,
                &viewer,
                j,
                ViewQuery::default(),
                Some(form.draft()),
                errors,
                check,
            )
            .await
        }
    }
}

/// `POST /journeys/validate`: the draft's problems, listed and drawn (for htmx).
pub async fn validate(viewer: Viewer, Form(form): Form<EditForm>) -> Response {
    render::page(&Check::of(&viewer.t, &form.definition).0)
}

/// `POST /journeys/{id}/{action}`: publish (with the `move:{step}` mapping), pause,
/// resume, stop.
pub async fn action(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((raw, action)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    let j = match load_journey(&state, t, &raw).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let Some(action) = JourneyAction::parse(&action) else {
        return render::error(t, StatusCode::NOT_FOUND, t.get("error-no-page"));
    };
    let mapping = move_runs_of(&fields);
    let mapping = (action == JourneyAction::Publish && !mapping.is_empty()).then_some(mapping);
    match state.app().journey_action(j.id, action, mapping).await {
        Ok((j, _)) => Redirect::to(&format!("/journeys/{}", j.id)).into_response(),
        Err(e) => {
            let errors = FieldErrors::from_app(&e);
            journey_page(&state, &viewer, j, ViewQuery::default(), None, errors, Check::none(t)).await
        }
    }
}

// ---------------------------------------------------------------------------------
// A new journey.

#[derive(Template)]
#[template(path = "journey_new.html")]
struct NewPage {
    c: Chrome,
    draft: Draft,
    from: String,
    gallery: Vec<ReadyRow>,
    errors: FieldErrors,
    check: Check,
}

fn new_page(viewer: &Viewer, draft: Draft, from: String, errors: FieldErrors, check: Check) -> Response {
    let failed = !errors.0.is_empty();
    let mut resp = render::page(&NewPage {
        c: viewer.chrome("journeys", "/journeys/new"),
        draft,
        from,
        gallery: gallery(),
        errors,
        check,
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

#[derive(Deserialize, Default)]
pub struct NewQuery {
    #[serde(default)]
    from: String,
}

/// `GET /journeys/new` (`?from={key}`: starting from a ready-made journey).
pub async fn new(viewer: Viewer, Query(q): Query<NewQuery>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let ready = ready_made_journeys().into_iter().find(|r| r.key == q.from);
    let draft = match ready {
        Some(r) => Draft {
            name: r.name.to_owned(),
            description: r.description.to_owned(),
            definition: serde_json::to_string_pretty(&r.definition).unwrap_or_default(),
        },
        None => Draft {
            definition: BLANK.to_owned(),
            ..Draft::default()
        },
    };
    new_page(&viewer, draft, q.from, FieldErrors::default(), Check::none(&viewer.t))
}

/// `POST /journeys`: creates a journey (a draft), or, for "Validate", shows the
/// draft's problems.
pub async fn create(State(state): State<WebState>, viewer: Viewer, Form(form): Form<EditForm>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let t = &viewer.t;
    if form.intent == "validate" {
        let (check, _) = Check::of(t, &form.definition);
        return new_page(&viewer, form.draft(), String::new(), FieldErrors::default(), check);
    }
    let new = match new_journey(t, &form, 0) {
        Ok(n) => n,
        Err((errors, check)) => return new_page(&viewer, form.draft(), String::new(), errors, check),
    };
    match state.app().create_journey(new).await {
        Ok(j) => Redirect::to(&format!("/journeys/{}", j.id)).into_response(),
        Err(e) => new_page(
            &viewer,
            form.draft(),
            String::new(),
            FieldErrors::from_app(&e),
            Check::none(t),
        ),
    }
}

// ---------------------------------------------------------------------------------
// The dry run.

#[derive(Template)]
#[template(path = "journey_dry_run.html")]
struct DryRunPage {
    c: Chrome,
    j: Journey,
    days: String,
    errors: FieldErrors,
    result: Option<DryRunResult>,
}

pub struct DryRunResult {
    pub svg: String,
    pub totals: Vec<(String, String)>,
    pub api_trigger: bool,
}

#[derive(Deserialize, Default)]
pub struct DryRunForm {
    #[serde(default)]
    days: String,
}

fn dry_run_page(
    viewer: &Viewer,
    j: Journey,
    days: String,
    errors: FieldErrors,
    result: Option<DryRunResult>,
) -> Response {
    let failed = !errors.0.is_empty();
    let mut resp = render::page(&DryRunPage {
        c: viewer.chrome("journeys", format!("/journeys/{}/dry-run", j.id)),
        j,
        days,
        errors,
        result,
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

/// `GET /journeys/{id}/dry-run`: the form.
pub async fn dry_run_form(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    match load_journey(&state, &viewer.t, &raw).await {
        Ok(j) => dry_run_page(
            &viewer,
            j,
            nudge_app::journeys::DRY_RUN_DEFAULT_DAYS.to_string(),
            FieldErrors::default(),
            None,
        ),
        Err(r) => r,
    }
}

/// `POST /journeys/{id}/dry-run`: replays the latest version over the last `days` of
/// history and draws what would have happened per step.
pub async fn dry_run(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(form): Form<DryRunForm>,
) -> Response {
    let t = &viewer.t;
    let j = match load_journey(&state, t, &raw).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let days = match form.days.trim().parse::<i64>() {
        Ok(d) if (1..=365).contains(&d) => d,
        _ => {
            let errors = FieldErrors(vec![("days".into(), t.get("dry-run-bad-days"))]);
            return dry_run_page(&viewer, j, form.days, errors, None);
        }
    };
    let now = state.now();
    let outcome = state
        .app()
        .dry_run(DryRun {
            journey_id: j.id,
            definition: DefinitionSource::Latest,
            from: Some(now - days * nudge_core::segment::DAY_MS),
            until: Some(now),
            contacts: None,
            sample: 1000,
            paths: 0,
        })
        .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return dry_run_page(&viewer, j, form.days, FieldErrors::from_app(&e), None),
    };
    let report = &outcome.report;
    let def = drawable(&j.definition);
    let extra = def
        .steps
        .iter()
        .map(|s| {
            let r = report.steps.get(&s.id).cloned().unwrap_or_default();
            let mut lines = vec![t.arg("num-would-reach", "n", t.num(r.reached))];
            if matches!(s.kind, StepKind::Send { .. } | StepKind::Webhook { .. }) {
                lines.push(t.arg("num-would-send", "n", t.num(r.sent)));
            }
            (s.id.clone(), lines)
        })
        .collect();
    let svg = diagram(
        t,
        &def,
        extra,
        BTreeSet::new(),
        "dry-run",
        t.arg("journey-diagram-title", "name", &j.name),
    );
    let mut totals = vec![
        (t.get("dry-run-candidates"), t.num(outcome.candidates)),
        (t.get("dry-run-contacts"), t.num(report.contacts)),
        (t.get("dry-run-entered"), t.num(report.entered)),
        (t.get("dry-run-messages"), t.num(report.messages)),
        (t.get("dry-run-active"), t.num(report.active)),
    ];
    for (reason, n) in &report.finished {
        totals.push((t.arg("dry-run-finished", "reason", reason), t.num(*n)));
    }
    for (reason, n) in &report.refused {
        totals.push((t.arg("dry-run-refused", "reason", reason), t.num(*n)));
    }
    let result = DryRunResult {
        svg,
        totals,
        api_trigger: outcome.api_trigger,
    };
    dry_run_page(&viewer, j, days.to_string(), FieldErrors::default(), Some(result))
}

#[cfg(test)]
mod tests;
