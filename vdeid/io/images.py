"""Photo read/write: EXIF orientation in, no metadata out, atomic writes.

Reading applies the EXIF orientation (a phone photo taken in portrait is
stored landscape plus a rotation tag) so faces are detected upright, and
turns every Pillow mode into ``(H, W, 3)`` uint8 RGB.

Writing keeps **no metadata at all**: no EXIF (camera, time, GPS), no XMP, no
IPTC, no comments, no thumbnails (which would hold the unprotected face), and
by default no ICC profile. An ICC profile only describes the colour space, but
its description and device fields can name the phone or camera, so it is
dropped unless the caller passes it back (``icc_profile=`` with
:func:`read_icc_profile`); pixels are written unchanged, so a wide-gamut photo
(Display P3, Adobe RGB) then looks slightly less saturated in colour-managed
viewers. Files are written to a temporary name in the output folder and moved
into place, so an interrupted run never leaves a half-written photo.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Literal, Optional

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..checks import check_shape
from ..errors import InputError, OutputError, VdeidError
from ..imageops import from_float, to_float
from .atomic import atomic_output

logger = logging.getLogger(__name__)

#: Photo suffixes (lower case) that ``vdeid protect`` picks up in folders.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

ImageFormat = Literal["same", "png", "jpg"]

# suffix -> Pillow encoder
_ENCODERS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


def read_image(path: str | Path) -> np.ndarray:
    """Read a photo as upright RGB.

    Parameters
    ----------
    path : str or Path
        A file Pillow can decode (JPEG, PNG, BMP, TIFF, WebP...).

    Returns
    -------
    image : ndarray of shape (H, W, 3), uint8 in [0, 255]
        RGB with the EXIF orientation applied. Greyscale is replicated to
        three channels, palette images are expanded, 16-bit images are
        rescaled to 8 bits, CMYK is converted, and transparency is flattened
        onto white (what most viewers show). Only the first frame of a
        multi-frame file (TIFF pages, animated WebP) is read.

    Raises
    ------
    InputError
        Missing file, a folder, unreadable file, not an image, or a truncated
        or corrupt image.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.is_dir():
        raise InputError("is a folder, not an image file", path=path)
    try:
        with Image.open(path) as img:
            img.load()
            frames = getattr(img, "n_frames", 1)
            if frames > 1 and img.format != "MPO":
                # MPO's extra frames are depth maps/previews, not content.
                logger.warning("%s: %d frames; only the first is read", path, frames)
            try:
                upright = ImageOps.exif_transpose(img)
            except Exception as exc:  # noqa: BLE001 -- a bad EXIF block must not lose the photo
                logger.warning("%s: unreadable EXIF orientation (%s); read as stored", path, exc)
                upright = img
            return _to_rgb8(upright)
    except PermissionError as exc:
        raise InputError("cannot read the file (permission denied)", path=path) from exc
    except UnidentifiedImageError as exc:
        raise InputError("not an image, or an image format vdeid cannot read", path=path) from exc
    except Image.DecompressionBombError as exc:
        raise InputError(f"image is too large to decode safely ({exc})", path=path) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"truncated or corrupt image ({exc})", path=path) from exc


def read_icc_profile(path: str | Path) -> Optional[bytes]:
    """The embedded ICC colour profile of a photo, or None.

    Pass it to :func:`write_image` (``icc_profile=``) to keep the colour
    space of wide-gamut photos; see the module notes on why it is dropped by
    default.
    """
    try:
        with Image.open(path) as img:
            return img.info.get("icc_profile") or None
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        raise InputError(f"cannot read the image ({exc})", path=path) from exc


def write_image(
    path: str | Path,
    image: np.ndarray,
    *,
    format: ImageFormat = "same",
    quality: int = 95,
    source_suffix: Optional[str] = None,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
    icc_profile: Optional[bytes] = None,
) -> Path:
    """Write a photo with no metadata, atomically.

    Parameters
    ----------
    path : str or Path
        Output file (see :func:`output_path_for`). Missing folders are made.
    image : ndarray of shape (H, W, 3)
        RGB, uint8 in [0, 255] (uint16 or float in [0, 1] are converted to
        8 bits).
    format : {"same", "png", "jpg"}, optional
        Encoder: ``same`` keeps the source's format (``source_suffix``, or
        ``path``'s suffix when not given). (Default: "same")
    quality : int, optional
        JPEG/WebP quality in [1, 100]; JPEGs keep full-resolution colour
        (4:4:4) so small perturbations survive. (Default: 95)
    source_suffix : str, optional
        Suffix of the input photo, e.g. ``".jpeg"``, for ``format="same"``.
    overwrite : bool, optional
        Replace an existing file. (Default: False)
    inputs : iterable of path, optional
        Input files; writing over one of them is refused.
    icc_profile : bytes, optional
        ICC profile to embed; None writes none. (Default: None)

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    OutputError
        The file exists (and ``overwrite`` is False), is one of ``inputs``,
        has a suffix no encoder matches, or cannot be written.
    """
    path = Path(path)
    encoder = _encoder_for(format, source_suffix if source_suffix is not None else path.suffix, path)
    if not 1 <= int(quality) <= 100:
        raise VdeidError(f"JPEG quality must be in [1, 100], got {quality}")
    check_shape(image, ["H", "W", 3], "image")
    if image.dtype != np.uint8:
        image = from_float(to_float(image), np.uint8)
    # A fresh Image carries no info dict: nothing from the source can leak.
    pil = Image.fromarray(np.ascontiguousarray(image))
    options: dict = {}
    if encoder == "JPEG":
        options = {"quality": int(quality), "subsampling": 0, "optimize": True}
    elif encoder == "WEBP":
        options = {"quality": int(quality)}
    elif encoder == "PNG":
        options = {"optimize": False}
    elif encoder == "TIFF":
        options = {"compression": "tiff_lzw"}
    if icc_profile and encoder != "BMP":
        options["icc_profile"] = icc_profile
    try:
        # Mirrored photo trees need their sub-folders.
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, overwrite=overwrite, inputs=tuple(inputs)) as tmp:
            pil.save(tmp, format=encoder, **options)
    except VdeidError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write the image ({exc.strerror or exc})", path=path) from exc
    return path


def output_path_for(
    input_path: str | Path,
    input_root: str | Path | None,
    output_dir: str | Path,
    format: ImageFormat = "same",
) -> Path:
    """Where the protected copy of a photo goes.

    Parameters
    ----------
    input_path : str or Path
        The photo.
    input_root : str or Path or None
        The folder the output tree mirrors (the folder given on the command
        line); None or a folder not containing ``input_path`` keeps only the
        file name.
    output_dir : str or Path
        Output folder.
    format : {"same", "png", "jpg"}, optional
        ``png``/``jpg`` change the suffix (an existing ``.jpeg``/``.JPG`` or
        ``.PNG`` is kept); ``same`` keeps it.

    Returns
    -------
    Path
        ``output_dir / (input_path relative to input_root)`` with the suffix
        for ``format``.
    """
    input_path = Path(input_path)
    rel = Path(input_path.name)
    if input_root is not None:
        try:
            rel = Path(os.path.abspath(input_path)).relative_to(os.path.abspath(input_root))
        except ValueError:
            pass
    out = Path(output_dir) / rel
    suffix = out.suffix.lower()
    if format == "png" and suffix != ".png":
        out = out.with_suffix(".png")
    elif format == "jpg" and suffix not in (".jpg", ".jpeg"):
        out = out.with_suffix(".jpg")
    elif format not in ("same", "png", "jpg"):
        raise VdeidError(f"unknown image format {format!r}; choose same, png or jpg")
    return out


def _encoder_for(format: str, suffix: str, path: Path) -> str:
    if format == "png":
        return "PNG"
    if format == "jpg":
        return "JPEG"
    if format != "same":
        raise VdeidError(f"unknown image format {format!r}; choose same, png or jpg")
    encoder = _ENCODERS.get(suffix.lower())
    if encoder is None:
        supported = ", ".join(IMAGE_SUFFIXES)
        raise OutputError(
            f"cannot write format {suffix or '(no suffix)'!r}; use one of {supported} or --image-format png/jpg",
            path=path,
        )
    return encoder


def _to_rgb8(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit greyscale (PNG/TIFF): rescale the full 16-bit range to 8 bits.
        grey = np.clip(np.asarray(img, dtype=np.int64), 0, 65535).astype(np.uint16)
        grey8 = from_float(to_float(grey), np.uint8)
        return np.repeat(grey8[..., None], 3, axis=2)
    if mode == "F":
        grey = np.asarray(img, dtype=np.float32)
        scale = 1.0 if np.nanmax(grey, initial=0.0) <= 1.0 else 255.0
        grey8 = from_float(np.nan_to_num(grey / scale), np.uint8)
        return np.repeat(grey8[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "RGBa", "La", "PA") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb)
