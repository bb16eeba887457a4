"""Holm and Benjamini–Hochberg adjustments, checked against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from experiments import adjust

P = np.array([0.001, 0.04, 0.03, 0.2, 0.012, 0.049, 0.7])


def test_holm_matches_statsmodels():
    assert adjust(P, "holm") == pytest.approx(multipletests(P, method="holm")[1], rel=1e-12)


def test_benjamini_hochberg_matches_statsmodels():
    assert adjust(P, "bh") == pytest.approx(multipletests(P, method="fdr_bh")[1], rel=1e-12)


def test_nan_p_values_are_left_out_of_the_family():
    p = np.array([0.01, np.nan, 0.04])
    out = adjust(p, "holm")
    assert np.isnan(out[1])
    assert out[[0, 2]] == pytest.approx(multipletests([0.01, 0.04], method="holm")[1])


def test_shape_is_preserved_for_a_metric_by_variant_grid():
    grid = P[:6].reshape(2, 3)
    assert adjust(grid, "bh").shape == (2, 3)
    assert adjust(grid, "bh").ravel() == pytest.approx(multipletests(P[:6], method="fdr_bh")[1])


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        adjust(P, "bonferonni")
