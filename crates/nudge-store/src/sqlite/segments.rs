//! Segments on SQLite: definitions, full computation in SQL, live membership.

use super::db::SqliteDb;
use super::*;
use crate::sql::run_now;
use nudge_core::segment::Condition;

pub(super) use crate::plan::SegmentIndex;

/// What the saved segments read (see [`SegmentIndex`]).
fn load_index(c: &Connection) -> Result<SegmentIndex> {
    let all = load_segments(c, None)?;
    Ok(SegmentIndex::of(all.iter().map(|s| &s.definition)))
}

/// Marks a contact for re-evaluation by the segment worker.
pub(super) fn mark_dirty(c: &Connection, cache: &mut IdCache, contact: ContactId) -> Result<()> {
    if cache.dirty_seq == 0 {
        cache.dirty_seq = c.query_row("SELECT coalesce(max(since), 0) FROM segment_dirty", [], |r| r.get(0))?;
    }
    cache.dirty_seq += 1;
    c.prepare_cached(
        "INSERT INTO segment_dirty (contact_id, since) VALUES (?1, ?2)
         ON CONFLICT (contact_id) DO UPDATE SET since = excluded.since",
    )?
    .execute(params![contact, cache.dirty_seq])?;
    Ok(())
}

pub(super) fn segment_index(c: &Connection, cache: &mut IdCache) -> Result<Arc<SegmentIndex>> {
    if cache.segments.is_none() {
        cache.segments = Some(Arc::new(load_index(c)?));
    }
    Ok(cache.segments.clone().unwrap_or_default())
}

/// Keeps the `events_read_*` partial indexes in step with the segments: the ones their
/// definitions read (`segment_sql::event_indexes`) exist, the others are dropped (each
/// costs every matching insert). Building one scans the events table once.
pub(super) fn sync_event_indexes(c: &Connection) -> Result<()> {
    let mut wanted: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for s in load_segments(c, None)? {
        wanted.extend(crate::segment_sql::event_indexes(&s.definition));
    }
    let existing: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'events_read_%'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in existing.iter().filter(|n| !wanted.contains_key(*n)) {
        c.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
    }
    for (name, create) in &wanted {
        if !existing.contains(name) {
            let started = std::time::Instant::now();
            c.execute_batch(create)?;
            tracing::info!(index = %name, secs = started.elapsed().as_secs_f64(), "built an index for what segments read");
        }
    }
    Ok(())
}

pub(super) fn load_segments(c: &Connection, id: Option<i64>) -> Result<Vec<Segment>> {
    run_now(shared::segments::load(&SqliteDb::read(c), id))
}

fn to_sql_params(params: Vec<Param>) -> Vec<rusqlite::types::Value> {
    params
        .into_iter()
        .map(|p| match p {
            Param::Text(s) => rusqlite::types::Value::Text(s),
            Param::Real(f) => rusqlite::types::Value::Real(f),
            Param::Int(i) => rusqlite::types::Value::Integer(i),
        })
        .collect()
}

/// Recomputes a segment's members in SQL and records who entered and who left.
/// Everyone is also marked for the worker when the definition depends on time, so
/// it can schedule the moments memberships flip, and when other segments read this
/// one (administrative segments are read by all) or `mark_all` says so.
fn recompute(tx: &Transaction, cache: &mut IdCache, segment: &Segment, now: Millis, mark_all: bool) -> Result<()> {
    let all = load_segments(tx, None)?;
    let compiled = compile(&segment.effective_definition(&all), Dialect::Sqlite, now);
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS new_members (contact_id INTEGER PRIMARY KEY); DELETE FROM temp.new_members;",
    )?;
    tx.execute(
        &format!(
            "INSERT INTO temp.new_members SELECT c.id FROM contacts c WHERE {}",
            compiled.sql
        ),
        rusqlite::params_from_iter(to_sql_params(compiled.params)),
    )?;
    let id = segment.id;
    tx.execute(
        "UPDATE segment_history SET exited_at = ?2 WHERE segment_id = ?1 AND exited_at IS NULL
         AND contact_id NOT IN (SELECT contact_id FROM temp.new_members)",
        params![id, now],
    )?;
    tx.execute(
        "DELETE FROM segment_members WHERE segment_id = ?1 AND contact_id NOT IN (SELECT contact_id FROM temp.new_members)",
        [id],
    )?;
    tx.execute(
        "INSERT INTO segment_history (segment_id, contact_id, entered_at)
         SELECT ?1, n.contact_id, ?2 FROM temp.new_members n
         WHERE n.contact_id NOT IN (SELECT contact_id FROM segment_members WHERE segment_id = ?1)",
        params![id, now],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO segment_members (segment_id, contact_id, entered_at)
         SELECT ?1, contact_id, ?2 FROM temp.new_members",
        params![id, now],
    )?;
    tx.execute_batch("DELETE FROM temp.new_members")?;
    if crate::plan::segment_save_marks_all(segment, &all, mark_all) {
        let ids: Vec<ContactId> = tx
            .prepare("SELECT id FROM contacts")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for contact in ids {
            mark_dirty(tx, cache, contact)?;
        }
    }
    Ok(())
}

impl SqliteStore {
    pub async fn create_segment(&self, new: NewSegment, now: Millis) -> Result<Segment> {
        self.write(move |conn, cache| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO segments (name, description, definition, version, created_at, updated_at, administrative)
                 VALUES (?, ?, ?, 1, ?, ?, ?)",
                params![
                    new.name,
                    new.description,
                    serde_json::to_string(&new.definition).unwrap_or_default(),
                    now,
                    now,
                    new.administrative
                ],
            )?;
            let segment = Segment {
                id: tx.last_insert_rowid(),
                name: new.name,
                description: new.description,
                definition: new.definition,
                version: 1,
                administrative: new.administrative,
                created_at: now,
                updated_at: now,
            };
            cache.segments = None;
            // The index for what it reads first, so computing it uses the index.
            sync_event_indexes(&tx)?;
            recompute(&tx, cache, &segment, now, false)?;
            tx.commit()?;
            Ok(segment)
        })
        .await
    }

    /// Replaces a segment's name, description and definition; a new definition
    /// recomputes membership.
    pub async fn update_segment(&self, id: i64, new: NewSegment, now: Millis) -> Result<Option<Segment>> {
        self.write(move |conn, cache| {
            let tx = conn.transaction()?;
            let Some(current) = load_segments(&tx, Some(id))?.pop() else {
                return Ok(None);
            };
            let crate::plan::SegmentUpdate {
                segment,
                recompute: changed,
                flag_changed,
            } = crate::plan::segment_update(current, new, now);
            tx.execute(
                "UPDATE segments SET name = ?2, description = ?3, definition = ?4, version = ?5, updated_at = ?6,
                 administrative = ?7 WHERE id = ?1",
                params![
                    id,
                    segment.name,
                    segment.description,
                    serde_json::to_string(&segment.definition).unwrap_or_default(),
                    segment.version,
                    now,
                    segment.administrative
                ],
            )?;
            if changed {
                cache.segments = None;
                sync_event_indexes(&tx)?;
                // No longer administrative: everyone it kept out may now belong elsewhere.
                recompute(&tx, cache, &segment, now, flag_changed)?;
            }
            tx.commit()?;
            Ok(Some(segment))
        })
        .await
    }

    pub async fn delete_segment(&self, id: i64) -> Result<bool> {
        self.write(move |conn, cache| {
            let tx = conn.transaction()?;
            let deleted = {
                let db = &crate::sqlite::db::SqliteDb::new(&tx, cache);
                crate::sql::run_now(crate::shared::segments::delete(db, id))?
            };
            sync_event_indexes(&tx)?;
            tx.commit()?;
            cache.segments = None;
            Ok(deleted)
        })
        .await
    }

    /// Contacts to evaluate: marked dirty, or with a segment timer due at `now`.
    pub async fn claim_segment_work(&self, now: Millis, limit: usize) -> Result<Vec<SegmentWork>> {
        self.read(move |c| {
            let mut out: Vec<SegmentWork> = c
                .prepare_cached("SELECT contact_id, since FROM segment_dirty ORDER BY since LIMIT ?")?
                .query_map([limit as i64], |r| Ok(SegmentWork { contact_id: r.get(0)?, dirty_since: Some(r.get(1)?) }))?
                .collect::<rusqlite::Result<_>>()?;
            let seen: HashSet<ContactId> = out.iter().map(|w| w.contact_id).collect();
            let due: Vec<ContactId> = c
                .prepare_cached(
                    "SELECT DISTINCT contact_id FROM (SELECT contact_id FROM segment_timers WHERE due_at <= ? ORDER BY due_at LIMIT ?)",
                )?
                .query_map(params![now, limit as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            out.extend(due.into_iter().filter(|c| !seen.contains(c)).map(|contact_id| SegmentWork { contact_id, dirty_since: None }));
            Ok(out)
        })
        .await
    }

    /// Records evaluations: joins and leaves (with history and a `Segment Entered` /
    /// `Segment Exited` event on the contact's timeline), timers, and clears the dirty
    /// marks that were answered. One transaction.
    pub async fn apply_evaluations(&self, evals: Vec<ContactEvaluation>, now: Millis) -> Result<MembershipChanges> {
        let queued = std::time::Instant::now();
        self.write(move |conn, cache| {
            let started = std::time::Instant::now();
            // Evaluations can always be redone: if this commit were lost to a power
            // failure, the dirty marks it clears would be lost with it and the contacts
            // evaluated again. So it does not wait for an fsync of its own (the next
            // ingest commit's fsync covers it, WAL being sequential).
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let result = apply_tx(conn, cache, evals, now);
            conn.pragma_update(None, "synchronous", "FULL")?;
            tracing::trace!(
                queued_ms = (started - queued).as_secs_f64() * 1e3,
                ran_ms = started.elapsed().as_secs_f64() * 1e3,
                "apply evaluations"
            );
            result
        })
        .await
    }
}

fn apply_tx(
    conn: &mut Connection,
    cache: &mut IdCache,
    evals: Vec<ContactEvaluation>,
    now: Millis,
) -> Result<MembershipChanges> {
    let tx = conn.transaction()?;
    let changes = run_now(shared::segments::apply_evaluations(
        &SqliteDb::new(&tx, cache),
        evals,
        now,
    ))?;
    tx.commit()?;
    Ok(changes)
}

crate::shared::segments::impl_segment_store!(SqliteStore, sqlite_read, {
    async fn segment_members(&self, condition: &Condition, now: Millis) -> Result<Vec<ContactId>> {
        SqliteStore::segment_members(self, condition, now).await
    }
    async fn contact_facts(&self, id: ContactId) -> Result<Option<Facts>> {
        SqliteStore::contact_facts(self, id).await
    }
    async fn contacts_facts(&self, ids: Vec<ContactId>, events: Option<Vec<String>>) -> Result<Vec<Option<Facts>>> {
        SqliteStore::contacts_facts(self, ids, events).await
    }
    async fn create_segment(&self, new: NewSegment, now: Millis) -> Result<Segment> {
        SqliteStore::create_segment(self, new, now).await
    }
    async fn update_segment(&self, id: i64, new: NewSegment, now: Millis) -> Result<Option<Segment>> {
        SqliteStore::update_segment(self, id, new, now).await
    }
    async fn delete_segment(&self, id: i64) -> Result<bool> {
        SqliteStore::delete_segment(self, id).await
    }
    async fn claim_segment_work(&self, now: Millis, limit: usize) -> Result<Vec<SegmentWork>> {
        SqliteStore::claim_segment_work(self, now, limit).await
    }
    async fn apply_evaluations(&self, evals: Vec<ContactEvaluation>, now: Millis) -> Result<MembershipChanges> {
        SqliteStore::apply_evaluations(self, evals, now).await
    }
});
