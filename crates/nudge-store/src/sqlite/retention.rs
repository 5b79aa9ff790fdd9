//! Retention on SQLite: events older than the cutoff deleted a batch per writer
//! transaction (see `crate::retention`). The ids of a batch are found on a reader,
//! scanning in id order from where the previous step stopped, so the writer thread
//! (which every ingestion waits for) only deletes rows by their primary key.

use super::*;
use crate::retention::{EventPartition, RetentionStep, RetentionStore};

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn prepare_event_partitions(&self, _now: Millis) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn retention_step(&self, cutoff: Millis, batch: usize, after: i64) -> Result<RetentionStep> {
        let batch = batch.max(1);
        let ids: Vec<i64> = self
            .read(move |c| {
                let mut stmt =
                    c.prepare_cached("SELECT id FROM events WHERE id > ?1 AND timestamp < ?2 ORDER BY id LIMIT ?3")?;
                let ids = stmt
                    .query_map(params![after, cutoff, batch as i64], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()?;
                Ok(ids)
            })
            .await?;
        let Some(&last) = ids.last() else {
            return Ok(RetentionStep {
                next_after: after,
                ..Default::default()
            });
        };
        let more = ids.len() >= batch;
        let deleted = self
            .write(move |c, _| {
                let tx = c.transaction()?;
                let mut n = 0;
                {
                    // The time is checked again: nothing at or after the cutoff goes.
                    let mut stmt = tx.prepare_cached("DELETE FROM events WHERE id = ?1 AND timestamp < ?2")?;
                    for id in &ids {
                        n += stmt.execute(params![id, cutoff])? as u64;
                    }
                }
                tx.commit()?;
                Ok(n)
            })
            .await?;
        Ok(RetentionStep {
            deleted,
            dropped: None,
            next_after: last,
            more,
        })
    }

    async fn event_partitions(&self) -> Result<Vec<EventPartition>> {
        Ok(Vec::new())
    }
}
