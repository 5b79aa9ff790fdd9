//! Messages, written once for both backends: templates and their versions, the
//! outbox reads and writes both dialects accept, suppressions, settings and push
//! subscriptions. Claiming due messages (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
//! several processes can deliver from one database) stays in the backends.

use crate::exec::{self, MESSAGE_COLUMNS};
use crate::secrets::{self, Keyring};
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{
    LinkClicks, Message, MessageQuery, MessageState, MessageUpdate, NewMessage, NewPushSubscription, NewTemplate, Page,
    PushSubscription, Receipt, Result, StoreError, Suppression, Template, TemplateVersion, receipt_applies,
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
    sql::one(db, &sql, &[Arg::I64(id)], template_from_row).await
}

pub(crate) async fn template_by_name<D: Db>(db: &D, name: &str) -> Result<Option<Template>> {
    let sql = format!("SELECT {TEMPLATE_COLUMNS} WHERE t.name = $1");
    sql::one(db, &sql, &[Arg::Str(name)], template_from_row).await
}

pub(crate) async fn templates<D: Db>(db: &D) -> Result<Vec<Template>> {
    let sql = format!("SELECT {TEMPLATE_COLUMNS} ORDER BY t.id");
    sql::all(db, &sql, &[], template_from_row).await
}

/// A template's versions, newest first.
pub(crate) async fn template_versions<D: Db>(db: &D, id: i64) -> Result<Vec<TemplateVersion>> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM template_versions WHERE template_id = $1 ORDER BY version DESC");
    sql::all(db, &sql, &[Arg::I64(id)], version_from_row).await
}

pub(crate) async fn template_version<D: Db>(db: &D, id: i64, version: i64) -> Result<Option<TemplateVersion>> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM template_versions WHERE template_id = $1 AND version = $2");
    sql::one(db, &sql, &[Arg::I64(id), Arg::I64(version)], version_from_row).await
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

/// Stores messages in the outbox, in order (see `MessageStore::enqueue_messages`).
pub(crate) async fn enqueue_messages<D: Db>(db: &D, new: &[NewMessage], now: Millis) -> Result<Vec<(Message, bool)>> {
    let rules = db.rules().await?;
    let mut out = Vec::with_capacity(new.len());
    for m in new {
        out.push(exec::enqueue(db, &rules, m, now).await?);
    }
    Ok(out)
}

/// Stores a message in the outbox (see `MessageStore::enqueue_message`).
pub(crate) async fn enqueue_message<D: Db>(db: &D, new: &NewMessage, now: Millis) -> Result<(Message, bool)> {
    let rules = db.rules().await?;
    exec::enqueue(db, &rules, new, now).await
}

/// Records delivery attempts (see `MessageStore::update_messages`): the new state,
/// one more attempt, the lease released; a message queued again waits until its
/// retry, a final one records its state on the timeline; a suppressing failure
/// suppresses the recipient.
pub(crate) async fn update_messages<D: Db>(db: &D, updates: &[MessageUpdate], now: Millis) -> Result<()> {
    let rules = db.rules().await?;
    // `sent_at` is set when the message reaches `sent` or `delivered`, kept otherwise.
    let sql = "UPDATE messages SET state = $2, attempts = attempts + 1, next_attempt_at = $3, leased_until = NULL,
         recipient = coalesce($4, recipient), error = $5, rendered = coalesce($6, rendered),
         updated_at = $7, sent_at = coalesce($8, sent_at), provider_id = coalesce($9, provider_id)
         WHERE id = $1";
    let mut outcomes = Vec::with_capacity(updates.len());
    for u in updates {
        let next = match u.state {
            MessageState::Queued => Some(u.retry_at.unwrap_or(now)),
            _ => None,
        };
        let sent_at = matches!(u.state, MessageState::Sent | MessageState::Delivered).then_some(now);
        let args = [
            Arg::I64(u.id),
            Arg::Str(u.state.as_str()),
            Arg::OptI64(next),
            Arg::OptStr(u.recipient.as_deref()),
            Arg::OptStr(u.error.as_deref()),
            Arg::OptJson(u.rendered.as_ref()),
            Arg::I64(now),
            Arg::OptI64(sent_at),
            Arg::OptStr(u.provider_id.as_deref()),
        ];
        let Some(row) = db.update_row("messages", sql, &args, MESSAGE_COLUMNS).await? else {
            continue; // erased meanwhile
        };
        let after = exec::message_from_row(&row)?;
        if let (Some(reason), Some(recipient)) = (&u.suppress, &after.recipient) {
            suppress_once(db, &after.channel, recipient, reason, now).await?;
        }
        if after.state != MessageState::Queued {
            outcomes.push(after);
        }
    }
    exec::message_states(db, &rules, &outcomes, now).await
}

/// Applies a provider's receipt to the message it names (see
/// `MessageStore::record_receipt`); a bounce suppresses the recipient.
pub(crate) async fn record_receipt<D: Db>(db: &D, receipt: &Receipt, now: Millis) -> Result<Option<Message>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel = $1 AND provider_id = $2 ORDER BY id LIMIT 1{}",
        db.for_update()
    );
    let Some(row) = sql::first(db, &sql, &[Arg::Str(&receipt.channel), Arg::Str(&receipt.provider_id)]).await? else {
        return Ok(None);
    };
    let before = exec::message_from_row(&row)?;
    if !receipt_applies(before.state, receipt.state) {
        return Ok(Some(before));
    }
    let sql = format!(
        "UPDATE messages SET state = $2, error = coalesce($3, error), updated_at = $4 WHERE id = $1
         RETURNING {MESSAGE_COLUMNS}"
    );
    let row = sql::first(
        db,
        &sql,
        &[
            Arg::I64(before.id),
            Arg::Str(receipt.state.as_str()),
            Arg::OptStr(receipt.error.as_deref()),
            Arg::I64(now),
        ],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("message vanished".into()))?;
    let after = exec::message_from_row(&row)?;
    if receipt.state == MessageState::Bounced
        && let Some(recipient) = &after.recipient
    {
        suppress_once(db, &after.channel, recipient, "hard_bounce", now).await?;
    }
    let rules = db.rules().await?;
    exec::message_state(db, &rules, &after, now).await?;
    Ok(Some(after))
}

/// A page of the outbox, newest first.
pub(crate) async fn list_messages<D: Db>(db: &D, q: &MessageQuery) -> Result<Page<Message>> {
    let limit = q.limit.clamp(1, 1000);
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages
         WHERE (CAST($1 AS BIGINT) IS NULL OR contact_id = $1) AND (CAST($2 AS BIGINT) IS NULL OR template_id = $2)
           AND (CAST($3 AS TEXT) IS NULL OR state = $3) AND (CAST($4 AS BIGINT) IS NULL OR id < $4)
           AND (CAST($6 AS TEXT) IS NULL OR channel = $6) AND (CAST($7 AS BIGINT) IS NULL OR origin_journey_id = $7)
         ORDER BY id DESC LIMIT $5"
    );
    let mut items = db
        .query(
            &sql,
            &[
                Arg::OptI64(q.contact_id),
                Arg::OptI64(q.template_id),
                Arg::OptStr(q.state.map(MessageState::as_str)),
                Arg::OptI64(q.before),
                Arg::I64(limit as i64 + 1),
                Arg::OptStr(q.channel.as_deref()),
                Arg::OptI64(q.journey_id),
            ],
        )
        .await?
        .iter()
        .map(exec::message_from_row)
        .collect::<Result<Vec<_>>>()?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|m| m.id.to_string())
    } else {
        None
    };
    Ok(Page { items, next })
}

/// When the next waiting message is due: its next attempt, or the end of its lease
/// if that is later.
pub(crate) async fn next_message_due<D: Db>(db: &D) -> Result<Option<Millis>> {
    // The greater of the two, spelled so both dialects accept it (SQLite has no
    // `greatest`, PostgreSQL no two-argument `max`).
    let row = sql::first(
        db,
        "SELECT min(CASE WHEN coalesce(leased_until, 0) > next_attempt_at THEN coalesce(leased_until, 0)
                         ELSE next_attempt_at END)
         FROM messages WHERE next_attempt_at IS NOT NULL",
        &[],
    )
    .await?;
    Ok(row.map(|r| r.opt_i64(0)).transpose()?.flatten())
}

/// Releases every lease (at start-up: no delivery is under way).
pub(crate) async fn release_leases<D: Db>(db: &D) -> Result<u64> {
    db.execute(
        "UPDATE messages SET leased_until = NULL WHERE leased_until IS NOT NULL",
        &[],
    )
    .await
}

/// Suppresses an address on a channel unless it is already (keeping the first reason).
async fn suppress_once<D: Db>(db: &D, channel: &str, address: &str, reason: &str, now: Millis) -> Result<()> {
    db.execute(
        "INSERT INTO suppressions (channel, address, reason, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (channel, address) DO NOTHING",
        &[
            Arg::Str(channel),
            Arg::Str(&address.to_ascii_lowercase()),
            Arg::Str(reason),
            Arg::I64(now),
        ],
    )
    .await?;
    Ok(())
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
    sql::all(db, &sql, &[Arg::OptStr(channel)], suppression_from_row).await
}

pub(crate) async fn suppression<D: Db>(db: &D, channel: &str, address: &str) -> Result<Option<Suppression>> {
    let sql = format!("SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE channel = $1 AND address = $2");
    sql::one(
        db,
        &sql,
        &[Arg::Str(channel), Arg::Str(&address.to_ascii_lowercase())],
        suppression_from_row,
    )
    .await
}

/// A setting's value, stored first as `value` if it has none. Secret settings
/// ([`secrets::is_secret_setting`]) are stored sealed with `ring` and read back opened.
pub(crate) async fn setting_or_init<D: Db>(db: &D, ring: &Keyring, key: &str, value: &str) -> Result<String> {
    let stored = stored_form(ring, key, value);
    db.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[Arg::Str(key), Arg::Str(&stored)],
    )
    .await?;
    setting(db, ring, key)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("setting {key} vanished")))
}

pub(crate) async fn setting<D: Db>(db: &D, ring: &Keyring, key: &str) -> Result<Option<String>> {
    let stored = sql::first(db, "SELECT value FROM settings WHERE key = $1", &[Arg::Str(key)])
        .await?
        .map(|r| r.string(0))
        .transpose()?;
    Ok(match stored {
        // A secret written in clear by an older Nudge, before this process sealed it
        // at start ([`seal_settings`]), reads as it is.
        Some(v) if secrets::is_secret_setting(key) && v.starts_with(secrets::SEALED_PREFIX) => {
            Some(ring.open(&secrets::setting_aad(key), &v)?)
        }
        other => other,
    })
}

/// Stores a setting (`None` removes it); a secret one sealed with `ring`. A setting
/// that processes keep in memory moves its kind's version, in the same transaction
/// ([`crate::live`]).
pub(crate) async fn put_setting<D: Db>(db: &D, ring: &Keyring, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => {
            let stored = stored_form(ring, key, v);
            db.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[Arg::Str(key), Arg::Str(&stored)],
            )
            .await?
        }
        None => {
            db.execute("DELETE FROM settings WHERE key = $1", &[Arg::Str(key)])
                .await?
        }
    };
    if let Some(kind) = crate::live::ConfigKind::of_setting(key) {
        crate::live::changed(db, kind).await?;
    }
    Ok(())
}

/// What the settings table holds for `value`: sealed if `key` is a secret.
fn stored_form(ring: &Keyring, key: &str, value: &str) -> String {
    if secrets::is_secret_setting(key) {
        ring.seal(&secrets::setting_aad(key), value)
    } else {
        value.to_string()
    }
}

/// Brings every secret setting under `ring`'s current key: clear ones (an older
/// Nudge's) are sealed, ones sealed with another key of the ring (a rotation's old
/// key) are sealed again, and every sealed one is checked to open, so a wrong key is
/// an error here, at start, naming the key the database needs. Idempotent; returns
/// how many values it rewrote.
pub(crate) async fn seal_settings<D: Db>(db: &D, ring: &Keyring) -> Result<usize> {
    let rows = sql::all(db, "SELECT key, value FROM settings ORDER BY key", &[], |r| {
        Ok((r.string(0)?, r.string(1)?))
    })
    .await?;
    let mut rewritten = 0;
    for (key, value) in rows.iter().filter(|(k, _)| secrets::is_secret_setting(k)) {
        let aad = secrets::setting_aad(key);
        let clear = if value.starts_with(secrets::SEALED_PREFIX) {
            let clear = ring.open(&aad, value)?;
            if secrets::sealed_key_id(value) == Some(ring.current().id()) {
                continue;
            }
            clear
        } else {
            value.clone()
        };
        db.execute(
            "UPDATE settings SET value = $2 WHERE key = $1",
            &[Arg::Str(key), Arg::Str(&ring.seal(&aad, &clear))],
        )
        .await?;
        rewritten += 1;
    }
    Ok(rewritten)
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
    sql::all(db, &sql, &[Arg::I64(contact)], push_from_row).await
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

/// The clicks per link of one `link_clicks` owner (see `plan::link_owner`):
/// `(part, link)`, most clicked first.
pub(crate) async fn link_clicks<D: Db>(db: &D, owner: &str) -> Result<Vec<(String, LinkClicks)>> {
    sql::all(
        db,
        "SELECT part, url, clicks, unique_clicks FROM link_clicks WHERE owner = $1
         ORDER BY clicks DESC, part, url LIMIT 1000",
        &[Arg::Str(owner)],
        |r| {
            Ok((
                r.string(0)?,
                LinkClicks {
                    url: r.string(1)?,
                    clicks: r.i64(2)?.max(0) as u64,
                    unique_clicks: r.i64(3)?.max(0) as u64,
                },
            ))
        },
    )
    .await
}

/// A backend's `MessageStore`: the operations above, each in one transaction (or on a
/// read connection) through the backend's `$write!` / `$read!`, and the backend's own
/// methods (`{ ... }`: claiming the outbox).
macro_rules! impl_message_store {
    ($store:ty, $write:ident, $read:ident, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::MessageStore for $store {
            async fn create_template(&self, new: NewTemplate, now: Millis) -> Result<Template> {
                $write!(self, |db| $crate::shared::messages::create_template(db, &new, now))
            }

            async fn update_template(&self, id: i64, new: NewTemplate, now: Millis) -> Result<Option<Template>> {
                $write!(self, |db| $crate::shared::messages::update_template(db, id, &new, now))
            }

            async fn delete_template(&self, id: i64) -> Result<bool> {
                $write!(self, |db| $crate::shared::messages::delete_template(db, id))
            }

            async fn templates(&self) -> Result<Vec<Template>> {
                $read!(self, |db| $crate::shared::messages::templates(db))
            }

            async fn template(&self, id: i64) -> Result<Option<Template>> {
                $read!(self, |db| $crate::shared::messages::template(db, id))
            }

            async fn template_by_name(&self, name: &str) -> Result<Option<Template>> {
                let name = name.to_string();
                $read!(self, |db| $crate::shared::messages::template_by_name(db, &name))
            }

            async fn template_versions(&self, id: i64) -> Result<Vec<TemplateVersion>> {
                $read!(self, |db| $crate::shared::messages::template_versions(db, id))
            }

            async fn template_version(&self, id: i64, version: i64) -> Result<Option<TemplateVersion>> {
                $read!(self, |db| $crate::shared::messages::template_version(db, id, version))
            }

            async fn enqueue_messages(&self, new: Vec<NewMessage>, now: Millis) -> Result<Vec<(Message, bool)>> {
                $write!(self, |db| $crate::shared::messages::enqueue_messages(db, &new, now))
            }

            async fn enqueue_message(&self, new: NewMessage, now: Millis) -> Result<(Message, bool)> {
                $write!(self, |db| $crate::shared::messages::enqueue_message(db, &new, now))
            }

            async fn update_messages(&self, updates: Vec<MessageUpdate>, now: Millis) -> Result<()> {
                $write!(self, |db| $crate::shared::messages::update_messages(db, &updates, now))
            }

            async fn record_receipt(&self, receipt: Receipt, now: Millis) -> Result<Option<Message>> {
                $write!(self, |db| $crate::shared::messages::record_receipt(db, &receipt, now))
            }

            async fn message(&self, id: i64) -> Result<Option<Message>> {
                $read!(self, |db| $crate::exec::load_message(db, id))
            }

            async fn list_messages(&self, query: &MessageQuery) -> Result<Page<Message>> {
                let query = query.clone();
                $read!(self, |db| $crate::shared::messages::list_messages(db, &query))
            }

            async fn next_message_due(&self) -> Result<Option<Millis>> {
                $read!(self, |db| $crate::shared::messages::next_message_due(db))
            }

            async fn release_leases(&self) -> Result<u64> {
                $write!(self, |db| $crate::shared::messages::release_leases(db))
            }

            async fn record_message_event(
                &self,
                message: i64,
                event: &nudge_core::protocol::MessageEvent,
                key: String,
                now: Millis,
            ) -> Result<bool> {
                let event = event.clone();
                $write!(self, |db| $crate::exec::message_event(db, message, &event, key, now))
            }

            async fn answer_message(
                &self,
                message: i64,
                event: &nudge_core::protocol::MessageEvent,
                key: String,
                now: Millis,
            ) -> Result<$crate::Answer> {
                let event = event.clone();
                $write!(self, |db| $crate::exec::answer_message(db, message, &event, key, now))
            }

            async fn add_suppression(&self, s: Suppression) -> Result<()> {
                $write!(self, |db| $crate::shared::messages::add_suppression(db, &s))
            }

            async fn remove_suppression(&self, channel: &str, address: &str) -> Result<bool> {
                let (channel, address) = (channel.to_string(), address.to_string());
                $write!(self, |db| $crate::shared::messages::remove_suppression(db, &channel, &address))
            }

            async fn suppressions(&self, channel: Option<&str>) -> Result<Vec<Suppression>> {
                let channel = channel.map(str::to_string);
                $read!(self, |db| $crate::shared::messages::suppressions(db, channel.as_deref()))
            }

            async fn setting_or_init(&self, key: &str, value: &str) -> Result<String> {
                let (key, value, ring) = (key.to_string(), value.to_string(), self.keyring.get());
                $write!(self, |db| $crate::shared::messages::setting_or_init(db, &ring, &key, &value))
            }

            async fn setting(&self, key: &str) -> Result<Option<String>> {
                let (key, ring) = (key.to_string(), self.keyring.get());
                $read!(self, |db| $crate::shared::messages::setting(db, &ring, &key))
            }

            async fn put_setting(&self, key: &str, value: Option<&str>) -> Result<()> {
                let (key, value, ring) = (key.to_string(), value.map(str::to_string), self.keyring.get());
                $write!(self, |db| $crate::shared::messages::put_setting(db, &ring, &key, value.as_deref()))
            }

            async fn config_versions(&self) -> Result<$crate::live::ConfigVersions> {
                $read!(self, |db| $crate::live::versions(db))
            }

            async fn reseal_secrets(&self, ring: $crate::secrets::Keyring) -> Result<usize> {
                let sealing = std::sync::Arc::new(ring.clone());
                let n: Result<usize> = $write!(self, |db| $crate::shared::messages::seal_settings(db, &sealing));
                let n = n?;
                self.keyring.set($crate::secrets::Keyring::new(ring.current().clone()));
                Ok(n)
            }

            async fn add_push_subscription(&self, new: NewPushSubscription, now: Millis) -> Result<Option<PushSubscription>> {
                $write!(self, |db| $crate::shared::messages::add_push_subscription(db, &new, now))
            }

            async fn push_subscriptions(&self, contact: ContactId) -> Result<Vec<PushSubscription>> {
                $read!(self, |db| $crate::shared::messages::push_subscriptions(db, contact))
            }

            async fn remove_push_subscription(&self, endpoint: &str) -> Result<bool> {
                let endpoint = endpoint.to_string();
                $write!(self, |db| $crate::shared::messages::remove_push_subscription(db, &endpoint))
            }

            async fn push_subscription_used(&self, endpoint: &str, now: Millis) -> Result<()> {
                let endpoint = endpoint.to_string();
                $write!(self, |db| $crate::shared::messages::push_subscription_used(db, &endpoint, now))
            }

            async fn suppression(&self, channel: &str, address: &str) -> Result<Option<Suppression>> {
                let (channel, address) = (channel.to_string(), address.to_string());
                $read!(self, |db| $crate::shared::messages::suppression(db, &channel, &address))
            }

            $($own)*
        }
    };
}
pub(crate) use impl_message_store;
