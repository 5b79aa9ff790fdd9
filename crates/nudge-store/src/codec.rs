//! Codecs both backends use for the columns they share: what a Segment call keeps
//! beside its columns, JSON objects as text, subscriptions.

use crate::{Result, StoreError};
use nudge_core::{Call, Contact, IdentityKind, Subscription};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The fields of a message that have no column of their own.
pub(crate) fn extra_of(m: &Call) -> Option<Map<String, Value>> {
    let mut extra = Map::new();
    if !m.integrations.is_empty() {
        extra.insert("integrations".into(), Value::Object(m.integrations.clone()));
    }
    if let Some(t) = m.original_timestamp {
        extra.insert("originalTimestamp".into(), nudge_core::format_millis(t).into());
    }
    if let Some(t) = m.sent_at {
        extra.insert("sentAt".into(), nudge_core::format_millis(t).into());
    }
    if let Some(p) = &m.previous_id {
        extra.insert("previousId".into(), p.clone().into());
    }
    if let Some(g) = &m.group_id {
        extra.insert("groupId".into(), g.clone().into());
    }
    (!extra.is_empty()).then_some(extra)
}

pub(crate) fn subscriptions_json(s: &BTreeMap<String, Subscription>) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn parse_subscriptions(s: &str) -> Result<BTreeMap<String, Subscription>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("subscriptions: {e}")))
}

pub(crate) fn json_text(map: &Map<String, Value>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn parse_object(s: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("JSON column: {e}")))
}

/// Adds a stored identity (`identities.kind`, `value`) to a loaded contact: a user id
/// other than the primary one is an alias, an anonymous id is listed.
pub(crate) fn fold_identity(contact: &mut Contact, kind: &str, value: String) -> Result<()> {
    match IdentityKind::parse(kind) {
        Some(IdentityKind::UserId) if Some(&value) != contact.user_id.as_ref() => contact.alias_user_ids.push(value),
        Some(IdentityKind::UserId) => {}
        Some(IdentityKind::AnonymousId) => contact.anonymous_ids.push(value),
        None => return Err(StoreError::Corrupt(format!("identity kind {kind:?}"))),
    }
    Ok(())
}
