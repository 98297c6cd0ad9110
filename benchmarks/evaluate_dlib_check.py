"""Independent check of ``vdeid evaluate``: unlinkability by real dlib vs vdeid's dlib port.

For the probes and protected crops an earlier ``vdeid evaluate`` run left in
its cache, real dlib (dlib-bin: HOG detector, 5-point shape predictor,
``face_recognition_model_v1``, which cuts its chip with ``get_face_chip``)
measures the distance between each original and protected face; the share at
or above 0.6 is compared with the evaluation's own dlib unlinkability
(vdeid's PyTorch port, MTCNN landmarks). Agreement within sampling error
means each rate lies in the other's 95 % Wilson interval.

Usage (after the evaluation, same options)::

    python benchmarks/evaluate_dlib_check.py --cache eval-out/cache \\
        --faces ../shared/data/faces --gallery ../shared/data/lfw_gallery --probes 1 \\
        --methods none,blur,pixelate,noise,svd,pca,hypersphere --attacks pfgvm,bim:8,illc:8

Prints one markdown row per method.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vdeid.evaluate.metrics import unlinkability_rate, wilson_interval
from vdeid.evaluate.runner import Evaluation, EvaluationSpec, MethodRun


class RealDlib:
    """dlib's own pipeline: HOG face, 5 landmarks, 128-D descriptor."""

    def __init__(self):
        import dlib
        import face_recognition_models as frm

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def rect(self, image: np.ndarray, box: np.ndarray):
        found = list(self.detector(image, 1))
        if not found:
            return self.dlib.rectangle(*(int(round(v)) for v in box))
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return min(found, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)

    def descriptor(self, image: np.ndarray, rect) -> np.ndarray:
        shape = self.predictor(image, rect)
        return np.asarray(self.net.compute_face_descriptor(np.ascontiguousarray(image), shape))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, type=Path)
    ap.add_argument("--faces", required=True, type=Path)
    ap.add_argument("--gallery", required=True, type=Path)
    ap.add_argument("--probes", type=int, default=1)
    ap.add_argument("--limit-identities", type=int, default=None)
    ap.add_argument("--methods", default="none,blur,pixelate,noise,svd,pca,hypersphere")
    ap.add_argument("--attacks", default="pfgvm,bim:8,illc:8", help="attack[:eps], crafted on dlib")
    ap.add_argument("--source", default="dlib")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    spec = EvaluationSpec(
        args.faces, args.gallery, methods=[], sources=[args.source], targets=["dlib"],
        probes_per_identity=args.probes, limit_identities=args.limit_identities, jpeg=(), resize=False,
    )
    ev = Evaluation(spec, args.cache)
    ev.prepare()
    runs = [MethodRun(m) for m in args.methods.split(",") if m]
    for a in args.attacks.split(","):
        if a:
            name, _, eps = a.partition(":")
            runs.append(MethodRun(name, args.source, float(eps) if eps else None))
    real = RealDlib()
    originals = {p.key: (real.rect(p.image, p.box), real.descriptor(p.image, real.rect(p.image, p.box))) for p in ev.probes}
    print(f"{len(ev.probes)} probes")
    print("| method | variant | n | unlinkable %, vdeid (95% CI) | unlinkable %, real dlib (95% CI) | same decision % | mean abs distance diff |")
    print("|:---|---|---:|---:|---:|---:|---:|")
    for run in runs:
        protected = ev.protect(run, ev.probes)
        variants = ["attack", "shipped"] if run.adversarial else ["-"]
        for v in variants:
            ours, theirs = [], []
            for p in ev.probes:
                img = protected[p.key]["variants"][v]
                ours.append(ev.measure(p, img, "none")["dlib"]["distance"])
                rect, ref = originals[p.key]
                theirs.append(float(np.linalg.norm(ref - real.descriptor(img, rect))))
            ours, theirs = np.array(ours), np.array(theirs)
            n = len(ours)
            a, b = unlinkability_rate(ours, 0.6), unlinkability_rate(theirs, 0.6)
            ca = wilson_interval(int(round(a * n / 100)), n)
            cb = wilson_interval(int(round(b * n / 100)), n)
            same = 100.0 * np.mean((ours >= 0.6) == (theirs >= 0.6))
            print(
                f"| {run.label}{'' if run.source is None else ' / ' + run.source.partition(':')[0]} | {v} | {n} "
                f"| {a:.1f} ({ca[0]:.0f}–{ca[1]:.0f}) | {b:.1f} ({cb[0]:.0f}–{cb[1]:.0f}) | {same:.0f} "
                f"| {np.abs(ours - theirs).mean():.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
