"""P-FGVM started from Gaussian noise, snapshot by snapshot (the paper's Figure 2).

The paper shows that P-FGVM, started from Gaussian random noise instead of
the face, converges to an image that looks like the original (the realism
term ``λ (x̂ - x)`` pulls it there) yet is not recognised as it (the
adversarial term keeps it away). Here the adversarial term is vdeid's
open-set dodge loss against one recogniser, so the image converges to the
original until the recogniser's distance would drop below its threshold plus
the margin, and stays beyond it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..imageops import from_float, to_float

__all__ = ["evolution_from_noise"]


def evolution_from_noise(
    image: np.ndarray,
    landmarks: np.ndarray,
    recognizer,
    *,
    steps: Sequence[int] = (0, 2, 5, 10, 20, 50),
    alpha: float = 1.0,
    lam: float = 0.22,
    margin: float = 0.1,
    seed: int = 0,
) -> list[tuple[int, np.ndarray, float]]:
    """Snapshots of P-FGVM from a noise start.

    Each snapshot is a fresh run of ``n`` fixed iterations (no early stop)
    from the same seeded noise, so snapshot ``n`` is exactly the state after
    ``n`` steps. Defaults are Table 2's model-A parameters, with the
    gradient calibrated to one grey level as the engine does.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        The face crop.
    landmarks : ndarray of shape (5, 2)
        ``(x, y)`` crop pixels.
    recognizer : Recognizer
        The network fooled (dodge objective).
    steps : sequence of int
        Iteration counts to show.
    alpha, lam, margin, seed
        P-FGVM step, realism weight, dodge margin and noise seed.

    Returns
    -------
    list of (int, ndarray, float)
        ``(iterations, uint8 image (H, W, 3), recogniser distance to the original)``.
    """
    from ..attacks import PFGVM, DodgeObjective

    x = torch.from_numpy(to_float(image)).permute(2, 0, 1)[None].contiguous()
    lm = torch.as_tensor(np.asarray(landmarks, np.float32)).reshape(1, 5, 2)
    out = []
    for n in steps:
        objective = DodgeObjective(recognizer, lm, margin=margin, seed=seed)
        attack = PFGVM(
            objective, alpha=alpha, lam=lam, steps=int(n), start="noise", seed=seed, early_stop=False, levels=255, calibrate=True
        )
        result = attack(x)
        with torch.no_grad():
            d = float(objective.distances(result.images, torch.arange(1))[0])
        img = from_float(result.images[0].permute(1, 2, 0).numpy(), np.uint8)
        out.append((int(n), img, d))
    return out
