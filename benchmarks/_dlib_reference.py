"""Shared by the dlib benchmarks: real dlib as an independent judge.

- :class:`Pairer` pairs real dlib's landmarks with MTCNN's on real photos:
  for every photo, real dlib finds faces (HOG detector, CNN detector as a
  fallback) and its 5-point shape predictor places landmarks;
  facenet-pytorch's MTCNN finds faces with its own 5 landmarks. Faces found
  by both are paired by eye position.
- :class:`DlibJudge` is the invader of the protection benchmarks: dlib's own
  pipeline (HOG detector, 5-point predictor, ResNet descriptor), which the
  attacks never saw, looking for a protected face's original.

Needs ``dlib`` (the dlib-bin wheel) and ``face_recognition_models``.
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
        rects, detector = list(self.hog(image, hog_upsample(image))), "hog"
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


def hog_upsample(image: np.ndarray) -> int:
    """HOG upsampling: 1 finds the small LFW faces; photos and frames over 1000 px don't need it."""
    return 1 if max(image.shape[:2]) <= 1000 else 0


class DlibJudge:
    """The real dlib pipeline (HOG detector + 5-point predictor + ResNet) as the invader.

    Distances are Euclidean between 128-D descriptors; dlib's same-person
    threshold is 0.6.
    """

    THRESHOLD = 0.6

    def __init__(self, upsample: int | None = None):
        import dlib
        import face_recognition_models as frm

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.model = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        self.upsample = upsample
        self.cnn = None  # loaded by confirmed() on first use

    def rects(self, image: np.ndarray) -> list:
        """dlib rectangles of every face HOG finds in an (H, W, 3) uint8 RGB image.

        HOG upsamples ``upsample`` times (None: :func:`hog_upsample`).
        """
        up = hog_upsample(image) if self.upsample is None else self.upsample
        return list(self.detector(image, up))

    def rect(self, box) -> object:
        """dlib rectangle of an ``x0, y0, x1, y1`` box."""
        return self.dlib.rectangle(*(int(round(v)) for v in box))

    def descriptor(self, image: np.ndarray, rect) -> np.ndarray:
        """(128,) float64 descriptor of the face in ``rect``."""
        image = np.ascontiguousarray(image)
        return np.asarray(self.model.compute_face_descriptor(image, self.predictor(image, rect)))

    def main_descriptor(self, image: np.ndarray) -> np.ndarray | None:
        """Descriptor of the largest face HOG finds, or None."""
        found = self.rects(image)
        if not found:
            return None
        return self.descriptor(image, max(found, key=lambda r: r.area()))

    def confirmed(self, image: np.ndarray, rect) -> bool:
        """Whether dlib's CNN face detector also finds a face at a HOG face's ``rect``.

        Runs on the rect grown by its size on every side, scaled so the face
        is about 100 px: a second, independent opinion on a HOG detection.
        """
        if self.cnn is None:
            import face_recognition_models as frm

            self.cnn = self.dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())
        w = max(rect.width(), 1)
        x0, y0 = max(rect.left() - w, 0), max(rect.top() - w, 0)
        crop = image[y0 : rect.bottom() + w, x0 : rect.right() + w]
        scale = 100.0 / w
        crop = np.asarray(Image.fromarray(crop).resize((round(crop.shape[1] * scale), round(crop.shape[0] * scale))))
        cx, cy = (rect.center().x - x0) * scale, (rect.center().y - y0) * scale
        for d in self.cnn(np.ascontiguousarray(crop), 0):
            r = d.rect
            if r.left() <= cx <= r.right() and r.top() <= cy <= r.bottom():
                return True
        return False

    def attempts(self, protected: np.ndarray, rect, found: list | None = None) -> list[np.ndarray]:
        """Descriptors an invader gets for the face at ``rect`` of a protected image.

        The face as the invader's detector finds it on the protected image
        (every HOG face overlapping ``rect`` by more than half), plus the
        original face's rectangle itself, in case the perturbation hid the
        face from HOG. ``found`` passes HOG faces already detected.
        """
        rects = [rect]
        for r in self.rects(protected) if found is None else found:
            if r.intersect(rect).area() > 0.5 * rect.area():
                rects.append(r)
        return [self.descriptor(protected, r) for r in rects]
