"""The engine against the real dlib ResNet port on a real face (slow: a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vdeid.attacks import CrossEntropyObjective, ILLC
from vdeid.config import Config
from vdeid.engine import AdversarialMethod
from vdeid_testing import DEVICE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dlib_model():
    from vdeid.recognizers import create_recognizer

    return create_recognizer("dlib", DEVICE)


@pytest.fixture(scope="module")
def astronaut_face(astronaut):
    from vdeid.detect.mtcnn import FaceDetector

    faces = FaceDetector().detect([astronaut])[0]
    assert len(faces) == 1
    return faces


@pytest.mark.parametrize("mask_views, grown", [(False, 0.15), (True, 0.5)])
def test_pfgvm_unlinks_a_real_face_from_dlib(astronaut, astronaut_face, dlib_model, mask_views, grown):
    config = Config(device=DEVICE)
    config.attack.max_iter = 30
    config.attack.mask_views = mask_views
    method = AdversarialMethod(config, recognizers=[dlib_model])
    out, (outcome,) = method.protect_still(astronaut, astronaut_face)
    assert outcome.method == "pfgvm" and outcome.reached
    assert outcome.distance > 0.6 + config.attack.margin
    changed = np.any(out != astronaut, axis=2)
    assert changed.any()
    # Without mask_views only the face's own grown box changes; with them also
    # the views' boxes, which dlib's larger start boxes put around the face
    # (on this face up to a fifth of a side beyond it), never further away.
    x0, y0, x1, y1 = astronaut_face.boxes[0]
    w, h = x1 - x0, y1 - y0
    ys, xs = np.nonzero(changed)
    assert xs.min() >= x0 - grown * w - 1 and xs.max() <= x1 + grown * w + 1
    assert ys.min() >= y0 - grown * h - 1 and ys.max() <= y1 + grown * h + 1
    # Small: under two grey levels on average where it changed, invisible by SSIM.
    from skimage.metrics import structural_similarity

    assert np.abs(out.astype(int) - astronaut)[changed].mean() < 2.5
    assert structural_similarity(astronaut, out, channel_axis=2) > 0.99


def test_illc_on_a_gallery_head_over_dlib(astronaut, astronaut_face, dlib_model):
    """Closed set: ILLC moves the face to the class it was least like."""
    from vdeid.recognizers.gallery import GalleryHead

    box = astronaut_face.boxes[0].astype(int)
    x0, y0 = max(box[0] - 40, 0), max(box[1] - 40, 0)
    crop = torch.from_numpy(astronaut[y0 : box[3] + 40, x0 : box[2] + 40] / 255.0).permute(2, 0, 1)[None].float()
    crop = crop.to(DEVICE)
    lm = torch.as_tensor(astronaut_face.landmarks[:1] - [x0, y0], dtype=torch.float32, device=DEVICE)
    with torch.no_grad():
        own = torch.nn.functional.normalize(dlib_model(crop, lm), dim=1)
    g = torch.Generator().manual_seed(0)
    # Look-alikes (cosine ~0.65 to the face): a real gallery's nearest
    # identities, reachable within a modest L-inf budget.
    noise = torch.randn(4, own.shape[1], generator=g).to(DEVICE)
    others = torch.nn.functional.normalize(own + 0.1 * noise, dim=1)
    head = GalleryHead(dlib_model, torch.cat([own, others]), ["astronaut", "a", "b", "c", "d"])
    obj = CrossEntropyObjective(head, mode="least_likely", landmarks=lm)
    result = ILLC(obj, eps=16, steps=40, levels=255)(crop)
    with torch.no_grad():
        assert int(head(result.images, lm).argmax()) == int(obj.labels[0]) != 0
    assert bool(result.done[0])
