//! API keys: secret admin keys for `/api/v1`, public write keys for `/v1` tracking.
//! Only the SHA-256 of a key is stored.

use crate::error::ApiError;
use axum::http::HeaderMap;
use base64::Engine;
use nudge_core::Millis;
use nudge_store::{ApiKey, KeyKind, NewApiKey, Store};
use sha2::{Digest, Sha256};

pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret: `na_` (admin) or `nw_` (write) and 128 bits of randomness.
pub fn generate_secret(kind: KeyKind) -> String {
    let bytes: [u8; 16] = rand::random();
    let prefix = match kind {
        KeyKind::Admin => "na_",
        KeyKind::Write => "nw_",
    };
    format!("{prefix}{}", hex::encode(bytes))
}

pub fn new_key(kind: KeyKind, name: &str, secret: &str) -> NewApiKey {
    NewApiKey {
        kind,
        name: name.to_string(),
        hash: hash_key(secret),
        prefix: secret.chars().take(7).collect(),
    }
}

/// Creates a key with a fresh secret; the secret is returned once and never stored.
pub async fn create_key(
    store: &dyn Store,
    kind: KeyKind,
    name: &str,
    now: Millis,
) -> Result<(ApiKey, String), ApiError> {
    let secret = generate_secret(kind);
    let key = store.create_key(new_key(kind, name, &secret), now).await?;
    Ok((key, secret))
}

/// Makes sure the server can be used: keys given by configuration are registered;
/// if there is no active key of a kind at all, one is generated. Returns the secrets
/// generated here, to be printed once.
pub async fn ensure_bootstrap_keys(
    store: &dyn Store,
    admin: Option<&str>,
    write: Option<&str>,
    now: Millis,
) -> Result<Vec<(KeyKind, String)>, ApiError> {
    let mut generated = Vec::new();
    let existing = store.list_keys().await?;
    for (kind, given) in [(KeyKind::Admin, admin), (KeyKind::Write, write)] {
        match given.filter(|s| !s.is_empty()) {
            Some(secret) => {
                if store.find_key(&hash_key(secret)).await?.is_none() {
                    store
                        .create_key(new_key(kind, "bootstrap (from configuration)", secret), now)
                        .await?;
                }
            }
            None => {
                if !existing.iter().any(|k| k.kind == kind && k.revoked_at.is_none()) {
                    let (_, secret) = create_key(store, kind, "bootstrap (generated)", now).await?;
                    generated.push((kind, secret));
                }
            }
        }
    }
    Ok(generated)
}

/// The key of kind `kind` presented in `secret`, if it is active.
pub async fn verify(store: &dyn Store, secret: &str, kind: KeyKind) -> Result<ApiKey, ApiError> {
    match store.find_key(&hash_key(secret)).await? {
        Some(k) if k.kind == kind => Ok(k),
        Some(_) => Err(ApiError::unauthorized(match kind {
            KeyKind::Admin => "this API needs an admin key; a write key is not accepted here",
            KeyKind::Write => "the tracking API needs a write key",
        })),
        None => Err(ApiError::unauthorized("unknown or revoked key")),
    }
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
