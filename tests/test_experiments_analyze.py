"""`experiments.analyze` and `nudgelab experiments analyze` on the real Cookie Cats test and small owner tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from experiments.analyze import AnalysisError, analyze
from tests.conftest import run_cli

COOKIE_CATS = Path(__file__).resolve().parents[2] / "shared" / "data" / "cookie_cats.csv"
METRICS = ("retention_1", "retention_7")


@pytest.fixture(scope="module")
def raw() -> dict[str, dict[str, np.ndarray]]:
    """Per-player 0/1 retention arrays per version, read independently of the code under test."""
    frame = pl.read_csv(COOKIE_CATS)
    return {v: {m: frame.filter(pl.col("version") == v).get_column(m).cast(pl.Float64).to_numpy() for m in METRICS}
            for v in ("gate_30", "gate_40")}


@pytest.fixture(scope="module")
def report() -> dict:
    return analyze(COOKIE_CATS, variant_col="version", control="gate_30", metrics=list(METRICS), unit_col="userid")


def _row(report: dict, metric: str) -> dict:
    return next(r for r in report["results"] if r["metric"] == metric)


@pytest.mark.parametrize("metric", METRICS)
def test_cookie_cats_p_value_matches_scipy_welch_test(report, raw, metric):
    c, t = raw["gate_30"][metric], raw["gate_40"][metric]
    row = _row(report, metric)
    assert row["abs_effect"] == pytest.approx(t.mean() - c.mean(), rel=1e-12)
    assert row["p_value"] == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-8)


@pytest.mark.parametrize("metric", METRICS)
def test_cookie_cats_interval_matches_statsmodels_unequal_variance_interval(report, raw, metric):
    low, high = CompareMeans(DescrStatsW(raw["gate_40"][metric]), DescrStatsW(raw["gate_30"][metric])).tconfint_diff(
        alpha=0.05, usevar="unequal")
    row = _row(report, metric)
    assert (row["abs_ci_low"], row["abs_ci_high"]) == pytest.approx((low, high), rel=1e-8)


@pytest.mark.parametrize("metric", METRICS)
def test_cookie_cats_relative_interval_matches_delta_method_closed_form(report, raw, metric):
    c, t = raw["gate_30"][metric], raw["gate_40"][metric]
    vc, vt = c.var(ddof=1) / c.size, t.var(ddof=1) / t.size
    lift = t.mean() / c.mean() - 1
    se = np.sqrt(vt / c.mean() ** 2 + t.mean() ** 2 * vc / c.mean() ** 4)
    df = (vc + vt) ** 2 / (vc**2 / (c.size - 1) + vt**2 / (t.size - 1))
    q = stats.t.ppf(0.975, df)
    row = _row(report, metric)
    assert (row["rel_lift"], row["rel_ci_low"], row["rel_ci_high"]) == pytest.approx((lift, lift - q * se, lift + q * se), rel=1e-8)


def test_cookie_cats_srm_is_a_warning_not_a_failure(report, raw):
    counts = [raw["gate_30"]["retention_1"].size, raw["gate_40"]["retention_1"].size]
    assert report["srm"]["p_value"] == pytest.approx(stats.chisquare(counts).pvalue, rel=1e-12)
    assert report["srm"]["status"] == "warn"


def test_cookie_cats_holm_adjusted_p_values_match_statsmodels(report):
    p = [_row(report, m)["p_value"] for m in METRICS]
    assert [_row(report, m)["p_adjusted"] for m in METRICS] == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert [_row(report, m)["significant"] for m in METRICS] == [False, True]


def test_cli_json_has_the_documented_fields():
    proc = run_cli("experiments", "analyze", "--input", str(COOKIE_CATS), "--variant-col", "version", "--control",
                   "gate_30", "--metric", "retention_1", "--metric", "retention_7", "--unit-col", "userid",
                   "--bayesian", "--sequential")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out["srm"]) >= {"p_value", "status"}
    documented = {"variant", "metric", "n_control", "n_treatment", "mean_control", "mean_treatment", "abs_effect",
                  "abs_ci_low", "abs_ci_high", "p_value", "rel_lift", "rel_ci_low", "rel_ci_high", "rel_p_value",
                  "p_adjusted", "significant", "chance_to_win"}
    assert all(documented <= set(r) for r in out["results"]) and len(out["results"]) == 2


def _table(tmp_path: Path, name: str, rows: list[tuple], header: str = "user,arm,clicked") -> Path:
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def _small_rows(true: str, false: str) -> list[tuple]:
    rng = np.random.default_rng(3)
    return [(i, "A" if i % 2 else "B", true if rng.random() < (0.3 if i % 2 else 0.4) else false) for i in range(400)]


def test_booleans_as_words_or_digits_give_the_same_results(tmp_path):
    outs = [analyze(_table(tmp_path, f"{t}.csv", _small_rows(t, f)), variant_col="arm", control="A", metrics=["clicked"])
            for t, f in (("True", "False"), ("true", "false"), ("1", "0"))]
    assert outs[0]["results"][0]["p_value"] == outs[1]["results"][0]["p_value"] == outs[2]["results"][0]["p_value"]
    assert outs[0]["results"][0]["metric_type"] == "proportion"


def test_units_twice_or_in_two_arms_are_counted_and_excluded(tmp_path):
    rows = _small_rows("1", "0") + [(1, "A", 1), (2, "A", 0), (3, "A", 1)]  # 1 and 3 twice in A; 2 in A and B
    out = analyze(_table(tmp_path, "dups.csv", rows), variant_col="arm", control="A", metrics=["clicked"], unit_col="user")
    assert (out["units"]["units_duplicated"], out["units"]["units_in_multiple_arms"]) == (2, 1)
    assert out["units"]["rows_excluded"] == 6
    assert out["srm"]["counts"] == {"A": 198, "B": 199}


def test_parquet_input_gives_the_same_results_as_csv(tmp_path):
    csv = _table(tmp_path, "t.csv", _small_rows("true", "false"))
    parquet = tmp_path / "t.parquet"
    pl.read_csv(csv).write_parquet(parquet)
    a = analyze(csv, variant_col="arm", control="A", metrics=["clicked"])["results"][0]
    b = analyze(parquet, variant_col="arm", control="A", metrics=["clicked"])["results"][0]
    assert a["p_value"] == pytest.approx(b["p_value"], rel=1e-12)


def test_planned_weights_are_used_for_the_srm_check(tmp_path):
    rows = [(i, "A" if i < 250 else "B", i % 3 == 0) for i in range(1000)]
    path = _table(tmp_path, "w.csv", rows)
    assert analyze(path, variant_col="arm", control="A", metrics=["clicked"])["srm"]["status"] == "fail"
    planned = analyze(path, variant_col="arm", control="A", metrics=["clicked"], weights={"A": 0.25, "B": 0.75})
    assert planned["srm"]["status"] == "ok"


def test_ratio_metric_uses_per_unit_delta_method(tmp_path):
    rng = np.random.default_rng(8)
    arm = np.where(np.arange(600) % 2, "A", "B")
    delivered = rng.poisson(3, 600) + 1
    clicks = rng.binomial(delivered, np.where(arm == "A", 0.2, 0.25))
    path = _table(tmp_path, "r.csv", list(zip(range(600), arm, clicks, delivered)), "user,arm,clicks,delivered")
    row = analyze(path, variant_col="arm", control="A", ratios=["clicks:delivered"])["results"][0]

    def var_of_ratio(x, y):
        return ((x - x.sum() / y.sum() * y) / y.mean()).var(ddof=1) / x.size

    a, b = arm == "A", arm == "B"
    se = np.sqrt(var_of_ratio(clicks[a], delivered[a]) + var_of_ratio(clicks[b], delivered[b]))
    assert row["metric"] == "clicks/delivered" and row["metric_type"] == "ratio"
    assert row["abs_se"] == pytest.approx(se, rel=1e-9)


def test_covariate_reports_the_variance_reduction(tmp_path):
    rng = np.random.default_rng(9)
    pre = rng.normal(5, 1, 2000)
    post = pre + rng.normal(0, 0.5, 2000)
    rows = list(zip(range(2000), np.where(np.arange(2000) % 2, "A", "B"), post, pre))
    row = analyze(_table(tmp_path, "c.csv", rows, "user,arm,spend,spend_before"), variant_col="arm", control="A",
                  metrics=["spend"], covariate="spend_before")["results"][0]
    assert row["cuped"] is True and row["variance_reduction"] == pytest.approx(0.8, abs=0.03)


def test_guardrails_stay_outside_the_correction_family(tmp_path):
    rows = [(u, a, c, c) for u, a, c in _small_rows("1", "0")]
    path = _table(tmp_path, "g.csv", rows, "user,arm,clicked,complaint")
    alone = analyze(path, variant_col="arm", control="A", metrics=["clicked"])
    guarded = analyze(path, variant_col="arm", control="A", metrics=["clicked"], guardrails=["complaint"])
    assert guarded["results"][0]["p_adjusted"] == alone["results"][0]["p_adjusted"]
    assert "passed" in guarded["guardrails"][0]


def test_text_that_is_neither_number_nor_boolean_names_column_and_row(tmp_path):
    path = _table(tmp_path, "bad.csv", [(1, "A", "yes"), (2, "B", "0")])
    with pytest.raises(AnalysisError, match=r"column 'clicked', row 1: 'yes'"):
        analyze(path, variant_col="arm", control="A", metrics=["clicked"])


def test_cli_missing_column_is_a_one_line_error_with_exit_2(tmp_path):
    path = _table(tmp_path, "t.csv", _small_rows("1", "0"))
    proc = run_cli("experiments", "analyze", "--input", str(path), "--variant-col", "arm", "--control", "A",
                   "--metric", "converted")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no column 'converted'" in proc.stderr


def test_cli_markdown_has_a_table_and_a_verdict_line(tmp_path):
    path = _table(tmp_path, "t.csv", _small_rows("1", "0"))
    proc = run_cli("experiments", "analyze", "--input", str(path), "--variant-col", "arm", "--control", "A",
                   "--metric", "clicked", "--format", "md")
    assert proc.returncode == 0, proc.stderr
    assert "**Verdict:" in proc.stdout and "| B | clicked |" in proc.stdout


def test_cli_html_has_a_table_and_a_verdict_line(tmp_path):
    path = _table(tmp_path, "t.csv", _small_rows("1", "0"))
    proc = run_cli("experiments", "analyze", "--input", str(path), "--variant-col", "arm", "--control", "A",
                   "--metric", "clicked", "--format", "html")
    assert proc.returncode == 0, proc.stderr
    assert "<p class='verdict'><strong>Verdict:" in proc.stdout and "<td>clicked</td>" in proc.stdout


def test_experiments_package_imports_nothing_of_ours_but_warehouse():
    import ast

    package = Path(__file__).resolve().parents[1] / "experiments"
    forbidden = {"dispatch", "ingest", "nudgelab"}
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not {n.split(".")[0] for n in names} & forbidden, f"{source.name} imports {names}"
