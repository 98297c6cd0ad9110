"""``--set key=value`` overrides of :class:`~vdeid.config.AttackConfig`, shared by the benchmarks."""

from __future__ import annotations

from vdeid.config import AttackConfig


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
