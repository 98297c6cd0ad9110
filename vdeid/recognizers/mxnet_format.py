"""Read an MXNet checkpoint (``NAME-symbol.json`` + ``NAME-0000.params``) into PyTorch.

No MXNet is needed: :func:`read_params` parses the binary NDArray list and
:class:`SymbolNet` interprets the JSON graph with PyTorch layers. Only the
ops that MobileFace Identification V2 uses are supported; any other op
raises :class:`~vdeid.errors.ModelError` naming it. The format facts are in
``docs/models.md`` (section *MXNet checkpoints*).
"""

from __future__ import annotations

import ast
import json
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError

_LIST_MAGIC = 0x112
_ARRAY_MAGICS = (0xF993FAC9, 0xF993FACA)  # NDArray V2, V3
_DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8, 6: np.int64}

#: Ops :class:`SymbolNet` can run.
SUPPORTED_OPS = (
    "Convolution",
    "BatchNorm",
    "_maximum_scalar",
    "_minimum_scalar",
    "_plus_scalar",
    "_minus_scalar",
    "_mul_scalar",
    "elemwise_add",
    "Flatten",
    "FullyConnected",
    "Activation",
)


class _Reader:
    """Little-endian cursor over a bytes buffer that reports truncation as ModelError."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ModelError("MXNet .params file ends early (truncated or not a .params file)", self.path)
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def array(self, dtype, count: int) -> np.ndarray:
        nbytes = np.dtype(dtype).itemsize * count
        if self.pos + nbytes > len(self.data):
            raise ModelError("MXNet .params file ends inside an array (truncated)", self.path)
        out = np.frombuffer(self.data, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=self.pos)
        self.pos += nbytes
        return out


def read_params(path: str | Path) -> dict[str, np.ndarray]:
    """Read the arrays of an MXNet ``.params`` file.

    Parameters
    ----------
    path : str or Path
        The ``NAME-0000.params`` file.

    Returns
    -------
    dict of str to ndarray
        Array per name, with the ``arg:``/``aux:`` prefix dropped so names
        match the graph's nodes (``conv1_weight``, ``bn1_moving_mean``).

    Raises
    ------
    ModelError
        Missing file, wrong magic number, truncated data, sparse storage or
        an unknown dtype.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as ex:
        raise ModelError(f"cannot read MXNet weights ({ex.strerror})", path) from ex
    r = _Reader(data, path)
    magic, _reserved, count = r.take("QQQ")
    if magic != _LIST_MAGIC:
        raise ModelError(f"not an MXNet .params file (magic {magic:#x}, expected {_LIST_MAGIC:#x})", path)
    arrays = []
    for i in range(count):
        array_magic = r.take("I")
        if array_magic not in _ARRAY_MAGICS:
            raise ModelError(f"array {i}: unknown NDArray magic {array_magic:#x}", path)
        storage = r.take("i")
        if storage != 0:
            raise ModelError(f"array {i}: sparse storage type {storage} is not supported", path)
        ndim = r.take("I")
        shape = tuple(int(d) for d in (r.take("q") for _ in range(ndim)))
        r.take("ii")  # device type and id: irrelevant once loaded
        flag = r.take("i")
        if flag not in _DTYPES:
            raise ModelError(f"array {i}: unknown dtype flag {flag}", path)
        arrays.append(r.array(_DTYPES[flag], int(np.prod(shape))).reshape(shape).copy())
    n_names = r.take("Q")
    if n_names != count:
        raise ModelError(f"{count} arrays but {n_names} names", path)
    out = {}
    for array in arrays:
        length = r.take("Q")
        if r.pos + length > len(data):
            raise ModelError("MXNet .params file ends inside a name (truncated)", path)
        name = data[r.pos : r.pos + length].decode("utf-8")
        r.pos += length
        out[name.split(":", 1)[1] if ":" in name else name] = array
    if r.pos != len(data):
        raise ModelError(f"{len(data) - r.pos} unexpected bytes after the last name", path)
    return out


def read_symbol(path: str | Path) -> dict:
    """Read an MXNet ``-symbol.json`` graph.

    Returns
    -------
    dict
        ``{"nodes": [...], "heads": [[i, 0, 0], ...]}``; each node has ``op``,
        ``name``, ``inputs`` and ``attrs`` (older files' ``attr`` is renamed).

    Raises
    ------
    ModelError
        Missing file, invalid JSON, or no ``nodes``/``heads``.
    """
    path = Path(path)
    try:
        graph = json.loads(path.read_text(encoding="utf-8"))
    except OSError as ex:
        raise ModelError(f"cannot read MXNet graph ({ex.strerror})", path) from ex
    except (ValueError, UnicodeDecodeError) as ex:
        raise ModelError(f"not a valid MXNet -symbol.json file ({ex})", path) from ex
    if not isinstance(graph, dict) or "nodes" not in graph or "heads" not in graph:
        raise ModelError("not an MXNet -symbol.json file (no 'nodes'/'heads')", path)
    for node in graph["nodes"]:
        node["attrs"] = node.get("attrs", node.get("attr")) or {}
    return graph


def _tuple(text: str, default: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(v) for v in ast.literal_eval(text)) if text else default


def _flag(text: str | None, default: bool) -> bool:
    return default if text is None else text.strip().lower() in ("true", "1")


class _BatchNorm(nn.Module):
    """MXNet BatchNorm at inference (any rank, channel axis 1)."""

    def __init__(self, mean, var, gamma, beta, eps: float):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("var", var)
        self.register_buffer("weight", gamma)
        self.register_buffer("bias", beta)
        self.eps = eps

    def forward(self, x):
        return F.batch_norm(x, self.mean, self.var, self.weight, self.bias, False, 0.0, self.eps)


class _Scalar(nn.Module):
    def __init__(self, op: str, scalar: float):
        super().__init__()
        self.op, self.scalar = op, scalar

    def forward(self, x):
        if self.op == "_maximum_scalar":
            return x.clamp(min=self.scalar)
        if self.op == "_minimum_scalar":
            return x.clamp(max=self.scalar)
        if self.op == "_plus_scalar":
            return x + self.scalar
        if self.op == "_minus_scalar":
            return x - self.scalar
        return x * self.scalar


class _Activation(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, x):
        return {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[self.kind](x)


class SymbolNet(nn.Module):
    """An MXNet symbol graph run with PyTorch layers.

    Parameters
    ----------
    graph : dict
        Output of :func:`read_symbol`.
    params : dict of str to ndarray
        Output of :func:`read_params`.
    source : str
        Shown in error messages (the checkpoint path).

    Shape:
        - input: :math:`(B, C, H, W)` float, in whatever range the graph
          expects (MobileFace V2: RGB 0..255; it normalises itself).
        - output: the graph's first head, e.g. :math:`(B, 256)`.

    Raises
    ------
    ModelError
        An op outside :data:`SUPPORTED_OPS`, or a parameter the graph names
        that the ``.params`` file lacks.
    """

    def __init__(self, graph: dict, params: dict[str, np.ndarray], *, source: str = ""):
        super().__init__()
        nodes = graph["nodes"]
        self._plan: list[tuple[int, str, list[int]]] = []  # (node index, layer key, input node indices)
        self.layers = nn.ModuleDict()
        self._input_index = None

        def param(name: str) -> torch.Tensor:
            if name not in params:
                raise ModelError(f"the weights lack {name!r}, which the graph needs", source)
            return torch.from_numpy(np.ascontiguousarray(params[name], dtype=np.float32))

        for i, node in enumerate(nodes):
            op, attrs = node["op"], node["attrs"]
            if op == "null":
                if node["name"] not in params and self._input_index is None:
                    self._input_index = i
                continue
            if op not in SUPPORTED_OPS:
                raise ModelError(f"MXNet op {op!r} (node {node['name']!r}) is not supported", source)
            inputs = [int(entry[0]) for entry in node["inputs"]]
            arg_names = [nodes[j]["name"] for j in inputs]
            self._plan.append((i, f"n{i}", inputs[:1] if op not in ("elemwise_add",) else inputs))
            self.layers[f"n{i}"] = self._build(op, attrs, arg_names, param)
        if self._input_index is None:
            raise ModelError("the graph has no data input", source)
        self._output_index = int(graph["heads"][0][0])

    @staticmethod
    def _build(op: str, attrs: dict, arg_names: list[str], param) -> nn.Module:
        if op == "Convolution":
            weight = param(arg_names[1])
            no_bias = _flag(attrs.get("no_bias"), False)
            kernel = _tuple(attrs.get("kernel", ""), (1, 1))
            conv = nn.Conv2d(
                weight.shape[1] * int(attrs.get("num_group", 1)),
                int(attrs["num_filter"]),
                kernel,
                stride=_tuple(attrs.get("stride", ""), (1, 1)),
                padding=_tuple(attrs.get("pad", ""), (0, 0)),
                dilation=_tuple(attrs.get("dilate", ""), (1, 1)),
                groups=int(attrs.get("num_group", 1)),
                bias=not no_bias,
            )
            conv.weight.data.copy_(weight)
            if not no_bias:
                conv.bias.data.copy_(param(arg_names[2]))
            return conv
        if op == "BatchNorm":
            gamma, beta = param(arg_names[1]), param(arg_names[2])
            if _flag(attrs.get("fix_gamma"), True):
                gamma = torch.ones_like(gamma)  # MXNet ignores the stored gamma then
            return _BatchNorm(param(arg_names[3]), param(arg_names[4]), gamma, beta, float(attrs.get("eps", 0.001)))
        if op == "FullyConnected":
            weight = param(arg_names[1])
            no_bias = _flag(attrs.get("no_bias"), False)
            fc = nn.Linear(weight.shape[1], weight.shape[0], bias=not no_bias)
            fc.weight.data.copy_(weight)
            if not no_bias:
                fc.bias.data.copy_(param(arg_names[2]))
            return nn.Sequential(nn.Flatten(), fc)
        if op == "Flatten":
            return nn.Flatten()
        if op == "elemwise_add":
            return nn.Identity()  # the sum is done in forward
        if op == "Activation":
            return _Activation(attrs.get("act_type", "relu"))
        return _Scalar(op, float(attrs["scalar"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[int, torch.Tensor] = {self._input_index: x}
        for index, key, inputs in self._plan:
            if len(inputs) == 2:
                values[index] = values[inputs[0]] + values[inputs[1]]
            else:
                values[index] = self.layers[key](values[inputs[0]])
        return values[self._output_index]


def load_checkpoint(symbol_path: str | Path, params_path: str | Path) -> SymbolNet:
    """Build a :class:`SymbolNet` from a ``-symbol.json`` and a ``.params`` file (eval mode, frozen)."""
    net = SymbolNet(read_symbol(symbol_path), read_params(params_path), source=str(params_path))
    net.requires_grad_(False)
    return net.eval()
