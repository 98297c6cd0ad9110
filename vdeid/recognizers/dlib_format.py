"""Reader for dlib's serialized DNN files (``dlib_face_recognition_resnet_model_v1.dat``,
``mmod_human_face_detector.dat``).

The byte format is described in ``docs/dlib-resnet-format.md`` of the project's
shared documents; in short (dlib ``serialize.h``, ``dnn/core.h``):

* integers are a control byte (low nibble = byte count, bit 0x80 = sign)
  followed by the little-endian magnitude;
* floats are two integers, mantissa and exponent (value = m · 2**e);
* tensors are ``version(2), n, k, nr, nc`` then raw float32 little-endian data;
* a network is the loss record, a *prelude* of one version integer per node
  (outermost first), the input layer, then one *body* per computational layer
  in forward (innermost-first) order.

The reader returns the flat list of layers in forward order; mapping them
onto a PyTorch module is :mod:`vdeid.recognizers.dlib_resnet`'s job.

It also reads dlib's ``shape_predictor`` files (the ensemble-of-regression-
trees landmark model, ``shape_predictor_5_face_landmarks.dat``); the predictor
itself is :mod:`vdeid.recognizers.dlib_landmarks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError

__all__ = [
    "DlibLayer",
    "DlibNetwork",
    "ShapePredictorModel",
    "read_dlib_network",
    "parse_dlib_network",
    "read_shape_predictor",
    "parse_shape_predictor",
]

# float_details exponents reserved for non-finite values.
_SPECIAL_EXPONENTS = {32000: np.inf, 32001: -np.inf, 32002: np.nan}


@dataclass
class DlibLayer:
    """One computational layer of a dlib network.

    Attributes
    ----------
    kind : str
        ``"con"``, ``"affine"``, ``"relu"``, ``"max_pool"``, ``"avg_pool"``,
        ``"add_prev"`` or ``"fc"``.
    type_string : str
        The record's type string in the file (``"con_4"``, ``"affine_"`` …).
    arrays : dict of str to ndarray
        float32 parameters: ``weight`` (F, C, KH, KW) and ``bias`` (F,) for
        ``con``; ``gamma``, ``beta`` (C,) for ``affine``; ``weight`` (O, I)
        (PyTorch ``Linear`` layout) and optional ``bias`` (O,) for ``fc``.
    options : dict
        Geometry: ``kernel``, ``stride``, ``padding`` as ``(y, x)`` tuples for
        convolutions and pools (a ``(0, 0)`` pool kernel means "whole
        input"); ``mode`` for affine; ``disabled`` where the record has it.
    """

    kind: str
    type_string: str
    arrays: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)


@dataclass
class DlibNetwork:
    """A parsed dlib network.

    Attributes
    ----------
    loss : str
        The loss record's type string (``"loss_metric_2"``, ``"loss_mmod_"``).
    loss_options : dict
        ``margin`` and ``distance_threshold`` of a metric loss; for dlib's
        max-margin object detector (``loss_mmod_``): ``detector_windows``
        (list of ``(width, height, label)``), ``nms_iou`` and
        ``nms_covered`` (its non-maximum suppression thresholds).
    input_type : str
        ``"input_rgb_image_sized"``, ``"input_rgb_image"`` or
        ``"input_rgb_image_pyramid"``.
    input_mean : ndarray of shape (3,), float64
        Per-channel R, G, B means subtracted from uint8 pixels.
    input_size : tuple of int or None
        ``(rows, cols)`` the input must have; None for unsized inputs.
    prelude : list of int
        The node version integers, outermost first (2 = layer, 1 = tag/skip,
        3 = input-adjacent layer).
    layers : list of DlibLayer
        Computational layers in forward order.
    input_options : dict
        ``pyramid_padding`` and ``pyramid_outer_padding`` of an image-pyramid
        input; empty otherwise.
    """

    loss: str
    loss_options: dict
    input_type: str
    input_mean: np.ndarray
    input_size: tuple[int, int] | None
    prelude: list[int]
    layers: list[DlibLayer]
    input_options: dict = field(default_factory=dict)


class _Reader:
    """Sequential decoder of dlib's serialization primitives over a bytes buffer."""

    def __init__(self, data: bytes, path: str):
        self.data = bytes(data)
        self.pos = 0
        self.path = path

    def fail(self, what: str) -> ModelError:
        return ModelError(
            f"not a valid dlib network file ({what} at byte {self.pos}); "
            "pass the original dlib_face_recognition_resnet_model_v1.dat",
            self.path,
        )

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"file ends early, {n} more bytes expected")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        control = self.take(1)[0]
        if control & 0x70:
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        n = control & 0x0F
        if not 1 <= n <= 8:
            raise self.fail(f"bad integer length {n}")
        value = int.from_bytes(self.take(n), "little")
        return -value if control & 0x80 else value

    def boolean(self) -> bool:
        byte = self.take(1)[0]
        if byte not in (0x30, 0x31):
            raise self.fail(f"bad bool byte 0x{byte:02x}")
        return byte == 0x31

    def string(self) -> str:
        n = self.integer()
        if n < 0 or n > 1 << 20:
            raise self.fail(f"bad string length {n}")
        return bytes(self.take(n)).decode("latin-1")

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        if exponent in _SPECIAL_EXPONENTS:
            return float(_SPECIAL_EXPONENTS[exponent])
        return math.ldexp(mantissa, exponent)

    def reals(self, count: int) -> list[float]:
        """``count`` consecutive float_details values (an inlined :meth:`real` loop, for speed)."""
        data, pos, out = self.data, self.pos, []
        try:
            for _ in range(count):
                c = data[pos]
                n = c & 0x0F
                m = int.from_bytes(data[pos + 1 : pos + 1 + n], "little")
                pos += 1 + n
                c2 = data[pos]
                n2 = c2 & 0x0F
                e = int.from_bytes(data[pos + 1 : pos + 1 + n2], "little")
                pos += 1 + n2
                if (c | c2) & 0x70 or not (1 <= n <= 8 and 1 <= n2 <= 8):
                    raise self.fail("bad float encoding")
                e = -e if c2 & 0x80 else e
                if e in _SPECIAL_EXPONENTS:
                    out.append(float(_SPECIAL_EXPONENTS[e]))
                else:
                    out.append(math.ldexp(-m if c & 0x80 else m, e))
        except IndexError:
            raise self.fail("file ends early") from None
        self.pos = pos
        return out

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise self.fail(f"unknown tensor version {version}")
        shape = tuple(self.integer() for _ in range(4))
        if min(shape) < 0:
            raise self.fail(f"negative tensor shape {shape}")
        count = int(np.prod(shape))
        values = np.frombuffer(self.take(4 * count), dtype="<f4", count=count)
        return values.astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, ...]:
        version = self.integer()
        if version != 1:
            raise self.fail(f"unknown alias_tensor version {version}")
        return tuple(self.integer() for _ in range(4))

    def peek_integer(self) -> tuple[int, int]:
        """Next integer and the position before it (to rewind)."""
        start = self.pos
        return self.integer(), start


def _split_params(reader: _Reader, params: np.ndarray, *aliases) -> list[np.ndarray]:
    """Slice consecutive alias views (weights first, then biases) out of ``params``."""
    flat = params.reshape(-1)
    out, offset = [], 0
    for shape in aliases:
        size = int(np.prod(shape))
        if offset + size > flat.size:
            raise reader.fail(f"alias {shape} overruns its params tensor of {flat.size} values")
        out.append(flat[offset : offset + size].reshape(shape))
        offset += size
    return out


def _read_con(reader: _Reader, type_string: str) -> DlibLayer:
    params = reader.tensor()
    num_filters = reader.integer()
    kernel = (reader.integer(), reader.integer())
    stride = (reader.integer(), reader.integer())
    padding = (reader.integer(), reader.integer())
    filters = reader.alias()
    biases = reader.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        reader.real()
    use_bias = True
    use_relu = False
    if type_string in ("con_5", "con_6"):
        use_bias = reader.boolean()
    if type_string == "con_6":
        use_relu = reader.boolean()
    if filters[0] != num_filters or filters[2:] != kernel:
        raise reader.fail(f"convolution filters {filters} disagree with {num_filters} x {kernel}")
    shapes = [filters] + ([biases] if use_bias and int(np.prod(biases)) else [])
    parts = _split_params(reader, params, *shapes)
    arrays = {"weight": parts[0]}
    if len(parts) > 1:
        arrays["bias"] = parts[1].reshape(-1)
    return DlibLayer(
        "con",
        type_string,
        arrays,
        {"kernel": kernel, "stride": stride, "padding": padding, "relu": use_relu},
    )


def _read_affine(reader: _Reader, type_string: str) -> DlibLayer:
    params = reader.tensor()
    gamma_shape = reader.alias()
    beta_shape = reader.alias()
    mode = reader.integer()
    disabled = reader.boolean() if type_string == "affine_2" else False
    gamma, beta = _split_params(reader, params, gamma_shape, beta_shape)
    if mode != 0:
        raise reader.fail("fully-connected-mode affine layers are not supported")
    return DlibLayer(
        "affine",
        type_string,
        {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)},
        {"mode": mode, "disabled": disabled},
    )


def _read_bn(reader: _Reader, type_string: str) -> DlibLayer:
    # A training-time batch norm where inference expects affine: fold the
    # running statistics in, as dlib does when it loads such a file.
    params = reader.tensor()
    gamma_shape = reader.alias()
    beta_shape = reader.alias()
    reader.tensor()  # means of the last batch
    reader.tensor()  # invstds of the last batch
    running_means = reader.tensor().reshape(-1).astype(np.float64)
    running_variances = reader.tensor().reshape(-1).astype(np.float64)
    reader.integer()  # num_updates
    reader.integer()  # running_stats_window_size
    for _ in range(4):
        reader.real()
    eps = reader.real()
    gamma, beta = _split_params(reader, params, gamma_shape, beta_shape)
    if type_string != "bn_con2":
        raise reader.fail("fully-connected-mode batch norm is not supported")
    g = gamma.reshape(-1) / np.sqrt(running_variances + eps)
    b = beta.reshape(-1) - g * running_means
    return DlibLayer(
        "affine", type_string, {"gamma": g.astype(np.float32), "beta": b.astype(np.float32)}, {"mode": 0}
    )


def _read_pool(reader: _Reader, type_string: str) -> DlibLayer:
    kernel = (reader.integer(), reader.integer())
    stride = (reader.integer(), reader.integer())
    padding = (reader.integer(), reader.integer())
    kind = "max_pool" if type_string.startswith("max") else "avg_pool"
    return DlibLayer(kind, type_string, {}, {"kernel": kernel, "stride": stride, "padding": padding})


def _read_fc(reader: _Reader, type_string: str) -> DlibLayer:
    num_outputs = reader.integer()
    num_inputs = reader.integer()
    params = reader.tensor()
    weights_shape = reader.alias()
    biases_shape = reader.alias()
    bias_mode = reader.integer()
    for _ in range(4):
        reader.real()
    if type_string == "fc_3":
        reader.boolean()  # use_bias; bias_mode already says the same
    if weights_shape[:2] != (num_inputs, num_outputs):
        raise reader.fail(f"fc weights {weights_shape} disagree with {num_inputs} -> {num_outputs}")
    shapes = [weights_shape] + ([biases_shape] if bias_mode == 0 else [])
    parts = _split_params(reader, params, *shapes)
    # dlib computes x @ W with W (inputs, outputs); torch's Linear stores W.T.
    arrays = {"weight": np.ascontiguousarray(parts[0].reshape(num_inputs, num_outputs).T)}
    if len(parts) > 1:
        arrays["bias"] = parts[1].reshape(-1)
    return DlibLayer("fc", type_string, arrays, {})


def _read_relu(reader: _Reader, type_string: str) -> DlibLayer:
    disabled = reader.boolean() if type_string == "relu_2" else False
    return DlibLayer("relu", type_string, {}, {"disabled": disabled})


def _read_add_prev(reader: _Reader, type_string: str) -> DlibLayer:
    return DlibLayer("add_prev", type_string)


_LAYER_READERS = {
    "con_4": _read_con,
    "con_5": _read_con,
    "con_6": _read_con,
    "affine_": _read_affine,
    "affine_2": _read_affine,
    "bn_con2": _read_bn,
    "bn_fc2": _read_bn,
    "relu_": _read_relu,
    "relu_2": _read_relu,
    "max_pool_2": _read_pool,
    "avg_pool_2": _read_pool,
    "add_prev_": _read_add_prev,
    "fc_2": _read_fc,
    "fc_3": _read_fc,
}


def _read_box_overlap(reader: _Reader) -> tuple[float, float]:
    # dlib test_box_overlap: iou_thresh, percent_covered_thresh.
    return reader.real(), reader.real()


def _read_mmod_options(reader: _Reader) -> dict:
    version = reader.integer()
    if not 1 <= version <= 4:
        raise reader.fail(f"unknown mmod_options version {version}")
    if version == 1:
        windows = [(reader.integer(), reader.integer(), "")]
    else:
        windows = []
        for _ in range(reader.integer()):
            # detector_window_details: version, width, height, label
            if reader.integer() != 1:
                raise reader.fail("unknown detector_window_details version")
            windows.append((reader.integer(), reader.integer(), reader.string()))
    for _ in range(3):  # loss per false alarm / missed target, truth match IoU: training only
        reader.real()
    nms_iou, nms_covered = _read_box_overlap(reader)
    _read_box_overlap(reader)  # overlaps_ignore: training only
    if version >= 3 and reader.integer() != 1:
        raise reader.fail("mmod networks without an image pyramid are not supported")
    if version >= 4 and reader.boolean():
        raise reader.fail("mmod networks with bounding-box regression are not supported")
    if version >= 4:
        reader.real()  # bbr_lambda
    return {"detector_windows": windows, "nms_iou": nms_iou, "nms_covered": nms_covered}


def _read_loss(reader: _Reader) -> tuple[str, dict]:
    version = reader.integer()
    if version != 1:
        raise reader.fail(f"unknown loss-layer version {version}")
    loss = reader.string()
    if loss == "loss_metric_2":
        return loss, {"margin": reader.real(), "distance_threshold": reader.real()}
    if loss == "loss_metric_":
        return loss, {"margin": 0.1, "distance_threshold": 0.75}
    if loss == "loss_mmod_":
        return loss, _read_mmod_options(reader)
    raise reader.fail(f"unsupported loss {loss!r} (expected a metric-learning or mmod network)")


def _read_input(reader: _Reader) -> tuple[str, np.ndarray, tuple[int, int] | None, dict]:
    kind = reader.string()
    known = ("input_rgb_image_sized", "input_rgb_image", "input_rgb_image_pyramid", "input_rgb_image_pyramid2")
    if kind not in known:
        raise reader.fail(f"unsupported input layer {kind!r}")
    mean = np.array([reader.real(), reader.real(), reader.real()], dtype=np.float64)
    size = (reader.integer(), reader.integer()) if kind == "input_rgb_image_sized" else None
    options = {}
    if kind.startswith("input_rgb_image_pyramid"):
        # Version 1 of the record predates the padding fields; dlib's defaults apply.
        padding = (reader.integer(), reader.integer()) if kind.endswith("2") else (10, 11)
        options = {"pyramid_padding": padding[0], "pyramid_outer_padding": padding[1]}
        kind = "input_rgb_image_pyramid"
    return kind, mean, size, options


def parse_dlib_network(data: bytes, path: str = "<bytes>") -> DlibNetwork:
    """Decode a serialized dlib network (metric learning or mmod object detection).

    Parameters
    ----------
    data : bytes
        The whole file.
    path : str
        Shown in error messages.

    Returns
    -------
    DlibNetwork

    Raises
    ------
    ModelError
        The bytes are not a dlib network of the supported layer types, or
        the file is truncated or has trailing bytes.
    """
    reader = _Reader(data, path)
    loss, loss_options = _read_loss(reader)

    # The prelude has no length: read versions until the input layer's
    # type-string length (21, 15 or 23) shows up, then rewind over it.
    prelude = []
    while True:
        value, start = reader.peek_integer()
        if value not in (1, 2, 3):
            reader.pos = start
            break
        prelude.append(value)
    if not prelude or prelude[-1] not in (2, 3):
        raise reader.fail("network prelude does not end with an input-adjacent layer")
    input_type, input_mean, input_size, input_options = _read_input(reader)

    body_versions = [v for v in reversed(prelude) if v in (2, 3)]
    layers = []
    for index, version in enumerate(body_versions):
        type_string = reader.string()
        read = _LAYER_READERS.get(type_string)
        if read is None:
            raise reader.fail(f"unsupported layer type {type_string!r}")
        layer = read(reader, type_string)
        for _ in range(3):  # setup-called / gradient-stale / in-place flags
            reader.boolean()
        for _ in range(3):  # x_grad, cached_output, params_grad (or grad_final)
            reader.tensor()
        if index == 0 and version == 3:
            reader.integer()  # sample_expansion_factor
        layers.append(layer)
    if reader.pos != len(reader.data):
        raise reader.fail(f"{len(reader.data) - reader.pos} unexpected trailing bytes")
    return DlibNetwork(loss, loss_options, input_type, input_mean, input_size, prelude, layers, input_options)


def read_dlib_network(path: str | Path) -> DlibNetwork:
    """Read and decode a dlib network file (see :func:`parse_dlib_network`).

    Raises
    ------
    ModelError
        The file cannot be read or is not a supported dlib network.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as ex:
        raise ModelError(f"cannot read dlib model file: {ex.strerror or ex}", path) from ex
    return parse_dlib_network(data, str(path))


@dataclass
class ShapePredictorModel:
    """A parsed dlib ``shape_predictor`` (Kazemi & Sullivan's regression-tree cascade).

    Attributes
    ----------
    initial_shape : ndarray of shape (P, 2), float32
        Mean shape in the detection box's unit square.
    split_idx : ndarray of shape (L, T, N, 2), int64
        Per cascade level and tree, the N split nodes (breadth-first): the two
        feature pixels compared.
    split_thresh : ndarray of shape (L, T, N), float32
        Go to the left child (``2i + 1``) when
        ``feature[idx1] - feature[idx2] > thresh``, else to ``2i + 2``.
    leaf_values : ndarray of shape (L, T, N + 1, P, 2), float32
        Shape increments stored in the leaves.
    anchor_idx : ndarray of shape (L, F), int64
        Landmark each feature pixel is anchored to.
    deltas : ndarray of shape (L, F, 2), float32
        Offset of each feature pixel from its anchor, in mean-shape units.
    """

    initial_shape: np.ndarray
    split_idx: np.ndarray
    split_thresh: np.ndarray
    leaf_values: np.ndarray
    anchor_idx: np.ndarray
    deltas: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The fields as a dict (for ``np.savez``)."""
        return dict(self.__dict__)


def _read_column(reader: _Reader) -> np.ndarray:
    # dlib matrix: -rows, -cols, then the values row by row.
    rows, cols = -reader.integer(), -reader.integer()
    if rows < 0 or cols != 1:
        raise reader.fail(f"expected a column vector, got {rows}x{cols}")
    return np.array(reader.reals(rows), dtype=np.float32)


def parse_shape_predictor(data: bytes, path: str = "<bytes>") -> ShapePredictorModel:
    """Decode a serialized dlib ``shape_predictor`` (all trees must have equal depth).

    Layout (dlib ``shape_predictor.h``): version 1; the initial shape as a
    column matrix; ``forests`` (vector of levels, each a vector of trees; a
    tree is its splits ``(idx1, idx2, thresh)`` then its leaf columns);
    ``anchor_idx``; ``deltas`` (vectors of ``(x, y)``).

    Raises
    ------
    ModelError
        The bytes are not a shape predictor.
    """
    reader = _Reader(data, path)
    version = reader.integer()
    if version != 1:
        raise reader.fail(f"unknown shape_predictor version {version}")
    initial = _read_column(reader)
    split_idx, split_thresh, leaf_values = [], [], []
    for _ in range(reader.integer()):
        level_idx, level_thresh, level_leaves = [], [], []
        for _ in range(reader.integer()):
            idx, thresh = [], []
            for _ in range(reader.integer()):
                idx.append((reader.integer(), reader.integer()))
                thresh.append(reader.real())
            leaves = [_read_column(reader) for _ in range(reader.integer())]
            if len(leaves) != len(idx) + 1:
                raise reader.fail("a regression tree's leaf count is not its split count + 1")
            level_idx.append(idx)
            level_thresh.append(thresh)
            level_leaves.append(leaves)
        split_idx.append(level_idx)
        split_thresh.append(level_thresh)
        leaf_values.append(level_leaves)
    anchors = [[reader.integer() for _ in range(reader.integer())] for _ in range(reader.integer())]
    deltas = [reader.reals(2 * reader.integer()) for _ in range(reader.integer())]
    if reader.pos != len(reader.data):
        raise reader.fail(f"{len(reader.data) - reader.pos} unexpected trailing bytes")
    points = len(initial) // 2
    try:
        model = ShapePredictorModel(
            initial.reshape(points, 2),
            np.array(split_idx, dtype=np.int64),
            np.array(split_thresh, dtype=np.float32),
            np.array(leaf_values, dtype=np.float32),
            np.array(anchors, dtype=np.int64),
            np.array(deltas, dtype=np.float32),
        )
        model.leaf_values = model.leaf_values.reshape(*model.leaf_values.shape[:3], points, 2)
        model.deltas = model.deltas.reshape(len(deltas), -1, 2)
    except ValueError as ex:  # ragged: trees of different depths or sizes
        raise ModelError(f"unsupported shape predictor layout ({ex})", path) from ex
    if model.split_idx.ndim != 4 or len(model.anchor_idx) != len(split_idx):
        raise ModelError("unsupported shape predictor layout", path)
    return model


def read_shape_predictor(path: str | Path) -> ShapePredictorModel:
    """Read and decode a dlib ``shape_predictor`` file (see :func:`parse_shape_predictor`).

    Raises
    ------
    ModelError
        The file cannot be read or is not a shape predictor.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as ex:
        raise ModelError(f"cannot read dlib shape predictor: {ex.strerror or ex}", path) from ex
    return parse_shape_predictor(data, str(path))


def packaged_model_path(filename: str, requirement: str) -> Path:
    """``filename`` in the ``face_recognition_models`` package's ``models`` folder.

    Parameters
    ----------
    filename : str
        A ``.dat`` file the package ships.
    requirement : str
        What needs it, for the error: "the dlib recogniser needs ...".

    Raises
    ------
    ModelError
        The package is not installed.
    """
    try:
        import face_recognition_models
    except ImportError as ex:
        raise ModelError(requirement) from ex
    return Path(face_recognition_models.__file__).resolve().parent / "models" / filename

