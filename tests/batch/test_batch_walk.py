"""Collecting a corpus folder: kinds, mirrored output paths, collisions."""

from __future__ import annotations

import pytest

from vdeid.batch.walk import MANIFEST_NAME, collect_items, kind_of
from vdeid.errors import InputError


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_kind_of_is_case_insensitive():
    assert kind_of("a/DJI_0001.MP4") == "video"
    assert kind_of("clip.mov") == "video"
    assert kind_of("p.JPEG") == "photo"
    assert kind_of("DJI_0001.SRT") == "other"
    assert kind_of("noext") == "other"


def test_collect_mirrors_relative_paths(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    for rel in ("b/clip.MP4", "a/x.jpg", "a/deep/y.png", "notes.txt"):
        _touch(src / rel)
    items = collect_items(src, out)
    assert [i.rel for i in items] == ["a/deep/y.png", "a/x.jpg", "b/clip.MP4", "notes.txt"]
    by_rel = {i.rel: i for i in items}
    assert by_rel["b/clip.MP4"].kind == "video"
    assert by_rel["b/clip.MP4"].output == (out / "b/clip.MP4").absolute()
    assert by_rel["a/deep/y.png"].output_rel == "a/deep/y.png"
    assert by_rel["notes.txt"].kind == "other" and by_rel["notes.txt"].output is None
    assert all(i.source.is_absolute() and i.conflict is None for i in items)


def test_collect_format_changes_photo_suffix_only(tmp_path):
    src = tmp_path / "in"
    _touch(src / "x.jpg")
    _touch(src / "v.mp4")
    items = {i.rel: i for i in collect_items(src, tmp_path / "out", image_format="png")}
    assert items["x.jpg"].output_rel == "x.png"
    assert items["v.mp4"].output_rel == "v.mp4"


def test_collect_copy_other_gives_other_files_an_output(tmp_path):
    src = tmp_path / "in"
    _touch(src / "DJI_0001.SRT")
    (item,) = collect_items(src, tmp_path / "out", copy_other=True)
    assert item.kind == "other" and item.output_rel == "DJI_0001.SRT"


def test_collect_flags_output_collisions(tmp_path):
    src = tmp_path / "in"
    _touch(src / "a.jpg")
    _touch(src / "a.png")
    _touch(src / MANIFEST_NAME)
    items = {i.rel: i for i in collect_items(src, tmp_path / "out", image_format="png", copy_other=True)}
    assert items["a.jpg"].conflict is None
    assert "a.jpg" in items["a.png"].conflict
    assert "manifest" in items[MANIFEST_NAME].conflict


def test_collect_leaves_out_an_output_folder_inside_the_input(tmp_path):
    src = tmp_path / "in"
    _touch(src / "x.jpg")
    _touch(src / "protected" / "x.jpg")
    items = collect_items(src, src / "protected")
    assert [i.rel for i in items] == ["x.jpg"]


def test_collect_rejects_bad_folders(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        collect_items(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(InputError, match="output folder is the input folder"):
        collect_items(tmp_path, tmp_path)
