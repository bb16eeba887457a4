"""Multiple-testing corrections over a declared family (goal metrics × variants).

Holm controls the family-wise error rate; Benjamini–Hochberg the false discovery rate. Guardrail
metrics are not part of the family: they are judged one by one against a non-inferiority margin.
NaN p-values (degenerate comparisons) are left out of the family and stay NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

METHODS = ("holm", "bh", "none")


def adjust(p_values: ArrayLike, method: str = "holm") -> NDArray[np.float64]:
    """Adjusted p-values (same shape) by Holm's step-down or Benjamini–Hochberg's step-up procedure."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    flat, res = p.ravel(), out.reshape(-1)
    valid = np.flatnonzero(np.isfinite(flat))
    m = valid.size
    if m == 0:
        return out
    if method == "none":
        res[valid] = flat[valid]
        return out
    order = valid[np.argsort(flat[valid], kind="stable")]
    sorted_p = flat[order]
    rank = np.arange(1, m + 1)
    if method == "holm":
        adjusted = np.maximum.accumulate((m - rank + 1) * sorted_p)
    else:
        adjusted = np.minimum.accumulate((m / rank * sorted_p)[::-1])[::-1]
    res[order] = np.minimum(adjusted, 1.0)
    return out


def interval_alpha(p_values: ArrayLike, method: str = "holm", alpha: float = 0.05) -> float:
    """The α at which each comparison of the family gets its adjusted interval.

    - ``holm``: α/m, Bonferroni's simultaneous intervals — all m cover together with probability
      ≥ 1 − α. A comparison whose interval excludes the null is one Holm rejects; Holm can reject
      more (its later steps test at α/(m − k)), and then only the direction is certain;
    - ``bh``: R·α/m with R the number of rejections (α/m when there are none), Benjamini and
      Yekutieli's false-coverage-rate intervals: among the comparisons BH selects, the expected share
      of intervals missing their true effect is ≤ α, and a comparison's interval excludes the null
      exactly when BH rejects it (for the test the p-values come from);
    - ``none``: α.
    m counts the finite p-values (degenerate comparisons are outside the family)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    p = np.asarray(p_values, dtype=float).ravel()
    m = int(np.isfinite(p).sum())
    if method == "none" or m == 0:
        return alpha
    if method == "holm":
        return alpha / m
    rejected = int((adjust(p, "bh") < alpha).sum())
    return max(rejected, 1) * alpha / m
