//! Segment conditions: the language marketers use to say "who", as a JSON tree.
//!
//! One [`Condition`] type serves two evaluators that must always agree: the in-memory
//! evaluator here ([`Condition::matches`], over one contact's [`Facts`]) used for live
//! updates, and the SQL compiler in `nudge-store` used for full computation and
//! preview counts. A property test keeps them equal.
//!
//! Semantics shared by both evaluators (the SQL compiler follows these rules):
//! - A comparison on a missing value is false; `not_equals`/`not_in` are the negation
//!   of `equals`/`in`, so they are true for a missing value.
//! - Numbers compare numerically (`1 == 1.0`); strings compare by bytes; a number never
//!   equals a string (`"30" != 30`).
//! - `contains` / `starts_with` are case-sensitive and apply to strings only.
//! - Dates are ISO 8601 strings (`2026-11-23` or `2026-11-23T10:00:00Z`), compared as
//!   instants in UTC; anything else is not a date.
//! - Event windows: `last_days: 7` means `now - 7 days <= t <= now` (both ends
//!   included; `last_hours` likewise); `between` is half-open, `from <= t < to`.

mod eval;
mod ready_made;
#[cfg(test)]
mod tests;

pub use eval::{
    EventFact, Facts, date_of, lead_score, month_day, month_day_in, next_midnight, segment_zone, zone_names,
};
pub use ready_made::{ReadyMade, ready_made};

use crate::Millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const DAY_MS: Millis = 86_400_000;
pub const HOUR_MS: Millis = 3_600_000;
/// Deepest nesting accepted (and/or/not levels).
pub const MAX_DEPTH: usize = 12;
/// Most leaf conditions in one definition.
pub const MAX_LEAVES: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Condition {
    /// Every condition holds (an empty list holds for everyone).
    And {
        conditions: Vec<Condition>,
    },
    /// At least one condition holds (an empty list holds for no one).
    Or {
        conditions: Vec<Condition>,
    },
    Not {
        condition: Box<Condition>,
    },
    /// A comparison on a contact trait (`traits.<name>`).
    Trait {
        #[serde(rename = "trait")]
        name: String,
        #[serde(flatten)]
        test: Test,
    },
    /// Performed an event (a `track` call named `event`) a number of times.
    Event {
        event: String,
        #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
        filters: Vec<PropertyFilter>,
        #[serde(default)]
        count: Count,
        #[serde(default, skip_serializing_if = "Window::is_ever")]
        window: Window,
    },
    /// When the contact first (or last) performed an event.
    EventTime {
        event: String,
        #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
        filters: Vec<PropertyFilter>,
        which: FirstLast,
        #[serde(flatten)]
        test: TimeTest,
    },
    /// An aggregate of a numeric event property: total spend, average order value...
    Aggregate {
        event: String,
        #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
        filters: Vec<PropertyFilter>,
        function: AggregateFn,
        /// The property aggregated (ignored by `count`).
        #[serde(default)]
        property: Option<String>,
        #[serde(default, skip_serializing_if = "Window::is_ever")]
        window: Window,
        op: NumOp,
        value: f64,
    },
    /// Subscription state on a channel (`email`, `sms`, `push`, `webhook`).
    Subscription {
        channel: String,
        state: SubState,
    },
    /// A stable pseudo-random share of contacts (holdouts, A/B): the contact's bucket
    /// (0-99, derived from its id and `salt`) is below `percent`.
    RandomBucket {
        percent: u8,
        #[serde(default)]
        salt: String,
    },
    /// Currently a member of another segment (use `not` for "not a member").
    Segment {
        segment: i64,
    },
    /// Message engagement: received (sent to), opened, clicked, bounced or failed a
    /// message, optionally of one channel and one template, a number of times within a
    /// window. Reads the message events Nudge records (`Message Sent`, `Email Opened`,
    /// ...), so it is an [`Condition::Event`] condition under another name
    /// ([`Condition::as_event`]).
    Message {
        action: MessageAction,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// A template id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<i64>,
        #[serde(default)]
        count: Count,
        #[serde(default, skip_serializing_if = "Window::is_ever")]
        window: Window,
    },
    /// The contact's lead score: the default score `lead_score`, or the named
    /// `score`, as materialised in its trait ([`crate::scoring::score_trait`];
    /// scoring rules, decay and journeys' `update_contact` change it; a missing score
    /// is 0).
    LeadScore {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<String>,
        op: NumOp,
        value: f64,
    },
}

/// What happened to a message, for [`Condition::Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageAction {
    /// The message was sent (handed to the provider): `Message Sent`.
    Received,
    /// `Message Delivered` (delivery receipts: SMS).
    Delivered,
    /// `Email Opened`.
    Opened,
    /// `Email Link Clicked`.
    Clicked,
    /// `Message Bounced`.
    Bounced,
    /// `Message Failed`.
    Failed,
}

impl MessageAction {
    /// The timeline event Nudge records for this action.
    pub fn event_name(self) -> &'static str {
        match self {
            MessageAction::Received => "Message Sent",
            MessageAction::Delivered => "Message Delivered",
            MessageAction::Opened => "Email Opened",
            MessageAction::Clicked => "Email Link Clicked",
            MessageAction::Bounced => "Message Bounced",
            MessageAction::Failed => "Message Failed",
        }
    }
}

/// The trait naming the contact's time zone for segment conditions.
pub const SEGMENT_ZONE_TRAIT: &str = "timezone";

/// The trait a [`Condition::LeadScore`] reads.
pub const LEAD_SCORE_TRAIT: &str = "lead_score";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Test {
    Equals {
        value: Value,
    },
    NotEquals {
        value: Value,
    },
    GreaterThan {
        value: f64,
    },
    GreaterOrEqual {
        value: f64,
    },
    LessThan {
        value: f64,
    },
    LessOrEqual {
        value: f64,
    },
    Contains {
        value: String,
    },
    StartsWith {
        value: String,
    },
    Exists,
    NotExists,
    In {
        values: Vec<Value>,
    },
    NotIn {
        values: Vec<Value>,
    },
    /// A date value before this date.
    Before {
        value: String,
    },
    After {
        value: String,
    },
    /// A date in `[now - days, now]`.
    WithinLastDays {
        days: u32,
    },
    /// A date in `[now, now + days]`.
    WithinNextDays {
        days: u32,
    },
    /// The date's month and day (its anniversary: birthday, sign-up day) fall within
    /// the next `days` days counting today (0 = today), today being the contact's
    /// date in their time zone ([`segment_zone`]; UTC when they have none).
    AnniversaryWithinDays {
        days: u32,
    },
    /// The date's month is the current month in the contact's time zone: "birthday
    /// this month".
    AnniversaryThisMonth,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyFilter {
    pub property: String,
    #[serde(flatten)]
    pub test: Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountOp {
    AtLeast,
    AtMost,
    Exactly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Count {
    pub op: CountOp,
    pub value: u32,
}

impl Default for Count {
    /// "Performed at least once".
    fn default() -> Self {
        Count {
            op: CountOp::AtLeast,
            value: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Window {
    #[default]
    Ever,
    LastDays(u32),
    LastHours(u32),
    /// `[from, to)`, ISO 8601.
    Between {
        from: String,
        to: String,
    },
}

impl Window {
    pub fn is_ever(&self) -> bool {
        matches!(self, Window::Ever)
    }
    /// The length of a window relative to now (`[now - span, now]`), if it is one.
    pub fn span(&self) -> Option<Millis> {
        match self {
            Window::LastDays(d) => Some(*d as Millis * DAY_MS),
            Window::LastHours(h) => Some(*h as Millis * HOUR_MS),
            Window::Ever | Window::Between { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstLast {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TimeTest {
    Before {
        value: String,
    },
    After {
        value: String,
    },
    WithinLastDays {
        days: u32,
    },
    /// Longer ago than `days` days (there is such an event, and it is older).
    NotWithinLastDays {
        days: u32,
    },
    WithinLastHours {
        hours: u32,
    },
    NotWithinLastHours {
        hours: u32,
    },
}

impl TimeTest {
    /// For the relative tests: whether the time must be within the span (or older),
    /// and the span.
    pub fn relative(&self) -> Option<(bool, Millis)> {
        match self {
            TimeTest::WithinLastDays { days } => Some((true, *days as Millis * DAY_MS)),
            TimeTest::NotWithinLastDays { days } => Some((false, *days as Millis * DAY_MS)),
            TimeTest::WithinLastHours { hours } => Some((true, *hours as Millis * HOUR_MS)),
            TimeTest::NotWithinLastHours { hours } => Some((false, *hours as Millis * HOUR_MS)),
            TimeTest::Before { .. } | TimeTest::After { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateFn {
    Sum,
    Avg,
    Min,
    Max,
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumOp {
    GreaterThan,
    GreaterOrEqual,
    LessThan,
    LessOrEqual,
    Equals,
}

impl NumOp {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            NumOp::GreaterThan => a > b,
            NumOp::GreaterOrEqual => a >= b,
            NumOp::LessThan => a < b,
            NumOp::LessOrEqual => a <= b,
            NumOp::Equals => a == b,
        }
    }
    pub fn sql(self) -> &'static str {
        match self {
            NumOp::GreaterThan => ">",
            NumOp::GreaterOrEqual => ">=",
            NumOp::LessThan => "<",
            NumOp::LessOrEqual => "<=",
            NumOp::Equals => "=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubState {
    Subscribed,
    Unsubscribed,
    Pending,
    /// No state recorded for the channel.
    Unknown,
}

/// A definition error, with the JSON path of the node at fault (`conditions[1].window`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConditionError {
    pub path: String,
    pub message: String,
}

/// Parses and validates a definition. Errors point at the node at fault.
pub fn parse_condition(value: &Value) -> Result<Condition, ConditionError> {
    check_keys(value, "$")?;
    let condition: Condition = serde_json::from_value(value.clone()).map_err(|e| ConditionError {
        path: locate(value, &e.to_string()),
        message: e.to_string(),
    })?;
    condition.validate()?;
    Ok(condition)
}

/// The keys each node type accepts (serde cannot deny unknown keys next to the
/// flattened tests, so typos such as `"windw"` are caught here).
fn check_keys(value: &Value, path: &str) -> Result<(), ConditionError> {
    let Some(obj) = value.as_object() else {
        return Err(ConditionError {
            path: path.into(),
            message: "must be a JSON object".into(),
        });
    };
    let allowed: &[&str] = match obj.get("type").and_then(Value::as_str) {
        Some("and") | Some("or") => &["type", "conditions"],
        Some("not") => &["type", "condition"],
        Some("trait") => &["type", "trait", "op", "value", "values", "days"],
        Some("event") => &["type", "event", "where", "count", "window"],
        Some("event_time") => &["type", "event", "where", "which", "op", "value", "days", "hours"],
        Some("aggregate") => &[
            "type", "event", "where", "function", "property", "window", "op", "value",
        ],
        Some("subscription") => &["type", "channel", "state"],
        Some("random_bucket") => &["type", "percent", "salt"],
        Some("segment") => &["type", "segment"],
        Some("message") => &["type", "action", "channel", "template", "count", "window"],
        Some("lead_score") => &["type", "score", "op", "value"],
        _ => return Ok(()), // serde names the unknown type
    };
    let unknown = |key: &str, at: &str| ConditionError {
        path: format!("{at}.{key}"),
        message: "unknown field".into(),
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(unknown(k, path));
    }
    if let Some(Value::Array(filters)) = obj.get("where") {
        for (i, f) in filters.iter().enumerate() {
            let at = format!("{path}.where[{i}]");
            if let Some(k) = f.as_object().and_then(|o| {
                o.keys()
                    .find(|k| !["property", "op", "value", "values", "days"].contains(&k.as_str()))
            }) {
                return Err(unknown(k, &at));
            }
        }
    }
    if let Some(Value::Array(items)) = obj.get("conditions") {
        for (i, item) in items.iter().enumerate() {
            check_keys(item, &format!("{path}.conditions[{i}]"))?;
        }
    }
    if let Some(inner) = obj.get("condition") {
        check_keys(inner, &format!("{path}.condition"))?;
    }
    Ok(())
}

/// serde reports no path for internally tagged enums; find the first node whose own
/// parse fails, to point the user at it.
fn locate(value: &Value, fallback: &str) -> String {
    fn walk(v: &Value, path: String) -> Option<String> {
        if let Some(obj) = v.as_object() {
            if let Some(Value::Array(items)) = obj.get("conditions") {
                for (i, item) in items.iter().enumerate() {
                    if let Some(p) = walk(item, format!("{path}.conditions[{i}]")) {
                        return Some(p);
                    }
                }
            }
            if let Some(inner) = obj.get("condition")
                && let Some(p) = walk(inner, format!("{path}.condition"))
            {
                return Some(p);
            }
        }
        let leaf_ok = serde_json::from_value::<Condition>(v.clone()).is_ok();
        (!leaf_ok).then_some(path)
    }
    let _ = fallback;
    walk(value, "$".into()).unwrap_or_else(|| "$".into())
}

impl Condition {
    /// Checks what serde cannot: names, ranges, dates, size of the tree.
    pub fn validate(&self) -> Result<(), ConditionError> {
        let mut leaves = 0;
        self.validate_at("$", 0, &mut leaves)
    }

    fn validate_at(&self, path: &str, depth: usize, leaves: &mut usize) -> Result<(), ConditionError> {
        let err = |p: &str, m: String| {
            Err(ConditionError {
                path: p.to_string(),
                message: m,
            })
        };
        if depth > MAX_DEPTH {
            return err(path, format!("nested deeper than {MAX_DEPTH} levels"));
        }
        match self {
            Condition::And { conditions } | Condition::Or { conditions } => {
                for (i, c) in conditions.iter().enumerate() {
                    c.validate_at(&format!("{path}.conditions[{i}]"), depth + 1, leaves)?;
                }
                return Ok(());
            }
            Condition::Not { condition } => {
                return condition.validate_at(&format!("{path}.condition"), depth + 1, leaves);
            }
            _ => {}
        }
        *leaves += 1;
        if *leaves > MAX_LEAVES {
            return err(path, format!("more than {MAX_LEAVES} conditions"));
        }
        match self {
            Condition::Trait { name, test } => {
                check_name(&format!("{path}.trait"), name)?;
                test.validate(path)
            }
            Condition::Event {
                event, filters, window, ..
            } => {
                check_name(&format!("{path}.event"), event)?;
                check_filters(path, filters)?;
                check_window(&format!("{path}.window"), window)
            }
            Condition::EventTime {
                event, filters, test, ..
            } => {
                check_name(&format!("{path}.event"), event)?;
                check_filters(path, filters)?;
                match test {
                    TimeTest::Before { value } | TimeTest::After { value } => {
                        check_date(&format!("{path}.value"), value)
                    }
                    _ => Ok(()),
                }
            }
            Condition::Aggregate {
                event,
                filters,
                function,
                property,
                window,
                value,
                ..
            } => {
                check_name(&format!("{path}.event"), event)?;
                check_filters(path, filters)?;
                check_window(&format!("{path}.window"), window)?;
                if !value.is_finite() {
                    return err(&format!("{path}.value"), "must be a finite number".into());
                }
                match (function, property) {
                    (AggregateFn::Count, _) => Ok(()),
                    (_, Some(p)) => check_name(&format!("{path}.property"), p),
                    (_, None) => err(
                        &format!("{path}.property"),
                        "is required for sum, avg, min and max".into(),
                    ),
                }
            }
            Condition::Subscription { channel, .. } => check_channel(&format!("{path}.channel"), channel),
            Condition::RandomBucket { percent, .. } => {
                if *percent <= 100 {
                    Ok(())
                } else {
                    err(&format!("{path}.percent"), "must be between 0 and 100".into())
                }
            }
            Condition::Segment { segment } => {
                if *segment > 0 {
                    Ok(())
                } else {
                    err(&format!("{path}.segment"), "must be a segment id".into())
                }
            }
            Condition::Message {
                channel,
                template,
                window,
                ..
            } => {
                if let Some(channel) = channel {
                    check_channel(&format!("{path}.channel"), channel)?;
                }
                if template.is_some_and(|t| t <= 0) {
                    return err(&format!("{path}.template"), "must be a template id".into());
                }
                check_window(&format!("{path}.window"), window)
            }
            Condition::LeadScore { value, score, .. } => {
                if let Some(score) = score {
                    let probe = crate::scoring::ScoreDefinition::plain(score);
                    if let Err(e) = probe.validate() {
                        return err(&format!("{path}.score"), e.message);
                    }
                }
                if value.is_finite() {
                    Ok(())
                } else {
                    err(&format!("{path}.value"), "must be a finite number".into())
                }
            }
            Condition::And { .. } | Condition::Or { .. } | Condition::Not { .. } => Ok(()),
        }
    }

    /// The event condition a `message` condition stands for (the message event named
    /// by its action, filtered on `channel` and `template_id`); `None` for other kinds.
    pub fn as_event(&self) -> Option<Condition> {
        let Condition::Message {
            action,
            channel,
            template,
            count,
            window,
        } = self
        else {
            return None;
        };
        let mut filters = Vec::new();
        if let Some(channel) = channel {
            filters.push(PropertyFilter {
                property: "channel".into(),
                test: Test::Equals {
                    value: Value::String(channel.clone()),
                },
            });
        }
        if let Some(template) = template {
            filters.push(PropertyFilter {
                property: "template_id".into(),
                test: Test::Equals {
                    value: Value::from(*template),
                },
            });
        }
        Some(Condition::Event {
            event: action.event_name().to_string(),
            filters,
            count: *count,
            window: window.clone(),
        })
    }

    /// Every event name this condition reads: an event of another name can never
    /// change its value (used to index live segments).
    pub fn event_names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |c| match c {
            Condition::Event { event, .. }
            | Condition::EventTime { event, .. }
            | Condition::Aggregate { event, .. } => out.push(event.as_str()),
            Condition::Message { action, .. } => out.push(action.event_name()),
            _ => {}
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether time alone can change who matches (windows, relative dates,
    /// anniversaries), so memberships need timers.
    pub fn depends_on_time(&self) -> bool {
        let mut timed = false;
        self.walk(&mut |c| {
            let test_timed = |t: &Test| {
                matches!(
                    t,
                    Test::WithinLastDays { .. }
                        | Test::WithinNextDays { .. }
                        | Test::AnniversaryWithinDays { .. }
                        | Test::AnniversaryThisMonth
                )
            };
            timed |= match c {
                Condition::Trait { test, .. } => test_timed(test),
                Condition::Event { filters, window, .. } | Condition::Aggregate { filters, window, .. } => {
                    window.span().is_some() || filters.iter().any(|f| test_timed(&f.test))
                }
                Condition::EventTime { filters, test, .. } => {
                    test.relative().is_some() || filters.iter().any(|f| test_timed(&f.test))
                }
                Condition::Message { window, .. } => window.span().is_some(),
                _ => false,
            };
        });
        timed
    }

    /// The definition a segment is evaluated with, by both evaluators: an
    /// administrative segment (test contacts, employees) as it is; any other segment
    /// also leaves out the members of every administrative segment in `excluded`.
    pub fn excluding(&self, excluded: &[i64]) -> Condition {
        if excluded.is_empty() {
            return self.clone();
        }
        let mut conditions = vec![self.clone()];
        conditions.extend(excluded.iter().map(|&segment| Condition::Not {
            condition: Box::new(Condition::Segment { segment }),
        }));
        Condition::And { conditions }
    }

    /// The other segments this condition reads (membership of).
    pub fn segment_ids(&self) -> Vec<i64> {
        let mut out = Vec::new();
        self.walk(&mut |c| {
            if let Condition::Segment { segment } = c {
                out.push(*segment)
            }
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every trait name this condition reads.
    pub fn trait_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&mut |c| {
            match c {
                Condition::Trait { name, .. } => out.push(name.clone()),
                Condition::LeadScore { score: None, .. } => out.push(LEAD_SCORE_TRAIT.to_string()),
                Condition::LeadScore { score: Some(s), .. } => out.push(crate::scoring::score_trait(s)),
                _ => {}
            }
            // "Today" is the contact's date in their time zone.
            if c.reads_today() {
                out.push(SEGMENT_ZONE_TRAIT.to_string());
            }
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The score thresholds this condition tests (`(score, threshold)`): `lead_score`
    /// conditions, and numeric trait tests on a score's trait. Decay materialises a
    /// score when it crosses one, so the segment follows it at that moment.
    pub fn score_thresholds(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        self.walk(&mut |c| match c {
            Condition::LeadScore { score, value, .. } => out.push((
                score
                    .clone()
                    .unwrap_or_else(|| crate::scoring::DEFAULT_SCORE.to_string()),
                *value,
            )),
            Condition::Trait { name, test } => {
                let score = if name == LEAD_SCORE_TRAIT {
                    Some(LEAD_SCORE_TRAIT)
                } else {
                    name.strip_suffix("_score")
                };
                let value = match test {
                    Test::GreaterThan { value }
                    | Test::GreaterOrEqual { value }
                    | Test::LessThan { value }
                    | Test::LessOrEqual { value } => Some(*value),
                    _ => None,
                };
                if let (Some(score), Some(value)) = (score, value) {
                    out.push((score.to_string(), value));
                }
            }
            _ => {}
        });
        out
    }

    /// Whether this node (not its children) tests an anniversary, which depends on the
    /// contact's local date.
    fn reads_today(&self) -> bool {
        let today = |t: &Test| matches!(t, Test::AnniversaryWithinDays { .. } | Test::AnniversaryThisMonth);
        match self {
            Condition::Trait { test, .. } => today(test),
            Condition::Event { filters, .. }
            | Condition::EventTime { filters, .. }
            | Condition::Aggregate { filters, .. } => filters.iter().any(|f| today(&f.test)),
            _ => false,
        }
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Condition)) {
        f(self);
        match self {
            Condition::And { conditions } | Condition::Or { conditions } => conditions.iter().for_each(|c| c.walk(f)),
            Condition::Not { condition } => condition.walk(f),
            _ => {}
        }
    }
}

impl Test {
    fn validate(&self, path: &str) -> Result<(), ConditionError> {
        let bad = |m: &str| {
            Err(ConditionError {
                path: format!("{path}.value"),
                message: m.to_string(),
            })
        };
        match self {
            Test::GreaterThan { value }
            | Test::GreaterOrEqual { value }
            | Test::LessThan { value }
            | Test::LessOrEqual { value }
                if !value.is_finite() =>
            {
                bad("must be a finite number")
            }
            Test::Equals { value } | Test::NotEquals { value } if !is_scalar(value) => {
                bad("must be a string, number or boolean")
            }
            Test::In { values } | Test::NotIn { values } if values.iter().any(|v| !is_scalar(v)) => {
                Err(ConditionError {
                    path: format!("{path}.values"),
                    message: "must be strings, numbers or booleans".into(),
                })
            }
            Test::Before { value } | Test::After { value } => check_date(&format!("{path}.value"), value),
            _ => Ok(()),
        }
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Names are used inside JSON paths in SQL: keep them plain.
pub(crate) fn check_name(path: &str, name: &str) -> Result<(), ConditionError> {
    if name.is_empty() || name.len() > 200 || name.contains(['"', '\\', '\'', '\0']) {
        return Err(ConditionError {
            path: path.to_string(),
            message: "must be 1 to 200 characters without quotes or backslashes".into(),
        });
    }
    Ok(())
}

fn check_channel(path: &str, channel: &str) -> Result<(), ConditionError> {
    if crate::contact::CHANNELS.contains(&channel) {
        return Ok(());
    }
    Err(ConditionError {
        path: path.to_string(),
        message: format!(
            "unknown channel {channel:?}; one of {}",
            crate::contact::CHANNELS.join(", ")
        ),
    })
}

pub(crate) fn check_filters(path: &str, filters: &[PropertyFilter]) -> Result<(), ConditionError> {
    for (i, f) in filters.iter().enumerate() {
        let p = format!("{path}.where[{i}]");
        check_name(&format!("{p}.property"), &f.property)?;
        f.test.validate(&p)?;
    }
    Ok(())
}

fn check_window(path: &str, w: &Window) -> Result<(), ConditionError> {
    if let Window::Between { from, to } = w {
        check_date(&format!("{path}.between.from"), from)?;
        check_date(&format!("{path}.between.to"), to)?;
    }
    Ok(())
}

fn check_date(path: &str, s: &str) -> Result<(), ConditionError> {
    match crate::parse_instant(s) {
        Some(_) => Ok(()),
        None => Err(ConditionError {
            path: path.to_string(),
            message: format!("{s:?} is not an ISO 8601 date"),
        }),
    }
}

/// Checks the `segment` nodes of a definition about to be saved as segment `id`
/// (`None`: a new segment) against the existing segments: each must exist, and no
/// chain of segments may lead back to this one (membership would never settle).
pub fn check_references(
    id: Option<i64>,
    definition: &Condition,
    existing: &[(i64, &Condition)],
) -> Result<(), ConditionError> {
    let refs = |s: i64| -> Vec<i64> {
        existing
            .iter()
            .find(|(e, _)| *e == s)
            .map(|(_, c)| c.segment_ids())
            .unwrap_or_default()
    };
    for r in definition.segment_ids() {
        if !existing.iter().any(|(e, _)| *e == r) {
            return Err(ConditionError {
                path: "$".into(),
                message: format!("segment {r} does not exist"),
            });
        }
        if Some(r) == id {
            return Err(ConditionError {
                path: "$".into(),
                message: "a segment cannot contain itself".into(),
            });
        }
    }
    let Some(id) = id else { return Ok(()) };
    let mut stack = definition.segment_ids();
    let mut seen = std::collections::HashSet::new();
    while let Some(s) = stack.pop() {
        if s == id {
            return Err(ConditionError {
                path: "$".into(),
                message: format!("segments would read each other in a cycle through segment {id}"),
            });
        }
        if seen.insert(s) {
            stack.extend(refs(s));
        }
    }
    Ok(())
}

/// The contact's bucket (0-99) for `random_bucket`: integer arithmetic that SQL
/// engines compute identically.
pub fn bucket(contact_id: i64, salt: &str) -> i64 {
    (contact_id.rem_euclid(1 << 31) * 40_503 + salt_number(salt)).rem_euclid(1 << 31) % 100
}

/// A number derived from the salt (FNV-1a, folded to 31 bits).
pub fn salt_number(salt: &str) -> i64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in salt.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % (1 << 31)) as i64
}
