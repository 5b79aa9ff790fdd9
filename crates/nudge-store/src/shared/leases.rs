//! Singleton leases, written once for both backends (see `LeaseStore`).

use crate::Result;
use crate::leases::Lease;
use crate::sql::{self, Arg, Db, SqlRow};
use nudge_core::Millis;

fn lease(r: &SqlRow) -> Result<Lease> {
    Ok(Lease {
        name: r.string(0)?,
        holder: r.string(1)?,
        acquired_at: r.i64(2)?,
        expires_at: r.i64(3)?,
    })
}

/// The lease rule: one statement, so it is atomic on both backends. The insert
/// takes a lease nobody has had; on conflict, the update applies only when the
/// holder renews its own lease or the stored one has expired, and then returns the
/// row; otherwise nothing is returned (another node holds it). On PostgreSQL two
/// nodes racing for a free or expired lease serialise on the row (`ON CONFLICT DO
/// UPDATE` locks it and re-checks the `WHERE` against the committed row), so exactly
/// one of them gets it.
pub(crate) async fn acquire<D: Db>(
    db: &D,
    name: &str,
    holder: &str,
    now: Millis,
    ttl_ms: i64,
) -> Result<Option<Lease>> {
    sql::one(
        db,
        "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET
             holder = excluded.holder,
             acquired_at = CASE WHEN leases.holder = excluded.holder
                                THEN leases.acquired_at ELSE excluded.acquired_at END,
             expires_at = excluded.expires_at
         WHERE leases.holder = excluded.holder OR leases.expires_at <= excluded.acquired_at
         RETURNING name, holder, acquired_at, expires_at",
        &[
            Arg::Str(name),
            Arg::Str(holder),
            Arg::I64(now),
            Arg::I64(now.saturating_add(ttl_ms.max(0))),
        ],
        lease,
    )
    .await
}

pub(crate) async fn release<D: Db>(db: &D, name: &str, holder: &str) -> Result<bool> {
    let gone = db
        .execute(
            "DELETE FROM leases WHERE name = $1 AND holder = $2",
            &[Arg::Str(name), Arg::Str(holder)],
        )
        .await?;
    Ok(gone > 0)
}

pub(crate) async fn all<D: Db>(db: &D) -> Result<Vec<Lease>> {
    sql::all(
        db,
        "SELECT name, holder, acquired_at, expires_at FROM leases ORDER BY name",
        &[],
        lease,
    )
    .await
}

pub(crate) async fn clear<D: Db>(db: &D) -> Result<u64> {
    db.execute("DELETE FROM leases", &[]).await
}

macro_rules! impl_lease_store {
    ($store:ty, $write:ident, $read:ident) => {
        #[async_trait::async_trait]
        impl $crate::LeaseStore for $store {
            async fn acquire_lease(
                &self,
                name: &str,
                holder: &str,
                now: nudge_core::Millis,
                ttl_ms: i64,
            ) -> $crate::Result<Option<$crate::Lease>> {
                let (name, holder) = (name.to_string(), holder.to_string());
                $write!(self, |db| async move {
                    $crate::shared::leases::acquire(db, &name, &holder, now, ttl_ms).await
                })
            }
            async fn release_lease(&self, name: &str, holder: &str) -> $crate::Result<bool> {
                let (name, holder) = (name.to_string(), holder.to_string());
                $write!(self, |db| async move {
                    $crate::shared::leases::release(db, &name, &holder).await
                })
            }
            async fn leases(&self) -> $crate::Result<Vec<$crate::Lease>> {
                $read!(self, |db| $crate::shared::leases::all(db))
            }
            async fn clear_leases(&self) -> $crate::Result<u64> {
                $write!(self, |db| $crate::shared::leases::clear(db))
            }
        }
    };
}
pub(crate) use impl_lease_store;
