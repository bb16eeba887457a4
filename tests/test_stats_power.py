"""Power, minimum detectable effect and sample size for proportion and mean metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from experiments import mde, power, sample_size


def test_mean_metric_power_matches_statsmodels():
    expected = NormalIndPower().power(effect_size=0.5 / 4.0, nobs1=800, alpha=0.05, ratio=1.5)
    assert power(0.5, 800, baseline=20.0, metric_type="mean", std=4.0, ratio=1.5) == pytest.approx(expected, rel=1e-9)


def test_proportion_power_matches_unpooled_closed_form():
    p0, p1, n = 0.10, 0.11, 10_000
    se = np.sqrt(p0 * (1 - p0) / n + p1 * (1 - p1) / n)
    z = stats.norm.isf(0.025)
    expected = stats.norm.cdf(0.01 / se - z) + stats.norm.cdf(-0.01 / se - z)
    assert power(0.01, n, baseline=p0) == pytest.approx(expected, rel=1e-9)


def test_mean_sample_size_matches_statsmodels_rounded_up():
    n_float = NormalIndPower().solve_power(effect_size=0.1, alpha=0.05, power=0.8, ratio=1.0)
    assert sample_size(0.2, baseline=5.0, metric_type="mean", std=2.0) == int(np.ceil(n_float))


def test_proportion_sample_size_is_the_smallest_that_reaches_power():
    n = int(sample_size(0.1, baseline=0.05, relative=True, power=0.8))
    assert power(0.1, n, baseline=0.05, relative=True) >= 0.8
    assert power(0.1, n - 1, baseline=0.05, relative=True) < 0.8


def test_mean_mde_has_the_target_power_by_statsmodels():
    effect = float(mde(2_000, baseline=5.0, metric_type="mean", std=2.0, power=0.9))
    assert NormalIndPower().power(effect_size=effect / 2.0, nobs1=2_000, alpha=0.05, ratio=1.0) == pytest.approx(0.9, abs=1e-9)


def test_proportion_mde_gives_the_target_power():
    effect = mde(5_000, baseline=0.2, power=0.8, direction=-1)
    assert effect < 0
    assert power(effect, 5_000, baseline=0.2) == pytest.approx(0.8, abs=1e-9)


def test_unreachable_proportion_mde_is_nan():
    assert np.isnan(mde(3, baseline=0.5, power=0.99))


def test_invalid_baseline_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        power(0.01, 1000, baseline=1.2)


@pytest.mark.parametrize("ours, theirs", [("greater", "larger"), ("less", "smaller")])
def test_one_sided_power_and_sample_size_match_statsmodels(ours, theirs):
    effect = 0.5 if ours == "greater" else -0.5
    expected = NormalIndPower().power(effect_size=effect / 4.0, nobs1=800, alpha=0.05, ratio=1.5, alternative=theirs)
    got = power(effect, 800, baseline=20.0, metric_type="mean", std=4.0, ratio=1.5, alternative=ours)
    assert got == pytest.approx(expected, rel=1e-9)
    n_float = NormalIndPower().solve_power(effect_size=effect / 2.0, alpha=0.05, power=0.8, ratio=1.0, alternative=theirs)
    assert sample_size(effect, baseline=5.0, metric_type="mean", std=2.0, alternative=ours) == int(np.ceil(n_float))


def test_a_family_of_k_comparisons_is_planned_at_alpha_over_k():
    family = power(0.3, 1000, baseline=5.0, metric_type="mean", std=2.0, comparisons=4)
    assert family == pytest.approx(power(0.3, 1000, baseline=5.0, metric_type="mean", std=2.0, alpha=0.0125))
    single = sample_size(0.05, baseline=0.2, relative=True)
    assert sample_size(0.05, baseline=0.2, relative=True, comparisons=3) > single
    with pytest.raises(ValueError, match="comparisons must be a whole number"):
        power(0.3, 1000, baseline=5.0, metric_type="mean", std=2.0, comparisons=0)


def test_a_non_inferiority_plan_detects_no_loss_beyond_its_margin():
    # closed form for a mean: n = (z_{1−α} + z_{power})² · 2σ² / (δ − δ₀)², with δ = 0 and δ₀ = −2 % of 10
    n = int(sample_size(0.0, baseline=10.0, metric_type="mean", std=3.0, relative=True, alternative="greater",
                        margin=-0.02))
    z = stats.norm.isf(0.05) + stats.norm.isf(0.2)
    assert n == int(np.ceil(z * z * 2 * 9.0 / 0.2**2 - 1e-9))
    assert power(0.0, n, baseline=10.0, metric_type="mean", std=3.0, relative=True, alternative="greater",
                 margin=-0.02) >= 0.8
    # the MDE of a one-sided proportion test beyond a +1 % margin has the target power
    lift = float(mde(50_000, baseline=0.1, relative=True, alternative="greater", margin=0.01))
    assert lift > 0.01
    assert power(lift, 50_000, baseline=0.1, relative=True, alternative="greater", margin=0.01) == pytest.approx(0.8, abs=1e-6)
    with pytest.raises(ValueError, match="detects effects on its own side"):
        sample_size(-0.01, baseline=0.1, relative=True, alternative="greater")


def test_conditional_power_equals_a_simulation_of_the_rest_of_the_experiment():
    """Half-way (t = 0.5) at z = 1.4: continue the running sum with the current effect and count the
    final two-sided rejections."""
    from experiments.power import conditional_power

    rng = np.random.default_rng(77)
    z_now, t, n_now = 1.4, 0.5, 10_000
    effect = z_now / np.sqrt(n_now)             # per-unit σ = 1: z = effect·√n
    final_n = n_now / t
    rest = rng.normal(effect * (final_n - n_now), np.sqrt(final_n - n_now), 400_000)
    z_end = (effect * n_now + rest) / np.sqrt(final_n)
    simulated = (np.abs(z_end) > stats.norm.isf(0.025)).mean()
    assert conditional_power(z_now, t) == pytest.approx(simulated, abs=0.004)
    assert conditional_power(z_now, 1.0) == 0.0 and conditional_power(2.5, 1.0) == 1.0
    # at the start the conditional power is the ordinary power at the current effect
    start = conditional_power(2.8 * np.sqrt(1e-6), 1e-6)
    assert start == pytest.approx(stats.norm.cdf(2.8 - stats.norm.isf(0.025)), abs=1e-3)
    assert conditional_power(1.4, 0.5, alternative="greater") > conditional_power(1.4, 0.5)


def test_sequential_conditional_power_is_below_the_fixed_one_and_rises_with_the_effect():
    from experiments.power import conditional_power, sequential_conditional_power

    se, n_now, n_end = 0.01, 20_000, 40_000
    weak = sequential_conditional_power(0.014, se, n_now, n_end, looks=14)
    strong = sequential_conditional_power(0.03, se, n_now, n_end, looks=14)
    fixed = float(conditional_power(0.014 / se, n_now / n_end))
    assert 0 < weak < fixed < 1 and strong > 0.9
    assert sequential_conditional_power(0.014, se, n_now, n_end, looks=14) == weak      # seeded: repeatable
