"""Shared by the dlib benchmarks: pair real dlib's landmarks with MTCNN's on real photos.

For every photo, real dlib finds faces (HOG detector, CNN detector as a
fallback) and its 5-point shape predictor places landmarks; facenet-pytorch's
MTCNN finds faces with its own 5 landmarks. Faces found by both are paired by
eye position. Needs ``dlib`` (the dlib-bin wheel) and ``face_recognition_models``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


@dataclass
class FacePair:
    """One face seen by both pipelines.

    Attributes
    ----------
    path : Path
    dlib_points : ndarray of shape (5, 2), float64
        dlib's 5-point shape-predictor landmarks, ``(x, y)`` image pixels.
    mtcnn_points : ndarray of shape (5, 2), float64
        MTCNN's landmarks, ``(x, y)`` image pixels, MTCNN order.
    shape : dlib.full_object_detection
        dlib's shape, for ``compute_face_descriptor`` and ``get_face_chip``.
    rect : tuple of int
        dlib's detection ``left, top, right, bottom``.
    detector : str
        ``"hog"`` or ``"cnn"``.
    """

    path: Path
    dlib_points: np.ndarray
    mtcnn_points: np.ndarray
    shape: object
    rect: tuple
    detector: str


def load_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB."""
    return np.asarray(Image.open(path).convert("RGB"))


def list_photos(faces_dir: Path = DEFAULT_FACES) -> list[Path]:
    return sorted(Path(faces_dir).glob("*/*.jpg"))


class Pairer:
    """Runs both detectors and pairs their faces."""

    def __init__(self, *, use_cnn_fallback: bool = True):
        import dlib
        import face_recognition_models as frm
        from facenet_pytorch import MTCNN

        self.dlib = dlib
        self.hog = dlib.get_frontal_face_detector()
        self.cnn = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())
        self.predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.recognizer = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        self.mtcnn = MTCNN(keep_all=True, device="cpu")
        self.use_cnn_fallback = use_cnn_fallback

    def dlib_faces(self, image: np.ndarray) -> tuple[list, str]:
        """dlib shapes of every face and the detector that found them."""
        # Upsampling finds the small LFW faces; large photos don't need it.
        upsample = 1 if max(image.shape[:2]) <= 1000 else 0
        rects, detector = list(self.hog(image, upsample)), "hog"
        if not rects and self.use_cnn_fallback and max(image.shape[:2]) <= 1600:
            rects, detector = [d.rect for d in self.cnn(image, 0)], "cnn"
        return [self.predictor(image, r) for r in rects], detector

    def mtcnn_points(self, image: np.ndarray) -> np.ndarray:
        _, _, points = self.mtcnn.detect(Image.fromarray(image), landmarks=True)
        return np.zeros((0, 5, 2)) if points is None else np.asarray(points, np.float64)

    def pairs(self, path: Path, image: np.ndarray | None = None) -> list[FacePair]:
        image = load_rgb(path) if image is None else image
        shapes, detector = self.dlib_faces(image)
        mt = self.mtcnn_points(image)
        out = []
        for shape in shapes:
            pts = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
            # dlib: 0,1 = image-right eye corners; 2,3 = image-left eye corners.
            eyes = np.stack([pts[2:4].mean(0), pts[0:2].mean(0)])
            iod = np.linalg.norm(eyes[1] - eyes[0])
            if len(mt) == 0:
                continue
            err = np.linalg.norm(mt[:, :2] - eyes[None], axis=-1).mean(-1)
            best = int(np.argmin(err))
            if err[best] < 0.35 * iod:
                r = shape.rect
                rect = (r.left(), r.top(), r.right(), r.bottom())
                out.append(FacePair(Path(path), pts, mt[best], shape, rect, detector))
        return out
