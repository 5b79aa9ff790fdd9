//! API keys: stored as hashes, revoked, never deleted.

use crate::sql::{self, Arg, Db, SqlRow};
use crate::{ApiKey, BrowserAccess, KeyKind, NewApiKey, Result, StoreError};
use nudge_core::Millis;

const KEY_COLUMNS: &str = "id, kind, name, prefix, created_at, revoked_at, allowed_origins, browser_only";

fn key_from_row(r: &SqlRow) -> Result<ApiKey> {
    let kind = r.string(1)?;
    Ok(ApiKey {
        id: r.i64(0)?,
        kind: KeyKind::parse(&kind).unwrap_or(KeyKind::Write),
        name: r.string(2)?,
        prefix: r.string(3)?,
        created_at: r.i64(4)?,
        revoked_at: r.opt_i64(5)?,
        browser: BrowserAccess {
            allowed_origins: serde_json::from_str(&r.string(6)?).unwrap_or_default(),
            browser_only: r.bool(7)?,
        },
    })
}

pub(crate) async fn create<D: Db>(db: &D, key: NewApiKey, now: Millis) -> Result<ApiKey> {
    let row = sql::first(
        db,
        "INSERT INTO api_keys (kind, name, hash, prefix, created_at, allowed_origins, browser_only)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[
            Arg::Str(key.kind.as_str()),
            Arg::Str(&key.name),
            Arg::Str(&key.hash),
            Arg::Str(&key.prefix),
            Arg::I64(now),
            Arg::Str(&origins_json(&key.browser)),
            Arg::Bool(key.browser.browser_only),
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
        browser: key.browser,
    })
}

fn origins_json(b: &BrowserAccess) -> String {
    serde_json::to_string(&b.allowed_origins).unwrap_or_else(|_| "[]".into())
}

/// Sets how an active write key may be used from browsers; the key, or `None` if
/// there is no active key `id`.
pub(crate) async fn set_browser<D: Db>(db: &D, id: i64, browser: &BrowserAccess) -> Result<Option<ApiKey>> {
    let n = db
        .execute(
            "UPDATE api_keys SET allowed_origins = $2, browser_only = $3 WHERE id = $1 AND revoked_at IS NULL",
            &[
                Arg::I64(id),
                Arg::Str(&origins_json(browser)),
                Arg::Bool(browser.browser_only),
            ],
        )
        .await?;
    if n == 0 {
        return Ok(None);
    }
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
    sql::one(db, &sql, &[Arg::I64(id)], key_from_row).await
}

/// Every origin some active write key allows (for answering CORS preflights, which
/// carry no key).
pub(crate) async fn browser_origins<D: Db>(db: &D) -> Result<Vec<String>> {
    let rows = sql::all(
        db,
        "SELECT allowed_origins FROM api_keys WHERE kind = 'write' AND revoked_at IS NULL AND allowed_origins <> '[]'",
        &[],
        |r| r.string(0),
    )
    .await?;
    let mut out: Vec<String> = rows
        .iter()
        .flat_map(|j| serde_json::from_str::<Vec<String>>(j).unwrap_or_default())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
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
