"""Tests for vdeid.io.metadata: which tags and side streams survive."""

from __future__ import annotations

import pytest

from vdeid.io.metadata import ALLOWED_TAGS, MUXER_TAGS, filter_tags, is_identifying, keeps_side_stream

PHONE_TAGS = {
    "major_brand": "qt  ",
    "com.apple.quicktime.location.ISO6709": "+52.3702+004.8952+001.000/",
    "location": "+52.3702+004.8952/",
    "location-eng": "+52.3702+004.8952/",
    "com.apple.quicktime.make": "Apple",
    "com.apple.quicktime.model": "iPhone 15",
    "creation_time": "2024-05-01T10:00:00Z",
    "handler_name": "Core Media Video",
    "language": "nld",
    "encoder": "Lavf58",
}


@pytest.mark.parametrize(
    "key",
    [
        "location",
        "LOCATION",
        "location-eng",
        "com.apple.quicktime.location.ISO6709",
        "com.android.capture.gps",
        "make",
        "MODEL",
        "com.apple.quicktime.make",
        "serial_number",
        "artist",
        "author",
        "copyright",
        "encoder",
        "creation_time",
        "title",
        "comment",
        "handler_name",
    ],
)
def test_identifying_keys(key):
    assert is_identifying(key)


@pytest.mark.parametrize("key", ["language", "major_brand", "compatible_brands", "rotate"])
def test_harmless_keys_are_not_identifying(key):
    assert not is_identifying(key)


def test_default_keeps_only_the_allow_list():
    kept, dropped = filter_tags(PHONE_TAGS)
    assert kept == {"language": "nld"}
    assert set(kept) <= ALLOWED_TAGS
    # Everything else is dropped; the muxer's own tags are not reported.
    assert set(dropped) == set(PHONE_TAGS) - {"language"} - MUXER_TAGS
    assert "com.apple.quicktime.location.ISO6709" in dropped


def test_allow_list_is_case_insensitive():
    kept, _ = filter_tags({"LANGUAGE": "eng", "TITLE": "x"})
    assert kept == {"LANGUAGE": "eng"}


def test_keep_metadata_keeps_everything():
    kept, dropped = filter_tags(PHONE_TAGS, keep=True)
    assert kept == PHONE_TAGS
    assert dropped == []


@pytest.mark.parametrize("kind", ["subtitle", "data", "attachment"])
def test_side_streams_dropped_unless_kept(kind):
    assert not keeps_side_stream(kind)
    assert keeps_side_stream(kind, keep=True)


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_picture_and_sound_are_not_side_streams(kind):
    assert not keeps_side_stream(kind, keep=True)
