"""Land files in the raw layer, one batch (one transaction) per file, losing nothing.

For each file: stage it as text, type and validate it in SQL, hash personal identifiers, derive
missing event ids, drop what is already landed (duplicates), land the rest, quarantine every
rejected row with its reason, run the data contract (great-expectations) on what landed, and
record the batch in the ledger — all inside one transaction, so a crash leaves nothing half-done
and a re-run completes it. Counts always reconcile: read = loaded + duplicates + quarantined.
"""

from __future__ import annotations

import hashlib
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

from ingest import hashing
from ingest.contract import EVENT_TYPES, EventType
from ingest.detect import detect_format, type_from_name, vendor_module
from ingest.expectations import SuiteResult, validate_batch
from ingest.normalise import hash_context_sql, lit, q, typed_select_sql
from ingest.readers import jsonl
from ingest.readers.base import ReaderError
from ingest.schema import ensure_raw_schema
from ingest.stage import (
    INPUT_NAMES, LINE_SQL, ORD_SQL, STAGE, TYPE_MARKER, drop_stage, stage_csv, stage_parquet, stage_records,
)
from warehouse.sql import one, scalar

FAULT_ENV = "NUDGELAB_FAULT"  # test hook: "after_land" kills the process before the batch commits
RAW_KEEP = 65_536  # quarantine keeps this much of a rejected record


@dataclass
class BatchResult:
    batch_id: str
    source_file: str
    source_format: str
    rows_read: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    validation: list[SuiteResult] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

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
                slot = by_type.setdefault(kind, {"rows_read": 0, "loaded": 0, "duplicates": 0, "quarantined": 0})
                for key, value in counts.items():
                    slot[key] += value
        return {
            "rows_read": self.total("rows_read"),
            "loaded": self.total("loaded"),
            "duplicates": self.total("duplicates"),
            "quarantined": self.total("quarantined"),
            "by_type": by_type,
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


def _hasher(input_name: str) -> Callable[[str, str | None], str]:
    if input_name == "recipient":
        return lambda v, ctx: hashing.normalise_recipient(v, ctx)
    if input_name == "phone":
        return lambda v, ctx: hashing.normalise_phone(v, ctx)
    if input_name == "sender":
        return lambda v, ctx: hashing.normalise_contact(v, ctx)
    if input_name == "email":
        return lambda v, ctx: hashing.normalise_email(v)
    if input_name == "ip":
        return lambda v, ctx: hashing.normalise_ip(v)
    raise ValueError(input_name)


def _build_hash_tables(conn: duckdb.DuckDBPyConnection, present: set[str], key: bytes) -> dict[str, str]:
    """For each identifier column, a temp table mapping each distinct value to its keyed hash."""
    tables: dict[str, str] = {}
    for input_name in sorted(n for n in ("recipient", "phone", "sender", "email", "ip") if n in present):
        ctx = hash_context_sql(input_name, present)
        pairs = conn.execute(
            f"SELECT DISTINCT s.{q(input_name)}, {ctx} FROM {STAGE} s WHERE nullif(s.{q(input_name)}, '') IS NOT NULL"
        ).fetchall()
        normalise = _hasher(input_name)
        values, contexts, hashed, reasons = [], [], [], []
        for value, context in pairs:
            values.append(value)
            contexts.append(context)
            try:
                hashed.append(hashing.keyed_hash(normalise(value, context), key))
                reasons.append(None)
            except hashing.HashError as exc:
                hashed.append(None)
                reasons.append(f"{input_name}: {exc}")
        table = f"hash_{input_name}"
        conn.register(
            f"{table}_arrow",
            pa.table({"value": values, "context": pa.array(contexts, pa.string()), "hashed": pa.array(hashed, pa.string()),
                      "reason": pa.array(reasons, pa.string())}),
        )
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {table}_arrow")
        conn.unregister(f"{table}_arrow")
        tables[input_name] = table
    return tables


def _typed_table(conn, spec: EventType, present: set[str], hash_tables: dict[str, str], tz: str | None) -> str:
    """Materialise the typed rows of one event type, with event ids, derived flags and reasons."""
    name = f"typed_{spec.name}"
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {typed_select_sql(spec, STAGE, present, hash_tables, tz)}")
    if spec.name == "deliveries":
        _join_receipts_to_sends(conn, name)
    return name


def _join_receipts_to_sends(conn: duckdb.DuckDBPyConnection, typed: str) -> None:
    """Receipts that carry only the provider's id get the message (and its user, campaign, channel)
    through the provider id recorded at send time, in the warehouse or in this same batch."""
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
            FROM (SELECT provider_message_id, message_id, user_id, campaign_id, channel FROM raw.sends
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


def _land_type(conn, spec: EventType, typed: str, batch_id: str, source: str, present: set[str]) -> dict[str, int]:
    """Insert the new good rows of one type, quarantine the bad ones; return the counts."""
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
        SELECT t._ord FROM {typed} t SEMI JOIN {spec.table} r ON r.event_id = t.event_id
        WHERE t._reasons IS NULL
        """
    )
    duplicates = scalar(conn, "SELECT count(DISTINCT _ord) FROM dup_ords")
    if duplicates:
        conn.execute(f"UPDATE {typed} SET _dup = TRUE WHERE _ord IN (SELECT _ord FROM dup_ords)")
    columns = [c.name for c in spec.columns]
    loader_filled = {
        "source": lit(source),
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
    read, quarantined = one(conn, f"SELECT count(*), count(_reasons) FROM {typed}")
    if quarantined:  # the join back to the staged text is only worth making for rejected rows
        conn.execute(
            f"""
            INSERT INTO raw.quarantine
            SELECT {lit(batch_id)}, {lit(source)}, t._line, {lit(spec.name)}, {_raw_record_sql(present)}, t._reasons, now()
            FROM {typed} t JOIN {STAGE} s ON {ORD_SQL} = t._ord
            WHERE t._reasons IS NOT NULL
            """
        )
    return {
        "rows_read": read,
        "loaded": read - quarantined - duplicates,
        "duplicates": duplicates,
        "quarantined": quarantined,
    }


def _quarantine_untyped(conn, batch_id: str, source: str, present: set[str]) -> int:
    """Rows whose event type is missing or unknown cannot be typed: quarantine them as they are."""
    known = ", ".join(lit(t) for t in EVENT_TYPES)
    cond = f"s._type IS NULL OR s._type NOT IN ({known})"
    count = scalar(conn, f"SELECT count(*) FROM {STAGE} s WHERE {cond}")
    if count:
        conn.execute(
            f"""
            INSERT INTO raw.quarantine
            SELECT {lit(batch_id)}, {lit(source)}, {LINE_SQL}, s._type, {_raw_record_sql(present)},
                   coalesce(s._reason, CASE WHEN s._type IS NULL THEN 'no event type: pass --type or add an event_type field'
                        ELSE 'unknown event type ' || s._type || ' (expected one of {", ".join(EVENT_TYPES)})' END), now()
            FROM {STAGE} s WHERE {cond}
            """
        )
    return count


def _stage_file(conn, path: Path, fmt: str, default_type: str | None) -> tuple[int, set[str]]:
    if fmt == "csv":
        return stage_csv(conn, path, default_type)
    if fmt == "parquet":
        return stage_parquet(conn, path, default_type)
    module = jsonl if fmt == "jsonl" else vendor_module(fmt)
    return stage_records(conn, module.read(path, default_type), default_type)


def new_batch_id(path: Path) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    digest = hashlib.sha1(f"{path.resolve()}|{uuid.uuid4()}".encode()).hexdigest()[:8]
    return f"b{stamp}-{digest}"


def ingest_file(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    key: bytes,
    fmt: str = "auto",
    event_type: str | None = None,
    timezone_name: str | None = None,
    validate: bool = True,
) -> BatchResult:
    """Ingest one file as one batch (one transaction). Raises ReaderError if it cannot be read."""
    started_clock = time.perf_counter()
    started = datetime.now(timezone.utc)
    chosen = detect_format(path, fmt)
    default_type = EVENT_TYPES[event_type].name if event_type else type_from_name(path)
    source = str(path)
    result = BatchResult(new_batch_id(path), source, chosen)
    ensure_raw_schema(conn)
    # Staging touches only this connection's temporary tables; the batch's transaction starts
    # when the shared tables do (and temp rows committed before it keep plain rowids).
    try:
        rows_read, present = _stage_file(conn, path, chosen, default_type)
    except duckdb.Error as exc:
        raise ReaderError(f"{path}: cannot read as {chosen} ({str(exc).splitlines()[0]})") from exc
    result.rows_read = rows_read
    if rows_read == 0:
        result.note = "empty file (no records)"
    hash_tables = _build_hash_tables(conn, present, key)
    # From here on every row carries its own order (_ord) and line: DuckDB may process in parallel
    # without keeping insertion order (the stage above needed it: its rowids are the file's order).
    conn.execute("SET preserve_insertion_order = false")
    conn.execute("BEGIN TRANSACTION")
    try:
        if chosen in ("csv", "parquet") and TYPE_MARKER not in present and default_type:
            kinds = [default_type]  # one type for the whole file: no need to scan for others
        else:
            kinds = [r[0] for r in conn.execute(f"SELECT DISTINCT _type FROM {STAGE} WHERE _type IS NOT NULL").fetchall()]
        # sends first, so that receipts in the same file can find their provider ids
        for kind in sorted((k for k in kinds if k in EVENT_TYPES), key=lambda k: (k != "sends", k)):
            spec = EVENT_TYPES[kind]
            typed = _typed_table(conn, spec, present, hash_tables, timezone_name)
            counts = _land_type(conn, spec, typed, result.batch_id, source, present)
            result.by_type[kind] = counts
        for kind in kinds:
            if kind in EVENT_TYPES:
                conn.execute(f"DROP TABLE IF EXISTS typed_{kind}")
        untyped = _quarantine_untyped(conn, result.batch_id, source, present)
        if untyped:
            result.by_type.setdefault("(unknown)", {"rows_read": untyped, "loaded": 0, "duplicates": 0, "quarantined": untyped})
        for counts in result.by_type.values():
            result.loaded += counts["loaded"]
            result.duplicates += counts["duplicates"]
            result.quarantined += counts["quarantined"]
        if os.environ.get(FAULT_ENV) == "after_land":
            os._exit(17)
        if validate:
            for kind, counts in result.by_type.items():
                if kind in EVENT_TYPES and counts["loaded"]:
                    result.validation.append(validate_batch(conn, kind, result.batch_id, counts["loaded"]))
        _record_batch(conn, result, started)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("SET preserve_insertion_order = true")
        try:
            drop_stage(conn)
            for table in ("dup_ords", "hash_recipient", "hash_phone", "hash_sender", "hash_email", "hash_ip"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")
        except duckdb.Error:
            pass
    result.seconds = time.perf_counter() - started_clock
    return result


def _record_batch(conn: duckdb.DuckDBPyConnection, result: BatchResult, started: datetime) -> None:
    import json

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
