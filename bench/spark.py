"""DuckDB beside local Spark on the same lake: ``nudgelab build --from-lake`` (dbt on DuckDB, its
tests, the audit and publish) against ``dbt build --target spark`` (dbt-spark's session method,
``local[2]``), both on the events ``nudgelab ingest --to lake`` landed.

Sizes: ``BENCH_SPARK_SIZES`` (comma-separated users×days, default ``2000x14,20000x28``). Spark runs
from ``.venv/references/spark`` (``make spark``); its driver gets ``NUDGELAB_SPARK_MEMORY`` (2g).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _sizes() -> list[tuple[int, int]]:
    out = []
    for item in os.environ.get("BENCH_SPARK_SIZES", "2000x14,20000x28").split(","):
        users, days = item.lower().split("x")
        out.append((int(users), int(days)))
    return out


def bench_spark(scratch: Path, line) -> list[dict]:
    from ingest.generator import generate
    from ingest.runner import run_ingest
    from nudgelab.pipeline import DBT_PROJECT, build
    from warehouse.settings import load_settings

    dbt = ROOT / ".venv" / "references" / "spark" / "bin" / "dbt"
    if not dbt.exists():
        raise SystemExit("bench: no Spark environment: run `make spark` first")
    os.environ.setdefault("NUDGELAB_HASH_KEY", "bench-key")
    figures = []
    for users, days in _sizes():
        work = scratch / f"spark-{users}x{days}"
        truth = generate(work / "data", users=users, days=days, seed=11, fmt="parquet")
        events = sum(truth["rows_written"].values())
        duck = load_settings(work / "duck-home")
        lake = work / "lake"
        run_ingest(duck, [work / "data"], quiet=True, lake=lake)
        start = time.perf_counter()
        built = build(duck, lake=lake)
        duck_seconds = time.perf_counter() - start
        if not built.success:
            raise SystemExit(f"bench: the DuckDB build failed: {built.reason}")
        spark_home = work / "spark-home"
        spark_home.mkdir()
        env = dict(os.environ, NUDGELAB_HOME=str(spark_home), NUDGELAB_LAKE=str(lake), SPARK_LOCAL_IP="127.0.0.1",
                   DBT_SEND_ANONYMOUS_USAGE_STATS="false")
        start = time.perf_counter()
        done = subprocess.run([str(dbt), "build", "--target", "spark", "--project-dir", str(DBT_PROJECT),
                               "--profiles-dir", str(DBT_PROJECT), "--target-path", str(spark_home / "target"),
                               "--log-path", str(spark_home / "logs")], env=env, capture_output=True, text=True)
        spark_seconds = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"bench: the Spark build failed: {done.stdout[-2000:]}")
        line(f"build {events:,} events: DuckDB (build, audit, publish)", duck_seconds, None,
             f"Spark dbt build {spark_seconds:.1f} s; Spark / DuckDB {spark_seconds / duck_seconds:.1f}×")
        figures.append({"users": users, "days": days, "events": events, "duckdb_seconds": round(duck_seconds, 1),
                        "spark_seconds": round(spark_seconds, 1), "ratio": round(spark_seconds / duck_seconds, 1)})
    return figures
