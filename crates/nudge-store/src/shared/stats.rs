//! The workspace's hourly counts ([`crate::Metric`]), as the dashboard reads them.

use crate::sql::{self, Arg, Db};
use crate::{HOUR_MS, HourlyStat, Metric, Result};
use nudge_core::Millis;

/// Every hourly count from the hour holding `since` on, oldest first; metrics this
/// version does not know are left out.
pub(crate) async fn hourly<D: Db>(db: &D, since: Millis) -> Result<Vec<HourlyStat>> {
    let rows = sql::all(
        db,
        "SELECT hour, metric, value FROM hourly_stats WHERE hour >= $1 ORDER BY hour, metric",
        &[Arg::I64(since.div_euclid(HOUR_MS))],
        |r| Ok((r.i64(0)?, r.string(1)?, r.opt_f64(2)?.unwrap_or(0.0))),
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(hour, metric, value)| {
            Some(HourlyStat {
                hour_start: hour * HOUR_MS,
                metric: Metric::parse(&metric)?,
                value,
            })
        })
        .collect())
}
