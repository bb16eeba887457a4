"""Tests an owner declares per metric (one-sided, against a margin), from the definition to the
decision: the definitions reader, the analysis (its family decided by the declared test), the
results table of an older nudgelab gaining the new columns, the report, and `nudgelab
experiments analyze --test` on the real Cookie Cats data against statsmodels."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from statsmodels.stats.weightstats import ttest_ind

from experiments.analysis import RESULTS_DDL, Evidence, analyse
from experiments.analyze import AnalysisError, analyze
from experiments.definition import Definition, MetricTest, from_dim_row
from experiments.report_pages import to_markdown
from experiments.warehouse_report import _add_new_columns
from ingest.readers.definitions import definition_record
from tests.conftest import run_cli

COOKIE_CATS = Path(__file__).resolve().parents[3] / "shared" / "data" / "cookie_cats.csv"
SPEC = {"id": "exp_1", "variants": ["a", "b"], "control": "a", "goal_metrics": ["click_through"],
        "secondary_metrics": ["converted"], "guardrails": [{"metric": "revenue", "margin": 0.03}]}


def test_the_definitions_reader_keeps_declared_tests_and_names_what_is_wrong():
    record = definition_record(1, "", {**SPEC, "tests": {"click_through": {"alternative": "greater"},
                                                         "converted": {"alternative": "greater", "margin": -0.01}}}, "")
    assert record.reason is None
    assert json.loads(record.values["metric_tests"]) == {"click_through": {"alternative": "greater", "margin": 0.0},
                                                         "converted": {"alternative": "greater", "margin": -0.01}}
    csv_form = definition_record(1, "", {**SPEC, "tests": "click_through:less; converted:greater:-0.02"}, "")
    assert json.loads(csv_form.values["metric_tests"])["converted"] == {"alternative": "greater", "margin": -0.02}
    # no tests: no value at all, so the definition's event id stays what it was before tests existed
    assert definition_record(1, "", SPEC, "").values["metric_tests"] is None
    prior = definition_record(1, "", {**SPEC, "prior": {"mean": 0.01, "sd": 0.05, "scale": "absolute"}}, "")
    assert json.loads(prior.values["bayes_prior"]) == {"mean": 0.01, "sd": 0.05, "scale": "absolute"}
    assert definition_record(1, "", SPEC, "").values["bayes_prior"] is None
    assert "prior sd must be a positive number" in definition_record(1, "", {**SPEC, "prior": {"sd": -1}}, "").reason
    for tests, words in (({"click_through": {"alternative": "bigger"}}, "is not one of two-sided, greater, less"),
                         ({"click_through": {"alternative": "greater", "margin": 2}}, "in (-1, 1)"),
                         ({"revenue": {"alternative": "greater"}}, "a guardrail is judged by its margin")):
        assert words in definition_record(1, "", {**SPEC, "tests": tests}, "").reason


def test_a_definition_row_from_the_marts_carries_its_tests():
    row = {"experiment_id": "exp_1", "control": "a", "variants_json": '[{"name": "a", "weight": 0.5}, '
           '{"name": "b", "weight": 0.5}]', "goal_metrics_json": '["click_through"]', "secondary_metrics_json": "[]",
           "guardrail_metrics_json": "[]", "metric_tests_json": '{"click_through": {"alternative": "greater", '
           '"margin": 0.01}}', "alpha": 0.05}
    definition = from_dim_row(row)
    assert definition.test("click_through") == MetricTest("greater", 0.01)
    assert definition.test("converted") == MetricTest()          # undeclared: two-sided against 0
    assert from_dim_row({**row, "metric_tests_json": "{}"}).tests == {}


def evidence(k_control: int, k_treatment: int, n: int = 20_000) -> Evidence:
    stats = {arm: (float(n), float(k), float(k), 0.0, 0.0, 0.0) for arm, k in (("a", k_control), ("b", k_treatment))}
    return Evidence({"clicked": "proportion"}, {(arm, "clicked", "overall", "(all)"): s for arm, s in stats.items()},
                    {"a": n, "b": n}, cuped={"clicked": False})


def test_the_declared_test_decides_significance_and_is_stored_with_its_p_value():
    data = evidence(2000, 2108)     # +5.4 %: two-sided p ≈ 0.07, one-sided ≈ 0.035
    two = analyse(Definition("e", "a", ("a", "b"), ("clicked",)), data).overall("primary")[0]
    one = analyse(Definition("e", "a", ("a", "b"), ("clicked",), tests={"clicked": MetricTest("greater")}),
                  data).overall("primary")[0]
    assert 0.05 < two["test_p_value"] < 0.1 and not two["significant"]
    assert one["test_p_value"] == pytest.approx(two["test_p_value"] / 2) and one["significant"]
    assert (one["alternative"], one["null_lift"], one["rel_ci_high"], one["abs_ci_high"]) == ("greater", 0.0, None, None)
    # superiority by more than +8 %: the relative test against the margin decides, and it does not hold
    margin = analyse(Definition("e", "a", ("a", "b"), ("clicked",), tests={"clicked": MetricTest("greater", 0.08)}),
                     data).overall("primary")[0]
    assert margin["test_p_value"] == margin["rel_p_value"] and margin["test_p_value"] > 0.5 and not margin["significant"]
    page = to_markdown(analyse(Definition("e", "a", ("a", "b"), ("clicked",), tests={"clicked": MetricTest("greater")}),
                               data).as_page())
    assert "H1: lift > 0 (one-sided)" in page and ", ∞)" in page


def test_a_results_table_written_before_tests_existed_gains_their_columns():
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA experiments")
    old = RESULTS_DDL.replace("    alternative VARCHAR,\n    null_lift DOUBLE,\n    test_p_value DOUBLE,\n", "")
    conn.execute(old)
    _add_new_columns(conn, RESULTS_DDL)
    columns = [r[0] for r in conn.execute("DESCRIBE experiments.results").fetchall()]
    assert {"alternative", "null_lift", "test_p_value"} <= set(columns)
    _add_new_columns(conn, RESULTS_DDL)      # again: nothing to add, nothing fails


@pytest.fixture(scope="module")
def retention() -> dict[str, np.ndarray]:
    frame = pl.read_csv(COOKIE_CATS)
    return {v: frame.filter(pl.col("version") == v).get_column("retention_7").cast(pl.Float64).to_numpy()
            for v in ("gate_30", "gate_40")}


def test_cookie_cats_one_sided_test_equals_statsmodels(retention):
    report = analyze(COOKIE_CATS, variant_col="version", control="gate_30", metrics=["retention_7"],
                     unit_col="userid", tests=["retention_7:less"])
    (row,) = report["results"]
    _, p, _ = ttest_ind(retention["gate_40"], retention["gate_30"], alternative="smaller", usevar="unequal")
    assert row["alternative"] == "less" and row["test_p_value"] == pytest.approx(p, rel=1e-9)
    assert row["abs_ci_low"] is None and row["abs_ci_high"] < 0       # the one-sided bound: gate 40 retains fewer


def test_cookie_cats_non_inferiority_at_ten_percent_holds_and_at_two_percent_does_not(retention):
    c, t = retention["gate_30"], retention["gate_40"]
    mc, mt, vc, vt = c.mean(), t.mean(), c.var(ddof=1) / c.size, t.var(ddof=1) / t.size
    lift, se = mt / mc - 1, np.sqrt(vt / mc**2 + mt**2 * vc / mc**4)   # the delta method, written out here
    for margin, holds in ((-0.10, True), (-0.02, False)):
        report = analyze(COOKIE_CATS, variant_col="version", control="gate_30", metrics=["retention_7"],
                         unit_col="userid", tests=[f"retention_7:greater:{margin}"])
        (row,) = report["results"]
        from scipy import stats
        expected = stats.norm.sf((lift - margin) / se)
        assert row["test_p_value"] == pytest.approx(expected, rel=5e-3)     # t with ~90,000 df against z, far tail
        assert row["significant"] is holds


def test_analyze_cli_takes_declared_tests_and_refuses_bad_ones_in_one_line(tmp_path):
    table = tmp_path / "units.csv"
    rng = np.random.default_rng(3)
    pl.DataFrame({"variant": ["a"] * 500 + ["b"] * 500,
                  "clicked": np.r_[rng.binomial(1, 0.2, 500), rng.binomial(1, 0.24, 500)]}).write_csv(table)
    done = run_cli("experiments", "analyze", "--input", str(table), "--variant-col", "variant", "--control", "a",
                   "--metric", "clicked", "--test", "clicked:greater:-0.05")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert (row["alternative"], row["null_lift"]) == ("greater", -0.05)
    for bad, words in (("clicked:bigger", "two-sided, greater or less"), ("other:greater", "is not a goal metric"),
                       ("clicked:greater:x", "relative lift under the null")):
        refused = run_cli("experiments", "analyze", "--input", str(table), "--variant-col", "variant", "--control", "a",
                          "--metric", "clicked", "--test", bad)
        assert refused.returncode == 2 and words in refused.stderr and "Traceback" not in refused.stderr
    with pytest.raises(AnalysisError, match="a guardrail is judged"):
        analyze(table, variant_col="variant", control="a", metrics=["clicked"], guardrails=["clicked2"],
                tests=["clicked2:greater"])


def test_a_declared_test_travels_from_experiments_yml_through_the_build_to_the_results(scenario, scenario_copy):
    """A new version of a scenario experiment's definition declaring a one-sided goal test, ingested
    and built: the stored results carry it, and the goal's p-value is the one-sided one."""
    import yaml

    from tests.conftest import query

    settings, _ = scenario_copy
    source = scenario[0].home.parent / "data" / "experiments.yml"    # the scenario's data sits beside its home
    document = yaml.safe_load(source.read_text())
    spec = document["experiments"][0]
    goal = spec["goal_metrics"][0]
    before = query(settings, "SELECT test_p_value, p_value FROM experiments.results WHERE experiment_id = ? AND "
                             "metric = ? AND analysis = 'fixed' AND dimension = 'overall' ORDER BY variant", [spec["id"], goal])
    # the new version also plans a split the data does not have (65 % control): a sample-ratio mismatch
    # spread over every segment, region and day, so no single value explains it
    variants = [dict(v, weight=0.65 if v.get("control") else 0.35 / (len(spec["variants"]) - 1))
                for v in spec["variants"]]
    newer = {**spec, "variants": variants, "tests": {goal: {"alternative": "greater"}},
             "secondary_metrics": [*spec.get("secondary_metrics", []), "dwell_seconds_p50", "seconds_to_click_p90"],
             "prior": {"mean": 0.0, "sd": 0.02, "scale": "absolute"},
             "defined_at": "2026-11-30T00:00:00Z"}
    path = settings.home.parent / "experiments.yml"
    path.write_text(yaml.safe_dump({"experiments": [newer]}, sort_keys=False))
    assert run_cli("ingest", str(path)).returncode == 0
    built = run_cli("build")
    assert built.returncode == 0, built.stderr[-1500:]
    after = query(settings, "SELECT alternative, null_lift, test_p_value, p_value, abs_effect, abs_ci_high FROM "
                            "experiments.results WHERE experiment_id = ? AND metric = ? AND analysis = 'fixed' AND "
                            "dimension = 'overall' ORDER BY variant", [spec["id"], goal])
    assert after and len(after) == len(before)
    for (alternative, null, p_one, p, effect, high), (p_two_before, _) in zip(after, before):
        assert (alternative, null, high) == ("greater", 0.0, None)
        # one-sided: half the two-sided p when the effect lies above 0, else more than 0.5
        assert p_one == pytest.approx(p_two_before / 2 if effect > 0 else 1 - p_two_before / 2, rel=1e-6)
        assert p == p_one
    # the declared prior on the absolute effect: the Bayesian rows hold the credible interval of the difference
    bayes = query(settings, "SELECT abs_ci_low, abs_ci_high, rel_ci_low, chance_to_win FROM experiments.results "
                            "WHERE experiment_id = ? AND metric = ? AND analysis = 'bayesian' AND dimension = 'overall'",
                  [spec["id"], goal])
    assert bayes and all(lo is not None and hi is not None and rel is None and 0 <= ctw <= 1
                         for lo, hi, rel, ctw in bayes)
    # quantile metrics: each arm's median dwell against the per-unit values computed here from the marts
    quantiles = query(settings, "SELECT variant, mean_control, mean_treatment, n_treatment, rel_ci_low, metric_type "
                                "FROM experiments.results WHERE experiment_id = ? AND metric = 'dwell_seconds_p50'",
                      [spec["id"]])
    assert quantiles and all(q[5] == "quantile" and q[4] is not None for q in quantiles)
    per_unit = query(settings, """
        SELECT u.variant, max(m.max_dwell_seconds) FROM marts.fct_experiment_units u
        JOIN marts.fct_messages m ON m.user_id = u.unit_id AND m.experiment_id = u.experiment_id
         AND m.sent_at >= u.first_exposure_at AND m.sent_at < u.first_exposure_at + INTERVAL 7 DAY
        WHERE u.experiment_id = ? AND u.is_valid_unit AND m.max_dwell_seconds IS NOT NULL
        GROUP BY u.variant, u.unit_id""", [spec["id"]])
    by_arm: dict[str, list[float]] = {}
    for variant, value in per_unit:
        by_arm.setdefault(variant, []).append(value)
    control = spec["variants"][[v.get("control", False) for v in spec["variants"]].index(True)]["name"]
    for variant, mean_control, mean_treatment, n_treatment, _, _ in quantiles:
        assert mean_control == pytest.approx(np.median(by_arm[control]), rel=0.05)
        assert mean_treatment == pytest.approx(np.median(by_arm[variant]), rel=0.05)
        assert n_treatment == len(by_arm[variant])
    # the app's experiment detail shows the declared test and draws the one-sided bounds
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/experiments.py").run()
    at.selectbox(key="experiment").set_value(spec["id"]).run()
    assert not at.exception, [e.value for e in at.exception]
    tables = [d.value for d in at.dataframe if "test" in d.value.columns]
    assert tables and "H1: lift > 0 (one-sided)" in set(tables[0]["test"])
    assert any("No single segment, region, carrier or exposure day explains the imbalance" in m.value
               for m in at.markdown)
    located = query(settings, "SELECT result_status, srm_localisation FROM experiments.summary WHERE experiment_id = ?",
                    [spec["id"]])[0]
    assert located[0] == "srm_problem" and json.loads(located[1]) and not any(f["carries"] for f in json.loads(located[1]))



def test_analyze_cli_takes_a_prior_on_the_absolute_effect():
    done = run_cli("experiments", "analyze", "--input", str(COOKIE_CATS), "--variant-col", "version", "--control",
                   "gate_30", "--metric", "retention_7", "--unit-col", "userid", "--bayesian", "--prior", "0:0.01",
                   "--prior-scale", "absolute")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["bayes_scale"] == "absolute" and row["bayes_ci_high"] < 0 < 1 - row["chance_to_win"]


def test_a_running_experiment_with_a_planned_end_reports_its_chance_of_reaching_significance():
    from datetime import date, datetime, timedelta, timezone

    from scipy import stats as sps

    days = [date(2026, 11, 20) + timedelta(days=i) for i in range(10)]
    per_day = 1000
    cumulative = {"clicked": {}}
    sums = {}
    for arm, rate in (("a", 0.10), ("b", 0.106)):
        series = {}
        for i, day in enumerate(days):
            n = float(per_day * (i + 1))
            series[day] = (n, n * rate, n * rate, 0.0, 0.0, 0.0)
        cumulative["clicked"][arm] = series
        sums[(arm, "clicked", "overall", "(all)")] = series[days[-1]]
    evidence = Evidence({"clicked": "proportion"}, sums, {"a": 10_000, "b": 10_000}, cuped={"clicked": False},
                        cumulative=cumulative, as_of=days[-1])
    end = datetime(2026, 12, 9, tzinfo=timezone.utc)          # 10 more days at 2,000 units a day
    definition = Definition("e", "a", ("a", "b"), ("clicked",), end_at=end, status="running")
    analysis = analyse(definition, evidence)
    (row,) = analysis.overall("primary")
    assert (row["days_to_end"], row["units_at_end"]) == (10, 40_000)
    engine = row["engine"]
    z, t = engine["abs_effect"] / engine["abs_se"], 20_000 / 40_000
    drift, zc = z / np.sqrt(t), sps.norm.isf(0.025)
    expected = sps.norm.cdf((drift - zc) / np.sqrt(1 - t)) + sps.norm.cdf((-drift - zc) / np.sqrt(1 - t))
    assert row["conditional_power"] == pytest.approx(expected, rel=1e-9)
    assert 0 < row["conditional_power_sequential"] < row["conditional_power"] < 1
    assert "By the planned end, 10 days away" in to_markdown(analysis.as_page())
    stopped = analyse(Definition("e", "a", ("a", "b"), ("clicked",), end_at=end, status="stopped"), evidence)
    assert stopped.overall("primary")[0]["conditional_power"] is None
