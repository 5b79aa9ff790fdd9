//! Journeys: the dry run (who to replay, in which time zones) and installing a
//! ready-made journey.

use crate::{App, AppError, Result};
use nudge_core::journey::{DryRunContact, DryRunReport, JourneyDefinition, Trigger, parse_journey};
use nudge_core::segment::parse_condition;
use nudge_core::{ContactId, Millis, format_millis};
use nudge_store::Journey;
use serde_json::{Value, json};

/// Most contacts one dry run replays.
pub const DRY_RUN_MAX_SAMPLE: usize = 10_000;
/// Most runs a dry run reports step by step.
pub const DRY_RUN_MAX_PATHS: usize = 1000;
/// The window replayed when the caller gives no `from`.
pub const DRY_RUN_DEFAULT_DAYS: i64 = 30;

/// Which definition a dry run replays.
#[derive(Debug, Clone, PartialEq)]
pub enum DefinitionSource {
    /// The journey's latest version.
    Latest,
    /// A stored version.
    Version(i64),
    /// A draft (validated by the caller with `parse_journey`).
    Draft(Value),
}

/// A dry run of journey `journey_id` over the recorded history of `[from, until]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRun {
    pub journey_id: i64,
    pub definition: DefinitionSource,
    /// Default: `until` − 30 days.
    pub from: Option<Millis>,
    /// Default: now.
    pub until: Option<Millis>,
    /// These contacts; `None`: a sample of the contacts the trigger could have started.
    pub contacts: Option<Vec<ContactId>>,
    /// Size of that sample (at most [`DRY_RUN_MAX_SAMPLE`]).
    pub sample: usize,
    /// Runs reported step by step.
    pub paths: usize,
}

/// What a dry run found, with the window and the number of candidates.
#[derive(Debug, Clone)]
pub struct DryRunOutcome {
    pub report: DryRunReport,
    pub from: Millis,
    pub until: Millis,
    /// Contacts the trigger could have started (or the ids given).
    pub candidates: usize,
    /// The trigger is `api`: nothing recorded can start a run.
    pub api_trigger: bool,
}

impl App {
    /// A journey, or [`AppError::NotFound`].
    pub async fn journey(&self, id: i64) -> Result<Journey> {
        self.store
            .journey(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no journey {id}")))
    }

    /// The time zone journeys use for a contact whose zone is `name` (or unknown):
    /// the journey engine's resolution (the contact's zone, else the workspace's),
    /// or, with no engine in this process, the contact's zone else UTC (the engine's
    /// default workspace zone).
    pub fn journey_zone(&self, name: Option<&str>) -> jiff::tz::TimeZone {
        match &self.journeys {
            Some(engine) => engine.zone(name),
            None => name
                .and_then(|z| jiff::tz::TimeZone::get(z).ok())
                .unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }

    /// Replays a journey over recorded history without sending or storing anything:
    /// who would have entered, the steps reached, what would have been sent, how runs
    /// would have ended. Contacts are replayed in the zones the engine would use.
    pub async fn dry_run(&self, req: DryRun) -> Result<DryRunOutcome> {
        let j = self.journey(req.journey_id).await?;
        let raw = match req.definition {
            DefinitionSource::Draft(v) => v,
            DefinitionSource::Version(v) => {
                self.store
                    .journey_version(j.id, v)
                    .await?
                    .ok_or_else(|| {
                        AppError::not_found_field("version", format!("journey {} has no version {v}", j.id))
                    })?
                    .definition
            }
            DefinitionSource::Latest => j.definition.clone(),
        };
        let mut def = parse_journey(&raw).map_err(|e| {
            AppError::invalid_request(
                "definition",
                format!("the stored definition does not parse: {}", e[0].message),
            )
        })?;
        let now = self.clock.now();
        let until = req.until.unwrap_or(now);
        let from = req
            .from
            .unwrap_or(until - DRY_RUN_DEFAULT_DAYS * nudge_core::segment::DAY_MS);
        if from >= until {
            return Err(AppError::invalid_request("from", "from must be before until"));
        }
        if req.sample > DRY_RUN_MAX_SAMPLE {
            return Err(AppError::invalid_request(
                "sample",
                format!("sample must be an integer from 0 to {DRY_RUN_MAX_SAMPLE}"),
            ));
        }
        let (candidates, ids) = match req.contacts {
            Some(ids) if ids.len() > DRY_RUN_MAX_SAMPLE => {
                return Err(AppError::invalid_request(
                    "contacts",
                    format!("at most {DRY_RUN_MAX_SAMPLE} contacts"),
                ));
            }
            Some(ids) => (ids.len(), ids),
            None => self.dry_run_candidates(&def, from, until, req.sample).await?,
        };
        nudge_engine::resolve_send_channels(&*self.store, &mut def).await?;
        let caps = nudge_engine::frequency_caps(&*self.store).await?;
        let mut contacts = Vec::with_capacity(ids.len());
        for (id, facts) in ids.iter().zip(self.store.contacts_facts(ids.clone(), None).await?) {
            let Some(facts) = facts else { continue };
            let zone = self.store.contact_time_zone(*id).await?;
            let time_zone = self.journey_zone(zone.as_deref());
            contacts.push(DryRunContact { facts, time_zone });
        }
        let report = nudge_core::journey::dry_run(&def, &contacts, from, until, &caps, req.paths);
        Ok(DryRunOutcome {
            report,
            from,
            until,
            candidates,
            api_trigger: matches!(def.trigger, Trigger::Api),
        })
    }

    /// The contacts the trigger could have started in `[from, until]` (those who
    /// performed the trigger event, submitted the form or entered the segment in the
    /// window; those with the date trait; the members of the scheduled segment), and
    /// an even spread (by id) of at most `sample` of them.
    async fn dry_run_candidates(
        &self,
        def: &JourneyDefinition,
        from: Millis,
        until: Millis,
        sample: usize,
    ) -> Result<(usize, Vec<ContactId>)> {
        let window = json!({"between": {"from": format_millis(from), "to": format_millis(until + 1)}});
        let condition = match (&def.trigger, def.trigger.event_name()) {
            (_, Some(event)) => json!({"type": "event", "event": event, "window": window}),
            (Trigger::DateTrait { name, .. }, _) => json!({"type": "trait", "trait": name, "op": "exists"}),
            (Trigger::Schedule { segment_id, .. }, _) => json!({"type": "segment", "segment": segment_id}),
            _ => return Ok((0, vec![])),
        };
        let c = parse_condition(&condition).map_err(|e| AppError::internal(format!("dry-run condition: {e:?}")))?;
        let all = self.store.segment_members(&c, self.clock.now()).await?;
        let step = all.len().div_ceil(sample.max(1)).max(1);
        let picked: Vec<ContactId> = all.iter().step_by(step).take(sample).copied().collect();
        Ok((all.len(), picked))
    }

    /// Installs ready-made journey `key` (with its templates and segment), published
    /// when `publish`, and tells the engines.
    pub async fn install_ready_made_journey(&self, key: &str, publish: bool) -> Result<Journey> {
        let j = crate::ready_made_journeys::install(&*self.store, key, publish, self.clock.now()).await?;
        self.journeys_changed().await?;
        self.contacts_changed();
        Ok(j)
    }
}
