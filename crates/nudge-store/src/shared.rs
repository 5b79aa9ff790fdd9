//! Storage operations written once for both backends against [`crate::sql::Db`]:
//! each backend's trait implementation only opens the transaction (or read
//! connection) and calls these (`sqlite_write!` / `pg_write!` and their read forms).

pub(crate) mod contacts;
pub(crate) mod ingest;
pub(crate) mod journeys;
pub(crate) mod keys;
pub(crate) mod messages;
pub(crate) mod segments;
pub(crate) mod stats;
pub(crate) mod users;

use crate::Result;
use crate::sql::Db;

/// What a migration does besides its SQL, for rules that live in Rust: both backends
/// run it right after the migration's SQL, in the same transaction.
pub(crate) async fn after_migration<D: Db>(db: &D, version: i64) -> Result<()> {
    match version {
        // The search text of the contacts stored before it (`search.rs`).
        17 => contacts::fill_search(db).await.map(|n| {
            if n > 0 {
                tracing::info!(contacts = n, "contacts given their search text");
            }
        }),
        _ => Ok(()),
    }
}
