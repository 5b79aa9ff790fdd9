//! Product recommendations, written once for both backends: product events read for
//! a refresh (a page of contacts at a time through the partial index
//! `events_products`, migration 0026), the catalogue, each refresh's lists and best
//! sellers, and the reads a list is made from.

use crate::recommendations::{ContactTouches, ProductPage, RecommendationModel};
use crate::sql::{self, Arg, Db, SqlRow};
use crate::{Result, StoreError};
use nudge_core::recommend::{self, ContactTouch, Inputs, Popular, Product, ProductFacts, Similar};
use nudge_core::{ContactId, Millis};
use std::collections::{BTreeSet, HashMap};

/// The product events' filter. Written into the statement, not bound, so that the
/// planner uses the partial index `events_products`.
fn products_where() -> String {
    let names: Vec<String> = recommend::EVENTS.iter().map(|n| format!("'{n}'")).collect();
    format!("type = 'track' AND name IN ({})", names.join(", "))
}

/// A product event row (`contact_id, timestamp, name, properties`) as touches.
type Row = (ContactId, Millis, Option<(recommend::TouchKind, Vec<ProductFacts>)>);

fn touch_row(r: &SqlRow) -> Result<Row> {
    let name = r.opt_string(2)?.unwrap_or_default();
    Ok((r.i64(0)?, r.i64(1)?, recommend::touches_of(&name, &r.json(3)?)))
}

pub(crate) async fn touches<D: Db>(db: &D, after: ContactId, limit: usize) -> Result<Vec<ContactTouches>> {
    let w = products_where();
    let last = sql::first(
        db,
        &format!(
            "SELECT MAX(contact_id) FROM (SELECT DISTINCT contact_id FROM events
              WHERE {w} AND contact_id > $1 ORDER BY contact_id LIMIT $2) AS page"
        ),
        &[Arg::I64(after), Arg::I64(limit.max(1) as i64)],
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
            "SELECT contact_id, timestamp, name, properties FROM events
              WHERE {w} AND contact_id > $1 AND contact_id <= $2 ORDER BY contact_id, timestamp"
        ),
        &[Arg::I64(after), Arg::I64(last)],
        touch_row,
    )
    .await?;
    let mut out: Vec<ContactTouches> = Vec::new();
    for (contact, at, touched) in rows {
        if out.last().is_none_or(|c| c.contact != contact) {
            out.push(ContactTouches {
                contact,
                touches: Vec::new(),
            });
        }
        if let (Some((kind, products)), Some(c)) = (touched, out.last_mut()) {
            c.touches.push((at, kind, products));
        }
    }
    Ok(out)
}

pub(crate) async fn seen_since<D: Db>(db: &D, after: i64, limit: usize) -> Result<(Vec<ProductFacts>, i64)> {
    let rows = sql::all(
        db,
        &format!(
            "SELECT id, timestamp, name, properties FROM events WHERE id > $1 AND {} ORDER BY id LIMIT $2",
            products_where()
        ),
        &[Arg::I64(after), Arg::I64(limit.max(1) as i64)],
        touch_row,
    )
    .await?;
    let cursor = rows.last().map_or(after, |(id, _, _)| *id);
    let facts = rows
        .into_iter()
        .filter_map(|(_, _, t)| t)
        .flat_map(|(_, products)| products)
        .collect();
    Ok((facts, cursor))
}

pub(crate) async fn contact_touches<D: Db>(db: &D, contact: ContactId, limit: usize) -> Result<Vec<ContactTouch>> {
    let contact = db.current_id(contact).await?;
    let rows = sql::all(
        db,
        &format!(
            "SELECT contact_id, timestamp, name, properties FROM events
              WHERE {} AND contact_id = $1 ORDER BY timestamp DESC, id DESC LIMIT $2",
            products_where()
        ),
        &[Arg::I64(contact), Arg::I64(limit.max(1) as i64)],
        touch_row,
    )
    .await?;
    let mut out = Vec::new();
    for (_, at, touched) in rows {
        if let Some((kind, products)) = touched {
            out.extend(products.into_iter().map(|p| ContactTouch {
                at,
                kind,
                product: p.id,
            }));
        }
    }
    Ok(out)
}

pub(crate) async fn record_products<D: Db>(db: &D, facts: Vec<ProductFacts>, now: Millis) -> Result<()> {
    for f in facts {
        db.execute(
            "INSERT INTO products (id, name, price, category, url, image_url, source, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'events', $7)
             ON CONFLICT (id) DO UPDATE SET
               name = COALESCE(excluded.name, products.name),
               price = COALESCE(excluded.price, products.price),
               category = COALESCE(excluded.category, products.category),
               url = COALESCE(excluded.url, products.url),
               image_url = COALESCE(excluded.image_url, products.image_url),
               updated_at = excluded.updated_at
             WHERE products.source = 'events'",
            &[
                Arg::Str(&f.id),
                Arg::OptStr(f.name.as_deref()),
                Arg::OptF64(f.price),
                Arg::OptStr(f.category.as_deref()),
                Arg::OptStr(f.url.as_deref()),
                Arg::OptStr(f.image_url.as_deref()),
                Arg::I64(now),
            ],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn put_products<D: Db>(db: &D, products: Vec<Product>, now: Millis) -> Result<()> {
    for p in products {
        db.execute(
            "INSERT INTO products (id, name, price, category, url, image_url, in_stock, repeatable, source, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'catalogue', $9)
             ON CONFLICT (id) DO UPDATE SET
               name = excluded.name, price = excluded.price, category = excluded.category, url = excluded.url,
               image_url = excluded.image_url, in_stock = excluded.in_stock, repeatable = excluded.repeatable,
               source = excluded.source, updated_at = excluded.updated_at",
            &[
                Arg::Str(&p.id),
                Arg::OptStr(p.name.as_deref()),
                Arg::OptF64(p.price),
                Arg::OptStr(p.category.as_deref()),
                Arg::OptStr(p.url.as_deref()),
                Arg::OptStr(p.image_url.as_deref()),
                Arg::OptBool(p.in_stock),
                Arg::Bool(p.repeatable),
                Arg::I64(now),
            ],
        )
        .await?;
    }
    Ok(())
}

const PRODUCT_COLUMNS: &str = "id, name, price, category, url, image_url, in_stock, repeatable";

fn product_from_row(r: &SqlRow) -> Result<Product> {
    Ok(Product {
        id: r.string(0)?,
        name: r.opt_string(1)?,
        price: r.opt_f64(2)?,
        category: r.opt_string(3)?,
        url: r.opt_string(4)?,
        image_url: r.opt_string(5)?,
        in_stock: r.opt_bool(6)?,
        repeatable: r.bool(7)?,
    })
}

pub(crate) async fn product<D: Db>(db: &D, id: &str) -> Result<Option<Product>> {
    sql::one(
        db,
        &format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"),
        &[Arg::Str(id)],
        product_from_row,
    )
    .await
}

pub(crate) async fn products<D: Db>(db: &D, after: Option<&str>, limit: usize) -> Result<ProductPage> {
    let limit = limit.max(1);
    let products = sql::all(
        db,
        &format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id > $1 ORDER BY id LIMIT $2"),
        &[Arg::Str(after.unwrap_or("")), Arg::I64(limit as i64)],
        product_from_row,
    )
    .await?;
    let next = (products.len() == limit)
        .then(|| products.last().map(|p| p.id.clone()))
        .flatten();
    Ok(ProductPage { products, next })
}

pub(crate) async fn delete_product<D: Db>(db: &D, id: &str) -> Result<bool> {
    Ok(db
        .execute("DELETE FROM products WHERE id = $1", &[Arg::Str(id)])
        .await?
        > 0)
}

pub(crate) async fn start_model<D: Db>(db: &D, started_at: Millis, event_cursor: i64) -> Result<i64> {
    db.insert(
        "INSERT INTO recommendation_models (started_at, event_cursor) VALUES ($1, $2)",
        &[Arg::I64(started_at), Arg::I64(event_cursor)],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("a recommendation model was not inserted".into()))
}

pub(crate) async fn save_similarities<D: Db>(db: &D, model: i64, lists: Vec<(String, Vec<Similar>)>) -> Result<()> {
    for (product, list) in lists {
        for (i, s) in list.iter().enumerate() {
            db.execute(
                "INSERT INTO product_similarities (model_id, product_id, rank, similar_id, score, support)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    Arg::I64(model),
                    Arg::Str(&product),
                    Arg::I64(i as i64 + 1),
                    Arg::Str(&s.product),
                    Arg::OptF64(Some(s.score)),
                    Arg::I64(i64::from(s.support)),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

pub(crate) async fn save_popular<D: Db>(db: &D, model: i64, popular: Vec<Popular>) -> Result<()> {
    for p in popular {
        db.execute(
            "INSERT INTO product_popularity (model_id, category, rank, product_id, buyers) VALUES ($1, $2, $3, $4, $5)",
            &[
                Arg::I64(model),
                Arg::Str(&p.category),
                Arg::I64(i64::from(p.rank)),
                Arg::Str(&p.product),
                Arg::I64(i64::from(p.buyers)),
            ],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn finish_model<D: Db>(db: &D, m: &RecommendationModel) -> Result<()> {
    db.execute(
        "UPDATE recommendation_models SET finished_at = $2, contacts = $3, products = $4, pairs = $5,
           similar_products = $6, event_cursor = $7 WHERE id = $1",
        &[
            Arg::I64(m.id),
            Arg::I64(m.finished_at.unwrap_or(m.started_at)),
            Arg::I64(m.contacts),
            Arg::I64(m.products),
            Arg::I64(m.pairs),
            Arg::I64(m.similar_products),
            Arg::I64(m.event_cursor),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn drop_old<D: Db>(db: &D, model: i64, limit: usize) -> Result<u64> {
    let popular = db
        .execute("DELETE FROM product_popularity WHERE model_id < $1", &[Arg::I64(model)])
        .await?;
    let similar = db
        .execute(
            "DELETE FROM product_similarities WHERE model_id < $1 AND product_id IN
               (SELECT product_id FROM product_similarities WHERE model_id < $1 LIMIT $2)",
            &[Arg::I64(model), Arg::I64(limit.max(1) as i64)],
        )
        .await?;
    Ok(popular + similar)
}

pub(crate) async fn advance_cursor<D: Db>(db: &D, model: i64, event_cursor: i64) -> Result<()> {
    db.execute(
        "UPDATE recommendation_models SET event_cursor = $2 WHERE id = $1 AND event_cursor < $2",
        &[Arg::I64(model), Arg::I64(event_cursor)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn model<D: Db>(db: &D) -> Result<Option<RecommendationModel>> {
    sql::one(
        db,
        "SELECT id, started_at, finished_at, event_cursor, contacts, products, pairs, similar_products
           FROM recommendation_models WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
        &[],
        |r| {
            Ok(RecommendationModel {
                id: r.i64(0)?,
                started_at: r.i64(1)?,
                finished_at: r.opt_i64(2)?,
                event_cursor: r.i64(3)?,
                contacts: r.i64(4)?,
                products: r.i64(5)?,
                pairs: r.i64(6)?,
                similar_products: r.i64(7)?,
            })
        },
    )
    .await
}

/// `$first, $first+1, ...` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The catalogue rows of these products, added to `into`.
async fn load_products<D: Db>(db: &D, ids: &BTreeSet<String>, into: &mut HashMap<String, Product>) -> Result<()> {
    let wanted: Vec<&String> = ids.iter().filter(|id| !into.contains_key(*id)).collect();
    for chunk in wanted.chunks(500) {
        let args: Vec<Arg<'_>> = chunk.iter().map(|id| Arg::Str(id)).collect();
        let rows = sql::all(
            db,
            &format!(
                "SELECT {PRODUCT_COLUMNS} FROM products WHERE id IN ({})",
                placeholders(1, chunk.len())
            ),
            &args,
            product_from_row,
        )
        .await?;
        into.extend(rows.into_iter().map(|p| (p.id.clone(), p)));
    }
    Ok(())
}

pub(crate) async fn inputs<D: Db>(db: &D, seeds: &[String]) -> Result<Inputs> {
    let mut out = Inputs::default();
    let seeds: Vec<&String> = seeds
        .iter()
        .take(recommend::MAX_SEEDS + recommend::MAX_EVENT_PRODUCTS)
        .collect();
    let mut named: BTreeSet<String> = seeds.iter().map(|s| s.to_string()).collect();
    load_products(db, &named, &mut out.products).await?;
    let Some(model) = model(db).await? else {
        return Ok(out);
    };
    if !seeds.is_empty() {
        let mut args = vec![Arg::I64(model.id)];
        args.extend(seeds.iter().map(|s| Arg::Str(s)));
        let rows = sql::all(
            db,
            &format!(
                "SELECT product_id, similar_id, score, support FROM product_similarities
                  WHERE model_id = $1 AND product_id IN ({}) ORDER BY product_id, rank",
                placeholders(2, seeds.len())
            ),
            &args,
            |r| {
                Ok((
                    r.string(0)?,
                    Similar {
                        product: r.string(1)?,
                        score: r.opt_f64(2)?.unwrap_or(0.0),
                        support: r.i64(3)?.max(0) as u32,
                    },
                ))
            },
        )
        .await?;
        for (product, s) in rows {
            named.insert(s.product.clone());
            out.similar.entry(product).or_default().push(s);
        }
    }
    let mut categories: BTreeSet<String> = seeds
        .iter()
        .filter_map(|s| out.products.get(*s).and_then(|p| p.category.clone()))
        .collect();
    categories.insert(String::new());
    let categories: Vec<String> = categories.into_iter().collect();
    let mut args = vec![Arg::I64(model.id)];
    args.extend(categories.iter().map(|c| Arg::Str(c)));
    out.popular = sql::all(
        db,
        &format!(
            "SELECT category, product_id, buyers, rank FROM product_popularity
              WHERE model_id = $1 AND category IN ({}) ORDER BY category, rank",
            placeholders(2, categories.len())
        ),
        &args,
        |r| {
            Ok(Popular {
                category: r.string(0)?,
                product: r.string(1)?,
                buyers: r.i64(2)?.max(0) as u32,
                rank: r.i64(3)?.max(0) as u32,
            })
        },
    )
    .await?;
    named.extend(out.popular.iter().map(|p| p.product.clone()));
    load_products(db, &named, &mut out.products).await?;
    Ok(out)
}

macro_rules! impl_recommendation_store {
    ($store:ty, $write:ident, $read:ident) => {
        #[async_trait::async_trait]
        impl $crate::RecommendationStore for $store {
            async fn product_touches(
                &self,
                after: nudge_core::ContactId,
                limit: usize,
            ) -> $crate::Result<Vec<$crate::ContactTouches>> {
                $read!(self, |db| $crate::shared::recommendations::touches(
                    db, after, limit
                ))
            }
            async fn products_seen_since(
                &self,
                after: i64,
                limit: usize,
            ) -> $crate::Result<(Vec<nudge_core::recommend::ProductFacts>, i64)> {
                $read!(self, |db| $crate::shared::recommendations::seen_since(
                    db, after, limit
                ))
            }
            async fn contact_touches(
                &self,
                contact: nudge_core::ContactId,
                limit: usize,
            ) -> $crate::Result<Vec<nudge_core::recommend::ContactTouch>> {
                $read!(self, |db| $crate::shared::recommendations::contact_touches(
                    db, contact, limit
                ))
            }
            async fn record_products(
                &self,
                facts: Vec<nudge_core::recommend::ProductFacts>,
                now: nudge_core::Millis,
            ) -> $crate::Result<()> {
                $write!(self, |db| $crate::shared::recommendations::record_products(
                    db, facts, now
                ))
            }
            async fn put_products(
                &self,
                products: Vec<nudge_core::recommend::Product>,
                now: nudge_core::Millis,
            ) -> $crate::Result<()> {
                $write!(self, |db| $crate::shared::recommendations::put_products(
                    db, products, now
                ))
            }
            async fn product(&self, id: &str) -> $crate::Result<Option<nudge_core::recommend::Product>> {
                let id = id.to_string();
                $read!(self, |db| async move {
                    $crate::shared::recommendations::product(db, &id).await
                })
            }
            async fn products(&self, after: Option<&str>, limit: usize) -> $crate::Result<$crate::ProductPage> {
                let after = after.map(str::to_string);
                $read!(self, |db| async move {
                    $crate::shared::recommendations::products(db, after.as_deref(), limit).await
                })
            }
            async fn delete_product(&self, id: &str) -> $crate::Result<bool> {
                let id = id.to_string();
                $write!(self, |db| async move {
                    $crate::shared::recommendations::delete_product(db, &id).await
                })
            }
            async fn start_recommendation_model(
                &self,
                started_at: nudge_core::Millis,
                event_cursor: i64,
            ) -> $crate::Result<i64> {
                $write!(self, |db| $crate::shared::recommendations::start_model(
                    db,
                    started_at,
                    event_cursor
                ))
            }
            async fn save_similarities(
                &self,
                model: i64,
                lists: Vec<(String, Vec<nudge_core::recommend::Similar>)>,
            ) -> $crate::Result<()> {
                $write!(self, |db| $crate::shared::recommendations::save_similarities(
                    db, model, lists
                ))
            }
            async fn save_popular(
                &self,
                model: i64,
                popular: Vec<nudge_core::recommend::Popular>,
            ) -> $crate::Result<()> {
                $write!(self, |db| $crate::shared::recommendations::save_popular(
                    db, model, popular
                ))
            }
            async fn finish_recommendation_model(&self, model: &$crate::RecommendationModel) -> $crate::Result<()> {
                let model = model.clone();
                $write!(self, |db| async move {
                    $crate::shared::recommendations::finish_model(db, &model).await
                })
            }
            async fn drop_old_recommendations(&self, model: i64, limit: usize) -> $crate::Result<u64> {
                $write!(self, |db| $crate::shared::recommendations::drop_old(
                    db, model, limit
                ))
            }
            async fn advance_recommendation_cursor(&self, model: i64, event_cursor: i64) -> $crate::Result<()> {
                $write!(self, |db| $crate::shared::recommendations::advance_cursor(
                    db,
                    model,
                    event_cursor
                ))
            }
            async fn recommendation_model(&self) -> $crate::Result<Option<$crate::RecommendationModel>> {
                $read!(self, |db| $crate::shared::recommendations::model(db))
            }
            async fn recommendation_inputs(&self, seeds: &[String]) -> $crate::Result<nudge_core::recommend::Inputs> {
                let seeds = seeds.to_vec();
                $read!(self, |db| async move {
                    $crate::shared::recommendations::inputs(db, &seeds).await
                })
            }
        }
    };
}
pub(crate) use impl_recommendation_store;
