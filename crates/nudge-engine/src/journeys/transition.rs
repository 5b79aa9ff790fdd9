//! A core transition as the run's write: pure. The engine loads what this needs (the
//! run, its state before, the templates the commands name) and hands the result to
//! the round; the store carries it out in one transaction.

use nudge_core::journey::{self, Command, CorruptRunState, NameOrId, RunPhase, RunState, Transition};
use nudge_core::protocol::{IdempotencyKey, MessageOrigin, TimelineEvent, event_names};
use nudge_store::{ClearTimers, NewMessage, Run, RunWrite, Template};
use serde_json::{Value, json};

/// What the write is computed from, besides the transition.
pub(super) struct Inputs<'a> {
    pub run: &'a Run,
    /// The run's state before the transition.
    pub before: &'a RunState,
    /// The timer that came due for this input (removed unless set again).
    pub fired: Option<&'a str>,
    /// The version a move put the run on.
    pub moved_to: Option<i64>,
    /// The revenue of the input event (attributed when it reaches the goal).
    pub revenue: Option<f64>,
    /// The templates the transition's sends name, as stored (`None`: no such template).
    pub templates: &'a [(NameOrId, Option<Template>)],
}

/// A run's write and the marketing messages it queues (by channel, for the caps of
/// the rest of the round).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Planned {
    pub write: RunWrite,
    pub marketing_channels: Vec<String>,
}

/// The templates a transition's commands name (for the caller to load).
pub(super) fn templates_named(t: &Transition) -> Vec<&NameOrId> {
    let mut out: Vec<&NameOrId> = Vec::new();
    for c in &t.commands {
        if let Command::Send { template, .. } | Command::CallWebhook { template, .. } = c
            && !out.contains(&template)
        {
            out.push(template);
        }
    }
    out
}

/// Turns a transition into the run's write. Fails only if the new state cannot be
/// serialised: nothing is written then (never a `null` state).
pub(super) fn run_write(i: &Inputs, t: Transition) -> Result<Planned, CorruptRunState> {
    let run = i.run;
    let mut write = RunWrite {
        run_id: run.id,
        step: t.state.position.clone(),
        state: RunPhase::Started(Box::new(t.state.clone())).to_stored()?,
        version: i.moved_to,
        expected_revision: Some(run.revision),
        ..Default::default()
    };
    let mut marketing_channels = Vec::new();
    let mut cleared: Vec<String> = i.fired.map(|k| vec![k.to_string()]).unwrap_or_default();
    // What templates render as `event`: the trigger event's name and properties.
    let event = json!({
        "name": i.before.trigger.get("event").cloned().unwrap_or(Value::Null),
        "properties": t.state.trigger,
    });
    for c in t.commands {
        match c {
            Command::Send {
                step,
                visit,
                template,
                channel,
                transactional,
                idempotency_key,
            } => match message(i, &template, channel.as_deref(), transactional, &event) {
                Ok(mut m) => {
                    if !m.transactional {
                        marketing_channels.push(m.channel.clone());
                    }
                    m.idempotency_key = idempotency_key.into_string();
                    m.origin = Some(origin(run, &step, visit));
                    write.messages.push(m);
                }
                Err(reason) => write.events.push(skipped(run, &step, visit, reason)),
            },
            Command::CallWebhook {
                step,
                visit,
                template,
                idempotency_key,
            } => match message(i, &template, Some("webhook"), true, &event) {
                Ok(mut m) => {
                    m.idempotency_key = idempotency_key.into_string();
                    m.origin = Some(origin(run, &step, visit));
                    write.messages.push(m);
                }
                Err(reason) => write.events.push(skipped(run, &step, visit, reason)),
            },
            Command::ScheduleTimer { key, at } => write.set_timers.push((key, at)),
            Command::CancelTimer { key } => cleared.push(key),
            Command::ListenFor { waits } => {
                write.waits = Some(waits.into_iter().map(|w| (w.event, w.key)).collect());
            }
            Command::UpdateContact {
                update,
                idempotency_key,
                ..
            } => write.contact_updates.push((idempotency_key, update)),
            Command::EmitEvent {
                name,
                properties,
                idempotency_key,
                counts,
            } => write.events.push(TimelineEvent {
                name,
                properties,
                key: idempotency_key,
                counts,
            }),
            Command::Finish { reason } => {
                if matches!(reason, journey::FinishReason::Goal { .. }) {
                    write.revenue = i.revenue;
                }
                write.finished = Some(reason.as_str().to_string());
            }
        }
    }
    // A re-scheduled key is set again after the clearing.
    write.clear_timers = ClearTimers::Keys(cleared);
    Ok(Planned {
        write,
        marketing_channels,
    })
}

fn origin(run: &Run, step: &str, visit: u32) -> MessageOrigin {
    MessageOrigin::Journey {
        journey_id: run.journey_id,
        run_id: run.id,
        step: step.to_string(),
        visit,
    }
}

/// A send step that queued nothing, on the contact's timeline (once per visit).
fn skipped(run: &Run, step: &str, visit: u32, reason: String) -> TimelineEvent {
    TimelineEvent {
        name: event_names::JOURNEY_MESSAGE_SKIPPED.to_string(),
        properties: json!({"journey_id": run.journey_id, "run_id": run.id, "step": step, "reason": reason}),
        key: IdempotencyKey::skipped(run.id, step, visit),
        counts: None,
    }
}

/// The outbox message of a send step (key and origin set by the caller), or why there
/// is none.
fn message(
    i: &Inputs,
    template: &NameOrId,
    channel: Option<&str>,
    transactional: bool,
    event: &Value,
) -> Result<NewMessage, String> {
    let t = i
        .templates
        .iter()
        .find(|(n, _)| n == template)
        .and_then(|(_, t)| t.as_ref())
        .ok_or_else(|| format!("no template {template:?}"))?;
    if let Some(c) = channel
        && c != t.channel
    {
        return Err(format!("template {:?} is for {}, not {c}", t.name, t.channel));
    }
    Ok(NewMessage {
        idempotency_key: String::new(),
        contact_id: i.run.contact_id,
        template_id: t.id,
        template_version: t.version,
        channel: t.channel.clone(),
        transactional: transactional || t.transactional,
        data: json!({"event": event, "data": {}}),
        origin: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_core::journey::{FinishReason, RunState};
    use serde_json::json;

    fn run() -> Run {
        Run {
            id: 7,
            journey_id: 3,
            version: 1,
            contact_id: 42,
            step: Some("a".into()),
            state: json!({}),
            entry_key: None,
            entered_at: 0,
            updated_at: 0,
            finished_at: None,
            finish_reason: None,
            revision: 5,
            set_aside: None,
        }
    }

    fn template(id: i64, name: &str, channel: &str) -> Template {
        Template {
            id,
            name: name.into(),
            description: String::new(),
            channel: channel.into(),
            version: 2,
            transactional: false,
            topic: None,
            content: json!({}),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn send(step: &str, visit: u32, template: &str) -> Command {
        Command::Send {
            step: step.into(),
            visit,
            template: NameOrId::Name(template.into()),
            channel: None,
            transactional: false,
            idempotency_key: IdempotencyKey::step(7, step, visit),
        }
    }

    #[test]
    fn sends_carry_their_origin_and_key_and_count_as_marketing() {
        let (r, before) = (run(), RunState::new(7, 3, 42, 1, 0));
        let templates = vec![(NameOrId::Name("welcome".into()), Some(template(9, "welcome", "email")))];
        let i = Inputs {
            run: &r,
            before: &before,
            fired: Some("start"),
            moved_to: None,
            revenue: Some(5.0),
            templates: &templates,
        };
        let t = Transition {
            state: before.clone(),
            commands: vec![
                send("mail", 2, "welcome"),
                Command::Finish {
                    reason: FinishReason::Goal { name: None },
                },
            ],
        };
        let p = run_write(&i, t).unwrap();
        assert_eq!(p.marketing_channels, vec!["email".to_string()]);
        let m = &p.write.messages[0];
        assert_eq!(m.idempotency_key, "run-7-step-mail-2");
        assert_eq!((m.template_id, m.template_version, m.contact_id), (9, 2, 42));
        assert_eq!(
            m.origin,
            Some(MessageOrigin::Journey {
                journey_id: 3,
                run_id: 7,
                step: "mail".into(),
                visit: 2
            })
        );
        assert!(m.data.get("journey").is_none(), "the origin is not template data");
        assert_eq!(p.write.expected_revision, Some(5));
        assert_eq!(p.write.revenue, Some(5.0));
        assert_eq!(p.write.finished.as_deref(), Some("goal"));
        assert_eq!(p.write.clear_timers, ClearTimers::Keys(vec!["start".into()]));
        assert!(p.write.state.get("run_id").is_some());
    }

    #[test]
    fn a_missing_template_is_skipped_once_per_visit() {
        let (r, before) = (run(), RunState::new(7, 3, 42, 1, 0));
        let i = Inputs {
            run: &r,
            before: &before,
            fired: None,
            moved_to: None,
            revenue: None,
            templates: &[(NameOrId::Name("gone".into()), None)],
        };
        let write = |visit| {
            let t = Transition {
                state: before.clone(),
                commands: vec![Command::CallWebhook {
                    step: "hook".into(),
                    visit,
                    template: NameOrId::Name("gone".into()),
                    idempotency_key: IdempotencyKey::step(7, "hook", visit),
                }],
            };
            run_write(&i, t).unwrap().write
        };
        let (first, second) = (write(1), write(2));
        assert!(first.messages.is_empty());
        assert_eq!(first.events[0].name, event_names::JOURNEY_MESSAGE_SKIPPED);
        assert_ne!(
            first.events[0].key, second.events[0].key,
            "a later visit records its own skip"
        );
    }

    #[test]
    fn a_template_of_another_channel_is_refused() {
        let (r, before) = (run(), RunState::new(7, 3, 42, 1, 0));
        let templates = vec![(NameOrId::Name("sms".into()), Some(template(1, "sms", "sms")))];
        let i = Inputs {
            run: &r,
            before: &before,
            fired: None,
            moved_to: None,
            revenue: None,
            templates: &templates,
        };
        let t = Transition {
            state: before.clone(),
            commands: vec![Command::CallWebhook {
                step: "hook".into(),
                visit: 1,
                template: NameOrId::Name("sms".into()),
                idempotency_key: IdempotencyKey::step(7, "hook", 1),
            }],
        };
        let w = run_write(&i, t).unwrap().write;
        assert!(w.messages.is_empty());
        assert!(
            w.events[0].properties["reason"]
                .as_str()
                .unwrap()
                .contains("not webhook")
        );
    }
}
