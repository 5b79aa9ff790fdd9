//! One-line summaries of triggers, steps and conditions, for the diagram's boxes and
//! exit labels ("wait 2 days", "send email · template 3", "branch: traits.plan =
//! pro"). They are short English descriptions for a reader skimming a graph, not a
//! second definition language: anything long is shortened, and the full definition
//! stays one click away in the UI.

use crate::journey::{Day, Duration, MessageTest, NameOrId, StepKind, Trigger};
use crate::segment::{Condition, Count, CountOp, NumOp, Test, TimeTest, Window};
use serde_json::Value;

/// What starts a run: `event Order Completed`, `enters segment 4`, `birthday every
/// year at 09:00`.
pub(super) fn trigger(t: &Trigger) -> String {
    match t {
        Trigger::Event { event, filters } => {
            let mut s = format!("event {event}");
            if !filters.is_empty() {
                s.push_str(&format!(" · where {}", filter_list(filters)));
            }
            s
        }
        Trigger::SegmentEntered { segment_id } => format!("enters segment {segment_id}"),
        Trigger::SegmentExited { segment_id } => format!("leaves segment {segment_id}"),
        Trigger::DateTrait {
            name,
            offset_days,
            every_year,
            time,
        } => {
            let mut s = match offset_days {
                0 => format!("on {name}"),
                d if *d < 0 => format!("{} before {name}", plural(-(*d as i64), "day")),
                d => format!("{} after {name}", plural(*d as i64, "day")),
            };
            if *every_year {
                s.push_str(" every year");
            }
            if let Some(time) = time {
                s.push_str(&format!(" at {time}"));
            }
            s
        }
        Trigger::Form { form } => format!("form {}", name_or_id(form)),
        Trigger::Api => "API call".into(),
        Trigger::Schedule { segment_id, at, every } => match (at, every) {
            (Some(at), _) => format!("segment {segment_id} at {at}"),
            (None, Some(r)) if r.days.is_empty() => format!("segment {segment_id} daily at {}", r.time),
            (None, Some(r)) => format!("segment {segment_id} {} at {}", days(&r.days), r.time),
            (None, None) => format!("segment {segment_id} on a schedule"),
        },
    }
}

/// What a step does, from its settings.
pub(super) fn step(kind: &StepKind) -> String {
    match kind {
        StepKind::Send {
            template,
            channel,
            transactional,
            best_time,
            ..
        } => {
            let mut s = match channel {
                Some(c) => format!("send {c} · template {}", name_or_id(template)),
                None => format!("send template {}", name_or_id(template)),
            };
            if *transactional {
                s.push_str(" · transactional");
            }
            if let Some(b) = best_time {
                s.push_str(&format!(" · best time in {}h", b.within_hours));
            }
            s
        }
        StepKind::Wait { duration, .. } => format!("wait {}", duration_text(duration)),
        StepKind::WaitUntil { time, days: d, .. } if d.is_empty() => format!("wait until {time}"),
        StepKind::WaitUntil { time, days: d, .. } => format!("wait until {time} {}", days(d)),
        StepKind::WaitForEvent {
            event,
            filters,
            match_key,
            timeout,
            ..
        } => {
            let mut s = format!("wait for {event} ≤ {}", duration_text(timeout));
            if !filters.is_empty() {
                s.push_str(&format!(" · where {}", filter_list(filters)));
            }
            if let Some(key) = match_key {
                s.push_str(&format!(" · same {key}"));
            }
            s
        }
        StepKind::Branch { condition, message, .. } => match (condition, message) {
            (Some(c), _) => format!("branch: {}", condition_text(c)),
            (None, Some(m)) => format!("branch: {}", message_test(m)),
            (None, None) => "branch".into(),
        },
        StepKind::MultiBranch { cases, .. } => format!("branch: {}", plural(cases.len() as i64, "case")),
        StepKind::Split { variants } => format!(
            "split {}",
            variants
                .iter()
                .map(|v| v.percent.to_string())
                .collect::<Vec<_>>()
                .join("/")
        ),
        StepKind::UpdateContact {
            set,
            unset,
            add_tags,
            remove_tags,
            add_lists,
            remove_lists,
            lead_score,
            ..
        } => {
            let mut parts: Vec<String> = Vec::new();
            parts.extend(set.iter().map(|(k, v)| format!("{k} = {}", value(v))));
            parts.extend(unset.iter().map(|k| format!("unset {k}")));
            parts.extend(add_tags.iter().map(|t| format!("+tag {t}")));
            parts.extend(remove_tags.iter().map(|t| format!("−tag {t}")));
            parts.extend(add_lists.iter().map(|l| format!("+list {}", name_or_id(l))));
            parts.extend(remove_lists.iter().map(|l| format!("−list {}", name_or_id(l))));
            if *lead_score != 0 {
                parts.push(format!("score {lead_score:+}"));
            }
            format!("update: {}", parts.join(", "))
        }
        StepKind::Webhook { template, .. } => format!("webhook · template {}", name_or_id(template)),
        StepKind::Goal { name: Some(name) } => format!("goal: {name}"),
        StepKind::Goal { name: None } => "goal".into(),
        StepKind::Exit => "exit".into(),
    }
}

/// A condition in a few words: `traits.plan = pro`, `did Order Completed ≥ 2× in 30
/// days`, `not (in segment 4)`. Nested lists show their first two members.
pub(super) fn condition_text(c: &Condition) -> String {
    match c {
        Condition::And { conditions } => list(conditions, " and "),
        Condition::Or { conditions } => list(conditions, " or "),
        Condition::Not { condition } => format!("not ({})", condition_text(condition)),
        Condition::Trait { name, test } => format!("traits.{name} {}", test_text(test)),
        Condition::Event {
            event,
            filters,
            count,
            window,
        } => {
            let mut s = format!("did {event}{}", count_text(count));
            if !filters.is_empty() {
                s.push_str(&format!(" where {}", filter_list(filters)));
            }
            s.push_str(&window_text(window));
            s
        }
        Condition::EventTime { event, which, test, .. } => {
            let which = match which {
                crate::segment::FirstLast::First => "first",
                crate::segment::FirstLast::Last => "last",
            };
            let test = match test {
                TimeTest::Before { value } => format!("before {value}"),
                TimeTest::After { value } => format!("after {value}"),
                TimeTest::WithinLastDays { days } => format!("in last {}", plural(*days as i64, "day")),
                TimeTest::NotWithinLastDays { days } => format!("over {} ago", plural(*days as i64, "day")),
                TimeTest::WithinLastHours { hours } => format!("in last {}", plural(*hours as i64, "hour")),
                TimeTest::NotWithinLastHours { hours } => format!("over {} ago", plural(*hours as i64, "hour")),
            };
            format!("{which} {event} {test}")
        }
        Condition::Aggregate {
            event,
            function,
            property,
            window,
            op: o,
            value,
            ..
        } => {
            let f = serde_json::to_value(function)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let of = property.as_deref().map(|p| format!("({p})")).unwrap_or_default();
            format!(
                "{f}{of} of {event} {} {}{}",
                op(*o),
                number(*value),
                window_text(window)
            )
        }
        Condition::Subscription { channel, state } => {
            let state = serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{channel} {state}")
        }
        Condition::RandomBucket { percent, .. } => format!("random {percent}%"),
        Condition::Segment { segment } => format!("in segment {segment}"),
        Condition::Message {
            action,
            channel,
            template,
            count,
            window,
        } => {
            let action = serde_json::to_value(action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let mut s = format!("{action} {}", channel.as_deref().unwrap_or("a message"));
            if let Some(t) = template {
                s.push_str(&format!(" (template {t})"));
            }
            s.push_str(&count_text(count));
            s.push_str(&window_text(window));
            s
        }
        Condition::LeadScore { score, op: o, value } => format!(
            "{} {} {}",
            score.as_deref().unwrap_or("lead score"),
            op(*o),
            number(*value)
        ),
    }
}

fn message_test(m: &MessageTest) -> String {
    let outcome = serde_json::to_value(m.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    format!("{} {outcome}", m.step)
}

fn list(conditions: &[Condition], joiner: &str) -> String {
    let mut parts: Vec<String> = conditions.iter().take(2).map(condition_text).collect();
    if conditions.len() > 2 {
        parts.push(format!("{} more", conditions.len() - 2));
    }
    if parts.is_empty() {
        return if joiner == " and " {
            "everyone".into()
        } else {
            "no one".into()
        };
    }
    parts.join(joiner)
}

fn test_text(t: &Test) -> String {
    let values = |v: &[Value]| v.iter().map(value).collect::<Vec<_>>().join(", ");
    match t {
        Test::Equals { value: v } => format!("= {}", value(v)),
        Test::NotEquals { value: v } => format!("≠ {}", value(v)),
        Test::GreaterThan { value } => format!("> {}", number(*value)),
        Test::GreaterOrEqual { value } => format!("≥ {}", number(*value)),
        Test::LessThan { value } => format!("< {}", number(*value)),
        Test::LessOrEqual { value } => format!("≤ {}", number(*value)),
        Test::Contains { value } => format!("contains {value}"),
        Test::StartsWith { value } => format!("starts with {value}"),
        Test::Exists => "is set".into(),
        Test::NotExists => "is not set".into(),
        Test::In { values: v } => format!("in [{}]", values(v)),
        Test::NotIn { values: v } => format!("not in [{}]", values(v)),
        Test::Before { value } => format!("before {value}"),
        Test::After { value } => format!("after {value}"),
        Test::WithinLastDays { days } => format!("in last {}", plural(*days as i64, "day")),
        Test::WithinNextDays { days } => format!("in next {}", plural(*days as i64, "day")),
        Test::AnniversaryWithinDays { days } => format!("anniversary within {}", plural(*days as i64, "day")),
        Test::AnniversaryThisMonth => "anniversary this month".into(),
    }
}

fn filter_list(filters: &[crate::segment::PropertyFilter]) -> String {
    filters
        .iter()
        .map(|f| format!("{} {}", f.property, test_text(&f.test)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn count_text(c: &Count) -> String {
    match (c.op, c.value) {
        (CountOp::AtLeast, 1) => String::new(),
        (CountOp::AtLeast, n) => format!(" ≥ {n}×"),
        (CountOp::AtMost, n) => format!(" ≤ {n}×"),
        (CountOp::Exactly, n) => format!(" {n}×"),
    }
}

fn window_text(w: &Window) -> String {
    match w {
        Window::Ever => String::new(),
        Window::LastDays(d) => format!(" in last {}", plural(*d as i64, "day")),
        Window::LastHours(h) => format!(" in last {}", plural(*h as i64, "hour")),
        Window::Between { from, to } => format!(" from {from} to {to}"),
    }
}

/// A JSON value as a reader would write it: strings without quotes.
fn value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `7`, not `7.0`: most thresholds are whole numbers.
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn op(o: NumOp) -> &'static str {
    match o {
        NumOp::GreaterThan => ">",
        NumOp::GreaterOrEqual => "≥",
        NumOp::LessThan => "<",
        NumOp::LessOrEqual => "≤",
        NumOp::Equals => "=",
    }
}

fn name_or_id(n: &NameOrId) -> String {
    match n {
        NameOrId::Id(id) => id.to_string(),
        NameOrId::Name(name) => name.clone(),
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// A duration as written (`48 hours` stays 48 hours); milliseconds in the largest
/// units that are not zero (`1 day 12 hours`, `1 minute 30 seconds`).
pub(super) fn duration_text(d: &Duration) -> String {
    if let Duration::Parts(p) = d {
        let parts: Vec<String> = [(p.days, "day"), (p.hours, "hour"), (p.minutes, "minute")]
            .iter()
            .filter(|(n, _)| *n != 0)
            .map(|&(n, unit)| plural(n, unit))
            .collect();
        if !parts.is_empty() {
            return parts.join(" ");
        }
    }
    let ms = d.as_millis();
    if ms <= 0 {
        return "0 s".into();
    }
    let units: [(i64, &str); 4] = [
        (86_400_000, "day"),
        (3_600_000, "hour"),
        (60_000, "minute"),
        (1_000, "second"),
    ];
    let mut rest = ms;
    let mut parts = Vec::new();
    for (size, unit) in units {
        if rest >= size {
            parts.push(plural(rest / size, unit));
            rest %= size;
        }
    }
    if parts.is_empty() {
        return format!("{ms} ms");
    }
    parts.join(" ")
}

/// Days of the week, runs of three or more as a range: `mon–fri`, `sat,sun`.
fn days(ds: &[Day]) -> String {
    let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut idx: Vec<usize> = ds.iter().map(|d| *d as usize).collect();
    idx.sort_unstable();
    idx.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && idx[j + 1] == idx[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            out.push(format!("{}–{}", names[idx[i]], names[idx[j]]));
        } else {
            out.extend(idx[i..=j].iter().map(|k| names[*k].to_string()));
        }
        i = j + 1;
    }
    out.join(",")
}
