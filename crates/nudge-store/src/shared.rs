//! Storage operations written once for both backends against [`crate::sql::Db`]:
//! each backend's trait implementation only opens the transaction (or read
//! connection) and calls these (`sqlite_write!` / `pg_write!` and their read forms).

pub(crate) mod campaigns;
pub(crate) mod contacts;
pub(crate) mod conversions;
pub(crate) mod ingest;
pub(crate) mod journeys;
pub(crate) mod keys;
pub(crate) mod messages;
pub(crate) mod segments;
pub(crate) mod stats;
pub(crate) mod users;
