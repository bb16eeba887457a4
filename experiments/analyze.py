"""Analyse an owner's own per-unit table (CSV or Parquet, one row per unit): the second way into
the one analysis (``experiments.analysis``).

polars reduces the table to sufficient statistics per arm (n, Σx, Σx², Σy, Σy², Σxy), so the
analysis sees the same inputs the warehouse's marts give it; the options become a Definition
(control, planned split, goal metrics, guardrails with a margin, alpha). With a unit column, units
that appear twice or in two arms are counted, reported and excluded. Goal metrics × variants form
the multiple-testing family; guardrails are judged on their own for non-inferiority.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl

from experiments.analysis import Analysis, Evidence, Options, analyse
from experiments.bayesian import Prior
from experiments.definition import Definition, Guardrail, MetricTest
from experiments.multiple import METHODS
from experiments.sequential import DEFAULT_N_STAR

TRUE_WORDS = ("true",)
FALSE_WORDS = ("false",)


class AnalysisError(ValueError):
    """A problem with the input table or the options that the user can fix (one line, says where)."""


@dataclass(frozen=True)
class MetricSpec:
    """A metric to analyse: one column's per-unit mean, or a ratio of two columns' sums."""

    name: str
    numerator: str
    denominator: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The table columns this metric reads."""
        return (self.numerator,) if self.denominator is None else (self.numerator, self.denominator)


def parse_weights(text: str) -> dict[str, float]:
    """Parse planned weights "A=0.5,B=0.5" (any positive numbers; they are normalised)."""
    weights: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = part.rpartition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not name.strip() or not np.isfinite(weight) or weight <= 0:
            raise AnalysisError(f"--weights: {part!r} is not NAME=POSITIVE_NUMBER (e.g. A=0.5,B=0.5)")
        if name.strip() in weights:
            raise AnalysisError(f"--weights: variant {name.strip()!r} is given twice")
        weights[name.strip()] = weight
    if len(weights) < 2:
        raise AnalysisError("--weights needs at least two variants, e.g. A=0.5,B=0.5")
    return weights


def parse_ratio(text: str) -> MetricSpec:
    """Parse a ratio metric "NUM:DEN" (sum of NUM over sum of DEN per arm, unit-level delta method)."""
    num, sep, den = text.partition(":")
    if not sep or not num.strip() or not den.strip():
        raise AnalysisError(f"--ratio {text!r} is not NUM:DEN (two column names)")
    return MetricSpec(f"{num.strip()}/{den.strip()}", num.strip(), den.strip())


def load_table(path: str | Path, columns: Sequence[str]) -> pl.DataFrame:
    """Read the needed columns of a CSV (every value as text, parsed later) or Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise AnalysisError(f"input file not found: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes and suffixes[-1] in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        elif ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
            frame = pl.read_csv(path, infer_schema=False, separator="\t" if ".tsv" in suffixes else ",")
        else:
            raise AnalysisError(f"{path}: unknown format (expected .csv or .parquet)")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise AnalysisError(f"{path}: could not be read: {str(exc).splitlines()[0]}") from exc
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise AnalysisError(f"{path}: no column {', '.join(map(repr, missing))} (columns: {', '.join(frame.columns)})")
    return frame.select(list(dict.fromkeys(columns)))


def _numeric(frame: pl.DataFrame, column: str, source: str) -> pl.Series:
    """A column as Float64: numbers, booleans, or text True/False, true/false, 0/1; other text is an error."""
    series = frame.get_column(column)
    if series.dtype == pl.Boolean or series.dtype.is_numeric():
        return series.cast(pl.Float64)
    text = series.cast(pl.Utf8).str.strip_chars()
    lower = text.str.to_lowercase()
    parsed = (
        pl.when(lower.is_in(TRUE_WORDS)).then(1.0)
        .when(lower.is_in(FALSE_WORDS)).then(0.0)
        .when(text == "").then(None)
        .otherwise(text.cast(pl.Float64, strict=False))
    )
    values = pl.select(parsed.alias(column)).to_series()
    bad = values.is_null() & text.is_not_null() & (text != "")
    if bad.any():
        row = int(bad.arg_true()[0])
        raise AnalysisError(f"{source}: column {column!r}, row {row + 1}: {text[row]!r} is neither a number "
                            "nor a boolean (True/False, true/false, 0/1)")
    return values


def _dedupe_units(frame: pl.DataFrame, unit_col: str, variant_col: str) -> tuple[pl.DataFrame, dict[str, int]]:
    """Drop every row of units that appear more than once in one arm or in more than one arm, and count them."""
    per_unit = frame.group_by(unit_col).agg(pl.len().alias("rows"), pl.col(variant_col).n_unique().alias("arms"))
    multi_arm = per_unit.filter(pl.col("arms") > 1)
    duplicated = per_unit.filter((pl.col("arms") == 1) & (pl.col("rows") > 1))
    bad = pl.concat([multi_arm.get_column(unit_col), duplicated.get_column(unit_col)])
    kept = frame.filter(~pl.col(unit_col).is_in(bad.implode()) & pl.col(unit_col).is_not_null())
    return kept, {
        "units_in_multiple_arms": multi_arm.height,
        "units_duplicated": duplicated.height,
        "rows_without_unit": int(frame.get_column(unit_col).is_null().sum()),
        "rows_excluded": frame.height - kept.height,
    }


def _sums(frame: pl.DataFrame, variant_col: str, arms: list[str], x: str, y: str | None) -> dict[str, tuple]:
    """Sufficient statistics per arm of x (and y, over units where both are present)."""
    valid = pl.col(x).is_not_null() if y is None else pl.col(x).is_not_null() & pl.col(y).is_not_null()
    aggs = [pl.len().alias("n"), pl.col(x).sum().alias("sx"), (pl.col(x) ** 2).sum().alias("sxx")]
    if y is not None:
        aggs += [pl.col(y).sum().alias("sy"), (pl.col(y) ** 2).sum().alias("syy"), (pl.col(x) * pl.col(y)).sum().alias("sxy")]
    found = {r[variant_col]: r for r in frame.filter(valid).group_by(variant_col).agg(aggs).iter_rows(named=True)}
    out = {}
    for arm in arms:
        r = found.get(arm)
        if r is None:
            out[arm] = (0.0,) * 6
        else:
            out[arm] = (float(r["n"]), float(r["sx"]), float(r["sxx"]), float(r.get("sy") or 0.0),
                        float(r.get("syy") or 0.0), float(r.get("sxy") or 0.0))
    return out


def _metric_type(frame: pl.DataFrame, spec: MetricSpec) -> str:
    if spec.denominator is not None:
        return "ratio"
    values = frame.get_column(spec.numerator).drop_nulls()
    return "proportion" if values.is_in([0.0, 1.0]).all() else "mean"


def _num(value: Any) -> Any:
    """JSON-friendly number: NaN and infinities become None."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


ENGINE_FIELDS = ("abs_se", "rel_se", "df", "cuped_theta", "variance_reduction", "seq_ci_low", "seq_ci_high",
                 "seq_p_value", "seq_rel_ci_low", "seq_rel_ci_high", "seq_rel_p_value", "chance_to_win",
                 "expected_loss", "expected_loss_control", "bayes_scale", "bayes_ci_low", "bayes_ci_high")


def _report_row(analysis: Analysis, row: dict[str, Any], cuped: bool, sequential: bool) -> dict[str, Any]:
    """One comparison in the JSON report: the stored fields plus the engine's other readings."""
    engine = row.get("engine", {})
    out = {k: v for k, v in row.items() if k != "engine"}
    for name in ENGINE_FIELDS:
        if name in engine:
            out[name] = engine[name]
    out["cuped"] = cuped
    if sequential:
        seq = next((r for r in analysis.overall(row["role"], "sequential") if r["metric"] == row["metric"]
                    and r["variant"] == row["variant"]), None)
        if seq is not None:
            out["seq_p_adjusted"], out["seq_significant"] = seq["p_adjusted"], seq["significant"]
    if row["role"] == "guardrail":
        out.update(margin=row["guardrail_margin"], non_inferiority_p_value=row["noninferiority_p_value"],
                   lower_bound=engine.get("noninferiority_bound"), passed=bool(row["guardrail_passed"]))
    for key in ("as_of_date", "computed_at"):
        out.pop(key, None)
    return out


def parse_tests(entries: Sequence[str], metrics: Sequence[str], guardrails: Sequence[str]) -> dict[str, MetricTest]:
    """``METRIC:ALTERNATIVE[:MARGIN]`` entries → the metrics' declared tests (one-line errors)."""
    out: dict[str, MetricTest] = {}
    for entry in entries:
        metric, _, rest = str(entry).partition(":")
        alternative, _, margin = rest.partition(":")
        metric, alternative = metric.strip(), (alternative.strip().lower() or "two-sided")
        if metric in guardrails:
            raise AnalysisError(f"--test {entry!r}: a guardrail is judged by --guardrail-margin; give it no test")
        if metric not in metrics:
            raise AnalysisError(f"--test {entry!r}: {metric!r} is not a goal metric ({', '.join(metrics)})")
        if alternative not in ("two-sided", "greater", "less"):
            raise AnalysisError(f"--test {entry!r}: the alternative is two-sided, greater or less, not {alternative!r}")
        try:
            value = float(margin) if margin.strip() else 0.0
        except ValueError:
            value = float("nan")
        if not -1 < value < 1:
            raise AnalysisError(f"--test {entry!r}: the margin is the relative lift under the null, in (-1, 1)")
        out[metric] = MetricTest(alternative, value)
    return out


def analyze(table: str | Path | pl.DataFrame, *, variant_col: str, control: str, metrics: Sequence[str] = (),
            ratios: Sequence[str | MetricSpec] = (), unit_col: str | None = None, covariate: str | None = None,
            weights: dict[str, float] | None = None, alpha: float = 0.05, correction: str = "holm",
            sequential: bool = False, n_star: float = DEFAULT_N_STAR, bayesian: bool = False,
            prior: Prior | None = None, guardrails: Sequence[str] = (), guardrail_margin: float = 0.02,
            tests: Sequence[str] = (), as_analysis: bool = False) -> dict[str, Any] | Analysis:
    """Analyse a per-unit table: SRM, then each goal metric × variant against control, corrected over the family.

    Returns the JSON report (or, with ``as_analysis``, the Analysis itself for the renderer)."""
    specs = [MetricSpec(m, m) for m in metrics] + [r if isinstance(r, MetricSpec) else parse_ratio(r) for r in ratios]
    guard_specs = [MetricSpec(g, g) for g in guardrails]
    if not specs:
        raise AnalysisError("name at least one goal metric (--metric COL or --ratio NUM:DEN)")
    names = [s.name for s in specs + guard_specs]
    if len(set(names)) != len(names):
        raise AnalysisError("a metric is named twice (goal metrics and guardrails must differ)")
    if correction not in METHODS:
        raise AnalysisError(f"correction must be one of {', '.join(METHODS)}, not {correction!r}")
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must lie in (0, 1), not {alpha}")
    if not guardrail_margin > 0:
        raise AnalysisError(f"the guardrail margin must be positive, not {guardrail_margin}")
    declared = parse_tests(tests, [s.name for s in specs], [g.name for g in guard_specs])
    if covariate is not None and covariate in {c for s in specs + guard_specs for c in s.columns}:
        raise AnalysisError(f"the covariate {covariate!r} is also a metric: it must be measured before exposure")

    value_cols = [c for s in specs + guard_specs for c in s.columns] + ([covariate] if covariate else [])
    columns = [variant_col, *([unit_col] if unit_col else []), *value_cols]
    source = str(table) if not isinstance(table, pl.DataFrame) else "table"
    if isinstance(table, pl.DataFrame):
        missing = [c for c in dict.fromkeys(columns) if c not in table.columns]
        if missing:
            raise AnalysisError(f"table: no column {', '.join(map(repr, missing))} (columns: {', '.join(table.columns)})")
        frame = table.select(list(dict.fromkeys(columns)))
    else:
        frame = load_table(table, columns)

    frame = frame.with_columns(pl.col(variant_col).cast(pl.Utf8).str.strip_chars())
    if unit_col:
        frame = frame.with_columns(pl.col(unit_col).cast(pl.Utf8))
    units: dict[str, int] = {"rows": frame.height}
    without_variant = frame.get_column(variant_col).is_null() | (frame.get_column(variant_col) == "")
    units["rows_without_variant"] = int(without_variant.sum())
    frame = frame.filter(~without_variant)
    if unit_col:
        frame, exclusions = _dedupe_units(frame, unit_col, variant_col)
        units.update(exclusions)
    frame = frame.with_columns([_numeric(frame, c, source).alias(c) for c in dict.fromkeys(value_cols)])
    units["analysed"] = frame.height

    observed = sorted(frame.get_column(variant_col).unique().to_list())
    if control not in observed:
        raise AnalysisError(f"control {control!r} not found in column {variant_col!r} (variants: {', '.join(observed) or 'none'})")
    if weights is not None:
        unplanned = [v for v in observed if v not in weights]
        if unplanned:
            raise AnalysisError(f"variants {', '.join(map(repr, unplanned))} are in the data but not in --weights")
        arms = list(weights)
    else:
        arms = observed
    if control not in arms:
        raise AnalysisError(f"control {control!r} has no planned weight")
    arms = [control, *[a for a in arms if a != control]]
    if len(arms) < 2:
        raise AnalysisError(f"only the control {control!r} is present: nothing to compare")

    metric_types, sums, cuped = {}, {}, {}
    for spec in specs + guard_specs:
        mtype = _metric_type(frame, spec)
        metric_types[spec.name] = mtype
        cuped[spec.name] = mtype != "ratio" and covariate is not None
        y = spec.denominator if mtype == "ratio" else covariate
        for arm, stats in _sums(frame, variant_col, arms, spec.numerator, y).items():
            sums[(arm, spec.name, "overall", "(all)")] = stats
    counts = dict(frame.group_by(variant_col).len().iter_rows())
    definition = Definition(
        experiment_id=source, control=control, variants=tuple(arms), goal_metrics=tuple(s.name for s in specs),
        weights={a: float(weights[a]) for a in arms} if weights else None, secondary_metrics=(),
        guardrails=tuple(Guardrail(g.name, guardrail_margin) for g in guard_specs), tests=declared, alpha=alpha)
    evidence = Evidence(metric_types, sums, {a: int(counts.get(a, 0)) for a in arms}, cuped=cuped, exclusions=units)
    options = Options(sequential=sequential, bayesian=bayesian or prior is not None, n_star=n_star, prior=prior,
                      goal_correction=correction)
    analysis = analyse(definition, evidence, options)
    if as_analysis:
        return analysis

    def rows_of(role: str) -> list[dict[str, Any]]:
        return [_report_row(analysis, r, cuped[r["metric"]], sequential) for r in analysis.overall(role)]

    results = rows_of("primary")
    return {
        "input": source, "variant_col": variant_col, "control": control, "alpha": alpha, "correction": correction,
        "family_size": sum(1 for r in results if r["test_p_value"] is not None),
        "sequential": {"n_star": n_star} if sequential else None, "units": units,
        "srm": {k: analysis.srm[k] for k in ("p_value", "status", "reason", "counts", "weights")},
        "results": results, "guardrails": rows_of("guardrail"), "status": analysis.status,
        "verdict": analysis.verdict,
    }
