"""Render one experiment's analysis (``experiments.analysis.Analysis.as_page()``) for its owner.

The one renderer for both ways in: the warehouse's reports and ``nudgelab experiments analyze``.

Markdown and a self-contained HTML page with the same sections: the verdict line, SRM health, the
metric tables (goal, secondary, guardrails), a forest plot of relative lifts, the always-valid
confidence sequence over days, dimension breakdowns of the goal metric, and the MDE reached so far.
Charts are hand-written inline SVG (no plotting library); the Markdown links the same SVGs as files.
"""

from __future__ import annotations

import html
from typing import Any

from experiments.definition import TWO_SIDED, MetricTest
from experiments.formatting import number as _num
from experiments.formatting import p_value as _p
from experiments.formatting import pct as _pct

ROLE_TITLES = (("primary", "Goal metric"), ("secondary", "Secondary metrics"), ("guardrail", "Guardrails"))
COLOURS = {"up": "#1a7f37", "down": "#cf222e", "none": "#57606a"}
REASON_TEXT = {
    "no_units": "an arm has no units yet", "too_few_units": "an arm has fewer than two units",
    "zero_denominator": "an arm has no denominator (e.g. no delivered messages)",
    "negative_variance": "the sums are inconsistent", "zero_variance": "both arms are constant",
    "zero_control_mean": "the control's mean is 0, so a relative lift is undefined",
    "zero_relative_variance": "the treatment arm is constant at 0, so the lift's interval is undefined",
}
# reasons that leave the absolute comparison valid: the verdict still judges it
ABSOLUTE_STILL_VALID = ("zero_control_mean", "zero_relative_variance")


def _rows(page: dict[str, Any], *, analysis: str = "fixed", dimension: str = "overall",
          role: str | None = None, metric: str | None = None) -> list[dict[str, Any]]:
    """The page's result rows filtered by analysis, dimension, role and metric."""
    return [r for r in page["rows"] if r["analysis"] == analysis and r["dimension"] == dimension
            and (role is None or r["role"] == role) and (metric is None or r["metric"] == metric)]


def _ci(low: float | None, high: float | None, pct: bool = True, words: bool = False) -> str:
    """An interval as "[a, b]" (percentages by default), a one-sided bound as "[a, ∞)" or "(−∞, b]";
    with ``words``, as a sentence says it: "CI a to b", "bound ≥ a", "bound ≤ b"."""
    f = (lambda v: _pct(v, 1)) if pct else _num
    if low is None and high is not None:
        return f"bound ≤ {f(high)}" if words else f"(−∞, {f(high)}]"
    if high is None and low is not None:
        return f"bound ≥ {f(low)}" if words else f"[{f(low)}, ∞)"
    return f"CI {f(low)} to {f(high)}" if words else f"[{f(low)}, {f(high)}]"


def declared_test(row: dict[str, Any]) -> str | None:
    """The declared test when it is not the default two-sided one against 0: "H1: lift > −2 % (one-sided)"."""
    test = MetricTest(row.get("alternative") or "two-sided", row.get("null_lift") or 0.0)
    if test == TWO_SIDED:
        return None
    return f"H1: {test.describe()}" + ("" if test.alternative == "two-sided" else " (one-sided)")


def _test_p(row: dict[str, Any]) -> float | None:
    """The p-value of the declared test (the absolute one's for the default test)."""
    return row.get("test_p_value") if row.get("test_p_value") is not None else row.get("p_value")


def _find(page: dict[str, Any], row: dict[str, Any], analysis: str) -> dict[str, Any] | None:
    """The same comparison's row in another analysis."""
    return next((r for r in page["rows"] if r["analysis"] == analysis and r["dimension"] == row["dimension"]
                 and r["dimension_value"] == row["dimension_value"] and r["metric"] == row["metric"]
                 and r["variant"] == row["variant"]), None)


def verdict_line(page: dict[str, Any]) -> str:
    """One line an owner understands: can the split be trusted, did the goal metrics move, do guardrails hold."""
    srm, control = page["srm"], page["control"]
    if srm["status"] == "fail":
        where = srm_where(srm)
        return (f"Verdict: do not trust these results — the split between arms is off (sample ratio mismatch, "
                f"p = {_p(srm['p_value'])}){'; it sits in ' + where if where else ''}; fix assignment or logging first.")
    parts = []
    for row in _rows(page, role="primary"):
        v, metric = row["variant"], row["metric"]
        if row["reason"] and row["reason"] not in ABSOLUTE_STILL_VALID:
            why = REASON_TEXT.get(row["reason"], row["reason"])
            parts.append(f"The {metric} of {v} cannot be compared with {control} yet ({why}).")
            continue
        if row["rel_lift"] is not None:
            effect = f"{_pct(row['rel_lift'], 1)} (95 % {_ci(row['rel_ci_low'], row['rel_ci_high'], words=True)})"
        else:
            effect = (f"{_num(row['abs_effect'])} absolute "
                      f"(95 % {_ci(row['abs_ci_low'], row['abs_ci_high'], pct=False, words=True)})")
        declared = declared_test(row)
        if row["significant"]:
            direction = "raises" if (row["abs_effect"] or 0) > 0 else "lowers"
            seq = _find(page, row, "sequential")
            confirm = ("" if seq is None else "; the always-valid test for daily looks confirms it" if seq["significant"]
                       else "; the always-valid test for daily looks does not confirm it yet")
            claim = (f"{v} against {control} on {metric}: {effect}, {declared} holds"
                     if declared else f"{v} {direction} {metric} by {effect} against {control}")
            parts.append(f"{claim}, significant after "
                         f"{row['correction'].upper() if row['correction'] == 'bh' else row['correction'].capitalize()} "
                         f"correction (adjusted p = {_p(row['p_adjusted'])}){confirm}.")
        else:
            mde = row.get("mde_rel")
            reach = f"; so far the test can detect a change of about ±{mde * 100:.1f} %" if mde else ""
            if declared:
                parts.append(f"{declared} for {metric} is not shown yet ({v} against {control}): {effect}.")
            else:
                parts.append(f"No detectable difference in {metric} between {v} and {control} yet: {effect}{reach}.")
    if parts:
        text = "Verdict: " + " ".join(parts)
    elif not page["treatments"]:
        text = "Verdict: nothing to compare yet (only one arm has units)."
    else:
        text = f"Verdict: nothing to judge yet: no goal metric ({', '.join(page.get('goal_metrics') or [page['primary']])}) is measured."
    guards = _rows(page, role="guardrail")
    failed = [f"{r['metric']} ({r['variant']}, margin {r['guardrail_margin'] * 100:g} %)" for r in guards
              if not r["guardrail_passed"]]
    if failed:
        text += f" Guardrail check fails: a loss beyond the margin cannot be ruled out yet for {', '.join(failed)}."
    elif guards:
        margins = sorted({f"{r['metric']} {r['guardrail_margin'] * 100:g} %" for r in guards})
        text += f" Guardrails hold: no loss beyond the margin ({', '.join(margins)})."
    if srm["status"] == "warn":
        text += f" Caution: possible sample ratio mismatch (p = {_p(srm['p_value'])})."
    return text


def srm_where(srm: dict[str, Any]) -> str | None:
    """The dimension values that carry a mismatch, as a phrase (None when none stands out)."""
    found = [f for f in srm.get("localisation") or [] if f.get("carries")]
    if not found:
        return None
    return "; ".join(
        f"{f['dimension']} = {f['value']} ({', '.join(f'{a} {n:,}' for a, n in f['counts'].items())}: p = "
        f"{_p(f['p_adjusted'])}, while the other {f['dimension']} values balance at p = {_p(f['rest_p_value'])})"
        for f in found[:3])


def srm_line(page: dict[str, Any]) -> str:
    """SRM health: units per arm against the planned split, p-value and status."""
    srm = page["srm"]
    basis = "planned" if srm["weights_source"] == "planned" else "expected, equal split"
    counts = ", ".join(f"{a} {n:,} ({srm['weights'][a] * 100:g} % {basis})" for a, n in srm["counts"].items())
    extra = f" — {srm['reason']}" if srm.get("reason") else ""
    n = srm.get("invalid_units") or 0
    invalid = f"; {n:,} unit{'' if n == 1 else 's'} assigned to two arms left out" if n else ""
    where = srm_where(srm)
    located = f". The imbalance sits in {where}" if where else (
        ". No single segment, region, carrier or day explains it" if srm.get("localisation") is not None else "")
    return f"Sample ratio: {counts}; χ² p = {_p(srm['p_value'])}: {srm['status']}{extra}{invalid}{located}"


def mde_line(page: dict[str, Any]) -> str:
    """Power reached so far: the smallest relative change of the goal metric detected with 80 % power."""
    parts = []
    for row in _rows(page, role="primary"):
        mde = row.get("mde_rel")
        reach = f"±{mde * 100:.1f} %" if mde else "n/a (too few units or no baseline)"
        parts.append(f"{row['variant']} vs {row['control']} ({row['n_treatment']:,} / {row['n_control']:,} units): {reach}")
    goal = _rows(page, role="primary")
    test = (declared_test(goal[0]) if goal else None) or "two-sided"
    k = page.get("goal_comparisons") or 1
    family = f"; α / {k} per test for the {k} goal comparisons, Holm's first step" if k > 1 else ""
    line = (f"Minimum detectable relative change of {page['primary']} at {page['power'] * 100:g} % power, "
            f"α = {page['alpha']:g} ({test}{family}; without CUPED), with the units so far — " + "; ".join(parts))
    ahead = [f"{r['variant']}: {r['conditional_power'] * 100:.0f} % (fixed-horizon test), "
             f"{r['conditional_power_sequential'] * 100:.0f} % (always-valid test, daily looks)"
             for r in goal if r.get("conditional_power") is not None]
    if ahead:
        first = next(r for r in goal if r.get("conditional_power") is not None)
        line += (f". By the planned end, {first['days_to_end']:,} days away (about {first['units_at_end']:,} units at "
                 f"the last week's enrolment), the chance of reaching significance if the effect stays what it is "
                 f"now — " + "; ".join(ahead))
    return line


METRIC_HEADER = ("variant", "metric", "n (ctl / trt)", "mean ctl", "mean trt", "abs effect [95 % CI]", "rel lift [95 % CI]",
                 "p", "p adj", "rel lift [adjusted CI]", "significant", "always-valid rel [CS]", "always-valid p", "chance to win", "CUPED var −", "notes")


def _metric_cells(page: dict[str, Any], r: dict[str, Any]) -> list[str]:
    """Table cells of one overall comparison (fixed row, with its sequential and Bayesian readings)."""
    seq, bayes = _find(page, r, "sequential") or {}, _find(page, r, "bayesian") or {}
    notes = []
    if r.get("guardrail_passed") is not None:
        notes.append(f"non-inferior at −{r['guardrail_margin'] * 100:g} %: {'pass' if r['guardrail_passed'] else 'FAIL'} "
                     f"(p = {_p(r['noninferiority_p_value'])})")
    if declared_test(r):
        notes.append(declared_test(r))
    if r["reason"]:
        notes.append(f"undefined: {REASON_TEXT.get(r['reason'], r['reason'])}")
    sig = "—" if r["significant"] is None else "yes" if r["significant"] else "no"
    ctw = bayes.get("chance_to_win")
    red = r.get("cuped_variance_reduction")
    return [
        r["variant"], r["metric"], f"{r['n_control']:,} / {r['n_treatment']:,}", _num(r["mean_control"]),
        _num(r["mean_treatment"]), f"{_num(r['abs_effect'])} {_ci(r['abs_ci_low'], r['abs_ci_high'], pct=False)}",
        f"{_pct(r['rel_lift'], 1)} {_ci(r['rel_ci_low'], r['rel_ci_high'])}", _p(_test_p(r)), _p(r["p_adjusted"]),
        "—" if r.get("adj_ci_alpha") is None else
        f"{_ci(r.get('adj_rel_ci_low'), r.get('adj_rel_ci_high'))} at {(1 - r['adj_ci_alpha']) * 100:.4g} %", sig,
        _ci(seq.get("rel_ci_low"), seq.get("rel_ci_high")), _p(_test_p(seq)),
        "n/a" if ctw is None else f"{ctw * 100:.1f} %", "—" if not red else f"{red * 100:.1f} %", "; ".join(notes),
    ]


DIM_HEADER = ("value", "variant", "n (ctl / trt)", "mean ctl", "mean trt", "rel lift [95 % CI]", "p", "p adj (BH)", "significant")


def _dim_cells(r: dict[str, Any]) -> list[str]:
    """Table cells of one dimension-value comparison."""
    note = f" ({r['reason']})" if r["reason"] else ""
    return [r["dimension_value"], r["variant"], f"{r['n_control']:,} / {r['n_treatment']:,}", _num(r["mean_control"]),
            _num(r["mean_treatment"]), f"{_pct(r['rel_lift'], 1)} {_ci(r['rel_ci_low'], r['rel_ci_high'])}{note}",
            _p(_test_p(r)), _p(r["p_adjusted"]), "yes" if r["significant"] else "no"]


STRATA_HEADER = ("variant", "metric", "abs effect [95 % CI]", "rel lift [95 % CI]", "p (its test)", "p adj",
                 "variance removed by strata (+ CUPED within them)", "by CUPED alone")


def _strata_title(page: dict[str, Any]) -> str | None:
    rows = _rows(page, analysis="post_stratified")
    strata = next((r["strata"] for r in rows if r.get("strata")), None)
    return f"Post-stratified by {strata}" if rows and strata else None


def _strata_cells(page: dict[str, Any], r: dict[str, Any]) -> list[str]:
    """One post-stratified comparison beside the variance CUPED removes for the same metric."""
    fixed = _find(page, r, "fixed") or {}
    red, cuped = r.get("strata_variance_reduction"), fixed.get("cuped_variance_reduction")
    return [r["variant"], r["metric"], f"{_num(r['abs_effect'])} {_ci(r['abs_ci_low'], r['abs_ci_high'], pct=False)}",
            f"{_pct(r['rel_lift'], 1)} {_ci(r['rel_ci_low'], r['rel_ci_high'])}", _p(_test_p(r)), _p(r.get("p_adjusted")),
            "—" if red is None else f"{red * 100:.1f} %", "—" if not cuped else f"{cuped * 100:.1f} %"]


SEQ_HEADER = ("date", "variant", "n (ctl / trt)", "rel lift", "always-valid 95 % CS", "always-valid p")


def _seq_cells(s: dict[str, Any]) -> list[str]:
    """Table cells of one day of the confidence sequence."""
    return [str(s["analysis_date"]), s["variant"], f"{s['n_control']:,} / {s['n_treatment']:,}", _pct(s["rel_lift"], 1),
            _ci(s["rel_cs_low"], s["rel_cs_high"]), _p(s["always_valid_p_value"])]


def _dimensions(page: dict[str, Any]) -> list[str]:
    """Breakdown dimensions present, in a stable order."""
    return sorted({r["dimension"] for r in page["rows"] if r["dimension"] != "overall"})


def _header(page: dict[str, Any]) -> list[str]:
    """Title-block facts: what it tests, arms, goal metric, data through, computed at."""
    lines = []
    if page.get("name") or page.get("hypothesis"):
        lines.append(" — ".join(x for x in (page.get("name"), page.get("hypothesis")) if x))
    lines.append(f"Control: {page['control']}; treatment: {', '.join(page['treatments']) or 'none'}; goal metric"
                 f"{'s' if len(page.get('goal_metrics') or []) > 1 else ''}: "
                 f"{', '.join(page.get('goal_metrics') or [page['primary']])}; guardrails: "
                 f"{', '.join(page['guardrails']) or 'none'}; α = {page['alpha']:g}.")
    if page.get("as_of_date") or page.get("computed_at"):
        through = f"Data through {page['as_of_date']}" if page.get("as_of_date") else "Data"
        built = f"; computed from the build of {page['computed_at']:%Y-%m-%d %H:%M:%S} UTC" if page.get("computed_at") else ""
        lines.append(f"{through}{built}.")
    excluded = page.get("exclusions") or {}
    if excluded:
        lines.append(_exclusions_line(excluded))
    return lines + list(page["notes"])


def _exclusions_line(u: dict[str, int]) -> str:
    """What a per-unit table lost before analysis, if anything."""
    parts = [f"{u.get('analysed', 0):,} of {u.get('rows', 0):,} rows analysed"]
    for key, label in (("units_duplicated", "units appearing twice"), ("units_in_multiple_arms", "units in two arms"),
                       ("rows_without_variant", "rows without a variant")):
        if u.get(key):
            parts.append(f"{u[key]:,} {label} excluded")
    return "; ".join(parts) + "."


# ---- SVG ---------------------------------------------------------------------------------------

def _closed(row: dict[str, Any], low: str, high: str, estimate: str = "rel_lift") -> dict[str, Any]:
    """The row with a one-sided bound's open end drawn to the estimate (charts cannot draw infinity)."""
    if row[low] is None and row[high] is None:
        return row
    return {**row, low: row[estimate] if row[low] is None else row[low],
            high: row[estimate] if row[high] is None else row[high]}


def _scale(values: list[float], lo_px: float, hi_px: float):
    """A linear map from the values' range (with 0 and 8 % padding) onto pixels, and the range."""
    lo, hi = min(values + [0.0]), max(values + [0.0])
    pad = (hi - lo) * 0.08 or 0.05
    lo, hi = lo - pad, hi + pad
    return (lambda v: lo_px + (v - lo) / (hi - lo) * (hi_px - lo_px)), lo, hi


def forest_svg(page: dict[str, Any]) -> str:
    """Forest plot: each overall metric × variant's relative lift with its 95 % interval, 0 marked."""
    e = html.escape
    given = [r for r in _rows(page) if r["rel_lift"] is not None
             and (r["rel_ci_low"] is not None or r["rel_ci_high"] is not None)]
    rows = [_closed(r, "rel_ci_low", "rel_ci_high") for r in given]
    width, left, right, top, step = 760, 300, 40, 30, 26
    height = top + step * max(len(rows), 1) + 40
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
           "font-family='sans-serif' font-size='12' role='img'>",
           f"<title>{e(page['experiment_id'])}: relative lift with 95 % interval</title>",
           f"<text x='{left}' y='16' font-weight='bold'>Relative lift vs {e(page['control'])} (95 % CI)</text>"]
    if not rows:
        out.append(f"<text x='{left}' y='{top + 16}'>no comparison with a defined relative lift yet</text></svg>")
        return "".join(out) + "\n"
    x, lo, hi = _scale([v for r in rows for v in (r["rel_ci_low"], r["rel_ci_high"])], left, width - right)
    bottom = top + step * len(rows)
    out.append(f"<line x1='{x(0):.1f}' y1='{top - 6}' x2='{x(0):.1f}' y2='{bottom}' stroke='#888' stroke-dasharray='4 3'/>")
    for i, (r, as_given) in enumerate(zip(rows, given)):
        y = top + step * i + step / 2
        tone = "none" if not r["significant"] else "up" if r["rel_lift"] > 0 else "down"
        colour = COLOURS[tone]
        label = f"{r['metric']} · {r['variant']}" + (" (goal)" if r["role"] == "primary" else
                                                     " (guardrail)" if r["role"] == "guardrail" else "")
        out += [f"<text x='{left - 8}' y='{y + 4:.1f}' text-anchor='end'>{e(label)}</text>",
                f"<line x1='{x(r['rel_ci_low']):.1f}' y1='{y:.1f}' x2='{x(r['rel_ci_high']):.1f}' y2='{y:.1f}' "
                f"stroke='{colour}' stroke-width='2'/>",
                f"<circle cx='{x(r['rel_lift']):.1f}' cy='{y:.1f}' r='4' fill='{colour}'>"
                f"<title>{e(label)}: {e(_pct(r['rel_lift'], 1))} "
                f"{e(_ci(as_given['rel_ci_low'], as_given['rel_ci_high']))}</title></circle>"]
    for v in (lo, 0.0, hi):
        out.append(f"<text x='{x(v):.1f}' y='{bottom + 18}' text-anchor='middle' fill='#555'>{e(_pct(v, 0))}</text>")
    return "".join(out) + "</svg>\n"


def sequence_svg(page: dict[str, Any]) -> str:
    """The goal metric's always-valid 95 % confidence sequence of the relative lift, day by day, per variant."""
    e = html.escape
    seq = [_closed(s, "rel_cs_low", "rel_cs_high") for s in page["sequence"] if s["rel_lift"] is not None
           and (s["rel_cs_low"] is not None or s["rel_cs_high"] is not None)]
    width, height, left, right, top, bottom = 760, 300, 70, 30, 30, 250
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
           "font-family='sans-serif' font-size='12' role='img'>",
           f"<title>{e(page['experiment_id'])}: confidence sequence of {e(page['primary'])}</title>",
           f"<text x='{left}' y='16' font-weight='bold'>{e(page['primary'])}: relative lift with the always-valid "
           "95 % confidence sequence, by day</text>"]
    if not seq:
        out.append(f"<text x='{left}' y='{top + 30}'>no day with both arms measured yet</text></svg>")
        return "".join(out) + "\n"
    days = sorted({s["analysis_date"] for s in seq})
    index = {d: i for i, d in enumerate(days)}
    span = max(len(days) - 1, 1)

    def x(d) -> float:
        return left + index[d] / span * (width - left - right)

    # Early days have huge intervals: clip the axis to a readable range around the later estimates.
    values = [v for s in seq for v in (s["rel_cs_low"], s["rel_cs_high"])]
    later = [v for s in seq[len(seq) // 3:] for v in (s["rel_cs_low"], s["rel_cs_high"])] or values
    y_map, lo, hi = _scale(later, bottom, top)

    def y(v: float) -> float:
        return y_map(min(max(v, lo), hi))

    out.append(f"<line x1='{left}' y1='{y(0):.1f}' x2='{width - right}' y2='{y(0):.1f}' stroke='#888' stroke-dasharray='4 3'/>")
    palette = ["#0969da", "#8250df", "#bf3989", "#1a7f37"]
    for k, variant in enumerate(sorted({s["variant"] for s in seq})):
        pts = [s for s in seq if s["variant"] == variant]
        colour = palette[k % len(palette)]
        band = [f"{x(s['analysis_date']):.1f},{y(s['rel_cs_high']):.1f}" for s in pts] + \
               [f"{x(s['analysis_date']):.1f},{y(s['rel_cs_low']):.1f}" for s in reversed(pts)]
        line = " ".join(f"{x(s['analysis_date']):.1f},{y(s['rel_lift']):.1f}" for s in pts)
        out += [f"<polygon points='{' '.join(band)}' fill='{colour}' fill-opacity='0.18' stroke='none'/>",
                f"<polyline points='{line}' fill='none' stroke='{colour}' stroke-width='2'/>",
                f"<text x='{width - right}' y='{top + 14 * (k + 1)}' text-anchor='end' fill='{colour}'>{e(variant)}</text>"]
    for v in (lo, 0.0, hi):
        out.append(f"<text x='{left - 6}' y='{y(v) + 4:.1f}' text-anchor='end' fill='#555'>{e(_pct(v, 0))}</text>")
    for d in (days[0], days[-1]):
        out.append(f"<text x='{x(d):.1f}' y='{bottom + 20}' text-anchor='middle' fill='#555'>{e(str(d))}</text>")
    out.append(f"<text x='{left}' y='{bottom + 40}' fill='#555'>values outside the axis are clipped</text>")
    return "".join(out) + "</svg>\n"


def to_svgs(page: dict[str, Any]) -> dict[str, str]:
    """Both charts of a page, by name (forest, sequence)."""
    return {"forest": forest_svg(page), "sequence": sequence_svg(page)}


# ---- Markdown and HTML --------------------------------------------------------------------------

def _md_table(header: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    """A Markdown table (pipes in cells escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]


def to_markdown(page: dict[str, Any]) -> str:
    """The report as Markdown; the charts are linked as the SVG files written beside it."""
    verdict = page.get("verdict") or verdict_line(page)
    svg = page.get("svg_files", {})
    out = [f"# Experiment report: {page['experiment_id']}", "", f"**{verdict}**", "", *[f"{h}  " for h in _header(page)], "",
           "## Sample ratio", "", srm_line(page), ""]
    for role, title in ROLE_TITLES:
        rows = _rows(page, role=role)
        if rows:
            out += [f"## {title}", "", *_md_table(METRIC_HEADER, [_metric_cells(page, r) for r in rows]), ""]
    out += ["## Relative lifts", "", f"![forest plot of relative lifts]({svg.get('forest', '')})" if svg else
            "(chart in the HTML report)", ""]
    if page["sequence"]:
        out += ["## Confidence sequence over days", "",
                f"![confidence sequence]({svg.get('sequence', '')})" if svg else "(chart in the HTML report)", "",
                *_md_table(SEQ_HEADER, [_seq_cells(s) for s in page["sequence"]]), ""]
    strata = _strata_title(page)
    if strata:
        out += [f"## {strata} (an estimate beside the fixed one, which decides)", "",
                *_md_table(STRATA_HEADER, [_strata_cells(page, r) for r in _rows(page, analysis="post_stratified")]), ""]
    out += ["## Power so far", "", mde_line(page), ""]
    if _dimensions(page):
        out += [f"## Breakdowns of {page['primary']} (top values and \"(other)\"; BH-corrected per dimension)", ""]
    for dim in _dimensions(page):
        out += [f"### {dim}", "", *_md_table(DIM_HEADER, [_dim_cells(r) for r in _rows(page, dimension=dim, metric=page['primary'])]), ""]
    return "\n".join(out).rstrip() + "\n"


CSS = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin-bottom:1em}"
       "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;font-size:13px}"
       "td:first-child,td:nth-child(2),th{text-align:left}.verdict{font-size:1.1em;padding:.6em;background:#f6f8fa;"
       "border-left:4px solid #0969da}.fail{color:#cf222e}.warn{color:#9a6700}.ok{color:#1a7f37}")


def to_html(page: dict[str, Any], svgs: dict[str, str] | None = None) -> str:
    """The report as one self-contained HTML page (inline SVG charts)."""
    e = html.escape
    svgs = svgs or to_svgs(page)
    verdict = page.get("verdict") or verdict_line(page)

    def table(header: tuple[str, ...], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{e(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    status = page["srm"]["status"]
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Experiment report: "
             f"{e(page['experiment_id'])}</title><style>{CSS}</style></head><body>",
             f"<h1>Experiment report: {e(page['experiment_id'])}</h1>",
             f"<p class='verdict'><strong>{e(verdict)}</strong></p>",
             *[f"<p>{e(h)}</p>" for h in _header(page)],
             "<h2>Sample ratio</h2>", f"<p class='{e(status)}'>{e(srm_line(page))}</p>"]
    for role, title in ROLE_TITLES:
        rows = _rows(page, role=role)
        if rows:
            parts += [f"<h2>{e(title)}</h2>", table(METRIC_HEADER, [_metric_cells(page, r) for r in rows])]
    parts += ["<h2>Relative lifts</h2>", svgs["forest"]]
    if page["sequence"]:
        parts += ["<h2>Confidence sequence over days</h2>", svgs["sequence"], "<details><summary>daily values</summary>",
                  table(SEQ_HEADER, [_seq_cells(s) for s in page["sequence"]]), "</details>"]
    strata = _strata_title(page)
    if strata:
        parts += [f"<h2>{e(strata)} (an estimate beside the fixed one, which decides)</h2>",
                  table(STRATA_HEADER, [_strata_cells(page, r) for r in _rows(page, analysis="post_stratified")])]
    parts += ["<h2>Power so far</h2>", f"<p>{e(mde_line(page))}</p>"]
    if _dimensions(page):
        parts.append(f"<h2>Breakdowns of {e(page['primary'])} (top values and “(other)”; BH-corrected per dimension)</h2>")
    for dim in _dimensions(page):
        parts += [f"<h3>{e(dim)}</h3>", table(DIM_HEADER, [_dim_cells(r) for r in _rows(page, dimension=dim, metric=page['primary'])])]
    return "".join(parts) + "</body></html>\n"
