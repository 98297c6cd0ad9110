"""Face detection."""

from .mtcnn import FaceDetector

__all__ = ["FaceDetector"]
