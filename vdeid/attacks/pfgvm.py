"""P-FGVM: Penalized Fast Gradient Value Method."""

from __future__ import annotations

from typing import Literal, Optional

import torch

from ..errors import VdeidError
from .base import Attack, AttackResult
from .objectives import Objective


class PFGVM(Attack):
    r"""P-FGVM from Chatzikyriakidis, Papaioannidis and Pitas, "Adversarial Face
    De-identification", ICIP 2019 (no arXiv version; the authors' code:
    https://github.com/efstathios-chatzikyriakidis/adversarial-face-de-identification).

    Distance Measure : L2 penalty (no hard budget): a 'realism' term pulls the
    image back towards the original at every step.

    .. math::
        \hat x_0 = x,\qquad
        \hat x_{i+1} = \mathrm{clip}_{[0,1]}\big(\hat x_i - \alpha\,(\nabla_x \ell(\hat x_i) + \lambda (\hat x_i - x))\big)

    where :math:`\ell` is the objective's loss (the paper's targeted
    cross-entropy; vdeid's default is the open-set dodge loss).

    Arguments:
        objective (Objective): loss to minimise and success mask.
        alpha (float): step size. (Default: 1.0, Table 2 model A)
        lam (float): weight of the realism term. (Default: 0.22, Table 2 model A)
        steps (int): number of iterations N. (Default: 50)
        start (str): ``"image"`` starts from x (as in the update equations);
            ``"noise"`` from Gaussian random noise (the paper's Figure 2).
            (Default: "image")
        noise_std (float): std of the noise start around mid-grey. (Default: 0.25)
        seed (int): seed of the noise start. (Default: 0)
        early_stop, levels, calibrate: see :class:`~vdeid.attacks.base.Attack`.

    Shape:
        - images: :math:`(B, 3, H, W)` float in [0, 1].
        - output: :class:`~vdeid.attacks.base.AttackResult` with images in [0, 1].

    Examples::
        >>> attack = PFGVM(objective, alpha=1.0, lam=0.22, steps=50)
        >>> result = attack(images)
    """

    name = "pfgvm"
    norm = "L2 penalty"

    def __init__(
        self,
        objective: Objective,
        *,
        alpha: float = 1.0,
        lam: float = 0.22,
        steps: int = 50,
        start: Literal["image", "noise"] = "image",
        noise_std: float = 0.25,
        seed: int = 0,
        early_stop: bool = True,
        levels: Optional[int] = None,
        calibrate: bool = False,
    ):
        super().__init__(objective, steps=steps, early_stop=early_stop, levels=levels, calibrate=calibrate)
        if start not in ("image", "noise"):
            raise VdeidError(f"start must be 'image' or 'noise', got {start!r}")
        self.alpha = float(alpha)
        self.lam = float(lam)
        self.start = start
        self.noise_std = float(noise_std)
        self.seed = int(seed)

    def _params(self):
        return {"alpha": self.alpha, "lam": self.lam, "start": self.start, **super()._params()}

    def forward(self, images, *, init=None, mask=None) -> AttackResult:
        if init is None and self.start == "noise":
            gen = torch.Generator(device="cpu").manual_seed(self.seed)
            noise = torch.randn(images.shape, generator=gen).to(images)
            init = (0.5 + self.noise_std * noise).clamp(0, 1)

        def update(adv, grad, x):
            return (adv - self.alpha * (grad + self.lam * (adv - x))).clamp(0, 1)

        return self._iterate(images, update, init=init, mask=mask)
