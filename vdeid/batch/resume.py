"""Decide which files of a rerun are already done.

A file is done when its latest manifest record is complete (``ok``, or a
``resumed`` skip that carried an ``ok`` forward), its output is still there
with the recorded SHA-256, its input's SHA-256 is unchanged, and it was made
with the same parameters and model weights as this run would use.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from .manifest import file_sha256
from .walk import Item

#: Config fields that do not change the output bytes, left out of the comparison.
_IGNORED_CONFIG = ("overwrite",)


def comparable_config(config: dict) -> dict:
    """A config dict as the manifest stores it (JSON types), minus output-neutral fields."""
    plain = json.loads(json.dumps(config, default=str))
    return {k: v for k, v in plain.items() if k not in _IGNORED_CONFIG}


def comparable_models(models: list[dict]) -> list[tuple]:
    """``(role, name, sha256)`` of each weight file: paths may differ between machines."""
    return sorted((m.get("role"), m.get("name"), m.get("sha256")) for m in models or [])


def is_complete_record(record: Optional[dict]) -> bool:
    """True for a record saying its output was written and verified."""
    if not record or not record.get("output_sha256"):
        return False
    return record.get("status") == "ok" or (record.get("status") == "skipped" and record.get("reason") == "resumed")


def why_not_done(record: Optional[dict], item: Item, *, config: dict, models: list[dict]) -> Optional[str]:
    """None when ``item`` need not be processed again, else the reason.

    Parameters
    ----------
    record : dict or None
        The latest manifest record of the item's input.
    item : Item
        The file as found by this run.
    config : dict
        This run's ``Config.to_dict()``.
    models : list of dict
        This run's :func:`~vdeid.batch.provenance.model_checksums` (media only).

    Notes
    -----
    Cheap checks (status, parameters, sizes) come before the two hashes.
    """
    if record is None:
        return "new"
    if not is_complete_record(record):
        return f"last run {record.get('status', 'unknown')}"
    if record.get("output") != item.output_rel or item.output is None:
        return "output path changed"
    if item.kind != "other":
        if comparable_config(record.get("config") or {}) != comparable_config(config):
            return "parameters changed"
        if comparable_models(record.get("models")) != comparable_models(models):
            return "model weights changed"
    try:
        input_size = os.path.getsize(item.source)
        output_size = os.path.getsize(item.output)
    except OSError:
        return "output missing"
    if record.get("input_bytes") != input_size:
        return "input changed"
    if record.get("output_bytes") != output_size:
        return "output changed"
    if file_sha256(item.output) != record.get("output_sha256"):
        return "output changed"
    if file_sha256(item.source) != record.get("input_sha256"):
        return "input changed"
    return None
