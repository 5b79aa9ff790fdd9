//! Contacts: one profile per person, known (`user_id`) or anonymous (`anonymous_id`).

use crate::Millis;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Internal, storage-assigned identifier of a contact. Stable for the contact's
/// lifetime; when a contact is merged into another its id keeps resolving to the
/// survivor.
pub type ContactId = i64;

/// The kinds of external identifiers that point at a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    UserId,
    AnonymousId,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::UserId => "user_id",
            IdentityKind::AnonymousId => "anonymous_id",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user_id" => Some(IdentityKind::UserId),
            "anonymous_id" => Some(IdentityKind::AnonymousId),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identity {
    pub kind: IdentityKind,
    pub value: String,
}

impl Identity {
    pub fn user(v: impl Into<String>) -> Self {
        Self {
            kind: IdentityKind::UserId,
            value: v.into(),
        }
    }
    pub fn anonymous(v: impl Into<String>) -> Self {
        Self {
            kind: IdentityKind::AnonymousId,
            value: v.into(),
        }
    }
}

/// Subscription state of a contact on one channel (`email`, `sms`, `push`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subscription {
    Subscribed,
    Unsubscribed,
    /// Waiting for a double opt-in confirmation: not subscribed yet.
    Pending,
}

impl Subscription {
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::Subscribed => "subscribed",
            Subscription::Unsubscribed => "unsubscribed",
            Subscription::Pending => "pending",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "subscribed" => Some(Subscription::Subscribed),
            "unsubscribed" => Some(Subscription::Unsubscribed),
            "pending" => Some(Subscription::Pending),
            _ => None,
        }
    }
}

/// Channels a subscription state can be kept for.
pub const CHANNELS: &[&str] = &["email", "sms", "push", "webhook"];

/// A contact's IANA time zone: the `timezone` (or `time_zone`) trait if it names
/// one, else `from_events` — the `context.timezone` of their latest event that had
/// one. `None`: use the workspace's.
pub fn time_zone(traits: &Map<String, Value>, from_events: Option<&str>) -> Option<String> {
    let valid = |tz: &str| {
        jiff::tz::TimeZone::get(tz.trim())
            .is_ok()
            .then(|| tz.trim().to_string())
    };
    ["timezone", "time_zone"]
        .iter()
        .filter_map(|k| traits.get(*k).and_then(Value::as_str))
        .find_map(valid)
        .or_else(|| from_events.and_then(valid))
}

/// Checks a subscription key: a channel (`email`) or a topic on a channel
/// (`email:newsletter`; topics are 1–64 of `a-z 0-9 _ - .`). `Err` says what is wrong.
pub fn check_subscription_key(key: &str) -> Result<(), String> {
    let (channel, topic) = match key.split_once(':') {
        Some((c, t)) => (c, Some(t)),
        None => (key, None),
    };
    if !CHANNELS.contains(&channel) {
        return Err(format!("unknown channel {channel:?}; one of {}", CHANNELS.join(", ")));
    }
    if let Some(t) = topic {
        let ok = (1..=64).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            return Err(format!(
                "topic {t:?} must be 1 to 64 characters of a-z, 0-9, '_', '-', '.'"
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    /// The primary known identifier, if the contact has identified.
    pub user_id: Option<String>,
    /// Further user ids joined by `alias` (besides `user_id`).
    pub alias_user_ids: Vec<String>,
    pub anonymous_ids: Vec<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub traits: Map<String, Value>,
    pub subscriptions: BTreeMap<String, Subscription>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_seen_at: Option<Millis>,
}

impl Contact {
    pub fn new(id: ContactId, now: Millis) -> Self {
        Self {
            id,
            user_id: None,
            alias_user_ids: Vec::new(),
            anonymous_ids: Vec::new(),
            email: None,
            phone: None,
            traits: Map::new(),
            subscriptions: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            last_seen_at: None,
        }
    }

    /// Applies a traits patch: keys with `null` are removed, others replace the old
    /// value. `email` and `phone` traits also set the contact's addressable fields.
    /// Returns whether anything changed.
    pub fn apply_traits(&mut self, patch: &Map<String, Value>) -> bool {
        let changed = merge_traits(&mut self.traits, patch);
        self.email = self.traits.get("email").and_then(normalize_email);
        self.phone = self.traits.get("phone").and_then(normalize_phone);
        changed
    }

    /// Folds `other` (the merged-away profile) into `self`: `self`'s values win, the
    /// other fills in what `self` lacks; identities and time ranges are united.
    pub fn absorb(&mut self, other: &Contact) {
        for (k, v) in &other.traits {
            if !self.traits.contains_key(k) {
                self.traits.insert(k.clone(), v.clone());
            }
        }
        if self.email.is_none() {
            self.email = other.email.clone();
        }
        if self.phone.is_none() {
            self.phone = other.phone.clone();
        }
        for (ch, s) in &other.subscriptions {
            self.subscriptions.entry(ch.clone()).or_insert(*s);
        }
        match (&self.user_id, &other.user_id) {
            (None, Some(u)) => self.user_id = Some(u.clone()),
            (Some(mine), Some(u)) if mine != u && !self.alias_user_ids.contains(u) => {
                self.alias_user_ids.push(u.clone())
            }
            _ => {}
        }
        for u in &other.alias_user_ids {
            if Some(u) != self.user_id.as_ref() && !self.alias_user_ids.contains(u) {
                self.alias_user_ids.push(u.clone());
            }
        }
        for a in &other.anonymous_ids {
            if !self.anonymous_ids.contains(a) {
                self.anonymous_ids.push(a.clone());
            }
        }
        self.created_at = self.created_at.min(other.created_at);
        self.last_seen_at = match (self.last_seen_at, other.last_seen_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// The names the contact goes by, best first, each once: the `name` trait, then
    /// `first_name` with `last_name`, then `firstName` with `lastName` (text traits,
    /// trimmed; empty ones left out). The UI shows the first; search looks in all.
    pub fn names(&self) -> Vec<String> {
        let text = |k: &str| self.traits.get(k).and_then(Value::as_str).unwrap_or("").trim();
        let full = |first: &str, last: &str| format!("{} {}", text(first), text(last)).trim().to_owned();
        let mut out: Vec<String> = Vec::new();
        for name in [
            text("name").to_owned(),
            full("first_name", "last_name"),
            full("firstName", "lastName"),
        ] {
            if !name.is_empty() && !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// The name to show for the contact: the first of [`Contact::names`], or empty.
    pub fn display_name(&self) -> String {
        self.names().into_iter().next().unwrap_or_default()
    }

    pub fn identities(&self) -> Vec<Identity> {
        let mut out: Vec<Identity> = self.user_id.iter().map(Identity::user).collect();
        out.extend(self.alias_user_ids.iter().map(Identity::user));
        out.extend(self.anonymous_ids.iter().map(Identity::anonymous));
        out
    }
}

/// Merges a traits patch into `traits` the way `identify` does: a `null` value removes
/// the trait, any other value replaces it. Returns whether anything changed.
pub fn merge_traits(traits: &mut Map<String, Value>, patch: &Map<String, Value>) -> bool {
    let mut changed = false;
    for (k, v) in patch {
        if v.is_null() {
            changed |= traits.remove(k).is_some();
        } else if traits.get(k) != Some(v) {
            traits.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// Lower-cases and trims an email trait; anything that is not a plausible address
/// (one `@`, something on both sides) is not used as the contact's email.
pub fn normalize_email(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim();
    let (local, domain) = s.split_once('@')?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') || s.contains(' ') {
        return None;
    }
    Some(s.to_ascii_lowercase())
}

/// Keeps `+` and digits of a phone trait; fewer than 5 digits is not a phone number.
pub fn normalize_phone(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let plus = s.trim_start().starts_with('+');
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() < 5 {
        return None;
    }
    Some(if plus { format!("+{digits}") } else { digits })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_come_from_the_name_traits_best_first() {
        let mut c = Contact::new(1, 0);
        assert!(c.names().is_empty());
        assert_eq!(c.display_name(), "");
        c.traits = obj(json!({"first_name": " Ada ", "last_name": "Lovelace", "lastName": "King"}));
        assert_eq!(c.names(), ["Ada Lovelace", "King"]);
        c.traits.insert("name".into(), json!("Ada Lovelace"));
        assert_eq!(c.names(), ["Ada Lovelace", "King"], "each once");
        c.traits.insert("name".into(), json!("  "));
        c.traits.insert("first_name".into(), json!(7));
        assert_eq!(
            c.names(),
            ["Lovelace", "King"],
            "blank and non-text traits are left out"
        );
        c.traits = obj(json!({"name": "Countess", "firstName": "Augusta"}));
        assert_eq!(c.display_name(), "Countess");
        assert_eq!(c.names(), ["Countess", "Augusta"]);
    }

    #[test]
    fn time_zones_come_from_traits_then_events() {
        let traits = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            time_zone(&traits(json!({"timezone": "Europe/Paris"})), Some("Asia/Tokyo")).as_deref(),
            Some("Europe/Paris")
        );
        assert_eq!(
            time_zone(&traits(json!({"timezone": "Mars/Olympus"})), Some("Asia/Tokyo")).as_deref(),
            Some("Asia/Tokyo"),
            "an unknown zone in the traits is ignored"
        );
        assert_eq!(
            time_zone(&traits(json!({"time_zone": "UTC"})), None).as_deref(),
            Some("UTC")
        );
        assert_eq!(time_zone(&traits(json!({})), None), None);
        assert_eq!(time_zone(&traits(json!({"timezone": 3})), Some("nope")), None);
    }

    #[test]
    fn subscription_keys_are_channels_or_topics() {
        for ok in ["email", "sms", "push", "email:newsletter", "email:product-news_2.0"] {
            assert_eq!(check_subscription_key(ok), Ok(()), "{ok}");
        }
        assert!(check_subscription_key("fax").unwrap_err().contains("unknown channel"));
        assert!(
            check_subscription_key("fax:news")
                .unwrap_err()
                .contains("unknown channel")
        );
        assert!(check_subscription_key("email:").unwrap_err().contains("topic"));
        assert!(check_subscription_key("email:News").unwrap_err().contains("topic"));
        assert!(check_subscription_key(&format!("email:{}", "a".repeat(65))).is_err());
    }

    #[test]
    fn identify_merges_traits_and_null_removes() {
        let mut c = Contact::new(1, 0);
        assert!(c.apply_traits(&obj(
            json!({"name": "Ada", "plan": "pro", "email": " Ada@Example.COM "})
        )));
        assert_eq!(c.email.as_deref(), Some("ada@example.com"));
        assert!(c.apply_traits(&obj(json!({"plan": null, "age": 36}))));
        assert_eq!(
            Value::Object(c.traits.clone()),
            json!({"name": "Ada", "email": " Ada@Example.COM ", "age": 36})
        );
        assert!(!c.apply_traits(&obj(json!({"age": 36}))), "same value is no change");
        assert!(
            !c.apply_traits(&obj(json!({"missing": null}))),
            "removing nothing is no change"
        );
        c.apply_traits(&obj(json!({"email": null})));
        assert_eq!(c.email, None);
    }

    #[test]
    fn emails_and_phones_are_normalized_or_ignored() {
        assert_eq!(normalize_email(&json!("a@b")), Some("a@b".into()));
        assert_eq!(normalize_email(&json!("nope")), None);
        assert_eq!(normalize_email(&json!("a@b@c")), None);
        assert_eq!(normalize_email(&json!(42)), None);
        assert_eq!(
            normalize_phone(&json!("+44 (20) 7946-0958")),
            Some("+442079460958".into())
        );
        assert_eq!(normalize_phone(&json!(5551234567_i64)), Some("5551234567".into()));
        assert_eq!(normalize_phone(&json!("12")), None);
    }

    #[test]
    fn absorb_keeps_survivor_values_and_unites_identities() {
        let mut known = Contact::new(1, 100);
        known.user_id = Some("u1".into());
        known.apply_traits(&obj(json!({"name": "Known", "email": "k@x.io"})));
        known.last_seen_at = Some(500);
        let mut anon = Contact::new(2, 50);
        anon.anonymous_ids = vec!["a1".into()];
        anon.apply_traits(&obj(json!({"name": "Anon", "utm": "ads"})));
        anon.subscriptions.insert("email".into(), Subscription::Unsubscribed);
        anon.last_seen_at = Some(900);
        known.absorb(&anon);
        assert_eq!(known.traits["name"], json!("Known"));
        assert_eq!(known.traits["utm"], json!("ads"));
        assert_eq!(known.anonymous_ids, vec!["a1".to_string()]);
        assert_eq!(known.created_at, 50);
        assert_eq!(known.last_seen_at, Some(900));
        assert_eq!(known.subscriptions["email"], Subscription::Unsubscribed);

        let mut other = Contact::new(3, 10);
        other.user_id = Some("u2".into());
        known.absorb(&other);
        assert_eq!(known.user_id.as_deref(), Some("u1"));
        assert_eq!(known.alias_user_ids, vec!["u2".to_string()]);
        assert_eq!(known.identities().len(), 3);
    }
}

/// What an identity lookup found: the contact and its primary user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub id: ContactId,
    pub user_id: Option<String>,
}

/// How a message's identifiers map onto contacts, decided before any write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The message belongs to this contact as is.
    Use(ContactId),
    /// A new contact, holding the user id (if any) and, when `with_anonymous`, the
    /// anonymous id.
    Create { with_anonymous: bool },
    /// This contact, after recording the message's identifiers it lacks: the user id
    /// becomes its primary user id if it has none, else an alias user id; the anonymous
    /// id (or alias `previousId`) is attached.
    Attach(ContactId),
    /// Fold `from` into `into` (events, identities, traits), then use `into`.
    Merge { from: ContactId, into: ContactId },
}

/// Identity resolution for `identify`/`track`/`page`/`screen`/`group`: `by_user` and
/// `by_anonymous` are what the message's `userId` and `anonymousId` resolve to today.
///
/// An anonymous visitor who identifies is merged into the known contact. An anonymous
/// id already attached to a *different known* user (a shared device) is not a reason
/// to merge two people: the message then goes to the user it names.
pub fn resolve(
    user_id: Option<&str>,
    by_user: Option<&Known>,
    anonymous_id: Option<&str>,
    by_anonymous: Option<&Known>,
) -> Resolution {
    match (by_user, by_anonymous) {
        (Some(u), Some(a)) if u.id == a.id => Resolution::Use(u.id),
        (Some(u), Some(a)) if a.user_id.is_none() => Resolution::Merge { from: a.id, into: u.id },
        (Some(u), Some(_)) => Resolution::Use(u.id),
        (Some(u), None) if anonymous_id.is_some() => Resolution::Attach(u.id),
        (Some(u), None) => Resolution::Use(u.id),
        (None, Some(a)) if user_id.is_none() => Resolution::Use(a.id),
        (None, Some(a)) if a.user_id.is_none() => Resolution::Attach(a.id),
        (None, Some(_)) => Resolution::Create { with_anonymous: false },
        (None, None) => Resolution::Create {
            with_anonymous: anonymous_id.is_some(),
        },
    }
}

/// Identity resolution for `alias`: `previousId` (an anonymous id or an older user id)
/// is the same person as `userId`. Two existing profiles are merged into the one named
/// by `userId`.
pub fn resolve_alias(by_user: Option<&Known>, by_previous: Option<&Known>) -> Resolution {
    match (by_user, by_previous) {
        (Some(u), Some(p)) if u.id == p.id => Resolution::Use(u.id),
        (Some(u), Some(p)) => Resolution::Merge { from: p.id, into: u.id },
        (Some(u), None) => Resolution::Attach(u.id),
        (None, Some(p)) => Resolution::Attach(p.id),
        (None, None) => Resolution::Create { with_anonymous: true },
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::*;

    fn k(id: ContactId, user: Option<&str>) -> Known {
        Known {
            id,
            user_id: user.map(str::to_string),
        }
    }

    #[test]
    fn resolution_table() {
        use Resolution::*;
        let (u1, a1) = (Some("u1"), Some("a1"));
        // Nobody known yet.
        assert_eq!(resolve(u1, None, None, None), Create { with_anonymous: false });
        assert_eq!(resolve(None, None, a1, None), Create { with_anonymous: true });
        assert_eq!(resolve(u1, None, a1, None), Create { with_anonymous: true });
        // Anonymous visitor identifies: the anonymous profile becomes the known one.
        assert_eq!(resolve(u1, None, a1, Some(&k(7, None))), Attach(7));
        // ... or, if the user is already known elsewhere, it is merged into them.
        assert_eq!(
            resolve(u1, Some(&k(3, u1)), a1, Some(&k(7, None))),
            Merge { from: 7, into: 3 }
        );
        // Shared device: the anonymous id belongs to another known user; no merge.
        assert_eq!(resolve(u1, Some(&k(3, u1)), a1, Some(&k(9, Some("u2")))), Use(3));
        assert_eq!(
            resolve(u1, None, a1, Some(&k(9, Some("u2")))),
            Create { with_anonymous: false }
        );
        // Already joined.
        assert_eq!(resolve(u1, Some(&k(3, u1)), a1, Some(&k(3, u1))), Use(3));
        assert_eq!(resolve(u1, Some(&k(3, u1)), None, None), Use(3));
        assert_eq!(resolve(u1, Some(&k(3, u1)), a1, None), Attach(3));
        assert_eq!(resolve(None, None, a1, Some(&k(9, Some("u2")))), Use(9));
    }

    #[test]
    fn alias_table() {
        use Resolution::*;
        assert_eq!(
            resolve_alias(Some(&k(1, Some("u"))), Some(&k(2, None))),
            Merge { from: 2, into: 1 }
        );
        assert_eq!(
            resolve_alias(Some(&k(1, Some("u"))), Some(&k(2, Some("old")))),
            Merge { from: 2, into: 1 }
        );
        assert_eq!(resolve_alias(Some(&k(1, Some("u"))), Some(&k(1, Some("u")))), Use(1));
        assert_eq!(resolve_alias(Some(&k(1, Some("u"))), None), Attach(1));
        assert_eq!(resolve_alias(None, Some(&k(2, None))), Attach(2));
        assert_eq!(resolve_alias(None, None), Create { with_anonymous: true });
    }
}
