//! The probability that each arm is the best, by deterministic numerical integration:
//! P(i best) = ∫ fᵢ(x) Π_{j≠i} Fⱼ(x) dx over the arms' posteriors (f the density, F
//! the cdf), all arms at once on shared nodes.
//!
//! Quadrature: adaptive Gauss–Kronrod (7-point Gauss inside 15-point Kronrod), on
//! segments first cut at every posterior's centre ± 1, 2, 3, 4, 6, 8, 11, 15, 20, 28
//! and 40 standard deviations, so that no arm's peak, however narrow beside the
//! others, falls between nodes. A segment is halved until the Gauss and Kronrod sums
//! of every arm agree within [`SEGMENT_TOLERANCE`]. Beyond 40 standard deviations a
//! posterior is taken as having no mass (the heaviest tail here, Beta(1, n) of an arm
//! with no successes, leaves less than e⁻⁴⁰ there).

use super::special::{beta_cdf, beta_pdf, normal_cdf, normal_pdf};

/// A posterior (or sampling) distribution of one arm's metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Posterior {
    /// Beta(a, b) with a, b ≥ 1, the posterior of a proportion under a uniform prior.
    Beta { a: f64, b: f64 },
    /// Normal(mean, sd) with sd > 0.
    Normal { mean: f64, sd: f64 },
    /// All mass at one value (a mean whose standard error is zero).
    Point(f64),
}

/// How far from its centre, in standard deviations, a posterior is integrated.
const REACH: f64 = 40.0;
/// Where segments are cut, in standard deviations from each posterior's centre.
const CUTS: [f64; 11] = [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 15.0, 20.0, 28.0, REACH];
/// Largest accepted |Kronrod − Gauss| of any arm on one segment.
const SEGMENT_TOLERANCE: f64 = 1e-13;
/// Deepest halving of one initial segment.
const MAX_DEPTH: u32 = 30;
/// Most segments integrated in one computation; a bound on the work, not reached in
/// practice.
const MAX_SEGMENTS: usize = 50_000;

impl Posterior {
    fn centre(&self) -> f64 {
        match *self {
            Posterior::Beta { a, b } => a / (a + b),
            Posterior::Normal { mean, .. } => mean,
            Posterior::Point(x) => x,
        }
    }

    fn spread(&self) -> f64 {
        match *self {
            Posterior::Beta { a, b } => {
                let s = a + b;
                (a * b / (s * s * (s + 1.0))).sqrt()
            }
            Posterior::Normal { sd, .. } => sd,
            Posterior::Point(_) => 0.0,
        }
    }

    /// Where the posterior is integrated: centre ± 40 sd, within its support.
    fn range(&self) -> (f64, f64) {
        let (c, s) = (self.centre(), self.spread());
        let (lo, hi) = (c - REACH * s, c + REACH * s);
        match self {
            Posterior::Beta { .. } => (lo.max(0.0), hi.min(1.0)),
            _ => (lo, hi),
        }
    }

    fn pdf(&self, x: f64) -> f64 {
        match *self {
            Posterior::Beta { a, b } => beta_pdf(a, b, x),
            Posterior::Normal { mean, sd } => normal_pdf((x - mean) / sd) / sd,
            Posterior::Point(_) => 0.0,
        }
    }

    fn cdf(&self, x: f64) -> f64 {
        match *self {
            Posterior::Beta { a, b } => beta_cdf(a, b, x),
            Posterior::Normal { mean, sd } => normal_cdf((x - mean) / sd),
            Posterior::Point(p) => {
                if x >= p {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// P(arm i has the largest value) for each arm, summing to 1. Ties between point
/// masses at the top split their share evenly. Before the final normalisation the
/// quadrature's sum is 1 within about 1e-10 (checked by the tests); the normalisation
/// only removes that residue.
pub fn probability_to_be_best(arms: &[Posterior]) -> Vec<f64> {
    let raw = unnormalised(arms);
    let total: f64 = raw.iter().sum();
    if total > 0.0 && total.is_finite() {
        raw.iter().map(|p| p / total).collect()
    } else {
        vec![1.0 / arms.len() as f64; arms.len()]
    }
}

/// The integrals themselves, not normalised (for the tests' check of their sum).
pub fn unnormalised(arms: &[Posterior]) -> Vec<f64> {
    let k = arms.len();
    let mut result = vec![0.0; k];
    if k == 0 {
        return result;
    }
    if k == 1 {
        result[0] = 1.0;
        return result;
    }
    let top_point = arms
        .iter()
        .filter_map(|p| match p {
            Posterior::Point(x) => Some(*x),
            _ => None,
        })
        .reduce(f64::max);
    let continuous: Vec<usize> = (0..k).filter(|&i| !matches!(arms[i], Posterior::Point(_))).collect();

    // A point mass at the top is best when every continuous arm lies below it.
    if let Some(top) = top_point {
        let at_top: Vec<usize> = (0..k).filter(|&i| arms[i] == Posterior::Point(top)).collect();
        let below: f64 = continuous.iter().map(|&j| arms[j].cdf(top)).product();
        for &i in &at_top {
            result[i] = below / at_top.len() as f64;
        }
    }
    if continuous.is_empty() {
        return result;
    }

    // The continuous arms compete above the top point mass (point masses below it
    // have cdf 1 there, so they drop out of the integrand).
    let posteriors: Vec<Posterior> = continuous.iter().map(|&i| arms[i]).collect();
    let ranges: Vec<(f64, f64)> = posteriors.iter().map(Posterior::range).collect();
    let mut lo = ranges.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    let hi = ranges.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
    if let Some(top) = top_point {
        lo = lo.max(top);
    }
    if lo >= hi {
        return result;
    }
    let mut cuts = vec![lo, hi];
    for p in &posteriors {
        let (c, s) = (p.centre(), p.spread());
        cuts.push(c);
        for z in CUTS {
            cuts.push(c - z * s);
            cuts.push(c + z * s);
        }
    }
    cuts.retain(|&x| (lo..=hi).contains(&x));
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();

    let integrand = Integrand {
        posteriors: &posteriors,
        ranges: &ranges,
    };
    let mut sums = vec![0.0; posteriors.len()];
    let mut budget = MAX_SEGMENTS;
    for pair in cuts.windows(2) {
        integrand.adaptive(pair[0], pair[1], 0, &mut sums, &mut budget);
    }
    for (slot, &i) in continuous.iter().enumerate() {
        result[i] = sums[slot];
    }
    result
}

struct Integrand<'a> {
    posteriors: &'a [Posterior],
    ranges: &'a [(f64, f64)],
}

/// Gauss–Kronrod 15-point nodes on [−1, 1] (non-negative half, descending) and
/// weights; the odd-indexed nodes are the 7-point Gauss nodes.
pub(super) const KRONROD_NODES: [f64; 8] = [
    0.991_455_371_120_812_6,
    0.949_107_912_342_758_5,
    0.864_864_423_359_769_1,
    0.741_531_185_599_394_4,
    0.586_087_235_467_691_1,
    0.405_845_151_377_397_2,
    0.207_784_955_007_898_5,
    0.0,
];
pub(super) const KRONROD_WEIGHTS: [f64; 8] = [
    0.022_935_322_010_529_22,
    0.063_092_092_629_978_55,
    0.104_790_010_322_250_2,
    0.140_653_259_715_525_9,
    0.169_004_726_639_267_9,
    0.190_350_578_064_785_4,
    0.204_432_940_075_298_9,
    0.209_482_141_084_727_8,
];
/// Weights of the 7-point Gauss rule at KRONROD_NODES[1], [3], [5], [7].
pub(super) const GAUSS_WEIGHTS: [f64; 4] = [
    0.129_484_966_168_869_7,
    0.279_705_391_489_276_7,
    0.381_830_050_505_118_9,
    0.417_959_183_673_469_4,
];

impl Integrand<'_> {
    /// Sets `f_of` to the density and `cdf_of` to the cdf of every arm at x; outside
    /// an arm's range the density is 0 and the cdf 0 or 1, without computing them.
    fn evaluate(&self, x: f64, f_of: &mut [f64], cdf_of: &mut [f64]) {
        for (j, p) in self.posteriors.iter().enumerate() {
            let (lo, hi) = self.ranges[j];
            (f_of[j], cdf_of[j]) = if x < lo {
                (0.0, 0.0)
            } else if x > hi {
                (0.0, 1.0)
            } else {
                (p.pdf(x), p.cdf(x))
            };
        }
    }

    /// fᵢ(x) Π_{j≠i} Fⱼ(x) for every i, by prefix and suffix products (`f_of` and
    /// `cdf_of` are scratch space).
    fn values(&self, x: f64, out: &mut [f64], f_of: &mut [f64], cdf_of: &mut [f64]) {
        let k = self.posteriors.len();
        self.evaluate(x, f_of, cdf_of);
        let mut prefix = 1.0;
        for i in 0..k {
            out[i] = prefix;
            prefix *= cdf_of[i];
        }
        let mut suffix = 1.0;
        for i in (0..k).rev() {
            out[i] *= suffix * f_of[i];
            suffix *= cdf_of[i];
        }
    }

    /// The Kronrod and Gauss estimates of every arm's integral over [a, b].
    fn rule(&self, a: f64, b: f64) -> (Vec<f64>, Vec<f64>) {
        let k = self.posteriors.len();
        let (mid, half) = ((a + b) / 2.0, (b - a) / 2.0);
        let mut kronrod = vec![0.0; k];
        let mut gauss = vec![0.0; k];
        let (mut at, mut f_of, mut cdf_of) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
        for (n, &node) in KRONROD_NODES.iter().enumerate() {
            let xs: &[f64] = if node == 0.0 {
                &[mid]
            } else {
                &[mid - half * node, mid + half * node]
            };
            for &x in xs {
                self.values(x, &mut at, &mut f_of, &mut cdf_of);
                for i in 0..k {
                    kronrod[i] += KRONROD_WEIGHTS[n] * at[i];
                    if n % 2 == 1 {
                        gauss[i] += GAUSS_WEIGHTS[n / 2] * at[i];
                    }
                }
            }
        }
        for i in 0..k {
            kronrod[i] *= half;
            gauss[i] *= half;
        }
        (kronrod, gauss)
    }

    fn adaptive(&self, a: f64, b: f64, depth: u32, sums: &mut [f64], budget: &mut usize) {
        if b <= a {
            return;
        }
        *budget = budget.saturating_sub(1);
        let (kronrod, gauss) = self.rule(a, b);
        let error = kronrod
            .iter()
            .zip(&gauss)
            .map(|(k, g)| (k - g).abs())
            .fold(0.0, f64::max);
        let mid = (a + b) / 2.0;
        let splittable = depth < MAX_DEPTH && *budget > 0 && a < mid && mid < b;
        if error <= SEGMENT_TOLERANCE || !splittable {
            for (sum, k) in sums.iter_mut().zip(&kronrod) {
                *sum += k;
            }
            return;
        }
        self.adaptive(a, mid, depth + 1, sums, budget);
        self.adaptive(mid, b, depth + 1, sums, budget);
    }
}
