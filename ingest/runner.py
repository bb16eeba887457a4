"""Ingest many files: walk paths, drain the spool, plan batches, with a progress bar.

Each large file is a batch of its own; small files of one shape (same format and event type,
for CSV the same header) are grouped into one batch of up to ``GROUP_FILES`` files or
``GROUP_BYTES`` bytes, so that a folder of 20,000 one-row files costs what its rows cost, not
20,000 transactions and expectation runs. A problem with one file is that file's error in the
summary; the run goes on. If a batch of small files fails as a whole, its files are retried one
by one, so only the file at fault is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.detect import detect_format, expand, type_from_name
from ingest.hashing import key_fingerprint
from ingest.lake import LakeSink, lake_root
from ingest.loader import IngestSummary, check_timezone, ingest_batch
from ingest.readers.base import ReaderError
from ingest.schema import HashKeyMismatch, check_hash_key, ensure_raw_schema, recorded_fingerprint
from ingest.spool import closed_files, mark_done, spool_format
from ingest.stage import header_line
from warehouse.connections import connect_build, connect_file
from warehouse.lock import warehouse_lock
from warehouse.settings import Settings

SMALL_BYTES = 1 << 20  # a file this small joins others of its shape in one batch
GROUP_FILES = 5_000
GROUP_BYTES = 64 << 20


@dataclass
class Batch:
    paths: list[Path]
    fmt: str
    event_type: str | None
    from_spool: bool
    size: int = 0


def _first_line(path: Path, fmt: str) -> bytes:
    return header_line(path) if fmt == "csv" else b""


def plan_batches(files: list[tuple[Path, bool]], fmt: str, event_type: str | None,
                 errors: list[str]) -> list[Batch]:
    """Batches in file order: small files of one shape grouped, every other file alone."""
    batches: list[Batch] = []
    shape_of_last = None
    for path, from_spool in files:
        try:
            chosen = spool_format(path) if from_spool else detect_format(path, fmt)
            size = path.stat().st_size
            shape = (chosen, event_type or type_from_name(path), from_spool, _first_line(path, chosen))
        except (ReaderError, OSError) as exc:
            errors.append(_one_line(path, exc))
            continue
        small = size <= SMALL_BYTES and chosen != "parquet"
        last = batches[-1] if batches else None
        if (small and last is not None and shape == shape_of_last and len(last.paths) < GROUP_FILES
                and last.size + size <= GROUP_BYTES):
            last.paths.append(path)
            last.size += size
        else:
            batches.append(Batch([path], chosen, event_type, from_spool, size))
            shape_of_last = shape if small else None
    return batches


def _one_line(path: Path, exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if str(path) in text else f"{path}: {text}"


def run_ingest(
    settings: Settings,
    paths: list[Path],
    *,
    fmt: str = "auto",
    event_type: str | None = None,
    timezone_name: str | None = None,
    spool: bool = False,
    show_progress: bool = False,
    quiet: bool = False,
    lake: Path | None = None,
) -> IngestSummary:
    """Ingest every file under ``paths`` (and the spool's closed files when ``spool``) into the
    warehouse, or with ``lake`` into that lake folder (``ingest.lake``).

    A file that cannot be read is reported in ``summary.errors`` and the others still load.
    Raises ReaderError (one line) when nothing can be attempted at all (a bad option, another
    hash key than the warehouse's).
    """
    summary = IngestSummary()
    tz = check_timezone(timezone_name)
    if event_type is not None:
        from ingest.contract import event_type as lookup

        try:
            event_type = lookup(event_type).name
        except KeyError as exc:
            raise ReaderError(str(exc.args[0])) from exc
    found, problems = expand(paths)
    summary.errors += problems
    files = [(f, False) for f in found]
    if spool:
        files += [(f, True) for f in closed_files(settings.spool_dir)]
    if not files:
        if not summary.errors:
            summary.errors.append("nothing to ingest: no files found" + (" (spool is empty)" if spool else ""))
        return summary
    if lake is None:
        target, lock_home, purpose = _Target(lambda: connect_build(settings), None), settings.home, "nudgelab ingest"
    else:
        try:
            sink = LakeSink(lake_root(lake))
            sink.work.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ReaderError(f"cannot use {lake} as a lake: {exc}") from exc
        target = _Target(lambda: connect_file(sink.landing, "the lake's working database"), sink)
        lock_home, purpose = sink.work, "nudgelab ingest --to lake"
    with warehouse_lock(lock_home, purpose):
        _ingest_files(settings, target, files, summary, fmt, event_type, tz, show_progress, quiet)
    return summary


@dataclass
class _Target:
    """Where batches land: the warehouse (no sink) or a lake's working database and its sink."""

    connect: Callable[[], duckdb.DuckDBPyConnection]
    sink: LakeSink | None


def _ingest_files(settings: Settings, target: _Target, files: list[tuple[Path, bool]], summary: IngestSummary,
                  fmt: str, event_type: str | None, timezone_name: str | None, show_progress: bool,
                  quiet: bool) -> None:
    conn = target.connect()
    try:
        if target.sink is not None:  # settle what a crashed run left, before anything new lands
            ensure_raw_schema(conn)
            for note in target.sink.recover(conn):  # on stderr even under --json: it is not the summary
                Console(stderr=True).print(note, highlight=False, soft_wrap=True)
        elif conn.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'raw' AND view_name = 'sends' "
                          "AND database_name = current_database()").fetchone()[0]:
            raise ReaderError(f"the warehouse in {settings.home} reads its raw layer from a lake (nudgelab build "
                              "--from-lake): land new files there with `nudgelab ingest --to lake DIR`")
        key = settings.hash_key(create=recorded_fingerprint(conn) is None)
        try:
            check_hash_key(conn, key_fingerprint(key))
        except HashKeyMismatch as exc:
            raise ReaderError(str(exc)) from exc
        batches = plan_batches(files, fmt, event_type, summary.errors)
        console = Console(stderr=True)
        with Progress(
            TextColumn("[bold]ingest[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not show_progress,
            transient=True,
        ) as progress:
            task = progress.add_task("", total=sum(len(b.paths) for b in batches))
            for batch in batches:
                progress.update(task, description=batch.paths[0].name if len(batch.paths) == 1
                                else f"{len(batch.paths)} files from {batch.paths[0].name}")
                conn = _run_batch(target, conn, batch, key, timezone_name, summary, console,
                                  quiet or show_progress)
                progress.advance(task, len(batch.paths))
    finally:
        conn.close()


def _run_batch(target: _Target, conn: duckdb.DuckDBPyConnection, batch: Batch, key: bytes,
               timezone_name: str | None, summary: IngestSummary, console: Console,
               quiet: bool) -> duckdb.DuckDBPyConnection:
    """Ingest one planned batch; on failure of a group, each of its files alone. Returns the
    connection to go on with (a new one if the failure broke the old)."""
    try:
        result, refused = ingest_batch(conn, batch.paths, key=key, fmt=batch.fmt, event_type=batch.event_type,
                                       timezone_name=timezone_name, sink=target.sink)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one file's (or group's) problem, never the run's
        conn = _usable(target, conn)
        if len(batch.paths) > 1:
            for path in batch.paths:
                conn = _run_batch(target, conn, Batch([path], batch.fmt, batch.event_type, batch.from_spool),
                                  key, timezone_name, summary, console, quiet)
            return conn
        summary.errors.append(_one_line(batch.paths[0], exc))
        return conn
    summary.errors += refused
    if result is None:
        return conn
    summary.batches.append(result)
    if batch.from_spool:
        for file in result.files:
            mark_done(Path(file.source_file))
    if not quiet:
        console.print(
            f"  {Path(result.source_file).name if len(result.files) == 1 else result.source_file}: "
            f"read {result.rows_read:,}, loaded {result.loaded:,}, duplicates {result.duplicates:,}, "
            f"quarantined {result.quarantined:,} ({result.seconds:.1f}s)", highlight=False, soft_wrap=True,
        )
    return conn


def _usable(target: _Target, conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The same connection if it still answers, else a fresh one (DuckDB invalidates a database
    after some I/O errors, such as a full disk)."""
    try:
        conn.execute("SELECT 1").fetchall()
        return conn
    except duckdb.Error:
        try:
            conn.close()
        except duckdb.Error:
            pass
        return target.connect()
