//! Starting runs: may the contact enter, storing the round's new runs together (each
//! with a `start` timer, so a crash between storing and starting loses nothing), and
//! starting those due now. Also starts by the API.

use super::*;

impl JourneyEngine {
    /// Starts a run of a live journey with an `api` trigger for `contact` now, with the
    /// caller's properties (a trigger event's, for templates and match keys).
    /// `entry_key` makes it idempotent. `Ok(Err(why))` when no run starts.
    pub async fn start_by_api(
        &self,
        journey: &Journey,
        contact: ContactId,
        properties: Map<String, Value>,
        entry_key: String,
    ) -> nudge_store::Result<Result<Run, String>> {
        if journey.status != JourneyStatus::Live {
            return Ok(Err(format!("the journey is {}, not live", journey.status.as_str())));
        }
        let version = journey.published_version.unwrap_or(journey.version);
        let Some(def) = self.definition(journey.id, version).await? else {
            return Ok(Err("the published version does not parse".into()));
        };
        if !matches!(def.trigger, Trigger::Api) {
            return Ok(Err(
                "the journey is not started by the API (its trigger is not `api`)".into()
            ));
        }
        // A round must not fire this run's `start` timer while it is being started.
        let _round = self.round_lock.lock().await;
        let now = self.clock.now();
        let mut round = Round {
            caps: self.caps().await?,
            ..Default::default()
        };
        let before = round.stats.started;
        self.start(
            journey.id, version, &def, contact, properties, entry_key, now, &mut round,
        )
        .await?;
        self.flush_starts(now, &mut round).await?;
        if round.stats.started == before {
            return Ok(Err(
                "the contact may not enter now (re-entry, concurrency, entry filter or goal), or this key started a run already"
                    .into(),
            ));
        }
        let run_id = round.runs.keys().next().copied();
        if !round.writes.is_empty() {
            self.store.write_runs(std::mem::take(&mut round.writes), now).await?;
        }
        self.notify_messages(&round);
        match run_id {
            Some(id) => Ok(self.store.run(id).await?.ok_or_else(|| "the run vanished".to_string())),
            None => Ok(Err("no run started".into())),
        }
    }

    /// Starts a run if the contact may enter.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn start(
        &self,
        journey: i64,
        version: i64,
        def: &JourneyDefinition,
        contact: ContactId,
        properties: Map<String, Value>,
        entry_key: String,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        self.start_at(journey, version, def, contact, properties, entry_key, now, now, round)
            .await
    }

    /// Stores a run if the contact may enter now, starting at `at` (its `start` timer
    /// is due then; at once when `at` is now or past).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn start_at(
        &self,
        journey: i64,
        version: i64,
        def: &JourneyDefinition,
        contact: ContactId,
        properties: Map<String, Value>,
        entry_key: String,
        at: Millis,
        now: Millis,
        round: &mut Round,
    ) -> nudge_store::Result<()> {
        let Some(facts) = self.facts(def, contact).await? else {
            return Ok(()); // the contact is gone
        };
        // Earlier runs as this round left them, and the runs it is about to store.
        let mut previous: Vec<PreviousRun> = self
            .store
            .contact_runs(contact, Some(journey))
            .await?
            .iter()
            .map(|r| {
                let r = round.runs.get(&r.id).unwrap_or(r);
                PreviousRun {
                    entered_at: r.entered_at,
                    finished_at: r.finished_at,
                }
            })
            .collect();
        for _ in 0..round.pending.get(&(journey, contact)).copied().unwrap_or(0) {
            previous.push(PreviousRun {
                entered_at: now,
                finished_at: None,
            });
        }
        if let Err(refusal) = journey::may_enter(def, &facts, &previous, now) {
            tracing::debug!(journey, contact, %refusal, "not entering");
            return Ok(());
        }
        let pending = RunPhase::Pending {
            properties: properties.clone(),
        }
        .to_stored()
        .map_err(|e| nudge_store::StoreError::Corrupt(e.to_string()))?;
        round.starts.push(PendingStart {
            new: NewRun {
                journey_id: journey,
                version,
                contact_id: contact,
                entry_key: Some(entry_key),
            },
            first: RunWrite {
                state: pending,
                set_timers: vec![(START_TIMER.into(), at.max(now))],
                ..Default::default()
            },
            properties,
            at,
        });
        *round.pending.entry((journey, contact)).or_default() += 1;
        round.pending_contacts.insert(contact);
        Ok(())
    }

    /// Stores the round's pending runs in one transaction, then starts those due now.
    /// Called before anything else touches their contacts, and before the round's
    /// writes.
    pub(super) async fn flush_starts(&self, now: Millis, round: &mut Round) -> nudge_store::Result<()> {
        if round.starts.is_empty() {
            return Ok(());
        }
        let starts = std::mem::take(&mut round.starts);
        round.pending.clear();
        round.pending_contacts.clear();
        let stored = self
            .store
            .start_runs(starts.iter().map(|p| (p.new.clone(), p.first.clone())).collect(), now)
            .await?;
        for (p, run) in starts.into_iter().zip(stored) {
            let Some(run) = run else {
                continue; // this trigger already started a run
            };
            round.stats.started += 1;
            round.runs.insert(run.id, run.clone());
            if p.at > now {
                continue; // its start timer starts it
            }
            self.advance(
                &run,
                Input::Start {
                    properties: p.properties,
                },
                Some(START_TIMER),
                now,
                round,
            )
            .await?;
        }
        Ok(())
    }
}
