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
