"""Analyse every experiment in the warehouse: ``experiments.results`` plus a report per experiment.

``write_results(conn, settings)`` reads the sufficient statistics in ``marts.fct_experiment_stats``
(and the unit counts per arm in ``marts.fct_experiment_units`` for the sample-ratio check) on an
open read-write connection to the build database, runs the stats engine, replaces those
experiments' rows in ``experiments.results`` and ``experiments.confidence_sequences`` in one
transaction, and writes ``NUDGELAB_HOME/reports/<experiment_id>.md`` / ``.html`` (plus the two SVG
charts the Markdown links to). Readers only ever see it after the caller publishes the build.

The results table is long: one row per experiment × variant × metric × analysis × dimension ×
dimension value, where analysis is ``fixed`` (fixed-horizon Welch, CUPED where it narrows the
interval), ``sequential`` (always-valid confidence sequence at the latest day) or ``bayesian``
(flat-prior normal posterior on the relative lift). Dimension breakdowns have ``fixed`` rows only.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import duckdb
import numpy as np

from experiments.compare import ComparisonResult, compare
from experiments.guardrails import non_inferiority
from experiments.multiple import adjust
from experiments.power import mde
from experiments.srm import srm_check
from experiments.statistics import SampleStats, moments
from warehouse.settings import Settings
from warehouse.sql import one

# Experiment definitions are not stored in the warehouse yet (a later issue stores them); until
# then these mappings say what the generator plants. Callers may pass their own to write_results.
PLANNED_WEIGHTS: dict[str, dict[str, float]] = {"exp_cart_holdout": {"holdout": 0.1, "treatment": 0.9}}
CONTROLS: dict[str, str] = {
    "exp_promo_wording": "limited_time_offer",
    "exp_bill_personalisation": "generic",
    "exp_cart_holdout": "holdout",
    "exp_parcel_aa": "a1",
}
PRIMARY_METRICS: dict[str, str] = {
    "exp_promo_wording": "click_through",
    "exp_parcel_aa": "click_through",
    "exp_bill_personalisation": "converted",
    "exp_cart_holdout": "converted",
}
# Click experiments must not cost conversions or revenue: non-inferiority at a relative margin.
GUARDRAILS: dict[str, tuple[str, ...]] = {
    "exp_promo_wording": ("conversions", "revenue"),
    "exp_parcel_aa": ("conversions", "revenue"),
}
DEFAULT_PRIMARY_METRIC = "converted"
GUARDRAIL_MARGIN = 0.02
ALPHA = 0.05
POWER = 0.8
PRIMARY_CORRECTION = "holm"
SECONDARY_CORRECTION = "holm"
DIMENSION_CORRECTION = "bh"
ANALYSES = ("fixed", "sequential", "bayesian")

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
    p_adjusted DOUBLE,
    significant BOOLEAN,
    chance_to_win DOUBLE,
    expected_loss DOUBLE,
    cuped_variance_reduction DOUBLE,
    mde_rel DOUBLE,
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
SEQUENCES_DDL = """
CREATE TABLE IF NOT EXISTS experiments.confidence_sequences (
    experiment_id VARCHAR NOT NULL,
    variant VARCHAR NOT NULL,
    control VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    analysis_date DATE NOT NULL,
    n_control BIGINT,
    n_treatment BIGINT,
    abs_effect DOUBLE,
    abs_cs_low DOUBLE,
    abs_cs_high DOUBLE,
    rel_lift DOUBLE,
    rel_cs_low DOUBLE,
    rel_cs_high DOUBLE,
    always_valid_p_value DOUBLE,
    reason VARCHAR NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL
)
"""
RESULT_COLUMNS = tuple(re.findall(r"^ {4}(\w+) [A-Z]", RESULTS_DDL, flags=re.M))
SEQUENCE_COLUMNS = tuple(re.findall(r"^ {4}(\w+) [A-Z]", SEQUENCES_DDL, flags=re.M))

STAT_FIELDS = ("n", "sum_x", "sum_x2", "sum_y", "sum_y2", "sum_xy")
TOTALS_SQL = """
select experiment_id, variant, metric, any_value(metric_type) as metric_type, dimension, dimension_value,
       sum(n)::double, sum(sum_x)::double, sum(sum_x2)::double, sum(sum_y)::double, sum(sum_y2)::double,
       sum(sum_xy)::double
from marts.fct_experiment_stats
where scope = 'daily' and list_contains(?, experiment_id)
group by experiment_id, variant, metric, dimension, dimension_value
"""
CUMULATIVE_SQL = """
select experiment_id, variant, metric, analysis_date,
       n::double, sum_x::double, sum_x2::double, sum_y::double, sum_y2::double, sum_xy::double
from marts.fct_experiment_stats
where scope = 'cumulative' and dimension = 'overall' and list_contains(?, experiment_id)
"""
AS_OF_SQL = """
select experiment_id, max(analysis_date) from marts.fct_experiment_stats
where list_contains(?, experiment_id) group by experiment_id
"""
UNITS_SQL = """
select experiment_id, variant, count(*) filter (where is_valid_unit), count(*) filter (where not is_valid_unit)
from marts.fct_experiment_units
where list_contains(?, experiment_id)
group by experiment_id, variant
"""
KNOWN_SQL = "select distinct experiment_id from marts.fct_experiment_stats order by experiment_id"

NO_STATS = (0.0,) * 6


@dataclass
class ExperimentSummary:
    """What one experiment's analysis produced: its verdict, SRM status and where its report is."""

    experiment_id: str
    verdict: str
    srm_status: str
    rows: int
    markdown_path: Path
    html_path: Path


@dataclass
class ResultsSummary:
    """What ``write_results`` did: rows written per table, and one summary per experiment."""

    experiments: list[ExperimentSummary] = field(default_factory=list)
    result_rows: int = 0
    sequence_rows: int = 0
    computed_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        out = asdict(self)
        out["computed_at"] = self.computed_at.isoformat() if self.computed_at else None
        for e in out["experiments"]:
            e["markdown_path"], e["html_path"] = str(e["markdown_path"]), str(e["html_path"])
        return out


def known_experiments(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Experiment ids present in marts.fct_experiment_stats (sorted)."""
    return [r[0] for r in conn.execute(KNOWN_SQL).fetchall()]


def _computed_at(conn: duckdb.DuckDBPyConnection) -> datetime:
    """When the audited build these results come from was completed, so re-running on one build changes nothing."""
    try:
        row = one(conn, "SELECT changed_at FROM meta.build_state WHERE audited")
    except duckdb.CatalogException:
        row = None
    stamp = row[0] if row and row[0] is not None else datetime.now(timezone.utc)
    return stamp.astimezone(timezone.utc) if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _num(value: Any) -> float | None:
    """A finite float, or None (the table stores NULL, never NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _stack(stats: Sequence[tuple[float, ...]]) -> SampleStats:
    """Per-comparison sums stacked into one vectorised SampleStats."""
    cols = np.array(stats, dtype=float).reshape(len(stats), 6)
    return SampleStats(*(cols[:, k] for k in range(6)))


def _compare(pairs: Sequence[tuple[tuple, tuple]], metric_type: str, alpha: float) -> ComparisonResult:
    """Every view of the engine for (control sums, treatment sums) pairs; CUPED for proportion and mean metrics."""
    return compare(_stack([p[0] for p in pairs]), _stack([p[1] for p in pairs]), metric_type, alpha=alpha,
                   cuped=metric_type != "ratio", sequential=True, bayesian=True)


def _mde_rel(control: tuple, treatment: tuple, metric_type: str, alpha: float) -> float | None:
    """Relative lift (upwards) the two-sided test detects with 80 % power at the current n (unadjusted test).

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
                        relative=True)
        else:
            if variance <= 0:
                return None
            value = mde(n_c, baseline=abs(baseline), metric_type="mean", std=np.sqrt(variance), alpha=alpha,
                        power=POWER, ratio=n_t / n_c, relative=True)
    except ValueError:
        return None
    return _num(value)


def _safe_name(experiment_id: str) -> str:
    """A file name for an experiment id (anything outside [A-Za-z0-9_.-] becomes _)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", experiment_id).lstrip(".") or "_"


def _write_atomic(path: Path, text: str) -> None:
    """Write to a temporary name beside the target, then rename over it (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class _Experiment:
    """One experiment's inputs (sums per variant × metric × dimension value, unit counts) and its analysis."""

    def __init__(self, experiment_id: str, totals: list[tuple], cumulative: list[tuple], units: list[tuple],
                 as_of: date | None, planned_weights: Mapping[str, Mapping[str, float]], alpha: float,
                 computed_at: datetime) -> None:
        self.id, self.alpha, self.as_of, self.computed_at = experiment_id, alpha, as_of, computed_at
        self.sums: dict[tuple[str, str, str, str], tuple] = {}
        self.metric_types: dict[str, str] = {}
        self.dimension_values: dict[str, list[str]] = {}
        for exp, variant, metric, mtype, dim, value, *stats in totals:
            self.sums[(variant, metric, dim, value)] = tuple(stats)
            self.metric_types[metric] = mtype
            self.dimension_values.setdefault(dim, [])
            if value not in self.dimension_values[dim]:
                self.dimension_values[dim].append(value)
        for dim in self.dimension_values:
            self.dimension_values[dim].sort(key=lambda v: (v == "(other)", v))
        self.valid_units = {v: int(valid) for _, v, valid, _ in units}
        self.invalid_units = sum(int(invalid) for *_, invalid in units)
        variants = set(self.valid_units) | {k[0] for k in self.sums}
        self.notes: list[str] = []
        control = CONTROLS.get(experiment_id)
        if control not in variants:
            control = sorted(variants)[0]
            self.notes.append(f"No control is defined for this experiment; '{control}' (first by name) is taken as control.")
        self.control = control
        self.treatments = sorted(v for v in variants if v != control)
        self.metrics = sorted(self.metric_types)
        primary = PRIMARY_METRICS.get(experiment_id, DEFAULT_PRIMARY_METRIC)
        self.primary = primary if primary in self.metric_types else (self.metrics[0] if self.metrics else primary)
        self.guardrails = tuple(m for m in GUARDRAILS.get(experiment_id, ()) if m in self.metric_types and m != self.primary)
        self.cumulative = [r for r in cumulative if r[2] == self.primary]
        self.srm = self._srm(planned_weights.get(experiment_id))

    def role(self, metric: str) -> str:
        """primary (the goal metric), guardrail, or secondary."""
        return "primary" if metric == self.primary else "guardrail" if metric in self.guardrails else "secondary"

    def _srm(self, planned: Mapping[str, float] | None) -> dict[str, Any]:
        """χ² of valid units per arm against the planned split (equal unless planned weights name every arm)."""
        arms = [self.control, *self.treatments]
        reason = ""
        if planned and all(a in planned for a in arms):
            weights, source = [float(planned[a]) for a in arms], "planned"
        else:
            weights, source = [1.0] * len(arms), "equal"
            if planned:
                missing = ", ".join(a for a in arms if a not in planned)
                reason = f"planned weights name no weight for {missing}; an equal split is assumed"
        counts = [self.valid_units.get(a, 0) for a in arms]
        if len(arms) < 2:
            return {"counts": dict(zip(arms, counts)), "weights": {a: 1.0 for a in arms}, "weights_source": source,
                    "p_value": None, "status": "ok", "reason": "only one arm: nothing to check",
                    "invalid_units": self.invalid_units}
        result = srm_check(counts, weights)
        total = sum(weights)
        return {"counts": dict(zip(arms, counts)), "weights": {a: w / total for a, w in zip(arms, weights)},
                "weights_source": source, "p_value": _num(result.p_value), "status": result.status,
                "reason": "; ".join(r for r in (result.reason, reason) if r), "invalid_units": self.invalid_units}

    def _base(self, variant: str, metric: str, dimension: str, value: str, analysis: str) -> dict[str, Any]:
        row = dict.fromkeys(RESULT_COLUMNS)
        row.update(experiment_id=self.id, variant=variant, control=self.control, metric=metric,
                   metric_type=self.metric_types[metric], role=self.role(metric), analysis=analysis,
                   dimension=dimension, dimension_value=value, srm_p_value=self.srm["p_value"],
                   srm_status=self.srm["status"], as_of_date=self.as_of, computed_at=self.computed_at)
        return row

    def _rows_for(self, metric: str, dimension: str, cells: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Rows (every analysis for overall, fixed for breakdowns) of one metric over (variant, value) cells."""
        mtype = self.metric_types[metric]
        pairs = [(self.sums.get((self.control, metric, dimension, v), NO_STATS),
                  self.sums.get((t, metric, dimension, v), NO_STATS)) for t, v in cells]
        res = _compare(pairs, mtype, self.alpha)
        guard = non_inferiority(res, GUARDRAIL_MARGIN) if dimension == "overall" and self.role(metric) == "guardrail" else None
        rows = []
        for i, (variant, value) in enumerate(cells):
            r = res.row(i)
            common = {
                "n_control": int(res.n_control[i]), "n_treatment": int(res.n_treatment[i]),
                "mean_control": r["mean_control"], "mean_treatment": r["mean_treatment"],
                "abs_effect": r["abs_effect"], "rel_lift": r["rel_lift"],
                "cuped_variance_reduction": r.get("variance_reduction"), "reason": r["reason"],
            }
            fixed = self._base(variant, metric, dimension, value, "fixed")
            fixed.update(common, abs_ci_low=r["abs_ci_low"], abs_ci_high=r["abs_ci_high"], p_value=r["p_value"],
                         rel_ci_low=r["rel_ci_low"], rel_ci_high=r["rel_ci_high"], rel_p_value=r["rel_p_value"])
            if guard is not None:
                fixed.update(guardrail_margin=GUARDRAIL_MARGIN, noninferiority_p_value=_num(guard.p_value[i]),
                             guardrail_passed=bool(guard.passed[i]))
            rows.append(fixed)
            if dimension != "overall":
                continue
            fixed["mde_rel"] = _mde_rel(*pairs[i], mtype, self.alpha)
            seq = self._base(variant, metric, dimension, value, "sequential")
            seq.update(common, abs_ci_low=r.get("seq_ci_low"), abs_ci_high=r.get("seq_ci_high"),
                       p_value=r.get("seq_p_value"), rel_ci_low=r.get("seq_rel_ci_low"),
                       rel_ci_high=r.get("seq_rel_ci_high"), rel_p_value=r.get("seq_rel_p_value"))
            bayes = self._base(variant, metric, dimension, value, "bayesian")
            bayes.update(common, rel_ci_low=r.get("bayes_ci_low"), rel_ci_high=r.get("bayes_ci_high"),
                         chance_to_win=r.get("chance_to_win"), expected_loss=r.get("expected_loss"))
            rows += [seq, bayes]
        return rows

    def result_rows(self) -> list[dict[str, Any]]:
        """All rows of this experiment, with the families corrected (Holm for goal and secondary, BH per dimension)."""
        if not self.treatments:
            return []
        overall = [(t, "(all)") for t in self.treatments]
        rows = [row for m in self.metrics for row in self._rows_for(m, "overall", overall)]
        for dim in sorted(d for d in self.dimension_values if d != "overall"):
            cells = [(t, v) for v in self.dimension_values[dim] for t in self.treatments]
            rows += [row for m in self.metrics for row in self._rows_for(m, dim, cells)]
        families: dict[tuple, list[dict[str, Any]]] = {}
        for row in rows:
            if row["dimension"] == "overall":
                if row["role"] == "guardrail" or row["analysis"] == "bayesian":
                    continue
                key = (row["analysis"], row["role"], "")
            else:
                key = (row["analysis"], "dimension", f"{row['dimension']}:{row['metric']}")
            families.setdefault(key, []).append(row)
        for (analysis, role, dim), members in families.items():
            method = {"primary": PRIMARY_CORRECTION, "secondary": SECONDARY_CORRECTION}.get(role, DIMENSION_CORRECTION)
            family = role if role != "dimension" else f"dimension:{dim.split(':')[0]}"
            p = np.array([np.nan if r["p_value"] is None else r["p_value"] for r in members])
            adjusted = adjust(p, method)
            for r, pa in zip(members, adjusted):
                r.update(family=family, correction=method, p_adjusted=_num(pa),
                         significant=bool(np.isfinite(pa) and pa < self.alpha))
        for row in rows:
            if row["role"] == "guardrail" and row["dimension"] == "overall":
                row.update(family="guardrail", correction="none")
            for k, v in row.items():
                if isinstance(v, float) and not np.isfinite(v):
                    row[k] = None
        return rows

    def sequence_rows(self) -> list[dict[str, Any]]:
        """The primary metric's always-valid confidence sequence per day (cumulative sums, carried forward)."""
        if not self.treatments or not self.cumulative:
            return []
        by_arm: dict[str, dict[date, tuple]] = {}
        for _, variant, _, day, *stats in self.cumulative:
            by_arm.setdefault(variant, {})[day] = tuple(stats)
        days = sorted({r[3] for r in self.cumulative})
        cells, pairs = [], []
        latest: dict[str, tuple] = {}
        for day in days:
            for arm, series in by_arm.items():
                if day in series:
                    latest[arm] = series[day]
            for t in self.treatments:
                cells.append((day, t))
                pairs.append((latest.get(self.control, NO_STATS), latest.get(t, NO_STATS)))
        res = _compare(pairs, self.metric_types[self.primary], self.alpha)
        out = []
        for i, (day, variant) in enumerate(cells):
            r = res.row(i)
            out.append({
                "experiment_id": self.id, "variant": variant, "control": self.control, "metric": self.primary,
                "analysis_date": day, "n_control": int(res.n_control[i]), "n_treatment": int(res.n_treatment[i]),
                "abs_effect": r["abs_effect"], "abs_cs_low": r.get("seq_ci_low"), "abs_cs_high": r.get("seq_ci_high"),
                "rel_lift": r["rel_lift"], "rel_cs_low": r.get("seq_rel_ci_low"),
                "rel_cs_high": r.get("seq_rel_ci_high"), "always_valid_p_value": r.get("seq_p_value"),
                "reason": r["reason"], "computed_at": self.computed_at,
            })
        return out


def _fetch(conn: duckdb.DuckDBPyConnection, sql: str, ids: list[str]) -> dict[str, list[tuple]]:
    """Rows of a query grouped by their first column (the experiment id)."""
    out: dict[str, list[tuple]] = {i: [] for i in ids}
    for row in conn.execute(sql, [ids]).fetchall():
        out[row[0]].append(row)
    return out


def _insert(conn: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Insert dict rows (in column order) with one prepared statement."""
    if rows:
        marks = ", ".join("?" for _ in columns)
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                         [[r[c] for c in columns] for r in rows])


def analyse(conn: duckdb.DuckDBPyConnection, experiment_ids: Iterable[str] | None = None, *,
            planned_weights: Mapping[str, Mapping[str, float]] | None = None, alpha: float = ALPHA,
            computed_at: datetime | None = None) -> list[dict[str, Any]]:
    """Analyse experiments from the marts without writing anything: one page dict per experiment.

    Each page holds ``rows`` (the experiments.results rows), ``sequence`` (the confidence sequence
    rows) and what the report shows (control, primary metric, guardrails, SRM, notes).
    """
    known = known_experiments(conn)
    ids = known if experiment_ids is None else list(dict.fromkeys(experiment_ids))
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"unknown experiment {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(known) or 'none — the marts hold no experiment'})")
    weights = PLANNED_WEIGHTS if planned_weights is None else planned_weights
    stamp = computed_at or _computed_at(conn)
    totals, cumulative = _fetch(conn, TOTALS_SQL, ids), _fetch(conn, CUMULATIVE_SQL, ids)
    units, as_of = _fetch(conn, UNITS_SQL, ids), {r[0]: r[1] for r in conn.execute(AS_OF_SQL, [ids]).fetchall()}
    pages = []
    for exp_id in ids:
        exp = _Experiment(exp_id, totals[exp_id], cumulative[exp_id], units[exp_id], as_of.get(exp_id), weights,
                          alpha, stamp)
        pages.append({
            "experiment_id": exp_id, "control": exp.control, "treatments": exp.treatments, "primary": exp.primary,
            "guardrails": list(exp.guardrails), "alpha": alpha, "as_of_date": exp.as_of, "computed_at": stamp,
            "srm": exp.srm, "notes": exp.notes, "rows": exp.result_rows(), "sequence": exp.sequence_rows(),
            "margin": GUARDRAIL_MARGIN, "power": POWER,
        })
    return pages


def write_results(conn: duckdb.DuckDBPyConnection, settings: Settings, experiment_ids: Iterable[str] | None = None,
                  *, planned_weights: Mapping[str, Mapping[str, float]] | None = None,
                  alpha: float = ALPHA) -> ResultsSummary:
    """Analyse experiments (all when None) and replace their rows in experiments.results, then write the reports.

    ``conn`` is an open read-write connection to the build database (``connect_build``); it stays
    open. The tables change in one transaction; with ``experiment_ids=None`` the tables are
    replaced as a whole (experiments no longer in the marts disappear). Re-running on the same
    build gives the same rows and files. Raises ValueError for an id the marts do not hold.
    """
    from experiments.report_pages import to_html, to_markdown, to_svgs, verdict_line

    pages = analyse(conn, experiment_ids, planned_weights=planned_weights, alpha=alpha)
    ids = [p["experiment_id"] for p in pages]
    results = [r for p in pages for r in p["rows"]]
    sequences = [r for p in pages for r in p["sequence"]]
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("CREATE SCHEMA IF NOT EXISTS experiments")
        conn.execute(RESULTS_DDL)
        conn.execute(SEQUENCES_DDL)
        for table in ("experiments.results", "experiments.confidence_sequences"):
            if experiment_ids is None:
                conn.execute(f"DELETE FROM {table}")
            else:
                conn.execute(f"DELETE FROM {table} WHERE list_contains(?, experiment_id)", [ids])
        _insert(conn, "experiments.results", RESULT_COLUMNS, results)
        _insert(conn, "experiments.confidence_sequences", SEQUENCE_COLUMNS, sequences)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise

    folder = settings.reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    summary = ResultsSummary(result_rows=len(results), sequence_rows=len(sequences),
                             computed_at=pages[0]["computed_at"] if pages else None)
    for page in pages:
        name = _safe_name(page["experiment_id"])
        page["verdict"] = verdict_line(page)
        svgs = to_svgs(page)
        page["svg_files"] = {kind: f"{name}.{kind}.svg" for kind in svgs}
        for kind, svg in svgs.items():
            _write_atomic(folder / page["svg_files"][kind], svg)
        md_path, html_path = folder / f"{name}.md", folder / f"{name}.html"
        _write_atomic(md_path, to_markdown(page))
        _write_atomic(html_path, to_html(page, svgs))
        summary.experiments.append(ExperimentSummary(page["experiment_id"], page["verdict"], page["srm"]["status"],
                                                     len(page["rows"]), md_path, html_path))
    return summary
