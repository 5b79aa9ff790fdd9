//! Journeys: saving a journey (its name and definition checked), publishing, pausing,
//! resuming and stopping it (with the runs to move to the published version), the dry
//! run (who to replay, in which time zones) and installing a ready-made journey.

use crate::{App, AppError, Result};
use nudge_core::journey::{DryRunContact, DryRunReport, JourneyDefinition, Trigger, parse_journey};
use nudge_core::segment::parse_condition;
use nudge_core::{ContactId, Millis, format_millis};
use nudge_engine::MoveReport;
use nudge_store::{Journey, JourneyStatus, NewJourney};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Longest journey name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// A problem in a journey definition: the field at fault in the caller's terms
/// (`definition.steps[2].on_timeout`), the id of the step it is in when it is in one
/// (so a diagram can mark that step), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DefinitionProblem {
    pub field: String,
    pub step: Option<String>,
    pub message: String,
}

/// Every problem of a definition (none: it is valid), each with its field and step.
pub fn definition_problems(definition: &Value) -> Vec<DefinitionProblem> {
    let Err(errors) = parse_journey(definition) else {
        return Vec::new();
    };
    errors
        .into_iter()
        .map(|e| {
            let path = e.path.trim_start_matches('$').trim_start_matches('.');
            let field = if path.is_empty() {
                "definition".to_string()
            } else if path.starts_with('[') {
                format!("definition{path}")
            } else {
                format!("definition.{path}")
            };
            DefinitionProblem {
                step: step_of_path(definition, path),
                field,
                message: e.message,
            }
        })
        .collect()
}

/// The id of the step a validation path (`steps[2].next`) is in, read from the
/// definition itself (the step may not parse).
fn step_of_path(definition: &Value, path: &str) -> Option<String> {
    let rest = path.strip_prefix("steps[")?;
    let index: usize = rest[..rest.find(']')?].parse().ok()?;
    definition["steps"][index]["id"].as_str().map(str::to_owned)
}

/// A journey's name, trimmed: 1 to [`MAX_NAME_LEN`] bytes.
pub fn journey_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(AppError::invalid_field(
            "name",
            format!("name must be a non-empty string of at most {MAX_NAME_LEN} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// A journey as saved: its name checked, its definition valid (the first problem as
/// the error, on its field; [`definition_problems`] lists them all).
fn checked(new: NewJourney) -> Result<NewJourney> {
    let name = journey_name(&new.name)?;
    let problems = definition_problems(&new.definition);
    if let Some(first) = problems.first() {
        let n = problems.len();
        return Err(AppError::invalid_field(
            &first.field,
            format!(
                "{}: {} ({n} problem{} in the definition)",
                first.field,
                first.message,
                if n == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(NewJourney { name, ..new })
}

/// What can be done to a journey's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JourneyAction {
    /// The latest version goes live.
    Publish,
    /// No new entries; runs hold.
    Pause,
    /// Live again (only once published).
    Resume,
    /// No new entries; runs end.
    Stop,
}

impl JourneyAction {
    pub const ALL: [JourneyAction; 4] = [Self::Publish, Self::Pause, Self::Resume, Self::Stop];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Stop => "stop",
        }
    }

    /// Whether the action means something for a journey in `status`.
    pub fn applies_to(self, status: JourneyStatus, published: bool) -> bool {
        match self {
            Self::Publish => true,
            Self::Pause => status == JourneyStatus::Live,
            Self::Resume => published && matches!(status, JourneyStatus::Paused | JourneyStatus::Stopped),
            Self::Stop => matches!(status, JourneyStatus::Live | JourneyStatus::Paused),
        }
    }
}

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

/// Checks frequency caps: `max` at least 1, a known channel (or none: every channel).
/// The error names the cap at fault (`caps[1].max`).
pub fn check_caps(caps: &[nudge_core::journey::FrequencyCap]) -> Result<()> {
    for (i, c) in caps.iter().enumerate() {
        if c.max == 0 {
            return Err(AppError::invalid_field(
                format!("caps[{i}].max"),
                "max must be at least 1",
            ));
        }
        if let Some(ch) = &c.channel
            && !nudge_core::contact::CHANNELS.contains(&ch.as_str())
        {
            return Err(AppError::invalid_field(
                format!("caps[{i}].channel"),
                format!(
                    "unknown channel {ch:?}; one of {}",
                    nudge_core::contact::CHANNELS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

impl App {
    /// The workspace's frequency caps.
    pub async fn frequency_caps(&self) -> Result<Vec<nudge_core::journey::FrequencyCap>> {
        Ok(nudge_engine::frequency_caps(&*self.store).await?)
    }

    /// Replaces the workspace's frequency caps (checked by [`check_caps`]); journeys
    /// read them at once.
    pub async fn set_frequency_caps(&self, caps: Vec<nudge_core::journey::FrequencyCap>) -> Result<()> {
        check_caps(&caps)?;
        let stored = serde_json::to_string(&caps).map_err(AppError::internal)?;
        self.store
            .put_setting(nudge_engine::FREQUENCY_CAPS, Some(&stored))
            .await?;
        self.journeys_changed().await
    }

    /// Saves a new journey (in `draft`, version 1).
    pub async fn create_journey(&self, new: NewJourney) -> Result<Journey> {
        let new = checked(new)?;
        Ok(self.store.create_journey(new, self.clock.now()).await?)
    }

    /// Saves a new version of journey `id`. Running contacts stay on their version;
    /// new runs start on the new one once it is published.
    pub async fn update_journey(&self, id: i64, new: NewJourney) -> Result<Journey> {
        let new = checked(new)?;
        let j = self
            .store
            .update_journey(id, new, self.clock.now())
            .await?
            .ok_or_else(|| AppError::not_found(format!("no journey {id}")))?;
        self.journeys_changed().await?;
        Ok(j)
    }

    /// Publishes, pauses, resumes or stops journey `id`. With `move_runs` (publish
    /// only): active runs of earlier versions at a named step move to the new version
    /// at the mapped step; the others stay on their version.
    pub async fn journey_action(
        &self,
        id: i64,
        action: JourneyAction,
        move_runs: Option<BTreeMap<String, String>>,
    ) -> Result<(Journey, Option<MoveReport>)> {
        let current = self.journey(id).await?;
        let status = match action {
            JourneyAction::Publish => JourneyStatus::Live,
            JourneyAction::Pause => JourneyStatus::Paused,
            JourneyAction::Resume if current.published_version.is_some() => JourneyStatus::Live,
            // The request is fine; the journey's state refuses it (it passes once the
            // journey is published): a conflict, not a bad request.
            JourneyAction::Resume => {
                return Err(AppError::Conflict(
                    "the journey was never published: publish it first".into(),
                ));
            }
            JourneyAction::Stop => JourneyStatus::Stopped,
        };
        let mapping = match move_runs {
            None => None,
            Some(_) if action != JourneyAction::Publish => {
                return Err(AppError::invalid_request("move_runs", "runs move only when publishing"));
            }
            Some(m) => Some(self.move_mapping(&current, m).await?),
        };
        let j = self
            .store
            .set_journey_status(id, status, action == JourneyAction::Publish, self.clock.now())
            .await?
            .ok_or_else(|| AppError::not_found(format!("no journey {id}")))?;
        self.journeys_changed().await?;
        let report = match mapping {
            Some(mapping) => {
                let engine = self
                    .journeys
                    .as_ref()
                    .ok_or_else(|| AppError::internal("no journey engine runs in this process to move runs"))?;
                Some(engine.move_runs(id, j.version, &mapping).await?)
            }
            None => None,
        };
        Ok((j, report))
    }

    /// A `move_runs` mapping, checked: every old step is a step of some earlier
    /// version of the journey, every new step one of the version being published.
    async fn move_mapping(&self, journey: &Journey, map: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
        let new_def = parse_journey(&journey.definition).map_err(|e| {
            AppError::invalid_request(
                "definition",
                format!("the latest version does not parse: {}", e[0].message),
            )
        })?;
        let mut old_steps = BTreeSet::new();
        for v in 1..journey.version {
            if let Some(version) = self.store.journey_version(journey.id, v).await?
                && let Ok(def) = parse_journey(&version.definition)
            {
                old_steps.extend(def.steps.iter().map(|s| s.id.clone()));
            }
        }
        for (old, new) in &map {
            let field = format!("move_runs.{old}");
            if !old_steps.contains(old) {
                return Err(AppError::invalid_request(
                    field,
                    format!("no earlier version of the journey has a step {old:?}"),
                ));
            }
            if new_def.step(new).is_none() {
                return Err(AppError::invalid_request(
                    field,
                    format!("version {} has no step {new:?}", journey.version),
                ));
            }
        }
        Ok(map)
    }

    /// Steps where runs are waiting now that the journey's latest version does not
    /// have, with how many: what publishing could move (`move_runs`).
    pub async fn steps_to_move(&self, journey: &Journey) -> Result<Vec<(String, i64)>> {
        let latest: BTreeSet<String> = match parse_journey(&journey.definition) {
            Ok(def) => def.steps.iter().map(|s| s.id.clone()).collect(),
            Err(_) => BTreeSet::new(),
        };
        Ok(self
            .store
            .runs_per_step(journey.id)
            .await?
            .into_iter()
            .filter(|(step, n)| *n > 0 && !latest.contains(step))
            .collect())
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_their_field_and_step() {
        let def = json!({
            "trigger": {"type": "event", "event": "Signed Up"},
            "start": "wait",
            "steps": [
                {"id": "wait", "type": "wait", "duration": {"days": 1}, "next": "nowhere"},
                {"id": "hello", "type": "send", "template": "welcome"}
            ]
        });
        let problems = definition_problems(&def);
        assert!(!problems.is_empty());
        let p = problems
            .iter()
            .find(|p| p.field == "definition.steps[0].next")
            .unwrap_or_else(|| panic!("{problems:?}"));
        assert_eq!(p.step.as_deref(), Some("wait"));

        let missing_start = definition_problems(&json!({"trigger": {"type": "api"}, "steps": []}));
        assert!(
            missing_start
                .iter()
                .any(|p| p.field == "definition.start" && p.step.is_none()),
            "{missing_start:?}"
        );
        assert_eq!(definition_problems(&json!([]))[0].field, "definition");
    }

    #[test]
    fn a_valid_definition_has_no_problem() {
        let def = json!({
            "trigger": {"type": "event", "event": "Signed Up"},
            "start": "hello",
            "steps": [{"id": "hello", "type": "send", "template": "welcome"}]
        });
        assert_eq!(definition_problems(&def), vec![]);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(journey_name("  Welcome ").unwrap(), "Welcome");
        assert!(journey_name("   ").is_err());
        assert!(journey_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn actions_apply_to_some_statuses() {
        use JourneyStatus::*;
        assert_eq!(JourneyAction::parse("pause"), Some(JourneyAction::Pause));
        assert_eq!(JourneyAction::parse("delete"), None);
        assert!(JourneyAction::Publish.applies_to(Draft, false));
        assert!(!JourneyAction::Pause.applies_to(Draft, false));
        assert!(!JourneyAction::Resume.applies_to(Stopped, false));
        assert!(JourneyAction::Resume.applies_to(Paused, true));
        assert!(JourneyAction::Stop.applies_to(Live, true));
        assert!(!JourneyAction::Stop.applies_to(Stopped, true));
    }
}
