//! Parsing and validation of Segment-compatible tracking messages.
//!
//! Everything a request carries is parsed and checked here before anything is
//! queued for storage, so a bad message anywhere in a batch rejects the whole request
//! with an error naming the field, and nothing is written.
//!
//! Follows Segment's HTTP Tracking API: message types `identify`, `track`, `page`,
//! `screen`, `group`, `alias`; batches of them; 32 KB per message, 500 KB per batch;
//! `messageId` for de-duplication; `timestamp` corrected for client clock skew with
//! `sentAt`; unknown fields are ignored.

use crate::{Millis, parse_instant};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Segment's limit on one message, in bytes of JSON.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Segment's limit on one batch request, in bytes of JSON.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Longest accepted identifier (`userId`, `anonymousId`, `messageId`, event name...).
pub const MAX_ID_CHARS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl CallKind {
    pub const ALL: [CallKind; 6] = [
        CallKind::Identify,
        CallKind::Track,
        CallKind::Page,
        CallKind::Screen,
        CallKind::Group,
        CallKind::Alias,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Identify => "identify",
            CallKind::Track => "track",
            CallKind::Page => "page",
            CallKind::Screen => "screen",
            CallKind::Group => "group",
            CallKind::Alias => "alias",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One validated tracking message, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub kind: CallKind,
    pub message_id: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// `track`: the event name.
    pub event: Option<String>,
    /// `page` / `screen`: the page or screen name.
    pub name: Option<String>,
    /// `alias`: the identifier being merged into `user_id`.
    pub previous_id: Option<String>,
    /// `group`: the account the contact belongs to.
    pub group_id: Option<String>,
    /// `track`, `page`, `screen`.
    pub properties: Map<String, Value>,
    /// `identify`, `group`.
    pub traits: Map<String, Value>,
    pub context: Map<String, Value>,
    pub integrations: Map<String, Value>,
    /// When the message happened, corrected for client clock skew.
    pub timestamp: Millis,
    /// The timestamp the client sent, before correction.
    pub original_timestamp: Option<Millis>,
    pub sent_at: Option<Millis>,
    pub received_at: Millis,
}

impl Call {
    /// A message produced by Nudge itself (demo data, benchmarks, generated events)
    /// rather than parsed from a request: no properties, traits or context yet.
    pub fn generated(kind: CallKind, message_id: String, user_id: Option<String>, at: Millis) -> Self {
        Call {
            kind,
            message_id,
            user_id,
            anonymous_id: None,
            event: None,
            name: None,
            previous_id: None,
            group_id: None,
            properties: Map::new(),
            traits: Map::new(),
            context: Map::new(),
            integrations: Map::new(),
            timestamp: at,
            original_timestamp: Some(at),
            sent_at: None,
            received_at: at,
        }
    }

    /// The name a timeline shows for this message: the event name for `track`, the
    /// page/screen name for `page`/`screen`, otherwise none.
    pub fn display_name(&self) -> Option<&str> {
        self.event.as_deref().or(self.name.as_deref())
    }
}

/// What the server knows about a request, passed in so parsing stays pure.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Millis,
    /// The client address, recorded as `context.ip` when the message has none.
    pub ip: Option<String>,
}

/// Why a request was rejected. `field` is a JSON path into the request body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("{field}: is required")]
    MissingField { field: String },
    #[error("{field}: message is {size} bytes, over the limit of {limit} bytes")]
    MessageTooLarge { field: String, size: usize, limit: usize },
    #[error("batch is {size} bytes, over the limit of {limit} bytes")]
    BatchTooLarge { size: usize, limit: usize },
}

impl ParseError {
    /// The stable error code of the API's error table.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::MalformedJson(_) => "malformed_json",
            ParseError::InvalidField { .. } => "invalid_field",
            ParseError::MissingField { .. } => "missing_field",
            ParseError::MessageTooLarge { .. } => "message_too_large",
            ParseError::BatchTooLarge { .. } => "batch_too_large",
        }
    }
    pub fn field(&self) -> Option<&str> {
        match self {
            ParseError::MalformedJson(_) | ParseError::BatchTooLarge { .. } => None,
            ParseError::InvalidField { field, .. }
            | ParseError::MissingField { field }
            | ParseError::MessageTooLarge { field, .. } => Some(field),
        }
    }
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ParseError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A parsed request: its messages and the write key given in the body, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub messages: Vec<Call>,
    pub write_key: Option<String>,
}

/// Parses the body of a single-message endpoint (`/v1/identify`, `/v1/track`, ...).
pub fn parse_single(
    kind: CallKind,
    body: &[u8],
    received: &Received,
    new_id: &mut dyn FnMut() -> String,
) -> Result<Parsed, ParseError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::MessageTooLarge {
            field: "$".into(),
            size: body.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| ParseError::MalformedJson(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(ParseError::invalid("$", "must be a JSON object"));
    };
    let write_key = opt_string(&obj, "writeKey", "writeKey")?;
    let msg = parse_object(kind, &obj, "", &Map::new(), None, received, new_id)?;
    Ok(Parsed {
        messages: vec![msg],
        write_key,
    })
}

/// Parses the body of `/v1/batch` (and `/v1/import`): `{"batch": [...], "context":
/// {...}, "integrations": {...}, "sentAt": "..."}`. Batch-level `context` and
/// `integrations` are defaults for every message; the message's own keys win.
pub fn parse_batch(body: &[u8], received: &Received, new_id: &mut dyn FnMut() -> String) -> Result<Parsed, ParseError> {
    if body.len() > MAX_BATCH_BYTES {
        return Err(ParseError::BatchTooLarge {
            size: body.len(),
            limit: MAX_BATCH_BYTES,
        });
    }
    #[derive(serde::Deserialize)]
    struct RawBatch<'a> {
        #[serde(borrow, default)]
        batch: Option<Vec<&'a RawValue>>,
        #[serde(flatten)]
        rest: Map<String, Value>,
    }
    let raw: RawBatch = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ParseError::invalid("batch", format!("must be an array of message objects ({e})"))
        } else {
            ParseError::MalformedJson(e.to_string())
        }
    })?;
    let items = raw
        .batch
        .ok_or_else(|| ParseError::MissingField { field: "batch".into() })?;
    let write_key = opt_string(&raw.rest, "writeKey", "writeKey")?;
    let defaults_context = opt_object(&raw.rest, "context", "context")?.unwrap_or_default();
    let defaults_integrations = opt_object(&raw.rest, "integrations", "integrations")?.unwrap_or_default();
    let batch_sent_at = opt_instant(&raw.rest, "sentAt", "sentAt")?;
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("batch[{i}]");
        let size = item.get().len();
        if size > MAX_MESSAGE_BYTES {
            return Err(ParseError::MessageTooLarge {
                field: path,
                size,
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let Value::Object(mut obj) =
            serde_json::from_str::<Value>(item.get()).map_err(|e| ParseError::invalid(path.clone(), e.to_string()))?
        else {
            return Err(ParseError::invalid(path, "must be a JSON object"));
        };
        let type_path = format!("{path}.type");
        let kind = match obj.get("type") {
            None | Some(Value::Null) => return Err(ParseError::MissingField { field: type_path }),
            Some(Value::String(t)) => CallKind::parse(t).ok_or_else(|| {
                ParseError::invalid(
                    type_path.clone(),
                    format!("unknown message type {t:?}; expected one of identify, track, page, screen, group, alias"),
                )
            })?,
            Some(_) => return Err(ParseError::invalid(type_path, "must be a string")),
        };
        if !defaults_integrations.is_empty() && !obj.contains_key("integrations") {
            obj.insert("integrations".into(), Value::Object(defaults_integrations.clone()));
        }
        let msg = parse_object(
            kind,
            &obj,
            &format!("{path}."),
            &defaults_context,
            batch_sent_at,
            received,
            new_id,
        )?;
        messages.push(msg);
    }
    Ok(Parsed { messages, write_key })
}

fn parse_object(
    kind: CallKind,
    obj: &Map<String, Value>,
    prefix: &str,
    default_context: &Map<String, Value>,
    batch_sent_at: Option<Millis>,
    received: &Received,
    new_id: &mut dyn FnMut() -> String,
) -> Result<Call, ParseError> {
    let p = |name: &str| format!("{prefix}{name}");
    let user_id = opt_id(obj, "userId", &p("userId"))?;
    let anonymous_id = opt_id(obj, "anonymousId", &p("anonymousId"))?;
    let message_id = match opt_id(obj, "messageId", &p("messageId"))? {
        Some(id) => id,
        None => new_id(),
    };
    let mut event = None;
    let mut name = None;
    let mut previous_id = None;
    let mut group_id = None;
    match kind {
        CallKind::Track => {
            event = Some(
                opt_name(obj, "event", &p("event"))?.ok_or_else(|| ParseError::MissingField { field: p("event") })?,
            );
        }
        CallKind::Page | CallKind::Screen => {
            name = opt_name(obj, "name", &p("name"))?;
        }
        CallKind::Group => {
            group_id = Some(
                opt_id(obj, "groupId", &p("groupId"))?
                    .ok_or_else(|| ParseError::MissingField { field: p("groupId") })?,
            );
        }
        CallKind::Alias => {
            previous_id = Some(
                opt_id(obj, "previousId", &p("previousId"))?
                    .ok_or_else(|| ParseError::MissingField { field: p("previousId") })?,
            );
        }
        CallKind::Identify => {}
    }
    if kind == CallKind::Alias {
        if user_id.is_none() {
            return Err(ParseError::MissingField { field: p("userId") });
        }
    } else if user_id.is_none() && anonymous_id.is_none() {
        return Err(ParseError::MissingField {
            field: p("userId or anonymousId"),
        });
    }
    let mut properties = opt_object(obj, "properties", &p("properties"))?.unwrap_or_default();
    let mut traits = opt_object(obj, "traits", &p("traits"))?.unwrap_or_default();
    // Page calls carry `category` beside `name`; keep it with the properties.
    if matches!(kind, CallKind::Page | CallKind::Screen)
        && let Some(cat) = opt_string(obj, "category", &p("category"))?
    {
        properties.entry("category").or_insert(Value::String(cat));
    }
    let mut context = default_context.clone();
    if let Some(own) = opt_object(obj, "context", &p("context"))? {
        context.extend(own);
    }
    // Segment's older clients put traits in `context.traits` for track calls; identify
    // with traits only in context is still an identify.
    if kind == CallKind::Identify
        && traits.is_empty()
        && let Some(Value::Object(t)) = context.get("traits")
    {
        traits = t.clone();
    }
    if let Some(ip) = &received.ip
        && !context.contains_key("ip")
    {
        context.insert("ip".into(), Value::String(ip.clone()));
    }
    if let Some(Value::String(tz)) = context.get("timezone")
        && jiff::tz::TimeZone::get(tz).is_err()
    {
        return Err(ParseError::invalid(
            p("context.timezone"),
            format!("unknown IANA time zone {tz:?}"),
        ));
    }
    let integrations = opt_object(obj, "integrations", &p("integrations"))?.unwrap_or_default();
    let original_timestamp = match opt_instant(obj, "timestamp", &p("timestamp"))? {
        Some(t) => Some(t),
        None => opt_instant(obj, "originalTimestamp", &p("originalTimestamp"))?,
    };
    let sent_at = opt_instant(obj, "sentAt", &p("sentAt"))?.or(batch_sent_at);
    let timestamp = corrected_timestamp(original_timestamp, sent_at, received.at);
    if kind != CallKind::Group {
        // Only `identify` and `group` carry traits; drop stray ones on other types
        // instead of storing them as if they were profile changes.
        if kind != CallKind::Identify {
            traits.clear();
        }
    }
    if kind == CallKind::Identify || kind == CallKind::Group || kind == CallKind::Alias {
        properties.clear();
    }
    Ok(Call {
        kind,
        message_id,
        user_id,
        anonymous_id,
        event,
        name,
        previous_id,
        group_id,
        properties,
        traits,
        context,
        integrations,
        timestamp,
        original_timestamp,
        sent_at,
        received_at: received.at,
    })
}

/// Segment's clock-skew correction: the device clock may be wrong, but the interval
/// between the event and the send is right, so `timestamp = receivedAt - (sentAt -
/// originalTimestamp)`. Without `sentAt` the client's timestamp is taken as is; without
/// any timestamp the message happened when it was received.
pub fn corrected_timestamp(original: Option<Millis>, sent_at: Option<Millis>, received_at: Millis) -> Millis {
    match (original, sent_at) {
        (Some(ts), Some(sent)) => received_at.saturating_sub(sent.saturating_sub(ts)),
        (Some(ts), None) => ts,
        (None, _) => received_at,
    }
}

/// An identifier: a non-empty string, or a number (turned into its decimal string, as
/// Segment accepts numeric user ids). Empty strings and `null` mean absent.
fn opt_id(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, ParseError> {
    opt_text(obj, key, path, true)
}

/// A name (`event`, page `name`): like an identifier, but only a string.
fn opt_name(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, ParseError> {
    opt_text(obj, key, path, false)
}

fn opt_text(obj: &Map<String, Value>, key: &str, path: &str, numbers: bool) -> Result<Option<String>, ParseError> {
    let s = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) if numbers => n.to_string(),
        Some(_) => return Err(ParseError::invalid(path, "must be a string")),
    };
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > MAX_ID_CHARS {
        return Err(ParseError::invalid(
            path,
            format!("longer than {MAX_ID_CHARS} characters"),
        ));
    }
    Ok(Some(s))
}

fn opt_string(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, ParseError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ParseError::invalid(path, "must be a string")),
    }
}

fn opt_object(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<Map<String, Value>>, ParseError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o.clone())),
        Some(_) => Err(ParseError::invalid(path, "must be a JSON object")),
    }
}

fn opt_instant(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<Millis>, ParseError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => parse_instant(s)
            .map(Some)
            .ok_or_else(|| ParseError::invalid(path, format!("{s:?} is not an ISO 8601 date-time"))),
        Some(_) => Err(ParseError::invalid(path, "must be an ISO 8601 date-time string")),
    }
}

#[cfg(test)]
mod tests;
