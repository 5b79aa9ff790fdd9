//! The admin REST API under `/api/v1` (Bearer admin key).

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use nudge_core::{Contact, ContactId, format_millis};
use nudge_store::{ContactPatch, ContactQuery, EventCursor, EventQuery, KeyKind, Lookup, StoredEvent};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

pub const MAX_PAGE: usize = 500;

/// A contact as the API shows it.
pub fn contact_json(c: &Contact) -> Value {
    json!({
        "id": c.id,
        "user_id": c.user_id,
        "alias_user_ids": c.alias_user_ids,
        "anonymous_ids": c.anonymous_ids,
        "email": c.email,
        "phone": c.phone,
        "traits": c.traits,
        "subscriptions": c.subscriptions,
        "created_at": format_millis(c.created_at),
        "updated_at": format_millis(c.updated_at),
        "last_seen_at": c.last_seen_at.map(format_millis),
    })
}

pub fn event_json(e: &StoredEvent) -> Value {
    let mut v = json!({
        "id": e.id,
        "message_id": e.message_id,
        "type": e.kind,
        "user_id": e.user_id,
        "anonymous_id": e.anonymous_id,
        "timestamp": format_millis(e.timestamp),
        "received_at": format_millis(e.received_at),
        "context": e.context,
    });
    match e.kind.as_str() {
        "track" => v["event"] = json!(e.name),
        "page" | "screen" => v["name"] = json!(e.name),
        _ => {}
    }
    let body_key = if matches!(e.kind.as_str(), "identify" | "group") {
        "traits"
    } else {
        "properties"
    };
    v[body_key] = json!(e.properties);
    for (k, val) in &e.extra {
        v[k.as_str()] = val.clone();
    }
    v
}

pub(crate) fn limit_of(params: &HashMap<String, String>, default: usize) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                "limit",
                format!("limit must be an integer from 1 to {MAX_PAGE}"),
            )),
        },
    }
}

/// `GET /api/v1/contacts?email=&user_id=&q=&trait.<name>=<value>&limit=&cursor=`.
/// A trait value is compared as JSON when it parses as JSON (`trait.age=30`,
/// `trait.vip=true`), else as a string.
pub async fn list_contacts(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut q = ContactQuery {
        limit: limit_of(&params, 50)?,
        ..Default::default()
    };
    for (k, v) in &params {
        match k.as_str() {
            "limit" => {}
            "email" => q.email = Some(v.clone()),
            "user_id" => q.user_id = Some(v.clone()),
            "q" => q.search = Some(v.clone()).filter(|s| !s.is_empty()),
            "cursor" => {
                q.after = Some(
                    v.parse()
                        .map_err(|_| ApiError::invalid("cursor", "cursor is not one this API returned"))?,
                )
            }
            other => match other.strip_prefix("trait.") {
                Some(name) if valid_trait_name(name) => {
                    let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.clone()));
                    q.traits.push((name.to_string(), value));
                }
                _ => {
                    return Err(ApiError::invalid(
                        other,
                        format!(
                            "unknown query parameter {other:?}; use email, user_id, q, trait.<name>, limit, cursor"
                        ),
                    ));
                }
            },
        }
    }
    q.traits.sort_by(|a, b| a.0.cmp(&b.0));
    let page = state.store.list_contacts(&q).await?;
    Ok(Json(json!({
        "data": page.items.iter().map(contact_json).collect::<Vec<_>>(),
        "next_cursor": page.next,
    })))
}

fn valid_trait_name(name: &str) -> bool {
    // NUL and control characters cannot be part of a JSON path in SQLite.
    !name.is_empty() && name.len() <= 200 && !name.contains(['"', '\\']) && !name.chars().any(char::is_control)
}

#[derive(Deserialize)]
pub struct LookupParams {
    user_id: Option<String>,
    email: Option<String>,
    anonymous_id: Option<String>,
}

/// `GET /api/v1/contacts/lookup?user_id=|email=|anonymous_id=`.
pub async fn lookup_contact(
    State(state): State<AppState>,
    Query(p): Query<LookupParams>,
) -> Result<Json<Value>, ApiError> {
    let lookup = match (p.user_id, p.email, p.anonymous_id) {
        (Some(u), None, None) => Lookup::UserId(u),
        (None, Some(e), None) => Lookup::Email(e),
        (None, None, Some(a)) => Lookup::AnonymousId(a),
        _ => {
            return Err(ApiError::invalid(
                "user_id",
                "give exactly one of user_id, email, anonymous_id",
            ));
        }
    };
    match state.store.find_contact(&lookup).await? {
        Some(c) => Ok(Json(contact_json(&c))),
        None => Err(ApiError::not_found("no contact with that identifier")),
    }
}

fn contact_id(raw: &str) -> Result<ContactId, ApiError> {
    crate::messages::int_text(raw)
        .ok_or_else(|| ApiError::invalid("id", format!("contact id must be an integer, got {raw:?}")))
}

pub(crate) async fn load(state: &AppState, raw: &str) -> Result<Contact, ApiError> {
    let id = contact_id(raw)?;
    state
        .store
        .contact(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no contact {id}")))
}

pub async fn get_contact(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(contact_json(&load(&state, &id).await?)))
}

/// `PATCH /api/v1/contacts/{id}` with `{"traits": {...}, "subscriptions": {"email": "unsubscribed"}}`.
pub async fn update_contact(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = contact_id(&id)?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError::new("malformed_json", e.to_string()))?;
    let Value::Object(obj) = &value else {
        return Err(ApiError::new("invalid_field", "body must be a JSON object").with_field("$"));
    };
    for k in obj.keys() {
        if k != "traits" && k != "subscriptions" {
            return Err(ApiError::new(
                "invalid_field",
                format!("unknown field {k:?}; use traits, subscriptions"),
            )
            .with_field(k.clone()));
        }
    }
    if let Some(t) = obj.get("traits")
        && !t.is_object()
    {
        return Err(ApiError::new("invalid_field", "traits must be a JSON object").with_field("traits"));
    }
    let patch: ContactPatch = serde_json::from_value(value.clone()).map_err(|e| {
        ApiError::new(
            "invalid_field",
            format!("subscriptions must map a channel to subscribed, unsubscribed or pending ({e})"),
        )
        .with_field("subscriptions")
    })?;
    let contact = state.app().update_contact(id, &patch).await?;
    Ok(Json(contact_json(&contact)))
}

pub async fn delete_contact(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = contact_id(&id)?;
    state.app().erase_contact(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/contacts/{id}/events?limit=&cursor=`: the timeline, newest first.
pub async fn contact_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let contact = load(&state, &id).await?;
    let before = match params.get("cursor") {
        Some(c) => Some(
            EventCursor::decode(c).ok_or_else(|| ApiError::invalid("cursor", "cursor is not one this API returned"))?,
        ),
        None => None,
    };
    let page = state
        .store
        .contact_events(
            contact.id,
            &EventQuery {
                before,
                limit: limit_of(&params, 50)?,
            },
        )
        .await?;
    Ok(Json(json!({
        "data": page.items.iter().map(event_json).collect::<Vec<_>>(),
        "next_cursor": page.next,
    })))
}

/// `GET /api/v1/contacts/{id}/export`: everything stored about one contact (GDPR access).
pub async fn export_contact(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let contact = load(&state, &id).await?;
    let export = state.app().contact_export(contact.id).await?;
    Ok(export_response(&export, state.clock.now()))
}

/// A contact's GDPR export as the API and the web UI both serve it: a JSON document
/// with the contact and every event, as an attachment.
pub fn export_response(export: &nudge_app::contacts::ContactExport, now: nudge_core::Millis) -> Response {
    let body = json!({
        "exported_at": format_millis(now),
        "contact": contact_json(&export.contact),
        "events": export.events.iter().map(event_json).collect::<Vec<_>>(),
    });
    (
        [(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"contact-{}.json\"", export.contact.id),
        )],
        Json(body),
    )
        .into_response()
}

/// `POST /api/v1/contacts/import` with a CSV body (see `nudge_app::csv_io`). All rows or none.
pub async fn import_contacts(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let report = state.app().import_contacts_csv(&body).await?;
    Ok(Json(
        json!({"rows": report.rows, "created": report.created, "updated": report.updated}),
    ))
}

/// `GET /api/v1/contacts/export`: all contacts as CSV.
pub async fn export_contacts(State(state): State<AppState>) -> Result<Response, ApiError> {
    let csv = state.app().export_contacts_csv().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"contacts.csv\""),
        ],
        csv,
    )
        .into_response())
}

pub async fn list_keys(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let keys = state.app().list_keys().await?;
    Ok(Json(json!({ "data": keys.iter().map(key_json).collect::<Vec<_>>() })))
}

fn key_json(k: &nudge_store::ApiKey) -> Value {
    json!({
        "id": k.id, "kind": k.kind, "name": k.name, "prefix": k.prefix,
        "created_at": format_millis(k.created_at), "revoked_at": k.revoked_at.map(format_millis),
        "allowed_origins": k.browser.allowed_origins, "browser_only": k.browser.browser_only,
    })
}

/// A JSON body read into `T`: bad JSON is `malformed_json`, a wrong field
/// `invalid_field`.
fn typed_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::new("malformed_json", e.to_string())
        } else {
            ApiError::new("invalid_field", e.to_string())
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserBody {
    allowed_origins: Vec<String>,
    #[serde(default)]
    browser_only: bool,
}

/// `PUT /api/v1/keys/{id}/browser` `{"allowed_origins": ["https://shop.example"],
/// "browser_only": false}`: which web origins may send with a write key from their
/// pages (Segment's analytics.js), and whether the key may only use the browser
/// endpoints.
pub async fn set_key_browser(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = crate::messages::int_text(&id).ok_or_else(|| ApiError::invalid("id", "key id must be an integer"))?;
    let b: BrowserBody = typed_body(&body)?;
    let key = state
        .app()
        .set_key_browser(id, &b.allowed_origins, b.browser_only)
        .await?;
    Ok(Json(key_json(&key)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    kind: String,
    #[serde(default)]
    name: String,
}

/// `POST /api/v1/keys` `{"kind": "write"|"admin", "name": "..."}`: the secret is in the
/// answer, once.
pub async fn create_key(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: NewKeyBody = typed_body(&body)?;
    let kind = KeyKind::parse(&b.kind)
        .ok_or_else(|| ApiError::new("invalid_field", "kind must be \"write\" or \"admin\"").with_field("kind"))?;
    let (key, secret) = state.app().create_key(kind, &b.name).await?;
    let mut v = key_json(&key);
    v["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)))
}

pub async fn revoke_key(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id: i64 = crate::messages::int_text(&id).ok_or_else(|| ApiError::invalid("id", "key id must be an integer"))?;
    state.app().revoke_key(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
