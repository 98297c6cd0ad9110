"""The run report's counting of face outcomes."""

from __future__ import annotations

import json

from vdeid.methods.base import FaceOutcome
from vdeid.report import Report


def _outcomes() -> list[FaceOutcome]:
    return [
        FaceOutcome(0, 3, "pfgvm", iterations=30, reached=True),
        FaceOutcome(0, 4, "blur", iterations=60, reached=False, fallback_reason="attack"),
        FaceOutcome(1, 3, "pfgvm", iterations=5, reached=True),
        FaceOutcome(1, 4, "blur", iterations=60, reached=False, fallback_reason="encoder"),
        FaceOutcome(2, 4, "blur", iterations=12, reached=False, fallback_reason="encoder"),
        FaceOutcome(2, -1, "blur", reached=False, fallback_reason="no_landmarks"),
    ]


def test_fallbacks_are_counted_by_reason(tmp_path):
    report = Report(input="in.mp4", output="out.mp4", config={})
    report.add_outcomes(_outcomes(), primary="pfgvm")
    assert report.fallback == 4
    assert report.fallback_reasons == {"attack": 1, "encoder": 2, "no_landmarks": 1}
    assert report.fallback_breakdown() == "encoder 2, attack 1, no_landmarks 1"
    # A track's first frame and its later ones are told apart; an untracked face is always a first.
    assert report.iterations_first == [30, 60, 0] and report.iterations_next == [5, 60, 12]
    report.write(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["fallback"] == 4 and data["fallback_reasons"] == {"attack": 1, "encoder": 2, "no_landmarks": 1}


def test_the_primary_method_is_no_fallback():
    report = Report(input="in.mp4", output="out.mp4", config={})
    report.add_outcomes([FaceOutcome(0, 1, "blur"), FaceOutcome(0, 2, "blur")], primary="blur")
    assert report.fallback == 0 and report.fallback_breakdown() == ""
    assert report.outcomes == {"blur": 2}
