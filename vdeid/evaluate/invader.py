"""An invader that runs dlib's own face pipeline, with no part of vdeid's in it.

vdeid protects faces that MTCNN finds, aligned from MTCNN's landmarks. An
invader who uses dlib finds faces with dlib's detector, places dlib's 5-point
landmarks from that detector's box and embeds dlib's chip. :class:`DlibInvader`
is that pipeline, from vdeid's exact ports (the CNN face detector of
:mod:`vdeid.detect.dlib_cnn`, the shape predictor and the ResNet of
:mod:`vdeid.recognizers.dlib_resnet`; on the same image they give real dlib's
boxes and descriptors to within 0.01, docs/models.md), so a protected video
can be judged as such an invader would judge it without installing dlib.
"""

from __future__ import annotations

import numpy as np
import torch

from ..detect.dlib_cnn import DlibCnnFaceDetector, load_dlib_cnn_detector
from ..recognizers.dlib_resnet import DlibResNet, load_dlib_resnet

__all__ = ["DlibInvader"]


class DlibInvader:
    """dlib's CNN face detector → 5-point predictor → ResNet descriptor.

    Parameters
    ----------
    detector : DlibCnnFaceDetector, optional
    model : DlibResNet, optional
        Loaded from the ``face_recognition_models`` package when None.

    Examples
    --------
    >>> invader = DlibInvader()                       # doctest: +SKIP
    >>> rects = invader.detect(original_frame)         # doctest: +SKIP
    >>> invader.closest(original_frame, protected_frame, rects)  # doctest: +SKIP
    """

    #: dlib's same-person threshold.
    THRESHOLD = 0.6

    def __init__(self, detector: DlibCnnFaceDetector | None = None, model: DlibResNet | None = None):
        self.detector = detector or load_dlib_cnn_detector()
        self.model = model or load_dlib_resnet()

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Face rectangles ``(N, 4)`` int64 (``left, top, right, bottom``) of an (H, W, 3) uint8 RGB image."""
        return self.detector.detect(image)[0]

    @torch.no_grad()
    def descriptors(self, image: np.ndarray, rects: np.ndarray) -> np.ndarray:
        """``(N, 128)`` float32 descriptors of the faces in ``rects`` of an (H, W, 3) uint8 RGB image."""
        if len(rects) == 0:
            return np.zeros((0, 128), np.float32)
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
        boxes = torch.as_tensor(np.asarray(rects), dtype=torch.float64)
        return self.model.embed_views(x.expand(len(boxes), -1, -1, -1), boxes).numpy()

    def closest(self, original: np.ndarray, protected: np.ndarray, rects: np.ndarray) -> np.ndarray:
        """For each face of the original, the smallest distance the invader finds in the protected image.

        The invader embeds the face where its detector finds it in the
        protected image (every detection covering more than half of the
        original rectangle) and also at the original rectangle itself, in case
        the protection hid the face from the detector.

        Parameters
        ----------
        original, protected : ndarray of shape (H, W, 3)
            uint8 RGB frames.
        rects : ndarray of shape (N, 4)
            The faces of the original (:meth:`detect`).

        Returns
        -------
        ndarray of shape (N,), float64
            Euclidean distances; below :attr:`THRESHOLD` means re-identified.
        """
        rects = np.asarray(rects, np.int64).reshape(-1, 4)
        if len(rects) == 0:
            return np.zeros(0)
        reference = self.descriptors(original, rects)
        found = self.detect(protected)
        boxes, owner = [], []
        for i, rect in enumerate(rects):
            area = (rect[2] - rect[0] + 1) * (rect[3] - rect[1] + 1)
            w = np.minimum(found[:, 2], rect[2]) - np.maximum(found[:, 0], rect[0]) + 1
            h = np.minimum(found[:, 3], rect[3]) - np.maximum(found[:, 1], rect[1]) + 1
            covering = found[(w > 0) & (h > 0) & (w * h > 0.5 * area)]
            boxes.append(np.concatenate([rect[None], covering]))
            owner += [i] * len(boxes[-1])
        # Every attempt of every face in one pass over the protected frame.
        owner = np.asarray(owner)
        d = np.linalg.norm(self.descriptors(protected, np.concatenate(boxes)) - reference[owner], axis=1)
        out = np.full(len(rects), np.inf)
        np.minimum.at(out, owner, d)
        return out

    def blank_distance(self, original: np.ndarray, rects: np.ndarray) -> np.ndarray:
        """For each face of the original, its distance to the invader's descriptor of a black frame there.

        A face half hidden by a hand or cut by the frame edge can lie within
        the threshold of what the invader embeds at the same rectangle of an
        all-black frame. Any protection that removes such a face (a solid
        mask, a strong blur) then still "matches" it, and that match says
        nothing about who it is: the invader could not tell the original
        from an empty frame in the first place.

        Parameters
        ----------
        original : ndarray of shape (H, W, 3)
            uint8 RGB frame.
        rects : ndarray of shape (N, 4)
            The faces of the original (:meth:`detect`).

        Returns
        -------
        ndarray of shape (N,), float64
            Euclidean distances; below :attr:`THRESHOLD` means the original
            is indistinguishable from a black frame.
        """
        rects = np.asarray(rects, np.int64).reshape(-1, 4)
        if len(rects) == 0:
            return np.zeros(0)
        reference = self.descriptors(original, rects)
        blank = self.descriptors(np.zeros_like(original), rects)
        return np.linalg.norm(reference - blank, axis=1).astype(np.float64)
