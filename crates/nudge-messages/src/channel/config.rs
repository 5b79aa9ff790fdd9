//! Channel configuration as data: what `NUDGE_SMTP_URL` / `NUDGE_SMS_*` say at start,
//! or what an administrator stores through `PUT /api/v1/channels/{kind}` or the web
//! UI's channel settings (kept in the database under [`setting_key`], applied without
//! a restart). [`ChannelConfig::build`] turns it into a ready [`ChannelSlot`].
//! [`SmtpServer`] and [`sender`] write an SMTP URL and a sender from the parts a form
//! asks for, and read them back.

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

/// The settings key under which the stored configuration of `kind` is kept
/// (`channel:email`); read at start, written by the application layer.
pub fn setting_key(kind: &str) -> String {
    format!("channel:{kind}")
}

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

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (a relay on the same machine or a private network).
    None,
    /// STARTTLS when the server offers it, plain text otherwise.
    Opportunistic,
    /// STARTTLS, refusing a server that does not offer it (usually port 587).
    StartTls,
    /// TLS from the first byte, `smtps://` (usually port 465).
    Implicit,
}

impl SmtpTls {
    pub const ALL: [SmtpTls; 4] = [
        SmtpTls::StartTls,
        SmtpTls::Implicit,
        SmtpTls::Opportunistic,
        SmtpTls::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::Opportunistic => "opportunistic",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Implicit => "tls",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// An SMTP server by the parts a form asks for. [`SmtpServer::url`] writes the URL
/// [`ChannelConfig::Smtp`] holds (user and password percent-encoded);
/// [`SmtpServer::from_url`] reads one back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Empty: no authentication.
    pub user: String,
    pub password: String,
}

/// Percent-encodes every byte but letters, digits and `-._*`, so both URL readers
/// (our pool's and lettre's) decode it alike.
fn encode_userinfo(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Decodes a user or password as the SMTP pool does.
fn decode_userinfo(s: &str) -> String {
    url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, _)| k.into_owned())
        .collect()
}

impl SmtpServer {
    /// Checks the parts; the error names `host`, `port` or `user`.
    pub fn check(&self) -> Result<(), ConfigError> {
        let err = |field: &str, message: &str| ConfigError {
            field: field.into(),
            message: message.into(),
        };
        let host = self.host.trim();
        if host.is_empty() {
            return Err(err("host", "is required"));
        }
        let bracketed_ipv6 = host.starts_with('[') && host.ends_with(']');
        if !bracketed_ipv6 && !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
            return Err(err(
                "host",
                "must be a host name or an IP address (letters, digits, dots and dashes; an IPv6 address in brackets)",
            ));
        }
        if self.port == 0 {
            return Err(err("port", "must be between 1 and 65535"));
        }
        if self.user.chars().any(char::is_control) {
            return Err(err("user", "must not contain control characters"));
        }
        Ok(())
    }

    /// `smtp://user:pass@host:587?tls=required`, `smtps://host:465`, ...
    pub fn url(&self) -> String {
        let scheme = if self.tls == SmtpTls::Implicit { "smtps" } else { "smtp" };
        let userinfo = if self.user.is_empty() {
            String::new()
        } else if self.password.is_empty() {
            format!("{}@", encode_userinfo(&self.user))
        } else {
            format!("{}:{}@", encode_userinfo(&self.user), encode_userinfo(&self.password))
        };
        let query = match self.tls {
            SmtpTls::None | SmtpTls::Implicit => "",
            SmtpTls::Opportunistic => "?tls=opportunistic",
            SmtpTls::StartTls => "?tls=required",
        };
        format!("{scheme}://{userinfo}{}:{}{query}", self.host.trim(), self.port)
    }

    /// The parts of an SMTP URL; `None` if it is not one.
    pub fn from_url(raw: &str) -> Option<Self> {
        let url = url::Url::parse(raw).ok()?;
        let implicit = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            _ => return None,
        };
        let mode = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let tls = match (implicit, mode.as_deref()) {
            (true, _) => SmtpTls::Implicit,
            (false, Some("required")) => SmtpTls::StartTls,
            (false, Some("opportunistic")) => SmtpTls::Opportunistic,
            (false, _) => SmtpTls::None,
        };
        Some(SmtpServer {
            host: url.host_str()?.to_string(),
            port: url.port().unwrap_or(if implicit { 465 } else { 25 }),
            tls,
            user: decode_userinfo(url.username()),
            password: decode_userinfo(url.password().unwrap_or("")),
        })
    }
}

/// A sender, `Name <address>` (the name quoted where it needs to be), from its name
/// (may be empty) and address; the error names `from_address` or `from_name`.
pub fn sender(name: &str, address: &str) -> Result<String, ConfigError> {
    let address: lettre::Address = address.trim().parse().map_err(|e| ConfigError {
        field: "from_address".into(),
        message: format!("{:?} is not an email address: {e}", address.trim()),
    })?;
    let name = name.trim();
    if name.chars().any(char::is_control) {
        return Err(ConfigError {
            field: "from_name".into(),
            message: "must be one line of text".into(),
        });
    }
    let mailbox = lettre::message::Mailbox::new((!name.is_empty()).then(|| name.to_string()), address);
    Ok(mailbox.to_string())
}

/// The name and address of a sender written `Name <address>` (or a bare address).
pub fn sender_parts(from: &str) -> (String, String) {
    match from.parse::<lettre::message::Mailbox>() {
        Ok(m) => (m.name.unwrap_or_default(), m.email.to_string()),
        Err(_) => (String::new(), from.trim().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smtp_urls_are_written_from_parts_and_read_back() {
        let server = SmtpServer {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            user: "apikey user".into(),
            password: "p@ss:w/rd+%é".into(),
        };
        let url = server.url();
        assert_eq!(
            url,
            "smtp://apikey%20user:p%40ss%3Aw%2Frd%2B%25%C3%A9@smtp.example.com:587?tls=required"
        );
        assert_eq!(SmtpServer::from_url(&url), Some(server.clone()));
        // The pool reads what the form wrote.
        let config = ChannelConfig::Smtp {
            url: url.clone(),
            from: "a@b.c".into(),
            pool: None,
            rate: None,
            dkim: None,
        };
        assert!(config.build("email", "http://x").is_ok());
        for tls in SmtpTls::ALL {
            let s = SmtpServer {
                tls,
                user: String::new(),
                password: String::new(),
                ..server.clone()
            };
            assert_eq!(SmtpServer::from_url(&s.url()), Some(s.clone()), "{tls:?}");
            assert_eq!(SmtpTls::parse(tls.as_str()), Some(tls));
        }
        assert_eq!(
            SmtpServer::from_url("smtp://h").map(|s| (s.port, s.tls)),
            Some((25, SmtpTls::None))
        );
        assert_eq!(SmtpServer::from_url("http://h"), None);
        let field = |s: SmtpServer| s.check().err().map(|e| e.field);
        assert_eq!(field(server.clone()), None);
        let bad_host = SmtpServer {
            host: "smtp.example.com/x".into(),
            ..server.clone()
        };
        assert_eq!(field(bad_host).as_deref(), Some("host"));
        let no_host = SmtpServer {
            host: " ".into(),
            ..server.clone()
        };
        assert_eq!(field(no_host).as_deref(), Some("host"));
        assert_eq!(field(SmtpServer { port: 0, ..server }).as_deref(), Some("port"));
    }

    #[test]
    fn senders_are_written_from_a_name_and_an_address() {
        assert_eq!(sender("", "shop@example.com").unwrap(), "shop@example.com");
        let quoted = sender("Shop, \"the\" best", "shop@example.com").unwrap();
        assert_eq!(
            sender_parts(&quoted),
            ("Shop, \"the\" best".into(), "shop@example.com".into())
        );
        let persian = sender("فروشگاه", "shop@example.com").unwrap();
        assert_eq!(sender_parts(&persian), ("فروشگاه".into(), "shop@example.com".into()));
        assert!(persian.parse::<lettre::message::Mailbox>().is_ok());
        assert_eq!(sender("Shop", "nobody").unwrap_err().field, "from_address");
        assert_eq!(sender("Shop\nBcc: x", "a@b.c").unwrap_err().field, "from_name");
    }

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
