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
        Tiled/upscaled detection for tiny faces in large (aerial) frames
        (always on when the shorter frame side is 1440 px or more).
    gate : float
        Largest distance, in face sizes, between a track's predicted centre
        and a detection it may take; grows by half for every further frame
        without detection.
    grow_per_frame : float
        Boxes the detector did not see (bridged, interpolated, back-filled)
        are enlarged by this fraction of their size on each side per frame
        away from the nearest detection, before ``DetectConfig.box_margin``.
    grow_max : float
        Cap of that enlargement.
    confirm_score : float
        A track whose first detection scores below this is bridged and
        back-filled only once a second detection within ``lookahead_frames``
        confirms it; its detected boxes are always protected. MTCNN's false
        faces (a suit, a hand, a shop window) score 0.7-0.9 and are often
        seen once; real faces can score as low but are detected again within
        a few frames. 0 bridges every track.
    cut_threshold : float
        Colour-histogram distance (Bhattacharyya, 0..1) between consecutive
        frames above which a new shot starts and every track ends.
    motion_compensation : bool
        Estimate the camera motion (pan, zoom) between frames and move the
        tracks with it.
    """

    bridge_frames: int = 15
    lookahead_frames: int = 8
    detect_every: int = 1
    small_faces: bool = False
    gate: float = 2.0
    grow_per_frame: float = 0.04
    grow_max: float = 0.5
    confirm_score: float = 0.9
    cut_threshold: float = 0.4
    motion_compensation: bool = True


@dataclass
class NaiveConfig:
    """Parameters of the naive (non-adversarial) methods.

    ``None`` means "scale with the face": the value is derived from the face
    box size so a 20 px face and a 400 px face are equally obscured.

    Attributes
    ----------
    blur_sigma : float or None
        Gaussian blur standard deviation in pixels (None: 0.2 × face size,
        at least 2).
    pixel_block : int or None
        Pixelation block side in pixels (None: face size / 8).
    noise_sigma : float
        Additive Gaussian noise standard deviation on the [0, 1] scale.
    impulse_amount : float
        Fraction of face pixels set to white or black (salt and pepper).
    mask_mode : {"solid", "darken"}
        Fill the face with ``mask_color`` or multiply it by ``darken_factor``.
    mask_color : tuple of int
        RGB fill colour on the 0-255 scale.
    darken_factor : float
        Brightness factor in [0, 1] of ``mask_mode="darken"``.
    svd_rank : int
        Singular values kept per channel by SVD-DID.
    feather : float
        Soft edge of the face ellipse as a fraction of the box size, in
        [0, 0.5].
    seed : int
        Seed of the noise and impulse methods' random generator.
    """

    blur_sigma: Optional[float] = None
    pixel_block: Optional[int] = None
    noise_sigma: float = 0.25
    impulse_amount: float = 0.3
    mask_mode: Literal["solid", "darken"] = "solid"
    mask_color: tuple[int, int, int] = (0, 0, 0)
    darken_factor: float = 0.25
    svd_rank: int = 3
    feather: float = 0.15
    seed: int = 0


@dataclass
class AttackConfig:
    """Adversarial protection (P-FGVM and the baselines); see ``docs/attacks.md``.

    Attributes
    ----------
    recognizers : str
        Comma-separated recogniser specs attacked together, e.g.
        ``"dlib"`` or ``"dlib,mobileface:PATH"``.
    objective : {"dodge", "impersonate"}
        ``dodge`` pushes each face away from its own embedding (open set);
        ``impersonate`` pulls it towards another face of the chunk.
    margin : float
        Extra distance beyond the recogniser's threshold required (on the
        written pixels) before a face counts as protected; it absorbs the
        difference between our alignment and the invader's.
    max_iter : int
        Iteration budget per face; faces that do not reach the target get the
        fallback method (in video, one the encoder pushes back after it
        passed may also use ``encoder_reserve``).
    alpha : float
        Step size. For P-FGVM / I-FGVM the gradient is calibrated per face so
        that ``alpha = 1`` moves a typical pixel by one grey level at the
        first step (as the paper's alpha = 1 on its classifiers).
    lam : float
        P-FGVM's realism weight (paper: 0.22 / 0.28 on its classifiers; 0.05
        with the calibrated step against dlib, see ``docs/attacks.md``).
    eps : float
        L-inf budget on [0, 1] pixels for I-FGVM / I-FGSM / BIM / ILLC.
    fallback : str
        Naive method used when an attack fails to reach its target.
    fallback_margin : float
        The fallback covers each face box grown by this fraction of its
        size on every side (the naive methods as such, and the attack's
        region, use ``DetectConfig.box_margin``, 0.15). Wider, because
        dlib's CNN detector boxes faces larger and higher than MTCNN does,
        and blur over MTCNN's box grown by 0.15 left the README sample's
        frame 23 within that pipeline's threshold (0.589; 0.642 with 0.3).
        See ``docs/attacks.md``, *A wider fallback*.
    harden_fallback : bool
        Attack a face's fallback pixels again (a fresh ``max_iter``, the
        original's embeddings as references) and ship the fallback plus
        that perturbation (method ``"blur+pfgvm"``) where it reaches the
        target, the fallback alone where it does not. On small faces blur
        leaves much of the identity (outline, hair, clothes). Off by
        default: in video it rescued 1 of 44 and 2 of 18 fallback faces of
        a street window for 80-100 % more time (docs/attacks.md).
    steady_gap : int
        A run of at most this many protected faces of a track between two
        of its fallback faces gets the fallback too, so the face does not
        flash sharp between blurred frames; 0 turns it off (see
        ``docs/attacks.md``, *Steady fallbacks*).
    warm_start : bool
        Start each face from its track's perturbation in a nearby frame.
    warm_order : {"bisect", "sequential"}
        How a chunk is split into waves (see ``docs/attacks.md``):
        ``bisect`` takes log2(chunk) + 1 waves that each batch many frames;
        ``sequential`` one wave per frame, each face starting from the frame
        just before it.
    warm_from_failed : bool
        Also warm-start from a perturbation that missed its target (default).
        Off, a face whose predecessor on its track fell short starts cold;
        over four street windows that blurred about as many faces
        (``docs/attacks.md``).
    batch_size : int
        Faces per recogniser forward pass.
    seed : int
        Seed of the random parts (starting direction, landmark jitter).
    jitter : float
        Landmark jitter, as a fraction of the face size, applied while
        optimising (expectation over the invader's alignment errors).
    rounds : int
        Verify-and-continue rounds: a face that fails verification on the
        written frame continues with its remaining budget.
    compression : bool
        Optimise through a random compression proxy (blur, 4:2:0 chroma,
        noise) so the perturbation survives video encoding.
    compression_margin : float or None
        With ``compression``, a face also has to clear the threshold plus
        this margin after the fixed proxy; None only optimises through it.
    mirror : bool
        A dodging face has to leave the embedding of its mirrored original
        too (a second view of the person, so the face leaves the person
        and not just the photo).
    alignment_views : bool
        A face has to leave its original under each of the alignments
        another detector may plausibly give it too, not only under vdeid's
        own (for dlib: the shape predictor started from boxes 0.85-1.45
        times the size, and, for a face the frame edge cuts, from smaller,
        inward boxes; ``DlibResNet.alignment_views``). Only alignments that
        differ from vdeid's are added, so sharp faces rarely get any.
    detector_views : bool
        With ``alignment_views``, also the alignments that follow from where
        dlib's CNN face detector boxes the face (vdeid's port, run on the
        face's surroundings at the frame's size and, for faces under 160 px,
        doubled, as ``face_recognition``'s default does). Its boxes can lie
        a sixth of a side above or beside the box views', and from there the
        shape predictor can land on another chip. On by default since the
        fallback covers a wider box (``fallback_margin``): without it, dlib's
        CNN pipeline re-identified the README sample's frame 23 in most runs;
        with it, in none of four, for more blurred faces there (4-6 against
        1-3) and 12-55 % more time (docs/attacks.md, *Views from dlib's CNN
        detector, on by default*).
    mask_views : bool
        With ``alignment_views``, the perturbation may also reach the pixels
        of each view's face (the ellipse of its start box, grown by
        ``DetectConfig.box_margin`` like the face's own), not only the
        face's own ellipse: a view's chip holds pixels the face's ellipse
        leaves out (where the frame edge cuts a face, MTCNN's box lies
        partly beyond the edge, off the visible face), which the attack
        could not otherwise move. On by default: over photos, the drone
        clip, the README sample and the traced windows it blurs fewer faces
        (on two whole street windows 3 and 10 more) and links none more, for
        8-22 % more pixels changed per face (docs/attacks.md, *Masks over
        the views*).
    video_margin : float
        Added to ``margin`` while attacking faces written into lossy video
        (``vdeid process``): H.264 at CRF 18 takes 0.05-0.1 off real dlib's
        distance on 50-110 px faces and 0.1-0.2 at 1080p, which photos
        written losslessly do not lose. A head start: with
        ``encoder_check`` the faces are then judged after the encoder,
        against ``margin``.
    encoder_check : bool
        In video, judge every attacked face on the chunk as the output's
        own encoder and decoder return it (an in-memory round trip at the
        output's codec, CRF, preset and pixel format), not on the frames
        handed to the encoder; a face that fails gets the fallback.
    encoder_rounds : int
        Encode-verify-continue rounds per face: a face the encoder pushed
        back under its target continues with its remaining budget and a
        target raised by what it fell short, and the chunk is encoded again
        (at most ``2 * encoder_rounds + 1`` times: a face pushed back only by
        a later re-encode gets rounds of its own).
    encoder_reserve : int
        Iterations beyond ``max_iter`` a face gets once it passes on the
        written frames but falls short after the encoder: a face that
        reached its target only with its last iterations has nothing left
        for the encoder rounds otherwise.
    precision : {"float32", "bfloat16"}
        Precision of the recognisers' forward and backward passes during the
        attack (autocast; the perturbation stays float32). Every face is
        verified in float32 afterwards, so a lower precision can cost
        iterations or fallbacks but never lets an unprotected face through.
    cuda_graphs : bool
        On CUDA, replay dlib's shape predictor (about 1,600 small kernels a
        call) from CUDA graphs captured per shape. Experimental: the same
        points, 3.6 times faster per call on an H200, but not yet measured
        end to end (docs/performance.md).
    """

    recognizers: str = "dlib"
    objective: Literal["dodge", "impersonate"] = "dodge"
    margin: float = 0.12
    max_iter: int = 60
    alpha: float = 1.5
    lam: float = 0.05
    eps: float = 8 / 255
    fallback: str = "blur"
    fallback_margin: float = 0.3
    harden_fallback: bool = False
    steady_gap: int = 3
    warm_start: bool = True
    warm_order: Literal["bisect", "sequential"] = "sequential"
    warm_from_failed: bool = True
    batch_size: int = 32
    seed: int = 0
    jitter: float = 0.03
    rounds: int = 2
    compression: bool = True
    compression_margin: Optional[float] = None
    mirror: bool = True
    alignment_views: bool = True
    detector_views: bool = True
    mask_views: bool = True
    video_margin: float = 0.08
    encoder_check: bool = True
    encoder_rounds: int = 2
    encoder_reserve: int = 15
    precision: Literal["float32", "bfloat16"] = "float32"
    cuda_graphs: bool = False


@dataclass
class EncodeConfig:
    """Output encoding and stream-copy options.

    Attributes
    ----------
    codec : str or None
        Video encoder; ``None`` picks the input's family (h264 -> libx264,
        hevc -> libx265, anything else -> libx264).
    crf : int
        Constant rate factor of x264/x265 (lower is better; 18 is visually
        lossless for most footage).
    preset : str
        x264/x265 speed preset (``ultrafast`` ... ``veryslow``).
    keep_metadata : bool
        Keep every container/stream tag (GPS, camera, dates...) and copy
        subtitle/data streams (drone telemetry); off by default for privacy.
    pix_fmt : str or None
        Force the encoder pixel format; ``None`` keeps the input's where the
        encoder has it (10-bit stays 10-bit).
    audio_bitrate : int
        Bits per second of audio that must be re-encoded (to AAC) because the
        output container cannot hold its codec; copied audio is untouched.
    """

    codec: Optional[str] = None
    crf: int = 18
    preset: str = "medium"
    keep_metadata: bool = False
    pix_fmt: Optional[str] = None
    audio_bitrate: int = 192_000
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
