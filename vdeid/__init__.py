"""vdeid: de-identify faces in video and drone footage.

The two entry points mirror the CLI: :func:`process_video` (``vdeid process``)
and :func:`protect_image` / :func:`protect_photos` (``vdeid protect``).
"""

import importlib

__version__ = "0.1.0"

# Names load on first use (PEP 562), so importing the package does not load
# torch: ``python -m vdeid`` imports it before vdeid/__main__.py runs, and the
# command's process settings (cli/tuning.py) have to come before torch.
_EXPORTS = {
    "AttackConfig": ".config",
    "Config": ".config",
    "DetectConfig": ".config",
    "EncodeConfig": ".config",
    "NaiveConfig": ".config",
    "TrackConfig": ".config",
    "InputError": ".errors",
    "ModelError": ".errors",
    "OutputError": ".errors",
    "ShapeError": ".errors",
    "VdeidError": ".errors",
    "Faces": ".faces",
    "ImageResult": ".photos",
    "protect_image": ".photos",
    "protect_photos": ".photos",
    "process_video": ".pipeline",
    "Report": ".report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
