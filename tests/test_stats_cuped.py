"""CUPED: regression adjustment by a pre-exposure covariate with θ pooled over arms."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from experiments import SampleStats, compare


def _arms(rng: np.random.Generator, n: int, rho: float, effect: float):
    """Per-unit (metric, covariate) for control and treatment with correlation rho."""
    out = []
    for shift in (0.0, effect):
        pre = rng.normal(10.0, 2.0, n)
        post = 10.0 + shift + rho * (pre - 10.0) + np.sqrt(1 - rho**2) * rng.normal(0.0, 2.0, n)
        out.append((post, pre))
    return out


def test_cuped_effect_equals_ancova_treatment_coefficient():
    rng = np.random.default_rng(11)
    (xc, yc), (xt, yt) = _arms(rng, 4000, 0.7, 0.15)
    design = sm.add_constant(np.column_stack([np.r_[np.zeros(xc.size), np.ones(xt.size)], np.r_[yc, yt]]))
    ols = sm.OLS(np.r_[xc, xt], design).fit(cov_type="HC2")
    r = compare(SampleStats.from_values(xc, yc), SampleStats.from_values(xt, yt), "mean", cuped=True)
    assert r.abs_effect == pytest.approx(ols.params[1], rel=1e-9)
    assert r.cuped_theta == pytest.approx(ols.params[2], rel=1e-9)
    assert r.abs_se == pytest.approx(ols.bse[1], rel=0.02)


def test_cuped_reports_variance_reduction_near_squared_correlation():
    rng = np.random.default_rng(12)
    (xc, yc), (xt, yt) = _arms(rng, 20000, 0.7, 0.0)
    r = compare(SampleStats.from_values(xc, yc), SampleStats.from_values(xt, yt), "mean", cuped=True)
    assert r.variance_reduction == pytest.approx(0.49, abs=0.02)


def test_cuped_interval_is_never_wider_than_unadjusted_with_a_useless_covariate():
    rng = np.random.default_rng(13)
    sims, n = 2000, 50
    stats = []
    for _ in range(2):
        x, y = rng.normal(0, 1, (sims, n)), rng.normal(0, 1, (sims, n))  # covariate independent of the metric
        stats.append(SampleStats(np.full(sims, n), x.sum(1), (x * x).sum(1), y.sum(1), (y * y).sum(1), (x * y).sum(1)))
    adjusted = compare(stats[0], stats[1], "mean", cuped=True)
    plain = compare(stats[0], stats[1], "mean")
    assert np.all(adjusted.abs_ci_high - adjusted.abs_ci_low <= (plain.abs_ci_high - plain.abs_ci_low) * (1 + 1e-12))
    assert np.all(adjusted.variance_reduction >= 0)


def test_cuped_for_a_ratio_metric_is_refused_without_its_covariate():
    s = SampleStats(10, 5, 5, 20, 50, 12)
    with pytest.raises(ValueError, match="ratio"):
        compare(s, s, "ratio", cuped=True)
