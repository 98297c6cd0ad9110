"""Speed and colour fidelity of vdeid's video I/O on the shared clips.

Usage::

    python benchmarks/video_io.py [VIDEOS_DIR] [--preset ultrafast]

Prints, per clip: decode speed (RGB frames/s), identity-pass speed (decode +
encode + audio copy, frames/s), and the mean colour change of one identity
pass, per RGB channel, with vdeid's scaler flags and with swscale's default
flags (the reason for the flags: see docs/video-io.md).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vdeid.config import EncodeConfig
from vdeid.io import VideoSink, open_video
from vdeid.io.video_source import DECODE_FLAGS_8BIT, ENCODE_FLAGS


def decode_fps(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    with open_video(path) as source:
        count = sum(1 for _ in source.frames())
    return count, count / (time.perf_counter() - start)


def identity_fps(path: Path, out: Path, preset: str) -> float:
    start = time.perf_counter()
    with open_video(path) as source, VideoSink(out, source, EncodeConfig(preset=preset), overwrite=True) as sink:
        for frame in source.frames():
            sink.write(frame)
    return sink.frames_written / (time.perf_counter() - start)


def conversion_bias(path: Path, *, frames: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Mean RGB change of one YUV->RGB->YUV->RGB pass (no coding), vdeid vs default flags."""
    results = []
    for decode_flags, encode_flags in ((DECODE_FLAGS_8BIT, ENCODE_FLAGS), (None, None)):
        scaler = VideoReformatter()
        diffs = []
        with av.open(str(path)) as container:
            for frame in itertools.islice(container.decode(video=0), frames):
                rgb = scaler.reformat(frame, format="rgb24", interpolation=decode_flags).to_ndarray()
                yuv = scaler.reformat(
                    av.VideoFrame.from_ndarray(rgb), format=frame.format.name, interpolation=encode_flags,
                    dst_colorspace=frame.colorspace if frame.colorspace in (1, 5, 9) else None,
                    dst_color_range=frame.color_range or 1,
                )
                yuv.colorspace, yuv.color_range = frame.colorspace, frame.color_range
                back = scaler.reformat(yuv, format="rgb24", interpolation=decode_flags).to_ndarray()
                diffs.append((back.astype(float) - rgb.astype(float)).mean(axis=(0, 1)))
        results.append(np.mean(diffs, axis=0))
    return results[0], results[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/videos"))
    parser.add_argument("--preset", default="ultrafast")
    args = parser.parse_args(argv)
    clips = sorted(p for p in Path(args.videos).iterdir() if p.is_file())
    print(f"{'clip':40s} {'size':>9s} {'frames':>6s} {'decode fps':>10s} {'identity fps':>12s}  "
          f"{'bias vdeid (R,G,B)':>20s}  {'bias default (R,G,B)':>20s}")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            with open_video(clip) as source:
                size = f"{source.info.width}x{source.info.height}"
            count, dfps = decode_fps(clip)
            ifps = identity_fps(clip, Path(tmp) / f"out{clip.suffix}", args.preset)
            ours, default = conversion_bias(clip)
            fmt = lambda v: "(" + ", ".join(f"{x:+.2f}" for x in v) + ")"  # noqa: E731
            print(
                f"{clip.name:40s} {size:>9s} {count:6d} {dfps:10.1f} {ifps:12.1f}  "
                f"{fmt(ours):>20s}  {fmt(default):>20s}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
