"""Naive methods (blur, pixelate, noise, impulse, mask, svd) and the method registry."""

from dataclasses import replace

import numpy as np
import pytest

from vdeid.config import Config, NaiveConfig
from vdeid.errors import VdeidError
from vdeid.faces import Faces, expand_boxes
from vdeid.methods import naive
from vdeid.methods.mask import ellipse_mask
from vdeid.methods.registry import create_fallback, create_method, describe_method, list_methods, register_method

NAIVE = ["blur", "pixelate", "noise", "impulse", "mask", "svd"]


@pytest.fixture(scope="module")
def astronaut_box(astronaut):
    """The astronaut's face box, found by the real detector (MTCNN)."""
    from facenet_pytorch import MTCNN

    boxes, probs = MTCNN(keep_all=True, device="cpu").detect(astronaut)
    assert boxes is not None and len(boxes) == 1 and probs[0] > 0.9
    return boxes.astype(np.float32)


def _support(shape, boxes, margin=0.15):
    """Mask of pixels a method may touch, and of its fully protected core."""
    m = ellipse_mask(shape, expand_boxes(boxes, margin), feather=0.15)
    return m > 0, m == 1.0


def _outside_grown_boxes(shape, boxes, margin=0.15):
    keep = np.ones(shape, bool)
    for x0, y0, x1, y1 in expand_boxes(boxes, margin):
        rows = slice(max(int(np.floor(y0)), 0), max(int(np.ceil(y1)), 0))
        cols = slice(max(int(np.floor(x0)), 0), max(int(np.ceil(x1)), 0))
        keep[rows, cols] = False
    return keep


def _protect(name, image, boxes, **naive_options):
    config = Config(method=name, naive=NaiveConfig(**naive_options))
    out, outcomes = create_method(name, config).protect([image], [Faces.from_arrays(boxes)])
    return out[0], outcomes


def test_the_fallback_covers_its_own_wider_margin(astronaut, astronaut_box):
    config = Config()
    faces = [Faces.from_arrays(astronaut_box)]
    method = create_method(config.attack.fallback, config).protect([astronaut], faces)[0][0]
    fallback = create_fallback(config).protect([astronaut], faces)[0][0]
    assert config.attack.fallback_margin > config.detect.box_margin
    changed = lambda out: np.any(out != astronaut, axis=2)  # noqa: E731
    # The method keeps to the box grown by box_margin; the fallback reaches past it, up to its own.
    assert not changed(method)[_outside_grown_boxes(astronaut.shape[:2], astronaut_box)].any()
    assert changed(fallback)[_outside_grown_boxes(astronaut.shape[:2], astronaut_box)].sum() > 1000
    assert not changed(fallback)[_outside_grown_boxes(astronaut.shape[:2], astronaut_box, config.attack.fallback_margin)].any()


@pytest.mark.parametrize("name", NAIVE)
def test_changes_the_face_and_nothing_outside(name, astronaut, astronaut_box):
    before = astronaut.copy()
    out, outcomes = _protect(name, astronaut, astronaut_box)
    np.testing.assert_array_equal(astronaut, before)  # input untouched
    assert out.dtype == np.uint8 and out.shape == astronaut.shape
    _, core = _support(astronaut.shape[:2], astronaut_box)
    changed = np.abs(out.astype(int) - astronaut.astype(int)).max(axis=2) > 0
    # Salt and pepper replaces only a fraction of the pixels (30 % by default).
    expected = 0.25 if name == "impulse" else 0.9
    assert changed[core].mean() > expected, f"{name} left too much of the face unchanged"
    keep = _outside_grown_boxes(astronaut.shape[:2], astronaut_box)
    np.testing.assert_array_equal(out[keep], astronaut[keep])
    assert [(o.frame, o.method, o.protected) for o in outcomes] == [(0, name, True)]


def test_blur_removes_high_frequencies(astronaut, astronaut_box):
    import cv2

    out = naive.blur_faces(astronaut, astronaut_box)
    _, core = _support(astronaut.shape[:2], astronaut_box)

    def energy(img):
        lap = cv2.Laplacian(img.mean(axis=2).astype(np.float32), cv2.CV_32F)
        return float((lap[core] ** 2).mean())

    assert energy(out) < 0.05 * energy(astronaut)


@pytest.mark.parametrize("sigma", [3.0, 10.0, 40.0])
def test_fast_gaussian_blur_matches_the_direct_filter(sigma, astronaut):
    import cv2

    from vdeid.imageops import to_float

    image = to_float(astronaut)
    direct = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    fast = naive.gaussian_blur(image, sigma)
    inner = slice(140, 372)  # away from the image border, where padding differs
    assert np.abs(fast - direct)[inner, inner].max() < 2.0 / 255


def test_default_blur_sigma_scales_with_the_face():
    assert naive.default_blur_sigma(5) == 2.0
    assert naive.default_blur_sigma(400) == pytest.approx(2 * naive.default_blur_sigma(200))
    assert naive.default_pixel_block(80) == 10 and naive.default_pixel_block(4) == 2


def test_blur_strength_grows_with_sigma(astronaut, astronaut_box):
    _, core = _support(astronaut.shape[:2], astronaut_box)
    stds = [naive.blur_faces(astronaut, astronaut_box, sigma=s)[core].std() for s in (2, 6, 18)]
    assert stds[0] > stds[1] > stds[2]


def test_pixelate_makes_constant_blocks():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = naive.pixelate_faces(image, np.array([[0, 0, 64, 64]]), block=8, feather=0.0, margin=0.0)
    block = out[24:32, 24:32].reshape(-1, 3)
    assert np.all(block == block[0])
    np.testing.assert_allclose(block[0], image[24:32, 24:32].reshape(-1, 3).mean(axis=0), atol=1)


def test_svd_full_rank_reproduces_and_rank_one_differs(astronaut, astronaut_box):
    full = naive.svd_faces(astronaut, astronaut_box, rank=10_000)
    assert np.abs(full.astype(int) - astronaut.astype(int)).max() <= 1
    one = naive.svd_faces(astronaut, astronaut_box, rank=1)
    _, core = _support(astronaut.shape[:2], astronaut_box)
    assert np.abs(one.astype(int) - astronaut.astype(int))[core].mean() > 10


def test_svd_error_falls_with_rank(astronaut, astronaut_box):
    _, core = _support(astronaut.shape[:2], astronaut_box)
    errors = [
        np.abs(naive.svd_faces(astronaut, astronaut_box, rank=k).astype(int) - astronaut.astype(int))[core].mean()
        for k in (1, 3, 10)
    ]
    assert errors[0] > errors[1] > errors[2]


def test_noise_statistics():
    image = np.full((100, 100, 3), 128, np.uint8)
    box = np.array([[0, 0, 100, 100]])
    out = naive.noise_faces(image, box, sigma=0.1, feather=0.0, margin=0.0, rng=0)
    _, core = _support(image.shape[:2], box, margin=0.0)
    diff = (out.astype(float) - 128)[core]
    assert abs(diff.std() - 0.1 * 255) < 0.1 * 0.1 * 255
    assert abs(diff.mean()) < 1.0


def test_impulse_statistics():
    image = np.full((100, 100, 3), 128, np.uint8)
    box = np.array([[0, 0, 100, 100]])
    out = naive.impulse_faces(image, box, amount=0.3, feather=0.0, margin=0.0, rng=0)
    _, core = _support(image.shape[:2], box, margin=0.0)
    white = np.all(out == 255, axis=2)[core].mean()
    black = np.all(out == 0, axis=2)[core].mean()
    assert abs(white - 0.15) < 0.03 and abs(black - 0.15) < 0.03


def test_mask_modes(astronaut, astronaut_box):
    _, core = _support(astronaut.shape[:2], astronaut_box)
    solid = naive.mask_faces(astronaut, astronaut_box, color=(10, 200, 30))
    assert np.all(solid[core] == (10, 200, 30))
    dark = naive.mask_faces(astronaut, astronaut_box, mode="darken", darken=0.25)
    np.testing.assert_allclose(dark[core], 0.25 * astronaut[core].astype(float), atol=1)


@pytest.mark.parametrize("name", ["noise", "impulse"])
def test_random_methods_are_reproducible(name, astronaut, astronaut_box):
    a, _ = _protect(name, astronaut, astronaut_box, seed=7)
    b, _ = _protect(name, astronaut, astronaut_box, seed=7)
    c, _ = _protect(name, astronaut, astronaut_box, seed=8)
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)
    # Successive frames get fresh noise; reset() replays the sequence.
    method = create_method(name, Config(naive=NaiveConfig(seed=7)))
    faces = Faces.from_arrays(astronaut_box)
    (f1, f2), _ = method.protect([astronaut, astronaut], [faces, faces])
    assert np.any(f1 != f2)
    np.testing.assert_array_equal(f1, a)
    method.reset()
    np.testing.assert_array_equal(method.protect([astronaut], [faces])[0][0], a)


@pytest.mark.parametrize("name", NAIVE)
def test_uint16_frames(name, astronaut, astronaut_box):
    image16 = astronaut.astype(np.uint16) * 257
    out16, _ = _protect(name, image16, astronaut_box)
    assert out16.dtype == np.uint16
    keep = _outside_grown_boxes(astronaut.shape[:2], astronaut_box)
    np.testing.assert_array_equal(out16[keep], image16[keep])
    if name not in ("noise", "impulse"):  # deterministic: same result as 8 bits
        out8, _ = _protect(name, astronaut, astronaut_box)
        assert np.abs(out16 / 257.0 - out8).max() <= 1.01


@pytest.mark.parametrize("name", NAIVE)
@pytest.mark.parametrize(
    "box",
    [[-40, -30, 60, 80], [450, 400, 560, 540], [300, -200, 400, -50], [250, 250, 254, 254]],
    ids=["top-left", "bottom-right", "outside", "4px"],
)
def test_boxes_at_the_border_and_tiny(name, box):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    boxes = np.array([box], np.float32)
    out, outcomes = _protect(name, image, boxes)
    assert len(outcomes) == 1 and outcomes[0].protected
    keep = _outside_grown_boxes(image.shape[:2], boxes)
    np.testing.assert_array_equal(out[keep], image[keep])
    support, _ = _support(image.shape[:2], boxes)
    if support.any():
        assert np.any(out[support] != image[support])
    else:  # wholly outside the frame
        np.testing.assert_array_equal(out, image)


def test_bridged_faces_and_nan_landmarks_are_protected_alike(astronaut, astronaut_box):
    detected = Faces.from_arrays(astronaut_box)
    bridged = replace(detected, detected=np.zeros(1, bool), scores=np.zeros(1, np.float32), track_ids=np.array([4]))
    method = create_method("blur", Config())
    (a,), _ = method.protect([astronaut], [detected])
    (b,), outcomes = method.protect([astronaut], [bridged])
    np.testing.assert_array_equal(a, b)
    assert outcomes[0].track_id == 4 and outcomes[0].protected


def test_several_frames_and_faces(astronaut):
    boxes = np.array([[50, 50, 150, 170], [300, 300, 420, 440]], np.float32)
    faces = [Faces.from_arrays(boxes), Faces.from_arrays(np.zeros((0, 4))), Faces.from_arrays(boxes[:1])]
    frames = [astronaut, astronaut, astronaut]
    out, outcomes = create_method("pixelate", Config()).protect(frames, faces)
    assert len(out) == 3 and [o.frame for o in outcomes] == [0, 0, 2]
    np.testing.assert_array_equal(out[1], astronaut)
    for x0, y0, x1, y1 in boxes.astype(int):
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        assert np.any(out[0][cy - 5 : cy + 5, cx - 5 : cx + 5] != astronaut[cy - 5 : cy + 5, cx - 5 : cx + 5])


def test_frame_and_faces_count_mismatch(astronaut):
    with pytest.raises(VdeidError, match="frames"):
        create_method("blur", Config()).protect([astronaut], [])


@pytest.mark.parametrize(
    "fn, kwargs",
    [
        (naive.blur_faces, {"sigma": 0}),
        (naive.pixelate_faces, {"block": 0}),
        (naive.noise_faces, {"sigma": -1}),
        (naive.impulse_faces, {"amount": 1.5}),
        (naive.mask_faces, {"mode": "sparkle"}),
        (naive.mask_faces, {"color": (0, 0, 300)}),
        (naive.svd_faces, {"rank": 0}),
    ],
)
def test_invalid_parameters(fn, kwargs, astronaut):
    with pytest.raises(VdeidError):
        fn(astronaut, np.array([[10, 10, 50, 50]]), **kwargs)


@pytest.mark.parametrize(
    "name, fn, kwargs",
    [
        ("blur", naive.blur_faces, {"sigma": None}),
        ("pixelate", naive.pixelate_faces, {"block": None}),
        ("svd", naive.svd_faces, {"rank": 3}),
        ("mask", naive.mask_faces, {"mode": "solid", "color": (0, 0, 0)}),
    ],
)
def test_class_equals_function(name, fn, kwargs, astronaut, astronaut_box):
    config = Config()
    config.detect.box_margin = 0.25
    config.naive.feather = 0.05
    (via_class,), _ = create_method(name, config).protect([astronaut], [Faces.from_arrays(astronaut_box)])
    via_function = fn(astronaut, astronaut_box, feather=0.05, margin=0.25, **kwargs)
    np.testing.assert_array_equal(via_class, via_function)


def test_registry_lists_and_describes():
    assert set(NAIVE) <= set(list_methods())
    assert list_methods("p*") == [n for n in list_methods() if n.startswith("p")]
    assert "pixelate" in list_methods("p*")
    assert "singular" in describe_method("svd")
    method = create_method("BLUR")
    assert method.name == "blur" and "BlurFaces" in repr(method)


def test_registry_unknown_name_lists_valid_ones():
    with pytest.raises(VdeidError) as err:
        create_method("smudge", Config())
    assert "smudge" in str(err.value) and "blur" in str(err.value) and "svd" in str(err.value)


def test_registry_refuses_a_second_owner_for_a_name():
    with pytest.raises(ValueError, match="already registered"):

        @register_method("blur")
        class Other:
            pass
