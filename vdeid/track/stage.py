"""The tracking stage of the pipeline: cuts, camera motion, tracker, look-ahead.

:func:`track_faces` takes the detector's output frame by frame and yields
the same frames, ``lookahead_frames`` later, with the faces to protect:
detections with persistent ids, bridged predictions, back-filled and
interpolated boxes; faces turned sideways get boxes widened towards the nose
(:mod:`vdeid.track.turned`).
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from ..config import TrackConfig
from ..faces import Faces
from .camera_motion import CameraMotion
from .cuts import CutDetector
from .lookahead import Lookahead
from .tracker import FaceTracker
from .turned import widen_turned_faces

logger = logging.getLogger(__name__)

__all__ = ["track_faces"]

T = TypeVar("T")


def _image_of(item) -> np.ndarray | None:
    """Default ``get_image``: the item itself when it is an (H, W, 3) array."""
    if isinstance(item, np.ndarray) and item.ndim == 3 and item.shape[2] == 3:
        return item
    return None


def track_faces(
    items: Iterable[tuple[T, Faces | None]],
    config: TrackConfig,
    *,
    frame_size: tuple[int, int] | None = None,
    get_image: Callable[[T], np.ndarray | None] | None = None,
) -> Iterator[tuple[T, Faces]]:
    """Track faces through a stream of frames.

    Parameters
    ----------
    items : iterable of (T, Faces or None)
        Frames in order with their detections. ``T`` is anything the caller
        streams (a frame object, an image, an index) and is handed back
        untouched. ``None`` instead of :class:`Faces` means the detector was
        not run on this frame (``detect_every > 1``): tracks are predicted
        and kept. An empty :class:`Faces` means it ran and found nothing.
    config : TrackConfig
        ``bridge_frames``, ``lookahead_frames``, ``gate``,
        ``grow_per_frame``, ``grow_max``, ``confirm_score``,
        ``cut_threshold``, ``motion_compensation``.
    frame_size : (int, int), optional
        ``(W, H)``; read from the first image when there is one. Tracks
        predicted entirely outside the frame end.
    get_image : callable, optional
        ``get_image(item) -> (H, W, 3) ndarray or None``: the picture of a
        frame, used for shot-cut detection and camera-motion compensation.
        By default an item that is itself an (H, W, 3) array is its image;
        for frame objects pass e.g. ``lambda f: f.image``. Without images
        tracking still works, on motion alone, and never ends at cuts.

    Yields
    ------
    (T, Faces)
        Every input item once, in order, ``lookahead_frames`` frames late
        (all remaining ones at the end). Faces are sorted by track id;
        ``detected`` is False and ``scores`` 0 for bridged, interpolated and
        back-filled boxes, which are enlarged for uncertainty (see
        :mod:`vdeid.track.lookahead`); landmarks move with the box. Boxes of
        faces turned sideways are widened towards the nose
        (:func:`vdeid.track.turned.widen_turned_boxes`).

    Examples
    --------
    >>> frames = [np.zeros((64, 64, 3), np.uint8)] * 3
    >>> dets = [Faces.from_arrays([[10, 10, 30, 30]]), None, Faces()]
    >>> [len(f) for _, f in track_faces(zip(frames, dets), TrackConfig())]
    [1, 1, 1]
    """
    get_image = get_image or _image_of
    tracker = FaceTracker(config, frame_size=frame_size)
    lookahead: Lookahead[T] = Lookahead(
        config.lookahead_frames,
        grow_per_frame=config.grow_per_frame,
        grow_max=config.grow_max,
        # A second detection must be able to come while the first one's
        # neighbours still wait in the buffer; otherwise bridge every track.
        confirm_score=config.confirm_score if config.detect_every <= config.lookahead_frames else 0.0,
    )
    cuts = CutDetector(config.cut_threshold)
    motion = CameraMotion() if config.motion_compensation else None
    warned = False
    for index, (item, faces) in enumerate(items):
        image = get_image(item)
        camera = None
        cut = False
        if image is not None:
            if frame_size is None:
                frame_size = (int(image.shape[1]), int(image.shape[0]))
                tracker.frame_size = frame_size
            cut = cuts.update(image)
            if cut:
                logger.debug("shot cut at frame %d (histogram distance %.2f)", index, cuts.last_distance)
                tracker.reset()
                if motion is not None:
                    motion.reset()
            if motion is not None:
                camera = motion.update(image)
        elif not warned:
            logger.debug("no image for frame %d: tracking without cut detection or motion compensation", index)
            warned = True
        observations = tracker.step(faces, camera=camera)
        yield from _widened(lookahead.push(item, observations, camera=camera, cut=cut, frame_size=frame_size))
    yield from _widened(lookahead.flush())


def _widened(outputs: Iterable[tuple[T, Faces]]) -> Iterator[tuple[T, Faces]]:
    # After the look-ahead, so tracking, interpolation and uncertainty growth
    # all work on the detector's own boxes.
    return ((item, widen_turned_faces(faces)) for item, faces in outputs)
