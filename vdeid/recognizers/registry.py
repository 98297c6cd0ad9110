"""Recogniser registry (timm's ``register_model`` / ``create_model`` shape).

A spec is ``name`` or ``name:PATH`` (weights from a user-given path); a
comma-separated list builds an ensemble (see :func:`create_recognizers`).
"""

from __future__ import annotations

import fnmatch
from typing import Callable, Optional

from ..errors import ModelError
from .base import Recognizer

# name -> (factory(path, device) -> Recognizer, one-line description, needs_path)
_REGISTRY: dict[str, tuple[Callable[..., Recognizer], str, bool]] = {}


def register_recognizer(name: str, description: str, *, needs_path: bool = False):
    """Decorator adding a factory ``fn(path: str | None, device: str) -> Recognizer``."""

    def wrap(fn):
        _REGISTRY[name] = (fn, description, needs_path)
        return fn

    return wrap


def list_recognizers(pattern: str = "*") -> list[str]:
    """Registered names matching an fnmatch ``pattern``."""
    _load_builtins()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def describe_recognizer(name: str) -> tuple[str, bool]:
    """``(description, needs_path)`` of a registered recogniser."""
    _load_builtins()
    _, description, needs_path = _REGISTRY[name]
    return description, needs_path


def create_recognizer(spec: str, device: str = "cpu") -> Recognizer:
    """Build one recogniser from ``name`` or ``name:PATH``, in eval mode on ``device``.

    Raises
    ------
    ModelError
        Unknown name (the message lists the valid ones), a missing path for a
        model whose weights are not bundled, or unreadable weights.
    """
    _load_builtins()
    name, _, path = spec.partition(":")
    name = name.strip().lower()
    if name not in _REGISTRY:
        valid = ", ".join(sorted(_REGISTRY))
        raise ModelError(f"unknown recognizer {name!r}; valid names: {valid}")
    factory, _, needs_path = _REGISTRY[name]
    path_or_none: Optional[str] = path.strip() or None
    if needs_path and path_or_none is None:
        raise ModelError(
            f"recognizer {name!r} needs its weights: pass --recognizer {name}:PATH "
            "(vdeid never downloads models)"
        )
    model = factory(path_or_none, device)
    return model.eval().to(device)


def create_recognizers(specs: str, device: str = "cpu") -> list[Recognizer]:
    """Build every recogniser of a comma-separated spec list (an ensemble)."""
    parts = [s for s in (p.strip() for p in specs.split(",")) if s]
    if not parts:
        raise ModelError("no recognizer given; e.g. --recognizer dlib")
    return [create_recognizer(p, device) for p in parts]


def describe_models() -> list[dict]:
    """One row per registered recogniser, for ``vdeid models``.

    Bundled models are built to read their config (input size, metric,
    threshold, weight source); models that need a user path are listed with
    how to give it.
    """
    rows = []
    for name in list_recognizers():
        description, needs_path = describe_recognizer(name)
        row = {"name": name, "description": description}
        if needs_path:
            row.update(status="available with --recognizer %s:PATH" % name, source="a path you give (never downloaded)")
        else:
            try:
                cfg = create_recognizer(name).cfg
            except ModelError as exc:
                row.update(status="unavailable", source=str(exc))
            else:
                row.update(
                    status="available (default)" if name == "dlib" else "available",
                    source=cfg.source,
                    input_size=cfg.input_size,
                    embedding_dim=cfg.embedding_dim,
                    metric=cfg.metric,
                    threshold=cfg.threshold,
                    license=cfg.license,
                )
        rows.append(row)
    return rows


def _load_builtins() -> None:
    # Importing the model modules runs their @register_recognizer decorators.
    from . import dlib_resnet, facenet, mobileface  # noqa: F401
