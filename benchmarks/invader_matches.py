"""Which faces dlib still matches in a protected video, frame by frame.

``vdeid evaluate-video --invader`` gives the share of face-frames that still
match; this lists them. By default the judge is dlib's CNN pipeline
(``DlibInvader``): for every face its CNN detector finds in the original, the
frame, its rectangle, the invader's distance in the protected video
(``DlibInvader.closest``), the mean absolute change of the rectangle's pixels
(0-255) and the original's distance to a black frame
(``DlibInvader.blank_distance``). With ``--landmarks`` the judge is the one of
``evaluate-video``'s ``targets``: MTCNN finds the faces of the original and
dlib's ResNet embeds each at MTCNN's landmarks, in the original, the
protected frame and a black frame.

A change of several times the attack's budget (``eps`` = 8) marks a fallback
face, not an attacked one; a black-frame distance under 0.6 marks an original
the judge cannot tell from an empty frame, which a solid mask would "match"
too. Run::

    OMP_NUM_THREADS=1 python benchmarks/invader_matches.py ORIGINAL PROTECTED [--below 0.6] [--landmarks]
"""

from __future__ import annotations

import argparse
from typing import Iterator

import numpy as np

from vdeid.evaluate.invader import DlibInvader
from vdeid.io import open_video


def cnn_faces(original: np.ndarray, protected: np.ndarray, invader: DlibInvader) -> Iterator[tuple]:
    """``(rectangle, distance, black-frame distance)`` of each face dlib's CNN pipeline finds."""
    rects = invader.detect(original)
    if len(rects):
        yield from zip(rects, invader.closest(original, protected, rects), invader.blank_distance(original, rects))


def landmark_faces(original: np.ndarray, protected: np.ndarray, detector, recognizer) -> Iterator[tuple]:
    """The same at MTCNN's boxes and landmarks, embedded by vdeid's dlib ResNet."""
    from vdeid.evaluate.identification import embed_face

    faces = detector.detect([original])[0]
    black = np.zeros_like(original)
    for box, lm in zip(faces.boxes, faces.landmarks):
        if not np.isfinite(lm).all():
            continue
        ea, eb, e0 = (embed_face(f, lm, recognizer) for f in (original, protected, black))
        yield np.round(box).astype(np.int64), float(np.linalg.norm(ea - eb)), float(np.linalg.norm(ea - e0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("original")
    parser.add_argument("protected")
    parser.add_argument("--below", type=float, default=DlibInvader.THRESHOLD, help="list faces closer than this")
    parser.add_argument("--landmarks", action="store_true", help="judge at MTCNN's landmarks, not with dlib's CNN pipeline")
    args = parser.parse_args()
    if args.landmarks:
        from vdeid.detect import FaceDetector
        from vdeid.recognizers import create_recognizer

        detector, recognizer = FaceDetector(), create_recognizer("dlib", "cpu")
        judge = lambda a, b: landmark_faces(a, b, detector, recognizer)  # noqa: E731
    else:
        invader = DlibInvader()
        judge = lambda a, b: cnn_faces(a, b, invader)  # noqa: E731
    print("frame  rectangle (l, t, r, b)      distance  mean |change|  black frame")
    with open_video(args.original) as a, open_video(args.protected) as b:
        for n, (fa, fb) in enumerate(zip(a.frames(), b.frames())):
            for rect, d, db in judge(fa.image, fb.image):
                if d < args.below:
                    h, w = fa.image.shape[:2]
                    l, t, r, bt = np.clip(rect, 0, [w, h, w, h])
                    change = np.abs(fa.image[t:bt, l:r].astype(int) - fb.image[t:bt, l:r]).mean()
                    print(f"{n:5d}  {str(rect.tolist()):26s} {d:9.3f}  {change:13.1f}  {db:11.3f}")


if __name__ == "__main__":
    main()
