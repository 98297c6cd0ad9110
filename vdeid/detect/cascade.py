"""MTCNN's three-stage cascade (P-, R-, O-Net) with faster plumbing than facenet-pytorch's.

Same networks, weights, image pyramid, thresholds, box regression and NMS
as ``facenet_pytorch.models.utils.detect_face``; only the way inputs reach
the networks changes, so the detections are the same up to float rounding
(``tests/detect/test_cascade.py`` compares them):

- every resampling (the pyramid levels, and the 24x24 / 48x48 crops of the
  candidate boxes, hundreds per 1080p frame) reads window sums from one
  integral image per frame, instead of a float copy of the frame, one
  ``interpolate`` call per pyramid level and one per box;
- the networks run on channels-last tensors, oneDNN's faster path for
  these thin convolutions;
- P-Net runs one frame at a time: a batch of 1080p frames makes activations
  of hundreds of MB, which the allocator maps and zeroes afresh on every
  call. R- and O-Net still batch the boxes of every frame.

Measured effect in ``docs/performance.md``.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops.boxes import batched_nms, nms

__all__ = ["detect_cascade", "area_crops", "integral_image"]

# MTCNN's fixed constants (the networks were trained with them).
_PNET_CELL = 12
_R_SIZE = 24
_O_SIZE = 48
# Candidate boxes per R-/O-Net call (as facenet-pytorch): bounds the activations.
_BOXES_PER_CALL = 512


def integral_image(frame: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """Summed-area table of one frame.

    Parameters
    ----------
    frame : ndarray of shape (H, W, 3)
        uint8 RGB.
    device : str or torch.device
        Where the table is built and kept.

    Returns
    -------
    Tensor of shape (H + 1, W + 1, 3), int32 or int64
        ``out[y, x] = frame[:y, :x].sum((0, 1))``; int32 up to 8.4 million
        pixels (4K is 8.3 million), int64 above, so sums never overflow.
    """
    wide = frame.shape[0] * frame.shape[1] * 255 >= 2**31
    if torch.device(device).type == "cpu":
        import cv2

        if wide:  # float64 holds these integer sums exactly
            return torch.from_numpy(cv2.integral(np.ascontiguousarray(frame), sdepth=cv2.CV_64F)).to(torch.int64)
        return torch.from_numpy(cv2.integral(np.ascontiguousarray(frame), sdepth=cv2.CV_32S))
    return _integral_torch(torch.as_tensor(frame, device=device), torch.int64 if wide else torch.int32)


def _integral_torch(frame: torch.Tensor, dtype: torch.dtype = torch.int32) -> torch.Tensor:
    # For accelerators, where the frame should not round-trip through the host.
    x = frame.to(dtype)
    out = torch.zeros(x.shape[0] + 1, x.shape[1] + 1, x.shape[2], dtype=dtype, device=x.device)
    out[1:, 1:] = x.cumsum(0, dtype=dtype).cumsum(1, dtype=dtype)
    return out


def _windows(start: np.ndarray, stop: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``[lo, hi)`` of the ``size`` area-resampling windows over each ``[start, stop)``.

    torch's adaptive average pooling (``interpolate(mode="area")``): output
    cell ``i`` of a span of length ``L`` averages ``floor(i L / size)`` to
    ``ceil((i + 1) L / size)``. Inputs ``(N, 1)``, outputs ``(N, size)``.
    """
    start, stop = np.asarray(start, np.int64), np.asarray(stop, np.int64)
    i = np.arange(size)
    length = stop - start
    return start + (i * length) // size, start - (-(i + 1) * length) // size


def area_crops(table: torch.Tensor, rows: np.ndarray, cols: np.ndarray, size: int) -> torch.Tensor:
    """Area-resample rectangles of a frame to ``size x size``, all at once.

    Equals ``interpolate(crop, (size, size), mode="area")`` for each crop,
    with the window sums read from the integral image.

    Parameters
    ----------
    table : Tensor of shape (H + 1, W + 1, 3), int32 or int64
        :func:`integral_image` of the frame.
    rows, cols : ndarray of shape (N, 2), int
        ``[start, stop)`` of each rectangle, inside the frame, non-empty.
    size : int
        Output side.

    Returns
    -------
    Tensor of shape (N, 3, size, size), float32 in [0, 255]
        Channels-last in memory.
    """
    dev, stride = table.device, table.shape[1]
    flat = table.reshape(-1, table.shape[2])
    r0, r1 = (torch.from_numpy(v[:, :, None] * stride).to(dev) for v in _windows(rows[:, :1], rows[:, 1:], size))
    c0, c1 = (torch.from_numpy(v[:, None, :]).to(dev) for v in _windows(cols[:, :1], cols[:, 1:], size))

    def at(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return flat.index_select(0, (r + c).reshape(-1)).reshape(len(rows), size, size, -1)

    sums = at(r1, c1) - at(r0, c1) - at(r1, c0) + at(r0, c0)
    count = ((r1 - r0) // stride * (c1 - c0)).to(torch.float32)
    return (sums.to(torch.float32) / count[..., None]).permute(0, 3, 1, 2)


def _pyramid_level(table: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The whole frame area-resampled to ``size = (h, w)`` and normalised for the networks.

    Same values as ``interpolate(frame, size, mode="area")`` then
    :func:`_normalise`, as a ``(1, 3, h, w)`` channels-last tensor; separable
    row/column gathers from the integral image cost less than torch's
    pooling kernel and need no float copy of the frame.
    """

    def spans(length: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = _windows(np.zeros((1, 1)), np.full((1, 1), length), n)
        return torch.from_numpy(lo[0]).to(table.device), torch.from_numpy(hi[0]).to(table.device)

    r0, r1 = spans(table.shape[0] - 1, size[0])
    c0, c1 = spans(table.shape[1] - 1, size[1])
    rows = table.index_select(0, r1) - table.index_select(0, r0)
    sums = rows.index_select(1, c1) - rows.index_select(1, c0)
    # (mean - 127.5) / 128 with the division folded into one factor per cell.
    scale = (0.0078125 / ((r1 - r0)[:, None] * (c1 - c0)[None, :]).to(torch.float32))[..., None]
    return (sums.to(torch.float32) * scale - 127.5 * 0.0078125).permute(2, 0, 1)[None]


def _pyramid_scales(h: int, w: int, min_face: float, factor: float) -> list[float]:
    scale, side, out = _PNET_CELL / min_face, min(h, w) * _PNET_CELL / min_face, []
    while side >= _PNET_CELL:
        out.append(scale)
        scale *= factor
        side *= factor
    return out


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125


def _in_chunks(net: torch.nn.Module, crops: torch.Tensor) -> tuple[torch.Tensor, ...]:
    # Thousands of candidate boxes at once would make activations of a GB.
    outs = [net(crops[i : i + _BOXES_PER_CALL]) for i in range(0, len(crops), _BOXES_PER_CALL)]
    return tuple(torch.cat(parts) for parts in zip(*outs))


def _crops(frames: np.ndarray, boxes: torch.Tensor, image_inds: torch.Tensor, size: int, device) -> tuple:
    """Resampled crops of the (clipped) boxes, and the mask of boxes that have any pixels."""
    from facenet_pytorch.models.utils.detect_face import pad

    h, w = frames.shape[1:3]
    y, ey, x, ex = pad(boxes, w, h)  # 1-based, clipped to the frame
    keep = (ey > y - 1) & (ex > x - 1)
    rows = np.stack([y - 1, ey], 1)[keep]
    cols = np.stack([x - 1, ex], 1)[keep]
    inds = image_inds.cpu().numpy()[keep]
    out = torch.empty(len(rows), 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    for b in np.unique(inds):
        sel = np.nonzero(inds == b)[0]
        table = integral_image(frames[b], device)
        out[torch.from_numpy(sel).to(device)] = area_crops(table, rows[sel], cols[sel], size)
    return _normalise(out), torch.from_numpy(keep).to(boxes.device)


def detect_cascade(
    frames: np.ndarray,
    pnet: torch.nn.Module,
    rnet: torch.nn.Module,
    onet: torch.nn.Module,
    *,
    min_face: float,
    thresholds: tuple[float, float, float],
    factor: float = 0.709,
    device: str | torch.device = "cpu",
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run MTCNN on a batch of equal-size frames.

    Parameters
    ----------
    frames : ndarray of shape (B, H, W, 3)
        uint8 RGB.
    pnet, rnet, onet : nn.Module
        facenet-pytorch's networks (``MTCNN().pnet`` ...), on ``device``.
    min_face : float
        Smallest face side looked for, in pixels (first pyramid scale
        ``12 / min_face``).
    thresholds : tuple of float
        P-, R- and O-Net score thresholds.
    factor : float
        Scale step of the pyramid. (Default: 0.709)
    device : str or torch.device
        Where the networks run.

    Returns
    -------
    boxes : list of ndarray of shape (N, 5)
        Per frame: ``x0, y0, x1, y1, score`` in frame pixels.
    points : list of ndarray of shape (N, 5, 2)
        Per frame: the 5 landmarks ``(x, y)`` in frame pixels.
    """
    from facenet_pytorch.models.utils.detect_face import (
        batched_nms_numpy,
        bbreg,
        generateBoundingBox,
        rerec,
    )

    batch, h, w = frames.shape[:3]
    scales = _pyramid_scales(h, w, min_face, factor)

    # Stage 1: P-Net over each frame's pyramid (one frame at a time, see the
    # module docstring), NMS per scale then across scales.
    found, found_inds = [], []
    for b in range(batch):
        table = integral_image(frames[b], device)
        for scale in scales:
            reg, probs = pnet(_pyramid_level(table, (int(h * scale + 1), int(w * scale + 1))))
            boxes, _ = generateBoundingBox(reg, probs[:, 1], scale, thresholds[0])
            pick = nms(boxes[:, :4], boxes[:, 4], 0.5)
            found.append(boxes[pick])
            found_inds.append(torch.full((len(pick),), b, dtype=torch.long, device=boxes.device))
    boxes, image_inds = torch.cat(found), torch.cat(found_inds)
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds = boxes[pick], image_inds[pick]
    regw = boxes[:, 2] - boxes[:, 0]
    regh = boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack(
        [
            boxes[:, 0] + boxes[:, 5] * regw,
            boxes[:, 1] + boxes[:, 6] * regh,
            boxes[:, 2] + boxes[:, 7] * regw,
            boxes[:, 3] + boxes[:, 8] * regh,
            boxes[:, 4],
        ],
        dim=1,
    )
    boxes = rerec(boxes)

    # Stage 2: R-Net on 24x24 crops.
    if len(boxes):
        crops, keep = _crops(frames, boxes, image_inds, _R_SIZE, device)
        boxes, image_inds = boxes[keep], image_inds[keep]
    if len(boxes):
        reg, probs = _in_chunks(rnet, crops)
        score = probs[:, 1]
        ok = score > thresholds[1]
        boxes = torch.cat((boxes[ok, :4], score[ok, None]), dim=1)
        image_inds, reg = image_inds[ok], reg[ok]
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes = rerec(bbreg(boxes[pick], reg[pick]))
        image_inds = image_inds[pick]

    # Stage 3: O-Net on 48x48 crops, landmarks, "Min" NMS.
    points = torch.zeros(0, 5, 2, device=device)
    if len(boxes):
        crops, keep = _crops(frames, boxes, image_inds, _O_SIZE, device)
        boxes, image_inds = boxes[keep], image_inds[keep]
    if len(boxes):
        reg, marks, probs = _in_chunks(onet, crops)
        score = probs[:, 1]
        ok = score > thresholds[2]
        boxes = torch.cat((boxes[ok, :4], score[ok, None]), dim=1)
        image_inds, reg, marks = image_inds[ok], reg[ok], marks[ok]
        wi = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        hi = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = torch.stack(
            (wi * marks[:, :5] + boxes[:, :1] - 1, hi * marks[:, 5:10] + boxes[:, 1:2] - 1), dim=2
        )
        boxes = bbreg(boxes, reg)
        pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
        boxes, image_inds, points = boxes[pick], image_inds[pick], points[pick]

    boxes_np = boxes.cpu().numpy()
    points_np = points.cpu().numpy()
    inds_np = image_inds.cpu().numpy()
    return [boxes_np[inds_np == b] for b in range(batch)], [points_np[inds_np == b] for b in range(batch)]
