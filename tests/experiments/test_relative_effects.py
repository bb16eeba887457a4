"""Relative lifts: the sign follows the absolute effect whatever the control's sign, and CUPED's
relative interval counts that both adjusted means share the pooled covariate mean (issue 17's two
interval defects). References are derived here independently: the convention (m_t − m_c)/|m_c|,
a numerical delta method over the four arm means with their full covariance, and simulation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from experiments import SampleStats, compare, non_inferiority


def _arm(n: int, x_mean: float, y_mean: float, sxx: float, syy: float, sxy: float) -> SampleStats:
    return SampleStats(n, n * x_mean, (n - 1) * sxx + n * x_mean**2, n * y_mean, (n - 1) * syy + n * y_mean**2,
                       (n - 1) * sxy + n * x_mean * y_mean)


def test_a_negative_control_mean_gives_a_lift_with_the_sign_of_the_effect():
    control, treatment = SampleStats(1000, -10000, 104000), SampleStats(1000, -5000, 29000)
    result = compare(control, treatment, bayesian=True, sequential=True)
    row = result.row(0)
    m_c, m_t = -10.0, -5.0
    assert row["abs_effect"] == pytest.approx(5.0)
    assert row["rel_lift"] == pytest.approx((m_t - m_c) / abs(m_c))  # +0.5: the metric improved
    assert row["rel_ci_low"] < row["rel_lift"] < row["rel_ci_high"] and row["rel_ci_low"] > 0
    assert row["seq_rel_ci_low"] < 0.5 < row["seq_rel_ci_high"]
    assert row["chance_to_win"] > 0.99 and row["expected_loss"] < 1e-6
    assert bool(np.ravel(non_inferiority(result, 0.02).passed)[0])


def test_a_positive_control_mean_keeps_the_familiar_ratio_minus_one():
    result = compare(SampleStats(500, 5000, 60000), SampleStats(500, 5500, 70000))
    assert result.row(0)["rel_lift"] == pytest.approx(11.0 / 10.0 - 1.0)


@pytest.mark.parametrize("control, treatment", [
    (SampleStats(10, 0, 5), SampleStats(10, 3, 3)),  # a mean of 0 with spread: the relative interval is undefined
    (SampleStats(100, 0, 50), SampleStats(100, 30, 40)),
])
def test_a_zero_control_mean_does_not_warn_even_with_warnings_as_errors(control, treatment):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = compare(control, treatment, "mean").row(0)
    assert row["reason"] == "zero_control_mean" and row["rel_lift"] is None and row["abs_effect"] is not None


def _delta_method_se(n: int, means: dict, sxx: float, syy: float, sxy: float, theta: float) -> float:
    """SE of the CUPED relative lift by a numerical gradient over (x̄_c, ȳ_c, x̄_t, ȳ_t), θ fixed."""
    w = 0.5

    def lift(v: np.ndarray) -> float:
        xc, yc, xt, yt = v
        y_all = w * yc + w * yt
        mc, mt = xc - theta * (yc - y_all), xt - theta * (yt - y_all)
        return (mt - mc) / abs(mc)

    point = np.array([means["xc"], means["yc"], means["xt"], means["yt"]])
    grad = np.array([(lift(point + h) - lift(point - h)) / 2e-6 for h in np.eye(4) * 1e-6])
    arm = np.array([[sxx, sxy], [sxy, syy]]) / n
    cov = np.zeros((4, 4))
    cov[:2, :2] = cov[2:, 2:] = arm  # the two arms are independent samples
    return float(np.sqrt(grad @ cov @ grad))


def test_cuped_relative_se_matches_the_delta_method_with_the_shared_covariate_mean():
    n, sxx, syy, sxy = 2000, 9.1849, 9.0, 9.0
    result = compare(_arm(n, 10, 10, sxx, syy, sxy), _arm(n, 12, 10, sxx, syy, sxy), "mean", cuped=True)
    expected = _delta_method_se(n, {"xc": 10, "yc": 10, "xt": 12, "yt": 10}, sxx, syy, sxy, theta=1.0)
    assert expected == pytest.approx(0.001776, abs=5e-7)  # the figure in the issue
    assert result.row(0)["rel_se"] == pytest.approx(expected, rel=1e-6)


def test_cuped_relative_se_matches_the_delta_method_when_the_covariate_differs_between_arms():
    n, sxx, syy, sxy = 1500, 16.0, 9.0, 10.0
    result = compare(_arm(n, 20, 9.5, sxx, syy, sxy), _arm(n, 21, 10.5, sxx, syy, sxy), "mean", cuped=True)
    theta = float(result.row(0)["cuped_theta"])
    expected = _delta_method_se(n, {"xc": 20, "yc": 9.5, "xt": 21, "yt": 10.5}, sxx, syy, sxy, theta)
    assert result.row(0)["rel_se"] == pytest.approx(expected, rel=1e-6)


def test_cuped_relative_interval_covers_the_true_lift_95_percent_of_the_time():
    rng = np.random.default_rng(20_26)
    n, runs, chunk = 2000, 20_000, 1000
    covered = 0
    for _ in range(runs // chunk):
        sums = []
        for mu in (10.0, 12.0):
            y = rng.normal(10.0, 3.0, (chunk, n))
            x = mu + (y - 10.0) + rng.normal(0.0, np.sqrt(0.1849), (chunk, n))
            sums.append(SampleStats(np.full(chunk, float(n)), x.sum(1), (x * x).sum(1), y.sum(1), (y * y).sum(1),
                                    (x * y).sum(1)))
        result = compare(sums[0], sums[1], "mean", cuped=True)
        covered += int(((result.rel_ci_low <= 0.2) & (0.2 <= result.rel_ci_high)).sum())
    coverage = covered / runs
    assert 0.94 <= coverage <= 0.96, coverage
