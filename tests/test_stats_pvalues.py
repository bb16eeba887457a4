"""P-values come from survival functions: tiny p-values stay positive and accurate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiments import SampleStats, compare


def test_huge_effect_p_value_is_positive_and_matches_scipy():
    r = compare(SampleStats(10_000, 1_000), SampleStats(10_000, 3_000), "proportion")
    sd_c, sd_t = np.sqrt(0.09 * 10_000 / 9_999), np.sqrt(0.21 * 10_000 / 9_999)
    expected = stats.ttest_ind_from_stats(0.3, sd_t, 10_000, 0.1, sd_c, 10_000, equal_var=False).pvalue
    assert 0 < expected < 1e-200
    assert r.p_value == pytest.approx(expected, rel=1e-6)


def test_relative_p_value_of_huge_effect_is_positive():
    r = compare(SampleStats(10_000, 1_000), SampleStats(10_000, 3_000), "proportion")
    assert 0 < r.rel_p_value < 1e-50


def test_sequential_p_value_of_huge_effect_is_positive():
    r = compare(SampleStats(100_000, 10_000), SampleStats(100_000, 11_500), "proportion", sequential=True)
    assert 0 < r.seq_p_value < 1e-20


def test_a_constant_zero_treatment_arm_gives_a_named_reason_not_a_silent_nan():
    from experiments import SampleStats, compare

    result = compare(SampleStats(1000, 100, 100), SampleStats(1000, 0, 0), "proportion").row(0)
    assert result["reason"] == "zero_relative_variance"
    assert result["rel_lift"] == -1.0
    assert result["rel_ci_low"] is None and result["rel_p_value"] is None
    assert result["p_value"] is not None and result["p_value"] < 1e-10  # the absolute test still stands
