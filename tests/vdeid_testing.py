"""Test helpers: run the CLI in-process, read videos back."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "astronaut_drone.mp4"
#: Where the tests run the library: ``VDEID_TEST_DEVICE=cuda python -m pytest -q`` repeats
#: them on a GPU (checked in conftest.py).
DEVICE = os.environ.get("VDEID_TEST_DEVICE", "cpu")


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run ``vdeid ARGS`` through the real entry point; return (exit code, stdout, stderr)."""
    from cli.main import main

    old = sys.argv
    sys.argv = ["vdeid", *map(str, args)]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    """Decoded RGB frames of a video, ``(H, W, 3)`` uint8 each."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if limit and len(frames) >= limit:
                break
    return frames


def audio_packets(path: Path) -> list[list[bytes]]:
    """Raw packet payloads of every audio stream, in stream order."""
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == "audio"]
        out: dict[int, list[bytes]] = {s.index: [] for s in streams}
        for packet in container.demux(*streams):
            if packet.size:
                out[packet.stream.index].append(bytes(packet))
        return [out[s.index] for s in streams]
