"""Quantile metrics from log-bucket histograms: the quantile against numpy's on the raw values
(within a bucket), the order-statistic interval of one arm against scipy's exact binomial ranks,
and the coverage of the difference of medians and of p90s over 10,000 simulated experiments."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiments.quantiles import GROWTH, arm_quantile, bucket_of, compare_quantiles, edges, histogram

BUCKETS = 240   # up to 1.05^240 − 1 ≈ 120,000 s: beyond a day


def test_bucket_edges_match_the_marts_and_the_quantile_is_within_its_bucket_of_numpys():
    assert bucket_of([0.0, 0.049, 0.0501, 1.0, 86400.0]).tolist() == [0, 0, 1, 14, 232]
    assert edges(2).tolist() == pytest.approx([0.0, 0.05, GROWTH**2 - 1])
    rng = np.random.default_rng(5)
    dwell = rng.lognormal(3.0, 1.2, 50_000)
    for q in (0.5, 0.9):
        ours = float(arm_quantile(histogram(dwell, BUCKETS), q).value)
        assert ours == pytest.approx(np.quantile(dwell, q), rel=0.05 / 2)


def test_one_arms_interval_matches_the_exact_order_statistic_ranks():
    rng = np.random.default_rng(6)
    values = np.sort(rng.lognormal(2.0, 1.0, 4000))
    counts = histogram(values, BUCKETS)
    result = arm_quantile(counts, 0.5)
    # exact distribution-free 95 % interval of the median: order statistics at binomial ranks
    lo_rank, hi_rank = stats.binom.ppf([0.025, 0.975], values.size, 0.5).astype(int)
    exact = (values[hi_rank] - values[lo_rank]) / (2 * stats.norm.isf(0.025))
    assert float(result.se) == pytest.approx(exact, rel=0.1)


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_the_interval_of_a_quantile_difference_covers_95_percent_of_the_time(q):
    """Dwell seconds lognormal, treatment 10 % longer at every quantile; 10,000 experiments of
    2,000 units per arm, histograms built the way the marts build them."""
    rng = np.random.default_rng(70 + int(q * 10))
    runs, n, shift = 10_000, 2000, 1.10
    truth = (shift - 1.0) * np.exp(3.0 + 1.1 * stats.norm.ppf(q))
    hist = []
    for factor in (1.0, shift):
        values = factor * rng.lognormal(3.0, 1.1, (runs, n))
        b = np.minimum(bucket_of(values), BUCKETS - 1) + BUCKETS * np.arange(runs)[:, None]
        hist.append(np.bincount(b.ravel(), minlength=runs * BUCKETS).reshape(runs, BUCKETS))
    result = compare_quantiles(hist[0], hist[1], q)
    covered = (result.abs_ci_low <= truth) & (truth <= result.abs_ci_high)
    assert 0.94 <= covered.mean() <= 0.96, covered.mean()
    rel_covered = (result.rel_ci_low <= 0.10) & (0.10 <= result.rel_ci_high)
    assert 0.94 <= rel_covered.mean() <= 0.96, rel_covered.mean()


def test_empty_and_one_sided_comparisons():
    empty = compare_quantiles(np.zeros(BUCKETS), histogram([1.0, 2.0, 3.0], BUCKETS), 0.5).row()
    assert empty["reason"] == "no_units" and empty["abs_effect"] is None
    rng = np.random.default_rng(8)
    a, b = histogram(rng.lognormal(3, 1, 3000), BUCKETS), histogram(1.2 * rng.lognormal(3, 1, 3000), BUCKETS)
    one = compare_quantiles(a, b, 0.5, alternative="greater").row()
    two = compare_quantiles(a, b, 0.5).row()
    assert one["abs_ci_high"] is None and one["p_value"] == pytest.approx(two["p_value"] / 2)
