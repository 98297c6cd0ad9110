"""The vdeid command, run in-process through its real entry point."""

from __future__ import annotations

import json

from vdeid_testing import DEVICE, SAMPLE, read_frames, run_cli


def test_process_blur(tmp_path, capsys):
    out = tmp_path / "o.mp4"
    code, _, err = run_cli(
        ["process", SAMPLE, "-o", out, "--method", "blur", "--device", DEVICE, "--preset", "ultrafast",
         "--report", tmp_path / "r.json", "--tracks-out", tmp_path / "t.json", "--preview", tmp_path / "p.mp4", "-q"],
        capsys,
    )
    assert code == 0, err
    frames = read_frames(out)
    assert len(frames) == len(read_frames(SAMPLE)) == len(read_frames(tmp_path / "p.mp4"))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["config"]["encode"]["preset"] == "ultrafast"
    assert report["faces"] > 0
    tracks = json.loads((tmp_path / "t.json").read_text())
    assert sum(len(t["frames"]) for t in tracks["tracks"]) == report["faces"]

    # Re-render from the (reviewed) tracks: same protected frames, no detection.
    again = tmp_path / "again.mp4"
    code, _, err = run_cli(
        ["process", SAMPLE, "-o", again, "--method", "blur", "--device", DEVICE, "--preset", "ultrafast",
         "--tracks-in", tmp_path / "t.json", "-q"],
        capsys,
    )
    assert code == 0, err
    assert all((a == b).all() for a, b in zip(frames, read_frames(again)))


def test_process_summary_says_why_faces_fell_back(tmp_path, capsys, monkeypatch):
    from vdeid.methods.base import FaceOutcome
    from vdeid.report import Report

    report = Report(input=str(SAMPLE), output=str(tmp_path / "o.mp4"), config={}, faces_per_frame=[2, 1])
    report.add_outcomes(
        [FaceOutcome(0, 1, "pfgvm", reached=True), FaceOutcome(0, 2, "blur", fallback_reason="neighbour"),
         FaceOutcome(1, 2, "blur", fallback_reason="neighbour")],
        primary="pfgvm",
    )
    report.timings["total"] = 1.5
    monkeypatch.setattr("vdeid.process_video", lambda *args, **kwargs: report)
    code, _, err = run_cli(["process", SAMPLE, "-o", tmp_path / "o.mp4"], capsys)
    assert code == 0, err
    assert "3 face-frames protected (2 by the fallback: neighbour 2) in 1.5 s" in err


def test_bad_tracks_file_is_one_line(tmp_path, capsys):
    tracks = tmp_path / "t.json"
    tracks.write_text('{"format": "vdeid-tracks", "version": 1, "n_frames": 2, "tracks": [{"id": 0}]}')
    code, _, err = run_cli(["process", SAMPLE, "-o", tmp_path / "o.mp4", "--method", "blur", "--tracks-in", tracks], capsys)
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == 1 and len(lines) == 1 and str(tracks) in lines[0] and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists()


def test_missing_input_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.mp4"
    code, _, err = run_cli(["process", missing, "-o", tmp_path / "o.mp4", "--method", "blur"], capsys)
    assert code == 1
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and str(missing) in lines[0] and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists()


def test_existing_output_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"x")
    code, _, err = run_cli(["process", SAMPLE, "-o", out, "--method", "blur", "-q"], capsys)
    assert code == 1 and "overwrite" in err and out.read_bytes() == b"x"


def test_unknown_method_lists_valid_names(tmp_path, capsys):
    code, _, err = run_cli(["process", SAMPLE, "-o", tmp_path / "o.mp4", "--method", "sparkle", "-q"], capsys)
    assert code == 1 and "blur" in err and "pixelate" in err


def test_bad_thresholds(tmp_path, capsys):
    code, _, err = run_cli(["process", SAMPLE, "-o", tmp_path / "o.mp4", "--thresholds", "1,2"], capsys)
    assert code == 2 and "thresholds" in err.lower() or "0.6,0.7,0.7" in err


def test_protect_photos_mirrors_tree(tmp_path, capsys, astronaut):
    from PIL import Image

    src = tmp_path / "in"
    (src / "a" / "b").mkdir(parents=True)
    Image.fromarray(astronaut).save(src / "a" / "b" / "face.jpg", quality=95)
    (src / "a" / "notes.txt").write_text("not a photo")
    code, _, err = run_cli(["protect", src, "-o", tmp_path / "out", "--method", "pixelate", "--format", "png", "-q"], capsys)
    assert code == 0, err
    out = tmp_path / "out" / "a" / "b" / "face.png"
    assert out.exists()
    assert not (tmp_path / "out" / "a" / "notes.txt").exists()


def test_protect_bad_photo_does_not_stop_others(tmp_path, capsys, astronaut):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.fromarray(astronaut).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    code, _, err = run_cli(["protect", good, bad, "-o", tmp_path / "out", "--method", "blur", "-q"], capsys)
    assert code == 1 and str(bad) in err
    assert (tmp_path / "out" / "good.png").exists()


def test_help_defaults_come_from_config(capsys):
    from vdeid.config import Config

    code, out, _ = run_cli(["process", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    assert f"(default {Config().attack.max_iter})" in text
    assert f"(default {Config().attack.margin})" in text
    assert "{default}" not in text


def test_options_map_to_config_fields():
    from cli.main import process
    from cli.options import build_config
    from vdeid.config import Config

    ctx = process.make_context(
        "process", ["in.mp4", "-o", "o.mp4", "--no-encoder-check", "--precision", "bfloat16", "--harden-fallback"]
    )
    config = build_config(ctx.params)
    assert (config.attack.encoder_check, config.attack.precision, config.attack.harden_fallback) == (False, "bfloat16", True)
    default = build_config(process.make_context("process", ["in.mp4", "-o", "o.mp4"]).params).attack
    assert default.encoder_check and not default.harden_fallback and default.detector_views
    assert default.fallback_margin == 0.3
    argv = ["in.mp4", "-o", "o.mp4", "--no-detector-views", "--fallback-margin", "0.5"]
    changed = build_config(process.make_context("process", argv).params).attack
    assert (changed.detector_views, changed.fallback_margin) == (False, 0.5)
    ctx = process.make_context("process", ["in.mp4", "-o", "o.mp4", "--confirm-score", "0"])
    assert build_config(ctx.params).track.confirm_score == 0.0 < Config().track.confirm_score
    ctx = process.make_context(
        "process", ["in.mp4", "-o", "o.mp4", "--cuda-graphs", "--warm-order", "bisect", "--chunk-frames", "16"]
    )
    config = build_config(ctx.params)
    assert (config.attack.cuda_graphs, config.attack.warm_order, config.chunk_frames) == (True, "bisect", 16)
    assert (default.cuda_graphs, default.warm_order) == (False, "sequential")


def test_sigterm_leaves_no_partial_output(tmp_path):
    """A killed run cleans up like Ctrl-C: no output, no hidden partial file, exit 130."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "o.mp4"
    cmd = [sys.executable, "-c", "from cli.main import main; main()", "process", str(SAMPLE), "-o", str(out),
           "--method", "blur", "--device", DEVICE, "--preset", "ultrafast", "-q"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(tmp_path.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert list(tmp_path.iterdir()) == []
