"""Tiny randomly initialised networks for fast attack and engine tests.

They are real (differentiable, deterministic) models, just small: a
recogniser that aligns its own 32×32 chip from five landmarks and a
classifier over 16×16 images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vdeid.recognizers.base import Recognizer, RecognizerCfg

# MTCNN-order template (eyes, nose, mouth corners) in a 32-px chip.
TEMPLATE = torch.tensor([[10.0, 11.0], [22.0, 11.0], [16.0, 17.0], [11.5, 23.0], [20.5, 23.0]])


def similarity_from(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity ``(B, 2, 3)`` mapping ``src`` points onto ``dst`` (both ``(B, N, 2)``)."""
    ms, md = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)
    s, d = src - ms, dst - md
    a = (s * d).sum((1, 2)) / (s * s).sum((1, 2))
    b = (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]).sum(1) / (s * s).sum((1, 2))
    rot = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], 1)
    t = md[:, 0] - (rot @ ms[:, 0, :, None])[..., 0]
    return torch.cat([rot, t[..., None]], 2)


def warp_to_chip(crops: torch.Tensor, landmarks: torch.Tensor, size: int = 32) -> torch.Tensor:
    """Bilinear chip ``(B, 3, size, size)``; differentiable in ``crops``."""
    b, _, h, w = crops.shape
    tmpl = (TEMPLATE * size / 32).to(crops).expand(b, -1, -1)
    m = similarity_from(tmpl, landmarks.to(crops))  # chip -> crop pixels
    ys, xs = torch.meshgrid(torch.arange(size).to(crops), torch.arange(size).to(crops), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3)
    mapped = pts @ m.transpose(1, 2)  # (B, S*S, 2) crop pixel coordinates
    gx = (2 * mapped[..., 0] + 1) / w - 1
    gy = (2 * mapped[..., 1] + 1) / h - 1
    grid = torch.stack([gx, gy], -1).reshape(b, size, size, 2)
    return F.grid_sample(crops, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class TinyRecognizer(Recognizer):
    """A 2-conv embedding net on aligned 32×32 chips, unit-norm 16-D output."""

    def __init__(self, seed: int = 0, threshold: float = 0.3):
        super().__init__()
        self.cfg = RecognizerCfg("tiny", 32, 16, "euclidean", threshold)
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 8, 5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16 * 8 * 8, 16)
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / max(p[0].numel(), 1)) ** 0.5)

    def align(self, crops, landmarks):
        return warp_to_chip(crops, landmarks, 32)

    def embed_chips(self, chips):
        x = F.relu(self.conv1(chips - 0.5))
        x = F.relu(self.conv2(x))
        return F.normalize(self.fc(x.flatten(1)), dim=1)


class BoxViewRecognizer(TinyRecognizer):
    """TinyRecognizer that also embeds the chip its template gives inside a start box (dlib's views)."""

    def embed_views(self, crops, boxes):
        lo, hi = boxes[:, None, :2], boxes[:, None, 2:]
        return self(crops, (lo + (hi - lo) * TEMPLATE[None] / 32.0).to(crops))

    def embed_with_views(self, crops, landmarks, owner, boxes):
        return self(crops, landmarks), self.embed_views(crops[owner], boxes)


class TinyClassifier(nn.Module):
    """A conv + linear classifier over ``(B, 3, 16, 16)`` images, ``classes`` logits."""

    def __init__(self, classes: int = 6, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, classes)
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / max(p[0].numel(), 1)) ** 0.5)

    def forward(self, images):
        x = F.max_pool2d(F.relu(self.conv(images - 0.5)), 2)
        return self.fc(x.flatten(1)) * 3.0


def face_batch(n: int = 4, size: int = 48, seed: int = 0):
    """Smooth random 'faces' ``(n, 3, size, size)`` in [0, 1] and landmarks ``(n, 5, 2)`` in pixels."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 6, 6, generator=g)
    images = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    images = (images * 0.8 + 0.1 + 0.05 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)
    scale = size / 40.0
    lm = (TEMPLATE[None] + 4.0) * scale + torch.randn(n, 5, 2, generator=g) * 0.5
    return images, lm
