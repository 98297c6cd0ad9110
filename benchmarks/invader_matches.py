"""Which faces dlib's CNN pipeline still matches in a protected video, frame by frame.

``vdeid evaluate-video --invader`` gives the share of face-frames that still
match; this lists them: for every face dlib's CNN detector finds in the
original, the frame, its rectangle, the invader's distance in the protected
video (``DlibInvader.closest``) and the mean absolute change of the
rectangle's pixels (0-255). A change of several times the attack's budget
(``eps`` = 8) marks a fallback face, not an attacked one. Run::

    OMP_NUM_THREADS=1 python benchmarks/invader_matches.py ORIGINAL PROTECTED [--below 0.6]
"""

from __future__ import annotations

import argparse

import numpy as np

from vdeid.evaluate.invader import DlibInvader
from vdeid.io import open_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("original")
    parser.add_argument("protected")
    parser.add_argument("--below", type=float, default=DlibInvader.THRESHOLD, help="list faces closer than this")
    args = parser.parse_args()
    invader = DlibInvader()
    print("frame  rectangle (l, t, r, b)      distance  mean |change|")
    with open_video(args.original) as a, open_video(args.protected) as b:
        for n, (fa, fb) in enumerate(zip(a.frames(), b.frames())):
            rects = invader.detect(fa.image)
            if len(rects) == 0:
                continue
            for rect, d in zip(rects, invader.closest(fa.image, fb.image, rects)):
                if d < args.below:
                    h, w = fa.image.shape[:2]
                    l, t, r, bt = np.clip(rect, 0, [w, h, w, h])
                    change = np.abs(fa.image[t:bt, l:r].astype(int) - fb.image[t:bt, l:r]).mean()
                    print(f"{n:5d}  {str(rect.tolist()):26s} {d:9.3f}  {change:13.1f}")


if __name__ == "__main__":
    main()
