"""Ratio metrics (e.g. clicks per delivered message with the user as unit) by the delta method."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import SampleStats, compare

RNG_SEED = 20240611


def _users(rng: np.random.Generator, n: int, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-user delivered messages and clicks, with user-level heterogeneity in click propensity."""
    delivered = rng.poisson(4.0, n) + 1
    propensity = rng.beta(2.0, 2.0 * (1 - p) / p, n)
    return rng.binomial(delivered, propensity).astype(float), delivered.astype(float)


def test_ratio_standard_error_equals_per_user_linearisation():
    rng = np.random.default_rng(RNG_SEED)
    (xc, yc), (xt, yt) = _users(rng, 3000, 0.1), _users(rng, 3000, 0.12)

    def var_of_ratio(x: np.ndarray, y: np.ndarray) -> float:
        r = x.sum() / y.sum()
        z = (x - r * y) / y.mean()  # influence of each user on the ratio
        return z.var(ddof=1) / x.size

    expected_se = np.sqrt(var_of_ratio(xc, yc) + var_of_ratio(xt, yt))
    r = compare(SampleStats.from_values(xc, yc), SampleStats.from_values(xt, yt), "ratio")
    assert r.abs_effect == pytest.approx(xt.sum() / yt.sum() - xc.sum() / yc.sum(), rel=1e-12)
    assert r.abs_se == pytest.approx(expected_se, rel=1e-9)


def test_ratio_interval_covers_the_true_difference_at_nominal_rate():
    rng = np.random.default_rng(RNG_SEED + 1)
    sims, n = 2000, 400
    arms = []
    for p in (0.10, 0.12):
        delivered = rng.poisson(4.0, (sims, n)) + 1.0
        propensity = rng.beta(2.0, 2.0 * (1 - p) / p, (sims, n))
        clicks = rng.binomial(delivered.astype(int), propensity).astype(float)
        arms.append(SampleStats(np.full(sims, float(n)), clicks.sum(1), (clicks**2).sum(1), delivered.sum(1),
                                (delivered**2).sum(1), (clicks * delivered).sum(1)))
    r = compare(arms[0], arms[1], "ratio")
    covered = np.mean((r.abs_ci_low <= 0.02) & (0.02 <= r.abs_ci_high))
    assert abs(covered - 0.95) < 3 * np.sqrt(0.95 * 0.05 / sims)
