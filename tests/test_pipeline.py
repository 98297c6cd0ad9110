"""process_video end to end on the bundled sample (CPU, naive method for speed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vdeid
from vdeid.config import Config, EncodeConfig
from vdeid.detect import FaceDetector
from vdeid.errors import InputError, OutputError

from vdeid_testing import SAMPLE, audio_packets, read_frames

FAST = EncodeConfig(preset="ultrafast")


@pytest.fixture(scope="module")
def blurred(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipe") / "out.mp4"
    report_path = out.with_suffix(".json")
    report = vdeid.process_video(
        SAMPLE, out, Config(method="blur", device="cpu", encode=FAST), report_path=report_path
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
    assert data["fallback"] == 0
    assert {"decode", "detect", "protect", "encode", "total"} <= set(data["timings_s"])
    assert data["versions"]["torch"] and data["config"]["method"] == "blur"


def test_existing_output_refused_and_input_never_overwritten(tmp_path):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError):
        vdeid.process_video(SAMPLE, out, Config(method="blur", device="cpu", encode=FAST))
    assert out.read_bytes() == b"keep me"
    copy = tmp_path / "in.mp4"
    copy.write_bytes(SAMPLE.read_bytes())
    with pytest.raises(OutputError):
        vdeid.process_video(copy, copy, Config(method="blur", device="cpu", overwrite=True, encode=FAST))
    assert copy.read_bytes() == SAMPLE.read_bytes()


def test_bad_input_leaves_nothing(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError) as err:
        vdeid.process_video(bad, out, Config(method="blur", device="cpu"))
    assert str(bad) in str(err.value)
    assert list(tmp_path.iterdir()) == [bad]


def test_interrupt_leaves_no_partial_file(tmp_path):
    out = tmp_path / "out.mp4"

    def interrupt(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        vdeid.process_video(SAMPLE, out, Config(method="blur", device="cpu", encode=FAST), progress=interrupt)
    assert list(tmp_path.iterdir()) == []


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
        SAMPLE, tmp_path / "o.mp4", Config(method="pixelate", device="cpu", encode=FAST)
    )
    assert report.faces > 0
    assert report.outcomes["blur"] == report.faces
    assert any("engine exploded" in n for n in report.notes)
