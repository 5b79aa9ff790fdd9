//! A contact's orders as Nudge keeps them apart from the events, so that event
//! retention (`crate::retention`) does not shorten them: how many `Order Completed`
//! events the contact has, their revenue, the first and the last order's time.
//!
//! The rules, decided once here: an order is a stored `track` event named
//! [`ORDER_COMPLETED`]; its revenue is [`revenue_of`] (`revenue`, else `total`, else
//! `value`; 0 without any), the rule attribution and the lifetime-value models use; its
//! time is the event's `timestamp` (an order that arrives late with an older time
//! moves the first order back). Totals add up by [`OrderTotals::add`], which is also how
//! a merge combines two contacts' totals. The store keeps them per contact and
//! materialises them as the traits [`TRAITS`] ([`OrderTotals::traits`]), so segments,
//! templates and the contact's profile read them like any trait.

use crate::Millis;
use crate::call::{Call, CallKind};
use crate::journey::revenue_of;
use crate::protocol::event_names::ORDER_COMPLETED;
use crate::segment::{AggregateFn, Condition, FirstLast, Window};
use serde_json::{Map, Value, json};

/// The number of orders (a whole number).
pub const COUNT_TRAIT: &str = "orders_count";
/// The sum of the orders' revenue (rounded to 4 decimals).
pub const REVENUE_TRAIT: &str = "orders_revenue";
/// The first order's time (ISO 8601, UTC, milliseconds).
pub const FIRST_TRAIT: &str = "first_order_at";
/// The last order's time (ISO 8601, UTC, milliseconds).
pub const LAST_TRAIT: &str = "last_order_at";

/// The traits orders are materialised under, in [`OrderTotals::traits`]'s order.
pub const TRAITS: [&str; 4] = [COUNT_TRAIT, REVENUE_TRAIT, FIRST_TRAIT, LAST_TRAIT];

/// A contact's orders, or some of them (one event's, a batch's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderTotals {
    pub count: i64,
    pub revenue: f64,
    pub first_at: Millis,
    pub last_at: Millis,
}

impl OrderTotals {
    /// One order at `at` with these properties.
    pub fn order(at: Millis, properties: &Map<String, Value>) -> Self {
        OrderTotals {
            count: 1,
            revenue: revenue_of(properties).unwrap_or(0.0),
            first_at: at,
            last_at: at,
        }
    }

    /// The totals of a purchase history as the lifetime-value models read it from the
    /// events (`crate::predict::Purchase`: each order's time, and its value by
    /// [`revenue_of`], 0 without one); `None` without a purchase.
    pub fn of_purchases(purchases: &[crate::predict::Purchase]) -> Option<Self> {
        purchases
            .iter()
            .map(|p| OrderTotals {
                count: 1,
                revenue: p.value,
                first_at: p.at,
                last_at: p.at,
            })
            .reduce(|mut a, b| {
                a.add(&b);
                a
            })
    }

    /// The order a call is, if it is one: a `track` named [`ORDER_COMPLETED`], at its
    /// (skew-corrected) timestamp.
    pub fn of_call(call: &Call) -> Option<Self> {
        (call.kind == CallKind::Track && call.event.as_deref() == Some(ORDER_COMPLETED))
            .then(|| OrderTotals::order(call.timestamp, &call.properties))
    }

    /// Adds `other`'s orders: counts and revenue summed, the earlier first order, the
    /// later last order. Commutative, so the order in which orders (or two merged
    /// contacts' totals) arrive does not matter.
    pub fn add(&mut self, other: &OrderTotals) {
        self.count += other.count;
        self.revenue += other.revenue;
        self.first_at = self.first_at.min(other.first_at);
        self.last_at = self.last_at.max(other.last_at);
    }

    /// `a` and `b` together (either may be missing).
    pub fn combined(a: Option<OrderTotals>, b: Option<OrderTotals>) -> Option<OrderTotals> {
        match (a, b) {
            (Some(mut a), Some(b)) => {
                a.add(&b);
                Some(a)
            }
            (a, b) => a.or(b),
        }
    }

    /// The traits these totals are materialised as ([`TRAITS`]): the count as a whole
    /// number, the revenue rounded to 4 decimals (so a sum such as 19.99 + 5.01 reads
    /// 25, not 25.000000000000004), the times as ISO 8601 strings, which segments'
    /// date tests (`before`, `after`, `within_last_days`) compare as instants.
    pub fn traits(&self) -> Map<String, Value> {
        let values = [
            json!(self.count),
            json!((self.revenue * 10_000.0).round() / 10_000.0),
            json!(crate::format_millis(self.first_at)),
            json!(crate::format_millis(self.last_at)),
        ];
        TRAITS.iter().map(|t| t.to_string()).zip(values).collect()
    }
}

/// The trait that keeps, past event retention, what a segment condition reads from
/// `Order Completed` events, when one does: the condition names the event with no
/// property filter and no window (the kept totals are lifetime ones), and reads
/// the count of orders (`event`, `aggregate` `count`), their sum of `revenue`,
/// `total` or `value` (`aggregate` `sum`: [`REVENUE_TRAIT`] is each order's revenue by
/// [`revenue_of`]), or the first or last order's time (`event_time`).
pub fn kept_instead(condition: &Condition) -> Option<&'static str> {
    let orders =
        |event: &str, filters: &[crate::segment::PropertyFilter]| event == ORDER_COMPLETED && filters.is_empty();
    match condition {
        Condition::Event {
            event,
            filters,
            window: Window::Ever,
            ..
        } if orders(event, filters) => Some(COUNT_TRAIT),
        Condition::Aggregate {
            event,
            filters,
            function,
            property,
            window: Window::Ever,
            ..
        } if orders(event, filters) => match function {
            AggregateFn::Count => Some(COUNT_TRAIT),
            AggregateFn::Sum if matches!(property.as_deref(), Some("revenue" | "total" | "value")) => {
                Some(REVENUE_TRAIT)
            }
            _ => None,
        },
        Condition::EventTime {
            event, filters, which, ..
        } if orders(event, filters) => Some(match which {
            FirstLast::First => FIRST_TRAIT,
            FirstLast::Last => LAST_TRAIT,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::parse_condition;

    fn props(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn call(v: Value) -> Call {
        let received = crate::Received {
            at: 1_800_000_000_000,
            ip: None,
        };
        let body = serde_json::to_vec(&json!({ "batch": [v] })).unwrap();
        crate::parse_batch(&body, &received, &mut || "id".into())
            .unwrap()
            .messages
            .remove(0)
    }

    #[test]
    fn an_order_is_a_track_named_order_completed_with_its_revenue_and_time() {
        let o = OrderTotals::of_call(&call(json!({
            "type": "track", "userId": "u", "event": "Order Completed",
            "timestamp": "2026-03-01T10:00:00Z", "properties": {"total": 30, "value": 1}
        })))
        .unwrap();
        let at = crate::parse_instant("2026-03-01T10:00:00Z").unwrap();
        assert_eq!(
            o,
            OrderTotals {
                count: 1,
                revenue: 30.0,
                first_at: at,
                last_at: at
            }
        );
        // No revenue, total or value (or not a number): counted, with no revenue.
        let o = OrderTotals::of_call(&call(json!({
            "type": "track", "userId": "u", "event": "Order Completed", "properties": {"revenue": "12"}
        })))
        .unwrap();
        assert_eq!((o.count, o.revenue), (1, 0.0));
        for other in [
            json!({"type": "track", "userId": "u", "event": "Order Refunded", "properties": {"total": 5}}),
            json!({"type": "page", "userId": "u", "name": "Order Completed"}),
            json!({"type": "identify", "userId": "u", "traits": {"revenue": 5}}),
        ] {
            assert_eq!(OrderTotals::of_call(&call(other.clone())), None, "{other}");
        }
    }

    #[test]
    fn totals_add_in_any_order_and_a_late_older_order_moves_the_first_back() {
        let a = OrderTotals::order(200, &props(json!({"revenue": 10.5})));
        let b = OrderTotals::order(300, &props(json!({"total": 4})));
        let late = OrderTotals::order(100, &props(json!({})));
        let mut x = a;
        x.add(&b);
        x.add(&late);
        let mut y = late;
        y.add(&b);
        y.add(&a);
        assert_eq!(x, y);
        assert_eq!(
            x,
            OrderTotals {
                count: 3,
                revenue: 14.5,
                first_at: 100,
                last_at: 300
            }
        );
        assert_eq!(OrderTotals::combined(Some(a), None), Some(a));
        assert_eq!(OrderTotals::combined(None, Some(b)), Some(b));
        assert_eq!(OrderTotals::combined(None, None), None);
        let purchases = [
            crate::predict::Purchase { at: 300, value: 4.0 },
            crate::predict::Purchase { at: 100, value: 0.0 },
            crate::predict::Purchase { at: 200, value: 10.5 },
        ];
        assert_eq!(OrderTotals::of_purchases(&purchases), Some(x));
        assert_eq!(OrderTotals::of_purchases(&[]), None);
        let both = OrderTotals::combined(Some(a), Some(b)).unwrap();
        assert_eq!(
            (both.count, both.revenue, both.first_at, both.last_at),
            (2, 14.5, 200, 300)
        );
    }

    #[test]
    fn traits_are_a_count_a_rounded_revenue_and_iso_times() {
        let mut t = OrderTotals::order(
            crate::parse_instant("2025-12-31T23:59:59.250Z").unwrap(),
            &props(json!({"revenue": 19.99})),
        );
        t.add(&OrderTotals::order(
            crate::parse_instant("2026-02-01T08:00:00Z").unwrap(),
            &props(json!({"revenue": 5.01})),
        ));
        let traits = t.traits();
        assert_eq!(traits.keys().map(String::as_str).collect::<Vec<_>>(), TRAITS);
        assert_eq!(traits[COUNT_TRAIT], json!(2));
        assert_eq!(traits[REVENUE_TRAIT], json!(25.0));
        assert_eq!(traits[FIRST_TRAIT], json!("2025-12-31T23:59:59.250Z"));
        assert_eq!(traits[LAST_TRAIT], json!("2026-02-01T08:00:00.000Z"));
        // Segment conditions on them: a date test and a numeric one.
        let facts = crate::segment::Facts {
            contact_id: 1,
            traits,
            subscriptions: Default::default(),
            events: Vec::new(),
            segments: Default::default(),
        };
        let now = crate::parse_instant("2026-03-01T00:00:00Z").unwrap();
        for (condition, holds) in [
            (
                json!({"type": "trait", "trait": "first_order_at", "op": "before", "value": "2026-01-01"}),
                true,
            ),
            (
                json!({"type": "trait", "trait": "last_order_at", "op": "before", "value": "2026-01-01"}),
                false,
            ),
            (
                json!({"type": "trait", "trait": "orders_revenue", "op": "greater_or_equal", "value": 25}),
                true,
            ),
            (
                json!({"type": "trait", "trait": "orders_count", "op": "greater_than", "value": 2}),
                false,
            ),
            (
                json!({"type": "trait", "trait": "last_order_at", "op": "within_last_days", "days": 30}),
                true,
            ),
        ] {
            let c = parse_condition(&condition).unwrap();
            assert_eq!(c.matches(&facts, now), holds, "{condition}");
        }
    }

    #[test]
    fn order_conditions_without_filters_or_windows_have_a_kept_trait() {
        let kept = |v: Value| kept_instead(&parse_condition(&v).unwrap());
        assert_eq!(
            kept(json!({"type": "event", "event": "Order Completed"})),
            Some(COUNT_TRAIT)
        );
        assert_eq!(
            kept(json!({"type": "event", "event": "Order Completed", "count": {"op": "at_least", "value": 3}})),
            Some(COUNT_TRAIT)
        );
        assert_eq!(
            kept(
                json!({"type": "aggregate", "event": "Order Completed", "function": "count",
                        "op": "greater_than", "value": 1})
            ),
            Some(COUNT_TRAIT)
        );
        assert_eq!(
            kept(
                json!({"type": "aggregate", "event": "Order Completed", "function": "sum", "property": "total",
                        "op": "greater_than", "value": 100})
            ),
            Some(REVENUE_TRAIT)
        );
        assert_eq!(
            kept(
                json!({"type": "event_time", "event": "Order Completed", "which": "first",
                        "op": "before", "value": "2026-01-01"})
            ),
            Some(FIRST_TRAIT)
        );
        assert_eq!(
            kept(
                json!({"type": "event_time", "event": "Order Completed", "which": "last",
                        "op": "not_within_last_days", "days": 400})
            ),
            Some(LAST_TRAIT)
        );
        for none in [
            // A window: the kept totals are lifetime ones.
            json!({"type": "event", "event": "Order Completed", "window": {"last_days": 800}}),
            json!({"type": "aggregate", "event": "Order Completed", "function": "sum", "property": "total",
                   "window": {"last_days": 800}, "op": "greater_than", "value": 100}),
            // A property filter, another property, another function, another event.
            json!({"type": "event", "event": "Order Completed", "where": [{"property": "total", "op": "greater_than", "value": 5}]}),
            json!({"type": "aggregate", "event": "Order Completed", "function": "sum", "property": "quantity",
                   "op": "greater_than", "value": 1}),
            json!({"type": "aggregate", "event": "Order Completed", "function": "avg", "property": "total",
                   "op": "greater_than", "value": 1}),
            json!({"type": "event", "event": "Signed Up"}),
            json!({"type": "trait", "trait": "orders_count", "op": "greater_than", "value": 1}),
        ] {
            assert_eq!(kept(none.clone()), None, "{none}");
        }
    }
}
