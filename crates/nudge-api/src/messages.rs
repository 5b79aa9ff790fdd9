//! Messages in the admin API: templates (versioned, validated, previewed), sending
//! (`POST /api/v1/messages`), the outbox, suppressions, bounces, channels.

use crate::AppState;
use crate::admin::limit_of;
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use nudge_app::AppError;
use nudge_app::channels::ChannelStatus;
use nudge_app::messages::{Bounce, BounceKind, Recipient, SendMessage, TemplateRef};
use nudge_app::templates::{PreviewAs, TemplateInput, TemplateRefusal};
use nudge_core::format_millis;
use nudge_messages::template::{Content, TemplateError};
use nudge_store::{Message, MessageQuery, MessageState, NewTemplate, Suppression, Template};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub(crate) fn body_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::new("invalid_field", "body must be a JSON object").with_field("$")),
        Err(e) => Err(ApiError::new("malformed_json", e.to_string())),
    }
}

pub(crate) fn only_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    for k in body.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::new(
                "invalid_field",
                format!("unknown field {k:?}; use {}", allowed.join(", ")),
            )
            .with_field(k.clone()));
        }
    }
    Ok(())
}

pub(crate) fn opt_string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::new("invalid_field", format!("{key} must be a string")).with_field(key)),
    }
}

/// A JSON integer, also written as a whole float (`3.0`): JSON Schema's `integer`
/// is either.
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            // An integer written as a float (`1.5e16`): beyond 2^53 it may not be
            // exact, but no id is that large, so it reads as one that does not exist.
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
            .map(|f| f as i64)
    })
}

/// JSON numbers that are whole (`3.0`) as integers: JSON Schema's `integer` accepts
/// them, and so does the API.
pub(crate) fn integral_numbers(v: Value) -> Value {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(integral_numbers).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, integral_numbers(v))).collect()),
        other => other,
    }
}

/// An integer in a path or query: `12`, also written `12.0` (JSON Schema's
/// `integer` includes it, and OpenAPI clients may serialize it so).
pub(crate) fn int_text(s: &str) -> Option<i64> {
    s.parse().ok().or_else(|| {
        s.parse::<f64>()
            .ok()
            // An integer written as a float (`1.5e16`): beyond 2^53 it may not be
            // exact, but no id is that large, so it reads as one that does not exist.
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
            .map(|f| f as i64)
    })
}

pub(crate) fn opt_bool(body: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::new("invalid_field", format!("{key} must be true or false")).with_field(key)),
    }
}

fn template_errors(errors: &[TemplateError]) -> ApiError {
    let summary = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    let mut e = ApiError::new("invalid_template", summary);
    if let Some(first) = errors.first() {
        e = e.with_field(format!("content.{}", first.field));
    }
    e.details = Some(Box::new(json!(errors)));
    e
}

/// `content` of a request, parsed (compiling it is the application layer's check).
fn content_of(body: &Map<String, Value>) -> Result<Content, ApiError> {
    let raw = body
        .get("content")
        .ok_or_else(|| ApiError::new("missing_field", "content: is required").with_field("content"))?;
    serde_json::from_value(raw.clone()).map_err(|e| {
        ApiError::new(
            "invalid_field",
            format!("content: {e} (content is {{\"channel\": \"email\" | \"sms\" | \"push\" | \"webhook\", ...}})"),
        )
        .with_field("content")
    })
}

fn new_template(body: &Map<String, Value>) -> Result<NewTemplate, ApiError> {
    only_fields(body, &["name", "description", "transactional", "topic", "content"])?;
    let name = match body.get("name") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ApiError::new(
                "invalid_field",
                "name must be a non-empty string of at most 200 characters",
            )
            .with_field("name"));
        }
        None => return Err(ApiError::new("missing_field", "name: is required").with_field("name")),
    };
    let input = TemplateInput {
        name,
        description: opt_string(body, "description")?.unwrap_or_default(),
        transactional: opt_bool(body, "transactional")?.unwrap_or(false),
        topic: opt_string(body, "topic")?,
        content: content_of(body)?,
    };
    nudge_app::templates::check(input).map_err(|refusal| match refusal {
        TemplateRefusal::Field { field, message } => ApiError::new("invalid_field", message).with_field(field),
        TemplateRefusal::Content(errors) => template_errors(&errors),
    })
}

pub fn template_json(t: &Template) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "channel": t.channel,
        "version": t.version,
        "transactional": t.transactional,
        "topic": t.topic,
        "content": t.content,
        "created_at": format_millis(t.created_at),
        "updated_at": format_millis(t.updated_at),
    })
}

fn id_of(raw: &str, what: &str) -> Result<i64, ApiError> {
    crate::messages::int_text(raw)
        .ok_or_else(|| ApiError::invalid("id", format!("{what} id must be an integer, got {raw:?}")))
}

async fn load_template(state: &AppState, raw: &str) -> Result<Template, ApiError> {
    let id = id_of(raw, "template")?;
    state
        .store
        .template(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no template {id}")))
}

pub async fn list_templates(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state.store.templates().await?.iter().map(template_json).collect();
    Ok(Json(json!({ "data": data })))
}

pub async fn create_template(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = new_template(&body_object(&body)?)?;
    let t = state.store.create_template(new, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(template_json(&t))))
}

pub async fn get_template(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(template_json(&load_template(&state, &id).await?)))
}

pub async fn update_template(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(&id, "template")?;
    let new = new_template(&body_object(&body)?)?;
    let t = state
        .store
        .update_template(id, new, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no template {id}")))?;
    Ok(Json(template_json(&t)))
}

pub async fn delete_template(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = id_of(&id, "template")?;
    state.app().delete_template(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn template_versions(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let t = load_template(&state, &id).await?;
    let data: Vec<Value> = state
        .store
        .template_versions(t.id)
        .await?
        .iter()
        .map(|v| json!({"version": v.version, "content": v.content, "created_at": format_millis(v.created_at)}))
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// The recipient a request names: `{"contact_id": 1}`, `{"user_id": "u"}` or
/// `{"email": "e"}` (exactly one).
pub(crate) fn recipient(to: &Map<String, Value>, field: &str) -> Result<Recipient, ApiError> {
    let given: Vec<&str> = ["contact_id", "user_id", "email"]
        .into_iter()
        .filter(|k| to.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if given.len() != 1 {
        return Err(ApiError::new(
            "invalid_field",
            format!("{field}: give exactly one of contact_id, user_id, email"),
        )
        .with_field(field));
    }
    if given[0] == "contact_id" {
        let id = as_int(&to["contact_id"]).ok_or_else(|| {
            ApiError::new("invalid_field", format!("{field}.contact_id must be an integer"))
                .with_field(format!("{field}.contact_id"))
        })?;
        return Ok(Recipient::ContactId(id));
    }
    let key = given[0];
    let v = to[key].as_str().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        ApiError::new("invalid_field", format!("{field}.{key} must be a non-empty string"))
            .with_field(format!("{field}.{key}"))
    })?;
    Ok(if key == "user_id" {
        Recipient::UserId(v.into())
    } else {
        // A contact's email is always an address (`normalize_email`), so anything
        // else names nobody: refused here, as when sending to it would create one.
        if nudge_core::contact::normalize_email(&Value::String(v.into())).is_none() {
            return Err(
                ApiError::new("invalid_field", format!("{field}.email {v:?} is not an email address"))
                    .with_field(format!("{field}.email")),
            );
        }
        Recipient::Email(v.into())
    })
}

/// The `to` object of a body, parsed.
pub(crate) fn to_of(body: &Map<String, Value>) -> Result<Recipient, ApiError> {
    match body.get("to") {
        Some(Value::Object(o)) => recipient(o, "to"),
        Some(_) => Err(ApiError::new("invalid_field", "to must be an object").with_field("to")),
        None => Err(ApiError::new("missing_field", "to: is required").with_field("to")),
    }
}

pub(crate) fn object_or_empty(body: &Map<String, Value>, key: &str) -> Result<Value, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(json!({})),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(ApiError::new("invalid_field", format!("{key} must be an object")).with_field(key)),
    }
}

/// `POST /api/v1/templates/{id}/preview` and `/api/v1/templates/preview`: renders as
/// a contact (`to`) or with sample data, without sending or saving anything.
pub async fn preview_template(
    State(state): State<AppState>,
    id: Option<Path<String>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = if body.is_empty() {
        Map::new()
    } else {
        body_object(&body)?
    };
    only_fields(&body, &["content", "to", "contact", "event", "data"])?;
    let content: Content = match &id {
        Some(Path(id)) => {
            // A `content` is not used here, but must still be one.
            if let Some(raw) = body.get("content") {
                serde_json::from_value::<Content>(raw.clone())
                    .map_err(|e| ApiError::new("invalid_field", format!("content: {e}")).with_field("content"))?;
            }
            let t = load_template(&state, id).await?;
            serde_json::from_value(t.content).map_err(ApiError::internal)?
        }
        None => {
            let raw = body
                .get("content")
                .ok_or_else(|| ApiError::new("missing_field", "content: is required").with_field("content"))?;
            serde_json::from_value(raw.clone())
                .map_err(|e| ApiError::new("invalid_field", format!("content: {e}")).with_field("content"))?
        }
    };
    let who = match body.get("to") {
        None => PreviewAs::Sample(object_or_empty(&body, "contact")?),
        Some(_) => {
            // Checked even when `to` is given (and it is not used).
            object_or_empty(&body, "contact")?;
            PreviewAs::Contact(to_of(&body)?)
        }
    };
    let event = object_or_empty(&body, "event")?;
    let data = object_or_empty(&body, "data")?;
    // Like a problem with the content, a recipient who does not exist is reported in
    // the answer; a `404` is only ever about the template the path names.
    match state.app().preview_template(&content, who, event, data).await {
        Ok(preview) => Ok(Json(json!({"rendered": preview.rendered, "errors": preview.errors}))),
        Err(nudge_app::AppError::NotFound { .. }) => Ok(Json(
            json!({"rendered": null, "errors": [{"field": "to", "message": "no such contact"}]}),
        )),
        Err(e) => Err(e.into()),
    }
}

pub fn message_json(m: &Message) -> Value {
    json!({
        "id": m.id,
        "idempotency_key": m.idempotency_key,
        "contact_id": m.contact_id,
        "template_id": m.template_id,
        "template_version": m.template_version,
        "channel": m.channel,
        "transactional": m.transactional,
        "state": m.state,
        "attempts": m.attempts,
        "next_attempt_at": m.next_attempt_at.map(format_millis),
        "recipient": m.recipient,
        "error": m.error,
        "data": m.data,
        "rendered": m.rendered,
        "created_at": format_millis(m.created_at),
        "updated_at": format_millis(m.updated_at),
        "sent_at": m.sent_at.map(format_millis),
        "provider_id": m.provider_id,
        "origin": m.origin,
    })
}

/// The `Idempotency-Key` header: text of 1 to 255 characters.
fn header_key(h: &axum::http::HeaderValue) -> Result<String, ApiError> {
    let k = h
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "the Idempotency-Key header must be text"))?;
    if k.is_empty() || k.len() > nudge_app::messages::MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "the Idempotency-Key header must be 1 to 255 characters",
        ));
    }
    Ok(k.to_string())
}

/// `POST /api/v1/messages`: send template T to a contact, idempotently.
pub async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body_object(&body)?;
    only_fields(
        &body,
        &["template", "to", "data", "event", "idempotency_key", "transactional"],
    )?;
    let template = match body.get("template") {
        Some(v @ Value::Number(_)) if as_int(v).is_some() => TemplateRef::Id(as_int(v).unwrap_or_default()),
        Some(Value::String(name)) => TemplateRef::Name(name.clone()),
        Some(_) => {
            return Err(ApiError::new("invalid_field", "template must be a template id or name").with_field("template"));
        }
        None => return Err(ApiError::new("missing_field", "template: is required").with_field("template")),
    };
    let idempotency_key = match (opt_string(&body, "idempotency_key")?, headers.get("idempotency-key")) {
        (Some(k), _) => Some(k),
        (None, Some(h)) => Some(header_key(h)?),
        (None, None) => None,
    };
    // A header key is checked even when the body's key wins.
    if let (Some(_), Some(h)) = (body.get("idempotency_key"), headers.get("idempotency-key")) {
        header_key(h)?;
    }
    let sent = state
        .app()
        .send_message(SendMessage {
            template,
            to: to_of(&body)?,
            data: object_or_empty(&body, "data")?,
            event: object_or_empty(&body, "event")?,
            idempotency_key,
            transactional: opt_bool(&body, "transactional")?,
        })
        .await?;
    let status = if sent.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(message_json(&sent.message))))
}

pub async fn list_messages(
    State(state): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let int = |k: &str| -> Result<Option<i64>, ApiError> {
        p.get(k)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid(k, format!("{k} must be an integer, got {v:?}")))
            })
            .transpose()
    };
    let state_filter = match p.get("state") {
        None => None,
        Some(s) => Some(MessageState::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "state",
                format!("state must be one of queued, sent, delivered, failed, bounced, suppressed; got {s:?}"),
            )
        })?),
    };
    for k in p.keys() {
        if !["contact_id", "template_id", "state", "before", "limit"].contains(&k.as_str()) {
            return Err(ApiError::invalid(k, format!("unknown parameter {k:?}")));
        }
    }
    let page = state
        .store
        .list_messages(&MessageQuery {
            contact_id: int("contact_id")?,
            template_id: int("template_id")?,
            state: state_filter,
            before: int("before")?,
            limit: limit_of(&p, 50)?,
            ..Default::default()
        })
        .await?;
    let data: Vec<Value> = page.items.iter().map(message_json).collect();
    Ok(Json(json!({ "data": data, "next": page.next })))
}

pub async fn get_message(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = id_of(&id, "message")?;
    let m = state
        .store
        .message(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no message {id}")))?;
    Ok(Json(message_json(&m)))
}

fn channel_json(c: &ChannelStatus) -> Value {
    json!({
        "kind": c.kind,
        "transport": c.transport,
        "healthy": c.health.is_ok(),
        "error": c.health.clone().err(),
        "settings": c.settings,
        "source": c.source.as_str(),
    })
}

pub async fn channels(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state.app().channels(None).await?.iter().map(channel_json).collect();
    Ok(Json(json!({ "data": data })))
}

/// `PUT /api/v1/channels/{kind}`: configure how `email` or `sms` is delivered
/// (`{"transport": "smtp" | "twilio" | "capture", ...}`). Checked, stored in the
/// database (it survives restarts and overrides the start-up settings) and used at
/// once (`App::configure_channel`). The answer includes a live health check.
pub async fn put_channel(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    use nudge_messages::channel::config::ChannelConfig;
    let app = state.app();
    // A server without messaging says so before reading the body.
    app.messaging()?;
    let value = body_object(&body)?;
    let config: ChannelConfig = serde_json::from_value(Value::Object(value)).map_err(|e| {
        // serde names the field in backquotes: "missing field `from`".
        let text = e.to_string();
        let named = text.split('`').nth(1).unwrap_or("transport").to_string();
        let code = if text.starts_with("missing field") {
            "missing_field"
        } else {
            "invalid_field"
        };
        let field = if text.starts_with("unknown variant") {
            "transport".to_string()
        } else {
            named
        };
        ApiError::new(code, format!("channel configuration: {text}")).with_field(field)
    })?;
    let status = app.configure_channel(&kind, config, None).await.map_err(|e| match e {
        // The API's message names the field as well.
        AppError::InvalidField { field, message } => {
            ApiError::new("invalid_field", format!("{field}: {message}")).with_field(field)
        }
        e => e.into(),
    })?;
    Ok(Json(channel_json(&status)))
}

/// `DELETE /api/v1/channels/{kind}`: forget the configuration stored through the
/// API and go back to the start-up settings (`NUDGE_SMTP_URL`, ...).
pub async fn delete_channel(State(state): State<AppState>, Path(kind): Path<String>) -> Result<Json<Value>, ApiError> {
    let status = state.app().reset_channel(&kind, None).await?;
    Ok(Json(channel_json(&status)))
}

fn suppression_json(s: &Suppression) -> Value {
    json!({"channel": s.channel, "address": s.address, "reason": s.reason, "created_at": format_millis(s.created_at)})
}

pub async fn list_suppressions(
    State(state): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state
        .app()
        .suppressions(p.get("channel").map(String::as_str))
        .await?
        .iter()
        .map(suppression_json)
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// `channel` (default `email`) and `address` (or `email`) of a body.
fn channel_and_address(body: &Map<String, Value>) -> Result<(String, String), ApiError> {
    let channel = opt_string(body, "channel")?.unwrap_or_else(|| "email".into());
    nudge_app::messages::check_channel(&channel)?;
    let address = opt_string(body, "address")?
        .or(opt_string(body, "email")?)
        .filter(|a| !a.trim().is_empty())
        .ok_or_else(|| ApiError::new("missing_field", "address: is required").with_field("address"))?;
    Ok((channel, address))
}

pub async fn add_suppression(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body_object(&body)?;
    only_fields(&body, &["channel", "address", "email", "reason"])?;
    let (channel, address) = channel_and_address(&body)?;
    let reason = opt_string(&body, "reason")?;
    let s = state.app().add_suppression(&channel, &address, reason).await?;
    Ok((StatusCode::CREATED, Json(suppression_json(&s))))
}

pub async fn remove_suppression(
    State(state): State<AppState>,
    Path((channel, address)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.app().remove_suppression(&channel, &address).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/bounces`: a provider's bounce or complaint webhook, normalised:
/// `{"email": "...", "type": "hard" | "soft" | "complaint", "message_id": 12}`.
/// Hard bounces and complaints suppress the address; a named message is marked bounced
/// (hard) or gets its complaint event (complaint).
pub async fn bounce(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = body_object(&body)?;
    only_fields(&body, &["channel", "address", "email", "type", "message_id", "reason"])?;
    let (channel, address) = channel_and_address(&body)?;
    let kind = opt_string(&body, "type")?.unwrap_or_else(|| "hard".into());
    let kind = BounceKind::parse(&kind).ok_or_else(|| {
        ApiError::new(
            "invalid_field",
            format!("type must be hard, soft or complaint; got {kind:?}"),
        )
        .with_field("type")
    })?;
    let detail = opt_string(&body, "reason")?;
    let message_id =
        match body.get("message_id").filter(|v| !v.is_null()) {
            None => None,
            Some(v) => Some(as_int(v).ok_or_else(|| {
                ApiError::new("invalid_field", "message_id must be an integer").with_field("message_id")
            })?),
        };
    let outcome = state
        .app()
        .bounce(Bounce {
            channel,
            address,
            kind,
            message_id,
            detail,
        })
        .await?;
    Ok(Json(json!({
        "channel": outcome.channel,
        "address": outcome.address,
        "suppressed": outcome.suppressed,
        "reason": outcome.reason,
    })))
}

/// `POST /hooks/{channel}/receipts`: a provider's delivery receipt (Twilio's status
/// callback for SMS), authenticated by the provider's signature rather than a key.
/// The message it names (by the provider's id) becomes `delivered`, `failed` or
/// `bounced`; intermediate statuses and unknown ids are accepted and change nothing.
pub async fn receipt(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    use nudge_messages::channel::ReceiptError;
    let channel = state
        .messaging
        .as_ref()
        .and_then(|m| m.channel(&channel))
        .ok_or_else(|| ApiError::not_found(format!("no {channel} channel is configured")))?;
    let receipt = match channel.parse_receipt(&headers, &body) {
        Ok(r) => r,
        Err(ReceiptError::Unauthorized(e)) => return Err(ApiError::unauthorized(e)),
        Err(ReceiptError::Invalid(e)) => return Err(ApiError::new("invalid_request", e)),
        // No receipt endpoint for this channel on this server, as for a channel that
        // is not configured at all.
        Err(ReceiptError::NotTaken(e)) => return Err(ApiError::not_found(e)),
    };
    let Some(receipt) = receipt else {
        return Ok(Json(json!({"recorded": false})));
    };
    match state.store.record_receipt(receipt, state.clock.now()).await? {
        Some(m) => {
            state.segments.wake();
            Ok(Json(
                json!({"recorded": true, "message_id": m.id, "state": m.state.as_str()}),
            ))
        }
        None => Ok(Json(json!({"recorded": false}))),
    }
}
