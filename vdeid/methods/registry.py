"""Protection-method registry (timm's ``register_model`` / ``create_model`` shape).

Naive methods register from :mod:`vdeid.methods.naive`; the adversarial ones
(``pfgvm``, ``ifgvm``...) from :mod:`vdeid.engine`. Both modules are imported
on first use, so ``list_methods()`` and ``create_method()`` always see every
built-in method.
"""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from typing import Callable, Optional

from ..config import Config
from ..errors import VdeidError
from .base import Method

# name -> (factory(config) -> Method, one-line description)
_REGISTRY: dict[str, tuple[Callable[[Config], Method], str]] = {}


def register_method(name: str, *, description: Optional[str] = None):
    """Decorator registering a factory ``fn(config: Config) -> Method`` (or a class).

    Parameters
    ----------
    name : str
        Lower-case name used by ``--method``.
    description : str, optional
        One line for ``vdeid --list-methods``; defaults to the first line of
        the factory's docstring.

    Raises
    ------
    ValueError
        When another factory already holds ``name``.
    """
    key = name.strip().lower()

    def wrap(factory):
        previous = _REGISTRY.get(key)
        if previous is not None and _qualname(previous[0]) != _qualname(factory):
            raise ValueError(f"method name {key!r} is already registered by {_qualname(previous[0])}")
        doc = (factory.__doc__ or "").strip().splitlines()
        _REGISTRY[key] = (factory, description or (doc[0].strip() if doc else ""))
        return factory

    return wrap


def list_methods(pattern: str = "*") -> list[str]:
    """Registered method names matching an fnmatch ``pattern``, sorted."""
    _load_builtins()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def describe_method(name: str) -> str:
    """One-line description of a registered method."""
    return _lookup(name)[1]


def create_method(name: str, config: Optional[Config] = None) -> Method:
    """Build the method called ``name`` from ``config``.

    Parameters
    ----------
    name : str
        A name from :func:`list_methods` (case-insensitive).
    config : Config, optional
        Run configuration; defaults to ``Config()``.

    Raises
    ------
    VdeidError
        Unknown name; the message lists the valid ones.
    """
    factory, _ = _lookup(name)
    return factory(config if config is not None else Config())


def create_fallback(config: Optional[Config] = None) -> Method:
    """Build ``config.attack.fallback``, the naive method for faces the primary method cannot protect.

    It covers each face box grown by ``config.attack.fallback_margin``, not
    by ``config.detect.box_margin`` as the method itself would.
    """
    config = config if config is not None else Config()
    detect = replace(config.detect, box_margin=config.attack.fallback_margin)
    return create_method(config.attack.fallback, replace(config, detect=detect))


def _lookup(name: str):
    _load_builtins()
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        valid = ", ".join(sorted(_REGISTRY))
        raise VdeidError(f"unknown method {name!r}; valid methods: {valid}")
    return _REGISTRY[key]


def _qualname(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _load_builtins() -> None:
    # Importing these modules runs their @register_method decorators.
    from . import naive  # noqa: F401

    try:
        import vdeid.engine  # noqa: F401
    except ModuleNotFoundError as exc:
        # Only a missing engine module is tolerated (it is optional while the
        # adversarial methods are being built); a missing dependency *inside*
        # the engine is a real error.
        if exc.name != "vdeid.engine":
            raise
