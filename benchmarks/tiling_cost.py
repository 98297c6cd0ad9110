"""What tiled detection costs, and whether it keeps every face plain detection finds.

For frames sampled from a clip (every ``--step``-th, at most ``--frames``;
``--upscale 2`` makes 4K frames of a 1080p clip), runs on each frame, one
frame at a time:

- ``plain``: MTCNN on the whole frame (``FaceDetector(DetectConfig())``, what
  ``vdeid process`` runs on frames under 1440p);
- ``tiles only``: ``TiledDetector(..., full_frame=False)``, the upscaled tiles alone;
- ``tiled``: ``TiledDetector`` as ``--small-faces`` and 1440p+ frames use it.

It prints seconds per frame (after one warm-up frame), faces found, and how
many of plain detection's faces each leaves out (no box of it overlaps the
plain box with IoU > 0.5). Run (one thread)::

    OMP_NUM_THREADS=1 python benchmarks/tiling_cost.py ../shared/data/videos/street_pedestrians_1080p.mp4
    OMP_NUM_THREADS=1 python benchmarks/tiling_cost.py ../shared/data/videos/street_pedestrians_1080p.mp4 --upscale 2 --frames 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from vdeid.config import DetectConfig
from vdeid.detect.mtcnn import FaceDetector
from vdeid.detect.tiling import TiledDetector
from vdeid.faces import box_iou
from vdeid.io.video_source import open_video


def sample_frames(clip: Path, step: int, limit: int, upscale: float) -> list[np.ndarray]:
    """Every ``step``-th frame of ``clip``, at most ``limit``, resized by ``upscale``."""
    out = []
    with open_video(clip) as source:
        for frame in source.frames():
            if frame.index % step == 0:
                image = frame.image
                if upscale != 1:
                    size = (round(image.shape[1] * upscale), round(image.shape[0] * upscale))
                    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
                out.append(image)
            if len(out) == limit:
                break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--step", type=int, default=13)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--upscale", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames = sample_frames(args.clip, args.step, args.frames + 1, args.upscale)
    plain = FaceDetector(DetectConfig())
    detectors = {"plain": plain, "tiles only": TiledDetector(plain, full_frame=False), "tiled": TiledDetector(plain)}
    found = {}
    print(f"{args.clip.name}: {len(frames) - 1} frames of {frames[0].shape[1]}x{frames[0].shape[0]}")
    print("| detector | s / frame | faces | plain's faces left out |")
    print("|---|---|---|---|")
    for name, detector in detectors.items():
        detector.detect(frames[:1])
        started = time.perf_counter()
        found[name] = [detector.detect([f])[0] for f in frames[1:]]
        seconds = (time.perf_counter() - started) / (len(frames) - 1)
        missed = sum(
            int(len(other) == 0 or box_iou(box[None], other.boxes).max() <= 0.5)
            for ref, other in zip(found["plain"], found[name])
            for box in ref.boxes
        )
        print(f"| {name} | {seconds:.2f} | {sum(len(f) for f in found[name])} | {missed} |", flush=True)


if __name__ == "__main__":
    main()
