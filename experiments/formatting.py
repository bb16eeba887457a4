"""How numbers read in reports and the app: percentages with a sign, compact p-values, four digits."""

from __future__ import annotations


def pct(value: float | None, digits: int = 2) -> str:
    """A fraction as a signed percentage, or "n/a"."""
    return "n/a" if value is None else f"{value * 100:+.{digits}f} %"


def p_value(value: float | None) -> str:
    """A p-value, compactly, or "n/a"."""
    if value is None:
        return "n/a"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.2e}"


def number(value: float | None) -> str:
    """A number with four significant digits, or "n/a"."""
    return "n/a" if value is None else f"{value:.4g}"
