"""Anomaly alerts to operators, sent through dispatch's outbox and providers — the project's one
SMTP client, one webhook client and one outbox.

Destinations, from the environment:

* ``NUDGELAB_ALERT_LOG`` — a file that receives one JSON line per alert (default
  ``$NUDGELAB_HOME/alerts.log``; ``off`` disables it), through the file provider;
* ``NUDGELAB_ALERT_WEBHOOK`` — a URL that receives each alert as a JSON POST (the notification under
  ``data``: ``event``, ``incident_id``, ``revision``, ``state``, ``changes`` and the ``incident``;
  ``Idempotency-Key`` = the alert's message id), through the webhook provider;
* ``NUDGELAB_ALERT_SMTP`` — ``host:port`` of an SMTP server, with ``NUDGELAB_ALERT_EMAIL_TO``
  (comma-separated recipients, required) and ``NUDGELAB_ALERT_EMAIL_FROM`` (default
  ``nudgelab@localhost``): one e-mail per recipient, through the SMTP provider;
* ``NUDGELAB_ALERT_RETRIES`` — rounds of sending within one run before what is still failing waits
  for the next run (default 3), and ``NUDGELAB_ALERT_BACKOFF`` — seconds before the first retry,
  doubling (default 0.5; a retry already due when the worker looks again is tried at once);
* ``NUDGELAB_ALERT_UPDATE_GROWTH`` (default 0.5) and ``NUDGELAB_ALERT_UPDATE_HOURS`` (default 4): when
  an open incident is worth an update (below).

The lifecycle. Each run compares every stored incident with what the ledger in ops.sqlite
(``dispatch.alert_state``) says was last notified, and emits events:

* ``opened`` — once per incident, when it is first seen (if it has already ended, the opening says
  so and no resolved notice follows);
* ``updated`` — only for a material change of an open incident: its severity rises above the one
  last notified (at once), or its messages affected grew by at least GROWTH (50 %) since the last
  notice, at most once per HOURS (4 h) after the incident's last notice (what the limit holds back
  is compared again next run, against what was last *sent*, so nothing is lost); an incident that
  reopens after its resolved notice gets an update at once. End times moving on, figures wobbling
  and severity falling are not news;
* ``resolved`` — once, when the incident ends, and only if its opening was notified.

Minor incidents get no message each: one digest per run and destination × recipient lists the
minor incidents opened, updated and resolved in that run. An incident opened in a digest that rises
to major or critical gets its own ``opened`` then (escalated), and its own messages from then on;
one opened on its own keeps its own messages (its resolved notice too) even if it falls to minor.
An acknowledged incident gets no updates (its resolved notice still goes out; a reopening is still
told). A silenced incident gets nothing while the silence lasts; after it, an incident still open
that was never notified is opened, a notified one that ended meanwhile gets its resolved notice,
and one that was never notified and ended in silence is never mentioned.

The hand-over: the events' outbox messages and the ledger rows they stand for are written in ONE
ops.sqlite transaction, keyed ``alert|<incident>|<event>|<revision>|<destination>|<recipient>`` (a
digest: ``alert|digest|<digest id>|<destination>|<recipient>``, the id a hash of its entries), so a
crash before the commit queues nothing and the rerun queues it all once, and a crash after it
queues nothing twice. Only then is the warehouse's ``alerted_at`` set for incidents first notified
(informational: incidents with ``alerted_at`` but no ledger row, notified by an older nudgelab or
before ops.sqlite was replaced, are adopted into the ledger without a message). ``send`` runs a
dispatch worker that only claims the alert providers' messages. A destination that is down keeps
its messages in ``retry`` (never dead: an alert is not dropped because a sink was down for a day)
and every later run tries them again. Alerts are transactional, top priority, outside quiet hours,
and never go to the warehouse as sends.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from dispatch.ops import connect, iso, parse_iso, transaction
from dispatch.planner import MESSAGE_COLUMNS, message_id_for
from dispatch.providers.base import Provider
from dispatch.providers.file import FileProvider
from dispatch.providers.smtp import SmtpProvider
from dispatch.providers.webhook import WebhookProvider
from dispatch.worker import Worker, WorkerOptions
from experiments.anomalies.series import METRICS
from dispatch import alert_state
from dispatch.alert_state import Ack, Notified, Silence, rank, silenced_by
from warehouse.settings import Settings

CAMPAIGN = "nudgelab-alerts"
PRIORITY = 100
NEVER_DEAD = 1_000_000  # attempts: a destination that is down keeps its alerts until it is back


class AlertConfigError(ValueError):
    """A destination the environment names but cannot build (one line)."""


@dataclass(frozen=True)
class Destination:
    name: str                  # log, webhook, email
    channel: str
    provider: Provider
    recipients: tuple[str, ...]


def destinations(settings: Settings, env: Mapping[str, str] | None = None) -> list[Destination]:
    """The alert destinations the environment configures (see the module docstring)."""
    env = os.environ if env is None else env
    out: list[Destination] = []
    log = env.get("NUDGELAB_ALERT_LOG", str(settings.home / "alerts.log"))
    if log and log.lower() != "off":
        path = Path(log)
        out.append(Destination("log", "alert", FileProvider(path.parent, name="alert-log", fixed_path=path, masked=False),
                               (str(path),)))
    if env.get("NUDGELAB_ALERT_WEBHOOK"):
        url = env["NUDGELAB_ALERT_WEBHOOK"]
        if not url.startswith(("http://", "https://")):
            raise AlertConfigError("NUDGELAB_ALERT_WEBHOOK is not an http(s) URL")
        out.append(Destination("webhook", "alert", WebhookProvider(url, timeout=5.0, name="alert-webhook"), (url,)))
    if env.get("NUDGELAB_ALERT_SMTP"):
        host, _, port = env["NUDGELAB_ALERT_SMTP"].rpartition(":")
        if not host or not port.isdigit():
            raise AlertConfigError(f"NUDGELAB_ALERT_SMTP={env['NUDGELAB_ALERT_SMTP']!r} is not host:port")
        to = tuple(a.strip() for a in env.get("NUDGELAB_ALERT_EMAIL_TO", "").split(",") if a.strip())
        if not to:
            raise AlertConfigError("NUDGELAB_ALERT_SMTP is set but NUDGELAB_ALERT_EMAIL_TO is empty: give the recipients")
        sender = env.get("NUDGELAB_ALERT_EMAIL_FROM", "nudgelab@localhost")
        out.append(Destination("email", "email", SmtpProvider(host, int(port), sender=sender, name="alert-smtp"), to))
    return out


def retry_policy(env: Mapping[str, str] | None = None) -> tuple[int, float]:
    env = os.environ if env is None else env
    try:
        return max(1, int(env.get("NUDGELAB_ALERT_RETRIES", "3"))), max(0.0, float(env.get("NUDGELAB_ALERT_BACKOFF", "0.5")))
    except ValueError as exc:
        raise AlertConfigError(f"NUDGELAB_ALERT_RETRIES / NUDGELAB_ALERT_BACKOFF: {exc}") from exc


@dataclass(frozen=True)
class UpdatePolicy:
    """When an open incident's change is worth an update (see the module docstring)."""

    growth: float = 0.5                      # messages affected grew by this share since the last notice
    interval: timedelta = timedelta(hours=4)  # no growth update sooner than this after the last notice


def update_policy(env: Mapping[str, str] | None = None) -> UpdatePolicy:
    env = os.environ if env is None else env
    try:
        growth = float(env.get("NUDGELAB_ALERT_UPDATE_GROWTH", "0.5"))
        hours = float(env.get("NUDGELAB_ALERT_UPDATE_HOURS", "4"))
    except ValueError as exc:
        raise AlertConfigError(f"NUDGELAB_ALERT_UPDATE_GROWTH / NUDGELAB_ALERT_UPDATE_HOURS: {exc}") from exc
    if growth <= 0 or hours < 0:
        raise AlertConfigError("NUDGELAB_ALERT_UPDATE_GROWTH must be > 0 and NUDGELAB_ALERT_UPDATE_HOURS >= 0")
    return UpdatePolicy(growth, timedelta(hours=hours))


# -- the lifecycle: stored incidents against the ledger -> events -----------------------------------

@dataclass(frozen=True)
class Event:
    """One notification about one incident: ``opened``, ``updated`` or ``resolved``."""

    event: str
    incident: dict
    revision: int
    tier: str                        # own (its own messages) or digest
    changes: tuple[str, ...] = ()
    escalated_from: str | None = None
    ack: Ack | None = None

    @property
    def incident_id(self) -> str:
        return self.incident["incident_id"]


@dataclass
class Plan:
    events: list[Event] = field(default_factory=list)
    ledger: list[Notified] = field(default_factory=list)   # rows to write with the events' messages
    held: Counter = field(default_factory=Counter)          # silenced, acknowledged, rate_limited, adopted


def _open_tier(severity: str | None) -> str:
    return "own" if rank(severity) >= rank("major") else "digest"


def _affected(incident: dict) -> float:
    return float(incident.get("messages_affected") or 0.0)


def plan(incidents: list[dict], notified: dict[str, Notified], acknowledged: dict[str, Ack],
         active: list[Silence], now: datetime, policy: UpdatePolicy = UpdatePolicy(),
         alerted: dict[str, datetime | None] | None = None) -> Plan:
    """The events this run owes, and the ledger rows that record them (a pure function).

    ``alerted``: the warehouse's ``alerted_at`` per incident, for adopting incidents an older
    nudgelab notified."""
    out = Plan()
    alerted = alerted or {}

    def emit(inc: dict, event: str, previous: Notified | None, tier: str, changes=(), escalated=None) -> None:
        revision = (previous.revision if previous else 0) + 1
        out.events.append(Event(event, inc, revision, tier, tuple(changes), escalated, acknowledged.get(inc["incident_id"])))
        first = previous.first_notified_at if previous and previous.first_notified_at else now
        out.ledger.append(Notified(inc["incident_id"], revision, event, tier, inc.get("severity"), bool(inc["is_open"]),
                                   inc.get("end_at"), _affected(inc), first, now))

    def note(inc: dict, event: str, tier: str | None, when: datetime | None) -> None:
        out.ledger.append(Notified(inc["incident_id"], 0, event, tier, inc.get("severity"), bool(inc["is_open"]),
                                   inc.get("end_at"), _affected(inc), when, when))

    for inc in sorted(incidents, key=lambda i: (i["start_at"], i["incident_id"])):
        iid, severity, is_open = inc["incident_id"], inc.get("severity"), bool(inc["is_open"])
        last = notified.get(iid)
        silence = silenced_by(inc, active)
        if last is None and alerted.get(iid) is not None:
            note(inc, "adopted", "own", alerted[iid])   # an older nudgelab sent it: do not send it again
            out.held["adopted"] += 1
            continue
        if last is None or last.last_event == "suppressed":
            if silence:
                if last is None:
                    note(inc, "suppressed", None, None)
                out.held["silenced"] += 1
            elif last is None or is_open:   # one that ended unseen inside a silence is never mentioned
                emit(inc, "opened", None, _open_tier(severity))
            continue
        if silence:   # deferred: what changes meanwhile is compared after the silence ends
            out.held["silenced"] += 1
            continue
        if last.is_open and not is_open:
            emit(inc, "resolved", last, last.tier or "own")
            continue
        if not is_open:
            continue
        if not last.is_open:   # it had ended (and was told so), and is running again
            tier = "own" if last.tier == "own" or _open_tier(severity) == "own" else "digest"
            emit(inc, "updated", last, tier, ["reopened after it had ended"])
            continue
        if iid in acknowledged:
            if rank(severity) > rank(last.severity) or _affected(inc) > last.messages_affected:
                out.held["acknowledged"] += 1
            continue
        if last.tier == "digest" and _open_tier(severity) == "own":
            emit(inc, "opened", last, "own", [f"severity {last.severity} → {severity}"], escalated=last.severity)
            continue
        changes, urgent = [], False
        if rank(severity) > rank(last.severity):
            changes.append(f"severity {last.severity} → {severity}")
            urgent = True
        grown = _affected(inc)
        if grown >= max(last.messages_affected * (1 + policy.growth), last.messages_affected + 1):
            rise = f" (+{grown / last.messages_affected - 1:.0%})" if last.messages_affected else ""
            changes.append(f"messages affected {last.messages_affected:,.0f} → {grown:,.0f}{rise}")
        if not changes:
            continue
        if not urgent and last.notified_at is not None and now - last.notified_at < policy.interval:
            out.held["rate_limited"] += 1
            continue
        emit(inc, "updated", last, last.tier or "own", changes)
    return out


# -- what the messages say ---------------------------------------------------------------------------

TAGS = {"opened": "[OPEN]", "updated": "[UPDATE]", "resolved": "[RESOLVED]"}
RATES = {m.name for m in METRICS if m.kind == "rate"}


def value(metric: str, number: float | None) -> str:
    if number is None:
        return "—"
    return f"{number:.1%}" if metric in RATES else f"{number:,.1f}"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


def _what(alert: dict) -> str:
    return f"{alert['metric']} {alert['direction']} on {alert['slice']}"


def subject(ev: Event) -> str:
    alert = ev.incident
    if ev.event == "opened":
        text = f"{TAGS['opened']} {alert['severity']}: {_what(alert)}"
        if ev.escalated_from:
            text += f" (escalated from {ev.escalated_from})"
        if not alert["is_open"]:
            text += f" (already ended {_when(alert['end_at'])})"
        return text
    if ev.event == "updated":
        return f"{TAGS['updated']} {alert['severity']}: {_what(alert)}: {'; '.join(ev.changes)}"
    return f"{TAGS['resolved']} {_what(alert)} (was {alert['severity']})"


def detail(alert: dict) -> str:
    return (f"observed {value(alert['metric'], alert['observed_value'])} vs expected "
            f"{value(alert['metric'], alert['expected_value'])} from {_when(alert['start_at'])} to "
            f"{_when(alert['end_at'])}{' (still open)' if alert['is_open'] else ''}, "
            f"~{_affected(alert):,.0f} messages affected")


def text(ev: Event) -> str:
    """The message: the subject as its first line, then what it is about and what to do."""
    iid = ev.incident_id
    lines = [subject(ev), detail(ev.incident)]
    if ev.changes and ev.event != "opened":
        lines.append("changed: " + "; ".join(ev.changes))
    if ev.ack:
        lines.append(f"acknowledged by {ev.ack.by} at {_when(ev.ack.at)}" + (f": {ev.ack.comment}" if ev.ack.comment else ""))
    lines.append(f"incident {iid}, revision {ev.revision}")
    if ev.event != "resolved" and ev.incident["is_open"]:
        lines.append(f"acknowledge: nudgelab incidents ack {iid} · silence: nudgelab incidents silence {iid} --for 4h")
    return "\n".join(lines)


def _plain(alert: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in alert.items()}


def payload(ev: Event) -> dict:
    """The JSON a webhook receives under ``data`` and the log under ``payload``."""
    return {"event": ev.event, "incident_id": ev.incident_id, "revision": ev.revision,
            "state": "open" if ev.incident["is_open"] else "resolved", "severity": ev.incident["severity"],
            "changes": list(ev.changes), "escalated_from": ev.escalated_from,
            "acknowledged": {"by": ev.ack.by, "at": ev.ack.at.isoformat(), "comment": ev.ack.comment} if ev.ack else None,
            "incident": _plain(ev.incident)}


def digest_id(events: list[Event]) -> str:
    entries = "|".join(sorted(f"{e.incident_id}:{e.event}:{e.revision}" for e in events))
    return hashlib.sha1(entries.encode()).hexdigest()[:16]


def digest_subject(events: list[Event]) -> str:
    counts = Counter(e.event for e in events)
    parts = ", ".join(f"{counts[k]} {k}" for k in ("opened", "updated", "resolved") if counts[k])
    return f"[DIGEST] {len(events)} minor incident{'' if len(events) == 1 else 's'}: {parts}"


def digest_text(events: list[Event]) -> str:
    lines = [digest_subject(events)]
    for ev in events:
        tag = TAGS[ev.event]
        extra = f" — {'; '.join(ev.changes)}" if ev.changes else ""
        ack = f" (acknowledged by {ev.ack.by})" if ev.ack else ""
        lines.append(f"{tag} {_what(ev.incident)}: {detail(ev.incident)}{extra}{ack} [{ev.incident_id} r{ev.revision}]")
    lines.append("acknowledge or silence one: nudgelab incidents ack ID / nudgelab incidents silence ID --for 4h")
    return "\n".join(lines)


def digest_payload(events: list[Event]) -> dict:
    return {"event": "digest", "incident_id": None, "revision": None, "digest_id": digest_id(events),
            "entries": [payload(e) for e in events]}


# -- the hand-over -----------------------------------------------------------------------------------

@dataclass
class Queued:
    messages: int = 0                                  # outbox messages new in this run
    events: Counter = field(default_factory=Counter)   # opened / updated / resolved (own) and digest_*
    digests: int = 0                                   # digests (one message per destination × recipient each)
    held: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"messages": self.messages, "events": dict(self.events), "digests": self.digests, "held": dict(self.held)}


def _row(key: str, target: Destination, recipient: str, step: str, dedupe: str, title: str, body: str,
         data: dict, now: datetime) -> tuple:
    stamp = iso(now)
    if target.channel == "email":
        body = body + "\n\n" + json.dumps(data, indent=2, sort_keys=True, default=str)
    row = {"message_id": message_id_for(key), "idempotency_key": key, "run_id": f"{CAMPAIGN}-{now:%Y%m%d}",
           "campaign_id": CAMPAIGN, "step": step, "user_id": f"operator:{target.name}",
           "channel": target.channel, "provider": target.provider.name, "category": "transactional",
           "priority": PRIORITY, "template_id": None, "variant": None, "experiment_id": None,
           "dedupe_value": dedupe, "address": recipient, "subject": title, "body": body, "encoding": None,
           "segments": None, "extra": json.dumps({"payload": data, "title": title}, default=str), "zones": "[]",
           "quiet_start": None, "quiet_end": None, "conflict_action": "defer", "conflict_window_s": 0.0,
           "scheduled_for": stamp, "due_at": stamp, "state": "queued", "updated_at": stamp}
    return tuple(row[c] for c in MESSAGE_COLUMNS)


def messages(events: list[Event], targets: list[Destination], now: datetime) -> list[tuple]:
    """Outbox rows: one per own event × destination × recipient, and one digest of the minor ones."""
    own = [e for e in events if e.tier == "own"]
    minor = [e for e in events if e.tier == "digest"]
    rows = []
    for target in targets:
        for recipient in target.recipients:
            for ev in own:
                key = f"alert|{ev.incident_id}|{ev.event}|{ev.revision}|{target.name}|{recipient}"
                rows.append(_row(key, target, recipient, ev.event, ev.incident_id, subject(ev), text(ev), payload(ev), now))
            if minor:
                did = digest_id(minor)
                rows.append(_row(f"alert|digest|{did}|{target.name}|{recipient}", target, recipient, "digest", did,
                                 digest_subject(minor), digest_text(minor), digest_payload(minor), now))
    return rows


def _alerted(conn: duckdb.DuckDBPyConnection) -> dict[str, datetime | None]:
    return dict(conn.execute("SELECT incident_id, alerted_at FROM experiments.anomaly_alerts").fetchall())


def mark_alerted(conn: duckdb.DuckDBPyConnection, ids: list[str], now: datetime) -> None:
    """The warehouse's record that an incident was notified (after the ops commit; informational)."""
    if ids:
        conn.execute("UPDATE experiments.anomaly_alerts SET alerted_at = ? WHERE alerted_at IS NULL "
                     "AND incident_id IN (SELECT unnest(?))", [now, ids])


def queue(conn: duckdb.DuckDBPyConnection, settings: Settings, targets: list[Destination],
          now: datetime | None = None, policy: UpdatePolicy | None = None) -> Queued:
    """Queue this run's notifications (opened, updated, resolved, the minor digest) in one ops.sqlite
    transaction with the ledger rows they stand for, then mark first notifications in the warehouse."""
    from experiments.anomalies.job import alerts as stored

    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    policy = policy or update_policy()
    incidents = stored(conn)
    alerted = _alerted(conn) if incidents else {}
    done = Queued()
    if not incidents:
        return done
    with alert_state.store(settings.ops_path) as ops:
        with transaction(ops):   # read and write under the write lock: two runs cannot both send
            known = alert_state.ledger(ops)
            todo = plan(incidents, known, alert_state.acks(ops), alert_state.silences(ops, now), now, policy, alerted)
            rows = messages(todo.events, targets, now)
            before = ops.total_changes
            ops.executemany(f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES "
                            f"({', '.join('?' for _ in MESSAGE_COLUMNS)}) ON CONFLICT (idempotency_key) DO NOTHING", rows)
            done.messages = ops.total_changes - before
            alert_state.record(ops, todo.ledger, now)
    for ev in todo.events:
        done.events[ev.event if ev.tier == "own" else f"digest_{ev.event}"] += 1
    done.digests = int(any(e.tier == "digest" for e in todo.events))
    done.held = todo.held
    # every incident the ledger says was notified, this run or one that stopped before marking
    told = {e.incident_id for e in todo.events} | {i for i, n in known.items() if n.first_notified_at is not None}
    mark_alerted(conn, sorted(i for i in told if i in alerted and alerted[i] is None), now)
    return done


def send(settings: Settings, targets: list[Destination], env: Mapping[str, str] | None = None) -> Counter:
    """Send the queued alerts (NUDGELAB_ALERT_RETRIES rounds in this run, with backoff); returns
    counts: delivered, and pending (left for the next run)."""
    attempts, backoff = retry_policy(env)
    providers = {t.provider.name: t.provider for t in targets}
    outcome: Counter = Counter()
    if not providers:
        return outcome
    options = WorkerOptions(once=True, threads=2, max_attempts=NEVER_DEAD, backoff_seconds=backoff,
                            max_backoff_seconds=600.0)
    ops = connect(settings.ops_path)
    names = list(providers)
    marks = ", ".join("?" for _ in names)
    try:
        for round_ in range(attempts):
            summary = Worker(settings.home, settings.ops_path, settings.spool_dir, settings.hash_key(), providers,
                             options).run()
            outcome["delivered"] += summary.counts["sent"]
            waiting = ops.execute(f"SELECT min(due_at) FROM messages WHERE state = 'retry' AND provider IN ({marks})",
                                  names).fetchone()[0]
            if waiting is None or round_ + 1 == attempts:
                break
            time.sleep(min(max((parse_iso(waiting) - datetime.now(timezone.utc)).total_seconds(), 0.0), 30.0))
        outcome["pending"] = ops.execute(f"SELECT count(*) FROM messages WHERE state IN ('queued', 'retry') "
                                         f"AND provider IN ({marks})", names).fetchone()[0]
    finally:
        ops.close()
        for provider in providers.values():
            provider.close()
    return outcome
