"""The spool: append-only JSON-lines files where long-running processes leave events for ingest.

Receivers and the dispatch worker never hold the warehouse's write lock; they append events (in
the contract's input names, with an ``event_type`` key) to ``spool/<pid>-<uuid>.jsonl.partial``,
fsync'd after every write, and rename the file to ``.jsonl`` when they rotate or close it. The
drain ingests only closed files, each as one batch, then moves it to ``spool/done/``. A crash
between the commit and the move re-ingests the file next time, which loads nothing new
(every row is then a duplicate): nothing is lost and nothing counted twice. A writer that dies
before closing leaves its ``.partial`` file: the drain publishes it once that process is gone
(every complete line was fsync'd; a torn last line is cut off).

The spool is format-aware: contract JSON lines sit at its top, and a vendor's requests as the
receiver got them sit in a folder named after the vendor's reader (``spool/kannel/``: one logged
callback per line), appended by ``LineAppender`` and read by that reader — so the status tables
live once, in ingestion.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

PARTIAL = ".jsonl.partial"
CLOSED = ".jsonl"
OPEN = ".partial"          # any spool file still being written
DONE_DIR = "done"
FORMAT_FOLDERS = ("kannel", "twilio", "sendgrid", "smpp")   # spool/<reader format>/


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
    for path in sorted(spool_dir.glob(f"*{OPEN}")):
        pid_text = path.name.split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with open(path, "rb+") as handle:
            data = handle.read()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                handle.truncate(end)
        closed = path.with_name(path.name[: -len(OPEN)])
        os.replace(path, closed)
        published.append(closed)
    return published


def closed_files(spool_dir: Path) -> list[Path]:
    """Spool files ready for ingest (closed ones, oldest first; dead writers' open files are
    published first): contract JSON lines at the top, vendor requests in their format folders."""
    if not spool_dir.exists():
        return []
    files = []
    for folder in (spool_dir, *(spool_dir / name for name in FORMAT_FOLDERS)):
        if not folder.is_dir():
            continue
        recover_partials(folder)
        top = folder == spool_dir
        files += [p for p in folder.iterdir() if p.is_file() and not p.name.endswith(OPEN)
                  and (p.name.endswith(CLOSED) or not top)]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def spool_format(path: Path) -> str:
    """The reader format of a spool file: its folder's name, or contract JSON lines at the top."""
    return path.parent.name if path.parent.name in FORMAT_FOLDERS else "jsonl"


class LineAppender:
    """Lines appended to ``spool/<folder>/<pid>-<uuid>.log.partial`` (``.jsonl`` for contract
    events at the spool's top), each fsync'd before ``append`` returns (a callback is answered only
    once it is durable), safe from many threads, with group commit: one fsync covers every line
    written before it, so concurrent callers share it instead of queueing for one each. The file is
    closed (renamed without ``.partial``) after ``max_lines`` lines or ``max_seconds`` —
    ``rotate_if_old`` is meant to be called every second or so, so a quiet receiver's last lines
    reach ingestion too."""

    def __init__(self, folder: Path, max_lines: int = 50_000, max_seconds: float = 5.0, suffix: str = ".log") -> None:
        self.folder, self.max_lines, self.max_seconds, self.suffix = folder, max_lines, max_seconds, suffix
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()        # the file and the write counter
        self._sync_lock = threading.Lock()   # fsync and close (taken before _lock, never after)
        self._fd: int | None = None
        self._path: Path | None = None
        self._lines = 0
        self._opened = 0.0
        self._written = 0                    # lines written, ever
        self._synced = 0                     # lines known durable

    def _open(self) -> None:
        self._path = self.folder / f"{os.getpid()}-{uuid.uuid4().hex}{self.suffix}{OPEN}"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lines, self._opened = 0, time.monotonic()

    def append(self, line: str) -> None:
        data = (line.replace("\n", " ").replace("\r", " ") + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            os.write(self._fd, data)
            self._lines += 1
            self._written += 1
            mine = self._written
        with self._sync_lock:
            if self._synced >= mine:     # another caller's fsync covered this line
                return
            with self._lock:
                target, fd, full = self._written, self._fd, self._lines >= self.max_lines
            if fd is not None:
                os.fsync(fd)             # the file cannot be closed meanwhile: closing needs _sync_lock
            self._synced = max(self._synced, target)
            if full:
                with self._lock:
                    self._close()

    def _close(self) -> None:
        """Close and publish the current file (callers hold both locks)."""
        if self._fd is None:
            return
        os.fsync(self._fd)
        os.close(self._fd)
        assert self._path is not None
        os.replace(self._path, self._path.with_name(self._path.name[: -len(OPEN)]))
        self._fd, self._path = None, None
        self._synced = self._written

    def rotate_if_old(self) -> None:
        with self._sync_lock, self._lock:
            if self._fd is not None and time.monotonic() - self._opened >= self.max_seconds:
                self._close()

    def close(self) -> None:
        with self._sync_lock, self._lock:
            self._close()


def mark_done(path: Path) -> Path:
    """Move an ingested spool file out of the way (kept for audit in ``spool/done/``)."""
    done = path.parent / DONE_DIR
    done.mkdir(exist_ok=True)
    target = done / path.name
    os.replace(path, target)
    return target
