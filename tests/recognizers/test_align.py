"""Differentiable alignment: transforms, warping against OpenCV and dlib, gradients."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from vdeid.errors import ShapeError
from vdeid.recognizers import align


def _similarity(scale: float, angle: float, tx: float, ty: float) -> torch.Tensor:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return torch.tensor([[c, -s, tx], [s, c, ty]], dtype=torch.float64)


def _apply(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def test_similarity_transform_recovers_an_exact_similarity():
    rng = np.random.default_rng(0)
    src = torch.from_numpy(rng.uniform(0, 100, (5, 2)))
    truth = _similarity(1.7, 0.4, -12.0, 33.0)
    fitted = align.similarity_transform(src, _apply(truth, src))
    assert fitted.shape == (1, 2, 3)
    torch.testing.assert_close(fitted[0], truth, atol=1e-10, rtol=0)


def _skimage_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    from skimage.transform import SimilarityTransform

    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        return SimilarityTransform.from_estimate(src, dst).params
    tform = SimilarityTransform()
    tform.estimate(src, dst)
    return tform.params


def test_similarity_transform_matches_skimage_on_noisy_points():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (4, 5, 2))
    dst = src @ np.array([[0.8, 0.3], [-0.3, 0.8]]) + rng.normal(0, 3, src.shape)
    fitted = align.similarity_transform(torch.from_numpy(src), torch.from_numpy(dst))
    for i in range(4):
        np.testing.assert_allclose(fitted[i].numpy(), _skimage_similarity(src[i], dst[i])[:2], atol=1e-9)


def test_similarity_transform_broadcasts_a_shared_template_and_survives_coincident_points():
    template = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]])
    batch = torch.stack([template * 2, template * 3 + 5])
    fitted = align.similarity_transform(template, batch)
    torch.testing.assert_close(fitted[:, 0, 0], torch.tensor([2.0, 3.0]))
    degenerate = align.similarity_transform(torch.ones(3, 2), batch[:1])
    assert torch.isfinite(degenerate).all()
    with pytest.raises(ShapeError):
        align.similarity_transform(torch.zeros(3, 3), batch)


def test_invert_affine_composes_to_identity():
    matrix = _similarity(0.6, -1.1, 4.0, 9.0)[None]
    inverse = align.invert_affine(matrix)
    points = torch.tensor([[3.0, 4.0], [10.0, -2.0]], dtype=torch.float64)
    torch.testing.assert_close(_apply(inverse[0], _apply(matrix[0], points)), points)


@pytest.mark.parametrize(
    "image_to_chip",
    [
        [[1.1 * math.cos(0.3), -1.1 * math.sin(0.3), 20.3], [1.1 * math.sin(0.3), 1.1 * math.cos(0.3), -5.7]],
        [[0.45, 0.02, -3.2], [-0.02, 0.45, 7.9]],  # downscale
        [[2.3, 0.0, -40.0], [0.0, 2.3, -25.0]],  # upscale, runs past the border
    ],
)
def test_warp_affine_matches_opencv(image_to_chip):
    rng = np.random.default_rng(2)
    image = rng.random((61, 73, 3)).astype(np.float32)
    matrix = np.array(image_to_chip)
    expected = cv2.warpAffine(image, matrix, (48, 48), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    chip_to_image = torch.from_numpy(cv2.invertAffineTransform(matrix))[None]
    images = torch.from_numpy(image).permute(2, 0, 1)[None]
    ours = align.warp_affine(images, chip_to_image, 48)[0].permute(1, 2, 0).numpy()
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=0)


def test_warp_affine_dlib_border_blacks_out_partial_neighbourhoods():
    images = torch.ones(1, 1, 10, 10)
    # Chip pixel x samples image column x - 0.5: column -0.5 has one neighbour outside.
    shift = torch.tensor([[[1.0, 0.0, -0.5], [0.0, 1.0, 0.0]]])
    zeros = align.warp_affine(images, shift, (10, 10))
    strict = align.warp_affine(images, shift, (10, 10), padding_mode="dlib")
    assert zeros[0, 0, 0, 0] == pytest.approx(0.5)
    assert strict[0, 0, 0, 0] == 0
    assert strict[0, 0, 0, 1] == 1


def test_warp_affine_is_differentiable_in_the_image():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 9, 8, dtype=torch.float64, requires_grad=True)
    matrices = torch.stack([_similarity(0.9, 0.2, 1.0, 0.5), _similarity(1.2, -0.4, 2.0, 1.0)])

    def warp(x):
        return align.warp_affine(x, matrices, 6)

    assert torch.autograd.gradcheck(warp, (images,), eps=1e-6, atol=1e-8)


def test_insightface_alignment_matches_the_opencv_recipe(astronaut):
    # insightface's norm_crop: skimage estimate (landmarks → template), cv2.warpAffine.
    landmarks = np.array([[203.0, 103.0], [246.0, 104.0], [225.0, 128.0], [207.0, 149.0], [241.0, 150.0]])
    template = align.INSIGHTFACE_112.numpy()
    image_to_chip = _skimage_similarity(landmarks, template)[:2]
    image = astronaut.astype(np.float32) / 255.0
    expected = cv2.warpAffine(image, image_to_chip, (112, 112), borderValue=0.0)
    images = torch.from_numpy(image).permute(2, 0, 1)[None]
    ours = align.align_insightface_112(images, torch.from_numpy(landmarks)[None])
    assert ours.shape == (1, 3, 112, 112)
    np.testing.assert_allclose(ours[0].permute(1, 2, 0).numpy(), expected, atol=1e-4)


def test_pyramid_down_is_dlibs_binomial_decimation():
    image = torch.arange(2 * 13 * 11, dtype=torch.float64).view(1, 2, 13, 11)
    out = align.pyramid_down(image)
    assert out.shape == (1, 2, 5, 4)
    # A linear ramp is reproduced at the tap centre 2r + 2, 2c + 2.
    assert out[0, 0, 1, 1] == pytest.approx(image[0, 0, 4, 4].item())
    assert align.pyramid_down(torch.ones(1, 3, 20, 20)).allclose(torch.ones(1, 3, 8, 8))


def _dlib_shape(dlib, points: np.ndarray, rect):
    parts = dlib.points()
    for x, y in points:
        parts.append(dlib.point(int(round(x)), int(round(y))))
    return dlib.full_object_detection(rect, parts)


@pytest.mark.parametrize(
    ("zoom", "roll", "offset"),
    [
        (1.0, 0.0, (0, 0)),  # the astronaut as is
        (0.8, 0.35, (0, 0)),  # rolled head
        (5.0, 0.0, (0, 0)),  # a big face: two pyramid levels
        (2.5, -0.2, (0, 0)),  # one pyramid level, rolled
        (1.0, 0.0, (-190, -85)),  # chip runs past the top-left border
    ],
)
def test_extract_dlib_chips_reproduces_dlib_get_face_chip(astronaut, zoom, roll, offset):
    """Same landmarks, same chip as ``dlib.get_face_chip``, to dlib's uint8 truncation."""
    dlib = pytest.importorskip("dlib")
    # The astronaut's landmarks from dlib's 5-point predictor on its HOG box.
    base = np.array([[255.0, 104.0], [238.0, 105.0], [195.0, 101.0], [212.0, 103.0], [224.0, 135.0]])
    centre = np.array([256.0, 256.0])
    rot = np.array([[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]])
    warp = np.hstack([zoom * rot, (centre * zoom - zoom * rot @ centre + np.array(offset))[:, None]])
    size = (int(512 * zoom), int(512 * zoom))
    image = cv2.warpAffine(astronaut, warp, size, flags=cv2.INTER_LINEAR)
    points = base @ warp[:, :2].T + warp[:, 2]
    points = np.round(points)
    shape = _dlib_shape(dlib, points, dlib.rectangle(0, 0, 10, 10))
    expected = dlib.get_face_chip(image, shape, size=150, padding=0.25)

    template = align.template_to_chip(align.DLIB_5POINT_TEMPLATE, 150, 0.25)
    transforms = align.similarity_transform(template, torch.from_numpy(points))
    images = torch.from_numpy(image).permute(2, 0, 1)[None].double()
    ours = align.extract_dlib_chips(images, transforms, 150)[0].permute(1, 2, 0).numpy()
    # dlib truncates the chip to uint8, and floors each pyramid level too.
    levels = 2 if zoom > 4 else 1 if zoom > 2 else 0
    diff = ours - expected
    assert diff.min() > -1e-6
    assert diff.max() < 1.0 + levels
    if levels == 0:
        # Bilinear sums in another order can land a hair below an integer.
        assert (np.floor(ours + 1e-6) != expected).mean() < 1e-3


def test_extract_dlib_chips_gives_each_face_its_chip_in_a_mixed_batch(astronaut):
    """Faces sampled directly share one warp; a pyramid face and a face off the image keep their own path."""
    template = align.template_to_chip(align.DLIB_5POINT_TEMPLATE, 150, 0.25)
    points = torch.tensor([[255.0, 104.0], [238.0, 105.0], [195.0, 101.0], [212.0, 103.0], [224.0, 135.0]])
    centre = torch.tensor([256.0, 256.0])
    faces = torch.stack(
        [points, (points - centre) * 3 + centre, points + torch.tensor([20.0, -10.0]), points - 1000.0]
    )
    transforms = align.similarity_transform(template, faces.double())
    image = torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255
    images = torch.stack([image, image, image.flip(-1), image])
    together = align.extract_dlib_chips(images, transforms, 150)
    for b in range(len(images)):
        alone = align.extract_dlib_chips(images[b : b + 1], transforms[b : b + 1], 150)[0]
        assert torch.equal(together[b], alone)
    assert together[0].abs().sum() > 0 and together[3].abs().sum() == 0
