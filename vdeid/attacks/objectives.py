"""What an attack optimises: per-sample losses to minimise and success masks.

An :class:`Objective` maps the current (adversarial) images of the samples
still in the batch to ``(loss, done)``: ``loss`` is what the attack MINIMISES
(one value per sample, so removing a finished sample from the batch never
changes the others' gradients) and ``done`` says which samples already meet
the goal. Per-sample context (landmarks, reference embeddings, labels) is
stored once for the whole batch and looked up with the ``index`` of the
samples still active, so attacks can shrink the forward batch as faces
finish.

Open set (product default, no gallery needed):

- :class:`DodgeObjective` pushes each face's embedding away from its own
  original embedding until the recogniser's distance exceeds its threshold
  plus a margin.
- :class:`ImpersonateObjective` pulls it towards a donor's embedding until the
  distance drops below the threshold minus a margin.

Closed set (a classifier or a gallery head giving logits over identities):

- :class:`CrossEntropyObjective` in ``untargeted`` (BIM: ascend the true
  class' loss), ``targeted`` (P-FGVM / I-FGVM / I-FGSM as in the ICIP 2019
  paper) or ``least_likely`` (ILLC) mode.
- :class:`KAnonymityObjective`: the true identity ends up indistinguishable
  among ``k`` identities (Mygdalis, Tefas and Pitas, *K-anonymity inspired
  adversarial attack and M-SVDD defense*, Neural Networks 124, 2020).

:class:`EnsembleObjective` attacks several recognisers at once; a sample is
done only when every member is satisfied.
"""

from __future__ import annotations

import logging
from typing import Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_shape
from ..errors import VdeidError

logger = logging.getLogger(__name__)

__all__ = [
    "Objective",
    "DodgeObjective",
    "ImpersonateObjective",
    "CrossEntropyObjective",
    "KAnonymityObjective",
    "EnsembleObjective",
]


class Objective:
    """Base class: per-sample loss to minimise and per-sample success mask.

    Subclasses implement :meth:`prepare` (read references from the clean
    images) and :meth:`__call__`. ``index`` always refers to the sample
    positions of the batch given to :meth:`prepare`.
    """

    #: Number of samples prepared (the batch the ``index`` refers to).
    n: int = 0

    def modules(self) -> list[nn.Module]:
        """The networks evaluated, so the attack can put them in eval mode."""
        return []

    def prepare(self, images: torch.Tensor) -> None:
        """Record per-sample references from the clean ``(B, 3, H, W)`` images.

        Called by every attack run; references given to the constructor (or
        computed by an earlier run on the same batch) are kept.
        """
        self.n = len(images)

    def __call__(self, images: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss ``(b,)`` to minimise and success mask ``(b,)`` bool.

        Parameters
        ----------
        images : Tensor of shape (b, 3, H, W)
            Current images of the active samples, float in [0, 1].
        index : Tensor of shape (b,), int64
            Which prepared samples they are.
        """
        raise NotImplementedError

    def score(self, images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """A per-sample figure for reports (e.g. the recogniser distance)."""
        with torch.no_grad():
            loss, _ = self(images, index)
        return loss


def _jittered(landmarks: torch.Tensor, jitter, generator: torch.Generator) -> torch.Tensor:
    # Expectation over small landmark errors: the invader's own detector will
    # not put the landmarks exactly where ours did, so the perturbation must
    # survive a slightly different alignment (shift, scale, rotation).
    j = torch.as_tensor(jitter, dtype=landmarks.dtype, device=landmarks.device).reshape(-1, 1, 1)
    u = torch.rand(len(landmarks), 6, 2, generator=generator).to(landmarks) * 2 - 1
    return landmarks + u[:, :1] * j + u[:, 1:] * (j / 2)


def _directions(cached: Optional[torch.Tensor], n: int, dim: int, seed: int) -> torch.Tensor:
    """``cached`` if it has ``n`` rows, else ``n`` fixed pseudo-random unit directions ``(n, dim)`` (CPU)."""
    if cached is not None and len(cached) == n:
        return cached
    u = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    return torch.nn.functional.normalize(u, dim=1)


def _kick(
    emb: torch.Tensor, ref: torch.Tensor, d: torch.Tensor, target: float | torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """Loss ``(b,)`` that moves embeddings still on their original along ``u``, zero elsewhere.

    The original is a minimum of any distance, so its gradient is zero there:
    while an embedding still sits (almost) on its original, push it along a
    fixed pseudo-random direction to break the symmetry.
    """
    # Computed for every face rather than after a check for stuck ones: the
    # check would make the host wait for the GPU on every iteration.
    stuck = (d.detach() < 1e-3 * target).float()
    return -stuck * ((emb - ref) * u.to(emb)).sum(dim=1)


class _EmbeddingObjective(Objective):
    """Shared plumbing of the open-set objectives (a recogniser plus landmarks)."""

    def __init__(
        self,
        recognizer: nn.Module,
        landmarks: torch.Tensor,
        *,
        margin: float | torch.Tensor,
        threshold: Optional[float],
        weights: Optional[torch.Tensor],
        jitter: float,
        seed: int = 0,
        transform: Optional[nn.Module] = None,
        transform_margin: Optional[float] = None,
    ):
        check_shape(landmarks, ["B", 5, 2], "landmarks")
        self.recognizer = recognizer
        self.landmarks = landmarks
        self.margin = margin if torch.is_tensor(margin) else float(margin)
        cfg = getattr(recognizer, "cfg", None)
        if threshold is None:
            if cfg is None:
                raise VdeidError("the recognizer has no cfg.threshold; pass threshold=")
            threshold = cfg.threshold
        self.threshold = float(threshold)
        self.weights = weights
        self.seed = int(seed)
        self._generator = torch.Generator().manual_seed(self.seed)
        self.transform = transform
        self.transform_margin = transform_margin
        if torch.is_tensor(jitter):
            self.jitter = jitter if bool((jitter > 0).any()) else None
        else:
            self.jitter = float(jitter) if jitter and jitter > 0 else None

    def modules(self) -> list[nn.Module]:
        return [self.recognizer]

    def embed(self, images: torch.Tensor, index: torch.Tensor, *, jitter: bool = False) -> torch.Tensor:
        return self.recognizer(*self._inputs(images, index, jitter=jitter))

    def _inputs(
        self, images: torch.Tensor, index: torch.Tensor, *, jitter: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The recogniser's images and landmarks: with ``jitter`` (and gradients on), one random draw."""
        lm = self.landmarks[index].to(images)
        if jitter and torch.is_grad_enabled():
            if self.jitter is not None:
                j = self.jitter if not torch.is_tensor(self.jitter) else self.jitter[index.to(self.jitter.device)]
                lm = _jittered(lm, j, self._generator)
            if self.transform is not None:
                images = self.transform(images, generator=self._generator)
        return images, lm

    def _confirm(self, images: torch.Tensor, index: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
        """Success judged on the unjittered landmarks (what verification will see).

        With jitter the loss is a random draw; a face that clears the target
        under one draw is re-checked without jitter (forward only, and only
        for those faces).
        """
        random = self.jitter is not None or self.transform is not None
        if not random or not torch.is_grad_enabled() or not bool(hit.any()):
            return hit
        dodge = isinstance(self, DodgeObjective)
        with torch.no_grad():
            rows = hit.nonzero()[:, 0]
            x = images.detach()[rows]
            d = self.distances(x, index[rows])
            target = self._target(index[rows])
            good = d > target if dodge else d < target
            if self.transform is not None and self.transform_margin is not None:
                # Also clear the threshold (plus transform_margin) after the
                # fixed compression proxy, so the result survives encoding.
                xt = self.transform(x)
                lm = self.landmarks[index[rows]].to(x)
                if dodge:
                    emb, views = self._embed(xt, lm, index[rows])
                    dp = self._all_distances(emb, index[rows]).min(dim=0).values
                    dp, _ = self._with_views(views, index[rows], dp)
                    good &= dp > self.threshold + self.transform_margin
                else:
                    emb = self.recognizer(xt, lm)
                    dp = self.distance(emb, self.donors[index[rows]].to(emb))
                    good &= dp < self.threshold - self.transform_margin
        ok = hit.clone()
        ok[rows] = good
        return ok

    def _target(self, index: torch.Tensor) -> float | torch.Tensor:
        """The target distance of the faces ``index``: a float, or ``(b,)`` with per-face margins."""
        target = self.target
        return target[index.to(target.device)] if torch.is_tensor(target) else target

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if hasattr(self.recognizer, "distance"):
            return self.recognizer.distance(a, b)
        return (a - b).norm(dim=-1)

    def _weight(self, loss: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        # Per-sample loss scale (e.g. larger crops spread the same chip-space
        # gradient over more pixels, see vdeid.engine).
        return loss if self.weights is None else loss * self.weights[index].to(loss)


class DodgeObjective(_EmbeddingObjective):
    """Push each face away from its own original embedding (open-set dodging).

    loss = ``max(target - d, 0)`` with ``d`` the recogniser distance between
    the current and the original embedding and ``target = threshold + margin``;
    done where ``d > target``. The hinge stops a satisfied face (or a
    satisfied member of an ensemble) from pulling further.

    With ``others`` (further embeddings of the same person, e.g. of the
    mirrored face) the face has to leave each of them too: the loss sums the
    hinges and ``d`` is the smallest of the distances. Leaving one photo's
    embedding is not leaving the person: the cheapest way away from a single
    embedding can follow the person's own variation (pose, lighting), which
    an invader's gallery of other photos still recognises.

    Parameters
    ----------
    recognizer : Recognizer
        ``forward(crops (B, 3, H, W) [0, 1], landmarks (B, 5, 2)) -> (B, D)``
        with ``cfg.threshold`` and ``distance(a, b)``.
    landmarks : Tensor of shape (B, 5, 2)
        Five landmarks of each sample, ``(x, y)`` in image pixels.
    margin : float or Tensor of shape (B,), optional
        Distance beyond the threshold required, for all faces or per face.
        (Default: 0.1)
    threshold : float, optional
        Same-person distance; ``recognizer.cfg.threshold`` when None.
    reference : Tensor of shape (B, D), optional
        Original embeddings; computed from the clean images by
        :meth:`prepare` when None.
    others : Tensor of shape (B, K, D), optional
        Further embeddings each face has to leave as well. (Default: None)
    weights : Tensor of shape (B,), optional
        Per-sample loss scale. (Default: 1)
    jitter : float or Tensor of shape (B,), optional
        Landmark jitter in pixels (per sample when a tensor) applied while
        gradients are taken: expectation over the alignment errors of the
        invader's own landmark detector. (Default: 0)
    seed : int, optional
        Seed of the landmark jitter, of the transform's draws and of the
        per-sample direction that moves a face off its own embedding at the
        start, where the distance has no gradient. (Default: 0)
    transform : nn.Module, optional
        Random image transform applied while gradients are taken
        (expectation over transformation), e.g.
        :class:`~vdeid.attacks.transforms.CompressionProxy`; called as
        ``transform(images, generator=g)`` for a draw and
        ``transform(images)`` for its fixed version.
    transform_margin : float, optional
        When given, a face is done only if the fixed transform of it also
        clears ``threshold + transform_margin``. (Default: None)
    views : tuple of Tensor, optional
        ``(owner (N,), boxes (N, 4))``: further alignments of some faces,
        given by the start boxes of the recogniser's own landmark step (from
        :meth:`~vdeid.recognizers.dlib_resnet.DlibResNet.alignment_views`),
        embedded with ``recognizer.embed_views(crops, boxes)`` (the
        originals) and, with the faces themselves, by
        ``recognizer.embed_with_views(crops, landmarks, owner, boxes)``.
        A face has to leave its own original under each of its views too:
        the loss adds their hinges and ``d`` is the smallest distance.
        (Default: None)
    """

    def __init__(
        self,
        recognizer: nn.Module,
        landmarks: torch.Tensor,
        *,
        margin: float | torch.Tensor = 0.1,
        threshold: Optional[float] = None,
        reference: Optional[torch.Tensor] = None,
        weights: Optional[torch.Tensor] = None,
        jitter: float = 0.0,
        seed: int = 0,
        transform: Optional[nn.Module] = None,
        transform_margin: Optional[float] = None,
        others: Optional[torch.Tensor] = None,
        views: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
    ):
        super().__init__(
            recognizer,
            landmarks,
            margin=margin,
            threshold=threshold,
            weights=weights,
            jitter=jitter,
            seed=seed,
            transform=transform,
            transform_margin=transform_margin,
        )
        if others is not None:
            check_shape(others, [landmarks.shape[0], "K", "D"], "others")
        if views is not None:
            check_shape(views[1], [len(views[0]), 4], "view boxes")
            views = None if len(views[0]) == 0 else views
        self.reference = reference
        self.others = others
        self.views = views
        self.view_reference: Optional[torch.Tensor] = None
        self._u: Optional[torch.Tensor] = None
        self._view_u: Optional[torch.Tensor] = None

    @property
    def target(self) -> float | torch.Tensor:
        return self.threshold + self.margin

    def prepare(self, images: torch.Tensor) -> None:
        with torch.no_grad():
            if self.reference is None or len(self.reference) != len(images):
                self.reference = self.embed(images, torch.arange(len(images), device=images.device))
            if self.views is not None:
                owner, boxes = self.views
                self.view_reference = self.recognizer.embed_views(images[owner.to(images.device)], boxes)
        self.n = len(images)

    def distances(self, images: torch.Tensor, index: torch.Tensor, *, jitter: bool = False) -> torch.Tensor:
        """Distance ``(b,)`` of the current embeddings to the nearest of the original and ``others``, over all views."""
        x, lm = self._inputs(images, index, jitter=jitter)
        emb, views = self._embed(x, lm, index)
        return self._with_views(views, index, self._all_distances(emb, index).min(dim=0).values)[0]

    def _embed(
        self, images: torch.Tensor, landmarks: torch.Tensor, index: torch.Tensor
    ) -> tuple[torch.Tensor, Optional[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
        """Embeddings ``(b, D)`` of the faces ``index`` and, with views, ``(local, rows, embeddings)`` of theirs.

        ``rows`` are the active views (rows of ``self.views``), ``local`` their
        faces' positions in the batch. One shape predictor pass serves both.
        """
        if self.views is None:
            return self.recognizer(images, landmarks), None
        owner, boxes = self.views
        # Position of each batch face among the active ``index`` (-1: inactive).
        where = torch.full((self.n,), -1, dtype=torch.long)
        where[index.cpu()] = torch.arange(len(index))
        local = where[owner]
        rows = (local >= 0).nonzero()[:, 0]
        if len(rows) == 0:
            return self.recognizer(images, landmarks), None
        local = local[rows].to(images.device)
        emb, view_emb = self.recognizer.embed_with_views(images, landmarks, local, boxes[rows])
        return emb, (local, rows, view_emb)

    def _with_views(
        self, views: Optional[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], index: torch.Tensor, d: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``d`` (b,) lowered to each face's closest view, and the views' hinge losses summed per face (b,)."""
        hinge = torch.zeros_like(d)
        if views is None:
            return d, hinge
        local, rows, emb = views
        ref = self.view_reference[rows.to(emb.device)].to(emb)
        dv = self.distance(emb, ref)
        target = self._target(self.views[0][rows])
        view_loss = (target - dv).clamp(min=0)
        if emb.requires_grad:
            # A view that sits on its own original has no gradient either
            # (only float noise, as on CUDA, would move it): kick it too.
            self._view_u = _directions(self._view_u, len(self.views[0]), emb.shape[1], self.seed + 1)
            view_loss = view_loss + _kick(emb, ref, dv, target, self._view_u[rows])
        hinge = hinge.index_add(0, local, view_loss)
        return d.scatter_reduce(0, local, dv if d.requires_grad else dv.detach(), "amin"), hinge

    def _all_distances(self, emb: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Distances ``(1 + K, b)`` of embeddings ``(b, D)`` to the original, then to each of ``others``."""
        out = [self.distance(emb, self.reference[index].to(emb))]
        if self.others is not None:
            others = self.others[index.to(self.others.device)].to(emb)
            out += [self.distance(emb, others[:, k]) for k in range(others.shape[1])]
        return torch.stack(out)

    def __call__(self, images, index):
        x, lm = self._inputs(images, index, jitter=True)
        emb, views = self._embed(x, lm, index)
        ref = self.reference[index].to(emb)
        ds = self._all_distances(emb, index)
        d = ds[0]
        nearest, hinge = self._with_views(views, index, ds.detach().min(dim=0).values)
        target = self._target(index)
        loss = (target - ds).clamp(min=0).sum(dim=0) + hinge
        self._u = _directions(self._u, len(self.reference), self.reference.shape[1], self.seed)
        loss = loss + _kick(emb, ref, d, target, self._u[index.cpu()])
        return self._weight(loss, index), self._confirm(images, index, nearest > target)

    def score(self, images, index):
        with torch.no_grad():
            return self.distances(images, index)


class ImpersonateObjective(_EmbeddingObjective):
    """Pull each face towards a donor identity's embedding (open-set impersonation).

    loss = ``max(d - (threshold - margin), 0)`` with ``d`` the distance to the
    donor embedding; done where ``d < threshold - margin``.

    Parameters
    ----------
    recognizer : Recognizer
        As for :class:`DodgeObjective`.
    landmarks : Tensor of shape (B, 5, 2)
        Five landmarks per sample in image pixels.
    donors : Tensor of shape (B, D)
        Embedding each sample should be mistaken for.
    margin, threshold, weights, jitter, seed
        As for :class:`DodgeObjective`.
    """

    def __init__(
        self,
        recognizer: nn.Module,
        landmarks: torch.Tensor,
        donors: torch.Tensor,
        *,
        margin: float | torch.Tensor = 0.1,
        threshold: Optional[float] = None,
        weights: Optional[torch.Tensor] = None,
        jitter: float = 0.0,
        seed: int = 0,
        transform: Optional[nn.Module] = None,
        transform_margin: Optional[float] = None,
    ):
        super().__init__(
            recognizer,
            landmarks,
            margin=margin,
            threshold=threshold,
            weights=weights,
            jitter=jitter,
            seed=seed,
            transform=transform,
            transform_margin=transform_margin,
        )
        check_shape(donors, [len(landmarks), "D"], "donors")
        self.donors = donors

    @property
    def target(self) -> float | torch.Tensor:
        return self.threshold - self.margin

    def distances(self, images, index, *, jitter: bool = False):
        emb = self.embed(images, index, jitter=jitter)
        return self.distance(emb, self.donors[index].to(emb))

    def __call__(self, images, index):
        d = self.distances(images, index, jitter=True)
        target = self._target(index)
        loss = (d - target).clamp(min=0)
        return self._weight(loss, index), self._confirm(images, index, d.detach() < target)

    def score(self, images, index):
        with torch.no_grad():
            return self.distances(images, index)


def _logits(model: nn.Module, images: torch.Tensor, landmarks: Optional[torch.Tensor], index: torch.Tensor):
    if landmarks is None:
        return model(images)
    return model(images, landmarks[index].to(images))


class CrossEntropyObjective(Objective):
    """Closed-set cross-entropy over a classifier or gallery head.

    ``untargeted``: loss = ``-CE(logits, y_true)`` (BIM ascends the true
    class' loss), done where ``argmax != y_true``. ``targeted``: loss =
    ``CE(logits, y_target)``, done where ``argmax == y_target``.
    ``least_likely``: as ``targeted`` with ``y_target`` the class the clean
    image scores lowest (ILLC), chosen by :meth:`prepare`.

    Parameters
    ----------
    model : nn.Module
        ``model(images)`` (or ``model(images, landmarks)`` when ``landmarks``
        is given) returning logits ``(B, C)``.
    labels : Tensor of shape (B,), int64, optional
        True classes (``untargeted``) or targets (``targeted``). For
        ``untargeted`` they default to the clean prediction.
    mode : {"untargeted", "targeted", "least_likely"}
        See above. (Default: "untargeted")
    landmarks : Tensor of shape (B, 5, 2), optional
        Passed to the model for heads that align their own chips.
    confidence : float, optional
        Logit margin required beyond a mere argmax change, which makes the
        result survive rounding and compression. (Default: 0)
    """

    def __init__(
        self,
        model: nn.Module,
        labels: Optional[torch.Tensor] = None,
        *,
        mode: Literal["untargeted", "targeted", "least_likely"] = "untargeted",
        landmarks: Optional[torch.Tensor] = None,
        confidence: float = 0.0,
    ):
        if mode not in ("untargeted", "targeted", "least_likely"):
            raise VdeidError(f"unknown mode {mode!r}; choose untargeted, targeted or least_likely")
        if mode == "targeted" and labels is None:
            raise VdeidError("a targeted objective needs labels= (the target classes)")
        self.model = model
        self.labels = labels
        self.mode = mode
        self.landmarks = landmarks
        self.confidence = float(confidence)

    def modules(self):
        return [self.model]

    def prepare(self, images):
        self.n = len(images)
        if self.mode == "targeted" and self.labels is not None:
            return
        if self.mode == "untargeted" and self.labels is not None:
            return
        with torch.no_grad():
            logits = _logits(self.model, images, self.landmarks, torch.arange(len(images), device=images.device))
        # argmin for ILLC; argmax (the clean prediction) as the true class otherwise.
        self.labels = logits.argmin(dim=1) if self.mode == "least_likely" else logits.argmax(dim=1)

    def __call__(self, images, index):
        logits = _logits(self.model, images, self.landmarks, index)
        y = self.labels[index].to(logits.device)
        ce = F.cross_entropy(logits, y, reduction="none")
        picked = logits.gather(1, y[:, None])[:, 0]
        others = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
        if self.mode == "untargeted":
            return -ce, (others - picked).detach() > self.confidence
        return ce, (picked - others).detach() > self.confidence


class KAnonymityObjective(Objective):
    """The true identity ends up indistinguishable among ``k`` identities.

    Mygdalis, Tefas and Pitas's k-anonymity-inspired attack asks that "the
    maximum probability of retrieving the real person identity must be less
    than 1/k, in every possible face classifier output ranking position".
    This loss reaches it by making the classifier's posterior uniform over an
    anonymity set ``S``: the true class plus the ``k - 1`` other classes the
    clean image scores highest (the cheapest companions). The loss is the
    cross-entropy between the uniform distribution on ``S`` and the
    posterior ``p``:

    .. math:: \\ell = -\\frac{1}{k} \\sum_{c \\in S} \\log p_c

    minimised when ``p`` is uniform on ``S`` and 0 elsewhere. With the
    members of ``S`` tied, the true identity's rank inside the top ``k`` is
    arbitrary, so an observer picking any rank finds it with probability at
    most ``1/k``.

    A sample is done when ``p_true <= 1/k`` and every member of ``S`` is
    within ``tolerance`` × ``max_S p`` of the largest, i.e. the true class is
    not separable from its ``k - 1`` companions (it is therefore not the
    unique top class, and the ``k`` members hold the top ``k`` ranks in an
    order the tolerance leaves to chance).

    Parameters
    ----------
    model : nn.Module
        Returns logits ``(B, C)`` with ``C >= k``.
    labels : Tensor of shape (B,), int64, optional
        True classes; the clean prediction when None.
    k : int, optional
        Anonymity set size, at least 2. (Default: 5)
    tolerance : float, optional
        Relative spread allowed inside ``S``. (Default: 0.25)
    landmarks : Tensor of shape (B, 5, 2), optional
        Passed to the model for heads that align their own chips.
    """

    def __init__(
        self,
        model: nn.Module,
        labels: Optional[torch.Tensor] = None,
        *,
        k: int = 5,
        tolerance: float = 0.25,
        landmarks: Optional[torch.Tensor] = None,
    ):
        if k < 2:
            raise VdeidError(f"k-anonymity needs k >= 2, got {k}")
        self.model = model
        self.labels = labels
        self.k = int(k)
        self.tolerance = float(tolerance)
        self.landmarks = landmarks
        self.sets: Optional[torch.Tensor] = None

    def modules(self):
        return [self.model]

    def prepare(self, images):
        self.n = len(images)
        if self.sets is not None and len(self.sets) == len(images):
            return
        with torch.no_grad():
            logits = _logits(self.model, images, self.landmarks, torch.arange(len(images), device=images.device))
        if logits.shape[1] < self.k:
            raise VdeidError(f"k-anonymity with k={self.k} needs at least {self.k} classes, the head has {logits.shape[1]}")
        if self.labels is None:
            self.labels = logits.argmax(dim=1)
        y = self.labels.to(logits.device)
        companions = logits.scatter(1, y[:, None], float("-inf")).topk(self.k - 1, dim=1).indices
        self.sets = torch.cat([y[:, None], companions], dim=1)

    def __call__(self, images, index):
        logits = _logits(self.model, images, self.landmarks, index)
        logp = logits.log_softmax(dim=1)
        s = self.sets[index].to(logits.device)
        loss = -logp.gather(1, s).mean(dim=1)
        with torch.no_grad():
            p = logp.exp()
            ps = p.gather(1, s)
            tied = ps.amin(dim=1) >= (1 - self.tolerance) * ps.amax(dim=1)
            done = tied & (ps[:, 0] <= 1.0 / self.k + 1e-6)
        return loss, done


class EnsembleObjective(Objective):
    """Several objectives (e.g. recognisers) at once; done only when all are.

    loss = sum of the members' losses (optionally weighted).

    Parameters
    ----------
    members : sequence of Objective
        Prepared on the same images and indexed the same way.
    weights : sequence of float, optional
        One per member. (Default: all 1)
    """

    def __init__(self, members: Sequence[Objective], *, weights: Optional[Sequence[float]] = None):
        if not members:
            raise VdeidError("an ensemble needs at least one objective")
        self.members = list(members)
        self.weights = [1.0] * len(self.members) if weights is None else [float(w) for w in weights]

    def modules(self):
        return [m for obj in self.members for m in obj.modules()]

    def prepare(self, images):
        for obj in self.members:
            obj.prepare(images)
        self.n = len(images)

    def __call__(self, images, index):
        total, done = None, None
        for w, obj in zip(self.weights, self.members):
            loss, ok = obj(images, index)
            total = w * loss if total is None else total + w * loss
            done = ok if done is None else done & ok
        return total, done

    def score(self, images, index):
        # The weakest member decides whether a face is protected.
        return torch.stack([obj.score(images, index) for obj in self.members], dim=0).amin(dim=0)
