"""Anomaly alerts to operators, sent through dispatch's outbox and providers — the project's one
SMTP client, one webhook client and one outbox.

Destinations, from the environment:

* ``NUDGELAB_ALERT_LOG`` — a file that receives one JSON line per alert (default
  ``$NUDGELAB_HOME/alerts.log``; ``off`` disables it), through the file provider;
* ``NUDGELAB_ALERT_WEBHOOK`` — a URL that receives each alert as a JSON POST (the incident under
  ``data``, ``Idempotency-Key`` = the alert's message id), through the webhook provider;
* ``NUDGELAB_ALERT_SMTP`` — ``host:port`` of an SMTP server, with ``NUDGELAB_ALERT_EMAIL_TO``
  (comma-separated recipients, required) and ``NUDGELAB_ALERT_EMAIL_FROM`` (default
  ``nudgelab@localhost``): one e-mail per recipient, through the SMTP provider;
* ``NUDGELAB_ALERT_RETRIES`` — rounds of sending within one run before what is still failing waits
  for the next run (default 3), and ``NUDGELAB_ALERT_BACKOFF`` — seconds before the first retry,
  doubling (default 0.5; a retry already due when the worker looks again is tried at once).

How an incident becomes alerts: the anomaly job stores it with ``alerted_at`` NULL; ``queue``
writes one outbox message per incident × destination (recipient) in ops.sqlite, keyed
``alert|<incident>|<destination>`` so it exists once, commits, and only then sets ``alerted_at``
in the warehouse — a crash in between queues nothing twice. ``send`` runs a dispatch worker that
only claims the alert providers' messages. A destination that is down keeps its messages in
``retry`` (never dead: an alert is not dropped because a sink was down for a day) and every later
run tries them again. Alerts are transactional, top priority, outside quiet hours, and never go to
the warehouse as sends.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from dispatch.ops import connect, iso, parse_iso, transaction
from dispatch.planner import MESSAGE_COLUMNS, message_id_for
from dispatch.providers.base import Provider
from dispatch.providers.file import FileProvider
from dispatch.providers.smtp import SmtpProvider
from dispatch.providers.webhook import WebhookProvider
from dispatch.worker import Worker, WorkerOptions
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


def subject(alert: dict) -> str:
    return f"nudgelab alert: {alert['metric']} {alert['direction']} on {alert['slice']}"


def text(alert: dict) -> str:
    return (f"[{alert['severity']}] {alert['metric']} {alert['direction']} on {alert['slice']}: "
            f"observed {alert['observed_value']:.4g} vs expected {alert['expected_value']:.4g} "
            f"from {alert['start_at']} to {alert['end_at']} (~{alert['messages_affected']:.0f} messages)")


def _plain(alert: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in alert.items()}


def queue(conn: duckdb.DuckDBPyConnection, settings: Settings, targets: list[Destination]) -> int:
    """Queue the alerts of every incident not alerted yet; returns how many messages were new."""
    from experiments.anomalies.job import alerts as stored

    ids = [r[0] for r in conn.execute("SELECT incident_id FROM experiments.anomaly_alerts WHERE alerted_at IS NULL "
                                      "ORDER BY first_seen_at, incident_id").fetchall()]
    if not ids:
        return 0
    incidents = stored(conn, ids)
    now = datetime.now(timezone.utc)
    stamp = iso(now)
    rows = []
    for alert in incidents:
        payload = _plain(alert)
        body = text(alert)
        for target in targets:
            for recipient in target.recipients:
                key = f"alert|{alert['incident_id']}|{target.name}|{recipient}"
                extra = {"payload": payload, "title": subject(alert)}
                if target.channel == "email":
                    body_out = body + "\n\n" + json.dumps(payload, indent=2, sort_keys=True, default=str)
                else:
                    body_out = body
                row = {"message_id": message_id_for(key), "idempotency_key": key, "run_id": f"{CAMPAIGN}-{now:%Y%m%d}",
                       "campaign_id": CAMPAIGN, "step": "alert", "user_id": f"operator:{target.name}",
                       "channel": target.channel, "provider": target.provider.name, "category": "transactional",
                       "priority": PRIORITY, "template_id": None, "variant": None, "experiment_id": None,
                       "dedupe_value": alert["incident_id"], "address": recipient, "subject": subject(alert),
                       "body": body_out, "encoding": None, "segments": None,
                       "extra": json.dumps(extra, default=str), "zones": "[]", "quiet_start": None, "quiet_end": None,
                       "conflict_action": "defer", "conflict_window_s": 0.0, "scheduled_for": stamp, "due_at": stamp,
                       "state": "queued", "updated_at": stamp}
                rows.append(tuple(row[c] for c in MESSAGE_COLUMNS))
    ops = connect(settings.ops_path)
    try:
        with transaction(ops):
            before = ops.total_changes
            ops.executemany(f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES "
                            f"({', '.join('?' for _ in MESSAGE_COLUMNS)}) ON CONFLICT (idempotency_key) DO NOTHING", rows)
            added = ops.total_changes - before
    finally:
        ops.close()
    conn.execute("UPDATE experiments.anomaly_alerts SET alerted_at = ? WHERE incident_id IN (SELECT unnest(?))", [now, ids])
    return added


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
