"""I-FGVM: Iterative Fast Gradient Value Method."""

from __future__ import annotations

from typing import Optional

from .base import Attack, AttackResult
from .objectives import Objective


class IFGVM(Attack):
    r"""I-FGVM as used by Chatzikyriakidis et al., "Adversarial Face
    De-identification", ICIP 2019 (no arXiv version), after
    Kurakin et al. (https://arxiv.org/abs/1607.02533) and Rozsa et al.
    (https://arxiv.org/abs/1605.01775).

    Distance Measure : Linf

    .. math::
        \hat x_{i+1} = \mathrm{clip}_{[0,1]}\big(\mathrm{clip}_{[x-\epsilon,x+\epsilon]}(\hat x_i - \alpha \nabla_x \ell(\hat x_i))\big)

    Arguments:
        objective (Objective): loss to minimise and success mask.
        eps (float): L-inf budget on [0, 1] pixels. (Default: 0.022, Table 2)
        alpha (float): step size. (Default: 1.0, Table 2 model A)
        steps (int): number of iterations N. (Default: 50)
        early_stop, levels, calibrate: see :class:`~vdeid.attacks.base.Attack`.

    Shape:
        - images: :math:`(B, 3, H, W)` float in [0, 1].
        - output: :class:`~vdeid.attacks.base.AttackResult`, within ``eps`` of the input.

    Examples::
        >>> attack = IFGVM(objective, eps=0.022, alpha=1.0, steps=50)
        >>> result = attack(images)
    """

    name = "ifgvm"
    norm = "Linf"

    def __init__(
        self,
        objective: Objective,
        *,
        eps: float = 0.022,
        alpha: float = 1.0,
        steps: int = 50,
        early_stop: bool = True,
        levels: Optional[int] = None,
        calibrate: bool = False,
    ):
        super().__init__(objective, steps=steps, early_stop=early_stop, levels=levels, calibrate=calibrate)
        self.eps = float(eps)
        self.alpha = float(alpha)

    def _params(self):
        return {"eps": self.eps, "alpha": self.alpha, **super()._params()}

    def forward(self, images, *, init=None, mask=None) -> AttackResult:
        def update(adv, grad, x):
            delta = (adv - self.alpha * grad - x).clamp(-self.eps, self.eps)
            return (x + delta).clamp(0, 1)

        return self._iterate(images, update, init=init, mask=mask)
