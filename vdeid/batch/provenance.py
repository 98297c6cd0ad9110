"""Which model weights a run uses, by file and SHA-256, for the manifest."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..errors import ModelError
from .manifest import file_sha256


def model_checksums(config: Config) -> list[dict]:
    """Name, file and SHA-256 of every weight file ``config`` will load.

    The MTCNN detector is always listed; the recognisers of
    ``config.attack.recognizers`` only for adversarial methods (naive
    methods load none). Computed once per run: hashing reads the files.

    Parameters
    ----------
    config : Config
        The run's configuration.

    Returns
    -------
    list of dict
        ``{"role", "name", "file", "sha256"}`` per file, ``role`` being
        ``"detector"`` or ``"recognizer"``.

    Raises
    ------
    ModelError
        A recogniser's weights cannot be found (the run could not succeed).
    VdeidError
        ``config.method`` is not a registered method.
    """
    rows = [_row("detector", "mtcnn", path) for path in _mtcnn_files()]
    if is_adversarial(config.method):
        for spec in (s.strip() for s in config.attack.recognizers.split(",")):
            if spec:
                name, _, path = spec.partition(":")
                rows.extend(_row("recognizer", name.strip().lower(), f) for f in _recognizer_files(name, path.strip()))
    return rows


def is_adversarial(method: str) -> bool:
    """True for methods that attack recognisers (anything but the naive ones).

    Raises VdeidError for an unknown method name.
    """
    from ..methods.registry import _lookup

    factory = _lookup(method)[0]
    return getattr(factory, "__module__", "") != "vdeid.methods.naive"


def _row(role: str, name: str, path: Path) -> dict:
    return {"role": role, "name": name, "file": str(path), "sha256": file_sha256(path)}


def _mtcnn_files() -> list[Path]:
    import facenet_pytorch

    data = Path(facenet_pytorch.__file__).resolve().parent / "data"
    return [data / f"{net}.pt" for net in ("pnet", "rnet", "onet")]


def _recognizer_files(name: str, path: str) -> list[Path]:
    name = name.strip().lower()
    if name == "dlib":
        from ..recognizers.dlib_resnet import default_weights_path

        files = [Path(path).expanduser() if path else default_weights_path()]
    elif name == "mobileface":
        from ..recognizers.mobileface import find_checkpoint

        files = list(find_checkpoint(path)) if path else []
    elif name == "facenet":
        files = [Path(path).expanduser()] if path else []
    else:
        # A recogniser registered by a plugin: its weights are its own business.
        from ..recognizers.registry import list_recognizers

        if name not in list_recognizers():
            raise ModelError(f"unknown recognizer {name!r}; valid names: {', '.join(list_recognizers())}")
        files = [Path(path).expanduser()] if path and Path(path).expanduser().is_file() else []
    if not files and name in ("mobileface", "facenet"):
        raise ModelError(f"recognizer {name!r} needs its weights: pass --recognizer {name}:PATH (vdeid never downloads models)")
    for f in files:
        if not f.is_file():
            raise ModelError(f"{name} weights not found; check --recognizer {name}:PATH", f)
    return [f.resolve() for f in files]
