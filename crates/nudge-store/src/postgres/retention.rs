//! Retention on PostgreSQL: month partitions of `events` made ahead and dropped whole
//! once past the cutoff, with the message ids they held forgotten (see
//! `crate::retention`; the scheme is migration 30's).

use super::*;
use crate::retention::{EventPartition, RetentionStep, RetentionStore};

/// How long a step waits for the lock on `events` that attaching or detaching a
/// partition takes: ingestion's inserts would queue behind a waiting DDL statement,
/// so a step that cannot have it at once gives up and the next pass tries again.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '2s'";

/// The first day of the UTC month `k` months after `now`'s.
fn month_start(now: Millis, k: i32) -> Result<jiff::civil::Date> {
    let day = jiff::Timestamp::from_millisecond(now)
        .map_err(|e| StoreError::Corrupt(format!("time {now}: {e}")))?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .first_of_month();
    day.checked_add(jiff::Span::new().months(k))
        .map_err(|e| StoreError::Corrupt(format!("month after {day}: {e}")))
}

/// The partitions attached to `events`, with their bounds (`None`: the default one).
async fn partitions(c: &impl GenericClient) -> Result<Vec<EventPartition>> {
    let rows = c
        .query(
            "SELECT p.relname::text, pg_get_expr(p.relpartbound, p.oid)
             FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
             WHERE i.inhparent = 'events'::regclass",
            &[],
        )
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let (name, bound): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        let range = if bound == "DEFAULT" {
            None
        } else {
            // FOR VALUES FROM ('1767225600000') TO ('1769904000000')
            let numbers: Vec<Millis> = bound
                .split(|ch: char| !ch.is_ascii_digit() && ch != '-')
                .filter(|s| !s.is_empty() && *s != "-")
                .map(|s| s.parse::<Millis>())
                .collect::<Result<_, _>>()
                .map_err(|e| StoreError::Corrupt(format!("partition {name} bound {bound:?}: {e}")))?;
            match numbers[..] {
                [from, to] => Some((from, to)),
                _ => return Err(StoreError::Corrupt(format!("partition {name} bound {bound:?}"))),
            }
        };
        out.push(EventPartition { name, range });
    }
    out.sort_by_key(|p| (p.range.is_some(), p.range));
    Ok(out)
}

impl PgStore {
    /// A partition detached by an earlier step and not yet dropped (a step cut short).
    async fn retired_partition(&self) -> Result<Option<String>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT relname::text FROM pg_class
                 WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'
                   AND relname LIKE 'events\\_retired\\_p%' ORDER BY relname LIMIT 1",
                &[],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Forgets the message ids a retired partition holds, `batch` per transaction in
    /// id order, then drops it.
    async fn drop_retired(&self, table: &str, batch: usize) -> Result<()> {
        let client = self.client().await?;
        let forget = format!(
            "WITH b AS (SELECT id, message_id FROM {table} WHERE id > $1 ORDER BY id LIMIT $2),
                  d AS (DELETE FROM event_message_ids m USING b WHERE m.message_id = b.message_id)
             SELECT max(id), count(*) FROM b"
        );
        let mut after: i64 = i64::MIN;
        loop {
            let row = client.query_one(&forget, &[&after, &(batch as i64)]).await?;
            let (last, n): (Option<i64>, i64) = (row.try_get(0)?, row.try_get(1)?);
            match last {
                Some(last) if n > 0 => after = last,
                _ => break,
            }
        }
        client.batch_execute(&format!("DROP TABLE {table}")).await?;
        Ok(())
    }
}

#[async_trait]
impl RetentionStore for PgStore {
    async fn prepare_event_partitions(&self, now: Millis) -> Result<Vec<String>> {
        let mut client = self.client().await?;
        let mut added = Vec::new();
        for k in 0..3 {
            let month = month_start(now, k)?;
            let tx = client.transaction().await?;
            tx.batch_execute(LOCK_TIMEOUT).await?;
            let month_text = month.to_string();
            let row = tx
                .query_one("SELECT events_add_partition(CAST($1 AS text)::date)", &[&month_text])
                .await?;
            tx.commit().await?;
            if row.try_get::<_, bool>(0)? {
                added.push(format!("events_p{}", month.strftime("%Y%m")));
            }
        }
        Ok(added)
    }

    async fn retention_step(&self, cutoff: Millis, batch: usize, _after: i64) -> Result<RetentionStep> {
        let batch = batch.max(1);
        // A partition a previous step detached first.
        if let Some(retired) = self.retired_partition().await? {
            self.drop_retired(&retired, batch).await?;
            return Ok(RetentionStep {
                dropped: Some(retired.replacen("events_retired_", "events_", 1)),
                more: true,
                ..Default::default()
            });
        }
        let mut client = self.client().await?;
        let whole = partitions(&client)
            .await?
            .into_iter()
            .find(|p| p.range.is_some_and(|(_, to)| to <= cutoff));
        if let Some(p) = whole {
            let retired = p.name.replacen("events_", "events_retired_", 1);
            let tx = client.transaction().await?;
            tx.batch_execute(LOCK_TIMEOUT).await?;
            tx.batch_execute(&format!(
                "ALTER TABLE events DETACH PARTITION {name}; ALTER TABLE {name} RENAME TO {retired}",
                name = p.name
            ))
            .await?;
            tx.commit().await?;
            drop(client);
            self.drop_retired(&retired, batch).await?;
            return Ok(RetentionStep {
                dropped: Some(p.name),
                more: true,
                ..Default::default()
            });
        }
        // Events outside the month partitions, row by row with their message ids.
        let deleted = client
            .execute(
                "WITH gone AS (
                     DELETE FROM events_default WHERE ctid = ANY(ARRAY(
                         SELECT ctid FROM events_default WHERE timestamp < $1 LIMIT $2))
                     RETURNING message_id)
                 DELETE FROM event_message_ids WHERE message_id IN (SELECT message_id FROM gone)",
                &[&cutoff, &(batch as i64)],
            )
            .await?;
        Ok(RetentionStep {
            deleted,
            more: deleted as usize >= batch,
            ..Default::default()
        })
    }

    async fn event_partitions(&self) -> Result<Vec<EventPartition>> {
        let client = self.client().await?;
        partitions(&client).await
    }
}
