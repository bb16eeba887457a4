"""``nudgelab ingest --to lake DIR``: the warehouse's raw layer as Hive-partitioned Parquet, with
the same ledger and quarantine, atomic per batch and safe to re-run."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from ingest.contract import EVENT_TYPES
from ingest.generator import generate
from ingest.runner import run_ingest
from tests.conftest import query, run_cli
from tests.test_ingest_bad_input import SENDS_HEADER, send_row, write

NOT_COMPARED = ("batch_id", "ingested_at")  # the batch's own id and clock differ between two runs


def _lake_rows(lake: Path, kind: str) -> list[tuple]:
    files = sorted((lake / kind).glob("event_date=*/*.parquet"))
    if not files:
        return []
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    listed = ", ".join(f"'{f}'" for f in files)
    return conn.execute(f"SELECT * FROM read_parquet([{listed}], hive_partitioning = true)").fetchall(), [
        d[0] for d in conn.description]


def _comparable(rows: list[tuple], names: list[str]) -> list[tuple]:
    keep = [i for i, n in enumerate(names) if n not in NOT_COMPARED and n != "event_date"]
    return sorted(tuple(None if r[i] is None else str(r[i]) for i in keep) for r in rows)


def _event_files(lake: Path) -> set[Path]:
    return {p for kind in EVENT_TYPES for p in (lake / kind).glob("event_date=*/*.parquet")}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lake-data")
    generate(folder, users=400, days=6, seed=5, fmt="csv")
    return folder


def test_the_lake_holds_exactly_what_the_warehouse_lands_and_a_rerun_adds_nothing(settings, data, tmp_path):
    lake = tmp_path / "lake"
    into_warehouse = run_ingest(settings, [data], quiet=True)
    into_lake = run_ingest(settings, [data], quiet=True, lake=lake)
    assert not into_warehouse.errors and not into_lake.errors
    assert into_lake.total("loaded") == into_warehouse.total("loaded") > 3000
    assert into_lake.total("duplicates") == into_warehouse.total("duplicates") > 0  # the generator repeats some receipts
    for kind, spec in EVENT_TYPES.items():
        found = _lake_rows(lake, kind)
        conn = duckdb.connect(str(settings.warehouse_path), read_only=True)
        conn.execute("SET TimeZone = 'UTC'")
        landed = conn.execute(f"SELECT * FROM {spec.table}").fetchall()
        names = [d[0] for d in conn.description]
        conn.close()
        if not landed:
            assert found == []
            continue
        rows, lake_names = found
        assert lake_names[:len(names)] == names  # the raw table's columns, then the partition
        assert _comparable(rows, lake_names) == _comparable(landed, names), kind
        # every row sits in the partition of the UTC day it occurred on
        occurred, day = lake_names.index("occurred_at"), lake_names.index("event_date")
        assert all(r[occurred].astimezone(r[occurred].tzinfo).date() == r[day] for r in rows)
    # the ledger: one row per batch, counts that reconcile and match the files
    conn = duckdb.connect()
    batches = conn.execute(f"SELECT rows_read, loaded, duplicates, quarantined FROM "
                           f"read_parquet('{lake}/_ledger/ingest_batches/*.parquet')").fetchall()
    assert len(batches) == len(into_lake.batches)
    assert all(read == loaded + dups + quarantined for read, loaded, dups, quarantined in batches)
    assert sum(b[1] for b in batches) == sum(len(_lake_rows(lake, k)[0]) for k in EVENT_TYPES if _lake_rows(lake, k))
    files = conn.execute(f"SELECT count(*) FROM read_parquet('{lake}/_ledger/ingest_files/*.parquet')").fetchone()[0]
    assert files == sum(len(b.files) for b in into_lake.batches)
    # the working database keeps the ledger but no events
    work = duckdb.connect(str(lake / "_nudgelab" / "landing.duckdb"), read_only=True)
    assert work.execute("SELECT count(*) FROM raw.deliveries").fetchone()[0] == 0
    assert work.execute("SELECT count(*) FROM raw.ingest_batches").fetchone()[0] == len(batches)
    work.close()
    assert not (lake / "_nudgelab" / "staging").exists() or not any((lake / "_nudgelab" / "staging").iterdir())
    # a second run of the same files lands nothing new and writes no event file
    files = _event_files(lake)
    again = run_ingest(settings, [data], quiet=True, lake=lake)
    assert again.total("loaded") == 0
    assert again.total("duplicates") == into_lake.total("loaded") + into_lake.total("duplicates")
    assert _event_files(lake) == files
    ledger = duckdb.connect().execute(
        f"SELECT count(*) FROM read_parquet('{lake}/_ledger/ingest_batches/*.parquet')").fetchone()[0]
    assert ledger == len(into_lake.batches) + len(again.batches)


def test_rejected_rows_land_in_the_lake_quarantine_with_their_reason(settings, tmp_path):
    lake = tmp_path / "lake"
    path = write(tmp_path / "sends.csv", [SENDS_HEADER] + [send_row(i) for i in range(30)] + ["bad,row"])
    summary = run_ingest(settings, [path], quiet=True, lake=lake)
    assert (summary.total("loaded"), summary.total("quarantined")) == (30, 1)
    reasons = duckdb.connect().execute(
        f"SELECT line_number, reason FROM read_parquet('{lake}/_quarantine/*.parquet')").fetchall()
    assert len(reasons) == 1 and reasons[0][0] == 32 and reasons[0][1]


@pytest.mark.parametrize("fault", ["after_land", "lake_before_commit"])
def test_a_crash_before_the_commit_leaves_nothing_visible_and_a_rerun_completes(settings, tmp_path, fault):
    lake = tmp_path / "lake"
    path = write(tmp_path / "sends.csv", [SENDS_HEADER] + [send_row(i) for i in range(40)])
    crashed = run_cli("ingest", "--to", "lake", str(lake), str(path), env_extra={"NUDGELAB_FAULT": fault})
    assert crashed.returncode == 17
    assert _event_files(lake) == set()
    assert not list(lake.glob("_ledger/**/*.parquet"))
    rerun = run_cli("ingest", "--to", "lake", str(lake), str(path), "--json", check=True)
    assert json.loads(rerun.stdout)["loaded"] == 40
    assert len(_lake_rows(lake, "sends")[0]) == 40
    assert not any((lake / "_nudgelab" / "staging").iterdir())


def test_a_crash_after_the_commit_is_finished_by_the_next_run(settings, tmp_path):
    lake = tmp_path / "lake"
    path = write(tmp_path / "sends.csv", [SENDS_HEADER] + [send_row(i) for i in range(25)])
    crashed = run_cli("ingest", "--to", "lake", str(lake), str(path),
                      env_extra={"NUDGELAB_FAULT": "lake_after_commit"})
    assert crashed.returncode == 17
    assert _event_files(lake) == set()  # committed, not yet moved into place
    rerun = run_cli("ingest", "--to", "lake", str(lake), str(path), "--json", check=True)
    summary = json.loads(rerun.stdout)
    assert (summary["loaded"], summary["duplicates"]) == (0, 25)  # the first batch's rows count
    assert "finished moving batch" in rerun.stderr
    rows, names = _lake_rows(lake, "sends")
    assert len(rows) == 25 and len({r[names.index("event_id")] for r in rows}) == 25


def test_the_cli_refuses_a_target_it_does_not_know(home, tmp_path):
    bad = run_cli("ingest", "--to", "s3", str(tmp_path))
    assert bad.returncode != 0 and "--to takes" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
