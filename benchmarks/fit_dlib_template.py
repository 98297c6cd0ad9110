"""Fit the constants that map MTCNN's 5 landmarks onto dlib's face-chip geometry.

dlib defines its 150×150 chip from its own 5-point shape predictor (eye
corners, bottom of the nose), run inside a HOG-detector box. vdeid detects
with MTCNN (eye centres, nose tip, mouth corners), so
``vdeid/recognizers/dlib_resnet.py`` keeps two fitted constants, both in the
unit square of dlib's chip template (``align.DLIB_5POINT_TEMPLATE``):

* ``MTCNN_TEMPLATE`` (5, 2): where MTCNN's landmarks sit in dlib's chip, the
  mean over faces of MTCNN's points mapped through the inverse of dlib's chip
  transform. Used alone it aligns by a fixed template (``refine=False``).
* ``DLIB_BOX`` (4,): dlib's HOG box (left, top, right, bottom) in the same
  frame: each face's box is mapped through the inverse of the similarity from
  ``MTCNN_TEMPLATE`` to its MTCNN points, and the mean is kept. At run time
  this box seeds vdeid's port of dlib's shape predictor (the default path).

Only faces that dlib's HOG detector finds are used (its box is the one the
shape predictor was trained on). Run:

    /work/venv/bin/python benchmarks/fit_dlib_template.py [--faces ../shared/data/faces]

and paste the printed constants into ``vdeid/recognizers/dlib_resnet.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _dlib_reference import DEFAULT_FACES, Pairer, list_photos  # noqa: E402

from vdeid.recognizers.align import (  # noqa: E402
    DLIB_5POINT_TEMPLATE,
    similarity_transform,
    template_to_chip,
)
from vdeid.recognizers.dlib_resnet import CHIP_PADDING, CHIP_SIZE  # noqa: E402


def to_unit(points: np.ndarray) -> np.ndarray:
    """dlib chip-template coordinates → unit square (inverse of ``template_to_chip``)."""
    return points * (2 * CHIP_PADDING + 1) / CHIP_SIZE - CHIP_PADDING


def apply(matrices: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    return points @ matrices[:, :, :2].transpose(1, 2) + matrices[:, None, :, 2]


def inverse_apply(matrices: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    linear_inv = torch.linalg.inv(matrices[:, :, :2])
    return (points - matrices[:, None, :, 2]) @ linear_inv.transpose(1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES)
    args = parser.parse_args()

    pairer = Pairer(use_cnn_fallback=False)
    start = time.time()
    pairs = [p for path in list_photos(args.faces) for p in pairer.pairs(path)]
    pairs = [p for p in pairs if p.detector == "hog"]
    print(f"{len(pairs)} faces found by both dlib HOG and MTCNN ({time.time() - start:.0f} s)")

    dlib_pts = torch.tensor(np.stack([p.dlib_points for p in pairs]))
    mtcnn_pts = torch.tensor(np.stack([p.mtcnn_points for p in pairs]))
    rects = torch.tensor(np.array([p.rect for p in pairs], np.float64))

    # MTCNN's points in dlib's chip frame, averaged.
    dlib_template = template_to_chip(DLIB_5POINT_TEMPLATE, CHIP_SIZE, CHIP_PADDING)
    dlib_tf = similarity_transform(dlib_template, dlib_pts)
    in_chip = inverse_apply(dlib_tf, mtcnn_pts)
    template_chip = in_chip.mean(dim=0)
    spread = in_chip.std(dim=0).numpy() * (2 * CHIP_PADDING + 1) / CHIP_SIZE

    # dlib's HOG box in the frame that MTCNN_TEMPLATE defines.
    mtcnn_tf = similarity_transform(template_chip, mtcnn_pts)
    corners = torch.stack([rects[:, :2], rects[:, 2:]], dim=1)
    box_chip = inverse_apply(mtcnn_tf, corners).mean(dim=0)

    template_unit = to_unit(template_chip.numpy())
    box_unit = to_unit(box_chip.numpy()).reshape(-1)
    print("per-point std in unit-square units:", np.round(spread, 4).tolist())
    print("\nMTCNN_TEMPLATE = torch.tensor(\n    [")
    for x, y in template_unit:
        print(f"        [{x:.5f}, {y:.5f}],")
    print("    ],\n    dtype=torch.float64,\n)")
    print("DLIB_BOX = torch.tensor([" + ", ".join(f"{v:.5f}" for v in box_unit) + "], dtype=torch.float64)")


if __name__ == "__main__":
    main()
