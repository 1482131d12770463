"""BG/NBD and Gamma-Gamma with the `lifetimes` package on the same summary
CSV (`python3 lifetimes_fit.py summary.csv`)."""
import json, sys, time
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

t0 = time.perf_counter()
df = pd.read_csv(sys.argv[1])
t1 = time.perf_counter()
bg = BetaGeoFitter(penalizer_coef=0.0)
bg.fit(df["frequency"], df["recency"], df["T"])
t2 = time.perf_counter()
rep = df[(df["frequency"] > 0) & (df["monetary_value"] > 0)]
gg = GammaGammaFitter(penalizer_coef=0.0)
gg.fit(rep["frequency"], rep["monetary_value"])
t3 = time.perf_counter()
print(json.dumps({
    "rows": len(df), "read_s": t1 - t0, "bgnbd_fit_s": t2 - t1, "gamma_gamma_fit_s": t3 - t2,
    "bgnbd": {k: float(v) for k, v in bg.params_.items()},
    "gamma_gamma": {k: float(v) for k, v in gg.params_.items()},
}))
