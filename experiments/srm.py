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
