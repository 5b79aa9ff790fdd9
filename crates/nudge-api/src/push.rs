//! Web push subscriptions: the browser side (`/v1/push/...`, write key, like the
//! tracking API) saves and removes push subscriptions; the admin API lists them.

use crate::error::ApiError;
use crate::{AppState, keys};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use nudge_core::{CallKind, Received, format_millis, parse_single};
use nudge_messages::channel::push::PushTarget;
use nudge_store::{KeyKind, Lookup, NewPushSubscription, PushSubscription};
use serde_json::{Map, Value, json};

/// The longest `userAgent` kept.
const MAX_USER_AGENT: usize = 512;

fn body_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::new("invalid_field", "body must be a JSON object").with_field("$")),
        Err(e) => Err(ApiError::new("malformed_json", e.to_string())),
    }
}

fn only_fields(body: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), ApiError> {
    for k in body.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::new(
                "invalid_field",
                format!("unknown field {prefix}{k:?}; use {}", allowed.join(", ")),
            )
            .with_field(format!("{prefix}{k}")));
        }
    }
    Ok(())
}

/// A non-empty string field, if present.
fn opt_text(body: &Map<String, Value>, key: &str, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::new("invalid_field", format!("{field} must be a non-empty string")).with_field(field)),
    }
}

/// `userId` / `anonymousId` as the tracking API takes them: a string or a number
/// (kept as its decimal string), trimmed; empty or `null` is absent.
fn identifier(body: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    let id = match body.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(ApiError::new("invalid_field", format!("{key} must be a string or a number")).with_field(key));
        }
    };
    if id.chars().count() > 1024 {
        return Err(ApiError::new("invalid_field", format!("{key} is over 1024 characters")).with_field(key));
    }
    Ok(Some(id).filter(|s| !s.is_empty()))
}

fn required_text(body: &Map<String, Value>, key: &str, field: &str) -> Result<String, ApiError> {
    opt_text(body, key, field)?
        .ok_or_else(|| ApiError::new("missing_field", format!("{field}: is required")).with_field(field))
}

/// Checks the write key, sent as the HTTP Basic username (checked before the body
/// is parsed) or as `writeKey` in the body; returns the body.
async fn authorized_body(state: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    let header_key = keys::basic_username(headers);
    if let Some(k) = &header_key {
        keys::verify(&*state.store, k, KeyKind::Write).await?;
    }
    let body = body_object(body)?;
    // A body key is checked as text even when the header's key is the one used.
    let body_key = opt_text(&body, "writeKey", "writeKey")?;
    if header_key.is_none() {
        let key = body_key.ok_or_else(|| {
            ApiError::unauthorized("missing write key: send it as the HTTP Basic username or as `writeKey` in the body")
        })?;
        keys::verify(&*state.store, &key, KeyKind::Write).await?;
    }
    Ok(body)
}

/// `GET /v1/push/vapid-public-key`: the `applicationServerKey` for
/// `PushManager.subscribe` (public, no key needed).
pub async fn vapid_public_key(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let key = state
        .push_public_key
        .clone()
        .ok_or_else(|| ApiError::new("channel_not_configured", "push is not configured on this server"))?;
    Ok(Json(json!({ "public_key": key })))
}

/// `POST /v1/push/subscriptions`: `{"userId" | "anonymousId", "subscription":
/// {"endpoint", "keys": {"p256dh", "auth"}}, "userAgent"?}` saves the browser's push
/// subscription for that contact (creating the contact as an `identify` would).
pub async fn subscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = authorized_body(&state, &headers, &body).await?;
    only_fields(
        &body,
        &["userId", "anonymousId", "subscription", "userAgent", "writeKey"],
        "",
    )?;
    let user_id = identifier(&body, "userId")?;
    let anonymous_id = identifier(&body, "anonymousId")?;
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(ApiError::new("missing_field", "userId or anonymousId: one is required").with_field("userId"));
    }
    let subscription = match body.get("subscription") {
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(ApiError::new(
                "invalid_field",
                "subscription must be an object (PushSubscription.toJSON())",
            )
            .with_field("subscription"));
        }
        None => {
            return Err(ApiError::new("missing_field", "subscription: is required").with_field("subscription"));
        }
    };
    only_fields(subscription, &["endpoint", "expirationTime", "keys"], "subscription.")?;
    let endpoint = required_text(subscription, "endpoint", "subscription.endpoint")?;
    let sub_keys = match subscription.get("keys") {
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(
                ApiError::new("invalid_field", "subscription.keys must be an object").with_field("subscription.keys")
            );
        }
        None => {
            return Err(
                ApiError::new("missing_field", "subscription.keys: is required").with_field("subscription.keys")
            );
        }
    };
    only_fields(sub_keys, &["p256dh", "auth"], "subscription.keys.")?;
    let p256dh = required_text(sub_keys, "p256dh", "subscription.keys.p256dh")?;
    let auth = required_text(sub_keys, "auth", "subscription.keys.auth")?;
    PushTarget::parse(&endpoint, &p256dh, &auth)
        .map_err(|e| ApiError::new("invalid_field", e.message).with_field(format!("subscription.{}", e.field)))?;
    if !state.push_allow_local && nudge_messages::channel::push::is_local_endpoint(&endpoint) {
        return Err(ApiError::new(
            "invalid_field",
            "subscription.endpoint must be a public push service, not this machine or a private network \
             (NUDGE_PUSH_ALLOW_LOCAL=true allows it for development)",
        )
        .with_field("subscription.endpoint"));
    }
    let user_agent = match opt_text(&body, "userAgent", "userAgent")? {
        Some(ua) => Some(ua),
        None => headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
    .map(|ua| ua.chars().take(MAX_USER_AGENT).collect::<String>());

    let contact = match find(&state, user_id.as_deref(), anonymous_id.as_deref()).await? {
        Some(id) => id,
        None => {
            // Unknown: an `identify` creates the contact, so identity resolution
            // stays in one place (the ingest path).
            let received = Received {
                at: state.clock.now(),
                ip: None,
            };
            let call = json!({"userId": user_id, "anonymousId": anonymous_id});
            let mut new_id = || format!("nudge-{}", hex::encode(rand::random::<[u8; 16]>()));
            let parsed = parse_single(CallKind::Identify, call.to_string().as_bytes(), &received, &mut new_id)?;
            for m in &parsed.messages {
                state.metrics.ingested(m.kind);
            }
            state.ingestor.submit(parsed.messages).await?;
            state.segments.wake();
            find(&state, user_id.as_deref(), anonymous_id.as_deref())
                .await?
                .ok_or_else(|| ApiError::internal("a contact created by identify is not found"))?
        }
    };
    let saved = state
        .store
        .add_push_subscription(
            NewPushSubscription {
                contact_id: contact,
                endpoint,
                p256dh: p256dh.trim().to_string(),
                auth: auth.trim().to_string(),
                user_agent,
            },
            state.clock.now(),
        )
        .await?
        .ok_or_else(|| ApiError::new("conflict", "the contact was erased meanwhile; nothing was saved"))?;
    Ok(Json(
        json!({"success": true, "subscription": subscription_json(&saved)}),
    ))
}

/// The contact a user id (first) or anonymous id names.
async fn find(state: &AppState, user_id: Option<&str>, anonymous_id: Option<&str>) -> Result<Option<i64>, ApiError> {
    if let Some(u) = user_id {
        return Ok(state
            .store
            .find_contact(&Lookup::UserId(u.to_string()))
            .await?
            .map(|c| c.id));
    }
    match anonymous_id {
        Some(a) => Ok(state
            .store
            .find_contact(&Lookup::AnonymousId(a.to_string()))
            .await?
            .map(|c| c.id)),
        None => Ok(None),
    }
}

/// `DELETE /v1/push/subscriptions` with `{"endpoint"}`: the browser unsubscribed.
pub async fn unsubscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = authorized_body(&state, &headers, &body).await?;
    only_fields(&body, &["endpoint", "writeKey"], "")?;
    let endpoint = required_text(&body, "endpoint", "endpoint")?;
    let removed = state.store.remove_push_subscription(&endpoint).await?;
    Ok(Json(json!({"success": true, "removed": removed})))
}

/// A push subscription as the APIs show it; the keys stay inside.
pub fn subscription_json(s: &PushSubscription) -> Value {
    json!({
        "id": s.id,
        "contact_id": s.contact_id,
        "endpoint": s.endpoint,
        "user_agent": s.user_agent,
        "created_at": format_millis(s.created_at),
        "updated_at": format_millis(s.updated_at),
        "last_used_at": s.last_used_at.map(format_millis),
    })
}

/// `GET /api/v1/contacts/{id}/push-subscriptions`.
pub async fn of_contact(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let contact = crate::admin::load(&state, &id).await?;
    let data: Vec<Value> = state
        .store
        .push_subscriptions(contact.id)
        .await?
        .iter()
        .map(subscription_json)
        .collect();
    Ok(Json(json!({ "data": data })))
}
