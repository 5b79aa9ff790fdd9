//! Contacts: changing one (traits, subscriptions), erasing one, and in bulk CSV import
//! (all rows or none) and export (see [`crate::csv_io`]).

use crate::{App, AppError, Result, csv_io};
use nudge_core::{Contact, ContactId};
use nudge_store::ContactPatch;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: usize,
    pub created: u64,
    pub updated: u64,
}

/// Everything Nudge keeps about a contact, for a GDPR export.
#[derive(Debug, Clone)]
pub struct ContactExport {
    pub contact: Contact,
    /// Newest first.
    pub events: Vec<nudge_store::StoredEvent>,
}

impl App {
    /// A contact with its whole timeline (every page of it).
    pub async fn contact_export(&self, id: ContactId) -> Result<ContactExport> {
        let contact = self
            .store
            .contact(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no contact {id}")))?;
        let mut events = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .store
                .contact_events(contact.id, &nudge_store::EventQuery { before, limit: 1000 })
                .await?;
            events.extend(page.items);
            match page.next.as_deref().and_then(nudge_store::EventCursor::decode) {
                Some(c) => before = Some(c),
                None => break,
            }
        }
        Ok(ContactExport { contact, events })
    }

    /// Applies a traits / subscriptions patch (a `null` trait is removed); the
    /// subscription keys are channels or `channel:topic`. The segment engine
    /// re-evaluates the contact.
    pub async fn update_contact(&self, id: ContactId, patch: &ContactPatch) -> Result<Contact> {
        for key in patch.subscriptions.keys() {
            nudge_core::contact::check_subscription_key(key)
                .map_err(|e| AppError::invalid_field(format!("subscriptions.{key}"), e))?;
        }
        let contact = self
            .store
            .update_contact(id, patch, self.clock.now())
            .await?
            .ok_or_else(|| AppError::not_found(format!("no contact {id}")))?;
        self.contacts_changed();
        Ok(contact)
    }

    /// Erases a contact with its identities, events, messages and push subscriptions
    /// (GDPR); `not_found` if there is none.
    pub async fn erase_contact(&self, id: ContactId) -> Result<()> {
        if !self.store.delete_contact(id).await? {
            return Err(AppError::not_found(format!("no contact {id}")));
        }
        tracing::info!(contact = id, "contact erased with all its events");
        Ok(())
    }

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
