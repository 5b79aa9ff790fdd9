#!/usr/bin/env python3
"""Reference values for Nudge's A/B test statistics, computed with scipy.

Writes crates/nudge-core/tests/fixtures/ab_stats_reference.json, which the Rust tests
of crates/nudge-core/src/campaign/stats.rs read (they do not need Python). Run it again
after changing a case or a documented rule, and commit both files:

    pip install scipy numpy mpmath
    python3 scripts/ab-stats-reference.py

Independent of the Rust code on purpose: intervals come from scipy's own Wilson
interval (binomtest(...).proportion_ci), Welch's test from scipy.stats.ttest_ind on
the recipients' revenue, the probability to be best from scipy.integrate.quad over
scipy.stats densities and cdfs, with the bulk of each posterior located by its
quantiles (not by the Rust code's standard-deviation cuts). The special functions
(ln Γ, ln B, the incomplete beta, erfc, Φ, Student's t) come from mpmath at 40 digits,
checked against scipy.special (see special_values for why not scipy alone).

The reference checks itself: two-arm probabilities against closed forms (Evan
Miller's sum for two Beta posteriors, in mpmath; Φ(Δ/√(s₁²+s₂²)) for two normals),
every case's probabilities against their sum and quad's error estimates, ttest_ind
against ttest_ind_from_stats. Only the rule (docs/ab-tests.md, "How the winner is
chosen") is written again here.
"""

import json
import math
from pathlib import Path

import mpmath
import numpy as np
import scipy
from scipy import integrate, special, stats

OUT = Path(__file__).resolve().parent.parent / "crates/nudge-core/tests/fixtures/ab_stats_reference.json"
Z95 = stats.norm.ppf(0.975)
mpmath.mp.dps = 30
TAIL = 1e-17  # posterior mass left out on each side when locating the bulk


# ---------------------------------------------------------------------------
# One arm under a metric


def is_proportion(metric):
    return metric != "revenue_per_recipient"


def summarize(metric, arm):
    """rate, interval, evidence and posterior of one arm, as documented."""
    n = arm["recipients"]
    if is_proportion(metric):
        s = arm["successes"]
        if n == 0:
            low, high, rate = 0.0, 0.0, 0.0
        else:
            ci = stats.binomtest(s, n).proportion_ci(confidence_level=0.95, method="wilson")
            rate = s / n
            low, high = min(ci.low, rate), max(ci.high, rate)
        return dict(n=n, s=s, rate=rate, ci=(low, high), evidence=n >= 1, post=("beta", 1.0 + s, 1.0 + n - s))
    values = arm["values"]
    mean = float(np.mean(values)) if n else 0.0
    if n >= 2:
        r, q = arm["revenue"], arm["revenue_sq"]
        variance = float(np.var(values, ddof=1))
        if q - r * r / n <= 1e-12 * q:
            variance = 0.0  # an all-equal sample: rounding noise counts as zero
    else:
        variance = 0.0
    se = math.sqrt(variance / n) if n else 0.0
    post = ("normal", mean, se) if se > 0 else ("point", mean)
    return dict(n=n, rate=mean, var=variance, values=values, ci=(mean - Z95 * se, mean + Z95 * se),
                evidence=n >= 2, post=post)


# ---------------------------------------------------------------------------
# Probability to be best


def dist(post):
    if post[0] == "beta":
        return stats.beta(post[1], post[2])
    return stats.norm(post[1], post[2])


def quad_best(posts, i, lower=-math.inf):
    """P(arm i is above every other continuous arm), arm i restricted to x > lower."""
    di = dist(posts[i])
    others = [dist(p) for j, p in enumerate(posts) if j != i]
    lo, hi = di.ppf(TAIL), di.isf(TAIL)
    lo = max(lo, lower)
    if lo >= hi:
        return 0.0
    # Help quad with the places where another arm's cdf climbs.
    points = set()
    for d in [di] + others:
        for q in (1e-6, 1e-3, 0.05, 0.5, 0.95, 0.999, 1 - 1e-6):
            x = float(d.ppf(q))
            if lo < x < hi:
                points.add(x)

    def f(x):
        v = di.pdf(x)
        for d in others:
            v *= d.cdf(x)
        return v

    value, error = integrate.quad(f, lo, hi, points=sorted(points), epsabs=1e-14, epsrel=1e-12, limit=5000)
    assert error < 1e-10, (posts, i, value, error)
    return value


def probability_to_be_best(posts):
    """Same semantics as the Rust code: point masses at the top share what is left."""
    k = len(posts)
    points = [p[1] for p in posts if p[0] == "point"]
    cont = [j for j, p in enumerate(posts) if p[0] != "point"]
    out = [0.0] * k
    top = max(points) if points else -math.inf
    if points:
        at_top = [j for j, p in enumerate(posts) if p[0] == "point" and p[1] == top]
        below = math.prod(float(dist(posts[j]).cdf(top)) for j in cont)
        for j in at_top:
            out[j] = below / len(at_top)
    cont_posts = [posts[j] for j in cont]
    for slot, j in enumerate(cont):
        out[j] = quad_best(cont_posts, slot, lower=top)
    total = sum(out)
    assert abs(total - 1) < 1e-9, (posts, out, total)
    return [p / total for p in out]


def closed_form_two_betas(a1, b1, a2, b2):
    """P(X2 > X1) for X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), integer a2 (Evan Miller's
    sum), in 30-digit arithmetic: in doubles, betaln's rounding at a million recipients
    already costs 4e-9. Its a2 terms take 0.25 ms each, so it checks arms up to 40 000
    successes."""
    lb = mpmath.log(mpmath.beta(a1, b1))
    total = mpmath.mpf(0)
    for i in range(int(a2)):
        total += mpmath.exp(mpmath.log(mpmath.beta(a1 + i, b1 + b2)) - mpmath.log(b2 + i)
                            - mpmath.log(mpmath.beta(1 + i, b2)) - lb)
    return float(total)


# ---------------------------------------------------------------------------
# Tests against the control


def p_value(metric, c, v):
    if not (c["evidence"] and v["evidence"]):
        return None
    if is_proportion(metric):
        pooled = (c["s"] + v["s"]) / (c["n"] + v["n"])
        var = pooled * (1 - pooled) * (1 / c["n"] + 1 / v["n"])
        if var <= 0:
            return 1.0
        z = (v["rate"] - c["rate"]) / math.sqrt(var)
        return float(2 * stats.norm.sf(abs(z)))
    if c["var"] == 0 and v["var"] == 0:
        return 1.0 if v["rate"] == c["rate"] else 0.0
    p = float(stats.ttest_ind(v["values"], c["values"], equal_var=False).pvalue)
    q = float(stats.ttest_ind_from_stats(v["rate"], math.sqrt(v["var"]), v["n"], c["rate"], math.sqrt(c["var"]), c["n"],
                                         equal_var=False).pvalue)
    assert abs(p - q) < 1e-9, (p, q)
    return p


# ---------------------------------------------------------------------------
# The rule and the fallback (docs/ab-tests.md, "How the winner is chosen")


def first_max(pairs):
    best = None
    for i, v in pairs:
        if best is None or v > best[1]:
            best = (i, v)
    return None if best is None else best[0]


def decide(rule, fallback, summaries, probs, pvals):
    k = len(summaries)
    with_data = [i for i in range(k) if summaries[i]["evidence"]]
    reason = None
    winner = None
    if rule["type"] == "probability_to_be_best":
        if len(with_data) < 2:
            reason = "not_enough_data"
        else:
            best = first_max((i, probs[i]) for i in with_data)
            if probs[best] >= rule["threshold"]:
                winner = best
            else:
                reason = "not_significant"
    else:
        compared = [(i, p) for i, p in enumerate(pvals) if p is not None]
        if not compared:
            reason = "not_enough_data"
        else:
            level = rule["alpha"] / len(compared)
            c = summaries[0]["rate"]
            better = [(i, summaries[i]["rate"]) for i, p in compared if p <= level and summaries[i]["rate"] > c]
            if better:
                winner = first_max(better)
            elif all(p <= level and summaries[i]["rate"] < c for i, p in compared):
                winner = 0
            else:
                reason = "not_significant"
    if winner is not None:
        return winner, {"by": "rule", "rule": rule}
    if fallback == "control":
        winner = 0
    else:
        winner = first_max((i, summaries[i]["rate"]) for i in with_data)
        winner = 0 if winner is None else winner
    return winner, {"by": "fallback", "fallback": fallback, "reason": reason}


RULES = [
    {"type": "probability_to_be_best", "threshold": 0.95},
    {"type": "probability_to_be_best", "threshold": 0.8},
    {"type": "significance_test", "alpha": 0.05},
]
FALLBACKS = ["control", "best_observed"]


def lift(a, h):
    if h is None or a["n"] == 0 or h["n"] == 0:
        return None
    absolute = a["rate"] - h["rate"]
    return {"absolute": absolute, "relative": absolute / h["rate"] if h["rate"] > 0 else None}


def expected(metric, arms, holdout):
    summaries = [summarize(metric, a) for a in arms]
    k = len(arms)
    with_data = [i for i in range(k) if summaries[i]["evidence"]]
    if len(with_data) >= 2:
        probs = [0.0] * k
        for i, p in zip(with_data, probability_to_be_best([summaries[i]["post"] for i in with_data])):
            probs[i] = p
        posts = [summaries[i]["post"] for i in with_data]
        if len(posts) == 2 and all(p[0] == "beta" for p in posts) and posts[1][1] <= 40_000:
            (_, a1, b1), (_, a2, b2) = posts
            closed = closed_form_two_betas(a1, b1, a2, b2)
            assert abs(closed - probs[with_data[1]]) < 1e-9, (closed, probs)
        if len(with_data) == 2 and all(summaries[i]["post"][0] == "normal" for i in with_data):
            (_, m1, s1), (_, m2, s2) = (summaries[i]["post"] for i in with_data)
            closed = float(stats.norm.cdf((m2 - m1) / math.hypot(s1, s2)))
            assert abs(closed - probs[with_data[1]]) < 1e-9, (closed, probs)
    else:
        probs = [1 / k] * k
    pvals = [None] + [p_value(metric, summaries[0], s) for s in summaries[1:]]
    h = summarize(metric, holdout) if holdout is not None else None
    out_arms = [
        {
            "recipients": s["n"],
            "rate": s["rate"],
            "ci_low": s["ci"][0],
            "ci_high": s["ci"][1],
            "probability_to_be_best": probs[i],
            "p_value_vs_control": pvals[i],
            "lift_vs_holdout": lift(s, h),
        }
        for i, s in enumerate(summaries)
    ]
    decisions = []
    for rule in RULES:
        for fallback in FALLBACKS:
            winner, by = decide(rule, fallback, summaries, probs, pvals)
            decisions.append({"rule": rule, "fallback": fallback, "winner": winner, "decided_by": by})
    return {
        "arms": out_arms,
        "holdout": None if h is None else {"recipients": h["n"], "rate": h["rate"], "ci_low": h["ci"][0],
                                           "ci_high": h["ci"][1]},
        "decisions": decisions,
    }


# ---------------------------------------------------------------------------
# The cases


def prop(n, s):
    return {"recipients": n, "successes": s, "revenue": 0.0, "revenue_sq": 0.0}


def revenue_arm(values):
    values = np.asarray(values, dtype=float)
    return {"recipients": int(values.size), "successes": 0, "revenue": math.fsum(values),
            "revenue_sq": math.fsum(values * values), "values": values}


def shoppers(seed, n, share, median):
    """n recipients, `share` of them buying a log-normal amount around `median`."""
    rng = np.random.default_rng(seed)
    buys = rng.random(n) < share
    amounts = np.round(median * np.exp(0.8 * rng.standard_normal(n)), 2)
    return np.where(buys, amounts, 0.0)


def cases():
    p = "conversion_rate"
    yield "two arms, small n, close rates", "open_rate", [prop(100, 10), prop(100, 12)], None
    yield "two arms, small n, far rates", "click_rate", [prop(200, 10), prop(200, 40)], None
    yield "two arms, a million each, close rates", "open_rate", [prop(1_000_000, 30_000), prop(1_000_000, 30_300)], None
    yield "two arms, a million each, 30 %", "open_rate", [prop(1_000_000, 300_000), prop(1_000_000, 301_500)], None
    yield "three arms, one clear winner", p, [prop(5000, 500), prop(5000, 520), prop(5000, 640)], None
    yield "three arms, no winner", p, [prop(1000, 100), prop(1000, 105), prop(1000, 98)], None
    yield "eight arms, mixed", "click_rate", [prop(2000, s) for s in (100, 104, 90, 131, 97, 120, 128, 85)], None
    yield "eight arms, a million each", "open_rate", [prop(1_000_000, 200_000 + 150 * i) for i in range(8)], None
    yield "identical arms", p, [prop(1000, 50), prop(1000, 50)], None
    yield "no successes anywhere", p, [prop(500, 0), prop(500, 0), prop(500, 0)], None
    yield "every recipient succeeded", p, [prop(50, 50), prop(60, 60)], None
    yield "a variant nobody received", p, [prop(1000, 100), prop(0, 0), prop(1000, 130)], None
    yield "a control nobody received", p, [prop(0, 0), prop(1000, 50), prop(1000, 80)], None
    yield "only the control has recipients", p, [prop(1000, 50), prop(0, 0)], None
    yield "the control beats every variant", p, [prop(5000, 600), prop(5000, 450), prop(5000, 430)], None
    yield "one recipient each", p, [prop(1, 1), prop(1, 0)], None
    yield "unequal sizes", p, [prop(100, 5), prop(10_000, 800)], None
    yield "Bonferroni withholds a nominal winner", p, [prop(4000, 400), prop(4000, 455), prop(4000, 395)], None
    yield "eight arms, some empty, mostly zero", p, [prop(300, 0), prop(0, 0), prop(300, 1), prop(300, 0),
                                                     prop(10, 0), prop(300, 4), prop(0, 0), prop(1, 1)], None
    yield "with a holdout", p, [prop(2000, 200), prop(2000, 260)], prop(1000, 150)
    yield "holdout with no conversions", p, [prop(2000, 20), prop(2000, 31)], prop(500, 0)
    yield "holdout nobody was in", p, [prop(2000, 20), prop(2000, 31)], prop(0, 0)
    r = "revenue_per_recipient"
    yield "revenue, two arms", r, [revenue_arm(shoppers(1, 5000, 0.03, 40)), revenue_arm(shoppers(2, 5000, 0.036, 40))], None
    yield "revenue, three arms, 200 000 each", r, [revenue_arm(shoppers(3 + i, 200_000, 0.02 + 0.001 * i, 35))
                                                   for i in range(3)], None
    yield "revenue, eight arms", r, [revenue_arm(shoppers(10 + i, 3000, 0.05, 20 + 2 * i)) for i in range(8)], \
        revenue_arm(shoppers(30, 3000, 0.04, 20))
    yield "revenue, nobody bought", r, [revenue_arm(np.zeros(400)), revenue_arm(np.zeros(500))], \
        revenue_arm(np.zeros(100))
    yield "revenue, nobody bought in the control", r, [revenue_arm(np.zeros(1000)),
                                                       revenue_arm(shoppers(40, 1000, 0.02, 30))], None
    yield "revenue, constant amounts", r, [revenue_arm(np.full(100, 10.0)), revenue_arm(np.full(120, 12.5)),
                                           revenue_arm(np.full(80, 10.0))], None
    yield "revenue, a variant with one recipient", r, [revenue_arm(shoppers(50, 800, 0.1, 25)), revenue_arm([99.0]),
                                                       revenue_arm(shoppers(51, 800, 0.12, 25))], None
    yield "revenue, with a holdout", r, [revenue_arm(shoppers(60, 4000, 0.03, 50)),
                                         revenue_arm(shoppers(61, 4000, 0.035, 50))], revenue_arm(shoppers(62, 2000, 0.025, 50))


def public(arm):
    return {key: arm[key] for key in ("recipients", "successes", "revenue", "revenue_sq")}


# ---------------------------------------------------------------------------
# The special functions, on the ranges the statistics use. Their reference values come
# from mpmath at 40 digits, not from scipy: scipy's are not exact enough to judge a
# 1e-12 error there (betaln(1, 500001) is off by 5e-10, betainc(500001, 0.5, x) by
# 3.5e-8 at x = 1 - 1.6e-12, ndtr(-38) underflows to 0). scipy still locates the
# points (its quantiles) and must agree within 1e-7.


def mp_beta_cdf(a, b, x):
    """I_x(a, b) = x^a (1-x)^b / (a B(a, b)) 2F1(a+b, 1; a+1; x), on the side of the mean
    where the series converges."""
    a, b, x = mpmath.mpf(a), mpmath.mpf(b), mpmath.mpf(x)
    if x > a / (a + b):
        return 1 - mp_beta_cdf(b, a, 1 - x)
    log_front = a * mpmath.log(x) + b * mpmath.log1p(-x) - mp_ln_beta(a, b)
    return mpmath.exp(log_front) / a * mpmath.hyp2f1(a + b, 1, a + 1, x, maxterms=10**8)


def mp_ln_beta(a, b):
    return mpmath.loggamma(a) + mpmath.loggamma(b) - mpmath.loggamma(mpmath.mpf(a) + b)


def checked(reference, scipy_value):
    value = float(reference)
    assert abs(value - scipy_value) <= 1e-7 * max(1.0, abs(value)), (value, scipy_value)
    return value


def exact(row):
    """A row of numbers as text: serde_json's default float parser may miss by an ulp,
    and some of these arguments (x within 1.6e-12 of 1) turn one ulp into 7e-8."""
    return [repr(float(v)) for v in row]


def special_values():
    with mpmath.workdps(40):
        xs = [0.5, 1, 1.5, 2, 3.7, 9.99, 10, 10.5, 57.3, 1e3, 123456.5, 1e6 + 1, 3e8]
        beta_args = [(1, 1), (1, 2), (2, 3), (0.5, 1), (11, 1001), (101, 901), (3001, 7001), (30001, 70001),
                     (300001, 700001), (1, 500001), (500001, 0.5), (5, 0.5), (1000001, 1)]
        cdf = []
        for a, b in beta_args:
            d = stats.beta(a, b)
            for q in (1e-12, 1e-4, 0.02, 0.3, 0.5, 0.77, 0.999, 1 - 1e-9):
                x = float(d.ppf(q))
                if 0 < x < 1:
                    cdf.append(exact([a, b, x, checked(mp_beta_cdf(a, b, x), special.betainc(a, b, x))]))
        t_args = [(0, 5), (0.5, 1), (2.1, 3), (-2.1, 3), (1.96, 30.5), (3.3, 123.4), (-4, 998.2), (2.5, 1e5),
                  (6, 1e6), (0.01, 2e6), (40, 1e6)]
        t_values = []
        for t, df in t_args:
            t2 = mpmath.mpf(t) ** 2
            value = mp_beta_cdf(mpmath.mpf(df) / 2, 0.5, df / (df + t2))
            t_values.append(exact([t, df, checked(value, 2 * stats.t.sf(abs(t), df))]))
        return {
            "ln_gamma": [exact([x, checked(mpmath.loggamma(x), special.gammaln(x))]) for x in xs],
            "ln_beta": [exact([a, b, checked(mp_ln_beta(a, b), special.betaln(a, b))]) for a, b in beta_args],
            "beta_cdf": cdf,
            "erfc": [exact([x, checked(mpmath.erfc(x), special.erfc(x))])
                     for x in (-5, -2.9, -1, -1e-3, 0, 1e-8, 0.3, 1, 2.5, 2.999, 3, 3.001, 4.2, 6, 10, 15.5, 26)],
            "normal_cdf": [exact([z, checked(mpmath.ncdf(z), special.ndtr(z))])
                           for z in (-38, -20, -8.5, -3, -1.96, -0.2, 0, 0.7, 2, 5, 9)],
            "student_t_two_sided": t_values,
        }


def main():
    out = {
        "generated_by": "scripts/ab-stats-reference.py",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "special": special_values(),
        "cases": [],
    }
    for name, metric, arms, holdout in cases():
        out["cases"].append({
            "name": name,
            "metric": metric,
            "arms": [public(a) for a in arms],
            "holdout": None if holdout is None else public(holdout),
            "expected": expected(metric, arms, holdout),
        })
        print(f"{name}: done")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}: {len(out['cases'])} cases")


if __name__ == "__main__":
    main()
