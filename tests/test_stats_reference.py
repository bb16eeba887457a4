"""The published reference case: 10,000 / 1,000 conversions vs 10,000 / 1,100 at α = 0.05, and SRM 10,000 vs 10,300."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiments import SampleStats, compare, srm_check

CONTROL = SampleStats(n=10_000, sum_x=1_000)
TREATMENT = SampleStats(n=10_000, sum_x=1_100)


@pytest.fixture(scope="module")
def result():
    return compare(CONTROL, TREATMENT, "proportion", alpha=0.05, sequential=True, n_star=5000, bayesian=True)


def test_absolute_difference_is_one_point(result):
    assert result.abs_effect == pytest.approx(0.0100, abs=1e-12)


def test_welch_p_value_matches_reference_and_scipy(result):
    sd_c, sd_t = np.sqrt(0.1 * 0.9 * 10_000 / 9_999), np.sqrt(0.11 * 0.89 * 10_000 / 9_999)
    scipy_p = stats.ttest_ind_from_stats(0.11, sd_t, 10_000, 0.1, sd_c, 10_000, equal_var=False).pvalue
    assert result.p_value == pytest.approx(0.02107, abs=1e-5)
    assert result.p_value == pytest.approx(scipy_p, rel=1e-9)


def test_absolute_confidence_interval(result):
    assert result.abs_ci_low == pytest.approx(0.00150, abs=5e-6)
    assert result.abs_ci_high == pytest.approx(0.01850, abs=5e-6)


def test_relative_lift_is_ten_percent(result):
    assert result.rel_lift == pytest.approx(0.100, abs=1e-12)


def test_relative_interval_uses_delta_method_with_control_variance(result):
    assert result.rel_ci_low == pytest.approx(0.01086, abs=5e-6)
    assert result.rel_ci_high == pytest.approx(0.18914, abs=5e-6)


def test_relative_p_value(result):
    assert result.rel_p_value == pytest.approx(0.02789, abs=1.5e-5)


def test_sequential_relative_p_value_and_confidence_sequence(result):
    assert result.seq_rel_p_value == pytest.approx(0.549, abs=5e-4)
    assert result.seq_rel_ci_low == pytest.approx(-0.0422, abs=5e-5)
    assert result.seq_rel_ci_high == pytest.approx(0.2422, abs=5e-5)


def test_bayesian_flat_prior_chance_to_win(result):
    assert result.chance_to_win == pytest.approx(0.98606, abs=5e-6)


def test_srm_of_10000_vs_10300_at_even_split():
    srm = srm_check([10_000, 10_300], [0.5, 0.5])
    assert srm.p_value == pytest.approx(0.03524, abs=5e-6)
    assert srm.p_value == pytest.approx(stats.chisquare([10_000, 10_300]).pvalue, rel=1e-12)
    assert srm.status == "ok"
