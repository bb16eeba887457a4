"""Sample-ratio mismatch against the planned weights: fail at p < 0.001, warn at p < 0.01."""

from __future__ import annotations

import pytest
from scipy import stats

from experiments import srm_check


def test_strong_mismatch_fails():
    srm = srm_check([10_000, 10_600])
    assert srm.p_value == pytest.approx(stats.chisquare([10_000, 10_600]).pvalue, rel=1e-12)
    assert srm.p_value < 0.001 and srm.status == "fail"


def test_moderate_mismatch_warns():
    srm = srm_check([10_000, 10_400])
    assert 0.001 <= srm.p_value < 0.01 and srm.status == "warn"


def test_unequal_planned_split_is_not_a_false_alarm():
    assert srm_check([20_100, 79_900], [0.2, 0.8]).status == "ok"
    assert srm_check([20_100, 79_900]).status == "fail"


def test_three_arm_weights_match_scipy_chisquare():
    counts, weights = [5_100, 2_400, 2_600], [0.5, 0.25, 0.25]
    expected = stats.chisquare(counts, [w * sum(counts) for w in weights]).pvalue
    assert srm_check(counts, weights).p_value == pytest.approx(expected, rel=1e-12)


def test_too_few_units_is_not_decisive_and_says_why():
    srm = srm_check([3, 1])
    assert srm.status == "ok" and srm.reason.startswith("too_few_units")


def test_empty_arm_with_many_expected_units_fails():
    assert srm_check([0, 1_000]).status == "fail"
