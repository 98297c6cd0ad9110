"""FaceNet (Inception-ResNet-v1, facenet-pytorch) from a user-given state dict.

facenet-pytorch only downloads its weights at run time, which vdeid never
does, so the user passes the file: ``--recognizer facenet:PATH``, e.g.
``20180402-114759-vggface2.pt``. The network is facenet-pytorch's own
:class:`~facenet_pytorch.InceptionResnetV1` with random initialisation, then
the file's tensors.
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import torch

from ..checks import check_shape
from ..errors import ModelError
from . import align
from .base import Recognizer, RecognizerCfg
from .registry import register_recognizer

#: What FaceNet is, before any weights are loaded. The threshold is a commonly
#: quoted LFW operating point for the VGGFace2 model's L2-normalised
#: descriptors; it was not measured here (no weights in this environment).
DEFAULT_CFG = RecognizerCfg(
    name="facenet",
    input_size=160,
    embedding_dim=512,
    metric="euclidean",
    threshold=1.1,
    source="",
    license="MIT (timesler/facenet-pytorch code and converted weights)",
)

#: 5-point template of the 160x160 chip: the mean MTCNN landmark position inside
#: the MTCNN box (margin 0, the crop facenet-pytorch resizes to 160 px for this
#: network), measured on the 363 photos of ../shared/data/faces and mirrored to
#: be left-right symmetric. Order: left eye, right eye, nose, mouth left/right.
FACENET_160 = (
    (43.6, 61.8),
    (116.4, 61.8),
    (80.0, 93.9),
    (47.2, 120.0),
    (112.8, 120.0),
)

_HINT = (
    "pass a state-dict file of facenet_pytorch.InceptionResnetV1, e.g. "
    "--recognizer facenet:/path/to/20180402-114759-vggface2.pt "
    "(github.com/timesler/facenet-pytorch releases)"
)


class FaceNet(Recognizer):
    """FaceNet Inception-ResNet-v1 with differentiable 5-point alignment.

    Parameters
    ----------
    net : facenet_pytorch.InceptionResnetV1
        Built with ``classify=False``: its output is L2-normalised.
    source : str
        Where the weights came from (recorded in ``cfg.source``).

    Shape:
        - crops: :math:`(B, 3, H, W)` float in [0, 1], RGB.
        - landmarks: :math:`(B, 5, 2)` ``(x, y)`` crop pixels, MTCNN order.
        - chips: :math:`(B, 3, 160, 160)` float in [0, 1].
        - output: :math:`(B, 512)` unit-length descriptors (euclidean metric).
    """

    def __init__(self, net: torch.nn.Module, *, source: str = ""):
        super().__init__()
        self.net = net.eval()
        self.net.requires_grad_(False)
        self.cfg = replace(DEFAULT_CFG, source=source)
        self.register_buffer("template", torch.tensor(FACENET_160, dtype=torch.float32))

    def align(self, crops: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        check_shape(crops, ["B", 3, "H", "W"], "crops")
        check_shape(landmarks, [crops.shape[0], 5, 2], "landmarks")
        return align.align_to_template(crops, landmarks, self.template, self.cfg.input_size)

    def embed_chips(self, chips: torch.Tensor) -> torch.Tensor:
        check_shape(chips, ["B", 3, self.cfg.input_size, self.cfg.input_size], "chips")
        # facenet-pytorch's fixed_image_standardization, on [0, 1] input.
        return self.net((chips * 255.0 - 127.5) / 128.0)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelError(f"FaceNet weights not found; {_HINT}", path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as ex:
        first = str(ex).strip().splitlines()[0] if str(ex).strip() else type(ex).__name__
        raise ModelError(f"not a readable PyTorch state dict ({first}); {_HINT}", path) from ex
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # training checkpoints wrap it
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"the file holds a {type(obj).__name__}, not a state dict of tensors; {_HINT}", path)
    return obj


def load_facenet(path: str | Path) -> FaceNet:
    """Build :class:`FaceNet` from a state-dict file.

    The classifier (``logits.*``) of the published checkpoints is dropped:
    only the 512-D embedding is used.

    Raises
    ------
    ModelError
        Missing or unreadable file, or tensors that do not fit
        InceptionResnetV1 (names or shapes), with the path and a hint.
    """
    from facenet_pytorch import InceptionResnetV1

    path = Path(path).expanduser()
    state = {k.removeprefix("module."): v for k, v in _read_state_dict(path).items()}
    state = {k: v for k, v in state.items() if not k.startswith("logits.")}
    net = InceptionResnetV1(pretrained=None, classify=False)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        raise ModelError(f"not an InceptionResnetV1 state dict: {', '.join(parts)}; {_HINT}", path)
    net.load_state_dict(state)
    return FaceNet(net, source=str(path.resolve()))


@register_recognizer(
    "facenet",
    "FaceNet Inception-ResNet-v1 (facenet-pytorch state dict): 160 px chips, 512-D, euclidean",
    needs_path=True,
)
def facenet(path: str | None, device: str = "cpu") -> FaceNet:
    if path is None:
        raise ModelError(f"FaceNet weights are not bundled; {_HINT}")
    return load_facenet(path).to(device)
