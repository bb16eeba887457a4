"""Hash assignment: deterministic, stable while the weights stay, split as the weights say (a chi-square
test on 100,000 units), independent across experiments, and sticky once assigned."""

from collections import Counter

import numpy as np
from scipy import stats

from dispatch.assignment import assign, bucket

UNITS = [f"u{i:07d}" for i in range(100_000)]


def test_the_same_unit_gets_the_same_arm_every_time():
    weights = {"a": 0.5, "b": 0.3, "c": 0.2}
    first = assign("exp_1", UNITS[:5000], weights)
    again = assign("exp_1", list(reversed(UNITS[:5000])), weights)
    assert first == list(reversed(again))


def test_the_split_matches_the_weights_chi_square():
    weights = {"control": 0.45, "treatment": 0.45, "holdout": 0.10}
    counts = Counter(assign("exp_split", UNITS, weights))
    observed = [counts[a] for a in weights]
    expected = [w * len(UNITS) for w in weights.values()]
    assert stats.chisquare(observed, expected).pvalue > 0.001
    assert abs(counts["holdout"] / len(UNITS) - 0.10) < 0.005


def test_buckets_are_uniform_kolmogorov_smirnov():
    values = np.array([bucket("exp_u", u) for u in UNITS[:50_000]])
    assert stats.kstest(values, "uniform").pvalue > 0.001


def test_experiments_are_independent_of_each_other():
    one = assign("exp_one", UNITS, {"a": 0.5, "b": 0.5})
    two = assign("exp_two", UNITS, {"x": 0.5, "y": 0.5})
    table = Counter(zip(one, two))
    contingency = [[table[("a", "x")], table[("a", "y")]], [table[("b", "x")], table[("b", "y")]]]
    assert stats.chi2_contingency(contingency).pvalue > 0.001


def test_units_assigned_before_keep_their_arm_when_weights_change():
    before = assign("exp_t", UNITS[:10_000], {"a": 0.5, "b": 0.5})
    previous = dict(zip(UNITS[:10_000], before))
    after = assign("exp_t", UNITS[:20_000], {"a": 0.9, "b": 0.1}, previous)
    assert after[:10_000] == before
    new = Counter(after[10_000:])
    assert 0.88 < new["a"] / 10_000 < 0.92


def test_unchanged_weights_in_another_order_of_units_give_the_same_arms():
    weights = {"a": 0.2, "b": 0.8}
    mapping = dict(zip(UNITS[:3000], assign("exp_o", UNITS[:3000], weights)))
    shuffled = list(np.random.default_rng(1).permutation(UNITS[:3000]))
    assert dict(zip(shuffled, assign("exp_o", shuffled, weights))) == mapping
