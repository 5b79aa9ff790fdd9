//! Messages, written once for both backends: templates and their versions, the
//! outbox reads and writes both dialects accept, suppressions, settings and push
//! subscriptions. Claiming due messages (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//! several processes can deliver from one database) stays in the backends.

use crate::sql::{self, Arg, Db, SqlRow};
use crate::{
    NewPushSubscription, NewTemplate, PushSubscription, Result, StoreError, Suppression, Template, TemplateVersion,
};
use nudge_core::{ContactId, Millis};

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

/// Suppresses an address on a channel (addresses are stored lower-case), or changes
/// why it is suppressed.
pub(crate) async fn add_suppression<D: Db>(db: &D, s: &Suppression) -> Result<()> {
    db.execute(
        "INSERT INTO suppressions (channel, address, reason, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (channel, address) DO UPDATE SET reason = excluded.reason",
        &[
            Arg::Str(&s.channel),
            Arg::Str(&s.address.to_ascii_lowercase()),
            Arg::Str(&s.reason),
            Arg::I64(s.created_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn remove_suppression<D: Db>(db: &D, channel: &str, address: &str) -> Result<bool> {
    let n = db
        .execute(
            "DELETE FROM suppressions WHERE channel = $1 AND address = $2",
            &[Arg::Str(channel), Arg::Str(&address.to_ascii_lowercase())],
        )
        .await?;
    Ok(n > 0)
}

const SUPPRESSION_COLUMNS: &str = "channel, address, reason, created_at";

fn suppression_from_row(r: &SqlRow) -> Result<Suppression> {
    Ok(Suppression {
        channel: r.string(0)?,
        address: r.string(1)?,
        reason: r.string(2)?,
        created_at: r.i64(3)?,
    })
}

/// The suppressions of one channel, or of all.
pub(crate) async fn suppressions<D: Db>(db: &D, channel: Option<&str>) -> Result<Vec<Suppression>> {
    let sql = format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE CAST($1 AS TEXT) IS NULL OR channel = $1
         ORDER BY channel, address"
    );
    db.query(&sql, &[Arg::OptStr(channel)])
        .await?
        .iter()
        .map(suppression_from_row)
        .collect()
}

pub(crate) async fn suppression<D: Db>(db: &D, channel: &str, address: &str) -> Result<Option<Suppression>> {
    let sql = format!("SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE channel = $1 AND address = $2");
    sql::first(db, &sql, &[Arg::Str(channel), Arg::Str(&address.to_ascii_lowercase())])
        .await?
        .as_ref()
        .map(suppression_from_row)
        .transpose()
}

/// A setting's value, stored first as `value` if it has none.
pub(crate) async fn setting_or_init<D: Db>(db: &D, key: &str, value: &str) -> Result<String> {
    db.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[Arg::Str(key), Arg::Str(value)],
    )
    .await?;
    setting(db, key)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("setting {key} vanished")))
}

pub(crate) async fn setting<D: Db>(db: &D, key: &str) -> Result<Option<String>> {
    sql::first(db, "SELECT value FROM settings WHERE key = $1", &[Arg::Str(key)])
        .await?
        .map(|r| r.string(0))
        .transpose()
}

/// Stores a setting (`None` removes it).
pub(crate) async fn put_setting<D: Db>(db: &D, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => {
            db.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[Arg::Str(key), Arg::Str(v)],
            )
            .await?
        }
        None => {
            db.execute("DELETE FROM settings WHERE key = $1", &[Arg::Str(key)])
                .await?
        }
    };
    Ok(())
}

const PUSH_COLUMNS: &str = "id, contact_id, endpoint, p256dh, auth, user_agent, created_at, updated_at, last_used_at";

fn push_from_row(r: &SqlRow) -> Result<PushSubscription> {
    Ok(PushSubscription {
        id: r.i64(0)?,
        contact_id: r.i64(1)?,
        endpoint: r.string(2)?,
        p256dh: r.string(3)?,
        auth: r.string(4)?,
        user_agent: r.opt_string(5)?,
        created_at: r.i64(6)?,
        updated_at: r.i64(7)?,
        last_used_at: r.opt_i64(8)?,
    })
}

/// Stores a browser's push subscription for the contact (the one it was merged
/// into, if it was); an endpoint already stored moves to this contact with the new
/// keys. `None` if there is no such contact.
pub(crate) async fn add_push_subscription<D: Db>(
    db: &D,
    new: &NewPushSubscription,
    now: Millis,
) -> Result<Option<PushSubscription>> {
    let contact = db.current_id(new.contact_id).await?;
    // Locks the contact where the backend locks: an erasure running meanwhile either
    // sees this row or runs first (and then there is no contact to add to).
    let sql = format!("SELECT 1 FROM contacts WHERE id = $1{}", db.for_share());
    if sql::first(db, &sql, &[Arg::I64(contact)]).await?.is_none() {
        return Ok(None);
    }
    let sql = format!(
        "INSERT INTO push_subscriptions (contact_id, endpoint, p256dh, auth, user_agent, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (endpoint) DO UPDATE SET contact_id = excluded.contact_id, p256dh = excluded.p256dh,
             auth = excluded.auth, user_agent = excluded.user_agent, updated_at = excluded.updated_at
         RETURNING {PUSH_COLUMNS}"
    );
    let row = sql::first(
        db,
        &sql,
        &[
            Arg::I64(contact),
            Arg::Str(&new.endpoint),
            Arg::Str(&new.p256dh),
            Arg::Str(&new.auth),
            Arg::OptStr(new.user_agent.as_deref()),
            Arg::I64(now),
        ],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("a stored push subscription has no row".into()))?;
    push_from_row(&row).map(Some)
}

/// A contact's push subscriptions (those of the contact it was merged into, if it was).
pub(crate) async fn push_subscriptions<D: Db>(db: &D, contact: ContactId) -> Result<Vec<PushSubscription>> {
    let sql = format!(
        "SELECT {PUSH_COLUMNS} FROM push_subscriptions
         WHERE contact_id = COALESCE((SELECT into_id FROM contact_merges WHERE from_id = $1), $1) ORDER BY id"
    );
    db.query(&sql, &[Arg::I64(contact)])
        .await?
        .iter()
        .map(push_from_row)
        .collect()
}

pub(crate) async fn remove_push_subscription<D: Db>(db: &D, endpoint: &str) -> Result<bool> {
    let n = db
        .execute(
            "DELETE FROM push_subscriptions WHERE endpoint = $1",
            &[Arg::Str(endpoint)],
        )
        .await?;
    Ok(n > 0)
}

pub(crate) async fn push_subscription_used<D: Db>(db: &D, endpoint: &str, now: Millis) -> Result<()> {
    db.execute(
        "UPDATE push_subscriptions SET last_used_at = $1 WHERE endpoint = $2",
        &[Arg::I64(now), Arg::Str(endpoint)],
    )
    .await?;
    Ok(())
}
