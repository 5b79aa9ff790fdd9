//! Reading API keys from requests: the write key as HTTP Basic username (Segment's
//! way), the admin key as a Bearer token. Checking them is `nudge_app::keys`.

use crate::error::ApiError;
use axum::http::HeaderMap;
use base64::Engine;
use nudge_store::{ApiKey, KeyKind, Store};

/// The key of kind `kind` presented in `secret`, if it is active.
pub async fn verify(store: &dyn Store, secret: &str, kind: KeyKind) -> Result<ApiKey, ApiError> {
    Ok(nudge_app::keys::verify(store, secret, kind).await?)
}

/// The username of HTTP Basic authentication (Segment sends the write key there).
pub fn basic_username(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let s = String::from_utf8(decoded).ok()?;
    Some(s.split_once(':').map(|(u, _)| u.to_string()).unwrap_or(s))
}

pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(|s| s.trim().to_string())
}
