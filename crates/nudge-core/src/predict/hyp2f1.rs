//! ln ₂F₁(a, b; c; z) for 0 ≤ z < 1, the Gauss hypergeometric function BG/NBD's
//! conditional expectation needs, with a, b > 0 and c > 0 (c ≤ 0 happens only for a
//! degenerate fit, a + b ≤ 1 − x: NaN then).
//!
//! BG/NBD calls it with a = r + x and b = b' + x, which grow with a customer's
//! purchases, so the plain series would overflow for a frequent buyer with z close
//! to 1. Euler's transformation ₂F₁(a, b; c; z) = (1 − z)^(c−a−b) ₂F₁(c−a, c−b; c; z)
//! moves the growth into a closed-form factor and leaves a series with small
//! parameters, summed here term by term to relative precision 1e-16.

/// Most terms summed; at z = 0.999 the transformed series needs about 40,000.
const MAX_TERMS: usize = 200_000;

/// ln ₂F₁(a, b; c; z), for 0 ≤ z < 1 and c > 0; NaN outside.
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    if !(0.0..1.0).contains(&z) || c.is_nan() || c <= 0.0 {
        return f64::NAN;
    }
    let (a2, b2) = (c - a, c - b);
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 0..MAX_TERMS {
        let n = n as f64;
        term *= (a2 + n) * (b2 + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term == 0.0 || (term.abs() < 1e-16 * sum.abs() && n > 2.0) {
            break;
        }
    }
    (c - a - b) * (-z).ln_1p() + sum.ln()
}
