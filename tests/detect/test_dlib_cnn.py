"""dlib's CNN face detector in PyTorch, checked against real dlib (dlib-bin)."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from vdeid.detect.dlib_cnn import DlibCnnFaceDetector, load_dlib_cnn_detector, pyramid_tiles
from vdeid.errors import ModelError
from vdeid.recognizers.dlib_format import read_dlib_network
from vdeid.recognizers.dlib_resnet import default_weights_path, load_dlib_resnet

dlib = pytest.importorskip("dlib", reason="real dlib (dlib-bin) is the reference")

# Photos of ../shared/data/faces: LFW crops (150 x 150) whose face dlib's CNN finds without
# upsampling, one where it finds none, and a larger photo.
PHOTOS = (
    "Arnold_Schwarzenegger/lfw_Arnold_Schwarzenegger_0001.jpg",
    "Colin_Powell/lfw_Colin_Powell_0053.jpg",
    "Donald_Rumsfeld/lfw_Donald_Rumsfeld_0001.jpg",
    "Hillary_Clinton/lfw_Hillary_Clinton_0005.jpg",
    "Atal_Bihari_Vajpayee/lfw_Atal_Bihari_Vajpayee_0021.jpg",
    "Angelina_Jolie/deepface_img5.jpg",
)


@pytest.fixture(scope="module")
def detector() -> DlibCnnFaceDetector:
    return load_dlib_cnn_detector()


@pytest.fixture(scope="module")
def real():
    """Real dlib's CNN detector, 5-point predictor and recogniser."""
    import face_recognition_models as frm

    return (
        dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location()),
        dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
        dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
    )


def real_detections(real, image):
    found = real[0](image, 0)
    rects = np.array([[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in found], np.int64)
    return rects.reshape(-1, 4), np.array([d.confidence for d in found], np.float32)


def test_the_file_parses_as_an_mmod_network():
    import face_recognition_models as frm

    network = read_dlib_network(frm.cnn_face_detector_model_location())
    assert network.loss == "loss_mmod_" and network.input_type == "input_rgb_image_pyramid"
    assert network.loss_options["detector_windows"] == [(80, 80, "")]
    assert network.loss_options["nms_iou"] == pytest.approx(0.3383, abs=1e-4)
    assert network.input_options == {"pyramid_padding": 10, "pyramid_outer_padding": 11}
    assert [layer.kind for layer in network.layers].count("con") == 7


def test_another_dlib_network_is_refused_with_the_file_named():
    path = default_weights_path()
    with pytest.raises(ModelError, match="not a dlib CNN face detector") as info:
        DlibCnnFaceDetector(read_dlib_network(path), str(path))
    assert str(path) in str(info.value)


def test_a_missing_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_dlib_cnn_detector(tmp_path / "nothing.dat")


@pytest.mark.parametrize("rows, cols", [(512, 512), (150, 150), (1080, 1920), (1868, 1382), (40, 300)])
def test_pyramid_tiles_shrink_by_five_sixths_and_never_overlap(rows, cols):
    tiles, (canvas_rows, canvas_cols) = pyramid_tiles(rows, cols)
    sizes = [(b - t + 1, r - lft + 1) for lft, t, r, b in tiles]
    assert sizes[0] == (rows, cols)
    for (h0, w0), (h1, w1) in zip(sizes, sizes[1:]):
        assert (h1, w1) == (int(h0 * 5 / 6), int(w0 * 5 / 6))
    assert sizes[-1][0] >= 5
    for i, (lft, t, r, b) in enumerate(tiles):
        assert lft >= 11 and t >= 11 and r < canvas_cols - 11 + 1 and b < canvas_rows
        for lft2, t2, r2, b2 in tiles[i + 1 :]:
            assert max(lft, lft2) > min(r, r2) or max(t, t2) > min(b, b2), "tiles overlap"


def test_detections_match_real_dlib_on_the_astronaut(detector, real, astronaut):
    rects, scores = detector.detect(astronaut)
    expected_rects, expected_scores = real_detections(real, astronaut)
    assert len(expected_rects) == 1
    np.testing.assert_array_equal(rects, expected_rects)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-4)


def test_detections_and_descriptors_match_real_dlib_on_shared_photos(detector, real, faces_dir):
    model = load_dlib_resnet()
    _, predictor, recognizer = real
    distances = []
    for name in PHOTOS:
        image = np.asarray(Image.open(faces_dir / name).convert("RGB"))
        rects, scores = detector.detect(image)
        expected_rects, expected_scores = real_detections(real, image)
        np.testing.assert_array_equal(rects, expected_rects, err_msg=name)
        np.testing.assert_allclose(scores, expected_scores, atol=1e-4, err_msg=name)
        x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
        for rect in rects:
            shape = predictor(image, dlib.rectangle(*map(int, rect)))
            expected = np.array(recognizer.compute_face_descriptor(image, shape))
            with torch.no_grad():
                ours = model.embed_views(x, torch.from_numpy(rect[None]).double())[0].numpy()
            distances.append(np.linalg.norm(ours - expected))
    assert len(distances) >= 4, "the photos should hold faces for the comparison to mean something"
    # Issue #3's bound for the whole pipeline; docs/models.md has the figures on every photo.
    assert max(distances) <= 0.05


def test_an_image_without_faces_gives_no_detection(detector):
    rects, scores = detector.detect(np.full((120, 160, 3), 128, np.uint8))
    assert rects.shape == (0, 4) and scores.shape == (0,)


@pytest.mark.parametrize("side", [1, 6, 7, 30])
def test_tiny_images_give_no_detection(detector, side):
    # (Real dlib corrupts its heap on images this small, so it is not asked.)
    rects, scores = detector.detect(np.full((side, side, 3), 90, np.uint8))
    assert rects.shape == (0, 4) and scores.shape == (0,)


def test_detect_refuses_float_images(detector, astronaut):
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(astronaut.astype(np.float32) / 255)


def test_the_whole_cnn_pipeline_agrees_with_real_dlibs(detector, real, astronaut):
    """Detect → 5-point predictor → chip → descriptor, both ways, from the ported detector's box."""
    rects, _ = detector.detect(astronaut)
    detections, predictor, recognizer = real
    shape = predictor(astronaut, detections(astronaut, 0)[0].rect)
    expected = np.array(recognizer.compute_face_descriptor(astronaut, shape))
    x = torch.from_numpy(astronaut.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        ours = load_dlib_resnet().embed_views(x, torch.from_numpy(rects[:1]).double())[0].numpy()
    # Measured 0.003: dlib truncates its chip to uint8, the port keeps it in float.
    assert np.linalg.norm(ours - expected) < 0.02


def test_detect_region_boxes_a_face_on_the_whole_frames_grid(detector, astronaut):
    # At 0.8 the face fits the 80 px window, the pyramid's first level, whose windows lie on the grid.
    astronaut = cv2.resize(astronaut, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    (full,) = detector.detect(astronaut)[0]
    side = full[2] - full[0]
    assert side + 1 == max(detector.window)
    for grow in (0.4, 0.5, 0.7):
        # An odd origin: the part is cut to start on the frame's grid.
        region = (full[0] - int(grow * side) - 3, full[1] - int(grow * side) - 5, full[2] + int(grow * side), full[3] + int(grow * side))
        found = detector.detect_region(astronaut, region)
        assert len(found) == 1
        offset = found[0] - full
        # Same windows as on the whole frame, at most one grid step away.
        assert np.all(offset % detector.grid == 0) and np.abs(offset).max() <= detector.grid


def test_detect_region_upsampled_finds_faces_under_the_window(detector, astronaut):
    (full,) = detector.detect(astronaut)[0]
    small = np.ascontiguousarray(astronaut[::2, ::2])  # the face at half size, under the 80 px window
    region = (int(full[0] // 2) - 40, int(full[1] // 2) - 40, int(full[2] // 2) + 40, int(full[3] // 2) + 40)
    assert len(detector.detect_region(small, region)) == 0
    (found,) = detector.detect_region(small, region, upsample=1)
    np.testing.assert_allclose(found, full / 2, atol=0.1 * (full[2] - full[0]))
    # A read-only frame (a decoded photo) gives the same boxes, without torch's warning. The
    # region spans whole rows, so its pixels are one contiguous, read-only block.
    rows = (0, region[1], small.shape[1], region[3])
    expected = detector.detect_region(small, rows, upsample=1)
    small.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(detector.detect_region(small, rows, upsample=1), expected)


def test_detect_region_outside_the_frame_finds_nothing(detector, astronaut):
    assert detector.detect_region(astronaut, (600, 600, 700, 700)).shape == (0, 4)
