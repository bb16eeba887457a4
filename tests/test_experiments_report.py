"""`nudgelab experiments report`: experiments.results and the reports, on a generated scenario with planted effects."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pytest
from scipy import stats

from experiments.warehouse_report import write_results
from ingest.generator import generate
from ingest.runner import run_ingest
from nudgelab.pipeline import build
from tests.conftest import TEST_KEY, run_cli
from warehouse.connections import connect_build
from warehouse.publish import current_snapshot, set_build_audited
from warehouse.settings import load_settings

KEY = ("experiment_id", "variant", "metric", "analysis", "dimension", "dimension_value")


@pytest.fixture(scope="module")
def built(scenario):
    """The session's scenario (conftest.scenario): built, audited, analysed once by write_results."""
    settings, truth, summary = scenario
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUDGELAB_HOME", str(settings.home))
        mp.setenv("NUDGELAB_HASH_KEY", TEST_KEY)
        yield settings, truth, summary


def _fetch(settings, sql: str, params: list | None = None) -> list[tuple]:
    conn = connect_build(settings)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def _row(settings, experiment_id: str, metric: str, analysis: str = "fixed") -> dict:
    conn = connect_build(settings)
    try:
        cur = conn.execute("SELECT * FROM experiments.results WHERE experiment_id = ? AND metric = ? AND analysis = ? "
                           "AND dimension = 'overall'", [experiment_id, metric, analysis])
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        conn.close()
    assert len(rows) == 1, rows
    return dict(zip(names, rows[0]))


def _sums(settings, experiment_id: str, metric: str, variant: str) -> tuple[float, ...]:
    """Σ over the daily rows of fct_experiment_stats, overall: n, Σx, Σx², Σy, Σy², Σxy."""
    return _fetch(settings, "SELECT sum(n)::double, sum(sum_x), sum(sum_x2), sum(sum_y), sum(sum_y2), sum(sum_xy) "
                  "FROM marts.fct_experiment_stats WHERE scope = 'daily' AND dimension = 'overall' "
                  "AND experiment_id = ? AND metric = ? AND variant = ?", [experiment_id, metric, variant])[0]


def _all_rows(settings) -> list[tuple]:
    return _fetch(settings, f"SELECT * FROM experiments.results ORDER BY {', '.join(KEY)}")


def test_planted_promo_lift_is_detected_with_its_interval_covering_the_truth(built):
    settings, truth, _ = built
    planted = next(e for e in truth["experiments"] if e["id"] == "exp_promo_wording")["planted_relative_effect"]
    row = _row(settings, "exp_promo_wording", "click_through")
    assert (row["role"], row["variant"], row["control"]) == ("primary", "exclusive_privilege", "limited_time_offer")
    assert row["significant"] and row["p_adjusted"] < 0.05
    assert row["rel_lift"] > 0 and row["abs_effect"] > 0
    assert row["rel_ci_low"] <= planted <= row["rel_ci_high"]


def test_aa_experiment_is_not_significant_on_its_primary_metric(built):
    settings, _, summary = built
    row = _row(settings, "exp_parcel_aa", "click_through")
    assert row["role"] == "primary" and not row["significant"] and row["p_adjusted"] >= 0.05
    assert row["rel_ci_low"] < 0 < row["rel_ci_high"]
    verdict = next(e.verdict for e in summary.experiments if e.experiment_id == "exp_parcel_aa")
    assert "No detectable difference in click_through" in verdict


def test_holdout_srm_is_checked_against_the_planned_90_10_split(built):
    settings, _, _ = built
    counts = dict(_fetch(settings, "SELECT variant, count(*) FROM marts.fct_experiment_units "
                         "WHERE experiment_id = 'exp_cart_holdout' AND is_valid_unit GROUP BY variant"))
    (variants,) = _fetch(settings, "SELECT variants_json FROM marts.dim_experiments WHERE experiment_id = 'exp_cart_holdout'")[0]
    weights = {v["name"]: v["weight"] for v in json.loads(variants)}  # as the generator's experiments.yml defines them
    assert weights == {"holdout": 0.1, "treatment": 0.9}
    observed = np.array([counts["holdout"], counts["treatment"]], dtype=float)
    planned = stats.chisquare(observed, observed.sum() * np.array([weights["holdout"], weights["treatment"]]))
    equal = stats.chisquare(observed)
    row = _row(settings, "exp_cart_holdout", "converted")
    assert row["srm_status"] == "ok" and planned.pvalue >= 0.01
    assert row["srm_p_value"] == pytest.approx(planned.pvalue, rel=1e-9)
    assert equal.pvalue < 1e-6  # without the planned weights this would be a false alarm


def _ratio_covariate_sums(settings, experiment_id: str, metric: str, variant: str) -> tuple[float, ...]:
    """Σz, Σz², Σxz, Σyz of a ratio metric's CUPED covariate (overall, daily rows)."""
    return _fetch(settings, "SELECT sum(sum_z), sum(sum_z2), sum(sum_xz), sum(sum_yz) FROM marts.fct_experiment_stats "
                  "WHERE scope = 'daily' AND dimension = 'overall' AND experiment_id = ? AND metric = ? AND variant = ?",
                  [experiment_id, metric, variant])[0]


def test_fixed_ratio_row_matches_an_independent_delta_method_welch_computation(built):
    """click_through per delivered message, by the delta method — CUPED-adjusted by the units' clicks
    before exposure (the linearised ratio's slope on them, pooled within arms) where that narrows
    the interval, as computed here from the marts' sums alone."""
    settings, _, _ = built
    row = _row(settings, "exp_promo_wording", "click_through")

    def arm(variant):
        n, sx, sxx, sy, syy, sxy = _sums(settings, "exp_promo_wording", "click_through", variant)
        sz, szz, sxz, syz = _ratio_covariate_sums(settings, "exp_promo_wording", "click_through", variant)
        r, ybar = sx / sy, sy / n
        vx, vy, cxy = (sxx - sx * sx / n) / (n - 1), (syy - sy * sy / n) / (n - 1), (sxy - sx * sy / n) / (n - 1)
        var_l = (vx - 2 * r * cxy + r * r * vy) / ybar**2          # the linearised ratio's per-unit variance
        cross = ((sxz - sx * sz / n) - r * (syz - sy * sz / n)) / ybar
        return {"n": n, "r": r, "var_l": var_l, "cross": cross, "czz": szz - sz * sz / n, "zbar": sz / n}

    c, t = arm("limited_time_offer"), arm("exclusive_privilege")
    theta = (c["cross"] + t["cross"]) / (c["czz"] + t["czz"])
    zbar_all = (c["zbar"] * c["n"] + t["zbar"] * t["n"]) / (c["n"] + t["n"])
    raw_vc, raw_vt = c["var_l"] / c["n"], t["var_l"] / t["n"]
    adj_vc, adj_vt = ((a["var_l"] - 2 * theta * a["cross"] / (a["n"] - 1) + theta**2 * a["czz"] / (a["n"] - 1)) / a["n"]
                      for a in (c, t))
    adjusted = adj_vc + adj_vt < raw_vc + raw_vt
    assert adjusted and row["cuped_variance_reduction"] == pytest.approx(1 - (adj_vc + adj_vt) / (raw_vc + raw_vt),
                                                                         rel=1e-6)
    mc, mt = c["r"] - theta * (c["zbar"] - zbar_all), t["r"] - theta * (t["zbar"] - zbar_all)
    vc, vt = adj_vc, adj_vt
    se = np.sqrt(vc + vt)
    df = (vc + vt) ** 2 / (vc**2 / (c["n"] - 1) + vt**2 / (t["n"] - 1))
    p = 2 * stats.t.sf(abs((mt - mc) / se), df)
    q = stats.t.ppf(0.975, df)
    assert (row["n_control"], row["n_treatment"]) == (c["n"], t["n"])
    assert row["mean_control"] == pytest.approx(c["r"], rel=1e-9) and row["mean_treatment"] == pytest.approx(t["r"], rel=1e-9)
    assert row["abs_effect"] == pytest.approx(mt - mc, rel=1e-9)
    assert row["abs_ci_low"] == pytest.approx(mt - mc - q * se, rel=1e-7)
    assert row["p_value"] == pytest.approx(p, rel=1e-6)
    assert row["rel_lift"] == pytest.approx((mt - mc) / abs(mc), rel=1e-9)
    assert row["p_adjusted"] == pytest.approx(p, rel=1e-6)  # a family of one: Holm changes nothing


def test_secondary_metrics_are_holm_corrected_within_their_own_family(built):
    settings, _, _ = built
    rows = _fetch(settings, "SELECT metric, p_value, p_adjusted, family, correction FROM experiments.results "
                  "WHERE experiment_id = 'exp_promo_wording' AND analysis = 'fixed' AND dimension = 'overall' "
                  "AND role = 'secondary' ORDER BY p_value")
    assert {r[0] for r in rows} == {"clicked", "converted", "conversion_per_delivered"}
    assert {(r[3], r[4]) for r in rows} == {("secondary", "holm")}
    m, running = len(rows), 0.0
    for k, (_, p, adjusted, _, _) in enumerate(rows):
        running = max(running, min(1.0, (m - k) * p))
        assert adjusted == pytest.approx(running, rel=1e-12)


def test_dimension_breakdowns_are_bh_corrected_per_dimension(built):
    settings, _, _ = built
    rows = _fetch(settings, "SELECT dimension_value, p_value, p_adjusted, family, correction FROM experiments.results "
                  "WHERE experiment_id = 'exp_promo_wording' AND metric = 'click_through' AND dimension = 'region'")
    values = {r[0] for r in rows}
    assert "(other)" in values and len(values) == len(rows)
    assert {(r[3], r[4]) for r in rows} == {("dimension:region", "bh")}
    p = np.array([r[1] for r in rows])
    order = np.argsort(p)
    bh = np.minimum.accumulate((p[order] * len(p) / np.arange(1, len(p) + 1))[::-1])[::-1]
    assert np.allclose(np.array([r[2] for r in rows])[order], np.minimum(bh, 1.0), rtol=1e-12)


def test_results_hold_one_row_per_experiment_variant_metric_analysis_and_dimension_value(built):
    settings, _, _ = built
    total, distinct = _fetch(settings, f"SELECT count(*), count(DISTINCT ({', '.join(KEY)})) FROM experiments.results")[0]
    assert total == distinct
    # every (experiment, metric, dimension value) of the marts × treatment arms; overall × 4 analyses (fixed,
    # sequential, Bayesian, post-stratified by segment), breakdowns fixed
    expected = _fetch(settings, """
        with cells as (select distinct experiment_id, metric, dimension, dimension_value from marts.fct_experiment_stats),
             arms as (select experiment_id, count(distinct variant) - 1 as treatments from marts.fct_experiment_stats
                      group by 1)
        select sum(arms.treatments * case when dimension = 'overall' then 4 else 1 end)
        from cells join arms using (experiment_id)""")[0][0]
    assert total == expected
    analyses = dict(_fetch(settings, "SELECT analysis, count(*) FILTER (WHERE dimension <> 'overall') "
                           "FROM experiments.results GROUP BY 1"))
    assert analyses == {"fixed": analyses["fixed"], "sequential": 0, "bayesian": 0, "post_stratified": 0}
    assert analyses["fixed"] > 0
    bayes = _row(settings, "exp_promo_wording", "click_through", "bayesian")
    assert bayes["chance_to_win"] > 0.95 and bayes["expected_loss"] >= 0 and bayes["p_value"] is None
    assert _row(settings, "exp_promo_wording", "click_through", "fixed")["mde_rel"] > 0


def test_rerunning_gives_identical_rows_and_reports(built):
    settings, _, _ = built
    before = _all_rows(settings)
    report = (settings.reports_dir / "exp_promo_wording.html").read_text()
    conn = connect_build(settings)
    try:
        write_results(conn, settings)
        write_results(conn, settings, ["exp_parcel_aa"])
    finally:
        conn.close()
    assert _all_rows(settings) == before
    assert (settings.reports_dir / "exp_promo_wording.html").read_text() == report


def test_guardrails_of_click_experiments_are_judged_for_non_inferiority(built):
    settings, _, _ = built
    for metric in ("conversions", "revenue"):
        row = _row(settings, "exp_promo_wording", metric)
        assert (row["role"], row["family"], row["guardrail_margin"]) == ("guardrail", "guardrail", 0.02)
        assert isinstance(row["guardrail_passed"], bool) and row["p_adjusted"] is None
        assert row["guardrail_passed"] == (row["noninferiority_p_value"] < 0.05)
    assert _row(settings, "exp_bill_personalisation", "revenue")["role"] == "secondary"


def test_confidence_sequence_is_stored_per_day_and_ends_at_the_sequential_row(built):
    settings, _, _ = built
    days = _fetch(settings, "SELECT analysis_date, rel_cs_low, rel_cs_high FROM experiments.confidence_sequences "
                  "WHERE experiment_id = 'exp_promo_wording' ORDER BY analysis_date")
    assert len(days) >= 5
    seq = _row(settings, "exp_promo_wording", "click_through", "sequential")
    fixed = _row(settings, "exp_promo_wording", "click_through", "fixed")
    assert days[-1][1:] == pytest.approx((seq["rel_ci_low"], seq["rel_ci_high"]), rel=1e-12)
    assert seq["rel_ci_high"] - seq["rel_ci_low"] > fixed["rel_ci_high"] - fixed["rel_ci_low"]


def test_reports_are_written_with_the_verdict_line_and_svg_charts(built):
    settings, _, summary = built
    assert {e.experiment_id for e in summary.experiments} == {
        "exp_promo_wording", "exp_bill_personalisation", "exp_cart_holdout", "exp_parcel_aa"}
    for exp in summary.experiments:
        md, page = exp.markdown_path.read_text(), exp.html_path.read_text()
        assert exp.markdown_path.parent == settings.reports_dir and exp.verdict.startswith("Verdict: ")
        assert f"**{exp.verdict}**" in md and page.count("<svg") == 2
        for name in ("Sample ratio", "Goal metric", "Confidence sequence over days", "Power so far", "Breakdowns"):
            assert name in md and name in page
        for linked in re.findall(r"\]\(([^)]+\.svg)\)", md):
            assert (settings.reports_dir / linked).read_text().startswith("<svg")
    promo = next(e for e in summary.experiments if e.experiment_id == "exp_promo_wording")
    assert promo.verdict.startswith("Verdict: exclusive_privilege raises click_through by +")
    assert not list(settings.reports_dir.glob(".*.tmp"))


def test_cli_help_describes_the_report(built):
    proc = run_cli("experiments", "report", "--help")
    assert proc.returncode == 0 and "EXPERIMENT_ID" in proc.stdout and "--all" in proc.stdout


def test_cli_unknown_experiment_exits_2_listing_the_known_ones(built):
    settings, _, _ = built
    proc = run_cli("experiments", "report", "exp_nope", env_extra={"NUDGELAB_HOME": str(settings.home)})
    assert proc.returncode == 2
    assert "unknown experiment 'exp_nope'" in proc.stderr and "exp_promo_wording" in proc.stderr


def test_cli_writes_and_publishes_the_results(built):
    settings, _, _ = built
    before = _all_rows(settings)
    proc = run_cli("experiments", "report", "exp_cart_holdout", env_extra={"NUDGELAB_HOME": str(settings.home)})
    assert proc.returncode == 0, proc.stderr
    assert "exp_cart_holdout (SRM ok): Verdict:" in proc.stdout and "published" in proc.stdout
    conn = duckdb.connect(str(current_snapshot(settings)), read_only=True)
    try:
        published = conn.execute(f"SELECT * FROM experiments.results ORDER BY {', '.join(KEY)}").fetchall()
    finally:
        conn.close()
    assert published == before


def test_cli_refuses_when_the_build_is_not_audited(tmp_path):
    home = tmp_path / "home"
    env = {"NUDGELAB_HOME": str(home), "NUDGELAB_HASH_KEY": TEST_KEY}
    proc = run_cli("experiments", "report", "--all", env_extra=env)
    assert proc.returncode == 2 and "no audited build: run `nudgelab build`" in proc.stderr
    assert not Path(home / "warehouse.duckdb").exists()
    conn = connect_build(load_settings(home))
    try:
        set_build_audited(conn, False)
    finally:
        conn.close()
    proc = run_cli("experiments", "report", env_extra=env)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "nudgelab: the build database holds no audited build (the last build failed, is still running, or dbt ran "
        "outside `nudgelab build` since): run `nudgelab build`")
    assert current_snapshot(load_settings(home)) is None


STATS_DDL = ("CREATE TABLE marts.fct_experiment_stats (scope VARCHAR, experiment_id VARCHAR, variant VARCHAR, metric VARCHAR, "
             "metric_type VARCHAR, dimension VARCHAR, dimension_value VARCHAR, analysis_date DATE, n HUGEINT, "
             "sum_x DOUBLE, sum_x2 DOUBLE, sum_y DOUBLE, sum_y2 DOUBLE, sum_xy DOUBLE, sum_z DOUBLE DEFAULT 0, "
             "sum_z2 DOUBLE DEFAULT 0, sum_xz DOUBLE DEFAULT 0, sum_yz DOUBLE DEFAULT 0)")
STATS_COLUMNS = ("(scope, experiment_id, variant, metric, metric_type, dimension, dimension_value, analysis_date, n, "
                 "sum_x, sum_x2, sum_y, sum_y2, sum_xy)")


DIM_DDL = ("CREATE TABLE marts.dim_experiments (experiment_id VARCHAR, has_definition BOOLEAN, experiment_name VARCHAR, "
           "hypothesis VARCHAR, owner VARCHAR, unit VARCHAR, campaign_id VARCHAR, variants_json VARCHAR, control VARCHAR, "
           "goal_metrics_json VARCHAR, secondary_metrics_json VARCHAR, guardrail_metrics_json VARCHAR, alpha DOUBLE, "
           "start_at TIMESTAMPTZ, end_at TIMESTAMPTZ, status VARCHAR, defined_at TIMESTAMPTZ, units_assigned BIGINT, "
           "first_assigned_at TIMESTAMPTZ, last_assigned_at TIMESTAMPTZ)")


def test_degenerate_experiments_give_rows_with_reasons_and_an_undefined_one_is_never_guessed(tmp_path):
    from warehouse.connections import connect_memory

    conn = connect_memory()
    conn.execute("CREATE SCHEMA marts")
    conn.execute(STATS_DDL)
    conn.execute(DIM_DDL)
    conn.execute("CREATE TABLE marts.fct_experiment_units (experiment_id VARCHAR, variant VARCHAR, is_valid_unit BOOLEAN)")
    rows = []
    for scope in ("daily", "cumulative"):
        # exp_new: arm b never had a delivered message (ratio undefined); exp_solo: data, no definition
        rows += [(scope, "exp_new", "a", "click_through", "ratio", "overall", "(all)", "2026-01-01", 3, 1, 1, 4, 6, 2),
                 (scope, "exp_new", "b", "click_through", "ratio", "overall", "(all)", "2026-01-01", 2, 0, 0, 0, 0, 0),
                 (scope, "exp_new", "a", "converted", "proportion", "overall", "(all)", "2026-01-01", 3, 1, 1, 0, 0, 0),
                 (scope, "exp_new", "b", "converted", "proportion", "overall", "(all)", "2026-01-01", 2, 0, 0, 0, 0, 0),
                 (scope, "exp_solo", "only", "converted", "proportion", "overall", "(all)", "2026-01-01", 5, 2, 2, 0, 0, 0),
                 (scope, "exp_solo", "other", "converted", "proportion", "overall", "(all)", "2026-01-01", 4, 1, 1, 0, 0, 0)]
    conn.executemany(f"INSERT INTO marts.fct_experiment_stats {STATS_COLUMNS} VALUES (" + ", ".join("?" * 14) + ")", rows)
    conn.executemany("INSERT INTO marts.fct_experiment_units VALUES (?, ?, ?)",
                     [("exp_new", "a", True)] * 3 + [("exp_new", "b", True)] * 2 + [("exp_new", "b", False)]
                     + [("exp_solo", "only", True)] * 5 + [("exp_solo", "other", True)] * 4)
    conn.execute("INSERT INTO marts.dim_experiments (experiment_id, has_definition, variants_json, control, "
                 "goal_metrics_json, secondary_metrics_json, guardrail_metrics_json, alpha, status) VALUES "
                 "('exp_new', true, '[{\"name\": \"a\", \"weight\": 0.75}, {\"name\": \"b\", \"weight\": 0.25}]', 'a', "
                 "'[\"converted\"]', '[]', '[]', 0.05, 'running'), "
                 "('exp_solo', false, null, null, null, null, null, null, null)")
    summary = write_results(conn, load_settings(tmp_path / "home"))
    by_id = {e.experiment_id: e for e in summary.experiments}
    reasons = dict(conn.execute("SELECT metric, reason FROM experiments.results WHERE experiment_id = 'exp_new' "
                                "AND analysis = 'fixed'").fetchall())
    # arm b converted 0 of 2: the delta method gives the lift no spread, so the relative fields are undefined
    assert reasons == {"click_through": "zero_denominator", "converted": "zero_relative_variance"}
    nulls = conn.execute("SELECT count(*) FROM experiments.results WHERE isnan(p_value) OR isnan(rel_lift)").fetchone()
    assert nulls == (0,)  # undefined numbers are NULL, never NaN
    srm = conn.execute("SELECT DISTINCT srm_status, srm_p_value FROM experiments.results WHERE experiment_id = 'exp_new'").fetchall()
    assert srm == [("ok", None)]  # 3 : 1 planned over 5 units → expected 3.75 and 1.25: too few to decide
    page = by_id["exp_new"].markdown_path.read_text()
    assert "a 3 (75 % planned), b 2 (25 % planned)" in page and "1 unit assigned to two arms left out" in page
    # no definition: no control is guessed; each arm's size is stored with the reason, and the summary says so
    solo = conn.execute("SELECT variant, control, n_treatment, reason FROM experiments.results "
                        "WHERE experiment_id = 'exp_solo' ORDER BY variant").fetchall()
    assert solo == [("only", "(none)", 5, "no_definition"), ("other", "(none)", 4, "no_definition")]
    assert by_id["exp_solo"].status == "no_definition" and by_id["exp_solo"].markdown_path is None
    assert "no definition" in by_id["exp_solo"].verdict
    listed = dict(conn.execute("SELECT experiment_id, result_status FROM experiments.summary").fetchall())
    assert listed == {"exp_new": "inconclusive", "exp_solo": "no_definition"}


def test_the_post_stratified_goal_comparison_equals_the_stratified_difference_of_the_marts_segment_sums(built):
    """Σ_k w_k [(R_t,k − R_c,k) − θ(z̄_t,k − z̄_c,k)] over segments, w_k the segment's share of units and
    θ the linearised ratio's slope on the pre-period clicks pooled within arm × segment — CUPED with
    post-stratification — computed here from marts.fct_experiment_stats alone."""
    settings, _, _ = built
    sums = _fetch(settings, """
        select variant, dimension_value, sum(n), sum(sum_x), sum(sum_y), sum(sum_z), sum(sum_z2), sum(sum_xz),
               sum(sum_yz)
        from marts.fct_experiment_stats
        where scope = 'daily' and experiment_id = 'exp_promo_wording' and metric = 'click_through'
          and dimension = 'segment' group by 1, 2""")
    control = _row(settings, "exp_promo_wording", "click_through", "fixed")["control"]
    (treatment,) = {v for v, *_ in sums} - {control}
    cell = {}
    for v, k, n, sx, sy, sz, szz, sxz, syz in sums:
        r, ybar = sx / sy, sy / n
        cell[(v, k)] = {"n": n, "r": r, "zbar": sz / n, "czz": szz - sz * sz / n,
                        "cross": ((sxz - sx * sz / n) - r * (syz - sy * sz / n)) / ybar}
    theta = sum(c["cross"] for c in cell.values()) / sum(c["czz"] for c in cell.values())
    segments = sorted({k for _, k, *_ in sums})
    units = {k: cell[(control, k)]["n"] + cell[(treatment, k)]["n"] for k in segments}
    total = sum(units.values())
    expected = sum(units[k] / total * ((cell[(treatment, k)]["r"] - cell[(control, k)]["r"])
                                       - theta * (cell[(treatment, k)]["zbar"] - cell[(control, k)]["zbar"]))
                   for k in segments)
    row = _row(settings, "exp_promo_wording", "click_through", "post_stratified")
    assert row["strata"] == "segment" and row["abs_effect"] == pytest.approx(expected, rel=1e-9)
    assert row["strata_variance_reduction"] is not None and row["abs_ci_low"] < row["abs_effect"] < row["abs_ci_high"]
    report = (settings.reports_dir / "exp_promo_wording.md").read_text()
    assert "## Post-stratified by segment" in report and "variance removed by strata" in report
