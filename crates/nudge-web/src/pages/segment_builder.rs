//! The segment builder: `/segments/new` and `/segments/{id}/edit`.
//!
//! The condition tree is edited as forms ([`crate::builder`]). Every add, remove,
//! nest or view switch is a submit of the whole form that re-renders the tree, so
//! the builder works without JavaScript; with htmx the same posts swap only the
//! form, and the live preview (`POST /segments/preview`, the count and five sample
//! members) follows every edit. A JSON view shows the definition as text for power
//! users; switching views converts. Problems are shown at the node at fault.

use crate::WebState;
use crate::auth::{FieldErrors, Viewer};
use crate::builder::{self, Message, Node, Problem, Row};
use crate::i18n::Tr;
use crate::pages::segments::{MemberRow, member_row, parse_id};
use crate::render::{self, Chrome};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use nudge_app::AppError;
use nudge_core::access::Permission;
use nudge_core::segment::Condition;
use nudge_store::NewSegment;

/// Sample members the live preview shows.
const SAMPLE: usize = 5;

/// What the builder's form holds.
pub struct Draft {
    pub name: String,
    pub description: String,
    pub administrative: bool,
    /// The JSON view is showing (`view=json`).
    pub json_view: bool,
    pub tree: Node,
    /// The JSON view's text.
    pub json: String,
}

impl Draft {
    fn of_segment(s: &nudge_store::Segment) -> Draft {
        Draft {
            name: s.name.clone(),
            description: s.description.clone(),
            administrative: s.administrative,
            json_view: false,
            tree: Node::from_condition(&s.definition),
            json: String::new(),
        }
    }

    fn blank() -> Draft {
        Draft {
            name: String::new(),
            description: String::new(),
            administrative: false,
            json_view: false,
            tree: Node::starter(),
            json: String::new(),
        }
    }

    /// The draft a posted form describes, and the action its button asked for.
    pub fn from_form(fields: &[(String, String)]) -> (Draft, String) {
        let get = |k: &str| {
            fields
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let json_view = get("view") == "json";
        let draft = Draft {
            name: get("name"),
            description: get("description"),
            administrative: matches!(get("administrative").as_str(), "on" | "true" | "1"),
            json_view,
            tree: Node::from_form(fields).unwrap_or_else(Node::starter),
            json: get("json"),
        };
        (draft, get("action"))
    }

    /// The definition the draft describes, or its problems at their nodes.
    pub fn definition(&self) -> Result<Condition, Vec<Problem>> {
        let value = if self.json_view {
            serde_json::from_str::<serde_json::Value>(&self.json).map_err(|e| {
                vec![Problem {
                    path: builder::ROOT.into(),
                    field: "json".into(),
                    message: Message::Text(e.to_string()),
                }]
            })?
        } else {
            let c = self.tree.to_condition()?;
            serde_json::to_value(&c).unwrap_or_default()
        };
        // The application's validation (names, dates, depth), as the API applies it.
        nudge_app::segments::parse_definition(&value, "$").map_err(|e| vec![problem_of(&e)])
    }
}

/// A validation failure of the application layer at its node.
fn problem_of(e: &AppError) -> Problem {
    match e {
        AppError::InvalidField { field, message } if field.starts_with('$') => {
            let (path, field) = builder::locate(field);
            let message = message.split_once(": ").map(|(_, m)| m).unwrap_or(message);
            Problem {
                path,
                field,
                message: Message::Text(message.to_owned()),
            }
        }
        e => Problem {
            path: builder::ROOT.into(),
            field: String::new(),
            message: Message::Text(e.to_string()),
        },
    }
}

/// One option of a select.
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The builder form's content (what htmx swaps).
#[derive(Template)]
#[template(path = "segment_builder_form.html")]
pub struct BuilderForm<'a> {
    t: &'a Tr,
    csrf: String,
    draft: &'a Draft,
    rows: Vec<Row<'a>>,
    problems: Vec<Problem>,
    errors: FieldErrors,
    segments: Vec<(i64, String)>,
    can_edit: bool,
    cancel: String,
}

impl BuilderForm<'_> {
    /// The options of a select of `values`, labelled by the catalogue's
    /// `{prefix}{value}` messages (or the value itself with no prefix).
    pub fn opts(&self, values: impl AsRef<[&'static str]>, prefix: &str, selected: &str) -> Vec<Opt> {
        values
            .as_ref()
            .iter()
            .map(|v| Opt {
                value: (*v).to_owned(),
                label: if prefix.is_empty() {
                    (*v).to_owned()
                } else {
                    self.t.get(&format!("{prefix}{v}"))
                },
                selected: *v == selected,
            })
            .collect()
    }

    pub fn segment_opts(&self, selected: &str) -> Vec<Opt> {
        let mut out: Vec<Opt> = self
            .segments
            .iter()
            .map(|(id, name)| Opt {
                value: id.to_string(),
                label: name.clone(),
                selected: id.to_string() == selected,
            })
            .collect();
        if !selected.is_empty() && !out.iter().any(|o| o.selected) {
            out.push(Opt {
                value: selected.to_owned(),
                label: format!("#{selected}"),
                selected: true,
            });
        }
        out
    }

    pub fn channels(&self) -> &'static [&'static str] {
        nudge_core::contact::CHANNELS
    }

    /// The problems found at the node `path`, in the viewer's language.
    pub fn problems_at(&self, path: &str) -> Vec<String> {
        self.problems
            .iter()
            .filter(|p| p.path == path)
            .map(|p| {
                let text = match &p.message {
                    Message::Key(k) => self.t.get(k),
                    Message::Text(m) => m.clone(),
                };
                if p.field.is_empty() || matches!(p.message, Message::Key(_)) {
                    text
                } else {
                    format!("{}: {text}", p.field)
                }
            })
            .collect()
    }

    /// Whether a field of a node is at fault (`aria-invalid`).
    pub fn bad(&self, path: &str, field: &str) -> bool {
        self.problems.iter().any(|p| p.path == path && p.field == field)
    }

    pub fn json_problems(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|p| match &p.message {
                Message::Key(k) => self.t.get(k),
                Message::Text(m) if p.path == builder::ROOT && p.field.is_empty() => m.clone(),
                Message::Text(m) if p.field == "json" => self.t.arg("builder-error-json", "error", m),
                Message::Text(m) => format!("{} {}: {m}", p.path, p.field),
            })
            .collect()
    }
}

/// The live preview: the count and a few members, or what is missing.
#[derive(Template)]
#[template(path = "segment_preview.html")]
pub struct Preview<'a> {
    t: &'a Tr,
    count: Option<usize>,
    sample: Vec<MemberRow>,
}

async fn preview_of<'a>(state: &WebState, t: &'a Tr, draft: &Draft) -> Result<Preview<'a>, AppError> {
    match draft.definition() {
        Ok(c) => {
            let p = state.app().preview_segment(&c, SAMPLE).await?;
            Ok(Preview {
                t,
                count: Some(p.count),
                sample: p.sample.iter().map(member_row).collect(),
            })
        }
        Err(_) => Ok(Preview {
            t,
            count: None,
            sample: Vec::new(),
        }),
    }
}

#[derive(Template)]
#[template(path = "segment_builder.html")]
struct BuilderPage {
    c: Chrome,
    title: String,
    url: String,
    form: String,
    preview: String,
}

/// Where the builder posts: a new segment, or segment `id`.
#[derive(Clone, Copy)]
enum Target {
    New,
    Edit(i64),
}

impl Target {
    fn url(self) -> String {
        match self {
            Target::New => "/segments/new".into(),
            Target::Edit(id) => format!("/segments/{id}/edit"),
        }
    }
    fn cancel(self) -> String {
        match self {
            Target::New => "/segments".into(),
            Target::Edit(id) => format!("/segments/{id}"),
        }
    }
}

async fn segment_names(state: &WebState, except: Option<i64>) -> Result<Vec<(i64, String)>, AppError> {
    Ok(state
        .api
        .store
        .segments()
        .await?
        .into_iter()
        .filter(|s| Some(s.id) != except)
        .map(|s| (s.id, s.name))
        .collect())
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// Renders the builder: the whole page, or (htmx) only the form.
async fn render_builder(
    state: &WebState,
    viewer: &Viewer,
    target: Target,
    draft: &Draft,
    problems: Vec<Problem>,
    errors: FieldErrors,
    htmx: bool,
) -> Response {
    let t = &viewer.t;
    let except = match target {
        Target::Edit(id) => Some(id),
        Target::New => None,
    };
    let segments = match segment_names(state, except).await {
        Ok(s) => s,
        Err(e) => return render::app_error(t, e),
    };
    let failed = !problems.is_empty() || !errors.0.is_empty();
    let form = BuilderForm {
        t,
        csrf: viewer.session.csrf.clone(),
        draft,
        rows: draft.tree.rows(),
        problems,
        errors,
        segments,
        can_edit: viewer.session.user.role.allows(Permission::Edit),
        cancel: target.cancel(),
    };
    if htmx {
        let mut resp = render::page(&form);
        resp.headers_mut()
            .insert("hx-trigger", HeaderValue::from_static("builder-changed"));
        return resp;
    }
    let preview = match preview_of(state, t, draft).await {
        Ok(p) => p,
        Err(e) => return render::app_error(t, e),
    };
    let title = match target {
        Target::New => t.get("builder-new-title"),
        Target::Edit(_) => t.get("builder-edit-title"),
    };
    let mut resp = render::page(&BuilderPage {
        c: viewer.chrome("segments", target.url()),
        title,
        url: target.url(),
        form: form.render().unwrap_or_default(),
        preview: preview.render().unwrap_or_default(),
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

/// `GET /segments/new`
pub async fn new_page(State(state): State<WebState>, viewer: Viewer) -> Response {
    let draft = Draft::blank();
    render_builder(
        &state,
        &viewer,
        Target::New,
        &draft,
        Vec::new(),
        FieldErrors::default(),
        false,
    )
    .await
}

/// `GET /segments/{id}/edit`
pub async fn edit_page(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    let t = &viewer.t;
    let id = match parse_id(t, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let segment = match state.app().segment(id).await {
        Ok(s) => s,
        Err(e) => return render::app_error(t, e),
    };
    let draft = Draft::of_segment(&segment);
    render_builder(
        &state,
        &viewer,
        Target::Edit(id),
        &draft,
        Vec::new(),
        FieldErrors::default(),
        false,
    )
    .await
}

/// `POST /segments/new`
pub async fn new_post(
    State(state): State<WebState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    post(state, viewer, Target::New, &headers, &fields).await
}

/// `POST /segments/{id}/edit`
pub async fn edit_post(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let id = match parse_id(&viewer.t, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    post(state, viewer, Target::Edit(id), &headers, &fields).await
}

/// A builder action: edit the tree, switch views, or save.
async fn post(
    state: WebState,
    viewer: Viewer,
    target: Target,
    headers: &HeaderMap,
    fields: &[(String, String)],
) -> Response {
    let htmx = is_htmx(headers);
    let (mut draft, action) = Draft::from_form(fields);
    let mut problems = Vec::new();
    let mut errors = FieldErrors::default();
    match action.as_str() {
        "save" => {
            if let Err(r) = viewer.require(Permission::Edit) {
                return r;
            }
            match draft.definition() {
                Ok(definition) => {
                    let new = NewSegment {
                        name: draft.name.trim().to_owned(),
                        description: draft.description.trim().to_owned(),
                        definition,
                        administrative: draft.administrative,
                    };
                    let app = state.app();
                    let saved = match target {
                        Target::New => app.create_segment(new).await,
                        Target::Edit(id) => app.update_segment(id, new).await,
                    };
                    match saved {
                        Ok(s) => return saved_redirect(s.id, htmx),
                        Err(e @ (AppError::InvalidField { .. } | AppError::InvalidRequest { .. })) => {
                            let field = match &e {
                                AppError::InvalidField { field, .. } => field.clone(),
                                _ => String::new(),
                            };
                            if field == "name" || field == "description" {
                                errors = FieldErrors::from_app(&e);
                            } else {
                                problems.push(problem_of(&e));
                            }
                        }
                        Err(e) => return render::app_error(&viewer.t, e),
                    }
                }
                Err(p) => problems = p,
            }
        }
        "view:json" if !draft.json_view => match draft.definition() {
            Ok(c) => {
                draft.json = serde_json::to_string_pretty(&c).unwrap_or_default();
                draft.json_view = true;
            }
            Err(p) => problems = p,
        },
        "view:form" if draft.json_view => match draft.definition() {
            Ok(c) => {
                draft.tree = Node::from_condition(&c);
                draft.json_view = false;
            }
            Err(p) => problems = p,
        },
        action if !draft.json_view => {
            let add_kind = action
                .strip_prefix("add:")
                .and_then(|path| {
                    fields
                        .iter()
                        .find(|(k, _)| k.strip_suffix(".add") == Some(path))
                        .map(|(_, v)| v.clone())
                })
                .unwrap_or_else(|| "trait".into());
            draft.tree.apply(action, &add_kind);
            // A plain "update" shows what is wrong so far.
            if action == "refresh"
                && let Err(p) = draft.definition()
            {
                problems = p;
            }
        }
        _ => {}
    }
    render_builder(&state, &viewer, target, &draft, problems, errors, htmx).await
}

fn saved_redirect(id: i64, htmx: bool) -> Response {
    let url = format!("/segments/{id}");
    if htmx {
        let mut resp = StatusCode::OK.into_response();
        if let Ok(v) = HeaderValue::from_str(&url) {
            resp.headers_mut().insert("hx-redirect", v);
        }
        resp
    } else {
        Redirect::to(&url).into_response()
    }
}

/// `POST /segments/preview`: the builder's form in, the count and five members out.
pub async fn preview(
    State(state): State<WebState>,
    viewer: Viewer,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (draft, _) = Draft::from_form(&fields);
    match preview_of(&state, &viewer.t, &draft).await {
        Ok(p) => render::page(&p),
        Err(e) => render::app_error(&viewer.t, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{ArabicCalendar, Lang};
    use crate::testing::posted;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn form_html(t: &Tr, draft: &Draft) -> String {
        BuilderForm {
            t,
            csrf: "tok".into(),
            draft,
            rows: draft.tree.rows(),
            problems: Vec::new(),
            errors: FieldErrors::default(),
            segments: vec![(1, "VIP <b>".into())],
            can_edit: true,
            cancel: "/segments".into(),
        }
        .render()
        .unwrap()
    }

    /// Renders a condition into the builder's form, reads back what a browser would
    /// post, and turns it into a condition again.
    fn through_the_form(t: &Tr, c: &Condition) -> Condition {
        let draft = Draft {
            name: "n".into(),
            description: String::new(),
            administrative: false,
            json_view: false,
            tree: Node::from_condition(c),
            json: String::new(),
        };
        let html = form_html(t, &draft);
        let (back, _) = Draft::from_form(&posted(&html));
        back.tree.to_condition().unwrap_or_else(|p| panic!("{p:?}\n{html}"))
    }

    fn tr() -> Tr {
        Tr::new(Lang::En, jiff::tz::TimeZone::UTC, ArabicCalendar::Gregorian)
    }

    #[test]
    fn every_condition_type_round_trips_through_the_rendered_form() {
        let c = nudge_core::segment::parse_condition(&json!({"type": "or", "conditions": [
            {"type": "and", "conditions": []},
            {"type": "trait", "trait": "plan", "op": "equals", "value": "<script>alert(1)</script>"},
            {"type": "trait", "trait": "plan", "op": "in", "values": ["a,b", "c\"d"]},
            {"type": "event", "event": "Order Completed", "where": [{"property": "total", "op": "greater_than", "value": 50}],
             "count": {"op": "at_least", "value": 2}, "window": {"between": {"from": "2026-01-01", "to": "2026-02-01"}}},
            {"type": "event_time", "event": "Order Completed", "which": "first", "op": "within_last_hours", "hours": 6},
            {"type": "aggregate", "event": "Order Completed", "function": "count", "op": "equals", "value": 3},
            {"type": "aggregate", "event": "Order Completed", "function": "sum", "property": "total", "window": {"last_days": 7}, "op": "greater_than", "value": 1.25},
            {"type": "subscription", "channel": "push", "state": "unknown"},
            {"type": "random_bucket", "percent": 0, "salt": "&amp;"},
            {"type": "segment", "segment": 1},
            {"type": "segment", "segment": 77},
            {"type": "message", "action": "opened", "count": {"op": "exactly", "value": 0}},
            {"type": "lead_score", "op": "less_than", "value": 10},
            {"type": "not", "condition": {"type": "not", "condition": {"type": "trait", "trait": "x", "op": "anniversary_this_month"}}}
        ]}))
        .unwrap();
        let t = tr();
        assert_eq!(through_the_form(&t, &c), c);
        let draft = Draft {
            tree: Node::from_condition(&c),
            ..Draft::blank()
        };
        let html = form_html(&t, &draft);
        assert!(!html.contains("<script>alert(1)"), "values are escaped");
        assert!(!html.contains("VIP <b>"), "segment names are escaped");
        // In every language.
        for lang in Lang::ALL {
            let t = Tr::new(lang, jiff::tz::TimeZone::UTC, ArabicCalendar::Gregorian);
            assert_eq!(through_the_form(&t, &c), c, "{}", lang.code());
        }
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Zא-ת_][a-zA-Z0-9 ._-]{0,10}[a-zA-Z0-9]"
            .prop_map(|s| s.trim().to_owned())
            .prop_filter("a name", |s| !s.is_empty())
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            "\\PC{0,12}".prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
        ]
    }

    fn date() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("2026-01-31".to_owned()),
            Just("2025-06-30T12:00:00Z".to_owned()),
            Just("2024-02-29".to_owned()),
        ]
    }

    fn test_json() -> impl Strategy<Value = Value> {
        let number = (-1e6f64..1e6).prop_map(|x| (x * 100.0).round() / 100.0);
        prop_oneof![
            (prop_oneof![Just("equals"), Just("not_equals")], scalar())
                .prop_map(|(op, v)| json!({"op": op, "value": v})),
            (prop_oneof![Just("greater_than"), Just("less_or_equal")], number)
                .prop_map(|(op, v)| json!({"op": op, "value": v})),
            (prop_oneof![Just("contains"), Just("starts_with")], "\\PC{0,8}")
                .prop_map(|(op, v)| json!({"op": op, "value": v})),
            prop_oneof![Just("exists"), Just("not_exists"), Just("anniversary_this_month")]
                .prop_map(|op| json!({"op": op})),
            // (A list written as a JSON array reads its numbers with serde_json, which
            // rounds some long decimals: list numbers here have two decimals.)
            (
                prop_oneof![Just("in"), Just("not_in")],
                proptest::collection::vec(
                    prop_oneof![
                        "\\PC{0,12}".prop_map(Value::from),
                        any::<i64>().prop_map(Value::from),
                        (-1e6f64..1e6).prop_map(|x| Value::from((x * 100.0).round() / 100.0)),
                        any::<bool>().prop_map(Value::from),
                    ],
                    0..4
                )
            )
                .prop_map(|(op, v)| json!({"op": op, "values": v})),
            (prop_oneof![Just("before"), Just("after")], date()).prop_map(|(op, v)| json!({"op": op, "value": v})),
            (
                prop_oneof![
                    Just("within_last_days"),
                    Just("within_next_days"),
                    Just("anniversary_within_days")
                ],
                any::<u32>()
            )
                .prop_map(|(op, d)| json!({"op": op, "days": d})),
        ]
    }

    fn window() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!("ever")),
            any::<u32>().prop_map(|d| json!({"last_days": d})),
            any::<u32>().prop_map(|h| json!({"last_hours": h})),
            (date(), date()).prop_map(|(f, t)| json!({"between": {"from": f, "to": t}})),
        ]
    }

    fn filters() -> impl Strategy<Value = Vec<Value>> {
        proptest::collection::vec(
            (name(), test_json()).prop_map(|(p, mut t)| {
                t["property"] = json!(p);
                t
            }),
            0..3,
        )
    }

    fn count() -> impl Strategy<Value = Value> {
        (
            prop_oneof![Just("at_least"), Just("at_most"), Just("exactly")],
            any::<u32>(),
        )
            .prop_map(|(op, v)| json!({"op": op, "value": v}))
    }

    fn leaf() -> impl Strategy<Value = Value> {
        let num = (-1e6f64..1e6).prop_map(|x| (x * 100.0).round() / 100.0);
        prop_oneof![
            (name(), test_json()).prop_map(|(n, mut t)| {
                t["type"] = json!("trait");
                t["trait"] = json!(n);
                t
            }),
            (name(), filters(), count(), window()).prop_map(|(e, f, c, w)| json!({"type": "event", "event": e, "where": f, "count": c, "window": w})),
            (name(), filters(), prop_oneof![Just("first"), Just("last")], prop_oneof![
                any::<u32>().prop_map(|d| json!({"op": "within_last_days", "days": d})),
                any::<u32>().prop_map(|d| json!({"op": "not_within_last_days", "days": d})),
                any::<u32>().prop_map(|h| json!({"op": "within_last_hours", "hours": h})),
                any::<u32>().prop_map(|h| json!({"op": "not_within_last_hours", "hours": h})),
                date().prop_map(|v| json!({"op": "before", "value": v})),
                date().prop_map(|v| json!({"op": "after", "value": v})),
            ])
                .prop_map(|(e, f, which, mut t)| {
                    t["type"] = json!("event_time");
                    t["event"] = json!(e);
                    t["where"] = json!(f);
                    t["which"] = json!(which);
                    t
                }),
            (name(), filters(), prop_oneof![Just("sum"), Just("avg"), Just("min"), Just("max"), Just("count")], name(), window(),
             prop_oneof![Just("greater_than"), Just("greater_or_equal"), Just("less_than"), Just("less_or_equal"), Just("equals")], num.clone())
                // `count` ignores the property, and the form does not show it.
                .prop_map(|(e, f, func, p, w, op, v)| json!({"type": "aggregate", "event": e, "where": f, "function": func,
                    "property": if func == "count" { Value::Null } else { json!(p) }, "window": w, "op": op, "value": v})),
            (prop_oneof![Just("email"), Just("sms"), Just("push"), Just("webhook")], prop_oneof![Just("subscribed"), Just("unsubscribed"), Just("pending"), Just("unknown")])
                .prop_map(|(c, s)| json!({"type": "subscription", "channel": c, "state": s})),
            (0u8..=100, "\\PC{0,6}").prop_map(|(p, s)| json!({"type": "random_bucket", "percent": p, "salt": s})),
            (1i64..1_000_000).prop_map(|s| json!({"type": "segment", "segment": s})),
            (prop_oneof![Just("received"), Just("delivered"), Just("opened"), Just("clicked"), Just("bounced"), Just("failed")],
             proptest::option::of(prop_oneof![Just("email"), Just("sms")]), proptest::option::of(1i64..10_000), count(), window())
                .prop_map(|(a, ch, tpl, c, w)| {
                    let mut m = json!({"type": "message", "action": a, "count": c, "window": w});
                    if let Some(ch) = ch { m["channel"] = json!(ch); }
                    if let Some(tpl) = tpl { m["template"] = json!(tpl); }
                    m
                }),
            (prop_oneof![Just("greater_than"), Just("less_or_equal")], num).prop_map(|(op, v)| json!({"type": "lead_score", "op": op, "value": v})),
        ]
    }

    fn condition() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|c| json!({"type": "and", "conditions": c})),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|c| json!({"type": "or", "conditions": c})),
                inner.prop_map(|c| json!({"type": "not", "condition": c})),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn any_condition_round_trips_through_the_rendered_form(v in condition()) {
            let c: Condition = serde_json::from_value(v.clone()).unwrap();
            let t = tr();
            prop_assert_eq!(through_the_form(&t, &c), c);
        }
    }
}
