"""Captured CUDA graphs give what the function gives (on VDEID_TEST_DEVICE=cuda; a plain call elsewhere)."""

from __future__ import annotations

import pytest
import torch

from vdeid.recognizers.graph_cache import GraphCache
from vdeid_testing import DEVICE


def _many_kernels(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    for _ in range(20):
        x = torch.tanh(x * w + 0.1)
    return x.sum(dim=1)


def test_replays_equal_the_function_and_keep_one_graph_per_shape():
    if torch.device(DEVICE).type != "cuda":
        pytest.skip("CUDA graphs need VDEID_TEST_DEVICE=cuda")
    cache = GraphCache(_many_kernels, max_graphs=2)
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(8, generator=gen).to(DEVICE)
    outs, sizes = [], []
    # A shape's first call runs plainly, its second captures, later ones replay.
    for rows in (4, 4, 4, 6, 6, 4, 5, 5, 5):
        x = torch.randn(rows, 8, generator=gen).to(DEVICE)
        outs.append((cache(x, w), _many_kernels(x, w)))
        sizes.append(len(cache))
    assert cache.enabled
    for got, expected in outs:  # earlier outputs are copies: later replays did not overwrite them
        assert torch.equal(got, expected)
    assert sizes == [0, 1, 1, 1, 2, 2, 2, 2, 2]  # (6, 8), least recently used, made way for (5, 8)


def test_off_cuda_the_function_runs_as_it_is():
    calls = []
    cache = GraphCache(lambda x: calls.append(x) or x + 1)
    assert torch.equal(cache(torch.zeros(3)), torch.ones(3))
    assert len(calls) == 1 and len(cache) == 0
