//! Lead scoring: named scores with a half-life and stages, rules that give points
//! for what a contact does, and the pure decisions of the write path — which rules a
//! happening fires, what points result within the repeat caps, and when decay next
//! takes a score across a threshold someone reads.
//!
//! A contact's score is kept as `(points, anchor)`: its value at time `t` is
//! `points · 2^(−(t − anchor) / half_life)` (no half-life: `points`). The value is
//! materialised (written to the score's trait, [`score_trait`]) when rules change it
//! and when decay takes it across a threshold ([`next_crossing`]): stage thresholds
//! and the thresholds segments test the score against. Between those moments the
//! trait keeps the last materialised value, which every reader's threshold agrees
//! with.
//!
//! No I/O, no clock reads: callers pass `now`.

use crate::Millis;
use crate::segment::{ConditionError, PropertyFilter, Test, check_filters, check_name};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// The default score: the one `lead_score` segment conditions and the journey step's
/// `lead_score` change read when they name none.
pub const DEFAULT_SCORE: &str = "lead_score";
/// The most rules a workspace keeps.
pub const MAX_RULES: usize = 500;
/// The most named scores a workspace keeps.
pub const MAX_SCORES: usize = 20;
/// The most stages a score has.
pub const MAX_STAGES: usize = 10;
/// Largest number of points one rule gives or takes.
pub const MAX_POINTS: i64 = 1_000_000;
/// Longest half-life, in days.
pub const MAX_HALF_LIFE_DAYS: f64 = 3650.0;
pub const DAY_MS: Millis = 86_400_000;
pub const WEEK_MS: Millis = 7 * DAY_MS;

/// The contact trait a score is materialised in: `lead_score` for the default score,
/// `<name>_score` for the others (`engagement` → `engagement_score`).
pub fn score_trait(score: &str) -> String {
    if score == DEFAULT_SCORE {
        DEFAULT_SCORE.to_string()
    } else {
        format!("{score}_score")
    }
}

/// A validation problem, at the JSON path of the field at fault (`trigger.where[0].op`).
pub type ScoringError = ConditionError;

fn problem(path: &str, message: impl Into<String>) -> ScoringError {
    ConditionError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// A named score: its half-life and stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreDefinition {
    pub name: String,
    /// Days for the score to lose half its value; none: no decay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_life_days: Option<f64>,
    /// Lowest first: the first stage has no `from`, each next one starts at its `from`.
    #[serde(default)]
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub name: String,
    /// The lowest value in this stage (inclusive); none for the lowest stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<f64>,
}

impl ScoreDefinition {
    /// A score nobody defined: no decay, no stages.
    pub fn plain(name: &str) -> Self {
        ScoreDefinition {
            name: name.to_string(),
            half_life_days: None,
            stages: Vec::new(),
        }
    }

    pub fn half_life_ms(&self) -> Option<Millis> {
        self.half_life_days.map(|d| (d * DAY_MS as f64).round() as Millis)
    }

    /// The stage a value is in (`None` without stages).
    pub fn stage_of(&self, value: f64) -> Option<&str> {
        let mut out = None;
        for s in &self.stages {
            match s.from {
                Some(from) if value < from => break,
                _ => out = Some(s.name.as_str()),
            }
        }
        out
    }

    /// The stage thresholds.
    pub fn thresholds(&self) -> impl Iterator<Item = f64> + '_ {
        self.stages.iter().filter_map(|s| s.from)
    }

    /// Checks a definition; problems name their field.
    pub fn validate(&self) -> Result<(), ScoringError> {
        check_score_name("name", &self.name)?;
        if let Some(h) = self.half_life_days
            && !(h.is_finite() && h > 0.0 && h <= MAX_HALF_LIFE_DAYS)
        {
            return Err(problem(
                "half_life_days",
                format!("must be a number of days above 0 and at most {MAX_HALF_LIFE_DAYS}"),
            ));
        }
        if self.stages.len() > MAX_STAGES {
            return Err(problem("stages", format!("at most {MAX_STAGES} stages")));
        }
        let mut previous: Option<f64> = None;
        for (i, s) in self.stages.iter().enumerate() {
            let at = format!("stages[{i}]");
            if s.name.trim().is_empty() || s.name.len() > 50 {
                return Err(problem(&format!("{at}.name"), "must be 1 to 50 characters"));
            }
            if self.stages[..i].iter().any(|o| o.name == s.name) {
                return Err(problem(&format!("{at}.name"), format!("{:?} is used twice", s.name)));
            }
            match (i, s.from) {
                (0, None) => {}
                (0, Some(_)) => {
                    return Err(problem(
                        &format!("{at}.from"),
                        "the lowest stage has no `from`: it holds every value below the next stage",
                    ));
                }
                (_, None) => return Err(problem(&format!("{at}.from"), "required: the stage's lowest value")),
                (_, Some(f)) if !f.is_finite() => {
                    return Err(problem(&format!("{at}.from"), "must be a finite number"));
                }
                (_, Some(f)) => {
                    if previous.is_some_and(|p| f <= p) {
                        return Err(problem(
                            &format!("{at}.from"),
                            "must be above the previous stage's `from` (stages go from lowest to highest)",
                        ));
                    }
                    previous = Some(f);
                }
            }
        }
        Ok(())
    }
}

fn check_score_name(path: &str, name: &str) -> Result<(), ScoringError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(problem(
            path,
            "must be 1 to 40 lower-case letters, digits or `_`, starting with a letter",
        ));
    }
    if name != DEFAULT_SCORE && (name.ends_with("_score") || name == "lead") {
        return Err(problem(
            path,
            format!("{name:?} would share its trait with another score (a score `x` is kept in the trait `x_score`)"),
        ));
    }
    Ok(())
}

/// What gives a rule's points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// A `track` event of this name whose properties pass every filter.
    Event {
        event: String,
        #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
        filters: Vec<PropertyFilter>,
    },
    /// A page view whose URL matches `url`: `*` stands for any characters; a pattern
    /// starting with `/` is matched against the URL's path (and query).
    PageView { url: String },
    /// An e-mail opened (`Email Opened`), of one template or any.
    EmailOpened {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<i64>,
    },
    /// A link clicked in an e-mail (`Email Link Clicked`), of one template or any.
    EmailClicked {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<i64>,
    },
    /// A form submitted (`Form Submitted`), of one form (its id or name) or any.
    FormSubmitted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        form: Option<String>,
    },
    /// An `identify` that changed this trait, optionally to a value passing `test`.
    TraitChanged {
        #[serde(rename = "trait")]
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test: Option<Test>,
    },
}

/// How often a rule gives its points to one contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Frequency {
    /// Once per contact, ever.
    Once,
    /// Every time, at most `cap.max` times per UTC day or week when capped.
    Repeat {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cap: Option<Cap>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    pub max: u32,
    pub per: Period,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
}

impl Frequency {
    /// The counter a firing at `now` counts in (`once`, `d<day>`, `w<week>`) and its
    /// limit; `None` when uncounted (repeat without a cap). Days and weeks are UTC,
    /// weeks starting on Monday.
    pub fn counter(&self, now: Millis) -> Option<(String, u32)> {
        match self {
            Frequency::Once => Some(("once".to_string(), 1)),
            Frequency::Repeat { cap: None } => None,
            Frequency::Repeat {
                cap: Some(Cap { max, per: Period::Day }),
            } => Some((format!("d{}", now.div_euclid(DAY_MS)), *max)),
            // 1970-01-01 was a Thursday: weeks start 3 days before the epoch's week.
            Frequency::Repeat {
                cap: Some(Cap { max, per: Period::Week }),
            } => Some((format!("w{}", (now + 3 * DAY_MS).div_euclid(WEEK_MS)), *max)),
        }
    }
}

impl Frequency {
    /// Whether a counter's period is the one a firing at `now` counts in (the
    /// period [`Frequency::counter`] names), without writing that period out.
    pub fn counts_in(&self, period: &str, now: Millis) -> bool {
        let number = |prefix: char| period.strip_prefix(prefix).and_then(|n| n.parse::<i64>().ok());
        match self {
            Frequency::Once => period == "once",
            Frequency::Repeat { cap: None } => false,
            Frequency::Repeat {
                cap: Some(Cap { per: Period::Day, .. }),
            } => number('d') == Some(now.div_euclid(DAY_MS)),
            Frequency::Repeat {
                cap: Some(Cap { per: Period::Week, .. }),
            } => number('w') == Some((now + 3 * DAY_MS).div_euclid(WEEK_MS)),
        }
    }
}

fn default_score() -> String {
    DEFAULT_SCORE.to_string()
}

fn yes() -> bool {
    true
}

/// A scoring rule as it is written: what it gives, to which score, for what, how
/// often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDefinition {
    pub name: String,
    #[serde(default = "default_score")]
    pub score: String,
    /// Points given (negative: taken).
    pub points: i64,
    pub trigger: Trigger,
    pub frequency: Frequency,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// Parses and validates a rule; the error names the field at fault.
pub fn parse_rule(value: &Value) -> Result<RuleDefinition, ScoringError> {
    let rule: RuleDefinition = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        problem(if path == "." { "$" } else { &path }, e.inner().to_string())
    })?;
    rule.validate()?;
    Ok(rule)
}

/// Parses and validates a score definition; the error names the field at fault.
pub fn parse_score(value: &Value) -> Result<ScoreDefinition, ScoringError> {
    let score: ScoreDefinition = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        problem(if path == "." { "$" } else { &path }, e.inner().to_string())
    })?;
    score.validate()?;
    Ok(score)
}

impl RuleDefinition {
    pub fn validate(&self) -> Result<(), ScoringError> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(problem("name", "must be 1 to 200 characters"));
        }
        check_score_name("score", &self.score)?;
        if self.points == 0 || self.points.abs() > MAX_POINTS {
            return Err(problem(
                "points",
                format!("must be a whole number of points other than 0, between -{MAX_POINTS} and {MAX_POINTS}"),
            ));
        }
        match &self.trigger {
            Trigger::Event { event, filters } => {
                check_name("trigger.event", event)?;
                // The filters' paths are `$.where[i]...`: rebase them on the trigger.
                check_filters("$", filters).map_err(|e| problem(&e.path.replacen('$', "trigger", 1), e.message))?;
            }
            Trigger::PageView { url } => {
                if url.is_empty() || url.len() > 2000 || url.chars().all(|c| c == '*') {
                    return Err(problem(
                        "trigger.url",
                        "must be a URL pattern of 1 to 2000 characters (`*` for any characters), not only `*`",
                    ));
                }
            }
            Trigger::EmailOpened { template } | Trigger::EmailClicked { template } => {
                if template.is_some_and(|t| t <= 0) {
                    return Err(problem("trigger.template", "must be a template id"));
                }
            }
            Trigger::FormSubmitted { form } => {
                if let Some(f) = form {
                    check_name("trigger.form", f)?;
                }
            }
            Trigger::TraitChanged { name, test } => {
                check_name("trigger.trait", name)?;
                if let Some(t) = test {
                    let filter = [PropertyFilter {
                        property: name.clone(),
                        test: t.clone(),
                    }];
                    check_filters("$", &filter).map_err(|e| problem("trigger.test", e.message))?;
                }
            }
        }
        if let Frequency::Repeat { cap: Some(cap) } = &self.frequency
            && (cap.max == 0 || cap.max > 10_000)
        {
            return Err(problem("frequency.cap.max", "must be 1 to 10000"));
        }
        Ok(())
    }
}

/// A stored rule: its id and definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoringRule {
    pub id: i64,
    #[serde(flatten)]
    pub definition: RuleDefinition,
}

/// Something a contact did that rules may score.
#[derive(Debug, Clone, Copy)]
pub enum Happening<'a> {
    /// A `track` event (a form submission is one, `Form Submitted`).
    Track {
        event: &'a str,
        properties: &'a Map<String, Value>,
    },
    /// A page view at this URL.
    Page {
        url: Option<&'a str>,
    },
    EmailOpened {
        template: Option<i64>,
    },
    EmailClicked {
        template: Option<i64>,
    },
    /// An `identify` that changed these traits (their new values).
    TraitsChanged {
        traits: &'a Map<String, Value>,
    },
}

impl<'a> Happening<'a> {
    /// What a stored Segment call is to the rules; `traits_changed`: whether its
    /// traits changed the contact's. (`None`: nothing rules read.)
    pub fn of_call(call: &'a crate::Call, traits_changed: bool) -> Option<Self> {
        use crate::CallKind;
        match call.kind {
            CallKind::Track => call.event.as_deref().map(|event| Happening::Track {
                event,
                properties: &call.properties,
            }),
            CallKind::Page => Some(Happening::Page { url: page_url(call) }),
            CallKind::Identify if traits_changed && !call.traits.is_empty() => {
                Some(Happening::TraitsChanged { traits: &call.traits })
            }
            _ => None,
        }
    }
}

/// A page call's URL: `properties.url`, else `context.page.url`.
pub fn page_url(call: &crate::Call) -> Option<&str> {
    call.properties.get("url").and_then(Value::as_str).or_else(|| {
        call.context
            .get("page")
            .and_then(|p| p.get("url"))
            .and_then(Value::as_str)
    })
}

/// Whether `text` matches a glob `pattern` (`*`: any characters, possibly none).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether a URL matches a page-view pattern (see [`Trigger::PageView`]).
pub fn url_matches(pattern: &str, url: &str) -> bool {
    if pattern.starts_with('/') {
        let path = match url.find("://") {
            Some(i) => {
                let rest = &url[i + 3..];
                rest.find('/').map_or("/", |j| &rest[j..])
            }
            None => url,
        };
        glob(pattern, path)
    } else {
        glob(pattern, url)
    }
}

impl Trigger {
    /// Whether this trigger fires on a happening at `now`.
    pub fn fires(&self, h: &Happening<'_>, now: Millis) -> bool {
        match (self, h) {
            (Trigger::Event { event, filters }, Happening::Track { event: e, properties }) => {
                event == e && filters.iter().all(|f| f.test.holds(properties.get(&f.property), now))
            }
            (Trigger::FormSubmitted { form }, Happening::Track { event, properties }) => {
                *event == crate::protocol::event_names::FORM_SUBMITTED
                    && form.as_deref().is_none_or(|f| {
                        ["form_id", "form", "form_name"]
                            .iter()
                            .any(|k| match properties.get(*k) {
                                Some(Value::String(s)) => s == f,
                                Some(Value::Number(n)) => n.to_string() == f,
                                _ => false,
                            })
                    })
            }
            (Trigger::PageView { url }, Happening::Page { url: Some(u) }) => url_matches(url, u),
            (Trigger::EmailOpened { template }, Happening::EmailOpened { template: t })
            | (Trigger::EmailClicked { template }, Happening::EmailClicked { template: t }) => {
                template.is_none() || template == t
            }
            (Trigger::TraitChanged { name, test }, Happening::TraitsChanged { traits }) => {
                traits.contains_key(name) && test.as_ref().is_none_or(|t| t.holds(traits.get(name), now))
            }
            _ => false,
        }
    }
}

/// The workspace's scores and enabled rules, indexed by what they listen to (built
/// once when they change; asked for every stored event).
#[derive(Debug, Clone, Default)]
pub struct Scoring {
    pub scores: Vec<ScoreDefinition>,
    pub rules: Vec<ScoringRule>,
    by_event: HashMap<String, Vec<usize>>,
    pages: Vec<usize>,
    opens: Vec<usize>,
    clicks: Vec<usize>,
    by_trait: HashMap<String, Vec<usize>>,
    /// Thresholds readers test each score against besides its stages (segments).
    read_thresholds: HashMap<String, Vec<f64>>,
    /// Every rule's score and frequency, disabled ones too: which counters are kept
    /// ([`Scoring::kept_counters`]).
    counting: HashMap<i64, (String, Frequency)>,
}

impl Scoring {
    pub fn new(scores: Vec<ScoreDefinition>, rules: Vec<ScoringRule>) -> Self {
        let mut out = Scoring {
            scores,
            ..Default::default()
        };
        for rule in &rules {
            out.counting.insert(
                rule.id,
                (rule.definition.score.clone(), rule.definition.frequency.clone()),
            );
        }
        for rule in rules.into_iter().filter(|r| r.definition.enabled) {
            let i = out.rules.len();
            match &rule.definition.trigger {
                Trigger::Event { event, .. } => out.by_event.entry(event.clone()).or_default().push(i),
                Trigger::FormSubmitted { .. } => out
                    .by_event
                    .entry(crate::protocol::event_names::FORM_SUBMITTED.to_string())
                    .or_default()
                    .push(i),
                Trigger::PageView { .. } => out.pages.push(i),
                Trigger::EmailOpened { .. } => out.opens.push(i),
                Trigger::EmailClicked { .. } => out.clicks.push(i),
                Trigger::TraitChanged { name, .. } => out.by_trait.entry(name.clone()).or_default().push(i),
            }
            out.rules.push(rule);
        }
        out
    }

    /// Adds thresholds segments test scores against (`(score, threshold)`), so decay
    /// materialises the score when it crosses them.
    pub fn with_read_thresholds(mut self, thresholds: impl IntoIterator<Item = (String, f64)>) -> Self {
        for (score, t) in thresholds {
            let v = self.read_thresholds.entry(score).or_default();
            if !v.contains(&t) {
                v.push(t);
            }
        }
        self
    }

    /// Whether no rule is enabled.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule listens to `track` events of this name (cheap pre-check).
    pub fn listens_to_event(&self, name: &str) -> bool {
        self.by_event.contains_key(name)
    }

    /// The rules a happening fires, in id order.
    pub fn fired(&self, h: &Happening<'_>, now: Millis) -> Vec<&ScoringRule> {
        let candidates: Vec<usize> = match h {
            Happening::Track { event, .. } => self.by_event.get(*event).cloned().unwrap_or_default(),
            Happening::Page { .. } => self.pages.clone(),
            Happening::EmailOpened { .. } => self.opens.clone(),
            Happening::EmailClicked { .. } => self.clicks.clone(),
            Happening::TraitsChanged { traits } => {
                let mut v: Vec<usize> = traits
                    .keys()
                    .filter_map(|k| self.by_trait.get(k))
                    .flatten()
                    .copied()
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        };
        let mut out: Vec<&ScoringRule> = candidates
            .into_iter()
            .map(|i| &self.rules[i])
            .filter(|r| r.definition.trigger.fires(h, now))
            .collect();
        out.sort_by_key(|r| r.id);
        out
    }

    /// A score's definition (a score nobody defined has no decay and no stages).
    pub fn definition(&self, score: &str) -> ScoreDefinition {
        self.scores
            .iter()
            .find(|s| s.name == score)
            .cloned()
            .unwrap_or_else(|| ScoreDefinition::plain(score))
    }

    /// A score's counters worth keeping at `now`: those of its rules (enabled or not)
    /// in the period the rule counts in now (`once`, today, this week). A deleted
    /// rule's, a past day's or week's, a rule's since given to another score or made
    /// uncapped are dropped: they can limit nothing any more.
    pub fn kept_counters(&self, counters: &Counters, score: &str, now: Millis) -> Vec<(i64, String, u32)> {
        counters
            .iter()
            .filter(|((rule, period), _)| match self.counting.get(rule) {
                Some((s, frequency)) => s == score && frequency.counts_in(period, now),
                None => false,
            })
            .map(|((rule, period), n)| (*rule, period.clone(), *n))
            .collect()
    }

    /// The thresholds decay must be materialised at for a score: its stages' and
    /// those segments read.
    pub fn thresholds(&self, score: &str) -> Vec<f64> {
        let mut out: Vec<f64> = self.definition(score).thresholds().collect();
        out.extend(self.read_thresholds.get(score).into_iter().flatten());
        out
    }
}

/// A contact's stored score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreState {
    /// The value at `anchor`.
    pub points: f64,
    pub anchor: Millis,
    /// The value last written to the score's trait.
    pub written: f64,
    /// The stage last recorded.
    pub stage: Option<String>,
}

/// A score's value at `t` (decayed from its anchor by the half-life).
pub fn value_at(points: f64, anchor: Millis, half_life: Option<Millis>, t: Millis) -> f64 {
    match half_life {
        Some(h) if h > 0 && t > anchor => points * (-((t - anchor) as f64) / h as f64).exp2(),
        _ => points,
    }
}

/// Rounds a score for storage and display (two decimals).
pub fn round(v: f64) -> f64 {
    let r = (v * 100.0).round() / 100.0;
    if r == 0.0 { 0.0 } else { r }
}

/// The first moment after `after` at which a decaying score (`points` at `anchor`)
/// leaves the side of a threshold it is on: `anchor + half_life · log2(points /
/// threshold)`, plus a millisecond so that the value is then strictly past it (a
/// test `≥ t` and a test `> t` have both flipped). Decay moves the value toward 0,
/// so only thresholds between 0 and the value count. `None`: no decay, or nothing to
/// cross.
pub fn next_crossing(
    points: f64,
    anchor: Millis,
    half_life: Option<Millis>,
    thresholds: &[f64],
    after: Millis,
) -> Option<Millis> {
    let h = half_life.filter(|h| *h > 0)? as f64;
    let mut best: Option<Millis> = None;
    for &t in thresholds {
        // Same sign as the value and closer to 0: decay reaches it.
        if t == 0.0 || points == 0.0 || t.signum() != points.signum() || t.abs() > points.abs() {
            continue;
        }
        let dt = h * (points / t).log2();
        let mut due = anchor + dt.floor() as Millis + 1;
        // Floating point: make sure the value is past the threshold then.
        while value_at(points, anchor, Some(h as Millis), due).abs() >= t.abs() {
            due += 1;
        }
        if due <= after {
            continue;
        }
        best = Some(best.map_or(due, |b: Millis| b.min(due)));
    }
    best
}

/// What a contact's scores, traits and counters are before a happening is scored: the
/// store reads them, the decisions here change them in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactScores {
    /// Stored score states by score name.
    pub states: BTreeMap<String, ScoreState>,
    /// The score traits' values on the contact now (by score name; 0 when absent).
    pub traits: BTreeMap<String, f64>,
    /// Counters by `(rule, period)` (see [`Frequency::counter`]).
    pub counters: Counters,
}

/// How often rules fired for a contact, by `(rule, period)` (see
/// [`Frequency::counter`]).
pub type Counters = BTreeMap<(i64, String), u32>;

impl ContactScores {
    /// A score's value at `now`: its decayed state, unless its trait was changed by
    /// something else since it was written (a journey step, an `identify`, an
    /// import): then the trait's value, taken as new points at `now`.
    pub fn current(&self, def: &ScoreDefinition, now: Millis) -> f64 {
        let trait_value = self.traits.get(&def.name).copied().unwrap_or(0.0);
        match self.states.get(&def.name) {
            Some(s) if same(s.written, trait_value) => value_at(s.points, s.anchor, def.half_life_ms(), now),
            _ => trait_value,
        }
    }

    fn recorded_stage(&self, def: &ScoreDefinition, now: Millis) -> Option<String> {
        match self.states.get(&def.name) {
            Some(s) if same(s.written, self.traits.get(&def.name).copied().unwrap_or(0.0)) => s.stage.clone(),
            _ => def.stage_of(self.current(def, now)).map(str::to_string),
        }
    }
}

/// Whether the trait still holds the value written (a JSON round trip may keep only
/// 15 significant digits: SQLite's JSON functions).
fn same(written: f64, trait_value: f64) -> bool {
    (written - trait_value).abs() <= 1e-9 * written.abs().max(1.0)
}

/// Why a score changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Rules gave or took points: `(rule id, points)`.
    Rules(Vec<(i64, i64)>),
    /// Decay took the score across a threshold.
    Decay,
}

/// A score that changed: what to store and record.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreChange {
    pub score: String,
    pub previous: f64,
    pub value: f64,
    pub reason: Reason,
    /// The stage before and after, when it changed.
    pub stage: Option<(Option<String>, Option<String>)>,
    /// The state to store (its `written` is the new trait value).
    pub state: ScoreState,
    /// When decay next crosses a threshold (the timer to set; `None`: clear it).
    pub next_due: Option<Millis>,
    /// The score's rule counters to keep after the change, `(rule, period, count)`
    /// ([`Scoring::kept_counters`]): stored with its state.
    pub counters: Vec<(i64, String, u32)>,
}

impl ScoreChange {
    /// The `Lead Score Changed` event's properties.
    pub fn score_properties(&self) -> Value {
        let (rules, reason) = match &self.reason {
            Reason::Rules(r) => (
                r.iter()
                    .map(|(id, points)| json!({"rule_id": id, "points": points}))
                    .collect::<Vec<_>>(),
                "rules",
            ),
            Reason::Decay => (Vec::new(), "decay"),
        };
        json!({
            "score": self.score,
            "previous": self.previous,
            "value": self.value,
            "rule_ids": rules.iter().map(|r| r["rule_id"].clone()).collect::<Vec<_>>(),
            "rules": rules,
            "reason": reason,
        })
    }

    /// The `Lead Stage Changed` event's properties, when the stage changed.
    pub fn stage_properties(&self) -> Option<Value> {
        self.stage
            .as_ref()
            .map(|(from, to)| json!({"score": self.score, "from": from, "to": to, "value": self.value}))
    }
}

/// The outcome of scoring one happening for one contact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scored {
    pub changes: Vec<ScoreChange>,
    /// Counters to add one to: `(rule, period)`.
    pub counted: Vec<(i64, String)>,
}

/// Scores the rules a happening fired for a contact at `now`: each rule gives its
/// points unless its counter for the period is at its limit; the points of one
/// happening are summed per score (one `Lead Score Changed` per score). Updates
/// `contact` so the next happening of the same contact sees this one.
pub fn score(scoring: &Scoring, contact: &mut ContactScores, fired: &[&ScoringRule], now: Millis) -> Scored {
    let mut out = Scored::default();
    let mut per_score: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for rule in fired {
        let d = &rule.definition;
        if let Some((period, limit)) = d.frequency.counter(now) {
            let n = contact.counters.entry((rule.id, period.clone())).or_insert(0);
            if *n >= limit {
                continue;
            }
            *n += 1;
            out.counted.push((rule.id, period));
        }
        per_score.entry(&d.score).or_default().push((rule.id, d.points));
    }
    for (name, given) in per_score {
        let def = scoring.definition(name);
        let previous = contact.current(&def, now);
        let total: i64 = given.iter().map(|(_, p)| p).sum();
        let value = previous + total as f64;
        let from = contact.recorded_stage(&def, now);
        out.changes.push(settle(
            scoring,
            contact,
            &def,
            previous,
            value,
            from,
            Reason::Rules(given),
            now,
        ));
    }
    out
}

/// Materialises a score's decay at `now` (its timer is due): the decayed value is
/// written, and the next crossing is scheduled. `None` when the contact has no state
/// for the score or the value did not change.
pub fn decay(scoring: &Scoring, contact: &mut ContactScores, score: &str, now: Millis) -> Option<ScoreChange> {
    let def = scoring.definition(score);
    let state = contact.states.get(score)?.clone();
    let previous = state.written;
    let value = contact.current(&def, now);
    let from = contact.recorded_stage(&def, now);
    if value == previous && from.as_deref() == def.stage_of(value) {
        // Nothing to write; still schedule what comes next.
        let next = next_crossing(
            state.points,
            state.anchor,
            def.half_life_ms(),
            &scoring.thresholds(score),
            now,
        );
        return next.map(|due| ScoreChange {
            score: score.to_string(),
            previous,
            value,
            reason: Reason::Decay,
            stage: None,
            state: state.clone(),
            next_due: Some(due),
            counters: scoring.kept_counters(&contact.counters, score, now),
        });
    }
    // Decay keeps the original anchor: the value follows the same curve.
    let mut change = settle(scoring, contact, &def, previous, value, from, Reason::Decay, now);
    change.state.points = state.points;
    change.state.anchor = state.anchor;
    change.next_due = next_crossing(
        state.points,
        state.anchor,
        def.half_life_ms(),
        &scoring.thresholds(score),
        now,
    );
    contact.states.insert(score.to_string(), change.state.clone());
    Some(change)
}

#[allow(clippy::too_many_arguments)]
fn settle(
    scoring: &Scoring,
    contact: &mut ContactScores,
    def: &ScoreDefinition,
    previous: f64,
    value: f64,
    from: Option<String>,
    reason: Reason,
    now: Millis,
) -> ScoreChange {
    let to = def.stage_of(value).map(str::to_string);
    let state = ScoreState {
        points: value,
        anchor: now,
        written: value,
        stage: to.clone(),
    };
    let next_due = next_crossing(value, now, def.half_life_ms(), &scoring.thresholds(&def.name), now);
    contact.states.insert(def.name.clone(), state.clone());
    contact.traits.insert(def.name.clone(), value);
    ScoreChange {
        score: def.name.clone(),
        previous,
        value,
        reason,
        stage: (from != to).then_some((from, to)),
        state,
        next_due,
        counters: scoring.kept_counters(&contact.counters, &def.name, now),
    }
}

#[cfg(test)]
mod tests;
