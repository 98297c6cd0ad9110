"""How far real dlib's chips lie from vdeid's, with and without alignment views.

For every ``--stride``-th frame of each clip, vdeid's detector (MTCNN) finds
the faces; real dlib's HOG and CNN detectors find theirs, and dlib's 5-point
predictor (run from dlib's box; vdeid's port gives the same points) defines
the chip real dlib would embed. For each dlib face the table reports the
distance, in chip pixels (largest displacement of the chip's corners and
centre, 150-px chip), from dlib's chip to vdeid's own chip and to the
nearest of vdeid's chips once :meth:`DlibResNet.alignment_views` adds its
views, plus how many faces get views and how many, and the side of HOG's
box relative to vdeid's start box (percentiles). Needs ``dlib``
(dlib-bin). Run::

    OMP_NUM_THREADS=1 python benchmarks/alignment_views.py --stride 4 ../shared/data/videos/*.*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from protect_videos import frames_of  # noqa: E402

from vdeid.detect.mtcnn import FaceDetector  # noqa: E402
from vdeid.recognizers.align import DLIB_5POINT_TEMPLATE, similarity_transform, template_to_chip  # noqa: E402
from vdeid.recognizers.dlib_landmarks import rgb_to_dlib_gray  # noqa: E402
from vdeid.recognizers.dlib_resnet import CHIP_PADDING, CHIP_SIZE, load_dlib_resnet  # noqa: E402

# Chip corners and centre, homogeneous chip pixels.
PROBE = torch.tensor(
    [[0, 0, 1], [149, 0, 1], [0, 149, 1], [149, 149, 1], [74.5, 74.5, 1]], dtype=torch.float64
)


def chip_gap(a: torch.Tensor, b: torch.Tensor, scale: float) -> float:
    """Largest displacement (chip pixels) between two chip → crop transforms ``(2, 3)``."""
    return float(((a @ PROBE.T) - (b @ PROBE.T)).norm(dim=0).max()) / scale


def vdeid_chips(model, detector, frame: np.ndarray):
    """vdeid's faces of a frame and their chips: ``(landmarks, crops, nominal, starts, owner, views)`` or None.

    ``nominal`` are vdeid's chip transforms ``(B, 2, 3)``, ``starts`` its start boxes, and
    ``views`` the transforms of the alignment views ``(N, 2, 3)`` (None when there are none),
    ``owner`` their faces.
    """
    faces = detector.detect([frame])[0]
    usable = np.isfinite(faces.landmarks).all(axis=(1, 2))
    if not usable.any():
        return None
    landmarks = torch.from_numpy(faces.landmarks[usable]).double()
    crops = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(255).expand(len(landmarks), -1, -1, -1)
    owner, boxes = model.alignment_views(crops, landmarks)
    views = model.chip_transforms(crops[owner], landmarks[owner], boxes[:, None])[:, 0] if len(owner) else None
    return landmarks, crops, model.chip_transforms(crops, landmarks), model.start_boxes(landmarks), owner, views


def measure(clip: Path, stride: int, model, detector, hog, cnn) -> dict:
    template = template_to_chip(DLIB_5POINT_TEMPLATE, CHIP_SIZE, CHIP_PADDING)
    own, nearest, views, with_views, hog_scale = [], [], [], 0, []
    faces_seen = 0
    for t, frame in enumerate(frames_of(clip)):
        if t % stride:
            continue
        found = vdeid_chips(model, detector, frame)
        if found is None:
            continue
        landmarks, crops, nominal, starts, owner, extra = found
        faces_seen += len(landmarks)
        with_views += len(set(owner.tolist()))
        views += [int((owner == b).sum()) for b in range(len(landmarks)) if bool((owner == b).any())]
        gray = rgb_to_dlib_gray(frame)
        up = 1 if max(frame.shape[:2]) <= 1000 else 0
        found = list(hog(frame, up))
        for n, rect in enumerate(found + [d.rect for d in cnn(frame, up)]):
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            theirs = similarity_transform(template, torch.from_numpy(model.shape_predictor(gray, box))[None])[0]
            centre = theirs @ PROBE[4]
            # The vdeid face whose chip centre is nearest dlib's (same face within half a chip).
            gaps = [float((nominal[b] @ PROBE[4] - centre).norm()) / float(nominal[b, :, 0].norm()) for b in range(len(nominal))]
            b = int(np.argmin(gaps))
            if gaps[b] > CHIP_SIZE / 2:
                continue
            scale = float(nominal[b, :, 0].norm())
            if n < len(found):
                hog_scale.append(rect.width() / float((starts[b, 2:] - starts[b, :2]).mean()))
            d = chip_gap(theirs, nominal[b], scale)
            own.append(d)
            mine = [] if extra is None else [chip_gap(theirs, e, scale) for e in extra[owner == b]]
            nearest.append(min([d] + mine))
    return {"faces": faces_seen, "with_views": with_views, "views": views, "own": np.array(own), "nearest": np.array(nearest),
            "hog_scale": np.array(hog_scale)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--stride", type=int, default=4, help="every k-th frame")
    args = parser.parse_args()
    import dlib
    import face_recognition_models as frm

    torch.set_num_threads(1)
    model, detector = load_dlib_resnet(), FaceDetector()
    hog = dlib.get_frontal_face_detector()
    cnn = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())
    print(
        "| clip | vdeid faces | with views | views per such face (median, max) | dlib faces | "
        "dlib chip to vdeid's, px (median / p90 / max) | to the nearest with views, px | "
        "HOG box side / vdeid's start box (p10 / p50 / p90 / max) |"
    )
    print("|---|---:|---:|---|---:|---|---|---|")
    for clip in args.clips:
        r = measure(clip, args.stride, model, detector, hog, cnn)
        views = f"{np.median(r['views']):.0f}, {max(r['views'])}" if r["views"] else "-"

        def stats(a):
            return " / ".join(f"{v:.1f}" for v in np.percentile(a, [50, 90, 100])) if len(a) else "-"

        def ratios(a):
            return " / ".join(f"{v:.2f}" for v in np.percentile(a, [10, 50, 90, 100])) if len(a) else "-"

        print(
            f"| {clip.name} | {r['faces']} | {r['with_views']} | {views} | {len(r['own'])} | "
            f"{stats(r['own'])} | {stats(r['nearest'])} | {ratios(r['hog_scale'])} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
