"""How far each naive fallback moves the faces the attack gave up on, by vdeid's own judge.

Reads the ``--tracks-out`` file of a ``vdeid process`` run (``benchmarks/protect_videos.py``
writes one) and takes the faces that shipped with the fallback. Each naive method of
``--methods``, over the face ellipse grown by each of ``--margins`` (``DetectConfig.box_margin``,
0.15 by default), is applied to those faces of the *original* frames (no encoder), and every face
is judged as the engine judges an attacked one (the PyTorch port of dlib's ResNet at vdeid's
alignment), against dlib's threshold 0.6:

- *own*: vdeid's alignment only;
- *views*: also the mirrored original and the alignment views (what the attack is held to).

Prints, per method and margin, how many faces stay within 0.6 of their original, and the median
distance. With ``--protected OUTPUT`` it also judges every face of the run, with views and
mirror, on the decoded output of the run itself, the attacked faces and those that shipped with
the fallback apart. Run::

    OMP_NUM_THREADS=1 python benchmarks/fallback_strength.py /tmp/win/street_48_71.mp4 \\
        /tmp/pv_s48_71/street_48_71.tracks.json --protected /tmp/pv_s48_71/street_48_71.mp4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from protect_videos import frames_of  # noqa: E402

from vdeid.config import Config  # noqa: E402
from vdeid.engine import ATTACK_METHODS, AdversarialMethod  # noqa: E402
from vdeid.methods.registry import create_method  # noqa: E402
from vdeid.track.tracks_io import read_tracks  # noqa: E402


def fallback_faces(tracks_path: Path) -> set[tuple[int, int]]:
    """``(frame, track id)`` of every face that shipped with something other than the attack."""
    raw = json.loads(tracks_path.read_text())
    return {
        (f, t["id"])
        for t in raw["tracks"]
        for f, m in zip(t["frames"], t.get("method", []))
        if m not in ATTACK_METHODS
    }


def judge(views: bool) -> AdversarialMethod:
    """An engine whose verification uses, or leaves out, the alignment views and the mirrored original."""
    config = Config(device="cpu")
    config.attack.alignment_views = config.attack.mirror = views
    return AdversarialMethod(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path, help="the original video the run protected")
    parser.add_argument("tracks", type=Path, help="the run's --tracks-out file")
    parser.add_argument("--methods", default="blur,pixelate,mask")
    parser.add_argument("--margins", type=float, nargs="+", default=[0.15])
    parser.add_argument("--protected", type=Path, help="the run's output, to judge as shipped")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tracks, fell = read_tracks(args.tracks), fallback_faces(args.tracks)
    variants = {}
    for name in args.methods.split(","):
        for margin in args.margins:
            config = Config(device="cpu")
            config.detect.box_margin = margin
            variants[(name, margin)] = create_method(name, config)
    engines = {"own": judge(False), "views": judge(True)}
    distances = {(v, e): [] for v in variants for e in engines}
    shipped: dict[bool, list[float]] = {True: [], False: []}  # fell back? -> distances on the output
    outputs = frames_of(args.protected) if args.protected else None
    for t, frame in enumerate(frames_of(args.clip)):
        faces = tracks.faces(t)
        if outputs is not None:
            out = next(outputs)
            if len(faces):
                jobs = _jobs(engines["views"], frame, faces)
                fell_back = [(t, j.track_id) in fell for j in jobs]
                for f, (_, d) in zip(fell_back, engines["views"]._judge([out], jobs, margin=0.0)):
                    shipped[f].append(d)
        pick = np.array([i for i, tid in enumerate(faces.track_ids) if (t, int(tid)) in fell], int)
        if not len(pick):
            continue
        faces = faces[pick]
        for e, engine in engines.items():
            jobs = _jobs(engine, frame, faces)
            if not jobs:
                continue
            for v, method in variants.items():
                (protected,), _ = method.protect([frame], [faces])
                distances[(v, e)] += [d for _, d in engine._judge([protected], jobs, margin=0.0)]
    print(f"{args.clip.name}: {len(fell)} faces shipped with the fallback")
    print("| method | margin | faces | within 0.6, own alignment | median d | within 0.6, with views and mirror | median d |")
    print("|---|---|---|---|---|---|---|")
    for (name, margin) in variants:
        own, views = (np.array(distances[((name, margin), e)]) for e in engines)
        print(
            f"| {name} | {margin} | {len(own)} | {int(np.sum(own < 0.6))} | {np.median(own):.3f} "
            f"| {int(np.sum(views < 0.6))} | {np.median(views):.3f} |"
        )
    for fell_back, d in shipped.items():
        if d:
            d = np.array(d)
            kind = "fallback" if fell_back else "attacked"
            print(f"{kind} faces as shipped: {len(d)}, within 0.6: {int(np.sum(d < 0.6))}, median d {np.median(d):.3f}")


def _jobs(engine: AdversarialMethod, frame: np.ndarray, faces) -> list:
    """The engine's jobs for ``faces`` of ``frame``, with their original crops and embeddings.

    The engine's own (private) job building and verification: the judge of
    an attacked face, applied here to any face.
    """
    jobs = [j for j in engine._make_jobs([frame], [faces]) if j.attackable]
    for job in jobs:
        job.x = engine._crop([frame], job)
    if jobs:
        engine._embed_references(jobs)
    return jobs


if __name__ == "__main__":
    main()
