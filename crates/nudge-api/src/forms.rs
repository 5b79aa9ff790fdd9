//! `/api/v1/forms`: forms (create, list, get, replace, delete), their report, their
//! submissions as JSON pages or CSV. The handlers parse, call `nudge_app::forms` and
//! render; the hosted page, the embed script and public submissions are the web
//! UI's (`nudge_web::pages::public_forms`). The definition is in `docs/forms.md`.

use crate::AppState;
use crate::error::ApiError;
use crate::messages::{body_object, int_text, only_fields, opt_string};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use nudge_app::forms::{FormInput, definition_json, report_of};
use nudge_core::format_millis;
use nudge_store::{Form, FormSubmission};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub fn form_json(f: &Form) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "slug": f.slug,
        "url": format!("/f/{}", f.slug),
        "definition": definition_json(&f.definition),
        "report": report_of(f),
        "created_at": format_millis(f.created_at),
        "updated_at": format_millis(f.updated_at),
    })
}

pub fn submission_json(s: &FormSubmission) -> Value {
    json!({
        "id": s.id,
        "form_id": s.form_id,
        "contact_id": s.contact_id,
        "email": s.email,
        "values": s.answers,
        "consents": s.consents,
        "source": s.source,
        "submitted_at": format_millis(s.submitted_at),
    })
}

fn form_id(raw: &str) -> Result<i64, ApiError> {
    int_text(raw).ok_or_else(|| ApiError::invalid("id", format!("form id must be an integer, got {raw:?}")))
}

fn input(body: &Map<String, Value>) -> Result<FormInput, ApiError> {
    only_fields(body, &["name", "slug", "definition"])?;
    let name = opt_string(body, "name")?
        .ok_or_else(|| ApiError::new("missing_field", "name: is required").with_field("name"))?;
    let slug = opt_string(body, "slug")?
        .ok_or_else(|| ApiError::new("missing_field", "slug: is required").with_field("slug"))?;
    let definition = match body.get("definition") {
        None => return Err(ApiError::new("missing_field", "definition: is required").with_field("definition")),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(ApiError::new("invalid_field", "definition must be an object").with_field("definition")),
    };
    Ok(FormInput { name, slug, definition })
}

/// `GET /api/v1/forms`: every form, newest first, with its report.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state.store.forms().await?.iter().map(form_json).collect();
    Ok(Json(json!({ "data": data })))
}

/// `POST /api/v1/forms`: every problem of the definition in `details`.
pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let f = state.app().create_form(input(&body_object(&body)?)?).await?;
    Ok((StatusCode::CREATED, Json(form_json(&f))))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let f = state.app().form(form_id(&id)?).await?;
    Ok(Json(form_json(&f)))
}

/// `PUT /api/v1/forms/{id}`: replaces name, slug and definition.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = form_id(&id)?;
    let f = state.app().update_form(id, input(&body_object(&body)?)?).await?;
    Ok(Json(form_json(&f)))
}

/// `DELETE /api/v1/forms/{id}`: the form and its submissions (`204`).
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.app().delete_form(form_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/forms/{id}/report`: views, submissions, conversion rate.
pub async fn report(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let r = state.app().form_report(form_id(&id)?).await?;
    Ok(Json(json!(r)))
}

/// `GET /api/v1/forms/{id}/submissions?limit=100&before=<id>`: newest first; `next`
/// is the `before` of the next page.
pub async fn submissions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = form_id(&id)?;
    for k in q.keys() {
        if k != "limit" && k != "before" {
            return Err(ApiError::invalid(
                k,
                format!("unknown query parameter {k:?}; use limit and before"),
            ));
        }
    }
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => int_text(l)
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", format!("limit must be an integer from 1 to 1000, got {l:?}")))?
            as usize,
    };
    let before = match q.get("before") {
        None => None,
        Some(b) => Some(
            int_text(b)
                .ok_or_else(|| ApiError::invalid("before", format!("before must be a submission id, got {b:?}")))?,
        ),
    };
    let page = state.app().form_submissions(id, before, limit).await?;
    Ok(Json(json!({
        "data": page.items.iter().map(submission_json).collect::<Vec<_>>(),
        "next": page.next,
    })))
}

/// `GET /api/v1/forms/{id}/submissions.csv`: every submission, one column per field.
pub async fn submissions_csv(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = form_id(&id)?;
    let csv = state.app().form_submissions_csv(id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"form-{id}-submissions.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}
