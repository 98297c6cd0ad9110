"""MXNet checkpoint reading and the MobileFace V2 recogniser."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest
import torch

from vdeid.errors import ModelError
from vdeid.faces import expand_boxes
from vdeid.recognizers.mxnet_format import SymbolNet, read_params, read_symbol

PREFIX = "MobileFace_Identification_V2"


def write_params(path, arrays: dict[str, np.ndarray], *, magic: int = 0xF993FAC9) -> None:
    """Write float32 arrays in MXNet's .params layout (the reader's inverse)."""
    out = [struct.pack("<QQQ", 0x112, 0, len(arrays))]
    for a in arrays.values():
        a = np.asarray(a, np.float32)
        out.append(struct.pack("<IiI", magic, 0, a.ndim) + struct.pack(f"<{a.ndim}q", *a.shape))
        out.append(struct.pack("<iii", 1, 0, 0) + a.tobytes())
    out.append(struct.pack("<Q", len(arrays)))
    for name in arrays:
        out.append(struct.pack("<Q", len(name)) + name.encode())
    path.write_bytes(b"".join(out))


@pytest.fixture(scope="module")
def model_dir(shared_dir):
    return shared_dir / "models" / "mobileface_v2"


@pytest.fixture(scope="module")
def mobileface(model_dir):
    from vdeid.recognizers.mobileface import load_mobileface

    return load_mobileface(model_dir)


@pytest.fixture(scope="module")
def detector():
    from vdeid.detect import FaceDetector

    return FaceDetector()


# --- .params / -symbol.json parsing ---------------------------------------------------------


@pytest.mark.parametrize("magic", [0xF993FAC9, 0xF993FACA])
def test_read_params_round_trip(tmp_path, magic):
    rng = np.random.RandomState(0)
    arrays = {"arg:w": rng.randn(4, 3, 3, 3), "aux:bn_moving_var": rng.rand(4), "arg:s": rng.randn(1)}
    write_params(tmp_path / "x.params", arrays, magic=magic)
    got = read_params(tmp_path / "x.params")
    assert list(got) == ["w", "bn_moving_var", "s"]  # prefixes dropped, order kept
    for (_, want), have in zip(arrays.items(), got.values()):
        np.testing.assert_array_equal(have, want.astype(np.float32))


def test_read_params_rejects_truncated_and_foreign_files(tmp_path):
    write_params(tmp_path / "x.params", {"arg:w": np.ones((8, 8))})
    data = (tmp_path / "x.params").read_bytes()
    (tmp_path / "cut.params").write_bytes(data[: len(data) // 2])
    (tmp_path / "long.params").write_bytes(data + b"\0")
    (tmp_path / "png.params").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    for name, words in [("cut", "truncated"), ("long", "unexpected bytes"), ("png", "not an MXNet")]:
        with pytest.raises(ModelError, match=words) as info:
            read_params(tmp_path / f"{name}.params")
        assert info.value.path.endswith(f"{name}.params")


def test_read_real_params_and_symbol(model_dir):
    params = read_params(model_dir / f"{PREFIX}-0000.params")
    graph = read_symbol(model_dir / f"{PREFIX}-symbol.json")
    null_names = {n["name"] for n in graph["nodes"] if n["op"] == "null"}
    assert null_names - set(params) == {"data"}  # every parameter the graph names is in the file
    assert params["conv1_weight"].shape == (32, 3, 3, 3)
    assert params["fc5_weight"].shape[0] == 256
    assert all(np.isfinite(a).all() for a in params.values())


def _tiny_graph(fix_gamma: str | None, op: str = "BatchNorm"):
    bn_attrs = {} if fix_gamma is None else {"fix_gamma": fix_gamma}
    nodes = [
        {"op": "null", "name": "data", "inputs": []},
        {"op": "_mul_scalar", "name": "m", "attrs": {"scalar": "0.5"}, "inputs": [[0, 0, 0]]},
        {"op": "null", "name": "c_weight", "inputs": []},
        {
            "op": "Convolution",
            "name": "c",
            "attr": {"kernel": "(3, 3)", "num_filter": "2", "num_group": "2", "pad": "(1, 1)", "no_bias": "True"},
            "inputs": [[1, 0, 0], [2, 0, 0]],
        },
        {"op": "null", "name": "b_gamma", "inputs": []},
        {"op": "null", "name": "b_beta", "inputs": []},
        {"op": "null", "name": "b_moving_mean", "inputs": []},
        {"op": "null", "name": "b_moving_var", "inputs": []},
        {"op": op, "name": "b", "attrs": bn_attrs, "inputs": [[3, 0, 0], [4, 0, 0], [5, 0, 0], [6, 0, 1], [7, 0, 1]]},
        {"op": "_minimum_scalar", "name": "r", "attrs": {"scalar": "6"}, "inputs": [[8, 0, 0]]},
        {"op": "elemwise_add", "name": "a", "inputs": [[9, 0, 0], [1, 0, 0]]},
        {"op": "null", "name": "f_weight", "inputs": []},
        {"op": "null", "name": "f_bias", "inputs": []},
        {
            "op": "FullyConnected",
            "name": "f",
            "attrs": {"num_hidden": "3"},
            "inputs": [[10, 0, 0], [11, 0, 0], [12, 0, 0]],
        },
    ]
    rng = np.random.RandomState(1)
    params = {
        "c_weight": rng.randn(2, 1, 3, 3).astype(np.float32),
        "b_gamma": np.array([2.0, -3.0], np.float32),
        "b_beta": rng.randn(2).astype(np.float32),
        "b_moving_mean": rng.randn(2).astype(np.float32),
        "b_moving_var": rng.rand(2).astype(np.float32) + 0.1,
        "f_weight": rng.randn(3, 2 * 4 * 4).astype(np.float32),
        "f_bias": rng.randn(3).astype(np.float32),
    }
    return {"nodes": nodes, "heads": [[13, 0, 0]]}, params


@pytest.mark.parametrize("fix_gamma", [None, "True", "False"])
def test_symbol_net_matches_hand_computation(fix_gamma):
    graph, p = _tiny_graph(fix_gamma)
    for node in graph["nodes"]:  # what read_symbol does for old 'attr' files
        node["attrs"] = node.get("attrs", node.get("attr")) or {}
    x = torch.randn(2, 2, 4, 4)
    m = x * 0.5
    t = lambda k: torch.from_numpy(p[k])  # noqa: E731
    c = torch.nn.functional.conv2d(m, t("c_weight"), padding=1, groups=2)
    gamma = t("b_gamma") if fix_gamma == "False" else torch.ones(2)  # MXNet's default is fix_gamma=True
    b = (c - t("b_moving_mean")[:, None, None]) / torch.sqrt(t("b_moving_var")[:, None, None] + 1e-3)
    b = b * gamma[:, None, None] + t("b_beta")[:, None, None]
    want = (b.clamp(max=6) + m).flatten(1) @ t("f_weight").T + t("f_bias")
    got = SymbolNet(graph, p)(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_symbol_net_names_unsupported_op_and_missing_weight():
    graph, p = _tiny_graph(None, op="LeakyReLU")
    for node in graph["nodes"]:
        node["attrs"] = node.get("attrs", node.get("attr")) or {}
    with pytest.raises(ModelError, match="LeakyReLU"):
        SymbolNet(graph, p)
    graph, p = _tiny_graph(None)
    for node in graph["nodes"]:
        node["attrs"] = node.get("attrs", node.get("attr")) or {}
    del p["f_weight"]
    with pytest.raises(ModelError, match="f_weight"):
        SymbolNet(graph, p, source="x.params")


# --- MobileFace recogniser -----------------------------------------------------------------


def test_real_graph_runs_with_documented_shape(mobileface):
    chips = torch.rand(2, 3, 112, 112)
    with torch.no_grad():
        out = mobileface.embed_chips(chips)
    assert out.shape == (2, mobileface.cfg.embedding_dim) == (2, 256)
    assert torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])
    assert mobileface.cfg.metric == "cosine" and "MIT" in mobileface.cfg.license


def test_load_from_a_file_path_too(model_dir):
    from vdeid.recognizers.mobileface import find_checkpoint

    from_dir = find_checkpoint(model_dir)
    assert find_checkpoint(model_dir / f"{PREFIX}-symbol.json") == from_dir
    assert find_checkpoint(model_dir / f"{PREFIX}-0000.params") == from_dir
    assert find_checkpoint(model_dir / PREFIX) == from_dir


def test_missing_or_corrupt_weights_raise_model_error(tmp_path, model_dir):
    from vdeid.recognizers.mobileface import load_mobileface

    with pytest.raises(ModelError, match="MobileFace_Identification_V2-symbol.json") as info:
        load_mobileface(tmp_path / "nowhere")
    assert "nowhere" in str(info.value)
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(model_dir / f"{PREFIX}-symbol.json", broken)
    with pytest.raises(ModelError, match="params"):
        load_mobileface(broken)
    data = (model_dir / f"{PREFIX}-0000.params").read_bytes()
    (broken / f"{PREFIX}-0000.params").write_bytes(data[:100_000])
    with pytest.raises(ModelError, match="truncated") as info:
        load_mobileface(broken)
    assert info.value.path.endswith(".params")
    (broken / f"{PREFIX}-symbol.json").write_text("{not json")
    with pytest.raises(ModelError, match="symbol.json"):
        load_mobileface(broken)


def _photo_faces(paths, detector):
    from vdeid.recognizers.gallery import photo_face

    return [photo_face(p, detector) for p in paths]


def test_same_identity_is_more_similar_than_different(faces_dir, mobileface, detector):
    names = ["Tony_Blair", "Serena_Williams", "Jackie_Chan"]
    paths = [p for n in names for p in sorted((faces_dir / n).glob("lfw_*.jpg"))[:3]]
    labels = np.repeat(np.arange(len(names)), 3)
    with torch.no_grad():
        emb = torch.cat([mobileface(crop, lm) for crop, lm in _photo_faces(paths, detector)])
    unit = torch.nn.functional.normalize(emb, dim=1)
    sim = (unit @ unit.T).numpy()
    same = (labels[:, None] == labels[None]) & ~np.eye(len(labels), dtype=bool)
    diff = labels[:, None] != labels[None]
    assert sim[same].min() > sim[diff].max()
    # distance() and the documented threshold agree with that split
    d = mobileface.distance(emb[0:1].expand(len(emb), -1), emb).numpy()
    assert (d[1:3] < mobileface.cfg.threshold).all() and (d[3:] > mobileface.cfg.threshold).all()


def test_astronaut_aligns_to_a_centred_face_chip(astronaut, mobileface, detector):
    from vdeid.recognizers.align import INSIGHTFACE_112

    faces = detector.detect([astronaut])[0]
    crops = torch.from_numpy(astronaut).permute(2, 0, 1)[None].float() / 255
    chip = mobileface.align(crops, torch.from_numpy(faces.landmarks[:1]))
    assert chip.shape == (1, 3, 112, 112)
    # MTCNN finds the face again in the chip (padded: it needs some context),
    # with its landmarks near the template they were warped to.
    chip8 = (chip[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    again = detector.detect([np.ascontiguousarray(np.pad(chip8, ((40, 40), (40, 40), (0, 0)), mode="edge"))])[0]
    assert len(again) == 1
    err = np.abs(again.landmarks[0] - 40 - INSIGHTFACE_112.numpy()).max()
    assert err < 6.0


def test_gradient_reaches_crop_pixels(astronaut, mobileface, detector):
    faces = detector.detect([astronaut])[0]
    crops = (torch.from_numpy(astronaut).permute(2, 0, 1)[None].float() / 255).requires_grad_(True)
    landmarks = torch.from_numpy(faces.landmarks[:1])
    with torch.no_grad():
        ref = mobileface(crops, landmarks)
    loss = -mobileface.distance(mobileface(crops, landmarks), ref.roll(1, dims=1)).sum()
    (grad,) = torch.autograd.grad(loss, crops)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # The chip, hence the gradient, stays near the face: nothing outside the
    # detected box grown by half its size on each side.
    x0, y0, x1, y1 = expand_boxes(faces.boxes[:1], 0.5)[0].astype(int)
    outside = torch.ones_like(grad, dtype=torch.bool)
    outside[..., max(y0, 0) : y1, max(x0, 0) : x1] = False
    # Summed over the outside alone: a difference of two float sums need not be exactly 0.
    assert grad[outside].abs().sum() == 0
    assert not any(p.requires_grad for p in mobileface.parameters())
