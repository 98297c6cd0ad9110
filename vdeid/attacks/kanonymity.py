"""k-anonymity-inspired attack: the true identity hides among k identities."""

from __future__ import annotations

from typing import Optional

from ..errors import VdeidError
from .base import Attack, AttackResult
from .objectives import KAnonymityObjective


class KAnonymity(Attack):
    r"""k-anonymity-inspired attack after Mygdalis, Tefas and Pitas,
    "K-anonymity inspired adversarial attack and multiple one-class
    classification defense", Neural Networks 124 (2020) 296-307 (no arXiv
    version; summarised in the AUTH lecture notes, ``seeds/002``).

    Distance Measure : Linf

    Goal: "the maximum probability of retrieving the real person identity must
    be less than 1/k, in every possible face classifier output ranking
    position". The loss (:class:`~vdeid.attacks.objectives.KAnonymityObjective`)
    is the cross-entropy between the uniform distribution over an anonymity
    set (the true class and its k - 1 nearest classes) and the classifier's
    posterior. Steps follow the gradient's value, not its sign: the goal is a
    tie, and value steps shrink as the posterior flattens where sign steps
    would keep overshooting it:

    .. math::
        \hat x_{i+1} = \mathrm{clip}_{[0,1]}\big(\mathrm{clip}_{[x-\epsilon,x+\epsilon]}(\hat x_i - \alpha\,\nabla_x \ell_k(\hat x_i))\big)

    Arguments:
        objective (KAnonymityObjective): the k-anonymity loss over a closed-set head.
        eps (float): L-inf budget on [0, 1] pixels. (Default: 8/255)
        alpha (float): step size; with ``calibrate`` the first step moves a
            typical pixel by ``alpha`` grey levels. (Default: 1.0)
        steps (int): iterations. (Default: 50)
        calibrate (bool): see :class:`~vdeid.attacks.base.Attack`. (Default: True)
        early_stop, levels: see :class:`~vdeid.attacks.base.Attack`.

    Shape:
        - images: :math:`(B, 3, H, W)` float in [0, 1].
        - output: :class:`~vdeid.attacks.base.AttackResult`, within ``eps`` of the input.

    Examples::
        >>> attack = KAnonymity(KAnonymityObjective(head, labels, k=5))
        >>> result = attack(images)
    """

    name = "kanon"
    norm = "Linf"

    def __init__(
        self,
        objective: KAnonymityObjective,
        *,
        eps: float = 8 / 255,
        alpha: float = 1.0,
        steps: int = 50,
        early_stop: bool = True,
        levels: Optional[int] = None,
        calibrate: bool = True,
    ):
        if not isinstance(objective, KAnonymityObjective):
            raise VdeidError("KAnonymity needs a KAnonymityObjective(head, labels, k=...)")
        super().__init__(objective, steps=steps, early_stop=early_stop, levels=levels, calibrate=calibrate)
        self.eps = float(eps)
        self.alpha = float(alpha)

    def _params(self):
        return {"k": self.objective.k, "eps": self.eps, "alpha": self.alpha, **super()._params()}

    def forward(self, images, *, init=None, mask=None) -> AttackResult:
        def update(adv, grad, x):
            delta = (adv - self.alpha * grad - x).clamp(-self.eps, self.eps)
            return (x + delta).clamp(0, 1)

        return self._iterate(images, update, init=init, mask=mask)
