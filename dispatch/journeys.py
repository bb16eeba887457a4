"""Later steps of a journey ("SMS 30 minutes after cart abandonment, then an e-mail 24 h later if
there was no click"), planned at their due time from the warehouse.

A waiting step gets its due time when the previous step's message is sent (its send time plus the
step's delay). At that time its condition is read from the published snapshot's
``marts.fct_messages`` row of the previous message — but only from a snapshot that has ingested
everything up to the due time (``ingested_through``), so a click just before it is not missed; until
then the step waits. A met condition plans the step through the planner's policies and rendering
(consent may have changed, quiet hours apply); an unmet one skips it with the reason (``clicked``,
``converted``, ``delivered``), as does a previous message that never went out.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from dispatch.campaign import Campaign, campaign_from_dict
from dispatch.ops import iso, parse_iso, transaction
from dispatch.planner import Context, plan_step, queue_plan
from warehouse.sql import rows, scalar

CONDITION_SQL = {
    "no_click": ("is_clicked", "clicked"),
    "no_conversion": ("is_converted", "converted"),
    "not_delivered": ("is_delivered", "delivered"),
}


def campaign_of(ops: sqlite3.Connection, campaign_id: str) -> Campaign:
    """The campaign as last queued (its audience and first send time are not needed for later steps)."""
    row = ops.execute("SELECT definition, source FROM campaigns WHERE campaign_id = ?", [campaign_id]).fetchone()
    document = json.loads(row[0])
    document.pop("audience", None)
    document.pop("schedule", None)
    return campaign_from_dict(document, None, None, Path(row[1]).parent if row[1] else None)


def _set_due_times(ops: sqlite3.Connection, campaigns: dict[str, Campaign]) -> int:
    waiting = ops.execute(
        "SELECT j.run_id, j.user_id, j.step, j.after_message_id, j.campaign_id, m.state, m.sent_at "
        "FROM journey_steps j JOIN messages m ON m.message_id = j.after_message_id "
        "WHERE j.state = 'waiting' AND j.due_at IS NULL AND m.state IN ('sent', 'dead', 'cancelled')").fetchall()
    updated = 0
    with transaction(ops):
        for run_id, user, step, after, campaign_id, state, sent_at in waiting:
            key = [run_id, user, step, after]
            if state != "sent":
                ops.execute("UPDATE journey_steps SET state = 'skipped', reason = ? WHERE run_id = ? AND user_id = ? "
                            "AND step = ? AND after_message_id = ?", [f"previous step {state}", *key])
                continue
            campaign = campaigns.setdefault(campaign_id, campaign_of(ops, campaign_id))
            due = parse_iso(sent_at) + campaign.step(step).after
            ops.execute("UPDATE journey_steps SET due_at = ? WHERE run_id = ? AND user_id = ? AND step = ? "
                        "AND after_message_id = ?", [iso(due), *key])
            updated += 1
    return updated


def plan_due(ops: sqlite3.Connection, snapshot: duckdb.DuckDBPyConnection | None, ctx_for, now: datetime) -> Counter:
    """Decide and plan every journey step due by ``now``. ``ctx_for(campaign)`` gives the planning
    Context (providers differ per campaign). Returns counts: planned, skipped by reason, waiting."""
    outcome: Counter = Counter()
    campaigns: dict[str, Campaign] = {}
    _set_due_times(ops, campaigns)
    due = ops.execute("SELECT run_id, user_id, step, after_message_id, campaign_id, variant, dedupe_value, variables, "
                      "due_at FROM journey_steps WHERE state = 'waiting' AND due_at IS NOT NULL AND due_at <= ?",
                      [iso(now)]).fetchall()
    if not due:
        return outcome
    if snapshot is None:
        outcome["waiting_for_snapshot"] += len(due)
        return outcome
    through = scalar(snapshot, "SELECT max(ingested_through) FROM marts.fct_messages")
    ready = [r for r in due if through is not None and through >= parse_iso(r[8])]
    outcome["waiting_for_snapshot"] += len(due) - len(ready)
    if not ready:
        return outcome
    facts = {r[0]: r[1:] for r in rows(snapshot, "SELECT message_id, is_clicked, is_converted, is_delivered "
                                                 "FROM marts.fct_messages WHERE message_id IN (SELECT unnest(?))",
                                       [[r[3] for r in ready]])}
    to_plan: dict[tuple[str, str, str], list] = {}
    skipped = []
    for row in ready:
        run_id, user, step_name, after, campaign_id = row[:5]
        campaign = campaigns.setdefault(campaign_id, campaign_of(ops, campaign_id))
        step = campaign.step(step_name)
        if step.condition != "always":
            fact = facts.get(after)
            if fact is None:
                outcome["waiting_for_snapshot"] += 1
                continue
            column, word = CONDITION_SQL[step.condition]
            value = {"is_clicked": fact[0], "is_converted": fact[1], "is_delivered": fact[2]}[column]
            if value:
                skipped.append((word, run_id, user, step_name, after))
                continue
        to_plan.setdefault((campaign_id, step_name, run_id), []).append(row)
    with transaction(ops):
        for reason, *key in skipped:
            ops.execute("UPDATE journey_steps SET state = 'skipped', reason = ? WHERE run_id = ? AND user_id = ? "
                        "AND step = ? AND after_message_id = ?", [reason, *key])
            outcome[f"skipped_{reason}"] += 1
    for (campaign_id, step_name, run_id), group in to_plan.items():
        campaign = campaigns[campaign_id]
        frame = pl.DataFrame({
            "user_id": [r[1] for r in group], "variant": [r[5] for r in group], "dedupe_value": [r[6] for r in group],
            "variables": [r[7] for r in group],
            "due_at": [max(parse_iso(r[8]), now) for r in group]},
            schema={"user_id": pl.String, "variant": pl.String, "dedupe_value": pl.String, "variables": pl.String,
                    "due_at": pl.Datetime("us", "UTC")})
        plan = plan_step(campaign, campaign.step(step_name), frame, ctx_for(campaign), run_id)
        queue_plan(plan, ops, first_run=False)
        planned_users = {m[5] for m in plan.messages}
        with transaction(ops):
            for r in group:
                state, reason = ("planned", None) if r[1] in planned_users else ("skipped", "excluded by the policies")
                ops.execute("UPDATE journey_steps SET state = ?, reason = ? WHERE run_id = ? AND user_id = ? AND step = ? "
                            "AND after_message_id = ?", [state, reason, r[0], r[1], r[2], r[3]])
        outcome["planned"] += len(planned_users)
        outcome["skipped_by_policies"] += len(group) - len(planned_users)
        for reason, count in plan.excluded.items():
            outcome[f"excluded_{reason}"] += count
    return outcome


def pending(ops: sqlite3.Connection) -> int:
    return ops.execute("SELECT count(*) FROM journey_steps WHERE state = 'waiting'").fetchone()[0]

