"""vdeid: de-identify faces in video and drone footage.

The two entry points mirror the CLI: :func:`process_video` (``vdeid process``)
and :func:`protect_image` / :func:`protect_photos` (``vdeid protect``).
"""

import sys as _sys

if _sys.argv[:1] == ["-m"]:
    # ``python -m vdeid`` is the command, but Python imports this package, and
    # with it torch, before vdeid/__main__.py: the command's process settings
    # (cli/tuning.py) have to come first. argv[0] is "-m" only while the
    # module named by -m is being located.
    from cli.tuning import tune_process

    tune_process()

from .config import AttackConfig, Config, DetectConfig, EncodeConfig, NaiveConfig, TrackConfig
from .errors import InputError, ModelError, OutputError, ShapeError, VdeidError
from .faces import Faces
from .photos import ImageResult, protect_image, protect_photos
from .pipeline import process_video
from .report import Report

__version__ = "0.1.0"

__all__ = [
    "AttackConfig",
    "Config",
    "DetectConfig",
    "EncodeConfig",
    "Faces",
    "ImageResult",
    "InputError",
    "ModelError",
    "NaiveConfig",
    "OutputError",
    "Report",
    "ShapeError",
    "TrackConfig",
    "VdeidError",
    "process_video",
    "protect_image",
    "protect_photos",
]
