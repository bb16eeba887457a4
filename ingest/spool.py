"""The spool: append-only JSON-lines files where long-running processes leave events for ingest.

Receivers and the dispatch worker never hold the warehouse's write lock; they append events (in
the contract's input names, with an ``event_type`` key) to ``spool/<pid>-<uuid>.jsonl.partial``,
fsync'd after every write, and rename the file to ``.jsonl`` when they rotate or close it. The
drain ingests only closed files, each as one batch, then moves it to ``spool/done/``. A crash
between the commit and the move re-ingests the file next time, which loads nothing new
(every row is then a duplicate): nothing is lost and nothing counted twice. A writer that dies
before closing leaves its ``.partial`` file: the drain publishes it once that process is gone
(every complete line was fsync'd; a torn last line is cut off).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

PARTIAL = ".jsonl.partial"
CLOSED = ".jsonl"
DONE_DIR = "done"


class SpoolWriter:
    """Append events to one spool file; ``close()`` (or leaving the ``with`` block) publishes it."""

    def __init__(self, spool_dir: Path, max_events: int = 10_000, sync_each: bool = True) -> None:
        self.spool_dir = spool_dir
        self.max_events = max_events
        # sync_each=False: a writer that hands over a batch it can write again (dispatch flags rows
        # as spooled only after ``close``) syncs once, at close, instead of after every event
        self.sync_each = sync_each
        spool_dir.mkdir(parents=True, exist_ok=True)
        self._handle = None
        self._path: Path | None = None
        self._count = 0

    def _open(self) -> None:
        self._path = self.spool_dir / f"{os.getpid()}-{uuid.uuid4().hex}{PARTIAL}"
        self._handle = open(self._path, "a", encoding="utf-8")
        self._count = 0

    def write(self, event_type: str, record: dict[str, Any]) -> None:
        """Append one event durably (flushed and fsync'd before returning)."""
        if self._handle is None:
            self._open()
        line = json.dumps({"event_type": event_type, **record}, ensure_ascii=False, default=str)
        self._handle.write(line + "\n")
        if self.sync_each:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        self._count += 1
        if self._count >= self.max_events:
            self.close()

    def close(self) -> Path | None:
        """Close the current file and make it visible to the drain; returns its path."""
        if self._handle is None:
            return None
        if not self.sync_each:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        self._handle.close()
        assert self._path is not None
        closed = self._path.with_name(self._path.name[: -len(PARTIAL)] + CLOSED)
        os.replace(self._path, closed)
        self._handle = None
        self._path = None
        return closed

    def __enter__(self) -> "SpoolWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_partials(spool_dir: Path) -> list[Path]:
    """Publish the open files of writers that died (a crash before ``close``): every complete
    line in them was fsync'd and counts; a torn last line is cut off. Returns the files published."""
    published = []
    for path in sorted(spool_dir.glob(f"*{PARTIAL}")):
        pid_text = path.name.split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with open(path, "rb+") as handle:
            data = handle.read()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                handle.truncate(end)
        closed = path.with_name(path.name[: -len(PARTIAL)] + CLOSED)
        os.replace(path, closed)
        published.append(closed)
    return published


def closed_files(spool_dir: Path) -> list[Path]:
    """Spool files ready for ingest (closed ones, oldest first; dead writers' open files are
    published first)."""
    if not spool_dir.exists():
        return []
    recover_partials(spool_dir)
    files = [p for p in spool_dir.iterdir() if p.is_file() and p.name.endswith(CLOSED)]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def mark_done(path: Path) -> Path:
    """Move an ingested spool file out of the way (kept for audit in ``spool/done/``)."""
    done = path.parent / DONE_DIR
    done.mkdir(exist_ok=True)
    target = done / path.name
    os.replace(path, target)
    return target
