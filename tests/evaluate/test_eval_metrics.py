"""Known-answer tests of the quality and protection measures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vdeid.errors import ShapeError
from vdeid.evaluate.metrics import (
    l2_distance,
    linf_distance,
    misclassification_rate,
    mssim,
    protection_success_rate,
    psnr,
    true_ranks,
    unlinkability_rate,
    wilson_interval,
)


def test_l2_of_a_known_perturbation():
    x = np.full((10, 20, 3), 100, np.uint8)
    y = x.copy()
    # 4 channel values moved by 51 codes = 0.2 on [0, 1]: sqrt(4 * 0.04) = 0.4.
    y[0, 0, :2] += 51
    y[5, 7, 1] -= 51
    y[9, 19, 2] += 51
    assert l2_distance(x, y) == pytest.approx(0.4, rel=1e-6)
    assert linf_distance(x, y) == pytest.approx(0.2, rel=1e-6)
    assert l2_distance(x, x) == 0.0


def test_l2_float_and_uint8_agree():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert l2_distance(x, y) == pytest.approx(l2_distance(x / 255.0, y / 255.0), rel=1e-6)


def test_mssim_identical_is_one_and_noise_lowers_it(astronaut):
    assert mssim(astronaut, astronaut) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    noisy = np.clip(astronaut + rng.normal(0, 25, astronaut.shape), 0, 255).astype(np.uint8)
    light = np.clip(astronaut + rng.normal(0, 3, astronaut.shape), 0, 255).astype(np.uint8)
    assert mssim(astronaut, noisy) < mssim(astronaut, light) < 1.0


def test_psnr_known_value():
    x = np.zeros((8, 8, 3), np.float32)
    y = x + 0.1  # MSE 0.01 -> 20 dB at data range 1
    assert psnr(x, y) == pytest.approx(20.0, abs=1e-4)
    assert math.isinf(psnr(x, x))


def test_shape_mismatch_raises():
    with pytest.raises(ShapeError):
        l2_distance(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_true_ranks_on_a_constructed_ranking():
    scores = np.array(
        [
            [0.9, 0.1, 0.2, 0.3],  # true 0 first
            [0.9, 0.1, 0.2, 0.3],  # true 1 last
            [0.5, 0.5, 0.1, 0.0],  # tie counts for the recogniser: rank 1
            [np.nan] * 4,  # no face: last
        ]
    )
    ranks = true_ranks(scores, np.array([0, 1, 1, 2]))
    assert ranks.tolist() == [1, 4, 1, 5]
    assert protection_success_rate(ranks, 1) == pytest.approx(50.0)
    assert protection_success_rate(ranks, 3) == pytest.approx(50.0)
    assert protection_success_rate(ranks, 4) == pytest.approx(25.0)
    assert misclassification_rate(scores, np.array([0, 1, 1, 2])) == pytest.approx(50.0)


def test_unlinkability_counts_threshold_and_nan_as_unlinked():
    assert unlinkability_rate([0.1, 0.6, 0.7, np.nan], 0.6) == pytest.approx(75.0)


def test_wilson_interval_contains_rate_and_narrows():
    lo, hi = wilson_interval(30, 100)
    assert lo < 30 < hi
    lo2, hi2 = wilson_interval(300, 1000)
    assert hi2 - lo2 < hi - lo
    assert wilson_interval(0, 10)[0] == 0.0
