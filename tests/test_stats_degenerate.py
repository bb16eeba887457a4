"""Degenerate input returns a result with an explicit reason: never an exception, never a silent NaN."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiments import SampleStats, compare

MAIN_FIELDS = ("abs_effect", "abs_ci_low", "abs_ci_high", "p_value", "rel_lift", "rel_ci_low", "rel_ci_high", "rel_p_value")


def test_empty_arm_is_reported_as_no_units():
    r = compare(SampleStats(0, 0, 0), SampleStats(100, 10, 10), "proportion", sequential=True, bayesian=True)
    assert r.reason == "no_units"
    assert np.isnan(r.p_value) and np.isnan(r.seq_p_value) and np.isnan(r.chance_to_win)


def test_single_unit_arm_is_reported_as_too_few_units():
    r = compare(SampleStats(1, 1, 1), SampleStats(100, 10, 10), "proportion")
    assert r.reason == "too_few_units"
    assert np.isnan(r.p_value)


def test_two_constant_arms_are_reported_as_zero_variance_with_exact_effect():
    r = compare(SampleStats(50, 50, 50), SampleStats(60, 0, 0), "proportion")
    assert r.reason == "zero_variance"
    assert r.abs_effect == pytest.approx(-1.0)
    assert np.isnan(r.p_value)


def test_zero_control_mean_leaves_absolute_test_valid_and_relative_undefined():
    r = compare(SampleStats(1000, 0, 0), SampleStats(1000, 5, 5), "proportion", bayesian=True)
    sd_t = np.sqrt((5 - 5**2 / 1000) / 999)
    expected = stats.ttest_ind_from_stats(0.005, sd_t, 1000, 0.0, 0.0, 1000, equal_var=False).pvalue
    assert r.reason == "zero_control_mean"
    assert r.p_value == pytest.approx(expected, rel=1e-9)
    assert np.isnan(r.rel_lift) and np.isnan(r.rel_p_value) and np.isnan(r.chance_to_win)


def test_ratio_with_zero_denominator_is_reported():
    zero = SampleStats(n=10, sum_x=0, sum_x2=0, sum_y=0, sum_y2=0, sum_xy=0)
    fine = SampleStats(n=10, sum_x=3, sum_x2=3, sum_y=20, sum_y2=50, sum_xy=7)
    r = compare(zero, fine, "ratio")
    assert r.reason == "zero_denominator"


def test_inconsistent_sums_are_reported_as_negative_variance():
    r = compare(SampleStats(100, 50, 10), SampleStats(100, 50, 40), "mean")  # Σx² < (Σx)²/n in control
    assert r.reason == "negative_variance"


def test_every_nan_in_a_mixed_batch_has_a_reason():
    n_c = np.array([0, 1, 100, 100, 1000, 500])
    s_c = np.array([0, 1, 100, 0, 100, 40])
    n_t = np.array([10, 100, 100, 100, 1000, 500])
    s_t = np.array([3, 10, 100, 4, 130, 60])
    r = compare(SampleStats(n_c, s_c), SampleStats(n_t, s_t), "proportion")
    for i in range(len(r)):
        has_nan = any(np.isnan(getattr(r, f)[i]) for f in MAIN_FIELDS)
        assert has_nan == (r.reason[i] != ""), (i, r.reason[i])
    assert list(r.reason) == ["no_units", "too_few_units", "zero_variance", "zero_control_mean", "", ""]


def test_vectorised_rows_equal_one_at_a_time_results():
    n_c, s_c, n_t, s_t = [1000, 0, 2000], [100, 0, 300], [1000, 50, 2100], [120, 5, 290]
    batch = compare(SampleStats(np.array(n_c), np.array(s_c)), SampleStats(np.array(n_t), np.array(s_t)), "proportion")
    for i in (0, 2):
        one = compare(SampleStats(n_c[i], s_c[i]), SampleStats(n_t[i], s_t[i]), "proportion")
        assert batch.p_value[i] == one.p_value
        assert batch.rel_ci_high[i] == one.rel_ci_high
