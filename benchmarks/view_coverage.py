"""How far each alignment view of a face gets, and how much of it the perturbation may touch.

For one frame of a clip: vdeid's detector finds the faces; the engine attacks
them as a photo (``protect_still``, no encoder) with a fallback that leaves a
missed face with the attack's own pixels, so what the attack reached can be
measured. For each face and each of dlib's alignment views
(:meth:`~vdeid.recognizers.dlib_resnet.DlibResNet.alignment_views`: the start
boxes an invader's detector may give), it prints the view's start box, the
share of that box the perturbation ellipse covers (mean of the engine's
feathered mask over the box, inside the frame), and the dlib distance between
the view's descriptor of the original and of the attacked frame. A face
counts as protected only when every view clears the threshold plus the
margin; views with low coverage are the ones the attack cannot move.

Run::

    OMP_NUM_THREADS=1 python benchmarks/view_coverage.py ../shared/data/videos/selfie_occluded_face_320x240.avi \\
        --frame 41 [--max-iter 60]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from protect_videos import frames_of  # noqa: E402

from vdeid.config import Config  # noqa: E402
from vdeid.detect.mtcnn import FaceDetector  # noqa: E402
from vdeid.engine import AdversarialMethod  # noqa: E402
from vdeid.evaluate.runner import _KeepFallback  # noqa: E402
from vdeid.faces import expand_boxes  # noqa: E402
from vdeid.imageops import to_float  # noqa: E402
from vdeid.methods.mask import Region, box_region, ellipse_mask_in_region  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--max-iter", type=int, default=None, help="attack budget (default: the engine's)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    frame = next(f for t, f in enumerate(frames_of(args.clip)) if t == args.frame)
    config = Config(device="cpu")
    if args.max_iter is not None:
        config.attack.max_iter = args.max_iter
    faces = FaceDetector(config.detect, "cpu").detect([frame])[0]
    config.attack.harden_fallback = False  # the attack's own pixels, not a second attack on them
    engine = AdversarialMethod(config, attack="pfgvm", fallback=_KeepFallback())
    attacked, outcomes = engine.protect_still(frame, faces)
    rec = engine.recognizers[0]
    h, w = frame.shape[:2]
    whole = Region(0, h, 0, w)

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(to_float(image))).permute(2, 0, 1)[None]

    clean, adv = tensor(frame), tensor(attacked)
    target = rec.cfg.threshold + config.attack.margin
    print(f"{args.clip.name} frame {args.frame}: {len(faces)} face(s); target distance {target:.2f}")
    for i, outcome in enumerate(outcomes):
        box = faces.boxes[i]
        lm = torch.as_tensor(faces.landmarks[i : i + 1], dtype=torch.float32)
        mask = ellipse_mask_in_region(
            expand_boxes(faces.boxes[i : i + 1], config.detect.box_margin)[0], whole, feather=config.naive.feather
        )
        with torch.no_grad():
            own = float(rec.distance(rec(clean, lm), rec(adv, lm)))
            _, boxes = rec.alignment_views(clean, lm, torch.tensor([[0, 0, w, h]]))
            n = len(boxes)
            before = rec.embed_views(clean.expand(n, -1, -1, -1), boxes) if n else None
            after = rec.embed_views(adv.expand(n, -1, -1, -1), boxes) if n else None
        side = float(np.sqrt(np.prod(box[2:] - box[:2])))
        print(
            f"\nface {i}: box {np.round(box, 1).tolist()} ({side:.0f} px), {outcome.iterations} iterations, "
            f"reached {outcome.reached}; own alignment d = {own:.3f}; {n} further view(s)"
        )
        print("| view | start box | ellipse covers | d |")
        print("|---|---|---|---|")
        for k in range(n):
            x0, y0, x1, y1 = boxes[k].tolist()
            inside = mask[box_region((x0, y0, x1, y1), mask.shape).slices]
            cover = float(inside.mean()) if inside.size else 0.0
            d = float(rec.distance(before[k : k + 1], after[k : k + 1]))
            flag = " **short**" if d <= target else ""
            print(f"| {k} | {[round(v) for v in (x0, y0, x1, y1)]} | {cover:.2f} | {d:.3f}{flag} |")


if __name__ == "__main__":
    main()
