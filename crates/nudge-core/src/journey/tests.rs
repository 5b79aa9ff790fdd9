use super::*;
use crate::segment::Facts;
use crate::{format_millis, parse_instant};
use jiff::tz::TimeZone;
use proptest::prelude::*;
use serde_json::json;
use std::collections::HashSet;

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;

fn at(s: &str) -> Millis {
    parse_instant(s).unwrap_or_else(|| panic!("bad instant {s}"))
}

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

fn props(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn parse(v: Value) -> JourneyDefinition {
    parse_journey(&v).unwrap_or_else(|e| panic!("{v}: {e:?}"))
}

/// A run driven through `step`, with the contact's world around it.
struct Sim {
    def: JourneyDefinition,
    state: RunState,
    facts: Facts,
    tz: TimeZone,
    caps: Vec<FrequencyCap>,
    sends: Vec<SentMessage>,
    send_time: Option<crate::send_time::Estimate>,
    log: Vec<Command>,
}

impl Sim {
    fn new(def: Value) -> Sim {
        Sim::with(parse(def), 7)
    }

    fn with(def: JourneyDefinition, run_id: i64) -> Sim {
        Sim {
            def,
            state: RunState::new(run_id, 1, 42, 3, 0),
            facts: Facts {
                contact_id: 42,
                ..Facts::default()
            },
            tz: TimeZone::UTC,
            caps: vec![],
            sends: vec![],
            send_time: None,
            log: vec![],
        }
    }

    fn feed(&mut self, now: Millis, input: Input) -> Vec<String> {
        let ctx = Context {
            now,
            facts: &self.facts,
            time_zone: &self.tz,
            caps: &self.caps,
            recent_sends: &self.sends,
            send_time: self.send_time.as_ref(),
        };
        let t = step(&self.def, &self.state, input.clone(), &ctx);
        let reached = t
            .commands
            .iter()
            .filter(|c| matches!(c, Command::EmitEvent { name, .. } if name == "Journey Step Reached"))
            .count();
        assert!(reached <= MAX_STEPS_PER_TRANSITION, "{reached} steps in one transition");
        // Pure: the same call gives the same transition.
        assert_eq!(step(&self.def, &self.state, input, &ctx), t);
        // The state survives storage as JSON.
        let stored = serde_json::to_value(&t.state).unwrap();
        assert_eq!(serde_json::from_value::<RunState>(stored).unwrap(), t.state);
        for c in &t.commands {
            if let Command::Send {
                channel,
                transactional: false,
                ..
            } = c
            {
                self.sends.push(SentMessage {
                    channel: channel.clone(),
                    at: now,
                });
            }
        }
        self.state = t.state;
        self.log.extend(t.commands.iter().cloned());
        describe(&t.commands)
    }

    fn start(&mut self, now: Millis, properties: Value) -> Vec<String> {
        self.state.entered_at = now;
        self.feed(
            now,
            Input::Start {
                properties: props(properties),
            },
        )
    }

    /// Fires the timer the run waits on, at its due time.
    fn fire(&mut self) -> Vec<String> {
        let w = self.state.waiting.clone().expect("the run waits on a timer");
        self.feed(w.due, Input::Timer { key: w.timer_key })
    }

    fn event(&mut self, now: Millis, name: &str, properties: Value) -> Vec<String> {
        self.feed(
            now,
            Input::Event {
                name: name.into(),
                properties: props(properties),
                at: now,
            },
        )
    }

    fn due(&self) -> String {
        format_millis(self.state.waiting.as_ref().expect("waiting").due)
    }

    fn finished(&self) -> Option<&str> {
        match &self.state.status {
            RunStatus::Finished { reason, .. } => Some(reason.as_str()),
            _ => None,
        }
    }
}

/// Commands in a compact, readable form for assertions.
fn describe(commands: &[Command]) -> Vec<String> {
    commands
        .iter()
        .map(|c| match c {
            Command::Send {
                step,
                idempotency_key,
                transactional,
                ..
            } => {
                let t = if *transactional { " transactional" } else { "" };
                format!("send {step}{t} ({idempotency_key})")
            }
            Command::ScheduleTimer { at, .. } => format!("timer {}", format_millis(*at)),
            Command::CancelTimer { .. } => "cancel timer".into(),
            Command::ListenFor { waits } => {
                let w: Vec<String> = waits
                    .iter()
                    .map(|w| match &w.key {
                        Some(k) => format!("{}={k}", w.event),
                        None => w.event.clone(),
                    })
                    .collect();
                format!("listen [{}]", w.join(", "))
            }
            Command::UpdateContact { step, .. } => format!("update {step}"),
            Command::CallWebhook { step, .. } => format!("webhook {step}"),
            Command::EmitEvent { name, properties, .. } if name == "Journey Step Reached" => {
                format!("reached {}", properties["step"].as_str().unwrap_or_default())
            }
            Command::EmitEvent { name, .. } => format!("event {name}"),
            Command::Finish { reason } => format!("finish {}", reason.as_str()),
        })
        .collect()
}

fn abandoned_cart() -> Value {
    json!({
        "trigger": {"type": "event", "event": "Cart Updated"},
        "start": "wait-order",
        "steps": [
            {"id": "wait-order", "type": "wait_for_event", "event": "Order Completed",
             "match_key": "cart_id", "timeout": {"hours": 1},
             "on_event": "bought", "on_timeout": "remind-1"},
            {"id": "remind-1", "type": "send", "template": "cart-reminder", "channel": "email", "next": "wait-23h"},
            {"id": "wait-23h", "type": "wait", "duration": {"hours": 23}, "next": "remind-2"},
            {"id": "remind-2", "type": "send", "template": "cart-last-chance", "channel": "email", "next": "done"},
            {"id": "bought", "type": "goal", "name": "purchased"},
            {"id": "done", "type": "exit"}
        ],
        "settings": {
            "re_entry": {"type": "always"},
            "goal_event": {"event": "Order Completed", "match_key": "cart_id"}
        }
    })
}

const T0: &str = "2027-03-15T10:00:00Z"; // a Monday

#[test]
fn abandoned_cart_without_purchase_sends_two_reminders_and_exits() {
    let mut s = Sim::new(abandoned_cart());
    let t0 = at(T0);
    assert_eq!(
        s.start(t0, json!({"cart_id": "c1", "total": 80})),
        [
            "reached wait-order",
            "timer 2027-03-15T11:00:00.000Z",
            "listen [Order Completed=c1]"
        ]
    );
    assert_eq!(s.state.captured.get("cart_id").map(String::as_str), Some("c1"));
    assert_eq!(s.state.trigger["total"], 80);
    assert_eq!(
        s.fire(),
        [
            "reached remind-1",
            "send remind-1 (run-7-step-remind-1-1)",
            "reached wait-23h",
            "cancel timer",
            "timer 2027-03-16T10:00:00.000Z"
        ],
        "the goal event keeps being listened for: no listen change"
    );
    assert_eq!(
        s.fire(),
        [
            "reached remind-2",
            "send remind-2 (run-7-step-remind-2-1)",
            "reached done",
            "event Journey Exited",
            "cancel timer",
            "listen []",
            "finish exited"
        ]
    );
    assert_eq!(s.finished(), Some("exited"));
}

#[test]
fn abandoned_cart_purchase_of_another_cart_does_not_count() {
    let mut s = Sim::new(abandoned_cart());
    let t0 = at(T0);
    s.start(t0, json!({"cart_id": "c1"}));
    let before = s.state.clone();
    assert!(
        s.event(t0 + 10 * 60_000, "Order Completed", json!({"cart_id": "c2"}))
            .is_empty()
    );
    assert!(s.event(t0 + 11 * 60_000, "Order Completed", json!({})).is_empty());
    assert!(
        s.event(t0 + 12 * 60_000, "Cart Updated", json!({"cart_id": "c1"}))
            .is_empty()
    );
    assert_eq!(s.state, before, "unmatched events change nothing");
}

#[test]
fn abandoned_cart_purchase_ends_the_run_at_once_even_mid_wait() {
    // During the wait for the order.
    let mut s = Sim::new(abandoned_cart());
    let t0 = at(T0);
    s.start(t0, json!({"cart_id": "c1"}));
    assert_eq!(
        s.event(t0 + 20 * 60_000, "Order Completed", json!({"cart_id": "c1"})),
        ["event Journey Goal Reached", "cancel timer", "listen []", "finish goal"]
    );
    assert_eq!(s.finished(), Some("goal"));

    // During the 23-hour wait after the first reminder.
    let mut s = Sim::new(abandoned_cart());
    s.start(t0, json!({"cart_id": 17}));
    s.fire();
    assert_eq!(s.state.position.as_deref(), Some("wait-23h"));
    assert_eq!(
        s.event(t0 + 5 * HOUR, "Order Completed", json!({"cart_id": 17.0})),
        ["event Journey Goal Reached", "cancel timer", "listen []", "finish goal"],
        "numbers match as numbers (17 = 17.0)"
    );
    // The old timer firing later is stale.
    assert!(
        s.feed(
            t0 + DAY,
            Input::Timer {
                key: "run-7-step-wait-23h-1-timer-2".into()
            }
        )
        .is_empty()
    );
}

#[test]
fn wait_for_event_takes_the_event_exit_with_the_same_key() {
    let mut def = abandoned_cart();
    def["settings"] = json!({});
    let mut s = Sim::new(def);
    let t0 = at(T0);
    s.start(t0, json!({"cart_id": "c1"}));
    assert!(
        s.event(t0 + 60_000, "Order Completed", json!({"cart_id": "c9"}))
            .is_empty()
    );
    assert_eq!(
        s.event(t0 + 120_000, "Order Completed", json!({"cart_id": "c1"})),
        [
            "reached bought",
            "event Journey Goal Reached",
            "cancel timer",
            "listen []",
            "finish goal"
        ]
    );
    assert_eq!(
        s.state.status,
        RunStatus::Finished {
            reason: FinishReason::Goal {
                name: Some("purchased".into())
            },
            at: t0 + 120_000
        }
    );
}

#[test]
fn an_event_after_the_timeout_belongs_to_the_timeout() {
    let mut def = abandoned_cart();
    def["settings"] = json!({});
    let mut s = Sim::new(def);
    let t0 = at(T0);
    s.start(t0, json!({"cart_id": "c1"}));
    // Processed late: happened at the timeout, before the timer was handled.
    let late = Input::Event {
        name: "Order Completed".into(),
        properties: props(json!({"cart_id": "c1"})),
        at: t0 + HOUR,
    };
    assert!(s.feed(t0 + HOUR + 5, late).is_empty());
    assert_eq!(s.fire()[1], "send remind-1 (run-7-step-remind-1-1)");
}

#[test]
fn no_captured_value_means_nothing_matches() {
    let mut def = abandoned_cart();
    def["settings"] = json!({});
    let mut s = Sim::new(def);
    let t0 = at(T0);
    assert_eq!(
        s.start(t0, json!({})),
        ["reached wait-order", "timer 2027-03-15T11:00:00.000Z"],
        "nothing to listen for"
    );
    assert!(s.event(t0 + 1, "Order Completed", json!({"cart_id": "c1"})).is_empty());
}

#[test]
fn stale_early_and_finished_inputs() {
    let mut s = Sim::new(abandoned_cart());
    let t0 = at(T0);
    s.start(t0, json!({"cart_id": "c1"}));
    let key = s.state.waiting.clone().unwrap().timer_key;
    assert_eq!(key, "run-7-step-wait-order-1-timer-1");
    // A timer the run does not wait for.
    assert!(
        s.feed(
            t0 + HOUR,
            Input::Timer {
                key: "run-7-step-x-1-timer-9".into()
            }
        )
        .is_empty()
    );
    // Early: the same timer again, nothing else.
    assert_eq!(
        s.feed(t0 + 1, Input::Timer { key: key.clone() }),
        ["timer 2027-03-15T11:00:00.000Z"]
    );
    assert_eq!(s.state.position.as_deref(), Some("wait-order"));
    s.fire();
    // The same timer delivered twice (at-least-once): the second is stale.
    assert!(s.feed(t0 + HOUR, Input::Timer { key }).is_empty());
    // Start twice: the second is ignored.
    assert!(s.start(t0, json!({"cart_id": "c2"})).is_empty());
    s.feed(t0 + 2 * HOUR, Input::Stop);
    assert_eq!(s.finished(), Some("stopped"));
    let done = s.state.clone();
    for input in [
        Input::Stop,
        Input::FactsChanged,
        Input::Timer { key: "any".into() },
        Input::Start { properties: Map::new() },
    ] {
        assert!(s.feed(t0 + 3 * HOUR, input).is_empty());
    }
    assert_eq!(s.state, done);
}

#[test]
fn inputs_before_the_start_are_ignored() {
    let mut s = Sim::new(abandoned_cart());
    assert!(s.feed(at(T0), Input::Timer { key: "x".into() }).is_empty());
    assert!(s.event(at(T0), "Order Completed", json!({})).is_empty());
    assert_eq!(s.state.status, RunStatus::New);
}

fn one_send(settings: Value) -> Value {
    json!({
        "trigger": {"type": "api"},
        "start": "hello",
        "steps": [{"id": "hello", "type": "send", "template": 5, "channel": "email"}],
        "settings": settings
    })
}

/// A contact who reads at 19:00 UTC (five clicks that week), as of `now`.
fn reads_at_seven_pm(now: Millis) -> crate::send_time::Estimate {
    use crate::send_time::{Engagement, Profile, estimate};
    let mut p = Profile::default();
    for d in 1..=5 {
        p.observe(Engagement::EmailClick, at("2027-01-04T19:10:00Z") + d * DAY);
    }
    estimate(&p, &Profile::default(), now)
}

fn best_time_send(within_hours: u32, settings: Value) -> Value {
    json!({
        "trigger": {"type": "api"},
        "start": "hello",
        "steps": [{"id": "hello", "type": "send", "template": 5, "channel": "email",
                   "best_time": {"within_hours": within_hours}}],
        "settings": settings
    })
}

#[test]
fn a_best_time_send_is_held_for_the_best_hour_and_released_at_it() {
    let t0 = at("2027-01-12T08:30:00Z");
    let mut s = Sim::new(best_time_send(24, json!({})));
    s.send_time = Some(reads_at_seven_pm(t0));
    assert_eq!(
        s.start(t0, json!({})),
        ["reached hello", "timer 2027-01-12T19:00:00.000Z"]
    );
    assert!(matches!(
        s.state.waiting.as_ref().unwrap().what,
        WaitingFor::Send {
            reason: DeferReason::BestTime
        }
    ));
    // Released at it, even if the estimate would now pick tomorrow's slot.
    s.send_time = Some(reads_at_seven_pm(at("2027-01-12T19:00:00Z")));
    assert_eq!(
        s.fire(),
        [
            "send hello (run-7-step-hello-1)",
            "event Journey Completed",
            "cancel timer",
            "finish completed"
        ]
    );
}

#[test]
fn a_best_time_send_respects_the_horizon_quiet_hours_and_the_send_window() {
    let t0 = at("2027-01-12T08:30:00Z");
    // Within 10 hours (to 18:30) the slot next to the peak wins; within 4 hours every
    // slot is as good as any, so it goes at once.
    let mut s = Sim::new(best_time_send(10, json!({})));
    s.send_time = Some(reads_at_seven_pm(t0));
    s.start(t0, json!({}));
    assert_eq!(s.due(), "2027-01-12T18:00:00.000Z");
    let mut s = Sim::new(best_time_send(4, json!({})));
    s.send_time = Some(reads_at_seven_pm(t0));
    assert_eq!(s.start(t0, json!({}))[1], "send hello (run-7-step-hello-1)");
    // Quiet from 18:00 to 20:00 in Berlin (17:00–19:00 UTC): 19:00 UTC is allowed.
    let mut s = Sim::new(best_time_send(
        24,
        json!({"quiet_hours": {"start": "18:00", "end": "20:00"}}),
    ));
    s.tz = tz("Europe/Berlin");
    s.send_time = Some(reads_at_seven_pm(t0));
    s.start(t0, json!({}));
    assert_eq!(s.due(), "2027-01-12T19:00:00.000Z");
    // Quiet from 20:00 to 22:00 in Berlin (19:00–21:00 UTC): the best allowed slot is
    // 18:00 UTC, next to the peak.
    let mut s = Sim::new(best_time_send(
        24,
        json!({"quiet_hours": {"start": "20:00", "end": "22:00"}}),
    ));
    s.tz = tz("Europe/Berlin");
    s.send_time = Some(reads_at_seven_pm(t0));
    s.start(t0, json!({}));
    assert_eq!(s.due(), "2027-01-12T18:00:00.000Z");
    // A send window of 09:00–18:30 UTC: its slot nearest the peak.
    let mut s = Sim::new(best_time_send(
        24,
        json!({"send_window": {"from": "09:00", "to": "18:30"}}),
    ));
    s.send_time = Some(reads_at_seven_pm(t0));
    s.start(t0, json!({}));
    assert_eq!(s.due(), "2027-01-12T18:00:00.000Z");
}

#[test]
fn a_best_time_send_goes_at_once_when_now_is_best_or_nothing_is_known() {
    let t0 = at("2027-01-12T19:05:00Z");
    let mut s = Sim::new(best_time_send(24, json!({})));
    s.send_time = Some(reads_at_seven_pm(t0));
    assert_eq!(s.start(t0, json!({}))[1], "send hello (run-7-step-hello-1)");
    let mut s = Sim::new(best_time_send(24, json!({})));
    assert_eq!(s.start(t0, json!({}))[1], "send hello (run-7-step-hello-1)");
}

#[test]
fn best_time_problems_name_their_path() {
    let mut bad = best_time_send(0, json!({}));
    bad["steps"][0]["transactional"] = json!(true);
    let errors = parse_journey(&bad).unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["steps[0].best_time", "steps[0].best_time.within_hours"],
        "{errors:?}"
    );
    let mut unknown = best_time_send(3, json!({}));
    unknown["steps"][0]["best_time"] = json!({"within": 3});
    let errors = parse_journey(&unknown).unwrap_err();
    assert_eq!(errors[0].path, "steps[0]");
    assert!(errors[0].message.contains("within"), "{errors:?}");
}

#[test]
fn quiet_hours_defer_across_midnight_in_the_contact_time_zone() {
    let mut s = Sim::new(one_send(json!({"quiet_hours": {"start": "21:00", "end": "08:00"}})));
    s.tz = tz("Europe/Berlin");
    // 23:30 in Berlin (UTC+1 in winter).
    assert_eq!(
        s.start(at("2027-01-14T22:30:00Z"), json!({})),
        ["reached hello", "timer 2027-01-15T07:00:00.000Z"]
    );
    assert!(matches!(
        s.state.waiting.as_ref().unwrap().what,
        WaitingFor::Send {
            reason: DeferReason::QuietHours
        }
    ));
    assert_eq!(
        s.fire(),
        [
            "send hello (run-7-step-hello-1)",
            "event Journey Completed",
            "cancel timer",
            "finish completed"
        ]
    );

    // 06:00 Berlin is also quiet: until 08:00 the same day.
    let mut s = Sim::new(one_send(json!({"quiet_hours": {"start": "21:00", "end": "08:00"}})));
    s.tz = tz("Europe/Berlin");
    s.start(at("2027-01-15T05:00:00Z"), json!({}));
    assert_eq!(s.due(), "2027-01-15T07:00:00.000Z");

    // 20:59 Berlin is not quiet; a UTC contact at 22:30 is.
    let mut s = Sim::new(one_send(json!({"quiet_hours": {"start": "21:00", "end": "08:00"}})));
    s.tz = tz("Europe/Berlin");
    assert_eq!(
        s.start(at("2027-01-15T19:59:00Z"), json!({}))[1],
        "send hello (run-7-step-hello-1)"
    );
    let mut s = Sim::new(one_send(json!({"quiet_hours": {"start": "21:00", "end": "08:00"}})));
    s.start(at("2027-01-14T22:30:00Z"), json!({}));
    assert_eq!(s.due(), "2027-01-15T08:00:00.000Z");

    // Transactional messages are never held.
    let mut def = one_send(json!({"quiet_hours": {"start": "21:00", "end": "08:00"}}));
    def["steps"][0]["transactional"] = json!(true);
    let mut s = Sim::new(def);
    assert_eq!(
        s.start(at("2027-01-14T22:30:00Z"), json!({}))[1],
        "send hello transactional (run-7-step-hello-1)"
    );
}

#[test]
fn send_window_days_defer_to_the_next_open_day() {
    let window = json!({"send_window": {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}});
    let cases = [
        // Saturday 10:00 in New York (UTC-5) → Monday 09:00.
        ("2027-01-16T15:00:00Z", Some("2027-01-18T14:00:00.000Z")),
        // Friday 17:00 (window closed) → Monday 09:00.
        ("2027-01-15T22:00:00Z", Some("2027-01-18T14:00:00.000Z")),
        // Wednesday 07:00 → the same day at 09:00.
        ("2027-01-13T12:00:00Z", Some("2027-01-13T14:00:00.000Z")),
        // Wednesday 16:59 → now.
        ("2027-01-13T21:59:00Z", None),
    ];
    for (now, expected) in cases {
        let mut s = Sim::new(one_send(window.clone()));
        s.tz = tz("America/New_York");
        s.start(at(now), json!({}));
        match expected {
            Some(due) => {
                assert_eq!(s.due(), due, "{now}");
                assert!(matches!(
                    s.state.waiting.as_ref().unwrap().what,
                    WaitingFor::Send {
                        reason: DeferReason::SendWindow
                    }
                ));
                assert_eq!(s.fire()[0], "send hello (run-7-step-hello-1)", "{now}");
            }
            None => assert_eq!(s.finished(), Some("completed"), "{now}"),
        }
    }
}

#[test]
fn quiet_hours_and_send_window_together() {
    // Window 08:00-20:00 every day, quiet 19:00-09:00: sends 09:00-19:00.
    let settings = json!({
        "quiet_hours": {"start": "19:00", "end": "09:00"},
        "send_window": {"from": "08:00", "to": "20:00"}
    });
    let mut s = Sim::new(one_send(settings));
    s.start(at("2027-01-13T19:30:00Z"), json!({}));
    assert_eq!(s.due(), "2027-01-14T09:00:00.000Z");
}

#[test]
fn frequency_caps_defer_to_the_next_free_slot_never_drop() {
    let mut s = Sim::new(one_send(json!({})));
    s.caps = vec![FrequencyCap {
        channel: Some("email".into()),
        max: 1,
        per: CapPeriod::Day,
    }];
    let t0 = at(T0);
    s.sends = vec![SentMessage {
        channel: Some("email".into()),
        at: t0 - 2 * HOUR,
    }];
    assert_eq!(
        s.start(t0, json!({})),
        ["reached hello", "timer 2027-03-16T08:00:00.000Z"]
    );
    assert!(matches!(
        s.state.waiting.as_ref().unwrap().what,
        WaitingFor::Send {
            reason: DeferReason::FrequencyCap
        }
    ));
    assert_eq!(s.fire()[0], "send hello (run-7-step-hello-1)");

    // Another channel is not capped by an email cap.
    let mut s = Sim::new(one_send(json!({})));
    s.caps = vec![FrequencyCap {
        channel: Some("sms".into()),
        max: 1,
        per: CapPeriod::Day,
    }];
    s.sends = vec![SentMessage {
        channel: Some("sms".into()),
        at: t0 - HOUR,
    }];
    assert_eq!(s.start(t0, json!({}))[1], "send hello (run-7-step-hello-1)");

    // 3 a week on every channel: the third most recent send leaves the week first.
    let mut s = Sim::new(one_send(json!({})));
    s.caps = vec![FrequencyCap {
        channel: None,
        max: 3,
        per: CapPeriod::Week,
    }];
    s.sends = [6, 3, 1, 10]
        .iter()
        .map(|d| SentMessage {
            channel: Some("sms".into()),
            at: t0 - d * DAY,
        })
        .collect();
    s.start(t0, json!({}));
    assert_eq!(
        s.due(),
        format_millis(t0 + DAY),
        "the send 6 days ago frees a slot tomorrow"
    );
}

#[test]
fn a_send_counts_against_the_cap_of_the_next_send_in_the_same_transition() {
    let def = json!({
        "trigger": {"type": "api"},
        "start": "a",
        "steps": [
            {"id": "a", "type": "send", "template": 1, "channel": "email", "next": "b"},
            {"id": "b", "type": "send", "template": 2, "channel": "email"}
        ]
    });
    let mut s = Sim::new(def);
    s.caps = vec![FrequencyCap {
        channel: Some("email".into()),
        max: 1,
        per: CapPeriod::Day,
    }];
    assert_eq!(
        s.start(at(T0), json!({})),
        [
            "reached a",
            "send a (run-7-step-a-1)",
            "reached b",
            "timer 2027-03-16T10:00:00.000Z"
        ]
    );
    assert_eq!(s.fire()[0], "send b (run-7-step-b-1)");
}

#[test]
fn wait_until_next_monday_morning_across_a_dst_change() {
    let def = json!({
        "trigger": {"type": "api"},
        "start": "monday",
        "steps": [
            {"id": "monday", "type": "wait_until", "time": "09:00", "days": ["mon"], "next": "hi"},
            {"id": "hi", "type": "send", "template": 1}
        ]
    });
    // Friday 2027-03-26 10:00 in Berlin (CET); clocks go forward on Sunday the 28th.
    let mut s = Sim::new(def.clone());
    s.tz = tz("Europe/Berlin");
    s.start(at("2027-03-26T09:00:00Z"), json!({}));
    assert_eq!(s.due(), "2027-03-29T07:00:00.000Z", "09:00 CEST is 07:00 UTC");
    assert_eq!(s.fire()[0], "reached hi");

    // Monday 09:00 exactly: go on at once. Monday 09:01: next week.
    let mut s = Sim::new(def.clone());
    s.tz = tz("Europe/Berlin");
    s.start(at("2027-03-29T07:00:00Z"), json!({}));
    assert_eq!(s.finished(), Some("completed"));
    let mut s = Sim::new(def);
    s.tz = tz("Europe/Berlin");
    s.start(at("2027-03-29T07:01:00Z"), json!({}));
    assert_eq!(s.due(), "2027-04-05T07:00:00.000Z");

    // Back to winter time in October: 09:00 CET is 08:00 UTC.
    let berlin = tz("Europe/Berlin");
    assert_eq!(
        format_millis(next_local_time(
            at("2027-10-29T12:00:00Z"),
            &berlin,
            "09:00",
            &[Day::Mon]
        )),
        "2027-11-01T08:00:00.000Z"
    );
    // A local time that does not exist (02:30 on the spring-forward night) → after the gap.
    assert_eq!(
        format_millis(next_local_time(
            at("2027-03-27T12:00:00Z"),
            &berlin,
            "02:30",
            &[Day::Sun]
        )),
        "2027-03-28T01:30:00.000Z"
    );
}

#[test]
fn time_triggers_know_their_next_occurrence() {
    let berlin = tz("Europe/Berlin");
    let now = at("2027-03-15T10:00:00Z");
    let birthday = Trigger::DateTrait {
        name: "birthday".into(),
        offset_days: 0,
        every_year: true,
        time: Some("09:00".into()),
    };
    let traits = props(json!({"birthday": "1990-03-20", "leap": "1992-02-29", "renewal": "2027-04-30T00:00:00Z"}));
    let next = |t: &Trigger, now: Millis| t.next_occurrence(&traits, now, &berlin).map(format_millis);
    assert_eq!(next(&birthday, now).as_deref(), Some("2027-03-20T08:00:00.000Z"));
    assert_eq!(
        next(&birthday, at("2027-03-20T08:00:01Z")).as_deref(),
        Some("2028-03-20T08:00:00.000Z"),
        "passed this year: next year"
    );
    let leap = Trigger::DateTrait {
        name: "leap".into(),
        offset_days: 0,
        every_year: true,
        time: None,
    };
    assert_eq!(
        next(&leap, now).as_deref(),
        Some("2028-02-28T23:00:00.000Z"),
        "a leap year: the 29th"
    );
    assert_eq!(
        next(&leap, at("2027-01-01T00:00:00Z")).as_deref(),
        Some("2027-02-27T23:00:00.000Z"),
        "other years: the 28th"
    );
    let renewal = Trigger::DateTrait {
        name: "renewal".into(),
        offset_days: -7,
        every_year: false,
        time: Some("10:00".into()),
    };
    assert_eq!(next(&renewal, now).as_deref(), Some("2027-04-23T08:00:00.000Z"));
    assert_eq!(next(&renewal, at("2027-05-01T00:00:00Z")), None, "passed");
    let missing = Trigger::DateTrait {
        name: "nope".into(),
        offset_days: 0,
        every_year: true,
        time: None,
    };
    assert_eq!(next(&missing, now), None);
    let new_year = Trigger::DateTrait {
        name: "birthday".into(),
        offset_days: -85,
        every_year: true,
        time: None,
    };
    // 20 March - 85 days = 25 December of the year before.
    assert_eq!(
        next(&new_year, at("2027-12-26T00:00:00Z")).as_deref(),
        Some("2028-12-24T23:00:00.000Z")
    );
    let weekly = Trigger::Schedule {
        segment_id: 1,
        at: None,
        every: Some(Recurrence {
            days: vec![Day::Wed],
            time: "08:30".into(),
            contact_time_zone: false,
        }),
    };
    assert_eq!(next(&weekly, now).as_deref(), Some("2027-03-17T07:30:00.000Z"));
}

#[test]
fn re_entry_and_concurrency() {
    let t0 = at(T0);
    let facts = Facts::default();
    let with = |settings: Value| {
        let mut d = one_send(settings);
        d["trigger"] = json!({"type": "event", "event": "Signed Up"});
        parse(d)
    };
    let done = |entered: Millis| PreviousRun {
        entered_at: entered,
        finished_at: Some(entered + HOUR),
    };
    let active = |entered: Millis| PreviousRun {
        entered_at: entered,
        finished_at: None,
    };

    let never = with(json!({}));
    assert_eq!(may_enter(&never, &facts, &[], t0), Ok(()));
    assert_eq!(
        may_enter(&never, &facts, &[done(t0 - 400 * DAY)], t0),
        Err(Refusal::AlreadyEntered)
    );

    let after = with(json!({"re_entry": {"type": "after", "days": 30}}));
    assert_eq!(
        may_enter(&after, &facts, &[done(t0 - 10 * DAY), done(t0 - 90 * DAY)], t0),
        Err(Refusal::TooSoon {
            allowed_at: t0 + 20 * DAY
        })
    );
    assert_eq!(may_enter(&after, &facts, &[done(t0 - 30 * DAY)], t0), Ok(()));

    let always = with(json!({"re_entry": {"type": "always"}}));
    assert_eq!(may_enter(&always, &facts, &[done(t0 - 60_000)], t0), Ok(()));
    assert_eq!(
        may_enter(&always, &facts, &[active(t0 - 60_000)], t0),
        Err(Refusal::TooManyRuns { active: 1, max: 1 })
    );
    let two = with(json!({"re_entry": {"type": "always"}, "max_concurrent_runs": 2}));
    assert_eq!(may_enter(&two, &facts, &[active(t0 - 1), done(t0 - 2)], t0), Ok(()));
    assert_eq!(
        may_enter(&two, &facts, &[active(t0 - 1), active(t0 - 2)], t0),
        Err(Refusal::TooManyRuns { active: 2, max: 2 })
    );
    assert!(
        Refusal::TooManyRuns { active: 2, max: 2 }
            .to_string()
            .contains("already has 2 active run(s)")
    );
}

#[test]
fn entry_filter_goal_and_exit_conditions_at_entry() {
    let t0 = at(T0);
    let d = parse(one_send(json!({
        "entry_filter": {"type": "trait", "trait": "plan", "op": "equals", "value": "pro"},
        "goal": {"type": "trait", "trait": "upgraded", "op": "exists"},
        "exit_condition": {"type": "trait", "trait": "churned", "op": "exists"}
    })));
    let facts = |traits: Value| Facts {
        traits: props(traits),
        ..Facts::default()
    };
    assert_eq!(may_enter(&d, &facts(json!({"plan": "pro"})), &[], t0), Ok(()));
    assert_eq!(
        may_enter(&d, &facts(json!({"plan": "free"})), &[], t0),
        Err(Refusal::EntryFilter)
    );
    assert_eq!(
        may_enter(&d, &facts(json!({"plan": "pro", "upgraded": true})), &[], t0),
        Err(Refusal::GoalMet)
    );
    assert_eq!(
        may_enter(&d, &facts(json!({"plan": "pro", "churned": true})), &[], t0),
        Err(Refusal::ExitConditionMet)
    );
}

#[test]
fn goal_and_exit_conditions_act_immediately_on_any_input() {
    let def = json!({
        "trigger": {"type": "api"},
        "start": "w",
        "steps": [
            {"id": "w", "type": "wait", "duration": {"days": 3}, "next": "s"},
            {"id": "s", "type": "send", "template": 1}
        ],
        "settings": {
            "goal": {"type": "trait", "trait": "plan", "op": "equals", "value": "pro"},
            "exit_condition": {"type": "subscription", "channel": "email", "state": "unsubscribed"},
            "exit_event": {"event": "Account Deleted"}
        }
    });
    let t0 = at(T0);
    let mut s = Sim::new(def.clone());
    assert_eq!(
        s.start(t0, json!({})),
        [
            "reached w",
            "timer 2027-03-18T10:00:00.000Z",
            "listen [Account Deleted]"
        ]
    );
    assert!(s.feed(t0 + HOUR, Input::FactsChanged).is_empty(), "nothing changed");
    s.facts.traits.insert("plan".into(), json!("pro"));
    assert_eq!(
        s.feed(t0 + 2 * HOUR, Input::FactsChanged),
        ["event Journey Goal Reached", "cancel timer", "listen []", "finish goal"]
    );

    let mut s = Sim::new(def.clone());
    s.start(t0, json!({}));
    s.facts
        .subscriptions
        .insert("email".into(), crate::contact::Subscription::Unsubscribed);
    assert_eq!(
        s.fire().last().unwrap(),
        "finish exit_condition",
        "checked before the timer acts"
    );
    assert!(!s.log.iter().any(|c| matches!(c, Command::Send { .. })));

    let mut s = Sim::new(def);
    s.start(t0, json!({}));
    assert_eq!(
        s.event(t0 + 1, "Account Deleted", json!({})).last().unwrap(),
        "finish exit_condition"
    );
}

#[test]
fn split_is_deterministic_and_proportional() {
    let def = parse(json!({
        "trigger": {"type": "api"},
        "start": "ab",
        "steps": [
            {"id": "ab", "type": "split", "variants": [
                {"name": "A", "percent": 30, "next": "a"},
                {"name": "B", "percent": 50, "next": "b"},
                {"name": "control", "percent": 20}
            ]},
            {"id": "a", "type": "send", "template": 1},
            {"id": "b", "type": "send", "template": 2}
        ]
    }));
    let mut counts = [0usize; 3];
    for run_id in 1..=10_000 {
        let mut s = Sim::with(def.clone(), run_id);
        s.start(at(T0), json!({}));
        let v = s.state.variants["ab"];
        counts[v] += 1;
        let mut again = Sim::with(def.clone(), run_id);
        again.start(at(T0) + 5 * DAY, json!({}));
        assert_eq!(again.state.variants["ab"], v, "stable for a run");
    }
    for (count, expected) in counts.iter().zip([3000, 5000, 2000]) {
        assert!(count.abs_diff(expected) < 300, "{counts:?}");
    }
}

#[test]
fn branches_route_on_conditions_and_message_outcomes() {
    let def = json!({
        "trigger": {"type": "api"},
        "start": "mail",
        "steps": [
            {"id": "mail", "type": "send", "template": 1, "channel": "email", "next": "wait"},
            {"id": "wait", "type": "wait", "duration": {"hours": 48}, "next": "opened"},
            {"id": "opened", "type": "branch", "message": {"step": "mail", "outcome": "opened"},
             "yes": "tier", "no": "sms"},
            {"id": "sms", "type": "send", "template": 2, "channel": "sms"},
            {"id": "tier", "type": "multi_branch", "cases": [
                {"condition": {"type": "trait", "trait": "spend", "op": "greater_than", "value": 1000}, "next": "vip"},
                {"condition": {"type": "trait", "trait": "spend", "op": "greater_than", "value": 100}, "next": "tag"}
            ], "default": "hook"},
            {"id": "vip", "type": "goal", "name": "vip"},
            {"id": "tag", "type": "update_contact", "add_tags": ["engaged"], "lead_score": 5, "next": "hook"},
            {"id": "hook", "type": "webhook", "template": "crm-sync"}
        ]
    });
    let t0 = at(T0);
    // Not opened → SMS.
    let mut s = Sim::new(def.clone());
    s.start(t0, json!({}));
    assert_eq!(
        s.fire()[..3],
        ["reached opened", "reached sms", "send sms (run-7-step-sms-1)"]
    );

    // Opened (for the right message), mid spend → tag, webhook.
    let mut s = Sim::new(def.clone());
    s.start(t0, json!({}));
    let outcome = |key: &str| Input::MessageOutcome {
        step: "mail".into(),
        key: key.into(),
        outcome: MessageOutcomeKind::Opened,
    };
    assert!(
        s.feed(t0 + HOUR, outcome("run-7-step-mail-0")).is_empty(),
        "another message"
    );
    assert!(
        s.feed(t0 + HOUR, outcome("run-7-step-mail-1")).is_empty(),
        "recorded, no commands"
    );
    assert_eq!(s.state.outcomes["mail"], [MessageOutcomeKind::Opened]);
    s.facts.traits.insert("spend".into(), json!(250));
    assert_eq!(
        s.fire(),
        [
            "reached opened",
            "reached tier",
            "reached tag",
            "update tag",
            "reached hook",
            "webhook hook",
            "event Journey Completed",
            "cancel timer",
            "finish completed"
        ]
    );
    let update = s.log.iter().find_map(|c| match c {
        Command::UpdateContact {
            update,
            idempotency_key,
            ..
        } => Some((update.clone(), idempotency_key.clone())),
        _ => None,
    });
    let (update, key) = update.unwrap();
    assert_eq!(update.add_tags, ["engaged"]);
    assert_eq!(update.lead_score, 5);
    assert_eq!(key.as_str(), "run-7-step-tag-1");

    // Big spender → the goal.
    let mut s = Sim::new(def);
    s.start(t0, json!({}));
    s.feed(t0 + HOUR, outcome("run-7-step-mail-1"));
    s.facts.traits.insert("spend".into(), json!(5000));
    s.fire();
    assert_eq!(s.finished(), Some("goal"));
}

#[test]
fn loops_through_a_wait_send_again_with_new_keys() {
    let def = json!({
        "trigger": {"type": "api"},
        "start": "nag",
        "steps": [
            {"id": "nag", "type": "send", "template": 1, "next": "wait"},
            {"id": "wait", "type": "wait_for_event", "event": "Profile Completed",
             "timeout": {"days": 2}, "on_timeout": "nag"}
        ]
    });
    let mut s = Sim::new(def);
    let t0 = at(T0);
    s.start(t0, json!({}));
    s.fire();
    s.fire();
    let keys: Vec<_> = s
        .log
        .iter()
        .filter_map(|c| match c {
            Command::Send { idempotency_key, .. } => Some(idempotency_key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(keys, ["run-7-step-nag-1", "run-7-step-nag-2", "run-7-step-nag-3"]);
    assert_eq!(
        s.event(t0 + 5 * DAY, "Profile Completed", json!({}))[0],
        "event Journey Completed"
    );
}

#[test]
fn a_broken_definition_stops_at_the_step_bound() {
    // Bypasses validation, which rejects this loop.
    let def = JourneyDefinition {
        trigger: Trigger::Api,
        start: "a".into(),
        steps: vec![
            Step {
                id: "a".into(),
                kind: StepKind::Webhook {
                    template: NameOrId::Id(1),
                    next: Some("b".into()),
                },
            },
            Step {
                id: "b".into(),
                kind: StepKind::Branch {
                    condition: Some(Condition::And { conditions: vec![] }),
                    message: None,
                    yes: Some("a".into()),
                    no: None,
                },
            },
        ],
        settings: Settings::default(),
    };
    assert!(def.validate().is_err());
    let mut s = Sim::with(def, 1);
    let out = s.start(at(T0), json!({}));
    assert_eq!(s.finished(), Some("step_limit"));
    let reached = out.iter().filter(|c| c.starts_with("reached")).count();
    assert!(reached <= MAX_STEPS_PER_TRANSITION, "{reached}");
}

#[test]
fn a_missing_step_finishes_the_run() {
    let mut def = parse(one_send(json!({})));
    def.start = "gone".into();
    let mut s = Sim::with(def, 1);
    s.start(at(T0), json!({}));
    assert_eq!(s.finished(), Some("step_not_found"));

    // A run waiting on a step its definition no longer has: the timer finishes it.
    let mut s = Sim::new(abandoned_cart());
    s.start(at(T0), json!({"cart_id": "c1"}));
    s.def.steps.retain(|step| step.id != "wait-order");
    assert_eq!(s.fire().last().unwrap(), "finish step_not_found");
}

#[test]
fn definitions_round_trip_through_json() {
    let def = parse(abandoned_cart());
    let back = serde_json::to_value(&def).unwrap();
    assert_eq!(parse(back.clone()), def);
    assert_eq!(back["steps"][0]["id"], "wait-order");
    assert_eq!(back["steps"][0]["type"], "wait_for_event");
    assert_eq!(def.match_keys(), ["cart_id"]);
    assert!(def.trigger.matches_event("Cart Updated", &Map::new(), 0));
    assert!(!def.trigger.matches_event("Cart Viewed", &Map::new(), 0));
}

#[test]
fn the_documented_example_is_valid_and_behaves_as_described() {
    let doc = include_str!("../../../../docs/journeys.md");
    let example = doc.split("## Example").nth(1).unwrap();
    let json = example.split("```json").nth(1).unwrap().split("```").next().unwrap();
    let def: Value = serde_json::from_str(json).unwrap();
    let mut s = Sim::new(def);
    let t0 = at(T0);
    s.start(t0, json!({"cart_id": "c-17", "total": 30}));
    assert!(
        s.event(t0 + 60_000, "Order Completed", json!({"cart_id": "c-18"}))
            .is_empty()
    );
    assert_eq!(s.fire()[1], "send remind-1 (run-7-step-remind-1-1)");
    s.event(t0 + 3 * HOUR, "Order Completed", json!({"cart_id": "c-17"}));
    assert_eq!(s.finished(), Some("goal"));
}

// ---- Validation ----

/// The definition's errors as `path: message`.
fn errors(v: Value) -> Vec<String> {
    match parse_journey(&v) {
        Ok(_) => vec![],
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// A definition with these steps (the first is the start) and settings.
fn with_steps(steps: Value, settings: Value) -> Value {
    json!({
        "trigger": {"type": "event", "event": "Signed Up"},
        "start": steps[0]["id"].clone(),
        "steps": steps,
        "settings": settings
    })
}

fn check_error(v: Value, path: &str, words: &str) {
    let errs = errors(v.clone());
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(words)),
        "expected `{path}: ...{words}...` for {v}\ngot {errs:#?}"
    );
}

#[test]
fn validation_explains_each_rule_with_its_path() {
    let send = |id: &str, next: Value| json!({"id": id, "type": "send", "template": 1, "next": next});
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with_steps(json!([send("a", json!("nowhere"))]), json!({})),
            "steps[0].next",
            "no step has the id \"nowhere\"",
        ),
        (
            with_steps(json!([send("a", json!("b")), send("a", Value::Null)]), json!({})),
            "steps[1].id",
            "already used by steps[0]",
        ),
        (
            {
                let mut d = with_steps(json!([send("a", Value::Null)]), json!({}));
                d["start"] = json!("x");
                d
            },
            "start",
            "no step has the id \"x\"",
        ),
        (
            with_steps(json!([send("a", Value::Null), send("b", Value::Null)]), json!({})),
            "steps[1]",
            "can never be reached",
        ),
        (
            with_steps(
                json!([
                    send("a", json!("w")),
                    {"id": "w", "type": "wait", "duration": 60000, "next": "a"}
                ]),
                json!({}),
            ),
            "steps[0]",
            "no path from step \"a\" reaches an end",
        ),
        (
            with_steps(
                json!([
                    send("a", json!("b")),
                    {"id": "b", "type": "branch",
                     "condition": {"type": "trait", "trait": "x", "op": "exists"}, "yes": "a"}
                ]),
                json!({}),
            ),
            "steps[1].yes",
            "leads back to step \"a\" with no wait",
        ),
        (
            with_steps(
                json!([{"id": "s", "type": "split", "variants": [{"percent": 50}, {"percent": 40}]}]),
                json!({}),
            ),
            "steps[0].variants",
            "add up to 90",
        ),
        (
            with_steps(
                json!([{"id": "s", "type": "split", "variants": [{"percent": 100}]}]),
                json!({}),
            ),
            "steps[0].variants",
            "at least two variants",
        ),
        (
            with_steps(
                json!([{"id": "b", "type": "branch", "condition": {"type": "and", "conditions": [
                    {"type": "trait", "trait": "age", "op": "greater_than", "value": "x"}
                ]}}]),
                json!({}),
            ),
            "steps[0]",
            "",
        ),
        (
            with_steps(
                json!([{"id": "b", "type": "branch", "condition": {"type": "and", "conditions": [
                    {"type": "event", "event": "Bought", "windw": {"last_days": 3}}
                ]}}]),
                json!({}),
            ),
            "steps[0].condition.conditions[0].windw",
            "unknown field",
        ),
        (
            with_steps(
                json!([{"id": "b", "type": "multi_branch", "cases": [
                    {"condition": {"type": "event", "event": "Bought", "window": {"between": {"from": "soon", "to": "2027-01-01"}}}}
                ]}]),
                json!({}),
            ),
            "steps[0].cases[0].condition.window.between.from",
            "not an ISO 8601 date",
        ),
        (
            with_steps(json!([{"id": "w", "type": "wait_until", "time": "25:00"}]), json!({})),
            "steps[0].time",
            "\"25:00\" is not a time of day",
        ),
        (
            with_steps(json!([{"id": "w", "type": "wait", "duration": 0}]), json!({})),
            "steps[0].duration",
            "longer than zero",
        ),
        (
            with_steps(
                json!([{"id": "w", "type": "wait", "duration": {"hours": -2}}]),
                json!({}),
            ),
            "steps[0].duration",
            "cannot be negative",
        ),
        (
            with_steps(
                json!([{"id": "w", "type": "wait_for_event", "event": "X", "timeout": {"days": 4000}}]),
                json!({}),
            ),
            "steps[0].timeout",
            "at most 5 years",
        ),
        (
            with_steps(
                json!([{"id": "w", "type": "wait_for_event", "event": "", "timeout": 1000}]),
                json!({}),
            ),
            "steps[0].event",
            "1 to 200 characters",
        ),
        (
            {
                let mut d = with_steps(
                    json!([{"id": "w", "type": "wait_for_event", "event": "X", "match_key": "cart_id", "timeout": 1000}]),
                    json!({}),
                );
                d["trigger"] = json!({"type": "segment_entered", "segment_id": 4});
                d
            },
            "steps[0].match_key",
            "needs a trigger with properties",
        ),
        (
            with_steps(
                json!([send("m", json!("b")),
                       {"id": "b", "type": "branch", "message": {"step": "b", "outcome": "opened"}}]),
                json!({}),
            ),
            "steps[1].message.step",
            "is a branch step; a message test needs a send step",
        ),
        (
            with_steps(json!([{"id": "b", "type": "branch"}]), json!({})),
            "steps[0]",
            "needs a condition or a message test",
        ),
        (
            with_steps(json!([{"id": "u", "type": "update_contact"}]), json!({})),
            "steps[0]",
            "changes nothing",
        ),
        (
            with_steps(
                json!([{"id": "u", "type": "update_contact", "set": {"plan": null}}]),
                json!({}),
            ),
            "steps[0].set.plan",
            "use unset",
        ),
        (
            with_steps(
                json!([{"id": "s", "type": "send", "template": 1, "channel": "fax"}]),
                json!({}),
            ),
            "steps[0].channel",
            "unknown channel \"fax\"",
        ),
        (
            with_steps(json!([{"id": "s", "type": "send", "template": 0}]), json!({})),
            "steps[0].template",
            "positive number",
        ),
        (
            with_steps(json!([{"id": "bad id!", "type": "exit"}]), json!({})),
            "steps[0].id",
            "not a valid id",
        ),
        (
            with_steps(
                json!([{"id": "s", "type": "send", "template": 1, "nxt": "a"}]),
                json!({}),
            ),
            "steps[0]",
            "unknown field `nxt`",
        ),
        (
            with_steps(json!([{"id": "w", "type": "wait", "duration": "1h"}]), json!({})),
            "steps[0]",
            "a duration is milliseconds (a whole number) or",
        ),
        (
            with_steps(
                json!([{"id": "w", "type": "wait", "duration": {"weeks": 1}}]),
                json!({}),
            ),
            "steps[0]",
            "in a duration: unknown field `weeks`",
        ),
        (
            with_steps(json!([{"id": "s", "type": "send", "template": [1]}]), json!({})),
            "steps[0]",
            "expected an id (a whole number) or a name (a string)",
        ),
        (
            with_steps(json!([{"id": "s", "type": "teleport"}]), json!({})),
            "steps[0]",
            "unknown variant `teleport`",
        ),
        (
            {
                let mut d = with_steps(json!([]), json!({}));
                d["start"] = json!("a");
                d
            },
            "steps",
            "at least one step",
        ),
        (
            with_steps(
                json!([send("a", Value::Null)]),
                json!({"quiet_hours": {"start": "08:00", "end": "08:00"}}),
            ),
            "settings.quiet_hours",
            "the same time",
        ),
        (
            with_steps(
                json!([send("a", Value::Null)]),
                json!({"send_window": {"from": "18:00", "to": "09:00"}}),
            ),
            "settings.send_window",
            "from must be earlier",
        ),
        (
            with_steps(
                json!([send("a", Value::Null)]),
                json!({"quiet_hours": {"start": "08:00", "end": "20:00"}, "send_window": {"from": "09:00", "to": "18:00"}}),
            ),
            "settings",
            "leave no moment to send",
        ),
        (
            with_steps(
                json!([send("a", Value::Null)]),
                json!({"re_entry": {"type": "after", "days": 0}}),
            ),
            "settings.re_entry.days",
            "at least 1",
        ),
        (
            with_steps(json!([send("a", Value::Null)]), json!({"max_concurrent_runs": 0})),
            "settings.max_concurrent_runs",
            "at least 1",
        ),
        (
            with_steps(
                json!([send("a", Value::Null)]),
                json!({"goal": {"type": "segment", "segment": 0}}),
            ),
            "settings.goal.segment",
            "must be a segment id",
        ),
        (
            with_steps(json!([send("a", Value::Null)]), json!({"priorty": 3})),
            "settings",
            "unknown field `priorty`",
        ),
        (
            {
                let mut d = with_steps(json!([send("a", Value::Null)]), json!({}));
                d["trigger"] = json!({"type": "schedule", "segment_id": 3});
                d
            },
            "trigger",
            "needs a moment (at) or a recurrence (every)",
        ),
        (
            {
                let mut d = with_steps(json!([send("a", Value::Null)]), json!({}));
                d["trigger"] = json!({"type": "schedule", "segment_id": 3, "every": {"time": "9:00"}});
                d
            },
            "trigger.every.time",
            "not a time of day",
        ),
        (
            {
                let mut d = with_steps(json!([send("a", Value::Null)]), json!({}));
                d["trigger"] = json!({"type": "event", "event": "X", "where": [{"property": "p", "op": "before", "value": "later"}]});
                d
            },
            "trigger.where[0].value",
            "not an ISO 8601 date",
        ),
        (
            {
                let mut d = with_steps(json!([send("a", Value::Null)]), json!({}));
                d["tirgger"] = json!({});
                d
            },
            "tirgger",
            "unknown field",
        ),
    ];
    for (def, path, words) in cases {
        check_error(def, path, words);
    }
}

#[test]
fn validation_reports_every_problem_at_once() {
    let errs = errors(with_steps(
        json!([
            {"id": "a", "type": "wait", "duration": 0, "next": "zz"},
            {"id": "orphan", "type": "exit"}
        ]),
        json!({}),
    ));
    assert_eq!(
        errs,
        [
            "steps[0].duration: must be longer than zero",
            "steps[0].next: no step has the id \"zz\"",
            "steps[1]: step \"orphan\" can never be reached from the start step \"a\""
        ]
    );
}

#[test]
fn valid_definitions_pass() {
    for def in [abandoned_cart(), one_send(json!({}))] {
        assert_eq!(errors(def), Vec::<String>::new());
    }
    // A loop through a wait is fine when some path leaves it.
    let ok = with_steps(
        json!([
            {"id": "nag", "type": "send", "template": 1, "next": "w"},
            {"id": "w", "type": "wait_for_event", "event": "Done", "timeout": {"days": 1},
             "on_timeout": "nag"}
        ]),
        json!({"quiet_hours": {"start": "22:00", "end": "07:00"}, "send_window": {"days": ["sat"], "from": "10:00", "to": "12:00"}}),
    );
    assert_eq!(errors(ok), Vec::<String>::new());
}

// ---- Properties ----

/// A random valid graph: step i's first exit goes to i+1 (so every step is reachable
/// and a path ends), other exits go forward anywhere or end; the second exit of a wait
/// may jump back (a loop through a wait).
fn arb_definition() -> impl Strategy<Value = JourneyDefinition> {
    let kind = 0u8..9;
    let target = prop::option::of(0usize..12);
    prop::collection::vec((kind, target.clone(), target, 1u8..99, any::<bool>()), 1..12).prop_map(|raw| {
        let n = raw.len();
        let id = |i: usize| format!("s{i}");
        let first = |i: usize| (i + 1 < n).then(|| id(i + 1));
        let forward = |i: usize, t: Option<usize>| t.map(|t| i + 1 + t % 12).filter(|&t| t < n).map(id);
        let steps = raw
            .iter()
            .enumerate()
            .map(|(i, &(k, t1, t2, pct, flag))| {
                let kind = match k {
                    _ if i + 1 == n && flag => {
                        if pct % 2 == 0 {
                            StepKind::Exit
                        } else {
                            StepKind::Goal { name: None }
                        }
                    }
                    0 => StepKind::Send {
                        template: NameOrId::Id(1),
                        channel: Some(if flag { "email" } else { "sms" }.into()),
                        transactional: pct % 5 == 0,
                        best_time: None,
                        next: first(i),
                    },
                    1 => StepKind::Wait {
                        duration: Duration::Millis(pct as i64 * 60_000),
                        next: first(i),
                    },
                    2 => StepKind::WaitUntil {
                        time: format!("{:02}:{:02}", pct % 24, pct % 60),
                        days: if flag { vec![Day::Mon, Day::Fri] } else { vec![] },
                        next: first(i),
                    },
                    3 => StepKind::WaitForEvent {
                        event: if flag { "A" } else { "B" }.into(),
                        filters: vec![],
                        match_key: flag.then(|| "k".into()),
                        timeout: Duration::Millis(pct as i64 * 3_600_000),
                        on_event: first(i),
                        // Back to any earlier step or itself: a loop through this wait.
                        on_timeout: t2.map(|t| id(t % (i + 1))).or_else(|| forward(i, t1)),
                    },
                    4 => StepKind::Branch {
                        condition: Some(Condition::RandomBucket {
                            percent: pct,
                            salt: String::new(),
                        }),
                        message: None,
                        yes: first(i),
                        no: forward(i, t1),
                    },
                    5 => StepKind::Split {
                        variants: vec![
                            Variant {
                                name: None,
                                percent: pct,
                                next: first(i),
                            },
                            Variant {
                                name: None,
                                percent: 100 - pct,
                                next: forward(i, t2),
                            },
                        ],
                    },
                    6 => StepKind::UpdateContact {
                        set: Map::new(),
                        unset: vec![],
                        add_tags: vec!["t".into()],
                        remove_tags: vec![],
                        add_lists: vec![],
                        remove_lists: vec![],
                        lead_score: 0,
                        next: first(i),
                    },
                    7 => StepKind::Webhook {
                        template: NameOrId::Id(2),
                        next: first(i),
                    },
                    _ => StepKind::MultiBranch {
                        cases: vec![Case {
                            condition: Condition::RandomBucket {
                                percent: pct,
                                salt: "x".into(),
                            },
                            next: forward(i, t1),
                        }],
                        default: first(i),
                    },
                };
                Step { id: id(i), kind }
            })
            .collect();
        JourneyDefinition {
            trigger: Trigger::Event {
                event: "Start".into(),
                filters: vec![],
            },
            start: id(0),
            steps,
            settings: Settings {
                re_entry: ReEntry::Always,
                quiet_hours: Some(QuietHours {
                    start: "22:00".into(),
                    end: "07:00".into(),
                }),
                goal_event: Some(EventMatch {
                    event: "G".into(),
                    filters: vec![],
                    match_key: Some("k".into()),
                }),
                ..Settings::default()
            },
        }
    })
}

#[derive(Debug, Clone)]
enum Fact {
    Timer,
    StaleTimer,
    Event(bool, bool),
    Goal(bool),
    Outcome,
    Facts,
}

fn arb_fact() -> impl Strategy<Value = (Fact, u32)> {
    let fact = prop_oneof![
        6 => Just(Fact::Timer),
        1 => Just(Fact::StaleTimer),
        3 => (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Fact::Event(a, b)),
        1 => prop::bool::weighted(0.2).prop_map(Fact::Goal),
        1 => Just(Fact::Outcome),
        1 => Just(Fact::Facts),
    ];
    (fact, 0u32..200_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Valid random graphs driven by random facts: no panic, the step bound holds,
    /// every send has a unique key of the form run-step-visit, and a run is always
    /// either waiting on a timer or finished.
    #[test]
    fn random_runs_keep_their_invariants(
        def in arb_definition(),
        facts in prop::collection::vec(arb_fact(), 0..40),
        run_id in 1i64..1_000_000,
        zone in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Asia/Tehran"]),
    ) {
        prop_assert_eq!(def.validate(), Ok(()));
        let json = serde_json::to_value(&def).unwrap();
        prop_assert_eq!(parse_journey(&json), Ok(def.clone()));

        let mut s = Sim::with(def, run_id);
        s.tz = tz(zone);
        s.caps = vec![FrequencyCap { channel: Some("email".into()), max: 2, per: CapPeriod::Day }];
        let mut now = at(T0);
        s.start(now, json!({"k": "v"}));
        let mut keys = HashSet::new();
        let mut seen = 0;
        for (fact, dt) in facts {
            now += dt as Millis * 1_000;
            let input = match fact {
                Fact::Timer => match &s.state.waiting {
                    Some(w) => { now = now.max(w.due); Input::Timer { key: w.timer_key.clone() } }
                    None => Input::FactsChanged,
                },
                Fact::StaleTimer => Input::Timer { key: format!("run-{run_id}-step-s0-1-timer-0") },
                Fact::Event(a, same) => Input::Event {
                    name: if a { "A" } else { "B" }.into(),
                    properties: props(json!({"k": if same { "v" } else { "w" }})),
                    at: now,
                },
                Fact::Goal(same) => Input::Event {
                    name: "G".into(),
                    properties: props(json!({"k": if same { "v" } else { "w" }})),
                    at: now,
                },
                Fact::Outcome => Input::MessageOutcome {
                    step: "s0".into(),
                    key: format!("run-{run_id}-step-s0-1"),
                    outcome: MessageOutcomeKind::Opened,
                },
                Fact::Facts => Input::FactsChanged,
            };
            s.feed(now, input);
            match (&s.state.status, &s.state.waiting) {
                (RunStatus::Waiting, Some(w)) => {
                    let scheduled = s.log.iter().rev().find_map(|c| match c {
                        Command::ScheduleTimer { key, at } => Some((key, *at)),
                        _ => None,
                    });
                    prop_assert_eq!(scheduled, Some((&w.timer_key, w.due)), "the engine knows the timer");
                }
                (RunStatus::Finished { reason, .. }, None) => {
                    let broken = matches!(reason, FinishReason::StepLimit | FinishReason::StepNotFound { .. });
                    prop_assert!(!broken, "{:?}", reason)
                }
                (status, waiting) => prop_assert!(false, "inconsistent: {:?} {:?}", status, waiting),
            }
        }
        for c in &s.log {
            if let Command::Send { step, idempotency_key, .. } = c {
                prop_assert!(keys.insert(idempotency_key.clone()), "duplicate key {}", idempotency_key);
                let prefix = format!("run-{run_id}-step-{step}-");
                prop_assert!(idempotency_key.as_str().starts_with(&prefix), "{}", idempotency_key);
                seen += 1;
            }
        }
        prop_assert_eq!(seen, keys.len());
    }
}

#[test]
fn contact_update_patch_merges_lists_and_moves_the_score() {
    let current = json!({"tags": ["vip", "cold", 3], "lists": ["7"], "lead_score": 4, "plan": "free"});
    let current = current.as_object().unwrap();
    let update = ContactUpdate {
        set: json!({"plan": "pro"}).as_object().unwrap().clone(),
        unset: vec!["churned".into()],
        add_tags: vec!["demo".into(), "vip".into()],
        remove_tags: vec!["cold".into()],
        add_lists: vec![NameOrId::Id(9), NameOrId::Name("newsletter".into())],
        remove_lists: vec![NameOrId::Id(7)],
        lead_score: -6,
    };
    let patch = update.patch(current);
    assert_eq!(
        Value::Object(patch),
        json!({"plan": "pro", "churned": null, "tags": ["demo", "vip"], "lists": ["9", "newsletter"], "lead_score": -2.0})
    );
    // Only what the update names is touched; a score that is not a number counts as 0.
    let score = ContactUpdate {
        lead_score: 3,
        ..Default::default()
    };
    let patch = score.patch(json!({"lead_score": "high", "tags": ["a"]}).as_object().unwrap());
    assert_eq!(Value::Object(patch), json!({"lead_score": 3.0}));
}

#[test]
fn revenue_is_read_as_the_ecommerce_spec_names_it() {
    let props = |v: Value| v.as_object().unwrap().clone();
    assert_eq!(revenue_of(&props(json!({"revenue": 25.5, "total": 30}))), Some(25.5));
    assert_eq!(revenue_of(&props(json!({"total": 30, "value": 1}))), Some(30.0));
    assert_eq!(revenue_of(&props(json!({"value": 1}))), Some(1.0));
    assert_eq!(revenue_of(&props(json!({"revenue": "25", "total": 12}))), Some(12.0));
    assert_eq!(revenue_of(&props(json!({"cart_id": "c1"}))), None);
}

/// Version 2 of a reminder journey: a shorter first wait, a new step before the send.
fn reminder_v2() -> JourneyDefinition {
    parse(json!({
        "trigger": {"type": "event", "event": "Cart Updated"},
        "start": "wait",
        "steps": [
            {"id": "wait", "type": "wait", "duration": {"hours": 2}, "next": "tag"},
            {"id": "tag", "type": "update_contact", "add_tags": ["reminded"], "next": "remind"},
            {"id": "remind", "type": "send", "template": "t", "channel": "email"}
        ],
        "settings": {"re_entry": {"type": "always"}}
    }))
}

#[test]
fn a_moved_run_enters_the_mapped_step_and_keeps_the_time_waited() {
    let mut sim = Sim::new(json!({
        "trigger": {"type": "event", "event": "Cart Updated"},
        "start": "wait",
        "steps": [
            {"id": "wait", "type": "wait", "duration": {"hours": 5}, "next": "remind"},
            {"id": "remind", "type": "send", "template": "t", "channel": "email"}
        ],
        "settings": {"re_entry": {"type": "always"}}
    }));
    let t0 = at("2027-01-01T10:00:00Z");
    sim.start(t0, json!({}));
    assert_eq!(sim.due(), "2027-01-01T15:00:00.000Z");
    // Published with {"wait": "wait"} one hour in: two hours minus the one waited.
    sim.def = reminder_v2();
    let out = sim.feed(
        t0 + HOUR,
        Input::Move {
            step: "wait".into(),
            version: 2,
            waited_since: Some(t0),
        },
    );
    assert_eq!(sim.state.version, 2);
    assert_eq!(sim.due(), "2027-01-01T12:00:00.000Z");
    assert!(out.contains(&"cancel timer".to_string()), "{out:?}");
    assert!(out.contains(&"timer 2027-01-01T12:00:00.000Z".to_string()), "{out:?}");
    assert_eq!(sim.state.step_entered_at, t0);
    let out = sim.fire();
    assert!(out.iter().any(|c| c.starts_with("send remind")), "{out:?}");
    assert_eq!(sim.finished(), Some("completed"));

    // Already past the new duration: the wait ends at once.
    let mut late = Sim::with(reminder_v2(), 8);
    late.start(t0, json!({}));
    late.def = reminder_v2();
    let out = late.feed(
        t0 + 3 * HOUR,
        Input::Move {
            step: "wait".into(),
            version: 2,
            waited_since: Some(t0 - 10 * HOUR),
        },
    );
    assert_eq!(late.due(), format_millis(t0 + 3 * HOUR), "{out:?}");

    // Moved to a step of another kind: entered anew, at once.
    let mut moved = Sim::with(reminder_v2(), 9);
    moved.start(t0, json!({}));
    let out = moved.feed(
        t0 + HOUR,
        Input::Move {
            step: "tag".into(),
            version: 2,
            waited_since: None,
        },
    );
    assert!(
        out.iter().any(|c| c.starts_with("send remind (run-9-step-remind-1)")),
        "{out:?}"
    );
    assert_eq!(moved.finished(), Some("completed"));
}

/// The `(from_step, exit)` of the step events and the finish event of a transition.
fn exits(log: &[Command]) -> Vec<(String, String)> {
    log.iter()
        .filter_map(|c| match c {
            Command::EmitEvent { properties, .. } => Some((
                properties.get("from_step")?.as_str()?.to_string(),
                properties.get("exit")?.as_str()?.to_string(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn step_events_name_the_exit_taken() {
    let mut sim = Sim::new(json!({
        "trigger": {"type": "event", "event": "Cart Updated"},
        "start": "wait",
        "steps": [
            {"id": "wait", "type": "wait_for_event", "event": "Order Completed", "timeout": {"hours": 1},
             "on_event": "thanks", "on_timeout": "check"},
            {"id": "check", "type": "branch", "condition": {"type": "trait", "trait": "vip", "op": "equals", "value": true},
             "yes": "call", "no": "split"},
            {"id": "split", "type": "split", "variants": [{"percent": 100, "next": "remind"}, {"percent": 0, "next": "call"}]},
            {"id": "remind", "type": "send", "template": "t", "channel": "email"},
            {"id": "call", "type": "send", "template": "t", "channel": "email"},
            {"id": "thanks", "type": "goal"}
        ],
        "settings": {"re_entry": {"type": "always"}}
    }));
    let t0 = at("2027-01-01T10:00:00Z");
    sim.start(t0, json!({}));
    sim.log.clear();
    sim.fire();
    assert_eq!(
        exits(&sim.log),
        [
            ("wait".to_string(), "on_timeout".to_string()),
            ("check".to_string(), "no".to_string()),
            ("split".to_string(), "variants[0].next".to_string()),
            ("remind".to_string(), "next".to_string()),
        ],
        "{:?}",
        sim.log
    );
    assert_eq!(sim.finished(), Some("completed"));

    let mut vip = Sim::new(json!({
        "trigger": {"type": "event", "event": "Cart Updated"},
        "start": "wait",
        "steps": [
            {"id": "wait", "type": "wait_for_event", "event": "Order Completed", "timeout": {"hours": 1},
             "on_event": "thanks", "on_timeout": "thanks"},
            {"id": "thanks", "type": "goal"}
        ],
        "settings": {"re_entry": {"type": "always"}}
    }));
    vip.start(t0, json!({}));
    vip.log.clear();
    vip.event(t0 + 60_000, "Order Completed", json!({}));
    assert_eq!(
        exits(&vip.log),
        [("wait".to_string(), "on_event".to_string())],
        "two exits to one step are told apart"
    );
}

#[test]
fn run_phase_reads_what_it_writes_and_refuses_garbage() {
    let pending = RunPhase::Pending {
        properties: json!({"cart_id": "c-1"}).as_object().unwrap().clone(),
    };
    let stored = pending.to_stored().unwrap();
    assert_eq!(stored, json!({"pending_start": {"cart_id": "c-1"}}));
    assert_eq!(RunPhase::from_stored(&stored).unwrap(), pending);

    let started = RunPhase::Started(Box::new(RunState::new(7, 1, 42, 3, 1_000)));
    let stored = started.to_stored().unwrap();
    assert_eq!(RunPhase::from_stored(&stored).unwrap(), started);
    assert!(RunPhase::from_stored(&stored).unwrap().is_started());

    for garbage in [
        json!(null),
        json!({"run_id": "seven"}),
        json!({"pending_start": 3}),
        json!([1, 2]),
    ] {
        let err = RunPhase::from_stored(&garbage).unwrap_err();
        assert!(!err.0.is_empty(), "{garbage}");
    }
}

#[test]
fn a_pending_state_is_told_without_parsing_the_rest() {
    let pending = RunPhase::Pending {
        properties: json!({"cart_id": "c-1"}).as_object().unwrap().clone(),
    }
    .to_stored()
    .unwrap();
    assert!(RunPhase::is_pending(&pending));
    assert_eq!(RunPhase::pending_properties(&pending).unwrap()["cart_id"], "c-1");
    let started = RunPhase::Started(Box::new(RunState::new(7, 1, 42, 3, 1_000)))
        .to_stored()
        .unwrap();
    assert!(!RunPhase::is_pending(&started));
    assert_eq!(RunPhase::pending_properties(&started), None);
}
