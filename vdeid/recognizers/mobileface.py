"""MobileFace Identification V2: a 112 px, 256-D cosine recogniser from MXNet weights.

The weights (MIT, github.com/becauseofAI/MobileFace) are not on PyPI, so the
user passes their folder: ``--recognizer mobileface:PATH``. The MXNet graph is
run by :class:`~vdeid.recognizers.mxnet_format.SymbolNet`; no MXNet needed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import torch

from ..checks import check_shape
from ..errors import ModelError
from . import align
from .base import Recognizer, RecognizerCfg
from .mxnet_format import SymbolNet, load_checkpoint
from .registry import register_recognizer

logger = logging.getLogger(__name__)

#: What MobileFace V2 is, before any weights are loaded (``vdeid models`` shows it).
#: ``threshold`` is the equal-error-rate cosine distance (0.746, rounded)
#: measured on all 65,703 pairs of the 363 photos of ../shared/data/faces:
#: about 1 % false accepts and 1 % false rejects (docs/models.md).
DEFAULT_CFG = RecognizerCfg(
    name="mobileface",
    input_size=112,
    embedding_dim=256,
    metric="cosine",
    threshold=0.75,
    source="",
    license="MIT (becauseofAI/MobileFace)",
)

#: SHA-256 of the files published at becauseofAI/MobileFace@128cea3; other
#: files still load (a fine-tuned copy, say) but are logged as unverified.
KNOWN_SHA256 = {
    "MobileFace_Identification_V2-0000.params": "750057619a1eef8acb320339aebf0bbcf191497e1396a361c8aaba517bbe825e",
    "MobileFace_Identification_V2-symbol.json": "9d4f776ecb40772e3eb10338319e4a10a3cd68694dc6ef4e9042c8c4141e658f",
}

_HINT = (
    "pass the folder holding MobileFace_Identification_V2-symbol.json and "
    "MobileFace_Identification_V2-0000.params (github.com/becauseofAI/MobileFace, "
    "folder MobileFace_Identification/), e.g. --recognizer mobileface:/path/to/folder"
)


class MobileFace(Recognizer):
    """MobileFace Identification V2 with differentiable 5-point alignment.

    Parameters
    ----------
    net : SymbolNet
        The MXNet graph; takes RGB in 0..255 and normalises itself.
    source : str
        Where the weights came from (recorded in ``cfg.source``).

    Shape:
        - crops: :math:`(B, 3, H, W)` float in [0, 1], RGB.
        - landmarks: :math:`(B, 5, 2)` ``(x, y)`` crop pixels, MTCNN order.
        - chips: :math:`(B, 3, 112, 112)` float in [0, 1].
        - output: :math:`(B, 256)` descriptors (not normalised; compare
          with :meth:`distance`, 1 - cosine similarity).
    """

    def __init__(self, net: SymbolNet, *, source: str = ""):
        super().__init__()
        self.net = net
        self.net.requires_grad_(False)
        self.cfg = replace(DEFAULT_CFG, source=source)
        # The insightface 112x112 template MobileFace was trained with; MTCNN's
        # landmark order is the template's, so no reordering is needed.
        self.register_buffer("template", torch.as_tensor(align.INSIGHTFACE_112, dtype=torch.float32))

    def align(self, crops: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        check_shape(crops, ["B", 3, "H", "W"], "crops")
        check_shape(landmarks, [crops.shape[0], 5, 2], "landmarks")
        return align.align_to_template(crops, landmarks, self.template, self.cfg.input_size)

    def embed_chips(self, chips: torch.Tensor) -> torch.Tensor:
        check_shape(chips, ["B", 3, self.cfg.input_size, self.cfg.input_size], "chips")
        return self.net((chips * 255.0).contiguous(memory_format=torch.channels_last))


def find_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """Locate ``(symbol.json, params)`` from a folder, a file prefix or either file.

    Raises
    ------
    ModelError
        Nothing usable at ``path``, or several checkpoints in one folder.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        symbols = sorted(path.glob("*-symbol.json"))
        if not symbols:
            raise ModelError(f"no *-symbol.json file in this folder; {_HINT}", path)
        if len(symbols) > 1:
            names = ", ".join(s.name for s in symbols)
            raise ModelError(f"several MXNet graphs here ({names}); pass one file's path instead", path)
        prefix = symbols[0].with_name(symbols[0].name[: -len("-symbol.json")])
    elif path.name.endswith("-symbol.json"):
        prefix = path.with_name(path.name[: -len("-symbol.json")])
    elif path.suffix == ".params":
        prefix = path.with_name(path.name.rsplit("-", 1)[0])
    else:
        prefix = path
    symbol = prefix.with_name(prefix.name + "-symbol.json")
    params = sorted(prefix.parent.glob(prefix.name + "-[0-9][0-9][0-9][0-9].params"))
    if path.suffix == ".params" and path.is_file():
        params = [path]
    if not symbol.is_file():
        raise ModelError(f"MXNet graph {symbol.name} not found; {_HINT}", path)
    if not params:
        raise ModelError(f"no {prefix.name}-NNNN.params weights beside {symbol.name}; {_HINT}", path)
    return symbol, params[-1]  # highest epoch, as mxnet.model.load_checkpoint users pick


def _verify(files: tuple[Path, ...]) -> None:
    for f in files:
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        if KNOWN_SHA256.get(f.name) != digest:
            logger.warning("%s: not the published MobileFace V2 file (sha256 %s); loading it anyway", f, digest[:12])


def load_mobileface(path: str | Path) -> MobileFace:
    """Build :class:`MobileFace` from the weights at ``path`` (see :func:`find_checkpoint`).

    Raises
    ------
    ModelError
        Missing, unreadable or corrupt files, with the path and what to pass.
    """
    symbol, params = find_checkpoint(path)
    _verify((symbol, params))
    try:
        net = load_checkpoint(symbol, params)
    except ModelError as ex:
        raise ModelError(f"{ex.message}; {_HINT}", ex.path or params) from ex
    # Channels-last, as for dlib's ResNet: about 15 % faster forward + backward on CPU.
    model = MobileFace(net, source=str(Path(path).expanduser().resolve())).to(memory_format=torch.channels_last)
    # One small forward proves the graph is runnable and has the documented output.
    with torch.no_grad():
        try:
            out = model.embed_chips(torch.zeros(1, 3, model.cfg.input_size, model.cfg.input_size))
        except RuntimeError as ex:
            raise ModelError(f"the MXNet graph does not run on 112x112 input ({ex}); {_HINT}", symbol) from ex
    if tuple(out.shape) != (1, model.cfg.embedding_dim):
        raise ModelError(f"expected a (1, 256) descriptor, the graph gives {tuple(out.shape)}; {_HINT}", symbol)
    return model


@register_recognizer(
    "mobileface",
    "MobileFace Identification V2 (MXNet weights, MIT): 112 px chips, 256-D, cosine",
    needs_path=True,
)
def mobileface(path: str | None, device: str = "cpu") -> MobileFace:
    if path is None:
        raise ModelError(f"MobileFace weights are not bundled; {_HINT}")
    return load_mobileface(path).to(device)
