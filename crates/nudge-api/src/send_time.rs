//! A contact's send-time profile in the admin API: `GET /api/v1/contacts/{id}/send-time`
//! (the use case is `nudge_app::send_time`; docs/send-time.md).

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use nudge_core::format_millis;
use serde_json::{Value, json};

/// `GET /api/v1/contacts/{id}/send-time`.
pub async fn of_contact(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let cid: i64 = crate::messages::int_text(&id)
        .ok_or_else(|| ApiError::invalid("id", format!("contact id must be an integer, got {id:?}")))?;
    let s = state.app().contact_send_time(cid).await?;
    Ok(Json(json!({
        "contact_id": cid,
        "best_hours": s.best_hours.iter().map(|h| json!({"hour": h.hour, "probability": h.probability})).collect::<Vec<_>>(),
        "best_day": s.best_day,
        "best_day_hour": s.best_day_hour,
        "observations": s.observations,
        "engagements": s.engagements,
        "confidence": s.confidence,
        "confidence_band": s.confidence_band,
        "workspace_observations": s.workspace_observations,
        "last_engagement_at": s.last_engagement_at.map(format_millis),
        "time_zone": "UTC",
    })))
}
