"""Helpers of the batch tests: fast settings, photos and clips on disk, frame counts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import numpy as np
from PIL import Image

from vdeid.config import Config, DetectConfig, EncodeConfig, TrackConfig
from vdeid_testing import DEVICE

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "astronaut_drone.mp4"

#: Fast settings: the method and detection quality do not matter to corpus handling.
FAST = Config(
    method="blur",
    device=DEVICE,
    detect=DetectConfig(min_face=40),
    track=TrackConfig(detect_every=3),
    encode=EncodeConfig(preset="ultrafast"),
)


def fast_config(**changes) -> Config:
    return replace(FAST, **changes)


def save_photo(image: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def trimmed_clip(source: Path, dest: Path, *, packets: int) -> Path:
    """The first ``packets`` video packets of ``source``, stream-copied (a short real clip)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as src, av.open(str(dest), "w") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        kept = 0
        for packet in src.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = out
            dst.mux(packet)
            kept += 1
            if kept >= packets:
                break
    return dest


def frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def read_frames(path: Path) -> list[np.ndarray]:
    """Decoded RGB frames, ``(H, W, 3)`` uint8 each."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
