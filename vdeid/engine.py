"""The adversarial protection method: P-FGVM (and the baselines) on video faces.

:class:`AdversarialMethod` implements :class:`~vdeid.methods.base.Method` for
every attack of :mod:`vdeid.attacks` (registered as ``pfgvm``, ``ifgvm``,
``ifgsm``, ``bim`` and ``illc``). For each face of each frame it:

1. cuts a *context crop* of the frame around the face (the box grown by
   :data:`CONTEXT` on each side, so the recogniser's whole chip lies inside)
   and translates the landmarks into it;
2. optimises a perturbation **in the frame's own pixels** of that crop,
   restricted to the feathered ellipse of the box grown by
   ``DetectConfig.box_margin`` (:mod:`vdeid.methods.mask`; with
   ``AttackConfig.mask_views``, also those of its alignment views); the recogniser
   aligns the crop itself (differentiably), so what is written back is exactly
   what was optimised, with no resampling;
3. judges success on the pixels as they will be written: straight-through
   rounding to 8-bit codes (10-bit for uint16 frames) inside the loop, a
   verification pass on the composited frames and, in video, a final one on
   the chunk as the output's own encoder and decoder return it (an in-memory
   round trip, :mod:`vdeid.io.round_trip`); a face the encoder pushed back
   under its target continues, aiming past the distance it has on the
   written frames by what it fell short, with ``AttackConfig.encoder_reserve``
   iterations more if it had spent its budget;
4. fails closed: a face that misses its target within ``max_iter`` iterations
   (or has no landmarks to align with) gets the fallback method
   (``AttackConfig.fallback``, blur by default, over the box grown by
   ``AttackConfig.fallback_margin``) and its
   :class:`~vdeid.methods.base.FaceOutcome` says so; a protected face whose
   crop a neighbour's fallback changed is judged again; if it no longer
   passes it is attacked again around the fallback's pixels, with the budget
   it has left, and falls back too if that does not protect it;
5. keeps a track's look steady: a run of at most ``AttackConfig.steady_gap``
   protected faces between two fallback faces of the same track gets the
   fallback too, so a blurred face does not flash sharp for a frame or two.

Batching and warm starts
------------------------
Crops of many faces (from many frames and tracks) go through the recogniser
in one forward pass: crops are bucketed by size and zero-padded to the
largest of their bucket (padding lies outside the crop, where the chip
extraction sees black anyway, exactly as at a frame border). A face that
reaches its target leaves the batch.

Consecutive frames of a track look alike, so a face's perturbation is a good
starting point for the next frame's. Warm starts and batching across frames
pull in opposite directions, so each chunk is solved in *waves*, each wave
batching every face whose starting point is known:

- ``warm_order="sequential"`` (default): wave ``k`` holds every track's
  ``k``-th appearance, started from its ``k-1``-th (the previous chunk's last
  perturbation for ``k = 0``). One wave per frame; batches span tracks.
- ``warm_order="bisect"``: wave 0 solves a track's first appearance, wave 1
  the middle one (from the first), wave 2 the quarter points, and so on, each
  from the nearest solved appearance before it: ``ceil(log2 T) + 1`` waves of
  growing size for a chunk of T frames, for accelerators that want large
  batches. Starts come from frames up to T/2 away, so faces need more
  iterations (measured in ``docs/attacks.md``).

The starting perturbation is moved onto the new face with the similarity
transform between the two faces' landmarks, by whole pixels when that
transform is nearly a translation (:mod:`vdeid.warm_start`); only the
*start* is resampled, the result is optimised in the new frame's own pixels.

Faces without track ids (``track_ids == -1``) are linked to the previous
frame's faces by box overlap (IoU), so warm starts work before tracking too.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .attacks import (
    DodgeObjective,
    EnsembleObjective,
    ImpersonateObjective,
    Objective,
    create_attack,
    kurakin_steps,
)
from .attacks.base import Attack
from .attacks.transforms import CompressionProxy
from .config import AttackConfig, Config, resolve_device
from .errors import VdeidError
from .faces import Faces, box_iou, expand_boxes
from .imageops import from_float, to_float, to_uint8
from .methods.base import FaceOutcome, Method
from .methods.mask import Region, box_region, ellipse_mask_in_region
from .methods.registry import create_fallback, register_method
from .warm_start import move_points, transfer_perturbation

logger = logging.getLogger(__name__)

__all__ = ["AdversarialMethod", "ATTACK_METHODS", "CONTEXT", "protect_still"]

#: Context crop around a face: its box grown by this fraction of its size on
#: every side. dlib's chip (padding 0.25) spans about 1.2 box widths, so 0.5
#: keeps the whole chip, rotated, inside the crop.
CONTEXT = 0.5

#: Attacks offered as protection methods, with a one-line description.
ATTACK_METHODS = {
    "pfgvm": "P-FGVM adversarial perturbation (ICIP 2019), penalised towards the original",
    "ifgvm": "I-FGVM adversarial perturbation, L-inf budget AttackConfig.eps",
    "ifgsm": "I-FGSM adversarial perturbation (sign steps), L-inf budget AttackConfig.eps",
    "bim": "BIM (Kurakin et al.), untargeted sign steps, eps on the 0-255 scale",
    "illc": "ILLC (Kurakin et al.): impersonate the least-similar face of the chunk",
}

# Largest padded crop side batched together with smaller ones (pixels).
_BUCKET_RATIO = 1.5

#: A warm start begins from the neighbour's perturbation scaled by this
#: factor. The neighbour stopped just past its target, so an exact copy
#: lands on either side of the target about half the time; a little extra
#: lets most faces pass at the start, with no iteration. The extra is taken
#: off what is handed on to the next frame, so it does not compound.
WARM_OVERSHOOT = 1.1

# Distance slack of the final verification (float noise between batch sizes).
_VERIFY_TOLERANCE = 1e-3

#: A face the encoder pushed back continues towards its distance on the
#: written frames plus what it fell short plus this much: the larger
#: perturbation that follows loses a little more to the encoder too.
ENCODER_SLACK = 0.03


@dataclass
class _Job:
    """One face of one frame, from crop to outcome."""

    frame: int
    index: int  # position in faces[frame]
    key: tuple  # track key: ("t", id) or ("p", n)
    track_id: int
    box: np.ndarray  # (4,) expanded box (perturbation ellipse)
    context: Region
    landmarks: np.ndarray  # (5, 2) in frame pixels
    x: Optional[torch.Tensor] = None  # (3, h, w) original context crop in [0, 1]
    mask: Optional[torch.Tensor] = None  # (1, h, w) ellipse in [0, 1]
    init: Optional[torch.Tensor] = None  # (3, h, w) warm start (adv, not delta)
    adv: Optional[torch.Tensor] = None  # (3, h, w) free variable after the attack
    shipped: Optional[torch.Tensor] = None  # (3, h, w) composed, quantised crop
    references: list = field(default_factory=list)  # per recogniser (D,)
    mirrored: list = field(default_factory=list)  # per recogniser (D,), of the mirrored face
    donor: Optional[list] = None  # per recogniser (D,), impersonation target
    iterations: int = 0
    extra: int = 0  # iterations granted beyond max_iter (AttackConfig.encoder_reserve)
    reached: bool = False
    distance: Optional[float] = None
    margin: float = 0.0  # distance beyond the threshold the attack aims for
    shortfall: float = 0.0  # how far the last verification found it from passing (<= 0: passed)
    warm: bool = False
    level: int = 0
    parent: Optional[int] = None  # job index this one's warm start comes from
    attackable: bool = True
    raw_box: Optional[np.ndarray] = None  # (4,) detector box, for bridging landmarks
    bounds: Optional[np.ndarray] = None  # (4,) the frame's left, top, right, bottom in crop pixels
    moved: Optional[torch.Tensor] = None  # (3, h, w) neighbour's perturbation moved here, unscaled
    base: Optional[torch.Tensor] = None  # (3, h, w) perturbation handed on to warm starts
    detected: Optional[torch.Tensor] = None  # (K, 4) start boxes from dlib's CNN detector, crop pixels
    views: Optional[tuple] = None  # (x, {recogniser index: (k, 4) view start boxes}) as found on that x
    hardened: bool = False  # the fallback's pixels, attacked again, reached the target
    steadied: bool = False  # protected, but given the fallback between fallbacks of its track


@dataclass
class _TrackState:
    """What a track leaves for the next chunk's warm start."""

    delta: torch.Tensor  # (3, h, w) free perturbation in its context crop
    context: Region
    landmarks: np.ndarray
    box: np.ndarray  # raw (unexpanded) box, for IoU linking and landmark bridging
    reached: bool = True  # whether that face reached its target


class AdversarialMethod:
    """Protect faces with an adversarial attack against face recognisers.

    Parameters
    ----------
    config : Config
        ``attack`` (recognisers, objective, margin, budget, step sizes,
        fallback), ``detect.box_margin``, ``naive.feather`` and ``device``.
    attack : str, optional
        Attack name from :func:`vdeid.attacks.list_attacks` (``pfgvm``,
        ``ifgvm``, ``ifgsm``, ``bim``, ``illc``). (Default: "pfgvm")
    recognizers : list of Recognizer, optional
        Networks to fool (an ensemble when several); built from
        ``config.attack.recognizers`` on first use when None.
    fallback : Method, optional
        Method for faces the attack cannot protect; built from
        ``config.attack.fallback`` when None.
    round_trip : callable, optional
        The output's encoder and decoder, ``round_trip(frames) -> frames``
        (lists of ``(H, W, 3)`` arrays of the frames' dtype), e.g.
        :meth:`VideoSink.round_trip() <vdeid.io.video_sink.VideoSink.round_trip>`.
        When given, faces aim for ``margin + video_margin`` and, with
        ``encoder_check``, are judged against ``margin`` on what it returns.
        None for lossless output (photos). (Default: None)

    Attributes
    ----------
    name : str
        The attack name (what :class:`~vdeid.methods.base.FaceOutcome` reports).
    round_trip : callable or None
        As the parameter; may be set after construction.
    stats : dict
        Counters of the last :meth:`protect` call: ``waves``, ``batches``,
        ``forward_faces`` (face-forwards through the recognisers),
        ``rounds`` (extra verify-and-continue rounds), ``encoder_checks``
        (round trips through the encoder), ``encoder_short`` (faces that
        passed on the written frames but not after the first round trip),
        ``reserved`` (faces given ``AttackConfig.encoder_reserve``),
        ``attacked_again`` (protected faces a neighbour's fallback pushed
        back under the target, attacked again where the fallback left their
        pixels alone), ``undone_by_fallback`` (those of them, and of faces
        with no budget left, that still fell short and got the fallback too)
        and ``faces`` (per face: frame, index, whether it was warm-started,
        iterations, ``written``: whether it passed on the written frames,
        before the encoder check, ``again``: whether it was attacked again
        after a neighbour's fallback, ``undone``: whether a neighbour's
        fallback undid it, ``reached``: whether it was protected by the attack in
        the end, and ``distance`` and ``shortfall``: its smallest distance over
        references and views at its last judgement, in the first recogniser's
        units, and how far that judgement found it from passing, <= 0 where it
        passed; None and 0 for a face never attacked; ``steadied``: whether
        it was protected but got the fallback between fallback faces of its
        track, ``AttackConfig.steady_gap``; ``reserved``: whether it was given
        ``AttackConfig.encoder_reserve``), and ``steadied`` (how many).

    Notes
    -----
    The instance keeps per-track warm-start state between calls, so chunks
    must be passed in time order; call :meth:`reset` between videos.
    """

    def __init__(
        self,
        config: Optional[Config] = None,
        *,
        attack: str = "pfgvm",
        recognizers: Optional[list] = None,
        fallback: Optional[Method] = None,
        round_trip: Optional[Callable[[list[np.ndarray]], list[np.ndarray]]] = None,
    ):
        self.config = config or Config()
        self.cfg: AttackConfig = self.config.attack
        self.name = attack
        self.device = resolve_device(self.config.device)
        self._recognizers = recognizers
        self._fallback = fallback
        self._face_detector = None
        self.round_trip = round_trip
        self._tracks: dict[tuple, _TrackState] = {}
        self._fell_back: dict[tuple, bool] = {}  # whether each track's last face got the fallback
        self._last_keys: list[tuple] = []  # keys of the previous frame's faces
        self._last_boxes = np.zeros((0, 4), np.float32)
        self._next_pseudo = 0
        self.stats: dict = {}

    # -- public -----------------------------------------------------------------

    @property
    def recognizers(self) -> list:
        """The recognisers attacked (built on first use)."""
        if self._recognizers is None:
            from .recognizers import create_recognizers

            self._recognizers = create_recognizers(self.cfg.recognizers, self.device)
            if self.cfg.cuda_graphs:
                use_cuda_graphs(self._recognizers)
        return self._recognizers

    @property
    def fallback(self) -> Method:
        """The naive method used where the attack fails."""
        if self._fallback is None:
            if self.cfg.fallback in ATTACK_METHODS:
                raise VdeidError(
                    f"the fallback must be a naive method (blur, pixelate, mask...), not {self.cfg.fallback!r}"
                )
            self._fallback = create_fallback(self.config)
        return self._fallback

    @property
    def face_detector(self):
        """dlib's CNN face detector (vdeid's port), for ``detector_views`` (built on first use)."""
        if self._face_detector is None:
            from .detect.dlib_cnn import load_dlib_cnn_detector

            self._face_detector = load_dlib_cnn_detector(device=self.device)
        return self._face_detector

    def reset(self) -> None:
        """Forget warm-start state (call between unrelated videos)."""
        self._tracks.clear()
        self._fell_back.clear()
        self._last_keys = []
        self._last_boxes = np.zeros((0, 4), np.float32)

    def protect(
        self, frames: list[np.ndarray], faces: list[Faces]
    ) -> tuple[list[np.ndarray], list[FaceOutcome]]:
        """Protect every face of every frame.

        Parameters
        ----------
        frames : list of ndarray of shape (H, W, 3)
            Consecutive RGB frames, uint8 in [0, 255] or uint16 in
            [0, 65535]. Not modified.
        faces : list of Faces
            ``faces[i]`` are the faces of ``frames[i]``; landmarks are
            required for the attack (faces without get the fallback unless
            their track supplies landmarks).

        Returns
        -------
        protected : list of ndarray of shape (H, W, 3)
            New frames, same dtype; only pixels inside the faces' grown
            ellipses (with ``mask_views``, also those of their alignment
            views) differ from the input.
        outcomes : list of FaceOutcome
            One per face, in frame order then face order.
        """
        if len(frames) != len(faces):
            raise VdeidError(f"got {len(frames)} frames but {len(faces)} face lists")
        out = [np.array(f, copy=True) for f in frames]
        jobs = self._make_jobs(frames, faces)
        self.stats = {
            "waves": 0, "batches": 0, "forward_faces": 0, "rounds": 0, "alignment_views": 0,
            "encoder_checks": 0, "encoder_short": 0, "reserved": 0, "hardened": 0, "steadied": 0,
        }
        written: set = set()  # faces that passed on the written frames
        levels = self._levels(frames[0])
        if any(j.attackable for j in jobs):
            self._run(frames, jobs, levels)
            rounds = max(1, int(self.cfg.rounds))
            for r in range(rounds):
                out = [np.array(f, copy=True) for f in frames]
                self._compose(out, jobs)
                self._verify(out, jobs)
                # A face the loop judged done can still fail on the written
                # frame (overlapping faces, jittered judging): continue it
                # from where it stopped with the budget it has left.
                retry = [j for j in jobs if j.shipped is not None and not j.reached and self._left(j) > 0]
                if not retry or r == rounds - 1:
                    break
                self.stats["rounds"] += 1
                self._continue(out, retry, levels)
            written = {id(j) for j in jobs if j.reached}
            if self.round_trip is not None and self.cfg.encoder_check:
                out = self._check_encoded(frames, out, jobs, levels, written)
        self._steady(jobs)
        out, undone, again = self._fall_back(out, faces, jobs, levels)
        self.stats["undone_by_fallback"] = len(undone)
        self.stats["attacked_again"] = len(again)
        self._remember(jobs)
        self.stats["faces"] = [
            {
                "frame": j.frame, "face": j.index, "warm": j.warm, "iterations": j.iterations,
                "written": id(j) in written, "again": id(j) in again, "undone": id(j) in undone,
                "reached": j.reached, "hardened": j.hardened, "steadied": j.steadied, "reserved": j.extra > 0,
                "distance": j.distance, "shortfall": j.shortfall,
            }
            for j in jobs
        ]
        return out, [self._outcome(j, _fallback_reason(j, written, undone)) for j in jobs]

    def protect_still(self, image: np.ndarray, faces: Faces) -> tuple[np.ndarray, list[FaceOutcome]]:
        """Protect one photo: the same engine on a single frame, without warm-start state.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3)
            RGB, uint8 or uint16. Not modified.
        faces : Faces
            Its faces, with landmarks.

        Returns
        -------
        protected : ndarray of shape (H, W, 3)
            Same dtype as ``image``.
        outcomes : list of FaceOutcome
        """
        # Photos are written losslessly: no encoder round trip, no video margin.
        saved = (self._tracks, self._fell_back, self._last_keys, self._last_boxes, self.round_trip)
        self._tracks, self._fell_back, self._last_keys, self._last_boxes = {}, {}, [], np.zeros((0, 4), np.float32)
        self.round_trip = None
        try:
            frames, outcomes = self.protect([image], [faces])
        finally:
            self._tracks, self._fell_back, self._last_keys, self._last_boxes, self.round_trip = saved
        return frames[0], outcomes

    # -- building jobs ------------------------------------------------------------

    def _make_jobs(self, frames: list[np.ndarray], faces: list[Faces]) -> list[_Job]:
        jobs: list[_Job] = []
        margin = float(self.config.detect.box_margin)
        target = float(self.cfg.margin) + (float(self.cfg.video_margin) if self.round_trip is not None else 0.0)
        for t, (frame, fa) in enumerate(zip(frames, faces)):
            if frame.ndim != 3 or frame.shape[2] != 3:
                raise VdeidError(f"frame {t} must have shape (H, W, 3), got {frame.shape}")
            keys = self._link(fa)
            grown = expand_boxes(fa.boxes, margin)
            ctx_boxes = expand_boxes(fa.boxes, CONTEXT)
            for i in range(len(fa)):
                lm = np.asarray(fa.landmarks[i], np.float64)
                if not np.all(np.isfinite(lm)):
                    lm = self._bridge_landmarks(keys[i], fa.boxes[i], jobs)
                context = box_region(ctx_boxes[i], frame.shape[:2])
                # Even origin: the crop's 2x2 chroma blocks are the encoder's.
                context = context._replace(y0=context.y0 - context.y0 % 2, x0=context.x0 - context.x0 % 2)
                job = _Job(
                    frame=t,
                    index=i,
                    key=keys[i],
                    track_id=int(fa.track_ids[i]),
                    box=grown[i],
                    context=context,
                    landmarks=lm if lm is not None else np.full((5, 2), np.nan),
                    attackable=lm is not None and not context.empty and bool(np.all(np.isfinite(fa.boxes[i]))),
                    raw_box=np.asarray(fa.boxes[i], np.float32),
                    margin=target,
                    bounds=np.array([0, 0, frame.shape[1], frame.shape[0]]) - [context.x0, context.y0] * 2,
                )
                jobs.append(job)
        self._assign_waves(jobs)
        return jobs

    def _link(self, fa: Faces) -> list[tuple]:
        """Track keys for one frame's faces: their track ids, else IoU with the previous frame."""
        keys: list[Optional[tuple]] = [("t", int(tid)) if tid >= 0 else None for tid in fa.track_ids]
        if any(k is None for k in keys):
            iou = box_iou(fa.boxes, self._last_boxes)
            taken: set = set()
            for i in np.argsort(-iou.max(axis=1, initial=0.0)) if len(iou) else []:
                if keys[i] is not None:
                    continue
                for j in np.argsort(-iou[i]):
                    if iou[i, j] < 0.3:
                        break
                    if j not in taken and self._last_keys[j][0] == "p":
                        keys[i] = self._last_keys[j]
                        taken.add(j)
                        break
            for i, k in enumerate(keys):
                if k is None:
                    keys[i] = ("p", self._next_pseudo)
                    self._next_pseudo += 1
        self._last_keys = list(keys)
        self._last_boxes = np.asarray(fa.boxes, np.float32).reshape(-1, 4)
        return keys  # type: ignore[return-value]

    def _bridge_landmarks(self, key: tuple, box: np.ndarray, jobs: list[_Job]) -> Optional[np.ndarray]:
        """Landmarks for a face the detector did not see, moved from its track's last known ones."""
        prev = next((j for j in reversed(jobs) if j.key == key and j.attackable), None)
        if prev is not None:
            return move_points(prev.landmarks, prev.raw_box, box)
        state = self._tracks.get(key)
        if state is not None:
            return move_points(state.landmarks, state.box, box)
        return None

    def _assign_waves(self, jobs: list[_Job]) -> None:
        """Wave level and warm-start parent of every face (see the module docstring)."""
        by_track: dict[tuple, list[int]] = {}
        for n, job in enumerate(jobs):
            if job.attackable:
                by_track.setdefault(job.key, []).append(n)
        for members in by_track.values():
            if not self.cfg.warm_start:
                continue
            if self.cfg.warm_order == "sequential":
                for pos, n in enumerate(members[1:], start=1):
                    jobs[n].level = pos
                    jobs[n].parent = members[pos - 1]
                continue
            depth = math.ceil(math.log2(len(members))) if len(members) > 1 else 0
            for pos, n in enumerate(members):
                if pos == 0:
                    continue
                tz = (pos & -pos).bit_length() - 1
                jobs[n].level = depth - tz
                jobs[n].parent = members[pos - (1 << tz)]

    # -- attack ---------------------------------------------------------------------

    def _levels(self, frame: np.ndarray) -> Optional[int]:
        if frame.dtype == np.uint8:
            return 255
        if frame.dtype == np.uint16:
            return 1023  # 10-bit video: the codes the encoder will keep
        return None

    def _run(self, frames: list[np.ndarray], jobs: list[_Job], levels: Optional[int]) -> None:
        dev = self.device
        detector_views = self._wants_detector_views()
        todo = [j for j in jobs if j.attackable]
        for job in todo:
            frame = frames[job.frame]
            job.x = torch.from_numpy(np.ascontiguousarray(to_float(frame[job.context.slices]))).permute(2, 0, 1).to(dev)
            if detector_views:
                job.detected = self._detected_boxes(frame, job)
        feather = float(self.config.naive.feather)
        views = self._view_masks(todo, feather) if self.cfg.alignment_views and self.cfg.mask_views else {}
        for job in todo:
            m = ellipse_mask_in_region(job.box, job.context, feather=feather)
            if id(job) in views:
                m = np.maximum(m, views[id(job)])
            job.mask = torch.from_numpy(m)[None].to(dev)
        self._embed_references(todo)
        if self.name == "illc" or self.cfg.objective == "impersonate":
            self._choose_donors(todo)
        for level in sorted({j.level for j in todo}):
            wave = [j for j in todo if j.level == level]
            for job in wave:
                job.init = self._warm_init(job, jobs)
                job.warm = job.init is not None
            self.stats["waves"] += 1
            self._attack(wave, levels)

    def _wants_detector_views(self) -> bool:
        return (
            self.cfg.alignment_views
            and self.cfg.detector_views
            and any(hasattr(rec, "alignment_views") for rec in self.recognizers)
        )

    def _detected_boxes(self, frame: np.ndarray, job: _Job) -> torch.Tensor:
        """Start boxes ``(K, 4)``, crop pixels, where dlib's CNN face detector may box this face.

        Every box the detector finds around the face (centre inside its
        box) on the frame and, for a face under twice the detector's window,
        on the frame doubled (:meth:`~vdeid.detect.dlib_cnn.DlibCnnFaceDetector.detect_region`).
        Not the neighbouring windows, which the attacked pixels could tip the
        detector to: on the README sample they made most faces of frames
        22-37 miss their target (docs/attacks.md).
        """
        detector = self.face_detector
        image = to_uint8(frame)
        c = job.context
        side = float(np.max(job.raw_box[2:] - job.raw_box[:2]))
        found = []
        for upsample in (0, 1) if side < 2 * max(detector.window) else (0,):
            rects = detector.detect_region(image, (c.x0, c.y0, c.x1, c.y1), upsample=upsample)
            centre = (rects[:, :2] + rects[:, 2:]) / 2
            found.append(rects[np.all((centre >= job.raw_box[:2]) & (centre <= job.raw_box[2:]), axis=1)])
        origin = np.array([c.x0, c.y0] * 2, np.float64)
        return torch.from_numpy(np.concatenate(found) - origin)

    def _view_masks(self, jobs: list[_Job], feather: float) -> dict[int, np.ndarray]:
        """``(h, w)`` union of the ellipses of each face's alignment views over its context crop, by ``id(job)``."""
        # One call per size bucket, not per face: on a GPU the shape
        # predictor's small calls cost their launch overhead (docs/performance.md).
        masks: dict[int, np.ndarray] = {}
        margin = float(self.config.detect.box_margin)
        for batch in self._buckets(jobs):
            x, lm, _ = self._stack(batch)
            bounds = torch.as_tensor(np.stack([j.bounds for j in batch]))
            for r, rec in enumerate(self.recognizers):
                if not hasattr(rec, "alignment_views"):
                    continue
                owner, boxes = self._alignment_views(batch, x, lm, r)
                for b, box in zip(owner.tolist(), boxes.numpy()):
                    job = batch[b]
                    origin = np.array([job.context.x0, job.context.y0] * 2)
                    grown = expand_boxes((box + origin).astype(np.float32)[None], margin)[0]
                    m = ellipse_mask_in_region(grown, job.context, feather=feather)
                    masks[id(job)] = np.maximum(masks[id(job)], m) if id(job) in masks else m
        return masks

    def _embed_references(self, jobs: list[_Job]) -> None:
        """Original embeddings of every face, for every recogniser (no gradient).

        With ``AttackConfig.mirror`` also those of the mirrored face: a
        second view of the same person that the face has to leave as well.
        """
        for batch in self._buckets(jobs):
            x, lm, _ = self._stack(batch)
            if self.cfg.mirror:
                flipped, flipped_lm = _mirror(x, lm)
            with torch.no_grad():
                for rec in self.recognizers:
                    for job, e in zip(batch, rec(x, lm)):
                        job.references.append(e)
                    if self.cfg.mirror:
                        for job, e in zip(batch, rec(flipped, flipped_lm)):
                            job.mirrored.append(e)

    def _choose_donors(self, jobs: list[_Job]) -> None:
        """Impersonation targets: another track's face (ILLC: the least similar one)."""
        rec = self.recognizers[0]
        refs = torch.stack([j.references[0] for j in jobs])
        keys = [j.key for j in jobs]
        for n, job in enumerate(jobs):
            others = [m for m, k in enumerate(keys) if k != job.key]
            if not others:
                continue  # no other identity in the chunk: dodge instead
            d = rec.distance(refs[n : n + 1].expand(len(others), -1), refs[others])
            if self.name == "illc":
                pick = others[int(d.argmax())]
            else:
                far = [o for o, dist in zip(others, d.tolist()) if dist > rec.cfg.threshold]
                pick = min(far or others, key=lambda o: float(rec.distance(refs[n : n + 1], refs[o : o + 1])))
            job.donor = [jobs[pick].references[r] for r in range(len(self.recognizers))]

    def _warm_init(self, job: _Job, jobs: list[_Job]) -> Optional[torch.Tensor]:
        """Starting point moved from the parent appearance (this chunk) or the track's state."""
        if not self.cfg.warm_start:
            return None
        if job.parent is not None:
            src = jobs[job.parent]
            if src.adv is None or (not src.reached and not self.cfg.warm_from_failed):
                return None
            delta, ctx, lm = src.base, src.context, src.landmarks
        else:
            state = self._tracks.get(job.key)
            if state is None or (not state.reached and not self.cfg.warm_from_failed):
                return None
            delta, ctx, lm = state.delta.to(job.x.device), state.context, state.landmarks
        job.moved = transfer_perturbation(delta, ctx, lm, job.context, job.landmarks, job.x.shape[1:])
        return (job.x + WARM_OVERSHOOT * job.moved).clamp(0, 1)

    def _views(self, batch: list[_Job], x: torch.Tensor, lm: torch.Tensor) -> list[Optional[tuple]]:
        """Per recogniser, the further alignments ``(owner, boxes)`` of the faces in ``x``, or None."""
        out: list[Optional[tuple]] = []
        for r, rec in enumerate(self.recognizers):
            if not (self.cfg.alignment_views and hasattr(rec, "alignment_views")):
                out.append(None)
                continue
            owner, boxes = self._alignment_views(batch, x, lm, r)
            out.append((owner, boxes) if len(owner) else None)
        return out

    def _alignment_views(self, batch: list[_Job], x: torch.Tensor, lm: torch.Tensor, r: int) -> tuple:
        """Recogniser ``r``'s ``alignment_views`` of the faces ``x`` (their ``job.x``, stacked), found once per crop.

        The view masks, the attack and each verification all ask for the
        views of the same original crops; a face's views do not depend on
        the batch it is in (the stack's padding reads as the outside of the
        frame does).
        """
        known = [j.views[1].get(r) if j.views is not None and j.views[0] is j.x else None for j in batch]
        if any(k is None for k in known):
            bounds = torch.as_tensor(np.stack([j.bounds for j in batch]))
            owner, boxes = self.recognizers[r].alignment_views(x, lm, bounds, detected=[j.detected for j in batch])
            known = [boxes[owner == b] for b in range(len(batch))]
            for job, found in zip(batch, known):
                if job.views is None or job.views[0] is not job.x:
                    job.views = (job.x, {})
                job.views[1][r] = found
            return owner, boxes
        owner = torch.cat([torch.full((len(k),), b, dtype=torch.long) for b, k in enumerate(known)])
        return owner, torch.cat(known)

    def _objective(self, batch: list[_Job], lm: torch.Tensor, views: list[Optional[tuple]]) -> Objective:
        members: list[Objective] = []
        margins = [j.margin for j in batch]
        margin = margins[0] if len(set(margins)) == 1 else torch.tensor(margins, device=self.device)
        # Landmark jitter scales with the face: a fraction of its box side.
        sizes = torch.tensor([float(np.sqrt(np.prod(j.raw_box[2:] - j.raw_box[:2]))) for j in batch])
        jitter = (sizes * float(self.cfg.jitter)).to(self.device)
        robust = {}
        if self.cfg.compression:
            cm = self.cfg.compression_margin
            robust = {"transform": CompressionProxy(), "transform_margin": None if cm is None else float(cm)}
        for r, rec in enumerate(self.recognizers):
            ref = torch.stack([j.references[r] for j in batch])
            common = {"margin": margin, "jitter": jitter, "seed": self.cfg.seed, **robust}
            if batch[0].donor is not None:  # buckets never mix donors and dodgers
                donors = torch.stack([j.donor[r] for j in batch])
                members.append(ImpersonateObjective(rec, lm, donors, **common))
            # Impersonators must leave their own face too (the final check asks
            # it): a donor that lies near the original is reached without that.
            others = torch.stack([j.mirrored[r] for j in batch])[:, None] if self.cfg.mirror else None
            members.append(DodgeObjective(rec, lm, reference=ref, others=others, views=views[r], **common))
        return members[0] if len(members) == 1 else EnsembleObjective(members)

    def _make_attack(self, objective: Objective, steps: int, levels: Optional[int]) -> Attack:
        c = self.cfg
        common = {"steps": steps, "early_stop": True, "levels": levels}
        if self.name == "pfgvm":
            return create_attack("pfgvm", objective, alpha=c.alpha, lam=c.lam, calibrate=True, **common)
        if self.name == "ifgvm":
            return create_attack("ifgvm", objective, alpha=c.alpha, eps=c.eps, calibrate=True, **common)
        if self.name == "ifgsm":
            return create_attack("ifgsm", objective, eps=c.eps, alpha=1.0 / 255.0, **common)
        if self.name in ("bim", "illc"):
            eps255 = float(c.eps) * 255.0
            common["steps"] = min(steps, kurakin_steps(eps255))
            return create_attack(self.name, objective, eps=eps255, alpha=1.0, **common)
        raise VdeidError(f"unknown attack {self.name!r}; valid: {', '.join(ATTACK_METHODS)}")

    def _attack(self, wave: list[_Job], levels: Optional[int]) -> None:
        """Attack a set of faces in size buckets; each stops at its target or its budget."""
        for batch in self._buckets(wave):
            steps = int(self.cfg.max_iter) + max(j.extra for j in batch)
            x, lm, _ = self._stack(batch)
            mask = torch.zeros_like(x[:, :1])
            init = x.clone()
            for b, job in enumerate(batch):
                h, w = job.x.shape[1:]
                mask[b, :, :h, :w] = job.mask
                if job.init is not None:
                    init[b, :, :h, :w] = job.init
            budget = torch.tensor([self._left(j) for j in batch], device=self.device).clamp(min=0)
            views = self._views(batch, x, lm)
            attack = self._make_attack(self._objective(batch, lm, views), steps, levels)
            with attack_precision(self.cfg, self.device):
                result = attack(x, init=init, mask=mask, budget=budget)
            self.stats["batches"] += 1
            self.stats["alignment_views"] += sum(len(v[0]) for v in views if v is not None)
            self.stats["forward_faces"] += int(result.iterations.sum()) + len(batch)
            for b, job in enumerate(batch):
                h, w = job.x.shape[1:]
                job.adv = result.adv[b, :, :h, :w]
                job.shipped = result.images[b, :, :h, :w]
                job.iterations += int(result.iterations[b])
                job.reached = bool(result.done[b])
                job.base = self._handed_on(job)

    def _left(self, job: _Job) -> int:
        """Iterations a face has left: ``max_iter`` plus what it was granted, less what it spent."""
        return int(self.cfg.max_iter) + job.extra - job.iterations

    def _continue(self, out: list[np.ndarray], jobs: list[_Job], levels: Optional[int]) -> None:
        """Attack faces again from where they stopped, with the budget they have left."""
        for job in jobs:
            # Continue on the crop as written, so a neighbour's
            # perturbation inside this face's context is part of it.
            written = self._crop(out, job)
            job.x = torch.where(job.mask > 0, job.x, written)
            job.init = torch.where(job.mask > 0, job.adv, written)
        self._attack(jobs, levels)

    @staticmethod
    def _handed_on(job: _Job) -> torch.Tensor:
        """The perturbation a face hands on to its track's next appearance ``(3, h, w)``.

        A warm start began from ``WARM_OVERSHOOT`` times the moved
        perturbation; the overshoot is taken off again (whether or not the
        face needed iterations), or every frame that iterates would hand on
        10 % more than it received and the perturbation would grow along
        the track.
        """
        if job.moved is None:
            return job.adv - job.x
        if job.iterations == 0:
            return job.moved
        return job.adv - job.x - (WARM_OVERSHOOT - 1.0) * job.moved

    def _buckets(self, jobs: list[_Job]) -> list[list[_Job]]:
        """Batches of similar crop size, at most ``batch_size`` faces each."""
        # Faces with and without an impersonation donor need different
        # objectives, so they never share a batch.
        order = sorted(jobs, key=lambda j: (j.donor is not None, max(j.context.shape)))
        size = max(1, int(self.cfg.batch_size))
        out: list[list[_Job]] = []
        for job in order:
            last = out[-1] if out else None
            if (
                last is not None
                and len(last) < size
                and (last[0].donor is None) == (job.donor is None)
                and max(job.context.shape) <= _BUCKET_RATIO * max(last[0].context.shape)
            ):
                last.append(job)
            else:
                out.append([job])
        return out

    def _stack(
        self, batch: list[_Job], crops: Optional[list[torch.Tensor]] = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Zero-padded crops ``(B, 3, H, W)``, crop-pixel landmarks ``(B, 5, 2)``, validity ``(B, 3, H, W)``.

        ``crops`` replaces the jobs' original crops (e.g. the written pixels).
        """
        h = max(j.context.shape[0] for j in batch)
        w = max(j.context.shape[1] for j in batch)
        x = torch.zeros(len(batch), 3, h, w, device=self.device)
        valid = torch.zeros_like(x)
        lms = []
        for b, job in enumerate(batch):
            ch, cw = job.context.shape
            x[b, :, :ch, :cw] = job.x if crops is None else crops[b]
            valid[b, :, :ch, :cw] = 1
            lms.append(job.landmarks - np.array([job.context.x0, job.context.y0]))
        lm = torch.as_tensor(np.stack(lms), dtype=torch.float32, device=self.device)
        return x, lm, valid

    # -- compose, verify, fall back ------------------------------------------------

    def _compose(self, out: list[np.ndarray], jobs: list[_Job], since: Optional[dict] = None) -> None:
        """Add each job's perturbation to ``out`` inside its mask (in place).

        ``since`` maps a job's ``id`` to the crop it shipped before: only the
        change from that is added (``out`` already holds the old one).
        """
        for job in jobs:
            if job.shipped is None:
                continue
            frame = out[job.frame]
            sl = job.context.slices
            crop = frame[sl]
            current = to_float(crop)
            old = job.x if since is None else since[id(job)]
            delta = (job.shipped - old).permute(1, 2, 0).cpu().numpy()
            written = from_float(np.clip(current + delta, 0.0, 1.0), frame.dtype)
            inside = (job.mask[0] > 0).cpu().numpy()[..., None]
            np.copyto(crop, written, where=np.broadcast_to(inside, crop.shape))

    def _verify(self, out: list[np.ndarray], jobs: list[_Job], margin: Optional[float] = None) -> None:
        """Re-judge every attacked face on ``out``, the frames as written or as decoded (fail closed).

        A face counts as protected only if, on those pixels, every
        recogniser puts it beyond its threshold plus the margin from its own
        original and, with ``mirror``, from the mirrored original
        (impersonation: within threshold minus margin of the donor and beyond
        the threshold from its own original), under vdeid's alignment and,
        with ``alignment_views``, under each further alignment of the face.
        The margin is ``margin``, or each face's own target when None. Sets
        each face's ``reached``, ``distance`` and ``shortfall``.
        """
        attacked = [j for j in jobs if j.shipped is not None]
        for job, (shortfall, distance) in zip(attacked, self._judge(out, attacked, margin)):
            job.shortfall, job.reached, job.distance = shortfall, shortfall < 0, distance

    def _judge(
        self, out: list[np.ndarray], jobs: list[_Job], margin: Optional[float] = None
    ) -> list[tuple[float, float]]:
        """Per face of ``jobs``, in order: ``(shortfall, distance)`` on ``out`` (see :meth:`_verify`)."""
        judged: dict[int, tuple[float, float]] = {}
        for batch in self._buckets(jobs):
            # The loop stops a face as soon as it clears the target, so it sits
            # just past it; a batch of another size can move the distance by
            # float rounding. Tolerate that much (far below the margin).
            margins = [j.margin if margin is None else margin for j in batch]
            need = torch.tensor(margins, device=self.device) - _VERIFY_TOLERANCE
            x, lm, _ = self._stack(batch, [self._crop(out, j) for j in batch])
            short = torch.full((len(batch),), -float("inf"), device=self.device)
            worst = torch.full((len(batch),), float("inf"), device=self.device)
            # The views the attack had: chosen on the original pixels, aligned on the written ones.
            clean = self._stack(batch)[0] if self.cfg.alignment_views else x
            views = self._views(batch, clean, lm)
            with torch.no_grad():
                for r, rec in enumerate(self.recognizers):
                    emb = rec(x, lm)
                    thr = rec.cfg.threshold
                    d = rec.distance(emb, torch.stack([j.references[r] for j in batch]))
                    if self.cfg.mirror and batch[0].donor is None:  # what DodgeObjective optimised
                        d = torch.minimum(d, rec.distance(emb, torch.stack([j.mirrored[r] for j in batch])))
                    if views[r] is not None:
                        owner, boxes = views[r]
                        owner = owner.to(self.device)
                        dv = rec.distance(rec.embed_views(x[owner], boxes), rec.embed_views(clean[owner], boxes))
                        d = d.scatter_reduce(0, owner, dv, "amin")
                    worst = torch.minimum(worst, d / thr)
                    if batch[0].donor is not None:  # buckets never mix donors and dodgers
                        donors = torch.stack([j.donor[r] for j in batch])
                        short = torch.maximum(short, rec.distance(emb, donors) - (thr - need))
                        short = torch.maximum(short, thr - d)
                    else:
                        short = torch.maximum(short, thr + need - d)
            thr0 = self.recognizers[0].cfg.threshold
            for b, job in enumerate(batch):
                judged[id(job)] = (float(short[b]), float(worst[b]) * thr0)
        return [judged[id(j)] for j in jobs]

    def _verify_encoded(self, out: list[np.ndarray], jobs: list[_Job]) -> None:
        """:meth:`_verify` against ``margin`` on ``out`` as the output's encoder returns it."""
        self._verify(self.round_trip(out), jobs, margin=float(self.cfg.margin))
        self.stats["encoder_checks"] += 1

    def _check_encoded(
        self, frames: list[np.ndarray], out: list[np.ndarray], jobs: list[_Job], levels: Optional[int], passed: set
    ) -> list[np.ndarray]:
        """Judge the attacked faces after the output's encoder; continue those it pushed back.

        Each round encodes and decodes the written chunk (``round_trip``) and
        re-judges every attacked face on the decoded pixels against
        ``margin``. A face that falls short continues from where it stopped,
        with the budget it has left, towards a target past its distance on
        the written frames by the shortfall plus :data:`ENCODER_SLACK` (what
        the encoder takes off comes off that distance, which can lie well
        past the old target), and the chunk is written again. Each face gets
        up to ``encoder_rounds`` such rounds, counted from the round it
        first falls short: a face that passed until other faces of the
        chunk changed gets its own. A face that passed on the written frames
        with no budget left gets ``encoder_reserve`` iterations more. Faces
        still short after their rounds stay unreached (they get the
        fallback).

        ``passed`` holds the ``id`` of each face that passed on the written
        frames after the attack loop.

        Returns
        -------
        list of ndarray
            The written frames (what goes to the output's encoder).
        """
        attacked = [j for j in jobs if j.shipped is not None]
        rounds = max(0, int(self.cfg.encoder_rounds))
        reserve = max(0, int(self.cfg.encoder_reserve))
        continued = {id(j): 0 for j in attacked}
        # Re-encoding a chunk after some faces changed moves what the encoder
        # keeps of the others (their frames reference the changed ones), and
        # can push a face that passed every earlier round under its target.
        # Such a face gets its own rounds, so it is not blurred untried; the
        # chunk is encoded at most 2 * encoder_rounds + 1 times.
        for r in range(2 * rounds + 1):
            self._verify_encoded(out, attacked)
            if r == 0:
                self.stats["encoder_short"] = sum(1 for j in attacked if id(j) in passed and not j.reached)
            if r == 2 * rounds:
                break
            short = [j for j in attacked if not j.reached and continued[id(j)] < rounds]
            # A face that passed on the written frames lost only to the
            # encoder, and may have spent its whole budget reaching the target
            # just in time: it gets encoder_reserve iterations more.
            for job in short:
                if id(job) in passed and self._left(job) <= 0 and job.extra < reserve:
                    job.extra = reserve
                    self.stats["reserved"] += 1
            retry = [j for j in short if self._left(j) > 0]
            if not retry:
                break
            # What the encoder takes off is a distance the face must add to
            # the one it has on the written frames, and that can lie well past
            # its old target (a warm start overshoots): a target raised from
            # the old one only can leave the face past it already, so it
            # would take no step and the encoder would undo it again.
            for job, (written, _) in zip(retry, self._judge(out, retry)):
                continued[id(job)] += 1
                job.margin += max(-written, 0.0) + max(job.shortfall, 0.0) + ENCODER_SLACK
            self._continue(out, retry, levels)
            out = [np.array(f, copy=True) for f in frames]
            self._compose(out, jobs)
        return out

    def _crop(self, frames: list[np.ndarray], job: _Job) -> torch.Tensor:
        """``(3, h, w)`` float crop of a job's context region from ``frames``."""
        crop = to_float(frames[job.frame][job.context.slices])
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).to(self.device)

    def _fall_back(
        self, out: list[np.ndarray], faces: list[Faces], jobs: list[_Job], levels: Optional[int]
    ) -> tuple[list[np.ndarray], set, set]:
        """Give every unreached face the fallback; judge again, and attack again, the protected faces it touched.

        A fallback region can reach into a protected neighbour's crop (faces
        that overlap, a cross-dissolve, a track's box that drifted) and undo
        part of a perturbation that was judged before it. Each protected face
        whose crop the fallback changed is judged again, as before (after the
        encoder in video). One that no longer passes, and has budget left, is
        attacked again once, on the frame as now written and only where the
        fallback left the pixels alone, so the fallback's pixels ship as it
        made them; the change is added to the frames, and each face it
        touched is judged again. A face that still fails gets the fallback
        too, until no protected face is touched.

        Returns
        -------
        out : list of ndarray
            The frames.
        undone : set
            ``id`` of each face a neighbour's fallback undid (and that got the fallback).
        again : set
            ``id`` of each face attacked again after a neighbour's fallback.
        """
        composed = list(out)  # the attacks' pixels alone
        failed, undone, again = [j for j in jobs if not j.reached], set(), set()
        while failed:
            before = list(out)  # the fallback replaces frames, it does not write into them
            out = self._apply_fallback(out, faces, failed)
            if self.cfg.harden_fallback:
                out = self._harden(out, failed, levels)
            touched = _changed(before, out, [j for j in jobs if j.reached])
            if not touched:
                break
            self._judge_shipped(out, touched)
            failed = [j for j in touched if not j.reached]
            rescue = [j for j in failed if id(j) not in again and self._left(j) > 0]
            if rescue:
                again |= {id(j) for j in rescue}
                for job in rescue:
                    sl = job.context.slices
                    kept = np.all(composed[job.frame][sl] == out[job.frame][sl], axis=2)
                    job.mask = job.mask * torch.from_numpy(kept).to(job.mask)[None]
                shipped = {id(j): j.shipped for j in rescue}
                self._continue(out, rescue, levels)
                # Only the change is added: the fallback's pixels stay as the
                # fallback made them from the frame this attack started on.
                before = list(out)
                out = [np.array(f, copy=True) for f in out]
                self._compose(out, rescue, since=shipped)
                composed = [np.array(f, copy=True) for f in composed]
                self._compose(composed, rescue, since=shipped)
                others = [j for j in jobs if j.reached and id(j) not in shipped]
                check = rescue + _changed(before, out, others)
                self._judge_shipped(out, check)
                failed = [j for j in check if not j.reached]
            undone |= {id(j) for j in failed}
        return out, undone, again

    def _steady(self, jobs: list[_Job]) -> None:
        """Give the fallback to short runs of protected faces between fallback faces of their track.

        A track that alternates between blur and a sharp (perturbed) face
        flashes at the frame rate. Blurring a run of at most ``steady_gap``
        protected faces between two blurred ones costs the track no
        protection it had: its blurred faces on either side are as exposed.
        The face before the run may lie in the previous chunk (its track's
        remembered outcome); a run that reaches the end of the chunk is
        left alone, since the next chunk is not decided yet.
        """
        gap = int(self.cfg.steady_gap)
        if gap <= 0:
            return
        by_track: dict[tuple, list[_Job]] = {}
        for job in sorted(jobs, key=lambda j: j.frame):
            by_track.setdefault(job.key, []).append(job)
        for key, track in by_track.items():
            blurred_before = self._fell_back.get(key, False)
            run: list[_Job] = []
            for job in track:
                if job.reached:
                    run.append(job)
                    continue
                if blurred_before and 0 < len(run) <= gap:
                    for j in run:
                        j.reached, j.steadied = False, True
                blurred_before, run = True, []
        self.stats["steadied"] = sum(j.steadied for j in jobs)

    def _harden(self, out: list[np.ndarray], failed: list[_Job], levels: Optional[int]) -> list[np.ndarray]:
        """Attack the fallback's pixels of faces that missed their target; keep the perturbation where it reaches it.

        On small faces blur leaves much of a face's identity (its outline,
        hair and clothes; docs/attacks.md), so a blurred face can stay
        closer to its original than the attack it replaced. The attack
        starts again from the blurred pixels, with the original's embeddings
        as the references and a fresh budget of ``max_iter``. Each such face
        is judged as it ships (after the encoder in video, with the encoder
        rounds of attacked faces); one that falls short gets the fallback's
        pixels back, so every face keeps at least the fallback. (In video
        few faces get through: the views that defeated the first attack
        defeat this one too, docs/attacks.md.)

        Returns
        -------
        list of ndarray
            New frames; ``out`` is not modified.
        """
        todo = [j for j in failed if j.attackable and j.x is not None]
        if not todo:
            return out
        trials = [
            replace(j, x=self._crop(out, j), init=None, adv=None, shipped=None, moved=None, base=None, iterations=0)
            for j in todo
        ]
        self._attack(trials, levels)
        hardened = [np.array(f, copy=True) for f in out]
        self._compose(hardened, trials)
        if self.round_trip is not None and self.cfg.encoder_check:
            # The encoder smooths a perturbation on blurred pixels away more
            # than on a face's own: continue those it pushes back, as attacked
            # faces do (which leaves every trial judged after the encoder).
            short = self.stats["encoder_short"]
            hardened = self._check_encoded(out, hardened, trials, levels, set())
            self.stats["encoder_short"] = short
        else:
            self._verify(hardened, trials)
        kept = trials
        while True:
            short = [h for h in kept if not h.reached]
            for h in short:
                # Back to the fallback's pixels; the faces kept are judged again on the result.
                inside = np.broadcast_to((h.mask[0] > 0).cpu().numpy()[..., None], out[h.frame][h.context.slices].shape)
                np.copyto(hardened[h.frame][h.context.slices], out[h.frame][h.context.slices], where=inside)
            kept = [h for h in kept if h.reached]
            if not short or not kept:
                break
            self._judge_shipped(hardened, kept)
        for job, trial in zip(todo, trials):
            job.iterations += trial.iterations
            # With no iteration the fallback alone cleared the target: it ships as it is.
            job.hardened = trial.reached and trial.iterations > 0
            if trial.reached:
                job.distance = trial.distance
        self.stats["hardened"] += sum(j.hardened for j in todo)
        return hardened

    def _judge_shipped(self, out: list[np.ndarray], jobs: list[_Job]) -> None:
        """:meth:`_verify` on ``out`` as it ships: after the encoder in video, as written otherwise."""
        if self.round_trip is not None and self.cfg.encoder_check:
            self._verify_encoded(out, jobs)
        else:
            self._verify(out, jobs)

    def _apply_fallback(self, out: list[np.ndarray], faces: list[Faces], failed: list[_Job]) -> list[np.ndarray]:
        by_frame: dict[int, list[int]] = {}
        for job in failed:
            by_frame.setdefault(job.frame, []).append(job.index)
        fallback = self.fallback
        for t, idx in by_frame.items():
            sub = faces[t][np.asarray(idx)]
            protected, _ = fallback.protect([out[t]], [sub])
            out[t] = protected[0]
        n = len(failed)
        logger.info("%s: %d face(s) missed the target; protected with %s", self.name, n, fallback.name)
        return out

    def _outcome(self, job: _Job, fallback_reason: Optional[str]) -> FaceOutcome:
        method = self.name if job.reached else self.fallback.name
        if job.hardened:
            method = f"{self.fallback.name}+{self.name}"
        return FaceOutcome(
            frame=job.frame,
            track_id=job.track_id,
            method=method,
            protected=True,
            iterations=job.iterations,
            reached=job.reached,
            distance=job.distance,
            fallback_reason=fallback_reason,
        )

    def _remember(self, jobs: list[_Job]) -> None:
        """Keep each track's last attacked face for the next chunk's warm start, and its last outcome."""
        for job in sorted(jobs, key=lambda j: j.frame):
            self._fell_back[job.key] = not job.reached
        for job in jobs:
            if job.adv is None:
                continue
            self._tracks[job.key] = _TrackState(
                delta=job.base.detach(),
                context=job.context,
                landmarks=job.landmarks,
                box=job.raw_box,
                reached=job.reached,
            )
        # Tracks absent from this chunk are gone after a while; keep memory bounded.
        for memory in (self._tracks, self._fell_back):
            if len(memory) > 4096:
                for key in list(memory)[: len(memory) - 4096]:
                    del memory[key]


def _changed(before: list[np.ndarray], after: list[np.ndarray], jobs: list[_Job]) -> list[_Job]:
    """The faces of ``jobs`` whose context crop differs between ``before`` and ``after``."""
    return [j for j in jobs if not np.array_equal(before[j.frame][j.context.slices], after[j.frame][j.context.slices])]


def _fallback_reason(job: _Job, written: set, undone: set) -> Optional[str]:
    """Why ``job`` got the fallback (a key of :data:`~vdeid.methods.base.FALLBACK_REASONS`), or None."""
    if job.reached:
        return None
    if job.steadied:
        return "steady"
    if not job.attackable:
        return "no_landmarks"
    if id(job) in undone:
        return "neighbour"
    return "encoder" if id(job) in written else "attack"


def use_cuda_graphs(recognizers: Sequence) -> None:
    """Replay the recognisers' shape predictors from CUDA graphs (``AttackConfig.cuda_graphs``)."""
    for rec in recognizers:
        if getattr(rec, "refine", False):
            rec.shape_predictor.graphs = True


def attack_precision(cfg: AttackConfig, device: str | torch.device) -> torch.autocast:
    """Autocast context of the attack loop for ``cfg.precision`` on ``device``.

    Raises
    ------
    VdeidError
        Unknown precision.
    """
    if cfg.precision not in ("float32", "bfloat16"):
        raise VdeidError(f"unknown attack precision {cfg.precision!r}; valid: float32, bfloat16")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=cfg.precision == "bfloat16")


# -- geometry helpers -------------------------------------------------------------

# MTCNN landmark order after a horizontal flip: the eyes and the mouth corners swap sides.
_MIRROR_ORDER = [1, 0, 2, 4, 3]


def _mirror(crops: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontally flipped crops ``(B, 3, H, W)`` and their MTCNN-order landmarks ``(B, 5, 2)``."""
    lm = landmarks[:, _MIRROR_ORDER].clone()
    lm[..., 0] = crops.shape[-1] - 1 - lm[..., 0]
    return crops.flip(-1), lm


# -- registry ---------------------------------------------------------------------------


def _factory(attack: str):
    def make(config: Config) -> AdversarialMethod:
        return AdversarialMethod(config, attack=attack)

    make.__name__ = f"make_{attack}"
    make.__qualname__ = f"make_{attack}"
    make.__doc__ = ATTACK_METHODS[attack]
    return make


for _name in ATTACK_METHODS:
    register_method(_name, description=ATTACK_METHODS[_name])(_factory(_name))


def protect_still(
    image: np.ndarray, faces: Faces, config: Optional[Config] = None
) -> tuple[np.ndarray, list[FaceOutcome]]:
    """Protect the faces of one photo with the configured attack (``config.method``).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        RGB, uint8 or uint16. Not modified.
    faces : Faces
        Its faces, with landmarks.
    config : Config, optional
        ``config.method`` must be one of :data:`ATTACK_METHODS`.

    Returns
    -------
    protected : ndarray of shape (H, W, 3)
    outcomes : list of FaceOutcome
    """
    config = config or Config()
    if config.method not in ATTACK_METHODS:
        raise VdeidError(f"{config.method!r} is not an adversarial method; choose one of {', '.join(ATTACK_METHODS)}")
    return AdversarialMethod(config, attack=config.method).protect_still(image, faces)
