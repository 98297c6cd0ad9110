"""1:N identification over enrolled identities plus distractors (Top-k ranks).

The protocol of Ghafourian et al.: each identity of the face set is enrolled
from its *other* photos, every distractor photo is a one-photo identity of
its own, and a probe (the protected photo) is ranked against all of them.
An identity is the unit-length mean of its photos' unit-length descriptors
(:func:`vdeid.recognizers.gallery.identity_centroids`, the same centroids
the attacks' :class:`~vdeid.recognizers.gallery.GalleryHead` uses); a probe
scores each identity by cosine similarity.

Descriptors of enrolment and distractor photos are cached on disk
(:class:`EmbeddingStore`), so a rerun does not detect and embed 1,500
photos again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..checks import check_shape
from ..errors import InputError
from ..recognizers.gallery import PHOTO_SUFFIXES, embed_photos, identity_centroids
from .metrics import true_ranks

logger = logging.getLogger(__name__)

__all__ = [
    "ProbeSplit",
    "split_identities",
    "distractor_photos",
    "IdentityGallery",
    "EmbeddingStore",
    "embed_face",
]


@dataclass
class ProbeSplit:
    """Probes and enrolment photos of one identity.

    Attributes
    ----------
    identity : str
        Folder name.
    probes : list of Path
        Photos that are protected and then identified.
    enrol : list of Path
        The identity's other photos, enrolled in the gallery.
    """

    identity: str
    probes: list[Path]
    enrol: list[Path]


def split_identities(
    faces_dir: str | Path,
    *,
    probes_per_identity: int = 2,
    limit_identities: Optional[int] = None,
    seed: int = 0,
) -> list[ProbeSplit]:
    """Choose probe photos per identity; the remaining photos are its enrolment.

    Parameters
    ----------
    faces_dir : str or Path
        Folder of ``<Identity>/<photo>`` folders.
    probes_per_identity : int, optional
        Probes drawn per identity (at random with ``seed``); an identity
        keeps at least one enrolment photo, so one with ``n`` photos gives
        ``min(probes_per_identity, n - 1)`` probes. (Default: 2)
    limit_identities : int, optional
        Use only the first ``limit_identities`` identities in name order.
    seed : int, optional
        Seed of the draw. (Default: 0)

    Returns
    -------
    list of ProbeSplit
        Sorted by identity; identities with fewer than two photos are left
        out.

    Raises
    ------
    InputError
        ``faces_dir`` is missing or holds no identity with two photos.
    """
    root = Path(faces_dir)
    if not root.is_dir():
        raise InputError("faces folder not found; pass a folder of <Identity>/<photo> folders", root)
    if probes_per_identity < 1:
        raise InputError(f"probes per identity must be >= 1, got {probes_per_identity}", root)
    rng = random.Random(seed)
    out = []
    for entry in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(p for p in entry.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        if len(photos) < 2:
            logger.info("%s: fewer than two photos; left out", entry)
            continue
        order = photos[:]
        rng.shuffle(order)
        n = min(probes_per_identity, len(photos) - 1)
        out.append(ProbeSplit(entry.name, sorted(order[:n]), sorted(order[n:])))
        if limit_identities is not None and len(out) >= limit_identities:
            break
    if not out:
        raise InputError("no identity folder with at least two photos", root)
    return out


def distractor_photos(gallery_dir: str | Path, *, limit: Optional[int] = None) -> list[tuple[str, Path]]:
    """``(name, path)`` of every distractor photo; each is an identity of its own.

    Loose photos are named after their file stem; photos in sub-folders
    after ``folder/stem`` (one identity per photo, never merged).
    """
    root = Path(gallery_dir)
    if not root.is_dir():
        raise InputError("distractor folder not found; pass a folder of photos", root)
    photos = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if limit is not None:
        photos = photos[: int(limit)]
    return [("distractor:" + p.relative_to(root).with_suffix("").as_posix(), p) for p in photos]


@dataclass
class IdentityGallery:
    """Enrolled identities of one recogniser.

    Attributes
    ----------
    centroids : ndarray of shape (K, D), float32
        Unit-length identity descriptors.
    names : list of str, length K
    distractor : ndarray of shape (K,), bool
        True for the one-photo distractor identities.
    """

    centroids: np.ndarray
    names: list[str]
    distractor: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __post_init__(self):
        check_shape(self.centroids, [len(self.names), "D"], "centroids")
        if len(self.distractor) != len(self.names):
            self.distractor = np.zeros(len(self.names), bool)
        self._index = {n: i for i, n in enumerate(self.names)}

    @classmethod
    def build(
        cls,
        embeddings: np.ndarray,
        labels: Sequence[str],
        *,
        distractors: Optional[np.ndarray] = None,
        distractor_names: Sequence[str] = (),
    ) -> "IdentityGallery":
        """Enrol labelled descriptors plus one-photo distractor identities.

        Parameters
        ----------
        embeddings : ndarray of shape (N, D)
            Enrolment descriptors (no NaN rows).
        labels : sequence of str, length N
            Identity of each row.
        distractors : ndarray of shape (M, D), optional
            One descriptor per distractor identity (no NaN rows).
        distractor_names : sequence of str, length M
        """
        cent, names = identity_centroids(np.asarray(embeddings, np.float32), list(labels))
        flags = [False] * len(names)
        if distractors is not None and len(distractors):
            d = np.asarray(distractors, np.float32)
            d = d / np.linalg.norm(d, axis=1, keepdims=True)
            clash = set(names) & set(distractor_names)
            if clash:
                raise InputError(f"distractor names clash with enrolled identities: {sorted(clash)[:3]}")
            cent = np.concatenate([cent, d.astype(np.float32)])
            names = names + list(distractor_names)
            flags += [True] * len(d)
        return cls(cent, names, np.asarray(flags, bool))

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Row of an identity (raises KeyError for an unknown one)."""
        return self._index[name]

    def scores(self, probes: np.ndarray) -> np.ndarray:
        """Cosine similarity ``(N, K)`` of probe descriptors ``(N, D)`` to every identity.

        NaN probe rows (no face) give NaN rows.
        """
        p = np.asarray(probes, np.float64)
        check_shape(p, ["N", self.centroids.shape[1]], "probes")
        norm = np.linalg.norm(p, axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = p / norm
        return p @ self.centroids.astype(np.float64).T

    def ranks(self, probes: np.ndarray, labels: Sequence[str], *, closed_set: bool = False) -> np.ndarray:
        """1-based rank of each probe's true identity.

        Parameters
        ----------
        probes : ndarray of shape (N, D)
        labels : sequence of str, length N
            True identities (enrolled names).
        closed_set : bool, optional
            Rank among the enrolled identities only, distractors left out
            (the closed-set classification of the P-FGVM paper).
            (Default: False)

        Returns
        -------
        ndarray of shape (N,), int64
            See :func:`vdeid.evaluate.metrics.true_ranks`.
        """
        s = self.scores(probes)
        idx = np.array([self.index(n) for n in labels], np.int64)
        if closed_set:
            keep = np.flatnonzero(~self.distractor)
            remap = -np.ones(len(self), np.int64)
            remap[keep] = np.arange(len(keep))
            s, idx = s[:, keep], remap[idx]
        return true_ranks(s, idx)


class EmbeddingStore:
    """Photo descriptors of one recogniser, cached in an ``.npz`` file.

    Keys are ``(resolved path, mtime, size)`` of each photo, so an edited
    photo is embedded again. The file is written atomically after each
    :meth:`embed` call that computed something new.

    Parameters
    ----------
    path : str or Path
        The cache file (created when missing).
    recognizer : Recognizer
        Embeds the main face of each photo (see
        :func:`vdeid.recognizers.gallery.embed_photos`).
    detector : object
        ``detect(list of uint8 frames) -> list[Faces]``.
    """

    def __init__(self, path: str | Path, recognizer, detector):
        self.path = Path(path)
        self.recognizer = recognizer
        self.detector = detector
        self._rows: dict[str, Optional[np.ndarray]] = {}
        if self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    keys = [str(k) for k in data["keys"]]
                    emb, valid = data["embeddings"], data["valid"]
                self._rows = {k: (e if v else None) for k, e, v in zip(keys, emb, valid)}
            except (OSError, KeyError, ValueError) as exc:
                logger.warning("%s: unreadable embedding cache (%s); starting afresh", self.path, exc)

    @staticmethod
    def key(path: str | Path) -> str:
        p = Path(path)
        st = p.stat()
        return f"{p.resolve()}|{st.st_mtime_ns}|{st.st_size}"

    def embed(self, paths: Sequence[str | Path]) -> tuple[np.ndarray, np.ndarray]:
        """Descriptors ``(N, D)`` float32 (NaN rows where no face) and validity ``(N,)``."""
        keys = [self.key(p) for p in paths]
        missing = [p for p, k in zip(paths, keys) if k not in self._rows]
        if missing:
            emb, valid = embed_photos(missing, self.recognizer, self.detector)
            for p, e, v in zip(missing, emb, valid):
                self._rows[self.key(p)] = e if v else None
            self._save()
        dim = self.recognizer.cfg.embedding_dim
        out = np.full((len(paths), dim), np.nan, np.float32)
        valid = np.zeros(len(paths), bool)
        for i, k in enumerate(keys):
            row = self._rows[k]
            if row is not None:
                out[i], valid[i] = row, True
        return out, valid

    def _save(self) -> None:
        keys = list(self._rows)
        dim = self.recognizer.cfg.embedding_dim
        emb = np.stack([self._rows[k] if self._rows[k] is not None else np.zeros(dim, np.float32) for k in keys])
        valid = np.array([self._rows[k] is not None for k in keys], bool)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A per-process name: --jobs workers may save the same store.
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, keys=np.array(keys), embeddings=emb.astype(np.float32), valid=valid)
        tmp.replace(self.path)


def embed_face(image: np.ndarray, landmarks: np.ndarray, recognizer) -> np.ndarray:
    """Descriptor of one face of a uint8 image, given its five landmarks.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        RGB; the recogniser aligns its own chip from the landmarks.
    landmarks : ndarray of shape (5, 2)
        ``(x, y)`` image pixels, MTCNN order.
    recognizer : Recognizer

    Returns
    -------
    ndarray of shape (D,), float32
    """
    from ..imageops import to_float

    check_shape(image, ["H", "W", 3], "image")
    crop = torch.from_numpy(to_float(image)).permute(2, 0, 1)[None].contiguous()
    lm = torch.as_tensor(np.asarray(landmarks, np.float32)).reshape(1, 5, 2)
    device = next(iter(recognizer.parameters()), torch.zeros(0)).device
    with torch.no_grad():
        return recognizer(crop.to(device), lm.to(device))[0].float().cpu().numpy()


def file_digest(path: str | Path) -> str:
    """Short content-free key of a file: path, mtime and size hashed."""
    return hashlib.sha1(EmbeddingStore.key(path).encode()).hexdigest()[:16]


def stable_hash(obj) -> str:
    """Hex digest of a JSON-serialisable object (sorted keys)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]
