"""CUPED with more than two arms: one slope pooled within every arm (the k-arm ANCOVA's), the same
for every comparison with the control, and each adjusted effect equal to the ANCOVA coefficient."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from experiments.analysis import Evidence, analyse
from experiments.compare import compare
from experiments.definition import Definition
from experiments.statistics import SampleStats, pooled_theta


def test_the_pooled_slope_and_the_adjusted_effects_equal_the_k_arm_ancova():
    rng = np.random.default_rng(41)
    arms = {"a": (1200, 0.0), "b": (1100, 0.4), "c": (1300, -0.2), "d": (900, 0.7)}
    xs, ys, labels, stats = [], [], [], {}
    for name, (n, lift) in arms.items():
        y = rng.normal(10.0, 3.0, n)
        x = 5.0 + lift + 0.7 * (y - 10.0) + rng.normal(0.0, 2.0, n)
        xs.append(x)
        ys.append(y)
        labels += [name] * n
        stats[name] = SampleStats.from_values(x, y)
    x, y, labels = np.concatenate(xs), np.concatenate(ys), np.array(labels)
    dummies = np.column_stack([(labels == name).astype(float) for name in "bcd"])
    fit = sm.OLS(x, np.column_stack([np.ones(x.size), dummies, y])).fit()
    theta = float(pooled_theta(list(stats.values())))
    assert theta == pytest.approx(fit.params[-1], rel=1e-10)
    for i, name in enumerate("bcd"):
        effect = compare(stats["a"], stats[name], "mean", cuped=True, theta=theta).row(0)
        assert effect["cuped_theta"] == pytest.approx(theta)
        assert effect["abs_effect"] == pytest.approx(fit.params[1 + i], rel=1e-9)


def test_the_analysis_adjusts_every_comparison_of_a_four_arm_experiment_by_one_slope():
    rng = np.random.default_rng(42)
    sums, units = {}, {}
    for name, lift in (("a", 0.0), ("b", 0.3), ("c", 0.0), ("d", 0.5)):
        y = rng.normal(10.0, 3.0, 2000)
        x = 5.0 + lift + 0.7 * (y - 10.0) + rng.normal(0.0, 2.0, 2000)
        s = SampleStats.from_values(x, y)
        sums[(name, "revenue", "overall", "(all)")] = tuple(float(v) for v in (s.n, s.sum_x, s.sum_x2, s.sum_y,
                                                                                s.sum_y2, s.sum_xy))
        units[name] = 2000
    evidence = Evidence({"revenue": "mean"}, sums, units, cuped={"revenue": True})
    analysis = analyse(Definition("e", "a", ("a", "b", "c", "d"), ("revenue",)), evidence)
    thetas = {r["engine"]["cuped_theta"] for r in analysis.overall("primary")}
    assert len(thetas) == 1 and 0.6 < thetas.pop() < 0.8


def test_with_one_pooled_slope_every_comparison_of_four_arms_covers_95_percent_of_the_time():
    """10,000 simulated four-arm experiments from exact sufficient statistics (normal pairs): the
    absolute and relative CUPED intervals of each treatment against the control, with θ pooled over
    all four arms."""
    rng = np.random.default_rng(43)
    runs, n, lifts = 10_000, 1500, (0.0, 0.3, 0.0, 0.5)
    arms = []
    for lift in lifts:
        ybar = rng.normal(10.0, 3.0 / np.sqrt(n), runs)
        ebar = rng.normal(0.0, 2.0 / np.sqrt(n), runs)
        syy = 9.0 * rng.chisquare(n - 1, runs)
        sye = rng.normal(0.0, np.sqrt(syy * 4.0))
        see = 4.0 * rng.chisquare(n - 1, runs)
        xbar = 5.0 + lift + 0.7 * (ybar - 10.0) + ebar
        sxx, sxy = 0.49 * syy + 1.4 * sye + see, 0.7 * syy + sye
        arms.append(SampleStats(np.full(runs, float(n)), n * xbar, sxx + n * xbar**2, n * ybar, syy + n * ybar**2,
                                sxy + n * xbar * ybar))
    theta = pooled_theta(arms)
    for arm, lift in zip(arms[1:], lifts[1:]):
        result = compare(arms[0], arm, "mean", cuped=True, theta=theta)
        covered = (result.abs_ci_low <= lift) & (lift <= result.abs_ci_high)
        assert 0.94 <= covered.mean() <= 0.96, (lift, covered.mean())
        rel = (result.rel_ci_low <= lift / 5.0) & (lift / 5.0 <= result.rel_ci_high)
        assert 0.94 <= rel.mean() <= 0.96, (lift, rel.mean())
