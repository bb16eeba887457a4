"""Experiment definitions as owners write them (YAML, JSON, CSV) become one normalised record each,
and an unusable definition is quarantined with what to fix."""

from __future__ import annotations

import json

import pytest

from ingest.readers.definitions import read
from ingest.runner import run_ingest
from tests.conftest import query

YAML = """\
experiments:
  - id: exp_one
    name: Wording
    owner: Growth
    campaign: promotions
    variants:
      - {name: old, weight: 1, control: true}
      - {name: new, weight: 3}
    goal_metrics: [click_through, converted]
    guardrails:
      - {metric: revenue, margin: 0.05}
      - conversions
    start: 2026-10-01
    defined_at: 2026-09-30T08:00:00Z
  - id: exp_two
    variants: {a: 1, b: 1}
    control: c
    goal_metrics: converted
"""


def test_a_yaml_definition_is_normalised(tmp_path):
    path = tmp_path / "experiments.yml"
    path.write_text(YAML)
    first, second = list(read(path))
    assert first.reason is None and first.line == 2
    values = first.values
    assert json.loads(values["variants"]) == [{"name": "old", "weight": 0.25}, {"name": "new", "weight": 0.75}]
    assert values["control"] == "old" and values["campaign_id"] == "promotions"
    assert json.loads(values["goal_metrics"]) == ["click_through", "converted"]
    assert json.loads(values["guardrail_metrics"]) == [{"metric": "revenue", "margin": 0.05},
                                                       {"metric": "conversions", "margin": 0.02}]
    assert values["start_at"] == "2026-10-01T00:00:00Z" and values["occurred_at"] == "2026-09-30T08:00:00+00:00"
    assert second.line == 15 and "control 'c' is not one of the variants (a, b)" in second.reason


@pytest.mark.parametrize("spec, problem", [
    ({"id": "x", "variants": ["a"], "control": "a", "goal_metrics": ["converted"]}, "at least two variants"),
    ({"id": "x", "variants": {"a": 1, "b": -1}, "control": "a", "goal_metrics": ["converted"]}, "weights must be positive"),
    ({"id": "x", "variants": {"a": 1, "b": 1}, "goal_metrics": ["converted"]}, "no control"),
    ({"id": "x", "variants": {"a": 1, "b": 1}, "control": "a"}, "no goal metric"),
    ({"variants": {"a": 1, "b": 1}, "control": "a", "goal_metrics": ["converted"]}, "has no id"),
    ({"id": "x", "variants": [{"name": "a", "weight": 1}, {"name": "b"}], "control": "a", "goal_metrics": ["c"]},
     "for every variant or for none"),
    ({"id": "x", "variants": {"a": 1, "b": 1}, "control": "a", "goal_metrics": ["revenue"], "guardrails": ["revenue"]},
     "both a goal metric and a guardrail"),
])
def test_an_unusable_definition_says_what_to_fix(tmp_path, spec, problem):
    path = tmp_path / "experiments.json"
    path.write_text(json.dumps([spec]))
    (record,) = list(read(path))
    assert record.reason and problem in record.reason


def test_csv_definitions_read_like_yaml(tmp_path):
    path = tmp_path / "experiments.csv"
    path.write_text("experiment_id,variants,control,goal_metrics,guardrails,alpha,status\n"
                    "exp_csv,\"a=0.5, b=0.5\",a,converted;clicked,revenue:0.01,0.1,draft\n")
    (record,) = list(read(path))
    assert record.reason is None and record.line == 2
    assert json.loads(record.values["goal_metrics"]) == ["converted", "clicked"]
    assert json.loads(record.values["guardrail_metrics"]) == [{"metric": "revenue", "margin": 0.01}]
    assert record.values["alpha"] == "0.1" and record.values["status"] == "draft"


def test_definitions_land_with_versions_and_the_bad_one_is_quarantined(settings, tmp_path):
    path = tmp_path / "experiments.yml"
    path.write_text(YAML)
    summary = run_ingest(settings, [path], quiet=True)
    assert (summary.total("loaded"), summary.total("quarantined")) == (1, 1)
    assert summary.batches[0].source_format == "definitions"
    (reason,) = query(settings, "SELECT reason FROM raw.quarantine")[0]
    assert reason.startswith("experiment exp_two: control 'c' is not one of the variants")
    again = run_ingest(settings, [path], quiet=True)
    assert again.total("duplicates") == 1  # the same definition twice is one version
    path.write_text(YAML.replace("weight: 3", "weight: 1").replace("2026-09-30T08", "2026-10-02T08"))
    run_ingest(settings, [path], quiet=True)
    versions = query(settings, "SELECT count(*), count(DISTINCT experiment_id) FROM raw.experiments")[0]
    assert versions == (2, 1)


def test_the_generators_metric_list_is_what_the_marts_measure():
    """ingest.generator.experiments.MEASURED_METRICS mirrors fct_experiment_stats' metric names."""
    import re

    from ingest.generator.experiments import MEASURED_METRICS
    from nudgelab.pipeline import DBT_PROJECT

    sql = (DBT_PROJECT / "models" / "marts" / "fct_experiment_stats.sql").read_text()
    measured = re.findall(r"'(\w+)'(?: as metric)?, '(?:ratio|proportion|mean)'", sql)
    assert sorted(measured) == sorted(MEASURED_METRICS)
