"""The evaluation runner: methods × source recogniser × target recogniser.

For every probe photo (an identity's photo held out of the gallery) the
runner

1. cuts the main face's crop (:func:`vdeid.recognizers.gallery.photo_face`:
   the box grown by 50 % per side, face at most 224 px) and detects its faces
   with the product's MTCNN settings;
2. protects the crop with the *product's own* :class:`~vdeid.methods.base.Method`
   objects (:class:`~vdeid.engine.AdversarialMethod` for the attacks, the
   registry's naive methods, :mod:`~vdeid.evaluate.reconstruction` for
   ``pca``/``hypersphere``) and judges the quantised uint8 result. An attack
   gives two variants: ``attack`` (the attack's own pixels, also where it
   missed its target: what the papers measure) and ``shipped`` (faces that
   missed get the configured fallback, as the product writes them, but
   without ``AttackConfig.harden_fallback``'s attack on top, so a lower
   bound on what the product ships);
3. optionally passes the result through JPEG or a resize
   (:mod:`~vdeid.evaluate.transforms`), re-detects the face with MTCNN
   (detection survival), and embeds it with every target recogniser:
   rank among the enrolled identities plus distractors (PSR at Top-k),
   closed-set rank among the enrolled identities (misclassification rate),
   and distance to the same photo's original (unlinkability).

If the detector loses the face, the original landmarks are used: an
identifier that knows where the face is (conservative for protection).

Everything expensive is cached on disk under ``cache_dir``: gallery
descriptors per recogniser, each protected crop per (method, parameters,
source, probe), and each measurement per (probe, image content, transform,
target). A rerun after adding one method computes only that method.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from ..config import Config
from ..errors import InputError, VdeidError
from ..faces import Faces, box_iou
from ..imageops import from_float
from ..progress import Progress, ProgressCallback, no_progress
from . import metrics as M
from .identification import (
    EmbeddingStore,
    IdentityGallery,
    distractor_photos,
    embed_face,
    file_digest,
    split_identities,
    stable_hash,
)
from .transforms import apply_transform, parse_transform

logger = logging.getLogger(__name__)

__all__ = [
    "ADVERSARIAL",
    "NAIVE",
    "RECONSTRUCTION",
    "DEFAULT_EPS",
    "MethodRun",
    "EvaluationSpec",
    "Probe",
    "Evaluation",
    "expand_runs",
    "read_protected",
    "split_runs",
    "short_name",
]

#: Bump to invalidate every cached measurement after a change in how they are made.
CACHE_VERSION = 1

# Source files (relative to the vdeid package) whose code decides each cached
# result: editing any of them invalidates the matching cache entries, so a
# rerun never mixes results of old and new code.
_CODE = {
    "embed": ("detect", "recognizers"),
    "adversarial": ("engine.py", "attacks", "recognizers", "methods/mask.py", "composite.py", "imageops.py"),
    "naive": ("methods/naive.py", "methods/mask.py", "composite.py", "imageops.py"),
    "reconstruction": ("evaluate/reconstruction.py", "methods/mask.py", "composite.py", "detect"),
    "measure": ("detect", "recognizers", "evaluate/transforms.py", "evaluate/identification.py"),
}
_FINGERPRINTS: dict[str, str] = {}


def code_fingerprint(kind: str) -> str:
    """Hash of the source files that decide one kind of cached result (see ``_CODE``)."""
    if kind not in _FINGERPRINTS:
        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha1()
        for rel in _CODE[kind]:
            path = root / rel
            files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
            for f in files:
                if f.is_file():
                    h.update(f.relative_to(root).as_posix().encode())
                    h.update(f.read_bytes())
        _FINGERPRINTS[kind] = h.hexdigest()[:12]
    return _FINGERPRINTS[kind]

ADVERSARIAL = ("pfgvm", "ifgvm", "ifgsm", "bim", "illc")
SWEPT = ("bim", "illc")
NAIVE = ("blur", "pixelate", "noise", "impulse", "mask", "svd")
RECONSTRUCTION = ("pca", "hypersphere")
#: Ghafourian et al.'s noise budgets on the 0-255 scale.
DEFAULT_EPS = (4, 8, 16, 32, 64, 128)
#: L-inf budgets of the P-FGVM paper's Table 2 for its baselines ([0, 1] scale).
PAPER_EPS = {"ifgvm": 0.022, "ifgsm": 0.026}


def short_name(spec: Optional[str]) -> str:
    """``mobileface:/a/b`` → ``mobileface``; None → ``-``."""
    return "-" if not spec else spec.partition(":")[0].strip().lower()


@dataclass(frozen=True)
class MethodRun:
    """One protection setting to evaluate.

    Attributes
    ----------
    method : str
        ``none`` (unprotected baseline), an attack (:data:`ADVERSARIAL`), a
        naive method or ``pca``/``hypersphere``.
    source : str or None
        Recogniser spec the attack optimises against (None otherwise).
    eps : float or None
        Noise budget on the 0-255 scale of a swept attack (BIM, ILLC).
    """

    method: str
    source: Optional[str] = None
    eps: Optional[float] = None

    @property
    def adversarial(self) -> bool:
        return self.method in ADVERSARIAL

    @property
    def label(self) -> str:
        return self.method if self.eps is None else f"{self.method} ε={self.eps:g}"

    def key(self, extra: dict) -> str:
        return stable_hash({"run": asdict(self), "extra": extra, "version": CACHE_VERSION})


def expand_runs(methods: Sequence[str], sources: Sequence[str], *, eps_sweep: Sequence[float] = DEFAULT_EPS) -> list[MethodRun]:
    """Every :class:`MethodRun` of a method list: attacks once per source, BIM/ILLC once per budget.

    The unprotected baseline ``none`` is always first.

    Raises
    ------
    VdeidError
        Unknown method, or an attack without a source recogniser.
    """
    from ..methods.registry import list_methods

    known = set(list_methods()) | set(RECONSTRUCTION) | {"none"}
    runs = [MethodRun("none")]
    for raw in methods:
        m = raw.strip().lower()
        if not m or m == "none":
            continue
        if m not in known:
            raise VdeidError(f"unknown method {raw!r}; valid: {', '.join(sorted(known))}")
        if m in ADVERSARIAL:
            if not sources:
                raise VdeidError(f"method {m} is an attack: give at least one --source recogniser")
            for s in sources:
                if m in SWEPT:
                    runs += [MethodRun(m, s, float(e)) for e in eps_sweep]
                else:
                    runs.append(MethodRun(m, s))
        else:
            runs.append(MethodRun(m))
    return list(dict.fromkeys(runs))


@dataclass
class EvaluationSpec:
    """What to evaluate.

    Attributes
    ----------
    faces_dir : Path
        ``<Identity>/<photo>`` folders; probes and enrolment come from here.
    gallery_dir : Path
        Distractor photos, one identity each.
    methods : list of str
        Methods to evaluate (``none`` is always added).
    sources, targets : list of str
        Recogniser specs attacks optimise against / identification uses.
    probes_per_identity : int
        Held-out photos per identity.
    limit_identities, limit_distractors : int or None
        Subsets for quick runs.
    eps_sweep : tuple of float
        BIM/ILLC budgets on the 0-255 scale.
    jpeg : tuple of int
        JPEG qualities of the robustness check (empty: none).
    resize : bool
        Also measure after resizing to another recogniser's input size.
    seed : int
        Seed of the probe draw and of the methods' randomness.
    config : Config
        Base configuration of the methods (attack budgets, fallback...).
    chunk : int
        Probes protected together by an attack (one batch; ILLC picks its
        impersonation targets among them).
    """

    faces_dir: Path
    gallery_dir: Path
    methods: list[str]
    sources: list[str] = field(default_factory=lambda: ["dlib"])
    targets: list[str] = field(default_factory=lambda: ["dlib"])
    probes_per_identity: int = 2
    limit_identities: Optional[int] = None
    limit_distractors: Optional[int] = None
    eps_sweep: tuple = DEFAULT_EPS
    jpeg: tuple = (95, 75)
    resize: bool = True
    seed: int = 0
    config: Config = field(default_factory=Config)
    chunk: int = 12

    def transforms(self) -> list[str]:
        return ["none"] + [f"jpeg{q}" for q in self.jpeg] + (["resize"] if self.resize else [])

    def to_dict(self) -> dict:
        d = asdict(self)
        d["faces_dir"], d["gallery_dir"] = str(self.faces_dir), str(self.gallery_dir)
        return d


@dataclass
class Probe:
    """A held-out photo's main face, ready to protect and to identify.

    Attributes
    ----------
    identity : str
    path : Path
    key : str
        Cache key of the file.
    image : ndarray of shape (H, W, 3), uint8
        The face crop that is protected.
    landmarks : ndarray of shape (5, 2)
        Main face landmarks in crop pixels.
    box : ndarray of shape (4,)
        Main face box in crop pixels (from the detection on the crop).
    faces : Faces
        Every face MTCNN finds in the crop (all are protected).
    references : dict
        Target spec → descriptor of the unprotected face.
    """

    identity: str
    path: Path
    key: str
    image: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray
    faces: Faces
    references: dict = field(default_factory=dict)

    @property
    def face_side(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class _KeepFallback:
    """A fallback that leaves a missed face with the attack's own pixels (the ``attack`` variant)."""

    name = "attack-only"

    def protect(self, frames, faces):
        from ..methods.base import FaceOutcome

        return [f.copy() for f in frames], [FaceOutcome(i, int(t), self.name) for i, ff in enumerate(faces) for t in ff.track_ids]

    def reset(self) -> None:
        pass


def _image_hash(image: np.ndarray) -> str:
    h = hashlib.sha1(np.ascontiguousarray(image).tobytes())
    h.update(str(image.shape).encode())
    return h.hexdigest()[:20]


def _private_tmp(path: Path, suffix: str = "") -> Path:
    """A temporary sibling of ``path`` that no other process writes (``--jobs`` workers share the cache)."""
    return path.with_name(f"{path.name}.{os.getpid()}.tmp{suffix}")


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _private_tmp(path)
    tmp.write_text(json.dumps(obj, sort_keys=True))
    tmp.replace(path)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_protected(folder: str | Path, keys: Iterable[str]) -> dict[str, dict]:
    """Protected crops cached in one run's folder (``CACHE/protected/<method>-<source>-<key>``).

    Parameters
    ----------
    folder : str or Path
    keys : iterable of str
        Probe keys (:func:`~vdeid.evaluate.identification.file_digest` of
        the photos).

    Returns
    -------
    dict
        Probe key → ``{"variants": {"attack"|"shipped"|"-": (H, W, 3) uint8},
        "reached": bool or None, "iterations": int, "seconds": float,
        "photo": str}`` for the keys found (the ``none`` run's ``-`` variant
        is the unprotected crop).
    """
    from PIL import Image

    folder = Path(folder)
    out: dict[str, dict] = {}
    for key in keys:
        meta = _read_json(folder / f"{key}.json")
        if meta is not None:
            variants = {v: np.asarray(Image.open(folder / f"{key}.{v}.png").convert("RGB")) for v in meta["variants"]}
            out[key] = {**meta, "variants": variants}
    return out


class Evaluation:
    """Runs an :class:`EvaluationSpec`, with every step cached under ``cache_dir``.

    Parameters
    ----------
    spec : EvaluationSpec
    cache_dir : str or Path
        Created when missing; safe to reuse across runs and specs.
    device : str, optional
        ``cpu`` or ``cuda``. (Default: "cpu")
    progress : callable, optional
        Receives :class:`~vdeid.progress.Progress` updates (stages
        ``gallery``, ``protect``, ``measure``).

    Examples
    --------
    >>> ev = Evaluation(spec, "cache/")
    >>> result = ev.run()
    >>> result["rows"][0]["psr"]["1"]
    """

    def __init__(self, spec: EvaluationSpec, cache_dir: str | Path, *, device: str = "cpu", progress: ProgressCallback = no_progress):
        self.spec = spec
        self.cache = Path(cache_dir)
        self.device = device
        self.progress = progress
        self._recognizers: dict[str, object] = {}
        self._detector = None
        self._eigenfaces = None
        self.galleries: dict[str, IdentityGallery] = {}
        self._gallery_keys: dict[str, str] = {}
        self.probes: list[Probe] = []
        self.sample: dict = {}
        self.timings: dict[str, float] = {}
        # Fingerprint the code now, before a long run, so every cache key of
        # this run names the code that was imported.
        for kind in _CODE:
            code_fingerprint(kind)

    # -- building blocks ------------------------------------------------------------

    @property
    def detector(self):
        if self._detector is None:
            from ..detect import FaceDetector

            self._detector = FaceDetector(self.spec.config.detect, self.device)
        return self._detector

    def recognizer(self, spec: str):
        """The recogniser of a spec, built once and shared by attacks and identification."""
        if spec not in self._recognizers:
            from ..recognizers import create_recognizer

            self._recognizers[spec] = create_recognizer(spec, self.device)
        return self._recognizers[spec]

    def prepare(self) -> None:
        """Split the photos, enrol the galleries and cut the probes (idempotent)."""
        if self.probes:
            return
        start = time.perf_counter()
        spec = self.spec
        splits = split_identities(
            spec.faces_dir, probes_per_identity=spec.probes_per_identity, limit_identities=spec.limit_identities, seed=spec.seed
        )
        distractors = distractor_photos(spec.gallery_dir, limit=spec.limit_distractors)
        enrol = [(s.identity, p) for s in splits for p in s.enrol]
        photos = [p for _, p in enrol] + [p for _, p in distractors]
        for t in spec.targets:
            rec = self.recognizer(t)
            name = f"{short_name(t)}-{stable_hash([t, code_fingerprint('embed')])}.npz"
            store = EmbeddingStore(self.cache / "embeddings" / name, rec, self.detector)
            emb = np.zeros((0, rec.cfg.embedding_dim), np.float32)
            valid = np.zeros(0, bool)
            step = 64
            for i in range(0, len(photos), step):
                e, v = store.embed(photos[i : i + step])
                emb, valid = np.concatenate([emb, e]), np.concatenate([valid, v])
                self.progress(Progress("gallery", min(i + step, len(photos)), len(photos), {"recognizer": short_name(t)}))
            n_enrol = len(enrol)
            labels = [name for name, _ in enrol]
            ok = valid[:n_enrol]
            dvalid = valid[n_enrol:]
            self.galleries[t] = IdentityGallery.build(
                emb[:n_enrol][ok],
                [lab for lab, k in zip(labels, ok) if k],
                distractors=emb[n_enrol:][dvalid],
                distractor_names=[n for (n, _), k in zip(distractors, dvalid) if k],
            )
            g = self.galleries[t]
            digest = hashlib.sha1(g.centroids.tobytes() + "|".join(g.names).encode() + code_fingerprint("measure").encode())
            self._gallery_keys[t] = digest.hexdigest()[:16]
        enrolled = set.intersection(*({n for n, d in zip(g.names, g.distractor) if not d} for g in self.galleries.values()))
        self.probes = []
        dropped = []
        for s in splits:
            for path in s.probes:
                if s.identity not in enrolled:
                    dropped.append((path, "identity has no enrolment face"))
                    continue
                probe = self._cut_probe(s.identity, path)
                if probe is None:
                    dropped.append((path, "no face found"))
                    continue
                self.probes.append(probe)
        for path, why in dropped:
            logger.info("%s: probe left out (%s)", path, why)
        if not self.probes:
            raise InputError("no usable probe photo (no face found, or no enrolment photo with a face)", spec.faces_dir)
        self.sample = {
            "identities": len({p.identity for p in self.probes}),
            "probes": len(self.probes),
            "probes_dropped": len(dropped),
            "enrolment_photos": len(enrol),
            "distractors": len(distractors),
            "gallery_identities": {short_name(t): len(g) for t, g in self.galleries.items()},
            "closed_set_identities": len(enrolled),
        }
        self.timings["prepare"] = time.perf_counter() - start

    def _cut_probe(self, identity: str, path: Path) -> Optional[Probe]:
        from ..recognizers.gallery import photo_face

        found = photo_face(path, self.detector)
        if found is None:
            return None
        crop, lm = found
        image = from_float(crop[0].permute(1, 2, 0).numpy(), np.uint8)
        landmarks = lm[0].numpy().astype(np.float64)
        faces = self.detector.detect([image])[0]
        if len(faces) == 0:
            return None
        # The main face is the detection whose landmarks match photo_face's.
        err = np.nanmean(np.abs(faces.landmarks - landmarks[None]).reshape(len(faces), -1), axis=1)
        i = int(np.nanargmin(err))
        faces = replace(faces, track_ids=np.arange(len(faces), dtype=np.int64))
        probe = Probe(identity, Path(path), file_digest(path), image, faces.landmarks[i].astype(np.float64), faces.boxes[i].astype(np.float64), faces)
        for t in self.spec.targets:
            probe.references[t] = embed_face(image, probe.landmarks, self.recognizer(t))
        return probe

    def eigenfaces(self):
        """The eigenface basis of ``pca``/``hypersphere``, fitted on the distractors (cached)."""
        if self._eigenfaces is None:
            from .reconstruction import EigenfaceModel, fit_eigenfaces

            photos = [p for _, p in distractor_photos(self.spec.gallery_dir, limit=self.spec.limit_distractors)]
            key = stable_hash([[EmbeddingStore.key(p) for p in photos], code_fingerprint("reconstruction")])
            path = self.cache / "eigenfaces" / f"{key}.npz"
            if path.exists():
                self._eigenfaces = EigenfaceModel.load(path)
            else:
                self._eigenfaces = fit_eigenfaces(photos, self.detector)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = _private_tmp(path, ".npz")
                self._eigenfaces.save(tmp)
                tmp.replace(path)
        return self._eigenfaces

    def method_config(self, run: MethodRun) -> Config:
        """The product :class:`~vdeid.config.Config` a run protects with."""
        base = self.spec.config
        cfg = replace(base, method=run.method, device=self.device, naive=replace(base.naive, seed=self.spec.seed))
        if run.adversarial:
            over: dict = {"recognizers": run.source}
            if run.method in PAPER_EPS:
                over["eps"] = PAPER_EPS[run.method]
            if run.eps is not None:
                from ..attacks import kurakin_steps

                over.update(eps=run.eps / 255.0, max_iter=kurakin_steps(run.eps))
            cfg = replace(cfg, attack=replace(base.attack, **over))
        return cfg

    def _build_method(self, run: MethodRun, config: Config):
        if run.adversarial:
            from ..engine import AdversarialMethod

            # The attack variant is the attack's pixels alone: no second attack on a fallback that keeps them.
            config = replace(config, attack=replace(config.attack, harden_fallback=False))
            return AdversarialMethod(config, attack=run.method, recognizers=[self.recognizer(run.source)], fallback=_KeepFallback())
        if run.method in RECONSTRUCTION:
            from .reconstruction import HypersphereFaces, PcaFaces

            cls = PcaFaces if run.method == "pca" else HypersphereFaces
            return cls(self.eigenfaces(), feather=config.naive.feather, margin=config.detect.box_margin)
        from ..methods.registry import create_method

        return create_method(run.method, config)

    # -- protection -------------------------------------------------------------------

    def _protect_dir(self, run: MethodRun, config: Config) -> Path:
        # Only what changes the method's pixels goes into the key.
        extra: dict = {}
        if run.adversarial:
            extra = {"attack": asdict(config.attack), "margin": config.detect.box_margin, "feather": config.naive.feather}
            extra["code"] = code_fingerprint("adversarial")
        elif run.method in RECONSTRUCTION:
            extra = {"distractors": [str(self.spec.gallery_dir), self.spec.limit_distractors], "margin": config.detect.box_margin}
            extra["code"] = code_fingerprint("reconstruction")
        elif run.method != "none":
            extra = {"naive": asdict(config.naive), "margin": config.detect.box_margin, "code": code_fingerprint("naive")}
        return self.cache / "protected" / f"{run.method}-{short_name(run.source)}-{run.key(extra)}"

    def protect(self, run: MethodRun, probes: Sequence[Probe]) -> dict[str, dict]:
        """Protected crops of ``probes`` (cached).

        Returns
        -------
        dict
            Probe key → ``{"variants": {"attack"|"shipped"|"-": uint8 image},
            "reached": bool or None, "iterations": int, "seconds": float}``.
        """
        config = self.method_config(run)
        folder = self._protect_dir(run, config)
        out = read_protected(folder, [p.key for p in probes])
        todo = [p for p in probes if p.key not in out]
        if not todo:
            return out
        if run.method == "none":
            for p in todo:
                out[p.key] = self._store(folder, p, {"-": p.image}, None, 0, 0.0)
            return out
        method = self._build_method(run, config)
        if run.adversarial:
            from ..methods.registry import create_fallback

            fallback = create_fallback(config)
            for i in range(0, len(todo), max(1, self.spec.chunk)):
                chunk = todo[i : i + self.spec.chunk]
                method.reset()
                # Distinct track ids: every probe is its own track (no warm start across people).
                faces = [replace(p.faces, track_ids=np.arange(len(p.faces)) + 1000 * n) for n, p in enumerate(chunk)]
                start = time.perf_counter()
                images, outcomes = method.protect([p.image for p in chunk], faces)
                seconds = (time.perf_counter() - start) / len(chunk)
                pos = 0
                for n, (p, img, ff) in enumerate(zip(chunk, images, faces)):
                    mine = outcomes[pos : pos + len(ff)]
                    pos += len(ff)
                    main = int(np.argmin(np.abs(ff.boxes - p.box[None]).sum(1)))
                    missed = [k for k, o in enumerate(mine) if not o.reached]
                    shipped = img
                    if missed:
                        fallback.reset()
                        shipped = fallback.protect([img], [ff[np.asarray(missed)]])[0][0]
                    out[p.key] = self._store(
                        folder, p, {"attack": img, "shipped": shipped}, bool(mine[main].reached), int(mine[main].iterations), seconds
                    )
                self.progress(Progress("protect", i + len(chunk), len(todo), {"method": run.label, "source": short_name(run.source)}))
            return out
        for n, p in enumerate(todo, start=1):
            method.reset()
            start = time.perf_counter()
            images, _ = method.protect([p.image], [p.faces])
            out[p.key] = self._store(folder, p, {"-": images[0]}, None, 0, time.perf_counter() - start)
            self.progress(Progress("protect", n, len(todo), {"method": run.label}))
        return out

    def _store(self, folder: Path, probe: Probe, variants: dict, reached, iterations: int, seconds: float) -> dict:
        from PIL import Image

        folder.mkdir(parents=True, exist_ok=True)
        for v, img in variants.items():
            final = folder / f"{probe.key}.{v}.png"
            tmp = _private_tmp(final, ".png")
            Image.fromarray(img).save(tmp, format="PNG")
            tmp.replace(final)
        meta = {"variants": sorted(variants), "reached": reached, "iterations": iterations, "seconds": seconds, "photo": str(probe.path)}
        _write_json(folder / f"{probe.key}.json", meta)
        return {**meta, "variants": variants}

    # -- measurement --------------------------------------------------------------------

    def resize_to(self, run: MethodRun) -> int:
        """Face side of the ``resize`` transform: another recogniser's input size."""
        sizes = [self.recognizer(t).cfg.input_size for t in self.spec.targets]
        if run.source:
            own = self.recognizer(run.source).cfg.input_size
            others = [s for s in sizes if s != own]
            if others:
                return int(others[0])
            return int(own)
        return int(min(sizes))

    def measure(self, probe: Probe, image: np.ndarray, transform: str, *, resize_to: int = 112) -> dict[str, dict]:
        """Detection and identification of one protected crop under one transform (cached).

        Returns
        -------
        dict
            Target spec → ``{"detected", "rank", "closed_rank", "distance",
            "threshold"}``.
        """
        parse_transform(transform)
        digest = _image_hash(image)
        scale = resize_to / max(probe.face_side, 1.0) if transform == "resize" else 1.0
        tag = f"{transform}{resize_to}" if transform == "resize" else transform
        paths = {
            t: self.cache / "measures" / f"{short_name(t)}-{self._gallery_keys[t]}" / f"{probe.key}-{digest}-{tag}.json"
            for t in self.spec.targets
        }
        out = {t: _read_json(p) for t, p in paths.items()}
        missing = [t for t, r in out.items() if r is None]
        if not missing:
            return out
        img, realised = apply_transform(image, transform, scale=scale)
        faces = self.detector.detect([img])[0]
        box = probe.box * realised
        detected, landmarks = False, probe.landmarks * realised
        if len(faces):
            ious = box_iou(faces.boxes, box)[:, 0]
            j = int(np.argmax(ious))
            if ious[j] >= 0.3:
                detected, landmarks = True, faces.landmarks[j].astype(np.float64)
        for t in missing:
            rec = self.recognizer(t)
            emb = embed_face(img, landmarks, rec)
            gallery = self.galleries[t]
            rank = int(gallery.ranks(emb[None], [probe.identity])[0])
            closed = int(gallery.ranks(emb[None], [probe.identity], closed_set=True)[0])
            with torch.no_grad():
                dist = float(rec.distance(torch.from_numpy(emb)[None], torch.from_numpy(probe.references[t])[None])[0])
            out[t] = {"detected": detected, "rank": rank, "closed_rank": closed, "distance": dist, "threshold": float(rec.cfg.threshold)}
            _write_json(paths[t], out[t])
        return out

    # -- the whole run --------------------------------------------------------------------

    def runs(self) -> list[MethodRun]:
        return expand_runs(self.spec.methods, self.spec.sources, eps_sweep=self.spec.eps_sweep)

    def run(self, runs: Optional[Iterable[MethodRun]] = None, *, jobs: int = 1) -> dict:
        """Protect, measure and aggregate every run.

        Parameters
        ----------
        runs : iterable of MethodRun, optional
            Default: :meth:`runs` (everything the spec asks for).
        jobs : int, optional
            Worker processes. Above 1, the runs are split into groups of
            similar cost (attacks per source, naive methods) that run in
            parallel, sharing the on-disk cache. (Default: 1)

        Returns
        -------
        dict
            ``spec``, ``code`` (fingerprints of the code the cache keys
            name), ``sample`` (counts), ``rows`` (one per method × variant ×
            source × target × transform with quality, PSR@k,
            misclassification, unlinkability, detection survival, fallback
            share and 95 % intervals), ``records`` (per probe) and
            ``timings``.
        """
        self.prepare()
        runs = list(runs) if runs is not None else self.runs()
        if jobs > 1 and len(runs) > 1:
            records = self._run_parallel(runs, jobs)
        else:
            records = self._run_records(runs)
        return {
            "spec": self.spec.to_dict(),
            "code": {k: code_fingerprint(k) for k in _CODE},
            "sample": self.sample,
            "rows": aggregate(records),
            "records": records,
            "timings": self.timings,
        }

    def _run_records(self, runs: Sequence[MethodRun]) -> list[dict]:
        """Per-probe records of ``runs``, computed in this process."""
        transforms = self.spec.transforms()
        records = []
        for r_i, run in enumerate(runs):
            t0 = time.perf_counter()
            protected = self.protect(run, self.probes)
            t1 = time.perf_counter()
            resize_to = self.resize_to(run)
            done = 0
            total = len(self.probes) * len(transforms)
            for p in self.probes:
                entry = protected[p.key]
                for variant, image in entry["variants"].items():
                    quality = {
                        "l2": M.l2_distance(p.image, image),
                        "linf": M.linf_distance(p.image, image),
                        "mssim": M.mssim(p.image, image),
                        "psnr": M.psnr(p.image, image),
                    }
                    for tr in transforms:
                        measures = self.measure(p, image, tr, resize_to=resize_to)
                        for t, m in measures.items():
                            records.append(
                                {
                                    "method": run.method,
                                    "label": run.label,
                                    "eps": run.eps,
                                    "source": short_name(run.source),
                                    "variant": variant,
                                    "target": short_name(t),
                                    "transform": tr,
                                    "probe": str(p.path),
                                    "identity": p.identity,
                                    "reached": entry["reached"],
                                    "iterations": entry["iterations"],
                                    "seconds": entry["seconds"],
                                    **quality,
                                    **m,
                                }
                            )
                done += len(transforms)
                self.progress(Progress("measure", done, total, {"method": run.label, "run": f"{r_i + 1}/{len(runs)}"}))
            self.timings[f"protect {run.label} {short_name(run.source)}"] = t1 - t0
            self.timings[f"measure {run.label} {short_name(run.source)}"] = time.perf_counter() - t1
        return records

    def _run_parallel(self, runs: Sequence[MethodRun], jobs: int) -> list[dict]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if any(r.method in RECONSTRUCTION for r in runs):
            # Fit the shared basis once here rather than once per worker.
            self.eigenfaces()
        groups = split_runs(runs, jobs)
        records: list[dict] = []
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=len(groups), mp_context=ctx) as pool:
            futures = [
                pool.submit(_run_group, self.spec, str(self.cache), self.device, group, torch.get_num_threads())
                for group in groups
            ]
            for done, future in enumerate(as_completed(futures), start=1):
                recs, timings = future.result()
                records += recs
                self.timings.update(timings)
                self.progress(Progress("groups", done, len(groups), {"runs": len(runs)}))
        # The order --jobs 1 gives, whichever worker finished first.
        order = {(short_name(r.source), r.label): i for i, r in enumerate(runs)}
        return sorted(records, key=lambda rec: order[(rec["source"], rec["label"])])


def _cost(run: MethodRun) -> float:
    # Rough relative cost: untuned-budget attacks iterate longest; swept
    # attacks stop early; naive methods cost only their measurement.
    if run.adversarial:
        return 2.0 if run.eps is not None else 4.0
    return 1.0


def split_runs(runs: Sequence[MethodRun], jobs: int) -> list[list[MethodRun]]:
    """Split runs into at most ``jobs`` groups of similar total cost (longest first).

    Each group keeps the runs' original order.
    """
    bins: list[list[int]] = [[] for _ in range(max(1, min(jobs, len(runs))))]
    load = [0.0] * len(bins)
    for i in sorted(range(len(runs)), key=lambda i: -_cost(runs[i])):
        b = load.index(min(load))
        bins[b].append(i)
        load[b] += _cost(runs[i])
    return [[runs[i] for i in sorted(b)] for b in bins if b]


def _run_group(spec: EvaluationSpec, cache: str, device: str, runs: list[MethodRun], threads: int):
    """Worker process of :meth:`Evaluation.run` with ``jobs > 1``."""
    torch.set_num_threads(max(1, int(threads)))
    ev = Evaluation(spec, cache, device=device)
    ev.prepare()
    return ev._run_records(runs), ev.timings


def aggregate(records: Sequence[dict]) -> list[dict]:
    """One row per (label, variant, source, target, transform) with the seed papers' measures.

    Rates are percentages; ``*_ci`` are Wilson 95 % intervals. ``n`` counts
    probes. PSNR is averaged over the finite values (identical images have
    infinite PSNR).
    """
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["label"], r["variant"], r["source"], r["target"], r["transform"]), []).append(r)
    rows = []
    for (label, variant, source, target, transform), rs in groups.items():
        ranks = np.array([r["rank"] for r in rs])
        closed = np.array([r["closed_rank"] for r in rs])
        dist = np.array([r["distance"] for r in rs], np.float64)
        thr = rs[0]["threshold"]
        n = len(rs)
        psnrs = [r["psnr"] for r in rs if np.isfinite(r["psnr"])]
        reached = [r["reached"] for r in rs if r["reached"] is not None]
        unlinked = int((~(dist < thr)).sum())
        protected1 = int((ranks > 1).sum())
        rows.append(
            {
                "label": label,
                "method": rs[0]["method"],
                "eps": rs[0]["eps"],
                "variant": variant,
                "source": source,
                "target": target,
                "transform": transform,
                "n": n,
                "l2": float(np.mean([r["l2"] for r in rs])),
                "linf": float(np.mean([r["linf"] for r in rs])),
                "mssim": float(np.mean([r["mssim"] for r in rs])),
                "psnr": float(np.mean(psnrs)) if psnrs else None,
                "mr": M.protection_success_rate(closed, 1),
                "psr": {str(k): M.protection_success_rate(ranks, k) for k in M.TOP_K},
                "psr1_ci": M.wilson_interval(protected1, n),
                "unlinkability": M.unlinkability_rate(dist, thr),
                "unlinkability_ci": M.wilson_interval(unlinked, n),
                "mean_distance": float(np.nanmean(dist)),
                "threshold": thr,
                "detection": M.rate([r["detected"] for r in rs]),
                "reached": M.rate(reached) if reached else None,
                "fallback": (100.0 - M.rate(reached)) if reached and variant == "shipped" else None,
                "iterations": float(np.mean([r["iterations"] for r in rs])),
                "seconds": float(np.mean([r["seconds"] for r in rs])),
            }
        )
    return rows
