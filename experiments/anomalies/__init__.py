"""Anomaly detection for hourly metric series: seasonal, incident-robust baselines, denominator-aware
scores, CUSUM incidents, localisation to the smallest explaining slice, stored as incidents (the
roof's ``nudgelab.alerts`` sends the alerts).

Public API: ``detect(frame, ...)`` for any single series, ``Params`` (all defaults), and
``experiments.anomalies.job.run_anomalies`` for the warehouse job. Imports only ``warehouse`` of ours.
"""

from experiments.anomalies.baseline import Params
from experiments.anomalies.detect import detect, score_matrix

__all__ = ["Params", "detect", "score_matrix"]
