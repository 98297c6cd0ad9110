"""ILLC: Iterative Least-Likely Class method (targeted)."""

from __future__ import annotations

from ..errors import VdeidError
from .bim import BIM
from .objectives import CrossEntropyObjective, Objective


class ILLC(BIM):
    r"""ILLC from Kurakin, Goodfellow and Bengio, "Adversarial examples in the
    physical world" (https://arxiv.org/abs/1607.02533), as used for face
    de-identification by Ghafourian et al. (https://arxiv.org/abs/2302.03657).

    Distance Measure : Linf

    Targeted at the class the clean image scores lowest:
    :math:`x_{i+1} = \mathrm{Clip}_\epsilon\{x_i - \alpha\,\mathrm{sign}(\nabla J(x_i, y_{LL}))\}`
    with :math:`y_{LL} = \arg\min_y p(y \mid x)`.

    Arguments:
        objective (Objective): a closed-set
            :class:`~vdeid.attacks.objectives.CrossEntropyObjective` in
            ``least_likely`` mode (its :meth:`prepare` picks :math:`y_{LL}`),
            or any objective that pulls towards a least-likely target (the
            engine's open-set ILLC impersonates the farthest donor).
        eps (float): budget on the 0-255 scale. (Default: 8)
        alpha (float): step on the 0-255 scale. (Default: 1)
        steps (int, optional): iterations; ``min(eps + 4, 1.25 eps)`` when None.
        early_stop, levels, calibrate: see :class:`~vdeid.attacks.base.Attack`.

    Shape:
        - images: :math:`(B, 3, H, W)` float in [0, 1].
        - output: :class:`~vdeid.attacks.base.AttackResult`, within ``eps / 255`` of the input.

    Examples::
        >>> attack = ILLC(CrossEntropyObjective(model, mode="least_likely"), eps=8)
        >>> result = attack(images)
    """

    name = "illc"

    def __init__(self, objective: Objective, **kwargs):
        # Same arguments as BIM; only the objective is checked.
        if isinstance(objective, CrossEntropyObjective) and objective.mode != "least_likely":
            raise VdeidError(
                f"ILLC targets the least-likely class; build the objective with mode='least_likely' "
                f"(got mode={objective.mode!r})"
            )
        super().__init__(objective, **kwargs)
