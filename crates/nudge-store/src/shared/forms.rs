//! Forms, written once for both backends: the form rows, views, and a submission in
//! one transaction — the contact found by email (merged with the browser's anonymous
//! visitor, or becoming it, as `nudge_core::form::resolve_submitter` decides through
//! ingestion's own create, attach and merge), its traits and consents (a contact
//! patch, as the API's), the submission row, the `Form Submitted` event (with what
//! follows from it: journey inbox, segment marks) and, under double opt-in, the
//! confirmation messages through the outbox's `enqueue`.

use crate::exec;
use crate::forms::*;
use crate::plan;
use crate::shared::contacts;
use crate::shared::ingest::{self, Identities, Ingest};
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{ContactPatch, NewMessage, Page, Result, StoreError};
use nudge_core::form::{self, Submitter};
use nudge_core::protocol::{IdempotencyKey, TimelineEvent, event_names};
use nudge_core::{Identity, IdentityKind, Millis, Resolution};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const COLUMNS: &str = "id, name, slug, definition, views, submissions, created_at, updated_at";
const SUBMISSION_COLUMNS: &str = "id, form_id, contact_id, email, answers, consents, source, submitted_at";

fn from_row(r: &SqlRow) -> Result<Form> {
    let id = r.i64(0)?;
    let definition =
        serde_json::from_value(r.json(3)?).map_err(|e| StoreError::Corrupt(format!("form {id} definition: {e}")))?;
    Ok(Form {
        id,
        name: r.string(1)?,
        slug: r.string(2)?,
        definition,
        views: r.i64(4)?.max(0) as u64,
        submissions: r.i64(5)?.max(0) as u64,
        created_at: r.i64(6)?,
        updated_at: r.i64(7)?,
    })
}

fn submission_from_row(r: &SqlRow) -> Result<FormSubmission> {
    let answers = match r.json(4)? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let consents = serde_json::from_value(r.json(5)?).unwrap_or_default();
    Ok(FormSubmission {
        id: r.i64(0)?,
        form_id: r.i64(1)?,
        contact_id: r.i64(2)?,
        email: r.string(3)?,
        answers,
        consents,
        source: r.string(6)?,
        submitted_at: r.i64(7)?,
    })
}

fn definition_json(new: &NewForm) -> Result<Value> {
    serde_json::to_value(&new.definition).map_err(|e| StoreError::Corrupt(format!("form definition: {e}")))
}

pub(crate) async fn get<D: Db>(db: &D, id: i64) -> Result<Option<Form>> {
    let sql = format!("SELECT {COLUMNS} FROM forms WHERE id = $1");
    sql::one(db, &sql, &[Arg::I64(id)], from_row).await
}

pub(crate) async fn by_slug<D: Db>(db: &D, slug: &str) -> Result<Option<Form>> {
    let sql = format!("SELECT {COLUMNS} FROM forms WHERE slug = $1");
    sql::one(db, &sql, &[Arg::Str(slug)], from_row).await
}

pub(crate) async fn list<D: Db>(db: &D) -> Result<Vec<Form>> {
    let sql = format!("SELECT {COLUMNS} FROM forms ORDER BY id DESC");
    sql::all(db, &sql, &[], from_row).await
}

/// `Conflict` if another form has the name or the slug.
async fn taken<D: Db>(db: &D, new: &NewForm, except: Option<i64>) -> Result<()> {
    db.lock_table("forms").await?;
    let rows = sql::all(
        db,
        "SELECT id, name, slug FROM forms WHERE name = $1 OR slug = $2",
        &[Arg::Str(&new.name), Arg::Str(&new.slug)],
        |r| Ok((r.i64(0)?, r.string(1)?)),
    )
    .await?;
    for (id, name) in rows {
        if Some(id) != except {
            return Err(StoreError::Conflict(if name == new.name {
                format!("a form named {:?} exists", new.name)
            } else {
                format!("a form with the slug {:?} exists", new.slug)
            }));
        }
    }
    Ok(())
}

pub(crate) async fn create<D: Db>(db: &D, new: NewForm, now: Millis) -> Result<Form> {
    taken(db, &new, None).await?;
    let definition = definition_json(&new)?;
    let id = db
        .insert(
            "INSERT INTO forms (name, slug, definition, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
            &[
                Arg::Str(&new.name),
                Arg::Str(&new.slug),
                Arg::Json(&definition),
                Arg::I64(now),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("a new form has no id".into()))?;
    get(db, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("form vanished".into()))
}

pub(crate) async fn update<D: Db>(db: &D, id: i64, new: NewForm, now: Millis) -> Result<Option<Form>> {
    if get(db, id).await?.is_none() {
        return Ok(None);
    }
    taken(db, &new, Some(id)).await?;
    let definition = definition_json(&new)?;
    db.execute(
        "UPDATE forms SET name = $2, slug = $3, definition = $4, updated_at = $5 WHERE id = $1",
        &[
            Arg::I64(id),
            Arg::Str(&new.name),
            Arg::Str(&new.slug),
            Arg::Json(&definition),
            Arg::I64(now),
        ],
    )
    .await?;
    get(db, id).await
}

/// Deletes a form and its submissions (the contacts and their events stay).
pub(crate) async fn delete<D: Db>(db: &D, id: i64) -> Result<bool> {
    db.execute("DELETE FROM form_submissions WHERE form_id = $1", &[Arg::I64(id)])
        .await?;
    Ok(db.execute("DELETE FROM forms WHERE id = $1", &[Arg::I64(id)]).await? > 0)
}

pub(crate) async fn view<D: Db>(db: &D, id: i64) -> Result<bool> {
    Ok(db
        .execute("UPDATE forms SET views = views + 1 WHERE id = $1", &[Arg::I64(id)])
        .await?
        > 0)
}

/// A page of a form's submissions, newest first (`before`: ids below it).
pub(crate) async fn submissions<D: Db>(
    db: &D,
    form: i64,
    before: Option<i64>,
    limit: usize,
) -> Result<Page<FormSubmission>> {
    let limit = limit.clamp(1, 10_000);
    let sql = format!(
        "SELECT {SUBMISSION_COLUMNS} FROM form_submissions WHERE form_id = $1 AND id < $2 ORDER BY id DESC LIMIT {}",
        limit + 1
    );
    let mut items = sql::all(
        db,
        &sql,
        &[Arg::I64(form), Arg::I64(before.unwrap_or(i64::MAX))],
        submission_from_row,
    )
    .await?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|s| s.id.to_string())
    } else {
        None
    };
    Ok(Page { items, next })
}

/// Stores a submission (see the module's documentation); `None` if there is no such
/// form. Every write is in the caller's transaction.
pub(crate) async fn submit<D: Ingest>(db: &D, new: &NewSubmission, now: Millis) -> Result<Option<Submitted>> {
    let Some(form) = get(db, new.form_id).await? else {
        return Ok(None);
    };
    let rules = db.rules().await?;
    // Who submitted: the contact holding the email, and the browser's visitor.
    let by_email = match sql::first(
        db,
        "SELECT id FROM contacts WHERE email = $1 ORDER BY id LIMIT 1",
        &[Arg::Str(&new.email)],
    )
    .await?
    {
        Some(r) => submitter(db, r.i64(0)?).await?,
        None => None,
    };
    let anons: Vec<&str> = new.anonymous_id.as_deref().into_iter().collect();
    let found = db.identities(&[], &anons).await?;
    let mut ids = Identities::new(&[], &anons, found);
    let by_anonymous = match new.anonymous_id.as_deref() {
        Some(a) => match ids.get(IdentityKind::AnonymousId, a).flatten() {
            Some(k) => submitter(db, k.id).await?,
            None => None,
        },
        None => None,
    };
    let resolution = form::resolve_submitter(by_email.as_ref(), new.anonymous_id.as_deref(), by_anonymous.as_ref());
    let mut created_contact = false;
    let contact_id = match resolution {
        Resolution::Use(id) => id,
        Resolution::Create { with_anonymous } => {
            created_contact = true;
            let anon = new.anonymous_id.as_deref().filter(|_| with_anonymous);
            ingest::create_contact(db, Some(&mut ids), None, anon, now).await?
        }
        Resolution::Attach(id) => {
            // The email is attached by the traits below; the anonymous id, if it
            // belongs to nobody yet.
            if let Some(a) = new.anonymous_id.as_deref()
                && by_anonymous.is_none()
            {
                ingest::add_identity(db, id, &Identity::anonymous(a), now).await?;
                ids.set(IdentityKind::AnonymousId, a, id);
            }
            id
        }
        Resolution::Merge { from, into } => {
            ingest::merge(db, &rules, &mut ids, from, into, now).await?;
            into
        }
    };
    db.remember(&ids);
    let current = db
        .load_contact(contact_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("contact {contact_id} vanished")))?;
    // Consents: `pending` under double opt-in, unless subscribed already.
    let mut subscriptions = BTreeMap::new();
    for key in &new.consents {
        if let Some(to) = form::consent_state(new.confirm.is_some(), current.subscriptions.get(key).copied()) {
            subscriptions.insert(key.clone(), to);
        }
    }
    let pending: Vec<String> = subscriptions
        .iter()
        .filter(|(_, s)| **s == nudge_core::Subscription::Pending)
        .map(|(k, _)| k.clone())
        .collect();
    let patch = ContactPatch {
        traits: new.traits.clone(),
        subscriptions,
    };
    contacts::update(db, contact_id, &patch, now).await?;
    let answers = Value::Object(new.answers.clone());
    let consents = json!(new.consents);
    let id = db
        .insert(
            "INSERT INTO form_submissions (form_id, contact_id, email, answers, consents, source, submitted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                Arg::I64(form.id),
                Arg::I64(contact_id),
                Arg::Str(&new.email),
                Arg::Json(&answers),
                Arg::Json(&consents),
                Arg::Str(&new.source),
                Arg::I64(now),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("a new submission has no id".into()))?;
    db.execute(
        "UPDATE forms SET submissions = submissions + 1 WHERE id = $1",
        &[Arg::I64(form.id)],
    )
    .await?;
    let mut properties = new.answers.clone();
    properties.insert("form_id".into(), json!(form.id));
    properties.insert("form".into(), json!(form.name));
    properties.insert("submission_id".into(), json!(id));
    properties.insert("source".into(), json!(new.source));
    properties.insert("consents".into(), consents.clone());
    let event = TimelineEvent {
        name: event_names::FORM_SUBMITTED.into(),
        properties: Value::Object(properties),
        key: IdempotencyKey::form_submission(id),
        counts: None,
    };
    if exec::event(db, &plan::event(&rules, contact_id, &event, now)).await?
        && let Value::Object(properties) = &event.properties
    {
        // Scoring rules on form submissions (and on `Form Submitted` events) fire in
        // the submission's transaction, as for a tracked event.
        let happening = nudge_core::scoring::Happening::Track {
            event: event_names::FORM_SUBMITTED,
            properties,
        };
        crate::shared::scoring::apply(db, &rules, &[(contact_id, happening)], now).await?;
    }
    let mut confirmations = Vec::new();
    if let Some(confirm) = &new.confirm {
        for key in &pending {
            let message = NewMessage {
                idempotency_key: IdempotencyKey::form_confirmation(id, key).into_string(),
                contact_id,
                template_id: confirm.template_id,
                template_version: confirm.template_version,
                channel: confirm.channel.clone(),
                // The confirmation asks for consent: it is not marketing.
                transactional: true,
                data: json!({"data": answers, "confirm": key, "form": form.name}),
                origin: None,
            };
            let (m, _) = exec::enqueue(db, &rules, &message, now).await?;
            confirmations.push(m.id);
        }
    }
    Ok(Some(Submitted {
        submission: FormSubmission {
            id,
            form_id: form.id,
            contact_id,
            email: new.email.clone(),
            answers: new.answers.clone(),
            consents: new.consents.clone(),
            source: new.source.clone(),
            submitted_at: now,
        },
        created_contact,
        pending,
        confirmations,
    }))
}

/// A stored contact as `resolve_submitter` sees it (a merged-away id: its survivor).
async fn submitter<D: Db>(db: &D, id: i64) -> Result<Option<Submitter>> {
    let id = db.current_id(id).await?;
    Ok(db.load_contact(id).await?.map(|c| Submitter {
        id: c.id,
        known: c.user_id.is_some() || c.email.is_some(),
    }))
}

/// The delegation list of [`crate::FormStore`] for both backends (`submit_form` calls
/// the backend's inherent `submit`: PostgreSQL runs it again after a lost race, as
/// ingestion does).
macro_rules! impl_form_store {
    ($store:ty, $write:ident, $read:ident) => {
        #[async_trait::async_trait]
        impl $crate::FormStore for $store {
            async fn submit_form(
                &self,
                new: $crate::NewSubmission,
                now: nudge_core::Millis,
            ) -> $crate::Result<Option<$crate::Submitted>> {
                self.submit(new, now).await
            }
            async fn create_form(&self, new: $crate::NewForm, now: nudge_core::Millis) -> $crate::Result<$crate::Form> {
                $write!(self, |db| $crate::shared::forms::create(db, new, now))
            }
            async fn update_form(
                &self,
                id: i64,
                new: $crate::NewForm,
                now: nudge_core::Millis,
            ) -> $crate::Result<Option<$crate::Form>> {
                $write!(self, |db| $crate::shared::forms::update(db, id, new, now))
            }
            async fn delete_form(&self, id: i64) -> $crate::Result<bool> {
                $write!(self, |db| $crate::shared::forms::delete(db, id))
            }
            async fn forms(&self) -> $crate::Result<Vec<$crate::Form>> {
                $read!(self, |db| $crate::shared::forms::list(db))
            }
            async fn form(&self, id: i64) -> $crate::Result<Option<$crate::Form>> {
                $read!(self, |db| $crate::shared::forms::get(db, id))
            }
            async fn form_by_slug(&self, slug: &str) -> $crate::Result<Option<$crate::Form>> {
                let slug = slug.to_string();
                $read!(self, |db| $crate::shared::forms::by_slug(db, &slug))
            }
            async fn record_form_view(&self, id: i64) -> $crate::Result<bool> {
                $write!(self, |db| $crate::shared::forms::view(db, id))
            }
            async fn form_submissions(
                &self,
                form: i64,
                before: Option<i64>,
                limit: usize,
            ) -> $crate::Result<$crate::Page<$crate::FormSubmission>> {
                $read!(self, |db| $crate::shared::forms::submissions(
                    db, form, before, limit
                ))
            }
        }
    };
}
pub(crate) use impl_form_store;
