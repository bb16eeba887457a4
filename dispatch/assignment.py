"""Experiment arms at send time: a deterministic hash of experiment and unit, cut by the weights.

``bucket(experiment, unit)`` maps the pair to a number in [0, 1) (the first 64 bits of SHA-256):
the same unit gets the same arm for as long as the weights stay the same, on any machine and in
any process, and units of different experiments are independent. ``assign`` cuts [0, 1) into
consecutive intervals, one per arm in the experiment's order. A unit assigned before keeps its arm
(``previous``) even when the weights change later (Thompson allocation moves the weights), so a
person never switches arms. The holdout is an arm like the others that is assigned but not sent.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from itertools import accumulate

_SCALE = float(2 ** 64)


def bucket(experiment_id: str, unit_id: str) -> float:
    digest = hashlib.sha256(f"{experiment_id}\x00{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign(experiment_id: str, units: Iterable[str], weights: Mapping[str, float],
           previous: Mapping[str, str] | None = None) -> list[str]:
    """The arm of each unit (weights: arm -> share, in the experiment's arm order)."""
    arms = list(weights)
    total = sum(weights.values())
    if not arms or total <= 0:
        raise ValueError("an assignment needs at least one arm with a positive weight")
    edges = list(accumulate(weights[a] / total for a in arms))
    edges[-1] = 1.0
    last = len(arms) - 1
    previous = previous or {}
    out = []
    for unit in units:
        kept = previous.get(unit)
        if kept is not None and kept in weights:
            out.append(kept)
            continue
        out.append(arms[min(bisect_right(edges, bucket(experiment_id, unit)), last)])
    return out
