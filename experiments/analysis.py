"""One analysis of an experiment, whichever way its numbers come in.

``analyse(definition, evidence)`` takes what the owner declared (``experiments.definition``) and
the evidence — sufficient statistics per arm × metric × dimension value (n, Σx, Σx², Σy, Σy², Σxy),
valid units per arm, and from the warehouse the cumulative sums per day — and returns an
``Analysis``: the sample-ratio check against the planned split, every comparison of every
treatment with the control (fixed horizon with CUPED where it narrows the interval, the
always-valid sequential view and the Bayesian view), the goal metrics corrected together (Holm),
the secondary ones as their own family (Holm), breakdowns per dimension (BH), guardrails judged for
non-inferiority at their own margins, the goal metric's confidence sequence by day, the MDE reached,
the verdict sentence and a status (significant, inconclusive, srm_problem, no_data).

Both inputs produce their evidence and call this: the warehouse's marts
(``experiments.warehouse_report``) and an owner's per-unit table (``experiments.analyze``); one
renderer (``experiments.report_pages``) shows the result, and the app reads what it stores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Sequence

import numpy as np

from experiments.bayesian import Prior
from experiments.compare import ComparisonResult, compare
from experiments.definition import Definition
from experiments.guardrails import non_inferiority
from experiments.frequentist import Effect, interval, sides
from experiments.multiple import adjust, interval_alpha
from experiments.power import conditional_power, mde, sequential_conditional_power
from experiments.sequential import DEFAULT_N_STAR
from experiments.srm import localise, srm_check
from experiments.statistics import SampleStats, moments, pooled_theta
from experiments.quantiles import compare_quantiles
from experiments.stratification import post_stratify

POWER = 0.8
QUANTILE_METRICS = {"p50": 0.5, "p90": 0.9}   # the quantile metrics of each histogram in the marts
NO_STATS = (0.0,) * 10        # n, Σx, Σx², Σy, Σy², Σxy, and a ratio's covariate Σz, Σz², Σxz, Σyz
STATUSES = ("significant", "inconclusive", "srm_problem", "no_data", "no_definition")

RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS experiments.results (
    experiment_id VARCHAR NOT NULL,
    variant VARCHAR NOT NULL,
    control VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    metric_type VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    analysis VARCHAR NOT NULL,
    dimension VARCHAR NOT NULL,
    dimension_value VARCHAR NOT NULL,
    family VARCHAR,
    correction VARCHAR,
    n_control BIGINT,
    n_treatment BIGINT,
    mean_control DOUBLE,
    mean_treatment DOUBLE,
    abs_effect DOUBLE,
    abs_ci_low DOUBLE,
    abs_ci_high DOUBLE,
    p_value DOUBLE,
    rel_lift DOUBLE,
    rel_ci_low DOUBLE,
    rel_ci_high DOUBLE,
    rel_p_value DOUBLE,
    alternative VARCHAR,
    null_lift DOUBLE,
    test_p_value DOUBLE,
    p_adjusted DOUBLE,
    adj_ci_alpha DOUBLE,
    adj_abs_ci_low DOUBLE,
    adj_abs_ci_high DOUBLE,
    adj_rel_ci_low DOUBLE,
    adj_rel_ci_high DOUBLE,
    significant BOOLEAN,
    chance_to_win DOUBLE,
    expected_loss DOUBLE,
    cuped_variance_reduction DOUBLE,
    strata VARCHAR,
    strata_variance_reduction DOUBLE,
    mde_rel DOUBLE,
    conditional_power DOUBLE,
    conditional_power_sequential DOUBLE,
    days_to_end BIGINT,
    units_at_end BIGINT,
    guardrail_margin DOUBLE,
    noninferiority_p_value DOUBLE,
    guardrail_passed BOOLEAN,
    srm_p_value DOUBLE,
    srm_status VARCHAR,
    reason VARCHAR NOT NULL,
    as_of_date DATE,
    computed_at TIMESTAMPTZ NOT NULL
)
"""
RESULT_COLUMNS = tuple(re.findall(r"^ {4}(\w+) [A-Z]", RESULTS_DDL, flags=re.M))


@dataclass
class Evidence:
    """The numbers an analysis needs, from either input.

    ``sums`` maps (variant, metric, dimension, value) to (n, Σx, Σx², Σy, Σy², Σxy); the overall
    figures have dimension "overall", value "(all)". ``cuped`` says per metric whether y holds a
    pre-exposure covariate (CUPED) rather than nothing or a ratio's denominator. ``cumulative`` maps
    metric → variant → day → sums (the warehouse's running totals, for the confidence sequence).
    ``exclusions`` describes rows a per-unit table lost before analysis.
    """

    metric_types: dict[str, str]
    sums: dict[tuple[str, str, str, str], tuple]
    units: dict[str, int]
    invalid_units: int = 0
    cuped: dict[str, bool] = field(default_factory=dict)
    cumulative: dict[str, dict[str, dict[date, tuple]]] = field(default_factory=dict)
    as_of: date | None = None
    exclusions: dict[str, int] = field(default_factory=dict)
    histograms: dict[tuple[str, str], Any] = field(default_factory=dict)   # (variant, base metric) → bucket counts

    def __post_init__(self) -> None:
        """Quantile metrics are measured where their histograms are: <metric>_p50 and <metric>_p90."""
        for base in sorted({metric for _, metric in self.histograms}):
            for name in QUANTILE_METRICS:
                self.metric_types.setdefault(f"{base}_{name}", "quantile")


@dataclass
class Options:
    """How to analyse: which views, how to correct, the sequential tuning and the Bayesian prior."""

    sequential: bool = True
    bayesian: bool = True
    n_star: float = DEFAULT_N_STAR
    prior: Prior | None = None
    stratify_by: str | None = "segment"   # post-stratify over this pre-exposure dimension when measured
    goal_correction: str = "holm"
    secondary_correction: str = "holm"
    dimension_correction: str = "bh"


@dataclass
class Analysis:
    """The outcome: what the reports render, the results table stores and the app shows."""

    definition: Definition
    treatments: list[str]
    metrics: list[str]
    primary: str
    srm: dict[str, Any]
    rows: list[dict[str, Any]]
    sequence: list[dict[str, Any]]
    notes: list[str]
    options: Options
    as_of: date | None
    computed_at: datetime | None
    exclusions: dict[str, int] = field(default_factory=dict)
    status: str = "inconclusive"
    verdict: str = ""

    @property
    def experiment_id(self) -> str:
        return self.definition.experiment_id

    @property
    def control(self) -> str:
        return self.definition.control

    def overall(self, role: str | None = None, analysis: str = "fixed") -> list[dict[str, Any]]:
        """The overall comparisons of one analysis (fixed by default), optionally of one role."""
        return [r for r in self.rows if r["dimension"] == "overall" and r["analysis"] == analysis
                and (role is None or r["role"] == role)]

    def as_page(self) -> dict[str, Any]:
        """The plain dict the renderers take (report_pages)."""
        d = self.definition
        return {
            "experiment_id": d.experiment_id, "name": d.name, "hypothesis": d.hypothesis, "owner": d.owner,
            "definition_status": d.status, "control": d.control, "treatments": self.treatments,
            "primary": self.primary, "goal_metrics": [m for m in d.goal_metrics if m in self.metrics],
            "guardrails": [m for m in d.guardrail_metrics if m in self.metrics],
            "margins": {g.metric: g.margin for g in d.guardrails}, "alpha": d.alpha, "as_of_date": self.as_of,
            "computed_at": self.computed_at, "srm": self.srm, "notes": self.notes, "rows": self.rows,
            "sequence": self.sequence, "power": POWER, "status": self.status, "verdict": self.verdict,
            "exclusions": self.exclusions, "correction": self.options.goal_correction,
            "goal_comparisons": max(1, len(self.overall("primary"))),
        }


def _num(value: Any) -> float | None:
    """A finite float, or None (the table stores NULL, never NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _stack(stats: Sequence[tuple[float, ...]]) -> SampleStats:
    """Arms' sums as one SampleStats of arrays (sums without a ratio's covariate get zeros for it)."""
    cols = np.array([tuple(s) + (0.0,) * (len(NO_STATS) - len(s)) for s in stats], dtype=float)
    return SampleStats(*(cols[:, k] for k in range(len(NO_STATS))))


def mde_rel(control: tuple, treatment: tuple, metric_type: str, alpha: float, alternative: str = "two-sided",
            margin: float = 0.0, comparisons: int = 1) -> float | None:
    """Relative lift (upwards, or a "less" test's downwards) the metric's test detects with 80 % power at
    the current n, at α / comparisons (its family's size: Holm's first step), beyond its margin.

    Proportions use p(1−p); mean metrics the control's standard deviation; ratio metrics the
    control's per-unit delta-method standard deviation (the ratio's linearisation is a mean).
    """
    n_c, n_t = control[0], treatment[0]
    if n_c < 2 or n_t < 1:
        return None
    arm = moments(SampleStats(*control), metric_type)  # type: ignore[arg-type]
    baseline, variance = float(arm.mean), float(arm.variance)
    if not (np.isfinite(baseline) and np.isfinite(variance)) or baseline == 0:
        return None
    try:
        if metric_type == "proportion":
            value = mde(n_c, baseline=baseline, metric_type="proportion", alpha=alpha, power=POWER, ratio=n_t / n_c,
                        relative=True, alternative=alternative, margin=margin, comparisons=comparisons)
        else:
            if variance <= 0:
                return None
            value = mde(n_c, baseline=abs(baseline), metric_type="mean", std=np.sqrt(variance), alpha=alpha,
                        power=POWER, ratio=n_t / n_c, relative=True, alternative=alternative, margin=margin,
                        comparisons=comparisons)
    except ValueError:
        return None
    return _num(value)


def adjusted_intervals(row: dict[str, Any], level: float) -> dict[str, Any]:
    """A fixed comparison's intervals at its family's adjusted level (``multiple.interval_alpha``)."""
    engine = row["engine"]
    side = sides(row.get("alternative") or "two-sided")
    out: dict[str, Any] = {"adj_ci_alpha": level}
    for scale, estimate, se in (("abs", "abs_effect", "abs_se"), ("rel", "rel_lift", "rel_se")):
        est, err, df = (np.nan if engine.get(k) is None else float(engine[k]) for k in (estimate, se, "df"))
        low, high = interval(Effect(np.array(est), np.array(err), np.array(df)), level, side)
        out[f"adj_{scale}_ci_low"], out[f"adj_{scale}_ci_high"] = _num(low), _num(high)
    return out


def srm_counts(evidence: Evidence, metric: str, arms: list[str]) -> dict[str, dict[str, dict[str, int]]]:
    """Units per arm in each value of each breakdown dimension (from the metric's sums; every unit has
    one row per metric) and, from the running totals, per exposure day."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for (variant, m, dimension, value), stats in evidence.sums.items():
        if m == metric and dimension != "overall" and variant in arms:
            counts.setdefault(dimension, {}).setdefault(value, {})[variant] = int(stats[0])
    days: dict[str, dict[str, int]] = {}
    for variant, series in evidence.cumulative.get(metric, {}).items():
        if variant not in arms:
            continue
        before = 0.0
        for day in sorted(series):
            days.setdefault(str(day), {})[variant] = int(series[day][0] - before)
            before = series[day][0]
    if days:
        counts["day"] = days
    return counts


def srm_health(definition: Definition, units: dict[str, int], invalid_units: int) -> dict[str, Any]:
    """χ² of valid units per arm against the planned split (equal when the definition plans none)."""
    arms = [definition.control, *[v for v in definition.variants if v != definition.control]]
    arms += [v for v in units if v not in arms]  # an arm in the data that the definition does not name
    planned = definition.weights
    reason = ""
    if planned and all(a in planned for a in arms):
        weights, source = [float(planned[a]) for a in arms], "planned"
    else:
        weights, source = [1.0] * len(arms), "equal"
        if planned:
            missing = ", ".join(a for a in arms if a not in planned)
            reason = f"variants {missing} have units but no planned weight; an equal split is assumed"
    counts = [int(units.get(a, 0)) for a in arms]
    total = sum(weights)
    base = {"counts": dict(zip(arms, counts)), "weights": {a: w / total for a, w in zip(arms, weights)},
            "weights_source": source, "invalid_units": invalid_units}
    if len(arms) < 2 or sum(counts) == 0:
        return {**base, "p_value": None, "status": "ok", "reason": "no units to check yet"}
    result = srm_check(counts, weights)
    return {**base, "p_value": _num(result.p_value), "status": result.status,
            "reason": "; ".join(r for r in (result.reason, reason) if r)}


class _Builder:
    def __init__(self, definition: Definition, evidence: Evidence, options: Options,
                 computed_at: datetime | None) -> None:
        self.d, self.e, self.o, self.computed_at = definition, evidence, options, computed_at
        self.notes: list[str] = list(definition.notes)
        measured = evidence.metric_types
        self.metrics = [m for m in definition.goal_metrics if m in measured]
        for m in definition.goal_metrics:
            if m not in measured:
                self.notes.append(f"Goal metric {m} is not measured here; it cannot be judged.")
        self.metrics += [m for m in sorted(measured) if m not in self.metrics and definition.role(m) is not None
                         and definition.role(m) != "guardrail"]
        self.metrics += [m for m in definition.guardrail_metrics if m in measured and m not in self.metrics]
        for m in definition.guardrail_metrics:
            if m not in measured:
                self.notes.append(f"Guardrail {m} is not measured here; it cannot be checked.")
        self.primary = self.metrics[0] if self.metrics and self.metrics[0] in definition.goal_metrics else \
            (definition.goal_metrics[0] if definition.goal_metrics else "")
        seen = {k[0] for k in evidence.sums} | set(evidence.units)
        unknown = sorted(v for v in seen if v not in definition.variants)
        if unknown:
            self.notes.append(f"Variants {', '.join(unknown)} have data but are not in the definition; "
                              "they are compared with the control too.")
        self.treatments = [v for v in definition.variants if v != definition.control] + unknown
        self.dimension_values: dict[str, list[str]] = {}
        for (_, _, dim, value) in evidence.sums:
            values = self.dimension_values.setdefault(dim, [])
            if value not in values:
                values.append(value)
        for dim in self.dimension_values:
            self.dimension_values[dim].sort(key=lambda v: (v == "(other)", v))

    @property
    def prior(self):
        """The Bayesian view's prior: the analysis options', else the one the definition declares."""
        return self.o.prior if self.o.prior is not None else self.d.prior

    def enrolment(self, metric: str) -> tuple[float, float]:
        """(units so far, units a day over the last seven exposure days) from the running totals."""
        series = self.e.cumulative.get(metric, {})
        days = sorted({d for s in series.values() for d in s})
        if not days:
            return 0.0, 0.0

        def units(day) -> float:
            total = 0.0
            for by_day in series.values():
                seen = [d for d in by_day if d <= day]
                if seen:
                    total += by_day[max(seen)][0]
            return total

        last, start = days[-1], days[max(0, len(days) - 8)]
        if start == last:
            return units(last), 0.0
        return units(last), (units(last) - units(start)) / (last - start).days

    def midway(self, r: dict[str, Any], test, metric: str) -> dict[str, Any]:
        """Mid-experiment power for a running goal comparison with a planned end: the probability
        that the declared test reaches significance by the end at the current effect and enrolment,
        fixed-horizon (closed form) and always-valid (simulated daily looks)."""
        end, as_of = self.d.end_at, self.e.as_of
        if end is None or as_of is None or self.d.status != "running":
            return {}
        days = (end.date() - as_of).days if hasattr(end, "date") else (end - as_of).days
        n_now, per_day = self.enrolment(metric)
        key = ("rel_lift", "rel_se", test.margin) if test.margin else ("abs_effect", "abs_se", 0.0)
        estimate, se, null = r.get(key[0]), r.get(key[1]), key[2]
        if days <= 0 or n_now <= 0 or estimate is None or not se:
            return {}
        n_end = n_now + per_day * days
        # the comparison's own units grow in proportion with the experiment's
        share = (r["n_control"] + r["n_treatment"]) / n_now
        info = min(1.0, n_now / n_end)
        z = (estimate - null) / se
        fixed = float(conditional_power(z, info, alpha=self.d.alpha, alternative=test.alternative))
        sequential = sequential_conditional_power(estimate, se, (r["n_control"] + r["n_treatment"]),
                                                  share * n_end, max(1, days), alpha=self.d.alpha,
                                                  n_star=self.o.n_star, alternative=test.alternative, null=null)
        return {"conditional_power": fixed, "conditional_power_sequential": sequential, "days_to_end": int(days),
                "units_at_end": int(round(n_end))}

    def family_size(self, role: str | None) -> int:
        """Comparisons in a metric's family (metrics of that role × treatment arms); 1 outside a family."""
        if role not in ("primary", "secondary"):
            return 1
        return max(1, sum(1 for m in self.metrics if self.d.role(m) == role) * len(self.treatments))

    def base(self, variant: str, metric: str, dimension: str, value: str, analysis: str, srm: dict) -> dict[str, Any]:
        row = dict.fromkeys(RESULT_COLUMNS)
        row.update(experiment_id=self.d.experiment_id, variant=variant, control=self.d.control, metric=metric,
                   metric_type=self.e.metric_types[metric], role=self.d.role(metric), analysis=analysis,
                   dimension=dimension, dimension_value=value, srm_p_value=srm["p_value"], srm_status=srm["status"],
                   as_of_date=self.e.as_of, computed_at=self.computed_at)
        return row

    def compare(self, pairs: list[tuple[tuple, tuple]], metric: str,
                thetas: list[float] | None = None) -> ComparisonResult:
        mtype = self.e.metric_types[metric]
        test = self.d.test(metric)
        cuped = self.e.cuped.get(metric, True)   # a ratio's covariate is z: zeros where the marts hold none
        return compare(_stack([p[0] for p in pairs]), _stack([p[1] for p in pairs]), mtype, alpha=self.d.alpha,
                       cuped=cuped, sequential=self.o.sequential, n_star=self.o.n_star,
                       bayesian=self.o.bayesian or self.prior is not None, prior=self.prior,
                       alternative=test.alternative, null_rel=test.margin,
                       theta=np.array(thetas, dtype=float) if cuped and thetas is not None else None)

    def theta(self, metric: str, dimension: str, value: str) -> float:
        """CUPED's slope for one cell, pooled within every arm (one slope for all comparisons with control)."""
        arms = [self.e.sums.get((v, metric, dimension, value), NO_STATS) for v in [self.d.control, *self.treatments]]
        return float(pooled_theta([_stack([a]) for a in arms], self.e.metric_types[metric])[0])

    def stratified(self, metric: str, treatments: list[str]):
        """The post-stratified comparisons of each treatment (None when the strata are not measured)."""
        strata = self.o.stratify_by
        values = self.dimension_values.get(strata or "")
        if not strata or not values or len(values) < 2:
            return None
        test = self.d.test(metric)

        def arm(variant: str) -> list[tuple]:
            return [tuple(s) + (0.0,) * (len(NO_STATS) - len(s))
                    for s in (self.e.sums.get((variant, metric, strata, v), NO_STATS) for v in values)]

        control = np.array([arm(self.d.control)] * len(treatments), dtype=float)   # (treatments, strata, sums)
        treated = np.array([arm(t) for t in treatments], dtype=float)
        as_stats = lambda a: SampleStats(*(a[..., k] for k in range(len(NO_STATS))))  # noqa: E731
        # CUPED within the strata too, where the metric has its covariate (a slope of 0 changes nothing)
        return post_stratify(as_stats(control), as_stats(treated), self.e.metric_types[metric], alpha=self.d.alpha,
                             alternative=test.alternative, null_rel=test.margin,
                             cuped=self.e.cuped.get(metric, True))

    def quantile_rows(self, metric: str, cells: list[tuple[str, str]], srm: dict) -> list[dict[str, Any]]:
        """Fixed rows of a quantile metric (<base>_p50 / _p90) from the arms' histograms (overall only)."""
        base, _, which = metric.rpartition("_")
        control = self.e.histograms.get((self.d.control, base))
        width = max((len(h) for h in self.e.histograms.values()), default=1)

        def padded(counts) -> np.ndarray:
            out = np.zeros(width)
            if counts is not None:
                out[:len(counts)] = counts
            return out

        test = self.d.test(metric)
        res = compare_quantiles(np.array([padded(control)] * len(cells)),
                                np.array([padded(self.e.histograms.get((t, base))) for t, _ in cells]),
                                QUANTILE_METRICS[which], alpha=self.d.alpha, alternative=test.alternative,
                                null_rel=test.margin)
        rows = []
        for i, (variant, value) in enumerate(cells):
            r = res.row(i)
            row = self.base(variant, metric, "overall", value, "fixed", srm)
            row.update({k: r[k] for k in ("mean_control", "mean_treatment", "abs_effect", "abs_ci_low", "abs_ci_high",
                                          "p_value", "rel_lift", "rel_ci_low", "rel_ci_high", "rel_p_value", "reason")},
                       n_control=int(r["n_control"] or 0), n_treatment=int(r["n_treatment"] or 0),
                       test_p_value=r["rel_p_value" if test.margin else "p_value"], alternative=test.alternative,
                       null_lift=test.margin)
            row["engine"] = {"abs_se": r["abs_se"], "rel_se": r["rel_se"], "df": 1e9, "abs_effect": r["abs_effect"],
                             "rel_lift": r["rel_lift"]}
            rows.append(row)
        return rows

    def rows_for(self, metric: str, dimension: str, cells: list[tuple[str, str]], srm: dict) -> list[dict[str, Any]]:
        """Rows (every view for overall, fixed for breakdowns) of one metric over (variant, value) cells."""
        if self.e.metric_types[metric] == "quantile":
            return self.quantile_rows(metric, cells, srm) if dimension == "overall" else []
        pairs = [(self.e.sums.get((self.d.control, metric, dimension, v), NO_STATS),
                  self.e.sums.get((t, metric, dimension, v), NO_STATS)) for t, v in cells]
        thetas = [self.theta(metric, dimension, v) for _, v in cells] if len(self.treatments) > 1 else None
        res = self.compare(pairs, metric, thetas)
        role = self.d.role(metric)
        test = self.d.test(metric)
        # the declared test decides: against a relative margin on the lift, else on the absolute effect
        decide = "rel_p_value" if test.margin else "p_value"
        declared = {"alternative": test.alternative, "null_lift": test.margin}
        guard = non_inferiority(res, self.d.margin(metric)) if dimension == "overall" and role == "guardrail" else None
        strat = self.stratified(metric, [t for t, _ in cells]) if dimension == "overall" else None
        rows = []
        for i, (variant, value) in enumerate(cells):
            r = res.row(i)
            common = {
                "n_control": int(res.n_control[i]), "n_treatment": int(res.n_treatment[i]),
                "mean_control": r["mean_control"], "mean_treatment": r["mean_treatment"],
                "abs_effect": r["abs_effect"], "rel_lift": r["rel_lift"],
                "cuped_variance_reduction": r.get("variance_reduction"), "reason": r["reason"],
            }
            fixed = self.base(variant, metric, dimension, value, "fixed", srm)
            fixed.update(common, abs_ci_low=r["abs_ci_low"], abs_ci_high=r["abs_ci_high"], p_value=r["p_value"],
                         rel_ci_low=r["rel_ci_low"], rel_ci_high=r["rel_ci_high"], rel_p_value=r["rel_p_value"],
                         test_p_value=r[decide], **declared)
            # the engine's other readings ride along (the per-unit report shows them; the table does not store them)
            fixed["engine"] = r
            if guard is not None:
                fixed.update(guardrail_margin=self.d.margin(metric), noninferiority_p_value=_num(guard.p_value[i]),
                             guardrail_passed=bool(guard.passed[i]))
                fixed["engine"]["noninferiority_bound"] = _num(guard.bound[i])
            rows.append(fixed)
            if dimension != "overall":
                continue
            fixed["mde_rel"] = mde_rel(*pairs[i], self.e.metric_types[metric], self.d.alpha, test.alternative,
                                       test.margin, self.family_size(role))
            if role == "primary":
                fixed.update(self.midway(r, test, metric))
            if self.o.sequential:
                seq = self.base(variant, metric, dimension, value, "sequential", srm)
                seq.update(common, abs_ci_low=r.get("seq_ci_low"), abs_ci_high=r.get("seq_ci_high"),
                           p_value=r.get("seq_p_value"), rel_ci_low=r.get("seq_rel_ci_low"),
                           rel_ci_high=r.get("seq_rel_ci_high"), rel_p_value=r.get("seq_rel_p_value"),
                           test_p_value=r.get(f"seq_{decide}"), **declared)
                rows.append(seq)
            if strat is not None:
                p = strat.row(i)
                ps = self.base(variant, metric, dimension, value, "post_stratified", srm)
                ps.update(common, mean_control=p["mean_control"], mean_treatment=p["mean_treatment"],
                          abs_effect=p["abs_effect"], rel_lift=p["rel_lift"], abs_ci_low=p["abs_ci_low"],
                          abs_ci_high=p["abs_ci_high"], p_value=p["p_value"], rel_ci_low=p["rel_ci_low"],
                          rel_ci_high=p["rel_ci_high"], rel_p_value=p["rel_p_value"],
                          test_p_value=p["rel_p_value" if test.margin else "p_value"], reason=p["reason"],
                          cuped_variance_reduction=None, strata=self.o.stratify_by,
                          strata_variance_reduction=p["variance_reduction"], **declared)
                rows.append(ps)
            if self.o.bayesian or self.prior is not None:
                bayes = self.base(variant, metric, dimension, value, "bayesian", srm)
                scale = "abs" if r.get("bayes_scale") == "absolute" else "rel"   # the prior's scale
                bayes.update(common, chance_to_win=r.get("chance_to_win"), expected_loss=r.get("expected_loss"),
                             **{f"{scale}_ci_low": r.get("bayes_ci_low"), f"{scale}_ci_high": r.get("bayes_ci_high")})
                rows.append(bayes)
        return rows

    def result_rows(self, srm: dict) -> list[dict[str, Any]]:
        if not self.treatments or not self.metrics:
            return []
        overall = [(t, "(all)") for t in self.treatments]
        rows = [row for m in self.metrics for row in self.rows_for(m, "overall", overall, srm)]
        for dim in sorted(d for d in self.dimension_values if d != "overall"):
            cells = [(t, v) for v in self.dimension_values[dim] for t in self.treatments]
            rows += [row for m in self.metrics for row in self.rows_for(m, dim, cells, srm)]
        families: dict[tuple, list[dict[str, Any]]] = {}
        for row in rows:
            if row["dimension"] == "overall":
                if row["role"] == "guardrail" or row["analysis"] == "bayesian":
                    continue
                key = (row["analysis"], row["role"], "")
            else:
                key = (row["analysis"], "dimension", f"{row['dimension']}:{row['metric']}")
            families.setdefault(key, []).append(row)
        for (_, role, dim), members in families.items():
            method = {"primary": self.o.goal_correction, "secondary": self.o.secondary_correction}.get(
                role, self.o.dimension_correction)
            family = role if role != "dimension" else f"dimension:{dim.split(':')[0]}"
            p = np.array([np.nan if r["test_p_value"] is None else r["test_p_value"] for r in members])
            adjusted = adjust(p, method)
            level = interval_alpha(p, method, self.d.alpha)
            for r, pa in zip(members, adjusted):
                r.update(family=family, correction=method, p_adjusted=_num(pa),
                         significant=bool(np.isfinite(pa) and pa < self.d.alpha))
                if r["analysis"] == "fixed" and "engine" in r:
                    r.update(adjusted_intervals(r, level))
        for row in rows:
            if row["role"] == "guardrail" and row["dimension"] == "overall":
                row.update(family="guardrail", correction="none")
            for k, v in row.items():
                if isinstance(v, float) and not np.isfinite(v):
                    row[k] = None
        return rows

    def sequence_rows(self) -> list[dict[str, Any]]:
        """The goal metric's always-valid confidence sequence per day (cumulative sums, carried forward)."""
        by_arm = self.e.cumulative.get(self.primary, {})
        if not self.treatments or not by_arm or not self.o.sequential:
            return []
        days = sorted({day for series in by_arm.values() for day in series})
        cells, pairs, thetas = [], [], []
        latest: dict[str, tuple] = {}
        for day in days:
            for arm, series in by_arm.items():
                if day in series:
                    latest[arm] = series[day]
            slope = float(pooled_theta([_stack([latest.get(a, NO_STATS)]) for a in [self.d.control, *self.treatments]],
                                       self.e.metric_types[self.primary])[0])
            for t in self.treatments:
                cells.append((day, t))
                pairs.append((latest.get(self.d.control, NO_STATS), latest.get(t, NO_STATS)))
                thetas.append(slope)
        res = self.compare(pairs, self.primary, thetas if len(self.treatments) > 1 else None)
        out = []
        for i, (day, variant) in enumerate(cells):
            r = res.row(i)
            out.append({
                "experiment_id": self.d.experiment_id, "variant": variant, "control": self.d.control,
                "metric": self.primary, "analysis_date": day, "n_control": int(res.n_control[i]),
                "n_treatment": int(res.n_treatment[i]), "abs_effect": r["abs_effect"],
                "abs_cs_low": r.get("seq_ci_low"), "abs_cs_high": r.get("seq_ci_high"), "rel_lift": r["rel_lift"],
                "rel_cs_low": r.get("seq_rel_ci_low"), "rel_cs_high": r.get("seq_rel_ci_high"),
                "always_valid_p_value": r.get("seq_p_value"), "reason": r["reason"], "computed_at": self.computed_at,
            })
        return out


def analyse(definition: Definition, evidence: Evidence, options: Options | None = None,
            computed_at: datetime | None = None) -> Analysis:
    """The analysis of one experiment (see the module's docstring)."""
    from experiments.report_pages import verdict_line

    options = options or Options()
    builder = _Builder(definition, evidence, options, computed_at)
    srm = srm_health(definition, evidence.units, evidence.invalid_units)
    if srm["status"] in ("fail", "warn"):
        srm["localisation"] = [found.as_dict() for found in localise(srm_counts(evidence, builder.primary,
                                                                                 list(srm["weights"])),
                                                                      srm["weights"])[:5]]
    rows = builder.result_rows(srm)
    analysis = Analysis(definition, builder.treatments, builder.metrics, builder.primary, srm, rows,
                        builder.sequence_rows(), builder.notes, options, evidence.as_of, computed_at,
                        exclusions=dict(evidence.exclusions))
    goal = analysis.overall("primary")
    if srm["status"] == "fail":
        analysis.status = "srm_problem"
    elif not goal or all(r["n_treatment"] == 0 or r["n_control"] == 0 for r in goal):
        analysis.status = "no_data"
    elif any(r["significant"] for r in goal):
        analysis.status = "significant"
    else:
        analysis.status = "inconclusive"
    analysis.verdict = verdict_line(analysis.as_page())
    return analysis
