"""I-FGSM: Iterative Fast Gradient Sign Method."""

from __future__ import annotations

from typing import Optional

from .base import Attack, AttackResult
from .objectives import Objective


class IFGSM(Attack):
    r"""I-FGSM from Kurakin, Goodfellow and Bengio, "Adversarial examples in
    the physical world" (https://arxiv.org/abs/1607.02533), with the
    parameters of Chatzikyriakidis et al., "Adversarial Face De-identification", ICIP 2019.

    Distance Measure : Linf

    .. math::
        \hat x_{i+1} = \mathrm{clip}_{[0,1]}\big(\mathrm{clip}_{[x-\epsilon,x+\epsilon]}(\hat x_i - \alpha\,\mathrm{sign}(\nabla_x \ell(\hat x_i)))\big)

    Arguments:
        objective (Objective): loss to minimise and success mask.
        eps (float): L-inf budget on [0, 1] pixels. (Default: 0.026, Table 2)
        alpha (float, optional): step size; ``eps / steps`` when None. (Default: None)
        steps (int): number of iterations N. (Default: 20)
        early_stop, levels, calibrate: see :class:`~vdeid.attacks.base.Attack`.

    Shape:
        - images: :math:`(B, 3, H, W)` float in [0, 1].
        - output: :class:`~vdeid.attacks.base.AttackResult`, within ``eps`` of the input.

    Examples::
        >>> attack = IFGSM(objective, eps=0.026, steps=20)
        >>> result = attack(images)
    """

    name = "ifgsm"
    norm = "Linf"

    def __init__(
        self,
        objective: Objective,
        *,
        eps: float = 0.026,
        alpha: Optional[float] = None,
        steps: int = 20,
        early_stop: bool = True,
        levels: Optional[int] = None,
        calibrate: bool = False,
    ):
        super().__init__(objective, steps=steps, early_stop=early_stop, levels=levels, calibrate=calibrate)
        self.eps = float(eps)
        self.alpha = float(alpha) if alpha is not None else self.eps / max(self.steps, 1)

    def _params(self):
        return {"eps": self.eps, "alpha": self.alpha, **super()._params()}

    def forward(self, images, *, init=None, mask=None) -> AttackResult:
        def update(adv, grad, x):
            delta = (adv - self.alpha * grad.sign() - x).clamp(-self.eps, self.eps)
            return (x + delta).clamp(0, 1)

        return self._iterate(images, update, init=init, mask=mask)
