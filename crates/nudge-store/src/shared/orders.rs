//! Each contact's order totals (`contact_orders`, migration 34), written once for both
//! backends: kept apart from the events so that event retention leaves them whole
//! (docs/operations.md, "Aggregates that survive").
//!
//! What an order is and how totals add up is `nudge_core::orders`'s rule; what new
//! totals imply (the row, the traits `nudge_core::orders::TRAITS` with the journeys'
//! notice and the segments' mark) is [`plan::order_ops`]'s. Here: the orders a call
//! stored are counted in its transaction ([`ingested`]), a merge combines two
//! contacts' totals ([`merge`]), and migration 34 counts the orders stored before it
//! ([`backfill`]). Erasure deletes the row with the contact's own state
//! (`shared::contacts::erase`).

use crate::plan::{self, Rules};
use crate::shared::ingest::NewEvents;
use crate::sql::{Arg, Db, SqlRow};
use crate::{Result, exec};
use nudge_core::orders::OrderTotals;
use nudge_core::{Call, ContactId, Millis};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Contacts a read names at most (a bound on the statement's text).
const CONTACTS_PER_READ: usize = 200;

/// Counts the orders among the events a call stored (`written`: whether each of
/// `events` was stored; a duplicate is not), in the call's transaction, after its
/// events are written: each contact's totals with its new orders, and their traits.
pub(crate) async fn ingested<D: Db>(
    db: &D,
    rules: &Rules,
    messages: &[Call],
    events: &NewEvents<'_>,
    written: &[bool],
    now: Millis,
) -> Result<()> {
    let mut orders: BTreeMap<ContactId, OrderTotals> = BTreeMap::new();
    for (k, &i) in events.messages.iter().enumerate() {
        if !written[k] {
            continue;
        }
        if let Some(order) = OrderTotals::of_call(&messages[i]) {
            orders
                .entry(events.contact_ids[k])
                .and_modify(|t| t.add(&order))
                .or_insert(order);
        }
    }
    if orders.is_empty() {
        return Ok(());
    }
    // The contacts that received events are locked by the call until it commits
    // (`Ingest::touch`, `Ingest::lock_contacts`; those it created are nobody else's), so
    // the totals read here are the latest.
    let ids: Vec<ContactId> = orders.keys().copied().collect();
    let mut stored = traits_and_totals(db, &ids).await?;
    let mut contacts = Vec::with_capacity(orders.len());
    for (id, new) in orders {
        // A contact gone since (merged away, erased) counts nothing.
        let Some((traits, kept)) = stored.remove(&id) else {
            continue;
        };
        if let Some(totals) = OrderTotals::combined(kept, Some(new)) {
            contacts.push((id, traits, totals));
        }
    }
    let ops = plan::order_ops(rules, contacts, now);
    exec::execute(db, rules, &ops, now).await
}

/// The order totals of a row read from column `at` on (`orders, revenue, first_at,
/// last_at`); `None` where the contact has no row (a left join's nulls).
fn totals_at(r: &SqlRow, at: usize) -> Result<Option<OrderTotals>> {
    let Some(count) = r.opt_i64(at)? else {
        return Ok(None);
    };
    Ok(Some(OrderTotals {
        count,
        revenue: r.opt_f64(at + 1)?.unwrap_or(0.0),
        first_at: r.i64(at + 2)?,
        last_at: r.i64(at + 3)?,
    }))
}

fn id_list(ids: &[ContactId]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// These contacts' traits and stored order totals, by contact (a contact that is gone
/// is missing).
async fn traits_and_totals<D: Db>(
    db: &D,
    ids: &[ContactId],
) -> Result<BTreeMap<ContactId, (Map<String, Value>, Option<OrderTotals>)>> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(CONTACTS_PER_READ) {
        let rows = db
            .query(
                &format!(
                    "SELECT c.id, c.traits, o.orders, o.revenue, o.first_at, o.last_at
                     FROM contacts AS c LEFT JOIN contact_orders AS o ON o.contact_id = c.id
                     WHERE c.id IN ({})",
                    id_list(chunk)
                ),
                &[],
            )
            .await?;
        for r in rows {
            let traits = r.traits(1)?;
            out.insert(r.i64(0)?, (traits, totals_at(&r, 2)?));
        }
    }
    Ok(out)
}

/// A contact's order totals (followed through merges), if it has any.
pub(crate) async fn totals<D: Db>(db: &D, contact: ContactId) -> Result<Option<OrderTotals>> {
    let id = db.current_id(contact).await?;
    let row = crate::sql::first(
        db,
        "SELECT orders, revenue, first_at, last_at FROM contact_orders WHERE contact_id = $1",
        &[Arg::I64(id)],
    )
    .await?;
    row.map_or(Ok(None), |r| totals_at(&r, 0))
}

/// Stores contacts' order totals (one row per contact, replaced), as of `at`.
pub(crate) async fn write<D: Db>(db: &D, rows: &[(ContactId, OrderTotals)], at: Millis) -> Result<()> {
    let args: Vec<Arg<'_>> = rows
        .iter()
        .flat_map(|(contact, t)| {
            [
                Arg::I64(*contact),
                Arg::I64(t.count),
                Arg::OptF64(Some(t.revenue)),
                Arg::I64(t.first_at),
                Arg::I64(t.last_at),
                Arg::I64(at),
            ]
        })
        .collect();
    db.execute_rows(
        "INSERT INTO contact_orders (contact_id, orders, revenue, first_at, last_at, updated_at)",
        6,
        "ON CONFLICT (contact_id) DO UPDATE SET orders = excluded.orders, revenue = excluded.revenue,
         first_at = excluded.first_at, last_at = excluded.last_at, updated_at = excluded.updated_at",
        &args,
    )
    .await
}

/// A merge of contact `from` into `into` (both locked by the caller): `into`'s totals
/// become both contacts' together (`OrderTotals::add`), `from`'s row goes, and the
/// combined totals' traits are set in `traits`, the survivor's, which the caller
/// saves. Nothing when neither ordered.
pub(crate) async fn merge<D: Db>(
    db: &D,
    from: ContactId,
    into: ContactId,
    traits: &mut Map<String, Value>,
    now: Millis,
) -> Result<()> {
    let rows = db
        .query(
            "SELECT contact_id, orders, revenue, first_at, last_at FROM contact_orders
             WHERE contact_id = $1 OR contact_id = $2",
            &[Arg::I64(from), Arg::I64(into)],
        )
        .await?;
    let mut kept = BTreeMap::new();
    for r in &rows {
        kept.insert(r.i64(0)?, totals_at(r, 1)?);
    }
    let (a, b) = (kept.remove(&from).flatten(), kept.remove(&into).flatten());
    let Some(totals) = OrderTotals::combined(a, b) else {
        return Ok(());
    };
    if a.is_some() {
        db.execute("DELETE FROM contact_orders WHERE contact_id = $1", &[Arg::I64(from)])
            .await?;
    }
    write(db, &[(into, totals)], now).await?;
    traits.extend(totals.traits());
    Ok(())
}

/// Migration 34's step: the totals of the orders stored before it, each contact's row
/// and traits, a page of contacts at a time (read as the lifetime-value models read
/// purchases), as of `now`. How many contacts had orders.
pub(crate) async fn backfill<D: Db>(db: &D, now: Millis) -> Result<usize> {
    const PAGE: usize = 1_000;
    let (mut after, mut done) = (0, 0);
    loop {
        let page = crate::shared::predictions::histories(db, Millis::MAX, after, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(done);
        };
        after = last.contact;
        let ids: Vec<ContactId> = page.iter().map(|h| h.contact).collect();
        let mut stored = traits_and_totals(db, &ids).await?;
        let mut rows = Vec::with_capacity(page.len());
        let mut traits = Vec::with_capacity(page.len());
        for h in &page {
            let (Some((mut t, _)), Some(totals)) = (stored.remove(&h.contact), OrderTotals::of_purchases(&h.purchases))
            else {
                continue;
            };
            t.extend(totals.traits());
            traits.push((h.contact, Value::Object(t)));
            rows.push((h.contact, totals));
        }
        let written: Vec<(ContactId, &Value)> = traits.iter().map(|(c, t)| (*c, t)).collect();
        db.set_traits(&written, now).await?;
        write(db, &rows, now).await?;
        done += rows.len();
    }
}
