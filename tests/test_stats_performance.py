"""100,000 comparisons (variant × metric × slice) from sufficient statistics run in well under a second."""

from __future__ import annotations

import time

import numpy as np

from experiments import SampleStats, compare


def test_one_hundred_thousand_comparisons_take_under_a_second():
    rng = np.random.default_rng(0)
    n_c, n_t = rng.integers(500, 50_000, (2, 100_000)).astype(float)
    control = SampleStats(n_c, rng.binomial(n_c.astype(int), 0.1).astype(float))
    treatment = SampleStats(n_t, rng.binomial(n_t.astype(int), 0.11).astype(float))
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        result = compare(control, treatment, "proportion", sequential=True, bayesian=True)
        best = min(best, time.perf_counter() - start)
    assert len(result) == 100_000 and np.all(result.reason == "")
    assert best < 1.0
