"""Base class and config shared by every face recogniser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn


@dataclass(frozen=True)
class RecognizerCfg:
    """What a recogniser is and how to use its embeddings (timm's PretrainedCfg).

    Attributes
    ----------
    name : str
        Registry name (``dlib``, ``mobileface``, ``facenet``).
    input_size : int
        Side of the square aligned chip the network takes.
    embedding_dim : int
        Length of the descriptor.
    metric : {"euclidean", "cosine"}
        ``euclidean``: L2 distance of descriptors; ``cosine``: 1 - cosine
        similarity. Either way larger means "less alike".
    threshold : float
        Distance under which two faces are judged the same person.
    source : str
        Where the weights were loaded from (package or path).
    license : str
        Licence of the weights.
    """

    name: str
    input_size: int
    embedding_dim: int
    metric: Literal["euclidean", "cosine"]
    threshold: float
    source: str = ""
    license: str = ""


class Recognizer(nn.Module):
    """A differentiable face recogniser that aligns its own chips.

    Subclasses implement :meth:`align` (crop + 5 landmarks → aligned chip,
    differentiable in the crop's pixels) and :meth:`embed_chips`.

    Shape:
        - crops: :math:`(B, 3, H, W)` float in [0, 1], RGB.
        - landmarks: :math:`(B, 5, 2)` float, ``(x, y)`` in crop pixels, in
          :data:`vdeid.faces.LANDMARK_NAMES` order.
        - output: :math:`(B, D)` descriptors.
    """

    cfg: RecognizerCfg

    def align(self, crops: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Warp crops to ``(B, 3, S, S)`` chips in [0, 1]; gradients flow to ``crops``."""
        raise NotImplementedError

    def embed_chips(self, chips: torch.Tensor) -> torch.Tensor:
        """Descriptors ``(B, D)`` of aligned chips ``(B, 3, S, S)`` in [0, 1]."""
        raise NotImplementedError

    def forward(self, crops: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return self.embed_chips(self.align(crops, landmarks))

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Row-wise distance ``(B,)`` between descriptors ``(B, D)`` under ``cfg.metric``."""
        if self.cfg.metric == "euclidean":
            return (a - b).norm(dim=-1)
        return 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=-1)
