//! `/api/v1/journeys`: create, validate, version, publish, pause and stop journeys;
//! their statistics per step; a contact's runs. The definition format is in
//! `docs/journeys.md`; validation is `nudge_core::journey::parse_journey`.

use crate::AppState;
use crate::error::ApiError;
use crate::messages::{as_int, body_object, integral_numbers, only_fields, opt_string};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nudge_core::format_millis;
use nudge_core::journey::parse_journey;
use nudge_store::{Journey, NewJourney, Run};
use serde_json::{Map, Value, json};

fn journey_json(j: &Journey) -> Value {
    json!({
        "id": j.id,
        "name": j.name,
        "description": j.description,
        "status": j.status,
        "version": j.version,
        "published_version": j.published_version,
        "priority": j.priority,
        "definition": j.definition,
        "created_at": format_millis(j.created_at),
        "updated_at": format_millis(j.updated_at),
    })
}

fn run_json(r: &Run) -> Value {
    json!({
        "id": r.id,
        "journey_id": r.journey_id,
        "version": r.version,
        "contact_id": r.contact_id,
        "step": r.step,
        "status": if r.set_aside.is_some() { "set_aside" } else if r.is_active() { "active" } else { "finished" },
        "finish_reason": r.finish_reason,
        "error": r.set_aside,
        "entered_at": format_millis(r.entered_at),
        "updated_at": format_millis(r.updated_at),
        "finished_at": r.finished_at.map(format_millis),
        "state": r.state,
    })
}

/// The problems of a definition, each `{"field", "message"}` with its path in the
/// request (`definition.steps[2].on_timeout`); empty when it is valid.
fn problems(def: &Value) -> Vec<Value> {
    let Err(errors) = parse_journey(def) else {
        return Vec::new();
    };
    let path = |p: &str| {
        let p = p.trim_start_matches('$').trim_start_matches('.');
        if p.is_empty() {
            "definition".to_string()
        } else if p.starts_with('[') {
            format!("definition{p}")
        } else {
            format!("definition.{p}")
        }
    };
    errors
        .iter()
        .map(|e| json!({"field": path(&e.path), "message": e.message}))
        .collect()
}

/// A `400 invalid_field` listing every problem in `details`, the first in `field`.
fn invalid_definition(problems: Vec<Value>) -> ApiError {
    let first = &problems[0];
    let field = first["field"].as_str().unwrap_or("definition").to_string();
    let mut err = ApiError::new(
        "invalid_field",
        format!(
            "{field}: {} ({} problem{} in the definition)",
            first["message"].as_str().unwrap_or_default(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ),
    )
    .with_field(field);
    err.details = Some(Box::new(Value::Array(problems)));
    err
}

/// The `definition` of a body, validated: every problem listed in `details` with its
/// path (`definition.steps[2].on_timeout`), the first one in `field`.
fn definition(body: &Map<String, Value>) -> Result<Value, ApiError> {
    let def = draft(body)?;
    let problems = problems(&def);
    if !problems.is_empty() {
        return Err(invalid_definition(problems));
    }
    Ok(def)
}

/// The `definition` of a body that only inspects it (validate, dry run): a definition
/// that does not have the shape the OpenAPI document gives (`JourneyDefinition`) is
/// refused like any malformed request, with every problem in `details`; its meaning
/// (pointers between steps, each step's fields, ...) is left to [`problems`], which
/// these endpoints report in their answer.
fn draft(body: &Map<String, Value>) -> Result<Value, ApiError> {
    let def = body
        .get("definition")
        .ok_or_else(|| ApiError::new("missing_field", "definition: is required").with_field("definition"))?;
    let def = integral_numbers(def.clone());
    if let Some(shape) = shape_problem(&def) {
        // Every problem the definition has, as `POST /api/v1/journeys` lists them.
        let mut problems = problems(&def);
        if problems.is_empty() {
            problems.push(shape);
        }
        return Err(invalid_definition(problems));
    }
    Ok(def)
}

/// The first way a definition differs from the shape `JourneyDefinition` states in
/// the OpenAPI document: an object of `trigger` (an object with a string `type`),
/// `start` (a non-empty string), `steps` (a non-empty list of objects, each with a
/// non-empty string `id` and a string `type`) and optional `settings` (an object),
/// and nothing else. `None`: it has that shape.
pub fn shape_problem(def: &Value) -> Option<Value> {
    let problem = |field: String, message: &str| Some(json!({"field": field, "message": message}));
    let non_empty = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    let Some(obj) = def.as_object() else {
        return problem("definition".into(), "must be an object");
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["trigger", "start", "steps", "settings"].contains(&k.as_str()))
    {
        return problem(
            format!("definition.{k}"),
            "unknown field; a journey has trigger, start, steps and settings",
        );
    }
    if !obj
        .get("trigger")
        .and_then(Value::as_object)
        .is_some_and(|t| t.get("type").is_some_and(Value::is_string))
    {
        return problem("definition.trigger".into(), "must be an object with a string type");
    }
    if !non_empty(obj.get("start")) {
        return problem(
            "definition.start".into(),
            "must be the id of a step (a non-empty string)",
        );
    }
    let Some(steps) = obj.get("steps").and_then(Value::as_array).filter(|s| !s.is_empty()) else {
        return problem("definition.steps".into(), "must be a non-empty list of steps");
    };
    for (i, step) in steps.iter().enumerate() {
        if !step
            .as_object()
            .is_some_and(|s| non_empty(s.get("id")) && s.get("type").is_some_and(Value::is_string))
        {
            return problem(
                format!("definition.steps[{i}]"),
                "must be an object with a non-empty string id and a string type",
            );
        }
    }
    if obj.get("settings").is_some_and(|s| !s.is_object()) {
        return problem("definition.settings".into(), "must be an object");
    }
    None
}

fn new_journey(body: &Map<String, Value>) -> Result<NewJourney, ApiError> {
    only_fields(body, &["name", "description", "priority", "definition"])?;
    let name = opt_string(body, "name")?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .ok_or_else(|| {
            ApiError::new(
                "invalid_field",
                "name must be a non-empty string of at most 200 characters",
            )
            .with_field("name")
        })?;
    let priority = match body.get("priority") {
        None | Some(Value::Null) => 0,
        Some(v) => as_int(v)
            .ok_or_else(|| ApiError::new("invalid_field", "priority must be an integer").with_field("priority"))?,
    };
    Ok(NewJourney {
        name,
        description: opt_string(body, "description")?.unwrap_or_default(),
        priority,
        definition: definition(body)?,
    })
}

fn journey_id(raw: &str) -> Result<i64, ApiError> {
    crate::messages::int_text(raw)
        .ok_or_else(|| ApiError::invalid("id", format!("journey id must be an integer, got {raw:?}")))
}

/// After a journey changed: see `nudge_app::App::journeys_changed`.
pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = new_journey(&body_object(&body)?)?;
    let j = state.app().create_journey(new).await?;
    Ok((StatusCode::CREATED, Json(journey_json(&j))))
}

/// `POST /api/v1/journeys/validate`: checks a draft definition, saving nothing. Its
/// problems are the answer (`200`, `valid` and `problems` with their paths), for an
/// editor to show on the diagram; only a request that is not a draft definition at
/// all is refused.
pub async fn validate(body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = body_object(&body)?;
    only_fields(&body, &["definition"])?;
    let problems = problems(&draft(&body)?);
    Ok(Json(json!({"valid": problems.is_empty(), "problems": problems})))
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = state.store.journeys().await?.iter().map(journey_json).collect();
    Ok(Json(json!({ "data": data })))
}

/// One journey with its live statistics: active runs per step.
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = journey_id(&id)?;
    let j = state
        .store
        .journey(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no journey {id}")))?;
    let mut v = journey_json(&j);
    let steps: Map<String, Value> = state
        .store
        .runs_per_step(id)
        .await?
        .into_iter()
        .map(|(step, n)| (step, json!(n)))
        .collect();
    v["active_runs_per_step"] = Value::Object(steps);
    v["stats"] = serde_json::to_value(state.store.journey_stats(id).await?).unwrap_or(Value::Null);
    Ok(Json(v))
}

/// `PUT`: saves a new version. Running contacts stay on their version; new runs
/// start on the new one once it is published.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = journey_id(&id)?;
    let new = new_journey(&body_object(&body)?)?;
    let j = state.app().update_journey(id, new).await?;
    Ok(Json(journey_json(&j)))
}

/// `POST /api/v1/journeys/{id}/{action}`: `publish` (the latest version goes live),
/// `pause` (no new entries, runs hold), `resume`, `stop` (no new entries; runs end).
///
/// `publish` takes `{"move_runs": {"old-step": "new-step", ...}}`: active runs of
/// earlier versions at a named step move to the new version at the mapped step (a
/// wait of the same kind keeps the time waited); the others stay on their version.
pub async fn action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = journey_id(&id)?;
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        body_object(&body)?
    };
    only_fields(&body, if action == "publish" { &["move_runs"] } else { &[] })?;
    let Some(action) = nudge_app::journeys::JourneyAction::parse(&action) else {
        // An unknown journey is reported before an unknown action.
        state.app().journey(id).await?;
        return Err(ApiError::not_found(format!(
            "no action {action:?}; one of publish, pause, resume, stop"
        )));
    };
    let mapping = match body.get("move_runs") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(
            map.iter()
                .map(|(old, new)| match new.as_str() {
                    Some(new) => Ok((old.clone(), new.to_string())),
                    None => Err(ApiError::invalid(
                        &format!("move_runs.{old}"),
                        "the new step must be a step id (a string)",
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => {
            return Err(ApiError::invalid(
                "move_runs",
                "move_runs must be an object: old step id → new step id",
            ));
        }
    };
    let (j, report) = state.app().journey_action(id, action, mapping).await?;
    let mut out = journey_json(&j);
    if let Some(report) = report {
        out["runs"] = json!({"moved": report.moved, "stayed": report.stayed});
    }
    Ok(Json(out))
}

/// `GET /api/v1/contacts/{id}/runs`: the contact's journey runs, oldest first.
pub async fn contact_runs(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id: i64 = crate::messages::int_text(&id)
        .ok_or_else(|| ApiError::invalid("id", format!("contact id must be an integer, got {id:?}")))?;
    let runs = state.store.contact_runs(id, None).await?;
    Ok(Json(json!({"data": runs.iter().map(run_json).collect::<Vec<_>>()})))
}

/// `GET /api/v1/journeys/ready-made`: the catalogue.
pub async fn catalogue() -> Json<Value> {
    let data: Vec<Value> = nudge_app::ready_made_journeys::ready_made_journeys()
        .iter()
        .map(|r| {
            json!({"key": r.key, "name": r.name, "description": r.description,
                   "templates": r.templates, "segment": r.segment, "definition": r.definition})
        })
        .collect();
    Json(json!({ "data": data }))
}

/// `POST /api/v1/journeys/ready-made/{key}` (`?publish=true` to make it live at once):
/// installs the journey with its templates and segment.
pub async fn install(
    State(state): State<AppState>,
    Path(key): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let publish = match q.get("publish").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "publish",
                format!("publish must be true or false, got {other:?}"),
            ));
        }
    };
    let j = state.app().install_ready_made_journey(&key, publish).await?;
    Ok((StatusCode::CREATED, Json(journey_json(&j))))
}

/// `GET /api/v1/frequency-caps`: the workspace's caps on marketing messages.
pub async fn get_caps(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let caps: Value = match state.store.setting(nudge_engine::FREQUENCY_CAPS).await? {
        Some(raw) => serde_json::from_str(&raw).unwrap_or(json!([])),
        None => json!([]),
    };
    Ok(Json(json!({ "caps": caps })))
}

/// `PUT /api/v1/frequency-caps` `{"caps": [{"channel": "email", "max": 1, "per": "day"}]}`:
/// at most `max` marketing messages per contact on `channel` (every channel when
/// absent) in any rolling day or week, across all journeys. Journeys defer a message
/// over a cap to the next allowed moment; they never drop it.
pub async fn put_caps(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = body_object(&body)?;
    only_fields(&body, &["caps"])?;
    let raw = body
        .get("caps")
        .cloned()
        .ok_or_else(|| ApiError::new("missing_field", "caps: is required").with_field("caps"))?;
    let caps: Vec<nudge_core::journey::FrequencyCap> = serde_json::from_value(integral_numbers(raw))
        .map_err(|e| ApiError::new("invalid_field", format!("caps: {e}")).with_field("caps"))?;
    state.app().set_frequency_caps(caps.clone()).await?;
    Ok(Json(json!({ "caps": caps })))
}

/// `POST /api/v1/journeys/{id}/runs` `{"to": {"email": ...}, "properties": {...},
/// "idempotency_key": "..."}`: starts a run of a live journey whose trigger is `api`
/// (a password-reset flow, an onboarding your backend decides on). `201` with the
/// run; `409` when no run starts (and why); the same key never starts two runs.
pub async fn start_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = journey_id(&id)?;
    let body = body_object(&body)?;
    only_fields(&body, &["to", "properties", "idempotency_key"])?;
    let engine = state
        .journeys
        .clone()
        .ok_or_else(|| ApiError::new("conflict", "the journey engine is not running on this server"))?;
    let journey = state
        .store
        .journey(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no journey {id}")))?;
    let to = crate::messages::to_of(&body)?;
    let properties = match body.get("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => return Err(ApiError::new("invalid_field", "properties must be an object").with_field("properties")),
    };
    let key = match opt_string(&body, "idempotency_key")? {
        Some(k) if !k.is_empty() && k.len() <= 255 => format!("api-{k}"),
        Some(_) => {
            return Err(
                ApiError::new("invalid_field", "idempotency_key must be 1 to 255 characters")
                    .with_field("idempotency_key"),
            );
        }
        None => format!("api-{}", nudge_app::messages::random_key()),
    };
    let contact = state.app().find_or_create_recipient(&to).await?;
    match engine.start_by_api(&journey, contact.id, properties, key).await? {
        Ok(run) => Ok((StatusCode::CREATED, Json(run_json(&run)))),
        Err(why) => Err(ApiError::new("conflict", format!("no run started: {why}"))),
    }
}

/// `POST /api/v1/journeys/{id}/dry-run`: replays the journey (its latest version, a
/// `version`, or a draft `definition`) over the recorded history of `[from, until]`
/// (default: the last 30 days) for `contacts` (ids), or for a sample of up to `sample`
/// contacts the trigger could have started (default 1000). Nothing is sent or
/// stored; see `nudge_app::App::dry_run`. Reports who would have entered, the steps
/// reached, what would have been sent, how runs would have ended, and the first
/// `paths` (default 20) runs step by step.
pub async fn dry_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    use nudge_app::journeys::{DRY_RUN_MAX_PATHS, DRY_RUN_MAX_SAMPLE, DefinitionSource, DryRun};
    let id = journey_id(&id)?;
    let body = if body.is_empty() {
        Map::new()
    } else {
        body_object(&body)?
    };
    only_fields(
        &body,
        &["from", "until", "contacts", "sample", "paths", "version", "definition"],
    )?;
    let app = state.app();
    // An unknown journey is reported before a problem with the body.
    app.journey(id).await?;
    let version = match body.get("version") {
        None => None,
        Some(v) => Some(
            as_int(v)
                .filter(|v| *v >= 1)
                .ok_or_else(|| ApiError::invalid("version", "version must be an integer from 1"))?,
        ),
    };
    // A draft's problems are the answer, after the request's other fields are checked.
    let (source, problems) = if body.contains_key("definition") {
        let draft = draft(&body)?;
        let problems = problems(&draft);
        (DefinitionSource::Draft(draft), problems)
    } else if let Some(v) = version {
        (DefinitionSource::Version(v), Vec::new())
    } else {
        (DefinitionSource::Latest, Vec::new())
    };
    let instant = |field: &str| -> Result<Option<i64>, ApiError> {
        match body.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => nudge_core::parse_instant(s).map(Some).ok_or_else(|| {
                ApiError::invalid(field, format!("{field} must be an ISO 8601 date or instant, got {s:?}"))
            }),
            Some(_) => Err(ApiError::invalid(field, format!("{field} must be a string"))),
        }
    };
    let count = |field: &str, default: usize, max: usize| -> Result<usize, ApiError> {
        match body.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => as_int(v)
                .filter(|n| *n >= 0 && *n as usize <= max)
                .map(|n| n as usize)
                .ok_or_else(|| ApiError::invalid(field, format!("{field} must be an integer from 0 to {max}"))),
        }
    };
    let contacts = match body.get("contacts") {
        None => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(as_int)
                .collect::<Option<Vec<i64>>>()
                .ok_or_else(|| ApiError::invalid("contacts", "contacts must be a list of contact ids"))?,
        ),
        Some(_) => return Err(ApiError::invalid("contacts", "contacts must be a list of contact ids")),
    };
    let request = DryRun {
        journey_id: id,
        definition: source,
        from: instant("from")?,
        until: instant("until")?,
        contacts,
        sample: count("sample", 1000, DRY_RUN_MAX_SAMPLE)?,
        paths: count("paths", 20, DRY_RUN_MAX_PATHS)?,
    };
    if !problems.is_empty() {
        // Nothing to replay: a draft with problems cannot run.
        return Ok(Json(json!({"journey_id": id, "valid": false, "problems": problems})));
    }
    let outcome = app.dry_run(request).await?;
    let report = &outcome.report;
    let mut out = serde_json::to_value(report).map_err(|e| ApiError::internal(e.to_string()))?;
    out["journey_id"] = json!(id);
    out["valid"] = json!(true);
    out["problems"] = json!([]);
    out["from"] = json!(format_millis(outcome.from));
    out["until"] = json!(format_millis(outcome.until));
    out["candidates"] = json!(outcome.candidates);
    out["paths"] = Value::Array(
        report
            .paths
            .iter()
            .map(|p| {
                json!({
                    "contact_id": p.contact_id,
                    "entered_at": format_millis(p.entered_at),
                    "steps": p.steps.iter().map(|(s, at)| json!({"step": s, "at": format_millis(*at)})).collect::<Vec<_>>(),
                    "finished": p.finished.as_ref().map(|(r, at)| json!({"reason": r, "at": format_millis(*at)})),
                })
            })
            .collect(),
    );
    if outcome.api_trigger {
        out["note"] = json!("an api trigger leaves no history to replay: nobody enters");
    }
    Ok(Json(out))
}
