"""Full dbt build on the generated scenario, then an incremental build after 1 % more events.

The scenario is split in time so that the last ~1 % of events (by occurred_at) arrives after the
first build, as the next hour's callbacks would: ingest 99 %, full build (timed), ingest the rest,
incremental build (timed). The target: the incremental build costs at most 15 % of the full one.
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


def bench_build(work: Path, scratch: Path, line) -> dict:
    from ingest.runner import run_ingest
    from nudgelab.pipeline import build, run_dbt
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
    start = time.perf_counter()
    full = build(settings)
    full_seconds = time.perf_counter() - start
    if not full.success:
        raise SystemExit(f"bench: full build failed: {full.reason}")
    line(f"full build (dbt build + audit + publish), {n_early:,} events", full_seconds, n_early)
    run_ingest(settings, [scratch / "late"])
    os.sync()
    start = time.perf_counter()
    incremental = build(settings)
    inc_seconds = time.perf_counter() - start
    if not incremental.success:
        raise SystemExit(f"bench: incremental build failed: {incremental.reason}")
    line(f"incremental build after {n_late:,} more events", inc_seconds, None,
         f"= {inc_seconds / full_seconds:.0%} of the full build")
    return {
        "events_full": n_early, "events_added": n_late,
        "full_seconds": round(full_seconds, 2), "full_parts": {k: round(v, 2) for k, v in full.seconds.items()},
        "incremental_seconds": round(inc_seconds, 2),
        "incremental_parts": {k: round(v, 2) for k, v in incremental.seconds.items()},
        "incremental_share": round(inc_seconds / full_seconds, 3),
    }
