"""One writer at a time, for a whole step: the pipeline lock every nudgelab writer takes.

DuckDB locks the database file only while a connection is open, and dbt-duckdb used to close it
between nodes, so another process could slip in mid-build. Every step that writes the warehouse
(ingest, build, experiment results, anomalies, publish) holds ``NUDGELAB_HOME/warehouse.lock``
(an ``flock``, released by the kernel when the holder dies, even by ``kill -9``) for the whole
step, waits up to ``NUDGELAB_LOCK_WAIT`` seconds (default 30) for another step to finish, and
otherwise refuses with one line naming the holder (its pid, command and start time are written
into the lock file). The lock is re-entrant within a process, so a step may open and close its
connections as it likes.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

WAIT_ENV = "NUDGELAB_LOCK_WAIT"
DEFAULT_WAIT = 30.0
_held: dict[Path, tuple[int, int]] = {}  # lock path -> (fd, depth) for this process


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse; the message names it (one line)."""


def lock_path(home: Path) -> Path:
    return home / "warehouse.lock"


def _wait_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def describe_pid(pid: int) -> str:
    """`pid 123 (nudgelab build)`: a process and its command line, as far as /proc tells."""
    try:
        words = [w.decode(errors="replace") for w in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if w]
    except OSError:
        return f"pid {pid}"
    if words and Path(words[0]).name.startswith("python"):
        words = words[2:] if words[1:2] == ["-m"] else words[1:]
    if words:
        words[0] = Path(words[0]).name.replace("nudgelab.cli", "nudgelab")
    text = " ".join(" ".join(words[:5]).split())[:80]
    return f"pid {pid} ({text})" if text else f"pid {pid}"


def holder(home: Path) -> str:
    """Who holds the pipeline lock, as written by the holder (or 'another process')."""
    try:
        info = json.loads(lock_path(home).read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not info.get("pid"):
        return "another process"
    return f"`{info.get('purpose', 'a nudgelab step')}` ({describe_pid(int(info['pid']))}, since {info.get('since', '?')})"


def duckdb_holder(message: str) -> str:
    """The process DuckDB names in a 'Conflicting lock is held in … (PID n)' error."""
    found = re.search(r"PID (\d+)", message)
    return describe_pid(int(found.group(1))) if found else "another process"


@contextmanager
def warehouse_lock(home: Path, purpose: str, wait: float | None = None) -> Iterator[None]:
    """Hold the pipeline lock for ``purpose`` (e.g. "nudgelab build"), waiting up to ``wait`` seconds."""
    path = lock_path(home)
    if path in _held:
        fd, depth = _held[path]
        _held[path] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[path]
            _held[path] = (fd, depth - 1)
        return
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + (_wait_seconds() if wait is None else wait)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                waited = _wait_seconds() if wait is None else wait
                raise WarehouseBusy(
                    f"the warehouse is busy: {holder(home)} holds it; nothing was changed, try again when it "
                    f"finishes (waited {waited:g} s; {WAIT_ENV} sets how long)") from None
            time.sleep(0.2)
    info = {"pid": os.getpid(), "purpose": purpose, "command": " ".join(sys.argv[:4]),
            "since": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _held[path] = (fd, 1)
    try:
        yield
    finally:
        _held.pop(path, None)
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def held_here(home: Path) -> bool:
    """True when this process holds the pipeline lock."""
    return lock_path(home) in _held
