"""vdeid's port of dlib's 5-point shape predictor on tensors (no dlib needed; on VDEID_TEST_DEVICE).

Its agreement with real dlib is tested in test_dlib_resnet.py, which needs dlib-bin.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from vdeid.recognizers import dlib_landmarks, ordered_sum
from vdeid_testing import DEVICE


def test_shape_predictor_reads_tensors_on_their_device(astronaut):
    """The attack's path: grey levels and boxes as tensors on VDEID_TEST_DEVICE, the same points as from numpy."""
    ours = dlib_landmarks.load_shape_predictor()
    grays = np.stack([dlib_landmarks.rgb_to_dlib_gray(im) for im in (astronaut, astronaut[::-1])])
    boxes = np.array([[[180.0, 60, 300, 180], [170, 50, 310, 190]], [[180, 330, 300, 450], [0, 0, 80, 80]]])
    expected = ours(grays, boxes)
    # On a GPU: the cascade there kernel by kernel, from CUDA graphs (first call, capture, replay), on the host.
    for host_below, graphs in [(0, False), (0, True), (0, True), (0, True), (32, False)]:
        ours.host_below, ours.graphs = host_below, graphs
        points = ours(torch.from_numpy(grays).to(DEVICE), torch.from_numpy(boxes).to(DEVICE))
        assert points.device.type == torch.device(DEVICE).type
        assert points.dtype == torch.float64
        np.testing.assert_array_equal(points.cpu().numpy(), expected)
    assert ours._graphed.enabled


def test_inputs_padded_for_graphs_give_the_same_points(astronaut):
    """Padded sides read 0, as pixels outside the image do; padded rows are dropped."""
    ours = dlib_landmarks.load_shape_predictor()
    rgb = astronaut[:470, :500]
    gray = torch.from_numpy(np.stack([dlib_landmarks.rgb_to_dlib_gray(im) for im in (rgb, rgb[::-1], rgb[:, ::-1])]))
    # Boxes inside, over the right and bottom edges (features there read the padding), and off the image.
    boxes = torch.tensor([[180.0, 60, 300, 180], [380, 350, 560, 530], [400, 20, 520, 140], [520, 480, 600, 560]])
    image = torch.tensor([0, 1, 2, 0])
    expected = ours._run(gray, boxes, image)
    np.testing.assert_array_equal(ours._graphed_run(gray, boxes, image).numpy(), expected.numpy())
    np.testing.assert_array_equal(ours(gray, boxes, image=image, round_points=False).numpy(), expected.numpy())


def test_leaves_add_one_after_another_as_dlib_adds_them():
    """The sum off the CPU adds in dlib's order: parallel sums moved 3.7 % of boxes by over 1 % of their side."""
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(40, 10, generator=gen)
    terms = torch.randn(40, 500, 10, generator=gen) * torch.rand(1, 500, 1, generator=gen)
    expected = torch.from_numpy(np.cumsum(np.concatenate([start[:, None], terms], 1), axis=1, dtype=np.float32)[:, -1])
    on = torch.device(DEVICE)
    assert torch.equal(ordered_sum.add_in_order(start.to(on), terms.to(on)).cpu(), expected)
    assert torch.equal(ordered_sum._add_one_by_one(start, terms), expected)
    assert not torch.equal(start + terms.sum(dim=1), expected)
    assert not ordered_sum._failed


def test_the_triton_kernel_adds_in_order_too(tmp_path):
    """The CUDA path's kernel, run by Triton's interpreter on the CPU (so CI checks its indexing)."""
    if torch.device(DEVICE).type == "cuda":
        pytest.skip("on CUDA the kernel itself runs in test_leaves_add_one_after_another_as_dlib_adds_them")
    pytest.importorskip("triton", reason="Triton is not installed (it comes with torch's Linux wheels)")
    script = tmp_path / "check.py"
    script.write_text(
        textwrap.dedent(
            """
            import numpy as np, torch
            from vdeid.recognizers import ordered_sum
            gen = torch.Generator().manual_seed(1)
            for n, t, k in [(3, 500, 10), (37, 7, 10), (1, 1, 3)]:  # rows across blocks, a partial block
                start = torch.randn(n, k, generator=gen)
                terms = torch.randn(n, t, k, generator=gen) * torch.rand(1, t, 1, generator=gen)
                got = ordered_sum._add_with_kernel(start, terms)
                assert torch.equal(got, ordered_sum._add_one_by_one(start, terms)), (n, t, k)
            print("ok")
            """
        )
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
