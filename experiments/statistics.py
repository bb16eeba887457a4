"""Sufficient statistics per arm and the mean and variance each metric type derives from them.

Everything here is vectorised: every field may be a scalar or a numpy array (one entry per arm ×
metric × slice), so thousands of arms are summarised in one pass. Sums add, so statistics
aggregated per day or per segment can be re-aggregated without touching unit rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

MetricType = Literal["proportion", "mean", "ratio"]
METRIC_TYPES: tuple[str, ...] = ("proportion", "mean", "ratio")

# Reasons a comparison row is (partly) undefined; "" means the row is fine.
OK = ""
NO_UNITS = "no_units"  # an arm has no units
TOO_FEW_UNITS = "too_few_units"  # an arm has one unit: no sample variance
ZERO_DENOMINATOR = "zero_denominator"  # a ratio metric's denominator sums to 0 in an arm
NEGATIVE_VARIANCE = "negative_variance"  # the sums are inconsistent (Σx² < (Σx)²/n beyond rounding)
ZERO_VARIANCE = "zero_variance"  # both arms constant: the effect is exact, no test is possible
ZERO_CONTROL_MEAN = "zero_control_mean"  # relative lift undefined (absolute fields stay valid)
# the delta method gives the lift no spread (a constant treatment arm at 0): the relative interval
# and p-value are undefined; the absolute fields stay valid
ZERO_RELATIVE_VARIANCE = "zero_relative_variance"


@dataclass(frozen=True)
class SampleStats:
    """Sufficient statistics of one arm (or an array of arms): n, Σx, Σx² and, for ratio or CUPED, Σy, Σy², Σxy.

    For a ratio metric x is the numerator and y the denominator per unit; for CUPED y is the
    pre-exposure covariate. For a proportion, Σx² may be omitted (it equals Σx for 0/1 values).
    A ratio metric's CUPED covariate is z (Σz, Σz², Σxz, Σyz), since y is its denominator.
    """

    n: ArrayLike
    sum_x: ArrayLike
    sum_x2: ArrayLike | None = None
    sum_y: ArrayLike | None = None
    sum_y2: ArrayLike | None = None
    sum_xy: ArrayLike | None = None
    sum_z: ArrayLike | None = None
    sum_z2: ArrayLike | None = None
    sum_xz: ArrayLike | None = None
    sum_yz: ArrayLike | None = None

    def __add__(self, other: "SampleStats") -> "SampleStats":
        """Pool two sets of statistics (sums add), e.g. two days or two segments of one arm."""

        def add(a: ArrayLike | None, b: ArrayLike | None) -> NDArray[np.float64] | None:
            if a is None or b is None:
                return None
            return np.asarray(a, dtype=float) + np.asarray(b, dtype=float)

        return SampleStats(
            n=np.asarray(self.n, dtype=float) + np.asarray(other.n, dtype=float),
            sum_x=np.asarray(self.sum_x, dtype=float) + np.asarray(other.sum_x, dtype=float),
            sum_x2=add(self.sum_x2, other.sum_x2),
            sum_y=add(self.sum_y, other.sum_y),
            sum_y2=add(self.sum_y2, other.sum_y2),
            sum_xy=add(self.sum_xy, other.sum_xy),
            sum_z=add(self.sum_z, other.sum_z),
            sum_z2=add(self.sum_z2, other.sum_z2),
            sum_xz=add(self.sum_xz, other.sum_xz),
            sum_yz=add(self.sum_yz, other.sum_yz),
        )

    @classmethod
    def from_values(cls, x: ArrayLike, y: ArrayLike | None = None) -> "SampleStats":
        """Summarise one arm's per-unit values (a convenience for tests and small tables)."""
        xa = np.asarray(x, dtype=float)
        if y is None:
            return cls(n=float(xa.size), sum_x=float(xa.sum()), sum_x2=float((xa * xa).sum()))
        ya = np.asarray(y, dtype=float)
        return cls(
            n=float(xa.size), sum_x=float(xa.sum()), sum_x2=float((xa * xa).sum()),
            sum_y=float(ya.sum()), sum_y2=float((ya * ya).sum()), sum_xy=float((xa * ya).sum()),
        )


@dataclass(frozen=True)
class ArmMoments:
    """Per-arm estimate and per-unit variance: Var(mean) ≈ variance / n. ``reason`` marks unusable arms."""

    n: NDArray[np.float64]
    mean: NDArray[np.float64]
    variance: NDArray[np.float64]
    reason: NDArray[np.object_]


def _arr(value: ArrayLike | None, name: str) -> NDArray[np.float64]:
    """Coerce a statistic to a float array, naming the field when it is missing."""
    if value is None:
        raise ValueError(f"SampleStats.{name} is required for this metric type")
    return np.asarray(value, dtype=float)


def _centered(sum_a: NDArray, sum_b: NDArray, sum_ab: NDArray, n: NDArray) -> NDArray[np.float64]:
    """Centred cross-product Σ(a−ā)(b−b̄) = Σab − ΣaΣb/n (0 where n is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, sum_ab - sum_a * sum_b / np.where(n > 0, n, 1.0), 0.0)


def _clean_variance(raw: NDArray, scale: NDArray, reason: NDArray[np.object_]) -> NDArray[np.float64]:
    """Clip rounding-level negative variances to 0; flag the ones too negative to be rounding."""
    tol = 1e-9 * np.maximum(np.abs(scale), 1e-300)
    bad = raw < -tol
    reason[(reason == OK) & bad] = NEGATIVE_VARIANCE
    return np.where(raw < 0, 0.0, raw)


def _base_reason(n: NDArray) -> NDArray[np.object_]:
    """Reasons that depend on the unit count alone."""
    reason = np.full(n.shape, OK, dtype=object)
    reason[n < 2] = TOO_FEW_UNITS
    reason[n <= 0] = NO_UNITS
    return reason


def moments(stats: SampleStats, metric_type: MetricType) -> ArmMoments:
    """Mean and per-unit variance (sample variance, n−1) of an arm; for ratios the delta-method variance.

    Ratio R = Σx/Σy: Var(R̂) ≈ (s²ₓ − 2R·sₓᵧ + R²·s²ᵧ) / (n·ȳ²), the first-order Taylor expansion of
    x̄/ȳ around the true means, which is what makes per-user clicks / per-user deliveries valid when
    the randomisation unit is the user.
    """
    if metric_type not in METRIC_TYPES:
        raise ValueError(f"metric_type must be one of {', '.join(METRIC_TYPES)}, not {metric_type!r}")
    n = _arr(stats.n, "n")
    sx = _arr(stats.sum_x, "sum_x")
    n, sx = np.broadcast_arrays(n, sx)
    reason = _base_reason(n)
    safe_n = np.where(n > 0, n, 1.0)
    dof = np.where(n > 1, n - 1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric_type == "ratio":
            sy = _arr(stats.sum_y, "sum_y")
            syy = _arr(stats.sum_y2, "sum_y2")
            sxy = _arr(stats.sum_xy, "sum_xy")
            sxx = _arr(stats.sum_x2, "sum_x2")
            zero_den = (n > 0) & (sy == 0)
            reason[(reason == OK) & zero_den] = ZERO_DENOMINATOR
            vx = _clean_variance(_centered(sx, sx, sxx, n), sxx, reason) / dof
            vy = _clean_variance(_centered(sy, sy, syy, n), syy, reason) / dof
            cxy = _centered(sx, sy, sxy, n) / dof
            ybar = sy / safe_n
            ratio = np.where(sy != 0, sx / np.where(sy != 0, sy, 1.0), np.nan)
            var = (vx - 2.0 * ratio * cxy + ratio * ratio * vy) / (ybar * ybar)
            var = np.where(np.isfinite(var) & (var < 0), 0.0, var)
            mean = ratio
        else:
            sxx = sx if (metric_type == "proportion" and stats.sum_x2 is None) else _arr(stats.sum_x2, "sum_x2")
            var = _clean_variance(_centered(sx, sx, sxx, n), sxx, reason) / dof
            mean = np.where(n > 0, sx / safe_n, np.nan)
    var = np.where(n < 2, np.nan, var)
    return ArmMoments(n=n.astype(float), mean=mean, variance=var, reason=reason)


@dataclass(frozen=True)
class MeanCovariance:
    """Variances of two arms' estimated means and their covariance (for a ratio of the two)."""

    var_control: NDArray[np.float64]
    var_treatment: NDArray[np.float64]
    covariance: NDArray[np.float64]


def _covariate_parts(stats: SampleStats, metric_type: MetricType) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """(n, Σ covariate, Σ(c − c̄)², Σ(m − m̄)(c − c̄)) of an arm: for proportions and means the
    metric m is x and the covariate c is y; for a ratio R = Σx/Σy, m is its per-unit linearisation
    L = (x − R·y)/ȳ and c is z, so Σ(L − L̄)(z − z̄) = (C(x, z) − R·C(y, z))/ȳ with C the centred
    cross-products (the delta method, as for the ratio's own variance)."""
    n, sx = _arr(stats.n, "n"), _arr(stats.sum_x, "sum_x")
    if metric_type != "ratio":
        sy, syy, sxy = _arr(stats.sum_y, "sum_y"), _arr(stats.sum_y2, "sum_y2"), _arr(stats.sum_xy, "sum_xy")
        return n, sy, np.maximum(_centered(sy, sy, syy, n), 0.0), _centered(sx, sy, sxy, n)
    sy = _arr(stats.sum_y, "sum_y")
    sz, szz = _arr(stats.sum_z, "sum_z"), _arr(stats.sum_z2, "sum_z2")
    sxz, syz = _arr(stats.sum_xz, "sum_xz"), _arr(stats.sum_yz, "sum_yz")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(sy != 0, sx / np.where(sy != 0, sy, 1.0), 0.0)
        ybar = np.where(n > 0, sy / np.where(n > 0, n, 1.0), 0.0)
        cross = np.where(ybar != 0, (_centered(sx, sz, sxz, n) - ratio * _centered(sy, sz, syz, n))
                         / np.where(ybar != 0, ybar, 1.0), 0.0)
    return n, sz, np.maximum(_centered(sz, sz, szz, n), 0.0), cross


def pooled_theta(arms: list[SampleStats], metric_type: MetricType = "mean") -> NDArray[np.float64]:
    """θ pooled within every arm of an experiment (its ANCOVA common slope over all k arms):
    Σ_arms Σ(m−m̄)(c−c̄) / Σ_arms Σ(c−c̄)² (m, c as in ``_covariate_parts``), 0 where the covariate
    does not vary."""
    parts = [_covariate_parts(a, metric_type) for a in arms]
    cxy = sum(p[3] for p in parts)
    cyy = sum(p[2] for p in parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cyy > 0, cxy / np.where(cyy > 0, cyy, 1.0), 0.0)


def cuped_moments(
    control: SampleStats, treatment: SampleStats, metric_type: MetricType = "mean", theta: ArrayLike | None = None
) -> tuple[ArmMoments, ArmMoments, NDArray[np.float64], NDArray[np.float64], MeanCovariance]:
    """CUPED-adjusted arm moments with θ pooled over arms; returns (control, treatment, θ, variance
    reduction, the adjusted means' covariance terms).

    θ = Σ_arms Σ(x−x̄)(y−ȳ) / Σ_arms Σ(y−ȳ)², the pooled within-arm slope of the metric x on the
    pre-exposure covariate y (the ANCOVA common slope; unaffected by the treatment's shift of x̄).
    Adjusted mean of an arm: x̄ − θ(ȳ − ȳ_all), with ȳ_all the covariate mean over both arms, so the
    absolute effect is Δx̄ − θΔȳ. Per-unit variance: s²ₓ − 2θsₓᵧ + θ²s²ᵧ. (``compare`` falls back to
    the unadjusted moments wherever adjustment would not narrow the interval.) The variance reduction
    is 1 − Var_adjusted(Δ) / Var_unadjusted(Δ).

    ``theta`` replaces the pair's θ with one estimated elsewhere — ``pooled_theta`` over all k arms
    of an experiment, so that every comparison with the control adjusts by the same slope.

    The two adjusted means share ȳ_all, so they are not independent, which matters for the relative
    lift (their ratio); with weights w = n/N and θ taken as fixed,
    m'_c = (x̄_c − θ w_t ȳ_c) + θ w_t ȳ_t and m'_t = (x̄_t − θ w_c ȳ_t) + θ w_c ȳ_c, so
    Var(m'_c) = (s²ₓ − 2θw_t sₓᵧ + θ²w_t² s²ᵧ)_c/n_c + θ²w_t² s²ᵧ_t/n_t (and symmetrically), and
    Cov(m'_c, m'_t) = θw_c (sₓᵧ − θw_t s²ᵧ)_c/n_c + θw_t (sₓᵧ − θw_c s²ᵧ)_t/n_t.
    """
    if metric_type == "ratio" and (control.sum_z is None or treatment.sum_z is None):
        raise ValueError("CUPED for a ratio metric needs its pre-exposure covariate z (sum_z, sum_z2, sum_xz, sum_yz)")
    raw_c, raw_t = moments(control, metric_type), moments(treatment, metric_type)
    # for a ratio the "metric" is its linearisation (variance: the ratio's delta-method variance)
    # and the covariate is z; every formula below then reads as for a mean with covariate y
    (nc, syc, cyy_c, cxy_c), (nt, syt, cyy_t, cxy_t) = (_covariate_parts(s, metric_type) for s in (control, treatment))
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled_yy = cyy_c + cyy_t
        if theta is None:
            theta = np.where(pooled_yy > 0, (cxy_c + cxy_t) / np.where(pooled_yy > 0, pooled_yy, 1.0), 0.0)
        else:
            theta = np.where(np.isfinite(np.asarray(theta, dtype=float)), np.asarray(theta, dtype=float), 0.0)
        ybar_all = (syc + syt) / np.where(nc + nt > 0, nc + nt, 1.0)

        def adjust(raw: ArmMoments, n, sy, cyy, cxy) -> tuple[NDArray, NDArray]:
            dof = np.where(n > 1, n - 1.0, 1.0)
            ybar = sy / np.where(n > 0, n, 1.0)
            mean = raw.mean - theta * (ybar - ybar_all)
            var = raw.variance - 2.0 * theta * cxy / dof + theta * theta * cyy / dof
            return mean, np.maximum(var, 0.0)

        mc, vc = adjust(raw_c, nc, syc, cyy_c, cxy_c)
        mt, vt = adjust(raw_t, nt, syt, cyy_t, cxy_t)
        unadjusted = raw_c.variance / nc + raw_t.variance / nt
        adjusted = vc / nc + vt / nt
        reduction = 1.0 - adjusted / unadjusted
        # the adjusted means' variances and covariance (both hold θ·ȳ_all)
        total = np.where(nc + nt > 0, nc + nt, 1.0)
        wc, wt = nc / total, nt / total
        sxx_c, sxx_t = raw_c.variance, raw_t.variance
        syy_c, syy_t = cyy_c / np.where(nc > 1, nc - 1.0, 1.0), cyy_t / np.where(nt > 1, nt - 1.0, 1.0)
        sxy_c, sxy_t = cxy_c / np.where(nc > 1, nc - 1.0, 1.0), cxy_t / np.where(nt > 1, nt - 1.0, 1.0)
        var_mc = (sxx_c - 2 * theta * wt * sxy_c + theta**2 * wt**2 * syy_c) / nc + theta**2 * wt**2 * syy_t / nt
        var_mt = (sxx_t - 2 * theta * wc * sxy_t + theta**2 * wc**2 * syy_t) / nt + theta**2 * wc**2 * syy_c / nc
        cov = theta * wc * (sxy_c - theta * wt * syy_c) / nc + theta * wt * (sxy_t - theta * wc * syy_t) / nt
    adj_c = ArmMoments(n=raw_c.n, mean=mc, variance=vc, reason=raw_c.reason)
    adj_t = ArmMoments(n=raw_t.n, mean=mt, variance=vt, reason=raw_t.reason)
    return adj_c, adj_t, theta, reduction, MeanCovariance(np.maximum(var_mc, 0.0), np.maximum(var_mt, 0.0), cov)
