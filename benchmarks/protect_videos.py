"""Protect real clips with ``vdeid process`` and judge the encoded output with real dlib.

For each clip (default: every video of ``shared/data/videos``):

1. ``vdeid process CLIP -o OUT/CLIP.mp4 --report OUT/CLIP.json`` with the
   shipped defaults (``pfgvm``, warm start, libx264/libx265 at CRF 18); the
   report gives the attack iterations on a track's first frame and on its
   later frames (warm-started), and the faces that fell back to blur;
2. the **invader**: real dlib (HOG detector, 5-point predictor, ResNet,
   which the attack never saw) finds the faces of each original frame and
   looks for each one in the *decoded* protected frame, at the face as HOG
   re-detects it there and at the original rectangle; a face-frame still
   **matches** when the smaller distance is below 0.6. HOG also finds the
   odd non-face, so each match is shown to dlib's CNN face detector too and
   listed; the table counts matches and CNN-confirmed matches;
3. a **cold start** for comparison: every face of ``--cold-frames`` frames
   spread over the clip (vdeid's detector) is protected from scratch
   (``warm_start=False``, otherwise the same engine, config and encoder
   check, one frame at a time).

The run's ``--tracks-out`` file says which faces fell back to blur; the
per-clip line counts those on the judged frames and how many of them real
dlib's HOG detector finds in the original frame (the rest are faces too
small, turned or blurred for it, or not faces at all).

Prints one markdown row per clip and a total. Run (CPU, one clip at a time;
minutes to an hour per clip)::

    OMP_NUM_THREADS=1 python benchmarks/protect_videos.py --out /tmp/vdeid-videos \\
        ../shared/data/videos/talking_head_woman_a.mp4 ../shared/data/videos/selfie_occluded_face_320x240.avi

``--reuse`` skips step 1 when the output and report already exist. ``--set
key=value`` (repeatable) changes an AttackConfig field for step 1, passed as
the ``vdeid process`` option of the same name, and for the cold starts of
step 3, e.g. ``--set detector_views=true --set max_iter=120``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _attack_settings import apply_attack_settings  # noqa: E402
from _dlib_reference import DlibJudge  # noqa: E402

from vdeid.config import Config  # noqa: E402
from vdeid.detect.mtcnn import FaceDetector  # noqa: E402
from vdeid.engine import ATTACK_METHODS, AdversarialMethod  # noqa: E402
from vdeid.io import VideoSink, open_video  # noqa: E402


def frames_of(path: Path):
    """Yield (H, W, 3) uint8 RGB frames of a video, in decode order, with PyAV's default conversion."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def process_flags(settings: list[str]) -> list[str]:
    """``vdeid process`` options for ``--set key=value`` items, named as the CLI names its fields.

    ``max_iter=120`` gives ``--max-iter 120``, ``mask_views=false`` gives
    ``--no-mask-views``; a field without such an option stops ``vdeid
    process`` with its usage error.
    """
    attack = Config().attack
    apply_attack_settings(attack, settings)  # typed as the fields are, so max_iter=1 stays a number
    flags = []
    for key in dict.fromkeys(item.partition("=")[0] for item in settings):
        value, flag = getattr(attack, key), key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            flags += [f"--{flag}", str(value)]
    return flags


def process(clip: Path, out: Path, report: Path, tracks: Path, reuse: bool, settings: list[str]) -> float:
    """Run ``vdeid process`` with its defaults and ``settings``; seconds of wall time (NaN when reused)."""
    if reuse and out.is_file() and report.is_file():
        return float("nan")
    cmd = ["vdeid", "process", str(clip), "-o", str(out), "--report", str(report), "-q", "--overwrite"]
    cmd += ["--tracks-out", str(tracks), *process_flags(settings)]
    exe = Path(sys.executable).with_name("vdeid")
    cmd[0] = str(exe) if exe.is_file() else cmd[0]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started


def judge_clip(judge: DlibJudge, clip: Path, protected: Path, stride: int) -> dict:
    """Real-dlib matches of each original face-frame in the decoded output."""
    judged = matched = confirmed = frames = 0
    distances, found, rects = [], [], {}
    for t, (orig, prot) in enumerate(zip(frames_of(clip), frames_of(protected))):
        if t % stride:
            continue
        frames += 1
        rects[t] = []
        for rect in judge.rects(orig):
            rects[t].append(((rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2))
            ref = judge.descriptor(orig, rect)
            d = min(float(np.linalg.norm(a - ref)) for a in judge.attempts(prot, rect))
            distances.append(d)
            judged += 1
            if d < judge.THRESHOLD:
                matched += 1
                is_face = judge.confirmed(orig, rect)
                confirmed += is_face
                note = "" if is_face else " (not a face to the CNN detector)"
                found.append(f"frame {t} {rect.width()} px d={d:.3f}{note}")
    return {
        "judged_frames": frames,
        "judged": judged,
        "matched": matched,
        "confirmed": confirmed,
        "distances": distances,
        "found": found,
        "rects": rects,
    }


def blurred_faces(tracks: Path, rects: dict) -> tuple[int, int]:
    """Faces that fell back to blur on the judged frames, and how many of them HOG finds in the original.

    A blurred face counts as one dlib finds when the centre of one of HOG's
    rectangles in the original frame lies inside its box.
    """
    if not tracks.is_file():
        return -1, -1
    blurred = found = 0
    for track in json.loads(tracks.read_text())["tracks"]:
        for t, box, method in zip(track["frames"], track["boxes"], track.get("method", [])):
            if t not in rects or method != "blur":
                continue
            blurred += 1
            x0, y0, x1, y1 = box
            found += any(x0 <= cx <= x1 and y0 <= cy <= y1 for cx, cy in rects[t])
    return blurred, found


def output_round_trip(clip: Path, config: Config):
    """The in-memory encoder round trip ``vdeid process`` would give ``clip``'s output."""
    with tempfile.TemporaryDirectory() as tmp, open_video(clip) as source:
        sink = VideoSink(Path(tmp) / "unused.mp4", source, config.encode)
        trip = sink.round_trip()
        sink.abort()
    return trip


def cold_iterations(clip: Path, n_frames: int, threads: int, settings: list[str]) -> list[tuple[int, bool]]:
    """``(iterations, reached)`` of faces protected from scratch on ``n_frames`` frames spread over the clip.

    The engine of ``vdeid process`` (same target, same encoder check through
    the clip's output encoder) without warm starts, one frame at a time.
    """
    torch.set_num_threads(threads)
    frames = list(frames_of(clip))
    picks = np.unique(np.linspace(0, len(frames) - 1, n_frames).round().astype(int))
    config = Config(device="cpu")
    apply_attack_settings(config.attack, settings)
    config.attack.warm_start = False
    detector = FaceDetector(config.detect, "cpu")
    engine = AdversarialMethod(config, attack="pfgvm", round_trip=output_round_trip(clip, config))
    out = []
    for t in picks:
        faces = detector.detect([frames[t]])[0]
        if len(faces):
            _, outcomes = engine.protect([frames[t]], [faces])
            engine.reset()
            out += [(o.iterations, bool(o.reached)) for o in outcomes if o.reached is not None]
    return out


def protected_later(tracks: Path) -> list[int]:
    """Iterations of the faces the attack protected on a track's later (warm-started) frames."""
    if not tracks.is_file():
        return []
    out = []
    for track in json.loads(tracks.read_text())["tracks"]:
        methods, iterations = track.get("method", []), track.get("iterations", [])
        out += [n for m, n in list(zip(methods, iterations))[1:] if m in ATTACK_METHODS and n is not None]
    return out


def median(xs) -> float:
    return float(np.median(xs)) if len(xs) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder for the protected clips and reports")
    parser.add_argument("--stride", type=int, default=1, help="judge every k-th frame")
    parser.add_argument("--cold-frames", type=int, default=12, help="frames protected from a cold start")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep existing outputs and reports")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="an AttackConfig field for vdeid process (as its option) and the cold starts, "
                        "e.g. --set max_iter=120 --set detector_views=true")
    args = parser.parse_args()
    clips = args.clips or sorted((SHARED / "data" / "videos").glob("*.*"))
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    judge = DlibJudge()

    rows = []
    for clip in clips:
        out, report_path = args.out / f"{clip.stem}.mp4", args.out / f"{clip.stem}.json"
        tracks = args.out / f"{clip.stem}.tracks.json"
        seconds = process(clip, out, report_path, tracks, args.reuse, args.settings)
        report = json.loads(report_path.read_text())
        verdict = judge_clip(judge, clip, out, args.stride)
        blurred, blurred_dlib = blurred_faces(tracks, verdict.pop("rects"))
        cold_faces = cold_iterations(clip, args.cold_frames, args.threads, args.settings)
        cold = [n for n, _ in cold_faces]
        it = report["iterations"]
        row = {
            "clip": clip.name,
            "frames": report["frames"],
            "faces": report["faces"],
            "fallback": report["fallback"],
            "seconds": seconds,
            "first": it["first_frame"],
            "later": it["later_frames"],
            "cold": cold,
            # The medians above mix two populations on hard clips: faces the
            # attack protects, and faces that use the whole budget and fall
            # back. These are the iterations it took to protect a face.
            "later_protected": protected_later(tracks),
            "cold_protected": [n for n, reached in cold_faces if reached],
            "blurred_judged": blurred,
            "blurred_dlib": blurred_dlib,
            **verdict,
        }
        rows.append(row)
        (args.out / f"{clip.stem}.bench.json").write_text(json.dumps(row))
        for line in verdict["found"]:
            print(f"  still matches: {clip.name} {line}")
        print(
            f"{clip.name}: {row['faces']} faces protected, {row['fallback']} fell back; dlib judged "
            f"{verdict['judged']} face-frames, {verdict['matched']} matched; iterations first/later/cold "
            f"{median(row['first']):.0f}/{median(row['later']):.0f}/{median(cold):.0f}; {seconds:.0f} s; "
            f"of {blurred} blurred faces on judged frames, HOG finds {blurred_dlib} in the original",
            flush=True,
        )

    print()
    print(
        "| clip | frames | faces protected | fell back to blur | dlib face-frames | still match (d < 0.6) "
        "| of which faces (CNN) | min d | median it, first frame | median it, later frames (warm) "
        "| median it, cold start | warm / cold |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    total = {"judged": 0, "matched": 0, "confirmed": 0, "later": [], "cold": []}
    for r in rows:
        share = r["matched"] / r["judged"] if r["judged"] else float("nan")
        mind = min(r["distances"]) if r["distances"] else float("nan")
        ratio = median(r["later"]) / median(r["cold"]) if r["cold"] else float("nan")
        print(
            f"| {r['clip']} | {r['frames']} | {r['faces']} | {r['fallback']} | {r['judged']} "
            f"| {r['matched']} ({share:.1%}) | {r['confirmed']} ({r['confirmed'] / max(r['judged'], 1):.1%}) "
            f"| {mind:.3f} | {median(r['first']):.0f} | {median(r['later']):.0f} "
            f"| {median(r['cold']):.0f} | {ratio:.2f} |"
        )
        total["judged"] += r["judged"]
        total["matched"] += r["matched"]
        total["confirmed"] += r["confirmed"]
        total["later"] += r["later"]
        total["cold"] += r["cold"]
    if total["judged"]:
        print(
            f"| all | | | | {total['judged']} | {total['matched']} ({total['matched'] / total['judged']:.1%}) "
            f"| {total['confirmed']} ({total['confirmed'] / total['judged']:.1%}) | | "
            f"| {median(total['later']):.0f} | {median(total['cold']):.0f} "
            f"| {median(total['later']) / median(total['cold']):.2f} |"
        )
    print()
    print("Faces the attack protected only (no fallback):")
    print()
    print("| clip | later frames protected | median it, later | cold faces protected | median it, cold | warm / cold |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        later, cold = r["later_protected"], r["cold_protected"]
        ratio = median(later) / median(cold) if cold else float("nan")
        print(
            f"| {r['clip']} | {len(later)} | {median(later):.0f} | {len(cold)} of {len(r['cold'])} "
            f"| {median(cold):.0f} | {ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
