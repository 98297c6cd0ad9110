"""Where faces fall back to blur: in the attack loop (budget) or after the encoder.

Protects frames ``[--start, --start + --frames)`` of a clip chunk by chunk, as
``vdeid process`` does (its detector, tracker, engine and the output's
encoder round trip), and counts the blurred faces by the reason their
outcome gives (``FaceOutcome.fallback_reason``, as in the report of
``vdeid process``):

- *loop* (``attack``): missed its target on the written frames within its
  budget, and the encoder rounds, which also continue such faces with what
  budget they have left, did not rescue it; ``no_landmarks`` faces, which
  could not be attacked, are counted here too;
- *encoder*: passed on the written frames, then fell short after the encoder
  round trips;
- *by neighbour*: protected, until a neighbouring face's fallback reached
  into its crop and undid it, and attacking it again around the fallback's
  pixels did not protect it, so it is blurred too (``attacked_again`` counts
  the faces attacked again, ``attacked_again_protected`` those it saved);
- *steady*: protected, but blurred as a short run between blurred faces of
  its track (``AttackConfig.steady_gap``).

``hardened`` counts the blurred faces that shipped as ``blur+pfgvm``
(``--set harden_fallback=True``); ``reserved`` the faces given
``AttackConfig.encoder_reserve`` and ``reserved_protected`` those of them
the attack protected.

``--set key=value`` overrides an :class:`~vdeid.config.AttackConfig` field
(e.g. ``max_iter=120``, ``alpha=1.0``, ``lam=0``); ``--faces`` prints every
face, with its distance and shortfall at its last judgement (after the
encoder, where the encoder check ran). The summary also gives the protected
faces' perturbation: pixels changed per protected face (outside the regions
of faces that fell back) and the RMS change over them in grey levels. Run::

    OMP_NUM_THREADS=1 python benchmarks/fallback_trace.py CLIP --start 180 --frames 8 --faces
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _attack_settings import add_box_views_argument, apply_attack_settings, apply_box_views  # noqa: E402
from protect_videos import frames_of, output_round_trip  # noqa: E402

from vdeid.config import Config  # noqa: E402
from vdeid.detect.tiling import create_detector  # noqa: E402
from vdeid.engine import CONTEXT, AdversarialMethod  # noqa: E402
from vdeid.faces import expand_boxes  # noqa: E402
from vdeid.methods.mask import box_region  # noqa: E402
from vdeid.track.stage import track_faces  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--set", dest="settings", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--faces", action="store_true", help="print every face")
    parser.add_argument("--threads", type=int, default=1)
    add_box_views_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    apply_box_views(args.box_views)
    config = Config(device="cpu")
    apply_attack_settings(config.attack, args.settings)
    rows, perturbed, n_frames, seconds = protect_window(args.clip, args.start, args.frames, config)
    if args.faces:
        print(
            "| frame | track | side px | detected | warm | iterations | passed written | protected "
            "| last distance | shortfall | fallback reason |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            distance = "" if r["distance"] is None else f"{r['distance']:.3f}"
            print(
                f"| {r['frame']} | {r['track']} | {r['side']} | {r['detected']} | {r['warm']} "
                f"| {r['iterations']} | {r['written']} | {r['reached']} "
                f"| {distance} | {r['shortfall']:+.3f} | {r['reason'] or ''} |"
            )
    warm = [r["iterations"] for r in rows if r["warm"]]
    reasons = Counter(r["reason"] for r in rows if r["reason"])
    changes = np.concatenate(perturbed) if perturbed else np.zeros(0)
    summary = {
        "clip": args.clip.name,
        "frames": f"{args.start}-{args.start + n_frames - 1}",
        "settings": args.settings,
        "faces": len(rows),
        "blurred": sum(not r["reached"] for r in rows),
        "blurred_loop": reasons["attack"] + reasons["no_landmarks"],
        "blurred_encoder": reasons["encoder"],
        "blurred_by_neighbour": reasons["neighbour"],
        "blurred_steady": reasons["steady"],
        "attacked_again": sum(r["again"] for r in rows),
        "attacked_again_protected": sum(r["again"] and r["reached"] for r in rows),
        "hardened": sum(r["hardened"] for r in rows),  # of the blurred, shipped as blur+pfgvm (harden_fallback)
        "reserved": sum(r["reserved"] for r in rows),  # given AttackConfig.encoder_reserve
        "reserved_protected": sum(r["reserved"] and r["reached"] for r in rows),
        "iterations": sum(r["iterations"] for r in rows),
        "perturbed_px_per_face": round(len(changes) / max(1, sum(r["reached"] for r in rows))),
        "perturbation_rms": round(float(np.sqrt(np.mean(changes**2))), 2) if len(changes) else None,
        "median_warm": float(np.median(warm)) if warm else None,
        "seconds": round(seconds),
    }
    print(json.dumps(summary))


def protect_window(
    clip: Path,
    start: int,
    n_frames: int,
    config: Config,
    make_engine: Callable[..., AdversarialMethod] = AdversarialMethod,
) -> tuple[list[dict], list[np.ndarray], int, float]:
    """Protect frames ``[start, start + n_frames)`` of ``clip`` chunk by chunk, as ``vdeid process`` does.

    ``make_engine(config, attack=, round_trip=)`` builds the engine (a
    subclass can record what it does).

    Returns
    -------
    rows : list of dict
        Per face, the engine's ``stats["faces"]`` entry with the clip frame,
        track id, whether it was detected, its box side and its fallback reason.
    perturbed : list of ndarray
        Per frame, the protected faces' change per pixel (:func:`_perturbed_pixels`).
    n_frames : int
        Frames protected.
    seconds : float
        Wall time of the engine (detection and tracking left out).
    """
    frames = [f for t, f in enumerate(frames_of(clip)) if start <= t < start + n_frames]
    h, w = frames[0].shape[:2]
    detector = create_detector(config.detect, "cpu", (w, h), small_faces=config.track.small_faces)
    tracked = list(track_faces(zip(frames, detector.detect(frames)), config.track, frame_size=(w, h)))
    engine = make_engine(config, attack="pfgvm", round_trip=output_round_trip(clip, config))
    rows, perturbed, started = [], [], time.perf_counter()
    for c in range(0, len(tracked), config.chunk_frames):
        chunk = tracked[c : c + config.chunk_frames]
        originals = [f for f, _ in chunk]
        out, outcomes = engine.protect(originals, [fa for _, fa in chunk])
        for t, (before, after) in enumerate(zip(originals, out)):
            perturbed.append(_perturbed_pixels(before, after, chunk[t][1], [o for o in outcomes if o.frame == t]))
        for face, outcome in zip(engine.stats["faces"], outcomes):
            fa = chunk[face["frame"]][1]
            box = fa.boxes[face["face"]]
            face.update(
                frame=start + c + face["frame"],
                track=int(fa.track_ids[face["face"]]),
                detected=bool(fa.detected[face["face"]]),
                side=int(round(float(np.sqrt(np.prod(box[2:] - box[:2]))))),
                reason=outcome.fallback_reason,
            )
            rows.append(face)
    return rows, perturbed, len(tracked), time.perf_counter() - started


def _perturbed_pixels(before: np.ndarray, after: np.ndarray, faces, outcomes) -> np.ndarray:
    """Per pixel the attack changed, its RMS change over the channels in grey levels ``(n,)``.

    Pixels within the grown box (the engine's context) of a face that got the
    fallback are left out: what is left is the perturbation of the protected
    faces, with the encoder not yet applied.
    """
    changed = np.any(before != after, axis=2)
    for box, outcome in zip(expand_boxes(faces.boxes, CONTEXT), outcomes):
        if outcome.fallback_reason is not None:
            changed[box_region(box, changed.shape).slices] = False
    diff = after[changed].astype(np.float64) - before[changed]
    return np.sqrt((diff**2).mean(axis=1))


if __name__ == "__main__":
    main()
