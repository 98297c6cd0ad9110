"""Eigenface reconstruction and hypersphere projection on known cases."""

from __future__ import annotations

import numpy as np
import pytest

from vdeid.evaluate.reconstruction import (
    EigenfaceModel,
    HypersphereFaces,
    PcaFaces,
    align_chip,
    chip_template,
    hypersphere_project,
    pca_reconstruct,
)
from vdeid.faces import Faces


@pytest.fixture(scope="module")
def chips():
    rng = np.random.default_rng(0)
    base = rng.random((1, 16, 16, 3))
    return np.clip(base + 0.2 * rng.standard_normal((12, 16, 16, 3)), 0, 1).astype(np.float32)


def test_all_components_reproduce_the_input(chips):
    model = EigenfaceModel.fit(chips)
    assert model.n_components == len(chips) - 1
    out = pca_reconstruct(chips, model, n_components=model.n_components)
    assert np.abs(out - chips).max() < 1e-4


def test_fewer_components_lose_detail(chips):
    model = EigenfaceModel.fit(chips)
    err = [np.abs(pca_reconstruct(chips, model, n_components=k) - chips).mean() for k in (1, 5, 11)]
    assert err[0] > err[1] > err[2]


def test_hypersphere_puts_every_face_at_the_radius(chips):
    model = EigenfaceModel.fit(chips)
    # Small radius so the clip to [0, 1] does not bend the result.
    out = hypersphere_project(chips, model, radius=0.5)
    z = model.project(out) / np.sqrt(model.variances)
    assert np.allclose(np.linalg.norm(z, axis=1), 0.5, rtol=2e-3)
    # Radius -> 0 gives the mean face.
    tiny = hypersphere_project(chips, model, radius=1e-6)
    assert np.abs(tiny - model.mean.reshape(16, 16, 3)).max() < 1e-4


def test_save_and_load_roundtrip(chips, tmp_path):
    model = EigenfaceModel.fit(chips, n_components=4)
    model.save(tmp_path / "m.npz")
    back = EigenfaceModel.load(tmp_path / "m.npz")
    assert np.array_equal(back.components, model.components) and back.size == model.size


def test_align_chip_maps_landmarks_onto_the_template(astronaut):
    lm = chip_template(64) * 2.0 + np.array([150.0, 60.0])
    chip, m = align_chip(astronaut, lm, size=64)
    assert chip.shape == (64, 64, 3) and chip.dtype == np.float32
    mapped = lm @ m[:, :2].T + m[:, 2]
    assert np.allclose(mapped, chip_template(64), atol=1e-6)


def test_methods_change_only_the_face(astronaut):
    rng = np.random.default_rng(0)
    model = EigenfaceModel.fit(rng.random((6, 64, 64, 3)).astype(np.float32))
    box = np.array([[170.0, 50.0, 260.0, 160.0]], np.float32)
    lm = np.array([[[195, 95], [235, 95], [215, 118], [200, 140], [230, 140]]], np.float32)
    faces = Faces.from_arrays(box, lm)
    for method in (PcaFaces(model, n_components=3), HypersphereFaces(model, radius=2.0, n_components=5)):
        out, outcomes = method.protect([astronaut], [faces])
        changed = np.any(out[0] != astronaut, axis=2)
        ys, xs = np.nonzero(changed)
        assert changed.sum() > 1000
        # Grown box (margin 0.15): nothing changes outside it.
        assert xs.min() >= 170 - 14 and xs.max() <= 260 + 14 and ys.min() >= 50 - 17 and ys.max() <= 160 + 17
        assert len(outcomes) == 1 and outcomes[0].method == method.name
        method.reset()
