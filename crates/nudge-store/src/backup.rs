//! Backups of an embedded SQLite workspace: a consistent copy taken while a server
//! writes (SQLite's online backup API, in one step under one read transaction, so
//! the copy is the database as of one commit; in WAL mode the writer is not held
//! up), with its SHA-256 in `FILE.sha256` (the `sha256sum` format, so
//! `sha256sum -c FILE.sha256` checks it too); restoring checks that checksum and that
//! the file is a Nudge database, then puts it in place of the workspace's database,
//! keeping the one it replaces.
//!
//! [`WorkspaceLock`] is how a restore knows a server holds the workspace: `nudge
//! serve` holds an exclusive lock on `nudge.db.lock` beside the database while it
//! runs (released by the operating system if it dies).
//!
//! A backup holds the secrets as the database does, sealed: restoring it needs the
//! master key it was written with (`crate::secrets`), which is not in the copy.

use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct Backup {
    pub file: PathBuf,
    pub checksum_file: PathBuf,
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// Copies the database at `db` into `dest` (which must not exist) and writes
/// `dest.sha256`. Safe while a server writes to `db`.
pub fn backup_sqlite(db: &Path, dest: &Path) -> Result<Backup> {
    if !db.is_file() {
        return Err(StoreError::Conflict(format!("no SQLite database at {}", db.display())));
    }
    if dest.exists() {
        return Err(StoreError::Conflict(format!(
            "{} exists: a backup is written to a new file",
            dest.display()
        )));
    }
    let src = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    src.busy_timeout(std::time::Duration::from_secs(30))?;
    let tmp = sibling(dest, "partial");
    let _ = std::fs::remove_file(&tmp);
    let copied = (|| -> Result<()> {
        let mut dst = Connection::open(&tmp)?;
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
            // All pages in one step: one read transaction, one moment of the source.
            loop {
                match backup.step(-1)? {
                    rusqlite::backup::StepResult::Done => break,
                    // Busy or locked: another connection holds a lock for a moment.
                    _ => std::thread::sleep(std::time::Duration::from_millis(50)),
                }
            }
        }
        // A standalone file: no WAL beside it.
        dst.pragma_update(None, "journal_mode", "DELETE")?;
        dst.close().map_err(|(_, e)| e)?;
        File::open(&tmp)?.sync_all()?;
        Ok(())
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let (sha256, bytes) = sha256_of(&tmp)?;
    std::fs::rename(&tmp, dest)?;
    let checksum_file = checksum_path(dest);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    write_synced(&checksum_file, format!("{sha256}  {name}\n").as_bytes())?;
    sync_dir(dest);
    Ok(Backup {
        file: dest.to_path_buf(),
        checksum_file,
        bytes,
        sha256,
    })
}

/// `FILE.sha256`.
pub fn checksum_path(file: &Path) -> PathBuf {
    sibling(file, "sha256")
}

/// Checks `file` against `FILE.sha256` and that it is a Nudge database; returns its
/// SHA-256. Errors say which check failed.
pub fn verify_backup(file: &Path) -> Result<String> {
    if !file.is_file() {
        return Err(StoreError::Conflict(format!("no backup file at {}", file.display())));
    }
    let sums = checksum_path(file);
    let expected = match std::fs::read_to_string(&sums) {
        Ok(text) => text.split_whitespace().next().unwrap_or_default().to_ascii_lowercase(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::Conflict(format!(
                "no checksum file {} beside the backup (nudge backup writes one); refusing to restore an unchecked file",
                sums.display()
            )));
        }
        Err(e) => return Err(StoreError::Conflict(format!("reading {}: {e}", sums.display()))),
    };
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::Conflict(format!(
            "{} does not hold a SHA-256 (64 hex digits first)",
            sums.display()
        )));
    }
    let (actual, _) = sha256_of(file)?;
    if actual != expected {
        return Err(StoreError::Conflict(format!(
            "{} does not match its checksum (expected {expected}, the file's is {actual}): the copy is damaged or not the one backed up",
            file.display()
        )));
    }
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let version: rusqlite::Result<Option<i64>> =
        conn.query_row("SELECT max(version) FROM schema_migrations", [], |r| r.get(0));
    match version {
        Ok(Some(_)) => Ok(actual),
        _ => Err(StoreError::Conflict(format!(
            "{} is not a Nudge database (it has no applied migrations)",
            file.display()
        ))),
    }
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restore {
    /// Where the database it replaced was moved (with its `-wal`/`-shm` files).
    pub replaced: Option<PathBuf>,
}

/// Puts the checked backup `file` in place of the database at `db`. Refuses while a
/// server holds the workspace ([`WorkspaceLock`]), and when a database is there
/// unless `force` (it is then kept as `nudge.db.replaced-<ms>`).
pub fn restore_sqlite(file: &Path, db: &Path, force: bool, now_ms: i64) -> Result<Restore> {
    verify_backup(file)?;
    let _lock = WorkspaceLock::acquire(db)?;
    let exists = db.exists();
    if exists && !force {
        return Err(StoreError::Conflict(format!(
            "{} exists: restoring replaces it; run again with --force (it is then kept as {}.replaced-<time>)",
            db.display(),
            db.display()
        )));
    }
    if let Some(dir) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = sibling(db, "restoring");
    std::fs::copy(file, &tmp)?;
    File::open(&tmp)?.sync_all()?;
    let replaced = if exists {
        let kept = sibling(db, &format!("replaced-{now_ms}"));
        for suffix in ["-wal", "-shm"] {
            let from = with_suffix(db, suffix);
            if from.exists() {
                std::fs::rename(&from, with_suffix(&kept, suffix))?;
            }
        }
        std::fs::rename(db, &kept)?;
        Some(kept)
    } else {
        // A stray WAL of no database would be read as this one's.
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(db, suffix));
        }
        None
    };
    std::fs::rename(&tmp, db)?;
    sync_dir(db);
    Ok(Restore { replaced })
}

/// The exclusive lock a server holds on `<database>.lock` while it runs; released
/// when dropped or when the process dies.
#[derive(Debug)]
pub struct WorkspaceLock {
    _file: File,
}

impl WorkspaceLock {
    /// Takes the lock of the database at `db`, or says that another process holds it.
    pub fn acquire(db: &Path) -> Result<Self> {
        if let Some(dir) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let path = sibling(db, "lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Conflict(format!(
                "another Nudge process (a running nudge serve) holds the workspace {} ({}): stop it first",
                db.display(),
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io(e)),
        }
    }
}

/// `path` with `.extension` added (`nudge.db` → `nudge.db.lock`).
pub(crate) fn sibling(path: &Path, extension: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn sha256_of(path: &Path) -> Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}
