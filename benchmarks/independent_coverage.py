"""Faces an independent detector finds that vdeid left unprotected, on real clips.

For each clip of ``--videos-dir``:

1. run :func:`vdeid.process_video` at default settings (``--method`` blur by
   default: the method does not change which regions are protected, and blur
   is fast) with ``tracks_out``, so the protected faces of every frame are
   known; once per ``--detect-every`` value;
2. run dlib's HOG frontal face detector (``dlib.get_frontal_face_detector()``,
   upsample 1; real dlib from the dlib-bin wheel, which vdeid never uses for
   detection) on every **original** frame (once; cached in ``--out-dir``);
3. score each HOG face against vdeid's protected regions of that frame: every
   tracks-file box grown by ``DetectConfig.box_margin``, the rectangle the
   methods work in. A HOG face is **covered** when at least 90 % of its box
   (clipped to the frame) lies inside the union of those rectangles (the rule
   of ``benchmarks/aerial_recall.py``).

HOG also fires on non-faces (badges, patterns). Every HOG face is therefore
shown to a second, independent judge: dlib's CNN face detector
(``mmod_human_face_detector.dat`` from face_recognition_models) on a crop
three times the box's size, rescaled so the face is about 120 px. The face
is **confirmed** when a CNN detection's centre falls inside the HOG box.
Crops of every uncovered face are saved to ``--out-dir/uncovered/``
(``..._cnn.png`` when confirmed) for a look.

HOG boxes of turned heads also reach further sideways than MTCNN's, so a face
can miss the 90 % rule while its eyes, nose and mouth are protected. The
**core weight** says how much of the face itself is replaced: the methods
blend the protected face in through a feathered ellipse inscribed in the
rectangle, and the core weight is the mean blend weight over the central
half (each axis) of the HOG box (1 = fully replaced). A confirmed face with
a core weight below 0.5 is counted as a **leak**.

Printed per clip and ``detect_every``: frames, HOG face-frames, the frames
with at least one uncovered HOG face (count and share of all frames), those
where an uncovered one is confirmed by the CNN, those with a leak, and the
lowest box coverage and core weight of any confirmed face, and the protected
area: the union of the protected rectangles in % of the frame, averaged over
all frames (the price of protecting more).

Run (CPU; about an hour on a busy 2-core machine: HOG upsampled on every
frame, the CNN on every HOG face, MTCNN; HOG boxes and CNN verdicts are
cached in ``--out-dir``, and ``--reuse`` also keeps the tracks of a previous
run)::

    python benchmarks/independent_coverage.py --videos-dir ../shared/data/videos \\
        --out-dir /tmp/coverage --detect-every 1 3
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from protect_videos import frames_of  # the sibling benchmark's decoder
from vdeid import process_video
from vdeid.config import Config, EncodeConfig
from vdeid.faces import expand_boxes
from vdeid.methods.mask import ellipse_mask
from vdeid.track import read_tracks

COVER = 0.9
LEAK_CORE = 0.5
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".m4v"}


def hog_faces(clip: Path, cache: Path) -> list[list[list[float]]]:
    """HOG boxes ``x0, y0, x1, y1`` of every frame (upsample 1), cached as JSON."""
    if cache.exists():
        return json.loads(cache.read_text())
    import dlib

    detector = dlib.get_frontal_face_detector()
    boxes = [
        [[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in detector(image, 1)] for image in frames_of(clip)
    ]
    cache.write_text(json.dumps(boxes))
    return boxes


class CnnConfirm:
    """dlib's CNN face detector, asked about one candidate box at a time."""

    def __init__(self):
        import dlib
        import face_recognition_models

        self.cnn = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())

    def __call__(self, image: np.ndarray, box: np.ndarray) -> bool:
        import cv2

        side = max(box[2] - box[0], box[3] - box[1])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0, y0 = max(int(cx - 1.5 * side), 0), max(int(cy - 1.5 * side), 0)
        crop = image[y0 : int(cy + 1.5 * side), x0 : int(cx + 1.5 * side)]
        scale = 120.0 / side
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))))
        for d in self.cnn(np.ascontiguousarray(crop), 0):
            r = d.rect
            mx = x0 + (r.left() + r.right()) / 2 / scale
            my = y0 + (r.top() + r.bottom()) / 2 / scale
            if box[0] <= mx <= box[2] and box[1] <= my <= box[3]:
                return True
        return False


def box_coverage(box: np.ndarray, regions: np.ndarray, shape: tuple[int, int]) -> float:
    """Fraction of ``box`` (clipped to the frame) inside the union of ``regions``."""
    h, w = shape
    x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x1, y1 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    if x1 <= x0 or y1 <= y0:
        return 1.0
    inside = np.zeros((y1 - y0, x1 - x0), bool)
    for r in regions:
        rx0, ry0 = max(int(np.floor(r[0])) - x0, 0), max(int(np.floor(r[1])) - y0, 0)
        rx1, ry1 = min(int(np.ceil(r[2])) - x0, x1 - x0), min(int(np.ceil(r[3])) - y0, y1 - y0)
        if rx1 > rx0 and ry1 > ry0:
            inside[ry0:ry1, rx0:rx1] = True
    return float(inside.mean())


def protected_share(regions: np.ndarray, shape: tuple[int, int]) -> float:
    """Fraction of the frame inside the union of ``regions`` (clipped to the frame)."""
    return box_coverage(np.array([0.0, 0.0, shape[1], shape[0]]), regions, shape)


def core_weight(box: np.ndarray, mask: np.ndarray) -> float:
    """Mean blend weight over the central half (each axis) of ``box``."""
    h, w = mask.shape
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) / 4, (box[3] - box[1]) / 4
    x0, x1 = max(int(cx - hw), 0), min(int(np.ceil(cx + hw)), w)
    y0, y1 = max(int(cy - hh), 0), min(int(np.ceil(cy + hh)), h)
    if x1 <= x0 or y1 <= y0:
        return 1.0
    return float(mask[y0:y1, x0:x1].mean())


def score_clip(clip: Path, hog: list, tracks_path: Path, config: Config, crops: Path, confirm) -> dict:
    """Coverage of the HOG faces of ``clip`` by the protected regions of ``tracks_path``."""
    from PIL import Image

    tracks = read_tracks(tracks_path)
    if len(hog) != tracks.n_frames:
        raise SystemExit(f"{clip}: HOG saw {len(hog)} frames but the tracks cover {tracks.n_frames}")
    faces = real_faces = 0
    uncovered: list[int] = []
    confirmed: list[int] = []
    leaks: list[int] = []
    misses: list[dict] = []
    worst_core = worst_cover = 1.0
    protected = 0.0
    for index, image in enumerate(frames_of(clip)):
        regions = expand_boxes(tracks.faces(index).boxes, config.detect.box_margin)
        protected += protected_share(regions, image.shape[:2])
        if not hog[index]:
            continue
        mask = ellipse_mask(image.shape[:2], regions, feather=config.naive.feather)
        missed = face = leak = False
        for k, box in enumerate(np.array(hog[index], np.float64)):
            faces += 1
            cover = box_coverage(box, regions, image.shape[:2])
            core = core_weight(box, mask)
            real = confirm(clip, index, k, image, box)
            real_faces += real
            if real:
                worst_core, worst_cover = min(worst_core, core), min(worst_cover, cover)
            if cover >= COVER:
                continue
            missed = True
            face |= real
            leak |= real and core < LEAK_CORE
            misses.append({"frame": index, "box": box.tolist(), "cover": cover, "core": core, "cnn_face": real})
            x0, y0 = max(int(box[0]) - 20, 0), max(int(box[1]) - 20, 0)
            crop = image[y0 : int(box[3]) + 20, x0 : int(box[2]) + 20]
            name = f"{tracks_path.stem}_f{index:04d}_{k}_cover{cover:.2f}{'_cnn' if real else ''}.png"
            Image.fromarray(crop).save(crops / name)
        if missed:
            uncovered.append(index)
        if face:
            confirmed.append(index)
        if leak:
            leaks.append(index)
    n = len(hog)
    return {
        "clip": clip.name,
        "frames": n,
        "hog_frames": sum(1 for h in hog if h),
        "hog_faces": faces,
        "cnn_confirmed_faces": real_faces,
        "uncovered_frames": uncovered,
        "confirmed_frames": confirmed,
        "leak_frames": leaks,
        "worst_core_weight": worst_core,
        "worst_cover": worst_cover,
        "protected_percent": 100 * protected / max(n, 1),
        "uncovered": misses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "videos")
    parser.add_argument("--out-dir", type=Path, required=True, help="Protected clips, tracks, HOG boxes, crops, results.json.")
    parser.add_argument("--method", default="blur", help="Protection method (default blur: fast, same regions).")
    parser.add_argument("--detect-every", type=int, nargs="+", default=[1], help="TrackConfig.detect_every values to compare.")
    parser.add_argument("--box-margin", type=float, default=None,
                        help="DetectConfig.box_margin (default 0.15); tracks do not depend on it, so --reuse applies.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for MTCNN (default 1).")
    parser.add_argument("--reuse", action="store_true", help="Keep tracks already in --out-dir (skip those vdeid runs).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    base = Config(method=args.method, device="cpu", overwrite=True, encode=EncodeConfig(preset="ultrafast"))
    if args.box_margin is not None:
        base = replace(base, detect=replace(base.detect, box_margin=args.box_margin))
    crops = args.out_dir / "uncovered"
    crops.mkdir(parents=True, exist_ok=True)
    judge = CnnConfirm()

    clips = sorted(p for p in args.videos_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    rows = []
    for clip in clips:
        started = time.perf_counter()
        hog = hog_faces(clip, args.out_dir / f"{clip.stem}.hog.json")
        print(f"# {clip.name}: HOG on {len(hog)} frames ({time.perf_counter() - started:.0f} s)", flush=True)
        # The CNN's verdict on each HOG box does not depend on vdeid: asked once, cached.
        verdicts_path = args.out_dir / f"{clip.stem}.cnn.json"
        verdicts = json.loads(verdicts_path.read_text()) if verdicts_path.exists() else {}

        def confirm(clip, index, k, image, box) -> bool:
            key = f"{index}/{k}"
            if key not in verdicts:
                verdicts[key] = judge(image, box)
            return verdicts[key]

        for every in args.detect_every:
            config = replace(base, track=replace(base.track, detect_every=every))
            tag = clip.stem if every == 1 else f"{clip.stem}.every{every}"
            tracks = args.out_dir / f"{tag}.tracks.json"
            if not (args.reuse and tracks.exists()):
                started = time.perf_counter()
                report = process_video(clip, args.out_dir / f"{tag}.protected.mp4", config, tracks_out=tracks)
                print(f"# {clip.name} detect_every={every}: vdeid {report.frames} frames, {report.faces} face-frames"
                      f" protected ({sum(report.detected_per_frame)} detected) in {time.perf_counter() - started:.0f} s",
                      flush=True)
            row = score_clip(clip, hog, tracks, config, crops, confirm)
            rows.append({"detect_every": every, **row})
        verdicts_path.write_text(json.dumps(verdicts))
    (args.out_dir / "results.json").write_text(json.dumps({"config": base.to_dict(), "rows": rows}, indent=1))
    print("\n| clip | detect every | frames | HOG face-frames (CNN-confirmed) | frames with an uncovered HOG face "
          "| … a face per the CNN | … a leak (core < 0.5) | lowest box coverage | lowest core weight | protected area |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        n = max(r["frames"], 1)
        share = lambda frames: f"{len(frames)} ({100 * len(frames) / n:.1f} %)"  # noqa: E731
        print(f"| {r['clip']} | {r['detect_every']} | {r['frames']} | {r['hog_faces']} ({r['cnn_confirmed_faces']}) "
              f"| {share(r['uncovered_frames'])} | {share(r['confirmed_frames'])} | {share(r['leak_frames'])} "
              f"| {r['worst_cover']:.2f} | {r['worst_core_weight']:.2f} | {r['protected_percent']:.2f} % |")


if __name__ == "__main__":
    main()
