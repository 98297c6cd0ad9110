"""Differentiable face alignment shared by every recogniser.

A recogniser sees an *aligned chip*: the face warped by a similarity transform
so that its landmarks land on a fixed template. The engine optimises a
perturbation in the frame's pixels, so the chip must be a differentiable
function of those pixels: the transform is estimated from the landmarks
(plain tensors, no gradient needed) and the pixels are resampled with
:func:`torch.nn.functional.grid_sample`, which is differentiable in the image.

Conventions: points are ``(x, y)`` = (column, row) and integer coordinates are
pixel *centres*, as in OpenCV's ``warpAffine`` and dlib's ``extract_image_chip``.
An affine matrix ``M`` of shape (2, 3) maps a point ``p`` to ``M[:, :2] @ p + M[:, 2]``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..checks import check_shape

__all__ = [
    "INSIGHTFACE_112",
    "DLIB_5POINT_TEMPLATE",
    "similarity_transform",
    "invert_affine",
    "warp_affine",
    "align_to_template",
    "align_insightface_112",
    "template_to_chip",
    "extract_dlib_chips",
    "pyramid_down",
]

#: insightface's 112×112 arcface template, ``(x, y)`` chip pixels, in MTCNN
#: order (left eye, right eye, nose tip, left mouth corner, right mouth corner).
INSIGHTFACE_112 = torch.tensor(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=torch.float64,
)

#: dlib's ``get_face_chip_details`` template for its 5-point shape predictor,
#: in the unit square (dlib ``image_transforms/interpolation.h``). Order:
#: outer and inner corner of the image-right eye, outer and inner corner of
#: the image-left eye, bottom of the nose.
DLIB_5POINT_TEMPLATE = torch.tensor(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ],
    dtype=torch.float64,
)


def similarity_transform(src_points: torch.Tensor, dst_points: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity transform (rotation, uniform scale, shift) from ``src`` to ``dst``.

    Minimises ``sum_k ||M(src_k) - dst_k||²`` without reflection; this is
    Umeyama's estimate as in dlib's ``find_similarity_transform`` and
    scikit-image's ``SimilarityTransform.estimate``, written in closed form
    (a complex-number least-squares fit) so it is batched and differentiable.

    Parameters
    ----------
    src_points, dst_points : Tensor of shape (B, K, 2) or (K, 2)
        ``(x, y)`` point pairs, K ≥ 2; a (K, 2) side is shared by the batch.

    Returns
    -------
    Tensor of shape (B, 2, 3)
        Matrices mapping ``src`` coordinates to ``dst`` coordinates, in the
        promoted dtype of the inputs.
    """
    src, dst = torch.broadcast_tensors(*_batched_points(src_points, dst_points))
    dtype = torch.promote_types(src.dtype, dst.dtype)
    src, dst = src.to(dtype), dst.to(dtype)
    src_mean = src.mean(dim=1)
    dst_mean = dst.mean(dim=1)
    a = src - src_mean[:, None]
    b = dst - dst_mean[:, None]
    # z = Σ conj(a)·b / Σ|a|² is the scale·rotation minimising Σ|z·a − b|².
    den = (a * a).sum(dim=(1, 2))
    re = (a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]).sum(dim=1)
    im = (a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]).sum(dim=1)
    degenerate = den <= 0
    den = torch.where(degenerate, torch.ones_like(den), den)
    # dlib uses scale 1 (and no rotation) when all source points coincide.
    zr = torch.where(degenerate, torch.ones_like(re), re / den)
    zi = torch.where(degenerate, torch.zeros_like(im), im / den)
    linear = torch.stack([torch.stack([zr, -zi], -1), torch.stack([zi, zr], -1)], -2)
    shift = dst_mean - (linear @ src_mean[..., None])[..., 0]
    return torch.cat([linear, shift[..., None]], dim=-1)


def _batched_points(*points: torch.Tensor) -> list[torch.Tensor]:
    out = []
    for p in points:
        p = torch.as_tensor(p)
        if p.ndim == 2:
            p = p[None]
        check_shape(p, ["B", "K", 2], "points")
        out.append(p)
    return out


def invert_affine(matrices: torch.Tensor) -> torch.Tensor:
    """Inverse of (B, 2, 3) affine matrices (e.g. image→chip into chip→image)."""
    check_shape(matrices, ["B", 2, 3], "matrices")
    linear_inv = torch.linalg.inv(matrices[:, :, :2])
    shift = -(linear_inv @ matrices[:, :, 2:])
    return torch.cat([linear_inv, shift], dim=-1)


def warp_affine(
    images: torch.Tensor,
    matrices: torch.Tensor,
    size: int | Sequence[int],
    *,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Resample images on an affine grid, bilinearly; differentiable in ``images``.

    Chip pixel ``(x, y)`` takes the image value at ``M @ (x, y, 1)``. This
    equals ``cv2.warpAffine(image, invert(M), size, flags=INTER_LINEAR,
    borderMode=BORDER_CONSTANT)`` up to OpenCV's 1/32-pixel quantisation of
    sample positions.

    Parameters
    ----------
    images : Tensor of shape (B, C, H, W)
        Float images (any range).
    matrices : Tensor of shape (B, 2, 3)
        Maps chip pixel coordinates to image pixel coordinates.
    size : int or (int, int)
        Chip side, or ``(height, width)``.
    padding_mode : {"zeros", "border", "reflection", "dlib"}
        Value of samples outside the image. ``"zeros"`` treats every pixel
        outside as 0 and blends (OpenCV's ``BORDER_CONSTANT``); ``"dlib"``
        makes a chip pixel 0 unless all four of its bilinear neighbours are
        inside, as dlib's ``extract_image_chip`` does; the others are
        :func:`~torch.nn.functional.grid_sample`'s modes.

    Returns
    -------
    Tensor of shape (B, C, S_h, S_w)
        The chips, in the dtype of ``images``.
    """
    check_shape(images, ["B", "C", "H", "W"], "images")
    check_shape(matrices, [images.shape[0], 2, 3], "matrices")
    out_h, out_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    height, width = images.shape[-2:]
    matrices = matrices.to(images.dtype)
    ys, xs = torch.meshgrid(
        torch.arange(out_h, dtype=images.dtype, device=images.device),
        torch.arange(out_w, dtype=images.dtype, device=images.device),
        indexing="ij",
    )
    chip = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)
    points = (chip @ matrices.transpose(1, 2)).reshape(-1, out_h, out_w, 2)
    # align_corners=True: -1 and +1 are the centres of the first and last pixel.
    scale = points.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    grid = points * scale - 1.0
    mode = "zeros" if padding_mode == "dlib" else padding_mode
    chips = F.grid_sample(images, grid, mode="bilinear", padding_mode=mode, align_corners=True)
    if padding_mode == "dlib":
        x, y = points.detach().floor().unbind(-1)
        inside = (x >= 0) & (y >= 0) & (x + 1 < width) & (y + 1 < height)
        chips = chips * inside[:, None].to(chips.dtype)
    return chips


def align_to_template(
    images: torch.Tensor,
    landmarks: torch.Tensor,
    template: torch.Tensor,
    size: int,
) -> torch.Tensor:
    """Warp faces so their landmarks fit ``template`` (the insightface/OpenCV recipe).

    The similarity is fitted from landmarks to template (least squares in
    chip space, as ``skimage.transform.SimilarityTransform.estimate`` in
    insightface's ``norm_crop``), then the image is sampled through its
    inverse.

    Parameters
    ----------
    images : Tensor of shape (B, C, H, W)
        Float images.
    landmarks : Tensor of shape (B, K, 2)
        ``(x, y)`` image pixels.
    template : Tensor of shape (K, 2)
        ``(x, y)`` chip pixels.
    size : int
        Chip side.

    Returns
    -------
    Tensor of shape (B, C, size, size)
    """
    check_shape(landmarks, [images.shape[0], "K", 2], "landmarks")
    template = torch.as_tensor(template, device=landmarks.device)
    image_to_chip = similarity_transform(landmarks.detach().double(), template.double())
    return warp_affine(images, invert_affine(image_to_chip), size)


def align_insightface_112(images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """112×112 arcface chips from MTCNN-order 5-point landmarks.

    Parameters
    ----------
    images : Tensor of shape (B, C, H, W)
    landmarks : Tensor of shape (B, 5, 2)
        ``(x, y)`` image pixels in :data:`vdeid.faces.LANDMARK_NAMES` order.

    Returns
    -------
    Tensor of shape (B, C, 112, 112)
    """
    check_shape(landmarks, [images.shape[0], 5, 2], "landmarks")
    return align_to_template(images, landmarks, INSIGHTFACE_112, 112)


# ---------------------------------------------------------------------------
# dlib's face-chip geometry (get_face_chip_details + extract_image_chip)
# ---------------------------------------------------------------------------


def template_to_chip(template: torch.Tensor, size: int, padding: float) -> torch.Tensor:
    """Unit-square template points → dlib's chip coordinates ``size·(padding + t)/(2·padding + 1)``."""
    return size * (padding + torch.as_tensor(template, dtype=torch.float64)) / (2 * padding + 1)


def _rect_down(rect: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    # dlib pyramid_down<2>::rect_down on a drectangle (left, top, right, bottom).
    left, top, right, bottom = rect
    return (left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75)


def _area(rect: tuple[float, float, float, float]) -> float:
    left, top, right, bottom = rect
    return (right - left + 1) * (bottom - top + 1)


def _lround(value: float) -> int:
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


_BINOMIAL5 = (1.0, 4.0, 6.0, 4.0, 1.0)


def pyramid_down(images: torch.Tensor) -> torch.Tensor:
    """One level of dlib's ``pyramid_down<2>``: 5-tap binomial blur, keep every second pixel.

    Output pixel ``(r, c)`` is centred on input pixel ``(2r + 2, 2c + 2)``;
    the output has ``(H − 3) // 2`` rows and ``(W − 3) // 2`` columns. dlib
    works on uint8 and floors the result; this float version does not round.

    Parameters
    ----------
    images : Tensor of shape (B, C, H, W)

    Returns
    -------
    Tensor of shape (B, C, (H − 3) // 2, (W − 3) // 2)
    """
    check_shape(images, ["B", "C", "H", "W"], "images")
    channels = images.shape[1]
    taps = images.new_tensor(_BINOMIAL5) / 16.0
    horizontal = taps.view(1, 1, 1, 5).expand(channels, 1, 1, 5)
    vertical = taps.view(1, 1, 5, 1).expand(channels, 1, 5, 1)
    out = F.conv2d(images, horizontal, stride=(1, 2), groups=channels)
    return F.conv2d(out, vertical, stride=(2, 1), groups=channels)


def extract_dlib_chips(images: torch.Tensor, transforms: torch.Tensor, size: int = 150) -> torch.Tensor:
    """dlib's ``extract_image_chip(img, get_face_chip_details(...))``, differentiable in ``images``.

    Reproduces dlib's geometry exactly (chip rectangle from the similarity
    transform, image pyramid for faces larger than about twice the chip,
    black outside the image). dlib then truncates to uint8; this does not,
    so on uint8-valued input the chips differ from dlib's by less than one
    grey level.

    Parameters
    ----------
    images : Tensor of shape (B, C, H, W)
        Float images (any range; dlib's are 0..255 and [0, 1] works too).
    transforms : Tensor of shape (B, 2, 3)
        ``find_similarity_transform(from=chip template points, to=landmarks)``:
        maps the chip-template coordinates (see :func:`template_to_chip`) to
        image pixels.
    size : int
        Chip side (150 for the face-recognition ResNet).

    Returns
    -------
    Tensor of shape (B, C, size, size)
    """
    check_shape(images, ["B", "C", "H", "W"], "images")
    check_shape(transforms, [images.shape[0], 2, 3], "transforms")
    chips: list[torch.Tensor | None] = [None] * len(images)
    # Faces that need no pyramid sample the whole image: one warp for all of
    # them, rather than one small kernel chain per face.
    direct, matrices = [], []
    for b, (full, transform) in enumerate(zip(images, transforms.detach().double().cpu())):
        source, chip_to_source = _dlib_chip_geometry(full.shape[-2:], transform, size)
        if source is None:
            direct.append(b)
            matrices.append(chip_to_source)
            continue
        top, bottom, left, right, passes = source
        image = full[:, max(top, 0) : bottom + 1, max(left, 0) : right + 1][None]
        empty = min(image.shape[-2:]) == 0
        for _ in range(passes):
            # dlib's pyramid_down returns an empty image for inputs of <= 8 rows or columns.
            empty = empty or min(image.shape[-2:]) <= 8
            if empty:
                break
            image = pyramid_down(image)
        if empty:
            # A black chip; keep the graph so (zero) gradients still reach the crop.
            chips[b] = full.sum() * 0 + full.new_zeros(full.shape[0], size, size)
        else:
            matrix = chip_to_source.to(device=images.device)[None]
            chips[b] = warp_affine(image, matrix, size, padding_mode="dlib")[0]
    if direct:
        # Usually every face: then no gathered copy of the batch.
        source = images if len(direct) == len(images) else images[torch.tensor(direct, device=images.device)]
        warped = warp_affine(source, torch.stack(matrices).to(images.device), size, padding_mode="dlib")
        for b, chip in zip(direct, warped):
            chips[b] = chip
    return torch.stack(chips)


def _dlib_chip_geometry(image_size, transform: torch.Tensor, size: int):
    """dlib's chip rectangle and pyramid choice for one face.

    Returns ``(source, matrix)``: ``source`` is None when no pyramid is needed
    (sample the whole image) or ``(top, bottom, left, right, passes)`` of the
    sub-image to blur ``passes`` times; ``matrix`` (2, 3) maps chip pixels to
    the sampled image's pixels.
    """
    height, width = int(image_size[0]), int(image_size[1])
    t = transform.tolist()
    # get_face_chip_details: angle and scale of the template→image map, and
    # the chip's centre; the chip rect is size·scale wide around that centre.
    vx, vy = t[0][0], t[1][0]
    angle = math.atan2(vy, vx)
    scale = math.hypot(vx, vy)
    cx = t[0][0] * size / 2 + t[0][1] * size / 2 + t[0][2]
    cy = t[1][0] * size / 2 + t[1][1] * size / 2 + t[1][2]
    half = (size * scale - 1) / 2
    rect = (cx - half, cy - half, cx + half, cy + half)

    chip_area = float(size * size)
    grow = 2
    probe = _rect_down(rect)
    while _area(probe) > chip_area:
        probe = _rect_down(probe)
        grow = 2 * grow + 2
    cos, sin = math.cos(angle), math.sin(angle)

    source = None
    if _area(_rect_down(rect)) > chip_area:
        corners = [(rect[0], rect[1]), (rect[2], rect[1]), (rect[0], rect[3]), (rect[2], rect[3])]
        rotated = [
            (cx + cos * (x - cx) - sin * (y - cy), cy + sin * (x - cx) + cos * (y - cy)) for x, y in corners
        ]
        xs = [p[0] for p in rotated]
        ys = [p[1] for p in rotated]
        box = (
            max(min(xs) - grow, 0.0),
            max(min(ys) - grow, 0.0),
            min(max(xs) + grow, width - 1.0),
            min(max(ys) + grow, height - 1.0),
        )
        left, top, right, bottom = (_lround(v) for v in box)
        rect = (rect[0] - left, rect[1] - top, rect[2] - left, rect[3] - top)
        passes = 0
        while _area(_rect_down(rect)) > chip_area:
            rect = _rect_down(rect)
            passes += 1
        source = (top, bottom, left, right, passes)

    # Chip (0, 0), (size−1, 0), (0, size−1) go to the rotated rect's corners.
    mx, my = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2
    sx = (rect[2] - rect[0]) / (size - 1)
    sy = (rect[3] - rect[1]) / (size - 1)
    ox = mx + cos * (rect[0] - mx) - sin * (rect[1] - my)
    oy = my + sin * (rect[0] - mx) + cos * (rect[1] - my)
    matrix = torch.tensor(
        [[cos * sx, -sin * sy, ox], [sin * sx, cos * sy, oy]],
        dtype=torch.float64,
    )
    return source, matrix
