//! Journeys, written once: definitions and versions, starting and writing runs,
//! reading runs and waits, statistics. What stays per backend is what their SQL
//! cannot share: claiming with `SKIP LOCKED`, batch statements over arrays, the
//! event-name cache, JSON path queries.

use crate::exec;
use crate::journeys::*;
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{Result, StoreError};
use nudge_core::{ContactId, Millis};
use serde_json::Value;

const JOURNEY_COLUMNS: &str = "j.id, j.name, j.description, j.status, j.version, j.published_version, j.priority, \
     v.definition, j.created_at, j.updated_at, j.entries_scheduled";
const JOURNEY_FROM: &str = "FROM journeys j JOIN journey_versions v ON v.journey_id = j.id AND v.version = j.version";
pub(crate) const RUN_COLUMNS: &str = "id, journey_id, version, contact_id, step, state, entry_key, entered_at, \
     updated_at, finished_at, finish_reason, revision, error";

fn journey_from_row(r: &SqlRow) -> Result<Journey> {
    let status = r.string(3)?;
    Ok(Journey {
        id: r.i64(0)?,
        name: r.string(1)?,
        description: r.string(2)?,
        status: JourneyStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("journey status {status}")))?,
        version: r.i64(4)?,
        published_version: r.opt_i64(5)?,
        priority: r.i64(6)?,
        definition: r.json(7)?,
        created_at: r.i64(8)?,
        updated_at: r.i64(9)?,
        entries_scheduled: r.opt_i64(10)?,
    })
}

pub(crate) fn run_from_row(r: &SqlRow) -> Result<Run> {
    Ok(Run {
        id: r.i64(0)?,
        journey_id: r.i64(1)?,
        version: r.i64(2)?,
        contact_id: r.i64(3)?,
        step: r.opt_string(4)?,
        // A state that is not even JSON (SQLite keeps text) is handed on as the text,
        // so the engine sets the run aside like any unreadable state instead of the
        // read failing for every run of the contact.
        state: match r.json(5) {
            Ok(v) => v,
            Err(_) => Value::String(r.string(5)?),
        },
        entry_key: r.opt_string(6)?,
        entered_at: r.i64(7)?,
        updated_at: r.i64(8)?,
        finished_at: r.opt_i64(9)?,
        finish_reason: r.opt_string(10)?,
        revision: r.i64(11)?,
        set_aside: r.opt_string(12)?,
    })
}

async fn runs_where<D: Db>(db: &D, condition: &str, args: &[Arg<'_>]) -> Result<Vec<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM journey_runs WHERE {condition}");
    sql::all(db, &sql, args, run_from_row).await
}

pub(crate) async fn journey<D: Db>(db: &D, id: i64) -> Result<Option<Journey>> {
    let sql = format!("SELECT {JOURNEY_COLUMNS} {JOURNEY_FROM} WHERE j.id = $1");
    sql::one(db, &sql, &[Arg::I64(id)], journey_from_row).await
}

pub(crate) async fn journeys<D: Db>(db: &D) -> Result<Vec<Journey>> {
    let sql = format!("SELECT {JOURNEY_COLUMNS} {JOURNEY_FROM} ORDER BY j.id");
    sql::all(db, &sql, &[], journey_from_row).await
}

/// `Conflict` if another journey has the name.
async fn name_taken<D: Db>(db: &D, name: &str, except: Option<i64>) -> Result<()> {
    db.lock_table("journeys").await?;
    let taken = sql::first(db, "SELECT id FROM journeys WHERE name = $1", &[Arg::Str(name)])
        .await?
        .map(|r| r.i64(0))
        .transpose()?;
    if taken.is_some() && taken != except {
        return Err(StoreError::Conflict(format!("a journey named {name:?} exists")));
    }
    Ok(())
}

pub(crate) async fn create<D: Db>(db: &D, new: NewJourney, now: Millis) -> Result<Journey> {
    name_taken(db, &new.name, None).await?;
    let id = sql::first(
        db,
        "INSERT INTO journeys (name, description, status, version, priority, created_at, updated_at)
         VALUES ($1, $2, 'draft', 1, $3, $4, $4) RETURNING id",
        &[
            Arg::Str(&new.name),
            Arg::Str(&new.description),
            Arg::I64(new.priority),
            Arg::I64(now),
        ],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("a new journey has no id".into()))?
    .i64(0)?;
    db.execute(
        "INSERT INTO journey_versions (journey_id, version, definition, created_at) VALUES ($1, 1, $2, $3)",
        &[Arg::I64(id), Arg::Json(&new.definition), Arg::I64(now)],
    )
    .await?;
    journey(db, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a new journey vanished".into()))
}

pub(crate) async fn update<D: Db>(db: &D, id: i64, new: NewJourney, now: Millis) -> Result<Option<Journey>> {
    if journey(db, id).await?.is_none() {
        return Ok(None);
    }
    name_taken(db, &new.name, Some(id)).await?;
    let Some(row) = sql::first(
        db,
        "UPDATE journeys SET name = $2, description = $3, priority = $4, version = version + 1, updated_at = $5
         WHERE id = $1 RETURNING version",
        &[
            Arg::I64(id),
            Arg::Str(&new.name),
            Arg::Str(&new.description),
            Arg::I64(new.priority),
            Arg::I64(now),
        ],
    )
    .await?
    else {
        return Ok(None);
    };
    db.execute(
        "INSERT INTO journey_versions (journey_id, version, definition, created_at) VALUES ($1, $2, $3, $4)",
        &[
            Arg::I64(id),
            Arg::I64(row.i64(0)?),
            Arg::Json(&new.definition),
            Arg::I64(now),
        ],
    )
    .await?;
    journey(db, id).await
}

pub(crate) async fn version<D: Db>(db: &D, id: i64, version: i64) -> Result<Option<JourneyVersion>> {
    let Some(r) = sql::first(
        db,
        "SELECT journey_id, version, definition, created_at FROM journey_versions WHERE journey_id = $1 AND version = $2",
        &[Arg::I64(id), Arg::I64(version)],
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(JourneyVersion {
        journey_id: r.i64(0)?,
        version: r.i64(1)?,
        definition: r.json(2)?,
        created_at: r.i64(3)?,
    }))
}

pub(crate) async fn set_status<D: Db>(
    db: &D,
    id: i64,
    status: JourneyStatus,
    publish: bool,
    now: Millis,
) -> Result<Option<Journey>> {
    db.execute(
        "UPDATE journeys SET status = $2, updated_at = $3,
         published_version = CASE WHEN $4 THEN version ELSE published_version END WHERE id = $1",
        &[
            Arg::I64(id),
            Arg::Str(status.as_str()),
            Arg::I64(now),
            Arg::Bool(publish),
        ],
    )
    .await?;
    journey(db, id).await
}

/// Stores runs and applies their first writes; `None` for a run whose entry key
/// started one already.
pub(crate) async fn start_runs<D: Db>(db: &D, runs: Vec<(NewRun, RunWrite)>, now: Millis) -> Result<Vec<Option<Run>>> {
    let rules = db.rules().await?;
    let mut out = Vec::with_capacity(runs.len());
    for (new, first) in runs {
        let contact = db.current_id(new.contact_id).await?;
        let Some(id) = db
            .insert(
            "INSERT INTO journey_runs (journey_id, version, contact_id, status, step, state, entry_key, entered_at, updated_at)
             VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $7)
             ON CONFLICT (journey_id, entry_key) WHERE entry_key IS NOT NULL DO NOTHING",
            &[
                Arg::I64(new.journey_id),
                Arg::I64(new.version),
                Arg::I64(contact),
                Arg::OptStr(first.step.as_deref()),
                Arg::Json(&first.state),
                Arg::OptStr(new.entry_key.as_deref()),
                Arg::I64(now),
            ],
        )
        .await?
        else {
            out.push(None);
            continue;
        };
        exec::apply_write(db, &rules, &RunWrite { run_id: id, ..first }, now).await?;
        out.push(run(db, id).await?);
    }
    Ok(out)
}

/// Applies transitions (see `JourneyStore::write_runs`); the stale ones' ids.
pub(crate) async fn write_runs<D: Db>(db: &D, writes: &[RunWrite], now: Millis) -> Result<Vec<i64>> {
    let rules = db.rules().await?;
    let mut stale = Vec::new();
    for w in writes {
        if !exec::apply_write(db, &rules, w, now).await? {
            stale.push(w.run_id);
        }
    }
    Ok(stale)
}

pub(crate) async fn run<D: Db>(db: &D, id: i64) -> Result<Option<Run>> {
    Ok(runs_where(db, "id = $1", &[Arg::I64(id)]).await?.pop())
}

pub(crate) async fn active_runs<D: Db>(db: &D, journey: i64, after: i64, limit: usize) -> Result<Vec<Run>> {
    runs_where(
        db,
        "journey_id = $1 AND status = 'active' AND id > $2 ORDER BY id LIMIT $3",
        &[Arg::I64(journey), Arg::I64(after), Arg::I64(limit as i64)],
    )
    .await
}

pub(crate) async fn contact_runs<D: Db>(db: &D, contact: ContactId, journey: Option<i64>) -> Result<Vec<Run>> {
    let contact = db.current_id(contact).await?;
    runs_where(
        db,
        "contact_id = $1 AND (CAST($2 AS BIGINT) IS NULL OR journey_id = $2) ORDER BY id",
        &[Arg::I64(contact), Arg::OptI64(journey)],
    )
    .await
}

pub(crate) async fn next_timer_due<D: Db>(db: &D) -> Result<Option<Millis>> {
    let row = sql::first(
        db,
        "SELECT min(d) FROM (SELECT min(due_at) AS d FROM journey_timers
           UNION ALL SELECT min(due_at) FROM journey_entry_timers) AS due",
        &[],
    )
    .await?;
    row.map(|r| r.opt_i64(0)).transpose().map(Option::flatten)
}

pub(crate) async fn waiting_runs<D: Db>(db: &D, contact: ContactId, event: &str) -> Result<Vec<Waiting>> {
    let contact = db.current_id(contact).await?;
    db.query(
        "SELECT run_id, event, match_value FROM journey_waits WHERE contact_id = $1 AND event = $2 ORDER BY run_id",
        &[Arg::I64(contact), Arg::Str(event)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Waiting {
            run_id: r.i64(0)?,
            event: r.string(1)?,
            match_value: r.opt_string(2)?,
        })
    })
    .collect()
}

pub(crate) async fn runs_per_step<D: Db>(db: &D, journey: i64) -> Result<Vec<(String, i64)>> {
    db.query(
        "SELECT step, count(*) FROM journey_runs WHERE journey_id = $1 AND status = 'active' AND step IS NOT NULL
         GROUP BY step ORDER BY step",
        &[Arg::I64(journey)],
    )
    .await?
    .iter()
    .map(|r| Ok((r.string(0)?, r.i64(1)?)))
    .collect()
}

pub(crate) async fn clear_entry_timers<D: Db>(db: &D, journey: i64) -> Result<()> {
    db.execute(
        "DELETE FROM journey_entry_timers WHERE journey_id = $1",
        &[Arg::I64(journey)],
    )
    .await?;
    db.execute(
        "UPDATE journeys SET entries_scheduled = NULL WHERE id = $1",
        &[Arg::I64(journey)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn mark_entries_scheduled<D: Db>(db: &D, journey: i64, version: i64) -> Result<()> {
    db.execute(
        "UPDATE journeys SET entries_scheduled = $2 WHERE id = $1",
        &[Arg::I64(journey), Arg::I64(version)],
    )
    .await?;
    Ok(())
}

/// Ends every journey timer, entry timer and inbox lease; how many ended.
pub(crate) async fn release_leases<D: Db>(db: &D) -> Result<u64> {
    let mut n = 0;
    for table in ["journey_timers", "journey_entry_timers", "journey_inbox"] {
        n += db
            .execute(
                &format!("UPDATE {table} SET leased_until = NULL WHERE leased_until IS NOT NULL"),
                &[],
            )
            .await?;
    }
    Ok(n)
}

pub(crate) async fn stats<D: Db>(db: &D, journey: i64) -> Result<JourneyStats> {
    let mut stats = JourneyStats::default();
    for r in db
        .query(
            "SELECT status, finish_reason, count(*), CAST(coalesce(sum(revenue), 0.0) AS DOUBLE PRECISION)
             FROM journey_runs WHERE journey_id = $1 GROUP BY status, finish_reason",
            &[Arg::I64(journey)],
        )
        .await?
    {
        let (status, reason, n) = (r.string(0)?, r.opt_string(1)?, r.i64(2)?);
        stats.entered += n;
        stats.revenue += r.opt_f64(3)?.unwrap_or(0.0);
        match (status.as_str(), reason) {
            ("set_aside", _) => stats.set_aside += n,
            (_, None) => stats.active += n,
            (_, Some(reason)) => *stats.finished.entry(reason).or_default() += n,
        }
    }
    stats.conversions = stats.finished.get("goal").copied().unwrap_or(0);
    for r in db
        .query(
            "SELECT step, reached, sent, opened, clicked, unique_opened, unique_clicked, conversions, converted,
             conversion_revenue, unsubscribed, complained FROM journey_step_stats WHERE journey_id = $1",
            &[Arg::I64(journey)],
        )
        .await?
    {
        let s = StepStats {
            reached: r.i64(1)?,
            sent: r.i64(2)?,
            opened: r.i64(3)?,
            clicked: r.i64(4)?,
            unique_opened: r.i64(5)?,
            unique_clicked: r.i64(6)?,
            conversions: r.i64(7)?,
            converted: r.i64(8)?,
            conversion_revenue: r.opt_f64(9)?.unwrap_or(0.0),
            unsubscribed: r.i64(10)?,
            complained: r.i64(11)?,
            links: Vec::new(),
            active: 0,
            exits: Default::default(),
        };
        stats.steps.insert(r.string(0)?, s);
    }
    for r in db
        .query(
            "SELECT step, exit, passed FROM journey_exit_stats WHERE journey_id = $1",
            &[Arg::I64(journey)],
        )
        .await?
    {
        stats
            .steps
            .entry(r.string(0)?)
            .or_default()
            .exits
            .insert(r.string(1)?, r.i64(2)?);
    }
    for (step, link) in crate::shared::messages::link_clicks(db, &crate::plan::journey_links(journey)).await? {
        stats.steps.entry(step).or_default().links.push(link);
    }
    for (step, n) in runs_per_step(db, journey).await? {
        stats.steps.entry(step).or_default().active = n;
    }
    Ok(stats)
}

/// A backend's `JourneyStore`: the operations above, each run in one transaction (or
/// on a read connection) through the backend's `$write!` / `$read!`, and the
/// backend's own methods (`{ ... }`: claims, array batches, the event-name cache).
macro_rules! impl_journey_store {
    ($store:ty, $write:ident, $read:ident, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::JourneyStore for $store {
        async fn create_journey(&self, new: NewJourney, now: Millis) -> Result<Journey> {
            $write!(self, |db| $crate::shared::journeys::create(db, new, now))
        }

        async fn update_journey(&self, id: i64, new: NewJourney, now: Millis) -> Result<Option<Journey>> {
            $write!(self, |db| $crate::shared::journeys::update(db, id, new, now))
        }

        async fn journeys(&self) -> Result<Vec<Journey>> {
            $read!(self, |db| $crate::shared::journeys::journeys(db))
        }

        async fn journey(&self, id: i64) -> Result<Option<Journey>> {
            $read!(self, |db| $crate::shared::journeys::journey(db, id))
        }

        async fn journey_version(&self, id: i64, version: i64) -> Result<Option<JourneyVersion>> {
            $read!(self, |db| $crate::shared::journeys::version(db, id, version))
        }

        async fn set_journey_status(
            &self,
            id: i64,
            status: JourneyStatus,
            publish: bool,
            now: Millis,
        ) -> Result<Option<Journey>> {
            $write!(self, |db| $crate::shared::journeys::set_status(db, id, status, publish, now))
        }

        async fn start_runs(&self, runs: Vec<(NewRun, RunWrite)>, now: Millis) -> Result<Vec<Option<Run>>> {
            $write!(self, |db| $crate::shared::journeys::start_runs(db, runs, now))
        }

        async fn set_run_aside(&self, run: i64, error: String, now: Millis) -> Result<bool> {
            $write!(self, |db| $crate::exec::set_run_aside(db, run, &error, now))
        }

        async fn run(&self, id: i64) -> Result<Option<Run>> {
            $read!(self, |db| $crate::shared::journeys::run(db, id))
        }

        async fn active_runs(&self, journey: i64, after: i64, limit: usize) -> Result<Vec<Run>> {
            $read!(self, |db| $crate::shared::journeys::active_runs(db, journey, after, limit))
        }

        async fn contact_runs(&self, contact: ContactId, journey: Option<i64>) -> Result<Vec<Run>> {
            $read!(self, |db| $crate::shared::journeys::contact_runs(db, contact, journey))
        }

        async fn write_runs(&self, writes: Vec<RunWrite>, now: Millis) -> Result<Vec<i64>> {
            $write!(self, |db| $crate::shared::journeys::write_runs(db, &writes, now))
        }

        async fn next_timer_due(&self) -> Result<Option<Millis>> {
            $read!(self, |db| $crate::shared::journeys::next_timer_due(db))
        }

        async fn waiting_runs(&self, contact: ContactId, event: &str) -> Result<Vec<Waiting>> {
            let event = event.to_string();
            $read!(self, |db| $crate::shared::journeys::waiting_runs(db, contact, &event))
        }

        async fn runs_per_step(&self, journey: i64) -> Result<Vec<(String, i64)>> {
            $read!(self, |db| $crate::shared::journeys::runs_per_step(db, journey))
        }

        async fn clear_entry_timers(&self, journey: i64) -> Result<()> {
            $write!(self, |db| $crate::shared::journeys::clear_entry_timers(db, journey))
        }

        async fn mark_entries_scheduled(&self, journey: i64, version: i64) -> Result<()> {
            $write!(self, |db| $crate::shared::journeys::mark_entries_scheduled(
                db, journey, version
            ))
        }

        async fn release_journey_leases(&self) -> Result<u64> {
            $write!(self, |db| $crate::shared::journeys::release_leases(db))
        }

        async fn journey_stats(&self, journey: i64) -> Result<JourneyStats> {
            $read!(self, |db| $crate::shared::journeys::stats(db, journey))
        }

            $($own)*
        }
    };
}
pub(crate) use impl_journey_store;
