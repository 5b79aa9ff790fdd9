//! Contact imports as background jobs (the web UI's import): a file is read, every
//! row checked — a row that cannot be imported is collected with its row number,
//! column and reason, the others are kept — and the good rows are imported in
//! batches of [`BATCH`] rows, one short store transaction each, so the single SQLite
//! writer is never held for long and ingestion goes on meanwhile. A batch the store
//! refuses is retried row by row, so only the rows at fault fail.
//!
//! Progress lives in this process's memory ([`ImportJobs`]): a restart forgets the
//! progress view and the error report, not the rows already imported. Finished jobs
//! are kept for [`KEEP_FOR`] (at most [`KEEP_FINISHED`] of them); at most
//! [`MAX_RUNNING`] run at once.
//!
//! The admin API's and the CLI's import stay all-or-nothing
//! ([`App::import_contacts_csv`]).

use crate::csv_io::{self, RowError};
use crate::{App, AppError, Result};
use nudge_core::Millis;
use nudge_store::ContactImport;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rows per store transaction.
pub const BATCH: usize = 500;
/// Row errors kept per job (the count goes on past it).
pub const MAX_ERRORS: usize = 100_000;
/// Imports running at once, per process.
pub const MAX_RUNNING: usize = 4;
/// Finished jobs kept, and for how long.
pub const KEEP_FINISHED: usize = 32;
pub const KEEP_FOR: Duration = Duration::from_secs(3600);

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportPhase {
    /// Reading and checking the file's rows.
    Reading,
    /// Importing the good rows, batch by batch.
    Importing,
    /// Every row imported or refused.
    Done,
    /// Stopped by a problem with the whole job (the rows imported so far stay).
    Failed(String),
}

impl ImportPhase {
    pub fn finished(&self) -> bool {
        matches!(self, ImportPhase::Done | ImportPhase::Failed(_))
    }
}

/// A job's state, as last updated.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportProgress {
    pub id: String,
    pub phase: ImportPhase,
    /// Data rows in the file; 0 until it is read.
    pub total: usize,
    /// Rows handled: imported or refused.
    pub done: usize,
    pub created: u64,
    pub updated: u64,
    /// Rows refused (may be more than `errors` holds).
    pub failed: usize,
    /// The refused rows, by row number, at most as many as asked for.
    pub errors: Vec<RowError>,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
}

struct Job {
    progress: ImportProgress,
    finished: Option<Instant>,
}

/// The import jobs of this process.
#[derive(Default)]
pub struct ImportJobs {
    jobs: Mutex<HashMap<String, Arc<Mutex<Job>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ImportJobs {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts importing a CSV file and returns the job's id (128 random bits, so a
    /// job is only seen by whoever was given its address). A file whose header row
    /// is unusable is refused at once ([`AppError::InvalidRequest`] naming `csv`);
    /// [`AppError::Conflict`] while [`MAX_RUNNING`] imports run.
    pub fn start(&self, app: &App, csv: Vec<u8>) -> Result<String> {
        csv_io::check_contacts_csv_header(&csv)?;
        let id = crate::messages::random_key();
        let job = Arc::new(Mutex::new(Job {
            progress: ImportProgress {
                id: id.clone(),
                phase: ImportPhase::Reading,
                total: 0,
                done: 0,
                created: 0,
                updated: 0,
                failed: 0,
                errors: Vec::new(),
                started_at: app.clock.now(),
                finished_at: None,
            },
            finished: None,
        }));
        {
            let mut jobs = lock(&self.jobs);
            let running = jobs.values().filter(|j| lock(j).finished.is_none()).count();
            if running >= MAX_RUNNING {
                return Err(AppError::Conflict(format!(
                    "{running} imports are running; start this one when one of them has finished"
                )));
            }
            // Forget finished jobs past their time, then the oldest beyond the limit.
            jobs.retain(|_, j| lock(j).finished.is_none_or(|at| at.elapsed() < KEEP_FOR));
            let mut finished: Vec<(Instant, String)> = jobs
                .iter()
                .filter_map(|(k, j)| lock(j).finished.map(|at| (at, k.clone())))
                .collect();
            finished.sort();
            let excess = finished.len().saturating_sub(KEEP_FINISHED - 1);
            for (_, k) in finished.into_iter().take(excess) {
                jobs.remove(&k);
            }
            jobs.insert(id.clone(), job.clone());
        }
        let app = app.clone();
        tokio::spawn(async move {
            let outcome = run(&job, &app, csv).await;
            let mut j = lock(&job);
            j.progress.phase = match outcome {
                Ok(()) => ImportPhase::Done,
                Err(e) => {
                    tracing::error!(error = %e, "a contact import stopped");
                    ImportPhase::Failed(e.to_string())
                }
            };
            j.progress.errors.sort_by_key(|e| e.row);
            j.progress.finished_at = Some(app.clock.now());
            j.finished = Some(Instant::now());
            tracing::info!(
                rows = j.progress.total,
                created = j.progress.created,
                updated = j.progress.updated,
                failed = j.progress.failed,
                "contact import finished"
            );
        });
        Ok(id)
    }

    /// A job's progress with at most `errors` of its row errors; `None` for a job
    /// this process does not know (never started here, forgotten, or before a
    /// restart).
    pub fn progress(&self, id: &str, errors: usize) -> Option<ImportProgress> {
        let job = lock(&self.jobs).get(id).cloned()?;
        let j = lock(&job);
        let mut p = j.progress.clone_without_errors();
        p.errors = j.progress.errors.iter().take(errors).cloned().collect();
        Some(p)
    }

    /// Every kept row error of a job as CSV (`row,column,message`).
    pub fn errors_csv(&self, id: &str) -> Option<Result<String>> {
        let job = lock(&self.jobs).get(id).cloned()?;
        let errors = lock(&job).progress.errors.clone();
        Some(errors_csv(&errors))
    }
}

impl ImportProgress {
    fn clone_without_errors(&self) -> Self {
        ImportProgress {
            errors: Vec::new(),
            phase: self.phase.clone(),
            id: self.id.clone(),
            ..*self
        }
    }
}

/// Row errors as CSV: `row,column,message`.
pub fn errors_csv(errors: &[RowError]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["row", "column", "message"])
        .map_err(AppError::internal)?;
    for e in errors {
        w.write_record([
            e.row.to_string().as_str(),
            e.column.as_deref().unwrap_or(""),
            &e.message,
        ])
        .map_err(AppError::internal)?;
    }
    String::from_utf8(w.into_inner().map_err(AppError::internal)?).map_err(AppError::internal)
}

fn refuse(job: &Mutex<Job>, errors: impl IntoIterator<Item = RowError>) {
    let mut j = lock(job);
    for e in errors {
        j.progress.failed += 1;
        j.progress.done += 1;
        if j.progress.errors.len() < MAX_ERRORS {
            j.progress.errors.push(e);
        }
    }
}

async fn run(job: &Mutex<Job>, app: &App, csv: Vec<u8>) -> Result<()> {
    // Reading a large file takes a while: off the async threads.
    let read = tokio::task::spawn_blocking(move || csv_io::read_contacts_csv(&csv))
        .await
        .map_err(AppError::internal)??;
    {
        let mut j = lock(job);
        j.progress.total = read.total();
        j.progress.phase = ImportPhase::Importing;
    }
    let mut errors = read.errors;
    errors.sort_by_key(|e| e.row);
    refuse(job, errors);
    let mut rows = read.rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<(usize, ContactImport)> = rows.by_ref().take(BATCH).collect();
        let n = batch.len();
        let contacts: Vec<ContactImport> = batch.iter().map(|(_, c)| c.clone()).collect();
        match app.store.import_contacts(contacts, app.clock.now()).await {
            Ok(report) => {
                let mut j = lock(job);
                j.progress.created += report.created;
                j.progress.updated += report.updated;
                j.progress.done += n;
            }
            Err(e) => {
                tracing::warn!(error = %e, "a batch of the import was refused; importing its rows one by one");
                for (row, contact) in batch {
                    match app.store.import_contacts(vec![contact], app.clock.now()).await {
                        Ok(report) => {
                            let mut j = lock(job);
                            j.progress.created += report.created;
                            j.progress.updated += report.updated;
                            j.progress.done += 1;
                        }
                        Err(e) => refuse(
                            job,
                            [RowError {
                                row,
                                column: None,
                                message: e.to_string(),
                            }],
                        ),
                    }
                }
            }
        }
        // Segments follow the import as it goes.
        app.contacts_changed();
        tokio::task::yield_now().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_errors_are_written_as_csv() {
        let csv = errors_csv(&[
            RowError {
                row: 3,
                column: Some("email".into()),
                message: "\"a, b\" is not an email address".into(),
            },
            RowError {
                row: 9,
                column: None,
                message: "a row needs a user_id or an email".into(),
            },
        ])
        .unwrap();
        assert_eq!(
            csv,
            "row,column,message\n3,email,\"\"\"a, b\"\" is not an email address\"\n9,,a row needs a user_id or an email\n"
        );
    }
}
