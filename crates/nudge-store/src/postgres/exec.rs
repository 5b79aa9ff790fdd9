//! What the shared storage rules ([`crate::exec`]) need from PostgreSQL: the rules'
//! facts.

use super::*;
use crate::plan::Rules;

/// The facts the rules read: the journey names as stored now (several processes may
/// change them), the segment index from the process-wide cache.
pub(super) async fn rules(tx: &impl GenericClient) -> Result<Rules> {
    Ok(Rules {
        segments: segments::segment_index(tx).await?,
        ..journey_rules(tx).await?
    })
}

/// The journey half of the rules only (an empty segment index): for the ingest path,
/// which takes its segment marks from `segments::mark_after_ingest`.
pub(super) async fn journey_rules(tx: &impl GenericClient) -> Result<Rules> {
    let names: HashSet<String> = tx
        .query("SELECT name FROM journey_event_names", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Rules {
        journey_events: Arc::new(names),
        segments: Arc::default(),
    })
}
