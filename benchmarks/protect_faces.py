"""Protect real face photos with the adversarial engine and judge them with real dlib.

Probes are two photos per identity of ``shared/data/faces`` (the first two in
name order). Each probe is protected by ``AdversarialMethod`` (the PyTorch
port of dlib's ResNet, MTCNN landmarks), written as PNG, read back and judged
by the real dlib (``dlib-bin``: HOG detector, 5-point shape predictor,
``face_recognition_model_v1``), which the attack never saw:

- unlinkability: the protected face's descriptor is at distance >= 0.6 from
  the original photo's descriptor (dlib's same-person threshold). The judge
  re-detects the face on the protected image and also tries the original's
  face rectangle, and keeps the *smaller* distance (the invader's best try);
- SSIM (scikit-image, ``data_range=255``) on the face box and on the whole
  image, and the L2 norm of the perturbation on [0, 1] pixels (the paper's
  Table 3 metrics);
- iterations per face, fallbacks, seconds per face.

``--h264`` also judges each protected photo after a one-frame H.264 round trip
(libx264, CRF 18, yuv420p), the compression a protected video goes through.
``--video PATH`` measures warm starts on the first frames of a clip.

Run (CPU, about 1 s per small face)::

    python benchmarks/protect_faces.py --limit 40 --methods pfgvm,ifgvm,ifgsm
    python benchmarks/protect_faces.py --limit 20 --methods pfgvm --h264
    python benchmarks/protect_faces.py --video ../shared/data/videos/CLIP --frames 24
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

from vdeid.config import Config  # noqa: E402
from vdeid.detect.mtcnn import FaceDetector  # noqa: E402
from vdeid.engine import AdversarialMethod  # noqa: E402
from vdeid.faces import Faces  # noqa: E402
from vdeid.recognizers import create_recognizer  # noqa: E402


class DlibJudge:
    """The real dlib pipeline (HOG detector + 5-point predictor + ResNet) as the invader."""

    def __init__(self):
        import dlib
        import face_recognition_models as frm

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.model = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def descriptor(self, image: np.ndarray, rect) -> np.ndarray:
        return np.asarray(self.model.compute_face_descriptor(image, self.predictor(image, rect)))

    def main_rect(self, image: np.ndarray, fallback_box: np.ndarray):
        found = self.detector(image, 1)
        if found:
            return max(found, key=lambda r: r.area()), True
        x0, y0, x1, y1 = (int(round(v)) for v in fallback_box)
        return self.dlib.rectangle(x0, y0, x1, y1), False

    def distance(self, original: np.ndarray, protected: np.ndarray, box: np.ndarray) -> tuple[float, bool]:
        """Smallest dlib distance the invader finds between the original face and the protected one."""
        rect, _ = self.main_rect(original, box)
        ref = self.descriptor(original, rect)
        rects = [rect]
        redetected = False
        for r in self.detector(protected, 1):
            if r.intersect(rect).area() > 0.5 * rect.area():
                rects.append(r)
                redetected = True
        d = min(float(np.linalg.norm(self.descriptor(protected, r) - ref)) for r in rects)
        return d, redetected


def probes(limit: int | None) -> list[Path]:
    files: list[Path] = []
    for person in sorted((SHARED / "data" / "faces").iterdir()):
        if person.is_dir():
            files += sorted(person.glob("*.jpg"))[:2]
    if limit and limit < len(files):
        step = len(files) / limit
        files = [files[int(i * step)] for i in range(limit)]
    return files


def h264_round_trip(image: np.ndarray, crf: int = 18) -> np.ndarray:
    """Encode one frame with libx264 (yuv420p, CRF ``crf``) and decode it back."""
    import io

    import av

    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as inp:
        decoded = next(inp.decode(video=0)).to_ndarray(format="rgb24")
    result = image.copy()
    result[:h, :w] = decoded
    return result


@dataclass
class Row:
    name: str
    size: int
    distance: float
    redetected: bool
    ssim_face: float
    ssim_image: float
    l2: float
    iterations: int
    reached: bool
    seconds: float
    h264_distance: float = float("nan")


def attack_config(args) -> Config:
    """``Config`` with ``--max-iter`` and every ``--set key=value`` applied to its attack section."""
    config = Config(device=args.device)
    if args.max_iter is not None:
        config.attack.max_iter = args.max_iter
    for item in args.set:
        key, _, text = item.partition("=")
        current = getattr(config.attack, key)
        if text.lower() in ("none", "null"):
            value = None
        elif isinstance(current, bool):
            value = text.lower() in ("1", "true", "yes", "on")
        elif current is None:
            value = float(text)
        else:
            value = type(current)(text)
        setattr(config.attack, key, value)
    return config


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    if min(a.shape[:2]) < 7:
        return float("nan")
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def run_photos(args) -> None:
    torch.set_num_threads(args.threads)
    judge = DlibJudge()
    config = attack_config(args)
    detector = FaceDetector(config.detect, config.device if config.device != "auto" else "cpu")
    recognizer = create_recognizer("dlib", "cuda" if args.device == "cuda" else "cpu")
    files = probes(args.limit)
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="vdeid-bench-"))
    print(f"{len(files)} probes from {SHARED / 'data' / 'faces'}; PNGs in {out_dir}")
    print(f"config.attack = {config.attack}")
    summary = []
    for method in args.methods.split(","):
        engine = AdversarialMethod(config, attack=method, recognizers=[recognizer])
        rows: list[Row] = []
        (out_dir / method).mkdir(parents=True, exist_ok=True)
        for path in files:
            image = np.asarray(Image.open(path).convert("RGB"))
            faces = detector.detect([image])[0]
            if len(faces) == 0:
                print(f"  {path.name}: MTCNN found no face, skipped")
                continue
            started = time.perf_counter()
            protected, outcomes = engine.protect_still(image, faces)
            seconds = time.perf_counter() - started
            target = int(np.argmax(faces.boxes[:, 2] - faces.boxes[:, 0]))
            png = out_dir / method / f"{path.parent.name}_{path.stem}.png"
            Image.fromarray(protected).save(png)
            written = np.asarray(Image.open(png).convert("RGB"))
            box = faces.boxes[target]
            d, redetected = judge.distance(image, written, box)
            x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
            x1, y1 = min(int(np.ceil(box[2])), image.shape[1]), min(int(np.ceil(box[3])), image.shape[0])
            o = outcomes[target]
            row = Row(
                name=f"{path.parent.name}/{path.name}",
                size=int(box[2] - box[0]),
                distance=d,
                redetected=redetected,
                ssim_face=ssim(image[y0:y1, x0:x1], written[y0:y1, x0:x1]),
                ssim_image=ssim(image, written),
                l2=float(np.linalg.norm((written.astype(np.float64) - image) / 255.0)),
                iterations=o.iterations,
                reached=bool(o.reached),
                seconds=seconds,
            )
            if args.h264:
                row.h264_distance = judge.distance(h264_round_trip(image), h264_round_trip(written), box)[0]
            rows.append(row)
            if args.verbose:
                print(
                    f"  {method:6s} {row.name[:48]:48s} {row.size:4d}px it={row.iterations:3d} "
                    f"{'ok ' if row.reached else 'FB '} d={row.distance:.3f} h264={row.h264_distance:.3f} "
                    f"ssim={row.ssim_face:.4f} {row.seconds:.1f}s",
                    flush=True,
                )
        summary.append((method, rows))
    print()
    print("| method | probes | unlinkable (d >= 0.6) | min d | mean SSIM face | mean SSIM image | mean L2 "
          "| median it | fallback | s/face |" + (" unlinkable after H.264 |" if args.h264 else ""))
    print("|---|---|---|---|---|---|---|---|---|---|" + ("---|" if args.h264 else ""))
    for method, rows in summary:
        d = np.array([r.distance for r in rows])
        line = (
            f"| {method} | {len(rows)} | {np.mean(d >= 0.6):.1%} | {d.min():.3f} "
            f"| {np.nanmean([r.ssim_face for r in rows]):.4f} | {np.nanmean([r.ssim_image for r in rows]):.4f} "
            f"| {np.mean([r.l2 for r in rows]):.2f} | {np.median([r.iterations for r in rows]):.0f} "
            f"| {sum(not r.reached for r in rows)} | {np.mean([r.seconds for r in rows]):.2f} |"
        )
        if args.h264:
            hd = np.array([r.h264_distance for r in rows])
            line += f" {np.mean(hd >= 0.6):.1%} (min {hd.min():.3f}) |"
        print(line)


def run_video(args) -> None:
    """Warm start on a real clip: iterations on a face's first frame vs the frames after."""
    import av

    torch.set_num_threads(args.threads)
    config = attack_config(args)
    detector = FaceDetector(config.detect, "cpu")
    recognizer = create_recognizer("dlib", "cpu")
    frames = []
    with av.open(str(args.video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= args.frames:
                break
    faces = detector.detect(frames)
    print(f"{args.video}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, "
          f"{sum(len(f) for f in faces)} faces, chunks of {args.chunk}")
    for warm in (False, True):
        config.attack.warm_start = warm
        engine = AdversarialMethod(config, attack="pfgvm", recognizers=[recognizer])
        infos, started, waves = [], time.perf_counter(), 0
        for start in range(0, len(frames), args.chunk):
            engine.protect(frames[start : start + args.chunk], faces[start : start + args.chunk])
            infos += engine.stats["faces"]
            waves += engine.stats["waves"]
        seconds = time.perf_counter() - started
        cold = [f["iterations"] for f in infos if not f["warm"]]
        warm_it = [f["iterations"] for f in infos if f["warm"]]
        fb = sum(not f["reached"] for f in infos)
        print(
            f"warm_start={warm}: faces={len(infos)} fallback={fb} waves={waves} "
            f"cold starts={len(cold)} median it={np.median(cold) if cold else float('nan'):.1f} | "
            f"warm starts={len(warm_it)} median it={np.median(warm_it) if warm_it else float('nan'):.1f} "
            f"(0 it: {sum(i == 0 for i in warm_it)}) | mean it={np.mean([f['iterations'] for f in infos]):.2f} "
            f"time={seconds:.1f}s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="probe subset size (evenly spaced)")
    parser.add_argument("--methods", default="pfgvm", help="comma-separated engine attacks")
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override an AttackConfig field, e.g. --set compression=false")
    parser.add_argument("--out", default=None, help="folder for the protected PNGs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--h264", action="store_true", help="also judge after an H.264 CRF 18 round trip")
    parser.add_argument("--video", default=None, help="measure warm starts on this clip instead")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if not (SHARED / "data").is_dir():
        sys.exit(f"real data not found at {SHARED}")
    if args.video:
        run_video(args)
    else:
        run_photos(args)


if __name__ == "__main__":
    main()
