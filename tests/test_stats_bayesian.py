"""The Bayesian view: normal approximation on the relative lift, flat or proper normal prior."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from experiments import Prior, SampleStats, compare

CONTROL, TREATMENT = SampleStats(10_000, 1_000), SampleStats(10_000, 1_100)


def test_proper_prior_gives_the_conjugate_normal_posterior():
    flat = compare(CONTROL, TREATMENT, "proportion")
    prior = Prior(mean=0.0, variance=0.05**2)
    r = compare(CONTROL, TREATMENT, "proportion", bayesian=True, prior=prior)
    lik_var = float(flat.rel_se) ** 2
    post_var = 1 / (1 / lik_var + 1 / prior.variance)
    post_mean = post_var * (float(flat.rel_lift) / lik_var + prior.mean / prior.variance)
    assert r.chance_to_win == pytest.approx(stats.norm.sf(0, post_mean, np.sqrt(post_var)), rel=1e-12)


def test_expected_loss_equals_integral_of_the_posterior_shortfall():
    r = compare(CONTROL, TREATMENT, "proportion", bayesian=True)
    mean, sd = float(r.rel_lift), float(r.rel_se)
    shortfall, _ = integrate.quad(lambda x: -x * stats.norm.pdf(x, mean, sd), -np.inf, 0)
    assert r.expected_loss == pytest.approx(shortfall, rel=1e-7)


def test_sceptical_prior_pulls_chance_to_win_towards_one_half():
    flat = compare(CONTROL, TREATMENT, "proportion", bayesian=True)
    sceptical = compare(CONTROL, TREATMENT, "proportion", bayesian=True, prior=Prior(0.0, 0.01**2))
    assert 0.5 < sceptical.chance_to_win < flat.chance_to_win


def test_improper_prior_is_refused():
    with pytest.raises(ValueError, match="positive variance"):
        Prior(0.0, 0.0)
