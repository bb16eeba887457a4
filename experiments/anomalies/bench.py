"""Benchmark: score 10,000 hourly rate series × 4 weeks with the vectorised engine, next to a
straightforward per-series statsmodels STL loop timed on a subset and scaled (same run, same data);
then the incremental run — one more hour of data scored from the state of the first 4 weeks minus
one hour — against the full scoring of the same data; and the anomaly job itself (every slice and
metric of a synthetic hourly mart of ~7,000 slices, as the demo's) full and after one more hour.

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


def synthetic_mart(hours: int = HOURS, seed: int = 2):
    """An hourly mart like ``marts.fct_metric_timeseries``: 5 campaigns × 2 channels × 3 providers ×
    8 regions × 3 carriers with daily shapes (about 7,000 slices once all groupings are formed)."""
    import polars as pl

    rng = np.random.default_rng(seed)
    t = np.arange(hours)
    shape = 1.0 + 0.8 * np.sin(2 * np.pi * (t % 24 - 6) / 24)
    frames = []
    for c in range(5):
        for ch in range(2):
            for pr in range(3):
                for r in range(8):
                    for ca in range(3):
                        sent = rng.poisson(rng.uniform(2, 40) * shape)
                        delivered = rng.binomial(sent, 0.95)
                        clicked = rng.binomial(delivered, 0.08 + 0.02 * c)
                        frames.append(pl.DataFrame({
                            "hour_at": pl.Series((490_000 + t) * 3_600_000_000, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
                            "campaign_id": f"c{c}", "channel": f"ch{ch}", "provider": f"p{pr}", "region": f"R{r}",
                            "carrier": f"k{ca}", "sent": sent.astype(float), "delivered": delivered.astype(float),
                            "clicked": clicked.astype(float), "converted": rng.binomial(clicked, 0.2).astype(float)}))
    return pl.concat(frames)


def bench_job(line) -> dict:
    """The job's scoring (``find_incidents``): everything, then one more hour from the stored state."""
    import polars as pl

    from experiments.anomalies.job import find_incidents

    frame = synthetic_mart()
    last = frame["hour_at"].max()
    start = time.perf_counter()
    full, _, _ = find_incidents(frame, {})
    full_s = time.perf_counter() - start
    _, stored, _ = find_incidents(frame.filter(pl.col("hour_at") < last), {})
    start = time.perf_counter()
    inc, _, how = find_incidents(frame, {}, stored=stored)
    inc_s = time.perf_counter() - start
    modes = sorted({m["mode"] for m in how.values()})
    line("anomaly job: every slice × 5 metrics, full scoring", full_s, frame.height)
    line("anomaly job: one more hour from the stored state", inc_s, frame.height,
         f"{inc_s / full_s:.1%} of the full scoring ({'/'.join(modes)}; same incidents: {len(inc) == len(full)})")
    return {"job_full_seconds": round(full_s, 3), "job_incremental_seconds": round(inc_s, 3),
            "job_incremental_ratio": round(inc_s / full_s, 4)}


def bench_anomalies(line) -> dict:
    num, den, hours = synthetic()
    start = time.perf_counter()
    scored = score_matrix("rate", num, den, hours, ["UTC"] * num.shape[0], Params())
    engine = time.perf_counter() - start
    points = num.size
    line(f"anomalies: {SERIES:,} series × {HOURS} h scored (rates, CUSUM)", engine, points)
    head = score_matrix("rate", num[:, :-1], den[:, :-1], hours[:-1], ["UTC"] * num.shape[0], Params())
    start = time.perf_counter()
    more = score_matrix("rate", num, den, hours, ["UTC"] * num.shape[0], Params(), state=head.state)
    incremental = time.perf_counter() - start
    same = len(more.spans) == len(scored.spans) and np.array_equal(more.anomaly, scored.anomaly)
    line("incremental: one more hour from the state", incremental, num.shape[0],
         f"{incremental / engine:.1%} of the full scoring (same spans: {same}; target ≤ 10 %)")
    start = time.perf_counter()
    stl_loop(num[:LOOP_SAMPLE], den[:LOOP_SAMPLE])
    loop = (time.perf_counter() - start) * SERIES / LOOP_SAMPLE
    line(f"per-series statsmodels STL loop, scaled from {LOOP_SAMPLE}", loop, points,
         f"engine is {loop / engine:,.1f}× faster")
    job = bench_job(line)
    return {"series": SERIES, "hours": HOURS, "engine_seconds": round(engine, 3), "stl_loop_seconds_scaled": round(loop, 3),
            "speedup": round(loop / engine, 2), "spans": len(scored.spans), "target_seconds": 10.0,
            "within_target": engine < 10.0, "incremental_seconds": round(incremental, 4),
            "incremental_ratio": round(incremental / engine, 4), "incremental_same_spans": same,
            "incremental_within_target": incremental <= 0.10 * engine, **job}


if __name__ == "__main__":
    def _line(label: str, seconds: float, rows: int | None = None, extra: str = "") -> None:
        rate = f"  {rows / seconds / 1e6:6.2f} M points/s" if rows else ""
        print(f"  {label:<60} {seconds:8.2f} s{rate}  {extra}", flush=True)

    print(bench_anomalies(_line))
