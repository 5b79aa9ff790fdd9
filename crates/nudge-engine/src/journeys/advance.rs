//! Advancing one run: load what the core needs (definition, facts, time zone, recent
//! sends, templates), call `nudge_core::journey::step`, and turn the transition into
//! a `RunWrite` for the round (`transition::run_write`, pure).

use super::*;

impl JourneyEngine {
    /// The contact's marketing messages the caps count ([`recent_sends`]), and those
    /// of this round.
    pub(super) async fn recent_sends(
        &self,
        contact: ContactId,
        now: Millis,
        round: &Round,
    ) -> nudge_store::Result<Vec<SentMessage>> {
        let mut out = recent_sends(&*self.store, contact, now, &round.caps).await?;
        out.extend(round.sends.get(&contact).cloned().unwrap_or_default());
        Ok(out)
    }

    /// Feeds one input to one run and stores the transition. `fired`: a timer that
    /// came due for this input (removed unless the transition sets it again).
    pub(super) async fn advance(
        &self,
        run: &Run,
        input: Input,
        fired: Option<&str>,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        // A move runs on the version it moves to.
        let moved_to = match &input {
            Input::Move { version, .. } => Some(*version),
            _ => None,
        };
        let Some(def) = self.definition(run.journey_id, moved_to.unwrap_or(run.version)).await? else {
            return Ok(());
        };
        let state: RunState = match RunPhase::from_stored(&run.state) {
            Ok(RunPhase::Started(s)) => *s,
            // Stored, not started: its first transition starts from a fresh state.
            Ok(RunPhase::Pending { .. }) => {
                RunState::new(run.id, run.journey_id, run.contact_id, run.version, run.entered_at)
            }
            Err(e) => return self.set_aside(run, &e, now, round).await,
        };
        // Facts and time zone are loaded only for definitions that read them.
        let Some(facts) = self.facts(&def, run.contact_id).await? else {
            return Ok(()); // the contact is gone
        };
        let zone_name = if needs_time_zone(&def) {
            self.store.contact_time_zone(run.contact_id).await?
        } else {
            None
        };
        let tz = zone_name
            .as_deref()
            .and_then(|z| jiff::tz::TimeZone::get(z).ok())
            .or_else(|| jiff::tz::TimeZone::get(&self.config.time_zone).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let recent = if !round.caps.is_empty() && has_marketing_sends(&def) {
            self.recent_sends(run.contact_id, now, round).await?
        } else {
            vec![]
        };
        let caps = round.caps.clone();
        // The contact's send-time estimate, for definitions with a best-time send.
        let send_time = if has_best_time_sends(&def) {
            let contact = self.store.contact_send_time(run.contact_id).await?.unwrap_or_default();
            let workspace = self.store.send_time_state().await?.workspace;
            Some(nudge_core::send_time::estimate(&contact, &workspace, now))
        } else {
            None
        };
        let ctx = Context {
            now,
            facts: &facts,
            time_zone: &tz,
            caps: &caps,
            recent_sends: &recent,
            send_time: send_time.as_ref(),
        };
        let revenue = match &input {
            Input::Event { properties, .. } => journey::revenue_of(properties),
            _ => None,
        };
        let t = journey::step(&def, &state, input, &ctx);
        if t.commands.is_empty() && t.state == state && fired.is_none() {
            return Ok(());
        }
        let mut templates = Vec::new();
        for name in transition::templates_named(&t) {
            let found = match name {
                NameOrId::Id(id) => self.store.template(*id).await?,
                NameOrId::Name(n) => self.store.template_by_name(n).await?,
            };
            templates.push((name.clone(), found));
        }
        let inputs = transition::Inputs {
            run,
            before: &state,
            fired,
            moved_to,
            revenue,
            templates: &templates,
        };
        let planned = match transition::run_write(&inputs, t) {
            Ok(p) => p,
            Err(e) => return self.set_aside(run, &e, now, round).await,
        };
        round.stats.transitions += 1;
        let write = planned.write;
        for channel in planned.marketing_channels {
            round.sends.entry(run.contact_id).or_default().push(SentMessage {
                channel: Some(channel),
                at: now,
            });
        }
        round.queued |= !write.messages.is_empty();
        let mut after = run.clone();
        after.state = write.state.clone();
        after.step = write.step.clone();
        after.version = moved_to.unwrap_or(run.version);
        after.revision = run.revision + 1;
        if write.finished.is_some() {
            after.step = None;
            after.finished_at = Some(now);
            after.finish_reason = write.finished.clone();
        }
        round.runs.insert(run.id, after);
        round.writes.push(write);
        Ok(())
    }

    /// A run whose state cannot be read (or written) is set aside for inspection:
    /// reported, its timers and waits removed so nothing wakes it, its state kept.
    /// Never reset.
    pub(super) async fn set_aside(
        &self,
        run: &Run,
        e: &CorruptRunState,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        tracing::error!(run = run.id, journey = run.journey_id, error = %e, "run state unreadable; run set aside for inspection");
        self.store.set_run_aside(run.id, e.to_string(), now).await?;
        // The round sees it as set aside from now on (not active: nothing feeds it again).
        let mut aside = run.clone();
        aside.set_aside = Some(e.to_string());
        round.runs.insert(run.id, aside);
        round.stats.set_aside += 1;
        Ok(())
    }
}

/// The message outcome a timeline event reports, if it is one.
pub(super) fn outcome_of(event: &str) -> Option<MessageOutcomeKind> {
    Some(match event {
        event_names::MESSAGE_SENT => MessageOutcomeKind::Sent,
        event_names::MESSAGE_DELIVERED => MessageOutcomeKind::Delivered,
        event_names::EMAIL_OPENED => MessageOutcomeKind::Opened,
        event_names::EMAIL_LINK_CLICKED => MessageOutcomeKind::Clicked,
        event_names::MESSAGE_BOUNCED => MessageOutcomeKind::Bounced,
        event_names::MESSAGE_FAILED => MessageOutcomeKind::Failed,
        event_names::UNSUBSCRIBED => MessageOutcomeKind::Unsubscribed,
        _ => return None,
    })
}
