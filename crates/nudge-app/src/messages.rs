//! Sending a message, finding its recipient, bounces and suppressions.

use crate::{App, AppError, Result};
use nudge_core::Contact;
use nudge_core::protocol::MessageEvent;
use nudge_store::{ContactImport, Lookup, Message, MessageState, MessageUpdate, NewMessage, Suppression, Template};
use serde_json::{Value, json};

/// Whom a message (or a subscription, or an API-started run) is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    ContactId(i64),
    UserId(String),
    /// An address Nudge may not know yet: [`App::find_or_create_recipient`] creates
    /// the contact.
    Email(String),
}

/// A template by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRef {
    Id(i64),
    Name(String),
}

/// "Send template T to contact C", as `POST /api/v1/messages` says it.
#[derive(Debug, Clone, PartialEq)]
pub struct SendMessage {
    pub template: TemplateRef,
    pub to: Recipient,
    /// Free data for the template (`{{ data.x }}`); an object.
    pub data: Value,
    /// The event the message is about (`{{ event.x }}`); an object.
    pub event: Value,
    /// The caller's key; `None` draws a fresh one. A key already used returns the
    /// message stored the first time.
    pub idempotency_key: Option<String>,
    /// Overrides the template's own setting.
    pub transactional: Option<bool>,
}

/// A message enqueued, or the one enqueued earlier with the same key (`created`
/// false).
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub message: Message,
    pub created: bool,
}

/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Checks a caller's idempotency key (1 to 255 characters).
pub fn check_idempotency_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(AppError::invalid_field(
            "idempotency_key",
            "idempotency_key must be 1 to 255 characters",
        ));
    }
    Ok(())
}

/// 128 random bits in hex, for keys the caller did not give.
pub fn random_key() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// How a provider reported a bounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceKind {
    Hard,
    Soft,
    Complaint,
}

impl BounceKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hard" => Some(Self::Hard),
            "soft" => Some(Self::Soft),
            "complaint" => Some(Self::Complaint),
            _ => None,
        }
    }
    /// The suppression reason it records.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Hard => "hard_bounce",
            Self::Soft => "soft_bounce",
            Self::Complaint => "complaint",
        }
    }
}

/// A provider's bounce or complaint, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    pub channel: String,
    pub address: String,
    pub kind: BounceKind,
    /// The message that bounced, if the provider names it.
    pub message_id: Option<i64>,
    /// The provider's words; defaults to the kind's reason.
    pub detail: Option<String>,
}

/// What a bounce changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceOutcome {
    pub channel: String,
    /// Lower-cased.
    pub address: String,
    pub suppressed: bool,
    pub reason: &'static str,
}

/// Checks a channel name of a suppression or bounce.
pub fn check_channel(channel: &str) -> Result<()> {
    if !nudge_core::contact::CHANNELS.contains(&channel) {
        return Err(AppError::invalid_field(
            "channel",
            format!("channel must be one of {:?}", nudge_core::contact::CHANNELS),
        ));
    }
    Ok(())
}

impl App {
    /// The contact `to` names, if it exists.
    pub async fn find_recipient(&self, to: &Recipient) -> Result<Option<Contact>> {
        Ok(match to {
            Recipient::ContactId(id) => self.store.contact(*id).await?,
            Recipient::UserId(u) => self.store.find_contact(&Lookup::UserId(u.clone())).await?,
            Recipient::Email(e) => self.store.find_contact(&Lookup::Email(e.clone())).await?,
        })
    }

    /// Like [`App::find_recipient`], but an email address Nudge does not know yet
    /// creates the contact (a transactional send or a sign-up names people by
    /// address). Errors name the input `to`.
    pub async fn find_or_create_recipient(&self, to: &Recipient) -> Result<Contact> {
        if let Some(c) = self.find_recipient(to).await? {
            return Ok(c);
        }
        let Recipient::Email(raw) = to else {
            return Err(AppError::not_found_field("to", "no such contact"));
        };
        let raw = Value::String(raw.clone());
        let email = nudge_core::contact::normalize_email(&raw)
            .ok_or_else(|| AppError::invalid_field("to.email", format!("to.email {raw} is not an email address")))?;
        let row = ContactImport {
            user_id: None,
            email: Some(email.clone()),
            ..Default::default()
        };
        self.store.import_contacts(vec![row], self.clock.now()).await?;
        self.store
            .find_contact(&Lookup::Email(email))
            .await?
            .ok_or_else(|| AppError::internal("a created contact vanished"))
    }

    /// A template by id or name (`field` names the input on failure).
    pub async fn template(&self, t: &TemplateRef) -> Result<Template> {
        match t {
            TemplateRef::Id(id) => self.store.template(*id).await?,
            TemplateRef::Name(name) => self.store.template_by_name(name).await?,
        }
        .ok_or_else(|| AppError::not_found_field("template", "no such template"))
    }

    /// Sends a template to a contact, idempotently: the current version of the
    /// template is enqueued for the recipient (created for a new email) under the
    /// caller's key or a fresh one, and the delivery worker is woken.
    pub async fn send_message(&self, req: SendMessage) -> Result<Enqueued> {
        let messaging = self.messaging()?;
        let template = self.template(&req.template).await?;
        if messaging.channel(&template.channel).is_none() {
            return Err(AppError::ChannelNotConfigured(format!(
                "no {} channel is configured on this server",
                template.channel
            )));
        }
        let key = match req.idempotency_key {
            Some(k) => {
                check_idempotency_key(&k)?;
                k
            }
            None => format!("api-{}", random_key()),
        };
        let transactional = req.transactional.unwrap_or(template.transactional);
        let contact = self.find_or_create_recipient(&req.to).await?;
        let (message, created) = self
            .store
            .enqueue_message(
                NewMessage {
                    idempotency_key: key,
                    contact_id: contact.id,
                    template_id: template.id,
                    template_version: template.version,
                    channel: template.channel.clone(),
                    transactional,
                    data: json!({"data": req.data, "event": req.event}),
                    origin: None,
                },
                self.clock.now(),
            )
            .await?;
        if created {
            messaging.wake();
            self.contacts_changed();
        }
        Ok(Enqueued { message, created })
    }

    /// Suppresses an address on a channel (lower-cased); `reason` defaults to
    /// `manual`.
    pub async fn add_suppression(&self, channel: &str, address: &str, reason: Option<String>) -> Result<Suppression> {
        check_channel(channel)?;
        let s = Suppression {
            channel: channel.to_string(),
            address: address.trim().to_ascii_lowercase(),
            reason: reason.unwrap_or_else(|| "manual".into()),
            created_at: self.clock.now(),
        };
        self.store.add_suppression(s.clone()).await?;
        Ok(s)
    }

    /// Deletes a template, unless an unfinished campaign sends it (a conflict naming
    /// the campaign); [`AppError::NotFound`] when there is none.
    pub async fn delete_template(&self, id: i64) -> Result<()> {
        self.refuse_if_campaign_uses(crate::campaigns::CampaignUse::Template(id))
            .await?;
        if self.store.delete_template(id).await? {
            Ok(())
        } else {
            Err(AppError::not_found(format!("no template {id}")))
        }
    }

    /// Lifts a suppression; [`AppError::NotFound`] when there is none.
    pub async fn remove_suppression(&self, channel: &str, address: &str) -> Result<()> {
        if self.store.remove_suppression(channel, address).await? {
            Ok(())
        } else {
            Err(AppError::not_found(format!("{address} is not suppressed on {channel}")))
        }
    }

    /// The suppressions, of one channel or all.
    pub async fn suppressions(&self, channel: Option<&str>) -> Result<Vec<Suppression>> {
        Ok(self.store.suppressions(channel).await?)
    }

    /// A bounce or complaint: hard bounces and complaints suppress the address; a
    /// named message (which must exist and have gone to this address; checked before
    /// anything changes) is marked bounced by a hard bounce, and gets its `Email
    /// Marked as Spam` event (counted as a complaint) by a complaint. Soft bounces
    /// change nothing.
    pub async fn bounce(&self, b: Bounce) -> Result<BounceOutcome> {
        check_channel(&b.channel)?;
        let address = b.address.trim().to_string();
        let reason = b.kind.reason();
        let detail = b.detail.unwrap_or_else(|| reason.into());
        let now = self.clock.now();
        let suppressed = b.kind != BounceKind::Soft;
        let message = match b.message_id {
            None => None,
            Some(id) => {
                let m = self
                    .store
                    .message(id)
                    .await?
                    .ok_or_else(|| AppError::not_found(format!("no message {id}")))?;
                if !m.recipient.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(&address)) {
                    return Err(AppError::invalid_field(
                        "message_id",
                        format!("message {id} was not sent to {address}"),
                    ));
                }
                Some(m)
            }
        };
        if suppressed {
            self.store
                .add_suppression(Suppression {
                    channel: b.channel.clone(),
                    address: address.to_ascii_lowercase(),
                    reason: reason.into(),
                    created_at: now,
                })
                .await?;
            if let Some(m) = message.as_ref().filter(|_| b.kind == BounceKind::Complaint) {
                // The message was delivered: a complaint is counted as one, not as a
                // bounce.
                self.store
                    .record_message_event(m.id, &MessageEvent::Complained, format!("complaint-{}", m.id), now)
                    .await?;
            } else if let Some(m) = message {
                self.store
                    .update_messages(
                        vec![MessageUpdate {
                            id: m.id,
                            state: MessageState::Bounced,
                            retry_at: None,
                            recipient: None,
                            error: Some(detail),
                            rendered: None,
                            suppress: None,
                            provider_id: None,
                        }],
                        now,
                    )
                    .await?;
            }
        }
        Ok(BounceOutcome {
            channel: b.channel,
            address: address.to_ascii_lowercase(),
            suppressed,
            reason,
        })
    }
}
