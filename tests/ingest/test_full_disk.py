"""A full disk says so and leaves nothing behind: issue 20, defect 9 (ingest side).

A file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored, so writes fail with EFBIG as they would
with ENOSPC) stands in for a full disk, deterministically and without mounting anything.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys

from ingest.generator import generate
from tests.conftest import ROOT, query


def _limited(limit: int):
    def hook() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return hook


def test_an_ingest_that_runs_out_of_space_reports_the_cause_and_lands_nothing(settings, tmp_path):
    generate(tmp_path / "data", fmt="csv", users=3000, days=7, seed=2)
    small = tmp_path / "small"
    small.mkdir()
    (small / "users.csv").write_text("user_id,segment\nu1,new\n")
    first = subprocess.run([sys.executable, "-m", "nudgelab.cli", "ingest", str(small)], cwd=ROOT,
                           env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    size = settings.warehouse_path.stat().st_size
    proc = subprocess.run([sys.executable, "-m", "nudgelab.cli", "ingest", str(tmp_path / "data" / "deliveries.csv"),
                           "--json"], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300,
                          preexec_fn=_limited(size + 256 * 1024))
    assert "cannot rollback" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout) if proc.stdout.strip() else {"errors": [proc.stderr]}
    assert proc.returncode in (1, 2) and any("File too large" in e for e in out["errors"]), (proc.returncode, out, proc.stderr)
    assert query(settings, "SELECT count(*) FROM raw.deliveries")[0][0] == 0
    assert query(settings, "SELECT count(*) FROM raw.ingest_batches")[0][0] == 1  # only the first, small batch
