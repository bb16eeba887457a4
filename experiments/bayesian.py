"""A Bayesian reading of a comparison: normal approximation on the lift, with a flat or a stated normal prior.

The likelihood of the lift is N(estimate, SE²) (the same estimate and SE as the frequentist view);
with a prior N(μ₀, τ²) the posterior is the precision-weighted normal. Higher is taken as better:
chance to win = P(lift > 0); expected loss of shipping the treatment = E[max(0, −lift)], the lift
given up on average if the treatment is in truth worse (and of keeping control, E[max(0, lift)]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special


@dataclass(frozen=True)
class Prior:
    """A proper normal prior N(mean, variance) on the relative lift, or (``scale="absolute"``) on the
    absolute effect in the metric's own units — then the whole Bayesian view (chance to win,
    expected loss, credible interval) is of the absolute effect."""

    mean: float = 0.0
    variance: float = 0.3**2
    scale: str = "relative"

    def __post_init__(self) -> None:
        """Refuse priors that are not proper normals (use prior=None for a flat prior)."""
        if not (np.isfinite(self.mean) and np.isfinite(self.variance) and self.variance > 0):
            raise ValueError(f"a prior needs a finite mean and a positive variance, not {self.mean}, {self.variance}")
        if self.scale not in ("relative", "absolute"):
            raise ValueError(f"a prior's scale is relative or absolute, not {self.scale!r}")


def posterior(estimate: ArrayLike, se: ArrayLike, prior: Prior | None = None) -> tuple[NDArray, NDArray]:
    """Posterior mean and standard deviation of the lift (flat prior: the likelihood itself)."""
    est, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    if prior is None:
        return est, se
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = 1.0 / (se * se) + 1.0 / prior.variance
        mean = (est / (se * se) + prior.mean / prior.variance) / precision
        return mean, np.sqrt(1.0 / precision)


def chance_to_win(mean: ArrayLike, sd: ArrayLike) -> NDArray[np.float64]:
    """P(lift > 0) under N(mean, sd²)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return special.ndtr(np.asarray(mean, dtype=float) / np.asarray(sd, dtype=float))


def expected_loss(mean: ArrayLike, sd: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(E[max(0, −lift)], E[max(0, lift)]): the expected loss of choosing treatment, and of choosing control."""
    m, s = np.asarray(mean, dtype=float), np.asarray(sd, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = m / s
        density = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
        loss_treatment = s * density - m * special.ndtr(-z)
        loss_control = s * density + m * special.ndtr(z)
    return np.maximum(loss_treatment, 0.0), np.maximum(loss_control, 0.0)


def credible_interval(mean: ArrayLike, sd: ArrayLike, alpha: float = 0.05) -> tuple[NDArray, NDArray]:
    """Equal-tailed (1 − α) credible interval of the normal posterior."""
    z = special.ndtri(1.0 - alpha / 2.0)
    m, s = np.asarray(mean, dtype=float), np.asarray(sd, dtype=float)
    return m - z * s, m + z * s
