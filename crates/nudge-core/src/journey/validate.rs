//! Validation of a journey definition: every problem, in plain words, with the JSON
//! path of the node at fault.

use super::calendar::parse_time_of_day;
use super::{Day, Duration, EventMatch, JourneyDefinition, NameOrId, ReEntry, SendWindow, StepKind, Trigger};
use crate::segment::{Condition, Count, DAY_MS, PropertyFilter, Window};
use std::collections::{HashMap, VecDeque};

/// The longest wait or timeout accepted: five years.
pub const MAX_WAIT_MS: i64 = 5 * 366 * DAY_MS;
/// Most steps in one journey.
pub const MAX_STEPS: usize = 500;

/// A problem in a definition, at a JSON path (`steps[3].on_timeout`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{path}: {message}")]
pub struct JourneyError {
    pub path: String,
    pub message: String,
}

/// A path inside an embedded condition (`$.conditions[1]`) below `prefix`.
pub(super) fn nest(prefix: &str, inner: &str) -> String {
    match inner.strip_prefix('$') {
        Some(rest) => format!("{prefix}{rest}"),
        None => format!("{prefix}.{inner}"),
    }
}

#[derive(Default)]
struct Errors(Vec<JourneyError>);

impl Errors {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(JourneyError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn condition(&mut self, path: &str, c: &Condition) {
        if let Err(e) = c.validate() {
            self.add(nest(path, &e.path), e.message);
        }
    }

    /// An event name and its property filters, checked as the segment language does.
    fn event(&mut self, path: &str, event: &str, filters: &[PropertyFilter]) {
        let c = Condition::Event {
            event: event.to_string(),
            filters: filters.to_vec(),
            count: Count::default(),
            window: Window::Ever,
        };
        self.condition(path, &c);
    }

    fn name(&mut self, path: &str, name: &str) {
        if name.is_empty() || name.len() > 200 || name.contains(['"', '\\', '\'', '\0']) {
            self.add(path, "must be 1 to 200 characters without quotes or backslashes");
        }
    }

    fn time(&mut self, path: &str, s: &str) {
        if parse_time_of_day(s).is_none() {
            self.add(
                path,
                format!("{s:?} is not a time of day; use HH:MM, from 00:00 to 23:59"),
            );
        }
    }

    fn days(&mut self, path: &str, days: &[Day]) {
        for (i, d) in days.iter().enumerate() {
            if days[..i].contains(d) {
                self.add(format!("{path}[{i}]"), format!("{d:?} is listed twice").to_lowercase());
            }
        }
    }

    fn duration(&mut self, path: &str, d: &Duration) {
        if let Duration::Parts(p) = d
            && (p.days < 0 || p.hours < 0 || p.minutes < 0)
        {
            self.add(path, "days, hours and minutes cannot be negative");
            return;
        }
        let ms = d.as_millis();
        if ms <= 0 {
            self.add(path, "must be longer than zero");
        } else if ms > MAX_WAIT_MS {
            self.add(path, "must be at most 5 years");
        }
    }

    fn named(&mut self, path: &str, what: &str, r: &NameOrId) {
        match r {
            NameOrId::Id(id) if *id <= 0 => self.add(path, format!("a {what} id is a positive number")),
            NameOrId::Name(n) if n.trim().is_empty() => self.add(path, format!("a {what} name cannot be empty")),
            _ => {}
        }
    }

    fn match_key(&mut self, path: &str, key: &str, trigger: &Trigger) {
        self.name(path, key);
        if !trigger.has_properties() {
            self.add(
                path,
                "needs a trigger with properties (event, form or api): the value to match is \
                 captured from the trigger when the run starts",
            );
        }
    }

    fn event_match(&mut self, path: &str, m: &EventMatch, trigger: &Trigger) {
        self.event(path, &m.event, &m.filters);
        if let Some(k) = &m.match_key {
            self.match_key(&format!("{path}.match_key"), k, trigger);
        }
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn minutes(s: &str) -> Option<i32> {
    parse_time_of_day(s).map(|(h, m)| h as i32 * 60 + m as i32)
}

/// Whether quiet hours and the send window leave at least one minute of the week.
fn some_time_to_send(quiet: Option<(i32, i32)>, window: Option<(&SendWindow, i32, i32)>) -> bool {
    (0..7 * 24 * 60).any(|w| {
        let (day, m) = (w / (24 * 60), w % (24 * 60));
        let quiet = quiet.is_some_and(|(s, e)| if s < e { s <= m && m < e } else { m >= s || m < e });
        let open = window.is_none_or(|(win, from, to)| {
            let days = [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri, Day::Sat, Day::Sun];
            (win.days.is_empty() || win.days.contains(&days[day as usize])) && from <= m && m < to
        });
        !quiet && open
    })
}

impl JourneyDefinition {
    /// Checks everything serde cannot: ids and pointers, the shape of the graph,
    /// embedded conditions, times, durations and percentages. All problems are
    /// returned, each with the path of the node at fault.
    pub fn validate(&self) -> Result<(), Vec<JourneyError>> {
        let mut e = Errors::default();
        self.check_trigger(&mut e);
        self.check_settings(&mut e);
        self.check_steps(&mut e);
        if e.0.is_empty() { Ok(()) } else { Err(e.0) }
    }

    fn check_trigger(&self, e: &mut Errors) {
        match &self.trigger {
            Trigger::Event { event, filters } => e.event("trigger", event, filters),
            Trigger::SegmentEntered { segment_id } | Trigger::SegmentExited { segment_id } => {
                if *segment_id <= 0 {
                    e.add("trigger.segment_id", "must be a segment id (a positive number)");
                }
            }
            Trigger::DateTrait {
                name,
                offset_days,
                time,
                ..
            } => {
                e.name("trigger.trait", name);
                if offset_days.abs() > 366 {
                    e.add("trigger.offset_days", "must be between -366 and 366 days");
                }
                if let Some(t) = time {
                    e.time("trigger.time", t);
                }
            }
            Trigger::Form { form } => e.named("trigger.form", "form", form),
            Trigger::Api => {}
            Trigger::Schedule { segment_id, at, every } => {
                if *segment_id <= 0 {
                    e.add("trigger.segment_id", "must be a segment id (a positive number)");
                }
                match (at, every) {
                    (Some(_), Some(_)) => e.add(
                        "trigger",
                        "a schedule is either one-off (at) or recurring (every), not both",
                    ),
                    (None, None) => e.add("trigger", "a schedule needs a moment (at) or a recurrence (every)"),
                    (Some(at), None) => {
                        if crate::parse_instant(at).is_none() {
                            e.add("trigger.at", format!("{at:?} is not an ISO 8601 date and time"));
                        }
                    }
                    (None, Some(r)) => {
                        e.time("trigger.every.time", &r.time);
                        e.days("trigger.every.days", &r.days);
                    }
                }
            }
        }
    }

    fn check_settings(&self, e: &mut Errors) {
        let s = &self.settings;
        if let Some(c) = &s.entry_filter {
            e.condition("settings.entry_filter", c);
        }
        if let Some(c) = &s.goal {
            e.condition("settings.goal", c);
        }
        if let Some(c) = &s.exit_condition {
            e.condition("settings.exit_condition", c);
        }
        if let Some(m) = &s.goal_event {
            e.event_match("settings.goal_event", m, &self.trigger);
        }
        if let Some(m) = &s.exit_event {
            e.event_match("settings.exit_event", m, &self.trigger);
        }
        if let ReEntry::After { days: 0 } = s.re_entry {
            e.add(
                "settings.re_entry.days",
                "must be at least 1 (use \"always\" for no delay)",
            );
        }
        if s.max_concurrent_runs == 0 {
            e.add("settings.max_concurrent_runs", "must be at least 1");
        }
        let mut quiet = None;
        if let Some(q) = &s.quiet_hours {
            e.time("settings.quiet_hours.start", &q.start);
            e.time("settings.quiet_hours.end", &q.end);
            if let (Some(a), Some(b)) = (minutes(&q.start), minutes(&q.end)) {
                if a == b {
                    e.add("settings.quiet_hours", "start and end are the same time");
                } else {
                    quiet = Some((a, b));
                }
            }
        }
        let mut window = None;
        if let Some(w) = &s.send_window {
            e.time("settings.send_window.from", &w.from);
            e.time("settings.send_window.to", &w.to);
            e.days("settings.send_window.days", &w.days);
            if let (Some(a), Some(b)) = (minutes(&w.from), minutes(&w.to)) {
                if a >= b {
                    e.add("settings.send_window", "from must be earlier in the day than to");
                } else {
                    window = Some((w, a, b));
                }
            }
        }
        if (quiet.is_some() || window.is_some()) && !some_time_to_send(quiet, window) {
            e.add(
                "settings",
                "quiet hours and the send window leave no moment to send: messages would wait forever",
            );
        }
    }

    fn check_steps(&self, e: &mut Errors) {
        if self.steps.is_empty() {
            e.add("steps", "a journey needs at least one step");
            return;
        }
        if self.steps.len() > MAX_STEPS {
            e.add("steps", format!("a journey has at most {MAX_STEPS} steps"));
            return;
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            if !valid_id(&s.id) {
                e.add(
                    format!("steps[{i}].id"),
                    format!(
                        "{:?} is not a valid id: use 1 to 64 letters, digits, '_', '-' or '.'",
                        s.id
                    ),
                );
            }
            if let Some(first) = index.get(s.id.as_str()) {
                e.add(
                    format!("steps[{i}].id"),
                    format!("the id {:?} is already used by steps[{first}]", s.id),
                );
            } else {
                index.insert(&s.id, i);
            }
        }
        let start = index.get(self.start.as_str()).copied();
        if start.is_none() {
            e.add("start", format!("no step has the id {:?}", self.start));
        }
        for (i, s) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            self.check_step(e, &at, &s.kind, &index);
            for (exit, target) in s.kind.exits() {
                if let Some(t) = target
                    && !index.contains_key(t.as_str())
                {
                    e.add(format!("{at}.{exit}"), format!("no step has the id {t:?}"));
                }
            }
        }
        if let Some(start) = start {
            self.check_graph(e, start, &index);
        }
    }

    fn check_step(&self, e: &mut Errors, at: &str, kind: &StepKind, index: &HashMap<&str, usize>) {
        match kind {
            StepKind::Send {
                template,
                channel,
                transactional,
                best_time,
                ..
            } => {
                e.named(&format!("{at}.template"), "template", template);
                if let Some(best) = best_time {
                    if *transactional {
                        e.add(
                            format!("{at}.best_time"),
                            "a transactional send goes at once; best_time is for marketing sends",
                        );
                    }
                    if let Some(problem) = best.problem() {
                        e.add(format!("{at}.best_time.within_hours"), problem);
                    }
                }
                if let Some(c) = channel
                    && !crate::contact::CHANNELS.contains(&c.as_str())
                {
                    e.add(
                        format!("{at}.channel"),
                        format!("unknown channel {c:?}; one of {}", crate::contact::CHANNELS.join(", ")),
                    );
                }
            }
            StepKind::Wait { duration, .. } => e.duration(&format!("{at}.duration"), duration),
            StepKind::WaitUntil { time, days, .. } => {
                e.time(&format!("{at}.time"), time);
                e.days(&format!("{at}.days"), days);
            }
            StepKind::WaitForEvent {
                event,
                filters,
                match_key,
                timeout,
                ..
            } => {
                e.event(at, event, filters);
                if let Some(k) = match_key {
                    e.match_key(&format!("{at}.match_key"), k, &self.trigger);
                }
                e.duration(&format!("{at}.timeout"), timeout);
            }
            StepKind::Branch { condition, message, .. } => match (condition, message) {
                (Some(c), None) => e.condition(&format!("{at}.condition"), c),
                (None, Some(t)) => match index.get(t.step.as_str()).map(|&i| &self.steps[i].kind) {
                    Some(StepKind::Send { .. }) => {}
                    Some(other) => e.add(
                        format!("{at}.message.step"),
                        format!(
                            "step {:?} is a {} step; a message test needs a send step",
                            t.step,
                            other.type_name()
                        ),
                    ),
                    None => e.add(format!("{at}.message.step"), format!("no step has the id {:?}", t.step)),
                },
                (Some(_), Some(_)) => e.add(at, "a branch tests either a condition or a message, not both"),
                (None, None) => e.add(at, "a branch needs a condition or a message test"),
            },
            StepKind::MultiBranch { cases, .. } => {
                if cases.is_empty() {
                    e.add(format!("{at}.cases"), "a multi-way branch needs at least one case");
                }
                for (j, c) in cases.iter().enumerate() {
                    e.condition(&format!("{at}.cases[{j}].condition"), &c.condition);
                }
            }
            StepKind::Split { variants } => {
                if variants.len() < 2 {
                    e.add(format!("{at}.variants"), "a split needs at least two variants");
                }
                let sum: u32 = variants.iter().map(|v| v.percent as u32).sum();
                if sum != 100 {
                    e.add(
                        format!("{at}.variants"),
                        format!("the percentages add up to {sum}; they must add up to 100"),
                    );
                }
            }
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
                let nothing = set.is_empty()
                    && unset.is_empty()
                    && add_tags.is_empty()
                    && remove_tags.is_empty()
                    && add_lists.is_empty()
                    && remove_lists.is_empty()
                    && *lead_score == 0;
                if nothing {
                    e.add(
                        at,
                        "changes nothing: give set, unset, add_tags, remove_tags, add_lists, \
                         remove_lists or lead_score",
                    );
                }
                for (name, value) in set {
                    e.name(&format!("{at}.set.{name}"), name);
                    if value.is_null() {
                        e.add(format!("{at}.set.{name}"), "is null; use unset to remove a trait");
                    }
                    if unset.contains(name) {
                        e.add(format!("{at}.set.{name}"), "is both set and unset");
                    }
                }
                for (j, name) in unset.iter().enumerate() {
                    e.name(&format!("{at}.unset[{j}]"), name);
                }
                for (field, tags) in [("add_tags", add_tags), ("remove_tags", remove_tags)] {
                    for (j, t) in tags.iter().enumerate() {
                        e.name(&format!("{at}.{field}[{j}]"), t);
                    }
                }
                for (field, lists) in [("add_lists", add_lists), ("remove_lists", remove_lists)] {
                    for (j, l) in lists.iter().enumerate() {
                        e.named(&format!("{at}.{field}[{j}]"), "list", l);
                    }
                }
            }
            StepKind::Webhook { template, .. } => e.named(&format!("{at}.template"), "template", template),
            StepKind::Goal { name } => {
                if let Some(n) = name {
                    e.name(&format!("{at}.name"), n);
                }
            }
            StepKind::Exit => {}
        }
    }

    /// Unreachable steps, steps from which no path ends, and loops without a wait.
    fn check_graph(&self, e: &mut Errors, start: usize, index: &HashMap<&str, usize>) {
        let n = self.steps.len();
        // (exit name, target index; None: the path ends there). An unknown target is
        // reported on its own and counts as an end here, so it is not reported twice.
        let edges: Vec<Vec<(String, Option<usize>)>> = self
            .steps
            .iter()
            .map(|s| {
                s.kind
                    .exits()
                    .into_iter()
                    .map(|(name, t)| (name, t.and_then(|t| index.get(t.as_str()).copied())))
                    .collect()
            })
            .collect();

        let mut reachable = vec![false; n];
        let mut queue = VecDeque::from([start]);
        reachable[start] = true;
        while let Some(i) = queue.pop_front() {
            for &(_, t) in &edges[i] {
                if let Some(j) = t
                    && !reachable[j]
                {
                    reachable[j] = true;
                    queue.push_back(j);
                }
            }
        }
        for (i, s) in self.steps.iter().enumerate() {
            if !reachable[i] {
                e.add(
                    format!("steps[{i}]"),
                    format!(
                        "step {:?} can never be reached from the start step {:?}",
                        s.id, self.start
                    ),
                );
            }
        }

        // Steps from which some path ends: goal, exit, or a missing exit.
        let mut can_end: Vec<bool> = self
            .steps
            .iter()
            .zip(&edges)
            .map(|(s, out)| {
                matches!(s.kind, StepKind::Goal { .. } | StepKind::Exit) || out.iter().any(|(_, t)| t.is_none())
            })
            .collect();
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..n {
                if !can_end[i] && edges[i].iter().any(|&(_, t)| t.is_some_and(|j| can_end[j])) {
                    can_end[i] = true;
                    changed = true;
                }
            }
        }
        for (i, s) in self.steps.iter().enumerate() {
            if reachable[i] && !can_end[i] {
                e.add(
                    format!("steps[{i}]"),
                    format!(
                        "no path from step {:?} reaches an end (an exit, a goal or a missing next): \
                         runs there would never finish",
                        s.id
                    ),
                );
            }
        }

        // Loops through instant steps only (depth-first search, iterative).
        let instant: Vec<bool> = self.steps.iter().map(|s| !s.kind.is_wait()).collect();
        let mut color = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
        for root in 0..n {
            if !instant[root] || color[root] != 0 {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            color[root] = 1;
            while let Some((i, k)) = stack.pop() {
                if k >= edges[i].len() {
                    color[i] = 2;
                    continue;
                }
                stack.push((i, k + 1));
                let (exit, t) = &edges[i][k];
                let Some(j) = *t else { continue };
                if !instant[j] {
                    continue;
                }
                match color[j] {
                    0 => {
                        color[j] = 1;
                        stack.push((j, 0));
                    }
                    1 => e.add(
                        format!("steps[{i}].{exit}"),
                        format!(
                            "leads back to step {:?} with no wait in between: a run would loop forever \
                             in an instant",
                            self.steps[j].id
                        ),
                    ),
                    _ => {}
                }
            }
        }
    }
}
