"""Land files in the raw layer, one batch (one transaction) at a time, losing nothing.

A batch is one file, or several small files of one shape (see ``ingest.runner``): staged as
text together, typed and validated in SQL, personal identifiers hashed and identifier-shaped
text redacted, missing event ids derived, what is already landed dropped (duplicates), the rest
landed, every rejected row quarantined with its reason, the data contract (great-expectations)
run once on what the batch landed, and the batch and each of its files recorded in the ledger —
all inside one transaction, so a crash leaves nothing half-done and a re-run completes it.
Counts reconcile per file and per batch: read = loaded + duplicates + quarantined. A file that
cannot be taken as it is (a quote that never closes, a reader that fails part-way) is left out
of its batch whole and reported; the other files land.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pyarrow as pa

from ingest.contract import EVENT_TYPES, EventType
from ingest.detect import PYTHON_READERS, reader_module, type_from_name
from ingest.expectations import SuiteResult, validate_batch
from ingest.hash_tables import build_hash_tables
from ingest.lake import LakeSink
from ingest.normalise import file_sql, hash_context_sql, lit, q, typed_select_sql
from ingest.readers.base import ReaderError
from ingest.redact import redact_json, redact_reason, redact_text
from ingest.schema import ensure_raw_schema
from ingest.stage import (
    INPUT_NAMES, LINE_SQL, ORD_SQL, STAGE, TYPE_MARKER, FileProblem, Staged, drop_stage, stage_csv, stage_parquet,
    stage_records,
)
from warehouse.sql import one, rows, scalar

FAULT_ENV = "NUDGELAB_FAULT"  # test hook: "after_land" kills the process before the batch commits
RAW_KEEP = 65_536  # quarantine keeps this much of a rejected record
FREE_TEXT_INPUTS = frozenset(f.input_name for t in EVENT_TYPES.values() for f in t.fields if f.free_text)
# A superset, in DuckDB's regular expressions, of text that might hold an address: only such
# values go through the exact (Python) redaction.
MIGHT_HOLD_ADDRESS = r"@|%40|\d[\d ().-]{6,}\d"
IDENTIFIER_KEY = r'(?i)"[^"]*(msisdn|phone|mobile|cell|mail|recipient|sender|address|ip|to|from)[^"]*"\s*:'
COUNTS = ("rows_read", "loaded", "duplicates", "quarantined")


def _zero() -> dict[str, int]:
    return {name: 0 for name in COUNTS}


@dataclass
class FileResult:
    """One file's share of a batch: its counts reconcile on their own."""

    source_file: str
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    note: str = ""

    def total(self, name: str) -> int:
        return sum(counts[name] for counts in self.by_type.values())


@dataclass
class BatchResult:
    batch_id: str
    source_file: str  # the file, or "N files in DIR" for a batch of small files
    source_format: str
    rows_read: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    validation: list[SuiteResult] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""
    files: list[FileResult] = field(default_factory=list)

    @property
    def validation_success(self) -> bool:
        return all(v.success for v in self.validation)


@dataclass
class IngestSummary:
    batches: list[BatchResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def total(self, attr: str) -> int:
        return sum(getattr(b, attr) for b in self.batches)

    def as_dict(self) -> dict:
        by_type: dict[str, dict[str, int]] = {}
        for batch in self.batches:
            for kind, counts in batch.by_type.items():
                slot = by_type.setdefault(kind, _zero())
                for key, value in counts.items():
                    slot[key] += value
        return {
            "rows_read": self.total("rows_read"),
            "loaded": self.total("loaded"),
            "duplicates": self.total("duplicates"),
            "quarantined": self.total("quarantined"),
            "by_type": by_type,
            "files": sum(len(b.files) for b in self.batches),
            "batches": [
                {
                    "batch_id": b.batch_id,
                    "source_file": b.source_file,
                    "format": b.source_format,
                    "rows_read": b.rows_read,
                    "loaded": b.loaded,
                    "duplicates": b.duplicates,
                    "quarantined": b.quarantined,
                    "validation_success": b.validation_success,
                    "validation": [v.as_dict() for v in b.validation],
                    "note": b.note,
                    "files": [{"source_file": f.source_file, **{n: f.total(n) for n in COUNTS}, "note": f.note}
                              for f in b.files],
                }
                for b in self.batches
            ],
            "errors": self.errors,
        }


def check_timezone(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ReaderError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris or UTC)") from exc
    return name


def _register(conn: duckdb.DuckDBPyConnection, name: str, columns: dict[str, pa.Array]) -> None:
    """A temp table from Python values (through Arrow)."""
    conn.register(f"{name}_arrow", pa.table(columns))
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
    conn.unregister(f"{name}_arrow")


def _redact_stage(conn: duckdb.DuckDBPyConnection, present: set[str], key: bytes) -> None:
    """Redact identifier-shaped text in columns the contract cannot type (``_extra``) and in free
    text (a reply, a URL) before anything lands. A regular expression in SQL finds the few values
    that might hold an address; only those go through Python."""
    targets = [("_extra", True)] + [(c, False) for c in sorted(present & FREE_TEXT_INPUTS)]
    for column, is_extra in targets:
        pattern = f"{MIGHT_HOLD_ADDRESS}|{IDENTIFIER_KEY}" if is_extra else MIGHT_HOLD_ADDRESS
        cond = f"{q(column)} IS NOT NULL AND regexp_matches({q(column)}, {lit(pattern)})"
        candidates = [v for (v,) in rows(conn, f"SELECT DISTINCT {q(column)} FROM {STAGE} WHERE {cond}")]
        if not candidates:
            continue
        redact = redact_json if is_extra else redact_text
        changed = [(v, redact(v, key)) for v in candidates]
        changed = [(old, new) for old, new in changed if new != old]
        if not changed:
            continue
        _materialise_stage(conn)
        _register(conn, "redacted", {"old": pa.array([o for o, _ in changed], pa.string()),
                                     "new": pa.array([n for _, n in changed], pa.string())})
        conn.execute(f"UPDATE {STAGE} SET {q(column)} = r.new FROM redacted r WHERE {STAGE}.{q(column)} = r.old")
        conn.execute("DROP TABLE IF EXISTS redacted")


def _materialise_stage(conn: duckdb.DuckDBPyConnection) -> None:
    """A Parquet stage is a view over the file; before changing values, make it a table."""
    if not scalar(conn, "SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND temporary", [STAGE]):
        return
    conn.execute(f"CREATE TEMP TABLE {STAGE}_table AS SELECT * FROM {STAGE}")
    conn.execute(f"DROP VIEW {STAGE}")
    conn.execute(f"ALTER TABLE {STAGE}_table RENAME TO {STAGE}")


def _typed_table(conn, spec: EventType, present: set[str], hash_tables: dict[str, str], tz: str | None,
                 landed: Callable[[EventType], str]) -> str:
    """Materialise the typed rows of one event type, with event ids, derived flags and reasons
    (``landed``: the relation of a type's events landed by earlier batches)."""
    name = f"typed_{spec.name}"
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {typed_select_sql(spec, STAGE, present, hash_tables, tz)}")
    if spec.name in ("deliveries", "clicks"):
        _join_receipts_to_sends(conn, name, landed(EVENT_TYPES["sends"]))
    if spec.name == "clicks":  # a click must reach a message or a user; a provider id alone says neither
        conn.execute(
            f"""UPDATE {name} SET _reasons = 'the click names only the provider''s message id ' || provider_message_id
            || ', which no loaded send carries: load the sends first, or put message_id in the tracked link'
            WHERE _reasons IS NULL AND message_id IS NULL AND user_id IS NULL""")
    return name


def _join_receipts_to_sends(conn: duckdb.DuckDBPyConnection, typed: str, sends: str) -> None:
    """Receipts (and ESPs' opens and clicks) that carry only the provider's id get the message (and
    its user, campaign, channel) through the provider id recorded at send time, in the warehouse or
    in this same batch."""
    sends_in_batch = (
        "UNION ALL SELECT provider_message_id, message_id, user_id, campaign_id, channel FROM typed_sends"
        if scalar(conn, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'typed_sends' AND temporary")
        else ""
    )
    conn.execute(
        f"""
        UPDATE {typed} AS t SET
            message_id = coalesce(t.message_id, m.message_id),
            user_id = coalesce(t.user_id, m.user_id),
            campaign_id = coalesce(t.campaign_id, m.campaign_id),
            channel = coalesce(t.channel, m.channel)
        FROM (
            SELECT provider_message_id, any_value(message_id) AS message_id, any_value(user_id) AS user_id,
                   any_value(campaign_id) AS campaign_id, any_value(channel) AS channel
            FROM (SELECT provider_message_id, message_id, user_id, campaign_id, channel FROM {sends}
                  WHERE provider_message_id IN (SELECT provider_message_id FROM {typed} WHERE message_id IS NULL)
                  {sends_in_batch})
            WHERE provider_message_id IS NOT NULL
            GROUP BY provider_message_id
        ) AS m
        WHERE (t.message_id IS NULL OR t.user_id IS NULL) AND t.provider_message_id = m.provider_message_id
        """
    )


def _raw_record_sql(present: set[str]) -> str:
    present = present & INPUT_NAMES
    if not present:
        return "s._raw"
    packed = ", ".join(f"{q(c)} := s.{q(c)}" for c in sorted(present))
    return f"left(coalesce(s._raw, CAST(to_json(struct_pack({packed})) AS VARCHAR)), {RAW_KEEP})"


def _quarantine(conn: duckdb.DuckDBPyConnection, select: str, batch_id: str, key: bytes) -> None:
    """Insert rejected rows (file, line, type, record, reason) into raw.quarantine, with every
    identifier in the record and the reason hashed: the quarantine keeps where and why, not who."""
    found = rows(conn, select)
    if not found:
        return
    _register(conn, "quarantined", {
        "source_file": pa.array([r[0] for r in found], pa.string()),
        "line_number": pa.array([r[1] for r in found], pa.int64()),
        "event_type": pa.array([r[2] for r in found], pa.string()),
        "raw_record": pa.array([redact_json(r[3], key) for r in found], pa.string()),
        "reason": pa.array([redact_reason(r[4], key) or "rejected" for r in found], pa.string()),
    })
    conn.execute(f"INSERT INTO raw.quarantine SELECT {lit(batch_id)}, source_file, line_number, event_type, "
                 "raw_record, reason, now() FROM quarantined")
    conn.execute("DROP TABLE IF EXISTS quarantined")


def _land_type(conn, spec: EventType, typed: str, batch_id: str, single: str, many: bool, present: set[str],
               key: bytes, history: str) -> dict[str, dict[str, int]]:
    """Insert the new good rows of one type, quarantine the bad ones; return the counts per file.
    ``history``: the relation holding this type's events landed by earlier batches."""
    # Duplicates: an event id seen earlier in this batch, or already landed by an earlier batch.
    # Grouping finds the few repeated ids cheaply; only those are ranked.
    conn.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE dup_ords AS
        WITH repeated AS (
            SELECT event_id FROM {typed} WHERE _reasons IS NULL GROUP BY event_id HAVING count(*) > 1
        ), ranked AS (
            SELECT _ord, row_number() OVER (PARTITION BY event_id ORDER BY _ord) AS rank
            FROM {typed} WHERE _reasons IS NULL AND event_id IN (SELECT event_id FROM repeated)
        )
        SELECT _ord FROM ranked WHERE rank > 1
        UNION ALL
        SELECT t._ord FROM {typed} t SEMI JOIN {history} r ON r.event_id = t.event_id
        WHERE t._reasons IS NULL
        """
    )
    if scalar(conn, "SELECT count(*) FROM dup_ords"):
        conn.execute(f"UPDATE {typed} SET _dup = TRUE WHERE _ord IN (SELECT _ord FROM dup_ords)")
    columns = [c.name for c in spec.columns]
    source = f"coalesce(t._file, {lit(single)})"
    loader_filled = {
        "source": source,
        "extra": "CAST(t._extra AS JSON)",
        "batch_id": lit(batch_id),
        "line_number": "t._line",
        "ingested_at": "now()",
    }
    select = ", ".join(loader_filled.get(c, f"t.{q(c)}") for c in columns)
    conn.execute(
        f"INSERT INTO {spec.table} ({', '.join(q(c) for c in columns)}) SELECT {select} FROM {typed} t "
        f"WHERE t._reasons IS NULL AND NOT t._dup"
    )
    counts = "count(*), count(_reasons), count(*) FILTER (WHERE _dup)"
    if many:
        per_file = rows(conn, f"SELECT {source}, {counts} FROM {typed} t GROUP BY 1")
    else:  # one file: no per-row grouping (its path is not even stored per row)
        per_file = [(single, *one(conn, f"SELECT {counts} FROM {typed}"))]
    if any(quarantined for _, _, quarantined, _ in per_file):  # the join back to the staged text: rejected rows only
        _quarantine(conn, f"""
            SELECT {source}, t._line, {lit(spec.name)}, {_raw_record_sql(present)}, t._reasons
            FROM {typed} t JOIN {STAGE} s ON {ORD_SQL} = t._ord
            WHERE t._reasons IS NOT NULL""", batch_id, key)
    return {file: {"rows_read": read, "loaded": read - quarantined - dups, "duplicates": dups, "quarantined": quarantined}
            for file, read, quarantined, dups in per_file}


def _quarantine_untyped(conn, batch_id: str, single: str, present: set[str], key: bytes) -> dict[str, int]:
    """Rows whose event type is missing or unknown cannot be typed: quarantine them as they are."""
    known = ", ".join(lit(t) for t in EVENT_TYPES)
    cond = f"s._type IS NULL OR s._type NOT IN ({known})"
    per_file = dict(rows(conn, f"SELECT {file_sql(single)}, count(*) FROM {STAGE} s WHERE {cond} GROUP BY 1"))
    if per_file:
        _quarantine(conn, f"""
            SELECT {file_sql(single)}, {LINE_SQL}, s._type, {_raw_record_sql(present)},
                   coalesce(s._reason, CASE WHEN s._type IS NULL THEN 'no event type: pass --type or add an event_type field'
                        ELSE 'unknown event type ' || s._type || ' (expected one of {", ".join(EVENT_TYPES)})' END)
            FROM {STAGE} s WHERE {cond}""", batch_id, key)
    return per_file


def _stage_files(conn, paths: list[Path], fmt: str, event_type: str | None) -> Staged:
    many = len(paths) > 1
    if fmt == "csv":
        return stage_csv(conn, paths, event_type or type_from_name(paths[0]))
    if fmt == "parquet":
        return stage_parquet(conn, paths, event_type or type_from_name(paths[0]))
    if fmt not in PYTHON_READERS:
        raise ReaderError(f"unknown format {fmt!r}")
    module = reader_module(fmt)
    sources = [(p, lambda p=p: module.read(p, event_type or type_from_name(p))) for p in paths]
    return stage_records(conn, sources, event_type or type_from_name(paths[0]), many)


def new_batch_id(path: Path) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    digest = hashlib.sha1(f"{path.resolve()}|{uuid.uuid4()}".encode()).hexdigest()[:8]
    return f"b{stamp}-{digest}"


def _describe(paths: list[Path]) -> str:
    if len(paths) == 1:
        return str(paths[0])
    folder = Path(os.path.commonpath([str(p.parent) for p in paths]))
    return f"{len(paths)} files in {folder}"


def _has_records_text(path: Path, fmt: str) -> bool:
    """True when an empty-staged file has content beyond what a header-only file carries."""
    from ingest.readers.base import open_binary

    with open_binary(path) as handle:
        data = handle.read(1 << 16)
    lines = [line.strip() for line in data.splitlines() if line.strip()]
    if fmt == "json":
        return b"".join(lines) not in (b"", b"[]")
    return len(lines) > (1 if fmt == "csv" else 0)


def ingest_batch(
    conn: duckdb.DuckDBPyConnection,
    paths: list[Path],
    *,
    key: bytes,
    fmt: str,
    event_type: str | None = None,
    timezone_name: str | None = None,
    validate: bool = True,
    sink: LakeSink | None = None,
) -> tuple[BatchResult | None, list[str]]:
    """Ingest ``paths`` (one file, or small files of one shape) as one batch in one transaction.

    With ``sink`` the batch lands in a lake (``ingest.lake``): deduplicated against the lake's
    events, written out as Parquet inside the transaction, moved into place after the commit.

    Returns the batch (None when every file was refused) and one error line per refused file.
    Raises ReaderError when the batch as a whole cannot be read.
    """
    started_clock = time.perf_counter()
    started = datetime.now(timezone.utc)
    single = str(paths[0])
    result = BatchResult(new_batch_id(paths[0]), _describe(paths), fmt)
    ensure_raw_schema(conn)
    # Staging touches only this connection's temporary tables; the batch's transaction starts
    # when the shared tables do (and temp rows committed before it keep plain rowids).
    try:
        staged = _stage_files(conn, paths, fmt, event_type)
    except duckdb.Error as exc:
        raise ReaderError(f"{_describe(paths)}: cannot read as {fmt} ({str(exc).splitlines()[0]})") from exc
    errors = [str(problem) for problem in staged.refused]
    refused = {problem.path for problem in staged.refused}
    kept = [p for p in paths if p not in refused]
    for path in kept:
        result.files.append(FileResult(str(path)))
    if not kept:
        drop_stage(conn)
        return None, errors
    present = staged.present
    _redact_stage(conn, present, key)
    hash_tables = build_hash_tables(conn, present, key)
    # From here on every row carries its own order (_ord) and line: DuckDB may process in parallel
    # without keeping insertion order (the stage above needed it: its rowids are the file's order).
    conn.execute("SET preserve_insertion_order = false")
    conn.execute("BEGIN TRANSACTION")
    try:
        if fmt in ("csv", "parquet") and TYPE_MARKER not in present and (event_type or type_from_name(paths[0])):
            kinds = [event_type or type_from_name(paths[0])]  # one type for the whole file: no scan for others
        else:
            kinds = [r[0] for r in rows(conn, f"SELECT DISTINCT _type FROM {STAGE} WHERE _type IS NOT NULL")]
        files = {f.source_file: f for f in result.files}
        landed = sink.history if sink is not None else (lambda spec: spec.table)  # earlier batches' events
        # sends first, so that receipts in the same batch can find their provider ids
        for kind in sorted((k for k in kinds if k in EVENT_TYPES), key=lambda k: (k != "sends", k)):
            spec = EVENT_TYPES[kind]
            typed = _typed_table(conn, spec, present, hash_tables, timezone_name, landed)
            for file, counts in _land_type(conn, spec, typed, result.batch_id, single, len(paths) > 1, present,
                                           key, landed(spec)).items():
                files[file].by_type[kind] = counts
        for kind in kinds:
            if kind in EVENT_TYPES:
                conn.execute(f"DROP TABLE IF EXISTS typed_{kind}")
        for file, count in _quarantine_untyped(conn, result.batch_id, single, present, key).items():
            files[file].by_type["(unknown)"] = {"rows_read": count, "loaded": 0, "duplicates": 0, "quarantined": count}
        for file in result.files:
            if not file.total("rows_read"):
                if _has_records_text(Path(file.source_file), fmt):
                    raise _NoRecords(Path(file.source_file))
                file.note = "empty file (no records)"
            for kind, counts in file.by_type.items():
                slot = result.by_type.setdefault(kind, _zero())
                for name in COUNTS:
                    slot[name] += counts[name]
        for counts in result.by_type.values():
            result.rows_read += counts["rows_read"]
            result.loaded += counts["loaded"]
            result.duplicates += counts["duplicates"]
            result.quarantined += counts["quarantined"]
        if len(result.files) == 1 and result.files[0].note:
            result.note = result.files[0].note
        if os.environ.get(FAULT_ENV) == "after_land":
            os._exit(17)
        if validate:
            for kind, counts in result.by_type.items():
                if kind in EVENT_TYPES and counts["loaded"]:
                    result.validation.append(validate_batch(conn, kind, result.batch_id, counts["loaded"]))
        _record_batch(conn, result, started)
        if sink is not None:
            sink.stage_batch(conn, result.batch_id,
                             [k for k, c in result.by_type.items() if k in EVENT_TYPES and c["loaded"]])
        conn.execute("COMMIT")
    except BaseException:
        try:  # a failed statement may have ended the transaction already; the first error is the one to tell
            conn.execute("ROLLBACK")
        except duckdb.Error:
            pass
        if sink is not None:
            sink.discard_batch(result.batch_id)
        raise
    finally:
        _clean_up(conn)
    if sink is not None:
        sink.publish_batch(result.batch_id)
    result.seconds = time.perf_counter() - started_clock
    return result, errors


class _NoRecords(ReaderError):
    """A file with content from which no record could be read: an error, not an empty success."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: has content but no record could be read from it (is it really in this format? "
                         "pass --format)")
        self.path = path


def _clean_up(conn: duckdb.DuckDBPyConnection) -> None:
    try:
        conn.execute("SET preserve_insertion_order = true")
        drop_stage(conn)
        for table in ("dup_ords", "hash_recipient", "hash_phone", "hash_sender", "hash_email", "hash_ip",
                      "csv_rejects", "redacted", "quarantined", *(f"typed_{k}" for k in EVENT_TYPES)):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    except duckdb.Error:
        pass


def ingest_file(conn: duckdb.DuckDBPyConnection, path: Path, *, key: bytes, fmt: str = "auto",
                event_type: str | None = None, timezone_name: str | None = None, validate: bool = True) -> BatchResult:
    """Ingest one file as one batch. Raises ReaderError if it cannot be read or was refused."""
    from ingest.detect import detect_format

    result, errors = ingest_batch(conn, [path], key=key, fmt=detect_format(path, fmt), event_type=event_type,
                                  timezone_name=timezone_name, validate=validate)
    if result is None:
        raise ReaderError(errors[0])
    return result


def _record_batch(conn: duckdb.DuckDBPyConnection, result: BatchResult, started: datetime) -> None:
    conn.execute(
        "INSERT INTO raw.ingest_batches VALUES (?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?)",
        [
            result.batch_id,
            result.source_file,
            result.source_format,
            started,
            result.rows_read,
            result.loaded,
            result.duplicates,
            result.quarantined,
            json.dumps(result.by_type),
            result.validation_success,
            json.dumps([v.as_dict() for v in result.validation], default=str),
        ],
    )
    conn.executemany(
        "INSERT INTO raw.ingest_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[result.batch_id, f.source_file, result.source_format, f.total("rows_read"), f.total("loaded"),
          f.total("duplicates"), f.total("quarantined"), json.dumps(f.by_type), f.note or None] for f in result.files],
    )
