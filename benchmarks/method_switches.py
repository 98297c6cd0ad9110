"""How often protected faces switch between the attack and its fallback along their tracks.

Reads the tracks files ``vdeid process --tracks-out`` writes (each face's
``method`` and ``fallback_reason``) and prints, per file:

- faces, and how many shipped with the fallback (``steady`` ones apart);
- switches: consecutive faces of a track, one perturbed and one not, where
  the face changes between sharp and blurred from one frame to the next;
- flashes: runs of at most ``--gap`` perturbed faces with fallback faces of
  the same track on both sides, a face that shows sharp for a frame or two
  between blurred frames (what ``AttackConfig.steady_gap`` removes).

Run::

    python benchmarks/method_switches.py /tmp/steady/s48_g0.tracks.json /tmp/steady/s48_g3.tracks.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def track_runs(methods: list[bool]) -> list[tuple[bool, int]]:
    """``(perturbed, length)`` of each maximal run of a track's faces, in frame order."""
    runs: list[tuple[bool, int]] = []
    for value in methods:
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1] + 1)
        else:
            runs.append((value, 1))
    return runs


def summarise(path: Path, gap: int) -> dict:
    tracks = json.loads(path.read_text())["tracks"]
    faces = fallback = steadied = switches = flashes = flashed_faces = 0
    for track in tracks:
        order = sorted(range(len(track["frames"])), key=lambda k: track["frames"][k])
        perturbed = [track["fallback_reason"][k] is None for k in order]
        frames = [track["frames"][k] for k in order]
        faces += len(perturbed)
        fallback += perturbed.count(False)
        steadied += sum(track["fallback_reason"][k] == "steady" for k in order)
        switches += sum(a != b and f1 - f0 == 1 for a, b, f0, f1 in zip(perturbed, perturbed[1:], frames, frames[1:]))
        runs = track_runs(perturbed)
        for before, run, after in zip(runs, runs[1:], runs[2:]):
            if run[0] and not before[0] and not after[0] and run[1] <= gap:
                flashes += 1
                flashed_faces += run[1]
    return {
        "faces": faces, "fallback": fallback, "steady": steadied, "switches": switches,
        "flashes": flashes, "faces in flashes": flashed_faces,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tracks", type=Path, nargs="+", help="tracks files from vdeid process --tracks-out")
    parser.add_argument("--gap", type=int, default=3, help="longest perturbed run counted as a flash")
    args = parser.parse_args()
    for path in args.tracks:
        row = summarise(path, args.gap)
        print(f"{path}: " + ", ".join(f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
