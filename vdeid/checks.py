"""Shape checks done once, at public boundaries (kornia's ``KORNIA_CHECK_SHAPE``)."""

from __future__ import annotations

from typing import Sequence

from .errors import ShapeError


def check_shape(x, expected: Sequence[str | int], name: str = "input") -> None:
    """Raise :class:`ShapeError` unless ``x.shape`` matches ``expected``.

    Parameters
    ----------
    x : ndarray or Tensor
        The value to check.
    expected : sequence of str or int
        One entry per dimension: an int must match exactly, a str (``"B"``,
        ``"H"``) matches any size.
    name : str
        How the value is called in the message.
    """
    shape = tuple(x.shape)
    ok = len(shape) == len(expected) and all(
        isinstance(e, str) or int(e) == s for e, s in zip(expected, shape)
    )
    if not ok:
        want = "(" + ", ".join(str(e) for e in expected) + ")"
        raise ShapeError(f"{name} must have shape {want}, got {shape}")
