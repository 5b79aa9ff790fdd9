//! The one table of API errors. Every error response has the body
//! `{"error": {"code": "...", "message": "...", "field": "..."}}` (`field` only when a
//! single input field is at fault) and the HTTP status of its code. The table is
//! published in `docs/errors.md` and the OpenAPI document.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nudge_core::ParseError;
use serde_json::json;

/// (code, HTTP status, meaning). Keep `docs/errors.md` in step with it.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("malformed_json", 400, "The request body is not valid JSON."),
    (
        "invalid_field",
        400,
        "A field has the wrong type or an invalid value; `field` names it.",
    ),
    ("missing_field", 400, "A required field is absent; `field` names it."),
    ("message_too_large", 400, "One message is over 32 KB."),
    ("batch_too_large", 400, "The request body is over 500 KB."),
    (
        "invalid_request",
        400,
        "A query parameter, path parameter or CSV row is invalid.",
    ),
    (
        "unauthorized",
        401,
        "The key is missing, unknown, revoked, or of the wrong kind for this API.",
    ),
    ("forbidden", 403, "The signed-in user's role does not allow this."),
    (
        "origin_not_allowed",
        403,
        "The page's origin is not among the write key's allowed origins (browser tracking).",
    ),
    (
        "browser_key",
        403,
        "The write key is restricted to the browser endpoints (/v1/t, /v1/p, ... /v1/b).",
    ),
    ("not_found", 404, "No such resource."),
    (
        "invalid_template",
        400,
        "The template does not compile; `details` lists each problem with its field and line.",
    ),
    (
        "conflict",
        409,
        "The change conflicts with what is stored (a name in use, messages still queued).",
    ),
    (
        "rate_limited",
        429,
        "Too many failed sign-ins for this account or address, or too many form submissions from this address or to this form; retry later.",
    ),
    (
        "submission_refused",
        400,
        "A form submission was refused as automated (honeypot filled, sent too fast, missing or expired render stamp, wrong proof of work); nothing was stored.",
    ),
    (
        "submission_too_large",
        413,
        "A form submission's body is over 32 KB; nothing was stored.",
    ),
    (
        "not_enough_data",
        422,
        "Too little data for what was asked: the lifetime-value models need at least 10 customers with a purchase, 2 of them with a repeat purchase, by the calibration end.",
    ),
    (
        "channel_not_configured",
        409,
        "No channel of this kind is configured on the server.",
    ),
    (
        "overloaded",
        503,
        "The ingest queue is full; retry with back-off. Nothing was stored.",
    ),
    (
        "shutting_down",
        503,
        "The server is shutting down; retry against another node or later.",
    ),
    (
        "internal",
        500,
        "An unexpected server error; nothing was stored. Details are in the server log.",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Structured detail (template errors with lines).
    pub details: Option<Box<serde_json::Value>>,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(
            ERROR_CODES.iter().any(|(c, _, _)| *c == code),
            "unknown error code {code}"
        );
        Self {
            code,
            message: message.into(),
            field: None,
            details: None,
        }
    }
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn status(&self) -> StatusCode {
        ERROR_CODES
            .iter()
            .find(|(c, _, _)| *c == self.code)
            .and_then(|(_, s, _)| StatusCode::from_u16(*s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new("unauthorized", message)
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new("not_found", what)
    }
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new("invalid_request", message).with_field(field)
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new("internal", "internal error; nothing was changed")
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        let field = e.field().map(str::to_string);
        Self {
            code: e.code(),
            message: e.to_string(),
            field,
            details: None,
        }
    }
}

impl From<nudge_store::StoreError> for ApiError {
    fn from(e: nudge_store::StoreError) -> Self {
        match e {
            nudge_store::StoreError::Conflict(m) => ApiError::new("conflict", m),
            e => ApiError::internal(e),
        }
    }
}

impl From<nudge_app::AppError> for ApiError {
    fn from(e: nudge_app::AppError) -> Self {
        use nudge_app::AppError as E;
        match e {
            E::MissingField { field, message } => ApiError::new("missing_field", message).with_field(field),
            E::InvalidField { field, message } => ApiError::new("invalid_field", message).with_field(field),
            E::InvalidRequest { field, message } => {
                let e = ApiError::new("invalid_request", message);
                match field {
                    Some(f) => e.with_field(f),
                    None => e,
                }
            }
            E::Unauthorized(m) => ApiError::unauthorized(m),
            E::NotFound { field, message } => {
                let e = ApiError::not_found(message);
                match field {
                    Some(f) => e.with_field(f),
                    None => e,
                }
            }
            E::Conflict(m) => ApiError::new("conflict", m),
            E::Forbidden(m) => ApiError::new("forbidden", m),
            e @ E::RateLimited { .. } => ApiError::new("rate_limited", e.to_string()),
            E::ChannelNotConfigured(m) => ApiError::new("channel_not_configured", m),
            E::NotEnoughData(m) => ApiError::new("not_enough_data", m),
            E::InvalidDefinition { problems, stored } => {
                let message = nudge_app::error::problems_summary(&problems);
                let details = serde_json::to_value(&problems).unwrap_or_default();
                let mut err = if stored {
                    // The request is fine; what is stored (templates, segments) changed.
                    ApiError::new("conflict", format!("the saved definition has problems now: {message}"))
                } else {
                    let field = problems.first().map_or("definition", |p| p.field.as_str());
                    ApiError::new("invalid_field", message).with_field(field)
                };
                err.details = Some(Box::new(details));
                err
            }
            E::Store(e) => e.into(),
            E::Internal(m) => ApiError::internal(m),
        }
    }
}

impl From<nudge_store::SubmitError> for ApiError {
    fn from(e: nudge_store::SubmitError) -> Self {
        match e {
            nudge_store::SubmitError::Overloaded => ApiError::new("overloaded", e.to_string()),
            nudge_store::SubmitError::Closed => ApiError::new("shutting_down", e.to_string()),
            nudge_store::SubmitError::Store(_) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if let Some(f) = &self.field {
            body["field"] = json!(f);
        }
        if let Some(d) = &self.details {
            body["details"] = (**d).clone();
        }
        let mut resp = (self.status(), Json(json!({ "error": body }))).into_response();
        if self.status() == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"nudge\", Bearer"),
            );
        }
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}
