"""process_corpus end to end on a real corpus: mirror, manifest, failures, resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vdeid.batch import process_corpus, read_manifest
from vdeid.batch.manifest import file_sha256, latest_records
from vdeid.batch.resume import comparable_config
from vdeid.batch.worker import FileProcessor
from vdeid.config import EncodeConfig
from vdeid.errors import VdeidError

from batch_corpus import FAST, SAMPLE, fast_config, frame_count, read_frames, save_photo, trimmed_clip


def _media(corpus):
    return sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.suffix in (".mp4", ".jpg", ".png"))


def _stats(out, rels):
    return {r: (os.stat(out / r).st_ino, os.stat(out / r).st_mtime_ns) for r in rels}


def test_every_media_file_is_mirrored(corpus, local_run):
    out, summary = local_run
    good = [r for r in _media(corpus) if r != "drone/broken.mp4"]
    for rel in good:
        assert (out / rel).is_file(), rel
    assert not (out / "drone" / "broken.mp4").exists()
    assert not (out / "notes").exists(), "other files are not copied without --copy-other"
    clip = "drone/astronaut_drone.mp4"
    assert frame_count(out / clip) == frame_count(corpus / clip)
    assert (summary.ok, summary.failed, summary.skipped, summary.resumed) == (len(good), 1, 1, 0)
    assert summary.faces > 0 and summary.frames >= frame_count(corpus / clip)
    assert not list(out.rglob("*.vdeid-partial*"))


def test_manifest_records_every_input_with_provenance(corpus, local_run):
    out, summary = local_run
    records = read_manifest(out / "manifest.jsonl")
    by_input = {r["input"]: r for r in records}
    assert len(records) == len(by_input) == summary.total
    assert set(by_input) == {p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()}
    for rel, r in by_input.items():
        assert r["run"] == summary.run
        assert r["input_sha256"] == file_sha256(corpus / rel)
        assert r["vdeid_version"]
    photo = by_input["photos/astronaut.jpg"]
    assert photo["status"] == "ok" and photo["kind"] == "photo"
    assert photo["output_sha256"] == file_sha256(out / photo["output"])
    assert photo["faces"] >= 1 and photo["fallback"] == 0 and photo["fallback_reasons"] == {}
    assert photo["method"] == "blur" and photo["config"]["encode"]["preset"] == "ultrafast"
    assert comparable_config(photo["config"]) == comparable_config(FAST.to_dict())
    assert {m["name"] for m in photo["models"]} == {"mtcnn"}  # blur attacks no recogniser
    assert all(len(m["sha256"]) == 64 for m in photo["models"])
    video = by_input["drone/astronaut_drone.mp4"]
    assert video["frames"] == frame_count(corpus / "drone/astronaut_drone.mp4") and video["faces"] > 0
    assert video["timings"]["total"] > 0 and "detect" in video["timings"]
    broken = by_input["drone/broken.mp4"]
    assert broken["status"] == "failed" and "broken.mp4" in broken["error"]
    assert broken["output_sha256"] is None
    other = by_input["notes/readme.txt"]
    assert other["status"] == "skipped" and other["output"] is None and other["models"] == []


@pytest.mark.slow
def test_worker_processes_match_one_process(local_run, pool_run):
    (local_out, local), (pool_out, pool) = local_run, pool_run
    assert (pool.ok, pool.failed, pool.skipped) == (local.ok, local.failed, local.skipped)
    mine = latest_records(read_manifest(local_out / "manifest.jsonl"))
    theirs = latest_records(read_manifest(pool_out / "manifest.jsonl"))
    assert {r: (m["status"], m["output"], m.get("frames")) for r, m in mine.items()} == {
        r: (t["status"], t["output"], t.get("frames")) for r, t in theirs.items()
    }
    assert len({t["pid"] for t in theirs.values() if t["status"] == "ok"}) == 2, "files spread over both processes"
    assert {t["torch_threads"] for t in theirs.values() if t["status"] == "ok"} == {1}
    for rel, m in mine.items():
        if m["kind"] == "photo":
            assert theirs[rel]["output_sha256"] == m["output_sha256"], rel
        elif m["kind"] == "video" and m["status"] == "ok":
            # One math thread per worker instead of two: MTCNN's float sums
            # may round differently, moving a blurred edge by a pixel.
            a, b = read_frames(local_out / rel), read_frames(pool_out / rel)
            assert len(a) == len(b) == m["frames"]
            assert max(np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(a, b)) < 0.05, rel


def test_rerun_skips_completed_files(corpus, local_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(local_run[0], out)
    done = [r for r in _media(corpus) if r != "drone/broken.mp4"]
    before = _stats(out, done)
    summary = process_corpus(corpus, out, FAST)
    assert (summary.resumed, summary.ok, summary.failed, summary.skipped) == (len(done), 0, 1, 1)
    assert _stats(out, done) == before
    latest = latest_records(read_manifest(out / "manifest.jsonl"))
    for rel in done:
        assert latest[rel]["status"] == "skipped" and latest[rel]["reason"] == "resumed"
        assert latest[rel]["resumed_from"] == local_run[1].run
    # A resumed record carries the result forward, so a third run skips it too.
    assert process_corpus(corpus, out, FAST).resumed == len(done)


def _photo_corpus(root, astronaut, n):
    for i in range(n):
        save_photo(astronaut[i * 8 :: 2, i * 8 :: 2], root / f"p{i}.png")
    return root


def test_interrupted_run_redoes_only_unfinished_files(tmp_path, astronaut, monkeypatch):
    src = _photo_corpus(tmp_path / "in", astronaut, 4)
    out = tmp_path / "out"
    real_call = FileProcessor.__call__
    calls = []

    def crash_on_third(self, item, **kw):
        calls.append(item.rel)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_call(self, item, **kw)

    monkeypatch.setattr(FileProcessor, "__call__", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        process_corpus(src, out, FAST)
    monkeypatch.setattr(FileProcessor, "__call__", real_call)
    finished = [r["input"] for r in read_manifest(out / "manifest.jsonl")]
    assert finished == ["p0.png", "p1.png"]
    before = _stats(out, finished)
    summary = process_corpus(src, out, FAST)
    assert (summary.resumed, summary.ok) == (2, 2)
    assert _stats(out, finished) == before
    assert sorted(p.name for p in out.glob("*.png")) == [f"p{i}.png" for i in range(4)]


_CHILD = """
import sys
from pathlib import Path
sys.path[:0] = [sys.argv[3], str(Path(sys.argv[3]).parent)]  # batch_corpus and the vdeid_testing it imports
from batch_corpus import FAST
from vdeid.batch import process_corpus
process_corpus(sys.argv[1], sys.argv[2], FAST)
"""


@pytest.mark.slow
def test_killed_run_finishes_on_rerun(tmp_path, astronaut):
    src = _photo_corpus(tmp_path / "in", astronaut, 2)
    trimmed_clip(SAMPLE, src / "v1.mp4", packets=10)
    out = tmp_path / "out"
    manifest = out / "manifest.jsonl"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(src), str(out), str(Path(__file__).parent)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while not (manifest.exists() and manifest.read_bytes().count(b"\n") >= 1):
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "no record within 60 s"
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
    finished = [r["input"] for r in read_manifest(manifest) if r["status"] == "ok"]
    assert finished and len(finished) < 3, "the kill must land mid-run"
    before = _stats(out, finished)
    summary = process_corpus(src, out, FAST)
    why = {r: m["reason"] for r, m in latest_records(read_manifest(manifest)).items()}
    assert (summary.resumed, summary.ok, summary.failed) == (len(finished), 3 - len(finished), 0), why
    assert _stats(out, finished) == before
    assert frame_count(out / "v1.mp4") == frame_count(src / "v1.mp4")
    assert not list(out.rglob("*.vdeid-partial*"))


def test_changed_parameters_redo_files(tmp_path, astronaut):
    src = _photo_corpus(tmp_path / "in", astronaut, 1)
    out = tmp_path / "out"
    first = process_corpus(src, out, FAST)
    old = file_sha256(out / "p0.png")
    second = process_corpus(src, out, fast_config(method="pixelate"))
    assert (first.ok, second.ok, second.resumed) == (1, 1, 0)
    assert file_sha256(out / "p0.png") != old
    assert latest_records(read_manifest(out / "manifest.jsonl"))["p0.png"]["method"] == "pixelate"


def test_foreign_files_in_the_output_need_overwrite(tmp_path, astronaut):
    src = _photo_corpus(tmp_path / "in", astronaut, 1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "p0.png").write_bytes(b"someone else's file")
    summary = process_corpus(src, out, FAST)
    assert summary.failed == 1 and "--overwrite" in summary.failures[0][1]
    assert (out / "p0.png").read_bytes() == b"someone else's file"
    # The folder now holds a manifest: it is a batch folder and the file is redone.
    assert process_corpus(src, out, FAST).ok == 1


def test_format_and_copy_other(tmp_path, astronaut):
    src = _photo_corpus(tmp_path / "in", astronaut, 1)
    (src / "DJI_0001.SRT").write_text("GPS 1,2\n")
    out = tmp_path / "out"
    summary = process_corpus(src, out, fast_config(encode=EncodeConfig(preset="ultrafast", image_format="jpg")), copy_other=True)
    assert summary.ok == 2
    assert (out / "p0.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert (out / "DJI_0001.SRT").read_text() == "GPS 1,2\n"


def test_bad_arguments_raise_before_work(tmp_path):
    with pytest.raises(VdeidError, match="workers"):
        process_corpus(tmp_path, tmp_path / "o", FAST, workers=0)
    with pytest.raises(VdeidError, match="engine"):
        process_corpus(tmp_path, tmp_path / "o", FAST, engine="spark")
    save_photo(np.zeros((8, 8, 3), np.uint8), tmp_path / "in" / "x.png")
    with pytest.raises(VdeidError, match="unknown method"):
        process_corpus(tmp_path / "in", tmp_path / "o", fast_config(method="nope"))
    assert not (tmp_path / "o").exists()
