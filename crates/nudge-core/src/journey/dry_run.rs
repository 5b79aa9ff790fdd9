//! Dry runs: a journey replayed over recorded history, through the same decision core
//! the engine uses ([`step`]), on a virtual clock — who would have entered, which
//! steps they would have reached, what would have been sent — without sending or
//! storing anything.
//!
//! For each contact the recorded events are fed in time order; between them the
//! run's timers fire at their due times (waits, timeouts, quiet hours, caps). The
//! facts conditions read are the contact's as they were at each moment (events up to
//! then; traits, subscriptions and segments as they are now, the history of those is
//! not kept). Messages are not delivered, so nothing is opened or clicked: branches on
//! engagement take their "not" exit.

use super::{
    Command, Context, FinishReason, FrequencyCap, Input, JourneyDefinition, PreviousRun, RunState, SentMessage, StepId,
    Trigger, may_enter, step,
};
use crate::segment::{EventFact, Facts};
use crate::{ContactId, Millis};
use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One contact to replay: its facts (with its recorded events) and time zone.
#[derive(Debug, Clone)]
pub struct DryRunContact {
    pub facts: Facts,
    pub time_zone: TimeZone,
}

/// What a dry run found.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DryRunReport {
    /// Contacts replayed.
    pub contacts: usize,
    /// Runs that would have started, and by how many distinct contacts.
    pub entered: usize,
    pub entered_contacts: usize,
    /// Entries refused (re-entry, concurrency, entry filter, goal already met), by why.
    pub refused: BTreeMap<String, usize>,
    /// Per step: runs that reached it and messages it would have queued.
    pub steps: BTreeMap<StepId, DryRunStep>,
    /// Finished runs by reason; runs still going at the end of the window are `active`.
    pub finished: BTreeMap<String, usize>,
    pub active: usize,
    /// Messages (and webhook calls) that would have been queued.
    pub messages: usize,
    /// The first contacts' paths, step by step.
    pub paths: Vec<DryRunPath>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DryRunStep {
    pub reached: usize,
    pub sent: usize,
}

/// One run of one contact: when it entered, the steps it reached (with when), and
/// how it ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRunPath {
    pub contact_id: ContactId,
    pub entered_at: Millis,
    pub steps: Vec<(StepId, Millis)>,
    pub finished: Option<(String, Millis)>,
}

/// A replayed run: its state and pending timers.
struct SimRun {
    state: RunState,
    timers: BTreeMap<String, Millis>,
    path: DryRunPath,
}

/// Replays `def` for `contacts` over `[from, until]`, keeping up to `max_paths`
/// paths. `caps` are the workspace's frequency caps (sends of this journey count).
pub fn dry_run(
    def: &JourneyDefinition,
    contacts: &[DryRunContact],
    from: Millis,
    until: Millis,
    caps: &[FrequencyCap],
    max_paths: usize,
) -> DryRunReport {
    let mut report = DryRunReport {
        contacts: contacts.len(),
        ..Default::default()
    };
    let mut next_run_id = 1;
    for contact in contacts {
        let runs = replay_contact(def, contact, from, until, caps, &mut next_run_id, &mut report);
        if !runs.is_empty() {
            report.entered_contacts += 1;
        }
        for r in runs {
            report.entered += 1;
            match &r.path.finished {
                Some((reason, _)) => *report.finished.entry(reason.clone()).or_default() += 1,
                None => report.active += 1,
            }
            if report.paths.len() < max_paths {
                report.paths.push(r.path);
            }
        }
    }
    report
}

/// The moments in `[from, until]` a time trigger fires for this contact.
fn occurrences(trigger: &Trigger, facts: &Facts, tz: &TimeZone, from: Millis, until: Millis) -> Vec<Millis> {
    let mut out = vec![];
    let mut t = from;
    while let Some(at) = trigger.next_occurrence(&facts.traits, t, tz) {
        if at > until || out.len() >= 1000 {
            break;
        }
        out.push(at);
        t = at + 1;
    }
    out
}

/// What happens next for one contact: an event, a timer of a run, or a time entry.
enum Next {
    Event(usize),
    Timer(usize, String),
    Entry(usize),
}

fn replay_contact(
    def: &JourneyDefinition,
    contact: &DryRunContact,
    from: Millis,
    until: Millis,
    caps: &[FrequencyCap],
    next_run_id: &mut i64,
    report: &mut DryRunReport,
) -> Vec<SimRun> {
    let mut events: Vec<&EventFact> = contact
        .facts
        .events
        .iter()
        .filter(|e| e.timestamp >= from && e.timestamp <= until)
        .collect();
    events.sort_by_key(|e| e.timestamp);
    let entries = if matches!(def.trigger, Trigger::DateTrait { .. } | Trigger::Schedule { .. }) {
        occurrences(&def.trigger, &contact.facts, &contact.time_zone, from, until)
    } else {
        vec![]
    };
    let mut runs: Vec<SimRun> = vec![];
    let mut sent: Vec<SentMessage> = vec![];
    let (mut ei, mut ni) = (0, 0);
    loop {
        // The earliest of: the next event, the next entry moment, the earliest timer.
        let mut best: Option<(Millis, Next)> = None;
        let mut consider = |at: Millis, n: Next| {
            if at <= until && best.as_ref().is_none_or(|(b, _)| at < *b) {
                best = Some((at, n));
            }
        };
        if let Some(e) = events.get(ei) {
            consider(e.timestamp, Next::Event(ei));
        }
        if let Some(&at) = entries.get(ni) {
            consider(at, Next::Entry(ni));
        }
        for (i, r) in runs.iter().enumerate() {
            if r.state.is_finished() {
                continue;
            }
            if let Some((key, &at)) = r.timers.iter().min_by_key(|(_, at)| **at) {
                consider(at, Next::Timer(i, key.clone()));
            }
        }
        let Some((now, next)) = best else { break };
        // Facts as they were at `now`: the events up to then.
        let mut facts = contact.facts.clone();
        facts.events.retain(|e| e.timestamp <= now);
        // Sends up to now count against the caps (those of this moment, of other
        // runs, are added after it).
        let recent = sent.clone();
        let ctx = Context {
            now,
            facts: &facts,
            time_zone: &contact.time_zone,
            caps,
            recent_sends: &recent,
            // Replays send at once: the profile is the contact's as of today.
            send_time: None,
        };
        match next {
            Next::Timer(i, key) => {
                runs[i].timers.remove(&key);
                feed(def, &mut runs[i], Input::Timer { key }, &ctx, &mut sent, report);
            }
            Next::Event(i) => {
                ei = i + 1;
                let e = events[i];
                for r in runs.iter_mut().filter(|r| !r.state.is_finished()) {
                    let input = Input::Event {
                        name: e.name.clone(),
                        properties: e.properties.clone(),
                        at: e.timestamp,
                    };
                    feed(def, r, input, &ctx, &mut sent, report);
                }
                if def.trigger.matches_event(&e.name, &e.properties, now) {
                    enter(
                        def,
                        &mut runs,
                        e.properties.clone(),
                        &ctx,
                        next_run_id,
                        &mut sent,
                        report,
                    );
                }
            }
            Next::Entry(i) => {
                ni = i + 1;
                enter(def, &mut runs, Map::new(), &ctx, next_run_id, &mut sent, report);
            }
        }
    }
    runs
}

fn enter(
    def: &JourneyDefinition,
    runs: &mut Vec<SimRun>,
    properties: Map<String, Value>,
    ctx: &Context,
    next_run_id: &mut i64,
    sent: &mut Vec<SentMessage>,
    report: &mut DryRunReport,
) {
    let previous: Vec<PreviousRun> = runs
        .iter()
        .map(|r| PreviousRun {
            entered_at: r.path.entered_at,
            finished_at: r.path.finished.as_ref().map(|(_, at)| *at),
        })
        .collect();
    if let Err(refusal) = may_enter(def, ctx.facts, &previous, ctx.now) {
        let why = match refusal {
            super::Refusal::EntryFilter => "entry_filter",
            super::Refusal::AlreadyEntered => "already_entered",
            super::Refusal::TooSoon { .. } => "too_soon",
            super::Refusal::TooManyRuns { .. } => "too_many_runs",
            super::Refusal::GoalMet => "goal_met",
            super::Refusal::ExitConditionMet => "exit_condition_met",
        };
        *report.refused.entry(why.into()).or_default() += 1;
        return;
    }
    let id = *next_run_id;
    *next_run_id += 1;
    runs.push(SimRun {
        state: RunState::new(id, 0, ctx.facts.contact_id, 0, ctx.now),
        timers: BTreeMap::new(),
        path: DryRunPath {
            contact_id: ctx.facts.contact_id,
            entered_at: ctx.now,
            steps: vec![],
            finished: None,
        },
    });
    let last = runs.len() - 1;
    feed(def, &mut runs[last], Input::Start { properties }, ctx, sent, report);
}

/// One input to one replayed run: its new state, timers, the steps it passed and
/// what it would have sent.
fn feed(
    def: &JourneyDefinition,
    run: &mut SimRun,
    input: Input,
    ctx: &Context,
    sent: &mut Vec<SentMessage>,
    report: &mut DryRunReport,
) {
    let t = step(def, &run.state, input, ctx);
    for c in &t.commands {
        match c {
            Command::EmitEvent { name, properties, .. } if name == "Journey Step Reached" => {
                if let Some(s) = properties.get("step").and_then(Value::as_str) {
                    report.steps.entry(s.to_string()).or_default().reached += 1;
                    run.path.steps.push((s.to_string(), ctx.now));
                }
            }
            Command::Send {
                step,
                channel,
                transactional,
                ..
            } => {
                report.messages += 1;
                report.steps.entry(step.clone()).or_default().sent += 1;
                if !transactional {
                    sent.push(SentMessage {
                        channel: channel.clone(),
                        at: ctx.now,
                    });
                }
            }
            Command::CallWebhook { step, .. } => {
                report.messages += 1;
                report.steps.entry(step.clone()).or_default().sent += 1;
            }
            Command::ScheduleTimer { key, at } => {
                run.timers.insert(key.clone(), *at);
            }
            Command::CancelTimer { key } => {
                run.timers.remove(key);
            }
            Command::Finish { reason } => {
                run.timers.clear();
                run.path.finished = Some((finish_name(reason), ctx.now));
            }
            _ => {}
        }
    }
    run.state = t.state;
}

fn finish_name(reason: &FinishReason) -> String {
    reason.as_str().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::parse_journey;
    use crate::parse_instant;
    use serde_json::json;

    const HOUR: Millis = 3_600_000;

    fn at(s: &str) -> Millis {
        parse_instant(s).unwrap()
    }

    fn contact(id: ContactId, events: &[(&str, &str, Value)]) -> DryRunContact {
        DryRunContact {
            facts: Facts {
                contact_id: id,
                events: events
                    .iter()
                    .map(|(name, t, p)| EventFact {
                        name: name.to_string(),
                        timestamp: at(t),
                        properties: p.as_object().cloned().unwrap_or_default(),
                    })
                    .collect(),
                ..Default::default()
            },
            time_zone: TimeZone::UTC,
        }
    }

    fn cart() -> JourneyDefinition {
        parse_journey(&json!({
            "trigger": {"type": "event", "event": "Cart Updated"},
            "start": "wait-order",
            "steps": [
                {"id": "wait-order", "type": "wait_for_event", "event": "Order Completed", "match_key": "cart_id",
                 "timeout": {"hours": 1}, "on_event": "bought", "on_timeout": "remind"},
                {"id": "remind", "type": "send", "template": "cart-reminder", "next": "wait-day"},
                {"id": "wait-day", "type": "wait", "duration": {"hours": 23}, "next": "last-chance"},
                {"id": "last-chance", "type": "send", "template": "cart-reminder"},
                {"id": "bought", "type": "goal", "name": "purchased"}
            ],
            "settings": {"re_entry": {"type": "always"}, "max_concurrent_runs": 1}
        }))
        .unwrap()
    }

    #[test]
    fn replays_events_and_timers_in_time_order() {
        let contacts = [
            // Abandons: reminded after 1 hour, then the last chance a day later.
            contact(1, &[("Cart Updated", "2027-01-01T10:00:00Z", json!({"cart_id": "a"}))]),
            // Buys that cart within the hour: the goal, nothing sent.
            contact(
                2,
                &[
                    ("Cart Updated", "2027-01-01T10:00:00Z", json!({"cart_id": "b"})),
                    ("Order Completed", "2027-01-01T10:30:00Z", json!({"cart_id": "b"})),
                ],
            ),
            // Buys another cart: still reminded; a second cart while a run is active
            // is refused (one run at a time).
            contact(
                3,
                &[
                    ("Cart Updated", "2027-01-01T10:00:00Z", json!({"cart_id": "c"})),
                    ("Cart Updated", "2027-01-01T10:10:00Z", json!({"cart_id": "d"})),
                    ("Order Completed", "2027-01-01T10:20:00Z", json!({"cart_id": "d"})),
                ],
            ),
            // Nothing in the window.
            contact(4, &[("Cart Updated", "2026-12-01T10:00:00Z", json!({"cart_id": "e"}))]),
        ];
        let r = dry_run(
            &cart(),
            &contacts,
            at("2027-01-01T00:00:00Z"),
            at("2027-01-03T00:00:00Z"),
            &[],
            10,
        );
        assert_eq!((r.contacts, r.entered, r.entered_contacts), (4, 3, 3));
        assert_eq!(r.refused.get("too_many_runs"), Some(&1));
        assert_eq!(r.finished.get("goal"), Some(&1));
        assert_eq!(r.finished.get("completed"), Some(&2));
        assert_eq!(r.active, 0);
        assert_eq!(r.messages, 4);
        assert_eq!(r.steps["remind"], DryRunStep { reached: 2, sent: 2 });
        assert_eq!(r.steps["bought"].reached, 1);
        let first = &r.paths[0];
        assert_eq!(first.contact_id, 1);
        let t0 = at("2027-01-01T10:00:00Z");
        assert_eq!(
            first.steps,
            vec![
                ("wait-order".to_string(), t0),
                ("remind".to_string(), t0 + HOUR),
                ("wait-day".to_string(), t0 + HOUR),
                ("last-chance".to_string(), t0 + 24 * HOUR)
            ]
        );
        assert_eq!(first.finished, Some(("completed".to_string(), t0 + 24 * HOUR)));
    }

    #[test]
    fn a_window_that_ends_mid_wait_leaves_runs_active() {
        let contacts = [contact(
            1,
            &[("Cart Updated", "2027-01-01T10:00:00Z", json!({"cart_id": "a"}))],
        )];
        let r = dry_run(
            &cart(),
            &contacts,
            at("2027-01-01T00:00:00Z"),
            at("2027-01-01T12:00:00Z"),
            &[],
            0,
        );
        assert_eq!((r.entered, r.active, r.messages), (1, 1, 1));
        assert!(r.paths.is_empty(), "no paths asked for");
    }

    #[test]
    fn date_triggers_fire_on_each_occurrence_in_the_window() {
        let def = parse_journey(&json!({
            "trigger": {"type": "date_trait", "trait": "birthday", "every_year": true, "time": "09:00"},
            "start": "wish",
            "steps": [{"id": "wish", "type": "send", "template": "birthday"}],
            "settings": {"re_entry": {"type": "always"}}
        }))
        .unwrap();
        let mut c = contact(1, &[]);
        c.facts.traits.insert("birthday".into(), json!("1990-03-16"));
        c.time_zone = TimeZone::get("Europe/Paris").unwrap();
        let r = dry_run(
            &def,
            &[c, contact(2, &[])],
            at("2026-01-01T00:00:00Z"),
            at("2027-12-31T00:00:00Z"),
            &[],
            5,
        );
        assert_eq!((r.entered, r.entered_contacts, r.messages), (2, 1, 2));
        assert_eq!(r.paths[0].entered_at, at("2026-03-16T08:00:00Z"));
        assert_eq!(r.paths[1].entered_at, at("2027-03-16T08:00:00Z"));
    }

    #[test]
    fn frequency_caps_defer_replayed_sends() {
        let def = parse_journey(&json!({
            "trigger": {"type": "event", "event": "Viewed"},
            "start": "note",
            "steps": [{"id": "note", "type": "send", "template": "t", "channel": "email"}],
            "settings": {"re_entry": {"type": "always"}, "max_concurrent_runs": 5}
        }))
        .unwrap();
        let caps: Vec<FrequencyCap> =
            serde_json::from_value(json!([{"channel": "email", "max": 1, "per": "day"}])).unwrap();
        let contacts = [contact(
            1,
            &[
                ("Viewed", "2027-01-01T10:00:00Z", json!({})),
                ("Viewed", "2027-01-01T11:00:00Z", json!({})),
            ],
        )];
        let r = dry_run(
            &def,
            &contacts,
            at("2027-01-01T00:00:00Z"),
            at("2027-01-03T00:00:00Z"),
            &caps,
            5,
        );
        assert_eq!(r.messages, 2, "the second is deferred, not dropped");
        let second = &r.paths[1];
        assert!(
            second.finished.as_ref().unwrap().1 >= at("2027-01-02T10:00:00Z"),
            "{second:?}"
        );
    }
}
