"""``nudgelab dispatch …``: send campaigns, run the worker, manage contacts and opt-outs.

* ``dispatch send CAMPAIGN.yml [--dry-run]`` — plan the campaign (audience, exclusions by reason,
  deferrals, channels, arms, segments and cost, rendered previews); without ``--dry-run`` queue it.
* ``dispatch run [--once]`` — the worker: send what is due through the providers.
* ``dispatch contacts import FILE`` — raw phone numbers and e-mails into ops.sqlite (idempotent).
* ``dispatch status`` — messages by state per campaign run, and what needs an operator.
* ``dispatch resolve MESSAGE_ID --as sent|dead|requeue`` — settle a message of unknown outcome.
* ``dispatch suppress USER_ID`` — put a user on the suppression list (an operator's opt-out).

Exit status: 0 done; 2 a campaign, file or argument is wrong (every problem is printed, the first
on the ``nudgelab:`` line); 3 a campaign was planned but queued nothing (``send`` without
``--dry-run``); 4 another send of the same campaign was queued meanwhile (plan again).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

from dispatch.receiver import DEFAULT_URL as DEFAULT_RECEIVER
from warehouse.settings import load_settings



class DispatchCliError(Exception):
    """One line for the user, then optional detail lines."""

    def __init__(self, message: str, details: list[str] | None = None, status: int = 2) -> None:
        super().__init__(message)
        self.details, self.status = details or [], status


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "dispatch", help="send campaigns: plan, queue, run the worker, manage contacts and opt-outs",
        description="Campaigns from YAML files, sent under consent, quiet hours, frequency caps and priorities "
        "through Kannel, SMTP, webhooks or the file provider, never twice. State lives in $NUDGELAB_HOME/ops.sqlite; "
        "every send and assignment goes to the spool for `nudgelab ingest --spool`.")
    sub = parser.add_subparsers(dest="dispatch_command", metavar="SUBCOMMAND")
    sub.required = True

    send = sub.add_parser("send", help="plan a campaign and queue it (or only show it with --dry-run)",
                          description="Plans the campaign on the published snapshot: audience size, exclusions by "
                          "reason in the policies' order, deferrals, channels, experiment arms and holdout, SMS "
                          "encodings, segments and cost, and rendered previews. Without --dry-run the messages are "
                          "queued in ops.sqlite for `nudgelab dispatch run`.")
    send.add_argument("campaign", metavar="CAMPAIGN.yml", help="the campaign file (YAML or JSON)")
    send.add_argument("--dry-run", action="store_true", help="show the plan, queue nothing")
    send.add_argument("--json", action="store_true", help="print the plan as JSON")
    send.add_argument("--receiver-url", help=f"public base URL of the receiver for tracked links "
                      f"(default $NUDGELAB_RECEIVER_URL or {DEFAULT_RECEIVER})")
    send.set_defaults(func=cmd_send)

    run = sub.add_parser("run", help="the worker: send what is due",
                         description="Claims due messages (highest priority first), re-checks opt-outs and quiet "
                         "hours, sends through the providers at their rates, retries temporary failures with "
                         "backoff, and writes every send to the spool. Settles what a crashed worker left first.")
    run.add_argument("--once", action="store_true", help="send everything due now, then exit")
    run.add_argument("--threads", type=int, default=8, help="concurrent sends (default 8)")
    run.add_argument("--batch", type=int, default=200, help="messages claimed at a time (default 200)")
    run.add_argument("--max-attempts", type=int, default=5, help="attempts before a message is dead (default 5)")
    run.add_argument("--max-seconds", type=float, help="stop after this many seconds")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(func=cmd_run)

    contacts = sub.add_parser("contacts", help="contacts (raw phone numbers and e-mails) in ops.sqlite")
    contacts_sub = contacts.add_subparsers(dest="contacts_command", metavar="SUBCOMMAND")
    contacts_sub.required = True
    imp = contacts_sub.add_parser("import", help="import a users file (CSV, JSON lines or Parquet)",
                                  description="Upserts user_id with phone, email, push_token, timezone, country and "
                                  "any other columns as template variables. Idempotent; the generator's users file "
                                  "works as it is.")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--json", action="store_true", help="print the counts as JSON")
    imp.set_defaults(func=cmd_contacts_import)

    status = sub.add_parser("status", help="messages by state per campaign run; what needs an operator")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    resolve = sub.add_parser("resolve", help="settle a message whose outcome is unknown",
                             description="After checking the gateway's log: --as sent (it went out), --as dead (it "
                             "did not, and must not be retried), --as requeue (it did not; send it again).")
    resolve.add_argument("message_id", metavar="MESSAGE_ID")
    resolve.add_argument("--as", dest="outcome", required=True, choices=("sent", "dead", "requeue"))
    resolve.set_defaults(func=cmd_resolve)

    suppress = sub.add_parser("suppress", help="add a user to the suppression list (no more messages)")
    suppress.add_argument("user_id", metavar="USER_ID")
    suppress.add_argument("--channel", default="*", choices=("*", "sms", "email", "push", "rcs"),
                          help="one channel, or every channel (default)")
    suppress.add_argument("--reason", default="operator", help="why (default operator)")
    suppress.set_defaults(func=cmd_suppress)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    return parser


def _ops(settings):
    from dispatch.sending import SendError, open_ops

    try:
        return open_ops(settings)
    except SendError as exc:
        raise DispatchCliError(str(exc)) from exc


def _providers(settings):
    from dispatch.providers.registry import ProviderConfigError, configured

    try:
        return configured(settings.home)
    except ProviderConfigError as exc:
        raise DispatchCliError(str(exc)) from exc


def cmd_send(args: argparse.Namespace) -> int:
    from dispatch.campaign import CampaignError, load_campaign
    from dispatch.sending import SendError, plan_send, providers_for, queue

    try:
        campaign = load_campaign(Path(args.campaign))
    except CampaignError as exc:
        raise DispatchCliError(str(exc), exc.problems[1:]) from exc
    settings = load_settings()
    try:
        providers = providers_for(settings, campaign)
        plan = plan_send(settings, campaign, args.receiver_url, providers=providers)
        if not args.dry_run and plan.queued:
            queue(settings, plan)
    except SendError as exc:
        raise DispatchCliError(str(exc), exc.details, exc.status) from exc
    if args.json:
        print(json.dumps({**plan.as_dict(), "dry_run": args.dry_run}, indent=2, default=str, ensure_ascii=False))
    else:
        print(render_plan(plan, args.dry_run, providers))
    if not args.dry_run and not plan.queued:
        print("nudgelab: nothing to queue: every user of the audience was excluded or held out", file=sys.stderr)
        return 3
    return 0


def render_plan(plan, dry_run: bool, providers: dict[str, str]) -> str:
    """The plan as an operator reads it before confirming."""
    c = plan.campaign
    lines = [f"campaign {c.campaign_id} ({c.category}, priority {c.priority}) — {c.name}",
             f"  audience: {plan.matched:,} users match the filters"]
    if plan.excluded:
        lines.append("  excluded (in the policies' order):")
        for reason, count in plan.excluded.items():
            lines.append(f"    {reason:<22} {count:>9,}")
    if plan.held_out:
        lines.append(f"  held out (assigned, not sent): {plan.held_out:,}")
    for reason, count in plan.deferred.items():
        lines.append(f"  deferred by {reason.replace('_', ' ')}: {count:,}")
    if plan.defer_existing or plan.cancel_existing:
        lines.append(f"  lower-priority queued messages that yield: {len(plan.defer_existing):,} deferred, "
                     f"{len(plan.cancel_existing):,} cancelled")
    channel_text = ", ".join(f"{ch} {n:,} via {providers.get(ch, '?')}" for ch, n in plan.per_channel.items())
    lines.append(f"  {'would queue' if dry_run else 'queued'}: {plan.queued:,} messages ({channel_text or 'none'})"
                 + (f"; {plan.fallbacks:,} on a fallback channel" if plan.fallbacks else ""))
    if plan.allocation is not None:
        arms = ", ".join(f"{arm} {n:,}" for arm, n in plan.per_variant.items())
        note = f" ({plan.allocation.note})" if plan.allocation.note else ""
        lines.append(f"  experiment {c.experiment.experiment_id}: {arms}; allocation {plan.allocation.method}{note}")
    if plan.encodings:
        lines.append("  sms encodings: " + ", ".join(f"{k} {v:,}" for k, v in plan.encodings.items())
                     + f"; {plan.units.get('sms', 0):,} segments")
    if plan.cost:
        lines.append(f"  cost: {sum(plan.cost.values()):,.2f} {plan.currency} ("
                     + ", ".join(f"{k} {v:,.2f}" for k, v in plan.cost.items()) + ")")
    if plan.first_due:
        lines.append(f"  sending from {plan.first_due:%Y-%m-%d %H:%M} to {plan.last_due:%Y-%m-%d %H:%M} UTC")
    for preview in plan.previews:
        detail = f"{preview.encoding}, {preview.segments} segment{'s' if preview.segments != 1 else ''}, " \
                 f"{preview.characters} chars" if preview.encoding else f"{preview.characters} chars"
        lines.append(f"  preview {preview.variant}/{preview.channel} (user {preview.user_id}; {detail}):")
        if preview.subject:
            lines.append(f"    subject: {preview.subject}")
        lines.append("    " + preview.body.replace("\n", "\n    "))
    if not dry_run and plan.queued:
        lines.append(f"run {plan.run_id}: `nudgelab dispatch run` sends them")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from dispatch.journeys import plan_due
    from dispatch.planner import Context
    from dispatch.providers.registry import channel_providers
    from dispatch.sending import receiver_url
    from dispatch.worker import Worker, WorkerOptions
    from warehouse.connections import connect_published

    if args.threads < 1 or args.batch < 1 or args.max_attempts < 1:
        raise DispatchCliError("--threads, --batch and --max-attempts must be at least 1")
    settings = load_settings()
    providers = _providers(settings)
    ops = _ops(settings)
    receiver = receiver_url()
    key = settings.hash_key()

    def journeys(now: datetime):
        try:
            snapshot = connect_published(settings)
        except RuntimeError:
            snapshot = None
        try:
            def ctx_for(campaign):
                return Context(ops, snapshot, key, receiver, channel_providers(providers, campaign.providers), now)
            return plan_due(ops, snapshot, ctx_for, now)
        finally:
            if snapshot is not None:
                snapshot.close()

    has_journeys = ops.execute("SELECT 1 FROM journey_steps WHERE state = 'waiting' LIMIT 1").fetchone() is not None
    worker = Worker(settings.home, settings.ops_path, settings.spool_dir, key, providers,
                    WorkerOptions(once=args.once, batch=args.batch, threads=args.threads,
                                  max_attempts=args.max_attempts, max_seconds=args.max_seconds),
                    plan_journeys=_throttled(journeys, 30.0) if has_journeys or not args.once else None,
                    progress=None if args.json else (lambda line: print(f"  · {line}", file=sys.stderr, flush=True)))
    previous = {sig: signal.signal(sig, lambda *_: worker.stop()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        summary = worker.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        ops.close()
    data = summary.as_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"sent {data['sent']:,}, retry later {data['retry']:,}, dead {data['dead']:,}, unknown {data['unknown']:,}, "
              f"deferred by quiet hours {data['deferred_quiet_hours']:,}, cancelled {data['cancelled']:,} "
              f"in {data['seconds']:.1f}s; spooled " + (", ".join(f"{v:,} {k}" for k, v in data["spooled"].items()) or "nothing"))
        if data["journeys"]:
            print("journeys: " + ", ".join(f"{k} {v:,}" for k, v in data["journeys"].items()))
    return 0


def _throttled(function, seconds: float):
    """Call ``function`` at most every ``seconds`` (journeys read the snapshot)."""
    import time
    from collections import Counter

    state = {"last": None}

    def call(now: datetime):
        if state["last"] is not None and time.monotonic() - state["last"] < seconds:
            return Counter()
        state["last"] = time.monotonic()
        return function(now)
    return call


def cmd_contacts_import(args: argparse.Namespace) -> int:
    from dispatch.contacts import ContactsError, import_contacts

    settings = load_settings()
    ops = _ops(settings)
    try:
        report = import_contacts(ops, Path(args.file))
    except ContactsError as exc:
        raise DispatchCliError(str(exc)) from exc
    finally:
        ops.close()
    data = report.as_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        reasons = "; ".join(f"{k}: {v:,}" for k, v in data["invalid_reasons"].items())
        print(f"read {data['rows']:,} rows: {data['added']:,} added, {data['updated']:,} updated, "
              f"{data['unchanged']:,} unchanged, {data['invalid']:,} invalid, {data['superseded']:,} older versions"
              + (f" ({reasons})" if reasons else ""))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    ops = _ops(settings)
    try:
        runs = ops.execute("SELECT r.run_id, r.campaign_id, r.created_at, r.audience, r.held_out, m.state, count(m.message_id) "
                           "FROM runs r LEFT JOIN messages m USING (run_id) GROUP BY 1, 2, 3, 4, 5, 6 "
                           "ORDER BY r.created_at, m.state").fetchall()
        attention = ops.execute("SELECT message_id, campaign_id, state, last_error FROM messages "
                                "WHERE state IN ('unknown', 'dead') ORDER BY updated_at DESC LIMIT 20").fetchall()
    finally:
        ops.close()
    by_run: dict[str, dict] = {}
    for run_id, campaign_id, created, audience, held, state, count in runs:
        entry = by_run.setdefault(run_id, {"run_id": run_id, "campaign_id": campaign_id, "created_at": created,
                                           "audience": audience, "held_out": held, "states": {}})
        if state:
            entry["states"][state] = count
    needs = [{"message_id": m, "campaign_id": c, "state": s, "reason": e} for m, c, s, e in attention]
    if args.json:
        print(json.dumps({"runs": list(by_run.values()), "needs_attention": needs}, indent=2))
        return 0
    if not by_run:
        print("no campaign has been queued yet")
        return 0
    for entry in by_run.values():
        states = ", ".join(f"{k} {v:,}" for k, v in entry["states"].items())
        print(f"{entry['run_id']}: {states or 'nothing queued'} (audience {entry['audience']:,}, held out {entry['held_out']:,})")
    for item in needs:
        print(f"  {item['state']}: {item['message_id']} ({item['campaign_id']}): {item['reason']}")
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    from dispatch import outbox

    settings = load_settings()
    ops = _ops(settings)
    try:
        row = ops.execute("SELECT state FROM messages WHERE message_id = ?", [args.message_id]).fetchone()
        if row is None:
            raise DispatchCliError(f"no message {args.message_id}")
        if row[0] != "unknown":
            raise DispatchCliError(f"message {args.message_id} is {row[0]}, not unknown: only an unknown outcome is resolved by hand")
        if args.outcome == "sent":
            outbox.mark_sent(ops, args.message_id, None, datetime.now(timezone.utc), "resolved as sent by an operator",
                             expected=("unknown",))
        elif args.outcome == "dead":
            outbox.mark_dead(ops, args.message_id, "resolved as not sent by an operator", expected=("unknown",))
        else:
            outbox.requeue(ops, args.message_id, "requeued by an operator after an unknown outcome")
        if args.outcome == "sent":
            from dispatch.spooling import flush

            flush(ops, settings.spool_dir, settings.hash_key())
    finally:
        ops.close()
    print(f"{args.message_id}: {args.outcome}")
    return 0


def cmd_suppress(args: argparse.Namespace) -> int:
    from dispatch.ops import transaction
    from dispatch.suppressions import suppress

    settings = load_settings()
    ops = _ops(settings)
    try:
        with transaction(ops):
            suppress(ops, args.user_id, args.channel, args.reason, "nudgelab dispatch suppress")
    finally:
        ops.close()
    print(f"{args.user_id} suppressed on {'every channel' if args.channel == '*' else args.channel}")
    return 0
