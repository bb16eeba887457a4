"""What an experiment's owner declared: arms and planned split, control, goal, secondary and
guardrail metrics, alpha. The analysis never guesses any of it.

Two ways in: a row of ``marts.dim_experiments`` (definitions ingested from experiments.yml, written
by the generator or by dispatch for campaign experiments), or the options of ``nudgelab
experiments analyze`` for an owner's own per-unit table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

DEFAULT_ALPHA = 0.05
DEFAULT_MARGIN = 0.02


@dataclass(frozen=True)
class Guardrail:
    """A metric that must not get worse by more than ``margin`` (a relative loss)."""

    metric: str
    margin: float = DEFAULT_MARGIN


@dataclass(frozen=True)
class MetricTest:
    """The question a goal or secondary metric answers: two-sided against no difference by default;
    ``greater`` / ``less`` one-sided; ``margin`` the relative lift under the null (0.01: superiority by
    more than +1 %; -0.02 with greater: non-inferiority at 2 %)."""

    alternative: str = "two-sided"
    margin: float = 0.0

    def describe(self) -> str:
        """H1 as owners read it: "lift > −2 %", "lift ≠ 0"."""
        sign = {"two-sided": "≠", "greater": ">", "less": "<"}[self.alternative]
        return f"lift {sign} {self.margin * 100:+g} %" if self.margin else f"lift {sign} 0"


TWO_SIDED = MetricTest()


@dataclass(frozen=True)
class Definition:
    """One experiment as defined. ``weights`` are the planned split (None: an equal split is
    expected); ``secondary_metrics`` None means every other measured metric is secondary."""

    experiment_id: str
    control: str
    variants: tuple[str, ...]
    goal_metrics: tuple[str, ...]
    weights: Mapping[str, float] | None = None
    secondary_metrics: tuple[str, ...] | None = None
    guardrails: tuple[Guardrail, ...] = ()
    tests: Mapping[str, MetricTest] = field(default_factory=dict)
    prior: Any = None               # experiments.bayesian.Prior the owner declared, or None (flat)
    alpha: float = DEFAULT_ALPHA
    name: str | None = None
    hypothesis: str | None = None
    owner: str | None = None
    status: str = "running"
    campaign_id: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def guardrail_metrics(self) -> tuple[str, ...]:
        return tuple(g.metric for g in self.guardrails)

    def test(self, metric: str) -> MetricTest:
        """The metric's declared test (two-sided against 0 when none is declared)."""
        return self.tests.get(metric, TWO_SIDED)

    def margin(self, metric: str) -> float:
        return next((g.margin for g in self.guardrails if g.metric == metric), DEFAULT_MARGIN)

    def role(self, metric: str) -> str | None:
        """primary (a goal metric), guardrail, secondary, or None (declared as none of them)."""
        if metric in self.goal_metrics:
            return "primary"
        if metric in self.guardrail_metrics:
            return "guardrail"
        if self.secondary_metrics is None or metric in self.secondary_metrics:
            return "secondary"
        return None


def _json_list(text: Any) -> list:
    if text is None or text == "":
        return []
    value = json.loads(text) if isinstance(text, str) else text
    return list(value) if isinstance(value, (list, tuple)) else []


def from_dim_row(row: Mapping[str, Any]) -> Definition:
    """A Definition from a ``marts.dim_experiments`` row (has_definition must be true)."""
    variants = _json_list(row["variants_json"])
    names = tuple(str(v["name"]) for v in variants)
    weights = {str(v["name"]): float(v["weight"]) for v in variants if v.get("weight") is not None}
    guardrails = tuple(Guardrail(str(g["metric"]), float(g.get("margin") or DEFAULT_MARGIN))
                       for g in _json_list(row.get("guardrail_metrics_json")))
    declared = row.get("metric_tests_json")
    declared = json.loads(declared) if isinstance(declared, str) and declared else (declared or {})
    tests = {str(m): MetricTest(str(t.get("alternative") or "two-sided"), float(t.get("margin") or 0.0))
             for m, t in declared.items()} if isinstance(declared, dict) else {}
    stated = row.get("bayes_prior_json")
    stated = json.loads(stated) if isinstance(stated, str) and stated else stated
    prior = None
    if isinstance(stated, dict):
        from experiments.bayesian import Prior

        prior = Prior(float(stated["mean"]), float(stated["sd"]) ** 2, str(stated.get("scale") or "relative"))
    return Definition(
        experiment_id=row["experiment_id"], control=row["control"], variants=names,
        goal_metrics=tuple(str(m) for m in _json_list(row["goal_metrics_json"])),
        weights=weights if len(weights) == len(names) else None,
        # none listed: every other measured metric is reported as secondary
        secondary_metrics=tuple(str(m) for m in _json_list(row.get("secondary_metrics_json"))) or None,
        guardrails=guardrails, tests=tests, prior=prior, alpha=float(row.get("alpha") or DEFAULT_ALPHA),
        name=row.get("experiment_name"),
        hypothesis=row.get("hypothesis"), owner=row.get("owner"), status=row.get("status") or "running",
        campaign_id=row.get("campaign_id"), start_at=row.get("start_at"), end_at=row.get("end_at"),
    )
