//! A round of the journey engine: inbox events (starting the journeys they trigger,
//! feeding the contact's active runs), then due timers; the round's transitions are
//! written in one transaction. Also moving runs to a new version, which computes
//! transitions under the same lock.

use super::*;

impl JourneyEngine {
    /// One round: inbox events, then due timers; their transitions are written in one
    /// transaction, then the inbox events are acknowledged.
    pub async fn run_once(&self) -> nudge_store::Result<RoundStats> {
        let _round = self.round_lock.lock().await;
        let journeys = self.store.journeys().await?;
        self.index(&journeys).await?;
        let now = self.clock.now();
        if self.sets_entries() {
            self.schedule_entries(&journeys, now).await?;
        }
        let mut round = Round {
            caps: self.caps().await?,
            ..Default::default()
        };
        let events = self
            .store
            .claim_journey_inbox(now, self.config.batch, self.config.lease_ms)
            .await?;
        let conversions = conversion_settings(&*self.store).await?;
        for e in events.iter().filter(|e| conversions.is_conversion(&e.name)) {
            // Recorded once per event (a repeat after a crash does nothing).
            let revenue = e.properties.as_object().and_then(journey::revenue_of);
            self.store
                .record_conversion(
                    nudge_store::NewConversion {
                        event_id: e.event_id,
                        contact_id: e.contact_id,
                        name: e.name.clone(),
                        at: e.at,
                        revenue,
                    },
                    conversions.clone(),
                    now,
                )
                .await?;
        }
        for e in &events {
            if round.has_pending(e.contact_id) {
                self.flush_starts(now, &mut round).await?;
            }
            if entries::is_traits_changed(e) {
                self.on_traits_changed(&journeys, e.contact_id, now).await?;
            } else {
                self.on_event(&journeys, e, now, &mut round).await?;
            }
        }
        self.flush_starts(now, &mut round).await?;
        round.stats.events = events.len();
        let timers = self
            .store
            .claim_timers(now, self.config.batch, self.config.lease_ms)
            .await?;
        let status: HashMap<i64, JourneyStatus> = journeys.iter().map(|j| (j.id, j.status)).collect();
        // The timers' runs, loaded at once (those this round already moved are newer).
        let ids: Vec<i64> = timers
            .iter()
            .map(|t| t.run_id)
            .filter(|id| !round.runs.contains_key(id))
            .collect();
        for r in self.store.runs(ids).await? {
            round.runs.insert(r.id, r);
        }
        // Timers due at the same moment go by journey priority, so when sends compete
        // for a frequency cap's slot the higher-priority journey's message takes it
        // (the others are deferred to the next slot).
        let priority: HashMap<i64, i64> = journeys.iter().map(|j| (j.id, j.priority)).collect();
        let mut timers = timers;
        timers.sort_by_key(|t| {
            let p = round
                .runs
                .get(&t.run_id)
                .and_then(|r| priority.get(&r.journey_id))
                .copied()
                .unwrap_or(0);
            (t.due_at, std::cmp::Reverse(p), t.run_id)
        });
        for t in &timers {
            self.on_timer(t, &status, now, &mut round).await?;
        }
        round.stats.fired = timers.iter().map(|t| t.due_at).collect();
        round.stats.timers = timers.len() + self.entry_timers(&journeys, now, &mut round).await?;
        self.flush_starts(now, &mut round).await?;
        let mut stale = Vec::new();
        if !round.writes.is_empty() {
            stale = self.store.write_runs(std::mem::take(&mut round.writes), now).await?;
        }
        // Another worker moved these runs while this round computed theirs (several
        // processes on PostgreSQL): their transitions were not written. Their timers
        // stay claimed and come back when the lease ends; their contacts' events stay
        // in the inbox (not acknowledged) and are handled again then.
        let stale_contacts: std::collections::HashSet<ContactId> = stale
            .iter()
            .filter_map(|id| round.runs.get(id).map(|r| r.contact_id))
            .collect();
        if !stale.is_empty() {
            tracing::warn!(runs = ?stale, "runs moved on by another worker; their inputs come back");
        }
        let acked: Vec<i64> = events
            .iter()
            .filter(|e| !stale_contacts.contains(&e.contact_id))
            .map(|e| e.id)
            .collect();
        if !acked.is_empty() {
            self.store.ack_journey_inbox(acked).await?;
        }
        self.notify_messages(&round);
        Ok(round.stats)
    }

    /// Moves the active runs of `journey` that follow another version than `to` onto
    /// `to`, where `mapping` names their step (old step id → step id of `to`): each
    /// leaves its wait and enters the mapped step (`Input::Move`; a wait of the same
    /// kind keeps the time already waited). Runs at steps the mapping does not name
    /// stay on their version. Each move is one transition, written like any other.
    pub async fn move_runs(
        &self,
        journey: i64,
        to: i64,
        mapping: &std::collections::BTreeMap<String, String>,
    ) -> nudge_store::Result<MoveReport> {
        let _round = self.round_lock.lock().await;
        let mut report = MoveReport::default();
        let Some(new_def) = self.definition(journey, to).await? else {
            return Ok(report);
        };
        let mut after = 0;
        loop {
            let page = self.store.active_runs(journey, after, self.config.batch).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            let now = self.clock.now();
            let mut round = Round {
                caps: self.caps().await?,
                ..Default::default()
            };
            for run in page.iter().filter(|r| r.version != to) {
                let target = run.step.as_ref().and_then(|s| mapping.get(s));
                let state = match RunPhase::from_stored(&run.state) {
                    Ok(RunPhase::Started(s)) => Some(s),
                    _ => None,
                };
                let (Some(target), Some(state)) = (target, state) else {
                    report.stayed += 1;
                    continue;
                };
                let old_def = self.definition(journey, run.version).await?;
                let kind = |d: &JourneyDefinition, id: &str| d.step(id).map(|s| s.kind.type_name());
                let old_kind = old_def
                    .as_deref()
                    .zip(run.step.as_deref())
                    .and_then(|(d, id)| kind(d, id));
                let waited_since = (old_kind.is_some()
                    && old_kind == kind(&new_def, target)
                    && matches!(old_kind, Some("wait" | "wait_for_event")))
                .then_some(state.step_entered_at);
                let input = Input::Move {
                    step: target.clone(),
                    version: to,
                    waited_since,
                };
                let before = round.writes.len();
                self.advance(run, input, None, now, &mut round).await?;
                if round.writes.len() > before {
                    report.moved += 1;
                } else {
                    report.stayed += 1; // nothing to move (not started, or no definition)
                }
            }
            if !round.writes.is_empty() {
                self.store.write_runs(std::mem::take(&mut round.writes), now).await?;
            }
            self.notify_messages(&round);
        }
        tracing::info!(
            journey,
            to,
            moved = report.moved,
            stayed = report.stayed,
            "runs moved to a new version"
        );
        Ok(report)
    }

    /// An event from the inbox: starts the live journeys it triggers, then feeds it to
    /// the contact's active runs (waits, goals, exits). Returns whether messages were
    /// queued.
    pub(super) async fn on_event(
        &self,
        journeys: &[Journey],
        e: &InboxEvent,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        let properties = e.properties.as_object().cloned().unwrap_or_default();
        let active: Vec<Run> = self
            .store
            .contact_runs(e.contact_id, None)
            .await?
            .into_iter()
            .map(|r| round.runs.get(&r.id).cloned().unwrap_or(r))
            .filter(Run::is_active)
            .collect();
        // A message's outcome goes to the run that sent it (its origin), as
        // `MessageOutcome` for the step whose latest message it is.
        if let (Some(outcome), Some(message_id)) = (
            advance::outcome_of(&e.name),
            e.properties.get("message_id").and_then(Value::as_i64),
        ) && let Some(m) = self.store.message(message_id).await?
            && let Some(sender) = m.origin.as_ref().and_then(|o| o.run_id())
        {
            for run in active.iter().filter(|r| r.id == sender) {
                let Ok(RunPhase::Started(state)) = RunPhase::from_stored(&run.state) else {
                    continue; // not started, or unreadable (set aside when it next moves)
                };
                if let Some((step, _)) = state.sent.iter().find(|(_, k)| **k == m.idempotency_key) {
                    let input = Input::MessageOutcome {
                        step: step.clone(),
                        key: m.idempotency_key.clone(),
                        outcome,
                    };
                    self.advance(run, input, None, now, round).await?;
                }
            }
        }
        // As the outcomes above left them: a run they finished or set aside is not fed
        // the event again.
        let active: Vec<Run> = active
            .into_iter()
            .map(|r| round.runs.get(&r.id).cloned().unwrap_or(r))
            .filter(Run::is_active)
            .collect();
        let mut priority: Vec<&Journey> = journeys
            .iter()
            .filter(|j| j.status == JourneyStatus::Live && j.published_version.is_some())
            .collect();
        priority.sort_by_key(|j| std::cmp::Reverse(j.priority));
        for run in active {
            if RunPhase::is_pending(&run.state) {
                continue; // not started yet: its start timer will.
            }
            match journeys.iter().find(|j| j.id == run.journey_id).map(|j| j.status) {
                // A paused journey's runs hold: what they wait for is not heard.
                Some(JourneyStatus::Paused) => continue,
                Some(JourneyStatus::Stopped) | None => {
                    self.advance(&run, Input::Stop, None, now, round).await?;
                    continue;
                }
                _ => {}
            }
            let input = Input::Event {
                name: e.name.clone(),
                properties: properties.clone(),
                at: e.at,
            };
            self.advance(&run, input, None, now, round).await?;
        }
        for j in priority {
            let version = j.published_version.unwrap_or(j.version);
            let Some(def) = self.definition(j.id, version).await? else {
                continue;
            };
            if !def.trigger.matches_event(&e.name, &properties, now) {
                continue;
            }
            self.start(
                j.id,
                version,
                &def,
                e.contact_id,
                properties.clone(),
                format!("event-{}", e.event_id),
                now,
                round,
            )
            .await?;
        }
        Ok(())
    }

    pub(super) async fn on_timer(
        &self,
        t: &DueTimer,
        status: &HashMap<i64, JourneyStatus>,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        let run = match round.runs.get(&t.run_id) {
            Some(r) => r.clone(),
            None => match self.store.run(t.run_id).await? {
                Some(r) => r,
                None => return Ok(()),
            },
        };
        if !run.is_active() {
            return Ok(());
        }
        match status.get(&run.journey_id) {
            // Paused: the timer stays leased and comes back when the lease runs out,
            // so the run holds until the journey is resumed.
            Some(JourneyStatus::Paused) => return Ok(()),
            Some(JourneyStatus::Stopped) | None => {
                return self.advance(&run, Input::Stop, Some(&t.key), now, round).await;
            }
            _ => {}
        }
        let input = match RunPhase::pending_properties(&run.state) {
            Some(properties) if t.key == START_TIMER => Input::Start { properties },
            _ => Input::Timer { key: t.key.clone() },
        };
        self.advance(&run, input, Some(&t.key), now, round).await
    }
}
