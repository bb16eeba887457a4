"""Sample-ratio mismatch: are the arms' unit counts consistent with the planned split?

A χ² goodness-of-fit test of the observed counts against total × planned weights. A mismatch means
the assignment or the logging is broken, so every effect estimate is suspect: fail at p < 0.001,
warn at p < 0.01. Without stated weights the split is taken as equal (pass the real plan, or an
unequal design raises a false alarm). When an arm's expected count is below ``min_expected`` the χ²
approximation does not hold and the check is not decisive: status "ok" with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

FAIL_BELOW = 0.001
WARN_BELOW = 0.01


@dataclass(frozen=True)
class SrmResult:
    """Outcome of the SRM check: statistic, p-value, status ok|warn|fail and, if not decisive, why."""

    statistic: float
    p_value: float
    status: str
    expected: list[float] = field(default_factory=list)
    reason: str = ""

    def as_dict(self) -> dict:
        """JSON-friendly form (undefined numbers become None)."""
        def num(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {"p_value": num(self.p_value), "statistic": num(self.statistic), "status": self.status,
                "expected": [num(e) for e in self.expected], "reason": self.reason}


def srm_check(counts: ArrayLike, weights: ArrayLike | None = None, *, fail_below: float = FAIL_BELOW,
              warn_below: float = WARN_BELOW, min_expected: float = 5.0) -> SrmResult:
    """χ² test of unit counts per arm against planned weights (equal when None; weights need not sum to 1)."""
    obs = np.asarray(counts, dtype=float).ravel()
    w = np.full(obs.shape, 1.0) if weights is None else np.asarray(weights, dtype=float).ravel()
    if obs.size < 2:
        raise ValueError("the SRM check needs at least two arms")
    if w.shape != obs.shape:
        raise ValueError(f"{w.size} weights for {obs.size} arms")
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("planned weights must be positive numbers")
    if np.any(~np.isfinite(obs)) or np.any(obs < 0):
        raise ValueError("unit counts must be non-negative numbers")
    total = obs.sum()
    expected = total * w / w.sum()
    if total == 0 or np.any(expected < min_expected):
        return SrmResult(np.nan, np.nan, "ok", expected.tolist(),
                         f"too_few_units: an arm expects fewer than {min_expected:g} units, the check is not decisive")
    statistic = float(((obs - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(statistic, obs.size - 1))
    status = "fail" if p < fail_below else "warn" if p < warn_below else "ok"
    return SrmResult(statistic, p, status, expected.tolist())


@dataclass(frozen=True)
class Localised:
    """One dimension value's own split: its χ² p (BH-adjusted within its dimension) and the p of
    every other value of that dimension pooled (``rest_p_value``). The value *carries* the
    imbalance when its own split fails and the rest's holds."""

    dimension: str
    value: str
    counts: dict[str, int]
    p_value: float | None
    p_adjusted: float | None
    rest_p_value: float | None
    carries: bool

    def as_dict(self) -> dict:
        return {"dimension": self.dimension, "value": self.value, "counts": self.counts, "p_value": self.p_value,
                "p_adjusted": self.p_adjusted, "rest_p_value": self.rest_p_value, "carries": self.carries}

    def sentence(self) -> str:
        split = ", ".join(f"{a} {n:,}" for a, n in self.counts.items())
        return (f"{self.dimension} = {self.value} ({split}; p = {self.p_adjusted:.2g} within {self.dimension}s, "
                f"the other {self.dimension}s balance at p = {self.rest_p_value:.2g})")


def localise(counts: dict[str, dict[str, dict[str, int]]], weights: dict[str, float], *,
             fail_below: float = FAIL_BELOW, warn_below: float = WARN_BELOW,
             min_expected: float = 5.0) -> list[Localised]:
    """Where a sample-ratio mismatch sits: ``counts[dimension][value][arm]`` are units per arm in
    each value of each pre-exposure dimension (segment, region, carrier, day). Every value gets its
    own χ² against the planned ``weights`` (BH over the values of its dimension) and the χ² of the
    rest of its dimension; values that carry the imbalance (own adjusted p < ``warn_below`` while the
    rest's p ≥ ``warn_below``: removing them restores the split) come first, then by adjusted p."""
    from experiments.multiple import adjust

    arms = list(weights)
    w = np.array([weights[a] for a in arms], dtype=float)
    out: list[Localised] = []
    for dimension, values in counts.items():
        names = list(values)
        table = np.array([[values[v].get(a, 0) for a in arms] for v in names], dtype=float)
        if len(names) < 2 or table.sum() == 0:
            continue

        def p_of(row: np.ndarray) -> float:
            result = srm_check(row, w, fail_below=fail_below, warn_below=warn_below, min_expected=min_expected)
            return result.p_value

        own = np.array([p_of(row) for row in table])
        rest = np.array([p_of(table.sum(axis=0) - row) for row in table])
        adjusted = adjust(own, "bh")
        for i, value in enumerate(names):
            p, pa, pr = (float(x) if np.isfinite(x) else None for x in (own[i], adjusted[i], rest[i]))
            carries = pa is not None and pa < warn_below and pr is not None and pr >= warn_below
            out.append(Localised(dimension, value, {a: int(c) for a, c in zip(arms, table[i])}, p, pa, pr, carries))
    return sorted(out, key=lambda r: (not r.carries, r.p_adjusted if r.p_adjusted is not None else 2.0))
