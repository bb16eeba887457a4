"""A warehouse built from a lake (``nudgelab build --from-lake DIR``) equals one built from the
same events landed in its own raw tables — after a first build and after an incremental one."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from ingest.generator import generate
from ingest.runner import run_ingest
from nudgelab.pipeline import build
from warehouse.connections import connect_published
from tests.conftest import run_cli
from warehouse.settings import load_settings

LOAD_TIME = {"ingested_at", "ingested_through", "computed_at"}  # when rows were loaded or computed
FIRST = ("users", "experiments", "assignments", "sends")  # the first increment; the rest come after


def _digests(path: Path) -> dict[str, dict[str, tuple]]:
    conn = duckdb.connect(str(path), read_only=True)
    out = {}
    for schema, table in conn.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN "
                                      "('intermediate', 'marts', 'experiments') ORDER BY 1, 2").fetchall():
        name = f"{schema}.{table}"
        columns = [c for (c, *_) in conn.execute(f"DESCRIBE {name}").fetchall() if c not in LOAD_TIME]
        sums = ", ".join(f"CAST(sum(hash({c})) AS VARCHAR)" for c in columns)
        out[name] = dict(zip(["rows", *columns], conn.execute(f"SELECT count(*), {sums} FROM {name}").fetchone()))
    conn.close()
    return out


@pytest.fixture(scope="module")
def increments(tmp_path_factory) -> tuple[Path, Path]:
    data = tmp_path_factory.mktemp("lake-build-data")
    generate(data, users=400, days=6, seed=8, fmt="csv")
    first, rest = data / "first", data / "rest"
    first.mkdir()
    rest.mkdir()
    for path in list(data.iterdir()):
        if path.is_file() and path.name != "ground_truth.json":
            shutil.move(path, (first if path.stem in FIRST else rest) / path.name)
    return first, rest


def test_the_marts_from_a_lake_equal_the_marts_from_the_warehouse(settings, increments, tmp_path):
    lake_home = load_settings(tmp_path / "lake-home")
    lake = tmp_path / "lake"
    for step, folder in enumerate(increments):
        assert not run_ingest(settings, [folder], quiet=True).errors
        assert not run_ingest(lake_home, [folder], quiet=True, lake=lake).errors
        plain, from_lake = build(settings), build(lake_home, lake=lake)
        assert plain.success, plain.reason
        assert from_lake.success, from_lake.reason
        expected, got = _digests(settings.warehouse_path), _digests(lake_home.warehouse_path)
        assert sorted(got) == sorted(expected)
        assert expected["marts.fct_messages"]["rows"] > 500
        if step:
            assert expected["marts.fct_messages"]["seconds_to_delivery"] != _first_digest["seconds_to_delivery"]
        for name in expected:
            assert got[name] == expected[name], (step, name)
        _first_digest = expected["marts.fct_messages"]
    # the snapshot of the lake's warehouse carries the lake's ledger (the Data health page reads it)
    conn = connect_published(lake_home)
    try:
        batches = conn.execute("SELECT count(*), sum(loaded) FROM raw.ingest_batches").fetchone()
    finally:
        conn.close()
    assert batches[0] == 9 and batches[1] > 2000
    # and it takes no events of its own: they go to the lake
    refused = run_cli("ingest", str(increments[0]), env_extra={"NUDGELAB_HOME": str(lake_home.home)})
    assert refused.returncode != 0 and "--to lake" in refused.stderr


def test_a_warehouse_with_its_own_raw_rows_is_not_pointed_at_a_lake(settings, increments, tmp_path):
    run_ingest(settings, [increments[0]], quiet=True)
    lake = tmp_path / "lake"
    lake.mkdir()
    result = build(settings, lake=lake)
    assert not result.success
    assert "holds rows of its own" in result.reason


def test_building_from_a_missing_lake_says_so(settings, tmp_path):
    result = build(settings, lake=tmp_path / "nowhere")
    assert not result.success and "no lake at" in result.reason
