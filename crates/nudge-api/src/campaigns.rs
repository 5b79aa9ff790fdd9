//! `/api/v1/campaigns`: drafts (create, validate, edit, delete), sending with a
//! schedule, pause, resume, cancel, a person's pick of the A/B test's winner, and the
//! report (JSON or CSV). The handlers parse, call `nudge_app` (`campaigns.rs`) and
//! render; the definition format is in `docs/campaigns.md`.

use crate::AppState;
use crate::error::ApiError;
use crate::messages::{as_int, body_object, int_text, integral_numbers, only_fields, opt_string};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nudge_app::campaigns::{CampaignAction, CampaignReport, report_csv};
use nudge_core::campaign::Schedule;
use nudge_core::{Millis, format_millis};
use nudge_store::{Campaign, NewCampaign};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// A schedule as the API shows it (times in RFC 3339).
fn schedule_json(s: &Schedule) -> Value {
    match s {
        Schedule::Now => json!({"type": "now"}),
        Schedule::At { at } => json!({"type": "at", "at": format_millis(*at)}),
        Schedule::LocalTime { date, time } => json!({"type": "local_time", "date": date, "time": time}),
    }
}

/// A stored decision with its time (`at`, milliseconds) in RFC 3339.
fn decision_json(d: &Value) -> Value {
    let mut d = d.clone();
    if let Some(at) = d.get("at").and_then(Value::as_i64) {
        d["at"] = json!(format_millis(at));
    }
    d
}

pub fn campaign_json(c: &Campaign) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "status": c.status.as_str(),
        "definition": c.definition,
        "schedule": c.schedule.as_ref().map(schedule_json),
        "templates": c.templates.iter().enumerate()
            .map(|(i, (id, version))| json!({"variant": i, "template_id": id, "version": version}))
            .collect::<Vec<_>>(),
        "start_at": c.start_at.map(format_millis),
        "winner": c.winner,
        "decision": c.decision.as_ref().map(decision_json),
        "progress": {
            "audience": c.audience,
            "held_out": c.held_out,
            "queued": c.queued,
            "skipped": c.skipped,
            "pending": c.pending(),
            "snapshot_done": c.snapshot_done,
            "test_ends_at": c.test_ends_at.map(format_millis),
        },
        "created_at": format_millis(c.created_at),
        "updated_at": format_millis(c.updated_at),
        "sent_at": c.sent_at.map(format_millis),
        "completed_at": c.completed_at.map(format_millis),
    })
}

fn report_json(r: &CampaignReport) -> Value {
    let variants: Vec<Value> = r
        .variants
        .iter()
        .map(|v| {
            json!({
                "variant": v.variant,
                "name": v.name,
                "template": {"id": v.template_id, "name": v.template_name, "version": v.template_version},
                "recipients": v.counts.recipients,
                "sent": v.counts.sent,
                "delivered": v.counts.delivered,
                "bounced": v.counts.bounced,
                "failed": v.counts.failed,
                "opened": v.counts.opened,
                "unique_opened": v.counts.unique_opened,
                "clicked": v.counts.clicked,
                "unique_clicked": v.counts.unique_clicked,
                "open_rate": v.open_rate,
                "click_rate": v.click_rate,
                "conversions": v.counts.conversions,
                "converted": v.counts.converted,
                "revenue": v.counts.revenue,
                "conversion_rate": v.conversion_rate,
                "revenue_per_recipient": v.revenue_per_recipient,
                "unsubscribed": v.counts.unsubscribed,
                "complained": v.counts.complained,
                "lift_vs_holdout": v.lift_vs_holdout,
                "stats": v.stats,
                "winner": v.winner,
            })
        })
        .collect();
    let test = r.test.as_ref().map(|t| {
        json!({
            "metric": t.metric,
            "rule": t.rule,
            "fallback": t.fallback,
            "share": t.share,
            "duration_ms": t.duration_ms,
            "ends_at": t.ends_at.map(format_millis),
            "winner": t.winner,
            "decision": t.decision.as_ref().map(decision_json),
            "significance_level": t.significance_level,
            "note": t.note,
        })
    });
    let c = &r.campaign;
    json!({
        "campaign_id": c.id,
        "name": c.name,
        "status": c.status.as_str(),
        "progress": campaign_json(c)["progress"].clone(),
        "holdout": r.holdout,
        "links": r.links,
        "variants": variants,
        "test": test,
        "hourly": r.hourly.iter().map(|p| json!({"at": format_millis(p.at), "counts": p.counts})).collect::<Vec<_>>(),
        "hours_of_day": r.hours_of_day,
        "domains": r.domains,
    })
}

fn campaign_id(raw: &str) -> Result<i64, ApiError> {
    int_text(raw).ok_or_else(|| ApiError::invalid("id", format!("campaign id must be an integer, got {raw:?}")))
}

/// A body that may be empty (an action's): an empty object when it is.
fn optional_body(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Map::new())
    } else {
        body_object(body)
    }
}

/// The `definition` of a body: present, an object; whole floats read as integers.
fn definition_of(body: &Map<String, Value>) -> Result<Value, ApiError> {
    match body.get("definition") {
        None => Err(ApiError::new("missing_field", "definition: is required").with_field("definition")),
        Some(v @ Value::Object(_)) => Ok(integral_numbers(v.clone())),
        Some(_) => Err(ApiError::new("invalid_field", "definition must be an object").with_field("definition")),
    }
}

fn new_campaign(body: &Map<String, Value>) -> Result<NewCampaign, ApiError> {
    only_fields(body, &["name", "description", "definition"])?;
    let name = opt_string(body, "name")?
        .ok_or_else(|| ApiError::new("missing_field", "name: is required").with_field("name"))?;
    Ok(NewCampaign {
        name,
        description: opt_string(body, "description")?.unwrap_or_default(),
        definition: definition_of(body)?,
    })
}

/// `GET /api/v1/campaigns`: every campaign, newest first.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state.app().campaigns().await?.iter().map(campaign_json).collect();
    Ok(Json(json!({ "data": data })))
}

/// `POST /api/v1/campaigns`: a new draft; every problem of the definition (its
/// segments and templates included) in `details`.
pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = new_campaign(&body_object(&body)?)?;
    let c = state.app().create_campaign(new).await?;
    Ok((StatusCode::CREATED, Json(campaign_json(&c))))
}

/// `POST /api/v1/campaigns/validate`: checks a draft definition against the rules
/// and what is stored, saving nothing; its problems are the answer (`200`).
pub async fn validate(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = body_object(&body)?;
    only_fields(&body, &["definition"])?;
    let definition = definition_of(&body)?;
    let problems = match state.app().check_campaign_definition(&definition).await? {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    };
    Ok(Json(json!({"valid": problems.is_empty(), "problems": problems})))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let c = state.app().campaign(campaign_id(&id)?).await?;
    Ok(Json(campaign_json(&c)))
}

/// `PUT /api/v1/campaigns/{id}`: edits a draft (`409` once sent).
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = campaign_id(&id)?;
    let new = new_campaign(&body_object(&body)?)?;
    let c = state.app().update_campaign(id, new).await?;
    Ok(Json(campaign_json(&c)))
}

/// `DELETE /api/v1/campaigns/{id}`: `204`; `409` while scheduled, sending or paused.
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.app().delete_campaign(campaign_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/campaigns/{id}/send` `{"schedule": {...}}` (now when absent): sends
/// a draft. An unknown campaign is reported before a problem with the body.
pub async fn send(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let id = campaign_id(&id)?;
    let app = state.app();
    app.campaign(id).await?;
    let body = optional_body(&body)?;
    only_fields(&body, &["schedule"])?;
    let schedule = match body.get("schedule") {
        None | Some(Value::Null) => Schedule::Now,
        Some(v) => nudge_app::campaigns::schedule(v)?,
    };
    let c = app.send_campaign(id, schedule).await?;
    Ok(Json(campaign_json(&c)))
}

/// `POST /api/v1/campaigns/{id}/pause|resume|cancel` (empty body).
pub async fn action(
    State(state): State<AppState>,
    Path(id): Path<String>,
    action: CampaignAction,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = campaign_id(&id)?;
    only_fields(&optional_body(&body)?, &[])?;
    let c = state.app().campaign_action(id, action).await?;
    Ok(Json(campaign_json(&c)))
}

/// `POST /api/v1/campaigns/{id}/winner` `{"variant": 1}`: a person picks the A/B
/// test's winner before the test ends.
pub async fn winner(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = campaign_id(&id)?;
    let app = state.app();
    app.campaign(id).await?;
    let body = body_object(&body)?;
    only_fields(&body, &["variant"])?;
    let max = nudge_core::campaign::definition::MAX_VARIANTS - 1;
    let variant = match body.get("variant") {
        None => return Err(ApiError::new("missing_field", "variant: is required").with_field("variant")),
        Some(v) => as_int(v)
            .filter(|v| (0..=max as i64).contains(v))
            .and_then(|v| u8::try_from(v).ok())
            .ok_or_else(|| {
                ApiError::new(
                    "invalid_field",
                    format!("variant must be a variant's index, an integer from 0 to {max}"),
                )
                .with_field("variant")
            })?,
    };
    let c = app.pick_campaign_winner(id, variant, None).await?;
    Ok(Json(campaign_json(&c)))
}

/// Whether a report is asked for as CSV: `format=csv` (or `json`), else an `Accept`
/// naming `text/csv`.
fn wants_csv(q: &HashMap<String, String>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match q.get("format").map(String::as_str) {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::invalid(
            "format",
            format!("format must be json or csv, got {other:?}"),
        )),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.split(',').any(|m| m.trim().starts_with("text/csv")))),
    }
}

/// A CSV file to download under `name`.
fn csv_download(name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/v1/campaigns/{id}/report`: JSON, or CSV (one row per variant and one
/// for the holdout) with `?format=csv` or `Accept: text/csv`.
pub async fn report(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = campaign_id(&id)?;
    if let Some(k) = q.keys().find(|k| k.as_str() != "format") {
        return Err(ApiError::invalid(k, format!("unknown parameter {k:?}; use format")));
    }
    let csv = wants_csv(&q, &headers)?;
    let report = state.app().campaign_report(id).await?;
    if csv {
        return Ok(csv_download(&format!("campaign-{id}-report.csv"), report_csv(&report)?));
    }
    Ok(Json(report_json(&report)).into_response())
}

/// The `from` and `until` of a report's query (RFC 3339; default the 30 days until now).
fn report_range(app: &nudge_app::App, q: &HashMap<String, String>) -> Result<(Millis, Millis), ApiError> {
    let time = |name: &str| -> Result<Option<Millis>, ApiError> {
        q.get(name)
            .map(|v| {
                v.parse::<jiff::Timestamp>()
                    .map(|t| t.as_millisecond())
                    .map_err(|e| ApiError::invalid(name, format!("{name} must be an RFC 3339 date-time: {e}")))
            })
            .transpose()
    };
    let until = time("until")?.unwrap_or(app.clock.now());
    let from = time("from")?.unwrap_or(until - 30 * 86_400_000);
    Ok((from, until))
}

/// `GET /api/v1/reports/series?scope=campaign:3&granularity=day&from=…&until=…[&format=csv]`:
/// one campaign's, journey's (`journey:5`) or channel's (`channel:email`) counters
/// by hour or by day (in the workspace's time zone) over the range (default: the
/// last 30 days), from the hourly counters.
pub async fn report_series(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    const KNOWN: [&str; 5] = ["scope", "granularity", "from", "until", "format"];
    if let Some(k) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            k,
            format!("unknown parameter {k:?}; use {}", KNOWN.join(", ")),
        ));
    }
    let raw = q.get("scope").ok_or_else(|| {
        ApiError::new(
            "missing_field",
            "scope: is required (campaign:ID, journey:ID or channel:NAME)",
        )
        .with_field("scope")
    })?;
    // The stored form, strictly: digits for an id, lower-case letters for a channel.
    let well_formed = raw.split_once(':').is_some_and(|(kind, rest)| match kind {
        "campaign" | "journey" => !rest.is_empty() && rest.len() <= 18 && rest.bytes().all(|b| b.is_ascii_digit()),
        "channel" => !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase()),
        _ => false,
    });
    let scope = well_formed
        .then(|| nudge_store::ReportScope::parse(raw))
        .flatten()
        .ok_or_else(|| {
            ApiError::invalid(
                "scope",
                format!("scope must be campaign:ID, journey:ID or channel:NAME, got {raw:?}"),
            )
        })?;
    let granularity = match q.get("granularity") {
        None => nudge_app::reports::Granularity::Day,
        Some(g) => nudge_app::reports::Granularity::parse(g)
            .ok_or_else(|| ApiError::invalid("granularity", format!("granularity must be hour or day, got {g:?}")))?,
    };
    let app = state.app();
    let (from, until) = report_range(&app, &q)?;
    let csv = wants_csv(&q, &headers)?;
    let series = app.report_series(scope, granularity, from, until).await?;
    if csv {
        return Ok(csv_download("series.csv", nudge_app::reports::series_csv(&series)?));
    }
    Ok(Json(json!({
        "scope": series.scope.key(),
        "granularity": series.granularity,
        "time_zone": series.time_zone,
        "from": format_millis(series.from),
        "until": format_millis(series.until),
        "points": series.points.iter().map(|p| json!({"at": format_millis(p.at), "counts": p.counts})).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `GET /api/v1/reports?from=RFC3339&until=RFC3339[&format=csv]`: messages,
/// conversions and revenue by channel, campaign and journey over the range (default:
/// the last 30 days), from the hourly counters.
pub async fn workspace_report(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(k) = q.keys().find(|k| !["from", "until", "format"].contains(&k.as_str())) {
        return Err(ApiError::invalid(
            k,
            format!("unknown parameter {k:?}; use from, until, format"),
        ));
    }
    let (from, until) = report_range(&state.app(), &q)?;
    let csv = wants_csv(&q, &headers)?;
    let report = state.app().workspace_report(from, until).await?;
    if csv {
        return Ok(csv_download(
            "workspace-report.csv",
            nudge_app::reports::workspace_report_csv(&report)?,
        ));
    }
    Ok(Json(json!({
        "from": format_millis(report.from),
        "until": format_millis(report.until),
        "rows": report.rows,
    }))
    .into_response())
}

/// `GET /api/v1/conversion-settings`: which events are conversions and the
/// attribution windows.
pub async fn get_conversion_settings(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = state.app().conversion_settings().await?;
    Ok(Json(conversion_settings_json(&s)))
}

/// `PUT /api/v1/conversion-settings` `{"events": [...], "engaged_window": ...,
/// "delivered_window": ...}` (fields left out take their defaults).
pub async fn put_conversion_settings(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = body_object(&body)?;
    only_fields(&body, &["events", "engaged_window", "delivered_window"])?;
    let settings: nudge_core::attribution::ConversionSettings =
        nudge_core::read_shape(&integral_numbers(Value::Object(body)))
            .map_err(|e| ApiError::new("invalid_field", format!("{}: {}", e.path, e.message)).with_field(e.path))?;
    let s = state.app().set_conversion_settings(settings).await?;
    Ok(Json(conversion_settings_json(&s)))
}

fn conversion_settings_json(s: &nudge_core::attribution::ConversionSettings) -> Value {
    json!({
        "events": s.events,
        "engaged_window": s.engaged_window.as_millis(),
        "delivered_window": s.delivered_window.as_millis(),
    })
}

/// `POST /api/v1/campaigns/{id}/test` `{"addresses": ["a@example.com"]}`: every
/// variant once to each address (1 to 10), outside the outbox; the channel's answer
/// per message.
pub async fn test_send(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = campaign_id(&id)?;
    let body = body_object(&body)?;
    only_fields(&body, &["addresses"])?;
    let addresses: Vec<String> = match body.get("addresses") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::new("invalid_field", "addresses must be strings").with_field("addresses"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::new("invalid_field", "addresses must be a list").with_field("addresses"));
        }
        None => return Err(ApiError::new("missing_field", "addresses: is required").with_field("addresses")),
    };
    let results = state.app().send_campaign_test(id, &addresses).await?;
    let data: Vec<Value> = results
        .iter()
        .map(|r| {
            let (ok, answer) = match &r.outcome.result {
                Ok(a) => (true, a.clone()),
                Err(e) => (false, Some(e.message().to_string())),
            };
            json!({"variant": r.variant, "name": r.name, "to": r.outcome.to, "transport": r.outcome.transport,
                   "accepted": ok, "answer": answer})
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}
