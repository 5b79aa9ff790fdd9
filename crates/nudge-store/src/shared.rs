//! Storage operations written once for both backends against [`crate::sql::Db`]:
//! each backend's trait implementation only opens the transaction (or read
//! connection) and calls these (`sqlite_write!` / `pg_write!` and their read forms).

pub(crate) mod campaigns;
pub(crate) mod contacts;
pub(crate) mod conversions;
pub(crate) mod forms;
pub(crate) mod ingest;
pub(crate) mod journeys;
pub(crate) mod keys;
pub(crate) mod leases;
pub(crate) mod messages;
#[cfg(test)]
pub(crate) mod migration_checks;
pub(crate) mod orders;
pub(crate) mod predictions;
pub(crate) mod recommendations;
pub(crate) mod scoring;
pub(crate) mod segments;
pub(crate) mod send_time;
pub(crate) mod stats;
pub(crate) mod users;

use crate::Result;
use crate::sql::Db;

/// Where a migration file has its Rust step run ([`rust_step`]): the SQL before this
/// line runs first, then the step, then the SQL after it. Without the line, the step
/// runs after all the SQL.
pub(crate) const RUST_STEP: &str = "-- nudge: the Rust step of this migration runs here";

/// A migration's SQL before and after its Rust step.
pub(crate) fn split_migration(sql: &str) -> (&str, &str) {
    sql.split_once(RUST_STEP).unwrap_or((sql, ""))
}

/// What a migration does besides its SQL, for rules that live in Rust: both backends
/// run it in the migration's transaction, where its file says ([`RUST_STEP`]).
pub(crate) async fn rust_step<D: Db>(db: &D, version: i64) -> Result<()> {
    match version {
        // The search text of the contacts stored before it (`search.rs`).
        17 => contacts::fill_search(db).await.map(|n| {
            if n > 0 {
                tracing::info!(contacts = n, "contacts given their search text");
            }
        }),
        // Each contact's order totals and their traits, from the orders stored before
        // it (`nudge_core::orders`).
        34 => orders::backfill(db, jiff::Timestamp::now().as_millisecond())
            .await
            .map(|n| {
                if n > 0 {
                    tracing::info!(contacts = n, "contacts given their order totals");
                }
            }),
        // Each contact's score rows moved into the contact's row.
        35 => scoring::move_score_rows(db).await.map(|n| {
            if n > 0 {
                tracing::info!(contacts = n, "contacts' scores moved into their rows");
            }
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_migrations_fill_the_text_before_building_the_index() {
        for sql in [
            include_str!("../migrations/sqlite/0017_contact_search.sql"),
            include_str!("../migrations/postgres/0017_contact_search.sql"),
        ] {
            assert_eq!(sql.matches(RUST_STEP).count(), 1, "the step's line, once");
            let (before, after) = split_migration(sql);
            assert!(before.contains("ADD COLUMN search") && !before.contains("CREATE INDEX"));
            assert!(!before.contains("CREATE VIRTUAL TABLE") && !before.contains("CREATE TRIGGER"));
            assert!(after.contains("CREATE INDEX") || after.contains("CREATE VIRTUAL TABLE"));
        }
        assert_eq!(split_migration("SELECT 1;"), ("SELECT 1;", ""));
    }
}
