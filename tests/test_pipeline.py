"""process_video end to end on the bundled sample (CPU, naive method for speed)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import vdeid
from vdeid.config import Config, EncodeConfig, TrackConfig
from vdeid.detect import FaceDetector
from vdeid.errors import InputError, OutputError
from vdeid.faces import Faces, expand_boxes
from vdeid.track import read_tracks

from vdeid_testing import DEVICE, SAMPLE, audio_packets, read_frames

FAST = EncodeConfig(preset="ultrafast")
BLUR = Config(method="blur", device=DEVICE, encode=FAST)


@pytest.fixture(scope="module")
def blurred(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipe") / "out.mp4"
    report_path = out.with_suffix(".json")
    # The side outputs ride on the same run: tracks.json and preview.mp4 beside out.mp4.
    report = vdeid.process_video(
        SAMPLE, out, BLUR, report_path=report_path, tracks_out=out.with_name("tracks.json"),
        preview=out.with_name("preview.mp4"),
    )
    return out, report, json.loads(report_path.read_text())


def test_stream_is_kept(blurred):
    out, report, _ = blurred
    src, dst = read_frames(SAMPLE), read_frames(out)
    assert len(dst) == len(src) == report.frames
    assert dst[0].shape == src[0].shape
    assert audio_packets(out) == audio_packets(SAMPLE)


def test_every_face_is_blurred(blurred):
    out, report, _ = blurred
    src, dst = read_frames(SAMPLE), read_frames(out)
    detector = FaceDetector()
    found = detector.detect(src[::15])
    assert all(len(f) >= 1 for f in found), "the sample must show a face in every sampled frame"
    for faces, a, b in zip(found, src[::15], dst[::15]):
        x0, y0, x1, y1 = faces.boxes[0].astype(int)
        inner = (slice(y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4), slice(x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4))
        # Blur removes detail: the face's gradient energy drops sharply.
        energy = lambda img: np.abs(np.diff(img[inner].astype(float), axis=1)).mean()  # noqa: E731
        assert energy(b) < 0.5 * energy(a)
        # Far from the face only encoder noise differs.
        far = (slice(0, 40), slice(0, 80))
        assert np.abs(a[far].astype(int) - b[far].astype(int)).mean() < 4
    # Re-detection on protected frames finds no (or far fewer) faces.
    assert sum(len(f) for f in detector.detect(dst[::15])) < sum(len(f) for f in found)


def test_report(blurred):
    _, report, data = blurred
    assert data["frames"] == report.frames == len(data["faces_per_frame"])
    assert data["faces"] == sum(data["faces_per_frame"]) > 0
    assert data["faces_by_method"].get("blur") == data["faces"]
    assert data["fallback"] == 0 and data["fallback_reasons"] == {}
    assert {"decode", "detect", "protect", "encode", "total"} <= set(data["timings_s"])
    assert data["versions"]["torch"] and data["config"]["method"] == "blur"


def test_tracks_file_holds_the_protected_faces(blurred):
    out, report, _ = blurred
    tracks = read_tracks(out.with_name("tracks.json"))
    assert len(tracks) == report.frames and tracks.frame_size == (640, 360)
    assert [len(f) for f in tracks] == report.faces_per_frame
    assert [int(f.detected.sum()) for f in tracks] == report.detected_per_frame
    # The sample's one false face (the suit, frame 9, score 0.79) is seen once:
    # with TrackConfig.confirm_score it is protected on that frame only, not bridged.
    assert report.faces == report.frames + 1 == sum(report.detected_per_frame)
    # Each face says what protected it.
    entries = json.loads(out.with_name("tracks.json").read_text())["tracks"]
    methods = [m for t in entries for m in t["method"]]
    assert len(methods) == report.faces and set(methods) == {"blur"}
    assert {i for t in entries for i in t["iterations"]} == {0}


def test_tracks_in_reproduces_the_output(blurred, tmp_path, monkeypatch):
    out, report, _ = blurred

    def no_detection(*args, **kwargs):
        raise AssertionError("--tracks-in must not detect")

    monkeypatch.setattr("vdeid.pipeline.create_detector", no_detection)
    again = tmp_path / "again.mp4"
    replay = vdeid.process_video(SAMPLE, again, BLUR, tracks_in=out.with_name("tracks.json"))
    assert replay.faces_per_frame == report.faces_per_frame
    first, second = read_frames(out), read_frames(again)
    assert len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


def test_preview_marks_the_regions(blurred):
    out, report, _ = blurred
    tracks = read_tracks(out.with_name("tracks.json"))
    protected, preview = read_frames(out), read_frames(out.with_name("preview.mp4"))
    assert len(preview) == len(protected)
    i = int(np.argmax(report.faces_per_frame))
    diff = np.abs(preview[i].astype(int) - protected[i].astype(int)).max(axis=2)
    x0, y0, x1, y1 = np.round(expand_boxes(tracks.faces(i).boxes, 0.15)[0]).astype(int)
    assert diff[(y0 + y1) // 2, x0 - 1 : x0 + 2].max() > 60  # the outline
    assert np.median(diff[y0 + 10 : y1 - 10, x0 + 10 : x1 - 10]) < 8  # the face itself is not drawn over
    assert np.median(diff[300:, 500:]) < 8  # nor the rest of the frame


def _edited_tracks(blurred, tmp_path, edit) -> Path:
    out = blurred[0]
    data = json.loads(out.with_name("tracks.json").read_text())
    edit(data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return path


def _shorter(data):
    data["n_frames"] = 40
    for t in data["tracks"]:
        keep = [k for k, f in enumerate(t["frames"]) if f < 40]
        for key in ("frames", "boxes", "landmarks", "scores", "detected"):
            t[key] = [t[key][k] for k in keep]


@pytest.mark.parametrize(
    "edit,problem",
    [
        (lambda d: d.update(frame_size=[1280, 720]), "1280x720"),
        (_shorter, "cover 40 frames but the video has more"),
        (lambda d: d.update(n_frames=d["n_frames"] + 5), "cover 80 frames but the video has 75"),
    ],
)
def test_tracks_of_another_video_are_refused(blurred, tmp_path, edit, problem):
    tracks = _edited_tracks(blurred, tmp_path, edit)
    out = tmp_path / "o.mp4"
    with pytest.raises(InputError, match=problem) as err:
        vdeid.process_video(SAMPLE, out, BLUR, tracks_in=tracks)
    assert str(tracks) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.json"]  # no output left


def test_side_outputs_must_not_clash(blurred, tmp_path):
    tracks = blurred[0].with_name("tracks.json")
    out = tmp_path / "o.mp4"
    for kwargs in (dict(preview=out), dict(tracks_out=tracks.with_name("new.json"), preview=tracks.with_name("new.json")),
                   dict(tracks_in=tracks, tracks_out=tracks)):
        with pytest.raises(OutputError):
            vdeid.process_video(SAMPLE, out, replace(BLUR, overwrite=True), **kwargs)
    assert not out.exists()


def test_small_faces_switches_to_tiled_detection(tmp_path, monkeypatch):
    sizes = []

    class NoFaces:
        def __init__(self, config, device):
            self.config = config

        def detect(self, frames):
            sizes.extend(f.shape[:2] for f in frames)
            return [Faces() for _ in frames]

    monkeypatch.setattr("vdeid.detect.tiling.FaceDetector", NoFaces)
    config = replace(BLUR, track=TrackConfig(small_faces=True))
    report = vdeid.process_video(SAMPLE, tmp_path / "o.mp4", config)
    assert any("tiled detection" in n for n in report.notes)
    # 640x360 frames are one tile, upscaled 1.5x, plus the whole frame as it is.
    assert set(sizes) == {(540, 960), (360, 640)}


def test_adversarial_methods_get_the_outputs_encoder_round_trip(tmp_path, monkeypatch):
    made = []
    real = vdeid.pipeline.create_method

    def spy(name, config):
        method = real(name, config)
        method.round_trip = None  # blur stands in for an adversarial method
        made.append(method)
        return method

    monkeypatch.setattr("vdeid.pipeline.create_method", spy)
    report = vdeid.process_video(SAMPLE, tmp_path / "o.mp4", BLUR)
    settings = made[0].round_trip.settings
    assert (settings.encoder, settings.options["preset"], settings.pix_fmt) == ("libx264", "ultrafast", "yuv420p")
    assert any("round trip through libx264" in n for n in report.notes)


def test_existing_output_refused_and_input_never_overwritten(tmp_path):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError):
        vdeid.process_video(SAMPLE, out, Config(method="blur", device=DEVICE, encode=FAST))
    assert out.read_bytes() == b"keep me"
    copy = tmp_path / "in.mp4"
    copy.write_bytes(SAMPLE.read_bytes())
    with pytest.raises(OutputError):
        vdeid.process_video(copy, copy, Config(method="blur", device=DEVICE, overwrite=True, encode=FAST))
    assert copy.read_bytes() == SAMPLE.read_bytes()


def test_bad_input_leaves_nothing(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError) as err:
        vdeid.process_video(bad, out, Config(method="blur", device=DEVICE))
    assert str(bad) in str(err.value)
    assert list(tmp_path.iterdir()) == [bad]


def test_interrupt_leaves_no_partial_file(tmp_path):
    out = tmp_path / "out.mp4"

    def interrupt(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vdeid.process_video(SAMPLE, out, Config(method="blur", device=DEVICE, encode=FAST), progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_faces_are_found_on_a_thread_of_their_own(tmp_path, monkeypatch):
    """Detection runs ahead of protection, so an attack on a GPU does not wait for it."""
    threads = []
    real = FaceDetector.detect

    def spy(self, frames):
        threads.append(threading.current_thread().name)
        return real(self, frames)

    monkeypatch.setattr(FaceDetector, "detect", spy)
    report = vdeid.process_video(SAMPLE, tmp_path / "o.mp4", BLUR)
    assert threads and set(threads) == {"vdeid-detect"}
    assert report.faces > 0 and {"detect", "track", "wait_detect"} <= set(report.timings)


def test_a_detector_error_stops_the_run_and_writes_nothing(tmp_path, monkeypatch):
    def broken(self, frames):
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(FaceDetector, "detect", broken)
    with pytest.raises(RuntimeError, match="detector exploded"):
        vdeid.process_video(SAMPLE, tmp_path / "o.mp4", BLUR)
    assert list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("vdeid-")]


def test_engine_failure_falls_back(tmp_path, monkeypatch):
    """A method that raises must not ship unprotected faces: the fallback takes the chunk."""
    from vdeid.methods import registry

    real = registry.create_method

    class Broken:
        name = "pixelate"

        def protect(self, frames, faces):
            raise RuntimeError("engine exploded")

        def reset(self):
            pass

    monkeypatch.setattr(
        "vdeid.pipeline.create_method",
        lambda name, config: Broken() if name == "pixelate" else real(name, config),
    )
    report = vdeid.process_video(
        SAMPLE, tmp_path / "o.mp4", Config(method="pixelate", device=DEVICE, encode=FAST),
        tracks_out=tmp_path / "t.json",
    )
    assert report.faces > 0
    assert report.outcomes["blur"] == report.faces
    assert report.fallback_reasons == {"error": report.faces}
    entries = json.loads((tmp_path / "t.json").read_text())["tracks"]
    assert sum(t["method"].count("blur") for t in entries) == report.faces  # the tracks file says so too
    assert sum(t["fallback_reason"].count("error") for t in entries) == report.faces
    assert any("engine exploded" in n for n in report.notes)


def test_real_avi_with_mp3_keeps_its_stream(videos_dir, tmp_path):
    """The shared AVI (MPEG-4 video, MP3 audio) through the whole pipeline with blur."""
    src = videos_dir / "selfie_occluded_face_320x240.avi"
    if not src.exists():
        pytest.skip(f"{src} not found")
    out = tmp_path / "out.avi"
    report = vdeid.process_video(src, out, BLUR)
    assert report.frames == len(read_frames(src)) == len(read_frames(out))
    assert report.faces > 0 and report.fallback == 0
    assert audio_packets(out) == audio_packets(src) and audio_packets(src)[0]
