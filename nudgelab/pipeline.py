"""The pipeline: build the marts with dbt, audit them, add results, and publish a snapshot.

``build`` is write-audit-publish: dbt builds into the build database (its tests run as part of
``dbt build``), the mart expectations run on the result, the experiment results (and later the
anomaly alerts) are computed from the audited marts, and only then is a new read-only snapshot
published. A failure names the failing test and leaves the previous snapshot in place.

The whole build holds the pipeline lock (``warehouse.lock``), and dbt keeps its one DuckDB
connection open for its whole run (``keep_open`` in profiles.yml), so no other writer can slip in
between dbt's nodes. dbt runs as a child that the kernel kills if this process dies (even by
``kill -9``), so a killed build never leaves dbt running on the warehouse.
"""

from __future__ import annotations

import ctypes
import json
import os

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.schema import ensure_raw_schema
from nudgelab.audit import AuditResult, audit_marts
from warehouse.connections import connect_build
from warehouse.lock import duckdb_holder, warehouse_lock
from warehouse.publish import PublishError, last_build_passed, publish, set_build_audited
from warehouse.settings import Settings

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"


@dataclass
class BuildResult:
    success: bool
    reason: str = ""
    snapshot: Path | None = None
    dbt_failures: list[dict] = field(default_factory=list)
    audit: AuditResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def dbt_executable() -> str:
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(
    settings: Settings, args: list[str], echo: Callable[[str], None] | None = None, env_extra: dict | None = None
) -> tuple[int, list[dict]]:
    """Run a dbt command on the project against this NUDGELAB_HOME; returns (exit code, failed nodes)."""
    env = dict(os.environ, NUDGELAB_HOME=str(settings.home), DBT_SEND_ANONYMOUS_USAGE_STATS="false", **(env_extra or {}))
    target = settings.home / "dbt_target"
    command = [dbt_executable(), *args, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
               "--target-path", str(target), "--log-path", str(settings.home / "dbt_logs")]
    lock_conflict = None
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          cwd=DBT_PROJECT, preexec_fn=_die_with_parent(os.getpid())) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Conflicting lock is held" in line and lock_conflict is None:
                lock_conflict = line
            if echo:
                echo(line.rstrip())
        code = proc.wait()
    failures = []
    if lock_conflict is not None:
        failures.append({"node": "dbt", "status": "error",
                         "message": f"the warehouse is held by {duckdb_holder(lock_conflict)}, not by this build"})
    results = target / "run_results.json"
    if results.exists():
        names = _node_names(target / "manifest.json")
        for node in json.loads(results.read_text()).get("results", []):
            if node.get("status") in ("error", "fail", "runtime error"):
                unique_id = node.get("unique_id") or ""
                failures.append({"node": names.get(unique_id, unique_id.split(".")[-1]), "status": node.get("status"),
                                 "message": (node.get("message") or "").splitlines()[0] if node.get("message") else ""})
    return code, failures


DBT_RESULTS_DDL = (
    "CREATE OR REPLACE TABLE meta.dbt_results (node VARCHAR NOT NULL, resource_type VARCHAR, status VARCHAR NOT NULL, "
    "failures BIGINT, execution_seconds DOUBLE, message VARCHAR, recorded_at TIMESTAMPTZ NOT NULL)")


def record_dbt_results(conn, target: Path) -> None:
    """Keep what dbt said about every node of the build (tests above all) in meta.dbt_results, which is
    published with the marts: the app's Data health page shows the last build's tests from there."""
    results = target / "run_results.json"
    if not results.exists():
        return
    names = _node_names(target / "manifest.json")
    rows = []
    for node in json.loads(results.read_text()).get("results", []):
        unique_id = node.get("unique_id") or ""
        message = (node.get("message") or "").splitlines()[0] if node.get("message") else None
        rows.append((names.get(unique_id, unique_id.split(".")[-1]), unique_id.split(".")[0], node.get("status") or "",
                     node.get("failures"), node.get("execution_time"), message))
    conn.execute("CREATE SCHEMA IF NOT EXISTS meta")
    conn.execute(DBT_RESULTS_DDL)
    if rows:
        conn.executemany("INSERT INTO meta.dbt_results VALUES (?, ?, ?, ?, ?, ?, now())", rows)


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec hook: the kernel sends the child SIGKILL when its parent dies (Linux prctl)."""
    def hook() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)
    return hook


def _node_names(manifest_path: Path) -> dict[str, str]:
    """Readable names for dbt nodes: a data test as `test_name on relation.column`."""
    if not manifest_path.exists():
        return {}
    manifest = json.loads(manifest_path.read_text())
    names = {}
    for unique_id, node in manifest.get("nodes", {}).items():
        meta = node.get("test_metadata") or {}
        if meta.get("name"):
            attached = node.get("attached_node") or ""
            relation = attached.split(".")[-1] if attached else ""
            if not relation:
                sources = node.get("sources") or []
                relation = ".".join(sources[0]) if sources else ""
            column = node.get("column_name")
            names[unique_id] = f"{meta['name']} on {relation}{'.' + column if column else ''}"
        else:
            names[unique_id] = node.get("name", unique_id)
    return names


def _result_jobs() -> list[tuple[str, Callable]]:
    """Jobs that add results to an audited build before it is published (each idempotent)."""
    from experiments.warehouse_report import write_results

    return [("experiments", write_results)]


def build(
    settings: Settings,
    *,
    full_refresh: bool = False,
    select: str | None = None,
    echo: Callable[[str], None] | None = None,
    test_all_rows: bool = False,
    lake: Path | None = None,
) -> BuildResult:
    """dbt build → audit → publish. Publishes only when dbt (models and tests) and the audit pass.
    With ``lake``, the raw layer is first pointed at that lake (``ingest.lake.attach_lake``)."""
    settings.ensure()
    if lake is None and not settings.warehouse_path.exists():
        return BuildResult(False, f"no warehouse at {settings.warehouse_path}: run `nudgelab ingest` first")
    with warehouse_lock(settings.home, "nudgelab build"):
        if lake is not None:
            problem = _attach_lake(settings, lake)
            if problem:
                return BuildResult(False, problem)
        return _build(settings, full_refresh=full_refresh, select=select, echo=echo, test_all_rows=test_all_rows)


def _attach_lake(settings: Settings, lake: Path) -> str | None:
    """Point the warehouse's raw layer at ``lake``; the reason it cannot be, or None."""
    from ingest.lake import attach_lake, lake_root

    conn = connect_build(settings)
    try:
        attach_lake(conn, lake_root(lake))
    except (OSError, ValueError) as exc:
        return str(exc)
    finally:
        conn.close()
    return None


def _build(settings: Settings, *, full_refresh: bool, select: str | None, echo: Callable[[str], None] | None,
           test_all_rows: bool) -> BuildResult:
    timings: dict[str, float] = {}
    conn = connect_build(settings)
    try:  # from here until the audit passes, the build database is not publishable
        ensure_raw_schema(conn)  # every raw table dbt's sources name exists, even one no file has filled yet
        # After a build that failed (or before the first), what it wrote was never accepted:
        # test every row, not only what arrived since (see dbt_project/macros/test_scope.sql).
        last_passed = last_build_passed(conn)
        if select and not last_passed:
            return BuildResult(False, "no build has passed here yet, or the last one failed, and a partial build "
                               "(--select) cannot show that everything does: run `nudgelab build` without --select")
        test_all_rows = test_all_rows or not last_passed
        set_build_audited(conn, False)
    finally:
        conn.close()
    start = time.perf_counter()
    # Unit tests check the models' logic on fixed inputs, not the data: they run in `make test` (and
    # whenever a data engineer runs `dbt build` by hand), not in every production build.
    args = ["build", "--exclude-resource-type", "unit_test"] + (["--full-refresh"] if full_refresh else []) \
        + (["--select", select] if select else [])
    # an environment variable, not --vars: changed vars make dbt parse the whole project again
    code, failures = run_dbt(settings, args, echo, {"NUDGELAB_TEST_ALL_ROWS": "1"} if test_all_rows else None)
    timings["dbt_build"] = time.perf_counter() - start
    if code != 0 or failures:
        first = failures[0] if failures else {"node": "dbt", "message": f"dbt exited with {code}"}
        name = first.get("node") or "dbt"
        reason = f"dbt {first.get('status', 'error')}: {name}" + (f" ({first['message']})" if first.get("message") else "")
        return BuildResult(False, reason + "; the previous snapshot is unchanged", dbt_failures=failures, seconds=timings)
    start = time.perf_counter()
    conn = connect_build(settings)
    try:
        record_dbt_results(conn, settings.home / "dbt_target")
        audit = audit_marts(conn)
        timings["audit"] = time.perf_counter() - start
        if not audit.success:
            return BuildResult(False, f"mart expectation failed: {audit.first_failure()}; the previous snapshot is unchanged",
                               audit=audit, seconds=timings)
        set_build_audited(conn, True)
        for name, job in _result_jobs():
            start = time.perf_counter()
            job(conn, settings)
            timings[name] = time.perf_counter() - start
        start = time.perf_counter()
        try:
            snapshot = publish(settings, conn)
        except PublishError as exc:
            return BuildResult(False, str(exc), audit=audit, seconds=timings)
        timings["publish"] = time.perf_counter() - start
    finally:
        conn.close()
    return BuildResult(True, "", snapshot=snapshot, audit=audit, seconds=timings)
