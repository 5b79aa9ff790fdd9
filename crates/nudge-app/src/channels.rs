//! Channels: how e-mail and SMS leave (the start-up settings, or a configuration
//! stored in the database that wins over them), their health, and test sends.
//!
//! A configuration comes whole from the admin API ([`App::configure_channel`], a
//! [`ChannelConfig`]) or by parts from the web UI's settings form
//! ([`App::configure_channel_settings`], where a secret left empty keeps the stored
//! one). Either is checked, stored under [`config::setting_key`] and used for every
//! message claimed from then on.
//!
//! A **test send** is one real message through the live channel to an address
//! someone types, outside the outbox: it needs no contact and no template version,
//! creates neither, is not a row of the message log and puts nothing on a timeline
//! (the message model needs both a contact and a template). Its outcome — the
//! server's answer or the reason it was refused — is returned to the caller and
//! written to the server log. It is not tracked (no open pixel, no rewritten links,
//! no unsubscribe footer); a suppressed address is refused.

use crate::messages::random_key;
use crate::templates::PreviewAs;
use crate::{App, AppError, Result};
use nudge_messages::channel::config::{self, ChannelConfig, ConfigError, DkimConfig, SmtpServer, SmtpTls};
use nudge_messages::channel::{Channel, Outgoing, SendError};
use nudge_messages::template::{Content, Rendered};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Where a channel's configuration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelSource {
    /// The server's start-up settings (`NUDGE_SMTP_URL`, ...), or none: capture.
    Settings,
    /// A configuration stored in the database (through the API or the UI).
    Stored,
}

impl ChannelSource {
    /// As the admin API names it: `settings` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelSource::Settings => "settings",
            ChannelSource::Stored => "api",
        }
    }
}

/// A channel as it is now.
#[derive(Debug, Clone)]
pub struct ChannelStatus {
    /// `email`, `sms`, `webhook`, `push`.
    pub kind: &'static str,
    /// `smtp`, `twilio`, `capture`, `webhook`, `webpush`.
    pub transport: &'static str,
    /// The health check's answer.
    pub health: std::result::Result<(), String>,
    /// What the channel shows of its configuration, never a password
    /// (`Channel::describe`): `null` when there is nothing to show.
    pub settings: Value,
    pub source: ChannelSource,
}

async fn status_of(channel: Arc<dyn Channel>, source: ChannelSource, wait: Option<Duration>) -> ChannelStatus {
    let health = match wait {
        None => channel.health().await,
        Some(w) => match tokio::time::timeout(w, channel.health()).await {
            Ok(h) => h,
            Err(_) => Err(format!("no answer within {} s", w.as_secs_f64())),
        },
    };
    ChannelStatus {
        kind: channel.kind(),
        transport: channel.transport(),
        health,
        settings: channel.describe(),
        source,
    }
}

/// E-mail over SMTP as a settings form gives it: the server by its parts, the sender
/// by name and address. A secret left `None` keeps the one stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Empty: no authentication.
    pub user: String,
    /// `None`: keep the stored password (none if nothing is stored).
    pub password: Option<String>,
    pub from_name: String,
    pub from_address: String,
    /// Connections (and messages in flight); default 8.
    pub pool: Option<u32>,
    /// Messages per second at most; default unlimited.
    pub rate: Option<f64>,
    pub dkim: Option<DkimSettings>,
}

/// DKIM signing as a form gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct DkimSettings {
    pub selector: String,
    pub domain: String,
    /// PKCS#1 PEM; `None`: keep the stored key.
    pub private_key: Option<String>,
}

/// SMS through a Twilio-compatible API as a settings form gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct TwilioSettings {
    pub base_url: String,
    pub account: String,
    /// `None`: keep the stored token (none if nothing is stored).
    pub token: Option<String>,
    /// The sender number.
    pub from: String,
}

/// A channel's configuration as a settings form gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelSettings {
    Smtp(SmtpSettings),
    Twilio(TwilioSettings),
    /// Keep messages, send nothing.
    Capture,
}

impl ChannelSettings {
    /// The configuration these settings describe, with the secrets left empty taken
    /// from `stored`. Errors name the form's fields (see
    /// [`App::configure_channel_settings`]).
    pub fn config(self, stored: Option<&ChannelConfig>) -> std::result::Result<ChannelConfig, ConfigError> {
        let required = |field: &str| ConfigError {
            field: field.into(),
            message: "is required".into(),
        };
        Ok(match self {
            ChannelSettings::Capture => ChannelConfig::Capture {},
            ChannelSettings::Smtp(s) => {
                let (stored_password, stored_dkim) = match stored {
                    Some(ChannelConfig::Smtp { url, dkim, .. }) => (
                        SmtpServer::from_url(url).map(|s| s.password).unwrap_or_default(),
                        dkim.as_ref().map(|d| d.private_key.clone()),
                    ),
                    _ => (String::new(), None),
                };
                let server = SmtpServer {
                    host: s.host.trim().to_string(),
                    port: s.port,
                    tls: s.tls,
                    user: s.user.trim().to_string(),
                    password: s.password.unwrap_or(stored_password),
                };
                server.check()?;
                let dkim = match s.dkim {
                    None => None,
                    Some(d) => {
                        if d.selector.trim().is_empty() {
                            return Err(required("dkim_selector"));
                        }
                        if d.domain.trim().is_empty() {
                            return Err(required("dkim_domain"));
                        }
                        let private_key = d
                            .private_key
                            .filter(|k| !k.trim().is_empty())
                            .or(stored_dkim)
                            .ok_or_else(|| required("dkim_key"))?;
                        Some(DkimConfig {
                            selector: d.selector.trim().to_string(),
                            domain: d.domain.trim().to_string(),
                            private_key,
                        })
                    }
                };
                ChannelConfig::Smtp {
                    url: server.url(),
                    from: config::sender(&s.from_name, &s.from_address)?,
                    pool: s.pool,
                    rate: s.rate,
                    dkim,
                }
            }
            ChannelSettings::Twilio(t) => {
                let stored_token = match stored {
                    Some(ChannelConfig::Twilio { token, .. }) => token.clone(),
                    _ => String::new(),
                };
                ChannelConfig::Twilio {
                    base_url: t.base_url.trim().to_string(),
                    account: t.account.trim().to_string(),
                    token: t.token.unwrap_or(stored_token),
                    from: t.from.trim().to_string(),
                    concurrency: None,
                    rate: None,
                }
            }
        })
    }
}

/// The form field a [`ChannelConfig::build`] error is about, for a configuration
/// made from [`ChannelSettings`].
fn form_field(config: &ChannelConfig, field: &str) -> String {
    match (config, field) {
        (ChannelConfig::Smtp { .. }, "url") => "host".into(),
        (ChannelConfig::Smtp { .. }, "from") => "from_address".into(),
        (_, "dkim.private_key") => "dkim_key".into(),
        (_, f) => f.into(),
    }
}

/// What a channel test says, in the reader's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestText {
    /// The e-mail's subject.
    pub subject: String,
    /// The e-mail's or SMS's text.
    pub body: String,
}

/// A template test: draft or stored content, rendered as a contact or with sample
/// data, sent to an address.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateTest {
    pub content: Content,
    pub render_as: PreviewAs,
    /// The e-mail address or phone number; unused for a webhook, which goes to the
    /// template's URL.
    pub to: String,
}

/// The subject of a template test starts with this.
pub const TEST_SUBJECT_PREFIX: &str = "[Test] ";

/// How long a test send may take before it is reported as unanswered.
pub const TEST_WAIT: Duration = Duration::from_secs(30);

/// What one test send did.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    pub kind: String,
    pub transport: &'static str,
    /// The address, number or URL it went to.
    pub to: String,
    /// The channel's answer: `Ok` with what the server or provider said (the SMTP
    /// reply, an SMS id), or why it did not take the message.
    pub result: std::result::Result<Option<String>, SendError>,
}

impl TestOutcome {
    /// The channel keeps messages instead of sending them: nothing left the server.
    pub fn captured(&self) -> bool {
        self.transport == "capture"
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The address a test of `kind` goes to, normalised; errors name `to`.
fn test_address(kind: &str, to: &str) -> Result<String> {
    let raw = Value::String(to.trim().to_string());
    let (address, what) = match kind {
        "email" => (nudge_core::contact::normalize_email(&raw), "an e-mail address"),
        "sms" => (
            nudge_core::contact::normalize_phone(&raw),
            "a phone number (+ and digits)",
        ),
        other => {
            return Err(AppError::invalid_field(
                "to",
                format!(
                    "a {other} message has no address to type; test sends go to e-mail addresses and phone numbers"
                ),
            ));
        }
    };
    match address {
        Some(a) => Ok(a),
        None if to.trim().is_empty() => Err(AppError::missing("to", format!("{what} is required"))),
        None => Err(AppError::invalid_field("to", format!("{:?} is not {what}", to.trim()))),
    }
}

impl App {
    /// Every channel with a health check (each bounded by `wait`, when given).
    /// Empty where messaging is off.
    pub async fn channels(&self, wait: Option<Duration>) -> Result<Vec<ChannelStatus>> {
        let Some(m) = &self.messaging else {
            return Ok(Vec::new());
        };
        let mut all = Vec::new();
        for c in m.channels() {
            let source = if m.is_default(c.kind()) {
                ChannelSource::Settings
            } else {
                ChannelSource::Stored
            };
            all.push(status_of(c, source, wait).await);
        }
        Ok(all)
    }

    /// The configuration stored for `kind`, if any (one that no longer reads is
    /// reported in the log and treated as none).
    pub async fn stored_channel(&self, kind: &str) -> Result<Option<ChannelConfig>> {
        let Some(raw) = self.store.setting(&config::setting_key(kind)).await? else {
            return Ok(None);
        };
        match serde_json::from_str(&raw) {
            Ok(c) => Ok(Some(c)),
            Err(e) => {
                tracing::warn!(kind, error = %e, "the stored channel configuration does not read");
                Ok(None)
            }
        }
    }

    /// Configures how `email` or `sms` is delivered: checked (errors name the
    /// configuration's field: `url`, `from`, `dkim.private_key`, ...), stored (it
    /// survives restarts and wins over the start-up settings) and used at once. The
    /// answer carries a live health check; an unreachable server is stored anyway.
    pub async fn configure_channel(
        &self,
        kind: &str,
        config: ChannelConfig,
        wait: Option<Duration>,
    ) -> Result<ChannelStatus> {
        let messaging = self.messaging()?;
        let slot = config
            .build(kind, messaging.public_url())
            .map_err(|e| AppError::invalid_field(e.field, e.message))?;
        self.use_channel(kind, &config, slot, wait).await
    }

    /// Like [`App::configure_channel`], from a settings form's parts; a password,
    /// token or DKIM key left empty keeps the stored one. Errors name the form's
    /// fields: `host`, `port`, `user`, `from_name`, `from_address`, `pool`, `rate`,
    /// `dkim_selector`, `dkim_domain`, `dkim_key` (SMTP); `base_url`, `account`,
    /// `from` (SMS); `transport`, `kind`.
    pub async fn configure_channel_settings(
        &self,
        kind: &str,
        settings: ChannelSettings,
        wait: Option<Duration>,
    ) -> Result<ChannelStatus> {
        let messaging = self.messaging()?;
        let stored = self.stored_channel(kind).await?;
        let config = settings
            .config(stored.as_ref())
            .map_err(|e| AppError::invalid_field(e.field, e.message))?;
        let slot = config
            .build(kind, messaging.public_url())
            .map_err(|e| AppError::invalid_field(form_field(&config, &e.field), e.message))?;
        self.use_channel(kind, &config, slot, wait).await
    }

    async fn use_channel(
        &self,
        kind: &str,
        config: &ChannelConfig,
        slot: nudge_messages::delivery::ChannelSlot,
        wait: Option<Duration>,
    ) -> Result<ChannelStatus> {
        let messaging = self.messaging()?;
        let stored = serde_json::to_string(config).map_err(AppError::internal)?;
        self.store
            .put_setting(&config::setting_key(kind), Some(&stored))
            .await?;
        let channel = slot.channel.clone();
        messaging.set_stored_channel(&stored, slot);
        messaging.wake();
        tracing::info!(kind, transport = channel.transport(), "channel configured");
        Ok(status_of(channel, ChannelSource::Stored, wait).await)
    }

    /// Forgets the stored configuration of `kind` and goes back to the start-up
    /// settings.
    pub async fn reset_channel(&self, kind: &str, wait: Option<Duration>) -> Result<ChannelStatus> {
        let messaging = self.messaging()?;
        if !config::CONFIGURABLE.contains(&kind) {
            return Err(AppError::not_found(format!("no configurable {kind} channel")));
        }
        self.store.put_setting(&config::setting_key(kind), None).await?;
        messaging.reset_channel(kind);
        let channel = messaging
            .channel(kind)
            .ok_or_else(|| AppError::not_found(format!("no {kind} channel")))?;
        tracing::info!(
            kind,
            transport = channel.transport(),
            "channel back to the start-up settings"
        );
        Ok(status_of(channel, ChannelSource::Settings, wait).await)
    }

    /// Sends one test message through the `email` or `sms` channel to `to` (see the
    /// module's documentation): `text` is the message.
    pub async fn send_channel_test(&self, kind: &str, to: &str, text: &TestText) -> Result<TestOutcome> {
        let to = test_address(kind, to)?;
        let content = match kind {
            "email" => Rendered::Email {
                subject: text.subject.clone(),
                from: None,
                reply_to: None,
                html: format!("<p>{}</p>", escape_html(&text.body)),
                text: text.body.clone(),
            },
            _ => Rendered::Sms {
                body: text.body.clone(),
            },
        };
        self.send_test(kind, to, content).await
    }

    /// Renders content (a template's draft or stored version) as a contact or with
    /// sample data, as the preview does, and sends it once to an address through its
    /// channel (see the module's documentation). An e-mail's subject starts with
    /// [`TEST_SUBJECT_PREFIX`]; an SMS is sent as rendered; a webhook goes to its
    /// rendered URL. Push is refused: a browser subscription is not an address one
    /// types. Errors name `to`, `render_as` or `content`.
    pub async fn send_template_test(&self, test: TemplateTest) -> Result<TestOutcome> {
        let kind = test.content.channel();
        if kind == "push" {
            return Err(AppError::invalid_field(
                "to",
                "a push message goes to a contact's browsers, not to an address: send the template to a contact instead",
            ));
        }
        let to = if kind == "webhook" {
            String::new()
        } else {
            test_address(kind, &test.to)?
        };
        let preview = match self
            .preview_template(&test.content, test.render_as, json!({}), json!({}))
            .await
        {
            Ok(p) => p,
            Err(AppError::NotFound { message, .. }) => return Err(AppError::not_found_field("render_as", message)),
            Err(e) => return Err(e),
        };
        let rendered = match preview.rendered {
            Some(r) if preview.errors.is_empty() => r,
            _ => {
                let all: Vec<String> = preview.errors.iter().map(ToString::to_string).collect();
                return Err(AppError::invalid_field("content", all.join("; ")));
            }
        };
        let (to, rendered) = match rendered {
            Rendered::Email {
                subject,
                from,
                reply_to,
                html,
                text,
            } => (
                to,
                Rendered::Email {
                    subject: format!("{TEST_SUBJECT_PREFIX}{subject}"),
                    from,
                    reply_to,
                    html,
                    text,
                },
            ),
            Rendered::Webhook {
                method,
                url,
                headers,
                body,
            } => (
                url.clone(),
                Rendered::Webhook {
                    method,
                    url,
                    headers,
                    body,
                },
            ),
            other => (to, other),
        };
        self.send_test(kind, to, rendered).await
    }

    async fn send_test(&self, kind: &str, to: String, content: Rendered) -> Result<TestOutcome> {
        let messaging = self.messaging()?;
        let channel = messaging
            .channel(kind)
            .ok_or_else(|| AppError::ChannelNotConfigured(format!("no {kind} channel is configured on this server")))?;
        if matches!(kind, "email" | "sms")
            && let Some(s) = self.store.suppression(kind, &to).await?
        {
            return Err(AppError::invalid_field(
                "to",
                format!("{to} is suppressed ({}); lift the suppression to send to it", s.reason),
            ));
        }
        let outgoing = Outgoing {
            message_id: 0,
            idempotency_key: format!("test-{}", random_key()),
            to: to.clone(),
            push: None,
            content,
            headers: Vec::new(),
        };
        let result = match tokio::time::timeout(TEST_WAIT, channel.send(&outgoing)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Transient(format!(
                "no answer within {} s",
                TEST_WAIT.as_secs()
            ))),
        };
        match &result {
            Ok(answer) => {
                tracing::info!(kind, transport = channel.transport(), to, answer = ?answer, "test message accepted")
            }
            Err(e) => {
                tracing::info!(kind, transport = channel.transport(), to, error = %e.message(), "test message refused")
            }
        }
        Ok(TestOutcome {
            kind: kind.to_string(),
            transport: channel.transport(),
            to,
            result,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp() -> SmtpSettings {
        SmtpSettings {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            user: "apikey".into(),
            password: Some("secret".into()),
            from_name: "Shop".into(),
            from_address: "shop@example.com".into(),
            pool: None,
            rate: None,
            dkim: None,
        }
    }

    #[test]
    fn smtp_settings_become_a_configuration() {
        let c = ChannelSettings::Smtp(smtp()).config(None).unwrap();
        let ChannelConfig::Smtp { url, from, .. } = &c else {
            panic!("{c:?}")
        };
        assert_eq!(url, "smtp://apikey:secret@smtp.example.com:587?tls=required");
        assert_eq!(from, "Shop <shop@example.com>");
    }

    #[test]
    fn secrets_left_empty_keep_the_stored_ones() {
        let dkim = DkimSettings {
            selector: "s1".into(),
            domain: "example.com".into(),
            private_key: Some("KEY".into()),
        };
        let stored = ChannelSettings::Smtp(SmtpSettings {
            dkim: Some(dkim.clone()),
            ..smtp()
        })
        .config(None)
        .unwrap();
        let again = ChannelSettings::Smtp(SmtpSettings {
            password: None,
            host: "smtp2.example.com".into(),
            dkim: Some(DkimSettings {
                private_key: None,
                ..dkim.clone()
            }),
            ..smtp()
        })
        .config(Some(&stored))
        .unwrap();
        let ChannelConfig::Smtp { url, dkim: kept, .. } = &again else {
            panic!("{again:?}")
        };
        assert_eq!(url, "smtp://apikey:secret@smtp2.example.com:587?tls=required");
        assert_eq!(kept.as_ref().map(|d| d.private_key.as_str()), Some("KEY"));
        // Nothing stored: no password, and a DKIM key is required.
        let fresh = ChannelSettings::Smtp(SmtpSettings {
            password: None,
            ..smtp()
        })
        .config(None)
        .unwrap();
        assert!(
            matches!(&fresh, ChannelConfig::Smtp { url, .. } if url == "smtp://apikey@smtp.example.com:587?tls=required")
        );
        let no_key = ChannelSettings::Smtp(SmtpSettings {
            dkim: Some(DkimSettings {
                private_key: None,
                ..dkim
            }),
            ..smtp()
        })
        .config(None)
        .unwrap_err();
        assert_eq!(no_key.field, "dkim_key");

        let twilio = |token: Option<&str>| {
            ChannelSettings::Twilio(TwilioSettings {
                base_url: "https://api.twilio.com".into(),
                account: "AC1".into(),
                token: token.map(Into::into),
                from: "+15550100".into(),
            })
        };
        let stored = twilio(Some("T")).config(None).unwrap();
        assert!(
            matches!(twilio(None).config(Some(&stored)).unwrap(), ChannelConfig::Twilio { token, .. } if token == "T")
        );
        assert!(matches!(twilio(None).config(None).unwrap(), ChannelConfig::Twilio { token, .. } if token.is_empty()));
    }

    #[test]
    fn errors_name_the_form_fields() {
        let field = |s: SmtpSettings| ChannelSettings::Smtp(s).config(None).unwrap_err().field;
        assert_eq!(
            field(SmtpSettings {
                host: "".into(),
                ..smtp()
            }),
            "host"
        );
        assert_eq!(field(SmtpSettings { port: 0, ..smtp() }), "port");
        assert_eq!(
            field(SmtpSettings {
                from_address: "shop".into(),
                ..smtp()
            }),
            "from_address"
        );
        let c = ChannelSettings::Smtp(smtp()).config(None).unwrap();
        assert_eq!(form_field(&c, "url"), "host");
        assert_eq!(form_field(&c, "dkim.private_key"), "dkim_key");
        assert_eq!(form_field(&c, "pool"), "pool");
    }

    #[test]
    fn test_addresses_are_checked_per_channel() {
        assert_eq!(test_address("email", " Ada@Example.com ").unwrap(), "ada@example.com");
        assert_eq!(test_address("sms", "+1 (555) 010-0200").unwrap(), "+15550100200");
        for (kind, to) in [("email", "ada"), ("sms", "12"), ("push", "x"), ("email", " ")] {
            let e = test_address(kind, to).unwrap_err();
            assert!(
                matches!(&e, AppError::InvalidField { field, .. } | AppError::MissingField { field, .. } if field == "to"),
                "{kind} {to}: {e:?}"
            );
        }
    }
}
