"""Campaign → audience → policies → timing → assignment → rendered messages: the plan that
``dispatch send`` shows (``--dry-run``) or queues.

``plan_campaign`` reads and decides, writing nothing: the audience from the published snapshot,
contacts and history from ops.sqlite, then the policies in ``dispatch.policies.ORDER`` (each
exclusion counted with its reason), the send time of each message, the experiment arm of each
user (the holdout is assigned and not sent), and every message rendered, encoded and priced.
``queue_plan`` writes the plan in one transaction (messages with their idempotency keys, links,
journey steps, assignments, the experiment's definition) and then hands definitions and
assignments to the spool. Planning a later journey step for users whose step is due uses the
same path (``plan_step``), so every message meets the same rules.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import polars as pl

from dispatch import contacts as contact_store
from dispatch import history
from dispatch.allocation import Allocation, thompson
from dispatch.assignment import assign
from dispatch.audience import AudienceResult, select_audience
from dispatch.campaign import HOLDOUT, MAIN_STEP, Campaign, Step
from dispatch.cost import estimate
from dispatch.ops import iso, transaction
from dispatch.policies import consent, dedupe, frequency_caps, priority
from dispatch.policies.quiet_hours import recipient_zones
from dispatch.templates import replies
from dispatch.templates.encoding import encode
from dispatch.templates.links import code_for, deep_link, short_url
from dispatch.templates.render import CompiledTemplate, RenderError
from dispatch.templates.rich_card import card
from dispatch.timing import defer_quiet, first_due

MAX_SMS_SEGMENTS = 10
MAX_RENDER_ERRORS = 1000
CONFLICT_ROUNDS = 3
PROFILE_VARIABLES = ("segment", "region", "country", "carrier", "timezone", "best_send_hour", "human_clicks")
MESSAGE_COLUMNS = ("message_id", "idempotency_key", "run_id", "campaign_id", "step", "user_id", "channel", "provider",
                   "category", "priority", "template_id", "variant", "experiment_id", "dedupe_value", "address",
                   "subject", "body", "encoding", "segments", "extra", "zones", "quiet_start", "quiet_end",
                   "conflict_action", "conflict_window_s", "scheduled_for", "due_at", "state", "updated_at")


class PlanError(ValueError):
    """A campaign that cannot be planned as it stands (one line; ``details`` may say more)."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


@dataclass
class Preview:
    variant: str
    channel: str
    user_id: str
    subject: str | None
    body: str
    encoding: str | None
    segments: int | None
    characters: int
    card: dict | None = None


@dataclass
class Plan:
    campaign: Campaign
    run_id: str
    created_at: datetime
    step: str
    matched: int
    excluded: Counter = field(default_factory=Counter)
    deferred: Counter = field(default_factory=Counter)
    per_channel: Counter = field(default_factory=Counter)
    per_variant: Counter = field(default_factory=Counter)
    fallbacks: int = 0
    held_out: int = 0
    units: Counter = field(default_factory=Counter)          # SMS segments, other channels messages
    encodings: Counter = field(default_factory=Counter)
    cost: dict[str, float] = field(default_factory=dict)
    currency: str = "USD"
    previews: list[Preview] = field(default_factory=list)
    allocation: Allocation | None = None
    first_due: datetime | None = None
    last_due: datetime | None = None
    messages: list[tuple] = field(default_factory=list)
    links: list[tuple] = field(default_factory=list)
    journeys: list[tuple] = field(default_factory=list)
    assignments: list[tuple] = field(default_factory=list)
    defer_existing: dict[str, datetime] = field(default_factory=dict)
    cancel_existing: list[str] = field(default_factory=list)
    definition: dict | None = None

    @property
    def queued(self) -> int:
        return len(self.messages)

    def as_dict(self) -> dict:
        return {
            "campaign_id": self.campaign.campaign_id, "run_id": self.run_id, "step": self.step,
            "audience": self.matched, "queued": self.queued, "held_out": self.held_out,
            "excluded": dict(self.excluded), "deferred": dict(self.deferred), "channels": dict(self.per_channel),
            "fallback_channel": self.fallbacks, "variants": dict(self.per_variant), "units": dict(self.units),
            "encodings": dict(self.encodings), "cost": self.cost, "currency": self.currency,
            "cost_total": round(sum(self.cost.values()), 4),
            "first_due": self.first_due.isoformat() if self.first_due else None,
            "last_due": self.last_due.isoformat() if self.last_due else None,
            "allocation": None if self.allocation is None else {
                "method": self.allocation.method, "weights": self.allocation.weights, "note": self.allocation.note},
            "yielding_queued_messages": {"deferred": len(self.defer_existing), "cancelled": len(self.cancel_existing)},
            "previews": [p.__dict__ for p in self.previews],
        }


@dataclass(frozen=True)
class Context:
    """What planning needs besides the campaign."""

    ops: sqlite3.Connection
    snapshot: duckdb.DuckDBPyConnection | None
    key: bytes                      # the installation's hash key (link codes)
    link_base: str                  # the receiver's public base URL
    providers: dict[str, str]       # channel -> provider name
    now: datetime


def message_id_for(idempotency_key: str) -> str:
    return "m-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def new_run_id(campaign_id: str, now: datetime) -> str:
    return f"{campaign_id}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


# -- the steps of planning -----------------------------------------------------------------------


def _with_contacts(ops: sqlite3.Connection, users: pl.DataFrame) -> pl.DataFrame:
    found = contact_store.frame(ops, users["user_id"])
    out = users.join(found, on="user_id", how="left")
    tz = pl.coalesce(pl.col("timezone"), pl.col("contact_timezone")) if "timezone" in out.columns else pl.col("contact_timezone")
    out = out.with_columns(tz.alias("_tz"), pl.coalesce(pl.col("country"), pl.col("contact_country")).alias("_country"))
    keys = out.select("_tz", "phone", "_country").unique()
    zone_keys = ["|".join(recipient_zones(tz, phone, country)) or None for tz, phone, country in keys.iter_rows()]
    table = keys.with_columns(pl.Series("zone_key", zone_keys, pl.String))
    return out.join(table, on=["_tz", "phone", "_country"], how="left", nulls_equal=True).drop("_tz", "_country")


def _suppressions(ops: sqlite3.Connection) -> pl.DataFrame:
    data = ops.execute("SELECT user_id, channel FROM suppressions").fetchall()
    return pl.DataFrame([tuple(r) for r in data], schema=[("user_id", pl.String), ("channel", pl.String)], orient="row")


def _policies(campaign: Campaign, step: Step, users: pl.DataFrame, ctx: Context, plan: Plan,
              dedupe_with_warehouse: bool) -> pl.DataFrame:
    """Consent → dedupe → frequency caps → timing and quiet hours → priority, counting exclusions."""
    frame, reasons, per_channel = consent.choose_channel(users, step.channels, _suppressions(ctx.ops))
    plan.excluded.update(reasons)
    plan.fallbacks = sum(n for ch, n in per_channel.items() if ch != step.channels[0])
    if campaign.audience.not_contacted_within_hours and step.name == MAIN_STEP:
        recent = history.last_contact(ctx.ops, frame["user_id"]).filter(
            pl.col("last_sent_at") >= ctx.now - timedelta(hours=campaign.audience.not_contacted_within_hours))
        kept = frame.join(recent, on="user_id", how="anti")
        plan.excluded["contacted_recently"] += frame.height - kept.height
        frame = kept
    reached = history.reached(ctx.ops, ctx.snapshot, campaign.campaign_id, dedupe_with_warehouse)
    reached = reached.filter(pl.col("step") == step.name)
    keys = ["user_id", "channel"]
    if campaign.dedupe_key:
        keys.append("dedupe_value")
    frame, dropped = dedupe.drop_reached(frame, reached, keys)
    plan.excluded["already_sent"] += dropped
    window = timedelta(hours=campaign.conflict.window_hours)
    cap_days = campaign.frequency_cap.days if campaign.frequency_cap else 0
    since = ctx.now - max(timedelta(days=cap_days), window, timedelta(hours=1))
    timeline = history.timeline(ctx.ops, ctx.snapshot, frame["user_id"], since)
    frame, capped = frequency_caps.over_cap(frame, timeline, campaign.frequency_cap, campaign.category, ctx.now)
    plan.excluded["frequency_cap"] += capped
    if "due_at" not in frame.columns:
        frame = first_due(frame, campaign.schedule, ctx.now)
    may_pass = campaign.quiet_hours.transactional_may_pass and campaign.category == "transactional"
    for round_ in range(CONFLICT_ROUNDS + 1):
        before = frame.select("user_id", "due_at")
        frame, moved, impossible = defer_quiet(frame, campaign.quiet_hours, may_pass)
        if round_ == 0:
            plan.deferred["quiet_hours"] += moved
        if impossible:
            nowhere = frame.filter(pl.col("due_at").is_null())
            plan.excluded["no_time_zone"] += nowhere.filter(pl.col("zone_key").is_null()).height
            plan.excluded["no_allowed_hour"] += nowhere.filter(pl.col("zone_key").is_not_null()).height
            frame = frame.filter(pl.col("due_at").is_not_null())
        if round_ == CONFLICT_ROUNDS:
            break
        outcome = priority.resolve(frame, campaign.priority, window, campaign.conflict.action, timeline)
        frame = outcome.frame
        plan.excluded["conflict"] += outcome.dropped
        if round_ == 0:
            plan.deferred["conflict"] += outcome.deferred
            plan.defer_existing.update(outcome.defer_existing)
            plan.cancel_existing = sorted(set(plan.cancel_existing) | set(outcome.cancel_existing))
        changed = frame.select("user_id", "due_at").join(before, on="user_id", how="left", suffix="_before").filter(
            pl.col("due_at") != pl.col("due_at_before"))
        if changed.is_empty():
            break
    return frame


def _allocate(campaign: Campaign, ctx: Context, plan: Plan) -> dict[str, float] | None:
    experiment = campaign.experiment
    if experiment is None:
        return None
    weights = experiment.weights
    if experiment.allocation == "thompson":
        if ctx.snapshot is None:
            plan.allocation = Allocation(dict(weights), "fixed", "no published snapshot: the planned weights are used")
        else:
            plan.allocation = thompson(ctx.snapshot, experiment.experiment_id, experiment.goal_metrics[0],
                                       dict(weights), experiment.floor)
            weights = plan.allocation.weights
    else:
        plan.allocation = Allocation(dict(weights), "fixed")
    return experiment.arm_weights(weights)


def _previous_arms(ops: sqlite3.Connection, experiment_id: str) -> dict[str, str]:
    return dict(ops.execute("SELECT unit_id, variant FROM assignments WHERE experiment_id = ?", [experiment_id]).fetchall())


def _variables(campaign: Campaign, row: dict, file_columns: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = dict(campaign.variables)
    for name in PROFILE_VARIABLES:
        if row.get(name) is not None:
            out[name] = row[name]
    if row.get("attributes"):
        out.update(json.loads(row["attributes"]))
    for name in file_columns:
        if row.get(name) not in (None, ""):
            out[name] = row[name]
    return out


def _render_all(campaign: Campaign, step: Step, frame: pl.DataFrame, ctx: Context, plan: Plan,
                file_columns: tuple[str, ...]) -> None:
    compiled = {(v, ch): CompiledTemplate(t) for v, per in step.templates.items() for ch, t in per.items()}
    errors: list[str] = []
    error_count = 0
    experiment_id = campaign.experiment.experiment_id if campaign.experiment else None
    stamp = iso(ctx.now)
    quiet = campaign.quiet_hours
    may_pass = quiet.transactional_may_pass and campaign.category == "transactional"
    window_s = campaign.conflict.window_hours * 3600
    later = _next_step(campaign, step)
    seen_preview: set[tuple[str, str]] = set()
    for row in frame.iter_rows(named=True):
        user, channel, variant = row["user_id"], row["channel"], row["variant"]
        dedupe_value = str(row[campaign.dedupe_key]) if campaign.dedupe_key and row.get(campaign.dedupe_key) is not None else None
        key = f"{plan.run_id}|{user}|{channel}|{step.name}|{dedupe_value or ''}"
        message_id = message_id_for(key)
        used: dict[str, str] = {}

        def link(name: str, _mid: str = message_id, _channel: str = channel, _variant: str = variant,
                 _used: dict = used) -> str:
            if name not in campaign.links:
                raise ValueError(f"link({name!r}) is not declared under links")
            code = code_for(ctx.key, _mid, name)
            _used[name] = code
            return short_url(ctx.link_base, code)

        variables = _variables(campaign, row, file_columns)
        variables.update({"campaign": {"id": campaign.campaign_id, "name": campaign.name}, "user_id": user,
                          "message_id": message_id, "variant": variant, "channel": channel,
                          "quick_replies_text": replies.text(step.quick_replies)})
        template = step.templates[variant][channel]
        try:
            rendered = compiled[(variant, channel)].render(variables, user, link)
        except RenderError as exc:
            error_count += 1
            if len(errors) < 5:
                errors.append(str(exc))
            if error_count >= MAX_RENDER_ERRORS:
                break
            continue
        extra: dict[str, Any] = {}
        encoding = segments = None
        sms_text = rendered.body if channel == "sms" else rendered.fallback if channel == "rcs" else None
        if sms_text is not None:
            encoded = encode(sms_text)
            encoding, segments = encoded.encoding, encoded.segments
            if segments > MAX_SMS_SEGMENTS:
                error_count += 1
                if len(errors) < 5:
                    errors.append(f"template {template.template_id}: renders to {segments} SMS segments for user {user} "
                                  f"(limit {MAX_SMS_SEGMENTS}); shorten it")
                continue
        if rendered.html:
            extra["html"] = rendered.html
        if rendered.title:
            extra["title"] = rendered.title
        if step.quick_replies:
            extra["quick_replies"] = replies.as_json(step.quick_replies)
        if channel == "rcs":
            extra["card"] = card(rendered.title, rendered.body, template.image_url, template.suggestions,
                                 step.quick_replies, rendered.fallback or "")
        if used:
            extra["links"] = used
            for name, code in used.items():
                url = deep_link(campaign.links[name], campaign_id=campaign.campaign_id, channel=channel,
                                variant=variant, message_id=message_id)
                plan.links.append((code, message_id, name, url, stamp))
        due = iso(row["due_at"])
        zones = row["zone_key"].split("|") if row.get("zone_key") else []
        plan.messages.append((
            message_id, key, plan.run_id, campaign.campaign_id, step.name, user, channel, ctx.providers[channel],
            campaign.category, campaign.priority, template.template_id, variant if campaign.experiment else None,
            experiment_id, dedupe_value, None, rendered.subject, rendered.body, encoding, segments,
            json.dumps(extra, ensure_ascii=False) if extra else None, json.dumps(zones),
            None if may_pass else quiet.start.strftime("%H:%M"), None if may_pass else quiet.end.strftime("%H:%M"),
            campaign.conflict.action, window_s, due, due, "queued", stamp))
        if later is not None:
            file_vars = {c: row.get(c) for c in file_columns if row.get(c) is not None}
            plan.journeys.append((plan.run_id, user, later.name, campaign.campaign_id, message_id, variant,
                                  dedupe_value, json.dumps(file_vars, ensure_ascii=False, default=str) if file_vars else None,
                                  None, "waiting", None))
        plan.per_channel[channel] += 1
        plan.per_variant[variant] += 1
        plan.units[channel] += segments if channel == "sms" and segments else 1
        if encoding:
            plan.encodings[encoding] += 1
        if (variant, channel) not in seen_preview:
            seen_preview.add((variant, channel))
            plan.previews.append(Preview(variant, channel, user, rendered.subject,
                                         rendered.body if channel != "rcs" else f"[card] {rendered.title or ''}: {rendered.body}",
                                         encoding, segments, len(sms_text if sms_text is not None else rendered.body),
                                         extra.get("card")))
    if error_count:
        more = f" ({error_count} messages in all)" if error_count > 1 else ""
        raise PlanError(f"{errors[0]}{more}; nothing was queued", errors)


def _next_step(campaign: Campaign, step: Step) -> Step | None:
    names = [s.name for s in campaign.steps]
    index = names.index(step.name)
    return campaign.steps[index + 1] if index + 1 < len(campaign.steps) else None


def _finish(plan: Plan) -> Plan:
    plan.cost, plan.currency = estimate(plan.units)
    if plan.messages:
        dues = sorted(m[MESSAGE_COLUMNS.index("due_at")] for m in plan.messages)
        plan.first_due = datetime.strptime(dues[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        plan.last_due = datetime.strptime(dues[-1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    plan.excluded = Counter({k: v for k, v in plan.excluded.items() if v})
    plan.deferred = Counter({k: v for k, v in plan.deferred.items() if v})
    return plan


def plan_campaign(campaign: Campaign, ctx: Context) -> Plan:
    """The first step of ``campaign`` for its whole audience (nothing is written)."""
    if ctx.snapshot is None:
        raise PlanError("no published snapshot to choose an audience from: run `nudgelab build` first")
    missing = [ch for ch in campaign.channels if ch not in ctx.providers]
    if missing:
        raise PlanError(f"no provider for {', '.join(missing)}")
    audience: AudienceResult = select_audience(ctx.snapshot, campaign.campaign_id, campaign.audience, ctx.now,
                                               campaign.dedupe_key)
    plan = Plan(campaign, new_run_id(campaign.campaign_id, ctx.now), ctx.now, MAIN_STEP, audience.matched,
                excluded=Counter(audience.excluded))
    users = _with_contacts(ctx.ops, audience.frame)
    if campaign.dedupe_key:
        users = users.with_columns(pl.col(campaign.dedupe_key).cast(pl.String).alias("dedupe_value"))
    else:
        users = users.with_columns(pl.lit(None, pl.String).alias("dedupe_value"))
    step = campaign.steps[0]
    frame = _policies(campaign, step, users, ctx, plan, dedupe_with_warehouse=campaign.dedupe_key is None)
    weights = _allocate(campaign, ctx, plan)
    if weights is not None:
        experiment = campaign.experiment
        arms = assign(experiment.experiment_id, frame["user_id"].to_list(), weights,
                      _previous_arms(ctx.ops, experiment.experiment_id))
        frame = frame.with_columns(pl.Series("variant", arms, pl.String))
        stamp = iso(ctx.now)
        seen: set[str] = set()
        for user, arm in zip(frame["user_id"].to_list(), arms):
            if user not in seen:
                seen.add(user)
                plan.assignments.append((experiment.experiment_id, user, arm, plan.run_id, stamp))
        plan.held_out = frame.filter(pl.col("variant") == HOLDOUT).select(pl.col("user_id").n_unique()).item()
        plan.per_variant[HOLDOUT] = plan.held_out
        frame = frame.filter(pl.col("variant") != HOLDOUT)
        plan.definition = dict(experiment.definition)
    else:
        frame = frame.with_columns(pl.lit(campaign.variants[0]).alias("variant"))
    _render_all(campaign, step, frame, ctx, plan, audience.variables)
    return _finish(plan)


def plan_step(campaign: Campaign, step: Step, due: pl.DataFrame, ctx: Context, run_id: str) -> Plan:
    """A later journey step for the users in ``due`` (user_id, variant, dedupe_value, variables
    JSON, due_at), through the same policies and rendering as the first step."""
    plan = Plan(campaign, run_id, ctx.now, step.name, due.height)
    profile = pl.DataFrame({"user_id": due["user_id"].unique()})
    if ctx.snapshot is not None:
        from dispatch.audience import USER_COLUMNS
        from warehouse.sql import frame as query_frame

        known = query_frame(ctx.snapshot, f"SELECT {', '.join(USER_COLUMNS)} FROM marts.dim_users "
                                          "WHERE user_id IN (SELECT unnest(?))", [profile["user_id"].to_list()])
        profile = known
    missing = due.join(profile, on="user_id", how="anti").height
    plan.excluded["unknown_user"] += missing
    variables = [json.loads(v) if v else {} for v in due["variables"].to_list()]
    names = sorted({k for v in variables for k in v})
    file_frame = pl.DataFrame({n: [str(v.get(n)) if v.get(n) is not None else None for v in variables] for n in names},
                              schema={n: pl.String for n in names}) if names else None
    base = due.select("user_id", "variant", "dedupe_value", "due_at")
    if file_frame is not None:
        base = pl.concat([base, file_frame], how="horizontal")
    overlap = [c for c in names if c in profile.columns]
    users = _with_contacts(ctx.ops, profile.join(base.drop(overlap), on="user_id", how="inner"))
    frame = _policies(campaign, step, users, ctx, plan, dedupe_with_warehouse=False)
    if campaign.experiment is None:
        frame = frame.with_columns(pl.col("variant").fill_null(campaign.variants[0]))
    _render_all(campaign, step, frame, ctx, plan, tuple(c for c in names if c not in overlap))
    return _finish(plan)


# -- queuing ------------------------------------------------------------------------------------


class StalePlan(RuntimeError):
    """Another send of the same campaign was queued while this one was planned: plan again."""


def queue_plan(plan: Plan, ops: sqlite3.Connection, first_run: bool = True) -> None:
    """Write the plan in one transaction (see the module docstring); safe to call once per plan."""
    campaign = plan.campaign
    stamp = iso(datetime.now(timezone.utc))
    with transaction(ops):
        if first_run:
            newer = ops.execute("SELECT run_id FROM runs WHERE campaign_id = ? AND created_at >= ?",
                                [campaign.campaign_id, iso(plan.created_at)]).fetchone()
            if newer:
                raise StalePlan(f"campaign {campaign.campaign_id} was queued by run {newer[0]} while this run was "
                                "planned: plan again (dedupe needs to see it)")
            ops.execute("INSERT INTO campaigns VALUES (?, ?, ?, ?) ON CONFLICT (campaign_id) DO UPDATE SET "
                        "definition = excluded.definition, source = excluded.source, updated_at = excluded.updated_at",
                        [campaign.campaign_id, json.dumps(campaign.document), campaign.source, stamp])
            ops.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [plan.run_id, campaign.campaign_id, iso(plan.created_at), plan.matched, plan.queued,
                         plan.held_out, json.dumps(dict(plan.excluded)), json.dumps(plan.as_dict(), default=str)])
        placeholders = ", ".join("?" for _ in MESSAGE_COLUMNS)
        ops.executemany(f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES ({placeholders})", plan.messages)
        ops.executemany("INSERT INTO links VALUES (?, ?, ?, ?, ?)", plan.links)
        ops.executemany("INSERT OR IGNORE INTO journey_steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", plan.journeys)
        ops.executemany("INSERT OR IGNORE INTO assignments (experiment_id, unit_id, variant, run_id, assigned_at) "
                        "VALUES (?, ?, ?, ?, ?)", plan.assignments)
        if plan.definition is not None:
            defined_at = iso(plan.created_at)
            record = {**plan.definition, "occurred_at": plan.created_at.isoformat(),
                      "event_id": f"def-{plan.definition['experiment_id']}-{defined_at}"}
            ops.execute("INSERT OR IGNORE INTO definitions (experiment_id, defined_at, record) VALUES (?, ?, ?)",
                        [plan.definition["experiment_id"], defined_at, json.dumps(record)])
        for message_id, due in plan.defer_existing.items():
            ops.execute("UPDATE messages SET due_at = max(due_at, ?), updated_at = ? "
                        "WHERE message_id = ? AND state IN ('queued', 'retry')", [iso(due), stamp, message_id])
        for message_id in plan.cancel_existing:
            ops.execute("UPDATE messages SET state = 'cancelled', last_error = ?, updated_at = ? "
                        "WHERE message_id = ? AND state IN ('queued', 'retry')",
                        [f"conflict: run {plan.run_id} of {campaign.campaign_id} (priority {campaign.priority}) "
                         "is due close to it", stamp, message_id])
