//! Forms: the list with each form's views, submissions and conversion rate; the
//! editor (fields as rows, consents, double opt-in, after submit, allowed origins,
//! the landing page, spam rules), whose inputs are read into the definition's JSON
//! and checked by `nudge_app::forms` (its problems shown by path); a form's report
//! with its recent submissions, the CSV and the embed snippet. Editing takes the
//! `edit` permission; everyone signed in reads.

use crate::WebState;
use crate::auth::Viewer;
use crate::render::{self, Chrome};
use askama::Template;
use axum::extract::{Form as Posted, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use nudge_app::forms::{FormInput, report_of};
use nudge_app::{AppError, FieldProblem};
use nudge_core::access::Permission;
use nudge_core::form::{AfterSubmit, FormDefinition};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Blank rows the editor offers for new fields and consents.
const BLANK_FIELDS: usize = 3;
const BLANK_CONSENTS: usize = 2;
const TYPES: &[&str] = &[
    "text", "email", "phone", "number", "date", "select", "checkbox", "hidden",
];

pub struct FormRow {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub views: u64,
    pub submissions: u64,
    pub rate: f64,
}

#[derive(Template)]
#[template(path = "forms.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<FormRow>,
}

/// `GET /forms`
pub async fn list(State(state): State<WebState>, viewer: Viewer) -> Response {
    let forms = match state.api.store.forms().await {
        Ok(f) => f,
        Err(e) => return render::app_error(&viewer.t, e.into()),
    };
    let rows = forms
        .iter()
        .map(|f| {
            let r = report_of(f);
            FormRow {
                id: f.id,
                name: f.name.clone(),
                slug: f.slug.clone(),
                views: r.views,
                submissions: r.submissions,
                rate: r.conversion_rate,
            }
        })
        .collect();
    render::page(&ListPage {
        c: viewer.chrome("forms", "/forms"),
        rows,
    })
}

/// One row of the fields table.
#[derive(Default)]
pub struct FieldRow {
    pub name: String,
    pub kind: String,
    pub label: String,
    pub trait_name: String,
    pub required: bool,
    pub options: String,
    pub query: String,
    pub value: String,
}

#[derive(Default)]
pub struct ConsentRow {
    pub subscription: String,
    pub label: String,
    pub required: bool,
}

/// The editor's inputs.
#[derive(Default)]
pub struct Editor {
    pub name: String,
    pub slug: String,
    pub fields: Vec<FieldRow>,
    pub consents: Vec<ConsentRow>,
    pub confirm_template: String,
    pub thanks: String,
    pub redirect: String,
    pub origins: String,
    pub title: String,
    pub text: String,
    pub image_url: String,
    pub locale: String,
    pub min_fill_ms: String,
    pub proof_of_work: String,
}

impl Editor {
    fn of(name: &str, slug: &str, d: &FormDefinition) -> Self {
        let mut e = Editor {
            name: name.into(),
            slug: slug.into(),
            fields: d
                .fields
                .iter()
                .map(|f| FieldRow {
                    name: f.name.clone(),
                    kind: f.kind.as_str().into(),
                    label: f.label.clone(),
                    trait_name: f.trait_name.clone().unwrap_or_default(),
                    required: f.required,
                    options: f.options.join(", "),
                    query: f.query.clone().unwrap_or_default(),
                    value: f.value.clone().unwrap_or_default(),
                })
                .collect(),
            consents: d
                .consents
                .iter()
                .map(|c| ConsentRow {
                    subscription: c.subscription.clone(),
                    label: c.label.clone(),
                    required: c.required,
                })
                .collect(),
            confirm_template: d
                .double_opt_in
                .as_ref()
                .map(|x| x.confirm_template.clone())
                .unwrap_or_default(),
            origins: d.allowed_origins.join("\n"),
            title: d.page.title.clone(),
            text: d.page.text.clone(),
            image_url: d.page.image_url.clone().unwrap_or_default(),
            locale: d.page.locale.clone(),
            min_fill_ms: d.spam.min_fill_ms.to_string(),
            proof_of_work: d.spam.proof_of_work.to_string(),
            ..Default::default()
        };
        match &d.after_submit {
            AfterSubmit::Message(m) => e.thanks = m.clone(),
            AfterSubmit::Redirect(u) => e.redirect = u.clone(),
        }
        e
    }

    fn blank() -> Self {
        Editor {
            fields: vec![FieldRow {
                name: "email".into(),
                kind: "email".into(),
                label: "Email".into(),
                required: true,
                ..Default::default()
            }],
            locale: "en".into(),
            min_fill_ms: "2000".into(),
            proof_of_work: "0".into(),
            ..Default::default()
        }
    }

    /// Reads the posted inputs (`fields[2].label`, `consents[0].subscription`, ...).
    fn read(posted: &[(String, String)]) -> Self {
        let get: BTreeMap<&str, &str> = posted.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let s = |k: &str| get.get(k).map(|v| v.to_string()).unwrap_or_default();
        let mut e = Editor {
            name: s("name"),
            slug: s("slug"),
            confirm_template: s("confirm_template"),
            thanks: s("thanks"),
            redirect: s("redirect"),
            origins: s("origins"),
            title: s("title"),
            text: s("text"),
            image_url: s("image_url"),
            locale: s("locale"),
            min_fill_ms: s("min_fill_ms"),
            proof_of_work: s("proof_of_work"),
            ..Default::default()
        };
        for i in 0..100 {
            let k = |f: &str| format!("fields[{i}].{f}");
            if !get.contains_key(k("name").as_str()) {
                break;
            }
            e.fields.push(FieldRow {
                name: s(&k("name")),
                kind: s(&k("type")),
                label: s(&k("label")),
                trait_name: s(&k("trait")),
                required: get.contains_key(k("required").as_str()),
                options: s(&k("options")),
                query: s(&k("query")),
                value: s(&k("value")),
            });
        }
        for i in 0..100 {
            let k = |f: &str| format!("consents[{i}].{f}");
            if !get.contains_key(k("subscription").as_str()) {
                break;
            }
            e.consents.push(ConsentRow {
                subscription: s(&k("subscription")),
                label: s(&k("label")),
                required: get.contains_key(k("required").as_str()),
            });
        }
        e
    }

    /// The definition's JSON (rows left blank are left out), for the application
    /// layer to check.
    fn definition(&self) -> Value {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let fields: Vec<Value> = self
            .fields
            .iter()
            .filter(|f| !f.name.trim().is_empty())
            .map(|f| {
                let mut v =
                    json!({"name": f.name.trim(), "type": f.kind, "label": f.label.trim(), "required": f.required});
                if let Some(t) = opt(&f.trait_name) {
                    v["trait"] = json!(t);
                }
                let options: Vec<&str> = f.options.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();
                if !options.is_empty() {
                    v["options"] = json!(options);
                }
                if let Some(q) = opt(&f.query) {
                    v["query"] = json!(q);
                }
                if let Some(x) = opt(&f.value) {
                    v["value"] = json!(x);
                }
                v
            })
            .collect();
        let consents: Vec<Value> = self
            .consents
            .iter()
            .filter(|c| !c.subscription.trim().is_empty())
            .map(|c| json!({"subscription": c.subscription.trim(), "label": c.label.trim(), "required": c.required}))
            .collect();
        let after = match opt(&self.redirect) {
            Some(u) => json!({"redirect": u}),
            None => json!({"message": self.thanks.trim()}),
        };
        let number = |s: &str| -> Value {
            s.trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(s.to_string()))
        };
        let mut d = json!({
            "fields": fields,
            "consents": consents,
            "after_submit": after,
            "allowed_origins": self.origins.lines().map(str::trim).filter(|o| !o.is_empty()).collect::<Vec<_>>(),
            "page": {"title": self.title.trim(), "text": self.text, "locale": if self.locale.is_empty() { "en" } else { &self.locale }},
            "spam": {"min_fill_ms": number(&self.min_fill_ms), "proof_of_work": number(&self.proof_of_work)},
        });
        if let Some(i) = opt(&self.image_url) {
            d["page"]["image_url"] = json!(i);
        }
        if let Some(t) = opt(&self.confirm_template) {
            d["double_opt_in"] = json!({"confirm_template": t});
        }
        d
    }
}

#[derive(Template)]
#[template(path = "form_editor.html")]
struct EditorPage {
    c: Chrome,
    /// `None`: a new form.
    id: Option<i64>,
    e: Editor,
    problems: Vec<FieldProblem>,
    types: &'static [&'static str],
    locales: &'static [&'static str],
}

fn editor_page(viewer: &Viewer, id: Option<i64>, mut e: Editor, problems: Vec<FieldProblem>) -> Response {
    for _ in 0..BLANK_FIELDS {
        e.fields.push(FieldRow {
            kind: "text".into(),
            ..Default::default()
        });
    }
    for _ in 0..BLANK_CONSENTS {
        e.consents.push(ConsentRow::default());
    }
    let here = id.map_or("/forms/new".to_string(), |id| format!("/forms/{id}/edit"));
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut resp = render::page(&EditorPage {
        c: viewer.chrome("forms", here),
        id,
        e,
        problems,
        types: TYPES,
        locales: nudge_core::form::LOCALES,
    });
    *resp.status_mut() = status;
    resp
}

/// `GET /forms/new`
pub async fn new_page(viewer: Viewer) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    editor_page(&viewer, None, Editor::blank(), Vec::new())
}

/// `GET /forms/{id}/edit`
pub async fn edit_page(State(state): State<WebState>, viewer: Viewer, Path(id): Path<i64>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    match state.app().form(id).await {
        Ok(f) => editor_page(
            &viewer,
            Some(id),
            Editor::of(&f.name, &f.slug, &f.definition),
            Vec::new(),
        ),
        Err(e) => render::app_error(&viewer.t, e),
    }
}

async fn save(state: &WebState, viewer: &Viewer, id: Option<i64>, posted: Vec<(String, String)>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    let e = Editor::read(&posted);
    let input = FormInput {
        name: e.name.clone(),
        slug: e.slug.trim().to_string(),
        definition: e.definition(),
    };
    let app = state.app();
    let saved = match id {
        None => app.create_form(input).await,
        Some(id) => app.update_form(id, input).await,
    };
    match saved {
        Ok(f) => Redirect::to(&format!("/forms/{}", f.id)).into_response(),
        Err(AppError::InvalidDefinition { problems, .. }) => editor_page(viewer, id, e, problems),
        Err(AppError::Store(nudge_store::StoreError::Conflict(m))) => editor_page(
            viewer,
            id,
            e,
            vec![FieldProblem {
                field: "name".into(),
                message: m,
            }],
        ),
        Err(err) => render::app_error(&viewer.t, err),
    }
}

/// `POST /forms/new`
pub async fn create(
    State(state): State<WebState>,
    viewer: Viewer,
    Posted(posted): Posted<Vec<(String, String)>>,
) -> Response {
    save(&state, &viewer, None, posted).await
}

/// `POST /forms/{id}/edit`
pub async fn update(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Posted(posted): Posted<Vec<(String, String)>>,
) -> Response {
    save(&state, &viewer, Some(id), posted).await
}

pub struct SubmissionRow {
    pub id: i64,
    pub at: String,
    pub contact_id: i64,
    pub email: String,
    pub source: String,
    pub consents: String,
    pub values: String,
}

#[derive(Template)]
#[template(path = "form_report.html")]
struct ReportPage {
    c: Chrome,
    id: i64,
    name: String,
    slug: String,
    views: u64,
    submissions: u64,
    rate: f64,
    snippet: String,
    html_snippet: String,
    rows: Vec<SubmissionRow>,
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p == "https");
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// `GET /forms/{id}`: the report, recent submissions, the embed snippet.
pub async fn report(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let t = &viewer.t;
    let app = state.app();
    let f = match app.form(id).await {
        Ok(f) => f,
        Err(e) => return render::app_error(t, e),
    };
    let page = match app.form_submissions(id, None, 50).await {
        Ok(p) => p,
        Err(e) => return render::app_error(t, e),
    };
    let r = report_of(&f);
    let base = base_url(&headers);
    let rows = page
        .items
        .iter()
        .map(|s| SubmissionRow {
            id: s.id,
            at: t.datetime(s.submitted_at),
            contact_id: s.contact_id,
            email: s.email.clone(),
            source: s.source.clone(),
            consents: s.consents.join(", "),
            values: s
                .answers
                .iter()
                .filter(|(k, _)| k.as_str() != "email")
                .map(|(k, v)| format!("{k}: {}", render::show_value(v, false)))
                .collect::<Vec<_>>()
                .join("; "),
        })
        .collect();
    render::page(&ReportPage {
        c: viewer.chrome("forms", format!("/forms/{id}")),
        id,
        snippet: super::public_forms::embed_snippet(&base, &f.slug),
        html_snippet: format!("<form method=\"post\" action=\"{base}/f/{}\">…</form>", f.slug),
        name: f.name,
        slug: f.slug,
        views: r.views,
        submissions: r.submissions,
        rate: r.conversion_rate,
        rows,
    })
}

/// `GET /forms/{id}/submissions.csv`
pub async fn csv(State(state): State<WebState>, viewer: Viewer, Path(id): Path<i64>) -> Response {
    match state.app().form_submissions_csv(id).await {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"form-{id}-submissions.csv\""),
                ),
            ],
            csv,
        )
            .into_response(),
        Err(e) => render::app_error(&viewer.t, e),
    }
}

/// `POST /forms/{id}/delete`
pub async fn delete(State(state): State<WebState>, viewer: Viewer, Path(id): Path<i64>) -> Response {
    if let Err(r) = viewer.require(Permission::Edit) {
        return r;
    }
    match state.app().delete_form(id).await {
        Ok(()) => Redirect::to("/forms").into_response(),
        Err(e) => render::app_error(&viewer.t, e),
    }
}
