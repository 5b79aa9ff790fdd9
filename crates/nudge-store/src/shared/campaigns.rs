//! Campaigns, written once for both backends: the campaign row and its status, the
//! audience snapshot in bounded pages, due recipients and what became of them (their
//! messages go through the outbox's `enqueue`, so counters and timeline events follow
//! the same rules as every message), the winner, the counters.

use crate::campaigns::*;
use crate::exec;
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{Result, StoreError};
use nudge_core::campaign::{Audience, CampaignStatus, Schedule};
use nudge_core::protocol::CampaignCounter;
use nudge_core::{ContactId, Millis};
use serde_json::Value;

const COLUMNS: &str = "id, name, description, definition, status, schedule, versions, start_at, snapshot_done, \
     snapshot_cursor, test_ends_at, winner, decision, audience, held_out, queued, skipped, created_at, updated_at, \
     sent_at, completed_at";

fn from_row(r: &SqlRow) -> Result<Campaign> {
    let id = r.i64(0)?;
    let status = r.string(4)?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("campaign {id} {what}: {e}"));
    let schedule = r
        .opt_json(5)?
        .map(serde_json::from_value::<Schedule>)
        .transpose()
        .map_err(|e| corrupt("schedule", &e))?;
    let templates = r
        .opt_json(6)?
        .map(serde_json::from_value::<Vec<(i64, i64)>>)
        .transpose()
        .map_err(|e| corrupt("versions", &e))?
        .unwrap_or_default();
    let count = |i: usize| -> Result<u64> { Ok(r.i64(i)?.max(0) as u64) };
    Ok(Campaign {
        id,
        name: r.string(1)?,
        description: r.string(2)?,
        definition: r.json(3)?,
        status: CampaignStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        schedule,
        templates,
        start_at: r.opt_i64(7)?,
        snapshot_done: r.bool(8)?,
        snapshot_cursor: r.i64(9)?,
        test_ends_at: r.opt_i64(10)?,
        winner: r.opt_i64(11)?.map(|w| w.clamp(0, 255) as u8),
        decision: r.opt_json(12)?,
        audience: count(13)?,
        held_out: count(14)?,
        queued: count(15)?,
        skipped: count(16)?,
        created_at: r.i64(17)?,
        updated_at: r.i64(18)?,
        sent_at: r.opt_i64(19)?,
        completed_at: r.opt_i64(20)?,
    })
}

pub(crate) async fn get<D: Db>(db: &D, id: i64) -> Result<Option<Campaign>> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1");
    sql::one(db, &sql, &[Arg::I64(id)], from_row).await
}

pub(crate) async fn list<D: Db>(db: &D) -> Result<Vec<Campaign>> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns ORDER BY id DESC");
    sql::all(db, &sql, &[], from_row).await
}

/// The campaigns the engine works on: scheduled or sending.
pub(crate) async fn active<D: Db>(db: &D) -> Result<Vec<Campaign>> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE status IN ('scheduled', 'sending') ORDER BY id");
    sql::all(db, &sql, &[], from_row).await
}

/// `Conflict` if another campaign has the name.
async fn name_taken<D: Db>(db: &D, name: &str, except: Option<i64>) -> Result<()> {
    db.lock_table("campaigns").await?;
    let other = sql::first(db, "SELECT id FROM campaigns WHERE name = $1", &[Arg::Str(name)])
        .await?
        .map(|r| r.i64(0))
        .transpose()?;
    match other {
        Some(id) if Some(id) != except => Err(StoreError::Conflict(format!("a campaign named {name:?} exists"))),
        _ => Ok(()),
    }
}

pub(crate) async fn create<D: Db>(db: &D, new: NewCampaign, now: Millis) -> Result<Campaign> {
    name_taken(db, &new.name, None).await?;
    let id = db
        .insert(
            "INSERT INTO campaigns (name, description, definition, status, created_at, updated_at)
             VALUES ($1, $2, $3, 'draft', $4, $4)",
            &[
                Arg::Str(&new.name),
                Arg::Str(&new.description),
                Arg::Json(&new.definition),
                Arg::I64(now),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("a new campaign has no id".into()))?;
    get(db, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("campaign vanished".into()))
}

/// Edits a draft; `Conflict` once it was sent.
pub(crate) async fn update<D: Db>(db: &D, id: i64, new: NewCampaign, now: Millis) -> Result<Option<Campaign>> {
    let Some(current) = get(db, id).await? else {
        return Ok(None);
    };
    if current.status != CampaignStatus::Draft {
        return Err(StoreError::Conflict(format!(
            "a {} campaign cannot be edited; only a draft can",
            current.status.as_str()
        )));
    }
    name_taken(db, &new.name, Some(id)).await?;
    db.execute(
        "UPDATE campaigns SET name = $2, description = $3, definition = $4, updated_at = $5
         WHERE id = $1 AND status = 'draft'",
        &[
            Arg::I64(id),
            Arg::Str(&new.name),
            Arg::Str(&new.description),
            Arg::Json(&new.definition),
            Arg::I64(now),
        ],
    )
    .await?;
    get(db, id).await
}

/// Deletes a campaign that is not sending (its snapshot, counters and report rows with
/// it; the messages it queued stay in the outbox and on the timelines, and in the
/// channel's report). `Conflict` while it
/// is scheduled, sending or paused: cancel it first.
pub(crate) async fn delete<D: Db>(db: &D, id: i64) -> Result<bool> {
    let Some(current) = get(db, id).await? else {
        return Ok(false);
    };
    if matches!(
        current.status,
        CampaignStatus::Scheduled | CampaignStatus::Sending | CampaignStatus::Paused
    ) {
        return Err(StoreError::Conflict(format!(
            "a {} campaign cannot be deleted; cancel it first",
            current.status.as_str()
        )));
    }
    for table in ["campaign_recipients", "campaign_stats", "campaign_domains"] {
        db.execute(&format!("DELETE FROM {table} WHERE campaign_id = $1"), &[Arg::I64(id)])
            .await?;
    }
    db.execute(
        "DELETE FROM report_hourly WHERE scope = $1",
        &[Arg::Str(&crate::ReportScope::Campaign(id).key())],
    )
    .await?;
    Ok(db
        .execute("DELETE FROM campaigns WHERE id = $1", &[Arg::I64(id)])
        .await?
        > 0)
}

/// Moves a campaign from `from` to `to` (nothing if it is not in `from` any more:
/// `None`); with a launch, records the schedule, start and template versions.
pub(crate) async fn set_status<D: Db>(
    db: &D,
    id: i64,
    from: CampaignStatus,
    to: CampaignStatus,
    launch: Option<CampaignLaunch>,
    now: Millis,
) -> Result<Option<Campaign>> {
    let changed = match &launch {
        None => {
            db.execute(
                "UPDATE campaigns SET status = $3, updated_at = $4,
                 completed_at = CASE WHEN $3 IN ('completed', 'cancelled') THEN $4 ELSE completed_at END
                 WHERE id = $1 AND status = $2",
                &[
                    Arg::I64(id),
                    Arg::Str(from.as_str()),
                    Arg::Str(to.as_str()),
                    Arg::I64(now),
                ],
            )
            .await?
        }
        Some(l) => {
            let schedule = serde_json::to_value(&l.schedule).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let versions = serde_json::to_value(&l.templates).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            db.execute(
                "UPDATE campaigns SET status = $3, updated_at = $4, sent_at = $4, schedule = $5, start_at = $6,
                 versions = $7 WHERE id = $1 AND status = $2",
                &[
                    Arg::I64(id),
                    Arg::Str(from.as_str()),
                    Arg::Str(to.as_str()),
                    Arg::I64(now),
                    Arg::Json(&schedule),
                    Arg::I64(l.start_at),
                    Arg::Json(&versions),
                ],
            )
            .await?
        }
    };
    if changed == 0 {
        return Ok(None);
    }
    get(db, id).await
}

/// Up to `limit` members of the audience with ids above `after`, in id order: the
/// members of any of its segments, minus those of any excluded segment. Each segment
/// is read along its key from `after` on, so a page costs the same at the start and
/// the end of a million members.
pub(crate) async fn audience_page<D: Db>(
    db: &D,
    audience: &Audience,
    after: ContactId,
    limit: usize,
    with_time_zones: bool,
) -> Result<AudiencePage> {
    let mut ids: Vec<ContactId> = Vec::new();
    for segment in &audience.segments {
        let page = sql::all(
            db,
            "SELECT contact_id FROM segment_members WHERE segment_id = $1 AND contact_id > $2
             ORDER BY contact_id LIMIT $3",
            &[Arg::I64(*segment), Arg::I64(after), Arg::I64(limit as i64)],
            |r| r.i64(0),
        )
        .await?;
        ids.extend(page);
    }
    ids.sort_unstable();
    ids.dedup();
    ids.truncate(limit);
    let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
        return Ok(AudiencePage::default());
    };
    let mut excluded = std::collections::HashSet::new();
    for segment in &audience.exclude {
        let page = sql::all(
            db,
            "SELECT contact_id FROM segment_members WHERE segment_id = $1 AND contact_id BETWEEN $2 AND $3",
            &[Arg::I64(*segment), Arg::I64(first), Arg::I64(last)],
            |r| r.i64(0),
        )
        .await?;
        excluded.extend(page);
    }
    let mut zones = std::collections::HashMap::new();
    if with_time_zones {
        let rows = sql::all(
            db,
            "SELECT id, traits FROM contacts WHERE id BETWEEN $1 AND $2",
            &[Arg::I64(first), Arg::I64(last)],
            |r| Ok((r.i64(0)?, r.json(1)?)),
        )
        .await?;
        for (id, traits) in rows {
            if let Some(zone) = traits.as_object().and_then(|t| nudge_core::contact::time_zone(t, None)) {
                zones.insert(id, zone);
            }
        }
    }
    let members = ids
        .iter()
        .filter(|id| !excluded.contains(*id))
        .map(|&contact_id| AudienceMember {
            contact_id,
            time_zone: zones.remove(&contact_id),
        })
        .collect();
    // The last id read ends the page even when it was excluded, so a page that is all
    // excluded still moves the cursor.
    Ok(AudiencePage {
        members,
        cursor: Some(last),
    })
}

/// How many contacts the audience has now: members of any of its segments who are
/// in none of its exclusions, each once. One statement over the members table's key
/// (the editor's live count; the snapshot reads the same rows in pages when sending
/// starts, so the two agree when nothing changes in between).
pub(crate) async fn audience_size<D: Db>(db: &D, audience: &Audience) -> Result<u64> {
    if audience.segments.is_empty() {
        return Ok(0);
    }
    // Segment ids are integers, written into the statement (as in `due_recipients`).
    let list = |ids: &[i64]| ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let excluded = if audience.exclude.is_empty() {
        String::new()
    } else {
        format!(
            " AND NOT EXISTS (SELECT 1 FROM segment_members x WHERE x.contact_id = m.contact_id AND x.segment_id IN ({}))",
            list(&audience.exclude)
        )
    };
    let sql = format!(
        "SELECT count(DISTINCT m.contact_id) FROM segment_members m WHERE m.segment_id IN ({}){excluded}",
        list(&audience.segments)
    );
    let row = sql::first(db, &sql, &[]).await?;
    Ok(row.map(|r| r.i64(0)).transpose()?.unwrap_or(0).max(0) as u64)
}

/// Stores a page of the snapshot (a recipient stored before is left as it is) and
/// moves the snapshot's cursor; `done` marks the snapshot complete and sets when the
/// test ends.
pub(crate) async fn add_recipients<D: Db>(
    db: &D,
    id: i64,
    rows: &[NewRecipient],
    cursor: ContactId,
    done: Option<Option<Millis>>,
    now: Millis,
) -> Result<()> {
    let (mut added, mut held) = (0i64, 0i64);
    for r in rows {
        let state = if r.holdout { "held_out" } else { "pending" };
        let n = db
            .execute(
                "INSERT INTO campaign_recipients (campaign_id, contact_id, variant, state, due_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (campaign_id, contact_id) DO NOTHING",
                &[
                    Arg::I64(id),
                    Arg::I64(r.contact_id),
                    Arg::OptI64(r.variant.map(i64::from)),
                    Arg::Str(state),
                    Arg::OptI64(r.due_at),
                ],
            )
            .await? as i64;
        added += n;
        if r.holdout {
            held += n;
        }
    }
    db.execute(
        "UPDATE campaigns SET audience = audience + $2, held_out = held_out + $3,
         snapshot_cursor = CASE WHEN snapshot_cursor > $4 THEN snapshot_cursor ELSE $4 END,
         snapshot_done = $5, test_ends_at = coalesce(test_ends_at, $6), updated_at = $7 WHERE id = $1",
        &[
            Arg::I64(id),
            Arg::I64(added),
            Arg::I64(held),
            Arg::I64(cursor),
            Arg::Bool(done.is_some()),
            Arg::OptI64(done.flatten()),
            Arg::I64(now),
        ],
    )
    .await?;
    Ok(())
}

/// Up to `limit` pending recipients due by `now`, earliest first; the remainder only
/// once the winner is known (`with_remainder`). Each says whether the contact is still
/// in the audience (a member of one of its segments and of none of its exclusions):
/// one who left since the snapshot is skipped by the engine.
pub(crate) async fn due_recipients<D: Db>(
    db: &D,
    id: i64,
    audience: &Audience,
    now: Millis,
    with_remainder: bool,
    limit: usize,
) -> Result<Vec<DueRecipient>> {
    // Segment ids are integers, written into the statement; each test is a lookup
    // of the members table's key.
    let list = |ids: &[i64]| ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let member = if audience.segments.is_empty() {
        "FALSE".to_string()
    } else {
        format!(
            "EXISTS (SELECT 1 FROM segment_members m WHERE m.contact_id = r.contact_id AND m.segment_id IN ({}))",
            list(&audience.segments)
        )
    };
    let excluded = if audience.exclude.is_empty() {
        "FALSE".to_string()
    } else {
        format!(
            "EXISTS (SELECT 1 FROM segment_members x WHERE x.contact_id = r.contact_id AND x.segment_id IN ({}))",
            list(&audience.exclude)
        )
    };
    let sql = format!(
        "SELECT r.contact_id, r.variant, r.due_at, CASE WHEN {member} AND NOT {excluded} THEN 1 ELSE 0 END
         FROM campaign_recipients r
         WHERE r.campaign_id = $1 AND r.state = 'pending' AND r.due_at <= $2 AND (r.variant IS NOT NULL OR $3)
         ORDER BY r.due_at, r.contact_id LIMIT $4"
    );
    sql::all(
        db,
        &sql,
        &[
            Arg::I64(id),
            Arg::I64(now),
            Arg::Bool(with_remainder),
            Arg::I64(limit as i64),
        ],
        |r| {
            Ok(DueRecipient {
                contact_id: r.i64(0)?,
                variant: r.opt_i64(1)?.map(|v| v.clamp(0, 255) as u8),
                due_at: r.i64(2)?,
                in_audience: r.i64(3)? == 1,
            })
        },
    )
    .await
}

/// When the next pending recipient is due (the remainder only with the winner known).
pub(crate) async fn next_due<D: Db>(db: &D, id: i64, with_remainder: bool) -> Result<Option<Millis>> {
    let r = sql::first(
        db,
        "SELECT min(due_at) FROM campaign_recipients
         WHERE campaign_id = $1 AND state = 'pending' AND (variant IS NOT NULL OR $2)",
        &[Arg::I64(id), Arg::Bool(with_remainder)],
    )
    .await?;
    Ok(r.map(|r| r.opt_i64(0)).transpose()?.flatten())
}

/// Records what became of due recipients: messages queued through the outbox (their
/// counters and `Message Queued` events as for every message), deferrals, skips.
/// A recipient that is no longer pending (a round after a crash) is left alone.
pub(crate) async fn record_outcomes<D: Db>(db: &D, id: i64, outcomes: &[RecipientOutcome], now: Millis) -> Result<()> {
    let rules = db.rules().await?;
    let (mut queued, mut skipped) = (0i64, 0i64);
    // The messages in one batch (their counters added up and written once).
    let messages: Vec<&crate::NewMessage> = outcomes
        .iter()
        .filter_map(|o| match o {
            RecipientOutcome::Queue(m) => Some(m),
            _ => None,
        })
        .collect();
    for (message, (message_id, _)) in messages
        .iter()
        .zip(exec::enqueue_many(db, &rules, &messages, now).await?)
    {
        queued += db
            .execute(
                "UPDATE campaign_recipients SET state = 'queued', message_id = $3
                 WHERE campaign_id = $1 AND contact_id = $2 AND state = 'pending'",
                &[Arg::I64(id), Arg::I64(message.contact_id), Arg::I64(message_id)],
            )
            .await? as i64;
    }
    for o in outcomes {
        match o {
            RecipientOutcome::Queue(_) => {}
            RecipientOutcome::Defer { contact_id, until } => {
                db.execute(
                    "UPDATE campaign_recipients SET due_at = $3
                     WHERE campaign_id = $1 AND contact_id = $2 AND state = 'pending'",
                    &[Arg::I64(id), Arg::I64(*contact_id), Arg::I64(*until)],
                )
                .await?;
            }
            RecipientOutcome::Skip { contact_id, reason } => {
                skipped += db
                    .execute(
                        "UPDATE campaign_recipients SET state = 'skipped', reason = $3
                         WHERE campaign_id = $1 AND contact_id = $2 AND state = 'pending'",
                        &[Arg::I64(id), Arg::I64(*contact_id), Arg::Str(reason)],
                    )
                    .await? as i64;
            }
        }
    }
    db.execute(
        "UPDATE campaigns SET queued = queued + $2, skipped = skipped + $3, updated_at = $4 WHERE id = $1",
        &[Arg::I64(id), Arg::I64(queued), Arg::I64(skipped), Arg::I64(now)],
    )
    .await?;
    Ok(())
}

/// Records the test's winner once (`false` if one was chosen already).
pub(crate) async fn set_winner<D: Db>(db: &D, id: i64, winner: u8, decision: &Value, now: Millis) -> Result<bool> {
    Ok(db
        .execute(
            "UPDATE campaigns SET winner = $2, decision = $3, updated_at = $4 WHERE id = $1 AND winner IS NULL",
            &[
                Arg::I64(id),
                Arg::I64(i64::from(winner)),
                Arg::Json(decision),
                Arg::I64(now),
            ],
        )
        .await?
        > 0)
}

pub(crate) async fn stats<D: Db>(db: &D, id: i64) -> Result<CampaignStats> {
    let rows = sql::all(
        db,
        "SELECT variant, counter, value FROM campaign_stats WHERE campaign_id = $1",
        &[Arg::I64(id)],
        |r| Ok((r.i64(0)?, r.string(1)?, r.opt_f64(2)?.unwrap_or(0.0))),
    )
    .await?;
    let mut out = CampaignStats::default();
    for (variant, counter, value) in rows {
        let Some(c) = CampaignCounter::parse(&counter) else {
            continue;
        };
        if variant == crate::shared::conversions::HOLDOUT_VARIANT {
            out.holdout.insert(c.as_str(), value);
        } else if let Ok(v) = u8::try_from(variant) {
            out.variants.entry(v).or_default().insert(c.as_str(), value);
        }
    }
    Ok(out)
}

pub(crate) async fn links<D: Db>(db: &D, id: i64) -> Result<Vec<CampaignLink>> {
    let rows = crate::shared::messages::link_clicks(db, &crate::plan::campaign_links(id)).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(part, link)| {
            Some(CampaignLink {
                variant: part.parse().ok()?,
                link,
            })
        })
        .collect())
}

/// A recipient's row.
pub(crate) async fn recipient<D: Db>(db: &D, id: i64, contact: ContactId) -> Result<Option<Recipient>> {
    let contact = db.current_id(contact).await?;
    sql::one(
        db,
        "SELECT variant, state, reason, message_id FROM campaign_recipients WHERE campaign_id = $1 AND contact_id = $2",
        &[Arg::I64(id), Arg::I64(contact)],
        |r| {
            Ok(Recipient {
                variant: r.opt_i64(0)?.map(|v| v.clamp(0, 255) as u8),
                state: r.string(1)?,
                reason: r.opt_string(2)?,
                message_id: r.opt_i64(3)?,
            })
        },
    )
    .await
}

/// One delegation list for both backends.
macro_rules! impl_campaign_store {
    ($store:ty, $write:ident, $read:ident) => {
        #[async_trait::async_trait]
        impl $crate::CampaignStore for $store {
            async fn create_campaign(
                &self,
                new: $crate::NewCampaign,
                now: nudge_core::Millis,
            ) -> $crate::Result<$crate::Campaign> {
                $write!(self, |db| $crate::shared::campaigns::create(db, new, now))
            }
            async fn update_campaign(
                &self,
                id: i64,
                new: $crate::NewCampaign,
                now: nudge_core::Millis,
            ) -> $crate::Result<Option<$crate::Campaign>> {
                $write!(self, |db| $crate::shared::campaigns::update(db, id, new, now))
            }
            async fn delete_campaign(&self, id: i64) -> $crate::Result<bool> {
                $write!(self, |db| $crate::shared::campaigns::delete(db, id))
            }
            async fn campaigns(&self) -> $crate::Result<Vec<$crate::Campaign>> {
                $read!(self, |db| $crate::shared::campaigns::list(db))
            }
            async fn campaign(&self, id: i64) -> $crate::Result<Option<$crate::Campaign>> {
                $read!(self, |db| $crate::shared::campaigns::get(db, id))
            }
            async fn active_campaigns(&self) -> $crate::Result<Vec<$crate::Campaign>> {
                $read!(self, |db| $crate::shared::campaigns::active(db))
            }
            async fn set_campaign_status(
                &self,
                id: i64,
                from: nudge_core::campaign::CampaignStatus,
                to: nudge_core::campaign::CampaignStatus,
                launch: Option<$crate::CampaignLaunch>,
                now: nudge_core::Millis,
            ) -> $crate::Result<Option<$crate::Campaign>> {
                $write!(self, |db| $crate::shared::campaigns::set_status(
                    db, id, from, to, launch, now
                ))
            }
            async fn campaign_audience_page(
                &self,
                audience: nudge_core::campaign::Audience,
                after: nudge_core::ContactId,
                limit: usize,
                with_time_zones: bool,
            ) -> $crate::Result<$crate::AudiencePage> {
                $read!(self, |db| async move {
                    $crate::shared::campaigns::audience_page(db, &audience, after, limit, with_time_zones).await
                })
            }
            async fn campaign_audience_size(&self, audience: nudge_core::campaign::Audience) -> $crate::Result<u64> {
                $read!(self, |db| async move {
                    $crate::shared::campaigns::audience_size(db, &audience).await
                })
            }
            async fn add_campaign_recipients(
                &self,
                id: i64,
                rows: Vec<$crate::NewRecipient>,
                cursor: nudge_core::ContactId,
                done: Option<Option<nudge_core::Millis>>,
                now: nudge_core::Millis,
            ) -> $crate::Result<()> {
                $write!(self, |db| async move {
                    $crate::shared::campaigns::add_recipients(db, id, &rows, cursor, done, now).await
                })
            }
            async fn due_campaign_recipients(
                &self,
                id: i64,
                audience: nudge_core::campaign::Audience,
                now: nudge_core::Millis,
                with_remainder: bool,
                limit: usize,
            ) -> $crate::Result<Vec<$crate::DueRecipient>> {
                $read!(self, |db| async move {
                    $crate::shared::campaigns::due_recipients(db, id, &audience, now, with_remainder, limit).await
                })
            }
            async fn next_campaign_due(
                &self,
                id: i64,
                with_remainder: bool,
            ) -> $crate::Result<Option<nudge_core::Millis>> {
                $read!(self, |db| $crate::shared::campaigns::next_due(
                    db,
                    id,
                    with_remainder
                ))
            }
            async fn record_campaign_outcomes(
                &self,
                id: i64,
                outcomes: Vec<$crate::RecipientOutcome>,
                now: nudge_core::Millis,
            ) -> $crate::Result<()> {
                $write!(self, |db| async move {
                    $crate::shared::campaigns::record_outcomes(db, id, &outcomes, now).await
                })
            }
            async fn set_campaign_winner(
                &self,
                id: i64,
                winner: u8,
                decision: serde_json::Value,
                now: nudge_core::Millis,
            ) -> $crate::Result<bool> {
                $write!(self, |db| async move {
                    $crate::shared::campaigns::set_winner(db, id, winner, &decision, now).await
                })
            }
            async fn record_conversion(
                &self,
                conversion: $crate::NewConversion,
                settings: nudge_core::attribution::ConversionSettings,
                now: nudge_core::Millis,
            ) -> $crate::Result<Option<$crate::Conversion>> {
                $write!(self, |db| async move {
                    $crate::shared::conversions::record(db, &conversion, &settings, now).await
                })
            }
            async fn report_series(
                &self,
                scope: $crate::ReportScope,
                from: i64,
                until: i64,
            ) -> $crate::Result<Vec<(i64, nudge_core::protocol::CampaignCounter, f64)>> {
                $read!(self, |db| async move {
                    $crate::shared::conversions::report_series(db, &scope, from, until).await
                })
            }
            async fn report_totals(
                &self,
                from: i64,
                until: i64,
            ) -> $crate::Result<Vec<($crate::ReportScope, nudge_core::protocol::CampaignCounter, f64)>> {
                $read!(self, |db| $crate::shared::conversions::report_totals(
                    db, from, until
                ))
            }
            async fn campaign_domains(
                &self,
                campaign: i64,
            ) -> $crate::Result<Vec<(String, nudge_core::protocol::CampaignCounter, f64)>> {
                $read!(self, |db| $crate::shared::conversions::campaign_domains(
                    db, campaign
                ))
            }
            async fn campaign_stats(&self, id: i64) -> $crate::Result<$crate::CampaignStats> {
                $read!(self, |db| $crate::shared::campaigns::stats(db, id))
            }
            async fn campaign_links(&self, id: i64) -> $crate::Result<Vec<$crate::CampaignLink>> {
                $read!(self, |db| $crate::shared::campaigns::links(db, id))
            }
            async fn campaign_recipient(
                &self,
                id: i64,
                contact: nudge_core::ContactId,
            ) -> $crate::Result<Option<$crate::Recipient>> {
                $read!(self, |db| $crate::shared::campaigns::recipient(db, id, contact))
            }
        }
    };
}
pub(crate) use impl_campaign_store;
