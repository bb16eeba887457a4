"""``make bench``: every benchmark, each next to a baseline run here.

Sections (``BENCH_SECTIONS``, comma-separated; all by default): experiments (the engine against
a per-comparison loop), anomalies (against per-series STL), small_files, spark (the same lake
built on DuckDB and on local Spark), flatness (the same increment built onto 1 M and 10 M
events), dispatch (planning for a
million recipients; the worker into Kannel against a bare sendsms client), receiver (callbacks
into the spool against a minimal ASGI app), then the generator, ingest (against DuckDB's own
``read_csv`` / ``read_parquet`` into a table; all together, then each event type alone), build and
app on the same ten million events.
Baselines are measured in the same run, so the ratios mean something on any machine. Results are
printed and written to ``bench/out/results.json``.

Sizes: ``BENCH_USERS`` and ``BENCH_DAYS`` (defaults give about ten million generated events;
the ingest runs on the largest files adding up to at least five million events).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def _line(label: str, seconds: float, rows: int | None = None, extra: str = "") -> None:
    rate = f"  {rows / seconds / 1e6:6.2f} M rows/s" if rows else ""
    print(f"  {label:<44} {seconds:8.2f} s{rate}  {extra}", flush=True)


def bench_generate(work: Path, users: int, days: int, fmt: str) -> tuple[dict, float]:
    from ingest.generator import generate

    start = time.perf_counter()
    truth = generate(work, users=users, days=days, seed=11, fmt=fmt)
    return truth, time.perf_counter() - start


def pick_files(work: Path, truth: dict, target: int) -> tuple[list[Path], int]:
    """The largest event files first, until they hold at least ``target`` rows."""
    sized = sorted(truth["rows_written"].items(), key=lambda kv: -kv[1])
    chosen, rows = [], 0
    for kind, count in sized:
        if rows >= target:
            break
        chosen.append(work / truth["files"][kind])
        rows += count
    return chosen, rows


def baseline_load(files: list[Path], fmt: str, db: Path) -> float:
    conn = duckdb.connect(str(db))
    conn.execute("SET enable_progress_bar = false")
    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    start = time.perf_counter()
    for i, path in enumerate(files):
        conn.execute(f"CREATE TABLE t{i} AS SELECT * FROM {reader}('{path}')")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def nudgelab_load(files: list[Path], home: Path) -> tuple[float, dict]:
    from ingest.runner import run_ingest
    from warehouse.settings import load_settings

    os.environ.setdefault("NUDGELAB_HASH_KEY", "bench-key")
    settings = load_settings(home)
    start = time.perf_counter()
    summary = run_ingest(settings, files)
    elapsed = time.perf_counter() - start
    if summary.errors:
        raise SystemExit(f"bench: ingest failed: {summary.errors[0]}")
    return elapsed, summary.as_dict()


def bench_app(home: Path) -> dict:
    """Score anomalies on the built 10 M-event warehouse (the Anomalies page needs them), then render
    every page through AppTest in a new process: cold, warm, and the floor of its slowest query."""
    import subprocess

    from experiments.anomalies.job import run_anomalies
    from warehouse.connections import connect_build
    from warehouse.publish import publish
    from warehouse.settings import load_settings

    settings = load_settings(home)
    conn = connect_build(settings)
    try:
        start = time.perf_counter()
        run_anomalies(conn, settings)
        _line("anomaly job on the 10 M-event warehouse (for the Anomalies page)", time.perf_counter() - start)
        publish(settings, conn)
    finally:
        conn.close()
    print("app: every page through AppTest, cold and warm, beside its slowest query alone", flush=True)
    proc = subprocess.run([sys.executable, "-m", "bench.app_render", str(home)], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, NUDGELAB_HOME=str(home)))
    if proc.returncode != 0:
        raise SystemExit(f"bench: app render failed: {proc.stderr[-2000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    _line("first render in a new process (imports, connection, router)", figures["first_render_seconds"])
    for page, f in figures["pages"].items():
        _line(f"page {page}: cold (target < 2 s)", f["cold_seconds"], None,
              f"warm {f['warm_seconds']:.3f} s (target < 0.3 s); slowest query alone {f['floor_seconds']:.3f} s")
    return figures


def main() -> int:
    users = int(os.environ.get("BENCH_USERS", "400000"))
    days = int(os.environ.get("BENCH_DAYS", "30"))
    ingest_target = int(os.environ.get("BENCH_INGEST_ROWS", "5000000"))
    sections = set(os.environ.get("BENCH_SECTIONS",
                                  "experiments,anomalies,small_files,dispatch,receiver,spark,flatness,generate,ingest,build,app").split(","))
    results: dict = {"machine": {"cpus": os.cpu_count()}, "users": users, "days": days}
    OUT.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="nudgelab-bench-"))
    try:
        if "experiments" in sections:
            from bench.experiments import bench_experiments

            print("experiments: significance engine on sufficient statistics", flush=True)
            results["experiments"] = bench_experiments(_line)
        if "anomalies" in sections:
            from experiments.anomalies.bench import bench_anomalies

            print("anomalies: 10,000 series × 4 weeks of hourly points", flush=True)
            results["anomalies"] = bench_anomalies(_line)
        if "small_files" in sections:
            from bench.small_files import bench_small_files

            print("ingest of many small files: batched against one file of the same rows", flush=True)
            results["small_files"] = bench_small_files(_line)
        if "dispatch" in sections:
            from bench.dispatch import bench_dispatch

            print("dispatch: planning for a million recipients; the worker into Kannel with delivery reports", flush=True)
            results["dispatch"] = bench_dispatch(_line, scratch)
        if "receiver" in sections:
            from bench.receiver import bench_receiver

            print("receiver: delivery-report callbacks into the spool, beside a minimal ASGI app", flush=True)
            results["receiver"] = bench_receiver(_line, scratch)
        if "flatness" in sections:
            from bench.flatness import bench_flatness

            print("incremental build: the same increment onto a warehouse ten times larger", flush=True)
            results["flatness"] = bench_flatness(scratch, _line)
        if "spark" in sections:
            from bench.spark import bench_spark

            print("the same lake built on DuckDB and on local Spark", flush=True)
            results["spark"] = bench_spark(scratch, _line)
        if sections & {"generate", "ingest", "build", "app"}:
            print(f"generator: {users:,} users × {days} days", flush=True)
        for fmt in (("csv", "parquet") if sections & {"generate", "ingest", "build", "app"} else ()):
            work = scratch / f"gen-{fmt}"
            truth, seconds = bench_generate(work, users, days, fmt)
            events = sum(truth["rows_written"].values())
            _line(f"generate {fmt}", seconds, events, f"({events:,} events)")
            results[f"generate_{fmt}"] = {"events": events, "seconds": round(seconds, 2)}
            # warm the process once (imports of great-expectations and friends) so that the timed
            # ingest measures the work, not the interpreter's start-up; the cold figure is kept too
            files, rows = pick_files(work, truth, ingest_target)
            print(f"ingest {fmt}: {len(files)} files, {rows:,} events", flush=True)
            import_start = time.perf_counter()
            from ingest.expectations import _context

            _context()
            warm_up = time.perf_counter() - import_start
            # the generator leaves a gigabyte of dirty pages: write them out before timing anything
            os.sync()
            base = baseline_load(files, fmt, scratch / f"baseline-{fmt}.duckdb")
            _line(f"DuckDB {'read_parquet' if fmt == 'parquet' else 'read_csv'} into tables (baseline)", base, rows)
            os.sync()
            ours, summary = nudgelab_load(files, scratch / f"home-{fmt}")
            _line("nudgelab ingest (validate, hash, dedupe, land, expectations)", ours, rows,
                  f"ratio {ours / base:.2f}× baseline")
            _line("one-off import of great-expectations (per process)", warm_up)
            assert summary["rows_read"] == summary["loaded"] + summary["duplicates"] + summary["quarantined"]
            results[f"ingest_{fmt}"] = {
                "events": rows, "baseline_seconds": round(base, 2), "nudgelab_seconds": round(ours, 2),
                "ratio": round(ours / base, 2), "ge_import_seconds": round(warm_up, 2),
                "loaded": summary["loaded"], "duplicates": summary["duplicates"], "quarantined": summary["quarantined"],
            }
            if "ingest" in sections:
                from bench.ingest_types import bench_ingest_types

                print(f"ingest {fmt} by event type: each file alone, beside DuckDB's reader on it", flush=True)
                results[f"ingest_{fmt}_by_type"] = bench_ingest_types(work, truth, fmt, scratch, _line)
            if fmt == "csv" and "build" in sections:
                from bench.build import bench_build

                print("dbt build: full, then incremental after 1 % more events", flush=True)
                results["build"] = bench_build(work, scratch / "build", _line)
                if "app" in sections:
                    results["app"] = bench_app(scratch / "build" / "home-build")
            shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results written to {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
