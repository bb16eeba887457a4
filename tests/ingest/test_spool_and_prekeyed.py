"""The spool after a writer's crash, and hashes that arrive already keyed (dispatch sends the
recipient only as its keyed hash)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ingest.spool import closed_files
from tests.conftest import query, run_cli

SEND = {"event_type": "sends", "occurred_at": "2026-11-30T10:00:00Z", "user_id": "u1", "campaign_id": "c1",
        "channel": "sms", "provider": "kannel", "category": "transactional", "priority": 7}


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_dead_writers_partial_file_is_published_without_its_torn_line_and_a_live_ones_is_not(settings):
    spool = settings.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({**SEND, "event_id": f"snd-{i}", "message_id": f"m-{i}",
                         "recipient_hash": "0123456789abcdef0123456789abcdef"}) for i in range(2)]
    dead = spool / f"{dead_pid()}-aaaa.jsonl.partial"
    dead.write_text("\n".join(lines) + '\n{"event_type": "sends", "event_id": "snd-torn", "mess')
    live = spool / f"{os.getpid()}-bbbb.jsonl.partial"
    live.write_text(lines[0] + "\n")
    ready = closed_files(spool)
    assert [p.name for p in ready] == [dead.name.replace(".partial", "")]
    assert ready[0].read_text().splitlines() == lines and live.exists()
    proc = run_cli("ingest", "--spool")
    assert proc.returncode == 0, proc.stderr
    assert query(settings, "SELECT message_id, recipient_hash, category FROM raw.sends ORDER BY 1") == [
        ("m-0", "0123456789abcdef0123456789abcdef", "transactional"),
        ("m-1", "0123456789abcdef0123456789abcdef", "transactional")]


def test_a_prekeyed_hash_must_look_like_one_and_the_bad_value_is_never_quoted(settings, tmp_path):
    path = tmp_path / "sends.jsonl"
    good = {**SEND, "event_id": "snd-ok", "message_id": "m-ok", "recipient_hash": "ABCDEF0123456789abcdef0123456789"}
    bad = {**SEND, "event_id": "snd-bad", "message_id": "m-bad", "recipient_hash": "+12025550123"}
    path.write_text("\n".join(json.dumps({k: v for k, v in r.items() if k != "event_type"}) for r in (good, bad)) + "\n")
    proc = run_cli("ingest", str(path), "--type", "sends")
    assert proc.returncode == 0, proc.stderr
    assert query(settings, "SELECT message_id, recipient_hash FROM raw.sends") == [
        ("m-ok", "abcdef0123456789abcdef0123456789")]
    reasons = query(settings, "SELECT reason FROM raw.quarantine")
    assert len(reasons) == 1 and "recipient_hash is not a keyed hash" in reasons[0][0]
    assert "+12025550123" not in json.dumps(query(settings, "SELECT * FROM raw.quarantine"), default=str)
