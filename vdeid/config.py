"""The one typed configuration object passed down the pipeline.

The CLI builds a :class:`Config` from its options (CLI > defaults) and hands
it to :func:`vdeid.process_video` / :func:`vdeid.protect_image`; library code
reads only the section it needs and never looks at globals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, Optional

Device = Literal["auto", "cpu", "cuda"]


@dataclass
class DetectConfig:
    """Face detection (MTCNN) options.

    Attributes
    ----------
    min_face : int
        Smallest face side, in frame pixels, that the detector looks for.
    thresholds : tuple of float
        MTCNN's P-, R- and O-net score thresholds.
    batch_size : int
        Frames per detector call.
    box_margin : float
        Safety margin added on each side of a detected box, as a fraction of
        its size, before a face region is protected.
    """

    min_face: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    batch_size: int = 8
    box_margin: float = 0.15


@dataclass
class TrackConfig:
    """Tracking, gap bridging and look-ahead options.

    Attributes
    ----------
    bridge_frames : int
        A track that loses its detection is still protected at its predicted
        position for this many frames.
    lookahead_frames : int
        Frames held back so a track that starts at frame t also protects the
        frames just before t.
    detect_every : int
        Run the detector on every k-th frame only (tracking in between).
    small_faces : bool
        Tiled/upscaled detection for tiny faces in large (aerial) frames.
    """

    bridge_frames: int = 15
    lookahead_frames: int = 8
    detect_every: int = 1
    small_faces: bool = False


@dataclass
class NaiveConfig:
    """Parameters of the naive (non-adversarial) methods.

    ``None`` means "scale with the face": the value is derived from the face
    box size so a 20 px face and a 400 px face are equally obscured.
    """

    blur_sigma: Optional[float] = None
    pixel_block: Optional[int] = None
    noise_sigma: float = 0.25
    impulse_amount: float = 0.3
    mask_mode: Literal["solid", "darken"] = "solid"
    mask_color: tuple[int, int, int] = (0, 0, 0)
    svd_rank: int = 3
    feather: float = 0.15
    seed: int = 0


@dataclass
class AttackConfig:
    """Adversarial protection (P-FGVM and the baselines).

    Attributes
    ----------
    recognizers : str
        Comma-separated recogniser specs attacked together, e.g.
        ``"dlib"`` or ``"dlib,mobileface:PATH"``.
    objective : {"dodge", "impersonate"}
        ``dodge`` pushes each face away from its own embedding (open set);
        ``impersonate`` pulls it towards a donor identity.
    margin : float
        Extra distance beyond the recogniser's threshold required before a
        face counts as protected.
    max_iter : int
        Iteration budget per face; faces that do not reach the target get the
        fallback method.
    alpha, lam, eps : float
        Step size, P-FGVM penalty weight, and L-inf budget on [0, 1] pixels
        (for the I-FGVM / I-FGSM / BIM / ILLC baselines).
    fallback : str
        Naive method used when an attack fails to reach its target.
    """

    recognizers: str = "dlib"
    objective: Literal["dodge", "impersonate"] = "dodge"
    margin: float = 0.1
    max_iter: int = 40
    alpha: float = 0.02
    lam: float = 0.05
    eps: float = 8 / 255
    fallback: str = "blur"
    warm_start: bool = True
    batch_size: int = 32
    seed: int = 0


@dataclass
class EncodeConfig:
    """Output encoding and stream-copy options."""

    codec: Optional[str] = None
    crf: int = 18
    preset: str = "medium"
    keep_metadata: bool = False
    image_format: Literal["same", "png", "jpg"] = "same"
    jpeg_quality: int = 95


@dataclass
class Config:
    """Everything a protection run needs.

    Attributes
    ----------
    method : str
        ``pfgvm`` (default) or any registered method name (``blur``,
        ``pixelate``, ``noise``, ``impulse``, ``mask``, ``svd``, ``ifgvm``...).
    device : {"auto", "cpu", "cuda"}
        Where detection and attacks run; ``auto`` picks CUDA when available.
    overwrite : bool
        Replace an existing output file.
    chunk_frames : int
        Frames handed to the protection method at once; adversarial methods
        batch the faces of a whole chunk into one forward pass.
    """

    method: str = "pfgvm"
    device: Device = "auto"
    overwrite: bool = False
    chunk_frames: int = 8
    detect: DetectConfig = field(default_factory=DetectConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    naive: NaiveConfig = field(default_factory=NaiveConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)

    def to_dict(self) -> dict:
        """Plain-JSON view of the configuration (for reports and manifests)."""
        return asdict(self)


def resolve_device(device: str) -> str:
    """Turn ``auto`` into ``cuda`` or ``cpu``; reject CUDA when it is absent."""
    import torch

    from .errors import VdeidError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise VdeidError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    if device not in ("cpu", "cuda"):
        raise VdeidError(f"unknown device {device!r}; choose auto, cpu or cuda")
    return device
