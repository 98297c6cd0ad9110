"""Throughput figures for docs/performance.md: blur vs deface, P-FGVM on a short clip, the attack kernel.

Three measurements, each in fresh processes through the real command-line
tools, printed as one markdown report:

1. **Blur path vs deface**: ``vdeid process CLIP --method blur`` and
   ``deface CLIP`` alternate (A B A B ...) ``--repeats`` times on the same
   clip; wall time, CPU time (user + system, children included) and the load
   average before each run are recorded, and the ratio of the median wall
   times vdeid / deface is reported (target: at most 1.0). deface must be
   installed separately, e.g. in its own virtual environment::

       python3 -m venv ../deface-venv && ../deface-venv/bin/pip install deface

2. **P-FGVM end to end**: ``vdeid bench`` on the first ``--pfgvm-frames``
   frames of the clip (re-encoded losslessly to a temporary file), for the
   per-stage table and the attack's face-iterations/s.
3. **Attack kernel**: ``vdeid bench --no-pipeline`` at batch 1, 16, 64, 256.
4. **Detector**: facenet-pytorch's ``detect_face`` against vdeid's
   :func:`~vdeid.detect.cascade.detect_cascade` (same networks) on 4 frames
   of the clip, alternating, in this process; CPU seconds per frame.

Run (about 25 minutes on 2 CPU cores)::

    python benchmarks/throughput.py --clip ../shared/data/videos/street_pedestrians_1080p.mp4 \\
        --deface ../deface-venv/bin/deface

``--skip-blur`` / ``--skip-deface`` / ``--skip-pfgvm`` / ``--skip-kernel`` /
``--skip-detector`` leave parts out;
``--json FILE`` also saves every raw figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

# As the vdeid command sets it (cli/main.py), before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "street_pedestrians_1080p.mp4"


def vdeid_command() -> list[str]:
    """The ``vdeid`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("vdeid")
    if script.is_file():
        return [str(script)]
    found = shutil.which("vdeid")
    if found is None:
        sys.exit("vdeid is not installed in this environment (pip install -e .)")
    return [found]


def timed(cmd: list[str]) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds of the child, load average before."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "load_before": load, "stdout": done.stdout}


def head_clip(src: Path, dst: Path, frames: int) -> None:
    """The first ``frames`` frames of ``src``, re-encoded near-losslessly (x264 CRF 0, no audio)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        rate = vin.average_rate or Fraction(25)
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.options = {"crf": "0", "preset": "ultrafast"}
        for n, frame in enumerate(inp.decode(vin)):
            if n >= frames:
                break
            frame.pts = None
            for packet in vout.encode(frame):
                out.mux(packet)
        for packet in vout.encode():
            out.mux(packet)


def blur_vs_deface(clip: Path, deface: str | None, repeats: int, tmp: Path) -> dict:
    runs: dict[str, list[dict]] = {"vdeid": [], "deface": []}
    for r in range(repeats):
        out = tmp / f"vdeid_{r}.mp4"
        report = tmp / f"vdeid_{r}.json"
        runs["vdeid"].append(
            timed([*vdeid_command(), "process", str(clip), "-o", str(out), "--method", "blur", "-q",
                   "--overwrite", "--report", str(report)])
        )
        runs["vdeid"][-1]["timings_s"] = json.loads(report.read_text())["timings_s"]
        runs["vdeid"][-1]["faces"] = json.loads(report.read_text())["faces"]
        print(f"  vdeid  run {r + 1}: {runs['vdeid'][-1]['wall_s']:.1f} s", file=sys.stderr)
        if deface:
            runs["deface"].append(timed([deface, str(clip), "-o", str(tmp / f"deface_{r}.mp4")]))
            print(f"  deface run {r + 1}: {runs['deface'][-1]['wall_s']:.1f} s", file=sys.stderr)
    for rows in runs.values():
        for row in rows:
            row.pop("stdout", None)
    summary = {
        tool: {
            "median_wall_s": statistics.median(r["wall_s"] for r in rows),
            "median_cpu_s": statistics.median(r["cpu_s"] for r in rows),
        }
        for tool, rows in runs.items()
        if rows
    }
    if "deface" in summary:
        summary["ratio_wall"] = summary["vdeid"]["median_wall_s"] / summary["deface"]["median_wall_s"]
        summary["ratio_cpu"] = summary["vdeid"]["median_cpu_s"] / summary["deface"]["median_cpu_s"]
    return {"runs": runs, "summary": summary}


def detector_ab(clip: Path, repeats: int, frames: int = 4) -> dict:
    """CPU seconds per frame of facenet-pytorch's MTCNN and of vdeid's cascade, alternating."""
    import numpy as np
    import torch
    from facenet_pytorch.models.utils.detect_face import detect_face

    from vdeid.config import DetectConfig
    from vdeid.detect import FaceDetector
    from vdeid.io import open_video

    with open_video(clip) as source:
        images = [f.image for _, f in zip(range(frames), source.frames())]
    detector = FaceDetector(DetectConfig(batch_size=frames), "cpu")
    m, cfg = detector._mtcnn, detector.config

    def facenet():
        with torch.no_grad():
            detect_face(np.stack(images), cfg.min_face, m.pnet, m.rnet, m.onet, list(cfg.thresholds), m.factor, "cpu")

    def vdeid():
        detector.detect(images)

    runs: dict[str, list] = {"facenet-pytorch": [], "vdeid": []}
    facenet(), vdeid()  # warm-up
    for _ in range(repeats):
        for name, fn in (("facenet-pytorch", facenet), ("vdeid", vdeid)):
            t = os.times()
            start = time.perf_counter()
            fn()
            wall = time.perf_counter() - start
            u = os.times()
            runs[name].append({"wall_s": wall, "cpu_s": (u.user - t.user) + (u.system - t.system)})
    return {
        "frames": len(images),
        "size": list(images[0].shape[:2]),
        "torch_threads": torch.get_num_threads(),
        "runs": runs,
        "cpu_s_per_frame": {k: min(r["cpu_s"] for r in v) / len(images) for k, v in runs.items()},
        "wall_s_per_frame": {k: statistics.median(r["wall_s"] for r in v) / len(images) for k, v in runs.items()},
    }


def bench(args: list[str]) -> dict:
    run = timed([*vdeid_command(), "bench", "--json", "-q", *args])
    return json.loads(run["stdout"])


def markdown(result: dict) -> str:
    from cli.bench import format_bench

    lines = [f"# vdeid throughput, {time.strftime('%Y-%m-%d %H:%M')}", ""]
    host = result["host"]
    lines += [
        f"Host: {host['cpu']}, {host['cores']} cores, {host['memory_gib']:.0f} GiB RAM, {host['system']}.",
        f"Clip: {result['clip']}.",
        "Load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}; at the end: {:.2f} {:.2f} {:.2f}.".format(
            *result["load_start"], *result["load_end"]
        ),
        "",
    ]
    bd = result.get("blur")
    if bd:
        s = bd["summary"]
        lines += ["## Blur path vs deface", "", "| run | tool | wall s | CPU s | load before |", "|---|---|---|---|---|"]
        for tool, rows in bd["runs"].items():
            for n, row in enumerate(rows, 1):
                lines.append(f"| {n} | {tool} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | {row['load_before']:.2f} |")
        lines.append("")
        for tool in ("vdeid", "deface"):
            if tool in s:
                lines.append(f"- {tool}: median wall {s[tool]['median_wall_s']:.1f} s, median CPU {s[tool]['median_cpu_s']:.1f} s")
        if "ratio_wall" in s:
            lines.append(f"- ratio vdeid / deface: wall {s['ratio_wall']:.2f}, CPU {s['ratio_cpu']:.2f} (target: wall <= 1.0)")
        stages = bd["runs"]["vdeid"][0]["timings_s"]
        lines.append(f"- vdeid stage seconds (first run): {json.dumps(stages)}")
        lines.append("")
    det = result.get("detector")
    if det:
        h, w = det["size"]
        lines += [
            f"## Detector ({det['frames']} frames of {w}x{h}, torch {det['torch_threads']} threads)",
            "",
            "| detector | CPU s / frame (min) | wall s / frame (median) |",
            "|---|---|---|",
        ]
        for name in det["runs"]:
            lines.append(f"| {name} | {det['cpu_s_per_frame'][name]:.3f} | {det['wall_s_per_frame'][name]:.3f} |")
        lines.append("")
    for key, title in (("pfgvm", "## P-FGVM end to end"), ("kernel", "## Attack kernel")):
        if result.get(key):
            lines += [title, "", "```", format_bench(result[key]), "```", ""]
    return "\n".join(lines)


def host() -> dict:
    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem, "system": platform.platform()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="Clip for every measurement (default: the 1080p street clip).")
    ap.add_argument("--deface", default=shutil.which("deface"), help="deface executable (default: the one on PATH).")
    ap.add_argument("--repeats", type=int, default=3, help="Runs of each tool, interleaved.")
    ap.add_argument("--pfgvm-frames", type=int, default=10, help="Frames of the clip protected with P-FGVM.")
    ap.add_argument("--kernel-batches", default="1,16,64,256")
    ap.add_argument("--kernel-iters", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--skip-deface", action="store_true", help="Time vdeid's blur path only.")
    ap.add_argument("--skip-blur", action="store_true")
    ap.add_argument("--skip-pfgvm", action="store_true")
    ap.add_argument("--skip-kernel", action="store_true")
    ap.add_argument("--skip-detector", action="store_true")
    ap.add_argument("--json", type=Path, help="Also write every raw figure here.")
    args = ap.parse_args()
    if not args.clip.is_file():
        sys.exit(f"{args.clip}: clip not found (pass --clip)")
    deface = None if args.skip_deface else args.deface
    if not args.skip_deface and not deface:
        sys.exit("deface not found: install it in its own venv and pass --deface PATH, or --skip-deface")
    result: dict = {"host": host(), "clip": str(args.clip), "load_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="vdeid-throughput-") as tmp:
        tmp = Path(tmp)
        if not args.skip_blur:
            print("blur vs deface ...", file=sys.stderr)
            result["blur"] = blur_vs_deface(args.clip, deface, args.repeats, tmp)
        if not args.skip_pfgvm:
            print(f"P-FGVM on {args.pfgvm_frames} frames ...", file=sys.stderr)
            head = tmp / "head.mp4"
            head_clip(args.clip, head, args.pfgvm_frames)
            result["pfgvm"] = bench([str(head), "--method", "pfgvm", "--device", args.device, "--no-kernel"])
            result["pfgvm"]["pipeline"]["video"] = f"{args.clip.name}, first {args.pfgvm_frames} frames"
        if not args.skip_kernel:
            print("attack kernel ...", file=sys.stderr)
            result["kernel"] = bench(["--no-pipeline", "--device", args.device, "--kernel-batches",
                                      args.kernel_batches, "--kernel-iters", str(args.kernel_iters)])
    if not args.skip_detector:
        print("detector A/B ...", file=sys.stderr)
        result["detector"] = detector_ab(args.clip, args.repeats)
    result["load_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
