//! Contacts: searching them, changing one (traits, subscriptions), erasing one, and in
//! bulk CSV import (all rows or none) and export (see [`crate::csv_io`]).

use crate::{App, AppError, Result, csv_io};
use nudge_core::{Contact, ContactId};
use nudge_store::{ContactPatch, ContactQuery, Lookup};
use serde_json::Value;

/// A search of the contacts: a term, a trait filter, or both, a page at a time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactSearch {
    /// Part of an e-mail address, user id, phone number or name (the rule:
    /// [`nudge_store::search`]); blank for none.
    pub term: String,
    /// A trait that must equal a value.
    pub trait_filter: Option<(String, Value)>,
    /// Only contacts containing the term, even when one's e-mail address or user id is
    /// the whole term.
    pub contains: bool,
    /// The page after this contact id.
    pub after: Option<ContactId>,
    pub limit: usize,
}

/// A page of a [`ContactSearch`].
#[derive(Debug, Clone, PartialEq)]
pub struct ContactSearchPage {
    /// In id order.
    pub contacts: Vec<Contact>,
    /// Where the next page starts (its `after`), if there is one.
    pub next: Option<ContactId>,
    /// The page is the one contact whose e-mail address or user id (an alias too) is
    /// the whole term; the same search with `contains` lists every contact holding it.
    pub exact: bool,
}

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
    /// Searches the contacts. A term that is a whole e-mail address or user id (on the
    /// first page, without a trait filter or `contains`) answers with that contact
    /// alone, found by its identity: also by a user id joined by `alias`, which the
    /// search text does not hold. Otherwise, and when there is no such contact, every
    /// contact holding the term (and having the trait), through the search index.
    pub async fn search_contacts(&self, search: &ContactSearch) -> Result<ContactSearchPage> {
        let term = search.term.trim();
        if !term.is_empty() && search.trait_filter.is_none() && !search.contains && search.after.is_none() {
            let lookup = if term.contains('@') {
                Lookup::Email(term.to_lowercase())
            } else {
                Lookup::UserId(term.to_owned())
            };
            if let Some(contact) = self.store.find_contact(&lookup).await? {
                return Ok(ContactSearchPage {
                    contacts: vec![contact],
                    next: None,
                    exact: true,
                });
            }
        }
        let page = self
            .store
            .list_contacts(&ContactQuery {
                search: Some(term.to_owned()).filter(|t| !t.is_empty()),
                traits: search.trait_filter.iter().cloned().collect(),
                after: search.after,
                limit: search.limit.max(1),
                ..Default::default()
            })
            .await?;
        let next = match page.next.as_deref().map(str::parse::<ContactId>) {
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => return Err(AppError::Internal(format!("a contact page cursor {:?}", page.next))),
            None => None,
        };
        Ok(ContactSearchPage {
            contacts: page.items,
            next,
            exact: false,
        })
    }

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
