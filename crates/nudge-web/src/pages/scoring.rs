//! Lead scoring: the scores (half-life, stages) and the scoring rules, listed,
//! created, edited and deleted. The form ↔ definition mapping is here; what a rule or
//! score must satisfy is `nudge_core::scoring` and `nudge_app::scoring`.

use crate::WebState;
use crate::auth::{FieldErrors, Viewer};
use crate::render::{self, Chrome};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use nudge_core::access::Permission;
use nudge_core::scoring::{Frequency, Period, RuleDefinition, ScoreDefinition, Trigger};
use serde::Deserialize;
use serde_json::{Value, json};

pub struct ScoreRow {
    pub name: String,
    pub field: String,
    pub half_life: String,
    pub stages: String,
}

pub struct RuleRow {
    pub id: i64,
    pub name: String,
    pub score: String,
    pub points: String,
    pub trigger: String,
    pub frequency: String,
    pub enabled: bool,
}

/// The rule form's fields, as typed (kept when the form is shown again with errors).
#[derive(Deserialize, Default, Clone)]
pub struct RuleForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub score: String,
    #[serde(default)]
    pub points: String,
    #[serde(default)]
    pub trigger: String,
    /// The event name, URL pattern, template id, form or trait (by trigger).
    #[serde(default)]
    pub target: String,
    /// Property filters (`event`) or the value test (`trait_changed`), as JSON.
    #[serde(default)]
    pub filters: String,
    /// `once`, `repeat`, `day` or `week`.
    #[serde(default)]
    pub frequency: String,
    #[serde(default)]
    pub cap: String,
    #[serde(default)]
    pub enabled: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
pub struct ScoreForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub half_life_days: String,
    /// `cold; warm 20; hot 50`.
    #[serde(default)]
    pub stages: String,
}

pub const TRIGGERS: [&str; 6] = [
    "event",
    "page_view",
    "email_opened",
    "email_clicked",
    "form_submitted",
    "trait_changed",
];
pub const FREQUENCIES: [&str; 4] = ["once", "repeat", "day", "week"];

#[derive(Template)]
#[template(path = "scoring.html")]
struct ScoringPage {
    c: Chrome,
    scores: Vec<ScoreRow>,
    score_names: Vec<String>,
    rules: Vec<RuleRow>,
    /// The rule being edited (`None`: a new one).
    editing: Option<i64>,
    rule: RuleForm,
    score: ScoreForm,
    errors: FieldErrors,
    score_errors: FieldErrors,
}

impl ScoringPage {
    fn trigger_label(&self, kind: &str) -> String {
        self.c.t.get(&format!("scoring-trigger-{kind}"))
    }
    fn frequency_label(&self, kind: &str) -> String {
        self.c.t.get(&format!("scoring-frequency-{kind}"))
    }
}

fn stages_text(d: &ScoreDefinition) -> String {
    d.stages
        .iter()
        .map(|s| match s.from {
            Some(f) => format!("{} {f}", s.name),
            None => s.name.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn trigger_target(t: &Trigger) -> (String, String) {
    match t {
        Trigger::Event { event, filters } => (
            event.clone(),
            if filters.is_empty() {
                String::new()
            } else {
                serde_json::to_string(filters).unwrap_or_default()
            },
        ),
        Trigger::PageView { url } => (url.clone(), String::new()),
        Trigger::EmailOpened { template } | Trigger::EmailClicked { template } => {
            (template.map(|t| t.to_string()).unwrap_or_default(), String::new())
        }
        Trigger::FormSubmitted { form } => (form.clone().unwrap_or_default(), String::new()),
        Trigger::TraitChanged { name, test } => (
            name.clone(),
            test.as_ref()
                .map(|t| serde_json::to_string(t).unwrap_or_default())
                .unwrap_or_default(),
        ),
    }
}

fn kind_of(t: &Trigger) -> &'static str {
    match t {
        Trigger::Event { .. } => "event",
        Trigger::PageView { .. } => "page_view",
        Trigger::EmailOpened { .. } => "email_opened",
        Trigger::EmailClicked { .. } => "email_clicked",
        Trigger::FormSubmitted { .. } => "form_submitted",
        Trigger::TraitChanged { .. } => "trait_changed",
    }
}

impl RuleForm {
    fn of(d: &RuleDefinition) -> Self {
        let (target, filters) = trigger_target(&d.trigger);
        let (frequency, cap) = match &d.frequency {
            Frequency::Once => ("once", String::new()),
            Frequency::Repeat { cap: None } => ("repeat", String::new()),
            Frequency::Repeat { cap: Some(c) } => (
                match c.per {
                    Period::Day => "day",
                    Period::Week => "week",
                },
                c.max.to_string(),
            ),
        };
        RuleForm {
            name: d.name.clone(),
            score: d.score.clone(),
            points: d.points.to_string(),
            trigger: kind_of(&d.trigger).to_string(),
            target,
            filters,
            frequency: frequency.to_string(),
            cap,
            enabled: d.enabled.then(|| "on".to_string()),
        }
    }

    fn new_rule() -> Self {
        RuleForm {
            score: nudge_core::scoring::DEFAULT_SCORE.into(),
            points: "5".into(),
            trigger: "event".into(),
            frequency: "once".into(),
            enabled: Some("on".into()),
            ..Default::default()
        }
    }

    /// The rule's JSON; a problem of the form itself (JSON filters that do not
    /// parse, a number that is not one) names its input.
    fn definition(&self) -> Result<Value, (String, String)> {
        let target = self.target.trim();
        let filters: Option<Value> = match self.filters.trim() {
            "" => None,
            f => Some(serde_json::from_str(f).map_err(|e| ("filters".to_string(), format!("filters: {e}")))?),
        };
        let trigger = match self.trigger.as_str() {
            "event" => {
                let mut t = json!({"type": "event", "event": target});
                if let Some(f) = filters {
                    t["where"] = f;
                }
                t
            }
            "page_view" => json!({"type": "page_view", "url": target}),
            kind @ ("email_opened" | "email_clicked") => {
                let mut t = json!({"type": kind});
                if !target.is_empty() {
                    let id: i64 = target.parse().map_err(|_| {
                        (
                            "target".to_string(),
                            format!("trigger.template: {target:?} is not a template id"),
                        )
                    })?;
                    t["template"] = json!(id);
                }
                t
            }
            "form_submitted" => {
                let mut t = json!({"type": "form_submitted"});
                if !target.is_empty() {
                    t["form"] = json!(target);
                }
                t
            }
            "trait_changed" => {
                let mut t = json!({"type": "trait_changed", "trait": target});
                if let Some(f) = filters {
                    t["test"] = f;
                }
                t
            }
            other => return Err(("trigger".into(), format!("trigger: unknown kind {other:?}"))),
        };
        let points: i64 = self.points.trim().parse().map_err(|_| {
            (
                "points".to_string(),
                format!("points: {:?} is not a whole number", self.points),
            )
        })?;
        let frequency = match self.frequency.as_str() {
            "once" => json!({"type": "once"}),
            "repeat" => json!({"type": "repeat"}),
            per @ ("day" | "week") => {
                let max: u32 = self.cap.trim().parse().map_err(|_| {
                    (
                        "frequency.cap.max".to_string(),
                        format!("frequency.cap.max: {:?} is not a whole number", self.cap),
                    )
                })?;
                json!({"type": "repeat", "cap": {"max": max, "per": per}})
            }
            other => return Err(("frequency".into(), format!("frequency: unknown kind {other:?}"))),
        };
        Ok(json!({
            "name": self.name.trim(),
            "score": self.score.trim(),
            "points": points,
            "trigger": trigger,
            "frequency": frequency,
            "enabled": self.enabled.is_some(),
        }))
    }
}

fn describe_trigger(t: &crate::i18n::Tr, trigger: &Trigger) -> String {
    let (target, filters) = trigger_target(trigger);
    let kind = t.get(&format!("scoring-trigger-{}", kind_of(trigger)));
    match (target.is_empty(), filters.is_empty()) {
        (true, _) => kind,
        (false, true) => format!("{kind}: {target}"),
        (false, false) => format!("{kind}: {target} {filters}"),
    }
}

fn describe_frequency(t: &crate::i18n::Tr, f: &Frequency) -> String {
    match f {
        Frequency::Once => t.get("scoring-frequency-once"),
        Frequency::Repeat { cap: None } => t.get("scoring-frequency-repeat"),
        Frequency::Repeat { cap: Some(c) } => t.arg(
            match c.per {
                Period::Day => "scoring-cap-day",
                Period::Week => "scoring-cap-week",
            },
            "max",
            c.max,
        ),
    }
}

struct Draft {
    editing: Option<i64>,
    rule: RuleForm,
    score: ScoreForm,
    errors: FieldErrors,
    score_errors: FieldErrors,
}

async fn render_page(state: &WebState, viewer: &Viewer, d: Draft) -> Response {
    let t = &viewer.t;
    let store = &state.api.store;
    let (scores, rules) = match tokio::try_join!(store.scores(), store.scoring_rules()) {
        Ok(x) => x,
        Err(e) => return render::app_error(t, e.into()),
    };
    let failed = !d.errors.0.is_empty() || !d.score_errors.0.is_empty();
    let mut score_names: Vec<String> = scores.iter().map(|s| s.definition.name.clone()).collect();
    if !score_names.iter().any(|n| n == nudge_core::scoring::DEFAULT_SCORE) {
        score_names.insert(0, nudge_core::scoring::DEFAULT_SCORE.to_string());
    }
    let mut resp = render::page(&ScoringPage {
        c: viewer.chrome("scoring", "/scoring"),
        scores: scores
            .iter()
            .map(|s| ScoreRow {
                name: s.definition.name.clone(),
                field: nudge_core::scoring::score_trait(&s.definition.name),
                half_life: s
                    .definition
                    .half_life_days
                    .map(|h| t.arg("scoring-days", "n", t.decimal(h, 1)))
                    .unwrap_or_else(|| t.get("scoring-no-decay")),
                stages: stages_text(&s.definition),
            })
            .collect(),
        score_names,
        rules: rules
            .iter()
            .map(|r| RuleRow {
                id: r.id,
                name: r.definition.name.clone(),
                score: r.definition.score.clone(),
                points: format!("{:+}", r.definition.points),
                trigger: describe_trigger(t, &r.definition.trigger),
                frequency: describe_frequency(t, &r.definition.frequency),
                enabled: r.definition.enabled,
            })
            .collect(),
        editing: d.editing,
        rule: d.rule,
        score: d.score,
        errors: d.errors,
        score_errors: d.score_errors,
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

fn blank(editing: Option<i64>, rule: RuleForm) -> Draft {
    Draft {
        editing,
        rule,
        score: ScoreForm::default(),
        errors: FieldErrors::default(),
        score_errors: FieldErrors::default(),
    }
}

/// `GET /scoring`
pub async fn page(State(state): State<WebState>, viewer: Viewer) -> Response {
    if let Err(r) = viewer.require(Permission::Read) {
        return r;
    }
    render_page(&state, &viewer, blank(None, RuleForm::new_rule())).await
}

/// `GET /scoring/rules/{id}`: the page with the rule in the form.
pub async fn edit(State(state): State<WebState>, viewer: Viewer, Path(id): Path<i64>) -> Response {
    if let Err(r) = viewer.require(Permission::Read) {
        return r;
    }
    match state.api.app().scoring_rule(id).await {
        Ok(r) => render_page(&state, &viewer, blank(Some(id), RuleForm::of(&r.definition))).await,
        Err(e) => render::app_error(&viewer.t, e),
    }
}

async fn save(state: &WebState, viewer: &Viewer, id: Option<i64>, form: RuleForm) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let invalid = |field: String, message: String| Draft {
        errors: FieldErrors(vec![(field, message)]),
        ..blank(id, form.clone())
    };
    let json = match form.definition() {
        Ok(j) => j,
        Err((field, message)) => return render_page(state, viewer, invalid(field, message)).await,
    };
    let app = state.api.app();
    let saved = match nudge_app::scoring::parse_rule(&json, "") {
        Ok(rule) => match id {
            Some(id) => app.update_scoring_rule(id, rule).await.map(|_| ()),
            None => app.create_scoring_rule(rule).await.map(|_| ()),
        },
        Err(e) => Err(e),
    };
    match saved {
        Ok(()) => Redirect::to("/scoring").into_response(),
        Err(e) => {
            let mut errors = FieldErrors::from_app(&e);
            // Problems inside the trigger show at its target input.
            for (field, _) in &mut errors.0 {
                if field.starts_with("trigger.") && field != "trigger.type" {
                    *field = if field.contains("where") || field.contains("test") {
                        "filters".into()
                    } else {
                        "target".into()
                    };
                }
            }
            render_page(
                state,
                viewer,
                Draft {
                    errors,
                    ..blank(id, form)
                },
            )
            .await
        }
    }
}

/// `POST /scoring/rules`
pub async fn create(State(state): State<WebState>, viewer: Viewer, Form(form): Form<RuleForm>) -> Response {
    save(&state, &viewer, None, form).await
}

/// `POST /scoring/rules/{id}`
pub async fn update(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<RuleForm>,
) -> Response {
    save(&state, &viewer, Some(id), form).await
}

/// `POST /scoring/rules/{id}/delete`
pub async fn delete(State(state): State<WebState>, viewer: Viewer, Path(id): Path<i64>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    match state.api.app().delete_scoring_rule(id).await {
        Ok(()) => Redirect::to("/scoring").into_response(),
        Err(e) => {
            let d = Draft {
                errors: FieldErrors::from_app(&e),
                ..blank(None, RuleForm::new_rule())
            };
            render_page(&state, &viewer, d).await
        }
    }
}

impl ScoreForm {
    /// `cold; warm 20; hot 50` → stages.
    fn definition(&self) -> Result<Value, (String, String)> {
        let mut stages = Vec::new();
        for part in self.stages.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            match part.rsplit_once(char::is_whitespace) {
                Some((name, from)) if from.parse::<f64>().is_ok() => {
                    stages.push(json!({"name": name.trim(), "from": from.parse::<f64>().unwrap_or_default()}))
                }
                _ => stages.push(json!({"name": part})),
            }
        }
        let mut v = json!({"name": self.name.trim(), "stages": stages});
        let h = self.half_life_days.trim();
        if !h.is_empty() {
            let days: f64 = h.parse().map_err(|_| {
                (
                    "half_life_days".to_string(),
                    format!("half_life_days: {h:?} is not a number of days"),
                )
            })?;
            v["half_life_days"] = json!(days);
        }
        Ok(v)
    }
}

/// `POST /scoring/scores`: defines (or redefines) a score.
pub async fn save_score(State(state): State<WebState>, viewer: Viewer, Form(form): Form<ScoreForm>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let failed = |errors: FieldErrors| Draft {
        score_errors: errors,
        score: form.clone(),
        ..blank(None, RuleForm::new_rule())
    };
    let json = match form.definition() {
        Ok(j) => j,
        Err((field, message)) => {
            return render_page(&state, &viewer, failed(FieldErrors(vec![(field, message)]))).await;
        }
    };
    let result = match nudge_app::scoring::parse_score(&json, "") {
        Ok(score) => state.api.app().put_score(score).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/scoring").into_response(),
        Err(e) => {
            let mut errors = FieldErrors::from_app(&e);
            for (field, _) in &mut errors.0 {
                if field.starts_with("stages") {
                    *field = "stages".into();
                }
            }
            render_page(&state, &viewer, failed(errors)).await
        }
    }
}

/// `POST /scoring/scores/{name}/delete`
pub async fn delete_score(State(state): State<WebState>, viewer: Viewer, Path(name): Path<String>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    match state.api.app().delete_score(&name).await {
        Ok(()) => Redirect::to("/scoring").into_response(),
        Err(e) => {
            let d = Draft {
                score_errors: FieldErrors::from_app(&e),
                ..blank(None, RuleForm::new_rule())
            };
            render_page(&state, &viewer, d).await
        }
    }
}
