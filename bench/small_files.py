"""Many small files: ingesting 5,000 one-row files against the same 5,000 rows in one file.

Both runs go through ``nudgelab ingest`` on a fresh warehouse, after one warm-up run (imports),
so the ratio is what batching small files buys: before it, each file was a batch of its own
(about 170 ms each on this machine, dominated by one expectation run per file).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HEADER = "event_id,occurred_at,message_id,status,provider\n"


def _row(i: int) -> str:
    return f"e{i},2026-10-01T00:{i % 60:02d}:00Z,m{i},delivered,kannel-a\n"


def _ingest(folder: Path, home: Path) -> float:
    from ingest.runner import run_ingest
    from warehouse.settings import load_settings

    settings = load_settings(home)
    start = time.perf_counter()
    summary = run_ingest(settings, [folder], quiet=True)
    elapsed = time.perf_counter() - start
    if summary.errors or summary.total("loaded") == 0:
        raise SystemExit(f"bench: small-file ingest failed: {summary.errors[:1]}")
    return elapsed


def bench_small_files(line: Callable[..., None], files: int = 5_000) -> dict:
    os.environ.setdefault("NUDGELAB_HASH_KEY", "bench-key")
    with tempfile.TemporaryDirectory(prefix="nudgelab-small-") as tmp:
        root = Path(tmp)
        many, one = root / "many", root / "one"
        many.mkdir()
        one.mkdir()
        for i in range(files):
            (many / f"dlr-{i:05d}.csv").write_text(HEADER + _row(i))
        (one / "dlr-all.csv").write_text(HEADER + "".join(_row(i) for i in range(files)))
        warm = root / "warm"
        warm.mkdir()
        (warm / "dlr-warm.csv").write_text(HEADER + _row(0))
        _ingest(warm, root / "home-warm")
        single = _ingest(one, root / "home-one")
        line(f"ingest {files:,} rows in one file (baseline)", single, files)
        batched = _ingest(many, root / "home-many")
        line(f"ingest the same rows as {files:,} one-row files", batched, files,
             f"ratio {batched / single:.1f}× one file; {batched / files * 1000:.2f} ms per file")
    return {"files": files, "one_file_seconds": round(single, 2), "many_files_seconds": round(batched, 2),
            "ratio": round(batched / single, 2), "ms_per_file": round(batched / files * 1000, 2)}
