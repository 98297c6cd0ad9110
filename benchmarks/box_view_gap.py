"""How far an invader's start box can take dlib's chip from every alignment view the attack holds.

Reads a run of ``aerial_protection.py`` (``--out DIR``: the clip, its ground
truth and ``tracks_pfgvm.json``) and, for every ``--step``-th frame, each
visible ground-truth face that the output protected with landmarks:

- where the ground-truth box (MTCNN's box of the full-size photo, scaled with
  the face) lies relative to vdeid's own start box
  (:meth:`~vdeid.recognizers.dlib_resnet.DlibResNet.start_boxes`): its width
  ratio and its centre's shift in start-box sides;
- how far (chip pixels, largest over the chip's corners and centre) the
  chip that dlib's predictor gives from the ground-truth box lies from the
  nearest chip of vdeid's alignment views (its start box and
  :data:`~vdeid.recognizers.dlib_resnet.BOX_VIEWS`), and from the nearest
  once one more fixed view ``(scale, upward shift)`` is added;
- real dlib's descriptor distance, on the *unprotected* frame, between the
  chip from the ground-truth box and the chip from HOG's own box (HOG run
  on the face's surroundings upsampled twice, as in ``aerial_protection.py``):
  how different a face the two alignments show.

Run (after ``aerial_protection.py --out /tmp/aer_n``)::

    OMP_NUM_THREADS=1 python benchmarks/box_view_gap.py /tmp/aer_n
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _dlib_reference import DlibJudge  # noqa: E402
from aerial_protection import hog_boxes, shipped_faces  # noqa: E402

from vdeid.faces import box_iou  # noqa: E402
from vdeid.io.video_source import open_video  # noqa: E402
from vdeid.recognizers import dlib_resnet  # noqa: E402
from vdeid.recognizers.registry import create_recognizer  # noqa: E402
from vdeid.synthetic import read_truth  # noqa: E402

#: Extra fixed views tried: (scale of the start box, upward shift in its sides).
CANDIDATES = [(s, up) for s in (0.8, 0.9, 1.0) for up in (0.1, 0.2, 0.3)]
#: Chip probe points: corners and centre, as ``VIEW_TOLERANCE`` measures views.
_PROBE = torch.tensor([[0, 0, 1], [149, 0, 1], [0, 149, 1], [149, 149, 1], [74.5, 74.5, 1]], dtype=torch.float64)


def _key(box) -> tuple:
    return tuple(np.round(np.asarray(box, np.float32), 2).tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the --out folder of aerial_protection.py")
    parser.add_argument("--step", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rec = create_recognizer("dlib", "cpu")
    dj = DlibJudge()
    truth = read_truth(args.out / "aerial.json")
    tracks = json.loads((args.out / "tracks_pfgvm.json").read_text())
    landmarks: dict[tuple[int, tuple], list] = {}
    for track in tracks["tracks"]:
        for t, box, lm in zip(track["frames"], track["boxes"], track["landmarks"]):
            landmarks[(t, _key(box))] = lm
    shipped = shipped_faces(args.out / "tracks_pfgvm.json", len(truth.frames))
    rows = []
    with open_video(args.out / "aerial.mp4") as source:
        for frame in source.frames():
            t = frame.index
            if t % args.step or not shipped[t]:
                continue
            image = torch.from_numpy(frame.image).permute(2, 0, 1).float()[None] / 255
            ft = truth.frames[t]
            for pid, gt, visible in zip(ft.ids, ft.boxes, ft.visible):
                iou = box_iou(gt[None], np.stack([b for b, _, _ in shipped[t]]))[0]
                box, method, _ = shipped[t][int(np.argmax(iou))]
                lm = landmarks.get((t, _key(box)))
                if not visible or iou.max() < 0.3 or method != "pfgvm" or lm is None:
                    continue
                start = rec.start_boxes(torch.tensor([lm], dtype=torch.float32))[0]
                side, centre = (start[2:] - start[:2]).mean(), (start[:2] + start[2:]) / 2

                def view(scale: float, down: float) -> torch.Tensor:
                    c = centre + torch.tensor([0.0, down], dtype=torch.float64) * side
                    return torch.cat([c - scale * side / 2, c + scale * side / 2])

                own = [start] + [view(s, d) for s, d in dlib_resnet.BOX_VIEWS.tolist()]
                extra = [view(s, -up) for s, up in CANDIDATES]
                boxes = torch.stack(own + extra + [torch.tensor(gt, dtype=torch.float64)])
                transforms = rec._predicted_transforms(image, boxes[None])[0]
                points = torch.einsum("vij,pj->vpi", transforms, _PROBE)
                per_chip_px = transforms[-1, :, :2].norm(dim=0).mean()
                gap = (points - points[-1]).norm(dim=2).max(dim=1).values / per_chip_px
                nearest = float(gap[: len(own)].min())
                with_extra = [min(nearest, float(g)) for g in gap[len(own) : -1]]
                gt_rect = dj.rect(gt)
                hog = hog_boxes(dj, frame.image, gt)
                chip_d = (
                    float(np.linalg.norm(dj.descriptor(frame.image, gt_rect) - dj.descriptor(frame.image, hog[0])))
                    if hog
                    else float("nan")
                )
                gt_side = (gt[2] - gt[0] + gt[3] - gt[1]) / 2
                shift = (torch.tensor((gt[:2] + gt[2:]) / 2, dtype=torch.float64) - centre) / side
                rows.append((t, truth.names[pid], float(gt_side / side), float(-shift[1]), nearest, with_extra, chip_d))

    rel = np.array([[r[2], r[3]] for r in rows])
    nearest = np.array([r[4] for r in rows])
    tol = dlib_resnet.VIEW_TOLERANCE
    print(f"{len(rows)} protected faces checked (frames 0, {args.step}, {2 * args.step}, ...)")
    p10, p50, p90 = np.percentile(rel, [10, 50, 90], axis=0)
    print(f"ground-truth box / start box: width {p10[0]:.2f}-{p90[0]:.2f} (median {p50[0]:.2f}), "
          f"higher by {p10[1]:.2f}-{p90[1]:.2f} of a side (median {p50[1]:.2f}), 10th-90th percentile")
    print(f"its chip beyond {tol:g} chip px of every view: {int((nearest > tol).sum())} of {len(rows)}")
    for k, (s, up) in enumerate(CANDIDATES):
        print(f"  with a view at scale {s}, {up} higher: {sum(r[5][k] > tol for r in rows)}")
    print("| frame | face | chip px from the nearest view | with the best extra view "
          "| dlib d, ground-truth vs HOG chip (unprotected) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[4]:.1f} | {min(r[5]):.1f} | {r[6]:.3f} |")


if __name__ == "__main__":
    main()
