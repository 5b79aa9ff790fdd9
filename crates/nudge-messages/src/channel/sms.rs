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
    /// Where the provider posts delivery receipts (Twilio's `StatusCallback`):
    /// `{public_url}/hooks/sms/receipts`. The provider signs them with the auth token.
    pub status_callback: Option<String>,
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
            .form(&{
                let mut form = vec![
                    ("To", m.to.as_str()),
                    ("From", self.config.from.as_str()),
                    ("Body", body.as_str()),
                ];
                if let Some(url) = &self.config.status_callback {
                    form.push(("StatusCallback", url.as_str()));
                }
                form
            })
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
    /// Twilio's status callback: a form signed in `X-Twilio-Signature` with
    /// base64(HMAC-SHA1(auth token, callback URL + each parameter's name and value,
    /// sorted by name)).
    fn parse_receipt(
        &self,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Result<Option<nudge_store::Receipt>, ReceiptError> {
        let url = self
            .config
            .status_callback
            .as_deref()
            .ok_or_else(|| ReceiptError::Invalid("no status callback URL is configured".into()))?;
        let signature = headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ReceiptError::Unauthorized("the X-Twilio-Signature header is missing".into()))?;
        let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        if !verify_twilio_signature(&self.config.auth_token, url, &params, signature) {
            return Err(ReceiptError::Unauthorized(
                "the X-Twilio-Signature does not match".into(),
            ));
        }
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let missing = |what: &str| ReceiptError::Invalid(format!("{what} is missing"));
        let sid = get("MessageSid")
            .or(get("SmsSid"))
            .ok_or_else(|| missing("MessageSid"))?;
        let status = get("MessageStatus")
            .or(get("SmsStatus"))
            .ok_or_else(|| missing("MessageStatus"))?;
        Ok(receipt_of_status(sid, status, get("ErrorCode")))
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "base_url": self.config.base_url,
            "account": self.config.account_sid,
            "from": self.config.from,
        })
    }
}

/// What a Twilio message status means for the message. Error codes 30003
/// (unreachable), 30005 (unknown number) and 30006 (landline) mean the number cannot
/// take SMS: a bounce, which suppresses it.
pub fn receipt_of_status(sid: &str, status: &str, error_code: Option<&str>) -> Option<nudge_store::Receipt> {
    use nudge_store::MessageState;
    let (state, error) = match status {
        "delivered" | "read" => (MessageState::Delivered, None),
        "undelivered" | "failed" => {
            let code = error_code.unwrap_or("");
            let state = if matches!(code, "30003" | "30005" | "30006") {
                MessageState::Bounced
            } else {
                MessageState::Failed
            };
            (
                state,
                Some(format!(
                    "{status} (error {})",
                    if code.is_empty() { "unknown" } else { code }
                )),
            )
        }
        _ => return None,
    };
    Some(nudge_store::Receipt {
        channel: "sms".into(),
        provider_id: sid.to_string(),
        state,
        error,
    })
}

fn twilio_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> hmac::Hmac<sha1::Sha1> {
    use hmac::Mac;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// The `X-Twilio-Signature` of a form posted to `url` (see [`Sms::parse_receipt`]).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine;
    use hmac::Mac;
    base64::engine::general_purpose::STANDARD.encode(twilio_mac(auth_token, url, params).finalize().into_bytes())
}

fn verify_twilio_signature(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    use base64::Engine;
    use hmac::Mac;
    match base64::engine::general_purpose::STANDARD.decode(signature.trim()) {
        Ok(given) => twilio_mac(auth_token, url, params).verify_slice(&given).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_store::MessageState;

    /// The example from Twilio's documentation of request validation.
    #[test]
    fn signature_matches_twilios_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let sig = twilio_signature("12345", url, &params);
        assert_eq!(sig, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(verify_twilio_signature("12345", url, &params, &sig));
        assert!(!verify_twilio_signature("12346", url, &params, &sig));
        assert!(!verify_twilio_signature("12345", url, &params[1..], &sig));
        assert!(!verify_twilio_signature("12345", url, &params, "not base64!"));
    }

    #[test]
    fn statuses_map_to_message_states() {
        let state = |s, code| receipt_of_status("SM1", s, code).map(|r| r.state);
        assert_eq!(state("delivered", None), Some(MessageState::Delivered));
        assert_eq!(state("undelivered", Some("30005")), Some(MessageState::Bounced));
        assert_eq!(state("failed", Some("30008")), Some(MessageState::Failed));
        assert_eq!(state("sent", None), None);
        assert_eq!(state("queued", None), None);
    }
}
