"""CUPED for ratio metrics (clicks per delivered message with pre-period clicks as the covariate):
the slope and the adjusted effect against an OLS of the ratio's linearisation on the covariate
from unit rows, and coverage over 10,000 simulated experiments."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from experiments.compare import compare
from experiments.statistics import SampleStats


def stats_of(x, y, z) -> SampleStats:
    return SampleStats(x.shape[-1] * np.ones(x.shape[:-1]), x.sum(-1), (x * x).sum(-1), y.sum(-1), (y * y).sum(-1),
                       (x * y).sum(-1), z.sum(-1), (z * z).sum(-1), (x * z).sum(-1), (y * z).sum(-1))


def arm(rng, shape, lift):
    propensity = rng.beta(2.0, 18.0, shape)
    delivered = 1.0 + rng.poisson(3.0, shape)
    clicks = rng.binomial(delivered.astype(int), np.minimum(propensity * lift, 1.0)).astype(float)
    pre_clicks = rng.poisson(40.0 * propensity).astype(float)
    return clicks, delivered, pre_clicks


def test_the_adjusted_effect_equals_an_ols_of_the_linearised_ratio_on_the_covariate():
    rng = np.random.default_rng(51)
    (xc, yc, zc), (xt, yt, zt) = arm(rng, 3000, 1.0), arm(rng, 2800, 1.15)
    ours = compare(stats_of(xc, yc, zc), stats_of(xt, yt, zt), "ratio", cuped=True).row(0)
    lin = [(x - x.sum() / y.sum() * y) / y.mean() for x, y in ((xc, yc), (xt, yt))]
    t = np.r_[np.zeros(xc.size), np.ones(xt.size)]
    fit = sm.OLS(np.r_[lin[0], lin[1]], np.column_stack([np.ones(t.size), t, np.r_[zc, zt]])).fit()
    assert ours["cuped_theta"] == pytest.approx(fit.params[2], rel=1e-9)
    raw = xt.sum() / yt.sum() - xc.sum() / yc.sum()
    assert ours["abs_effect"] == pytest.approx(raw - fit.params[2] * (zt.mean() - zc.mean()), rel=1e-9)
    assert ours["variance_reduction"] > 0.1          # pre-period clicks explain part of the spread
    plain = compare(stats_of(xc, yc, zc), stats_of(xt, yt, zt), "ratio").row(0)
    assert ours["abs_se"] < plain["abs_se"]


def test_cuped_ratio_intervals_cover_95_percent_of_the_time():
    rng = np.random.default_rng(52)
    runs, chunk, n = 10_000, 500, 1500
    covered_abs = covered_rel = 0
    truth_abs, truth_rel = 0.1 * 1.1 - 0.1, 0.1
    for _ in range(runs // chunk):
        control, treatment = (stats_of(*arm(rng, (chunk, n), lift)) for lift in (1.0, 1.1))
        result = compare(control, treatment, "ratio", cuped=True)
        covered_abs += int(((result.abs_ci_low <= truth_abs) & (truth_abs <= result.abs_ci_high)).sum())
        covered_rel += int(((result.rel_ci_low <= truth_rel) & (truth_rel <= result.rel_ci_high)).sum())
    assert 0.94 <= covered_abs / runs <= 0.96, covered_abs / runs
    assert 0.94 <= covered_rel / runs <= 0.96, covered_rel / runs
