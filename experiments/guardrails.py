"""Guardrail metrics: judged one by one for non-inferiority, outside the goal metrics' multiple-testing family.

A guardrail passes when the data reject "the treatment is worse by at least the margin":
H0: lift ≤ −margin (or ≥ +margin when lower is better), a one-sided Welch t test at α, equivalently
the one-sided (1 − α) confidence bound lying on the good side of the margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

from experiments.compare import ComparisonResult
from experiments.frequentist import t_quantile


@dataclass(frozen=True)
class NonInferiority:
    """One-sided p-value, confidence bound on the lift, and the verdict (False where undefined)."""

    p_value: NDArray[np.float64]
    bound: NDArray[np.float64]
    passed: NDArray[np.bool_]
    margin: float
    relative: bool
    higher_is_better: bool


def non_inferiority(result: ComparisonResult, margin: float, *, relative: bool = True,
                    higher_is_better: bool = True) -> NonInferiority:
    """Test each comparison's lift (relative by default) against the non-inferiority margin (a positive number)."""
    if not margin > 0:
        raise ValueError(f"a non-inferiority margin must be positive, not {margin}")
    est, se = (result.rel_lift, result.rel_se) if relative else (result.abs_effect, result.abs_se)
    sign = 1.0 if higher_is_better else -1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = (sign * est + margin) / se
    df = np.asarray(result.df, dtype=float)
    ok = np.isfinite(stat) & np.isfinite(df) & (df > 0)
    p = np.full(np.shape(stat), np.nan)
    p[ok] = special.stdtr(df[ok], -stat[ok])
    bound = est - sign * t_quantile(2 * result.alpha, df) * se
    return NonInferiority(p, bound, ok & (p < result.alpha), margin, relative, higher_is_better)
