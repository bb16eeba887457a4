"""The anomaly job's stored scoring state: one file, written whole and atomically after each run.

Per metric it holds the ``stream.StreamState`` (expectations, blanked-out hours, dispersion counters,
CUSUMs, ended spans) together with what the state was computed from: the slice keys in state order,
the model parameters, and the per-hour totals of the numerator and denominator over the hours already
scored. A run continues from the state only when the parameters are the same and the mart still holds
the same numbers for those hours (a rebuilt mart, late data beyond the settle time or a rolled-back
warehouse make it score everything again, and say so).
"""

from __future__ import annotations

import json
import zipfile
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from experiments.anomalies.baseline import Params
from experiments.anomalies.stream import Span, StreamState

VERSION = 1
ARRAYS = ("mu", "var", "mask", "hist", "phi_days", "C", "alarmed", "run_start")
SPAN_FIELDS = ("series", "direction", "start", "end", "core")


@dataclass
class MetricState:
    """One metric's state and what it was computed from."""

    stream: StreamState
    keys: list[str]  # slice key per state row
    col_num: np.ndarray  # per hour of the grid: the total slice's numerator (NaN = not scored yet)
    col_den: np.ndarray  # ... and denominator


def fingerprint(params: Params) -> str:
    return json.dumps({"version": VERSION, **asdict(params)}, sort_keys=True, default=list)


def column_totals(num: np.ndarray, den: np.ndarray | None, upto: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """The total slice's (row ``total``) numerator and denominator per hour before ``upto`` (the rest NaN):
    every message of the mart is in it, so any change to an hour already scored shows here."""
    T = num.shape[1]
    cn = np.full(T, np.nan)
    cd = np.full(T, np.nan)
    cn[:upto] = np.nan_to_num(num[total, :upto])
    cd[:upto] = np.nan_to_num(den[total, :upto]) if den is not None else 0.0
    return cn, cd


def save(path: Path, states: dict[str, MetricState], params: Params) -> None:
    """Write every metric's state to ``path`` (a temporary file renamed over it: all or nothing)."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, dict] = {}
    for name, ms in states.items():
        st = ms.stream
        for a in ARRAYS:
            arrays[f"{name}.{a}"] = getattr(st, a)
        arrays[f"{name}.col_num"], arrays[f"{name}.col_den"] = ms.col_num, ms.col_den
        spans = st.closed
        arrays[f"{name}.spans"] = np.array([[getattr(sp, f) for f in SPAN_FIELDS] for sp in spans],
                                           dtype=np.int64).reshape(-1, len(SPAN_FIELDS))
        arrays[f"{name}.span_peaks"] = np.array([sp.peak for sp in spans], dtype=np.float64)
        meta[name] = {"hour0": st.hour0, "next": st.next, "threshold": st.threshold, "keys": ms.keys}
    arrays["meta"] = np.frombuffer(json.dumps({"params": fingerprint(params), "metrics": meta}).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(path: Path, params: Params) -> tuple[dict[str, MetricState], str | None]:
    """The stored states, or ({}, why not) when there are none usable with these parameters."""
    if not path.exists():
        return {}, "no stored state"
    try:
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("params") != fingerprint(params):
                return {}, "the model parameters changed"
            out = {}
            for name, m in meta["metrics"].items():
                fields = {a: data[f"{name}.{a}"] for a in ARRAYS}
                spans = [Span(int(r[0]), int(r[1]), int(r[2]), int(r[3]), float(pk), False, int(r[4]))
                         for r, pk in zip(data[f"{name}.spans"], data[f"{name}.span_peaks"])]
                st = StreamState(int(m["hour0"]), int(m["next"]), float(m["threshold"]), closed=spans, **fields)
                out[name] = MetricState(st, list(m["keys"]), data[f"{name}.col_num"], data[f"{name}.col_den"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        return {}, f"the stored state is unreadable ({exc.__class__.__name__})"
    return out, None


def aligned(ms: MetricState, keys: list[str], hour0: int, num: np.ndarray, den: np.ndarray | None,
            total: int, threshold: float) -> str | None:
    """Fit ``ms`` to the current slices and grid in place; None when it can continue, else why not."""
    st = ms.stream
    if not np.isclose(st.threshold, threshold, rtol=0, atol=1e-12):
        return "the number of slices doubled or halved (the alarm level moved)"
    if hour0 < st.hour0:
        return "the mart now starts earlier than the stored state"
    shift = hour0 - st.hour0
    position = {k: i for i, k in enumerate(ms.keys)}
    order = np.array([position.get(k, -1) for k in keys], dtype=np.int64)
    st.realign(hour0, order)
    if num.shape[1] < st.mu.shape[1]:
        return "the mart holds fewer hours than the stored state"
    cn, cd = ms.col_num[shift:], ms.col_den[shift:]
    now_n, now_d = column_totals(num, den, st.next, total)
    done = slice(0, st.next)
    if not (np.allclose(cn[done], now_n[done], rtol=0, atol=1e-6) and np.allclose(cd[done], now_d[done], rtol=0, atol=1e-6)):
        return "the mart's numbers changed for hours already scored"
    ms.keys = list(keys)
    return None
