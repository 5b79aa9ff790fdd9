//! Operating a workspace: `nudge health` (is a server ready), `nudge backup`, `nudge restore` (embedded SQLite; the work
//! is `nudge_store::backup`'s), `nudge migrate-to` (`nudge_store::copy`) and `nudge secrets rotate` (a new master key, the
//! secrets sealed again by `Store::reseal_secrets`). See docs/operations.md.

use crate::config::Settings;
use anyhow::{Context, bail};
use nudge_store::backup::{self, WorkspaceLock};
use nudge_store::secrets::{Keyring, MasterKey};
use std::path::{Path, PathBuf};

/// What a PostgreSQL workspace uses instead of `nudge backup` / `nudge restore`.
const PG_BACKUPS: &str = "back it up with pg_dump (logical) or pg_basebackup with WAL archiving \
     (point-in-time recovery); see docs/operations.md";

/// The workspace's SQLite file, or the error a PostgreSQL workspace gets for `what`
/// (followed by `instead`).
fn sqlite_file(settings: &Settings, what: &str, instead: &str) -> anyhow::Result<PathBuf> {
    match nudge_store::sqlite_path(settings.database_url(), &settings.data_dir)? {
        Some(path) => Ok(path),
        None => bail!("nudge {what} works on an embedded SQLite workspace, and this one is on PostgreSQL: {instead}"),
    }
}

pub fn backup(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    let db = sqlite_file(settings, "backup", PG_BACKUPS)?;
    let started = std::time::Instant::now();
    let done = backup::backup_sqlite(&db, file).with_context(|| format!("backing up {}", db.display()))?;
    println!(
        "backed up {} to {} ({} bytes in {:.1} s); SHA-256 {} in {}",
        db.display(),
        done.file.display(),
        done.bytes,
        started.elapsed().as_secs_f64(),
        done.sha256,
        done.checksum_file.display()
    );
    println!("the secrets in it are sealed: keep the master key (not in the backup) to restore it");
    Ok(())
}

pub fn restore(settings: &Settings, file: &Path, force: bool) -> anyhow::Result<()> {
    let db = sqlite_file(settings, "restore", PG_BACKUPS)?;
    let now = jiff::Timestamp::now().as_millisecond();
    let done = backup::restore_sqlite(file, &db, force, now)
        .with_context(|| format!("restoring {} to {}", file.display(), db.display()))?;
    println!("restored {} to {} (checksum verified)", file.display(), db.display());
    if let Some(kept) = done.replaced {
        println!("the database it replaced is kept as {}", kept.display());
    }
    println!(
        "start Nudge with the master key the backup was written with (NUDGE_SECRET_KEY or {})",
        settings.key_file().path.display()
    );
    Ok(())
}

/// Seals every secret again under a new master key: the new key is written to
/// `KEY.new` first, the database re-sealed in one transaction, then `KEY` is moved to
/// `KEY.old-<id>` and `KEY.new` to `KEY`.
pub async fn rotate(settings: &Settings) -> anyhow::Result<()> {
    // On SQLite a running server would go on sealing with the old key: refuse.
    let _lock = match nudge_store::sqlite_path(settings.database_url(), &settings.data_dir)? {
        Some(db) => Some(WorkspaceLock::acquire(&db)?),
        None => {
            eprintln!(
                "PostgreSQL: stop every nudge node first; a node still running with the old key fails on secrets"
            );
            None
        }
    };
    let old = settings.master_key()?;
    let file = settings.key_file();
    let new = MasterKey::generate();
    file.staged().write(&new)?;
    let store = crate::open(settings).await?;
    let resealed = store
        .reseal_secrets(Keyring::new(new.clone()).with_previous(old.clone()))
        .await;
    store.close().await;
    let resealed = resealed.context("sealing the secrets with the new key (the database still uses the old one)")?;
    let kept = file.promote_staged(&old)?;
    println!(
        "sealed {resealed} secrets with the new key {}; it is in {}",
        new.id(),
        file.path.display()
    );
    if let Some(kept) = kept {
        println!(
            "the old key {} is kept in {}: backups made before now need it; delete it when they are gone",
            old.id(),
            kept.display()
        );
    }
    if settings.secret_key.is_some() {
        println!(
            "NUDGE_SECRET_KEY holds the old key: set it to the content of {} (or unset it) before starting Nudge",
            file.path.display()
        );
    }
    Ok(())
}

/// Copies the SQLite workspace into the empty PostgreSQL database at `url` and checks
/// the copy; the workspace itself is left as it was.
pub async fn migrate_to(settings: &Settings, url: &str) -> anyhow::Result<()> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("migrate-to takes a postgres://... URL, not {url:?}");
    }
    let db = sqlite_file(settings, "migrate-to", "it is there already")?;
    let _lock = WorkspaceLock::acquire(&db)?;
    let ring = Keyring::new(settings.master_key()?);
    let started = std::time::Instant::now();
    let report = nudge_store::copy::sqlite_to_postgres(&db, url, ring)
        .await
        .with_context(|| format!("copying {} to PostgreSQL", db.display()))?;
    let rows: u64 = report.tables.values().sum();
    println!(
        "copied {rows} rows in {} tables in {:.1} s; row counts equal, {} sampled contacts and their events equal",
        report.tables.len(),
        started.elapsed().as_secs_f64(),
        report.sampled_contacts
    );
    for (table, n) in &report.tables {
        println!("  {table}: {n}");
    }
    if !report.missing.is_empty() {
        println!(
            "as the migrations made them (no such SQLite table): {}",
            report.missing.join(", ")
        );
    }
    println!(
        "start every node with NUDGE_DATABASE_URL set to it and the same master key (key id {})",
        settings.master_key()?.id()
    );
    Ok(())
}

/// The URL `nudge health` asks: `--url`, else the listen address (an unspecified
/// host, `0.0.0.0` or `[::]`, is asked on the loopback address).
fn health_url(settings: &Settings, url: Option<&str>) -> anyhow::Result<String> {
    if let Some(u) = url {
        let base = u.trim_end_matches('/');
        reqwest::Url::parse(base).with_context(|| format!("--url {u:?} is not a URL"))?;
        return Ok(format!("{base}/readyz"));
    }
    let mut addr: std::net::SocketAddr = settings
        .listen
        .parse()
        .with_context(|| format!("listen address {:?}", settings.listen))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(format!("http://{addr}/readyz"))
}

/// `nudge health`: succeeds when the server answers `/readyz` with 200.
pub async fn health(settings: &Settings, url: Option<&str>) -> anyhow::Result<()> {
    let url = health_url(settings, url)?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("{url} did not answer"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{url} answered {status}: {}", body.trim());
    }
    println!("ready: {}", body.trim());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_asks_the_listen_address_on_loopback_when_it_is_unspecified() {
        let mut s = Settings {
            listen: "0.0.0.0:8080".into(),
            ..Default::default()
        };
        assert_eq!(health_url(&s, None).unwrap(), "http://127.0.0.1:8080/readyz");
        s.listen = "[::]:9000".into();
        assert_eq!(health_url(&s, None).unwrap(), "http://[::1]:9000/readyz");
        s.listen = "10.0.0.5:8080".into();
        assert_eq!(health_url(&s, None).unwrap(), "http://10.0.0.5:8080/readyz");
        assert_eq!(
            health_url(&s, Some("https://nudge.example/")).unwrap(),
            "https://nudge.example/readyz"
        );
        assert!(health_url(&s, Some("not a url")).is_err());
    }
}
