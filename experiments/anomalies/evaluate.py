"""Scoring alerts against a scenario's planted incidents (``ground_truth.json``): which were found,
in which slice and how late, and how many alerts are false per 10,000 series-hours."""

from __future__ import annotations

from datetime import datetime, timedelta

from experiments.anomalies.series import DIMS

# metrics that a planted incident legitimately moves, besides its own
CONSEQUENCES = {"click_rate": ("click_rate", "conversion_rate"), "delivery_rate": ("delivery_rate",)}


def _ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def planted_slice(incident: dict) -> dict[str, str]:
    """The slice of a planted incident: the dimensions the ground truth names."""
    return {d: incident[d] for d in DIMS if incident.get(d)}


def evaluate(alerts: list[dict], truth: dict, series_hours: int, start_tolerance_hours: float = 2.0) -> dict:
    """Found / missed planted incidents (exact slice, drop, start within tolerance) and false alerts.

    An alert is explained by a planted incident when its metric is one the incident moves, its slice
    does not contradict the planted slice (an ancestor or a descendant of it) and it starts within the
    planted hours (from 2 h before the start to 24 h after the end): an alert that was open before
    the incident began was not caused by it. Every other alert is false."""
    window_end = max((a["end_at"] for a in alerts), default=None)
    found, explained = [], set()
    for inc in truth.get("incidents", []):
        start, end = _ts(inc["start"]), _ts(inc.get("end")) or window_end
        want = planted_slice(inc)
        hits = [a for a in alerts if a["metric"] == inc["metric"] and a["direction"] == "drop"
                and {d: a[d] for d in DIMS if a.get(d)} == want
                and abs((a["start_at"] - start).total_seconds()) <= start_tolerance_hours * 3600]
        best = min(hits, key=lambda a: abs((a["start_at"] - start).total_seconds()), default=None)
        found.append({"id": inc["id"], "metric": inc["metric"], "slice": want, "found": best is not None,
                      "delay_hours": None if best is None else (best["start_at"] - start).total_seconds() / 3600,
                      "alert_start": None if best is None else best["start_at"].isoformat(),
                      "alert_id": None if best is None else best.get("incident_id")})
        lo, hi = start - timedelta(hours=2), (end or start) + timedelta(hours=24)
        for i, a in enumerate(alerts):
            dims = {d: a[d] for d in DIMS if a.get(d)}
            compatible = all(dims.get(k, v) == v for k, v in want.items()) or all(want.get(k, v) == v for k, v in dims.items())
            if a["metric"] in CONSEQUENCES.get(inc["metric"], (inc["metric"],)) and compatible \
                    and lo <= a["start_at"] <= hi:
                explained.add(i)
    false = [a for i, a in enumerate(alerts) if i not in explained]
    return {
        "planted": found,
        "all_found": all(f["found"] for f in found),
        "alerts": len(alerts),
        "false_alerts": len(false),
        "false": false,
        "series_hours": series_hours,
        "false_per_10k_series_hours": 10_000 * len(false) / series_hours if series_hours else 0.0,
    }
