//! Journeys on SQLite: every write goes through the writer thread, so a run's
//! transition, its timers, waits, messages and events commit together.

use super::*;
use super::db::SqliteDb;
use crate::sql::run_now;

const JOURNEY_COLUMNS: &str = "j.id, j.name, j.description, j.status, j.version, j.published_version, j.priority, \
     v.definition, j.created_at, j.updated_at, j.entries_scheduled";
const RUN_COLUMNS: &str = "id, journey_id, version, contact_id, step, state, entry_key, entered_at, updated_at, \
     finished_at, finish_reason, revision, error";

/// Stores a run and applies its first write; `None` if its entry key started one.
fn start_tx(tx: &Connection, cache: &mut IdCache, new: NewRun, first: RunWrite, now: Millis) -> Result<Option<Run>> {
    if let Some(key) = &new.entry_key {
        let exists = tx
            .prepare_cached("SELECT 1 FROM journey_runs WHERE journey_id = ? AND entry_key = ?")?
            .query_row(params![new.journey_id, key], |_| Ok(()))
            .optional()?
            .is_some();
        if exists {
            return Ok(None);
        }
    }
    let contact = current_id(tx, new.contact_id)?;
    tx.prepare_cached(
        "INSERT INTO journey_runs (journey_id, version, contact_id, status, step, state, entry_key, entered_at, updated_at)
         VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        new.journey_id,
        new.version,
        contact,
        first.step,
        first.state.to_string(),
        new.entry_key,
        now,
        now
    ])?;
    let id = tx.last_insert_rowid();
    apply_write(tx, cache, &RunWrite { run_id: id, ..first }, now)?;
    load_run(tx, id)
}

fn journey_from_row(r: &rusqlite::Row) -> rusqlite::Result<Journey> {
    let status: String = r.get(3)?;
    Ok(Journey {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        status: JourneyStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, format!("status {status}").into())
        })?,
        version: r.get(4)?,
        published_version: r.get(5)?,
        priority: r.get(6)?,
        definition: json_col(r, 7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        entries_scheduled: r.get(10)?,
    })
}

fn json_col(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Value> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

fn run_from_row(r: &rusqlite::Row) -> rusqlite::Result<Run> {
    Ok(Run {
        id: r.get(0)?,
        journey_id: r.get(1)?,
        version: r.get(2)?,
        contact_id: r.get(3)?,
        step: r.get(4)?,
        state: json_col(r, 5)?,
        entry_key: r.get(6)?,
        entered_at: r.get(7)?,
        updated_at: r.get(8)?,
        finished_at: r.get(9)?,
        finish_reason: r.get(10)?,
        revision: r.get(11)?,
        set_aside: r.get(12)?,
    })
}

fn load_journey(c: &Connection, id: i64) -> Result<Option<Journey>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {JOURNEY_COLUMNS} FROM journeys j JOIN journey_versions v ON v.journey_id = j.id AND v.version = j.version
         WHERE j.id = ?"
    ))?
    .query_row([id], journey_from_row)
    .optional()?)
}

fn load_run(c: &Connection, id: i64) -> Result<Option<Run>> {
    Ok(
        c.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM journey_runs WHERE id = ?"))?
            .query_row([id], run_from_row)
            .optional()?,
    )
}

fn name_taken(tx: &Connection, name: &str, except: Option<i64>) -> Result<()> {
    let taken: Option<i64> = tx
        .query_row("SELECT id FROM journeys WHERE name = ?", [name], |r| r.get(0))
        .optional()?;
    if taken.is_some() && taken != except {
        return Err(StoreError::Conflict(format!("a journey named {name:?} exists")));
    }
    Ok(())
}

/// Applies one transition (see [`crate::exec::apply_write`]); `false` if it was
/// computed from an older revision of the run than the stored one.
fn apply_write(tx: &Connection, cache: &mut IdCache, w: &RunWrite, now: Millis) -> Result<bool> {
    let rules = exec::rules(tx, cache)?;
    run_now(crate::exec::apply_write(&SqliteDb::new(tx, cache), &rules, w, now))
}

#[async_trait]
impl JourneyStore for SqliteStore {
    async fn create_journey(&self, new: NewJourney, now: Millis) -> Result<Journey> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            name_taken(&tx, &new.name, None)?;
            tx.execute(
                "INSERT INTO journeys (name, description, status, version, priority, created_at, updated_at)
                 VALUES (?, ?, 'draft', 1, ?, ?, ?)",
                params![new.name, new.description, new.priority, now, now],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO journey_versions (journey_id, version, definition, created_at) VALUES (?, 1, ?, ?)",
                params![id, new.definition.to_string(), now],
            )?;
            let j = load_journey(&tx, id)?.ok_or_else(|| StoreError::Corrupt("a new journey vanished".into()))?;
            tx.commit()?;
            Ok(j)
        })
        .await
    }

    async fn update_journey(&self, id: i64, new: NewJourney, now: Millis) -> Result<Option<Journey>> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            if load_journey(&tx, id)?.is_none() {
                return Ok(None);
            }
            name_taken(&tx, &new.name, Some(id))?;
            tx.execute(
                "UPDATE journeys SET name = ?, description = ?, priority = ?, version = version + 1, updated_at = ?
                 WHERE id = ?",
                params![new.name, new.description, new.priority, now, id],
            )?;
            tx.execute(
                "INSERT INTO journey_versions (journey_id, version, definition, created_at)
                 SELECT id, version, ?, ? FROM journeys WHERE id = ?",
                params![new.definition.to_string(), now, id],
            )?;
            let j = load_journey(&tx, id)?;
            tx.commit()?;
            Ok(j)
        })
        .await
    }

    async fn journeys(&self) -> Result<Vec<Journey>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {JOURNEY_COLUMNS} FROM journeys j
                 JOIN journey_versions v ON v.journey_id = j.id AND v.version = j.version ORDER BY j.id"
            ))?
            .query_map([], journey_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn journey(&self, id: i64) -> Result<Option<Journey>> {
        self.read(move |c| load_journey(c, id)).await
    }

    async fn journey_version(&self, id: i64, version: i64) -> Result<Option<JourneyVersion>> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT journey_id, version, definition, created_at FROM journey_versions WHERE journey_id = ? AND version = ?",
            )?
            .query_row(params![id, version], |r| {
                Ok(JourneyVersion {
                    journey_id: r.get(0)?,
                    version: r.get(1)?,
                    definition: json_col(r, 2)?,
                    created_at: r.get(3)?,
                })
            })
            .optional()?)
        })
        .await
    }

    async fn set_journey_status(
        &self,
        id: i64,
        status: JourneyStatus,
        publish: bool,
        now: Millis,
    ) -> Result<Option<Journey>> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE journeys SET status = ?, updated_at = ?,
                 published_version = CASE WHEN ? THEN version ELSE published_version END WHERE id = ?",
                params![status.as_str(), now, publish, id],
            )?;
            let j = load_journey(&tx, id)?;
            tx.commit()?;
            Ok(j)
        })
        .await
    }

    async fn start_runs(&self, runs: Vec<(NewRun, RunWrite)>, now: Millis) -> Result<Vec<Option<Run>>> {
        self.write(move |conn, cache| {
            let tx = conn.transaction()?;
            let mut out = Vec::with_capacity(runs.len());
            for (new, first) in runs {
                out.push(start_tx(&tx, cache, new, first, now)?);
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn set_run_aside(&self, run: i64, error: String, now: Millis) -> Result<bool> {
        self.write(move |conn, cache| {
            let tx = conn.transaction()?;
            let changed = run_now(crate::exec::set_run_aside(&SqliteDb::new(&tx, cache), run, &error, now))?;
            tx.commit()?;
            Ok(changed)
        })
        .await
    }

    async fn run(&self, id: i64) -> Result<Option<Run>> {
        self.read(move |c| load_run(c, id)).await
    }

    async fn runs(&self, ids: Vec<i64>) -> Result<Vec<Run>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM journey_runs WHERE id = ?"))?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(r) = stmt.query_row([id], run_from_row).optional()? {
                    out.push(r);
                }
            }
            out.sort_by_key(|r| r.id);
            Ok(out)
        })
        .await
    }

    async fn active_runs(&self, journey: i64, after: i64, limit: usize) -> Result<Vec<Run>> {
        self.read(move |c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM journey_runs WHERE journey_id = ? AND status = 'active' AND id > ?
                 ORDER BY id LIMIT ?"
            ))?
            .query_map(params![journey, after, limit as i64], run_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn contact_runs(&self, contact: ContactId, journey: Option<i64>) -> Result<Vec<Run>> {
        self.read(move |c| {
            let contact = current_id(c, contact)?;
            Ok(c.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM journey_runs WHERE contact_id = ?1 AND (?2 IS NULL OR journey_id = ?2) ORDER BY id"
            ))?
            .query_map(params![contact, journey], run_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn write_runs(&self, writes: Vec<RunWrite>, now: Millis) -> Result<Vec<i64>> {
        self.write(move |conn, cache| {
            let tx = conn.transaction()?;
            let mut stale = Vec::new();
            for w in &writes {
                if !apply_write(&tx, cache, w, now)? {
                    stale.push(w.run_id);
                }
            }
            tx.commit()?;
            Ok(stale)
        })
        .await
    }

    async fn claim_timers(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<DueTimer>> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            let mut due = tx
                .prepare_cached(
                    "UPDATE journey_timers SET leased_until = ?1 + ?2 WHERE rowid IN (
                         SELECT rowid FROM journey_timers WHERE due_at <= ?1
                           AND (leased_until IS NULL OR leased_until <= ?1)
                         ORDER BY due_at LIMIT ?3)
                     RETURNING run_id, key, due_at",
                )?
                .query_map(params![now, lease_ms, limit as i64], |r| {
                    Ok(DueTimer {
                        run_id: r.get(0)?,
                        key: r.get(1)?,
                        due_at: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            due.sort_by_key(|t| (t.due_at, t.run_id));
            Ok(due)
        })
        .await
    }

    async fn next_timer_due(&self) -> Result<Option<Millis>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT min(d) FROM (SELECT min(due_at) AS d FROM journey_timers
                   UNION ALL SELECT min(due_at) FROM journey_entry_timers)",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn waiting_runs(&self, contact: ContactId, event: &str) -> Result<Vec<Waiting>> {
        let event = event.to_string();
        self.read(move |c| {
            let contact = current_id(c, contact)?;
            Ok(c.prepare_cached(
                "SELECT run_id, event, match_value FROM journey_waits WHERE contact_id = ? AND event = ? ORDER BY run_id",
            )?
            .query_map(params![contact, event], |r| {
                Ok(Waiting {
                    run_id: r.get(0)?,
                    event: r.get(1)?,
                    match_value: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn runs_per_step(&self, journey: i64) -> Result<Vec<(String, i64)>> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT step, count(*) FROM journey_runs WHERE journey_id = ? AND status = 'active' AND step IS NOT NULL
                 GROUP BY step ORDER BY step",
            )?
            .query_map([journey], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn set_journey_event_names(&self, names: Vec<String>) -> Result<()> {
        self.write(move |conn, cache| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM journey_event_names", [])?;
            for n in &names {
                tx.execute("INSERT OR IGNORE INTO journey_event_names (name) VALUES (?)", [n])?;
            }
            tx.commit()?;
            cache.journey_events = None;
            Ok(())
        })
        .await
    }

    async fn claim_journey_inbox(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<InboxEvent>> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            let mut claimed = tx
                .prepare_cached(
                    "UPDATE journey_inbox SET leased_until = ?1 + ?2 WHERE id IN (
                         SELECT id FROM journey_inbox WHERE leased_until IS NULL OR leased_until <= ?1 ORDER BY id LIMIT ?3)
                     RETURNING id, contact_id, event_id, name, properties, at",
                )?
                .query_map(params![now, lease_ms, limit as i64], |r| {
                    Ok(InboxEvent {
                        id: r.get(0)?,
                        contact_id: r.get(1)?,
                        event_id: r.get(2)?,
                        name: r.get(3)?,
                        properties: json_col(r, 4)?,
                        at: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            claimed.sort_by_key(|e| e.id);
            Ok(claimed)
        })
        .await
    }

    async fn ack_journey_inbox(&self, ids: Vec<i64>) -> Result<()> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            {
                let mut del = tx.prepare_cached("DELETE FROM journey_inbox WHERE id = ?")?;
                for id in &ids {
                    del.execute([id])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn set_entry_timers(&self, journey: i64, timers: Vec<(ContactId, Option<Millis>)>) -> Result<()> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            {
                let mut set = tx.prepare_cached(
                    "INSERT INTO journey_entry_timers (journey_id, contact_id, due_at) VALUES (?, ?, ?)
                     ON CONFLICT (journey_id, contact_id) DO UPDATE SET due_at = excluded.due_at, leased_until = NULL",
                )?;
                let mut del =
                    tx.prepare_cached("DELETE FROM journey_entry_timers WHERE journey_id = ? AND contact_id = ?")?;
                for (contact, due) in &timers {
                    match due {
                        Some(due) => set.execute(params![journey, contact, due])?,
                        None => del.execute(params![journey, contact])?,
                    };
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn clear_entry_timers(&self, journey: i64) -> Result<()> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM journey_entry_timers WHERE journey_id = ?", [journey])?;
            tx.execute("UPDATE journeys SET entries_scheduled = NULL WHERE id = ?", [journey])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn mark_entries_scheduled(&self, journey: i64, version: i64) -> Result<()> {
        self.write(move |conn, _| {
            conn.execute(
                "UPDATE journeys SET entries_scheduled = ? WHERE id = ?",
                params![version, journey],
            )?;
            Ok(())
        })
        .await
    }

    async fn claim_entry_timers(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<EntryTimer>> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            let mut due = tx
                .prepare_cached(
                    "UPDATE journey_entry_timers SET leased_until = ?1 + ?2 WHERE (journey_id, contact_id) IN (
                         SELECT journey_id, contact_id FROM journey_entry_timers WHERE due_at <= ?1
                           AND (leased_until IS NULL OR leased_until <= ?1)
                         ORDER BY due_at LIMIT ?3)
                     RETURNING journey_id, contact_id, due_at",
                )?
                .query_map(params![now, lease_ms, limit as i64], |r| {
                    Ok(EntryTimer {
                        journey_id: r.get(0)?,
                        contact_id: r.get(1)?,
                        due_at: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            due.sort_by_key(|t| (t.due_at, t.journey_id, t.contact_id));
            Ok(due)
        })
        .await
    }

    async fn contacts_with_trait(
        &self,
        name: &str,
        after: ContactId,
        limit: usize,
    ) -> Result<Vec<(ContactId, Map<String, Value>)>> {
        let path = json_path(name);
        self.read(move |c| {
            let rows = c
                .prepare_cached(
                    "SELECT id, traits FROM contacts WHERE id > ? AND json_type(traits, ?) IS NOT NULL
                       AND json_type(traits, ?) != 'null' ORDER BY id LIMIT ?",
                )?
                .query_map(params![after, path, path, limit as i64], |r| {
                    Ok((r.get::<_, ContactId>(0)?, json_col(r, 1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .map(|(id, traits)| match traits {
                    Value::Object(m) => (id, m),
                    _ => (id, Map::new()),
                })
                .collect())
        })
        .await
    }

    async fn release_journey_leases(&self) -> Result<u64> {
        self.write(|conn, _| {
            let tx = conn.transaction()?;
            let n = tx.execute(
                "UPDATE journey_timers SET leased_until = NULL WHERE leased_until IS NOT NULL",
                [],
            )? + tx.execute(
                "UPDATE journey_entry_timers SET leased_until = NULL WHERE leased_until IS NOT NULL",
                [],
            )? + tx.execute(
                "UPDATE journey_inbox SET leased_until = NULL WHERE leased_until IS NOT NULL",
                [],
            )?;
            tx.commit()?;
            Ok(n as u64)
        })
        .await
    }

    async fn journey_stats(&self, journey: i64) -> Result<JourneyStats> {
        self.read(move |c| {
            let mut stats = JourneyStats::default();
            let mut by_outcome = c.prepare_cached(
                "SELECT finish_reason, count(*), coalesce(sum(revenue), 0.0) FROM journey_runs WHERE journey_id = ?
                 GROUP BY finish_reason",
            )?;
            for row in by_outcome.query_map([journey], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?, r.get::<_, f64>(2)?))
            })? {
                let (reason, n, revenue) = row?;
                stats.entered += n;
                stats.revenue += revenue;
                match reason {
                    None => stats.active += n,
                    Some(r) => {
                        stats.finished.insert(r, n);
                    }
                }
            }
            stats.conversions = stats.finished.get("goal").copied().unwrap_or(0);
            let mut steps = c.prepare_cached(
                "SELECT step, reached, sent, opened, clicked FROM journey_step_stats WHERE journey_id = ?",
            )?;
            for row in steps.query_map([journey], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    StepStats {
                        reached: r.get(1)?,
                        sent: r.get(2)?,
                        opened: r.get(3)?,
                        clicked: r.get(4)?,
                        active: 0,
                        exits: Default::default(),
                    },
                ))
            })? {
                let (step, s) = row?;
                stats.steps.insert(step, s);
            }
            let mut exits =
                c.prepare_cached("SELECT step, exit, passed FROM journey_exit_stats WHERE journey_id = ?")?;
            for row in exits.query_map([journey], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
            })? {
                let (step, exit, n) = row?;
                stats.steps.entry(step).or_default().exits.insert(exit, n);
            }
            let mut active = c.prepare_cached(
                "SELECT step, count(*) FROM journey_runs WHERE journey_id = ? AND status = 'active' AND step IS NOT NULL
                 GROUP BY step",
            )?;
            for row in active.query_map([journey], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (step, n) = row?;
                stats.steps.entry(step).or_default().active = n;
            }
            Ok(stats)
        })
        .await
    }
}
