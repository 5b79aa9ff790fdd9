//! Forms and landing pages: saving a form (its definition checked by
//! `nudge_core::form::validate`, every problem with its path, and the double opt-in's
//! template checked against what is stored), the render stamp a page carries, a
//! submission (rate limits, origin, honeypot, fill time, proof of work, values, then
//! one store transaction), and the report with its CSV.
//!
//! The rate limits and the stamp's key live in a [`FormGuard`] kept by the process.

use crate::{App, AppError, FieldProblem, Result};
use nudge_core::Millis;
use nudge_core::form::{self, FormDefinition, Problem, Refusal};
use nudge_messages::links::{Purpose, Signer};
use nudge_store::{ConfirmWith, Form, FormSubmission, NewForm, NewSubmission, Page, Submitted};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use tokio::sync::OnceCell;

/// The template variable a confirmation template must contain (as the API's
/// subscriptions endpoint requires).
pub const CONFIRM_VARIABLE: &str = "confirm_url";

/// The workspace setting holding the link-signing key (shared with message links).
const SIGNING_KEY: &str = "link_signing_key";

/// A form as created or edited.
#[derive(Debug, Clone)]
pub struct FormInput {
    pub name: String,
    pub slug: String,
    /// The definition as JSON (`nudge_core::form::FormDefinition`).
    pub definition: Value,
}

/// How many submissions are let through: a token bucket per client address and one
/// per form (`burst` at once, then `per_minute`).
#[derive(Debug, Clone, Copy)]
pub struct FormLimits {
    pub ip_burst: f64,
    pub ip_per_minute: f64,
    pub form_burst: f64,
    pub form_per_minute: f64,
}

impl Default for FormLimits {
    /// 10 at once then 6 a minute per address; 600 at once then 6,000 a minute per form.
    fn default() -> Self {
        Self {
            ip_burst: 10.0,
            ip_per_minute: 6.0,
            form_burst: 600.0,
            form_per_minute: 6_000.0,
        }
    }
}

impl FormLimits {
    /// No limit (benchmarks).
    pub fn unlimited() -> Self {
        Self {
            ip_burst: f64::INFINITY,
            ip_per_minute: f64::INFINITY,
            form_burst: f64::INFINITY,
            form_per_minute: f64::INFINITY,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Millis,
}

/// What the process keeps for forms: the rate limits' buckets and the stamp's key.
pub struct FormGuard {
    limits: FormLimits,
    buckets: Mutex<HashMap<String, Bucket>>,
    signer: OnceCell<Signer>,
}

impl Default for FormGuard {
    fn default() -> Self {
        Self::new(FormLimits::default())
    }
}

impl FormGuard {
    pub fn new(limits: FormLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
            signer: OnceCell::new(),
        }
    }

    /// Takes a token from each bucket; `false` (and none taken) if one is empty.
    fn take(&self, keys: &[(String, f64, f64)], now: Millis) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Full buckets carry no information: forget them.
            buckets.retain(|_, b| now - b.at < 3_600_000);
        }
        let mut refilled = Vec::with_capacity(keys.len());
        for (key, burst, per_minute) in keys {
            let b = buckets.get(key).copied().unwrap_or(Bucket {
                tokens: *burst,
                at: now,
            });
            let tokens = (b.tokens + (now - b.at).max(0) as f64 * per_minute / 60_000.0).min(*burst);
            if tokens < 1.0 {
                return false;
            }
            refilled.push((key.clone(), tokens - 1.0));
        }
        for (key, tokens) in refilled {
            buckets.insert(key, Bucket { tokens, at: now });
        }
        true
    }

    /// Whether a submission from `ip` to `form` is within the limits (taking a token).
    pub fn allow(&self, form: i64, ip: Option<IpAddr>, now: Millis) -> bool {
        let l = &self.limits;
        let mut keys = vec![(format!("form:{form}"), l.form_burst, l.form_per_minute)];
        if let Some(ip) = ip {
            keys.push((format!("ip:{ip}"), l.ip_burst, l.ip_per_minute));
        }
        self.take(&keys, now)
    }
}

fn problems(list: Vec<Problem>, prefix: &str) -> Vec<FieldProblem> {
    list.into_iter()
        .map(|p| FieldProblem {
            field: if p.field.is_empty() {
                prefix.trim_end_matches('.').to_string()
            } else {
                format!("{prefix}{}", p.field)
            },
            message: p.message,
        })
        .collect()
}

fn invalid(list: Vec<FieldProblem>) -> AppError {
    AppError::InvalidDefinition {
        problems: list,
        stored: false,
    }
}

/// Why a submission was not stored.
#[derive(Debug)]
pub enum SubmitError {
    /// Refused as abuse or spam: nothing stored.
    Refused(Refusal),
    /// Values with problems, each named by its input: nothing stored.
    Invalid(Vec<Problem>),
    /// No such form.
    NotFound,
    App(AppError),
}

impl From<AppError> for SubmitError {
    fn from(e: AppError) -> Self {
        SubmitError::App(e)
    }
}

impl From<nudge_store::StoreError> for SubmitError {
    fn from(e: nudge_store::StoreError) -> Self {
        SubmitError::App(e.into())
    }
}

/// Where a submission came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The hosted landing page (or a plain HTML form posting to it).
    Page,
    /// The embed script on another site.
    Embed,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Page => "page",
            Source::Embed => "embed",
        }
    }
}

/// A submission as the HTTP layer read it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub slug: String,
    /// Input name → value (the last one of a repeated name).
    pub input: BTreeMap<String, String>,
    /// The client's address, as the server trusts it.
    pub ip: Option<IpAddr>,
    /// The origin of the page that posted, when it is not Nudge's own.
    pub foreign_origin: Option<String>,
    pub source: Source,
}

/// A form's report: views, submissions, conversion rate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FormReport {
    pub form_id: i64,
    pub views: u64,
    pub submissions: u64,
    /// Submissions per view (0 without views).
    pub conversion_rate: f64,
}

/// The proof of work's check: SHA-256 of `stamp:nonce` has `bits` leading zero bits.
pub fn proof_of_work_ok(stamp: &str, nonce: &str, bits: u8) -> bool {
    if bits == 0 {
        return true;
    }
    if nonce.is_empty() || nonce.len() > 64 {
        return false;
    }
    let hash = Sha256::digest(format!("{stamp}:{nonce}").as_bytes());
    form::leading_zero_bits(&hash) >= u32::from(bits)
}

impl App {
    async fn checked_form(&self, input: FormInput) -> Result<NewForm> {
        let mut list = Vec::new();
        if let Err(e) = form::check_name(&input.name) {
            list.push(FieldProblem {
                field: "name".into(),
                message: e,
            });
        }
        if let Err(e) = form::check_slug(&input.slug) {
            list.push(FieldProblem {
                field: "slug".into(),
                message: e,
            });
        }
        let mut definition = match form::parse_definition(&input.definition) {
            Ok(d) => d,
            Err(p) => {
                list.extend(problems(vec![p], "definition."));
                return Err(invalid(list));
            }
        };
        list.extend(problems(form::validate(&mut definition), "definition."));
        if let Some(d) = &definition.double_opt_in
            && !d.confirm_template.trim().is_empty()
            && let Err(message) = self.confirmation_template(&d.confirm_template).await
        {
            list.push(FieldProblem {
                field: "definition.double_opt_in.confirm_template".into(),
                message,
            });
        }
        if !list.is_empty() {
            return Err(invalid(list));
        }
        Ok(NewForm {
            name: input.name.trim().to_string(),
            slug: input.slug,
            definition,
        })
    }

    /// The confirmation template by name, fit to confirm (holds the link).
    async fn confirmation_template(&self, name: &str) -> std::result::Result<ConfirmWith, String> {
        let t = self
            .store
            .template_by_name(name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no template {name:?}"))?;
        if !t.content.to_string().contains(CONFIRM_VARIABLE) {
            return Err(format!(
                "template {name:?} does not contain {{{{ {CONFIRM_VARIABLE} }}}}, the confirmation link"
            ));
        }
        Ok(ConfirmWith {
            template_id: t.id,
            template_version: t.version,
            channel: t.channel,
        })
    }

    pub async fn create_form(&self, input: FormInput) -> Result<Form> {
        let new = self.checked_form(input).await?;
        Ok(self.store.create_form(new, self.clock.now()).await?)
    }

    pub async fn update_form(&self, id: i64, input: FormInput) -> Result<Form> {
        let new = self.checked_form(input).await?;
        self.store
            .update_form(id, new, self.clock.now())
            .await?
            .ok_or_else(|| AppError::not_found("no such form"))
    }

    pub async fn form(&self, id: i64) -> Result<Form> {
        self.store
            .form(id)
            .await?
            .ok_or_else(|| AppError::not_found("no such form"))
    }

    pub async fn delete_form(&self, id: i64) -> Result<()> {
        if self.store.delete_form(id).await? {
            Ok(())
        } else {
            Err(AppError::not_found("no such form"))
        }
    }

    pub async fn form_report(&self, id: i64) -> Result<FormReport> {
        let f = self.form(id).await?;
        Ok(report_of(&f))
    }

    pub async fn form_submissions(&self, id: i64, before: Option<i64>, limit: usize) -> Result<Page<FormSubmission>> {
        self.form(id).await?;
        Ok(self.store.form_submissions(id, before, limit).await?)
    }

    /// Every submission of a form as CSV, newest first: id, time, contact, email,
    /// source, consents, then one column per field of the form.
    pub async fn form_submissions_csv(&self, id: i64) -> Result<String> {
        let f = self.form(id).await?;
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec![
            "submission_id",
            "submitted_at",
            "contact_id",
            "email",
            "source",
            "consents",
        ];
        header.extend(f.definition.fields.iter().map(|x| x.name.as_str()));
        w.write_record(&header).map_err(AppError::internal)?;
        let mut before = None;
        loop {
            let page = self.store.form_submissions(id, before, 1_000).await?;
            for s in &page.items {
                let mut row = vec![
                    s.id.to_string(),
                    nudge_core::format_millis(s.submitted_at),
                    s.contact_id.to_string(),
                    s.email.clone(),
                    s.source.clone(),
                    s.consents.join(" "),
                ];
                for field in &f.definition.fields {
                    row.push(match s.answers.get(&field.name) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(v)) => csv_safe(v),
                        Some(v) => v.to_string(),
                    });
                }
                w.write_record(&row).map_err(AppError::internal)?;
            }
            match page.next.and_then(|n| n.parse().ok()) {
                Some(n) => before = Some(n),
                None => break,
            }
        }
        String::from_utf8(w.into_inner().map_err(AppError::internal)?).map_err(AppError::internal)
    }

    /// The key render stamps are signed with (the workspace's link-signing key).
    async fn form_signer<'a>(&self, guard: &'a FormGuard) -> Result<&'a Signer> {
        guard
            .signer
            .get_or_try_init(|| async {
                let fresh: [u8; 32] = rand::random();
                let stored = self.store.setting_or_init(SIGNING_KEY, &hex::encode(fresh)).await?;
                let key =
                    hex::decode(stored).map_err(|_| AppError::internal("the stored link-signing key is not hex"))?;
                Ok(Signer::new(&key))
            })
            .await
    }

    /// A form by slug for showing, with a fresh render stamp; counts the view.
    pub async fn show_form(&self, guard: &FormGuard, slug: &str, count_view: bool) -> Result<(Form, String)> {
        let f = self
            .store
            .form_by_slug(slug)
            .await?
            .ok_or_else(|| AppError::not_found("no such form"))?;
        let stamp = self.form_stamp(guard, f.id).await?;
        if count_view {
            self.store.record_form_view(f.id).await?;
        }
        Ok((f, stamp))
    }

    /// A render stamp: the form and the time it is shown, signed.
    pub async fn form_stamp(&self, guard: &FormGuard, form: i64) -> Result<String> {
        let signer = self.form_signer(guard).await?;
        Ok(signer.token(Purpose::FormRender, self.clock.now(), form as u32))
    }

    /// Checks and stores a submission (see the module's documentation). Nothing is
    /// stored unless every check passes.
    pub async fn submit_form(
        &self,
        guard: &FormGuard,
        s: Submission,
    ) -> std::result::Result<(Form, Submitted), SubmitError> {
        let now = self.clock.now();
        let f = self.store.form_by_slug(&s.slug).await?.ok_or(SubmitError::NotFound)?;
        if !guard.allow(f.id, s.ip, now) {
            return Err(SubmitError::Refused(Refusal::RateLimited));
        }
        if let Some(origin) = &s.foreign_origin
            && !form::origin_allowed(&f.definition.allowed_origins, origin)
        {
            return Err(SubmitError::Refused(Refusal::Origin));
        }
        let stamp = s.input.get(form::STAMP).map(String::as_str).unwrap_or("");
        let signer = self.form_signer(guard).await?;
        let rendered_at = signer
            .verify(Purpose::FormRender, stamp)
            .filter(|(_, id)| i64::from(*id) == f.id)
            .map(|(at, _)| at);
        form::check_spam(
            &f.definition.spam,
            s.input.get(form::HONEYPOT).map(String::as_str),
            rendered_at,
            now,
        )
        .map_err(SubmitError::Refused)?;
        let nonce = s.input.get(form::POW_NONCE).map(String::as_str).unwrap_or("");
        if !proof_of_work_ok(stamp, nonce, f.definition.spam.proof_of_work) {
            return Err(SubmitError::Refused(Refusal::ProofOfWork));
        }
        let accepted = form::accept(&f.definition, &s.input).map_err(SubmitError::Invalid)?;
        let confirm = match &f.definition.double_opt_in {
            Some(d) if !accepted.consents.is_empty() => Some(
                self.confirmation_template(&d.confirm_template)
                    .await
                    .map_err(|m| AppError::Conflict(format!("the form's double opt-in cannot be sent: {m}")))?,
            ),
            _ => None,
        };
        if let Some(c) = &confirm {
            let messaging = self.messaging()?;
            if messaging.channel(&c.channel).is_none() {
                return Err(AppError::ChannelNotConfigured(format!(
                    "no {} channel is configured on this server",
                    c.channel
                ))
                .into());
            }
        }
        let anonymous_id = s
            .input
            .get(form::ANONYMOUS_ID)
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty() && a.len() <= 200);
        let new = NewSubmission {
            form_id: f.id,
            email: accepted.email,
            anonymous_id,
            traits: accepted.traits,
            consents: accepted.consents,
            answers: accepted.values,
            source: s.source.as_str().into(),
            confirm,
        };
        let submitted = self.store.submit_form(new, now).await?.ok_or(SubmitError::NotFound)?;
        if let Some(e) = &self.segments {
            e.wake();
        }
        if let Some(e) = &self.journeys {
            e.wake();
        }
        if !submitted.confirmations.is_empty()
            && let Some(m) = &self.messaging
        {
            m.wake();
        }
        Ok((f, submitted))
    }
}

/// Views, submissions and their ratio.
pub fn report_of(f: &Form) -> FormReport {
    FormReport {
        form_id: f.id,
        views: f.views,
        submissions: f.submissions,
        conversion_rate: if f.views == 0 {
            0.0
        } else {
            f.submissions as f64 / f.views as f64
        },
    }
}

/// A value that a spreadsheet would read as a formula gets a leading `'`.
fn csv_safe(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_string()
    }
}

/// Reads a definition's JSON for the UI (the stored one back as JSON).
pub fn definition_json(d: &FormDefinition) -> Value {
    serde_json::to_value(d).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_and_limit_per_address_and_form() {
        let g = FormGuard::new(FormLimits {
            ip_burst: 2.0,
            ip_per_minute: 60.0,
            form_burst: 3.0,
            form_per_minute: 60.0,
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(g.allow(1, Some(a), 0));
        assert!(g.allow(1, Some(a), 0));
        assert!(!g.allow(1, Some(a), 0), "a's burst is spent");
        assert!(g.allow(1, Some(b), 0), "another address goes through");
        assert!(!g.allow(1, Some(b), 0), "the form's burst is spent");
        assert!(g.allow(2, Some(b), 0), "another form has its own bucket");
        assert!(g.allow(1, Some(a), 1_000), "a token a second comes back");
    }

    #[test]
    fn proof_of_work_needs_the_leading_zero_bits() {
        assert!(proof_of_work_ok("s", "", 0));
        assert!(!proof_of_work_ok("s", "", 8));
        let nonce = (0..100_000)
            .map(|n| n.to_string())
            .find(|n| proof_of_work_ok("stamp", n, 8))
            .unwrap();
        assert!(proof_of_work_ok("stamp", &nonce, 8));
        let hash = Sha256::digest(format!("stamp:{nonce}").as_bytes());
        assert_eq!(hash[0], 0);
    }

    #[test]
    fn csv_cells_do_not_become_formulas() {
        assert_eq!(csv_safe("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_safe("Ada"), "Ada");
    }
}
