"""Do the naive methods, at their defaults, defeat face recognition?

For a few real photos per identity in ``../shared/data/faces``, the face is
found with MTCNN (the detector vdeid uses), protected with each naive method
at its default settings, and both versions are embedded with the real dlib
ResNet (``dlib-bin`` + the ``face_recognition_models`` weights). The
protected face is aligned with the 68 landmarks found on the *original*
photo: the attacker's best case, where protection does not disturb the
alignment. A face counts as de-identified when the distance between the two
128-d descriptors exceeds dlib's 0.6 same-person threshold.

Also reported: how often dlib's own HOG detector still finds a face in the
protected image (within the original face's box).

Usage::

    python benchmarks/naive_recognition.py [--per-identity 2] [--faces DIR]

The printed table is copied into ``docs/methods.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "faces"
THRESHOLD = 0.6

VARIANTS = {
    # label: (method name, NaiveConfig overrides)
    "blur": ("blur", {}),
    "pixelate": ("pixelate", {}),
    "mask (solid)": ("mask", {}),
    "mask (darken)": ("mask", {"mask_mode": "darken"}),
    "noise": ("noise", {}),
    "impulse": ("impulse", {}),
    "svd": ("svd", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=FACES, help="folder of <Identity>/*.jpg")
    parser.add_argument("--per-identity", type=int, default=2, help="photos per identity (sorted by name)")
    args = parser.parse_args()

    import dlib
    import face_recognition_models as frm
    import torch
    from facenet_pytorch import MTCNN

    from vdeid.config import Config, NaiveConfig
    from vdeid.faces import Faces
    from vdeid.io.images import read_image
    from vdeid.methods.registry import create_method

    torch.set_num_threads(1)
    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_model_location())
    resnet = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    mtcnn = MTCNN(keep_all=True, device="cpu")

    photos = []
    for folder in sorted(p for p in args.faces.iterdir() if p.is_dir()):
        photos.extend(sorted(folder.glob("*.jpg"))[: args.per_identity])

    distances = {label: [] for label in VARIANTS}
    redetected = {label: 0 for label in VARIANTS}
    face_sizes = []
    skipped = 0
    started = time.perf_counter()
    for photo in photos:
        image = read_image(photo)
        boxes, probs = mtcnn.detect(image)
        if boxes is None:
            skipped += 1
            continue
        box = boxes[int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))]
        # dlib's own face rectangle for the landmark model, matched to the MTCNN box.
        rects = [r for r in hog(image, 1) if _inside(r, box)]
        if not rects:
            skipped += 1
            continue
        rect = max(rects, key=lambda r: r.area())
        shape = predictor(image, rect)
        reference = np.array(resnet.compute_face_descriptor(image, shape))
        face_sizes.append(float(max(box[2] - box[0], box[3] - box[1])))
        faces = Faces.from_arrays(box[None])
        for label, (name, overrides) in VARIANTS.items():
            method = create_method(name, Config(method=name, naive=NaiveConfig(**overrides)))
            (protected,), _ = method.protect([image], [faces])
            # Landmarks re-fitted on the protected pixels inside the original
            # rectangle would be worse for the attacker; the original
            # landmarks are the upper bound on recognisability.
            descriptor = np.array(resnet.compute_face_descriptor(protected, shape))
            distances[label].append(float(np.linalg.norm(descriptor - reference)))
            redetected[label] += any(_inside(r, box) for r in hog(protected, 1))

    n = len(face_sizes)
    print(
        f"{n} faces from {len(photos)} photos ({skipped} without a face found by both detectors); "
        f"face size median {np.median(face_sizes):.0f} px (MTCNN box side); {time.perf_counter() - started:.0f} s"
    )
    print()
    print("| method (defaults) | de-identified (distance > 0.6) | median distance | min distance | dlib HOG still detects |")
    print("|---|---|---|---|---|")
    for label in VARIANTS:
        d = np.array(distances[label])
        print(
            f"| {label} | {np.mean(d > THRESHOLD):.0%} ({int(np.sum(d > THRESHOLD))}/{n}) | {np.median(d):.2f} "
            f"| {d.min():.2f} | {redetected[label] / n:.0%} |"
        )


def _inside(rect, box) -> bool:
    """True when a dlib rectangle's centre lies in an ``x0, y0, x1, y1`` box."""
    cx = (rect.left() + rect.right()) / 2
    cy = (rect.top() + rect.bottom()) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


if __name__ == "__main__":
    main()
