"""A realistic, deterministic, fast scenario generator for reminder messaging (the synthetic data source).

``generate`` simulates users, campaign sends, receipts, clicks, dwells, conversions, replies and
experiment assignments with one seeded numpy generator, plants experiments, incidents and real-log
mess, writes one file per event type in the contract's input shape, and returns (and writes) the
ground truth. Same arguments => byte-identical files.

Modules: ``catalog`` (reference data), ``clock`` (time zones, ISO text), ``phones`` (valid numbers),
``population`` (users), ``experiments`` (arms, effects, assignment), ``campaigns`` (who gets what
when), ``incidents`` (link block, gateway outage), ``engagement`` (receipts, replies, clicks,
dwells, conversions), ``mess`` (duplicates, zone offsets), ``tables`` (frames in contract shape),
``writer`` (csv/jsonl/parquet), ``truth`` (ground_truth.json).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from . import catalog as C
from . import tables as T
from .campaigns import Planner, concat, take
from .clock import DEFAULT_START, make_window
from .engagement import (deliver, draw_clicks, draw_conversions, draw_dwells, draw_replies, first_human_click,
                         opt_outs)
from .experiments import DEFINITIONS_FILE, EXPERIMENTS, VARIANT_SUPPRESSED, assignments, definitions_yaml, draw_arms
from .incidents import plan_incidents
from .population import draw_population
from .truth import (campaign_truth, experiment_truth, mess_truth, notes, population_truth, window_truth)
from .writer import EXTENSIONS, file_name, write_frame

__all__ = ["generate", "EVENT_FILES", "FORMATS", "DEFINITIONS_FILE"]

EVENT_FILES = ("users", "assignments", "sends", "deliveries", "clicks", "dwells", "conversions", "replies")
FORMATS = tuple(EXTENSIONS)


def generate(out_dir: Path, users: int, days: int, seed: int, fmt: str = "csv", start: datetime | None = None,
             progress: Callable[[str], None] | None = None) -> dict:
    """Simulate ``users`` over ``days`` from ``start`` with ``seed``; write files and ground truth to ``out_dir``."""
    if fmt not in EXTENSIONS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(EXTENSIONS)}")
    if users < 1 or days < 1:
        raise ValueError("users and days must be at least 1")
    say = progress or (lambda line: None)
    began = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    window = make_window(start or DEFAULT_START, days, C.TIMEZONES)
    incidents = plan_incidents(window)

    pop = draw_population(users, window, rng)
    arms = draw_arms(users, rng)
    planner = Planner(pop, window, arms, rng)
    plan, organic = planner.plan()
    assign = assignments(plan["user"], plan["campaign"], plan["t_sched"], arms, rng)
    assign["t"] = np.maximum(assign["t"], window.start)
    plan = take(plan, ~VARIANT_SUPPRESSED[plan["variant"]])
    say(f"planned {plan['user'].size:,} sends for {users:,} users over {days} days")

    dlv = deliver(plan, pop, incidents, rng)
    replies = draw_replies(plan, dlv, rng)
    stop_time = opt_outs(plan, replies, users)
    keep = ~((plan["channel"] == C.SMS) & (plan["t_send"] > stop_time[plan["user"]]))
    remap = np.cumsum(keep) - 1
    plan, dlv = take(plan, keep), take(dlv, keep)
    replies = take(replies, keep[replies["send"]])
    replies["send"] = remap[replies["send"]]
    clicks = draw_clicks(plan, dlv, pop, window, incidents, rng)
    first = first_human_click(plan["user"].size, clicks)

    emails = planner.cart_followups(plan, first)
    dlv2 = deliver(emails, pop, incidents, rng)
    clicks2 = draw_clicks(emails, dlv2, pop, window, incidents, rng)
    first2 = first_human_click(emails["user"].size, clicks2)
    clicks2["send"] = clicks2["send"] + plan["user"].size
    sends = concat([plan, emails])
    dlv = concat([dlv, dlv2])
    clicks = concat([clicks, clicks2])
    first = np.concatenate([first, first2])

    conv = draw_conversions(sends, first, pop, window, organic, rng)
    converted = np.zeros(sends["user"].size, dtype=bool)
    converted[conv["send"][conv["send"] >= 0]] = True
    dwells = draw_dwells(sends, clicks, converted, rng)
    say(f"simulated in {time.perf_counter() - began:.1f}s")

    message_id, _ = T.message_numbers(seed, sends["t_send"])
    ctx = T.Context(seed, window, pop, rng, sends, message_id, dlv["provider"])
    pmid = T.provider_message_ids(dlv["provider"], rng)
    files: dict[str, str] = {}
    rows: dict[str, int] = {}
    duplicates = {k: 0 for k in (*EVENT_FILES, "experiments")}

    def emit(kind: str, frame: pl.DataFrame) -> None:
        """Write one event file and report it."""
        name = file_name(kind, fmt)
        write_frame(frame, out_dir / name, fmt)
        files[kind] = name
        rows[kind] = frame.height
        say(f"{kind}: {frame.height:,} rows")

    (out_dir / DEFINITIONS_FILE).write_text(definitions_yaml(window.start), encoding="utf-8")
    files["experiments"] = DEFINITIONS_FILE
    rows["experiments"] = len(EXPERIMENTS)
    emit("users", T.users_table(ctx, stop_time))
    emit("assignments", T.assignments_table(ctx, assign))
    emit("sends", T.sends_table(ctx, pmid))
    frame, duplicates["deliveries"] = T.deliveries_table(ctx, dlv, pmid)
    emit("deliveries", frame)
    del frame
    clicks_frame = T.clicks_table(ctx, clicks)
    emit("clicks", clicks_frame)
    emit("dwells", T.dwells_table(ctx, dwells))
    emit("conversions", T.conversions_table(ctx, conv))
    emit("replies", T.replies_table(ctx, replies))

    visible_clicks = clicks["t"] < window.end
    visible_conv = conv["t"] < window.end
    visible_replies = replies["t"] < window.end
    truth = {
        "generator": "ingest.generator",
        "seed": seed,
        "users": users,
        "days": days,
        **window_truth(window),
        "format": fmt,
        "files": files,
        "columns": {kind: list(T.COLUMNS[kind]) for kind in EVENT_FILES},
        "event_id_format": "<prefix>-<seed>-<n>, prefixes " + ", ".join(f"{k}={v}" for k, v in T.PREFIX.items())
        + "; message_id is msg-<seed>-<n> numbered in send order",
        "timestamp_format": "ISO-8601 with seconds and a zone: YYYY-MM-DDTHH:MM:SSZ, or ...+HH:MM / -HH:MM",
        "rows_written": rows,
        "total_rows": sum(rows.values()),
        "duplicates": duplicates,
        "bot_clicks": int((clicks["bot"] & visible_clicks).sum()),
        "human_clicks": int((~clicks["bot"] & visible_clicks).sum()),
        "bot_user_agents": list(C.BOT_USER_AGENTS),
        "bot_user_agent_tokens": list(C.BOT_TOKENS),
        "human_user_agents": list(C.HUMAN_USER_AGENTS),
        "experiments": experiment_truth(sends, dlv, first, conv, assign, window),
        "incidents": incidents.truth(),
        **mess_truth(int((dlv["late"] & (dlv["t_final"] < window.end)).sum()), ctx.local_rows),
        "unattributed_conversions": int(((conv["send"] < 0) & visible_conv).sum()),
        "message_conversions": int(((conv["send"] >= 0) & visible_conv).sum()),
        "opt_outs": {
            "stop_replies": int(((replies["kind"] == C.STOP) & visible_replies).sum()),
            "users_opted_out": int((stop_time < window.end).sum()),
            "profile_updates": int((stop_time < window.end - 2).sum()),
        },
        "sends_by_campaign": {c.id: int((sends["campaign"] == i).sum()) for i, c in enumerate(C.CAMPAIGNS)},
        "sends_by_channel": {ch: int((sends["channel"] == i).sum()) for i, ch in enumerate(C.CHANNELS)},
        "campaigns": campaign_truth(),
        "population": population_truth(pop),
        "link_domain": C.LINK_DOMAIN,
        "notes": notes(),
        "seconds": round(time.perf_counter() - began, 2),
    }
    # "seconds" varies run to run; keep it out of the file so the output stays byte-identical.
    on_disk = {k: v for k, v in truth.items() if k != "seconds"}
    (out_dir / "ground_truth.json").write_text(json.dumps(on_disk, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    say(f"ground truth written; {truth['total_rows']:,} rows in {truth['seconds']:.1f}s")
    return truth
