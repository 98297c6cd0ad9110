"""Collect the files of a corpus folder and decide where each one's output goes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from ..errors import InputError
from ..io.images import IMAGE_SUFFIXES, output_path_for

#: Video suffixes (lower case) that ``vdeid batch`` protects; the output keeps
#: the container of the input. Drone cameras write ``.MP4``/``.MOV``.
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mts", ".m2ts", ".ts", ".mpg", ".mpeg")

#: Name of the manifest inside the output folder.
MANIFEST_NAME = "manifest.jsonl"

Kind = Literal["video", "photo", "other"]


@dataclass(frozen=True)
class Item:
    """One file of the corpus.

    Attributes
    ----------
    kind : {"video", "photo", "other"}
        What the suffix says the file is; ``other`` files are not protected.
    source : Path
        Absolute path of the input file.
    rel : str
        Input path relative to the input folder, POSIX separators (the key
        of the file in the manifest).
    output : Path or None
        Absolute path of the output file; None for ``other`` files that are
        not copied.
    output_rel : str or None
        ``output`` relative to the output folder, POSIX separators.
    conflict : str or None
        Why this file cannot be written (another input maps to the same
        output); such a file is recorded as failed.
    """

    kind: Kind
    source: Path
    rel: str
    output: Optional[Path]
    output_rel: Optional[str]
    conflict: Optional[str] = None


def kind_of(path: str | Path) -> Kind:
    """``"video"``, ``"photo"`` or ``"other"`` from the file suffix (case-insensitive)."""
    suffix = Path(path).suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in IMAGE_SUFFIXES:
        return "photo"
    return "other"


def collect_items(
    input_dir: str | Path,
    output_dir: str | Path,
    *,
    image_format: str = "same",
    copy_other: bool = False,
) -> list[Item]:
    """Every file under ``input_dir``, recursively, sorted by relative path.

    Parameters
    ----------
    input_dir : str or Path
        The corpus folder. Symbolic links to folders are not followed; the
        output folder is left out when it lies inside ``input_dir``.
    output_dir : str or Path
        Where the mirrored tree is written.
    image_format : {"same", "png", "jpg"}, optional
        Photo outputs change suffix for ``png``/``jpg``. (Default: "same")
    copy_other : bool, optional
        Give ``other`` files an output path (a plain copy). (Default: False)

    Returns
    -------
    list of Item
        One per file, videos and photos with their output path.

    Raises
    ------
    InputError
        ``input_dir`` is not a folder, or is the output folder.
    """
    root = Path(os.path.abspath(input_dir))
    out_root = Path(os.path.abspath(output_dir))
    if not root.is_dir():
        raise InputError("not a folder; vdeid batch takes a folder of videos and photos", root)
    if root == out_root:
        raise InputError("the output folder is the input folder; choose another -o folder (inputs are never overwritten)", root)
    # Outputs, not inputs: the manifest, and a previous run's tree when -o lies inside the input.
    reserved = {Path(os.path.normcase(out_root / MANIFEST_NAME)): "the manifest"}
    items: list[Item] = []
    for source in _walk(root, skip=out_root):
        rel = source.relative_to(root).as_posix()
        kind = kind_of(source)
        if kind == "photo":
            output: Optional[Path] = output_path_for(source, root, out_root, image_format)
        elif kind == "video" or copy_other:
            output = out_root / rel
        else:
            output = None
        conflict = None
        if output is not None:
            key = Path(os.path.normcase(output))
            if key in reserved:
                conflict = f"its output {output.relative_to(out_root).as_posix()} is also the output of {reserved[key]}; rename one of them or use --format same"
            else:
                reserved[key] = rel
        items.append(
            Item(
                kind=kind,
                source=source,
                rel=rel,
                output=output,
                output_rel=None if output is None else output.relative_to(out_root).as_posix(),
                conflict=conflict,
            )
        )
    return items


def _walk(root: Path, *, skip: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        # Sorted in place so os.walk descends in a stable order.
        dirs[:] = sorted(d for d in dirs if here / d != skip)
        found.extend(here / f for f in files if (here / f).is_file())
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())
