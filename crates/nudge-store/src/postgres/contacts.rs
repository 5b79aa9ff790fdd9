//! Contacts on PostgreSQL: imports, loading and saving a contact with its identities,
//! merged-id resolution.

use super::*;
use crate::shared::ingest::stale;

/// Creates or updates contacts matched by user id, then email.
pub(super) async fn import_tx(tx: &Transaction<'_>, rows: &[ContactImport], now: Millis) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    for row in rows {
        let by_user = match &row.user_id {
            Some(u) => known(tx, IdentityKind::UserId, u).await?.map(|k| k.id),
            None => None,
        };
        let by_email = match (&by_user, &row.email) {
            (None, Some(e)) => {
                let stmt = tx
                    .prepare_cached("SELECT id FROM contacts WHERE email = $1 ORDER BY id LIMIT 1")
                    .await?;
                tx.query_opt(&stmt, &[&e.trim().to_ascii_lowercase()])
                    .await?
                    .map(|r| r.try_get::<_, ContactId>(0))
                    .transpose()?
            }
            _ => None,
        };
        let id = match by_user.or(by_email) {
            Some(id) => {
                report.updated += 1;
                id
            }
            None => {
                report.created += 1;
                shared::ingest::create_contact(&db::PgDb::tx(tx), None, row.user_id.as_deref(), None, now).await?
            }
        };
        let mut contact = load_contact(tx, id, true).await?.ok_or_else(stale)?;
        if contact.user_id.is_none()
            && let Some(u) = &row.user_id
        {
            contact.user_id = Some(u.clone());
            shared::ingest::add_identity(&db::PgDb::tx(tx), contact.id, &Identity::user(u), now).await?;
        }
        let mut traits = row.traits.clone();
        if let Some(e) = &row.email {
            traits.insert("email".into(), Value::String(e.clone()));
        }
        contact.apply_traits(&traits);
        contact
            .subscriptions
            .extend(row.subscriptions.iter().map(|(k, v)| (k.clone(), *v)));
        contact.updated_at = now;
        save_contact(tx, &contact).await?;
        let changed: Vec<String> = traits.keys().cloned().collect();
        crate::exec::traits_changed(&db::PgDb::tx(tx), &exec::rules(tx).await?, contact.id, &changed, now).await?;
    }
    Ok(report)
}

/// The id a (possibly merged-away) contact id stands for today.
pub(super) async fn current_id(c: &impl GenericClient, id: ContactId) -> Result<ContactId> {
    let stmt = c
        .prepare_cached("SELECT into_id FROM contact_merges WHERE from_id = $1")
        .await?;
    match c.query_opt(&stmt, &[&id]).await? {
        Some(r) => Ok(r.try_get(0)?),
        None => Ok(id),
    }
}

/// A contact with its identities in one statement (so in one snapshot). Identities
/// are ordered as on SQLite: by creation, then by value in byte order.
pub(super) const CONTACT_SELECT: &str = r#"SELECT c.id, c.user_id, c.email, c.phone, c.traits, c.subscriptions, c.created_at,
    c.updated_at, c.last_seen_at,
    ARRAY(SELECT i.kind FROM identities i WHERE i.contact_id = c.id
          ORDER BY i.created_at, i.value COLLATE "C", i.kind COLLATE "C") AS identity_kinds,
    ARRAY(SELECT i.value FROM identities i WHERE i.contact_id = c.id
          ORDER BY i.created_at, i.value COLLATE "C", i.kind COLLATE "C") AS identity_values
    FROM contacts c"#;

/// `for_update` locks the contact's row until the end of the transaction.
pub(super) async fn load_contact(c: &impl GenericClient, id: ContactId, for_update: bool) -> Result<Option<Contact>> {
    let sql = if for_update {
        format!("{CONTACT_SELECT} WHERE c.id = $1 FOR UPDATE OF c")
    } else {
        format!("{CONTACT_SELECT} WHERE c.id = $1")
    };
    let stmt = c.prepare_cached(&sql).await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .map(|r| contact_from_row(&r))
        .transpose()
}

pub(super) fn contact_from_row(r: &tokio_postgres::Row) -> Result<Contact> {
    let id: ContactId = r.try_get(0)?;
    let created_at: Millis = r.try_get(6)?;
    let mut contact = Contact::new(id, created_at);
    contact.user_id = r.try_get(1)?;
    contact.email = r.try_get(2)?;
    contact.phone = r.try_get(3)?;
    contact.traits = match r.try_get::<_, Value>(4)? {
        Value::Object(m) => m,
        other => {
            return Err(StoreError::Corrupt(format!("traits of contact {id}: {other}")));
        }
    };
    contact.subscriptions = serde_json::from_value::<BTreeMap<String, Subscription>>(r.try_get(5)?)
        .map_err(|e| StoreError::Corrupt(format!("subscriptions: {e}")))?;
    contact.updated_at = r.try_get(7)?;
    contact.last_seen_at = r.try_get(8)?;
    let kinds: Vec<String> = r.try_get(9)?;
    let values: Vec<String> = r.try_get(10)?;
    for (kind, value) in kinds.into_iter().zip(values) {
        fold_identity(&mut contact, &kind, value)?;
    }
    Ok(contact)
}

pub(super) async fn save_contact(c: &impl GenericClient, contact: &Contact) -> Result<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE contacts SET user_id = $2, email = $3, phone = $4, traits = $5, subscriptions = $6, created_at = $7,
             updated_at = $8, last_seen_at = $9, search = $10 WHERE id = $1",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &contact.id,
            &contact.user_id,
            &contact.email,
            &contact.phone,
            &Json(&contact.traits),
            &Json(&contact.subscriptions),
            &contact.created_at,
            &contact.updated_at,
            &contact.last_seen_at,
            &crate::search::text(contact),
        ],
    )
    .await?;
    Ok(())
}

pub(super) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
