"""Stage a source file as one text table, ``stage``, in the contract's input names.

Columns: ``_ord`` (record order), ``_line`` (line number in the file), ``_raw`` (the record as
read, only where a reader has it), ``_type`` (event type), ``_reason`` (why the reader could not
understand it), ``_extra`` (JSON of fields the contract does not know), then one VARCHAR column
per input name present. Contract-shaped CSV and Parquet go through DuckDB's own readers (fast);
records from the Python readers (JSON lines, vendor callbacks) go through Arrow.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa

from ingest.contract import EVENT_TYPES, Record, event_type
from ingest.normalise import LINE_SQL, ORD_SQL, lit, q  # noqa: F401 (re-exported)
from ingest.readers.base import ReaderError, open_binary
from warehouse.sql import scalar

STAGE = "stage"
META = ("_ord", "_line", "_raw", "_type", "_reason", "_extra")
INPUT_NAMES: frozenset[str] = frozenset(f.input_name for t in EVENT_TYPES.values() for f in t.input_fields)
TYPE_COLUMN = "event_type"
TYPE_MARKER = "_type_column"  # in the returned names when the file says each record's type
# CSV stages leave _ord/_line empty for well-formed records (a window over millions of rows costs
# as much as reading them); their insertion order, DuckDB's rowid, gives both: see ORD_SQL.
MAX_LINE_BYTES = 16 * 1024 * 1024


def _type_case_sql(col: str) -> str:
    """Map an ``event_type`` column's words (send, sends, dlr, ...) onto table names in SQL."""
    arms = []
    for name in EVENT_TYPES:
        words = {name, name.rstrip("s"), name[:-3] + "y" if name.endswith("ies") else name}
        arms.append(f"WHEN lower(trim({col})) IN ({', '.join(lit(w) for w in sorted(words))}) THEN {lit(name)}")
    return f"CASE {' '.join(arms)} ELSE lower(trim({col})) END"


def csv_header(path: Path) -> tuple[list[str], str]:
    """The header's column names (normalised) and the delimiter, read from the first line."""
    with open_binary(path) as handle:
        first = handle.readline(MAX_LINE_BYTES)
    text = first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    if not text.strip():
        return [], ","
    delimiter = max((",", ";", "\t", "|"), key=text.count)
    names = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    seen: dict[str, int] = {}
    out = []
    for raw in names:
        name = raw.strip().lower().replace(" ", "_") or "column"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out, delimiter


def _extra_sql(unknown: list[str]) -> str:
    if not unknown:
        return "CAST(NULL AS VARCHAR)"
    pairs = ", ".join(f"{lit(name)}, {q(name)}" for name in unknown)
    return f"CAST(json_object({pairs}) AS VARCHAR)"


def _type_sql(columns: list[str], default_type: str | None) -> str:
    if TYPE_COLUMN in columns:
        fallback = lit(default_type) if default_type else "NULL"
        return f"coalesce({_type_case_sql(q(TYPE_COLUMN))}, {fallback})"
    if default_type is None:
        raise ReaderError("cannot tell the event type: name the file after it, pass --type, or add an event_type column")
    return lit(default_type)


def drop_stage(conn: duckdb.DuckDBPyConnection) -> None:
    """Drop the stage, whichever it is: a table (CSV, Python readers) or a view (Parquet)."""
    kinds = conn.execute(
        "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = ? AND temporary "
        "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = ? AND temporary",
        [STAGE, STAGE],
    ).fetchall()
    for (kind,) in kinds:
        conn.execute(f"DROP {kind} IF EXISTS {STAGE}")


def stage_csv(conn: duckdb.DuckDBPyConnection, path: Path, default_type: str | None) -> tuple[int, set[str]]:
    """Stage a CSV file with DuckDB's reader; malformed lines are staged with DuckDB's reason.

    Returns (records staged, input names present).
    """
    columns, delimiter = csv_header(path)
    drop_stage(conn)
    if not columns:
        _create_empty_stage(conn)
        return 0, set()
    present = {c for c in columns if c in INPUT_NAMES}
    unknown = [c for c in columns if c not in INPUT_NAMES and c != TYPE_COLUMN]
    type_sql = _type_sql(columns, default_type)
    spec = "{" + ", ".join(f"{lit(c)}: 'VARCHAR'" for c in columns) + "}"
    compression = "gzip" if _is_gzip(path) else "none"
    for table in ("nl_rejects", "nl_reject_scans"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    reader = (
        f"read_csv({lit(str(path))}, auto_detect=false, header=true, columns={spec}, delim={lit(delimiter)}, "
        f"quote='\"', escape='\"', strict_mode=true, store_rejects=true, rejects_table='nl_rejects', "
        f"rejects_scan='nl_reject_scans', max_line_size={MAX_LINE_BYTES}, compression='{compression}', "
        f"encoding='utf-8', null_padding=false)"
    )
    selected = ", ".join(f"{q(c)}" for c in sorted(present))
    conn.execute(
        f"CREATE TEMP TABLE {STAGE} AS SELECT CAST(NULL AS BIGINT) AS _ord, CAST(NULL AS BIGINT) AS _line, "
        f"CAST(NULL AS VARCHAR) AS _raw, {type_sql} AS _type, CAST(NULL AS VARCHAR) AS _reason, "
        f"{_extra_sql(unknown)} AS _extra{', ' + selected if selected else ''} FROM {reader}"
    )
    rejects = conn.execute(
        "SELECT line, string_agg(DISTINCT error_type || ': ' || error_message, '; ') AS why, "
        "any_value(csv_line) AS raw FROM nl_rejects GROUP BY line ORDER BY line"
    ).fetchall()
    conn.execute("CREATE OR REPLACE TEMP TABLE csv_rejects(line BIGINT, why VARCHAR, raw VARCHAR, g BIGINT)")
    if rejects:
        # g: how many good records come before this rejected line (header is line 1).
        conn.executemany(
            "INSERT INTO csv_rejects VALUES (?, ?, ?, ?)",
            [(line, why, raw, line - j - 1) for j, (line, why, raw) in enumerate(rejects, start=1)],
        )
    if rejects:
        # A good record's line: its ordinal, plus the header, plus the rejected lines before it.
        conn.execute(
            f"""
            UPDATE {STAGE} SET _line = k.ord + 1 + k.skipped
            FROM (SELECT s.rowid + 1 AS ord, count(x.line) AS skipped FROM {STAGE} s JOIN csv_rejects x ON x.g < s.rowid + 1
                  GROUP BY s.rowid) k
            WHERE {STAGE}.rowid + 1 = k.ord
            """
        )
        conn.execute(
            f"""
            INSERT INTO {STAGE} BY NAME
            SELECT CAST(1000000000000 + line AS BIGINT) AS _ord, line AS _line, raw AS _raw,
                   {lit(default_type) if default_type else 'NULL'} AS _type,
                   'malformed CSV line (' || why || ')' AS _reason
            FROM csv_rejects
            """
        )
    count = scalar(conn, f"SELECT count(*) FROM {STAGE}")
    return count, present | ({TYPE_MARKER} if TYPE_COLUMN in columns else set())


def stage_parquet(conn: duckdb.DuckDBPyConnection, path: Path, default_type: str | None) -> tuple[int, set[str]]:
    """Stage a Parquet file as a view; every column is read as text so that one path validates all formats.

    A view, not a table: Parquet is columnar and carries its own row numbers, so the few passes
    over the stage read the file again faster than a copy of it could be written.
    """
    drop_stage(conn)
    try:
        described = conn.execute(f"DESCRIBE SELECT * FROM read_parquet({lit(str(path))})").fetchall()
    except duckdb.Error as exc:
        raise ReaderError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from exc
    columns = [row[0] for row in described]
    lowered = {c: c.strip().lower() for c in columns}
    present = {lowered[c] for c in columns if lowered[c] in INPUT_NAMES}
    unknown = [c for c in columns if lowered[c] not in INPUT_NAMES and lowered[c] != TYPE_COLUMN]
    type_src = next((c for c in columns if lowered[c] == TYPE_COLUMN), None)
    if type_src:
        type_sql = f"coalesce({_type_case_sql(q(type_src))}, {lit(default_type) if default_type else 'NULL'})"
    elif default_type is None:
        raise ReaderError("cannot tell the event type: name the file after it, pass --type, or add an event_type column")
    else:
        type_sql = lit(default_type)
    extra = "CAST(NULL AS VARCHAR)"
    if unknown:
        extra = "CAST(json_object(" + ", ".join(f"{lit(lowered[c])}, {q(c)}" for c in unknown) + ") AS VARCHAR)"
    selected = ", ".join(f"CAST({q(c)} AS VARCHAR) AS {q(lowered[c])}" for c in columns if lowered[c] in present)
    conn.execute(
        f"CREATE TEMP VIEW {STAGE} AS SELECT file_row_number AS rowid, file_row_number + 1 AS _ord, "
        f"file_row_number + 1 AS _line, "
        f"CAST(NULL AS VARCHAR) AS _raw, {type_sql} AS _type, CAST(NULL AS VARCHAR) AS _reason, {extra} AS _extra"
        f"{', ' + selected if selected else ''} FROM read_parquet({lit(str(path))}, file_row_number=true)"
    )
    try:
        count = scalar(conn, f"SELECT count(*) FROM {STAGE}")
    except duckdb.Error as exc:
        raise ReaderError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from exc
    return count, present | ({TYPE_MARKER} if type_src else set())


def stage_records(
    conn: duckdb.DuckDBPyConnection, records: Iterable[Record], default_type: str | None, chunk: int = 200_000
) -> tuple[int, set[str]]:
    """Stage records from a Python reader, in chunks through Arrow."""
    drop_stage(conn)
    _create_empty_stage(conn)
    present: set[str] = set()
    total = 0
    buffer: list[Record] = []

    def flush() -> None:
        nonlocal total
        if not buffer:
            return
        names = sorted({k for r in buffer for k in r.values if k in INPUT_NAMES})
        for name in names:
            if name not in present:
                conn.execute(f"ALTER TABLE {STAGE} ADD COLUMN {q(name)} VARCHAR")
                present.add(name)
        data: dict[str, list] = {m: [] for m in META}
        for name in names:
            data[name] = []
        for offset, record in enumerate(buffer):
            kind = record.event_type or default_type
            if kind is not None:
                try:
                    kind = event_type(kind).name
                except KeyError:
                    pass
            data["_ord"].append(total + offset + 1)
            data["_line"].append(record.line)
            data["_raw"].append(record.raw)
            data["_type"].append(kind)
            data["_reason"].append(record.reason or (None if kind else "cannot tell the event type of this record: pass --type"))
            extra = dict(record.extra)
            extra.update({k: v for k, v in record.values.items() if k not in INPUT_NAMES and v is not None})
            data["_extra"].append(json.dumps(extra, ensure_ascii=False, default=str) if extra else None)
            for name in names:
                value = record.values.get(name)
                data[name].append(None if value is None else str(value))
        table = pa.table({k: pa.array(v, type=pa.int64() if k in ("_ord", "_line") else pa.string()) for k, v in data.items()})
        conn.register("records_chunk", table)
        conn.execute(f"INSERT INTO {STAGE} BY NAME SELECT * FROM records_chunk")
        conn.unregister("records_chunk")
        total += len(buffer)
        buffer.clear()

    for record in records:
        buffer.append(record)
        if len(buffer) >= chunk:
            flush()
    flush()
    return total, present


def _create_empty_stage(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        f"CREATE TEMP TABLE {STAGE} (_ord BIGINT, _line BIGINT, _raw VARCHAR, _type VARCHAR, "
        f"_reason VARCHAR, _extra VARCHAR)"
    )


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"
