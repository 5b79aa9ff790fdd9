//! What a campaign is, as stored and as the API takes it, and its validation.
//!
//! ```json
//! {
//!   "audience": {"segments": [4, 7], "exclude": [9]},
//!   "variants": [
//!     {"name": "A", "template": "sale-a"},
//!     {"name": "B", "template": "sale-b", "delay": {"hours": 2}}
//!   ],
//!   "test": {"share": 20, "metric": "click_rate", "duration": {"hours": 4}},
//!   "holdout": 5,
//!   "throttle_per_hour": 50000,
//!   "quiet_hours": {"start": "21:00", "end": "08:00"},
//!   "cap_defer_limit": {"days": 2}
//! }
//! ```
//!
//! The schedule (now, at a time, at a local time) is given when the campaign is sent
//! ([`Schedule`]), not in the definition: a draft says what and to whom, sending says
//! when.

use super::stats::{Fallback, Rule, WinnerMetric};
use crate::journey::{Duration, NameOrId, QuietHours, parse_time_of_day};
use crate::{Millis, segment::DAY_MS};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// At most this many variants (the issue's and the report's limit).
pub const MAX_VARIANTS: usize = 8;

/// A campaign's definition: what goes to whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignDefinition {
    pub audience: Audience,
    /// `email`, `sms` or `push`: the variants' templates must all be of it. The first
    /// template's channel when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// 1 to 8. With one, everyone (but the holdout) gets it; with several and no
    /// `test`, recipients are split evenly among them; with a `test`, the test share
    /// is split evenly and the winner goes to the rest.
    pub variants: Vec<Variant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<CampaignTest>,
    /// Percent of the audience (0–50) that gets nothing, to measure lift.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub holdout: u8,
    /// No sends between `start` and `end` in the contact's time zone: they wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Each recipient's message waits for their best time within `within_hours` of
    /// when it would be due (docs/send-time.md), among the moments quiet hours allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_time: Option<crate::send_time::BestTime>,
    /// At most this many messages queued per hour, spread evenly (no limit when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_per_hour: Option<u32>,
    /// How long a recipient the workspace's frequency caps hold back may wait for room
    /// (default 1 day); past it the recipient is skipped with the reason recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_defer_limit: Option<Duration>,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// Who a campaign goes to: the members of any of `segments` (when sending starts),
/// minus the members of any of `exclude`. Members of administrative segments are
/// never in another segment, so never here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    pub segments: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<i64>,
}

/// One version of the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Shown in reports (`A`, `Short subject`); unique in the campaign.
    pub name: String,
    pub template: NameOrId,
    /// Sent this long after the campaign's start (variants that differ in send time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
}

/// An A/B test: a share of the audience gets the variants, the winner the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignTest {
    /// Percent of the audience (1–100) in the test, split evenly among the variants.
    pub share: u8,
    pub metric: WinnerMetric,
    /// How long after the snapshot is taken the winner is chosen.
    pub duration: Duration,
    /// How a winner is recognised (default: probability to be best ≥ 0.95).
    #[serde(default)]
    pub rule: Rule,
    /// Who wins when the rule finds no winner (default: the control, variant 0).
    #[serde(default)]
    pub fallback: Fallback,
}

/// When a campaign sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    Now,
    /// At an instant (milliseconds UTC).
    At {
        at: Millis,
    },
    /// At `time` (`HH:MM`) on `date` (`YYYY-MM-DD`) in each contact's time zone (the
    /// workspace's when the contact has none). Sending starts when that time is first
    /// reached anywhere.
    LocalTime {
        date: String,
        time: String,
    },
}

/// A problem in a definition: where (`variants[1].template`) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignError {
    pub path: String,
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> CampaignError {
    CampaignError {
        path: path.into(),
        message: message.into(),
    }
}

/// The longest a test may last or a variant wait (30 days).
const MAX_DELAY: Millis = 30 * DAY_MS;

impl CampaignDefinition {
    /// The recipients' wait for frequency caps, at most.
    pub fn cap_defer_limit_ms(&self) -> Millis {
        self.cap_defer_limit.as_ref().map_or(DAY_MS, Duration::as_millis)
    }

    /// A variant's delay after the start.
    pub fn delay_ms(&self, variant: usize) -> Millis {
        self.variants
            .get(variant)
            .and_then(|v| v.delay.as_ref())
            .map_or(0, Duration::as_millis)
    }

    /// The segments it reads (audience and exclusions).
    pub fn segment_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .audience
            .segments
            .iter()
            .chain(&self.audience.exclude)
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Every problem that does not need the database (templates and segments that
    /// exist, channels that match, are checked by the application layer).
    pub fn problems(&self) -> Vec<CampaignError> {
        let mut out = Vec::new();
        let a = &self.audience;
        if a.segments.is_empty() {
            out.push(err("audience.segments", "name at least one segment to send to"));
        }
        for (i, id) in a.exclude.iter().enumerate() {
            if a.segments.contains(id) {
                out.push(err(
                    format!("audience.exclude[{i}]"),
                    format!("segment {id} is both sent to and excluded"),
                ));
            }
        }
        if let Some(c) = &self.channel
            && !["email", "sms", "push"].contains(&c.as_str())
        {
            out.push(err(
                "channel",
                format!("unknown channel {c:?}; one of email, sms, push"),
            ));
        }
        match self.variants.len() {
            0 => out.push(err("variants", "give at least one variant (a template)")),
            n if n > MAX_VARIANTS => out.push(err("variants", format!("at most {MAX_VARIANTS} variants, not {n}"))),
            _ => {}
        }
        for (i, v) in self.variants.iter().enumerate() {
            let name = v.name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                out.push(err(format!("variants[{i}].name"), "give a name of 1 to 100 characters"));
            } else if self.variants[..i].iter().any(|o| o.name.trim() == name) {
                out.push(err(
                    format!("variants[{i}].name"),
                    format!("two variants are named {name:?}"),
                ));
            }
            if let NameOrId::Name(t) = &v.template
                && t.trim().is_empty()
            {
                out.push(err(format!("variants[{i}].template"), "name a template"));
            }
            if let Some(d) = &v.delay
                && !(0..=MAX_DELAY).contains(&d.as_millis())
            {
                out.push(err(format!("variants[{i}].delay"), "must be between 0 and 30 days"));
            }
        }
        if let Some(t) = &self.test {
            if self.variants.len() < 2 {
                out.push(err("test", "an A/B test needs at least two variants"));
            }
            if !(1..=100).contains(&t.share) {
                out.push(err("test.share", "a percent of the audience from 1 to 100"));
            } else if t.share as u16 + self.holdout as u16 > 100 {
                out.push(err("test.share", "test share and holdout together exceed 100 %"));
            }
            if !(1..=MAX_DELAY).contains(&t.duration.as_millis()) {
                out.push(err("test.duration", "must be longer than 0 and at most 30 days"));
            }
            if let Err(e) = t.rule.validate() {
                out.push(err("test.rule", e.to_string()));
            }
        }
        if self.throttle_per_hour == Some(0) {
            out.push(err(
                "throttle_per_hour",
                "at least 1 message per hour (leave it out for no limit)",
            ));
        }
        if self.holdout > 50 {
            out.push(err("holdout", "at most 50 percent of the audience"));
        }
        if let Some(q) = &self.quiet_hours {
            for (field, v) in [("start", &q.start), ("end", &q.end)] {
                if parse_time_of_day(v).is_none() {
                    out.push(err(format!("quiet_hours.{field}"), "a time of day as HH:MM"));
                }
            }
        }
        if let Some(problem) = self.best_time.as_ref().and_then(|b| b.problem()) {
            out.push(err("best_time.within_hours", problem));
        }
        if let Some(d) = &self.cap_defer_limit
            && !(0..=MAX_DELAY).contains(&d.as_millis())
        {
            out.push(err("cap_defer_limit", "must be between 0 and 30 days"));
        }
        out
    }
}

/// Reads and checks a definition: every problem, each with its path.
pub fn parse_campaign(value: &Value) -> Result<CampaignDefinition, Vec<CampaignError>> {
    if !value.is_object() {
        return Err(vec![err("$", "a campaign definition must be a JSON object")]);
    }
    let def: CampaignDefinition = crate::read_shape(value).map_err(|e| {
        let path = if e.path.is_empty() { "$".to_string() } else { e.path };
        vec![err(path, e.message)]
    })?;
    let problems = def.problems();
    if problems.is_empty() { Ok(def) } else { Err(problems) }
}

/// Reads a schedule as the API takes it: `{"type":"now"}`, `{"type":"at","at":RFC 3339}`
/// or `{"type":"local_time","date":"2026-12-24","time":"09:00"}`.
pub fn parse_schedule(value: &Value) -> Result<Schedule, CampaignError> {
    let obj = value
        .as_object()
        .ok_or_else(|| err("schedule", "must be an object with a type: now, at or local_time"))?;
    match obj.get("type").and_then(Value::as_str) {
        Some("now") => Ok(Schedule::Now),
        Some("at") => {
            let text = obj
                .get("at")
                .and_then(Value::as_str)
                .ok_or_else(|| err("schedule.at", "an RFC 3339 date-time is required"))?;
            let ts: jiff::Timestamp = text
                .parse()
                .map_err(|e| err("schedule.at", format!("not an RFC 3339 date-time: {e}")))?;
            Ok(Schedule::At {
                at: ts.as_millisecond(),
            })
        }
        Some("local_time") => {
            let date = obj.get("date").and_then(Value::as_str).unwrap_or_default();
            if date.parse::<jiff::civil::Date>().is_err() {
                return Err(err("schedule.date", "a date as YYYY-MM-DD"));
            }
            let time = obj.get("time").and_then(Value::as_str).unwrap_or_default();
            if parse_time_of_day(time).is_none() {
                return Err(err("schedule.time", "a time of day as HH:MM"));
            }
            Ok(Schedule::LocalTime {
                date: date.to_string(),
                time: time.to_string(),
            })
        }
        _ => Err(err("schedule.type", "one of now, at, local_time")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(v: Value) -> Vec<String> {
        parse_campaign(&v).unwrap_err().into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn a_simple_campaign_reads() {
        let def = parse_campaign(&json!({
            "audience": {"segments": [1]},
            "variants": [{"name": "A", "template": "newsletter"}]
        }))
        .unwrap();
        assert_eq!(def.variants.len(), 1);
        assert_eq!(def.cap_defer_limit_ms(), DAY_MS);
        assert_eq!(def.segment_ids(), vec![1]);
    }

    #[test]
    fn an_ab_test_reads_with_its_defaults() {
        let def = parse_campaign(&json!({
            "audience": {"segments": [1, 2], "exclude": [3]},
            "variants": [{"name": "A", "template": 5}, {"name": "B", "template": 6, "delay": {"hours": 2}}],
            "test": {"share": 20, "metric": "click_rate", "duration": 60000},
            "holdout": 5
        }))
        .unwrap();
        let t = def.test.as_ref().unwrap();
        assert_eq!(
            (t.share, t.metric, t.fallback),
            (20, WinnerMetric::ClickRate, Fallback::Control)
        );
        assert_eq!(t.duration.as_millis(), 60_000);
        assert_eq!(def.delay_ms(1), 2 * 3_600_000);
        assert_eq!(t.rule, Rule::default());
        assert_eq!(def.segment_ids(), vec![1, 2, 3]);
    }

    #[test]
    fn every_problem_is_named_by_its_path() {
        let p = paths(json!({
            "audience": {"segments": [], "exclude": [1]},
            "channel": "fax",
            "variants": [{"name": "A", "template": ""}, {"name": "A", "template": 2}],
            "test": {"share": 80, "metric": "open_rate", "duration": 0},
            "holdout": 30,
            "quiet_hours": {"start": "25:00", "end": "08:00"},
            "best_time": {"within_hours": 0}
        }));
        assert_eq!(
            p,
            vec![
                "audience.segments",
                "channel",
                "variants[0].template",
                "variants[1].name",
                "test.share",
                "test.duration",
                "quiet_hours.start",
                "best_time.within_hours"
            ]
        );
        assert_eq!(
            paths(json!({"audience": {"segments": [1], "exclude": [1]}, "variants": [{"name": "A", "template": 1}]})),
            vec!["audience.exclude[0]"]
        );
        assert_eq!(
            paths(
                json!({"audience": {"segments": [1]}, "variants": [{"name": "A", "template": 1}],
                "test": {"share": 10, "metric": "open_rate", "duration": 1000}})
            ),
            vec!["test"],
            "a test needs two variants"
        );
        let nine: Vec<Value> = (0..9).map(|i| json!({"name": i.to_string(), "template": i})).collect();
        assert_eq!(
            paths(json!({"audience": {"segments": [1]}, "variants": nine})),
            vec!["variants"]
        );
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e = parse_campaign(&json!({"audience": {"segments": [1]}, "variants": [], "colour": 1})).unwrap_err();
        assert_eq!(e[0].path, "colour");
        let e = parse_campaign(&json!({"variants": []})).unwrap_err();
        assert_eq!(e[0].path, "audience");
        assert_eq!(parse_campaign(&json!([1])).unwrap_err()[0].path, "$");
    }

    #[test]
    fn schedules_read_and_explain() {
        assert_eq!(parse_schedule(&json!({"type": "now"})), Ok(Schedule::Now));
        assert_eq!(
            parse_schedule(&json!({"type": "at", "at": "2026-12-24T09:00:00Z"})),
            Ok(Schedule::At { at: 1_798_102_800_000 })
        );
        assert!(matches!(
            parse_schedule(&json!({"type": "local_time", "date": "2026-12-24", "time": "09:00"})),
            Ok(Schedule::LocalTime { .. })
        ));
        assert_eq!(
            parse_schedule(&json!({"type": "at", "at": "soon"})).unwrap_err().path,
            "schedule.at"
        );
        assert_eq!(
            parse_schedule(&json!({"type": "local_time", "date": "2026-02-30", "time": "09:00"}))
                .unwrap_err()
                .path,
            "schedule.date"
        );
        assert_eq!(
            parse_schedule(&json!({"type": "later"})).unwrap_err().path,
            "schedule.type"
        );
        assert_eq!(parse_schedule(&json!("now")).unwrap_err().path, "schedule");
    }
}
