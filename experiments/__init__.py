"""Experiment statistics on sufficient statistics, and the analysis of per-unit tables.

Public API: ``SampleStats``, ``compare`` → ``ComparisonResult``, ``srm_check``, ``adjust``,
``non_inferiority``, ``power`` / ``mde`` / ``sample_size``, ``Prior``; ``experiments.analyze`` reads
an owner's own table. Imports only ``warehouse`` of ours (nothing of ``dispatch``, ``ingest``, ``nudgelab``).
"""

from experiments.bayesian import Prior
from experiments.compare import ComparisonResult, compare
from experiments.guardrails import NonInferiority, non_inferiority
from experiments.multiple import adjust
from experiments.power import mde, power, sample_size
from experiments.srm import SrmResult, srm_check
from experiments.statistics import MetricType, SampleStats

__all__ = [
    "ComparisonResult", "MetricType", "NonInferiority", "Prior", "SampleStats", "SrmResult", "adjust", "compare",
    "mde", "non_inferiority", "power", "sample_size", "srm_check",
]
