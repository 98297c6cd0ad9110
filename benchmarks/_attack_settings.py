"""``--set key=value`` overrides of :class:`~vdeid.config.AttackConfig`, shared by the benchmarks.

Also ``--box-views``, a diagnostic that replaces the box views dlib's
recogniser adds for every face (:data:`~vdeid.recognizers.dlib_resnet.BOX_VIEWS`),
to see which of them a face fails under or what a further one would reach.
"""

from __future__ import annotations

import argparse

import torch

from vdeid.config import AttackConfig
from vdeid.recognizers import dlib_resnet


def apply_attack_settings(attack: AttackConfig, items: list[str]) -> None:
    """Set each ``key=value`` on ``attack``, typed like the field's current value.

    ``none``/``null`` gives None, a bool field takes ``1/true/yes/on``, a
    field that is None takes a float.
    """
    for item in items:
        key, _, text = item.partition("=")
        if not hasattr(attack, key):
            raise SystemExit(f"unknown AttackConfig field {key!r}")
        current = getattr(attack, key)
        if text.lower() in ("none", "null"):
            value = None
        elif isinstance(current, bool):
            value = text.lower() in ("1", "true", "yes", "on")
        elif current is None:
            value = float(text)
        else:
            value = type(current)(text)
        setattr(attack, key, value)


def add_box_views_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--box-views", nargs="+", metavar="SCALE,SHIFT",
        help="diagnostic: replace dlib's box views with these (scale of the start box, downward shift in sides); "
        f"the defaults are {' '.join(f'{s:g},{d:g}' for s, d in dlib_resnet.BOX_VIEWS.tolist())}",
    )


def apply_box_views(items: list[str] | None) -> None:
    """Replace ``dlib_resnet.BOX_VIEWS`` with ``SCALE,SHIFT`` pairs (None or empty: keep them)."""
    if not items:
        return
    try:
        views = [[float(v) for v in item.split(",")] for item in items]
    except ValueError:
        raise SystemExit(f"--box-views: expected SCALE,SHIFT pairs, got {' '.join(items)}") from None
    if any(len(v) != 2 for v in views):
        raise SystemExit(f"--box-views: expected SCALE,SHIFT pairs, got {' '.join(items)}")
    dlib_resnet.BOX_VIEWS = torch.tensor(views, dtype=torch.float64)
