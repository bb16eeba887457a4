"""NAB v1.1 scoring (``experiments.anomalies.nab``) and the causal detector (``experiments.anomalies.online``).

(a) our scorer reproduces NAB's published standard-profile score of two published detectors on a real
NAB file shipped in ``tests/fixtures/nab`` (see its README.md for provenance and licence); (b) scorer
cases computed by hand; (c) the detector is causal; (d) the detector's score on the shipped file.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from experiments.anomalies import nab
from experiments.anomalies.online import OnlineParams, check_causal, detect_stream

FIX = Path(__file__).parent / "fixtures" / "nab"
NAME = "realKnownCause/rogue_agent_key_hold.csv"


def fixture_windows() -> dict:
    return nab.load_windows(FIX / "windows_rogue_agent_key_hold.json")


# ---------------------------------------------------------------------------------------------
# (a) published results


@pytest.mark.parametrize("detector", ["numenta", "bayesChangePt"])
def test_published_per_file_score_is_reproduced(detector):
    published = json.loads((FIX / "published_standard_scores.json").read_text())[detector]
    frame = pl.read_csv(FIX / f"{detector}_rogue_agent_key_hold.csv")
    ts = frame["timestamp"].str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us").to_numpy()
    data_ts, _ = nab.read_series(FIX / "rogue_agent_key_hold.csv")
    assert np.array_equal(ts, data_ts)
    s = nab.score_threshold(NAME, ts, frame["anomaly_score"].to_numpy(), published["threshold"],
                            fixture_windows()[NAME])
    assert s.raw == pytest.approx(published["score"], abs=1e-9)  # published to 12 significant digits
    assert (s.tp, s.tn, s.fp, s.fn, s.total) == (published["TP"], published["TN"], published["FP"],
                                                 published["FN"], published["Total_Count"])


def test_a_slightly_different_threshold_changes_the_score():
    """The reproduction is not insensitive to the threshold: numenta at 0.5 scores differently."""
    frame = pl.read_csv(FIX / "numenta_rogue_agent_key_hold.csv")
    ts = frame["timestamp"].str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us").to_numpy()
    s = nab.score_threshold(NAME, ts, frame["anomaly_score"].to_numpy(), 0.5, fixture_windows()[NAME])
    assert abs(s.raw - (-1.11370102385)) > 1e-3


# ---------------------------------------------------------------------------------------------
# (b) hand-computed cases: 100 rows, probation 15 rows, one window on rows 40..49 (width 10)

N = 100
T0 = np.datetime64("2020-01-01T00:00:00", "us")
TS = T0 + np.arange(N) * np.timedelta64(5, "m")
WIN = [(TS[40], TS[49])]
MAX_TP = math.tanh(2.5)  # scaled sigmoid at -1: 2 / (1 + e^-5) - 1 = tanh(2.5)


def raw_with(*rows: int) -> float:
    det = np.zeros(N, dtype=bool)
    det[list(rows)] = True
    return nab.score_detections("f", TS, det, WIN).raw


def test_probationary_length():
    assert nab.probationary_length(100) == 15
    assert nab.probationary_length(1882) == 282
    assert nab.probationary_length(22695) == 750.0  # capped at 15 % of 5000


def test_detection_at_the_window_start_scores_one():
    assert raw_with(40) == pytest.approx(1.0, abs=1e-12)


def test_detection_at_the_window_end_scores_the_sigmoid_of_minus_a_tenth():
    # relative position -(49 - 49 + 1) / 10 = -0.1 -> tanh(0.25), scaled by the window-start value
    assert raw_with(49) == pytest.approx(math.tanh(0.25) / MAX_TP, abs=1e-12)


def test_earliest_detection_in_the_window_counts_once():
    assert raw_with(42, 45, 49) == pytest.approx(math.tanh(2.5 * 0.8) / MAX_TP, abs=1e-12)


def test_detection_just_after_the_window_is_a_missed_window_and_a_cheap_false_positive():
    # the window is missed (-1); the FP one row after it sits at 1 / (10 - 1) widths: -0.11 tanh(2.5 / 9)
    assert raw_with(50) == pytest.approx(-1.0 - 0.11 * math.tanh(2.5 / 9), abs=1e-12)


def test_true_positive_plus_false_positive_right_after_the_window():
    assert raw_with(40, 50) == pytest.approx(1.0 - 0.11 * math.tanh(2.5 / 9), abs=1e-12)


def test_false_positives_far_from_a_window_cost_the_full_weight():
    assert raw_with(20) == pytest.approx(-1.0 - 0.11, abs=1e-12)  # before any window
    assert raw_with(40, 85) == pytest.approx(1.0 - 0.11, abs=1e-12)  # 36 / 9 = 4 > 3 widths after


def test_detections_in_the_probationary_period_are_ignored():
    s = nab.score_detections("f", TS, np.arange(N) < 15, WIN)
    assert s.raw == -1.0 and s.fp == 0 and s.tp == 0 and s.scorable == 85 and s.total == 100


def test_null_detector_scores_zero_and_perfect_detector_one_hundred():
    null = nab.score_detections("f", TS, np.zeros(N, dtype=bool), WIN)
    assert null.raw == -1.0 and null.null_raw == -1.0 and null.normalised == 0.0
    perfect = nab.score_detections("f", TS, np.arange(N) == 40, WIN)
    assert perfect.normalised == pytest.approx(100.0, abs=1e-12)
    total = nab.aggregate([null, perfect])
    assert total["null"] == -2.0 and total["perfect"] == 2.0 and total["score"] == pytest.approx(50.0)


def test_threshold_is_inclusive():
    scores = np.zeros(N)
    scores[40] = 0.7
    assert nab.score_threshold("f", TS, scores, 0.7, WIN).raw == pytest.approx(1.0)
    assert nab.score_threshold("f", TS, scores, 0.7000001, WIN).raw == -1.0


def test_window_limit_not_in_the_file_is_an_error():
    with pytest.raises(ValueError, match="not a timestamp"):
        nab.layout(TS, [(TS[40] + np.timedelta64(1, "s"), TS[49])])


def test_runner_help_and_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        nab.main(["--help"])
    assert exc.value.code == 0
    assert nab.main(["--data", str(tmp_path / "nope"), "--labels", str(tmp_path / "x.json")]) != 0
    assert "not a directory" in capsys.readouterr().err
    (tmp_path / "x.json").write_text("{not json")
    assert nab.main(["--data", str(tmp_path), "--labels", str(tmp_path / "x.json")]) != 0


def test_runner_on_the_fixture(tmp_path, capsys):
    (tmp_path / "realKnownCause").mkdir()
    (tmp_path / "realKnownCause" / "rogue_agent_key_hold.csv").write_bytes((FIX / "rogue_agent_key_hold.csv").read_bytes())
    rc = nab.main(["--data", str(tmp_path), "--labels", str(FIX / "windows_rogue_agent_key_hold.json")])
    assert rc == 0
    assert "realKnownCause" in capsys.readouterr().out
    assert nab.main(["--data", str(tmp_path), "--labels", str(FIX / "windows_rogue_agent_key_hold.json"),
                     "--folders", "realTraffic"]) != 0


# ---------------------------------------------------------------------------------------------
# (c) causality


def test_detector_is_causal_on_the_nab_file():
    ts, values = nab.read_series(FIX / "rogue_agent_key_hold.csv")
    assert check_causal(ts, values, cuts=tuple(range(1, ts.size, 97)) + (ts.size - 1,))


def test_detector_is_causal_on_a_seasonal_series_with_gaps_and_a_shift():
    rng = np.random.default_rng(0)
    n = 3000
    ts = np.datetime64("2021-03-01T00:00", "ms") + np.cumsum(rng.choice([5, 5, 5, 10], n)) * np.timedelta64(1, "m")
    y = 10 + 3 * np.sin(np.arange(n) / 288 * 2 * np.pi) + rng.normal(0, 0.3, n)
    y[2000:] += 4
    y[rng.random(n) < 0.01] = np.nan
    assert check_causal(ts, y, cuts=(1, 2, 200, 1001, 1999, 2000, 2001, 2999))
    alarm, _ = detect_stream(ts, y)
    assert alarm[2000:2010].any()  # the shift is raised within ten points of its start


def test_params_are_documented_with_their_defaults():
    doc = OnlineParams.__doc__ or ""
    for name, f in OnlineParams.__dataclass_fields__.items():
        assert name in doc and f"(default {f.default}" in doc.replace("default 1e-3", "default 0.001"), name


# ---------------------------------------------------------------------------------------------
# (d) our detector on the shipped file


def test_detector_score_on_the_fixture_file():
    """Measured at the v2 defaults: raw -1.3913 (normalised 15.2: one window found, 5 FPs; null -2,
    perfect 2; numenta's published -1.114, normalised 22.2; the v1 defaults scored -0.8207, 29.5 — v2 was
    tuned on the dev folders as a whole and lost on this file). The bound fails if the detector misses both
    windows (normalised <= 0) or adds two more full-weight FPs (0.11 each)."""
    ts, values = nab.read_series(FIX / "rogue_agent_key_hold.csv")
    alarm, _ = detect_stream(ts, values)
    s = nab.score_detections(NAME, ts, alarm, fixture_windows()[NAME])
    assert s.normalised > 10.0
    assert s.tp >= 1
