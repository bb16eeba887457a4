"""Planning: power, minimum detectable effect and required sample size for proportion and mean metrics.

The test planned for is the one ``compare`` runs: a two-sided test of the absolute difference with
unpooled variances, SE = √(σ²_c/n_c + σ²_t/n_t), under its normal limit. For a proportion σ² = p(1−p)
in each arm (the treatment's at the alternative p + δ); for a mean, a common standard deviation.
Power counts both rejection regions: Φ(|δ|/SE − z) + Φ(−|δ|/SE − z), z = z_{1−α/2}.
``ratio`` is n_treatment / n_control; ``relative=True`` states effects as a lift on the baseline.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special


def _check(metric_type: str, baseline: NDArray, std: ArrayLike | None, alpha: float, ratio: float) -> None:
    """Refuse planning inputs that describe no possible experiment."""
    if metric_type not in ("proportion", "mean"):
        raise ValueError(f"power calculations cover proportion and mean metrics, not {metric_type!r}")
    if metric_type == "proportion" and np.any((baseline <= 0) | (baseline >= 1)):
        raise ValueError("a proportion's baseline must lie strictly between 0 and 1")
    if metric_type == "mean" and (std is None or np.any(np.asarray(std, dtype=float) <= 0)):
        raise ValueError("a mean metric needs a positive std")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), not {alpha}")
    if not ratio > 0:
        raise ValueError(f"ratio (n_treatment / n_control) must be positive, not {ratio}")


def _variances(metric_type: str, baseline: NDArray, delta: NDArray, std: ArrayLike | None) -> tuple[NDArray, NDArray]:
    """Per-unit variances of control and treatment at the alternative."""
    if metric_type == "proportion":
        alt = baseline + delta
        if np.any((alt < 0) | (alt > 1)):
            raise ValueError("baseline + effect must stay within [0, 1] for a proportion")
        return baseline * (1 - baseline), alt * (1 - alt)
    s2 = np.asarray(std, dtype=float) ** 2
    return s2 + 0 * delta, s2 + 0 * delta


def _two_sided_power(standardised: NDArray, alpha: float) -> NDArray[np.float64]:
    """Power of a two-sided z test when the effect is `standardised` standard errors from 0."""
    z = special.ndtri(1 - alpha / 2)
    x = np.abs(standardised)
    return special.ndtr(x - z) + special.ndtr(-x - z)


def _standardised_for_power(alpha: float, target: float) -> float:
    """The |effect|/SE at which the two-sided test reaches the target power (bisection; power rises with it)."""
    if not alpha < target < 1:
        raise ValueError(f"power must lie in (alpha, 1), not {target}")
    lo, hi = 0.0, 60.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _two_sided_power(np.asarray(mid), alpha) < target else (lo, mid)
    return 0.5 * (lo + hi)


def power(effect: ArrayLike, n_control: ArrayLike, *, baseline: ArrayLike, metric_type: str = "proportion",
          std: ArrayLike | None = None, alpha: float = 0.05, ratio: float = 1.0, relative: bool = False) -> NDArray[np.float64]:
    """Probability that the two-sided test at α detects `effect` with n_control (and ratio × n_control) units."""
    b = np.asarray(baseline, dtype=float)
    _check(metric_type, b, std, alpha, ratio)
    delta = np.asarray(effect, dtype=float) * (b if relative else 1.0)
    vc, vt = _variances(metric_type, b, delta, std)
    nc = np.asarray(n_control, dtype=float)
    se = np.sqrt(vc / nc + vt / (ratio * nc))
    return _two_sided_power(delta / se, alpha)


def sample_size(effect: ArrayLike, *, baseline: ArrayLike, metric_type: str = "proportion", std: ArrayLike | None = None,
                alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0, relative: bool = False) -> NDArray[np.int64]:
    """Smallest control-arm size (treatment: ⌈ratio × n⌉) at which the test reaches `power` for `effect`."""
    b = np.asarray(baseline, dtype=float)
    _check(metric_type, b, std, alpha, ratio)
    delta = np.asarray(effect, dtype=float) * (b if relative else 1.0)
    if np.any(delta == 0):
        raise ValueError("an effect of 0 cannot be detected at any sample size")
    vc, vt = _variances(metric_type, b, delta, std)
    x = _standardised_for_power(alpha, power)
    return np.ceil(x * x * (vc + vt / ratio) / (delta * delta) - 1e-9).astype(np.int64)


def mde(n_control: ArrayLike, *, baseline: ArrayLike, metric_type: str = "proportion", std: ArrayLike | None = None,
        alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0, relative: bool = False,
        direction: int = 1) -> NDArray[np.float64]:
    """Smallest effect (absolute, or relative to the baseline) in `direction` (+1 up, −1 down) detected with `power`.

    NaN where no effect within a proportion's range [0, 1] reaches the power (too few units).
    """
    b = np.asarray(baseline, dtype=float)
    _check(metric_type, b, std, alpha, ratio)
    if direction not in (1, -1):
        raise ValueError("direction must be +1 or -1")
    nc, nt = np.asarray(n_control, dtype=float), ratio * np.asarray(n_control, dtype=float)
    x = _standardised_for_power(alpha, power)
    if metric_type == "mean":
        delta = x * np.asarray(std, dtype=float) * np.sqrt(1 / nc + 1 / nt) + 0 * b
    else:  # δ/SE(δ) grows with δ for a proportion, so bisect on δ within the room the baseline leaves
        room = np.where(direction > 0, 1 - b, b) + 0 * nc
        lo, hi = np.zeros_like(room), room.copy()
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            alt = b + direction * mid
            se = np.sqrt(b * (1 - b) / nc + alt * (1 - alt) / nt)
            below = mid / se < x
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        delta = 0.5 * (lo + hi)
        delta = np.where(hi >= room * (1 - 1e-12), np.nan, delta)
    delta = direction * delta
    return delta / b if relative else delta
