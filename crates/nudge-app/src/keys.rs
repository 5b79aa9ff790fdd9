//! API keys: secret admin keys for `/api/v1`, public write keys for `/v1` tracking.
//! Only the SHA-256 of a key is stored. Reading a key from a request (Basic, Bearer)
//! is the HTTP layer's part.

use crate::error::{AppError, Result};
use nudge_core::Millis;
use nudge_store::{ApiKey, BrowserAccess, KeyKind, NewApiKey, Store};
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
        browser: Default::default(),
    }
}

/// Creates a key with a fresh secret; the secret is returned once and never stored.
pub async fn create_key(store: &dyn Store, kind: KeyKind, name: &str, now: Millis) -> Result<(ApiKey, String)> {
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
) -> Result<Vec<(KeyKind, String)>> {
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
pub async fn verify(store: &dyn Store, secret: &str, kind: KeyKind) -> Result<ApiKey> {
    match store.find_key(&hash_key(secret)).await? {
        Some(k) if k.kind == kind => Ok(k),
        Some(_) => Err(AppError::Unauthorized(
            match kind {
                KeyKind::Admin => "this API needs an admin key; a write key is not accepted here",
                KeyKind::Write => "the tracking API needs a write key",
            }
            .into(),
        )),
        None => Err(AppError::Unauthorized("unknown or revoked key".into())),
    }
}

/// Revokes an active key; `false` when there is no active key `id`.
pub async fn revoke_key(store: &dyn Store, id: i64, now: Millis) -> Result<bool> {
    Ok(store.revoke_key(id, now).await?)
}

/// Every key, active and revoked.
pub async fn list_keys(store: &dyn Store) -> Result<Vec<ApiKey>> {
    Ok(store.list_keys().await?)
}

/// An origin as a browser sends it in `Origin`: `http` or `https`, a host, an
/// optional port, nothing else; lower-cased. `*` stands for any origin.
pub fn normalise_origin(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw == "*" {
        return Some(raw.into());
    }
    let (scheme, rest) = raw.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    (host_ok && port_ok).then(|| format!("{scheme}://{}", rest.to_ascii_lowercase()))
}

impl crate::App {
    /// Sets the origins whose pages may send with write key `id` and whether the key
    /// is restricted to the browser endpoints. Each origin is `*` or
    /// `scheme://host[:port]`; a bad one is named and nothing changes.
    pub async fn set_key_browser(&self, id: i64, origins: &[String], browser_only: bool) -> Result<ApiKey> {
        let key = self
            .store
            .list_keys()
            .await?
            .into_iter()
            .find(|k| k.id == id && k.revoked_at.is_none())
            .ok_or_else(|| AppError::not_found(format!("no active key {id}")))?;
        if key.kind != KeyKind::Write {
            return Err(AppError::invalid_request(
                "id",
                format!("key {id} is an admin key; browsers send with write keys"),
            ));
        }
        let mut allowed = Vec::with_capacity(origins.len());
        for (i, o) in origins.iter().enumerate() {
            let n = normalise_origin(o).ok_or_else(|| {
                AppError::invalid_request(
                    format!("allowed_origins[{i}]"),
                    format!("{o:?} is not an origin: give scheme://host[:port] (http or https, no path) or *"),
                )
            })?;
            if !allowed.contains(&n) {
                allowed.push(n);
            }
        }
        if allowed.len() > 100 {
            return Err(AppError::invalid_request("allowed_origins", "at most 100 origins"));
        }
        let browser = BrowserAccess {
            allowed_origins: allowed,
            browser_only,
        };
        self.store
            .set_key_browser(id, browser)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no active key {id}")))
    }

    /// Whether some active write key lets pages of `origin` send (a CORS preflight
    /// carries no key; the request that follows is checked against its own key).
    pub async fn origin_may_send(&self, origin: &str) -> Result<bool> {
        let Some(origin) = normalise_origin(origin) else {
            return Ok(false);
        };
        let allowed = self.store.browser_origins().await?;
        Ok(allowed.iter().any(|o| o == "*" || *o == origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            normalise_origin("https://Shop.Example").as_deref(),
            Some("https://shop.example")
        );
        assert_eq!(
            normalise_origin("http://localhost:8000/").as_deref(),
            Some("http://localhost:8000")
        );
        assert_eq!(normalise_origin("*").as_deref(), Some("*"));
        for bad in [
            "shop.example",
            "ftp://shop.example",
            "https://shop.example/path",
            "https://",
            "https://a b",
            "https://x:port",
            "javascript:alert(1)",
        ] {
            assert_eq!(normalise_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn secrets_are_prefixed_and_only_hashes_are_kept() {
        let admin = generate_secret(KeyKind::Admin);
        let write = generate_secret(KeyKind::Write);
        assert!(admin.starts_with("na_") && admin.len() == 35, "{admin}");
        assert!(write.starts_with("nw_") && write.len() == 35, "{write}");
        assert_ne!(generate_secret(KeyKind::Admin), admin);
        let new = new_key(KeyKind::Admin, "ops", &admin);
        assert_eq!(new.hash, hash_key(&admin));
        assert_eq!(new.hash.len(), 64);
        assert!(!new.hash.contains(&admin[3..]));
        assert_eq!(new.prefix, admin[..7]);
        // SHA-256 of "abc".
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
