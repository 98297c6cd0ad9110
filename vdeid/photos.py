"""``protect_image`` for one picture and ``protect_photos`` for files and folder trees."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from .config import Config, resolve_device
from .detect import FaceDetector
from .errors import VdeidError
from .faces import Faces
from .io.images import IMAGE_SUFFIXES, output_path_for, read_image, write_image
from .methods.base import FaceOutcome, Method
from .methods.registry import create_method
from .pipeline import _fallback_for, protect_chunk
from .progress import Progress, ProgressCallback, no_progress
from .report import Report, fallback_reasons
from .track.turned import widen_turned_faces

logger = logging.getLogger(__name__)


@dataclass
class ImageResult:
    """A protected picture.

    Attributes
    ----------
    image : ndarray of shape (H, W, 3), uint8
        The protected RGB image.
    faces : Faces
        What the detector found.
    outcomes : list of FaceOutcome
        One per face: the method that produced its pixels.
    """

    image: np.ndarray
    faces: Faces
    outcomes: list[FaceOutcome] = field(default_factory=list)


@dataclass
class PhotoResult:
    """What happened to one file of a ``protect_photos`` run."""

    input: str
    output: Optional[str]
    faces: int = 0
    fallback: int = 0
    seconds: float = 0.0
    error: Optional[str] = None


class ImageProtector:
    """Detector and method built once, applied to many pictures."""

    def __init__(self, config: Optional[Config] = None):
        self.config = config or Config()
        device = resolve_device(self.config.device)
        resolved = replace(self.config, device=device)
        self.detector = FaceDetector(self.config.detect, device)
        self.method: Method = create_method(self.config.method, resolved)
        self.fallback = _fallback_for(self.method, self.config, device)
        self.report = Report(input="", output="", config=self.config.to_dict(), device=device)

    def __call__(self, image: np.ndarray) -> ImageResult:
        """Protect every face of one ``(H, W, 3)`` uint8 RGB image."""
        # Photos skip tracking, which is where video widens turned faces' boxes.
        faces = widen_turned_faces(self.detector.detect([image])[0])
        self.method.reset()
        out, outcomes = protect_chunk(self.method, self.fallback, [image], [faces], self.report)
        return ImageResult(out[0], faces, outcomes)


def protect_image(image: np.ndarray | str | Path, config: Optional[Config] = None) -> ImageResult:
    """Protect every face in one picture.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3) uint8, or path
        RGB pixels, or a file to read (EXIF orientation is applied).
    config : Config, optional
        ``method`` and its options, as for :func:`vdeid.process_video`.

    Returns
    -------
    ImageResult
        The protected image, the faces found and one outcome per face.
    """
    if not isinstance(image, np.ndarray):
        image = read_image(image)
    return ImageProtector(config)(image)


def collect_photos(inputs: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """Expand files and folders (recursively) into ``(photo, root)`` pairs.

    ``root`` is the folder the output tree mirrors: the given folder for
    photos found inside one, the photo's own folder for a file given
    directly. Raises InputError for a path that does not exist.
    """
    from .errors import InputError

    pairs = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            pairs.extend((p, path) for p in found)
        elif path.is_file():
            pairs.append((path, path.parent))
        else:
            raise InputError("no such file or folder", path=path)
    return pairs


def protect_photos(
    inputs: Iterable[str | Path],
    output_dir: str | Path,
    config: Optional[Config] = None,
    *,
    progress: ProgressCallback = no_progress,
) -> list[PhotoResult]:
    """Protect photos given as files or folders into ``output_dir``.

    The output tree mirrors each input's path relative to the folder it was
    found in. A file that fails is reported in its :class:`PhotoResult` and
    the others go on.
    """
    config = config or Config()
    pairs = collect_photos(inputs)
    protector = ImageProtector(config)
    results = []
    for done, (photo, root) in enumerate(pairs, start=1):
        start = time.perf_counter()
        out_path = output_path_for(photo, root, output_dir, config.encode.image_format)
        result = PhotoResult(str(photo), str(out_path))
        try:
            protected = protector(read_image(photo))
            write_image(
                out_path,
                protected.image,
                format=config.encode.image_format,
                quality=config.encode.jpeg_quality,
                overwrite=config.overwrite,
                inputs=(photo,),
            )
            result.faces = len(protected.faces)
            result.fallback = sum(fallback_reasons(protected.outcomes, protector.method.name).values())
        except VdeidError as exc:
            result.output, result.error = None, str(exc)
            logger.warning("%s", exc)
        result.seconds = time.perf_counter() - start
        results.append(result)
        progress(Progress("images", done, len(pairs), {"faces": sum(r.faces for r in results)}))
    return results
