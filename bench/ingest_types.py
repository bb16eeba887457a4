"""Ingest by event type: each generated file alone into a fresh warehouse, against DuckDB's own reader
loading the same file into a table in the same run (issue: every type within 2× of the reader).

``bench_ingest_types(work, truth, fmt, scratch, line)`` is called by ``python -m bench`` after the
combined ingest; it returns per type the rows, both times and their ratio.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import duckdb

TYPES = ("sends", "deliveries", "clicks", "users")


def _reader(path: Path, fmt: str, db: Path) -> float:
    conn = duckdb.connect(str(db))
    conn.execute("SET enable_progress_bar = false")
    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    start = time.perf_counter()
    conn.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{path}')")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def _ours(path: Path, home: Path) -> tuple[float, dict]:
    from ingest import hashing
    from ingest.runner import run_ingest
    from warehouse.settings import load_settings

    settings = load_settings(home)
    hashing._normalise_phone.cache_clear()  # each run pays for its own numbers, as a fresh process would
    start = time.perf_counter()
    summary = run_ingest(settings, [path], quiet=True)
    elapsed = time.perf_counter() - start
    if summary.errors:
        raise SystemExit(f"bench: ingest of {path.name} failed: {summary.errors[0]}")
    return elapsed, summary.as_dict()


def bench_ingest_types(work: Path, truth: dict, fmt: str, scratch: Path, line) -> dict:
    os.environ.setdefault("NUDGELAB_HASH_KEY", "bench-key")
    out = {}
    for kind in TYPES:
        path = work / truth["files"][kind]
        rows = truth["rows_written"][kind]
        os.sync()
        base = _reader(path, fmt, scratch / f"reader-{kind}.duckdb")
        os.sync()
        ours, summary = _ours(path, scratch / f"home-{kind}")
        assert summary["rows_read"] == summary["loaded"] + summary["duplicates"] + summary["quarantined"]
        line(f"ingest {kind} alone ({fmt})", ours, rows, f"DuckDB reader {base:.2f} s; ratio {ours / base:.2f}× (target ≤ 2×)")
        out[kind] = {"rows": rows, "reader_seconds": round(base, 2), "nudgelab_seconds": round(ours, 2),
                     "ratio": round(ours / base, 2), "within_target": ours <= 2 * base}
        shutil.rmtree(scratch / f"home-{kind}", ignore_errors=True)
        (scratch / f"reader-{kind}.duckdb").unlink(missing_ok=True)
    return out
