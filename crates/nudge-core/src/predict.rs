//! Customer lifetime value and churn risk: the BG/NBD model of repeat purchases
//! (Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing
//! Science 24(2)) and the Gamma-Gamma model of order value (Fader, Hardie & Lee 2005,
//! "RFM and CLV: using iso-value curves for customer base analysis", and Fader &
//! Hardie's note "The Gamma-Gamma model of monetary value", 2013).
//!
//! Only the likelihoods and the per-customer formulas are written here; the
//! maximisation is `argmin`'s Nelder-Mead on the logarithms of the parameters (so
//! every parameter stays positive), restarted from its own optimum until it stops
//! improving. The formulas are those of the `lifetimes` Python package, against which
//! `predict/tests.rs` checks them on the CDNOW sample (the fixture and the script that
//! made it are in `tests/fixtures/cdnow/` and `scripts/clv-reference.py`).
//! A fit evaluates the likelihood of all customers thousands of times, so it does so
//! on [`BgNbdData`] and [`GammaGammaData`]: equal summaries counted once with a
//! weight, the ln Γ terms computed once per distinct frequency (tests check the totals
//! against the per-customer formulas).
//!
//! A customer is summarised as in the paper: `frequency` x is the number of repeat
//! purchases (purchase days after the first), `recency` t_x the time from the first
//! purchase to the last, `age` T the time from the first purchase to the end of the
//! calibration period, all in the model's [`Unit`]; `monetary` is the mean value of the
//! repeat purchases (the first purchase is left out, as Fader & Hardie do).
//!
//! What a contact gets ([`Prediction`]), as of the end of calibration:
//! - `p_alive`: P(still active | x, t_x, T); 1 for a customer without a repeat purchase
//!   (in BG/NBD a customer can only drop out just after a purchase);
//! - `churn_risk` = 1 − `p_alive`, and its [`ChurnBand`]: `high` when P(alive) < 0.3,
//!   `medium` when below 0.7, `low` otherwise;
//! - expected purchases in the next 30, 90 and 365 days (the conditional expectation
//!   E[Y(t) | x, t_x, T], eq. 10 of the paper);
//! - `expected_order_value`: the Gamma-Gamma conditional expectation of the mean order
//!   value, E[Z | x, z̄] = (p (γ + x z̄)) / (p x + q − 1), the population mean
//!   p γ / (q − 1) for a customer without repeat purchases; none when q ≤ 1 (the
//!   mean is then infinite) or when there was no repeat customer to fit;
//! - `clv_12m`: expected purchases in the next 365 days × expected order value,
//!   undiscounted (a year's cash flows; discounting at 10 % a year would change it by
//!   under 5 %, less than the models' own error);
//! - `next_order_at`: the moment the expected number of purchases from the end of
//!   calibration reaches 1, found by bisection on the monotone E[Y(t) | …]; none when
//!   it does not within 5 years.

mod hyp2f1;
#[cfg(test)]
mod tests;

use crate::Millis;
use crate::campaign::stats::special::ln_gamma;
use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The event whose occurrences are purchases.
pub const PURCHASE_EVENT: &str = crate::protocol::event_names::ORDER_COMPLETED;

/// Milliseconds in a day.
const DAY: Millis = 86_400_000;
/// The horizon beyond which no next order date is predicted.
const NEXT_ORDER_HORIZON_DAYS: f64 = 5.0 * 365.0;
/// How precisely the next order date is found: ten minutes (a date shown to the
/// minute would claim more than the model knows; 18 bisection steps rather than 60).
const NEXT_ORDER_RESOLUTION_DAYS: f64 = 10.0 / (24.0 * 60.0);
/// P(alive) below which the churn risk is high.
pub const HIGH_RISK_BELOW: f64 = 0.3;
/// P(alive) below which the churn risk is medium (at or above: low).
pub const MEDIUM_RISK_BELOW: f64 = 0.7;

/// The time unit frequencies and ages are counted in. The fitted parameters depend
/// on it (α and γ scale with it); the predictions do not, beyond rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Days,
    Weeks,
}

impl Unit {
    pub fn millis(self) -> Millis {
        match self {
            Unit::Days => DAY,
            Unit::Weeks => 7 * DAY,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Days => "days",
            Unit::Weeks => "weeks",
        }
    }

    pub fn parse(s: &str) -> Option<Unit> {
        match s {
            "days" => Some(Unit::Days),
            "weeks" => Some(Unit::Weeks),
            _ => None,
        }
    }

    /// A duration in this unit.
    pub fn of(self, millis: Millis) -> f64 {
        millis as f64 / self.millis() as f64
    }

    fn days(self) -> f64 {
        self.millis() as f64 / DAY as f64
    }
}

/// One customer as the models see them (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Repeat purchases: purchase days after the first.
    pub frequency: u32,
    /// Time from the first purchase to the last, in the unit.
    pub recency: f64,
    /// Time from the first purchase to the end of calibration (T), in the unit.
    pub age: f64,
    /// Mean value of the repeat purchases (0 without any).
    pub monetary: f64,
}

/// One purchase: when, and its value (the `revenue`, `total` or `value` property).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Purchase {
    pub at: Millis,
    pub value: f64,
}

/// Summarises a customer's purchases up to `until` (later ones are left out). Purchases
/// on one UTC day count as one, of their summed value, as `lifetimes`'
/// `summary_data_from_transaction_data` does. None without a purchase by `until`.
pub fn summarise(purchases: &[Purchase], until: Millis, unit: Unit) -> Option<Customer> {
    let mut days: Vec<(i64, f64)> = Vec::new();
    let mut sorted: Vec<Purchase> = purchases.iter().copied().filter(|p| p.at <= until).collect();
    sorted.sort_by_key(|p| p.at);
    for p in &sorted {
        let day = p.at.div_euclid(DAY);
        match days.last_mut() {
            Some((d, v)) if *d == day => *v += p.value,
            _ => days.push((day, p.value)),
        }
    }
    let (first, _) = *days.first()?;
    let (last, _) = *days.last()?;
    let repeat = &days[1..];
    let monetary = if repeat.is_empty() {
        0.0
    } else {
        repeat.iter().map(|(_, v)| v).sum::<f64>() / repeat.len() as f64
    };
    // The paper's (and `lifetimes`') times are whole days: the day of the first
    // purchase to the day of the last, and to the day calibration ends.
    let end = until.div_euclid(DAY);
    Some(Customer {
        frequency: repeat.len() as u32,
        recency: (last - first) as f64 / unit.days(),
        age: (end - first) as f64 / unit.days(),
        monetary,
    })
}

/// BG/NBD's parameters: purchase rates are Gamma(r, α) across customers, the dropout
/// probability after each purchase Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// ln(e^x + e^y) without overflow.
fn log_add_exp(x: f64, y: f64) -> f64 {
    let m = x.max(y);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((x - m).exp() + (y - m).exp()).ln()
}

impl BgNbd {
    /// One customer's log-likelihood (eq. 6 of the paper, in logs).
    pub fn log_likelihood(&self, c: &Customer) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = f64::from(c.frequency);
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
        let a3 = -(r + x) * (alpha + c.age).ln();
        let a4 = if c.frequency > 0 {
            a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.recency).ln()
        } else {
            f64::NEG_INFINITY
        };
        a1 + a2 + log_add_exp(a3, a4)
    }

    /// P(alive | x, t_x, T) (eq. A10 of Fader, Hardie & Lee's note "Computing
    /// P(alive) using the BG/NBD model").
    pub fn p_alive(&self, c: &Customer) -> f64 {
        if c.frequency == 0 {
            return 1.0;
        }
        let x = f64::from(c.frequency);
        let ln_odds =
            (self.r + x) * ((self.alpha + c.age) / (self.alpha + c.recency)).ln() + (self.a / (self.b + x - 1.0)).ln();
        1.0 / (1.0 + ln_odds.exp())
    }

    /// E[Y(t) | x, t_x, T]: expected purchases in the next `t` units (eq. 10).
    pub fn expected_purchases(&self, c: &Customer, t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let x = f64::from(c.frequency);
        let z = t / (alpha + c.age + t);
        let ln_hyp = hyp2f1::ln_hyp2f1(r + x, b + x, a + b + x - 1.0, z);
        let first = (a + b + x - 1.0) / (a - 1.0);
        let second = 1.0 - (ln_hyp + (r + x) * ((alpha + c.age) / (alpha + c.age + t)).ln()).exp();
        let denominator = if c.frequency > 0 {
            1.0 + (a / (b + x - 1.0)) * ((alpha + c.age) / (alpha + c.recency)).powf(r + x)
        } else {
            1.0
        };
        first * second / denominator
    }

    /// The time (in units) at which the expected purchases from now reach `n`, by
    /// bisection to within `resolution` units; none within `horizon` units.
    pub fn time_to_purchases(&self, c: &Customer, n: f64, horizon: f64, resolution: f64) -> Option<f64> {
        let at_horizon = self.expected_purchases(c, horizon);
        if at_horizon.is_nan() || at_horizon < n {
            return None;
        }
        let (mut lo, mut hi) = (0.0, horizon);
        // Each step halves the bracket; at most 60 (a resolution of 0 or NaN).
        for _ in 0..60 {
            if hi - lo <= resolution {
                break;
            }
            let mid = 0.5 * (lo + hi);
            if self.expected_purchases(c, mid) >= n {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }
}

/// Gamma-Gamma's parameters: a customer's transactions are Gamma(p, ν), ν across
/// customers Gamma(q, γ).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

impl GammaGamma {
    /// One repeat customer's log-likelihood of their mean order value (x > 0, z̄ > 0).
    pub fn log_likelihood(&self, c: &Customer) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let x = f64::from(c.frequency);
        let m = c.monetary;
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q) + q * gamma.ln() + (p * x - 1.0) * m.ln() + (p * x) * x.ln()
            - (p * x + q) * (x * m + gamma).ln()
    }

    /// E[Z | x, z̄], the expected mean order value; none when q ≤ 1.
    pub fn expected_order_value(&self, c: &Customer) -> Option<f64> {
        let GammaGamma { p, q, gamma } = *self;
        if q <= 1.0 {
            return None;
        }
        let x = f64::from(c.frequency);
        let m = if c.frequency > 0 { c.monetary } else { 0.0 };
        Some(p * (gamma + x * m) / (p * x + q - 1.0))
    }

    /// Whether a customer takes part in the Gamma-Gamma fit: a repeat customer with
    /// a positive mean.
    pub fn fits(c: &Customer) -> bool {
        c.frequency > 0 && c.monetary > 0.0 && c.monetary.is_finite()
    }
}

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    /// Too few customers (at least [`MIN_CUSTOMERS`] with a purchase, some with a
    /// repeat purchase) to fit anything.
    TooFewCustomers { customers: usize, repeat: usize },
    /// The optimiser failed or found no finite likelihood.
    Optimiser(String),
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::TooFewCustomers { customers, repeat } => write!(
                f,
                "too few customers to fit: {customers} with a purchase ({repeat} with a repeat purchase); \
                 at least {MIN_CUSTOMERS}, {MIN_REPEAT} of them repeat customers, are needed"
            ),
            FitError::Optimiser(e) => write!(f, "the optimiser failed: {e}"),
        }
    }
}

impl std::error::Error for FitError {}

/// Fewest customers a fit is tried with.
pub const MIN_CUSTOMERS: usize = 10;
/// Fewest repeat customers a fit is tried with.
pub const MIN_REPEAT: usize = 2;

/// Summaries keyed by frequency and the rest of what a likelihood reads, each
/// distinct one once with how many customers share it (its weight), and the distinct
/// frequencies (as numbers) the groups index.
fn grouped<K: Ord + Copy>(mut keys: Vec<(u32, K)>) -> (Vec<f64>, Vec<(usize, K, f64)>) {
    keys.sort_unstable();
    let mut frequencies: Vec<f64> = Vec::new();
    let mut groups: Vec<(usize, K, f64)> = Vec::new();
    let mut previous = None;
    for key in keys {
        if previous == Some(key) {
            if let Some(last) = groups.last_mut() {
                last.2 += 1.0;
            }
            continue;
        }
        let x = f64::from(key.0);
        if frequencies.last() != Some(&x) {
            frequencies.push(x);
        }
        groups.push((frequencies.len() - 1, key.1, 1.0));
        previous = Some(key);
    }
    (frequencies, groups)
}

/// The customers BG/NBD is fitted on, prepared once for the many evaluations of the
/// likelihood a fit makes: customers with the same (x, t_x, T) are counted once with
/// a weight, and the terms that depend only on the frequency are computed once per
/// distinct frequency per evaluation (a fit at a million customers evaluates the
/// likelihood thousands of times; per customer it would be six ln Γ each time).
#[derive(Debug, Clone)]
pub struct BgNbdData {
    /// The distinct frequencies.
    frequencies: Vec<f64>,
    /// (index into `frequencies`, t_x, T, how many customers).
    groups: Vec<(usize, f64, f64, f64)>,
    customers: usize,
}

impl BgNbdData {
    pub fn new(customers: &[Customer]) -> BgNbdData {
        let keys = customers
            .iter()
            .map(|c| (c.frequency, (c.recency.to_bits(), c.age.to_bits())))
            .collect();
        let (frequencies, groups) = grouped(keys);
        let groups = groups
            .into_iter()
            .map(|(f, (recency, age), weight)| (f, f64::from_bits(recency), f64::from_bits(age), weight))
            .collect();
        BgNbdData {
            frequencies,
            groups,
            customers: customers.len(),
        }
    }

    /// How many distinct (x, t_x, T) summaries there are.
    pub fn distinct(&self) -> usize {
        self.groups.len()
    }
}

/// The repeat customers Gamma-Gamma is fitted on ([`GammaGamma::fits`]), prepared
/// once as [`BgNbdData`] is: equal (x, z̄) counted once, and ln z̄ and x ln x computed
/// once rather than at every evaluation.
#[derive(Debug, Clone)]
pub struct GammaGammaData {
    frequencies: Vec<f64>,
    /// (index into `frequencies`, x z̄, ln z̄, how many customers).
    groups: Vec<(usize, f64, f64, f64)>,
    customers: usize,
}

impl GammaGammaData {
    pub fn new(customers: &[Customer]) -> GammaGammaData {
        let keys: Vec<(u32, u64)> = customers
            .iter()
            .filter(|c| GammaGamma::fits(c))
            .map(|c| (c.frequency, c.monetary.to_bits()))
            .collect();
        let n = keys.len();
        let (frequencies, groups) = grouped(keys);
        let groups = groups
            .into_iter()
            .map(|(f, m, weight)| {
                let m = f64::from_bits(m);
                (f, frequencies[f] * m, m.ln(), weight)
            })
            .collect();
        GammaGammaData {
            frequencies,
            groups,
            customers: n,
        }
    }

    /// How many repeat customers take part.
    pub fn customers(&self) -> usize {
        self.customers
    }
}

impl BgNbd {
    /// The total log-likelihood of the prepared customers: the sum of
    /// [`BgNbd::log_likelihood`] over them, computed by frequency and by summary.
    pub fn total_log_likelihood(&self, data: &BgNbdData) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let constant = -ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) - ln_gamma(b);
        let ln_a = a.ln();
        // Per distinct frequency: the ln Γ terms, and ln a − ln(b + x − 1) (x > 0).
        let by_frequency: Vec<(f64, f64)> = data
            .frequencies
            .iter()
            .map(|&x| {
                let gammas = ln_gamma(r + x) + ln_gamma(b + x) - ln_gamma(a + b + x);
                let dropout = if x > 0.0 {
                    ln_a - (b + x - 1.0).ln()
                } else {
                    f64::NEG_INFINITY
                };
                (gammas, dropout)
            })
            .collect();
        let mut sum = 0.0;
        for &(f, recency, age, weight) in &data.groups {
            let x = data.frequencies[f];
            let (gammas, dropout) = by_frequency[f];
            let a3 = -(r + x) * (alpha + age).ln();
            let a4 = if x > 0.0 {
                dropout - (r + x) * (alpha + recency).ln()
            } else {
                f64::NEG_INFINITY
            };
            sum += weight * (gammas + log_add_exp(a3, a4));
        }
        sum + data.customers as f64 * constant
    }
}

impl GammaGamma {
    /// The total log-likelihood of the prepared repeat customers: the sum of
    /// [`GammaGamma::log_likelihood`] over them.
    pub fn total_log_likelihood(&self, data: &GammaGammaData) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let constant = -ln_gamma(q) + q * gamma.ln();
        let by_frequency: Vec<f64> = data
            .frequencies
            .iter()
            .map(|&x| ln_gamma(p * x + q) - ln_gamma(p * x) + (p * x) * x.ln())
            .collect();
        let mut sum = 0.0;
        for &(f, x_m, ln_m, weight) in &data.groups {
            let px = p * data.frequencies[f];
            sum += weight * (by_frequency[f] + (px - 1.0) * ln_m - (px + q) * (x_m + gamma).ln());
        }
        sum + data.customers as f64 * constant
    }
}

/// A minimised negative mean log-likelihood over log-parameters.
struct Objective<F: Fn(&[f64]) -> f64> {
    /// The total log-likelihood at (positive) parameters.
    ll: F,
    customers: usize,
}

impl<F: Fn(&[f64]) -> f64> CostFunction for Objective<F> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, log_params: &Self::Param) -> Result<f64, argmin::core::Error> {
        let params: Vec<f64> = log_params.iter().map(|l| l.clamp(-30.0, 30.0).exp()).collect();
        let mean = -(self.ll)(&params) / self.customers as f64;
        Ok(if mean.is_finite() { mean } else { f64::INFINITY })
    }
}

/// Maximises a total log-likelihood of `customers` customers over positive
/// parameters from `start`; returns the parameters and the total log-likelihood.
fn maximise<F: Fn(&[f64]) -> f64>(customers: usize, start: &[f64], ll: F) -> Result<(Vec<f64>, f64), FitError> {
    let objective = Objective { ll, customers };
    let mut best: Vec<f64> = start.iter().map(|s| s.ln()).collect();
    let mut best_cost = objective.cost(&best).map_err(|e| FitError::Optimiser(e.to_string()))?;
    // Nelder-Mead may stop on a ridge short of the optimum; restarting it from what it
    // found with a fresh simplex is the usual cure. Stop when a restart no longer
    // improves the mean log-likelihood by more than 1e-12.
    for _ in 0..20 {
        let mut simplex = vec![best.clone()];
        for i in 0..best.len() {
            let mut vertex = best.clone();
            vertex[i] += 0.25;
            simplex.push(vertex);
        }
        let solver = NelderMead::new(simplex)
            .with_sd_tolerance(1e-13)
            .map_err(|e| FitError::Optimiser(e.to_string()))?;
        let objective = Objective {
            ll: &objective.ll,
            customers,
        };
        let result = Executor::new(objective, solver)
            .configure(|state| state.max_iters(4_000))
            .run()
            .map_err(|e| FitError::Optimiser(e.to_string()))?;
        let state = result.state();
        let cost = state.get_best_cost();
        let Some(param) = state.get_best_param().cloned() else {
            break;
        };
        let improved = best_cost - cost;
        if cost < best_cost {
            best = param;
            best_cost = cost;
        }
        if improved.is_nan() || improved <= 1e-12 {
            break;
        }
    }
    if !best_cost.is_finite() {
        return Err(FitError::Optimiser("no parameters with a finite likelihood".into()));
    }
    let params = best.iter().map(|l| l.exp()).collect();
    Ok((params, -best_cost * customers as f64))
}

/// Fits BG/NBD by maximum likelihood; returns the parameters and the log-likelihood.
pub fn fit_bgnbd(customers: &[Customer]) -> Result<(BgNbd, f64), FitError> {
    let repeat = customers.iter().filter(|c| c.frequency > 0).count();
    if customers.len() < MIN_CUSTOMERS || repeat < MIN_REPEAT {
        return Err(FitError::TooFewCustomers {
            customers: customers.len(),
            repeat,
        });
    }
    let model = |p: &[f64]| BgNbd {
        r: p[0],
        alpha: p[1],
        a: p[2],
        b: p[3],
    };
    let data = BgNbdData::new(customers);
    let (p, ll) = maximise(customers.len(), &[1.0, 1.0, 1.0, 1.0], |p| {
        model(p).total_log_likelihood(&data)
    })?;
    Ok((model(&p), ll))
}

/// Fits Gamma-Gamma on the repeat customers ([`GammaGamma::fits`]); returns the
/// parameters, the log-likelihood and how many customers it was fitted on.
pub fn fit_gamma_gamma(customers: &[Customer]) -> Result<(GammaGamma, f64, usize), FitError> {
    let data = GammaGammaData::new(customers);
    if data.customers() < MIN_REPEAT {
        return Err(FitError::TooFewCustomers {
            customers: customers.len(),
            repeat: data.customers(),
        });
    }
    let model = |p: &[f64]| GammaGamma {
        p: p[0],
        q: p[1],
        gamma: p[2],
    };
    let (p, ll) = maximise(data.customers(), &[1.0, 1.0, 1.0], |p| {
        model(p).total_log_likelihood(&data)
    })?;
    Ok((model(&p), ll, data.customers()))
}

/// A workspace's fitted models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub unit: Unit,
    /// End of calibration: purchases after it were not used.
    pub until: Millis,
    pub fitted_at: Millis,
    pub bgnbd: BgNbd,
    pub bgnbd_log_likelihood: f64,
    /// Customers BG/NBD was fitted on (everyone with a purchase by `until`).
    pub customers: usize,
    /// None when there were too few repeat customers with a positive order value.
    pub gamma_gamma: Option<GammaGamma>,
    pub gamma_gamma_log_likelihood: Option<f64>,
    /// Repeat customers Gamma-Gamma was fitted on.
    pub repeat_customers: usize,
}

/// Fits both models on the customers summarised up to `until`.
pub fn fit(customers: &[Customer], unit: Unit, until: Millis, fitted_at: Millis) -> Result<Model, FitError> {
    let (bgnbd, ll) = fit_bgnbd(customers)?;
    let gg = fit_gamma_gamma(customers).ok();
    Ok(Model {
        unit,
        until,
        fitted_at,
        bgnbd,
        bgnbd_log_likelihood: ll,
        customers: customers.len(),
        gamma_gamma: gg.map(|(g, _, _)| g),
        gamma_gamma_log_likelihood: gg.map(|(_, ll, _)| ll),
        repeat_customers: gg.map_or(0, |(_, _, n)| n),
    })
}

/// A churn-risk band, from P(alive) ([`HIGH_RISK_BELOW`], [`MEDIUM_RISK_BELOW`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChurnBand {
    Low,
    Medium,
    High,
}

impl ChurnBand {
    pub fn of(p_alive: f64) -> ChurnBand {
        if p_alive < HIGH_RISK_BELOW {
            ChurnBand::High
        } else if p_alive < MEDIUM_RISK_BELOW {
            ChurnBand::Medium
        } else {
            ChurnBand::Low
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChurnBand::Low => "low",
            ChurnBand::Medium => "medium",
            ChurnBand::High => "high",
        }
    }
}

/// One contact's predictions, with the inputs they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub customer: Customer,
    /// The moment the predictions are as of.
    pub as_of: Millis,
    pub p_alive: f64,
    pub churn_risk: f64,
    pub churn_band: ChurnBand,
    /// None when the model cannot say (a degenerate fit: a + b + x ≤ 1).
    pub expected_purchases_30d: Option<f64>,
    pub expected_purchases_90d: Option<f64>,
    pub expected_purchases_365d: Option<f64>,
    pub expected_order_value: Option<f64>,
    pub clv_12m: Option<f64>,
    pub next_order_at: Option<Millis>,
}

/// The trait names predictions are materialised under, in [`Prediction::traits`]'s
/// order. Flat names, as lead scores' (`lead_score`): the segment language reads a
/// trait by its one key.
pub const TRAITS: [&str; 9] = [
    "predicted_p_alive",
    "predicted_churn_risk",
    "predicted_churn_band",
    "predicted_expected_purchases_30d",
    "predicted_expected_purchases_90d",
    "predicted_expected_purchases_365d",
    "predicted_order_value",
    "predicted_clv_12m",
    "predicted_next_order_at",
];

/// Rounds to 4 significant decimals, so a trait does not churn in its last digits.
fn rounded(v: f64) -> serde_json::Value {
    serde_json::json!((v * 10_000.0).round() / 10_000.0)
}

impl Model {
    /// A customer's predictions as of `as_of`, the moment the customer was
    /// summarised to (the end of calibration after a fit; the time of a new purchase
    /// when one updates them).
    pub fn predict(&self, customer: &Customer, as_of: Millis) -> Prediction {
        let days = |d: f64| d / self.unit.days();
        let p_alive = self.bgnbd.p_alive(customer);
        let expected = |d: f64| Some(self.bgnbd.expected_purchases(customer, days(d))).filter(|e| e.is_finite());
        let e365 = expected(365.0);
        let order_value = self.gamma_gamma.and_then(|g| g.expected_order_value(customer));
        let next = self
            .bgnbd
            .time_to_purchases(
                customer,
                1.0,
                days(NEXT_ORDER_HORIZON_DAYS),
                days(NEXT_ORDER_RESOLUTION_DAYS),
            )
            .map(|t| as_of + (t * self.unit.millis() as f64).round() as Millis);
        Prediction {
            customer: *customer,
            as_of,
            p_alive,
            churn_risk: 1.0 - p_alive,
            churn_band: ChurnBand::of(p_alive),
            expected_purchases_30d: expected(30.0),
            expected_purchases_90d: expected(90.0),
            expected_purchases_365d: e365,
            expected_order_value: order_value,
            clv_12m: order_value.zip(e365).map(|(v, e)| v * e),
            next_order_at: next,
        }
    }
}

impl Prediction {
    /// The traits a contact carries for these predictions ([`TRAITS`]); a value that
    /// cannot be predicted is `null`, which removes the trait.
    pub fn traits(&self) -> serde_json::Map<String, serde_json::Value> {
        let opt = |v: Option<f64>| v.map_or(serde_json::Value::Null, rounded);
        let values = [
            rounded(self.p_alive),
            rounded(self.churn_risk),
            serde_json::json!(self.churn_band.as_str()),
            opt(self.expected_purchases_30d),
            opt(self.expected_purchases_90d),
            opt(self.expected_purchases_365d),
            opt(self.expected_order_value),
            opt(self.clv_12m),
            self.next_order_at
                .map_or(serde_json::Value::Null, |t| serde_json::json!(crate::format_millis(t))),
        ];
        TRAITS.iter().map(|t| t.to_string()).zip(values).collect()
    }
}
