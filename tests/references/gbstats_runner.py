"""Run GrowthBook's gbstats on cases given as JSON (stdin) and print its results as JSON (stdout).

Runs in its own environment (``.venv/references/gbstats``, from ``gbstats.lock``): gbstats pins
numpy < 2 and pandas < 2, which the project's stack has left behind. The tests send sufficient
statistics, never our engine's outputs, so gbstats is an independent reference.

A case: ``{"kind": "mean" | "proportion" | "ratio" | "cuped", "test": "two-sided" | "greater" |
"less" | "sequential", "relative": bool, "alpha": float, "test_value": float, "n_star": float,
"a": {...}, "b": {...}}`` with per arm ``n, sum, sum_squares`` (and for ratio ``d_sum,
d_sum_squares, sum_products``; for cuped ``pre_sum, pre_sum_squares, sum_products`` and optionally
a fixed ``theta`` to use instead of gbstats' own). A result: ``{"estimate", "ci", "p_value", "dof", "variance", "theta"}``, or
``{"error"}`` when gbstats gives its default output.
"""

from __future__ import annotations

import json
import math
import sys
import time

from gbstats.frequentist.tests import (
    FrequentistConfig, OneSidedTreatmentGreaterTTest, OneSidedTreatmentLesserTTest, SequentialConfig,
    SequentialTwoSidedTTest, TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic, RatioStatistic, RegressionAdjustedStatistic, SampleMeanStatistic,
)

TESTS = {"two-sided": TwoSidedTTest, "greater": OneSidedTreatmentGreaterTTest, "less": OneSidedTreatmentLesserTTest,
         "sequential": SequentialTwoSidedTTest}


def statistic(kind: str, arm: dict):
    n = int(arm["n"])
    if kind == "proportion":
        return ProportionStatistic(n=n, sum=arm["sum"])
    if kind == "mean":
        return SampleMeanStatistic(n=n, sum=arm["sum"], sum_squares=arm["sum_squares"])
    if kind == "ratio":
        return RatioStatistic(n=n, m_statistic=SampleMeanStatistic(n=n, sum=arm["sum"], sum_squares=arm["sum_squares"]),
                              d_statistic=SampleMeanStatistic(n=n, sum=arm["d_sum"], sum_squares=arm["d_sum_squares"]),
                              m_d_sum_of_products=arm["sum_products"])
    if kind == "cuped":
        return RegressionAdjustedStatistic(
            n=n, post_statistic=SampleMeanStatistic(n=n, sum=arm["sum"], sum_squares=arm["sum_squares"]),
            pre_statistic=SampleMeanStatistic(n=n, sum=arm["pre_sum"], sum_squares=arm["pre_sum_squares"]),
            post_pre_sum_of_products=arm["sum_products"], theta=0.0)
    raise ValueError(f"unknown kind {kind!r}")


def finite(value: float) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def run(case: dict) -> dict:
    a, b = statistic(case["kind"], case["a"]), statistic(case["kind"], case["b"])
    difference = "relative" if case.get("relative") else "absolute"
    if case["test"] == "sequential":
        config = SequentialConfig(alpha=case.get("alpha", 0.05), test_value=case.get("test_value", 0.0),
                                  difference_type=difference, sequential_tuning_parameter=case.get("n_star", 5000))
    else:
        config = FrequentistConfig(alpha=case.get("alpha", 0.05), test_value=case.get("test_value", 0.0),
                                   difference_type=difference)
    test = TESTS[case["test"]](a, b, config)      # sets gbstats' own θ on regression-adjusted statistics
    theta = None
    if case["kind"] == "cuped":
        if case.get("theta") is not None:            # a given θ replaces it (to compare conventions)
            test.stat_a.theta = test.stat_b.theta = case["theta"]
        theta = getattr(test.stat_a, "theta", 0.0)
    result = test.compute_result()
    if result.error_message:
        return {"error": result.error_message}
    return {"estimate": result.expected, "ci": [finite(result.ci[0]), finite(result.ci[1])],
            "p_value": result.p_value, "dof": test.dof, "variance": test.variance, "theta": theta}


if __name__ == "__main__":
    cases = json.load(sys.stdin)
    if "--timed" in sys.argv[1:]:   # the benchmark's per-comparison baseline: the loop alone, imports excluded
        start = time.perf_counter()
        results = [run(case) for case in cases]
        print(json.dumps({"seconds": time.perf_counter() - start, "results": results}))
    else:
        print(json.dumps([run(case) for case in cases]))
