"""Always-valid inference: asymptotic confidence sequences (Waudby-Smith et al., 2023).

For an effect estimate with variance V after N units in total (both arms), write s² = V·N (the
per-unit variance on the estimate's scale). The (1 − α) confidence sequence is

    estimate ± s · √( 2(Nρ² + 1) / (N²ρ²) · ln( √(Nρ² + 1) / α ) ),

with ρ² = (−2 ln α + ln(−2 ln α + 1)) / N*, which makes the sequence tightest near N = N* units
(the tuning sample size, default 5000). Because it holds uniformly over time, owners may look every
day. The p-value is the smallest α′ at which the sequence (with ρ kept at its tuning for the nominal
α) excludes 0:  p = min(1, √(Nρ² + 1) · exp(−Δ² N² ρ² / (2 s² (Nρ² + 1)))).

One-sided questions (``greater``: H0 θ ≤ θ₀; ``less``: θ ≥ θ₀) use one end of the same sequence:
the bound est − halfwidth (or est + halfwidth) holds at every look with probability ≥ 1 − α, since
crossing one end is part of the event the two-sided guarantee bounds — valid, and conservative
(the realised error is nearer α/2). The p-value tests θ₀ on the alternative's side only (1 on the
other side).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_N_STAR = 5000


def rho_squared(alpha: float, n_star: float = DEFAULT_N_STAR) -> float:
    """ρ² that minimises the sequence's width at N* units for level α."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), not {alpha}")
    if not n_star > 0:
        raise ValueError(f"n_star must be positive, not {n_star}")
    log_term = -2.0 * np.log(alpha)
    return float((log_term + np.log(log_term + 1.0)) / n_star)


def halfwidth(se: ArrayLike, n_total: ArrayLike, alpha: float = 0.05, n_star: float = DEFAULT_N_STAR) -> NDArray[np.float64]:
    """Half-width of the asymptotic confidence sequence for an estimate with standard error se after n_total units."""
    r2 = rho_squared(alpha, n_star)
    se, n = np.asarray(se, dtype=float), np.asarray(n_total, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = se * np.sqrt(n)
        return s * np.sqrt(2.0 * (n * r2 + 1.0) / (n * n * r2) * np.log(np.sqrt(n * r2 + 1.0) / alpha))


def p_value(estimate: ArrayLike, se: ArrayLike, n_total: ArrayLike, alpha: float = 0.05,
            n_star: float = DEFAULT_N_STAR, side: ArrayLike = 0, null: ArrayLike = 0.0) -> NDArray[np.float64]:
    """Always-valid p-value: the smallest level whose confidence sequence excludes the null θ₀ (two-sided),
    or whose one end lies beyond it on the alternative's side (one-sided); computed in logs."""
    r2 = rho_squared(alpha, n_star)
    est, se, n, null = (np.asarray(a, dtype=float) for a in (estimate, se, n_total, null))
    side = np.asarray(side)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = est - null
        s2 = se * se * n
        log_p = 0.5 * np.log1p(n * r2) - gap * gap * n * n * r2 / (2.0 * s2 * (n * r2 + 1.0))
        p = np.exp(np.minimum(log_p, 0.0))
        wrong_side = ((side > 0) & (gap <= 0)) | ((side < 0) & (gap >= 0))
        return np.where(wrong_side & np.isfinite(p), 1.0, p)
