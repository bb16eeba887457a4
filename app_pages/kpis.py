"""Pure helpers the pages show (no Streamlit here, so they are unit-tested on their own): rates on
the right denominators, period-over-period changes, funnel drop-offs, and formatting."""

from __future__ import annotations

import math
from dataclasses import dataclass

FUNNEL_STEPS = (("sent", "Sent"), ("delivered", "Delivered"), ("clicked", "Clicked"), ("engaged", "Engaged"),
                ("converted", "Converted"))


def rate(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when there is no denominator."""
    if not denominator or numerator is None:
        return None
    return float(numerator) / float(denominator)


@dataclass(frozen=True)
class Kpi:
    label: str
    value: float | None
    previous: float | None
    kind: str  # count, rate or money

    @property
    def change(self) -> float | None:
        """Relative change for counts and money; for rates the change in percentage points (as a fraction)."""
        if self.value is None or self.previous is None:
            return None
        if self.kind == "rate":
            return self.value - self.previous
        return None if self.previous == 0 else (self.value - self.previous) / abs(self.previous)

    def shown(self) -> str:
        return fmt(self.value, self.kind)

    def delta(self) -> str | None:
        change = self.change
        if change is None:
            return None
        if self.kind == "rate":
            return f"{change * 100:+.2f} pp"
        return f"{change * 100:+.1f} %"


def kpis(current: dict, previous: dict | None) -> list[Kpi]:
    """The overview's tiles from funnel totals (``sent``, ``delivered``, ``clicked``, ``engaged``,
    ``converted``, ``revenue``): delivery per sent, click, engagement and conversion per delivered."""
    def measures(t: dict | None) -> dict[str, float | None]:
        if not t:
            return {}
        return {
            "sent": float(t["sent"]), "delivery": rate(t["delivered"], t["sent"]),
            "click": rate(t["clicked"], t["delivered"]), "engagement": rate(t["engaged"], t["delivered"]),
            "conversion": rate(t["converted"], t["delivered"]), "revenue": float(t["revenue"] or 0),
        }

    now, before = measures(current), measures(previous)
    spec = (("sent", "Sent", "count"), ("delivery", "Delivery rate", "rate"), ("click", "Human click rate", "rate"),
            ("engagement", "Engagement rate", "rate"), ("conversion", "Conversion rate", "rate"),
            ("revenue", "Revenue", "money"))
    return [Kpi(label, now.get(key), before.get(key) if previous else None, kind) for key, label, kind in spec]


def funnel_steps(totals: dict) -> list[dict]:
    """Each step: count, share of sent, rate from the previous step, and the drop-off from it."""
    out, prior = [], None
    sent = totals.get("sent") or 0
    for key, label in FUNNEL_STEPS:
        count = int(totals.get(key) or 0)
        out.append({
            "step": label, "count": count, "of_sent": rate(count, sent),
            "step_rate": None if prior is None else rate(count, prior),
            "drop_off": None if prior is None else prior - count,
        })
        prior = count
    return out


def fmt(value: float | None, kind: str = "count") -> str:
    """A number as people read it: counts with separators, rates as percentages, money with 2 decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind == "rate":
        return f"{value * 100:.2f} %"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "lift":
        return f"{value * 100:+.1f} %"
    return f"{value:,.0f}"


def days_needed(units_so_far: float, units_per_day: float, units_required: float) -> float | None:
    """Days until ``units_required`` at the current enrolment rate (0 when reached, None when not enrolling)."""
    if units_so_far >= units_required:
        return 0.0
    if not units_per_day or units_per_day <= 0:
        return None
    return (units_required - units_so_far) / units_per_day


def daily_series(days: list[dict]) -> dict[str, list[float | None]]:
    """Each tile's value per day (for its sparkline), from daily funnel sums."""
    out: dict[str, list[float | None]] = {"Sent": [], "Delivery rate": [], "Human click rate": [],
                                          "Engagement rate": [], "Conversion rate": [], "Revenue": []}
    for d in days:
        out["Sent"].append(float(d["sent"]))
        out["Delivery rate"].append(rate(d["delivered"], d["sent"]))
        out["Human click rate"].append(rate(d["clicked"], d["delivered"]))
        out["Engagement rate"].append(rate(d["engaged"], d["delivered"]))
        out["Conversion rate"].append(rate(d["converted"], d["delivered"]))
        out["Revenue"].append(float(d["revenue"] or 0))
    return out


def metric_value(metric: str, value: float | None) -> str:
    """An alert's observed or expected value: a rate or a share (of a campaign's sends) as a percentage,
    a volume as messages an hour."""
    if value is None:
        return "—"
    if metric.endswith(("_rate", "_share")):
        return f"{value * 100:.2f} %"
    return f"{value:,.1f} / h"
