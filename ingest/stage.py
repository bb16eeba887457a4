"""Stage the files of one batch as one text table, ``stage``, in the contract's input names.

Columns: ``_ord`` (record order), ``_line`` (line number in its file), ``_file`` (its file, when
the batch has more than one), ``_raw`` (the record as read, only where a reader has it),
``_type`` (event type), ``_reason`` (why the reader could not understand it), ``_extra`` (JSON of
fields the contract does not know), then one VARCHAR column per input name present.
Contract-shaped CSV and Parquet go through DuckDB's own readers (fast; several small files in one
read); records from the Python readers (JSON lines and arrays, vendor callbacks) go through Arrow.

A batch of one file leaves ``_ord``, ``_line`` and ``_file`` empty for well-formed CSV records:
a window or a constant column over millions of rows costs as much as reading them; the record's
insertion order (DuckDB's rowid) and the batch's one file give all three (``ORD_SQL``,
``LINE_SQL``, ``FILE_SQL``).

DuckDB's CSV reader is trusted for what it reads, never for what it skips: every CSV file's
records are also counted independently (``check_csv_records``), so a stray quote that swallows
the rest of a file cannot pass as a short file.
"""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from ingest.contract import EVENT_TYPES, Record, event_type
from ingest.normalise import LINE_SQL, ORD_SQL, file_sql, lit, q  # noqa: F401 (re-exported)
from ingest.readers.base import ReaderError, open_binary
from warehouse.sql import rows, scalar

STAGE = "stage"
META = ("_ord", "_line", "_file", "_raw", "_type", "_reason", "_extra")
INPUT_NAMES: frozenset[str] = frozenset(f.input_name for t in EVENT_TYPES.values() for f in t.input_fields) | frozenset(
    # a hash column may also arrive already keyed, under its own name (see normalise.typed_select_sql)
    f.name for t in EVENT_TYPES.values() for f in t.input_fields if f.kind == "hash")
TYPE_COLUMN = "event_type"
TYPE_MARKER = "_type_column"  # in the returned names when the file says each record's type
MAX_LINE_BYTES = 16 * 1024 * 1024
_COUNTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nudgelab-count")


class FileProblem(ReaderError):
    """One file of a batch cannot be taken as it is; the others can. ``path`` names it."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass
class Staged:
    """What staging found: records staged, input names present, files that had to be left out."""

    count: int
    present: set[str]
    refused: list[FileProblem]


def _type_case_sql(col: str) -> str:
    """Map an ``event_type`` column's words (send, sends, dlr, ...) onto table names in SQL."""
    arms = []
    for name in EVENT_TYPES:
        words = {name, name.rstrip("s"), name[:-3] + "y" if name.endswith("ies") else name}
        arms.append(f"WHEN lower(trim({col})) IN ({', '.join(lit(w) for w in sorted(words))}) THEN {lit(name)}")
    return f"CASE {' '.join(arms)} ELSE lower(trim({col})) END"


def header_line(path: Path) -> bytes:
    """The first line of a file as bytes (BOM and line end removed), for grouping and the header."""
    with open_binary(path) as handle:
        first = handle.readline(MAX_LINE_BYTES)
    return first.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")


def csv_header(path: Path) -> tuple[list[str], str]:
    """The header's column names (normalised) and the delimiter, read from the first line."""
    text = header_line(path).decode("utf-8", errors="replace")
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


def _extra_sql(unknown: list[str], source: dict[str, str] | None = None) -> str:
    if not unknown:
        return "CAST(NULL AS VARCHAR)"
    pairs = ", ".join(f"{lit(name)}, {q((source or {}).get(name, name))}" for name in unknown)
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
    kinds = rows(conn,
                 "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = ? AND temporary "
                 "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = ? AND temporary",
                 [STAGE, STAGE])
    for (kind,) in kinds:
        conn.execute(f"DROP {kind} IF EXISTS {STAGE}")


def _file_list(paths: list[Path]) -> str:
    return "[" + ", ".join(lit(str(p)) for p in paths) + "]"


def stage_csv(conn: duckdb.DuckDBPyConnection, paths: list[Path], default_type: str | None) -> Staged:
    """Stage CSV files that share one header with DuckDB's reader; malformed lines are staged with
    DuckDB's reason; a file whose records DuckDB did not all account for is left out (refused)."""
    columns, delimiter = csv_header(paths[0])
    drop_stage(conn)
    if not columns:
        _create_empty_stage(conn)
        return Staged(0, set(), [])
    present = {c for c in columns if c in INPUT_NAMES}
    unknown = [c for c in columns if c not in INPUT_NAMES and c != TYPE_COLUMN]
    type_sql = _type_sql(columns, default_type)
    spec = "{" + ", ".join(f"{lit(c)}: 'VARCHAR'" for c in columns) + "}"
    compression = "gzip" if all(_is_gzip(p) for p in paths) else "none" if not any(_is_gzip(p) for p in paths) else "auto"
    many = len(paths) > 1
    for table in ("nl_rejects", "nl_reject_scans"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    reader = (
        f"read_csv({_file_list(paths) if many else lit(str(paths[0]))}, auto_detect=false, header=true, "
        f"columns={spec}, delim={lit(delimiter)}, quote='\"', escape='\"', strict_mode=true, store_rejects=true, "
        f"rejects_table='nl_rejects', rejects_scan='nl_reject_scans', max_line_size={MAX_LINE_BYTES}, "
        f"compression='{compression}', encoding='utf-8', null_padding=false{', filename=true' if many else ''})"
    )
    selected = ", ".join(f"{q(c)}" for c in sorted(present))
    file_sql = "filename" if many else "CAST(NULL AS VARCHAR)"
    # the independent count reads the files beside DuckDB's reader (which does not hold the GIL)
    counting = _COUNTER.submit(lambda: {p: _physical_records(p) for p in paths})
    conn.execute(
        f"CREATE TEMP TABLE {STAGE} AS SELECT CAST(NULL AS BIGINT) AS _ord, CAST(NULL AS BIGINT) AS _line, "
        f"{file_sql} AS _file, CAST(NULL AS VARCHAR) AS _raw, {type_sql} AS _type, CAST(NULL AS VARCHAR) AS _reason, "
        f"{_extra_sql(unknown)} AS _extra{', ' + selected if selected else ''} FROM {reader}"
    )
    rejects = rows(conn,
                   "SELECT s.file_path, r.line, string_agg(DISTINCT r.error_type || ': ' || r.error_message, '; '), "
                   "any_value(r.csv_line) FROM nl_rejects r JOIN nl_reject_scans s USING (scan_id, file_id) "
                   "GROUP BY s.file_path, r.line ORDER BY s.file_path, r.line")
    if many:
        _number_lines_per_file(conn)
    if rejects:
        _add_rejects(conn, rejects, default_type, many)
    refused = check_csv_records(conn, paths, many, counting.result())
    count = scalar(conn, f"SELECT count(*) FROM {STAGE}")
    return Staged(count, present | ({TYPE_MARKER} if TYPE_COLUMN in columns else set()), refused)


def _number_lines_per_file(conn: duckdb.DuckDBPyConnection) -> None:
    """Several files in one stage: each good record's order and line within its own file."""
    conn.execute(
        f"""
        UPDATE {STAGE} SET _ord = {STAGE}.rowid + 1, _line = {STAGE}.rowid - f.first + 2
        FROM (SELECT _file, min(rowid) AS first FROM {STAGE} GROUP BY _file) f
        WHERE {STAGE}._file = f._file
        """
    )


def _add_rejects(conn: duckdb.DuckDBPyConnection, rejects: list[tuple], default_type: str | None, many: bool) -> None:
    """Stage DuckDB's rejected lines as records with a reason, and move the good records' line
    numbers past the rejected lines before them (header = line 1)."""
    conn.execute("CREATE OR REPLACE TEMP TABLE csv_rejects(file VARCHAR, line BIGINT, why VARCHAR, raw VARCHAR, g BIGINT)")
    counted: dict[str, int] = {}
    values = []
    for file, line, why, raw in rejects:
        j = counted[file] = counted.get(file, 0) + 1
        values.append((file, line, why, raw, line - j - 1))  # g: good records before this line
    conn.executemany("INSERT INTO csv_rejects VALUES (?, ?, ?, ?, ?)", values)
    if many:
        conn.execute(
            f"""
            UPDATE {STAGE} SET _line = {STAGE}._line + k.skipped
            FROM (SELECT s.rowid AS rid, count(x.line) AS skipped FROM {STAGE} s
                  JOIN csv_rejects x ON x.file = s._file AND x.g < s._line - 1 GROUP BY s.rowid) k
            WHERE {STAGE}.rowid = k.rid
            """
        )
    else:
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
        SELECT CAST(1000000000000 + row_number() OVER (ORDER BY file, line) AS BIGINT) AS _ord, line AS _line,
               {'file' if many else 'CAST(NULL AS VARCHAR)'} AS _file, raw AS _raw,
               {lit(default_type) if default_type else 'NULL'} AS _type,
               'malformed CSV line (' || why || ')' AS _reason
        FROM csv_rejects
        """
    )


def _physical_records(path: Path) -> int:
    """Lines after the header, counted without parsing (a quoted line break counts as a line)."""
    lines, last = 0, b"\n"
    with open_binary(path) as handle:
        while chunk := handle.read(16 * 1024 * 1024):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


def _parsed_records(path: Path) -> tuple[int, int | None]:
    """Records after the header as a strict CSV parser reads them (blank lines skipped), and the
    line where a quoted field opens that never closes (None when every quote closes)."""
    with open_binary(path) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, strict=True)
        count, opened = -1, None  # the header is not a record
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if "unexpected end of data" in str(exc) or "EOF" in str(exc):
                    opened = start
                    break
                count += 1  # a malformed record: DuckDB rejects it as one line
                continue
            if row:
                count += 1
    return max(count, 0), opened


def check_csv_records(conn: duckdb.DuckDBPyConnection, paths: list[Path], many: bool,
                      physical_counts: dict[Path, int] | None = None) -> list[FileProblem]:
    """Refuse (and unstage) every file whose records DuckDB did not all account for."""
    staged = dict(rows(conn, f"SELECT {file_sql(paths[0])}, count(*) FROM {STAGE} s GROUP BY 1"))
    refused = []
    for path in paths:
        got = staged.get(str(path), 0)
        physical = physical_counts[path] if physical_counts is not None else _physical_records(path)
        if physical == got:
            continue
        expected, opened = _parsed_records(path)
        if expected == got and opened is None:
            continue  # quoted line breaks: fewer records than lines, all of them read
        if opened is not None:
            why = (f"{path}: line {opened} opens a quoted field that never closes, so the "
                   f"{physical + 1 - opened:,} lines after it cannot be read: fix that quote "
                   "and ingest the file again (nothing of it was loaded)")
        else:
            why = (f"{path}: DuckDB read {got:,} records but the file holds {expected:,}; nothing of it was loaded "
                   "(check its quoting and line ends)")
        refused.append(FileProblem(path, why))
    if refused:
        if many:
            conn.execute(f"DELETE FROM {STAGE} WHERE _file IN ({', '.join(lit(str(p.path)) for p in refused)})")
        else:
            conn.execute(f"DELETE FROM {STAGE}")
    return refused


def stage_parquet(conn: duckdb.DuckDBPyConnection, paths: list[Path], default_type: str | None) -> Staged:
    """Stage Parquet files that share one schema as a view; every column is read as text so that
    one path validates all formats.

    A view, not a table: Parquet is columnar and carries its own row numbers, so the few passes
    over the stage read the files again faster than a copy of them could be written.
    """
    drop_stage(conn)
    many = len(paths) > 1
    source = f"read_parquet({_file_list(paths) if many else lit(str(paths[0]))}, file_row_number=true" \
             f"{', filename=true' if many else ''})"
    try:
        described = rows(conn, f"DESCRIBE SELECT * FROM read_parquet({lit(str(paths[0]))})")
    except duckdb.Error as exc:
        raise ReaderError(f"{paths[0]}: not a readable Parquet file ({str(exc).splitlines()[0]})") from exc
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
    extra = _extra_sql([lowered[c] for c in unknown], {lowered[c]: c for c in unknown})
    selected = ", ".join(f"CAST({q(c)} AS VARCHAR) AS {q(lowered[c])}" for c in columns if lowered[c] in present)
    # with several files, _ord must be unique across them: the file's index in the list, then the row
    order = "file_row_number + 1" if not many else \
        "(list_position(" + _file_list(paths) + ", filename)) * 10000000000 + file_row_number + 1"
    conn.execute(
        f"CREATE TEMP VIEW {STAGE} AS SELECT file_row_number AS rowid, {order} AS _ord, "
        f"file_row_number + 1 AS _line, {'filename' if many else 'CAST(NULL AS VARCHAR)'} AS _file, "
        f"CAST(NULL AS VARCHAR) AS _raw, {type_sql} AS _type, CAST(NULL AS VARCHAR) AS _reason, {extra} AS _extra"
        f"{', ' + selected if selected else ''} FROM {source}"
    )
    try:
        count = scalar(conn, f"SELECT count(*) FROM {STAGE}")
    except duckdb.Error as exc:
        raise ReaderError(f"{paths[0]}: not a readable Parquet file ({str(exc).splitlines()[0]})") from exc
    return Staged(count, present | ({TYPE_MARKER} if type_src else set()), [])


def stage_records(
    conn: duckdb.DuckDBPyConnection,
    sources: Iterable[tuple[Path, Callable[[], Iterator[Record]]]],
    default_type: str | None,
    many: bool,
    chunk: int = 200_000,
) -> Staged:
    """Stage records from Python readers, file after file, in chunks through Arrow. A file whose
    reader fails part-way is unstaged and refused; the other files stay."""
    drop_stage(conn)
    _create_empty_stage(conn)
    present: set[str] = set()
    total = 0
    buffer: list[tuple[str | None, Record]] = []
    refused: list[FileProblem] = []

    def flush() -> None:
        nonlocal total
        if not buffer:
            return
        names = sorted({k for _, r in buffer for k in r.values if k in INPUT_NAMES})
        for name in names:
            if name not in present:
                conn.execute(f"ALTER TABLE {STAGE} ADD COLUMN {q(name)} VARCHAR")
                present.add(name)
        data: dict[str, list] = {m: [] for m in META}
        for name in names:
            data[name] = []
        for offset, (file, record) in enumerate(buffer):
            kind = record.event_type or default_type
            if kind is not None:
                try:
                    kind = event_type(kind).name
                except KeyError:
                    pass
            data["_ord"].append(total + offset + 1)
            data["_line"].append(record.line)
            data["_file"].append(file)
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

    for path, read in sources:
        file = str(path) if many else None
        try:
            for record in read():
                buffer.append((file, record))
                if len(buffer) >= chunk:
                    flush()
        except (ReaderError, OSError, ValueError, RecursionError, EOFError, UnicodeError) as exc:
            buffer[:] = [(f, r) for f, r in buffer if f != file]
            if many:
                conn.execute(f"DELETE FROM {STAGE} WHERE _file = ?", [file])
            else:
                conn.execute(f"DELETE FROM {STAGE}")
            total = scalar(conn, f"SELECT count(*) FROM {STAGE}") + len(buffer)
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            refused.append(FileProblem(path, message if str(path) in message else f"{path}: cannot read ({message})"))
    flush()
    return Staged(total, present, refused)


def _create_empty_stage(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        f"CREATE TEMP TABLE {STAGE} (_ord BIGINT, _line BIGINT, _file VARCHAR, _raw VARCHAR, _type VARCHAR, "
        f"_reason VARCHAR, _extra VARCHAR)"
    )


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"
