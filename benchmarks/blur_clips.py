"""`vdeid process CLIP --method blur` on every clip of ../shared/data/videos, checked for stream fidelity.

For each clip: frame count, frame rate, size and frame timestamps equal to
the input's; audio packets bit-identical; no identifying tag value of the input (location,
make/model, the camera's encoder...) left in the container or its streams.
Prints a Markdown table (used in docs/video-io.md) and exits 1 if any check
fails.

    python benchmarks/blur_clips.py [--videos ../shared/data/videos] [--out /tmp/vdeid-blur-clips]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import av

from vdeid import Config, process_video
from vdeid.io.metadata import is_identifying

ROOT = Path(__file__).resolve().parents[1]
# Handler names FFmpeg's MP4 muxer writes on every stream it creates.
MUXER_DEFAULTS = {"VideoHandler", "SoundHandler"}


def stream_facts(path: Path) -> dict:
    """Frame count, rate, size, timestamps, audio payloads and identifying tags of ``path``."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = [s for s in container.streams if s.type == "audio"]
        pts, payloads = [], {s.index: [] for s in audio}
        for packet in container.demux(video, *audio):
            if packet.stream.type == "video":
                pts.extend(f.pts for f in packet.decode())
            elif packet.size:
                payloads[packet.stream.index].append(bytes(packet))
        tags = dict(container.metadata)
        for s in container.streams:
            tags.update({f"{s.type}:{k}": v for k, v in s.metadata.items()})
        return {
            "frames": len(pts),
            "rate": video.average_rate,
            "size": (video.width, video.height),
            "pts": sorted(p for p in pts if p is not None),
            "time_base": video.time_base,
            "audio": [payloads[s.index] for s in audio],
            "identifying": {k: v for k, v in tags.items() if is_identifying(k.split(":")[-1])},
            "subtitle_or_data": sum(s.type in ("subtitle", "data") for s in container.streams),
        }


def check_clip(clip: Path, out: Path) -> dict:
    config = Config(method="blur", overwrite=True)
    t0 = time.perf_counter()
    report = process_video(clip, out, config)
    seconds = time.perf_counter() - t0
    a, b = stream_facts(clip), stream_facts(out)
    # Our own muxer writes generic values under some of these keys (encoder
    # "Lavf...", handler "VideoHandler"): what must not survive is the input's.
    leaked = sorted(
        k
        for k, v in b["identifying"].items()
        if a["identifying"].get(k) == v and v not in MUXER_DEFAULTS and not v.startswith("Lavf")
    )
    same_pts = [p * a["time_base"] for p in a["pts"]] == [p * b["time_base"] for p in b["pts"]]
    return {
        "clip": clip.name,
        "frames": f"{a['frames']} → {b['frames']}",
        "fps": f"{float(a['rate']):.3f} → {float(b['rate']):.3f}",
        "size": f"{a['size'][0]}×{a['size'][1]} → {b['size'][0]}×{b['size'][1]}",
        "timestamps": "same" if same_pts else "DIFFER",
        "audio": "bit-identical" if a["audio"] == b["audio"] and a["audio"] else ("none" if not a["audio"] else "DIFFER"),
        "tags left": ", ".join(leaked) or "none",
        "faces": report.faces,
        "seconds": round(seconds, 1),
        "ok": a["frames"] == b["frames"]
        and a["rate"] == b["rate"]
        and a["size"] == b["size"]
        and same_pts
        and a["audio"] == b["audio"]
        and not leaked
        and not b["subtitle_or_data"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    parser.add_argument("--out", type=Path, default=Path("/tmp/vdeid-blur-clips"))
    args = parser.parse_args(argv)
    clips = sorted(p for p in args.videos.iterdir() if p.is_file())
    if not clips:
        print(f"no clips in {args.videos}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [check_clip(c, args.out / f"{c.stem}_blur{c.suffix}") for c in clips]
    cols = ["clip", "frames", "fps", "size", "timestamps", "audio", "tags left", "faces", "seconds"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
