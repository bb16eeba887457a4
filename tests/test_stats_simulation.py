"""A/A false-positive rate and coverage of a planted effect, by seeded, vectorised simulation."""

from __future__ import annotations

import numpy as np

from experiments import SampleStats, compare

SIMS = 4000
TOLERANCE = 3 * np.sqrt(0.95 * 0.05 / SIMS)  # three simulation standard errors


def _proportion_arms(seed: int, n: int, rate_c: float, rate_t: float):
    rng = np.random.default_rng(seed)
    size = np.full(SIMS, float(n))
    return SampleStats(size, rng.binomial(n, rate_c, SIMS).astype(float)), SampleStats(size, rng.binomial(n, rate_t, SIMS).astype(float))


def test_aa_false_positive_rate_of_proportions_is_near_alpha():
    control, treatment = _proportion_arms(101, 2_000, 0.08, 0.08)
    rate = np.mean(compare(control, treatment, "proportion").p_value < 0.05)
    assert 0.035 <= rate <= 0.065


def test_aa_false_positive_rate_of_skewed_means_is_near_alpha():
    rng = np.random.default_rng(102)
    stats = []
    for _ in range(2):
        x = rng.lognormal(0.0, 1.0, (2_000, 1_000))
        stats.append(SampleStats(np.full(2_000, 1_000.0), x.sum(1), (x * x).sum(1)))
    rate = np.mean(compare(stats[0], stats[1], "mean").p_value < 0.05)
    assert 0.035 <= rate <= 0.065


def test_absolute_interval_covers_planted_effect_at_nominal_rate():
    control, treatment = _proportion_arms(103, 3_000, 0.10, 0.12)
    r = compare(control, treatment, "proportion")
    covered = np.mean((r.abs_ci_low <= 0.02) & (0.02 <= r.abs_ci_high))
    assert abs(covered - 0.95) <= TOLERANCE


def test_relative_interval_covers_planted_lift_at_nominal_rate():
    control, treatment = _proportion_arms(104, 3_000, 0.10, 0.12)
    r = compare(control, treatment, "proportion")
    covered = np.mean((r.rel_ci_low <= 0.2) & (0.2 <= r.rel_ci_high))
    assert abs(covered - 0.95) <= TOLERANCE


def test_confidence_sequence_covers_planted_effect_at_least_nominally():
    control, treatment = _proportion_arms(105, 3_000, 0.10, 0.12)
    r = compare(control, treatment, "proportion", sequential=True)
    assert np.mean((r.seq_ci_low <= 0.02) & (0.02 <= r.seq_ci_high)) >= 0.95
