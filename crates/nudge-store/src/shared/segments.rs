//! Segments, written once: reading definitions, and recording what the segment
//! engine's evaluations changed (memberships, history, `Segment Entered` / `Segment
//! Exited` events, the contact's next timer, answered dirty marks). Computing members
//! in SQL stays per backend: the compiled predicate is dialect-specific
//! (`segment_sql.rs`).

use crate::plan;
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{ContactEvaluation, MembershipChanges, Result, Segment, StoreError};
use nudge_core::protocol::{IdempotencyKey, TimelineEvent, event_names};
use nudge_core::segment::Condition;
use nudge_core::{ContactId, Millis};
use std::collections::{HashMap, HashSet};

pub(crate) const SEGMENT_COLUMNS: &str =
    "id, name, description, definition, version, created_at, updated_at, administrative";

pub(crate) fn segment_from_row(r: &SqlRow) -> Result<Segment> {
    let definition: Condition =
        serde_json::from_value(r.json(3)?).map_err(|e| StoreError::Corrupt(format!("segment definition: {e}")))?;
    Ok(Segment {
        id: r.i64(0)?,
        name: r.string(1)?,
        description: r.string(2)?,
        definition,
        version: r.i64(4)?,
        created_at: r.i64(5)?,
        updated_at: r.i64(6)?,
        administrative: r.bool(7)?,
    })
}

/// All segments (`None`) or one, by id.
pub(crate) async fn load<D: Db>(db: &D, id: Option<i64>) -> Result<Vec<Segment>> {
    let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE CAST($1 AS BIGINT) IS NULL OR id = $1 ORDER BY id");
    sql::all(db, &sql, &[Arg::OptI64(id)], segment_from_row).await
}

/// Records evaluations (see `SegmentStore::apply_evaluations`), in the caller's
/// transaction.
pub(crate) async fn apply_evaluations<D: Db>(
    db: &D,
    evals: Vec<ContactEvaluation>,
    now: Millis,
) -> Result<MembershipChanges> {
    let all = load(db, None).await?;
    // Segments other segments read: a change in one re-evaluates the contact.
    let referenced: HashSet<i64> = all
        .iter()
        .flat_map(|s| s.effective_definition(&all).segment_ids())
        .collect();
    let names: HashMap<i64, String> = all.into_iter().map(|s| (s.id, s.name)).collect();
    let rules = db.rules().await?;
    let mut changes = MembershipChanges::default();
    let mut seq = 0u64;
    let mut remark = Vec::new();
    for eval in evals {
        let contact = eval.contact_id;
        // Locked where the backend locks: a merge or erasure waits for this
        // evaluation, or this one sees the contact gone.
        let exists_sql = format!("SELECT 1 FROM contacts WHERE id = $1{}", db.for_update());
        let exists = sql::first(db, &exists_sql, &[Arg::I64(contact)]).await?.is_some();
        if exists {
            let current: HashSet<i64> = db
                .query(
                    "SELECT segment_id FROM segment_members WHERE contact_id = $1",
                    &[Arg::I64(contact)],
                )
                .await?
                .iter()
                .map(|r| r.i64(0))
                .collect::<Result<_>>()?;
            let timer = sql::first(
                db,
                "SELECT due_at FROM segment_timers WHERE contact_id = $1",
                &[Arg::I64(contact)],
            )
            .await?
            .map(|r| r.i64(0))
            .transpose()?;
            // The contact's next re-check: the earliest moment any membership may flip.
            let next = eval.results.iter().filter_map(|(_, _, next)| *next).min();
            match (next, timer) {
                (Some(due), Some(old)) if due == old => {}
                (Some(due), _) => {
                    db.execute(
                        "INSERT INTO segment_timers (contact_id, due_at) VALUES ($1, $2)
                         ON CONFLICT (contact_id) DO UPDATE SET due_at = excluded.due_at",
                        &[Arg::I64(contact), Arg::I64(due)],
                    )
                    .await?;
                }
                (None, Some(_)) => {
                    db.execute("DELETE FROM segment_timers WHERE contact_id = $1", &[Arg::I64(contact)])
                        .await?;
                }
                (None, None) => {}
            }
            for (segment, member, _) in &eval.results {
                let Some(name) = names.get(segment) else { continue };
                if *member != current.contains(segment) {
                    seq += 1;
                    if referenced.contains(segment) {
                        remark.push(contact);
                    }
                    record_change(db, &rules, *segment, name, contact, *member, now, seq).await?;
                    if *member {
                        changes.entered.push((*segment, contact));
                    } else {
                        changes.exited.push((*segment, contact));
                    }
                }
            }
        } else {
            for table in ["segment_timers", "segment_dirty"] {
                db.execute(
                    &format!("DELETE FROM {table} WHERE contact_id = $1"),
                    &[Arg::I64(contact)],
                )
                .await?;
            }
        }
        if let Some(since) = eval.dirty_since {
            db.execute(
                "DELETE FROM segment_dirty WHERE contact_id = $1 AND since <= $2",
                &[Arg::I64(contact), Arg::I64(since)],
            )
            .await?;
        }
    }
    // Segments reading the ones that just changed see the new memberships on the next
    // pass (definitions cannot form cycles, so this settles).
    remark.sort_unstable();
    remark.dedup();
    for contact in remark {
        db.mark_dirty(contact).await?;
    }
    Ok(changes)
}

/// A join or a leave: membership, history, and the timeline event (queued for the
/// journeys that act on it).
#[allow(clippy::too_many_arguments)]
async fn record_change<D: Db>(
    db: &D,
    rules: &plan::Rules,
    segment: i64,
    name: &str,
    contact: ContactId,
    entered: bool,
    now: Millis,
    seq: u64,
) -> Result<()> {
    let ids = [Arg::I64(segment), Arg::I64(contact), Arg::I64(now)];
    if entered {
        db.execute(
            "INSERT INTO segment_members (segment_id, contact_id, entered_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &ids,
        )
        .await?;
        db.execute(
            "INSERT INTO segment_history (segment_id, contact_id, entered_at) VALUES ($1, $2, $3)",
            &ids,
        )
        .await?;
    } else {
        db.execute(
            "DELETE FROM segment_members WHERE segment_id = $1 AND contact_id = $2",
            &ids[..2],
        )
        .await?;
        db.execute(
            "UPDATE segment_history SET exited_at = $3 WHERE segment_id = $1 AND contact_id = $2 AND exited_at IS NULL",
            &ids,
        )
        .await?;
    }
    let e = TimelineEvent {
        name: if entered {
            event_names::SEGMENT_ENTERED
        } else {
            event_names::SEGMENT_EXITED
        }
        .to_string(),
        properties: serde_json::json!({"segment_id": segment, "segment_name": name}),
        key: IdempotencyKey::segment_change(segment, contact, entered, now, seq, crate::unique_suffix()),
        counts: None,
    };
    crate::exec::event(db, &plan::segment_change(rules, contact, &e, now)).await?;
    Ok(())
}

/// Deletes a segment with its members and history; `false` if there is none. The
/// members of an administrative segment were kept out of every other segment: they
/// are marked for re-evaluation. Contacts' timers may now be early for the segments
/// left: harmless (the evaluation they cause finds nothing to change and sets the
/// next one).
pub(crate) async fn delete<D: Db>(db: &D, id: i64) -> Result<bool> {
    if load(db, Some(id)).await?.pop().is_some_and(|s| s.administrative) {
        let members = sql::all(
            db,
            "SELECT contact_id FROM segment_members WHERE segment_id = $1 ORDER BY contact_id",
            &[Arg::I64(id)],
            |r| r.i64(0),
        )
        .await?;
        for contact in members {
            db.mark_dirty(contact).await?;
        }
    }
    for table in ["segment_members", "segment_history"] {
        db.execute(&format!("DELETE FROM {table} WHERE segment_id = $1"), &[Arg::I64(id)])
            .await?;
    }
    Ok(db
        .execute("DELETE FROM segments WHERE id = $1", &[Arg::I64(id)])
        .await?
        > 0)
}

pub(crate) async fn one<D: Db>(db: &D, id: i64) -> Result<Option<Segment>> {
    Ok(load(db, Some(id)).await?.pop())
}

/// Current members of a stored segment, in id order, one page at a time.
pub(crate) async fn member_page<D: Db>(
    db: &D,
    id: i64,
    after: Option<ContactId>,
    limit: usize,
) -> Result<crate::Page<ContactId>> {
    let limit = limit.max(1);
    let mut ids: Vec<ContactId> = db
        .query(
            "SELECT contact_id FROM segment_members WHERE segment_id = $1 AND contact_id > $2
             ORDER BY contact_id LIMIT $3",
            &[Arg::I64(id), Arg::I64(after.unwrap_or(0)), Arg::I64((limit + 1) as i64)],
        )
        .await?
        .iter()
        .map(|r| r.i64(0))
        .collect::<Result<_>>()?;
    let next = if ids.len() > limit {
        ids.truncate(limit);
        ids.last().map(|i| i.to_string())
    } else {
        None
    };
    Ok(crate::Page { items: ids, next })
}

pub(crate) async fn size<D: Db>(db: &D, id: i64) -> Result<u64> {
    let row = sql::first(
        db,
        "SELECT count(*) FROM segment_members WHERE segment_id = $1",
        &[Arg::I64(id)],
    )
    .await?;
    Ok(row.map(|r| r.i64(0)).transpose()?.unwrap_or(0) as u64)
}

/// Members at each of the given instants, from the membership history.
pub(crate) async fn size_at<D: Db>(db: &D, id: i64, instants: Vec<Millis>) -> Result<Vec<(Millis, u64)>> {
    let mut out = Vec::with_capacity(instants.len());
    for t in instants {
        let row = sql::first(
            db,
            "SELECT count(*) FROM segment_history WHERE segment_id = $1 AND entered_at <= $2
             AND (exited_at IS NULL OR exited_at > $2)",
            &[Arg::I64(id), Arg::I64(t)],
        )
        .await?;
        out.push((t, row.map(|r| r.i64(0)).transpose()?.unwrap_or(0) as u64));
    }
    Ok(out)
}

/// A contact's stays in segments, newest first (current ones have no exit time).
pub(crate) async fn memberships<D: Db>(db: &D, contact: ContactId) -> Result<Vec<crate::Membership>> {
    let contact = db.current_id(contact).await?;
    db.query(
        "SELECT segment_id, contact_id, entered_at, exited_at FROM segment_history WHERE contact_id = $1
         ORDER BY entered_at DESC, id DESC",
        &[Arg::I64(contact)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(crate::Membership {
            segment_id: r.i64(0)?,
            contact_id: r.i64(1)?,
            entered_at: r.i64(2)?,
            exited_at: r.opt_i64(3)?,
        })
    })
    .collect()
}

/// The earliest pending segment timer.
pub(crate) async fn next_timer<D: Db>(db: &D) -> Result<Option<Millis>> {
    let row = sql::first(db, "SELECT min(due_at) FROM segment_timers", &[]).await?;
    Ok(row.map(|r| r.opt_i64(0)).transpose()?.flatten())
}

/// A backend's `SegmentStore`: the reads above through its `$read!`, and the rest
/// (`{ ... }`: computing members and facts in its dialect, saving segments, claiming
/// work, applying evaluations with its commit settings) of its own.
macro_rules! impl_segment_store {
    ($store:ty, $read:ident, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::SegmentStore for $store {
            async fn segments(&self) -> Result<Vec<Segment>> {
                $read!(self, |db| $crate::shared::segments::load(db, None))
            }

            async fn segment(&self, id: i64) -> Result<Option<Segment>> {
                $read!(self, |db| $crate::shared::segments::one(db, id))
            }

            async fn segment_member_page(&self, id: i64, after: Option<ContactId>, limit: usize) -> Result<Page<ContactId>> {
                $read!(self, |db| $crate::shared::segments::member_page(db, id, after, limit))
            }

            async fn segment_size(&self, id: i64) -> Result<u64> {
                $read!(self, |db| $crate::shared::segments::size(db, id))
            }

            async fn segment_size_at(&self, id: i64, instants: Vec<Millis>) -> Result<Vec<(Millis, u64)>> {
                $read!(self, |db| $crate::shared::segments::size_at(db, id, instants))
            }

            async fn contact_memberships(&self, contact: ContactId) -> Result<Vec<Membership>> {
                $read!(self, |db| $crate::shared::segments::memberships(db, contact))
            }

            async fn next_segment_timer(&self) -> Result<Option<Millis>> {
                $read!(self, |db| $crate::shared::segments::next_timer(db))
            }

            $($own)*
        }
    };
}
pub(crate) use impl_segment_store;
