"""Does the hourly build get slower as history grows? The same absolute increment (``BENCH_INCREMENT``
events, default 100,000, the latest by occurred_at) built incrementally on a small warehouse and on
one ten times larger (``BENCH_FLAT_USERS``: default 40,000 and 400,000 users × 30 days, about 1 M
and 10 M events), with the publish step apart. Targets (issue 19): incremental ≤ 1.3× and publish ≤
1.2× from the small warehouse to the large one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def _one(users: int, days: int, increment: int, scratch: Path, line) -> dict:
    from bench.build import split_last_share, timed_build
    from ingest.generator import generate
    from ingest.runner import run_ingest
    from nudgelab.pipeline import run_dbt
    from warehouse.settings import load_settings

    work = scratch / f"flat-{users}"
    truth = generate(work / "data", users=users, days=days, seed=11, fmt="csv")
    events = sum(truth["rows_written"].values())
    early, late = work / "early", work / "late"
    n_early, n_late = split_last_share(work / "data", early, late, increment / events)
    for definitions in (work / "data").glob("experiments.*"):
        shutil.copy(definitions, early / definitions.name)
    shutil.rmtree(work / "data")
    settings = load_settings(work / "home")
    run_ingest(settings, [early], quiet=True)
    if run_dbt(settings, ["parse"])[0] != 0:
        raise SystemExit("bench: dbt parse failed")
    timed_build(settings, "full")
    run_ingest(settings, [late], quiet=True)
    os.sync()
    result, seconds = timed_build(settings, "incremental")
    publish = result.seconds.get("publish", 0.0)
    line(f"incremental build, {n_late:,} events onto {n_early:,}", seconds, None,
         f"dbt {result.seconds.get('dbt_build', 0.0):.1f} s; publish {publish:.2f} s")
    shutil.rmtree(work, ignore_errors=True)
    return {"events": n_early, "added": n_late, "seconds": round(seconds, 2), "publish_seconds": round(publish, 2),
            "parts": {k: round(v, 2) for k, v in result.seconds.items()}}


def bench_flatness(scratch: Path, line) -> dict:
    os.environ.setdefault("NUDGELAB_HASH_KEY", "bench-key")
    increment = int(os.environ.get("BENCH_INCREMENT", "100000"))
    small, large = (int(u) for u in os.environ.get("BENCH_FLAT_USERS", "40000,400000").split(","))
    days = int(os.environ.get("BENCH_DAYS", "30"))
    a = _one(small, days, increment, scratch, line)
    b = _one(large, days, increment, scratch, line)
    ratio = b["seconds"] / a["seconds"]
    publish_ratio = b["publish_seconds"] / a["publish_seconds"] if a["publish_seconds"] else float("nan")
    print(f"  incremental build, large / small warehouse: {ratio:.2f}× (target ≤ 1.3×); "
          f"publish {publish_ratio:.2f}× (target ≤ 1.2×)", flush=True)
    return {"small": a, "large": b, "incremental_ratio": round(ratio, 2), "publish_ratio": round(publish_ratio, 2)}
