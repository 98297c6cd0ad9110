"""Options shared by the commands, each mapped to one field of :class:`vdeid.Config`.

Options default to None so that only what the user typed overrides the
dataclass defaults (CLI > defaults); bounds live in the click types, so
validation and ``--help`` share one source.
"""

from __future__ import annotations

from dataclasses import replace

import click

from vdeid.config import Config

# (click decls, config section or None, field, click kwargs)
_OPTIONS = [
    (("--method", "-m"), None, "method", dict(help="Protection method (default {default}): pfgvm, ifgvm, ifgsm, bim, illc, blur, pixelate, noise, impulse, mask, svd.")),
    (("--device",), None, "device", dict(type=click.Choice(["auto", "cpu", "cuda"]), help="Where detection and attacks run (default {default}).")),
    (("--chunk-frames",), None, "chunk_frames", dict(type=click.IntRange(1, 1024), help="Frames protected together; the attack batches a chunk's faces (default {default}).")),
    (("--overwrite",), None, "overwrite", dict(is_flag=True, default=None, help="Replace an existing output (never an input).")),
    (("--min-face",), "detect", "min_face", dict(type=click.IntRange(8, 4096), help="Smallest face side in pixels (default {default}).")),
    (("--thresholds",), "detect", "thresholds", dict(metavar="P,R,O", help="MTCNN stage thresholds (default {default}).")),
    (("--box-margin",), "detect", "box_margin", dict(type=click.FloatRange(0, 2), help="Safety margin around each face box, fraction of its size (default {default}).")),
    (("--bridge-frames",), "track", "bridge_frames", dict(type=click.IntRange(0, 10000), help="Keep protecting a lost face this many frames (default {default}).")),
    (("--lookahead",), "track", "lookahead_frames", dict(type=click.IntRange(0, 1000), help="Frames back-filled before a face is first detected (default {default}).")),
    (("--confirm-score",), "track", "confirm_score", dict(type=click.FloatRange(0, 1), help="A face first detected below this score is only protected on frames without a detection once a second detection confirms it (default {default}; 0 protects them all).")),
    (("--detect-every",), "track", "detect_every", dict(type=click.IntRange(1, 100), help="Run the detector on every k-th frame, track in between (default {default}).")),
    (("--small-faces",), "track", "small_faces", dict(is_flag=True, default=None, help="Tiled, upscaled detection for faces down to ~14 px (always on for frames 1440 px high or more).")),
    (("--sigma",), "naive", "blur_sigma", dict(type=click.FloatRange(0.1, 500), help="blur: Gaussian sigma in pixels (default: scales with the face).")),
    (("--block",), "naive", "pixel_block", dict(type=click.IntRange(1, 512), help="pixelate: block size in pixels (default: face size / 8).")),
    (("--noise-sigma",), "naive", "noise_sigma", dict(type=click.FloatRange(0, 1), help="noise: Gaussian sigma on the [0, 1] scale (default {default}).")),
    (("--impulse-amount",), "naive", "impulse_amount", dict(type=click.FloatRange(0, 1), help="impulse: fraction of pixels set to salt or pepper (default {default}).")),
    (("--mask-mode",), "naive", "mask_mode", dict(type=click.Choice(["solid", "darken"]), help="mask: solid colour or darken (default {default}).")),
    (("--svd-rank",), "naive", "svd_rank", dict(type=click.IntRange(1, 512), help="svd: singular values kept per channel (default {default}).")),
    (("--recognizer", "-r"), "attack", "recognizers", dict(metavar="SPEC[,SPEC]", help="Recognisers attacked together (default {default}): dlib, mobileface:PATH, facenet:PATH.")),
    (("--margin",), "attack", "margin", dict(type=click.FloatRange(0, 10), help="Distance beyond the recogniser threshold required (default {default}).")),
    (("--max-iter",), "attack", "max_iter", dict(type=click.IntRange(0, 10000), help="Attack iterations per face before the fallback; in video a face the encoder pushes back after it passed gets a small reserve more (default {default}).")),
    (("--precision",), "attack", "precision", dict(type=click.Choice(["float32", "bfloat16"]), help="Recogniser precision during the attack; faces are verified in float32 either way (default {default}).")),
    (("--warm-order",), "attack", "warm_order", dict(type=click.Choice(["sequential", "bisect"]), help="Order of a chunk's warm starts: frame after frame, or in halving steps, which makes larger batches for a GPU but starts from frames further away (default {default}).")),
    (("--cuda-graphs/--no-cuda-graphs",), "attack", "cuda_graphs", dict(default=None, help="Experimental: on CUDA, replay dlib's shape predictor from CUDA graphs; the same points, fewer kernel launches (default {default}).")),
    (("--encoder-check/--no-encoder-check",), "attack", "encoder_check", dict(default=None, help="Judge adversarial faces on what the output's encoder keeps (an in-memory round trip), continue or fall back those it undoes (default {default}).")),
    (("--mask-views/--no-mask-views",), "attack", "mask_views", dict(default=None, help="Let the perturbation reach the faces an invader's detector may box differently (alignment views), not only the face's own ellipse: fewer faces blurred on faces the frame edge cuts, a wider perturbation (default {default}).")),
    (("--detector-views/--no-detector-views",), "attack", "detector_views", dict(default=None, help="Also hold each face to the alignment dlib's CNN face detector gives it (vdeid's port, run around the face): more faces miss their target and get the fallback (default {default}).")),
    (("--fallback",), "attack", "fallback", dict(help="Naive method for faces the attack cannot protect (default {default}).")),
    (("--fallback-margin",), "attack", "fallback_margin", dict(type=click.FloatRange(0, 2), help="The fallback covers each face box grown by this fraction of its size on every side, wider than --box-margin because other detectors box faces larger (default {default}).")),
    (("--harden-fallback/--no-harden-fallback",), "attack", "harden_fallback", dict(default=None, help="Attack a fallback face again from its fallback pixels and keep that perturbation where it reaches the target; on small faces blur alone can leave a face recognisable (default {default}).")),
    (("--steady-gap",), "attack", "steady_gap", dict(type=click.IntRange(0, 1000), help="Also give the fallback to runs of at most this many protected faces between fallback faces of the same track, so a blurred face does not flash sharp; 0 turns it off (default {default}).")),
    (("--crf",), "encode", "crf", dict(type=click.IntRange(0, 51), help="Encoder quality, lower is better (default {default}, visually lossless).")),
    (("--preset",), "encode", "preset", dict(help="Encoder speed preset (default {default}).")),
    (("--codec",), "encode", "codec", dict(help="Video encoder (default: the input's family: libx264 or libx265).")),
    (("--keep-metadata",), "encode", "keep_metadata", dict(is_flag=True, default=None, help="Keep location/device tags and telemetry streams (dropped by default).")),
]


def config_options(fn):
    """Add every config option to a click command.

    ``{default}`` in a help text is filled from :class:`Config`, so ``--help``
    cannot drift from the dataclass.
    """
    defaults = Config()
    for decls, section, field, kwargs in reversed(_OPTIONS):
        kw = dict(kwargs)
        value = getattr(defaults if section is None else getattr(defaults, section), field)
        if isinstance(value, (tuple, list)):
            value = ",".join(str(v) for v in value)
        kw["help"] = kw["help"].format(default=value)
        fn = click.option(*decls, field, default=kw.pop("default", None), **kw)(fn)
    return fn


def build_config(params: dict, **extra) -> Config:
    """A :class:`Config` from the command's parameters (None = keep the default)."""
    config = Config()
    sections: dict = {}
    for _, section, field, _ in _OPTIONS:
        value = params.get(field)
        if value is None:
            continue
        if field == "thresholds":
            value = _parse_thresholds(value)
        if section is None:
            config = replace(config, **{field: value})
        else:
            sections.setdefault(section, {})[field] = value
    for section, values in sections.items():
        config = replace(config, **{section: replace(getattr(config, section), **values)})
    for section, values in extra.items():
        config = replace(config, **{section: replace(getattr(config, section), **values)})
    return config


def _parse_thresholds(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 < v < 1 for v in values):
        raise click.BadParameter(f"expected three numbers in (0, 1) like 0.6,0.7,0.7, got {text!r}")
    return values  # type: ignore[return-value]
