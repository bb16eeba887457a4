"""``nudgelab incidents list|ack|unack|silence|unsilence|silences``: what operators do with anomaly
incidents — list them with their state, acknowledge one (no further updates; the resolved notice
still goes out), silence incidents by id or by Alertmanager-style matchers for a while (no
notifications at all), and end a silence early.

Incidents are read from the published snapshot (what the app shows; no warehouse lock is needed,
so this works while a build runs); acknowledgements and silences are written to ops.sqlite through
``dispatch.alert_state`` — the same functions the app's Anomalies page uses. The next
``nudgelab anomalies`` run applies them. Exit status: 0 done; 2 a bad id, matcher or duration, or
nothing published yet.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import datetime, timezone

from dispatch.alert_state import SEVERITIES, StateError
from warehouse.settings import load_settings


class IncidentsError(Exception):
    """A failure the operator can act on (one line, exit status 2)."""


def operator() -> str:
    """Who is acting: NUDGELAB_OPERATOR, else the login name."""
    try:
        return os.environ.get("NUDGELAB_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "incidents", help="list, acknowledge and silence anomaly incidents",
        description="What operators do with the incidents `nudgelab anomalies` stores: list them with their "
        "acknowledgement and silence, acknowledge one (no further [UPDATE]s; its [RESOLVED] notice still goes out), "
        "silence incidents for a while (no notifications at all while it lasts) by incident id or by matchers on "
        "metric, direction, severity, slice, campaign_id, channel, provider, region, carrier (LABEL=VALUE, !=, =~ and "
        "!~ for regular expressions; a label a slice does not name is empty), and end a silence early. Incidents "
        "come from the published snapshot; the state lives in NUDGELAB_HOME/ops.sqlite and the next "
        "`nudgelab anomalies` run applies it.")
    sub = parser.add_subparsers(dest="incidents_command", metavar="SUBCOMMAND")
    sub.required = True

    lst = sub.add_parser("list", help="incidents with their acknowledgement, silence and last notice",
                         description="Every published incident, most severe first, with who acknowledged it, the "
                         "silence it is under and what was last notified.")
    lst.add_argument("--open", action="store_true", help="only incidents still open")
    lst.add_argument("--min-severity", choices=SEVERITIES, default="minor", help="only incidents at least this severe")
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lst.set_defaults(func=cmd_list)

    ack = sub.add_parser("ack", help="acknowledge an incident: no further updates, the resolved notice still goes out",
                         description="Take an incident: it gets no further [UPDATE] notifications; its [RESOLVED] notice "
                         "still goes out (and a reopening is still told). Acknowledging again keeps the first one.")
    ack.add_argument("incident_id", metavar="INCIDENT_ID", help="the incident (or a unique prefix of at least 4 characters)")
    ack.add_argument("--by", default=None, metavar="NAME", help="who acknowledges (default $NUDGELAB_OPERATOR or your login)")
    ack.add_argument("--comment", "-c", help="why, or what you are doing about it")
    ack.set_defaults(func=cmd_ack)

    unack = sub.add_parser("unack", help="take an acknowledgement back (updates flow again)",
                           description="Remove an incident's acknowledgement: its updates are notified again.")
    unack.add_argument("incident_id", metavar="INCIDENT_ID", help="the incident (or a unique prefix)")
    unack.set_defaults(func=cmd_unack)

    sil = sub.add_parser(
        "silence", help="no notifications for matching incidents until the silence expires",
        description="Silence one incident (give its id) or every incident the matchers all match, now and in the "
        "future, for --for. Nothing is notified for them meanwhile; after it, an incident still open that was never "
        "notified is opened, and a notified one that ended meanwhile gets its resolved notice. Examples: "
        "`nudgelab incidents silence 3f2a9c01 --for 4h`, `nudgelab incidents silence provider=kannel-a "
        "metric=delivery_rate --for 2d -c 'gateway maintenance'`, `nudgelab incidents silence 'region=~US-.*' "
        "severity=minor --for 1w`.")
    sil.add_argument("targets", nargs="+", metavar="INCIDENT_ID|LABEL=VALUE",
                     help="an incident id, or matchers (LABEL=VALUE, LABEL!=VALUE, LABEL=~REGEX, LABEL!~REGEX)")
    sil.add_argument("--for", dest="duration", required=True, metavar="DURATION",
                     help="how long: 30m, 4h, 2d, 1w, 1d12h")
    sil.add_argument("--comment", "-c", help="why (shown in the listing)")
    sil.add_argument("--by", default=None, metavar="NAME", help="who silences (default $NUDGELAB_OPERATOR or your login)")
    sil.set_defaults(func=cmd_silence)

    uns = sub.add_parser("unsilence", help="end a silence now",
                         description="End a silence before its time (what it held back is compared at the next run).")
    uns.add_argument("silence_id", metavar="SILENCE_ID", help="the silence (see `nudgelab incidents silences`)")
    uns.add_argument("--by", default=None, metavar="NAME", help="who ends it (default $NUDGELAB_OPERATOR or your login)")
    uns.set_defaults(func=cmd_unsilence)

    sls = sub.add_parser("silences", help="list silences (active ones; --all for ended ones too)",
                         description="Silences with their matchers, end, author and comment.")
    sls.add_argument("--all", action="store_true", help="also silences that have ended")
    sls.add_argument("--json", action="store_true", help="print JSON instead of lines")
    sls.set_defaults(func=cmd_silences)
    return parser


def _guard(run):
    """One line and exit status 2 for what the operator can act on."""
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (IncidentsError, StateError) as exc:
            print(f"nudgelab: {exc}", file=sys.stderr)
            return 2
    wrapped.__doc__ = run.__doc__
    return wrapped


def published_incidents(settings) -> list[dict]:
    """The incidents of the published snapshot, most severe first."""
    import duckdb

    from warehouse.publish import current_snapshot
    from warehouse.storage import StorageError, open_database

    snapshot = current_snapshot(settings)
    if snapshot is None:
        raise IncidentsError(f"nothing is published under {settings.published_dir}: run `nudgelab build` and "
                             "`nudgelab anomalies` first")
    try:
        conn = open_database(snapshot, read_only=True, role="snapshot")
    except StorageError as exc:
        raise IncidentsError(str(exc).splitlines()[0]) from exc
    try:
        conn.execute("SET TimeZone = 'UTC'")
        present = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'experiments' "
                               "AND table_name = 'anomaly_alerts' AND database_name = current_database()").fetchone()[0]
        if not present:
            raise IncidentsError("the published snapshot holds no incidents: run `nudgelab anomalies` first")
        from experiments.anomalies.job import alerts

        return alerts(conn)
    except duckdb.Error as exc:
        raise IncidentsError(f"cannot read the published incidents: {str(exc).splitlines()[0]}") from exc
    finally:
        conn.close()


def _incident(settings, given: str) -> dict:
    from dispatch.alert_state import resolve_id

    incidents = published_incidents(settings)
    iid = resolve_id(given, [i["incident_id"] for i in incidents])
    return next(i for i in incidents if i["incident_id"] == iid)


def _what(incident: dict) -> str:
    return f"{incident['severity']} {incident['metric']} {incident['direction']} on {incident['slice']}"


@_guard
def cmd_list(args: argparse.Namespace) -> int:
    from nudgelab.anomalies_cmd import render_table, state_fields, with_states

    settings = load_settings()
    incidents = published_incidents(settings)
    floor = SEVERITIES.index(args.min_severity)
    shown = [i for i in incidents if (not args.open or i["is_open"])
             and (i["severity"] not in SEVERITIES or SEVERITIES.index(i["severity"]) >= floor)]
    shown = with_states(settings, shown)
    if shown and "last_notice" not in shown[0]:
        shown = [{**i, **state_fields(None)} for i in shown]   # no ops.sqlite yet: nothing acknowledged or sent
    if args.json:
        print(json.dumps(shown, default=_iso, indent=2))
        return 0
    table = render_table(shown, {"new": 0, "extended": 0})
    print(f"{len(shown)} of {len(incidents)} incident(s) (the full id of each: --json)\n"
          + table.split("\n", 1)[1] if "\n" in table else table)
    return 0


@_guard
def cmd_ack(args: argparse.Namespace) -> int:
    from dispatch.alert_state import acknowledge, store

    settings = load_settings()
    incident = _incident(settings, args.incident_id)
    with store(settings.ops_path) as ops:
        ack, added = acknowledge(ops, incident["incident_id"], args.by or operator(), args.comment)
    if added:
        print(f"acknowledged {incident['incident_id']} ({_what(incident)}) as {ack.by}: no further updates; "
              "its resolved notice still goes out")
    else:
        print(f"{incident['incident_id']} was already acknowledged by {ack.by} at {ack.at:%Y-%m-%d %H:%M} UTC")
    return 0


@_guard
def cmd_unack(args: argparse.Namespace) -> int:
    from dispatch.alert_state import store, unacknowledge

    settings = load_settings()
    incident = _incident(settings, args.incident_id)
    with store(settings.ops_path) as ops:
        removed = unacknowledge(ops, incident["incident_id"])
    if not removed:
        raise IncidentsError(f"incident {incident['incident_id']} is not acknowledged")
    print(f"{incident['incident_id']} is no longer acknowledged: its updates are notified again")
    return 0


@_guard
def cmd_silence(args: argparse.Namespace) -> int:
    from dispatch.alert_state import OPS, Matcher, add_silence, parse_duration, parse_matcher, resolve_id, store

    settings = load_settings()
    duration = parse_duration(args.duration)
    ids = [t for t in args.targets if not any(op in t for op in OPS)]
    matchers = [parse_matcher(t) for t in args.targets if any(op in t for op in OPS)]
    if len(ids) > 1:
        raise IncidentsError(f"give one incident id, or matchers (got {len(ids)} ids: {', '.join(ids)})")
    if ids:
        incidents = published_incidents(settings)
        iid = resolve_id(ids[0], [i["incident_id"] for i in incidents])
        matchers.insert(0, Matcher("incident_id", "=", iid))
    else:
        try:
            incidents = published_incidents(settings)
        except IncidentsError:
            incidents = None   # matchers may silence what is not published yet
    with store(settings.ops_path) as ops:
        silence = add_silence(ops, matchers, duration, args.by or operator(), args.comment)
    matching = "" if incidents is None else (
        f"; matches {sum(silence.matches(i) for i in incidents)} of the {len(incidents)} published incident(s) now")
    print(f"silence {silence.silence_id}: {silence.describe()} until {silence.ends_at:%Y-%m-%d %H:%M} UTC "
          f"(by {silence.created_by}){matching}")
    return 0


@_guard
def cmd_unsilence(args: argparse.Namespace) -> int:
    from dispatch.alert_state import end_silence, store

    settings = load_settings()
    if not settings.ops_path.exists():
        raise IncidentsError(f"no silence {args.silence_id!r}: there is no {settings.ops_path} yet")
    with store(settings.ops_path) as ops:
        silence = end_silence(ops, args.silence_id, args.by or operator())
    print(f"silence {silence.silence_id} ({silence.describe()}) ended at {silence.ends_at:%Y-%m-%d %H:%M:%S} UTC")
    return 0


@_guard
def cmd_silences(args: argparse.Namespace) -> int:
    from dispatch.alert_state import silences, store

    settings = load_settings()
    found = []
    if settings.ops_path.exists():
        with store(settings.ops_path) as ops:
            found = silences(ops, include_ended=args.all)
    now = datetime.now(timezone.utc)
    rows = [{"silence_id": s.silence_id, "matchers": [str(m) for m in s.matchers], "starts_at": s.starts_at,
             "ends_at": s.ends_at, "active": s.active(now), "created_by": s.created_by, "comment": s.comment,
             "ended_by": s.ended_by} for s in found]
    if args.json:
        print(json.dumps(rows, default=_iso, indent=2))
        return 0
    if not rows:
        print("no active silences" if not args.all else "no silences")
        return 0
    for r in rows:
        state = "active" if r["active"] else ("ended early by " + r["ended_by"] if r["ended_by"] else "expired")
        print(f"{r['silence_id']}  {', '.join(r['matchers'])}  until {r['ends_at']:%Y-%m-%d %H:%M} UTC  "
              f"by {r['created_by']}  [{state}]" + (f"  — {r['comment']}" if r["comment"] else ""))
    return 0


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
