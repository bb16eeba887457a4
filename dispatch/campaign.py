"""A campaign as data: what is sent, to whom, when, on which channel, under which experiment.

One object, two ways in: a YAML (or JSON) file (``load_campaign``) and the app's form (a plain
dict given to ``campaign_from_dict``). Both go through the same validation, which collects every
problem before refusing, each as ``file:line: field: what is wrong`` (no line from a form)::

    campaign:
      id: bill_due_december            # letters, digits, _ - . (at most 64)
      name: December bill reminder
      category: transactional          # transactional or promotional
      priority: 7                      # 0-9: a higher priority wins a conflict (default 7 / 2)
      channels: [sms, email]           # preference order: each user gets the first one they can receive
      audience:                        # filters on dim_users in the published snapshot (all optional)
        segments: [regular, loyal]
        regions: [US-NY, DE-BY]
        countries: [US, DE]
        active_within_days: 30         # clicked or was sent something in the last N days
        min_human_clicks: 1
        not_contacted_within_hours: 24 # last contact (any channel) at least this long ago
        users_file: bills.csv          # user_id + per-user variables (order_number, amount_due, ...)
        limit: 5000
      schedule: now                    # now | best_hour | an ISO time with its zone
                                       # | {after: abandoned_at, delay: 30m} (a users file's column)
      fallback_hour: 10                # best_hour for users without one (local time)
      quiet_hours: {start: "21:00", end: "08:00", transactional_may_pass: false}
      frequency_cap: {max: 3, days: 7} # promotional messages per user across channels and campaigns
      conflict: {window_hours: 12, action: defer}   # defer or drop, when a higher priority is near
      dedupe_key: order_number         # optional: one message per user x channel x step x this variable
      variables: {brand: Acme}         # campaign-level template variables
      links: {pay: "https://pay.example.com/bill"}  # {{ link('pay') }} in a template: a tracked short link
      quick_replies: [{reply: "1", meaning: confirm}, {reply: "2", meaning: reschedule}]
      templates:                       # per variant (``default`` without an experiment), per channel
        default:
          sms: "Hi {{ first_name }}, {{ amount_due }} is due {{ due_date }}: {{ link('pay') }}"
          email: {subject: "Your bill", body: "..."}
          rcs: {title: "...", body: "...", image_url: "https://...", suggestions: [Pay now], fallback: "..."}
          push: {title: "...", body: "..."}
      experiment:                      # optional; written as an experiment definition
        id: exp_bill_wording
        variants: [{name: plain, weight: 0.5, control: true}, {name: friendly, weight: 0.5}]
        holdout: 0.1                   # assigned (an ``holdout`` arm), never sent
        goal_metrics: [conversion_per_delivered]
        guardrails: [{metric: conversions, margin: 0.02}]
        allocation: fixed              # fixed, or thompson (weights from the results, with a floor)
        floor: 0.1
      steps:                           # later steps of a journey, each after the previous one
        - name: email_follow_up
          after: 24h                   # 30m, 24h, 2d
          if: no_click                 # no_click, no_conversion, not_delivered, always
          channels: [email]
          templates: {default: {email: {subject: "...", body: "..."}}}

The first message is step ``main``. ``CampaignError.problems`` holds every problem found.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import jinja2

from dispatch.campaign_file import CampaignFileError, Lines, load, parse
from ingest.contract import CHANNELS, MESSAGE_CATEGORIES
from ingest.readers.definitions import definition_record

CATEGORIES = MESSAGE_CATEGORIES
DEFAULT_PRIORITY = {"transactional": 7, "promotional": 2}
CONDITIONS = ("no_click", "no_conversion", "not_delivered", "always")
CONFLICT_ACTIONS = ("defer", "drop")
ALLOCATIONS = ("fixed", "thompson")
DEFAULT_VARIANT = "default"
HOLDOUT = "holdout"
MAIN_STEP = "main"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_CLOCK = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")

TOP_KEYS = {"id", "name", "description", "category", "priority", "channels", "channel", "audience", "schedule",
            "fallback_hour", "quiet_hours", "frequency_cap", "conflict", "dedupe_key", "variables", "links",
            "quick_replies", "templates", "experiment", "steps", "providers", "sender"}
AUDIENCE_KEYS = {"segments", "regions", "countries", "carriers", "active_within_days", "min_human_clicks",
                 "not_contacted_within_hours", "users_file", "user_ids", "limit"}
TEMPLATE_KEYS = {"id", "body", "text", "subject", "html", "title", "image_url", "suggestions", "fallback", "data"}
EXPERIMENT_KEYS = {"id", "experiment_id", "name", "hypothesis", "owner", "unit", "variants", "control",
                   "goal_metrics", "secondary_metrics", "guardrails", "alpha", "start", "end", "status",
                   "holdout", "allocation", "floor", "tests", "prior"}
STEP_KEYS = {"name", "after", "if", "channels", "channel", "templates", "quick_replies"}


class CampaignError(ValueError):
    """A campaign that cannot be used; ``problems`` lists every problem, ``str()`` the first and
    how many more."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


@dataclass(frozen=True)
class Template:
    """What one variant sends on one channel. ``body`` is the text (SMS, push, e-mail text part,
    RCS card description); ``fallback`` the SMS text an RCS message falls back to."""

    template_id: str
    channel: str
    body: str
    subject: str | None = None
    html: str | None = None
    title: str | None = None
    image_url: str | None = None
    suggestions: tuple[str, ...] = ()
    fallback: str | None = None


@dataclass(frozen=True)
class QuickReply:
    reply: str        # what the recipient types ("1", "YES")
    meaning: str      # what it means to us ("confirm")


@dataclass(frozen=True)
class Step:
    """One message of a journey. ``after``: delay after the previous step's send; ``condition``:
    when the step is sent at all (decided from the warehouse at its due time)."""

    name: str
    channels: tuple[str, ...]
    templates: dict[str, dict[str, Template]]  # variant -> channel -> template
    after: timedelta = timedelta(0)
    condition: str = "always"
    quick_replies: tuple[QuickReply, ...] = ()


@dataclass(frozen=True)
class Audience:
    segments: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    carriers: tuple[str, ...] = ()
    active_within_days: int | None = None
    min_human_clicks: int | None = None
    not_contacted_within_hours: float | None = None
    users_file: str | None = None
    user_ids: tuple[str, ...] = ()
    limit: int | None = None


@dataclass(frozen=True)
class Schedule:
    mode: str = "now"            # now, at, best_hour, after
    at: datetime | None = None   # mode at: the instant (UTC)
    fallback_hour: int = 10      # best_hour for users without a learned one
    column: str | None = None    # mode after: the users file's column with each user's event time
    delay: timedelta = timedelta(0)   # mode after: how long after that time


@dataclass(frozen=True)
class QuietHours:
    start: time = time(21, 0)
    end: time = time(8, 0)
    transactional_may_pass: bool = False


@dataclass(frozen=True)
class FrequencyCap:
    max_messages: int = 3
    days: int = 7


@dataclass(frozen=True)
class Conflict:
    window_hours: float = 12.0
    action: str = "defer"


@dataclass(frozen=True)
class Experiment:
    """The campaign's experiment: the definition record (the contract's ``experiments`` shape, so
    reports read it like any other), and how dispatch allocates."""

    experiment_id: str
    variants: tuple[str, ...]
    weights: dict[str, float]
    control: str
    holdout: float = 0.0
    allocation: str = "fixed"
    floor: float = 0.05
    goal_metrics: tuple[str, ...] = ()
    definition: dict = field(default_factory=dict)

    @property
    def arms(self) -> tuple[str, ...]:
        """Every arm a unit can be assigned to, the holdout last."""
        return self.variants + ((HOLDOUT,) if self.holdout > 0 else ())

    def arm_weights(self, weights: dict[str, float] | None = None) -> dict[str, float]:
        """The split over arms: the variants' weights scaled to 1 - holdout, then the holdout."""
        base = weights or self.weights
        scale = 1.0 - self.holdout
        out = {v: base[v] * scale for v in self.variants}
        if self.holdout > 0:
            out[HOLDOUT] = self.holdout
        return out


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    category: str
    priority: int
    steps: tuple[Step, ...]
    audience: Audience = Audience()
    schedule: Schedule = Schedule()
    quiet_hours: QuietHours = QuietHours()
    frequency_cap: FrequencyCap | None = None
    conflict: Conflict = Conflict()
    dedupe_key: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    experiment: Experiment | None = None
    providers: dict[str, str] = field(default_factory=dict)   # channel -> provider name
    sender: str | None = None
    source: str | None = None
    document: dict = field(default_factory=dict, compare=False, repr=False)  # the validated input, as data

    @property
    def channels(self) -> tuple[str, ...]:
        return self.steps[0].channels

    @property
    def variants(self) -> tuple[str, ...]:
        return self.experiment.variants if self.experiment else (DEFAULT_VARIANT,)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def as_json(self) -> dict:
        """A JSON-able form (what ops.sqlite keeps of the campaign as queued)."""
        def convert(value: Any) -> Any:
            if isinstance(value, (datetime, time)):
                return value.isoformat()
            if isinstance(value, timedelta):
                return value.total_seconds()
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [convert(v) for v in value]
            return value
        return convert({k: v for k, v in asdict(self).items() if k != "document"})


# -- validation ----------------------------------------------------------------------------------


class _Check:
    """Collects problems with their place: ``source:line: field: message``."""

    def __init__(self, lines: Lines | None, source: str | None) -> None:
        self.lines, self.source, self.problems = lines, source, []

    def fail(self, path: tuple, message: str) -> None:
        name = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
        where = ""
        if self.source:
            line = self.lines.of(path) if self.lines else 0
            where = f"{self.source}:{line}: " if line else f"{self.source}: "
        self.problems.append(f"{where}{name or 'campaign'}: {message}")

    def unknown(self, mapping: dict, allowed: set[str], path: tuple) -> None:
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(allowed))})"
                self.fail(path + (key,), f"unknown field{hint}")

    def mapping(self, value: Any, path: tuple) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_kind(value)}")
            return {}
        return value

    def names(self, value: Any, path: tuple) -> tuple[str, ...]:
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
            return tuple(str(v).strip() for v in value)
        self.fail(path, "expected a list of names")
        return ()

    def number(self, value: Any, path: tuple, lo: float, hi: float, integer: bool = False) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
            self.fail(path, f"expected {'a whole number' if integer else 'a number'} from {lo:g} to {hi:g}, got {value!r}")
            return None
        if not lo <= value <= hi:
            self.fail(path, f"{value!r} is outside {lo:g} .. {hi:g}")
            return None
        return int(value) if integer else float(value)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", type(None): "nothing"}.get(type(value), type(value).__name__)


def parse_duration(text: Any) -> timedelta | None:
    """``30m``, ``24h``, ``2d``, ``1w``, ``90s`` (or a number of seconds) as a timedelta."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return timedelta(seconds=float(text))
    match = _DURATION.match(str(text))
    if not match:
        return None
    amount, unit = float(match.group(1)), match.group(2)
    seconds = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[unit]
    return timedelta(seconds=amount * seconds)


def _clock(check: _Check, value: Any, path: tuple, default: time) -> time:
    if value is None:
        return default
    if isinstance(value, int) and 0 <= value < 24 * 60 and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 21:00 as the sexagesimal number 1260
        return time(value // 60, value % 60)
    match = _CLOCK.match(str(value))
    if not match:
        check.fail(path, f"{value!r} is not a time of day HH:MM")
        return default
    return time(int(match.group(1)), int(match.group(2)))


def _template_syntax(check: _Check, text: str, path: tuple) -> None:
    """Compile in the same sandbox that renders, so a syntax error stops the campaign at load."""
    from dispatch.templates.render import environment

    try:
        environment(html=False).parse(text)
    except jinja2.TemplateSyntaxError as exc:
        check.fail(path, f"template syntax error on its line {exc.lineno}: {exc.message}")


def _template(check: _Check, raw: Any, path: tuple, channel: str, template_id: str) -> Template | None:
    plain = isinstance(raw, str)  # the text alone: problems point at the field itself
    if plain:
        raw = {"body": raw}
    if not isinstance(raw, dict):
        check.fail(path, f"expected the message text or a mapping ({', '.join(sorted(TEMPLATE_KEYS))}), got {_kind(raw)}")
        return None
    check.unknown(raw, TEMPLATE_KEYS, path)
    body = raw.get("body", raw.get("text"))
    if not isinstance(body, str) or not body.strip():
        check.fail(path if plain else path + ("body",), "the message text is missing")
        return None
    subject = raw.get("subject")
    if channel == "email" and not (isinstance(subject, str) and subject.strip()):
        check.fail(path + ("subject",), "an e-mail needs a subject")
    title = raw.get("title")
    if channel == "push" and not (isinstance(title, str) and title.strip()):
        check.fail(path + ("title",), "a push notification needs a title")
    fallback = raw.get("fallback")
    if channel == "rcs" and not (isinstance(fallback, str) and fallback.strip()):
        check.fail(path + ("fallback",), "an RCS card needs the SMS text it falls back to (fallback)")
    suggestions = check.names(raw.get("suggestions"), path + ("suggestions",)) if channel == "rcs" else ()
    if channel == "rcs" and len(suggestions) > 11:
        check.fail(path + ("suggestions",), "RCS allows at most 11 suggested replies")
    image = raw.get("image_url")
    if image is not None and not (isinstance(image, str) and image.startswith(("https://", "http://"))):
        check.fail(path + ("image_url",), "expected an http(s) URL")
    for key in ("body", "text", "subject", "html", "title", "fallback"):
        if isinstance(raw.get(key), str):
            _template_syntax(check, raw[key], path if plain else path + (key,))
    return Template(
        template_id=str(raw.get("id") or template_id), channel=channel, body=body,
        subject=subject if isinstance(subject, str) else None,
        html=raw.get("html") if isinstance(raw.get("html"), str) else None,
        title=title if isinstance(title, str) else None, image_url=image if isinstance(image, str) else None,
        suggestions=suggestions, fallback=fallback if isinstance(fallback, str) else None)


def _channels(check: _Check, spec: dict, path: tuple) -> tuple[str, ...]:
    raw = spec.get("channels", spec.get("channel"))
    key = "channels" if "channels" in spec or "channel" not in spec else "channel"
    names = tuple(n.lower() for n in check.names(raw, path + (key,)))
    if not names:
        check.fail(path + (key,), f"give at least one channel ({', '.join(CHANNELS)})")
    for name in names:
        if name not in CHANNELS:
            check.fail(path + (key,), f"{name!r} is not a channel ({', '.join(CHANNELS)})")
    if len(set(names)) != len(names):
        check.fail(path + (key,), "a channel is listed twice")
    return tuple(n for n in names if n in CHANNELS)


def _templates(check: _Check, raw: Any, path: tuple, campaign_id: str, step: str, variants: tuple[str, ...],
               channels: tuple[str, ...]) -> dict[str, dict[str, Template]]:
    spec = check.mapping(raw, path)
    if raw is None:
        check.fail(path, "no templates: give one per variant and channel")
        return {}
    if spec and all(k in CHANNELS for k in spec) and variants == (DEFAULT_VARIANT,):
        spec = {DEFAULT_VARIANT: spec}  # no experiment: channels may sit directly under templates
        path_of = lambda variant: path  # noqa: E731
    else:
        path_of = lambda variant: path + (variant,)  # noqa: E731
    for name in spec:
        if name not in variants:
            check.fail(path + (name,), f"no variant {name!r} (variants: {', '.join(variants)})")
    out: dict[str, dict[str, Template]] = {}
    for variant in variants:
        per_channel = check.mapping(spec.get(variant), path_of(variant))
        if variant not in spec:
            check.fail(path, f"no templates for variant {variant!r}")
            continue
        for name in per_channel:
            if name not in channels:
                check.fail(path_of(variant) + (name,), f"{name!r} is not one of this step's channels ({', '.join(channels)})")
        out[variant] = {}
        for channel in channels:
            if channel not in per_channel:
                check.fail(path_of(variant), f"no {channel} template for variant {variant!r}")
                continue
            template = _template(check, per_channel[channel], path_of(variant) + (channel,), channel,
                                 f"{campaign_id}.{step}.{variant}.{channel}")
            if template is not None:
                out[variant][channel] = template
    return out


def _quick_replies(check: _Check, raw: Any, path: tuple) -> tuple[QuickReply, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        check.fail(path, "expected a list of {reply, meaning}")
        return ()
    out = []
    for index, item in enumerate(raw):
        if isinstance(item, dict) and str(item.get("reply", "")).strip() and str(item.get("meaning", "")).strip():
            check.unknown(item, {"reply", "meaning"}, path + (index,))
            out.append(QuickReply(str(item["reply"]).strip(), str(item["meaning"]).strip()))
        else:
            check.fail(path + (index,), "a quick reply needs reply (what the recipient types) and meaning")
    replies = [q.reply.upper() for q in out]
    if len(set(replies)) != len(replies):
        check.fail(path, "a quick reply is listed twice")
    reserved = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "START", "UNSTOP", "HELP", "INFO"}
    for q in out:
        if q.reply.upper() in reserved:
            check.fail(path, f"{q.reply!r} is an opt-out/opt-in/help keyword and cannot be a quick reply")
    return tuple(out)


def _audience(check: _Check, raw: Any, path: tuple, base: Path | None) -> Audience:
    spec = check.mapping(raw, path)
    check.unknown(spec, AUDIENCE_KEYS, path)
    users_file = spec.get("users_file")
    if users_file is not None:
        if not isinstance(users_file, str) or not users_file.strip():
            check.fail(path + ("users_file",), "expected a file path")
            users_file = None
        else:
            resolved = Path(users_file).expanduser()
            if not resolved.is_absolute() and base is not None:
                resolved = base / resolved
            if not resolved.is_file():
                check.fail(path + ("users_file",), f"{users_file}: no such file")
            users_file = str(resolved)
    hours = check.number(spec.get("not_contacted_within_hours"), path + ("not_contacted_within_hours",), 0, 24 * 365)
    return Audience(
        segments=check.names(spec.get("segments"), path + ("segments",)),
        regions=check.names(spec.get("regions"), path + ("regions",)),
        countries=tuple(c.upper() for c in check.names(spec.get("countries"), path + ("countries",))),
        carriers=check.names(spec.get("carriers"), path + ("carriers",)),
        active_within_days=check.number(spec.get("active_within_days"), path + ("active_within_days",), 1, 3650, True),
        min_human_clicks=check.number(spec.get("min_human_clicks"), path + ("min_human_clicks",), 0, 1e9, True),
        not_contacted_within_hours=hours,
        users_file=users_file,
        user_ids=check.names(spec.get("user_ids"), path + ("user_ids",)),
        limit=check.number(spec.get("limit"), path + ("limit",), 1, 1e9, True),
    )


def _schedule(check: _Check, raw: Any, fallback_hour: Any, path: tuple) -> Schedule:
    hour = check.number(fallback_hour, ("fallback_hour",), 0, 23, True)
    hour = 10 if hour is None else hour
    if raw is None or raw == "now":
        return Schedule("now", None, hour)
    if raw == "best_hour":
        return Schedule("best_hour", None, hour)
    if isinstance(raw, dict):  # {after: abandoned_at, delay: 30m}: relative to each user's own event
        check.unknown(raw, {"after", "delay"}, path)
        column = raw.get("after")
        if not isinstance(column, str) or not column.strip():
            check.fail(path + ("after",), "expected the users file's column holding each user's event time")
            return Schedule("now", None, hour)
        delay = parse_duration(raw.get("delay", "0m"))
        if delay is None:
            check.fail(path + ("delay",), f"{raw.get('delay')!r} is not a duration (30m, 2h, 1d)")
            return Schedule("now", None, hour)
        return Schedule("after", None, hour, column.strip(), delay)
    if isinstance(raw, datetime):
        at = raw
    else:
        try:
            at = datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
        except ValueError:
            check.fail(path, f"{raw!r} is not now, best_hour, an ISO 8601 time (2026-12-02T10:00:00+01:00) or "
                             "{after: COLUMN, delay: 30m}")
            return Schedule("now", None, hour)
    if at.tzinfo is None:
        check.fail(path, f"{raw!r} has no time zone: add one (Z, +01:00) so the instant is unambiguous")
        return Schedule("now", None, hour)
    return Schedule("at", at.astimezone(timezone.utc), hour)


def _experiment(check: _Check, raw: Any, path: tuple, campaign_id: str) -> Experiment | None:
    if raw is None:
        return None
    spec = check.mapping(raw, path)
    if not spec:
        return None
    check.unknown(spec, EXPERIMENT_KEYS, path)
    holdout = check.number(spec.get("holdout", 0), path + ("holdout",), 0, 0.5)
    holdout = 0.0 if holdout is None else holdout
    allocation = str(spec.get("allocation", "fixed")).strip().lower()
    if allocation not in ALLOCATIONS:
        check.fail(path + ("allocation",), f"{allocation!r} is not one of {', '.join(ALLOCATIONS)}")
        allocation = "fixed"
    definition = {k: v for k, v in spec.items() if k not in ("holdout", "allocation", "floor")}
    definition.setdefault("campaign", campaign_id)
    variants_raw = definition.get("variants")
    names_given = [v.get("name") if isinstance(v, dict) else v for v in variants_raw] if isinstance(variants_raw, list) else []
    if HOLDOUT in names_given:
        check.fail(path + ("variants",), f"{HOLDOUT!r} is the holdout's arm: give holdout: SHARE instead")
    record = definition_record(0, "", definition, datetime.now(timezone.utc).isoformat())
    if record.reason:
        # the definition reader's reason names the experiment and lists its problems
        for problem in record.reason.split(": ", 1)[-1].split("; "):
            check.fail(path, problem)
        return None
    values = dict(record.values)
    variants = json.loads(values["variants"])
    names = tuple(v["name"] for v in variants)
    weights = {v["name"]: float(v["weight"]) for v in variants}
    floor = check.number(spec.get("floor", 0.05), path + ("floor",), 0, 1 / max(len(names), 1))
    if holdout > 0:
        # the definition the reports read includes the holdout as an arm with its planned share
        arm_weights = {n: w * (1 - holdout) for n, w in weights.items()} | {HOLDOUT: holdout}
        values["variants"] = json.dumps([{"name": n, "weight": round(w, 12)} for n, w in arm_weights.items()])
    return Experiment(values["experiment_id"], names, weights, values["control"], holdout, allocation,
                      0.05 if floor is None else floor, tuple(json.loads(values["goal_metrics"])), values)


def campaign_from_dict(document: Any, lines: Lines | None = None, source: str | None = None,
                       base: Path | None = None) -> Campaign:
    """Validate a campaign given as plain data (``{"campaign": {...}}`` or the mapping itself)."""
    check = _Check(lines, source)
    root: tuple = ()
    if isinstance(document, dict) and set(document) == {"campaign"}:
        document, root = document["campaign"], ("campaign",)
    spec = check.mapping(document, root)
    if not spec:
        if not check.problems:
            check.fail(root, "the campaign is empty")
        raise CampaignError(check.problems)
    check.unknown(spec, TOP_KEYS, root)
    campaign_id = str(spec.get("id") or "").strip()
    if not _ID.match(campaign_id):
        check.fail(root + ("id",), "an id of letters, digits, _ - . (at most 64) is required" if not campaign_id
                   else f"{campaign_id!r} is not an id of letters, digits, _ - . (at most 64)")
    category = str(spec.get("category") or "").strip().lower()
    if category not in CATEGORIES:
        check.fail(root + ("category",), f"give transactional or promotional{'' if not category else f', not {category!r}'}")
        category = "promotional"  # the stricter rules while the rest is checked
    priority = check.number(spec.get("priority", DEFAULT_PRIORITY[category]), root + ("priority",), 0, 9, True)
    experiment = _experiment(check, spec.get("experiment"), root + ("experiment",), campaign_id)
    variants = experiment.variants if experiment else (DEFAULT_VARIANT,)
    channels = _channels(check, spec, root)
    replies = _quick_replies(check, spec.get("quick_replies"), root + ("quick_replies",))
    steps = [Step(MAIN_STEP, channels, _templates(check, spec.get("templates"), root + ("templates",), campaign_id,
                                                  MAIN_STEP, variants, channels), quick_replies=replies)]
    raw_steps = spec.get("steps")
    if raw_steps is not None and not isinstance(raw_steps, list):
        check.fail(root + ("steps",), "expected a list of steps")
        raw_steps = []
    for index, raw in enumerate(raw_steps or []):
        path = root + ("steps", index)
        step_spec = check.mapping(raw, path)
        check.unknown(step_spec, STEP_KEYS, path)
        name = str(step_spec.get("name") or "").strip()
        if not _ID.match(name) or name == MAIN_STEP or name in {s.name for s in steps}:
            check.fail(path + ("name",), f"each step needs its own name (letters, digits, _ - .; not {MAIN_STEP!r})")
            name = name or f"step{index + 1}"
        after = parse_duration(step_spec.get("after"))
        if after is None or after <= timedelta(0):
            check.fail(path + ("after",), "give the delay after the previous step (30m, 24h, 2d)")
            after = timedelta(hours=1)
        condition = str(step_spec.get("if", "always")).strip().lower()
        if condition not in CONDITIONS:
            check.fail(path + ("if",), f"{condition!r} is not one of {', '.join(CONDITIONS)}")
            condition = "always"
        step_channels = _channels(check, step_spec, path)
        steps.append(Step(name, step_channels, _templates(check, step_spec.get("templates"), path + ("templates",),
                                                          campaign_id, name, variants, step_channels),
                          after, condition, _quick_replies(check, step_spec.get("quick_replies"), path + ("quick_replies",))))
    quiet_spec = check.mapping(spec.get("quiet_hours"), root + ("quiet_hours",))
    check.unknown(quiet_spec, {"start", "end", "transactional_may_pass"}, root + ("quiet_hours",))
    may_pass = quiet_spec.get("transactional_may_pass", False)
    if not isinstance(may_pass, bool):
        check.fail(root + ("quiet_hours", "transactional_may_pass"), "expected true or false")
        may_pass = False
    if may_pass and category != "transactional":
        check.fail(root + ("quiet_hours", "transactional_may_pass"), "promotional messages never pass quiet hours")
    quiet = QuietHours(_clock(check, quiet_spec.get("start"), root + ("quiet_hours", "start"), time(21, 0)),
                       _clock(check, quiet_spec.get("end"), root + ("quiet_hours", "end"), time(8, 0)), may_pass)
    if quiet.start == quiet.end:
        check.fail(root + ("quiet_hours",), "start and end are equal: quiet hours would be all day or none")
    cap = None
    if spec.get("frequency_cap") is not None:
        cap_spec = check.mapping(spec.get("frequency_cap"), root + ("frequency_cap",))
        check.unknown(cap_spec, {"max", "days"}, root + ("frequency_cap",))
        top = check.number(cap_spec.get("max"), root + ("frequency_cap", "max"), 1, 1000, True)
        days = check.number(cap_spec.get("days", 7), root + ("frequency_cap", "days"), 1, 365, True)
        if top is None:
            check.fail(root + ("frequency_cap", "max"), "give the most messages a user may get in the window")
        else:
            cap = FrequencyCap(int(top), int(days or 7))
    elif category == "promotional":
        cap = FrequencyCap()  # promotions are always capped: 3 per 7 days unless the campaign says otherwise
    conflict_spec = check.mapping(spec.get("conflict"), root + ("conflict",))
    check.unknown(conflict_spec, {"window_hours", "action"}, root + ("conflict",))
    window = check.number(conflict_spec.get("window_hours", 12), root + ("conflict", "window_hours"), 0, 24 * 14)
    action = str(conflict_spec.get("action", "defer")).strip().lower()
    if action not in CONFLICT_ACTIONS:
        check.fail(root + ("conflict", "action"), f"{action!r} is not one of {', '.join(CONFLICT_ACTIONS)}")
        action = "defer"
    variables = check.mapping(spec.get("variables"), root + ("variables",))
    links_spec = check.mapping(spec.get("links"), root + ("links",))
    links: dict[str, str] = {}
    for name, url in links_spec.items():
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            check.fail(root + ("links", name), "expected an http(s) URL")
        else:
            links[str(name)] = url
    providers_spec = check.mapping(spec.get("providers"), root + ("providers",))
    for channel in providers_spec:
        if channel not in CHANNELS:
            check.fail(root + ("providers", channel), f"{channel!r} is not a channel ({', '.join(CHANNELS)})")
    dedupe_key = spec.get("dedupe_key")
    if dedupe_key is not None and (not isinstance(dedupe_key, str) or not dedupe_key.strip()):
        check.fail(root + ("dedupe_key",), "expected the name of a per-user variable")
        dedupe_key = None
    audience = _audience(check, spec.get("audience"), root + ("audience",), base)
    schedule = _schedule(check, spec.get("schedule"), spec.get("fallback_hour"), root + ("schedule",))
    if schedule.mode == "after" and not audience.users_file:
        check.fail(root + ("schedule", "after"), "needs audience.users_file: each user's event time comes from it")
    campaign = Campaign(
        campaign_id=campaign_id, name=str(spec.get("name") or campaign_id), category=category,
        priority=int(priority if priority is not None else DEFAULT_PRIORITY[category]), steps=tuple(steps),
        audience=audience, schedule=schedule,
        quiet_hours=quiet, frequency_cap=cap, conflict=Conflict(window if window is not None else 12.0, action),
        dedupe_key=dedupe_key.strip() if isinstance(dedupe_key, str) else None,
        variables={str(k): v for k, v in variables.items()}, links=links, experiment=experiment,
        providers={str(k): str(v) for k, v in providers_spec.items()},
        sender=str(spec["sender"]) if spec.get("sender") is not None else None, source=source,
        document=json.loads(json.dumps(spec, default=str)))
    _check_links_and_variables(check, campaign, root)
    if check.problems:
        raise CampaignError(check.problems)
    return campaign


def _check_links_and_variables(check: _Check, campaign: Campaign, root: tuple) -> None:
    """Every link('name') a template uses is declared under links."""
    used = re.compile(r"link\(\s*['\"]([^'\"]+)['\"]\s*\)")
    for step in campaign.steps:
        for variant, per_channel in step.templates.items():
            for channel, template in per_channel.items():
                for text in (template.body, template.html, template.fallback, template.subject):
                    for name in used.findall(text or ""):
                        if name not in campaign.links:
                            where = (root + ("templates", variant, channel) if step.name == MAIN_STEP
                                     else root + ("steps",))
                            check.fail(where, f"link({name!r}) is used but not declared under links")


def load_campaign(path: Path) -> Campaign:
    """A campaign from its YAML or JSON file (``CampaignError`` lists every problem with its line)."""
    try:
        document, lines = load(path)
    except CampaignFileError as exc:
        raise CampaignError([str(exc)]) from exc
    return campaign_from_dict(document, lines, str(path), path.resolve().parent)


def campaign_from_text(text: str, name: str = "<campaign>", base: Path | None = None) -> Campaign:
    """A campaign from YAML text (the app's editor)."""
    try:
        document, lines = parse(text, name)
    except CampaignFileError as exc:
        raise CampaignError([str(exc)]) from exc
    return campaign_from_dict(document, lines, name, base)
