"""Reconstruction-based de-identification: PCA eigenfaces and hypersphere projection.

The lecture notes "Face De-identification for privacy protection" (AUTH)
describe reconstruction-based methods as: obtain the face's coefficients in
some reconstruction basis (SVD, PCA, autoencoder), modify them, and rebuild a
distorted face. SVD-DID lives with the naive methods
(:func:`vdeid.methods.naive.svd_faces`); this module adds the two methods
that need a basis *fitted on a face set*:

- ``pca``: the face, aligned to a fixed template, is projected onto the
  first ``n_components`` eigenfaces (Turk and Pentland) and rebuilt from them
  alone; the detail that makes a face individual lives in the discarded
  components.
- ``hypersphere``: the face's whitened eigenface coefficients ``z`` (unit
  variance per component) are projected onto the hypersphere of radius
  ``radius`` (``z' = radius * z / |z|``) and rebuilt. Every face ends up
  equally far (in Mahalanobis distance) from the mean face, so how
  *distinctive* a face is no longer shows; a small radius pulls every face
  towards the average face. The notes show "hypersphere projection with
  radius of 8" without defining the space; this whitened-coefficient
  reading is ours and documented in ``docs/results.md``.

Both are *evaluation-only* methods: they need an eigenface basis fitted on a
face set (here the LFW distractors, disjoint from the probe identities), which
the product does not ship, so they are not in the ``--method`` registry. They
follow the :class:`~vdeid.methods.base.Method` protocol, so the evaluation
runs them exactly like the shipped methods.

The rebuilt chip is warped back into the frame and blended through the
feathered face ellipse of :mod:`vdeid.methods.mask`; pixels outside the
grown face boxes keep their exact values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from ..checks import check_shape
from ..composite import blend_into
from ..errors import InputError, ShapeError, VdeidError
from ..faces import Faces, expand_boxes
from ..imageops import to_float
from ..methods.base import FaceOutcome
from ..methods.mask import box_region, ellipse_mask_in_region

__all__ = [
    "CHIP_SIZE",
    "chip_template",
    "align_chip",
    "EigenfaceModel",
    "fit_eigenfaces",
    "pca_reconstruct",
    "hypersphere_project",
    "reconstruct_faces",
    "PcaFaces",
    "HypersphereFaces",
]

#: Side of the aligned chip the eigenfaces live on, in pixels.
CHIP_SIZE = 64

# insightface's 112×112 arcface template (MTCNN order): a tight chip whose
# eyes, nose and mouth carry the identity.
_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float64,
)

# Typical MTCNN landmark positions in their face box (fractions of width and
# height), used where a bridged face has no landmarks.
_BOX_LANDMARKS = np.array([[0.31, 0.40], [0.69, 0.40], [0.50, 0.58], [0.35, 0.78], [0.65, 0.78]], np.float64)


def chip_template(size: int = CHIP_SIZE) -> np.ndarray:
    """Five landmark positions ``(5, 2)`` ``(x, y)`` in a ``size``-pixel chip."""
    return _TEMPLATE_112 * (size / 112.0)


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    from skimage.transform import SimilarityTransform

    tf = SimilarityTransform.from_estimate(src, dst) if hasattr(SimilarityTransform, "from_estimate") else None
    if tf is None:
        tf = SimilarityTransform()
        tf.estimate(src, dst)
    return np.asarray(tf.params[:2], np.float64)


def _landmarks_or_box(landmarks: np.ndarray, box: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    if np.isfinite(lm).all():
        return lm
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([x0, y0]) + _BOX_LANDMARKS * np.array([x1 - x0, y1 - y0])


def align_chip(image: np.ndarray, landmarks: np.ndarray, *, size: int = CHIP_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Warp a face to the eigenface chip.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8, uint16 or float in [0, 1].
    landmarks : ndarray of shape (5, 2)
        ``(x, y)`` image pixels, MTCNN order.
    size : int, optional
        Chip side. (Default: :data:`CHIP_SIZE`)

    Returns
    -------
    chip : ndarray of shape (size, size, 3), float32 in [0, 1]
    matrix : ndarray of shape (2, 3)
        Image → chip similarity (OpenCV convention).
    """
    check_shape(image, ["H", "W", 3], "image")
    m = _similarity(np.asarray(landmarks, np.float64).reshape(5, 2), chip_template(size))
    img = to_float(image)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.5:
        # Anti-alias a strong shrink (bilinear warps only look at 4 pixels).
        sigma = 0.5 / scale
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma)
    chip = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.clip(chip, 0.0, 1.0).astype(np.float32), m


@dataclass
class EigenfaceModel:
    """Eigenfaces of aligned colour chips.

    Attributes
    ----------
    mean : ndarray of shape (D,), float32
        Mean chip, ``D = size * size * 3``, [0, 1] pixels.
    components : ndarray of shape (K, D), float32
        Orthonormal eigenfaces, by decreasing variance.
    variances : ndarray of shape (K,), float32
        Variance of the training chips along each eigenface.
    size : int
        Chip side.
    """

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    size: int = CHIP_SIZE

    def __post_init__(self):
        d = self.size * self.size * 3
        check_shape(self.mean, [d], "mean")
        check_shape(self.components, ["K", d], "components")
        check_shape(self.variances, [self.components.shape[0]], "variances")

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @classmethod
    def fit(cls, chips: np.ndarray, *, n_components: Optional[int] = None) -> "EigenfaceModel":
        """Principal components of ``(N, size, size, 3)`` chips in [0, 1].

        ``n_components`` defaults to ``N - 1`` (all components with
        non-zero variance).
        """
        check_shape(chips, ["N", "S", "S", 3], "chips")
        n, size = chips.shape[0], chips.shape[1]
        if n < 2:
            raise ShapeError(f"eigenfaces need at least 2 chips, got {n}")
        x = chips.reshape(n, -1).astype(np.float64)
        mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        k = min(n - 1, vt.shape[0]) if n_components is None else min(int(n_components), n - 1, vt.shape[0])
        var = s[:k] ** 2 / (n - 1)
        return cls(mean.astype(np.float32), vt[:k].astype(np.float32), var.astype(np.float32), size)

    def project(self, chips: np.ndarray, n_components: Optional[int] = None) -> np.ndarray:
        """Coefficients ``(N, k)`` of ``(N, size, size, 3)`` chips on the first ``k`` eigenfaces."""
        k = self._k(n_components)
        x = chips.reshape(len(chips), -1).astype(np.float64) - self.mean
        return x @ self.components[:k].astype(np.float64).T

    def rebuild(self, coefficients: np.ndarray) -> np.ndarray:
        """Chips ``(N, size, size, 3)`` from ``(N, k)`` coefficients, clipped to [0, 1]."""
        c = np.asarray(coefficients, np.float64)
        k = c.shape[1]
        x = self.mean + c @ self.components[:k].astype(np.float64)
        return np.clip(x, 0.0, 1.0).reshape(len(c), self.size, self.size, 3).astype(np.float32)

    def _k(self, n_components: Optional[int]) -> int:
        k = self.n_components if n_components is None else int(n_components)
        if not 1 <= k <= self.n_components:
            raise VdeidError(f"n_components must be in [1, {self.n_components}], got {k}")
        return k

    def save(self, path: str | Path) -> None:
        """Write the model to an ``.npz`` file."""
        np.savez(path, mean=self.mean, components=self.components, variances=self.variances, size=self.size)

    @classmethod
    def load(cls, path: str | Path) -> "EigenfaceModel":
        """Read a model written by :meth:`save`.

        Raises
        ------
        InputError
            Missing or malformed file.
        """
        try:
            with np.load(path, allow_pickle=False) as d:
                return cls(d["mean"], d["components"], d["variances"], int(d["size"]))
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"cannot read eigenface model ({exc}); fit one with fit_eigenfaces", path) from exc


def fit_eigenfaces(
    paths: Sequence[str | Path], detector, *, size: int = CHIP_SIZE, n_components: Optional[int] = 200
) -> EigenfaceModel:
    """Fit eigenfaces on the main face of each photo.

    Parameters
    ----------
    paths : sequence of path
        Photos of *other* people than the ones to de-identify (e.g. the LFW
        distractors), so the basis holds no probe's identity.
    detector : object
        ``detect(list of uint8 frames) -> list[Faces]`` (MTCNN).
    size, n_components
        Chip side; eigenfaces kept (at most ``N - 1``).

    Raises
    ------
    InputError
        Fewer than two photos with a detectable face.
    """
    from ..recognizers.gallery import photo_face

    chips = []
    for p in paths:
        found = photo_face(p, detector)
        if found is None:
            continue
        crop, lm = found
        image = crop[0].permute(1, 2, 0).numpy()
        chips.append(align_chip(image, lm[0].numpy(), size=size)[0])
    if len(chips) < 2:
        raise InputError("need at least two photos with a detectable face to fit eigenfaces", paths[0] if paths else None)
    return EigenfaceModel.fit(np.stack(chips), n_components=n_components)


def pca_reconstruct(chips: np.ndarray, model: EigenfaceModel, *, n_components: int) -> np.ndarray:
    """Rebuild ``(N, S, S, 3)`` chips from their first ``n_components`` eigenface coefficients.

    With every component of a model fitted on the same chips, the chips come
    back unchanged (up to float rounding).
    """
    return model.rebuild(model.project(chips, n_components))


def hypersphere_project(
    chips: np.ndarray, model: EigenfaceModel, *, radius: float, n_components: Optional[int] = None
) -> np.ndarray:
    """Project whitened eigenface coefficients onto a hypersphere and rebuild.

    ``z = c / sqrt(var)``, ``z' = radius * z / |z|``, chip = mean + ``(z' * sqrt(var)) @ U``.

    Parameters
    ----------
    chips : ndarray of shape (N, S, S, 3)
        Aligned chips in [0, 1].
    model : EigenfaceModel
    radius : float
        Sphere radius in whitened units, > 0. For ``k`` components a typical
        face has ``|z| ~ sqrt(k)``.
    n_components : int, optional
        Eigenfaces used; all when None.

    Returns
    -------
    ndarray of shape (N, S, S, 3), float32 in [0, 1]
    """
    if not radius > 0:
        raise VdeidError(f"hypersphere radius must be > 0, got {radius}")
    c = model.project(chips, n_components)
    sd = np.sqrt(model.variances[: c.shape[1]].astype(np.float64))
    z = c / sd
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    z = radius * z / np.maximum(norm, 1e-12)
    return model.rebuild(z * sd)


ChipTransform = Callable[[np.ndarray], np.ndarray]


def reconstruct_faces(
    image: np.ndarray,
    faces: Faces,
    model: EigenfaceModel,
    transform: ChipTransform,
    *,
    feather: float = 0.15,
    margin: float = 0.15,
) -> np.ndarray:
    """Replace each face by its rebuilt eigenface chip.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8, uint16 or float in [0, 1].
    faces : Faces
        Boxes and landmarks (NaN landmarks: typical positions in the box).
    model : EigenfaceModel
    transform : callable
        ``(N, S, S, 3) chips -> (N, S, S, 3) chips``, e.g.
        ``lambda c: pca_reconstruct(c, model, n_components=20)``.
    feather, margin : float, optional
        As in :func:`vdeid.methods.naive.blur_faces`.

    Returns
    -------
    ndarray of shape (H, W, 3)
        A new image with ``image``'s dtype.
    """
    check_shape(image, ["H", "W", 3], "image")
    out = image.copy()
    shape = image.shape[:2]
    for box, grown, lm in zip(faces.boxes, expand_boxes(faces.boxes, margin), faces.landmarks):
        region = box_region(grown, shape)
        if region.empty:
            continue
        points = _landmarks_or_box(lm, box)
        chip, m = align_chip(out, points, size=model.size)
        rebuilt = transform(chip[None])[0]
        # Chip → region: the image→chip matrix with the region's origin moved to 0.
        shift = np.array([[1.0, 0.0, region.x0], [0.0, 1.0, region.y0], [0.0, 0.0, 1.0]])
        m_region = np.vstack([m, [0.0, 0.0, 1.0]]) @ shift
        size = (region.shape[1], region.shape[0])
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        back = cv2.warpAffine(rebuilt, m_region[:2], size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        inside = cv2.warpAffine(np.ones(rebuilt.shape[:2], np.float32), m_region[:2], size, flags=flags, borderValue=0.0)
        mask = ellipse_mask_in_region(grown, region, feather=feather) * np.clip(inside, 0.0, 1.0)
        blend_into(out, region, np.clip(back, 0.0, 1.0), mask)
    return out


class _ReconstructionMethod:
    """:class:`~vdeid.methods.base.Method` plumbing shared by ``pca`` and ``hypersphere``."""

    name = ""

    def __init__(self, model: EigenfaceModel, *, feather: float = 0.15, margin: float = 0.15):
        self.model = model
        self.feather = float(feather)
        self.margin = float(margin)

    def transform(self, chips: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def protect(self, frames: list[np.ndarray], faces: list[Faces]) -> tuple[list[np.ndarray], list[FaceOutcome]]:
        """Protect every face of every frame (see :class:`~vdeid.methods.base.Method`)."""
        if len(frames) != len(faces):
            raise ShapeError(f"got {len(frames)} frames but {len(faces)} face lists")
        out, outcomes = [], []
        for i, (frame, ff) in enumerate(zip(frames, faces)):
            out.append(reconstruct_faces(frame, ff, self.model, self.transform, feather=self.feather, margin=self.margin))
            outcomes.extend(FaceOutcome(i, int(t), self.name) for t in ff.track_ids)
        return out, outcomes

    def reset(self) -> None:
        """Stateless: nothing to forget."""


class PcaFaces(_ReconstructionMethod):
    """Eigenface reconstruction from the first ``n_components`` components.

    Parameters
    ----------
    model : EigenfaceModel
    n_components : int, optional
        Eigenfaces kept (at most the model's). (Default: 20)
    feather, margin : float, optional
        As for the naive methods.
    """

    name = "pca"

    def __init__(self, model: EigenfaceModel, *, n_components: int = 20, feather: float = 0.15, margin: float = 0.15):
        super().__init__(model, feather=feather, margin=margin)
        # A model fitted on few faces has fewer components: use them all.
        self.n_components = model._k(min(n_components, model.n_components))

    def transform(self, chips):
        return pca_reconstruct(chips, self.model, n_components=self.n_components)

    def __repr__(self):
        return f"PcaFaces(n_components={self.n_components}, feather={self.feather}, margin={self.margin})"


class HypersphereFaces(_ReconstructionMethod):
    """Whitened eigenface coefficients projected onto a hypersphere.

    Parameters
    ----------
    model : EigenfaceModel
    radius : float, optional
        Sphere radius in whitened units (the notes' example: 8). (Default: 8)
    n_components : int, optional
        Eigenfaces used (at most the model's). (Default: 100)
    feather, margin : float, optional
        As for the naive methods.
    """

    name = "hypersphere"

    def __init__(
        self,
        model: EigenfaceModel,
        *,
        radius: float = 8.0,
        n_components: int = 100,
        feather: float = 0.15,
        margin: float = 0.15,
    ):
        super().__init__(model, feather=feather, margin=margin)
        if not radius > 0:
            raise VdeidError(f"hypersphere radius must be > 0, got {radius}")
        self.radius = float(radius)
        self.n_components = model._k(min(n_components, model.n_components))

    def transform(self, chips):
        return hypersphere_project(chips, self.model, radius=self.radius, n_components=self.n_components)

    def __repr__(self):
        return (
            f"HypersphereFaces(radius={self.radius}, n_components={self.n_components},"
            f" feather={self.feather}, margin={self.margin})"
        )
