//! Customer lifetime value in the admin API: `POST /api/v1/predictions/fit` fits the
//! models, `GET /api/v1/predictions/model` reads the current fit. The use cases are
//! `nudge_app::predictions`.

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use nudge_app::predictions::FitRequest;
use nudge_core::format_millis;
use nudge_store::StoredModel;
use serde_json::{Value, json};

fn model_json(m: &StoredModel) -> Value {
    let model = &m.model;
    json!({
        "unit": model.unit.as_str(),
        "until": format_millis(model.until),
        "fitted_at": format_millis(model.fitted_at),
        "customers": model.customers,
        "repeat_customers": model.repeat_customers,
        "bgnbd": {
            "r": model.bgnbd.r,
            "alpha": model.bgnbd.alpha,
            "a": model.bgnbd.a,
            "b": model.bgnbd.b,
            "log_likelihood": model.bgnbd_log_likelihood,
        },
        "gamma_gamma": model.gamma_gamma.map(|g| json!({
            "p": g.p,
            "q": g.q,
            "gamma": g.gamma,
            "log_likelihood": model.gamma_gamma_log_likelihood,
        })),
    })
}

/// The body: absent, empty or a JSON object with the optional text fields `until` and
/// `unit`; anything else is a 400 naming the field.
fn fit_request(body: &Bytes) -> Result<FitRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(FitRequest::default());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::new("malformed_json", e.to_string()))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::new("invalid_field", "body must be a JSON object").with_field("$"));
    };
    let mut request = FitRequest::default();
    for (name, v) in fields {
        let slot = match name.as_str() {
            "until" => &mut request.until,
            "unit" => &mut request.unit,
            _ => {
                return Err(
                    ApiError::new("invalid_field", format!("{name}: unknown field (expected until, unit)"))
                        .with_field(name),
                );
            }
        };
        match v {
            Value::Null => {}
            Value::String(s) => *slot = Some(s),
            _ => return Err(ApiError::new("invalid_field", format!("{name}: must be a string")).with_field(name)),
        }
    }
    Ok(request)
}

/// `POST /api/v1/predictions/fit`.
pub async fn fit(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let request = fit_request(&body)?;
    let fitted = state.app().fit_predictions(&request).await?;
    let mut out = model_json(&fitted.model);
    out["predicted_contacts"] = json!(fitted.predicted);
    Ok(Json(out))
}

/// `GET /api/v1/predictions/model`.
pub async fn model(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(model_json(&state.app().prediction_model().await?)))
}
