"""The in-memory encoder round trip gives the pixels the output file will hold."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from media import MS, write_clip

from vdeid.config import EncodeConfig
from vdeid.errors import OutputError
from vdeid.io import VideoSink, open_video
from vdeid.io.round_trip import EncoderRoundTrip, EncoderSettings

BT709 = dict(color_range=1, colorspace=1, color_primaries=1, color_trc=1)


def _noisy(images: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Images plus a few grey levels of noise, as an adversarial perturbation adds."""
    g = np.random.default_rng(seed)
    top = np.iinfo(images[0].dtype).max
    step = 1 if top == 255 else 4  # 10-bit codes in a 16-bit sample
    return [
        np.clip(im.astype(np.int64) + g.integers(-3, 4, im.shape) * step, 0, top).astype(im.dtype) for im in images
    ]


@pytest.mark.parametrize(
    "codec,pix_fmt,ext,color",
    [("libx264", "yuv420p", ".mp4", None), ("libx265", "yuv420p10le", ".mp4", BT709), ("mpeg4", "yuv420p", ".avi", None)],
)
def test_round_trip_equals_what_the_output_file_holds(tmp_path, codec, pix_fmt, ext, color):
    # AVI: one tick per frame, as real AVI files have.
    tb = Fraction(1, 25) if ext == ".avi" else MS
    clip = write_clip(
        tmp_path / f"in{ext}", codec=codec, pix_fmt=pix_fmt, frames=6, size=(96, 64), color=color, time_base=tb
    )
    out = tmp_path / f"out{ext}"
    with open_video(clip.path) as source:
        frames = list(source.frames())
        written = _noisy([f.image for f in frames])
        with VideoSink(out, source, EncodeConfig(crf=28, preset="ultrafast")) as sink:
            for frame, image in zip(frames, written):
                sink.write(frame.__class__(**{**frame.__dict__, "image": image}))
            trip = sink.round_trip()
    with open_video(out) as result:
        shipped = [f.image for f in result.frames()]
    back = trip(written)
    assert [b.dtype for b in back] == [written[0].dtype] * len(written)
    # Bit for bit what a viewer decodes from the file...
    for b, s in zip(back, shipped):
        np.testing.assert_array_equal(b, s)
    # ...which is not what was handed to the encoder: the check has something to catch.
    assert any(not np.array_equal(b, w) for b, w in zip(back, written))


def test_settings_follow_the_sink(tmp_path):
    clip = write_clip(tmp_path / "in.avi", codec="mpeg4", frames=3, time_base=Fraction(1, 25))
    with open_video(clip.path) as source, VideoSink(tmp_path / "o.avi", source, EncodeConfig(crf=23)) as sink:
        sink.write(next(iter(source.frames())))
        s = sink.round_trip().settings
    # mpeg4 input becomes H.264; AVI has no room for B-frames.
    assert (s.encoder, s.options["crf"], s.max_b_frames, s.width, s.height) == ("libx264", "23", 0, 64, 48)


def test_empty_chunk_and_unknown_encoder():
    assert EncoderRoundTrip(EncoderSettings("libx264", "yuv420p", {}, 64, 48))([]) == []
    with pytest.raises(OutputError, match="unknown encoder 'nope'"):
        EncoderRoundTrip(EncoderSettings("nope", "yuv420p", {}, 64, 48))([np.zeros((48, 64, 3), np.uint8)])
