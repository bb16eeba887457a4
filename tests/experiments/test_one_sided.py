"""One-sided tests and a non-zero null (superiority by a margin, non-inferiority), fixed and
sequential: p-values and bounds against statsmodels and scipy on the same data, coverage of the
one-sided bounds over 20,000 simulated experiments, and the sequential one-sided error rate under
daily peeking."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from experiments.compare import compare
from experiments.statistics import SampleStats


def sums(x: np.ndarray) -> SampleStats:
    return SampleStats(float(x.size), float(x.sum()), float((x * x).sum()), 0.0, 0.0, 0.0)


@pytest.mark.parametrize("alternative, ours", [("two-sided", "two-sided"), ("larger", "greater"), ("smaller", "less")])
@pytest.mark.parametrize("null", [0.0, 0.3, -0.25])
def test_welch_p_values_and_bounds_equal_statsmodels_on_the_same_data(alternative, ours, null):
    rng = np.random.default_rng(7)
    control, treatment = rng.normal(10.0, 2.0, 800), rng.normal(10.2, 2.6, 650)
    result = compare(sums(control), sums(treatment), "mean", alternative=ours, null_abs=null)
    _, p, df = ttest_ind(treatment, control, alternative=alternative, usevar="unequal", value=null)
    assert result.p_value[()] == pytest.approx(p, rel=1e-9)
    assert result.df[()] == pytest.approx(df, rel=1e-9)
    low, high = CompareMeans(DescrStatsW(treatment), DescrStatsW(control)).tconfint_diff(
        alpha=0.05, alternative=alternative, usevar="unequal")
    assert result.abs_ci_low[()] == pytest.approx(low, rel=1e-9) if np.isfinite(low) else result.abs_ci_low[()] == -np.inf
    assert result.abs_ci_high[()] == pytest.approx(high, rel=1e-9) if np.isfinite(high) else result.abs_ci_high[()] == np.inf


def test_one_sided_p_values_from_sufficient_statistics_equal_scipy():
    rng = np.random.default_rng(11)
    control, treatment = rng.normal(5.0, 1.0, 300), rng.normal(5.15, 1.3, 310)
    for ours in ("greater", "less"):
        expected = sps.ttest_ind_from_stats(treatment.mean(), treatment.std(ddof=1), treatment.size, control.mean(),
                                            control.std(ddof=1), control.size, equal_var=False, alternative=ours)
        assert compare(sums(control), sums(treatment), alternative=ours).p_value[()] == pytest.approx(expected.pvalue)


def test_the_alternative_and_the_null_vary_per_comparison_in_one_call():
    control = SampleStats(np.full(3, 1000.0), np.full(3, 120.0), np.full(3, 120.0))
    treatment = SampleStats(np.full(3, 1000.0), np.full(3, 150.0), np.full(3, 150.0))
    result = compare(control, treatment, "proportion", alternative=["two-sided", "greater", "greater"],
                     null_rel=[0.0, 0.0, -0.02])
    two, greater, noninferior = result.records()
    assert greater["p_value"] == pytest.approx(two["p_value"] / 2)      # the effect lies on the alternative's side
    assert greater["abs_ci_high"] is None and greater["abs_ci_low"] > two["abs_ci_low"]   # one-sided: no upper end
    assert noninferior["rel_p_value"] < greater["rel_p_value"]          # a lower bar is cleared more easily
    assert (two["alternative"], noninferior["alternative"], noninferior["null_rel"]) == ("two-sided", "greater", -0.02)
    with pytest.raises(ValueError, match="alternative must be one of"):
        compare(control, treatment, "proportion", alternative="bigger")


def test_a_p_value_below_alpha_exactly_when_the_bound_clears_the_null():
    rng = np.random.default_rng(5)
    runs = 4000
    k_c, k_t = rng.binomial(2000, 0.10, runs).astype(float), rng.binomial(2000, 0.108, runs).astype(float)
    result = compare(SampleStats(np.full(runs, 2000.0), k_c, k_c), SampleStats(np.full(runs, 2000.0), k_t, k_t),
                     "proportion", alternative="greater", null_rel=0.02, sequential=True)
    assert np.array_equal(result.rel_p_value < 0.05, result.rel_ci_low > 0.02)
    assert np.array_equal(result.seq_rel_p_value < 0.05, result.seq_rel_ci_low > 0.02)
    assert 0 < int((result.rel_p_value < 0.05).sum()) < runs


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_bounds_cover_the_true_effect_95_percent_of_the_time(alternative):
    """20,000 experiments per case. The absolute bound at 3,000 units per arm (300 conversions);
    the relative one at 30,000: the delta method's relative bound is asymmetric while the
    conversions are few (at 3,000 units the upper bound covers 93.9 %, the lower 95.9 %; see
    experiments/README.md), and within 0.3 points of 95 % from some thousands of conversions."""
    rng = np.random.default_rng(2026 if alternative == "greater" else 2027)
    runs, p_c, p_t = 20_000, 0.10, 0.115
    for n, field in ((3000, "abs"), (30_000, "rel")):
        k_c, k_t = rng.binomial(n, p_c, runs).astype(float), rng.binomial(n, p_t, runs).astype(float)
        result = compare(SampleStats(np.full(runs, float(n)), k_c, k_c),
                         SampleStats(np.full(runs, float(n)), k_t, k_t), "proportion", alternative=alternative)
        truth = p_t - p_c if field == "abs" else p_t / p_c - 1
        low, high = getattr(result, f"{field}_ci_low"), getattr(result, f"{field}_ci_high")
        covered = (low <= truth) if alternative == "greater" else (high >= truth)
        assert np.isinf(high if alternative == "greater" else low).all()
        assert 0.94 <= covered.mean() <= 0.96, (field, covered.mean())


def test_a_non_inferiority_test_at_its_margin_rejects_at_most_alpha_even_when_looked_at_daily():
    """Sequential, one-sided, null at the margin (the true lift is exactly −2 %): over 30 daily looks the
    always-valid test rejects in at most α of the experiments; the fixed-horizon test looked at daily does not."""
    rng = np.random.default_rng(99)
    runs, days, per_day = 2000, 30, 200
    cum = {arm: np.zeros((3, runs)) for arm in ("c", "t")}
    ever_seq = np.zeros(runs, dtype=bool)
    ever_fixed = np.zeros(runs, dtype=bool)
    for _ in range(days):
        for arm, mean in (("c", 10.0), ("t", 9.8)):
            x = rng.normal(mean, 3.0, (runs, per_day))
            cum[arm] += np.stack([np.full(runs, float(per_day)), x.sum(1), (x * x).sum(1)])
        result = compare(SampleStats(*cum["c"]), SampleStats(*cum["t"]), "mean", alternative="greater",
                         null_rel=-0.02, sequential=True)
        ever_seq |= result.seq_rel_p_value < 0.05
        ever_fixed |= result.rel_p_value < 0.05
    assert ever_seq.mean() <= 0.05, ever_seq.mean()
    assert ever_fixed.mean() > 0.08, ever_fixed.mean()      # why the sequential view exists
