"""Post-stratification: the effect estimated within pre-exposure strata (segment, region, …) and
combined by the strata's shares of all units, from per-stratum sufficient statistics.

With strata k, their share w_k = N_k / N of the units (both arms), and per-stratum arm means and
per-unit variances:

    Δ_ps = Σ_k w_k (m_t,k − m_c,k),    Var(Δ_ps) = Σ_k w_k² (s²_t,k / n_t,k + s²_c,k / n_c,k),

the stratified difference of Miratrix, Sekhon and Yu (2013), which equals the treatment
coefficient of the fully interacted regression y ~ t + (centred stratum dummies) × t and its HC2
standard error. Random assignment makes it unbiased; it removes the variance the strata explain
(reported as ``variance_reduction`` = 1 − Var(Δ_ps) / Var(Δ) of the pooled difference). The
relative lift is Δ_ps / |m_c,ps| with m_c,ps = Σ_k w_k m_c,k, by the delta method with the two
stratified means independent. Degrees of freedom: Satterthwaite over the 2K variance components.
A stratum in which an arm has fewer than two units carries no within-stratum comparison: it is
left out and the shares are renormalised over the strata that have both arms (``strata_used``).

Everything is vectorised: the statistics' last axis is the strata, any axes before it are
comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from experiments import frequentist
from experiments.statistics import (
    NO_UNITS, OK, ZERO_CONTROL_MEAN, ZERO_VARIANCE, ArmMoments, MetricType, SampleStats, _covariate_parts,
    cuped_moments, moments,
)

Array = NDArray[np.float64]


@dataclass(frozen=True)
class PostStratified:
    """One entry per comparison (the strata axis reduced)."""

    abs_effect: Array
    abs_se: Array
    abs_ci_low: Array
    abs_ci_high: Array
    p_value: Array
    df: Array
    rel_lift: Array
    rel_se: Array
    rel_ci_low: Array
    rel_ci_high: Array
    rel_p_value: Array
    mean_control: Array
    mean_treatment: Array
    variance_reduction: Array
    strata_used: NDArray[np.int64]
    reason: NDArray[np.object_]

    def row(self, i: int = 0) -> dict[str, Any]:
        """One comparison as a JSON-friendly dict (NaN and ±inf → None)."""
        return frequentist.entry(self, i)


def _pooled(stats: SampleStats) -> SampleStats:
    """The arm's statistics summed over the strata (the last axis)."""
    return SampleStats(*(None if getattr(stats, f.name) is None else
                         np.asarray(getattr(stats, f.name), dtype=float).sum(axis=-1) for f in fields(stats)))


def post_stratify(control: SampleStats, treatment: SampleStats, metric_type: MetricType = "mean", *,
                  alpha: float = 0.05, alternative: Any = "two-sided", null_abs: Any = 0.0,
                  null_rel: Any = 0.0, cuped: bool = False) -> PostStratified:
    """The post-stratified comparison of treatment with control; strata on the statistics' last axis.

    ``cuped``: adjust within every stratum by the pre-exposure covariate too (CUPED with
    post-stratification): one slope θ pooled within every arm × stratum (the regression of the
    metric on the covariate with stratum × arm intercepts), each stratum's arm means adjusted as
    CUPED adjusts them, and for the relative lift the adjusted means' shared covariate mean taken
    into account stratum by stratum."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), not {alpha}")
    arm_c, arm_t = moments(control, metric_type), moments(treatment, metric_type)
    terms = None
    if cuped:
        parts = [_covariate_parts(s, metric_type) for s in (control, treatment)]
        cross = sum(p[3] for p in parts).sum(axis=-1, keepdims=True)
        spread = sum(p[2] for p in parts).sum(axis=-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            theta = np.where(spread > 0, cross / np.where(spread > 0, spread, 1.0), 0.0)
        adj_c, adj_t, _, _, terms = cuped_moments(control, treatment, metric_type, theta)
        arm_c = ArmMoments(arm_c.n, adj_c.mean, adj_c.variance, arm_c.reason)
        arm_t = ArmMoments(arm_t.n, adj_t.mean, adj_t.variance, arm_t.reason)
    usable = (arm_c.reason == OK) & (arm_t.reason == OK)
    units = np.where(usable, arm_c.n + arm_t.n, 0.0)
    total = units.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(total > 0, units / np.where(total > 0, total, 1.0), 0.0)
        mean_c = np.where(usable, arm_c.mean, 0.0)
        mean_t = np.where(usable, arm_t.mean, 0.0)
        comp_c = np.where(usable, w * w * arm_c.variance / arm_c.n, 0.0)
        comp_t = np.where(usable, w * w * arm_t.variance / arm_t.n, 0.0)
        dof_c = np.where(usable, arm_c.n - 1.0, 1.0)
        dof_t = np.where(usable, arm_t.n - 1.0, 1.0)
        m_c, m_t = (w * mean_c).sum(axis=-1), (w * mean_t).sum(axis=-1)
        v_c, v_t = comp_c.sum(axis=-1), comp_t.sum(axis=-1)
        df = (v_c + v_t) ** 2 / ((comp_c * comp_c / dof_c).sum(axis=-1) + (comp_t * comp_t / dof_t).sum(axis=-1))
        # the pooled (unstratified) comparison, for the variance the strata remove
        pooled_c, pooled_t = (moments(_pooled(arm), metric_type) for arm in (control, treatment))
        pooled_var = pooled_c.variance / pooled_c.n + pooled_t.variance / pooled_t.n
        reduction = 1.0 - (v_c + v_t) / pooled_var
    shape = np.shape(m_c)
    side = np.broadcast_to(frequentist.sides(alternative), shape)
    null_a = np.broadcast_to(np.asarray(null_abs, dtype=float), shape)
    null_r = np.broadcast_to(np.asarray(null_rel, dtype=float), shape)
    strata_used = usable.sum(axis=-1).astype(np.int64)
    reason = np.full(shape, OK, dtype=object)
    reason[(reason == OK) & (v_c + v_t == 0)] = ZERO_VARIANCE
    reason[strata_used == 0] = NO_UNITS
    absolute = frequentist.Effect(m_t - m_c, np.sqrt(v_c + v_t), df)
    with np.errstate(divide="ignore", invalid="ignore"):
        if terms is not None:   # the stratified adjusted means' own variances and covariance
            v_c_mean = np.where(usable, w * w * terms.var_control, 0.0).sum(axis=-1)
            v_t_mean = np.where(usable, w * w * terms.var_treatment, 0.0).sum(axis=-1)
            cov = np.where(usable, w * w * terms.covariance, 0.0).sum(axis=-1)
        else:
            v_c_mean, v_t_mean, cov = v_c, v_t, 0.0
        rel_var = v_t_mean / (m_c * m_c) + m_t * m_t * v_c_mean / m_c**4 - 2.0 * m_t * cov / m_c**3
        rel_var = np.where(np.isfinite(rel_var) & (rel_var < 0), 0.0, rel_var)
        relative = frequentist.Effect((m_t - m_c) / np.abs(m_c), np.sqrt(rel_var), df)
    reason[(reason == OK) & (m_c == 0)] = ZERO_CONTROL_MEAN
    bad_all = (reason != OK) & (reason != ZERO_CONTROL_MEAN)
    bad_rel = reason != OK
    critical = frequentist.t_quantile(alpha, np.broadcast_to(df, shape), side)   # shared: one df for both
    abs_low, abs_high = frequentist.interval(absolute, alpha, side, critical)
    rel_low, rel_high = frequentist.interval(relative, alpha, side, critical)

    def nan(mask: NDArray[np.bool_], value: Array) -> Array:
        return np.where(mask, np.nan, value)

    return PostStratified(
        abs_effect=nan(strata_used == 0, absolute.estimate), abs_se=nan(bad_all, absolute.se),
        abs_ci_low=nan(bad_all, abs_low), abs_ci_high=nan(bad_all, abs_high),
        p_value=nan(bad_all, frequentist.p_value(absolute, side, null_a)), df=nan(bad_all, df),
        rel_lift=nan(bad_rel & (reason != ZERO_VARIANCE), relative.estimate), rel_se=nan(bad_rel, relative.se),
        rel_ci_low=nan(bad_rel, rel_low), rel_ci_high=nan(bad_rel, rel_high),
        rel_p_value=nan(bad_rel, frequentist.p_value(relative, side, null_r)),
        mean_control=nan(strata_used == 0, m_c), mean_treatment=nan(strata_used == 0, m_t),
        variance_reduction=nan(bad_all, reduction), strata_used=strata_used, reason=reason)

