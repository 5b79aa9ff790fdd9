//! Secrets at rest: every secret the database keeps is sealed with the workspace's
//! master key, here and nowhere else. Both backends store and read secret settings
//! through [`Keyring::seal`] and [`Keyring::open`] (`shared::messages`), so HTTP
//! handlers, the CLI and the web UI only ever see clear text, and a copy of the
//! database without the key reveals none of them.
//!
//! **Which values are secret:** [`is_secret_setting`] — the link-signing key (tracking,
//! unsubscribe and form stamps), the webhook signing key, the VAPID private key, and
//! the stored channel configurations (`channel:email` with the SMTP password and the
//! DKIM private key, `channel:sms` with the SMS token).
//!
//! **The format** is versioned and names its key: `enc:v1:<key id>:<base64url(nonce ‖
//! ciphertext ‖ tag)>`, XChaCha20-Poly1305 with a random 24-byte nonce per value. The
//! associated data is what the value is (`settings:channel:email`), so a sealed value
//! copied into another row fails to open instead of being taken for that row's
//! secret. The key id is the first 8 bytes of the key's SHA-256, in hex: it tells
//! which key a database needs without revealing it.
//!
//! **The master key** is 32 bytes, written as 64 hex digits or as base64 (with or
//! without padding, standard or URL-safe alphabet), from `NUDGE_SECRET_KEY` or a key
//! file ([`KeyFile`]).

use crate::{Result, StoreError};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What every sealed value starts with.
pub const SEALED_PREFIX: &str = "enc:";
const V1: &str = "enc:v1:";
const NONCE_LEN: usize = 24;

/// Whether the setting `key` holds a secret (and is therefore stored sealed).
pub fn is_secret_setting(key: &str) -> bool {
    matches!(key, "link_signing_key" | "webhook_signing_key" | "vapid_private_key") || key.starts_with("channel:")
}

/// What a setting's sealed value is bound to.
pub(crate) fn setting_aad(key: &str) -> String {
    format!("settings:{key}")
}

/// A 32-byte master key. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; 32],
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        Self::from_bytes(key.into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::digest(bytes);
        Self {
            bytes,
            id: hex::encode(&digest[..8]),
        }
    }

    /// Reads a key written as 64 hex digits or as base64 of 32 bytes (surrounding
    /// white space ignored). The error says what is wrong, never the text itself.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the secret key is empty".into());
        }
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| format!("the secret key is not valid hex: {e}"))?
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
                .ok_or_else(|| {
                    format!(
                        "the secret key is neither 64 hex digits nor base64 (it has {} characters)",
                        text.len()
                    )
                })?
        };
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("the secret key must be 32 bytes, not {}", b.len()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key's id: 16 hex digits of its SHA-256, safe to show and log.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as 64 hex digits (what a key file holds).
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.bytes.into())
    }
}

/// The key that seals new values, and the keys that may open stored ones (the
/// current one, and during a rotation the previous one).
#[derive(Debug, Clone)]
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    pub fn new(current: MasterKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// A keyring that also opens values sealed with `previous` (a rotation's old key).
    pub fn with_previous(mut self, previous: MasterKey) -> Self {
        self.previous.push(previous);
        self
    }

    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// `clear` sealed for `aad` under the current key.
    pub fn seal(&self, aad: &str, clear: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .current
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: clear.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any length a setting has");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{V1}{}:{}", self.current.id, URL_SAFE_NO_PAD.encode(out))
    }

    /// The clear text of a value sealed for `aad`. Errors name what is wrong (an
    /// unknown format, a key this keyring does not have, a value altered or moved
    /// from another row), never the value.
    pub fn open(&self, aad: &str, stored: &str) -> Result<String> {
        let Some(rest) = stored.strip_prefix(V1) else {
            return Err(StoreError::Secret(format!(
                "{aad}: not a sealed value of a format this Nudge reads (expected {V1}...)"
            )));
        };
        let (id, body) = rest
            .split_once(':')
            .ok_or_else(|| StoreError::Secret(format!("{aad}: the sealed value has no key id")))?;
        let key = self.key(id).ok_or_else(|| {
            StoreError::Secret(format!(
                "{aad} is sealed with key {id}, but the secret key given is {}: start Nudge with the key \
                 this database was written with (NUDGE_SECRET_KEY or the key file)",
                self.current.id
            ))
        })?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| StoreError::Secret(format!("{aad}: the sealed value is not base64url")))?;
        if raw.len() < NONCE_LEN {
            return Err(StoreError::Secret(format!("{aad}: the sealed value is truncated")));
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let clear = key
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::Secret(format!(
                    "{aad}: the sealed value does not open with key {id} (altered, or copied from another row)"
                ))
            })?;
        String::from_utf8(clear).map_err(|_| StoreError::Secret(format!("{aad}: the opened value is not UTF-8")))
    }

    fn key(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }
}

/// A store's keyring, replaced whole by a rotation ([`crate::MessageStore::reseal_secrets`]).
#[derive(Debug)]
pub(crate) struct SharedKeyring(std::sync::RwLock<std::sync::Arc<Keyring>>);

impl SharedKeyring {
    pub(crate) fn new(ring: Keyring) -> Self {
        Self(std::sync::RwLock::new(std::sync::Arc::new(ring)))
    }

    pub(crate) fn get(&self) -> std::sync::Arc<Keyring> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set(&self, ring: Keyring) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(ring);
    }
}

/// The id of the key a sealed value names, if it is one.
pub fn sealed_key_id(stored: &str) -> Option<&str> {
    stored.strip_prefix(V1)?.split_once(':').map(|(id, _)| id)
}

/// A key file: one line, the key as 64 hex digits, readable by its owner only.
#[derive(Debug, Clone)]
pub struct KeyFile {
    pub path: PathBuf,
}

impl KeyFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The key in the file, or `None` when there is no file.
    pub fn read(&self) -> Result<Option<MasterKey>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::Secret(format!(
                    "reading the key file {}: {e}",
                    self.path.display()
                )));
            }
        };
        MasterKey::parse(&text)
            .map(Some)
            .map_err(|e| StoreError::Secret(format!("the key file {}: {e}", self.path.display())))
    }

    /// Writes `key` to the file atomically: a temporary file beside it (mode 0600,
    /// synced), renamed over it, then the directory synced.
    pub fn write(&self, key: &MasterKey) -> Result<()> {
        use std::io::Write as _;
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let name = self.path.file_name().and_then(|n| n.to_str()).unwrap_or("secret.key");
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let fail = |e: std::io::Error| StoreError::Secret(format!("writing the key file {}: {e}", self.path.display()));
        {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp).map_err(fail)?;
            writeln!(file, "{}", key.to_hex()).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(fail)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Where a rotation writes the new key before the database is sealed with it:
    /// `KEY.new`.
    pub fn staged(&self) -> KeyFile {
        KeyFile::new(crate::backup::sibling(&self.path, "new"))
    }

    /// Puts the staged key ([`Self::staged`]) in place of this file, which is kept
    /// as `KEY.old-<id of old>` (returned) if it exists. Renames: each step atomic.
    pub fn promote_staged(&self, old: &MasterKey) -> Result<Option<PathBuf>> {
        let kept = crate::backup::sibling(&self.path, &format!("old-{}", old.id()));
        let fail =
            |e: std::io::Error| StoreError::Secret(format!("replacing the key file {}: {e}", self.path.display()));
        let kept = if self.path.exists() {
            std::fs::rename(&self.path, &kept).map_err(fail)?;
            Some(kept)
        } else {
            None
        };
        std::fs::rename(&self.staged().path, &self.path).map_err(fail)?;
        Ok(kept)
    }

    /// The key in the file, or a new key written to it (`true`: it was created).
    pub fn read_or_create(&self) -> Result<(MasterKey, bool)> {
        if let Some(key) = self.read()? {
            return Ok((key, false));
        }
        let key = MasterKey::generate();
        self.write(&key)?;
        Ok((key, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_what_the_value_is() {
        let ring = Keyring::new(MasterKey::generate());
        let sealed = ring.seal("settings:channel:email", "smtp://u:hunter2@h");
        assert!(sealed.starts_with(&format!("enc:v1:{}:", ring.current().id())));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            ring.open("settings:channel:email", &sealed).unwrap(),
            "smtp://u:hunter2@h"
        );
        // Two seals of one value differ (random nonce).
        assert_ne!(sealed, ring.seal("settings:channel:email", "smtp://u:hunter2@h"));
        // Moved to another row: refused.
        let moved = ring.open("settings:channel:sms", &sealed).unwrap_err().to_string();
        assert!(moved.contains("does not open"), "{moved}");
        // Altered: refused.
        let mut altered = sealed.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(ring.open("settings:channel:email", &altered).is_err());
    }

    #[test]
    fn a_wrong_key_is_named_not_garbage() {
        let old = MasterKey::generate();
        let sealed = Keyring::new(old.clone()).seal("settings:x", "secret");
        let other = Keyring::new(MasterKey::generate());
        let e = other.open("settings:x", &sealed).unwrap_err().to_string();
        assert!(e.contains(old.id()) && e.contains(other.current().id()), "{e}");
        assert!(!e.contains("secret\""), "{e}");
        // During a rotation the previous key still opens.
        let both = other.clone().with_previous(old);
        assert_eq!(both.open("settings:x", &sealed).unwrap(), "secret");
        assert!(
            other
                .open("settings:x", "plain")
                .unwrap_err()
                .to_string()
                .contains("format")
        );
    }

    #[test]
    fn keys_parse_from_hex_or_base64_and_name_what_is_wrong() {
        let key = MasterKey::generate();
        assert_eq!(MasterKey::parse(&key.to_hex()).unwrap().id(), key.id());
        let b64 = STANDARD.encode(key.bytes);
        assert_eq!(MasterKey::parse(&format!(" {b64}\n")).unwrap().id(), key.id());
        assert_eq!(
            MasterKey::parse(&URL_SAFE_NO_PAD.encode(key.bytes)).unwrap().id(),
            key.id()
        );
        assert!(MasterKey::parse("").unwrap_err().contains("empty"));
        assert!(
            MasterKey::parse(&STANDARD.encode([1u8; 16]))
                .unwrap_err()
                .contains("32 bytes, not 16")
        );
        assert!(MasterKey::parse("not a key!").unwrap_err().contains("neither"));
        assert!(!format!("{key:?}").contains(&key.to_hex()));
    }

    #[test]
    fn key_files_are_created_once_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = KeyFile::new(dir.path().join("sub/secret.key"));
        assert!(file.read().unwrap().is_none());
        let (key, created) = file.read_or_create().unwrap();
        assert!(created);
        let (again, created) = file.read_or_create().unwrap();
        assert!(!created);
        assert_eq!(key.id(), again.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&file.path, "zz").unwrap();
        let e = file.read().unwrap_err().to_string();
        assert!(e.contains("secret.key") && e.contains("neither"), "{e}");
    }
}
