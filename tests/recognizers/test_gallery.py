"""The closed-set gallery head over real identities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vdeid.errors import InputError, ModelError
from vdeid.recognizers.gallery import (
    GalleryEnsemble,
    GalleryHead,
    embed_photos,
    gallery_photos,
    identity_centroids,
    photo_face,
)

NAMES = ["Colin_Powell", "Jackie_Chan", "Serena_Williams", "Tony_Blair"]
ENROL = 4  # photos per identity enrolled; the next 2 are held-out probes


class CountingDetector:
    """The project's detector, counting calls (to see the caches work)."""

    def __init__(self):
        from vdeid.detect import FaceDetector

        self.inner, self.calls = FaceDetector(), 0

    def detect(self, frames):
        self.calls += 1
        return self.inner.detect(frames)


@pytest.fixture(scope="module")
def detector():
    return CountingDetector()


@pytest.fixture(scope="module")
def mobileface(shared_dir):
    from vdeid.recognizers.mobileface import load_mobileface

    return load_mobileface(shared_dir / "models" / "mobileface_v2")


@pytest.fixture(scope="module")
def split(faces_dir):
    enrol, probes = [], []
    for name in NAMES:
        photos = sorted((faces_dir / name).glob("lfw_*.jpg"))
        enrol += [(name, p) for p in photos[:ENROL]]
        probes += [(name, p) for p in photos[ENROL : ENROL + 2]]
    return enrol, probes


@pytest.fixture(scope="module")
def head(split, mobileface, detector):
    return GalleryHead.from_photos(split[0], mobileface, detector=detector)


def test_gallery_photos_reads_identity_folders_and_loose_distractors(tmp_path):
    (tmp_path / "Ann").mkdir()
    for name in ("Ann/a1.jpg", "Ann/a2.png", "Ann/notes.txt", "Bob_Smith.jpg"):
        (tmp_path / name).write_bytes(b"")
    assert [(n, p.name) for n, p in gallery_photos(tmp_path)] == [
        ("Ann", "a1.jpg"),
        ("Ann", "a2.png"),
        ("Bob_Smith", "Bob_Smith.jpg"),
    ]
    with pytest.raises(InputError):
        gallery_photos(tmp_path / "Ann" / "notes.txt")


def test_held_out_photos_are_identified(head, split, detector):
    assert head.names == NAMES
    faces = [photo_face(p, detector) for _, p in split[1]]
    with torch.no_grad():
        logits = torch.cat([head(crop, lm) for crop, lm in faces])
    assert logits.shape == (len(split[1]), len(NAMES))
    predicted = [head.names[i] for i in logits.argmax(1)]
    assert predicted == [n for n, _ in split[1]]
    assert [head.index(n) for n in NAMES] == list(range(len(NAMES)))
    with pytest.raises(ModelError, match="not in the gallery"):
        head.index("Nobody")


def test_cross_entropy_gradient_reaches_crop_pixels(head, split, detector):
    crop, lm = photo_face(split[1][0][1], detector)
    crop.requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(head(crop, lm), torch.tensor([head.index(split[1][0][0])]))
    (grad,) = torch.autograd.grad(loss, crop)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # One signed step against the gradient lowers the true class's probability.
    with torch.no_grad():
        before = head(crop, lm).softmax(1)[0, head.index(split[1][0][0])]
        after = head((crop + 2 / 255 * grad.sign()).clamp(0, 1), lm).softmax(1)[0, head.index(split[1][0][0])]
    assert after < before


def test_embed_photos_caches_and_marks_faceless_photos(tmp_path, split, mobileface, detector):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(blank)
    paths = [split[0][0][1], blank]
    emb, valid = embed_photos(paths, mobileface, detector)
    assert valid.tolist() == [True, False]
    assert np.isfinite(emb[0]).all() and np.isnan(emb[1]).all()
    calls = detector.calls
    again, _ = embed_photos(paths, mobileface, detector)
    assert detector.calls == calls  # both answers came from the cache
    np.testing.assert_array_equal(again[0], emb[0])


def test_identity_centroids_are_unit_means():
    emb = np.array([[2.0, 0], [0, 3.0], [0, -1.0]], np.float32)
    cent, names = identity_centroids(emb, ["b", "b", "a"])
    assert names == ["a", "b"]
    np.testing.assert_allclose(cent, [[0, -1], [np.sqrt(0.5), np.sqrt(0.5)]], atol=1e-6)


def test_ensemble_averages_logits_and_checks_names(head):
    crops = torch.rand(1, 3, 112, 112)
    lm = torch.tensor([[[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]]])
    other = GalleryHead(head.recognizer, head.centroids.flip(0), head.names, scale=10.0)
    with torch.no_grad():
        got = GalleryEnsemble([head, other])(crops, lm)
        torch.testing.assert_close(got, (head(crops, lm) + other(crops, lm)) / 2)
    renamed = GalleryHead(head.recognizer, head.centroids, head.names[::-1])
    with pytest.raises(ModelError, match="same identities"):
        GalleryEnsemble([head, renamed])
