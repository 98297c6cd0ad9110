"""Recall of protected regions on synthetic aerial clips (1080p and 4K, faces down to 16 px).

For each clip: render it with :mod:`vdeid.synthetic` (real faces from
``data/faces`` pasted on a moving aerial background, with pan, zoom, shake,
walking people and occlusions), encode it to H.264, decode it back, detect
faces (plain MTCNN or :class:`~vdeid.detect.tiling.TiledDetector`), track
them with :func:`vdeid.track.track_faces`, and score the protected regions.

Protected region: every output box grown by ``DetectConfig.box_margin`` on
each side (what the methods protect). A ground-truth face-frame is
**covered** when at least 90 % of its box (clipped to the frame) lies
inside the union of protected regions of that frame. Recall counts visible
face-frames only (a face hidden by an occluder has nothing to leak).
**Spurious area**: protected pixels farther than half a face size from
every ground-truth face, as a percentage of the frame.

Run (about 25 min on 2 CPU cores; ``--quick`` for a 2-minute smoke run)::

    python benchmarks/aerial_recall.py --faces-dir ../shared/data/faces
"""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np

from vdeid.config import DetectConfig, TrackConfig
from vdeid.detect.mtcnn import FaceDetector
from vdeid.detect.tiling import TiledDetector, wants_tiling
from vdeid.faces import Faces, expand_boxes
from vdeid.synthetic import AerialScene, GroundTruth, load_face_sprites, write_clip
from vdeid.track import track_faces

COVER = 0.9
BUCKETS = [(16, 20), (20, 32), (32, 64), (64, 10_000)]


@dataclass
class Clip:
    name: str
    scene: AerialScene


def clips(frames_1080: int, frames_4k: int) -> list[Clip]:
    return [
        Clip("1080p", AerialScene(width=1920, height=1080, n_frames=frames_1080, n_people=12,
                                  face_sizes=(16, 120), pan=(7.0, 2.5), zoom=1.25, shake=0.8, walk=0.8,
                                  occlusions=4, occlusion_frames=(6, 10), seed=11)),
        Clip("4K", AerialScene(width=3840, height=2160, n_frames=frames_4k, n_people=16,
                               face_sizes=(16, 200), pan=(12.0, 4.0), zoom=1.2, shake=1.2, walk=1.2,
                               occlusions=4, occlusion_frames=(6, 10), seed=12)),
    ]


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return [f.to_ndarray(format="rgb24") for f in container.decode(stream)]


def detect_all(detector, frames: list[np.ndarray], chunk: int) -> tuple[list[Faces], float, float]:
    """Detections of every frame, wall-clock and CPU seconds per frame."""
    out: list[Faces] = []
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(frames), chunk):
        out.extend(detector.detect(frames[i : i + chunk]))
    n = max(len(frames), 1)
    return out, (time.perf_counter() - start) / n, (time.process_time() - cpu) / n


def _mask(shape, boxes: np.ndarray) -> np.ndarray:
    h, w = shape
    m = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in np.round(boxes).astype(int):
        m[max(0, y0) : max(0, min(h, y1)), max(0, x0) : max(0, min(w, x1))] = True
    return m


def score(truth: GroundTruth, outputs: list[Faces], margin: float) -> dict:
    shape = (truth.height, truth.width)
    hits = {b: [0, 0] for b in BUCKETS}
    worst = 1.0
    spurious = protected = 0.0
    for ft, faces in zip(truth.frames, outputs):
        prot = _mask(shape, expand_boxes(faces.boxes, margin))
        zone = _mask(shape, expand_boxes(ft.boxes, 0.5))
        protected += prot.mean()
        spurious += (prot & ~zone).mean()
        for box, visible in zip(ft.boxes, ft.visible):
            if not visible:
                continue
            x0, y0, x1, y1 = np.round(box).astype(int)
            region = prot[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)]
            cover = float(region.mean()) if region.size else 1.0
            worst = min(worst, cover)
            size = box[2] - box[0]
            for b in BUCKETS:
                if b[0] <= size < b[1]:
                    hits[b][0] += cover >= COVER
                    hits[b][1] += 1
    n = max(len(outputs), 1)
    total = sum(v[1] for v in hits.values())
    return {
        "recall": sum(v[0] for v in hits.values()) / max(total, 1),
        "n": total,
        "buckets": hits,
        "worst": worst,
        "protected": 100 * protected / n,
        "spurious": 100 * spurious / n,
    }


def fmt(name: str, s: dict) -> str:
    parts = [f"{name:<34} recall {100 * s['recall']:6.2f}% of {s['n']:4d}"]
    for (lo, hi), (h, t) in s["buckets"].items():
        label = f"{lo}-{hi}px" if hi < 10_000 else f">={lo}px"
        parts.append(f"{label} {h}/{t}")
    parts.append(f"worst cover {s['worst']:.2f}  protected {s['protected']:.2f}%  spurious {s['spurious']:.2f}%")
    return "  ".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/faces")
    ap.add_argument("--out-dir", type=Path, default=None, help="where clips are written (temp dir by default)")
    ap.add_argument("--frames-1080", type=int, default=36)
    ap.add_argument("--frames-4k", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="8 frames of 1080p only")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse clips and detections cached in --out-dir (to compare tracking settings)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="vdeid_aerial_"))
    out_dir.mkdir(parents=True, exist_ok=True)

    detect_cfg = DetectConfig()
    base = FaceDetector(detect_cfg, device="cpu")
    tiled = TiledDetector(base)
    sprites = load_face_sprites(args.faces_dir, count=16)
    todo = clips(8, 0)[:1] if args.quick else clips(args.frames_1080, args.frames_4k)
    print(f"# detector: MTCNN min_face={detect_cfg.min_face}, box_margin={detect_cfg.box_margin}; {tiled!r}")
    print(f"# tracking defaults: {TrackConfig()}")
    print(f"# covered = >= {COVER:.0%} of the face box inside the protected union")
    for clip in todo:
        video = out_dir / f"aerial_{clip.name}.mp4"
        cache = out_dir / f"aerial_{clip.name}.pkl"
        cached = {}
        if args.reuse and cache.is_file():
            cached = pickle.loads(cache.read_bytes())
        if cached.get("scene") != clip.scene:
            cached = {"scene": clip.scene, "truth": write_clip(video, clip.scene, sprites)}
        truth = cached["truth"]
        frames = decode(video)
        assert len(frames) == len(truth.frames), (len(frames), len(truth.frames))
        size = (clip.scene.width, clip.scene.height)
        print(f"\n## {clip.name}: {size[0]}x{size[1]}, {len(frames)} frames, {clip.scene.n_people} people, "
              f"faces {clip.scene.face_sizes[0]:.0f}-{clip.scene.face_sizes[1]:.0f} px, {video}")
        detectors = []
        if wants_tiling(size):
            detectors.append(("tiled (default: large frame)", tiled, 1))
        else:
            detectors.append(("plain (default)", base, detect_cfg.batch_size))
            detectors.append(("tiled (--small-faces)", tiled, 1))
        for label, det, chunk in detectors:
            if label not in cached:
                cached[label] = detect_all(det, frames, chunk)
                cache.write_bytes(pickle.dumps(cached))
            dets, wall, cpu = (cached[label] + (float("nan"),))[:3]
            print(f"{label}: detection {wall:.2f} s/frame wall, {cpu:.2f} CPU-s/frame")
            print(fmt("  detections only, every frame", score(truth, dets, detect_cfg.box_margin)))
            for k in (1, 2, 3):
                config = replace(TrackConfig(), detect_every=k)
                items = [(f, d if i % k == 0 else None) for i, (f, d) in enumerate(zip(frames, dets))]
                start = time.perf_counter()
                outputs = [faces for _, faces in track_faces(items, config)]
                track_ms = 1000 * (time.perf_counter() - start) / len(frames)
                s = score(truth, outputs, detect_cfg.box_margin)
                print(fmt(f"  tracked, detect_every={k}", s) + f"  ({track_ms:.0f} ms/frame tracking)")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
