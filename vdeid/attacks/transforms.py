"""A differentiable stand-in for video compression (expectation over transformations).

A protected video is encoded (H.264, CRF 18, 4:2:0 chroma) after the attack.
The encoder averages colour over 2×2 blocks and smooths away the finest
detail, which is where a small adversarial perturbation lives. Optimising
through a random, mild version of those losses (Athalye et al.'s expectation
over transformation, https://arxiv.org/abs/1707.07397) moves the perturbation
into what survives: luma, and slightly coarser structure.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CompressionProxy", "rgb_to_ycbcr", "ycbcr_to_rgb", "gaussian_blur"]

# ITU-R BT.601 (the matrix H.264 streams usually signal for SD; HD differs
# only slightly and the proxy need not be exact).
_RGB2YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCC2RGB = torch.linalg.inv(_RGB2YCC)


def rgb_to_ycbcr(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] → Y, Cb, Cr (Cb/Cr centred on 0)."""
    return torch.einsum("ij,bjhw->bihw", _RGB2YCC.to(images), images)


def ycbcr_to_rgb(images: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`."""
    return torch.einsum("ij,bjhw->bihw", _YCC2RGB.to(images), images)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample separable Gaussian blur; ``sigma`` ``(B,)`` in pixels (0 = identity)."""
    b, c, h, w = images.shape
    radius = max(1, int(math.ceil(3 * float(sigma.max())))) if float(sigma.max()) > 0 else 0
    if radius == 0:
        return images
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    s = sigma.to(images).clamp(min=1e-3)[:, None]
    k = torch.exp(-0.5 * (t[None] / s) ** 2)
    k = k / k.sum(dim=1, keepdim=True)  # (B, K)
    kh = k.repeat_interleave(c, dim=0)[:, None, None, :]  # (B*C, 1, 1, K)
    kv = k.repeat_interleave(c, dim=0)[:, None, :, None]
    x = images.reshape(1, b * c, h, w)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), kh, groups=b * c)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), kv, groups=b * c)
    return x.reshape(b, c, h, w)


class CompressionProxy(nn.Module):
    """Mild blur + 4:2:0 chroma subsampling + noise, random or fixed.

    Parameters
    ----------
    sigma : float, optional
        Largest luma blur in pixels (drawn uniformly in ``[0, sigma]`` when
        random, ``sigma / 2`` when fixed). (Default: 0.6)
    noise : float, optional
        Std of additive noise on [0, 1] pixels, random mode only. (Default: 1/255)
    chroma : bool, optional
        Average Cb/Cr over 2×2 blocks (crops must start on even pixels for
        the blocks to match the encoder's). (Default: True)

    Shape:
        - images: :math:`(B, 3, H, W)` float in [0, 1].
        - output: same shape.
    """

    def __init__(self, sigma: float = 0.6, noise: float = 1 / 255, chroma: bool = True):
        super().__init__()
        self.sigma = float(sigma)
        self.noise = float(noise)
        self.chroma = bool(chroma)

    def forward(self, images: torch.Tensor, *, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Random draw when ``generator`` is given, the fixed proxy otherwise."""
        b = len(images)
        if generator is not None:
            sigma = torch.rand(b, generator=generator) * self.sigma
        else:
            sigma = torch.full((b,), self.sigma / 2)
        ycc = rgb_to_ycbcr(images)
        y = gaussian_blur(ycc[:, :1], sigma.to(images.device))
        cc = ycc[:, 1:]
        if self.chroma and images.shape[-1] >= 2 and images.shape[-2] >= 2:
            h, w = images.shape[-2:]
            pooled = F.avg_pool2d(cc, 2, ceil_mode=True)
            cc = F.interpolate(pooled, scale_factor=2, mode="bilinear", align_corners=False)[..., :h, :w]
        out = ycbcr_to_rgb(torch.cat([y, cc], dim=1))
        if generator is not None and self.noise > 0:
            out = out + torch.randn(out.shape, generator=generator).to(out) * self.noise
        return out.clamp(0, 1)
