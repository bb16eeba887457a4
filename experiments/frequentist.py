"""Fixed-horizon inference: absolute difference and relative lift with Welch's t and the delta method.

Definitions (per metric, arms c = control and t = treatment, V = per-unit variance / n):
- absolute effect Δ = m_t − m_c, SE = √(V_t + V_c);
- relative lift L = m_t / m_c − 1, SE by the delta method, √(V_t / m_c² + m_t² V_c / m_c⁴): the second
  term is the control mean's own uncertainty, without which the interval is too narrow;
- both use Student's t with the Welch–Satterthwaite degrees of freedom (which tends to z at large n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

from experiments.statistics import ArmMoments


@dataclass(frozen=True)
class Effect:
    """An estimate with its standard error and degrees of freedom (arrays of one shape)."""

    estimate: NDArray[np.float64]
    se: NDArray[np.float64]
    df: NDArray[np.float64]


def welch_df(control: ArmMoments, treatment: ArmMoments) -> NDArray[np.float64]:
    """Welch–Satterthwaite degrees of freedom of the difference of two means."""
    with np.errstate(divide="ignore", invalid="ignore"):
        vc = control.variance / control.n
        vt = treatment.variance / treatment.n
        return (vc + vt) ** 2 / (vc * vc / (control.n - 1.0) + vt * vt / (treatment.n - 1.0))


def absolute_effect(control: ArmMoments, treatment: ArmMoments) -> Effect:
    """Δ = m_t − m_c with SE √(s²_t/n_t + s²_c/n_c)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(treatment.variance / treatment.n + control.variance / control.n)
    return Effect(treatment.mean - control.mean, se, welch_df(control, treatment))


def relative_effect(control: ArmMoments, treatment: ArmMoments) -> Effect:
    """L = m_t/m_c − 1 with the delta-method SE that includes the control mean's variance."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mc, mt = control.mean, treatment.mean
        var = treatment.variance / treatment.n / (mc * mc) + mt * mt * control.variance / control.n / mc**4
        return Effect(mt / mc - 1.0, np.sqrt(var), welch_df(control, treatment))


def t_quantile(alpha: float, df: NDArray[np.float64]) -> NDArray[np.float64]:
    """Two-sided critical value t_{1−α/2, df} (NaN where df is undefined)."""
    df = np.asarray(df, dtype=float)
    ok = np.isfinite(df) & (df > 0)
    out = np.full(df.shape, np.nan)
    out[ok] = special.stdtrit(df[ok], 1.0 - alpha / 2.0)
    return out


def interval(effect: Effect, alpha: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two-sided (1 − α) t interval around the estimate."""
    half = t_quantile(alpha, effect.df) * effect.se
    return effect.estimate - half, effect.estimate + half


def p_value(effect: Effect) -> NDArray[np.float64]:
    """Two-sided p-value 2·P(T_df ≤ −|est/SE|), from the lower tail so tiny p-values stay accurate."""
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.abs(effect.estimate / effect.se)
    df = np.asarray(effect.df, dtype=float)
    ok = np.isfinite(stat) & np.isfinite(df) & (df > 0)
    out = np.full(np.shape(stat), np.nan)
    out[ok] = 2.0 * special.stdtr(df[ok], -stat[ok])
    return np.minimum(out, 1.0)
