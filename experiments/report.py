"""Readable renderings of an analysis (Markdown and HTML): a table per section and a one-line verdict."""

from __future__ import annotations

import html
from typing import Any


def _pct(value: float | None, digits: int = 2) -> str:
    """A fraction as a signed percentage, or "n/a"."""
    return "n/a" if value is None else f"{value * 100:+.{digits}f} %"


def _p(value: float | None) -> str:
    """A p-value, compactly, or "n/a"."""
    if value is None:
        return "n/a"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.2e}"


def _num(value: float | None) -> str:
    """A number with four significant digits, or "n/a"."""
    return "n/a" if value is None else f"{value:.4g}"


def verdict(report: dict[str, Any]) -> str:
    """One line: is the split trustworthy, and which goal metrics moved significantly (after correction)."""
    srm = report["srm"]
    if srm["status"] == "fail":
        return (f"Verdict: do not trust these results — sample ratio mismatch (p = {_p(srm['p_value'])}); "
                "fix assignment or logging first.")
    moved = [r for r in report["results"] if r["significant"]]
    parts = [f"{r['variant']} {r['metric']} {_pct(r['rel_lift'], 1)} (p_adj = {_p(r['p_adjusted'])})" for r in moved]
    line = ("Verdict: significant at α = {a:g} after {c} correction: {m}." if moved else
            "Verdict: no goal metric differs significantly from control at α = {a:g} after {c} correction.")
    text = line.format(a=report["alpha"], c=report["correction"], m="; ".join(parts))
    failed = [f"{g['variant']} {g['metric']}" for g in report.get("guardrails", []) if not g["passed"]]
    if failed:
        text += f" Guardrails not shown non-inferior: {', '.join(failed)}."
    if srm["status"] == "warn":
        text += f" Caution: possible sample ratio mismatch (p = {_p(srm['p_value'])})."
    return text


HEADER = ("variant", "metric", "n (ctl / trt)", "mean ctl", "mean trt", "abs effect [CI]", "p", "rel lift [CI]",
          "rel p", "p adj", "significant")


def _cells(r: dict[str, Any]) -> list[str]:
    """Table cells of one result row."""
    cells = [
        r["variant"], r["metric"], f"{r['n_control']:,} / {r['n_treatment']:,}", _num(r["mean_control"]),
        _num(r["mean_treatment"]),
        f"{_num(r['abs_effect'])} [{_num(r['abs_ci_low'])}, {_num(r['abs_ci_high'])}]", _p(r["p_value"]),
        f"{_pct(r['rel_lift'])} [{_pct(r['rel_ci_low'])}, {_pct(r['rel_ci_high'])}]", _p(r["rel_p_value"]),
        _p(r.get("p_adjusted")), "—" if "significant" not in r else "yes" if r["significant"] else "no",
    ]
    extras = []
    if r.get("chance_to_win") is not None:
        extras.append(f"chance to win {r['chance_to_win'] * 100:.1f} %")
    if r.get("seq_rel_p_value") is not None:
        extras.append(f"always-valid rel p {_p(r['seq_rel_p_value'])}")
    if r.get("cuped") and r.get("variance_reduction") is not None:
        extras.append(f"CUPED variance −{r['variance_reduction'] * 100:.1f} %")
    if "passed" in r:
        extras.append(f"non-inferior at margin {r['margin'] * 100:g} %: {'yes' if r['passed'] else 'no'}")
    if r.get("reason"):
        extras.append(f"undefined: {r['reason']}")
    return cells + ["; ".join(extras)]


def _srm_line(report: dict[str, Any]) -> str:
    """The SRM summary: counts, planned weights, p-value and status."""
    srm = report["srm"]
    counts = ", ".join(f"{k} {v:,} ({report['srm']['weights'][k] * 100:g} % planned)" for k, v in srm["counts"].items())
    reason = f" — {srm['reason']}" if srm.get("reason") else ""
    return f"Sample ratio: {counts}; χ² p = {_p(srm['p_value'])}: {srm['status']}{reason}"


def _units_line(report: dict[str, Any]) -> str:
    """What was excluded before analysis, if anything."""
    u = report["units"]
    parts = [f"{u['analysed']:,} of {u['rows']:,} rows analysed"]
    for key, label in (("units_duplicated", "units appearing twice"), ("units_in_multiple_arms", "units in two arms"),
                       ("rows_without_variant", "rows without a variant")):
        if u.get(key):
            parts.append(f"{u[key]:,} {label} excluded")
    return "; ".join(parts)


def to_markdown(report: dict[str, Any]) -> str:
    """The analysis as Markdown: verdict, SRM and units lines, results table (and guardrails)."""
    def table(rows: list[dict[str, Any]]) -> list[str]:
        lines = ["| " + " | ".join(HEADER + ("notes",)) + " |", "|" + " --- |" * (len(HEADER) + 1)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in rows]
        return lines

    out = [f"# Experiment analysis: {report['input']}", "", f"**{report['verdict']}**", "", _srm_line(report), "",
           _units_line(report), "", "## Goal metrics", "", *table(report["results"])]
    if report.get("guardrails"):
        out += ["", "## Guardrails", "", *table(report["guardrails"])]
    return "\n".join(out) + "\n"


def to_html(report: dict[str, Any]) -> str:
    """The analysis as a self-contained HTML page with the same content as the Markdown."""
    e = html.escape

    def table(rows: list[dict[str, Any]]) -> str:
        head = "".join(f"<th>{e(h)}</th>" for h in HEADER + ("notes",))
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in _cells(r)) + "</tr>" for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Experiment analysis</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}td:first-child,td:nth-child(2){text-align:left}</style></head><body>",
        f"<h1>Experiment analysis: {e(report['input'])}</h1>", f"<p class='verdict'><strong>{e(report['verdict'])}</strong></p>",
        f"<p>{e(_srm_line(report))}</p>", f"<p>{e(_units_line(report))}</p>", "<h2>Goal metrics</h2>",
        table(report["results"]),
    ]
    if report.get("guardrails"):
        parts += ["<h2>Guardrails</h2>", table(report["guardrails"])]
    return "".join(parts) + "</body></html>\n"
