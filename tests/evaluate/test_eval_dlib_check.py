"""Independent check: the evaluation's dlib unlinkability agrees with real dlib.

Real dlib (the dlib-bin wheel: HOG detector, 5-point shape predictor,
``face_recognition_model_v1``, whose ``compute_face_descriptor`` cuts the
chip with ``get_face_chip``) judges the same original and protected crops
the evaluation judged with vdeid's PyTorch port of the dlib ResNet. The two
unlinkability rates must agree within sampling error: each lies inside the
other's 95 % Wilson interval, and the per-face distances are close.
"""

from __future__ import annotations

import numpy as np
import pytest

from vdeid.evaluate.metrics import unlinkability_rate, wilson_interval
from vdeid.evaluate.runner import Evaluation, EvaluationSpec, MethodRun

pytestmark = pytest.mark.slow

dlib = pytest.importorskip("dlib", reason="real dlib (dlib-bin) is the reference")
frm = pytest.importorskip("face_recognition_models")

class RealDlib:
    def __init__(self):
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def rect(self, image, box):
        found = list(self.detector(image, 1))
        if found:
            # The detection nearest the MTCNN face.
            c = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            return min(found, key=lambda r: (r.center().x - c[0]) ** 2 + (r.center().y - c[1]) ** 2)
        return dlib.rectangle(*(int(round(v)) for v in box))

    def descriptor(self, image, rect):
        shape = self.predictor(image, rect)
        return np.asarray(self.net.compute_face_descriptor(np.ascontiguousarray(image), shape))


@pytest.fixture(scope="module")
def evaluated(tiny):
    spec = EvaluationSpec(tiny / "faces", tiny / "gallery", methods=[], sources=["dlib"], targets=["dlib"],
                          probes_per_identity=1, jpeg=(), resize=False)
    ev = Evaluation(spec, tiny / "cache")
    runs = [MethodRun("noise"), MethodRun("bim", "dlib", 4.0)]
    result = ev.run(runs)
    return ev, runs, result


@pytest.mark.parametrize("label", ["noise", "bim ε=4"])
def test_unlinkability_agrees_with_real_dlib(evaluated, label):
    ev, runs, result = evaluated
    run = next(r for r in runs if r.label == label)
    variant = "attack" if run.adversarial else "-"
    records = {r["probe"]: r for r in result["records"] if r["label"] == label and r["variant"] == variant}
    protected = ev.protect(run, ev.probes)
    real = RealDlib()
    ours, theirs = [], []
    for p in ev.probes:
        img = protected[p.key]["variants"][variant]
        rect = real.rect(p.image, p.box)
        theirs.append(float(np.linalg.norm(real.descriptor(p.image, rect) - real.descriptor(img, rect))))
        ours.append(records[str(p.path)]["distance"])
    ours, theirs = np.array(ours), np.array(theirs)
    n = len(ours)
    assert n == 8
    rate_ours, rate_real = unlinkability_rate(ours, 0.6), unlinkability_rate(theirs, 0.6)
    lo, hi = wilson_interval(round(rate_ours * n / 100), n)
    lo2, hi2 = wilson_interval(round(rate_real * n / 100), n)
    assert lo <= rate_real <= hi and lo2 <= rate_ours <= hi2, (label, ours.round(3), theirs.round(3))
    # Face by face, the distances agree to well within the threshold's scale
    # (real dlib aligns with its own landmarks, vdeid with MTCNN's).
    assert np.abs(ours - theirs).mean() < 0.1, (ours.round(3), theirs.round(3))
