//! Ready-made segments matching the product brief. Event and trait names follow
//! Segment's e-commerce spec (`Order Completed` with `total`, `coupon`; `Product
//! Added`; `Checkout Started`) and the email events Nudge records (`Email Opened`,
//! `Email Link Clicked`).

use super::Condition;
use serde_json::json;

pub struct ReadyMade {
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub definition: Condition,
    /// Left out of every other segment (test contacts).
    pub administrative: bool,
}

fn def(v: serde_json::Value) -> Condition {
    super::parse_condition(&v).unwrap_or_else(|e| panic!("ready-made segment is invalid: {e}"))
}

pub fn ready_made() -> Vec<ReadyMade> {
    vec![
        ReadyMade {
            key: "new_customers",
            name: "New customers",
            description: "Exactly one completed order.",
            definition: def(
                json!({"type": "event", "event": "Order Completed", "count": {"op": "exactly", "value": 1}}),
            ),
            administrative: false,
        },
        ReadyMade {
            key: "repeat_customers",
            name: "Repeat customers",
            description: "Two or more completed orders.",
            definition: def(
                json!({"type": "event", "event": "Order Completed", "count": {"op": "at_least", "value": 2}}),
            ),
            administrative: false,
        },
        ReadyMade {
            key: "high_value",
            name: "High value (RFM top)",
            description: "Spent 300 or more over the last year, at least 3 orders, and ordered in the last 90 days.",
            definition: def(json!({"type": "and", "conditions": [
                {"type": "aggregate", "event": "Order Completed", "function": "sum", "property": "total",
                 "window": {"last_days": 365}, "op": "greater_or_equal", "value": 300},
                {"type": "event", "event": "Order Completed", "count": {"op": "at_least", "value": 3}},
                {"type": "event_time", "event": "Order Completed", "which": "last", "op": "within_last_days", "days": 90}
            ]})),
            administrative: false,
        },
        ReadyMade {
            key: "at_risk",
            name: "At risk",
            description: "Customers with no order in the last 90 days.",
            definition: def(
                json!({"type": "event_time", "event": "Order Completed", "which": "last",
                                   "op": "not_within_last_days", "days": 90}),
            ),
            administrative: false,
        },
        ReadyMade {
            key: "abandoned_cart",
            name: "Abandoned cart",
            description: "Last added to cart more than an hour ago (and within the last 7 days), with no checkout or order in the last 24 hours.",
            definition: def(json!({"type": "and", "conditions": [
                {"type": "event_time", "event": "Product Added", "which": "last", "op": "not_within_last_hours", "hours": 1},
                {"type": "event_time", "event": "Product Added", "which": "last", "op": "within_last_days", "days": 7},
                {"type": "not", "condition": {"type": "event", "event": "Checkout Started", "window": {"last_hours": 24}}},
                {"type": "not", "condition": {"type": "event", "event": "Order Completed", "window": {"last_hours": 24}}}
            ]})),
            administrative: false,
        },
        ReadyMade {
            key: "coupon_users",
            name: "Coupon users (price shoppers)",
            description: "At least one order paid with a coupon.",
            definition: def(json!({"type": "event", "event": "Order Completed",
                                   "where": [{"property": "coupon", "op": "exists"}]})),
            administrative: false,
        },
        ReadyMade {
            key: "email_engaged",
            name: "Engaged with email",
            description: "Opened or clicked an email in the last 30 days.",
            definition: def(json!({"type": "or", "conditions": [
                {"type": "event", "event": "Email Opened", "window": {"last_days": 30}},
                {"type": "event", "event": "Email Link Clicked", "window": {"last_days": 30}}
            ]})),
            administrative: false,
        },
        ReadyMade {
            key: "email_not_engaged",
            name: "Not engaged with email",
            description: "Subscribed to email, but no open or click in the last 90 days.",
            definition: def(json!({"type": "and", "conditions": [
                {"type": "subscription", "channel": "email", "state": "subscribed"},
                {"type": "not", "condition": {"type": "event", "event": "Email Opened", "window": {"last_days": 90}}},
                {"type": "not", "condition": {"type": "event", "event": "Email Link Clicked", "window": {"last_days": 90}}}
            ]})),
            administrative: false,
        },
        ReadyMade {
            key: "birthday_this_month",
            name: "Birthday this month",
            description: "The `birthday` trait falls in the current month (in the contact's time zone).",
            definition: def(json!({"type": "trait", "trait": "birthday", "op": "anniversary_this_month"})),
            administrative: false,
        },
        ReadyMade {
            key: "test_contacts",
            name: "Test contacts",
            description: "Contacts with the trait `test_contact: true`, the audience of test sends.",
            definition: def(json!({"type": "trait", "trait": "test_contact", "op": "equals", "value": true})),
            administrative: true,
        },
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_ready_made_segment_is_valid_and_named_once() {
        let all = super::ready_made();
        assert_eq!(all.len(), 10);
        let keys: std::collections::HashSet<_> = all.iter().map(|r| r.key).collect();
        assert_eq!(keys.len(), all.len());
    }
}
