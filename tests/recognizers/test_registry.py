"""The recogniser registry, and one contract test over every registered recogniser (timm's habit)."""

from __future__ import annotations

import pytest
import torch

from vdeid.errors import ModelError
from vdeid.recognizers.registry import create_recognizer, create_recognizers, describe_recognizer, list_recognizers


def test_builtins_are_registered():
    assert {"dlib", "mobileface", "facenet"} <= set(list_recognizers())
    assert list_recognizers("mobile*") == ["mobileface"]
    for name in ("mobileface", "facenet"):
        description, needs_path = describe_recognizer(name)
        assert needs_path and description


@pytest.mark.parametrize("name", ["mobileface", "facenet"])
def test_models_without_bundled_weights_ask_for_a_path(name):
    with pytest.raises(ModelError, match=f"{name}:PATH"):
        create_recognizer(name)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ModelError) as info:
        create_recognizer("arcface")
    for name in list_recognizers():
        assert name in str(info.value)


def test_bad_path_is_reported_with_the_path(tmp_path):
    with pytest.raises(ModelError) as info:
        create_recognizers(f"mobileface:{tmp_path / 'missing'}")
    assert "missing" in str(info.value)


def _spec(name: str, tmp_path_factory) -> str:
    """A buildable spec for ``name`` here: real weights where we have them, else random ones."""
    from pathlib import Path

    if name == "mobileface":
        folder = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "mobileface_v2"
        if not folder.is_dir():
            pytest.skip(f"MobileFace weights not found at {folder}")
        return f"mobileface:{folder}"
    if name == "facenet":
        from facenet_pytorch import InceptionResnetV1

        path = tmp_path_factory.mktemp("facenet") / "random.pt"
        torch.save(InceptionResnetV1(pretrained=None, classify=False).state_dict(), path)
        return f"facenet:{path}"
    return name


@pytest.mark.parametrize("name", list_recognizers())
def test_recognizer_contract(name, tmp_path_factory):
    """Config matches the network; forward on crops + landmarks is finite and differentiable."""
    model = create_recognizer(_spec(name, tmp_path_factory))
    cfg = model.cfg
    assert cfg.name == name and cfg.metric in ("euclidean", "cosine") and cfg.threshold > 0
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    # A synthetic 2-face batch: a frontal layout of the 5 landmarks in a 120 px crop.
    torch.manual_seed(0)
    crops = torch.rand(2, 3, 120, 120, requires_grad=True)
    landmarks = torch.tensor([[42.0, 50], [78, 50], [60, 70], [46, 90], [74, 90]]).expand(2, 5, 2).clone()
    landmarks[1] += 3.0
    chips = model.align(crops, landmarks)
    assert chips.shape == (2, 3, cfg.input_size, cfg.input_size)
    out = model.embed_chips(chips)
    assert out.shape == (2, cfg.embedding_dim)
    assert torch.isfinite(out).all()
    d = model.distance(out[:1], out[1:])
    assert d.shape == (1,) and d.item() >= 0
    (grad,) = torch.autograd.grad(d.sum(), crops)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
