"""Fixed-horizon inference: absolute difference and relative lift with Welch's t and the delta method.

Definitions (per metric, arms c = control and t = treatment, V = per-unit variance / n):
- absolute effect Δ = m_t − m_c, SE = √(V_t + V_c);
- relative lift L = (m_t − m_c) / |m_c| (= m_t / m_c − 1 for a positive control; for a negative one
  the sign follows the absolute effect, so "higher is better" reads the same for net revenue or a
  margin), SE by the delta method, √(V_t / m_c² + m_t² V_c / m_c⁴ − 2 m_t C / m_c³): the second term
  is the control mean's own uncertainty, without which the interval is too narrow; C, the
  covariance of the two arms' estimated means, is 0 for independent arms and not for CUPED, whose
  adjusted means share the pooled covariate mean;
- both use Student's t with the Welch–Satterthwaite degrees of freedom (which tends to z at large n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

from experiments.statistics import ArmMoments, MeanCovariance


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


def relative_effect(control: ArmMoments, treatment: ArmMoments, terms: MeanCovariance | None = None) -> Effect:
    """L = (m_t − m_c)/|m_c| with the delta-method SE that includes the control mean's variance.

    ``terms`` gives the variances of the two estimated means and their covariance when they are not
    the independent s²/n (CUPED); by default they are.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        mc, mt = control.mean, treatment.mean
        if terms is None:
            vc, vt, cov = control.variance / control.n, treatment.variance / treatment.n, 0.0
        else:
            vc, vt, cov = terms.var_control, terms.var_treatment, terms.covariance
        var = vt / (mc * mc) + mt * mt * vc / mc**4 - 2.0 * mt * cov / mc**3
        var = np.where(np.isfinite(var) & (var < 0), 0.0, var)  # a quadratic form: negative only by rounding
        return Effect((mt - mc) / np.abs(mc), np.sqrt(var), welch_df(control, treatment))


def t_quantile(alpha: float, df: NDArray[np.float64]) -> NDArray[np.float64]:
    """Two-sided critical value t_{1−α/2, df} (NaN where df is undefined)."""
    df = np.asarray(df, dtype=float)
    ok = np.isfinite(df) & (df > 0)
    out = np.full(df.shape, np.nan)
    out[ok] = special.stdtrit(df[ok], 1.0 - alpha / 2.0)
    return out


def interval(effect: Effect, alpha: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two-sided (1 − α) t interval around the estimate (NaN where the estimate or SE is undefined)."""
    with np.errstate(invalid="ignore", over="ignore"):
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
