"""Cut a window of frames out of a clip without changing a pixel.

The long clips take hours of ``vdeid process`` on a 2-core CPU, so
``docs/attacks.md`` measures them window by window. A window has to hold the
very pixels the whole clip decodes to, or the measurement would be of a
re-encoded clip: this script decodes frames ``[--start, --start + --frames)``
with PyAV and encodes their decoded planes losslessly (x264 ``qp 0`` in the
source's pixel format, the source's frame rate; no audio), then decodes the
result again and checks every plane against the source's. Run::

    python benchmarks/clip_window.py ../shared/data/videos/street_pedestrians_1080p.mp4 \\
        /tmp/street_48_71.mp4 --start 48 --frames 24
"""

from __future__ import annotations

import argparse
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """The frame's planes as arrays (``to_ndarray`` does not cover every planar format)."""
    dtype = np.uint16 if any(c.bits > 8 for c in frame.format.components) else np.uint8
    out = []
    for p in frame.planes:
        row = p.line_size // np.dtype(dtype).itemsize
        out.append(np.frombuffer(bytes(p), dtype).reshape(p.height, row)[:, : p.width].copy())
    return out


def decoded(path: Path, start: int, count: int):
    """Frames ``[start, start + count)`` of ``path`` and its video stream's frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        frames = []
        for t, frame in enumerate(container.decode(stream)):
            if t >= start + count:
                break
            if t >= start:
                frames.append(frame)
        return frames, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--frames", type=int, default=24)
    args = parser.parse_args()
    if args.output.resolve() == args.source.resolve():
        sys.exit(f"{args.output}: would overwrite the source")
    frames, rate = decoded(args.source, args.start, args.frames)
    if not frames:
        sys.exit(f"{args.source}: has no frame {args.start}")
    fmt = frames[0].format.name
    tmp = args.output.with_name(f".{args.output.name}.part")
    try:
        write_window(tmp, frames, rate)
        again, _ = decoded(tmp, 0, len(frames))
        same = len(again) == len(frames) and all(
            all(np.array_equal(a, b) for a, b in zip(planes(x), planes(y))) for x, y in zip(frames, again)
        )
        if not same:
            sys.exit(f"{args.output}: the window's pixels differ from the source's; nothing written")
        os.replace(tmp, args.output)
    finally:
        tmp.unlink(missing_ok=True)  # no partial file, whatever stopped the run
    print(f"{args.output}: frames {args.start}-{args.start + len(frames) - 1} of {args.source.name}, {fmt}, identical pixels")


def write_window(path: Path, frames: list, rate) -> None:
    """Encode ``frames``' planes losslessly (x264 ``qp 0``, their own pixel format) to ``path``."""
    fmt, width, height = frames[0].format.name, frames[0].width, frames[0].height
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, fmt
        stream.options = {"qp": "0", "preset": "veryfast"}
        for n, frame in enumerate(frames):
            copy = av.VideoFrame(width, height, fmt)
            for dst, src in zip(copy.planes, planes(frame)):
                row = dst.line_size // src.itemsize
                buf = np.zeros((dst.height, row), src.dtype)
                buf[:, : src.shape[1]] = src
                dst.update(buf.tobytes())
            copy.pts = n
            out.mux(stream.encode(copy))
        out.mux(stream.encode())


if __name__ == "__main__":
    main()
