"""Which container/stream tags and side streams a protected video keeps.

A de-identified video must not keep the facts that locate or identify the
person who filmed it, so the default is an **allow-list**: every tag is
dropped except the ones in :data:`ALLOWED_TAGS`, which only describe how to
play the file. The muxer then writes its own technical tags (``major_brand``,
``encoder``, a generic ``handler_name``...).

:data:`IDENTIFYING_PATTERNS` is the **deny-list**: the key fragments that mark
a tag as locating or identifying (GPS, camera make/model/serial, people,
dates, free text). It never decides what is kept by default (the allow-list
does); it names what was removed in the log and in ``VideoSink.notes``, and it
is what ``keep_metadata=True`` warns about when those tags are kept.

Subtitle, data and attachment streams are dropped by default: drones and
action cameras write their GPS track and telemetry there (DJI ``.SRT``-style
subtitle tracks, GoPro GPMF and Google CAMM data tracks).

``keep_metadata=True`` keeps every tag and copies those streams where the
output container can hold them.
"""

from __future__ import annotations

from typing import Mapping

# Tags kept by default: they tell a player which track is which and reveal
# nothing about where, when, by whom or with what the video was made.
# ``handler_name`` is not here because cameras put their brand in it
# ("DJI.AVC", "GoPro AVC"); the mp4/mov muxer writes a generic one.
ALLOWED_TAGS: frozenset[str] = frozenset({"language"})

# Tags every mp4/mov muxer writes itself: dropped silently (not reported).
MUXER_TAGS: frozenset[str] = frozenset({"major_brand", "minor_version", "compatible_brands", "duration"})

# Key fragments (case-insensitive substrings) of tags that locate or identify.
IDENTIFYING_PATTERNS: tuple[str, ...] = (
    # where
    "location", "gps", "iso6709", "xyz", "latitude", "longitude", "altitude", "coordinates",
    # with what
    "make", "model", "serial", "lens", "device", "camera", "firmware", "software", "encoder",
    "handler_name", "vendor", "uuid",
    # who
    "artist", "author", "creator", "owner", "copyright", "performer", "composer", "publisher",
    "user", "email", "phone",
    # when
    "creation_time", "date", "timecode",
    # free text that often names people or places
    "title", "comment", "description", "keywords", "album", "synopsis",
)

# Stream types that are metadata rather than picture or sound.
SIDE_STREAM_TYPES: frozenset[str] = frozenset({"subtitle", "data", "attachment"})


def is_identifying(key: str) -> bool:
    """Whether a tag key matches the deny-list :data:`IDENTIFYING_PATTERNS`.

    Parameters
    ----------
    key : str
        Tag key as FFmpeg reports it (any case; Matroska upper-cases them).
    """
    lowered = key.casefold()
    return any(pattern in lowered for pattern in IDENTIFYING_PATTERNS)


def filter_tags(tags: Mapping[str, str], *, keep: bool = False) -> tuple[dict[str, str], list[str]]:
    """Split tags into the ones written to the output and the ones dropped.

    Parameters
    ----------
    tags : mapping of str to str
        Container- or stream-level tags of the input.
    keep : bool
        ``True`` keeps every tag (``--keep-metadata``); ``False`` keeps only
        :data:`ALLOWED_TAGS`.

    Returns
    -------
    kept : dict of str to str
        Tags to write to the output.
    dropped : list of str
        Keys left out, in input order (not counting :data:`MUXER_TAGS`,
        which the muxer rewrites anyway).
    """
    if keep:
        return dict(tags), []
    kept = {k: v for k, v in tags.items() if k.casefold() in ALLOWED_TAGS}
    dropped = [k for k in tags if k not in kept and k.casefold() not in MUXER_TAGS]
    return kept, dropped


def keeps_side_stream(stream_type: str, *, keep: bool = False) -> bool:
    """Whether a subtitle/data/attachment stream is copied to the output.

    Parameters
    ----------
    stream_type : str
        PyAV stream type (``"subtitle"``, ``"data"``, ``"attachment"``...).
    keep : bool
        ``--keep-metadata``.
    """
    return keep and stream_type in SIDE_STREAM_TYPES
