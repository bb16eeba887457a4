"""Always-valid confidence sequences: owners may look every day without inflating false positives."""

from __future__ import annotations

import numpy as np

from experiments import SampleStats, compare

DAYS, PER_DAY, SIMS, RATE = 28, 150, 2000, 0.1


def _daily_aa_looks(seed: int):
    """Cumulative A/A statistics per simulation and day (Bernoulli arms with the same rate)."""
    rng = np.random.default_rng(seed)
    conv_c = rng.binomial(PER_DAY, RATE, (SIMS, DAYS)).cumsum(1).astype(float)
    conv_t = rng.binomial(PER_DAY, RATE, (SIMS, DAYS)).cumsum(1).astype(float)
    n = np.broadcast_to(PER_DAY * np.arange(1, DAYS + 1, dtype=float), (SIMS, DAYS))
    return compare(SampleStats(n, conv_c), SampleStats(n, conv_t), "proportion", sequential=True)


def test_sequential_false_positive_rate_under_daily_peeking_stays_below_alpha():
    r = _daily_aa_looks(31)
    ever_rejected = (r.seq_p_value < 0.05).any(axis=1)
    assert ever_rejected.mean() <= 0.05


def test_fixed_horizon_p_value_under_daily_peeking_inflates_false_positives():
    r = _daily_aa_looks(31)
    assert (r.p_value < 0.05).any(axis=1).mean() > 0.10


def test_sequential_p_value_below_alpha_exactly_when_sequence_excludes_zero():
    rng = np.random.default_rng(5)
    n = rng.integers(200, 20000, 5000).astype(float)
    c, t = rng.binomial(n.astype(int), 0.1), rng.binomial(n.astype(int), 0.1 * rng.uniform(0.9, 1.2, n.size))
    r = compare(SampleStats(n, c), SampleStats(n, t), "proportion", sequential=True)
    excludes_zero = (r.seq_ci_low > 0) | (r.seq_ci_high < 0)
    assert np.array_equal(r.seq_p_value < 0.05, excludes_zero)


def test_confidence_sequence_is_wider_than_fixed_horizon_interval():
    r = compare(SampleStats(10_000, 1_000), SampleStats(10_000, 1_100), "proportion", sequential=True)
    assert r.seq_ci_low < r.abs_ci_low and r.seq_ci_high > r.abs_ci_high
