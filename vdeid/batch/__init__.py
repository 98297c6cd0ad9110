"""Corpus processing: a folder tree of videos and photos, resumable, local or on Ray.

:func:`process_corpus` is ``vdeid batch``: every video and photo under a
folder is protected into a mirror tree, each file's inputs, outputs,
parameters, model checksums and results go to an append-only JSON Lines
manifest, and a rerun picks up where an interrupted one stopped.
"""

from .corpus import BatchSummary, process_corpus
from .manifest import ManifestWriter, file_sha256, latest_records, read_manifest
from .provenance import model_checksums
from .walk import MANIFEST_NAME, VIDEO_SUFFIXES, Item, collect_items, kind_of

__all__ = [
    "BatchSummary",
    "Item",
    "MANIFEST_NAME",
    "ManifestWriter",
    "VIDEO_SUFFIXES",
    "collect_items",
    "file_sha256",
    "kind_of",
    "latest_records",
    "model_checksums",
    "process_corpus",
    "read_manifest",
]
