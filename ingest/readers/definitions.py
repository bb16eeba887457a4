"""Experiment definitions, as their owners write them: YAML, JSON or CSV → ``experiments`` records.

One definition per experiment version (the newest wins in dbt's ``dim_experiments``)::

    experiments:
      - id: exp_promo_wording
        name: Promotion wording
        hypothesis: "'exclusive privilege' raises human click-through"
        owner: Growth team
        unit: user                       # the randomisation unit (only user for now)
        campaign: promotions             # optional: the campaign it runs on
        variants:                        # a list, or a mapping name: weight with `control: NAME`
          - {name: limited_time_offer, weight: 0.5, control: true}
          - {name: exclusive_privilege, weight: 0.5}
        goal_metrics: [click_through]    # one or more: the multiple-testing family
        secondary_metrics: [clicked, converted]
        guardrails:                      # non-inferiority at a relative margin (default 0.02)
          - {metric: conversions, margin: 0.02}
          - revenue
        tests:                           # optional, per goal or secondary metric: the question it answers
          click_through: {alternative: greater}              # one-sided: only an increase counts
          converted: {alternative: greater, margin: -0.01}   # non-inferiority: not worse than −1 %
          # margin is the relative lift under H0 (0.01: superiority by more than +1 %); default two-sided, 0
        prior: {mean: 0, sd: 0.05, scale: relative}   # optional: the Bayesian view's normal prior
                                                      # (scale absolute: on the difference, in the metric's units)
        alpha: 0.05
        start: 2026-10-01
        end: null
        status: running                  # draft, running or stopped
        defined_at: 2026-09-30T12:00:00Z # optional: the version's time; default the file's mtime

JSON takes the same shape (an array, an object with ``experiments``, or one object). CSV takes one
row per experiment with ``variants`` as ``a=0.5, b=0.5`` (``control`` a column of its own), metric
lists separated by commas or semicolons, ``guardrails`` as ``metric:margin`` pairs, and ``tests``
as ``metric:alternative[:margin]`` entries (``click_through:greater; converted:greater:-0.01``).

The reader normalises every definition (variants as ``[{"name", "weight"}]`` with weights summing
to 1, metric lists and guardrails as JSON) and states what makes one unusable — no control, a
control that is not a variant, one arm, a weight that is not positive, no goal metric — as the
record's reason, so it lands in the quarantine instead of reaching the reports.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ingest.contract import Record
from ingest.readers.base import ReaderError, open_binary

FORMAT = "definitions"
DEFAULT_MARGIN = 0.02
DEFAULT_ALPHA = 0.05
KNOWN_KEYS = {"id", "experiment_id", "name", "hypothesis", "owner", "unit", "campaign", "campaign_id", "variants",
              "control", "goal_metrics", "goal_metric", "secondary_metrics", "guardrails", "guardrail_metrics",
              "alpha", "start", "start_at", "end", "end_at", "status", "defined_at", "updated_at", "tests", "prior"}
ALTERNATIVES = ("two-sided", "greater", "less")
_SPLIT = re.compile(r"[;,]")


def sniff(sample: str) -> bool:
    """Definitions are recognised by the file's name (``experiments.yml``), not by content."""
    return False


def _iso(value: Any) -> str | None:
    """A timestamp as ISO-8601 text; a bare date is midnight UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00Z"
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return f"{text}T00:00:00Z"
    return text


def _names(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in _SPLIT.split(value) if part.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value).strip()]


def _variants(raw: Any, control: Any) -> tuple[list[dict[str, Any]], str | None, list[str]]:
    """(variants with normalised weights, control, problems) from a list, a mapping or 'a=0.5, b=0.5'."""
    problems: list[str] = []
    items: list[tuple[str, Any, bool]] = []
    if isinstance(raw, str):
        for part in _SPLIT.split(raw):
            if part.strip():
                name, _, weight = part.partition("=")
                items.append((name.strip(), weight.strip() or None, False))
    elif isinstance(raw, dict):
        items = [(str(k).strip(), v, False) for k, v in raw.items()]
    elif isinstance(raw, list):
        for entry in raw:
            if isinstance(entry, dict):
                items.append((str(entry.get("name", "")).strip(), entry.get("weight"), bool(entry.get("control"))))
            else:
                items.append((str(entry).strip(), None, False))
    elif raw is not None:
        problems.append("variants must be a list, a mapping of name to weight, or 'a=0.5, b=0.5'")
    names = [n for n, _, _ in items]
    if any(not n for n in names):
        problems.append("every variant needs a name")
    if len(set(names)) != len(names):
        problems.append("a variant is named twice")
    if len(items) < 2:
        problems.append("an experiment needs at least two variants")
    given = [w is not None for _, w, _ in items]
    if any(given) and not all(given):
        problems.append("give a weight for every variant or for none (none: an equal split)")
    weights: list[float] = []
    for name, weight, _ in items:
        if weight is None:
            weights.append(1.0)  # no weights given: an equal split
            continue
        try:
            value = float(weight)
        except (TypeError, ValueError):
            value = float("nan")
        if not value > 0:
            problems.append(f"variant {name!r} has weight {weight!r}; weights must be positive numbers")
        weights.append(value if value > 0 else 0.0)
    total = sum(weights) or 1.0
    variants = [{"name": n, "weight": round(w / total, 12)} for (n, _, _), w in zip(items, weights)]
    flagged = [n for n, _, c in items if c]
    chosen = str(control).strip() if control not in (None, "") else None
    if len(flagged) > 1:
        problems.append(f"more than one variant is marked as control ({', '.join(flagged)})")
    if chosen and flagged and flagged[0] != chosen:
        problems.append(f"control {chosen!r} differs from the variant marked control ({flagged[0]!r})")
    chosen = chosen or (flagged[0] if flagged else None)
    if chosen is None:
        problems.append("no control: name it (control: NAME) or mark one variant control: true")
    elif names and chosen not in names:
        problems.append(f"control {chosen!r} is not one of the variants ({', '.join(names)})")
    return variants, chosen, problems


def _guardrails(raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    problems: list[str] = []
    out: list[dict[str, Any]] = []
    entries: list[Any]
    if isinstance(raw, str):
        entries = [p.strip() for p in _SPLIT.split(raw) if p.strip()]
    elif isinstance(raw, list):
        entries = raw
    elif raw is None or raw == "":
        entries = []
    else:
        entries = [raw]
    for entry in entries:
        if isinstance(entry, dict):
            metric, margin = entry.get("metric"), entry.get("margin", DEFAULT_MARGIN)
        else:
            metric, _, margin = str(entry).partition(":")
            margin = margin.strip() or DEFAULT_MARGIN
        try:
            value = float(margin)
        except (TypeError, ValueError):
            value = float("nan")
        if not 0 < value < 1:
            problems.append(f"guardrail {metric!r} has margin {margin!r}; a margin is a relative loss in (0, 1)")
        out.append({"metric": str(metric).strip(), "margin": value if 0 < value < 1 else None})
    return out, problems


def _tests(raw: Any) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Per-metric tests {metric: {"alternative", "margin"}} and the problems found."""
    problems: list[str] = []
    entries: list[tuple[str, Any, Any]] = []
    if isinstance(raw, str):
        for part in _SPLIT.split(raw):
            if part.strip():
                metric, _, rest = part.partition(":")
                alternative, _, margin = rest.partition(":")
                entries.append((metric.strip(), alternative.strip() or None, margin.strip() or None))
    elif isinstance(raw, dict):
        for metric, spec in raw.items():
            if isinstance(spec, dict):
                entries.append((str(metric).strip(), spec.get("alternative"), spec.get("margin")))
            elif isinstance(spec, str):
                entries.append((str(metric).strip(), spec, None))
            else:
                problems.append(f"test of {metric!r}: expected {{alternative: greater, margin: 0.01}}")
    elif raw not in (None, ""):
        problems.append("tests must map each metric to {alternative: two-sided|greater|less, margin: LIFT}")
    out: dict[str, dict[str, Any]] = {}
    for metric, alternative, margin in entries:
        name = str(alternative or "two-sided").strip().lower().replace("_", "-")
        if name not in ALTERNATIVES:
            problems.append(f"test of {metric!r}: alternative {alternative!r} is not one of {', '.join(ALTERNATIVES)}")
            continue
        try:
            value = float(margin) if margin not in (None, "") else 0.0
        except (TypeError, ValueError):
            value = float("nan")
        if not -1 < value < 1:
            problems.append(f"test of {metric!r}: margin {margin!r} is the relative lift under the null, in (-1, 1)")
            continue
        out[metric] = {"alternative": name, "margin": value}
    return out, problems


def _prior(raw: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """The declared prior {mean, sd, scale} (None when none), and the problems found."""
    if raw in (None, ""):
        return None, []
    if not isinstance(raw, dict):
        return None, ["prior must be {mean: NUMBER, sd: NUMBER > 0, scale: relative|absolute}"]
    try:
        mean, sd = float(raw.get("mean", 0.0)), float(raw.get("sd"))
    except (TypeError, ValueError):
        return None, ["prior needs a numeric mean and a standard deviation sd > 0"]
    scale = str(raw.get("scale") or "relative").strip().lower()
    problems = []
    if not (sd > 0 and sd == sd and abs(mean) < float("inf")):
        problems.append(f"prior sd must be a positive number, not {raw.get('sd')!r}")
    if scale not in ("relative", "absolute"):
        problems.append(f"prior scale is relative or absolute, not {scale!r}")
    return ({"mean": mean, "sd": sd, "scale": scale} if not problems else None), problems


def definition_record(line: int, raw_text: str, spec: Any, default_time: str) -> Record:
    """One experiments record from one parsed definition."""
    if not isinstance(spec, dict):
        return Record(line, raw_text, "experiments", reason=f"a definition must be a mapping, got {type(spec).__name__}")
    spec = {str(k).strip().lower(): v for k, v in spec.items()}
    experiment_id = str(spec.get("id") or spec.get("experiment_id") or "").strip()
    variants, control, problems = _variants(spec.get("variants"), spec.get("control"))
    goals = _names(spec.get("goal_metrics", spec.get("goal_metric")))
    if not goals:
        problems.append("no goal metric: name at least one (goal_metrics: [...])")
    guardrails, guard_problems = _guardrails(spec.get("guardrails", spec.get("guardrail_metrics")))
    problems += guard_problems
    overlap = set(goals) & {g["metric"] for g in guardrails}
    if overlap:
        problems.append(f"{', '.join(sorted(overlap))} cannot be both a goal metric and a guardrail")
    tests, test_problems = _tests(spec.get("tests"))
    problems += test_problems
    prior, prior_problems = _prior(spec.get("prior"))
    problems += prior_problems
    judged = sorted(set(tests) & {g["metric"] for g in guardrails})
    if judged:
        problems.append(f"{', '.join(judged)}: a guardrail is judged by its margin; give it no test")
    if not experiment_id:
        problems.insert(0, "the definition has no id")
    values = {
        "experiment_id": experiment_id or None,
        "occurred_at": _iso(spec.get("defined_at") or spec.get("updated_at")) or default_time,
        "campaign_id": (str(spec.get("campaign") or spec.get("campaign_id") or "").strip() or None),
        "name": (str(spec["name"]).strip() if spec.get("name") else None),
        "hypothesis": (str(spec["hypothesis"]).strip() if spec.get("hypothesis") else None),
        "owner": (str(spec["owner"]).strip() if spec.get("owner") else None),
        "unit": str(spec.get("unit") or "user").strip(),
        "variants": json.dumps(variants),
        "control": control,
        "goal_metrics": json.dumps(goals),
        "secondary_metrics": json.dumps(_names(spec.get("secondary_metrics"))),
        "guardrail_metrics": json.dumps(guardrails),
        # only when given: a definition without tests keeps the event id it always had
        "metric_tests": json.dumps(tests, sort_keys=True) if tests else None,
        "bayes_prior": json.dumps(prior, sort_keys=True) if prior else None,
        "alpha": str(spec.get("alpha") if spec.get("alpha") not in (None, "") else DEFAULT_ALPHA),
        "start_at": _iso(spec.get("start") or spec.get("start_at")),
        "end_at": _iso(spec.get("end") or spec.get("end_at")),
        "status": str(spec.get("status") or "running").strip().lower(),
    }
    if values["unit"] != "user":
        problems.append(f"unit {values['unit']!r}: only user-randomised experiments are analysed")
    extra = {k: v for k, v in spec.items() if k not in KNOWN_KEYS}
    record = Record(line, raw_text, "experiments", values=values,
                    extra=json.loads(json.dumps(extra, default=str)) if extra else {})
    if problems:
        record.reason = f"experiment {experiment_id or '(no id)'}: " + "; ".join(problems)
    return record


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat()


def read(path: Path, event_type: str | None = None) -> Iterator[Record]:
    """One record per definition in a YAML, JSON or CSV file."""
    with open_binary(path) as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReaderError(f"{path}: invalid UTF-8 at byte {exc.start}: re-save the definitions as UTF-8") from exc
    default_time = _mtime(path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            if any((v or "").strip() for v in row.values()):
                raw = json.dumps(row, ensure_ascii=False)
                yield definition_record(reader.line_num, raw, {k: v for k, v in row.items() if k}, default_time)
        return
    try:
        document = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = (where.line + 1) if where is not None else getattr(exc, "lineno", 1)
        yield Record(line, text[:2000], "experiments",
                     reason=f"the definitions cannot be parsed ({str(exc).splitlines()[0]}); fix the file and ingest it again")
        return
    if document is None:
        return
    specs = document.get("experiments", [document]) if isinstance(document, dict) else document
    if not isinstance(specs, list):
        yield Record(1, text[:2000], "experiments", reason="expected a list of experiment definitions")
        return
    lines = _definition_lines(text, len(specs))
    for index, spec in enumerate(specs):
        raw = json.dumps(spec, ensure_ascii=False, default=str)
        yield definition_record(lines[index], raw, spec, default_time)


def _definition_lines(text: str, count: int) -> list[int]:
    """The line each definition starts on (for the quarantine), from the YAML node tree (JSON is
    YAML too); line 1 for all when the text cannot be composed."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        node = None
    if isinstance(node, yaml.MappingNode):
        node = next((value for key, value in node.value if getattr(key, "value", None) == "experiments"), node)
    if isinstance(node, yaml.SequenceNode) and len(node.value) == count:
        return [item.start_mark.line + 1 for item in node.value]
    return [(node.start_mark.line + 1) if node is not None else 1] * count
