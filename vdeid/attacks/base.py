"""The base every attack subclasses (torchattacks' ``Attack`` shape).

The base owns what every iterative attack shares, so each attack file holds
only its paper's update rule:

- eval mode for the networks of the objective (restored afterwards);
- the pixel domain: images are ``(B, 3, H, W)`` float in [0, 1]; an optional
  ``mask`` limits where the perturbation applies, and ``levels`` makes the
  objective see the image as it will be written (straight-through rounding to
  8- or 10-bit codes);
- per-sample early exit: a sample that reaches its goal leaves the forward
  batch and is no longer updated;
- bookkeeping: iterations spent and success per sample.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..checks import check_shape
from ..errors import VdeidError
from .objectives import Objective

logger = logging.getLogger(__name__)

#: ``update(adv, grad, images) -> next adv``: one step of an attack, projection included.
Update = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class AttackResult:
    """What an attack returns.

    Attributes
    ----------
    images : Tensor of shape (B, 3, H, W)
        Adversarial images, float in [0, 1]; on the ``levels`` grid when the
        attack quantises (exactly the values the objective judged).
    iterations : Tensor of shape (B,), int64
        Gradient steps applied to each sample.
    done : Tensor of shape (B,), bool
        Whether each sample meets the objective in ``images``.
    loss : Tensor of shape (B,)
        Objective loss of ``images``.
    adv : Tensor of shape (B, 3, H, W)
        The attack's free variable before masking and rounding (what a warm
        start continues from); equals ``images`` without mask and levels.
    """

    images: torch.Tensor
    iterations: torch.Tensor
    done: torch.Tensor
    loss: torch.Tensor
    adv: torch.Tensor


def quantize_ste(images: torch.Tensor, levels: Optional[int]) -> torch.Tensor:
    """Round to ``levels`` codes in the forward pass, identity in the backward pass.

    Parameters
    ----------
    images : Tensor of shape (B, 3, H, W)
        Float in [0, 1].
    levels : int or None
        Largest code (255 for 8-bit, 1023 for 10-bit); None leaves the images
        as they are.
    """
    if levels is None:
        return images
    rounded = torch.round(images * levels) / levels
    return images + (rounded - images).detach()


class Attack:
    """Base class of the iterative attacks.

    Parameters
    ----------
    objective : Objective
        Maps images to (loss to minimise, done mask), see
        :mod:`vdeid.attacks.objectives`.
    steps : int
        Iteration budget per sample.
    early_stop : bool, optional
        Stop updating a sample once it is done, and drop it from the forward
        batch. The papers run a fixed number of steps (False). (Default: True)
    levels : int, optional
        Judge (and return) the images rounded to ``levels`` codes, with a
        straight-through gradient: 255 for 8-bit output, 1023 for 10-bit.
        None works in continuous [0, 1]. (Default: None)
    calibrate : bool, optional
        Rescale each sample's loss once, at its first step, so that its
        gradient has an RMS of one grey level (1/255) over the pixels it
        reaches. Value methods (P-FGVM, I-FGVM) then mean the same thing by
        ``alpha`` for every recogniser, loss and face size; sign methods are
        unaffected. The papers' classifiers had one input size and did not
        need it. (Default: False)

    Shape:
        - images: :math:`(B, 3, H, W)` float in [0, 1].
        - mask: :math:`(B, 1, H, W)` or :math:`(B, 3, H, W)` in [0, 1]; the
          perturbation applied is ``mask * (adv - images)``.
        - init: :math:`(B, 3, H, W)` starting point (warm start), in [0, 1].
        - output: :class:`AttackResult`.
    """

    #: Registry name.
    name: str = "attack"
    #: Distance measure of the perturbation budget ("Linf", "L2 penalty"...).
    norm: str = ""

    def __init__(
        self,
        objective: Objective,
        *,
        steps: int,
        early_stop: bool = True,
        levels: Optional[int] = None,
        calibrate: bool = False,
    ):
        if steps < 0:
            raise VdeidError(f"steps must be >= 0, got {steps}")
        self.objective = objective
        self.steps = int(steps)
        self.early_stop = bool(early_stop)
        self.levels = levels
        self.calibrate = bool(calibrate)
        #: Per-sample gradient scale found by calibration in the last run.
        self.scales: Optional[torch.Tensor] = None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def _params(self) -> dict:
        return {"steps": self.steps, "early_stop": self.early_stop, "levels": self.levels, "calibrate": self.calibrate}

    def __call__(
        self,
        images: torch.Tensor,
        *,
        init: Optional[torch.Tensor] = None,
        mask: Optional[torch.Tensor] = None,
        budget: Optional[torch.Tensor] = None,
    ) -> AttackResult:
        """Check inputs, put the networks in eval mode, prepare the objective, run :meth:`forward`.

        Parameters
        ----------
        images : Tensor of shape (B, 3, H, W)
            Clean images, float in [0, 1].
        init : Tensor of shape (B, 3, H, W), optional
            Starting point (warm start); ``images`` when None.
        mask : Tensor of shape (B, 1 or 3, H, W), optional
            Where (and how much) the perturbation applies, in [0, 1].
        budget : Tensor of shape (B,), int64, optional
            Per-sample iteration budget below :attr:`steps` (a second round
            continues with what is left).
        """
        check_shape(images, ["B", 3, "H", "W"], "images")
        if init is not None:
            check_shape(init, list(images.shape), "init")
        if mask is not None:
            check_shape(mask, [len(images), "C", images.shape[2], images.shape[3]], "mask")
        modules = self.objective.modules()
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        self._budget = budget
        try:
            self.objective.prepare(images.detach())
            return self.forward(images, init=init, mask=mask)
        finally:
            self._budget = None
            for m, mode in zip(modules, modes):
                m.train(mode)

    def forward(self, images, *, init=None, mask=None) -> AttackResult:
        raise NotImplementedError

    def compose(self, images: torch.Tensor, adv: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """The image the objective judges and the caller writes.

        ``images + mask * (adv - images)``, rounded to ``levels`` (pixels with
        mask 0 keep their exact original value even when ``images`` is off
        the grid).
        """
        if mask is None:
            return quantize_ste(adv, self.levels)
        out = quantize_ste(images + mask * (adv - images), self.levels)
        if self.levels is None:
            return out
        return torch.where(mask > 0, out, images)

    def _iterate(
        self,
        images: torch.Tensor,
        update: Update,
        *,
        init: Optional[torch.Tensor] = None,
        mask: Optional[torch.Tensor] = None,
    ) -> AttackResult:
        """Run ``update`` for :attr:`steps` iterations with per-sample early exit.

        Each iteration evaluates the objective on the active samples, retires
        the ones that are done (when :attr:`early_stop`), takes the gradient
        of the others' summed loss with :func:`torch.autograd.grad` and calls
        ``update`` on them; the result is detached. A final evaluation judges
        the samples that used their whole budget.
        """
        x = images.detach()
        n = len(x)
        adv = (x if init is None else init.detach()).clone()
        iterations = torch.zeros(n, dtype=torch.long, device=x.device)
        done = torch.zeros(n, dtype=torch.bool, device=x.device)
        losses = torch.full((n,), float("nan"), device=x.device)
        scales = torch.full((n,), float("nan"), device=x.device)
        active = torch.arange(n, device=x.device)
        budget = getattr(self, "_budget", None)
        budget = torch.full((n,), self.steps, device=x.device) if budget is None else budget.to(x.device)
        objective = self.objective
        for step in range(self.steps + 1):
            if len(active) == 0:
                break
            last = step == self.steps
            cur = adv[active].requires_grad_(not last)
            xm = x[active]
            mm = None if mask is None else mask[active]
            with torch.set_grad_enabled(not last):
                loss, ok = objective(self.compose(xm, cur, mm), active)
            losses[active] = loss.detach().float()
            done[active] = ok
            if last:
                break
            keep = ~ok if self.early_stop else torch.ones_like(ok)
            keep &= iterations[active] < budget[active]
            if not bool(keep.any()):
                break
            (grad,) = torch.autograd.grad(loss[keep].sum(), cur)
            grad = grad[keep]
            active = active[keep]
            if self.calibrate:
                grad = grad * self._calibration(scales, active, grad)[:, None, None, None]
            nxt = update(cur.detach()[keep], grad, xm[keep]).detach()
            adv[active] = nxt
            iterations[active] += 1
        with torch.no_grad():
            out = self.compose(x, adv, mask).detach()
        self.scales = scales
        return AttackResult(out, iterations, done, losses, adv)

    @staticmethod
    def _calibration(scales: torch.Tensor, active: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        # Fixed once per sample (at its first step) so the loss keeps its
        # shape afterwards: a growing gradient still means a steeper loss.
        todo = torch.isnan(scales[active])
        if bool(todo.any()):
            g = grad[todo].flatten(1)
            reached = (g != 0).sum(dim=1).clamp(min=1)
            rms = (g.square().sum(dim=1) / reached).sqrt()
            scales[active[todo]] = torch.where(rms > 0, (1.0 / 255.0) / rms, torch.ones_like(rms))
        return scales[active]
