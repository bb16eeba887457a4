"""``nudgelab anomalies [--since TS] [--rescore] [--json] [--min-severity S]``: score the audited build, store
incidents, queue their notifications (opened, updated, resolved, a digest of the minor ones; see
``nudgelab.alerts``), publish, send, and list the incidents with their operator state.

Acknowledging and silencing incidents is ``nudgelab incidents`` (``nudgelab.incidents_cmd``).
Wiring (in ``nudgelab/cli.py``): ``from nudgelab.anomalies_cmd import add_parser`` and call
``add_parser(sub)`` inside ``build_parser``. Alert destinations come from the environment — see
``nudgelab.alerts`` (sent through dispatch's outbox and providers): NUDGELAB_ALERT_LOG, NUDGELAB_ALERT_WEBHOOK, NUDGELAB_ALERT_SMTP,
NUDGELAB_ALERT_EMAIL_TO / _FROM, NUDGELAB_ALERT_RETRIES, NUDGELAB_ALERT_BACKOFF,
NUDGELAB_ALERT_UPDATE_GROWTH, NUDGELAB_ALERT_UPDATE_HOURS.
Exit status: 0 done; 2 the build database is not an audited build (run ``nudgelab build``) or an
argument is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from warehouse.connections import connect_build
from warehouse.lock import warehouse_lock
from warehouse.publish import audit_problem, publish
from dispatch.alert_state import SEVERITIES  # incident severities, least first
from warehouse.settings import load_settings


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "anomalies", help="detect anomalies in the hourly metrics and send alerts",
        description="Score every slice of marts.fct_metric_timeseries against its seasonal baseline, upsert "
        "incidents into experiments.anomaly_alerts (re-running never duplicates), queue their notifications in "
        "dispatch's outbox for the configured destinations (NUDGELAB_ALERT_LOG, NUDGELAB_ALERT_WEBHOOK, "
        "NUDGELAB_ALERT_SMTP + NUDGELAB_ALERT_EMAIL_TO/FROM): [OPEN] once per incident, [UPDATE] when an open one "
        "gets worse (severity up, or 50 % more messages affected, at most every 4 h: NUDGELAB_ALERT_UPDATE_GROWTH, "
        "NUDGELAB_ALERT_UPDATE_HOURS), [RESOLVED] when it ends, and one [DIGEST] per run for the minor ones; "
        "publish the result, then send (a destination that is down keeps its messages for the next run). "
        "Acknowledge and silence incidents with `nudgelab incidents`.")
    parser.add_argument("--rescore", action="store_true",
                        help="score all history again instead of continuing from the stored scoring state "
                        "(each run otherwise scores only the hours that settled since the last one)")
    parser.add_argument("--since", metavar="TS", help="only store and send incidents ending at or after TS "
                        "(ISO 8601, e.g. 2026-10-20 or 2026-10-20T09:00Z; naive means UTC)")
    parser.add_argument("--json", action="store_true", help="print the summary and incidents as JSON")
    parser.add_argument("--min-severity", choices=SEVERITIES, default="minor",
                        help="list only incidents at least this severe (all are stored and sent; default minor)")
    parser.set_defaults(func=cmd_anomalies)
    return parser


def parse_since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"--since {text!r} is not an ISO 8601 date or time (e.g. 2026-10-20T09:00Z)") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def cmd_anomalies(args: argparse.Namespace) -> int:
    from experiments.anomalies.job import run_anomalies
    from nudgelab import alerts as alerting

    settings = load_settings()
    try:
        since = parse_since(args.since)
        targets = alerting.destinations(settings)
        alerting.retry_policy()
        policy = alerting.update_policy()
    except ValueError as exc:
        print(f"nudgelab: {exc}", file=sys.stderr)
        return 2
    if not settings.warehouse_path.exists():
        print(f"nudgelab: no warehouse at {settings.warehouse_path}: run `nudgelab ingest` and `nudgelab build` first",
              file=sys.stderr)
        return 2
    with warehouse_lock(settings.home, "nudgelab anomalies"):
        conn = connect_build(settings)
        try:
            problem = audit_problem(conn)
            if problem:
                print(f"nudgelab: the build database holds no audited build ({problem}): run `nudgelab build` first",
                      file=sys.stderr)
                return 2
            summary = run_anomalies(conn, settings, since=since, rescore=args.rescore)
            queued = alerting.queue(conn, settings, targets, policy=policy)
            summary["alerts_queued"] = queued.messages
            summary["notifications"] = queued.as_dict()
            from experiments.anomalies.job import alerts

            incidents = alerts(conn)
            if since is not None:
                incidents = [a for a in incidents if a["end_at"] >= since]
            publish(settings, conn)
        finally:
            conn.close()
    sent = alerting.send(settings, targets)  # after the warehouse is free: a slow sink holds nothing up
    summary.update(delivered=sent["delivered"], pending_deliveries=sent["pending"], sinks=[t.name for t in targets])
    summary = {k: v for k, v in summary.items() if k not in ("incidents", "new_ids")}
    floor = SEVERITIES.index(args.min_severity)
    shown = [a for a in incidents if a["severity"] not in SEVERITIES or SEVERITIES.index(a["severity"]) >= floor]
    summary["not_listed"] = len(incidents) - len(shown)
    incidents = with_states(settings, shown)
    if args.json:
        print(json.dumps({"summary": summary, "incidents": incidents}, default=_iso, indent=2))
    else:
        print(render_table(incidents, summary))
    return 0


def with_states(settings, incidents: list[dict]) -> list[dict]:
    """The incidents with their operator state (as they are when ops.sqlite does not exist yet)."""
    from dispatch.alert_state import states

    known = states(settings.ops_path, incidents)
    if known is None:
        return incidents
    return [{**a, **state_fields(known.get(a["incident_id"]))} for a in incidents]


def state_fields(state) -> dict:
    """An incident's operator state as listing fields (acknowledged, silenced until, last notice)."""
    if state is None:
        return {"acknowledged_by": None, "acknowledged_at": None, "silenced_until": None, "silence_id": None,
                "last_notice": "not notified yet"}
    return {"acknowledged_by": state.ack.by if state.ack else None,
            "acknowledged_at": state.ack.at if state.ack else None,
            "silenced_until": state.silence.ends_at if state.silence else None,
            "silence_id": state.silence.silence_id if state.silence else None,
            "last_notice": state.last_notice()}


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def describe_state(a: dict) -> str:
    parts = []
    if a.get("acknowledged_by"):
        parts.append(f"acked by {a['acknowledged_by']}")
    if a.get("silenced_until"):
        parts.append(f"silenced until {a['silenced_until'].astimezone(timezone.utc):%Y-%m-%d %H:%M} ({a['silence_id']})")
    parts.append(a.get("last_notice") or "")
    return "; ".join(p for p in parts if p)


def render_table(incidents: list[dict], summary: dict) -> str:
    """A plain-text table of incidents, most severe first."""
    head = (f"{summary.get('new', 0)} new, {summary.get('extended', 0)} continuing incident(s); "
            f"{summary.get('delivered', 0)} alert(s) delivered, {summary.get('pending_deliveries', 0)} pending "
            f"(sinks: {', '.join(summary.get('sinks', [])) or 'none'})")
    scoring = summary.get("scoring") or {}
    if scoring:
        modes = {m["mode"] for m in scoring.values()}
        hours = max(m["hours_scored"] for m in scoring.values())
        reasons = sorted({m["reason"] for m in scoring.values() if m["mode"] == "full" and m["reason"]})
        head += (f"\nscored: {' and '.join(sorted(modes))}, up to {hours} new hour(s)"
                 + (f" (full because {'; '.join(reasons)})" if reasons else ""))
    notes = summary.get("notifications") or {}
    events = notes.get("events") or {}
    if events or notes.get("held"):
        said = ", ".join(f"{n} {k.replace('digest_', 'minor ')}" for k, n in sorted(events.items())) or "nothing new"
        held = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted((notes.get("held") or {}).items()))
        head += f"\nnotified: {said}" + (f"; held back: {held}" if held else "")
    if summary.get("not_listed"):
        head += f"; {summary['not_listed']} less severe incident(s) not listed (--min-severity)"
    if not incidents:
        return head + "\nno incidents"
    from experiments.anomalies.series import METRICS

    rates = {m.name for m in METRICS if m.kind == "rate"}
    stated = any("last_notice" in a for a in incidents)
    cols = ["severity", "metric", "direction", "slice", "start (UTC)", "end (UTC)", "observed", "expected", "affected"]
    cols += ["incident", "state"] if stated else []
    rows = []
    for a in incidents:
        fmt = (lambda v: f"{v:.1%}") if a["metric"] in rates else (lambda v: f"{v:,.0f}")
        row = [a["severity"], a["metric"], a["direction"], a["slice"],
               a["start_at"].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M"),
               a["end_at"].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M") + (" (open)" if a["is_open"] else ""),
               fmt(a["observed_value"]), fmt(a["expected_value"]), f"{a['messages_affected']:,.0f}"]
        if stated:
            row += [a["incident_id"][:8], describe_state(a)]
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([head, line(cols), line(["-" * w for w in widths]), *map(line, rows)])
