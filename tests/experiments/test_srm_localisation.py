"""Where a sample-ratio mismatch sits: each dimension value's own χ² (against scipy), the rest of its
dimension, the value that carries the imbalance named in the verdict, the report and the summary."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from scipy import stats

from experiments.analysis import Evidence, analyse
from experiments.definition import Definition
from experiments.multiple import adjust
from experiments.srm import localise

REGIONS = {"US-CA": {"a": 5000, "b": 5040}, "US-NY": {"a": 4000, "b": 3950}, "GB-ENG": {"a": 3000, "b": 2300},
           "DE-BE": {"a": 2000, "b": 2010}}


def test_each_value_is_tested_against_the_plan_and_the_one_that_breaks_it_is_named():
    found = localise({"region": REGIONS}, {"a": 0.5, "b": 0.5})
    first = found[0]
    assert (first.dimension, first.value, first.carries) == ("region", "GB-ENG", True)
    own = {v: stats.chisquare([c["a"], c["b"]]).pvalue for v, c in REGIONS.items()}
    assert {f.value: f.p_value for f in found} == pytest.approx(own, rel=1e-9)
    values = list(REGIONS)
    assert {f.value: f.p_adjusted for f in found} == pytest.approx(
        dict(zip(values, adjust(np.array([own[v] for v in values]), "bh"))), rel=1e-9)
    rest = [sum(REGIONS[v]["a"] for v in values if v != "GB-ENG"), sum(REGIONS[v]["b"] for v in values if v != "GB-ENG")]
    assert first.rest_p_value == pytest.approx(stats.chisquare(rest).pvalue, rel=1e-9)
    assert not any(f.carries for f in found[1:])


def test_an_imbalance_spread_over_every_value_is_carried_by_none():
    spread = {v: {"a": c["a"], "b": int(c["a"] * 0.9)} for v, c in REGIONS.items()}
    assert not any(f.carries for f in localise({"region": spread}, {"a": 0.5, "b": 0.5}))


def test_the_verdict_and_the_report_say_where_the_mismatch_sits():
    sums, units = {}, {"a": 0, "b": 0}
    for region, counts in REGIONS.items():
        for arm, n in counts.items():
            k = round(n * 0.1)
            sums[(arm, "clicked", "region", region)] = (float(n), float(k), float(k), 0.0, 0.0, 0.0)
            units[arm] += n
    for arm in ("a", "b"):
        n = float(units[arm])
        sums[(arm, "clicked", "overall", "(all)")] = (n, round(n * 0.1), round(n * 0.1), 0.0, 0.0, 0.0)
    cumulative = {"clicked": {arm: {date(2026, 11, 1): (units[arm] * 0.5,) + (0.0,) * 5,
                                    date(2026, 11, 2): (float(units[arm]),) + (0.0,) * 5} for arm in ("a", "b")}}
    evidence = Evidence({"clicked": "proportion"}, sums, units, cuped={"clicked": False}, cumulative=cumulative)
    analysis = analyse(Definition("e", "a", ("a", "b"), ("clicked",), weights={"a": 0.5, "b": 0.5}), evidence)
    assert analysis.status == "srm_problem"
    assert "it sits in region = GB-ENG" in analysis.verdict
    located = analysis.srm["localisation"]
    assert located[0]["value"] == "GB-ENG" and {f["dimension"] for f in located} <= {"region", "day"}
    from experiments.report_pages import to_markdown

    assert "The imbalance sits in region = GB-ENG" in to_markdown(analysis.as_page())
