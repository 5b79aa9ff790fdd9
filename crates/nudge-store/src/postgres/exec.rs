//! What the shared storage rules ([`crate::exec`]) need from PostgreSQL: the rules'
//! facts.

use super::*;
use crate::plan::Rules;

/// The facts the rules read: the journey names as stored now (several processes may
/// change them), the segment index from the process-wide cache (both asked at once).
pub(super) async fn rules(tx: &impl GenericClient) -> Result<Rules> {
    let names = async {
        let stmt = tx.prepare_cached("SELECT name FROM journey_event_names").await?;
        Ok::<_, StoreError>(tx.query(&stmt, &[]).await?)
    };
    let version = async {
        let stmt = tx
            .prepare_cached(
                "SELECT current_database()::text, current_schema()::text, version FROM scoring_version WHERE id = 1",
            )
            .await?;
        let row = tx.query_one(&stmt, &[]).await?;
        Ok::<_, StoreError>((row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, i64>(2)))
    };
    let (segments, names, version) = tokio::try_join!(segments::segment_index(tx), names, version)?;
    let names: HashSet<String> = names.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    let scoring = scoring(tx, version, &segments).await?;
    Ok(Rules {
        journey_events: Arc::new(names),
        segments,
        scoring,
    })
}

/// What identifies the scoring rules' state: database, schema and `scoring_version`.
type ScoringKey = (String, String, i64);

/// The last scoring rules loaded, with the segment index whose thresholds they carry,
/// shared by all connections of this process.
#[allow(clippy::type_complexity)]
static SCORING_CACHE: std::sync::Mutex<
    Option<(
        ScoringKey,
        Arc<segments::SegmentIndex>,
        Arc<nudge_core::scoring::Scoring>,
    )>,
> = std::sync::Mutex::new(None);

async fn scoring(
    tx: &impl GenericClient,
    key: ScoringKey,
    index: &Arc<segments::SegmentIndex>,
) -> Result<Arc<nudge_core::scoring::Scoring>> {
    if let Some((k, s, scoring)) = SCORING_CACHE.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        && *k == key
        && Arc::ptr_eq(s, index)
    {
        return Ok(scoring.clone());
    }
    let db = super::db::PgDb::read(tx);
    let scoring = Arc::new(crate::shared::scoring::load(&db, index).await?);
    *SCORING_CACHE.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, index.clone(), scoring.clone()));
    Ok(scoring)
}
