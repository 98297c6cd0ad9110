"""The JSON Lines manifest: durable appends, torn lines, one writer at a time."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest

from vdeid.batch.manifest import ManifestWriter, file_sha256, latest_records, read_manifest
from vdeid.errors import OutputError


def test_file_sha256_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert file_sha256(path, chunk_size=1000) == hashlib.sha256(data).hexdigest()


def test_records_round_trip_one_line_each(tmp_path):
    path = tmp_path / "manifest.jsonl"
    with ManifestWriter(path) as w:
        w.append({"input": "a.jpg", "status": "ok", "config": {"t": (1, 2)}})
        w.append({"input": "b.mp4", "status": "failed", "error": "x: corrupt"})
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    records = read_manifest(path)
    assert [r["input"] for r in records] == ["a.jpg", "b.mp4"]
    assert records[0]["config"] == {"t": [1, 2]}


def test_missing_manifest_reads_as_empty(tmp_path):
    assert read_manifest(tmp_path / "none.jsonl") == []


def test_torn_last_line_is_ignored_and_next_run_starts_a_new_line(tmp_path, caplog):
    path = tmp_path / "manifest.jsonl"
    with ManifestWriter(path) as w:
        w.append({"input": "a.jpg", "status": "ok"})
    with open(path, "ab") as f:  # a crash in the middle of a write
        f.write(b'{"input": "b.jpg", "sta')
    with caplog.at_level(logging.WARNING, logger="vdeid"):
        assert [r["input"] for r in read_manifest(path)] == ["a.jpg"]
    assert "torn" in caplog.text
    with ManifestWriter(path) as w:
        w.append({"input": "b.jpg", "status": "ok"})
    assert [r["input"] for r in read_manifest(path)] == ["a.jpg", "b.jpg"]


def test_latest_record_per_input_wins():
    records = [
        {"input": "a", "status": "failed"},
        {"input": "b", "status": "ok"},
        {"input": "a", "status": "ok"},
        {"status": "ok"},  # no input: ignored
    ]
    latest = latest_records(records)
    assert set(latest) == {"a", "b"}
    assert latest["a"]["status"] == "ok"


def test_second_writer_is_refused_while_the_first_is_open(tmp_path):
    pytest.importorskip("fcntl", reason="advisory locks need fcntl (POSIX)")
    path = tmp_path / "manifest.jsonl"
    with ManifestWriter(path):
        with pytest.raises(OutputError, match="another vdeid batch run"):
            ManifestWriter(path)
    with ManifestWriter(path) as w:  # released on close
        w.append({"input": "a"})
    assert len(read_manifest(path)) == 1


def test_writer_after_close_refuses(tmp_path):
    w = ManifestWriter(tmp_path / "m.jsonl")
    w.close()
    with pytest.raises(ValueError):
        w.append({"input": "a"})
