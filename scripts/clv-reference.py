#!/usr/bin/env python3
"""Reference values for Nudge's lifetime-value models, computed with `lifetimes`.

Reads the CDNOW sample summary (crates/nudge-core/tests/fixtures/cdnow/summary.csv, a
copy of lifetimes' `cdnow_customers_summary_with_transactions.csv`: 2,357 customers,
x = repeat purchases, t_x = recency and T = age in weeks over the 39-week calibration
period, zbar = mean value of the repeat purchases) and writes
crates/nudge-core/tests/fixtures/cdnow/reference.json, which the Rust tests of
crates/nudge-core/src/predict.rs read (they do not need Python). Run it again after
changing a case, and commit both files:

    python3 -m venv /tmp/clvenv && /tmp/clvenv/bin/pip install lifetimes==0.11.3
    /tmp/clvenv/bin/python scripts/clv-reference.py

Independent of the Rust code: the fits are lifetimes' BetaGeoFitter and
GammaGammaFitter (scipy's optimiser, autograd's gradients); the predictions are its
conditional_probability_alive, conditional_expected_number_of_purchases_up_to_time
(scipy's hyp2f1) and conditional_expected_average_profit.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "crates/nudge-core/tests/fixtures/cdnow"

# The horizons Nudge predicts over, in days, and the unit of the CDNOW summary.
HORIZONS_DAYS = [30, 90, 365]
DAYS_PER_UNIT = 7.0


def main():
    df = pd.read_csv(FIXTURES / "summary.csv")
    x, t_x, T, zbar = df["x"], df["t_x"], df["T"], df["zbar"]

    bgf = BetaGeoFitter(penalizer_coef=0.0)
    bgf.fit(x, t_x, T)
    bg = {k: float(bgf.params_[k]) for k in ["r", "alpha", "a", "b"]}
    # lifetimes fits on rescaled times, so its own `_negative_log_likelihood_` is not
    # the paper's; its likelihood function at the fitted parameters on the data as
    # given is (it returns the mean negative log-likelihood).
    bg_ll = -float(
        BetaGeoFitter._negative_log_likelihood(
            np.log([bg["r"], bg["alpha"], bg["a"], bg["b"]]), x.values, t_x.values, T.values, np.ones(len(df)), 0.0
        )
    ) * len(df)

    repeat = df[(df["x"] > 0) & (df["zbar"] > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.0)
    ggf.fit(repeat["x"], repeat["zbar"])
    gg = {"p": float(ggf.params_["p"]), "q": float(ggf.params_["q"]), "gamma": float(ggf.params_["v"])}
    gg_ll = -float(
        GammaGammaFitter._negative_log_likelihood(
            np.log([gg["p"], gg["q"], gg["gamma"]]), repeat["x"].values, repeat["zbar"].values, np.ones(len(repeat)), 0.0
        )
    ) * len(repeat)

    p_alive = bgf.conditional_probability_alive(x, t_x, T)
    expected = {
        d: bgf.conditional_expected_number_of_purchases_up_to_time(d / DAYS_PER_UNIT, x, t_x, T)
        for d in HORIZONS_DAYS
    }
    order_value = ggf.conditional_expected_average_profit(x, zbar)

    # Every fourth customer and every frequent buyer (the hypergeometric term's hard
    # cases), with the predictions at lifetimes' own parameters.
    rows = []
    for i in range(len(df)):
        if i % 4 != 0 and x[i] < 10:
            continue
        rows.append(
            {
                "id": int(df["ID"][i]),
                "x": int(x[i]),
                "t_x": float(t_x[i]),
                "T": float(T[i]),
                "zbar": float(zbar[i]),
                "p_alive": float(p_alive[i]),
                "expected_30d": float(expected[30][i]),
                "expected_90d": float(expected[90][i]),
                "expected_365d": float(expected[365][i]),
                "order_value": float(order_value[i]),
            }
        )

    out = {
        "source": "lifetimes 0.11.3 (BetaGeoFitter, GammaGammaFitter, penalizer 0) on summary.csv",
        "paper": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4},
        "customers": len(df),
        "repeat_customers": len(repeat),
        "bgnbd": bg,
        "bgnbd_log_likelihood": bg_ll,
        "gamma_gamma": gg,
        "gamma_gamma_log_likelihood": gg_ll,
        "predictions": rows,
    }
    path = FIXTURES / "reference.json"
    rows = out.pop("predictions")
    text = json.dumps(out, indent=1)[:-2] + ',\n "predictions": [\n'
    text += ",\n".join("  " + json.dumps(r) for r in rows) + "\n ]\n}\n"
    json.loads(text)
    path.write_text(text)
    print(f"wrote {path}: BG/NBD {bg} LL {bg_ll:.3f}; Gamma-Gamma {gg} LL {gg_ll:.3f}; {len(rows)} customers")
    assert np.isfinite(bg_ll) and np.isfinite(gg_ll)


if __name__ == "__main__":
    main()
