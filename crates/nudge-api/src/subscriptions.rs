//! `POST /api/v1/subscriptions`: subscribe a contact to a channel or topic, with
//! optional double opt-in (the subscription stays `pending` until the contact follows
//! the confirmation link sent in a message; see `public::confirm`).

use crate::AppState;
use crate::error::ApiError;
use crate::messages::{body_object, only_fields, opt_bool, opt_string, to_of};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, body::Bytes};
use nudge_app::messages::random_key;
use nudge_core::Subscription;
use nudge_store::{ContactPatch, NewMessage};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The template variable a confirmation template must contain.
pub const CONFIRM_VARIABLE: &str = "confirm_url";

/// `{"to": {...}, "subscription": "email:newsletter", "double_opt_in": true,
///   "confirm_template": "Confirm", "idempotency_key": "..."}`.
///
/// Without double opt-in the contact is subscribed at once (200). With it, a contact
/// not yet subscribed becomes `pending` and is sent the confirmation template (202,
/// with the message); one already subscribed stays so and is sent nothing (200).
pub async fn subscribe(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body_object(&body)?;
    only_fields(
        &body,
        &[
            "to",
            "subscription",
            "double_opt_in",
            "confirm_template",
            "idempotency_key",
            "data",
        ],
    )?;
    let key = opt_string(&body, "subscription")?
        .ok_or_else(|| ApiError::new("missing_field", "subscription: is required").with_field("subscription"))?;
    nudge_core::contact::check_subscription_key(&key)
        .map_err(|e| ApiError::new("invalid_field", e).with_field("subscription"))?;
    let double_opt_in = opt_bool(&body, "double_opt_in")?.unwrap_or(false);
    let to = to_of(&body)?;
    // Checked whether or not a confirmation is sent: the key's type and length are
    // part of the request's shape.
    let given_key = opt_string(&body, "idempotency_key")?;
    if let Some(k) = &given_key {
        nudge_app::messages::check_idempotency_key(k)?;
    }
    let confirm_template = opt_string(&body, "confirm_template")?;
    let data = match body.get("data") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(ApiError::new("invalid_field", "data must be an object").with_field("data")),
    };

    // Everything about the confirmation message is checked before anything changes.
    let confirmation = if double_opt_in {
        let name = confirm_template.ok_or_else(|| {
            ApiError::new("missing_field", "confirm_template: is required with double_opt_in")
                .with_field("confirm_template")
        })?;
        let template = state
            .store
            .template_by_name(&name)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no template {name:?}")).with_field("confirm_template"))?;
        // The request is well formed; the template it names is not fit (yet): like a
        // channel that is not configured, a conflict with what is stored, which
        // passes once the template has the link.
        if !template.content.to_string().contains(CONFIRM_VARIABLE) {
            return Err(ApiError::new(
                "conflict",
                format!("template {name:?} does not contain {{{{ {CONFIRM_VARIABLE} }}}}, the confirmation link"),
            )
            .with_field("confirm_template"));
        }
        let messaging = state
            .messaging
            .clone()
            .ok_or_else(|| ApiError::new("channel_not_configured", "messaging is not configured on this server"))?;
        if messaging.channel(&template.channel).is_none() {
            return Err(ApiError::new(
                "channel_not_configured",
                format!("no {} channel is configured on this server", template.channel),
            ));
        }
        let idempotency_key = given_key.unwrap_or_else(|| format!("confirm-{}", random_key()));
        Some((template, idempotency_key, messaging))
    } else {
        None
    };
    let contact = state.app().find_or_create_recipient(&to).await?;
    let now = state.clock.now();
    let current = contact.subscriptions.get(&key).copied();

    let Some((template, idempotency_key, messaging)) = confirmation else {
        set_subscription(&state, contact.id, &key, Subscription::Subscribed, now).await?;
        return Ok((
            StatusCode::OK,
            Json(json!({"contact_id": contact.id, "subscription": key, "state": "subscribed"})),
        ));
    };
    if current == Some(Subscription::Subscribed) {
        return Ok((
            StatusCode::OK,
            Json(json!({"contact_id": contact.id, "subscription": key, "state": "subscribed"})),
        ));
    }
    set_subscription(&state, contact.id, &key, Subscription::Pending, now).await?;
    // The confirmation is transactional: the contact has not consented to marketing
    // yet, and it is the message that asks for that consent.
    let (m, created) = state
        .store
        .enqueue_message(
            NewMessage {
                idempotency_key,
                contact_id: contact.id,
                template_id: template.id,
                template_version: template.version,
                channel: template.channel.clone(),
                transactional: true,
                data: json!({"data": data, "confirm": key}),
                origin: None,
            },
            now,
        )
        .await?;
    if created {
        messaging.wake();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "contact_id": contact.id,
            "subscription": key,
            "state": "pending",
            "message_id": m.id,
        })),
    ))
}

async fn set_subscription(
    state: &AppState,
    contact: nudge_core::ContactId,
    key: &str,
    to: Subscription,
    now: nudge_core::Millis,
) -> Result<(), ApiError> {
    let patch = ContactPatch {
        subscriptions: BTreeMap::from([(key.to_string(), to)]),
        ..Default::default()
    };
    state.store.update_contact(contact, &patch, now).await?;
    state.segments.wake();
    Ok(())
}
