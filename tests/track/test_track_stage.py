"""track_faces on real pictures: shot cuts end tracks, camera motion moves them."""

from __future__ import annotations

import numpy as np
import pytest

from vdeid.config import TrackConfig
from vdeid.faces import Faces
from vdeid.synthetic import AerialScene, aerial_background, render_clip, sprite_from_image
from vdeid.track import CameraMotion, CutDetector, track_faces


@pytest.fixture(scope="module")
def sprite(astronaut):
    return sprite_from_image(astronaut, (175, 70, 265, 185), name="astronaut")


def _covered(box, truth):
    ix = max(0.0, min(box[2], truth[2]) - max(box[0], truth[0]))
    iy = max(0.0, min(box[3], truth[3]) - max(box[1], truth[1]))
    return ix * iy / ((truth[2] - truth[0]) * (truth[3] - truth[1]))


def test_cut_ends_tracks(astronaut):
    rng = np.random.default_rng(1)
    shot_a = aerial_background(180, 320, seed=3)
    shot_b = (astronaut[:180, :320] // 2 + rng.integers(0, 20, (180, 320, 3), dtype=np.uint8)).astype(np.uint8)
    frames = [shot_a] * 5 + [shot_b] * 5
    # The detector reports a face at the same place in both shots.
    dets = [Faces.from_arrays([[100, 60, 130, 90]])] * 10
    out = [f for _, f in track_faces(zip(frames, dets), TrackConfig())]
    ids = [int(f.track_ids[0]) for f in out]
    assert ids[:5] == [ids[0]] * 5 and ids[5:] == [ids[5]] * 5
    assert ids[0] != ids[5]
    # No bridged copy of the old track runs into the new shot.
    assert all(len(f) == 1 for f in out)


def test_camera_motion_keeps_backfill_and_bridges_on_the_face(sprite):
    """A face first detected late in a fast pan is back-filled where it really was."""
    scene = AerialScene(width=320, height=180, n_frames=16, n_people=1, face_sizes=(20, 20),
                        pan=(9.0, 3.0), zoom=1.1, shake=0.0, walk=0.0, occlusions=0, seed=4)
    clip = list(render_clip(scene, [sprite]))
    first = 9
    items = [(f, Faces.from_arrays(gt.boxes) if i >= first else Faces()) for i, (f, gt) in enumerate(clip)]
    # Then the detector loses it for 4 frames.
    for i in range(12, 16):
        items[i] = (items[i][0], Faces())
    for compensate, expected in ((True, True), (False, False)):
        config = TrackConfig(lookahead_frames=8, grow_per_frame=0.0, motion_compensation=compensate)
        out = [f for _, f in track_faces(items, config)]
        cover = [
            _covered(out[i].boxes[0], clip[i][1].boxes[0]) if len(out[i]) else 0.0
            for i in range(first - 8, 16)
        ]
        assert bool(min(cover) > 0.8) == expected, (compensate, np.round(cover, 2))


def test_camera_motion_measures_a_known_shift_and_zoom():
    big = aerial_background(400, 600, seed=5)
    motion = CameraMotion()
    a = big[100:300, 100:400]
    motion.update(a)
    shifted = big[97:297, 107:407]  # camera moved right 7 px, up 3 px: content moves left, down
    m = motion.update(shifted)
    np.testing.assert_allclose(m[:, :2], np.eye(2), atol=0.01)
    np.testing.assert_allclose(m[:, 2], [-7, 3], atol=0.3)


def test_cut_detector_ignores_pans_and_flags_cuts(astronaut):
    big = aerial_background(300, 900, seed=6)
    cuts = CutDetector()
    pan = [cuts.update(big[:, x : x + 400]) for x in range(0, 500, 20)]
    assert not any(pan)
    assert cuts.update(astronaut[:300, :400])


def test_interpolation_follows_the_camera(sprite):
    """detect_every=5 under a zoom and a pan that speeds up: skipped frames still land on the faces."""
    scene = AerialScene(width=320, height=180, n_frames=16, n_people=3, face_sizes=(18, 30),
                        pan=(10.0, -3.0), zoom=1.4, shake=0.0, walk=0.0, occlusions=0, seed=8)
    clip = list(render_clip(scene, [sprite]))
    items = [(f, Faces.from_arrays(gt.boxes) if i % 5 == 0 else None) for i, (f, gt) in enumerate(clip)]
    worst = {}
    for compensate in (True, False):
        config = TrackConfig(lookahead_frames=8, grow_per_frame=0.0, motion_compensation=compensate)
        out = [f for _, f in track_faces(items, config)]
        worst[compensate] = min(
            max(_covered(b, truth) for b in out[i].boxes)
            for i in range(1, 15) if i % 5
            for truth in clip[i][1].boxes
        )
    assert worst[True] > 0.85, worst
    assert worst[True] > worst[False] + 0.05, worst
