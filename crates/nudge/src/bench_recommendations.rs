//! `nudge bench recommendations`: how good the product recommendations are, against
//! the popularity baseline in the same run, and how long a refresh takes.
//!
//! **Data set:** synthetic, from a latent-category model (no public e-commerce data
//! set is available offline on the benchmark machine). `--products` products fall in
//! `--categories` categories (product p in category p mod C) and, within a category,
//! in "sets" of 5 that go together (a shirt, its tie, its belt); a product's
//! popularity within its category is Zipf-distributed (s = 1, by its rank). Each
//! contact has 1–3 preferred categories. A contact's history starts at a random time
//! in the last 90 days and is sessions half a day to 8 days apart (up to now): a
//! session picks a category (a preferred one 90% of the time, any at random 10% —
//! noise) and views 1–4 of its products by popularity; with probability
//! 0.35 carts one of them, and then with probability 0.6 buys it, adding each other
//! product of its set with probability 0.35 (the complementary purchases item-to-item
//! similarities should find). Sessions go on until the contact has about
//! `--events-per-contact` events (11 on average).
//!
//! **Quality:** the contacts with at least two orders are test contacts: their last
//! order's first product is held out (that order is removed); everything else trains
//! `nudge_core::recommend` (the same `Learner` and `for_contact` the server uses, in
//! memory). Hit rate@10: the share of test contacts whose held-out product is in
//! their 10 recommendations; coverage: the share of the catalogue recommended to
//! anyone. The baseline: the 10 best sellers of the last 30 days over all products
//! (what the fallback gives), minus what the contact bought.
//!
//! **Refresh time:** the same generator writes `--refresh-contacts` contacts' events
//! into a fresh store through `Store::ingest` (batches of 10,000, as the ingest loop
//! does), then `nudge_engine::refresh_recommendations` runs while a probe stores a
//! one-event batch every 50 ms: its worst latency is how long the refresh kept the
//! writer from ingestion. Peak resident memory is the process's `VmHWM`.

use anyhow::Context;
use clap::Args;
use nudge_core::Millis;
use nudge_core::recommend::{self, ContactTouch, Inputs, Learner, Product, Settings, Touch, TouchKind};
use nudge_engine::{PredictionEngineConfig, RecommendationEngineConfig, fit_predictions, refresh_recommendations};
use nudge_store::baseline::PgBenchSchema;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct RecommendationArgs {
    /// Contacts of the quality evaluation (in memory).
    #[arg(long, default_value_t = 50_000)]
    contacts: usize,
    /// Products in the catalogue.
    #[arg(long, default_value_t = 5_000)]
    products: usize,
    /// Categories the products fall in.
    #[arg(long, default_value_t = 25)]
    categories: usize,
    /// Events per contact, on average.
    #[arg(long, default_value_t = 11)]
    events_per_contact: usize,
    /// Contacts written to a store for the refresh timing (0: skip it). The issue's
    /// size is 1,000,000 (11,000,000 events).
    #[arg(long, default_value_t = 100_000)]
    refresh_contacts: usize,
    /// Time the refresh on PostgreSQL at this URL (a fresh schema is created and
    /// dropped) instead of embedded SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// Also fit the lifetime-value models (BG/NBD and Gamma-Gamma, in days) on the
    /// same stored data after the refresh: time, peak memory, the ingestion probe.
    #[arg(long)]
    fit: bool,
    /// Seed of the generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

const DAY: Millis = 86_400_000;
const MIN: Millis = 60_000;
/// The data's "now": 2027-03-15T12:00:00Z.
const NOW: Millis = 1_805_112_000_000;

/// One generated event: when, how, which products.
#[derive(Debug, Clone)]
struct Gen {
    at: Millis,
    kind: TouchKind,
    products: Vec<u32>,
}

struct World {
    products: usize,
    categories: usize,
    /// Each category's products, most popular first, with Zipf weights' cumulative sums.
    by_category: Vec<(Vec<u32>, Vec<f64>)>,
}

impl World {
    fn new(products: usize, categories: usize) -> World {
        let categories = categories.clamp(1, products.max(1));
        let mut by_category = Vec::new();
        for c in 0..categories {
            let members: Vec<u32> = (0..products as u32).filter(|p| *p as usize % categories == c).collect();
            let mut cumulative = Vec::with_capacity(members.len());
            let mut sum = 0.0;
            for rank in 0..members.len() {
                sum += 1.0 / (rank as f64 + 1.0);
                cumulative.push(sum);
            }
            by_category.push((members, cumulative));
        }
        World {
            products,
            categories,
            by_category,
        }
    }

    fn category(&self, p: u32) -> usize {
        p as usize % self.categories
    }

    fn pick(&self, rng: &mut StdRng, category: usize) -> u32 {
        let (members, cumulative) = &self.by_category[category];
        let total = *cumulative.last().unwrap_or(&1.0);
        let x = rng.random_range(0.0..total);
        let i = cumulative.partition_point(|c| *c < x).min(members.len() - 1);
        members[i]
    }

    /// The other products of `p`'s set of 5 within its category.
    fn set_of(&self, p: u32) -> Vec<u32> {
        let (members, _) = &self.by_category[self.category(p)];
        let i = members.iter().position(|m| *m == p).unwrap_or(0);
        let start = i / 5 * 5;
        members[start..(start + 5).min(members.len())]
            .iter()
            .copied()
            .filter(|m| *m != p)
            .collect()
    }

    /// One contact's events, oldest first.
    fn contact(&self, rng: &mut StdRng, events: usize) -> Vec<Gen> {
        let k = rng.random_range(1..=3usize);
        let tastes: Vec<usize> = (0..k).map(|_| rng.random_range(0..self.categories)).collect();
        let target = rng.random_range(1..=events.max(1) * 2 - 1);
        // Contacts start at any time in the last 90 days (so the last 30 days hold
        // about a third of the purchases, as a steady shop's would).
        let mut at = NOW - rng.random_range(DAY..90 * DAY);
        let mut out: Vec<Gen> = Vec::new();
        let mut n = 0;
        while n < target && at < NOW {
            let category = if rng.random_bool(0.9) {
                tastes[rng.random_range(0..tastes.len())]
            } else {
                rng.random_range(0..self.categories)
            };
            let viewed: Vec<u32> = (0..rng.random_range(1..=4)).map(|_| self.pick(rng, category)).collect();
            for (i, p) in viewed.iter().enumerate() {
                out.push(Gen {
                    at: at + i as Millis * 2 * MIN,
                    kind: TouchKind::Viewed,
                    products: vec![*p],
                });
                n += 1;
            }
            if rng.random_bool(0.35) {
                let p = viewed[rng.random_range(0..viewed.len())];
                out.push(Gen {
                    at: at + 10 * MIN,
                    kind: TouchKind::Added,
                    products: vec![p],
                });
                n += 1;
                if rng.random_bool(0.6) {
                    let mut order = vec![p];
                    order.extend(self.set_of(p).into_iter().filter(|_| rng.random_bool(0.35)));
                    out.push(Gen {
                        at: at + 15 * MIN,
                        kind: TouchKind::Purchased,
                        products: order,
                    });
                    n += 1;
                }
            }
            at += rng.random_range(DAY / 2..8 * DAY);
        }
        out
    }

    fn product(&self, p: u32) -> Product {
        Product {
            id: format!("p{p}"),
            name: Some(format!("Product {p}")),
            price: Some(10.0 + f64::from(p % 90)),
            category: Some(format!("c{}", self.category(p))),
            url: Some(format!("https://shop.example/p/{p}")),
            image_url: None,
            in_stock: None,
            repeatable: false,
        }
    }
}

/// Quality on a held-out split: (hit rate@10, coverage) for Nudge and for the baseline.
struct Quality {
    contacts: usize,
    events: usize,
    test: usize,
    nudge_hits: usize,
    baseline_hits: usize,
    nudge_coverage: usize,
    baseline_coverage: usize,
    products: usize,
    learn_s: f64,
}

fn quality(args: &RecommendationArgs, world: &World) -> Quality {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut learner = Learner::new(Settings::default());
    let interned: Vec<u32> = (0..world.products as u32)
        .map(|p| learner.intern(&format!("p{p}")))
        .collect();
    // Test contacts: (their training touches, the held-out product).
    let mut tests: Vec<(Vec<ContactTouch>, String)> = Vec::new();
    let mut buyers: HashMap<u32, HashSet<usize>> = HashMap::new();
    let mut events = 0;
    let t0 = Instant::now();
    for c in 0..args.contacts {
        let mut history = world.contact(&mut rng, args.events_per_contact);
        events += history.len();
        let orders: Vec<usize> = (0..history.len())
            .filter(|i| history[*i].kind == TouchKind::Purchased)
            .collect();
        let held = if orders.len() >= 2 {
            let last = *orders.last().unwrap_or(&0);
            let order = history.remove(last);
            Some(format!("p{}", order.products[0]))
        } else {
            None
        };
        let touches: Vec<Touch> = history
            .iter()
            .flat_map(|g| {
                g.products.iter().map(|p| Touch {
                    at: g.at,
                    kind: g.kind,
                    product: interned[*p as usize],
                })
            })
            .collect();
        for g in history.iter().filter(|g| g.kind == TouchKind::Purchased) {
            if recommend::counts_as_recent(g.at, NOW) {
                for p in &g.products {
                    buyers.entry(*p).or_default().insert(c);
                }
            }
        }
        learner.add_contact(&touches);
        if let Some(held) = held {
            let mine = history
                .iter()
                .flat_map(|g| {
                    g.products.iter().map(|p| ContactTouch {
                        at: g.at,
                        kind: g.kind,
                        product: format!("p{p}"),
                    })
                })
                .collect();
            tests.push((mine, held));
        }
    }
    let lists = learner.finish();
    let counted: Vec<(String, Option<String>, u32)> = buyers
        .iter()
        .map(|(p, who)| {
            (
                format!("p{p}"),
                Some(format!("c{}", world.category(*p))),
                who.len() as u32,
            )
        })
        .collect();
    let popular = recommend::rank_popular(&counted, 20);
    let learn_s = t0.elapsed().as_secs_f64();
    let inputs = Inputs {
        similar: lists.into_iter().collect(),
        popular: popular.clone(),
        products: (0..world.products as u32)
            .map(|p| (format!("p{p}"), world.product(p)))
            .collect(),
    };
    // The baseline: the overall best sellers (rank order), minus what the contact bought.
    let best: Vec<&str> = {
        let mut all: Vec<&recommend::Popular> = popular.iter().filter(|p| p.category.is_empty()).collect();
        all.sort_by_key(|p| p.rank);
        all.into_iter().map(|p| p.product.as_str()).collect()
    };
    let mut q = Quality {
        contacts: args.contacts,
        events,
        test: tests.len(),
        nudge_hits: 0,
        baseline_hits: 0,
        nudge_coverage: 0,
        baseline_coverage: 0,
        products: world.products,
        learn_s,
    };
    let mut nudge_seen: HashSet<String> = HashSet::new();
    let mut baseline_seen: HashSet<&str> = HashSet::new();
    for (touches, held) in &tests {
        let list = recommend::for_contact(touches, &inputs, 10);
        if list.iter().any(|r| &r.product.id == held) {
            q.nudge_hits += 1;
        }
        nudge_seen.extend(list.into_iter().map(|r| r.product.id));
        let bought: HashSet<&str> = touches
            .iter()
            .filter(|t| t.kind == TouchKind::Purchased)
            .map(|t| t.product.as_str())
            .collect();
        let base: Vec<&str> = best.iter().copied().filter(|p| !bought.contains(p)).take(10).collect();
        if base.contains(&held.as_str()) {
            q.baseline_hits += 1;
        }
        baseline_seen.extend(base);
    }
    q.nudge_coverage = nudge_seen.len();
    q.baseline_coverage = baseline_seen.len();
    q
}

/// What the ingestion probe saw while something ran.
struct Probe {
    batches: usize,
    p99: Duration,
    worst: Duration,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} one-event batches, p99 {:.1} ms, worst {:.1} ms",
            self.batches,
            self.p99.as_secs_f64() * 1e3,
            self.worst.as_secs_f64() * 1e3
        )
    }
}

static PROBE_EVENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs `work` while a probe stores one-event batches every 50 ms, timing each.
async fn probed<T>(
    store: &Arc<dyn nudge_store::Store>,
    work: impl std::future::Future<Output = T>,
) -> anyhow::Result<(T, Probe)> {
    let running = Arc::new(AtomicBool::new(true));
    let probe = {
        let store = store.clone();
        let running = running.clone();
        tokio::spawn(async move {
            let mut all = Vec::new();
            while running.load(Ordering::Relaxed) {
                // Numbered across probes: a repeated id would be a duplicate, not a write.
                let i = PROBE_EVENTS.fetch_add(1, Ordering::Relaxed);
                let body = serde_json::to_vec(&json!({"batch": [{"type": "track", "userId": "probe",
                    "event": "Probe", "messageId": format!("probe-{i}")}]}))
                .unwrap_or_default();
                let Ok(parsed) =
                    nudge_core::parse_batch(&body, &nudge_core::Received { at: NOW, ip: None }, &mut || {
                        unreachable!("the probe has an id")
                    })
                else {
                    break;
                };
                let t = Instant::now();
                if store.ingest(parsed.messages, NOW).await.is_err() {
                    break;
                }
                all.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            all.sort();
            let p99 = all
                .get((all.len() as f64 * 0.99) as usize)
                .or(all.last())
                .copied()
                .unwrap_or_default();
            Probe {
                batches: all.len(),
                p99,
                worst: all.last().copied().unwrap_or_default(),
            }
        })
    };
    let out = work.await;
    running.store(false, Ordering::Relaxed);
    Ok((out, probe.await.context("probe")?))
}

fn current_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A generated event as a Segment `track` call.
fn call(user: usize, g: &Gen, world: &World, n: &mut u64) -> Value {
    *n += 1;
    let item = |p: u32| {
        let product = world.product(p);
        json!({"product_id": product.id, "name": product.name, "price": product.price,
               "category": product.category, "url": product.url})
    };
    let (event, properties) = match g.kind {
        TouchKind::Viewed => ("Product Viewed", item(g.products[0])),
        TouchKind::Added => ("Product Added", item(g.products[0])),
        TouchKind::Purchased => (
            "Order Completed",
            json!({"order_id": format!("o{n}"),
                   "revenue": g.products.iter().map(|p| world.product(*p).price.unwrap_or(0.0)).sum::<f64>(),
                   "products": g.products.iter().map(|p| item(*p)).collect::<Vec<_>>()}),
        ),
    };
    json!({"type": "track", "userId": format!("u{user}"), "event": event, "messageId": format!("m{n}"),
           "timestamp": nudge_core::format_millis(g.at), "properties": properties})
}

async fn refresh_timing(args: &RecommendationArgs, world: &World) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("nudge-bench-recs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pg = match &args.postgres {
        Some(url) => Some(PgBenchSchema::create(url).await?),
        None => None,
    };
    let backend = if pg.is_some() { "postgres" } else { "sqlite" };
    let ring = nudge_store::secrets::Keyring::new(nudge_store::secrets::MasterKey::generate());
    let store = nudge_store::open(pg.as_ref().map(|p| p.url.as_str()), &dir, ring).await?;
    let mut rng = StdRng::seed_from_u64(args.seed + 1);
    let t0 = Instant::now();
    let mut batch = Vec::new();
    let mut n = 0u64;
    let mut events = 0usize;
    let received = nudge_core::Received { at: NOW, ip: None };
    let mut calls = Vec::new();
    for c in 0..args.refresh_contacts {
        for g in world.contact(&mut rng, args.events_per_contact) {
            batch.push(call(c, &g, world, &mut n));
        }
        let last = c + 1 == args.refresh_contacts;
        // A request body holds at most 500 KB: parse 1,000 messages at a time, store
        // 10,000 per transaction.
        if batch.len() >= 1_000 || last {
            let body = serde_json::to_vec(&json!({ "batch": std::mem::take(&mut batch) }))?;
            calls.extend(
                nudge_core::parse_batch(&body, &received, &mut || unreachable!("every message has an id"))
                    .map_err(|e| anyhow::anyhow!("generated batch: {e:?}"))?
                    .messages,
            );
        }
        if calls.len() >= 10_000 || last {
            events += calls.len();
            store.ingest(std::mem::take(&mut calls), NOW).await?;
            if c % 100_000 < 1_000 {
                eprintln!("  {} contacts, {events} events written", c + 1);
            }
        }
    }
    let fill_s = t0.elapsed().as_secs_f64();
    println!(
        "refresh data ({backend}): {} contacts, {events} events written in {fill_s:.0} s",
        args.refresh_contacts
    );
    // The probe with nothing else running: what "unaffected" is measured against.
    let ((), idle) = probed(&store, tokio::time::sleep(Duration::from_secs(5))).await?;
    println!("ingestion probe alone: {idle}");
    let rss_before = peak_rss_mib();
    let t = Instant::now();
    let (model, probe) = probed(
        &store,
        refresh_recommendations(&*store, NOW, &RecommendationEngineConfig::default()),
    )
    .await?;
    let model = model?;
    let refresh_s = t.elapsed().as_secs_f64();
    println!(
        "refresh ({backend}): {refresh_s:.1} s for {} contacts with product events, {} products, {} pairs counted, \
         {} products with similar lists; peak RSS {:.0} MiB (before the refresh {rss_before:.0} MiB)",
        model.contacts,
        model.products,
        model.pairs,
        model.similar_products,
        peak_rss_mib()
    );
    println!("ingestion probe during the refresh: {probe}");
    if args.fit {
        // The peak so far was the generation's and the refresh's: start it again.
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let rss_before = current_rss_mib();
        let t = Instant::now();
        let config = PredictionEngineConfig::default();
        let (fitted, probe) = probed(
            &store,
            fit_predictions(&*store, NOW, nudge_core::predict::Unit::Days, NOW, &config),
        )
        .await?;
        let fit_s = t.elapsed().as_secs_f64();
        match fitted {
            Ok((model, customers)) => println!(
                "lifetime-value fit ({backend}): {fit_s:.1} s for {customers} customers; peak RSS {} (RSS before {rss_before:.0} MiB); model {}",
                if reset {
                    format!("{:.0} MiB", peak_rss_mib())
                } else {
                    "not measured (no clear_refs)".into()
                },
                serde_json::to_string(&model.model).unwrap_or_default()
            ),
            Err(e) => println!("lifetime-value fit ({backend}): failed after {fit_s:.1} s: {e}"),
        }
        println!("ingestion probe during the fit: {probe}");
    }
    store.close().await;
    if let Some(pg) = pg {
        pg.drop_schema().await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

pub async fn run(args: RecommendationArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.products >= 10, "--products: at least 10");
    let world = World::new(args.products, args.categories);
    let q = quality(&args, &world);
    let pct = |a: usize, b: usize| if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 };
    println!(
        "quality: {} contacts, {} events, {} products in {} categories; {} test contacts (last order held out); \
         learned in {:.1} s",
        q.contacts, q.events, q.products, world.categories, q.test, q.learn_s
    );
    println!("| method | hit rate@10 | coverage |");
    println!("|---|---|---|");
    println!(
        "| Nudge (item-to-item, popularity fallback) | {:.1}% | {:.1}% ({} products) |",
        pct(q.nudge_hits, q.test),
        pct(q.nudge_coverage, q.products),
        q.nudge_coverage
    );
    println!(
        "| best sellers of the last 30 days | {:.1}% | {:.1}% ({} products) |",
        pct(q.baseline_hits, q.test),
        pct(q.baseline_coverage, q.products),
        q.baseline_coverage
    );
    if args.refresh_contacts > 0 {
        refresh_timing(&args, &world).await?;
    }
    Ok(())
}
