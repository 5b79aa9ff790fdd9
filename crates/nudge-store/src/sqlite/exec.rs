//! What the shared storage rules need from SQLite's writer: the rules' facts from
//! its cache.

use super::*;
use crate::plan::Rules;

/// The facts the rules read, from the writer's cache (loaded on first use, dropped
/// when journeys or segments change).
pub(super) fn rules(tx: &Connection, cache: &mut IdCache) -> Result<Rules> {
    let journey_events = journey_events(tx, cache)?.clone();
    let segments = segments::segment_index(tx, cache)?;
    let scoring = scoring(tx, cache, &segments)?;
    Ok(Rules {
        journey_events,
        segments,
        scoring,
    })
}

/// The scoring rules, cached until `scoring_version` moves or the segments change.
fn scoring(
    tx: &Connection,
    cache: &mut IdCache,
    segments: &Arc<crate::plan::SegmentIndex>,
) -> Result<Arc<nudge_core::scoring::Scoring>> {
    let version: i64 = tx
        .prepare_cached("SELECT version FROM scoring_version WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    if let Some((v, s, scoring)) = &cache.scoring
        && *v == version
        && Arc::ptr_eq(s, segments)
    {
        return Ok(scoring.clone());
    }
    let db = super::db::SqliteDb::read(tx);
    let scoring = Arc::new(crate::sql::run_now(crate::shared::scoring::load(&db, segments))?);
    cache.scoring = Some((version, segments.clone(), scoring.clone()));
    Ok(scoring)
}

/// The journey event names (see [`Rules::journey_events`]), cached: every ingest call
/// asks for them.
pub(super) fn journey_events<'c>(tx: &Connection, cache: &'c mut IdCache) -> Result<&'c Arc<HashSet<String>>> {
    if cache.journey_events.is_none() {
        let names = tx
            .prepare_cached("SELECT name FROM journey_event_names")?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<HashSet<_>>>()?;
        cache.journey_events = Some(Arc::new(names));
    }
    Ok(cache.journey_events.get_or_insert_default())
}

/// Queues [`TRAITS_CHANGED`] when a time-triggered journey reads a changed trait
/// (see [`crate::exec::traits_changed`]).
pub(super) fn traits_changed<'a>(
    tx: &Connection,
    cache: &mut IdCache,
    contact: ContactId,
    changed: impl IntoIterator<Item = &'a String>,
    at: Millis,
) -> Result<()> {
    let changed: Vec<String> = changed.into_iter().cloned().collect();
    let rules = rules(tx, cache)?;
    crate::sql::run_now(crate::exec::traits_changed(
        &super::db::SqliteDb::new(tx, cache),
        &rules,
        contact,
        &changed,
        at,
    ))
}
