"""Closed-set identification over a photo gallery, as a differentiable classifier.

A gallery is a folder of ``<Identity>/<photo>`` folders; loose photos at its
top level (e.g. ../shared/data/lfw_gallery/*.jpg) are distractors, one
identity each, named after the file. :class:`GalleryHead` turns a recogniser
into logits over those identities (scaled cosine to each identity's centroid
of unit-length descriptors), so cross-entropy attacks and top-k evaluation
work on it. For an ensemble, build one head per recogniser over the same
gallery and average their logits with :class:`GalleryEnsemble`.
"""

from __future__ import annotations

import itertools
import logging
import weakref
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_shape
from ..errors import InputError, ModelError
from ..faces import Faces
from ..imageops import to_float
from .base import Recognizer

logger = logging.getLogger(__name__)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

#: Longest side, in pixels, of the face box in the crops handed to a
#: recogniser: large photos are shrunk with area averaging first, because the
#: recogniser's bilinear warp would alias a 5x downscale.
MAX_FACE_SIDE = 224


class Detector(Protocol):
    """What :func:`embed_photos` needs: :class:`vdeid.detect.FaceDetector`'s ``detect``."""

    def detect(self, frames: list[np.ndarray]) -> list[Faces]: ...


def gallery_photos(root: str | Path) -> list[tuple[str, Path]]:
    """``(identity, photo path)`` of every photo in a gallery folder, sorted.

    ``root/<Identity>/<photo>`` gives ``Identity``; a photo directly in
    ``root`` is a one-photo identity named after its file stem.

    Raises
    ------
    InputError
        ``root`` is not a folder or holds no photos.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError("gallery folder not found; pass a folder of <Identity>/<photo> folders", root)
    out = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            out += [(entry.name, p) for p in sorted(entry.iterdir()) if p.suffix.lower() in PHOTO_SUFFIXES]
        elif entry.suffix.lower() in PHOTO_SUFFIXES:
            out.append((entry.stem, entry))
    if not out:
        raise InputError("no photos (.jpg, .png...) in this gallery folder", root)
    return out


# Caches keyed by the detector / recogniser object (weakly, so they die with
# it) and then by (path, mtime, size), so an edited photo is looked at again.
_FACE_CACHE: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()
_EMBED_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def _file_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def read_photo(path: str | Path) -> np.ndarray:
    """A photo as ``(H, W, 3)`` uint8 RGB (EXIF rotation applied).

    Raises
    ------
    InputError
        Missing or undecodable file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, UnidentifiedImageError) as ex:
        raise InputError(f"cannot read photo ({ex})", path) from ex


def photo_face(path: str | Path, detector: Detector) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Crop of the main face of a photo and its landmarks, or None.

    The main face is the detection nearest the photo's centre (the named
    person in LFW-style photos). The crop is the box grown by 50 % on each
    side, clipped to the photo, and shrunk so the box is at most
    :data:`MAX_FACE_SIDE` pixels.

    Returns
    -------
    crop : Tensor of shape (1, 3, h, w)
        float32 RGB in [0, 1].
    landmarks : Tensor of shape (1, 5, 2)
        ``(x, y)`` in crop pixels.
    """
    path = Path(path)
    key = _file_key(path)
    cache = _FACE_CACHE.setdefault(detector, {})
    if key not in cache:
        cache[key] = _main_face(read_photo(path), detector)
    found = cache[key]
    if found is None:
        return None
    crop, landmarks = found
    return torch.from_numpy(to_float(crop)).permute(2, 0, 1)[None].contiguous(), torch.from_numpy(landmarks)[None]


def _main_face(image: np.ndarray, detector: Detector) -> tuple[np.ndarray, np.ndarray] | None:
    import cv2

    faces = detector.detect([image])[0]
    if len(faces) == 0:
        return None
    h, w = image.shape[:2]
    centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
    i = int(np.argmin(((centres - (w / 2, h / 2)) ** 2).sum(1)))
    box, landmarks = faces.boxes[i], faces.landmarks[i].astype(np.float32)
    side = float(max(box[2] - box[0], box[3] - box[1]))
    x0, y0 = int(max(0, np.floor(box[0] - side / 2))), int(max(0, np.floor(box[1] - side / 2)))
    x1, y1 = int(min(w, np.ceil(box[2] + side / 2))), int(min(h, np.ceil(box[3] + side / 2)))
    crop = image[y0:y1, x0:x1]
    landmarks = landmarks - (x0, y0)
    scale = MAX_FACE_SIDE / side
    if scale < 1:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        landmarks = landmarks * (size[0] / (x1 - x0), size[1] / (y1 - y0))
    return np.ascontiguousarray(crop), landmarks.astype(np.float32)


def embed_photos(
    paths: Sequence[str | Path], recognizer: Recognizer, detector: Detector
) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of the main face of each photo.

    Results are cached in memory per recogniser object and per file
    (path, mtime, size), so re-embedding a gallery is free.

    Parameters
    ----------
    paths : sequence of path
        Photos (any size).
    recognizer : Recognizer
        Used in eval mode, without gradients.
    detector : Detector
        E.g. ``vdeid.detect.FaceDetector(DetectConfig(), device)``.

    Returns
    -------
    embeddings : ndarray of shape (N, D), float32
        The recogniser's raw descriptors (compare with its ``distance``);
        NaN rows where no face was found.
    valid : ndarray of shape (N,), bool
        False where no face was found.
    """
    cache = _EMBED_CACHE.setdefault(recognizer, {})
    device = _device_of(recognizer)
    rows: list[np.ndarray | None] = []
    for path in paths:
        key = _file_key(Path(path))
        if key not in cache:
            face = photo_face(path, detector)
            if face is None:
                logger.info("%s: no face found; left out", path)
                cache[key] = None
            else:
                crop, landmarks = face
                with torch.no_grad():
                    cache[key] = recognizer(crop.to(device), landmarks.to(device))[0].float().cpu().numpy()
        rows.append(cache[key])
    dim = recognizer.cfg.embedding_dim
    valid = np.array([r is not None for r in rows], bool)
    out = np.full((len(rows), dim), np.nan, np.float32)
    for i, r in enumerate(rows):
        if r is not None:
            out[i] = r
    return out, valid


def _device_of(module: nn.Module) -> torch.device:
    tensor = next(itertools.chain(module.parameters(), module.buffers()), None)
    return torch.device("cpu") if tensor is None else tensor.device


def identity_centroids(embeddings: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Unit-length mean of each identity's unit-length descriptors.

    Parameters
    ----------
    embeddings : ndarray of shape (N, D)
        Valid rows only.
    labels : sequence of str, length N

    Returns
    -------
    centroids : ndarray of shape (K, D), float32
    names : list of str, length K, sorted
    """
    emb = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    labels = np.asarray(labels)
    names = sorted(set(labels.tolist()))
    cent = np.stack([emb[labels == n].mean(0) for n in names])
    return (cent / np.linalg.norm(cent, axis=1, keepdims=True)).astype(np.float32), names


class GalleryHead(nn.Module):
    """Logits over gallery identities: ``scale`` × cosine(descriptor, centroid).

    Parameters
    ----------
    recognizer : Recognizer
        Any registered recogniser (kept frozen).
    centroids : Tensor or ndarray of shape (K, D)
        Unit-length identity centroids (:func:`identity_centroids`).
    names : sequence of str, length K
        Identity names, row order of ``centroids``.
    scale : float
        Logit temperature. The default 30 makes a cosine gap of 0.1 a
        20:1 probability ratio, so softmax/cross-entropy are neither flat
        nor saturated (CosFace/ArcFace use 30-64 in training).

    Shape:
        - crops: :math:`(B, 3, H, W)` float in [0, 1], RGB.
        - landmarks: :math:`(B, 5, 2)` ``(x, y)`` crop pixels.
        - output: :math:`(B, K)` logits; differentiable in ``crops``.

    Examples
    --------
    >>> head = GalleryHead.from_folder("gallery/", recognizer, detector=detector)
    >>> head.names[head(crops, landmarks).argmax(1)[0]]
    'Tony_Blair'
    """

    def __init__(self, recognizer: Recognizer, centroids, names: Sequence[str], *, scale: float = 30.0):
        super().__init__()
        if torch.is_tensor(centroids):  # on any device (np.asarray would need it on the host)
            centroids = centroids.detach().float()
        else:
            centroids = torch.as_tensor(np.asarray(centroids), dtype=torch.float32)
        check_shape(centroids, [len(names), recognizer.cfg.embedding_dim], "centroids")
        self.recognizer = recognizer
        self.register_buffer("centroids", F.normalize(centroids, dim=1))
        self.names = list(names)
        self.scale = float(scale)

    def forward(self, crops: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        emb = F.normalize(self.recognizer(crops, landmarks), dim=1)
        return self.scale * emb @ self.centroids.to(emb).T

    def index(self, name: str) -> int:
        """Row of identity ``name`` (a label for cross-entropy)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ModelError(f"identity {name!r} is not in the gallery ({len(self.names)} identities)") from None

    @classmethod
    def from_photos(
        cls,
        photos: Iterable[tuple[str, str | Path]],
        recognizer: Recognizer,
        *,
        detector: Detector,
        scale: float = 30.0,
    ) -> "GalleryHead":
        """Enrol ``(identity, photo path)`` pairs; photos without a face are skipped.

        Raises
        ------
        InputError
            No face was found in any photo.
        """
        photos = list(photos)
        if not photos:
            raise InputError("the gallery is empty: no photos to enrol")
        emb, valid = embed_photos([p for _, p in photos], recognizer, detector)
        if not valid.any():
            raise InputError("no face found in any gallery photo", photos[0][1])
        skipped = int((~valid).sum())
        if skipped:
            logger.warning("%d of %d gallery photos have no detectable face and were skipped", skipped, len(photos))
        labels = [name for (name, _), ok in zip(photos, valid) if ok]
        centroids, names = identity_centroids(emb[valid], labels)
        return cls(recognizer, centroids, names, scale=scale)

    @classmethod
    def from_folder(
        cls, root: str | Path, recognizer: Recognizer, *, detector: Detector, scale: float = 30.0
    ) -> "GalleryHead":
        """Enrol every photo of a gallery folder (see :func:`gallery_photos`)."""
        return cls.from_photos(gallery_photos(root), recognizer, detector=detector, scale=scale)


class GalleryEnsemble(nn.Module):
    """Mean of the logits of several :class:`GalleryHead` over the same identities.

    Averaging logits (a product of the heads' softmax distributions, up to
    normalisation) keeps one cross-entropy loss for all recognisers, so an
    attack has to move every one of them.

    Shape:
        - output: :math:`(B, K)` logits.
    """

    def __init__(self, heads: Sequence[GalleryHead]):
        super().__init__()
        if not heads:
            raise ModelError("an ensemble needs at least one gallery head")
        if any(h.names != heads[0].names for h in heads[1:]):
            raise ModelError("gallery heads of an ensemble must list the same identities in the same order")
        self.heads = nn.ModuleList(heads)
        self.names = list(heads[0].names)

    def forward(self, crops: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return torch.stack([h(crops, landmarks) for h in self.heads]).mean(0)


def build_gallery(
    root: str | Path, recognizers: Sequence[Recognizer], *, detector: Detector, scale: float = 30.0
) -> GalleryHead | GalleryEnsemble:
    """One head for one recogniser, an ensemble of heads for several.

    A photo whose face one recogniser cannot embed is dropped for all, so
    every head lists the same identities.
    """
    photos = gallery_photos(root)
    paths = [p for _, p in photos]
    valid = np.ones(len(photos), bool)
    for rec in recognizers:
        valid &= embed_photos(paths, rec, detector)[1]
    kept = [ph for ph, ok in zip(photos, valid) if ok]
    heads = [GalleryHead.from_photos(kept, rec, detector=detector, scale=scale) for rec in recognizers]
    return heads[0] if len(heads) == 1 else GalleryEnsemble(heads)
