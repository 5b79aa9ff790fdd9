//! Campaigns: a definition checked against what is stored (its segments, its
//! templates and their channel), drafts saved, edited and deleted, sending with a
//! schedule (each variant's template version fixed for the send), pausing, resuming
//! and cancelling, a person's pick of an A/B test's winner, and the report per
//! variant. The admin API and the CLI call these; the campaign engine
//! (`nudge_engine::CampaignEngine`) does the sending.
//!
//! What this layer decides, beyond the pure checks of
//! `nudge_core::campaign::parse_campaign`:
//! - every segment of the audience exists and is not administrative (test contacts,
//!   employees: their members are left out of everything built on segments, and a
//!   campaign *to* such a segment would send to exactly them); an administrative
//!   segment may be excluded, which changes nothing;
//! - every variant's template exists (by name or id), is a marketing template (a
//!   campaign honours unsubscribes, topics and frequency caps; a transactional
//!   template is for receipts and password resets, never for a broadcast), and sends
//!   on the campaign's one channel: `channel` when given, else the first variant's
//!   template's; e-mail, SMS or push, never a webhook.
//!
//! The report's rates are shares of **recipients** (messages queued for the
//! variant), as the A/B test's metric is (`docs/ab-tests.md`): a message that
//! bounced still counts in the denominator. Conversions and revenue are not counted
//! yet (attribution comes later): the report leaves them out rather than show zeros.

use crate::{App, AppError, FieldProblem, Result};
use nudge_core::Millis;
use nudge_core::campaign::stats::{self, Arm, ArmStats, Fallback, Lift, Rule, WinnerMetric};
use nudge_core::campaign::{CampaignDefinition, CampaignStatus, Command, Schedule, parse_campaign, parse_schedule};
use nudge_core::journey::NameOrId;
use nudge_core::protocol::CampaignCounter;
use nudge_store::{Campaign, CampaignLaunch, CampaignStats, NewCampaign, Segment, Store, Template};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Longest campaign name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// The channels a campaign sends on.
pub const CHANNELS: [&str; 3] = ["email", "sms", "push"];

/// A definition that passed every check, with what it names resolved.
#[derive(Debug, Clone)]
pub struct CheckedDefinition {
    pub definition: CampaignDefinition,
    /// The one channel of its templates.
    pub channel: String,
    /// Each variant's template as stored now (a send fixes its current version).
    pub templates: Vec<Template>,
}

/// The outcome of [`check_definition`]: the checked definition, or every problem.
pub type Checked = std::result::Result<CheckedDefinition, Vec<FieldProblem>>;

/// `definition.<path>` for a path of `parse_campaign` (`$` is the whole definition).
fn field_of(path: &str) -> String {
    let path = path.trim_start_matches('$').trim_start_matches('.');
    if path.is_empty() {
        "definition".into()
    } else if path.starts_with('[') {
        format!("definition{path}")
    } else {
        format!("definition.{path}")
    }
}

fn problem(path: impl AsRef<str>, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field_of(path.as_ref()),
        message: message.into(),
    }
}

/// Reads a definition's shape (types, keys), or says where it first differs: the
/// path of the value at fault (`variants[0].template`), a missing field's own path.
fn shape(definition: &Value) -> std::result::Result<CampaignDefinition, FieldProblem> {
    if !definition.is_object() {
        return Err(problem("$", "a campaign definition must be a JSON object"));
    }
    nudge_core::read_shape::<CampaignDefinition>(definition).map_err(|e| problem(&e.path, e.message))
}

/// Checks a definition against the rules of `nudge_core::campaign` and against what
/// is stored (see the module documentation), and lists every problem at once, each
/// with its field in the caller's terms (`definition.variants[1].template`). A
/// definition whose shape cannot be read (a wrong type, an unknown key) has that one
/// problem: nothing else can be checked.
pub async fn check_definition(store: &dyn Store, definition: &Value) -> Result<Checked> {
    let (definition, mut problems) = match parse_campaign(definition) {
        Ok(def) => (def, Vec::new()),
        Err(errors) => match shape(definition) {
            // The shape reads but a rule is broken: what is stored is checked too, so
            // every problem is reported at once.
            Ok(def) => (def, errors.into_iter().map(|e| problem(&e.path, e.message)).collect()),
            Err(p) => return Ok(Err(vec![p])),
        },
    };

    let segments: BTreeMap<i64, Segment> = store.segments().await?.into_iter().map(|s| (s.id, s)).collect();
    for (i, id) in definition.audience.segments.iter().enumerate() {
        let path = format!("audience.segments[{i}]");
        match segments.get(id) {
            None => problems.push(problem(path, format!("no segment {id}"))),
            Some(s) if s.administrative => problems.push(problem(
                path,
                format!(
                    "segment {id} ({:?}) is administrative: its members (test contacts, employees) are left out of \
                     campaigns as of every other segment",
                    s.name
                ),
            )),
            Some(_) => {}
        }
    }
    for (i, id) in definition.audience.exclude.iter().enumerate() {
        if !segments.contains_key(id) {
            problems.push(problem(format!("audience.exclude[{i}]"), format!("no segment {id}")));
        }
    }

    let mut templates = Vec::with_capacity(definition.variants.len());
    for (i, v) in definition.variants.iter().enumerate() {
        let found = match &v.template {
            NameOrId::Id(id) => store.template(*id).await?,
            NameOrId::Name(name) if name.trim().is_empty() => continue, // reported by the core
            NameOrId::Name(name) => store.template_by_name(name).await?,
        };
        match found {
            Some(t) => templates.push((i, t)),
            None => problems.push(problem(
                format!("variants[{i}].template"),
                match &v.template {
                    NameOrId::Id(id) => format!("no template {id}"),
                    NameOrId::Name(name) => format!("no template named {name:?}"),
                },
            )),
        }
    }
    let given = definition
        .channel
        .as_deref()
        .filter(|c| CHANNELS.contains(c))
        .map(str::to_owned);
    let channel = given.clone().or_else(|| {
        templates
            .iter()
            .map(|(_, t)| t.channel.clone())
            .find(|c| CHANNELS.contains(&c.as_str()))
    });
    for (i, t) in &templates {
        let path = format!("variants[{i}].template");
        if !CHANNELS.contains(&t.channel.as_str()) {
            problems.push(problem(
                &path,
                format!(
                    "template {:?} is a {} template: campaigns send e-mail, SMS or push",
                    t.name, t.channel
                ),
            ));
        } else if let Some(c) = &channel
            && *c != t.channel
        {
            let why = if given.is_some() {
                "the campaign's channel"
            } else {
                "the channel of the first variant's template"
            };
            problems.push(problem(
                &path,
                format!(
                    "template {:?} sends {}, but the campaign sends {c} ({why}); every variant uses one channel",
                    t.name, t.channel
                ),
            ));
        }
        if t.transactional {
            problems.push(problem(
                &path,
                format!(
                    "template {:?} is transactional: campaigns are marketing (they honour unsubscribes, topics and \
                     frequency caps); use a marketing template",
                    t.name
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    Ok(Ok(CheckedDefinition {
        channel: channel.unwrap_or_default(),
        templates: templates.into_iter().map(|(_, t)| t).collect(),
        definition,
    }))
}

/// A campaign's name, trimmed: 1 to [`MAX_NAME_LEN`] bytes.
pub fn campaign_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(AppError::invalid_field(
            "name",
            format!("name must be a non-empty string of at most {MAX_NAME_LEN} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// Reads a schedule as the API takes it (`{"type": "now"}`, `{"type": "at", "at":
/// RFC 3339}`, `{"type": "local_time", "date": "YYYY-MM-DD", "time": "HH:MM"}`),
/// strictly: a key its type does not take is refused. Errors name `schedule.<field>`.
pub fn schedule(value: &Value) -> Result<Schedule> {
    if let Some(obj) = value.as_object() {
        let allowed: &[&str] = match obj.get("type").and_then(Value::as_str) {
            Some("now") => &["type"],
            Some("at") => &["type", "at"],
            Some("local_time") => &["type", "date", "time"],
            _ => &["type", "at", "date", "time"],
        };
        if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(AppError::invalid_field(
                format!("schedule.{k}"),
                format!("unknown field {k:?}; this schedule takes {}", allowed.join(", ")),
            ));
        }
    }
    parse_schedule(value).map_err(|e| AppError::invalid_field(e.path.clone(), format!("{}: {}", e.path, e.message)))
}

/// What a person can do to a sent campaign's status (sending is [`App::send_campaign`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    /// Nothing more is queued until it is resumed.
    Pause,
    /// Goes on where it was (scheduled again if its start has not come).
    Resume,
    /// Stops for good: nothing more is queued (what was queued is still delivered).
    Cancel,
}

impl CampaignAction {
    pub const ALL: [CampaignAction; 3] = [Self::Pause, Self::Resume, Self::Cancel];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
        }
    }

    fn command(self) -> Command {
        match self {
            Self::Pause => Command::Pause,
            Self::Resume => Command::Resume,
            Self::Cancel => Command::Cancel,
        }
    }
}

/// How often a status change is retried when the campaign moved meanwhile (the
/// engine starting or completing it between the read and the write).
const STATUS_ATTEMPTS: usize = 3;

/// A campaign's counters for one variant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct VariantCounts {
    /// Messages queued (one per recipient).
    pub recipients: u64,
    pub sent: u64,
    pub delivered: u64,
    pub bounced: u64,
    pub failed: u64,
    /// Opens, every one.
    pub opened: u64,
    /// Messages opened at least once.
    pub unique_opened: u64,
    pub clicked: u64,
    pub unique_clicked: u64,
    /// Conversions attributed to the variant's messages (last touch), every one.
    pub conversions: u64,
    /// Recipients with at least one conversion attributed.
    pub converted: u64,
    /// Revenue of those conversions.
    pub revenue: f64,
    /// Sum over recipients of the square of each one's revenue (for the variance).
    pub revenue_squares: f64,
    pub unsubscribed: u64,
    /// Spam complaints.
    pub complained: u64,
}

impl VariantCounts {
    fn of(stats: &CampaignStats, variant: u8) -> Self {
        let get = |c: CampaignCounter| stats.get(variant, c).max(0.0).round() as u64;
        VariantCounts {
            recipients: get(CampaignCounter::Recipients),
            sent: get(CampaignCounter::Sent),
            delivered: get(CampaignCounter::Delivered),
            bounced: get(CampaignCounter::Bounced),
            failed: get(CampaignCounter::Failed),
            opened: get(CampaignCounter::Opened),
            unique_opened: get(CampaignCounter::UniqueOpened),
            clicked: get(CampaignCounter::Clicked),
            unique_clicked: get(CampaignCounter::UniqueClicked),
            conversions: get(CampaignCounter::Conversions),
            converted: get(CampaignCounter::Converted),
            revenue: stats.get(variant, CampaignCounter::Revenue),
            revenue_squares: stats.get(variant, CampaignCounter::RevenueSquares),
            unsubscribed: get(CampaignCounter::Unsubscribed),
            complained: get(CampaignCounter::Complained),
        }
    }

    /// The holdout's counts: its recipients and the conversions of held-out contacts
    /// within the window (nothing is sent, so the rest are 0).
    fn holdout(stats: &CampaignStats, recipients: u64) -> Self {
        let get = |c: CampaignCounter| stats.holdout(c).max(0.0).round() as u64;
        VariantCounts {
            recipients,
            conversions: get(CampaignCounter::Conversions),
            converted: get(CampaignCounter::Converted).min(recipients),
            revenue: stats.holdout(CampaignCounter::Revenue),
            revenue_squares: stats.holdout(CampaignCounter::RevenueSquares),
            ..VariantCounts::default()
        }
    }

    /// As a test arm of `metric` (see `nudge_core::campaign::arm`).
    fn arm(&self, metric: WinnerMetric) -> Arm {
        nudge_core::campaign::arm(metric, |c| match c {
            CampaignCounter::Recipients => self.recipients as f64,
            CampaignCounter::UniqueOpened => self.unique_opened as f64,
            CampaignCounter::UniqueClicked => self.unique_clicked as f64,
            CampaignCounter::Converted => self.converted as f64,
            CampaignCounter::Revenue => self.revenue,
            CampaignCounter::RevenueSquares => self.revenue_squares,
            _ => 0.0,
        })
    }

    /// Revenue / recipients; `None` without recipients.
    fn revenue_per_recipient(&self) -> Option<f64> {
        (self.recipients > 0).then(|| self.revenue / self.recipients as f64)
    }

    /// `part` / recipients; `None` without recipients.
    fn rate(&self, part: u64) -> Option<f64> {
        (self.recipients > 0).then(|| part.min(self.recipients) as f64 / self.recipients as f64)
    }
}

/// One variant in a campaign's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantReport {
    /// Its index in `variants` (0 is the test's control).
    pub variant: u8,
    pub name: String,
    /// The template: fixed at the send (id and version); before it, the template the
    /// definition names now, without a version.
    pub template_id: Option<i64>,
    pub template_name: Option<String>,
    pub template_version: Option<i64>,
    pub counts: VariantCounts,
    /// Unique opens / recipients.
    pub open_rate: Option<f64>,
    /// Unique clicks / recipients.
    pub click_rate: Option<f64>,
    /// Converted recipients / recipients.
    pub conversion_rate: Option<f64>,
    /// Attributed revenue / recipients.
    pub revenue_per_recipient: Option<f64>,
    /// The test metric's figures on the counts so far (rate, 95 % interval,
    /// probability to be best, p-value against the control); `None` without a test
    /// or for a metric not counted yet.
    pub stats: Option<ArmStats>,
    /// The variant chosen for the remainder.
    pub winner: bool,
    /// Its lift over the holdout in conversion rate and revenue per recipient
    /// (`None` without a holdout or recipients on either side).
    pub lift_vs_holdout: Option<HoldoutLift>,
}

/// A variant's lift over the holdout (see `nudge_core::campaign::stats`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HoldoutLift {
    pub conversion_rate: Option<Lift>,
    pub revenue_per_recipient: Option<Lift>,
}

/// The holdout in a campaign's report: held-out contacts get nothing; their
/// conversions within the attribution window after the campaign started are counted
/// (`nudge_core::attribution::counts_for_holdout`) as the baseline for the lift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HoldoutReport {
    pub recipients: u64,
    pub conversions: u64,
    pub converted: u64,
    pub revenue: f64,
    pub conversion_rate: Option<f64>,
    pub revenue_per_recipient: Option<f64>,
}

/// Clicks of one link of one variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkReport {
    pub variant: u8,
    pub url: String,
    pub clicks: u64,
    /// Messages that clicked it at least once.
    pub unique_clicks: u64,
}

/// The A/B test in a campaign's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestReport {
    pub metric: WinnerMetric,
    pub rule: Rule,
    pub fallback: Fallback,
    /// Percent of the audience in the test.
    pub share: u8,
    pub duration_ms: Millis,
    /// When the winner is chosen (known once the snapshot is complete).
    pub ends_at: Option<Millis>,
    pub winner: Option<u8>,
    /// How the winner was chosen, as stored then: `decided_by` (the rule, the
    /// fallback and why, or a person) and, for an automatic choice, the figures it
    /// used.
    pub decision: Option<Value>,
    /// Under the significance test, the level each p-value is compared with now.
    pub significance_level: Option<f64>,
    /// Why some figures are absent.
    pub note: Option<&'static str>,
}

/// A campaign's progress and results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignReport {
    pub campaign: Campaign,
    pub variants: Vec<VariantReport>,
    /// The recipients held out (they get nothing) and their conversions.
    pub holdout: HoldoutReport,
    /// Clicks per link and variant, most clicked first.
    pub links: Vec<LinkReport>,
    pub test: Option<TestReport>,
    /// The campaign's counters per hour since it was sent (all variants).
    pub hourly: Vec<ReportPoint>,
    /// Opens and clicks by hour of the day in the workspace's time zone.
    pub hours_of_day: Vec<HourOfDay>,
    /// Deliverability by recipient domain (the 50 domains with most messages).
    pub domains: Vec<DomainReport>,
}

/// Counters during one hour (`at`: its start).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportPoint {
    pub at: Millis,
    pub counts: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HourOfDay {
    /// 0–23, local to the workspace.
    pub hour: u8,
    pub opened: u64,
    pub clicked: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DomainReport {
    pub domain: String,
    pub sent: u64,
    pub delivered: u64,
    pub bounced: u64,
    pub failed: u64,
}

/// The longest span a campaign report's hourly series covers (90 days).
const MAX_REPORT_HOURS: i64 = 90 * 24;

/// Why the winner's figures stop being the test's once it goes to the remainder.
const REMAINDER_NOTE: &str = "the winner's counts include the remainder's messages since it was chosen; the figures \
                              the choice used are in the decision";

impl App {
    /// A campaign, or [`AppError::NotFound`].
    pub async fn campaign(&self, id: i64) -> Result<Campaign> {
        self.store
            .campaign(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no campaign {id}")))
    }

    /// Every campaign, newest first.
    pub async fn campaigns(&self) -> Result<Vec<Campaign>> {
        Ok(self.store.campaigns().await?)
    }

    /// How many contacts `audience` has now: members of any of its segments who are in
    /// none of its exclusions, each once (the editor's live count). Sending takes its
    /// snapshot when it starts, so whom a campaign reaches may differ by then.
    pub async fn campaign_audience_size(&self, audience: &nudge_core::campaign::Audience) -> Result<u64> {
        Ok(self.store.campaign_audience_size(audience.clone()).await?)
    }

    /// [`check_definition`] on this app's store.
    pub async fn check_campaign_definition(&self, definition: &Value) -> Result<Checked> {
        check_definition(&*self.store, definition).await
    }

    /// A campaign about to be saved: its name trimmed and its definition without a
    /// problem (all of them in [`AppError::InvalidDefinition`]).
    async fn checked_campaign(&self, new: NewCampaign) -> Result<NewCampaign> {
        let name = campaign_name(&new.name)?;
        if let Err(problems) = self.check_campaign_definition(&new.definition).await? {
            return Err(AppError::InvalidDefinition {
                problems,
                stored: false,
            });
        }
        Ok(NewCampaign { name, ..new })
    }

    /// Saves a new campaign as a draft.
    pub async fn create_campaign(&self, new: NewCampaign) -> Result<Campaign> {
        let new = self.checked_campaign(new).await?;
        Ok(self.store.create_campaign(new, self.clock.now()).await?)
    }

    /// Edits a draft; once sent, a campaign is a conflict to edit.
    pub async fn update_campaign(&self, id: i64, new: NewCampaign) -> Result<Campaign> {
        let current = self.campaign(id).await?;
        if current.status != CampaignStatus::Draft {
            return Err(AppError::Conflict(format!(
                "a {} campaign cannot be edited; only a draft can",
                current.status.as_str()
            )));
        }
        let new = self.checked_campaign(new).await?;
        self.store
            .update_campaign(id, new, self.clock.now())
            .await?
            .ok_or_else(|| AppError::not_found(format!("no campaign {id}")))
    }

    /// Deletes a campaign that is not under way (a draft, completed or cancelled);
    /// its messages stay in the outbox and on the timelines.
    pub async fn delete_campaign(&self, id: i64) -> Result<()> {
        if self.store.delete_campaign(id).await? {
            Ok(())
        } else {
            Err(AppError::not_found(format!("no campaign {id}")))
        }
    }

    /// Sends a draft with `schedule`: its definition is checked again (templates or
    /// segments may have changed since it was saved: a conflict, with every
    /// problem), each variant's template is fixed at its current version for the
    /// whole send, sending starts at `schedule.start(now)` (now, the time given, or
    /// when the local time is first reached anywhere), and the engine is woken.
    pub async fn send_campaign(&self, id: i64, schedule: Schedule) -> Result<Campaign> {
        let command = Command::Send(schedule.clone());
        for _ in 0..STATUS_ATTEMPTS {
            let now = self.clock.now();
            let current = self.campaign(id).await?;
            let to = current
                .status
                .apply(&command, now, None)
                .map_err(|e| AppError::Conflict(e.to_string()))?;
            let checked = match self.check_campaign_definition(&current.definition).await? {
                Ok(checked) => checked,
                Err(problems) => return Err(AppError::InvalidDefinition { problems, stored: true }),
            };
            let launch = CampaignLaunch {
                schedule: schedule.clone(),
                start_at: schedule.start(now),
                templates: checked.templates.iter().map(|t| (t.id, t.version)).collect(),
            };
            if let Some(c) = self
                .store
                .set_campaign_status(id, current.status, to, Some(launch), now)
                .await?
            {
                self.campaigns_changed();
                return Ok(c);
            }
        }
        Err(moved_meanwhile())
    }

    /// Pauses, resumes or cancels a campaign, as its status allows
    /// (`CampaignStatus::apply`; otherwise a conflict saying why), and wakes the
    /// engine.
    pub async fn campaign_action(&self, id: i64, action: CampaignAction) -> Result<Campaign> {
        let command = action.command();
        for _ in 0..STATUS_ATTEMPTS {
            let now = self.clock.now();
            let current = self.campaign(id).await?;
            let to = current
                .status
                .apply(&command, now, current.start_at)
                .map_err(|e| AppError::Conflict(e.to_string()))?;
            if let Some(c) = self
                .store
                .set_campaign_status(id, current.status, to, None, now)
                .await?
            {
                self.campaigns_changed();
                return Ok(c);
            }
        }
        Err(moved_meanwhile())
    }

    /// A person chooses the test's winner before the test ends: it goes to the
    /// remainder as an automatic winner would. A conflict when the campaign has no
    /// test, its test is not under way (a draft, scheduled, completed or cancelled
    /// campaign) or over, or a winner was chosen already; `variant` must be one of
    /// the campaign's. `user` (who chose) is kept with the decision when known.
    pub async fn pick_campaign_winner(&self, id: i64, variant: u8, user: Option<String>) -> Result<Campaign> {
        let now = self.clock.now();
        let current = self.campaign(id).await?;
        let def = stored_definition(&current)?;
        if def.test.is_none() {
            return Err(AppError::Conflict(format!(
                "campaign {id} has no A/B test: every recipient gets their variant"
            )));
        }
        let n = def.variants.len();
        if usize::from(variant) >= n {
            return Err(AppError::not_found_field(
                "variant",
                format!("campaign {id} has no variant {variant}: it has {n}, numbered from 0"),
            ));
        }
        if let Some(w) = current.winner {
            return Err(AppError::Conflict(format!(
                "the winner was chosen already: variant {w}"
            )));
        }
        match current.status {
            CampaignStatus::Sending | CampaignStatus::Paused => {}
            CampaignStatus::Scheduled => {
                return Err(AppError::Conflict(
                    "the test has not started: the campaign is scheduled".into(),
                ));
            }
            s => {
                return Err(AppError::Conflict(format!(
                    "a {} campaign has no test under way",
                    s.as_str()
                )));
            }
        }
        if let Some(end) = current.test_ends_at
            && end <= now
        {
            return Err(AppError::Conflict(format!(
                "the test ended at {}: its rule chooses the winner",
                nudge_core::format_millis(end)
            )));
        }
        let mut decided_by = json!({"by": "manual"});
        if let Some(user) = user {
            decided_by["user"] = json!(user);
        }
        let decision = json!({"decided_by": decided_by, "at": now});
        if !self.store.set_campaign_winner(id, variant, decision, now).await? {
            return Err(AppError::Conflict("the winner was chosen already".into()));
        }
        self.campaigns_changed();
        self.campaign(id).await
    }

    /// A campaign's progress and results per variant: counts, open and click rates
    /// (shares of recipients), and under an A/B test the test metric's figures on the
    /// counts so far (`stats::decide`), with the stored decision once there is one.
    pub async fn campaign_report(&self, id: i64) -> Result<CampaignReport> {
        let campaign = self.campaign(id).await?;
        let def = stored_definition(&campaign)?;
        let counts = self.store.campaign_stats(id).await?;
        let mut variants = Vec::with_capacity(def.variants.len());
        for (i, v) in def.variants.iter().enumerate() {
            let index = u8::try_from(i).map_err(AppError::internal)?;
            let (template, version) = match campaign.templates.get(i) {
                Some(&(template_id, version)) => (self.store.template(template_id).await?, Some(version)),
                None => (
                    match &v.template {
                        NameOrId::Id(t) => self.store.template(*t).await?,
                        NameOrId::Name(name) => self.store.template_by_name(name).await?,
                    },
                    None,
                ),
            };
            let c = VariantCounts::of(&counts, index);
            variants.push(VariantReport {
                variant: index,
                name: v.name.clone(),
                template_id: campaign
                    .templates
                    .get(i)
                    .map(|t| t.0)
                    .or(template.as_ref().map(|t| t.id)),
                template_name: template.map(|t| t.name),
                template_version: version,
                counts: c,
                open_rate: c.rate(c.unique_opened),
                click_rate: c.rate(c.unique_clicked),
                conversion_rate: c.rate(c.converted),
                revenue_per_recipient: c.revenue_per_recipient(),
                stats: None,
                winner: campaign.winner == Some(index),
                lift_vs_holdout: None,
            });
        }
        let held = VariantCounts::holdout(&counts, campaign.held_out);
        if held.recipients > 0 {
            for v in &mut variants {
                v.lift_vs_holdout = Some(HoldoutLift {
                    conversion_rate: stats::lift_over_holdout(
                        WinnerMetric::ConversionRate,
                        &v.counts.arm(WinnerMetric::ConversionRate),
                        &held.arm(WinnerMetric::ConversionRate),
                    ),
                    revenue_per_recipient: stats::lift_over_holdout(
                        WinnerMetric::RevenuePerRecipient,
                        &v.counts.arm(WinnerMetric::RevenuePerRecipient),
                        &held.arm(WinnerMetric::RevenuePerRecipient),
                    ),
                });
            }
        }
        let test = match &def.test {
            None => None,
            Some(t) => {
                let mut report = TestReport {
                    metric: t.metric,
                    rule: t.rule,
                    fallback: t.fallback,
                    share: t.share,
                    duration_ms: t.duration.as_millis(),
                    ends_at: campaign.test_ends_at,
                    winner: campaign.winner,
                    decision: campaign.decision.clone(),
                    significance_level: None,
                    note: campaign.winner.is_some().then_some(REMAINDER_NOTE),
                };
                let arms: Vec<Arm> = (0..variants.len())
                    .map(|v| nudge_core::campaign::arm(t.metric, |c| counts.get(v as u8, c)))
                    .collect();
                // The holdout gets no message: it has a rate only for conversions.
                let holdout = matches!(
                    t.metric,
                    WinnerMetric::ConversionRate | WinnerMetric::RevenuePerRecipient
                )
                .then(|| held.arm(t.metric))
                .filter(|h| h.recipients > 0);
                if arms.len() >= 2 {
                    let live = stats::decide(t.metric, t.rule, t.fallback, &arms, holdout.as_ref())
                        .map_err(AppError::internal)?;
                    report.significance_level = live.significance_level;
                    for (v, arm) in variants.iter_mut().zip(live.arms) {
                        v.stats = Some(arm);
                    }
                }
                Some(report)
            }
        };
        let (hourly, hours_of_day) = self.campaign_hours(&campaign).await?;
        let domains = self.campaign_domain_report(id).await?;
        let links = self
            .store
            .campaign_links(id)
            .await?
            .into_iter()
            .map(|l| LinkReport {
                variant: l.variant,
                url: l.link.url,
                clicks: l.link.clicks,
                unique_clicks: l.link.unique_clicks,
            })
            .collect();
        Ok(CampaignReport {
            holdout: HoldoutReport {
                recipients: held.recipients,
                conversions: held.conversions,
                converted: held.converted,
                revenue: held.revenue,
                conversion_rate: held.rate(held.converted),
                revenue_per_recipient: held.revenue_per_recipient(),
            },
            links,
            campaign,
            variants,
            test,
            hourly,
            hours_of_day,
            domains,
        })
    }

    /// The campaign's hourly counters since it was sent, and its opens and clicks by
    /// hour of the day in the workspace's zone.
    async fn campaign_hours(&self, c: &Campaign) -> Result<(Vec<ReportPoint>, Vec<HourOfDay>)> {
        const HOUR: Millis = 3_600_000;
        let Some(sent) = c.sent_at else {
            return Ok((Vec::new(), Vec::new()));
        };
        let until = c.completed_at.unwrap_or_else(|| self.clock.now()).max(sent) / HOUR + 1;
        let from = (sent / HOUR).max(until - MAX_REPORT_HOURS);
        let rows = self
            .store
            .report_series(nudge_store::ReportScope::Campaign(c.id), from, until)
            .await?;
        let mut points: Vec<ReportPoint> = Vec::new();
        let zone = self.journey_zone(None);
        let mut by_hour = [HourOfDay::default(); 24];
        for (i, h) in by_hour.iter_mut().enumerate() {
            h.hour = i as u8;
        }
        for (hour, counter, value) in rows {
            let at = hour * HOUR;
            match points.last_mut() {
                Some(p) if p.at == at => {
                    p.counts.insert(counter.as_str().to_string(), value);
                }
                _ => points.push(ReportPoint {
                    at,
                    counts: BTreeMap::from([(counter.as_str().to_string(), value)]),
                }),
            }
            let local = jiff::Timestamp::from_millisecond(at)
                .map(|t| t.to_zoned(zone.clone()).hour())
                .unwrap_or(0)
                .clamp(0, 23) as usize;
            match counter {
                CampaignCounter::Opened => by_hour[local].opened += value.max(0.0) as u64,
                CampaignCounter::Clicked => by_hour[local].clicked += value.max(0.0) as u64,
                _ => {}
            }
        }
        Ok((points, by_hour.to_vec()))
    }

    /// Deliverability by recipient domain, most messages first (at most 50).
    async fn campaign_domain_report(&self, id: i64) -> Result<Vec<DomainReport>> {
        let mut by_domain: BTreeMap<String, DomainReport> = BTreeMap::new();
        for (domain, counter, value) in self.store.campaign_domains(id).await? {
            let d = by_domain.entry(domain.clone()).or_insert_with(|| DomainReport {
                domain,
                ..Default::default()
            });
            let v = value.max(0.0) as u64;
            match counter {
                CampaignCounter::Sent => d.sent += v,
                CampaignCounter::Delivered => d.delivered += v,
                CampaignCounter::Bounced => d.bounced += v,
                CampaignCounter::Failed => d.failed += v,
                _ => {}
            }
        }
        let mut out: Vec<DomainReport> = by_domain.into_values().collect();
        out.sort_by(|a, b| {
            (b.sent + b.delivered + b.bounced + b.failed)
                .cmp(&(a.sent + a.delivered + a.bounced + a.failed))
                .then(a.domain.cmp(&b.domain))
        });
        out.truncate(50);
        Ok(out)
    }
}

/// A campaign's stored definition, read (it was checked when saved; one that no
/// longer reads is a bug or a change of rules, reported as such).
/// What a campaign may still read while it is unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CampaignUse {
    /// A segment of its audience or of its exclusions.
    Segment(i64),
    /// A variant's template.
    Template(i64),
}

impl App {
    /// A scheduled, sending or paused campaign that still reads `what` (its
    /// audience re-checks segment membership and its messages render the template
    /// until it is over), as a conflict naming it; deleting what it reads would
    /// break it half-way.
    pub(crate) async fn refuse_if_campaign_uses(&self, what: CampaignUse) -> Result<()> {
        for c in self.store.campaigns().await? {
            if !matches!(
                c.status,
                CampaignStatus::Scheduled | CampaignStatus::Sending | CampaignStatus::Paused
            ) {
                continue;
            }
            let def = stored_definition(&c)?;
            let uses = match what {
                CampaignUse::Segment(id) => def.audience.segments.contains(&id) || def.audience.exclude.contains(&id),
                CampaignUse::Template(id) => {
                    c.templates.iter().any(|&(t, _)| t == id)
                        || def.variants.iter().any(|v| v.template == NameOrId::Id(id))
                }
            };
            if uses {
                let (kind, id) = match what {
                    CampaignUse::Segment(id) => ("segment", id),
                    CampaignUse::Template(id) => ("template", id),
                };
                return Err(AppError::Conflict(format!(
                    "{kind} {id} is used by campaign {} ({}), which is {}; cancel the campaign or let it complete first",
                    c.id,
                    c.name,
                    c.status.as_str()
                )));
            }
        }
        Ok(())
    }
}

fn stored_definition(c: &Campaign) -> Result<CampaignDefinition> {
    parse_campaign(&c.definition).map_err(|e| {
        AppError::internal(format!(
            "campaign {}: the stored definition does not read: {}: {}",
            c.id, e[0].path, e[0].message
        ))
    })
}

fn moved_meanwhile() -> AppError {
    AppError::Conflict("the campaign's status changed meanwhile; read it and try again".into())
}

/// The report as CSV: one row per variant, then one for the holdout. Rates are
/// fractions (0.25), empty where there is nothing to divide by; the `metric_*`
/// columns are the A/B test metric's figures (empty without a test).
pub fn report_csv(report: &CampaignReport) -> Result<String> {
    const HEADER: [&str; 30] = [
        "variant",
        "name",
        "template_id",
        "template_version",
        "recipients",
        "sent",
        "delivered",
        "bounced",
        "failed",
        "opened",
        "unique_opened",
        "clicked",
        "unique_clicked",
        "open_rate",
        "click_rate",
        "conversions",
        "converted",
        "revenue",
        "conversion_rate",
        "revenue_per_recipient",
        "unsubscribed",
        "complained",
        "conversion_rate_lift_vs_holdout",
        "revenue_per_recipient_lift_vs_holdout",
        "metric_rate",
        "metric_ci_low",
        "metric_ci_high",
        "probability_to_be_best",
        "p_value_vs_control",
        "winner",
    ];
    let opt = |v: Option<String>| v.unwrap_or_default();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER).map_err(AppError::internal)?;
    for v in &report.variants {
        let c = &v.counts;
        let s = v.stats.as_ref();
        let lift = v.lift_vs_holdout;
        let row: Vec<String> = vec![
            v.variant.to_string(),
            v.name.clone(),
            opt(v.template_id.map(|t| t.to_string())),
            opt(v.template_version.map(|t| t.to_string())),
            c.recipients.to_string(),
            c.sent.to_string(),
            c.delivered.to_string(),
            c.bounced.to_string(),
            c.failed.to_string(),
            c.opened.to_string(),
            c.unique_opened.to_string(),
            c.clicked.to_string(),
            c.unique_clicked.to_string(),
            opt(v.open_rate.map(|r| r.to_string())),
            opt(v.click_rate.map(|r| r.to_string())),
            c.conversions.to_string(),
            c.converted.to_string(),
            c.revenue.to_string(),
            opt(v.conversion_rate.map(|r| r.to_string())),
            opt(v.revenue_per_recipient.map(|r| r.to_string())),
            c.unsubscribed.to_string(),
            c.complained.to_string(),
            opt(lift.and_then(|l| l.conversion_rate).map(|l| l.absolute.to_string())),
            opt(lift
                .and_then(|l| l.revenue_per_recipient)
                .map(|l| l.absolute.to_string())),
            opt(s.map(|s| s.rate.to_string())),
            opt(s.map(|s| s.ci_low.to_string())),
            opt(s.map(|s| s.ci_high.to_string())),
            opt(s.map(|s| s.probability_to_be_best.to_string())),
            opt(s.and_then(|s| s.p_value_vs_control).map(|p| p.to_string())),
            v.winner.to_string(),
        ];
        w.write_record(&row).map_err(AppError::internal)?;
    }
    let mut holdout = vec![String::new(); HEADER.len()];
    let h = &report.holdout;
    let mut set = |column: &str, value: String| {
        if let Some(i) = HEADER.iter().position(|c| *c == column) {
            holdout[i] = value;
        }
    };
    set("variant", "holdout".into());
    set("name", "holdout".into());
    set("recipients", h.recipients.to_string());
    set("conversions", h.conversions.to_string());
    set("converted", h.converted.to_string());
    set("revenue", h.revenue.to_string());
    set("conversion_rate", opt(h.conversion_rate.map(|r| r.to_string())));
    set(
        "revenue_per_recipient",
        opt(h.revenue_per_recipient.map(|r| r.to_string())),
    );
    set("winner", "false".into());
    w.write_record(&holdout).map_err(AppError::internal)?;
    let bytes = w.into_inner().map_err(AppError::internal)?;
    String::from_utf8(bytes).map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_in_the_callers_terms() {
        assert_eq!(field_of("$"), "definition");
        assert_eq!(field_of("variants[1].template"), "definition.variants[1].template");
        assert_eq!(field_of("colour"), "definition.colour");
    }

    #[test]
    fn a_shape_that_does_not_read_is_named_by_its_path() {
        let at = |v: Value| shape(&v).unwrap_err().field;
        assert_eq!(at(json!({"variants": 1})), "definition.variants");
        assert_eq!(at(json!({"variants": []})), "definition.audience");
        assert_eq!(
            at(json!({"audience": {"segments": [1]}, "variants": [{"name": "A"}]})),
            "definition.variants[0].template"
        );
        assert_eq!(
            at(json!({"audience": {"segments": [1]}, "variants": [{"name": "A", "template": 1.5}]})),
            "definition.variants[0].template"
        );
        assert_eq!(
            at(json!({"audience": {"segments": [1]}, "variants": [], "colour": 1})),
            "definition.colour"
        );
        assert_eq!(at(json!([1])), "definition");
        assert!(
            shape(&json!({"audience": {"segments": []}, "variants": []})).is_ok(),
            "rules are not shape"
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(campaign_name("  December sale ").unwrap(), "December sale");
        assert!(campaign_name(" ").is_err());
        assert!(campaign_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn schedules_are_read_strictly() {
        assert_eq!(schedule(&json!({"type": "now"})).unwrap(), Schedule::Now);
        assert_eq!(
            schedule(&json!({"type": "at", "at": "2027-03-15T12:00:00Z"})).unwrap(),
            Schedule::At { at: 1_805_112_000_000 }
        );
        let field = |v: Value| match schedule(&v).unwrap_err() {
            AppError::InvalidField { field, .. } => field,
            e => panic!("{e:?}"),
        };
        assert_eq!(
            field(json!({"type": "now", "at": "2027-03-15T12:00:00Z"})),
            "schedule.at"
        );
        assert_eq!(field(json!({"type": "at", "at": "tomorrow"})), "schedule.at");
        assert_eq!(
            field(json!({"type": "local_time", "date": "2027-03-15", "time": "9am"})),
            "schedule.time"
        );
        assert_eq!(field(json!({"type": "soon"})), "schedule.type");
        assert_eq!(field(json!(["now"])), "schedule");
    }

    #[test]
    fn actions_read_back() {
        for a in CampaignAction::ALL {
            assert_eq!(CampaignAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(CampaignAction::parse("send"), None);
    }

    #[test]
    fn rates_are_shares_of_recipients() {
        let c = VariantCounts {
            recipients: 4,
            unique_opened: 1,
            ..Default::default()
        };
        assert_eq!(c.rate(c.unique_opened), Some(0.25));
        assert_eq!(VariantCounts::default().rate(0), None);
    }
}

/// At most this many addresses per campaign test.
pub const MAX_TEST_ADDRESSES: usize = 10;

/// One test message of a campaign: which variant went to which address, and what the
/// channel said.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignTestResult {
    pub variant: u8,
    pub name: String,
    pub outcome: crate::channels::TestOutcome,
}

impl App {
    /// Sends every variant of a campaign once to each address (at most
    /// [`MAX_TEST_ADDRESSES`]), rendered with sample data as the template preview
    /// does, through the live channel and outside the outbox (a test is no recipient:
    /// it counts nowhere); e-mail subjects start with `[Test] `. A sent campaign's
    /// variants go as fixed at the send; a draft's as their templates are now.
    pub async fn send_campaign_test(&self, id: i64, addresses: &[String]) -> Result<Vec<CampaignTestResult>> {
        if addresses.is_empty() || addresses.len() > MAX_TEST_ADDRESSES {
            return Err(AppError::invalid_field(
                "addresses",
                format!("give 1 to {MAX_TEST_ADDRESSES} addresses"),
            ));
        }
        let campaign = self.campaign(id).await?;
        let def = stored_definition(&campaign)?;
        let mut out = Vec::new();
        for (i, v) in def.variants.iter().enumerate() {
            let index = u8::try_from(i).map_err(AppError::internal)?;
            let content = match campaign.templates.get(i) {
                Some(&(template, version)) => self.store.template_version(template, version).await?.map(|v| v.content),
                None => match &v.template {
                    NameOrId::Id(t) => self.store.template(*t).await?,
                    NameOrId::Name(n) => self.store.template_by_name(n).await?,
                }
                .map(|t| t.content),
            }
            .ok_or_else(|| {
                AppError::invalid_field(
                    format!("definition.variants[{i}].template"),
                    "the variant's template no longer exists",
                )
            })?;
            let content = serde_json::from_value(content).map_err(AppError::internal)?;
            for to in addresses {
                let outcome = self
                    .send_template_test(crate::channels::TemplateTest {
                        content: Clone::clone(&content),
                        render_as: crate::templates::PreviewAs::Sample(json!({})),
                        to: to.clone(),
                    })
                    .await?;
                out.push(CampaignTestResult {
                    variant: index,
                    name: v.name.clone(),
                    outcome,
                });
            }
        }
        Ok(out)
    }
}
