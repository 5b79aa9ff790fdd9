//! Lead scoring in the admin API: scoring rules (`/api/v1/scoring-rules`), score
//! definitions (`/api/v1/scores`) and a contact's scores
//! (`/api/v1/contacts/{id}/scores`). The use cases are `nudge_app::scoring`.

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nudge_core::format_millis;
use nudge_store::{ContactScore, StoredRule, StoredScore};
use serde_json::{Value, json};

pub(crate) fn rule_json(r: &StoredRule) -> Value {
    let mut v = serde_json::to_value(&r.definition).unwrap_or_default();
    v["id"] = json!(r.id);
    v["created_at"] = json!(format_millis(r.created_at));
    v["updated_at"] = json!(format_millis(r.updated_at));
    v
}

fn score_json(s: &StoredScore) -> Value {
    let mut v = serde_json::to_value(&s.definition).unwrap_or_default();
    v["trait"] = json!(nudge_core::scoring::score_trait(&s.definition.name));
    v["created_at"] = json!(format_millis(s.created_at));
    v["updated_at"] = json!(format_millis(s.updated_at));
    v
}

pub(crate) fn contact_score_json(c: &ContactScore) -> Value {
    json!({
        "score": c.score,
        "trait": nudge_core::scoring::score_trait(&c.score),
        "value": nudge_core::scoring::round(c.value),
        "stage": c.stage,
        "materialised": c.written,
        "points": c.points,
        "anchor_at": format_millis(c.anchor_at),
        "next_decay_at": c.next_decay_at.map(format_millis),
    })
}

fn score_change_json(c: &nudge_store::ScoreChangeRecord) -> Value {
    let (reason, rules) = match &c.reason {
        nudge_core::scoring::Reason::Rules(given) => (
            "rules",
            given
                .iter()
                .map(|(id, points)| json!({"rule_id": id, "points": points}))
                .collect(),
        ),
        nudge_core::scoring::Reason::Decay => ("decay", Vec::new()),
    };
    json!({
        "score": c.score,
        "at": format_millis(c.at),
        "previous": nudge_core::scoring::round(c.previous),
        "value": nudge_core::scoring::round(c.value),
        "reason": reason,
        "rules": rules,
    })
}

fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(crate::messages::integral_numbers(v)),
        Ok(_) => Err(ApiError::new("invalid_field", "body must be a JSON object").with_field("$")),
        Err(e) => Err(ApiError::new("malformed_json", e.to_string())),
    }
}

fn rule_id(raw: &str) -> Result<i64, ApiError> {
    crate::messages::int_text(raw)
        .ok_or_else(|| ApiError::invalid("id", format!("scoring rule id must be an integer, got {raw:?}")))
}

pub async fn list_rules(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state.store.scoring_rules().await?.iter().map(rule_json).collect();
    Ok(Json(json!({ "data": data })))
}

pub async fn create_rule(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let rule = nudge_app::scoring::parse_rule(&body_json(&body)?, "")?;
    let stored = state.app().create_scoring_rule(rule).await?;
    Ok((StatusCode::CREATED, Json(rule_json(&stored))))
}

pub async fn get_rule(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = rule_id(&id)?;
    Ok(Json(rule_json(&state.app().scoring_rule(id).await?)))
}

/// `PUT`: replaces the rule's definition.
pub async fn update_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = rule_id(&id)?;
    let rule = nudge_app::scoring::parse_rule(&body_json(&body)?, "")?;
    Ok(Json(rule_json(&state.app().update_scoring_rule(id, rule).await?)))
}

pub async fn delete_rule(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = rule_id(&id)?;
    state.app().delete_scoring_rule(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_scores(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state.store.scores().await?.iter().map(score_json).collect();
    Ok(Json(json!({ "data": data })))
}

/// `PUT /api/v1/scores/{name}`: creates or replaces a score (`name` in the body, if
/// given, must be the path's).
pub async fn put_score(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut v = body_json(&body)?;
    match v.get("name") {
        None | Some(Value::Null) => v["name"] = json!(name),
        Some(Value::String(n)) if *n == name => {}
        Some(_) => {
            return Err(ApiError::invalid(
                "name",
                format!("name must be the score's name in the path, {name:?}"),
            ));
        }
    }
    let score = nudge_app::scoring::parse_score(&v, "")?;
    Ok(Json(score_json(&state.app().put_score(score).await?)))
}

pub async fn delete_score(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.app().delete_score(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn of_contact(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let cid: i64 = crate::messages::int_text(&id)
        .ok_or_else(|| ApiError::invalid("id", format!("contact id must be an integer, got {id:?}")))?;
    let scores = state
        .app()
        .contact_scores(cid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no contact {cid}")))?;
    let (scores, history) = scores;
    let data: Vec<Value> = scores.iter().map(contact_score_json).collect();
    let history: Vec<Value> = history.iter().map(score_change_json).collect();
    Ok(Json(json!({ "data": data, "history": history })))
}
