//! Users of the web UI and their sessions.

use crate::sql::{self, Arg, Db, SqlRow};
use crate::{NewSession, NewUser, Result, Session, StoreError, User};
use nudge_core::Millis;
use nudge_core::access::Role;

const USER_COLUMNS: &str = "u.id, u.email, u.role, u.locale, u.created_at, u.password_set_at";

fn user_from_row(r: &SqlRow) -> Result<User> {
    let (id, role) = (r.i64(0)?, r.string(2)?);
    Ok(User {
        id,
        email: r.string(1)?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("user {id} has role {role:?}")))?,
        locale: r.opt_string(3)?,
        created_at: r.i64(4)?,
        password_set_at: r.i64(5)?,
    })
}

/// Creates a user; [`StoreError::Conflict`] when the e-mail address is taken.
pub(crate) async fn create<D: Db>(db: &D, user: NewUser, now: Millis) -> Result<User> {
    let taken = sql::first(db, "SELECT 1 FROM users WHERE email = $1", &[Arg::Str(&user.email)]).await?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "a user with e-mail {} exists",
            user.email
        )));
    }
    let id = db
        .insert(
            "INSERT INTO users (email, role, password_hash, created_at, password_set_at) \
             VALUES ($1, $2, $3, $4, $4)",
            &[
                Arg::Str(&user.email),
                Arg::Str(user.role.as_str()),
                Arg::Str(&user.password_hash),
                Arg::I64(now),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("a new user has no id".into()))?;
    Ok(User {
        id,
        email: user.email,
        role: user.role,
        locale: None,
        created_at: now,
        password_set_at: now,
    })
}

pub(crate) async fn list<D: Db>(db: &D) -> Result<Vec<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.id");
    sql::all(db, &sql, &[], user_from_row).await
}

pub(crate) async fn count<D: Db>(db: &D) -> Result<u64> {
    let row = sql::first(db, "SELECT COUNT(*) FROM users", &[]).await?;
    Ok(row.map(|r| r.i64(0)).transpose()?.unwrap_or(0) as u64)
}

/// A user and its password hash, by (normalised) e-mail address.
pub(crate) async fn credentials<D: Db>(db: &D, email: &str) -> Result<Option<(User, String)>> {
    let sql = format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1");
    sql::one(db, &sql, &[Arg::Str(email)], |r| Ok((user_from_row(r)?, r.string(6)?))).await
}

pub(crate) async fn by_id<D: Db>(db: &D, id: i64) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
    sql::one(db, &sql, &[Arg::I64(id)], user_from_row).await
}

/// Deletes a user and signs it out everywhere. `false` if there is none.
pub(crate) async fn delete<D: Db>(db: &D, id: i64) -> Result<bool> {
    db.execute("DELETE FROM sessions WHERE user_id = $1", &[Arg::I64(id)])
        .await?;
    Ok(db.execute("DELETE FROM users WHERE id = $1", &[Arg::I64(id)]).await? > 0)
}

/// Replaces a user's password and ends all its sessions. `false` if there is no user.
pub(crate) async fn set_password<D: Db>(db: &D, id: i64, password_hash: &str, now: Millis) -> Result<bool> {
    let n = db
        .execute(
            "UPDATE users SET password_hash = $2, password_set_at = $3 WHERE id = $1",
            &[Arg::I64(id), Arg::Str(password_hash), Arg::I64(now)],
        )
        .await?;
    db.execute("DELETE FROM sessions WHERE user_id = $1", &[Arg::I64(id)])
        .await?;
    Ok(n > 0)
}

pub(crate) async fn set_role<D: Db>(db: &D, id: i64, role: Role) -> Result<bool> {
    let n = db
        .execute(
            "UPDATE users SET role = $2 WHERE id = $1",
            &[Arg::I64(id), Arg::Str(role.as_str())],
        )
        .await?;
    Ok(n > 0)
}

pub(crate) async fn set_locale<D: Db>(db: &D, id: i64, locale: Option<&str>) -> Result<bool> {
    let n = db
        .execute(
            "UPDATE users SET locale = $2 WHERE id = $1",
            &[Arg::I64(id), Arg::OptStr(locale)],
        )
        .await?;
    Ok(n > 0)
}

pub(crate) async fn create_session<D: Db>(db: &D, session: NewSession, now: Millis) -> Result<()> {
    db.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $4, $5)",
        &[
            Arg::Str(&session.token_hash),
            Arg::I64(session.user_id),
            Arg::Str(&session.csrf),
            Arg::I64(now),
            Arg::I64(session.expires_at),
        ],
    )
    .await?;
    Ok(())
}

/// The session with this token hash, whatever its age (the caller applies expiry).
pub(crate) async fn session<D: Db>(db: &D, token_hash: &str) -> Result<Option<Session>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, s.token_hash, s.csrf, s.created_at, s.last_seen_at, s.expires_at \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1"
    );
    sql::one(db, &sql, &[Arg::Str(token_hash)], |r| {
        Ok(Session {
            user: user_from_row(r)?,
            token_hash: r.string(6)?,
            csrf: r.string(7)?,
            created_at: r.i64(8)?,
            last_seen_at: r.i64(9)?,
            expires_at: r.i64(10)?,
        })
    })
    .await
}

pub(crate) async fn touch_session<D: Db>(db: &D, token_hash: &str, now: Millis) -> Result<()> {
    db.execute(
        "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1",
        &[Arg::Str(token_hash), Arg::I64(now)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn delete_session<D: Db>(db: &D, token_hash: &str) -> Result<()> {
    db.execute("DELETE FROM sessions WHERE token_hash = $1", &[Arg::Str(token_hash)])
        .await?;
    Ok(())
}

/// Forgets sessions past their absolute expiry or idle since `idle_before`.
pub(crate) async fn delete_stale_sessions<D: Db>(db: &D, now: Millis, idle_before: Millis) -> Result<u64> {
    db.execute(
        "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2",
        &[Arg::I64(now), Arg::I64(idle_before)],
    )
    .await
}

/// The [`crate::AccountStore`] implementation, the same for both backends.
macro_rules! impl_account_store {
    ($store:ty, $write:ident, $read:ident) => {
        #[async_trait::async_trait]
        impl $crate::AccountStore for $store {
            async fn create_user(
                &self,
                user: $crate::NewUser,
                now: nudge_core::Millis,
            ) -> $crate::Result<$crate::User> {
                $write!(self, |db| $crate::shared::users::create(db, user, now))
            }
            async fn users(&self) -> $crate::Result<Vec<$crate::User>> {
                $read!(self, |db| $crate::shared::users::list(db))
            }
            async fn user_count(&self) -> $crate::Result<u64> {
                $read!(self, |db| $crate::shared::users::count(db))
            }
            async fn user(&self, id: i64) -> $crate::Result<Option<$crate::User>> {
                $read!(self, |db| $crate::shared::users::by_id(db, id))
            }
            async fn user_credentials(&self, email: &str) -> $crate::Result<Option<($crate::User, String)>> {
                let email = email.to_owned();
                $read!(self, |db| async move {
                    $crate::shared::users::credentials(db, &email).await
                })
            }
            async fn delete_user(&self, id: i64) -> $crate::Result<bool> {
                $write!(self, |db| $crate::shared::users::delete(db, id))
            }
            async fn set_user_password(
                &self,
                id: i64,
                password_hash: String,
                now: nudge_core::Millis,
            ) -> $crate::Result<bool> {
                $write!(self, |db| async move {
                    $crate::shared::users::set_password(db, id, &password_hash, now).await
                })
            }
            async fn set_user_role(&self, id: i64, role: nudge_core::access::Role) -> $crate::Result<bool> {
                $write!(self, |db| $crate::shared::users::set_role(db, id, role))
            }
            async fn set_user_locale(&self, id: i64, locale: Option<String>) -> $crate::Result<bool> {
                $write!(self, |db| async move {
                    $crate::shared::users::set_locale(db, id, locale.as_deref()).await
                })
            }
            async fn create_session(&self, session: $crate::NewSession, now: nudge_core::Millis) -> $crate::Result<()> {
                $write!(self, |db| $crate::shared::users::create_session(db, session, now))
            }
            async fn session(&self, token_hash: &str) -> $crate::Result<Option<$crate::Session>> {
                let token_hash = token_hash.to_owned();
                $read!(self, |db| async move {
                    $crate::shared::users::session(db, &token_hash).await
                })
            }
            async fn touch_session(&self, token_hash: &str, now: nudge_core::Millis) -> $crate::Result<()> {
                let token_hash = token_hash.to_owned();
                $write!(self, |db| async move {
                    $crate::shared::users::touch_session(db, &token_hash, now).await
                })
            }
            async fn delete_session(&self, token_hash: &str) -> $crate::Result<()> {
                let token_hash = token_hash.to_owned();
                $write!(self, |db| async move {
                    $crate::shared::users::delete_session(db, &token_hash).await
                })
            }
            async fn delete_stale_sessions(
                &self,
                now: nudge_core::Millis,
                idle_before: nudge_core::Millis,
            ) -> $crate::Result<u64> {
                $write!(self, |db| $crate::shared::users::delete_stale_sessions(
                    db,
                    now,
                    idle_before
                ))
            }
        }
    };
}
pub(crate) use impl_account_store;
