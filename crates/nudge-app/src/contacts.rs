//! Contacts in bulk: CSV import (all rows or none) and export (see [`crate::csv_io`]).

use crate::{App, Result, csv_io};

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: usize,
    pub created: u64,
    pub updated: u64,
}

impl App {
    /// Imports a CSV of contacts: every row or, on the first invalid one, none.
    pub async fn import_contacts_csv(&self, csv: &[u8]) -> Result<ImportReport> {
        self.import_contacts(csv_io::parse_contacts_csv(csv)?).await
    }

    /// Imports parsed rows (one transaction) and wakes the segment engine.
    pub async fn import_contacts(&self, rows: Vec<nudge_store::ContactImport>) -> Result<ImportReport> {
        let n = rows.len();
        let report = self.store.import_contacts(rows, self.clock.now()).await?;
        self.contacts_changed();
        Ok(ImportReport {
            rows: n,
            created: report.created,
            updated: report.updated,
        })
    }

    /// All contacts as CSV.
    pub async fn export_contacts_csv(&self) -> Result<String> {
        csv_io::export_contacts_csv(&*self.store).await
    }

    /// A new key of `kind` named `name`; its secret is returned once and never stored.
    pub async fn create_key(&self, kind: nudge_store::KeyKind, name: &str) -> Result<(nudge_store::ApiKey, String)> {
        crate::keys::create_key(&*self.store, kind, name, self.clock.now()).await
    }

    /// Every key, active and revoked.
    pub async fn list_keys(&self) -> Result<Vec<nudge_store::ApiKey>> {
        crate::keys::list_keys(&*self.store).await
    }

    /// Revokes an active key; [`crate::AppError::NotFound`] when there is none.
    pub async fn revoke_key(&self, id: i64) -> Result<()> {
        if crate::keys::revoke_key(&*self.store, id, self.clock.now()).await? {
            Ok(())
        } else {
            Err(crate::AppError::not_found(format!("no active key {id}")))
        }
    }
}
