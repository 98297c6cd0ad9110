"""Where dlib's CNN face detector boxes the faces vdeid protects, and whether the alignment views cover its chips.

For every ``--stride``-th frame of each clip, vdeid's detector (MTCNN) finds the faces and
vdeid's port of dlib's CNN face detector finds its own (the invader of ``vdeid evaluate-video
--invader``; upsample 0). Each CNN box is paired with the vdeid face whose start box
(:meth:`~vdeid.recognizers.dlib_resnet.DlibResNet.start_boxes`) has the nearest centre (within
half a side) and described relative to that start box: side ratio and centre shift in sides
(x right, y down). dlib's 5-point predictor from the CNN box defines the chip the invader
embeds; the table counts the faces whose chip lies more than 4 chip pixels (``VIEW_TOLERANCE``,
largest displacement of corners and centre) from vdeid's own chip and from every alignment view
(``AttackConfig.alignment_views`` without ``detector_views``), i.e. the faces whose protection the
attack never checked under this invader's alignment. Needs no dlib install. Run::

    OMP_NUM_THREADS=1 python benchmarks/cnn_views.py --stride 2 samples/astronaut_drone.mp4 \\
        ../shared/data/videos/broadcast_whitehouse_event_360p.mp4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _attack_settings import add_box_views_argument, apply_box_views  # noqa: E402
from alignment_views import chip_gap, vdeid_chips  # noqa: E402
from protect_videos import frames_of  # noqa: E402

from vdeid.detect.dlib_cnn import load_dlib_cnn_detector  # noqa: E402
from vdeid.detect.mtcnn import FaceDetector  # noqa: E402
from vdeid.recognizers.dlib_resnet import VIEW_TOLERANCE, load_dlib_resnet  # noqa: E402


def measure(clip: Path, stride: int, model, detector, cnn) -> np.ndarray:
    """Rows ``(frame, side ratio, shift x, shift y, chip gap to the nearest view)``, one per paired CNN face."""
    rows = []
    for t, frame in enumerate(frames_of(clip)):
        if t % stride:
            continue
        found = vdeid_chips(model, detector, frame)
        rects = cnn.detect(frame)[0]
        if found is None or not len(rects):
            continue
        landmarks, crops, nominal, starts, owner, views = found
        theirs = model.chip_transforms(
            crops[:1].expand(len(rects), -1, -1, -1), landmarks[:1].expand(len(rects), -1, -1),
            torch.as_tensor(rects, dtype=torch.float64)[:, None],
        )[:, 0]
        side = (starts[:, 2:] - starts[:, :2]).mean(dim=1).numpy()
        centre = ((starts[:, :2] + starts[:, 2:]) / 2).numpy()
        for rect, chip in zip(rects, theirs):
            c = (rect[:2] + rect[2:]) / 2
            gaps = np.linalg.norm(centre - c, axis=1) / side
            b = int(np.argmin(gaps))
            if gaps[b] > 0.5:
                continue
            scale = float(nominal[b, :, 0].norm())
            near = [chip_gap(chip, nominal[b], scale)]
            if views is not None:
                near += [chip_gap(chip, v, scale) for v in views[owner == b]]
            shift = (c - centre[b]) / side[b]
            rows.append([t, (rect[2] - rect[0]) / side[b], shift[0], shift[1], min(near)])
    return np.array(rows).reshape(-1, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--stride", type=int, default=2, help="every k-th frame")
    add_box_views_argument(parser)
    args = parser.parse_args()
    apply_box_views(args.box_views)
    torch.set_num_threads(1)
    model, detector, cnn = load_dlib_resnet(), FaceDetector(), load_dlib_cnn_detector()
    print(
        "| clip (stride) | CNN faces | side / start box (p10 / p50 / p90) | shift x, sides | shift y, sides | "
        f"chip > {VIEW_TOLERANCE:g} px from every view | gap, px (p50 / p90 / max) |"
    )
    print("|---|---:|---|---|---|---:|---|")

    def pct(a, fmt="{:.2f}"):
        return " / ".join(fmt.format(v) for v in np.percentile(a, [10, 50, 90]))

    for clip in args.clips:
        r = measure(clip, args.stride, model, detector, cnn)
        if not len(r):
            print(f"| {clip.name} ({args.stride}) | 0 | – | – | – | – | – |", flush=True)
            continue
        gap = " / ".join(f"{v:.1f}" for v in np.percentile(r[:, 4], [50, 90, 100]))
        print(
            f"| {clip.name} ({args.stride}) | {len(r)} | {pct(r[:, 1])} | {pct(r[:, 2])} | {pct(r[:, 3])} | "
            f"{int((r[:, 4] > VIEW_TOLERANCE).sum())} | {gap} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
