"""How often vdeid's port of dlib's 5-point shape predictor lands exactly where real dlib does.

For every ``--step``-th photo of ``../shared/data/faces`` (and the
scikit-image astronaut), draws ``--boxes`` random start boxes (centres in the
middle 40 % of the photo, sides 20 px to 0.6 of its short side, whole
pixels), runs real dlib's ``shape_predictor`` (``dlib-bin``) and vdeid's
``ShapePredictor`` from each, and counts the boxes where all five rounded
points are equal. The comparison uses only the public API, so a ``git
worktree`` of another commit measures that commit's port.

Then it times the port per box, on calls of 1 to 384 boxes on the astronaut:
on the host, and with ``--device cuda`` also with the cascade on the GPU (the
crops there, ``ShapePredictor.host_below`` 0), launched kernel by kernel and
replayed from CUDA graphs, and as the attack runs it (the default
``host_below``), which says where the GPU starts to pay.
``--no-reference`` skips the comparison (for a machine without ``dlib-bin``).
Run::

    OMP_NUM_THREADS=1 python benchmarks/shape_predictor_agreement.py
    python benchmarks/shape_predictor_agreement.py --no-reference --device cuda
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

from vdeid.recognizers.dlib_landmarks import load_shape_predictor, rgb_to_dlib_gray

SHARED = Path(__file__).resolve().parents[2] / "shared"


def random_boxes(rng: np.random.Generator, height: int, width: int, count: int) -> np.ndarray:
    """``(count, 4)`` whole-pixel ``left, top, right, bottom`` boxes inside the photo's middle."""
    centre = rng.uniform([width * 0.3, height * 0.3], [width * 0.7, height * 0.7], (count, 2))
    side = rng.uniform(20, min(height, width) * 0.6, (count, 1))
    return np.round(np.concatenate([centre - side / 2, centre + side / 2], axis=1))


def seconds_per_box(predictor, gray: torch.Tensor, boxes: torch.Tensor, repeats: int) -> float:
    """Mean seconds per box of ``predictor(gray, boxes)``, after one untimed call."""
    predictor(gray, boxes)
    if gray.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        predictor(gray, boxes)
    if gray.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats / len(boxes)


def compare(reference, ours, photos: list[np.ndarray], rng: np.random.Generator, count: int) -> None:
    """Print how many random start boxes give real dlib's points exactly."""
    import dlib

    total = equal = 0
    worst = []
    for photo in photos:
        gray = rgb_to_dlib_gray(photo)
        boxes = random_boxes(rng, *gray.shape, count)
        expected = np.stack(
            [
                np.array([[p.x, p.y] for p in reference(photo, dlib.rectangle(*map(int, box))).parts()])
                for box in boxes
            ]
        )
        got = ours(gray, boxes)
        total += len(boxes)
        equal += int((got == expected).all(axis=(1, 2)).sum())
        worst += list(np.abs(got - expected).max(axis=(1, 2)) / (boxes[:, 2] - boxes[:, 0]))
    print(f"{len(photos)} photos, {total} start boxes: {equal} equal to real dlib ({100 * equal / total:.2f} %)")
    print(f"largest difference: {max(worst):.3f} of the box side")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=SHARED / "data" / "faces")
    parser.add_argument("--step", type=int, default=5, help="every STEP-th photo (sorted by path)")
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--boxes", type=int, default=100, help="random start boxes per photo")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-reference", action="store_true", help="only time the port (no dlib-bin)")
    parser.add_argument("--device", default="cpu", help="also time the cascade on this device")
    args = parser.parse_args()

    ours = load_shape_predictor()
    photos = [skimage.data.astronaut()]
    rng = np.random.default_rng(args.seed)
    if not args.no_reference:
        import dlib
        import face_recognition_models as frm

        reference = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        if args.faces.is_dir():
            paths = sorted(args.faces.glob("*/*.jpg"))[:: args.step][: args.photos]
            photos += [np.asarray(Image.open(p).convert("RGB")) for p in paths]
        compare(reference, ours, photos, rng, args.boxes)

    gray = torch.from_numpy(rgb_to_dlib_gray(photos[0]))
    boxes = torch.from_numpy(random_boxes(rng, *gray.shape, 384))
    rows = [("host", "cpu", ours.host_below, True)]
    if args.device != "cpu":
        rows += [
            (f"{args.device}, kernel by kernel", args.device, 0, False),
            (f"{args.device}, CUDA graphs", args.device, 0, True),
            (f"{args.device}, as the attack runs it", args.device, ours.host_below, True),
        ]
    print("ms per box  " + "".join(f"{n:>9} boxes" for n in (1, 8, 32, 96, 384)))
    for name, device, host_below, graphs in rows:
        ours.host_below = host_below
        ours.graphs = graphs
        on = gray.to(device)
        times = [seconds_per_box(ours, on, boxes[:n].to(device), 20 if n < 96 else 3) for n in (1, 8, 32, 96, 384)]
        print(f"{name:<32}" + "".join(f"{1000 * t:15.3f}" for t in times))


if __name__ == "__main__":
    main()
