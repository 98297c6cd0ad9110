"""dlib's face-recognition ResNet in PyTorch, checked against real dlib (dlib-bin)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vdeid.errors import ModelError, ShapeError
from vdeid.recognizers import dlib_landmarks
from vdeid.recognizers.align import extract_dlib_chips
from vdeid.recognizers.dlib_format import read_dlib_network, read_shape_predictor
from vdeid.recognizers.dlib_resnet import (
    DlibResNet,
    default_weights_path,
    dlib_gray,
    load_dlib_resnet,
    zero_extend_add,
)
from vdeid.recognizers.registry import create_recognizer

dlib = pytest.importorskip("dlib", reason="real dlib (dlib-bin) is the reference")

# A few photos of different people, sizes and poses from ../shared/data/faces.
PHOTOS = (
    "Angelina_Jolie/deepface_img5.jpg",  # 330 x 512
    "Jennifer_Aniston/deepface_img12.jpg",  # 560 x 415
    "Colin_Powell/lfw_Colin_Powell_0001.jpg",
    "Serena_Williams/lfw_Serena_Williams_0001.jpg",
    "Jackie_Chan/lfw_Jackie_Chan_0001.jpg",
)


@pytest.fixture(scope="module")
def model() -> DlibResNet:
    return load_dlib_resnet()


@pytest.fixture(scope="module")
def reference():
    """Real dlib's detector, 5-point predictor and recogniser."""
    import face_recognition_models as frm

    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
        dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
    )


@pytest.fixture(scope="module")
def mtcnn():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu")


@pytest.fixture(scope="module", params=["astronaut", "photos"])
def images(request, astronaut) -> list[np.ndarray]:
    """The astronaut (always), or the :data:`PHOTOS` (skipped without ../shared)."""
    if request.param == "astronaut":
        return [astronaut]
    faces = request.getfixturevalue("faces_dir")
    return [np.asarray(Image.open(faces / name).convert("RGB")) for name in PHOTOS]


def _dlib_face(reference, image: np.ndarray):
    """Real dlib's pipeline on its most confident face: (shape, 5 points, descriptor)."""
    detector, predictor, recognizer = reference
    rects, scores, _ = detector.run(image, 1, 0.0)
    assert len(rects), "dlib found no face"
    shape = predictor(image, rects[int(np.argmax(scores))])
    points = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
    return shape, points, np.array(recognizer.compute_face_descriptor(image, shape))


def _mtcnn_landmarks(mtcnn, image: np.ndarray, dlib_points: np.ndarray) -> np.ndarray:
    """MTCNN's 5 landmarks of the face dlib found (matched by the eyes)."""
    _, _, landmarks = mtcnn.detect(Image.fromarray(image), landmarks=True)
    landmarks = np.asarray(landmarks, np.float64)  # facenet-pytorch may return an object array
    eyes = np.stack([dlib_points[2:4].mean(0), dlib_points[0:2].mean(0)])
    err = np.linalg.norm(landmarks[:, :2] - eyes[None], axis=-1).mean(-1)
    return landmarks[int(np.argmin(err))].astype(np.float64)


def _to_tensor(image: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].to(dtype) / 255.0


# -- file format -------------------------------------------------------------------------


def test_parser_reads_dlibs_network():
    network = read_dlib_network(default_weights_path())
    kinds = [layer.kind for layer in network.layers]
    assert len(kinds) == 108 and len(network.prelude) == 130
    assert kinds.count("con") == 29 and kinds.count("add_prev") == 14 and kinds[-1] == "fc"
    assert network.input_size == (150, 150)
    np.testing.assert_allclose(network.input_mean, [122.782, 117.001, 104.298], atol=1e-4)
    assert network.loss_options["distance_threshold"] == pytest.approx(0.6)
    assert network.layers[-1].arrays["weight"].shape == (128, 256)


def test_parsers_reject_truncated_and_foreign_files(tmp_path):
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(default_weights_path().read_bytes()[:5000])
    with pytest.raises(ModelError, match="truncated.dat"):
        read_dlib_network(truncated)
    foreign = tmp_path / "foreign.dat"
    foreign.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError):
        read_dlib_network(foreign)
    with pytest.raises(ModelError):
        read_shape_predictor(foreign)
    with pytest.raises(ModelError, match="not found"):
        load_dlib_resnet(tmp_path / "missing.dat")
    # A valid dlib file of another kind is not mistaken for the ResNet.
    with pytest.raises(ModelError):
        load_dlib_resnet(dlib_landmarks.default_shape_predictor_path())


def test_registry_builds_a_frozen_eval_model():
    model = create_recognizer(f"dlib:{default_weights_path()}")
    assert isinstance(model, DlibResNet) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    cfg = model.cfg
    assert (cfg.name, cfg.input_size, cfg.embedding_dim, cfg.metric) == ("dlib", 150, 128, "euclidean")
    assert cfg.threshold == 0.6 and cfg.source == str(default_weights_path())
    assert "public domain" in cfg.license


def test_zero_extend_add_pads_at_the_end():
    branch = torch.ones(1, 4, 1, 1)
    shortcut = torch.full((1, 2, 2, 2), 10.0)
    out = zero_extend_add(branch, shortcut)
    assert out.shape == (1, 4, 2, 2)
    assert out[0, 0, 0, 0] == 11 and out[0, 0, 1, 1] == 10 and out[0, 3, 0, 0] == 1 and out[0, 3, 1, 1] == 0


def test_embed_chips_checks_the_chip_size(model):
    with pytest.raises(ShapeError, match="150"):
        model.embed_chips(torch.zeros(1, 3, 112, 112))


# -- agreement with real dlib ------------------------------------------------------------


def test_descriptors_match_dlib_on_dlibs_own_chips(model, reference, images):
    """Same chip in, same 128 numbers out (dlib computes in float32 too)."""
    _, predictor, recognizer = reference
    chips, expected = [], []
    for image in images:
        shape, _, descriptor = _dlib_face(reference, image)
        chips.append(_to_tensor(dlib.get_face_chip(image, shape, size=150, padding=0.25)))
        expected.append(descriptor)
    with torch.no_grad():
        ours = model.embed_chips(torch.cat(chips)).numpy()
    assert np.abs(ours - np.stack(expected)).max() <= 1e-5


def test_shape_predictor_port_matches_dlib(reference, images):
    detector, predictor, _ = reference
    ours = dlib_landmarks.load_shape_predictor()
    for image in images:
        gray = dlib_landmarks.rgb_to_dlib_gray(image)
        for rect in detector(image, 1):
            expected = np.array([[p.x, p.y] for p in predictor(image, rect).parts()])
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            np.testing.assert_array_equal(ours(gray, box), expected)


def test_shape_predictor_runs_many_boxes_at_once(reference, astronaut):
    detector, _, _ = reference
    ours = dlib_landmarks.load_shape_predictor()
    gray = dlib_landmarks.rgb_to_dlib_gray(astronaut)
    rect = detector(astronaut, 1)[0]
    box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], np.float64)
    boxes = np.stack([box, box * 0.97 + 4, box + [-10, 5, -10, 5]])
    np.testing.assert_array_equal(ours(gray, boxes), np.stack([ours(gray, b) for b in boxes]))


def test_alignment_views_from_larger_detector_boxes(model, reference, mtcnn, astronaut):
    _, points, _ = _dlib_face(reference, astronaut)
    landmarks = torch.from_numpy(_mtcnn_landmarks(mtcnn, astronaut, points))[None]
    crops = _to_tensor(astronaut)
    owner, boxes = model.alignment_views(crops, landmarks)
    start = model.start_boxes(landmarks)[0]
    side = float((start[2:] - start[:2]).mean())
    # From a box 1.3x the size the predictor lands more than 4 chip pixels away: one more view.
    assert owner.tolist() == [0]
    scale = (boxes[:, 2:] - boxes[:, :2]).mean(dim=1) / side
    assert scale.tolist() == pytest.approx([1.3])
    assert float(((boxes[0, :2] + boxes[0, 2:]) / 2 - (start[:2] + start[2:]) / 2).norm()) < 0.11 * side
    with torch.no_grad():
        nominal = model(crops, landmarks)
        view = model.embed_views(crops, boxes)
    assert float((view - nominal).norm()) > 1e-3


def test_faces_and_views_embed_with_one_predictor_pass(model, reference, mtcnn, astronaut, monkeypatch):
    """The attack's step: the same descriptors, to the bit, as embedding faces and views apart."""
    _, points, _ = _dlib_face(reference, astronaut)
    landmarks = torch.from_numpy(_mtcnn_landmarks(mtcnn, astronaut, points))[None]
    crops = torch.cat([_to_tensor(astronaut), _to_tensor(astronaut[:, ::-1].copy())])
    landmarks = torch.cat([landmarks, landmarks * torch.tensor([-1.0, 1.0]) + torch.tensor([511.0, 0.0])])
    owner, boxes = model.alignment_views(crops, landmarks)
    owner, boxes = torch.cat([owner, torch.tensor([1])]), torch.cat([boxes, model.start_boxes(landmarks)[:1]])
    with torch.no_grad():
        faces, views = model(crops, landmarks), model.embed_views(crops[owner], boxes)
        calls = []
        predictor = model.shape_predictor
        monkeypatch.setattr(model, "_shape_predictor", lambda *a, **k: calls.append(a) or predictor(*a, **k))
        both = model.embed_with_views(crops, landmarks, owner, boxes)
    assert len(calls) == 1 and len(owner) >= 2
    assert torch.equal(both[0], faces) and torch.equal(both[1], views)


def test_alignment_views_for_faces_the_frame_edge_cuts(model, reference, mtcnn, astronaut):
    crop = np.ascontiguousarray(astronaut[20:240, 110:340])
    _, points, _ = _dlib_face(reference, crop)
    landmarks = torch.from_numpy(_mtcnn_landmarks(mtcnn, crop, points))[None]
    crops = _to_tensor(crop)
    owner, boxes = model.alignment_views(crops, landmarks)
    # The whole face is in the frame, and the predictor lands on the same chip from every box view.
    assert len(owner) == 0 and boxes.shape == (0, 4)
    # The frame ends at the nose: the invader's detector boxes the visible part.
    start = model.start_boxes(landmarks)[0]
    nose = float(landmarks[0, 2, 0])
    owner, boxes = model.alignment_views(crops, landmarks, torch.tensor([[0.0, 0.0, nose, crop.shape[0]]]))
    assert len(owner) >= 1 and owner.tolist() == [0] * len(owner)
    assert bool(((boxes[:, 0] + boxes[:, 2]) / 2 < (start[0] + start[2]) / 2).all())  # moved inwards
    with torch.no_grad():
        nominal = model(crops, landmarks)
        again = model.embed_views(crops, model.start_boxes(landmarks))
        views = model.embed_views(crops.expand(len(owner), -1, -1, -1), boxes)
    assert torch.allclose(again, nominal, atol=1e-5)
    # Each view is a different chip, so a different descriptor.
    assert float((views - nominal).norm(dim=1).min()) > 1e-3


def test_alignment_views_from_a_detectors_boxes(model, reference, mtcnn, astronaut):
    crop = np.ascontiguousarray(astronaut[20:240, 110:340])
    _, points, _ = _dlib_face(reference, crop)
    landmarks = torch.from_numpy(_mtcnn_landmarks(mtcnn, crop, points))[None]
    crops = _to_tensor(crop)
    start = model.start_boxes(landmarks)
    side = float((start[0, 2:] - start[0, :2]).mean())
    # vdeid's own start box adds nothing; one a third of a side higher and 1.3x the size lands elsewhere.
    high = (start[0] + torch.tensor([-0.15, -0.48, 0.15, -0.18], dtype=torch.float64) * side)[None]
    owner, boxes = model.alignment_views(crops, landmarks, detected=[start.clone()])
    assert len(owner) == 0
    owner, boxes = model.alignment_views(crops, landmarks, detected=[torch.cat([start, high])])
    assert owner.tolist() == [0]
    torch.testing.assert_close(boxes, high)
    assert model.alignment_views(crops, landmarks, detected=[None])[0].numel() == 0


def test_bfloat16_autocast_stays_close_to_float32(model, reference, mtcnn, astronaut):
    """The engine's ``precision="bfloat16"`` path: bf16 crops and passes still align and embed."""
    crop = np.ascontiguousarray(astronaut[20:240, 110:340])
    _, points, _ = _dlib_face(reference, crop)
    landmarks = torch.from_numpy(_mtcnn_landmarks(mtcnn, crop, points))[None]
    crops = _to_tensor(crop)
    with torch.no_grad():
        full = model(crops, landmarks)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(crops.bfloat16(), landmarks)
    assert low.dtype == torch.bfloat16
    # bf16 moves the descriptor by about 0.1 (0.106 here): the size of the
    # margin, hence the float32 verification of every face.
    assert float((low.float() - full).norm()) < 0.2


def test_mtcnn_pipeline_agrees_with_dlibs_pipeline(model, reference, mtcnn, images):
    """MTCNN → our alignment → our network ≈ dlib HOG → dlib 5 points → dlib network.

    Real dlib's own descriptor moves by about 0.05 when only its detector box
    changes (HOG vs CNN box, docs/models.md); that is the floor here. Over all
    368 faces of ../shared/data/faces the default path averages 0.051.
    """
    refined, fixed = [], []
    try:
        for image in images:
            _, points, expected = _dlib_face(reference, image)
            crops = _to_tensor(image)
            landmarks = torch.from_numpy(_mtcnn_landmarks(mtcnn, image, points))[None]
            for refine, out in ((True, refined), (False, fixed)):
                model.refine = refine
                with torch.no_grad():
                    ours = model(crops, landmarks)[0].double().numpy()
                out.append(np.linalg.norm(ours - expected))
    finally:
        model.refine = True
    assert max(refined) < 0.1 and np.mean(refined) < 0.08, refined
    assert max(fixed) < 0.25, fixed
    # The shape-predictor refinement is what brings the chips close to dlib's.
    assert np.mean(refined) < np.mean(fixed)


def test_gradient_matches_finite_differences(reference, mtcnn, astronaut):
    """Directional derivatives of the descriptor w.r.t. crop pixels, float64, central differences."""
    crop = np.ascontiguousarray(astronaut[20:240, 110:340])  # the face with a margin, as the engine crops
    _, points, _ = _dlib_face(reference, crop)
    landmarks = torch.from_numpy(_mtcnn_landmarks(mtcnn, crop, points))[None]
    net = load_dlib_resnet().double()
    crops = _to_tensor(crop, torch.float64)
    transforms = net.chip_transforms(crops, landmarks)

    def descriptor_dot(x, weights):
        return (net.embed_chips(extract_dlib_chips(x, transforms, 150)) * weights).sum()

    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(1, 128, dtype=torch.float64, generator=generator)
    x = crops.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(descriptor_dot(x, weights), x)
    assert grad.abs().sum() > 0
    # The crop's corners lie outside the chip: no gradient there.
    assert grad[..., :3, :3].abs().max() == 0 and grad[..., -3:, -3:].abs().max() == 0
    # The network is piecewise linear (ReLU, max-pool, bilinear sampling): a
    # small step keeps central differences off the kinks.
    eps = 1e-7
    for _ in range(2):
        direction = torch.randn(crops.shape, dtype=torch.float64, generator=generator)
        with torch.no_grad():
            numeric = (descriptor_dot(crops + eps * direction, weights) - descriptor_dot(crops - eps * direction, weights)) / (
                2 * eps
            )
        analytic = (grad * direction).sum()
        assert analytic.item() == pytest.approx(numeric.item(), rel=1e-4, abs=1e-7)


def test_shape_predictor_cache_survives_an_unwritable_folder(tmp_path, monkeypatch):
    calls = []

    def parse(path):
        calls.append(path)
        return {"a": np.arange(3)}

    source = tmp_path / "model.dat"
    source.write_bytes(b"weights")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = dlib_landmarks.cached_arrays(source, "test", parse)
    second = dlib_landmarks.cached_arrays(source, "test", parse)
    assert len(calls) == 1 and np.array_equal(first["a"], second["a"])
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    third = dlib_landmarks.cached_arrays(source, "test", parse)
    assert len(calls) == 2 and np.array_equal(third["a"], first["a"])
    source.write_bytes(b"other weights")  # new content, new key
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dlib_landmarks.cached_arrays(source, "test", parse)
    assert len(calls) == 3


def test_shape_predictor_runs_many_images_at_once(reference, astronaut):
    """Boxes on a stack of images give what each image gives alone."""
    detector, _, _ = reference
    ours = dlib_landmarks.load_shape_predictor()
    rect = detector(astronaut, 1)[0]
    box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], np.float64)
    grays = np.stack([dlib_landmarks.rgb_to_dlib_gray(im) for im in (astronaut, astronaut[::-1, ::-1], astronaut // 2)])
    boxes = np.stack([np.stack([box, box + [-10, 5, -10, 5]])] * 3)
    expected = np.stack([ours(g, b) for g, b in zip(grays, boxes)])
    np.testing.assert_array_equal(ours(grays, boxes), expected)
    with pytest.raises(ValueError, match="3 images need boxes"):
        ours(grays, boxes[0])


def test_dlib_gray_of_tensors_matches_rgb_to_dlib_gray():
    """Also off the 8-bit grid and at the .5 rounding ties, where an attack's pixels lie."""
    gen = torch.Generator().manual_seed(0)
    crops = torch.rand(3, 3, 17, 23, generator=gen)
    codes = torch.randint(0, 255, (3, 4, 23), generator=gen).float()
    crops[0, :, :4] = codes / 255.0
    crops[1, :, :4] = (codes + 0.5) / 255.0
    expected = np.stack([dlib_landmarks.rgb_to_dlib_gray(c.permute(1, 2, 0).numpy()) for c in crops])
    ours = dlib_gray(crops)
    assert ours.dtype == torch.uint8
    np.testing.assert_array_equal(ours.numpy(), expected)
