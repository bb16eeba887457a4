"""The anomaly job on a small hand-made mart: incidents stored once, continuing incidents extended,
alerts delivered for real through dispatch's providers to a log file, an HTTP webhook and an SMTP
server (aiosmtpd) on 127.0.0.1, with retries and an outbox that keeps what a down destination
could not take."""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import numpy as np
import polars as pl
import pytest

from experiments.anomalies.job import run_anomalies
from warehouse.connections import connect_build
from warehouse.publish import current_snapshot, set_build_audited

START = datetime(2026, 10, 1, tzinfo=timezone.utc)
DAYS = 21
OUTAGE = START + timedelta(days=15, hours=9)  # provider gw-b delivers 30 % for 3 hours


def mart(days: int = DAYS, seed: int = 1) -> pl.DataFrame:
    """Hourly rows per campaign × channel × provider × region × carrier with a planted outage."""
    rng = np.random.default_rng(seed)
    hours = [START + timedelta(hours=h) for h in range(days * 24)]
    rows = []
    for campaign in ("promo", "bill"):
        for provider in ("gw-a", "gw-b"):
            for region in ("R1", "R2"):
                for carrier in ("C1", "C2"):
                    for i, ts in enumerate(hours):
                        shape = 1.0 + 0.8 * np.sin(2 * np.pi * ((i % 24) - 6) / 24)
                        sent = int(rng.poisson(40 * shape))
                        p_deliver = 0.3 if provider == "gw-b" and OUTAGE <= ts < OUTAGE + timedelta(hours=3) else 0.95
                        delivered = int(rng.binomial(sent, p_deliver))
                        clicked = int(rng.binomial(delivered, 0.1))
                        rows.append((ts, campaign, "sms", provider, region, carrier, sent, delivered, sent - delivered,
                                     clicked, int(rng.binomial(clicked, 0.2))))
    return pl.DataFrame(rows, schema=["hour_at", "campaign_id", "channel", "provider", "region", "carrier", "sent",
                                      "delivered", "failed", "clicked", "converted"], orient="row")


def write_mart(settings, frame: pl.DataFrame, audited: bool = True) -> None:
    conn = connect_build(settings)
    try:
        conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
        conn.register("frame", frame.to_arrow())
        conn.execute("CREATE OR REPLACE TABLE marts.fct_metric_timeseries AS SELECT * FROM frame")
        conn.unregister("frame")
        set_build_audited(conn, audited)
    finally:
        conn.close()


def run(settings, **kwargs) -> dict:
    conn = connect_build(settings)
    try:
        return run_anomalies(conn, settings, **kwargs)
    finally:
        conn.close()


def rows(settings, sql: str) -> list[tuple]:
    conn = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def built(settings, monkeypatch):
    monkeypatch.setenv("NUDGELAB_ALERT_BACKOFF", "0.01")
    write_mart(settings, mart())
    return settings


def test_the_planted_outage_is_one_alert_on_the_provider(built):
    summary = run(built)
    alerts = rows(built, "SELECT metric, direction, slice, start_at FROM experiments.anomaly_alerts WHERE metric = 'delivery_rate'")
    assert ("delivery_rate", "drop", "provider=gw-b", OUTAGE) in alerts
    assert summary["new"] == len(rows(built, "SELECT * FROM experiments.anomaly_alerts"))


def test_rerunning_does_not_duplicate(built):
    first = run(built)
    before = rows(built, "SELECT incident_id, start_at, end_at FROM experiments.anomaly_alerts ORDER BY 1")
    second = run(built)
    assert second["new"] == 0 and second["extended"] == first["new"]
    assert rows(built, "SELECT incident_id, start_at, end_at FROM experiments.anomaly_alerts ORDER BY 1") == before


def test_a_continuing_incident_is_extended_not_reopened(settings):
    frame = mart()
    # from day 12 on, carrier C2 in region R1 stops clicking: a link block that goes on
    block = START + timedelta(days=12, hours=8)
    frame = frame.with_columns(pl.when((pl.col("hour_at") >= block) & (pl.col("region") == "R1") & (pl.col("carrier") == "C2"))
                               .then(0).otherwise(pl.col("clicked")).alias("clicked"))
    cut = START + timedelta(days=16)
    write_mart(settings, frame.filter(pl.col("hour_at") < cut))
    run(settings)
    q = "SELECT incident_id, start_at, end_at FROM experiments.anomaly_alerts WHERE metric = 'click_rate' AND slice = 'region=R1, carrier=C2'"
    (first,) = rows(settings, q)
    assert abs((first[1] - block).total_seconds()) <= 2 * 3600
    write_mart(settings, frame)
    summary = run(settings)
    (second,) = rows(settings, q)
    assert second[0] == first[0] and second[1] == first[1]  # same incident, same start
    assert second[2] > first[2]  # extended
    assert first[0] not in summary["new_ids"]


def test_since_keeps_older_incidents_out(built):
    summary = run(built, since=OUTAGE + timedelta(days=2))
    assert not rows(built, f"SELECT * FROM experiments.anomaly_alerts WHERE end_at < TIMESTAMPTZ '{(OUTAGE + timedelta(days=2)).isoformat()}'")
    assert summary["incidents_found"] == len(rows(built, "SELECT * FROM experiments.anomaly_alerts"))


# -- alerts: through dispatch's outbox and providers (nudgelab.alerts) ------------------------------

class _Webhook(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        server.calls += 1
        if server.fail_first > 0:
            server.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        server.received.append(json.loads(body))
        server.keys.append(self.headers["Idempotency-Key"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def webhook_server(fail_first: int = 0, port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Webhook)
    server.received, server.keys, server.calls, server.fail_first = [], [], 0, fail_first
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued"


def test_destinations_are_configured_from_the_environment(settings, tmp_path):
    from nudgelab.alerts import AlertConfigError, destinations

    env = {"NUDGELAB_ALERT_LOG": str(tmp_path / "a.log"), "NUDGELAB_ALERT_WEBHOOK": "http://127.0.0.1:9/x",
           "NUDGELAB_ALERT_SMTP": "127.0.0.1:2525", "NUDGELAB_ALERT_EMAIL_TO": "ops@example.com, b@example.com"}
    log, hook, mail = destinations(settings, env)
    assert (log.name, log.provider.name, log.provider.path("alert")) == ("log", "alert-log", tmp_path / "a.log")
    assert (hook.name, hook.provider.name, hook.provider.url) == ("webhook", "alert-webhook", "http://127.0.0.1:9/x")
    assert (mail.provider.host, mail.provider.port, mail.recipients) == ("127.0.0.1", 2525, ("ops@example.com", "b@example.com"))
    assert [d.name for d in destinations(settings, {})] == ["log"]  # the default: NUDGELAB_HOME/alerts.log
    assert destinations(settings, {})[0].provider.path("alert") == settings.home / "alerts.log"
    assert destinations(settings, {"NUDGELAB_ALERT_LOG": "off"}) == []
    with pytest.raises(AlertConfigError, match="EMAIL_TO"):
        destinations(settings, {"NUDGELAB_ALERT_SMTP": "127.0.0.1:25"})


def test_alerts_reach_the_log_the_webhook_and_the_mailbox_once(built, monkeypatch, tmp_path, capsys):
    from aiosmtpd.controller import Controller

    from dispatch.providers.kannel_local import free_port

    hook, box = webhook_server(fail_first=2), _Mailbox()  # the webhook is down for two tries: retried
    mail = Controller(box, hostname="127.0.0.1", port=free_port())
    mail.start()
    try:
        monkeypatch.setenv("NUDGELAB_ALERT_LOG", str(tmp_path / "alerts.log"))
        monkeypatch.setenv("NUDGELAB_ALERT_WEBHOOK", f"http://127.0.0.1:{hook.server_address[1]}/alerts")
        monkeypatch.setenv("NUDGELAB_ALERT_SMTP", f"127.0.0.1:{mail.port}")
        monkeypatch.setenv("NUDGELAB_ALERT_EMAIL_TO", "ops@example.com, oncall@example.com")
        assert _command("--json") == 0
        out = json.loads(capsys.readouterr().out)
        n = out["summary"]["new"]
        own = sorted(i["incident_id"] for i in out["incidents"] if i["severity"] != "minor")
        minor = sorted(i["incident_id"] for i in out["incidents"] if i["severity"] == "minor")
        m = per_destination(out["summary"])   # an [OPEN] per major/critical incident, one [DIGEST] of the minor ones
        assert n > 0 and m == len(own) + (1 if minor else 0)
        assert out["summary"]["delivered"] == 4 * m and out["summary"]["pending_deliveries"] == 0
        logged = [json.loads(line) for line in (tmp_path / "alerts.log").read_text().splitlines()]
        assert sorted(a["payload"]["incident_id"] for a in logged if a["payload"]["event"] == "opened") == own
        assert sorted(e["incident_id"] for a in logged if a["payload"]["event"] == "digest"
                      for e in a["payload"]["entries"]) == minor
        assert all(a["title"].startswith(("[OPEN] ", "[DIGEST] ")) for a in logged)
        assert any("provider=gw-b" in a["body"] for a in logged)
        assert sorted(a["data"]["incident_id"] for a in hook.received if a["data"]["event"] == "opened") == own
        assert all(a["data"]["revision"] == 1 for a in hook.received if a["data"]["event"] == "opened")
        assert hook.calls == m + 2 and len(set(hook.keys)) == m
        assert sorted(len(r) for r, _ in box.messages) == [1] * (2 * m)   # one e-mail per recipient
        subjects = [message_from_bytes(msg)["Subject"] for _, msg in box.messages]
        assert any("provider=gw-b" in s for s in subjects)
        import sqlite3

        with sqlite3.connect(built.ops_path) as ops:
            states = ops.execute("SELECT provider, state, count(*), max(attempts) FROM messages GROUP BY 1, 2 "
                                 "ORDER BY 1").fetchall()
        assert states[:2] == [("alert-log", "sent", m, 1), ("alert-smtp", "sent", 2 * m, 1)]
        assert states[2][:3] == ("alert-webhook", "sent", m) and states[2][3] in (2, 3)   # the two 503s retried
        assert rows(built, "SELECT count(*) FROM experiments.anomaly_alerts WHERE alerted_at IS NULL") == [(0,)]
        assert _command("--json") == 0
        again = json.loads(capsys.readouterr().out)["summary"]
        assert again["new"] == 0 and again["delivered"] == 0 and len(hook.received) == m  # nothing sent twice
        assert not list(built.spool_dir.rglob("*.jsonl"))   # alerts are not the product's sends
    finally:
        hook.shutdown()
        mail.stop()


def test_a_destination_that_is_down_keeps_its_alerts_until_the_next_run(built, monkeypatch, tmp_path, capsys):
    probe = webhook_server()
    port = probe.server_address[1]
    probe.shutdown()
    probe.server_close()  # nothing listens on this port now
    monkeypatch.setenv("NUDGELAB_ALERT_LOG", str(tmp_path / "alerts.log"))
    monkeypatch.setenv("NUDGELAB_ALERT_WEBHOOK", f"http://127.0.0.1:{port}/alerts")
    assert _command("--json") == 0
    first = json.loads(capsys.readouterr().out)["summary"]
    m = per_destination(first)
    assert first["new"] > 0 and first["pending_deliveries"] == m and first["delivered"] == m
    import sqlite3

    with sqlite3.connect(built.ops_path) as ops:
        waiting = ops.execute("SELECT count(*), max(attempts), max(last_error) FROM messages "
                              "WHERE provider = 'alert-webhook' AND state = 'retry'").fetchone()
    # retried in this run (with backoff), then left waiting, never dead
    assert waiting[0] == m and waiting[1] >= 2 and "unreachable" in waiting[2]
    hook = webhook_server(port=port)
    try:
        time.sleep(0.2)
        assert _command("--json") == 0
        second = json.loads(capsys.readouterr().out)["summary"]
        assert second["new"] == 0 and second["delivered"] == m and second["pending_deliveries"] == 0
        assert len(hook.received) == m
    finally:
        hook.shutdown()


def per_destination(summary: dict) -> int:
    """Messages each destination (recipient) gets from one run: own notifications and the digest."""
    notes = summary["notifications"]
    return sum(v for k, v in notes["events"].items() if not k.startswith("digest_")) + notes["digests"]


# -- the command -------------------------------------------------------------------------------------

def _command(*argv: str) -> int:
    from nudgelab.anomalies_cmd import add_parser

    parser = argparse.ArgumentParser(prog="nudgelab")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["anomalies", *argv])
    return args.func(args)


def test_the_command_refuses_an_unaudited_build(settings, capsys):
    write_mart(settings, mart(days=3), audited=False)
    assert _command() == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no audited build" in err
    assert current_snapshot(settings) is None


def test_the_command_stores_publishes_and_prints_json(built, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("NUDGELAB_ALERT_LOG", str(tmp_path / "alerts.log"))
    assert _command("--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["new"] == len(out["incidents"]) > 0
    assert any(i["slice"] == "provider=gw-b" and i["metric"] == "delivery_rate" for i in out["incidents"])
    snapshot = current_snapshot(built)
    conn = duckdb.connect(str(snapshot), read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM experiments.anomaly_alerts").fetchone()[0] == len(out["incidents"])
    finally:
        conn.close()
    assert _command() == 0
    text = capsys.readouterr().out
    assert "0 new" in text and "provider=gw-b" in text
    assert _command("--since", "not-a-time") == 2


def test_the_listing_can_hide_less_severe_incidents_and_says_how_many():
    from datetime import datetime, timezone

    from nudgelab.anomalies_cmd import render_table

    at = datetime(2026, 10, 1, 9, tzinfo=timezone.utc)
    incident = {"severity": "critical", "metric": "delivery_rate", "direction": "drop", "slice": "provider=kannel-a",
                "start_at": at, "end_at": at, "is_open": False, "observed_value": 0.2, "expected_value": 0.97,
                "messages_affected": 1388}
    text = render_table([incident], {"new": 1, "extended": 0, "delivered": 1, "pending_deliveries": 0,
                                     "sinks": ["log"], "not_listed": 7})
    assert "7 less severe incident(s) not listed" in text
    assert "provider=kannel-a" in text and "20.0%" in text and "97.0%" in text
