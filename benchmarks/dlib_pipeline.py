"""vdeid's dlib recogniser against real dlib on real faces, and its CPU speed.

For every face of ``../shared/data/faces`` found by both pipelines:

* **same chip**: dlib's own chip (``dlib.get_face_chip``) through our network vs
  ``compute_face_descriptor``: max |Δ| per component;
* **full pipeline**: MTCNN → our alignment → our network vs dlib HOG (CNN when
  HOG finds nothing) → dlib 5-point predictor → dlib network: Euclidean
  distance per face, with the shape-predictor refinement (default) and with
  the fixed template (``refine=False``);
* **dlib vs dlib** (``--self-check``): how far real dlib's own descriptor moves
  when only its detector box changes (HOG box vs CNN box), for scale;
* **CNN pipeline** (``--cnn``): vdeid's port of dlib's CNN face detector →
  our shape predictor → our network vs real dlib's CNN detector → its
  predictor → its network, on every photo: boxes found by each, identical
  boxes, and the Euclidean distance per face.

Then the CPU time of forward + backward (gradient w.r.t. the input) at batch 1
and 16. Run:

    /work/venv/bin/python benchmarks/dlib_pipeline.py [--faces DIR] [--limit N] [--self-check K] [--cnn]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _dlib_reference import DEFAULT_FACES, Pairer, list_photos, load_rgb  # noqa: E402

from vdeid.recognizers.align import extract_dlib_chips  # noqa: E402
from vdeid.recognizers.dlib_resnet import load_dlib_resnet  # noqa: E402


def summary(values) -> str:
    v = np.asarray(values, np.float64)
    return (
        f"n={len(v)} mean={v.mean():.4f} median={np.median(v):.4f} p90={np.quantile(v, 0.9):.4f} "
        f"max={v.max():.4f} share<=0.05={np.mean(v <= 0.05):.2f} share<=0.1={np.mean(v <= 0.1):.2f}"
    )


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0


def agreement(args, model, pairer) -> None:
    import dlib

    same_chip, refined, template, self_check = [], [], [], []
    photos = list_photos(args.faces)[: args.limit]
    start = time.time()
    for path in photos:
        image = load_rgb(path)
        x = to_tensor(np.array(image))
        for pair in pairer.pairs(path, image):
            expected = np.array(pairer.recognizer.compute_face_descriptor(image, pair.shape))
            chip = dlib.get_face_chip(image, pair.shape, size=150, padding=0.25)
            landmarks = torch.from_numpy(pair.mtcnn_points)[None]
            with torch.no_grad():
                ours_chip = model.embed_chips(to_tensor(chip))[0].double().numpy()
                model.refine = True
                ours_refined = model(x, landmarks)[0].double().numpy()
                model.refine = False
                ours_template = model(x, landmarks)[0].double().numpy()
            same_chip.append(np.abs(ours_chip - expected).max())
            refined.append(np.linalg.norm(ours_refined - expected))
            template.append(np.linalg.norm(ours_template - expected))
            due = args.self_check and len(refined) % args.self_check == 0
            if due and pair.detector == "hog" and max(image.shape[:2]) <= 400:
                cnn = pairer.cnn(image, 1)
                if len(cnn):
                    other = pairer.predictor(image, cnn[0].rect)
                    d = np.array(pairer.recognizer.compute_face_descriptor(image, other))
                    self_check.append(np.linalg.norm(d - expected))
    model.refine = True
    print(f"{len(photos)} photos, {len(refined)} faces found by both pipelines ({time.time() - start:.0f} s)")
    print(f"same chip, max |descriptor diff| per face: max={max(same_chip):.2e} mean={np.mean(same_chip):.2e}")
    print("full pipeline, refine=True  (MTCNN box -> dlib 5-pt port):", summary(refined))
    print("full pipeline, refine=False (MTCNN_TEMPLATE):            ", summary(template))
    if self_check:
        print("real dlib, HOG box vs CNN box (same photo):             ", summary(self_check))


def cnn_agreement(args, model) -> None:
    """Our CNN-detector pipeline against real dlib's, face by face."""
    import dlib
    import face_recognition_models as frm

    from vdeid.detect.dlib_cnn import load_dlib_cnn_detector

    detector = load_dlib_cnn_detector()
    real_detector = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())
    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    recognizer = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    photos = list_photos(args.faces)[: args.limit]
    distances, truncated, score_diff, counts = [], [], [], {"real": 0, "ours": 0, "same box": 0}
    timings = {"real": 0.0, "ours": 0.0}
    for path in photos:
        image = load_rgb(path)
        start = time.perf_counter()
        found = real_detector(image, 0)
        timings["real"] += time.perf_counter() - start
        start = time.perf_counter()
        rects, scores = detector.detect(image)
        timings["ours"] += time.perf_counter() - start
        counts["real"] += len(found)
        counts["ours"] += len(rects)
        ours = {tuple(r): s for r, s in zip(rects.tolist(), scores)}
        x = to_tensor(np.array(image))
        for d in found:
            r = d.rect
            box = (r.left(), r.top(), r.right(), r.bottom())
            if box not in ours:
                continue
            counts["same box"] += 1
            score_diff.append(abs(ours[box] - d.confidence))
            expected = np.array(recognizer.compute_face_descriptor(image, predictor(image, r)))
            boxes = torch.tensor([[box]], dtype=torch.float64)
            with torch.no_grad():
                mine = model.embed_views(x, boxes[0])[0].double().numpy()
                # dlib truncates its chip to uint8; so does this second embedding.
                transforms = model.chip_transforms(x, torch.zeros(1, 5, 2), boxes)[:, 0]
                chip = torch.floor(extract_dlib_chips(x * 255, transforms, 150) + 1e-3) / 255
                chip_truncated = model.embed_chips(chip)[0].double().numpy()
            distances.append(np.linalg.norm(mine - expected))
            truncated.append(np.linalg.norm(chip_truncated - expected))
    print(
        f"CNN detector: {len(photos)} photos; real dlib found {counts['real']} faces, the port {counts['ours']}, "
        f"{counts['same box']} with the same box; max |score diff| {max(score_diff, default=0):.1e}; "
        f"detector time real {timings['real']:.0f} s, port {timings['ours']:.0f} s"
    )
    if distances:
        print("full CNN pipeline (port vs real dlib), Euclidean distance:", summary(distances))
        print("   with the chip truncated to uint8 as dlib does:          ", summary(truncated))


def timing(model, repeats: int) -> None:
    torch.manual_seed(0)
    for batch in (1, 16):
        chips = torch.rand(batch, 3, 150, 150, requires_grad=True)
        crops = torch.rand(batch, 3, 200, 200, requires_grad=True)
        landmarks = torch.tensor([[70.0, 85], [130, 85], [100, 115], [75, 145], [125, 145]]).expand(batch, 5, 2)
        for name, run in (
            ("embed_chips", lambda: model.embed_chips(chips).sum().backward()),
            ("align+embed (refine)", lambda: model(crops, landmarks).sum().backward()),
        ):
            run()  # warm-up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            # The minimum is the figure least disturbed by other processes.
            print(
                f"batch {batch:2d} {name:22s} forward+backward: min {min(times) * 1000:.0f} ms "
                f"({min(times) / batch * 1000:.0f} ms/face), median {np.median(times) * 1000:.0f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES)
    parser.add_argument("--limit", type=int, default=None, help="first N photos only")
    parser.add_argument(
        "--self-check",
        type=int,
        default=0,
        metavar="K",
        help="also measure dlib HOG vs CNN boxes on every K-th face (photos up to 400 px; slow)",
    )
    parser.add_argument("--cnn", action="store_true", help="also compare the CNN-detector pipelines")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = load_dlib_resnet()
    print(f"load_dlib_resnet: {time.perf_counter() - start:.2f} s; torch threads {torch.get_num_threads()}")
    start = time.perf_counter()
    model.shape_predictor  # noqa: B018 - load (from the cache when warm)
    print(f"shape predictor load: {time.perf_counter() - start:.2f} s")
    if not args.skip_agreement:
        agreement(args, model, Pairer())
    if args.cnn:
        cnn_agreement(args, model)
    timing(model, args.repeats)


if __name__ == "__main__":
    main()
