"""Fixed-horizon inference: absolute difference and relative lift with Welch's t and the delta method.

Definitions (per metric, arms c = control and t = treatment, V = per-unit variance / n):
- absolute effect Δ = m_t − m_c, SE = √(V_t + V_c);
- relative lift L = (m_t − m_c) / |m_c| (= m_t / m_c − 1 for a positive control; for a negative one
  the sign follows the absolute effect, so "higher is better" reads the same for net revenue or a
  margin), SE by the delta method, √(V_t / m_c² + m_t² V_c / m_c⁴ − 2 m_t C / m_c³): the second term
  is the control mean's own uncertainty, without which the interval is too narrow; C, the
  covariance of the two arms' estimated means, is 0 for independent arms and not for CUPED, whose
  adjusted means share the pooled covariate mean;
- both use Student's t with the Welch–Satterthwaite degrees of freedom (which tends to z at large n);
- a test is two-sided (H0: θ = θ₀), ``greater`` (H0: θ ≤ θ₀ — superiority by a margin θ₀ > 0, or
  non-inferiority with θ₀ < 0) or ``less`` (H0: θ ≥ θ₀, for metrics where lower is better); the
  null θ₀ is 0 unless given. Its (1 − α) interval is the two-sided t interval, or the one-sided
  bound [est − t_{1−α}·SE, +∞) / (−∞, est + t_{1−α}·SE], which excludes θ₀ exactly when p < α.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray
from scipy import special

from experiments.statistics import ArmMoments, MeanCovariance

ALTERNATIVES = {"two-sided": 0, "greater": 1, "less": -1}


def entry(result: object, i: int = 0) -> dict:
    """Comparison ``i`` of a dataclass of arrays as a JSON-friendly dict: NaN and ±inf become None,
    numpy scalars plain numbers; fields left as None (views not requested) are left out."""
    out: dict = {}
    for f in fields(result):
        value = getattr(result, f.name)
        if value is None:
            continue
        if isinstance(value, np.ndarray):
            value = value.reshape(-1)[i] if value.ndim else value.item()
        if isinstance(value, (float, np.floating)):
            value = float(value) if np.isfinite(value) else None
        elif isinstance(value, np.integer):
            value = int(value)
        out[f.name] = value
    return out


def sides(alternative: object) -> NDArray[np.int8]:
    """The alternatives as codes (0 two-sided, +1 greater, −1 less): one name, or an array of names."""
    names = np.asarray(alternative, dtype=object)
    flat = [ALTERNATIVES.get(str(a).strip().lower().replace("_", "-")) for a in names.reshape(-1)]
    if any(code is None for code in flat):
        bad = sorted({str(a) for a, c in zip(names.reshape(-1), flat) if c is None})
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}, not {', '.join(bad)}")
    return np.array(flat, dtype=np.int8).reshape(names.shape)


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


def t_quantile(alpha: float, df: NDArray[np.float64], side: NDArray[np.int8] | int = 0) -> NDArray[np.float64]:
    """Critical value: t_{1−α/2, df} for a two-sided test, t_{1−α, df} for a one-sided one (NaN where df
    is undefined)."""
    df = np.asarray(df, dtype=float)
    side = np.broadcast_to(np.asarray(side), df.shape)
    ok = np.isfinite(df) & (df > 0)
    out = np.full(df.shape, np.nan)
    level = np.where(side == 0, 1.0 - alpha / 2.0, 1.0 - alpha)
    out[ok] = special.stdtrit(df[ok], level[ok])
    return out


def interval(effect: Effect, alpha: float, side: NDArray[np.int8] | int = 0,
             quantile: NDArray[np.float64] | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The (1 − α) t interval: two-sided, or one-sided with the other end infinite (NaN where the
    estimate or SE is undefined). ``quantile``: the critical values when already computed for
    these degrees of freedom (the absolute and relative effects share them)."""
    shape = np.broadcast_shapes(np.shape(effect.estimate), np.shape(effect.se), np.shape(side))
    side = np.broadcast_to(np.asarray(side), shape)
    if quantile is None:
        quantile = t_quantile(alpha, np.broadcast_to(effect.df, shape), side)
    with np.errstate(invalid="ignore", over="ignore"):
        half = quantile * effect.se
        low, high = effect.estimate - half, effect.estimate + half
    defined = np.isfinite(low)
    return (np.where(defined & (side < 0), -np.inf, low), np.where(defined & (side > 0), np.inf, high))


def p_value(effect: Effect, side: NDArray[np.int8] | int = 0, null: object = 0.0) -> NDArray[np.float64]:
    """The p-value of H0 (θ = θ₀ two-sided; θ ≤ θ₀ for greater; θ ≥ θ₀ for less), from a lower tail so
    tiny p-values stay accurate."""
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = (effect.estimate - np.asarray(null, dtype=float)) / effect.se
    side = np.asarray(side)
    stat, side = np.broadcast_arrays(stat, side)
    df = np.broadcast_to(np.asarray(effect.df, dtype=float), stat.shape)
    ok = np.isfinite(stat) & np.isfinite(df) & (df > 0)
    tail = np.where(side == 0, -np.abs(stat), np.where(side > 0, -stat, stat))
    out = np.full(stat.shape, np.nan)
    out[ok] = np.where(side[ok] == 0, 2.0, 1.0) * special.stdtr(df[ok], tail[ok])
    return np.minimum(out, 1.0)
