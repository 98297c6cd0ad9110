"""Why a protected face still matches: the encoder, or the invader's detector box?

For each face that real dlib still matches in a protected clip (from
``benchmarks/protect_videos.py``), at the given frames, print its distance to
the original face

- ``real@HOG``: real dlib from its own HOG box (what the benchmark judged);
- ``real@ours``: real dlib from vdeid's start box (:meth:`DlibResNet.start_boxes`);
- ``port``: vdeid's PyTorch port with vdeid's alignment (what the engine verified);

all on the decoded output. ``port`` ≈ ``real@ours`` ≫ ``real@HOG`` means the
perturbation survived the encoder but not the other alignment. Run::

    python benchmarks/start_box_gap.py ../shared/data/videos/street_pedestrians_1080p.mp4 \\
        /tmp/pv_street/street_pedestrians_1080p.mp4 --frames 2 6 8 9 48 72
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _dlib_reference import DlibJudge  # noqa: E402
from protect_videos import frames_of  # noqa: E402

from vdeid.detect.mtcnn import FaceDetector  # noqa: E402
from vdeid.recognizers import create_recognizers  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("protected", type=Path)
    parser.add_argument("--frames", type=int, nargs="+", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    judge, detector = DlibJudge(), FaceDetector()
    model = create_recognizers("dlib", "cpu")[0]
    print("| frame | HOG box px | vdeid start box px | real@HOG | real@ours | port |")
    print("|---|---|---|---|---|---|")
    for t, (orig, prot) in enumerate(zip(frames_of(args.clip), frames_of(args.protected))):
        if t not in args.frames:
            continue
        faces = detector.detect([orig])[0]
        for rect in judge.rects(orig):
            d_hog = float(np.linalg.norm(judge.descriptor(prot, rect) - judge.descriptor(orig, rect)))
            if d_hog >= judge.THRESHOLD or not len(faces):
                continue
            centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
            i = int(np.argmin(np.linalg.norm((faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2 - centre, axis=1)))
            lm = torch.as_tensor(faces.landmarks[i : i + 1], dtype=torch.float32)
            start = model.start_boxes(lm)[0].numpy()
            ours = judge.rect(start)
            d_ours = float(np.linalg.norm(judge.descriptor(prot, ours) - judge.descriptor(orig, ours)))
            side = start[2:] - start[:2]
            x0, y0 = np.maximum(start[:2] - side, 0).astype(int)
            x1, y1 = (start[2:] + side).astype(int)

            def embed(image):
                crop = torch.from_numpy(image[y0:y1, x0:x1].astype(np.float32) / 255).permute(2, 0, 1)[None]
                with torch.no_grad():
                    return model(crop, lm - torch.tensor([x0, y0]))

            port = float((embed(prot) - embed(orig)).norm())
            print(f"| {t} | {rect.width()} | {side.mean():.0f} | {d_hog:.3f} | {d_ours:.3f} | {port:.3f} |", flush=True)


if __name__ == "__main__":
    main()
