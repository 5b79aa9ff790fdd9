//! Singleton leases (docs/operations.md, "Roles"): work that must run on one node at
//! a time runs under a named lease, held by one node id until `expires_at`. The
//! holder renews it well before then; a node that dies stops renewing, and once the
//! lease has expired any other node's next attempt takes it. The rule is one
//! conditional upsert, written once for both backends (`shared::leases`); on SQLite
//! one process serves the workspace, so it takes every lease at its first attempt.

use crate::Result;
use async_trait::async_trait;
use nudge_core::Millis;

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    /// The node id holding it (`host:pid:random`).
    pub holder: String,
    /// Since when this holder has held it without interruption.
    pub acquired_at: Millis,
    /// When it lapses unless renewed (the holder's clock at renewal plus the TTL).
    pub expires_at: Millis,
}

/// The lease part of the storage contract.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms`: succeeds
    /// when nobody holds it, when `holder` already does (a renewal: `acquired_at`
    /// stays), or when the current holder's lease expired (`expires_at <= now`).
    /// Returns the lease as stored when `holder` holds it now, `None` when another
    /// holder does. Atomic: two nodes asking at once never both get it.
    async fn acquire_lease(&self, name: &str, holder: &str, now: Millis, ttl_ms: i64) -> Result<Option<Lease>>;
    /// Gives the lease up if `holder` holds it (a clean shutdown), so another node
    /// takes it at its next attempt instead of after the TTL. Whether it was held.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<bool>;
    /// Every lease, expired or not, by name.
    async fn leases(&self) -> Result<Vec<Lease>>;
    /// Forgets every lease (an embedded workspace at start: the previous process,
    /// which held them, is gone). Returns how many there were.
    async fn clear_leases(&self) -> Result<u64>;
}
