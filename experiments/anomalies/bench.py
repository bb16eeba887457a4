"""Benchmark: score 10,000 hourly rate series × 4 weeks with the vectorised engine, next to a
straightforward per-series statsmodels STL loop timed on a subset and scaled (same run, same data).

``bench_anomalies(line)`` is called by ``make bench`` (``line(label, seconds, rows=None, extra="")``
prints one result line); it returns a dict of figures.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from experiments.anomalies.baseline import Params
from experiments.anomalies.detect import score_matrix

SERIES = 10_000
HOURS = 24 * 28
LOOP_SAMPLE = 200


def synthetic(series: int = SERIES, hours: int = HOURS, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Denominators with a daily and weekly shape at very different sizes, binomial numerators whose
    rate has an hour-of-day pattern, and a planted 3-hour drop in 1 % of the series."""
    rng = np.random.default_rng(seed)
    t = np.arange(hours)
    shape = (1.0 + 0.8 * np.sin(2 * np.pi * (t % 24 - 6) / 24)) * np.where((t // 24) % 7 >= 5, 0.6, 1.0)
    size = np.exp(rng.uniform(np.log(2), np.log(2000), series))[:, None]
    den = rng.poisson(size * shape[None, :]).astype(float)
    rate = rng.uniform(0.05, 0.3, series)[:, None] * (1 + 0.2 * np.sin(2 * np.pi * t / 24))[None, :]
    hit = rng.random(series) < 0.01
    start = rng.integers(24 * 14, hours - 3, series)
    drop = hit[:, None] & (t[None, :] >= start[:, None]) & (t[None, :] < start[:, None] + 3)
    num = rng.binomial(den.astype(np.int64), np.where(drop, rate * 0.2, rate)).astype(float)
    return num, den, np.arange(490_000, 490_000 + hours, dtype=np.int64)


def stl_loop(num: np.ndarray, den: np.ndarray) -> int:
    """The straightforward approach: per series, STL (daily period, robust) on the hourly rate, then
    flag residuals beyond 4 robust standard deviations. Returns the number of flagged points."""
    from statsmodels.tsa.seasonal import STL

    flagged = 0
    for i in range(num.shape[0]):
        rate = np.where(den[i] > 0, num[i] / np.maximum(den[i], 1), np.nan)
        rate = np.where(np.isnan(rate), np.nanmedian(rate) if np.any(~np.isnan(rate)) else 0.0, rate)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = STL(rate, period=24, robust=True).fit()
        r = res.resid
        mad = np.median(np.abs(r - np.median(r))) * 1.4826 or 1e-9
        flagged += int(np.sum(np.abs(r) > 4 * mad))
    return flagged


def bench_anomalies(line) -> dict:
    num, den, hours = synthetic()
    start = time.perf_counter()
    scored = score_matrix("rate", num, den, hours, ["UTC"] * num.shape[0], Params())
    engine = time.perf_counter() - start
    points = num.size
    line(f"anomalies: {SERIES:,} series × {HOURS} h scored (rates, CUSUM)", engine, points)
    start = time.perf_counter()
    stl_loop(num[:LOOP_SAMPLE], den[:LOOP_SAMPLE])
    loop = (time.perf_counter() - start) * SERIES / LOOP_SAMPLE
    line(f"per-series statsmodels STL loop, scaled from {LOOP_SAMPLE}", loop, points,
         f"engine is {loop / engine:,.1f}× faster")
    return {"series": SERIES, "hours": HOURS, "engine_seconds": round(engine, 3), "stl_loop_seconds_scaled": round(loop, 3),
            "speedup": round(loop / engine, 2), "spans": len(scored.spans), "target_seconds": 10.0,
            "within_target": engine < 10.0}


if __name__ == "__main__":
    def _line(label: str, seconds: float, rows: int | None = None, extra: str = "") -> None:
        rate = f"  {rows / seconds / 1e6:6.2f} M points/s" if rows else ""
        print(f"  {label:<60} {seconds:8.2f} s{rate}  {extra}", flush=True)

    print(bench_anomalies(_line))
