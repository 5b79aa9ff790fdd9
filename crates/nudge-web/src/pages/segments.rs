//! Segments: the list with sizes and sparklines, the ready-made catalogue, a
//! segment's page (definition, size over time, members), deleting. The builder is
//! [`super::segment_builder`].

use crate::WebState;
use crate::auth::Viewer;
use crate::builder::{self, Node, Operand};
use crate::chart::{LineChart, Sparkline};
use crate::i18n::Tr;
use crate::render::{self, Chrome};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use nudge_core::access::Permission;
use nudge_core::segment::{Condition, ready_made};
use nudge_core::{Contact, ContactId};
use serde::Deserialize;
use std::collections::HashMap;

const MEMBERS_PAGE: usize = 50;
/// The sparkline's span and step (one point every 5 days, and now).
const SPARK_DAYS: i64 = 30;
const SPARK_EVERY: i64 = 5;

pub struct SegmentRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub administrative: bool,
    pub size: u64,
    pub spark: Sparkline,
    pub updated: String,
}

pub struct ReadyRow {
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub installed: bool,
}

#[derive(Template)]
#[template(path = "segments.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<SegmentRow>,
    ready: Vec<ReadyRow>,
}

/// `GET /segments`
pub async fn list(State(state): State<WebState>, viewer: Viewer) -> Response {
    let t = &viewer.t;
    let app = state.app();
    let segments = match state.api.store.segments().await {
        Ok(s) => s,
        Err(e) => return render::app_error(t, e.into()),
    };
    let mut rows = Vec::new();
    for s in &segments {
        let sizes = match app.segment_sizes(s.id, SPARK_DAYS, SPARK_EVERY).await {
            Ok(v) => v,
            Err(e) => return render::app_error(t, e),
        };
        let values: Vec<u64> = sizes.iter().map(|(_, n)| *n).collect();
        rows.push(SegmentRow {
            id: s.id,
            name: s.name.clone(),
            description: s.description.clone(),
            administrative: s.administrative,
            size: values.last().copied().unwrap_or(0),
            spark: Sparkline::new(&values),
            updated: t.date(s.updated_at),
        });
    }
    rows.sort_by_key(|r| r.name.to_lowercase());
    let ready = ready_made()
        .into_iter()
        .map(|r| ReadyRow {
            installed: segments.iter().any(|s| s.name == r.name),
            key: r.key,
            name: r.name,
            description: r.description,
        })
        .collect();
    render::page(&ListPage {
        c: viewer.chrome("segments", "/segments"),
        rows,
        ready,
    })
}

/// `POST /segments/ready-made/{key}`
pub async fn install(State(state): State<WebState>, viewer: Viewer, Path(key): Path<String>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    match state.app().install_ready_made_segment(&key).await {
        Ok(s) => Redirect::to(&format!("/segments/{}", s.id)).into_response(),
        Err(e) => render::app_error(&viewer.t, e),
    }
}

/// One word or value of a condition's summary; values are shown isolated (`<bdi>`).
pub struct Part {
    pub text: String,
    pub value: bool,
}

/// One line of a condition's summary, indented by `depth`.
pub struct Line {
    pub depth: usize,
    pub parts: Vec<Part>,
}

fn w(text: String) -> Part {
    Part { text, value: false }
}
fn v(text: impl Into<String>) -> Part {
    Part {
        text: text.into(),
        value: true,
    }
}

/// A definition as indented lines in the viewer's language: groups as "All of these
/// hold", leaves as words with their values.
pub fn summarize(t: &Tr, c: &Condition, names: &HashMap<i64, String>) -> Vec<Line> {
    let tree = Node::from_condition(c);
    let mut lines = Vec::new();
    for row in tree.rows() {
        if row.close {
            continue;
        }
        let n = row.node;
        let parts = match n.kind.as_str() {
            "and" if n.children.is_empty() => vec![w(t.get("segment-empty-and"))],
            "or" if n.children.is_empty() => vec![w(t.get("segment-empty-or"))],
            "and" => vec![w(t.get("builder-group-all"))],
            "or" => vec![w(t.get("builder-group-any"))],
            "not" => vec![w(t.get("builder-not-label"))],
            _ => leaf_summary(t, n, names),
        };
        lines.push(Line {
            depth: row.depth,
            parts,
        });
    }
    lines
}

fn test_parts(t: &Tr, out: &mut Vec<Part>, op: &str, value: &str) {
    out.push(w(t.get(&format!("op-{op}"))));
    match builder::operand(op) {
        Operand::None => {}
        Operand::Days => {
            out.push(v(value));
            out.push(w(t.get("summary-days")));
        }
        _ => out.push(v(value)),
    }
}

fn window_parts(t: &Tr, out: &mut Vec<Part>, n: &Node) {
    match n.field("window") {
        "last_days" | "last_hours" => {
            out.push(w(t.get(&format!("window-{}", n.field("window")))));
            out.push(v(n.field("window_n")));
        }
        "between" => {
            out.push(w(t.get("window-between")));
            out.push(v(n.field("window_from")));
            out.push(v(n.field("window_to")));
        }
        _ => out.push(w(t.get("window-ever"))),
    }
}

fn filter_parts(t: &Tr, out: &mut Vec<Part>, n: &Node) {
    for flt in &n.filters {
        out.push(w(t.get("summary-where")));
        out.push(v(&flt.property));
        test_parts(t, out, &flt.op, &flt.value);
    }
}

fn leaf_summary(t: &Tr, n: &Node, names: &HashMap<i64, String>) -> Vec<Part> {
    let mut out = Vec::new();
    match n.kind.as_str() {
        "trait" => {
            out.push(w(t.get("kind-trait")));
            out.push(v(n.field("trait")));
            test_parts(t, &mut out, n.field("op"), n.field("value"));
        }
        "event" => {
            out.push(w(t.get("summary-event")));
            out.push(v(n.field("event")));
            filter_parts(t, &mut out, n);
            out.push(w(t.get(&format!("count-{}", n.field("count_op")))));
            out.push(v(n.field("count")));
            out.push(w(t.get("count-times")));
            window_parts(t, &mut out, n);
        }
        "event_time" => {
            out.push(w(t.get(&format!("which-{}", n.field("which")))));
            out.push(v(n.field("event")));
            filter_parts(t, &mut out, n);
            out.push(w(t.get(&format!("time-{}", n.field("op")))));
            out.push(v(n.field("value")));
        }
        "aggregate" => {
            out.push(w(t.get(&format!("function-{}", n.field("function")))));
            if n.field("function") != "count" {
                out.push(v(n.field("property")));
                out.push(w(t.get("summary-aggregate-of")));
            }
            out.push(v(n.field("event")));
            filter_parts(t, &mut out, n);
            window_parts(t, &mut out, n);
            out.push(w(t.get(&format!("num-{}", n.field("op")))));
            out.push(v(n.field("value")));
        }
        "subscription" => {
            out.push(w(t.get(&format!("state-{}", n.field("state")))));
            out.push(w(t.get("summary-subscription")));
            out.push(v(n.field("channel")));
        }
        "segment" => {
            out.push(w(t.get("summary-member-of")));
            let id: i64 = n.field("segment").parse().unwrap_or(0);
            out.push(v(names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))));
        }
        "message" => {
            out.push(w(t.get(&format!("action-{}", n.field("action")))));
            out.push(w(t.get("summary-message")));
            if !n.field("channel").is_empty() {
                out.push(v(n.field("channel")));
            }
            if !n.field("template").is_empty() {
                out.push(w(t.get("summary-template")));
                out.push(v(format!("#{}", n.field("template"))));
            }
            out.push(w(t.get(&format!("count-{}", n.field("count_op")))));
            out.push(v(n.field("count")));
            out.push(w(t.get("count-times")));
            window_parts(t, &mut out, n);
        }
        "lead_score" => {
            out.push(w(t.get("summary-lead-score")));
            out.push(w(t.get(&format!("num-{}", n.field("op")))));
            out.push(v(n.field("value")));
        }
        "random_bucket" => {
            out.push(w(t.get("summary-percent")));
            out.push(v(format!("{}%", n.field("percent"))));
        }
        _ => {}
    }
    out
}

/// A contact as a line of a member list.
pub struct MemberRow {
    pub id: ContactId,
    pub name: String,
    pub email: String,
    pub user_id: String,
}

pub fn member_row(c: &Contact) -> MemberRow {
    MemberRow {
        id: c.id,
        name: c.display_name(),
        email: c.email.clone().unwrap_or_default(),
        user_id: c.user_id.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "segment.html")]
struct SegmentPage {
    c: Chrome,
    segment: nudge_store::Segment,
    size: u64,
    summary: Vec<Line>,
    chart: LineChart,
    members: Vec<MemberRow>,
    next: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct MembersQuery {
    after: Option<String>,
}

/// A segment id from the path, or the "no such segment" page.
pub fn parse_id(t: &Tr, raw: &str) -> Result<i64, Box<Response>> {
    raw.parse::<i64>().map_err(|_| {
        Box::new(render::error(
            t,
            StatusCode::NOT_FOUND,
            t.arg("segment-not-found", "id", raw),
        ))
    })
}

/// `GET /segments/{id}`
pub async fn show(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(q): Query<MembersQuery>,
) -> Response {
    let t = &viewer.t;
    let id = match parse_id(t, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let store = &state.api.store;
    let segment = match store.segment(id).await {
        Ok(Some(s)) => s,
        Ok(None) => return render::error(t, StatusCode::NOT_FOUND, t.arg("segment-not-found", "id", id)),
        Err(e) => return render::app_error(t, e.into()),
    };
    let (after, error) = super::contacts::after_cursor(t, q.after.as_deref());
    let loaded = async {
        let names: HashMap<i64, String> = store.segments().await?.into_iter().map(|s| (s.id, s.name)).collect();
        let sizes = state.app().segment_sizes(id, 30, 1).await?;
        let page = store.segment_member_page(id, after, MEMBERS_PAGE).await?;
        let mut members = Vec::new();
        for cid in &page.items {
            if let Some(c) = store.contact(*cid).await? {
                members.push(member_row(&c));
            }
        }
        Ok::<_, nudge_app::AppError>((names, sizes, page.next, members))
    };
    let (names, sizes, next, members) = match loaded.await {
        Ok(x) => x,
        Err(e) => return render::app_error(t, e),
    };
    let values: Vec<u64> = sizes.iter().map(|(_, n)| *n).collect();
    let chart = LineChart::new(&values, |n| t.num(n), |i| t.date(sizes[i].0));
    render::page(&SegmentPage {
        c: viewer.chrome("segments", format!("/segments/{id}")),
        size: values.last().copied().unwrap_or(0),
        summary: summarize(t, &segment.definition, &names),
        chart,
        members,
        next: next.map(|n| format!("/segments/{id}?after={n}")),
        error,
        segment,
    })
}

/// `POST /segments/{id}/delete`
pub async fn delete(State(state): State<WebState>, viewer: Viewer, Path(raw): Path<String>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let id = match parse_id(&viewer.t, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match state.app().delete_segment(id).await {
        Ok(()) => Redirect::to("/segments").into_response(),
        Err(e) => render::app_error(&viewer.t, e),
    }
}
