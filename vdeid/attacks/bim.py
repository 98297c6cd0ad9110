"""BIM: Basic Iterative Method (untargeted)."""

from __future__ import annotations

import math
from typing import Optional

from .base import Attack, AttackResult
from .objectives import Objective


def kurakin_steps(eps255: float) -> int:
    """Kurakin et al.'s iteration count ``min(eps + 4, 1.25 eps)`` for ``eps`` on the 0-255 scale."""
    return max(1, int(math.ceil(min(eps255 + 4.0, 1.25 * eps255))))


class BIM(Attack):
    r"""BIM from Kurakin, Goodfellow and Bengio, "Adversarial examples in the
    physical world" (https://arxiv.org/abs/1607.02533), as used for face
    de-identification by Ghafourian et al., "Toward Face Biometric
    De-identification using Adversarial Examples" (https://arxiv.org/abs/2302.03657).

    Distance Measure : Linf

    Untargeted: ascends the loss of the true identity,
    :math:`x_{i+1} = \mathrm{Clip}_\epsilon\{x_i + \alpha\,\mathrm{sign}(\nabla J(x_i, y_{true}))\}`.
    vdeid's objectives return a loss to *minimise*, so the objective carries
    the sign: use :class:`~vdeid.attacks.objectives.CrossEntropyObjective`
    with ``mode="untargeted"`` (loss ``-J``) or the open-set
    :class:`~vdeid.attacks.objectives.DodgeObjective`.

    Arguments:
        objective (Objective): untargeted loss to minimise and success mask.
        eps (float): budget on the 0-255 scale, as in the papers
            (4, 8, 16, 32, 64, 128). (Default: 8)
        alpha (float): step on the 0-255 scale. (Default: 1)
        steps (int, optional): iterations; ``min(eps + 4, 1.25 eps)`` when None.
            (Default: None)
        early_stop, levels, calibrate: see :class:`~vdeid.attacks.base.Attack`.

    Shape:
        - images: :math:`(B, 3, H, W)` float in [0, 1].
        - output: :class:`~vdeid.attacks.base.AttackResult`, within ``eps / 255`` of the input.

    Examples::
        >>> attack = BIM(CrossEntropyObjective(model, labels), eps=8)
        >>> result = attack(images)
    """

    name = "bim"
    norm = "Linf"

    def __init__(
        self,
        objective: Objective,
        *,
        eps: float = 8.0,
        alpha: float = 1.0,
        steps: Optional[int] = None,
        early_stop: bool = True,
        levels: Optional[int] = None,
        calibrate: bool = False,
    ):
        super().__init__(
            objective, steps=kurakin_steps(eps) if steps is None else steps, early_stop=early_stop, levels=levels, calibrate=calibrate
        )
        self.eps255 = float(eps)
        self.eps = self.eps255 / 255.0
        self.alpha = float(alpha) / 255.0

    def _params(self):
        return {"eps": self.eps255, "alpha": self.alpha * 255.0, **super()._params()}

    def forward(self, images, *, init=None, mask=None) -> AttackResult:
        def update(adv, grad, x):
            delta = (adv - self.alpha * grad.sign() - x).clamp(-self.eps, self.eps)
            return (x + delta).clamp(0, 1)

        return self._iterate(images, update, init=init, mask=mask)
