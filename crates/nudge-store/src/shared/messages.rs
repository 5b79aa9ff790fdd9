//! Messages, written once for both backends: templates and their versions, the
//! outbox reads and writes both dialects accept, suppressions, settings and push
//! subscriptions. Claiming due messages (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//! several processes can deliver from one database) stays in the backends.

use crate::sql::{self, Arg, Db, SqlRow};
use crate::{NewTemplate, Result, StoreError, Template, TemplateVersion};
use nudge_core::Millis;

/// A template's columns with the content of its current version, and the join they
/// are read from (a query adds its `WHERE` or `ORDER BY`).
const TEMPLATE_COLUMNS: &str = "t.id, t.name, t.description, t.channel, t.version, t.transactional, t.topic, \
     v.content, t.created_at, t.updated_at FROM templates t JOIN template_versions v \
     ON v.template_id = t.id AND v.version = t.version";

fn template_from_row(r: &SqlRow) -> Result<Template> {
    Ok(Template {
        id: r.i64(0)?,
        name: r.string(1)?,
        description: r.string(2)?,
        channel: r.string(3)?,
        version: r.i64(4)?,
        transactional: r.bool(5)?,
        topic: r.opt_string(6)?,
        content: r.json(7)?,
        created_at: r.i64(8)?,
        updated_at: r.i64(9)?,
    })
}

const VERSION_COLUMNS: &str = "template_id, version, content, created_at";

fn version_from_row(r: &SqlRow) -> Result<TemplateVersion> {
    Ok(TemplateVersion {
        template_id: r.i64(0)?,
        version: r.i64(1)?,
        content: r.json(2)?,
        created_at: r.i64(3)?,
    })
}

pub(crate) async fn template<D: Db>(db: &D, id: i64) -> Result<Option<Template>> {
    let sql = format!("SELECT {TEMPLATE_COLUMNS} WHERE t.id = $1");
    sql::first(db, &sql, &[Arg::I64(id)])
        .await?
        .as_ref()
        .map(template_from_row)
        .transpose()
}

pub(crate) async fn template_by_name<D: Db>(db: &D, name: &str) -> Result<Option<Template>> {
    let sql = format!("SELECT {TEMPLATE_COLUMNS} WHERE t.name = $1");
    sql::first(db, &sql, &[Arg::Str(name)])
        .await?
        .as_ref()
        .map(template_from_row)
        .transpose()
}

pub(crate) async fn templates<D: Db>(db: &D) -> Result<Vec<Template>> {
    let sql = format!("SELECT {TEMPLATE_COLUMNS} ORDER BY t.id");
    db.query(&sql, &[]).await?.iter().map(template_from_row).collect()
}

/// A template's versions, newest first.
pub(crate) async fn template_versions<D: Db>(db: &D, id: i64) -> Result<Vec<TemplateVersion>> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM template_versions WHERE template_id = $1 ORDER BY version DESC");
    db.query(&sql, &[Arg::I64(id)])
        .await?
        .iter()
        .map(version_from_row)
        .collect()
}

pub(crate) async fn template_version<D: Db>(db: &D, id: i64, version: i64) -> Result<Option<TemplateVersion>> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM template_versions WHERE template_id = $1 AND version = $2");
    sql::first(db, &sql, &[Arg::I64(id), Arg::I64(version)])
        .await?
        .as_ref()
        .map(version_from_row)
        .transpose()
}

/// Creates a template (version 1).
pub(crate) async fn create_template<D: Db>(db: &D, new: &NewTemplate, now: Millis) -> Result<Template> {
    save_template(db, None, new, now)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a new template vanished".into()))
}

/// Stores a new version of a template; `None` if there is no such template.
pub(crate) async fn update_template<D: Db>(
    db: &D,
    id: i64,
    new: &NewTemplate,
    now: Millis,
) -> Result<Option<Template>> {
    save_template(db, Some(id), new, now).await
}

/// Creates a template (`id` `None`) or stores a new version of one. Names are
/// unique, and a template keeps its channel across versions (both a conflict).
async fn save_template<D: Db>(db: &D, id: Option<i64>, new: &NewTemplate, now: Millis) -> Result<Option<Template>> {
    // No other writer may take the name between the check and the write.
    db.lock_table("templates").await?;
    let taken = sql::first(db, "SELECT id FROM templates WHERE name = $1", &[Arg::Str(&new.name)])
        .await?
        .map(|r| r.i64(0))
        .transpose()?;
    if taken.is_some() && taken != id {
        return Err(StoreError::Conflict(format!("a template named {:?} exists", new.name)));
    }
    let (id, version) = match id {
        None => {
            let row = sql::first(
                db,
                "INSERT INTO templates (name, description, channel, version, transactional, topic, created_at, updated_at)
                 VALUES ($1, $2, $3, 1, $4, $5, $6, $6) RETURNING id",
                &[
                    Arg::Str(&new.name),
                    Arg::Str(&new.description),
                    Arg::Str(&new.channel),
                    Arg::Bool(new.transactional),
                    Arg::OptStr(new.topic.as_deref()),
                    Arg::I64(now),
                ],
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("a new template has no id".into()))?;
            (row.i64(0)?, 1)
        }
        Some(id) => {
            let Some(row) = sql::first(db, "SELECT channel FROM templates WHERE id = $1", &[Arg::I64(id)]).await?
            else {
                return Ok(None);
            };
            let channel = row.string(0)?;
            if channel != new.channel {
                return Err(StoreError::Conflict(format!(
                    "the template is for {channel}; a new version cannot change the channel to {}",
                    new.channel
                )));
            }
            let row = sql::first(
                db,
                "UPDATE templates SET name = $2, description = $3, version = version + 1, transactional = $4,
                 topic = $5, updated_at = $6 WHERE id = $1 RETURNING version",
                &[
                    Arg::I64(id),
                    Arg::Str(&new.name),
                    Arg::Str(&new.description),
                    Arg::Bool(new.transactional),
                    Arg::OptStr(new.topic.as_deref()),
                    Arg::I64(now),
                ],
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("a template vanished".into()))?;
            (id, row.i64(0)?)
        }
    };
    db.execute(
        "INSERT INTO template_versions (template_id, version, content, created_at) VALUES ($1, $2, $3, $4)",
        &[Arg::I64(id), Arg::I64(version), Arg::Json(&new.content), Arg::I64(now)],
    )
    .await?;
    template(db, id).await
}

/// Deletes a template and its versions, unless messages of it wait in the outbox.
pub(crate) async fn delete_template<D: Db>(db: &D, id: i64) -> Result<bool> {
    let waiting = sql::first(
        db,
        "SELECT count(*) FROM messages WHERE template_id = $1 AND next_attempt_at IS NOT NULL",
        &[Arg::I64(id)],
    )
    .await?
    .map(|r| r.i64(0))
    .transpose()?
    .unwrap_or(0);
    if waiting > 0 {
        return Err(StoreError::Conflict(format!(
            "{waiting} messages of this template wait in the outbox"
        )));
    }
    let n = db
        .execute("DELETE FROM templates WHERE id = $1", &[Arg::I64(id)])
        .await?;
    db.execute("DELETE FROM template_versions WHERE template_id = $1", &[Arg::I64(id)])
        .await?;
    Ok(n > 0)
}
