//! Predictions, written once for both backends: purchase histories read for fitting,
//! the fitted models, and each contact's predictions with their traits (what they
//! imply is `plan::prediction_ops`'s).

use crate::exec;
use crate::plan;
use crate::predictions::{PurchaseHistory, StoredModel};
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{Result, StoreError};
use nudge_core::journey::revenue_of;
use nudge_core::predict::{BgNbd, GammaGamma, Model, PURCHASE_EVENT, Prediction, Purchase, Unit};
use nudge_core::{ContactId, Millis};
use serde_json::Value;

/// The purchases' filter. The name is written into the statement, not bound, so that
/// the planner uses the partial index `events_purchases` (migration 0024).
fn purchases_where() -> String {
    format!("type = 'track' AND name = '{PURCHASE_EVENT}'")
}

/// A purchase row (`contact_id, timestamp, properties`): its value by the e-commerce
/// spec (`revenue`, else `total`, else `value`; 0 without any).
fn purchase(r: &SqlRow) -> Result<(ContactId, Purchase)> {
    let value = match r.json(2)? {
        Value::Object(p) => revenue_of(&p).unwrap_or(0.0),
        _ => 0.0,
    };
    Ok((r.i64(0)?, Purchase { at: r.i64(1)?, value }))
}

fn group(rows: Vec<(ContactId, Purchase)>) -> Vec<PurchaseHistory> {
    let mut out: Vec<PurchaseHistory> = Vec::new();
    for (contact, p) in rows {
        match out.last_mut() {
            Some(h) if h.contact == contact => h.purchases.push(p),
            _ => out.push(PurchaseHistory {
                contact,
                purchases: vec![p],
            }),
        }
    }
    out
}

/// See `PredictionStore::purchase_histories`. Reads `limit` contacts' worth of rows at
/// a time: the rows of the contacts after `after`, stopping at the `limit`-th
/// contact's last purchase (one extra statement finds where that is).
pub(crate) async fn histories<D: Db>(
    db: &D,
    until: Millis,
    after: ContactId,
    limit: usize,
) -> Result<Vec<PurchaseHistory>> {
    let w = purchases_where();
    // The last contact of the page: the `limit`-th distinct contact after `after`.
    let last = sql::first(
        db,
        &format!(
            "SELECT MAX(contact_id) FROM (SELECT DISTINCT contact_id FROM events
              WHERE {w} AND contact_id > $1 AND timestamp <= $2 ORDER BY contact_id LIMIT $3) AS page"
        ),
        &[Arg::I64(after), Arg::I64(until), Arg::I64(limit.max(1) as i64)],
    )
    .await?
    .and_then(|r| r.opt_i64(0).transpose())
    .transpose()?;
    let Some(last) = last else {
        return Ok(Vec::new());
    };
    let rows = sql::all(
        db,
        &format!(
            "SELECT contact_id, timestamp, properties FROM events
              WHERE {w} AND contact_id > $1 AND contact_id <= $2 AND timestamp <= $3
              ORDER BY contact_id, timestamp"
        ),
        &[Arg::I64(after), Arg::I64(last), Arg::I64(until)],
        purchase,
    )
    .await?;
    Ok(group(rows))
}

pub(crate) async fn history<D: Db>(db: &D, contact: ContactId, until: Millis) -> Result<PurchaseHistory> {
    let contact = db.current_id(contact).await?;
    let rows = sql::all(
        db,
        &format!(
            "SELECT contact_id, timestamp, properties FROM events
              WHERE {} AND contact_id = $1 AND timestamp <= $2 ORDER BY timestamp",
            purchases_where()
        ),
        &[Arg::I64(contact), Arg::I64(until)],
        purchase,
    )
    .await?;
    Ok(PurchaseHistory {
        contact,
        purchases: rows.into_iter().map(|(_, p)| p).collect(),
    })
}

pub(crate) async fn last_event_id<D: Db>(db: &D) -> Result<i64> {
    let row = sql::first(db, "SELECT MAX(id) FROM events", &[]).await?;
    Ok(row.map(|r| r.opt_i64(0)).transpose()?.flatten().unwrap_or(0))
}

pub(crate) async fn purchasers_since<D: Db>(db: &D, after: i64, limit: usize) -> Result<(Vec<ContactId>, i64)> {
    let rows = sql::all(
        db,
        &format!(
            "SELECT id, contact_id FROM events WHERE id > $1 AND {} ORDER BY id LIMIT $2",
            purchases_where()
        ),
        &[Arg::I64(after), Arg::I64(limit.max(1) as i64)],
        |r| Ok((r.i64(0)?, r.i64(1)?)),
    )
    .await?;
    let cursor = rows.last().map_or(after, |(id, _)| *id);
    let mut contacts: Vec<ContactId> = rows.into_iter().map(|(_, c)| c).collect();
    contacts.sort_unstable();
    contacts.dedup();
    Ok((contacts, cursor))
}

const MODEL_COLUMNS: &str = "id, unit, until_at, fitted_at, r, alpha, a, b, log_likelihood, customers, \
     p, q, gamma, gg_log_likelihood, repeat_customers, event_cursor";

fn model_from_row(r: &SqlRow) -> Result<StoredModel> {
    let id = r.i64(0)?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("prediction model {id}: {what}"));
    let f = |i: usize| r.opt_f64(i)?.ok_or_else(|| corrupt("a parameter is missing"));
    let unit = r.string(1)?;
    let gamma_gamma = match (r.opt_f64(10)?, r.opt_f64(11)?, r.opt_f64(12)?) {
        (Some(p), Some(q), Some(gamma)) => Some(GammaGamma { p, q, gamma }),
        _ => None,
    };
    Ok(StoredModel {
        id,
        model: Model {
            unit: Unit::parse(&unit).ok_or_else(|| corrupt(&format!("unit {unit:?}")))?,
            until: r.i64(2)?,
            fitted_at: r.i64(3)?,
            bgnbd: BgNbd {
                r: f(4)?,
                alpha: f(5)?,
                a: f(6)?,
                b: f(7)?,
            },
            bgnbd_log_likelihood: f(8)?,
            customers: r.i64(9)?.max(0) as usize,
            gamma_gamma,
            gamma_gamma_log_likelihood: r.opt_f64(13)?,
            repeat_customers: r.i64(14)?.max(0) as usize,
        },
        event_cursor: r.i64(15)?,
    })
}

pub(crate) async fn save_model<D: Db>(db: &D, model: &Model, event_cursor: i64) -> Result<StoredModel> {
    let gg = model.gamma_gamma;
    let id = db
        .insert(
            "INSERT INTO prediction_models (unit, until_at, fitted_at, r, alpha, a, b, log_likelihood, customers,
               p, q, gamma, gg_log_likelihood, repeat_customers, event_cursor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            &[
                Arg::Str(model.unit.as_str()),
                Arg::I64(model.until),
                Arg::I64(model.fitted_at),
                Arg::OptF64(Some(model.bgnbd.r)),
                Arg::OptF64(Some(model.bgnbd.alpha)),
                Arg::OptF64(Some(model.bgnbd.a)),
                Arg::OptF64(Some(model.bgnbd.b)),
                Arg::OptF64(Some(model.bgnbd_log_likelihood)),
                Arg::I64(model.customers as i64),
                Arg::OptF64(gg.map(|g| g.p)),
                Arg::OptF64(gg.map(|g| g.q)),
                Arg::OptF64(gg.map(|g| g.gamma)),
                Arg::OptF64(model.gamma_gamma_log_likelihood),
                Arg::I64(model.repeat_customers as i64),
                Arg::I64(event_cursor),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt("a prediction model was not inserted".into()))?;
    Ok(StoredModel {
        id,
        model: model.clone(),
        event_cursor,
    })
}

pub(crate) async fn advance_cursor<D: Db>(db: &D, id: i64, event_cursor: i64) -> Result<()> {
    db.execute(
        "UPDATE prediction_models SET event_cursor = $2 WHERE id = $1 AND event_cursor < $2",
        &[Arg::I64(id), Arg::I64(event_cursor)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn model<D: Db>(db: &D) -> Result<Option<StoredModel>> {
    let sql = format!("SELECT {MODEL_COLUMNS} FROM prediction_models ORDER BY id DESC LIMIT 1");
    sql::one(db, &sql, &[], model_from_row).await
}

pub(crate) async fn save_predictions<D: Db>(
    db: &D,
    predictions: Vec<(ContactId, Prediction)>,
    now: Millis,
) -> Result<usize> {
    let rules = db.rules().await?;
    let mut written = 0;
    for (contact, prediction) in predictions {
        let id = db.current_id(contact).await?;
        let Some(stored) = db.load_contact(id).await? else {
            continue;
        };
        let json = serde_json::to_value(&prediction).map_err(|e| StoreError::Corrupt(format!("prediction: {e}")))?;
        db.execute(
            "INSERT INTO contact_predictions (contact_id, prediction, as_of, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (contact_id) DO UPDATE
               SET prediction = excluded.prediction, as_of = excluded.as_of, updated_at = excluded.updated_at",
            &[
                Arg::I64(id),
                Arg::Json(&json),
                Arg::I64(prediction.as_of),
                Arg::I64(now),
            ],
        )
        .await?;
        let ops = plan::prediction_ops(&rules, stored, prediction.traits(), now);
        exec::execute(db, &rules, &ops, now).await?;
        written += 1;
    }
    Ok(written)
}

pub(crate) async fn contact_prediction<D: Db>(db: &D, contact: ContactId) -> Result<Option<Prediction>> {
    let id = db.current_id(contact).await?;
    let row = sql::first(
        db,
        "SELECT prediction FROM contact_predictions WHERE contact_id = $1",
        &[Arg::I64(id)],
    )
    .await?;
    row.map(|r| {
        serde_json::from_value(r.json(0)?).map_err(|e| StoreError::Corrupt(format!("contact {id}'s prediction: {e}")))
    })
    .transpose()
}

macro_rules! impl_prediction_store {
    ($store:ty, $write:ident, $read:ident) => {
        #[async_trait::async_trait]
        impl $crate::PredictionStore for $store {
            async fn purchase_histories(
                &self,
                until: nudge_core::Millis,
                after: nudge_core::ContactId,
                limit: usize,
            ) -> $crate::Result<Vec<$crate::PurchaseHistory>> {
                $read!(self, |db| $crate::shared::predictions::histories(
                    db, until, after, limit
                ))
            }
            async fn purchase_history(
                &self,
                contact: nudge_core::ContactId,
                until: nudge_core::Millis,
            ) -> $crate::Result<$crate::PurchaseHistory> {
                $read!(self, |db| $crate::shared::predictions::history(
                    db, contact, until
                ))
            }
            async fn last_event_id(&self) -> $crate::Result<i64> {
                $read!(self, |db| $crate::shared::predictions::last_event_id(db))
            }
            async fn purchasers_since(
                &self,
                after: i64,
                limit: usize,
            ) -> $crate::Result<(Vec<nudge_core::ContactId>, i64)> {
                $read!(self, |db| $crate::shared::predictions::purchasers_since(
                    db, after, limit
                ))
            }
            async fn save_prediction_model(
                &self,
                model: &nudge_core::predict::Model,
                event_cursor: i64,
            ) -> $crate::Result<$crate::StoredModel> {
                let model = model.clone();
                $write!(self, |db| async move {
                    $crate::shared::predictions::save_model(db, &model, event_cursor).await
                })
            }
            async fn advance_prediction_cursor(&self, id: i64, event_cursor: i64) -> $crate::Result<()> {
                $write!(self, |db| $crate::shared::predictions::advance_cursor(
                    db,
                    id,
                    event_cursor
                ))
            }
            async fn prediction_model(&self) -> $crate::Result<Option<$crate::StoredModel>> {
                $read!(self, |db| $crate::shared::predictions::model(db))
            }
            async fn save_predictions(
                &self,
                predictions: Vec<(nudge_core::ContactId, nudge_core::predict::Prediction)>,
                now: nudge_core::Millis,
            ) -> $crate::Result<usize> {
                $write!(self, |db| $crate::shared::predictions::save_predictions(
                    db,
                    predictions,
                    now
                ))
            }
            async fn contact_prediction(
                &self,
                contact: nudge_core::ContactId,
            ) -> $crate::Result<Option<nudge_core::predict::Prediction>> {
                $read!(self, |db| $crate::shared::predictions::contact_prediction(
                    db, contact
                ))
            }
        }
    };
}
pub(crate) use impl_prediction_store;
