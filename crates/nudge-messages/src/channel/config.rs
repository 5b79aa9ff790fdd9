//! Channel configuration as data: what `NUDGE_SMTP_URL` / `NUDGE_SMS_*` say at start,
//! or what an administrator stores through `PUT /api/v1/channels/{kind}` (kept in the
//! database, applied without a restart). [`ChannelConfig::build`] turns it into a
//! ready [`ChannelSlot`].

use super::capture::Capture;
use super::sms::{Sms, SmsConfig};
use super::smtp::{DkimSettings, Smtp, SmtpConfig};
use crate::delivery::ChannelSlot;

/// The lowest `rate` a channel takes: one message per 1,000 seconds.
pub const MIN_RATE: f64 = 0.001;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The kinds whose transport can be configured (webhook and push need none).
pub const CONFIGURABLE: &[&str] = &["email", "sms"];

/// How one channel delivers. Tagged by `transport`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "transport", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelConfig {
    /// Email through an SMTP server.
    Smtp {
        /// `smtp://user:pass@host:587?tls=required`, `smtps://...`, `smtp://host:25`.
        url: String,
        /// The default sender, `Name <address>`.
        from: String,
        /// Connections kept open (and messages in flight); default 8.
        #[serde(default)]
        pool: Option<u32>,
        /// Messages per second at most; default unlimited.
        #[serde(default)]
        rate: Option<f64>,
        #[serde(default)]
        dkim: Option<DkimConfig>,
    },
    /// SMS through a Twilio-compatible HTTP API.
    Twilio {
        base_url: String,
        account: String,
        #[serde(default)]
        token: String,
        from: String,
        /// Requests in flight; default 8.
        #[serde(default)]
        concurrency: Option<u32>,
        #[serde(default)]
        rate: Option<f64>,
    },
    /// Keep messages, send nothing (development, demos).
    Capture {},
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    pub selector: String,
    pub domain: String,
    /// PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`).
    pub private_key: String,
}

/// What is wrong with a configuration: the field (relative to the body) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ChannelConfig {
    pub fn transport(&self) -> &'static str {
        match self {
            ChannelConfig::Smtp { .. } => "smtp",
            ChannelConfig::Twilio { .. } => "twilio",
            ChannelConfig::Capture {} => "capture",
        }
    }

    /// Builds the channel for `kind` (`email`, `sms`). `public_url` is where the
    /// provider posts delivery receipts. Checks everything that can be checked
    /// without connecting (URL, sender address, DKIM key).
    pub fn build(&self, kind: &str, public_url: &str) -> Result<ChannelSlot, ConfigError> {
        let err = |field: &str, message: String| ConfigError {
            field: field.into(),
            message,
        };
        let fits = match self {
            ChannelConfig::Smtp { .. } => kind == "email",
            ChannelConfig::Twilio { .. } => kind == "sms",
            ChannelConfig::Capture {} => CONFIGURABLE.contains(&kind),
        };
        if !CONFIGURABLE.contains(&kind) {
            return Err(err(
                "kind",
                format!(
                    "the {kind} channel cannot be configured; one of {}",
                    CONFIGURABLE.join(", ")
                ),
            ));
        }
        if !fits {
            return Err(err(
                "transport",
                format!("transport {} cannot deliver {kind}", self.transport()),
            ));
        }
        // A rate is the number of messages per second; below MIN_RATE the interval
        // between two sends would not fit a timer (5e-324 once crashed the handler).
        let positive = |field: &str, rate: Option<f64>| match rate {
            Some(r) if !(r.is_finite() && r >= MIN_RATE) => Err(err(
                field,
                format!("must be a number of messages per second, at least {MIN_RATE}"),
            )),
            _ => Ok(()),
        };
        match self {
            ChannelConfig::Smtp {
                url,
                from,
                pool,
                rate,
                dkim,
            } => {
                positive("rate", *rate)?;
                let pool = pool.unwrap_or(8);
                if !(1..=256).contains(&pool) {
                    return Err(err("pool", "must be between 1 and 256".into()));
                }
                if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                    return Err(err("url", "must start with smtp:// or smtps://".into()));
                }
                let smtp = Smtp::new(&SmtpConfig {
                    url: url.clone(),
                    from: from.clone(),
                    pool_size: pool,
                    dkim: dkim.as_ref().map(|d| DkimSettings {
                        selector: d.selector.clone(),
                        domain: d.domain.clone(),
                        private_key: d.private_key.clone(),
                        ed25519: false,
                    }),
                })
                .map_err(|e| {
                    let field = if e.starts_with("sender") {
                        "from"
                    } else if e.starts_with("DKIM") {
                        "dkim.private_key"
                    } else {
                        "url"
                    };
                    err(field, e)
                })?;
                Ok(ChannelSlot::new(Arc::new(smtp), pool as usize, *rate))
            }
            ChannelConfig::Twilio {
                base_url,
                account,
                token,
                from,
                concurrency,
                rate,
            } => {
                positive("rate", *rate)?;
                if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
                    return Err(err("base_url", "must be an http:// or https:// URL".into()));
                }
                if account.trim().is_empty() {
                    return Err(err("account", "is required".into()));
                }
                if from.trim().is_empty() {
                    return Err(err("from", "is required (the sender number)".into()));
                }
                let sms = Sms::new(SmsConfig {
                    base_url: base_url.clone(),
                    account_sid: account.clone(),
                    auth_token: token.clone(),
                    from: from.clone(),
                    status_callback: Some(format!("{}/hooks/sms/receipts", public_url.trim_end_matches('/'))),
                })
                .map_err(|e| err("base_url", e))?;
                Ok(ChannelSlot::new(
                    Arc::new(sms),
                    concurrency.unwrap_or(8).clamp(1, 256) as usize,
                    *rate,
                ))
            }
            ChannelConfig::Capture {} => {
                let kind = if kind == "email" { "email" } else { "sms" };
                Ok(ChannelSlot::new(Arc::new(Capture::new(kind)), 64, None))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> ChannelConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn configurations_are_checked_before_use() {
        let smtp =
            parse(json!({"transport": "smtp", "url": "smtp://127.0.0.1:2525", "from": "Shop <shop@example.com>"}));
        let slot = smtp.build("email", "http://x").unwrap();
        assert_eq!(slot.channel.transport(), "smtp");
        let field = |c: &ChannelConfig, kind: &str| c.build(kind, "http://x").err().map(|e| e.field);
        assert_eq!(field(&smtp, "sms").as_deref(), Some("transport"));
        assert_eq!(field(&smtp, "push").as_deref(), Some("kind"));
        let bad_from = parse(json!({"transport": "smtp", "url": "smtp://h", "from": "not an address"}));
        assert_eq!(field(&bad_from, "email").as_deref(), Some("from"));
        let bad_url = parse(json!({"transport": "smtp", "url": "http://h", "from": "a@b.c"}));
        assert_eq!(field(&bad_url, "email").as_deref(), Some("url"));
        let bad_key = parse(
            json!({"transport": "smtp", "url": "smtp://h", "from": "a@b.c", "dkim": {"selector": "s", "domain": "b.c", "private_key": "nope"}}),
        );
        assert_eq!(field(&bad_key, "email").as_deref(), Some("dkim.private_key"));
        let bad_rate = parse(json!({"transport": "smtp", "url": "smtp://h", "from": "a@b.c", "rate": -1}));
        assert_eq!(field(&bad_rate, "email").as_deref(), Some("rate"));
        let tiny_rate = parse(json!({"transport": "smtp", "url": "smtp://h", "from": "a@b.c", "rate": 5e-324}));
        assert_eq!(field(&tiny_rate, "email").as_deref(), Some("rate"));
        let twilio = parse(
            json!({"transport": "twilio", "base_url": "https://api.twilio.com", "account": "AC1", "token": "t", "from": "+1555"}),
        );
        assert_eq!(twilio.build("sms", "http://x").unwrap().channel.transport(), "twilio");
        let no_from =
            parse(json!({"transport": "twilio", "base_url": "https://api.twilio.com", "account": "AC1", "from": " "}));
        assert_eq!(field(&no_from, "sms").as_deref(), Some("from"));
        let capture = parse(json!({"transport": "capture"}));
        assert_eq!(capture.build("sms", "http://x").unwrap().channel.kind(), "sms");
        assert!(serde_json::from_value::<ChannelConfig>(json!({"transport": "carrier-pigeon"})).is_err());
        assert!(serde_json::from_value::<ChannelConfig>(json!({"transport": "capture", "extra": 1})).is_err());
    }
}
