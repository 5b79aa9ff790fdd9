//! Web Push: a message to a browser's push subscription, through the push service
//! the browser chose (RFC 8030).
//!
//! - The payload, `{"title", "body", "url", "message_id"}` (what a service worker
//!   shows), is encrypted for the browser with the `aes128gcm` content coding of
//!   RFC 8291: ECDH on P-256 with a fresh key per message, HKDF-SHA256 keyed by the
//!   subscription's auth secret, AES-128-GCM, one record of at most 4096 bytes.
//! - The request is signed for the push service with VAPID (RFC 8292): an ES256 JWT
//!   for the endpoint's origin, made with the workspace's VAPID key, whose public
//!   half the browser was given at `PushManager.subscribe`.
//!
//! Pure parts (keys, encryption, JWT) are plain functions, tested with the RFC 8291
//! example; [`WebPush`] only adds HTTP.

use super::*;
use crate::template::Rendered;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hkdf::Hkdf;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use serde_json::{Value, json};
use sha2::Sha256;

/// base64url without padding, as Web Push uses it; padding is accepted on input.
pub const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The record size announced in the header; the whole message is one record.
pub const RECORD_SIZE: u32 = 4096;
/// Salt (16), record size (4), key id length (1), key id (65).
const HEADER_LEN: usize = 86;
/// The longest payload that fits one 4096-byte record with its padding delimiter
/// and tag, and keeps the encrypted body within the 4096 bytes push services take.
pub const MAX_PAYLOAD: usize = RECORD_SIZE as usize - HEADER_LEN - 16 - 1;
/// How long the push service keeps a message for an offline browser (seconds).
pub const TTL_SECONDS: u32 = 86_400;
/// VAPID tokens are valid this long (RFC 8292 allows at most 24 hours).
const JWT_LIFETIME_SECONDS: i64 = 12 * 3600;

/// Where and for whom to encrypt: a push subscription with its keys decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed (`0x04 || x || y`).
    pub p256dh: [u8; 65],
    /// The browser's auth secret.
    pub auth: [u8; 16],
}

/// A push subscription that cannot be used; `field` names the culprit
/// (`endpoint`, `keys.p256dh`, `keys.auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSubscription {
    pub field: &'static str,
    pub message: String,
}

/// Whether a push endpoint points at this machine or a private network (loopback,
/// RFC 1918, link-local, unique-local, unspecified addresses, `localhost`). Browsers'
/// push services are public hosts; such an endpoint is someone steering Nudge's
/// requests at internal services. Host names are not resolved here.
pub fn is_local_endpoint(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified() || ip.is_broadcast()
        }
        Some(url::Host::Ipv6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || ip
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_private())
        }
        None => false,
    }
}

impl PushTarget {
    /// Checks and decodes a subscription as the browser gives it
    /// (`PushSubscription.toJSON()`): an `https://` endpoint (`http://` only for
    /// `localhost` and `127.0.0.1`, for development), a P-256 public key and a
    /// 16-byte auth secret, both base64url.
    pub fn parse(endpoint: &str, p256dh: &str, auth: &str) -> Result<Self, InvalidSubscription> {
        let invalid = |field, message: String| InvalidSubscription { field, message };
        let url = url::Url::parse(endpoint).map_err(|e| invalid("endpoint", format!("endpoint is not a URL: {e}")))?;
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match url.scheme() {
            "https" => {}
            "http" if local => {}
            _ => return Err(invalid("endpoint", "endpoint must be an https:// URL".into())),
        }
        if url.host_str().is_none_or(str::is_empty) || endpoint.len() > 2048 {
            return Err(invalid(
                "endpoint",
                "endpoint must be an https:// URL with a host, at most 2048 characters".into(),
            ));
        }
        let key = B64
            .decode(p256dh.trim())
            .map_err(|_| invalid("keys.p256dh", "keys.p256dh is not base64url".into()))?;
        let key: [u8; 65] = key.try_into().map_err(|k: Vec<u8>| {
            invalid(
                "keys.p256dh",
                format!(
                    "keys.p256dh must be a 65-byte uncompressed P-256 public key, got {} bytes",
                    k.len()
                ),
            )
        })?;
        if key[0] != 4 || PublicKey::from_sec1_bytes(&key).is_err() {
            return Err(invalid(
                "keys.p256dh",
                "keys.p256dh is not an uncompressed point on the P-256 curve".into(),
            ));
        }
        let secret = B64
            .decode(auth.trim())
            .map_err(|_| invalid("keys.auth", "keys.auth is not base64url".into()))?;
        let secret: [u8; 16] = secret.try_into().map_err(|s: Vec<u8>| {
            invalid(
                "keys.auth",
                format!("keys.auth must be a 16-byte secret, got {} bytes", s.len()),
            )
        })?;
        Ok(PushTarget {
            endpoint: endpoint.to_string(),
            p256dh: key,
            auth: secret,
        })
    }
}

/// A P-256 private key from 32 random bytes (retried in the astronomically rare case
/// the bytes are not a valid scalar).
fn random_secret() -> SecretKey {
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(k) = SecretKey::from_slice(&bytes) {
            return k;
        }
    }
}

fn uncompressed(k: &PublicKey) -> [u8; 65] {
    let point = k.to_encoded_point(false);
    let mut out = [0u8; 65];
    out.copy_from_slice(point.as_bytes());
    out
}

/// The content-encryption key and nonce of RFC 8291 section 3.4.
fn derive(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8; 65],
    as_public: &[u8; 65],
    salt: &[u8],
) -> ([u8; 16], [u8; 12]) {
    let mut key_info = Vec::with_capacity(14 + 130);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .expect("16 bytes is a valid HKDF-SHA256 length");
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("12 bytes is a valid HKDF-SHA256 length");
    (cek, nonce)
}

/// Encrypts `plaintext` for a browser (RFC 8291, `aes128gcm`), with a fresh
/// ephemeral key and salt.
pub fn encrypt(plaintext: &[u8], to: &PushTarget) -> Result<Vec<u8>, String> {
    let salt: [u8; 16] = rand::random();
    encrypt_with(plaintext, &to.p256dh, &to.auth, &random_secret(), &salt)
}

/// [`encrypt`] with the ephemeral key and salt given (for the RFC's example).
fn encrypt_with(
    plaintext: &[u8],
    ua_public: &[u8; 65],
    auth: &[u8; 16],
    as_secret: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, String> {
    if plaintext.len() > MAX_PAYLOAD {
        return Err(format!(
            "the push payload is {} bytes; at most {MAX_PAYLOAD} fit in a push message",
            plaintext.len()
        ));
    }
    let ua =
        PublicKey::from_sec1_bytes(ua_public).map_err(|_| "the subscription's p256dh key is invalid".to_string())?;
    let as_public = uncompressed(&as_secret.public_key());
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua.as_affine());
    let (cek, nonce) = derive(shared.raw_secret_bytes(), auth, ua_public, &as_public, salt);
    // One record, so it is the last: the padding delimiter is 0x02, no padding.
    let mut padded = Vec::with_capacity(plaintext.len() + 1);
    padded.extend_from_slice(plaintext);
    padded.push(2);
    let sealed = Aes128Gcm::new(&cek.into())
        .encrypt(Nonce::from_slice(&nonce), padded.as_slice())
        .map_err(|_| "AES-GCM encryption failed".to_string())?;
    let mut body = Vec::with_capacity(HEADER_LEN + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(&as_public);
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// Decrypts a Web Push message as the browser does (RFC 8291): `ua_private` is the
/// browser's P-256 private key (32 bytes), `auth` its auth secret. For receivers
/// and tests; Nudge itself only encrypts. Single-record messages only.
pub fn decrypt(body: &[u8], ua_private: &[u8], auth: &[u8]) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("the body is shorter than an aes128gcm header".into());
    }
    let salt = &body[..16];
    let rs = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
    let idlen = body[20] as usize;
    if idlen != 65 || body.len() < 21 + idlen + 17 {
        return Err(format!("unexpected key id length {idlen} or a truncated body"));
    }
    let as_public: [u8; 65] = body[21..86].try_into().map_err(|_| "bad key id")?;
    let ciphertext = &body[86..];
    if ciphertext.len() > rs {
        return Err("more than one record".into());
    }
    let ua_secret = SecretKey::from_slice(ua_private).map_err(|_| "the private key is invalid")?;
    let ua_public = uncompressed(&ua_secret.public_key());
    let sender = PublicKey::from_sec1_bytes(&as_public).map_err(|_| "the sender's key is invalid")?;
    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), sender.as_affine());
    let (cek, nonce) = derive(shared.raw_secret_bytes(), auth, &ua_public, &as_public, salt);
    let mut padded = Aes128Gcm::new(&cek.into())
        .decrypt(Nonce::from_slice(&nonce), ciphertext)
        .map_err(|_| "decryption failed (wrong key, auth secret or a tampered body)".to_string())?;
    let end = padded.iter().rposition(|b| *b != 0).ok_or("no padding delimiter")?;
    if padded[end] != 2 {
        return Err(format!("padding delimiter {} is not 2 (the last record)", padded[end]));
    }
    padded.truncate(end);
    Ok(padded)
}

/// The workspace's VAPID key pair (ECDSA P-256).
#[derive(Clone)]
pub struct VapidKey {
    signing: SigningKey,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VapidKey({})", self.public_key())
    }
}

impl VapidKey {
    pub fn generate() -> Self {
        VapidKey {
            signing: SigningKey::from(random_secret()),
        }
    }
    /// From the private scalar, base64url (what [`VapidKey::private_key`] gives).
    pub fn from_private(b64: &str) -> Result<Self, String> {
        let bytes = B64
            .decode(b64.trim())
            .map_err(|_| "the VAPID private key is not base64url".to_string())?;
        let secret =
            SecretKey::from_slice(&bytes).map_err(|_| "the VAPID private key is not a P-256 key".to_string())?;
        Ok(VapidKey {
            signing: SigningKey::from(secret),
        })
    }
    /// The private scalar, base64url (32 bytes): keep it secret.
    pub fn private_key(&self) -> String {
        B64.encode(self.signing.to_bytes())
    }
    /// The public key, base64url of the uncompressed point: the browser's
    /// `applicationServerKey` and the `k=` of the `Authorization` header.
    pub fn public_key(&self) -> String {
        B64.encode(self.signing.verifying_key().to_encoded_point(false).as_bytes())
    }
    /// `Authorization: vapid t=<JWT>, k=<public key>` for a request to `endpoint`
    /// at `now` (unix seconds). `subject` is a `mailto:` or `https:` contact.
    pub fn authorization(&self, endpoint: &str, subject: &str, now: i64) -> Result<String, String> {
        let url = url::Url::parse(endpoint).map_err(|e| format!("endpoint {endpoint:?}: {e}"))?;
        let audience = url.origin().ascii_serialization();
        if audience == "null" {
            return Err(format!("endpoint {endpoint:?} has no origin"));
        }
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = B64.encode(
            json!({"aud": audience, "exp": now + JWT_LIFETIME_SECONDS, "sub": subject})
                .to_string()
                .as_bytes(),
        );
        let signing_input = format!("{header}.{claims}");
        let signature: Signature = self.signing.sign(signing_input.as_bytes());
        Ok(format!(
            "vapid t={signing_input}.{}, k={}",
            B64.encode(signature.to_bytes()),
            self.public_key()
        ))
    }
}

/// Checks a VAPID `Authorization` header as a push service does: the JWT is ES256,
/// signed by the key in `k=`, which must be `public_key` (base64url). Returns the
/// claims. For receivers and tests.
pub fn verify_vapid(authorization: &str, public_key: &str) -> Result<Value, String> {
    let rest = authorization
        .strip_prefix("vapid ")
        .ok_or("not a vapid authorization")?;
    let mut token = None;
    let mut key = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(t) = part.strip_prefix("t=") {
            token = Some(t);
        } else if let Some(k) = part.strip_prefix("k=") {
            key = Some(k);
        }
    }
    let (token, key) = (token.ok_or("no t=")?, key.ok_or("no k=")?);
    if key != public_key {
        return Err(format!("k={key} is not the expected public key"));
    }
    let verifying = VerifyingKey::from_sec1_bytes(&B64.decode(key).map_err(|_| "k= is not base64url")?)
        .map_err(|_| "k= is not a P-256 key")?;
    let (signing_input, signature) = token.rsplit_once('.').ok_or("the JWT has no signature")?;
    let signature = Signature::from_slice(&B64.decode(signature).map_err(|_| "the signature is not base64url")?)
        .map_err(|_| "the signature is not 64 bytes")?;
    verifying
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| "the JWT signature does not verify")?;
    let (header, claims) = signing_input.split_once('.').ok_or("the JWT has no claims")?;
    let header: Value = serde_json::from_slice(&B64.decode(header).map_err(|_| "bad JWT header")?)
        .map_err(|_| "the JWT header is not JSON")?;
    if header["alg"] != "ES256" {
        return Err(format!("alg is {}, not ES256", header["alg"]));
    }
    serde_json::from_slice(&B64.decode(claims).map_err(|_| "bad JWT claims")?)
        .map_err(|_| "the claims are not JSON".into())
}

/// The JSON a service worker receives (`event.data.json()`).
pub fn payload(message_id: i64, title: &str, body: &str, url: Option<&str>) -> Vec<u8> {
    json!({"title": title, "body": body, "url": url, "message_id": message_id})
        .to_string()
        .into_bytes()
}

/// How a push service's answer is taken: 2xx sent (the `Location` header is the
/// push message's id), 404 and 410 mean the subscription is gone, 429 and 5xx are
/// retried, other 4xx fail the message.
pub fn classify(status: u16, body: &str) -> Result<(), SendError> {
    match status {
        200..=299 => Ok(()),
        404 | 410 => Err(SendError::Bounce(format!(
            "the push subscription is gone (HTTP {status})"
        ))),
        _ => Err(http_error(status, body)),
    }
}

/// The push channel: sends to the subscription in [`Outgoing::push`].
pub struct WebPush {
    vapid: VapidKey,
    subject: String,
    http: reqwest::Client,
}

impl WebPush {
    /// `subject`: the `mailto:` or `https:` contact push services may use to reach
    /// the sender.
    pub fn new(vapid: VapidKey, subject: &str) -> Result<Self, String> {
        if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
            return Err(format!(
                "the VAPID subject {subject:?} must be a mailto: or https:// contact"
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(WebPush {
            vapid,
            subject: subject.to_string(),
            http,
        })
    }

    pub fn public_key(&self) -> String {
        self.vapid.public_key()
    }
}

#[async_trait]
impl Channel for WebPush {
    fn kind(&self) -> &'static str {
        "push"
    }
    fn transport(&self) -> &'static str {
        "webpush"
    }
    async fn send(&self, m: &Outgoing) -> Result<Option<String>, SendError> {
        let Rendered::Push { title, body, url } = &m.content else {
            return Err(SendError::Permanent("the push channel sends push messages only".into()));
        };
        let Some(target) = &m.push else {
            return Err(SendError::Permanent("no push subscription to send to".into()));
        };
        let encrypted =
            encrypt(&payload(m.message_id, title, body, url.as_deref()), target).map_err(SendError::Permanent)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let authorization = self
            .vapid
            .authorization(&target.endpoint, &self.subject, now)
            .map_err(SendError::Permanent)?;
        let response = self
            .http
            .post(&target.endpoint)
            .header("Authorization", authorization)
            .header("TTL", TTL_SECONDS.to_string())
            .header("Urgency", "normal")
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .body(encrypted)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("push service: {e}")))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = if (200..300).contains(&status) {
            String::new()
        } else {
            response.text().await.unwrap_or_default()
        };
        classify(status, &text).map(|()| location)
    }
    async fn health(&self) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        B64.decode(s).unwrap()
    }

    // RFC 8291 Appendix A.
    const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AS_PUBLIC: &str = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUBLIC: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

    #[test]
    fn rfc8291_example_encrypts_byte_for_byte_and_decrypts() {
        let as_secret = SecretKey::from_slice(&b64(AS_PRIVATE)).unwrap();
        assert_eq!(B64.encode(uncompressed(&as_secret.public_key())), AS_PUBLIC);
        let target = PushTarget::parse(
            "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV",
            UA_PUBLIC,
            AUTH,
        )
        .unwrap();
        let salt: [u8; 16] = b64(SALT).try_into().unwrap();
        let body = encrypt_with(PLAINTEXT.as_bytes(), &target.p256dh, &target.auth, &as_secret, &salt).unwrap();
        assert_eq!(B64.encode(&body), BODY);
        assert_eq!(
            decrypt(&b64(BODY), &b64(UA_PRIVATE), &b64(AUTH)).unwrap(),
            PLAINTEXT.as_bytes()
        );
    }

    #[test]
    fn fresh_keys_round_trip_and_tampering_is_caught() {
        let ua = random_secret();
        let auth: [u8; 16] = rand::random();
        let target = PushTarget {
            endpoint: "https://push.example/x".into(),
            p256dh: uncompressed(&ua.public_key()),
            auth,
        };
        let text = payload(7, "Hi Ada", "Your cart misses you", Some("https://shop.example/cart"));
        let a = encrypt(&text, &target).unwrap();
        let b = encrypt(&text, &target).unwrap();
        assert_ne!(a, b, "a fresh key and salt per message");
        assert_eq!(a.len(), HEADER_LEN + text.len() + 1 + 16);
        assert_eq!(decrypt(&a, &ua.to_bytes(), &auth).unwrap(), text);
        let mut bad = a.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(decrypt(&bad, &ua.to_bytes(), &auth).is_err());
        assert!(
            decrypt(&a, &ua.to_bytes(), &[0u8; 16]).is_err(),
            "the auth secret matters"
        );
        assert!(encrypt(&vec![b'x'; MAX_PAYLOAD], &target).unwrap().len() <= RECORD_SIZE as usize);
        assert!(
            encrypt(&vec![b'x'; MAX_PAYLOAD + 1], &target)
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn vapid_jwt_verifies_with_the_public_key() {
        let key = VapidKey::generate();
        let again = VapidKey::from_private(&key.private_key()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(b64(&key.public_key()).len(), 65);
        let h = key
            .authorization(
                "https://fcm.googleapis.com/fcm/send/abc?x=1",
                "mailto:ops@example.com",
                1_000,
            )
            .unwrap();
        let claims = verify_vapid(&h, &key.public_key()).unwrap();
        assert_eq!(
            claims,
            json!({"aud": "https://fcm.googleapis.com", "exp": 1_000 + 12 * 3600, "sub": "mailto:ops@example.com"})
        );
        let port = key.authorization("http://127.0.0.1:8085/p/1", "mailto:a@b", 0).unwrap();
        assert_eq!(
            verify_vapid(&port, &key.public_key()).unwrap()["aud"],
            "http://127.0.0.1:8085"
        );
        // Another key's signature, or a changed claim, does not verify.
        let other = VapidKey::generate();
        assert!(verify_vapid(&h, &other.public_key()).is_err());
        let forged = h.replace(&key.public_key(), &other.public_key());
        assert!(verify_vapid(&forged, &other.public_key()).is_err());
        let t = h.strip_prefix("vapid t=").unwrap().split(',').next().unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let longer = B64.encode(
            json!({"aud": "https://fcm.googleapis.com", "exp": 1_000 + 48 * 3600, "sub": "mailto:ops@example.com"})
                .to_string(),
        );
        let tampered = h.replace(parts[1], &longer);
        assert!(
            verify_vapid(&tampered, &key.public_key())
                .unwrap_err()
                .contains("does not verify")
        );
    }

    #[test]
    fn subscriptions_are_checked_field_by_field() {
        assert!(PushTarget::parse("https://push.example/a", UA_PUBLIC, AUTH).is_ok());
        assert!(PushTarget::parse("http://localhost:9000/a", UA_PUBLIC, AUTH).is_ok());
        assert!(PushTarget::parse("http://127.0.0.1:9000/a", UA_PUBLIC, AUTH).is_ok());
        for local in [
            "http://localhost:9000/a",
            "https://127.0.0.1/a",
            "https://10.1.2.3/a",
            "https://192.168.0.10/a",
            "https://169.254.169.254/latest",
            "https://[::1]/a",
            "https://[fd00::1]/a",
            "https://[::ffff:10.0.0.1]/a",
            "https://push.localhost/a",
        ] {
            assert!(is_local_endpoint(local), "{local}");
        }
        for public in [
            "https://fcm.googleapis.com/fcm/send/x",
            "https://8.8.8.8/a",
            "https://[2001:db8::1]/a",
        ] {
            assert!(!is_local_endpoint(public), "{public}");
        }
        let field = |e: &str, k: &str, a: &str| PushTarget::parse(e, k, a).unwrap_err().field;
        assert_eq!(field("http://push.example/a", UA_PUBLIC, AUTH), "endpoint");
        assert_eq!(field("ftp://push.example/a", UA_PUBLIC, AUTH), "endpoint");
        assert_eq!(field("not a url", UA_PUBLIC, AUTH), "endpoint");
        assert_eq!(field("https://push.example/a", &UA_PUBLIC[..40], AUTH), "keys.p256dh");
        assert_eq!(field("https://push.example/a", "!!!", AUTH), "keys.p256dh");
        // 65 bytes, but not a point on the curve.
        let off_curve = B64.encode([4u8; 65]);
        assert_eq!(field("https://push.example/a", &off_curve, AUTH), "keys.p256dh");
        assert_eq!(field("https://push.example/a", UA_PUBLIC, "AAAA"), "keys.auth");
        assert_eq!(field("https://push.example/a", UA_PUBLIC, "***"), "keys.auth");
        // Padded base64url is accepted too.
        assert!(PushTarget::parse("https://push.example/a", UA_PUBLIC, &format!("{AUTH}==")).is_ok());
    }

    #[test]
    fn push_service_answers_are_classified() {
        assert_eq!(classify(201, ""), Ok(()));
        assert_eq!(classify(202, ""), Ok(()));
        assert!(matches!(classify(410, ""), Err(SendError::Bounce(_))));
        assert!(matches!(classify(404, ""), Err(SendError::Bounce(_))));
        assert!(matches!(classify(429, ""), Err(SendError::Transient(_))));
        assert!(matches!(classify(503, ""), Err(SendError::Transient(_))));
        assert!(matches!(classify(400, "bad"), Err(SendError::Permanent(_))));
        assert!(matches!(classify(413, ""), Err(SendError::Permanent(_))));
        assert!(matches!(classify(403, ""), Err(SendError::Permanent(_))));
    }
}
