//! `/api/v1/retention-settings`: how many days events are kept (docs/operations.md,
//! "Retention"). The rule and its checks are `nudge_app::retention`'s.

use crate::AppState;
use crate::error::ApiError;
use crate::messages::{body_object, only_fields};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use nudge_core::retention::SETTING;
use serde_json::{Value, json};

fn settings_json(days: Option<u32>) -> Value {
    json!({ SETTING: days })
}

/// `GET`: `{"events_retention_days": 90}`, or `null` when every event is kept.
pub async fn get_settings(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(settings_json(state.app().events_retention_days().await?)))
}

/// `PUT {"events_retention_days": 90}` (1 to 36,500 days) or `null` to keep every
/// event. The retention singleton applies it at its next pass.
pub async fn put_settings(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = body_object(&body)?;
    only_fields(&body, &[SETTING])?;
    let value = body.get(SETTING).ok_or_else(|| {
        ApiError::new(
            "invalid_field",
            format!("{SETTING} is required (a number of days, or null)"),
        )
        .with_field(SETTING)
    })?;
    let days = state.app().set_events_retention_days(value).await?;
    Ok(Json(settings_json(days)))
}
