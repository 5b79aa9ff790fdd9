//! Event retention's rules (docs/operations.md, "Retention"): the workspace setting
//! `events_retention_days`, the cutoff it implies, and which segment conditions read
//! events older than it — those a segment is saved with get a warning naming them.
//!
//! Only stored events are removed by retention. What a condition reads elsewhere
//! (traits, lead scores, predictions and order totals materialised as traits,
//! subscriptions, segment membership) is not touched, so only the conditions reading
//! events are looked at: `event`, `event_time`, `aggregate` and `message` (which reads
//! the message events Nudge records). A warned condition on `Order Completed` that the
//! kept order totals answer (`crate::orders::kept_instead`) names their trait.

use crate::Millis;
use crate::segment::{Condition, DAY_MS, FirstLast, TimeTest, Window, date_of};
use serde_json::Value;

/// The workspace setting's key (and the API field's name).
pub const SETTING: &str = "events_retention_days";

/// The longest retention accepted: 100 years.
pub const MAX_DAYS: u32 = 36_500;

/// Parses the setting's value: a whole number of days from 1 to [`MAX_DAYS`], or
/// `null` (keep every event). The error says what is wrong.
pub fn parse_days(value: &Value) -> Result<Option<u32>, String> {
    let bad = || format!("{SETTING} must be a whole number of days from 1 to {MAX_DAYS}, or null to keep every event");
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let days = n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
                .ok_or_else(bad)?;
            if (1..=u64::from(MAX_DAYS)).contains(&days) {
                Ok(Some(days as u32))
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

/// Events with a `timestamp` before this are removed when `days` are kept at `now`.
pub fn cutoff(now: Millis, days: u32) -> Millis {
    now.saturating_sub(Millis::from(days) * DAY_MS)
}

/// A condition that reads events older than the retention period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionWarning {
    /// The condition's path in the definition (`$.conditions[1]`).
    pub path: String,
    pub message: String,
}

/// The conditions of `definition` that read events older than `days` days at `now`
/// (so their answer changes once retention removes them), with why.
pub fn warnings(definition: &Condition, days: u32, now: Millis) -> Vec<RetentionWarning> {
    let mut out = Vec::new();
    visit(definition, "$", days, now, &mut out);
    out
}

fn visit(c: &Condition, path: &str, days: u32, now: Millis, out: &mut Vec<RetentionWarning>) {
    let kept = Millis::from(days) * DAY_MS;
    // What reads the same from the totals Nudge keeps apart from the events, if anything.
    let instead = match crate::orders::kept_instead(c) {
        Some(t) => format!("; compare the trait {t:?} instead, which Nudge keeps past retention"),
        None => String::new(),
    };
    let mut warn = |why: String| {
        out.push(RetentionWarning {
            path: path.to_string(),
            message: format!(
                "{why}, but events are kept {days} days (events_retention_days): older ones are deleted{instead}"
            ),
        })
    };
    let window = |w: &Window| -> Option<String> {
        match w {
            Window::Ever => Some("reads every event ever (no window)".into()),
            Window::LastDays(d) if Millis::from(*d) * DAY_MS > kept => Some(format!("its window is the last {d} days")),
            Window::LastHours(h) if Millis::from(*h) * 3_600_000 > kept => {
                Some(format!("its window is the last {h} hours"))
            }
            Window::Between { from, .. } if date_of(&Value::String(from.clone())).is_some_and(|t| t < now - kept) => {
                Some(format!("its window starts at {from}"))
            }
            _ => None,
        }
    };
    match c {
        Condition::And { conditions } | Condition::Or { conditions } => {
            for (i, c) in conditions.iter().enumerate() {
                visit(c, &format!("{path}.conditions[{i}]"), days, now, out);
            }
        }
        Condition::Not { condition } => visit(condition, &format!("{path}.condition"), days, now, out),
        Condition::Event { event, window: w, .. } | Condition::Aggregate { event, window: w, .. } => {
            if let Some(why) = window(w) {
                warn(format!("the condition on {event:?} {why}"));
            }
        }
        Condition::Message { action, window: w, .. } => {
            if let Some(why) = window(w) {
                warn(format!("the condition on {:?} {why}", action.event_name()));
            }
        }
        Condition::EventTime { event, which, test, .. } => {
            // The last time within a span retention keeps is read from kept events;
            // anything else (the first time, a last time compared with a date or
            // older than a span) needs the events retention deletes.
            let within_kept = matches!(which, FirstLast::Last)
                && matches!(test, TimeTest::WithinLastDays { .. } | TimeTest::WithinLastHours { .. })
                && test.relative().is_some_and(|(_, span)| span <= kept);
            if !within_kept {
                let which = match which {
                    FirstLast::First => "first",
                    FirstLast::Last => "last",
                };
                warn(format!(
                    "the condition on the {which} {event:?} reads events older than its span"
                ));
            }
        }
        Condition::Trait { .. }
        | Condition::Subscription { .. }
        | Condition::RandomBucket { .. }
        | Condition::Segment { .. }
        | Condition::LeadScore { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::parse_condition;
    use serde_json::json;

    const NOW: Millis = 1_800_000_000_000;

    fn paths(definition: Value, days: u32) -> Vec<String> {
        let c = parse_condition(&definition).unwrap();
        warnings(&c, days, NOW).into_iter().map(|w| w.path).collect()
    }

    #[test]
    fn the_setting_is_a_positive_whole_number_of_days_or_null() {
        assert_eq!(parse_days(&json!(null)), Ok(None));
        assert_eq!(parse_days(&json!(90)), Ok(Some(90)));
        assert_eq!(parse_days(&json!(90.0)), Ok(Some(90)));
        assert_eq!(parse_days(&json!(MAX_DAYS)), Ok(Some(MAX_DAYS)));
        for bad in [
            json!(0),
            json!(-3),
            json!(1.5),
            json!("90"),
            json!(true),
            json!(MAX_DAYS + 1),
        ] {
            let e = parse_days(&bad).unwrap_err();
            assert!(
                e.starts_with("events_retention_days must be a whole number"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_cutoff_is_the_retention_period_before_now() {
        assert_eq!(cutoff(NOW, 30), NOW - 30 * DAY_MS);
    }

    #[test]
    fn conditions_reading_events_older_than_retention_are_named() {
        let def = json!({"type": "and", "conditions": [
            {"type": "event", "event": "Order Completed", "window": {"last_days": 30}},
            {"type": "event", "event": "Order Completed"},
            {"type": "aggregate", "event": "Order Completed", "function": "sum", "property": "total",
             "window": {"last_days": 365}, "op": "greater_than", "value": 100},
            {"type": "not", "condition": {"type": "message", "action": "opened", "window": {"last_hours": 24}}},
            {"type": "event_time", "event": "Order Completed", "which": "last", "op": "within_last_days", "days": 7},
            {"type": "event_time", "event": "Signed Up", "which": "first", "op": "within_last_days", "days": 7},
            {"type": "event_time", "event": "Order Completed", "which": "last", "op": "not_within_last_days", "days": 60},
            {"type": "event", "event": "Visited", "window": {"between": {"from": "2020-01-01", "to": "2020-02-01"}}},
            {"type": "trait", "trait": "plan", "op": "equals", "value": "pro"}
        ]});
        assert_eq!(
            paths(def.clone(), 90),
            [
                "$.conditions[1]",
                "$.conditions[2]",
                "$.conditions[5]",
                "$.conditions[6]",
                "$.conditions[7]"
            ]
        );
        // A shorter retention reaches the 30-day window too, and the 7-day last time still fits.
        assert_eq!(paths(def, 10)[..2], ["$.conditions[0]", "$.conditions[1]"]);
        let c = parse_condition(&json!({"type": "event", "event": "Order Completed"})).unwrap();
        let w = &warnings(&c, 90, NOW)[0];
        assert_eq!(w.path, "$");
        assert_eq!(
            w.message,
            "the condition on \"Order Completed\" reads every event ever (no window), but events are kept 90 days \
             (events_retention_days): older ones are deleted; compare the trait \"orders_count\" instead, which \
             Nudge keeps past retention"
        );
    }

    #[test]
    fn warned_order_conditions_name_the_kept_trait_where_it_answers_them() {
        let message = |v: Value| {
            let c = parse_condition(&v).unwrap();
            warnings(&c, 90, NOW).into_iter().map(|w| w.message).collect::<Vec<_>>()
        };
        let first = message(
            json!({"type": "event_time", "event": "Order Completed", "which": "first",
                                   "op": "before", "value": "2026-01-01"}),
        );
        assert!(first[0].ends_with("compare the trait \"first_order_at\" instead, which Nudge keeps past retention"));
        let revenue = message(
            json!({"type": "aggregate", "event": "Order Completed", "function": "sum",
                                     "property": "revenue", "op": "greater_or_equal", "value": 500}),
        );
        assert!(revenue[0].contains("\"orders_revenue\""), "{revenue:?}");
        // Warned, but the kept (lifetime) totals do not answer a two-year window or
        // an average.
        for v in [
            json!({"type": "event", "event": "Order Completed", "window": {"last_days": 730}}),
            json!({"type": "aggregate", "event": "Order Completed", "function": "avg", "property": "total",
                   "op": "greater_than", "value": 50}),
        ] {
            let m = message(v);
            assert_eq!(m.len(), 1);
            assert!(!m[0].contains("compare the trait"), "{m:?}");
        }
        // Not warned (within the period): nothing to point at.
        assert!(message(json!({"type": "event", "event": "Order Completed", "window": {"last_days": 30}})).is_empty());
    }

    #[test]
    fn conditions_reading_no_events_are_never_named() {
        let def = json!({"type": "or", "conditions": [
            {"type": "trait", "trait": "plan", "op": "equals", "value": "pro"},
            {"type": "lead_score", "op": "greater_than", "value": 10},
            {"type": "subscription", "channel": "email", "state": "subscribed"},
            {"type": "event", "event": "Order Completed", "window": {"last_days": 7}}
        ]});
        assert!(paths(def, 7).is_empty());
    }
}
