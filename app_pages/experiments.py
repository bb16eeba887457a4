"""Experiments — "can I ship it?": every experiment with its status and goal lift; one in detail
(verdict, sample ratio, lifts with intervals, the confidence sequence over days, breakdowns,
power so far and the days still needed), its report to download, and a sample-size calculator."""

from __future__ import annotations

import json

import polars as pl
import streamlit as st

from app_pages import charts, data, kpis, widgets
from experiments.formatting import p_value as fmt_p
from experiments.report_pages import declared_test, srm_where
from experiments.power import sample_size

STATUS = {"significant": "significant", "inconclusive": "inconclusive", "srm_problem": "SRM problem",
          "no_data": "no data yet", "no_definition": "no definition"}

st.title("Experiments")
if not data.has_table("experiments.summary"):
    st.info("No experiment results are published yet: `nudgelab build` computes them.")
    st.stop()
listing = data.query(data.EXPERIMENT_LIST)
if listing.is_empty():
    st.info("No experiment has assignments or a definition yet. Define one in an experiments.yml and "
            "`nudgelab ingest` it.")
    st.stop()
shown = listing.with_columns(
    pl.col("result_status").replace_strict(STATUS, default=pl.col("result_status")).alias("status"),
    pl.when(pl.col("definition_status") == "draft").then(pl.lit("draft")).otherwise(pl.col("definition_status"))
    .alias("state"))
st.dataframe(shown.select("experiment_id", "name", "state", "status", "goal_metric", "goal_variant", "goal_rel_lift",
                          "goal_rel_ci_low", "goal_rel_ci_high", "goal_p_adjusted", "srm_status", "units"),
             hide_index=True, width="stretch", key="experiments_list",
             column_config={"goal_rel_lift": st.column_config.NumberColumn("goal lift", format="percent"),
                            "goal_rel_ci_low": st.column_config.NumberColumn("95 % CI low", format="percent"),
                            "goal_rel_ci_high": st.column_config.NumberColumn("95 % CI high", format="percent"),
                            "goal_p_adjusted": st.column_config.NumberColumn("adjusted p", format="%.4f"),
                            "units": widgets.COUNT, "state": "definition", "status": "result"})

ids = listing["experiment_id"].to_list()
chosen = st.selectbox("Experiment", ids, key="experiment",
                      format_func=lambda i: f"{i} — {STATUS.get(listing.filter(pl.col('experiment_id') == i)['result_status'][0], '')}")
summary = listing.filter(pl.col("experiment_id") == chosen).row(0, named=True)
status = summary["result_status"]
st.header(summary["name"] or chosen)
say = {"significant": st.success, "srm_problem": st.error, "no_definition": st.warning}.get(status, st.info)
say(summary["verdict"])
if status == "no_definition":
    st.stop()

definition = data.query(data.EXPERIMENT_DEFINITION, [chosen])
if definition.height:
    d = definition.row(0, named=True)
    facts = [f"**Control:** {d['control']}", f"**Owner:** {d['owner'] or '—'}", f"**Campaign:** {d['campaign_id'] or '—'}",
             f"**Status:** {d['status']}", f"**α:** {d['alpha']:g}",
             f"**Since:** {d['start_at']:%Y-%m-%d}" if d["start_at"] else "", f"**Units assigned:** {d['units_assigned']:,}"]
    st.markdown(" · ".join(f for f in facts if f))
    if d["hypothesis"]:
        st.caption(d["hypothesis"])
results = data.query(data.EXPERIMENT_RESULTS, [chosen])
for name, dtype in (("alternative", pl.String), ("null_lift", pl.Float64), ("test_p_value", pl.Float64),
                    ("strata", pl.String), ("strata_variance_reduction", pl.Float64), ("adj_ci_alpha", pl.Float64),
                    ("adj_rel_ci_low", pl.Float64), ("adj_rel_ci_high", pl.Float64), ("conditional_power", pl.Float64),
                    ("conditional_power_sequential", pl.Float64), ("days_to_end", pl.Int64), ("units_at_end", pl.Int64)):
    if name not in results.columns:   # a snapshot built before metrics declared their tests
        results = results.with_columns(pl.lit(None, dtype).alias(name))
fixed = results.filter((pl.col("analysis") == "fixed") & (pl.col("dimension") == "overall"))
srm = fixed.select("srm_status", "srm_p_value").head(1)
if srm.height:
    srm_status, srm_p = srm.row(0)
    line = f"Sample ratio check: **{srm_status}** (χ² p = {fmt_p(srm_p)})"
    (st.error if srm_status == "fail" else st.warning if srm_status == "warn" else st.caption)(line)
    stored = data.query(data.EXPERIMENT_SUMMARY, [chosen])
    located = stored["srm_localisation"][0] if "srm_localisation" in stored.columns and stored.height else None
    if located:
        where = srm_where({"localisation": json.loads(located)})
        st.markdown(f"**Where the imbalance sits:** {where}" if where else
                    "No single segment, region, carrier or exposure day explains the imbalance: look at "
                    "assignment and logging as a whole.")

st.subheader("Lifts against the control")
# a one-sided bound has one open end: drawn from the bound to the estimate
plotted = fixed.filter(pl.col("rel_lift").is_not_null() & (pl.col("rel_ci_low").is_not_null()
                                                          | pl.col("rel_ci_high").is_not_null())).with_columns(
    pl.coalesce("rel_ci_low", "rel_lift").alias("rel_ci_low"), pl.coalesce("rel_ci_high", "rel_lift").alias("rel_ci_high"))
if plotted.height:
    order = {"primary": 0, "secondary": 1, "guardrail": 2}
    plotted = plotted.with_columns(pl.col("role").replace_strict(order, default=3).alias("_order")).sort("_order", "metric")
    chart, frame = charts.forest(plotted.drop("_order").with_columns(
        pl.col("role").replace({"primary": "goal"})))
    widgets.chart(chart, frame, "experiment_forest", f"{chosen}_lifts")
declared = fixed.select(pl.struct("alternative", "null_lift").map_elements(
    lambda r: declared_test(r) or "two-sided, lift ≠ 0", return_dtype=pl.String).alias("test"))
table = pl.concat([fixed, declared], how="horizontal").select(
    "role", "metric", "variant", "test", "n_control", "n_treatment", "mean_control", "mean_treatment", "rel_lift",
    "rel_ci_low", "rel_ci_high", "test_p_value", "p_adjusted", "adj_rel_ci_low", "adj_rel_ci_high", "significant",
    "guardrail_margin", "guardrail_passed",
    "cuped_variance_reduction", "mde_rel", "reason")
widgets.paged(table, "experiment_metrics", {
    "rel_lift": widgets.PCT, "mde_rel": widgets.PCT,
    "guardrail_margin": widgets.PCT, "cuped_variance_reduction": widgets.PCT,
    "p_adjusted": st.column_config.NumberColumn(format="%.4g"), "n_control": widgets.COUNT, "n_treatment": widgets.COUNT,
    "test_p_value": st.column_config.NumberColumn("p (its test)", format="%.4g"),
    "rel_ci_low": st.column_config.NumberColumn("95 % low (empty: open)", format="percent"),
    "rel_ci_high": st.column_config.NumberColumn("95 % high (empty: open)", format="percent"),
    "adj_rel_ci_low": st.column_config.NumberColumn("adjusted low", format="percent",
                                                    help="At the family's level: Bonferroni for Holm, FCR for BH"),
    "adj_rel_ci_high": st.column_config.NumberColumn("adjusted high", format="percent")})

stratified = results.filter((pl.col("analysis") == "post_stratified") & (pl.col("dimension") == "overall"))
if stratified.height:
    st.subheader(f"Post-stratified by {stratified['strata'][0]}")
    st.caption("The effect estimated within each stratum and weighted by the strata's shares of units: an estimate "
               "beside the one above (which decides), with the variance the strata remove next to CUPED's.")
    cuped = fixed.select("metric", "variant", pl.col("cuped_variance_reduction").alias("cuped_reduction"))
    widgets.paged(stratified.join(cuped, on=["metric", "variant"], how="left").select(
        "role", "metric", "variant", "rel_lift", "rel_ci_low", "rel_ci_high", "test_p_value", "p_adjusted",
        "strata_variance_reduction", "cuped_reduction"), "experiment_stratified", {
        "rel_lift": widgets.PCT, "rel_ci_low": widgets.PCT, "rel_ci_high": widgets.PCT,
        "strata_variance_reduction": st.column_config.NumberColumn("variance removed by strata (+ CUPED within them)",
                                                                   format="percent"),
        "cuped_reduction": st.column_config.NumberColumn("by CUPED alone", format="percent"),
        "test_p_value": st.column_config.NumberColumn("p (its test)", format="%.4g"),
        "p_adjusted": st.column_config.NumberColumn(format="%.4g")})

sequence = data.query(data.EXPERIMENT_SEQUENCE, [chosen]).filter(
    pl.col("rel_cs_low").is_not_null() | pl.col("rel_cs_high").is_not_null()).with_columns(   # one-sided: to the estimate
    pl.coalesce("rel_cs_low", "rel_lift").alias("rel_cs_low"), pl.coalesce("rel_cs_high", "rel_lift").alias("rel_cs_high"))
if sequence.height:
    st.subheader(f"Confidence sequence of {sequence['metric'][0]} over days")
    st.caption("Always valid: it may be read every day without inflating false positives.")
    chart, frame = charts.confidence_sequence(sequence)
    widgets.chart(chart, frame, "experiment_sequence", f"{chosen}_confidence_sequence")

goal = summary["goal_metric"]
breakdowns = results.filter((pl.col("analysis") == "fixed") & (pl.col("dimension") != "overall")
                            & (pl.col("metric") == goal))
if breakdowns.height:
    st.subheader(f"Breakdowns of {goal} (BH-corrected per dimension)")
    dimension = st.selectbox("Dimension", sorted(breakdowns["dimension"].unique().to_list()), key="experiment_dimension")
    widgets.paged(breakdowns.filter(pl.col("dimension") == dimension).select(
        "dimension_value", "variant", "n_control", "n_treatment", "rel_lift", "rel_ci_low", "rel_ci_high", "p_value",
        "p_adjusted", "significant"), "experiment_breakdown",
        {"rel_lift": widgets.PCT, "rel_ci_low": widgets.PCT, "rel_ci_high": widgets.PCT})

st.subheader("Power so far")
goal_rows = fixed.filter((pl.col("role") == "primary") & (pl.col("metric") == goal))
enrolment = data.query(data.EXPERIMENT_ENROLMENT, [chosen, goal])
per_day = float(enrolment.tail(7)["units"].mean()) if enrolment.height else 0.0
target = st.number_input("Smallest relative lift worth detecting (%)", min_value=0.5, max_value=100.0, value=5.0,
                         step=0.5, key="experiment_target_lift") / 100
for row in goal_rows.iter_rows(named=True):
    mde = row["mde_rel"]
    n_now = row["n_control"] + row["n_treatment"]
    if not mde:
        st.write(f"{row['variant']}: too few units to say yet.")
        continue
    # the MDE shrinks with √n: the units needed for the target lift, and the days at the recent rate
    needed = n_now * (mde / target) ** 2
    days = kpis.days_needed(n_now, per_day, needed)
    when = ("reached" if days == 0 else f"about {days:,.0f} more days at {per_day:,.0f} units a day" if days
            else "not enrolling any more units")
    st.write(f"**{row['variant']}** vs {row['control']}: with {n_now:,} units the test detects ±{mde * 100:.1f} % "
             f"(80 % power); ±{target * 100:g} % needs about {needed:,.0f} units — {when}.")
    if row["conditional_power"] is not None:
        st.write(f"By the planned end ({row['days_to_end']:,} days, about {row['units_at_end']:,} units), if the "
                 f"effect stays what it is now: **{row['conditional_power'] * 100:.0f} %** chance of significance "
                 f"for the fixed-horizon test, **{row['conditional_power_sequential'] * 100:.0f} %** for the "
                 "always-valid one read daily.")

report = data.report_file(summary["report_html"])
if report:
    st.download_button("Download the report (HTML)", report.read_bytes(), file_name=report.name, mime="text/html",
                       key="experiment_report_html")
markdown = data.report_file(summary["report_markdown"])
if markdown:
    st.download_button("Download the report (Markdown)", markdown.read_bytes(), file_name=markdown.name,
                       mime="text/markdown", key="experiment_report_md")

with st.expander("Sample-size calculator"):
    left, right = st.columns(2)
    baseline = left.number_input("Baseline rate (%)", min_value=0.1, max_value=99.9, value=5.0, step=0.1,
                                 key="calc_baseline") / 100
    lift = left.number_input("Relative lift to detect (%)", min_value=0.5, max_value=200.0, value=10.0, step=0.5,
                             key="calc_lift") / 100
    alpha = right.number_input("α (the family's)", min_value=0.001, max_value=0.2, value=0.05, step=0.005,
                               format="%.3f", key="calc_alpha")
    power = right.number_input("Power", min_value=0.5, max_value=0.99, value=0.8, step=0.05, key="calc_power")
    share = right.number_input("Treatment share of units", min_value=0.05, max_value=0.95, value=0.5, step=0.05,
                               key="calc_share")
    alternative = left.selectbox("Test", ("two-sided", "greater", "less"), key="calc_alternative",
                                 format_func={"two-sided": "two-sided", "greater": "one-sided: an increase",
                                              "less": "one-sided: a decrease"}.get)
    comparisons = right.number_input("Goal comparisons (goal metrics × treatment arms)", min_value=1, max_value=50,
                                     value=1, step=1, key="calc_comparisons",
                                     help="Planned at α / comparisons each: the first step of the Holm correction "
                                          "the analysis runs over the goal metrics.")
    try:
        signed = -lift if alternative == "less" else lift
        n_control = int(sample_size(signed, baseline=baseline, metric_type="proportion", alpha=alpha, power=power,
                                    ratio=share / (1 - share), relative=True, alternative=alternative,
                                    comparisons=int(comparisons)))
        n_treatment = int(round(n_control * share / (1 - share)))
        st.metric("Units needed", f"{n_control + n_treatment:,}", f"{n_control:,} control · {n_treatment:,} treatment",
                  delta_color="off")
    except ValueError as exc:
        st.warning(str(exc))
