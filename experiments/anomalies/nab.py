"""Scoring on the Numenta Anomaly Benchmark (NAB v1.1), and a runner for our causal detector.

This is an independent implementation of the NAB v1.1 scoring rules, written from reading NAB's
``nab/sweeper.py``, ``nab/scorer.py``, ``nab/runner.py`` and ``nab/labeler.py`` at tag v1.1
(commit 0dcd73007a349ca0f4128c4c9b18133ce00d9296):

* Each data file has zero or more label windows ``[start, end]`` (``labels/combined_windows.json``);
  both ends are timestamps that occur in the file.
* The first ``min(floor(0.15 * n), 0.15 * 5000)`` rows are probationary: they are not scored at all.
* Every row gets a weight. Inside a window of width ``w`` rows whose last row is ``r``, row ``i`` sits at
  relative position ``x = -(r - i + 1) / w`` (−1 at the window's first row, → 0 at its last) and weighs
  ``A_tp * sigma(x) / sigma(-1)`` with ``sigma(x) = 2 / (1 + exp(5x)) - 1`` (−1 when ``x > 3``).
  Outside windows a row after a window ending at ``r`` with width ``w`` weighs ``A_fp * sigma(|r - i| / (w - 1))``
  (close to 0 just after the window, −A_fp far from it); a row before the first window weighs −A_fp.
* A detection is a row whose anomaly score is ``>= threshold``. A window scores the weight of its earliest
  detected row (the maximum) or ``-A_fn`` when none of its scorable rows is detected; every detected row
  outside windows adds its (negative) weight. True negatives carry no weight (``tnWeight`` is unused).
* The raw score of a set of files is the sum of their raw scores. NAB normalises only the whole corpus:
  ``100 * (raw - raw_null) / (perfect - raw_null)`` with ``raw_null`` the null detector's raw score (no
  detections: ``-A_fn`` per window that has scorable rows) and ``perfect = A_tp * number of windows``.
  We normalise a folder (or a single file) the same way with that folder's own null and perfect.

Run ``python -m experiments.anomalies.nab --help`` for the command line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class Profile:
    """NAB cost matrix: weights of a true positive, false positive, false negative and true negative.

    The standard profile of NAB's ``config/profiles.json`` is tp 1.0, fp 0.11, fn 1.0, tn 1.0; NAB
    never uses the tn weight in scoring.
    """

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0
    tn: float = 1.0


STANDARD = Profile()
REWARD_LOW_FP = Profile(fp=0.22)
REWARD_LOW_FN = Profile(fn=2.0)


@dataclass(frozen=True)
class FileScore:
    """NAB score of one file at one threshold: raw score and the row counts NAB reports."""

    name: str
    raw: float
    tp: int
    tn: int
    fp: int
    fn: int
    total: int  # rows of the file (NAB's published Total_Count column)
    scorable: int  # rows past the probationary period (tp + tn + fp + fn)
    windows: int  # windows of the file (all of them, as NAB's perfect score counts them)
    null_raw: float  # raw score of the null detector on this file

    @property
    def normalised(self) -> float:
        """This file's score on NAB's 0–100 scale against its own null and perfect detectors."""
        return normalise(self.raw, self.null_raw, self.windows * STANDARD.tp)


def scaled_sigmoid(x: np.ndarray | float) -> np.ndarray:
    """NAB's scaled sigmoid ``2 / (1 + exp(5x)) - 1``, set to −1 where ``x > 3``."""
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):
        val = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x > 3.0, -1.0, val)


def probationary_length(n: int, percent: float = PROBATION_PERCENT) -> float:
    """Number of leading rows NAB leaves unscored: ``min(floor(percent * n), percent * 5000)``."""
    return min(math.floor(percent * n), percent * 5000)


def parse_windows(raw: dict[str, list[list[str]]]) -> dict[str, list[tuple[np.datetime64, np.datetime64]]]:
    """Window limits per relative data path from a parsed ``combined_windows.json``."""
    return {path: [(np.datetime64(a.replace(" ", "T"), "us"), np.datetime64(b.replace(" ", "T"), "us")) for a, b in ws]
            for path, ws in raw.items()}


def load_windows(path: str | Path) -> dict[str, list[tuple[np.datetime64, np.datetime64]]]:
    """Read NAB's ``combined_windows.json`` into ``{relative path: [(start, end), ...]}``."""
    return parse_windows(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class Layout:
    """Per-row scoring structure of one file: window id (−1 outside), weight, scorable flag."""

    window: np.ndarray  # int, index of the window containing the row, −1 outside every window
    weight: np.ndarray  # float, the row's NAB weight if it were a detection
    scorable: np.ndarray  # bool, row is past the probationary period
    windows: int


def layout(timestamps: np.ndarray, windows: list[tuple[np.datetime64, np.datetime64]],
           profile: Profile = STANDARD, probation: float = PROBATION_PERCENT) -> Layout:
    """Window membership and NAB weight of every row of a file (see the module docstring).

    Raises ``ValueError`` when a window limit is not one of the file's timestamps or windows overlap,
    as NAB's labeler does.
    """
    ts = np.asarray(timestamps).astype("datetime64[us]")
    n = ts.size
    window = np.full(n, -1, dtype=np.int64)
    weight = np.full(n, -profile.fp, dtype=float)  # before any window
    max_tp = float(scaled_sigmoid(-1.0))
    idx = np.arange(n)
    bounds = []
    for a, b in windows:
        hits_a, hits_b = np.nonzero(ts == a)[0], np.nonzero(ts == b)[0]
        if hits_a.size == 0 or hits_b.size == 0:
            raise ValueError(f"window limit {a if hits_a.size == 0 else b} is not a timestamp of the file")
        bounds.append((int(hits_a[0]), int(hits_b[0])))
    bounds.sort()
    for k, (lo, hi) in enumerate(bounds):
        if hi < lo or (k and lo <= bounds[k - 1][1]):
            raise ValueError("windows overlap or end before they start")
        width = hi - lo + 1
        inside = slice(lo, hi + 1)
        window[inside] = k
        weight[inside] = scaled_sigmoid(-(hi - idx[inside] + 1) / width) * profile.tp / max_tp
        nxt = bounds[k + 1][0] if k + 1 < len(bounds) else n
        after = slice(hi + 1, nxt)
        with np.errstate(divide="ignore", invalid="ignore"):
            weight[after] = scaled_sigmoid(np.abs(hi - idx[after]) / float(width - 1)) * profile.fp
    scorable = idx >= probationary_length(n, probation)
    return Layout(window, weight, scorable, len(bounds))


def score_detections(name: str, timestamps: np.ndarray, detected: np.ndarray,
                     windows: list[tuple[np.datetime64, np.datetime64]], profile: Profile = STANDARD,
                     probation: float = PROBATION_PERCENT) -> FileScore:
    """NAB raw score and counts of one file given its boolean detection per row."""
    lay = layout(timestamps, windows, profile, probation)
    det = np.asarray(detected, dtype=bool) & lay.scorable
    inside = lay.window >= 0
    raw = float(lay.weight[det & ~inside].sum())
    null_raw = 0.0
    for k in range(lay.windows):
        rows = (lay.window == k) & lay.scorable
        if not rows.any():
            continue  # a window wholly inside the probationary period is not scored
        null_raw -= profile.fn
        hit = rows & det
        raw += float(lay.weight[hit].max()) if hit.any() else -profile.fn
    sc = lay.scorable
    return FileScore(name, raw, tp=int((det & inside).sum()), tn=int((sc & ~det & ~inside).sum()),
                     fp=int((det & ~inside).sum()), fn=int((sc & ~det & inside).sum()), total=int(sc.size),
                     scorable=int(sc.sum()),
                     windows=lay.windows, null_raw=null_raw)


def score_threshold(name: str, timestamps: np.ndarray, anomaly_score: np.ndarray, threshold: float,
                    windows: list[tuple[np.datetime64, np.datetime64]], profile: Profile = STANDARD,
                    probation: float = PROBATION_PERCENT) -> FileScore:
    """NAB score of one file from per-row anomaly scores: a row is a detection when its score is
    ``>= threshold`` (what NAB's threshold sweep yields for a given threshold)."""
    return score_detections(name, timestamps, np.asarray(anomaly_score, dtype=float) >= threshold, windows,
                            profile, probation)


def normalise(raw: float, null_raw: float, perfect: float) -> float:
    """NAB's 0–100 normalisation: ``100 * (raw - null) / (perfect - null)`` (NaN for a set without windows)."""
    if perfect == null_raw:
        return float("nan")
    return 100.0 * (raw - null_raw) / (perfect - null_raw)


def aggregate(scores: list[FileScore], profile: Profile = STANDARD) -> dict[str, float]:
    """Summed raw score of several files, their null and perfect raw scores and the normalised score."""
    raw = sum(s.raw for s in scores)
    null_raw = sum(s.null_raw for s in scores)
    perfect = profile.tp * sum(s.windows for s in scores)
    return {"raw": raw, "null": null_raw, "perfect": perfect, "files": len(scores),
            "windows": sum(s.windows for s in scores),
            "score": normalise(raw, null_raw, perfect)}


# ----------------------------------------------------------------------------------------------
# reading NAB files


def read_series(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (datetime64[us]) and values (float) of a NAB data CSV ``timestamp,value``."""
    frame = pl.read_csv(path, try_parse_dates=False)
    missing = {"timestamp", "value"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    ts = frame["timestamp"].str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=True)
    if ts.null_count():
        raise ValueError(f"{path}: unparseable timestamp")
    values = frame["value"].cast(pl.Float64).to_numpy()
    return ts.to_numpy().astype("datetime64[us]"), values


def data_files(data_dir: Path, windows: dict[str, list], folders: list[str] | None) -> list[str]:
    """Relative paths (``folder/file.csv``) of the labelled data files to score, sorted."""
    paths = sorted(p for p in windows if folders is None or p.split("/")[0] in folders)
    if folders is not None:
        unknown = set(folders) - {p.split("/")[0] for p in paths}
        if unknown:
            raise ValueError(f"no labelled files in folder(s) {sorted(unknown)}")
    for p in paths:
        if not (data_dir / p).is_file():
            raise ValueError(f"data file {data_dir / p} not found")
    return paths


def rescore_published(results_dir: Path, detector: str, threshold: float, windows: dict[str, list],
                      paths: list[str], profile: Profile = STANDARD) -> list[FileScore]:
    """Score NAB's published per-row results of ``detector`` (``results/<detector>/<folder>/<detector>_<file>``)
    at ``threshold`` with our scorer."""
    out = []
    for p in paths:
        folder, fname = p.split("/")
        frame = pl.read_csv(results_dir / detector / folder / f"{detector}_{fname}")
        ts = frame["timestamp"].str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us").to_numpy()
        out.append(score_threshold(p, ts, frame["anomaly_score"].cast(pl.Float64).to_numpy(), threshold, windows[p],
                                   profile))
    return out


def run_detector(data_dir: Path, windows: dict[str, list], paths: list[str],
                 profile: Profile = STANDARD) -> tuple[list[FileScore], float]:
    """Run the causal detector of ``experiments.anomalies.online`` on every file; scores and seconds spent."""
    from experiments.anomalies.online import detect_stream

    out = []
    spent = 0.0
    for p in paths:
        ts, values = read_series(data_dir / p)
        t0 = time.perf_counter()
        alarm, _ = detect_stream(ts, values)
        spent += time.perf_counter() - t0
        out.append(score_detections(p, ts, alarm, windows[p], profile))
    return out, spent


def report(scores: list[FileScore], profile: Profile = STANDARD, per_file: bool = True) -> str:
    """Text table of per-file and per-folder scores, and the total over all given files."""
    lines = []
    if per_file:
        lines.append(f"{'file':58s} {'raw':>9s} {'norm':>7s} {'TP':>5s} {'FP':>5s} {'win':>3s}")
        for s in scores:
            lines.append(f"{s.name:58s} {s.raw:9.4f} {s.normalised:7.2f} {s.tp:5d} {s.fp:5d} {s.windows:3d}")
        lines.append("")
    folders = sorted({s.name.split("/")[0] for s in scores})
    lines.append(f"{'folder':26s} {'files':>5s} {'windows':>7s} {'raw':>10s} {'null':>8s} {'score':>7s}")
    for f in folders:
        a = aggregate([s for s in scores if s.name.split("/")[0] == f], profile)
        lines.append(f"{f:26s} {a['files']:5d} {a['windows']:7d} {a['raw']:10.4f} {a['null']:8.1f} {a['score']:7.2f}")
    a = aggregate(scores, profile)
    lines.append(f"{'all given files':26s} {a['files']:5d} {a['windows']:7d} {a['raw']:10.4f} {a['null']:8.1f} "
                 f"{a['score']:7.2f}")
    return "\n".join(lines)


PROFILES = {"standard": STANDARD, "reward_low_FP_rate": REWARD_LOW_FP, "reward_low_FN_rate": REWARD_LOW_FN}


def main(argv: list[str] | None = None) -> int:
    """Command line: score our causal detector (or NAB's published results of a detector) on NAB."""
    ap = argparse.ArgumentParser(
        prog="python -m experiments.anomalies.nab",
        description="Run the causal detector (experiments.anomalies.online) on NAB v1.1 data files and print "
                    "NAB scores per file and per folder. With --published, re-score NAB's published results "
                    "of a detector instead.")
    ap.add_argument("--data", required=True, type=Path, help="NAB data directory (holds realKnownCause/ ...)")
    ap.add_argument("--labels", required=True, type=Path, help="NAB labels/combined_windows.json")
    ap.add_argument("--folders", default=None,
                    help="comma-separated data folders to score (default: every labelled file)")
    ap.add_argument("--profile", default="standard", choices=sorted(PROFILES), help="NAB scoring profile")
    ap.add_argument("--published", default=None, metavar="DETECTOR",
                    help="re-score NAB's published results of DETECTOR (needs --results and --thresholds)")
    ap.add_argument("--results", type=Path, default=None, help="NAB results directory (with --published)")
    ap.add_argument("--thresholds", type=Path, default=None, help="NAB config/thresholds.json (with --published)")
    ap.add_argument("--quiet", action="store_true", help="print only per-folder totals")
    args = ap.parse_args(argv)
    try:
        if not args.data.is_dir():
            raise ValueError(f"--data {args.data} is not a directory")
        if not args.labels.is_file():
            raise ValueError(f"--labels {args.labels} is not a file")
        try:
            windows = load_windows(args.labels)
        except (json.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"--labels {args.labels} is not a NAB windows file ({exc})") from None
        folders = [f.strip() for f in args.folders.split(",") if f.strip()] if args.folders else None
        paths = data_files(args.data, windows, folders)
        profile = PROFILES[args.profile]
        if args.published:
            if args.results is None or args.thresholds is None:
                raise ValueError("--published needs --results and --thresholds")
            thr = json.loads(args.thresholds.read_text())[args.published][args.profile]["threshold"]
            scores = rescore_published(args.results, args.published, thr, windows, paths, profile)
            print(f"published results of {args.published} at threshold {thr!r}")
        else:
            scores, spent = run_detector(args.data, windows, paths, profile)
            print(f"detector time {spent:.2f} s for {len(paths)} files")
        print(report(scores, profile, per_file=not args.quiet))
    except (ValueError, KeyError, OSError, pl.exceptions.PolarsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
