"""evaluate-video on the bundled sample clip and a blurred copy made by the product."""

from __future__ import annotations

import json

import pytest

from vdeid.evaluate.video import evaluate_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    import torch
    from vdeid import process_video
    from vdeid.config import Config, EncodeConfig, TrackConfig
    from vdeid_testing import DEVICE, SAMPLE

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("video") / "blur.mp4"
    # Detection on every 8th frame (tracked in between) keeps this fixture cheap.
    config = Config(method="blur", device=DEVICE, track=TrackConfig(detect_every=8), encode=EncodeConfig(preset="ultrafast"))
    process_video(SAMPLE, out, config)
    yield SAMPLE, out
    torch.set_num_threads(before)


def test_identical_video_is_perfect(clips):
    sample, _ = clips
    r = evaluate_video(sample, sample, every=25)
    s = r["stream"]
    assert s["frames_equal"] and s["fps_equal"] and s["size_equal"] and s["timestamps_equal"]
    assert s["audio"]["identical"] and s["audio"]["packets"][0] > 0
    assert r["faces"]["face_frames"] > 0
    dlib = r["targets"]["dlib"]
    assert dlib["still_matches"] == 100.0
    # The astronaut's face is no blank: no face-frame leaves the second share.
    assert dlib["original_matches_black"] == 0 and dlib["still_matches_rest"] == 100.0
    assert r["faces"]["ssim_mean"] == pytest.approx(1.0)
    assert r["faces"]["flicker_mean_abs"] == 0.0 and r["faces"]["perturbation_mean_abs"] == 0.0


def test_blurred_video_keeps_the_stream_and_hides_the_face(clips):
    sample, blurred = clips
    r = evaluate_video(sample, blurred, every=25)
    s = r["stream"]
    assert s["frames_equal"] and s["fps_equal"] and s["audio"]["identical"]
    f = r["faces"]
    assert f["ssim_mean"] < 0.95
    # The change inside faces dwarfs the codec's change elsewhere.
    assert f["perturbation_mean_abs"] > 3 * f["background_change_mean_abs"]
    assert r["targets"]["dlib"]["mean_distance"] > 0.3


def test_cli_evaluate_video_writes_json(clips, tmp_path, capsys):
    from vdeid_testing import run_cli

    sample, blurred = clips
    code, out, err = run_cli(["evaluate-video", sample, blurred, "--every", "40", "-o", tmp_path / "r.json", "-q"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["stream"]["audio"]["identical"] and json.loads(out)["faces"] == report["faces"]


def test_the_dlib_invader_re_identifies_the_original_but_not_the_blur(clips):
    sample, blurred = clips
    same = evaluate_video(sample, sample, every=25, invader=True)["invader"]
    assert same["face_frames"] >= 2 and same["still_matches"] == 100.0 and same["min_distance"] < 1e-5
    # The astronaut is no blank: every face-frame counts in the rest too.
    assert same["original_matches_black"] == 0 and same["still_matches_rest"] == 100.0
    r = evaluate_video(sample, blurred, every=25, invader=True)["invader"]
    assert r["face_frames"] == same["face_frames"]
    assert r["min_distance"] > 0.3
