//! The campaign editor's form, pure: what a posted form describes, the definition it
//! makes (`nudge_core::campaign::CampaignDefinition` as JSON), and the form a stored
//! definition fills in.
//!
//! The inputs are named by the definition's paths (`audience.segments`,
//! `variants[1].template`, `test.share`, `quiet_hours.start`), so a problem the
//! application layer reports at `definition.variants[1].template` is shown next to
//! the input of that name ([`place`]). What only the form can get wrong — a number
//! that is not one — is reported here, at the same names, before the application
//! layer sees the definition; every rule (ranges, names, templates, channels) is the
//! application layer's.

use crate::auth::FieldErrors;
use crate::i18n::Tr;
use crate::pages::channels::number;
use nudge_app::FieldProblem;
use nudge_core::Millis;
use nudge_core::campaign::CampaignDefinition;
use nudge_core::campaign::definition::MAX_VARIANTS;
use nudge_core::campaign::stats::Rule;
use nudge_core::journey::NameOrId;
use serde_json::{Map, Value, json};

const MINUTE: Millis = 60_000;
const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;

/// The units a length of time is typed in.
pub const UNITS: [&str; 3] = ["minutes", "hours", "days"];
/// What an A/B test compares (`WinnerMetric`'s names).
pub const METRICS: [&str; 4] = ["open_rate", "click_rate", "conversion_rate", "revenue_per_recipient"];
/// How a test's winner is recognised (`Rule`'s types).
pub const RULES: [&str; 2] = ["probability_to_be_best", "significance_test"];
/// Who wins when the rule finds no winner (`Fallback`'s names).
pub const FALLBACKS: [&str; 2] = ["control", "best_observed"];

/// One variant's inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariantForm {
    pub name: String,
    /// A template id (as the select posts it), or a name for a definition that names
    /// its template by name and no template has it now.
    pub template: String,
    /// Empty: no delay.
    pub delay: String,
    pub delay_unit: String,
}

/// The editor's inputs, as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignForm {
    pub name: String,
    pub description: String,
    /// Audience segments, by id.
    pub segments: Vec<i64>,
    pub exclude: Vec<i64>,
    /// Empty: the first variant's template's channel.
    pub channel: String,
    pub variants: Vec<VariantForm>,
    /// An A/B test is configured (the test's inputs are kept either way).
    pub test: bool,
    pub share: String,
    pub metric: String,
    pub duration: String,
    pub duration_unit: String,
    /// One of [`RULES`].
    pub rule: String,
    pub threshold: String,
    pub alpha: String,
    pub fallback: String,
    pub holdout: String,
    /// Empty: no limit.
    pub throttle: String,
    /// Empty: each message when it is due; else hours within which each contact's
    /// best time is chosen (docs/send-time.md).
    pub best_time: String,
    /// Both empty: no quiet hours.
    pub quiet_start: String,
    pub quiet_end: String,
    /// Empty: the default (1 day).
    pub cap_defer: String,
    pub cap_defer_unit: String,
}

/// The `n`-th variant's default name: A, B, C…
fn variant_name(n: usize) -> String {
    char::from(b'A' + (n % 26) as u8).to_string()
}

/// A length of time as the form shows it: a whole number of the largest unit that
/// divides it. (The form has no unit below a minute: a stored length with seconds,
/// which only the API can write, is shown rounded to minutes.)
pub fn duration_fields(ms: Millis) -> (String, String) {
    let (n, unit) = if ms != 0 && ms % DAY == 0 {
        (ms / DAY, "days")
    } else if ms != 0 && ms % HOUR == 0 {
        (ms / HOUR, "hours")
    } else {
        ((ms + MINUTE / 2).div_euclid(MINUTE), "minutes")
    };
    (n.to_string(), unit.to_owned())
}

impl CampaignForm {
    /// A new campaign: one variant, no test (its inputs at their defaults).
    pub fn blank() -> Self {
        CampaignForm {
            name: String::new(),
            description: String::new(),
            segments: Vec::new(),
            exclude: Vec::new(),
            channel: String::new(),
            variants: vec![VariantForm {
                name: variant_name(0),
                delay_unit: "hours".into(),
                ..Default::default()
            }],
            test: false,
            share: "20".into(),
            metric: "click_rate".into(),
            duration: "4".into(),
            duration_unit: "hours".into(),
            rule: RULES[0].into(),
            threshold: "0.95".into(),
            alpha: "0.05".into(),
            fallback: FALLBACKS[0].into(),
            holdout: "0".into(),
            throttle: String::new(),
            best_time: String::new(),
            quiet_start: String::new(),
            quiet_end: String::new(),
            cap_defer: String::new(),
            cap_defer_unit: "days".into(),
        }
    }

    /// The form of a stored campaign. A template named by name is shown by the id of
    /// the template with that name now (`templates`: id and name of each).
    pub fn of(name: &str, description: &str, def: &CampaignDefinition, templates: &[(i64, String)]) -> Self {
        let mut f = CampaignForm::blank();
        f.name = name.to_owned();
        f.description = description.to_owned();
        f.segments = def.audience.segments.clone();
        f.exclude = def.audience.exclude.clone();
        f.channel = def.channel.clone().unwrap_or_default();
        f.variants = def
            .variants
            .iter()
            .map(|v| {
                let (delay, delay_unit) = match &v.delay {
                    Some(d) => duration_fields(d.as_millis()),
                    None => (String::new(), "hours".into()),
                };
                VariantForm {
                    name: v.name.clone(),
                    template: match &v.template {
                        NameOrId::Id(id) => id.to_string(),
                        NameOrId::Name(n) => templates
                            .iter()
                            .find(|(_, name)| name == n)
                            .map_or_else(|| n.clone(), |(id, _)| id.to_string()),
                    },
                    delay,
                    delay_unit,
                }
            })
            .collect();
        if let Some(t) = &def.test {
            f.test = true;
            f.share = t.share.to_string();
            f.metric = json_name(&t.metric);
            (f.duration, f.duration_unit) = duration_fields(t.duration.as_millis());
            match t.rule {
                Rule::ProbabilityToBeBest { threshold } => {
                    f.rule = RULES[0].into();
                    f.threshold = threshold.to_string();
                }
                Rule::SignificanceTest { alpha } => {
                    f.rule = RULES[1].into();
                    f.alpha = alpha.to_string();
                }
            }
            f.fallback = json_name(&t.fallback);
        }
        f.holdout = def.holdout.to_string();
        f.throttle = def.throttle_per_hour.map(|n| n.to_string()).unwrap_or_default();
        f.best_time = def.best_time.map(|b| b.within_hours.to_string()).unwrap_or_default();
        if let Some(q) = &def.quiet_hours {
            f.quiet_start = q.start.clone();
            f.quiet_end = q.end.clone();
        }
        if let Some(d) = &def.cap_defer_limit {
            (f.cap_defer, f.cap_defer_unit) = duration_fields(d.as_millis());
        }
        f
    }

    /// The form a browser posted, and the action its button asked for (`save`,
    /// `refresh`, `add_variant`, `remove_variant:{i}`, `preview:{i}`).
    pub fn from_fields(fields: &[(String, String)]) -> (Self, String) {
        let get = |k: &str| {
            fields
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let ids = |k: &str| -> Vec<i64> {
            let mut ids: Vec<i64> = fields
                .iter()
                .filter(|(n, _)| n == k)
                .filter_map(|(_, v)| number(v)?.parse().ok())
                .collect();
            ids.dedup();
            ids
        };
        let mut indexes: Vec<usize> = fields
            .iter()
            .filter_map(|(k, _)| k.strip_prefix("variants[")?.split_once(']')?.0.parse().ok())
            .filter(|i| *i < 64)
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        let variants = indexes
            .into_iter()
            .map(|i| VariantForm {
                name: get(&format!("variants[{i}].name")),
                template: get(&format!("variants[{i}].template")),
                delay: get(&format!("variants[{i}].delay")),
                delay_unit: get(&format!("variants[{i}].delay_unit")),
            })
            .collect();
        let form = CampaignForm {
            name: get("name"),
            description: get("description"),
            segments: ids("audience.segments"),
            exclude: ids("audience.exclude"),
            channel: get("channel"),
            variants,
            test: matches!(get("test").as_str(), "on" | "true" | "1"),
            share: get("test.share"),
            metric: get("test.metric"),
            duration: get("test.duration"),
            duration_unit: get("test.duration_unit"),
            rule: get("test.rule"),
            threshold: get("test.rule.threshold"),
            alpha: get("test.rule.alpha"),
            fallback: get("test.fallback"),
            holdout: get("holdout"),
            throttle: get("throttle_per_hour"),
            best_time: get("best_time.within_hours"),
            quiet_start: get("quiet_hours.start"),
            quiet_end: get("quiet_hours.end"),
            cap_defer: get("cap_defer_limit"),
            cap_defer_unit: get("cap_defer_limit_unit"),
        };
        (form, get("action"))
    }

    /// Adds a variant (up to the most a campaign may have) or removes one (never the
    /// last); other actions change nothing here.
    pub fn apply(&mut self, action: &str) {
        if action == "add_variant" && self.variants.len() < MAX_VARIANTS {
            let mut n = self.variants.len();
            while self.variants.iter().any(|v| v.name == variant_name(n)) && n < 26 {
                n += 1;
            }
            self.variants.push(VariantForm {
                name: variant_name(n),
                delay_unit: "hours".into(),
                ..Default::default()
            });
        } else if let Some(i) = action
            .strip_prefix("remove_variant:")
            .and_then(|i| i.parse::<usize>().ok())
            && i < self.variants.len()
            && self.variants.len() > 1
        {
            self.variants.remove(i);
        }
    }

    /// The definition the form describes, as JSON for the application layer to check;
    /// or what the form itself cannot read (a number that is not one), by input name.
    pub fn definition(&self, t: &Tr) -> Result<Value, FieldErrors> {
        let mut r = Reader { t, errors: Vec::new() };
        let mut def = Map::new();
        let mut audience = Map::new();
        audience.insert("segments".into(), json!(self.segments));
        if !self.exclude.is_empty() {
            audience.insert("exclude".into(), json!(self.exclude));
        }
        def.insert("audience".into(), Value::Object(audience));
        if !self.channel.trim().is_empty() {
            def.insert("channel".into(), json!(self.channel.trim()));
        }
        let mut variants = Vec::with_capacity(self.variants.len());
        for (i, v) in self.variants.iter().enumerate() {
            let mut o = Map::new();
            o.insert("name".into(), json!(v.name.trim()));
            let template = match number(&v.template).and_then(|n| n.parse::<i64>().ok()) {
                Some(id) => json!(id),
                None => json!(v.template.trim()),
            };
            o.insert("template".into(), template);
            if let Some(d) = r.duration(&format!("variants[{i}].delay"), &v.delay, &v.delay_unit, false) {
                o.insert("delay".into(), d);
            }
            variants.push(Value::Object(o));
        }
        def.insert("variants".into(), Value::Array(variants));
        if self.test {
            let mut test = Map::new();
            if let Some(n) = r.whole("test.share", &self.share, 0, u8::MAX.into(), true) {
                test.insert("share".into(), json!(n));
            }
            test.insert("metric".into(), json!(self.metric));
            if let Some(d) = r.duration("test.duration", &self.duration, &self.duration_unit, true) {
                test.insert("duration".into(), d);
            }
            let rule = if self.rule == RULES[1] {
                r.decimal("test.rule", &self.alpha)
                    .map(|alpha| json!({"type": RULES[1], "alpha": alpha}))
            } else {
                r.decimal("test.rule", &self.threshold)
                    .map(|threshold| json!({"type": RULES[0], "threshold": threshold}))
            };
            if let Some(rule) = rule {
                test.insert("rule".into(), rule);
            }
            test.insert("fallback".into(), json!(self.fallback));
            def.insert("test".into(), Value::Object(test));
        }
        if let Some(n) = r.whole("holdout", &self.holdout, 0, u8::MAX.into(), false) {
            def.insert("holdout".into(), json!(n));
        }
        if let Some(n) = r.whole("throttle_per_hour", &self.throttle, 0, u32::MAX.into(), false) {
            def.insert("throttle_per_hour".into(), json!(n));
        }
        if let Some(n) = r.whole("best_time.within_hours", &self.best_time, 0, u32::MAX.into(), false) {
            def.insert("best_time".into(), json!({"within_hours": n}));
        }
        let (start, end) = (number(&self.quiet_start), number(&self.quiet_end));
        if start.is_some() || end.is_some() {
            def.insert(
                "quiet_hours".into(),
                json!({"start": start.unwrap_or_default(), "end": end.unwrap_or_default()}),
            );
        }
        if let Some(d) = r.duration("cap_defer_limit", &self.cap_defer, &self.cap_defer_unit, false) {
            def.insert("cap_defer_limit".into(), d);
        }
        if r.errors.is_empty() {
            Ok(Value::Object(def))
        } else {
            Err(FieldErrors(r.errors))
        }
    }

    /// The names of the inputs the form shows, where problems can be placed.
    pub fn fields(&self) -> Vec<String> {
        let mut out: Vec<String> = [
            "name",
            "description",
            "audience.segments",
            "audience.exclude",
            "channel",
            "variants",
            "holdout",
            "throttle_per_hour",
            "best_time",
            "best_time.within_hours",
            "quiet_hours",
            "quiet_hours.start",
            "quiet_hours.end",
            "cap_defer_limit",
        ]
        .map(String::from)
        .to_vec();
        for i in 0..self.variants.len() {
            for f in ["name", "template", "delay"] {
                out.push(format!("variants[{i}].{f}"));
            }
        }
        if self.test {
            for f in [
                "test",
                "test.share",
                "test.metric",
                "test.duration",
                "test.rule",
                "test.fallback",
            ] {
                out.push(f.into());
            }
        }
        out
    }
}

/// A value's name as serde writes it (`click_rate`).
fn json_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Reads the form's numbers, collecting what cannot be read by input name.
struct Reader<'a> {
    t: &'a Tr,
    errors: Vec<(String, String)>,
}

impl Reader<'_> {
    fn fail(&mut self, field: &str, message: &str) {
        self.errors.push((field.to_owned(), self.t.get(message)));
    }

    /// A whole number in `min..=max` (the range its type holds; the rules are the
    /// application layer's), `None` when empty (an error when `required`).
    fn whole(&mut self, field: &str, raw: &str, min: i64, max: i64, required: bool) -> Option<i64> {
        let Some(s) = number(raw) else {
            if required {
                self.fail(field, "campaign-error-required");
            }
            return None;
        };
        match s.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(_) => {
                self.fail(field, "campaign-error-out-of-range");
                None
            }
            Err(_) => {
                self.fail(field, "campaign-error-whole-number");
                None
            }
        }
    }

    /// A length of time: a whole number of `unit` (one of [`UNITS`]).
    fn duration(&mut self, field: &str, raw: &str, unit: &str, required: bool) -> Option<Value> {
        let n = self.whole(field, raw, -(30 * 366), 100 * 366 * 24 * 60, required)?;
        let unit = UNITS.into_iter().find(|u| *u == unit).unwrap_or("hours");
        Some(json!({ unit: n }))
    }

    /// A decimal number (`0.95`; `۰٫۹۵` too).
    fn decimal(&mut self, field: &str, raw: &str) -> Option<f64> {
        let Some(s) = number(raw) else {
            self.fail(field, "campaign-error-required");
            return None;
        };
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() => Some(x),
            _ => {
                self.fail(field, "campaign-error-decimal");
                None
            }
        }
    }
}

/// Problems of the application layer at the inputs they name: `definition.` is
/// dropped, a segment's index too (`audience.segments[2]` is the audience's list);
/// a problem naming no input of `form` is shown for the whole form.
pub fn place(form: &CampaignForm, problems: &[FieldProblem]) -> FieldErrors {
    let known = form.fields();
    FieldErrors(
        problems
            .iter()
            .map(|p| {
                let mut field = p
                    .field
                    .strip_prefix("definition.")
                    .unwrap_or(if p.field == "definition" { "" } else { &p.field })
                    .to_owned();
                for list in ["audience.segments", "audience.exclude"] {
                    if field.starts_with(&format!("{list}[")) {
                        field = list.to_owned();
                    }
                }
                if !known.contains(&field) {
                    field.clear();
                }
                (field, p.message.clone())
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{ArabicCalendar, Lang};
    use nudge_core::campaign::parse_campaign;

    fn tr() -> Tr {
        Tr::new(Lang::En, jiff::tz::TimeZone::UTC, ArabicCalendar::Gregorian)
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_posted_form_makes_a_definition() {
        let (f, action) = CampaignForm::from_fields(&fields(&[
            ("name", "Spring"),
            ("audience.segments", "4"),
            ("audience.segments", "۷"),
            ("audience.exclude", "9"),
            ("variants[1].name", "Long"),
            ("variants[1].template", "8"),
            ("variants[1].delay", "2"),
            ("variants[1].delay_unit", "hours"),
            ("variants[0].name", "Short "),
            ("variants[0].template", "spring-a"),
            ("test", "on"),
            ("test.share", "20"),
            ("test.metric", "click_rate"),
            ("test.duration", "4"),
            ("test.duration_unit", "hours"),
            ("test.rule", "significance_test"),
            ("test.rule.threshold", "0.95"),
            ("test.rule.alpha", "۰٫۰۱"),
            ("test.fallback", "best_observed"),
            ("holdout", "5"),
            ("throttle_per_hour", "50000"),
            ("best_time.within_hours", "۱۲"),
            ("quiet_hours.start", "21:00"),
            ("quiet_hours.end", "08:00"),
            ("cap_defer_limit", "2"),
            ("cap_defer_limit_unit", "days"),
            ("action", "save"),
        ]));
        assert_eq!(action, "save");
        let def = f.definition(&tr()).unwrap();
        assert_eq!(
            def,
            json!({
                "audience": {"segments": [4, 7], "exclude": [9]},
                "variants": [
                    {"name": "Short", "template": "spring-a"},
                    {"name": "Long", "template": 8, "delay": {"hours": 2}}
                ],
                "test": {"share": 20, "metric": "click_rate", "duration": {"hours": 4},
                         "rule": {"type": "significance_test", "alpha": 0.01}, "fallback": "best_observed"},
                "holdout": 5,
                "throttle_per_hour": 50000,
                "best_time": {"within_hours": 12},
                "quiet_hours": {"start": "21:00", "end": "08:00"},
                "cap_defer_limit": {"days": 2}
            })
        );
        parse_campaign(&def).unwrap();
    }

    #[test]
    fn numbers_the_form_cannot_read_are_named_by_their_input() {
        let mut f = CampaignForm::blank();
        f.test = true;
        f.share = "half".into();
        f.holdout = "300".into();
        f.variants[0].delay = "1.5".into();
        f.threshold = String::new();
        let errors = f.definition(&tr()).unwrap_err();
        let named: Vec<&str> = errors.0.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(named, ["variants[0].delay", "test.share", "test.rule", "holdout"]);
        assert!(errors.0.iter().all(|(_, m)| !m.starts_with("campaign-")), "translated");
    }

    #[test]
    fn a_stored_definition_fills_the_form_and_reads_back_the_same() {
        let def = parse_campaign(&json!({
            "audience": {"segments": [1, 2], "exclude": [3]},
            "channel": "email",
            "variants": [
                {"name": "A", "template": 5},
                {"name": "B", "template": "Newsletter", "delay": 5400000},
            ],
            "test": {"share": 50, "metric": "open_rate", "duration": {"days": 1},
                     "rule": {"type": "probability_to_be_best", "threshold": 0.9}},
            "holdout": 10,
            "best_time": {"within_hours": 24},
            "quiet_hours": {"start": "22:00", "end": "07:30"},
            "cap_defer_limit": 7200000
        }))
        .unwrap();
        let f = CampaignForm::of("N", "", &def, &[(6, "Newsletter".into())]);
        assert_eq!(f.variants[1].template, "6", "a name is shown by its template's id");
        assert_eq!(
            (f.variants[1].delay.as_str(), f.variants[1].delay_unit.as_str()),
            ("90", "minutes")
        );
        assert_eq!((f.cap_defer.as_str(), f.cap_defer_unit.as_str()), ("2", "hours"));
        let back = parse_campaign(&f.definition(&tr()).unwrap()).unwrap();
        assert_eq!(back.audience, def.audience);
        assert_eq!(back.channel, def.channel);
        assert_eq!(back.variants[1].template, NameOrId::Id(6));
        assert_eq!(back.delay_ms(1), def.delay_ms(1));
        assert_eq!(back.test.as_ref().unwrap().rule, def.test.as_ref().unwrap().rule);
        assert_eq!(back.cap_defer_limit_ms(), def.cap_defer_limit_ms());
        assert_eq!((back.holdout, back.quiet_hours), (def.holdout, def.quiet_hours));
        assert_eq!(f.best_time, "24");
        assert_eq!(back.best_time, def.best_time, "an edit in the form keeps the best time");
    }

    #[test]
    fn variants_are_added_up_to_eight_and_never_all_removed() {
        let mut f = CampaignForm::blank();
        for _ in 0..10 {
            f.apply("add_variant");
        }
        assert_eq!(f.variants.len(), MAX_VARIANTS);
        assert_eq!(f.variants[1].name, "B");
        for _ in 0..10 {
            f.apply("remove_variant:0");
        }
        assert_eq!(f.variants.len(), 1);
        assert_eq!(f.variants[0].name, "H");
        f.apply("remove_variant:9");
        assert_eq!(f.variants.len(), 1);
    }

    #[test]
    fn problems_are_placed_at_the_inputs_they_name() {
        let mut f = CampaignForm::blank();
        f.test = true;
        f.apply("add_variant");
        let p = |field: &str| FieldProblem {
            field: field.into(),
            message: "m".into(),
        };
        let placed = place(
            &f,
            &[
                p("definition.variants[1].template"),
                p("definition.test.share"),
                p("definition.audience.segments[0]"),
                p("definition.audience.exclude[1]"),
                p("definition.colour"),
                p("definition"),
                p("name"),
            ],
        );
        let fields: Vec<&str> = placed.0.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "variants[1].template",
                "test.share",
                "audience.segments",
                "audience.exclude",
                "",
                "",
                "name"
            ]
        );
    }

    #[test]
    fn lengths_show_in_their_largest_whole_unit() {
        assert_eq!(duration_fields(2 * DAY), ("2".to_string(), "days".to_string()));
        assert_eq!(duration_fields(36 * HOUR), ("36".to_string(), "hours".to_string()));
        assert_eq!(duration_fields(90 * MINUTE), ("90".to_string(), "minutes".to_string()));
        assert_eq!(duration_fields(0), ("0".to_string(), "minutes".to_string()));
    }
}
