//! The in-memory evaluator: one contact's facts, one condition, the time now.

use super::*;
use crate::contact::Subscription;
use crate::{ContactId, parse_instant};
use serde_json::Map;
use std::collections::BTreeMap;

/// A `track` event as conditions see it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFact {
    pub name: String,
    pub timestamp: Millis,
    pub properties: Map<String, Value>,
}

/// Everything conditions can read about one contact.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub contact_id: ContactId,
    pub traits: Map<String, Value>,
    pub subscriptions: BTreeMap<String, Subscription>,
    /// The contact's `track` events (any order).
    pub events: Vec<EventFact>,
    /// The segments the contact is currently a member of.
    pub segments: std::collections::BTreeSet<i64>,
}

impl Condition {
    /// Whether the contact with these facts is in the segment at `now`.
    pub fn matches(&self, facts: &Facts, now: Millis) -> bool {
        self.matches_in(facts, now, segment_zone(&facts.traits))
    }

    fn matches_in(&self, facts: &Facts, now: Millis, zone: Option<&str>) -> bool {
        match self {
            Condition::And { conditions } => conditions.iter().all(|c| c.matches_in(facts, now, zone)),
            Condition::Or { conditions } => conditions.iter().any(|c| c.matches_in(facts, now, zone)),
            Condition::Not { condition } => !condition.matches_in(facts, now, zone),
            Condition::Trait { name, test } => test.holds_in(facts.traits.get(name), now, zone),
            Condition::Event {
                event,
                filters,
                count,
                window,
            } => {
                let n = matching(facts, event, filters, now, zone)
                    .filter(|e| in_window(window, e.timestamp, now))
                    .count() as u64;
                let want = count.value as u64;
                match count.op {
                    CountOp::AtLeast => n >= want,
                    CountOp::AtMost => n <= want,
                    CountOp::Exactly => n == want,
                }
            }
            Condition::EventTime {
                event,
                filters,
                which,
                test,
            } => {
                let times = matching(facts, event, filters, now, zone).map(|e| e.timestamp);
                let t = match which {
                    FirstLast::First => times.min(),
                    FirstLast::Last => times.max(),
                };
                match t {
                    None => false,
                    Some(t) => test.holds(t, now),
                }
            }
            Condition::Aggregate {
                event,
                filters,
                function,
                property,
                window,
                op,
                value,
            } => {
                let events = matching(facts, event, filters, now, zone).filter(|e| in_window(window, e.timestamp, now));
                let result = match function {
                    AggregateFn::Count => Some(events.count() as f64),
                    _ => {
                        let key = property.as_deref().unwrap_or_default();
                        let nums: Vec<f64> = events.filter_map(|e| e.properties.get(key).and_then(number)).collect();
                        aggregate(*function, &nums)
                    }
                };
                result.is_some_and(|r| op.holds(r, *value))
            }
            Condition::Subscription { channel, state } => {
                let actual = facts.subscriptions.get(channel);
                match state {
                    SubState::Subscribed => actual == Some(&Subscription::Subscribed),
                    SubState::Unsubscribed => actual == Some(&Subscription::Unsubscribed),
                    SubState::Pending => actual == Some(&Subscription::Pending),
                    SubState::Unknown => actual.is_none(),
                }
            }
            Condition::RandomBucket { percent, salt } => bucket(facts.contact_id, salt) < *percent as i64,
            Condition::Segment { segment } => facts.segments.contains(segment),
            Condition::Message { .. } => self.as_event().is_some_and(|e| e.matches_in(facts, now, zone)),
            Condition::LeadScore { score, op, value } => {
                let score = match score {
                    Some(s) => named_score(&facts.traits, s),
                    None => lead_score(&facts.traits),
                };
                op.holds(score, *value)
            }
        }
    }

    /// The earliest moment after `now` at which the result could change with no new
    /// event or trait change, only because time passes ("no purchase in 90 days"
    /// flips 90 days after the last purchase). `None` if time alone never changes it.
    /// May be early (a re-check then finds no change), never late.
    pub fn next_change(&self, facts: &Facts, now: Millis) -> Option<Millis> {
        let mut best: Option<Millis> = None;
        let mut consider = |t: Millis| {
            if t > now {
                best = Some(best.map_or(t, |b: Millis| b.min(t)));
            }
        };
        self.collect_changes(facts, now, segment_zone(&facts.traits), &mut consider);
        best
    }

    fn collect_changes(&self, facts: &Facts, now: Millis, zone: Option<&str>, out: &mut impl FnMut(Millis)) {
        match self {
            Condition::And { conditions } | Condition::Or { conditions } => {
                conditions.iter().for_each(|c| c.collect_changes(facts, now, zone, out))
            }
            Condition::Not { condition } => condition.collect_changes(facts, now, zone, out),
            Condition::Trait { name, test } => {
                if let Some(d) = facts.traits.get(name).and_then(date_of) {
                    test.changes(d, now, zone, out)
                }
            }
            Condition::Event {
                event, filters, window, ..
            }
            | Condition::Aggregate {
                event, filters, window, ..
            } => {
                filter_changes(facts, event, filters, now, zone, out);
                window_changes(
                    window,
                    matching(facts, event, filters, now, zone).map(|e| e.timestamp),
                    out,
                )
            }
            Condition::EventTime {
                event,
                filters,
                which,
                test,
            } => {
                filter_changes(facts, event, filters, now, zone, out);
                let times = matching(facts, event, filters, now, zone).map(|e| e.timestamp);
                let t = match which {
                    FirstLast::First => times.min(),
                    FirstLast::Last => times.max(),
                };
                // Before/after a fixed date never changes; "within the last N days"
                // starts at the event (if it is future-dated) and ends N days later.
                if let (Some(t), Some((_, span))) = (t, test.relative()) {
                    out(t);
                    out(t + span + 1);
                }
            }
            Condition::Message { .. } => {
                if let Some(e) = self.as_event() {
                    e.collect_changes(facts, now, zone, out)
                }
            }
            // Another segment's flips re-mark the contact (the engine), not timers here.
            Condition::Subscription { .. }
            | Condition::RandomBucket { .. }
            | Condition::Segment { .. }
            | Condition::LeadScore { .. } => {}
        }
    }
}

/// The contact's events named `event` whose properties pass every filter at `now`.
fn matching<'a>(
    facts: &'a Facts,
    event: &'a str,
    filters: &'a [PropertyFilter],
    now: Millis,
    zone: Option<&'a str>,
) -> impl Iterator<Item = &'a EventFact> {
    facts.events.iter().filter(move |e| {
        e.name == event
            && filters
                .iter()
                .all(|f| f.test.holds_in(e.properties.get(&f.property), now, zone))
    })
}

/// Moments at which a time-relative property filter (`within_last_days` on a date
/// property...) can start or stop matching one of the contact's events.
fn filter_changes(
    facts: &Facts,
    event: &str,
    filters: &[PropertyFilter],
    now: Millis,
    zone: Option<&str>,
    out: &mut impl FnMut(Millis),
) {
    for e in facts.events.iter().filter(|e| e.name == event) {
        for f in filters {
            if let Some(d) = e.properties.get(&f.property).and_then(date_of) {
                f.test.changes(d, now, zone, out);
            }
        }
    }
}

fn in_window(w: &Window, t: Millis, now: Millis) -> bool {
    match w {
        Window::Ever => true,
        Window::LastDays(_) | Window::LastHours(_) => {
            let span = w.span().unwrap_or_default();
            t >= now - span && t <= now
        }
        Window::Between { from, to } => match (parse_instant(from), parse_instant(to)) {
            (Some(a), Some(b)) => t >= a && t < b,
            _ => false,
        },
    }
}

/// Moments a windowed count can change by time alone: an event leaves a `last_days`
/// window, or enters it (future-dated events).
fn window_changes(w: &Window, times: impl Iterator<Item = Millis>, out: &mut impl FnMut(Millis)) {
    // A fixed `between` window never moves; a `last_days` window gains a future-dated
    // event when it happens and loses each event `days` later.
    if let Some(span) = w.span() {
        for t in times {
            out(t);
            out(t + span + 1);
        }
    }
}

fn aggregate(f: AggregateFn, nums: &[f64]) -> Option<f64> {
    if nums.is_empty() {
        return match f {
            AggregateFn::Sum => Some(0.0),
            _ => None,
        };
    }
    Some(match f {
        AggregateFn::Sum => nums.iter().sum(),
        AggregateFn::Avg => nums.iter().sum::<f64>() / nums.len() as f64,
        AggregateFn::Min => nums.iter().copied().fold(f64::INFINITY, f64::min),
        AggregateFn::Max => nums.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        AggregateFn::Count => nums.len() as f64,
    })
}

/// The contact's lead score: the `lead_score` trait when it is a number, else 0.
pub fn lead_score(traits: &Map<String, Value>) -> f64 {
    traits.get(LEAD_SCORE_TRAIT).and_then(number).unwrap_or(0.0)
}

/// A named score as its trait holds it ([`crate::scoring::score_trait`]); 0 when
/// missing.
pub fn named_score(traits: &Map<String, Value>, score: &str) -> f64 {
    traits
        .get(&crate::scoring::score_trait(score))
        .and_then(number)
        .unwrap_or(0.0)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// A value read as a date: an ISO 8601 string.
pub fn date_of(v: &Value) -> Option<Millis> {
    v.as_str().and_then(parse_instant)
}

/// `MM-DD` of a date in UTC, for anniversaries.
pub fn month_day(ms: Millis) -> Option<String> {
    month_day_in(ms, None)
}

/// `MM-DD` of an instant in a time zone (`None`: UTC): "today" for a contact.
pub fn month_day_in(ms: Millis, zone: Option<&str>) -> Option<String> {
    let z = jiff::Timestamp::from_millisecond(ms).ok()?.to_zoned(time_zone(zone));
    Some(format!("{:02}-{:02}", z.month(), z.day()))
}

fn time_zone(zone: Option<&str>) -> jiff::tz::TimeZone {
    zone.and_then(|z| jiff::tz::TimeZone::get(z).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

/// The next midnight after `now` in the zone (`None`: UTC), when "today" changes.
pub fn next_midnight(now: Millis, zone: Option<&str>) -> Millis {
    let utc = now - now.rem_euclid(DAY_MS) + DAY_MS;
    let Some(zone) = zone else { return utc };
    jiff::Timestamp::from_millisecond(now)
        .ok()
        .map(|t| t.to_zoned(time_zone(Some(zone))))
        .and_then(|z| z.tomorrow().ok())
        .and_then(|z| z.start_of_day().ok())
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(utc)
}

/// The IANA time zone names conditions recognise (the system's time zone database),
/// sorted. Names outside `A-Z a-z 0-9 / _ + -` are left out (they are inlined in SQL).
pub fn zone_names() -> &'static [String] {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_string())
            .filter(|n| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'+' | b'-'))
                    && jiff::tz::TimeZone::get(n).is_ok()
            })
            .collect();
        names.sort();
        names.dedup();
        names
    })
}

/// The time zone segment conditions use for a contact: its `timezone` trait when that
/// is exactly the name of a time zone in [`zone_names`] (`Europe/Paris`); else UTC
/// (`None`). "Today" (anniversaries, this month) is the contact's local date.
pub fn segment_zone(traits: &Map<String, Value>) -> Option<&str> {
    let name = traits.get(SEGMENT_ZONE_TRAIT)?.as_str()?;
    zone_names()
        .binary_search_by(|n| n.as_str().cmp(name))
        .ok()
        .map(|_| name)
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => false,
    }
}

impl Test {
    /// Whether a value (absent when `None`) passes the test at `now`, "today" in UTC.
    pub fn holds(&self, v: Option<&Value>, now: Millis) -> bool {
        self.holds_in(v, now, None)
    }

    /// Whether a value passes the test at `now`, "today" being the date in `zone`.
    pub fn holds_in(&self, v: Option<&Value>, now: Millis, zone: Option<&str>) -> bool {
        let v = v.filter(|v| !v.is_null());
        match self {
            Test::Equals { value } => v.is_some_and(|v| scalar_eq(v, value)),
            Test::NotEquals { value } => !v.is_some_and(|v| scalar_eq(v, value)),
            Test::GreaterThan { value } => v.and_then(number).is_some_and(|n| n > *value),
            Test::GreaterOrEqual { value } => v.and_then(number).is_some_and(|n| n >= *value),
            Test::LessThan { value } => v.and_then(number).is_some_and(|n| n < *value),
            Test::LessOrEqual { value } => v.and_then(number).is_some_and(|n| n <= *value),
            Test::Contains { value } => v.and_then(Value::as_str).is_some_and(|s| s.contains(value.as_str())),
            Test::StartsWith { value } => v.and_then(Value::as_str).is_some_and(|s| s.starts_with(value.as_str())),
            Test::Exists => v.is_some(),
            Test::NotExists => v.is_none(),
            Test::In { values } => v.is_some_and(|v| values.iter().any(|x| scalar_eq(v, x))),
            Test::NotIn { values } => !v.is_some_and(|v| values.iter().any(|x| scalar_eq(v, x))),
            Test::Before { value } => date_cmp(v, value, |d, x| d < x),
            Test::After { value } => date_cmp(v, value, |d, x| d > x),
            Test::WithinLastDays { days } => v
                .and_then(date_of)
                .is_some_and(|d| d >= now - *days as Millis * DAY_MS && d <= now),
            Test::WithinNextDays { days } => v
                .and_then(date_of)
                .is_some_and(|d| d >= now && d <= now + *days as Millis * DAY_MS),
            Test::AnniversaryWithinDays { days } => {
                let Some(md) = v.and_then(date_of).and_then(month_day) else {
                    return false;
                };
                let (Some(start), Some(end)) = (
                    month_day_in(now, zone),
                    month_day_in(now + *days as Millis * DAY_MS, zone),
                ) else {
                    return false;
                };
                if *days >= 365 {
                    true
                } else if start <= end {
                    start <= md && md <= end
                } else {
                    md >= start || md <= end
                }
            }
            Test::AnniversaryThisMonth => {
                let (Some(md), Some(today)) = (v.and_then(date_of).and_then(month_day), month_day_in(now, zone)) else {
                    return false;
                };
                md[..2] == today[..2]
            }
        }
    }

    /// Moments at which a date value's test result can change by time alone.
    fn changes(&self, d: Millis, now: Millis, zone: Option<&str>, out: &mut impl FnMut(Millis)) {
        match self {
            Test::WithinLastDays { days } => {
                out(d);
                out(d + *days as Millis * DAY_MS + 1);
            }
            Test::WithinNextDays { days } => {
                out(d - *days as Millis * DAY_MS);
                out(d + 1);
            }
            // Month-day tests change at the contact's midnight, at most once a day.
            Test::AnniversaryWithinDays { .. } | Test::AnniversaryThisMonth => out(next_midnight(now, zone)),
            _ => {}
        }
    }
}

impl TimeTest {
    fn holds(&self, t: Millis, now: Millis) -> bool {
        match self {
            TimeTest::Before { value } => parse_instant(value).is_some_and(|v| t < v),
            TimeTest::After { value } => parse_instant(value).is_some_and(|v| t > v),
            _ => match self.relative() {
                Some((true, span)) => t >= now - span && t <= now,
                Some((false, span)) => t < now - span,
                None => false,
            },
        }
    }
}

fn date_cmp(v: Option<&Value>, against: &str, f: impl Fn(Millis, Millis) -> bool) -> bool {
    match (v.and_then(date_of), parse_instant(against)) {
        (Some(d), Some(x)) => f(d, x),
        _ => false,
    }
}
