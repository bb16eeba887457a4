"""Landing in a lake: the same validated, deduplicated events as Parquet files that DuckDB and
Spark both read as the raw layer (``nudgelab ingest --to lake DIR``).

Layout under ``DIR`` (Hive-style partitions; one table per event type, each with the raw table's
columns, ``extra`` as JSON text):

    <type>/event_date=YYYY-MM-DD/<batch_id>_<n>.parquet   events, by the UTC date they occurred
    _ledger/ingest_batches/<batch_id>.parquet             the batch, as raw.ingest_batches holds it
    _ledger/ingest_files/<batch_id>.parquet               its files, as raw.ingest_files
    _quarantine/<batch_id>.parquet                        its rejected rows, as raw.quarantine
    _nudgelab/landing.duckdb                              the working database (below); no events
    _nudgelab/staging/<batch_id>/…                        a batch's files before they move into place

Why plain Parquet and not Apache Iceberg: DuckDB writes Iceberg only through an extension it
downloads at run time, which machines without that network (CI here) cannot; Hive-partitioned
Parquet needs nothing beyond DuckDB and Spark themselves, and the batch ledger below gives the
atomicity a table format would.

A batch runs through the ordinary loader on ``landing.duckdb`` (same contract, hashing,
quarantine, expectations and ledger), deduplicating against the events already in the lake.
Inside the batch's transaction its rows are written to ``staging/<batch_id>/`` and deleted from
the working tables; the ledger row commits with them. After the commit the files move into place.
A crash before the commit leaves a staging folder whose batch is not in the ledger: the next run
deletes it, and nothing of the batch is visible. A crash after it leaves one whose batch is: the
next run finishes the moves. Either way re-running is safe, and the ledger, the quarantine and the
files agree (read = loaded + duplicates + quarantined).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from ingest.contract import EVENT_TYPES, EventType
from ingest.normalise import lit

FAULT_ENV = "NUDGELAB_FAULT"  # test hooks: "lake_before_commit" dies with the files staged, before the
# commit; "lake_after_commit" between the commit and the moves
WORK = "_nudgelab"
LEDGER_TABLES = (("raw.ingest_batches", "_ledger/ingest_batches"), ("raw.ingest_files", "_ledger/ingest_files"),
                 ("raw.quarantine", "_quarantine"))


def lake_root(path: Path) -> Path:
    root = path.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder (the lake is one)")
    return root


class LakeSink:
    """Where a lake batch's rows go, and where the events already landed are read from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root / WORK
        self.landing = self.work / "landing.duckdb"
        self.staging = self.work / "staging"

    def history(self, spec: EventType) -> str:
        """SQL relation of the events of ``spec`` landed by earlier batches."""
        pattern = "event_date=*/*.parquet"
        if next((self.root / spec.name).glob(pattern), None) is None:
            return spec.table  # the working table: empty outside a batch
        return (f"read_parquet({lit(str(self.root / spec.name / pattern))}, hive_partitioning = true, "
                "union_by_name = true)")

    def stage_batch(self, conn: duckdb.DuckDBPyConnection, batch_id: str, landed_types: list[str]) -> None:
        """Inside the batch's transaction: write its rows and ledger entries to staging (synced),
        then delete its events from the working tables."""
        folder = self.staging / batch_id
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        batch = lit(batch_id)
        for kind in landed_types:
            spec = EVENT_TYPES[kind]
            target = folder / spec.name
            conn.execute(
                f"COPY (SELECT *, CAST(timezone('UTC', occurred_at) AS DATE) AS event_date FROM {spec.table} "
                f"WHERE batch_id = {batch}) TO {lit(str(target))} "
                f"(FORMAT parquet, PARTITION_BY (event_date), FILENAME_PATTERN {lit(batch_id + '_{i}')})")
        for table, place in LEDGER_TABLES:
            target = folder / place / f"{batch_id}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            conn.execute(f"COPY (SELECT * FROM {table} WHERE batch_id = {batch}) TO {lit(str(target))} (FORMAT parquet)")
        _sync_tree(folder)
        for kind in landed_types:
            conn.execute(f"DELETE FROM {EVENT_TYPES[kind].table} WHERE batch_id = {batch}")
        if os.environ.get(FAULT_ENV) == "lake_before_commit":
            os._exit(17)

    def discard_batch(self, batch_id: str) -> None:
        """The batch rolled back: its staged files go."""
        shutil.rmtree(self.staging / batch_id, ignore_errors=True)

    def publish_batch(self, batch_id: str) -> None:
        """After the commit: move the batch's staged files into place (idempotent)."""
        if os.environ.get(FAULT_ENV) == "lake_after_commit":
            os._exit(17)
        folder = self.staging / batch_id
        if not folder.exists():
            return
        for staged in sorted(p for p in folder.rglob("*.parquet")):
            final = self.root / staged.relative_to(folder)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)
            _sync_dir(final.parent)
        shutil.rmtree(folder)
        _sync_dir(self.staging)

    def recover(self, conn: duckdb.DuckDBPyConnection) -> list[str]:
        """Settle what a crashed run left in staging: finish committed batches, drop the others.
        Returns one line per batch settled."""
        if not self.staging.exists():
            return []
        notes = []
        for folder in sorted(p for p in self.staging.iterdir() if p.is_dir()):
            committed = conn.execute("SELECT count(*) FROM raw.ingest_batches WHERE batch_id = ?",
                                     [folder.name]).fetchone()[0]
            if committed:
                self.publish_batch(folder.name)
                notes.append(f"lake: finished moving batch {folder.name} into place (a run stopped after its commit)")
            else:
                shutil.rmtree(folder)
                notes.append(f"lake: removed the uncommitted files of batch {folder.name} (a run stopped before its commit)")
        return notes


def attach_lake(conn: duckdb.DuckDBPyConnection, root: Path) -> dict[str, int]:
    """Make the raw layer of the warehouse on ``conn`` the lake at ``root``: each raw table (events,
    ledger, quarantine) becomes a view over the lake's files, with the raw table's columns and
    types, so dbt's sources, the build's scoping of tests to new rows and the published ledger read
    the lake. Files added later are read as they come (the views list folders, not files); a type
    whose folder was empty until now needs this again. Refuses a warehouse whose raw tables hold
    rows of their own. Returns the files found per view."""
    from ingest.schema import ensure_raw_schema

    if not root.is_dir():
        raise FileNotFoundError(f"no lake at {root}: land one with `nudgelab ingest --to lake {root}`")
    ensure_raw_schema(conn)
    model = duckdb.connect()
    ensure_raw_schema(model)
    layout = [(spec.table, root / spec.name, "event_date=*/*.parquet") for spec in EVENT_TYPES.values()]
    layout += [(table, root / place, "*.parquet") for table, place in LEDGER_TABLES]
    tables = {f"raw.{name}" for (name,) in conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw' AND database_name = current_database()"
    ).fetchall()}
    for table, _, _ in layout:
        if table in tables and conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
            raise ValueError(f"{table} holds rows of its own: a warehouse built from a lake needs its own "
                             "NUDGELAB_HOME")
    found = {}
    for table, folder, pattern in layout:
        columns = model.execute(f"DESCRIBE {table}").fetchall()
        typed = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind, *_ in columns)
        files = sorted(folder.glob(pattern))
        found[table] = len(files)
        if files:
            source = (f"read_parquet({lit(str(folder / pattern))}, hive_partitioning = {str('=' in pattern).lower()}, "
                      "union_by_name = true)")
            select = f"SELECT {typed} FROM {source}"
        else:
            select = f"SELECT {typed} FROM (SELECT {', '.join(f'NULL AS {n}' for n, *_ in columns)}) WHERE FALSE"
        if table in tables:
            conn.execute(f"DROP TABLE {table}")
        conn.execute(f"CREATE OR REPLACE VIEW {table} AS {select}")
    model.close()
    return found


def _sync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in sorted({p.parent for p in folder.rglob("*")} | {folder}):
        _sync_dir(path)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
