"""Power, minimum detectable effect and sample size for proportion and mean metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from experiments import mde, power, sample_size


def test_mean_metric_power_matches_statsmodels():
    expected = NormalIndPower().power(effect_size=0.5 / 4.0, nobs1=800, alpha=0.05, ratio=1.5)
    assert power(0.5, 800, baseline=20.0, metric_type="mean", std=4.0, ratio=1.5) == pytest.approx(expected, rel=1e-9)


def test_proportion_power_matches_unpooled_closed_form():
    p0, p1, n = 0.10, 0.11, 10_000
    se = np.sqrt(p0 * (1 - p0) / n + p1 * (1 - p1) / n)
    z = stats.norm.isf(0.025)
    expected = stats.norm.cdf(0.01 / se - z) + stats.norm.cdf(-0.01 / se - z)
    assert power(0.01, n, baseline=p0) == pytest.approx(expected, rel=1e-9)


def test_mean_sample_size_matches_statsmodels_rounded_up():
    n_float = NormalIndPower().solve_power(effect_size=0.1, alpha=0.05, power=0.8, ratio=1.0)
    assert sample_size(0.2, baseline=5.0, metric_type="mean", std=2.0) == int(np.ceil(n_float))


def test_proportion_sample_size_is_the_smallest_that_reaches_power():
    n = int(sample_size(0.1, baseline=0.05, relative=True, power=0.8))
    assert power(0.1, n, baseline=0.05, relative=True) >= 0.8
    assert power(0.1, n - 1, baseline=0.05, relative=True) < 0.8


def test_mean_mde_has_the_target_power_by_statsmodels():
    effect = float(mde(2_000, baseline=5.0, metric_type="mean", std=2.0, power=0.9))
    assert NormalIndPower().power(effect_size=effect / 2.0, nobs1=2_000, alpha=0.05, ratio=1.0) == pytest.approx(0.9, abs=1e-9)


def test_proportion_mde_gives_the_target_power():
    effect = mde(5_000, baseline=0.2, power=0.8, direction=-1)
    assert effect < 0
    assert power(effect, 5_000, baseline=0.2) == pytest.approx(0.8, abs=1e-9)


def test_unreachable_proportion_mde_is_nan():
    assert np.isnan(mde(3, baseline=0.5, power=0.99))


def test_invalid_baseline_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        power(0.01, 1000, baseline=1.2)
