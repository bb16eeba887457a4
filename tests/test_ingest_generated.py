"""The generator's scenario goes through ingest with every record accounted for."""

from __future__ import annotations

import json

import pytest

from ingest.generator import generate
from ingest.runner import run_ingest
from tests.conftest import query

SIZE = {"users": 1500, "days": 7, "seed": 5}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenario")
    truth = generate(out / "csv", fmt="csv", **SIZE)
    return out, truth


def test_every_generated_record_is_accounted_for_and_a_rerun_loads_nothing(settings, scenario):
    out, truth = scenario
    first = run_ingest(settings, [out / "csv"]).as_dict()
    assert first["quarantined"] == 0, [b for b in first["batches"] if b["quarantined"]]
    for kind, written in truth["rows_written"].items():
        planted = truth["duplicates"].get(kind, 0)
        assert first["by_type"][kind] == {"rows_read": written, "loaded": written - planted,
                                          "duplicates": planted, "quarantined": 0}, kind
        assert query(settings, f"SELECT count(*) FROM raw.{kind}")[0][0] == written - planted
    assert all(b["validation_success"] for b in first["batches"])
    second = run_ingest(settings, [out / "csv"]).as_dict()
    assert second["loaded"] == 0
    assert second["duplicates"] == sum(truth["rows_written"].values())


def test_bot_clicks_are_flagged_as_the_generator_planted_them(settings, scenario):
    out, truth = scenario
    run_ingest(settings, [out / "csv" / truth["files"]["clicks"]])
    bots, humans = query(settings, "SELECT count_if(is_bot), count_if(NOT is_bot) FROM raw.clicks")[0]
    assert (bots, humans) == (truth["bot_clicks"], truth["human_clicks"])


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_other_formats_land_the_same_rows_as_csv(settings, scenario, fmt, tmp_path):
    out, truth = scenario
    other = generate(tmp_path / fmt, fmt=fmt, **SIZE)
    assert other["rows_written"] == truth["rows_written"]
    summary = run_ingest(settings, [tmp_path / fmt]).as_dict()
    assert summary["quarantined"] == 0
    assert summary["loaded"] == sum(truth["rows_written"].values()) - sum(truth["duplicates"].values())
    sends = query(settings, "SELECT count(*), count(DISTINCT recipient_hash), min(occurred_at) FROM raw.sends")[0]
    assert sends[0] == truth["rows_written"]["sends"] - truth["duplicates"].get("sends", 0)
