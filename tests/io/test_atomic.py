"""Tests for vdeid.io.atomic: all-or-nothing outputs that never hit an input."""

from __future__ import annotations

import os

import pytest

from vdeid.errors import OutputError
from vdeid.io import atomic
from vdeid.io.atomic import atomic_output


def _leftovers(folder, keep=()):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_success_publishes_file(tmp_path):
    out = tmp_path / "out.mp4"
    with atomic_output(out) as tmp:
        assert tmp.parent == out.parent
        assert tmp.name.startswith(".") and tmp.suffix == ".mp4"
        assert not tmp.exists()
        tmp.write_bytes(b"video")
        assert not out.exists()
    assert out.read_bytes() == b"video"
    assert _leftovers(tmp_path) == ["out.mp4"]


def test_exception_leaves_nothing(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(ZeroDivisionError):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"half")
            1 / 0
    assert _leftovers(tmp_path) == []


def test_keyboard_interrupt_leaves_nothing(tmp_path):
    out = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert _leftovers(tmp_path) == []


def test_failure_keeps_previous_output(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(out, overwrite=True) as tmp:
            tmp.write_bytes(b"new")
            raise RuntimeError("boom")
    assert out.read_bytes() == b"old"
    assert _leftovers(tmp_path) == ["out.mp4"]


def test_existing_output_refused_without_overwrite(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    with pytest.raises(OutputError, match="--overwrite"):
        with atomic_output(out):
            pytest.fail("body must not run")
    with atomic_output(out, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new"


def test_output_equal_to_input_refused_even_with_overwrite(tmp_path):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"input")
    for candidate in (src, tmp_path / "." / "clip.mp4", tmp_path / "sub" / ".." / "clip.mp4"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(OutputError, match="input"):
            with atomic_output(candidate, overwrite=True, inputs=[src]):
                pass
    assert src.read_bytes() == b"input"


def test_links_to_input_refused(tmp_path):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"input")
    soft = tmp_path / "soft.mp4"
    soft.symlink_to(src)
    hard = tmp_path / "hard.mp4"
    os.link(src, hard)
    for candidate in (soft, hard):
        with pytest.raises(OutputError, match="input"):
            with atomic_output(candidate, overwrite=True, inputs=[src]):
                pass
    assert src.read_bytes() == b"input"


def test_missing_folder_refused(tmp_path):
    with pytest.raises(OutputError, match="does not exist") as info:
        with atomic_output(tmp_path / "nope" / "out.mp4"):
            pass
    assert "\n" not in str(info.value)
    assert info.value.path.endswith("out.mp4")


def test_folder_as_output_refused(tmp_path):
    with pytest.raises(OutputError, match="folder"):
        with atomic_output(tmp_path, overwrite=True):
            pass


def test_unwritable_folder_refused(tmp_path, monkeypatch):
    # Root can write anywhere, so the permission check itself is simulated.
    monkeypatch.setattr(atomic.os, "access", lambda path, mode: False)
    with pytest.raises(OutputError, match="not writable"):
        with atomic_output(tmp_path / "out.mp4"):
            pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_unwritable_folder_refused_for_real(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            with atomic_output(folder / "out.mp4"):
                pass
    finally:
        folder.chmod(0o700)


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(OutputError, match="nothing was written"):
        with atomic_output(tmp_path / "out.mp4"):
            pass
    assert _leftovers(tmp_path) == []
