//! Event retention (docs/operations.md, "Retention"): events older than a cutoff go,
//! in steps small enough that ingestion goes on meanwhile. The retention singleton
//! (`nudge_engine::RetentionEngine`) decides when and with which cutoff; a backend
//! only knows how:
//!
//! - **PostgreSQL** keeps `events` partitioned by UTC month of the event's
//!   `timestamp` (migration 30). A step drops one partition whose whole month is
//!   older than the cutoff: detached and renamed `events_retired_pYYYYMM` in a short
//!   transaction (under a lock timeout, so it never queues ingestion behind it), its
//!   message ids forgotten from `event_message_ids` in batches, then dropped. Events
//!   of the default partition (outside every month partition) older than the cutoff
//!   are deleted in batches. A month is therefore kept until its last day is past the
//!   cutoff: events live at least the retention period, at most a month longer.
//! - **SQLite** deletes the events older than the cutoff, `batch` per writer
//!   transaction (their ids found first on a reader, so the writer does only the
//!   deletes); the engine pauses between steps so ingestion's transactions interleave.

use crate::Result;
use async_trait::async_trait;
use nudge_core::Millis;

/// What one retention step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionStep {
    /// Events deleted row by row (SQLite; PostgreSQL's default partition).
    pub deleted: u64,
    /// A partition dropped whole (PostgreSQL), by name (`events_p202601`).
    pub dropped: Option<String>,
    /// Where the next step goes on (SQLite: the last event id looked at; give it back).
    pub next_after: i64,
    /// More may be older than the cutoff: call again.
    pub more: bool,
}

/// A partition of the events table (PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPartition {
    /// `events_pYYYYMM`, or `events_default`.
    pub name: String,
    /// The range it holds, `[from, to)` in ms; `None` for the default partition.
    pub range: Option<(Millis, Millis)>,
}

/// The retention part of the storage contract.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Makes sure the month partitions of `now`'s month and the next two exist
    /// (PostgreSQL: rows of those months already in the default partition move into
    /// them); nothing on SQLite. The partitions added, by name.
    async fn prepare_event_partitions(&self, now: Millis) -> Result<Vec<String>>;
    /// One step of removing events whose `timestamp` is before `cutoff` (see the
    /// module documentation): at most `batch` rows per transaction. `after` is the
    /// previous step's `next_after` (0 to begin a pass). Never removes an event at or
    /// after the cutoff.
    async fn retention_step(&self, cutoff: Millis, batch: usize, after: i64) -> Result<RetentionStep>;
    /// The events table's partitions, oldest first (empty on SQLite).
    async fn event_partitions(&self) -> Result<Vec<EventPartition>>;
}
