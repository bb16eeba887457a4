"""Analyse every experiment in the warehouse: ``experiments.results`` plus a report per experiment.

``write_results(conn, settings)`` reads each experiment's definition in ``marts.dim_experiments``,
its sufficient statistics in ``marts.fct_experiment_stats`` and its unit counts per arm in
``marts.fct_experiment_units`` (for the sample-ratio check) on an open read-write connection to the
build database, runs the one analysis (``experiments.analysis``), replaces those experiments' rows
in ``experiments.results``, ``experiments.confidence_sequences`` and ``experiments.summary`` in
one transaction, and writes ``NUDGELAB_HOME/reports/<experiment_id>.md`` / ``.html`` (plus the two
SVG charts the Markdown links to). Readers only ever see it after the caller publishes the build.

An experiment with data but no definition is never analysed with a guessed control: it gets one
row per arm × metric with its observed size and mean and the reason ``no_definition``, and its
summary says what to do.

The results table is long: one row per experiment × variant × metric × analysis × dimension ×
dimension value, where analysis is ``fixed`` (fixed-horizon Welch, CUPED where it narrows the
interval), ``sequential`` (always-valid confidence sequence at the latest day) or ``bayesian``
(flat-prior normal posterior on the relative lift). Dimension breakdowns have ``fixed`` rows only.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import duckdb
import numpy as np

from experiments.analysis import RESULT_COLUMNS, RESULTS_DDL, Analysis, Evidence, analyse
from experiments.definition import Definition, from_dim_row
from experiments.statistics import SampleStats, moments
from warehouse.settings import Settings
from warehouse.sql import one, rows

NO_DEFINITION = "no_definition"

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
SEQUENCE_COLUMNS = tuple(re.findall(r"^ {4}(\w+) [A-Z]", SEQUENCES_DDL, flags=re.M))

STAT_FIELDS = ("n", "sum_x", "sum_x2", "sum_y", "sum_y2", "sum_xy", "sum_z", "sum_z2", "sum_xz", "sum_yz")
TOTALS_SQL = """
select experiment_id, variant, metric, any_value(metric_type) as metric_type, dimension, dimension_value,
       sum(n)::double, sum(sum_x)::double, sum(sum_x2)::double, sum(sum_y)::double, sum(sum_y2)::double,
       sum(sum_xy)::double, sum(sum_z)::double, sum(sum_z2)::double, sum(sum_xz)::double, sum(sum_yz)::double
from marts.fct_experiment_stats
where scope = 'daily' and list_contains(?, experiment_id)
group by experiment_id, variant, metric, dimension, dimension_value
"""
QUANTILES_SQL = """
select experiment_id, variant, metric, bucket, units::double from marts.fct_experiment_quantiles
where list_contains(?, experiment_id)
"""
CUMULATIVE_SQL = """
select experiment_id, variant, metric, analysis_date,
       n::double, sum_x::double, sum_x2::double, sum_y::double, sum_y2::double, sum_xy::double,
       sum_z::double, sum_z2::double, sum_xz::double, sum_yz::double
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
KNOWN_SQL = """
select experiment_id from marts.fct_experiment_stats
union
select experiment_id from marts.dim_experiments
order by experiment_id
"""
DEFINITIONS_SQL = "select * from marts.dim_experiments where has_definition and list_contains(?, experiment_id)"
SUMMARY_DDL = """
CREATE TABLE IF NOT EXISTS experiments.summary (
    experiment_id VARCHAR NOT NULL,
    name VARCHAR,
    hypothesis VARCHAR,
    owner VARCHAR,
    campaign_id VARCHAR,
    definition_status VARCHAR,
    result_status VARCHAR NOT NULL,
    control VARCHAR,
    treatments VARCHAR,
    goal_metric VARCHAR,
    goal_variant VARCHAR,
    goal_rel_lift DOUBLE,
    goal_rel_ci_low DOUBLE,
    goal_rel_ci_high DOUBLE,
    goal_p_adjusted DOUBLE,
    goal_significant BOOLEAN,
    srm_status VARCHAR,
    srm_p_value DOUBLE,
    srm_localisation VARCHAR,
    units BIGINT,
    start_at TIMESTAMPTZ,
    end_at TIMESTAMPTZ,
    as_of_date DATE,
    verdict VARCHAR NOT NULL,
    report_html VARCHAR,
    report_markdown VARCHAR,
    computed_at TIMESTAMPTZ NOT NULL
)
"""
SUMMARY_COLUMNS = tuple(re.findall(r"^ {4}(\w+) [A-Z]", SUMMARY_DDL, flags=re.M))

NO_STATS = (0.0,) * 6


@dataclass
class ExperimentSummary:
    """What one experiment's analysis produced: its status, verdict, SRM status and where its report is."""

    experiment_id: str
    status: str
    verdict: str
    srm_status: str
    rows: int
    markdown_path: Path | None
    html_path: Path | None


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
            for key in ("markdown_path", "html_path"):
                e[key] = None if e[key] is None else str(e[key])
        return out


def known_experiments(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Experiments the marts hold statistics or a definition for (sorted)."""
    return [r[0] for r in rows(conn, KNOWN_SQL)]


def _computed_at(conn: duckdb.DuckDBPyConnection) -> datetime:
    """When the audited build these results come from was completed, so re-running on one build changes nothing."""
    try:
        row = one(conn, "SELECT changed_at FROM meta.build_state WHERE audited")
    except duckdb.CatalogException:
        row = None
    stamp = row[0] if row and row[0] is not None else datetime.now(timezone.utc)
    return stamp.astimezone(timezone.utc) if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _safe_name(experiment_id: str) -> str:
    """A file name for an experiment id (anything outside [A-Za-z0-9_.-] becomes _)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", experiment_id).lstrip(".") or "_"


def _write_atomic(path: Path, text: str) -> None:
    """Write to a temporary name beside the target, then rename over it (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _grouped(conn: duckdb.DuckDBPyConnection, sql: str, ids: list[str]) -> dict[str, list[tuple]]:
    """Rows of a query grouped by their first column (the experiment id)."""
    out: dict[str, list[tuple]] = {i: [] for i in ids}
    for row in rows(conn, sql, [ids]):
        out[row[0]].append(row)
    return out


def _definitions(conn: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, Definition]:
    try:
        cursor = conn.execute(DEFINITIONS_SQL, [ids])
        names = [d[0] for d in cursor.description]
        found = cursor.fetchall()
    except duckdb.CatalogException:  # marts built before definitions existed
        return {}
    return {r[0]: from_dim_row(dict(zip(names, r))) for r in found}


def _histograms(found: list[tuple]) -> dict[tuple[str, str], np.ndarray]:
    """(variant, metric) → counts per log bucket, from marts.fct_experiment_quantiles rows."""
    if not found:
        return {}
    width = max(int(r[3]) for r in found) + 1
    out: dict[tuple[str, str], np.ndarray] = {}
    for _, variant, metric, bucket, count in found:
        out.setdefault((variant, metric), np.zeros(width))[int(bucket)] = count
    return out


def _evidence(totals: list[tuple], cumulative: list[tuple], units: list[tuple], as_of: date | None,
              histograms: list[tuple] | None = None) -> Evidence:
    metric_types: dict[str, str] = {}
    sums: dict[tuple[str, str, str, str], tuple] = {}
    for _, variant, metric, mtype, dim, value, *stats in totals:
        sums[(variant, metric, dim, value)] = tuple(stats)
        metric_types[metric] = mtype
    running: dict[str, dict[str, dict[date, tuple]]] = {}
    for _, variant, metric, day, *stats in cumulative:
        running.setdefault(metric, {}).setdefault(variant, {})[day] = tuple(stats)
    return Evidence(metric_types, sums, {v: int(valid) for _, v, valid, _ in units},
                    invalid_units=sum(int(invalid) for *_, invalid in units), cumulative=running, as_of=as_of,
                    histograms=_histograms(histograms or []))


def _undefined_rows(experiment_id: str, evidence: Evidence, computed_at: datetime) -> list[dict[str, Any]]:
    """What can be said without a definition: each arm's size and mean per metric, and why no more."""
    out = []
    for (variant, metric, dim, value), stats in sorted(evidence.sums.items()):
        if dim != "overall":
            continue
        arm = moments(SampleStats(*(np.array([v], dtype=float) for v in stats)), evidence.metric_types[metric])  # type: ignore[arg-type]
        row = dict.fromkeys(RESULT_COLUMNS)
        mean = float(arm.mean[0]) if np.isfinite(arm.mean[0]) else None
        row.update(experiment_id=experiment_id, variant=variant, control="(none)", metric=metric,
                   metric_type=evidence.metric_types[metric], role="undefined", analysis="fixed", dimension=dim,
                   dimension_value=value, n_treatment=int(stats[0]), mean_treatment=mean, reason=NO_DEFINITION,
                   as_of_date=evidence.as_of, computed_at=computed_at)
        out.append(row)
    return out


def analyse_warehouse(conn: duckdb.DuckDBPyConnection, experiment_ids: Iterable[str] | None = None,
                      computed_at: datetime | None = None) -> tuple[list[Analysis], dict[str, Evidence]]:
    """Analyse experiments from the marts without writing anything: the defined ones, and the
    evidence of those that have data but no definition."""
    known = known_experiments(conn)
    ids = known if experiment_ids is None else list(dict.fromkeys(experiment_ids))
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"unknown experiment {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(known) or 'none — the marts hold no experiment'})")
    stamp = computed_at or _computed_at(conn)
    totals, cumulative = _grouped(conn, TOTALS_SQL, ids), _grouped(conn, CUMULATIVE_SQL, ids)
    units, as_of = _grouped(conn, UNITS_SQL, ids), {r[0]: r[1] for r in rows(conn, AS_OF_SQL, [ids])}
    has_quantiles = bool(rows(conn, "select count(*) from duckdb_tables() where schema_name = 'marts' "
                                    "and table_name = 'fct_experiment_quantiles'")[0][0])
    histograms = _grouped(conn, QUANTILES_SQL, ids) if has_quantiles else {i: [] for i in ids}
    definitions = _definitions(conn, ids)
    analyses, undefined = [], {}
    for exp_id in ids:
        evidence = _evidence(totals[exp_id], cumulative[exp_id], units[exp_id], as_of.get(exp_id), histograms[exp_id])
        if exp_id in definitions:
            analyses.append(analyse(definitions[exp_id], evidence, computed_at=stamp))
        else:
            undefined[exp_id] = evidence
    return analyses, undefined


def _add_new_columns(conn: duckdb.DuckDBPyConnection, ddl: str) -> None:
    """A table written by an older nudgelab gets the columns added since (NULL in its old rows)."""
    table = re.search(r"CREATE TABLE IF NOT EXISTS ([\w.]+)", ddl).group(1)
    schema, name = table.split(".")
    have = {r[0] for r in conn.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
                                       [schema, name]).fetchall()}
    for column, kind in re.findall(r"^ {4}(\w+) ([A-Z]+)", ddl, flags=re.M):
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _insert(conn: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], records: list[dict[str, Any]]) -> None:
    """Insert dict rows (in column order) with one prepared statement."""
    if records:
        marks = ", ".join("?" for _ in columns)
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                         [[r.get(c) for c in columns] for r in records])


def _goal_headline(analysis: Analysis) -> dict[str, Any]:
    """The goal metric's comparison to show in a list: the treatment with the smallest adjusted p."""
    goal = [r for r in analysis.overall("primary") if r["metric"] == analysis.primary]
    if not goal:
        return {}
    best = min(goal, key=lambda r: (r["p_adjusted"] is None, r["p_adjusted"] or 1.0, r["variant"]))
    return {"goal_metric": analysis.primary, "goal_variant": best["variant"], "goal_rel_lift": best["rel_lift"],
            "goal_rel_ci_low": best["rel_ci_low"], "goal_rel_ci_high": best["rel_ci_high"],
            "goal_p_adjusted": best["p_adjusted"], "goal_significant": best["significant"]}


def _summary_row(analysis: Analysis, html: str | None, markdown: str | None) -> dict[str, Any]:
    d = analysis.definition
    return {
        "experiment_id": d.experiment_id, "name": d.name, "hypothesis": d.hypothesis, "owner": d.owner,
        "campaign_id": d.campaign_id, "definition_status": d.status, "result_status": analysis.status,
        "control": d.control, "treatments": ", ".join(analysis.treatments), **_goal_headline(analysis),
        "srm_status": analysis.srm["status"], "srm_p_value": analysis.srm["p_value"],
        "srm_localisation": json.dumps(analysis.srm["localisation"]) if analysis.srm.get("localisation") else None,
        "units": sum(analysis.srm["counts"].values()), "start_at": d.start_at, "end_at": d.end_at,
        "as_of_date": analysis.as_of, "verdict": analysis.verdict, "report_html": html, "report_markdown": markdown,
        "computed_at": analysis.computed_at,
    }


def undefined_verdict(experiment_id: str, evidence: Evidence) -> str:
    arms = ", ".join(f"{v} ({n:,} units)" for v, n in sorted(evidence.units.items())) or "no units yet"
    return (f"Verdict: not analysed — {experiment_id} has data ({arms}) but no definition, so no control, split or "
            "goal metric is known: add it to an experiments.yml and ingest it.")


def write_results(conn: duckdb.DuckDBPyConnection, settings: Settings,
                  experiment_ids: Iterable[str] | None = None) -> ResultsSummary:
    """Analyse experiments (all when None) and replace their rows in the experiments tables, then write the reports.

    ``conn`` is an open read-write connection to the build database (``connect_build``); it stays
    open. The tables change in one transaction; with ``experiment_ids=None`` the tables are
    replaced as a whole (experiments no longer in the marts disappear). Re-running on the same
    build gives the same rows and files. Raises ValueError for an id the marts do not hold.
    """
    from experiments.report_pages import to_html, to_markdown, to_svgs

    analyses, undefined = analyse_warehouse(conn, experiment_ids)
    stamp = analyses[0].computed_at if analyses else _computed_at(conn)
    folder = settings.reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    summary = ResultsSummary(computed_at=stamp)
    results, sequences, summaries, pages = [], [], [], []
    for analysis in analyses:
        name = _safe_name(analysis.experiment_id)
        md_path, html_path = folder / f"{name}.md", folder / f"{name}.html"
        pages.append((analysis.as_page(), name, md_path, html_path))
        results += analysis.rows
        sequences += analysis.sequence
        summaries.append(_summary_row(analysis, html_path.name, md_path.name))
        summary.experiments.append(ExperimentSummary(analysis.experiment_id, analysis.status, analysis.verdict,
                                                     analysis.srm["status"], len(analysis.rows), md_path, html_path))
    for exp_id, evidence in undefined.items():
        verdict = undefined_verdict(exp_id, evidence)
        found = _undefined_rows(exp_id, evidence, stamp)
        results += found
        summaries.append({"experiment_id": exp_id, "result_status": NO_DEFINITION, "verdict": verdict,
                          "units": sum(evidence.units.values()), "as_of_date": evidence.as_of, "computed_at": stamp})
        summary.experiments.append(ExperimentSummary(exp_id, NO_DEFINITION, verdict, "unknown", len(found), None, None))
    summary.experiments.sort(key=lambda e: e.experiment_id)
    summary.result_rows, summary.sequence_rows = len(results), len(sequences)
    ids = [e.experiment_id for e in summary.experiments]
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("CREATE SCHEMA IF NOT EXISTS experiments")
        for ddl in (RESULTS_DDL, SEQUENCES_DDL, SUMMARY_DDL):
            conn.execute(ddl)
            _add_new_columns(conn, ddl)
        for table in ("experiments.results", "experiments.confidence_sequences", "experiments.summary"):
            if experiment_ids is None:
                conn.execute(f"DELETE FROM {table}")
            else:
                conn.execute(f"DELETE FROM {table} WHERE list_contains(?, experiment_id)", [ids])
        _insert(conn, "experiments.results", RESULT_COLUMNS, results)
        _insert(conn, "experiments.confidence_sequences", SEQUENCE_COLUMNS, sequences)
        _insert(conn, "experiments.summary", SUMMARY_COLUMNS, summaries)
        conn.execute("COMMIT")
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    for page, name, md_path, html_path in pages:  # after the commit: a report never shows rows that are not stored
        svgs = to_svgs(page)
        page["svg_files"] = {kind: f"{name}.{kind}.svg" for kind in svgs}
        for kind, svg in svgs.items():
            _write_atomic(folder / page["svg_files"][kind], svg)
        _write_atomic(md_path, to_markdown(page))
        _write_atomic(html_path, to_html(page, svgs))
    return summary
