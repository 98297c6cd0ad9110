"""Protect real face photos with the adversarial engine and judge them with real dlib.

The protocol of ``vdeid evaluate`` (Ghafourian et al.): in ``shared/data/faces``
two photos per identity are probes (:func:`~vdeid.evaluate.identification.split_identities`,
seed 0), the identity's other photos are its enrolment, and every photo of
``shared/data/lfw_gallery`` is a one-photo distractor identity. Each probe is
protected by :class:`~vdeid.engine.AdversarialMethod` (the PyTorch port of
dlib's ResNet, MTCNN landmarks), written as PNG, read back and judged by the
real dlib (``dlib-bin``: HOG detector, 5-point shape predictor,
``face_recognition_model_v1``), which the attack never saw:

- **unlinkability**: the protected face's descriptor is at distance >= 0.6
  from the original photo's (dlib's same-person threshold). The invader tries
  the face as HOG re-detects it on the protected image and the original's face
  rectangle, and keeps the *smaller* distance;
- **Top-1 protection success**: the probe's own identity is not the best
  match among enrolled identities and distractors (identity = unit mean of
  its photos' descriptors, cosine score, as ``vdeid evaluate``); again the
  invader keeps its best try. The clean probes' Top-1 identification rate is
  printed for scale;
- **SSIM** (scikit-image, ``data_range=255``) against the original photo,
  whole image and face box; the **L2** norm of the change on [0, 1] pixels
  (the P-FGVM paper's Table 3 metrics);
- iterations per face, fallbacks (faces the engine itself gave up on and
  blurred), seconds per face. With several methods, the same means again
  over the probes every method protected without a fallback.

A photo where MTCNN finds no face counts as a failure (nothing protected).
Real dlib's descriptors of the enrolment and distractor photos are cached in
``--cache``. ``--h264`` also judges each protected photo after a one-frame
H.264 round trip (libx264, CRF 18, yuv420p).

Run (CPU; ~2 s per LFW face, up to a minute for a 600 px face)::

    OMP_NUM_THREADS=1 python benchmarks/protect_faces.py --methods pfgvm,ifgvm,ifgsm --threads 1
    python benchmarks/protect_faces.py --limit 10 --methods pfgvm -v   # quick look
"""

from __future__ import annotations

import argparse
import io
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _attack_settings import apply_attack_settings  # noqa: E402
from _dlib_reference import DlibJudge, load_rgb  # noqa: E402

from vdeid.config import Config  # noqa: E402
from vdeid.detect.mtcnn import FaceDetector  # noqa: E402
from vdeid.engine import AdversarialMethod  # noqa: E402
from vdeid.evaluate.identification import IdentityGallery, distractor_photos, split_identities  # noqa: E402
from vdeid.recognizers import create_recognizer  # noqa: E402


def h264_round_trip(image: np.ndarray, crf: int = 18) -> np.ndarray:
    """Encode one frame with libx264 (yuv420p, CRF ``crf``) and decode it back."""
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


class DescriptorCache:
    """Real dlib's main-face descriptor of each photo, cached in an ``.npz`` (NaN: no face)."""

    def __init__(self, path: Path, judge: DlibJudge):
        self.path, self.judge = path, judge
        self.data: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path) as z:
                self.data = {k: z[k] for k in z.files}

    def __call__(self, paths: list[Path]) -> np.ndarray:
        """``(len(paths), 128)`` descriptors."""
        new = False
        for p in paths:
            key = str(p.resolve())
            if key not in self.data:
                d = self.judge.main_descriptor(load_rgb(p))
                self.data[key] = np.full(128, np.nan) if d is None else d
                new = True
        if new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self.path, **self.data)
        return np.stack([self.data[str(p.resolve())] for p in paths])


def build_gallery(judge: DlibJudge, splits, cache: DescriptorCache, gallery_dir: Path) -> IdentityGallery:
    """Enrolled identities (other photos) plus one-photo distractors, described by real dlib."""
    enrol = [(s.identity, p) for s in splits for p in s.enrol]
    emb = cache([p for _, p in enrol])
    ok = np.isfinite(emb).all(axis=1)
    distractors = distractor_photos(gallery_dir)
    demb = cache([p for _, p in distractors])
    dok = np.isfinite(demb).all(axis=1)
    print(
        f"gallery: {ok.sum()}/{len(enrol)} enrolment photos of {len(splits)} identities and "
        f"{dok.sum()}/{len(distractors)} distractors described by real dlib"
    )
    return IdentityGallery.build(
        emb[ok],
        [n for (n, _), k in zip(enrol, ok) if k],
        distractors=demb[dok],
        distractor_names=[n for (n, _), k in zip(distractors, dok) if k],
    )


@dataclass
class Row:
    name: str
    size: int
    distance: float
    rank: int
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
    apply_attack_settings(config.attack, args.set)
    return config


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    if min(a.shape[:2]) < 7:
        return float("nan")
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def judge_probe(judge: DlibJudge, gallery: IdentityGallery, identity: str, original, protected, box):
    """Smallest dlib distance to the original face and best (lowest) rank of the true identity."""
    rect = judge.rect(box)
    found = judge.rects(original)
    if found:  # the original face as dlib itself finds it, when it does
        rect = max(found, key=lambda r: r.intersect(rect).area())
    ref = judge.descriptor(original, rect)
    tries = np.stack(judge.attempts(protected, rect))
    d = float(np.linalg.norm(tries - ref, axis=1).min())
    rank = int(gallery.ranks(tries, [identity] * len(tries)).min())
    return d, rank


def quality_cells(rows: list) -> str:
    """Top-1 protection, mean SSIM (image, face), mean L2 and median iterations of ``rows`` as table cells."""
    ranks = np.array([r.rank for r in rows])
    return (
        f"{np.mean(ranks > 1):.1%} ({np.sum(ranks > 1)}/{len(ranks)}) "
        f"| {np.nanmean([r.ssim_image for r in rows]):.4f} | {np.nanmean([r.ssim_face for r in rows]):.4f} "
        f"| {np.mean([r.l2 for r in rows]):.2f} | {np.median([r.iterations for r in rows]):.0f}"
    )


def print_common(summary: list) -> None:
    """Quality over the probes that every method attacked to its target (none fell back).

    A blurred fallback changes a photo far more than any perturbation, so a
    method with one more fallback has a larger mean L2 whatever its update
    rule; on the common probes the means compare the attacks themselves.
    """
    common = set.intersection(*({r.name for r in rows if r.reached} for _, rows in summary))
    print()
    print(f"Probes every method protected without a fallback: {len(common)}")
    print()
    print("| method | Top-1 protection | mean SSIM image | mean SSIM face | mean L2 | median it |")
    print("|---|---|---|---|---|---|")
    for method, rows in summary:
        print(f"| {method} | {quality_cells([r for r in rows if r.name in common])} |")


def run_photos(args) -> None:
    torch.set_num_threads(args.threads)
    judge = DlibJudge()
    splits = split_identities(args.faces, probes_per_identity=2, seed=0)
    gallery = build_gallery(judge, splits, DescriptorCache(Path(args.cache), judge), Path(args.gallery))
    probes = [(s.identity, p) for s in splits for p in s.probes]
    if args.limit and args.limit < len(probes):
        step = len(probes) / args.limit
        probes = [probes[int(i * step)] for i in range(args.limit)]
    config = attack_config(args)
    detector = FaceDetector(config.detect, "cuda" if args.device == "cuda" else "cpu")
    recognizer = create_recognizer("dlib", "cuda" if args.device == "cuda" else "cpu")
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="vdeid-bench-"))
    print(f"{len(probes)} probes from {args.faces}; {len(gallery)} gallery identities; PNGs in {out_dir}")
    print(f"config.attack = {config.attack}")

    images, detections, clean_ranks = [], [], []
    for identity, path in probes:
        image = load_rgb(path)
        images.append(image)
        detections.append(detector.detect([image])[0])
        d = judge.main_descriptor(image)
        clean_ranks.append(len(gallery) + 1 if d is None else int(gallery.ranks(d[None], [identity])[0]))
    print(f"clean probes: Top-1 identification {np.mean(np.array(clean_ranks) == 1):.1%} by real dlib")

    summary = []
    for method in args.methods.split(","):
        engine = AdversarialMethod(config, attack=method, recognizers=[recognizer])
        rows: list[Row] = []
        (out_dir / method).mkdir(parents=True, exist_ok=True)
        for (identity, path), image, faces in zip(probes, images, detections):
            name = f"{identity}/{path.name}"
            if len(faces) == 0:
                print(f"  {name}: MTCNN found no face; counted as not protected")
                rows.append(Row(name, 0, 0.0, 1, 1.0, 1.0, 0.0, 0, False, 0.0, 0.0))
                continue
            started = time.perf_counter()
            protected, outcomes = engine.protect_still(image, faces)
            seconds = time.perf_counter() - started
            target = int(np.argmax(faces.boxes[:, 2] - faces.boxes[:, 0]))
            png = out_dir / method / f"{identity}_{path.stem}.png"
            Image.fromarray(protected).save(png)
            written = load_rgb(png)
            box = faces.boxes[target]
            d, rank = judge_probe(judge, gallery, identity, image, written, box)
            x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
            x1, y1 = min(int(np.ceil(box[2])), image.shape[1]), min(int(np.ceil(box[3])), image.shape[0])
            o = outcomes[target]
            row = Row(
                name=name,
                size=int(box[2] - box[0]),
                distance=d,
                rank=rank,
                ssim_face=ssim(image[y0:y1, x0:x1], written[y0:y1, x0:x1]),
                ssim_image=ssim(image, written),
                l2=float(np.linalg.norm((written.astype(np.float64) - image) / 255.0)),
                iterations=o.iterations,
                reached=bool(o.reached),
                seconds=seconds,
            )
            if args.h264:
                row.h264_distance = judge_probe(
                    judge, gallery, identity, h264_round_trip(image), h264_round_trip(written), box
                )[0]
            rows.append(row)
            if args.verbose:
                print(
                    f"  {method:6s} {row.name[:48]:48s} {row.size:4d}px it={row.iterations:3d} "
                    f"{'ok ' if row.reached else 'FB '} d={row.distance:.3f} rank={row.rank:4d} "
                    f"h264={row.h264_distance:.3f} ssim={row.ssim_image:.4f}/{row.ssim_face:.4f} {row.seconds:.1f}s",
                    flush=True,
                )
        summary.append((method, rows))

    print()
    print(
        "| method | probes | unlinkable (d >= 0.6) | min d | Top-1 protection | mean SSIM image | mean SSIM face "
        "| mean L2 | median it | fallback | s/face |" + (" unlinkable after H.264 |" if args.h264 else "")
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if args.h264 else ""))
    for method, rows in summary:
        d = np.array([r.distance for r in rows])
        line = (
            f"| {method} | {len(rows)} | {np.mean(d >= 0.6):.1%} ({np.sum(d >= 0.6)}/{len(d)}) | {d.min():.3f} "
            f"| {quality_cells(rows)} | {sum(not r.reached for r in rows)} | {np.mean([r.seconds for r in rows]):.2f} |"
        )
        if args.h264:
            hd = np.array([r.h264_distance for r in rows])
            line += f" {np.mean(hd >= 0.6):.1%} (min {hd.min():.3f}) |"
        print(line)
    if len(summary) > 1:
        print_common(summary)
    for method, rows in summary:
        for r in rows:
            if r.distance < 0.6 or r.rank == 1:
                print(f"  {method}: {r.name} ({r.size} px) d={r.distance:.3f} rank={r.rank} reached={r.reached}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default=str(SHARED / "data" / "faces"))
    parser.add_argument("--gallery", default=str(SHARED / "data" / "lfw_gallery"))
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "vdeid-bench" / "dlib-descriptors.npz"))
    parser.add_argument("--limit", type=int, default=None, help="probe subset size (evenly spaced)")
    parser.add_argument("--methods", default="pfgvm", help="comma-separated engine attacks")
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override an AttackConfig field, e.g. --set compression=false")
    parser.add_argument("--out", default=None, help="folder for the protected PNGs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--h264", action="store_true", help="also judge after an H.264 CRF 18 round trip")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if not Path(args.faces).is_dir():
        sys.exit(f"real data not found at {args.faces}")
    run_photos(args)


if __name__ == "__main__":
    main()
