//! Channels: the ways a rendered message leaves Nudge. Each one is a component with
//! its own configuration, health check and tests; the delivery worker only sees
//! [`Channel`].

pub mod capture;
pub mod config;
pub mod push;
pub mod sms;
pub mod smtp;
pub mod webhook;

use crate::template::Rendered;
use async_trait::async_trait;

/// One message, rendered and addressed, ready to leave.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub message_id: i64,
    /// The sender's idempotency key; emails derive their `Message-ID` from it, so a
    /// retry after an unknown outcome carries the same id.
    pub idempotency_key: String,
    /// Email address, phone number, webhook URL, or push subscription endpoint.
    pub to: String,
    /// For push: the subscription to encrypt for and send to.
    pub push: Option<push::PushTarget>,
    pub content: Rendered,
    /// Extra headers (email: `List-Unsubscribe`, ...).
    pub headers: Vec<(String, String)>,
}

/// Why a send did not succeed, and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// Try again later (4xx, timeouts, connection failures).
    Transient(String),
    /// Do not retry: the message or configuration is wrong.
    Permanent(String),
    /// The recipient does not exist or refused: suppress the address.
    Bounce(String),
}

impl SendError {
    pub fn message(&self) -> &str {
        match self {
            SendError::Transient(m) | SendError::Permanent(m) | SendError::Bounce(m) => m,
        }
    }
}

#[async_trait]
pub trait Channel: Send + Sync {
    /// `email`, `sms`, `webhook`, `push`.
    fn kind(&self) -> &'static str;
    /// How this channel delivers (`smtp`, `capture`, `twilio`, ...), for health and logs.
    fn transport(&self) -> &'static str;
    /// Sends; `Ok` carries the provider's id for the message, if it gives one.
    async fn send(&self, message: &Outgoing) -> Result<Option<String>, SendError>;
    /// Whether the channel can deliver now (connects, authenticates).
    async fn health(&self) -> Result<(), String>;
    /// The capture channel keeps the whole rendered message for reading back.
    fn captures(&self) -> bool {
        false
    }
    /// Whether a successful send means the message reached its recipient (a webhook
    /// endpoint's 2xx: the message ends `delivered`), rather than a relay or provider
    /// that may still report (the message ends `sent` until a delivery receipt).
    fn confirms_delivery(&self) -> bool {
        false
    }
    /// Reads a delivery receipt the provider posted to `/hooks/{kind}/receipts`
    /// (after checking its signature). `Ok(None)`: a valid report that changes nothing
    /// (an intermediate status). `Err`: not for us, or not signed by the provider.
    fn parse_receipt(
        &self,
        _headers: &reqwest::header::HeaderMap,
        _body: &[u8],
    ) -> Result<Option<nudge_store::Receipt>, ReceiptError> {
        Err(ReceiptError::NotTaken(format!(
            "the {} channel takes no delivery receipts",
            self.kind()
        )))
    }
    /// What the admin API shows about this channel's configuration (never a
    /// provider password); `null` when there is nothing to show.
    fn describe(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// Why a posted delivery receipt was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiptError {
    /// Not signed by the provider (missing or wrong signature).
    Unauthorized(String),
    /// Signed, but not a receipt this channel understands.
    Invalid(String),
    /// The channel's transport takes no receipts (the capture channel standing in
    /// for a provider that is not configured): there is nothing to post them to.
    NotTaken(String),
}

/// Classifies an HTTP status from a provider API.
pub(crate) fn http_error(status: u16, body: &str) -> SendError {
    let text = format!("HTTP {status}: {}", body.chars().take(300).collect::<String>());
    match status {
        408 | 425 | 429 | 500..=599 => SendError::Transient(text),
        _ => SendError::Permanent(text),
    }
}
