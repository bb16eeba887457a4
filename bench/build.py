"""Full dbt build on the generated scenario, then an incremental build after 1 % more events, and
what of the incremental build is dbt's own overhead.

The scenario is split in time so that the last ~1 % of events (by occurred_at) arrives after the
first build, as the next hour's callbacks would: ingest 99 %, full build (timed), ingest the rest,
incremental build (timed). Then dbt's overhead, apart from the work of its nodes: a bare start
(`dbt --version`), a parse with nothing changed (partial parsing), and from the incremental build's
``run_results.json`` the time of its models and of its data tests (count, sum, mean per node).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import polars as pl


def _at() -> pl.Expr:
    return pl.col("occurred_at").str.replace(r"Z$", "+00:00").str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC")


def split_last_share(source: Path, early: Path, late: Path, share: float) -> tuple[int, int]:
    """Split every CSV at the time before which (1 - share) of all events happened."""
    frames = {p.name: pl.read_csv(p, infer_schema_length=0) for p in sorted(source.glob("*.csv"))}
    times = pl.concat([f.select(at=_at()) for f in frames.values()])
    cutoff = times.select(pl.col("at").quantile(1 - share, interpolation="lower")).item()
    early.mkdir(parents=True, exist_ok=True)
    late.mkdir(parents=True, exist_ok=True)
    n_early = n_late = 0
    for name, frame in frames.items():
        before = frame.with_columns(_before=_at() < cutoff)
        first = before.filter(pl.col("_before")).drop("_before")
        rest = before.filter(~pl.col("_before")).drop("_before")
        first.write_csv(early / name)
        rest.write_csv(late / name)
        n_early += first.height
        n_late += rest.height
    return n_early, n_late


def timed_build(settings, what: str):
    """``nudgelab build`` timed; a failed build stops the bench with its reason."""
    from nudgelab.pipeline import build

    start = time.perf_counter()
    result = build(settings)
    seconds = time.perf_counter() - start
    if not result.success:
        raise SystemExit(f"bench: {what} build failed: {result.reason}")
    return result, seconds


def bench_build(work: Path, scratch: Path, line) -> dict:
    from ingest.runner import run_ingest
    from nudgelab.pipeline import run_dbt
    from warehouse.settings import load_settings

    os.environ.setdefault("NUDGELAB_HASH_KEY", "bench-key")
    n_early, n_late = split_last_share(work, scratch / "early", scratch / "late", 0.01)
    for definitions in work.glob("experiments.*"):  # the owners' definitions arrive with the first batch
        shutil.copy(definitions, scratch / "early" / definitions.name)
    settings = load_settings(scratch / "home-build")
    run_ingest(settings, [scratch / "early"])
    # parse the project once first, so that both timed builds start from dbt's partial parse
    code, _ = run_dbt(settings, ["parse"])
    if code != 0:
        raise SystemExit("bench: dbt parse failed")
    os.sync()
    full, full_seconds = timed_build(settings, "full")
    line(f"full build (dbt build + audit + publish), {n_early:,} events", full_seconds, n_early)
    run_ingest(settings, [scratch / "late"])
    os.sync()
    incremental, inc_seconds = timed_build(settings, "incremental")
    line(f"incremental build after {n_late:,} more events", inc_seconds, None,
         f"= {inc_seconds / full_seconds:.0%} of the full build")
    overhead = dbt_overhead(settings, line)
    return {
        "dbt_overhead": overhead,
        "events_full": n_early, "events_added": n_late,
        "full_seconds": round(full_seconds, 2), "full_parts": {k: round(v, 2) for k, v in full.seconds.items()},
        "incremental_seconds": round(inc_seconds, 2),
        "incremental_parts": {k: round(v, 2) for k, v in incremental.seconds.items()},
        "incremental_share": round(inc_seconds / full_seconds, 3),
    }


def dbt_overhead(settings, line) -> dict:
    """dbt's start-up, its no-change parse, and the incremental build's node times by resource type."""
    import json
    import subprocess

    from nudgelab.pipeline import dbt_executable, run_dbt

    results = json.loads((settings.home / "dbt_target" / "run_results.json").read_text())
    start = time.perf_counter()
    subprocess.run([dbt_executable(), "--version"], capture_output=True, check=True)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    code, _ = run_dbt(settings, ["parse"])
    parse = time.perf_counter() - start
    if code != 0:
        raise SystemExit("bench: dbt parse failed")
    by_type: dict[str, list[float]] = {}
    for node in results["results"]:
        kind = node["unique_id"].split(".", 1)[0]
        by_type.setdefault(kind, []).append(float(node.get("execution_time") or 0.0))
    line("dbt start-up alone (dbt --version)", startup)
    line("dbt parse, nothing changed (partial parse)", parse)
    out = {"startup_seconds": round(startup, 2), "parse_seconds": round(parse, 2),
           "elapsed_seconds": round(float(results.get("elapsed_time") or 0.0), 2)}
    for kind, times in sorted(by_type.items()):
        line(f"incremental build: {len(times)} {kind} nodes", sum(times), None,
             f"mean {1000 * sum(times) / len(times):.0f} ms a node")
        out[kind] = {"nodes": len(times), "seconds": round(sum(times), 2),
                     "mean_ms": round(1000 * sum(times) / len(times), 1)}
    return out
