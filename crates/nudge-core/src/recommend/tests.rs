use super::*;
use serde_json::json;

const MIN: Millis = 60_000;
const H: Millis = 60 * MIN;

fn learner_with(contacts: &[Vec<(Millis, TouchKind, &str)>], settings: Settings) -> Vec<(String, Vec<Similar>)> {
    let mut l = Learner::new(settings);
    for c in contacts {
        let touches: Vec<Touch> = c
            .iter()
            .map(|(at, kind, p)| Touch {
                at: *at,
                kind: *kind,
                product: l.intern(p),
            })
            .collect();
        l.add_contact(&touches);
    }
    l.finish()
}

fn similar_of<'a>(lists: &'a [(String, Vec<Similar>)], p: &str) -> Vec<(&'a str, f64)> {
    lists
        .iter()
        .find(|(x, _)| x == p)
        .map(|(_, l)| l.iter().map(|s| (s.product.as_str(), s.score)).collect())
        .unwrap_or_default()
}

use TouchKind::{Added, Purchased, Viewed};

#[test]
fn events_are_read_by_the_e_commerce_spec() {
    let viewed = json!({"product_id": "p1", "name": "Mug", "price": 9.5, "category": "Kitchen",
        "url": "https://s.example/p1", "image_url": "https://s.example/p1.jpg"});
    let (kind, products) = touches_of("Product Viewed", &viewed).unwrap();
    assert_eq!(kind, Viewed);
    assert_eq!(
        products,
        vec![ProductFacts {
            id: "p1".into(),
            name: Some("Mug".into()),
            price: Some(9.5),
            category: Some("Kitchen".into()),
            url: Some("https://s.example/p1".into()),
            image_url: Some("https://s.example/p1.jpg".into()),
        }]
    );
    // An order's products; a numeric sku is an id; products without one are skipped.
    let order = json!({"order_id": "o1", "products": [{"sku": 42, "name": "Tea"}, {"name": "no id"}, "junk"]});
    let (kind, products) = touches_of("Order Completed", &order).unwrap();
    assert_eq!(kind, Purchased);
    assert_eq!(products.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["42"]);
    assert_eq!(touches_of("Product Added", &json!({"product_id": " "})), None);
    assert_eq!(touches_of("Order Completed", &json!({"total": 3})), None);
    assert_eq!(touches_of("Signed Up", &viewed), None);
    let long = "x".repeat(MAX_PRODUCT_ID + 1);
    assert_eq!(touches_of("Product Viewed", &json!({"product_id": long})), None);
}

#[test]
fn bought_together_is_normalised_by_cosine_so_a_best_seller_does_not_dominate() {
    // Everyone buys the best seller B; a and b are bought together by two contacts.
    let mut contacts = vec![
        vec![(0, Purchased, "a"), (H, Purchased, "b"), (2 * H, Purchased, "B")],
        vec![(0, Purchased, "a"), (H, Purchased, "b"), (2 * H, Purchased, "B")],
    ];
    for _ in 0..20 {
        contacts.push(vec![(0, Purchased, "B"), (H, Purchased, "z")]);
    }
    let lists = learner_with(&contacts, Settings::default());
    let a = similar_of(&lists, "a");
    // w(a, b) = 2, n(a) = n(b) = 2: 1. w(a, B) = 2, n(B) = 22: 2 / √44.
    assert_eq!(a[0], ("b", 1.0));
    assert_eq!(a[1].0, "B");
    assert!((a[1].1 - round6(2.0 / 44f64.sqrt())).abs() < 1e-9, "{a:?}");
    // z and B are bought together by 20 contacts: well supported.
    assert_eq!(similar_of(&lists, "z")[0].0, "B");
}

#[test]
fn a_pair_below_the_minimum_support_is_dropped() {
    let contacts = vec![vec![(0, Purchased, "a"), (H, Purchased, "b")]];
    let lists = learner_with(&contacts, Settings::default());
    assert!(lists.is_empty(), "{lists:?}");
    let lists = learner_with(
        &contacts,
        Settings {
            min_support: 1,
            ..Settings::default()
        },
    );
    assert_eq!(similar_of(&lists, "a"), vec![("b", 1.0)]);
}

#[test]
fn viewed_then_bought_is_directed_and_weaker_than_bought_together() {
    let settings = Settings {
        min_support: 1,
        ..Settings::default()
    };
    // x viewed, y bought a day later: x → y only (0.6 / √1·1).
    let lists = learner_with(&[vec![(0, Viewed, "x"), (24 * H, Purchased, "y")]], settings.clone());
    assert_eq!(similar_of(&lists, "x"), vec![("y", 0.6)]);
    assert!(similar_of(&lists, "y").is_empty());
    // Too late (8 days): nothing.
    let lists = learner_with(
        &[vec![(0, Viewed, "x"), (8 * 24 * H, Purchased, "y")]],
        settings.clone(),
    );
    assert!(lists.is_empty());
    // Bought before the view: not "viewed then bought".
    let lists = learner_with(&[vec![(H, Viewed, "x"), (0, Purchased, "y")]], settings.clone());
    assert!(lists.is_empty());
    // The strongest signal per contact counts once: bought both and viewed both.
    let lists = learner_with(
        &[vec![
            (0, Viewed, "x"),
            (MIN, Viewed, "y"),
            (2 * MIN, Purchased, "x"),
            (3 * MIN, Purchased, "y"),
        ]],
        settings,
    );
    assert_eq!(similar_of(&lists, "x"), vec![("y", 1.0)]);
}

#[test]
fn viewed_together_counts_within_a_session_only() {
    let settings = Settings {
        min_support: 1,
        ..Settings::default()
    };
    let lists = learner_with(
        &[vec![(0, Viewed, "a"), (10 * MIN, Added, "b"), (2 * H, Viewed, "c")]],
        settings,
    );
    assert_eq!(similar_of(&lists, "a"), vec![("b", 0.3)]);
    assert_eq!(similar_of(&lists, "b"), vec![("a", 0.3)]);
    assert!(similar_of(&lists, "c").is_empty());
}

#[test]
fn lists_are_cut_and_ordered_deterministically() {
    let settings = Settings {
        min_support: 1,
        per_product: 2,
        ..Settings::default()
    };
    let lists = learner_with(
        &[vec![
            (0, Purchased, "a"),
            (0, Purchased, "d"),
            (0, Purchased, "c"),
            (0, Purchased, "b"),
        ]],
        settings,
    );
    // Equal scores: by id.
    assert_eq!(similar_of(&lists, "a"), vec![("b", 1.0), ("c", 1.0)]);
    assert_eq!(
        lists.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c", "d"]
    );
}

#[test]
fn a_contact_counts_only_its_most_recent_products() {
    let settings = Settings {
        min_support: 1,
        max_products_per_contact: 2,
        ..Settings::default()
    };
    let lists = learner_with(
        &[vec![
            (0, Purchased, "old"),
            (H, Purchased, "a"),
            (2 * H, Purchased, "b"),
        ]],
        settings,
    );
    assert_eq!(similar_of(&lists, "a"), vec![("b", 1.0)]);
    assert!(similar_of(&lists, "old").is_empty());
}

#[test]
fn best_sellers_are_ranked_per_category_and_over_all() {
    let ranked = rank_popular(
        &[
            ("a".into(), Some("Tea".into()), 5),
            ("b".into(), Some("Tea".into()), 9),
            ("c".into(), None, 7),
            ("d".into(), Some("Mugs".into()), 0),
        ],
        2,
    );
    let view: Vec<(&str, &str, u32, u32)> = ranked
        .iter()
        .map(|p| (p.category.as_str(), p.product.as_str(), p.buyers, p.rank))
        .collect();
    assert_eq!(
        view,
        [("", "b", 9, 1), ("", "c", 7, 2), ("Tea", "b", 9, 1), ("Tea", "a", 5, 2)]
    );
    assert!(counts_as_recent(10 * DAY, 40 * DAY));
    assert!(!counts_as_recent(9 * DAY, 40 * DAY));
    assert!(!counts_as_recent(41 * DAY, 40 * DAY));
}

fn product(id: &str, category: &str) -> Product {
    Product {
        id: id.into(),
        name: Some(format!("Product {id}")),
        price: Some(10.0),
        category: Some(category.into()),
        url: Some(format!("https://s.example/{id}")),
        image_url: None,
        in_stock: None,
        repeatable: false,
    }
}

fn inputs() -> Inputs {
    let sim = |p: &str, s: f64| Similar {
        product: p.into(),
        score: s,
        support: 3,
    };
    let mut products: HashMap<String, Product> = ["shirt", "tie", "belt", "socks", "coffee", "pen"]
        .iter()
        .map(|id| {
            (
                id.to_string(),
                product(id, if *id == "coffee" { "Food" } else { "Clothes" }),
            )
        })
        .collect();
    products.get_mut("coffee").unwrap().repeatable = true;
    products.get_mut("belt").unwrap().in_stock = Some(false);
    products.get_mut("pen").unwrap().category = Some("Office".into());
    Inputs {
        similar: HashMap::from([
            (
                "shirt".to_string(),
                vec![
                    sim("tie", 0.8),
                    sim("belt", 0.7),
                    sim("coffee", 0.2),
                    sim("unknown", 0.9),
                ],
            ),
            ("coffee".to_string(), vec![sim("shirt", 0.5)]),
        ]),
        popular: vec![
            Popular {
                category: "Clothes".into(),
                product: "socks".into(),
                buyers: 9,
                rank: 1,
            },
            Popular {
                category: "Clothes".into(),
                product: "tie".into(),
                buyers: 5,
                rank: 2,
            },
            Popular {
                category: "".into(),
                product: "pen".into(),
                buyers: 20,
                rank: 1,
            },
        ],
        products,
    }
}

fn ids(list: &[Recommendation]) -> Vec<&str> {
    list.iter().map(|r| r.product.id.as_str()).collect()
}

#[test]
fn a_contacts_list_excludes_what_they_bought_unless_repeatable_and_what_is_out_of_stock() {
    let touches = vec![
        ContactTouch {
            at: 2 * H,
            kind: Purchased,
            product: "shirt".into(),
        },
        ContactTouch {
            at: H,
            kind: Purchased,
            product: "coffee".into(),
        },
    ];
    let list = for_contact(&touches, &inputs(), 10);
    // tie (0.8) by similarity; belt out of stock; unknown not in the catalogue;
    // coffee bought but repeatable (0.2); shirt bought (not repeatable) though coffee
    // points to it; then Clothes' best sellers, then over all.
    assert_eq!(ids(&list), ["tie", "coffee", "socks", "pen"]);
    assert_eq!(
        list[0].reason,
        Reason::Similar {
            to: vec!["shirt".into()]
        }
    );
    assert_eq!(
        list[2].reason,
        Reason::Popular {
            category: Some("Clothes".into())
        }
    );
    assert_eq!(list[3].reason, Reason::Popular { category: None });
    assert_eq!(ids(&for_contact(&touches, &inputs(), 2)), ["tie", "coffee"]);
}

#[test]
fn a_contact_without_history_gets_the_best_sellers() {
    assert_eq!(ids(&for_contact(&[], &inputs(), 3)), ["pen"]);
}

#[test]
fn seeds_weigh_kind_and_recency() {
    let t = |at, kind, p: &str| ContactTouch {
        at,
        kind,
        product: p.into(),
    };
    let s = seeds(&[t(3 * H, Viewed, "v"), t(2 * H, Purchased, "b"), t(H, Viewed, "b")]);
    // b: purchased (1.0) discounted once (0.85); v: viewed (0.4), newest.
    assert_eq!(s[0].0, "b");
    assert!((s[0].1 - 0.85).abs() < 1e-12);
    assert_eq!(s[1], ("v".to_string(), 0.4));
}

#[test]
fn similar_to_a_product_falls_back_to_its_category() {
    let list = similar_to("shirt", &inputs(), 4);
    assert_eq!(ids(&list), ["tie", "coffee", "socks", "pen"]);
    let list = similar_to("socks", &inputs(), 2);
    // No similarities: Clothes' best sellers other than itself, then over all.
    assert_eq!(ids(&list), ["tie", "pen"]);
    let v = template_value(&list[0]);
    assert_eq!(v["name"], "Product tie");
    assert_eq!(v["url"], "https://s.example/tie");
    assert_eq!(v["reason"]["type"], "popular");
}
