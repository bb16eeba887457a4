"""Compare a treatment arm with its control: one call, vectorised over any number of comparisons.

``compare`` takes sufficient statistics (arrays: one entry per variant × metric × slice) and returns
a ``ComparisonResult`` of arrays: the fixed-horizon absolute and relative effects (see
``experiments.frequentist``), optionally CUPED-adjusted (``experiments.statistics.cuped_moments``),
always-valid sequential intervals (``experiments.sequential``) and a Bayesian reading
(``experiments.bayesian``). Degenerate rows never raise: they carry a ``reason`` and NaN only in the
fields that reason makes undefined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from experiments import bayesian as bayes_view
from experiments import frequentist
from experiments import sequential as seq
from experiments.bayesian import Prior
from experiments.statistics import (
    METRIC_TYPES, OK, ZERO_CONTROL_MEAN, ZERO_RELATIVE_VARIANCE, ZERO_VARIANCE, ArmMoments, MeanCovariance, MetricType,
    SampleStats, cuped_moments, moments,
)

Array = NDArray[np.float64]


@dataclass(frozen=True)
class ComparisonResult:
    """Arrays of one shape, one entry per comparison; optional views are None when not requested.

    ``reason`` is "" for a sound row, otherwise the first problem found (statistics.NO_UNITS, …);
    with ``zero_control_mean`` only the relative fields (and the Bayesian view, which is on the
    relative lift) are NaN.
    """

    metric_type: str
    alpha: float
    n_control: Array
    n_treatment: Array
    mean_control: Array
    mean_treatment: Array
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
    reason: NDArray[np.object_]
    cuped_theta: Array | None = None
    variance_reduction: Array | None = None
    seq_ci_low: Array | None = None
    seq_ci_high: Array | None = None
    seq_p_value: Array | None = None
    seq_rel_ci_low: Array | None = None
    seq_rel_ci_high: Array | None = None
    seq_rel_p_value: Array | None = None
    chance_to_win: Array | None = None
    expected_loss: Array | None = None
    expected_loss_control: Array | None = None
    bayes_ci_low: Array | None = None
    bayes_ci_high: Array | None = None
    bayes_scale: str | None = None                    # the Bayesian view's effect: relative lift or absolute
    alternative: NDArray[np.object_] | None = None   # two-sided, greater or less, per comparison
    null_abs: Array | None = None                     # θ₀ of the absolute test
    null_rel: Array | None = None                     # θ₀ of the relative test (a lift)

    def __len__(self) -> int:
        """Number of comparisons."""
        return int(np.size(self.abs_effect))

    def row(self, i: int = 0) -> dict[str, Any]:
        """One comparison as a JSON-friendly dict (NaN → None; views not requested are left out)."""
        return frequentist.entry(self, i)

    def records(self) -> list[dict[str, Any]]:
        """Every comparison as a JSON-friendly dict."""
        return [self.row(i) for i in range(len(self))]


def _nan_where(mask: NDArray[np.bool_], *arrays: Array) -> list[Array]:
    """Copies of the arrays with NaN where mask is true."""
    return [np.where(mask, np.nan, a) for a in arrays]


def _cuped_or_raw(raw_c: ArmMoments, raw_t: ArmMoments, adj_c: ArmMoments, adj_t: ArmMoments, theta: Array,
                  reduction: Array, terms: MeanCovariance, alpha: float
                  ) -> tuple[ArmMoments, ArmMoments, Array, Array, MeanCovariance]:
    """Keep the CUPED moments only where they narrow the absolute interval (t quantile included); else θ = 0
    (and the means are the independent raw ones again)."""
    def width(c: ArmMoments, t: ArmMoments) -> Array:
        effect = frequentist.absolute_effect(c, t)
        return frequentist.t_quantile(alpha, effect.df) * effect.se

    keep = width(adj_c, adj_t) < width(raw_c, raw_t)  # False where either is undefined

    def pick(adj: ArmMoments, raw: ArmMoments) -> ArmMoments:
        return ArmMoments(raw.n, np.where(keep, adj.mean, raw.mean), np.where(keep, adj.variance, raw.variance),
                          raw.reason)

    with np.errstate(divide="ignore", invalid="ignore"):
        mean_terms = MeanCovariance(np.where(keep, terms.var_control, raw_c.variance / raw_c.n),
                                    np.where(keep, terms.var_treatment, raw_t.variance / raw_t.n),
                                    np.where(keep, terms.covariance, 0.0))
    return (pick(adj_c, raw_c), pick(adj_t, raw_t), np.where(keep, theta, 0.0), np.where(keep, reduction, 0.0),
            mean_terms)


def compare(control: SampleStats, treatment: SampleStats, metric_type: MetricType = "mean", *, alpha: float = 0.05,
            cuped: bool = False, sequential: bool = False, n_star: float = seq.DEFAULT_N_STAR,
            bayesian: bool = False, prior: Prior | None = None, alternative: Any = "two-sided",
            null_abs: Any = 0.0, null_rel: Any = 0.0, theta: Any = None) -> ComparisonResult:
    """Effects, intervals and p-values of treatment against control for every entry of the statistics.

    cuped: adjust by the pre-exposure covariate in sum_y / sum_y2 / sum_xy (θ pooled over arms);
    sequential: add always-valid confidence sequences tuned at n_star total units;
    bayesian: add chance to win and expected loss on the relative lift (flat prior unless `prior`; a prior
    with scale="absolute" puts the whole Bayesian view on the absolute effect);
    alternative ("two-sided", "greater", "less"; one, or one per comparison) with the nulls null_abs
    (the absolute test's θ₀) and null_rel (the relative test's, a lift: 0.01 for superiority by 1 %,
    -0.02 for non-inferiority at 2 %): the p-values test them and the intervals become one-sided
    bounds (the open end ±inf), fixed and sequential alike;
    theta: CUPED's slope when estimated over more arms than this pair (``statistics.pooled_theta``).
    """
    if metric_type not in METRIC_TYPES:
        raise ValueError(f"metric_type must be one of {', '.join(METRIC_TYPES)}, not {metric_type!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), not {alpha}")
    if cuped and metric_type == "ratio" and (control.sum_z is None or treatment.sum_z is None):
        raise ValueError("CUPED for a ratio metric needs its pre-exposure covariate z (sum_z, sum_z2, sum_xz, sum_yz)")
    if prior is not None and not bayesian:
        bayesian = True

    raw_c, raw_t = moments(control, metric_type), moments(treatment, metric_type)
    shape = np.broadcast_shapes(raw_c.n.shape, raw_t.n.shape)
    given_theta, theta, reduction, mean_terms = theta, None, None, None
    arm_c, arm_t = raw_c, raw_t
    if cuped:
        arm_c, arm_t, theta, reduction, mean_terms = _cuped_or_raw(
            raw_c, raw_t, *cuped_moments(control, treatment, metric_type, given_theta), alpha)
    arm_c = ArmMoments(*(np.broadcast_to(a, shape) for a in (arm_c.n, arm_c.mean, arm_c.variance, arm_c.reason)))
    arm_t = ArmMoments(*(np.broadcast_to(a, shape) for a in (arm_t.n, arm_t.mean, arm_t.variance, arm_t.reason)))

    reason = np.where(arm_c.reason != OK, arm_c.reason, arm_t.reason).astype(object)
    ok = reason == OK
    zero_var = ok & (arm_c.variance == 0) & (arm_t.variance == 0)
    reason[zero_var] = ZERO_VARIANCE
    zero_mean = (reason == OK) & (arm_c.mean == 0)
    reason[zero_mean] = ZERO_CONTROL_MEAN
    bad_all = (reason != OK) & (reason != ZERO_CONTROL_MEAN)
    bad_rel = reason != OK
    bad_mean = bad_all & (reason != ZERO_VARIANCE)

    side = np.broadcast_to(frequentist.sides(alternative), shape)
    null_a = np.broadcast_to(np.asarray(null_abs, dtype=float), shape)
    null_r = np.broadcast_to(np.asarray(null_rel, dtype=float), shape)
    if not (np.all(np.isfinite(null_a)) and np.all(np.isfinite(null_r))):
        raise ValueError("null_abs and null_rel must be finite numbers")
    absolute = frequentist.absolute_effect(arm_c, arm_t)
    relative = frequentist.relative_effect(arm_c, arm_t, mean_terms)
    # the absolute and the relative effect share the Welch degrees of freedom: one set of critical values
    critical = frequentist.t_quantile(alpha, np.broadcast_to(absolute.df, shape), side)
    abs_low, abs_high = frequentist.interval(absolute, alpha, side, critical)
    rel_low, rel_high = frequentist.interval(relative, alpha, side, critical)
    abs_p, rel_p = frequentist.p_value(absolute, side, null_a), frequentist.p_value(relative, side, null_r)
    zero_rel = (reason == OK) & ~(np.asarray(relative.se) > 0)
    reason[zero_rel] = ZERO_RELATIVE_VARIANCE
    bad_rel = bad_rel | zero_rel
    abs_se, abs_low, abs_high, abs_p, df = _nan_where(bad_all, absolute.se, abs_low, abs_high, abs_p, absolute.df)
    rel_se, rel_low, rel_high, rel_p = _nan_where(bad_rel, relative.se, rel_low, rel_high, rel_p)
    abs_est = np.where(bad_mean, np.nan, absolute.estimate)
    rel_est = np.where(bad_rel & (reason != ZERO_VARIANCE) & (reason != ZERO_RELATIVE_VARIANCE), np.nan, relative.estimate)

    extra: dict[str, Array] = {}
    if cuped:
        extra["cuped_theta"] = np.broadcast_to(theta, shape).copy()
        extra["variance_reduction"] = np.where(bad_all, np.nan, np.broadcast_to(reduction, shape))
    if sequential:
        n_total = arm_c.n + arm_t.n
        half = seq.halfwidth(absolute.se, n_total, alpha, n_star)
        rel_half = seq.halfwidth(relative.se, n_total, alpha, n_star)

        def ends(estimate: Array, width: Array) -> tuple[Array, Array]:
            low, high = estimate - width, estimate + width
            defined = np.isfinite(low)
            return np.where(defined & (side < 0), -np.inf, low), np.where(defined & (side > 0), np.inf, high)

        extra["seq_ci_low"], extra["seq_ci_high"], extra["seq_p_value"] = _nan_where(
            bad_all, *ends(absolute.estimate, half),
            seq.p_value(absolute.estimate, absolute.se, n_total, alpha, n_star, side, null_a))
        extra["seq_rel_ci_low"], extra["seq_rel_ci_high"], extra["seq_rel_p_value"] = _nan_where(
            bad_rel, *ends(relative.estimate, rel_half),
            seq.p_value(relative.estimate, relative.se, n_total, alpha, n_star, side, null_r))
    if bayesian:
        on_absolute = prior is not None and prior.scale == "absolute"
        view = absolute if on_absolute else relative
        post_mean, post_sd = bayes_view.posterior(view.estimate, view.se, prior)
        loss_t, loss_c = bayes_view.expected_loss(post_mean, post_sd)
        low, high = bayes_view.credible_interval(post_mean, post_sd, alpha)
        (extra["chance_to_win"], extra["expected_loss"], extra["expected_loss_control"], extra["bayes_ci_low"],
         extra["bayes_ci_high"]) = _nan_where(bad_all if on_absolute else bad_rel,
                                               bayes_view.chance_to_win(post_mean, post_sd), loss_t, loss_c, low, high)
        extra["bayes_scale"] = "absolute" if on_absolute else "relative"

    return ComparisonResult(
        metric_type=metric_type, alpha=alpha,
        n_control=np.array(arm_c.n, dtype=float), n_treatment=np.array(arm_t.n, dtype=float),
        mean_control=np.array(raw_c.mean * np.ones(shape)), mean_treatment=np.array(raw_t.mean * np.ones(shape)),
        alternative=np.array([{0: "two-sided", 1: "greater", -1: "less"}[int(c)] for c in side.reshape(-1)],
                             dtype=object).reshape(shape),
        null_abs=np.array(null_a, dtype=float), null_rel=np.array(null_r, dtype=float),
        abs_effect=abs_est, abs_se=abs_se, abs_ci_low=abs_low, abs_ci_high=abs_high, p_value=abs_p, df=df,
        rel_lift=rel_est, rel_se=rel_se, rel_ci_low=rel_low, rel_ci_high=rel_high, rel_p_value=rel_p,
        reason=reason, **extra,
    )

