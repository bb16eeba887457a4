"""The same project on Apache Spark (``make test-spark``): from one lake, dbt builds every model and
passes every test on Spark (dbt-spark's session method, in this process's machine only), and every
mart and intermediate model equals the DuckDB build — rows, and each column within floating-point
tolerance — and the experiment results computed from Spark's aggregates equal DuckDB's.

Spark runs from its own environment (``.venv/references/spark``, tests/references/spark.lock);
``NUDGELAB_SPARK_DBT`` names its dbt. Without it this test fails: it is how portability is proven.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from experiments.warehouse_report import write_results
from ingest.generator import generate
from ingest.runner import run_ingest
from nudgelab.pipeline import DBT_PROJECT, build
from warehouse.connections import connect_build, connect_file
from warehouse.settings import load_settings

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parent.parent
LOAD_TIME = {"ingested_at", "ingested_through", "computed_at"}  # when rows were loaded or computed
EXPERIMENT_MARTS = ("dim_experiments", "fct_experiment_stats", "fct_experiment_quantiles", "fct_experiment_units")


def _spark_dbt() -> Path:
    # resolved here: dbt runs from the scenario's folder, where a relative path would not lead
    path = Path(os.environ.get("NUDGELAB_SPARK_DBT", ROOT / ".venv" / "references" / "spark" / "bin" / "dbt")).absolute()
    if not path.exists():
        pytest.fail(f"no Spark environment at {path}: run `make test-spark` (it installs it)")
    return path


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """(DuckDB warehouse path, Spark's warehouse folder, the dbt run's results) from one lake."""
    root = tmp_path_factory.mktemp("spark")
    generate(root / "data", users=300, days=5, seed=4, fmt="csv")
    duck = load_settings(root / "duck-home")
    lake = root / "lake"
    assert not run_ingest(duck, [root / "data"], quiet=True, lake=lake).errors
    built = build(duck, lake=lake)
    assert built.success, built.reason
    spark_home = root / "spark-home"
    spark_home.mkdir()
    env = dict(os.environ, NUDGELAB_HOME=str(spark_home), NUDGELAB_LAKE=str(lake), SPARK_LOCAL_IP="127.0.0.1",
               DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    target = spark_home / "dbt_target"
    done = subprocess.run([str(_spark_dbt()), "build", "--target", "spark", "--project-dir", str(DBT_PROJECT),
                           "--profiles-dir", str(DBT_PROJECT), "--target-path", str(target),
                           "--log-path", str(spark_home / "dbt_logs")],
                          env=env, cwd=root, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:]
    results = json.loads((target / "run_results.json").read_text())["results"]
    return duck.warehouse_path, spark_home / "spark" / "warehouse", results, root


def _spark_table(warehouse: Path, schema: str, table: str) -> str:
    return f"read_parquet('{warehouse}/{schema}.db/{table}/*.parquet')"


def _column_digest(conn, relation: str, name: str, kind: str):
    kind = kind.upper()
    if kind in ("FLOAT", "DOUBLE") or "INT" in kind or "DECIMAL" in kind:
        return conn.execute(f"SELECT sum(CAST({name} AS DOUBLE)), count({name}) FROM {relation}").fetchone()
    if "TIMESTAMP" in kind:
        return conn.execute(f"SELECT CAST(sum(CAST(epoch_us({name}) AS HUGEINT)) AS VARCHAR), count({name}) "
                            f"FROM {relation}").fetchone()
    if kind == "BOOLEAN":
        return conn.execute(f"SELECT sum(CAST({name} AS INTEGER)), count({name}) FROM {relation}").fetchone()
    return conn.execute(f"SELECT CAST(sum(CAST(hash(CAST({name} AS VARCHAR)) AS HUGEINT)) AS VARCHAR), count({name}) "
                        f"FROM {relation}").fetchone()


def _same(kind: str, expected, got) -> bool:
    if expected == got:
        return True
    if expected[1] != got[1] or not isinstance(expected[0], float) or got[0] is None:
        return False
    tolerance = 1e-6 if kind.upper() == "FLOAT" else 1e-9  # DuckDB FLOAT is single precision; Spark's is double
    return math.isclose(expected[0], got[0], rel_tol=tolerance, abs_tol=1e-9)


def test_every_node_of_the_project_passes_on_spark(builds):
    _, _, results, _ = builds
    by_type: dict[str, int] = {}
    for node in results:
        if node["unique_id"].startswith("exposure."):
            continue  # exposures run nothing (dbt reports them no-op)
        assert node["status"] in ("success", "pass"), (node["unique_id"], node.get("message"))
        kind = node["unique_id"].split(".")[0]
        by_type[kind] = by_type.get(kind, 0) + 1
    assert by_type["model"] == 22 and by_type["seed"] == 2
    assert by_type["test"] > 200 and by_type["unit_test"] >= 20


def test_every_mart_on_spark_equals_the_duckdb_one(builds):
    warehouse_path, spark_warehouse, _, _ = builds
    duck = duckdb.connect(str(warehouse_path), read_only=True)
    spark = duckdb.connect()
    checked = 0
    for schema, table in duck.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN "
                                      "('intermediate', 'marts') ORDER BY 1, 2").fetchall():
        ours, theirs = f"{schema}.{table}", _spark_table(spark_warehouse, schema, table)
        assert duck.execute(f"SELECT count(*) FROM {ours}").fetchone() == spark.execute(
            f"SELECT count(*) FROM {theirs}").fetchone(), ours
        spark_columns = {name for (name, *_) in spark.execute(f"DESCRIBE SELECT * FROM {theirs}").fetchall()}
        for name, kind, *_ in duck.execute(f"DESCRIBE {ours}").fetchall():
            if name in LOAD_TIME:
                continue
            assert name in spark_columns, f"{ours}.{name} is missing on Spark"
            expected, got = _column_digest(duck, ours, name, kind), _column_digest(spark, theirs, name, kind)
            assert _same(kind, expected, got), (ours, name, expected, got)
            checked += 1
    assert checked > 150
    assert duck.execute("SELECT count(*) FROM marts.fct_messages").fetchone()[0] > 300


def test_the_experiment_results_from_spark_equal_duckdbs(builds):
    warehouse_path, spark_warehouse, _, root = builds
    from_spark = load_settings(root / "from-spark-home")
    from_spark.ensure()
    conn = connect_file(from_spark.home / "warehouse.duckdb")
    try:
        conn.execute("CREATE SCHEMA marts")
        for table in EXPERIMENT_MARTS:  # the engine reads these aggregates and nothing else
            conn.execute(f"CREATE VIEW marts.{table} AS SELECT * FROM {_spark_table(spark_warehouse, 'marts', table)}")
        summary = write_results(conn, from_spark)
        assert len(summary.experiments) >= 2
        theirs = conn.execute("SELECT * EXCLUDE (computed_at) FROM experiments.results").fetchall()
    finally:
        conn.close()
    duck = connect_build(load_settings(warehouse_path.parent))
    try:
        ours = duck.execute("SELECT * EXCLUDE (computed_at) FROM experiments.results").fetchall()
    finally:
        duck.close()
    assert len(ours) == len(theirs) > 50

    def key(row):
        return tuple("" if v is None else str(v) if not isinstance(v, float) else "" for v in row)

    for a, b in zip(sorted(ours, key=key), sorted(theirs, key=key)):
        for x, y in zip(a, b):
            if isinstance(x, float) and isinstance(y, float):
                assert math.isclose(x, y, rel_tol=1e-7, abs_tol=1e-9) or (math.isnan(x) and math.isnan(y)), (a, b)
            else:
                assert x == y, (a, b)
