"""How small a face can be identified, and how small one the attack can protect.

Drone and crowd footage is full of faces 15-60 px high. This benchmark takes
one probe photo per identity of ``shared/data/faces`` (the split of
``protect_faces.py``: :func:`~vdeid.evaluate.identification.split_identities`,
seed 0, the first of its two probes), finds its face with MTCNN at full size,
and shrinks the photo (area averaging, as a camera further away samples it)
so the face box is ``S`` px wide, for each ``S`` of ``--sizes``. The small
photo is padded (mirrored) to at least 96 px so the encoder and the context
crop have room. At each size:

- **clean Top-1**: real dlib (``dlib-bin``: 5-point predictor and ResNet at
  the known face box, and at any HOG face overlapping it) identifies the
  small face among the identities, enrolled from their *other*, full-size
  photos, and the 1,500 LFW distractors (the gallery of
  ``protect_faces.py``): how much identity is left at that size at all;
- **pfgvm**: ``vdeid process``'s engine (default configuration, its target
  with ``video_margin``, judged after an in-memory H.264 CRF 18 round trip
  of the frame, blur where the attack misses) protects the face; the
  shipped frame, after that round trip, is judged by real dlib as above:
  unlinkable (distance to the original face at the same size >= 0.6) and
  Top-1 protection (its identity not ranked first); ``attack`` is the share
  the attack protected without falling back, with its median iterations;
- **blur**: the fallback alone (``blur``, default strength), judged the same way.

The invader gets the benefit of the doubt: it knows where the face is (the
box) and keeps its best try. Real dlib's descriptors of the gallery are
cached in ``--cache``. Run::

    OMP_NUM_THREADS=1 python benchmarks/face_size.py --sizes 20 28 40 56 80 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _attack_settings import apply_attack_settings  # noqa: E402
from _dlib_reference import DlibJudge, load_rgb  # noqa: E402
from protect_faces import DescriptorCache, build_gallery, h264_round_trip  # noqa: E402

from vdeid.config import Config  # noqa: E402
from vdeid.detect.mtcnn import FaceDetector  # noqa: E402
from vdeid.engine import AdversarialMethod  # noqa: E402
from vdeid.evaluate.identification import split_identities  # noqa: E402
from vdeid.faces import Faces  # noqa: E402
from vdeid.methods import create_method  # noqa: E402

#: Smallest side of a shrunk photo: room for the encoder's macroblocks and the context crop.
MIN_SIDE = 96


def shrink(image: np.ndarray, faces: Faces, side: int) -> tuple[np.ndarray, Faces]:
    """``image`` scaled so the first face's box is ``side`` px wide, mirrored out to :data:`MIN_SIDE`.

    Returns the ``(H, W, 3)`` uint8 image (even sides, for 4:2:0) and that
    one face, its box and landmarks scaled and moved with it.
    """
    s = side / float(faces.boxes[0, 2] - faces.boxes[0, 0])
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    pad_y, pad_x = max(0, (MIN_SIDE - sh + 1) // 2), max(0, (MIN_SIDE - sw + 1) // 2)
    out = cv2.copyMakeBorder(small, pad_y, pad_y + (sh + 2 * pad_y) % 2, pad_x, pad_x + (sw + 2 * pad_x) % 2,
                             cv2.BORDER_REFLECT_101)
    shift = np.array([pad_x, pad_y], np.float32)
    face = Faces.from_arrays(faces.boxes[:1] * s + np.tile(shift, 2), faces.landmarks[:1] * s + shift, faces.scores[:1])
    return out, face


def judge(dj: DlibJudge, gallery, identity: str, original: np.ndarray, shown: np.ndarray, box) -> tuple[float, int]:
    """Real dlib's smallest distance from ``shown``'s face to ``original``'s at ``box``, and the best rank."""
    rect = dj.rect(box)
    ref = dj.descriptor(original, rect)
    tries = np.stack(dj.attempts(shown, rect))
    return float(np.linalg.norm(tries - ref, axis=1).min()), int(gallery.ranks(tries, [identity] * len(tries)).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 28, 40, 56, 80])
    parser.add_argument("--faces", default=str(SHARED / "data" / "faces"))
    parser.add_argument("--gallery", default=str(SHARED / "data" / "lfw_gallery"))
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "vdeid-bench" / "dlib-descriptors.npz"))
    parser.add_argument("--limit", type=int, default=None, help="first N identities")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override an AttackConfig field, e.g. --set max_iter=120")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if not Path(args.faces).is_dir():
        sys.exit(f"real data not found at {args.faces}")
    torch.set_num_threads(args.threads)

    dj = DlibJudge()
    splits = split_identities(args.faces, probes_per_identity=2, seed=0)
    gallery = build_gallery(dj, splits, DescriptorCache(Path(args.cache), dj), Path(args.gallery))
    probes = [(s.identity, s.probes[0]) for s in splits][: args.limit]
    config = Config(device="cpu")
    apply_attack_settings(config.attack, args.set)
    detector = FaceDetector(config.detect, "cpu")
    trip = lambda frames: [h264_round_trip(f) for f in frames]  # noqa: E731
    engine = AdversarialMethod(config, attack="pfgvm", round_trip=trip)
    blur = create_method("blur", config)
    photos = []
    for identity, path in probes:
        image = load_rgb(path)
        faces = detector.detect([image])[0]
        if len(faces):
            main = int(np.argmax(faces.boxes[:, 2] - faces.boxes[:, 0]))
            photos.append((identity, path, image, faces[[main]]))
    print(f"{len(photos)} of {len(probes)} probes with a face; {len(gallery)} gallery identities")
    print(f"config.attack = {config.attack}")

    print("| face width | probes | clean Top-1 | pfgvm: attack protected | median it | unlinkable | Top-1 protection "
          "| blur: unlinkable | Top-1 protection | s/face |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for side in args.sizes:
        clean1, reached, iters, p_d, p_r, b_d, b_r, seconds = [], [], [], [], [], [], [], 0.0
        for identity, path, image, faces in photos:
            small, face = shrink(image, faces, side)
            box = face.boxes[0]
            clean1.append(judge(dj, gallery, identity, small, small, box)[1] == 1)
            engine.reset()
            started = time.perf_counter()
            out, outcomes = engine.protect([small], [face])
            seconds += time.perf_counter() - started
            reached.append(outcomes[0].reached)
            iters.append(outcomes[0].iterations)
            d, r = judge(dj, gallery, identity, small, h264_round_trip(out[0]), box)
            p_d.append(d)
            p_r.append(r)
            blurred = blur.protect([small], [face])[0][0]
            d, r = judge(dj, gallery, identity, small, h264_round_trip(blurred), box)
            b_d.append(d)
            b_r.append(r)
            if args.verbose:
                print(f"  {side:3d}px {identity[:28]:28s} clean1={clean1[-1]!s:5s} it={iters[-1]:3d} "
                      f"{'ok' if reached[-1] else 'FB'} pfgvm d={p_d[-1]:.3f} rank={p_r[-1]:4d} "
                      f"blur d={b_d[-1]:.3f} rank={b_r[-1]:4d}", flush=True)
        n = len(photos)

        def share(flags) -> str:
            return f"{np.mean(flags):.0%} ({int(np.sum(flags))})"

        print(f"| {side} px | {n} | {share(clean1)} | {share(reached)} | {np.median(iters):.0f} "
              f"| {share(np.array(p_d) >= 0.6)} | {share(np.array(p_r) > 1)} "
              f"| {share(np.array(b_d) >= 0.6)} | {share(np.array(b_r) > 1)} | {seconds / n:.1f} |", flush=True)


if __name__ == "__main__":
    main()
