//! Product recommendations in the admin API: the catalogue
//! (`/api/v1/products[/{id}]`, `POST /api/v1/products/import` as JSON or CSV), a
//! product's similar products, a contact's recommendations and a refresh on request
//! (`POST /api/v1/recommendations/refresh`). The use cases are
//! `nudge_app::recommendations`.

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use nudge_app::recommendations::{product_from_json, products_from_csv, products_from_json};
use nudge_core::format_millis;
use nudge_core::recommend::Recommendation;
use nudge_store::RecommendationModel;
use serde_json::{Value, json};
use std::collections::HashMap;

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new("malformed_json", e.to_string()))
}

/// `limit` as an integer, if given (its range is the use case's).
fn limit(params: &HashMap<String, String>) -> Result<Option<i64>, ApiError> {
    params
        .get("limit")
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| ApiError::invalid("limit", format!("limit must be an integer, got {s:?}")))
        })
        .transpose()
}

fn list_json(list: &[Recommendation]) -> Value {
    Value::Array(
        list.iter()
            .map(|r| json!({"product": r.product, "score": r.score, "reason": r.reason}))
            .collect(),
    )
}

fn model_json(m: &RecommendationModel) -> Value {
    json!({
        "id": m.id,
        "started_at": format_millis(m.started_at),
        "finished_at": m.finished_at.map(format_millis),
        "contacts": m.contacts,
        "products": m.products,
        "pairs": m.pairs,
        "similar_products": m.similar_products,
    })
}

/// `GET /api/v1/products?after=&limit=`.
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let page = state
        .app()
        .products(params.get("after").map(String::as_str), limit(&params)?)
        .await?;
    Ok(Json(json!({"data": page.products, "next": page.next})))
}

/// `GET /api/v1/products/{id}`.
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(state.app().product(&id).await?)))
}

/// `PUT /api/v1/products/{id}`: creates or replaces a catalogue product.
pub async fn put(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ApiError> {
    nudge_app::recommendations::check_product_id("id", &id)?;
    let product = product_from_json("", &json_body(&body)?, Some(&id))?;
    Ok(Json(json!(state.app().put_product(product).await?)))
}

/// `DELETE /api/v1/products/{id}`.
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.app().delete_product(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/products/import`: `text/csv`, or JSON `{"products": [...]}`. All or
/// nothing: any bad product is a 400 naming it.
pub async fn import(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/csv"));
    let products = if csv {
        products_from_csv(&body)?
    } else {
        let value = json_body(&body)?;
        let Value::Object(mut fields) = value else {
            return Err(ApiError::new("invalid_field", "body must be a JSON object").with_field("$"));
        };
        if let Some(unknown) = fields.keys().find(|k| k.as_str() != "products") {
            return Err(
                ApiError::new("invalid_field", format!("{unknown}: unknown field (expected products)"))
                    .with_field(unknown.clone()),
            );
        }
        let Some(products) = fields.remove("products") else {
            return Err(ApiError::new("missing_field", "products: required").with_field("products"));
        };
        products_from_json(&products)?
    };
    let imported = state.app().import_products(products).await?;
    Ok(Json(json!({ "imported": imported })))
}

/// `GET /api/v1/products/{id}/similar?limit=`.
pub async fn similar(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let list = state.app().similar_products(&id, limit(&params)?).await?;
    Ok(Json(json!({"product_id": id, "data": list_json(&list)})))
}

/// `GET /api/v1/contacts/{id}/recommendations?limit=`.
pub async fn of_contact(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let cid: i64 = crate::messages::int_text(&id)
        .ok_or_else(|| ApiError::invalid("id", format!("contact id must be an integer, got {id:?}")))?;
    let list = state.app().contact_recommendations(cid, limit(&params)?).await?;
    Ok(Json(json!({"contact_id": cid, "data": list_json(&list)})))
}

/// `POST /api/v1/recommendations/refresh`: refreshes the similarities now.
pub async fn refresh(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(model_json(&state.app().refresh_recommendations().await?)))
}

/// `GET /api/v1/recommendations/model`: the current refresh.
pub async fn model(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.app().recommendation_model().await? {
        Some(m) => Ok(Json(model_json(&m))),
        None => Err(ApiError::not_found(
            "the recommendations have not been refreshed yet: POST /api/v1/recommendations/refresh refreshes them (the \
             engine also does hourly)",
        )),
    }
}
