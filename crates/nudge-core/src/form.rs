//! Forms and landing pages, the pure part: what a form definition must satisfy
//! (every problem with its path), what a submission's values become (normalised
//! traits, consents, the `Form Submitted` event's properties, or every problem with
//! the field it is about), which contact a submission belongs to, the spam rules
//! (honeypot, minimum fill time, the render stamp's age) and the landing page's safe
//! Markdown.
//!
//! No I/O, no clock: the caller passes the time, the stored contacts and the verified
//! render time in.

use crate::contact::{Known, Resolution, Subscription, check_subscription_key, normalize_email, normalize_phone};
use crate::{Millis, resolve};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The input name of the honeypot: hidden from people, filled by bots.
pub const HONEYPOT: &str = "_nudge_hp";
/// The input name of the signed render stamp ([`FormRender`]).
pub const STAMP: &str = "_nudge_t";
/// The input name of the browser's anonymous id (analytics.js's `ajs_anonymous_id`).
pub const ANONYMOUS_ID: &str = "_nudge_anonymous_id";
/// The input name of a proof-of-work nonce.
pub const POW_NONCE: &str = "_nudge_pow";
/// The prefix of a consent checkbox's input name: `consent:email:newsletter`.
pub const CONSENT_PREFIX: &str = "consent:";

/// The longest a submission's body may be.
pub const MAX_SUBMISSION_BYTES: usize = 32 * 1024;
/// The longest a text value may be (characters).
pub const MAX_TEXT: usize = 1_000;
/// How long a rendered form may be submitted.
pub const STAMP_MAX_AGE_MS: Millis = 24 * 60 * 60 * 1000;
/// The most fields a form may have.
pub const MAX_FIELDS: usize = 50;
/// The locales a landing page may be in (the web UI's).
pub const LOCALES: &[&str] = &["en", "fa", "ar", "he"];

/// What kind of input a field is, and so how its value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    Email,
    Phone,
    Number,
    Date,
    Select,
    Checkbox,
    /// Not shown; filled from the page URL's query (`query`) or a fixed `value`.
    Hidden,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Email => "email",
            FieldKind::Phone => "phone",
            FieldKind::Number => "number",
            FieldKind::Date => "date",
            FieldKind::Select => "select",
            FieldKind::Checkbox => "checkbox",
            FieldKind::Hidden => "hidden",
        }
    }
}

/// One input of a form and the trait it sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// The input's name: 1–64 characters of a-z, 0-9, `_`.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    /// What people see next to the input (not used for hidden fields).
    #[serde(default)]
    pub label: String,
    /// The trait the value is stored in; the field's name when absent.
    #[serde(default, rename = "trait", skip_serializing_if = "Option::is_none")]
    pub trait_name: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// The choices of a `select`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// A hidden field's value from this query parameter of the page's URL (`utm_source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// A hidden field's fixed value (when the query has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Field {
    /// The trait this field's value is stored in.
    pub fn trait_key(&self) -> &str {
        self.trait_name.as_deref().unwrap_or(&self.name)
    }
}

/// A consent checkbox: checked, it subscribes the contact to `subscription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// `email`, `sms`, `push` or a topic such as `email:newsletter`.
    pub subscription: String,
    pub label: String,
    /// The form cannot be sent without it.
    #[serde(default)]
    pub required: bool,
}

/// What the visitor sees once the submission is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum AfterSubmit {
    /// A thank-you message (plain text).
    Message(String),
    /// A redirect to an `http(s)` URL.
    Redirect(String),
}

impl Default for AfterSubmit {
    fn default() -> Self {
        AfterSubmit::Message(String::new())
    }
}

/// The hosted landing page at `/f/{slug}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandingPage {
    #[serde(default)]
    pub title: String,
    /// Markdown (a safe subset, see [`markdown`]).
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// `en`, `fa`, `ar` or `he`; the page is right-to-left for the last three.
    #[serde(default = "default_locale")]
    pub locale: String,
}

fn default_locale() -> String {
    "en".into()
}

impl Default for LandingPage {
    fn default() -> Self {
        Self {
            title: String::new(),
            text: String::new(),
            image_url: None,
            locale: default_locale(),
        }
    }
}

/// The spam rules of a form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpamRules {
    /// A submission sooner than this after the form was rendered is refused.
    #[serde(default = "default_min_fill")]
    pub min_fill_ms: i64,
    /// Leading zero bits a proof of work must have (0: none asked).
    #[serde(default)]
    pub proof_of_work: u8,
}

fn default_min_fill() -> i64 {
    2_000
}

impl Default for SpamRules {
    fn default() -> Self {
        Self {
            min_fill_ms: default_min_fill(),
            proof_of_work: 0,
        }
    }
}

/// Double opt-in: consents become `pending` and this template (which must hold the
/// `confirm_url`) is sent; the contact's click confirms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoubleOptIn {
    pub confirm_template: String,
}

/// Everything a form is, besides its name and slug.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormDefinition {
    pub fields: Vec<Field>,
    #[serde(default)]
    pub consents: Vec<Consent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub double_opt_in: Option<DoubleOptIn>,
    #[serde(default)]
    pub after_submit: AfterSubmit,
    /// Web origins whose pages may post the form from the browser (`https://shop.example`,
    /// `*` for any). The hosted page's own origin always may.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub page: LandingPage,
    #[serde(default)]
    pub spam: SpamRules,
}

/// A problem with a definition or a submission, at a path (`fields[2].options`) or
/// an input name (`email`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        message: message.into(),
    }
}

fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A slug is 1–64 characters of a-z, 0-9 and `-`, not starting or ending with `-`.
pub fn check_slug(slug: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "slug {slug:?} must be 1 to 64 characters of a-z, 0-9 and '-', not starting or ending with '-'"
        ))
    }
}

/// A form's name: 1–200 characters, not blank.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    if name.chars().count() > 200 {
        return Err("name must be at most 200 characters".into());
    }
    Ok(())
}

/// The web origin (`scheme://host[:port]`, lower-cased, default ports dropped) of an
/// allowed-origin entry, or why it is not one. `*` stays `*`.
pub fn normalise_origin(s: &str) -> Result<String, String> {
    let t = s.trim().trim_end_matches('/').to_ascii_lowercase();
    if t == "*" {
        return Ok(t);
    }
    let (scheme, rest) = t
        .split_once("://")
        .ok_or_else(|| format!("{s:?} is not an origin like https://shop.example"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("{s:?}: an origin is http:// or https://"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!("{s:?} is not an origin like https://shop.example (no path)"));
    }
    let rest = match (scheme, rest.rsplit_once(':')) {
        ("http", Some((host, "80"))) | ("https", Some((host, "443"))) => host.to_string(),
        _ => rest.to_string(),
    };
    Ok(format!("{scheme}://{rest}"))
}

/// Whether a page at `origin` may post a form allowing `allowed`.
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let Ok(origin) = normalise_origin(origin) else {
        return false;
    };
    allowed.iter().any(|a| a == "*" || *a == origin)
}

fn is_http_url(s: &str) -> bool {
    let l = s.trim().to_ascii_lowercase();
    (l.starts_with("https://") || l.starts_with("http://")) && l.len() > 8 && !s.contains(char::is_whitespace)
}

/// Every problem with a definition, with its path; empty when it is fine. Origins
/// are normalised in place.
pub fn validate(def: &mut FormDefinition) -> Vec<Problem> {
    let mut out = Vec::new();
    if def.fields.is_empty() {
        out.push(problem("fields", "a form needs at least an email field"));
    }
    if def.fields.len() > MAX_FIELDS {
        out.push(problem("fields", format!("a form has at most {MAX_FIELDS} fields")));
    }
    let mut names = std::collections::BTreeSet::new();
    let mut traits = std::collections::BTreeSet::new();
    let mut emails = 0;
    for (i, f) in def.fields.iter().enumerate() {
        let at = |k: &str| format!("fields[{i}].{k}");
        if !is_name(&f.name) {
            out.push(problem(
                at("name"),
                format!("{:?} must be 1 to 64 characters of a-z, 0-9 and '_'", f.name),
            ));
        } else if !names.insert(f.name.clone()) {
            out.push(problem(at("name"), format!("the name {:?} is used twice", f.name)));
        }
        if let Some(t) = &f.trait_name
            && !is_name(t)
        {
            out.push(problem(
                at("trait"),
                format!("{t:?} must be 1 to 64 characters of a-z, 0-9 and '_'"),
            ));
        }
        if f.kind == FieldKind::Email {
            emails += 1;
            if f.trait_key() != "email" {
                out.push(problem(at("trait"), "the email field sets the trait \"email\""));
            }
        } else if f.trait_key() == "email" {
            out.push(problem(at("trait"), "only the email field may set the trait \"email\""));
        } else if !traits.insert(f.trait_key().to_string()) {
            out.push(problem(
                at("trait"),
                format!("the trait {:?} is set twice", f.trait_key()),
            ));
        }
        if f.kind != FieldKind::Hidden && f.label.trim().is_empty() {
            out.push(problem(at("label"), "a visible field needs a label"));
        }
        if f.label.chars().count() > 500 {
            out.push(problem(at("label"), "a label is at most 500 characters"));
        }
        match f.kind {
            FieldKind::Select => {
                if f.options.is_empty() {
                    out.push(problem(at("options"), "a select needs at least one option"));
                }
                if f.options.iter().any(|o| o.trim().is_empty() || o.chars().count() > 200) {
                    out.push(problem(at("options"), "an option is 1 to 200 characters"));
                }
            }
            _ if !f.options.is_empty() => out.push(problem(at("options"), "only a select has options")),
            _ => {}
        }
        if f.kind != FieldKind::Hidden && (f.query.is_some() || f.value.is_some()) {
            out.push(problem(
                at("query"),
                "only a hidden field is filled from the URL or a value",
            ));
        }
        if let Some(q) = &f.query
            && (q.is_empty() || q.len() > 64)
        {
            out.push(problem(at("query"), "a query parameter's name is 1 to 64 characters"));
        }
        if f.kind == FieldKind::Hidden && f.required {
            out.push(problem(at("required"), "a hidden field cannot be required"));
        }
    }
    match emails {
        0 if !def.fields.is_empty() => out.push(problem(
            "fields",
            "a form needs an email field: it says who submitted it",
        )),
        0 | 1 => {}
        _ => out.push(problem("fields", "a form has one email field")),
    }
    if let Some(i) = def
        .fields
        .iter()
        .position(|f| f.kind == FieldKind::Email && !f.required)
    {
        out.push(problem(format!("fields[{i}].required"), "the email field is required"));
    }
    let mut keys = std::collections::BTreeSet::new();
    for (i, c) in def.consents.iter().enumerate() {
        if let Err(e) = check_subscription_key(&c.subscription) {
            out.push(problem(format!("consents[{i}].subscription"), e));
        } else if !keys.insert(c.subscription.clone()) {
            out.push(problem(
                format!("consents[{i}].subscription"),
                format!("{:?} is asked twice", c.subscription),
            ));
        }
        if c.label.trim().is_empty() {
            out.push(problem(format!("consents[{i}].label"), "a consent needs a label"));
        }
    }
    if let Some(d) = &def.double_opt_in {
        if d.confirm_template.trim().is_empty() {
            out.push(problem(
                "double_opt_in.confirm_template",
                "name the template that sends the confirmation link",
            ));
        }
        if def.consents.is_empty() {
            out.push(problem("double_opt_in", "double opt-in confirms consents: add one"));
        }
    }
    match &def.after_submit {
        AfterSubmit::Redirect(u) if !is_http_url(u) => {
            out.push(problem("after_submit.redirect", format!("{u:?} is not an http(s) URL")))
        }
        AfterSubmit::Message(m) if m.chars().count() > 2_000 => {
            out.push(problem("after_submit.message", "a message is at most 2,000 characters"))
        }
        _ => {}
    }
    for (i, o) in def.allowed_origins.iter_mut().enumerate() {
        match normalise_origin(o) {
            Ok(n) => *o = n,
            Err(e) => out.push(problem(format!("allowed_origins[{i}]"), e)),
        }
    }
    if def.page.title.chars().count() > 200 {
        out.push(problem("page.title", "a title is at most 200 characters"));
    }
    if def.page.text.len() > 20_000 {
        out.push(problem("page.text", "the text is at most 20,000 bytes"));
    }
    if let Some(u) = &def.page.image_url
        && !is_http_url(u)
    {
        out.push(problem("page.image_url", format!("{u:?} is not an http(s) URL")));
    }
    if !LOCALES.contains(&def.page.locale.as_str()) {
        out.push(problem(
            "page.locale",
            format!("{:?}: one of {}", def.page.locale, LOCALES.join(", ")),
        ));
    }
    if !(0..=60_000).contains(&def.spam.min_fill_ms) {
        out.push(problem("spam.min_fill_ms", "between 0 and 60000 milliseconds"));
    }
    if def.spam.proof_of_work > 24 {
        out.push(problem("spam.proof_of_work", "at most 24 bits"));
    }
    out
}

/// Reads a definition from JSON: shape errors name their path.
pub fn parse_definition(v: &Value) -> Result<FormDefinition, Problem> {
    serde_path_to_error::deserialize::<_, FormDefinition>(v.clone()).map_err(|e| {
        let path = e.path().to_string();
        problem(if path == "." { String::new() } else { path }, e.inner().to_string())
    })
}

/// What a submission says, checked and normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub email: String,
    /// Traits to set (the email among them).
    pub traits: Map<String, Value>,
    /// The consents given (checked boxes).
    pub consents: Vec<String>,
    /// The `Form Submitted` event's properties besides `form_id` and `form`: the
    /// values by field name.
    pub values: Map<String, Value>,
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "on" | "true" | "yes" | "1")
}

/// Checks a submission's values (input name → value as posted) against the form:
/// every problem by input name, or what to store. Inputs the form does not have are
/// ignored; hidden fields take the posted value, else their fixed value.
pub fn accept(def: &FormDefinition, input: &BTreeMap<String, String>) -> Result<Accepted, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut traits = Map::new();
    let mut values = Map::new();
    let mut email = None;
    for f in &def.fields {
        let raw = input
            .get(&f.name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .or(if f.kind == FieldKind::Hidden {
                f.value.as_deref()
            } else {
                None
            });
        let value = match (f.kind, raw) {
            (FieldKind::Checkbox, raw) => {
                let on = raw.is_some_and(truthy);
                if f.required && !on {
                    problems.push(problem(&f.name, "must be checked"));
                    continue;
                }
                Value::Bool(on)
            }
            (_, None) => {
                if f.required {
                    problems.push(problem(&f.name, "is required"));
                }
                continue;
            }
            (kind, Some(raw)) => match field_value(f, kind, raw) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(problem(&f.name, e));
                    continue;
                }
            },
        };
        if f.kind == FieldKind::Email {
            email = value.as_str().map(str::to_string);
        }
        traits.insert(f.trait_key().to_string(), value.clone());
        values.insert(f.name.clone(), value);
    }
    let mut consents = Vec::new();
    for c in &def.consents {
        let given = input
            .get(&format!("{CONSENT_PREFIX}{}", c.subscription))
            .is_some_and(|v| truthy(v));
        if given {
            consents.push(c.subscription.clone());
        } else if c.required {
            problems.push(problem(
                format!("{CONSENT_PREFIX}{}", c.subscription),
                "must be checked",
            ));
        }
    }
    match email {
        Some(email) if problems.is_empty() => Ok(Accepted {
            email,
            traits,
            consents,
            values,
        }),
        _ => {
            if problems.is_empty() {
                problems.push(problem("email", "is required"));
            }
            Err(problems)
        }
    }
}

fn field_value(f: &Field, kind: FieldKind, raw: &str) -> Result<Value, String> {
    let len = raw.chars().count();
    match kind {
        FieldKind::Text | FieldKind::Hidden => {
            if len > MAX_TEXT {
                return Err(format!("is at most {MAX_TEXT} characters"));
            }
            Ok(Value::String(raw.to_string()))
        }
        FieldKind::Email => normalize_email(&Value::String(raw.into()))
            .filter(|e| e.len() <= 254 && e.rsplit_once('@').is_some_and(|(_, d)| d.contains('.')))
            .map(Value::String)
            .ok_or_else(|| format!("{raw:?} is not an email address")),
        FieldKind::Phone => {
            let ok = raw
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'));
            match normalize_phone(&Value::String(raw.into())) {
                Some(p) if ok && p.trim_start_matches('+').len() <= 20 => Ok(Value::String(p)),
                _ => Err(format!("{raw:?} is not a phone number")),
            }
        }
        FieldKind::Number => raw
            .replace(',', "")
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(|n| {
                if n.fract() == 0.0 && n.abs() < 9.0e15 {
                    Some(Value::from(n as i64))
                } else {
                    serde_json::Number::from_f64(n).map(Value::Number)
                }
            })
            .ok_or_else(|| format!("{raw:?} is not a number")),
        FieldKind::Date => raw
            .parse::<jiff::civil::Date>()
            .map(|d| Value::String(d.to_string()))
            .map_err(|_| format!("{raw:?} is not a date (YYYY-MM-DD)")),
        FieldKind::Select => f
            .options
            .iter()
            .find(|o| o.as_str() == raw)
            .map(|o| Value::String(o.clone()))
            .ok_or_else(|| format!("{raw:?} is not one of the choices")),
        FieldKind::Checkbox => Ok(Value::Bool(truthy(raw))),
    }
}

/// The state a consent given on a form moves a subscription to: `pending` under
/// double opt-in (a contact already subscribed stays so: `None`), else `subscribed`.
pub fn consent_state(double_opt_in: bool, current: Option<Subscription>) -> Option<Subscription> {
    match (double_opt_in, current) {
        (_, Some(Subscription::Subscribed)) => None,
        (true, _) => Some(Subscription::Pending),
        (false, _) => Some(Subscription::Subscribed),
    }
}

/// A stored contact as a submission's identity resolution sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitter {
    pub id: crate::ContactId,
    /// Whether the contact is a known person (has a user id or an email address):
    /// an anonymous id attached to one is a shared device, not a reason to merge.
    pub known: bool,
}

/// Which contact a submission belongs to: `by_email` is the contact holding the
/// submitted email, `by_anonymous` the one the browser's anonymous id belongs to.
/// The email plays the part of the user id in [`crate::resolve`]: an anonymous visitor
/// who submits is merged into the contact with that email (or becomes it), and an
/// anonymous id attached to a different known person is left alone.
pub fn resolve_submitter(
    by_email: Option<&Submitter>,
    anonymous_id: Option<&str>,
    by_anonymous: Option<&Submitter>,
) -> Resolution {
    let known = |s: &Submitter| Known {
        id: s.id,
        user_id: s.known.then(|| "known".to_string()),
    };
    resolve(
        Some("email"),
        by_email.map(known).as_ref(),
        anonymous_id,
        by_anonymous.map(known).as_ref(),
    )
}

/// Why a submission is refused before anything is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The honeypot was filled.
    Honeypot,
    /// Sent sooner than the form's minimum fill time after it was rendered.
    TooFast,
    /// The render stamp is missing, forged or older than [`STAMP_MAX_AGE_MS`].
    Stamp,
    /// The proof of work is missing or wrong.
    ProofOfWork,
    /// Too many submissions from this address or to this form.
    RateLimited,
    /// The body is larger than [`MAX_SUBMISSION_BYTES`].
    TooLarge,
    /// Posted from a page whose origin the form does not allow.
    Origin,
}

impl Refusal {
    /// The message id (in the web UI's catalogues) telling the visitor what happened.
    pub fn message_id(self) -> &'static str {
        match self {
            Refusal::Honeypot => "form-refused-spam",
            Refusal::TooFast => "form-refused-too-fast",
            Refusal::Stamp => "form-refused-stamp",
            Refusal::ProofOfWork => "form-refused-pow",
            Refusal::RateLimited => "form-refused-rate",
            Refusal::TooLarge => "form-refused-size",
            Refusal::Origin => "form-refused-origin",
        }
    }
    /// The API's error code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::RateLimited => "rate_limited",
            Refusal::TooLarge => "submission_too_large",
            Refusal::Origin => "origin_not_allowed",
            _ => "submission_refused",
        }
    }
    /// An English description for logs and the JSON answer.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Honeypot => "the submission looks automated",
            Refusal::TooFast => "the form was sent too quickly after it was shown; wait a moment and send it again",
            Refusal::Stamp => "the form is missing its render stamp or has expired; reload the page",
            Refusal::ProofOfWork => "the proof of work is missing or wrong; send the form from its page",
            Refusal::RateLimited => "too many submissions; try again later",
            Refusal::TooLarge => "the submission is too large",
            Refusal::Origin => "this form may not be posted from this site",
        }
    }
}

/// The spam checks that need no state: the honeypot, and the verified render time
/// (`None`: no valid stamp) against the minimum fill time and the stamp's age.
pub fn check_spam(
    rules: &SpamRules,
    honeypot: Option<&str>,
    rendered_at: Option<Millis>,
    now: Millis,
) -> Result<(), Refusal> {
    if honeypot.is_some_and(|h| !h.trim().is_empty()) {
        return Err(Refusal::Honeypot);
    }
    let rendered_at = rendered_at.ok_or(Refusal::Stamp)?;
    if now - rendered_at > STAMP_MAX_AGE_MS || rendered_at - now > 60_000 {
        return Err(Refusal::Stamp);
    }
    if now - rendered_at < rules.min_fill_ms {
        return Err(Refusal::TooFast);
    }
    Ok(())
}

/// The number of leading zero bits of a hash.
pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut n = 0;
    for b in hash {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// The landing page's text as HTML: a safe subset of Markdown. Paragraphs (blank
/// lines), `#`–`###` headings, `-`/`*` lists, `**bold**`, `*italic*`, and
/// `[text](https://…)` links (http, https and mailto only). Everything else is text,
/// escaped: no raw HTML passes.
pub fn markdown(src: &str) -> String {
    let mut out = String::new();
    let mut para: Vec<&str> = Vec::new();
    let mut list: Vec<&str> = Vec::new();
    let flush_para = |para: &mut Vec<&str>, out: &mut String| {
        if !para.is_empty() {
            out.push_str("<p>");
            out.push_str(&inline(&para.join(" ")));
            out.push_str("</p>\n");
            para.clear();
        }
    };
    let flush_list = |list: &mut Vec<&str>, out: &mut String| {
        if !list.is_empty() {
            out.push_str("<ul>");
            for item in list.iter() {
                out.push_str("<li>");
                out.push_str(&inline(item));
                out.push_str("</li>");
            }
            out.push_str("</ul>\n");
            list.clear();
        }
    };
    for line in src.lines() {
        let t = line.trim();
        if t.is_empty() {
            flush_para(&mut para, &mut out);
            flush_list(&mut list, &mut out);
        } else if let Some(item) = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")) {
            flush_para(&mut para, &mut out);
            list.push(item);
        } else if let Some((level, text)) = heading(t) {
            flush_para(&mut para, &mut out);
            flush_list(&mut list, &mut out);
            out.push_str(&format!("<h{level}>{}</h{level}>\n", inline(text)));
        } else {
            flush_list(&mut list, &mut out);
            para.push(t);
        }
    }
    flush_para(&mut para, &mut out);
    flush_list(&mut list, &mut out);
    out
}

fn heading(t: &str) -> Option<(usize, &str)> {
    let hashes = t.bytes().take_while(|b| *b == b'#').count();
    if (1..=3).contains(&hashes) {
        // `#` on the page is its title: Markdown headings start one level below.
        t[hashes..].strip_prefix(' ').map(|rest| (hashes + 1, rest.trim()))
    } else {
        None
    }
}

/// Escapes text for HTML (content and attribute values).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("**")
            && let Some(end) = after.find("**")
            && end > 0
        {
            out.push_str(&format!("<strong>{}</strong>", inline(&after[..end])));
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('*')
            && let Some(end) = after.find('*')
            && end > 0
        {
            out.push_str(&format!("<em>{}</em>", inline(&after[..end])));
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix('[')
            && let Some(close) = after.find("](")
            && let Some(end) = after[close + 2..].find(')')
            && safe_href(&after[close + 2..close + 2 + end])
        {
            let text = &after[..close];
            let href = &after[close + 2..close + 2 + end];
            out.push_str(&format!(
                "<a href=\"{}\" rel=\"noopener noreferrer\">{}</a>",
                escape_html(href),
                escape_html(text)
            ));
            rest = &after[close + 2 + end + 1..];
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push_str(&escape_html(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn safe_href(h: &str) -> bool {
    let l = h.trim().to_ascii_lowercase();
    (l.starts_with("https://") || l.starts_with("http://") || l.starts_with("mailto:"))
        && !h.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests;
