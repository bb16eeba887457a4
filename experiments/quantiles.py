"""Quantile metrics (the median or p90 of dwell seconds, of seconds to a click) from per-arm
histograms on log-spaced buckets — the sufficient statistics ``marts.fct_experiment_quantiles``
holds: bucket b covers [1.05^b − 1, 1.05^(b+1) − 1).

Per arm, with n units and cumulative counts: the sample quantile Q(q) interpolates linearly within
its bucket at rank n·q; its standard error comes from the distribution-free order-statistic
interval, ranks n·q ± z·√(n·q(1 − q)) mapped back to values, SE = (Q_high − Q_low) / (2z) (the
rank-based form of q(1 − q) / (n f(Q)²), so no density has to be estimated). Between arms: Δ =
Q_t − Q_c with SE √(SE_t² + SE_c²), the relative lift Δ / |Q_c| by the delta method with the arms
independent, normal intervals and p-values (one-sided too). Vectorised: the buckets are the last
axis, comparisons any axes before it. Resolution: a quantile is exact to within its bucket (5 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from experiments import frequentist

GROWTH = 1.05
Array = NDArray[np.float64]


def bucket_of(values: ArrayLike) -> NDArray[np.int64]:
    """The bucket of each value (seconds ≥ 0), as the marts compute it."""
    v = np.maximum(np.asarray(values, dtype=float), 0.0)
    return np.floor(np.log1p(v) / np.log(GROWTH)).astype(np.int64)


def edges(buckets: int) -> Array:
    """The lower edges of buckets 0 .. buckets (the last is the upper edge of the last bucket)."""
    return GROWTH ** np.arange(buckets + 1, dtype=float) - 1.0


def histogram(values: ArrayLike, buckets: int) -> NDArray[np.int64]:
    """Counts per bucket (a value beyond the last bucket goes to the last)."""
    b = np.minimum(bucket_of(values), buckets - 1)
    return np.bincount(b, minlength=buckets)


BLOCK = 16   # buckets per block: ranks are found among block sums first, then within one block


def value_at_rank(counts: ArrayLike, rank: ArrayLike, first: int = 0) -> Array:
    """The value at (fractional) ranks 0..n of each histogram, linear within its bucket; ``rank`` has
    the histograms' leading shape plus one axis of ranks (several ranks share one pass).
    ``first``: the bucket of the histograms' first column (they may be trimmed to the used range).

    A rank's bucket is the first whose cumulative count reaches it: found among the cumulative sums
    of blocks of BLOCK buckets, then among the cumulative sums inside that one block, so the full
    cumulative histogram is never written out (the histograms are read once)."""
    counts = np.asarray(counts, dtype=float)
    width = counts.shape[-1]
    flat = counts.reshape(-1, width)
    rows = flat.shape[0]
    pad = (-width) % BLOCK
    if pad:
        flat = np.pad(flat, ((0, 0), (0, pad)))
    blocks = flat.reshape(rows, -1, BLOCK)
    block_sums = blocks.sum(axis=-1)
    block_cum = np.cumsum(block_sums, axis=-1)
    n = block_cum[:, -1:]
    rank = np.clip(np.asarray(rank, dtype=float).reshape(rows, -1), 0.0, n)          # (rows, R)
    block = np.minimum((block_cum[:, None, :] < rank[:, :, None]).sum(axis=-1), blocks.shape[1] - 1)
    base = np.take_along_axis(block_cum - block_sums, block, axis=-1)
    inner = blocks[np.arange(rows)[:, None], block]                                    # (rows, R, BLOCK)
    inner_cum = np.cumsum(inner, axis=-1) + base[..., None]
    within = np.minimum((inner_cum < rank[..., None]).sum(axis=-1), BLOCK - 1)
    inside = np.take_along_axis(inner, within[..., None], axis=-1)[..., 0]
    before = np.take_along_axis(inner_cum, within[..., None], axis=-1)[..., 0] - inside
    index = np.minimum(block * BLOCK + within, width - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(inside > 0, (rank - before) / np.where(inside > 0, inside, 1.0), 0.0)
    lower = edges(first + width + BLOCK)[first:]
    low, high = lower[index], lower[index + 1]
    return (low + share * (high - low)).reshape(np.shape(counts)[:-1] + (-1,))


@dataclass(frozen=True)
class QuantileStats:
    """Per arm: n, the quantile and its standard error."""

    n: Array
    value: Array
    se: Array


def arm_quantile(counts: ArrayLike, q: float, alpha: float = 0.05, first: int = 0) -> QuantileStats:
    """The q-quantile of each histogram and its order-statistic standard error (``first``: the bucket
    of the first column)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"a quantile lies in (0, 1), not {q}")
    counts = np.asarray(counts, dtype=float)
    n = counts.sum(axis=-1)
    z = special.ndtri(1.0 - alpha / 2.0)
    spread = z * np.sqrt(n * q * (1.0 - q))
    value, low, high = np.moveaxis(value_at_rank(counts, np.stack([n * q, n * q - spread, n * q + spread], axis=-1),
                                                 first), -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(n > 1, (high - low) / (2.0 * z), np.nan)
    return QuantileStats(n, np.where(n > 0, value, np.nan), se)


@dataclass(frozen=True)
class QuantileComparison:
    n_control: Array
    n_treatment: Array
    mean_control: Array          # the control's quantile (named like the other comparisons' fields)
    mean_treatment: Array
    abs_effect: Array
    abs_se: Array
    abs_ci_low: Array
    abs_ci_high: Array
    p_value: Array
    rel_lift: Array
    rel_se: Array
    rel_ci_low: Array
    rel_ci_high: Array
    rel_p_value: Array
    reason: NDArray[np.object_]

    def row(self, i: int = 0) -> dict[str, Any]:
        """One comparison as a JSON-friendly dict (NaN and ±inf → None)."""
        return frequentist.entry(self, i)


def compare_quantiles(control: ArrayLike, treatment: ArrayLike, q: float, *, alpha: float = 0.05,
                      alternative: Any = "two-sided", null_rel: Any = 0.0) -> QuantileComparison:
    """Treatment's q-quantile against control's, from their histograms (buckets on the last axis)."""
    control, treatment = np.asarray(control, dtype=float), np.asarray(treatment, dtype=float)
    used = np.flatnonzero(control.reshape(-1, control.shape[-1]).any(axis=0)
                          | treatment.reshape(-1, treatment.shape[-1]).any(axis=0))
    first, last = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)   # buckets no histogram uses
    c = arm_quantile(control[..., first:last], q, alpha, first)
    t = arm_quantile(treatment[..., first:last], q, alpha, first)
    shape = np.shape(c.value)
    side = np.broadcast_to(frequentist.sides(alternative), shape)
    df = np.full(shape, 1e9)         # the normal limit (the order-statistic SE is asymptotic)
    absolute = frequentist.Effect(t.value - c.value, np.sqrt(c.se**2 + t.se**2), df)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_var = t.se**2 / c.value**2 + t.value**2 * c.se**2 / c.value**4
        relative = frequentist.Effect((t.value - c.value) / np.abs(c.value), np.sqrt(rel_var), df)
    reason = np.full(shape, "", dtype=object)
    reason[(c.n < 2) | (t.n < 2)] = "too_few_units"
    reason[(c.n == 0) | (t.n == 0)] = "no_units"
    reason[(reason == "") & (absolute.se == 0)] = "zero_variance"
    reason[(reason == "") & (c.value == 0)] = "zero_control_mean"
    bad = (reason != "") & (reason != "zero_control_mean")
    bad_rel = reason != ""
    critical = np.full(shape, special.ndtri(1.0 - alpha / 2.0))
    critical = np.where(side == 0, critical, special.ndtri(1.0 - alpha))
    abs_low, abs_high = frequentist.interval(absolute, alpha, side, critical)
    rel_low, rel_high = frequentist.interval(relative, alpha, side, critical)

    def nan(mask, value):
        return np.where(mask, np.nan, value)

    return QuantileComparison(
        n_control=c.n, n_treatment=t.n, mean_control=c.value, mean_treatment=t.value,
        abs_effect=nan((c.n == 0) | (t.n == 0), absolute.estimate), abs_se=nan(bad, absolute.se),
        abs_ci_low=nan(bad, abs_low), abs_ci_high=nan(bad, abs_high),
        p_value=nan(bad, frequentist.p_value(absolute, side, 0.0)),
        rel_lift=nan(bad_rel, relative.estimate), rel_se=nan(bad_rel, relative.se),
        rel_ci_low=nan(bad_rel, rel_low), rel_ci_high=nan(bad_rel, rel_high),
        rel_p_value=nan(bad_rel, frequentist.p_value(relative, side, np.asarray(null_rel, dtype=float))),
        reason=reason)
