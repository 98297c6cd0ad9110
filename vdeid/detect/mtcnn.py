"""Face detection with MTCNN (facenet-pytorch's networks), batched over frames.

The MTCNN weights ship inside the facenet-pytorch wheel, so nothing is
downloaded; the cascade runs in :mod:`vdeid.detect.cascade` (same
detections as facenet-pytorch, less overhead). Frames of one batch must
share a size (true for video); mixed sizes (photos) are detected one by one.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..checks import check_shape
from ..config import DetectConfig
from ..faces import Faces
from ..imageops import to_uint8
from .cascade import detect_cascade

logger = logging.getLogger(__name__)

#: Groups of frames detected concurrently on CPU.
_CPU_LANES = 2


class FaceDetector:
    """Find faces and their 5 landmarks in RGB frames.

    Parameters
    ----------
    config : DetectConfig
        ``min_face`` (pixels), MTCNN ``thresholds`` and ``batch_size``.
    device : str
        ``"cpu"`` or ``"cuda"`` (already resolved, see
        :func:`vdeid.config.resolve_device`).

    Examples
    --------
    >>> from skimage import data
    >>> faces = FaceDetector(DetectConfig()).detect([data.astronaut()])[0]
    >>> len(faces)
    1
    """

    def __init__(self, config: DetectConfig | None = None, device: str = "cpu"):
        from facenet_pytorch import MTCNN

        self.config = config or DetectConfig()
        self.device = device
        self._mtcnn = MTCNN(
            keep_all=True,
            min_face_size=int(self.config.min_face),
            thresholds=list(self.config.thresholds),
            select_largest=False,
            post_process=False,
            device=torch.device(device),
        )

    def detect(self, frames: list[np.ndarray]) -> list[Faces]:
        """Detect faces in each frame.

        Parameters
        ----------
        frames : list of ndarray of shape (H, W, 3)
            RGB frames, uint8 in [0, 255] (uint16 frames are reduced to 8
            bits for detection only).

        Returns
        -------
        list of Faces
            One record per frame: boxes ``(N, 4)`` x0, y0, x1, y1 and
            landmarks ``(N, 5, 2)`` in frame pixels, scores in [0, 1].
        """
        out: list[Faces] = []
        batch = max(1, int(self.config.batch_size))
        for start in range(0, len(frames), batch):
            chunk = [to_uint8(f) for f in frames[start : start + batch]]
            if len({f.shape for f in chunk}) == 1:
                out.extend(self._detect_batch(chunk))
            else:
                for f in chunk:
                    out.extend(self._detect_batch([f]))
        return out

    def _detect_batch(self, frames: list[np.ndarray]) -> list[Faces]:
        for f in frames:
            check_shape(f, ["H", "W", 3], "frame")
        # MTCNN's first stage cannot run on an image smaller than its 12 px window.
        if min(frames[0].shape[:2]) < 12:
            return [Faces() for _ in frames]
        lanes = min(len(frames), _CPU_LANES if self._mtcnn.device.type == "cpu" else 1)
        if lanes > 1:
            # The cascade's many small ops and its NumPy/Python steps leave a
            # core idle much of the time; a second group of frames fills it
            # (docs/performance.md). Inference does not change the networks.
            half = -(-len(frames) // lanes)
            groups = [frames[i : i + half] for i in range(0, len(frames), half)]
            with ThreadPoolExecutor(len(groups), thread_name_prefix="vdeid-detect") as pool:
                parts = list(pool.map(self._cascade, groups))
            boxes = [b for part in parts for b in part[0]]
            points = [p for part in parts for p in part[1]]
        else:
            boxes, points = self._cascade(frames)
        result = []
        for b, pts in zip(boxes, points):
            size = np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
            keep = size >= self.config.min_face * 0.8
            result.append(Faces.from_arrays(b[keep, :4], pts[keep], b[keep, 4].astype(np.float32)))
        return result

    def _cascade(self, frames: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        m = self._mtcnn
        stacked = np.stack(frames) if len(frames) > 1 else frames[0][None]
        with torch.inference_mode():
            return detect_cascade(
                stacked,
                m.pnet,
                m.rnet,
                m.onet,
                min_face=m.min_face_size,
                thresholds=tuple(m.thresholds),
                factor=m.factor,
                device=m.device,
            )
