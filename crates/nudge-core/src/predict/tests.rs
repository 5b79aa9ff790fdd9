//! The models against the paper and against `lifetimes` on the CDNOW sample
//! (`tests/fixtures/cdnow/`, made by `scripts/clv-reference.py`).

use super::hyp2f1::ln_hyp2f1;
use super::*;
use serde::Deserialize;

const SUMMARY: &str = include_str!("../../tests/fixtures/cdnow/summary.csv");
const REFERENCE: &str = include_str!("../../tests/fixtures/cdnow/reference.json");

#[derive(Deserialize)]
struct Paper {
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
    log_likelihood: f64,
}

#[derive(Deserialize)]
struct Row {
    x: u32,
    t_x: f64,
    #[serde(rename = "T")]
    age: f64,
    zbar: f64,
    p_alive: f64,
    expected_30d: f64,
    expected_90d: f64,
    expected_365d: f64,
    order_value: f64,
}

#[derive(Deserialize)]
struct Reference {
    paper: Paper,
    customers: usize,
    repeat_customers: usize,
    bgnbd: BgNbd,
    bgnbd_log_likelihood: f64,
    gamma_gamma: GammaGamma,
    gamma_gamma_log_likelihood: f64,
    predictions: Vec<Row>,
}

fn reference() -> Reference {
    serde_json::from_str(REFERENCE).expect("the reference fixture parses")
}

/// The CDNOW customers: `ID,x,t_x,T,zbar` in weeks.
fn cdnow() -> Vec<Customer> {
    SUMMARY
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<f64> = line.split(',').map(|v| v.trim().parse().expect("a number")).collect();
            Customer {
                frequency: f[1] as u32,
                recency: f[2],
                age: f[3],
                monetary: f[4],
            }
        })
        .collect()
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance * expected.abs().max(1e-12)
}

#[track_caller]
fn assert_close(what: &str, actual: f64, expected: f64, tolerance: f64) {
    assert!(
        close(actual, expected, tolerance),
        "{what}: {actual} is not within {tolerance:e} of {expected}"
    );
}

#[test]
fn the_fixture_is_the_papers_sample() {
    let customers = cdnow();
    let reference = reference();
    assert_eq!(customers.len(), 2357);
    assert_eq!(reference.customers, 2357);
    assert_eq!(
        customers.iter().filter(|c| GammaGamma::fits(c)).count(),
        reference.repeat_customers
    );
}

#[test]
fn bgnbd_fitted_on_cdnow_gives_the_papers_parameters() {
    let (fit, ll) = fit_bgnbd(&cdnow()).expect("a fit");
    let paper = reference().paper;
    let three = |v: f64| (v * 1000.0).round() / 1000.0;
    assert_eq!(
        (three(fit.r), three(fit.alpha), three(fit.a), three(fit.b)),
        (paper.r, paper.alpha, paper.a, paper.b),
        "fitted {fit:?}"
    );
    assert_eq!((ll * 10.0).round() / 10.0, paper.log_likelihood, "log-likelihood {ll}");
}

#[test]
fn bgnbd_fit_matches_lifetimes() {
    let (fit, ll) = fit_bgnbd(&cdnow()).expect("a fit");
    let reference = reference();
    let expected = reference.bgnbd;
    for (name, actual, expected) in [
        ("r", fit.r, expected.r),
        ("alpha", fit.alpha, expected.alpha),
        ("a", fit.a, expected.a),
        ("b", fit.b, expected.b),
    ] {
        assert_close(name, actual, expected, 1e-4);
    }
    // Ours is the maximum: no lower than lifetimes' likelihood, by more than noise.
    assert!(
        ll >= reference.bgnbd_log_likelihood - 1e-6,
        "{ll} vs {}",
        reference.bgnbd_log_likelihood
    );
}

#[test]
fn gamma_gamma_fit_matches_lifetimes() {
    let customers = cdnow();
    let (fit, ll, n) = fit_gamma_gamma(&customers).expect("a fit");
    let reference = reference();
    assert_eq!(n, reference.repeat_customers);
    let expected = reference.gamma_gamma;
    for (name, actual, expected) in [
        ("p", fit.p, expected.p),
        ("q", fit.q, expected.q),
        ("gamma", fit.gamma, expected.gamma),
    ] {
        assert_close(name, actual, expected, 1e-4);
    }
    assert!(ll >= reference.gamma_gamma_log_likelihood - 1e-6);
}

#[test]
fn likelihoods_match_lifetimes_at_its_parameters() {
    let customers = cdnow();
    let reference = reference();
    let bg: f64 = customers.iter().map(|c| reference.bgnbd.log_likelihood(c)).sum();
    assert_close("BG/NBD log-likelihood", bg, reference.bgnbd_log_likelihood, 1e-11);
    let gg: f64 = customers
        .iter()
        .filter(|c| GammaGamma::fits(c))
        .map(|c| reference.gamma_gamma.log_likelihood(c))
        .sum();
    assert_close(
        "Gamma-Gamma log-likelihood",
        gg,
        reference.gamma_gamma_log_likelihood,
        1e-11,
    );
}

#[test]
fn the_grouped_likelihoods_are_the_sums_of_the_per_customer_ones() {
    // CDNOW repeated, so that summaries repeat, plus its own customers once more.
    let mut customers = cdnow();
    customers.extend(cdnow().into_iter().step_by(3));
    let bg_data = BgNbdData::new(&customers);
    assert!(bg_data.distinct() < customers.len());
    let gg_data = GammaGammaData::new(&customers);
    assert_eq!(
        gg_data.customers(),
        customers.iter().filter(|c| GammaGamma::fits(c)).count()
    );
    for bg in [
        reference().bgnbd,
        BgNbd {
            r: 2.5,
            alpha: 0.3,
            a: 7.0,
            b: 0.01,
        },
        BgNbd {
            r: 0.01,
            alpha: 40.0,
            a: 0.2,
            b: 3.0,
        },
    ] {
        let each: f64 = customers.iter().map(|c| bg.log_likelihood(c)).sum();
        assert_close("BG/NBD", bg.total_log_likelihood(&bg_data), each, 1e-12);
    }
    for gg in [
        reference().gamma_gamma,
        GammaGamma {
            p: 0.5,
            q: 12.0,
            gamma: 300.0,
        },
        GammaGamma {
            p: 30.0,
            q: 0.8,
            gamma: 0.05,
        },
    ] {
        let each: f64 = customers
            .iter()
            .filter(|c| GammaGamma::fits(c))
            .map(|c| gg.log_likelihood(c))
            .sum();
        assert_close("Gamma-Gamma", gg.total_log_likelihood(&gg_data), each, 1e-12);
    }
}

#[test]
fn per_customer_predictions_match_lifetimes() {
    let reference = reference();
    assert!(reference.predictions.len() > 500);
    let (bg, gg) = (reference.bgnbd, reference.gamma_gamma);
    for row in &reference.predictions {
        let c = Customer {
            frequency: row.x,
            recency: row.t_x,
            age: row.age,
            monetary: row.zbar,
        };
        let what = |w: &str| format!("{w} of x={} t_x={} T={}", row.x, row.t_x, row.age);
        assert_close(&what("P(alive)"), bg.p_alive(&c), row.p_alive, 1e-12);
        for (days, expected) in [
            (30.0, row.expected_30d),
            (90.0, row.expected_90d),
            (365.0, row.expected_365d),
        ] {
            assert_close(
                &what(&format!("E[Y({days} days)]")),
                bg.expected_purchases(&c, days / 7.0),
                expected,
                1e-10,
            );
        }
        assert_close(
            &what("E[Z]"),
            gg.expected_order_value(&c).unwrap(),
            row.order_value,
            1e-12,
        );
    }
}

#[test]
fn predictions_from_our_own_fit_match_lifetimes() {
    let customers = cdnow();
    let model = fit(&customers, Unit::Weeks, 0, 0).expect("a fit");
    assert_eq!(model.customers, 2357);
    assert_eq!(model.repeat_customers, 946);
    for row in reference().predictions {
        let c = Customer {
            frequency: row.x,
            recency: row.t_x,
            age: row.age,
            monetary: row.zbar,
        };
        let p = model.predict(&c, 0);
        assert_close("P(alive)", p.p_alive, row.p_alive, 1e-4);
        assert_close(
            "E[Y(90 days)]",
            p.expected_purchases_90d.unwrap(),
            row.expected_90d,
            1e-4,
        );
        assert_close("E[Z]", p.expected_order_value.unwrap(), row.order_value, 1e-4);
        assert_close("CLV", p.clv_12m.unwrap(), row.expected_365d * row.order_value, 2e-4);
    }
}

#[test]
fn the_hypergeometric_function_matches_closed_forms() {
    // ₂F₁(1, 1; 2; z) = −ln(1 − z)/z; ₂F₁(a, b; b; z) = (1 − z)^(−a);
    // ₂F₁(½, 1; 3/2; z²) = artanh(z)/z. Logarithms compared to an absolute 1e-12
    // (a relative 1e-12 on ₂F₁), as near z = 0 the closed forms lose digits themselves.
    let check = |what: &str, actual: f64, expected: f64| {
        assert!(
            (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "{what}: {actual} vs {expected}"
        );
    };
    for z in [1e-6, 0.1, 0.5, 0.9, 0.99, 0.999] {
        check("2F1(1,1;2)", ln_hyp2f1(1.0, 1.0, 2.0, z), (-(-z).ln_1p() / z).ln());
        for a in [0.3, 2.5, 40.0, 400.0] {
            check("2F1(a,b;b)", ln_hyp2f1(a, 3.7, 3.7, z), -a * (-z).ln_1p());
        }
        let w = z.sqrt();
        check("2F1(1/2,1;3/2)", ln_hyp2f1(0.5, 1.0, 1.5, z), (w.atanh() / w).ln());
    }
    assert_eq!(ln_hyp2f1(2.0, 3.0, 4.0, 0.0), 0.0);
}

#[test]
fn a_nearly_fixed_dropout_probability_still_predicts() {
    // The maximum likelihood may drive a and b up together (a/(a+b) fixed): the
    // transformed series' parameters are then huge, the plain one's tame.
    let bg = BgNbd {
        r: 0.26,
        alpha: 8.3,
        a: 8.2e6,
        b: 1.83e7,
    };
    let c = Customer {
        frequency: 3,
        recency: 40.0,
        age: 120.0,
        monetary: 20.0,
    };
    let e = bg.expected_purchases(&c, 30.0);
    assert!(e.is_finite() && e > 0.0, "{e}");
    // The limit: a fixed dropout probability p = a/(a+b); alive with P(alive), a
    // customer buys at rate E[λ | x, tₓ, T] ≈ (r+x)/(α+T) until dropping out.
    let limit = BgNbd {
        a: 8.2e9,
        b: 1.83e10,
        ..bg
    }
    .expected_purchases(&c, 30.0);
    assert_close("the limit", e, limit, 1e-3);
}

#[test]
fn a_frequent_buyer_does_not_overflow() {
    let bg = reference().bgnbd;
    let c = Customer {
        frequency: 2_000,
        recency: 364.0,
        age: 365.0,
        monetary: 10.0,
    };
    let e = bg.expected_purchases(&c, 52.0);
    assert!(e.is_finite() && e > 100.0, "{e}");
}

#[test]
fn the_expected_purchases_grow_with_time_and_reach_one_at_the_next_order() {
    let bg = reference().bgnbd;
    let c = Customer {
        frequency: 4,
        recency: 30.0,
        age: 32.0,
        monetary: 20.0,
    };
    let mut last = 0.0;
    for t in 1..200 {
        let e = bg.expected_purchases(&c, f64::from(t));
        assert!(e > last, "not increasing at t = {t}");
        last = e;
    }
    let t = bg.time_to_purchases(&c, 1.0, 260.0, 0.0).expect("within five years");
    assert_close("E[Y(t)] at the next order", bg.expected_purchases(&c, t), 1.0, 1e-9);
    // To a resolution: the answer is the first time reaching it, at most that late.
    let coarse = bg.time_to_purchases(&c, 1.0, 260.0, 0.01).expect("within five years");
    assert!(coarse >= t && coarse - t <= 0.01, "{coarse} vs {t}");
    assert!(bg.expected_purchases(&c, coarse) >= 1.0);
    // Someone who has not bought for years is not expected back within the horizon.
    let gone = Customer {
        frequency: 1,
        recency: 0.5,
        age: 300.0,
        monetary: 20.0,
    };
    assert_eq!(bg.time_to_purchases(&gone, 1.0, 260.0, 0.01), None);
}

#[test]
fn churn_bands_follow_the_documented_thresholds() {
    assert_eq!(ChurnBand::of(0.0), ChurnBand::High);
    assert_eq!(ChurnBand::of(0.299), ChurnBand::High);
    assert_eq!(ChurnBand::of(HIGH_RISK_BELOW), ChurnBand::Medium);
    assert_eq!(ChurnBand::of(0.699), ChurnBand::Medium);
    assert_eq!(ChurnBand::of(MEDIUM_RISK_BELOW), ChurnBand::Low);
    assert_eq!(ChurnBand::of(1.0), ChurnBand::Low);
}

#[test]
fn a_summary_counts_purchase_days_up_to_the_end_of_calibration() {
    let day = 86_400_000;
    let at = |d: i64, h: i64, value: f64| Purchase {
        at: d * day + h * 3_600_000,
        value,
    };
    let purchases = [
        at(14, 9, 5.0),
        at(0, 10, 30.0), // the first purchase: left out of the mean
        at(7, 8, 10.0),
        at(7, 20, 6.0),  // same day as the one before: one purchase of 16
        at(30, 1, 99.0), // after the end of calibration
    ];
    let c = summarise(&purchases, 21 * day + 5, Unit::Weeks).expect("a customer");
    assert_eq!(c.frequency, 2);
    assert_close("recency", c.recency, 2.0, 1e-12);
    assert_close("age", c.age, 3.0, 1e-12);
    assert_close("monetary", c.monetary, (16.0 + 5.0) / 2.0, 1e-12);
    let d = summarise(&purchases, 21 * day, Unit::Days).expect("a customer");
    assert_eq!((d.recency, d.age), (14.0, 21.0));
    assert_eq!(summarise(&purchases, -1, Unit::Days), None);
    let once = summarise(&purchases[1..2], 21 * day, Unit::Days).unwrap();
    assert_eq!((once.frequency, once.recency, once.monetary), (0, 0.0, 0.0));
}

#[test]
fn too_few_customers_is_an_error_not_a_model() {
    let one = Customer {
        frequency: 1,
        recency: 1.0,
        age: 2.0,
        monetary: 3.0,
    };
    assert_eq!(
        fit(&[one; 3], Unit::Days, 0, 0),
        Err(FitError::TooFewCustomers {
            customers: 3,
            repeat: 3
        })
    );
    let first_timers = vec![
        Customer {
            frequency: 0,
            recency: 0.0,
            age: 5.0,
            monetary: 0.0
        };
        50
    ];
    assert!(matches!(
        fit_bgnbd(&first_timers),
        Err(FitError::TooFewCustomers { repeat: 0, .. })
    ));
}

#[test]
fn predictions_become_traits_with_a_band_and_a_date() {
    let model = fit(&cdnow(), Unit::Weeks, 0, 0).unwrap();
    let c = Customer {
        frequency: 2,
        recency: 30.43,
        age: 38.86,
        monetary: 22.35,
    };
    let p = model.predict(&c, 1_000_000);
    let traits = p.traits();
    assert_eq!(traits.keys().map(String::as_str).collect::<Vec<_>>(), TRAITS.to_vec());
    assert_eq!(traits["predicted_churn_band"], "low");
    assert!((traits["predicted_p_alive"].as_f64().unwrap() - 0.7266).abs() < 1e-4);
    assert_close("churn risk", p.churn_risk, 1.0 - p.p_alive, 1e-15);
    let next = p.next_order_at.expect("a next order");
    assert!(next > 1_000_000);
    assert_eq!(traits["predicted_next_order_at"], crate::format_millis(next));
}

#[test]
fn a_degenerate_fit_predicts_nothing_rather_than_nonsense() {
    // a + b < 1: the conditional expectation's ₂F₁ has c = a + b + x − 1 ≤ 0 for x = 0.
    let model = Model {
        unit: Unit::Days,
        until: 0,
        fitted_at: 0,
        bgnbd: BgNbd {
            r: 0.5,
            alpha: 10.0,
            a: 0.2,
            b: 0.3,
        },
        bgnbd_log_likelihood: -1.0,
        customers: 10,
        gamma_gamma: None,
        gamma_gamma_log_likelihood: None,
        repeat_customers: 0,
    };
    let c = Customer {
        frequency: 0,
        recency: 0.0,
        age: 30.0,
        monetary: 0.0,
    };
    let p = model.predict(&c, 0);
    assert_eq!(
        (p.expected_purchases_90d, p.clv_12m, p.next_order_at),
        (None, None, None)
    );
    assert_eq!(p.p_alive, 1.0);
    assert!(p.traits()["predicted_expected_purchases_90d"].is_null());
    // It survives storage as JSON.
    let back: Prediction = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
    assert_eq!(back, p);
}
