"""``vdeid batch`` through the real entry point: summary, exit status, one-line errors."""

from __future__ import annotations

import sys

from batch_corpus import SAMPLE, trimmed_clip

from vdeid.batch import latest_records, read_manifest
from vdeid_testing import DEVICE


def run_vdeid(args, capsys) -> tuple[int, str]:
    from cli.main import main

    old, sys.argv = sys.argv, ["vdeid", *map(str, args)]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    return code, capsys.readouterr().err


FAST_ARGS = ["--method", "blur", "--device", DEVICE, "--preset", "ultrafast", "--min-face", "40", "--detect-every", "3"]


def test_batch_command_summary_and_exit_status(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    trimmed_clip(SAMPLE, src / "clip.mp4", packets=12)
    (src / "bad.mp4").write_bytes(b"\x00" * 100)
    (src / "notes.txt").write_text("x")
    out = tmp_path / "out"
    code, err = run_vdeid(["batch", src, "-o", out, *FAST_ARGS], capsys)
    assert code == 1, err  # one file failed
    assert "Traceback" not in err
    assert "3 files: 1 protected, 0 already done, 1 skipped (not media), 1 failed" in err
    assert any("bad.mp4" in line and "failed" in line for line in err.splitlines())
    assert (out / "clip.mp4").is_file()
    (src / "bad.mp4").unlink()
    code, err = run_vdeid(["batch", src, "-o", out, *FAST_ARGS, "-q"], capsys)
    assert code == 0 and err.strip() == ""
    assert latest_records(read_manifest(out / "manifest.jsonl"))["clip.mp4"]["reason"] == "resumed"


def test_batch_missing_folder_is_a_usage_error(tmp_path, capsys):
    code, err = run_vdeid(["batch", tmp_path / "nope", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "does not exist" in err
