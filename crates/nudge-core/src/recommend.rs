//! Product recommendations (docs/recommendations.md): item-to-item similarities learned
//! from what contacts did with products, and the lists a contact or a product gets.
//!
//! - **What is learned from**: Segment's e-commerce events — `Product Viewed` and
//!   `Product Added` (the product in the properties) and `Order Completed` (its
//!   `products[]`); [`touches_of`] reads one event.
//! - **Similarity** ([`Learner`]): for each contact, a pair of products (x, y) is
//!   counted once, with the strongest of three signals — both bought by the contact
//!   (Linden, Smith & York 2003's "customers who bought x also bought y", weight
//!   1), x viewed or carted and y bought after it within 7 days ("viewed then
//!   bought", directed, 0.6), both viewed or carted in one session (30 minutes
//!   without activity end a session, 0.3). The sum over contacts is normalised by
//!   cosine, `w(x, y) / √(n(x)·n(y))` with n the number of contacts who touched a
//!   product, so best sellers do not fill every list; a pair needs `min_support`
//!   contacts (2) to count at all. Each product keeps its best `per_product` (20).
//! - **Popularity** ([`rank_popular`]): distinct buyers over the last 30 days, per
//!   category and over all (category `""`), the fallback when similarities run out.
//! - **Lists** ([`for_contact`], [`similar_to`]): seeds are the contact's recent
//!   products (bought 1, carted 0.7, viewed 0.4, older ones less); candidates score
//!   the sum of seed weight × similarity. Already-bought products are excluded unless
//!   the catalogue says they are repeatable, and out-of-stock ones always; products
//!   without a catalogue row are never shown (they have no name or link).
//!
//! Pure: callers read the events, the stored similarities and the catalogue.

use crate::Millis;
use crate::protocol::event_names::{ORDER_COMPLETED, PRODUCT_ADDED, PRODUCT_VIEWED};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Popularity counts purchases over this many days before the refresh.
pub const POPULAR_DAYS: i64 = 30;
const DAY: Millis = 86_400_000;

/// What a contact did with a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouchKind {
    Viewed,
    Added,
    Purchased,
}

impl TouchKind {
    /// How much a recent touch of this kind says about what the contact wants next.
    fn seed_weight(self) -> f64 {
        match self {
            TouchKind::Purchased => 1.0,
            TouchKind::Added => 0.7,
            TouchKind::Viewed => 0.4,
        }
    }
}

/// What an event says about a product (Segment's e-commerce spec). `id` is
/// `product_id`, else `sku`, else `id`, as a string.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductFacts {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
}

/// Longest product id (in characters) read from an event; longer ones are ignored.
pub const MAX_PRODUCT_ID: usize = 200;

fn text(p: &Map<String, Value>, key: &str) -> Option<String> {
    match p.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A product as one product object of an event describes it, or `None` without a
/// usable id.
pub fn product_facts(p: &Map<String, Value>) -> Option<ProductFacts> {
    let id = ["product_id", "sku", "id"].iter().find_map(|k| text(p, k))?;
    if id.chars().count() > MAX_PRODUCT_ID {
        return None;
    }
    Some(ProductFacts {
        id,
        name: text(p, "name"),
        price: p.get("price").and_then(Value::as_f64).filter(|v| v.is_finite()),
        category: text(p, "category"),
        url: text(p, "url"),
        image_url: text(p, "image_url"),
    })
}

/// The products an event touched and how, or `None` when it is not one
/// recommendations learn from.
pub fn touches_of(name: &str, properties: &Value) -> Option<(TouchKind, Vec<ProductFacts>)> {
    let p = properties.as_object()?;
    let kind = match name {
        PRODUCT_VIEWED => TouchKind::Viewed,
        PRODUCT_ADDED => TouchKind::Added,
        ORDER_COMPLETED => TouchKind::Purchased,
        _ => return None,
    };
    let products: Vec<ProductFacts> = match kind {
        TouchKind::Purchased => p
            .get("products")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_object)
                    .filter_map(product_facts)
                    .collect()
            })
            .unwrap_or_default(),
        _ => product_facts(p).into_iter().collect(),
    };
    (!products.is_empty()).then_some((kind, products))
}

/// The products an event's properties name, whatever the event: its own
/// `product_id` and those of its `products[]` (at most `limit`).
pub fn products_named(properties: &Value, limit: usize) -> Vec<String> {
    let Some(p) = properties.as_object() else {
        return Vec::new();
    };
    let mut out: Vec<String> = product_facts(p).map(|f| f.id).into_iter().collect();
    for item in p.get("products").and_then(Value::as_array).into_iter().flatten() {
        if let Some(f) = item.as_object().and_then(product_facts)
            && !out.contains(&f.id)
        {
            out.push(f.id);
        }
    }
    out.truncate(limit);
    out
}

/// Products listed per template variable (`recommendations.for_contact`, each
/// `recommendations.similar_to[...]`).
pub const TEMPLATE_LIST: usize = 12;

/// What templates read as `recommendations`: `for_contact` (the contact's list) and
/// `similar_to`, an object from each product the event names to its list. `inputs`
/// must hold the seeds of both (see [`template_seeds`]).
pub fn template_data(touches: &[ContactTouch], event_products: &[String], inputs: &Inputs) -> Value {
    let list = |l: Vec<Recommendation>| Value::Array(l.iter().map(template_value).collect());
    let mut similar = Map::new();
    for p in event_products {
        similar.insert(p.clone(), list(similar_to(p, inputs, TEMPLATE_LIST)));
    }
    serde_json::json!({
        "for_contact": list(for_contact(touches, inputs, TEMPLATE_LIST)),
        "similar_to": similar,
    })
}

/// The products whose similar lists [`template_data`] reads: the contact's seeds and
/// the event's products.
pub fn template_seeds(touches: &[ContactTouch], event_products: &[String]) -> Vec<String> {
    let mut out: Vec<String> = seeds(touches).into_iter().map(|(p, _)| p).collect();
    for p in event_products {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// The names of the events [`touches_of`] reads.
pub const EVENTS: [&str; 3] = [PRODUCT_VIEWED, PRODUCT_ADDED, ORDER_COMPLETED];

/// How similarities are learned.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Contacts a pair needs before it counts (2).
    pub min_support: u32,
    /// Similar products kept per product (20).
    pub per_product: usize,
    /// A session ends after this long without a view or cart addition (30 minutes).
    pub session_gap: Millis,
    /// A purchase this soon after a view counts as "viewed then bought" (7 days).
    pub view_then_buy_within: Millis,
    /// A contact's most recent distinct products considered (200): bounds the pairs
    /// one contact (or a bot) adds.
    pub max_products_per_contact: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_support: 2,
            per_product: 20,
            session_gap: 30 * 60_000,
            view_then_buy_within: 7 * DAY,
            max_products_per_contact: 200,
        }
    }
}

const BOUGHT_TOGETHER: f32 = 1.0;
const VIEWED_THEN_BOUGHT: f32 = 0.6;
const VIEWED_TOGETHER: f32 = 0.3;

/// One touch of a product by a contact, the product interned by the [`Learner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    pub at: Millis,
    pub kind: TouchKind,
    pub product: u32,
}

/// A similar product with its score and the number of contacts behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Similar {
    pub product: String,
    pub score: f64,
    pub support: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Pair {
    weight: f32,
    support: u32,
}

/// Counts co-occurrences one contact at a time, then normalises ([`Learner::finish`]).
/// Memory: the product ids, one counter per product and one per pair seen.
#[derive(Debug, Default)]
pub struct Learner {
    settings: Settings,
    ids: HashMap<String, u32>,
    names: Vec<String>,
    /// Contacts who touched each product.
    contacts: Vec<u32>,
    pairs: HashMap<(u32, u32), Pair>,
    /// Contacts counted.
    pub contacts_seen: usize,
}

impl Learner {
    pub fn new(settings: Settings) -> Self {
        Learner {
            settings,
            ..Default::default()
        }
    }

    /// The product's number, given on first sight.
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(&n) = self.ids.get(id) {
            return n;
        }
        let n = self.names.len() as u32;
        self.ids.insert(id.to_string(), n);
        self.names.push(id.to_string());
        self.contacts.push(0);
        n
    }

    /// Products seen.
    pub fn products(&self) -> usize {
        self.names.len()
    }

    /// Pairs counted so far.
    pub fn pairs(&self) -> usize {
        self.pairs.len()
    }

    /// Counts one contact's touches (any order).
    pub fn add_contact(&mut self, touches: &[Touch]) {
        if touches.is_empty() {
            return;
        }
        let mut touches = touches.to_vec();
        touches.sort_by_key(|t| (t.at, t.product));
        // The most recent distinct products only.
        let mut kept: Vec<u32> = Vec::new();
        for t in touches.iter().rev() {
            if kept.len() >= self.settings.max_products_per_contact {
                break;
            }
            if !kept.contains(&t.product) {
                kept.push(t.product);
            }
        }
        let kept: HashSet<u32> = kept.into_iter().collect();
        touches.retain(|t| kept.contains(&t.product));
        self.contacts_seen += 1;
        for &p in &kept {
            self.contacts[p as usize] += 1;
        }
        let mut local: HashMap<(u32, u32), f32> = HashMap::new();
        let mut note = |x: u32, y: u32, w: f32| {
            if x != y {
                let e = local.entry((x, y)).or_insert(0.0);
                if w > *e {
                    *e = w;
                }
            }
        };
        // Bought by the same contact.
        let mut bought: Vec<u32> = touches
            .iter()
            .filter(|t| t.kind == TouchKind::Purchased)
            .map(|t| t.product)
            .collect();
        bought.sort_unstable();
        bought.dedup();
        for &x in &bought {
            for &y in &bought {
                note(x, y, BOUGHT_TOGETHER);
            }
        }
        // Sessions of views and cart additions; views then purchases.
        let browsing: Vec<&Touch> = touches.iter().filter(|t| t.kind != TouchKind::Purchased).collect();
        let mut session: Vec<u32> = Vec::new();
        let mut last: Option<Millis> = None;
        let flush = |session: &mut Vec<u32>, note: &mut dyn FnMut(u32, u32, f32)| {
            session.sort_unstable();
            session.dedup();
            for &x in session.iter() {
                for &y in session.iter() {
                    note(x, y, VIEWED_TOGETHER);
                }
            }
            session.clear();
        };
        for t in &browsing {
            if last.is_some_and(|l| t.at - l > self.settings.session_gap) {
                flush(&mut session, &mut note);
            }
            session.push(t.product);
            last = Some(t.at);
        }
        flush(&mut session, &mut note);
        for v in &browsing {
            for b in touches.iter().filter(|t| t.kind == TouchKind::Purchased) {
                if b.at > v.at && b.at - v.at <= self.settings.view_then_buy_within {
                    note(v.product, b.product, VIEWED_THEN_BOUGHT);
                }
            }
        }
        for (k, w) in local {
            let e = self.pairs.entry(k).or_default();
            e.weight += w;
            e.support += 1;
        }
    }

    /// Each product's most similar products, best first (ties by id): cosine over
    /// the contacts who touched each, pairs below the minimum support dropped.
    /// Products without any are left out.
    pub fn finish(self) -> Vec<(String, Vec<Similar>)> {
        let mut lists: Vec<Vec<(f64, u32, u32)>> = vec![Vec::new(); self.names.len()];
        for ((x, y), pair) in &self.pairs {
            if pair.support < self.settings.min_support {
                continue;
            }
            let n = f64::from(self.contacts[*x as usize]) * f64::from(self.contacts[*y as usize]);
            if n <= 0.0 {
                continue;
            }
            lists[*x as usize].push((f64::from(pair.weight) / n.sqrt(), *y, pair.support));
        }
        let names = &self.names;
        let mut out = Vec::new();
        for (x, mut list) in lists.into_iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            list.sort_by(|a, b| {
                b.0.total_cmp(&a.0)
                    .then_with(|| names[a.1 as usize].cmp(&names[b.1 as usize]))
            });
            list.truncate(self.settings.per_product);
            out.push((
                names[x].clone(),
                list.into_iter()
                    .map(|(score, y, support)| Similar {
                        product: names[y as usize].clone(),
                        score: round6(score),
                        support,
                    })
                    .collect(),
            ));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// A best seller: its rank in its category (`""`: over all products), from 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Popular {
    pub category: String,
    pub product: String,
    pub buyers: u32,
    pub rank: u32,
}

/// Whether a purchase at `at` counts toward popularity at `now`.
pub fn counts_as_recent(at: Millis, now: Millis) -> bool {
    at <= now && now - at <= POPULAR_DAYS * DAY
}

/// The best sellers per category and over all: `buyers` is (product, its category,
/// distinct recent buyers); `per_category` are kept in each (ties by id).
pub fn rank_popular(buyers: &[(String, Option<String>, u32)], per_category: usize) -> Vec<Popular> {
    let mut by_category: BTreeMap<&str, Vec<(&str, u32)>> = BTreeMap::new();
    for (product, category, n) in buyers.iter().filter(|b| b.2 > 0) {
        by_category.entry("").or_default().push((product, *n));
        if let Some(c) = category.as_deref().filter(|c| !c.is_empty()) {
            by_category.entry(c).or_default().push((product, *n));
        }
    }
    let mut out = Vec::new();
    for (category, mut list) in by_category {
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        for (i, (product, n)) in list.into_iter().take(per_category).enumerate() {
            out.push(Popular {
                category: category.to_string(),
                product: product.to_string(),
                buyers: n,
                rank: i as u32 + 1,
            });
        }
    }
    out
}

/// A catalogue entry: what events said about the product, or what an import or the
/// API set (then events no longer change it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: Option<String>,
    pub price: Option<f64>,
    pub category: Option<String>,
    pub url: Option<String>,
    pub image_url: Option<String>,
    /// `Some(false)`: never recommended. `None`: the catalogue does not say.
    pub in_stock: Option<bool>,
    /// Bought again and again (coffee, razors): recommended even to its buyers.
    pub repeatable: bool,
}

/// Why a product is recommended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reason {
    /// Similar to these of the contact's products (or to the product asked about).
    Similar { to: Vec<String> },
    /// A best seller of the last 30 days in this category (`None`: over all).
    Popular { category: Option<String> },
}

/// One recommended product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub product: Product,
    pub score: f64,
    pub reason: Reason,
}

/// What the lists are made from: the stored similarities of the seeds, the best
/// sellers (per category and over all) and the catalogue rows of every product named.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    pub similar: HashMap<String, Vec<Similar>>,
    pub popular: Vec<Popular>,
    pub products: HashMap<String, Product>,
}

/// A contact's recent touch of a product (newest first is how they are read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactTouch {
    pub at: Millis,
    pub kind: TouchKind,
    pub product: String,
}

/// Seeds kept per contact.
pub const MAX_SEEDS: usize = 20;
/// Products of an event given their own `similar_to` list in templates.
pub const MAX_EVENT_PRODUCTS: usize = 10;

/// The contact's seeds: distinct products, most telling first — each product's best
/// touch weight, discounted by 0.85 per more recent distinct product.
pub fn seeds(touches: &[ContactTouch]) -> Vec<(String, f64)> {
    let mut touches: Vec<&ContactTouch> = touches.iter().collect();
    touches.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.product.cmp(&b.product)));
    let mut order: Vec<String> = Vec::new();
    let mut best: HashMap<&str, f64> = HashMap::new();
    for t in &touches {
        let e = best.entry(t.product.as_str()).or_insert_with(|| {
            order.push(t.product.clone());
            0.0
        });
        *e = e.max(t.kind.seed_weight());
    }
    let mut out: Vec<(String, f64)> = order
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let w = best[p.as_str()] * 0.85f64.powi(i as i32);
            (p, w)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(MAX_SEEDS);
    out
}

fn recommendable(p: &Product) -> bool {
    p.in_stock != Some(false)
}

/// Appends best sellers of the categories in order (then over all) until `limit`.
fn fill_popular(
    out: &mut Vec<Recommendation>,
    categories: &[String],
    inputs: &Inputs,
    excluded: &dyn Fn(&Product) -> bool,
    limit: usize,
) {
    let mut wanted: Vec<&str> = categories.iter().map(String::as_str).collect();
    wanted.push("");
    for category in wanted {
        let mut list: Vec<&Popular> = inputs.popular.iter().filter(|p| p.category == category).collect();
        list.sort_by_key(|p| p.rank);
        for p in list {
            if out.len() >= limit {
                return;
            }
            let Some(product) = inputs.products.get(&p.product) else {
                continue;
            };
            if !recommendable(product) || excluded(product) || out.iter().any(|r| r.product.id == product.id) {
                continue;
            }
            out.push(Recommendation {
                product: product.clone(),
                score: 0.0,
                reason: Reason::Popular {
                    category: (!category.is_empty()).then(|| category.to_string()),
                },
            });
        }
    }
}

/// Up to `limit` products for a contact from their recent touches: the seeds'
/// similar products by summed weighted score, then best sellers of the seeds'
/// categories, then over all. Excluded: products the contact bought (unless
/// repeatable), out of stock, or not in the catalogue.
pub fn for_contact(touches: &[ContactTouch], inputs: &Inputs, limit: usize) -> Vec<Recommendation> {
    let bought: HashSet<&str> = touches
        .iter()
        .filter(|t| t.kind == TouchKind::Purchased)
        .map(|t| t.product.as_str())
        .collect();
    let excluded = |p: &Product| bought.contains(p.id.as_str()) && !p.repeatable;
    let seeds = seeds(touches);
    let mut scores: HashMap<&str, (f64, Vec<String>)> = HashMap::new();
    for (seed, weight) in &seeds {
        for s in inputs.similar.get(seed).into_iter().flatten() {
            let e = scores.entry(s.product.as_str()).or_insert((0.0, Vec::new()));
            e.0 += weight * s.score;
            e.1.push(seed.clone());
        }
    }
    let mut ranked: Vec<(&str, f64, Vec<String>)> = scores.into_iter().map(|(p, (s, to))| (p, s, to)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut out = Vec::new();
    for (id, score, to) in ranked {
        if out.len() >= limit {
            break;
        }
        let Some(product) = inputs.products.get(id) else {
            continue;
        };
        if !recommendable(product) || excluded(product) {
            continue;
        }
        out.push(Recommendation {
            product: product.clone(),
            score: round6(score),
            reason: Reason::Similar { to },
        });
    }
    let mut categories: Vec<String> = Vec::new();
    for (seed, _) in &seeds {
        if let Some(c) = inputs.products.get(seed).and_then(|p| p.category.clone())
            && !categories.contains(&c)
        {
            categories.push(c);
        }
    }
    fill_popular(&mut out, &categories, inputs, &excluded, limit);
    out
}

/// Up to `limit` products similar to `product`, then best sellers of its category and
/// over all; never the product itself, nothing out of stock or outside the catalogue.
pub fn similar_to(product: &str, inputs: &Inputs, limit: usize) -> Vec<Recommendation> {
    let excluded = |p: &Product| p.id == product;
    let mut out = Vec::new();
    for s in inputs.similar.get(product).into_iter().flatten() {
        if out.len() >= limit {
            break;
        }
        let Some(p) = inputs.products.get(&s.product) else {
            continue;
        };
        if !recommendable(p) || excluded(p) {
            continue;
        }
        out.push(Recommendation {
            product: p.clone(),
            score: s.score,
            reason: Reason::Similar {
                to: vec![product.to_string()],
            },
        });
    }
    let categories: Vec<String> = inputs
        .products
        .get(product)
        .and_then(|p| p.category.clone())
        .into_iter()
        .collect();
    fill_popular(&mut out, &categories, inputs, &excluded, limit);
    out
}

/// A recommendation as templates see it: the product's fields flat (`p.name`,
/// `p.url`, `p.price`, ...), with `score` and `reason`.
pub fn template_value(r: &Recommendation) -> Value {
    let mut v = serde_json::to_value(&r.product).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("score".into(), Value::from(r.score));
        m.insert("reason".into(), serde_json::to_value(&r.reason).unwrap_or(Value::Null));
    }
    v
}

#[cfg(test)]
mod tests;
