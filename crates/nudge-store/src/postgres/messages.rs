//! Messages on PostgreSQL: templates, the outbox (claimed with `FOR UPDATE SKIP
//! LOCKED`, so several processes can deliver from one database), suppressions, push
//! subscriptions.

use super::db;
use super::*;

use crate::exec::MESSAGE_COLUMNS;

fn message_from_row(r: &tokio_postgres::Row) -> Result<Message> {
    crate::exec::message_from_row(&db::cells(r)?)
}

crate::shared::messages::impl_message_store!(PgStore, pg_write, pg_read, {
    async fn claim_messages(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<Message>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "UPDATE messages SET leased_until = $1 + $2 WHERE id IN (
                         SELECT id FROM messages WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1
                           AND (leased_until IS NULL OR leased_until <= $1)
                         ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING {MESSAGE_COLUMNS}"
                ),
                &[&now, &lease_ms, &(limit as i64)],
            )
            .await?;
        let mut claimed = rows.iter().map(message_from_row).collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }
});
