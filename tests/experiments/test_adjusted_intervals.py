"""Intervals adjusted for multiple testing: Bonferroni's simultaneous intervals for a Holm family
(all cover together ≥ 95 %, simulated), Benjamini–Yekutieli's false-coverage-rate intervals for a
BH family (≤ 5 % of the selected miss, simulated, and they exclude 0 exactly when BH rejects)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.analysis import Evidence, Options, analyse
from experiments.compare import compare
from experiments.definition import Definition
from experiments.frequentist import interval
from experiments.multiple import adjust, interval_alpha
from experiments.statistics import SampleStats


def family(rng, runs: int, lifts: np.ndarray, n: int = 4000, base: float = 0.1):
    """(runs × m) comparisons of proportions with the given true absolute lifts."""
    m = lifts.size
    k_c = rng.binomial(n, base, (runs, m)).astype(float)
    k_t = rng.binomial(n, base + lifts, (runs, m)).astype(float)
    full = np.full((runs, m), float(n))
    return compare(SampleStats(full, k_c, k_c), SampleStats(full, k_t, k_t), "proportion")


def test_bonferroni_intervals_of_a_holm_family_cover_all_effects_together_95_percent_of_the_time():
    rng = np.random.default_rng(31)
    lifts = np.array([0.0, 0.0, 0.01, 0.02, 0.0])
    result = family(rng, 10_000, lifts)
    level = interval_alpha(np.full(5, 0.5), "holm", 0.05)
    assert level == pytest.approx(0.01)
    from experiments.frequentist import Effect

    low, high = interval(Effect(result.abs_effect, result.abs_se, result.df), level)
    together = ((low <= lifts) & (lifts <= high)).all(axis=1).mean()
    assert 0.94 <= together <= 0.96, together
    # unadjusted intervals cover all five together far less often
    single = ((result.abs_ci_low <= lifts) & (lifts <= result.abs_ci_high)).all(axis=1).mean()
    assert single < 0.8


def test_fcr_intervals_of_a_bh_family_miss_at_most_five_percent_of_the_selected():
    rng = np.random.default_rng(32)
    lifts = np.array([0.0] * 5 + [0.015, 0.02, 0.025, 0.01, 0.03])
    result = family(rng, 10_000, lifts)
    from experiments.frequentist import Effect

    misses = []
    for i in range(10_000):
        p = result.p_value[i]
        selected = adjust(p, "bh") < 0.05
        if not selected.any():
            misses.append(0.0)
            continue
        level = interval_alpha(p, "bh", 0.05)
        low, high = interval(Effect(result.abs_effect[i], result.abs_se[i], result.df[i]), level)
        missed = selected & ~((low <= lifts) & (lifts <= high))
        misses.append(missed.sum() / selected.sum())
        # BH's decisions and the FCR intervals agree: selected exactly when the interval excludes 0
        assert np.array_equal(selected, (low > 0) | (high < 0))
    fcr = float(np.mean(misses))
    assert fcr <= 0.05, fcr


def test_the_analysis_stores_adjusted_intervals_that_agree_with_its_bh_decisions():
    rng = np.random.default_rng(33)
    metrics = [f"m{i}" for i in range(6)]
    sums, lifts = {}, [0.0, 0.0, 0.004, 0.012, 0.02, 0.03]
    for metric, lift in zip(metrics, lifts):
        for arm, p in (("a", 0.1), ("b", 0.1 + lift)):
            k = float(rng.binomial(20_000, p))
            sums[(arm, metric, "overall", "(all)")] = (20_000.0, k, k, 0.0, 0.0, 0.0)
    evidence = Evidence({m: "proportion" for m in metrics}, sums, {"a": 20_000, "b": 20_000},
                        cuped={m: False for m in metrics})
    analysis = analyse(Definition("e", "a", ("a", "b"), tuple(metrics)), evidence, Options(goal_correction="bh"))
    goal = analysis.overall("primary")
    rejected = sum(r["significant"] for r in goal)
    assert 0 < rejected < len(goal)
    for r in goal:
        assert r["adj_ci_alpha"] == pytest.approx(rejected * 0.05 / len(goal))
        assert r["significant"] == (r["adj_abs_ci_low"] > 0 or r["adj_abs_ci_high"] < 0)
        assert r["adj_rel_ci_low"] <= r["rel_ci_low"] and r["adj_rel_ci_high"] >= r["rel_ci_high"]
