"""100,000 comparisons (variant × metric × slice) from sufficient statistics, against a loop of
per-comparison scipy calls and a loop of GrowthBook's gbstats (its own environment, `make
references`) measured in the same run.

The loop computes, for each comparison, what the engine computes for all at once: scipy's Welch
t-test from summary statistics, the absolute and the delta-method relative intervals, the relative
p-value, the Bayesian chance to win and the sequential interval. It is timed on a slice of the comparisons and scaled to the whole,
and its answers are checked against the engine's on that slice.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path

import numpy as np
from scipy import stats

from experiments import SampleStats, compare

COMPARISONS = 100_000
LOOP_SAMPLE = 5_000
ROOT = Path(__file__).resolve().parent.parent
GBSTATS = ROOT / ".venv" / "references" / "gbstats" / "bin" / "python"
GBSTATS_RUNNER = ROOT / "tests" / "references" / "gbstats_runner.py"


def make_inputs(rng: np.random.Generator, count: int) -> tuple[SampleStats, SampleStats]:
    n_c = rng.integers(2_000, 200_000, count).astype(float)
    n_t = rng.integers(2_000, 200_000, count).astype(float)
    p_c = rng.uniform(0.01, 0.3, count)
    p_t = p_c * rng.uniform(0.9, 1.15, count)
    x_c = np.round(n_c * p_c)
    x_t = np.round(n_t * p_t)
    return SampleStats(n_c, x_c, x_c), SampleStats(n_t, x_t, x_t)  # proportions: Σx² = Σx


def loop(control: SampleStats, treatment: SampleStats, idx: range) -> list[tuple[float, float]]:
    out = []
    for i in idx:
        n_c, n_t = float(control.n[i]), float(treatment.n[i])
        m_c, m_t = control.sum_x[i] / n_c, treatment.sum_x[i] / n_t
        v_c = (control.sum_x2[i] - n_c * m_c * m_c) / (n_c - 1)
        v_t = (treatment.sum_x2[i] - n_t * m_t * m_t) / (n_t - 1)
        res = stats.ttest_ind_from_stats(m_t, math.sqrt(v_t), n_t, m_c, math.sqrt(v_c), n_c, equal_var=False)
        se_abs = math.sqrt(v_t / n_t + v_c / n_c)
        a, b = v_t / n_t, v_c / n_c
        df = (a + b) ** 2 / (a * a / (n_t - 1) + b * b / (n_c - 1))  # Welch–Satterthwaite
        abs_ci = stats.t.interval(0.95, df, loc=m_t - m_c, scale=se_abs)
        se_rel = math.sqrt(v_t / n_t / m_c**2 + m_t**2 * v_c / n_c / m_c**4)
        lift = m_t / m_c - 1
        rel_p = 2 * stats.t.sf(abs(lift) / se_rel, df)
        rel_ci = stats.t.interval(0.95, df, loc=lift, scale=se_rel)
        chance_to_win = stats.norm.sf(0, loc=lift, scale=se_rel)
        # asymptotic confidence sequence (N* = 5000) on the relative lift
        n = n_c + n_t
        rho2 = (-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 5000
        s = se_rel * math.sqrt(n)
        half = s * math.sqrt(2 * (n * rho2 + 1) / (n * n * rho2) * math.log(math.sqrt(n * rho2 + 1) / 0.05))
        out.append((float(res.pvalue), rel_ci[0], abs_ci[0], rel_p, chance_to_win, lift - half))
    return out


def timed_gbstats(cases: list[dict]) -> tuple[float, list[dict]]:
    """gbstats run on the cases in its own environment: (seconds of its loop alone, its results)."""
    if not GBSTATS.exists():
        raise RuntimeError("gbstats' environment is missing: `make references` creates it")
    done = subprocess.run([str(GBSTATS), str(GBSTATS_RUNNER), "--timed"], input=json.dumps(cases), text=True,
                          capture_output=True, timeout=600, check=True)
    out = json.loads(done.stdout)
    return out["seconds"], out["results"]


def gbstats_loop(control: SampleStats, treatment: SampleStats, idx: range) -> tuple[float, list[dict]]:
    """gbstats' two-sided t-test on the relative lift, one comparison at a time: (seconds, results)."""
    cases = [{"kind": "mean", "test": "two-sided", "relative": True,
              "a": {"n": float(control.n[i]), "sum": float(control.sum_x[i]), "sum_squares": float(control.sum_x2[i])},
              "b": {"n": float(treatment.n[i]), "sum": float(treatment.sum_x[i]),
                    "sum_squares": float(treatment.sum_x2[i])}} for i in idx]
    return timed_gbstats(cases)


def make_cuped_inputs(rng: np.random.Generator, count: int) -> tuple[SampleStats, SampleStats]:
    """A mean metric with a pre-exposure covariate per comparison (sums of a correlated pair)."""
    out = []
    for lift in (0.0, 0.1):
        n = rng.integers(2_000, 200_000, count).astype(float)
        mean_x, mean_y = 10.0 + lift + rng.normal(0, 0.05, count), 10.0 + rng.normal(0, 0.05, count)
        var_x, var_y, cov = 9.0, 9.0, 6.3
        out.append(SampleStats(n, n * mean_x, (n - 1) * var_x + n * mean_x**2, n * mean_y,
                               (n - 1) * var_y + n * mean_y**2, (n - 1) * cov + n * mean_x * mean_y))
    return out[0], out[1]


def make_strata_inputs(rng: np.random.Generator, count: int, strata: int = 4) -> tuple[SampleStats, SampleStats]:
    """A proportion per comparison over ``strata`` strata (the last axis)."""
    out = []
    for lift in (1.0, 1.08):
        n = rng.integers(500, 50_000, (count, strata)).astype(float)
        k = np.round(n * rng.uniform(0.02, 0.3, (count, strata)) * lift)
        out.append(SampleStats(n, k, k))
    return out[0], out[1]


def strata_loop(control: SampleStats, treatment: SampleStats, idx: range) -> list[float]:
    """The stratified difference and its t interval, one comparison at a time with scipy."""
    out = []
    for i in idx:
        nc, nt = control.n[i], treatment.n[i]
        mc, mt = control.sum_x[i] / nc, treatment.sum_x[i] / nt
        vc = (control.sum_x2[i] - nc * mc * mc) / (nc - 1)
        vt = (treatment.sum_x2[i] - nt * mt * mt) / (nt - 1)
        w = (nc + nt) / (nc + nt).sum()
        effect = float((w * (mt - mc)).sum())
        parts_c, parts_t = w * w * vc / nc, w * w * vt / nt
        var = float(parts_c.sum() + parts_t.sum())
        df = var**2 / float((parts_c**2 / (nc - 1)).sum() + (parts_t**2 / (nt - 1)).sum())
        out.append(stats.t.interval(0.95, df, loc=effect, scale=math.sqrt(var))[0])
    return out


def gbstats_cuped_loop(control: SampleStats, treatment: SampleStats, idx: range,
                       thetas: np.ndarray) -> tuple[float, list[dict]]:
    """gbstats' regression-adjusted (CUPED) t-test, one comparison at a time, with our within-arm θ set
    on its statistics (it still computes its own first): (seconds, results)."""
    def arm(s: SampleStats, i: int) -> dict:
        return {"n": float(s.n[i]), "sum": float(s.sum_x[i]), "sum_squares": float(s.sum_x2[i]),
                "pre_sum": float(s.sum_y[i]), "pre_sum_squares": float(s.sum_y2[i]), "sum_products": float(s.sum_xy[i])}
    cases = [{"kind": "cuped", "test": "two-sided", "relative": False, "theta": float(thetas[i]),
              "a": arm(control, i), "b": arm(treatment, i)} for i in idx]
    return timed_gbstats(cases)


BUCKETS = 240            # log buckets up to 1.05^240 − 1 s (beyond a day), as the marts keep them
QUANTILE_SAMPLE = 2_000


def make_histograms(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per comparison, each arm's dwell-seconds histogram (lognormal dwell, the treatment's 5 % longer)."""
    out = []
    for shift in (0.0, 1.0):
        centre = np.log1p(np.exp(3.0)) / np.log(1.05) + shift + rng.normal(0, 3, (count, 1))
        shape = np.exp(-0.5 * ((np.arange(BUCKETS) - centre) / 22.0) ** 2)
        out.append(rng.poisson(shape * rng.uniform(5, 40, (count, 1))).astype(float))
    return out[0], out[1]


def quantile_loop(control: np.ndarray, treatment: np.ndarray, idx: range) -> list[float]:
    """What the engine computes for a median comparison, one at a time: each arm's median and its
    order-statistic SE from three rank look-ups (numpy), the difference's interval and p-value and
    the relative lift's (scipy); returns the lower ends of the absolute intervals."""
    lower = 1.05 ** np.arange(BUCKETS + 1) - 1.0
    z = stats.norm.isf(0.025)

    def at(counts: np.ndarray, cumulative: np.ndarray, rank: float) -> float:
        rank = min(max(rank, 0.0), cumulative[-1])
        b = min(int(np.searchsorted(cumulative, rank)), BUCKETS - 1)
        before = cumulative[b] - counts[b]
        share = (rank - before) / counts[b] if counts[b] > 0 else 0.0
        return float(lower[b] + share * (lower[b + 1] - lower[b]))

    def arm(counts: np.ndarray) -> tuple[float, float]:
        cumulative = np.cumsum(counts)
        n = cumulative[-1]
        spread = z * math.sqrt(n * 0.25)
        return at(counts, cumulative, n / 2), (at(counts, cumulative, n / 2 + spread)
                                               - at(counts, cumulative, n / 2 - spread)) / (2 * z)

    out = []
    for i in idx:
        (mc, sc), (mt, st) = arm(control[i]), arm(treatment[i])
        se = math.sqrt(sc * sc + st * st)
        low, _ = stats.norm.interval(0.95, loc=mt - mc, scale=se)
        stats.norm.sf(abs(mt - mc) / se)
        rel_se = math.sqrt(st * st / mc**2 + mt * mt * sc * sc / mc**4)
        stats.norm.interval(0.95, loc=(mt - mc) / abs(mc), scale=rel_se)
        out.append(low)
    return out


def bench_more(line, rng: np.random.Generator) -> dict:
    """CUPED and post-stratification at 100,000 comparisons each, against per-comparison loops."""
    from experiments.quantiles import compare_quantiles
    from experiments.stratification import post_stratify

    cuped_c, cuped_t = make_cuped_inputs(rng, COMPARISONS)
    compare(cuped_c, cuped_t, "mean", cuped=True)
    start = time.perf_counter()
    cuped = compare(cuped_c, cuped_t, "mean", cuped=True)
    cuped_seconds = time.perf_counter() - start
    gb_seconds, gb = gbstats_cuped_loop(cuped_c, cuped_t, range(LOOP_SAMPLE), cuped.cuped_theta)
    gb_seconds *= COMPARISONS / LOOP_SAMPLE
    assert np.allclose(cuped.abs_effect[:LOOP_SAMPLE], [g["estimate"] for g in gb], rtol=1e-9), "gbstats disagrees"
    strata_c, strata_t = make_strata_inputs(rng, COMPARISONS)
    post_stratify(strata_c, strata_t, "proportion")
    start = time.perf_counter()
    stratified = post_stratify(strata_c, strata_t, "proportion")
    strata_seconds = time.perf_counter() - start
    start = time.perf_counter()
    reference = strata_loop(strata_c, strata_t, range(LOOP_SAMPLE))
    strata_loop_seconds = (time.perf_counter() - start) * COMPARISONS / LOOP_SAMPLE
    assert np.allclose(stratified.abs_ci_low[:LOOP_SAMPLE], reference, rtol=1e-9, atol=1e-12), "strata disagree"
    hist_c, hist_t = make_histograms(rng, COMPARISONS)
    compare_quantiles(hist_c[:10], hist_t[:10], 0.5)
    start = time.perf_counter()
    medians = compare_quantiles(hist_c, hist_t, 0.5)
    quantile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    quantile_reference = quantile_loop(hist_c, hist_t, range(QUANTILE_SAMPLE))
    quantile_loop_seconds = (time.perf_counter() - start) * COMPARISONS / QUANTILE_SAMPLE
    assert np.allclose(medians.abs_ci_low[:QUANTILE_SAMPLE], quantile_reference, rtol=1e-6, atol=1e-9), \
        "quantile loop disagrees"
    line(f"engine: {COMPARISONS:,} CUPED comparisons (mean metric, θ within arms)", cuped_seconds)
    line(f"loop of gbstats regression-adjusted t-tests, scaled from {LOOP_SAMPLE:,}", gb_seconds, None,
         f"engine is {gb_seconds / cuped_seconds:,.0f}× faster")
    line(f"engine: {COMPARISONS:,} post-stratified comparisons (4 strata)", strata_seconds)
    line(f"loop of per-comparison stratified t intervals, scaled from {LOOP_SAMPLE:,}", strata_loop_seconds, None,
         f"engine is {strata_loop_seconds / strata_seconds:,.0f}× faster")
    line(f"engine: {COMPARISONS:,} median comparisons (histograms of {BUCKETS} log buckets)", quantile_seconds)
    line(f"loop of per-comparison median comparisons (numpy + scipy), scaled from {QUANTILE_SAMPLE:,}",
         quantile_loop_seconds,
         None, f"engine is {quantile_loop_seconds / quantile_seconds:,.0f}× faster")
    return {"quantile_seconds": round(quantile_seconds, 3), "quantile_loop_seconds_scaled": round(quantile_loop_seconds, 2),
            "quantile_speedup": round(quantile_loop_seconds / quantile_seconds, 1), "cuped_seconds": round(cuped_seconds, 3), "gbstats_cuped_loop_seconds_scaled": round(gb_seconds, 2),
            "cuped_speedup_vs_gbstats": round(gb_seconds / cuped_seconds, 1),
            "post_stratified_seconds": round(strata_seconds, 3),
            "post_stratified_loop_seconds_scaled": round(strata_loop_seconds, 2),
            "post_stratified_speedup": round(strata_loop_seconds / strata_seconds, 1)}


def bench_experiments(line) -> dict:
    rng = np.random.default_rng(5)
    control, treatment = make_inputs(rng, COMPARISONS)
    compare(control, treatment, "proportion")  # warm-up (imports, first allocation)
    start = time.perf_counter()
    result = compare(control, treatment, "proportion", sequential=True, bayesian=True)
    engine = time.perf_counter() - start
    start = time.perf_counter()
    reference = loop(control, treatment, range(LOOP_SAMPLE))
    loop_seconds = (time.perf_counter() - start) * COMPARISONS / LOOP_SAMPLE
    p_ref = np.array([r[0] for r in reference])
    assert np.allclose(result.p_value[:LOOP_SAMPLE], p_ref, rtol=1e-6, atol=1e-12), "engine and loop disagree"
    rel_low = np.array([r[1] for r in reference])
    assert np.allclose(result.rel_ci_low[:LOOP_SAMPLE], rel_low, rtol=1e-6, atol=1e-9), "relative intervals disagree"
    win = np.array([r[4] for r in reference])
    assert np.allclose(result.chance_to_win[:LOOP_SAMPLE], win, atol=1e-9), "chance to win disagrees"
    gb_seconds, gb = gbstats_loop(control, treatment, range(LOOP_SAMPLE))
    gb_seconds *= COMPARISONS / LOOP_SAMPLE
    assert np.allclose(result.rel_lift[:LOOP_SAMPLE], [g["estimate"] for g in gb], rtol=1e-9), "gbstats disagrees"
    line(f"engine: {COMPARISONS:,} comparisons (fixed, sequential, Bayesian)", engine)
    line(f"loop of scipy calls, scaled from {LOOP_SAMPLE:,}", loop_seconds, None, f"engine is {loop_seconds / engine:,.0f}× faster")
    line(f"loop of gbstats t-tests (relative), scaled from {LOOP_SAMPLE:,}", gb_seconds, None,
         f"engine is {gb_seconds / engine:,.0f}× faster")
    more = bench_more(line, rng)
    total = engine + more["cuped_seconds"] + more["post_stratified_seconds"] + more["quantile_seconds"]
    line(f"engine: all four, {4 * COMPARISONS:,} comparisons", total, None, "target < 1 s")
    return {"comparisons": COMPARISONS, "engine_seconds": round(engine, 3), "loop_seconds_scaled": round(loop_seconds, 2),
            "speedup": round(loop_seconds / engine, 1), "gbstats_loop_seconds_scaled": round(gb_seconds, 2),
            "speedup_vs_gbstats": round(gb_seconds / engine, 1), **more, "engine_total_seconds": round(total, 3)}
