"""Nothing lost, nothing reported as success that was not: issue 20, defects 2, 7, 8 and 12.

A stray quote, files that are not what their names say, poison records and files, FIFOs, and a
folder of many one-row files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.runner import run_ingest
from tests.conftest import ROOT, query, run_cli

SENDS_HEADER = "event_id,occurred_at,message_id,user_id,channel"


def _sends(path: Path, n: int, broken_line: int | None = None) -> Path:
    lines = [SENDS_HEADER]
    for i in range(1, n + 1):
        user = f'"u{i}' if broken_line is not None and i + 1 == broken_line else f"u{i}"
        lines.append(f"s{i},2026-10-01T10:00:00Z,m{i},{user},sms")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_stray_opening_quote_refuses_the_file_instead_of_dropping_the_rest(settings, tmp_path):
    bad = _sends(tmp_path / "sends.csv", 2_000, broken_line=100)
    proc = run_cli("ingest", str(bad))
    assert proc.returncode == 2  # nothing could be read
    assert proc.stderr.strip() == (
        f"nudgelab: {bad}: line 100 opens a quoted field that never closes, so the 1,901 lines after it cannot be "
        "read: fix that quote and ingest the file again (nothing of it was loaded)")
    assert query(settings, "SELECT count(*) FROM raw.sends")[0][0] == 0


def test_quoted_line_breaks_are_records_not_a_stray_quote(settings, tmp_path):
    path = tmp_path / "replies.csv"
    path.write_text('event_id,occurred_at,user_id,channel,text\n'
                    'r1,2026-10-01T10:00:00Z,u1,sms,"two\nlines"\n'
                    'r2,2026-10-01T10:00:00Z,u2,sms,one line\n')
    summary = run_ingest(settings, [path], quiet=True)
    assert not summary.errors and summary.total("loaded") == 2


def test_a_good_file_beside_a_broken_one_still_lands(settings, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    _sends(folder / "sends-a.csv", 50, broken_line=10)
    _sends(folder / "sends-b.csv", 50)
    summary = run_ingest(settings, [folder], quiet=True)
    assert summary.total("loaded") == 50
    assert len(summary.errors) == 1 and "sends-a.csv: line 10 opens a quoted field" in summary.errors[0]


def test_a_json_array_is_read_as_json_records(settings, tmp_path):
    path = tmp_path / "sends.json"
    records = [{"event_id": f"s{i}", "occurred_at": "2026-10-01T10:00:00Z", "message_id": f"m{i}",
                "user_id": f"u{i}", "channel": "sms"} for i in range(300)]
    path.write_text(json.dumps(records, indent=2))
    summary = run_ingest(settings, [path], quiet=True)
    assert not summary.errors
    assert summary.batches[0].source_format == "json" and summary.total("loaded") == 300
    lines = query(settings, "SELECT min(line_number), max(line_number) FROM raw.sends")[0]
    assert lines == (2, 2 + 7 * 299)  # each record keeps the line it starts on


def test_a_binary_file_named_csv_is_an_error_not_an_empty_success(settings, tmp_path):
    path = tmp_path / "sends.csv"
    path.write_bytes(os.urandom(4096) + b"\x00" * 16)
    proc = run_cli("ingest", str(path))
    assert proc.returncode == 2 and "binary data" in proc.stderr and "Traceback" not in proc.stderr


def test_empty_files_are_noted_and_prose_is_quarantined_not_lost(settings, tmp_path):
    blank = tmp_path / "sends.jsonl"
    blank.write_text("   \n\t\n")
    empty_array = tmp_path / "clicks.json"
    empty_array.write_text("[\n]\n")
    prose = tmp_path / "dwells.log"
    prose.write_text("this is prose, not a log\nand neither is this\n")
    summary = run_ingest(settings, [blank, empty_array, prose], quiet=True)
    assert not summary.errors
    assert [b.note for b in summary.batches[:2]] == ["empty file (no records)"] * 2
    read = summary.batches[2]
    assert read.rows_read == read.quarantined == 1  # read as CSV: its one record is kept, with why


def test_poison_records_are_quarantined_and_the_run_goes_on(settings, tmp_path):
    folder = tmp_path / "poison"
    folder.mkdir()
    (folder / "a-sends.csv").write_text(
        SENDS_HEADER + "\ns1,123456789012345678,m1,u1,sms\ns2,2026-10-01T10:00:00Z,m2,u2,sms\n")
    deep = '{"event_id": "d", "occurred_at": "2026-10-01T10:00:00Z", "x": ' + "[" * 10_000 + "]" * 10_000 + "}"
    (folder / "b-sends.jsonl").write_text(
        deep + '\n{"event_id": "s3", "occurred_at": "2026-10-01T10:00:00Z", "message_id": "m3", "user_id": "u3", '
        '"channel": "sms"}\n')
    (folder / "c-sends.jsonl").write_bytes(os.urandom(3000).replace(b"\n", b"x") + b"\n")
    (folder / "d-sends.csv").write_text(SENDS_HEADER + "\ns4,2026-10-01T10:00:00Z,m4,u4,sms\n")
    proc = run_cli("ingest", str(folder), "--json")
    out = json.loads(proc.stdout)
    assert proc.returncode in (0, 1), proc.stderr
    assert out["loaded"] == 3  # s2, s3, s4
    reasons = dict(query(settings, "SELECT source_file, reason FROM raw.quarantine ORDER BY source_file"))
    assert "is not a timestamp" in reasons[str(folder / "a-sends.csv")]
    assert "nested too deeply" in reasons[str(folder / "b-sends.jsonl")]
    assert out["rows_read"] == out["loaded"] + out["duplicates"] + out["quarantined"]


def test_an_unreadable_file_is_its_own_error_and_the_others_load(settings, tmp_path, monkeypatch):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a-sends.csv").write_text(SENDS_HEADER + "\ns1,2026-10-01T10:00:00Z,m1,u1,sms\n")
    locked = folder / "b-clicks.jsonl"
    locked.write_text('{"event_id": "c1", "occurred_at": "2026-10-01T10:00:00Z", "user_id": "u1"}\n')
    (folder / "c-dwells.csv").write_text("event_id,occurred_at,user_id,dwell_seconds\nd1,2026-10-01T10:00:00Z,u1,5\n")
    from ingest.readers import base

    real_open = base.open_binary

    def refuse(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path)

    monkeypatch.setattr(base, "open_binary", refuse)
    summary = run_ingest(settings, [folder], quiet=True)
    assert summary.total("loaded") == 2
    assert len(summary.errors) == 1 and "b-clicks.jsonl" in summary.errors[0] and "Permission denied" in summary.errors[0]


def test_a_fifo_is_refused_at_once_instead_of_blocking(settings, tmp_path):
    fifo = tmp_path / "sends.csv"
    os.mkfifo(fifo)
    good = _sends(tmp_path / "more-sends.csv", 3)
    proc = subprocess.run([sys.executable, "-m", "nudgelab.cli", "ingest", str(fifo), str(good), "--json"], cwd=ROOT,
                          env=dict(os.environ), capture_output=True, text=True, timeout=60)
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and out["loaded"] == 3
    assert out["errors"] == [f"{fifo}: is a FIFO, not a file of records: skipped"]


def test_many_small_files_share_batches_and_keep_their_own_files_and_lines(settings, tmp_path, monkeypatch):
    folder = tmp_path / "tiny"
    folder.mkdir()
    for i in range(1, 401):
        (folder / f"dlr-{i:04d}.csv").write_text(
            "event_id,occurred_at,message_id,status,provider\n"
            f"e{i},2026-10-01T00:00:00Z,m{i},delivered,kannel\n" + (f"e{i}b,not-a-time,m{i},delivered,kannel\n" if i % 100 == 0 else ""))
    from ingest import loader

    runs = []
    real = loader.validate_batch
    monkeypatch.setattr(loader, "validate_batch", lambda *a, **k: runs.append(a[2]) or real(*a, **k))
    summary = run_ingest(settings, [folder], quiet=True)
    assert summary.total("loaded") == 400 and summary.total("quarantined") == 4
    assert len(summary.batches) == 1 and len(summary.batches[0].files) == 400
    assert len(runs) == 1  # one expectation run for the batch, not one per file
    assert query(settings, "SELECT count(*), count(DISTINCT source) FROM raw.deliveries")[0] == (400, 400)
    assert query(settings, "SELECT source, line_number FROM raw.deliveries WHERE event_id = 'e137'")[0] == (
        str(folder / "dlr-0137.csv"), 2)
    assert query(settings, "SELECT source_file, line_number FROM raw.quarantine ORDER BY source_file")[0] == (
        str(folder / "dlr-0100.csv"), 3)
    files = query(settings, "SELECT count(*), sum(rows_read), sum(loaded), sum(quarantined) FROM raw.ingest_files")[0]
    assert files == (400, 404, 400, 4)
    again = run_ingest(settings, [folder], quiet=True)
    assert again.total("loaded") == 0 and again.total("duplicates") == 400
