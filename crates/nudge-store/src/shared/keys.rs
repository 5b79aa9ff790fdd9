//! API keys: stored as hashes, revoked, never deleted.

use crate::sql::{self, Arg, Db, SqlRow};
use crate::{ApiKey, KeyKind, NewApiKey, Result, StoreError};
use nudge_core::Millis;

const KEY_COLUMNS: &str = "id, kind, name, prefix, created_at, revoked_at";

fn key_from_row(r: &SqlRow) -> Result<ApiKey> {
    let kind = r.string(1)?;
    Ok(ApiKey {
        id: r.i64(0)?,
        kind: KeyKind::parse(&kind).unwrap_or(KeyKind::Write),
        name: r.string(2)?,
        prefix: r.string(3)?,
        created_at: r.i64(4)?,
        revoked_at: r.opt_i64(5)?,
    })
}

pub(crate) async fn create<D: Db>(db: &D, key: NewApiKey, now: Millis) -> Result<ApiKey> {
    let row = sql::first(
        db,
        "INSERT INTO api_keys (kind, name, hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[
            Arg::Str(key.kind.as_str()),
            Arg::Str(&key.name),
            Arg::Str(&key.hash),
            Arg::Str(&key.prefix),
            Arg::I64(now),
        ],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("a new key has no id".into()))?;
    Ok(ApiKey {
        id: row.i64(0)?,
        kind: key.kind,
        name: key.name,
        prefix: key.prefix,
        created_at: now,
        revoked_at: None,
    })
}

pub(crate) async fn list<D: Db>(db: &D) -> Result<Vec<ApiKey>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id");
    sql::all(db, &sql, &[], key_from_row).await
}

pub(crate) async fn revoke<D: Db>(db: &D, id: i64, now: Millis) -> Result<bool> {
    let n = db
        .execute(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[Arg::I64(id), Arg::I64(now)],
        )
        .await?;
    Ok(n > 0)
}

/// The active key with this hash.
pub(crate) async fn find<D: Db>(db: &D, hash: &str) -> Result<Option<ApiKey>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1 AND revoked_at IS NULL");
    sql::one(db, &sql, &[Arg::Str(hash)], key_from_row).await
}
