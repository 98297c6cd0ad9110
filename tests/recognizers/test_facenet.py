"""FaceNet loader and alignment.

No FaceNet weights exist in this environment (facenet-pytorch downloads them,
vdeid never does), so these tests check the loading path with a randomly
initialised network's state dict; recognition accuracy is not tested here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vdeid.errors import ModelError


@pytest.fixture(scope="module")
def random_net():
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    return InceptionResnetV1(pretrained=None, classify=False).eval()


@pytest.fixture(scope="module")
def weights(random_net, tmp_path_factory):
    path = tmp_path_factory.mktemp("facenet") / "random-inception-resnet-v1.pt"
    torch.save(random_net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def model(weights):
    from vdeid.recognizers.facenet import load_facenet

    return load_facenet(weights)


def test_state_dict_round_trip_gives_the_same_network(model, weights, random_net):
    assert model.cfg.input_size == 160 and model.cfg.embedding_dim == 512
    assert model.cfg.source.endswith(weights.name)
    chips = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        got = model.embed_chips(chips)
        want = random_net((chips * 255 - 127.5) / 128)  # facenet-pytorch's fixed_image_standardization
    torch.testing.assert_close(got, want)
    assert torch.allclose(got.norm(dim=1), torch.ones(1), atol=1e-5)  # unit descriptors
    assert not any(p.requires_grad for p in model.parameters())


def test_published_checkpoint_layout_loads(tmp_path, random_net):
    """The released .pt files carry the 8631-class ``logits`` layer; some tools wrap in ``state_dict``."""
    from vdeid.recognizers.facenet import load_facenet

    state = dict(random_net.state_dict())
    state["logits.weight"] = torch.zeros(8631, 512)
    state["logits.bias"] = torch.zeros(8631)
    torch.save({"state_dict": state}, tmp_path / "wrapped.pt")
    model = load_facenet(tmp_path / "wrapped.pt")
    torch.testing.assert_close(model.net.last_linear.weight, random_net.last_linear.weight)


def test_missing_and_incompatible_files_raise_model_error(tmp_path, random_net):
    from vdeid.recognizers.facenet import load_facenet

    with pytest.raises(ModelError, match="not found") as info:
        load_facenet(tmp_path / "absent.pt")
    assert info.value.path.endswith("absent.pt") and "facenet:" in info.value.message

    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "linear.pt")
    with pytest.raises(ModelError, match="missing"):
        load_facenet(tmp_path / "linear.pt")

    state = dict(random_net.state_dict())
    state["last_linear.weight"] = torch.zeros(128, 1792)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(ModelError, match="wrong shape"):
        load_facenet(tmp_path / "shape.pt")

    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ModelError, match="not a readable PyTorch state dict"):
        load_facenet(tmp_path / "text.pt")


def test_astronaut_aligns_to_a_160_chip_with_a_centred_face(astronaut, model):
    from vdeid.detect import FaceDetector
    from vdeid.recognizers.facenet import FACENET_160

    detector = FaceDetector()
    faces = detector.detect([astronaut])[0]
    crops = (torch.from_numpy(astronaut).permute(2, 0, 1)[None].float() / 255).requires_grad_(True)
    landmarks = torch.from_numpy(faces.landmarks[:1])
    chip = model.align(crops, landmarks)
    assert chip.shape == (1, 3, 160, 160)
    chip8 = (chip[0].detach().permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    again = detector.detect([np.ascontiguousarray(np.pad(chip8, ((40, 40), (40, 40), (0, 0)), mode="edge"))])[0]
    assert len(again) == 1
    assert np.abs(again.landmarks[0] - 40 - np.array(FACENET_160)).max() < 8.0
    (grad,) = torch.autograd.grad(model(crops, landmarks).sum(), crops)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
