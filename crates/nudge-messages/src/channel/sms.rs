//! SMS through a Twilio-compatible HTTP API: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`
//! with `To`, `From`, `Body`, authenticated as `sid:token`.

use super::*;
use crate::template::Rendered;

#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// `https://api.twilio.com` or any compatible service.
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
}

pub struct Sms {
    config: SmsConfig,
    http: reqwest::Client,
}

impl Sms {
    pub fn new(config: SmsConfig) -> Result<Self, String> {
        if config.account_sid.is_empty() || config.from.is_empty() {
            return Err("SMS needs an account SID and a sender number".into());
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Sms { config, http })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}{path}",
            self.config.base_url.trim_end_matches('/'),
            self.config.account_sid
        )
    }
}

#[async_trait]
impl Channel for Sms {
    fn kind(&self) -> &'static str {
        "sms"
    }
    fn transport(&self) -> &'static str {
        "twilio"
    }
    async fn send(&self, m: &Outgoing) -> Result<Option<String>, SendError> {
        let Rendered::Sms { body } = &m.content else {
            return Err(SendError::Permanent("the SMS channel sends SMS only".into()));
        };
        let response = self
            .http
            .post(self.url("/Messages.json"))
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .header("Idempotency-Key", &m.idempotency_key)
            .form(&[
                ("To", m.to.as_str()),
                ("From", self.config.from.as_str()),
                ("Body", body.as_str()),
            ])
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("SMS API: {e}")))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            let sid = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("sid").and_then(|s| s.as_str()).map(str::to_string));
            return Ok(sid);
        }
        // Twilio 21211/21614: the number is invalid or cannot receive SMS.
        if status == 400 && (text.contains("21211") || text.contains("21614")) {
            return Err(SendError::Bounce(format!("HTTP 400: {text}")));
        }
        Err(http_error(status, &text))
    }
    async fn health(&self) -> Result<(), String> {
        let r = self
            .http
            .get(self.url(".json"))
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .send()
            .await
            .map_err(|e| format!("SMS API: {e}"))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("SMS API answered {}", r.status()))
        }
    }
}
