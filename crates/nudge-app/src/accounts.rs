//! People who sign in to the web UI: users with a role, passwords hashed with
//! Argon2id, sessions kept in the database, the one-time setup link of an empty
//! workspace, and the sign-in rate limit.
//!
//! The cookie and CSRF plumbing is the web layer's; what a session is, how long it
//! lasts and who may sign in is decided here.

use crate::error::{AppError, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use nudge_core::Millis;
use nudge_core::access::{Permission, Role, user_email};
use nudge_store::{NewSession, NewUser, Session, Store, StoreError, User};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// A session ends after this long without a request...
pub const SESSION_IDLE_MS: Millis = 8 * 3600 * 1000;
/// ...and this long after sign-in, however active.
pub const SESSION_ABSOLUTE_MS: Millis = 7 * 24 * 3600 * 1000;
/// A session's last-seen time is written at most this often (not on every page).
const TOUCH_EVERY_MS: Millis = 60 * 1000;
/// Passwords are at least this long; no other composition rule (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_BYTES: usize = 1024;
/// The workspace setting holding the SHA-256 of the one-time setup token.
const SETUP_TOKEN_SETTING: &str = "setup_token_hash";

/// The one answer to a failed sign-in, whether the account exists or not.
pub const WRONG_CREDENTIALS: &str = "wrong e-mail address or password";

/// Argon2id with the parameters OWASP recommends (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// The PHC string of a password's Argon2id hash, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String> {
    let salt: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    let hash = argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(AppError::internal)?;
    Ok(hash.to_string())
}

/// Whether `password` matches a stored PHC hash (a hash that does not parse never does).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// Checks a new password; the error names the field `password`.
pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::invalid_field(
            "password",
            format!("a password has at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::invalid_field(
            "password",
            format!("a password has at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A random password for accounts the product makes itself (`nudge demo`): 20
/// characters from an alphabet without look-alikes (about 115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..20)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn parse_email(raw: &str) -> Result<String> {
    user_email(raw).ok_or_else(|| AppError::invalid_field("email", format!("{raw:?} is not an e-mail address")))
}

/// Creates a user with a role and password. `conflict` when the address is taken.
pub async fn create_user(store: &dyn Store, email: &str, role: Role, password: &str, now: Millis) -> Result<User> {
    let email = parse_email(email)?;
    check_password(password)?;
    let password_hash = hash_password(password)?;
    let user = NewUser {
        email,
        role,
        password_hash,
    };
    store.create_user(user, now).await.map_err(|e| match e {
        StoreError::Conflict(m) => AppError::Conflict(m),
        e => e.into(),
    })
}

/// A user by e-mail address.
pub async fn find_user(store: &dyn Store, email: &str) -> Result<User> {
    let email = parse_email(email)?;
    match store.user_credentials(&email).await? {
        Some((user, _)) => Ok(user),
        None => Err(AppError::not_found_field(
            "email",
            format!("no user with e-mail {email}"),
        )),
    }
}

/// Deletes a user (and its sessions). The last owner cannot be deleted: someone must
/// be able to manage the workspace.
pub async fn delete_user(store: &dyn Store, id: i64) -> Result<()> {
    let users = store.users().await?;
    let Some(user) = users.iter().find(|u| u.id == id) else {
        return Err(AppError::not_found(format!("no user {id}")));
    };
    if user.role == Role::Owner && users.iter().filter(|u| u.role == Role::Owner).count() == 1 {
        return Err(AppError::Conflict(format!(
            "{} is the only owner; make another owner first",
            user.email
        )));
    }
    store.delete_user(id).await?;
    Ok(())
}

/// Changes a user's role, keeping at least one owner.
pub async fn set_role(store: &dyn Store, id: i64, role: Role) -> Result<()> {
    let users = store.users().await?;
    let Some(user) = users.iter().find(|u| u.id == id) else {
        return Err(AppError::not_found(format!("no user {id}")));
    };
    if user.role == Role::Owner && role != Role::Owner && users.iter().filter(|u| u.role == Role::Owner).count() == 1 {
        return Err(AppError::Conflict(format!(
            "{} is the only owner; make another owner first",
            user.email
        )));
    }
    store.set_user_role(id, role).await?;
    Ok(())
}

/// Replaces a user's password; every session of the user ends.
pub async fn reset_password(store: &dyn Store, id: i64, password: &str, now: Millis) -> Result<()> {
    check_password(password)?;
    let hash = hash_password(password)?;
    if !store.set_user_password(id, hash, now).await? {
        return Err(AppError::not_found(format!("no user {id}")));
    }
    Ok(())
}

/// Refuses unless `session`'s role allows `permission`.
pub fn require(session: &Session, permission: Permission) -> Result<()> {
    if session.user.role.allows(permission) {
        Ok(())
    } else {
        let what = match permission {
            Permission::Read => "read",
            Permission::Edit => "change marketing data",
            Permission::Administer => "manage users, keys and settings",
        };
        Err(AppError::Forbidden(format!(
            "the {} role may not {what}",
            session.user.role.as_str()
        )))
    }
}

/// What a successful sign-in hands the browser: the cookie's token (returned once,
/// only its hash is stored) and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub session: Session,
}

/// Counts failed sign-ins per account and per client address in a sliding window;
/// past the limit, sign-ins for that key are refused until the window has passed,
/// with the same answer whether the account exists or not.
///
/// Per process: on several nodes each keeps its own count, so the effective limit is
/// the per-node limit times the nodes behind the load balancer.
#[derive(Debug)]
pub struct SignInLimiter {
    window_ms: Millis,
    per_account: usize,
    per_address: usize,
    failures: Mutex<HashMap<String, Vec<Millis>>>,
}

impl Default for SignInLimiter {
    /// 5 failures per account and 30 per address in 15 minutes.
    fn default() -> Self {
        Self::new(15 * 60 * 1000, 5, 30)
    }
}

impl SignInLimiter {
    pub fn new(window_ms: Millis, per_account: usize, per_address: usize) -> Self {
        Self {
            window_ms,
            per_account,
            per_address,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(email: &str, ip: Option<IpAddr>) -> [(String, bool); 2] {
        [
            (format!("account:{email}"), true),
            (
                format!("address:{}", ip.map(|i| i.to_string()).unwrap_or_default()),
                false,
            ),
        ]
    }

    /// `Some(seconds)` to wait when either key is over its limit.
    fn blocked(&self, email: &str, ip: Option<IpAddr>, now: Millis) -> Option<u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait: Option<Millis> = None;
        for (key, account) in Self::keys(email, ip) {
            if !account && ip.is_none() {
                continue;
            }
            let limit = if account { self.per_account } else { self.per_address };
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| now - t < self.window_ms);
                if times.len() >= limit {
                    let until = times[times.len() - limit] + self.window_ms;
                    wait = Some(wait.map_or(until - now, |w| w.max(until - now)));
                }
            }
        }
        wait.map(|ms| (ms.max(0) as u64).div_ceil(1000).max(1))
    }

    fn failed(&self, email: &str, ip: Option<IpAddr>, now: Millis) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            // Bounded memory under a spray of addresses: forget what is past the window.
            let window = self.window_ms;
            failures.retain(|_, times| times.iter().any(|t| now - t < window));
        }
        for (key, account) in Self::keys(email, ip) {
            if account || ip.is_some() {
                failures.entry(key).or_default().push(now);
            }
        }
    }

    fn succeeded(&self, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&format!("account:{email}"));
    }
}

/// Signs a user in. An unknown address and a wrong password get the same answer
/// ([`WRONG_CREDENTIALS`]) after the same work (a password hash is verified either way).
pub async fn sign_in(
    store: &dyn Store,
    limiter: &SignInLimiter,
    email: &str,
    password: &str,
    ip: Option<IpAddr>,
    now: Millis,
) -> Result<SignedIn> {
    let email = user_email(email).unwrap_or_else(|| email.trim().to_lowercase());
    if let Some(retry_after_secs) = limiter.blocked(&email, ip, now) {
        return Err(AppError::RateLimited { retry_after_secs });
    }
    let found = store.user_credentials(&email).await?;
    let ok = match &found {
        Some((_, hash)) => verify_password(hash, password),
        None => {
            // The same Argon2 work as for a real account, so timing tells nothing.
            let _ = verify_password(
                DUMMY_HASH.get_or_init(|| hash_password("not a password").unwrap_or_default()),
                password,
            );
            false
        }
    };
    let (user, _) = match found {
        Some(found) if ok => found,
        _ => {
            limiter.failed(&email, ip, now);
            return Err(AppError::Unauthorized(WRONG_CREDENTIALS.into()));
        }
    };
    limiter.succeeded(&email);
    let token = random_token();
    let new = NewSession {
        token_hash: token_hash(&token),
        user_id: user.id,
        csrf: random_token(),
        expires_at: now + SESSION_ABSOLUTE_MS,
    };
    let session = Session {
        token_hash: new.token_hash.clone(),
        user,
        csrf: new.csrf.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: new.expires_at,
    };
    store.create_session(new, now).await?;
    // Sessions that ended without a sign-out are forgotten as people sign in, so the
    // table holds about one row per live session.
    store.delete_stale_sessions(now, now - SESSION_IDLE_MS).await?;
    Ok(SignedIn { token, session })
}

static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The live session of a cookie's token: `None` when unknown, idle too long or past
/// its absolute expiry (such a session is deleted).
pub async fn session(store: &dyn Store, token: &str, now: Millis) -> Result<Option<Session>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let hash = token_hash(token);
    let Some(session) = store.session(&hash).await? else {
        return Ok(None);
    };
    if now >= session.expires_at || now - session.last_seen_at >= SESSION_IDLE_MS {
        store.delete_session(&hash).await?;
        return Ok(None);
    }
    if now - session.last_seen_at >= TOUCH_EVERY_MS {
        store.touch_session(&hash, now).await?;
    }
    Ok(Some(session))
}

/// Ends the session of a cookie's token (nothing if there is none).
pub async fn sign_out(store: &dyn Store, token: &str) -> Result<()> {
    store.delete_session(&token_hash(token)).await?;
    Ok(())
}

/// Compares a submitted CSRF token with the session's in constant time.
pub fn csrf_matches(session: &Session, submitted: &str) -> bool {
    let (a, b) = (session.csrf.as_bytes(), submitted.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// For a workspace without users: a one-time token for the setup link (a new one each
/// call; the previous stops working). `None` once a user exists.
pub async fn setup_token(store: &dyn Store) -> Result<Option<String>> {
    if store.user_count().await? > 0 {
        return Ok(None);
    }
    let token = random_token();
    store
        .put_setting(SETUP_TOKEN_SETTING, Some(&token_hash(&token)))
        .await?;
    Ok(Some(token))
}

/// Whether `token` is the current setup token of a workspace without users.
pub async fn setup_token_valid(store: &dyn Store, token: &str) -> Result<bool> {
    if store.user_count().await? > 0 {
        return Ok(false);
    }
    let stored = store.setting(SETUP_TOKEN_SETTING).await?;
    Ok(stored.is_some_and(|h| h == token_hash(token)))
}

/// Completes setup: creates the first owner and spends the token.
pub async fn complete_setup(store: &dyn Store, token: &str, email: &str, password: &str, now: Millis) -> Result<User> {
    if !setup_token_valid(store, token).await? {
        return Err(AppError::Unauthorized(
            "this setup link has been used or replaced; run `nudge serve` again for a new one".into(),
        ));
    }
    let user = create_user(store, email, Role::Owner, password, now).await?;
    store.put_setting(SETUP_TOKEN_SETTING, None).await?;
    Ok(user)
}

/// Sets the UI language of a user (`None`: the workspace's default).
pub async fn set_locale(store: &dyn Store, id: i64, locale: Option<String>) -> Result<()> {
    store.set_user_locale(id, locale).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse batterz"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert_ne!(hash, hash_password("correct horse battery").unwrap(), "salted");
    }

    #[test]
    fn short_passwords_are_refused_naming_the_field() {
        let e = check_password("short").unwrap_err();
        assert!(
            matches!(e, AppError::InvalidField { ref field, .. } if field == "password"),
            "{e:?}"
        );
        check_password("ten chars!").unwrap();
    }

    #[test]
    fn generated_passwords_are_long_and_different() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.chars().count(), 20);
        assert_ne!(a, b);
        check_password(&a).unwrap();
    }

    #[test]
    fn the_limiter_blocks_an_account_and_an_address_past_their_limits() {
        let l = SignInLimiter::new(60_000, 3, 5);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for t in 0..3 {
            assert_eq!(l.blocked("a@x.example", Some(ip), t), None);
            l.failed("a@x.example", Some(ip), t);
        }
        assert_eq!(
            l.blocked("a@x.example", Some(ip), 10),
            Some(60),
            "account over its limit"
        );
        assert_eq!(l.blocked("a@x.example", None, 10), Some(60), "from any address");
        assert_eq!(l.blocked("b@x.example", Some("10.0.0.2".parse().unwrap()), 10), None);
        // Two more failures from the same address on other accounts: the address is blocked.
        l.failed("b@x.example", Some(ip), 20);
        l.failed("c@x.example", Some(ip), 30);
        assert!(l.blocked("d@x.example", Some(ip), 40).is_some());
        assert_eq!(l.blocked("d@x.example", Some("10.0.0.3".parse().unwrap()), 40), None);
        // The window passes.
        assert_eq!(
            l.blocked("a@x.example", Some("10.0.0.9".parse().unwrap()), 60_001),
            None
        );
    }

    #[test]
    fn a_success_clears_the_account_count() {
        let l = SignInLimiter::new(60_000, 2, 100);
        l.failed("a@x.example", None, 0);
        l.succeeded("a@x.example");
        l.failed("a@x.example", None, 1);
        assert_eq!(l.blocked("a@x.example", None, 2), None);
    }
}
