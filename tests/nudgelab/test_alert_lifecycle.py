"""The notification lifecycle of anomaly incidents (``nudgelab.alerts`` + ``dispatch.alert_state``),
delivered for real to a log file, an HTTP webhook and an SMTP server (aiosmtpd) on 127.0.0.1.

Each test writes incidents into ``experiments.anomaly_alerts`` as the anomaly job would (opened,
extended in place, closed) and runs ``alerts.queue`` + ``alerts.send`` between the steps, with an
injected clock: opened once, updates only on a material change, resolved once, minor incidents in
one digest per run, acknowledgements and silences, and no duplicate or loss across a crash."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy

import pytest

from experiments.anomalies.job import COLUMNS, ensure_tables
from dispatch import alert_state
from nudgelab import alerts
from tests.conftest import query, run_cli
from tests.test_anomalies_job import _Mailbox, webhook_server
from warehouse.connections import connect_build
from warehouse.publish import publish, set_build_audited

T0 = datetime(2026, 10, 20, 9, tzinfo=timezone.utc)
RECIPIENTS = ("ops@example.com", "oncall@example.com")


def incident(iid: str, severity: str = "major", is_open: bool = True, affected: float = 100.0, hours: int = 2,
             metric: str = "delivery_rate", provider: str | None = "gw-b", region: str | None = None, **more) -> dict:
    dims = {"campaign_id": None, "channel": None, "provider": provider, "region": region, "carrier": None}
    label = ", ".join(f"{k}={v}" for k, v in dims.items() if v is not None)
    row = {"incident_id": iid, "metric": metric, "direction": "drop", "slice": label, **dims,
           "start_at": T0, "end_at": T0 + timedelta(hours=hours), "is_open": is_open, "observed": 30.0,
           "expected": 95.0, "denominator": 100.0, "observed_value": 0.3, "expected_value": 0.95,
           "messages_affected": affected, "severity": severity, "score": 9.0, "folded_alerts": 1,
           "first_seen_at": T0, "updated_at": T0}
    row.update(more)
    return row


def put(settings, *rows: dict) -> None:
    """Upsert incidents as the job stores them (a continuing incident is extended in place)."""
    conn = connect_build(settings)
    try:
        ensure_tables(conn)
        for row in rows:
            conn.execute(f"INSERT INTO experiments.anomaly_alerts ({', '.join(COLUMNS)}) "
                         f"VALUES ({', '.join('?' for _ in COLUMNS)}) ON CONFLICT (incident_id) DO UPDATE SET "
                         + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "incident_id"),
                         [row[c] for c in COLUMNS])
    finally:
        conn.close()


@dataclass
class Run:
    hook: list[dict]                 # webhook bodies' data
    hook_titles: list[str]
    mail: list[tuple[str, str]]      # (recipient, subject)
    log: list[dict]                  # alert log lines
    queued: alerts.Queued = field(default_factory=alerts.Queued)

    def events(self) -> list[tuple[str, str | None, int | None]]:
        return sorted((d["event"], d["incident_id"], d["revision"]) for d in self.hook)

    @property
    def nothing(self) -> bool:
        return not self.hook and not self.mail and not self.log


class Sinks:
    """The three destinations, and one alert run at a chosen instant."""

    def __init__(self, settings, tmp_path):
        from aiosmtpd.controller import Controller

        from dispatch.providers.kannel_local import free_port

        self.settings = settings
        self.hook, self.box = webhook_server(), _Mailbox()
        self.mail = Controller(self.box, hostname="127.0.0.1", port=free_port())
        self.mail.start()
        self.log_path = tmp_path / "alerts.log"
        self.env = {"NUDGELAB_ALERT_LOG": str(self.log_path),
                    "NUDGELAB_ALERT_WEBHOOK": f"http://127.0.0.1:{self.hook.server_address[1]}/alerts",
                    "NUDGELAB_ALERT_SMTP": f"127.0.0.1:{self.mail.port}", "NUDGELAB_ALERT_EMAIL_TO": ", ".join(RECIPIENTS),
                    "NUDGELAB_ALERT_BACKOFF": "0.01"}
        self.targets = alerts.destinations(settings, self.env)
        self.seen = (0, 0, 0)

    def run(self, now: datetime, policy: alerts.UpdatePolicy | None = None) -> Run:
        conn = connect_build(self.settings)
        try:
            queued = alerts.queue(conn, self.settings, self.targets, now=now, policy=policy or alerts.UpdatePolicy())
        finally:
            conn.close()
        sent = alerts.send(self.settings, alerts.destinations(self.settings, self.env), self.env)
        assert sent["pending"] == 0
        return self.collect(queued)

    def collect(self, queued: alerts.Queued | None = None) -> Run:
        logged = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        h, m, g = self.seen
        self.seen = (len(self.hook.received), len(self.box.messages), len(logged))
        return Run([b["data"] for b in self.hook.received[h:]], [b["title"] for b in self.hook.received[h:]],
                   [(to[0], str(message_from_bytes(raw, policy=policy.default)["Subject"]).strip()) for to, raw in self.box.messages[m:]],
                   [json.loads(line) for line in logged[g:]], queued or alerts.Queued())

    def close(self):
        self.hook.shutdown()
        self.mail.stop()


@pytest.fixture
def sinks(settings, tmp_path):
    out = Sinks(settings, tmp_path)
    yield out
    out.close()


def same_on_every_destination(run: Run) -> list[str]:
    """The subjects of a run, checked equal across the log, the webhook and each mailbox."""
    titles = sorted(b["title"] for b in run.log)
    for recipient in RECIPIENTS:
        assert sorted(s for r, s in run.mail if r == recipient) == titles
    assert sorted(run.hook_titles) == titles
    return titles


# -- opened, updated, resolved -----------------------------------------------------------------------

def test_a_major_incident_is_opened_once_on_every_destination(sinks):
    put(sinks.settings, incident("inc-a"))
    first = sinks.run(T0 + timedelta(hours=2))
    (title,) = same_on_every_destination(first)
    assert title.startswith("[OPEN] major: delivery_rate drop on provider=gw-b")
    assert first.events() == [("opened", "inc-a", 1)]
    (data,) = first.hook
    assert data["state"] == "open" and data["incident"]["incident_id"] == "inc-a" and data["severity"] == "major"
    assert first.log[0]["body"].splitlines()[0] == title
    assert "nudgelab incidents ack inc-a" in first.log[0]["body"]
    assert len(set(sinks.hook.keys)) == 1
    assert sinks.run(T0 + timedelta(hours=3)).nothing


def test_an_extension_without_material_change_sends_nothing(sinks):
    put(sinks.settings, incident("inc-a", affected=100))
    sinks.run(T0 + timedelta(hours=2))
    put(sinks.settings, incident("inc-a", affected=140, hours=8, observed_value=0.25))  # longer, +40 %: not news
    assert sinks.run(T0 + timedelta(hours=9)).nothing
    put(sinks.settings, incident("inc-a", severity="minor", affected=140, hours=9))     # calmer: not news either
    assert sinks.run(T0 + timedelta(hours=10)).nothing


def test_a_severity_rise_is_one_update_at_once_saying_what_changed(sinks):
    put(sinks.settings, incident("inc-a", affected=100))
    sinks.run(T0 + timedelta(hours=2))
    put(sinks.settings, incident("inc-a", severity="critical", affected=120, hours=3))
    later = sinks.run(T0 + timedelta(hours=2, minutes=10))   # within the update interval: a rise goes at once
    (title,) = same_on_every_destination(later)
    assert title.startswith("[UPDATE] critical: delivery_rate drop on provider=gw-b: severity major → critical")
    assert later.events() == [("updated", "inc-a", 2)]
    assert later.hook[0]["changes"] == ["severity major → critical"]
    assert sinks.run(T0 + timedelta(hours=3)).nothing


def test_growth_in_messages_affected_is_an_update_at_most_once_per_interval(sinks):
    policy = alerts.UpdatePolicy(growth=0.5, interval=timedelta(hours=4))
    put(sinks.settings, incident("inc-a", affected=100))
    sinks.run(T0 + timedelta(hours=2), policy)
    put(sinks.settings, incident("inc-a", affected=200, hours=3))
    assert sinks.run(T0 + timedelta(hours=3), policy).nothing               # material, but 1 h after the opening
    grown = sinks.run(T0 + timedelta(hours=6, minutes=1), policy)            # 4 h after it: the held change goes
    assert grown.events() == [("updated", "inc-a", 2)]
    assert grown.hook[0]["changes"] == ["messages affected 100 → 200 (+100%)"]
    put(sinks.settings, incident("inc-a", affected=290, hours=12))            # +45 % on what was last sent: no
    assert sinks.run(T0 + timedelta(hours=12), policy).nothing
    put(sinks.settings, incident("inc-a", affected=300, hours=13))            # +50 %: yes
    assert sinks.run(T0 + timedelta(hours=13), policy).events() == [("updated", "inc-a", 3)]


def test_an_ending_is_one_resolved_notice(sinks):
    put(sinks.settings, incident("inc-a"))
    sinks.run(T0 + timedelta(hours=2))
    put(sinks.settings, incident("inc-a", is_open=False, hours=4))
    ended = sinks.run(T0 + timedelta(hours=5))
    (title,) = same_on_every_destination(ended)
    assert title == "[RESOLVED] delivery_rate drop on provider=gw-b (was major)"
    assert ended.events() == [("resolved", "inc-a", 2)] and ended.hook[0]["state"] == "resolved"
    assert sinks.run(T0 + timedelta(hours=6)).nothing


def test_an_incident_first_seen_ended_is_opened_once_and_never_resolved_after(sinks):
    put(sinks.settings, incident("inc-a", is_open=False))
    first = sinks.run(T0 + timedelta(hours=5))
    (title,) = same_on_every_destination(first)
    assert title.startswith("[OPEN] major:") and "(already ended 2026-10-20 11:00 UTC)" in title
    assert first.hook[0]["state"] == "resolved"
    assert sinks.run(T0 + timedelta(hours=6)).nothing


def test_an_incident_that_reopens_after_its_resolved_notice_is_updated_at_once(sinks):
    put(sinks.settings, incident("inc-a"))
    sinks.run(T0 + timedelta(hours=2))
    put(sinks.settings, incident("inc-a", is_open=False, hours=3))
    sinks.run(T0 + timedelta(hours=3))
    put(sinks.settings, incident("inc-a", is_open=True, hours=5))
    again = sinks.run(T0 + timedelta(hours=3, minutes=30))
    assert again.events() == [("updated", "inc-a", 3)] and again.hook[0]["changes"] == ["reopened after it had ended"]


# -- minor incidents: one digest per run -------------------------------------------------------------

def test_minor_incidents_share_one_digest_per_run_and_destination(sinks):
    put(sinks.settings, incident("m-1", "minor", affected=5), incident("m-2", "minor", affected=6, provider="gw-a"),
        incident("m-3", "minor", affected=7, metric="click_rate"), incident("big", "critical", affected=900))
    first = sinks.run(T0 + timedelta(hours=2))
    titles = same_on_every_destination(first)
    assert titles == ["[DIGEST] 3 minor incidents: 3 opened", "[OPEN] critical: delivery_rate drop on provider=gw-b"]
    digest = next(d for d in first.hook if d["event"] == "digest")
    assert sorted((e["event"], e["incident_id"]) for e in digest["entries"]) == [("opened", "m-1"), ("opened", "m-2"),
                                                                                  ("opened", "m-3")]
    body = next(b["body"] for b in first.log if b["title"].startswith("[DIGEST]"))
    assert sum(line.startswith("[OPEN] ") for line in body.splitlines()) == 3 and "provider=gw-a" in body
    assert first.queued.events == {"opened": 1, "digest_opened": 3} and first.queued.digests == 1
    assert sinks.run(T0 + timedelta(hours=3)).nothing
    put(sinks.settings, incident("m-1", "minor", is_open=False, affected=5, hours=3))
    put(sinks.settings, incident("m-2", "minor", affected=20, provider="gw-a", hours=8))
    second = sinks.run(T0 + timedelta(hours=8))
    assert same_on_every_destination(second) == ["[DIGEST] 2 minor incidents: 1 updated, 1 resolved"]
    (digest,) = second.hook
    assert sorted((e["event"], e["incident_id"], e["revision"]) for e in digest["entries"]) == [
        ("resolved", "m-1", 2), ("updated", "m-2", 2)]
    assert sinks.run(T0 + timedelta(hours=9)).nothing


def test_a_minor_incident_raised_to_major_gets_its_own_opening_and_resolution(sinks):
    put(sinks.settings, incident("m-1", "minor", affected=5))
    assert [d["event"] for d in sinks.run(T0 + timedelta(hours=2)).hook] == ["digest"]
    put(sinks.settings, incident("m-1", "major", affected=60, hours=4))
    raised = sinks.run(T0 + timedelta(hours=4))
    (title,) = same_on_every_destination(raised)
    assert title == "[OPEN] major: delivery_rate drop on provider=gw-b (escalated from minor)"
    assert raised.events() == [("opened", "m-1", 2)] and raised.hook[0]["escalated_from"] == "minor"
    put(sinks.settings, incident("m-1", "minor", is_open=False, affected=60, hours=5))
    ended = sinks.run(T0 + timedelta(hours=6))
    assert same_on_every_destination(ended) == ["[RESOLVED] delivery_rate drop on provider=gw-b (was minor)"]


# -- acknowledge and silence -------------------------------------------------------------------------

def test_an_acknowledged_incident_gets_no_updates_but_its_resolved_notice(sinks):
    put(sinks.settings, incident("inc-a"))
    sinks.run(T0 + timedelta(hours=2))
    with alert_state.store(sinks.settings.ops_path) as ops:
        alert_state.acknowledge(ops, "inc-a", "alice", "rerouting to gw-a", now=T0 + timedelta(hours=2, minutes=5))
    put(sinks.settings, incident("inc-a", severity="critical", affected=1000, hours=6))
    quiet = sinks.run(T0 + timedelta(hours=7))
    assert quiet.nothing and quiet.queued.held == {"acknowledged": 1}
    put(sinks.settings, incident("inc-a", severity="critical", is_open=False, affected=1000, hours=7))
    ended = sinks.run(T0 + timedelta(hours=8))
    assert ended.events() == [("resolved", "inc-a", 2)]
    assert ended.hook[0]["acknowledged"]["by"] == "alice"
    assert "acknowledged by alice at 2026-10-20 11:05 UTC: rerouting to gw-a" in ended.log[0]["body"]


def test_unacknowledging_lets_held_updates_through(sinks):
    put(sinks.settings, incident("inc-a"))
    sinks.run(T0 + timedelta(hours=2))
    with alert_state.store(sinks.settings.ops_path) as ops:
        alert_state.acknowledge(ops, "inc-a", "alice")
        put(sinks.settings, incident("inc-a", severity="critical", hours=3))
        assert sinks.run(T0 + timedelta(hours=3)).nothing
        assert alert_state.unacknowledge(ops, "inc-a") and not alert_state.unacknowledge(ops, "inc-a")
    assert sinks.run(T0 + timedelta(hours=3, minutes=5)).events() == [("updated", "inc-a", 2)]


def test_a_silence_holds_every_notification_until_it_expires(sinks):
    with alert_state.store(sinks.settings.ops_path) as ops:
        silence = alert_state.add_silence(ops, [alert_state.parse_matcher("provider=gw-b"),
                                                alert_state.parse_matcher("metric=~delivery_.*")],
                                          alert_state.parse_duration("4h"), "bob", "gateway maintenance", now=T0)
    assert silence.ends_at == T0 + timedelta(hours=4)
    put(sinks.settings, incident("quiet", "critical"), incident("other", provider="gw-a"))
    during = sinks.run(T0 + timedelta(hours=1))
    assert during.events() == [("opened", "other", 1)]
    assert during.queued.held == {"silenced": 1}
    put(sinks.settings, incident("quiet", "critical", affected=900, hours=3))
    assert sinks.run(T0 + timedelta(hours=3, minutes=59)).nothing
    after = sinks.run(T0 + timedelta(hours=4))      # expired, still open: opened now
    assert after.events() == [("opened", "quiet", 1)]


def test_an_incident_that_ends_inside_a_silence_is_never_mentioned(sinks):
    with alert_state.store(sinks.settings.ops_path) as ops:
        alert_state.add_silence(ops, [alert_state.parse_matcher("incident=quiet")], timedelta(hours=4), "bob", now=T0)
    put(sinks.settings, incident("quiet"))
    assert sinks.run(T0 + timedelta(hours=1)).nothing
    put(sinks.settings, incident("quiet", is_open=False, hours=3))
    assert sinks.run(T0 + timedelta(hours=3)).nothing
    assert sinks.run(T0 + timedelta(hours=5)).nothing


def test_a_notified_incident_that_ends_inside_a_silence_is_resolved_after_it(sinks):
    put(sinks.settings, incident("inc-a"))
    sinks.run(T0 + timedelta(hours=2))
    with alert_state.store(sinks.settings.ops_path) as ops:
        alert_state.add_silence(ops, [alert_state.parse_matcher("incident_id=inc-a")], timedelta(hours=2), "bob",
                                now=T0 + timedelta(hours=2))
    put(sinks.settings, incident("inc-a", severity="critical", is_open=False, hours=3))
    assert sinks.run(T0 + timedelta(hours=3)).nothing
    assert sinks.run(T0 + timedelta(hours=4)).events() == [("resolved", "inc-a", 2)]


def test_unsilence_ends_a_silence_and_the_next_run_notifies(sinks):
    with alert_state.store(sinks.settings.ops_path) as ops:
        silence = alert_state.add_silence(ops, [alert_state.parse_matcher("provider=gw-b")], timedelta(days=2), "bob",
                                          now=T0)
        put(sinks.settings, incident("inc-a"))
        assert sinks.run(T0 + timedelta(hours=1)).nothing
        ended = alert_state.end_silence(ops, silence.silence_id, "carol", now=T0 + timedelta(hours=2))
        assert ended.ends_at == T0 + timedelta(hours=2) and ended.ended_by == "carol"
        with pytest.raises(alert_state.StateError, match="already ended"):
            alert_state.end_silence(ops, silence.silence_id, "carol", now=T0 + timedelta(hours=2))
        with pytest.raises(alert_state.StateError, match="no silence"):
            alert_state.end_silence(ops, "s-nope", "carol")
    assert sinks.run(T0 + timedelta(hours=2)).events() == [("opened", "inc-a", 1)]


def test_matchers_follow_alertmanager_rules_and_bad_ones_are_refused():
    parse = alert_state.parse_matcher
    inc = incident("inc-a", region="US-CA")
    assert parse("region=~US-.*").matches(inc) and not parse("region=~US").matches(inc)   # a full match
    assert parse("campaign_id=").matches(inc) and not parse("campaign_id!=").matches(inc)  # absent = empty
    assert parse("provider!=gw-a").matches(inc) and parse("metric!~click_.*").matches(inc)
    assert parse("severity=major").matches(inc) and parse("incident=inc-a").label == "incident_id"
    for bad, reason in (("colour=red", "unknown label"), ("provider", "not LABEL=VALUE"),
                        ("region=~(", "not a regular expression"), ("severity=huge", "not one of")):
        with pytest.raises(alert_state.StateError, match=reason):
            parse(bad)
    assert alert_state.parse_duration("1d12h") == timedelta(hours=36)
    assert alert_state.parse_duration("30m") == timedelta(minutes=30)
    for bad in ("", "4", "4x", "0h", "-1h", "2y", "400d"):
        with pytest.raises(alert_state.StateError):
            alert_state.parse_duration(bad)


# -- the hand-over: no duplicate, no loss ------------------------------------------------------------

def outbox(settings) -> list[tuple]:
    with sqlite3.connect(settings.ops_path) as ops:
        return ops.execute("SELECT idempotency_key, state FROM messages ORDER BY 1").fetchall()


def queue_killed_in(sinks, monkeypatch, module, name: str) -> None:
    """Run ``alerts.queue`` with ``module.name`` raising, as a process killed at that point would stop."""
    def crash(*args, **kwargs):
        raise RuntimeError(f"killed in {name}")

    monkeypatch.setattr(module, name, crash)
    conn = connect_build(sinks.settings)
    try:
        with pytest.raises(RuntimeError, match="killed"):
            alerts.queue(conn, sinks.settings, sinks.targets, now=T0 + timedelta(hours=2))
    finally:
        conn.close()


def test_a_crash_after_the_ops_commit_sends_nothing_twice(sinks, monkeypatch):
    put(sinks.settings, incident("inc-a"), incident("m-1", "minor"))
    queue_killed_in(sinks, monkeypatch, alerts, "mark_alerted")   # before marking the warehouse
    queued = outbox(sinks.settings)
    assert len(queued) == 2 * 4   # (the opening + the digest) × (log, webhook, two mailboxes)
    assert {k.split("|")[1] for k, _ in queued} == {"inc-a", "digest"}
    assert query(sinks.settings, "SELECT count(*) FROM experiments.anomaly_alerts WHERE alerted_at IS NULL") == [(2,)]
    monkeypatch.undo()
    rerun = sinks.run(T0 + timedelta(hours=2, minutes=1))   # the rerun finds the ledger: nothing new
    assert rerun.queued.messages == 0 and outbox(sinks.settings) == sorted((k, "sent") for k, _ in queued)
    assert sorted(d["event"] for d in rerun.hook) == ["digest", "opened"]   # what the crash left, sent once
    assert len(sinks.box.messages) == 4 and len(sinks.log_path.read_text().splitlines()) == 2
    assert query(sinks.settings, "SELECT count(*) FROM experiments.anomaly_alerts WHERE alerted_at IS NULL") == [(0,)]
    assert sinks.run(T0 + timedelta(hours=3)).nothing


def test_a_crash_inside_the_ops_transaction_queues_nothing_and_the_rerun_queues_it_once(sinks, monkeypatch):
    put(sinks.settings, incident("inc-a"))
    queue_killed_in(sinks, monkeypatch, alert_state, "record")   # while writing the ledger
    assert outbox(sinks.settings) == []
    monkeypatch.undo()
    assert sinks.run(T0 + timedelta(hours=2)).events() == [("opened", "inc-a", 1)]
    assert sinks.run(T0 + timedelta(hours=3)).nothing


def test_incidents_an_older_nudgelab_alerted_are_adopted_not_sent_again(sinks):
    put(sinks.settings, incident("old"))
    conn = connect_build(sinks.settings)
    try:
        conn.execute("UPDATE experiments.anomaly_alerts SET alerted_at = ?", [T0])
    finally:
        conn.close()
    first = sinks.run(T0 + timedelta(hours=1))
    assert first.nothing and first.queued.held == {"adopted": 1}
    put(sinks.settings, incident("old", is_open=False, hours=3))
    assert sinks.run(T0 + timedelta(hours=4)).events() == [("resolved", "old", 1)]


# -- the command line --------------------------------------------------------------------------------

def published(settings, *rows: dict) -> None:
    put(settings, *rows)
    conn = connect_build(settings)
    try:
        set_build_audited(conn, True)
        publish(settings, conn)
    finally:
        conn.close()


@pytest.mark.parametrize("sub", ["list", "ack", "unack", "silence", "unsilence", "silences"])
def test_every_incidents_subcommand_has_help(sub):
    proc = run_cli("incidents", sub, "--help")
    assert proc.returncode == 0 and "usage: nudgelab incidents " + sub in proc.stdout


def test_the_incidents_commands_refuse_bad_input_with_one_line(settings):
    no_snapshot = run_cli("incidents", "list")
    assert no_snapshot.returncode == 2 and len(no_snapshot.stderr.strip().splitlines()) == 1
    assert "run `nudgelab build`" in no_snapshot.stderr
    assert run_cli("incidents", "ack", "inc-a").returncode == 2
    published(settings, incident("inc-a1b2c3"), incident("inc-a1b2d4", provider="gw-a"))
    for argv, reason in ((("ack", "nope"), "no incident 'nope'"), (("ack", "inc-a1b2"), "ambiguous"),
                         (("silence", "inc-a1b2c3", "--for", "4 hours"), "is not like 30m"),
                         (("silence", "colour=red", "--for", "4h"), "unknown label"),
                         (("silence", "inc-a1b2c3", "inc-a1b2d4", "--for", "4h"), "give one incident id"),
                         (("unsilence", "s-nope"), "no silence"), (("unack", "inc-a1b2c3"), "not acknowledged")):
        proc = run_cli("incidents", *argv)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and len(err.splitlines()) == 1 and reason in err, (argv, err)
    missing = run_cli("incidents", "silence", "--comment", "x", "provider=gw-b")
    assert missing.returncode == 2 and "--for" in missing.stderr


def test_acknowledge_and_silence_from_the_command_line_show_in_the_listing(settings):
    published(settings, incident("inc-a1b2c3"), incident("inc-ffff01", provider="gw-a", severity="minor"))
    ack = run_cli("incidents", "ack", "inc-a1b2", "--by", "alice", "-c", "on it", check=True)
    assert "acknowledged inc-a1b2c3" in ack.stdout and "as alice" in ack.stdout
    again = run_cli("incidents", "ack", "inc-a1b2c3", "--by", "bob", check=True)
    assert "already acknowledged by alice" in again.stdout
    silence = run_cli("incidents", "silence", "provider=gw-a", "--for", "2d", "--by", "bob", "-c", "maintenance",
                      check=True)
    assert "matches 1 of the 2 published incident(s)" in silence.stdout
    silence_id = silence.stdout.split()[1].rstrip(":")
    listing = json.loads(run_cli("incidents", "list", "--json", check=True).stdout)
    by_id = {i["incident_id"]: i for i in listing}
    assert by_id["inc-a1b2c3"]["acknowledged_by"] == "alice" and by_id["inc-a1b2c3"]["silenced_until"] is None
    assert by_id["inc-ffff01"]["silence_id"] == silence_id and by_id["inc-ffff01"]["acknowledged_by"] is None
    table = run_cli("incidents", "list", check=True).stdout
    assert "acked by alice" in table and f"({silence_id})" in table
    assert "1 of 2" in run_cli("incidents", "list", "--min-severity", "major", check=True).stdout
    assert silence_id in run_cli("incidents", "silences", check=True).stdout
    run_cli("incidents", "unsilence", silence_id, "--by", "carol", check=True)
    assert "no active silences" in run_cli("incidents", "silences", check=True).stdout
    assert "ended early by carol" in run_cli("incidents", "silences", "--all", check=True).stdout
    run_cli("incidents", "unack", "inc-a1b2c3", check=True)
    listing = json.loads(run_cli("incidents", "list", "--json", check=True).stdout)
    assert all(i["acknowledged_by"] is None and i["silenced_until"] is None for i in listing)


def test_silence_labels_are_the_slice_dimensions_of_the_metrics():
    from experiments.anomalies.series import DIMS

    assert alert_state.SLICE_LABELS == DIMS
    assert set(DIMS) <= set(alert_state.labels())
