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
    let (segments, names) = tokio::try_join!(segments::segment_index(tx), names)?;
    let names: HashSet<String> = names.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    Ok(Rules {
        journey_events: Arc::new(names),
        segments,
    })
}
