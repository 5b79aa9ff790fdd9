//! Who may be sent what: the pure rules, applied by the delivery worker right before
//! a message leaves (consent can change while a message waits).
//!
//! Subscriptions live on the contact: the channel (`email`, `sms`, ...) and topics
//! within it (`email:newsletter`). No entry means subscribed (consent collected
//! where the contact was created); `unsubscribed` and `pending` (double opt-in not
//! yet confirmed) both block marketing messages. Transactional messages (receipts,
//! password resets) go out regardless; a suppressed address blocks everything.

use nudge_core::{Contact, Subscription};

/// The subscription key of a topic on a channel.
pub fn topic_key(channel: &str, topic: &str) -> String {
    format!("{channel}:{topic}")
}

/// `Err(reason)` when a marketing message must not go to this contact.
pub fn check(contact: &Contact, channel: &str, topic: Option<&str>, transactional: bool) -> Result<(), String> {
    if transactional {
        return Ok(());
    }
    let blocked = |key: &str| match contact.subscriptions.get(key) {
        Some(Subscription::Unsubscribed) => Some(format!("the contact unsubscribed from {key}")),
        Some(Subscription::Pending) => Some(format!("the contact has not confirmed the {key} subscription yet")),
        _ => None,
    };
    if let Some(reason) = blocked(channel) {
        return Err(reason);
    }
    if let Some(t) = topic
        && let Some(reason) = blocked(&topic_key(channel, t))
    {
        return Err(reason);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(subs: &[(&str, Subscription)]) -> Contact {
        let mut c = Contact::new(1, 0);
        c.subscriptions = subs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        c
    }

    #[test]
    fn marketing_needs_channel_and_topic_consent_transactional_does_not() {
        let none = contact(&[]);
        assert!(check(&none, "email", Some("newsletter"), false).is_ok());
        let out = contact(&[("email", Subscription::Unsubscribed)]);
        assert!(
            check(&out, "email", None, false)
                .unwrap_err()
                .contains("unsubscribed from email")
        );
        assert!(check(&out, "email", None, true).is_ok());
        assert!(check(&out, "sms", None, false).is_ok());
        let topic_out = contact(&[("email:newsletter", Subscription::Unsubscribed)]);
        assert!(check(&topic_out, "email", Some("newsletter"), false).is_err());
        assert!(check(&topic_out, "email", Some("offers"), false).is_ok());
        assert!(check(&topic_out, "email", None, false).is_ok());
        let pending = contact(&[("email", Subscription::Pending)]);
        assert!(
            check(&pending, "email", None, false)
                .unwrap_err()
                .contains("not confirmed")
        );
    }
}
