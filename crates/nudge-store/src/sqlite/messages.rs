//! Messages on SQLite: templates, the outbox, suppressions, push subscriptions.

use super::db;
use super::*;

use crate::exec::MESSAGE_COLUMNS;

fn message_from_row(r: &rusqlite::Row) -> rusqlite::Result<Message> {
    crate::exec::message_from_row(&db::row_cells(r)?)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

crate::shared::messages::impl_message_store!(SqliteStore, sqlite_write, sqlite_read, {
    async fn claim_messages(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<Message>> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            let claimed = {
                let mut stmt = tx.prepare_cached(&format!(
                    "UPDATE messages SET leased_until = ?1 + ?2 WHERE id IN (
                         SELECT id FROM messages WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?1
                           AND (leased_until IS NULL OR leased_until <= ?1)
                         ORDER BY next_attempt_at, id LIMIT ?3)
                     RETURNING {MESSAGE_COLUMNS}"
                ))?;
                stmt.query_map(params![now, lease_ms, limit as i64], message_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.commit()?;
            let mut claimed = claimed;
            claimed.sort_by_key(|m| m.id);
            Ok(claimed)
        })
        .await
    }
});
