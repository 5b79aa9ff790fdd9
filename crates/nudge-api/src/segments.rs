//! Segments in the admin API: definitions, preview, members, history. The use cases
//! (validation, preview, saving, deleting, installs) are `nudge_app::segments`.

use crate::AppState;
use crate::admin::{contact_json, limit_of};
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use nudge_core::format_millis;
use nudge_core::segment::{Condition, ready_made};
use nudge_store::{NewSegment, Segment};
use serde_json::{Value, json};
use std::collections::HashMap;

fn segment_json(s: &Segment, size: Option<u64>) -> Value {
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "definition": s.definition,
        "version": s.version,
        "administrative": s.administrative,
        "created_at": format_millis(s.created_at),
        "updated_at": format_millis(s.updated_at),
    });
    if let Some(n) = size {
        v["size"] = json!(n);
    }
    v
}

/// A segment as saved, with `warnings`: the conditions that read events older than
/// the retention period (`path` into the definition, `message`).
fn saved_json(s: &Segment, size: u64, warnings: &[nudge_core::retention::RetentionWarning]) -> Value {
    let mut v = segment_json(s, Some(size));
    v["warnings"] = warnings
        .iter()
        .map(|w| json!({"path": format!("definition{}", w.path.trim_start_matches('$')), "message": w.message}))
        .collect();
    v
}

fn json_body(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut o)) => {
            // `4.0` where the definition takes an integer is that integer.
            if let Some(d) = o.get_mut("definition") {
                *d = crate::messages::integral_numbers(d.take());
            }
            Ok(o)
        }
        Ok(_) => Err(ApiError::new("invalid_field", "body must be a JSON object").with_field("$")),
        Err(e) => Err(ApiError::new("malformed_json", e.to_string())),
    }
}

/// `definition` of a request body, validated: errors name the node (`definition.conditions[2].window`).
fn definition(body: &serde_json::Map<String, Value>) -> Result<Condition, ApiError> {
    let def = body
        .get("definition")
        .ok_or_else(|| ApiError::new("missing_field", "definition: is required").with_field("definition"))?;
    enum_names_are_text(def, "definition")?;
    Ok(nudge_app::segments::parse_definition(def, "definition")?)
}

/// The keys of a definition that name one of a list (`type`, `op`, ...) hold text:
/// the parser would also take a variant's index (`"op": 0`), which the API refuses.
fn enum_names_are_text(v: &Value, path: &str) -> Result<(), ApiError> {
    const NAMES: &[&str] = &["type", "op", "which", "function", "action", "channel"];
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                let field = format!("{path}.{k}");
                if NAMES.contains(&k.as_str()) && !(v.is_string() || v.is_null()) {
                    return Err(ApiError::new("invalid_field", format!("{field} must be a string")).with_field(field));
                }
                enum_names_are_text(v, &field)?;
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                enum_names_are_text(v, &format!("{path}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn new_segment(body: &serde_json::Map<String, Value>) -> Result<NewSegment, ApiError> {
    for k in body.keys() {
        if !["name", "description", "definition", "administrative"].contains(&k.as_str()) {
            return Err(ApiError::new(
                "invalid_field",
                format!("unknown field {k:?}; use name, description, definition, administrative"),
            )
            .with_field(k.clone()));
        }
    }
    let name = match body.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 200 => s.trim().to_string(),
        Some(_) => {
            return Err(ApiError::new(
                "invalid_field",
                "name must be a non-empty string of at most 200 characters",
            )
            .with_field("name"));
        }
        None => return Err(ApiError::new("missing_field", "name: is required").with_field("name")),
    };
    let description = match body.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::new("invalid_field", "description must be a string").with_field("description")),
    };
    let administrative = match body.get("administrative") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(
                ApiError::new("invalid_field", "administrative must be true or false").with_field("administrative")
            );
        }
    };
    let definition = definition(body)?;
    let new = NewSegment {
        name,
        description,
        definition,
        administrative,
    };
    nudge_app::segments::check_new_segment(&new)?;
    Ok(new)
}

async fn load(state: &AppState, id: i64) -> Result<Segment, ApiError> {
    state
        .store
        .segment(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no segment {id}")))
}

fn segment_id(raw: &str) -> Result<i64, ApiError> {
    crate::messages::int_text(raw)
        .ok_or_else(|| ApiError::invalid("id", format!("segment id must be an integer, got {raw:?}")))
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut data = Vec::new();
    for s in state.store.segments().await? {
        let size = state.store.segment_size(s.id).await?;
        data.push(segment_json(&s, Some(size)));
    }
    Ok(Json(json!({ "data": data })))
}

pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = new_segment(&json_body(&body)?)?;
    let app = state.app();
    let s = app.create_segment(new).await?;
    let size = state.store.segment_size(s.id).await?;
    let warnings = app.segment_retention_warnings(&s.definition).await?;
    Ok((StatusCode::CREATED, Json(saved_json(&s, size, &warnings))))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = segment_id(&id)?;
    let s = load(&state, id).await?;
    let size = state.store.segment_size(id).await?;
    Ok(Json(segment_json(&s, Some(size))))
}

/// `PUT`: replaces name, description and definition; a changed definition recomputes
/// membership.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = segment_id(&id)?;
    let new = new_segment(&json_body(&body)?)?;
    let app = state.app();
    let s = app.update_segment(id, new).await?;
    let size = state.store.segment_size(id).await?;
    let warnings = app.segment_retention_warnings(&s.definition).await?;
    Ok(Json(saved_json(&s, size, &warnings)))
}

pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = segment_id(&id)?;
    state.app().delete_segment(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/segments/preview` `{"definition": ..., "sample": 10}`: who would be in
/// a draft segment right now, without saving it.
pub async fn preview(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = json_body(&body)?;
    let def = definition(&body)?;
    let sample = match body.get("sample") {
        None => 10,
        Some(v) => crate::messages::as_int(v)
            .filter(|n| (0..=100).contains(n))
            .ok_or_else(|| {
                ApiError::new("invalid_field", "sample must be an integer from 0 to 100").with_field("sample")
            })? as usize,
    };
    let preview = state.app().preview_segment(&def, sample).await?;
    let contacts: Vec<Value> = preview.sample.iter().map(contact_json).collect();
    Ok(Json(json!({"count": preview.count, "sample": contacts})))
}

pub async fn members(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = segment_id(&id)?;
    load(&state, id).await?;
    let after = match params.get("cursor") {
        Some(c) => Some(
            c.parse()
                .map_err(|_| ApiError::invalid("cursor", "cursor is not one this API returned"))?,
        ),
        None => None,
    };
    let page = state
        .store
        .segment_member_page(id, after, limit_of(&params, 50)?)
        .await?;
    let mut data = Vec::new();
    for cid in &page.items {
        if let Some(c) = state.store.contact(*cid).await? {
            data.push(contact_json(&c));
        }
    }
    Ok(Json(json!({"data": data, "next_cursor": page.next})))
}

/// `GET /api/v1/segments/{id}/sizes?days=30`: members at the end of each of the last
/// `days` days (UTC), oldest first, and now.
pub async fn sizes(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = segment_id(&id)?;
    load(&state, id).await?;
    let days: i64 = match params.get("days") {
        None => 30,
        Some(d) => d
            .parse()
            .ok()
            .filter(|d| (1..=366).contains(d))
            .ok_or_else(|| ApiError::invalid("days", "days must be an integer from 1 to 366"))?,
    };
    let sizes = state.app().segment_sizes(id, days, 1).await?;
    Ok(Json(json!({
        "data": sizes.iter().map(|(t, n)| json!({"at": format_millis(*t), "size": n})).collect::<Vec<_>>()
    })))
}

/// `GET /api/v1/contacts/{id}/segments`: current segments and past stays.
pub async fn of_contact(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let cid: i64 = crate::messages::int_text(&id)
        .ok_or_else(|| ApiError::invalid("id", format!("contact id must be an integer, got {id:?}")))?;
    let contact = state
        .store
        .contact(cid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no contact {cid}")))?;
    let names: HashMap<i64, String> = state
        .store
        .segments()
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let stays = state.store.contact_memberships(contact.id).await?;
    let entry = |m: &nudge_store::Membership| {
        json!({
            "segment_id": m.segment_id,
            "segment_name": names.get(&m.segment_id),
            "entered_at": format_millis(m.entered_at),
            "exited_at": m.exited_at.map(format_millis),
        })
    };
    Ok(Json(json!({
        "current": stays.iter().filter(|m| m.exited_at.is_none()).map(entry).collect::<Vec<_>>(),
        "history": stays.iter().map(entry).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/segments/ready-made`: the catalogue.
pub async fn catalogue() -> Json<Value> {
    Json(json!({
        "data": ready_made().iter().map(|r| json!({
            "key": r.key, "name": r.name, "description": r.description, "definition": r.definition,
            "administrative": r.administrative,
        })).collect::<Vec<_>>()
    }))
}

/// `POST /api/v1/segments/ready-made/{key}`: creates the ready-made segment.
pub async fn install(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let s = state.app().install_ready_made_segment(&key).await?;
    let size = state.store.segment_size(s.id).await?;
    Ok((StatusCode::CREATED, Json(segment_json(&s, Some(size)))))
}
