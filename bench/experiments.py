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


def gbstats_loop(control: SampleStats, treatment: SampleStats, idx: range) -> tuple[float, list[dict]]:
    """gbstats' two-sided t-test on the relative lift, one comparison at a time: (seconds, results)."""
    if not GBSTATS.exists():
        raise RuntimeError("gbstats' environment is missing: `make references` creates it")
    cases = [{"kind": "mean", "test": "two-sided", "relative": True,
              "a": {"n": float(control.n[i]), "sum": float(control.sum_x[i]), "sum_squares": float(control.sum_x2[i])},
              "b": {"n": float(treatment.n[i]), "sum": float(treatment.sum_x[i]),
                    "sum_squares": float(treatment.sum_x2[i])}} for i in idx]
    done = subprocess.run([str(GBSTATS), str(GBSTATS_RUNNER), "--timed"], input=json.dumps(cases), text=True,
                          capture_output=True, timeout=600, check=True)
    out = json.loads(done.stdout)
    return out["seconds"], out["results"]


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
    return {"comparisons": COMPARISONS, "engine_seconds": round(engine, 3), "loop_seconds_scaled": round(loop_seconds, 2),
            "speedup": round(loop_seconds / engine, 1), "gbstats_loop_seconds_scaled": round(gb_seconds, 2),
            "speedup_vs_gbstats": round(gb_seconds / engine, 1)}
