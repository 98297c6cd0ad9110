"""Drone-like footage end to end: does ``vdeid process`` keep small faces from being identified?

Renders a synthetic aerial clip (:mod:`vdeid.synthetic`: a moving 1080p
camera over procedural ground, people walking, faces 16-96 px) whose faces
are the *probe* photos of ``shared/data/faces`` (the split of
``protect_faces.py``: :func:`~vdeid.evaluate.identification.split_identities`,
seed 0, the first probe of each identity), runs ``vdeid process`` on it
(defaults plus ``--small-faces``, as the README advises for aerial footage;
``--plain`` leaves it out, ``--method`` picks another method) and judges every visible ground-truth
face-frame with real dlib (``dlib-bin``), which the attack never saw:

- **clean Top-1**: on the input clip, the face at its ground-truth box is
  identified among the 37 identities, enrolled from their *other*, full-size
  photos, and the 1,500 LFW distractors (the gallery of ``protect_faces.py``);
- **unlinkable**: on the output, the face is at distance >= 0.6 from the
  same face of the input;
- **Top-1 protection**: on the output, its identity is not ranked first.

Two invaders: dlib's own pipeline, its HOG detector run on the face's
surroundings upsampled twice (so it finds faces down to about 20 px; ``HOG
finds`` counts the face-frames it found) and its predictor started from
HOG's box; and one that also knows where every face is and starts the
predictor from the ground-truth box (MTCNN's box of the full-size photo,
scaled with the face), keeping the better of the two tries. Each
face-frame is matched to the output's tracks (``--tracks-out``, box IoU >=
0.3) for the method that shipped it (the method, or its fallback where the attack
missed) and its iterations; ``missed`` counts face-frames no output box
covers.

Run (one thread; about 20 min for the default 24 frames on a 2-core CPU)::

    OMP_NUM_THREADS=1 python benchmarks/aerial_protection.py --out /tmp/aerial_pfgvm
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _attack_settings import apply_attack_settings  # noqa: E402
from _dlib_reference import DlibJudge, load_rgb  # noqa: E402
from protect_faces import DescriptorCache, build_gallery  # noqa: E402

from vdeid.config import Config, DetectConfig  # noqa: E402
from vdeid.detect.mtcnn import FaceDetector  # noqa: E402
from vdeid.evaluate.identification import split_identities  # noqa: E402
from vdeid.faces import box_iou  # noqa: E402
from vdeid.io.video_source import open_video  # noqa: E402
from vdeid.pipeline import process_video  # noqa: E402
from vdeid.synthetic import AerialScene, read_truth, sprite_from_image, write_clip  # noqa: E402

#: Face width buckets of the table, in output pixels.
BUCKETS = [(0, 24), (24, 32), (32, 48), (48, 10_000)]


def probe_sprites(splits, n: int) -> list:
    """Sprites of the first probe photo of the first ``n`` identities that MTCNN finds a clear face in."""
    detector = FaceDetector(DetectConfig(min_face=40, batch_size=1))
    sprites = []
    for split in splits:
        image = load_rgb(split.probes[0])
        faces = detector.detect([image])[0]
        if len(faces) and faces.scores.max() >= 0.95:
            main = int(np.argmax(faces.boxes[:, 2] - faces.boxes[:, 0]))
            sprites.append(sprite_from_image(image, faces.boxes[main], name=split.identity))
        if len(sprites) == n:
            break
    return sprites


def shipped_faces(tracks_path: Path, n_frames: int) -> list[list[tuple]]:
    """Per frame, ``(box (4,), method, iterations)`` of every face the output protected."""
    data = json.loads(tracks_path.read_text())
    frames: list[list[tuple]] = [[] for _ in range(n_frames)]
    for track in data["tracks"]:
        methods = track.get("method") or [None] * len(track["frames"])
        iterations = track.get("iterations") or [None] * len(track["frames"])
        for t, box, method, it in zip(track["frames"], track["boxes"], methods, iterations):
            frames[t].append((np.asarray(box, np.float32), method, it))
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the clip, its output and files")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--method", default="pfgvm")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override an AttackConfig field, e.g. --set max_iter=120")
    parser.add_argument("--reuse", action="store_true", help="judge an output already in --out again")
    parser.add_argument("--plain", action="store_true",
                        help="without --small-faces (plain MTCNN, min_face 20, as vdeid runs 1080p by default)")
    parser.add_argument("--faces", default=str(SHARED / "data" / "faces"))
    parser.add_argument("--gallery", default=str(SHARED / "data" / "lfw_gallery"))
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "vdeid-bench" / "dlib-descriptors.npz"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not Path(args.faces).is_dir():
        sys.exit(f"real data not found at {args.faces}")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    run = args.method + ("_plain" if args.plain else "")
    clip, output = args.out / "aerial.mp4", args.out / f"aerial_{run}.mp4"
    tracks = args.out / f"tracks_{run}.json"

    dj = DlibJudge()
    splits = split_identities(args.faces, probes_per_identity=2, seed=0)
    gallery = build_gallery(dj, splits, DescriptorCache(Path(args.cache), dj), Path(args.gallery))
    if not (args.reuse and clip.is_file()):
        sprites = probe_sprites(splits, args.people)
        scene = AerialScene(width=1920, height=1080, n_frames=args.frames, n_people=len(sprites),
                            face_sizes=(16, 96), pan=(6.0, 2.0), zoom=1.2, shake=0.7, walk=0.8,
                            occlusions=2, occlusion_frames=(6, 10), seed=args.seed)
        write_clip(clip, scene, sprites)
    truth = read_truth(clip.with_suffix(".json"))
    if not (args.reuse and output.is_file()):
        config = Config(device="cpu", method=args.method)
        config.track.small_faces = not args.plain
        apply_attack_settings(config.attack, args.set)
        started = time.perf_counter()
        report = process_video(clip, output, config, tracks_out=tracks,
                               report_path=args.out / f"report_{run}.json")
        print(f"vdeid process: {time.perf_counter() - started:.0f} s, {report.faces} faces, "
              f"{report.fallback} fell back ({report.fallback_breakdown()})")
    shipped = shipped_faces(tracks, len(truth.frames))

    rows = defaultdict(lambda: defaultdict(list))
    linked: list[str] = []
    with open_video(clip) as src_in, open_video(output) as src_out:
        for t, (before, after, ft) in enumerate(zip(src_in.frames(), src_out.frames(), truth.frames)):
            before, after = before.image, after.image
            for pid, box, visible in zip(ft.ids, ft.boxes, ft.visible):
                cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                if not visible or not (0 <= cx < truth.width and 0 <= cy < truth.height):
                    continue
                identity = truth.names[pid]
                width = float(box[2] - box[0])
                r = rows[next(b for b in BUCKETS if b[0] <= width < b[1])]
                rect = dj.rect(box)
                ref = dj.descriptor(before, rect)
                hog = [dj.descriptor(after, h) for h in hog_boxes(dj, after, box)]
                tries = np.stack([dj.descriptor(after, rect)] + hog)
                d = np.linalg.norm(tries - ref, axis=1)
                clean_rank = int(gallery.ranks(ref[None], [identity])[0])
                r["clean1"].append(clean_rank == 1)
                r["d"].append(float(d.min()))
                if hog:
                    r["d_hog"].append(float(d[1:].min()))
                r["rank"].append(int(gallery.ranks(tries, [identity] * len(tries)).min()))
                method, it = "missed", None
                if shipped[t]:
                    iou = box_iou(box[None], np.stack([b for b, _, _ in shipped[t]]))[0]
                    if iou.max() >= 0.3:
                        method, it = shipped[t][int(np.argmax(iou))][1:]
                r["method"].append(method)
                if it is not None:
                    r["it"].append(it)
                if r["d"][-1] < 0.6 or r["rank"][-1] == 1:
                    linked.append(f"  frame {t}, {identity} ({width:.0f} px): d = {d[0]:.3f} at the box, "
                                  f"{d[1:].min() if hog else float('nan'):.3f} at HOG's, rank {r['rank'][-1]} "
                                  f"(unprotected: {clean_rank} at the box), "
                                  f"shipped {method} after {it} iterations")

    print(f"| face width | face-frames | clean Top-1 | shipped {args.method} / fallback / missed | median it "
          "| HOG finds | unlinkable, HOG's box | unlinkable, either box | min d | Top-1 protection |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    total = defaultdict(list)
    for bucket in BUCKETS + [None]:
        r = rows[bucket] if bucket else total
        if bucket:
            for k, v in r.items():
                total[k] += v
        if not r["d"]:
            continue
        d, d_hog = np.array(r["d"]), np.array(r["d_hog"])
        label = "all" if bucket is None else bucket_label(bucket)
        shipped_as = r["method"]
        methods = [shipped_as.count(args.method), sum(m not in (args.method, "missed") for m in shipped_as),
                   shipped_as.count("missed")]
        print(f"| {label} | {len(d)} | {np.mean(r['clean1']):.0%} | {' / '.join(map(str, methods))} "
              f"| {np.median(r['it']) if r['it'] else float('nan'):.0f} | {len(d_hog)} "
              f"| {np.sum(d_hog >= 0.6)} of {len(d_hog)} | {np.mean(d >= 0.6):.1%} ({int(np.sum(d >= 0.6))}) "
              f"| {d.min():.3f} | {np.mean(np.array(r['rank']) > 1):.1%} |")
    print("\n".join(["face-frames still linked (d < 0.6) or identified:"] + linked) if linked else "")


def bucket_label(bucket: tuple[int, int]) -> str:
    low, high = bucket
    return f"< {high} px" if low == 0 else f"≥ {low} px" if high > 1000 else f"{low}–{high} px"


def hog_boxes(dj: DlibJudge, image: np.ndarray, box: np.ndarray) -> list:
    """dlib rectangles (frame pixels) of HOG's faces over ``box``, found upsampled twice around it.

    dlib's HOG window is 80 px: upsampling the face's surroundings twice (4x)
    lets it find faces down to about 20 px, as an invader after small faces
    would run it. Faces overlapping ``box`` by more than half of it count.
    """
    side = float(box[2] - box[0])
    h, w = image.shape[:2]
    x0, y0 = int(max(0, box[0] - 1.5 * side)), int(max(0, box[1] - 1.5 * side))
    x1, y1 = int(min(w, box[2] + 1.5 * side)), int(min(h, box[3] + 1.5 * side))
    target = dj.rect(box)
    found = []
    for r in dj.detector(np.ascontiguousarray(image[y0:y1, x0:x1]), 2):
        r = dj.dlib.rectangle(r.left() + x0, r.top() + y0, r.right() + x0, r.bottom() + y0)
        if r.intersect(target).area() > 0.5 * target.area():
            found.append(r)
    return found


if __name__ == "__main__":
    main()
