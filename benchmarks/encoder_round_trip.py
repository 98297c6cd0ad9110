"""How close the engine's in-memory encoder round trip is to the real output.

The engine judges faces on a chunk encoded on its own
(:class:`vdeid.io.round_trip.EncoderRoundTrip`); the output encodes the same
frames inside the whole stream. For one clip this script

1. writes the first ``--frames-total`` frames with ``VideoSink`` (the output's
   encoder at its defaults) and decodes them back;
2. round-trips the chunk ``--start .. --start + --chunk`` on its own;

and prints, per frame of the chunk, the mean absolute error (grey levels,
against the decoded input) of the chunk alone and of the same frame inside
the clip. It also checks that a round trip of the first ``--chunk`` frames is
bit-identical to a file ``VideoSink`` writes from just those frames. Run::

    python benchmarks/encoder_round_trip.py ../shared/data/videos/street_pedestrians_1080p.mp4
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import numpy as np

from vdeid.config import EncodeConfig
from vdeid.io import VideoSink, open_video


def write_and_read(clip: Path, frames: list, out: Path):
    """Encode ``frames`` as ``VideoSink`` does; return the decoded images and the sink's round trip."""
    with open_video(clip) as source, VideoSink(out, source, EncodeConfig(), overwrite=True) as sink:
        for frame in frames:
            sink.write(frame)
        trip = sink.round_trip()
    with open_video(out) as result:
        return [f.image for f in result.frames()], trip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--start", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=8, help="frames per chunk (Config.chunk_frames)")
    ap.add_argument("--frames-total", type=int, default=40)
    args = ap.parse_args()
    with open_video(args.clip) as source:
        frames = list(itertools.islice(source.frames(), args.frames_total))
    images = [f.image for f in frames]
    with tempfile.TemporaryDirectory() as tmp:
        whole, trip = write_and_read(args.clip, frames, Path(tmp) / "whole.mp4")
        alone, _ = write_and_read(args.clip, frames[: args.chunk], Path(tmp) / "alone.mp4")
    identical = all(np.array_equal(a, b) for a, b in zip(trip(images[: args.chunk]), alone))
    print(f"{args.clip.name}: {trip.settings.encoder} {trip.settings.options}")
    print(f"round trip of frames 0-{args.chunk - 1} bit-identical to VideoSink's file of them: {identical}\n")
    chunk = slice(args.start, args.start + args.chunk)
    back = trip(images[chunk])
    print("| frame | chunk alone: mean abs error | inside the clip | difference |")
    print("|---|---|---|---|")
    diffs = []
    for t, b, w, o in zip(range(args.start, args.start + args.chunk), back, whole[chunk], images[chunk]):
        e_alone = np.abs(b.astype(np.int64) - o).mean()
        e_whole = np.abs(w.astype(np.int64) - o).mean()
        diffs.append(e_alone - e_whole)
        print(f"| {t} | {e_alone:.3f} | {e_whole:.3f} | {e_alone - e_whole:+.3f} |")
    print(f"\nmean difference {np.mean(diffs):+.3f} grey levels (min {min(diffs):+.3f}, max {max(diffs):+.3f})")


if __name__ == "__main__":
    main()
