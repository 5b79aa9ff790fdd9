//! The statistics that choose an A/B test's winner: one pure function, [`decide`],
//! from each variant's counts to a [`Decision`] (the winner, the rule or fallback that
//! chose it, and per variant its rate with a 95 % interval, its probability to be
//! best, its p-value against the control and its lift over the holdout).
//!
//! Variant 0 is the control. Everything here is deterministic: no sampling, no
//! clock; the same counts give the same decision, bit for bit. Every number is
//! checked against scipy (`scripts/ab-stats-reference.py` writes the fixture
//! `tests/fixtures/ab_stats_reference.json` that the tests read). `docs/ab-tests.md`
//! ("How the winner is chosen") says the same for marketers.
//!
//! # Proportions (open, click and conversion rate)
//! An arm is `n` recipients of whom `s` opened (clicked, converted); rate s/n.
//! - **Interval:** Wilson's score interval at 95 % (z = Φ⁻¹(0.975) ≈ 1.96):
//!   centre (p + z²/2n)/(1 + z²/n), half-width z/(1 + z²/n)·√(p(1−p)/n + z²/4n²).
//! - **Probability to be best:** each rate has the posterior Beta(1+s, 1+n−s) (a
//!   uniform prior); P(i best) = ∫ fᵢ(x) Π_{j≠i} Fⱼ(x) dx with f the Beta density and F
//!   its cdf, the regularized incomplete beta function, integrated numerically
//!   (adaptive Gauss–Kronrod, see `best.rs`).
//! - **Test against the control:** the pooled two-proportion z-test, two-sided:
//!   p̂ = (s₀+sᵢ)/(n₀+nᵢ), z = (sᵢ/nᵢ − s₀/n₀)/√(p̂(1−p̂)(1/n₀ + 1/nᵢ)), p = 2(1 − Φ(|z|)).
//!   When p̂ is 0 or 1 both rates are equal (all 0 % or all 100 %) and p = 1.
//!
//! # Revenue per recipient
//! An arm is `n` recipients, the sum R of their revenue and the sum Q of its squares
//! (a recipient who bought nothing counts 0). Mean m = R/n, sample variance
//! v = (Q − R²/n)/(n−1), standard error se = √(v/n).
//! - **Interval:** normal approximation, m ± 1.96·se.
//! - **Probability to be best:** each mean as Normal(m, se) (the central limit
//!   theorem); P(i best) = ∫ φᵢ(x) Π_{j≠i} Φⱼ(x) dx, integrated as above. A mean with
//!   se = 0 is a point mass; tied point masses at the top share their probability.
//! - **Test against the control:** Welch's t-test (unequal variances), two-sided:
//!   t = (mᵢ − m₀)/√(vᵢ/nᵢ + v₀/n₀) with Welch–Satterthwaite degrees of freedom
//!   df = (vᵢ/nᵢ + v₀/n₀)² / ((vᵢ/nᵢ)²/(nᵢ−1) + (v₀/n₀)²/(n₀−1)); p = P(|T_df| ≥ |t|).
//!   With both variances 0, p = 1 when the means are equal and 0 when they differ.
//! - A sum of squared deviations Q − R²/n within 1e-12·Q of zero is the rounding noise
//!   of an all-equal sample and counts as zero.
//!
//! # The rule, and the fallback
//! - [`Rule::ProbabilityToBeBest`]: the arm with the highest probability to be best
//!   wins if that probability reaches the threshold (default 0.95; above 0.5, so at
//!   most one arm can reach it).
//! - [`Rule::SignificanceTest`]: each variant with data is tested against the control;
//!   with m such comparisons each is significant when p ≤ α/m (Bonferroni; α defaults
//!   to 0.05). Among the variants significantly *better* than the control, the one
//!   with the highest observed rate wins; if every compared variant is significantly
//!   *worse*, the control wins by the rule.
//! - Otherwise no arm won and the [`Fallback`] chooses: the control, or the arm with
//!   the best observed rate (ties go to the lower index, so to the control first).
//!   [`DecidedBy`] says which happened, and why no arm won ([`NoWinner`]).
//!
//! # Arms without data
//! An arm carries evidence with at least one recipient (proportions) or two
//! (revenue: a variance needs two). An arm without evidence has no p-value, a
//! probability to be best of 0, an interval of [0, 0] (no recipients) or [m, m] (one
//! revenue recipient), and no lift; the rule ignores it and the best-observed fallback
//! skips it. With fewer than two arms carrying evidence nothing can be compared: every
//! arm gets probability 1/k, the rule cannot decide, and the fallback chooses
//! ([`NoWinner::NotEnoughData`]). No input gives NaN or a panic; invalid input
//! (successes above recipients, non-finite revenue) is a [`StatsError`].
//!
//! # Lift over the holdout
//! The holdout receives nothing; its rate is computed as an arm's. Lift is the
//! absolute difference rate − holdout rate and the relative difference
//! (rate − holdout rate)/holdout rate, the latter only when the holdout's rate is
//! above 0. No lift when the arm or the holdout has no recipients.

mod best;
pub(crate) mod special;
#[cfg(test)]
mod tests;

use best::Posterior;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Φ⁻¹(0.975): the normal quantile of a two-sided 95 % interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// What a test compares variants on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WinnerMetric {
    OpenRate,
    ClickRate,
    ConversionRate,
    RevenuePerRecipient,
}

impl WinnerMetric {
    /// Whether the metric is a share of recipients (opened, clicked, converted), as
    /// opposed to an amount per recipient (revenue).
    pub fn is_proportion(self) -> bool {
        !matches!(self, WinnerMetric::RevenuePerRecipient)
    }

    /// The fewest recipients with which an arm carries evidence: 1 for a proportion,
    /// 2 for revenue (a sample variance needs two values).
    pub fn min_recipients(self) -> u64 {
        if self.is_proportion() { 1 } else { 2 }
    }
}

/// One variant's (or the holdout's) outcome. For a proportion metric `successes` is
/// the number of recipients who did the metric's action (opened, clicked, converted);
/// for revenue per recipient, `revenue` is the sum of the recipients' revenue and
/// `revenue_sq` the sum of its squares (each recipient's total, 0 for those who bought
/// nothing). The fields the metric does not use may be left 0.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Arm {
    pub recipients: u64,
    pub successes: u64,
    pub revenue: f64,
    pub revenue_sq: f64,
}

impl Arm {
    /// An arm of a proportion metric.
    pub fn proportion(recipients: u64, successes: u64) -> Arm {
        Arm {
            recipients,
            successes,
            ..Arm::default()
        }
    }

    /// An arm of revenue per recipient from its sums.
    pub fn revenue(recipients: u64, revenue: f64, revenue_sq: f64) -> Arm {
        Arm {
            recipients,
            revenue,
            revenue_sq,
            ..Arm::default()
        }
    }

    /// An arm of revenue per recipient from each recipient's revenue.
    pub fn from_revenues(values: impl IntoIterator<Item = f64>) -> Arm {
        values.into_iter().fold(Arm::default(), |arm, v| Arm {
            recipients: arm.recipients + 1,
            revenue: arm.revenue + v,
            revenue_sq: arm.revenue_sq + v * v,
            ..arm
        })
    }

    fn validate(&self, group: Group) -> Result<(), StatsError> {
        if self.successes > self.recipients {
            return Err(StatsError::SuccessesExceedRecipients {
                group,
                successes: self.successes,
                recipients: self.recipients,
            });
        }
        let (n, r, q) = (self.recipients as f64, self.revenue, self.revenue_sq);
        let consistent = if self.recipients == 0 {
            r == 0.0 && q == 0.0
        } else {
            // Cauchy–Schwarz: Q ≥ R²/n, up to rounding.
            q - r * r / n >= -1e-9 * q
        };
        if !r.is_finite() || !q.is_finite() || q < 0.0 || !consistent {
            return Err(StatsError::InvalidRevenue { group });
        }
        Ok(())
    }
}

/// When an A/B test has a winner.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rule {
    /// The arm most likely to be best wins once that probability reaches `threshold`
    /// (above 0.5, at most 1).
    ProbabilityToBeBest {
        #[serde(default = "Rule::default_threshold")]
        threshold: f64,
    },
    /// Each variant is tested against the control (two-proportion z-test, or Welch's
    /// t-test for revenue) at level `alpha` (between 0 and 1), Bonferroni-corrected
    /// for the number of comparisons.
    SignificanceTest {
        #[serde(default = "Rule::default_alpha")]
        alpha: f64,
    },
}

impl Default for Rule {
    fn default() -> Self {
        Rule::ProbabilityToBeBest {
            threshold: Rule::default_threshold(),
        }
    }
}

impl Rule {
    fn default_threshold() -> f64 {
        0.95
    }

    fn default_alpha() -> f64 {
        0.05
    }

    /// Whether the rule's parameter is in range (campaign validation calls this when
    /// a test is configured; [`decide`] calls it too).
    pub fn validate(&self) -> Result<(), StatsError> {
        match *self {
            Rule::ProbabilityToBeBest { threshold } if !(threshold > 0.5 && threshold <= 1.0) => {
                Err(StatsError::InvalidThreshold(threshold))
            }
            Rule::SignificanceTest { alpha } if !(alpha > 0.0 && alpha < 1.0) => Err(StatsError::InvalidAlpha(alpha)),
            _ => Ok(()),
        }
    }
}

/// Who wins when the rule finds no winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// The control (variant 0).
    #[default]
    Control,
    /// The arm with the best observed rate among those with data (the lower index on
    /// a tie; the control when no arm has data).
    BestObserved,
}

/// Why the rule found no winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoWinner {
    /// The arms were compared and no difference was significant.
    NotSignificant,
    /// Too few arms had data to compare (fewer than two, or for the significance
    /// test no control data or no variant data).
    NotEnoughData,
}

/// What chose the winner.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum DecidedBy {
    /// The rule found a winner.
    Rule { rule: Rule },
    /// The rule found none; the configured fallback chose.
    Fallback { fallback: Fallback, reason: NoWinner },
}

/// An arm's lift over the holdout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lift {
    /// rate − holdout rate.
    pub absolute: f64,
    /// (rate − holdout rate) / holdout rate; `None` when the holdout's rate is not
    /// above 0.
    pub relative: Option<f64>,
}

/// One variant's figures in the report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmStats {
    pub recipients: u64,
    /// The observed rate (a share of recipients, or revenue per recipient).
    pub rate: f64,
    /// The 95 % interval around `rate`; it always contains `rate`.
    pub ci_low: f64,
    pub ci_high: f64,
    /// In [0, 1]; the arms' probabilities sum to 1.
    pub probability_to_be_best: f64,
    /// Two-sided p-value against the control; `None` for the control itself and when
    /// either side has no data.
    pub p_value_vs_control: Option<f64>,
    /// `None` without a holdout, or when either side has no recipients.
    pub lift_vs_holdout: Option<Lift>,
}

/// The holdout's figures in the report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HoldoutStats {
    pub recipients: u64,
    pub rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// The outcome of an A/B test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Index of the winning variant (0 is the control).
    pub winner: usize,
    pub decided_by: DecidedBy,
    /// Under the significance test, the level each p-value was compared with (α/m,
    /// m the number of comparisons); `None` under the other rule or without
    /// comparisons.
    pub significance_level: Option<f64>,
    /// One per variant, in the order given.
    pub arms: Vec<ArmStats>,
    pub holdout: Option<HoldoutStats>,
}

/// Which group of a test an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Variant(usize),
    Holdout,
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Group::Variant(0) => f.write_str("variant 0 (the control)"),
            Group::Variant(i) => write!(f, "variant {i}"),
            Group::Holdout => f.write_str("the holdout"),
        }
    }
}

/// Input [`decide`] refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("an A/B test needs at least two variants, got {0}")]
    TooFewArms(usize),
    #[error("{group}: {successes} successes out of {recipients} recipients")]
    SuccessesExceedRecipients {
        group: Group,
        successes: u64,
        recipients: u64,
    },
    #[error(
        "{group}: revenue and its sum of squares must be finite, the sum of squares at least (sum)²/recipients, \
         and both 0 without recipients"
    )]
    InvalidRevenue { group: Group },
    #[error("the probability threshold must be above 0.5 and at most 1, got {0}")]
    InvalidThreshold(f64),
    #[error("the significance level must be between 0 and 1, got {0}")]
    InvalidAlpha(f64),
}

/// Chooses the winner of an A/B test and computes the report's figures (see the
/// module documentation for every formula). `arms[0]` is the control.
pub fn decide(
    metric: WinnerMetric,
    rule: Rule,
    fallback: Fallback,
    arms: &[Arm],
    holdout: Option<&Arm>,
) -> Result<Decision, StatsError> {
    rule.validate()?;
    if arms.len() < 2 {
        return Err(StatsError::TooFewArms(arms.len()));
    }
    for (i, arm) in arms.iter().enumerate() {
        arm.validate(Group::Variant(i))?;
    }
    if let Some(h) = holdout {
        h.validate(Group::Holdout)?;
    }

    let k = arms.len();
    let summaries: Vec<Summary> = arms.iter().map(|a| Summary::of(metric, a)).collect();
    let with_data: Vec<usize> = (0..k).filter(|&i| summaries[i].evidence).collect();

    let mut probabilities = vec![1.0 / k as f64; k];
    if with_data.len() >= 2 {
        let posteriors: Vec<Posterior> = with_data.iter().map(|&i| summaries[i].posterior).collect();
        probabilities = vec![0.0; k];
        for (&i, p) in with_data.iter().zip(best::probability_to_be_best(&posteriors)) {
            probabilities[i] = p;
        }
    }
    let control = &summaries[0];
    let p_values: Vec<Option<f64>> = std::iter::once(None)
        .chain(summaries[1..].iter().map(|s| p_value(control, s)))
        .collect();
    let holdout = holdout.map(|h| Summary::of(metric, h));

    let comparisons = p_values.iter().flatten().count();
    let significance_level = match rule {
        Rule::SignificanceTest { alpha } if comparisons > 0 => Some(alpha / comparisons as f64),
        _ => None,
    };
    let verdict = match rule {
        Rule::ProbabilityToBeBest { threshold } => by_probability(threshold, &with_data, &probabilities),
        Rule::SignificanceTest { .. } => match significance_level {
            Some(level) => by_significance(level, &summaries, &p_values),
            None => Err(NoWinner::NotEnoughData),
        },
    };
    let (winner, decided_by) = match verdict {
        Ok(winner) => (winner, DecidedBy::Rule { rule }),
        Err(reason) => {
            let winner = match fallback {
                Fallback::Control => 0,
                Fallback::BestObserved => first_max(with_data.iter().map(|&i| (i, summaries[i].rate))).unwrap_or(0),
            };
            (winner, DecidedBy::Fallback { fallback, reason })
        }
    };

    let arms = summaries
        .iter()
        .enumerate()
        .map(|(i, s)| ArmStats {
            recipients: s.recipients,
            rate: s.rate,
            ci_low: s.ci.0,
            ci_high: s.ci.1,
            probability_to_be_best: probabilities[i],
            p_value_vs_control: p_values[i],
            lift_vs_holdout: holdout.as_ref().and_then(|h| lift(s, h)),
        })
        .collect();
    let holdout = holdout.map(|h| HoldoutStats {
        recipients: h.recipients,
        rate: h.rate,
        ci_low: h.ci.0,
        ci_high: h.ci.1,
    });
    Ok(Decision {
        winner,
        decided_by,
        significance_level,
        arms,
        holdout,
    })
}

/// The index of the first largest value.
fn first_max(values: impl Iterator<Item = (usize, f64)>) -> Option<usize> {
    values
        .fold(None, |best: Option<(usize, f64)>, (i, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        })
        .map(|(i, _)| i)
}

fn by_probability(threshold: f64, with_data: &[usize], probabilities: &[f64]) -> Result<usize, NoWinner> {
    if with_data.len() < 2 {
        return Err(NoWinner::NotEnoughData);
    }
    let best = first_max(with_data.iter().map(|&i| (i, probabilities[i]))).unwrap_or(0);
    if probabilities[best] >= threshold {
        Ok(best)
    } else {
        Err(NoWinner::NotSignificant)
    }
}

fn by_significance(level: f64, summaries: &[Summary], p_values: &[Option<f64>]) -> Result<usize, NoWinner> {
    let control = summaries[0].rate;
    let compared: Vec<(usize, f64)> = p_values
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    let better = compared
        .iter()
        .filter(|&&(i, p)| p <= level && summaries[i].rate > control);
    if let Some(winner) = first_max(better.map(|&(i, _)| (i, summaries[i].rate))) {
        return Ok(winner);
    }
    if !compared.is_empty() && compared.iter().all(|&(i, p)| p <= level && summaries[i].rate < control) {
        return Ok(0);
    }
    Err(NoWinner::NotSignificant)
}

/// One arm's figures under the metric.
struct Summary {
    recipients: u64,
    /// Successes (proportions).
    successes: u64,
    rate: f64,
    /// Sample variance of the recipients' revenue (revenue; 0 below two recipients).
    variance: f64,
    ci: (f64, f64),
    evidence: bool,
    posterior: Posterior,
    proportion: bool,
}

impl Summary {
    fn of(metric: WinnerMetric, arm: &Arm) -> Summary {
        let n = arm.recipients as f64;
        let evidence = arm.recipients >= metric.min_recipients();
        if metric.is_proportion() {
            let s = arm.successes as f64;
            let rate = if arm.recipients == 0 { 0.0 } else { s / n };
            return Summary {
                recipients: arm.recipients,
                successes: arm.successes,
                rate,
                variance: 0.0,
                ci: wilson(arm.successes, arm.recipients),
                evidence,
                posterior: Posterior::Beta {
                    a: 1.0 + s,
                    b: 1.0 + (n - s),
                },
                proportion: true,
            };
        }
        let mean = if arm.recipients == 0 { 0.0 } else { arm.revenue / n };
        let variance = if arm.recipients < 2 {
            0.0
        } else {
            let deviations = arm.revenue_sq - arm.revenue * arm.revenue / n;
            if deviations <= 1e-12 * arm.revenue_sq {
                0.0
            } else {
                deviations / (n - 1.0)
            }
        };
        let se = if arm.recipients == 0 {
            0.0
        } else {
            (variance / n).sqrt()
        };
        Summary {
            recipients: arm.recipients,
            successes: arm.successes,
            rate: mean,
            variance,
            ci: (mean - Z_95 * se, mean + Z_95 * se),
            evidence,
            posterior: if se > 0.0 {
                Posterior::Normal { mean, sd: se }
            } else {
                Posterior::Point(mean)
            },
            proportion: false,
        }
    }
}

/// Wilson's score interval at 95 %, clamped to [0, 1] and around the rate; [0, 0]
/// without recipients.
fn wilson(successes: u64, recipients: u64) -> (f64, f64) {
    if recipients == 0 {
        return (0.0, 0.0);
    }
    let (s, n) = (successes as f64, recipients as f64);
    let p = s / n;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).clamp(0.0, p), (centre + half).clamp(p, 1.0))
}

/// The two-sided p-value of `variant` against `control`, or `None` when either has
/// no evidence.
fn p_value(control: &Summary, variant: &Summary) -> Option<f64> {
    if !control.evidence || !variant.evidence {
        return None;
    }
    let (n0, n1) = (control.recipients as f64, variant.recipients as f64);
    if control.proportion {
        let pooled = (control.successes + variant.successes) as f64 / (n0 + n1);
        let variance = pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / n1);
        if variance <= 0.0 {
            return Some(1.0); // both 0 % or both 100 %
        }
        return Some(special::normal_two_sided(
            (variant.rate - control.rate) / variance.sqrt(),
        ));
    }
    let (w0, w1) = (control.variance / n0, variant.variance / n1);
    let se2 = w0 + w1;
    if se2 <= 0.0 {
        return Some(if variant.rate == control.rate { 1.0 } else { 0.0 });
    }
    let t = (variant.rate - control.rate) / se2.sqrt();
    let df = se2 * se2 / (w0 * w0 / (n0 - 1.0) + w1 * w1 / (n1 - 1.0));
    Some(special::student_t_two_sided(t, df))
}

/// An arm's lift over the holdout in `metric` (see "Lift over the holdout" above),
/// whatever the test's metric: the report shows it for conversion rate and revenue
/// per recipient, the figures the holdout has.
pub fn lift_over_holdout(metric: WinnerMetric, arm: &Arm, holdout: &Arm) -> Option<Lift> {
    lift(&Summary::of(metric, arm), &Summary::of(metric, holdout))
}

fn lift(arm: &Summary, holdout: &Summary) -> Option<Lift> {
    if arm.recipients == 0 || holdout.recipients == 0 {
        return None;
    }
    let absolute = arm.rate - holdout.rate;
    let relative = (holdout.rate > 0.0).then(|| absolute / holdout.rate);
    Some(Lift { absolute, relative })
}
