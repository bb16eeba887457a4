"""Ingest many files: walk paths, drain the spool, one batch per file, with a progress bar."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.detect import expand
from ingest.loader import IngestSummary, check_timezone, ingest_file
from ingest.readers.base import ReaderError
from ingest.spool import closed_files, mark_done
from warehouse.connections import connect_build
from warehouse.lock import warehouse_lock
from warehouse.settings import Settings


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
) -> IngestSummary:
    """Ingest every file under ``paths`` (and the spool's closed files when ``spool``).

    A file that cannot be read is reported in ``summary.errors`` and the others still load.
    """
    summary = IngestSummary()
    tz = check_timezone(timezone_name)
    if event_type is not None:
        from ingest.contract import event_type as lookup

        try:
            event_type = lookup(event_type).name
        except KeyError as exc:
            raise ReaderError(str(exc.args[0])) from exc
    files: list[tuple[Path, bool]] = []
    for path in paths:
        try:
            files += [(f, False) for f in expand([path])]
        except ReaderError as exc:
            summary.errors.append(str(exc))
    if spool:
        files += [(f, True) for f in closed_files(settings.spool_dir)]
    if not files:
        if not summary.errors:
            summary.errors.append("nothing to ingest: no files found" + (" (spool is empty)" if spool else ""))
        return summary
    with warehouse_lock(settings.home, "nudgelab ingest"):
        _ingest_files(settings, files, summary, fmt, event_type, tz, show_progress, quiet)
    return summary


def _ingest_files(settings: Settings, files: list[tuple[Path, bool]], summary: IngestSummary, fmt: str,
                  event_type: str | None, timezone_name: str | None, show_progress: bool, quiet: bool) -> None:
    conn = connect_build(settings)
    key = settings.hash_key()
    console = Console(stderr=True)
    try:
        with Progress(
            TextColumn("[bold]ingest[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not show_progress,
            transient=True,
        ) as progress:
            task = progress.add_task("", total=len(files))
            for path, from_spool in files:
                progress.update(task, description=path.name)
                try:
                    result = ingest_file(
                        conn, path, key=key, fmt="jsonl" if from_spool else fmt,
                        event_type=event_type, timezone_name=timezone_name,
                    )
                except ReaderError as exc:
                    summary.errors.append(str(exc) if str(path) in str(exc) else f"{path}: {exc}")
                    progress.advance(task)
                    continue
                summary.batches.append(result)
                if from_spool:
                    mark_done(path)
                if not quiet and not show_progress:
                    console.print(
                        f"  {path.name}: read {result.rows_read:,}, loaded {result.loaded:,}, "
                        f"duplicates {result.duplicates:,}, quarantined {result.quarantined:,} "
                        f"({result.seconds:.1f}s)", highlight=False, soft_wrap=True,
                    )
                progress.advance(task)
    finally:
        conn.close()
