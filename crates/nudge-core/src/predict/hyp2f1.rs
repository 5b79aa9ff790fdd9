//! ln ₂F₁(a, b; c; z) for 0 ≤ z < 1, the Gauss hypergeometric function BG/NBD's
//! conditional expectation needs, with a, b > 0 and c > 0 (c ≤ 0 happens only for a
//! degenerate fit, a + b ≤ 1 − x: NaN then).
//!
//! BG/NBD calls it with a = r + x and b = b' + x, which grow with a customer's
//! purchases, so the plain series can overflow for a frequent buyer with z near 1.
//! Euler's transformation ₂F₁(a, b; c; z) = (1 − z)^(c−a−b) ₂F₁(c−a, c−b; c; z)
//! moves that growth into a closed-form factor, but has huge parameters of its own
//! when the fit's a' and b' are huge (a nearly fixed dropout probability, a limit the
//! maximum likelihood may approach), where the plain series is tame. So the plain
//! series is summed first, and the transformed one when the plain one overflows or
//! does not converge; each term by term to relative precision 1e-16.

/// Most terms summed; at z = 0.999 the transformed series needs about 40,000.
const MAX_TERMS: usize = 200_000;

/// The series Σ (a)ₙ(b)ₙ/((c)ₙ n!) zⁿ, if it converges to a finite positive sum.
fn series(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 0..MAX_TERMS {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if !sum.is_finite() {
            return None;
        }
        if term == 0.0 || (term.abs() < 1e-16 * sum.abs() && n > 2.0) {
            return (sum > 0.0).then_some(sum);
        }
    }
    None
}

/// ln ₂F₁(a, b; c; z), for 0 ≤ z < 1 and c > 0; NaN outside or when neither series
/// converges.
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    if !(0.0..1.0).contains(&z) || c.is_nan() || c <= 0.0 {
        return f64::NAN;
    }
    if let Some(sum) = series(a, b, c, z) {
        return sum.ln();
    }
    match series(c - a, c - b, c, z) {
        Some(sum) => (c - a - b) * (-z).ln_1p() + sum.ln(),
        None => f64::NAN,
    }
}
