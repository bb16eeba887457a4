"""Write-audit-publish: only a build that passed its audit becomes the snapshot readers see.

The pipeline builds into ``warehouse.duckdb``. When dbt's tests and the mart expectations pass,
the audit records a fingerprint of the marts (row count and a hash of every row, per table) in
``meta.build_state``. ``publish`` then, on the build database's own connection (so no other
process can write while it copies: DuckDB holds the file, the pipeline lock holds the step):

1. refuses unless the build is marked audited and the marts still match the audited fingerprint
   (a hand-run ``dbt run``, or any other write to the marts since, makes the build unaudited);
2. copies what readers read — the marts, the experiment results and alerts, the build state and
   the ingest ledger and quarantine, not the raw events — into ``published/<name>.partial``
   through DuckDB (``ATTACH``), never by copying a file another process might be changing;
3. opens the copy read-only and checks every table against the source (row count and row hash);
4. only then renames it into place and points ``published/CURRENT`` at it with an atomic rename.

A failure at any step removes the partial file and raises ``PublishError`` with the real cause;
the previous snapshot stays what readers see. Snapshots are created private (0600).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from warehouse.settings import Settings
from warehouse.sql import one, rows
from warehouse.storage import open_database

CURRENT = "CURRENT"
KEEP = 3  # snapshots kept (readers holding an older one keep reading it until they reopen)
FAULT_ENV = "NUDGELAB_FAULT"  # test hook: "publish_copy" pauses inside the copy (see tests)
# What readers read. Whole schemas, plus named tables of others.
PUBLISHED_SCHEMAS = ("marts", "experiments")
PUBLISHED_TABLES = (("meta", "build_state"), ("meta", "dbt_results"), ("raw", "ingest_batches"), ("raw", "ingest_files"),
                    ("raw", "quarantine"))
FINGERPRINTED_SCHEMAS = ("marts",)  # what dbt writes and the audit checked


class PublishError(RuntimeError):
    """Nothing was published; the message says why (one line)."""


def current_snapshot(settings: Settings) -> Path | None:
    """The published snapshot readers should open, or None before the first publish."""
    pointer = settings.published_dir / CURRENT
    if not pointer.exists():
        return None
    path = settings.published_dir / pointer.read_text().strip()
    return path if path.exists() else None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(conn: duckdb.DuckDBPyConnection, schemas: tuple[str, ...],
            named: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
    """(schema, table) of the base tables in ``schemas`` plus the ``named`` ones that exist (as a
    table, or as a view: a warehouse built from a lake reads its ledger through views)."""
    found = rows(conn, "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
                       "AND NOT temporary ORDER BY 1, 2")
    views = rows(conn, "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = current_database() "
                       "AND NOT temporary AND NOT internal ORDER BY 1, 2")
    wanted = set(named)
    return sorted({(s, t) for s, t in found if s in schemas or (s, t) in wanted}
                  | {(s, t) for s, t in views if (s, t) in wanted})


def table_digest(conn: duckdb.DuckDBPyConnection, relation: str) -> list:
    """[row count, sum of row hashes] of a table: equal digests mean equal contents (as a multiset)."""
    count, total = one(conn, f"SELECT count(*), CAST(coalesce(sum(CAST(hash(t) AS HUGEINT)), 0) AS VARCHAR) "
                             f"FROM {relation} AS t")
    return [int(count), total]


def marts_fingerprint(conn: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """Digest of every table dbt builds into the schemas the audit checks."""
    return {f"{s}.{t}": table_digest(conn, f"{_q(s)}.{_q(t)}") for s, t in _tables(conn, FINGERPRINTED_SCHEMAS)}


STATE_DDL = (
    "CREATE TABLE IF NOT EXISTS meta.build_state (singleton BOOLEAN PRIMARY KEY DEFAULT TRUE, "
    "audited BOOLEAN NOT NULL, changed_at TIMESTAMPTZ NOT NULL, fingerprint JSON)"
)


def _ensure_state(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS meta")
    conn.execute(STATE_DDL)
    # a warehouse from before fingerprints: add the column (its audited flag stays, unproven: the
    # first publish then refuses until a build records a fingerprint)
    conn.execute("ALTER TABLE meta.build_state ADD COLUMN IF NOT EXISTS fingerprint JSON")


def set_build_audited(conn: duckdb.DuckDBPyConnection, audited: bool) -> None:
    """Record whether the build database holds an audited build (false while a build is under way
    or after one failed). Marking it audited records the marts' fingerprint, which every publish
    checks: jobs that add results publish only the very build the audit passed."""
    _ensure_state(conn)
    fingerprint = json.dumps(marts_fingerprint(conn)) if audited else None
    conn.execute(
        "INSERT INTO meta.build_state VALUES (TRUE, ?, now(), ?) ON CONFLICT (singleton) DO UPDATE SET "
        "audited = excluded.audited, changed_at = excluded.changed_at, fingerprint = excluded.fingerprint",
        [audited, fingerprint],
    )


def last_build_passed(conn: duckdb.DuckDBPyConnection) -> bool:
    """True when the last build passed its audit and nothing (not even dbt) has built since; cheap:
    it reads the flag, not the fingerprint."""
    try:
        row = one(conn, "SELECT audited FROM meta.build_state")
    except duckdb.CatalogException:
        return False
    return bool(row and row[0])


def build_is_audited(conn: duckdb.DuckDBPyConnection) -> bool:
    """True when the build database's marts passed their audit and have not changed since."""
    return audit_problem(conn) is None


def audit_problem(conn: duckdb.DuckDBPyConnection) -> str | None:
    """Why the build database cannot be published as audited, or None when it can."""
    try:
        row = one(conn, "SELECT audited, fingerprint FROM meta.build_state")
    except duckdb.CatalogException:
        return "no build has passed its audit here yet"
    except duckdb.BinderException:  # a warehouse from before fingerprints
        return "the last build predates audit fingerprints"
    if not row or not row[0]:
        return "the last build failed, is still running, or dbt ran outside `nudgelab build` since"
    if row[1] is None:
        return "the last audit recorded no fingerprint of the marts"
    recorded = json.loads(row[1])
    current = marts_fingerprint(conn)
    if recorded != current:
        changed = sorted(k for k in set(recorded) | set(current) if recorded.get(k) != current.get(k))
        return f"the marts changed since their audit ({', '.join(changed[:3])}{' …' if len(changed) > 3 else ''})"
    return None


def publish(settings: Settings, conn: duckdb.DuckDBPyConnection) -> Path:
    """Publish the audited build on ``conn`` (a read-write connection to the build database)."""
    problem = audit_problem(conn)
    if problem:
        raise PublishError(f"not published: {problem}; run `nudgelab build`")
    folder = settings.published_dir
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    name = f"snapshot-{stamp}-{uuid.uuid4().hex[:6]}.duckdb"
    partial = folder / (name + ".partial")
    final = folder / name
    alias = "nl_snapshot"
    try:
        tables = _tables(conn, PUBLISHED_SCHEMAS, PUBLISHED_TABLES)
        old_umask = os.umask(0o077)
        try:
            conn.execute(f"ATTACH ? AS {alias}", [str(partial)])
        finally:
            os.umask(old_umask)
        try:
            expected = {}
            for schema, table in tables:
                source = f"{_q(schema)}.{_q(table)}"
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {alias}.{_q(schema)}")
                conn.execute(f"CREATE TABLE {alias}.{source} AS SELECT * FROM {source}")
                expected[f"{schema}.{table}"] = table_digest(conn, source)
                if os.environ.get(FAULT_ENV) == "publish_copy":
                    _pause_for_test(settings)
            conn.execute(f"CHECKPOINT {alias}")  # write it out here, where an I/O error says what failed
        finally:
            try:
                conn.execute(f"DETACH {alias}")
            except duckdb.Error:
                if sys.exc_info()[0] is None:  # nothing failed before: this is the error to report
                    raise
        os.chmod(partial, 0o600)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        _verify(partial, expected)
        os.replace(partial, final)
        pointer_tmp = folder / (CURRENT + ".partial")
        pointer_tmp.write_text(name + "\n")
        os.replace(pointer_tmp, folder / CURRENT)
    except BaseException as exc:
        for leftover in (partial, Path(str(partial) + ".wal")):
            leftover.unlink(missing_ok=True)
        if isinstance(exc, (PublishError, KeyboardInterrupt, SystemExit)):
            raise
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PublishError(f"not published ({cause}); the previous snapshot is unchanged") from exc
    _prune(folder, keep_name=name)
    return final


def _verify(path: Path, expected: dict[str, list]) -> None:
    """Open the copy read-only and check every table reads back whole and equal to its source."""
    snapshot = open_database(path, read_only=True, role="snapshot")
    try:
        got = {f"{s}.{t}": table_digest(snapshot, f"{_q(s)}.{_q(t)}")
               for s, t in _tables(snapshot, PUBLISHED_SCHEMAS, PUBLISHED_TABLES)}
    finally:
        snapshot.close()
    if got != expected:
        wrong = sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))
        raise PublishError(f"not published: the copy does not read back as its source ({', '.join(wrong[:3])}); "
                           "the previous snapshot is unchanged")


def _pause_for_test(settings: Settings) -> None:
    """Test hook: say that the copy is under way, then wait until told to go on (bounded)."""
    import time

    ready, go = settings.home / "publish.copying", settings.home / "publish.go"
    ready.touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _prune(folder: Path, keep_name: str) -> None:
    snapshots = sorted(folder.glob("snapshot-*.duckdb"), key=lambda p: p.name, reverse=True)
    for old in snapshots[KEEP:]:
        if old.name != keep_name:
            old.unlink(missing_ok=True)
    for stale in folder.glob("*.partial"):
        stale.unlink(missing_ok=True)
