use super::*;
use proptest::prelude::*;
use serde_json::json;

/// Written by `scripts/ab-stats-reference.py` with scipy (the special functions with
/// mpmath); see that script.
const REFERENCE: &str = include_str!("../../../tests/fixtures/ab_stats_reference.json");

/// How close to the reference every figure must be. The largest deviations are printed
/// by `special_functions_match_the_reference` and `decisions_match_scipy` (run with
/// `--nocapture`).
mod tolerance {
    /// ln Γ and ln B, relative to max(1, |value|) (achieved: 2.5e-15).
    pub const LOG_GAMMA: f64 = 1e-13;
    /// The incomplete beta, erfc, Φ and Student's t tail: absolute, and relative to the
    /// value for values below 1e-3, so that tiny tails are checked digit by digit
    /// (achieved: 7.4e-12, at I_x(500001, ½) = 1e-12).
    pub const ABSOLUTE: f64 = 1e-12;
    pub const RELATIVE: f64 = 1e-10;
    /// Rates, interval bounds and lifts (achieved: 6e-16).
    pub const RATE: f64 = 1e-13;
    /// p-values: absolute, and relative below 1e-3 (achieved: 9e-12, Welch's test on
    /// sums against scipy's on the recipients' values).
    pub const P_VALUE: f64 = 1e-10;
    /// Probabilities to be best, absolute (achieved: 4e-15).
    pub const PROBABILITY: f64 = 1e-12;
}

#[derive(serde::Deserialize)]
struct Fixture {
    special: Special,
    cases: Vec<Case>,
}

/// Rows of arguments and value, as text: Rust's `str::parse` rounds exactly, which
/// some arguments need (one ulp of x = 1 − 1.6e-12 moves I_x(500001, ½) by 7e-8).
#[derive(serde::Deserialize)]
struct Special {
    ln_gamma: Vec<[String; 2]>,
    ln_beta: Vec<[String; 3]>,
    beta_cdf: Vec<[String; 4]>,
    erfc: Vec<[String; 2]>,
    normal_cdf: Vec<[String; 2]>,
    student_t_two_sided: Vec<[String; 3]>,
}

fn numbers<const N: usize>(row: &[String; N]) -> [f64; N] {
    row.each_ref()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("not a number: {v}")))
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    metric: WinnerMetric,
    arms: Vec<Arm>,
    holdout: Option<Arm>,
    expected: Expected,
}

#[derive(serde::Deserialize)]
struct Expected {
    arms: Vec<ArmStats>,
    holdout: Option<HoldoutStats>,
    decisions: Vec<ExpectedDecision>,
}

#[derive(serde::Deserialize)]
struct ExpectedDecision {
    rule: Rule,
    fallback: Fallback,
    winner: usize,
    decided_by: DecidedBy,
}

fn fixture() -> Fixture {
    serde_json::from_str(REFERENCE).expect("the reference fixture parses")
}

/// The largest deviation seen per kind of figure, and every deviation over its
/// tolerance.
#[derive(Default)]
struct Deviations {
    largest: std::collections::BTreeMap<&'static str, f64>,
    failures: Vec<String>,
}

impl Deviations {
    /// |got − want| scaled as `scale` says, checked against `tolerance`.
    fn check(&mut self, kind: &'static str, what: String, got: f64, want: f64, scale: f64, tolerance: f64) {
        let deviation = if got == want { 0.0 } else { (got - want).abs() / scale };
        let largest = self.largest.entry(kind).or_insert(0.0);
        *largest = largest.max(deviation);
        if deviation.is_nan() || deviation > tolerance {
            self.failures.push(format!(
                "{kind} {what}: got {got:e}, scipy {want:e} (deviation {deviation:e})"
            ));
        }
    }

    /// Absolute for ordinary values, relative for small ones.
    fn tail(&mut self, kind: &'static str, what: String, got: f64, want: f64, absolute: f64, relative: f64) {
        if want.abs() < 1e-3 {
            self.check(kind, what, got, want, want.abs().max(f64::MIN_POSITIVE), relative);
        } else {
            self.check(kind, what, got, want, 1.0, absolute);
        }
    }

    fn option(&mut self, kind: &'static str, what: String, got: Option<f64>, want: Option<f64>, tolerance: f64) {
        match (got, want) {
            (Some(g), Some(w)) => self.check(kind, what, g, w, 1.0, tolerance),
            (None, None) => {}
            _ => self
                .failures
                .push(format!("{kind} {what}: got {got:?}, scipy {want:?}")),
        }
    }
}

#[test]
fn special_functions_match_the_reference() {
    use special::*;
    let f = fixture().special;
    let mut d = Deviations::default();
    for [x, v] in f.ln_gamma.iter().map(numbers) {
        d.check(
            "ln_gamma",
            format!("({x})"),
            ln_gamma(x),
            v,
            v.abs().max(1.0),
            tolerance::LOG_GAMMA,
        );
    }
    for [a, b, v] in f.ln_beta.iter().map(numbers) {
        d.check(
            "ln_beta",
            format!("({a}, {b})"),
            ln_beta(a, b),
            v,
            v.abs().max(1.0),
            tolerance::LOG_GAMMA,
        );
    }
    for [a, b, x, v] in f.beta_cdf.iter().map(numbers) {
        let what = format!("({a}, {b}, {x})");
        d.tail(
            "beta_cdf",
            what,
            beta_cdf(a, b, x),
            v,
            tolerance::ABSOLUTE,
            tolerance::RELATIVE,
        );
    }
    for [x, v] in f.erfc.iter().map(numbers) {
        d.tail(
            "erfc",
            format!("({x})"),
            erfc(x),
            v,
            tolerance::ABSOLUTE,
            tolerance::RELATIVE,
        );
    }
    for [z, v] in f.normal_cdf.iter().map(numbers) {
        d.tail(
            "normal_cdf",
            format!("({z})"),
            normal_cdf(z),
            v,
            tolerance::ABSOLUTE,
            tolerance::RELATIVE,
        );
    }
    for [t, df, v] in f.student_t_two_sided.iter().map(numbers) {
        let what = format!("({t}, {df})");
        d.tail(
            "student_t",
            what,
            student_t_two_sided(t, df),
            v,
            tolerance::ABSOLUTE,
            tolerance::RELATIVE,
        );
    }
    eprintln!("largest deviation from mpmath: {:#?}", d.largest);
    assert!(d.failures.is_empty(), "{}", d.failures.join("\n"));
}

/// Every case of the fixture under every rule and fallback: the figures within the
/// tolerances, the decision exactly.
#[test]
fn decisions_match_scipy() {
    let mut d = Deviations::default();
    let cases = fixture().cases;
    assert!(cases.len() >= 25, "the fixture has {} cases", cases.len());
    for case in cases {
        for expected in &case.expected.decisions {
            let decision = decide(
                case.metric,
                expected.rule,
                expected.fallback,
                &case.arms,
                case.holdout.as_ref(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let name = &case.name;
            let under = format!("{name} under {:?}, {:?}", expected.rule, expected.fallback);
            assert_eq!(decision.winner, expected.winner, "winner of {under}");
            assert_eq!(decision.decided_by, expected.decided_by, "decided by, {under}");
            assert_eq!(decision.arms.len(), case.expected.arms.len());
            for (i, (got, want)) in decision.arms.iter().zip(&case.expected.arms).enumerate() {
                let at = |field: &str| format!("{name}, arm {i}: {field}");
                assert_eq!(got.recipients, want.recipients, "{}", at("recipients"));
                d.check(
                    "rate",
                    at("rate"),
                    got.rate,
                    want.rate,
                    want.rate.abs().max(1.0),
                    tolerance::RATE,
                );
                d.check(
                    "interval",
                    at("ci_low"),
                    got.ci_low,
                    want.ci_low,
                    want.ci_low.abs().max(1.0),
                    tolerance::RATE,
                );
                let high = want.ci_high.abs().max(1.0);
                d.check(
                    "interval",
                    at("ci_high"),
                    got.ci_high,
                    want.ci_high,
                    high,
                    tolerance::RATE,
                );
                let (p, q) = (got.probability_to_be_best, want.probability_to_be_best);
                d.check(
                    "probability_to_be_best",
                    at("probability"),
                    p,
                    q,
                    1.0,
                    tolerance::PROBABILITY,
                );
                match (got.p_value_vs_control, want.p_value_vs_control) {
                    (Some(g), Some(w)) => d.tail("p_value", at("p"), g, w, tolerance::P_VALUE, tolerance::P_VALUE),
                    (g, w) => assert_eq!(g, w, "{}", at("p-value")),
                }
                let (g, w) = (got.lift_vs_holdout, want.lift_vs_holdout);
                assert_eq!(g.is_some(), w.is_some(), "{}", at("lift"));
                if let (Some(g), Some(w)) = (g, w) {
                    d.check(
                        "lift",
                        at("lift"),
                        g.absolute,
                        w.absolute,
                        w.absolute.abs().max(1.0),
                        tolerance::RATE,
                    );
                    d.option("lift", at("relative lift"), g.relative, w.relative, tolerance::RATE);
                }
            }
            match (&decision.holdout, &case.expected.holdout) {
                (Some(g), Some(w)) => {
                    assert_eq!(g.recipients, w.recipients);
                    d.check(
                        "rate",
                        format!("{name}, holdout"),
                        g.rate,
                        w.rate,
                        w.rate.abs().max(1.0),
                        tolerance::RATE,
                    );
                    d.check(
                        "interval",
                        format!("{name}, holdout"),
                        g.ci_low,
                        w.ci_low,
                        1.0,
                        tolerance::RATE,
                    );
                    d.check(
                        "interval",
                        format!("{name}, holdout"),
                        g.ci_high,
                        w.ci_high,
                        1.0,
                        tolerance::RATE,
                    );
                }
                (g, w) => assert_eq!(g.is_some(), w.is_some(), "{name}: holdout"),
            }
        }
    }
    eprintln!("largest deviation from scipy: {:#?}", d.largest);
    assert!(d.failures.is_empty(), "{}", d.failures.join("\n"));
}

/// The quadrature itself, before normalisation, sums to 1: the normalisation in
/// `probability_to_be_best` only removes rounding.
#[test]
fn the_quadrature_sums_to_one_before_normalisation() {
    let mut worst: f64 = 0.0;
    for case in fixture().cases {
        let posteriors: Vec<Posterior> = case
            .arms
            .iter()
            .map(|a| Summary::of(case.metric, a))
            .filter(|s| s.evidence)
            .map(|s| s.posterior)
            .collect();
        if posteriors.len() >= 2 {
            let sum: f64 = best::unnormalised(&posteriors).iter().sum();
            worst = worst.max((sum - 1.0).abs());
        }
    }
    eprintln!("largest |Σ P − 1| before normalisation: {worst:e}");
    assert!(worst < 1e-10, "{worst:e}");
}

/// The Gauss–Kronrod constants: the 15-point rule integrates polynomials up to degree
/// 22 exactly, the 7-point Gauss rule up to degree 13.
#[test]
fn gauss_kronrod_constants_are_exact_where_they_must_be() {
    use best::{GAUSS_WEIGHTS, KRONROD_NODES, KRONROD_WEIGHTS};
    let exact = |degree: i32| {
        if degree % 2 == 1 {
            0.0
        } else {
            2.0 / f64::from(degree + 1)
        }
    };
    for degree in 0..=22 {
        let mut kronrod = KRONROD_WEIGHTS[7] * 0f64.powi(degree);
        for n in 0..7 {
            let x = KRONROD_NODES[n];
            kronrod += KRONROD_WEIGHTS[n] * (x.powi(degree) + (-x).powi(degree));
        }
        assert!(
            (kronrod - exact(degree)).abs() < 1e-15,
            "Kronrod, degree {degree}: {kronrod}"
        );
        if degree <= 13 {
            let mut gauss = GAUSS_WEIGHTS[3] * 0f64.powi(degree);
            for m in 0..3 {
                let x = KRONROD_NODES[2 * m + 1];
                gauss += GAUSS_WEIGHTS[m] * (x.powi(degree) + (-x).powi(degree));
            }
            assert!((gauss - exact(degree)).abs() < 1e-15, "Gauss, degree {degree}: {gauss}");
        }
    }
}

fn proportions(arms: &[(u64, u64)]) -> Vec<Arm> {
    arms.iter().map(|&(n, s)| Arm::proportion(n, s)).collect()
}

fn decide_default(metric: WinnerMetric, arms: &[Arm]) -> Decision {
    decide(metric, Rule::default(), Fallback::Control, arms, None).unwrap()
}

fn assert_sane(decision: &Decision) {
    let sum: f64 = decision.arms.iter().map(|a| a.probability_to_be_best).sum();
    assert!((sum - 1.0).abs() < 1e-9, "probabilities sum to {sum}");
    for a in &decision.arms {
        for v in [a.rate, a.ci_low, a.ci_high, a.probability_to_be_best] {
            assert!(v.is_finite(), "{a:?}");
        }
        assert!((0.0..=1.0).contains(&a.probability_to_be_best), "{a:?}");
        assert!(a.ci_low <= a.rate && a.rate <= a.ci_high, "{a:?}");
        if let Some(p) = a.p_value_vs_control {
            assert!((0.0..=1.0).contains(&p), "{a:?}");
        }
    }
}

#[test]
fn huge_arms_decide_quickly_without_nan() {
    let arms = proportions(&[
        (100_000_000, 2_000_000),
        (100_000_000, 2_003_000),
        (1_000_000_000, 20_010_000),
    ]);
    let decision = decide_default(WinnerMetric::OpenRate, &arms);
    assert_sane(&decision);
    // Identical rates with ten times the recipients: the big arm is less likely to be
    // best than its rate alone suggests, but every figure is finite and ordered.
    assert!(decision.arms[1].probability_to_be_best > decision.arms[0].probability_to_be_best);

    let eight: Vec<Arm> = (0..8).map(|i| Arm::proportion(1_000_000, 250_000 + 100 * i)).collect();
    let decision = decide_default(WinnerMetric::ClickRate, &eight);
    assert_sane(&decision);
    let probabilities: Vec<f64> = decision.arms.iter().map(|a| a.probability_to_be_best).collect();
    assert!(probabilities.windows(2).all(|w| w[0] < w[1]), "{probabilities:?}");
}

#[test]
fn ties_split_evenly_and_go_to_the_control() {
    let revenue = WinnerMetric::RevenuePerRecipient;
    for (metric, arms) in [
        (
            WinnerMetric::ConversionRate,
            proportions(&[(1000, 50), (1000, 50), (1000, 50), (1000, 50)]),
        ),
        (WinnerMetric::ConversionRate, proportions(&[(10, 0), (10, 0)])),
        (
            revenue,
            vec![Arm::revenue(3, 30.0, 300.0), Arm::revenue(5, 50.0, 500.0)],
        ),
        (
            revenue,
            vec![
                Arm::from_revenues([0.0; 9]),
                Arm::from_revenues([0.0; 4]),
                Arm::from_revenues([0.0; 7]),
            ],
        ),
    ] {
        let decision = decide(metric, Rule::default(), Fallback::BestObserved, &arms, None).unwrap();
        assert_sane(&decision);
        let share = 1.0 / arms.len() as f64;
        for a in &decision.arms {
            assert!(
                (a.probability_to_be_best - share).abs() < 1e-9,
                "{arms:?}: {decision:?}"
            );
        }
        assert_eq!(decision.winner, 0, "a tie goes to the control: {decision:?}");
    }
}

#[test]
fn arms_without_data_carry_no_evidence() {
    let arms = proportions(&[(0, 0), (0, 0), (0, 0)]);
    let decision = decide(
        WinnerMetric::OpenRate,
        Rule::default(),
        Fallback::BestObserved,
        &arms,
        None,
    )
    .unwrap();
    assert_sane(&decision);
    assert_eq!(decision.winner, 0);
    assert_eq!(
        decision.decided_by,
        DecidedBy::Fallback {
            fallback: Fallback::BestObserved,
            reason: NoWinner::NotEnoughData
        }
    );
    for a in &decision.arms {
        assert_eq!(
            (a.rate, a.ci_low, a.ci_high, a.p_value_vs_control),
            (0.0, 0.0, 0.0, None)
        );
    }

    // An arm nobody received cannot win, however good an empty prior looks.
    let arms = proportions(&[(10_000, 200), (0, 0)]);
    let decision = decide_default(WinnerMetric::OpenRate, &arms);
    assert_eq!(decision.winner, 0);
    assert_eq!(decision.arms[1].probability_to_be_best, 0.5);

    // One revenue recipient: a mean but no spread, so no evidence.
    let arms = [Arm::from_revenues([0.0, 5.0, 0.0, 12.0]), Arm::from_revenues([500.0])];
    let decision = decide(
        WinnerMetric::RevenuePerRecipient,
        Rule::default(),
        Fallback::BestObserved,
        &arms,
        None,
    )
    .unwrap();
    assert_sane(&decision);
    assert_eq!((decision.arms[1].ci_low, decision.arms[1].ci_high), (500.0, 500.0));
    assert_eq!(decision.arms[1].p_value_vs_control, None);
    assert_eq!(decision.winner, 0, "the best observed among arms with data");
}

#[test]
fn the_holdout_gives_lifts() {
    let arms = proportions(&[(1000, 100), (1000, 150)]);
    let decision = decide(
        WinnerMetric::ConversionRate,
        Rule::default(),
        Fallback::Control,
        &arms,
        Some(&Arm::proportion(500, 40)),
    )
    .unwrap();
    let lift = decision.arms[1].lift_vs_holdout.unwrap();
    assert!((lift.absolute - 0.07).abs() < 1e-15);
    assert!((lift.relative.unwrap() - 0.875).abs() < 1e-12);
    assert_eq!(decision.holdout.unwrap().rate, 0.08);
    assert_eq!(
        lift_over_holdout(WinnerMetric::ConversionRate, &arms[1], &Arm::proportion(500, 40)),
        Some(lift),
        "the report's lift is the decision's"
    );
    let revenue = lift_over_holdout(
        WinnerMetric::RevenuePerRecipient,
        &Arm::revenue(100, 300.0, 9000.0),
        &Arm::revenue(50, 100.0, 2000.0),
    )
    .unwrap();
    assert!((revenue.absolute - 1.0).abs() < 1e-12 && (revenue.relative.unwrap() - 0.5).abs() < 1e-12);
    assert_eq!(
        lift_over_holdout(WinnerMetric::ConversionRate, &arms[1], &Arm::proportion(0, 0)),
        None
    );

    let zero = decide(
        WinnerMetric::ConversionRate,
        Rule::default(),
        Fallback::Control,
        &arms,
        Some(&Arm::proportion(500, 0)),
    )
    .unwrap();
    assert_eq!(
        zero.arms[0].lift_vs_holdout,
        Some(Lift {
            absolute: 0.1,
            relative: None
        })
    );
    let empty = decide(
        WinnerMetric::ConversionRate,
        Rule::default(),
        Fallback::Control,
        &arms,
        Some(&Arm::default()),
    )
    .unwrap();
    assert_eq!(empty.arms[0].lift_vs_holdout, None);
}

#[test]
fn invalid_input_is_refused() {
    let ok = Arm::proportion(10, 1);
    let metric = WinnerMetric::OpenRate;
    let refused = |rule: Rule, arms: &[Arm], holdout: Option<&Arm>| {
        decide(metric, rule, Fallback::Control, arms, holdout).unwrap_err()
    };
    assert_eq!(refused(Rule::default(), &[ok], None), StatsError::TooFewArms(1));
    assert_eq!(
        refused(Rule::default(), &[ok, Arm::proportion(3, 4)], None),
        StatsError::SuccessesExceedRecipients {
            group: Group::Variant(1),
            successes: 4,
            recipients: 3
        }
    );
    assert_eq!(
        refused(Rule::default(), &[ok, ok], Some(&Arm::revenue(2, f64::NAN, 1.0))),
        StatsError::InvalidRevenue { group: Group::Holdout }
    );
    assert_eq!(
        refused(Rule::default(), &[Arm::revenue(2, 10.0, 20.0), ok], None),
        StatsError::InvalidRevenue {
            group: Group::Variant(0)
        },
        "a sum of squares below (sum)²/n"
    );
    assert_eq!(
        refused(Rule::default(), &[Arm::revenue(0, 1.0, 1.0), ok], None),
        StatsError::InvalidRevenue {
            group: Group::Variant(0)
        }
    );
    for threshold in [0.5, 1.01, f64::NAN] {
        assert!(matches!(
            refused(Rule::ProbabilityToBeBest { threshold }, &[ok, ok], None),
            StatsError::InvalidThreshold(_)
        ));
    }
    for alpha in [0.0, 1.0, -0.1, f64::INFINITY] {
        assert!(matches!(
            refused(Rule::SignificanceTest { alpha }, &[ok, ok], None),
            StatsError::InvalidAlpha(_)
        ));
    }
    assert_eq!(
        StatsError::SuccessesExceedRecipients {
            group: Group::Variant(0),
            successes: 2,
            recipients: 1
        }
        .to_string(),
        "variant 0 (the control): 2 successes out of 1 recipients"
    );
}

#[test]
fn configuration_and_decisions_have_a_stable_json_form() {
    let rule: Rule = serde_json::from_value(json!({"type": "probability_to_be_best"})).unwrap();
    assert_eq!(rule, Rule::ProbabilityToBeBest { threshold: 0.95 });
    let rule: Rule = serde_json::from_value(json!({"type": "significance_test"})).unwrap();
    assert_eq!(rule, Rule::SignificanceTest { alpha: 0.05 });
    assert_eq!(
        serde_json::to_value(WinnerMetric::RevenuePerRecipient).unwrap(),
        json!("revenue_per_recipient")
    );
    assert_eq!(
        serde_json::to_value(Fallback::BestObserved).unwrap(),
        json!("best_observed")
    );

    let decision = decide_default(WinnerMetric::OpenRate, &proportions(&[(100, 10), (100, 11)]));
    let value = serde_json::to_value(&decision).unwrap();
    assert_eq!(
        value["decided_by"],
        json!({"by": "fallback", "fallback": "control", "reason": "not_significant"})
    );
    assert_eq!(value["arms"][0]["p_value_vs_control"], json!(null));
    assert_eq!(serde_json::from_value::<Decision>(value).unwrap(), decision);

    let by_rule = DecidedBy::Rule {
        rule: Rule::SignificanceTest { alpha: 0.01 },
    };
    assert_eq!(
        serde_json::to_value(by_rule).unwrap(),
        json!({"by": "rule", "rule": {"type": "significance_test", "alpha": 0.01}})
    );
}

#[test]
fn the_significance_level_is_bonferroni_corrected() {
    let arms = proportions(&[(4000, 400), (4000, 455), (4000, 395), (0, 0)]);
    let rule = Rule::SignificanceTest { alpha: 0.05 };
    let decision = decide(WinnerMetric::ConversionRate, rule, Fallback::Control, &arms, None).unwrap();
    assert_eq!(
        decision.significance_level,
        Some(0.025),
        "two comparisons: the empty arm is not one"
    );
    let p = decision.arms[1].p_value_vs_control.unwrap();
    assert!(p < 0.05 && p > 0.025, "{p}");
    assert_eq!(decision.winner, 0);
    let alone = decide(WinnerMetric::ConversionRate, rule, Fallback::Control, &arms[..2], None).unwrap();
    assert_eq!(
        (alone.winner, alone.decided_by),
        (1, DecidedBy::Rule { rule }),
        "one comparison: α itself"
    );
}

// ---------------------------------------------------------------------------
// Properties

fn arb_proportion_arm() -> impl Strategy<Value = Arm> {
    prop_oneof![
        1 => Just(Arm::default()),
        6 => (1u64..5_000).prop_flat_map(|n| (Just(n), 0..=n)).prop_map(|(n, s)| Arm::proportion(n, s)),
        1 => (1u64..2_000_000).prop_flat_map(|n| (Just(n), 0..=n / 10)).prop_map(|(n, s)| Arm::proportion(n, s)),
    ]
}

fn arb_revenue_arm() -> impl Strategy<Value = Arm> {
    let amount = prop_oneof![3 => Just(0.0), 1 => (1u32..50_000).prop_map(|c| f64::from(c) / 100.0)];
    prop::collection::vec(amount, 0..60).prop_map(Arm::from_revenues)
}

fn arb_test() -> impl Strategy<Value = (WinnerMetric, Vec<Arm>)> {
    prop_oneof![
        3 => (
            prop::sample::select(vec![WinnerMetric::OpenRate, WinnerMetric::ClickRate, WinnerMetric::ConversionRate]),
            prop::collection::vec(arb_proportion_arm(), 2..=8),
        ),
        1 => (Just(WinnerMetric::RevenuePerRecipient), prop::collection::vec(arb_revenue_arm(), 2..=8)),
    ]
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    prop_oneof![
        (0.51f64..=1.0).prop_map(|threshold| Rule::ProbabilityToBeBest { threshold }),
        (0.001f64..0.5).prop_map(|alpha| Rule::SignificanceTest { alpha }),
    ]
}

fn arb_fallback() -> impl Strategy<Value = Fallback> {
    prop::sample::select(vec![Fallback::Control, Fallback::BestObserved])
}

/// Two arm figures agree but for integration rounding.
fn same_figures(a: &ArmStats, b: &ArmStats) -> bool {
    a.recipients == b.recipients
        && a.rate == b.rate
        && a.ci_low == b.ci_low
        && a.ci_high == b.ci_high
        && (a.probability_to_be_best - b.probability_to_be_best).abs() < 1e-9
        && a.lift_vs_holdout == b.lift_vs_holdout
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Probabilities in [0, 1] summing to 1, intervals around their rates, p-values
    /// in [0, 1], nothing NaN, a winner among the arms; and the same decision twice.
    #[test]
    fn decisions_are_sane_and_deterministic(
        (metric, arms) in arb_test(),
        rule in arb_rule(),
        fallback in arb_fallback(),
    ) {
        let decision = decide(metric, rule, fallback, &arms, None).unwrap();
        assert_sane(&decision);
        prop_assert!(decision.winner < arms.len());
        let again = decide(metric, rule, fallback, &arms, None).unwrap();
        prop_assert_eq!(serde_json::to_string(&again).unwrap(), serde_json::to_string(&decision).unwrap());
    }

    /// Reordering the arms reorders the figures that do not depend on the control;
    /// reordering only the variants also reorders the p-values and moves the winner
    /// with its arm (or to an arm with the same figures, on a tie).
    #[test]
    fn reordering_arms_reorders_the_results(
        (metric, arms) in arb_test(),
        rule in arb_rule(),
        fallback in arb_fallback(),
        shuffle in any::<prop::sample::Index>(),
        variants_only in any::<bool>(),
    ) {
        let k = arms.len();
        // A rotation by a random amount, of all arms or of the variants only.
        let start = usize::from(variants_only);
        let span = k - start;
        let by = shuffle.index(span);
        let order: Vec<usize> =
            (0..k).map(|i| if i < start { i } else { start + (i - start + by) % span }).collect();
        let reordered: Vec<Arm> = order.iter().map(|&i| arms[i]).collect();
        let before = decide(metric, rule, fallback, &arms, None).unwrap();
        let after = decide(metric, rule, fallback, &reordered, None).unwrap();
        for (new, &old) in order.iter().enumerate() {
            prop_assert!(same_figures(&after.arms[new], &before.arms[old]), "{:?} vs {:?}", after.arms[new], before.arms[old]);
            if variants_only {
                prop_assert_eq!(after.arms[new].p_value_vs_control, before.arms[old].p_value_vs_control);
            }
        }
        if variants_only {
            prop_assert_eq!(after.decided_by, before.decided_by);
            let moved = order.iter().position(|&old| old == before.winner).unwrap();
            prop_assert!(
                after.winner == moved || same_figures(&after.arms[after.winner], &before.arms[before.winner]),
                "winner {} became {} (expected {})", before.winner, after.winner, moved
            );
        }
    }

    /// Wilson's interval contains the rate and lies in [0, 1].
    #[test]
    fn wilson_contains_the_rate(n in 0u64..10_000_000, share in 0.0f64..=1.0) {
        let s = (n as f64 * share).round() as u64;
        let (low, high) = wilson(s, n);
        let rate = if n == 0 { 0.0 } else { s as f64 / n as f64 };
        prop_assert!(0.0 <= low && low <= rate && rate <= high && high <= 1.0, "{low} {rate} {high}");
    }
}
