"""``nudgelab dispatch`` as an operator uses it, in subprocesses on a copy of the built scenario:
contacts, a dry run that shows the plan and queues nothing, queuing, the worker through the file
provider, the sends landing in the warehouse, a second send reaching nobody twice, and one-line
errors with exit 2."""

from __future__ import annotations

import json
import stat

import duckdb

from tests.conftest import ROOT, run_cli

PROMO = str(ROOT / "examples" / "campaigns" / "winter_promo.yml")


def test_every_dispatch_command_has_help():
    for args in (("dispatch",), ("dispatch", "send"), ("dispatch", "run"), ("dispatch", "contacts", "import"),
                 ("dispatch", "status"), ("dispatch", "resolve"), ("dispatch", "suppress")):
        proc = run_cli(*args, "--help")
        assert proc.returncode == 0 and "usage: nudgelab dispatch" in proc.stdout, args


def test_contacts_import_is_idempotent_private_and_counts_invalid_rows(home, tmp_path):
    users = tmp_path / "users.csv"
    users.write_text("user_id,phone,email,timezone,first_name\n"
                     "u1,+1 202 555 0101,Ana@Example.test,America/New_York,Ana\n"
                     "u2,not-a-number,,Europe/Paris,Bo\n"
                     "u3,+33 6 12 34 56 78,c@example.test,,Cy\n"
                     ",+12025550104,d@example.test,,Di\n")
    first = run_cli("dispatch", "contacts", "import", str(users), "--json")
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout)
    assert (counts["added"], counts["invalid"]) == (2, 2) and sum(counts["invalid_reasons"].values()) == 2
    again = json.loads(run_cli("dispatch", "contacts", "import", str(users), "--json").stdout)
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 2)
    users.write_text(users.read_text().replace("Ana@Example.test", "ana.new@example.test"))
    changed = json.loads(run_cli("dispatch", "contacts", "import", str(users), "--json").stdout)
    assert (changed["added"], changed["updated"], changed["unchanged"]) == (0, 1, 1)
    ops = home / "ops.sqlite"
    assert stat.S_IMODE(ops.stat().st_mode) == 0o600
    import sqlite3

    with sqlite3.connect(ops) as conn:
        assert dict(conn.execute("SELECT user_id, phone FROM contacts").fetchall()) == {"u1": "+12025550101",
                                                                                       "u3": "+33612345678"}
    missing = run_cli("dispatch", "contacts", "import", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and missing.stderr.startswith("nudgelab: ") and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_dry_run_then_send_then_run_lands_in_the_warehouse_and_a_second_send_reaches_nobody(scenario, scenario_copy):
    settings, _ = scenario_copy
    users = scenario[0].home.parent / "data" / "users.parquet"
    assert run_cli("dispatch", "contacts", "import", str(users)).returncode == 0
    dry = run_cli("dispatch", "send", PROMO, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    for part in ("audience: 500 users match", "excluded (in the policies' order)", "held out (assigned, not sent)",
                 "would queue:", "sms encodings:", "segments", "cost:", "preview plain/sms", "preview cosy/sms"):
        assert part in dry.stdout, part
    plan = json.loads(run_cli("dispatch", "send", PROMO, "--dry-run", "--json").stdout)
    assert plan["audience"] == plan["queued"] + plan["held_out"] + sum(plan["excluded"].values())
    import sqlite3

    with sqlite3.connect(settings.ops_path) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    sent = run_cli("dispatch", "send", PROMO, "--json")
    assert sent.returncode == 0, sent.stderr
    queued = json.loads(sent.stdout)["queued"]
    assert queued == plan["queued"]
    run = run_cli("dispatch", "run", "--once", "--json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    deferred = plan["deferred"].get("quiet_hours", 0)
    assert summary["sent"] >= queued - deferred - plan["deferred"].get("conflict", 0) and summary["dead"] == 0
    lines = [json.loads(x) for f in (settings.home / "outbox").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert len(lines) == summary["sent"] == len({x["message_id"] for x in lines})
    assert all("•" in x["to"] for x in lines)
    assert run_cli("ingest", "--spool").returncode == 0
    db = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        landed = db.execute("SELECT count(*), count(DISTINCT category), min(category) FROM raw.sends "
                            "WHERE campaign_id = 'winter_promo'").fetchone()
        arms = db.execute("SELECT count(*) FROM raw.assignments WHERE experiment_id = 'exp_winter_wording'").fetchone()[0]
    finally:
        db.close()
    assert landed == (summary["sent"], 1, "promotional")
    assert arms == plan["queued"] + plan["held_out"]
    again = run_cli("dispatch", "send", PROMO, "--json")
    assert again.returncode == 3 and "nothing to queue" in again.stderr
    assert json.loads(again.stdout)["excluded"]["already_sent"] == queued
    status = run_cli("dispatch", "status")
    assert status.returncode == 0 and f"sent {summary['sent']:,}" in status.stdout


def test_campaign_errors_are_one_line_with_file_line_and_field_and_exit_2(home, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("campaign:\n  id: x\n  name: X\n  category: promo\n  channels: [sms]\n"
                   "  templates:\n    sms: \"Hi {{ name \"\n")
    proc = run_cli("dispatch", "send", str(bad), "--dry-run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"nudgelab: {bad}:4: campaign.category:"), first
    assert any(":7:" in line and "templates" in line for line in proc.stderr.splitlines()[1:]), proc.stderr
    unknown = run_cli("dispatch", "resolve", "m-nope", "--as", "sent")
    assert unknown.returncode == 2 and unknown.stderr.strip() == "nudgelab: no message m-nope"
