"""Synthetic aerial clips: the video and its ground truth agree."""

from __future__ import annotations

import av
import numpy as np
import pytest

from vdeid.synthetic import AerialScene, GroundTruth, read_truth, render_clip, sprite_from_image, write_clip


@pytest.fixture(scope="module")
def sprite(astronaut):
    return sprite_from_image(astronaut, (175, 70, 265, 185), name="astronaut")


def _face_error(frame, box, sprite):
    """Mean absolute difference between the frame under ``box`` and the sprite's face resized to it."""
    import cv2

    x0, y0, x1, y1 = np.round(box).astype(int)
    fb = np.round(sprite.face_box).astype(int)
    face = sprite.image[fb[1] : fb[3], fb[0] : fb[2]]
    ref = cv2.resize(face, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32)
    return float(np.abs(frame[y0:y1, x0:x1].astype(np.float32) - ref).mean())


def test_clip_frame_count_and_truth_match(tmp_path, sprite):
    scene = AerialScene(width=320, height=180, n_frames=12, n_people=4, face_sizes=(16, 40),
                        pan=(3.0, 1.0), occlusions=1, occlusion_frames=(7, 7), seed=2)
    truth = write_clip(tmp_path / "clip.mp4", scene, [sprite])
    assert (tmp_path / "clip.json").is_file()
    again = read_truth(tmp_path / "clip.json")
    assert len(again.frames) == len(truth.frames) == 12
    for a, b in zip(again.frames, truth.frames):
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_allclose(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.visible, b.visible)
    with av.open(str(tmp_path / "clip.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 180)
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 12
    # The face sits inside its ground-truth box (compared with a wrong box: shifted by one face).
    first = truth.frames[0]
    big = int(np.argmax(first.boxes[:, 2] - first.boxes[:, 0]))
    box = first.boxes[big]
    size = box[2] - box[0]
    assert size >= 30
    here = _face_error(decoded[0], box, sprite)
    beside = _face_error(decoded[0], box + np.array([size, 0, size, 0]), sprite)
    assert beside > 1.5 * here
    # One face is hidden for a few consecutive frames (the middle of a 7-frame occlusion).
    hidden = [(t, int(i)) for t, ft in enumerate(truth.frames) for i, v in zip(ft.ids, ft.visible) if not v]
    frames = [t for t, _ in hidden]
    assert len({i for _, i in hidden}) == 1
    assert 1 <= len(frames) <= 5 and frames == list(range(frames[0], frames[0] + len(frames)))


def test_sizes_motion_and_determinism(sprite):
    scene = AerialScene(width=256, height=144, n_frames=6, n_people=5, face_sizes=(16, 48),
                        pan=(5.0, 0.0), zoom=1.2, occlusions=0, seed=7)
    a = list(render_clip(scene, [sprite]))
    b = list(render_clip(scene, [sprite]))
    np.testing.assert_array_equal(a[3][0], b[3][0])  # same seed, same pixels
    sizes = np.concatenate([t.boxes[:, 2] - t.boxes[:, 0] for _, t in a])
    assert sizes.min() >= 16 - 1e-3 and sizes.max() <= 48 + 1e-3
    # The camera pans right: the faces drift left; the zoom makes them grow.
    first, last = a[0][1], a[-1][1]
    common = np.intersect1d(first.ids, last.ids)
    assert len(common) >= 3
    f0 = first.boxes[np.searchsorted(first.ids, common)]
    f1 = last.boxes[np.searchsorted(last.ids, common)]
    assert np.all(f1[:, 0] + f1[:, 2] < f0[:, 0] + f0[:, 2] + 10)
    assert np.all(f1[:, 2] - f1[:, 0] > f0[:, 2] - f0[:, 0])


def test_truth_json_round_trip():
    gt = GroundTruth(10, 8, 25.0, [], ["a"])
    assert GroundTruth.from_json(gt.to_json()) == gt
