//! Webhooks: any HTTP endpoint (and through it WhatsApp or any provider). The body is
//! signed: `X-Nudge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`,
//! so the receiver can check it came from this workspace and is fresh.

use super::*;
use crate::template::Rendered;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub struct Webhook {
    secret: Vec<u8>,
    http: reqwest::Client,
}

impl Webhook {
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Webhook {
            secret: secret.to_vec(),
            http,
        })
    }
}

/// The signature header value for `body` sent at `unix_seconds`.
pub fn signature(secret: &[u8], unix_seconds: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{unix_seconds}.").as_bytes());
    mac.update(body.as_bytes());
    format!("t={unix_seconds},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl Channel for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }
    fn transport(&self) -> &'static str {
        "http"
    }
    async fn send(&self, m: &Outgoing) -> Result<Option<String>, SendError> {
        let Rendered::Webhook {
            method,
            url,
            headers,
            body,
        } = &m.content
        else {
            return Err(SendError::Permanent("the webhook channel sends webhooks only".into()));
        };
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| SendError::Permanent(format!("bad method {method}")))?;
        let parsed = reqwest::Url::parse(url).map_err(|e| SendError::Permanent(format!("URL {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SendError::Permanent(format!("URL {url:?} is not http(s)")));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut req = self.http.request(method, parsed);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let response = req
            .header("X-Nudge-Signature", signature(&self.secret, now, body))
            .header("X-Nudge-Message-Id", m.message_id.to_string())
            .header("Idempotency-Key", &m.idempotency_key)
            .body(body.clone())
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("webhook: {e}")))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(None);
        }
        let text = response.text().await.unwrap_or_default();
        Err(http_error(status, &text))
    }
    async fn health(&self) -> Result<(), String> {
        Ok(())
    }
    fn confirms_delivery(&self) -> bool {
        true
    }
    /// Receivers need the secret to verify `X-Nudge-Signature`.
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "signature_header": "X-Nudge-Signature",
            "signing_secret": hex::encode(&self.secret),
        })
    }
}
