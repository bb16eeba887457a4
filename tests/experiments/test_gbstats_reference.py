"""Our engine against GrowthBook's gbstats (0.8.0, in its own environment: make references), on the
same sufficient statistics. Where the two agree by construction the numbers must be equal; where
the conventions differ the test converts and states the difference (experiments/README.md):

- proportions: gbstats' ProportionStatistic takes the variance p(1 − p); ours is the sample
  variance, p(1 − p)·n/(n − 1) — fed gbstats' SampleMeanStatistic of the 0/1 values, equal;
- CUPED: gbstats' θ is the total covariance over the total variance of the pre-period values, ours
  is pooled within arms; with our θ given to gbstats, the absolute effect and its variance agree;
- relative lift: gbstats divides by the control mean, so a negative control mean flips its sign
  (the defect this project fixed: ours is (m_t − m_c)/|m_c|);
- gbstats' one-sided "treatment lesser" interval ends at estimate − width, its own lower bound; the
  upper bound of that test is estimate + width, as ours and statsmodels give it.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from experiments.compare import compare
from experiments.statistics import SampleStats
from tests.conftest import ROOT

PYTHON = ROOT / ".venv" / "references" / "gbstats" / "bin" / "python"
RUNNER = ROOT / "tests" / "references" / "gbstats_runner.py"


def gbstats(cases: list[dict]) -> list[dict]:
    if not PYTHON.exists():
        pytest.fail("gbstats' environment is missing: `make references` (part of `make test`) creates it")
    done = subprocess.run([str(PYTHON), str(RUNNER)], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def arms(rng: np.random.Generator, kind: str, n: tuple[int, int] = (1500, 1400), shift: float = 0.25,
         base: float = 10.0) -> tuple[dict, dict, SampleStats, SampleStats]:
    """Per-arm sums for gbstats and our SampleStats, from simulated units."""
    out = []
    for i, size in enumerate(n):
        if kind == "proportion":
            x = rng.binomial(1, 0.12 + 0.02 * i * shift / 0.25, size).astype(float)
            y = np.zeros(size)
        elif kind == "ratio":
            y = rng.poisson(3.0, size).astype(float) + 1.0
            x = rng.binomial(y.astype(int), 0.2 + 0.03 * i)
        else:
            y = rng.normal(base, 3.0, size)
            x = (base + shift * i) + 0.8 * (y - base) + rng.normal(0.0, 2.0, size)
        x, y = x.astype(float), y.astype(float)
        sums = {"n": size, "sum": x.sum(), "sum_squares": (x * x).sum(), "d_sum": y.sum(),
                "d_sum_squares": (y * y).sum(), "pre_sum": y.sum(), "pre_sum_squares": (y * y).sum(),
                "sum_products": (x * y).sum()}
        ours = SampleStats(float(size), x.sum(), (x * x).sum(), *((y.sum(), (y * y).sum(), (x * y).sum())
                                                                  if kind in ("ratio", "cuped") else (0.0, 0.0, 0.0)))
        out.append((sums, ours))
    (a, ours_a), (b, ours_b) = out
    return a, b, ours_a, ours_b


@pytest.mark.parametrize("kind", ["mean", "proportion", "ratio"])
@pytest.mark.parametrize("test", ["two-sided", "greater", "less"])
def test_fixed_horizon_effects_intervals_and_p_values_equal_gbstats(kind, test):
    rng = np.random.default_rng({"mean": 1, "proportion": 2, "ratio": 3}[kind])
    a, b, ours_a, ours_b = arms(rng, kind)
    gb_kind = "mean" if kind == "proportion" else kind     # 0/1 sums: the sample variance, as ours
    absolute, relative = gbstats([{"kind": gb_kind, "test": test, "relative": rel, "a": a, "b": b}
                                  for rel in (False, True)])
    ours = compare(ours_a, ours_b, "ratio" if kind == "ratio" else "mean" if kind == "mean" else "proportion",
                   alternative=test).row(0)
    assert ours["abs_effect"] == pytest.approx(absolute["estimate"], rel=1e-10)
    assert ours["abs_se"] ** 2 == pytest.approx(absolute["variance"], rel=1e-10)
    assert ours["df"] == pytest.approx(absolute["dof"], rel=1e-10)
    assert ours["p_value"] == pytest.approx(absolute["p_value"], rel=1e-7)
    assert ours["rel_lift"] == pytest.approx(relative["estimate"], rel=1e-10)
    assert ours["rel_se"] ** 2 == pytest.approx(relative["variance"], rel=1e-10)
    assert ours["rel_p_value"] == pytest.approx(relative["p_value"], rel=1e-7)
    for scale, theirs in (("abs", absolute), ("rel", relative)):
        low, high = ours[f"{scale}_ci_low"], ours[f"{scale}_ci_high"]
        if test == "two-sided":
            assert (low, high) == (pytest.approx(theirs["ci"][0], rel=1e-9), pytest.approx(theirs["ci"][1], rel=1e-9))
        elif test == "greater":
            assert high is None and theirs["ci"][1] is None and low == pytest.approx(theirs["ci"][0], rel=1e-9)
        else:   # gbstats ends its "lesser" interval at its lower bound; the upper bound mirrors it
            estimate = ours["abs_effect" if scale == "abs" else "rel_lift"]
            assert low is None and theirs["ci"][0] is None
            assert high - estimate == pytest.approx(estimate - theirs["ci"][1], rel=1e-9)


def test_a_relative_null_equals_gbstats_test_value():
    rng = np.random.default_rng(4)
    a, b, ours_a, ours_b = arms(rng, "mean", shift=0.05)
    for test, null in (("greater", -0.02), ("greater", 0.01), ("less", 0.03), ("two-sided", 0.01)):
        (theirs,) = gbstats([{"kind": "mean", "test": test, "relative": True, "test_value": null, "a": a, "b": b}])
        ours = compare(ours_a, ours_b, "mean", alternative=test, null_rel=null).row(0)
        assert ours["rel_p_value"] == pytest.approx(theirs["p_value"], rel=1e-7), (test, null)


def test_the_sequential_confidence_sequence_and_p_value_equal_gbstats():
    rng = np.random.default_rng(5)
    a, b, ours_a, ours_b = arms(rng, "mean", n=(2600, 2500))
    absolute, relative = gbstats([{"kind": "mean", "test": "sequential", "relative": rel, "n_star": 5000,
                                   "a": a, "b": b} for rel in (False, True)])
    ours = compare(ours_a, ours_b, "mean", sequential=True).row(0)
    assert (ours["seq_ci_low"], ours["seq_ci_high"]) == (pytest.approx(absolute["ci"][0], rel=1e-9),
                                                         pytest.approx(absolute["ci"][1], rel=1e-9))
    assert (ours["seq_rel_ci_low"], ours["seq_rel_ci_high"]) == (pytest.approx(relative["ci"][0], rel=1e-9),
                                                                 pytest.approx(relative["ci"][1], rel=1e-9))
    assert ours["seq_p_value"] == pytest.approx(absolute["p_value"], rel=1e-9)
    assert ours["seq_rel_p_value"] == pytest.approx(relative["p_value"], rel=1e-9)


def test_cuped_with_our_theta_equals_gbstats_regression_adjustment_and_their_theta_is_the_total_one():
    rng = np.random.default_rng(6)
    a, b, ours_a, ours_b = arms(rng, "cuped", shift=0.6)
    ours = compare(ours_a, ours_b, "mean", cuped=True).row(0)
    assert ours["cuped_theta"] > 0
    (given,) = gbstats([{"kind": "cuped", "test": "two-sided", "relative": False, "theta": ours["cuped_theta"],
                         "a": a, "b": b}])
    assert ours["abs_effect"] == pytest.approx(given["estimate"], rel=1e-9)
    assert ours["abs_se"] ** 2 == pytest.approx(given["variance"], rel=1e-9)
    assert ours["p_value"] == pytest.approx(given["p_value"], rel=1e-6)
    (theirs,) = gbstats([{"kind": "cuped", "test": "two-sided", "relative": False, "a": a, "b": b}])
    # gbstats' θ: the covariance over the variance of the pre-period values of both arms together
    x = (a["sum_products"] + b["sum_products"]), (a["sum"] + b["sum"]), (a["pre_sum"] + b["pre_sum"])
    n = a["n"] + b["n"]
    total_cov = (x[0] - x[1] * x[2] / n) / (n - 1)
    total_var = (a["pre_sum_squares"] + b["pre_sum_squares"] - x[2] ** 2 / n) / (n - 1)
    assert theirs["theta"] == pytest.approx(total_cov / total_var, rel=1e-9)


def test_a_negative_control_mean_is_where_gbstats_relative_lift_takes_the_wrong_sign():
    control, treatment = SampleStats(1000, -10000, 104000), SampleStats(1000, -5000, 29000)
    (theirs,) = gbstats([{"kind": "mean", "test": "two-sided", "relative": True,
                          "a": {"n": 1000, "sum": -10000, "sum_squares": 104000},
                          "b": {"n": 1000, "sum": -5000, "sum_squares": 29000}}])
    ours = compare(control, treatment, "mean").row(0)
    assert ours["abs_effect"] == pytest.approx(5.0) and ours["rel_lift"] == pytest.approx(0.5)
    assert theirs["estimate"] == pytest.approx(-0.5)          # (m_t − m_c) / m_c with m_c = −10
    assert ours["rel_se"] ** 2 == pytest.approx(theirs["variance"], rel=1e-10)   # the same spread, the right side


def test_a_hundred_random_comparisons_agree_in_one_vectorised_call():
    rng = np.random.default_rng(8)
    cases, ours_a, ours_b = [], [], []
    for _ in range(100):
        n = tuple(int(v) for v in rng.integers(200, 5000, 2))
        a, b, sa, sb = arms(rng, "mean", n=n, shift=float(rng.normal(0, 0.3)), base=float(rng.uniform(2, 50)))
        cases.append({"kind": "mean", "test": "two-sided", "relative": True, "a": a, "b": b})
        ours_a.append(sa)
        ours_b.append(sb)
    theirs = gbstats(cases)
    stack = lambda stats: SampleStats(*(np.array([getattr(s, f) for s in stats], dtype=float)  # noqa: E731
                                        for f in ("n", "sum_x", "sum_x2", "sum_y", "sum_y2", "sum_xy")))
    ours = compare(stack(ours_a), stack(ours_b), "mean")
    np.testing.assert_allclose(ours.rel_lift, [t["estimate"] for t in theirs], rtol=1e-10)
    np.testing.assert_allclose(ours.rel_p_value, [t["p_value"] for t in theirs], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours.rel_ci_low, [t["ci"][0] for t in theirs], rtol=1e-9, atol=1e-12)


def test_a_prior_on_the_absolute_effect_gives_gbstats_posterior_chance_to_win_and_risk():
    rng = np.random.default_rng(9)
    a, b, ours_a, ours_b = arms(rng, "mean", n=(800, 820), shift=0.15)
    from experiments.bayesian import Prior

    ours = compare(ours_a, ours_b, "mean", prior=Prior(0.1, 0.2**2, "absolute")).row(0)
    done = subprocess.run([str(PYTHON), "-c", """
import json, sys
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.models.statistics import SampleMeanStatistic
a, b = json.load(sys.stdin)
stat = lambda s: SampleMeanStatistic(n=int(s["n"]), sum=s["sum"], sum_squares=s["sum_squares"])
config = EffectBayesianConfig(difference_type="absolute", prior_type="absolute",
                              prior_effect=GaussianPrior(mean=0.1, variance=0.04, proper=True))
r = EffectBayesianABTest(stat(a), stat(b), config).compute_result()
print(json.dumps({"ctw": r.chance_to_win, "ci": list(r.ci), "risk": list(r.risk), "mean": r.expected}))
"""], input=json.dumps([a, b]), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout)
    assert ours["bayes_scale"] == "absolute"
    assert ours["chance_to_win"] == pytest.approx(theirs["ctw"], rel=1e-9)
    assert (ours["bayes_ci_low"], ours["bayes_ci_high"]) == (pytest.approx(theirs["ci"][0], rel=1e-9),
                                                             pytest.approx(theirs["ci"][1], rel=1e-9))
    # gbstats' risk is [of keeping control, of shipping the treatment]
    assert ours["expected_loss"] == pytest.approx(theirs["risk"][1], rel=1e-7, abs=1e-12)
    assert ours["expected_loss_control"] == pytest.approx(theirs["risk"][0], rel=1e-7, abs=1e-12)
    relative = compare(ours_a, ours_b, "mean", prior=Prior(0.1, 0.2**2)).row(0)
    assert relative["bayes_scale"] == "relative" and relative["chance_to_win"] != ours["chance_to_win"]
